//! Soak: many streams for a long time against a server that restarts at
//! random moments and cuts connections mid-event; prints what it measured.
//!
//! ```text
//! cargo run --release --example soak -- --streams 1000 --minutes 10
//! ```
//!
//! The same program is the server and client of `scripts/netfault.sh`,
//! which runs them in two network namespaces and injects faults between
//! them: `--serve ADDR:PORT` runs only the server, `--client URL --streams
//! S --seconds T` only the checking client (exactly-once, in order, no
//! error reaching the caller, every stream live at the end).
//!
//! The server is this program again, run as a child process (`--serve`), so
//! a restart is a real process kill (`SIGKILL`) and a new process binding
//! the same port. It is stateless: event `n` of stream `k` is `id: n`,
//! `data: k:n`, and a request with `Last-Event-ID: n` continues at `n + 1`;
//! each connection is cut in the middle of an event after 20-200 events.
//!
//! Reported: events delivered, duplicates and losses (both must be 0: ids
//! allow resumption), reconnections, resident memory over time and its slope
//! after warm-up (KiB per minute), open file descriptors and live tokio
//! tasks before the streams and after they are all dropped (must be back at
//! the baseline). Exits 1 when any of those checks fails. All traffic stays
//! on 127.0.0.1; the run ends by itself after `--minutes`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ssekit::{ClientPool, Event, EventSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counts live heap bytes, so that heap growth (a leak) can be told apart
/// from resident-memory growth (allocator slack, fragmentation).
struct Counting;

static HEAP: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts the sizes it was given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn heap_kib() -> f64 {
    HEAP.load(Ordering::Relaxed) as f64 / 1024.0
}

struct Args {
    streams: usize,
    minutes: f64,
    serve: Option<String>,
    client: Option<String>,
    seconds: u64,
    idle: u64,
}

fn args() -> Args {
    let mut a = Args {
        streams: 1000,
        minutes: 10.0,
        serve: None,
        client: None,
        seconds: 60,
        idle: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--streams" => a.streams = value.parse().expect("--streams N"),
            "--minutes" => a.minutes = value.parse().expect("--minutes M"),
            "--serve" => a.serve = Some(value),
            "--client" => a.client = Some(value),
            "--seconds" => a.seconds = value.parse().expect("--seconds T"),
            "--idle" => a.idle = value.parse().expect("--idle SECS"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

// ---- the server (child process) ------------------------------------------

async fn serve(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    println!("{}", listener.local_addr().unwrap().port());
    let mut seed = 0u64;
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        seed += 1;
        tokio::spawn(connection(sock, seed));
    }
}

async fn connection(mut sock: tokio::net::TcpStream, seed: u64) {
    let _ = sock.set_nodelay(true);
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let stream: u64 = head
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.strip_prefix("/s/"))
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    let mut next: u64 = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("last-event-id")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .map_or(1, |last| last + 1);
    let mut rng = SmallRng::seed_from_u64(seed ^ (stream << 32));
    let cut_after = rng.random_range(20..200);
    let open = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    if sock.write_all(open).await.is_err() {
        return;
    }
    for sent in 0.. {
        let event = format!("id: {next}\ndata: {stream}:{next}\n\n");
        let bytes = if sent == cut_after {
            // Half an event, then the connection drops.
            &event.as_bytes()[..event.len() / 2]
        } else {
            event.as_bytes()
        };
        let chunk = [format!("{:x}\r\n", bytes.len()).as_bytes(), bytes, b"\r\n"].concat();
        if sock.write_all(&chunk).await.is_err() || sent == cut_after {
            return;
        }
        next += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
    }
}

// ---- the client (parent process) -----------------------------------------

fn start_server(port: u16) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let port = line.trim().parse().expect("the server prints its port");
    (child, port)
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[derive(Default)]
struct Totals {
    events: AtomicU64,
    duplicates: AtomicU64,
    losses: AtomicU64,
    opens: AtomicU64,
    errors: AtomicU64,
}

/// Least-squares slope of `(minutes, KiB)` points, in KiB per minute.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

async fn soak(a: Args) -> bool {
    raise_fd_limit(a.streams as u64 * 2 + 256);
    let metrics = tokio::runtime::Handle::current().metrics();
    let (mut child, port) = start_server(0);
    let base_fds = open_fds();
    let base_tasks = metrics.num_alive_tasks();
    let totals = Arc::new(Totals::default());
    let pool = ClientPool::default();
    let mut tasks = Vec::new();
    for k in 0..a.streams {
        let es = EventSource::builder(format!("http://127.0.0.1:{port}/s/{k}"))
            .client_pool(pool.clone())
            .build()
            .expect("valid configuration");
        let totals = totals.clone();
        tasks.push(tokio::spawn(async move {
            let mut es = es;
            let mut last = 0u64;
            while let Some(item) = es.next().await {
                match item {
                    Ok(Event::Message(m)) => {
                        let id: u64 = m.id().parse().unwrap_or(0);
                        totals.events.fetch_add(1, Ordering::Relaxed);
                        if id <= last {
                            totals.duplicates.fetch_add(1, Ordering::Relaxed);
                        } else if id > last + 1 {
                            totals.losses.fetch_add(id - last - 1, Ordering::Relaxed);
                        }
                        last = last.max(id);
                    }
                    Ok(Event::Open(_)) => {
                        totals.opens.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("stream {k}: {e:#}");
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    let run = Duration::from_secs_f64(a.minutes * 60.0);
    let start = Instant::now();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut next_restart = start + Duration::from_secs(rng.random_range(10..50));
    let mut next_sample = start;
    let mut samples = Vec::new();
    let mut restarts = 0;
    while start.elapsed() < run {
        let now = Instant::now();
        if now >= next_sample {
            let minutes = start.elapsed().as_secs_f64() / 60.0;
            samples.push((minutes, rss_kib() as f64, heap_kib()));
            println!(
                "t={:>5.1} min  rss={:>7} KiB  heap={:>7.0} KiB  events={:>9}  opens={:>6}  restarts={restarts}",
                minutes,
                rss_kib(),
                heap_kib(),
                totals.events.load(Ordering::Relaxed),
                totals.opens.load(Ordering::Relaxed),
            );
            next_sample = now + Duration::from_secs(15);
        }
        if now >= next_restart {
            let _ = child.kill();
            let _ = child.wait();
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..2000))).await;
            child = start_server(port).0;
            restarts += 1;
            next_restart = Instant::now() + Duration::from_secs(rng.random_range(10..50));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    drop(pool);
    let _ = child.kill();
    let _ = child.wait();
    // Let the runtime finish closing sockets.
    let settle = Instant::now();
    while (open_fds() > base_fds || metrics.num_alive_tasks() > base_tasks)
        && settle.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm: Vec<(f64, f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(m, _, _)| *m >= (a.minutes * 0.25).min(2.0))
        .collect();
    let rss: Vec<(f64, f64)> = warm.iter().map(|p| (p.0, p.1)).collect();
    let heap: Vec<(f64, f64)> = warm.iter().map(|p| (p.0, p.2)).collect();
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (events, dups, losses) = (t(&totals.events), t(&totals.duplicates), t(&totals.losses));
    let (fds, alive) = (open_fds(), metrics.num_alive_tasks());
    println!(
        "\nsoak: {} streams, {:.1} min, {restarts} server restarts",
        a.streams, a.minutes
    );
    println!("events delivered   {events}");
    println!("duplicates         {dups}");
    println!("losses             {losses}");
    println!("connections opened {}", t(&totals.opens));
    println!("terminal errors    {}", t(&totals.errors));
    println!(
        "rss                {:.0} KiB after warm-up, slope {:+.1} KiB/min",
        rss.first().map_or(0.0, |p| p.1),
        slope(&rss)
    );
    println!(
        "heap               {:.0} KiB after warm-up, slope {:+.1} KiB/min",
        heap.first().map_or(0.0, |p| p.1),
        slope(&heap)
    );
    println!("open fds           {base_fds} before, {fds} after dropping every stream");
    println!("live tokio tasks   {base_tasks} before, {alive} after dropping every stream");
    let ok = dups == 0
        && losses == 0
        && t(&totals.errors) == 0
        && events > 0
        && fds <= base_fds
        && alive <= base_tasks;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    ok
}

/// The checking client of `scripts/netfault.sh`: `streams` streams for
/// `seconds`, through whatever faults the script injects. Each must see
/// ids 1, 2, 3, ... exactly once, no `Err` may reach it (every fault is
/// transient), and each must have delivered an event in the last 20 s.
async fn client(a: Args) -> bool {
    let url = a.client.clone().unwrap();
    let idle = Duration::from_secs(a.idle);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..a.streams {
        let es = EventSource::builder(format!("{url}/s/{k}"))
            // A cut link leaves a half-open connection: only silence shows it.
            .idle_timeout(Some(idle))
            .response_timeout(Some(idle))
            .reconnect_events(true)
            .build()
            .expect("valid configuration");
        let seconds = a.seconds;
        tasks.push(tokio::spawn(async move {
            let mut es = es;
            let (mut last, mut events, mut dups, mut losses, mut reconnects) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            let mut last_event_at = Instant::now();
            let mut longest_gap = Duration::ZERO;
            let mut error = None;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
            while let Ok(item) = tokio::time::timeout_at(deadline, es.next()).await {
                match item {
                    Some(Ok(Event::Message(m))) => {
                        let id: u64 = m.id().parse().unwrap_or(0);
                        events += 1;
                        if id <= last {
                            dups += 1;
                        } else if id > last + 1 {
                            losses += id - last - 1;
                        }
                        last = last.max(id);
                        longest_gap = longest_gap.max(last_event_at.elapsed());
                        last_event_at = Instant::now();
                    }
                    Some(Ok(Event::Reconnecting(r))) => {
                        reconnects += 1;
                        eprintln!(
                            "stream {k}: reconnecting in {:?} (attempt {}): {}",
                            r.delay(),
                            r.attempt(),
                            r.cause()
                        );
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        error = Some(format!("{e:#}"));
                        break;
                    }
                    None => break,
                }
            }
            let live = last_event_at.elapsed() < Duration::from_secs(20);
            (
                k,
                events,
                dups,
                losses,
                reconnects,
                longest_gap,
                live,
                error,
            )
        }));
    }
    let mut ok = true;
    let (mut total, mut total_reconnects, mut worst_gap) = (0, 0, Duration::ZERO);
    for t in tasks {
        let (k, events, dups, losses, reconnects, gap, live, error) = t.await.unwrap();
        total += events;
        total_reconnects += reconnects;
        worst_gap = worst_gap.max(gap);
        if dups != 0 || losses != 0 || !live || error.is_some() || events == 0 {
            ok = false;
            println!(
                "stream {k}: FAIL events={events} duplicates={dups} losses={losses} live={live} error={error:?}"
            );
        }
    }
    println!(
        "netfault client: {} streams, {:.0} s, {total} events, {total_reconnects} reconnections, \
         longest silence {:.1} s: {}",
        a.streams,
        start.elapsed().as_secs_f64(),
        worst_gap.as_secs_f64(),
        if ok { "PASS" } else { "FAIL" }
    );
    ok
}

/// 1,000 streams need more descriptors than the usual soft limit of 1,024.
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() {
    let a = args();
    if let Some(addr) = a.serve {
        raise_fd_limit(65_536);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(serve(&addr));
        return;
    }
    if a.client.is_some() {
        let ok = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client(a));
        std::process::exit(if ok { 0 } else { 1 });
    }
    let ok = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(soak(a));
    std::process::exit(if ok { 0 } else { 1 });
}
