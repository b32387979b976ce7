//! The reconnecting client: a state machine around [`SseCodec`]. What a
//! failure means is decided by the retry policy (`policy.rs`, `retry.rs`),
//! which this module calls; here live the connection states, timers and
//! redirects.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use futures_core::{FusedStream, Stream};
use futures_util::task::AtomicWaker;
use http_body::Body as _;
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::builder::{Attempt, Config};
use crate::error::{Kind, NotResent, Response, ERROR_BODY_LIMIT};
use crate::event::{OpenParts, Str};
use crate::gate::Admission;
use crate::policy::Failure;
use crate::policy::FailureKind;
use crate::pool::Lease;
use crate::redact::{redact_url, strip_credentials, Redacted};
use crate::retry::{Retrier, Verdict};
use crate::status::{Reporter, Status, StatusWatch, StreamState};
use crate::wake;
use crate::{
    add_sse_headers, Error, Event, EventSourceBuilder, Frame, MessageEvent, Open, Reconnect,
    SseCodec, SLOW_HEAD_WARNING,
};

use crate::watchdog::{later, quiet_tick, IdleWatch, IDLE_TICKS};

/// How long the body of an error response is read, at most, for the excerpt
/// kept in the error.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most redirects followed in one attempt (as browsers and reqwest).
const MAX_REDIRECTS: usize = 10;

/// How long a stream on a pooled client waits for another stream's first
/// connection to the same HTTPS origin before connecting anyway (see
/// `gate.rs`): a handshake and a response head take milliseconds; a head
/// withheld by a buffering proxy must not hold every stream back.
const GATE_WAIT: Duration = Duration::from_secs(3);

type ResponseFuture = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>;

/// Runs `$body` with `$m` the stream's metric handles (feature `metrics`);
/// nothing without the feature.
macro_rules! metric {
    ($self:ident, $m:ident => $body:expr) => {
        #[cfg(feature = "metrics")]
        {
            let $m = &mut $self.metrics;
            $body;
        }
    };
}

/// A server-sent events stream that reconnects.
///
/// `EventSource` is a [`Stream`] of `Result<`[`Event`]`, `[`Error`]`>`. It
/// sends its request when first polled, yields an [`Event::Open`] for each
/// connection that opens and an [`Event::Message`] for each event, and
/// reconnects by itself after transient failures, sending `Last-Event-ID` so
/// the server can resume. An `Err` is terminal: after it, and after
/// [`close`](Self::close) or a `204 No Content`, the stream yields `None` for
/// ever (it is a [`FusedStream`]) and holds no connection or timer.
///
/// # Example
///
/// ```no_run
/// use futures::StreamExt;
/// use ssekit::{Event, EventSource};
///
/// # async fn run() -> Result<(), ssekit::Error> {
/// let mut es = EventSource::new("http://127.0.0.1:8080/events")?;
/// while let Some(event) = es.next().await {
///     match event? {
///         Event::Open(open) => println!("connected ({})", open.status()),
///         Event::Message(m) => println!("{}: {}", m.event(), m.data()),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Connection lifecycle
///
/// | state | on | next state |
/// |---|---|---|
/// | `Start` | polled | `Connecting` (request sent) |
/// | `Connecting` | 200 `text/event-stream` | `Open`, yields [`Event::Open`] |
/// | `Connecting` | 204 | `Closed`, yields `None` |
/// | `Connecting` | 3xx with a usable `Location` | `Connecting` to the new URL |
/// | `Connecting` | any other status, wrong media type | `ErrorBody`, then what the [retry policy](crate::RetryPolicy) decides |
/// | `Connecting`, `Open` | network error, response or idle timeout, end of body | what the retry policy decides |
/// | `Open` | event over the size limit, an [error event](EventSourceBuilder::error_on_event) | `Closed` with an `Err` |
/// | `Waiting` | delay over | `Start` |
/// | any | policy says stop, attempt limit or time budget reached, or non-GET after events | `Closed` with an `Err` |
/// | any | [`close`](Self::close) | `Closed` |
/// | any but `Closed` | [`reconnect`](Self::reconnect) | `Start` |
///
/// Redirects are followed by the stream when its client comes from a
/// [`ClientPool`](crate::ClientPool) (the default) or does not follow them
/// itself (`reqwest::redirect::Policy::none()`): up to 10 per attempt,
/// `http` and `https` only, a loop ends the stream, and credential headers
/// are dropped when a hop leaves the origin of the request as sent (and
/// stay dropped). Every reconnection goes back to the original URL.
///
/// # Cancellation and dropping
///
/// [`StreamExt::next`](futures_util::StreamExt::next) is cancel-safe: all state
/// lives in the `EventSource`, so using it in `tokio::select!` loses no
/// event. Dropping the `EventSource` closes its connection and cancels its
/// timers at once.
///
/// # Runtime
///
/// The stream must be polled inside a Tokio runtime with time enabled (it
/// uses reqwest and Tokio timers). Each connection is polled by the task that
/// polls the stream.
pub struct EventSource {
    config: Config,
    /// This stream's place on a pooled client; given back when it ends.
    lease: Option<Lease>,
    codec: SseCodec,
    state: State,
    /// The response or idle deadline while connecting, the idle ticks while
    /// open, the reconnection delay while waiting. Created on first use and
    /// reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// The idle timeout of open connections, on the process's watchdog
    /// thread (no Tokio timer while open); `None` under a paused Tokio
    /// clock, where `timer` ticks instead.
    watch: Option<IdleWatch>,
    /// The watch's tick count when last seen, to note the last event's time
    /// once per tick.
    #[cfg(feature = "metrics")]
    seen_ticks: u32,
    /// Bytes arrived since the idle timer last ticked (Tokio timer only).
    /// Setting a flag per chunk costs nothing; reading the clock per chunk
    /// showed in profiles.
    activity: bool,
    /// Idle ticks in a row without bytes; see [`IDLE_TICKS`].
    quiet_ticks: u32,
    /// The waker the idle timer was last polled with: while it is the same
    /// and the timer has not fired, the timer need not be polled again.
    idle_waker: Option<std::task::Waker>,
    retrier: Retrier,
    /// When the current connection opened (one clock read per connection).
    opened_at: Option<Instant>,
    /// Why the previous connection ended, for the request hook.
    last_failure: Option<Arc<Error>>,
    connections: u64,
    delivered_any: bool,
    connection_delivered: bool,
    /// The last event ID when the current connection opened: a connection
    /// that ends with another one made progress (SPEC rule 23).
    id_at_open: Str,
    /// A non-GET answer carried an event ID and
    /// [`resume_by_get`](EventSourceBuilder::resume_by_get) is on: every
    /// further request is a GET.
    resumed: bool,
    /// Waiting at the pooled client's gate for another stream's first
    /// connection (bounded by [`GATE_WAIT`]).
    gate_waiting: bool,
    control: Option<Arc<Control>>,
    /// An event to yield on the next poll (a requested reconnection; rare,
    /// so boxed rather than kept inline in every stream).
    pending: Option<Box<Event>>,
    /// The end marker was seen.
    finished: bool,
    /// The stream's metric handles (feature `metrics`).
    #[cfg(feature = "metrics")]
    metrics: Box<crate::metrics::Metrics>,
}

enum State {
    Start,
    Connecting(Box<Connecting>),
    Open(reqwest::Body),
    /// A JSON answer being read whole ([`EventSourceBuilder::accept_json`]).
    Json(Box<JsonBody>),
    ErrorBody(Box<ErrorBody>),
    Waiting,
    Closed,
}

/// A request on its way, with what following its redirects needs.
struct Connecting {
    response: ResponseFuture,
    /// A copy of the request as sent, for the next redirect hop; `None`
    /// when the client follows redirects itself, or the body cannot be
    /// copied.
    request: Option<reqwest::Request>,
    /// The URLs requested so far in this attempt (for loops and the limit).
    visited: Vec<Url>,
    /// Which timeout the deadline is: the response timeout, or the idle
    /// timeout when it is shorter.
    deadline: Option<Kind>,
    /// When the deadline falls; the timer first fires at
    /// [`SLOW_HEAD_WARNING`] to log that the head is late (`slow_warning`).
    deadline_at: Option<Instant>,
    slow_warning: bool,
}

/// A JSON answer ([`EventSourceBuilder::accept_json`]), read to its end.
struct JsonBody {
    body: reqwest::Body,
    collected: bytes::BytesMut,
}

/// An unacceptable response whose body is being read for the error.
struct ErrorBody {
    body: reqwest::Body,
    response: Response,
    collected: Vec<u8>,
    content_type: bool,
}

/// The current state of an [`EventSource`], as [`EventSource::ready_state`]
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadyState {
    /// A request is being made (or about to be).
    Connecting,
    /// A connection is open and events may arrive.
    Open,
    /// Waiting for the delay before the next attempt.
    Reconnecting,
    /// Ended: closed, 204, or a terminal error.
    Closed,
}

const CLOSE: u8 = 1;
const RECONNECT: u8 = 2;

/// Requests made through a [`Handle`], seen by the stream on its next poll.
struct Control {
    flags: AtomicU8,
    waker: AtomicWaker,
    status: Arc<Reporter>,
}

/// Closes or restarts an [`EventSource`] from another task, while the
/// stream itself is being polled elsewhere; made by
/// [`EventSource::handle`]. Cloneable; does not keep the stream alive.
#[derive(Clone)]
pub struct Handle {
    control: Arc<Control>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    fn request(&self, flag: u8) {
        self.control.flags.fetch_or(flag, Ordering::AcqRel);
        self.control.waker.wake();
    }

    /// Closes the stream: its next poll yields `None` and drops the
    /// connection.
    pub fn close(&self) {
        self.request(CLOSE);
    }

    /// Drops the current connection and reconnects at once, as
    /// [`EventSource::reconnect`] does.
    pub fn reconnect(&self) {
        self.request(RECONNECT);
    }

    /// What the stream is doing now, without consuming its events: its
    /// state and since when, the current reconnection's delay and cause,
    /// since when it has been down, and counts of connections,
    /// reconnections and messages. Recorded from the moment the first
    /// `Handle` was made.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), ssekit::Error> {
    /// use std::time::Duration;
    /// use ssekit::{EventSource, StreamState};
    ///
    /// let mut es = EventSource::new("http://127.0.0.1:8080/feed")?;
    /// let handle = es.handle();
    /// // In a health endpoint:
    /// let status = handle.status();
    /// let down_for = status.down_since().map(|t| t.elapsed()).unwrap_or_default();
    /// if matches!(status.state(), StreamState::Waiting { .. }) && down_for > Duration::from_secs(240) {
    ///     println!("feed has been reconnecting for {down_for:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Status {
        self.control.status.status()
    }

    /// Waits for each change of the stream's state; see [`StatusWatch`].
    pub fn watch(&self) -> StatusWatch {
        self.control.status.subscribe()
    }
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("url", &Redacted(&self.config.url))
            .field("method", &self.config.method)
            .field("state", &self.ready_state())
            .field("last_event_id", &self.last_event_id())
            .field("attempt", &self.retrier.attempt())
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// A `GET` stream with the defaults of [`EventSourceBuilder`].
    ///
    /// # Errors
    ///
    /// See [`EventSourceBuilder::build`].
    pub fn new(url: impl AsRef<str>) -> Result<EventSource, Error> {
        EventSource::builder(url).build()
    }

    /// A builder to configure the request and the reconnection policy.
    pub fn builder(url: impl AsRef<str>) -> EventSourceBuilder {
        EventSourceBuilder::new(url.as_ref())
    }

    /// A builder for a `POST` stream, as LLM APIs use: set the body with
    /// [`body`](EventSourceBuilder::body) (or `json` with the `json`
    /// feature). Such a request is not re-sent once events have arrived
    /// (see [`resend_after_events`](EventSourceBuilder::resend_after_events)).
    pub fn post(url: impl AsRef<str>) -> EventSourceBuilder {
        EventSourceBuilder::new(url.as_ref()).method(Method::POST)
    }

    pub(crate) fn from_config(
        config: Config,
        lease: Option<Lease>,
        max_event_size: usize,
        last_event_id: &str,
        #[cfg(feature = "metrics")] metrics_label: String,
    ) -> Self {
        let mut codec = SseCodec::new().with_max_event_size(max_event_size);
        codec.set_last_event_id(last_event_id);
        let retrier = Retrier::new(config.policy());
        EventSource {
            config,
            lease,
            codec,
            state: State::Start,
            timer: None,
            watch: None,
            #[cfg(feature = "metrics")]
            seen_ticks: 0,
            activity: false,
            quiet_ticks: 0,
            idle_waker: None,
            retrier,
            opened_at: None,
            last_failure: None,
            connections: 0,
            delivered_any: false,
            connection_delivered: false,
            id_at_open: Str::EMPTY,
            resumed: false,
            gate_waiting: false,
            control: None,
            pending: None,
            finished: false,
            #[cfg(feature = "metrics")]
            metrics: Box::new(crate::metrics::Metrics::new(metrics_label)),
        }
    }

    /// The last event ID: what the next request sends as `Last-Event-ID`.
    pub fn last_event_id(&self) -> &str {
        self.codec.last_event_id()
    }

    /// Whether the stream ended on its own terms: it saw the end marker set
    /// with [`end_on_data`](EventSourceBuilder::end_on_data) or
    /// [`end_on_event`](EventSourceBuilder::end_on_event).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The current state.
    pub fn ready_state(&self) -> ReadyState {
        match self.state {
            State::Start | State::Connecting(_) | State::ErrorBody(_) => ReadyState::Connecting,
            State::Open(_) | State::Json(_) => ReadyState::Open,
            State::Waiting => ReadyState::Reconnecting,
            State::Closed => ReadyState::Closed,
        }
    }

    /// The URL every attempt starts from.
    pub fn url(&self) -> &url::Url {
        &self.config.url
    }

    /// Closes the stream: drops the connection, any timer and its place on
    /// a pooled client; the stream then yields `None`.
    pub fn close(&mut self) {
        self.close_with(None);
    }

    /// Closes the stream, telling the watchers why (`None`: cleanly).
    fn close_with(&mut self, error: Option<String>) {
        if !matches!(self.state, State::Closed) {
            self.report(|| StreamState::Closed { error });
            metric!(self, m => m.closed());
        }
        self.state = State::Closed;
        self.pending = None;
        self.timer = None;
        self.watch = None;
        self.lease = None;
        self.last_failure = None;
        self.codec.reset_body();
    }

    /// Drops the current connection (or cancels the wait before the next
    /// one) and reconnects at once, as if the server had closed the stream.
    /// This does not count against the attempt limit, and re-sends a non-GET
    /// request even after events (you asked for it). No effect once closed.
    pub fn reconnect(&mut self) {
        if !matches!(self.state, State::Closed) {
            tracing::debug!(url = %Redacted(&self.config.url), "reconnection requested");
            self.state = State::Start;
            metric!(self, m => m.reconnection(None));
            if self.config.reconnect_events {
                self.pending = Some(Box::new(Event::Reconnecting(Reconnect {
                    attempt: self.retrier.attempt(),
                    delay: Duration::ZERO,
                    cause: Arc::new(Error::new(Kind::Requested)),
                })));
            }
        }
    }

    /// The state as a [`Status`] reports it.
    fn stream_state(&self) -> StreamState {
        let attempt = self.retrier.attempt();
        match (&self.state, &self.last_failure) {
            (State::Start, None) if self.connections == 0 => StreamState::Idle,
            (State::Start | State::Connecting(_) | State::ErrorBody(_), _) => {
                StreamState::Connecting { attempt }
            }
            (State::Open(_) | State::Json(_), _) => StreamState::Open,
            (State::Waiting, Some(cause)) => StreamState::Waiting {
                attempt,
                delay: Duration::ZERO,
                cause: cause.clone(),
            },
            (State::Waiting, None) => StreamState::Connecting { attempt },
            (State::Closed, _) => StreamState::Closed { error: None },
        }
    }

    /// Tells the [`Handle`]s' watchers (if any) about a change of state.
    fn report(&self, state: impl FnOnce() -> StreamState) {
        if let Some(control) = &self.control {
            control.status.set(state());
        }
    }

    /// A handle to close or restart this stream from another task, and to
    /// watch what it is doing ([`Handle::status`]).
    pub fn handle(&mut self) -> Handle {
        let state = self.stream_state();
        let connections = self.connections;
        let control = self.control.get_or_insert_with(|| {
            Arc::new(Control {
                flags: AtomicU8::new(0),
                waker: AtomicWaker::new(),
                status: Arc::new(Reporter::new(state, connections)),
            })
        });
        Handle {
            control: control.clone(),
        }
    }

    /// Builds and sends the request of a new attempt.
    fn connect(&mut self) -> Connecting {
        let cfg = &self.config;
        // A resumed answer: a GET to `request_url` with the caller's
        // headers but none that describe the body it no longer has.
        let resumed = self.resumed && cfg.resume_by_get.is_some();
        let url = self.request_url();
        let method = if resumed {
            Method::GET
        } else {
            cfg.method.clone()
        };
        let mut headers = cfg.headers.clone();
        if resumed {
            drop_body_headers(&mut headers);
        }
        add_sse_headers(&mut headers);
        let id = self.codec.last_event_id();
        if !id.is_empty() {
            match HeaderValue::from_bytes(id.as_bytes()) {
                Ok(v) => {
                    headers.insert("last-event-id", v);
                }
                Err(_) => tracing::warn!(id, "last event ID cannot be sent in a header; omitted"),
            }
        }
        let mut request = cfg.client.request(method, url.clone()).headers(headers);
        if let (Some(body), false) = (&cfg.body, resumed) {
            request = request.body(body.clone());
        }
        let attempt = self.retrier.attempt();
        tracing::debug!(url = %Redacted(url), attempt, last_event_id = id, resumed, "connecting");
        match request.build() {
            Ok(mut request) => {
                if let Some(hook) = &cfg.hook {
                    let info = Attempt {
                        number: attempt,
                        last_event_id: id,
                        previous: self.last_failure.as_deref(),
                    };
                    hook(&mut request, &info);
                }
                // A pooled client (or one built with `Policy::none()`) does
                // not follow redirects: the stream does, from a copy of the
                // request as sent. A client that follows them itself never
                // shows the stream a redirect it could follow.
                let copy = request.try_clone();
                let visited = vec![request.url().clone()];
                Connecting {
                    response: Box::pin(cfg.client.execute(request)),
                    request: copy,
                    visited,
                    deadline: None,
                    deadline_at: None,
                    slow_warning: false,
                }
            }
            Err(e) => Connecting {
                response: Box::pin(std::future::ready(Err(e))),
                request: None,
                visited: Vec::new(),
                deadline: None,
                deadline_at: None,
                slow_warning: false,
            },
        }
    }

    /// The URL the next attempt starts from.
    fn request_url(&self) -> &Url {
        match &self.config.resume_by_get {
            Some(to) if self.resumed => to,
            _ => &self.config.url,
        }
    }

    /// The origin whose first connection on a pooled client is gated
    /// (HTTPS only: the HTTP/2-or-not race is ALPN's).
    fn gated_origin(&self) -> Option<String> {
        let url = self.request_url();
        (self.lease.is_some() && url.scheme() == "https")
            .then(|| url.origin().ascii_serialization())
    }

    /// Waits, on a pooled client, while another stream makes the client's
    /// first connection to the same HTTPS origin (bounded by [`GATE_WAIT`]).
    fn poll_admit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(origin) = self.gated_origin() else {
            return Poll::Ready(());
        };
        let lease = self.lease.as_mut().expect("gated only with a lease");
        if lease.admit(&origin, cx.waker()) != Admission::Wait {
            self.gate_waiting = false;
            return Poll::Ready(());
        }
        if !std::mem::replace(&mut self.gate_waiting, true) {
            self.arm(after(Instant::now(), GATE_WAIT));
        }
        let timer = self.timer.as_mut().expect("armed above");
        if timer.as_mut().poll(cx).is_ready() {
            tracing::debug!(url = %Redacted(&self.config.url), "connecting without waiting longer for the client's first connection");
            self.gate_waiting = false;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Arms the shared timer for `deadline`.
    fn arm(&mut self, deadline: Instant) {
        self.idle_waker = None;
        match &mut self.timer {
            Some(t) => t.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Arms the deadline for a response head: the response timeout, or the
    /// idle timeout when that is shorter. A wait longer than
    /// [`SLOW_HEAD_WARNING`] first fires then, to log that the head is late.
    fn arm_response_deadline(&mut self, conn: &mut Connecting) {
        let now = Instant::now();
        let (wait, kind) = match (self.config.response_timeout, self.config.idle_timeout) {
            (Some(r), Some(i)) if i < r => (i, Some(Kind::Timeout(i))),
            (Some(r), _) => (r, Some(Kind::ResponseTimeout(r))),
            (None, Some(i)) => (i, Some(Kind::Timeout(i))),
            (None, None) => (Duration::MAX, None),
        };
        conn.deadline_at = kind.is_some().then(|| after(now, wait));
        conn.deadline = kind;
        conn.slow_warning = wait > SLOW_HEAD_WARNING;
        if conn.slow_warning {
            self.arm(now + SLOW_HEAD_WARNING);
        } else if let Some(at) = conn.deadline_at {
            self.arm(at);
        }
    }

    /// Starts watching for silence: the idle timer ticks every
    /// `idle / IDLE_TICKS`.
    fn start_idle(&mut self) {
        if let Some(idle) = self.config.idle_timeout {
            if self.watch.is_none() {
                self.watch = IdleWatch::new(idle);
            }
            if let Some(watch) = &mut self.watch {
                watch.open();
                // As below: no Tokio timer stays registered while open.
                self.timer = None;
                self.idle_waker = None;
                return;
            }
            self.activity = true;
            self.quiet_ticks = 0;
            self.arm(after(Instant::now(), idle / IDLE_TICKS));
        } else {
            // The response deadline is over: drop its timer rather than
            // leave it registered. Any armed timer makes Tokio's driver do
            // work on every park of the runtime (about 180 instructions).
            self.timer = None;
            self.idle_waker = None;
        }
    }

    /// Notes the last event's time once per tick of the watchdog.
    #[cfg(feature = "metrics")]
    fn note_tick(&mut self) {
        if let Some(ticks) = self.watch.as_ref().map(IdleWatch::ticks) {
            if ticks != self.seen_ticks {
                self.seen_ticks = ticks;
                self.metrics.note_last_event();
            }
        }
    }

    /// Polls the idle timer: `Ready` once `IDLE_TICKS` ticks in a row saw no
    /// bytes, that is between `idle` and `idle * (1 + 1/IDLE_TICKS)` after
    /// the last byte.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Duration> {
        let Some(idle) = self.config.idle_timeout else {
            return Poll::Pending;
        };
        #[cfg(feature = "metrics")]
        self.note_tick();
        if let Some(watch) = &mut self.watch {
            return if watch.poll_expired(cx) {
                Poll::Ready(idle)
            } else {
                Poll::Pending
            };
        }
        let timer = self.timer.as_mut().expect("armed on open");
        let same_waker = self
            .idle_waker
            .as_ref()
            .is_some_and(|w| wake::same_task(w, cx.waker()));
        if same_waker && !timer.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            // Polled outside tokio's cooperative budget: a `Sleep` polled with
            // the budget spent returns `Pending` without registering the
            // waker, and the shortcut above would then never poll it again
            // (a silent connection would hang for ever). The idle timer is a
            // watchdog, not work to be rationed.
            if Pin::new(&mut tokio::task::unconstrained(timer.as_mut()))
                .poll(cx)
                .is_pending()
            {
                if !same_waker {
                    self.idle_waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            metric!(self, m => m.note_last_event());
            if quiet_tick(&mut self.quiet_ticks, std::mem::take(&mut self.activity)) {
                return Poll::Ready(idle);
            }
            timer
                .as_mut()
                .reset(after(Instant::now(), idle / IDLE_TICKS));
        }
    }

    /// Handles the response head of an attempt: opens the stream, follows a
    /// redirect, or starts reading an error body. `Ok(None)`: nothing to
    /// yield yet.
    fn on_response(
        &mut self,
        response: reqwest::Response,
        connecting: &mut Option<Box<Connecting>>,
    ) -> Result<Option<Event>, Error> {
        let status = response.status();
        if status.is_redirection() {
            if let Some(next) = connecting.as_mut().and_then(|c| c.request.take()) {
                let mut conn = connecting.take().expect("checked above");
                if let Some(next) = self.redirect(&response, next, &mut conn)? {
                    conn.response = Box::pin(self.config.client.execute(next));
                    self.state = State::Connecting(conn);
                    return Ok(None);
                }
            }
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        let content_type_ok =
            media_type.is_some_and(|v| v.eq_ignore_ascii_case("text/event-stream"));
        let json = self.config.accept_json && media_type.is_some_and(is_json);
        if status == StatusCode::OK && (content_type_ok || json) {
            if let Some(encoding) = undecoded_encoding(response.headers()) {
                return Err(Error::new(Kind::Encoding(encoding)));
            }
            self.connections += 1;
            let open = Open::from(OpenParts {
                status,
                version: response.version(),
                headers: response.headers().clone(),
                url: response.url().clone(),
                attempt: self.retrier.attempt(),
                connection: self.connections,
            });
            tracing::info!(url = %Redacted(open.url()), attempt = self.retrier.attempt(), "stream open");
            self.codec.reset_body();
            self.connection_delivered = false;
            self.id_at_open = self.codec.last_event_id_shared();
            self.opened_at = Some(Instant::now());
            let body = reqwest::Body::from(response);
            self.state = if json {
                State::Json(Box::new(JsonBody {
                    body,
                    collected: bytes::BytesMut::new(),
                }))
            } else {
                State::Open(body)
            };
            self.start_idle();
            self.report(|| StreamState::Open);
            metric!(self, m => m.opened());
            return Ok(Some(Event::Open(open)));
        }
        if status == StatusCode::NO_CONTENT {
            tracing::info!(url = %Redacted(&self.config.url), "server answered 204 No Content; stream closed");
            self.close();
            return Ok(None);
        }
        let parts = Response {
            status,
            headers: response.headers().clone(),
            body: String::new(),
            url: redact_url(response.url()).into_owned(),
        };
        // The body is read (briefly, and bounded) so the error can show the
        // server's own message.
        self.arm(Instant::now() + ERROR_BODY_TIMEOUT);
        self.state = State::ErrorBody(Box::new(ErrorBody {
            body: reqwest::Body::from(response),
            response: parts,
            collected: Vec::new(),
            content_type: status == StatusCode::OK,
        }));
        Ok(None)
    }

    /// The request for the next hop of a redirect, `Ok(None)` when the
    /// response has no usable `Location` (it is then an unexpected status),
    /// or an error for a redirect that must not be followed.
    fn redirect(
        &self,
        response: &reqwest::Response,
        mut next: reqwest::Request,
        conn: &mut Connecting,
    ) -> Result<Option<reqwest::Request>, Error> {
        let status = response.status();
        if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        let Some(location) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(None);
        };
        let Ok(target) = response.url().join(location) else {
            return Ok(None);
        };
        if !matches!(target.scheme(), "http" | "https") {
            return Err(Error::new(Kind::Redirect(format!(
                "{} redirects to the unsupported scheme {:?} ({})",
                Redacted(response.url()),
                target.scheme(),
                Redacted(&target)
            ))));
        }
        if conn.visited.contains(&target) {
            return Err(Error::new(Kind::Redirect(format!(
                "redirect loop: {} leads back to {}",
                Redacted(response.url()),
                Redacted(&target)
            ))));
        }
        if conn.visited.len() > MAX_REDIRECTS {
            return Err(Error::new(Kind::Redirect(format!(
                "too many redirects (more than {MAX_REDIRECTS}), last to {}",
                Redacted(&target)
            ))));
        }
        // Judged against the hop as sent (an `on_attempt` hook may have
        // moved the attempt to another origin); credentials stripped on an
        // earlier hop stay stripped, as `next` is that hop's copy.
        let cross_origin = target.origin() != next.url().origin();
        tracing::debug!(status = status.as_u16(), to = %Redacted(&target), cross_origin, "following redirect");
        if cross_origin {
            strip_credentials(next.headers_mut(), &self.config.sensitive);
        }
        // 303 always, and 301/302 for a POST, turn into a GET without body
        // (as browsers do); 307 and 308 keep method and body.
        let to_get = status == StatusCode::SEE_OTHER && next.method() != Method::HEAD
            || matches!(status.as_u16(), 301 | 302) && next.method() == Method::POST;
        if to_get {
            *next.method_mut() = Method::GET;
            *next.body_mut() = None;
            drop_body_headers(next.headers_mut());
        }
        *next.url_mut() = target.clone();
        conn.visited.push(target);
        conn.request = next.try_clone();
        Ok(Some(next))
    }

    /// Reads the body of an unacceptable response, then fails the attempt.
    fn poll_error_body(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        let State::ErrorBody(eb) = &mut self.state else {
            unreachable!("only called in ErrorBody")
        };
        let timed_out = self
            .timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        while !timed_out && eb.collected.len() < ERROR_BODY_LIMIT {
            match Pin::new(&mut eb.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let room = ERROR_BODY_LIMIT - eb.collected.len();
                        eb.collected
                            .extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // A body that fails or ends: keep what was read.
                Poll::Ready(Some(Err(_)) | None) => break,
            }
        }
        let mut eb = match std::mem::replace(&mut self.state, State::Start) {
            State::ErrorBody(eb) => eb,
            _ => unreachable!(),
        };
        eb.response.body = String::from_utf8_lossy(&eb.collected).into_owned();
        let response = Box::new(eb.response);
        Poll::Ready(if eb.content_type {
            Error::new(Kind::ContentType(response))
        } else {
            Error::new(Kind::Status(response))
        })
    }

    /// A message is about to be yielded: the connection delivered, and the
    /// watchers' and metrics' counts.
    #[inline]
    fn count_message(&mut self) {
        self.connection_delivered = true;
        self.delivered_any = true;
        if let Some(control) = &self.control {
            control.status.event();
        }
        metric!(self, m => m.event());
    }

    /// Reads a JSON answer to its end, then yields it as one message
    /// ([`EventSourceBuilder::accept_json`]).
    fn poll_json(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        let limit = self.codec.max_event_size();
        loop {
            let State::Json(json) = &mut self.state else {
                unreachable!("only called in Json")
            };
            match Pin::new(&mut json.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        // `json` borrows the state: the fields, not `self`.
                        note_bytes(&self.watch, &mut self.activity);
                        #[cfg(feature = "metrics")]
                        self.metrics.bytes(data.len());
                        if json.collected.len() + data.len() > limit {
                            return Poll::Ready(Err(Error::new(Kind::TooLarge(limit))));
                        }
                        json.collected.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(Error::with_source(Kind::Body, redacted(e))))
                }
                Poll::Ready(None) => {
                    let data = String::from_utf8_lossy(&json.collected).into_owned();
                    let message = MessageEvent::new("message", data, self.codec.last_event_id());
                    self.count_message();
                    tracing::info!(url = %Redacted(&self.config.url), "JSON answer received; stream closed");
                    self.close();
                    return Poll::Ready(Ok(Event::Message(message)));
                }
                Poll::Pending => {
                    if let Poll::Ready(idle) = self.poll_idle(cx) {
                        return Poll::Ready(Err(Error::new(Kind::Timeout(idle))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Polls the open body for the next event, comment or failure.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        loop {
            match self.codec.parse(self.config.comments) {
                Ok(Some(Frame::Message(m))) => {
                    // An MCP priming event (an ID, empty data) marks a
                    // place to resume from; it is not a message.
                    if m.data().is_empty() && self.config.resume_by_get.is_some() {
                        continue;
                    }
                    self.count_message();
                    return Poll::Ready(Ok(Event::Message(m)));
                }
                Ok(Some(Frame::Comment(c))) => return Poll::Ready(Ok(Event::Comment(c))),
                Ok(Some(Frame::Retry(delay))) => {
                    self.retrier.set_server_delay(delay);
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(Error::from(e))),
            }
            let State::Open(body) = &mut self.state else {
                unreachable!("only called in Open")
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        note_bytes(&self.watch, &mut self.activity);
                        metric!(self, m => m.bytes(data.len()));
                        self.codec.feed(data);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(Error::with_source(Kind::Body, redacted(e))))
                }
                Poll::Ready(None) => return Poll::Ready(Err(Error::new(Kind::Eof))),
                Poll::Pending => {
                    if let Poll::Ready(idle) = self.poll_idle(cx) {
                        return Poll::Ready(Err(Error::new(Kind::Timeout(idle))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Ends the current attempt: asks the retry policy, then schedules the
    /// next attempt or ends the stream.
    fn fail(&mut self, cause: Error) -> Option<Result<Event, Error>> {
        // Dropping the old body (if any) closes that connection now.
        self.state = State::Waiting;
        let now = Instant::now();
        let open_for = self.opened_at.take().map(|at| now - at);
        // What this connection did; the next attempt starts from nothing.
        let delivered = std::mem::take(&mut self.connection_delivered);
        let id = self.codec.last_event_id();
        let new_id = open_for.is_some() && id != &*self.id_at_open;
        // Progress (SPEC rule 23): an event ID not seen when the connection
        // opened, or, on a stream without IDs, events and a graceful end. A
        // replay of the same events is not progress.
        let progress = new_id || (delivered && id.is_empty() && cause.is_eof());
        let failure = Failure::from_error(&cause, SystemTime::now())
            .delivered(delivered)
            .progress(progress)
            .open_for(open_for);
        if matches!(
            failure.kind(),
            FailureKind::Connect | FailureKind::Request | FailureKind::Body
        ) {
            // The connection may be gone for every stream of this client:
            // the next to reconnect finds out before the others follow.
            if let (Some(origin), Some(lease)) = (self.gated_origin(), self.lease.as_mut()) {
                lease.cool(&origin);
            }
        }
        let exact_first = self.config.resume_by_get.is_some();
        let verdict = self
            .retrier
            .on_failure(self.config.policy(), &failure, now, exact_first);
        if verdict == Verdict::Stop {
            return Some(Err(self.give_up(cause)));
        }
        if self.config.method != Method::GET && !self.resumed {
            // An answer that opened, with `resume_by_get`: resumed by GET
            // from its last ID; without one there is nothing to resume from.
            let resumable = self.config.resume_by_get.is_some() && open_for.is_some();
            if resumable && new_id {
                tracing::debug!(url = %Redacted(&self.config.url), last_event_id = id, "answer cut; resuming by GET");
                self.resumed = true;
            } else if (self.delivered_any || resumable) && !self.config.resend_after_events {
                if cause.is_eof() && self.delivered_any {
                    if !self.config.has_end_marker() {
                        // A POST answer that the server ended cleanly is complete.
                        tracing::info!(url = %Redacted(&self.config.url), "server ended the response; stream closed");
                        self.close();
                        return None;
                    }
                    return Some(Err(self.give_up(Error::with_source(Kind::Truncated, cause))));
                }
                let why = if resumable {
                    NotResent::NoId
                } else {
                    NotResent::AfterEvents
                };
                let error = Error::with_source(Kind::NotResent(why), cause);
                return Some(Err(self.give_up(error)));
            }
        }
        let (attempt, delay) = match verdict {
            Verdict::Wait { attempt, delay } => (attempt, delay),
            Verdict::Exhausted { attempts } => {
                return Some(Err(self.give_up(Error::with_source(
                    Kind::RetriesExhausted(attempts),
                    cause,
                ))))
            }
            Verdict::OutOfTime { attempts, elapsed } => {
                return Some(Err(self.give_up(Error::with_source(
                    Kind::RetryBudget { attempts, elapsed },
                    cause,
                ))))
            }
            Verdict::Stop => unreachable!("handled above"),
        };
        tracing::warn!(
            url = %Redacted(&self.config.url),
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            cause = %cause,
            "reconnecting"
        );
        self.arm(after(now, delay));
        let cause = Arc::new(cause);
        self.last_failure = Some(cause.clone());
        self.report(|| StreamState::Waiting {
            attempt,
            delay,
            cause: cause.clone(),
        });
        metric!(self, m => m.reconnection(Some(cause.failure_kind())));
        self.config.reconnect_events.then(|| {
            Ok(Event::Reconnecting(Reconnect {
                attempt,
                delay,
                cause,
            }))
        })
    }

    fn give_up(&mut self, mut error: Error) -> Error {
        if self.delivered_any && self.config.has_end_marker() {
            error.set_truncated();
        }
        tracing::error!(url = %Redacted(&self.config.url), error = %error, "stream ended");
        let reason = self.control.as_ref().map(|_| format!("{error:#}"));
        self.close_with(reason);
        error
    }

    fn take_control(&mut self, cx: &mut Context<'_>) {
        let Some(control) = &self.control else { return };
        control.waker.register(cx.waker());
        let flags = control.flags.swap(0, Ordering::AcqRel);
        if flags & CLOSE != 0 {
            self.close();
        } else if flags & RECONNECT != 0 {
            self.reconnect();
        }
    }

    /// Polls the request of the current attempt.
    fn poll_connecting(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        let State::Connecting(conn) = &mut self.state else {
            unreachable!("only called in Connecting")
        };
        let result = match conn.response.as_mut().poll(cx) {
            Poll::Ready(r) => {
                if let Some(lease) = self.lease.as_mut() {
                    lease.probed(r.is_ok());
                }
                r
            }
            Poll::Pending => loop {
                let armed = conn.slow_warning || conn.deadline_at.is_some();
                let fired = armed
                    && self
                        .timer
                        .as_mut()
                        .is_some_and(|t| t.as_mut().poll(cx).is_ready());
                if !fired {
                    return Poll::Pending;
                }
                if std::mem::take(&mut conn.slow_warning) {
                    let url = conn.visited.last().unwrap_or(&self.config.url);
                    tracing::warn!(
                        url = %Redacted(url),
                        waited_s = SLOW_HEAD_WARNING.as_secs(),
                        "no response head yet; still waiting. A proxy that buffers responses \
                         (nginx's default proxy_buffering) may be holding it back: have the \
                         server send `X-Accel-Buffering: no`, or turn buffering off"
                    );
                    match conn.deadline_at {
                        Some(at) => self
                            .timer
                            .as_mut()
                            .expect("armed for the warning")
                            .as_mut()
                            .reset(at),
                        None => return Poll::Pending,
                    }
                    continue;
                }
                let kind = conn.deadline.take().expect("armed with a deadline");
                if let Some(lease) = self.lease.as_mut() {
                    lease.probed(false);
                }
                return Poll::Ready(Err(Error::new(kind)));
            },
        };
        let mut conn = match std::mem::replace(&mut self.state, State::Start) {
            State::Connecting(conn) => Some(conn),
            _ => unreachable!(),
        };
        let outcome = match result {
            Ok(response) => self.on_response(response, &mut conn),
            Err(e) => {
                let proxy = self
                    .lease
                    .as_ref()
                    .filter(|lease| lease.system_proxies())
                    .and_then(|_| crate::proxy::for_url(e.url().unwrap_or(&self.config.url)));
                Err(Error::with_source(Kind::Request(proxy), redacted(e)))
            }
        };
        // A redirect moved the attempt's state into the new `Connecting`;
        // otherwise it is no longer needed.
        drop(conn);
        Poll::Ready(outcome)
    }
}

/// `now + wait` on Tokio's clock, saturated as [`later`] is: a timer for
/// `Duration::MAX` is set about 30 years ahead instead of overflowing.
fn after(now: Instant, wait: Duration) -> Instant {
    Instant::from_std(later(now.into_std(), wait))
}

/// Bytes arrived: the idle timeout starts again, on the watchdog's watch
/// or, without one, on the Tokio timer's activity flag.
#[inline]
fn note_bytes(watch: &Option<IdleWatch>, activity: &mut bool) {
    match watch {
        Some(watch) => watch.touch(),
        None => *activity = true,
    }
}

/// A reqwest error with the URL's secrets hidden (its `Display` shows it).
fn redacted(mut e: reqwest::Error) -> reqwest::Error {
    if let Some(url) = e.url_mut() {
        if let std::borrow::Cow::Owned(clean) = redact_url(url) {
            *url = clean;
        }
    }
    e
}

/// Removes the headers that describe a request body, for a request sent
/// without one (a 303, or a POST answer resumed by GET).
fn drop_body_headers(headers: &mut reqwest::header::HeaderMap) {
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::CONTENT_ENCODING);
}

/// Whether a media type is JSON: `application/json` or
/// `application/<anything>+json`, in any case.
fn is_json(media_type: &str) -> bool {
    let lower = media_type.to_ascii_lowercase();
    lower == "application/json" || lower.starts_with("application/") && lower.ends_with("+json")
}

/// The `Content-Encoding` of a response that the HTTP client did not
/// decode (it removes the header when it does), as the error's message.
fn undecoded_encoding(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_ENCODING)?;
    let encoding = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return None;
    }
    let feature = ["gzip", "br", "zstd", "deflate"]
        .into_iter()
        .find(|known| encoding.eq_ignore_ascii_case(known))
        .map(|known| if known == "br" { "brotli" } else { known });
    Some(match feature {
        Some(feature) => format!(
            "the response is compressed with {encoding:?}, which the HTTP client did not \
             decode: enable ssekit's `{feature}` feature (or the decoder of the client you gave)"
        ),
        None => format!("the response is compressed with {encoding:?}, which ssekit cannot decode"),
    })
}

impl Stream for EventSource {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.take_control(cx);
        if let Some(event) = this.pending.take() {
            return Poll::Ready(Some(Ok(*event)));
        }
        loop {
            match &mut this.state {
                State::Closed => return Poll::Ready(None),
                State::Start => {
                    ready!(this.poll_admit(cx));
                    let attempt = this.retrier.attempt();
                    this.report(|| StreamState::Connecting { attempt });
                    metric!(this, m => m.attempt());
                    let mut conn = this.connect();
                    this.arm_response_deadline(&mut conn);
                    this.state = State::Connecting(Box::new(conn));
                }
                State::Connecting(_) => match ready!(this.poll_connecting(cx)) {
                    Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                    Ok(None) => {}
                    Err(cause) => {
                        if let Some(item) = this.fail(cause) {
                            return Poll::Ready(Some(item));
                        }
                    }
                },
                State::ErrorBody(_) => {
                    let cause = ready!(this.poll_error_body(cx));
                    if let Some(item) = this.fail(cause) {
                        return Poll::Ready(Some(item));
                    }
                }
                State::Open(_) => match ready!(this.poll_open(cx)) {
                    Ok(Event::Message(m)) => {
                        let cfg = &this.config;
                        // One test per event when no marker is set.
                        let Some(markers) = cfg.markers.as_deref() else {
                            return Poll::Ready(Some(Ok(Event::Message(m))));
                        };
                        if markers.end_data.as_deref() == Some(m.data()) {
                            tracing::info!(url = %Redacted(&cfg.url), "end sentinel received; stream closed");
                            this.finished = true;
                            this.close();
                            return Poll::Ready(None);
                        }
                        if markers.error_types.iter().any(|t| t == m.event()) {
                            let error = Error::new(Kind::ErrorEvent(Box::new(m)));
                            return Poll::Ready(Some(Err(this.give_up(error))));
                        }
                        if markers.end_types.iter().any(|t| t == m.event()) {
                            tracing::info!(url = %Redacted(&cfg.url), event = m.event(), "end event received; stream closed");
                            this.finished = true;
                            this.close();
                        }
                        return Poll::Ready(Some(Ok(Event::Message(m))));
                    }
                    Ok(event) => return Poll::Ready(Some(Ok(event))),
                    Err(cause) => {
                        if let Some(item) = this.fail(cause) {
                            return Poll::Ready(Some(item));
                        }
                    }
                },
                State::Json(_) => match ready!(this.poll_json(cx)) {
                    Ok(event) => return Poll::Ready(Some(Ok(event))),
                    Err(cause) => {
                        if let Some(item) = this.fail(cause) {
                            return Poll::Ready(Some(item));
                        }
                    }
                },
                State::Waiting => {
                    let timer = this.timer.as_mut().expect("armed when waiting");
                    ready!(timer.as_mut().poll(cx));
                    this.state = State::Start;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.state {
            State::Closed => (0, Some(0)),
            _ => (0, None),
        }
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        // A watcher learns that the stream is gone.
        if !matches!(self.state, State::Closed) {
            self.report(|| StreamState::Closed { error: None });
        }
    }
}

impl FusedStream for EventSource {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::{undecoded_encoding, EventSource};
    use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING};

    #[test]
    fn an_event_source_stays_small() {
        // Every idle stream holds one (BENCHMARKS.md, idle streams): 936
        // bytes with the default features when this was written, after the
        // default retry policy became shared. A field that grows it past
        // 1,000 bytes should be boxed or shared instead.
        let size = std::mem::size_of::<EventSource>();
        assert!(size <= 1000, "EventSource is {size} bytes");
    }

    fn encoded(value: &'static str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(value));
        undecoded_encoding(&h)
    }

    #[test]
    fn an_encoding_left_undecoded_is_named_with_its_feature() {
        assert_eq!(undecoded_encoding(&HeaderMap::new()), None);
        assert_eq!(encoded("identity"), None);
        // A known encoding still present means its decoder was off.
        let br = encoded("br").unwrap();
        assert!(
            br.contains("\"br\"") && br.contains("`brotli` feature"),
            "{br}"
        );
        let gzip = encoded("GZIP").unwrap();
        assert!(gzip.contains("`gzip` feature"), "{gzip}");
        let unknown = encoded("compress").unwrap();
        assert!(
            unknown.contains("cannot decode") && !unknown.contains("feature"),
            "{unknown}"
        );
    }
}
