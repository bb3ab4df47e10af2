//! SQLite has one writer at a time. Writers of this process take turns here — where SQLite's own
//! busy handler would have them sleep and poll — and a transaction acknowledgement, which Synapse
//! is waiting for, goes before background work.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, MutexGuard, Notify};

#[derive(Default)]
pub struct Writer {
    lock: Mutex<()>,
    /// Urgent writers waiting or writing.
    urgent: AtomicUsize,
    /// Notified when the last urgent writer is done.
    calm: Notify,
}

/// A turn to write; dropping it lets the next writer in.
pub struct Turn<'a> {
    _guard: MutexGuard<'a, ()>,
    urgent: Option<&'a Writer>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(writer) = self.urgent
            && writer.urgent.fetch_sub(1, Ordering::AcqRel) == 1
        {
            writer.calm.notify_waiters();
        }
    }
}

impl Writer {
    /// A turn for work someone is waiting for.
    pub async fn urgent(&self) -> Turn<'_> {
        self.urgent.fetch_add(1, Ordering::AcqRel);
        Turn {
            _guard: self.lock.lock().await,
            urgent: Some(self),
        }
    }

    /// A turn for background work, taken only while no urgent writer waits.
    pub async fn background(&self) -> Turn<'_> {
        loop {
            let calm = self.calm.notified();
            tokio::pin!(calm);
            calm.as_mut().enable();
            if self.urgent.load(Ordering::Acquire) == 0 {
                let guard = self.lock.lock().await;
                if self.urgent.load(Ordering::Acquire) == 0 {
                    return Turn {
                        _guard: guard,
                        urgent: None,
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

    #[tokio::test]
    async fn urgent_writers_take_turns() {
        let writer = Writer::default();
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
