//! Memory per stream of many HTTP/2 streams to one origin, through the
//! `ClientPool` (100 streams per client, so 10 connections for 1,000
//! streams) and, for comparison, with one `reqwest::Client` per stream (one
//! connection each). Prints heap and resident memory per open stream.
//!
//! ```text
//! cargo run --release --example h2_streams -- 1000
//! ```
//!
//! The server is an in-process h2c (prior knowledge) server on 127.0.0.1
//! that allows 100 concurrent streams per connection, sends each stream one
//! event and holds it open.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ssekit::{ClientPool, Event, EventSource};

// The same h2c server the tests use.
#[allow(dead_code)]
#[path = "../tests/support/net.rs"]
mod net;

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

fn rss_kib() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        * 4
}

/// Opens `n` streams (each from `pool()`), waits for each one's first
/// event, and returns them with the time it took.
async fn open(
    addr: std::net::SocketAddr,
    n: usize,
    pool: impl Fn() -> ClientPool,
) -> (Vec<EventSource>, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut es = EventSource::builder(format!("http://{addr}/s/{i}"))
            .client_pool(pool())
            .build()
            .unwrap();
        tasks.push(tokio::spawn(async move {
            while !matches!(es.next().await, Some(Ok(Event::Message(_)))) {}
            es
        }));
    }
    let mut streams = Vec::new();
    for t in tasks {
        streams.push(t.await.unwrap());
    }
    (streams, start.elapsed())
}

async fn measure(name: &str, addr: std::net::SocketAddr, n: usize, pool: impl Fn() -> ClientPool) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (heap0, rss0) = (HEAP.load(Ordering::Relaxed), rss_kib());
    let (streams, took) = open(addr, n, pool).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (heap1, rss1) = (HEAP.load(Ordering::Relaxed), rss_kib());
    println!(
        "{name:<28} {n} streams open in {:>5.2} s: heap {:>5.1} KiB/stream, rss {:>5.1} KiB/stream \
         (client and server in one process)",
        took.as_secs_f64(),
        (heap1 - heap0) as f64 / 1024.0 / n as f64,
        (rss1 - rss0) as f64 / n as f64,
    );
    drop(streams);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (addr, _) = net::h2c_server(100).await;
    let h2c = || reqwest::Client::builder().http2_prior_knowledge();
    let shared = ClientPool::new(h2c);
    measure("ClientPool (100 per client)", addr, n, || shared.clone()).await;
    measure("one client per stream", addr, n, || ClientPool::new(h2c)).await;
}
