//! End to end: every Rust SSE client reading real chunked HTTP bodies from a
//! local server process, against reqwest reading the same bodies with no
//! parsing at all (the ceiling). Plus, as a second mode, the memory of 1,000
//! idle streams.
//!
//! ```text
//! cargo bench -p ssekit-peer-benches --bench e2e          # throughput: table + benches/results/e2e.json
//! cargo bench -p ssekit-peer-benches --bench e2e -- idle  # idle streams: table + benches/results/idle.json
//! python3 scripts/bench_chart.py                          # benches/results/e2e.svg + BENCHMARKS.md tables
//! ```
//!
//! One binary, which runs itself again (`std::env::current_exe`) in modes:
//!
//! - `server [MiB]`: a plain tokio TCP server on 127.0.0.1:0 (no hyper) that
//!   prints `PORT n` and answers `GET /sse/<corpus>?events=N` with `200`,
//!   `content-type: text/event-stream` and a chunked body, pre-rendered at
//!   start and written with one `write_all` of the whole prefix (the kernel
//!   takes as much per `write` as the socket buffer holds); `GET
//!   /meta/<corpus>?events=N` tells the events, body bytes and data bytes of
//!   that prefix; `&repeat=k` sends those events k times over in the same
//!   body; `GET /idle` sends one event, then a comment every 5 s. `GET
//!   /gz/<corpus>?events=N&repeat=k` sends the same events gzipped
//!   (`content-encoding: gzip`, always, whatever the request's
//!   `Accept-Encoding`), compressed at start (see *gzip rows*). A second
//!   listener, printed as `H2PORT n`, is a hyper HTTP/2 server, h2c with
//!   prior knowledge, that answers `GET /sse/...` with the same events as
//!   DATA frames cut where the chunks are (slices of the pre-rendered
//!   corpus); it counts TCP connections, connections that carried a
//!   request, and requests (`GET /h2stats` on the first port). It exits
//!   when its standard input closes (the parent's end).
//! - `client <name> <corpus> <runtime> <streams>`: one client kind against
//!   the server (`SSEKIT_BENCH_ADDR`), printing one JSON line. Wall and CPU
//!   time (`getrusage(RUSAGE_SELF)`, all threads) and allocations (a counting
//!   global allocator) are taken from the moment every stream has opened
//!   (response head received) to the moment the last one has seen all its
//!   events: connecting is not measured, consuming is.
//! - `idle-client <name> <streams>`: opens that many streams, waits for each
//!   one's first event, and reports resident memory (`VmRSS`) before and
//!   after, and heap bytes still allocated.
//! - default (what `cargo bench -p ssekit-peer-benches --bench e2e` runs) and `idle`: the parents,
//!   which start the server and the clients and print the tables.
//!
//! Clients (`name`):
//!
//! | name | what |
//! |---|---|
//! | `reqwest` | the ceiling: `Response::chunk()` in a loop, counting bytes, no parsing; its events are bytes / (bytes per event). In idle mode, the floor: the bodies alone (`bytes_stream()`), the rest of each `Response` dropped |
//! | `ssekit` | `ssekit::EventSource` (default client), counting `Event::Message`; on the HTTP/2 rows built with `.client(...)`, the shared h2c reqwest 0.13 `Client` |
//! | `sse-stream` | `sse_stream::SseByteStream` over reqwest 0.13's `bytes_stream()` |
//! | `sseer` | `sseer::EventSource` (feature `reqwest`) on requests of the shared reqwest 0.13 `Client` |
//! | `reqwest-eventsource` | `reqwest_eventsource::EventSource` on one shared reqwest 0.12 `Client` |
//! | `eventsource-client` | LaunchDarkly's `eventsource-client` 0.18.0 with `HyperTransport::build_http` (launchdarkly-sdk-transport), reconnection off; on the HTTP/2 rows `build_with_connector` with a connector of ours (`H2cConnector`) |
//!
//! The reqwest 0.13 `Client` (ceiling, sse-stream, sseer) and the reqwest
//! 0.12 one are built once per client process and shared by its streams:
//! `Client::new()`, or on the HTTP/2 rows `http2_prior_knowledge()` with
//! the windows below. Both decode gzip (feature `gzip`), and so does
//! ssekit's default client.
//!
//! Corpora, generated deterministically (SplitMix64, fixed seed) by the
//! server, `SSEKIT_BENCH_MB` MiB of events each (default 128):
//!
//! - `openai`: chat-completion chunks, `data: {~200 B json}\n\n`, then
//!   `data: [DONE]`; one event per HTTP chunk, as LLM servers flush them.
//! - `dashboard`: `id: n`, `event: metrics`, `data: {~1 KiB json}`, cut in
//!   16 KiB HTTP chunks regardless of event boundaries. It is read fast, so
//!   each stream reads its events 8 times over in one body
//!   (`SSEKIT_BENCH_REPEAT_DASHBOARD`; `SSEKIT_BENCH_REPEAT_OPENAI`, default
//!   1), for runs long enough to time.
//!
//! Runtimes: `ct1`, one stream on a current-thread runtime; `mt100`, 100
//! streams, each a spawned task on the 2-worker multi-thread runtime, each
//! reading the first 1/100 of the corpus (`?events=N`), so the total is the
//! same; `mt1`, one stream driven by `block_on` on the multi-thread runtime,
//! as `#[tokio::main]` code does (for information: reqwest's connection task
//! runs on a worker, the stream on the main thread). Not run by default:
//! `mt1spawn`, the one stream spawned as a task on that runtime
//! (`SSEKIT_BENCH_ROWS=openai/mt1spawn`).
//!
//! Rows are a corpus and a runtime (`openai/ct1`); those above are HTTP/1.1
//! with chunked bodies. Two more kinds, for both corpora, run by default:
//!
//! - HTTP/2, `h2-mt100`: the `mt100` streams all multiplexed over ONE h2c
//!   (prior knowledge) connection per client process. Flow-control windows
//!   are the same for the server and every client: 2 MiB per stream, 5 MiB
//!   per connection, which are hyper's client defaults, set explicitly in
//!   the reqwest clients, because eventsource-client's transport exposes no
//!   HTTP/2 settings (`SSEKIT_BENCH_H2_WINDOWS=16,64` sets others, in MiB,
//!   and then leaves eventsource-client out of these rows). The server's h2
//!   is told its socket has no vectored writes, so that it copies frames
//!   under 1 KiB into its 16 KiB write buffer rather than making one
//!   `writev` per `openai` event, which made the server, not the clients,
//!   the bottleneck. `openai` is one event per DATA frame, `dashboard` 16
//!   KiB frames. After the run the client asks the server's counts: all its
//!   100 requests must have come on exactly one connection, or the run
//!   fails. eventsource-client's transport (hyper-util's pooled client, no
//!   `http2_only`) has no prior-knowledge switch; it speaks HTTP/2 on plain
//!   TCP when the connector says ALPN chose `h2`, which `H2cConnector`
//!   does. Its 100 requests each start a TCP connect until the first
//!   connection is up; the spare sockets are closed without a request: the
//!   run's `h2_tcp_connections` counts them (reported, not failed), and
//!   `h2_connections_used` must be 1.
//! - gzip, `gzip-ct1` and `gzip-mt100`: `GET /gz/...`, the same events in
//!   a gzip body, on HTTP/1.1 chunked. `openai` is one deflate stream with
//!   a sync flush after each event, each flushed piece one HTTP chunk (as a
//!   compressing LLM proxy sends it); `dashboard` is one deflate stream of
//!   the whole prefix, cut in 16 KiB chunks. Decoding makes these rows
//!   several times slower, so they read the first quarter of the corpus
//!   (`SSEKIT_BENCH_GZIP_SHARE`, default 4: each stream reads events / (4 x
//!   streams)), with the same repeats. Compressed at server start (flate2,
//!   level 6; `openai` once for every prefix of that quarter, `dashboard`
//!   once per prefix that a row reads), never per request;
//!   `repeat=k` sends the compressed prefix k times over in one stream
//!   (each copy starts fresh and ends on a sync flush, so copies concatenate),
//!   then the trailer. The server decodes a few such bodies at start to
//!   check them. Events, data and body bytes are counted on the decoded
//!   content. The server gzips whatever the request asks, so a client that
//!   cannot decode is not run: eventsource-client (its transport neither
//!   asks for nor decodes `content-encoding`) shows "—" on these rows, with
//!   the reason, in the tables and in `unable` of the JSON.
//!
//! Every client must see exactly the expected number of events and data
//! bytes on one connection (a second open, an error or an early end is a
//! failure): the run stops with the client's message.
//!
//! Environment: `SSEKIT_BENCH_MB` (corpus size), `SSEKIT_BENCH_ROUNDS`
//! (default 5; round r runs every client of every row once, the client order
//! rotated by r), `SSEKIT_BENCH_CLIENTS` and `SSEKIT_BENCH_ROWS` (comma
//! lists, e.g. `ssekit,reqwest` and `openai/ct1`), `SSEKIT_BENCH_IDLE_STREAMS`
//! (default 1000), `SSEKIT_BENCH_IDLE_ROUNDS` (default 3),
//! `SSEKIT_BENCH_OUT` (results folder, default `benches/results`),
//! `SSEKIT_BENCH_GZIP_SHARE` and `SSEKIT_BENCH_H2_WINDOWS` (see above).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------
// Counting allocator

/// Counts calls to `alloc`/`realloc` and bytes, only while [`COUNTING`] is
/// on. Counters are sharded per thread (padded), so counting adds an
/// uncontended atomic add, not a cache line bouncing between the workers.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);

#[repr(align(64))]
struct Shard {
    allocs: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

const SHARDS: usize = 16;
static SHARD_TABLE: [Shard; SHARDS] = [const {
    Shard {
        allocs: AtomicU64::new(0),
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
    }
}; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` and no destructor: safe to touch from inside the allocator.
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn shard() -> &'static Shard {
    let i = MY_SHARD
        .try_with(|c| {
            let mut i = c.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
                c.set(i);
            }
            i
        })
        .unwrap_or(0);
    &SHARD_TABLE[i]
}

fn count_alloc(size: usize) {
    if COUNTING.load(Relaxed) {
        let s = shard();
        s.allocs.fetch_add(1, Relaxed);
        s.bytes_in.fetch_add(size as u64, Relaxed);
    }
}

fn count_free(size: usize) {
    if COUNTING.load(Relaxed) {
        shard().bytes_out.fetch_add(size as u64, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting only
// touches atomics and a const thread-local without destructor.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: the caller's contract is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free(layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc(new_size);
        count_free(layout.size());
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// (allocations, bytes allocated, bytes freed) counted so far.
fn alloc_totals() -> (u64, u64, u64) {
    SHARD_TABLE.iter().fold((0, 0, 0), |(a, i, o), s| {
        (
            a + s.allocs.load(Relaxed),
            i + s.bytes_in.load(Relaxed),
            o + s.bytes_out.load(Relaxed),
        )
    })
}

// ---------------------------------------------------------------------------
// Process measurements

#[derive(Clone, Copy, Debug)]
struct Usage {
    user_s: f64,
    sys_s: f64,
    /// Voluntary context switches (a thread parked waiting for work).
    nvcsw: i64,
    nivcsw: i64,
}

fn usage() -> Usage {
    // SAFETY: getrusage writes the struct it is given; zeroed is a valid
    // initial value for this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
        nvcsw: ru.ru_nvcsw,
        nivcsw: ru.ru_nivcsw,
    }
}

/// Raises the soft limit of open files to the hard limit (1,000 sockets).
fn raise_nofile() -> u64 {
    // SAFETY: plain C calls on a local struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        }
        rl.rlim_cur
    }
}

/// `VmRSS` of this process, in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of the whole machine so far, from `/proc/stat`: (busy,
/// stolen by the hypervisor).
fn machine_cpu_s() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // user nice system idle iowait irq softirq steal
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    (busy / hz, at(7) / hz)
}

/// CPU seconds used by this process's waited-for children.
fn children_cpu_s() -> f64 {
    // SAFETY: as in `usage`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// CPU seconds (user + system) used so far by process `pid`.
fn proc_cpu_s(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, here 11 and 12 (0-based, from state).
    (ticks(11) + ticks(12)) / hz
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian calendar),
    // counting in 400-year eras that start on March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Which ssekit was measured: the commit, the files of `src/` that differ
/// from it, and a hash (FNV-1a) of every file under `src/` as it was built.
fn source_info() -> Value {
    let root = &ssekit_root();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for f in &files {
        let name = f
            .strip_prefix(root)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        for b in name.bytes().chain(std::fs::read(f).unwrap_or_default()) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    json!({
        "commit": git(&["rev-parse", "--short", "HEAD"]),
        "src_changed": git(&["status", "--porcelain", "--", "src"]).lines().map(str::trim).collect::<Vec<_>>(),
        "src_fnv1a": format!("{hash:016x}"),
    })
}

fn machine_info() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "kernel": kernel,
        "cpu": cpu,
        "mem_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "rustc": rustc,
        "date": utc_now(),
    })
}

// ---------------------------------------------------------------------------
// Corpora

/// SplitMix64: a tiny deterministic generator (no `rand` in the corpus).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CORPORA: [&str; 2] = ["openai", "dashboard"];

/// A corpus: the event stream (`raw`), its chunked-encoded form (`wire`,
/// without the terminating chunk) and where events and chunks end.
struct Corpus {
    raw: Bytes,
    wire: Vec<u8>,
    /// Per chunk: (end in `raw`, end in `wire`).
    chunks: Vec<(usize, usize)>,
    /// Per event: its end in `raw`.
    event_end: Vec<usize>,
    /// Per event: data bytes of events 0..=i.
    data_cum: Vec<u64>,
}

struct Prefix {
    events: usize,
    raw_bytes: usize,
    data_bytes: u64,
}

impl Corpus {
    fn build(raw: Vec<u8>, event_end: Vec<usize>, data_cum: Vec<u64>, cuts: Vec<usize>) -> Self {
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

    fn events(&self) -> usize {
        self.event_end.len()
    }

    fn prefix(&self, events: usize) -> Prefix {
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
    fn body(&self, events: usize) -> (&[u8], Vec<u8>) {
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
    fn frames(self: &Arc<Self>, events: usize, repeat: usize) -> Frames {
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
struct Frames {
    corpus: Option<Arc<Corpus>>,
    /// End in `raw` of the prefix sent.
    end: usize,
    /// Pieces of the chunked body that end within the prefix.
    whole: usize,
    next: usize,
    start: usize,
    /// Copies of the prefix still to send.
    left: usize,
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
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A gzip rendering of a corpus's first events, pre-compressed at server
/// start: raw deflate that ends on a sync flush (byte-aligned, no final
/// block), as HTTP chunks. A deflate stream that starts with an empty
/// window and ends on a sync flush decodes the same after any other such
/// stream, so `repeat=k` sends it k times over, then one empty final block
/// and the trailer (CRC-32 and size of the k copies).
struct GzBody {
    /// Chunked-encoded compressed pieces (without the gzip header).
    wire: Vec<u8>,
    /// Per prefix that ends on a piece, by events: (events, end in `wire`,
    /// CRC-32 of the raw prefix).
    ends: Vec<(usize, usize, u32)>,
}

fn push_chunk(wire: &mut Vec<u8>, piece: &[u8]) {
    if !piece.is_empty() {
        write!(wire, "{:x}\r\n", piece.len()).unwrap();
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
}

/// `openai` as a compressing LLM proxy sends it: one deflate stream, a sync
/// flush after each event, each flushed piece one HTTP chunk. Every event
/// ends a piece, so one rendering serves every prefix up to `events`.
fn gzip_per_event(c: &Corpus, events: usize) -> GzBody {
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
fn gzip_bulk(c: &Corpus, events: usize) -> GzBody {
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
const GZIP_STREAMS: [usize; 2] = [1, 100];

/// The gzip rows read the first 1/share of the corpus (default 4,
/// `SSEKIT_BENCH_GZIP_SHARE`), with the same repeats: decoding makes them
/// several times slower than the plain rows, and a quarter is long enough
/// to time.
fn gzip_share() -> usize {
    env_usize("SSEKIT_BENCH_GZIP_SHARE", 4).max(1)
}

/// The events each stream of a row of `streams` streams reads.
fn events_per_stream(total: usize, streams: usize, rt: &str) -> usize {
    let share = if row_gzip(rt) { gzip_share() } else { 1 };
    total / (streams * share)
}

/// The prefixes the gzip rows read (see [`events_per_stream`]), largest
/// first.
fn gzip_row_events(c: &Corpus) -> Vec<usize> {
    let mut events: Vec<usize> = GZIP_STREAMS
        .iter()
        .map(|&s| c.prefix(events_per_stream(c.events(), s, "gzip-")).events)
        .collect();
    events.dedup();
    events
}

fn gzip_renderings(name: &str, c: &Corpus) -> Vec<GzBody> {
    let events = gzip_row_events(c);
    if name == "openai" {
        return vec![gzip_per_event(c, events[0])];
    }
    events.into_iter().map(|n| gzip_bulk(c, n)).collect()
}

/// The pre-compressed body for the first `events` events, if rendered:
/// (the pieces, raw bytes, CRC-32 of the raw bytes).
fn gzip_prefix<'a>(gz: &'a [GzBody], c: &Corpus, events: usize) -> Option<(&'a [u8], u64, u32)> {
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
fn gzip_trailer(raw_bytes: u64, crc: u32, repeat: usize) -> Vec<u8> {
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
fn gzip_self_check(gz: &[GzBody], c: &Corpus) {
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

const TOKENS: &[&str] = &[
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

fn openai_corpus(target: usize) -> Corpus {
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

fn dashboard_corpus(target: usize) -> Corpus {
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

// ---------------------------------------------------------------------------
// Server

/// HTTP/2 flow-control windows by default (per stream, per connection):
/// hyper's client defaults, made explicit, because eventsource-client's
/// transport exposes no HTTP/2 settings and so can only run with these.
/// Larger windows make every client faster on these rows, alike (3 short
/// rounds at 64 MiB, with 16 and 64 MiB: `openai` about 1.5x, `dashboard`
/// about 1.25x; the ratios to the ceiling about the same), so this row
/// measures the clients under hyper's default flow control.
const H2_DEFAULT_WINDOWS: (u32, u32) = (2 << 20, 5 << 20);

/// The HTTP/2 flow-control windows of the server and every client:
/// `SSEKIT_BENCH_H2_WINDOWS=<stream MiB>,<connection MiB>`, default
/// [`H2_DEFAULT_WINDOWS`]. With others, eventsource-client is not run on
/// the HTTP/2 rows (it could not have the same).
fn h2_windows() -> (u32, u32) {
    let Ok(v) = std::env::var("SSEKIT_BENCH_H2_WINDOWS") else {
        return H2_DEFAULT_WINDOWS;
    };
    let mib: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    match mib[..] {
        [stream, conn] => (stream << 20, conn << 20),
        _ => panic!("SSEKIT_BENCH_H2_WINDOWS={v}: expected <stream MiB>,<connection MiB>"),
    }
}

/// What the server serves and counts.
struct ServerState {
    corpora: Vec<Arc<Corpus>>,
    /// Per corpus: its gzip renderings.
    gz: Vec<Vec<GzBody>>,
    /// HTTP/2: TCP connections accepted, connections that carried at least
    /// one request, requests.
    h2_accepted: AtomicU64,
    h2_used: AtomicU64,
    h2_requests: AtomicU64,
}

fn server_main(mb: usize) {
    raise_nofile();
    let started = Instant::now();
    let corpora: Vec<Arc<Corpus>> = if mb == 0 {
        Vec::new()
    } else {
        vec![
            Arc::new(openai_corpus(mb << 20)),
            Arc::new(dashboard_corpus(mb << 20)),
        ]
    };
    let generate_s = started.elapsed().as_secs_f64();
    let gz: Vec<Vec<GzBody>> = CORPORA
        .iter()
        .zip(&corpora)
        .map(|(name, c)| {
            let gz = gzip_renderings(name, c);
            gzip_self_check(&gz, c);
            gz
        })
        .collect();
    let gzip_s = started.elapsed().as_secs_f64() - generate_s;
    let state = Arc::new(ServerState {
        corpora,
        gz,
        h2_accepted: AtomicU64::new(0),
        h2_used: AtomicU64::new(0),
        h2_requests: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // A backlog for 1,000 connections arriving at once (the kernel caps
        // it at net.core.somaxconn): a dropped SYN costs its client 1 s.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        let port = listener.local_addr().unwrap().port();
        let h2_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h2_port = h2_listener.local_addr().unwrap().port();
        let mut stats = serde_json::Map::new();
        for ((name, c), gz) in CORPORA.iter().zip(&state.corpora).zip(&state.gz) {
            stats.insert(
                name.to_string(),
                json!({
                    "events": c.events(),
                    "bytes": c.raw.len(),
                    "wire_bytes": c.wire.len(),
                    "chunks": c.chunks.len(),
                    "data_bytes": c.data_cum.last().copied().unwrap_or(0),
                    // The gzip rows' prefixes: events, raw and compressed
                    // bytes (chunked, as /gz/ sends them).
                    "gzip": gzip_row_events(c).into_iter().filter_map(|n| {
                        let (w, raw, _) = gzip_prefix(gz, c, n)?;
                        Some(json!({"events": n, "bytes": raw, "wire_bytes": w.len()}))
                    }).collect::<Vec<_>>(),
                }),
            );
        }
        println!("PORT {port}");
        println!("H2PORT {h2_port}");
        println!(
            "STATS {}",
            json!({"corpora": stats, "generate_s": generate_s, "gzip_s": gzip_s})
        );
        std::io::stdout().flush().unwrap();
        // The parent's end closes our stdin: then stop.
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        });
        let h2_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = h2_listener.accept().await else {
                    continue;
                };
                h2_state.h2_accepted.fetch_add(1, Relaxed);
                tokio::spawn(serve_h2(sock, h2_state.clone()));
            }
        });
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let _ = serve(sock, &state).await;
            });
        }
    });
}

/// h2c (HTTP/2 with prior knowledge) on one connection: `GET
/// /sse/<corpus>?events=N&repeat=k` gets the same events as over HTTP/1.1,
/// one DATA frame per piece of the chunked body.
async fn serve_h2(sock: tokio::net::TcpStream, state: Arc<ServerState>) {
    let _ = sock.set_nodelay(true);
    let used = Arc::new(AtomicBool::new(false));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        if !used.swap(true, Relaxed) {
            state.h2_used.fetch_add(1, Relaxed);
        }
        state.h2_requests.fetch_add(1, Relaxed);
        let target = req.uri().to_string();
        let path = req.uri().path();
        let found = path
            .strip_prefix("/sse/")
            .and_then(|name| CORPORA.iter().position(|c| *c == name))
            .and_then(|i| state.corpora.get(i));
        let resp = match found {
            Some(c) => hyper::Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(c.frames(
                    query(&target, "events").unwrap_or(c.events()),
                    query(&target, "repeat").unwrap_or(1),
                )),
            None => hyper::Response::builder()
                .status(404)
                .body(Frames::default()),
        };
        async move { Ok::<_, std::convert::Infallible>(resp.unwrap()) }
    });
    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .initial_stream_window_size(h2_windows().0)
        .initial_connection_window_size(h2_windows().1)
        .max_concurrent_streams(1000)
        .serve_connection(
            H2cIo {
                io: hyper_util::rt::TokioIo::new(sock),
                vectored: false,
            },
            service,
        )
        .await;
}

/// The value of `name` in the query of `target`.
fn query(target: &str, name: &str) -> Option<usize> {
    let (_, q) = target.split_once('?')?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

async fn serve(mut sock: tokio::net::TcpStream, state: &ServerState) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(2048);
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut tmp = [0u8; 2048];
            let n = sock.read(&mut tmp).await?;
            if n == 0 || buf.len() > 65536 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("/");
        let corpus = |prefix: &str| {
            let name = path.strip_prefix(prefix)?;
            let i = CORPORA.iter().position(|c| *c == name)?;
            Some((state.corpora.get(i)?, state.gz.get(i)?))
        };
        const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
        const SSE_HEAD_GZIP: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n";
        if let Some((c, _)) = corpus("/sse/") {
            let events = query(&target, "events").unwrap_or(c.events());
            let (whole, tail) = c.body(events);
            sock.write_all(SSE_HEAD).await?;
            // `repeat=k`: the same events k times over, one body.
            for _ in 0..query(&target, "repeat").unwrap_or(1) {
                sock.write_all(whole).await?;
                sock.write_all(&tail).await?;
            }
            sock.write_all(b"0\r\n\r\n").await?;
        } else if let Some((c, gz)) = corpus("/gz/") {
            // Always gzip, whatever the request's Accept-Encoding says: a
            // client that cannot decode it is not run on these rows.
            let events = query(&target, "events").unwrap_or(c.events());
            let Some((pieces, raw_bytes, crc)) = gzip_prefix(gz, c, events) else {
                sock.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await?;
                return Ok(());
            };
            let repeat = query(&target, "repeat").unwrap_or(1);
            let mut head = SSE_HEAD_GZIP.to_vec();
            push_chunk(&mut head, &GZIP_HEADER);
            sock.write_all(&head).await?;
            for _ in 0..repeat {
                sock.write_all(pieces).await?;
            }
            let mut end = gzip_trailer(raw_bytes, crc, repeat);
            end.extend_from_slice(b"0\r\n\r\n");
            sock.write_all(&end).await?;
        } else if path == "/h2stats" {
            let body = format!(
                "{} {} {}\n",
                state.h2_accepted.load(Relaxed),
                state.h2_used.load(Relaxed),
                state.h2_requests.load(Relaxed)
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            return Ok(());
        } else if let Some((c, _)) = corpus("/meta/") {
            let p = c.prefix(query(&target, "events").unwrap_or(c.events()));
            let k = query(&target, "repeat").unwrap_or(1) as u64;
            let body = format!(
                "{} {} {}\n",
                p.events as u64 * k,
                p.raw_bytes as u64 * k,
                p.data_bytes * k
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            return Ok(());
        } else if path == "/idle" {
            sock.write_all(SSE_HEAD).await?;
            let first = b"data: {\"hello\":\"idle\"}\n\n";
            let mut chunk = format!("{:x}\r\n", first.len()).into_bytes();
            chunk.extend_from_slice(first);
            chunk.extend_from_slice(b"\r\n");
            sock.write_all(&chunk).await?;
            let beat = b": heartbeat\n\n";
            let mut beat_chunk = format!("{:x}\r\n", beat.len()).into_bytes();
            beat_chunk.extend_from_slice(beat);
            beat_chunk.extend_from_slice(b"\r\n");
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                sock.write_all(&beat_chunk).await?;
            }
        } else {
            sock.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
            return Ok(());
        }
    }
}

/// The server's HTTP/2 counts: (TCP connections accepted, connections that
/// carried a request, requests).
fn h2_stats(addr: &str) -> (u64, u64, u64) {
    let v: Vec<u64> = plain_get(addr, "/h2stats")
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    (v[0], v[1], v[2])
}

/// A blocking `GET` with HTTP/1.0 (the server closes after answering).
fn plain_get(addr: &str, target: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the bench server");
    write!(s, "GET {target} HTTP/1.0\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {target}: {head}");
    body.to_string()
}

// ---------------------------------------------------------------------------
// Client

const CLIENTS: [&str; 6] = [
    "reqwest",
    "ssekit",
    "sse-stream",
    "sseer",
    "reqwest-eventsource",
    "eventsource-client",
];

#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    events: u64,
    data_bytes: u64,
    body_bytes: u64,
}

/// What one stream must see.
#[derive(Clone, Copy)]
struct Expect {
    events: u64,
    raw_bytes: u64,
    data_bytes: u64,
}

/// Where measurement starts: the last stream to open records the time and
/// usage and switches allocation counting on, then lets all streams read.
struct Gate {
    streams: usize,
    opened: AtomicUsize,
    open_tx: tokio::sync::watch::Sender<bool>,
    /// Time, usage and VmRSS when the last stream opened.
    start: Mutex<Option<(Instant, Usage, u64)>>,
}

impl Gate {
    fn new(streams: usize) -> Self {
        Gate {
            streams,
            opened: AtomicUsize::new(0),
            open_tx: tokio::sync::watch::channel(false).0,
            start: Mutex::new(None),
        }
    }

    async fn opened(&self) {
        if self.opened.fetch_add(1, Relaxed) + 1 == self.streams {
            let rss = vm_rss_kib();
            *self.start.lock().unwrap() = Some((Instant::now(), usage(), rss));
            COUNTING.store(true, Relaxed);
            self.open_tx.send_replace(true);
        } else {
            let mut rx = self.open_tx.subscribe();
            let _ = rx.wait_for(|open| *open).await;
        }
    }
}

/// Rows over HTTP/2: their runtime is named `h2-<runtime>`.
fn row_h2(rt: &str) -> bool {
    rt.starts_with("h2-")
}

/// Rows of gzip bodies: their runtime is named `gzip-<runtime>`.
fn row_gzip(rt: &str) -> bool {
    rt.starts_with("gzip-")
}

/// The runtime a row runs on (`ct1`, `mt100`, ...), without its protocol.
fn base_runtime(rt: &str) -> &str {
    rt.strip_prefix("h2-")
        .or_else(|| rt.strip_prefix("gzip-"))
        .unwrap_or(rt)
}

/// Why `client` cannot run the rows of runtime `rt`, if it cannot: it is
/// not run there, and the tables show "—" with this reason.
fn unable(client: &str, rt: &str) -> Option<&'static str> {
    match client {
        "eventsource-client" if row_gzip(rt) => Some(
            "no gzip: its transport (launchdarkly-sdk-transport 0.1, hyper) neither asks for nor decodes content-encoding",
        ),
        "eventsource-client" if row_h2(rt) && h2_windows() != H2_DEFAULT_WINDOWS => Some(
            "SSEKIT_BENCH_H2_WINDOWS differs from hyper's defaults, and its transport exposes no HTTP/2 settings",
        ),
        _ => None,
    }
}

/// The HTTP clients, built once per process and shared by its streams.
/// For the HTTP/2 rows, h2c with prior knowledge and the same flow-control
/// windows ([`h2_windows`]) in each.
struct Clients {
    h2: bool,
    reqwest: reqwest::Client,
    reqwest012: reqwest012::Client,
    launchdarkly: Option<Arc<dyn eventsource_client::Client>>,
}

impl Clients {
    fn new(kind: &str, url: &str, h2: bool) -> Self {
        let launchdarkly = (kind == "eventsource-client").then(|| {
            use eventsource_client as es;
            let transport = launchdarkly_sdk_transport::HyperTransport::builder();
            let builder = es::ClientBuilder::for_url(url)
                .expect("eventsource-client URL")
                .reconnect(es::ReconnectOptions::reconnect(false).build());
            if h2 {
                // Its transport's HTTP/2 settings are hyper's defaults,
                // which the others are given explicitly.
                let transport = transport
                    .build_with_connector(H2cConnector)
                    .expect("hyper transport");
                Arc::new(builder.build_with_transport(transport)) as Arc<dyn es::Client>
            } else {
                let transport = transport.build_http().expect("hyper transport");
                Arc::new(builder.build_with_transport(transport)) as Arc<dyn es::Client>
            }
        });
        let (reqwest, reqwest012) = if h2 {
            (
                reqwest::Client::builder()
                    .http2_prior_knowledge()
                    .http2_initial_stream_window_size(h2_windows().0)
                    .http2_initial_connection_window_size(h2_windows().1)
                    .build()
                    .expect("reqwest h2c client"),
                reqwest012::Client::builder()
                    .http2_prior_knowledge()
                    .http2_initial_stream_window_size(h2_windows().0)
                    .http2_initial_connection_window_size(h2_windows().1)
                    .build()
                    .expect("reqwest 0.12 h2c client"),
            )
        } else {
            (reqwest::Client::new(), reqwest012::Client::new())
        };
        Clients {
            h2,
            reqwest,
            reqwest012,
            launchdarkly,
        }
    }
}

/// eventsource-client's transport has no prior-knowledge switch: it speaks
/// HTTP/2 on a connection whose connector says ALPN chose `h2`. This
/// connector opens plain TCP and says so: h2c with prior knowledge. (Its
/// requests race to connect until the first connection is up; the spare
/// sockets are closed unused, and the server counts them apart.)
#[derive(Clone)]
struct H2cConnector;

/// A TCP connection for HTTP/2: for eventsource-client's transport, and
/// for the server, which says it has no vectored writes (`vectored:
/// false`), so that h2 copies DATA frames under 1 KiB into its 16 KiB write
/// buffer instead of one `writev` per frame above 256 bytes (one per
/// `openai` event): the server then keeps up with the clients, as the
/// HTTP/1.1 one does with its single `write_all`.
struct H2cIo {
    io: hyper_util::rt::TokioIo<tokio::net::TcpStream>,
    vectored: bool,
}

type IoResult<T> = std::task::Poll<std::io::Result<T>>;

impl hyper::rt::Read for H2cIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> IoResult<()> {
        hyper::rt::Read::poll_read(std::pin::Pin::new(&mut self.get_mut().io), cx, buf)
    }
}

impl hyper::rt::Write for H2cIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> IoResult<usize> {
        hyper::rt::Write::poll_write(std::pin::Pin::new(&mut self.get_mut().io), cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> IoResult<usize> {
        hyper::rt::Write::poll_write_vectored(std::pin::Pin::new(&mut self.get_mut().io), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored && hyper::rt::Write::is_write_vectored(&self.io)
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> IoResult<()> {
        hyper::rt::Write::poll_flush(std::pin::Pin::new(&mut self.get_mut().io), cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> IoResult<()> {
        hyper::rt::Write::poll_shutdown(std::pin::Pin::new(&mut self.get_mut().io), cx)
    }
}

impl hyper_util::client::legacy::connect::Connection for H2cIo {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new().negotiated_h2()
    }
}

impl tower::Service<hyper::Uri> for H2cConnector {
    type Response = H2cIo;
    type Error = std::io::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<H2cIo>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> IoResult<()> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().unwrap_or("127.0.0.1").to_string();
            let sock = tokio::net::TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
            sock.set_nodelay(true)?;
            Ok(H2cIo {
                io: hyper_util::rt::TokioIo::new(sock),
                vectored: true,
            })
        })
    }
}

fn fail<T>(kind: &str, what: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{kind}: {what}"))
}

/// One stream of client `kind`: connects, reports the open to `gate`, then
/// reads until it has seen `want.events` events.
async fn run_stream(
    kind: &str,
    url: &str,
    clients: &Clients,
    want: Expect,
    gate: &Gate,
) -> Result<Tally, String> {
    let mut t = Tally::default();
    let mut opened = false;
    macro_rules! on_open {
        () => {{
            if opened {
                return fail(kind, "reconnected: the first connection lost events");
            }
            opened = true;
            gate.opened().await;
        }};
    }
    macro_rules! on_event {
        ($data_len:expr) => {{
            t.events += 1;
            t.data_bytes += $data_len as u64;
            if t.events == want.events {
                t.body_bytes = want.raw_bytes;
                return check(kind, t, want);
            }
        }};
    }
    match kind {
        "reqwest" => {
            let mut resp = clients
                .reqwest
                .get(url)
                .send()
                .await
                .or_else(|e| fail(kind, e))?;
            if !resp.status().is_success() {
                return fail(kind, resp.status());
            }
            gate.opened().await;
            while let Some(chunk) = resp.chunk().await.or_else(|e| fail(kind, e))? {
                t.body_bytes += chunk.len() as u64;
                if t.body_bytes >= want.raw_bytes {
                    if t.body_bytes != want.raw_bytes {
                        return fail(kind, format!("read {} body bytes", t.body_bytes));
                    }
                    // The ceiling parses nothing: its events are its bytes
                    // divided by the bytes per event, here exactly these.
                    t.events = want.events;
                    t.data_bytes = want.data_bytes;
                    return Ok(t);
                }
            }
        }
        "ssekit" => {
            // Over HTTP/2, the shared h2c client (the default pool would
            // spread 100 streams over several connections); otherwise the
            // default client, which decodes gzip.
            let mut es = if clients.h2 {
                ssekit::EventSource::builder(url)
                    .client(clients.reqwest.clone())
                    .build()
            } else {
                ssekit::EventSource::new(url)
            }
            .or_else(|e| fail(kind, e))?;
            while let Some(item) = es.next().await {
                match item.or_else(|e| fail(kind, e))? {
                    ssekit::Event::Open(_) => on_open!(),
                    ssekit::Event::Message(m) => on_event!(m.data().len()),
                    _ => {}
                }
            }
        }
        "sse-stream" => {
            let resp = clients
                .reqwest
                .get(url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .or_else(|e| fail(kind, e))?;
            if !resp.status().is_success() {
                return fail(kind, resp.status());
            }
            gate.opened().await;
            let mut s = sse_stream::SseByteStream::new(resp.bytes_stream());
            while let Some(item) = s.next().await {
                let sse = item.or_else(|e| fail(kind, e))?;
                if let Some(data) = sse.data {
                    on_event!(data.len());
                }
            }
        }
        "sseer" => {
            let mut es = sseer::EventSource::new(clients.reqwest.get(url))
                .or_else(|e| fail(kind, format!("{e:?}")))?;
            while let Some(item) = es.next().await {
                match item.or_else(|e| fail(kind, e))? {
                    sseer::reqwest::StreamEvent::Open => on_open!(),
                    sseer::reqwest::StreamEvent::Event(e) => on_event!(e.data.len()),
                }
            }
        }
        "reqwest-eventsource" => {
            let mut es = reqwest_eventsource::EventSource::new(clients.reqwest012.get(url))
                .or_else(|e| fail(kind, e))?;
            while let Some(item) = es.next().await {
                match item.or_else(|e| fail(kind, e))? {
                    reqwest_eventsource::Event::Open => on_open!(),
                    reqwest_eventsource::Event::Message(m) => on_event!(m.data.len()),
                }
            }
        }
        "eventsource-client" => {
            use eventsource_client::SSE;
            let client = clients.launchdarkly.as_ref().expect("built for this kind");
            let mut s = client.stream();
            while let Some(item) = s.next().await {
                match item.or_else(|e| fail(kind, format!("{e:?}")))? {
                    SSE::Connected(_) => on_open!(),
                    SSE::Event(e) => on_event!(e.data.len()),
                    SSE::Comment(_) => {}
                }
            }
        }
        _ => return fail(kind, "unknown client"),
    }
    fail(
        kind,
        format!("stream ended after {} of {} events", t.events, want.events),
    )
}

fn check(kind: &str, t: Tally, want: Expect) -> Result<Tally, String> {
    if t.events != want.events || t.data_bytes != want.data_bytes {
        return fail(
            kind,
            format!(
                "saw {} events with {} data bytes; expected {} with {}",
                t.events, t.data_bytes, want.events, want.data_bytes
            ),
        );
    }
    Ok(t)
}

fn runtime(kind: &str) -> tokio::runtime::Runtime {
    let mut b = if base_runtime(kind) == "ct1" {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    b.enable_all().build().unwrap()
}

/// How many times each stream reads its events over (in one body), so that
/// a run lasts long enough to time: the dashboard corpus is read fast.
fn repeat(corpus: &str) -> usize {
    let (var, default) = match corpus {
        "dashboard" => ("SSEKIT_BENCH_REPEAT_DASHBOARD", 8),
        _ => ("SSEKIT_BENCH_REPEAT_OPENAI", 1),
    };
    env_usize(var, default)
}

fn parse_meta(s: &str) -> Expect {
    let v: Vec<u64> = s
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    Expect {
        events: v[0],
        raw_bytes: v[1],
        data_bytes: v[2],
    }
}

fn client_main(kind: &str, corpus: &str, rt_kind: &str, streams: usize) {
    let addr = std::env::var("SSEKIT_BENCH_ADDR").expect("SSEKIT_BENCH_ADDR");
    let total = parse_meta(&plain_get(&addr, &format!("/meta/{corpus}")));
    let per_stream = events_per_stream(total.events as usize, streams, rt_kind);
    let k = repeat(corpus);
    let want = parse_meta(&plain_get(
        &addr,
        &format!("/meta/{corpus}?events={per_stream}&repeat={k}"),
    ));
    let h2 = row_h2(rt_kind);
    let (host, path) = if h2 {
        let h2_addr = std::env::var("SSEKIT_BENCH_H2_ADDR").expect("SSEKIT_BENCH_H2_ADDR");
        (h2_addr, "sse")
    } else if row_gzip(rt_kind) {
        (addr.clone(), "gz")
    } else {
        (addr.clone(), "sse")
    };
    let url = format!("http://{host}/{path}/{corpus}?events={per_stream}&repeat={k}");
    // HTTP/2: the server's counts before, to tell the connections this
    // client opened.
    let h2_before = h2.then(|| h2_stats(&addr));
    let rt = runtime(rt_kind);
    let clients = Arc::new(rt.block_on(async { Clients::new(kind, &url, h2) }));
    let gate = Arc::new(Gate::new(streams));
    let connect_start = Instant::now();
    let kind_owned = kind.to_string();
    let result: Result<Vec<Tally>, String> = rt.block_on(async {
        // `mt1spawn`: the one stream is a spawned task (on a worker, beside
        // reqwest's connection task) rather than `block_on`'s main thread.
        if streams == 1 && base_runtime(rt_kind) != "mt1spawn" {
            run_stream(kind, &url, &clients, want, &gate)
                .await
                .map(|t| vec![t])
        } else {
            let tasks: Vec<_> = (0..streams)
                .map(|_| {
                    let (kind, url, clients, gate) = (
                        kind_owned.clone(),
                        url.clone(),
                        clients.clone(),
                        gate.clone(),
                    );
                    tokio::spawn(
                        async move { run_stream(&kind, &url, &clients, want, &gate).await },
                    )
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.map_err(|e| e.to_string())??);
            }
            Ok(out)
        }
    });
    COUNTING.store(false, Relaxed);
    let (end, end_usage) = (Instant::now(), usage());
    let tallies = match result {
        Ok(t) => t,
        Err(e) => {
            eprintln!("FAILED {kind} {corpus} {rt_kind} x{streams}: {e}");
            std::process::exit(1);
        }
    };
    let (start, start_usage, rss_start) = gate.start.lock().unwrap().expect("all streams opened");
    let (allocs, alloc_bytes, _) = alloc_totals();
    // HTTP/2: all streams on one connection, one request each. Sockets
    // opened and closed without a request (a client racing to connect) are
    // reported, not failed.
    let h2_conns = h2_before.map(|before| {
        let after = h2_stats(&addr);
        let (tcp, used, requests) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
        if used != 1 || requests != streams as u64 {
            eprintln!(
                "FAILED {kind} {corpus} {rt_kind} x{streams}: {requests} requests on {used} HTTP/2 connections ({tcp} TCP connections); expected {streams} on one"
            );
            std::process::exit(1);
        }
        (tcp, used)
    });
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let mut out = json!({
        "client": kind,
        "corpus": corpus,
        "runtime": rt_kind,
        "streams": streams,
        "repeat": k,
        "events": sum(|t| t.events),
        "bytes": sum(|t| t.body_bytes),
        "data_bytes": sum(|t| t.data_bytes),
        "wall_s": (end - start).as_secs_f64(),
        "open_s": (start - connect_start).as_secs_f64(),
        "cpu_s": (end_usage.user_s - start_usage.user_s) + (end_usage.sys_s - start_usage.sys_s),
        "cpu_user_s": end_usage.user_s - start_usage.user_s,
        "cpu_sys_s": end_usage.sys_s - start_usage.sys_s,
        "vol_ctx_switches": end_usage.nvcsw - start_usage.nvcsw,
        "invol_ctx_switches": end_usage.nivcsw - start_usage.nivcsw,
        "allocs": allocs,
        "alloc_bytes": alloc_bytes,
        "rss_kib_start": rss_start,
        "rss_kib_end": vm_rss_kib(),
    });
    if let Some((tcp, used)) = h2_conns {
        out["h2_tcp_connections"] = json!(tcp);
        out["h2_connections_used"] = json!(used);
    }
    println!("{out}");
    // Skip dropping runtimes and connections.
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// Idle client

fn idle_client_main(kind: &str, streams: usize) {
    let nofile = raise_nofile();
    let addr = std::env::var("SSEKIT_BENCH_ADDR").expect("SSEKIT_BENCH_ADDR");
    let url = format!("http://{addr}/idle");
    let rt = runtime("mt");
    let clients = Arc::new(rt.block_on(async { Clients::new(kind, &url, false) }));
    let ready = Arc::new(Ready {
        count: AtomicUsize::new(0),
        streams,
        all: tokio::sync::Notify::new(),
    });
    let failed = Arc::new(Mutex::new(None::<String>));
    // Give the runtime's threads a moment to settle before the baseline.
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = vm_rss_kib();
    COUNTING.store(true, Relaxed);
    let (_, in0, out0) = alloc_totals();
    let t0 = Instant::now();
    for _ in 0..streams {
        let holder = hold_stream(kind, url.clone(), clients.clone(), ready.clone());
        let (ready, failed) = (ready.clone(), failed.clone());
        rt.spawn(async move {
            if let Err(e) = holder.await {
                failed.lock().unwrap().get_or_insert(e);
                ready.all.notify_one();
            }
        });
    }
    let opened = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                let notified = ready.all.notified();
                if ready.count.load(Relaxed) == streams || failed.lock().unwrap().is_some() {
                    break;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    });
    let open_s = t0.elapsed().as_secs_f64();
    if let Some(e) = failed.lock().unwrap().take() {
        eprintln!("FAILED idle {kind}: {e}");
        std::process::exit(1);
    }
    if !opened {
        eprintln!(
            "FAILED idle {kind}: only {} of {streams} streams open after 120 s",
            ready.count.load(Relaxed)
        );
        std::process::exit(1);
    }
    let rss_open = vm_rss_kib();
    let (allocs, in1, out1) = alloc_totals();
    // Past one heartbeat (every 5 s): the streams have been woken once more.
    std::thread::sleep(Duration::from_secs(6));
    let rss_beat = vm_rss_kib();
    let (_, in2, out2) = alloc_totals();
    let heap = |i: u64, o: u64| (i as i64 - in0 as i64) - (o as i64 - out0 as i64);
    if let Some(e) = failed.lock().unwrap().take() {
        eprintln!("FAILED idle {kind}: {e}");
        std::process::exit(1);
    }
    let out = json!({
        "client": kind,
        "streams": streams,
        "open_s": open_s,
        "rss_kib_before": rss_before,
        "rss_kib_open": rss_open,
        "rss_kib_after_heartbeat": rss_beat,
        "heap_bytes_open": heap(in1, out1),
        "heap_bytes_after_heartbeat": heap(in2, out2),
        "allocs_to_open": allocs,
        "nofile_limit": nofile,
    });
    println!("{out}");
    std::process::exit(0);
}

/// Counts streams that have seen their first event.
struct Ready {
    count: AtomicUsize,
    streams: usize,
    all: tokio::sync::Notify,
}

impl Ready {
    fn mark(&self) {
        if self.count.fetch_add(1, Relaxed) + 1 == self.streams {
            self.all.notify_one();
        }
    }
}

type Holder = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// One idle stream of client `kind`: it opens, marks itself ready at its
/// first event, then keeps reading (heartbeats) for as long as the process
/// lives. Each kind is its own boxed future, so a task is as large as that
/// client needs, not as the largest of them.
fn hold_stream(kind: &str, url: String, clients: Arc<Clients>, ready: Arc<Ready>) -> Holder {
    match kind {
        // The floor: the bodies alone (as `bytes_stream()`), the rest of
        // each `Response` dropped, as an SSE client keeps them.
        "reqwest" => Box::pin(async move {
            let resp = clients
                .reqwest
                .get(&url)
                .send()
                .await
                .or_else(|e| fail("reqwest", e))?;
            let mut body = resp.bytes_stream();
            let mut seen = false;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.or_else(|e| fail("reqwest", e))?;
                if !seen && !chunk.starts_with(b":") {
                    seen = true;
                    ready.mark();
                }
            }
            fail("reqwest", "idle stream ended")
        }),
        "ssekit" => Box::pin(async move {
            let mut es = ssekit::EventSource::new(&url).or_else(|e| fail("ssekit", e))?;
            let mut seen = false;
            while let Some(item) = es.next().await {
                if let ssekit::Event::Message(_) = item.or_else(|e| fail("ssekit", e))? {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail("ssekit", "idle stream ended")
        }),
        "sse-stream" => Box::pin(async move {
            let resp = clients
                .reqwest
                .get(&url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .or_else(|e| fail("sse-stream", e))?;
            let mut s = sse_stream::SseByteStream::new(resp.bytes_stream());
            let mut seen = false;
            while let Some(item) = s.next().await {
                if item.or_else(|e| fail("sse-stream", e))?.data.is_some() && !seen {
                    seen = true;
                    ready.mark();
                }
            }
            fail("sse-stream", "idle stream ended")
        }),
        "sseer" => Box::pin(async move {
            let mut es = sseer::EventSource::new(clients.reqwest.get(&url))
                .or_else(|e| fail("sseer", format!("{e:?}")))?;
            let mut seen = false;
            while let Some(item) = es.next().await {
                if let sseer::reqwest::StreamEvent::Event(_) = item.or_else(|e| fail("sseer", e))? {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail("sseer", "idle stream ended")
        }),
        "reqwest-eventsource" => Box::pin(async move {
            let kind = "reqwest-eventsource";
            let mut es = reqwest_eventsource::EventSource::new(clients.reqwest012.get(&url))
                .or_else(|e| fail(kind, e))?;
            let mut seen = false;
            while let Some(item) = es.next().await {
                if let reqwest_eventsource::Event::Message(_) = item.or_else(|e| fail(kind, e))? {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail(kind, "idle stream ended")
        }),
        "eventsource-client" => Box::pin(async move {
            let kind = "eventsource-client";
            let client = clients.launchdarkly.as_ref().expect("built for this kind");
            let mut s = client.stream();
            let mut seen = false;
            while let Some(item) = s.next().await {
                if let eventsource_client::SSE::Event(_) =
                    item.or_else(|e| fail(kind, format!("{e:?}")))?
                {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail(kind, "idle stream ended")
        }),
        other => {
            let e = format!("{other}: unknown client");
            Box::pin(async move { Err(e) })
        }
    }
}

// ---------------------------------------------------------------------------
// Parents

struct Server {
    child: std::process::Child,
    addr: String,
    /// The h2c listener.
    h2_addr: String,
    stats: Value,
}

impl Server {
    fn start(mb: usize) -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["server", &mb.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("server output").unwrap();
        let port = next().strip_prefix("PORT ").expect("PORT line").to_string();
        let h2_port = next()
            .strip_prefix("H2PORT ")
            .expect("H2PORT line")
            .to_string();
        let stats: Value = serde_json::from_str(next().strip_prefix("STATS ").unwrap()).unwrap();
        Server {
            child,
            addr: format!("127.0.0.1:{port}"),
            h2_addr: format!("127.0.0.1:{h2_port}"),
            stats,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the server exits on EOF
        let _ = self.child.wait();
    }
}

/// Runs this binary in a child mode; returns its JSON line, or exits the
/// whole benchmark with the child's message.
///
/// The run's JSON gets what else the machine did meanwhile: `server_cpu_s`
/// (the server process), `other_cpu_s` (every other process: busy CPU time
/// of the machine less the client's and the server's) and `steal_s` (time
/// the hypervisor gave to other machines), over the client's `lifetime_s`.
fn run_child(args: &[String], server: &Server, timeout: Duration) -> Value {
    let (busy0, steal0) = machine_cpu_s();
    let children0 = children_cpu_s();
    let server0 = proc_cpu_s(server.child.id());
    let t0 = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .env("SSEKIT_BENCH_ADDR", &server.addr)
        .env("SSEKIT_BENCH_H2_ADDR", &server.h2_addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a client process");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("client output"),
        Err(_) => {
            // SAFETY: signalling our own child by its id.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            eprintln!("FAILED: {args:?} still running after {timeout:?}; killed");
            std::process::exit(1);
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        eprintln!(
            "FAILED: {args:?} exited with {}\n{stderr}{stdout}",
            output.status
        );
        std::process::exit(1);
    }
    let lifetime = t0.elapsed().as_secs_f64();
    let (busy1, steal1) = machine_cpu_s();
    let client_cpu = children_cpu_s() - children0;
    let server_cpu = proc_cpu_s(server.child.id()) - server0;
    let line = stdout.lines().last().unwrap_or_default();
    let mut run: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        eprintln!("FAILED: {args:?} printed no JSON ({e}):\n{stdout}\n{stderr}");
        std::process::exit(1);
    });
    run["lifetime_s"] = json!(lifetime);
    run["client_total_cpu_s"] = json!(client_cpu);
    run["server_cpu_s"] = json!(server_cpu);
    run["other_cpu_s"] = json!((busy1 - busy0 - client_cpu - server_cpu).max(0.0));
    run["steal_s"] = json!(steal1 - steal0);
    run
}

/// Whether other processes took more than `SSEKIT_BENCH_MAX_OTHER` (default
/// 0.15) of a core during a run.
fn contended(run: &Value) -> Option<f64> {
    let limit = std::env::var("SSEKIT_BENCH_MAX_OTHER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.15);
    let other = run["other_cpu_s"].as_f64()? + run["steal_s"].as_f64()?;
    let share = other / run["lifetime_s"].as_f64()?;
    // /proc/stat counts in 10 ms ticks: ignore a few.
    (other > 0.05 && share > limit).then_some(share)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str) -> Option<Vec<String>> {
    let v = std::env::var(name).ok()?;
    Some(v.split(',').map(|s| s.trim().to_string()).collect())
}

/// The ssekit crate's folder: this bench's package is `benches/peers/` in it.
fn ssekit_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn results_dir() -> std::path::PathBuf {
    let dir = std::env::var("SSEKIT_BENCH_OUT").map_or_else(
        |_| ssekit_root().join("benches/results"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create the results folder");
    dir
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn clients_selected() -> Vec<String> {
    let clients: Vec<String> = env_list("SSEKIT_BENCH_CLIENTS")
        .unwrap_or_else(|| CLIENTS.iter().map(|c| c.to_string()).collect());
    for c in &clients {
        assert!(CLIENTS.contains(&c.as_str()), "unknown client {c}");
    }
    clients
}

/// Rows run by default; `SSEKIT_BENCH_ROWS` may also name
/// `<corpus>/mt1spawn` (one stream spawned as a task on the multi-thread
/// runtime), which is not run by default.
const ROWS: [(&str, &str, usize); 12] = [
    ("openai", "ct1", 1),
    ("openai", "mt100", 100),
    ("openai", "mt1", 1),
    ("openai", "h2-mt100", 100),
    ("openai", "gzip-ct1", 1),
    ("openai", "gzip-mt100", 100),
    ("dashboard", "ct1", 1),
    ("dashboard", "mt100", 100),
    ("dashboard", "mt1", 1),
    ("dashboard", "h2-mt100", 100),
    ("dashboard", "gzip-ct1", 1),
    ("dashboard", "gzip-mt100", 100),
];

fn throughput_parent() {
    let mb = env_usize("SSEKIT_BENCH_MB", 128);
    let rounds = env_usize("SSEKIT_BENCH_ROUNDS", 5);
    let clients = clients_selected();
    let rows: Vec<(&str, &str, usize)> = match env_list("SSEKIT_BENCH_ROWS") {
        Some(sel) => ROWS
            .iter()
            .copied()
            .chain(CORPORA.iter().map(|c| (*c, "mt1spawn", 1)))
            .filter(|(c, r, _)| sel.contains(&format!("{c}/{r}")))
            .collect(),
        None => ROWS.to_vec(),
    };
    let load = loadavg();
    if load > 0.5 {
        eprintln!("WARNING: 1-minute load average is {load:.2}: other work may skew the numbers");
    }
    let bench_start = Instant::now();
    let machine = machine_info();
    eprintln!("generating {mb} MiB corpora in the server process...");
    let server = Server::start(mb);
    eprintln!("server at {} ({})", server.addr, server.stats);
    let mut runs: Vec<Value> = Vec::new();
    for round in 0..rounds {
        for &(corpus, rt, streams) in &rows {
            for i in 0..clients.len() {
                let client = &clients[(i + round) % clients.len()];
                if let Some(why) = unable(client, rt) {
                    if round == 0 {
                        eprintln!("{corpus:9} {rt:10} {client:20} not run: {why}");
                    }
                    continue;
                }
                let args = vec![
                    "client".to_string(),
                    client.clone(),
                    corpus.to_string(),
                    rt.to_string(),
                    streams.to_string(),
                ];
                // A run during which other processes took CPU is run again
                // (after a pause), up to 3 times, then kept and marked.
                let mut attempt = 1;
                let mut run = loop {
                    let run = run_child(&args, &server, Duration::from_secs(600));
                    match contended(&run) {
                        Some(share) if attempt < 4 => {
                            eprintln!(
                                "round {round} {corpus} {rt} {client}: other processes used {:.0}% of a core; again in 20 s",
                                share * 100.0
                            );
                            std::thread::sleep(Duration::from_secs(20));
                            attempt += 1;
                        }
                        _ => break run,
                    }
                };
                run["round"] = json!(round);
                run["attempts"] = json!(attempt);
                run["contended"] = json!(contended(&run).is_some());
                let conns = match run["h2_tcp_connections"].as_u64() {
                    Some(1) => "  1 connection".to_string(),
                    Some(tcp) => {
                        format!("  1 connection used, {} opened and closed unused", tcp - 1)
                    }
                    None => String::new(),
                };
                eprintln!(
                    "round {round} {corpus:9} {rt:10} {client:20} {:>12.0} events/s  {:.2} s{conns}",
                    run["events"].as_f64().unwrap() / run["wall_s"].as_f64().unwrap(),
                    run["wall_s"].as_f64().unwrap()
                );
                runs.push(run);
            }
        }
    }
    let summary = summarize(&runs, &rows, &clients);
    print_throughput_tables(&summary, &rows, &clients, mb, rounds, &machine);
    let out = json!({
        "machine": machine,
        "ssekit": source_info(),
        "config": {
            "mb": mb,
            "rounds": rounds,
            "repeat": CORPORA.iter().map(|c| (c.to_string(), json!(repeat(c)))).collect::<serde_json::Map<_, _>>(),
            "gzip_share": gzip_share(),
            "h2_windows": {"stream": h2_windows().0, "connection": h2_windows().1},
            "clients": clients,
            "rows": rows.iter().map(|(c, r, s)| json!({"corpus": c, "runtime": r, "streams": s})).collect::<Vec<_>>(),
            "load_avg_1m_start": load,
            "load_avg_1m_end": loadavg(),
            "total_s": bench_start.elapsed().as_secs_f64(),
        },
        "server": server.stats,
        "summary": summary,
        "unable": unable_list(&rows, &clients),
        "runs": runs,
    });
    let path = results_dir().join("e2e.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap() + "\n").unwrap();
    eprintln!(
        "wrote {} ({:.0} s in all)",
        path.display(),
        bench_start.elapsed().as_secs_f64()
    );
}

/// The (row, client) pairs not run, with the reason.
fn unable_list(rows: &[(&str, &str, usize)], clients: &[String]) -> Vec<Value> {
    rows.iter()
        .flat_map(|&(corpus, rt, _)| {
            clients.iter().filter_map(move |client| {
                unable(client, rt).map(
                    |why| json!({"corpus": corpus, "runtime": rt, "client": client, "reason": why}),
                )
            })
        })
        .collect()
}

fn summarize(runs: &[Value], rows: &[(&str, &str, usize)], clients: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for &(corpus, rt, _) in rows {
        let of = |client: &str| -> Vec<&Value> {
            runs.iter()
                .filter(|r| r["corpus"] == corpus && r["runtime"] == rt && r["client"] == client)
                .collect()
        };
        let med = |rs: &[&Value], f: &dyn Fn(&Value) -> f64| {
            let mut v: Vec<f64> = rs.iter().map(|r| f(r)).collect();
            median(&mut v)
        };
        let rate = |r: &Value| r["events"].as_f64().unwrap() / r["wall_s"].as_f64().unwrap();
        let ceiling = med(&of("reqwest"), &rate);
        let cpu_per_event =
            |r: &Value| r["cpu_s"].as_f64().unwrap() / r["events"].as_f64().unwrap() * 1e6;
        let ceiling_cpu = med(&of("reqwest"), &cpu_per_event);
        for client in clients {
            if let Some(why) = unable(client, rt) {
                out.push(json!({
                    "corpus": corpus,
                    "runtime": rt,
                    "client": client,
                    "runs": 0,
                    "unable": why,
                }));
                continue;
            }
            let rs = of(client);
            let events_per_s = med(&rs, &rate);
            let cpu_us = med(&rs, &cpu_per_event);
            out.push(json!({
                "corpus": corpus,
                "runtime": rt,
                "client": client,
                "runs": rs.len(),
                "events_per_s": events_per_s,
                "mib_per_s": med(&rs, &|r| r["bytes"].as_f64().unwrap() / r["wall_s"].as_f64().unwrap() / 1048576.0),
                "ratio": events_per_s / ceiling,
                "cpu_us_per_event": cpu_us,
                "cpu_vs_ceiling": cpu_us / ceiling_cpu,
                "allocs_per_event": med(&rs, &|r| r["allocs"].as_f64().unwrap() / r["events"].as_f64().unwrap()),
                "vol_ctx_switches_per_event": med(&rs, &|r| r["vol_ctx_switches"].as_f64().unwrap() / r["events"].as_f64().unwrap()),
                "server_cpu_share": med(&rs, &|r| r["server_cpu_s"].as_f64().unwrap() / r["lifetime_s"].as_f64().unwrap()),
                "contended_runs": rs.iter().filter(|r| r["contended"] == true).count(),
            }));
        }
    }
    out
}

fn print_throughput_tables(
    summary: &[Value],
    rows: &[(&str, &str, usize)],
    clients: &[String],
    mb: usize,
    rounds: usize,
    machine: &Value,
) {
    println!(
        "\nEnd to end, {mb} MiB per corpus, median of {rounds} rounds; {} ({} cores), Linux {}, {}\n",
        machine["cpu"].as_str().unwrap_or(""),
        machine["nproc"],
        machine["kernel"].as_str().unwrap_or(""),
        machine["date"].as_str().unwrap_or("")
    );
    println!("| corpus | runtime | client | events/s | x ceiling | MiB/s | CPU µs/event | CPU x ceiling | allocs/event |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for s in summary {
        if s["unable"].is_string() {
            println!(
                "| {} | {} | {} | — | — | — | — | — | — |",
                s["corpus"].as_str().unwrap(),
                s["runtime"].as_str().unwrap(),
                s["client"].as_str().unwrap(),
            );
            continue;
        }
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.0} | {:.3} | {:.2} | {:.2} |",
            s["corpus"].as_str().unwrap(),
            s["runtime"].as_str().unwrap(),
            s["client"].as_str().unwrap(),
            s["events_per_s"].as_f64().unwrap(),
            s["ratio"].as_f64().unwrap(),
            s["mib_per_s"].as_f64().unwrap(),
            s["cpu_us_per_event"].as_f64().unwrap(),
            s["cpu_vs_ceiling"].as_f64().unwrap(),
            s["allocs_per_event"].as_f64().unwrap(),
        );
    }
    // The same ratios, one row per corpus x runtime.
    println!("\n| corpus / runtime | {} |", clients.join(" | "));
    println!("|---|{}", "---:|".repeat(clients.len()));
    for &(corpus, rt, _) in rows {
        let cells: Vec<String> = clients
            .iter()
            .map(|client| {
                let s = summary
                    .iter()
                    .find(|s| {
                        s["corpus"] == corpus
                            && s["runtime"] == rt
                            && s["client"] == client.as_str()
                    })
                    .unwrap();
                match s["ratio"].as_f64() {
                    Some(r) if !s["unable"].is_string() => format!("{r:.2}x"),
                    _ => "—".to_string(),
                }
            })
            .collect();
        println!("| {corpus} / {rt} | {} |", cells.join(" | "));
    }
    let unable = unable_list(rows, clients);
    if !unable.is_empty() {
        println!();
    }
    for u in &unable {
        println!(
            "— {} cannot run {} / {}: {}",
            u["client"].as_str().unwrap(),
            u["corpus"].as_str().unwrap(),
            u["runtime"].as_str().unwrap(),
            u["reason"].as_str().unwrap()
        );
    }
}

fn idle_parent() {
    let streams = env_usize("SSEKIT_BENCH_IDLE_STREAMS", 1000);
    let rounds = env_usize("SSEKIT_BENCH_IDLE_ROUNDS", 3);
    let clients = clients_selected();
    let machine = machine_info();
    let load = loadavg();
    let server = Server::start(0);
    let mut runs = Vec::new();
    for round in 0..rounds {
        for i in 0..clients.len() {
            let client = &clients[(i + round) % clients.len()];
            let args = vec![
                "idle-client".to_string(),
                client.clone(),
                streams.to_string(),
            ];
            let mut run = run_child(&args, &server, Duration::from_secs(300));
            run["round"] = json!(round);
            let per = |k: &str| {
                (run[k].as_f64().unwrap() - run["rss_kib_before"].as_f64().unwrap())
                    / streams as f64
            };
            eprintln!(
                "round {round} {client:20} {:.1} KiB/stream open, {:.1} after a heartbeat, all open in {:.3} s",
                per("rss_kib_open"),
                per("rss_kib_after_heartbeat"),
                run["open_s"].as_f64().unwrap()
            );
            runs.push(run);
            // Let the server notice the closed sockets before the next client.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let med = |client: &str, f: &dyn Fn(&Value) -> f64| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|r| r["client"] == client)
            .map(f)
            .collect();
        median(&mut v)
    };
    let kib = |k: &'static str| {
        move |r: &Value| {
            (r[k].as_f64().unwrap() - r["rss_kib_before"].as_f64().unwrap()) / streams as f64
        }
    };
    let heap = |k: &'static str| move |r: &Value| r[k].as_f64().unwrap() / streams as f64 / 1024.0;
    let floor = med("reqwest", &kib("rss_kib_open"));
    let floor_beat = med("reqwest", &kib("rss_kib_after_heartbeat"));
    let mut summary = Vec::new();
    for client in &clients {
        let open = med(client, &kib("rss_kib_open"));
        let beat = med(client, &kib("rss_kib_after_heartbeat"));
        summary.push(json!({
            "client": client,
            "kib_per_stream": open,
            "delta_vs_floor_kib": open - floor,
            "kib_per_stream_after_heartbeat": beat,
            "delta_vs_floor_after_heartbeat_kib": beat - floor_beat,
            "heap_kib_per_stream": med(client, &heap("heap_bytes_open")),
            "heap_kib_per_stream_after_heartbeat": med(client, &heap("heap_bytes_after_heartbeat")),
            "allocs_per_stream_to_open": med(client, &|r| r["allocs_to_open"].as_f64().unwrap() / streams as f64),
            "open_all_s": med(client, &|r| r["open_s"].as_f64().unwrap()),
        }));
    }
    println!(
        "\n{streams} idle streams (one event, then a comment every 5 s), median of {rounds} rounds; floor: one shared reqwest::Client holding the bodies\n"
    );
    println!("| client | KiB/stream | vs floor | after a heartbeat | vs floor | heap KiB/stream | allocs/stream | s to open all |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in &summary {
        println!(
            "| {} | {:.1} | {:+.1} | {:.1} | {:+.1} | {:.1} | {:.0} | {:.3} |",
            s["client"].as_str().unwrap(),
            s["kib_per_stream"].as_f64().unwrap(),
            s["delta_vs_floor_kib"].as_f64().unwrap(),
            s["kib_per_stream_after_heartbeat"].as_f64().unwrap(),
            s["delta_vs_floor_after_heartbeat_kib"].as_f64().unwrap(),
            s["heap_kib_per_stream"].as_f64().unwrap(),
            s["allocs_per_stream_to_open"].as_f64().unwrap(),
            s["open_all_s"].as_f64().unwrap(),
        );
    }
    let out = json!({
        "machine": machine,
        "ssekit": source_info(),
        "config": {"streams": streams, "rounds": rounds, "heartbeat_s": 5, "runtime": "multi-thread, 2 workers", "load_avg_1m_start": load},
        "summary": summary,
        "runs": runs,
    });
    let path = results_dir().join("idle.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap() + "\n").unwrap();
    eprintln!("wrote {}", path.display());
}

fn main() {
    // `cargo bench` adds `--bench`; other flags are not ours either.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "server" => server_main(arg(1).parse().unwrap_or(128)),
        "client" => client_main(arg(1), arg(2), arg(3), arg(4).parse().expect("streams")),
        "idle-client" => idle_client_main(arg(1), arg(2).parse().expect("streams")),
        "idle" => idle_parent(),
        "" | "throughput" => throughput_parent(),
        other => {
            eprintln!("unknown mode {other:?}: expected nothing (throughput) or idle");
            std::process::exit(2);
        }
    }
}
