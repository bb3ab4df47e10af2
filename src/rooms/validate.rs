//! Checks of the platform API's room inputs, each failing with a sentence that says how to fix it.

use ruma::{OwnedUserId, ServerName, UserId};

/// The most bytes a room name may hold. The spec dropped its 255-byte rule (matrix-spec-proposals
/// #3669) and Synapse enforces none, but clients and the room directory expect a one-line name.
pub const MAX_NAME_BYTES: usize = 255;

/// The most bytes a topic may hold. Synapse's only limit is the 65 536-byte event
/// (`MAX_PDU_SIZE`), and `createRoom` writes the topic twice (`topic` and `m.topic`), each copy up
/// to twice as long once JSON escapes quotes and newlines: 8 KiB keeps that well inside the event.
pub const MAX_TOPIC_BYTES: usize = 8192;

/// A rejected input: which field, and a sentence saying what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Who finds and joins the room (DESIGN §7.5): OpenMeet's three visibilities.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone on the server joins; listed in the tenant's own room directory.
    Public,
    /// Anyone with the link (the alias or room id) joins; listed nowhere.
    Unlisted,
    /// Invited users only, or with `open_to` the members of a group room too.
    Private,
}

impl Visibility {
    pub const ALL: [Self; 3] = [Self::Public, Self::Unlisted, Self::Private];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }
}

/// How a stored row's visibility is read back (the database holds what [`Visibility::as_str`]
/// wrote).
impl TryFrom<String> for Visibility {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        visibility(&text).map_err(|_| format!("unknown room visibility {text:?} in the database"))
    }
}

/// A room name: required, not blank, one line, at most [`MAX_NAME_BYTES`].
pub fn room_name(name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new(
            "name",
            "must not be empty; send the name people see, e.g. \"Summer Party Chat\"",
        ));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(FieldError::new(
            "name",
            format!(
                "is {} bytes long, over the limit of {MAX_NAME_BYTES}; shorten it",
                name.len()
            ),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "holds a line break or another control character; send a single line",
        ));
    }
    Ok(())
}

/// A topic: may be empty, may span lines, at most [`MAX_TOPIC_BYTES`].
pub fn topic(topic: &str) -> Result<(), FieldError> {
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(FieldError::new(
            "topic",
            format!(
                "is {} bytes long, over the limit of {MAX_TOPIC_BYTES}; shorten it",
                topic.len()
            ),
        ));
    }
    lines("topic", topic)
}

/// Text that may span lines (a topic, a reason): no control character but line breaks and tabs.
/// PostgreSQL cannot store a NUL at all; the other control characters are no better in Matrix.
pub fn lines(field: &str, text: &str) -> Result<(), FieldError> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            field,
            "holds a control character other than a line break or tab; remove it",
        ));
    }
    Ok(())
}

/// `"public"`, `"unlisted"` or `"private"`, exactly.
pub fn visibility(value: &str) -> Result<Visibility, FieldError> {
    Visibility::ALL
        .into_iter()
        .find(|visibility| visibility.as_str() == value)
        .ok_or_else(|| {
            FieldError::new(
                "visibility",
                format!("must be \"public\", \"unlisted\" or \"private\", not {value:?}"),
            )
        })
}

/// The longest user id, in bytes: the spec's identifier limit and Synapse's `MAX_USERID_LENGTH`.
pub const MAX_USER_ID_BYTES: usize = 255;

/// A member's user id: a valid Matrix user id of a user on our own server.
pub fn member_user_id(value: &str, server: &ServerName) -> Result<OwnedUserId, FieldError> {
    if value.len() > MAX_USER_ID_BYTES {
        return Err(FieldError::new(
            "user_id",
            format!(
                "is {} bytes long, over Matrix's limit of {MAX_USER_ID_BYTES} for user ids",
                value.len()
            ),
        ));
    }
    let user_id = UserId::parse(value).map_err(|_| {
        FieldError::new(
            "user_id",
            format!("{value:?} is not a Matrix user id; write it in full, e.g. @alice:{server}"),
        )
    })?;
    if user_id.validate_historical().is_err() {
        return Err(FieldError::new(
            "user_id",
            format!(
                "{value:?} holds characters a Matrix user id may not contain (spaces, control or non-ASCII characters)"
            ),
        ));
    }
    if user_id.server_name() != server {
        return Err(FieldError::new(
            "user_id",
            format!(
                "{user_id} belongs to {}, but only users of {server} can be members of these rooms",
                user_id.server_name()
            ),
        ));
    }
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> &'static ServerName {
        <&ServerName>::try_from("matrix.openmeet.net").unwrap()
    }

    #[test]
    fn field_error_displays_field_then_sentence() {
        let error = FieldError::new("name", "must not be empty");
        assert_eq!(error.to_string(), "name: must not be empty");
    }

    #[test]
    fn ordinary_room_name_is_accepted() {
        assert_eq!(room_name("Summer Party Chat"), Ok(()));
    }

    #[test]
    fn blank_room_name_is_rejected() {
        for name in ["", "   ", "\t"] {
            assert_eq!(room_name(name).unwrap_err().field, "name");
        }
    }

    #[test]
    fn room_name_of_255_bytes_is_accepted_and_256_rejected() {
        assert_eq!(room_name(&"a".repeat(255)), Ok(()));
        let error = room_name(&"a".repeat(256)).unwrap_err();
        assert!(error.message.contains("256 bytes"), "{error}");
    }

    #[test]
    fn room_name_length_counts_bytes_not_characters() {
        // 128 two-byte characters are 256 bytes.
        assert!(room_name(&"é".repeat(128)).is_err());
    }

    #[test]
    fn room_name_with_a_line_break_is_rejected() {
        assert!(room_name("Summer\nParty").is_err());
    }

    #[test]
    fn topic_may_be_empty_or_span_lines() {
        assert_eq!(topic(""), Ok(()));
        assert_eq!(
            topic("Chat room for Summer Party\nBring snacks.\r\n\tThanks"),
            Ok(())
        );
    }

    #[test]
    fn topic_over_the_limit_is_rejected() {
        assert_eq!(topic(&"a".repeat(MAX_TOPIC_BYTES)), Ok(()));
        assert_eq!(
            topic(&"a".repeat(MAX_TOPIC_BYTES + 1)).unwrap_err().field,
            "topic"
        );
    }

    #[test]
    fn topic_with_a_bell_character_is_rejected() {
        assert!(topic("ding\u{7}").is_err());
    }

    #[test]
    fn visibility_is_public_unlisted_or_private_exactly() {
        assert_eq!(visibility("public"), Ok(Visibility::Public));
        assert_eq!(visibility("unlisted"), Ok(Visibility::Unlisted));
        assert_eq!(visibility("private"), Ok(Visibility::Private));
        let error = visibility("Public").unwrap_err();
        assert_eq!(
            error.to_string(),
            "visibility: must be \"public\", \"unlisted\" or \"private\", not \"Public\""
        );
    }

    #[test]
    fn member_on_our_server_is_accepted() {
        let user_id = member_user_id("@alice:matrix.openmeet.net", server()).unwrap();
        assert_eq!(user_id, "@alice:matrix.openmeet.net");
    }

    #[test]
    fn member_on_another_server_is_rejected_with_both_servers_named() {
        let error = member_user_id("@bob:example.org", server()).unwrap_err();
        assert_eq!(error.field, "user_id");
        assert!(error.message.contains("example.org"), "{error}");
        assert!(error.message.contains("matrix.openmeet.net"), "{error}");
    }

    #[test]
    fn member_without_sigil_or_server_is_rejected() {
        for value in ["alice", "alice:matrix.openmeet.net", "@alice", ""] {
            let error = member_user_id(value, server()).unwrap_err();
            assert!(error.message.contains("not a Matrix user id"), "{error}");
        }
    }

    #[test]
    fn member_with_a_space_in_the_localpart_is_rejected() {
        assert!(member_user_id("@al ice:matrix.openmeet.net", server()).is_err());
    }

    #[test]
    fn member_id_longer_than_255_bytes_is_rejected() {
        let fits = format!("@{}:matrix.openmeet.net", "a".repeat(255 - 21));
        assert!(member_user_id(&fits, server()).is_ok());
        let over = format!("@{}:matrix.openmeet.net", "a".repeat(255 - 20));
        let error = member_user_id(&over, server()).unwrap_err();
        assert!(error.message.contains("256 bytes"), "{error}");
    }
}
