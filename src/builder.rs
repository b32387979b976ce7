//! Configuration of an [`EventSource`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use url::Url;

use crate::codec::DEFAULT_MAX_EVENT_SIZE;
use crate::{Error, EventSource, RetryPolicy};

/// A hook run on every request before it is sent.
pub(crate) type RequestHook = Arc<dyn Fn(&mut reqwest::Request) + Send + Sync>;

/// The default idle timeout: 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything an [`EventSource`] needs to make its requests.
pub(crate) struct Config {
    pub(crate) client: reqwest::Client,
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) hook: Option<RequestHook>,
    pub(crate) policy: RetryPolicy,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) resend_after_events: bool,
    pub(crate) comments: bool,
    pub(crate) reconnect_events: bool,
    pub(crate) end_data: Option<String>,
    pub(crate) end_types: Vec<String>,
}

impl Config {
    /// Whether the stream has an end of its own (a sentinel or a terminal
    /// event type), so that ending without it means the answer was cut.
    pub(crate) fn has_end_marker(&self) -> bool {
        self.end_data.is_some() || !self.end_types.is_empty()
    }
}

/// Builds an [`EventSource`]; made by [`EventSource::builder`].
///
/// Setters take and return the builder by value; the first invalid input is
/// reported by [`build`](Self::build).
///
/// | setting | default |
/// |---|---|
/// | [`method`](Self::method) | `GET` |
/// | [`header`](Self::header) / [`headers`](Self::headers) | none besides `Accept: text/event-stream`, `Cache-Control: no-cache` and `Last-Event-ID` |
/// | [`body`](Self::body) | none |
/// | [`client`](Self::client) | one `reqwest::Client` shared by all streams built without one |
/// | [`on_request`](Self::on_request) | none |
/// | [`last_event_id`](Self::last_event_id) | `""` (no `Last-Event-ID` header) |
/// | [`retry_policy`](Self::retry_policy) | [`RetryPolicy::default`]: 1 s, ×2, 30 s cap, jitter, unlimited attempts |
/// | [`idle_timeout`](Self::idle_timeout) | 5 minutes |
/// | [`max_event_size`](Self::max_event_size) | 16 MiB |
/// | [`resend_after_events`](Self::resend_after_events) | off |
/// | [`comments`](Self::comments) | off |
/// | [`reconnect_events`](Self::reconnect_events) | off |
/// | [`end_on_data`](Self::end_on_data) | none |
/// | [`end_on_event`](Self::end_on_event) | none |
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
    client: Option<reqwest::Client>,
    method: Method,
    headers: HeaderMap,
    body: Option<Bytes>,
    hook: Option<RequestHook>,
    last_event_id: String,
    policy: RetryPolicy,
    idle_timeout: Option<Duration>,
    max_event_size: usize,
    resend_after_events: bool,
    comments: bool,
    reconnect_events: bool,
    end_data: Option<String>,
    end_types: Vec<String>,
    error: Option<Error>,
}

impl fmt::Debug for EventSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceBuilder")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &self.headers)
            .field("policy", &self.policy)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_event_size", &self.max_event_size)
            .finish_non_exhaustive()
    }
}

impl EventSourceBuilder {
    pub(crate) fn new(url: &str) -> Self {
        EventSourceBuilder {
            url: url.to_owned(),
            client: None,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: None,
            hook: None,
            last_event_id: String::new(),
            policy: RetryPolicy::default(),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            resend_after_events: false,
            comments: false,
            reconnect_events: false,
            end_data: None,
            end_types: Vec::new(),
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

    /// The HTTP client to use (for proxies, TLS settings, connection pools).
    /// Give it no total `timeout`: it would cut long-lived streams; use
    /// [`idle_timeout`](Self::idle_timeout) instead. Default: one client,
    /// built on first use with reqwest's defaults and shared by every stream
    /// built without one.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// A hook run on each request just before it is sent, on every attempt;
    /// it may change anything (for instance put a fresh token in
    /// `Authorization`). Default: none.
    pub fn on_request<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut reqwest::Request) + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The last event ID to start from, sent as `Last-Event-ID` on the first
    /// request (for instance one saved by an earlier run). Default: `""`,
    /// which sends no such header.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection policy. Default: [`RetryPolicy::default`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reconnects when no bytes at all (comments included) arrive for this
    /// long, also while waiting for the response head; the silence is
    /// noticed at most an eighth of the period late (the timer is checked
    /// eight times per period rather than reset on every chunk). `None`
    /// waits for ever. Default: 5 minutes ([`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
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
    /// policy's multiplier is not at least 1, the idle timeout or the
    /// maximum event size is zero, the last event ID holds a character a
    /// header cannot carry, or the shared default client could not be built.
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
        self.policy.validate().map_err(Error::builder)?;
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(Error::builder(
                "idle timeout must not be zero; use None to disable it",
            ));
        }
        if self.max_event_size == 0 {
            return Err(Error::builder("max event size must not be zero"));
        }
        if HeaderValue::from_bytes(self.last_event_id.as_bytes()).is_err() {
            return Err(Error::builder(format!(
                "last event ID {:?} cannot be sent in a header",
                self.last_event_id
            )));
        }
        let client = match self.client {
            Some(c) => c,
            None => default_client()?,
        };
        let config = Config {
            client,
            url,
            method: self.method,
            headers: self.headers,
            body: self.body,
            hook: self.hook,
            policy: self.policy,
            idle_timeout: self.idle_timeout,
            resend_after_events: self.resend_after_events,
            comments: self.comments,
            reconnect_events: self.reconnect_events,
            end_data: self.end_data,
            end_types: self.end_types,
        };
        Ok(EventSource::from_config(
            config,
            self.max_event_size,
            &self.last_event_id,
        ))
    }
}

/// The client shared by every stream built without one: a thousand
/// subscriptions share one connection pool and one TLS configuration.
fn default_client() -> Result<reqwest::Client, Error> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .build()
                .map_err(|e| format!("building the default HTTP client failed: {e}"))
        })
        .clone()
        .map_err(Error::builder)
}
