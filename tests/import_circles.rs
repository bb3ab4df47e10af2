#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! No two files of `src/` import each other, directly or around a circle (STYLE: folders follow the
//! direction of traffic). A file's imports are the `crate::`, `super::` and `self::` paths it
//! names, `use` lines and paths in code alike, each resolved to the deepest module that is a file;
//! a folder's `mod.rs` (or `lib.rs`) and the files below it are one face and not counted, as
//! declaring a module and using its items is no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["jobs", "ensure_room"]`) for every `.rs` file below `src`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            found.insert(module, path);
        }
    }
    found
}

/// The text without comments and string literals, which may hold paths that are no imports.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path the code names that starts at `crate`, `super` or `self`, with `{…}` groups of
/// `use` lines expanded: `use super::{a, b::{c, d}}` names `super::a`, `super::b::c`, `super::b::d`.
fn paths(code: &str) -> Vec<String> {
    fn expand(prefix: &str, group: &str, out: &mut Vec<String>) {
        let mut depth = 0;
        let mut start = 0;
        let bytes: Vec<char> = group.chars().collect();
        let mut items = Vec::new();
        for (i, c) in bytes.iter().enumerate() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(bytes[start..i].iter().collect::<String>());
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(bytes[start..].iter().collect::<String>());
        for item in items {
            let item: String = item.split_whitespace().collect();
            if item.is_empty() {
                continue;
            }
            match item.find("::{") {
                Some(at) if item.ends_with('}') => expand(
                    &format!("{prefix}{}::", &item[..at]),
                    &item[at + 3..item.len() - 1],
                    out,
                ),
                _ => out.push(format!("{prefix}{item}")),
            }
        }
    }
    let mut out = Vec::new();
    let mut skip_to = 0;
    for (i, _) in code.char_indices() {
        let rest = &code[i..];
        let Some(root) = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|root| rest.starts_with(root))
        else {
            continue;
        };
        let boundary = code[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        if i < skip_to || !boundary {
            continue;
        }
        // The path runs over identifiers, `::` and one balanced `{…}` group.
        let mut end = root.len();
        let mut depth = 0;
        for (j, c) in rest[root.len()..].char_indices() {
            let at = root.len() + j;
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + 1;
                        break;
                    }
                }
                c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => break,
                _ => {}
            }
            end = at + c.len_utf8();
        }
        let path = &rest[..end];
        skip_to = i + end;
        match path.find("::{") {
            Some(at) if path.ends_with('}') => expand(
                &format!("{}::", &path[..at]),
                &path[at + 3..path.len() - 1],
                &mut out,
            ),
            _ => out.push(path.trim_end_matches(':').to_owned()),
        }
    }
    out
}

/// The file-module a path names from `module`: the deepest module of `known` the path reaches.
fn resolve(
    path: &str,
    module: &[String],
    known: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let mut at: Vec<String> = match segments.next()? {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => {
            // `super` in `a/b.rs` and in `a/b/mod.rs` (both module `a::b`) is `a`.
            let mut base = module.to_vec();
            base.pop()?;
            base
        }
        _ => return None,
    };
    for segment in segments {
        if segment == "super" {
            at.pop()?;
            continue;
        }
        let mut next = at.clone();
        next.push(segment.to_owned());
        if known.contains_key(&next) {
            at = next;
        } else {
            break;
        }
    }
    known.contains_key(&at).then_some(at)
}

/// Whether one module lies inside the other (a folder's face and its files).
fn nested(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `from -> to` with the paths that tie them, for every pair of files under `src`.
fn imports(src: &Path) -> BTreeMap<(Vec<String>, Vec<String>), BTreeSet<String>> {
    let known = modules(src);
    let mut edges: BTreeMap<(Vec<String>, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).unwrap();
        for path in paths(&code(&text)) {
            let Some(target) = resolve(&path, module, &known) else {
                continue;
            };
            if nested(module, &target) {
                continue;
            }
            edges
                .entry((module.clone(), target))
                .or_default()
                .insert(path);
        }
    }
    edges
}

/// The groups of two or more modules that import each other around a circle (Tarjan's strongly
/// connected components).
fn circles(
    edges: &BTreeMap<(Vec<String>, Vec<String>), BTreeSet<String>>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        next: BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(node: &'a Vec<String>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(node, n);
        s.low.insert(node, n);
        s.stack.push(node);
        s.on_stack.insert(node);
        for target in s.next.get(node).cloned().unwrap_or_default() {
            if !s.index.contains_key(target) {
                visit(target, s);
                let low = s.low[node].min(s.low[target]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(target) {
                let low = s.low[node].min(s.index[target]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut group = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                group.push(top.clone());
                if top == node {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.found.push(group);
            }
        }
    }
    let mut state = State {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for (from, to) in edges.keys() {
        state.next.entry(from).or_default().push(to);
    }
    let nodes: Vec<&Vec<String>> = state.next.keys().copied().collect();
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(node, &mut state);
        }
    }
    state.found
}

/// The circles under `src`, each as the lines a reader needs to break it.
fn report(src: &Path) -> Vec<String> {
    let edges = imports(src);
    circles(&edges)
        .into_iter()
        .map(|group| {
            let name = |m: &Vec<String>| {
                if m.is_empty() {
                    "crate".to_owned()
                } else {
                    m.join("::")
                }
            };
            let mut lines = vec![format!(
                "these modules import each other around a circle: {}",
                group.iter().map(name).collect::<Vec<_>>().join(", ")
            )];
            for ((from, to), via) in &edges {
                if group.contains(from) && group.contains(to) {
                    let via: Vec<&str> = via.iter().map(String::as_str).collect();
                    lines.push(format!(
                        "  {} -> {}: {}",
                        name(from),
                        name(to),
                        via.join(", ")
                    ));
                }
            }
            lines.join("\n")
        })
        .collect()
}

#[test]
fn no_two_files_of_src_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = report(&src);
    assert!(
        found.is_empty(),
        "{}\nMove what both sides need into a module of its own below them (as rooms/declared.rs, \
         store/incoming.rs, api/platform/params.rs), so that imports run one way.",
        found.join("\n")
    );
}

/// A tree written for the occasion: the check sees a circle through `use` groups and a path in
/// code, and none through a folder's own `mod.rs`.
#[test]
fn a_circle_added_on_purpose_is_found_and_a_folders_face_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("jobs")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod jobs;\npub mod store;\n").unwrap();
    std::fs::write(
        src.join("jobs/mod.rs"),
        "pub mod a;\npub mod b;\npub use self::a::Thing;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("jobs/a.rs"),
        "use super::{b::{self, Other}};\nuse crate::store;\n// crate::jobs::b is only a comment\npub struct Thing;\n",
    )
    .unwrap();
    std::fs::write(src.join("jobs/b.rs"), "pub struct Other;\n").unwrap();
    std::fs::write(src.join("store.rs"), "pub fn f() {}\n").unwrap();
    assert_eq!(report(src), Vec::<String>::new(), "no circle yet");

    std::fs::write(
        src.join("jobs/b.rs"),
        "pub struct Other;\nfn g() { let _ = crate::jobs::a::Thing; }\n",
    )
    .unwrap();
    let found = report(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("jobs::a, jobs::b"), "{}", found[0]);
    assert!(
        found[0].contains("jobs::a -> jobs::b: super::b::Other, super::b::self"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("jobs::b -> jobs::a: crate::jobs::a::Thing"),
        "{}",
        found[0]
    );
}
