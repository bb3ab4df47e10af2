//! The namespaces one homeserver's registration claims, and their load-time self-check.
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#registration>
//!
//! Synapse matches namespace regexes with Python's `re.match`, anchored at the start only; Rust's
//! `Regex::is_match` anchors nothing. So the registration carries the regexes in Synapse's shape,
//! and our own checks use the same patterns anchored at both ends.

use regex::Regex;
use ruma::ServerName;

/// Escapes the characters that are special to both Python's `re` and Rust's `regex`; the values
/// escaped here are localparts and server names, so the output stays readable (`-` is left alone).
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Characters a tenant bot's localpart may hold after the prefix.
const LOCALPART_TAIL: &str = "[a-z0-9._=/-]+";

#[derive(Debug, Clone)]
pub struct Namespaces {
    /// The user regexes as written into the registration.
    user_patterns: Vec<String>,
    alias_pattern: String,
    users: Regex,
    aliases: Regex,
}

impl Namespaces {
    pub fn new(sender_localpart: &str, bot_prefix: &str, server_name: &ServerName) -> Self {
        let server = escape(server_name.as_str());
        let user_patterns = match bot_prefix.strip_prefix(sender_localpart) {
            // The usual shape: sender `openmeet-bot`, bots `openmeet-bot-{tenant}`; one regex covers both.
            Some(rest) if !rest.is_empty() => vec![format!(
                "@{}({}{LOCALPART_TAIL})?:{server}",
                escape(sender_localpart),
                escape(rest)
            )],
            _ => vec![
                format!("@{}:{server}", escape(sender_localpart)),
                format!("@{}{LOCALPART_TAIL}:{server}", escape(bot_prefix)),
            ],
        };
        let alias_pattern = format!("#(event|group)-.+:{server}");
        let anchored = |patterns: &[String]| {
            let alternatives: Vec<_> = patterns.iter().map(|p| format!("(?:{p})")).collect();
            Regex::new(&format!("^(?:{})$", alternatives.join("|")))
                .expect("namespace regexes are built from escaped values")
        };
        Self {
            users: anchored(&user_patterns),
            aliases: anchored(std::slice::from_ref(&alias_pattern)),
            user_patterns,
            alias_pattern,
        }
    }

    /// The user regexes in Synapse's shape, as the registration carries them.
    pub fn user_patterns(&self) -> &[String] {
        &self.user_patterns
    }

    /// The alias regex in Synapse's shape, as the registration carries it.
    pub fn alias_pattern(&self) -> &str {
        &self.alias_pattern
    }

    /// Whether `user_id` lies in our user namespace (anchored at both ends).
    pub fn is_our_user(&self, user_id: &str) -> bool {
        self.users.is_match(user_id)
    }

    /// Whether `alias` lies in our alias namespace (anchored at both ends).
    pub fn is_our_alias(&self, alias: &str) -> bool {
        self.aliases.is_match(alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespaces() -> Namespaces {
        Namespaces::new(
            "openmeet-bot",
            "openmeet-bot-",
            ServerName::parse("matrix.openmeet.net").unwrap().as_ref(),
        )
    }

    #[test]
    fn user_regex_has_the_registration_shape() {
        assert_eq!(
            namespaces().user_patterns,
            [r"@openmeet-bot(-[a-z0-9._=/-]+)?:matrix\.openmeet\.net"]
        );
    }

    #[test]
    fn sender_and_tenant_bots_are_ours() {
        let ns = namespaces();
        assert!(ns.is_our_user("@openmeet-bot:matrix.openmeet.net"));
        assert!(ns.is_our_user("@openmeet-bot-lsdfaopkljdfs:matrix.openmeet.net"));
    }

    #[test]
    fn humans_other_servers_and_suffixes_are_not_ours() {
        let ns = namespaces();
        for user in [
            "@alice:matrix.openmeet.net",
            "@openmeet-bot-x:evil.org",
            "@openmeet-bot-x:matrix.openmeet.net.evil.org",
            "@openmeet-bot-x:matrixxopenmeet.net",
            "@xopenmeet-bot-x:matrix.openmeet.net",
            "@openmeet-bot-X:matrix.openmeet.net",
            "@openmeet-botx:matrix.openmeet.net",
        ] {
            assert!(!ns.is_our_user(user), "{user} must not be ours");
        }
    }

    #[test]
    fn aliases_are_event_and_group_rooms_on_our_server_only() {
        let ns = namespaces();
        assert!(ns.is_our_alias("#event-summer-party-lsdfaopkljdfs:matrix.openmeet.net"));
        assert!(ns.is_our_alias("#group-hikers-ciTenantB:matrix.openmeet.net"));
        assert!(!ns.is_our_alias("#general:matrix.openmeet.net"));
        assert!(!ns.is_our_alias("#event-x-y:evil.org"));
        assert!(!ns.is_our_alias("#event-x-y:matrix.openmeet.net.evil.org"));
    }

    #[test]
    fn distinct_sender_and_prefix_get_two_user_regexes() {
        let ns = Namespaces::new(
            "as",
            "openmeet-bot-",
            ServerName::parse("example.org").unwrap().as_ref(),
        );
        assert_eq!(ns.user_patterns.len(), 2);
        assert!(ns.is_our_user("@as:example.org"));
        assert!(ns.is_our_user("@openmeet-bot-t1:example.org"));
        assert!(!ns.is_our_user("@ask:example.org"));
    }
}
