//! Configuration of an [`EventSource`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use url::Url;

use crate::checkpoint::CheckpointStore;
use crate::codec::DEFAULT_MAX_EVENT_SIZE;
use crate::error::Kind;
use crate::pool::Lease;
use crate::redact::{mark_sensitive, Redacted};
use crate::{ClientPool, Error, EventSource, RetryPolicy};

/// A hook run on every request before it is sent.
pub(crate) type RequestHook = Arc<dyn Fn(&mut reqwest::Request, &Attempt<'_>) + Send + Sync>;

/// The default idle timeout: 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The default response timeout: 5 minutes, as long as the
/// [default idle timeout](DEFAULT_IDLE_TIMEOUT).
///
/// A proxy that buffers responses (nginx's default `proxy_buffering`)
/// withholds the head of a slow stream until its buffer fills: a minute or
/// more for one small event a second. A shorter timeout would give up on,
/// and restart, a stream that curl or a browser receives. The wait is not
/// silent: after [`SLOW_HEAD_WARNING`](crate::SLOW_HEAD_WARNING) a warning
/// is logged that names buffering as the likely cause.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a response head may take before a warning is logged (once per
/// attempt) that a buffering proxy may be holding it back: 10 seconds.
pub const SLOW_HEAD_WARNING: Duration = Duration::from_secs(10);

/// What the request hook ([`EventSourceBuilder::on_attempt`]) is told about
/// the attempt it prepares.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub(crate) number: u32,
    pub(crate) last_event_id: &'a str,
    pub(crate) previous: Option<&'a Error>,
}

impl<'a> Attempt<'a> {
    /// The reconnection attempt in a row: 0 for the first request and after
    /// a healthy connection, `n` for the `n`th reconnection attempt since.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The last event ID the request sends as `Last-Event-ID` (`""`: none).
    pub fn last_event_id(&self) -> &'a str {
        self.last_event_id
    }

    /// Why the previous connection ended or failed; `None` for the first
    /// request. For instance `previous().and_then(Error::status)` is
    /// `Some(401)` when a token expired.
    pub fn previous(&self) -> Option<&'a Error> {
        self.previous
    }
}

/// Everything an [`EventSource`] needs to make its requests.
pub(crate) struct Config {
    pub(crate) client: reqwest::Client,
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    /// Headers the caller marked as credentials, besides the usual ones.
    pub(crate) sensitive: Vec<HeaderName>,
    pub(crate) body: Option<Bytes>,
    pub(crate) hook: Option<RequestHook>,
    /// `None`: [`RetryPolicy::default`], shared by every stream rather
    /// than 120 bytes in each (see [`Config::policy`]).
    pub(crate) policy: Option<Box<RetryPolicy>>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) resend_after_events: bool,
    /// Resume a non-GET answer by GET, to this URL (`Some` when on). Boxed:
    /// a `Url` is 88 bytes, and most streams never resume by GET.
    pub(crate) resume_by_get: Option<Box<Url>>,
    pub(crate) accept_json: bool,
    pub(crate) comments: bool,
    pub(crate) reconnect_events: bool,
    /// `None` when no marker is set (most streams): boxed, so a stream
    /// without them carries one word instead of three collections.
    pub(crate) markers: Option<Box<Markers>>,
}

/// The events that end a stream or fail it, from
/// [`end_on_data`](EventSourceBuilder::end_on_data),
/// [`end_on_event`](EventSourceBuilder::end_on_event) and
/// [`error_on_event`](EventSourceBuilder::error_on_event).
pub(crate) struct Markers {
    pub(crate) end_data: Option<String>,
    pub(crate) end_types: Vec<String>,
    pub(crate) error_types: Vec<String>,
}

impl Config {
    /// The reconnection policy.
    pub(crate) fn policy(&self) -> &RetryPolicy {
        static DEFAULT: std::sync::LazyLock<RetryPolicy> =
            std::sync::LazyLock::new(RetryPolicy::default);
        self.policy.as_deref().unwrap_or(&DEFAULT)
    }

    /// Whether the stream has an end of its own (a sentinel or a terminal
    /// event type), so that ending without it means the answer was cut.
    pub(crate) fn has_end_marker(&self) -> bool {
        self.markers
            .as_deref()
            .is_some_and(|m| m.end_data.is_some() || !m.end_types.is_empty())
    }
}

/// Where a stream's HTTP client comes from.
enum ClientChoice {
    Shared,
    Client(reqwest::Client),
    Pool(ClientPool),
}

/// Builds an [`EventSource`]; made by [`EventSource::builder`].
///
/// Setters take and return the builder by value; the first invalid input is
/// reported by [`build`](Self::build).
///
/// | setting | default |
/// |---|---|
/// | [`method`](Self::method) | `GET` |
/// | [`header`](Self::header) / [`headers`](Self::headers) | none besides `Accept: text/event-stream`, `Cache-Control: no-cache` (each unless you set your own; see [`add_sse_headers`](crate::add_sse_headers)) and `Last-Event-ID` |
/// | [`body`](Self::body) | none |
/// | [`client`](Self::client) / [`client_pool`](Self::client_pool) | one [`ClientPool`] shared by all streams built without either |
/// | [`on_request`](Self::on_request) / [`on_attempt`](Self::on_attempt) | none |
/// | [`sensitive_header`](Self::sensitive_header) | `Authorization`, `Proxy-Authorization`, `Cookie`, `X-Api-Key`, `Api-Key` |
/// | [`last_event_id`](Self::last_event_id) | `""` (no `Last-Event-ID` header) |
/// | [`checkpoint`](Self::checkpoint) | none |
/// | [`retry_policy`](Self::retry_policy) | [`RetryPolicy::default`]: 1 s, ×2, 30 s cap, jitter, unlimited attempts |
/// | [`idle_timeout`](Self::idle_timeout) | 5 minutes |
/// | [`response_timeout`](Self::response_timeout) | 5 minutes |
/// | [`max_event_size`](Self::max_event_size) | 16 MiB |
/// | [`resend_after_events`](Self::resend_after_events) | off |
/// | [`resume_by_get`](Self::resume_by_get) / [`resume_url`](Self::resume_url) | off / the stream's URL |
/// | [`accept_json`](Self::accept_json) | off |
/// | [`comments`](Self::comments) | off |
/// | [`reconnect_events`](Self::reconnect_events) | off |
/// | [`end_on_data`](Self::end_on_data) | none |
/// | [`end_on_event`](Self::end_on_event) | none |
/// | [`error_on_event`](Self::error_on_event) | none |
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ssekit::{EventSource, RetryPolicy};
///
/// let es = EventSource::builder("http://127.0.0.1:8080/v1/chat")
///     .method(reqwest::Method::POST)
///     .header("authorization", "Bearer token")
///     .header("content-type", "application/json")
///     .body(r#"{"stream":true}"#)
///     .retry_policy(RetryPolicy::default().max_attempts(3))
///     .idle_timeout(Some(Duration::from_secs(60)))
///     .build()?;
/// # Ok::<(), ssekit::Error>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct EventSourceBuilder {
    url: String,
    client: ClientChoice,
    method: Method,
    headers: HeaderMap,
    sensitive: Vec<HeaderName>,
    body: Option<Bytes>,
    hook: Option<RequestHook>,
    last_event_id: String,
    #[cfg(feature = "metrics")]
    metrics_label: Option<String>,
    /// The ID loaded by `checkpoint`, which wins over `last_event_id`.
    checkpoint_id: Option<String>,
    /// `None` until `retry_policy` is called: the shared default.
    policy: Option<RetryPolicy>,
    idle_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    max_event_size: usize,
    resend_after_events: bool,
    resume_by_get: bool,
    resume_url: Option<String>,
    accept_json: bool,
    comments: bool,
    reconnect_events: bool,
    end_data: Option<String>,
    end_types: Vec<String>,
    error_types: Vec<String>,
    error: Option<Error>,
}

impl fmt::Debug for EventSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut headers = self.headers.clone();
        mark_sensitive(&mut headers, &self.sensitive);
        let mut d = f.debug_struct("EventSourceBuilder");
        match Url::parse(&self.url) {
            Ok(url) => d.field("url", &Redacted(&url)),
            Err(_) => d.field("url", &"(invalid URL)"),
        };
        d.field("method", &self.method)
            .field("headers", &headers)
            .field("policy", &self.policy.clone().unwrap_or_default())
            .field("idle_timeout", &self.idle_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_event_size", &self.max_event_size)
            .finish_non_exhaustive()
    }
}

impl EventSourceBuilder {
    pub(crate) fn new(url: &str) -> Self {
        EventSourceBuilder {
            url: url.to_owned(),
            client: ClientChoice::Shared,
            method: Method::GET,
            headers: HeaderMap::new(),
            sensitive: Vec::new(),
            body: None,
            hook: None,
            last_event_id: String::new(),
            #[cfg(feature = "metrics")]
            metrics_label: None,
            checkpoint_id: None,
            policy: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            response_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            resend_after_events: false,
            resume_by_get: false,
            resume_url: None,
            accept_json: false,
            comments: false,
            reconnect_events: false,
            end_data: None,
            end_types: Vec::new(),
            error_types: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn fail(mut self, msg: String) -> Self {
        self.error.get_or_insert_with(|| Error::builder(msg));
        self
    }

    /// The request method. Default: `GET`. See
    /// [`resend_after_events`](Self::resend_after_events) for what happens
    /// to other methods on reconnection.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a request header (sent on every attempt). Invalid names or
    /// values are reported by [`build`](Self::build). Default: none besides
    /// `Accept`, `Cache-Control` and `Last-Event-ID`, which this crate sets.
    ///
    /// Your own `Accept` and `Cache-Control` are kept, never replaced:
    /// `text/event-stream` is added to an `Accept` that does not accept it
    /// (see [`add_sse_headers`](crate::add_sse_headers)). An MCP server
    /// wants `Accept: application/json, text/event-stream`, and gets it.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: fmt::Display,
        V: TryInto<HeaderValue>,
        V::Error: fmt::Display,
    {
        let name = match name.try_into() {
            Ok(n) => n,
            Err(e) => return self.fail(format!("invalid header name: {e}")),
        };
        match value.try_into() {
            Ok(v) => {
                self.headers.append(name, v);
                self
            }
            Err(e) => self.fail(format!("invalid value for header {name}: {e}")),
        }
    }

    /// Adds all these request headers. Default: none.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        for (name, value) in &headers {
            self.headers.append(name, value.clone());
        }
        self
    }

    /// The request body, kept and re-sent on every attempt. Default: none.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// One HTTP client for this stream (for proxies, TLS settings,
    /// connection pools). Give it no total `timeout`: it would cut
    /// long-lived streams; use [`idle_timeout`](Self::idle_timeout) instead.
    ///
    /// Two things differ from a [`client_pool`](Self::client_pool): one
    /// `reqwest::Client` opens a single HTTP/2 connection per origin, so
    /// streams beyond the server's concurrent-stream limit that share it
    /// wait (until the [`response_timeout`](Self::response_timeout), then
    /// retry); and it follows redirects by its own policy, which drops only
    /// `Authorization`, `Cookie` and `Proxy-Authorization` when a redirect
    /// leaves the origin. Build it with
    /// `.redirect(reqwest::redirect::Policy::none())` to let the stream
    /// follow redirects itself and drop every credential header. Default:
    /// the shared [`ClientPool`].
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = ClientChoice::Client(client);
        self
    }

    /// Takes this stream's client from `pool` (see [`ClientPool`]): many
    /// streams to one HTTP/2 origin are spread over enough connections, and
    /// redirects are followed by the stream. Default: one pool shared by all
    /// streams built without a client, with reqwest's default settings.
    pub fn client_pool(mut self, pool: ClientPool) -> Self {
        self.client = ClientChoice::Pool(pool);
        self
    }

    /// A hook run on each request just before it is sent, on every attempt;
    /// it may change anything (for instance put a fresh token in
    /// `Authorization`). Replaces an [`on_attempt`](Self::on_attempt) hook.
    /// Default: none.
    pub fn on_request<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut reqwest::Request) + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(move |request, _: &Attempt<'_>| hook(request)));
        self
    }

    /// Like [`on_request`](Self::on_request), with what is known of the
    /// attempt: its number, the last event ID and the previous failure. A
    /// hook can refresh a token only after a 401, or move to a fallback URL
    /// (`*request.url_mut() = ...`) after repeated failures. It runs in the
    /// task that polls the stream. Replaces an `on_request` hook. Default:
    /// none.
    ///
    /// ```
    /// use reqwest::StatusCode;
    /// use ssekit::EventSource;
    ///
    /// let es = EventSource::builder("http://127.0.0.1:8080/events")
    ///     .on_attempt(|request, attempt| {
    ///         let expired = attempt
    ///             .previous()
    ///             .and_then(|e| e.status())
    ///             .is_some_and(|s| s == StatusCode::UNAUTHORIZED);
    ///         if expired {
    ///             // fetch a new token and set it on `request` here
    ///         }
    ///         if attempt.number() >= 3 {
    ///             *request.url_mut() = "http://127.0.0.1:8081/events".parse().unwrap();
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), ssekit::Error>(())
    /// ```
    pub fn on_attempt<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut reqwest::Request, &Attempt<'_>) + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Marks a request header as a credential, like `Authorization`: it is
    /// not sent to another origin after a redirect the stream follows, and
    /// is shown as `Sensitive` in `Debug` output. `Authorization`,
    /// `Proxy-Authorization`, `Cookie`, `X-Api-Key` and `Api-Key` always
    /// are. Invalid names are reported by [`build`](Self::build).
    ///
    /// The exception: a `reqwest::Client` given with
    /// [`client`](Self::client) follows redirects by its own policy, which
    /// strips only `Authorization`, `Cookie` and `Proxy-Authorization`;
    /// the stream cannot strip the others. [`build`](Self::build) logs a
    /// warning naming them. Build such a client with
    /// `.redirect(reqwest::redirect::Policy::none())`: the stream then
    /// follows redirects itself, stripping every credential. Streams on a
    /// [`ClientPool`] (the default) always strip them.
    pub fn sensitive_header<K>(mut self, name: K) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: fmt::Display,
    {
        match name.try_into() {
            Ok(n) => {
                self.sensitive.push(n);
                self
            }
            Err(e) => self.fail(format!("invalid header name: {e}")),
        }
    }

    /// The last event ID to start from, sent as `Last-Event-ID` on the first
    /// request (for instance one saved by an earlier run). Default: `""`,
    /// which sends no such header.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// Starts from the ID last saved under `name` in `store` (see
    /// [`checkpoint`](crate::checkpoint)): it is read now, and sent as
    /// `Last-Event-ID` on the first request. A stored ID wins over
    /// [`last_event_id`](Self::last_event_id), which remains the start when
    /// nothing is stored. Commit processed events with a
    /// [`Checkpoint`](crate::Checkpoint) on the same store and name.
    /// Default: none.
    ///
    /// On a request that is not a `GET`, the ID goes out with the request
    /// itself, which is re-sent: see the [module docs](crate::checkpoint)
    /// for what a stored ID means there.
    ///
    /// A load error is reported by [`build`](Self::build): an error for
    /// which [`Error::is_builder`] is true, whose source is the store's
    /// `io::Error` (for [`FileCheckpoints`](crate::FileCheckpoints), naming
    /// the file; print it with `{:#}`).
    ///
    /// ```
    /// use ssekit::{CheckpointStore, EventSource, MemoryCheckpoints};
    ///
    /// let store = MemoryCheckpoints::new();
    /// store.save("orders", "1041")?;
    /// let es = EventSource::builder("http://127.0.0.1:8080/orders")
    ///     .checkpoint(&store, "orders")
    ///     .build()?;
    /// assert_eq!(es.last_event_id(), "1041");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint<S: CheckpointStore + ?Sized>(mut self, store: &S, name: &str) -> Self {
        match store.load(name) {
            Ok(id) => {
                tracing::debug!(name, id = ?id, "loaded checkpoint");
                self.checkpoint_id = id;
            }
            Err(e) => {
                let msg = format!("cannot load checkpoint {name:?}");
                self.error
                    .get_or_insert_with(|| Error::with_source(Kind::Builder(msg), e));
            }
        }
        self
    }

    /// The reconnection policy. Default: [`RetryPolicy::default`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Reconnects when no bytes at all (comments included) arrive for this
    /// long, also while waiting for the response head; the silence is
    /// noticed at most an eighth of the period late (the timer is checked
    /// eight times per period rather than reset on every chunk). `None`
    /// waits for ever. Default: 5 minutes ([`DEFAULT_IDLE_TIMEOUT`]).
    ///
    /// How: while a connection is open, its silence is watched by one
    /// thread per process, `ssekit-idle`, started on first use: the stream
    /// sets a flag when bytes arrive (no clock read, no Tokio timer), and the
    /// thread counts the ticks without bytes and wakes the stream's task.
    /// An open stream thus keeps no Tokio timer: any registered timer makes
    /// Tokio's driver work on every wait for I/O (about 190 instructions
    /// each under callgrind, a wait per event on a stream of one small event
    /// per chunk). Under a paused Tokio clock (`tokio::time::pause`, tests)
    /// a Tokio timer is used instead, so that the paused clock drives it.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Bounds the wait for each response head (the status and headers): a
    /// server that accepts the connection and never answers fails the
    /// attempt after this long, and it is retried with backoff. Separate from
    /// the [`idle_timeout`](Self::idle_timeout), which also applies while
    /// waiting (the shorter wins). `None` waits for ever. Default: 5 minutes
    /// ([`DEFAULT_RESPONSE_TIMEOUT`]), long enough for a buffering proxy
    /// that withholds the head of a slow stream; a head slower than
    /// [`SLOW_HEAD_WARNING`](crate::SLOW_HEAD_WARNING) is logged as a
    /// warning that names buffering as the likely cause.
    pub fn response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The largest accepted event, in bytes of its field lines; a larger one
    /// ends the stream with an error for which
    /// [`Error::is_too_large`] is true. Default: 16 MiB.
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// Whether a request whose method is not `GET` is re-sent after events
    /// were delivered. By default it is re-sent only until the first event:
    /// re-sending a prompt to an LLM after half an answer would duplicate
    /// output and cost, so the stream ends instead with an error for which
    /// [`Error::is_not_resent`] is true. Default: off.
    pub fn resend_after_events(mut self, on: bool) -> Self {
        self.resend_after_events = on;
        self
    }

    /// Resumes the answer to a request that is not a `GET` by `GET`, as MCP
    /// Streamable HTTP (revision 2025-11-25) asks: "resumption is always via
    /// HTTP GET with `Last-Event-ID`", never by re-sending the request (a
    /// tool call would run twice). Default: off.
    ///
    /// When on, events with empty data are not yielded: MCP servers send a
    /// *priming* event (an `id:`, a `retry:` and an empty `data:`) to give
    /// the client a place to resume from, not a message. Once the answer
    /// has carried an event ID (a priming event's counts):
    ///
    /// - every reconnection is a `GET` to [`resume_url`](Self::resume_url)
    ///   (default: the stream's URL) with `Last-Event-ID`, your headers
    ///   (`Mcp-Session-Id` among them) and no body, `Content-Type`,
    ///   `Content-Length` or `Content-Encoding`;
    /// - the first reconnection waits exactly the server's `retry:` (or the
    ///   policy's initial delay), with no jitter;
    /// - a graceful end of the answer is not a complete answer but a pause
    ///   (MCP "polling"): it is resumed. Stop reading (drop the stream, or
    ///   set an [end marker](Self::end_on_event)) once the answer you wait
    ///   for has arrived.
    ///
    /// When the answer opened but broke before any event ID arrived, there
    /// is nothing to resume from: the request is not re-sent (unless
    /// [`resend_after_events`](Self::resend_after_events) is on) and the
    /// stream ends with an error for which [`Error::is_not_resent`] is true
    /// and whose message says why. Failures before an answer opened
    /// (connection refused, 503) re-send the request as without this
    /// option. No effect on a `GET` stream.
    ///
    /// ```
    /// use ssekit::EventSource;
    ///
    /// let call = EventSource::post("http://127.0.0.1:3000/mcp")
    ///     .header("accept", "application/json, text/event-stream")
    ///     .header("content-type", "application/json")
    ///     .header("mcp-session-id", "1868a90c")
    ///     .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#)
    ///     .resume_by_get(true)
    ///     .accept_json(true)
    ///     .build()?;
    /// # Ok::<(), ssekit::Error>(())
    /// ```
    pub fn resume_by_get(mut self, on: bool) -> Self {
        self.resume_by_get = on;
        self
    }

    /// The URL that [`resume_by_get`](Self::resume_by_get) resumes from
    /// (it also turns that option on). A relative URL is resolved against
    /// the stream's URL; an invalid one is reported by
    /// [`build`](Self::build). Default: the stream's URL.
    pub fn resume_url(mut self, url: impl Into<String>) -> Self {
        self.resume_by_get = true;
        self.resume_url = Some(url.into());
        self
    }

    /// Accepts a `200` answer of type `application/json` (or any
    /// `application/*+json`), as MCP servers may give instead of a stream:
    /// the stream yields [`Event::Open`](crate::Event::Open) (with the
    /// response's headers), then one [`Event::Message`](crate::Event::Message)
    /// of type `message` whose data is the whole body (decoded as UTF-8,
    /// at most [`max_event_size`](Self::max_event_size) bytes), then ends
    /// cleanly. When you set no `Accept`, it becomes `application/json,
    /// text/event-stream`. Default: off (such an answer fails the stream
    /// with an error for which [`Error::is_content_type`] is true).
    pub fn accept_json(mut self, on: bool) -> Self {
        self.accept_json = on;
        self
    }

    /// The `stream` label of this stream's metrics (feature `metrics`; see
    /// the table in the crate docs' Metrics section). Default: the URL's
    /// origin (`https://api.example.com`), which keeps the label's values
    /// few; give streams to one origin labels of their own to tell them
    /// apart.
    #[cfg(feature = "metrics")]
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.metrics_label = Some(label.into());
        self
    }

    /// Whether comment lines are yielded as [`Event::Comment`](crate::Event::Comment).
    /// Default: off.
    pub fn comments(mut self, on: bool) -> Self {
        self.comments = on;
        self
    }

    /// Whether each scheduled reconnection is yielded as
    /// [`Event::Reconnecting`](crate::Event::Reconnecting), with its attempt
    /// number, delay and cause. Default: off.
    pub fn reconnect_events(mut self, on: bool) -> Self {
        self.reconnect_events = on;
        self
    }

    /// Ends the stream cleanly when an event's data is exactly `sentinel`
    /// (OpenAI's `[DONE]`): that event is not yielded, the connection is
    /// closed even if the server keeps it open, and the stream yields `None`.
    /// Default: none.
    ///
    /// With an end marker set, a stream that ends for good before seeing it
    /// ends with an error for which [`Error::is_truncated`] is true.
    pub fn end_on_data(mut self, sentinel: impl Into<String>) -> Self {
        self.end_data = Some(sentinel.into());
        self
    }

    /// Ends the stream cleanly after yielding an event of this type
    /// (Anthropic's `message_stop`, OpenAI's `response.completed` or
    /// `response.failed`); may be called several times. The connection is
    /// closed even if the server keeps it open. Default: none.
    ///
    /// With an end marker set, a stream that ends for good before seeing it
    /// ends with an error for which [`Error::is_truncated`] is true.
    pub fn end_on_event(mut self, event_type: impl Into<String>) -> Self {
        self.end_types.push(event_type.into());
        self
    }

    /// Ends the stream with an error when an event of this type arrives:
    /// `error`, as Anthropic and several OpenAI-compatible servers send
    /// after a 200. The event is not yielded; the error, for which
    /// [`Error::is_error_event`] is true, carries it
    /// ([`Error::event`]: type, data, id), and [`Error::is_truncated`] is
    /// true when an end marker was configured. May be called several times.
    /// Default: none.
    pub fn error_on_event(mut self, event_type: impl Into<String>) -> Self {
        self.error_types.push(event_type.into());
        self
    }

    /// Sets `Authorization: Bearer <token>` (marked sensitive, so it is
    /// redacted from debug output). Invalid tokens are reported by
    /// [`build`](Self::build).
    pub fn bearer_auth(mut self, token: impl fmt::Display) -> Self {
        match HeaderValue::try_from(format!("Bearer {token}")) {
            Ok(mut v) => {
                v.set_sensitive(true);
                self.headers.insert(reqwest::header::AUTHORIZATION, v);
                self
            }
            Err(_) => self.fail("invalid bearer token: not a valid header value".into()),
        }
    }

    /// Builds the stream. Nothing is sent until it is first polled.
    ///
    /// # Errors
    ///
    /// An error for which [`Error::is_builder`] is true when the URL is not
    /// an absolute `http` or `https` URL, a header was invalid, the retry
    /// policy's multiplier is not at least 1, the idle timeout, the
    /// response timeout or the maximum event size is zero, the last event ID holds a character a
    /// header cannot carry, or the client pool could not build a client.
    pub fn build(self) -> Result<EventSource, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let url = Url::parse(&self.url)
            .map_err(|e| Error::builder(format!("invalid URL {:?}: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::builder(format!(
                "unsupported URL scheme {:?} (expected http or https)",
                url.scheme()
            )));
        }
        if let Some(policy) = &self.policy {
            policy.validate().map_err(Error::builder)?;
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(Error::builder(
                "idle timeout must not be zero; use None to disable it",
            ));
        }
        if self.max_event_size == 0 {
            return Err(Error::builder("max event size must not be zero"));
        }
        let start_id = self.checkpoint_id.as_deref().unwrap_or(&self.last_event_id);
        if HeaderValue::from_bytes(start_id.as_bytes()).is_err() {
            return Err(Error::builder(format!(
                "last event ID {start_id:?} cannot be sent in a header"
            )));
        }
        if self.response_timeout == Some(Duration::ZERO) {
            return Err(Error::builder(
                "response timeout must not be zero; use None to disable it",
            ));
        }
        let (client, lease) = match self.client {
            ClientChoice::Client(c) => {
                warn_if_client_may_leak(&self.headers, &self.sensitive, &url);
                (c, None)
            }
            ClientChoice::Shared => lease(ClientPool::global())?,
            ClientChoice::Pool(pool) => lease(&pool)?,
        };
        let resume_by_get = match (self.resume_by_get, &self.resume_url) {
            (false, _) => None,
            (true, None) => Some(Box::new(url.clone())),
            (true, Some(to)) => {
                Some(Box::new(url.join(to).map_err(|e| {
                    Error::builder(format!("invalid resume URL {to:?}: {e}"))
                })?))
            }
        };
        if let Some(to) = &resume_by_get {
            if !matches!(to.scheme(), "http" | "https") {
                return Err(Error::builder(format!(
                    "unsupported resume URL scheme {:?} (expected http or https)",
                    to.scheme()
                )));
            }
        }
        let mut headers = self.headers;
        if self.accept_json && !headers.contains_key(reqwest::header::ACCEPT) {
            headers.insert(
                reqwest::header::ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            );
        }
        mark_sensitive(&mut headers, &self.sensitive);
        let config = Config {
            client,
            url,
            method: self.method,
            headers,
            sensitive: self.sensitive,
            body: self.body,
            hook: self.hook,
            policy: self.policy.map(Box::new),
            idle_timeout: self.idle_timeout,
            response_timeout: self.response_timeout,
            resend_after_events: self.resend_after_events,
            resume_by_get,
            accept_json: self.accept_json,
            comments: self.comments,
            reconnect_events: self.reconnect_events,
            markers: (self.end_data.is_some()
                || !self.end_types.is_empty()
                || !self.error_types.is_empty())
            .then(|| {
                Box::new(Markers {
                    end_data: self.end_data,
                    end_types: self.end_types,
                    error_types: self.error_types,
                })
            }),
        };
        #[cfg(feature = "metrics")]
        let metrics_label = self
            .metrics_label
            .unwrap_or_else(|| config.url.origin().ascii_serialization());
        Ok(EventSource::from_config(
            config,
            lease,
            self.max_event_size,
            self.checkpoint_id.as_deref().unwrap_or(&self.last_event_id),
            #[cfg(feature = "metrics")]
            metrics_label,
        ))
    }
}

/// Warns that a client given with `client(...)` follows redirects by its own
/// policy, which forwards to another origin every credential header but
/// `Authorization`, `Cookie` and `Proxy-Authorization`: the stream cannot
/// strip them, as it does when it follows redirects itself (SPEC rule 22).
fn warn_if_client_may_leak(headers: &HeaderMap, sensitive: &[HeaderName], url: &Url) {
    let exposed: Vec<&str> = headers
        .keys()
        .filter(|n| {
            crate::redact::is_credential(n, sensitive)
                && !matches!(
                    n.as_str(),
                    "authorization" | "cookie" | "proxy-authorization"
                )
        })
        .map(HeaderName::as_str)
        .collect();
    if !exposed.is_empty() {
        tracing::warn!(
            url = %Redacted(url),
            headers = ?exposed,
            "a client given with client(...) follows redirects by its own policy, which sends \
             these credential headers to another origin: build it with \
             .redirect(reqwest::redirect::Policy::none()) to have the stream follow redirects \
             and strip them"
        );
    }
}

/// A place on one of `pool`'s clients (whose clients leave redirects to the
/// stream).
fn lease(pool: &ClientPool) -> Result<(reqwest::Client, Option<Lease>), Error> {
    let lease = pool.lease()?;
    Ok((lease.client.clone(), Some(lease)))
}
