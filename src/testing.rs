//! Conveniences for testing SSE servers: wait for events with deadlines and
//! fail with messages that say what was expected and what arrived.
//!
//! [`ExpectEvents`] is implemented for every stream of
//! `Result<`[`Event`]`, `[`Error`]`>`: an [`EventSource`](crate::EventSource)
//! talking to a server on a socket, or an [`EventStream`](crate::EventStream)
//! over a response obtained in-process (for instance from an axum `Router`
//! called as a service, without a socket). Non-message items (open,
//! comments, reconnections) are skipped.
//!
//! With the feature `mock`, [`MockServer`] is an SSE server on 127.0.0.1
//! scripted in Rust ([`Script`]: events, comments, `retry:`, statuses with
//! `Retry-After`, a cut mid-event, a stall, a trickle, gzip, a replayed
//! [`Recording`]) that records every request for assertions.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use futures::stream;
//! use ssekit::testing::ExpectEvents;
//! use ssekit::EventStream;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let body = stream::iter([Ok::<_, std::io::Error>(&b"id: 1\ndata: hi\n\n"[..])]);
//! let mut events = EventStream::new(body);
//! let ev = events.next_message_within(Duration::from_secs(1)).await.unwrap();
//! assert_eq!((ev.data(), ev.id()), ("hi", "1"));
//! let err = events.next_message_within(Duration::from_secs(1)).await.unwrap_err();
//! assert_eq!(err.to_string(), "expected an event within 1s, but the stream ended");
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_core::Stream;

use crate::{Error, Event, MessageEvent};

#[cfg(feature = "mock")]
mod mock;
#[cfg(feature = "mock")]
mod recording;

#[cfg(feature = "mock")]
pub use mock::{MockRequest, MockServer, MockServerBuilder, Script};
#[cfg(feature = "mock")]
pub use recording::{RecordedChunk, Recording, RecordingError, RECORDING_VERSION};

/// Why an expectation of [`ExpectEvents`] failed. Its `Display` says what
/// was expected and what arrived instead.
#[derive(Debug)]
pub struct ExpectError {
    expected: String,
    arrived: Arrived,
    /// Events received before the failure (by `collect_messages`).
    received: Vec<MessageEvent>,
}

#[derive(Debug)]
enum Arrived {
    Nothing,
    Ended,
    Error(Error),
    Event(MessageEvent),
}

impl ExpectError {
    /// The events that did arrive before the expectation failed.
    pub fn received(&self) -> &[MessageEvent] {
        &self.received
    }

    /// The stream's error, when the stream failed.
    pub fn stream_error(&self) -> Option<&Error> {
        match &self.arrived {
            Arrived::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The unexpected event, when one arrived although none was expected.
    pub fn unexpected_event(&self) -> Option<&MessageEvent> {
        match &self.arrived {
            Arrived::Event(m) => Some(m),
            _ => None,
        }
    }
}

fn describe(m: &MessageEvent) -> String {
    let mut data: String = m.data().chars().take(120).collect();
    if data.len() < m.data().len() {
        data.push('…');
    }
    if m.id().is_empty() {
        format!("{} {:?}", m.event(), data)
    } else {
        format!("{} {:?} (id {:?})", m.event(), data, m.id())
    }
}

impl fmt::Display for ExpectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, but ", self.expected)?;
        if !self.received.is_empty() {
            let got: Vec<_> = self.received.iter().map(describe).collect();
            write!(f, "received only {} [{}], then ", got.len(), got.join(", "))?;
        }
        match &self.arrived {
            Arrived::Nothing => f.write_str("nothing arrived"),
            Arrived::Ended => f.write_str("the stream ended"),
            Arrived::Error(e) => write!(f, "the stream failed: {e}"),
            Arrived::Event(m) => write!(f, "got {}", describe(m)),
        }
    }
}

impl std::error::Error for ExpectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.stream_error().map(|e| e as _)
    }
}

/// Waits on an event stream with deadlines; see the [module docs](self).
///
/// The deadlines use Tokio's clock, so they follow a paused test clock.
pub trait ExpectEvents {
    /// The next message event within `timeout`.
    fn next_message_within(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<MessageEvent, ExpectError>> + Send;

    /// Succeeds when no message event arrives within `duration` (the stream
    /// may stay open or end cleanly).
    fn expect_no_message_within(
        &mut self,
        duration: Duration,
    ) -> impl Future<Output = Result<(), ExpectError>> + Send;

    /// Exactly the next `n` message events, all within `timeout`.
    fn collect_messages(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<MessageEvent>, ExpectError>> + Send;
}

/// The next message, or what came instead.
async fn next_message<S>(stream: &mut S) -> Result<MessageEvent, Arrived>
where
    S: Stream<Item = Result<Event, Error>> + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await {
            None => return Err(Arrived::Ended),
            Some(Err(e)) => return Err(Arrived::Error(e)),
            Some(Ok(Event::Message(m))) => return Ok(m),
            Some(Ok(_)) => {}
        }
    }
}

impl<S> ExpectEvents for S
where
    S: Stream<Item = Result<Event, Error>> + Unpin + Send,
{
    async fn next_message_within(
        &mut self,
        timeout: Duration,
    ) -> Result<MessageEvent, ExpectError> {
        let arrived = match tokio::time::timeout(timeout, next_message(self)).await {
            Ok(Ok(m)) => return Ok(m),
            Ok(Err(arrived)) => arrived,
            Err(_) => Arrived::Nothing,
        };
        Err(ExpectError {
            expected: format!("an event within {timeout:?}"),
            arrived,
            received: Vec::new(),
        })
    }

    async fn expect_no_message_within(&mut self, duration: Duration) -> Result<(), ExpectError> {
        match tokio::time::timeout(duration, next_message(self)).await {
            Err(_) | Ok(Err(Arrived::Ended)) => Ok(()),
            Ok(Ok(m)) => Err(ExpectError {
                expected: format!("no event within {duration:?}"),
                arrived: Arrived::Event(m),
                received: Vec::new(),
            }),
            Ok(Err(arrived)) => Err(ExpectError {
                expected: format!("no event within {duration:?}"),
                arrived,
                received: Vec::new(),
            }),
        }
    }

    async fn collect_messages(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<MessageEvent>, ExpectError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut received = Vec::with_capacity(n);
        while received.len() < n {
            let arrived = match tokio::time::timeout_at(deadline, next_message(self)).await {
                Ok(Ok(m)) => {
                    received.push(m);
                    continue;
                }
                Ok(Err(arrived)) => arrived,
                Err(_) => Arrived::Nothing,
            };
            return Err(ExpectError {
                expected: format!("{n} events within {timeout:?}"),
                arrived,
                received,
            });
        }
        Ok(received)
    }
}
