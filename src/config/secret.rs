//! Secrets given inline or as a `*_file` path, kept out of every `Debug` and `Display`.

use std::fmt;
use std::path::Path;

/// A secret value; its `Debug` and `Display` print `[redacted]`, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the few places that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is one of `secrets`, comparing SHA-256 digests in constant time so
    /// that neither the content nor the length of a secret leaks through timing.
    pub fn any_matches(secrets: &[Secret], presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let presented = Sha256::digest(presented.as_bytes());
        secrets.iter().fold(false, |found, secret| {
            found | bool::from(Sha256::digest(secret.0.as_bytes()).ct_eq(&presented))
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Resolves `name` from its inline value or its `name_file`, recording a problem when neither or
/// both are given or the file cannot be read.
pub fn resolve(
    name: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    resolve_lines(name, inline.map(|v| vec![v.to_owned()]), file, problems)
        .and_then(|mut secrets| (!secrets.is_empty()).then(|| secrets.remove(0)))
}

/// Like [`resolve`], for a secret that may hold several values (one per line in its file), as
/// `hs_token` does during a rotation.
pub fn resolve_lines(
    name: &str,
    inline: Option<Vec<String>>,
    file: Option<&Path>,
    problems: &mut Vec<String>,
) -> Option<Vec<Secret>> {
    let values = match (inline, file) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{name} and {name}_file are both set: keep only one of them."
            ));
            return None;
        }
        (None, None) => {
            problems.push(format!(
                "{name} is missing: set {name} inline or {name}_file to a file that holds it."
            ));
            return None;
        }
        (Some(values), None) => values,
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned)
                .collect(),
            Err(error) => {
                problems.push(format!(
                    "{name}_file {} cannot be read ({error}): check the path and its permissions.",
                    path.display()
                ));
                return None;
            }
        },
    };
    let mut secrets = Vec::with_capacity(values.len());
    for value in values {
        let value = value.trim().to_owned();
        if value.is_empty() {
            problems.push(format!("{name} is empty: give it a value."));
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push(format!(
                "{name} contains whitespace: a token is one word; check for a stray character."
            ));
        } else if value.len() < 16 {
            problems.push(format!(
                "{name} is shorter than 16 characters: use a random token, e.g. from `openmeet-appservice generate-config`."
            ));
        } else {
            secrets.push(Secret(value));
        }
    }
    if secrets.is_empty() && problems.is_empty() {
        problems.push(format!("{name} holds no token: give at least one."));
    }
    Some(secrets)
}

/// A fresh random token of 64 hex characters (32 bytes from the operating system).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_secret_matches_and_nothing_else() {
        let tokens = [
            Secret::new("current-token-0123456789"),
            Secret::new("previous-token-0123456789"),
        ];
        assert!(Secret::any_matches(&tokens, "current-token-0123456789"));
        assert!(Secret::any_matches(&tokens, "previous-token-0123456789"));
        assert!(!Secret::any_matches(&tokens, "current-token-012345678"));
        assert!(!Secret::any_matches(&tokens, ""));
    }

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("hunter2hunter2hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
    }

    #[test]
    fn secret_file_may_hold_several_tokens_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hs_token");
        std::fs::write(
            &path,
            "# current first\naaaaaaaaaaaaaaaaaaaa\n\nbbbbbbbbbbbbbbbbbbbb\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let tokens = resolve_lines("hs_token", None, Some(&path), &mut problems).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let tokens: Vec<_> = tokens.iter().map(Secret::expose).collect();
        assert_eq!(tokens, ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"]);
    }

    #[test]
    fn inline_and_file_together_is_a_problem() {
        let mut problems = Vec::new();
        resolve(
            "as_token",
            Some("x"),
            Some(Path::new("/nope")),
            &mut problems,
        );
        assert!(problems[0].contains("both set"), "{problems:?}");
    }

    #[test]
    fn random_tokens_are_64_hex_characters_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
