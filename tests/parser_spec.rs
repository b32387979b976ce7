//! Table tests for the parser rules of SPEC.md (sections 1-3, rules 1-16),
//! plus the event-size limit.
//!
//! Every case is written out literally: the chunks as they arrive, the events
//! expected as (type, data, id), the last event ID and the retry delay after
//! the body ended. Each table case is run three ways: cut as given, in one
//! chunk, and one byte at a time, and the result must be the same each time.
//! Events must come out of `decode` (never out of `decode_eof`: an event that
//! only appears at the end of the body was held back, rule 4, or was
//! unfinished and must be dropped, rule 15).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use ssekit::{DecodeError, Frame, FrameCodec, MessageEvent, SseCodec};
use tokio_util::codec::Decoder;

type Ev = (String, String, String);

/// What one response body produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Events returned by `decode`.
    events: Vec<Ev>,
    /// Events returned by `decode_eof` (always expected empty).
    at_eof: Vec<Ev>,
    last_event_id: String,
    retry: Option<Duration>,
}

fn ev(e: &MessageEvent) -> Ev {
    (e.event().to_owned(), e.data().to_owned(), e.id().to_owned())
}

/// Feeds `chunks` one at a time into a buffer, calling `decode` until it
/// returns `None` after each, then `decode_eof` until `None`.
fn feed(codec: &mut SseCodec, chunks: &[&[u8]]) -> Result<Outcome, DecodeError> {
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
    Ok(Outcome {
        events,
        at_eof,
        last_event_id: codec.last_event_id().to_owned(),
        retry: codec.retry(),
    })
}

struct Case {
    what: &'static str,
    chunks: &'static [&'static [u8]],
    /// (type, data, id)
    events: &'static [(&'static str, &'static str, &'static str)],
    last_event_id: &'static str,
    retry_ms: Option<u64>,
}

fn expected(case: &Case) -> Outcome {
    Outcome {
        events: case
            .events
            .iter()
            .map(|&(t, d, i)| (t.to_owned(), d.to_owned(), i.to_owned()))
            .collect(),
        at_eof: Vec::new(),
        last_event_id: case.last_event_id.to_owned(),
        retry: case.retry_ms.map(Duration::from_millis),
    }
}

/// Runs every case as given, in one chunk and byte by byte, each on a fresh
/// codec, and reports all mismatches at once.
fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let want = expected(case);
        let whole = case.chunks.concat();
        let cuts: [(&str, Vec<&[u8]>); 3] = [
            ("as given", case.chunks.to_vec()),
            ("in one chunk", vec![&whole[..]]),
            ("byte by byte", whole.chunks(1).collect()),
        ];
        for (how, chunks) in cuts {
            match feed(&mut SseCodec::default(), &chunks) {
                Ok(got) if got == want => {}
                Ok(got) => failures.push(format!(
                    "{} ({how}):\n    expected {want:?}\n    got      {got:?}",
                    case.what
                )),
                Err(e) => failures.push(format!("{} ({how}): error {e:?}", case.what)),
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// 1. Decoding the byte stream

#[test]
fn rule_01_utf8_always_lossy_never_stalls() {
    check(&[
        Case {
            what: "valid UTF-8",
            chunks: &[b"data: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n\n"],
            events: &[("message", "café € 😀", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "2-byte code point split across chunks",
            chunks: &[b"data: caf\xC3", b"\xA9\n\n"],
            events: &[("message", "café", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "3-byte code point split 1|1|1",
            chunks: &[b"data: \xE2", b"\x82", b"\xAC\n\n"],
            events: &[("message", "€", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "4-byte code point split 1|1|1|1, with empty chunks",
            chunks: &[b"data: \xF0", b"", b"\x9F", b"\x98", b"", b"\x80!\n\n"],
            events: &[("message", "😀!", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "code point split inside event type and id",
            chunks: &[b"event: \xC3", b"\xA9\nid: \xE2\x82", b"\xAC\ndata: x\n\n"],
            events: &[("é", "x", "€")],
            last_event_id: "€",
            retry_ms: None,
        },
        Case {
            what: "invalid byte becomes U+FFFD",
            chunks: &[b"data: a\xFFb\n\n"],
            events: &[("message", "a\u{FFFD}b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "lone continuation byte and overlong encoding",
            chunks: &[b"data: \x80|\xC0\xAF\n\n"],
            events: &[("message", "\u{FFFD}|\u{FFFD}\u{FFFD}", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "encoded surrogate: one U+FFFD per byte",
            chunks: &[b"data: \xED\xA0\x80\n\n"],
            events: &[("message", "\u{FFFD}\u{FFFD}\u{FFFD}", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "truncated sequence at end of line: one U+FFFD, line end still seen",
            chunks: &[b"data: \xE2\x82\n\n"],
            events: &[("message", "\u{FFFD}", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "never stalls: events after invalid bytes still arrive",
            chunks: &[
                b"data: \xFF\n\ndata: \xF0\x9F\n\n",
                b"data: \xE2",
                b"\n\ndata: after\n\n",
            ],
            events: &[
                ("message", "\u{FFFD}", ""),
                ("message", "\u{FFFD}", ""),
                ("message", "\u{FFFD}", ""),
                ("message", "after", ""),
            ],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "invalid bytes in event type and id",
            chunks: &[b"event: \xFF\nid: \xC3\ndata: x\n\n"],
            events: &[("\u{FFFD}", "x", "\u{FFFD}")],
            last_event_id: "\u{FFFD}",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_02_one_leading_bom_dropped() {
    check(&[
        Case {
            what: "leading BOM dropped",
            chunks: &[b"\xEF\xBB\xBFdata: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "leading BOM split EF | BB BF",
            chunks: &[b"\xEF", b"\xBB\xBF", b"data: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "leading BOM split EF BB | BF data",
            chunks: &[b"\xEF\xBB", b"\xBFdata: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "leading BOM split with empty chunks",
            chunks: &[b"", b"\xEF", b"", b"\xBB", b"\xBF", b"", b"data: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "BOM then a blank line",
            chunks: &[b"\xEF\xBB\xBF", b"\n", b"data: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "second BOM is text: it joins the field name, that line is ignored",
            chunks: &[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"],
            events: &[("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "second BOM split across chunks is still text",
            chunks: &[b"\xEF\xBB", b"\xBF\xEF", b"\xBB\xBFdata: a\n\ndata: b\n\n"],
            events: &[("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "BOM at the start of a later line is text",
            chunks: &[b"data: a\n\xEF\xBB\xBFdata: b\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "BOM in the middle of a value is kept",
            chunks: &[b"data: a\xEF\xBB\xBFb\n\n"],
            events: &[("message", "a\u{FEFF}b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "BOM at the start of a value is kept",
            chunks: &[b"data:\xEF\xBB\xBFx\n\n"],
            events: &[("message", "\u{FEFF}x", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "incomplete BOM at the start is not a BOM",
            chunks: &[b"\xEF\xBB", b"data: a\n\ndata: b\n\n"],
            events: &[("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_02_bom_dropped_once_per_body_again_after_reconnection() {
    let mut codec = SseCodec::default();
    let first = feed(&mut codec, &[b"\xEF\xBB", b"\xBFdata: a\n\n"]).unwrap();
    assert_eq!(first.events, [ev(&MessageEvent::new("", "a", ""))]);
    // decode_eof ended the body; the next body may start with its own BOM.
    let second = feed(&mut codec, &[b"\xEF", b"\xBB\xBFdata: b\n\n"]).unwrap();
    assert_eq!(second.events, [ev(&MessageEvent::new("", "b", ""))]);
    // And after reset_body too.
    let mut buf = BytesMut::from(&b"data: c"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    codec.reset_body();
    buf.clear();
    buf.extend_from_slice(b"\xEF\xBB\xBFdata: d\n\n");
    let e = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(ev(&e), ev(&MessageEvent::new("", "d", "")));
}

#[test]
fn rule_03_split_crlf_is_one_line_ending() {
    check(&[
        Case {
            what: "CRLF, LF and CR each end a line",
            chunks: &[b"data: a\r\ndata: b\ndata: c\rdata: d\r\n\r\n"],
            events: &[("message", "a\nb\nc\nd", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "blank line as CRLF, LF, CR",
            chunks: &[b"data: a\r\n\r\ndata: b\n\ndata: c\r\r"],
            events: &[
                ("message", "a", ""),
                ("message", "b", ""),
                ("message", "c", ""),
            ],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "CR | LF across chunks is one line ending, not a blank line",
            chunks: &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
            events: &[("message", "a\nb", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "CR | empty chunk | LF is one line ending",
            chunks: &[b"data: a\r", b"", b"", b"\ndata: b\n\n"],
            events: &[("message", "a\nb", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "LF CR is two line endings",
            chunks: &[b"data: a\n\rdata: b\n\n"],
            events: &[("message", "a", ""), ("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "CR CR LF is a line end then a blank line",
            chunks: &[b"data: a\r", b"\r\n", b"data: b\n\n"],
            events: &[("message", "a", ""), ("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "U+2028, U+2029, U+0085 are not line endings",
            chunks: &[b"data: a\xE2\x80\xA8b\xE2\x80\xA9c\xC2\x85d\n\n"],
            events: &[("message", "a\u{2028}b\u{2029}c\u{85}d", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "U+2028, U+2029, U+0085 do not start a new field",
            chunks: &[b"data: a\xE2\x80\xA8data: b\xE2\x80\xA9data: c\xC2\x85data: d\n\n"],
            events: &[(
                "message",
                "a\u{2028}data: b\u{2029}data: c\u{85}data: d",
                "",
            )],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "vertical tab, form feed and NUL are not line endings",
            chunks: &[b"data: a\x0Bb\x0Cc\0d\n\n"],
            events: &[("message", "a\x0Bb\x0Cc\0d", "")],
            last_event_id: "",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_04_event_dispatched_on_cr_cr_without_more_input() {
    check(&[
        Case {
            what: "stream ends with \\r\\r",
            chunks: &[b"data: a\r\r"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "\\r\\r, then an LF that completes the CRLF, then more",
            chunks: &[b"id: 1\rdata: a\r\r", b"\ndata: b\r\r"],
            events: &[("message", "a", "1"), ("message", "b", "1")],
            last_event_id: "1",
            retry_ms: None,
        },
    ]);

    // The event must come out of `decode` with no byte after the final CR:
    // a server that then goes quiet must not delay it.
    let cuts: [&[&[u8]]; 4] = [
        &[b"data: a\r\r"],
        &[b"data: a\r", b"\r"],
        &[b"data: a\n", b"\r"],
        &[b"data: a\r\n", b"\r"],
    ];
    for chunks in cuts {
        let mut codec = SseCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(e) = codec.decode(&mut buf).unwrap() {
                got.push(ev(&e));
            }
        }
        assert_eq!(got, [ev(&MessageEvent::new("", "a", ""))], "{chunks:?}");
    }
}

#[test]
fn rule_05_cost_is_linear_however_the_input_is_cut() {
    // One 16 MiB line, in one piece and in 1460-byte pieces. Re-searching the
    // partial line on every piece would scan ~11_500 * 8 MiB = ~90 GiB: many
    // seconds even at memory speed; the linear parser needs milliseconds.
    const LEN: usize = 16 << 20;
    let mut body = Vec::with_capacity(LEN + 2);
    body.extend_from_slice(b"data: ");
    body.resize(LEN, b'x');
    body.extend_from_slice(b"\n\n");

    // Feeds `body` in `piece`-byte chunks; gives up (None) once `budget` is
    // spent, so a quadratic parser fails here instead of running for minutes.
    let run = |piece: usize, budget: Duration| -> Option<Duration> {
        let mut codec = SseCodec::default().with_max_event_size(2 * LEN);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        let start = Instant::now();
        for chunk in body.chunks(piece) {
            buf.extend_from_slice(chunk);
            while let Some(e) = codec.decode(&mut buf).unwrap() {
                events.push(e);
            }
            if start.elapsed() > budget {
                return None;
            }
        }
        let elapsed = start.elapsed();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data().len(), LEN - 6);
        assert!(events[0].data().bytes().all(|b| b == b'x'));
        Some(elapsed)
    };
    let whole = run(body.len(), Duration::MAX).unwrap();
    let budget = whole * 10 + Duration::from_secs(3);
    let pieces = run(1460, budget);
    assert!(
        pieces.is_some(),
        "one piece: {whole:?}; 1460-byte pieces: still not done after {budget:?}"
    );
}

// ---------------------------------------------------------------------------
// 2. Interpreting lines

#[test]
fn rule_06_blank_line_dispatches() {
    check(&[
        Case {
            what: "each blank line ends an event",
            chunks: &[b"data: a\n\ndata: b\n\n"],
            events: &[("message", "a", ""), ("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "lines of one block make one event",
            chunks: &[b"data: a\ndata: b\n\n"],
            events: &[("message", "a\nb", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "extra blank lines emit nothing",
            chunks: &[b"\n\n\r\ndata: a\n\n\n\r\r\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "no blank line, no event",
            chunks: &[b"data: a\ndata: b\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_07_colon_line_is_a_comment() {
    check(&[
        Case {
            what: "comments are skipped, even inside an event",
            chunks: &[b": hello\ndata: a\n:data: b\n:\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "comment-only blocks emit nothing",
            chunks: &[b":id: 5\n\n: retry: 10\n\n:event: x\n\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
    ]);

    // FrameCodec reports comments, colon removed, rest as sent.
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&b": keep-alive\n:\n::x \r\ndata: a\n\n"[..]);
    let mut frames = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        frames.push(f);
    }
    assert_eq!(
        frames,
        [
            Frame::Comment(" keep-alive".to_owned()),
            Frame::Comment(String::new()),
            Frame::Comment(":x ".to_owned()),
            Frame::Message(MessageEvent::new("message", "a", "")),
        ]
    );
}

#[test]
fn rule_08_name_before_first_colon_one_space_stripped() {
    check(&[
        Case {
            what: "no space after colon",
            chunks: &[b"data:a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "exactly one leading space removed",
            chunks: &[b"data: a\ndata:  b\ndata:   c\n\n"],
            events: &[("message", "a\n b\n  c", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "tab after colon kept",
            chunks: &[b"data:\ta\ndata: \tb\n\n"],
            events: &[("message", "\ta\n\tb", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "trailing spaces kept",
            chunks: &[b"data: a  \n\n"],
            events: &[("message", "a  ", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "split at the first colon only",
            chunks: &[b"data: a: b:c\nevent: x:y\nid: 1:2\n\n"],
            events: &[("x:y", "a: b:c", "1:2")],
            last_event_id: "1:2",
            retry_ms: None,
        },
        Case {
            what: "`data` without colon: empty-string data event",
            chunks: &[b"data\n\n"],
            events: &[("message", "", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`data` twice without colon: one LF",
            chunks: &[b"data\ndata\n\n"],
            events: &[("message", "\n", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`event` without colon: empty type, so message",
            chunks: &[b"event: x\nevent\ndata: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`id` without colon: empty id",
            chunks: &[b"id: 1\n\nid\ndata: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`retry` without colon: empty value, ignored",
            chunks: &[b"retry: 5\nretry\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(5),
        },
    ]);
}

#[test]
fn rule_09_field_names_exact_and_case_sensitive() {
    check(&[
        Case {
            what: "`Data`, `DATA`, `data `, `data\\0`, ` data`, `dat`, `datas` are ignored",
            chunks: &[
                b"Data: 1\nDATA: 2\ndata : 3\ndata\0: 4\n data: 5\ndat: 6\ndatas: 7\ndata\t: 8\n\n",
            ],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`Event`, `event ` are ignored",
            chunks: &[b"Event: x\nevent : y\nEVENT: z\ndata: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`ID`, `Id`, `id ` are ignored",
            chunks: &[b"ID: 1\nId: 2\nid : 3\ndata: a\n\n"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "`Retry`, `retry ` are ignored",
            chunks: &[b"Retry: 1\nretry : 2\nRETRY: 3\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "unknown fields ignored inside an event",
            chunks: &[b"data: a\nfoo: bar\ndata: b\n\n"],
            events: &[("message", "a\nb", "")],
            last_event_id: "",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_10_event_data_id_fields() {
    check(&[
        Case {
            what: "event sets the type; the last one wins",
            chunks: &[b"event: a\nevent: b\ndata: 1\n\n"],
            events: &[("b", "1", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "data appends value and LF, empty values included",
            chunks: &[b"data: a\ndata:\ndata: b\n\n"],
            events: &[("message", "a\n\nb", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "id sets the id",
            chunks: &[b"id: 42\ndata: x\n\n"],
            events: &[("message", "x", "42")],
            last_event_id: "42",
            retry_ms: None,
        },
        Case {
            what: "last id in a block wins",
            chunks: &[b"id: 1\nid: 2\ndata: x\n\n"],
            events: &[("message", "x", "2")],
            last_event_id: "2",
            retry_ms: None,
        },
        Case {
            what: "id containing NUL ignored (previous id stays)",
            chunks: &[b"id: 1\n\nid: a\0b\ndata: x\n\n"],
            events: &[("message", "x", "1")],
            last_event_id: "1",
            retry_ms: None,
        },
        Case {
            what: "id containing NUL in the same block does not undo a valid id",
            chunks: &[b"id: 1\nid: 2\0\ndata: x\n\n"],
            events: &[("message", "x", "1")],
            last_event_id: "1",
            retry_ms: None,
        },
        Case {
            what: "id that is only NUL ignored",
            chunks: &[b"id: 9\n\nid: \0\n\n"],
            events: &[],
            last_event_id: "9",
            retry_ms: None,
        },
        Case {
            what: "empty id clears the last event ID",
            chunks: &[b"id: 1\ndata: a\n\nid:\ndata: b\n\n"],
            events: &[("message", "a", "1"), ("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "id keeps inner spaces and colons",
            chunks: &[b"id:  a b: c \n\n"],
            events: &[],
            last_event_id: " a b: c ",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_11_retry_ascii_digits_only() {
    check(&[
        Case {
            what: "retry: 3000",
            chunks: &[b"retry: 3000\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(3000),
        },
        Case {
            what: "retry: 03000 is 3000 ms",
            chunks: &[b"retry: 03000\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(3000),
        },
        Case {
            what: "retry:1500 (no space)",
            chunks: &[b"retry:1500\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(1500),
        },
        Case {
            what: "retry: 0",
            chunks: &[b"retry: 0\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(0),
        },
        Case {
            what: "retry: 1000x ignored",
            chunks: &[b"retry: 1000x\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "retry:  1000 (space left after the stripped one) ignored",
            chunks: &[b"retry:  1000\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "retry: -1 ignored",
            chunks: &[b"retry: -1\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "retry: +5 ignored",
            chunks: &[b"retry: +5\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "retry: 1.5 ignored",
            chunks: &[b"retry: 1.5\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "retry: (empty) ignored",
            chunks: &[b"retry:\nretry: \n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "retry with trailing space or tab ignored",
            chunks: &[b"retry: 10 \nretry:\t10\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "non-ASCII digits ignored (Arabic-Indic, fullwidth)",
            chunks: &[b"retry: \xD9\xA1\xD9\xA2\nretry: \xEF\xBC\x91\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "an ignored retry keeps the earlier valid one",
            chunks: &[b"retry: 1000\nretry: 2000x\n\nretry: -3\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(1000),
        },
        Case {
            what: "the latest valid retry wins",
            chunks: &[b"retry: 1000\n\nretry: 2500\n\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(2500),
        },
        Case {
            what: "retry inside an event does not disturb it",
            chunks: &[b"data: a\nretry: 10\ndata: b\n\n"],
            events: &[("message", "a\nb", "")],
            last_event_id: "",
            retry_ms: Some(10),
        },
        Case {
            what: "retry in force at once, even in an unfinished block",
            chunks: &[b"data: a\nretry: 10\n"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(10),
        },
        Case {
            what: "retry on an unfinished line is not read",
            chunks: &[b"retry: 10\nretry: 20"],
            events: &[],
            last_event_id: "",
            retry_ms: Some(10),
        },
    ]);

    // FrameCodec reports valid retry fields only.
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(&b"retry: 1x\nretry: 03000\nretry: -1\n"[..]);
    let mut frames = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap() {
        frames.push(f);
    }
    assert_eq!(frames, [Frame::Retry(Duration::from_millis(3000))]);
}

// ---------------------------------------------------------------------------
// 3. Dispatch

#[test]
fn rule_12_blank_line_commits_last_event_id() {
    check(&[
        Case {
            what: "id-only block commits the id",
            chunks: &[b"id: 7\n\n"],
            events: &[],
            last_event_id: "7",
            retry_ms: None,
        },
        Case {
            what: "id with event but no data commits the id",
            chunks: &[b"id: 7\nevent: x\n\n"],
            events: &[],
            last_event_id: "7",
            retry_ms: None,
        },
        Case {
            what: "committed id carried by the next event",
            chunks: &[b"id: 7\n\ndata: a\n\n"],
            events: &[("message", "a", "7")],
            last_event_id: "7",
            retry_ms: None,
        },
        Case {
            what: "successive id-only blocks",
            chunks: &[b"id: 7\n\nid: 8\r\n\r\n"],
            events: &[],
            last_event_id: "8",
            retry_ms: None,
        },
        Case {
            what: "id after data in the same block applies to that event",
            chunks: &[b"data: a\nid: 9\n\n"],
            events: &[("message", "a", "9")],
            last_event_id: "9",
            retry_ms: None,
        },
    ]);

    // Not before the blank line.
    let mut codec = SseCodec::default();
    let mut buf = BytesMut::from(&b"id: 7\n"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(codec.last_event_id(), "");
    buf.extend_from_slice(b"\n");
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(codec.last_event_id(), "7");
}

#[test]
fn rule_13_empty_data_clears_event_type() {
    check(&[
        Case {
            what: "event: x then a blank line does not carry over",
            chunks: &[b"event: x\n\ndata: y\n\n"],
            events: &[("message", "y", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "event: x with id and comment, no data",
            chunks: &[b"event: x\nid: 1\n: c\n\ndata: y\n\n"],
            events: &[("message", "y", "1")],
            last_event_id: "1",
            retry_ms: None,
        },
        Case {
            what: "event type reset after every blank line",
            chunks: &[b"event: x\n\r\nevent: z\r\rdata: y\n\n"],
            events: &[("message", "y", "")],
            last_event_id: "",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_14_dispatch_event_sticky_id() {
    check(&[
        Case {
            what: "one trailing LF removed, only one",
            chunks: &[b"data: a\ndata:\n\n"],
            events: &[("message", "a\n", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "empty data line: empty-string event",
            chunks: &[b"data:\n\n"],
            events: &[("message", "", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "type from event, then back to message",
            chunks: &[b"event: add\ndata: 1\n\ndata: 2\n\nevent: add\ndata: 3\n\n"],
            events: &[("add", "1", ""), ("message", "2", ""), ("add", "3", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "data buffer cleared between events",
            chunks: &[b"data: a\n\ndata: b\n\n"],
            events: &[("message", "a", ""), ("message", "b", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "sticky id carried to later events",
            chunks: &[b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\ndata: d\n\n"],
            events: &[
                ("message", "a", "1"),
                ("message", "b", "1"),
                ("message", "c", "2"),
                ("message", "d", "2"),
            ],
            last_event_id: "2",
            retry_ms: None,
        },
    ]);
}

#[test]
fn rule_15_unfinished_event_dropped_at_eof() {
    check(&[
        Case {
            what: "data line without blank line",
            chunks: &[b"data: a\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "data line ending in CRLF without blank line",
            chunks: &[b"data: a\r\n"],
            events: &[],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "unfinished line",
            chunks: &[b"data: a\n\ndata: b"],
            events: &[("message", "a", "")],
            last_event_id: "",
            retry_ms: None,
        },
        Case {
            what: "unfinished event's id and event are dropped too",
            chunks: &[b"id: 1\ndata: a\n\nid: 2\nevent: x\ndata: b\n"],
            events: &[("message", "a", "1")],
            last_event_id: "1",
            retry_ms: None,
        },
    ]);

    // The dropped id and event do not reach the next body either.
    let mut codec = SseCodec::default();
    let first = feed(
        &mut codec,
        &[b"id: 1\ndata: a\n\nid: 2\nevent: x\ndata: b\n"],
    )
    .unwrap();
    assert_eq!(first.events, [ev(&MessageEvent::new("", "a", "1"))]);
    assert!(first.at_eof.is_empty());
    let second = feed(&mut codec, &[b"data: c\n\n"]).unwrap();
    assert_eq!(second.events, [ev(&MessageEvent::new("", "c", "1"))]);
    assert_eq!(second.last_event_id, "1");
    // Nor a half line.
    let mut codec = SseCodec::default();
    feed(&mut codec, &[b"data: a\n\nda"]).unwrap();
    let second = feed(&mut codec, &[b"ta: b\n\n"]).unwrap();
    assert!(second.events.is_empty(), "{second:?}");
}

#[test]
fn rule_16_last_event_id_survives_reconnection() {
    let mut codec = SseCodec::default();
    let first = feed(&mut codec, &[b"retry: 1500\nid: 5\ndata: a\n\n"]).unwrap();
    assert_eq!(first.events, [ev(&MessageEvent::new("", "a", "5"))]);
    let second = feed(&mut codec, &[b"data: b\n\n"]).unwrap();
    assert_eq!(
        second,
        Outcome {
            events: vec![("message".into(), "b".into(), "5".into())],
            at_eof: vec![],
            last_event_id: "5".into(),
            retry: Some(Duration::from_millis(1500)),
        }
    );

    // A saved id from an earlier run.
    let mut codec = SseCodec::default();
    codec.set_last_event_id("saved");
    let out = feed(&mut codec, &[b"data: a\n\nid: 6\ndata: b\n\n"]).unwrap();
    assert_eq!(
        out.events,
        [
            ev(&MessageEvent::new("", "a", "saved")),
            ev(&MessageEvent::new("", "b", "6")),
        ]
    );
}

#[test]
fn reset_body_keeps_last_event_id_and_retry_drops_unfinished_event() {
    let mut codec = SseCodec::default();
    let mut buf =
        BytesMut::from(&b"id: 3\nretry: 700\ndata: a\n\nid: 4\nevent: x\ndata: b\nda"[..]);
    let e = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(ev(&e), ev(&MessageEvent::new("", "a", "3")));
    assert!(codec.decode(&mut buf).unwrap().is_none());

    codec.reset_body();
    buf.clear();
    assert_eq!(codec.last_event_id(), "3");
    assert_eq!(codec.retry(), Some(Duration::from_millis(700)));

    buf.extend_from_slice(b"\ndata: c\n\n");
    let e = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(ev(&e), ev(&MessageEvent::new("", "c", "3")));
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert_eq!(codec.last_event_id(), "3");
}

// ---------------------------------------------------------------------------
// Event size limit

fn too_large(result: Result<Outcome, DecodeError>, limit: usize) {
    match result {
        Err(e) => {
            assert!(e.is_too_large(), "{e:?}");
            assert_eq!(e.limit(), Some(limit));
        }
        Ok(out) => panic!("expected a too-large error, got {out:?}"),
    }
}

#[test]
fn max_event_size_single_line_too_long() {
    // 22-byte line, limit 16.
    too_large(
        feed(
            &mut SseCodec::default().with_max_event_size(16),
            &[b"data: 0123456789abcdef\n\n"],
        ),
        16,
    );
    // Also when the line has not ended yet, and when it is a comment.
    too_large(
        feed(
            &mut SseCodec::default().with_max_event_size(16),
            &[b"data: 0123456789", b"abcdef"],
        ),
        16,
    );
    too_large(
        feed(
            &mut SseCodec::default().with_max_event_size(16),
            &[b": 0123456789abcdef\n"],
        ),
        16,
    );
}

#[test]
fn max_event_size_sum_of_legal_lines_over_the_limit() {
    // Seven 16-byte lines (112 bytes), limit 100: each line is fine alone.
    let line: &[u8] = b"data: 0123456789\n";
    too_large(
        feed(
            &mut SseCodec::default().with_max_event_size(100),
            &[line; 7],
        ),
        100,
    );
    // 96 bytes of data lines + 5 bytes of id line = 101.
    let mut chunks = vec![line; 6];
    chunks.push(b"id: 1\n\n");
    too_large(
        feed(&mut SseCodec::default().with_max_event_size(100), &chunks),
        100,
    );
    // 96 + "event: e" (8) = 104.
    let mut chunks = vec![line; 6];
    chunks.push(b"event: e\n\n");
    too_large(
        feed(&mut SseCodec::default().with_max_event_size(100), &chunks),
        100,
    );
}

#[test]
fn max_event_size_event_at_the_limit_passes() {
    // One 100-byte line, limit 100.
    let mut body = b"data: ".to_vec();
    body.resize(100, b'y');
    body.extend_from_slice(b"\n\n");
    let out = feed(&mut SseCodec::default().with_max_event_size(100), &[&body]).unwrap();
    assert_eq!(
        out.events,
        [("message".into(), "y".repeat(94), String::new())]
    );
    // 101 bytes fails.
    body.insert(6, b'y');
    too_large(
        feed(&mut SseCodec::default().with_max_event_size(100), &[&body]),
        100,
    );

    // Six 16-byte lines and a 4-byte one: 100 bytes in one event.
    let line: &[u8] = b"data: 0123456789\n";
    let mut chunks = vec![line; 6];
    chunks.push(b"data\n\n");
    let out = feed(&mut SseCodec::default().with_max_event_size(100), &chunks).unwrap();
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].1, "0123456789\n".repeat(6));

    // The count restarts at every event: 20 events of 96 bytes each.
    let block: &[u8] = b"data: 0123456789\ndata: 0123456789\ndata: 0123456789\ndata: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n";
    let out = feed(
        &mut SseCodec::default().with_max_event_size(100),
        &[block; 20],
    )
    .unwrap();
    assert_eq!(out.events.len(), 20);
}

#[test]
fn max_event_size_does_not_count_comments() {
    // The documented size is that of the field lines, comments not counted: a
    // keep-alive comment inside an event of exactly the limit is no error.
    let out = feed(
        &mut SseCodec::default().with_max_event_size(20),
        &[b"data: 0123456789abcd\n", b": keep-alive\n", b"\n"],
    )
    .unwrap();
    assert_eq!(
        out.events,
        [("message".into(), "0123456789abcd".into(), String::new())]
    );
    // Also while the comment line is still arriving.
    let out = feed(
        &mut SseCodec::default().with_max_event_size(20),
        &[b"data: 0123456789abcd\n: keep", b"-alive", b"\n\n"],
    )
    .unwrap();
    assert_eq!(
        out.events,
        [("message".into(), "0123456789abcd".into(), String::new())]
    );
    // A comment longer than the limit is still an error (a single line).
    too_large(
        feed(
            &mut SseCodec::default().with_max_event_size(20),
            &[b": 0123456789abcdefghij\n"],
        ),
        20,
    );
}

#[test]
fn max_event_size_bounds_memory_of_an_endless_line() {
    const LIMIT: usize = 1 << 20;
    const PIECE: usize = 8 << 10;
    const TOTAL: usize = 10 << 20;
    let mut codec = SseCodec::default().with_max_event_size(LIMIT);
    let mut buf = BytesMut::new();
    let mut piece = vec![b'z'; PIECE];
    piece[..6].copy_from_slice(b"data: ");
    let mut fed = 0;
    let mut largest = 0;
    let error = loop {
        assert!(fed < TOTAL, "10 MiB line accepted with a 1 MiB limit");
        buf.extend_from_slice(&piece);
        piece[..6].copy_from_slice(b"zzzzzz");
        fed += PIECE;
        largest = largest.max(buf.len());
        match codec.decode(&mut buf) {
            Ok(None) => {}
            Ok(Some(e)) => panic!("unexpected event {e:?}"),
            Err(e) => break e,
        }
    };
    assert!(error.is_too_large());
    assert!(largest <= LIMIT + PIECE, "buffer grew to {largest} bytes");
    assert!(fed <= LIMIT + PIECE, "error only after {fed} bytes");
}
