//! Checkpoints: the file store's crash safety and format, batching, flush
//! on drop, and streams that start from a stored ID.

mod support;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ssekit::{
    Checkpoint, CheckpointStore, Dispatcher, Event, EventSource, FileCheckpoints,
    MemoryCheckpoints, MessageEvent, Overflow, DEFAULT_FLUSH_EVERY, DEFAULT_FLUSH_INTERVAL,
};
use support::{Reply, TestServer};

/// A fresh, empty directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ssekit-ckpt-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    p.into()
}

/// Counts the saves that reach a store (for [`FileCheckpoints`]: each is
/// one write and two fsyncs).
struct Counting<S> {
    inner: S,
    saves: Arc<AtomicU64>,
}

impl<S: CheckpointStore> CheckpointStore for Counting<S> {
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        self.inner.load(name)
    }
    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(name, id)
    }
}

/// A store whose saves fail until `broken` is cleared.
struct Failing {
    broken: Arc<std::sync::atomic::AtomicBool>,
    inner: MemoryCheckpoints,
}

impl CheckpointStore for Failing {
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        self.inner.load(name)
    }
    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other("disk full"));
        }
        self.inner.save(name, id)
    }
}

#[test]
fn file_store_round_trips_and_survives_reopening() {
    let dir = TempDir::new("round");
    let path = dir.path("checkpoints");
    let store = FileCheckpoints::new(&path);
    assert_eq!(store.path(), path);
    assert_eq!(store.load("orders").unwrap(), None, "no file yet");
    assert!(!path.exists(), "a load creates nothing");

    store.save("orders", "41").unwrap();
    store.save("orders", "42").unwrap();
    store.save("audit", "a-7").unwrap();
    assert_eq!(store.load("orders").unwrap().as_deref(), Some("42"));

    let reopened = FileCheckpoints::new(&path);
    assert_eq!(reopened.load("orders").unwrap().as_deref(), Some("42"));
    assert_eq!(reopened.load("audit").unwrap().as_deref(), Some("a-7"));
    assert_eq!(reopened.load("nothing").unwrap(), None);
    assert!(!tmp_of(&path).exists(), "no temporary file after a save");
}

#[test]
fn any_name_and_id_is_kept_apart_and_exact() {
    let dir = TempDir::new("names");
    let path = dir.path("checkpoints");
    let store = FileCheckpoints::new(&path);
    let names = [
        "",
        "orders",
        "orders/billing",
        "../../etc/passwd",
        "tab\there",
        "new\nline",
        "cr\rhere",
        "back\\slash",
        "back\\tslash",
        "ünïcödé ✓",
        "end",
        "ssekit-checkpoints 1",
    ];
    for (i, name) in names.iter().enumerate() {
        store.save(name, &format!("id\t{i}\\n")).unwrap();
    }
    let reopened = FileCheckpoints::new(&path);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            reopened.load(name).unwrap(),
            Some(format!("id\t{i}\\n")),
            "name {name:?}"
        );
    }
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("ssekit-checkpoints 1\n"), "{text}");
    assert!(text.ends_with("\nend\n"), "{text}");
    assert_eq!(
        text.lines().count(),
        names.len() + 2,
        "one line per name: {text}"
    );
    assert_eq!(
        fs::read_dir(&dir.0).unwrap().count(),
        1,
        "names never become files of their own"
    );
}

#[test]
fn a_crash_before_the_rename_leaves_the_old_id() {
    let dir = TempDir::new("crash");
    let path = dir.path("checkpoints");
    let store = FileCheckpoints::new(&path);
    store.save("orders", "1").unwrap();
    let committed = fs::read(&path).unwrap();

    // What a crash leaves at each instant before the rename: an empty
    // temporary file, a partial write, a complete but unrenamed one,
    // garbage that is not even UTF-8.
    let tmp = tmp_of(&path);
    let complete = String::from_utf8(committed.clone())
        .unwrap()
        .replace("\t1\n", "\t2\n");
    for leftover in [
        &b""[..],
        &b"ssekit-checkpoints 1\norders\t2"[..],
        complete.as_bytes(),
        &[0xff, 0x00, 0xfe, b'\n'][..],
    ] {
        fs::write(&tmp, leftover).unwrap();
        let after_crash = FileCheckpoints::new(&path);
        assert_eq!(after_crash.load("orders").unwrap().as_deref(), Some("1"));
        assert!(!tmp.exists(), "the leftover temporary file is removed");
        assert_eq!(
            fs::read(&path).unwrap(),
            committed,
            "and the file untouched"
        );
    }

    // A leftover that the next load did not remove is replaced by a save.
    fs::write(&tmp, b"partial").unwrap();
    store.save("orders", "3").unwrap();
    assert!(!tmp.exists());
    assert_eq!(
        FileCheckpoints::new(&path)
            .load("orders")
            .unwrap()
            .as_deref(),
        Some("3")
    );
}

#[test]
fn a_damaged_file_is_an_error_naming_the_path_and_is_not_overwritten() {
    let dir = TempDir::new("damaged");
    let path = dir.path("checkpoints");
    for damaged in [
        &b"ssekit-checkpoints 1\norders\t7\n"[..], // no end line: cut short
        &b"orders 7\n"[..],
        &[0xc3, 0x28][..],
    ] {
        fs::write(&path, damaged).unwrap();
        let store = FileCheckpoints::new(&path);
        let e = store.load("orders").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
        let e = store.save("orders", "8").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            fs::read(&path).unwrap(),
            damaged,
            "left for a human to look at"
        );
    }
}

#[test]
fn a_missing_directory_is_an_error_naming_the_path() {
    let dir = TempDir::new("nodir");
    let path = dir.path("missing/checkpoints");
    let store = FileCheckpoints::new(&path);
    assert_eq!(store.load("orders").unwrap(), None);
    let e = store.save("orders", "1").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
}

#[test]
fn commits_are_batched_by_count() {
    let store = MemoryCheckpoints::new();
    let mut checkpoint = Checkpoint::new(store.clone(), "orders")
        .flush_every(10)
        .flush_interval(None);
    for i in 1..=95 {
        checkpoint.commit_id(&i.to_string()).unwrap();
    }
    assert_eq!(store.saves(), 9, "one save per 10 commits");
    assert_eq!(store.get("orders").as_deref(), Some("90"));
    assert!(checkpoint.is_pending());
    assert_eq!(checkpoint.last_id(), Some("95"));
    checkpoint.flush().unwrap();
    checkpoint.flush().unwrap();
    assert_eq!(
        store.saves(),
        10,
        "a flush with nothing pending saves nothing"
    );
    assert_eq!(store.get("orders").as_deref(), Some("95"));
    drop(checkpoint);
    assert_eq!(store.saves(), 10, "nothing pending at the drop");
}

#[test]
fn default_batching_costs_one_fsync_pair_per_hundred_commits_or_second() {
    assert_eq!(DEFAULT_FLUSH_EVERY, 100);
    assert_eq!(DEFAULT_FLUSH_INTERVAL, Duration::from_secs(1));
    let dir = TempDir::new("default");
    let path = dir.path("checkpoints");
    let saves = Arc::new(AtomicU64::new(0));
    let store = Counting {
        inner: FileCheckpoints::new(&path),
        saves: saves.clone(),
    };
    let started = Instant::now();
    let mut checkpoint = Checkpoint::new(store, "orders");
    for i in 1..=1000 {
        checkpoint.commit_id(&i.to_string()).unwrap();
    }
    drop(checkpoint);
    // 10 saves by count, plus at most one per elapsed second (the interval
    // fires on a loaded machine), plus the drop's.
    let bound = 10 + started.elapsed().as_secs() + 1;
    let n = saves.load(Ordering::SeqCst);
    assert!(
        (10..=bound).contains(&n),
        "{n} saves for 1000 commits (bound {bound})"
    );
    assert_eq!(
        FileCheckpoints::new(&path)
            .load("orders")
            .unwrap()
            .as_deref(),
        Some("1000")
    );
}

#[test]
fn commits_are_saved_after_the_interval() {
    let store = MemoryCheckpoints::new();
    let mut checkpoint = Checkpoint::new(store.clone(), "orders")
        .flush_every(0)
        .flush_interval(Some(Duration::from_millis(200)));
    let created = Instant::now();
    checkpoint.commit_id("1").unwrap();
    checkpoint.commit_id("2").unwrap();
    if created.elapsed() < Duration::from_millis(200) {
        assert_eq!(store.saves(), 0, "within the interval");
    }
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(store.get("orders"), None, "no background task saves");
    checkpoint.commit_id("3").unwrap();
    assert_eq!(
        store.get("orders").as_deref(),
        Some("3"),
        "the first commit after it"
    );
    let saved = store.saves();
    checkpoint.commit_id("4").unwrap();
    assert_eq!(
        store.saves(),
        saved,
        "the interval starts again at the save"
    );
}

#[test]
fn a_zero_interval_or_a_count_of_one_saves_every_commit() {
    let store = MemoryCheckpoints::new();
    let mut checkpoint = Checkpoint::new(store.clone(), "x").flush_every(1);
    for i in 1..=5 {
        checkpoint.commit_id(&i.to_string()).unwrap();
        assert_eq!(store.saves(), i);
    }
    let store = MemoryCheckpoints::new();
    let mut checkpoint = Checkpoint::new(store.clone(), "x")
        .flush_every(0)
        .flush_interval(Some(Duration::ZERO));
    for i in 1..=5 {
        checkpoint.commit_id(&i.to_string()).unwrap();
        assert_eq!(store.saves(), i);
    }
}

#[test]
fn empty_and_repeated_ids_do_not_move_the_checkpoint() {
    let store = MemoryCheckpoints::new();
    store.save("orders", "7").unwrap();
    let mut checkpoint = Checkpoint::new(store.clone(), "orders").flush_every(2);
    // No ID yet, or a server that reset it with an empty `id:`.
    checkpoint
        .commit(&MessageEvent::new("message", "x", ""))
        .unwrap();
    checkpoint.commit_id("").unwrap();
    assert_eq!(checkpoint.last_id(), None);
    assert!(!checkpoint.is_pending());
    // Events without an `id:` field carry the previous ID (sticky).
    checkpoint
        .commit(&MessageEvent::new("message", "a", "8"))
        .unwrap();
    checkpoint
        .commit(&MessageEvent::new("message", "b", "8"))
        .unwrap();
    checkpoint
        .commit(&MessageEvent::new("message", "c", "8"))
        .unwrap();
    assert_eq!(store.saves(), 1, "only the store's own save so far");
    assert!(
        checkpoint.is_pending(),
        "repeats do not count towards the batch"
    );
    checkpoint.commit_id("").unwrap();
    drop(checkpoint);
    assert_eq!(
        store.get("orders").as_deref(),
        Some("8"),
        "never replaced by empty"
    );
}

#[test]
fn the_pending_id_is_saved_on_drop() {
    let dir = TempDir::new("drop");
    let path = dir.path("checkpoints");
    {
        let mut checkpoint = Checkpoint::new(FileCheckpoints::new(&path), "orders");
        for i in 1..=3 {
            checkpoint.commit_id(&i.to_string()).unwrap();
        }
        assert!(!path.exists(), "batched: nothing written yet");
    }
    assert_eq!(
        FileCheckpoints::new(&path)
            .load("orders")
            .unwrap()
            .as_deref(),
        Some("3")
    );

    // Several handles may share one store (one per Dispatcher subscriber).
    let shared = Arc::new(FileCheckpoints::new(&path));
    let mut billing = Checkpoint::new(shared.clone(), "orders/billing");
    let mut audit = Checkpoint::new(shared.clone(), "orders/audit");
    billing.commit_id("10").unwrap();
    audit.commit_id("6").unwrap();
    drop((billing, audit));
    assert_eq!(
        shared.load("orders/billing").unwrap().as_deref(),
        Some("10")
    );
    assert_eq!(shared.load("orders/audit").unwrap().as_deref(), Some("6"));
    assert_eq!(shared.load("orders").unwrap().as_deref(), Some("3"));
}

#[test]
fn a_failed_save_keeps_the_id_pending() {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let inner = MemoryCheckpoints::new();
    let store = Failing {
        broken: broken.clone(),
        inner: inner.clone(),
    };
    let mut checkpoint = Checkpoint::new(store, "orders").flush_every(1);
    let e = checkpoint.commit_id("1").unwrap_err();
    assert_eq!(e.to_string(), "disk full");
    assert!(checkpoint.is_pending());
    assert!(checkpoint.flush().is_err());
    broken.store(false, Ordering::SeqCst);
    checkpoint.commit_id("2").unwrap();
    assert_eq!(inner.get("orders").as_deref(), Some("2"));
    assert!(!checkpoint.is_pending());

    broken.store(true, Ordering::SeqCst);
    checkpoint.commit_id("3").unwrap_err();
    drop(checkpoint); // logs, does not panic
    assert_eq!(inner.get("orders").as_deref(), Some("2"));
}

#[test]
fn the_builder_starts_from_the_stored_id() {
    let store = MemoryCheckpoints::new();
    let url = "http://127.0.0.1:9/events";
    // Nothing stored: `last_event_id` (or nothing) is the start.
    let es = EventSource::builder(url)
        .last_event_id("5")
        .checkpoint(&store, "orders")
        .build()
        .unwrap();
    assert_eq!(es.last_event_id(), "5");
    store.save("orders", "41").unwrap();
    // A stored ID wins, whichever is set first.
    for es in [
        EventSource::builder(url)
            .last_event_id("5")
            .checkpoint(&store, "orders"),
        EventSource::builder(url)
            .checkpoint(&store, "orders")
            .last_event_id("5"),
    ] {
        assert_eq!(es.build().unwrap().last_event_id(), "41");
    }
    // Any store, through a reference to a trait object too.
    let dyn_store: &dyn CheckpointStore = &store;
    let es = EventSource::builder(url)
        .checkpoint(dyn_store, "orders")
        .build()
        .unwrap();
    assert_eq!(es.last_event_id(), "41");
    // A stored ID that no header can carry is refused like any other.
    store.save("bad", "a\u{7f}b").unwrap();
    let e = EventSource::builder(url)
        .checkpoint(&store, "bad")
        .build()
        .unwrap_err();
    assert!(e.is_builder(), "{e}");
}

#[test]
fn a_load_error_is_reported_by_build_with_the_path() {
    let dir = TempDir::new("loaderr");
    let path = dir.path("checkpoints");
    fs::write(&path, "not a checkpoint file\n").unwrap();
    let store = FileCheckpoints::new(&path);
    let e = EventSource::builder("http://127.0.0.1:9/events")
        .checkpoint(&store, "orders")
        .build()
        .unwrap_err();
    assert!(e.is_builder(), "{e}");
    assert!(e.to_string().contains("\"orders\""), "{e}");
    let full = format!("{e:#}");
    assert!(full.contains(&*path.to_string_lossy()), "{full}");
    let io = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .expect("the io::Error is the source");
    assert_eq!(io.kind(), io::ErrorKind::InvalidData);
}

/// The whole loop: a consumer commits, stops, and a second run resumes
/// after the last committed event, sending it as `Last-Event-ID`.
#[tokio::test]
async fn a_restarted_consumer_resumes_after_the_last_commit() {
    let server = TestServer::start(|req, _| {
        let after: u32 = req
            .header("last-event-id")
            .map_or(0, |id| id.parse().unwrap());
        if after >= 6 {
            return Reply::status(204);
        }
        let body: String = (after + 1..=6)
            .map(|i| format!("id: {i}\ndata: {i}\n\n"))
            .collect();
        Reply::sse().body(format!("retry: 10\n{body}"))
    })
    .await;
    let dir = TempDir::new("resume");
    let path = dir.path("checkpoints");

    // First run: processes 1..=3, then crashes-by-drop in the middle.
    let mut seen = Vec::new();
    {
        let store = Arc::new(FileCheckpoints::new(&path));
        let mut es = EventSource::builder(server.url("/"))
            .checkpoint(&*store, "feed")
            .build()
            .unwrap();
        let mut checkpoint = Checkpoint::new(store, "feed");
        while let Some(ev) = es.next().await {
            if let Event::Message(m) = ev.unwrap() {
                seen.push(m.data().to_owned());
                checkpoint.commit(&m).unwrap();
                if m.id() == "3" {
                    break;
                }
            }
        }
    }
    // Second run: resumes after 3, then the server ends with 204.
    let store = FileCheckpoints::new(&path);
    assert_eq!(store.load("feed").unwrap().as_deref(), Some("3"));
    let mut es = EventSource::builder(server.url("/"))
        .checkpoint(&store, "feed")
        .build()
        .unwrap();
    let mut checkpoint = Checkpoint::new(store, "feed");
    let run = async {
        while let Some(ev) = es.next().await {
            if let Event::Message(m) = ev.unwrap() {
                seen.push(m.data().to_owned());
                checkpoint.commit(&m).unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the stream ends at the 204");
    checkpoint.flush().unwrap();
    assert_eq!(seen, ["1", "2", "3", "4", "5", "6"]);
    let ids: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("last-event-id").map(str::to_owned))
        .collect();
    assert_eq!(ids[0], None);
    assert_eq!(
        ids[1].as_deref(),
        Some("3"),
        "the second run starts at the checkpoint"
    );
    assert_eq!(
        FileCheckpoints::new(&path).load("feed").unwrap().as_deref(),
        Some("6")
    );
}

#[test]
fn handles_and_stores_move_between_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Checkpoint>();
    send_sync::<Checkpoint>();
    send_sync::<FileCheckpoints>();
    send_sync::<MemoryCheckpoints>();
    send_sync::<Arc<dyn CheckpointStore>>();
}

/// The rule the module docs give for a `Dispatcher` with ordered IDs: each
/// subscriber commits to its own name; a restart resumes from the oldest,
/// and each subscriber skips what it had already processed. Every event is
/// then processed once by its subscriber although the two had got to
/// different places when the first run stopped.
#[tokio::test]
async fn dispatcher_subscribers_commit_to_their_own_names_and_resume_from_the_oldest() {
    // Odd IDs are of type `a`, even ones of type `b`.
    let server = TestServer::start(|req, _| {
        let after: u32 = req
            .header("last-event-id")
            .map_or(0, |id| id.parse().unwrap());
        if after >= 10 {
            return Reply::status(204);
        }
        let body: String = (after + 1..=10)
            .map(|i| {
                let ty = if i % 2 == 1 { "a" } else { "b" };
                format!("id: {i}\nevent: {ty}\ndata: {i}\n\n")
            })
            .collect();
        Reply::sse().body(format!("retry: 10\n{body}"))
    })
    .await;
    let store = Arc::new(MemoryCheckpoints::new());
    let names = ["feed/a", "feed/b"];
    let mut processed: [Vec<u32>; 2] = Default::default();

    for run in 0..2 {
        // Resume from the oldest subscriber's ID; none means the start.
        let ids: Vec<Option<u32>> = names
            .iter()
            .map(|n| store.load(n).unwrap().map(|id| id.parse().unwrap()))
            .collect();
        let resume = if ids.iter().any(Option::is_none) {
            None
        } else {
            ids.iter().flatten().min().copied()
        };
        let mut builder = EventSource::builder(server.url("/"));
        if let Some(id) = resume {
            builder = builder.last_event_id(id.to_string());
        }
        let hub = Dispatcher::new(builder.build().unwrap(), 16, Overflow::Backpressure);
        let mut tasks = Vec::new();
        for (k, ty) in ["a", "b"].into_iter().enumerate() {
            let mut sub = hub.subscribe(ty);
            let mut checkpoint = Checkpoint::new(store.clone(), names[k]).flush_every(1);
            let done = ids[k];
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while let Some(Ok(m)) = sub.next().await {
                    let id: u32 = m.id().parse().unwrap();
                    if done.is_some_and(|d| id <= d) {
                        continue; // a replay of what this subscriber did
                    }
                    // In the first run `b` stops (crashes) after event 4.
                    if run == 0 && ty == "b" && id > 4 {
                        break;
                    }
                    seen.push(id);
                    checkpoint.commit(&m).unwrap();
                }
                seen
            }));
        }
        hub.start();
        drop(hub);
        for (k, task) in tasks.into_iter().enumerate() {
            let seen = tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the subscriptions end at the 204")
                .unwrap();
            processed[k].extend(seen);
        }
    }
    assert_eq!(processed[0], [1, 3, 5, 7, 9]);
    assert_eq!(processed[1], [2, 4, 6, 8, 10]);
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("last-event-id").map(str::to_owned))
        .collect();
    assert_eq!(sent[0], None);
    assert!(
        sent.contains(&Some("4".to_owned())),
        "the second run resumes from `b`'s 4, not `a`'s 9: {sent:?}"
    );
}

/// What the module docs say of end markers: the `end_on_data` sentinel is
/// not yielded, so the checkpoint holds the event before it, and a
/// restarted stream gets the sentinel again and ends at once.
#[tokio::test]
async fn an_end_sentinel_is_never_committed_and_ends_the_restarted_stream() {
    let server = TestServer::start(|req, _| {
        let after: u32 = req
            .header("last-event-id")
            .map_or(0, |id| id.parse().unwrap());
        let body: String = (after + 1..=4)
            .map(|i| {
                let data = if i == 4 {
                    "[DONE]".to_owned()
                } else {
                    i.to_string()
                };
                format!("id: {i}\ndata: {data}\n\n")
            })
            .collect();
        Reply::sse().body(body).stall()
    })
    .await;
    let store = MemoryCheckpoints::new();
    for run in 0..2 {
        let mut es = EventSource::builder(server.url("/"))
            .checkpoint(&store, "llm")
            .end_on_data("[DONE]")
            .build()
            .unwrap();
        let mut checkpoint = Checkpoint::new(store.clone(), "llm");
        let mut seen = Vec::new();
        let run_to_end = async {
            while let Some(ev) = es.next().await {
                if let Event::Message(m) = ev.unwrap() {
                    seen.push(m.data().to_owned());
                    checkpoint.commit(&m).unwrap();
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), run_to_end)
            .await
            .expect("the sentinel ends the stream");
        drop(checkpoint);
        let want: &[&str] = if run == 0 { &["1", "2", "3"] } else { &[] };
        assert_eq!(seen, want, "run {run}");
        assert_eq!(store.get("llm").as_deref(), Some("3"), "run {run}");
    }
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("last-event-id").map(str::to_owned))
        .collect();
    assert_eq!(sent, [None, Some("3".to_owned())]);
}

/// What the module docs say of requests that are not a `GET`: the stored
/// ID goes out as `Last-Event-ID` on the request itself, body and all.
#[tokio::test]
async fn on_a_post_the_stored_id_goes_out_with_the_request_itself() {
    let server = TestServer::start(|_, _| Reply::status(204)).await;
    let store = MemoryCheckpoints::new();
    store.save("call", "17").unwrap();
    let mut es = EventSource::post(server.url("/"))
        .body("prompt")
        .resume_by_get(true)
        .checkpoint(&store, "call")
        .build()
        .unwrap();
    while let Some(ev) = es.next().await {
        ev.unwrap();
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].header("last-event-id"), Some("17"));
    assert_eq!(requests[0].body_text(), "prompt");
}
