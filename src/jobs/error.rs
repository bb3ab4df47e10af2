//! Why a job attempt failed, and whether another attempt can help — decided here, where the error
//! is understood, not in the worker.

use crate::matrix::{self, RetryKind};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Homeserver(#[from] matrix::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job cannot succeed as asked; the sentence says what to fix.
    #[error("{0}")]
    Permanent(String),
    /// Another replica is doing this now (making the room); a later attempt finds it done.
    #[error("{0}")]
    Busy(String),
}

impl JobError {
    pub fn retry_kind(&self) -> RetryKind {
        match self {
            Self::Homeserver(error) => error.retry_kind(),
            Self::Store(_) | Self::Busy(_) => RetryKind::Transient,
            Self::Permanent(_) => RetryKind::Permanent,
        }
    }

    /// The sentence stored as the job's `last_error`.
    pub fn sentence(&self) -> String {
        match self {
            Self::Homeserver(
                error @ matrix::Error::Matrix {
                    errcode, message, ..
                },
            ) if error.is_forbidden() => {
                format!(
                    "the homeserver refused ({errcode}: {message}): the tenant's bot lacks the power for this in the room — give it power level 100 there, then retry the job"
                )
            }
            other => other.to_string(),
        }
    }
}
