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
