//! The error type of the client.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::policy::FailureKind;
use crate::{DecodeError, MessageEvent};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest part of an error response's body kept in an [`Error`].
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// What went wrong with an [`EventSource`](crate::EventSource).
///
/// An `Err` from the stream is terminal: the stream yields `None` afterwards.
/// The same type also describes the transient failures that cause a
/// reconnection ([`Reconnect::cause`](crate::Reconnect::cause)).
///
/// The predicates look through the whole chain: for an error that ended the
/// stream after too many attempts, [`status`](Error::status) is the status of
/// the last attempt.
///
/// # Example
///
/// ```no_run
/// # async fn run() {
/// use futures::StreamExt;
/// use ssekit::{Event, EventSource};
///
/// let mut es = EventSource::new("http://127.0.0.1:8080/events").unwrap();
/// while let Some(item) = es.next().await {
///     match item {
///         Ok(Event::Message(m)) => println!("{}", m.data()),
///         Ok(_) => {}
///         Err(e) if e.status().is_some() => {
///             eprintln!("server said {}: {}", e.status().unwrap(), e.body().unwrap_or(""));
///         }
///         Err(e) => eprintln!("stream failed: {e}"),
///     }
/// }
/// # }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<BoxError>,
    /// The stream ended before its configured end marker.
    truncated: bool,
}

pub(crate) enum Kind {
    /// Invalid configuration, reported by `build()`.
    Builder(String),
    /// The request could not be sent or its response head not read; with
    /// the proxy it went through (credentials hidden), when known.
    Request(Option<Box<str>>),
    /// Reading the body failed.
    Body,
    /// No bytes arrived for the idle timeout.
    Timeout(Duration),
    /// No response head arrived within the response timeout.
    ResponseTimeout(Duration),
    /// A redirect that cannot be followed: loop, too many, bad scheme.
    Redirect(String),
    /// A `Content-Encoding` that was not decoded.
    Encoding(String),
    /// The server sent an event of a type configured as an error.
    ErrorEvent(Box<MessageEvent>),
    /// The time budget for consecutive failed attempts ran out; the source is
    /// the last cause.
    RetryBudget { attempts: u32, elapsed: Duration },
    /// A status the stream does not accept.
    Status(Box<Response>),
    /// A 200 whose media type is not `text/event-stream`.
    ContentType(Box<Response>),
    /// An event larger than the configured limit.
    TooLarge(usize),
    /// The server ended a 200 body cleanly.
    Eof,
    /// The caller asked for a reconnection.
    Requested,
    /// Too many attempts in a row without progress; the source is the last
    /// cause.
    RetriesExhausted(u32),
    /// A non-GET request lost its connection and is not re-sent.
    NotResent(NotResent),
    /// The server ended the body before the configured end marker.
    Truncated,
    /// A [`Dispatcher`](crate::Dispatcher)'s driver task ended without
    /// finishing: it panicked, was aborted, or its runtime shut down.
    DriverStopped { panicked: bool },
}

/// Why a non-GET request is not re-sent (SPEC rule 25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotResent {
    /// Events were delivered: re-sending would duplicate them.
    AfterEvents,
    /// `resume_by_get` is on, but the answer carried no event ID to resume
    /// from.
    NoId,
}

/// The parts of an unexpected HTTP response kept in an error.
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
    pub(crate) url: url::Url,
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                source: None,
                truncated: false,
            }),
        }
    }

    pub(crate) fn with_source(kind: Kind, source: impl Into<BoxError>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                source: Some(source.into()),
                truncated: false,
            }),
        }
    }

    pub(crate) fn builder(msg: impl Into<String>) -> Self {
        Error::new(Kind::Builder(msg.into()))
    }

    pub(crate) fn set_truncated(&mut self) {
        self.inner.truncated = true;
    }

    pub(crate) fn kind(&self) -> &Kind {
        &self.inner.kind
    }

    /// This error and the `ssekit` errors below it, outermost first.
    fn chain(&self) -> impl Iterator<Item = &Error> {
        std::iter::successors(Some(self), |e| {
            e.inner.source.as_deref()?.downcast_ref::<Error>()
        })
    }

    fn reqwest(&self) -> Option<&reqwest::Error> {
        self.chain()
            .find_map(|e| e.inner.source.as_deref()?.downcast_ref::<reqwest::Error>())
    }

    fn response(&self) -> Option<&Response> {
        self.chain().find_map(|e| match &e.inner.kind {
            Kind::Status(r) | Kind::ContentType(r) => Some(&**r),
            _ => None,
        })
    }

    /// True for an invalid configuration (bad URL, header, policy),
    /// reported by [`build`](crate::EventSourceBuilder::build).
    pub fn is_builder(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::Builder(_)))
    }

    /// True when no bytes arrived for the idle timeout, or the HTTP client's
    /// own timeout fired.
    pub fn is_timeout(&self) -> bool {
        self.chain()
            .any(|e| matches!(e.kind(), Kind::Timeout(_) | Kind::ResponseTimeout(_)))
            || self.reqwest().is_some_and(reqwest::Error::is_timeout)
    }

    /// True when the connection could not be established (refused,
    /// unreachable, DNS failure, or a failed TLS handshake).
    pub fn is_connect(&self) -> bool {
        self.reqwest().is_some_and(reqwest::Error::is_connect)
    }

    /// True when no response head arrived within the response timeout
    /// ([`EventSourceBuilder::response_timeout`](crate::EventSourceBuilder::response_timeout)).
    /// [`is_timeout`](Self::is_timeout) is true as well.
    pub fn is_response_timeout(&self) -> bool {
        self.chain()
            .any(|e| matches!(e.kind(), Kind::ResponseTimeout(_)))
    }

    /// True when the TLS handshake failed in a way retrying cannot fix: the
    /// server's certificate is not trusted or not valid for the host, or
    /// client and server have no TLS version or cipher in common. Such a
    /// failure ends the stream at once.
    pub fn is_tls(&self) -> bool {
        self.failure_kind() == FailureKind::Tls
    }

    /// True for a redirect that cannot be followed: a loop, too many
    /// redirects, or a `Location` with a scheme other than `http` or
    /// `https`. Such a failure ends the stream at once.
    pub fn is_redirect(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::Redirect(_)))
            || self.reqwest().is_some_and(reqwest::Error::is_redirect)
    }

    /// True when the response's `Content-Encoding` could not be decoded
    /// (an unknown encoding, or one whose feature is turned off); the
    /// [`Display`](std::fmt::Display) names it.
    pub fn is_encoding(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::Encoding(_)))
    }

    /// True when the server sent an event of a type configured with
    /// [`error_on_event`](crate::EventSourceBuilder::error_on_event); see
    /// [`event`](Self::event).
    pub fn is_error_event(&self) -> bool {
        self.event().is_some()
    }

    /// The error event the server sent, for an
    /// [`is_error_event`](Self::is_error_event) error: its type, data and id.
    pub fn event(&self) -> Option<&MessageEvent> {
        self.chain().find_map(|e| match e.kind() {
            Kind::ErrorEvent(ev) => Some(&**ev),
            _ => None,
        })
    }

    /// What kind of failure this is, for the retry decision.
    pub(crate) fn failure_kind(&self) -> FailureKind {
        for e in self.chain() {
            let kind = match e.kind() {
                Kind::Builder(_) => FailureKind::InvalidRequest,
                Kind::Request(_) => match e.reqwest_here() {
                    Some(r) => transport_kind(r),
                    None => FailureKind::Request,
                },
                Kind::Body => FailureKind::Body,
                Kind::Timeout(_) => FailureKind::IdleTimeout,
                Kind::ResponseTimeout(_) => FailureKind::ResponseTimeout,
                Kind::Redirect(_) => FailureKind::Redirect,
                Kind::Encoding(_) => FailureKind::Encoding,
                Kind::Status(_) => FailureKind::Status,
                Kind::ContentType(_) => FailureKind::ContentType,
                Kind::TooLarge(_) => FailureKind::TooLarge,
                Kind::Eof | Kind::Requested => FailureKind::Eof,
                // Wrappers: the cause below says what happened.
                Kind::RetriesExhausted(_)
                | Kind::RetryBudget { .. }
                | Kind::NotResent(_)
                | Kind::Truncated
                | Kind::ErrorEvent(_)
                | Kind::DriverStopped { .. } => continue,
            };
            return kind;
        }
        FailureKind::Request
    }

    fn reqwest_here(&self) -> Option<&reqwest::Error> {
        self.inner
            .source
            .as_deref()?
            .downcast_ref::<reqwest::Error>()
    }

    /// True when the server answered with a status the stream does not
    /// accept; see [`status`](Self::status).
    pub fn is_status(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::Status(_)))
    }

    /// True when a 200 response was not `text/event-stream`.
    pub fn is_content_type(&self) -> bool {
        self.chain()
            .any(|e| matches!(e.kind(), Kind::ContentType(_)))
    }

    /// True when an event exceeded the configured maximum size.
    pub fn is_too_large(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::TooLarge(_)))
    }

    /// True when reading the body of an open stream failed (for instance the
    /// connection was reset mid-stream).
    pub fn is_body(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::Body))
    }

    /// True when the server ended the body of an open stream.
    pub fn is_eof(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::Eof))
    }

    /// True for the cause of a reconnection that was asked for with
    /// [`EventSource::reconnect`](crate::EventSource::reconnect) or
    /// [`Handle::reconnect`](crate::Handle::reconnect), not a failure.
    pub fn is_reconnect_requested(&self) -> bool {
        matches!(self.kind(), Kind::Requested)
    }

    /// True when the stream ended because the attempt limit was reached;
    /// [`source`](std::error::Error::source) is the last attempt's failure.
    pub fn is_retries_exhausted(&self) -> bool {
        self.chain().any(|e| {
            matches!(
                e.kind(),
                Kind::RetriesExhausted(_) | Kind::RetryBudget { .. }
            )
        })
    }

    /// True when the stream ended because a non-GET request lost its
    /// connection and re-sending it was not allowed
    /// ([`EventSourceBuilder::resend_after_events`](crate::EventSourceBuilder::resend_after_events)):
    /// events had been delivered, or, with
    /// [`resume_by_get`](crate::EventSourceBuilder::resume_by_get), the
    /// answer carried no event ID to resume from (the message says which).
    pub fn is_not_resent(&self) -> bool {
        self.chain().any(|e| matches!(e.kind(), Kind::NotResent(_)))
    }

    /// True when the stream was configured with an end marker
    /// ([`end_on_data`](crate::EventSourceBuilder::end_on_data) or
    /// [`end_on_event`](crate::EventSourceBuilder::end_on_event)), delivered
    /// events, and ended for good before the marker came: the answer is
    /// incomplete.
    pub fn is_truncated(&self) -> bool {
        self.chain()
            .any(|e| e.inner.truncated || matches!(e.kind(), Kind::Truncated))
    }

    /// True when a [`Dispatcher`](crate::Dispatcher)'s driver task stopped
    /// without finishing the stream: it panicked (most likely in the
    /// [`on_request`](crate::EventSourceBuilder::on_request) hook, which runs
    /// in that task), was aborted, or its runtime shut down. Every
    /// subscription receives this error instead of waiting for ever.
    pub fn is_driver_stopped(&self) -> bool {
        self.chain()
            .any(|e| matches!(e.kind(), Kind::DriverStopped { .. }))
    }

    /// The number of reconnection attempts made, for an
    /// [`is_retries_exhausted`](Self::is_retries_exhausted) error.
    pub fn attempts(&self) -> Option<u32> {
        self.chain().find_map(|e| match e.kind() {
            Kind::RetriesExhausted(n) | Kind::RetryBudget { attempts: n, .. } => Some(*n),
            _ => None,
        })
    }

    /// The HTTP status of the response behind this error, if one was
    /// received.
    pub fn status(&self) -> Option<StatusCode> {
        self.response()
            .map(|r| r.status)
            .or_else(|| self.reqwest()?.status())
    }

    /// The headers of the response behind this error.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.response().map(|r| &r.headers)
    }

    /// The start of the body of the response behind this error (at most
    /// [`ERROR_BODY_LIMIT`] bytes, decoded as UTF-8 with replacement), for
    /// instance an API's JSON error message.
    pub fn body(&self) -> Option<&str> {
        self.response().map(|r| r.body.as_str())
    }

    /// The forward proxy a failed request went through (its URL, with any
    /// password hidden), when the stream knows it: for streams on the
    /// default client pool, which route through the proxies that reqwest
    /// finds in `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` (less `NO_PROXY`)
    /// and, with the `system-proxy` feature, the system's settings. The
    /// error's message names it too: a dead proxy is not mistaken for a
    /// dead server (SPEC rule 29).
    pub fn proxy(&self) -> Option<&str> {
        self.chain().find_map(|e| match e.kind() {
            Kind::Request(proxy) => proxy.as_deref(),
            _ => None,
        })
    }

    /// The URL that answered, for errors that carry a response.
    pub fn url(&self) -> Option<&url::Url> {
        self.response()
            .map(|r| &r.url)
            .or_else(|| self.reqwest()?.url())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ssekit::Error");
        d.field("kind", &format_args!("{}", self));
        if let Some(r) = self.response() {
            d.field("url", &r.url.as_str());
            d.field("headers", &r.headers);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    /// Prints this layer only; the alternate form (`{:#}`) appends every
    /// source, separated by `: ` (`request failed: ... : connection refused`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_layer(f)?;
        if f.alternate() {
            let mut source = std::error::Error::source(self);
            while let Some(s) = source {
                write!(f, ": {s}")?;
                source = s.source();
            }
        }
        Ok(())
    }
}

impl Error {
    fn fmt_layer(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(msg) => write!(f, "invalid event source configuration: {msg}"),
            Kind::Request(None) => f.write_str("request failed"),
            Kind::Request(Some(proxy)) => write!(f, "request through the proxy {proxy} failed"),
            Kind::Body => f.write_str("reading the event stream failed"),
            Kind::Timeout(d) => write!(f, "no data received for {d:?} (idle timeout)"),
            Kind::ResponseTimeout(d) => {
                write!(f, "no response head within {d:?} (response timeout)")
            }
            Kind::Redirect(why) => write!(f, "redirect not followed: {why}"),
            Kind::Encoding(msg) => f.write_str(msg),
            Kind::ErrorEvent(ev) => {
                write!(f, "the server sent an error event (type {:?}", ev.event())?;
                if !ev.id().is_empty() {
                    write!(f, ", id {:?}", ev.id())?;
                }
                f.write_str(")")?;
                excerpt(f, ev.data())
            }
            Kind::RetryBudget { attempts, elapsed } => write!(
                f,
                "gave up after {:.1} s of failed reconnection attempts ({attempts} attempts)",
                elapsed.as_secs_f64()
            ),
            Kind::Status(r) => {
                write!(f, "unexpected HTTP status {}", r.status)?;
                excerpt(f, &r.body)
            }
            Kind::ContentType(r) => {
                let ct = r
                    .headers
                    .get(reqwest::header::CONTENT_TYPE)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                match ct {
                    Some(ct) => write!(f, "expected content type text/event-stream, got {ct:?}")?,
                    None => f.write_str("expected content type text/event-stream, got none")?,
                }
                excerpt(f, &r.body)
            }
            Kind::TooLarge(limit) => write!(f, "event larger than the limit of {limit} bytes"),
            Kind::Eof => f.write_str("the server ended the stream"),
            Kind::Requested => f.write_str("reconnection requested"),
            Kind::RetriesExhausted(0) => {
                f.write_str("gave up: no reconnection attempts are allowed (max_attempts(0))")
            }
            Kind::RetriesExhausted(1) => {
                f.write_str("gave up after 1 reconnection attempt without progress")
            }
            Kind::RetriesExhausted(n) => {
                write!(
                    f,
                    "gave up after {n} reconnection attempts without progress"
                )
            }
            Kind::NotResent(NotResent::AfterEvents) => f.write_str(
                "connection lost after events were delivered; the non-GET request is not re-sent",
            ),
            Kind::NotResent(NotResent::NoId) => f.write_str(
                "the answer ended before any event ID arrived, so it cannot be resumed by GET; \
                 the non-GET request is not re-sent (resend_after_events(true) would re-send it)",
            ),
            Kind::Truncated => f.write_str("the stream ended before its end marker"),
            Kind::DriverStopped { panicked: true } => f.write_str(
                "the dispatcher's driver task panicked (in the request hook, most likely)",
            ),
            Kind::DriverStopped { panicked: false } => f.write_str(
                "the dispatcher's driver task stopped: it was aborted or its runtime shut down",
            ),
        }
    }
}

/// Appends the start of an error body to a status message, on one line
/// (pretty-printed JSON errors become readable), shortened.
fn excerpt(f: &mut fmt::Formatter<'_>, body: &str) -> fmt::Result {
    const SHOWN: usize = 200;
    let mut words = body.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(());
    };
    let mut shown = String::from(first);
    for word in words {
        if shown.chars().count() > SHOWN {
            break;
        }
        shown.push(' ');
        shown.push_str(word);
    }
    match shown.char_indices().nth(SHOWN) {
        Some((cut, _)) => write!(f, ": {}…", &shown[..cut]),
        None => write!(f, ": {shown}"),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as _)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        // The codec's only error is the size limit, which this kind says in
        // full: the DecodeError is not kept as a source that would repeat it.
        Error::new(Kind::TooLarge(e.limit().unwrap_or(0)))
    }
}

/// Classifies a transport error of reqwest: what can heal (a refused
/// connection, a reset) is told apart from what cannot (an untrusted
/// certificate, a redirect loop, an invalid URL).
fn transport_kind(e: &reqwest::Error) -> FailureKind {
    if e.is_redirect() {
        return FailureKind::Redirect;
    }
    if e.is_builder() {
        return FailureKind::InvalidRequest;
    }
    if is_permanent_tls(e) {
        return FailureKind::Tls;
    }
    if e.is_connect() {
        return FailureKind::Connect;
    }
    FailureKind::Request
}

/// Whether the chain below `e` holds a TLS failure that retrying cannot fix.
fn is_permanent_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        #[cfg(feature = "rustls")]
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return rustls_is_permanent(tls);
        }
        // `io::Error::source` skips the error it wraps: look inside.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_permanent_tls(inner) {
                return true;
            }
        }
        #[cfg(feature = "native-tls")]
        if native_tls_is_permanent(&err.to_string()) {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(feature = "rustls")]
fn rustls_is_permanent(e: &rustls::Error) -> bool {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::InvalidCertRevocationList(_) => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::ProtocolVersion
                | A::HandshakeFailure
                | A::InsufficientSecurity
        ),
        _ => false,
    }
}

/// The platform TLS libraries report failures as text only.
#[cfg(feature = "native-tls")]
fn native_tls_is_permanent(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    [
        "certificate verify failed",
        "wrong version number",
        "unsupported protocol",
        "no protocols available",
        "alert protocol version",
        "alert handshake failure",
        "no shared cipher",
    ]
    .iter()
    .any(|needle| msg.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn error_is_send_sync_and_one_pointer() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    fn response(status: u16, body: &str) -> Box<Response> {
        Box::new(Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.into(),
            url: "http://127.0.0.1/x".parse().unwrap(),
        })
    }

    #[test]
    fn predicates_walk_the_chain_and_display_only_its_layer() {
        let last = Error::new(Kind::Status(response(503, "busy\nmore")));
        let e = Error::with_source(Kind::RetriesExhausted(3), last);
        assert!(e.is_retries_exhausted() && e.is_status());
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(e.body(), Some("busy\nmore"));
        assert_eq!(e.attempts(), Some(3));
        assert_eq!(
            e.to_string(),
            "gave up after 3 reconnection attempts without progress"
        );
        assert_eq!(
            e.source().unwrap().to_string(),
            "unexpected HTTP status 503 Service Unavailable: busy more"
        );
        assert!(!e.is_timeout() && !e.is_connect() && !e.is_too_large());
    }

    #[test]
    fn alternate_display_prints_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let body = Error::with_source(Kind::Body, io);
        let e = Error::with_source(Kind::RetriesExhausted(2), body);
        assert_eq!(
            e.to_string(),
            "gave up after 2 reconnection attempts without progress"
        );
        assert_eq!(
            format!("{e:#}"),
            "gave up after 2 reconnection attempts without progress: \
             reading the event stream failed: reset by peer"
        );
    }

    #[test]
    fn long_bodies_are_shortened_in_display() {
        let body = "é".repeat(500);
        let e = Error::new(Kind::Status(response(400, &body)));
        let shown = e.to_string();
        assert!(shown.ends_with('…'));
        assert_eq!(shown.chars().filter(|c| *c == 'é').count(), 200);
        assert_eq!(e.body().unwrap().len(), body.len());
    }
}
