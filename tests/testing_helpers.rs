//! `ssekit::testing::ExpectEvents` and `EventStream` against an axum SSE
//! endpoint called in-process (a `Router` used as a tower service, no
//! socket), and `EventStream` over hand-made byte streams.
//!
//! Tests where time matters run on Tokio's paused clock: no sockets are
//! involved, so the clock jumps straight to the next timer and the timings
//! below are exact.

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::stream::{self, FusedStream, Stream, StreamExt};
use futures::FutureExt;
use ssekit::testing::{ExpectError, ExpectEvents};
use ssekit::{BodyStream, Event, EventStream};
use tokio::time::Instant;
use tower::ServiceExt;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

/// One step of an endpoint's script.
#[derive(Clone)]
enum Step {
    /// Waits this long (Tokio's clock).
    Wait(Duration),
    /// Sends an event.
    Send(SseEvent),
    /// Fails the body with an I/O error carrying this message.
    Fail(&'static str),
    /// Sends nothing more, for ever.
    Hang,
}

fn tick(n: u32) -> Step {
    Step::Send(
        SseEvent::default()
            .event("tick")
            .id(n.to_string())
            .data(format!("n={n}")),
    )
}

fn data(d: &str) -> Step {
    Step::Send(SseEvent::default().data(d))
}

/// A router serving `steps` as an SSE stream at `/events`, with keep-alive
/// comments every `keep_alive` when given.
fn app(steps: Vec<Step>, keep_alive: Option<Duration>) -> Router {
    Router::new().route(
        "/events",
        get(move || {
            let steps = steps.clone();
            async move {
                let events = stream::iter(steps)
                    .then(|step| async move {
                        match step {
                            Step::Wait(d) => {
                                tokio::time::sleep(d).await;
                                None
                            }
                            Step::Send(ev) => Some(Ok(ev)),
                            Step::Fail(msg) => Some(Err(io::Error::other(msg))),
                            Step::Hang => std::future::pending().await,
                        }
                    })
                    .filter_map(std::future::ready);
                let sse = Sse::new(events);
                match keep_alive {
                    Some(every) => sse
                        .keep_alive(KeepAlive::new().interval(every))
                        .into_response(),
                    None => sse.into_response(),
                }
            }
        }),
    )
}

type AxumEvents = EventStream<BodyStream<Body>>;

/// Calls `app` in-process and parses the response body.
async fn call(app: Router) -> AxumEvents {
    let response = app
        .oneshot(Request::get("/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    EventStream::from_body(response.into_body())
}

/// The stream's next item, failing the test instead of hanging it when
/// none comes within 10 s (of Tokio's clock, virtual when paused).
async fn next_item<S: Stream + Unpin>(events: &mut S) -> Option<S::Item> {
    tokio::time::timeout(secs(10), events.next())
        .await
        .expect("the stream yielded nothing within 10 s")
}

/// Asserts that `expected` passed on the (paused) clock since `start`.
#[track_caller]
fn assert_elapsed(start: Instant, expected: Duration) {
    let elapsed = start.elapsed();
    assert!(
        elapsed >= expected && elapsed <= expected + ms(1),
        "expected {expected:?} to pass, {elapsed:?} did"
    );
}

// ---- next_message_within ------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn next_message_within_returns_each_event_as_it_arrives() {
    let steps = vec![
        Step::Wait(ms(100)),
        tick(1),
        Step::Wait(ms(250)),
        Step::Send(SseEvent::default().data("line 1\nline 2")),
    ];
    // Keep-alive comments in between are not messages and are skipped.
    let mut events = call(app(steps, Some(ms(30)))).await;
    let start = Instant::now();

    let m = events.next_message_within(secs(1)).await.unwrap();
    assert_eq!((m.event(), m.data(), m.id()), ("tick", "n=1", "1"));
    assert_elapsed(start, ms(100));

    let m = events.next_message_within(secs(1)).await.unwrap();
    assert_eq!(
        (m.event(), m.data(), m.id()),
        ("message", "line 1\nline 2", "1")
    );
    assert_elapsed(start, ms(350));

    let err = events.next_message_within(secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an event within 1s, but the stream ended"
    );
    assert!(err.received().is_empty());
    assert!(err.stream_error().is_none() && err.unexpected_event().is_none());
    assert_elapsed(start, ms(350));
}

#[tokio::test(start_paused = true)]
async fn next_message_within_says_nothing_arrived_and_loses_no_event() {
    let steps = vec![Step::Wait(secs(5)), data("late"), Step::Hang];
    let mut events = call(app(steps, None)).await;
    let start = Instant::now();

    let err = events.next_message_within(secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an event within 1s, but nothing arrived"
    );
    assert!(err.stream_error().is_none() && err.unexpected_event().is_none());
    assert_elapsed(start, secs(1));

    // The timed-out wait did not consume anything.
    let m = events.next_message_within(secs(10)).await.unwrap();
    assert_eq!(m.data(), "late");
    assert_elapsed(start, secs(5));

    let err = events.next_message_within(ms(1500)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an event within 1.5s, but nothing arrived"
    );
}

// ---- expect_no_message_within -------------------------------------------------

#[tokio::test(start_paused = true)]
async fn expect_no_message_within_passes_on_keep_alives_and_fails_on_an_event() {
    let steps = vec![Step::Wait(secs(10)), data("x"), Step::Hang];
    let mut events = call(app(steps, Some(secs(1)))).await;
    let start = Instant::now();

    events.expect_no_message_within(secs(5)).await.unwrap();
    assert_elapsed(start, secs(5));

    let err = events.expect_no_message_within(secs(10)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected no event within 10s, but got message "x""#
    );
    assert_eq!(err.unexpected_event().map(|m| m.data()), Some("x"));
    assert_elapsed(start, secs(10));
}

#[tokio::test(start_paused = true)]
async fn expect_no_message_within_names_the_event_and_its_id() {
    let mut events = call(app(vec![Step::Wait(ms(10)), tick(7)], None)).await;
    let err = events.expect_no_message_within(secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected no event within 1s, but got tick "n=7" (id "7")"#
    );
}

#[tokio::test(start_paused = true)]
async fn expect_no_message_within_accepts_a_clean_end_but_not_a_failure() {
    let mut events = call(app(vec![Step::Wait(ms(10))], None)).await;
    events.expect_no_message_within(secs(1)).await.unwrap();

    let mut events = events_failing_after(&[]).await;
    let err = events.expect_no_message_within(secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected no event within 1s, but the stream failed: reading the event stream failed"
    );
    assert!(err.stream_error().is_some_and(|e| e.is_body()));
}

#[tokio::test(start_paused = true)]
async fn long_data_is_shortened_in_failure_messages() {
    let long = "é".repeat(500);
    let mut events = call(app(vec![data(&long)], None)).await;
    let err = events.expect_no_message_within(secs(1)).await.unwrap_err();
    let shown = format!("{}…", "é".repeat(120));
    assert_eq!(
        err.to_string(),
        format!("expected no event within 1s, but got message {shown:?}")
    );
    assert_eq!(err.unexpected_event().unwrap().data(), long, "kept in full");
}

// ---- collect_messages -----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn collect_messages_takes_exactly_n() {
    let steps = vec![tick(1), Step::Wait(ms(100)), tick(2), tick(3), Step::Hang];
    let mut events = call(app(steps, None)).await;
    let start = Instant::now();
    let got = events.collect_messages(2, secs(1)).await.unwrap();
    let ids: Vec<_> = got.iter().map(|m| m.id()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_elapsed(start, ms(100));
    assert_eq!(events.next_message_within(secs(1)).await.unwrap().id(), "3");
    assert!(events
        .collect_messages(0, secs(1))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn collect_messages_reports_what_arrived_before_the_end() {
    let mut events = call(app(vec![tick(1), tick(2)], None)).await;
    let err = events.collect_messages(3, secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected 3 events within 1s, but received only 2 [tick "n=1" (id "1"), tick "n=2" (id "2")], then the stream ended"#
    );
    let data: Vec<_> = err.received().iter().map(|m| m.data()).collect();
    assert_eq!(data, ["n=1", "n=2"]);
}

#[tokio::test(start_paused = true)]
async fn collect_messages_has_one_deadline_for_all_events() {
    let steps = vec![
        Step::Wait(ms(400)),
        tick(1),
        Step::Wait(ms(400)),
        tick(2),
        Step::Wait(ms(400)),
        tick(3),
    ];
    let mut events = call(app(steps, None)).await;
    let start = Instant::now();
    let err = events.collect_messages(3, secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected 3 events within 1s, but received only 2 [tick "n=1" (id "1"), tick "n=2" (id "2")], then nothing arrived"#
    );
    assert_elapsed(start, secs(1));
    // The third event still comes.
    assert_eq!(events.next_message_within(secs(1)).await.unwrap().id(), "3");
    assert_elapsed(start, ms(1200));
}

#[tokio::test(start_paused = true)]
async fn collect_messages_with_nothing_received_says_so_plainly() {
    let mut events = call(app(vec![Step::Hang], None)).await;
    let err = events.collect_messages(2, ms(250)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected 2 events within 250ms, but nothing arrived"
    );
    assert!(err.received().is_empty());
}

/// An endpoint that sends `data` events, then fails its body.
async fn events_failing_after(data_: &[&str]) -> AxumEvents {
    let mut steps: Vec<Step> = data_.iter().map(|d| data(d)).collect();
    steps.push(Step::Wait(ms(10)));
    steps.push(Step::Fail("database went away"));
    call(app(steps, None)).await
}

#[tokio::test(start_paused = true)]
async fn collect_messages_reports_a_failing_body_with_its_cause() {
    let mut events = events_failing_after(&["a"]).await;
    let err = events.collect_messages(3, secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected 3 events within 1s, but received only 1 [message "a"], then the stream failed: reading the event stream failed"#
    );
    let stream_error = err.stream_error().expect("the stream's error is kept");
    assert!(stream_error.is_body(), "{stream_error:?}");
    let chain = error_chain(&err);
    assert!(
        chain.iter().any(|e| e.contains("database went away")),
        "the I/O error is in the source chain: {chain:?}"
    );
    // The error is yielded once, then the stream is over.
    assert!(next_item(&mut events).await.is_none());
    assert!(events.is_terminated());
}

fn error_chain(e: &ExpectError) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = cur {
        chain.push(e.to_string());
        cur = e.source();
    }
    chain
}

// ---- oversized events -------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_oversized_event_is_reported() {
    let big = "x".repeat(100);
    let steps = vec![data("ok"), data(&big), data("after")];
    let mut events = call(app(steps.clone(), None)).await.max_event_size(64);
    assert_eq!(
        events.next_message_within(secs(1)).await.unwrap().data(),
        "ok"
    );
    let err = events.next_message_within(secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an event within 1s, but the stream failed: event larger than the limit of 64 bytes"
    );
    assert!(err.stream_error().is_some_and(|e| e.is_too_large()));
    let err = events.next_message_within(secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an event within 1s, but the stream ended"
    );

    let mut events = call(app(steps, None)).await.max_event_size(64);
    let err = events.collect_messages(3, secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected 3 events within 1s, but received only 1 [message "ok"], then the stream failed: event larger than the limit of 64 bytes"#
    );

    // The default limit lets the same event through.
    let mut events = call(app(vec![data(&big)], None)).await;
    assert_eq!(
        events.next_message_within(secs(1)).await.unwrap().data(),
        big
    );
}

// ---- EventStream over byte streams ------------------------------------------------

/// A stream that exercises the parser's edges: a BOM, CRLF and lone CR line
/// ends, a multi-byte character, comments, `retry:`, and an unfinished last
/// event (dropped at the end of input).
const WIRE: &[u8] = b"\xEF\xBB\xBF: hi\nevent: a\nid: 1\ndata: x\r\ndata: y\r\n\r\n\
data: \xC3\xA9\r\rretry: 5\nid: 2\ndata:  two\n\n:\ndata: dropped";

const WIRE_EVENTS: &[&str] = &[
    r#"comment " hi""#,
    r#"message a "x\ny" id "1""#,
    r#"message message "é" id "1""#,
    r#"message message " two" id "2""#,
    r#"comment """#,
];

fn show(item: Result<Event, ssekit::Error>) -> String {
    match item {
        Ok(Event::Message(m)) => format!("message {} {:?} id {:?}", m.event(), m.data(), m.id()),
        Ok(Event::Comment(c)) => format!("comment {c:?}"),
        Ok(other) => panic!("EventStream yielded {other:?}"),
        Err(e) => format!("error {e}"),
    }
}

/// Every item of `WIRE` cut into chunks at `cuts`.
fn parse_cut(cuts: &[usize]) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([WIRE.len()].iter()) {
        chunks.push(Ok::<_, io::Error>(&WIRE[from..cut]));
        from = cut;
    }
    let mut events = EventStream::new(stream::iter(chunks)).comments(true);
    let got = futures::executor::block_on(events.by_ref().map(show).collect::<Vec<_>>());
    assert!(events.is_terminated());
    assert_eq!(events.codec().last_event_id(), "2", "cuts {cuts:?}");
    got
}

#[test]
fn every_cut_of_a_stream_gives_the_same_events() {
    let whole = parse_cut(&[]);
    assert_eq!(whole, WIRE_EVENTS);
    for i in 0..=WIRE.len() {
        assert_eq!(parse_cut(&[i]), whole, "one cut at {i}");
        for j in i..=WIRE.len() {
            assert_eq!(parse_cut(&[i, j]), whole, "cuts at {i} and {j}");
        }
    }
    let every_byte: Vec<usize> = (1..WIRE.len()).collect();
    assert_eq!(parse_cut(&every_byte), whole, "one byte per chunk");
}

#[test]
fn comments_are_left_out_by_default() {
    let mut events = EventStream::new(stream::iter([Ok::<_, io::Error>(WIRE)]));
    let got = futures::executor::block_on(events.by_ref().map(show).collect::<Vec<_>>());
    let want: Vec<_> = WIRE_EVENTS
        .iter()
        .filter(|e| e.starts_with("message"))
        .copied()
        .collect();
    assert_eq!(got, want);
}

#[test]
fn an_input_error_is_yielded_once_then_none() {
    let polled = AtomicUsize::new(0);
    let chunks = [
        Ok(&b"data: a\n\ndata: b"[..]),
        Err(io::Error::other("boom")),
        Ok(&b"\n\ndata: c\n\n"[..]),
    ];
    let input = stream::iter(chunks).inspect(|_| {
        polled.fetch_add(1, Ordering::Relaxed);
    });
    let mut events = EventStream::new(input);
    // The input is always ready, so each item must be too: polled once
    // (`now_or_never`) rather than awaited, a stream that wrongly waits
    // fails here instead of hanging the test.
    fn now<S: Stream + Unpin>(events: &mut S) -> Option<S::Item> {
        events
            .next()
            .now_or_never()
            .expect("pending although its input is always ready")
    }
    assert_eq!(
        show(now(&mut events).unwrap()),
        r#"message message "a" id """#
    );
    let e = match now(&mut events) {
        Some(Err(e)) => e,
        other => panic!("expected the input's error, got {other:?}"),
    };
    assert!(e.is_body(), "{e:?}");
    assert_eq!(e.to_string(), "reading the event stream failed");
    let source = std::error::Error::source(&e).expect("the input's error is the source");
    assert_eq!(source.to_string(), "boom");
    assert!(events.is_terminated());
    for _ in 0..3 {
        assert!(now(&mut events).is_none(), "None after the error");
    }
    assert_eq!(
        polled.load(Ordering::Relaxed),
        2,
        "input not read past its error"
    );
}

#[tokio::test(start_paused = true)]
async fn an_input_error_through_expect_events() {
    let chunks = [
        Ok(&b"data: a\n\n"[..]),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
    ];
    let mut events = EventStream::new(stream::iter(chunks));
    let err = events.collect_messages(2, secs(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"expected 2 events within 1s, but received only 1 [message "a"], then the stream failed: reading the event stream failed"#
    );
    assert_eq!(error_chain(&err).last().map(String::as_str), Some("reset"));
}

#[tokio::test]
async fn from_body_reads_any_http_body() {
    let body = Body::from("id: 9\ndata: from a plain body\n\n");
    let mut events = EventStream::from_body(body);
    let m = events.next_message_within(secs(1)).await.unwrap();
    assert_eq!((m.data(), m.id()), ("from a plain body", "9"));
    assert!(next_item(&mut events).await.is_none());

    let chunks: Vec<Result<&'static str, Infallible>> = vec![Ok("data: spl"), Ok("it\n"), Ok("\n")];
    let mut events = EventStream::from_body(Body::from_stream(stream::iter(chunks)));
    let m = events.next_message_within(secs(1)).await.unwrap();
    assert_eq!(m.data(), "split");
}

#[test]
fn event_stream_is_send_and_unpin_for_expect_events() {
    fn assert_expect_events<S: ExpectEvents + Stream + Send + Unpin>() {}
    assert_expect_events::<AxumEvents>();
}

// ---- the example of the testing guide (src/guide/testing.md) ------------------------

mod readme_example {
    use std::time::Duration;

    use axum::{
        body::Body,
        http::Request,
        response::sse::{Event, Sse},
        routing::get,
        Router,
    };
    use futures::stream::{self, Stream};
    use ssekit::{testing::ExpectEvents, EventStream};
    use tower::ServiceExt; // for `oneshot`

    // The endpoint under test.
    async fn updates() -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
        Sse::new(stream::iter(
            ["a", "b", "c"].map(|data| Ok(Event::default().event("update").data(data))),
        ))
    }

    // A paused clock makes the waits below instant (no sockets are involved).
    #[tokio::test(start_paused = true)]
    async fn readme_example() {
        let app = Router::new().route("/updates", get(updates));

        // Call the router in-process, without a socket.
        let request = Request::get("/updates").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let mut events = EventStream::from_body(response.into_body());

        let first = events
            .next_message_within(Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!((first.event(), first.data()), ("update", "a"));

        let rest = events
            .collect_messages(2, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(rest[1].data(), "c");

        events
            .expect_no_message_within(Duration::from_secs(5))
            .await
            .unwrap();
    }
}

/// An HTTP body made of the given frames.
struct Frames(std::collections::VecDeque<http_body::Frame<bytes::Bytes>>);

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(Ok))
    }
}

#[tokio::test]
async fn from_body_ignores_trailers() {
    let mut trailers = axum::http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let frames = Frames(
        [
            http_body::Frame::data(bytes::Bytes::from_static(b"data: a\n\nda")),
            http_body::Frame::data(bytes::Bytes::from_static(b"ta: b\n\n")),
            http_body::Frame::trailers(trailers),
        ]
        .into(),
    );
    let mut events = EventStream::from_body(frames);
    let got = events.collect_messages(2, secs(1)).await.unwrap();
    let data: Vec<_> = got.iter().map(|m| m.data()).collect();
    assert_eq!(data, ["a", "b"]);
    assert!(next_item(&mut events).await.is_none());
}
