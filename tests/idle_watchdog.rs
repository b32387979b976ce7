//! The idle timeout on the real clock, where open connections are watched by
//! the process's `ssekit-idle` thread instead of a Tokio timer each (the
//! paused-clock tests in `timing.rs` cover the Tokio-timer path).
//!
//! Bounds are generous: the watchdog notices silence between the period and
//! nine eighths of it, and a loaded 2-core machine adds its own delays.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use ssekit::{Event, EventSource, RetryPolicy};
use support::{Reply, TestServer};

const LIMIT: Duration = Duration::from_secs(20);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// The next `Reconnecting` event's cause must be the idle timeout; returns
/// when it came.
async fn idle_reconnection(es: &mut EventSource) -> Instant {
    loop {
        match tokio::time::timeout(LIMIT, es.next())
            .await
            .expect("no reconnection: the silent connection was never noticed")
        {
            Some(Ok(Event::Reconnecting(r))) => {
                assert!(r.cause().is_timeout(), "{:?}", r.cause());
                return Instant::now();
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a reconnection, got {other:?}"),
        }
    }
}

fn watchdog_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "ssekit-idle")
                .count()
        })
        .unwrap_or(1)
}

#[tokio::test]
async fn each_connection_of_a_silent_stream_times_out_on_the_watchdog() {
    // Every connection sends one event, then nothing. Three connections in a
    // row must each be noticed: the watch is reused, and after it expired
    // it must wake the task again for the next connection.
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let idle = ms(300);
    let mut es = EventSource::builder(server.url("/"))
        .idle_timeout(Some(idle))
        .reconnect_events(true)
        .retry_policy(RetryPolicy::default().initial_delay(ms(10)).jitter(false))
        .build()
        .unwrap();
    for connection in 1..=3 {
        let Some(Ok(Event::Open(_))) = es.next().await else {
            panic!("connection {connection} did not open");
        };
        let opened = Instant::now();
        let Some(Ok(Event::Message(_))) = es.next().await else {
            panic!("connection {connection}: no event");
        };
        let noticed = idle_reconnection(&mut es).await;
        let after = noticed - opened;
        assert!(
            after >= idle,
            "connection {connection} timed out after {after:?}, before {idle:?} of silence"
        );
        assert!(
            after < idle + Duration::from_secs(5),
            "connection {connection} timed out only after {after:?}"
        );
    }
    assert_eq!(server.request_count(), 3);
    assert_eq!(watchdog_threads(), 1, "one ssekit-idle thread per process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_with_different_timeouts_are_each_noticed_in_time() {
    // 40 streams with idle timeouts of 200 to 590 ms on one thread: a short
    // period added after long ones must not wait behind them.
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let mut tasks = Vec::new();
    for i in (0..40u64).rev() {
        let idle = ms(200 + 10 * i);
        let mut es = EventSource::builder(server.url("/"))
            .idle_timeout(Some(idle))
            .reconnect_events(true)
            .build()
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let Some(Ok(Event::Open(_))) = es.next().await else {
                panic!("did not open");
            };
            let opened = Instant::now();
            let noticed = idle_reconnection(&mut es).await;
            (idle, noticed - opened)
        }));
    }
    for task in tasks {
        let (idle, after) = task.await.unwrap();
        assert!(after >= idle, "{idle:?}: timed out after {after:?}");
        assert!(
            after < idle + Duration::from_secs(5),
            "{idle:?}: timed out only after {after:?}"
        );
    }
}

#[tokio::test]
async fn bytes_keep_a_connection_alive_past_many_periods() {
    // A comment every 60 ms for 1.5 s against a 250 ms idle timeout: six
    // periods without a timeout, then silence ends the connection.
    let server = TestServer::start(|_, i| match i {
        0 => {
            let mut r = Reply::sse().body("data: first\n\n");
            for _ in 0..25 {
                r = r.sleep(ms(60)).body(":\n");
            }
            r.stall()
        }
        _ => Reply::sse().body("data: second\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .idle_timeout(Some(ms(250)))
        .reconnect_events(true)
        .build()
        .unwrap();
    let start = Instant::now();
    idle_reconnection(&mut es).await;
    assert!(
        start.elapsed() >= ms(1500 + 250),
        "timed out after {:?} although comments kept arriving",
        start.elapsed()
    );
    assert_eq!(server.request_count(), 1);
}
