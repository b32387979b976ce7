//! The events a stream yields.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// One dispatched server-sent event: what the HTML standard calls a
/// `MessageEvent`.
///
/// Produced by [`SseCodec`](crate::SseCodec) and, wrapped in
/// [`Event::Message`](crate::Event::Message), by
/// [`EventSource`](crate::EventSource). The event type and the id are shared
/// between consecutive events that carry the same value, so cloning an event
/// or receiving many events of one type costs no extra allocation.
///
/// The data of an event whose `data:` line arrived in one piece is not
/// copied: it shares memory with the chunk it arrived in (as `bytes::Bytes`
/// slices do), which stays allocated while the event lives: a small event
/// can keep a whole read buffer (8 KiB or more) alive. That is the right
/// trade for events handled and dropped (no copy, no allocation per event);
/// to keep events for a long time (a cache, a history), keep
/// [`detached`](Self::detached) events or [`into_data`](Self::into_data)
/// strings instead.
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
    event: Str,
    /// Always valid UTF-8: see `from_parts`.
    data: Bytes,
    id: Str,
}

impl MessageEvent {
    /// Builds an event. An empty `event` becomes `"message"`, as on the wire.
    pub fn new(event: impl AsRef<str>, data: impl Into<String>, id: impl AsRef<str>) -> Self {
        let event = event.as_ref();
        MessageEvent {
            event: if event.is_empty() {
                Str::MESSAGE
            } else {
                Str::from(event)
            },
            data: Bytes::from(data.into()),
            id: Str::from(id.as_ref()),
        }
    }

    /// Constructor for the codec. Invalid UTF-8 in `data` is replaced with
    /// U+FFFD here, so that `data` is always valid UTF-8. `ascii`: the
    /// parser found every byte of it ASCII already (no check needed).
    pub(crate) fn from_parts(event: Str, data: Bytes, id: Str, ascii: bool) -> Self {
        debug_assert!(!ascii || data.is_ascii(), "data said ASCII is not");
        let data = if ascii || is_utf8(&data) {
            data
        } else {
            Bytes::from(String::from_utf8_lossy(&data).into_owned())
        };
        MessageEvent { event, data, id }
    }

    /// The event type: the last `event:` field of the block, or `"message"`
    /// when it had none.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The data: the `data:` lines of the block joined with `\n`.
    pub fn data(&self) -> &str {
        // SAFETY: `data` is valid UTF-8: `new` builds it from a `String`, and
        // `from_parts` (the only other constructor) validates it or replaces
        // it with a lossy conversion. Bytes are never mutated afterwards.
        // Re-validating here would make every call O(n); the parser bench
        // (benches/parser.rs) shows why the data is kept as received bytes
        // instead of being copied into a `String`.
        #[allow(unsafe_code)]
        unsafe {
            std::str::from_utf8_unchecked(&self.data)
        }
    }

    /// The data as bytes (valid UTF-8). When the event's `data:` line arrived
    /// in one piece, this shares memory with the received chunk instead of
    /// being a copy; [`into_data`](Self::into_data) gives an owned `String`.
    pub fn data_bytes(&self) -> &Bytes {
        &self.data
    }

    /// The last event ID in force when the event was dispatched (the most
    /// recent `id:` field of this or an earlier event), `""` when none.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The same event with data in memory of its own, exactly its size: keep
    /// this rather than the event itself in a cache or a long queue, so the
    /// received chunk the data was a slice of (the HTTP client's read
    /// buffer, 8 KiB or more) can be freed. The type and id are shared
    /// strings already.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use ssekit::SseCodec;
    ///
    /// let chunk = Bytes::from(format!("data: small\n\n{}", " ".repeat(8000)));
    /// let mut codec = SseCodec::new();
    /// codec.feed(chunk.clone());
    /// let event = codec.next_event().unwrap().unwrap();
    /// let kept = event.clone().detached();
    /// drop(event);
    /// drop(codec);
    /// assert!(chunk.is_unique(), "only `chunk` holds the 8 KiB now");
    /// assert_eq!(kept.data(), "small");
    /// ```
    #[must_use]
    pub fn detached(self) -> MessageEvent {
        MessageEvent {
            data: Bytes::copy_from_slice(&self.data),
            ..self
        }
    }

    /// Takes the data out of the event (without a copy when nothing else
    /// shares its memory).
    pub fn into_data(self) -> String {
        match String::from_utf8(Vec::from(self.data)) {
            Ok(s) => s,
            // Unreachable (the data is valid UTF-8), but never worth a panic.
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// Whether `bytes` is valid UTF-8.
///
/// Event data is mostly ASCII (JSON) with a few multi-byte characters:
/// ASCII runs are skipped 16 bytes at a time and each multi-byte character
/// is checked in place against the well-formed sequences of the Unicode
/// standard (table 3-7), with no call per region into `str::from_utf8`,
/// whose setup cost dominates on event-sized inputs (see benches/parser.rs).
fn is_utf8(bytes: &[u8]) -> bool {
    // The ASCII prefix (most or all of a JSON event) in vector steps; the
    // rest character by character.
    let ascii = crate::scan::ascii_prefix(bytes);
    ascii == bytes.len() || is_utf8_from(&bytes[ascii..])
}

fn is_utf8_from(bytes: &[u8]) -> bool {
    const HIGH: u128 = u128::from_le_bytes([0x80; 16]);
    let mut i = 0;
    while i < bytes.len() {
        let lead = bytes[i];
        if lead < 0x80 {
            i += 1;
            while let Some(word) = bytes.get(i..i + 16) {
                let high = u128::from_le_bytes(word.try_into().expect("16 bytes")) & HIGH;
                if high != 0 {
                    // Straight to the first non-ASCII byte (little-endian:
                    // the lowest set bit), not one ASCII byte at a time.
                    i += (high.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 16;
            }
            // Fewer than 16 bytes left (usually the end of the JSON after
            // the last multi-byte character): the last 16 bytes of the
            // slice in one word, the ones before `i` (checked already)
            // shifted out, instead of a byte at a time.
            if i + 16 > bytes.len() && i < bytes.len() && bytes.len() >= 16 {
                let start = bytes.len() - 16;
                let word = u128::from_le_bytes(bytes[start..].try_into().expect("16 bytes"));
                let high = (word & HIGH) >> (8 * (i - start));
                if high == 0 {
                    return true;
                }
                i += (high.trailing_zeros() / 8) as usize;
            }
            continue;
        }
        // The range of the second byte depends on the lead byte; the others
        // are plain continuation bytes (0x80..=0xBF).
        let (len, second) = match lead {
            0xC2..=0xDF => (2, 0x80..=0xBF),
            0xE0 => (3, 0xA0..=0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80..=0xBF),
            0xED => (3, 0x80..=0x9F),
            0xF0 => (4, 0x90..=0xBF),
            0xF1..=0xF3 => (4, 0x80..=0xBF),
            0xF4 => (4, 0x80..=0x8F),
            _ => return false,
        };
        let Some(tail) = bytes.get(i + 1..i + len) else {
            return false;
        };
        if !second.contains(&tail[0]) || !tail[1..].iter().all(|b| (0x80..=0xBF).contains(b)) {
            return false;
        }
        i += len;
    }
    true
}

/// A shared string: a static for the common values (`"message"`, `""`),
/// held inline when short (most event ids: no allocation when the id
/// changes with every event), reference-counted otherwise, so events of
/// one type or id share it.
#[derive(Clone)]
pub(crate) enum Str {
    Static(&'static str),
    Inline(Inline),
    Shared(Arc<str>),
}

/// Up to [`INLINE`] bytes of a string, in place. No bigger than the other
/// variants of [`Str`], so `Str` stays 24 bytes.
#[derive(Clone, Copy)]
#[repr(align(8))]
pub(crate) struct Inline {
    bytes: [u8; INLINE],
    len: u8,
}

const INLINE: usize = 15;

impl Inline {
    /// `bytes`, at most [`INLINE`] of them and valid UTF-8 (`Deref` reads
    /// them back as a `str`).
    #[inline]
    fn new(bytes: &[u8]) -> Inline {
        let mut inline = Inline {
            len: bytes.len() as u8,
            bytes: [0; INLINE],
        };
        inline.bytes[..bytes.len()].copy_from_slice(bytes);
        inline
    }
}

const _: () = assert!(std::mem::size_of::<Str>() == 24);

impl Str {
    pub(crate) const MESSAGE: Str = Str::Static("message");
    pub(crate) const EMPTY: Str = Str::Static("");

    /// `bytes` held inline, when they are few enough and all ASCII: the
    /// common event id, made without `str::from_utf8`'s call.
    #[inline]
    pub(crate) fn short_ascii(bytes: &[u8]) -> Option<Str> {
        if bytes.len() > INLINE || !bytes.iter().all(u8::is_ascii) {
            return None;
        }
        Some(Str::Inline(Inline::new(bytes)))
    }

    /// The string's bytes, without the UTF-8 check that `Deref` makes on
    /// an inline string.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Str::Static(s) => s.as_bytes(),
            Str::Inline(inline) => &inline.bytes[..usize::from(inline.len)],
            Str::Shared(s) => s.as_bytes(),
        }
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        match s {
            "" => Str::EMPTY,
            "message" => Str::MESSAGE,
            s if s.len() <= INLINE => Str::Inline(Inline::new(s.as_bytes())),
            s => Str::Shared(Arc::from(s)),
        }
    }
}

impl std::ops::Deref for Str {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Str::Static(s) => s,
            // Always valid: copied from a `str` (see `From<&str>`); the
            // check costs a few instructions for up to 15 bytes, and keeps
            // this free of `unsafe`.
            Str::Inline(inline) => {
                std::str::from_utf8(&inline.bytes[..usize::from(inline.len)]).unwrap_or_default()
            }
            Str::Shared(s) => s,
        }
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl std::hash::Hash for Str {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event", &&*self.event)
            .field("data", &self.data())
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
///
/// Boxed, so that the common case, [`Event::Message`], is not moved around
/// at the size of a header map.
#[derive(Clone)]
pub struct Open(Box<OpenParts>);

/// Shows the URL with its credentials hidden.
impl fmt::Debug for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Open")
            .field("status", &self.0.status)
            .field("version", &self.0.version)
            .field("url", &crate::redact::Redacted(&self.0.url))
            .field("headers", &self.0.headers)
            .field("attempt", &self.0.attempt)
            .field("connection", &self.0.connection)
            .finish()
    }
}

#[derive(Clone)]
pub(crate) struct OpenParts {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) version: reqwest::Version,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) url: url::Url,
    pub(crate) attempt: u32,
    pub(crate) connection: u64,
}

impl From<OpenParts> for Open {
    fn from(parts: OpenParts) -> Self {
        Open(Box::new(parts))
    }
}

impl Open {
    /// The response status (always 200 today).
    pub fn status(&self) -> reqwest::StatusCode {
        self.0.status
    }

    /// The HTTP version of the response (HTTP/1.1, HTTP/2).
    pub fn version(&self) -> reqwest::Version {
        self.0.version
    }

    /// The response headers. A `Content-Encoding` the client decoded is no
    /// longer among them (the body you get is decoded).
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.0.headers
    }

    /// The URL that answered, after any redirects.
    pub fn url(&self) -> &url::Url {
        &self.0.url
    }

    /// Which attempt in a row this was: 0 for a first try, `n` for the `n`th
    /// reconnection attempt since the last connection that delivered an
    /// event.
    pub fn attempt(&self) -> u32 {
        self.0.attempt
    }

    /// How many connections this stream has opened, this one included
    /// (1 for the first).
    pub fn connection(&self) -> u64 {
        self.0.connection
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

#[cfg(test)]
mod tests {
    use super::{is_utf8, Str};

    #[test]
    fn agrees_with_std_on_every_short_sequence() {
        for a in 0..=255u8 {
            assert_eq!(is_utf8(&[a]), std::str::from_utf8(&[a]).is_ok(), "{a:x}");
            for b in 0..=255u8 {
                let two = [a, b];
                assert_eq!(is_utf8(&two), std::str::from_utf8(&two).is_ok(), "{two:x?}");
                if a >= 0xE0 {
                    for c in 0..=255u8 {
                        let three = [a, b, c];
                        let want = std::str::from_utf8(&three).is_ok();
                        assert_eq!(is_utf8(&three), want, "{three:x?}");
                        // Four-byte leads with a sample of final bytes.
                        if a >= 0xF0 {
                            for d in [0x00, 0x7F, 0x80, 0x8F, 0x90, 0xBF, 0xC0, 0xFF] {
                                let four = [a, b, c, d];
                                let want = std::str::from_utf8(&four).is_ok();
                                assert_eq!(is_utf8(&four), want, "{four:x?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn short_strings_are_held_inline_and_read_back() {
        for len in 0..=30 {
            for fill in ["a", "é", "😀"] {
                let s: String = fill.repeat(len).chars().take(len).collect();
                let str = Str::from(s.as_str());
                assert_eq!(&*str, s, "{s:?}");
                assert_eq!(str.as_bytes(), s.as_bytes());
                assert!(str == Str::from(s.as_str()));
                let inline = matches!(str, Str::Inline(_));
                assert_eq!(inline, (1..=15).contains(&s.len()) && s != "message");
                match Str::short_ascii(s.as_bytes()) {
                    Some(short) => {
                        assert!(s.is_ascii() && s.len() <= 15);
                        assert_eq!(&*short, s);
                        assert!(short == str);
                    }
                    None => assert!(!s.is_ascii() || s.len() > 15),
                }
            }
        }
    }

    #[test]
    fn fast_validation_agrees_with_std() {
        let pieces: [&[u8]; 9] = [
            b"a",
            b"{\"k\":1}",
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\xe2\x82",
            b"\xc3",
            &[b'x'; 31],
        ];
        // Every sequence of up to 5 pieces, shifted across block boundaries.
        let mut seqs: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &seqs {
                for p in pieces {
                    let mut v = s.clone();
                    v.extend_from_slice(p);
                    next.push(v);
                }
            }
            seqs.extend(next.into_iter().filter(|v| v.len() < 200));
            seqs.dedup();
        }
        for seq in seqs.iter().take(20_000) {
            for pad in [0usize, 1, 29, 30, 31, 62, 63] {
                let mut v = vec![b' '; pad];
                v.extend_from_slice(seq);
                assert_eq!(is_utf8(&v), std::str::from_utf8(&v).is_ok(), "{v:?}");
            }
        }
    }
}
