//! What each client of the default `ClientPool` costs, measured with a
//! counting allocator (this binary holds one test, so nothing else
//! allocates while it measures).
//!
//! Every `reqwest::Client` built with rustls loads and parses the system's
//! root certificates on its own: about 100 KiB and 2,200 allocations per
//! client, which with 100 streams per client was 1 KiB and 22 allocations
//! per idle stream (benches/e2e.rs idle mode). The default pool's clients
//! share one TLS configuration instead, so only its first client pays that.
#![cfg(all(feature = "rustls", not(feature = "native-tls")))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use ssekit::{ClientPool, EventSource};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only
// adds bookkeeping of the sizes it was given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live bytes that building one stream (and with it one new pool client)
/// leaves allocated.
fn kept_by_one_stream(pool: &ClientPool, streams: &mut Vec<EventSource>) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    let es = EventSource::builder("http://127.0.0.1:9/feed")
        .client_pool(pool.clone())
        .build()
        .expect("a stream on the default pool");
    streams.push(es);
    LIVE.load(Ordering::Relaxed) - before
}

#[test]
fn the_default_pools_clients_share_one_tls_configuration() {
    // The machine's roots are what a default client loads; without any,
    // reqwest cannot build a rustls client at all and there is nothing to
    // measure.
    if reqwest::Client::builder().build().is_err() {
        eprintln!("skipped: no system root certificates, so no default rustls client");
        return;
    }
    // Measured against a plain client, on this machine's root store.
    let before = LIVE.load(Ordering::Relaxed);
    let plain = reqwest::Client::new();
    let plain_cost = LIVE.load(Ordering::Relaxed) - before;
    drop(plain);

    // One stream per client: every stream builds a client.
    let pool = ClientPool::default().max_streams_per_client(1);
    let mut streams = Vec::new();
    let first = kept_by_one_stream(&pool, &mut streams);
    let later: Vec<isize> = (0..8)
        .map(|_| kept_by_one_stream(&pool, &mut streams))
        .collect();
    assert_eq!(pool.client_count(), 9);
    eprintln!("plain client {plain_cost} B; first pooled stream {first} B; later {later:?}");
    // The roots are the bulk of a client: with fewer than ~30 certificates
    // the difference would not show, and the test says so rather than pass
    // for the wrong reason.
    assert!(
        plain_cost > 40_000,
        "a plain client kept only {plain_cost} B: too few system roots to tell"
    );
    for (i, &cost) in later.iter().enumerate() {
        assert!(
            cost * 4 < plain_cost,
            "client {} of the pool kept {cost} B, against {plain_cost} B for a client \
             that loads the roots itself: the TLS configuration is not shared",
            i + 2
        );
    }
}
