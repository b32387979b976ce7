//! The events a stream yields.

use std::fmt;
use std::sync::Arc;

/// One dispatched server-sent event: what the HTML standard calls a
/// `MessageEvent`.
///
/// Produced by [`SseCodec`](crate::SseCodec) and, wrapped in
/// [`Event::Message`](crate::Event::Message), by
/// [`EventSource`](crate::EventSource). The event type and the id are shared
/// between consecutive events that carry the same value, so cloning an event
/// or receiving many events of one type costs no extra allocation.
///
/// # Example
///
/// Events can be built directly, for instance to feed code under test:
///
/// ```
/// use ssekit::MessageEvent;
///
/// let ev = MessageEvent::new("update", "{\"n\":1}", "42");
/// assert_eq!(ev.event(), "update");
/// assert_eq!(ev.data(), "{\"n\":1}");
/// assert_eq!(ev.id(), "42");
///
/// let plain = MessageEvent::new("", "hello", "");
/// assert_eq!(plain.event(), "message");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MessageEvent {
    event: Arc<str>,
    data: String,
    id: Arc<str>,
}

impl MessageEvent {
    /// Builds an event. An empty `event` becomes `"message"`, as on the wire.
    pub fn new(event: impl AsRef<str>, data: impl Into<String>, id: impl AsRef<str>) -> Self {
        let event = event.as_ref();
        let event = if event.is_empty() { "message" } else { event };
        MessageEvent {
            event: Arc::from(event),
            data: data.into(),
            id: Arc::from(id.as_ref()),
        }
    }

    /// Constructor for the codec, which already shares its strings.
    pub(crate) fn from_parts(event: Arc<str>, data: String, id: Arc<str>) -> Self {
        MessageEvent { event, data, id }
    }

    /// The event type: the last `event:` field of the block, or `"message"`
    /// when it had none.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The data: the `data:` lines of the block joined with `\n`.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The last event ID in force when the event was dispatched (the most
    /// recent `id:` field of this or an earlier event), `""` when none.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Takes the data out of the event without copying it.
    pub fn into_data(self) -> String {
        self.data
    }
}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event", &&*self.event)
            .field("data", &self.data)
            .field("id", &&*self.id)
            .finish()
    }
}

/// What an [`EventSource`](crate::EventSource) yields.
///
/// [`Open`](Event::Open) and [`Message`](Event::Message) always come;
/// [`Comment`](Event::Comment) and [`Reconnecting`](Event::Reconnecting) only
/// when asked for with
/// [`EventSourceBuilder::comments`](crate::EventSourceBuilder::comments) and
/// [`EventSourceBuilder::reconnect_events`](crate::EventSourceBuilder::reconnect_events).
/// More kinds may be added: match with a `_` arm.
///
/// Events are cheap to clone (shared strings; a reconnection's cause is
/// behind an `Arc`), so a [`Dispatcher`](crate::Dispatcher) can hand one to
/// several subscribers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A connection opened: the server answered 200 `text/event-stream`.
    Open(Open),
    /// An event arrived.
    Message(MessageEvent),
    /// A comment line arrived (text after the colon, as sent).
    Comment(String),
    /// A connection was lost or refused and another attempt is scheduled.
    Reconnecting(Reconnect),
}

/// A connection that opened: see [`Event::Open`].
#[derive(Debug, Clone)]
pub struct Open {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) url: url::Url,
    pub(crate) attempt: u32,
    pub(crate) connection: u64,
}

impl Open {
    /// The response status (always 200 today).
    pub fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }

    /// The URL that answered, after any redirects.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Which attempt in a row this was: 0 for a first try, `n` for the `n`th
    /// reconnection attempt since the last connection that delivered an
    /// event.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many connections this stream has opened, this one included
    /// (1 for the first).
    pub fn connection(&self) -> u64 {
        self.connection
    }
}

/// A reconnection about to happen: see [`Event::Reconnecting`].
#[derive(Debug, Clone)]
pub struct Reconnect {
    pub(crate) attempt: u32,
    pub(crate) delay: std::time::Duration,
    pub(crate) cause: Arc<crate::Error>,
}

impl Reconnect {
    /// The number of the attempt about to be made: 1 for the first
    /// reconnection after a connection that delivered events. A reconnection
    /// requested with [`EventSource::reconnect`](crate::EventSource::reconnect)
    /// does not add to the count and reports the current one.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long the stream waits before the attempt.
    pub fn delay(&self) -> std::time::Duration {
        self.delay
    }

    /// Why the previous connection ended or failed.
    pub fn cause(&self) -> &crate::Error {
        &self.cause
    }
}
