//! Property tests for the SSE parser.
//!
//! - `matches_reference_parser`: the codec agrees with a naive parser written
//!   straight from SPEC.md sections 1-3 (decode everything, split lines,
//!   interpret fields) on SSE-like byte strings.
//! - `chunking_does_not_matter`: every way of cutting the input gives what the
//!   one-chunk parse gives.
//! - `arbitrary_bytes_bounded_and_no_panic`: any bytes, any cuts, a small
//!   limit: no panic, and the caller's buffer stays bounded by the limit.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use ssekit::{DecodeError, Frame, FrameCodec, MessageEvent, SseCodec};
use tokio_util::codec::Decoder;

type Ev = (String, String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    last_event_id: String,
    retry: Option<Duration>,
}

fn ev(e: &MessageEvent) -> Ev {
    (e.event().to_owned(), e.data().to_owned(), e.id().to_owned())
}

/// Feeds the chunks one at a time, `decode` until `None` after each, then
/// `decode_eof` until `None`. Events from `decode_eof` are kept separately:
/// there should never be any (see `feed`).
fn feed_raw(codec: &mut SseCodec, chunks: &[&[u8]]) -> Result<(Outcome, Vec<Ev>), DecodeError> {
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(e) = codec.decode(&mut buf)? {
            events.push(ev(&e));
        }
    }
    let mut at_eof = Vec::new();
    while let Some(e) = codec.decode_eof(&mut buf)? {
        at_eof.push(ev(&e));
    }
    let outcome = Outcome {
        events,
        last_event_id: codec.last_event_id().to_owned(),
        retry: codec.retry(),
    };
    Ok((outcome, at_eof))
}

fn feed(chunks: &[&[u8]]) -> Outcome {
    let (outcome, at_eof) = feed_raw(&mut SseCodec::default(), chunks).expect("no decode error");
    assert!(at_eof.is_empty(), "decode_eof yielded {at_eof:?}");
    outcome
}

/// Every frame (events, comments, retry) of `FrameCodec`, chunk by chunk.
fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf).expect("no decode error") {
            out.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("no decode error") {
        out.push(f);
    }
    out
}

// ---------------------------------------------------------------------------
// The reference parser: whole input at once, no cleverness.

fn reference(input: &[u8]) -> Outcome {
    // Rule 2: one BOM, only at the very start of the body.
    let body = input
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(input);
    // Rule 1: lossy UTF-8 of the whole body. Line ends and colons are ASCII,
    // which never occurs inside a multi-byte sequence, so decoding the whole
    // body or each line or value separately gives the same text.
    let text = String::from_utf8_lossy(body);

    // Rule 3: lines end at CRLF, LF or CR. What follows the last line end is
    // an unfinished line, dropped at the end of the body (rule 15).
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                lines.push(std::mem::take(&mut current));
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => lines.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }

    let mut events = Vec::new();
    let mut data = String::new();
    let mut event_type = String::new();
    let mut pending_id: Option<String> = None;
    let mut last_event_id = String::new();
    let mut retry = None;
    for line in &lines {
        if line.is_empty() {
            // Rules 12-14.
            if let Some(id) = pending_id.take() {
                last_event_id = id;
            }
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let ty = if event_type.is_empty() {
                "message".to_owned()
            } else {
                std::mem::take(&mut event_type)
            };
            events.push((ty, std::mem::take(&mut data), last_event_id.clone()));
            continue;
        }
        if line.starts_with(':') {
            continue; // rule 7
        }
        // Rule 8.
        let (name, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_str(), ""),
        };
        // Rules 9-11.
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => pending_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Beyond u64 milliseconds the spec is silent; saturate.
                let ms = value.bytes().fold(0u64, |acc, d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                retry = Some(Duration::from_millis(ms));
            }
            _ => {} // other names, an `id` with NUL, an invalid `retry`
        }
    }
    // Rule 15: the unfinished event (data, type, id) is discarded.
    Outcome {
        events,
        last_event_id,
        retry,
    }
}

// ---------------------------------------------------------------------------
// Input generators

const FRAGMENTS: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"data",
    b"event:",
    b"event: ",
    b"id:",
    b"id: ",
    b"retry:",
    b"retry: ",
    b"Data:",
    b"data :",
    b"0",
    b"1",
    b"7",
    b"03",
    b"3000",
    b":",
    b": ",
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b"\xEF\xBB\xBF",
    b"\xEF",
    b"\xBB\xBF",
    b"\xEF\xBB",
    b"\0",
    b"\xFF",
    b"\xE2\x82",
    b"\xAC",
    b"\x80",
    b"\xC3\xA9",
    b"\xE2\x82\xAC",
    b"\xF0\x9F\x98\x80",
    b"\xF0\x9F",
    b"\xC2\x85",
    b"\xE2\x80\xA8",
    b"a",
    b"x",
    b"hello",
    b"-",
    b"+",
    b".",
];

const FIELD_STARTS: &[&[u8]] = &[
    b"data: ",
    b"data:",
    b"data",
    b"event: ",
    b"event:",
    b"id: ",
    b"id:",
    b"id",
    b"retry: ",
    b"retry:",
    b":",
    b": ",
    b"",
    b"Data: ",
    b"data\0: ",
    b"\xEF\xBB\xBFdata: ",
    b"foo: ",
];

const VALUES: &[&[u8]] = &[
    b"a",
    b"x",
    b"hello world",
    b" ",
    b"\t",
    b":",
    b"0",
    b"42",
    b"03000",
    b"1000x",
    b"-1",
    b"+5",
    b"1.5",
    b"99999999999999999999999",
    b"\0",
    b"\xFF",
    b"\xE2\x82",
    b"\xAC",
    b"\xC3\xA9",
    b"\xE2\x82\xAC",
    b"\xF0\x9F\x98\x80",
    b"\xEF\xBB\xBF",
    b"\xE2\x80\xA9",
    b"\r",
];

const LINE_ENDS: &[&[u8]] = &[
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b"\r\n\r\n",
    b"\n\r",
    b"",
];

/// A soup of SSE-ish fragments.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80).prop_map(|f| f.concat())
}

/// Line-shaped input: field start, a few value pieces, a line end.
fn lines() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop::sample::select(FIELD_STARTS),
        prop::collection::vec(prop::sample::select(VALUES), 0..4),
        prop::sample::select(LINE_ENDS),
    )
        .prop_map(|(start, value, end)| [start, &value.concat(), end].concat());
    prop::collection::vec(line, 0..24).prop_map(|l| l.concat())
}

/// SSE-ish input, sometimes starting with a BOM.
fn sse_input() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), prop_oneof![soup(), lines()]).prop_map(|(bom, body)| {
        if bom {
            [&b"\xEF\xBB\xBF"[..], &body].concat()
        } else {
            body
        }
    })
}

/// Cuts `input` into chunks of the given sizes (0 gives an empty chunk); the
/// rest, if any, is the last chunk.
fn cut<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = input;
    for &size in sizes {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    chunks
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_reference_parser(input in sse_input()) {
        let got = feed(&[&input]);
        let want = reference(&input);
        prop_assert_eq!(got, want, "input: {:?}", String::from_utf8_lossy(&input));
    }

    #[test]
    fn chunking_does_not_matter(
        input in sse_input(),
        sizes in prop::collection::vec(0usize..12, 0..48),
    ) {
        let whole = feed(&[&input]);
        let whole_frames = frames(&[&input]);

        let chunks = cut(&input, &sizes);
        prop_assert_eq!(&feed(&chunks), &whole, "chunks: {:?}", chunks);
        prop_assert_eq!(&frames(&chunks), &whole_frames, "chunks: {:?}", chunks);

        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&feed(&bytes), &whole);
        prop_assert_eq!(&frames(&bytes), &whole_frames);

        // Empty chunks between every byte.
        let with_empty: Vec<&[u8]> = input.chunks(1).flat_map(|b| [b, &[][..]]).collect();
        prop_assert_eq!(&feed(&with_empty), &whole);
    }
}

/// Bytes that are mostly random but contain line ends often enough to make
/// lines, fields and events.
fn noisy_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => any::<u8>(),
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(b':'),
        1 => prop::sample::select(&b"datevnirya "[..]),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4096),
        prop::collection::vec(byte, 0..4096),
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..600).prop_map(|f| f.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_bounded_and_no_panic(
        input in noisy_bytes(),
        sizes in prop::collection::vec(1usize..700, 1..64),
        limit in 64usize..512,
    ) {
        let mut codec = SseCodec::default().with_max_event_size(limit);
        let mut buf = BytesMut::new();
        let mut rest = &input[..];
        let mut i = 0;
        'feed: while !rest.is_empty() {
            let size = sizes[i % sizes.len()].min(rest.len());
            i += 1;
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            buf.extend_from_slice(chunk);
            prop_assert!(buf.len() <= limit + chunk.len(),
                "buffer holds {} bytes, limit {}, chunk {}", buf.len(), limit, chunk.len());
            loop {
                match codec.decode_frame(&mut buf) {
                    Ok(Some(Frame::Message(e))) => {
                        prop_assert!(e.data().len() <= 3 * limit);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert!(e.is_too_large());
                        break 'feed;
                    }
                }
            }
            prop_assert!(buf.len() <= limit, "{} bytes left over, limit {}", buf.len(), limit);
        }
        // Ending the body never panics either (whatever state the codec is in).
        while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
    }
}
