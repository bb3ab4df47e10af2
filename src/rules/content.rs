//! The content rules: blocked words and blocked link domains, looked for in a message's `body`
//! and `formatted_body` (and those of an edit's `m.new_content`), case-insensitively.
//!
//! A word matches whole (not inside a longer word: `ass` does not block `class`). A domain matches
//! itself and its subdomains wherever it appears as a host name, with or without a scheme, since
//! clients turn a bare `spam.example/offer` into a link too: `spam.example` blocks
//! `https://www.spam.example/x` and `spam.example`, not `notspam.example` nor `spam.example.org`.

use serde_json::Value;

use super::{Refusal, Rule};
use crate::config::Rules;

/// The first content rule the message breaks, if any.
pub fn refusal(rules: &Rules, content: &Value) -> Option<Refusal> {
    if rules.blocked_words.is_empty() && rules.blocked_link_domains.is_empty() {
        return None;
    }
    let texts = texts(content);
    for text in &texts {
        if let Some(domain) = (rules.blocked_link_domains.iter()).find(|d| has_domain(text, d)) {
            return Some(Refusal {
                rule: Rule::BlockedLinkDomain,
                reason: format!(
                    "Your message was not sent: links to {domain} are not allowed in this community."
                ),
            });
        }
    }
    for text in &texts {
        if (rules.blocked_words.iter()).any(|word| has_word(text, word)) {
            return Some(Refusal {
                rule: Rule::BlockedWord,
                reason:
                    "Your message was not sent: it contains a word this community does not allow."
                        .into(),
            });
        }
    }
    None
}

/// The message's texts, lowercased.
fn texts(content: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for content in [content, &content["m.new_content"]] {
        for key in ["body", "formatted_body"] {
            if let Some(text) = content.get(key).and_then(Value::as_str) {
                texts.push(text.to_lowercase());
            }
        }
    }
    texts
}

/// Whether `word` (lowercase, maybe several words) occurs in `text` with no letter or digit
/// right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    occurrences(text, word).any(|(before, after)| {
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Whether host name `domain` (or a subdomain of it) occurs in `text`: before it nothing that
/// continues a label other than a dot (a subdomain), after it nothing that continues the host.
fn has_domain(text: &str, domain: &str) -> bool {
    let label = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    occurrences(text, domain).any(|(before, after)| {
        let starts = !before.is_some_and(label);
        let ends = match after {
            None => true,
            Some(c) if label(c) => false,
            // `spam.example.org` is another domain; `spam.example.` ending a sentence is not.
            Some('.') => false,
            Some(_) => true,
        };
        starts && ends
    }) || occurrences(text, &format!("{domain}."))
        .any(|(before, after)| !before.is_some_and(label) && !after.is_some_and(label))
}

/// Each occurrence of `needle` in `text`, as the characters just before and after it.
fn occurrences<'a>(
    text: &'a str,
    needle: &'a str,
) -> impl Iterator<Item = (Option<char>, Option<char>)> + 'a {
    text.match_indices(needle).map(move |(at, found)| {
        (
            text[..at].chars().next_back(),
            text[at + found.len()..].chars().next(),
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> Rules {
        Rules {
            blocked_words: vec!["casino".into(), "buy now".into()],
            blocked_link_domains: vec!["spam.example".into()],
            applies_below_level: 50,
            rate_limit: None,
        }
    }

    fn rule(body: &str) -> Option<Rule> {
        refusal(&rules(), &json!({"msgtype": "m.text", "body": body})).map(|r| r.rule)
    }

    #[test]
    fn a_domain_and_its_subdomains_are_blocked_with_or_without_a_scheme() {
        for body in [
            "https://spam.example/offer",
            "see http://www.SPAM.example:8080/x?y",
            "spam.example",
            "go to spam.example.",
            "<a href=\"https://a.b.spam.example\">x</a>",
        ] {
            assert_eq!(rule(body), Some(Rule::BlockedLinkDomain), "{body}");
        }
        for body in [
            "https://notspam.example/",
            "https://spam.example.org/",
            "spam example",
        ] {
            assert_eq!(rule(body), None, "{body}");
        }
    }

    #[test]
    fn words_match_whole_and_in_any_case_in_body_formatted_body_and_edits() {
        assert_eq!(rule("Best CASINO in town"), Some(Rule::BlockedWord));
        assert_eq!(rule("Buy now!"), Some(Rule::BlockedWord));
        assert_eq!(rule("casinos"), None);
        assert_eq!(rule("occasion"), None);
        let formatted = json!({"body": "fine", "formatted_body": "<b>casino</b>"});
        assert_eq!(
            refusal(&rules(), &formatted).map(|r| r.rule),
            Some(Rule::BlockedWord)
        );
        let edit = json!({"body": "* fine", "m.new_content": {"body": "https://spam.example"}});
        assert_eq!(
            refusal(&rules(), &edit).map(|r| r.rule),
            Some(Rule::BlockedLinkDomain)
        );
    }
}
