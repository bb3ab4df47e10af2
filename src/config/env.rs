//! Environment overrides: `OPENMEET_AS__SECTION__KEY=value` replaces `section.key` in the file.
//! A numeric segment indexes a list (`OPENMEET_AS__TENANTS__0__API_TOKEN`).

use serde_yaml::{Mapping, Value};

pub const PREFIX: &str = "OPENMEET_AS__";

/// Applies every `OPENMEET_AS__…` variable of `vars` to `root`, recording a problem for a variable
/// that cannot be placed.
pub fn apply_overrides(
    root: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<String>,
) {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    vars.sort();
    for (name, value) in vars {
        let path: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            problems.push(format!(
                "environment variable {name} has an empty key segment: write it as OPENMEET_AS__SECTION__KEY."
            ));
            continue;
        }
        if let Err(problem) = set(root, &path, value) {
            problems.push(format!("environment variable {name}: {problem}"));
        }
    }
}

fn set(root: &mut Value, path: &[String], value: String) -> Result<(), String> {
    if root.is_null() {
        *root = Value::Mapping(Mapping::new());
    }
    let mut node = root;
    for (depth, key) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        node = match node {
            Value::Mapping(map) => {
                if last {
                    // The variable replaces the secret however the file gave it: `as_token`
                    // overrides `as_token_file` and the other way round.
                    let sibling = match key.strip_suffix("_file") {
                        Some(inline) => inline.to_owned(),
                        None => format!("{key}_file"),
                    };
                    map.remove(Value::String(sibling));
                }
                let slot = map.entry(Value::String(key.clone())).or_insert(Value::Null);
                if !last && slot.is_null() {
                    *slot = Value::Mapping(Mapping::new());
                }
                slot
            }
            Value::Sequence(items) => {
                let index: usize = key.parse().map_err(|_| {
                    format!(
                        "{} is a list: index it with a number",
                        path[..depth].join(".")
                    )
                })?;
                let len = items.len();
                items.get_mut(index).ok_or_else(|| {
                    format!(
                        "{} has {len} entries, so index {index} does not exist",
                        path[..depth].join(".")
                    )
                })?
            }
            _ => {
                return Err(format!(
                    "{} is a single value, so it has no key {key}",
                    path[..depth].join(".")
                ));
            }
        };
    }
    *node = Value::String(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(yaml: &str, vars: &[(&str, &str)]) -> (Value, Vec<String>) {
        let mut root: Value = serde_yaml::from_str(yaml).unwrap();
        let mut problems = Vec::new();
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        apply_overrides(&mut root, vars, &mut problems);
        (root, problems)
    }

    #[test]
    fn override_replaces_nested_key_and_creates_missing_sections() {
        let (root, problems) = apply(
            "homeserver: {url: http://a}\n",
            &[
                ("OPENMEET_AS__HOMESERVER__URL", "http://b"),
                ("OPENMEET_AS__DATABASE__URL", "sqlite://x.db"),
                ("UNRELATED", "1"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(root["homeserver"]["url"], Value::from("http://b"));
        assert_eq!(root["database"]["url"], Value::from("sqlite://x.db"));
    }

    #[test]
    fn a_variable_replaces_the_secret_however_the_file_gave_it() {
        let (root, problems) = apply(
            "appservice: {as_token_file: /run/as, hs_token: inline}\n",
            &[
                ("OPENMEET_AS__APPSERVICE__AS_TOKEN", "from-env"),
                ("OPENMEET_AS__APPSERVICE__HS_TOKEN_FILE", "/run/hs"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(root["appservice"]["as_token"], Value::from("from-env"));
        assert!(root["appservice"].get("as_token_file").is_none());
        assert_eq!(root["appservice"]["hs_token_file"], Value::from("/run/hs"));
        assert!(root["appservice"].get("hs_token").is_none());
    }

    #[test]
    fn numeric_segment_indexes_a_list() {
        let (root, problems) = apply(
            "tenants: [{id: a}]\n",
            &[
                ("OPENMEET_AS__TENANTS__0__API_TOKEN", "t"),
                ("OPENMEET_AS__TENANTS__3__ID", "x"),
            ],
        );
        assert_eq!(root["tenants"][0]["api_token"], Value::from("t"));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("index 3 does not exist"),
            "{problems:?}"
        );
    }
}
