//! Metrics (feature `metrics`, issue 21): after scripted connections,
//! failures and events, a recorder that captures values holds exactly what
//! happened. The recorder is thread-local and the runtime current-thread,
//! so each test sees only its own streams.
#![cfg(feature = "metrics")]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use metrics::atomics::AtomicU64;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use ssekit::{Event, EventSource, RetryPolicy};
use support::{Reply, TestServer};

/// Every metric registered, by name and labels (`name{k=v,...}`).
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<BTreeMap<String, Arc<AtomicU64>>>>);

impl Capture {
    fn handle(&self, key: &Key) -> Arc<AtomicU64> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0
            .lock()
            .unwrap()
            .entry(name)
            .or_insert_with(|| Arc::new(AtomicU64::new(0)))
            .clone()
    }

    fn counter(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |v| v.load(Ordering::SeqCst))
    }

    fn gauge(&self, name: &str) -> f64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(f64::NAN, |v| f64::from_bits(v.load(Ordering::SeqCst)))
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test(start_paused = true)]
async fn counters_and_gauges_follow_connections_failures_and_events() {
    let capture = Capture::default();
    let _guard = metrics::set_default_local_recorder(&capture);
    let server = TestServer::start(|_, n| match n {
        0 => Reply::sse()
            .body("id: 1\ndata: one\n\nid: 2\ndata: two\n\n")
            .drop_after(usize::MAX),
        1 => Reply::status(503),
        2 => Reply::sse().body("id: 3\ndata: three\n\n").stall(),
        _ => Reply::status(500),
    })
    .await;
    let mut es = EventSource::builder(server.url("/feed"))
        .metrics_label("feed")
        .retry_policy(RetryPolicy::default().initial_delay(Duration::from_millis(100)))
        .idle_timeout(Some(Duration::from_secs(8)))
        .build()
        .unwrap();
    let mut data = Vec::new();
    while data.len() < 3 {
        if let Some(Ok(Event::Message(m))) = es.next().await {
            data.push(m.data().to_owned());
        }
    }
    assert_eq!(data, ["one", "two", "three"]);
    // An idle tick (an eighth of the idle timeout) notes the last event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = tokio::time::timeout(Duration::from_millis(10), es.next()).await;
    let s = "stream=feed";
    assert_eq!(
        capture.counter(&format!("ssekit_connection_attempts_total{{{s}}}")),
        3
    );
    assert_eq!(
        capture.counter(&format!("ssekit_connections_opened_total{{{s}}}")),
        2
    );
    assert_eq!(capture.counter(&format!("ssekit_events_total{{{s}}}")), 3);
    let bytes = "id: 1\ndata: one\n\nid: 2\ndata: two\n\nid: 3\ndata: three\n\n".len() as u64;
    assert_eq!(
        capture.counter(&format!("ssekit_bytes_total{{{s}}}")),
        bytes
    );
    assert_eq!(
        capture.counter(&format!("ssekit_reconnections_total{{{s},cause=body}}")),
        1
    );
    assert_eq!(
        capture.counter(&format!("ssekit_reconnections_total{{{s},cause=status}}")),
        1
    );
    let state = |st: &str| capture.gauge(&format!("ssekit_stream_state{{{s},state={st}}}"));
    assert_eq!(
        [
            state("connecting"),
            state("open"),
            state("waiting"),
            state("closed")
        ],
        [0.0, 1.0, 0.0, 0.0]
    );
    let noted = capture.gauge(&format!("ssekit_last_event_timestamp_seconds{{{s}}}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - noted).abs() < 60.0, "{noted} vs {now}");
    es.close();
    assert_eq!(
        [
            state("connecting"),
            state("open"),
            state("waiting"),
            state("closed")
        ],
        [0.0, 0.0, 0.0, 1.0]
    );
}

#[tokio::test]
async fn the_default_label_is_the_origin_and_requested_reconnections_count() {
    let capture = Capture::default();
    let _guard = metrics::set_default_local_recorder(&capture);
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let url = server.url("/a/b?token=secret");
    let mut es = EventSource::new(&url).unwrap();
    assert!(matches!(es.next().await, Some(Ok(Event::Open(_)))));
    es.reconnect();
    assert!(matches!(es.next().await, Some(Ok(Event::Open(_)))));
    let origin = format!("http://{}", server.addr());
    assert_eq!(
        capture.counter(&format!(
            "ssekit_reconnections_total{{stream={origin},cause=requested}}"
        )),
        1
    );
    assert_eq!(
        capture.counter(&format!(
            "ssekit_connections_opened_total{{stream={origin}}}"
        )),
        2
    );
    let names = capture
        .0
        .lock()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    assert!(names.iter().all(|n| !n.contains("secret")), "{names:?}");
}
