//! Which room directories a declared room belongs in (DESIGN §7.5): each tenant has its own, a
//! network of the appservice's `openmeet` protocol, and the server-wide directory is only for the
//! tenants that opt into it.
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#third-party-networks> and
//! <https://spec.matrix.org/v1.19/client-server-api/#put_matrixclientv3directorylistappservicenetworkidroomid>

use super::validate::Visibility;

/// The third-party protocol the registration declares; its networks are the tenants.
pub const PROTOCOL: &str = "openmeet";

/// Where a room is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listings {
    /// In its tenant's own directory (the appservice room list of network `{tenant id}`).
    pub tenant: bool,
    /// In the homeserver's server-wide directory, which every user of every tenant browses.
    pub server: bool,
}

/// A public room is listed in its tenant's directory, and in the server-wide one only when the
/// tenant opted in (`tenants[].server_directory`); unlisted and private rooms are in neither.
pub fn listings(visibility: Visibility, server_directory: bool) -> Listings {
    let public = visibility == Visibility::Public;
    Listings {
        tenant: public,
        server: public && server_directory,
    }
}

/// The sentence kept on a room (and shown by GET) when the homeserver refused to list it in the
/// server-wide directory: the operator's policy, not the room's failure.
pub fn refusal_note(message: &str) -> String {
    format!(
        "the homeserver refused to list the room in its server-wide directory ({message}); it is listed in the tenant's own directory. To list it server-wide as well, allow the tenant bots in Synapse's room_list_publication_rules, or set server_directory: false for the tenant to stop asking"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_room_is_in_its_tenants_directory_only_unless_the_tenant_opted_in() {
        assert_eq!(
            listings(Visibility::Public, false),
            Listings {
                tenant: true,
                server: false
            }
        );
        assert_eq!(
            listings(Visibility::Public, true),
            Listings {
                tenant: true,
                server: true
            }
        );
    }

    #[test]
    fn unlisted_and_private_rooms_are_in_no_directory() {
        for visibility in [Visibility::Unlisted, Visibility::Private] {
            for server_directory in [false, true] {
                assert_eq!(
                    listings(visibility, server_directory),
                    Listings {
                        tenant: false,
                        server: false
                    },
                    "{visibility:?}"
                );
            }
        }
    }

    #[test]
    fn the_refusal_note_says_what_to_change() {
        let note = refusal_note("M_UNKNOWN: Not allowed to publish room");
        assert!(note.contains("Not allowed to publish room"), "{note}");
        assert!(note.contains("room_list_publication_rules"), "{note}");
        assert!(note.contains("server_directory"), "{note}");
    }
}
