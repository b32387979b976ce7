//! Recordings of an event stream's bytes with their arrival times: the file
//! format that `ssekit record` writes and `ssekit serve` (or a
//! [`MockServer`](super::MockServer) script) replays.
//!
//! The format is documented on [`Recording`], the type that reads and
//! writes it.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

/// The recording format version this crate writes and reads.
pub const RECORDING_VERSION: u64 = 1;

/// One body chunk of a [`Recording`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedChunk {
    at: Duration,
    bytes: Bytes,
}

impl RecordedChunk {
    /// A chunk that arrived `at` after the response head.
    pub fn new(at: Duration, bytes: impl Into<Bytes>) -> Self {
        RecordedChunk {
            at,
            bytes: bytes.into(),
        }
    }

    /// When it arrived, after the response head.
    pub fn at(&self) -> Duration {
        self.at
    }

    /// Its bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The chunk as one line of the format (without the line feed).
    pub fn to_line(&self) -> String {
        // Whole milliseconds when exact, so that files stay readable.
        let ms = self.at.as_secs_f64() * 1000.0;
        let t = if self.at.subsec_nanos() % 1_000_000 == 0 {
            json!(self.at.as_millis() as u64)
        } else {
            json!((ms * 1000.0).round() / 1000.0)
        };
        // Written by hand so that the keys keep the documented order.
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => format!("{{\"t_ms\":{t},\"data\":{}}}", Value::from(text)),
            Err(_) => format!(
                "{{\"t_ms\":{t},\"data_b64\":\"{}\"}}",
                base64::engine::general_purpose::STANDARD.encode(&self.bytes)
            ),
        }
    }
}

/// A recorded response: its URL, status and headers, and its body chunks
/// with their arrival times.
///
/// # Format (version 1)
///
/// JSON Lines, UTF-8, one JSON object per line:
///
/// 1. A header: `{"ssekit_recording":1,"url":"...","status":200,"headers":[["content-type","text/event-stream"],...]}`.
///    `ssekit_recording` is the format version; `headers` is a list of
///    `[name, value]` pairs in the order received (names may repeat).
/// 2. One line per chunk of the body as it arrived:
///    `{"t_ms":123,"data":"id: 1\ndata: hi\n\n"}`. `t_ms` is the arrival time
///    in milliseconds since the response head arrived (a number, fractions
///    allowed). A chunk that is not valid UTF-8 (a character split between
///    two chunks, a binary body) is written as `data_b64` (standard base64,
///    with padding) instead of `data`.
///
/// The bytes are the decoded body: a compressed response is stored
/// uncompressed, and its `content-encoding` header is not kept. Readers
/// ignore fields they do not know, and refuse a version they do not know.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ssekit::testing::{RecordedChunk, Recording};
///
/// let mut rec = Recording::new("http://127.0.0.1:8080/feed", 200, vec![]);
/// rec.push(RecordedChunk::new(Duration::from_millis(5), "id: 1\ndata: a\n\n"));
/// rec.push(RecordedChunk::new(Duration::from_millis(250), "id: 2\ndata: b\n\n"));
/// let text = rec.to_json_lines();
/// assert!(text.starts_with(r#"{"ssekit_recording":1,"#));
/// let back: Recording = text.parse().unwrap();
/// assert_eq!(back, rec);
///
/// // Resuming after id 1 leaves the second event, 245 ms after the cut.
/// let rest = rec.after_event_id("1").unwrap();
/// assert_eq!(&rest.body()[..], b"id: 2\ndata: b\n\n");
/// assert_eq!(rest.chunks()[0].at(), Duration::from_millis(245));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
    chunks: Vec<RecordedChunk>,
}

/// Why a recording could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingError {
    line: usize,
    message: String,
}

impl RecordingError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        RecordingError {
            line,
            message: message.into(),
        }
    }

    /// The 1-based line of the file that is wrong.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl fmt::Display for RecordingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recording line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RecordingError {}

impl Recording {
    /// An empty recording of a response.
    pub fn new(url: impl Into<String>, status: u16, headers: Vec<(String, String)>) -> Self {
        Recording {
            url: url.into(),
            status,
            headers,
            chunks: Vec::new(),
        }
    }

    /// Adds a chunk (chunks are kept in the order pushed).
    pub fn push(&mut self, chunk: RecordedChunk) {
        self.chunks.push(chunk);
    }

    /// The URL that was recorded.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The response status that was recorded.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers that were recorded, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body chunks.
    pub fn chunks(&self) -> &[RecordedChunk] {
        &self.chunks
    }

    /// The whole body, the chunks joined.
    pub fn body(&self) -> Bytes {
        let mut body = Vec::with_capacity(self.chunks.iter().map(|c| c.bytes.len()).sum());
        for c in &self.chunks {
            body.extend_from_slice(&c.bytes);
        }
        body.into()
    }

    /// The header as one line of the format (without the line feed).
    pub fn header_line(&self) -> String {
        let headers: Vec<Value> = self.headers.iter().map(|(n, v)| json!([n, v])).collect();
        // Written by hand so that the version comes first: a reader can
        // tell a recording from its first bytes.
        format!(
            "{{\"ssekit_recording\":{RECORDING_VERSION},\"url\":{},\"status\":{},\"headers\":{}}}",
            Value::from(self.url.as_str()),
            self.status,
            Value::Array(headers)
        )
    }

    /// The whole recording in the file format, each line ending with LF.
    pub fn to_json_lines(&self) -> String {
        let mut out = self.header_line();
        out.push('\n');
        for c in &self.chunks {
            out.push_str(&c.to_line());
            out.push('\n');
        }
        out
    }

    /// What remains after the event whose `id` field is `last_event_id`,
    /// as a server resuming from `Last-Event-ID` would send it: the chunks
    /// up to and including that event's terminating blank line are dropped
    /// (a chunk holding the cut is split), and times are counted from the
    /// cut. `None` when no event of the recording sets that id.
    pub fn after_event_id(&self, last_event_id: &str) -> Option<Recording> {
        let body = self.body();
        let cut = event_ends(&body)
            .into_iter()
            .find(|(_, id)| id.as_deref() == Some(last_event_id))?
            .0;
        let mut rest = Recording::new(self.url.clone(), self.status, self.headers.clone());
        let mut start = 0usize;
        // When the chunk that completed the event arrived: the pause after
        // it is kept.
        let mut base = Duration::ZERO;
        for c in &self.chunks {
            let end = start + c.bytes.len();
            if start < cut && cut <= end {
                base = c.at;
            }
            if end > cut {
                let from = cut.saturating_sub(start);
                rest.push(RecordedChunk::new(
                    c.at.saturating_sub(base),
                    c.bytes.slice(from..),
                ));
            }
            start = end;
        }
        Some(rest)
    }
}

impl std::str::FromStr for Recording {
    type Err = RecordingError;

    /// Reads the file format (see [`Recording`]); blank lines are ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim().is_empty());
        let (n, first) = lines
            .next()
            .ok_or_else(|| RecordingError::new(1, "empty file, expected a recording header"))?;
        let head: Value = serde_json::from_str(first)
            .map_err(|e| RecordingError::new(n, format!("not JSON: {e}")))?;
        let version = head
            .get("ssekit_recording")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                RecordingError::new(
                    n,
                    "not an ssekit recording (no \"ssekit_recording\" version)",
                )
            })?;
        if version != RECORDING_VERSION {
            return Err(RecordingError::new(
                n,
                format!("unsupported recording version {version} (this ssekit reads {RECORDING_VERSION})"),
            ));
        }
        let url = head.get("url").and_then(Value::as_str).unwrap_or("");
        let status = head
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200);
        let mut headers = Vec::new();
        for h in head
            .get("headers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match h.as_array().map(Vec::as_slice) {
                Some([Value::String(name), Value::String(value)]) => {
                    headers.push((name.clone(), value.clone()))
                }
                _ => {
                    return Err(RecordingError::new(
                        n,
                        "a header is not a [name, value] pair",
                    ))
                }
            }
        }
        let mut rec = Recording::new(url, status, headers);
        for (n, line) in lines {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| RecordingError::new(n, format!("not JSON: {e}")))?;
            let t = v
                .get("t_ms")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite() && *t >= 0.0)
                .ok_or_else(|| RecordingError::new(n, "missing or negative \"t_ms\""))?;
            let bytes: Bytes = match (v.get("data"), v.get("data_b64")) {
                (Some(Value::String(s)), _) => Bytes::from(s.clone()),
                (_, Some(Value::String(b))) => base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| RecordingError::new(n, format!("bad \"data_b64\": {e}")))?
                    .into(),
                _ => return Err(RecordingError::new(n, "no \"data\" or \"data_b64\" string")),
            };
            let at = Duration::try_from_secs_f64(t / 1000.0)
                .map_err(|_| RecordingError::new(n, "\"t_ms\" out of range"))?;
            rec.push(RecordedChunk::new(at, bytes));
        }
        Ok(rec)
    }
}

/// The end offset (just past the blank line) of every event block in
/// `body`, with the `id` field value committed by that block, if any. Only
/// what resuming needs: line endings CRLF, LF and CR, `id` fields with or
/// without the one optional space, and ids containing U+0000 ignored.
fn event_ends(body: &[u8]) -> Vec<(usize, Option<String>)> {
    let mut ends = Vec::new();
    let mut pos = 0;
    let mut id: Option<String> = None;
    let mut line_start = 0;
    while pos < body.len() {
        let b = body[pos];
        if b != b'\n' && b != b'\r' {
            pos += 1;
            continue;
        }
        let line = &body[line_start..pos];
        pos += 1;
        if b == b'\r' && body.get(pos) == Some(&b'\n') {
            pos += 1;
        }
        line_start = pos;
        if line.is_empty() {
            ends.push((pos, id.take()));
        } else if let Some(value) = line.strip_prefix(b"id") {
            let value = match value {
                [] => Some(&b""[..]),
                [b':', b' ', rest @ ..] | [b':', rest @ ..] => Some(rest),
                _ => None,
            };
            if let Some(v) = value.filter(|v| !v.contains(&0)) {
                id = Some(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(chunks: &[(u64, &str)]) -> Recording {
        let mut r = Recording::new("http://x/", 200, vec![("a".into(), "b".into())]);
        for (t, s) in chunks {
            r.push(RecordedChunk::new(Duration::from_millis(*t), s.to_string()));
        }
        r
    }

    #[test]
    fn round_trips_text_binary_and_fractional_times() {
        let mut r = rec(&[(0, "data: a\n\n")]);
        r.push(RecordedChunk::new(
            Duration::from_micros(1500),
            vec![0xe2, 0x82],
        ));
        let text = r.to_json_lines();
        assert!(text.contains(r#""data_b64":"4oI=""#), "{text}");
        assert!(text.contains(r#""t_ms":1.5"#), "{text}");
        assert_eq!(text.parse::<Recording>().unwrap(), r);
    }

    #[test]
    fn rejects_other_versions_and_bad_lines() {
        let e = "{\"ssekit_recording\":2}".parse::<Recording>().unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let e = "{\"ssekit_recording\":1}\n{\"t_ms\":-1,\"data\":\"\"}"
            .parse::<Recording>()
            .unwrap_err();
        assert_eq!(e.line(), 2);
        assert!("{}".parse::<Recording>().is_err());
        assert!("".parse::<Recording>().is_err());
    }

    #[test]
    fn resumes_after_an_id_splitting_chunks_and_rebasing_time() {
        let r = rec(&[
            (10, "id: 1\ndata: a\n\nid: 2\r\ndata: b\r\n\r\nid"),
            (50, ": 3\ndata: c\n\n"),
            (90, "data: d\n\n"),
        ]);
        let rest = r.after_event_id("2").unwrap();
        assert_eq!(&rest.body()[..], b"id: 3\ndata: c\n\ndata: d\n\n");
        let times: Vec<_> = rest.chunks().iter().map(|c| c.at().as_millis()).collect();
        assert_eq!(times, [0, 40, 80]);
        let rest = r.after_event_id("3").unwrap();
        assert_eq!(&rest.body()[..], b"data: d\n\n");
        assert_eq!(
            rest.chunks()[0].at(),
            Duration::from_millis(40),
            "the pause after the cut is kept"
        );
        assert!(r.after_event_id("9").is_none());
        assert_eq!(event_ends(b"id:\n\nid:x\0\n\n")[0].1.as_deref(), Some(""));
        assert_eq!(event_ends(b"id:x\0\n\n")[0].1, None);
    }
}
