//! Events from bytes you already have: any byte stream or HTTP body.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use futures_core::{FusedStream, Stream};

use crate::codec::Unfinished;
use crate::error::Kind;
use crate::{Error, Event, Frame, SseCodec};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The events of one `text/event-stream` body that is already at hand: a
/// byte stream (a child process's output, a recorded capture) or an
/// [`http_body::Body`] (an axum or hyper response obtained in-process,
/// without a socket).
///
/// It yields the same `Result<`[`Event`]`, `[`Error`]`>` items as
/// [`EventSource`](crate::EventSource), from the same parser with the same
/// limits, but never reconnects: the end of the input ends the stream (an
/// unfinished last event is dropped), and an error of the input or an
/// oversized event is yielded once before the end.
///
/// # Example
///
/// ```
/// use futures::{stream, StreamExt};
/// use ssekit::{Event, EventStream};
///
/// # tokio_test_block_on(async {
/// let chunks = vec![Ok::<_, std::io::Error>(&b"data: a\n\nda"[..]), Ok(&b"ta: b\n\n"[..])];
/// let mut events = EventStream::new(stream::iter(chunks));
/// let mut got = Vec::new();
/// while let Some(Ok(Event::Message(m))) = events.next().await {
///     got.push(m.data().to_owned());
/// }
/// assert_eq!(got, ["a", "b"]);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct EventStream<S> {
    input: Option<S>,
    codec: SseCodec,
    comments: bool,
    failed: bool,
}

impl<S> fmt::Debug for EventStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("codec", &self.codec)
            .field("ended", &self.input.is_none())
            .finish_non_exhaustive()
    }
}

impl<S, B, E> EventStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
    E: Into<BoxError>,
{
    /// Parses the chunks of `input`.
    pub fn new(input: S) -> Self {
        EventStream {
            input: Some(input),
            codec: SseCodec::new(),
            comments: false,
            failed: false,
        }
    }

    /// Sets the largest accepted event. Default: 16 MiB, as for
    /// [`EventSourceBuilder::max_event_size`](crate::EventSourceBuilder::max_event_size).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.codec = self.codec.with_max_event_size(bytes);
        self
    }

    /// Whether comments are yielded as [`Event::Comment`]. Default: off.
    pub fn comments(mut self, on: bool) -> Self {
        self.comments = on;
        self
    }

    /// The parser, for its state (last event ID, retry).
    pub fn codec(&self) -> &SseCodec {
        &self.codec
    }
}

impl<B> EventStream<BodyStream<B>>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    /// Parses an HTTP body (trailers are ignored).
    pub fn from_body(body: B) -> Self {
        EventStream::new(BodyStream {
            body: Box::pin(body),
        })
    }
}

impl<S, B, E> Stream for EventStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
    E: Into<BoxError>,
{
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            match this.codec.parse(this.comments) {
                Ok(Some(Frame::Message(m))) => return Poll::Ready(Some(Ok(Event::Message(m)))),
                Ok(Some(Frame::Comment(c))) => return Poll::Ready(Some(Ok(Event::Comment(c)))),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(this.fail(Error::from(e))))),
            }
            let Some(input) = this.input.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(Pin::new(input).poll_next(cx)) {
                Some(Ok(mut chunk)) => {
                    // A contiguous chunk that only continues a line is
                    // copied to the line as it is (a trickled body: most
                    // chunks), with no `Bytes` made and dropped for it.
                    let whole = chunk.chunk();
                    let mut eol = None;
                    if whole.len() == chunk.remaining() {
                        match this.codec.take_unfinished(whole) {
                            Ok(Unfinished::Taken) => continue,
                            Ok(Unfinished::Ends(found)) => eol = Some(found),
                            Ok(Unfinished::Unknown) => {}
                            Err(e) => return Poll::Ready(Some(Err(this.fail(Error::from(e))))),
                        }
                    }
                    // Free for `Bytes` input; other buffers are copied once.
                    let bytes = chunk.copy_to_bytes(chunk.remaining());
                    this.codec.feed(bytes);
                    if let Some(eol) = eol {
                        // Its first line end is known: parse from there.
                        match this.codec.parse_from(this.comments, eol) {
                            Ok(Some(Frame::Message(m))) => {
                                return Poll::Ready(Some(Ok(Event::Message(m))))
                            }
                            Ok(Some(Frame::Comment(c))) => {
                                return Poll::Ready(Some(Ok(Event::Comment(c))))
                            }
                            Ok(_) => {}
                            Err(e) => return Poll::Ready(Some(Err(this.fail(Error::from(e))))),
                        }
                    }
                }
                Some(Err(e)) => {
                    let e = Error::with_source(Kind::Body, e);
                    return Poll::Ready(Some(Err(this.fail(e))));
                }
                None => {
                    // End of input: an unfinished event is dropped.
                    this.input = None;
                    this.codec.reset_body();
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl<S> EventStream<S> {
    fn fail(&mut self, e: Error) -> Error {
        self.failed = true;
        self.input = None;
        self.codec.reset_body();
        e
    }
}

impl<S, B, E> FusedStream for EventStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
    E: Into<BoxError>,
{
    fn is_terminated(&self) -> bool {
        self.failed || self.input.is_none()
    }
}

/// The data frames of an [`http_body::Body`] as a stream; made by
/// [`EventStream::from_body`].
pub struct BodyStream<B> {
    body: Pin<Box<B>>,
}

impl<B> fmt::Debug for BodyStream<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream").finish_non_exhaustive()
    }
}

impl<B: http_body::Body> Stream for BodyStream<B> {
    type Item = Result<B::Data, B::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match ready!(self.body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of an `EventStream` (comments on) over `chunks`.
    fn items(chunks: &[&[u8]]) -> Vec<String> {
        let input = futures::stream::iter(chunks.iter().map(|c| Ok::<_, std::io::Error>(*c)));
        let mut stream = EventStream::new(input).comments(true);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(item)) = Pin::new(&mut stream).poll_next(&mut cx) {
            out.push(match item {
                Ok(Event::Message(m)) => format!("{}|{}|{}", m.event(), m.data(), m.id()),
                Ok(Event::Comment(c)) => format!(":{c}"),
                Ok(other) => format!("{other:?}"),
                Err(e) => format!("error {e}"),
            });
        }
        out
    }

    #[test]
    fn every_cut_gives_what_one_chunk_gives() {
        // Line ends found while a chunk is taken (then not searched again),
        // at chunk edges, CR LF split, comments and retry between events.
        let input: &[u8] =
            b"\xEF\xBB\xBFdata: a\n\nid: 7\r\nevent: x\r\ndata: b\r\ndata: c\r\n\r\n\
            : note\nretry: 10\ndata: long line with some words in it\n\n\
            data: \xC3\xA9t\xC3\xA9\r\rdata:d\r\n\r\n";
        let whole = items(&[input]);
        assert_eq!(whole.len(), 6, "{whole:?}");
        for size in 1..input.len() {
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(items(&chunks), whole, "chunks of {size}");
            for at in 0..input.len() {
                let (a, b) = input.split_at(at);
                assert_eq!(items(&[a, b]), whole, "cut at {at}");
            }
        }
    }
}
