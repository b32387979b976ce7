//! The test server of `tests/support` checked on its own: a handler that
//! panics must fail the test, although the client only sees a `500` (which
//! an `EventSource` retries past).

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Event, EventSource, RetryPolicy};
use support::{Reply, TestServer};

const LONG: Duration = Duration::from_secs(20);

/// Reads `es` to its end (bounded), returning the terminal error if any.
async fn drain(es: &mut EventSource) -> Option<ssekit::Error> {
    loop {
        match tokio::time::timeout(LONG, es.next())
            .await
            .expect("the stream produced nothing for 20 s")
        {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Some(e),
            None => return None,
        }
    }
}

fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .initial_delay(Duration::from_millis(5))
        .jitter(false)
        .max_attempts(attempts)
}

/// The motivating case: an `assert!` in a handler fails, the client gets a
/// 500, retries, and the next answer is fine. Without the recorded panic
/// the test would pass.
#[tokio::test]
#[should_panic(expected = "only the first request may be refused")]
async fn a_failed_assert_in_a_handler_fails_the_test_when_the_server_drops() {
    let server = TestServer::start(|_, i| {
        assert!(i == 0, "only the first request may be refused");
        Reply::status(503)
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .retry_policy(quick(2))
        .build()
        .unwrap();
    let e = drain(&mut es).await.expect("a terminal error");
    assert!(e.is_retries_exhausted(), "{e:?}");
    // The client saw only statuses: 503, then 500s for the panics.
    assert_eq!(e.status().map(|s| s.as_u16()), Some(500));
    assert_eq!(server.request_count(), 3);
    // The test "passes" up to here; dropping the server fails it.
}

/// A panicking handler is answered with a 500 and a closed connection, at
/// once: the client neither hangs nor waits for its idle timeout.
#[tokio::test]
async fn a_panicking_handler_is_answered_500_and_recorded() {
    let server = TestServer::start(|req, _| {
        if req.path == "/boom" {
            panic!("handler exploded on {}", req.path);
        }
        Reply::sse().body("data: fine\n\n").stall()
    })
    .await;
    let response = tokio::time::timeout(LONG, reqwest::get(server.url("/boom")))
        .await
        .expect("no answer to a panicking handler within 20 s")
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    // Taken, so that dropping the server does not fail this test, which
    // checks the panic itself.
    let panics = server.take_handler_panics();
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert!(
        panics[0].contains("request #0 (GET /boom): handler exploded on /boom"),
        "{panics:?}"
    );
    assert!(server.handler_panics().is_empty());
}

#[tokio::test]
#[should_panic(expected = "handler exploded")]
async fn assert_no_handler_panics_fails_at_once() {
    let server = TestServer::start(|_, _| -> Reply { panic!("handler exploded") }).await;
    let _ = tokio::time::timeout(LONG, reqwest::get(server.url("/")))
        .await
        .expect("no answer within 20 s");
    server.assert_no_handler_panics();
    unreachable!("assert_no_handler_panics returned after a handler panic");
}

/// A test that fails by itself while a handler panic is recorded reports
/// its own failure: the server's drop must not panic again (a panic during
/// a panic aborts the whole test binary, and `should_panic` would not see
/// this one).
#[tokio::test]
#[should_panic(expected = "the test's own failure")]
async fn a_test_failing_on_its_own_is_not_turned_into_an_abort() {
    let server = TestServer::start(|_, _| -> Reply { panic!("handler exploded") }).await;
    let _ = tokio::time::timeout(LONG, reqwest::get(server.url("/")))
        .await
        .expect("no answer within 20 s");
    assert_eq!(server.handler_panics().len(), 1);
    panic!("the test's own failure");
}

#[tokio::test]
async fn a_server_whose_handlers_do_not_panic_drops_quietly() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: a\n\n").stall()).await;
    let mut es = EventSource::builder(server.url("/")).build().unwrap();
    loop {
        match tokio::time::timeout(LONG, es.next())
            .await
            .expect("no event within 20 s")
        {
            Some(Ok(Event::Message(m))) => {
                assert_eq!(m.data(), "a");
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    server.assert_no_handler_panics();
    assert!(server.handler_panics().is_empty());
}
