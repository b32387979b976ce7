//! LLM-style streams: POST with JSON, end markers with the socket held
//! open, truncation, typed JSON decoding, error bodies.
#![cfg(feature = "json")]

mod support;

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use ssekit::{Event, EventSource, MessageEvent, RetryPolicy, TypedError};
use support::{Reply, TestServer};

const LONG: Duration = Duration::from_secs(20);

async fn drain(es: &mut EventSource) -> (Vec<MessageEvent>, Option<ssekit::Error>) {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(LONG, es.next())
            .await
            .expect("stalled")
        {
            Some(Ok(Event::Message(m))) => got.push(m),
            Some(Ok(_)) => {}
            Some(Err(e)) => return (got, Some(e)),
            None => return (got, None),
        }
    }
}

fn openai_chunk(text: &str) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
    )
}

#[tokio::test]
async fn done_sentinel_ends_cleanly_although_the_socket_stays_open() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body(openai_chunk("Hel"))
            .body(openai_chunk("lo"))
            .body("data: [DONE]\n\n")
            .stall()
    })
    .await;
    let mut es = EventSource::post(server.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "m", "stream": true}))
        .bearer_auth("sk-test")
        .end_on_data("[DONE]")
        .build()
        .unwrap();
    let (got, err) = drain(&mut es).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 2, "the sentinel itself is not yielded");
    assert!(es.is_finished());
    let req = &server.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(req.body, br#"{"model":"m","stream":true}"#);
    // The held-open socket was closed by the client.
    let start = std::time::Instant::now();
    while server.open_connections() != 0 {
        assert!(start.elapsed() < LONG);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn terminal_event_type_is_yielded_then_the_stream_ends() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("event: message_start\ndata: {\"type\":\"message_start\"}\n\n")
            .body("event: content_block_delta\ndata: {\"delta\":{\"text\":\"Hi\"}}\n\n")
            .body("event: ping\ndata: {\"type\": \"ping\"}\n\n")
            .body("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
            .stall()
    })
    .await;
    let mut es = EventSource::post(server.url("/v1/messages"))
        .body("{}")
        .end_on_event("message_stop")
        .end_on_event("error")
        .build()
        .unwrap();
    let (got, err) = drain(&mut es).await;
    assert!(err.is_none());
    let types: Vec<_> = got.iter().map(|m| m.event().to_owned()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_delta",
            "ping",
            "message_stop"
        ]
    );
    assert!(es.is_finished());
}

#[tokio::test]
async fn ending_without_the_marker_is_reported_as_truncated() {
    // Clean end of body after some output, no [DONE].
    let server = TestServer::start(|_, _| Reply::sse().body(openai_chunk("partial"))).await;
    let mut es = EventSource::post(server.url("/"))
        .body("{}")
        .end_on_data("[DONE]")
        .build()
        .unwrap();
    let (got, err) = drain(&mut es).await;
    assert_eq!(got.len(), 1);
    let err = err.expect("truncation is an error");
    assert!(err.is_truncated(), "{err:?}");
    assert!(!es.is_finished());
    assert_eq!(server.request_count(), 1, "not re-sent");

    // A connection cut mid-answer: truncated too (and not re-sent).
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body(openai_chunk("partial"))
            .body("data: {\"cho")
            .drop_after(120)
    })
    .await;
    let mut es = EventSource::post(server.url("/"))
        .body("{}")
        .end_on_data("[DONE]")
        .build()
        .unwrap();
    let (_, err) = drain(&mut es).await;
    let err = err.expect("truncation is an error");
    assert!(err.is_truncated() && err.is_not_resent(), "{err:?}");
}

#[tokio::test]
async fn post_without_marker_ends_cleanly_at_end_of_body() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: all of it\n\n")).await;
    let mut es = EventSource::post(server.url("/"))
        .body("{}")
        .build()
        .unwrap();
    let (got, err) = drain(&mut es).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got.len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn error_event_after_200_is_an_ordinary_event_and_can_end_the_stream() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
            .stall()
    })
    .await;
    let mut es = EventSource::post(server.url("/"))
        .body("{}")
        .end_on_event("message_stop")
        .end_on_event("error")
        .build()
        .unwrap();
    let (got, err) = drain(&mut es).await;
    assert!(err.is_none());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event(), "error");
    #[derive(Deserialize)]
    struct ApiError {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        r#type: String,
    }
    assert_eq!(
        got[0].json::<ApiError>().unwrap().error.r#type,
        "overloaded_error"
    );
}

#[tokio::test]
async fn non_2xx_json_error_body_is_readable() {
    let server = TestServer::start(|_, _| {
        Reply::status(401)
            .header("content-type", "application/json")
            .body("{\n  \"error\": {\n    \"message\": \"Incorrect API key provided\",\n    \"type\": \"invalid_request_error\"\n  }\n}\n")
    })
    .await;
    let mut es = EventSource::post(server.url("/"))
        .body("{}")
        .build()
        .unwrap();
    let (_, err) = drain(&mut es).await;
    let err = err.unwrap();
    assert_eq!(err.status().unwrap().as_u16(), 401);
    let shown = err.to_string();
    assert!(
        shown.contains(r#"{ "error": { "message": "Incorrect API key provided","#),
        "pretty JSON shown on one line: {shown}"
    );
    let body: serde_json::Value = serde_json::from_str(err.body().unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[derive(Debug, Deserialize, PartialEq)]
struct Chunk {
    choices: Vec<Choice>,
}
#[derive(Debug, Deserialize, PartialEq)]
struct Choice {
    delta: Delta,
}
#[derive(Debug, Deserialize, PartialEq)]
struct Delta {
    content: Option<String>,
}

#[tokio::test]
async fn typed_stream_decodes_skips_control_blocks_and_reports_bad_events() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body(": keep-alive\n\n")
            .body("id: 1\n\n") // id-only block: no event
            .body("event: x\n\n") // type-only block: no event
            .body("data:\n\n") // empty data: skipped by the JSON layer
            .body(openai_chunk("a"))
            .body("id: 7\ndata: {\"choices\":[{\"delta\":{\"content\":5}}]}\n\n")
            .body(openai_chunk("b"))
            .body("data: [DONE]\n\n")
            .stall()
    })
    .await;
    let es = EventSource::builder(server.url("/"))
        .end_on_data("[DONE]")
        .comments(true)
        .build()
        .unwrap();
    let mut typed = es.json::<Chunk>();
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    while let Some(item) = tokio::time::timeout(LONG, typed.next()).await.unwrap() {
        match item {
            Ok(c) => texts.push(c.choices[0].delta.content.clone().unwrap()),
            Err(TypedError::Json(e)) => errors.push(e),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(texts, ["a", "b"]);
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(
        (e.event(), e.id(), e.path()),
        ("message", "7", "choices[0].delta.content")
    );
    assert!(e.to_string().contains("choices[0].delta.content"), "{e}");
}

#[tokio::test]
async fn overloaded_529_and_proxy_520s_are_retried() {
    // Anthropic's "overloaded" 529 and Cloudflare's 520-524 heal: SPEC
    // rule 19 retries every 5xx but 501 and 505.
    for status in [529u16, 520, 521, 522, 523, 524] {
        let server = TestServer::start(move |_, i| match i {
            0 | 1 => Reply::status(status).body("overloaded"),
            _ => Reply::sse().body("data: hi\n\nevent: message_stop\ndata: {}\n\n"),
        })
        .await;
        let mut es = EventSource::post(server.url("/"))
            .body("{}")
            .end_on_event("message_stop")
            .retry_policy(
                RetryPolicy::default()
                    .initial_delay(Duration::from_millis(5))
                    .max_attempts(2),
            )
            .build()
            .unwrap();
        let (got, err) = drain(&mut es).await;
        assert!(err.is_none(), "{status}: {err:?}");
        assert_eq!(got[0].data(), "hi", "{status}");
        assert_eq!(server.request_count(), 3, "{status}");
    }
}
