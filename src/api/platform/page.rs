//! Paging shared by the list calls (`moderation`, `events`): `after` is the id of the last item
//! the caller has (0, or left out: from the start), `limit` how many to answer at most.

use crate::rooms::FieldError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// `after=`: a non-negative id of an `item` ("entry", "event").
pub fn after(value: &str, item: &str) -> Result<i64, FieldError> {
    value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
        FieldError::new(
            "after",
            format!("{value:?} is not an {item} id: give the id of the last {item} you have, or 0"),
        )
    })
}

/// `limit=`: 1 to [`MAX_LIMIT`].
pub fn limit(value: &str) -> Result<i64, FieldError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            FieldError::new(
                "limit",
                format!("{value:?} is not a number from 1 to {MAX_LIMIT}"),
            )
        })
}
