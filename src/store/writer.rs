//! SQLite has one writer at a time. Writers of this process take turns here — where SQLite's own
//! busy handler would have them sleep and poll — and a transaction acknowledgement, which Synapse
//! is waiting for, goes before background work.
//!
//! Before, but not for ever: background work defers to urgent writers for at most
//! [`MAX_DEFERRAL`], then queues for the lock like anyone else (first come, first served). Under
//! a steady stream of acknowledgements there is always one waiting, and the inbox processor, which
//! only ever deferred, did not write a mark for seconds at a time.
//!
//! Every turn is timed: how long each kind waited for it and held it, and the longest hold by
//! each holder (the code that asked for the turn), so that a long turn names what held it.

use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{GaugeVec, HistogramVec};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// The longest background work defers to urgent writers before it queues anyway.
pub const MAX_DEFERRAL: Duration = Duration::from_millis(50);
/// A turn held longer than this is logged with its holder.
const LONG_TURN: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct Writer {
    lock: Arc<Mutex<()>>,
    /// Urgent writers waiting or writing.
    urgent: AtomicUsize,
    /// Notified when the last urgent writer is done.
    calm: Notify,
    /// Where turns are counted, once the process's metrics exist.
    metrics: OnceLock<TurnMetrics>,
    /// The longest hold so far by each holder and kind (a few dozen at most): the gauge is set,
    /// its label written out, only when one is beaten, not at every turn.
    longest: std::sync::Mutex<Vec<(&'static Location<'static>, Kind, Duration)>>,
}

/// The writer's metrics (see `observability/metrics.rs`), labelled by `kind` (`urgent`,
/// `background`) and, for the longest hold, by `holder` (a source location).
#[derive(Clone)]
pub struct TurnMetrics {
    pub waited: HistogramVec,
    pub held: HistogramVec,
    pub longest: GaugeVec,
}

/// What a turn is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Someone waits for it (a transaction's acknowledgement).
    Urgent,
    /// Nobody waits for it now.
    Background,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::Background => "background",
        }
    }
}

/// A turn to write; dropping it lets the next writer in. It owns what it holds, so it can go with
/// the write onto the blocking pool and stay taken until the write is over, even when whoever
/// asked for it has given up meanwhile.
pub struct Turn {
    writer: Arc<Writer>,
    kind: Kind,
    holder: &'static Location<'static>,
    since: Instant,
    // Dropped after the turn is counted (fields drop in order).
    _guard: OwnedMutexGuard<()>,
    _urgent: Option<Urgent>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let held = self.since.elapsed();
        if held >= LONG_TURN {
            tracing::warn!(
                held_ms = held.as_millis() as u64,
                holder = %self.holder,
                kind = self.kind.label(),
                "a write held SQLite's one writer for long; transactions waited meanwhile"
            );
        }
        if let Some(metrics) = self.writer.metrics.get() {
            let kind = self.kind.label();
            metrics
                .held
                .with_label_values(&[kind])
                .observe(held.as_secs_f64());
            let mut longest =
                (self.writer.longest.lock()).unwrap_or_else(std::sync::PoisonError::into_inner);
            let known = longest
                .iter_mut()
                .find(|(holder, known_kind, _)| *holder == self.holder && *known_kind == self.kind);
            let beaten = match known {
                Some((_, _, longest)) if *longest >= held => false,
                Some((_, _, longest)) => {
                    *longest = held;
                    true
                }
                None => {
                    longest.push((self.holder, self.kind, held));
                    true
                }
            };
            if beaten {
                (metrics.longest)
                    .with_label_values(&[kind, &self.holder.to_string()])
                    .set(held.as_secs_f64());
            }
        }
    }
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
    /// Counts turns in `metrics` from now on (once; later calls are ignored).
    pub fn count_in(&self, metrics: TurnMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// A turn for work someone is waiting for, asked for by `holder`.
    pub async fn urgent(self: &Arc<Self>, holder: &'static Location<'static>) -> Turn {
        let asked = Instant::now();
        let urgent = Urgent::new(self);
        let guard = self.lock.clone().lock_owned().await;
        self.turn(Kind::Urgent, holder, asked, guard, Some(urgent))
    }

    /// A turn for background work, asked for by `holder`: taken while no urgent writer waits, or
    /// after [`MAX_DEFERRAL`] in any case.
    pub async fn background(self: &Arc<Self>, holder: &'static Location<'static>) -> Turn {
        let asked = Instant::now();
        let deadline = tokio::time::Instant::from_std(asked + MAX_DEFERRAL);
        loop {
            let calm = self.calm.notified();
            tokio::pin!(calm);
            calm.as_mut().enable();
            if self.urgent.load(Ordering::Acquire) == 0 {
                let guard = self.lock.clone().lock_owned().await;
                if self.urgent.load(Ordering::Acquire) == 0 {
                    return self.turn(Kind::Background, holder, asked, guard, None);
                }
                continue;
            }
            if tokio::time::timeout_at(deadline, calm).await.is_err() {
                break;
            }
        }
        // Deferred long enough: in the queue behind the urgent writers already in it.
        let guard = self.lock.clone().lock_owned().await;
        self.turn(Kind::Background, holder, asked, guard, None)
    }

    fn turn(
        self: &Arc<Self>,
        kind: Kind,
        holder: &'static Location<'static>,
        asked: Instant,
        guard: OwnedMutexGuard<()>,
        urgent: Option<Urgent>,
    ) -> Turn {
        let since = Instant::now();
        if let Some(metrics) = self.metrics.get() {
            metrics
                .waited
                .with_label_values(&[kind.label()])
                .observe((since - asked).as_secs_f64());
        }
        Turn {
            writer: self.clone(),
            kind,
            holder,
            since,
            _guard: guard,
            _urgent: urgent,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Waker};
    use std::time::Duration;

    use super::*;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    fn pending<F: Future>(future: &mut std::pin::Pin<Box<F>>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        future.as_mut().poll(&mut cx).is_pending()
    }

    #[tokio::test]
    async fn background_work_waits_for_urgent_writers() {
        let writer = Arc::new(Writer::default());
        let urgent = writer.urgent(here()).await;
        let mut background = Box::pin(writer.background(here()));
        assert!(
            pending(&mut background),
            "background work ran during an urgent write"
        );
        drop(urgent);
        tokio::time::timeout(Duration::from_secs(1), background)
            .await
            .expect("background work runs once the urgent writer is done");
    }

    /// Under a stream of acknowledgements one is always waiting: background work then defers for
    /// [`MAX_DEFERRAL`] and queues, and an urgent writer that comes after it waits its turn.
    #[tokio::test]
    async fn background_work_defers_for_a_bounded_time_only() {
        let writer = Arc::new(Writer::default());
        let first = writer.urgent(here()).await;
        let mut second = Box::pin(writer.urgent(here()));
        assert!(pending(&mut second));
        let mut background = Box::pin(writer.background(here()));
        assert!(pending(&mut background));
        // Past the deferral (the real clock: only a longer wait could make it late).
        tokio::time::sleep(MAX_DEFERRAL + Duration::from_millis(1)).await;
        assert!(pending(&mut background), "it queues behind the first two");
        let mut third = Box::pin(writer.urgent(here()));
        assert!(pending(&mut third));
        drop(first);
        let second = second.await;
        assert!(pending(&mut background));
        drop(second);
        let background = tokio::time::timeout(Duration::from_secs(1), background)
            .await
            .expect("background work goes before the urgent writer that came after it");
        assert!(
            pending(&mut third),
            "the third waits for the background turn"
        );
        drop(background);
        tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("then the third goes");
    }

    /// A client that gives up while its write waits for the turn (a disconnect, Synapse's 60 s
    /// timeout) drops the waiting future: that must not keep background work out.
    #[tokio::test]
    async fn a_dropped_urgent_waiter_does_not_keep_background_work_out() {
        let writer = Arc::new(Writer::default());
        let holder = writer.urgent(here()).await;
        let mut background = Box::pin(writer.background(here()));
        assert!(pending(&mut background));
        // A second urgent writer queues behind the holder, then its caller gives up.
        let mut waiting = Box::pin(writer.urgent(here()));
        assert!(pending(&mut waiting));
        drop(waiting);
        drop(holder);
        tokio::time::timeout(Duration::from_secs(1), background)
            .await
            .expect("background work gets its turn once the urgent holder is done");
        // And later: a dropped waiter whose turn was already handed over.
        let holder = writer.urgent(here()).await;
        let mut waiting = Box::pin(writer.urgent(here()));
        assert!(pending(&mut waiting));
        drop(holder);
        drop(waiting);
        tokio::time::timeout(Duration::from_secs(1), writer.background(here()))
            .await
            .expect("background work gets its turn after a dropped waiter was handed the lock");
    }

    #[tokio::test]
    async fn urgent_writers_take_turns() {
        let writer = Arc::new(Writer::default());
        let first = writer.urgent(here()).await;
        let mut second = Box::pin(writer.urgent(here()));
        assert!(pending(&mut second));
        drop(first);
        let _second = second.await;
    }

    #[tokio::test]
    async fn turns_are_counted_with_their_holder() {
        let registry = prometheus::Registry::new();
        let metrics = TurnMetrics {
            waited: prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new("waited", "w"),
                &["kind"],
            )
            .unwrap(),
            held: prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new("held", "h"),
                &["kind"],
            )
            .unwrap(),
            longest: prometheus::GaugeVec::new(
                prometheus::Opts::new("longest", "l"),
                &["kind", "holder"],
            )
            .unwrap(),
        };
        registry
            .register(Box::new(metrics.longest.clone()))
            .unwrap();
        let writer = Arc::new(Writer::default());
        writer.count_in(metrics.clone());
        let at = here();
        let turn = writer.background(at).await;
        std::thread::sleep(Duration::from_millis(5));
        drop(turn);
        let longest = metrics
            .longest
            .with_label_values(&["background", &at.to_string()])
            .get();
        assert!(longest >= 0.005, "{longest}");
        assert_eq!(
            metrics
                .held
                .with_label_values(&["background"])
                .get_sample_count(),
            1
        );
        assert_eq!(
            metrics
                .waited
                .with_label_values(&["background"])
                .get_sample_count(),
            1
        );
    }
}
