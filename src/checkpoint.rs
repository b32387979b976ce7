//! Checkpoints: the last event ID a consumer has processed, kept across
//! restarts.
//!
//! A [`CheckpointStore`] maps a stream name to an event ID.
//! [`FileCheckpoints`] keeps them in one file that survives a crash at any
//! instant; [`MemoryCheckpoints`] keeps them in memory, for tests. A
//! [`Checkpoint`] is the handle a consumer commits through, batching the
//! writes; [`EventSourceBuilder::checkpoint`] starts a stream from the
//! stored ID.
//!
//! ```no_run
//! use futures::StreamExt;
//! use ssekit::{Checkpoint, Event, EventSource, FileCheckpoints};
//!
//! # async fn handle(_: &ssekit::MessageEvent) {}
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = FileCheckpoints::new("/var/lib/orders/checkpoints");
//! let mut es = EventSource::builder("https://example.com/orders")
//!     .checkpoint(&store, "orders") // resume after the last processed event
//!     .build()?;
//! let mut checkpoint = Checkpoint::new(store, "orders");
//! while let Some(event) = es.next().await {
//!     if let Event::Message(m) = event? {
//!         handle(&m).await; // first process the event...
//!         checkpoint.commit(&m)?; // ...then commit it
//!     }
//! }
//! checkpoint.flush()?;
//! # Ok(())
//! # }
//! ```
//!
//! # What a commit means
//!
//! Commit an event after it has been processed: a crash then redelivers
//! the events committed since the last save and those not yet processed,
//! and loses none (at-least-once delivery; `examples/durable.rs` shows how
//! to make it exactly-once). What to commit in each case:
//!
//! - **Events without an ID.** An event's [`id`](MessageEvent::id) is the
//!   last ID in force when it was dispatched (SPEC rule 14: IDs are
//!   sticky), so an event sent without an `id:` field has the ID of the
//!   event before it, and committing it changes nothing. An empty ID (no
//!   ID yet, or a server that reset it with an empty `id:`) never moves
//!   the checkpoint either: a stored ID is only ever replaced by another
//!   ID. A server whose events carry no IDs cannot be resumed, and a
//!   checkpoint does not help.
//! - **A [`Dispatcher`](crate::Dispatcher) with several subscribers.** The
//!   stream resumes from one ID, which is only safe if every subscriber
//!   has processed every event up to it. Subscribers progress
//!   independently, and ssekit cannot order opaque IDs, so pick one of two
//!   rules:
//!   - *IDs you can order* (counters, timestamps, log offsets): each
//!     subscriber commits to its own name (`"orders/billing"`,
//!     `"orders/audit"`); at start, [`load`](CheckpointStore::load) every
//!     subscriber's ID, resume the stream from the *oldest* (no ID at all
//!     means from the start), and let each subscriber skip the events at
//!     or before its own ID: those are replays of what it already did.
//!     A subscriber whose events are rare holds the resume point back;
//!     that costs replayed (and skipped) events, never lost ones.
//!   - *Opaque IDs*: commit from one place that sees every event after all
//!     of its handlers returned, for instance one loop over the stream (or
//!     a [`subscribe_all`](crate::Dispatcher::subscribe_all) subscription)
//!     that calls the handlers itself.
//!
//!   Committing from each subscriber to one shared name is wrong: the
//!   fastest subscriber's ID would win, and a crash would skip what the
//!   slower ones had not yet processed. Keep the default
//!   [`Overflow::Backpressure`](crate::Overflow::Backpressure): under
//!   [`Overflow::Lag`](crate::Overflow::Lag) a subscriber told
//!   [`Lagged`](crate::SubscriptionError::Lagged) has lost events, and its
//!   next commit would skip them for good.
//! - **End markers.** The sentinel of
//!   [`end_on_data`](crate::EventSourceBuilder::end_on_data) is not
//!   yielded, so it is never committed: the checkpoint holds the last event
//!   before it, and a restarted stream asks for what follows that event
//!   (typically the sentinel again, which ends the stream at once). An
//!   [`end_on_event`](crate::EventSourceBuilder::end_on_event) event is
//!   yielded and committed like any other. Either way a stored ID does not
//!   record that the stream finished; record that yourself if it matters.
//! - **A request that is not a `GET`.** The stored ID is sent as
//!   `Last-Event-ID` on the request itself, which re-sends the request
//!   (and its body): most servers answer a new `POST` with a new answer
//!   and ignore the header, and an LLM prompt or an MCP tool call would
//!   run again. [`resume_by_get`](crate::EventSourceBuilder::resume_by_get)
//!   resumes by `GET` only within one stream's life. To resume an answer
//!   after a restart, build a `GET` stream to the resume URL with
//!   [`checkpoint`](crate::EventSourceBuilder::checkpoint) instead of
//!   re-sending the request; a stored ID is meaningful only to the server
//!   (and session) that issued it.
//!
//! # Why the store is synchronous
//!
//! [`CheckpointStore`] is a plain trait, not an async one:
//!
//! - it is called rarely (at start, and once per batch of commits), so a
//!   short blocking call costs little: a [`FileCheckpoints`] save is one
//!   small write and two `fsync`s, well under a millisecond to a few
//!   milliseconds on a local disk;
//! - [`EventSourceBuilder::build`](crate::EventSourceBuilder::build) is
//!   synchronous, and a [`Checkpoint`] flushes when it is dropped, which
//!   cannot await;
//! - Tokio's own file API runs these same blocking calls on a thread pool,
//!   which would add a thread hop per batch and nothing else, and an async
//!   trait would be either not object-safe or boxed per call.
//!
//! A store backed by a remote service can implement the trait by blocking
//! on its client; to keep such a call off a runtime worker thread, commit
//! inside Tokio's `block_in_place` or with a large batch.
//!
//! [`EventSourceBuilder::checkpoint`]: crate::EventSourceBuilder::checkpoint

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::MessageEvent;

/// How many commits a [`Checkpoint`] batches before it saves: 100.
pub const DEFAULT_FLUSH_EVERY: u32 = 100;

/// How long after its last save a [`Checkpoint`] saves again on the next
/// commit: 1 second.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Where checkpoints are kept: the last processed event ID per stream
/// name.
///
/// Implementations must make [`save`](Self::save) durable when it returns
/// (or document that they do not, as [`MemoryCheckpoints`] does), and
/// atomic: a crash during a save leaves the old ID or the new one, never
/// anything else. See the [module docs](crate::checkpoint) for why the
/// trait is synchronous.
pub trait CheckpointStore: Send + Sync {
    /// The ID last saved under `name`, or `None` when there is none.
    ///
    /// # Errors
    ///
    /// When the store cannot be read, or holds something that is not a
    /// checkpoint; the error should name the place (a file's path).
    fn load(&self, name: &str) -> io::Result<Option<String>>;

    /// Saves `id` under `name`, replacing the ID saved before.
    ///
    /// # Errors
    ///
    /// When the ID could not be stored durably; the previous ID is then
    /// still the stored one.
    fn save(&self, name: &str, id: &str) -> io::Result<()>;
}

impl<S: CheckpointStore + ?Sized> CheckpointStore for &S {
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        (**self).load(name)
    }
    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        (**self).save(name, id)
    }
}

impl<S: CheckpointStore + ?Sized> CheckpointStore for Arc<S> {
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        (**self).load(name)
    }
    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        (**self).save(name, id)
    }
}

impl<S: CheckpointStore + ?Sized> CheckpointStore for Box<S> {
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        (**self).load(name)
    }
    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        (**self).save(name, id)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checkpoints in one file, every name in it, replaced atomically on each
/// save.
///
/// A save writes the whole file anew to a temporary file beside it
/// (`<path>.tmp`), `fsync`s it, renames it over the file and `fsync`s the
/// directory (on Unix; elsewhere the rename is not forced to disk). A crash
/// at any instant therefore leaves the old file or the new one: never a
/// torn one. A temporary file left by a crash is ignored, and removed by
/// the next [`load`](CheckpointStore::load) or replaced by the next save.
///
/// The file is text: a header line, one `name<TAB>id` line per stream
/// (a backslash, tab, line feed or carriage return in either written as
/// `\\`, `\t`, `\n`, `\r`), and an `end` line. Any name is allowed. A file
/// that does not have this form (damaged by something else) is an
/// [`InvalidData`](io::ErrorKind::InvalidData) error naming the path, both
/// on load and on save, which refuses to overwrite it.
///
/// Each save reads and rewrites the whole file: meant for a few names to
/// a few thousand, not for a key-value store.
///
/// One process at a time may use a file (several [`Checkpoint`]s in it may
/// share one `FileCheckpoints`, for instance in an `Arc`): saves from two
/// processes would each write back the other's names as they last read
/// them. Errors name the file's path.
///
/// ```
/// use ssekit::{CheckpointStore, FileCheckpoints};
///
/// let dir = std::env::temp_dir().join(format!("ssekit-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let store = FileCheckpoints::new(dir.join("checkpoints"));
/// assert_eq!(store.load("orders")?, None);
/// store.save("orders", "1041")?;
/// assert_eq!(store.load("orders")?.as_deref(), Some("1041"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileCheckpoints {
    path: PathBuf,
    tmp: PathBuf,
    /// Serialises this process's loads and saves (each save reads the file,
    /// changes one entry and writes it back).
    lock: Mutex<()>,
}

impl fmt::Debug for FileCheckpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCheckpoints")
            .field("path", &self.path)
            .finish()
    }
}

/// The first line of a checkpoint file.
const HEADER: &str = "ssekit-checkpoints 1";
/// The last line: a file without it was cut short.
const TRAILER: &str = "end";

impl FileCheckpoints {
    /// A store in the file at `path`, created by the first save (its
    /// directory must exist). Nothing is read or written until then.
    pub fn new(path: impl Into<PathBuf>) -> FileCheckpoints {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        FileCheckpoints {
            path,
            tmp: tmp.into(),
            lock: Mutex::new(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about this file: `<path>: <what>`.
    fn err(&self, kind: io::ErrorKind, what: impl fmt::Display) -> io::Error {
        io::Error::new(kind, format!("{}: {what}", self.path.display()))
    }

    /// The file's entries; empty when there is no file.
    fn read(&self) -> io::Result<BTreeMap<String, String>> {
        let text = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.err(e.kind(), e)),
        };
        let text = String::from_utf8(text).map_err(|_| {
            self.err(
                io::ErrorKind::InvalidData,
                "not a checkpoint file (not UTF-8)",
            )
        })?;
        parse(&text).map_err(|what| self.err(io::ErrorKind::InvalidData, what))
    }

    /// Replaces the file with these entries: temporary file, `fsync`,
    /// rename, `fsync` of the directory.
    fn write(&self, entries: &BTreeMap<String, String>) -> io::Result<()> {
        let mut text = String::with_capacity(64);
        text.push_str(HEADER);
        text.push('\n');
        for (name, id) in entries {
            escape_into(&mut text, name);
            text.push('\t');
            escape_into(&mut text, id);
            text.push('\n');
        }
        text.push_str(TRAILER);
        text.push('\n');
        let ctx = |what: &str, e: io::Error| self.err(e.kind(), format_args!("{what}: {e}"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp)
            .map_err(|e| ctx("creating the temporary file", e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| ctx("writing the temporary file", e))?;
        file.sync_all()
            .map_err(|e| ctx("syncing the temporary file", e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| ctx("renaming the temporary file", e))?;
        sync_dir(&self.path).map_err(|e| ctx("syncing the directory", e))
    }
}

/// Makes a rename in `file`'s directory durable.
#[cfg(unix)]
fn sync_dir(file: &Path) -> io::Result<()> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened (and synced) as files here; the rename is
/// as durable as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_file: &Path) -> io::Result<()> {
    Ok(())
}

impl CheckpointStore for FileCheckpoints {
    /// Reads the file (a missing file holds no checkpoint) and removes a
    /// temporary file left by a crash.
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        let _guard = lock(&self.lock);
        match fs::remove_file(&self.tmp) {
            Ok(()) => {
                tracing::debug!(path = %self.tmp.display(), "removed a temporary checkpoint file left by a crash")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // It is ignored anyway, and replaced by the next save.
            Err(e) => {
                tracing::debug!(path = %self.tmp.display(), error = %e, "could not remove a temporary checkpoint file")
            }
        }
        Ok(self.read()?.remove(name))
    }

    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        let _guard = lock(&self.lock);
        let mut entries = self.read()?;
        if entries.get(name).map(String::as_str) == Some(id) {
            return Ok(());
        }
        entries.insert(name.to_owned(), id.to_owned());
        self.write(&entries)
    }
}

/// Appends `s` with `\`, tab, LF and CR escaped.
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

/// The inverse of [`escape_into`]; `None` for an unknown escape.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// Parses a checkpoint file; the error says what is wrong with it.
fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let body = text
        .strip_suffix('\n')
        .ok_or("not a checkpoint file (cut short)")?;
    let mut lines = body.split('\n');
    if lines.next() != Some(HEADER) {
        return Err(format!("not a checkpoint file (no {HEADER:?} header)"));
    }
    let mut entries = BTreeMap::new();
    let mut ended = false;
    for (n, line) in lines.enumerate() {
        if ended {
            return Err(format!("line {}: text after the end line", n + 2));
        }
        if line == TRAILER {
            ended = true;
            continue;
        }
        let entry = line
            .split_once('\t')
            .and_then(|(name, id)| Some((unescape(name)?, unescape(id)?)));
        match entry {
            Some((name, id)) => {
                entries.insert(name, id);
            }
            None => return Err(format!("line {}: not a `name<TAB>id` line", n + 2)),
        }
    }
    if !ended {
        return Err("not a checkpoint file (cut short: no end line)".into());
    }
    Ok(entries)
}

/// Checkpoints in memory, for tests: nothing survives the process. Clones
/// share the same map, so a test can hand one to a [`Checkpoint`] and
/// watch what it saves.
///
/// ```
/// use ssekit::{Checkpoint, MemoryCheckpoints};
///
/// let store = MemoryCheckpoints::new();
/// let mut checkpoint = Checkpoint::new(store.clone(), "orders").flush_every(2);
/// checkpoint.commit_id("1")?;
/// assert_eq!(store.get("orders"), None); // batched
/// checkpoint.commit_id("2")?;
/// assert_eq!(store.get("orders").as_deref(), Some("2"));
/// assert_eq!(store.saves(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryCheckpoints {
    inner: Arc<Mutex<Memory>>,
}

#[derive(Debug, Default)]
struct Memory {
    ids: BTreeMap<String, String>,
    saves: u64,
}

impl MemoryCheckpoints {
    /// An empty store.
    pub fn new() -> MemoryCheckpoints {
        MemoryCheckpoints::default()
    }

    /// The ID saved under `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        lock(&self.inner).ids.get(name).cloned()
    }

    /// How many times [`save`](CheckpointStore::save) was called, on this
    /// store and its clones.
    pub fn saves(&self) -> u64 {
        lock(&self.inner).saves
    }
}

impl CheckpointStore for MemoryCheckpoints {
    fn load(&self, name: &str) -> io::Result<Option<String>> {
        Ok(self.get(name))
    }

    fn save(&self, name: &str, id: &str) -> io::Result<()> {
        let mut m = lock(&self.inner);
        m.saves += 1;
        m.ids.insert(name.to_owned(), id.to_owned());
        Ok(())
    }
}

/// The handle through which one consumer commits the events it has
/// processed, for one stream name; it batches the saves.
///
/// [`commit`](Self::commit) records an event's ID in memory and saves it
/// when [`flush_every`](Self::flush_every) commits have accumulated or
/// [`flush_interval`](Self::flush_interval) has passed since the last
/// save, whichever comes first; [`flush`](Self::flush) saves at once, and
/// dropping the handle saves what is pending. There is no background task:
/// the time bound is checked on each commit, so after the last event of a
/// burst the pending ID waits for the next commit, a `flush` or the drop.
/// A crash redelivers the events committed since the last save.
///
/// | setting | default |
/// |---|---|
/// | [`flush_every`](Self::flush_every) | 100 commits ([`DEFAULT_FLUSH_EVERY`]) |
/// | [`flush_interval`](Self::flush_interval) | 1 second ([`DEFAULT_FLUSH_INTERVAL`]) |
///
/// A commit whose ID is empty, or the same as the one committed last
/// (an event sent without an `id:` field), does nothing and does not count
/// towards the batch. See the [module docs](crate::checkpoint) for what to
/// commit with a [`Dispatcher`](crate::Dispatcher), end markers and
/// requests that are not a `GET`.
pub struct Checkpoint {
    store: Box<dyn CheckpointStore>,
    name: String,
    /// The ID committed last (saved or not).
    last: Option<String>,
    /// Commits since the last save; `last` is unsaved when non-zero.
    unsaved: u32,
    last_save: Instant,
    every: u32,
    interval: Option<Duration>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("name", &self.name)
            .field("last", &self.last)
            .field("unsaved", &self.unsaved)
            .field("every", &self.every)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Checkpoint {
    /// A handle committing to `name` in `store`, with the default batching.
    /// Nothing is read from the store: load the starting ID with
    /// [`EventSourceBuilder::checkpoint`](crate::EventSourceBuilder::checkpoint)
    /// or [`CheckpointStore::load`]. To share a store between handles, pass
    /// an `Arc` of it.
    pub fn new(store: impl CheckpointStore + 'static, name: impl Into<String>) -> Checkpoint {
        Checkpoint {
            store: Box::new(store),
            name: name.into(),
            last: None,
            unsaved: 0,
            last_save: Instant::now(),
            every: DEFAULT_FLUSH_EVERY,
            interval: Some(DEFAULT_FLUSH_INTERVAL),
        }
    }

    /// Saves after this many commits: `1` saves on every commit; `0` sets
    /// no count bound (only the interval, [`flush`](Self::flush) and the
    /// drop save). Default: 100 ([`DEFAULT_FLUSH_EVERY`]).
    pub fn flush_every(mut self, commits: u32) -> Checkpoint {
        self.every = commits;
        self
    }

    /// Saves on the first commit this long after the last save; `None`
    /// sets no time bound. Default: 1 second ([`DEFAULT_FLUSH_INTERVAL`]).
    pub fn flush_interval(mut self, interval: Option<Duration>) -> Checkpoint {
        self.interval = interval;
        self
    }

    /// The stream name this handle commits to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ID committed last through this handle, saved or not: the place
    /// to resume from when another stream is built in this process.
    pub fn last_id(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Whether a committed ID has not been saved yet.
    pub fn is_pending(&self) -> bool {
        self.unsaved > 0
    }

    /// Commits `event`'s ID: call it once the event has been processed.
    /// Same as [`commit_id`](Self::commit_id)`(event.id())`.
    ///
    /// # Errors
    ///
    /// When this commit triggered a save that failed; the ID stays pending
    /// and the next commit or [`flush`](Self::flush) tries again.
    pub fn commit(&mut self, event: &MessageEvent) -> io::Result<()> {
        self.commit_id(event.id())
    }

    /// Commits an event ID; an empty ID, or the one committed last, does
    /// nothing.
    ///
    /// # Errors
    ///
    /// When this commit triggered a save that failed; the ID stays pending
    /// and the next commit or [`flush`](Self::flush) tries again.
    pub fn commit_id(&mut self, id: &str) -> io::Result<()> {
        if id.is_empty() || self.last.as_deref() == Some(id) {
            return Ok(());
        }
        match &mut self.last {
            Some(last) => id.clone_into(last),
            None => self.last = Some(id.to_owned()),
        }
        self.unsaved = self.unsaved.saturating_add(1);
        let by_count = self.every != 0 && self.unsaved >= self.every;
        let by_time = self.interval.is_some_and(|t| self.last_save.elapsed() >= t);
        if by_count || by_time {
            self.flush()?;
        }
        Ok(())
    }

    /// Saves the pending ID now, if there is one.
    ///
    /// # Errors
    ///
    /// The store's error; the ID stays pending.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.unsaved == 0 {
            return Ok(());
        }
        if let Some(id) = &self.last {
            self.store.save(&self.name, id)?;
            tracing::trace!(name = %self.name, id = %id, commits = self.unsaved, "checkpoint saved");
        }
        self.unsaved = 0;
        self.last_save = Instant::now();
        Ok(())
    }
}

impl Drop for Checkpoint {
    /// Saves the pending ID; a failure is logged (call
    /// [`flush`](Checkpoint::flush) first to handle it).
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(name = %self.name, error = %e, "could not save the checkpoint on drop");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for s in ["", "plain", "a\tb", "a\\tb", "line\nbreak\r", "\\", "ünï"] {
            let mut e = String::new();
            escape_into(&mut e, s);
            assert!(!e.contains(['\t', '\n', '\r']), "{e:?}");
            assert_eq!(unescape(&e).as_deref(), Some(s));
        }
        assert_eq!(unescape("bad\\x"), None);
        assert_eq!(unescape("trailing\\"), None);
    }

    #[test]
    fn parse_rejects_damaged_files() {
        let good = format!("{HEADER}\na\t1\n{TRAILER}\n");
        assert_eq!(
            parse(&good).unwrap().get("a").map(String::as_str),
            Some("1")
        );
        for bad in [
            "",
            "garbage",
            &format!("{HEADER}\na\t1\n"),
            &format!("{HEADER}\na\t1\n{TRAILER}"),
            &format!("{HEADER}\na1\n{TRAILER}\n"),
            &format!("{HEADER}\n{TRAILER}\nb\t2\n"),
            &format!("other\n{TRAILER}\n"),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
