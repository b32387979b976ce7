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

use ssekit::{ClientPool, EventSource};

#[path = "support/live_bytes.rs"]
mod live_bytes;
use live_bytes::live;

/// Live bytes that building one stream (and with it one new pool client)
/// leaves allocated.
fn kept_by_one_stream(pool: &ClientPool, streams: &mut Vec<EventSource>) -> isize {
    let before = live();
    let es = EventSource::builder("http://127.0.0.1:9/feed")
        .client_pool(pool.clone())
        .build()
        .expect("a stream on the default pool");
    streams.push(es);
    live() - before
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
    let before = live();
    let plain = reqwest::Client::new();
    let plain_cost = live() - before;
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
