//! Nothing outlives a stream: after an `EventSource` is dropped in any state
//! (connecting, open, waiting to reconnect), and after a `Dispatcher` shuts
//! down, no task and no connection remains (tokio's runtime metrics count
//! the tasks; the test server counts the open connections).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ssekit::{ClientPool, Dispatcher, Event, EventSource, ReadyState, RetryPolicy};
use support::{Reply, TestServer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const LONG: Duration = Duration::from_secs(20);

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (up to 20 s) until only `baseline` tasks are alive and the server
/// has no open connection.
async fn settles(server: &TestServer, baseline: usize, what: &str) {
    let start = std::time::Instant::now();
    loop {
        let (tasks, conns) = (alive_tasks(), server.open_connections());
        if tasks <= baseline && conns == 0 {
            return;
        }
        assert!(
            start.elapsed() < LONG,
            "{what}: {tasks} tasks alive (baseline {baseline}), {conns} connections open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn until_state(es: &mut EventSource, want: ReadyState) {
    let deadline = tokio::time::Instant::now() + LONG;
    while es.ready_state() != want {
        match tokio::time::timeout_at(deadline, es.next()).await {
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for {want:?}: {other:?}"),
        }
    }
}

/// A server that reads one request and never answers; the task ends when
/// the client closes the connection (its read sees the end), and counts it.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicUsize::new(0));
    let count = closed.clone();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        while sock.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        count.fetch_add(1, Ordering::SeqCst);
    });
    (url, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_in_any_state_leaves_nothing_behind() {
    let server = TestServer::start(|req, _| match req.path.as_str() {
        "/open" => Reply::sse().body("data: x\n\n").stall(),
        _ => Reply::status(503).header("retry-after", "600"),
    })
    .await;
    let baseline = alive_tasks();
    // Connecting: the request is sent, the head never comes.
    let (url, closed) = silent_server().await;
    let pool = ClientPool::default();
    let mut es = EventSource::builder(url)
        .client_pool(pool.clone())
        .build()
        .unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(300), es.next())
        .await
        .is_err());
    assert_eq!(es.ready_state(), ReadyState::Connecting);
    drop(es);
    drop(pool);
    let start = std::time::Instant::now();
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < LONG,
            "the pending request's connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    settles(&server, baseline, "connecting").await;
    for (path, state) in [
        ("/open", ReadyState::Open),
        ("/waiting", ReadyState::Reconnecting),
    ] {
        // A pool of its own, dropped with the stream: the shared pool would
        // keep idle pooled connections (by design) beyond the stream.
        let pool = ClientPool::default();
        let mut es = EventSource::builder(server.url(path))
            .client_pool(pool.clone())
            .retry_policy(RetryPolicy::default())
            .reconnect_events(true) // entering Waiting yields an item
            .build()
            .unwrap();
        until_state(&mut es, state).await;
        drop(es);
        drop(pool);
        settles(&server, baseline, path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_shut_down_leaves_nothing_behind() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let baseline = alive_tasks();
    for close in [true, false] {
        let pool = ClientPool::default();
        let es = EventSource::builder(server.url("/"))
            .client_pool(pool.clone())
            .build()
            .unwrap();
        // Subscribed before the driver starts, so the first event cannot
        // arrive before the subscription exists.
        let hub = Dispatcher::new(es, 16, Default::default());
        let mut sub = hub.subscribe_all();
        hub.start();
        let first = tokio::time::timeout(LONG, sub.next()).await.unwrap();
        assert_eq!(first.unwrap().unwrap().data(), "x");
        if close {
            hub.close();
        }
        drop(hub);
        drop(sub);
        drop(pool);
        settles(&server, baseline, if close { "closed" } else { "dropped" }).await;
    }
}

#[tokio::test]
async fn a_closed_stream_holds_no_connection_or_timer() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let pool = ClientPool::default();
    let mut es = EventSource::builder(server.url("/"))
        .client_pool(pool.clone())
        .build()
        .unwrap();
    while !matches!(
        tokio::time::timeout(LONG, es.next()).await.unwrap(),
        Some(Ok(Event::Message(_)))
    ) {}
    assert_eq!(pool.stream_count(), 1);
    es.close();
    assert_eq!(
        pool.stream_count(),
        0,
        "its place on the pooled client is given back"
    );
    let start = std::time::Instant::now();
    while server.open_connections() != 0 {
        assert!(
            start.elapsed() < LONG,
            "the connection stayed open after close()"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(es.next().await.is_none());
}
