//! Platform roles and the power level each gives, per room kind, and the tenant staff roles
//! (DESIGN §7.3 "Across the tenant"); configurable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{kind::RoomKind, validate::FieldError};

/// The highest level a role may give: the tenant bot holds 100 in rooms before version 12, and
/// Matrix does not let a user grant more power than it holds.
pub const MAX_ROLE_LEVEL: i64 = 100;

/// The lowest integer canonical JSON carries, and so the lowest power level.
const MIN_ROLE_LEVEL: i64 = -(1 << 53) + 1;

/// Role name → power level, per room kind, and per tenant staff role (the level staff hold in
/// every managed room of the tenant). Deserialized from a config section whose `event`, `group`
/// and `staff` maps override or add to the defaults rather than replace them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Overrides")]
pub struct RoleLevels {
    pub event: BTreeMap<String, i64>,
    pub group: BTreeMap<String, i64>,
    pub staff: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default)]
    event: BTreeMap<String, Level>,
    #[serde(default)]
    group: BTreeMap<String, Level>,
    #[serde(default)]
    staff: BTreeMap<String, Level>,
}

/// A level written as a number, or as a string of one (environment overrides arrive as strings).
#[derive(Deserialize)]
#[serde(try_from = "LevelText")]
struct Level(i64);

#[derive(Deserialize)]
#[serde(untagged)]
enum LevelText {
    Number(i64),
    Text(String),
}

impl TryFrom<LevelText> for Level {
    type Error = String;

    fn try_from(level: LevelText) -> Result<Self, String> {
        match level {
            LevelText::Number(number) => Ok(Self(number)),
            LevelText::Text(text) => text
                .trim()
                .parse()
                .map(Self)
                .map_err(|_| format!("{text:?} is not a power level: give a whole number")),
        }
    }
}

impl From<Overrides> for RoleLevels {
    fn from(overrides: Overrides) -> Self {
        let mut levels = Self::default();
        let numbers = |map: BTreeMap<String, Level>| map.into_iter().map(|(role, l)| (role, l.0));
        levels.event.extend(numbers(overrides.event));
        levels.group.extend(numbers(overrides.group));
        levels.staff.extend(numbers(overrides.staff));
        levels
    }
}

impl Default for RoleLevels {
    fn default() -> Self {
        let map = |pairs: &[(&str, i64)]| {
            pairs
                .iter()
                .map(|(role, level)| ((*role).to_owned(), *level))
                .collect()
        };
        Self {
            event: map(&[
                ("host", 100),
                ("moderator", 50),
                ("speaker", 25),
                ("participant", 0),
                ("guest", 0),
            ]),
            group: map(&[
                ("owner", 100),
                ("admin", 75),
                ("moderator", 50),
                ("member", 0),
            ]),
            staff: map(&[("admin", 75), ("moderator", 50)]),
        }
    }
}

impl RoleLevels {
    pub fn roles(&self, kind: RoomKind) -> &BTreeMap<String, i64> {
        match kind {
            RoomKind::Event => &self.event,
            RoomKind::Group => &self.group,
        }
    }

    /// The power level `role` gives in a room of `kind`.
    pub fn level(&self, kind: RoomKind, role: &str) -> Result<i64, FieldError> {
        if kind == RoomKind::Group && role == "guest" {
            return Err(FieldError::new(
                "role",
                "a guest is not a member of a group room; leave guests out of the group's members",
            ));
        }
        self.roles(kind).get(role).copied().ok_or_else(|| {
            let valid: Vec<&str> = self.roles(kind).keys().map(String::as_str).collect();
            FieldError::new(
                "role",
                format!(
                    "{role:?} is not a role in {kind} rooms; use one of: {}",
                    valid.join(", ")
                ),
            )
        })
    }

    /// The power level tenant staff with `role` hold in every managed room of the tenant.
    pub fn staff_level(&self, role: &str) -> Result<i64, FieldError> {
        self.staff.get(role).copied().ok_or_else(|| {
            let valid: Vec<&str> = self.staff.keys().map(String::as_str).collect();
            FieldError::new(
                "role",
                format!(
                    "{role:?} is not a staff role; use one of: {}",
                    valid.join(", ")
                ),
            )
        })
    }

    /// Every problem with configured levels, each naming its `{kind}.{role}` (or `staff.{role}`)
    /// key.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        for (role, level) in &self.staff {
            let field = format!("staff.{role}");
            if role.trim().is_empty() {
                problems.push(FieldError::new(field, "a role needs a name"));
            } else if !(0..=MAX_ROLE_LEVEL).contains(level) {
                problems.push(FieldError::new(
                    field,
                    format!(
                        "{level} is not a staff level: give one from 0 to {MAX_ROLE_LEVEL}, the tenant bot's own level (a bot cannot grant more power than it holds)"
                    ),
                ));
            }
        }
        for kind in [RoomKind::Event, RoomKind::Group] {
            for (role, level) in self.roles(kind) {
                let field = format!("{kind}.{role}");
                if kind == RoomKind::Group && role == "guest" {
                    problems.push(FieldError::new(
                        field,
                        "a guest is not a member of a group room; remove this entry",
                    ));
                } else if role.trim().is_empty() {
                    problems.push(FieldError::new(field, "a role needs a name"));
                } else if *level > MAX_ROLE_LEVEL {
                    problems.push(FieldError::new(
                        field,
                        format!(
                            "{level} is above {MAX_ROLE_LEVEL}, the tenant bot's own level, and a bot cannot grant more power than it holds; use at most {MAX_ROLE_LEVEL}"
                        ),
                    ));
                } else if *level < MIN_ROLE_LEVEL {
                    problems.push(FieldError::new(
                        field,
                        format!(
                            "{level} is below {MIN_ROLE_LEVEL}, the lowest level Matrix carries"
                        ),
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_designed_levels() {
        let levels = RoleLevels::default();
        let event = |role| levels.level(RoomKind::Event, role).unwrap();
        let group = |role| levels.level(RoomKind::Group, role).unwrap();
        assert_eq!(
            [
                event("host"),
                event("moderator"),
                event("speaker"),
                event("participant"),
                event("guest")
            ],
            [100, 50, 25, 0, 0]
        );
        assert_eq!(
            [
                group("owner"),
                group("admin"),
                group("moderator"),
                group("member")
            ],
            [100, 75, 50, 0]
        );
        assert!(levels.validate().is_empty());
    }

    #[test]
    fn staff_roles_are_moderator_and_admin_by_default() {
        let levels = RoleLevels::default();
        assert_eq!(levels.staff_level("moderator"), Ok(50));
        assert_eq!(levels.staff_level("admin"), Ok(75));
        let error = levels.staff_level("owner").unwrap_err();
        assert_eq!(
            error.to_string(),
            "role: \"owner\" is not a staff role; use one of: admin, moderator"
        );
    }

    #[test]
    fn staff_levels_are_configured_like_the_others() {
        let levels: RoleLevels = serde_json::from_str(r#"{"staff": {"admin": "80"}}"#).unwrap();
        assert_eq!(levels.staff_level("admin"), Ok(80));
        assert_eq!(levels.staff_level("moderator"), Ok(50));
        let levels: RoleLevels = serde_json::from_str(r#"{"staff": {"admin": 101}}"#).unwrap();
        assert_eq!(levels.validate()[0].field, "staff.admin");
    }

    #[test]
    fn unknown_role_lists_the_valid_roles_of_that_kind() {
        let error = RoleLevels::default()
            .level(RoomKind::Group, "host")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "role: \"host\" is not a role in group rooms; use one of: admin, member, moderator, owner"
        );
    }

    #[test]
    fn guest_of_a_group_room_is_refused_as_not_a_member() {
        let error = RoleLevels::default()
            .level(RoomKind::Group, "guest")
            .unwrap_err();
        assert!(error.message.contains("not a member"), "{error}");
    }

    #[test]
    fn role_names_are_case_sensitive() {
        assert!(
            RoleLevels::default()
                .level(RoomKind::Event, "Host")
                .is_err()
        );
    }

    #[test]
    fn config_overrides_and_adds_to_the_defaults() {
        let levels: RoleLevels =
            serde_json::from_str(r#"{"event": {"speaker": 10, "co-host": 90}}"#).unwrap();
        assert_eq!(levels.level(RoomKind::Event, "speaker"), Ok(10));
        assert_eq!(levels.level(RoomKind::Event, "co-host"), Ok(90));
        assert_eq!(levels.level(RoomKind::Event, "host"), Ok(100));
        assert_eq!(levels.level(RoomKind::Group, "admin"), Ok(75));
    }

    #[test]
    fn empty_config_section_gives_the_defaults() {
        let levels: RoleLevels = serde_json::from_str("{}").unwrap();
        assert_eq!(levels, RoleLevels::default());
    }

    #[test]
    fn unknown_config_keys_are_rejected() {
        assert!(serde_json::from_str::<RoleLevels>(r#"{"events": {}}"#).is_err());
    }

    #[test]
    fn levels_above_the_bots_are_reported() {
        let levels: RoleLevels = serde_json::from_str(r#"{"group": {"owner": 150}}"#).unwrap();
        let problems = levels.validate();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "group.owner");
        assert!(
            problems[0].message.contains("at most 100"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_configured_group_guest_is_reported() {
        let levels: RoleLevels = serde_json::from_str(r#"{"group": {"guest": 0}}"#).unwrap();
        assert_eq!(levels.validate()[0].field, "group.guest");
    }

    #[test]
    fn negative_levels_are_allowed() {
        let levels: RoleLevels = serde_json::from_str(r#"{"event": {"muted": -1}}"#).unwrap();
        assert!(levels.validate().is_empty());
    }
}
