//! What a stream is doing, watchable from another task without consuming
//! its events (issue 21): the state with when it began, the current
//! reconnection's delay and cause, and counts. A health endpoint reads it
//! through [`Handle::status`](crate::Handle::status) ("stream X has been
//! reconnecting for 4 minutes"); [`StatusWatch`] waits for each change.
//! Nothing is recorded for a stream that has no [`Handle`](crate::Handle).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::Error;

/// The state of a stream, as its [`Status`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamState {
    /// Not polled yet.
    Idle,
    /// A request is on its way; `attempt` is the reconnection attempt in a
    /// row (0 for the first request and after a healthy connection).
    Connecting {
        /// The reconnection attempt in a row.
        attempt: u32,
    },
    /// A connection is open.
    Open,
    /// Waiting `delay` before reconnection attempt `attempt`, because of
    /// `cause`.
    Waiting {
        /// The reconnection attempt this wait leads to.
        attempt: u32,
        /// How long the wait is.
        delay: Duration,
        /// Why the previous connection ended or failed.
        cause: Arc<Error>,
    },
    /// Ended: `error` is the terminal error's message with its causes
    /// (the error itself goes to the stream's reader), `None` for a clean
    /// end (`close()`, 204, an end marker, a complete answer, or the stream
    /// dropped).
    Closed {
        /// The terminal error's message, if the stream failed.
        error: Option<String>,
    },
}

/// A snapshot of what a stream is doing; from
/// [`Handle::status`](crate::Handle::status) or a [`StatusWatch`].
///
/// Times are on Tokio's clock ([`tokio::time::Instant`]), so they follow a
/// paused clock in tests.
#[derive(Debug, Clone)]
pub struct Status {
    state: StreamState,
    since: Instant,
    down_since: Option<Instant>,
    connections: u64,
    reconnections: u64,
    events: u64,
    last_event: Option<Instant>,
}

impl Status {
    /// The current state.
    pub fn state(&self) -> &StreamState {
        &self.state
    }

    /// When the stream entered its current state.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When the stream last stopped being open (or was created, if it never
    /// opened); `None` while a connection is open. `down_since()` long ago
    /// and a `Waiting` state: the stream has been reconnecting that long.
    pub fn down_since(&self) -> Option<Instant> {
        self.down_since
    }

    /// Connections that opened so far.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Reconnections scheduled so far (one per `Waiting`).
    pub fn reconnections(&self) -> u64 {
        self.reconnections
    }

    /// Messages yielded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// When the last message was yielded; `None` before the first.
    pub fn last_event(&self) -> Option<Instant> {
        self.last_event
    }
}

/// Waits for each change of a stream's [`Status`]; from
/// [`Handle::watch`](crate::Handle::watch).
///
/// Only changes of state wake it (connecting, open, waiting, closed), not
/// each event: read [`Status::events`] when it wakes, or poll
/// [`Handle::status`](crate::Handle::status). Like a
/// [`tokio::sync::watch`] channel, it keeps the latest status: a watcher
/// that falls behind sees the newest state, not each one it missed
/// ([`Status::reconnections`] and [`Status::connections`] count them).
///
/// ```no_run
/// # async fn run() -> Result<(), ssekit::Error> {
/// use ssekit::{EventSource, StreamState};
///
/// let mut es = EventSource::new("http://127.0.0.1:8080/feed")?;
/// let mut watch = es.handle().watch();
/// tokio::spawn(async move {
///     while let Some(status) = watch.changed().await {
///         if let StreamState::Waiting { delay, cause, .. } = status.state() {
///             eprintln!("feed down since {:?}: retrying in {delay:?} ({cause})",
///                 status.down_since());
///         }
///     }
/// });
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct StatusWatch {
    rx: watch::Receiver<Status>,
    shared: Arc<Reporter>,
    ended: bool,
}

impl StatusWatch {
    /// The next status after a change of state; `None` after the `Closed`
    /// one has been returned (the stream ended, was closed or dropped).
    pub async fn changed(&mut self) -> Option<Status> {
        if self.ended {
            return None;
        }
        self.rx.changed().await.ok()?;
        let status = self.shared.snapshot(&self.rx.borrow_and_update());
        self.ended = matches!(status.state, StreamState::Closed { .. });
        Some(status)
    }

    /// The current status, as [`Handle::status`](crate::Handle::status).
    pub fn status(&self) -> Status {
        self.shared.snapshot(&self.rx.borrow())
    }
}

/// The stream's side: the state, and counters updated per event without
/// waking watchers. Exists only once a `Handle` was made.
pub(crate) struct Reporter {
    tx: watch::Sender<Status>,
    events: AtomicU64,
    /// Nanoseconds after `epoch` of the last event, plus one (0: none).
    last_event: AtomicU64,
    epoch: Instant,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    pub(crate) fn new(state: StreamState, connections: u64) -> Self {
        let now = Instant::now();
        let open = matches!(state, StreamState::Open);
        let (tx, _) = watch::channel(Status {
            state,
            since: now,
            down_since: (!open).then_some(now),
            connections,
            reconnections: 0,
            events: 0,
            last_event: None,
        });
        Reporter {
            tx,
            events: AtomicU64::new(0),
            last_event: AtomicU64::new(0),
            epoch: now,
        }
    }

    /// Enters `state` and wakes the watchers.
    pub(crate) fn set(&self, state: StreamState) {
        let now = Instant::now();
        self.tx.send_modify(|s| {
            let was_open = matches!(s.state, StreamState::Open);
            match &state {
                StreamState::Open => {
                    s.connections += 1;
                    s.down_since = None;
                }
                StreamState::Waiting { .. } => s.reconnections += 1,
                _ => {}
            }
            if was_open && !matches!(state, StreamState::Open) {
                s.down_since = Some(now);
            }
            s.state = state;
            s.since = now;
        });
    }

    /// A message was yielded.
    pub(crate) fn event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let at = Instant::now().saturating_duration_since(self.epoch);
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX - 1);
        self.last_event.store(nanos + 1, Ordering::Relaxed);
    }

    pub(crate) fn subscribe(self: &Arc<Self>) -> StatusWatch {
        StatusWatch {
            rx: self.tx.subscribe(),
            shared: self.clone(),
            ended: false,
        }
    }

    /// `status` with the per-event counters filled in.
    fn snapshot(&self, status: &Status) -> Status {
        let mut s = status.clone();
        s.events = self.events.load(Ordering::Relaxed);
        let last = self.last_event.load(Ordering::Relaxed);
        s.last_event = (last != 0).then(|| self.epoch + Duration::from_nanos(last - 1));
        s
    }

    pub(crate) fn status(&self) -> Status {
        self.snapshot(&self.tx.borrow())
    }
}
