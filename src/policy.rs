//! The retry decision: what a failed attempt means, as a pure function of
//! what happened (no I/O, no clock: the time of the failure is an input).
//!
//! The state machine in `source.rs` describes each failure as a [`Failure`]
//! and asks [`Decision::default_for`] (or the caller's classifier, see
//! [`RetryPolicy::classify`](crate::RetryPolicy::classify)) whether to retry;
//! the delay itself comes from [`Backoff`](crate::Backoff).

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;

use crate::Error;

/// The longest delay a server can ask for, with `retry:` or `Retry-After`:
/// one hour. A longer request waits this long.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(3600);

/// What kind of failure ended an attempt; see [`Failure::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The connection could not be made: refused, unreachable, DNS failure.
    Connect,
    /// The TLS handshake failed in a way retrying cannot fix: a certificate
    /// the client does not trust, or that is not valid for the host, or no
    /// TLS version or cipher in common.
    Tls,
    /// A redirect loop, too many redirects, or a redirect to a scheme other
    /// than `http` or `https`.
    Redirect,
    /// The request could not be built: an invalid URL, header or body.
    InvalidRequest,
    /// Another failure before a response head arrived: the connection was
    /// reset, or the response was not valid HTTP.
    Request,
    /// No response head arrived within the response timeout
    /// ([`EventSourceBuilder::response_timeout`](crate::EventSourceBuilder::response_timeout)).
    ResponseTimeout,
    /// No bytes arrived for the idle timeout.
    IdleTimeout,
    /// Reading an open stream failed (reset, broken chunked encoding,
    /// corrupt compressed data).
    Body,
    /// The server ended an open stream cleanly.
    Eof,
    /// The server answered with a status the stream does not accept; see
    /// [`Failure::status`].
    Status,
    /// A 200 response whose media type is not `text/event-stream`.
    ContentType,
    /// A `Content-Encoding` the client cannot decode.
    Encoding,
    /// An event larger than the configured limit.
    TooLarge,
}

impl FailureKind {
    /// Whether a connection was open when the failure happened (a body
    /// error, the end of the body, an idle timeout on an open stream).
    fn after_open(self) -> bool {
        matches!(
            self,
            FailureKind::Body | FailureKind::Eof | FailureKind::IdleTimeout
        )
    }
}

/// One failed attempt, as the retry decision sees it.
///
/// Built by the stream for every failure and handed to the classifier set
/// with [`RetryPolicy::classify`](crate::RetryPolicy::classify). Tests of a
/// classifier build their own with [`new`](Self::new):
///
/// ```
/// use std::time::SystemTime;
/// use reqwest::{header::HeaderMap, StatusCode};
/// use ssekit::{Decision, Failure, FailureKind};
///
/// let headers = HeaderMap::new();
/// let conflict = Failure::new(FailureKind::Status, SystemTime::now())
///     .with_status(StatusCode::CONFLICT, &headers);
/// assert_eq!(Decision::default_for(&conflict), Decision::Stop);
/// let reset = Failure::new(FailureKind::Body, SystemTime::now()).delivered(true);
/// assert_eq!(Decision::default_for(&reset), Decision::Retry);
/// ```
pub struct Failure<'a> {
    error: Option<&'a Error>,
    kind: FailureKind,
    status: Option<StatusCode>,
    headers: Option<&'a HeaderMap>,
    delivered: bool,
    progress: bool,
    open_for: Option<Duration>,
    at: SystemTime,
}

impl fmt::Debug for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Failure");
        d.field("kind", &self.kind)
            .field("status", &self.status)
            .field("delivered", &self.delivered)
            .field("progress", &self.progress)
            .field("open_for", &self.open_for);
        if let Some(e) = self.error {
            d.field("error", &format_args!("{e:#}"));
        }
        d.finish_non_exhaustive()
    }
}

impl<'a> Failure<'a> {
    /// A failure of this kind, at `at` (the time `Retry-After` dates are
    /// measured from), with no response, no events delivered and no
    /// connection opened: set those with the other methods.
    pub fn new(kind: FailureKind, at: SystemTime) -> Self {
        Failure {
            error: None,
            kind,
            status: None,
            headers: None,
            delivered: false,
            progress: false,
            open_for: None,
            at,
        }
    }

    /// Describes `error`: its kind, status and headers come from the error
    /// itself.
    pub fn from_error(error: &'a Error, at: SystemTime) -> Self {
        Failure {
            error: Some(error),
            kind: error.failure_kind(),
            status: error.status(),
            headers: error.headers(),
            delivered: false,
            progress: false,
            open_for: None,
            at,
        }
    }

    /// Sets the response's status and headers.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode, headers: &'a HeaderMap) -> Self {
        self.status = Some(status);
        self.headers = Some(headers);
        self
    }

    /// Sets whether the connection that ended delivered at least one event.
    #[must_use]
    pub fn delivered(mut self, delivered: bool) -> Self {
        self.delivered = delivered;
        self
    }

    /// Sets whether the connection made progress (SPEC rule 23): it
    /// delivered an event with an ID the stream had not reached before, or,
    /// on a stream without IDs, events and a graceful end. Progress resets
    /// the backoff growth and the attempt count; events that only replay
    /// what was seen do not.
    #[must_use]
    pub fn progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Sets how long the connection was open before it ended (`None` when
    /// it never opened).
    #[must_use]
    pub fn open_for(mut self, open_for: Option<Duration>) -> Self {
        self.open_for = open_for;
        self
    }

    /// The error that ended the attempt (`None` for a failure built with
    /// [`new`](Self::new)).
    pub fn error(&self) -> Option<&'a Error> {
        self.error
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The response status, for a [`FailureKind::Status`] or
    /// [`FailureKind::ContentType`] failure.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The response headers, when a response arrived.
    pub fn headers(&self) -> Option<&'a HeaderMap> {
        self.headers
    }

    /// Whether the connection delivered at least one event before it ended.
    pub fn delivered_events(&self) -> bool {
        self.delivered
    }

    /// Whether the connection made progress; see [`progress`](Self::progress).
    pub fn made_progress(&self) -> bool {
        self.progress
    }

    /// How long the connection was open before it ended; `None` when no
    /// connection opened (the failure came before or with the response head).
    pub fn connection_open_for(&self) -> Option<Duration> {
        self.open_for
    }

    /// When the failure happened.
    pub fn at(&self) -> SystemTime {
        self.at
    }

    /// The server's `Retry-After` delay (seconds or an HTTP date, relative
    /// to [`at`](Self::at)), capped at [`MAX_SERVER_DELAY`]; `None` when the
    /// response had no valid one.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(self.headers?, self.at)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// Reconnect after the policy's backoff delay (within the attempt limit
    /// and time budget).
    Retry,
    /// Reconnect after exactly this delay (capped at [`MAX_SERVER_DELAY`];
    /// no jitter), as a server's `Retry-After` asks; it still counts as an
    /// attempt for the limit and the growth of later delays.
    RetryAfter(Duration),
    /// End the stream with the failure as its error.
    Stop,
}

impl Decision {
    /// The default decision: the table of SPEC rules 19 and 20.
    ///
    /// | failure | decision |
    /// |---|---|
    /// | connection refused, DNS failure, reset, garbage response ([`Connect`](FailureKind::Connect), [`Request`](FailureKind::Request)) | retry |
    /// | response timeout, idle timeout, body error, clean end of body | retry |
    /// | status 408, 429, and 5xx except 501 and 505 | retry, after `Retry-After` when the response has one |
    /// | any other status (3xx without a usable `Location`, other 2xx, 4xx, 501, 505) | stop |
    /// | a 200 that is not `text/event-stream` | stop |
    /// | TLS: untrusted or mismatched certificate, no common version | stop |
    /// | redirect loop, too many redirects, unsupported scheme | stop |
    /// | invalid request (URL, header) | stop |
    /// | undecodable `Content-Encoding` | stop |
    /// | event over the size limit | stop |
    ///
    /// (204 No Content is not a failure: the stream ends cleanly.)
    ///
    /// # Example
    ///
    /// A classifier that retries 409 and stops on 503, and otherwise
    /// delegates here:
    ///
    /// ```
    /// use reqwest::StatusCode;
    /// use ssekit::{Decision, RetryPolicy};
    ///
    /// let policy = RetryPolicy::default().classify(|failure| match failure.status() {
    ///     Some(StatusCode::CONFLICT) => Decision::Retry,
    ///     Some(StatusCode::SERVICE_UNAVAILABLE) => Decision::Stop,
    ///     _ => Decision::default_for(failure),
    /// });
    /// # drop(policy);
    /// ```
    pub fn default_for(failure: &Failure<'_>) -> Decision {
        match failure.kind {
            FailureKind::Connect
            | FailureKind::Request
            | FailureKind::ResponseTimeout
            | FailureKind::IdleTimeout
            | FailureKind::Body
            | FailureKind::Eof => Decision::Retry,
            FailureKind::Status => match failure.status {
                Some(status) if is_transient_status(status) => match failure.retry_after() {
                    Some(delay) => Decision::RetryAfter(delay),
                    None => Decision::Retry,
                },
                _ => Decision::Stop,
            },
            FailureKind::Tls
            | FailureKind::Redirect
            | FailureKind::InvalidRequest
            | FailureKind::ContentType
            | FailureKind::Encoding
            | FailureKind::TooLarge => Decision::Stop,
        }
    }
}

/// The statuses that are retried by default: 408, 429 and every 5xx but 501
/// (Not Implemented) and 505 (HTTP Version Not Supported), so 529
/// (overloaded) and Cloudflare's 520–524 retry.
pub fn is_transient_status(status: StatusCode) -> bool {
    match status.as_u16() {
        408 | 429 => true,
        501 | 505 => false,
        code => (500..600).contains(&code),
    }
}

/// Parses `Retry-After` (delay-seconds or an HTTP date, relative to `now`),
/// capped at [`MAX_SERVER_DELAY`].
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is "very long": the cap applies.
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_SERVER_DELAY))
}

/// Whether a connection that ended this way was healthy: it made progress,
/// or stayed open for at least `healthy`. A healthy connection resets the
/// backoff growth and the attempt count (SPEC rule 23); events that only
/// replay what was seen, on a connection that dies young, do not.
pub(crate) fn was_healthy(failure: &Failure<'_>, healthy: Duration) -> bool {
    failure.progress
        || (failure.kind.after_open() && failure.open_for.is_some_and(|open| open >= healthy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Kind, Response};
    use reqwest::header::HeaderValue;

    fn status_error(code: u16, retry_after: Option<&str>) -> Error {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        Error::new(Kind::Status(Box::new(Response {
            status: StatusCode::from_u16(code).unwrap(),
            headers,
            body: String::new(),
            url: "http://127.0.0.1/".parse().unwrap(),
        })))
    }

    fn decide(e: &Error) -> Decision {
        Decision::default_for(&Failure::from_error(e, SystemTime::UNIX_EPOCH))
    }

    #[test]
    fn status_table() {
        let retry = [
            408, 429, 500, 502, 503, 504, 506, 507, 508, 510, 511, 520, 521, 522, 523, 524, 529,
            599,
        ];
        for code in retry {
            assert_eq!(decide(&status_error(code, None)), Decision::Retry, "{code}");
        }
        let stop = [
            200, 201, 202, 206, 300, 301, 302, 304, 400, 401, 403, 404, 405, 409, 410, 422, 501,
            505,
        ];
        for code in stop {
            assert_eq!(decide(&status_error(code, None)), Decision::Stop, "{code}");
        }
    }

    #[test]
    fn retry_after_on_transient_statuses_only() {
        assert_eq!(
            decide(&status_error(503, Some("7"))),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            decide(&status_error(429, Some("99999999999999999999999"))),
            Decision::RetryAfter(MAX_SERVER_DELAY)
        );
        // Garbage is ignored: back to the backoff.
        assert_eq!(decide(&status_error(503, Some("soon"))), Decision::Retry);
        assert_eq!(decide(&status_error(503, Some("-5"))), Decision::Retry);
        // Not a transient status: Retry-After does not make it one.
        assert_eq!(decide(&status_error(404, Some("1"))), Decision::Stop);
    }

    #[test]
    fn retry_after_dates_are_relative_to_the_failure() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        let mut h = HeaderMap::new();
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        // A date in the past means now; one far ahead is capped.
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(MAX_SERVER_DELAY));
    }

    #[test]
    fn transport_and_stream_table() {
        let cases = [
            (Kind::Eof, Decision::Retry),
            (Kind::Body, Decision::Retry),
            (Kind::Timeout(Duration::from_secs(1)), Decision::Retry),
            (
                Kind::ResponseTimeout(Duration::from_secs(1)),
                Decision::Retry,
            ),
            (Kind::TooLarge(10), Decision::Stop),
            (Kind::Encoding("compress".into()), Decision::Stop),
            (Kind::Redirect("redirect loop".into()), Decision::Stop),
        ];
        for (kind, want) in cases {
            let e = Error::new(kind);
            assert_eq!(decide(&e), want, "{e}");
        }
    }

    #[test]
    fn healthy_means_progress_or_a_long_open_connection() {
        let eof = Error::new(Kind::Eof);
        let t = SystemTime::UNIX_EPOCH;
        let minute = Duration::from_secs(60);
        let f = |progress, open: Option<u64>| {
            Failure::from_error(&eof, t)
                .progress(progress)
                .open_for(open.map(Duration::from_secs))
        };
        assert!(was_healthy(&f(true, Some(0)), minute));
        // Events that made no progress (a replay) on a young connection do
        // not make it healthy.
        let replay = Failure::from_error(&eof, t)
            .delivered(true)
            .open_for(Some(Duration::from_secs(1)));
        assert!(!was_healthy(&replay, minute));
        assert!(was_healthy(&f(false, Some(60)), minute));
        assert!(!was_healthy(&f(false, Some(59)), minute));
        assert!(!was_healthy(&f(false, None), minute));
        // A status failure never had an open connection, however long ago.
        let s = status_error(503, None);
        let g = Failure::from_error(&s, t).open_for(Some(Duration::from_secs(600)));
        assert!(!was_healthy(&g, minute));
    }
}
