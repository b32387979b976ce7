//! Typed events: JSON decoding of event data (feature `json`).

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::{FusedStream, Stream};
use serde::de::DeserializeOwned;

use crate::{Event, MessageEvent};

/// An event whose data is not the JSON that was expected.
///
/// Says which event (type and id), where in the document decoding failed
/// (the serde path, such as `choices[0].delta.content`), and why.
pub struct JsonError {
    event: String,
    id: String,
    path: String,
    source: serde_json::Error,
}

impl JsonError {
    /// The type of the event that failed to decode.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The id of the event that failed to decode (`""` when none).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where in the JSON document decoding failed, as a serde path
    /// (`.` for the document itself).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Debug for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonError")
            .field("event", &self.event)
            .field("id", &self.id)
            .field("path", &self.path)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {:?}", self.event)?;
        if !self.id.is_empty() {
            write!(f, " (id {:?})", self.id)?;
        }
        write!(f, ": invalid JSON at {}: {}", self.path, self.source)
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl MessageEvent {
    /// Decodes the data as JSON.
    ///
    /// # Errors
    ///
    /// A [`JsonError`] naming the event, its id and the path where decoding
    /// failed.
    ///
    /// # Example
    ///
    /// ```
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Tick { n: u32 }
    ///
    /// let ev = ssekit::MessageEvent::new("tick", r#"{"n": 7}"#, "7");
    /// assert_eq!(ev.json::<Tick>().unwrap().n, 7);
    ///
    /// let bad = ssekit::MessageEvent::new("tick", r#"{"n": "seven"}"#, "8");
    /// let err = bad.json::<Tick>().unwrap_err();
    /// assert_eq!((err.event(), err.id(), err.path()), ("tick", "8", "n"));
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        let error = |path: String, source| JsonError {
            event: self.event().to_owned(),
            id: self.id().to_owned(),
            path,
            source,
        };
        let mut de = serde_json::Deserializer::from_str(self.data());
        let value = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| error(e.path().to_string(), e.into_inner()))?;
        // Trailing characters after the value are an error too.
        de.end().map_err(|e| error(".".to_owned(), e))?;
        Ok(value)
    }
}

/// An item of a stream that may carry an event: what [`Json`] decodes.
pub trait MaybeMessage {
    /// The message event, if this item is one.
    fn into_message(self) -> Option<MessageEvent>;
}

impl MaybeMessage for MessageEvent {
    fn into_message(self) -> Option<MessageEvent> {
        Some(self)
    }
}

impl MaybeMessage for Event {
    fn into_message(self) -> Option<MessageEvent> {
        match self {
            Event::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// An error of a [`Json`] stream: an event that did not decode (the stream
/// goes on), or the underlying stream's error.
#[derive(Debug)]
#[non_exhaustive]
pub enum TypedError<E> {
    /// The event's data is not the expected JSON.
    Json(JsonError),
    /// The underlying stream failed.
    Stream(E),
}

impl<E: fmt::Display> fmt::Display for TypedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedError::Json(e) => e.fmt(f),
            TypedError::Stream(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TypedError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TypedError::Json(e) => e.source(),
            TypedError::Stream(e) => e.source(),
        }
    }
}

/// Decodes the events of a stream as JSON values of type `T`; made by
/// [`EventSource::json`](crate::EventSource::json),
/// [`Subscription::json`](crate::Subscription::json) or [`Json::new`].
///
/// Events whose data is empty (or only whitespace) are skipped, as are
/// non-message items ([`Event::Open`], comments, reconnections): they are
/// control traffic, not values. The common case is MCP's *priming* event
/// (an `id:`, a `retry:` and an empty `data:`), which a Streamable HTTP
/// server sends first so that the client has a place to resume from: its
/// ID still counts (it is sent back as `Last-Event-ID`), it just yields no
/// value. An event that does not decode yields `Err(TypedError::Json(..))`
/// and the stream goes on.
pub struct Json<S, T> {
    inner: S,
    _values: PhantomData<fn() -> T>,
}

impl<S: fmt::Debug, T> fmt::Debug for Json<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Json").field("inner", &self.inner).finish()
    }
}

impl<S, T> Json<S, T> {
    /// Wraps a stream of events.
    pub fn new(inner: S) -> Self {
        Json {
            inner,
            _values: PhantomData,
        }
    }

    /// The wrapped stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, M, E, T> Stream for Json<S, T>
where
    S: Stream<Item = Result<M, E>> + Unpin,
    M: MaybeMessage,
    T: DeserializeOwned,
{
    type Item = Result<T, TypedError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(TypedError::Stream(e)))),
                Some(Ok(item)) => {
                    let Some(m) = item.into_message() else {
                        continue;
                    };
                    if m.data().trim().is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(m.json().map_err(TypedError::Json)));
                }
            }
        }
    }
}

impl<S, M, E, T> FusedStream for Json<S, T>
where
    S: FusedStream<Item = Result<M, E>> + Unpin,
    M: MaybeMessage,
    T: DeserializeOwned,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl crate::EventSource {
    /// The events of this stream decoded as JSON values of type `T` (feature
    /// `json`); see [`Json`].
    pub fn json<T: DeserializeOwned>(self) -> Json<Self, T> {
        Json::new(self)
    }
}

impl crate::Subscription {
    /// The events of this subscription decoded as JSON values of type `T`
    /// (feature `json`); see [`Json`].
    pub fn json<T: DeserializeOwned>(self) -> Json<Self, T> {
        Json::new(self)
    }
}

impl crate::EventSourceBuilder {
    /// Serializes `body` as the JSON request body and sets
    /// `Content-Type: application/json` (feature `json`). Combine with
    /// [`EventSource::post`](crate::EventSource::post). A value that fails to
    /// serialize is reported by [`build`](Self::build).
    pub fn json<B: serde::Serialize + ?Sized>(self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.header("content-type", "application/json").body(bytes),
            Err(e) => self.fail(format!("serializing the JSON body failed: {e}")),
        }
    }
}
