#![cfg(feature = "cli")]
//! `ssekit record` and `ssekit serve` as subprocesses: a stream recorded
//! from an in-process server and served again has the same events, ids
//! and spacing (within a tolerance), resumes after a Last-Event-ID, and
//! follows --speed and --loop.
//!
//! Every run and every wait has a time limit.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ssekit::testing::{ExpectEvents, MockServer, Recording, Script};
use ssekit::{EventSource, MessageEvent};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_ssekit");
const LIMIT: Duration = Duration::from_secs(20);
/// How far a replayed gap may differ from the recorded one.
const TOLERANCE: Duration = Duration::from_millis(120);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn temp_path(name: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "ssekit-rr-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes the file on drop.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn run(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, out)
        .await
        .unwrap_or_else(|_| panic!("ssekit {args:?} did not exit in time"))
        .unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `ssekit serve` and the URL it printed first. Its log (stderr,
/// a line per request) is piped for the tests that read it: a few hundred
/// requests fit in the pipe unread.
struct Serve {
    child: tokio::process::Child,
    url: String,
}

impl Serve {
    /// `host:port` of the URL, for a raw socket.
    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// serve's log, a line at a time (once).
    fn log(&mut self) -> tokio::io::Lines<BufReader<tokio::process::ChildStderr>> {
        BufReader::new(self.child.stderr.take().expect("the log is taken once")).lines()
    }
}

async fn serve(args: &[&str]) -> Serve {
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("no URL printed in time")
        .unwrap()
        .expect("stdout ended without a URL");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "the first line is the URL: {url:?}"
    );
    Serve { child, url }
}

fn source_script() -> Script {
    Script::sse()
        .header("x-origin", "test")
        .message(&MessageEvent::new("tick", "one", "1"))
        .sleep(ms(400))
        .message(&MessageEvent::new("tick", "two\nlines", "2"))
        .sleep(ms(300))
        .comment(" keep-alive")
        .message(&MessageEvent::new("", "three", "3"))
}

/// Records the source script to a file; returns the file (removed on drop).
async fn record() -> (Cleanup, Recording) {
    let source = MockServer::start(source_script()).await.unwrap();
    let file = Cleanup(temp_path("rec.jsonl"));
    let path = file.0.to_str().unwrap();
    let (code, _, stderr) = run(&[
        "record",
        &source.url("/feed"),
        "-o",
        path,
        "--max-events",
        "3",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("recorded 3 events"), "{stderr}");
    let text = std::fs::read_to_string(&file.0).unwrap();
    assert!(text.starts_with("{\"ssekit_recording\":1,"), "{text}");
    let rec: Recording = text.parse().unwrap();
    (file, rec)
}

#[tokio::test]
async fn a_recording_has_the_head_the_bytes_and_their_times() {
    let (_file, rec) = record().await;
    assert!(rec.url().ends_with("/feed"), "{}", rec.url());
    assert_eq!(rec.status(), 200);
    assert!(rec
        .headers()
        .iter()
        .any(|(n, v)| n == "x-origin" && v == "test"));
    assert_eq!(
        &rec.body()[..],
        b"event: tick\nid: 1\ndata: one\n\nevent: tick\nid: 2\ndata: two\ndata: lines\n\n: keep-alive\nid: 3\ndata: three\n\n"
    );
    // Three writes after pauses of 400 and 300 ms (the comment and the
    // third event may share a chunk).
    let times: Vec<Duration> = rec.chunks().iter().map(|c| c.at()).collect();
    let second = times
        .iter()
        .find(|t| **t >= ms(300))
        .expect("a chunk after the pause");
    assert!(second.abs_diff(ms(400)) < TOLERANCE, "{times:?}");
    assert!(
        times.last().unwrap().abs_diff(ms(700)) < TOLERANCE,
        "{times:?}"
    );
}

#[tokio::test]
async fn serve_replays_the_same_events_ids_and_spacing() {
    let (file, _) = record().await;
    let server = serve(&[file.0.to_str().unwrap()]).await;
    let mut es = EventSource::new(&server.url).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = es.next_message_within(LIMIT).await.unwrap();
        got.push((
            m.event().to_owned(),
            m.data().to_owned(),
            m.id().to_owned(),
            started.elapsed(),
        ));
    }
    let summary: Vec<_> = got
        .iter()
        .map(|(t, d, i, _)| (t.as_str(), d.as_str(), i.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("tick", "one", "1"),
            ("tick", "two\nlines", "2"),
            ("message", "three", "3")
        ]
    );
    let gap1 = got[1].3 - got[0].3;
    let gap2 = got[2].3 - got[1].3;
    assert!(gap1.abs_diff(ms(400)) < TOLERANCE, "{gap1:?}");
    assert!(gap2.abs_diff(ms(300)) < TOLERANCE, "{gap2:?}");
}

#[tokio::test]
async fn serve_resumes_after_last_event_id_and_says_204_when_nothing_is_left() {
    let (file, _) = record().await;
    let server = serve(&[file.0.to_str().unwrap()]).await;

    let mut es = EventSource::builder(&server.url)
        .last_event_id("2")
        .build()
        .unwrap();
    let started = Instant::now();
    let m = es.next_message_within(LIMIT).await.unwrap();
    assert_eq!((m.data(), m.id()), ("three", "3"));
    assert!(
        started.elapsed().abs_diff(ms(300)) < TOLERANCE,
        "timed from the cut: {:?}",
        started.elapsed()
    );

    let mut es = EventSource::builder(&server.url)
        .last_event_id("3")
        .build()
        .unwrap();
    let end = tokio::time::timeout(LIMIT, es.next()).await.unwrap();
    assert!(end.is_none(), "204 ends the stream cleanly: {end:?}");

    // An id the recording does not have: from the start.
    let mut es = EventSource::builder(&server.url)
        .last_event_id("nope")
        .build()
        .unwrap();
    assert_eq!(es.next_message_within(LIMIT).await.unwrap().id(), "1");
}

#[tokio::test]
async fn speed_scales_the_pauses_and_loop_starts_again() {
    let (file, _) = record().await;
    let path = file.0.to_str().unwrap();
    let server = serve(&[path, "--speed", "4", "--loop"]).await;
    let mut es = EventSource::new(&server.url).unwrap();
    let started = Instant::now();
    let got = es.collect_messages(5, LIMIT).await.unwrap();
    let ids: Vec<&str> = got.iter().map(|m| m.id()).collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "1", "2"],
        "the loop restarts on the same connection"
    );
    // One pass is 700 ms recorded, 175 ms at 4x; five events need under two.
    assert!(started.elapsed() < ms(700), "{:?}", started.elapsed());
}

#[tokio::test]
async fn record_stops_at_timeout_and_refuses_what_is_not_an_event_stream() {
    let source = MockServer::start(Script::sse().event("a").stall())
        .await
        .unwrap();
    let file = Cleanup(temp_path("t.jsonl"));
    let path = file.0.to_str().unwrap();
    let started = Instant::now();
    let (code, _, stderr) =
        run(&["record", &source.url("/"), "-o", path, "--timeout", "0.5"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(started.elapsed() >= ms(500));
    assert!(stderr.contains("--timeout reached"), "{stderr}");
    let rec: Recording = std::fs::read_to_string(&file.0).unwrap().parse().unwrap();
    assert_eq!(&rec.body()[..], b"data: a\n\n");

    let missing = MockServer::start(Script::status(404).write("gone"))
        .await
        .unwrap();
    let other = Cleanup(temp_path("404.jsonl"));
    let (code, _, stderr) =
        run(&["record", &missing.url("/"), "-o", other.0.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    assert!(!other.0.exists(), "no file for a refused stream");
}

#[tokio::test]
async fn serve_refuses_a_file_that_is_not_a_recording() {
    let file = Cleanup(temp_path("bad.jsonl"));
    std::fs::write(&file.0, "{\"hello\":1}\n").unwrap();
    let (code, stdout, stderr) = run(&["serve", file.0.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("not an ssekit recording"), "{stderr}");
}

/// `record` follows a redirect to another origin without the credentials
/// (SPEC rule 22).
#[tokio::test]
async fn record_drops_credentials_on_a_redirect_to_another_origin() {
    let other = MockServer::start(source_script()).await.unwrap();
    let first = MockServer::start(Script::status(302).header("location", &other.url("/feed")))
        .await
        .unwrap();
    let file = Cleanup(temp_path("redirect.jsonl"));
    let (code, _, stderr) = run(&[
        "record",
        &first.url("/start"),
        "-o",
        file.0.to_str().unwrap(),
        "-H",
        "x-api-key: k1",
        "-H",
        "api-key: k2",
        "-H",
        "Authorization: Bearer t",
        "--max-events",
        "3",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first.requests()[0].header("x-api-key"), Some("k1"));
    let followed = other.requests();
    assert_eq!(followed.len(), 1);
    for name in ["x-api-key", "api-key", "authorization"] {
        assert!(
            followed[0].header(name).is_none(),
            "{name} reached the other origin"
        );
    }
}

/// The recording's header line, a file to share, holds no credential of
/// the URL (userinfo, access_token=...) nor a cookie the server set; nor
/// does `check`'s report.
#[tokio::test]
async fn credentials_in_the_url_stay_out_of_the_recording_and_the_report() {
    let source = MockServer::start(
        Script::sse()
            .header("set-cookie", "session=cookie-secret")
            .event("a"),
    )
    .await
    .unwrap();
    let url = format!(
        "http://alice:pw-secret@{}/feed?access_token=token-secret&room=7",
        source.addr()
    );
    let file = Cleanup(temp_path("secret.jsonl"));
    let (code, _, stderr) = run(&["record", &url, "-o", file.0.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&file.0).unwrap();
    for secret in ["pw-secret", "token-secret", "cookie-secret"] {
        assert!(!text.contains(secret), "{secret} in the recording: {text}");
        assert!(!stderr.contains(secret), "{secret} on stderr: {stderr}");
    }
    let rec: Recording = text.parse().unwrap();
    // reqwest sends the userinfo as basic auth, leaving it out of the URL.
    assert_eq!(
        rec.url(),
        format!("http://{}/feed?access_token=redacted&room=7", source.addr())
    );
    let (_, stdout, stderr) = run(&["check", &url, "--duration", "0.5"]).await;
    for secret in ["pw-secret", "token-secret"] {
        assert!(!stdout.contains(secret), "{secret} in the report: {stdout}");
        assert!(!stderr.contains(secret), "{secret} on stderr: {stderr}");
    }
    assert!(stdout.contains("access_token=redacted"), "{stdout}");
}

/// A line that never ends does not grow `record` without bound: counting
/// events stops at the event size limit (16 MiB by default, or
/// --max-event-size) with exit 1 and a message saying so.
#[tokio::test]
async fn record_stops_at_an_event_over_the_size_limit() {
    let endless = "data: ".to_owned() + &"x".repeat(64 * 1024);
    let source = MockServer::start(
        Script::sse()
            .event("small")
            .write(endless.clone())
            .write(endless)
            .stall(),
    )
    .await
    .unwrap();
    let file = Cleanup(temp_path("big.jsonl"));
    let path = file.0.to_str().unwrap();
    let (code, _, stderr) = run(&[
        "record",
        &source.url("/"),
        "-o",
        path,
        "--max-event-size",
        "100000",
        "--timeout",
        "15",
    ])
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("larger than 100000 bytes"), "{stderr}");
    assert!(stderr.contains("recorded 1 events"), "{stderr}");

    // The default limit, 16 MiB, applies without the flag.
    let line = "data: ".to_owned() + &"y".repeat(17 * 1024 * 1024);
    let source = MockServer::start(Script::sse().write(line).stall())
        .await
        .unwrap();
    let (code, _, stderr) = run(&["record", &source.url("/"), "-o", path, "--timeout", "15"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("larger than 16777216 bytes"), "{stderr}");
}

/// --max-bytes stops the recording after exactly N bytes of body.
#[tokio::test]
async fn max_bytes_stops_the_recording_after_n_bytes() {
    let mut script = Script::sse();
    for k in 0..20 {
        script = script.message(&MessageEvent::new(
            "",
            format!("event {k:02}"),
            k.to_string(),
        ));
    }
    let source = MockServer::start(script.stall()).await.unwrap();
    let file = Cleanup(temp_path("bytes.jsonl"));
    let path = file.0.to_str().unwrap();
    let (code, _, stderr) =
        run(&["record", &source.url("/"), "-o", path, "--max-bytes", "50"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("--max-bytes reached: 50 bytes"), "{stderr}");
    let rec: Recording = std::fs::read_to_string(&file.0).unwrap().parse().unwrap();
    assert_eq!(rec.body().len(), 50);
    assert!(rec.body().starts_with(b"id: 0\ndata: event 00\n\nid: 1\n"));
}

/// record's error body and serve's request log escape control characters:
/// a server (or a client of serve) cannot drive the terminal.
#[tokio::test]
async fn record_and_serve_escape_control_characters() {
    let refusing = MockServer::start(Script::status(403).write("no\x1b[31m entry\r\n"))
        .await
        .unwrap();
    let file = Cleanup(temp_path("esc.jsonl"));
    let (code, _, stderr) =
        run(&["record", &refusing.url("/"), "-o", file.0.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    assert!(stderr.contains("no\\u{1b}[31m entry\\r\\n"), "{stderr}");

    // serve logs each request's method and path.
    let (rec_file, _) = record().await;
    let mut served = serve(&[rec_file.0.to_str().unwrap()]).await;
    let mut socket = tokio::net::TcpStream::connect(served.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut socket,
        b"GET /\x1b]0;title\x07\x1b[2J HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut err = served.log();
    let line = tokio::time::timeout(LIMIT, async {
        loop {
            let line = err
                .next_line()
                .await
                .unwrap()
                .expect("serve's stderr ended");
            if line.starts_with("* request") {
                return line;
            }
        }
    })
    .await
    .unwrap();
    assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line:?}");
    assert!(line.contains("/\\u{1b}]0;title\\u{7}\\u{1b}[2J"), "{line}");
}

/// The resident memory of a process, in bytes (Linux).
#[cfg(target_os = "linux")]
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `serve` keeps no request: 24 POSTs of 4 MiB do not stay in its memory
/// (they did, 96 MiB of them, when the mock server recorded every one).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_does_not_keep_request_bodies() {
    use tokio::io::AsyncWriteExt;
    let (file, _) = record().await;
    let mut served = serve(&[file.0.to_str().unwrap()]).await;
    let pid = served.child.id().unwrap();
    let addr = served.addr();
    let mut log = served.log();
    let body = vec![b'x'; 4 * 1024 * 1024];
    let mut baseline = 0;
    for k in 0..24 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /{k} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body).await.unwrap();
        // serve logs a request once it has read it whole.
        tokio::time::timeout(LIMIT, async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.starts_with(&format!("* request {k}:")) {
                    return;
                }
            }
            panic!("serve's stderr ended");
        })
        .await
        .expect("the request logged in time");
        drop(socket);
        if k == 0 {
            baseline = rss(pid);
        }
    }
    let grown = rss(pid).saturating_sub(baseline);
    assert!(
        grown < 40 * 1024 * 1024,
        "serve grew by {} MiB",
        grown >> 20
    );
}

/// serve resumes after a non-ASCII id (it replayed from the start when the
/// mock server could not read the header).
#[tokio::test]
async fn serve_resumes_after_a_non_ascii_id() {
    let source = MockServer::start(
        Script::sse()
            .message(&MessageEvent::new("", "one", "ü-1"))
            .message(&MessageEvent::new("", "two", "ü-2")),
    )
    .await
    .unwrap();
    let file = Cleanup(temp_path("utf8.jsonl"));
    let (code, _, stderr) =
        run(&["record", &source.url("/"), "-o", file.0.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stderr}");
    let served = serve(&[file.0.to_str().unwrap()]).await;
    let mut es = EventSource::builder(&served.url)
        .last_event_id("ü-1")
        .build()
        .unwrap();
    let m = es.next_message_within(LIMIT).await.unwrap();
    assert_eq!((m.data(), m.id()), ("two", "ü-2"));
}

/// record keeps a caller's Accept, adding text/event-stream to it.
#[tokio::test]
async fn record_keeps_the_callers_accept() {
    let source = MockServer::start(source_script()).await.unwrap();
    let file = Cleanup(temp_path("accept.jsonl"));
    let (code, _, stderr) = run(&[
        "record",
        &source.url("/"),
        "-o",
        file.0.to_str().unwrap(),
        "-H",
        "Accept: application/json",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let r = &source.requests()[0];
    assert_eq!(
        r.header("accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(r.header("cache-control"), Some("no-cache"));
}
