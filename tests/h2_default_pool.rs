//! SPEC rule 28 with the default client: 1,000 streams built with
//! `EventSource::new` (the shared `ClientPool`, reqwest's defaults) to one
//! HTTPS origin that negotiates HTTP/2 and allows 100 concurrent streams per
//! connection must all open (none left queued behind the stream limit).
//!
//! The server's certificate is trusted through `SSL_CERT_FILE`, which
//! reqwest's default TLS roots read on Linux when the first client is
//! built: this binary holds this one test, so nothing has built a client
//! before it sets the variable.
#![cfg(all(target_os = "linux", feature = "rustls", feature = "http2"))]

mod support;

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ssekit::{Event, EventSource};

/// Waits for the stream's first event (over HTTP/2) and hands it back open.
async fn open_one(mut es: EventSource) -> EventSource {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), es.next())
            .await
            .expect("a stream never opened")
        {
            Some(Ok(Event::Open(open))) => assert_eq!(open.version(), reqwest::Version::HTTP_2),
            Some(Ok(Event::Message(m))) => {
                assert_eq!(m.data(), "hi");
                return es;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_default_streams_to_one_h2_origin_all_open() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let mut pem = std::env::temp_dir();
    pem.push(format!("ssekit-h2-{}.pem", std::process::id()));
    std::fs::File::create(&pem)
        .unwrap()
        .write_all(cert.cert.pem().as_bytes())
        .unwrap();
    // SAFETY (of the call, which is not `unsafe` on this edition): no other
    // thread reads the environment yet; the runtime's workers only run the
    // tasks spawned below.
    std::env::set_var("SSL_CERT_FILE", &pem);

    let acceptor = support::net::tls_config(&cert, None, &[b"h2"]);
    let (addr, connections) = support::net::h2_tls_server(acceptor, 100).await;

    let url = format!("https://{addr}/feed");
    // The shared pool: a first stream (its client then knows the origin
    // speaks HTTP/2), then 999 at once.
    let first = open_one(EventSource::new(&url).unwrap()).await;
    let mut tasks = Vec::new();
    for _ in 1..1000 {
        let es = EventSource::new(&url).unwrap();
        tasks.push(tokio::spawn(open_one(es)));
    }
    let mut open = vec![first];
    for t in tasks {
        open.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a stream never opened")
                .unwrap(),
        );
    }
    assert_eq!(open.len(), 1000);
    let opened = connections.load(Ordering::SeqCst);
    assert!(opened >= 10, "{opened} connections for 1,000 streams");
    drop(open);

    // The control: one reqwest::Client for every stream, as `client()`
    // gives. After a first stream, 150 more: the 100-stream limit leaves
    // about 51 of them queued, which the response timeout turns into
    // retried failures instead of a silent wait.
    let client = reqwest::Client::new();
    let build = || {
        EventSource::builder(&url)
            .client(client.clone())
            .response_timeout(Some(Duration::from_secs(2)))
            .reconnect_events(true)
            .build()
            .unwrap()
    };
    let first = open_one(build()).await;
    let timed_out = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..150 {
        let mut es = build();
        let timed_out = timed_out.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match es.next().await {
                    Some(Ok(Event::Message(_))) => return es,
                    Some(Ok(Event::Reconnecting(r))) => {
                        assert!(r.cause().is_response_timeout(), "{r:?}");
                        timed_out.fetch_add(1, Ordering::SeqCst);
                        return es;
                    }
                    Some(Ok(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
        }));
    }
    let mut held = vec![first];
    for t in tasks {
        held.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let queued = timed_out.load(Ordering::SeqCst);
    assert!(
        (40..=60).contains(&queued),
        "{queued} of 150 streams on one client timed out behind the limit"
    );
    let _ = std::fs::remove_file(pem);
}
