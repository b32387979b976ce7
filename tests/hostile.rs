//! Hostile servers: each gets a clear error or a documented recovery, never
//! a panic, a hang or unbounded growth.
//!
//! | server | ssekit |
//! |---|---|
//! | an endless line | `is_too_large()` at the limit, not retried |
//! | a flood of lines that never dispatch | comments and unknown fields: no growth, no error; `event:` lines: `is_too_large()` |
//! | 1 byte per second | every byte is activity: no idle timeout, the event arrives |
//! | an enormous response head | a request error, retried with backoff |
//! | a malformed response head | a request error, retried with backoff |
//! | broken chunked encoding | a body error, retried |
//! | a body that ends mid-UTF-8 | U+FFFD in a complete event; an unfinished one is dropped |
//! | 200 with an empty body to every request | backoff grows: no storm |

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Error, Event, EventSource, MessageEvent, Reconnect, RetryPolicy};
use support::{Reply, TestServer};

const LONG: Duration = Duration::from_secs(20);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

async fn next(es: &mut EventSource, limit: Duration) -> Option<Result<Event, Error>> {
    tokio::time::timeout(limit, es.next())
        .await
        .unwrap_or_else(|_| panic!("the stream produced nothing for {limit:?}"))
}

async fn message(es: &mut EventSource) -> MessageEvent {
    loop {
        match next(es, LONG).await {
            Some(Ok(Event::Message(m))) => return m,
            Some(Ok(_)) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn terminal(es: &mut EventSource) -> Error {
    loop {
        match next(es, LONG).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return e,
            None => panic!("stream ended without an error"),
        }
    }
}

/// The next reconnection.
async fn reconnecting(es: &mut EventSource) -> Reconnect {
    loop {
        match next(es, LONG).await {
            Some(Ok(Event::Reconnecting(r))) => return r,
            Some(Ok(Event::Message(m))) => panic!("unexpected event {m:?}"),
            Some(Ok(_)) => {}
            other => panic!("expected a reconnection, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_endless_line_is_an_error_at_the_limit() {
    const LIMIT: usize = 256 * 1024;
    let server = TestServer::start(|_, _| {
        let mut r = Reply::sse().body("data: ");
        for _ in 0..64 {
            r = r.body(vec![b'x'; 64 * 1024]); // 4 MiB, no line end
        }
        r.stall()
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .max_event_size(LIMIT)
        .build()
        .unwrap();
    let e = terminal(&mut es).await;
    assert!(e.is_too_large(), "{e:?}");
    assert!(e.to_string().contains(&LIMIT.to_string()), "{e}");
    assert!(next(&mut es, LONG).await.is_none());
    assert_eq!(server.request_count(), 1, "not retried");
}

#[tokio::test]
async fn lines_that_never_dispatch_do_not_grow_or_fail_unless_they_count() {
    // 200,000 comments and unknown fields (about 2.6 MiB) against a 64 KiB
    // limit: none of them is part of an event.
    let server = TestServer::start(|req, _| {
        let mut r = Reply::sse();
        let line: &[u8] = if req.path == "/event-lines" {
            b"event: x\n"
        } else {
            b": keep-alive\nfoo: bar\n"
        };
        for _ in 0..100 {
            r = r.body(line.repeat(1000));
        }
        r.body("data: survived\n\n").stall()
    })
    .await;
    let mut es = EventSource::builder(server.url("/noise"))
        .max_event_size(64 * 1024)
        .build()
        .unwrap();
    assert_eq!(message(&mut es).await.data(), "survived");
    // `event:` lines belong to the event being built: they count.
    let mut es = EventSource::builder(server.url("/event-lines"))
        .max_event_size(64 * 1024)
        .build()
        .unwrap();
    assert!(terminal(&mut es).await.is_too_large());
}

#[tokio::test(start_paused = true)]
async fn a_one_byte_per_second_trickle_is_slow_but_not_idle() {
    // The idle timeout is about silence, not speed: each byte counts as
    // activity, so a 3 s idle timeout never fires on a 1 byte/s stream.
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .trickle(
                b"id: 1\ndata: slowly\n\n".to_vec(),
                1,
                Duration::from_secs(1),
            )
            .stall()
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .idle_timeout(Some(Duration::from_secs(3)))
        .reconnect_events(true)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    loop {
        match next(&mut es, Duration::from_secs(600)).await {
            Some(Ok(Event::Message(m))) => {
                assert_eq!(m.data(), "slowly");
                break;
            }
            Some(Ok(Event::Reconnecting(r))) => panic!("reconnected on a trickle: {r:?}"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(
        start.elapsed() >= Duration::from_secs(19),
        "{:?}",
        start.elapsed()
    );
    // When the trickle stops, the silence is noticed.
    match next(&mut es, Duration::from_secs(600)).await {
        Some(Ok(Event::Reconnecting(r))) => assert!(r.cause().is_timeout(), "{r:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn enormous_and_malformed_response_heads_are_retried_errors() {
    let huge = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-junk: {}\r\n\r\ndata: x\n\n",
        "j".repeat(1024 * 1024)
    );
    let server = TestServer::start(move |req, i| match (req.path.as_str(), i) {
        ("/huge", _) => Reply::raw(huge.clone()),
        ("/garbage", _) => Reply::raw("HTCPCP/1.0 418 I am a teapot, surely\r\n\r\n"),
        _ => Reply::status(404),
    })
    .await;
    for path in ["/huge", "/garbage"] {
        let mut es = EventSource::builder(server.url(path))
            .retry_policy(RetryPolicy::default().initial_delay(ms(5)).max_attempts(2))
            .reconnect_events(true)
            .build()
            .unwrap();
        let r = reconnecting(&mut es).await;
        let cause = r.cause();
        assert!(!cause.is_tls() && !cause.is_status(), "{path}: {cause:?}");
        let e = terminal(&mut es).await;
        assert!(e.is_retries_exhausted(), "{path}: {e:?}");
    }
    assert_eq!(server.request_count(), 6, "1 + 2 attempts each");
}

#[tokio::test]
async fn broken_chunked_encoding_is_a_body_error_and_resumes() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::raw(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
             11\r\nid: 1\ndata: one\n\n\r\nZZZ\r\nnot a chunk\r\n",
        ),
        _ => Reply::sse().body("id: 2\ndata: two\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(RetryPolicy::default().initial_delay(ms(5)))
        .reconnect_events(true)
        .build()
        .unwrap();
    assert_eq!(message(&mut es).await.data(), "one");
    let r = reconnecting(&mut es).await;
    assert!(r.cause().is_body(), "{r:?}");
    assert_eq!(message(&mut es).await.data(), "two");
    assert_eq!(server.requests()[1].header("last-event-id"), Some("1"));
}

#[tokio::test]
async fn a_body_that_ends_mid_utf8_never_panics() {
    let server = TestServer::start(|_, i| match i {
        // A complete event with a cut character, then an unfinished event
        // whose last character is cut by the end of the body.
        0 => Reply::sse().body(b"data: caf\xc3\n\ndata: na\xc3".to_vec()),
        _ => Reply::sse().body("data: next\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(RetryPolicy::default().initial_delay(ms(5)))
        .build()
        .unwrap();
    assert_eq!(message(&mut es).await.data(), "caf\u{FFFD}");
    // The unfinished event was dropped at the end of its body.
    assert_eq!(message(&mut es).await.data(), "next");
}

#[tokio::test]
async fn empty_200_answers_back_off_instead_of_storming() {
    let server = TestServer::start(|_, _| Reply::sse()).await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(RetryPolicy::default().jitter(false))
        .build()
        .unwrap();
    let run = tokio::spawn(async move {
        while let Some(item) = es.next().await {
            assert!(item.is_ok(), "an empty answer is transient: {item:?}");
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.abort();
    // Requests at 0, 1 s and 3 s: nothing delivered, so the delay grows.
    let count = server.request_count();
    assert!((2..=4).contains(&count), "{count} requests in 3 s");
}
