//! The two kinds of managed room: an OpenMeet event's chat and a group's chat.

use std::fmt;

use super::validate::FieldError;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Event,
    Group,
}

impl RoomKind {
    /// The kind as the platform's path and our aliases spell it.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match value {
            "event" => Ok(Self::Event),
            "group" => Ok(Self::Group),
            other => Err(FieldError::new(
                "kind",
                format!("must be event or group, not {other:?}"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Group => "group",
        }
    }
}

/// How a stored row's kind is read back (the database holds what [`RoomKind::as_str`] wrote).
impl TryFrom<String> for RoomKind {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).map_err(|_| format!("unknown room kind {text:?} in the database"))
    }
}

impl fmt::Display for RoomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A declared room by its kind and slug, as the audit log, the events feed and webhooks name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RoomRef {
    #[schema(value_type = RoomKind)]
    pub kind: String,
    pub slug: String,
}

impl RoomRef {
    /// From a row's nullable `(room_kind, room_slug)` columns: `None` for a tenant-wide row.
    pub fn from_columns(kind: Option<&str>, slug: Option<&str>) -> Option<Self> {
        Some(Self {
            kind: kind?.to_owned(),
            slug: slug?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_group_parse_and_print_back() {
        for kind in [RoomKind::Event, RoomKind::Group] {
            assert_eq!(RoomKind::parse(kind.as_str()), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn other_kinds_are_rejected_with_a_sentence() {
        let error = RoomKind::parse("Event").unwrap_err();
        assert_eq!(
            error.to_string(),
            "kind: must be event or group, not \"Event\""
        );
        assert!(RoomKind::parse("").is_err());
    }

    #[test]
    fn kind_serializes_lowercase() {
        assert_eq!(
            serde_json::to_value(RoomKind::Group).unwrap(),
            serde_json::json!("group")
        );
    }
}
