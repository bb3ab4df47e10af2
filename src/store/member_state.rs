//! What a room's declaration says of one user: a member (with a role), removed, or neither, and
//! banned or muted here (by the room or tenant-wide). Read by `ensure_room` and `GET` on a room.

use std::collections::BTreeMap;

use serde::Serialize;

use super::members::Member;
use super::moderation::{Kind, Moderation, Scope};

/// One user's place in a room's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    pub user_id: String,
    pub membership: Membership,
    /// The power level the daemon last wrote for them as a member (`None`: no entry it owns).
    pub applied_level: Option<i32>,
    pub ban: Restriction,
    pub mute: Restriction,
}

/// Whether the platform declared the user a member of the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    Declared {
        role: String,
    },
    /// Removed from the declaration; still to be kicked, with the platform's reason.
    Removed {
        reason: Option<String>,
    },
    /// Never declared here (only banned or muted).
    None,
}

/// A ban or a mute as it stands for one user in one room.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Restriction {
    #[default]
    None,
    InForce(Hold),
    /// Lifted by the platform; the room still has to be brought back (unban, level restored).
    Lifted,
}

/// A ban or mute in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// `room` or `tenant`.
    pub scope: &'static str,
    pub reason: Option<String>,
    /// Unix ms when it lifts by itself; `None`: until lifted.
    pub expires_at: Option<i64>,
}

impl Restriction {
    pub fn in_force(&self) -> Option<&Hold> {
        match self {
            Self::InForce(hold) => Some(hold),
            _ => None,
        }
    }

    pub fn is_in_force(&self) -> bool {
        self.in_force().is_some()
    }

    /// Adds one row: any row in force wins over lifted ones, and of two in force the one that
    /// holds longer (no expiry, else the later) is shown.
    fn add(&mut self, row: &Moderation) {
        if !row.in_force() {
            if matches!(self, Self::None) {
                *self = Self::Lifted;
            }
            return;
        }
        let hold = Hold {
            scope: match row.scope {
                Scope::Room(_) => "room",
                Scope::Tenant => "tenant",
            },
            reason: row.reason.clone(),
            expires_at: row.expires_at,
        };
        let longer = match self.in_force() {
            None => true,
            Some(held) => match (held.expires_at, hold.expires_at) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(held), Some(new)) => new > held,
            },
        };
        if longer {
            *self = Self::InForce(hold);
        }
    }
}

impl MemberState {
    /// Whether the platform declares them a member (with a role).
    pub fn role(&self) -> Option<&str> {
        match &self.membership {
            Membership::Declared { role } => Some(role),
            _ => None,
        }
    }
}

/// Every user the room's declaration names, by user id: its members (declared or removed) and
/// the users banned or muted here, `moderation` being what holds in the room (its own rows and
/// the tenant-wide ones).
pub fn member_states(members: &[Member], moderation: &[Moderation]) -> Vec<MemberState> {
    let mut states: BTreeMap<&str, MemberState> = BTreeMap::new();
    let blank = |user_id: &str| MemberState {
        user_id: user_id.to_owned(),
        membership: Membership::None,
        applied_level: None,
        ban: Restriction::None,
        mute: Restriction::None,
    };
    for member in members {
        let mut state = blank(&member.user_id);
        state.membership = match &member.role {
            Some(role) => Membership::Declared { role: role.clone() },
            None => Membership::Removed {
                reason: member.reason.clone(),
            },
        };
        state.applied_level = member.applied_level;
        states.insert(&member.user_id, state);
    }
    for row in moderation {
        let state = states
            .entry(&row.user_id)
            .or_insert_with(|| blank(&row.user_id));
        match row.kind {
            Kind::Ban => state.ban.add(row),
            Kind::Mute => state.mute.add(row),
        }
    }
    states.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(user_id: &str, role: Option<&str>) -> Member {
        Member {
            room_key: 7,
            user_id: user_id.into(),
            role: role.map(str::to_owned),
            applied_level: Some(0),
            reason: None,
            updated_at: 0,
        }
    }

    fn row(
        user_id: &str,
        kind: Kind,
        scope: Scope,
        expires_at: Option<i64>,
        lifted: bool,
    ) -> Moderation {
        Moderation {
            id: 1,
            tenant_id: "t".into(),
            scope,
            user_id: user_id.into(),
            kind,
            reason: Some("spam".into()),
            expires_at,
            actor: None,
            lifted_at: lifted.then_some(5),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_member_banned_tenant_wide_and_a_muted_non_member_are_both_listed() {
        let states = member_states(
            &[member("@a:s", Some("host"))],
            &[
                row("@a:s", Kind::Ban, Scope::Tenant, None, false),
                row("@b:s", Kind::Mute, Scope::Room(7), Some(9), false),
            ],
        );
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].role(), Some("host"));
        assert_eq!(states[0].ban.in_force().unwrap().scope, "tenant");
        assert!(!states[0].mute.is_in_force());
        assert_eq!(states[1].membership, Membership::None);
        assert_eq!(states[1].mute.in_force().unwrap().expires_at, Some(9));
    }

    #[test]
    fn a_ban_in_force_wins_over_a_lifted_one_and_the_longer_hold_is_shown() {
        let states = member_states(
            &[],
            &[
                row("@a:s", Kind::Ban, Scope::Tenant, None, true),
                row("@a:s", Kind::Ban, Scope::Room(7), Some(10), false),
                row("@a:s", Kind::Mute, Scope::Room(7), Some(10), false),
                row("@a:s", Kind::Mute, Scope::Tenant, None, false),
            ],
        );
        assert_eq!(states[0].ban.in_force().unwrap().expires_at, Some(10));
        assert_eq!(states[0].mute.in_force().unwrap().scope, "tenant");
        let lifted = member_states(&[], &[row("@a:s", Kind::Mute, Scope::Room(7), None, true)]);
        assert_eq!(lifted[0].mute, Restriction::Lifted);
    }
}
