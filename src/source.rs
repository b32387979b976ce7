//! The reconnecting client: a state machine around [`SseCodec`].

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
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::{Instant, Sleep};

use crate::builder::Config;
use crate::error::{Kind, Response, ERROR_BODY_LIMIT};
use crate::event::OpenParts;
use crate::{Backoff, Error, Event, EventSourceBuilder, Frame, Open, Reconnect, SseCodec};

/// The idle timeout is checked this many times per period: a silent
/// connection is detected at most an eighth of the period late.
const IDLE_TICKS: u32 = 8;

/// The longest `Retry-After` honoured; a longer one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long the body of an error response is read, at most, for the excerpt
/// kept in the error.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

type ResponseFuture = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>;

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
/// | `Connecting` | 408, 429, 500, 502, 503, 504 | `ErrorBody`, then `Waiting` (honouring `Retry-After`) |
/// | `Connecting` | other status, wrong media type | `ErrorBody`, then `Closed` with an `Err` |
/// | `Connecting`, `Open` | network error, idle timeout | `Waiting` |
/// | `Open` | end of body | `Waiting` |
/// | `Open` | event over the size limit | `Closed` with an `Err` |
/// | `Waiting` | delay over | `Start` |
/// | any | attempt limit reached, or non-GET after events | `Closed` with an `Err` |
/// | any | [`close`](Self::close) | `Closed` |
/// | any but `Closed` | [`reconnect`](Self::reconnect) | `Start` |
///
/// Redirects are followed by the HTTP client (reqwest drops `Authorization`
/// and `Cookie` when a redirect leaves the origin); every reconnection goes
/// back to the original URL.
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
    codec: SseCodec,
    state: State,
    /// The idle deadline while connecting or open; the reconnection delay
    /// while waiting. Created on first use and reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes arrived since the idle timer last ticked. Setting a flag per
    /// chunk costs nothing; reading the clock per chunk showed in profiles.
    activity: bool,
    /// Idle ticks in a row without bytes; see [`IDLE_TICKS`].
    quiet_ticks: u32,
    /// The waker the idle timer was last polled with: while it is the same
    /// and the timer has not fired, the timer need not be polled again.
    idle_waker: Option<std::task::Waker>,
    backoff: Backoff,
    /// Reconnection attempts in a row without an event (0 for a first try).
    attempt: u32,
    connections: u64,
    delivered_any: bool,
    connection_delivered: bool,
    control: Option<Arc<Control>>,
    /// An event to yield on the next poll (a requested reconnection).
    pending: Option<Event>,
    /// The end marker was seen.
    finished: bool,
}

enum State {
    Start,
    Connecting(ResponseFuture),
    Open(reqwest::Body),
    ErrorBody(Box<ErrorBody>),
    Waiting,
    Closed,
}

/// An unacceptable response whose body is being read for the error.
struct ErrorBody {
    body: reqwest::Body,
    response: Response,
    collected: Vec<u8>,
    content_type: bool,
    /// `Some` for a transient status: the `Retry-After` delay, if any.
    transient: Option<Option<Duration>>,
}

/// What the current connection's end means, for [`EventSource::fail`].
struct Failure {
    cause: Error,
    retry_after: Option<Duration>,
    /// Ends the stream whatever the retry policy says.
    terminal: bool,
}

impl Failure {
    fn terminal(cause: Error) -> Self {
        Failure {
            cause,
            retry_after: None,
            terminal: true,
        }
    }
}

impl From<Error> for Failure {
    fn from(cause: Error) -> Self {
        Failure {
            cause,
            retry_after: None,
            terminal: false,
        }
    }
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
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("url", &self.config.url.as_str())
            .field("method", &self.config.method)
            .field("state", &self.ready_state())
            .field("last_event_id", &self.last_event_id())
            .field("attempt", &self.attempt)
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

    pub(crate) fn from_config(config: Config, max_event_size: usize, last_event_id: &str) -> Self {
        let mut codec = SseCodec::new().with_max_event_size(max_event_size);
        codec.set_last_event_id(last_event_id);
        let backoff = config.policy.backoff();
        EventSource {
            config,
            codec,
            state: State::Start,
            timer: None,
            activity: false,
            quiet_ticks: 0,
            idle_waker: None,
            backoff,
            attempt: 0,
            connections: 0,
            delivered_any: false,
            connection_delivered: false,
            control: None,
            pending: None,
            finished: false,
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
            State::Open(_) => ReadyState::Open,
            State::Waiting => ReadyState::Reconnecting,
            State::Closed => ReadyState::Closed,
        }
    }

    /// The URL every attempt starts from.
    pub fn url(&self) -> &url::Url {
        &self.config.url
    }

    /// Closes the stream: drops the connection and any timer; the stream
    /// then yields `None`.
    pub fn close(&mut self) {
        self.state = State::Closed;
        self.pending = None;
        self.timer = None;
        self.codec.reset_body();
    }

    /// Drops the current connection (or cancels the wait before the next
    /// one) and reconnects at once, as if the server had closed the stream.
    /// This does not count against the attempt limit, and re-sends a non-GET
    /// request even after events (you asked for it). No effect once closed.
    pub fn reconnect(&mut self) {
        if !matches!(self.state, State::Closed) {
            tracing::debug!(url = %self.config.url, "reconnection requested");
            self.state = State::Start;
            if self.config.reconnect_events {
                self.pending = Some(Event::Reconnecting(Reconnect {
                    attempt: self.attempt,
                    delay: Duration::ZERO,
                    cause: Arc::new(Error::new(Kind::Requested)),
                }));
            }
        }
    }

    /// A handle to close or restart this stream from another task.
    pub fn handle(&mut self) -> Handle {
        let control = self.control.get_or_insert_with(|| {
            Arc::new(Control {
                flags: AtomicU8::new(0),
                waker: AtomicWaker::new(),
            })
        });
        Handle {
            control: control.clone(),
        }
    }

    /// Builds and sends the request of a new attempt.
    fn connect(&mut self) -> ResponseFuture {
        let cfg = &self.config;
        let mut headers = cfg.headers.clone();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let id = self.codec.last_event_id();
        if !id.is_empty() {
            match HeaderValue::from_bytes(id.as_bytes()) {
                Ok(v) => {
                    headers.insert("last-event-id", v);
                }
                Err(_) => tracing::warn!(id, "last event ID cannot be sent in a header; omitted"),
            }
        }
        let mut request = cfg
            .client
            .request(cfg.method.clone(), cfg.url.clone())
            .headers(headers);
        if let Some(body) = &cfg.body {
            request = request.body(body.clone());
        }
        tracing::debug!(url = %cfg.url, attempt = self.attempt, last_event_id = id, "connecting");
        match request.build() {
            Ok(mut request) => {
                if let Some(hook) = &cfg.hook {
                    hook(&mut request);
                }
                Box::pin(cfg.client.execute(request))
            }
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    /// Arms the shared timer for `deadline`.
    fn arm(&mut self, deadline: Instant) {
        self.idle_waker = None;
        match &mut self.timer {
            Some(t) => t.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Starts watching for silence: the idle timer ticks every
    /// `idle / IDLE_TICKS`.
    fn start_idle(&mut self) {
        if let Some(idle) = self.config.idle_timeout {
            self.activity = false;
            self.quiet_ticks = 0;
            self.arm(Instant::now() + idle / IDLE_TICKS);
        }
    }

    /// Polls the idle timer: `Ready` once `IDLE_TICKS` ticks in a row saw no
    /// bytes, that is between `idle` and `idle * (1 + 1/IDLE_TICKS)` after
    /// the last byte.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Duration> {
        let Some(idle) = self.config.idle_timeout else {
            return Poll::Pending;
        };
        let timer = self.timer.as_mut().expect("armed on connect");
        let same_waker = self
            .idle_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if same_waker && !timer.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                if !same_waker {
                    self.idle_waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            if std::mem::take(&mut self.activity) {
                self.quiet_ticks = 0;
            } else {
                self.quiet_ticks += 1;
                if self.quiet_ticks >= IDLE_TICKS {
                    return Poll::Ready(idle);
                }
            }
            timer.as_mut().reset(Instant::now() + idle / IDLE_TICKS);
        }
    }

    /// Handles the response head of an attempt.
    fn on_response(&mut self, response: reqwest::Response) -> Result<Option<Event>, Failure> {
        let status = response.status();
        let content_type_ok = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"));
        if status == StatusCode::OK && content_type_ok {
            self.connections += 1;
            let open = Open::from(OpenParts {
                status,
                headers: response.headers().clone(),
                url: response.url().clone(),
                attempt: self.attempt,
                connection: self.connections,
            });
            tracing::info!(url = %open.url(), attempt = self.attempt, "stream open");
            self.codec.reset_body();
            self.connection_delivered = false;
            self.activity = true;
            self.state = State::Open(reqwest::Body::from(response));
            return Ok(Some(Event::Open(open)));
        }
        if status == StatusCode::NO_CONTENT {
            tracing::info!(url = %self.config.url, "server answered 204 No Content; stream closed");
            self.close();
            return Ok(None);
        }
        let transient = matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
            .then(|| retry_after(response.headers()));
        let parts = Response {
            status,
            headers: response.headers().clone(),
            body: String::new(),
            url: response.url().clone(),
        };
        // The body is read (briefly, and bounded) so the error can show the
        // server's own message.
        self.arm(Instant::now() + ERROR_BODY_TIMEOUT);
        self.state = State::ErrorBody(Box::new(ErrorBody {
            body: reqwest::Body::from(response),
            response: parts,
            collected: Vec::new(),
            content_type: status == StatusCode::OK,
            transient,
        }));
        Ok(None)
    }

    /// Reads the body of an unacceptable response, then fails the attempt.
    fn poll_error_body(&mut self, cx: &mut Context<'_>) -> Poll<Failure> {
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
        let cause = if eb.content_type {
            Error::new(Kind::ContentType(response))
        } else {
            Error::new(Kind::Status(response))
        };
        Poll::Ready(match eb.transient {
            Some(retry_after) => Failure {
                cause,
                retry_after,
                terminal: false,
            },
            None => Failure::terminal(cause),
        })
    }

    /// Polls the open body for the next event, comment or failure.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Failure>> {
        loop {
            match self.codec.parse(self.config.comments) {
                Ok(Some(Frame::Message(m))) => {
                    self.connection_delivered = true;
                    self.delivered_any = true;
                    if self.attempt != 0 {
                        self.attempt = 0;
                        self.backoff.reset();
                    }
                    return Poll::Ready(Ok(Event::Message(m)));
                }
                Ok(Some(Frame::Comment(c))) => return Poll::Ready(Ok(Event::Comment(c))),
                Ok(Some(Frame::Retry(delay))) => {
                    self.backoff.set_base(delay);
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(Failure::terminal(Error::from(e)))),
            }
            let State::Open(body) = &mut self.state else {
                unreachable!("only called in Open")
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.activity = true;
                        self.codec.feed(data);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(Error::with_source(Kind::Body, e).into()))
                }
                Poll::Ready(None) => return Poll::Ready(Err(Error::new(Kind::Eof).into())),
                Poll::Pending => {
                    if let Poll::Ready(idle) = self.poll_idle(cx) {
                        return Poll::Ready(Err(Error::new(Kind::Timeout(idle)).into()));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Ends the current attempt: schedules the next one, or ends the stream.
    fn fail(&mut self, failure: Failure) -> Option<Result<Event, Error>> {
        let Failure {
            cause,
            retry_after,
            terminal,
        } = failure;
        if terminal {
            return Some(Err(self.give_up(cause)));
        }
        // Dropping the old body (if any) closes that connection now.
        self.state = State::Waiting;
        if self.config.method != Method::GET
            && self.delivered_any
            && !self.config.resend_after_events
        {
            if cause.is_eof() {
                if !self.config.has_end_marker() {
                    // A POST answer that the server ended cleanly is complete.
                    tracing::info!(url = %self.config.url, "server ended the response; stream closed");
                    self.close();
                    return None;
                }
                return Some(Err(self.give_up(Error::with_source(Kind::Truncated, cause))));
            }
            return Some(Err(self.give_up(Error::with_source(Kind::NotResent, cause))));
        }
        let attempt = self.attempt.saturating_add(1);
        if let Some(limit) = self.config.policy.max_attempts {
            if attempt > limit {
                return Some(Err(self.give_up(Error::with_source(
                    Kind::RetriesExhausted(self.attempt),
                    cause,
                ))));
            }
        }
        self.attempt = attempt;
        let delay = match retry_after {
            Some(d) => {
                self.backoff.next(); // the attempt still counts for growth
                d
            }
            None => self.backoff.next().unwrap_or_default(),
        };
        tracing::warn!(
            url = %self.config.url,
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            cause = %cause,
            "reconnecting"
        );
        self.arm(Instant::now() + delay);
        self.config.reconnect_events.then(|| {
            Ok(Event::Reconnecting(Reconnect {
                attempt,
                delay,
                cause: Arc::new(cause),
            }))
        })
    }

    fn give_up(&mut self, mut error: Error) -> Error {
        if self.delivered_any && self.config.has_end_marker() {
            error.set_truncated();
        }
        tracing::error!(url = %self.config.url, error = %error, "stream ended");
        self.close();
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
}

/// Parses `Retry-After` (delay-seconds or an HTTP date).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

impl Stream for EventSource {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.take_control(cx);
        if let Some(event) = this.pending.take() {
            return Poll::Ready(Some(Ok(event)));
        }
        loop {
            match &mut this.state {
                State::Closed => return Poll::Ready(None),
                State::Start => {
                    let fut = this.connect();
                    this.state = State::Connecting(fut);
                    this.start_idle();
                }
                State::Connecting(fut) => {
                    let result = match fut.as_mut().poll(cx) {
                        Poll::Ready(r) => r,
                        Poll::Pending => match this.poll_idle(cx) {
                            Poll::Ready(idle) => {
                                let failure = Error::new(Kind::Timeout(idle)).into();
                                if let Some(item) = this.fail(failure) {
                                    return Poll::Ready(Some(item));
                                }
                                continue;
                            }
                            Poll::Pending => return Poll::Pending,
                        },
                    };
                    let outcome = match result {
                        Ok(response) => this.on_response(response),
                        Err(e) => Err(Error::with_source(Kind::Request, e).into()),
                    };
                    match outcome {
                        Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                        Ok(None) => {}
                        Err(failure) => {
                            if let Some(item) = this.fail(failure) {
                                return Poll::Ready(Some(item));
                            }
                        }
                    }
                }
                State::ErrorBody(_) => {
                    let failure = ready!(this.poll_error_body(cx));
                    if let Some(item) = this.fail(failure) {
                        return Poll::Ready(Some(item));
                    }
                }
                State::Open(_) => match ready!(this.poll_open(cx)) {
                    Ok(Event::Message(m)) => {
                        let cfg = &this.config;
                        if cfg.end_data.as_deref() == Some(m.data()) {
                            tracing::info!(url = %cfg.url, "end sentinel received; stream closed");
                            this.finished = true;
                            this.close();
                            return Poll::Ready(None);
                        }
                        if cfg.end_types.iter().any(|t| t == m.event()) {
                            tracing::info!(url = %cfg.url, event = m.event(), "end event received; stream closed");
                            this.finished = true;
                            this.close();
                        }
                        return Poll::Ready(Some(Ok(Event::Message(m))));
                    }
                    Ok(event) => return Poll::Ready(Some(Ok(event))),
                    Err(failure) => {
                        if this.connection_delivered {
                            this.attempt = 0;
                            this.backoff.reset();
                        }
                        if let Some(item) = this.fail(failure) {
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

impl FusedStream for EventSource {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Closed)
    }
}
