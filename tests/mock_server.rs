#![cfg(feature = "mock")]
//! `ssekit::testing::MockServer`: each script element, as an `EventSource`
//! sees it, and the requests the server records.
//!
//! Every wait is bounded (the `ExpectEvents` deadlines or an explicit
//! timeout), so a script that does not do what it says fails its test
//! instead of hanging.

use std::time::{Duration, Instant};

use futures::StreamExt;
use ssekit::testing::{ExpectEvents, MockServer, RecordedChunk, Recording, Script};
use ssekit::{Event, EventSource, MessageEvent, RetryPolicy};

const LIMIT: Duration = Duration::from_secs(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn fast() -> RetryPolicy {
    RetryPolicy::default().initial_delay(ms(10)).jitter(false)
}

/// The next item that is not a message, within the limit.
async fn next_non_message(es: &mut EventSource) -> Result<Event, ssekit::Error> {
    tokio::time::timeout(LIMIT, async {
        loop {
            match es.next().await {
                Some(Ok(Event::Message(_))) => continue,
                Some(item) => return item,
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .expect("no item within the limit")
}

#[tokio::test]
async fn events_comments_and_retry_arrive_as_written() {
    let server = MockServer::builder()
        .request(
            0,
            Script::sse()
                .comment(" hello")
                .retry(ms(300))
                .message(&MessageEvent::new("greet", "a\nb", "1"))
                .event("plain"),
        )
        .request(1, Script::sse().event("again").stall())
        .start()
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/feed"))
        .comments(true)
        .retry_policy(fast())
        .build()
        .unwrap();
    let mut items = Vec::new();
    let started = Instant::now();
    while items.len() < 4 {
        match tokio::time::timeout(LIMIT, es.next()).await.unwrap() {
            Some(Ok(Event::Comment(c))) => items.push(format!("comment {c}")),
            Some(Ok(Event::Message(m))) => {
                items.push(format!("{} {} {}", m.event(), m.data(), m.id()))
            }
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        items,
        [
            "comment  hello",
            "greet a\nb 1",
            "message plain 1",
            "message again 1"
        ]
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    // retry: 300 replaced the 10 ms initial delay.
    assert!(started.elapsed() >= ms(300), "{:?}", started.elapsed());
    assert_eq!(reqs[1].last_event_id(), Some("1"));
    assert_eq!(reqs[0].header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn a_status_with_retry_after_delays_the_next_attempt() {
    let server = MockServer::builder()
        .request(
            0,
            Script::status(503)
                .retry_after(1)
                .header("content-type", "text/plain")
                .write("busy"),
        )
        .request(1, Script::sse().event("ok").stall())
        .start()
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(fast())
        .reconnect_events(true)
        .build()
        .unwrap();
    let Event::Reconnecting(r) = next_non_message(&mut es).await.unwrap() else {
        panic!("expected a reconnection first");
    };
    assert_eq!(r.cause().status().map(|s| s.as_u16()), Some(503));
    assert_eq!(r.cause().body(), Some("busy"));
    assert!(r.delay() >= Duration::from_secs(1), "{:?}", r.delay());
    let m = es.next_message_within(LIMIT).await.unwrap();
    assert_eq!(m.data(), "ok");
}

#[tokio::test]
async fn a_status_that_is_not_retried_ends_the_stream() {
    // Only request 0 has a script: request 1 gets the default 404.
    let server = MockServer::builder()
        .request(0, Script::sse().event("only"))
        .start()
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(fast())
        .build()
        .unwrap();
    assert_eq!(es.next_message_within(LIMIT).await.unwrap().data(), "only");
    let err = es.next_message_within(LIMIT).await.unwrap_err();
    let e = err.stream_error().expect("a stream error");
    assert_eq!(e.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(e.body(), Some("no script for request 1"));
}

#[tokio::test]
async fn a_cut_mid_event_drops_that_event_and_resumes_after_the_last_id() {
    let first = "id: 1\ndata: complete\n\n";
    let server = MockServer::builder()
        .request(
            0,
            Script::sse()
                .write(first)
                .write("id: 2\ndata: half of it")
                .cut_after(first.len() + 10),
        )
        .request(
            1,
            Script::sse()
                .message(&MessageEvent::new("", "rest", "2"))
                .stall(),
        )
        .start()
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(fast())
        .reconnect_events(true)
        .build()
        .unwrap();
    let mut data = Vec::new();
    let mut cause = None;
    while data.len() < 2 {
        match tokio::time::timeout(LIMIT, es.next()).await.unwrap() {
            Some(Ok(Event::Message(m))) => data.push(m.data().to_owned()),
            Some(Ok(Event::Reconnecting(r))) => cause = Some(r.cause().to_string()),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        data,
        ["complete", "rest"],
        "the cut event is never delivered"
    );
    let cause = cause.expect("a reconnection");
    assert!(cause.contains("reading the event stream failed"), "{cause}");
    assert_eq!(server.requests()[1].last_event_id(), Some("1"));
}

#[tokio::test]
async fn a_stall_keeps_the_connection_open_until_the_idle_timeout() {
    let server = MockServer::builder()
        .request(0, Script::sse().event("a").stall())
        .request(1, Script::sse().event("b").stall())
        .start()
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(fast())
        .idle_timeout(Some(ms(400)))
        .reconnect_events(true)
        .build()
        .unwrap();
    assert_eq!(es.next_message_within(LIMIT).await.unwrap().data(), "a");
    // Open and silent: no event, no end.
    es.expect_no_message_within(ms(200)).await.unwrap();
    assert_eq!(server.request_count(), 1);
    let Event::Reconnecting(r) = next_non_message(&mut es).await.unwrap() else {
        panic!("expected a reconnection");
    };
    assert!(r.cause().is_timeout(), "{:#}", r.cause());
    assert_eq!(es.next_message_within(LIMIT).await.unwrap().data(), "b");
}

#[tokio::test]
async fn a_trickle_delivers_the_event_only_when_its_last_piece_arrives() {
    let text = "data: slow\n\n"; // 12 bytes: 6 pieces, 5 pauses
    let server = MockServer::start(Script::sse().trickle(text, 2, ms(40)).stall())
        .await
        .unwrap();
    let mut es = EventSource::new(server.url("/")).unwrap();
    let started = Instant::now();
    let m = es.next_message_within(LIMIT).await.unwrap();
    assert_eq!(m.data(), "slow");
    assert!(started.elapsed() >= ms(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn gzip_is_decoded_and_flushed_event_by_event() {
    let server = MockServer::start(
        Script::sse()
            .gzip()
            .event("first")
            .sleep(ms(600))
            .event("second")
            .stall(),
    )
    .await
    .unwrap();
    let mut es = EventSource::new(server.url("/")).unwrap();
    let started = Instant::now();
    assert_eq!(es.next_message_within(LIMIT).await.unwrap().data(), "first");
    let first_at = started.elapsed();
    assert!(
        first_at < ms(500),
        "the first event waited for the second: {first_at:?}"
    );
    assert_eq!(
        es.next_message_within(LIMIT).await.unwrap().data(),
        "second"
    );
    assert!(started.elapsed() >= ms(600));
}

#[tokio::test]
async fn a_recording_is_replayed_with_its_timing_and_resumed_after_an_id() {
    let mut rec = Recording::new("http://example/", 200, vec![]);
    rec.push(RecordedChunk::new(ms(0), "id: 1\ndata: one\n\n"));
    rec.push(RecordedChunk::new(ms(300), "id: 2\ndata: two\n\n"));
    rec.push(RecordedChunk::new(ms(400), "id: 3\ndata: three\n\n"));
    let shared = rec.clone();
    let server = MockServer::builder()
        .responder(move |req| {
            let part = req
                .last_event_id()
                .and_then(|id| shared.after_event_id(id))
                .unwrap_or_else(|| shared.clone());
            Script::sse().replay(&part).stall()
        })
        .start()
        .await
        .unwrap();

    let mut es = EventSource::new(server.url("/")).unwrap();
    let started = Instant::now();
    let mut times = Vec::new();
    for want in ["one", "two", "three"] {
        assert_eq!(es.next_message_within(LIMIT).await.unwrap().data(), want);
        times.push(started.elapsed());
    }
    assert!(times[1] - times[0] >= ms(280), "{times:?}");
    assert!(times[2] - times[1] >= ms(80), "{times:?}");
    drop(es);

    let mut resumed = EventSource::builder(server.url("/"))
        .last_event_id("2")
        .build()
        .unwrap();
    let m = resumed.next_message_within(LIMIT).await.unwrap();
    assert_eq!((m.data(), m.id()), ("three", "3"));
}

#[tokio::test]
async fn every_request_is_recorded() {
    let server = MockServer::start(Script::sse().event("ok").stall())
        .await
        .unwrap();
    let mut es = EventSource::post(server.url("/v1/chat?stream=1"))
        .header("x-trace", "abc")
        .header("content-type", "application/json")
        .last_event_id("41")
        .body(r#"{"prompt":"hi"}"#)
        .build()
        .unwrap();
    es.next_message_within(LIMIT).await.unwrap();
    let reqs = server.wait_for_requests(1, LIMIT).await;
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.index(), 0);
    assert_eq!(r.method(), "POST");
    assert_eq!(r.path(), "/v1/chat?stream=1");
    assert_eq!(r.header("X-Trace"), Some("abc"));
    assert_eq!(r.last_event_id(), Some("41"));
    assert_eq!(r.body_text(), r#"{"prompt":"hi"}"#);
    assert!(r.headers().contains_key("cache-control"));

    // Waiting for more requests than arrive returns what there is, on time.
    let started = Instant::now();
    assert_eq!(server.wait_for_requests(2, ms(200)).await.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn dropping_the_server_closes_its_connections() {
    let server = MockServer::start(Script::sse().event("a").stall())
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(RetryPolicy::default().max_attempts(0))
        .build()
        .unwrap();
    assert_eq!(es.next_message_within(LIMIT).await.unwrap().data(), "a");
    drop(server);
    let err = es.next_message_within(LIMIT).await.unwrap_err();
    assert!(err.stream_error().is_some(), "{err}");
}

/// Sends `request` on a new connection and reads the answer to its end.
async fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, socket.read_to_end(&mut answer))
        .await
        .expect("an answer within the limit")
        .unwrap();
    answer
}

#[tokio::test]
async fn keep_requests_keeps_the_latest_or_none() {
    let server = MockServer::builder()
        .script(Script::status(204))
        .keep_requests(2)
        .start()
        .await
        .unwrap();
    for k in 0..5 {
        let req = format!("POST /{k} HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc");
        let answer = raw_request(server.addr(), req.as_bytes()).await;
        assert!(answer.starts_with(b"HTTP/1.1 204"));
    }
    assert_eq!(server.request_count(), 5);
    let kept = server.requests();
    let seen: Vec<_> = kept.iter().map(|r| (r.index(), r.path())).collect();
    assert_eq!(seen, [(3, "/3"), (4, "/4")]);
    assert_eq!(server.wait_for_requests(5, LIMIT).await.len(), 2);

    // None kept: still counted, numbered and answered.
    let indices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = indices.clone();
    let server = MockServer::builder()
        .responder(move |req| {
            seen.lock().unwrap().push(req.index());
            Script::status(204)
        })
        .keep_requests(0)
        .start()
        .await
        .unwrap();
    for _ in 0..3 {
        raw_request(server.addr(), b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    }
    assert_eq!(server.request_count(), 3);
    assert!(server.requests().is_empty());
    assert_eq!(*indices.lock().unwrap(), [0, 1, 2]);
}

/// A client that never finishes its request head (or body) is dropped
/// after the read timeout, 30 s by default, instead of holding its task
/// for ever. Paused clock: the timeout passes at once.
#[tokio::test(start_paused = true)]
async fn an_unfinished_request_is_dropped_after_the_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (read_timeout, request) in [
        (None, &b"GET / HTTP/1.1\r\nhost: x\r\n"[..]),
        (Some(Duration::from_secs(2)), b"GET / HTTP/1.1\r\nhost"),
        (None, b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc"),
    ] {
        let mut builder = MockServer::builder().script(Script::status(204));
        if let Some(t) = read_timeout {
            builder = builder.read_timeout(t);
        }
        let server = builder.start().await.unwrap();
        let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        socket.write_all(request).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(600), socket.read(&mut buf))
            .await
            .expect("the server still holds the connection")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        let waited = started.elapsed();
        let expected = read_timeout.unwrap_or(Duration::from_secs(30));
        assert!(
            waited >= expected && waited < expected + Duration::from_secs(5),
            "{waited:?}"
        );
        assert_eq!(server.request_count(), 0);
    }
}

/// The end of a request head is found however the head is cut, and a head
/// sent a byte at a time is still read.
#[tokio::test]
async fn a_trickled_request_head_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = MockServer::start(Script::status(204)).await.unwrap();
    let head = format!("GET /slow HTTP/1.1\r\nx-pad: {}\r\n\r\n", "p".repeat(2000));
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    socket.set_nodelay(true).unwrap();
    for byte in head.as_bytes() {
        socket.write_all(std::slice::from_ref(byte)).await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, socket.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 204"));
    let reqs = server.requests();
    assert_eq!(reqs[0].path(), "/slow");
    assert_eq!(reqs[0].header("x-pad").map(str::len), Some(2000));
}

/// A non-ASCII Last-Event-ID, as a client sends it (its UTF-8 bytes),
/// reaches `last_event_id()`; invalid UTF-8 is replaced, not hidden.
#[tokio::test]
async fn a_non_ascii_last_event_id_is_decoded() {
    let server = MockServer::start(Script::sse().event("ok").stall())
        .await
        .unwrap();
    let mut es = EventSource::builder(server.url("/"))
        .last_event_id("café-№7")
        .build()
        .unwrap();
    es.next_message_within(LIMIT).await.unwrap();
    let reqs = server.wait_for_requests(1, LIMIT).await;
    assert_eq!(reqs[0].last_event_id(), Some("café-№7"));
    assert_eq!(reqs[0].header("last-event-id"), Some("café-№7"));

    let server = MockServer::start(Script::status(204)).await.unwrap();
    raw_request(
        server.addr(),
        b"GET / HTTP/1.1\r\nlast-event-id: a\xffb\r\nx-latin1: \xe9\r\n\r\n",
    )
    .await;
    let r = &server.requests()[0];
    assert_eq!(r.last_event_id(), Some("a\u{fffd}b"));
    assert_eq!(r.header("x-latin1"), None, "not UTF-8");
    assert_eq!(r.headers()["x-latin1"].as_bytes(), b"\xe9");
}
