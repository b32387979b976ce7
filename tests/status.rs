//! State you can watch (issue 21): `Handle::status` and `Handle::watch`
//! report each change of state (connecting, open, waiting with its delay
//! and cause, closed with its reason) without consuming events, against an
//! in-process server on Tokio's paused clock.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Event, EventSource, RetryPolicy, StreamState};
use support::{Reply, TestServer};

#[tokio::test(start_paused = true)]
async fn every_change_of_state_is_watched_with_delay_cause_and_reason() {
    let server = TestServer::start(|_, n| match n {
        0 => Reply::sse()
            .body("id: 1\ndata: one\n\n")
            .drop_after(usize::MAX),
        1 => Reply::status(503),
        _ => Reply::status(404).body("gone"),
    })
    .await;
    let mut es = EventSource::builder(server.url("/feed"))
        .retry_policy(
            RetryPolicy::default()
                .initial_delay(Duration::from_millis(500))
                .jitter(false),
        )
        .build()
        .unwrap();
    let handle = es.handle();
    assert!(matches!(handle.status().state(), StreamState::Idle));
    let mut watch = handle.watch();
    // On this current-thread runtime the watcher runs whenever the stream
    // waits for the network or a timer, so it sees every state.
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(status) = watch.changed().await {
            seen.push(status);
        }
        seen
    });
    let start = tokio::time::Instant::now();
    let mut messages = 0;
    let error = loop {
        match es.next().await {
            Some(Ok(Event::Message(_))) => messages += 1,
            Some(Ok(_)) => {}
            Some(Err(e)) => break e,
            None => panic!("no terminal error"),
        }
    };
    assert_eq!(messages, 1);
    assert_eq!(error.status().map(|s| s.as_u16()), Some(404));
    let status = handle.status();
    assert_eq!(
        (
            status.connections(),
            status.reconnections(),
            status.events()
        ),
        (1, 2, 1)
    );
    assert!(status.last_event().is_some());
    drop(es);
    let seen = watcher.await.unwrap();
    let states: Vec<String> = seen
        .iter()
        .map(|s| match s.state() {
            StreamState::Idle => "idle".to_owned(),
            StreamState::Connecting { attempt } => format!("connecting {attempt}"),
            StreamState::Open => "open".to_owned(),
            StreamState::Waiting {
                attempt,
                delay,
                cause,
            } => format!(
                "waiting {attempt} {}ms {}",
                delay.as_millis(),
                if cause.is_status() { "status" } else { "body" }
            ),
            StreamState::Closed { error } => format!("closed {}", error.is_some()),
            _ => "other".to_owned(),
        })
        .collect();
    assert_eq!(
        states,
        [
            "connecting 0",
            "open",
            "waiting 1 500ms body",
            "connecting 1",
            "waiting 2 1000ms status",
            "connecting 2",
            "closed true",
        ]
    );
    // Times follow the state: the second wait began 500 ms in, down since
    // the connection broke at the start.
    let waiting = &seen[4];
    assert_eq!(waiting.since() - start, Duration::from_millis(500));
    assert_eq!(waiting.down_since(), Some(seen[2].since()));
    let StreamState::Closed {
        error: Some(reason),
    } = seen[6].state()
    else {
        unreachable!()
    };
    assert!(
        reason.contains("404") && reason.contains("gone"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_dropped_or_closed_stream_ends_the_watch_cleanly() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let mut es = EventSource::new(server.url("/")).unwrap();
    let mut watch = es.handle().watch();
    assert!(matches!(es.next().await, Some(Ok(Event::Open(_)))));
    // A watch keeps the latest status: connecting then open, read late,
    // is open.
    let status = watch.changed().await.unwrap();
    assert!(matches!(status.state(), StreamState::Open));
    assert_eq!(status.connections(), 1);
    drop(es);
    assert!(matches!(
        watch.changed().await.unwrap().state(),
        StreamState::Closed { error: None }
    ));
    assert!(watch.changed().await.is_none());
}
