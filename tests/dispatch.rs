//! Subscribers: per-type dispatch over one connection, under concurrency.

mod support;

use std::time::Duration;

use futures::StreamExt;
use ssekit::{Dispatcher, EventSource, Overflow, RetryPolicy, SubscriptionError};
use support::{Reply, TestServer};

const LONG: Duration = Duration::from_secs(20);

fn typed_events(n: usize) -> String {
    (0..n)
        .map(|i| {
            let ty = ["metrics", "alerts", "logs"][i % 3];
            format!("id: {i}\nevent: {ty}\ndata: {i}\n\n")
        })
        .collect()
}

/// `fut`'s output, or a failure naming `what` after [`LONG`]: no wait in
/// these tests may hang the suite.
async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(LONG, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {LONG:?}"))
}

async fn next_data(sub: &mut ssekit::Subscription) -> String {
    match tokio::time::timeout(LONG, sub.next())
        .await
        .expect("stalled")
    {
        Some(Ok(m)) => m.data().to_owned(),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn each_subscriber_gets_its_types_and_the_catch_all_gets_everything() {
    let server = TestServer::start(|_, _| Reply::sse().body(typed_events(30)).stall()).await;
    let es = EventSource::new(server.url("/")).unwrap();
    let hub = Dispatcher::spawn(es);
    let mut metrics = hub.subscribe("metrics");
    let mut alerts = hub.subscribe("alerts");
    let mut all = hub.subscribe_all();
    let mut all_seen = Vec::new();
    for _ in 0..30 {
        all_seen.push(next_data(&mut all).await);
    }
    let want: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    assert_eq!(all_seen, want);
    for i in (0..30).step_by(3) {
        assert_eq!(next_data(&mut metrics).await, i.to_string());
        assert_eq!(next_data(&mut alerts).await, (i + 1).to_string());
    }
    assert_eq!(
        server.request_count(),
        1,
        "one connection for all subscribers"
    );
    assert_eq!(hub.subscriber_count(), 3);
}

#[tokio::test]
async fn many_subscribers_subscribing_and_leaving_while_events_flow() {
    // Events trickle in; tasks subscribe at different times and drop early.
    let server = TestServer::start(|_, _| {
        let mut r = Reply::sse();
        for i in 0..2000 {
            r = r.body(format!("id: {i}\nevent: t{}\ndata: {i}\n\n", i % 4));
            if i % 10 == 0 {
                r = r.sleep(Duration::from_millis(2));
            }
        }
        r.stall()
    })
    .await;
    let hub = Dispatcher::spawn(EventSource::new(server.url("/")).unwrap());
    let mut tasks = Vec::new();
    for k in 0..16 {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(k * 3)).await;
            let mut sub = if k % 2 == 0 {
                hub.subscribe(&format!("t{}", k % 4))
            } else {
                hub.subscribe_all()
            };
            drop(hub);
            // Take a few events, checking they come in order and without a
            // gap, then leave. Under backpressure nothing may be skipped:
            // from the first event a subscriber sees, it gets every later
            // one of its type (every 4th event for a typed one, each event
            // for a catch-all).
            let step = if k % 2 == 0 { 4 } else { 1 };
            let mut last: Option<u32> = None;
            for _ in 0..(5 + k as usize) {
                let n: u32 = next_data(&mut sub).await.parse().unwrap();
                if k % 2 == 0 {
                    assert_eq!(n % 4, (k % 4) as u32, "typed subscriber got another type");
                }
                assert!(
                    last.is_none_or(|l| n > l),
                    "out of order: {n} after {last:?}"
                );
                if let Some(l) = last {
                    assert_eq!(
                        n,
                        l + step,
                        "subscriber {k}: {n} after {l}, events were skipped"
                    );
                }
                last = Some(n);
            }
        }));
    }
    for (k, t) in tasks.into_iter().enumerate() {
        within(&format!("subscriber task {k}"), t)
            .await
            .unwrap_or_else(|e| panic!("subscriber task {k} failed: {e}"));
    }
    assert_eq!(
        hub.subscriber_count(),
        0,
        "dropped subscriptions unsubscribe"
    );
    assert!(!hub.is_closed(), "the hub handle keeps the connection");
    drop(hub);
    let start = std::time::Instant::now();
    while server.open_connections() != 0 {
        assert!(
            start.elapsed() < LONG,
            "connection not closed after the last handle"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn slow_subscriber_backpressure_loses_nothing() {
    let server = TestServer::start(|_, _| Reply::sse().body(typed_events(300)).stall()).await;
    let hub = Dispatcher::spawn_with(
        EventSource::new(server.url("/")).unwrap(),
        4,
        Overflow::Backpressure,
    );
    let mut slow = hub.subscribe_all();
    let mut fast = hub.subscribe("metrics");
    // The fast one can only run ahead by the slow one's buffer (0..=3).
    for i in (0..300).step_by(3).take(2) {
        assert_eq!(next_data(&mut fast).await, i.to_string());
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), async {
            for _ in 0..10 {
                next_data(&mut fast).await;
            }
        })
        .await
        .is_err(),
        "the full slow subscriber must hold the connection back"
    );
    // `fast` is now the one that is full (nobody reads it): dropping it
    // unsubscribes and releases the driver.
    drop(fast);
    for i in 0..300 {
        assert_eq!(next_data(&mut slow).await, i.to_string(), "nothing lost");
    }
}

#[tokio::test]
async fn slow_subscriber_lags_and_is_told_how_many_it_missed() {
    let server = TestServer::start(|_, _| {
        let body: String = (0..300)
            .map(|i| format!("event: data\ndata: {i}\n\n"))
            .collect();
        Reply::sse()
            .body(body)
            .body("event: end\ndata: end\n\n")
            .stall()
    })
    .await;
    let hub = Dispatcher::spawn_with(EventSource::new(server.url("/")).unwrap(), 8, Overflow::Lag);
    let mut slow = hub.subscribe("data");
    let mut other = hub.subscribe("end");
    // The other subscriber is not held back by the full one.
    assert_eq!(next_data(&mut other).await, "end");
    match within("the lagging subscriber", slow.next()).await {
        Some(Err(SubscriptionError::Lagged(n))) => assert_eq!(n, 292),
        other => panic!("expected Lagged, got {other:?}"),
    }
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(next_data(&mut slow).await);
    }
    let want: Vec<String> = (292..300).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "the newest events are kept");
}

#[tokio::test]
async fn terminal_error_reaches_every_subscriber_and_late_ones_too() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body("event: a\ndata: 1\n\n"),
        _ => Reply::status(404).body("gone"),
    })
    .await;
    let es = EventSource::builder(server.url("/"))
        .retry_policy(RetryPolicy::default().initial_delay(Duration::from_millis(5)))
        .build()
        .unwrap();
    let hub = Dispatcher::spawn(es);
    let mut a = hub.subscribe("a");
    let mut b = hub.subscribe("b");
    assert_eq!(next_data(&mut a).await, "1");
    for sub in [&mut a, &mut b] {
        match within("the stream error", sub.next()).await {
            Some(Err(SubscriptionError::Stream(e))) => {
                assert_eq!(e.status().unwrap().as_u16(), 404)
            }
            other => panic!("expected the stream error, got {other:?}"),
        }
        assert!(within("the end after the error", sub.next())
            .await
            .is_none());
    }
    assert!(hub.is_closed());
    let mut late = hub.subscribe_all();
    assert!(matches!(
        within("the late subscriber's error", late.next()).await,
        Some(Err(SubscriptionError::Stream(_)))
    ));
    assert!(within("the late subscriber's end", late.next())
        .await
        .is_none());
}

#[tokio::test]
async fn close_ends_subscribers_cleanly_and_drops_the_connection() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let hub = Dispatcher::spawn(EventSource::new(server.url("/")).unwrap());
    let mut sub = hub.subscribe("message");
    assert_eq!(next_data(&mut sub).await, "x");
    hub.close();
    assert!(within("the end after close", sub.next()).await.is_none());
    let start = std::time::Instant::now();
    while server.open_connections() != 0 {
        assert!(start.elapsed() < LONG);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn connection_lives_while_a_subscriber_does() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let hub = Dispatcher::spawn(EventSource::new(server.url("/")).unwrap());
    let mut sub = hub.subscribe_all();
    drop(hub);
    assert_eq!(next_data(&mut sub).await, "x");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.open_connections(), 1, "the subscriber keeps it open");
    drop(sub);
    let start = std::time::Instant::now();
    while server.open_connections() != 0 {
        assert!(start.elapsed() < LONG);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(feature = "json")]
#[tokio::test]
async fn typed_subscriber() {
    #[derive(Debug, serde::Deserialize)]
    struct Metric {
        cpu: f64,
    }
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("event: metrics\ndata: {\"cpu\": 0.5}\n\n")
            .body("event: metrics\ndata: {\"cpu\": \"high\"}\n\n")
            .body("event: metrics\ndata: {\"cpu\": 0.75}\n\n")
            .stall()
    })
    .await;
    let hub = Dispatcher::spawn(EventSource::new(server.url("/")).unwrap());
    let mut metrics = hub.subscribe("metrics").json::<Metric>();
    let first = within("the first metric", metrics.next()).await;
    assert_eq!(first.unwrap().unwrap().cpu, 0.5);
    match within("the bad metric", metrics.next()).await.unwrap() {
        Err(ssekit::TypedError::Json(e)) => assert_eq!(e.path(), "cpu"),
        other => panic!("{other:?}"),
    }
    let third = within("the third metric", metrics.next()).await;
    assert_eq!(third.unwrap().unwrap().cpu, 0.75);
}

#[tokio::test]
async fn event_subscription_sees_lifecycle_in_order_and_listens_to_new_types() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse()
            .body(":hi\n\ndata: m1\n\nevent: x\ndata: x1\n\n")
            .sleep(Duration::from_millis(300))
            .body("event: x\ndata: x2\n\ndata: m2\n\n"),
        _ => Reply::sse().body("event: x\ndata: x3\n\n").stall(),
    })
    .await;
    let es = EventSource::builder(server.url("/"))
        .comments(true)
        .reconnect_events(true)
        .retry_policy(RetryPolicy::default().initial_delay(Duration::from_millis(5)))
        .build()
        .unwrap();
    let hub = Dispatcher::spawn(es);
    let mut sub = hub.subscribe_events(&["message"]);
    let listener = sub.listener();
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let ev = within(
            &format!("event {} of the subscription", seen.len()),
            sub.next(),
        )
        .await
        .expect("the subscription ended")
        .expect("no error is expected");
        seen.push(match ev {
            ssekit::Event::Open(_) => "open".to_owned(),
            ssekit::Event::Comment(c) => format!(":{c}"),
            ssekit::Event::Message(m) => m.data().to_owned(),
            ssekit::Event::Reconnecting(_) => "reconnecting".to_owned(),
            _ => "other".to_owned(),
        });
        if seen.last().map(String::as_str) == Some("m1") {
            // x1 is already on its way (same chunk) and is not delivered:
            // only events that arrive after listen() are.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(listener.listen("x"));
        }
    }
    assert_eq!(
        seen,
        ["open", ":hi", "m1", "x2", "m2", "reconnecting", "open"]
    );
    assert_eq!(next_x3(&mut sub).await, "x3");
    drop(sub);
    assert!(!listener.listen("y"), "the subscription is gone");
}

async fn next_x3(sub: &mut ssekit::EventSubscription) -> String {
    loop {
        match within("x3", sub.next()).await {
            Some(Ok(ssekit::Event::Message(m))) => return m.data().to_owned(),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_then_start_misses_no_event() {
    let server = TestServer::start(|_, _| Reply::sse().body(typed_events(3)).stall()).await;
    let hub = Dispatcher::new(
        EventSource::new(server.url("/")).unwrap(),
        16,
        Overflow::Backpressure,
    );
    let mut all = hub.subscribe_all();
    // Nothing is read before start: no request yet.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.request_count(), 0);
    hub.start();
    hub.start(); // idempotent
    for i in 0..3 {
        assert_eq!(next_data(&mut all).await, i.to_string());
    }
    assert_eq!(server.request_count(), 1);
}

/// Issue 20: `spawn` then `subscribe`, with the subscribing task delayed
/// 300 ms (as a descheduled thread would be): the driver reads nothing
/// before the first subscription, so the first events are not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_first_subscriber_after_spawn_loses_nothing() {
    let server =
        TestServer::start(|_, _| Reply::sse().body("data: first\n\ndata: second\n\n").stall())
            .await;
    let hub = Dispatcher::spawn(EventSource::new(server.url("/")).unwrap());
    // The driver runs on the other worker meanwhile; before the fix it read
    // and dropped both events here.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.request_count(), 0, "read before anyone subscribed");
    let mut sub = hub.subscribe("message");
    assert_eq!(next_data(&mut sub).await, "first");
    assert_eq!(next_data(&mut sub).await, "second");
}
