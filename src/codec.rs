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
//! the codec works on the received chunks themselves, finds line ends with
//! `memchr`, and copies only the start of a line that a chunk leaves
//! unfinished, so a partial line is never searched again (a long line's
//! chunks are kept uncopied until its end, then copied once: `line.rs`). A CR at the end of
//! a chunk ends its line at once (the LF that may follow is skipped when it
//! comes). The data of an event whose `data:` line arrived whole is a slice
//! of the received chunk (no copy, no allocation), validated as UTF-8 once.

use std::fmt;
use std::io;
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::event::Str;
use crate::line::{PartialLine, KEEP_CHUNK_FROM};
use crate::scan::{find_eol, Eol};
use crate::MessageEvent;

/// The default [`SseCodec::max_event_size`]: 16 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// A buffer that grew past this (the partial-line buffer, the event-type
/// and id buffers) is freed after use, so one huge line does not leave a
/// huge buffer behind on a long-lived connection.
pub(crate) const KEEP_BUFFER_UP_TO: usize = 16 * 1024;

/// The largest buffer a multi-line event's data starts with, from the size
/// of the one before it (see `Block::joined_hint`).
const JOINED_HINT_UP_TO: usize = 1024 * 1024;

/// Frees `buf` when one huge line made it grow past [`KEEP_BUFFER_UP_TO`].
fn release_if_huge(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUFFER_UP_TO {
        *buf = Vec::new();
    }
}

/// A line end not searched for yet, in [`SseCodec::parse_lines`].
const UNKNOWN: Eol = Eol {
    at: usize::MAX,
    ascii: false,
};

/// How many bytes, from a line's terminator on (`rest`), end the line and
/// then an empty line with the same ending (`\n\n` or `\r\n\r\n`): the
/// event is complete. 0 when `rest` does not start so.
#[inline(always)]
fn blank_line_after(rest: &[u8]) -> usize {
    if rest.starts_with(b"\n\n") {
        2
    } else if rest.starts_with(b"\r\n\r\n") {
        4
    } else {
        0
    }
}

/// Where the line ending at `end` in `input` (a CR or LF there) is over:
/// past a CRLF pair, else past the one byte. When `input` ends with that
/// line's CR, sets `skip_lf`: an LF that comes first in the next input is
/// part of it.
#[inline(always)]
fn past_line_end(input: &[u8], end: usize, skip_lf: &mut bool) -> usize {
    let mut next = end + 1;
    if input[end] == b'\r' {
        match input.get(next) {
            Some(b'\n') => next += 1,
            Some(_) => {}
            None => *skip_lf = true,
        }
    }
    next
}

/// What [`SseCodec::take_unfinished`] did with a chunk.
pub(crate) enum Unfinished {
    /// Copied to the partial line: nothing more to do with it.
    Taken,
    /// Not taken: its first line ends at this [`Eol`].
    Ends(Eol),
    /// Not taken, not searched.
    Unknown,
}

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
/// Besides [`Decoder`], [`feed`](SseCodec::feed) and
/// [`next_frame`](SseCodec::next_frame) take chunks as [`Bytes`] without
/// copying them, as a network client receives them.
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
    /// Received bytes not parsed yet.
    pending: Bytes,
    /// The start of a line that the input so far left unfinished.
    partial: PartialLine,
    /// How many bytes of a leading BOM were matched; `BOM.len()` once the
    /// start of the body is past.
    bom_matched: usize,
    /// The previous line ended with a CR at the very end of the input seen so
    /// far: an LF that comes first in the next input belongs to it.
    skip_lf: bool,
    /// Every byte of `partial` was found ASCII by the line-end search (false
    /// when unknown).
    partial_ascii: bool,
    block: Block,
}

/// The event being parsed and the state events leave behind: kept apart
/// from the input so a line can be read from the input while the event is
/// updated, without moving the input out and back for every line.
struct Block {
    /// Bytes of field lines in the current (undispatched) event.
    size: usize,
    data: Data,
    /// Every `data` line of the current event was found all ASCII when its
    /// end was searched for, so the data needs no UTF-8 check.
    data_ascii: bool,
    event_type: Vec<u8>,
    /// The `id` of the current event, if it had one (`has_id`); the buffer
    /// is kept between events.
    pending_id: Vec<u8>,
    has_id: bool,
    last_event_id: Str,
    retry: Option<Duration>,
    /// The most recent non-default event type, shared between events.
    last_type: Option<Arc<str>>,
    /// The length of the last event's data when it had several lines: the
    /// next such event's buffer starts that big (up to
    /// [`JOINED_HINT_UP_TO`]), instead of doubling up to it and copying
    /// the data about once more on the way.
    joined_hint: usize,
}

/// The data buffer of the event being parsed.
enum Data {
    /// No `data` field yet.
    Empty,
    /// One `data` line: a slice of the input, not copied.
    One(Bytes),
    /// Several lines joined with LF.
    Many(BytesMut),
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
            .field("last_event_id", &&*self.block.last_event_id)
            .field("retry", &self.block.retry)
            .field("buffered_event_bytes", &self.block.size)
            .finish_non_exhaustive()
    }
}

impl SseCodec {
    /// A codec with the default limit ([`DEFAULT_MAX_EVENT_SIZE`], 16 MiB) and
    /// an empty last event ID.
    pub fn new() -> Self {
        SseCodec {
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            pending: Bytes::new(),
            partial: PartialLine::default(),
            bom_matched: 0,
            skip_lf: false,
            partial_ascii: false,
            block: Block {
                size: 0,
                data: Data::Empty,
                data_ascii: false,
                event_type: Vec::new(),
                pending_id: Vec::new(),
                has_id: false,
                last_event_id: Str::EMPTY,
                retry: None,
                last_type: None,
                joined_hint: 0,
            },
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
        &self.block.last_event_id
    }

    /// The last event ID as the codec shares it with its events (no copy).
    pub(crate) fn last_event_id_shared(&self) -> Str {
        self.block.last_event_id.clone()
    }

    /// Sets the last event ID, for instance one saved from an earlier run.
    pub fn set_last_event_id(&mut self, id: impl AsRef<str>) {
        self.block.last_event_id = Str::from(id.as_ref());
    }

    /// The reconnection delay from the latest valid `retry` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.block.retry
    }

    /// Prepares for a new response body, as after a reconnection: drops the
    /// unparsed input, the unfinished event (its `id` and `event` fields
    /// included) and the line-ending and byte-order-mark state, and keeps the
    /// last event ID and the retry delay.
    pub fn reset_body(&mut self) {
        self.pending = Bytes::new();
        self.partial = PartialLine::default();
        self.bom_matched = 0;
        self.skip_lf = false;
        self.block.size = 0;
        self.block.data = Data::Empty;
        self.block.event_type.clear();
        release_if_huge(&mut self.block.event_type);
        release_if_huge(&mut self.block.pending_id);
        self.block.has_id = false;
    }

    /// Adds a received chunk to the input, without copying it. Call
    /// [`next_frame`](Self::next_frame) until it returns `Ok(None)` before
    /// feeding the next chunk (feeding earlier works, but copies).
    #[inline]
    pub fn feed(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            // Not kept: an empty `pending` is never a slice of a chunk.
        } else if self.pending.is_empty() {
            self.pending = chunk;
        } else {
            let mut joined = BytesMut::with_capacity(self.pending.len() + chunk.len());
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(&chunk);
            self.pending = joined.freeze();
        }
    }

    /// Parses up to the next [`Frame`] (an event, a comment or a `retry`
    /// field) from what was [fed](Self::feed). `Ok(None)` means more input is
    /// needed: everything fed so far has been consumed.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when an event or a line exceeds
    /// [`max_event_size`](Self::max_event_size). The codec must not be used
    /// afterwards.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        self.parse(true)
    }

    /// Like [`next_frame`](Self::next_frame), but skips comments (without
    /// building them) and `retry` fields (still applied, see
    /// [`retry`](Self::retry)): the next event only.
    ///
    /// # Errors
    ///
    /// As for [`next_frame`](Self::next_frame).
    #[inline(always)]
    pub fn next_event(&mut self) -> Result<Option<MessageEvent>, DecodeError> {
        // Inline in the caller's loop: most calls on a trickled body end
        // here, without a call or a `Frame` to move.
        if self.pending.is_empty() {
            return Ok(None);
        }
        match self.first_line_end()? {
            None => Ok(None),
            Some(end) => match self.lone_data_event(end) {
                Some(event) => Ok(Some(event)),
                None => self.next_event_lines(end),
            },
        }
    }

    /// The most common event of all (every event of an LLM stream), parsed
    /// without the general line loop: `data: value` then a blank line, both
    /// whole at the start of `pending` (line `0..end`), with no field of the
    /// event before it. `None`: not that shape, nothing was consumed.
    ///
    /// What the general path would do, in fewer steps: the data is a slice
    /// of the chunk, the type is `message`, the last event ID is unchanged
    /// (no `id` field), and the line is checked against the limit.
    #[inline(always)]
    fn lone_data_event(&mut self, eol: Eol) -> Option<MessageEvent> {
        let end = eol.at;
        // `size` is 0 exactly when the block holds no field yet (every
        // `data`, `event` and `id` line adds its length, at least 2).
        if end == UNKNOWN.at || self.block.size != 0 || !self.partial.is_empty() {
            return None;
        }
        let input = &self.pending;
        if end > self.max_event_size || !input.starts_with(b"data:") {
            return None;
        }
        let blank_len = blank_line_after(&input[end..]);
        if blank_len == 0 {
            return None;
        }
        let value_at = 5 + usize::from(input.get(5) == Some(&b' '));
        let data = input.slice(value_at..end);
        self.consume(end + blank_len);
        Some(MessageEvent::from_parts(
            Str::MESSAGE,
            data,
            self.block.last_event_id.clone(),
            eol.ascii,
        ))
    }

    fn next_event_lines(
        &mut self,
        mut first_end: Eol,
    ) -> Result<Option<MessageEvent>, DecodeError> {
        loop {
            match self.parse_lines(false, mem::replace(&mut first_end, UNKNOWN))? {
                Some(Frame::Message(ev)) => return Ok(Some(ev)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Parses up to the next [`Frame`]: an event, a comment or a `retry`
    /// field. `Ok(None)` means more bytes are needed. The bytes of `src` are
    /// taken into the codec (without copying) and `src` is left empty.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when an event or a line exceeds
    /// [`max_event_size`](Self::max_event_size). The codec must not be used
    /// afterwards.
    pub fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        self.take_input(src);
        self.parse(true)
    }

    /// The shortcut for a received chunk that only continues a line (most
    /// chunks of a trickled body), before it is made into [`Bytes`]: when
    /// nothing else is pending and `chunk` has no line end, it is copied to
    /// the partial line ([`Unfinished::Taken`]); the caller drops it (a
    /// `Decoder` clears its buffer and keeps it for the next read).
    /// Otherwise nothing was done: feed the chunk as usual, and when the
    /// first line end was found ([`Unfinished::Ends`]), parse with
    /// [`parse_from`](Self::parse_from) so it is not searched for again.
    ///
    /// # Errors
    ///
    /// As for [`next_frame`](Self::next_frame): the line is over the limit.
    #[inline(always)]
    pub(crate) fn take_unfinished(&mut self, chunk: &[u8]) -> Result<Unfinished, DecodeError> {
        if !self.pending.is_empty()
            || chunk.is_empty()
            // Big enough to be kept as it is: see `PartialLine::keep`.
            || chunk.len() >= KEEP_CHUNK_FROM
            || self.skip_lf
            || self.bom_matched < BOM.len()
        {
            return Ok(Unfinished::Unknown);
        }
        let ascii = match find_eol(chunk) {
            Ok(eol) => return Ok(Unfinished::Ends(eol)),
            Err(ascii) => ascii,
        };
        self.partial_ascii = self.before_partial(chunk, ascii)?;
        self.partial.extend_from_slice(chunk);
        Ok(Unfinished::Taken)
    }

    /// [`parse`](Self::parse) right after the chunk that
    /// [`take_unfinished`](Self::take_unfinished) found the first line end
    /// `eol` of was fed (alone: nothing was pending before it).
    #[inline(always)]
    pub(crate) fn parse_from(
        &mut self,
        comments: bool,
        eol: Eol,
    ) -> Result<Option<Frame>, DecodeError> {
        match self.lone_data_event(eol) {
            Some(event) => Ok(Some(Frame::Message(event))),
            None => self.parse_lines(comments, eol),
        }
    }

    fn take_input(&mut self, src: &mut BytesMut) {
        if !src.is_empty() {
            self.feed(src.split().freeze());
        }
    }

    fn too_large(&self) -> DecodeError {
        DecodeError {
            kind: DecodeErrorKind::TooLarge {
                limit: self.max_event_size,
            },
        }
    }

    /// Checks a line (complete, or the part received so far) of `len` bytes
    /// whose first byte is `first` against the limit.
    fn check_size(&self, first: Option<u8>, len: usize) -> Result<(), DecodeError> {
        // A comment is not part of the event (see `with_max_event_size`), so
        // it only has to fit alone: a keep-alive arriving inside an event that
        // is at the limit must not make that event an error.
        let event_size = if first == Some(b':') {
            0
        } else {
            self.block.size
        };
        if event_size.saturating_add(len) > self.max_event_size {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The next frame; comments are built only when asked for.
    ///
    /// Inline, for the two cases of almost every call on a trickled body
    /// (chunks of a few bytes): nothing left to parse, and a chunk that only
    /// continues a line. Both are decided without a call; the lines
    /// themselves are parsed by [`parse_lines`](Self::parse_lines).
    #[inline(always)]
    pub(crate) fn parse(&mut self, comments: bool) -> Result<Option<Frame>, DecodeError> {
        // `pending` is never an empty slice of a chunk (see `consume`), so
        // there is nothing to release here.
        if self.pending.is_empty() {
            return Ok(None);
        }
        match self.first_line_end()? {
            None => Ok(None),
            Some(end) => match self.lone_data_event(end) {
                Some(event) => Ok(Some(Frame::Message(event))),
                None => self.parse_lines(comments, end),
            },
        }
    }

    /// Where the first line of the (non-empty) `pending` ends: `None` when
    /// all of it only continues a line (then kept as the start of that
    /// line), [`UNKNOWN`] when a pending LF or byte order mark has to be
    /// looked at first.
    #[inline(always)]
    fn first_line_end(&mut self) -> Result<Option<Eol>, DecodeError> {
        if self.skip_lf || self.bom_matched < BOM.len() {
            return Ok(Some(UNKNOWN));
        }
        match find_eol(&self.pending) {
            Ok(eol) => Ok(Some(eol)),
            Err(ascii) => {
                self.append_partial(ascii)?;
                Ok(None)
            }
        }
    }

    /// Before `more` (with no line end; `ascii`: known all ASCII) is added
    /// to the partial line: checks the size limit, and says whether the
    /// line will still be known ASCII.
    #[inline(always)]
    fn before_partial(&self, more: &[u8], ascii: bool) -> Result<bool, DecodeError> {
        let len = self.partial.len() + more.len();
        // Within the limit even as part of the event: no need to know
        // whether the line is a comment.
        if self.block.size.saturating_add(len) > self.max_event_size {
            let first = self.partial.first().or(more.first().copied());
            self.check_size(first, len)?;
        }
        // (A trickled body's chunks are too short to be known ASCII: the
        // one store.)
        Ok(ascii && (self.partial_ascii || self.partial.is_empty()))
    }

    /// Keeps the start of a line that `pending` (all of it) leaves
    /// unfinished, and waits for the rest.
    #[inline(always)]
    fn append_partial(&mut self, ascii: bool) -> Result<(), DecodeError> {
        self.partial_ascii = self.before_partial(&self.pending, ascii)?;
        if self.pending.len() < KEEP_CHUNK_FROM {
            self.partial.extend_from_slice(&self.pending);
            self.pending = Bytes::new();
        } else {
            self.partial.keep(mem::take(&mut self.pending));
        }
        Ok(())
    }

    /// Drops the first `n` bytes of `pending`; all of them releases the
    /// chunk, so an idle stream keeps no input buffer (for a network body,
    /// the HTTP client's read buffer) alive.
    #[inline]
    fn consume(&mut self, n: usize) {
        if n >= self.pending.len() {
            self.pending = Bytes::new();
        } else {
            self.pending.advance(n);
        }
    }

    /// Parses lines up to the next frame. `first_end`: where the first line
    /// of `pending` ends, if the caller searched already ([`UNKNOWN`] if
    /// not).
    fn parse_lines(
        &mut self,
        comments: bool,
        mut first_end: Eol,
    ) -> Result<Option<Frame>, DecodeError> {
        loop {
            if self.pending.is_empty() {
                return Ok(None);
            }
            if first_end.at == UNKNOWN.at && self.skip_lf {
                self.skip_lf = false;
                if self.pending[0] == b'\n' {
                    self.consume(1);
                    continue;
                }
            }
            if first_end.at == UNKNOWN.at && self.bom_matched < BOM.len() {
                self.match_bom();
                continue;
            }
            let eol = mem::replace(&mut first_end, UNKNOWN);
            let eol = if eol.at != UNKNOWN.at {
                eol
            } else {
                match find_eol(&self.pending) {
                    Ok(eol) => eol,
                    Err(ascii) => {
                        self.append_partial(ascii)?;
                        return Ok(None);
                    }
                }
            };
            if self.partial.is_empty() {
                if let Some(frame) = self.whole_lines(comments, eol)? {
                    return Ok(Some(frame));
                }
                continue;
            }
            let end = eol.at;
            let consumed = past_line_end(&self.pending, end, &mut self.skip_lf);
            self.check_size(self.partial.first(), self.partial.len() + end)?;
            self.partial.complete(&self.pending[..end]);
            let ascii = self.partial_ascii && eol.ascii;
            if let Some(frame) = self.partial_line(comments, ascii) {
                self.consume(consumed);
                return Ok(Some(frame));
            }
            // Fast path: a line followed by an empty line with the same
            // ending (`data: ...\n\n`, `data: ...\r\n\r\n`) dispatches at
            // once, without another search.
            let blank_len = blank_line_after(&self.pending[end..]);
            if blank_len != 0 {
                self.consume(end + blank_len);
                if let Some(frame) = self.block.dispatch() {
                    return Ok(Some(frame));
                }
                continue;
            }
            self.consume(consumed);
        }
    }

    /// Parses the whole lines at the start of `pending`, the first of which
    /// ends at `eol` (no partial line before it), up to the next frame, the
    /// end of an event without data, or the end of `pending` (the rest kept
    /// as a partial line). The lines are walked by offset and `pending` is
    /// cut once, at the end, not once per line.
    #[inline]
    fn whole_lines(&mut self, comments: bool, mut eol: Eol) -> Result<Option<Frame>, DecodeError> {
        let mut pos = 0;
        loop {
            let end = pos + eol.at;
            let input = &self.pending;
            self.check_size(input.get(pos).copied(), eol.at)?;
            let line = &input[pos..end];
            // `data:`, `id:` and `event:` lines (most lines) without the
            // call to `field`.
            let frame = if line.starts_with(b"data:") {
                let value_at = 5 + usize::from(line.get(5) == Some(&b' '));
                self.block
                    .data(line, value_at, Some((input, pos)), eol.ascii);
                None
            } else if line.starts_with(b"id:") {
                self.block
                    .id(line, 3 + usize::from(line.get(3) == Some(&b' ')));
                None
            } else if line.starts_with(b"event:") {
                self.block
                    .event_type(line, 6 + usize::from(line.get(6) == Some(&b' ')));
                None
            } else {
                self.block
                    .field(line, Some((input, pos)), comments, eol.ascii)
            };
            let next = past_line_end(input, end, &mut self.skip_lf);
            if frame.is_some() {
                self.consume(next);
                return Ok(frame);
            }
            // Fast path: a line followed by an empty line with the same
            // ending (`data: ...\n\n`, `data: ...\r\n\r\n`) dispatches at
            // once, without another search.
            let blank_len = blank_line_after(&input[end..]);
            if blank_len != 0 {
                self.consume(end + blank_len);
                return Ok(self.block.dispatch());
            }
            if next == input.len() {
                self.pending = Bytes::new();
                return Ok(None);
            }
            match find_eol(&input[next..]) {
                Ok(found) => {
                    eol = found;
                    pos = next;
                }
                Err(ascii) => {
                    self.consume(next);
                    self.append_partial(ascii)?;
                    return Ok(None);
                }
            }
        }
    }

    /// Matches the next input byte against the byte order mark.
    fn match_bom(&mut self) {
        if self.pending[0] == BOM[self.bom_matched] {
            self.consume(1);
            self.bom_matched += 1;
        } else {
            // Not a BOM after all: the bytes matched so far are text.
            self.partial_ascii = false;
            self.partial.extend_from_slice(&BOM[..self.bom_matched]);
            self.bom_matched = BOM.len();
        }
    }

    /// Interprets the line completed in `partial`; `ascii`: it is known to
    /// be all ASCII.
    fn partial_line(&mut self, comments: bool, ascii: bool) -> Option<Frame> {
        let partial = self.partial.buf();
        if partial.starts_with(b"data") && matches!(self.block.data, Data::Empty) {
            // The data can be handed out without a copy: take the buffer.
            // `split` leaves `partial` a view of the rest of the same
            // allocation: however little room that rest has, it would keep a
            // huge line's whole buffer alive after its event. So a huge
            // buffer is judged before the split, by its whole capacity.
            let huge = partial.capacity() > KEEP_BUFFER_UP_TO;
            let line = partial.split().freeze();
            if huge {
                *partial = BytesMut::new();
            }
            return self.block.field(&line, Some((&line, 0)), comments, ascii);
        }
        // A data line joined to earlier ones: whether it is ASCII decides
        // whether the whole event's data needs a UTF-8 check at dispatch
        // (all of a 64 KiB event for one line cut between two reads), so
        // it is worth finding out here, for this line only.
        let ascii = ascii
            || (self.block.data_ascii
                && partial.starts_with(b"data")
                && crate::scan::ascii_prefix(partial) == partial.len());
        let frame = self.block.field(partial, None, comments, ascii);
        partial.clear();
        if partial.capacity() > KEEP_BUFFER_UP_TO {
            *partial = BytesMut::new();
        }
        frame
    }
}

impl Block {
    /// Interprets one complete line. `shared` is the buffer the line lies in
    /// and its offset there, when the data value can be a slice of it.
    ///
    /// `ascii`: the line is known to be all ASCII (false when unknown).
    fn field(
        &mut self,
        line: &[u8],
        shared: Option<(&Bytes, usize)>,
        comments: bool,
        ascii: bool,
    ) -> Option<Frame> {
        let Some(&first) = line.first() else {
            return self.dispatch();
        };
        if first == b':' {
            return comments.then(|| Frame::Comment(lossy(&line[1..])));
        }
        // `data:` lines are most of the input: straight to the data, with no
        // search for the colon and no match on the field name.
        if line.starts_with(b"data:") {
            let value_at = 5 + usize::from(line.get(5) == Some(&b' '));
            self.data(line, value_at, shared, ascii);
            return None;
        }
        // The other fields of a typical event, also without the search.
        if line.starts_with(b"id:") {
            self.id(line, 3 + usize::from(line.get(3) == Some(&b' ')));
            return None;
        }
        if line.starts_with(b"event:") {
            self.event_type(line, 6 + usize::from(line.get(6) == Some(&b' ')));
            return None;
        }
        // Field names are short: look for the colon among the first bytes
        // inline, before a call to `memchr` for the rest.
        const NAME: usize = 8;
        let colon = match line.iter().take(NAME).position(|&b| b == b':') {
            Some(colon) => Some(colon),
            None if line.len() > NAME => memchr::memchr(b':', &line[NAME..]).map(|c| c + NAME),
            None => None,
        };
        let (name, value_at) = match colon {
            Some(colon) => {
                let at = colon + 1;
                (
                    &line[..colon],
                    at + usize::from(line.get(at) == Some(&b' ')),
                )
            }
            None => (line, line.len()),
        };
        let value = &line[value_at..];
        match name {
            b"data" => self.data(line, value_at, shared, ascii),
            b"event" => self.event_type(line, value_at),
            b"id" => self.id(line, value_at),
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

    /// An `event` field: `line` is the whole line, its value starts at
    /// `value_at`.
    #[inline(always)]
    fn event_type(&mut self, line: &[u8], value_at: usize) {
        self.size += line.len();
        self.event_type.clear();
        self.event_type.extend_from_slice(&line[value_at..]);
    }

    /// An `id` field: `line` is the whole line, its value starts at
    /// `value_at`.
    #[inline(always)]
    fn id(&mut self, line: &[u8], value_at: usize) {
        let value = &line[value_at..];
        // An id containing NUL is ignored (it could never be sent back).
        // Ids are short: a plain loop costs less than a call to `memchr`
        // (which `contains` makes for bytes).
        #[allow(clippy::manual_contains)]
        let nul = if value.len() <= 32 {
            value.iter().any(|&b| b == 0)
        } else {
            memchr::memchr(0, value).is_some()
        };
        if nul {
            return;
        }
        self.size += line.len();
        self.has_id = true;
        self.pending_id.clear();
        self.pending_id.extend_from_slice(value);
    }

    /// A `data` field: `line` is the whole line, its value starts at
    /// `value_at`.
    #[inline(always)]
    fn data(&mut self, line: &[u8], value_at: usize, shared: Option<(&Bytes, usize)>, ascii: bool) {
        self.size += line.len();
        let value = &line[value_at..];
        match &mut self.data {
            Data::Empty => {
                self.data_ascii = ascii;
                self.data = Data::One(match shared {
                    Some((input, offset)) => input.slice(offset + value_at..offset + line.len()),
                    None => Bytes::copy_from_slice(value),
                });
            }
            Data::One(one) => {
                self.data_ascii &= ascii;
                let len = one.len() + 1 + value.len();
                let mut many = BytesMut::with_capacity(len.max(self.joined_hint));
                many.extend_from_slice(one);
                many.put_u8(b'\n');
                many.extend_from_slice(value);
                self.data = Data::Many(many);
            }
            Data::Many(many) => {
                self.data_ascii &= ascii;
                many.put_u8(b'\n');
                many.extend_from_slice(value);
            }
        }
    }

    fn dispatch(&mut self) -> Option<Frame> {
        self.size = 0;
        if mem::take(&mut self.has_id) && self.pending_id != self.last_event_id.as_bytes() {
            self.last_event_id = match Str::short_ascii(&self.pending_id) {
                Some(id) => id,
                None => match std::str::from_utf8(&self.pending_id) {
                    Ok(id) => Str::from(id),
                    Err(_) => Str::from(lossy(&self.pending_id).as_str()),
                },
            };
        }
        release_if_huge(&mut self.pending_id);
        let data = match mem::replace(&mut self.data, Data::Empty) {
            Data::Empty => {
                self.event_type.clear();
                release_if_huge(&mut self.event_type);
                return None;
            }
            Data::One(one) => one,
            Data::Many(many) => {
                self.joined_hint = many.len().min(JOINED_HINT_UP_TO);
                if many.capacity() / 2 > many.len() {
                    // Much smaller than the event before it: not worth
                    // holding its buffer, as long as the event lives.
                    Bytes::copy_from_slice(&many)
                } else {
                    many.freeze()
                }
            }
        };
        let event = if self.event_type.is_empty() {
            Str::MESSAGE
        } else {
            let ty = match &self.last_type {
                Some(last) if last.as_bytes() == self.event_type.as_slice() => last.clone(),
                _ => {
                    let ty: Arc<str> = Arc::from(lossy(&self.event_type));
                    // Only names of a sensible length are kept for sharing:
                    // a huge one would stay allocated until the next type.
                    self.last_type = (ty.len() <= KEEP_BUFFER_UP_TO).then(|| ty.clone());
                    ty
                }
            };
            self.event_type.clear();
            release_if_huge(&mut self.event_type);
            Str::Shared(ty)
        };
        Some(Frame::Message(MessageEvent::from_parts(
            event,
            data,
            self.last_event_id.clone(),
            mem::take(&mut self.data_ascii),
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

    #[inline]
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<MessageEvent>, DecodeError> {
        match self.take_unfinished(src)? {
            Unfinished::Taken => {
                src.clear();
                Ok(None)
            }
            Unfinished::Ends(eol) => {
                self.take_input(src);
                match self.lone_data_event(eol) {
                    Some(event) => Ok(Some(event)),
                    None => self.next_event_lines(eol),
                }
            }
            Unfinished::Unknown => {
                self.take_input(src);
                self.next_event()
            }
        }
    }

    /// Dispatches what the last bytes complete, then discards the unfinished
    /// event: the end of a body is not an error.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<MessageEvent>, DecodeError> {
        if let Some(ev) = self.decode(src)? {
            return Ok(Some(ev));
        }
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
        self.inner.reset_body();
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_input_is_released() {
        // An idle stream must not keep the last chunk (the HTTP client's read
        // buffer) alive after parsing it.
        let chunk = Bytes::from(b"id: 1\ndata: a\n\n: ping\n\n".to_vec());
        let mut codec = SseCodec::new();
        codec.feed(chunk.clone());
        let ev = codec.next_event().unwrap().unwrap();
        assert_eq!(ev.data(), "a");
        drop(ev); // the event's data was a slice of the chunk
        assert!(codec.next_event().unwrap().is_none());
        assert!(chunk.is_unique(), "the codec still holds the chunk");
    }

    #[test]
    fn find_eol_agrees_with_a_byte_search() {
        // Bytes next to CR and LF in value, or equal to them but for the
        // high bit, are where a word-at-a-time search would go wrong.
        let fillers = [b'a', 0x00, 0x09, 0x0B, 0x0C, 0x0E, 0x8A, 0x8D, 0xFF, 0x80];
        for len in 0..=40 {
            for filler in fillers {
                for at in 0..=len {
                    for eol in [b'\n', b'\r'] {
                        let mut bytes = vec![filler; len];
                        if at < len {
                            bytes[at] = eol;
                            // A second line end after the first must not win.
                            if at + 3 < len {
                                bytes[at + 3] = b'\n' ^ b'\r' ^ eol;
                            }
                        }
                        let want = bytes.iter().position(|&b| b == b'\n' || b == b'\r');
                        assert_eq!(find_eol(&bytes).ok().map(|e| e.at), want, "{bytes:x?}");
                    }
                }
            }
        }
    }

    /// Every frame of `input` fed as the chunks `sizes` cut it into (the
    /// rest in one last chunk), through `feed` or through the `Decoder`.
    fn frames_of(input: &[u8], sizes: &[usize], decoder: bool) -> Vec<Frame> {
        let mut codec = SseCodec::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes.get(i).copied().unwrap_or(rest.len()).min(rest.len());
            i += 1;
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            if decoder {
                buf.extend_from_slice(chunk);
                while let Some(frame) = codec.decode_frame(&mut buf).unwrap() {
                    out.push(frame);
                }
            } else {
                codec.feed(Bytes::copy_from_slice(chunk));
                while let Some(frame) = codec.next_frame().unwrap() {
                    out.push(frame);
                }
            }
        }
        out
    }

    #[test]
    fn long_lines_cut_every_way_parse_as_whole() {
        // Lines longer than `KEEP_CHUNK_FROM`, arriving as chunks kept as
        // they are, copied bytes, or a mix, with line ends (CR, LF, CRLF)
        // at chunk edges and a byte order mark before them.
        let long = |c: u8| vec![c; 5 * KEEP_CHUNK_FROM + 77];
        for eol in [&b"\n"[..], b"\r", b"\r\n"] {
            let mut input = BOM.to_vec();
            for line in [
                [b"data: ".to_vec(), long(b'a')].concat(),
                [b"data: ".to_vec(), long(b'b')].concat(),
                Vec::new(),
                [b":".to_vec(), long(b'c')].concat(),
                [b"event: ".to_vec(), long(b'd')].concat(),
                [b"id: ".to_vec(), long(b'e')].concat(),
                b"data: short".to_vec(),
                Vec::new(),
                [b"data: ".to_vec(), long(0xC3)].concat(),
                Vec::new(),
            ] {
                input.extend_from_slice(&line);
                input.extend_from_slice(eol);
            }
            let whole = frames_of(&input, &[], false);
            assert_eq!(whole.len(), 4, "{whole:?}");
            let k = KEEP_CHUNK_FROM;
            let cuts: [&[usize]; 8] = [
                &[700; 1000],
                &[
                    511, 512, 513, 1, 600, 7, 1460, 2, 513, 4095, 3000, 512, 512, 512, 512,
                ],
                &[k; 64],
                &[k + 3; 64],
                &[1, 2, k, 5, k, k + 1, 7, 1, k * 2, 1, 1, k],
                &[100; 1000],
                &[k - 1, 1, k - 1, 1, k, k - 1, 1, k - 1, 1, k, k, k, k, k, k],
                &[7, 5 * k + 83, 1, 5 * k + 84, 2, 5 * k + 84, 5 * k + 84],
            ];
            for sizes in cuts {
                for decoder in [false, true] {
                    assert!(
                        frames_of(&input, sizes, decoder) == whole,
                        "eol {eol:?} sizes {sizes:?} decoder {decoder}"
                    );
                }
            }
        }
    }

    #[test]
    fn single_line_data_is_not_copied() {
        let chunk = Bytes::from(b"data: shared\n\n".to_vec());
        let mut codec = SseCodec::new();
        codec.feed(chunk.clone());
        let ev = codec.next_event().unwrap().unwrap();
        assert_eq!(ev.data_bytes().as_ptr(), chunk[6..].as_ptr());
    }
}
