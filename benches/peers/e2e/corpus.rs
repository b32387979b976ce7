//! The corpora the server sends: `openai` and `dashboard` events generated
//! deterministically, their chunked HTTP/1.1 and HTTP/2 renderings, and the
//! gzip renderings of the gzip rows (compressed once at start).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;

use crate::clients::row_gzip;
use crate::throughput::env_usize;

/// SplitMix64: a tiny deterministic generator (no `rand` in the corpus).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub(crate) const CORPORA: [&str; 2] = ["openai", "dashboard"];

/// A corpus: the event stream (`raw`), its chunked-encoded form (`wire`,
/// without the terminating chunk) and where events and chunks end.
pub(crate) struct Corpus {
    pub(crate) raw: Bytes,
    pub(crate) wire: Vec<u8>,
    /// Per chunk: (end in `raw`, end in `wire`).
    pub(crate) chunks: Vec<(usize, usize)>,
    /// Per event: its end in `raw`.
    pub(crate) event_end: Vec<usize>,
    /// Per event: data bytes of events 0..=i.
    pub(crate) data_cum: Vec<u64>,
}

pub(crate) struct Prefix {
    pub(crate) events: usize,
    pub(crate) raw_bytes: usize,
    pub(crate) data_bytes: u64,
}

impl Corpus {
    pub(crate) fn build(
        raw: Vec<u8>,
        event_end: Vec<usize>,
        data_cum: Vec<u64>,
        cuts: Vec<usize>,
    ) -> Self {
        let mut wire = Vec::with_capacity(raw.len() + raw.len() / 16 + 64);
        let mut chunks = Vec::with_capacity(cuts.len());
        let mut start = 0;
        for end in cuts {
            write!(wire, "{:x}\r\n", end - start).unwrap();
            wire.extend_from_slice(&raw[start..end]);
            wire.extend_from_slice(b"\r\n");
            chunks.push((end, wire.len()));
            start = end;
        }
        Corpus {
            raw: Bytes::from(raw),
            wire,
            chunks,
            event_end,
            data_cum,
        }
    }

    pub(crate) fn events(&self) -> usize {
        self.event_end.len()
    }

    pub(crate) fn prefix(&self, events: usize) -> Prefix {
        let events = events.clamp(1, self.events());
        Prefix {
            events,
            raw_bytes: self.event_end[events - 1],
            data_bytes: self.data_cum[events - 1],
        }
    }

    /// The wire bytes for the first `events` events: whole pre-rendered
    /// chunks, then (rendered here) the rest of the last event as one more
    /// chunk. The terminating chunk is not included.
    pub(crate) fn body(&self, events: usize) -> (&[u8], Vec<u8>) {
        let raw_end = self.prefix(events).raw_bytes;
        let whole = self.chunks.partition_point(|&(r, _)| r <= raw_end);
        let (raw_done, wire_done) = if whole == 0 {
            (0, 0)
        } else {
            self.chunks[whole - 1]
        };
        let mut tail = Vec::new();
        if raw_done < raw_end {
            write!(tail, "{:x}\r\n", raw_end - raw_done).unwrap();
            tail.extend_from_slice(&self.raw[raw_done..raw_end]);
            tail.extend_from_slice(b"\r\n");
        }
        (&self.wire[..wire_done], tail)
    }

    /// The first `events` events as HTTP/2 DATA frames: the pieces the
    /// chunked body has (one event, or 16 KiB), `repeat` times over.
    pub(crate) fn frames(self: &Arc<Self>, events: usize, repeat: usize) -> Frames {
        let end = self.prefix(events).raw_bytes;
        Frames {
            corpus: Some(self.clone()),
            end,
            whole: self.chunks.partition_point(|&(r, _)| r <= end),
            next: 0,
            start: 0,
            left: repeat,
        }
    }
}

/// A response body of raw corpus bytes (slices of it, no copy), one frame
/// per piece of the chunked body; empty (the default) for an error response.
#[derive(Default)]
pub(crate) struct Frames {
    pub(crate) corpus: Option<Arc<Corpus>>,
    /// End in `raw` of the prefix sent.
    pub(crate) end: usize,
    /// Pieces of the chunked body that end within the prefix.
    pub(crate) whole: usize,
    pub(crate) next: usize,
    pub(crate) start: usize,
    /// Copies of the prefix still to send.
    pub(crate) left: usize,
}

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(corpus) = this.corpus.as_ref().filter(|_| this.left > 0) else {
            return std::task::Poll::Ready(None);
        };
        let stop = if this.next < this.whole {
            corpus.chunks[this.next].0
        } else {
            this.end
        };
        let piece = corpus.raw.slice(this.start..stop);
        (this.next, this.start) = (this.next + 1, stop);
        if stop == this.end {
            (this.next, this.start, this.left) = (0, 0, this.left - 1);
        }
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}

/// The gzip header: no name, no time, unknown OS.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A gzip rendering of a corpus's first events, pre-compressed at server
/// start: raw deflate that ends on a sync flush (byte-aligned, no final
/// block), as HTTP chunks. A deflate stream that starts with an empty
/// window and ends on a sync flush decodes the same after any other such
/// stream, so `repeat=k` sends it k times over, then one empty final block
/// and the trailer (CRC-32 and size of the k copies).
pub(crate) struct GzBody {
    /// Chunked-encoded compressed pieces (without the gzip header).
    pub(crate) wire: Vec<u8>,
    /// Per prefix that ends on a piece, by events: (events, end in `wire`,
    /// CRC-32 of the raw prefix).
    pub(crate) ends: Vec<(usize, usize, u32)>,
}

pub(crate) fn push_chunk(wire: &mut Vec<u8>, piece: &[u8]) {
    if !piece.is_empty() {
        write!(wire, "{:x}\r\n", piece.len()).unwrap();
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
}

/// `openai` as a compressing LLM proxy sends it: one deflate stream, a sync
/// flush after each event, each flushed piece one HTTP chunk. Every event
/// ends a piece, so one rendering serves every prefix up to `events`.
pub(crate) fn gzip_per_event(c: &Corpus, events: usize) -> GzBody {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut crc = crc32fast::Hasher::new();
    let mut wire = Vec::with_capacity(c.raw.len() / 3);
    let mut ends = Vec::with_capacity(c.events());
    let mut start = 0;
    for (i, &end) in c.event_end[..c.prefix(events).events].iter().enumerate() {
        enc.write_all(&c.raw[start..end]).unwrap();
        enc.flush().unwrap(); // a sync flush
        push_chunk(&mut wire, enc.get_ref());
        enc.get_mut().clear();
        crc.update(&c.raw[start..end]);
        ends.push((i + 1, wire.len(), crc.clone().finalize()));
        start = end;
    }
    GzBody { wire, ends }
}

/// `dashboard` as a compressing server sends a bulk stream: the first
/// `events` events compressed as one stream (one sync flush, at the end),
/// cut in 16 KiB chunks.
pub(crate) fn gzip_bulk(c: &Corpus, events: usize) -> GzBody {
    let p = c.prefix(events);
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&c.raw[..p.raw_bytes]).unwrap();
    enc.flush().unwrap();
    let deflate = enc.get_ref();
    let mut wire = Vec::with_capacity(deflate.len() + deflate.len() / 1024 + 16);
    for piece in deflate.chunks(16384) {
        push_chunk(&mut wire, piece);
    }
    let end = wire.len();
    GzBody {
        wire,
        ends: vec![(p.events, end, crc32fast::hash(&c.raw[..p.raw_bytes]))],
    }
}

/// Stream counts of the gzip rows, whose prefixes (events / streams /
/// [`gzip_share`]) are rendered; other prefixes of a bulk corpus get a 404.
pub(crate) const GZIP_STREAMS: [usize; 2] = [1, 100];

/// The gzip rows read the first 1/share of the corpus (default 4,
/// `SSEKIT_BENCH_GZIP_SHARE`), with the same repeats: decoding makes them
/// several times slower than the plain rows, and a quarter is long enough
/// to time.
pub(crate) fn gzip_share() -> usize {
    env_usize("SSEKIT_BENCH_GZIP_SHARE", 4).max(1)
}

/// The events each stream of a row of `streams` streams reads.
pub(crate) fn events_per_stream(total: usize, streams: usize, rt: &str) -> usize {
    let share = if row_gzip(rt) { gzip_share() } else { 1 };
    total / (streams * share)
}

/// The prefixes the gzip rows read (see [`events_per_stream`]), largest
/// first.
pub(crate) fn gzip_row_events(c: &Corpus) -> Vec<usize> {
    let mut events: Vec<usize> = GZIP_STREAMS
        .iter()
        .map(|&s| c.prefix(events_per_stream(c.events(), s, "gzip-")).events)
        .collect();
    events.dedup();
    events
}

pub(crate) fn gzip_renderings(name: &str, c: &Corpus) -> Vec<GzBody> {
    let events = gzip_row_events(c);
    if name == "openai" {
        return vec![gzip_per_event(c, events[0])];
    }
    events.into_iter().map(|n| gzip_bulk(c, n)).collect()
}

/// The pre-compressed body for the first `events` events, if rendered:
/// (the pieces, raw bytes, CRC-32 of the raw bytes).
pub(crate) fn gzip_prefix<'a>(
    gz: &'a [GzBody],
    c: &Corpus,
    events: usize,
) -> Option<(&'a [u8], u64, u32)> {
    let p = c.prefix(events);
    gz.iter().find_map(|b| {
        let i = b.ends.binary_search_by_key(&p.events, |e| e.0).ok()?;
        let (_, end, crc) = b.ends[i];
        Some((&b.wire[..end], p.raw_bytes as u64, crc))
    })
}

/// The last HTTP chunk of a gzip body of `repeat` copies of a prefix of
/// `raw_bytes` bytes whose CRC-32 is `crc`: an empty final deflate block
/// (fixed Huffman), then the trailer.
pub(crate) fn gzip_trailer(raw_bytes: u64, crc: u32, repeat: usize) -> Vec<u8> {
    let mut whole = crc32fast::Hasher::new();
    for _ in 0..repeat {
        whole.combine(&crc32fast::Hasher::new_with_initial_len(crc, raw_bytes));
    }
    let mut tail = vec![0x03, 0x00];
    tail.extend_from_slice(&whole.finalize().to_le_bytes());
    tail.extend_from_slice(&((raw_bytes * repeat as u64) as u32).to_le_bytes());
    let mut chunk = Vec::new();
    push_chunk(&mut chunk, &tail);
    chunk
}

/// Decodes a few gzip bodies as a client will (header, k copies, trailer)
/// and compares them with the corpus: a wrong CRC or size would otherwise
/// go unseen, as clients stop reading at their last event.
pub(crate) fn gzip_self_check(gz: &[GzBody], c: &Corpus) {
    for events in [1, c.events().min(1000), *gzip_row_events(c).last().unwrap()] {
        let Some((pieces, raw_bytes, crc)) = gzip_prefix(gz, c, events) else {
            continue;
        };
        let mut chunked = Vec::new();
        push_chunk(&mut chunked, &GZIP_HEADER);
        for _ in 0..2 {
            chunked.extend_from_slice(pieces);
        }
        chunked.extend_from_slice(&gzip_trailer(raw_bytes, crc, 2));
        // Undo the chunked encoding.
        let (mut body, mut rest) = (Vec::new(), &chunked[..]);
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap(), 16).unwrap();
            body.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 4 + n..];
        }
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut decoded)
            .expect("the gzip body decodes");
        let raw = &c.raw[..raw_bytes as usize];
        assert!(
            decoded.len() == 2 * raw.len() && decoded.chunks(raw.len()).all(|d| d == raw),
            "gzip body of {events} events, twice over, decodes to something else"
        );
    }
}

pub(crate) const TOKENS: &[&str] = &[
    " the",
    " a",
    " of",
    " to",
    " and",
    " stream",
    "ing",
    " server",
    " event",
    " token",
    " is",
    " that",
    " it",
    ",",
    ".",
    " you",
    " can",
    " re",
    "connect",
    " with",
    " data",
    " latency",
    " naïve",
    " café",
    " —",
    " 42",
    "\\n",
    "\\n\\n",
    " \\\"quoted\\\"",
    " über",
    " 東京",
    " 🙂",
    "```",
    "rust",
    " fn",
    " main",
    "()",
    " {",
    " }",
    " let",
    " mut",
    " x",
    " =",
    " 1",
    ";",
];

pub(crate) fn openai_corpus(target: usize) -> Corpus {
    let mut rng = Rng(0x0DDB_A11C_0FFE_E000);
    let mut raw = Vec::with_capacity(target + 4096);
    let (mut event_end, mut data_cum) = (Vec::new(), Vec::new());
    let mut data_total = 0u64;
    let mut n = 0u64;
    let mut completion = String::new();
    let mut created = 1_732_300_000u64;
    let mut push = |raw: &mut Vec<u8>, data: &str| {
        raw.extend_from_slice(b"data: ");
        raw.extend_from_slice(data.as_bytes());
        raw.extend_from_slice(b"\n\n");
        data_total += data.len() as u64;
        event_end.push(raw.len());
        data_cum.push(data_total);
    };
    while raw.len() < target {
        // A new completion every 400 chunks: a new id and a role delta.
        if n % 400 == 0 {
            completion = format!("chatcmpl-{:016x}{:013x}", rng.next(), rng.below(1 << 52));
            created += rng.below(30);
        }
        let delta = if n % 400 == 0 {
            r#"{"role":"assistant","content":""}"#.to_string()
        } else {
            let tok = TOKENS[rng.below(TOKENS.len() as u64) as usize];
            format!(r#"{{"content":"{tok}"}}"#)
        };
        let data = format!(
            r#"{{"id":"{completion}","object":"chat.completion.chunk","created":{created},"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_f9f4fb6dbf","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null}}]}}"#
        );
        push(&mut raw, &data);
        n += 1;
    }
    push(&mut raw, "[DONE]");
    let cuts = event_end.clone(); // one event per chunk
    Corpus::build(raw, event_end, data_cum, cuts)
}

pub(crate) fn dashboard_corpus(target: usize) -> Corpus {
    const HOSTS: &[&str] = &["web-01", "web-02", "web-07", "db-01", "cache-03", "edge-11"];
    let mut rng = Rng(0xDA5B_0A2D_1234_5678);
    let mut raw = Vec::with_capacity(target + 4096);
    let (mut event_end, mut data_cum) = (Vec::new(), Vec::new());
    let mut data_total = 0u64;
    let mut n = 0u64;
    let mut ts = 1_732_300_000_000u64;
    while raw.len() < target {
        ts += 250 + rng.below(10);
        let host = HOSTS[rng.below(HOSTS.len() as u64) as usize];
        let mut data = format!(
            r#"{{"ts":{ts},"host":"{host}","region":"eu-west-1","cpu":{{"user":{:.3},"system":{:.3},"iowait":{:.3}}},"mem":{{"used":{},"cached":{}}},"p99_ms":["#,
            rng.below(100_000) as f64 / 1000.0,
            rng.below(30_000) as f64 / 1000.0,
            rng.below(5_000) as f64 / 1000.0,
            rng.below(1 << 34),
            rng.below(1 << 32),
        );
        let mut first = true;
        while data.len() < 1000 {
            if !first {
                data.push(',');
            }
            first = false;
            write!(data, "{:.3}", rng.below(2_000_000) as f64 / 1000.0).unwrap();
        }
        data.push_str("]}");
        write!(raw, "id: {n}\nevent: metrics\ndata: {data}\n\n").unwrap();
        data_total += data.len() as u64;
        event_end.push(raw.len());
        data_cum.push(data_total);
        n += 1;
    }
    let cuts = (1..)
        .map(|i| (i * 16384).min(raw.len()))
        .take(raw.len().div_ceil(16384))
        .collect();
    Corpus::build(raw, event_end, data_cum, cuts)
}
