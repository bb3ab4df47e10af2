//! A declared room's alias, `#{kind}-{slug}-{tenant}:{server}`: building, checking and parsing it.

use ruma::{OwnedRoomAliasId, RoomAliasId, ServerName};

use super::{kind::RoomKind, validate::FieldError};

/// The longest alias, `#` and server included, in bytes: the spec's identifier limit and Synapse's
/// `MAX_ALIAS_LENGTH` (synapse/api/constants.py). Our aliases are ASCII, so bytes are characters.
pub const MAX_ALIAS_BYTES: usize = 255;

/// The parts of one of our aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasParts {
    pub kind: RoomKind,
    pub slug: String,
    pub tenant: String,
}

/// What createRoom's `room_alias_name` takes: the alias without `#` and `:{server}`.
pub fn alias_localpart(kind: RoomKind, slug: &str, tenant: &str) -> String {
    format!("{kind}-{slug}-{tenant}")
}

/// The alias of a declared room, after checking the slug and tenant id.
pub fn alias(
    kind: RoomKind,
    slug: &str,
    tenant: &str,
    server: &ServerName,
) -> Result<OwnedRoomAliasId, FieldError> {
    validate_slug(kind, slug, tenant, server)?;
    let alias = format!("#{}:{server}", alias_localpart(kind, slug, tenant));
    RoomAliasId::parse(&alias)
        .map_err(|error| FieldError::new("slug", format!("makes {alias:?} invalid ({error})")))
}

/// A slug: letters, digits and `. _ = -`, case kept, short enough for the whole alias to fit.
pub fn validate_slug(
    kind: RoomKind,
    slug: &str,
    tenant: &str,
    server: &ServerName,
) -> Result<(), FieldError> {
    if !is_tenant_id(tenant) {
        return Err(FieldError::new(
            "tenant",
            format!("{tenant:?} is not a tenant id: it may only hold letters, digits and . _ ="),
        ));
    }
    if slug.is_empty() {
        return Err(FieldError::new(
            "slug",
            "must not be empty; send the room's URL slug, e.g. summer-party-2026",
        ));
    }
    if !slug.bytes().all(is_slug_byte) {
        return Err(FieldError::new(
            "slug",
            format!(
                "{slug:?} may only hold letters, digits and . _ = -; replace other characters (such as spaces) with -"
            ),
        ));
    }
    let length = alias_localpart(kind, slug, tenant).len() + server.as_str().len() + 2;
    if length > MAX_ALIAS_BYTES {
        let room = length - slug.len();
        return Err(FieldError::new(
            "slug",
            format!(
                "makes the alias {length} bytes long, over Matrix's limit of {MAX_ALIAS_BYTES}; shorten the slug to at most {} bytes",
                MAX_ALIAS_BYTES.saturating_sub(room)
            ),
        ));
    }
    Ok(())
}

/// The parts of `alias` if it is one of ours on `server`: the tenant is the last `-` segment and
/// the slug, which may hold `-`, is everything between the kind and the tenant.
pub fn parse_alias(alias: &str, server: &ServerName) -> Option<AliasParts> {
    let (localpart, alias_server) = alias.strip_prefix('#')?.split_once(':')?;
    if alias_server != server.as_str() {
        return None;
    }
    let (kind, rest) = localpart.split_once('-')?;
    let kind = RoomKind::parse(kind).ok()?;
    let (slug, tenant) = rest.rsplit_once('-')?;
    if slug.is_empty() || !slug.bytes().all(is_slug_byte) || !is_tenant_id(tenant) {
        return None;
    }
    Some(AliasParts {
        kind,
        slug: slug.to_owned(),
        tenant: tenant.to_owned(),
    })
}

fn is_slug_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-')
}

/// The tenant ids config accepts: letters, digits and `. _ =`, no `-` (it ends the slug).
fn is_tenant_id(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> &'static ServerName {
        <&ServerName>::try_from("matrix.openmeet.net").unwrap()
    }

    fn parts(kind: RoomKind, slug: &str, tenant: &str) -> AliasParts {
        AliasParts {
            kind,
            slug: slug.to_owned(),
            tenant: tenant.to_owned(),
        }
    }

    #[test]
    fn alias_keeps_the_tenant_ids_case() {
        let alias = alias(RoomKind::Event, "x", "ciTenantB", server()).unwrap();
        assert_eq!(alias, "#event-x-ciTenantB:matrix.openmeet.net");
    }

    #[test]
    fn alias_localpart_is_what_create_room_takes() {
        assert_eq!(
            alias_localpart(RoomKind::Group, "book-club", "lsdf"),
            "group-book-club-lsdf"
        );
    }

    #[test]
    fn parse_takes_the_last_segment_as_tenant_and_keeps_dashes_in_the_slug() {
        assert_eq!(
            parse_alias(
                "#event-summer-party-2026-lsdf:matrix.openmeet.net",
                server()
            ),
            Some(parts(RoomKind::Event, "summer-party-2026", "lsdf"))
        );
    }

    #[test]
    fn parse_reads_back_what_alias_builds() {
        let built = alias(RoomKind::Group, "A.b_c=d-e", "ciTenantB", server()).unwrap();
        assert_eq!(
            parse_alias(built.as_str(), server()),
            Some(parts(RoomKind::Group, "A.b_c=d-e", "ciTenantB"))
        );
    }

    #[test]
    fn parse_rejects_another_server() {
        assert_eq!(parse_alias("#event-x-lsdf:example.org", server()), None);
    }

    #[test]
    fn parse_rejects_an_unknown_kind() {
        assert_eq!(
            parse_alias("#party-x-lsdf:matrix.openmeet.net", server()),
            None
        );
        assert_eq!(
            parse_alias("#Event-x-lsdf:matrix.openmeet.net", server()),
            None
        );
    }

    #[test]
    fn parse_rejects_empty_parts() {
        for alias in [
            "#event--lsdf:matrix.openmeet.net",
            "#event-x-:matrix.openmeet.net",
            "#event-lsdf:matrix.openmeet.net",
            "#event:matrix.openmeet.net",
            "#:matrix.openmeet.net",
            "event-x-lsdf:matrix.openmeet.net",
            "#event-x-lsdf",
        ] {
            assert_eq!(parse_alias(alias, server()), None, "{alias}");
        }
    }

    #[test]
    fn parse_rejects_characters_a_slug_cannot_hold() {
        assert_eq!(
            parse_alias("#event-a b-lsdf:matrix.openmeet.net", server()),
            None
        );
    }

    #[test]
    fn slug_keeps_case_and_allows_dot_underscore_equals_dash() {
        assert_eq!(
            validate_slug(RoomKind::Event, "Summer.Party_2026=x-y", "lsdf", server()),
            Ok(())
        );
    }

    #[test]
    fn empty_slug_is_rejected() {
        let error = validate_slug(RoomKind::Event, "", "lsdf", server()).unwrap_err();
        assert_eq!(error.field, "slug");
    }

    #[test]
    fn slug_with_a_space_is_rejected_with_a_fix() {
        let error = validate_slug(RoomKind::Event, "summer party", "lsdf", server()).unwrap_err();
        assert!(error.message.contains("replace"), "{error}");
    }

    #[test]
    fn slug_with_non_ascii_letters_is_rejected() {
        assert!(validate_slug(RoomKind::Event, "café", "lsdf", server()).is_err());
    }

    #[test]
    fn whole_alias_may_be_255_bytes_but_not_256() {
        // "#event-" + slug + "-lsdf:matrix.openmeet.net" = 7 + slug + 25 bytes.
        let fits = "s".repeat(255 - 32);
        assert_eq!(
            validate_slug(RoomKind::Event, &fits, "lsdf", server()),
            Ok(())
        );
        assert!(alias(RoomKind::Event, &fits, "lsdf", server()).is_ok());

        let error =
            validate_slug(RoomKind::Event, &format!("{fits}s"), "lsdf", server()).unwrap_err();
        assert!(error.message.contains("at most 223 bytes"), "{error}");
    }

    #[test]
    fn tenant_with_a_dash_is_rejected() {
        let error = alias(RoomKind::Event, "x", "a-b", server()).unwrap_err();
        assert_eq!(error.field, "tenant");
    }
}
