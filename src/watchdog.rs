//! The idle watchdog: one thread per process that notices silent
//! connections, so that an open stream keeps no Tokio timer.
//!
//! Any timer registered with a Tokio runtime makes its driver do work each
//! time the runtime waits for I/O (the timer wheel consulted, the clock
//! read): about 190 instructions per wait under callgrind, which on a stream
//! of one small event per HTTP chunk is a wait per event. The idle timeout
//! needs no precision (it is checked eight times per period), so open
//! streams hand it to this thread instead: the stream sets a flag when bytes
//! arrive (one relaxed store per chunk, no clock read), and the thread,
//! every eighth of each stream's period, counts the ticks without bytes and
//! wakes the stream's task once the count reaches eight.
//!
//! The thread works on the real clock, so it is used only when Tokio's clock
//! moves: under a paused test clock (`tokio::time::pause`) the stream falls
//! back to a Tokio timer, which the paused clock drives. The thread is
//! started on first use, named `ssekit-idle`, and sleeps while nothing is
//! due; if it cannot be started, streams fall back to Tokio timers too.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;

use crate::wake;

/// Quiet ticks in a row that make a connection idle: the silence is noticed
/// between the period and an eighth of it later.
pub(crate) const IDLE_TICKS: u32 = 8;

/// The shortest tick: a period under 8 ms is checked every millisecond.
const MIN_TICK: Duration = Duration::from_millis(1);

/// What a stream and the thread share.
#[derive(Default)]
struct Shared {
    /// Bytes arrived since the last tick.
    activity: AtomicBool,
    /// `IDLE_TICKS` quiet ticks in a row were counted; cleared when the
    /// next connection opens.
    expired: AtomicBool,
    /// The stream is gone: the thread forgets it at its next tick.
    dropped: AtomicBool,
    /// Ticks so far (wrapping), for the `metrics` feature's note of the last
    /// event's time.
    ticks: AtomicU32,
    waker: AtomicWaker,
}

/// A stream's handle on the watchdog, kept for the stream's life and reused
/// by each of its connections.
pub(crate) struct IdleWatch {
    shared: Arc<Shared>,
    /// The waker last given to `shared.waker`: while the task is the same,
    /// it is not registered again.
    registered: Option<Waker>,
}

impl IdleWatch {
    /// Watches a stream whose idle timeout is `idle`, from its first
    /// [`open`](Self::open) on. `None` when the watchdog cannot serve it: the
    /// Tokio clock is paused (tests), or the thread could not be started.
    pub(crate) fn new(idle: Duration) -> Option<IdleWatch> {
        if clock_is_paused() {
            return None;
        }
        let dog = watchdog()?;
        let shared = Arc::new(Shared::default());
        let period = (idle / IDLE_TICKS).max(MIN_TICK);
        dog.add(period, shared.clone());
        Some(IdleWatch {
            shared,
            registered: None,
        })
    }

    /// A connection opened: the silence is counted from now. (Between
    /// connections the watch may expire unseen: nothing polls it then, and
    /// this clears it.)
    pub(crate) fn open(&mut self) {
        self.shared.activity.store(true, Ordering::Relaxed);
        self.shared.expired.store(false, Ordering::Release);
        // The thread took the waker when it expired the watch.
        self.registered = None;
    }

    /// Bytes arrived.
    #[inline]
    pub(crate) fn touch(&self) {
        self.shared.activity.store(true, Ordering::Relaxed);
    }

    /// Whether the connection has been silent for the whole period; if not,
    /// the task of `cx` is woken when it has been.
    #[inline]
    pub(crate) fn poll_expired(&mut self, cx: &Context<'_>) -> bool {
        if self.shared.expired.load(Ordering::Acquire) {
            return true;
        }
        if wake::remember(&mut self.registered, cx.waker()) {
            self.shared.waker.register(cx.waker());
            // The thread may have expired the watch before it saw the waker.
            return self.shared.expired.load(Ordering::Acquire);
        }
        false
    }

    /// Ticks counted so far (wrapping): a change says a tick passed.
    #[cfg(feature = "metrics")]
    pub(crate) fn ticks(&self) -> u32 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for IdleWatch {
    fn drop(&mut self) {
        self.shared.dropped.store(true, Ordering::Relaxed);
        // The thread forgets the entry at its next tick, up to an eighth of
        // the period later; the task's waker (which keeps the task's memory
        // alive) is released now.
        drop(self.shared.waker.take());
    }
}

impl std::fmt::Debug for IdleWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleWatch")
            .field("expired", &self.shared.expired.load(Ordering::Relaxed))
            .finish()
    }
}

/// Whether Tokio's clock is paused: two readings in a row are then equal
/// (the paused clock moves only while the runtime waits), while the real
/// clock's nanoseconds move between them. A coarse real clock that reads
/// the same twice is taken for paused, which only costs the Tokio timer.
fn clock_is_paused() -> bool {
    let first = tokio::time::Instant::now();
    first == tokio::time::Instant::now()
}

/// One watched stream, in the thread's queue.
struct Entry {
    due: Instant,
    period: Duration,
    quiet: u32,
    shared: Arc<Shared>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: the heap's top is the earliest due.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.due.cmp(&self.due)
    }
}

struct Watchdog {
    queue: Mutex<BinaryHeap<Entry>>,
    /// Signalled when an entry due earlier than the thread's wait arrives.
    changed: Condvar,
}

/// The process's watchdog, its thread started on first use; `None` if the
/// thread could not be started.
fn watchdog() -> Option<&'static Watchdog> {
    static DOG: OnceLock<Option<&'static Watchdog>> = OnceLock::new();
    *DOG.get_or_init(|| {
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            queue: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("ssekit-idle".into())
            .stack_size(64 * 1024)
            .spawn(move || dog.run())
        {
            Ok(_) => Some(dog),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the idle watchdog thread; using Tokio timers");
                None
            }
        }
    })
}

impl Watchdog {
    fn add(&self, period: Duration, shared: Arc<Shared>) {
        let due = later(Instant::now(), period);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = queue.peek().is_none_or(|top| due < top.due);
        queue.push(Entry {
            due,
            period,
            quiet: 0,
            shared,
        });
        drop(queue);
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        let mut wake = Vec::new();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            tick_due(&mut queue, now, &mut wake);
            if !wake.is_empty() {
                drop(queue);
                wake.drain(..).for_each(Waker::wake);
                queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            queue = match queue.peek() {
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(top) => {
                    let wait = top.due.saturating_duration_since(now);
                    match self.changed.wait_timeout(queue, wait) {
                        Ok((queue, _)) => queue,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
        }
    }
}

/// Ticks every entry due by `now`, forgets those whose stream is gone, and
/// collects the wakers of connections that just became idle.
fn tick_due(queue: &mut BinaryHeap<Entry>, now: Instant, wake: &mut Vec<Waker>) {
    while queue.peek().is_some_and(|top| top.due <= now) {
        let mut entry = queue.pop().expect("peeked");
        if entry.shared.dropped.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(waker) = entry.tick(now) {
            wake.push(waker);
        }
        queue.push(entry);
    }
}

/// Counts one idle tick, `active` if bytes came since the last: true, and
/// the count starts again, once `IDLE_TICKS` quiet ticks came in a row. The
/// count of both the watchdog and the Tokio-timer fallback in `source.rs`.
pub(crate) fn quiet_tick(quiet: &mut u32, active: bool) -> bool {
    if active {
        *quiet = 0;
        return false;
    }
    *quiet += 1;
    if *quiet < IDLE_TICKS {
        return false;
    }
    *quiet = 0;
    true
}

/// `at + d`, saturated about 30 years ahead instead of overflowing (as Tokio
/// does for its own "never"): a timer or tick for `Duration::MAX` never
/// fires.
pub(crate) fn later(at: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    at.checked_add(d.min(FAR)).unwrap_or(at)
}

impl Entry {
    /// One tick: counts it quiet or not, schedules the next, and returns the
    /// waker to wake if the connection just became idle.
    fn tick(&mut self, now: Instant) -> Option<Waker> {
        // The next tick one period after this one was due, or after now if
        // the thread fell behind.
        self.due = later(self.due, self.period).max(now);
        let shared = &self.shared;
        shared.ticks.fetch_add(1, Ordering::Relaxed);
        let active = shared.activity.swap(false, Ordering::Relaxed)
            || shared.expired.load(Ordering::Relaxed);
        if !quiet_tick(&mut self.quiet, active) {
            return None;
        }
        shared.expired.store(true, Ordering::Release);
        shared.waker.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::CountingWake;

    fn entry(period_ms: u64) -> (Entry, Arc<Shared>, Instant) {
        let shared = Arc::new(Shared::default());
        let now = Instant::now();
        let entry = Entry {
            due: now,
            period: Duration::from_millis(period_ms),
            quiet: 0,
            shared: shared.clone(),
        };
        (entry, shared, now)
    }

    #[test]
    fn eight_quiet_ticks_expire_and_wake_once() {
        let (mut e, shared, now) = entry(10);
        let count = CountingWake::new();
        shared.waker.register(&Waker::from(count.clone()));
        for i in 1..IDLE_TICKS {
            assert!(e.tick(now).is_none(), "tick {i}");
        }
        let waker = e.tick(now).expect("the eighth quiet tick wakes");
        waker.wake();
        assert!(shared.expired.load(Ordering::SeqCst));
        assert_eq!(count.count(), 1);
        // Expired: later ticks wake no one until the next connection.
        for _ in 0..2 * IDLE_TICKS {
            assert!(e.tick(now).is_none());
        }
    }

    #[test]
    fn bytes_restart_the_count() {
        let (mut e, shared, now) = entry(10);
        for _ in 0..IDLE_TICKS - 1 {
            assert!(e.tick(now).is_none());
        }
        shared.activity.store(true, Ordering::SeqCst);
        assert!(e.tick(now).is_none());
        for _ in 0..IDLE_TICKS - 1 {
            e.tick(now);
            assert!(!shared.expired.load(Ordering::SeqCst));
        }
        e.tick(now);
        assert!(shared.expired.load(Ordering::SeqCst));
    }

    #[test]
    fn a_dropped_stream_is_forgotten_at_its_next_tick() {
        let (kept, _keep, now) = entry(10);
        let (mut gone, gone_shared, _) = entry(10);
        gone.due = now;
        let mut queue = BinaryHeap::from([kept, gone]);
        gone_shared.dropped.store(true, Ordering::SeqCst);
        let mut wake = Vec::new();
        tick_due(&mut queue, now, &mut wake);
        assert_eq!(queue.len(), 1);
        assert!(!Arc::ptr_eq(&queue.peek().unwrap().shared, &gone_shared));
        // Entries not yet due are left alone.
        tick_due(&mut queue, now, &mut wake);
        assert_eq!(queue.len(), 1);
        assert!(wake.is_empty());
    }

    #[test]
    fn dropping_a_watch_releases_its_waker_at_once() {
        let shared = Arc::new(Shared::default());
        let count = CountingWake::new();
        shared.waker.register(&Waker::from(count.clone()));
        assert_eq!(
            Arc::strong_count(&count),
            2,
            "the registered waker holds the task"
        );
        drop(IdleWatch {
            shared: shared.clone(),
            registered: None,
        });
        assert!(shared.dropped.load(Ordering::SeqCst));
        assert_eq!(
            Arc::strong_count(&count),
            1,
            "the waker was kept after the drop"
        );
    }

    #[test]
    fn an_endless_timeout_does_not_overflow() {
        // `idle_timeout(Some(Duration::MAX))`: each tick is due about 30
        // years after the last, with no overflow panic.
        let (mut e, _shared, now) = entry(0);
        e.period = Duration::MAX / IDLE_TICKS;
        for _ in 0..2 * IDLE_TICKS {
            let due = e.due;
            e.tick(due);
            assert!(e.due > due + Duration::from_secs(86_400 * 365));
        }
        assert!(e.due > now);
    }

    #[test]
    fn ticks_do_not_drift_and_catch_up_when_late() {
        let (mut e, _shared, now) = entry(10);
        e.tick(now);
        assert_eq!(e.due, now + Duration::from_millis(10));
        let late = now + Duration::from_secs(1);
        e.tick(late);
        assert_eq!(e.due, late);
    }
}
