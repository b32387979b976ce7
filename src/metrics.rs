//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`), so that a Prometheus or OpenTelemetry exporter plugs in: what
//! each stream does, as counters and gauges a dashboard can graph (issue
//! 21). Handles are registered once per stream when it is built; with no
//! recorder installed they are no-ops (one branch per event).
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `ssekit_connection_attempts_total` | counter | `stream` | requests sent (first ones and reconnections) |
//! | `ssekit_connections_opened_total` | counter | `stream` | connections that opened (a 200 event stream, or a JSON answer) |
//! | `ssekit_reconnections_total` | counter | `stream`, `cause` | reconnections scheduled, by the failure that caused them |
//! | `ssekit_events_total` | counter | `stream` | messages yielded |
//! | `ssekit_bytes_total` | counter | `stream` | body bytes received (after decompression) |
//! | `ssekit_stream_state` | gauge | `stream`, `state` | 1 for the state the stream is in, 0 for the others: `connecting`, `open`, `waiting`, `closed` |
//! | `ssekit_last_event_timestamp_seconds` | gauge | `stream` | Unix time of the last message, to a tick of the idle timeout |
//!
//! `cause` is the [`FailureKind`] in snake case: `connect`, `tls`,
//! `redirect`, `invalid_request`, `request`, `response_timeout`,
//! `idle_timeout`, `body`, `eof`, `status`, `content_type`, `encoding`,
//! `too_large`, or `requested` for a reconnection asked for with
//! `reconnect()`.
//!
//! `stream` is the label given with
//! [`EventSourceBuilder::metrics_label`](crate::EventSourceBuilder::metrics_label),
//! by default the stream URL's origin (`https://api.example.com`): a label
//! per URL path could grow without bound.
//!
//! The last event's time is noted at most once per tick of the idle
//! timeout (every eighth of the
//! [idle timeout](crate::EventSourceBuilder::idle_timeout), 37.5 s by
//! default) and when the connection ends, not per event, which would read
//! the clock for every token of an LLM stream. "Seconds since the last
//! event" is `time() - ssekit_last_event_timestamp_seconds` in PromQL,
//! exact to that tick.

use std::time::SystemTime;

use metrics::{counter, gauge, Counter, Gauge, SharedString};

use crate::policy::FailureKind;

/// The states of `ssekit_stream_state`.
const STATES: [&str; 4] = ["connecting", "open", "waiting", "closed"];

/// One stream's metric handles.
pub(crate) struct Metrics {
    label: SharedString,
    attempts: Counter,
    opened: Counter,
    events: Counter,
    bytes: Counter,
    last_event: Gauge,
    states: [Gauge; 4],
    state: Option<usize>,
    /// Messages since the last event time was noted.
    unnoted: bool,
}

impl Metrics {
    pub(crate) fn new(label: String) -> Self {
        let label = SharedString::from(label);
        let states = STATES.map(
            |state| gauge!("ssekit_stream_state", "stream" => label.clone(), "state" => state),
        );
        Metrics {
            attempts: counter!("ssekit_connection_attempts_total", "stream" => label.clone()),
            opened: counter!("ssekit_connections_opened_total", "stream" => label.clone()),
            events: counter!("ssekit_events_total", "stream" => label.clone()),
            bytes: counter!("ssekit_bytes_total", "stream" => label.clone()),
            last_event: gauge!("ssekit_last_event_timestamp_seconds", "stream" => label.clone()),
            states,
            state: None,
            unnoted: false,
            label,
        }
    }

    /// Sets `ssekit_stream_state`: 1 for `state`, 0 for the one before.
    fn enter(&mut self, state: usize) {
        if self.state == Some(state) {
            return;
        }
        if let Some(old) = self.state.replace(state) {
            self.states[old].set(0.0);
        }
        self.states[state].set(1.0);
    }

    pub(crate) fn attempt(&mut self) {
        self.attempts.increment(1);
        self.enter(0);
    }

    pub(crate) fn opened(&mut self) {
        self.opened.increment(1);
        self.enter(1);
    }

    /// A reconnection was scheduled after `cause` (`None`: asked for).
    pub(crate) fn reconnection(&mut self, cause: Option<FailureKind>) {
        self.note_last_event();
        let cause = cause.map_or("requested", kind_name);
        counter!("ssekit_reconnections_total", "stream" => self.label.clone(), "cause" => cause)
            .increment(1);
        self.enter(2);
    }

    pub(crate) fn closed(&mut self) {
        self.note_last_event();
        self.enter(3);
    }

    #[inline]
    pub(crate) fn event(&mut self) {
        self.events.increment(1);
        self.unnoted = true;
    }

    #[inline]
    pub(crate) fn bytes(&self, n: usize) {
        self.bytes.increment(n as u64);
    }

    /// Notes the time of the last message, if messages came since the last
    /// note (called on idle ticks and when a connection ends).
    pub(crate) fn note_last_event(&mut self) {
        if std::mem::take(&mut self.unnoted) {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.last_event.set(now.as_secs_f64());
        }
    }
}

/// `kind` in snake case, for the `cause` label.
fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Connect => "connect",
        FailureKind::Tls => "tls",
        FailureKind::Redirect => "redirect",
        FailureKind::InvalidRequest => "invalid_request",
        FailureKind::Request => "request",
        FailureKind::ResponseTimeout => "response_timeout",
        FailureKind::IdleTimeout => "idle_timeout",
        FailureKind::Body => "body",
        FailureKind::Eof => "eof",
        FailureKind::Status => "status",
        FailureKind::ContentType => "content_type",
        FailureKind::Encoding => "encoding",
        FailureKind::TooLarge => "too_large",
    }
}
