//! `ssekit record URL -o FILE`: save one response's body chunks with their
//! arrival times, in the recording format of `ssekit::testing::Recording`
//! (JSON Lines, version 1), for `ssekit serve` or a `MockServer` to replay.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ssekit::codec::DEFAULT_MAX_EVENT_SIZE;
use ssekit::testing::{RecordedChunk, Recording};
use ssekit::{redact_url, SseCodec};
use tokio::time::Instant;

use crate::client::{body_start, chain, Request, RequestArgs};
use crate::printer::escape_controls;
use crate::values::{parse_count, parse_secs, parse_size, parse_url};

pub const HELP: &str = "\
Makes one request (no reconnection) and writes FILE as it goes: a header
line {\"ssekit_recording\":1,\"url\":...,\"status\":200,\"headers\":[[name,value],...]}
then one line per body chunk as it arrived, {\"t_ms\":123,\"data\":\"...\"}
(t_ms: milliseconds since the response head; a chunk that is not UTF-8 is
written as \"data_b64\"). The body is stored decoded (not compressed). The
URL's password and credential parameters (token=, access_token=, ...) and
the values of Set-Cookie are written as \"redacted\".

Stops at --max-events (the chunk that completes the Nth event is kept
whole), at --timeout, at --max-bytes (the body recorded is then exactly N
bytes, possibly ending mid-event), or when the server ends the body; all
four exit 0. Exit 1 when the response is not 200 text/event-stream, the
connection fails, or an event is larger than --max-event-size (16 MiB by
default: events are counted, and memory bounded, as a client would), 2 on
bad usage.";

/// The arguments of `ssekit record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The URL of the event stream
    #[arg(value_parser = parse_url)]
    pub url: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// The file to write (replaced if it exists)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Stop after N events
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_events: Option<u64>,
    /// Stop after SECS
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Stop after N bytes of body (the file then ends with exactly N bytes
    /// of body, possibly mid-event)
    #[arg(long, value_name = "N", value_parser = parse_size::<u64>)]
    pub max_bytes: Option<u64>,
    /// The largest event counted; a larger one stops the recording with
    /// exit 1 (default 16777216, 16 MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_size::<usize>)]
    pub max_event_size: Option<usize>,
}

pub async fn run(a: RecordArgs) -> ExitCode {
    let req = match Request::from_args(&a.request) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    let deadline = a.timeout.map(|t| Instant::now() + t);
    let client = match req.client() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    let rb = match req.build(&client, &a.url, "") {
        Ok(rb) => rb,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    let mut resp = match within(deadline, req.send(&client, rb)).await {
        None => {
            eprintln!("error: no response within the --timeout");
            return ExitCode::from(1);
        }
        Some(Err(msg)) => {
            eprintln!("error: {msg}");
            return ExitCode::from(1);
        }
        Some(Ok(r)) => r,
    };
    let head_at = Instant::now();
    let status = resp.status();
    let media = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status != reqwest::StatusCode::OK || !is_event_stream(&media) {
        let body = within(deadline, body_start(resp, 4096))
            .await
            .unwrap_or_default();
        eprintln!("error: not recording: the server answered {status} {media:?}");
        if !body.trim().is_empty() {
            eprintln!("response body:\n{}", escape_controls(&body));
        }
        return ExitCode::from(1);
    }
    // A recording is a file to share and commit: the credentials of the
    // URL (userinfo, access_token=...) and a session cookie stay out of it.
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = if *n == reqwest::header::SET_COOKIE {
                "redacted".to_owned()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (n.as_str().to_owned(), value)
        })
        .collect();
    let recording = Recording::new(redact_url(resp.url()).as_str(), status.as_u16(), headers);
    let mut file = match std::fs::File::create(&a.output) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => {
            eprintln!("ssekit: cannot write {}: {e}", a.output.display());
            return ExitCode::from(2);
        }
    };
    let mut write = |line: String| -> std::io::Result<()> {
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
        file.flush()
    };
    if let Err(e) = write(recording.header_line()) {
        eprintln!("error: writing {}: {e}", a.output.display());
        return ExitCode::from(1);
    }
    // Events are counted with the same bound as a client's: a line that
    // never ends costs at most --max-event-size of memory, not all of it.
    let limit = a.max_event_size.unwrap_or(DEFAULT_MAX_EVENT_SIZE);
    let mut codec = SseCodec::new().with_max_event_size(limit);
    let (mut events, mut chunks, mut bytes) = (0u64, 0u64, 0u64);
    let mut code = ExitCode::SUCCESS;
    let why = loop {
        let mut chunk = match within(deadline, resp.chunk()).await {
            None => break "--timeout reached".to_owned(),
            Some(Ok(None)) => break "the server ended the body".to_owned(),
            Some(Ok(Some(c))) => c,
            Some(Err(e)) => {
                eprintln!(
                    "error: reading the body failed: {}",
                    chain(&e.without_url())
                );
                code = ExitCode::from(1);
                break "the connection failed".to_owned();
            }
        };
        let room = a.max_bytes.map(|max| max - bytes);
        let full = room.is_some_and(|room| chunk.len() as u64 >= room);
        if let Some(room) = room.filter(|_| full) {
            chunk.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        bytes += chunk.len() as u64;
        let line = RecordedChunk::new(head_at.elapsed(), chunk.clone()).to_line();
        if let Err(e) = write(line) {
            eprintln!("error: writing {}: {e}", a.output.display());
            return ExitCode::from(1);
        }
        chunks += 1;
        codec.feed(chunk);
        let too_large = loop {
            match codec.next_event() {
                Ok(Some(_)) => events += 1,
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        if too_large {
            eprintln!(
                "error: an event is larger than {limit} bytes (--max-event-size); the recording stops here"
            );
            code = ExitCode::from(1);
            break "an event over --max-event-size".to_owned();
        }
        if a.max_events.is_some_and(|n| events >= n) {
            break "--max-events reached".to_owned();
        }
        if full {
            break format!("--max-bytes reached: {bytes} bytes of body");
        }
    };
    eprintln!(
        "* recorded {events} events in {chunks} chunks to {} ({why})",
        a.output.display()
    );
    code
}

/// `fut`'s output, or `None` when the deadline came first.
async fn within<F: std::future::Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

fn is_event_stream(media: &str) -> bool {
    media
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
}
