//! Timing bounded on both sides, on Tokio's paused clock.
//!
//! Each test runs with `start_paused = true`: the clock stands still while
//! any task can run and jumps straight to the next timer once every task
//! waits, so the durations below are exact (virtual) and a test that waits
//! an hour takes milliseconds. The in-process server of `tests/support`
//! works on that clock: loopback I/O is done by the time the writer's call
//! returns, the URLs are IP literals (no DNS thread), and its sleeps and
//! request times ([`support::Request::at`]) are on Tokio's clock too.
//!
//! What is checked, from below *and* from above:
//!
//! - the idle timeout (`EventSourceBuilder::idle_timeout`: "noticed at most
//!   an eighth of the period late", and never early), after the last byte
//!   and while waiting for a response head;
//! - `Retry-After` with jitter on (the default policy): waited exactly, and
//!   capped at one hour;
//! - the 5 s limit on reading the body of a refused response.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Error, Event, EventSource, MessageEvent, Reconnect};
use support::{Reply, TestServer};
use tokio::time::Instant;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

/// Slack above an exact virtual duration: timers are kept in whole
/// milliseconds.
const SLACK: Duration = Duration::from_millis(5);

/// The next item, within `limit` of virtual time (a stream that hangs fails
/// the test instead of hanging it).
async fn next_within(es: &mut EventSource, limit: Duration) -> Option<Result<Event, Error>> {
    tokio::time::timeout(limit, es.next())
        .await
        .unwrap_or_else(|_| panic!("the stream produced nothing for {limit:?} (virtual)"))
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

/// The next reconnection; a message before it fails the test.
async fn reconnecting(es: &mut EventSource, limit: Duration) -> Reconnect {
    loop {
        match next_within(es, limit).await {
            Some(Ok(Event::Reconnecting(r))) => return r,
            Some(Ok(Event::Message(m))) => panic!("expected a reconnection, got {m:?}"),
            Some(Ok(_)) => {}
            other => panic!("expected a reconnection, got {other:?}"),
        }
    }
}

async fn terminal(es: &mut EventSource, limit: Duration) -> Error {
    loop {
        match next_within(es, limit).await {
            Some(Ok(Event::Message(m))) => panic!("expected the terminal error, got {m:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return e,
            None => panic!("the stream ended without an error"),
        }
    }
}

/// Asserts `expected <= got <= expected + slack`.
#[track_caller]
fn assert_between(what: &str, got: Duration, low: Duration, high: Duration) {
    assert!(
        got >= low && got <= high,
        "{what}: {got:?} is outside [{low:?}, {high:?}]"
    );
}

// ---- the idle timeout -------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn idle_timeout_fires_between_one_and_nine_eighths_of_the_period_after_the_last_byte() {
    // The event comes at different phases of the idle timer's 1 s ticks:
    // with the connection (0), between two ticks, and exactly on one.
    for offset in [0, 300, 1000, 2500] {
        let server = TestServer::start(move |_, i| match i {
            0 => Reply::sse().sleep(ms(offset)).body("data: one\n\n").stall(),
            _ => Reply::sse().body("data: two\n\n").stall(),
        })
        .await;
        let mut es = EventSource::builder(server.url("/"))
            .client(reqwest::Client::new())
            .idle_timeout(Some(secs(8)))
            .reconnect_events(true)
            .build()
            .unwrap();
        assert_eq!(message(&mut es, secs(60)).await.data(), "one");
        let last_byte = Instant::now();
        let r = reconnecting(&mut es, secs(60)).await;
        let silent = last_byte.elapsed();
        assert!(
            r.cause().is_timeout(),
            "offset {offset} ms: {:?}",
            r.cause()
        );
        assert!(
            r.cause().to_string().contains("8s"),
            "the cause names the period: {}",
            r.cause()
        );
        assert_between(
            &format!("event {offset} ms after the head, then silence; timed out after"),
            silent,
            secs(8),
            secs(9) + SLACK,
        );
        assert_eq!(message(&mut es, secs(60)).await.data(), "two");
        assert_eq!(server.request_count(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_covers_a_response_head_that_never_comes() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().delay_head(secs(24 * 3600)),
        _ => Reply::sse().body("data: ok\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .client(reqwest::Client::new())
        .idle_timeout(Some(secs(8)))
        .reconnect_events(true)
        .build()
        .unwrap();
    let r = reconnecting(&mut es, secs(60)).await;
    let at = Instant::now();
    assert!(r.cause().is_timeout(), "{:?}", r.cause());
    let sent = server.requests()[0].at;
    assert_between(
        "no response head; timed out after",
        at - sent,
        secs(8),
        secs(9) + SLACK,
    );
    assert_eq!(message(&mut es, secs(60)).await.data(), "ok");
}

#[tokio::test(start_paused = true)]
async fn a_late_response_head_restarts_the_idle_period() {
    // The head comes after 5 s of an 8 s period; nothing follows it. The
    // head is activity: the timeout comes 8-9 s after it, not 3 s.
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().delay_head(secs(5)).stall(),
        _ => Reply::sse().body("data: ok\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .client(reqwest::Client::new())
        .idle_timeout(Some(secs(8)))
        .reconnect_events(true)
        .build()
        .unwrap();
    match next_within(&mut es, secs(60)).await {
        Some(Ok(Event::Open(_))) => {}
        other => panic!("expected the stream to open, got {other:?}"),
    }
    let head = Instant::now();
    assert_between(
        "head delayed by",
        head - server.requests()[0].at,
        secs(5),
        secs(5) + SLACK,
    );
    let r = reconnecting(&mut es, secs(60)).await;
    assert!(r.cause().is_timeout(), "{:?}", r.cause());
    assert_between(
        "silence after the head; timed out after",
        head.elapsed(),
        secs(8),
        secs(9) + SLACK,
    );
}

// ---- Retry-After, with jitter on ---------------------------------------------

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_exactly_although_the_policy_has_jitter() {
    // The default policy: jitter on, 1 s initial delay. Four 503s in a row
    // each ask for 3 s: every delay is exactly 3 s (jitter would make them
    // differ and shorten them), and every request arrives 3 s after the
    // previous answer.
    let server = TestServer::start(|_, i| match i {
        0..=3 => Reply::status(503).header("retry-after", "3"),
        _ => Reply::sse().body("data: ok\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .client(reqwest::Client::new())
        .reconnect_events(true)
        .build()
        .unwrap();
    for attempt in 1..=4 {
        let r = reconnecting(&mut es, secs(60)).await;
        assert_eq!(r.attempt(), attempt);
        assert_eq!(r.cause().status().map(|s| s.as_u16()), Some(503));
        assert_eq!(r.delay(), secs(3), "attempt {attempt}: {r:?}");
    }
    assert_eq!(message(&mut es, secs(60)).await.data(), "ok");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 5);
    for (i, pair) in reqs.windows(2).enumerate() {
        assert_between(
            &format!("request {} came after request {i} by", i + 1),
            pair[1].at - pair[0].at,
            secs(3),
            secs(3) + SLACK,
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_at_one_hour() {
    let far = std::time::SystemTime::now() + secs(30 * 24 * 3600);
    let cases = [
        ("99999".to_string(), "delay-seconds over an hour"),
        (
            "99999999999999999999999".to_string(),
            "delay-seconds past u64",
        ),
        (httpdate::fmt_http_date(far), "an HTTP-date 30 days ahead"),
    ];
    for (value, what) in cases {
        let header = value.clone();
        let server = TestServer::start(move |_, i| match i {
            0 => Reply::status(503).header("retry-after", &header),
            _ => Reply::sse().body("data: ok\n\n").stall(),
        })
        .await;
        let mut es = EventSource::builder(server.url("/"))
            .client(reqwest::Client::new())
            .reconnect_events(true)
            .build()
            .unwrap();
        let r = reconnecting(&mut es, secs(60)).await;
        assert_eq!(r.delay(), secs(3600), "{what} ({value}): {r:?}");
        assert_eq!(message(&mut es, secs(4000)).await.data(), "ok", "{what}");
        let reqs = server.requests();
        assert_between(
            &format!("{what}: the next request came after"),
            reqs[1].at - reqs[0].at,
            secs(3600),
            secs(3600) + SLACK,
        );
    }
}

// ---- the error-body read timeout ---------------------------------------------

/// A body that sends `ab`, then `cd` a second later, then stalls.
fn stalling_error_body(status: u16) -> Reply {
    Reply::status(status)
        .header("content-type", "text/plain")
        .body("ab")
        .sleep(secs(1))
        .body("cd")
        .stall()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_error_body_fails_a_transient_attempt_five_seconds_after_the_head() {
    let server = TestServer::start(|_, i| match i {
        0 => stalling_error_body(503),
        _ => Reply::sse().body("data: ok\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .client(reqwest::Client::new())
        .reconnect_events(true)
        .build()
        .unwrap();
    let r = reconnecting(&mut es, secs(60)).await;
    let failed = Instant::now();
    let head = server.requests()[0].at;
    assert_between(
        "the stalled 503 body was given up after",
        failed - head,
        secs(5),
        secs(5) + SLACK,
    );
    assert_eq!(r.cause().status().map(|s| s.as_u16()), Some(503));
    assert_eq!(
        r.cause().body(),
        Some("abcd"),
        "the bytes that came are kept"
    );
    assert_eq!(message(&mut es, secs(60)).await.data(), "ok");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_error_body_ends_a_refused_stream_five_seconds_after_the_head() {
    let server = TestServer::start(|_, _| stalling_error_body(401)).await;
    let mut es = EventSource::builder(server.url("/"))
        .client(reqwest::Client::new())
        .build()
        .unwrap();
    let e = terminal(&mut es, secs(60)).await;
    let failed = Instant::now();
    assert_between(
        "the stalled 401 body was given up after",
        failed - server.requests()[0].at,
        secs(5),
        secs(5) + SLACK,
    );
    assert!(e.is_status(), "{e:?}");
    assert_eq!(e.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(e.body(), Some("abcd"));
    assert!(next_within(&mut es, secs(60)).await.is_none());
    assert_eq!(server.request_count(), 1, "a 401 is not retried");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_of_the_wrong_media_type_ends_the_stream_five_seconds_after_the_head() {
    let server = TestServer::start(|_, _| stalling_error_body(200)).await;
    let mut es = EventSource::builder(server.url("/"))
        .client(reqwest::Client::new())
        .build()
        .unwrap();
    let e = terminal(&mut es, secs(60)).await;
    assert_between(
        "the stalled text/plain body was given up after",
        Instant::now() - server.requests()[0].at,
        secs(5),
        secs(5) + SLACK,
    );
    assert!(e.is_content_type(), "{e:?}");
    assert_eq!(e.body(), Some("abcd"));
}

/// Issue 20: the largest durations saturate (a timer about 30 years ahead)
/// instead of panicking on the first poll or at a reconnection.
#[tokio::test(start_paused = true)]
async fn the_largest_durations_never_panic() {
    let server = TestServer::start(|_, n| match n {
        0 | 1 => Reply::status(503),
        _ => Reply::sse()
            .delay_head(secs(1))
            .body("data: ok\n\n")
            .stall(),
    })
    .await;
    // A response timeout of Duration::MAX with no idle timeout; an idle
    // timeout of Duration::MAX with the default response timeout.
    for (response, idle) in [(Some(Duration::MAX), None), (None, Some(Duration::MAX))] {
        let quiet = TestServer::start(|_, _| {
            Reply::sse()
                .delay_head(secs(1))
                .body("data: ok\n\n")
                .stall()
        })
        .await;
        let mut es = EventSource::builder(quiet.url("/"))
            .response_timeout(response)
            .idle_timeout(idle)
            .build()
            .unwrap();
        assert_eq!(message(&mut es, secs(60)).await.data(), "ok");
    }
    // A grown delay of Duration::MAX: the second 503 schedules it.
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(
            ssekit::RetryPolicy::default()
                .max_delay(Duration::MAX)
                .multiplier(1e300)
                .jitter(false),
        )
        .reconnect_events(true)
        .build()
        .unwrap();
    assert_eq!(reconnecting(&mut es, secs(60)).await.delay(), secs(1));
    assert_eq!(reconnecting(&mut es, secs(60)).await.delay(), Duration::MAX);
}
