//! Regression tests for defects a review found: each failed before its fix.
//!
//! - the idle timeout switched itself off when tokio's cooperative budget
//!   was spent at the wrong moment;
//! - a panicking or stopped `Dispatcher` driver left every subscriber
//!   waiting for ever;
//! - a `retry:` of u64::MAX made the client wait for centuries (now capped
//!   at one hour, like `Retry-After`).

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ssekit::{Dispatcher, Event, EventSource, RetryPolicy, SubscriptionError, MAX_SERVER_DELAY};
use support::{Reply, TestServer};

const LONG: Duration = Duration::from_secs(20);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Spends the task's whole cooperative budget, as a consumer that does other
/// tokio work per event would.
fn spend_budget(cx: &mut std::task::Context<'_>) {
    for _ in 0..1024 {
        if pin!(tokio::task::coop::consume_budget())
            .poll(cx)
            .is_pending()
        {
            return;
        }
    }
    panic!("the budget never ran out");
}

/// The next item of `es`, spending the task's budget first when `starve`.
async fn next_starved(es: &mut EventSource, starve: bool) -> Option<Result<Event, ssekit::Error>> {
    let mut first = starve;
    let next = std::future::poll_fn(|cx| {
        if std::mem::take(&mut first) {
            spend_budget(cx);
        }
        es.poll_next_unpin(cx)
    });
    tokio::time::timeout(Duration::from_secs(3), next)
        .await
        .expect("nothing for 3 s: the idle timeout never fired, the silent connection hangs")
}

#[tokio::test]
async fn idle_timeout_fires_although_the_budget_was_spent_when_it_was_polled() {
    // Both moments a timer can first be polled with no budget: before the
    // response head, and after the stream opened.
    for starve_before_open in [true, false] {
        let server = TestServer::start(|_, _| Reply::sse().body(": hi\n\n").stall()).await;
        let mut es = EventSource::builder(server.url("/"))
            .idle_timeout(Some(ms(300)))
            .reconnect_events(true)
            .retry_policy(RetryPolicy::default().initial_delay(ms(10)).jitter(false))
            .build()
            .unwrap();
        let open = next_starved(&mut es, starve_before_open).await;
        assert!(matches!(open, Some(Ok(Event::Open(_)))), "{open:?}");
        match next_starved(&mut es, !starve_before_open).await {
            Some(Ok(Event::Reconnecting(r))) => assert!(r.cause().is_timeout(), "{r:?}"),
            other => panic!("expected an idle-timeout reconnection, got {other:?}"),
        }
    }
}

/// The `Err` a subscription ends with, within a deadline.
async fn subscription_error(sub: &mut ssekit::Subscription) -> Arc<ssekit::Error> {
    loop {
        match tokio::time::timeout(LONG, sub.next())
            .await
            .expect("the subscription was left waiting")
        {
            Some(Ok(_)) => continue,
            Some(Err(SubscriptionError::Stream(e))) => return e,
            other => panic!("expected the stream's error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_panicking_request_hook_ends_every_subscription_with_an_error() {
    // The first connection delivers an event and ends; the hook panics on
    // the reconnection, inside the dispatcher's driver task.
    let server = TestServer::start(|_, _| Reply::sse().body("data: one\n\n")).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let es = EventSource::builder(server.url("/"))
        .retry_policy(RetryPolicy::default().initial_delay(ms(5)))
        .on_request(move |_| {
            if counter.fetch_add(1, Ordering::SeqCst) == 1 {
                panic!("token refresh failed");
            }
        })
        .build()
        .unwrap();
    let hub = Dispatcher::new(es, 16, Default::default());
    let mut all = hub.subscribe_all();
    let mut typed = hub.subscribe("message");
    let mut events = hub.subscribe_events(&["message"]);
    hub.start();
    for sub in [&mut all, &mut typed] {
        let e = subscription_error(sub).await;
        assert!(e.is_driver_stopped(), "{e:?}");
        assert!(e.to_string().contains("panicked"), "{e}");
    }
    let mut saw_error = false;
    while let Some(item) = tokio::time::timeout(LONG, events.next()).await.unwrap() {
        if let Err(SubscriptionError::Stream(e)) = item {
            assert!(e.is_driver_stopped());
            saw_error = true;
        }
    }
    assert!(saw_error, "the event subscription was not told");
    assert!(hub.is_closed());
    // A late subscriber learns it at once too.
    let mut late = hub.subscribe_all();
    assert!(subscription_error(&mut late).await.is_driver_stopped());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_runtime_shutdown_ends_subscriptions_instead_of_stranding_them() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: one\n\n").stall()).await;
    let url = server.url("/");
    // The dispatcher runs on a runtime of its own, which is then shut down;
    // its subscriber lives on here.
    let (hub, mut sub) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (hub, mut sub) = rt.block_on(async {
            let hub = Dispatcher::spawn(EventSource::new(url).unwrap());
            let sub = hub.subscribe_all();
            (hub, sub)
        });
        rt.block_on(async {
            let first = tokio::time::timeout(LONG, sub.next()).await.unwrap();
            assert_eq!(first.unwrap().unwrap().data(), "one");
        });
        drop(rt);
        (hub, sub)
    })
    .await
    .unwrap();
    let e = subscription_error(&mut sub).await;
    assert!(e.is_driver_stopped(), "{e:?}");
    assert!(e.to_string().contains("runtime shut down"), "{e}");
    assert!(hub.is_closed());
}

#[tokio::test(start_paused = true)]
async fn an_absurd_retry_field_waits_one_hour_not_centuries() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body("retry: 18446744073709551615\ndata: x\n\n"),
        _ => Reply::sse().body("data: y\n\n").stall(),
    })
    .await;
    let mut es = EventSource::builder(server.url("/"))
        .reconnect_events(true)
        .build()
        .unwrap();
    let mut delay = None;
    let start = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(7200), es.next())
            .await
            .expect("no reconnection within two hours")
        {
            Some(Ok(Event::Reconnecting(r))) => delay = Some(r.delay()),
            Some(Ok(Event::Message(m))) if m.data() == "y" => break,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let delay = delay.expect("no reconnection was reported");
    assert!(
        delay >= MAX_SERVER_DELAY && delay <= MAX_SERVER_DELAY + ms(200),
        "{delay:?}"
    );
    let waited = start.elapsed();
    assert!(
        waited >= MAX_SERVER_DELAY && waited < MAX_SERVER_DELAY + Duration::from_secs(1),
        "reconnected after {waited:?}"
    );
}
