//! What resets the backoff and the attempt limit (SPEC rules 23 and 24):
//! progress, not any event. On Tokio's paused clock (see `tests/timing.rs`),
//! against servers that crash-loop, replay, or poll.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Error, Event, EventSource, RetryPolicy};
use support::{Reply, TestServer};

/// Everything the stream yields until it ends (bounded in virtual time).
async fn drain(es: &mut EventSource, limit: Duration) -> (Vec<String>, Option<Error>) {
    let mut data = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, es.next()).await {
            Err(_) => return (data, None),
            Ok(Some(Ok(Event::Message(m)))) => data.push(m.data().to_owned()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return (data, Some(e)),
            Ok(None) => return (data, None),
        }
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .initial_delay(Duration::from_millis(200))
        .max_attempts(1)
}

/// The crash loop of issue 19: every connection gets `id: 1` and one event,
/// then a reset. Replaying the same event is not progress: with
/// `max_attempts(1)` the server sees exactly two requests (the event each
/// time), and the stream ends with the limit's error. Before, each replay
/// reset the count: 18 connections in 6 s, for ever.
#[tokio::test(start_paused = true)]
async fn a_server_that_replays_one_event_then_dies_is_stopped_by_the_limit() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("id: 1\ndata: hello\n\n")
            .drop_after(usize::MAX)
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(policy())
        .build()
        .unwrap();
    let (data, error) = drain(&mut es, Duration::from_secs(600)).await;
    let error = error.expect("the stream must end with the limit's error");
    assert!(error.is_retries_exhausted(), "{error:#}");
    assert_eq!(error.attempts(), Some(1));
    assert_eq!(data, ["hello", "hello"]);
    assert_eq!(server.request_count(), 2);
}

/// A server that ignores `Last-Event-ID` and replays the same three events
/// before dying: the first connection made progress, the replays do not.
#[tokio::test(start_paused = true)]
async fn a_server_that_replays_the_same_events_ignoring_last_event_id_backs_off() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n")
            .drop_after(usize::MAX)
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(
            RetryPolicy::default()
                .initial_delay(Duration::from_millis(100))
                .jitter(false)
                .max_attempts(3),
        )
        .build()
        .unwrap();
    let (_, error) = drain(&mut es, Duration::from_secs(600)).await;
    assert!(error.unwrap().is_retries_exhausted());
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4, "first request + 3 attempts");
    // The delays grow: 100 ms (after progress), then 200, 400 ms.
    let gaps: Vec<_> = reqs.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, want) in gaps.iter().zip([100, 200, 400]) {
        let want = Duration::from_millis(want);
        assert!(
            *gap >= want && *gap <= want + Duration::from_millis(5),
            "{gaps:?}"
        );
    }
}

/// The opposite case stays fast: a server that makes progress (new IDs each
/// time) and closes gracefully at its `retry:` is polled at its `retry:`,
/// never slowed or stopped by the limit.
#[tokio::test(start_paused = true)]
async fn a_polling_server_with_new_ids_is_polled_at_its_retry_without_growth() {
    let server = TestServer::start(|_, n| {
        Reply::sse().body(format!("retry: 200\nid: {n}\ndata: poll {n}\n\n"))
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(policy())
        .build()
        .unwrap();
    for n in 0..20 {
        let m = loop {
            match tokio::time::timeout(Duration::from_secs(5), es.next()).await {
                Ok(Some(Ok(Event::Message(m)))) => break m,
                Ok(Some(Ok(_))) => {}
                other => panic!("poll {n}: {other:?}"),
            }
        };
        assert_eq!(m.data(), format!("poll {n}"));
    }
    let reqs = server.requests();
    assert!(reqs.len() >= 20);
    // At its retry (jitter only lengthens the first reconnection after
    // progress, by at most half of 200 ms): no growth, ever.
    for w in reqs.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(200) && gap <= Duration::from_millis(305),
            "{gap:?}"
        );
    }
}

/// Without IDs, events on a connection that ended gracefully are progress
/// (a polling server without IDs); the same events cut by a reset are not.
#[tokio::test(start_paused = true)]
async fn without_ids_a_graceful_end_after_events_is_progress_and_a_reset_is_not() {
    let graceful = TestServer::start(|_, _| Reply::sse().body("data: tick\n\n")).await;
    let mut es = EventSource::builder(graceful.url("/"))
        .retry_policy(policy())
        .build()
        .unwrap();
    let (data, error) = drain(&mut es, Duration::from_secs(30)).await;
    assert!(error.is_none(), "{error:?}");
    assert!(data.len() >= 10, "{}", data.len());

    let reset =
        TestServer::start(|_, _| Reply::sse().body("data: tick\n\n").drop_after(usize::MAX)).await;
    let mut es = EventSource::builder(reset.url("/"))
        .retry_policy(policy())
        .build()
        .unwrap();
    let (data, error) = drain(&mut es, Duration::from_secs(600)).await;
    assert!(error.unwrap().is_retries_exhausted());
    assert_eq!(data.len(), 2);
    assert_eq!(reset.request_count(), 2);
}
