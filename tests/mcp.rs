//! Agent streams: MCP Streamable HTTP (revision 2025-11-25) against
//! in-process servers that answer as MCP servers do (SPEC rules 17 and 25).
//!
//! - the caller's `Accept` reaches the server (MCP answers 406 otherwise);
//! - a POST answer cut after an event ID resumes by GET with
//!   `Last-Event-ID`, no body, exactly `retry:` later; a priming event
//!   (ID, empty data) yields no message;
//! - a POST answer cut before any ID is not re-sent, and the error says
//!   why; the opted-in re-send still works;
//! - a JSON answer is one message;
//! - the resumed GET is itself resumed after a graceful end (polling).
//!
//! Timing tests run on Tokio's paused clock (see `tests/timing.rs`).

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Error, Event, EventSource, MessageEvent};
use support::{Reply, TestServer};

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add_numbers","arguments":{"a":2,"b":3}}}"#;
const RESULT: &str =
    r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"5"}]}}"#;
const BOTH: &str = "application/json, text/event-stream";

/// The next item within a generous (virtual or real) bound.
async fn next(es: &mut EventSource) -> Option<Result<Event, Error>> {
    tokio::time::timeout(Duration::from_secs(60), es.next())
        .await
        .expect("the stream produced nothing for 60 s")
}

async fn message(es: &mut EventSource) -> MessageEvent {
    loop {
        match next(es).await {
            Some(Ok(Event::Message(m))) => return m,
            Some(Ok(_)) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn terminal(es: &mut EventSource) -> Error {
    loop {
        match next(es).await {
            Some(Ok(Event::Message(m))) => panic!("expected the terminal error, got {m:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return e,
            None => panic!("the stream ended without an error"),
        }
    }
}

/// An MCP-style tool call: POST, JSON body, both media types accepted,
/// the session header.
fn call(server: &TestServer) -> ssekit::EventSourceBuilder {
    EventSource::post(server.url("/mcp"))
        .header("accept", BOTH)
        .header("content-type", "application/json")
        .header("mcp-session-id", "session-1")
        .body(CALL)
}

/// Like an MCP server: 406 unless `Accept` names both media types.
fn accepts_both(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/json") && a.contains("text/event-stream"))
}

#[tokio::test]
async fn the_callers_accept_and_cache_control_reach_the_server() {
    let server = TestServer::start(|req, _| {
        if accepts_both(req.header("accept")) {
            Reply::sse().body(format!("data: {RESULT}\n\n"))
        } else {
            Reply::status(406).body(
                "Not Acceptable: Client must accept both application/json and text/event-stream",
            )
        }
    })
    .await;
    let mut es = call(&server).build().unwrap();
    assert_eq!(message(&mut es).await.data(), RESULT);
    drop(es);
    // `application/json` alone gets `text/event-stream` added; a caller's
    // Cache-Control is kept.
    let mut es = EventSource::post(server.url("/mcp"))
        .header("accept", "application/json")
        .header("cache-control", "max-age=0")
        .body(CALL)
        .build()
        .unwrap();
    assert_eq!(message(&mut es).await.data(), RESULT);
    drop(es);
    // No Accept at all: the plain SSE one, which this server refuses with
    // its body in the error.
    let mut es = EventSource::post(server.url("/mcp"))
        .body(CALL)
        .build()
        .unwrap();
    let e = terminal(&mut es).await;
    assert_eq!(e.status().map(|s| s.as_u16()), Some(406), "{e}");
    assert!(e.body().unwrap().contains("must accept both"), "{e:#}");
    let seen: Vec<_> = server
        .requests()
        .iter()
        .map(|r| {
            (
                r.header_all("accept").join(" | "),
                r.header_all("cache-control").join(" | "),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (BOTH.to_owned(), "no-cache".to_owned()),
            (BOTH.to_owned(), "max-age=0".to_owned()),
            ("text/event-stream".to_owned(), "no-cache".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_post_answer_cut_after_an_id_resumes_by_get_exactly_retry_later() {
    let server = TestServer::start(|req, n| match n {
        // The answer: a priming event (ID and retry, empty data), then the
        // server ends it gracefully before the result.
        0 => Reply::sse().body("id: event-1\nretry: 500\ndata: \n\n"),
        // The resumption: another priming event, then the result.
        _ if req.method == "GET" => Reply::sse()
            .body("id: event-2\nretry: 500\ndata: \n\n")
            .body(format!("event: message\nid: event-3\ndata: {RESULT}\n\n"))
            .stall(),
        _ => Reply::status(500),
    })
    .await;
    let mut es = call(&server).resume_by_get(true).build().unwrap();
    // The priming events yield no message: the first one is the result.
    let m = message(&mut es).await;
    assert_eq!((m.data(), m.id()), (RESULT, "event-3"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let (post, get) = (&reqs[0], &reqs[1]);
    assert_eq!(post.method, "POST");
    assert_eq!(post.body_text(), CALL);
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, "/mcp");
    assert_eq!(get.header("last-event-id"), Some("event-1"));
    assert_eq!(get.header("mcp-session-id"), Some("session-1"));
    assert_eq!(get.header("accept"), Some(BOTH));
    assert!(get.body.is_empty(), "the GET carried a body");
    assert_eq!(get.header("content-type"), None);
    assert_eq!(get.header("content-length"), None);
    // Exactly `retry:` later: no jitter (the MCP conformance suite fails a
    // reconnection 50 ms early and warns at 200 ms late).
    let waited = get.at - post.at;
    assert!(
        waited >= Duration::from_millis(500) && waited <= Duration::from_millis(505),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resumed_get_that_ends_gracefully_is_resumed_again_from_the_newest_id() {
    let server = TestServer::start(|_, n| match n {
        0 => Reply::sse().body("id: 1\nretry: 200\ndata: \n\n"),
        1 => Reply::sse().body("id: 2\ndata: progress\n\n"),
        _ => Reply::sse()
            .body(format!("id: 3\ndata: {RESULT}\n\n"))
            .stall(),
    })
    .await;
    let mut es = call(&server).resume_url("/mcp/stream").build().unwrap();
    assert_eq!(message(&mut es).await.data(), "progress");
    assert_eq!(message(&mut es).await.data(), RESULT);
    let reqs = server.requests();
    let got: Vec<_> = reqs
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.header("last-event-id"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("POST", "/mcp", None),
            ("GET", "/mcp/stream", Some("1")),
            ("GET", "/mcp/stream", Some("2")),
        ]
    );
    for pair in reqs.windows(2) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited >= Duration::from_millis(200) && waited <= Duration::from_millis(205),
            "{waited:?}"
        );
    }
}

#[tokio::test]
async fn a_post_answer_cut_before_any_id_is_not_re_sent_and_the_error_says_why() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("event: message\ndata: {\"partial\":true}\n\n")
            // Cut mid-answer: no terminating chunk.
            .drop_after(usize::MAX)
    })
    .await;
    let mut es = call(&server).resume_by_get(true).build().unwrap();
    assert_eq!(message(&mut es).await.data(), "{\"partial\":true}");
    let e = terminal(&mut es).await;
    assert!(e.is_not_resent(), "{e:#}");
    let text = e.to_string();
    assert!(
        text.contains("before any event ID arrived") && text.contains("not re-sent"),
        "{text}"
    );
    assert!(next(&mut es).await.is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.request_count(), 1, "the POST was re-sent");
}

#[tokio::test]
async fn an_answer_that_opens_and_breaks_with_nothing_is_not_re_sent_either() {
    let server = TestServer::start(|_, _| Reply::sse().drop_after(0)).await;
    let mut es = call(&server).resume_by_get(true).build().unwrap();
    let e = terminal(&mut es).await;
    assert!(
        e.is_not_resent() && e.to_string().contains("event ID"),
        "{e:#}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn an_answer_without_ids_that_ends_gracefully_is_complete() {
    // The MCP TypeScript SDK's answers: no IDs, closed after the result.
    let server =
        TestServer::start(|_, _| Reply::sse().body(format!("event: message\ndata: {RESULT}\n\n")))
            .await;
    let mut es = call(&server).resume_by_get(true).build().unwrap();
    assert_eq!(message(&mut es).await.data(), RESULT);
    assert!(
        next(&mut es).await.is_none(),
        "a complete answer ends cleanly"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_opted_in_re_send_still_re_sends_the_post() {
    let server = TestServer::start(|_, n| match n {
        0 => Reply::sse().drop_after(0),
        _ => Reply::sse().body(format!("data: {RESULT}\n\n")).stall(),
    })
    .await;
    let mut es = call(&server)
        .resume_by_get(true)
        .resend_after_events(true)
        .build()
        .unwrap();
    assert_eq!(message(&mut es).await.data(), RESULT);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!((r.method.as_str(), r.body_text().as_str()), ("POST", CALL));
    }
}

#[tokio::test(start_paused = true)]
async fn failures_before_an_answer_opened_re_send_the_post() {
    // A 503 is not an answer: nothing ran, the POST may be sent again.
    let server = TestServer::start(|_, n| match n {
        0 => Reply::status(503).header("retry-after", "1"),
        _ => Reply::sse()
            .body(format!("id: 1\ndata: {RESULT}\n\n"))
            .stall(),
    })
    .await;
    let mut es = call(&server).resume_by_get(true).build().unwrap();
    assert_eq!(message(&mut es).await.data(), RESULT);
    let methods: Vec<_> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["POST", "POST"]);
}

#[tokio::test]
async fn a_json_answer_is_one_message_after_the_open_event() {
    let server = TestServer::start(|_, _| {
        Reply::status(200)
            .header("content-type", "application/json")
            .header("mcp-session-id", "session-9")
            .body(&RESULT[..20])
            .body(&RESULT[20..])
    })
    .await;
    let mut es = call(&server)
        .resume_by_get(true)
        .accept_json(true)
        .build()
        .unwrap();
    match next(&mut es).await {
        Some(Ok(Event::Open(open))) => {
            assert_eq!(open.headers()["mcp-session-id"], "session-9")
        }
        other => panic!("expected the open event, got {other:?}"),
    }
    let m = message(&mut es).await;
    assert_eq!((m.event(), m.data()), ("message", RESULT));
    assert!(next(&mut es).await.is_none());
    assert_eq!(server.request_count(), 1);
    // Without the option, JSON is the wrong media type, as before.
    let mut es = call(&server).build().unwrap();
    let e = terminal(&mut es).await;
    assert!(e.is_content_type(), "{e:#}");
}

#[tokio::test]
async fn a_json_answer_over_the_size_limit_is_an_error() {
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(4096));
    let server = TestServer::start(move |_, _| {
        Reply::status(200)
            .header("content-type", "application/vnd.api+json")
            .body(big.clone())
    })
    .await;
    let mut es = call(&server)
        .accept_json(true)
        .max_event_size(1024)
        .build()
        .unwrap();
    let e = terminal(&mut es).await;
    assert!(e.is_too_large(), "{e:#}");
}

#[tokio::test]
async fn accept_json_without_an_accept_asks_for_both() {
    let server = TestServer::start(|req, _| {
        if accepts_both(req.header("accept")) {
            Reply::status(200)
                .header("content-type", "application/json")
                .body(RESULT)
        } else {
            Reply::status(406)
        }
    })
    .await;
    let mut es = EventSource::post(server.url("/mcp"))
        .body(CALL)
        .accept_json(true)
        .build()
        .unwrap();
    assert_eq!(message(&mut es).await.data(), RESULT);
    assert_eq!(server.requests()[0].header("accept"), Some(BOTH));
}

#[test]
fn a_resume_url_that_is_not_http_is_refused_by_build() {
    let e = EventSource::post("http://127.0.0.1:1/mcp")
        .resume_url("ftp://127.0.0.1/x")
        .build()
        .unwrap_err();
    assert!(
        e.is_builder() && e.to_string().contains("resume URL"),
        "{e}"
    );
}
