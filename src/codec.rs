//! The incremental, sans-IO SSE parser.
//!
//! [`SseCodec`] turns the bytes of an `text/event-stream` body into
//! [`MessageEvent`]s, following the WHATWG HTML rules for server-sent events.
//! It knows nothing of HTTP or of any runtime: feed it bytes through
//! [`tokio_util::codec::Decoder`] (for example with
//! [`FramedRead`](tokio_util::codec::FramedRead)), or call
//! [`SseCodec::decode_frame`] to also see comments and `retry` fields.
//!
//! # Cost
//!
//! Each byte is looked at a bounded number of times however the input is cut:
//! a partial line is never searched again (the codec remembers how far it
//! looked), line ends are found with `memchr`, and a CR at the end of a chunk
//! ends its line at once (the LF that may follow is skipped when it comes).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use crate::MessageEvent;

/// The default [`SseCodec::max_event_size`]: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Data buffers up to this size are copied out at dispatch and the buffer is
/// kept for the next event; larger ones are handed over whole, so one huge
/// event does not leave a huge buffer behind on a long-lived connection.
const REUSE_DATA_BUFFER_UP_TO: usize = 16 * 1024;

/// One thing the parser found in the stream, as returned by
/// [`SseCodec::decode_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A dispatched event.
    Message(MessageEvent),
    /// A comment line (`:` and what follows it); the text excludes the colon
    /// and is otherwise as sent (a leading space is kept).
    Comment(String),
    /// A valid `retry` field: the server's new reconnection delay. It is in
    /// force as soon as it is read, and stays so for later connections.
    Retry(Duration),
}

/// The error of [`SseCodec`]: the stream is unusable after it.
pub struct DecodeError {
    kind: DecodeErrorKind,
}

enum DecodeErrorKind {
    TooLarge { limit: usize },
    Io(io::Error),
}

impl DecodeError {
    /// True when an event (or a single line) exceeded
    /// [`SseCodec::max_event_size`].
    pub fn is_too_large(&self) -> bool {
        matches!(self.kind, DecodeErrorKind::TooLarge { .. })
    }

    /// The limit that was exceeded, for an [`is_too_large`](Self::is_too_large)
    /// error.
    pub fn limit(&self) -> Option<usize> {
        match self.kind {
            DecodeErrorKind::TooLarge { limit } => Some(limit),
            DecodeErrorKind::Io(_) => None,
        }
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DecodeErrorKind::TooLarge { limit } => f
                .debug_struct("DecodeError::TooLarge")
                .field("limit", limit)
                .finish(),
            DecodeErrorKind::Io(e) => f.debug_tuple("DecodeError::Io").field(e).finish(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DecodeErrorKind::TooLarge { limit } => {
                write!(
                    f,
                    "server-sent event larger than the limit of {limit} bytes"
                )
            }
            DecodeErrorKind::Io(_) => f.write_str("I/O error while reading the event stream"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            DecodeErrorKind::Io(e) => Some(e),
            DecodeErrorKind::TooLarge { .. } => None,
        }
    }
}

impl From<io::Error> for DecodeError {
    fn from(e: io::Error) -> Self {
        DecodeError {
            kind: DecodeErrorKind::Io(e),
        }
    }
}

/// An incremental `text/event-stream` parser.
///
/// Implements [`Decoder`] with [`MessageEvent`] as its item, and keeps the
/// state a reconnecting client needs: the committed
/// [last event ID](SseCodec::last_event_id) and the server's
/// [`retry`](SseCodec::retry) delay.
///
/// What it implements (the WHATWG HTML rules, §9.2.6):
///
/// - UTF-8 always; invalid sequences become U+FFFD, never an error; one
///   leading byte order mark per body is dropped.
/// - Lines end at CRLF, LF or CR, also when the CR and LF arrive apart; an
///   event is dispatched as soon as its blank line is seen.
/// - `event`, `data`, `id` (ignored when it contains U+0000) and `retry`
///   (ASCII digits only) fields; other field names are ignored; lines
///   starting with `:` are comments.
/// - Every blank line commits the last event ID, even when no event is
///   dispatched; a block without data dispatches nothing.
/// - At the end of input an unfinished event is discarded, including its
///   `id` and `event` fields ([`decode_eof`](Decoder::decode_eof) returns
///   `Ok(None)`, not an error).
///
/// Memory is bounded by [`max_event_size`](SseCodec::max_event_size): an
/// event whose field lines add up to more than that many bytes, or a single
/// line longer than that, is a [`DecodeError`].
///
/// # Example
///
/// ```
/// use bytes::BytesMut;
/// use ssekit::SseCodec;
/// use tokio_util::codec::Decoder;
///
/// let mut codec = SseCodec::default();
/// let mut buf = BytesMut::from("id: 1\nevent: greet\ndata: hel");
/// assert!(codec.decode(&mut buf).unwrap().is_none()); // needs more bytes
///
/// buf.extend_from_slice(b"lo\r\n\r\n");
/// let ev = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!((ev.event(), ev.data(), ev.id()), ("greet", "hello", "1"));
/// assert_eq!(codec.last_event_id(), "1");
/// ```
pub struct SseCodec {
    max_event_size: usize,
    /// Still at the start of a body, where one BOM is dropped.
    at_body_start: bool,
    /// The previous line ended with a CR at the very end of the input seen so
    /// far: an LF that comes first in the next input belongs to it.
    skip_lf: bool,
    /// How many bytes at the front of the buffer were already searched for a
    /// line end without finding one.
    scanned: usize,
    /// Bytes of field lines in the current (undispatched) event.
    block_size: usize,
    data: Vec<u8>,
    event_type: Vec<u8>,
    pending_id: Option<Vec<u8>>,
    last_event_id: Arc<str>,
    retry: Option<Duration>,
    message_type: Arc<str>,
    /// The most recent non-default event type, shared between events.
    last_type: Option<Arc<str>>,
}

impl Default for SseCodec {
    fn default() -> Self {
        SseCodec::new()
    }
}

impl fmt::Debug for SseCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseCodec")
            .field("max_event_size", &self.max_event_size)
            .field("last_event_id", &&*self.last_event_id)
            .field("retry", &self.retry)
            .field("buffered_event_bytes", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl SseCodec {
    /// A codec with the default limit ([`DEFAULT_MAX_EVENT_SIZE`], 16 MiB) and
    /// an empty last event ID.
    pub fn new() -> Self {
        SseCodec {
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            at_body_start: true,
            skip_lf: false,
            scanned: 0,
            block_size: 0,
            data: Vec::new(),
            event_type: Vec::new(),
            pending_id: None,
            last_event_id: Arc::from(""),
            retry: None,
            message_type: Arc::from("message"),
            last_type: None,
        }
    }

    /// Sets the largest accepted event, in bytes of its field lines as sent
    /// (line terminators and comments not counted); no single line may be
    /// longer either. Default: [`DEFAULT_MAX_EVENT_SIZE`] (16 MiB).
    pub fn with_max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// The largest accepted event, in bytes. See
    /// [`with_max_event_size`](Self::with_max_event_size).
    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// The last event ID: the value of the latest `id` field followed by a
    /// blank line, `""` when there was none. This is what a reconnecting
    /// client sends as `Last-Event-ID`.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Sets the last event ID, for instance one saved from an earlier run.
    pub fn set_last_event_id(&mut self, id: impl AsRef<str>) {
        self.last_event_id = Arc::from(id.as_ref());
    }

    /// The reconnection delay from the latest valid `retry` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Prepares for a new response body, as after a reconnection: drops the
    /// unfinished event (its `id` and `event` fields included) and the
    /// line-ending and byte-order-mark state, and keeps the last event ID and
    /// the retry delay. The caller must also clear the buffer it passes in.
    pub fn reset_body(&mut self) {
        self.at_body_start = true;
        self.skip_lf = false;
        self.scanned = 0;
        self.discard_event();
    }

    fn discard_event(&mut self) {
        self.block_size = 0;
        self.data.clear();
        self.event_type.clear();
        self.pending_id = None;
        if self.data.capacity() > REUSE_DATA_BUFFER_UP_TO {
            self.data = Vec::new();
        }
    }

    /// Parses up to the next [`Frame`]: an event, a comment or a `retry`
    /// field. `Ok(None)` means more bytes are needed; consumed bytes are
    /// removed from `src`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when an event or a line exceeds
    /// [`max_event_size`](Self::max_event_size). The codec must not be used
    /// afterwards.
    pub fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        self.next_frame(src, true)
    }

    fn next_frame(
        &mut self,
        src: &mut BytesMut,
        comments: bool,
    ) -> Result<Option<Frame>, DecodeError> {
        loop {
            if self.skip_lf {
                match src.first() {
                    None => return Ok(None),
                    Some(b'\n') => src.advance(1),
                    Some(_) => {}
                }
                self.skip_lf = false;
            }
            if self.at_body_start {
                let n = src.len().min(BOM.len());
                if src[..n] == BOM[..n] {
                    if n < BOM.len() {
                        return Ok(None);
                    }
                    src.advance(BOM.len());
                }
                self.at_body_start = false;
            }

            let Some(offset) = memchr::memchr2(b'\n', b'\r', &src[self.scanned..]) else {
                self.scanned = src.len();
                self.check_size(src)?;
                return Ok(None);
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            self.check_size(&src[..end])?;
            let consumed = if src[end] == b'\n' {
                end + 1
            } else if end + 1 < src.len() {
                end + 1 + usize::from(src[end + 1] == b'\n')
            } else {
                self.skip_lf = true;
                end + 1
            };
            let frame = self.line(&src[..end], comments);
            src.advance(consumed);
            if let Some(frame) = frame {
                return Ok(Some(frame));
            }
        }
    }

    /// Checks a line (complete, or the part received so far) against the
    /// limit.
    fn check_size(&self, line: &[u8]) -> Result<(), DecodeError> {
        // A comment is not part of the event (see `with_max_event_size`), so
        // it only has to fit alone: a keep-alive arriving inside an event that
        // is at the limit must not make that event an error.
        let event_size = if line.first() == Some(&b':') {
            0
        } else {
            self.block_size
        };
        if event_size.saturating_add(line.len()) > self.max_event_size {
            return Err(DecodeError {
                kind: DecodeErrorKind::TooLarge {
                    limit: self.max_event_size,
                },
            });
        }
        Ok(())
    }

    /// Interprets one complete line (without its terminator).
    fn line(&mut self, line: &[u8], comments: bool) -> Option<Frame> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return comments.then(|| Frame::Comment(lossy(&line[1..])));
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                self.block_size += line.len();
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.block_size += line.len();
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            // An id containing NUL is ignored (it could never be sent back).
            b"id" if memchr::memchr(0, value).is_none() => {
                self.block_size += line.len();
                let id = self.pending_id.get_or_insert_with(Vec::new);
                id.clear();
                id.extend_from_slice(value);
            }
            // Only ASCII digits: `1000x`, `-1`, `+5`, `1.5` are ignored.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = value.iter().fold(0u64, |acc, d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                let delay = Duration::from_millis(ms);
                self.retry = Some(delay);
                return Some(Frame::Retry(delay));
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Frame> {
        self.block_size = 0;
        if let Some(id) = self.pending_id.take() {
            if id != self.last_event_id.as_bytes() {
                self.last_event_id = Arc::from(lossy(&id));
            }
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        self.data.pop(); // the LF after the last data line
        let data = if self.data.len() <= REUSE_DATA_BUFFER_UP_TO {
            let data = lossy(&self.data);
            self.data.clear();
            data
        } else {
            let data = std::mem::take(&mut self.data);
            String::from_utf8(data)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        let event = if self.event_type.is_empty() {
            self.message_type.clone()
        } else {
            let ty = match &self.last_type {
                Some(last) if last.as_bytes() == self.event_type.as_slice() => last.clone(),
                _ => {
                    let ty: Arc<str> = Arc::from(lossy(&self.event_type));
                    self.last_type = Some(ty.clone());
                    ty
                }
            };
            self.event_type.clear();
            ty
        };
        Some(Frame::Message(MessageEvent::from_parts(
            event,
            data,
            self.last_event_id.clone(),
        )))
    }
}

/// Decodes UTF-8, replacing invalid sequences with U+FFFD.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Decoder for SseCodec {
    type Item = MessageEvent;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<MessageEvent>, DecodeError> {
        loop {
            match self.next_frame(src, false)? {
                Some(Frame::Message(ev)) => return Ok(Some(ev)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Dispatches what the last bytes complete, then discards the unfinished
    /// event: the end of a body is not an error.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<MessageEvent>, DecodeError> {
        if let Some(ev) = self.decode(src)? {
            return Ok(Some(ev));
        }
        src.clear();
        self.reset_body();
        Ok(None)
    }
}

/// A [`Decoder`] yielding every [`Frame`] (events, comments and `retry`
/// fields) instead of only events; a thin wrapper over [`SseCodec`].
///
/// # Example
///
/// ```
/// use bytes::BytesMut;
/// use ssekit::{Frame, FrameCodec};
/// use tokio_util::codec::Decoder;
///
/// let mut codec = FrameCodec::default();
/// let mut buf = BytesMut::from(": keep-alive\nretry: 2500\n");
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Comment(" keep-alive".into())));
/// assert!(matches!(codec.decode(&mut buf).unwrap(), Some(Frame::Retry(_))));
/// ```
#[derive(Debug, Default)]
pub struct FrameCodec {
    inner: SseCodec,
}

impl FrameCodec {
    /// Wraps a configured [`SseCodec`].
    pub fn new(inner: SseCodec) -> Self {
        FrameCodec { inner }
    }

    /// The wrapped codec, for its state.
    pub fn get_ref(&self) -> &SseCodec {
        &self.inner
    }

    /// The wrapped codec, mutably.
    pub fn get_mut(&mut self) -> &mut SseCodec {
        &mut self.inner
    }

    /// Unwraps the codec.
    pub fn into_inner(self) -> SseCodec {
        self.inner
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        self.inner.decode_frame(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let Some(frame) = self.inner.decode_frame(src)? {
            return Ok(Some(frame));
        }
        src.clear();
        self.inner.reset_body();
        Ok(None)
    }
}
