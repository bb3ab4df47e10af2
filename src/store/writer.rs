//! SQLite has one writer at a time. Writers of this process take turns here — where SQLite's own
//! busy handler would have them sleep and poll — and a transaction acknowledgement, which Synapse
//! is waiting for, goes before background work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

#[derive(Default)]
pub struct Writer {
    lock: Arc<Mutex<()>>,
    /// Urgent writers waiting or writing.
    urgent: AtomicUsize,
    /// Notified when the last urgent writer is done.
    calm: Notify,
}

/// A turn to write; dropping it lets the next writer in. It owns what it holds, so it can go with
/// the write onto the blocking pool and stay taken until the write is over, even when whoever
/// asked for it has given up meanwhile.
pub struct Turn {
    _guard: OwnedMutexGuard<()>,
    _urgent: Option<Urgent>,
}

/// Counts one urgent writer, from before it waits for the lock until its turn ends. Counting in a
/// guard means a waiter that is dropped (a client that disconnected) uncounts itself; counted by
/// hand, it would keep background writers out for good.
struct Urgent(Arc<Writer>);

impl Urgent {
    fn new(writer: &Arc<Writer>) -> Self {
        writer.urgent.fetch_add(1, Ordering::AcqRel);
        Self(writer.clone())
    }
}

impl Drop for Urgent {
    fn drop(&mut self) {
        if self.0.urgent.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.calm.notify_waiters();
        }
    }
}

impl Writer {
    /// A turn for work someone is waiting for.
    pub async fn urgent(self: &Arc<Self>) -> Turn {
        let urgent = Urgent::new(self);
        Turn {
            _guard: self.lock.clone().lock_owned().await,
            _urgent: Some(urgent),
        }
    }

    /// A turn for background work, taken only while no urgent writer waits.
    pub async fn background(&self) -> Turn {
        loop {
            let calm = self.calm.notified();
            tokio::pin!(calm);
            calm.as_mut().enable();
            if self.urgent.load(Ordering::Acquire) == 0 {
                let guard = self.lock.clone().lock_owned().await;
                if self.urgent.load(Ordering::Acquire) == 0 {
                    return Turn {
                        _guard: guard,
                        _urgent: None,
                    };
                }
                continue;
            }
            calm.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn background_work_waits_for_urgent_writers() {
        let writer = Arc::new(Writer::default());
        let urgent = writer.urgent().await;
        let background = tokio::spawn({
            let writer = writer.clone();
            async move {
                let _turn = writer.background().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !background.is_finished(),
            "background work ran during an urgent write"
        );
        drop(urgent);
        tokio::time::timeout(Duration::from_secs(1), background)
            .await
            .expect("background work runs once the urgent writer is done")
            .expect("no panic");
    }

    /// A client that gives up while its write waits for the turn (a disconnect, Synapse's 60 s
    /// timeout) drops the waiting future: that must not keep background work out for good.
    #[tokio::test]
    async fn a_dropped_urgent_waiter_does_not_keep_background_work_out() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};

        let writer = Arc::new(Writer::default());
        let holder = writer.urgent().await;
        let background = tokio::spawn({
            let writer = writer.clone();
            async move {
                let _turn = writer.background().await;
            }
        });
        // A second urgent writer queues behind the holder, then its caller gives up.
        let mut waiting = Box::pin(writer.urgent());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(waiting.as_mut().poll(&mut cx), Poll::Pending));
        drop(waiting);
        drop(holder);
        tokio::time::timeout(Duration::from_secs(1), background)
            .await
            .expect("background work gets its turn once the urgent holder is done")
            .expect("no panic");
        // And later: a dropped waiter whose turn was already handed over.
        let holder = writer.urgent().await;
        let mut waiting = Box::pin(writer.urgent());
        assert!(matches!(waiting.as_mut().poll(&mut cx), Poll::Pending));
        drop(holder);
        drop(waiting);
        tokio::time::timeout(Duration::from_secs(1), writer.background())
            .await
            .expect("background work gets its turn after a dropped waiter was handed the lock");
    }

    #[tokio::test]
    async fn urgent_writers_take_turns() {
        let writer = Arc::new(Writer::default());
        let first = writer.urgent().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(20), writer.urgent())
                .await
                .is_err()
        );
        drop(first);
        let _second = writer.urgent().await;
    }
}
