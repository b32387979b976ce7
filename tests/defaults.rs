//! The documented defaults, as values and as behaviour: what a stream or a
//! dispatcher built with no settings does.
//!
//! | default | documented in | value |
//! |---|---|---|
//! | attempt limit | `RetryPolicy`, `EventSourceBuilder` | unlimited |
//! | idle timeout | `DEFAULT_IDLE_TIMEOUT`, `EventSourceBuilder::idle_timeout` | 5 min, noticed at most 1/8 late |
//! | largest event | `codec::DEFAULT_MAX_EVENT_SIZE`, `EventSourceBuilder::max_event_size` | 16 MiB of field lines |
//! | subscriber buffer | `DEFAULT_SUBSCRIBER_CAPACITY`, `Dispatcher::spawn` | 256 events |
//! | overflow policy | `Overflow`, `Dispatcher::spawn` | `Backpressure` |
//!
//! The tests that wait minutes run on Tokio's paused clock (see
//! `tests/timing.rs`): the waits are virtual and exact.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::codec::DEFAULT_MAX_EVENT_SIZE;
use ssekit::{
    Dispatcher, Error, Event, EventSource, MessageEvent, Overflow, RetryPolicy, SseCodec,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_SUBSCRIBER_CAPACITY,
};
use support::{Reply, TestServer};
use tokio::time::Instant;

const MIB: usize = 1024 * 1024;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

/// The next item within `limit` (virtual time on a paused clock).
async fn next_within(es: &mut EventSource, limit: Duration) -> Option<Result<Event, Error>> {
    tokio::time::timeout(limit, es.next())
        .await
        .unwrap_or_else(|_| panic!("the stream produced nothing for {limit:?}"))
}

async fn message(es: &mut EventSource, limit: Duration) -> MessageEvent {
    loop {
        match next_within(es, limit).await {
            Some(Ok(Event::Message(m))) => return m,
            Some(Ok(_)) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[test]
fn the_documented_default_values() {
    assert_eq!(RetryPolicy::default().attempt_limit(), None, "unlimited");
    assert_eq!(DEFAULT_IDLE_TIMEOUT, secs(300), "5 minutes");
    assert_eq!(DEFAULT_MAX_EVENT_SIZE, 16 * MIB, "16 MiB");
    assert_eq!(SseCodec::new().max_event_size(), DEFAULT_MAX_EVENT_SIZE);
    assert_eq!(SseCodec::default().max_event_size(), DEFAULT_MAX_EVENT_SIZE);
    assert_eq!(DEFAULT_SUBSCRIBER_CAPACITY, 256);
    assert_eq!(Overflow::default(), Overflow::Backpressure);
    // 1 s, x2, 30 s cap (jitter only shortens these; see tests/client.rs).
    let nominal: Vec<_> = RetryPolicy::default()
        .jitter(false)
        .backoff()
        .take(7)
        .collect();
    assert_eq!(nominal, [1, 2, 4, 8, 16, 30, 30].map(secs));
}

#[tokio::test(start_paused = true)]
async fn a_default_stream_never_stops_reconnecting() {
    // A server that always refuses with a transient status: a stream with
    // every default keeps trying (each wait is at most the 30 s cap) and
    // never yields an error. 40 reconnection attempts, more than any small
    // limit would allow, take at most 20 virtual minutes.
    let server = TestServer::start(|_, _| Reply::status(503).body("busy")).await;
    let mut es = EventSource::new(server.url("/")).unwrap();
    let start = Instant::now();
    while server.request_count() < 41 {
        assert!(
            start.elapsed() < secs(41 * 30),
            "only {} requests in {:?}: waits longer than the 30 s cap",
            server.request_count(),
            start.elapsed()
        );
        // Nothing is yielded for a refused attempt (no reconnect events by
        // default); an error or an end would be the attempt limit.
        if let Ok(item) = tokio::time::timeout(secs(60), es.next()).await {
            panic!(
                "a default stream gave up after {} requests: {item:?}",
                server.request_count()
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_default_idle_timeout_is_five_minutes() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body("data: one\n\n").stall(),
        _ => Reply::sse().body("data: two\n\n").stall(),
    })
    .await;
    // Only reconnect events are turned on, to see the cause.
    let mut es = EventSource::builder(server.url("/"))
        .reconnect_events(true)
        .build()
        .unwrap();
    assert_eq!(message(&mut es, secs(60)).await.data(), "one");
    let last_byte = Instant::now();
    let r = loop {
        match next_within(&mut es, secs(3600)).await {
            Some(Ok(Event::Reconnecting(r))) => break r,
            Some(Ok(Event::Message(m))) => panic!("{m:?}"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    let silent = last_byte.elapsed();
    assert!(r.cause().is_timeout(), "{:?}", r.cause());
    assert!(
        r.cause().to_string().contains("300s"),
        "the cause reports 300 s: {}",
        r.cause()
    );
    // 300 s, plus at most an eighth of it (37.5 s).
    assert!(
        silent >= secs(300) && silent <= ms(337_500 + 5),
        "timed out after {silent:?} of silence"
    );
    assert_eq!(message(&mut es, secs(60)).await.data(), "two");
}

#[tokio::test]
async fn a_default_stream_takes_an_event_of_16_mib_and_refuses_one_byte_more() {
    // The limit counts the field lines as sent (`data:` included, line ends
    // not): a `data:` line of exactly 16 MiB is accepted.
    let exact = 16 * MIB - "data:".len();
    let server = TestServer::start(move |_, _| {
        let mut body = Vec::with_capacity(32 * MIB + 64);
        body.extend_from_slice(b"data:");
        body.resize(body.len() + exact, b'x');
        body.extend_from_slice(b"\n\ndata:");
        body.resize(body.len() + exact + 1, b'y');
        body.extend_from_slice(b"\n\n");
        Reply::sse().body(body).stall()
    })
    .await;
    let mut es = EventSource::new(server.url("/")).unwrap();
    let m = message(&mut es, secs(60)).await;
    assert_eq!(m.data().len(), exact);
    assert!(m.data().bytes().all(|b| b == b'x'));
    drop(m);
    let e = loop {
        match next_within(&mut es, secs(60)).await {
            Some(Ok(Event::Message(m))) => panic!("an event over 16 MiB was delivered: {m:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("ended without an error"),
        }
    };
    assert!(e.is_too_large(), "{e:?}");
    assert!(
        e.to_string().contains(&(16 * MIB).to_string()),
        "the error names the limit: {e}"
    );
    assert!(next_within(&mut es, secs(60)).await.is_none());
    assert_eq!(
        server.request_count(),
        1,
        "a too-large event is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_default_dispatcher_buffers_256_events_per_subscriber_and_waits_for_the_slowest() {
    const TOTAL: usize = 1000;
    let server = TestServer::start(|_, _| {
        let body: String = (0..TOTAL)
            .map(|i| format!("id: {i}\ndata: {i}\n\n"))
            .collect();
        Reply::sse().body(body).stall()
    })
    .await;
    let hub = Dispatcher::spawn(EventSource::new(server.url("/")).unwrap());
    // On this current-thread runtime the driver has not run yet: both
    // subscriptions exist before the first event.
    let mut slow = hub.subscribe_all();
    let mut fast = hub.subscribe("message");

    // `fast` reads everything it gets; `slow` reads nothing. Under
    // backpressure the driver stops when slow's buffer holds 256 events.
    // The event that finds it full has already been handed to `fast` (the
    // driver serves an event's subscribers from the last registered, and
    // `fast` registered after `slow`), so `fast` gets 256 + 1.
    let mut got = Vec::new();
    while let Ok(item) = tokio::time::timeout(secs(5), fast.next()).await {
        let m = item
            .expect("the stream ended")
            .expect("no error is expected");
        got.push(m.data().parse::<usize>().unwrap());
        assert!(got.len() <= TOTAL);
    }
    let want: Vec<usize> = (0..=DEFAULT_SUBSCRIBER_CAPACITY).collect();
    assert_eq!(
        got,
        want,
        "the reader got {} events before the full subscriber held the stream back",
        got.len()
    );

    // Once the slow one reads, both get every event, in order.
    let slow_reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < TOTAL {
            let m = tokio::time::timeout(secs(60), slow.next())
                .await
                .expect("the slow subscriber got nothing for 60 s")
                .expect("the stream ended")
                .expect("no error is expected");
            seen.push(m.data().parse::<usize>().unwrap());
        }
        seen
    });
    while got.len() < TOTAL {
        let m = tokio::time::timeout(secs(60), fast.next())
            .await
            .expect("the fast subscriber got nothing for 60 s after the slow one read")
            .expect("the stream ended")
            .expect("no error is expected");
        got.push(m.data().parse::<usize>().unwrap());
    }
    let all: Vec<usize> = (0..TOTAL).collect();
    assert_eq!(got, all, "the reader lost nothing");
    let seen = tokio::time::timeout(secs(60), slow_reader)
        .await
        .expect("the slow reader did not finish")
        .unwrap();
    assert_eq!(seen, all, "the slow subscriber lost nothing");
    assert_eq!(server.request_count(), 1);
}
