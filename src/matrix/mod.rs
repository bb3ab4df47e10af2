//! Us → Synapse: the client-server API, called as the appservice through the as_token, acting as
//! the sender or as a tenant bot by identity assertion (`?user_id=`).
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#identity-assertion>

mod client;
mod connection;
mod direct;
mod error;
#[cfg(test)]
pub(crate) mod memory;
mod messages;
pub(crate) mod preflight;
mod redact;
mod register;
mod reports;
mod rooms;

pub use self::client::{Client, FORWARDED_HEADER};
pub use self::connection::RoomConnection;
pub use self::error::{Error, RetryKind};
pub use self::redact::{SenderPage, TimelineEvent};
pub use self::rooms::RoomState;
