//! A durable consumer: copies an SSE stream into a file, every event exactly
//! once and in order, however often it is killed and started again.
//!
//! ```text
//! cargo run --example durable -- URL --store FILE --out FILE
//! ```
//!
//! For each message it appends one line `ID<TAB>DATA` to `--out`, syncs the
//! file to disk, and only then commits the ID to the checkpoint store
//! `--store` (an [`ssekit::FileCheckpoints`] file, under the stream's URL as
//! its name). A restarted run resumes the stream after the last event in
//! `--out`, sending its ID as `Last-Event-ID`. It exits when the stream
//! ends cleanly (the server answers `204 No Content`), and with status 1
//! when it ends with an error.
//!
//! # The line format
//!
//! ID and data are escaped so that one event is always one line with one
//! tab: a backslash is written `\\`, a tab `\t`, a line feed `\n` and a
//! carriage return `\r`. Data of several `data:` lines (joined by line
//! feeds) thus becomes `line one\nline two`. Every line ends with a line
//! feed; reverse the escapes to get the event back.
//!
//! # Why a kill at any instant loses and duplicates nothing
//!
//! Each event is appended (`write` then `fsync`) before its ID is
//! committed (a save of the store: temporary file, `fsync`, rename,
//! `fsync` of the directory; see `FileCheckpoints`). A kill can land:
//!
//! 1. before the append completes: `--out` may end with a torn line, the
//!    part of a line without its line feed. At start, that tail is cut off
//!    (and the truncation synced): the event was not recorded, and the
//!    resumed stream sends it again.
//! 2. between the append and the commit: `--out`'s last line is one event
//!    newer than the store. At start, the last complete line of `--out` is
//!    read: its ID is the resume point, and it is committed to the store
//!    before connecting, so the resumed stream starts after it and the
//!    event is not appended twice.
//! 3. during the commit: the store holds the old ID or the new one (never
//!    a torn file), which is case 2 or a clean stop.
//!
//! So `--out`, not the store, decides where to resume; the store is saved
//! on every event (rather than batched: `--out` pays an `fsync` per event
//! anyway) so that it is never more than one line behind, and a store that
//! matches neither of `--out`'s last two lines (files of different runs)
//! is reported on stderr. With no complete line in `--out`, the store's ID
//! is the resume point.
//!
//! The guarantee needs what any resumable stream needs: every event
//! carries an ID of its own, and the server sends exactly the events after
//! the `Last-Event-ID` it receives. An event without an `id:` field has
//! the ID of the one before it (and is written with it); a kill just after
//! it can make the server send it again.
//!
//! # Test hook
//!
//! With `SSEKIT_DURABLE_ABORT_AFTER=N` in the environment, the process
//! aborts right after the append of the `N`th event of this run, before
//! its commit: the kill of case 2, at a known instant. `tests/durable.rs`
//! uses it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt;
use ssekit::{Checkpoint, CheckpointStore, Event, EventSource, FileCheckpoints, MessageEvent};

const USAGE: &str = "usage: durable URL --store FILE --out FILE";

/// Aborts after the append of the Nth event of the run (see "Test hook").
const ABORT_AFTER_VAR: &str = "SSEKIT_DURABLE_ABORT_AFTER";

struct Args {
    url: String,
    store: PathBuf,
    out: PathBuf,
}

impl Args {
    /// The arguments; `None` for `--help`.
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let (mut url, mut store, mut out) = (None, None, None);
        while let Some(arg) = args.next() {
            let slot = match arg.as_str() {
                "--store" => &mut store,
                "--out" => &mut out,
                "-h" | "--help" => return Ok(None),
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                _ if url.is_none() => {
                    url = Some(arg);
                    continue;
                }
                _ => return Err(format!("unexpected argument {arg:?}")),
            };
            *slot = Some(PathBuf::from(
                args.next().ok_or_else(|| format!("{arg} needs a FILE"))?,
            ));
        }
        Ok(Some(Args {
            url: url.ok_or("no URL")?,
            store: store.ok_or("no --store FILE")?,
            out: out.ok_or("no --out FILE")?,
        }))
    }
}

// One thread: the file writes and syncs block it, which suits a consumer
// that must not read ahead of what is on disk anyway.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("durable: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("durable: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let abort_after: Option<u64> = std::env::var(ABORT_AFTER_VAR)
        .ok()
        .and_then(|v| v.parse().ok());
    let out_name = args.out.display().to_string();
    let mut out = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&args.out)
        .map_err(|e| format!("{out_name}: {e}"))?;
    let tail = recover(&mut out).map_err(|e| format!("{out_name}: {e}"))?;

    // The stream's URL names its checkpoint: one store file can serve
    // several streams.
    let name = args.url.as_str();
    let store = Arc::new(FileCheckpoints::new(&args.store));
    let stored = store.load(name).map_err(|e| e.to_string())?;
    let mut checkpoint = Checkpoint::new(store.clone(), name).flush_every(1);
    if let Some(last) = tail.last.as_deref().filter(|id| !id.is_empty()) {
        if stored.as_deref() != Some(last) {
            let behind_by_one = stored.as_deref() == tail.previous.as_deref()
                || (stored.is_none() && tail.previous.is_none());
            if !behind_by_one {
                eprintln!(
                    "durable: the store holds {stored:?}, which is not one of the last two \
                     events in {out_name}; resuming after {out_name}'s last event, {last:?}"
                );
            }
            // Case 2: killed between the append and the commit.
            checkpoint.commit_id(last).map_err(|e| e.to_string())?;
            checkpoint.flush().map_err(|e| e.to_string())?;
        }
    } else if let Some(id) = &stored {
        eprintln!("durable: {out_name} holds no event; resuming after the store's {id:?}");
    }

    let mut es = EventSource::builder(name)
        .checkpoint(&*store, name)
        .build()
        .map_err(|e| format!("{e:#}"))?;
    if !es.last_event_id().is_empty() {
        eprintln!("durable: resuming after event {:?}", es.last_event_id());
    }
    let mut appended = 0u64;
    while let Some(event) = es.next().await {
        let message = match event {
            Ok(Event::Message(m)) => m,
            Ok(_) => continue,
            Err(e) => return Err(format!("{e:#}")),
        };
        append(&mut out, &message).map_err(|e| format!("{out_name}: {e}"))?;
        appended += 1;
        if abort_after == Some(appended) {
            std::process::abort();
        }
        checkpoint
            .commit(&message)
            .map_err(|e| format!("committing {:?}: {e}", message.id()))?;
    }
    checkpoint.flush().map_err(|e| e.to_string())
}

/// Writes one event as a line and syncs it to disk.
fn append(out: &mut File, m: &MessageEvent) -> io::Result<()> {
    let mut line = String::with_capacity(m.id().len() + m.data().len() + 2);
    escape_into(&mut line, m.id());
    line.push('\t');
    escape_into(&mut line, m.data());
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.sync_data()
}

/// Appends `s` with backslash, tab, line feed and carriage return escaped.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next()? {
                '\\' => '\\',
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                _ => return None,
            },
            c => c,
        });
    }
    Some(out)
}

/// The IDs of the last two complete lines of `--out`.
struct Tail {
    last: Option<String>,
    previous: Option<String>,
}

/// Cuts a torn last line off `out` (syncing the cut) and reads the IDs of
/// the last two complete lines. Reads only the end of the file.
fn recover(out: &mut File) -> io::Result<Tail> {
    let len = out.metadata()?.len();
    // The file's last bytes, from `start` to the end, grown backwards
    // until they hold three line feeds (the end of the line before the
    // last two) or the whole file.
    let mut start = len;
    let mut tail: Vec<u8> = Vec::new();
    while start > 0 && tail.iter().filter(|&&b| b == b'\n').count() < 3 {
        let n = start.min(64 * 1024);
        start -= n;
        let mut block = vec![0; n as usize];
        out.seek(SeekFrom::Start(start))?;
        out.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
    }
    let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if start + (complete as u64) < len {
        let torn = len - start - complete as u64;
        eprintln!("durable: cutting off a torn last line ({torn} bytes)");
        out.set_len(start + complete as u64)?;
        out.sync_data()?;
    }
    let mut lines = tail[..complete].split(|&b| b == b'\n').rev().skip(1);
    // Both lines are whole: `tail` starts at the file's start or holds the
    // line feed that ends the line before them.
    let id_of = |line: Option<&[u8]>| -> io::Result<Option<String>> {
        let Some(line) = line else { return Ok(None) };
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a durable output file");
        let text = std::str::from_utf8(line).map_err(|_| bad())?;
        let (id, _data) = text.split_once('\t').ok_or_else(bad)?;
        unescape(id).map(Some).ok_or_else(bad)
    };
    let last = id_of(lines.next())?;
    let previous = id_of(lines.next())?;
    Ok(Tail { last, previous })
}
