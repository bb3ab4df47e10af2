//! The message-rate limit, per user and room, kept in memory: a sliding window of the times of
//! the user's admitted messages. Each replica counts the messages it was asked about (the module
//! reaches one replica per request), so with N replicas a user may get up to N times the allowance
//! in the worst case; one replica (or sticky routing) keeps the limit exact.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::config::RateLimit;

/// How often, at most, windows of users who went quiet are swept away (ms).
const SWEEP_EVERY_MS: i64 = 60_000;

#[derive(Default)]
pub struct MessageRates {
    inner: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    /// (room key, user id) → the window's length (ms) and the times (unix ms) of the messages in it.
    by_user: HashMap<(i64, String), (i64, VecDeque<i64>)>,
    last_sweep_ms: i64,
}

impl MessageRates {
    /// Admits a message of `user_id` in room `room_key` at `now_ms` (counting it) unless the user
    /// already sent `limit.messages` within the last `limit.per_seconds`.
    pub fn admit(&self, room_key: i64, user_id: &str, limit: RateLimit, now_ms: i64) -> bool {
        let window_ms = i64::try_from(limit.per_seconds).unwrap_or(i64::MAX / 2) * 1000;
        let mut windows = self.inner.lock().expect("lock is never poisoned");
        if now_ms - windows.last_sweep_ms >= SWEEP_EVERY_MS {
            windows.last_sweep_ms = now_ms;
            (windows.by_user).retain(|_, (window, times)| {
                times.back().is_some_and(|last| now_ms - last < *window)
            });
        }
        let (window, times) = windows
            .by_user
            .entry((room_key, user_id.to_owned()))
            .or_default();
        *window = window_ms;
        while times
            .front()
            .is_some_and(|first| now_ms - first >= window_ms)
        {
            times.pop_front();
        }
        if times.len() >= limit.messages as usize {
            return false;
        }
        times.push_back(now_ms);
        true
    }

    /// How many users' windows are held (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.inner
            .lock()
            .expect("lock is never poisoned")
            .by_user
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_A_MINUTE: RateLimit = RateLimit {
        messages: 10,
        per_seconds: 60,
    };

    #[test]
    fn the_eleventh_message_in_the_window_is_refused_and_admitted_once_it_slides() {
        let rates = MessageRates::default();
        for i in 0..10 {
            assert!(
                rates.admit(1, "@a:s", TEN_A_MINUTE, 1_000 + i),
                "message {i}"
            );
        }
        assert!(!rates.admit(1, "@a:s", TEN_A_MINUTE, 2_000));
        // Another room and another user have their own allowance.
        assert!(rates.admit(2, "@a:s", TEN_A_MINUTE, 2_000));
        assert!(rates.admit(1, "@b:s", TEN_A_MINUTE, 2_000));
        // A refused message is not counted: once the first leaves the window, one more passes.
        assert!(rates.admit(1, "@a:s", TEN_A_MINUTE, 61_000));
        assert!(!rates.admit(1, "@a:s", TEN_A_MINUTE, 61_000));
    }

    #[test]
    fn windows_of_users_who_went_quiet_are_swept() {
        let rates = MessageRates::default();
        rates.admit(1, "@a:s", TEN_A_MINUTE, 100_000);
        rates.admit(1, "@b:s", TEN_A_MINUTE, 150_000);
        assert_eq!(rates.held(), 2);
        rates.admit(1, "@c:s", TEN_A_MINUTE, 200_000);
        assert_eq!(rates.held(), 2, "@a's window ended and was swept");
    }
}
