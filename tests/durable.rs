//! `examples/durable.rs` under SIGKILL: run as a child process against an
//! in-process server of 1,000 events, killed at random instants and started
//! again, its output holds every event exactly once, in order.
//!
//! The example must be built: `cargo test --all-features` builds every
//! example before running the tests (a filtered run, `cargo test --test
//! durable`, does not: run `cargo build --all-features --example durable`
//! first). The binary is looked up next to this test's own
//! (`target/<profile>/examples/durable`), and a missing or stale one fails
//! the test with that advice rather than testing old code.

mod support;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ssekit::{CheckpointStore, FileCheckpoints};
use support::{Reply, TestServer};

/// Events the server has, with IDs 1 to `EVENTS`.
const EVENTS: u32 = 1000;
/// The pause after each event, so that kills land mid-stream.
const PACE: Duration = Duration::from_millis(1);
/// How long one run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Event `i`'s data: every seventh has several lines, a tab and a
/// backslash, to exercise the example's escaping.
fn data(i: u32) -> String {
    if i % 7 == 0 {
        format!("line one of {i}\n\tline two \\n {i}\r")
    } else {
        format!("event {i}")
    }
}

/// The event as the server sends it (`\r` cannot be sent in data: it ends
/// a line, so event 7's data is sent without it and read back so).
fn wire(i: u32) -> String {
    let mut s = format!("id: {i}\n");
    for line in data(i).trim_end_matches('\r').split('\n') {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    s
}

fn expected(i: u32) -> String {
    data(i).trim_end_matches('\r').to_owned()
}

/// A server that honours `Last-Event-ID`: it sends the events after it,
/// one every [`PACE`], then ends the body; the client reconnects (after
/// `retry: 20`) and, having seen the last event, gets `204 No Content`.
async fn server() -> TestServer {
    TestServer::start(|req, _| {
        let after: u32 = req
            .header("last-event-id")
            .map_or(0, |id| id.parse().expect("a numeric Last-Event-ID"));
        if after >= EVENTS {
            return Reply::status(204);
        }
        let mut reply = Reply::sse().body("retry: 20\n\n");
        for i in after + 1..=EVENTS {
            reply = reply.body(wire(i)).sleep(PACE);
        }
        reply
    })
    .await
}

/// The built example, next to this test binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir
        .join("examples")
        .join(format!("durable{}", std::env::consts::EXE_SUFFIX));
    let advice = "run `cargo build --all-features --example durable` (a full \
                  `cargo test --all-features` builds it)";
    let built = fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}: {advice}", bin.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = newest_source(&[root.join("examples/durable.rs"), root.join("src")]);
    assert!(
        newest <= built,
        "{} is older than the sources: {advice}",
        bin.display()
    );
    bin
}

fn newest_source(paths: &[PathBuf]) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut todo = paths.to_vec();
    while let Some(p) = todo.pop() {
        let meta = fs::metadata(&p).unwrap();
        if meta.is_dir() {
            todo.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|e| e == "rs") {
            newest = newest.max(meta.modified().unwrap());
        }
    }
    newest
}

/// A fresh directory for one test's files, removed on success.
struct Files {
    dir: PathBuf,
    store: PathBuf,
    out: PathBuf,
    log: PathBuf,
}

impl Files {
    fn new(test: &str) -> Files {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ssekit-durable-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Files {
            store: dir.join("store"),
            out: dir.join("out.tsv"),
            log: dir.join("stderr.log"),
            dir,
        }
    }

    /// Starts the example; its stderr goes to `log`.
    fn spawn(&self, url: &str, abort_after: Option<u32>) -> Child {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(example());
        cmd.arg(url)
            .arg("--store")
            .arg(&self.store)
            .arg("--out")
            .arg(&self.out)
            // The abort of the test hook may dump core: not in the crate.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        match abort_after {
            Some(n) => cmd.env("SSEKIT_DURABLE_ABORT_AFTER", n.to_string()),
            None => cmd.env_remove("SSEKIT_DURABLE_ABORT_AFTER"),
        };
        cmd.spawn().unwrap()
    }

    /// Complete lines in `--out` now.
    fn lines(&self) -> usize {
        fs::read(&self.out).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
    }

    fn stored(&self, url: &str) -> Option<String> {
        FileCheckpoints::new(&self.store).load(url).unwrap()
    }

    /// `--out` parsed: `(id, data)` per line, unescaped; panics on a line
    /// that is not `ID<TAB>DATA` or does not end with a line feed.
    fn events(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(&self.out).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
        text.lines()
            .map(|line| {
                let (id, data) = line.split_once('\t').unwrap_or_else(|| panic!("{line:?}"));
                assert!(!data.contains('\t'), "one raw tab per line: {line:?}");
                (unescape(id), unescape(data))
            })
            .collect()
    }

    /// Asserts that `--out` holds events 1 to [`EVENTS`] exactly once and
    /// in order, with their data.
    fn assert_complete(&self) {
        let events = self.events();
        let ids: Vec<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
        let want: Vec<String> = (1..=EVENTS).map(|i| i.to_string()).collect();
        if ids != want {
            let dup = ids.windows(2).find(|w| w[0] == w[1]);
            panic!(
                "{} lines, first duplicate {dup:?}, first wrong line {:?}\nlog:\n{}",
                ids.len(),
                ids.iter().zip(&want).position(|(a, b)| a != b),
                self.log_text()
            );
        }
        for (i, (_, data)) in (1..).zip(&events) {
            assert_eq!(*data, expected(i), "event {i}'s data");
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {} for inspection", self.dir.display());
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next() {
                Some('\\') => '\\',
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                other => panic!("bad escape \\{other:?} in {s:?}"),
            },
            c => c,
        });
    }
    out
}

/// Waits for `child` to exit, polling so the Tokio runtime (the server)
/// keeps running; kills it and panics after [`RUN_LIMIT`].
async fn wait(child: &mut Child, files: &Files) -> ExitStatus {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the example did not finish within {RUN_LIMIT:?}; log:\n{}",
                files.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills the child with SIGKILL (unless it has already exited) and reaps it.
fn kill(child: &mut Child) -> Option<ExitStatus> {
    if let Some(done) = child.try_wait().unwrap() {
        return Some(done);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

/// 20 SIGKILLs at random instants, then a run to the end. Half the kills
/// come at any instant of a run (start-up, connecting, mid-stream); the
/// other half once it has appended something, a random moment later, so
/// that most land between appends, commits and reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_instants_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let server = server().await;
    let url = server.url("/events");
    let files = Files::new("sigkill");
    let mut rng = SmallRng::seed_from_u64(0x55e_c0de);
    let mut mid_stream = 0;
    for k in 0..20 {
        let before = files.lines();
        let mut child = files.spawn(&url, None);
        if k % 2 == 0 {
            let delay = Duration::from_millis(rng.random_range(0..120));
            tokio::time::sleep(delay).await;
        } else {
            let deadline = Instant::now() + RUN_LIMIT;
            while files.lines() == before && Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let delay = Duration::from_micros(rng.random_range(0..40_000));
            tokio::time::sleep(delay).await;
        }
        if let Some(status) = kill(&mut child) {
            // It finished before the kill: all 1,000 are in.
            assert!(status.success(), "{status}; log:\n{}", files.log_text());
            break;
        }
        let after = files.lines();
        if after > before && after < EVENTS as usize {
            mid_stream += 1;
        }
        // Whatever the instant, what is there is a prefix, once each.
        let events = files.events_prefix_ok();
        assert!(events <= EVENTS as usize);
    }
    let mut child = files.spawn(&url, None);
    let status = wait(&mut child, &files).await;
    assert!(status.success(), "{status}; log:\n{}", files.log_text());
    files.assert_complete();
    assert_eq!(files.stored(&url).as_deref(), Some("1000"));
    assert!(
        mid_stream >= 5,
        "only {mid_stream} of 20 kills landed mid-stream; log:\n{}",
        files.log_text()
    );
    server.assert_no_handler_panics();
    eprintln!(
        "{mid_stream} kills mid-stream, {} requests, {:?}",
        server.request_count(),
        started.elapsed()
    );
}

/// The kill between the append and the commit, forced by the example's
/// test hook 10 times, plus a torn line left by hand: each restart resumes
/// after the last line of `--out` rather than the older stored ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_append_and_commit_does_not_duplicate() {
    let started = Instant::now();
    let server = server().await;
    let url = server.url("/events");
    let files = Files::new("between");
    let mut rng = SmallRng::seed_from_u64(21);
    for k in 0..10 {
        let before = files.lines();
        let n = rng.random_range(1..=40);
        let mut child = files.spawn(&url, Some(n));
        let status = wait(&mut child, &files).await;
        assert!(!status.success(), "run {k}: the hook aborts: {status}");
        let events = files.events();
        assert_eq!(
            events.len(),
            before + n as usize,
            "run {k}: {n} more events"
        );
        let last = &events.last().unwrap().0;
        let previous = events.len().checked_sub(2).map(|i| events[i].0.clone());
        assert_eq!(
            files.stored(&url),
            previous,
            "run {k}: killed after appending {last}, before committing it"
        );
        if k == 4 {
            // A kill in the middle of an append: half a line.
            let mut out = File::options().append(true).open(&files.out).unwrap();
            std::io::Write::write_all(&mut out, b"999\tpartial da").unwrap();
        }
    }
    let mut child = files.spawn(&url, None);
    let status = wait(&mut child, &files).await;
    assert!(status.success(), "{status}; log:\n{}", files.log_text());
    files.assert_complete();
    assert_eq!(files.stored(&url).as_deref(), Some("1000"));
    let log = files.log_text();
    assert!(log.contains("torn last line"), "{log}");
    assert!(!log.contains("not one of the last two"), "{log}");
    server.assert_no_handler_panics();
    eprintln!(
        "{} requests, {:?}",
        server.request_count(),
        started.elapsed()
    );
}

impl Files {
    /// Asserts that `--out`'s complete lines are events 1, 2, ... in order
    /// (a torn last line allowed, as a kill may leave one); their number.
    fn events_prefix_ok(&self) -> usize {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
        for (i, line) in (1..).zip(complete.lines()) {
            let (id, data) = line.split_once('\t').unwrap();
            assert_eq!(id, i.to_string(), "line {i}; log:\n{}", self.log_text());
            assert_eq!(unescape(data), expected(i));
        }
        complete.lines().count()
    }
}
