//! The default command, `ssekit URL`: print a stream's events as they
//! arrive, reconnecting like the library, and exit with a status scripts
//! can assert on.

use std::process::ExitCode;

use futures_util::StreamExt;
use serde_json::json;
use ssekit::{ClientPool, Event, EventSource, RetryPolicy};

use crate::cli::WatchArgs;
use crate::client::Request;
use crate::printer::Printer;

fn build(a: &WatchArgs, req: &Request) -> Result<EventSource, ssekit::Error> {
    let factory = req.factory.clone();
    let mut b = EventSource::builder(a.url.as_deref().unwrap_or_default())
        .client_pool(ClientPool::new(move || factory()))
        .method(req.method.clone())
        .reconnect_events(true)
        .comments(a.comments);
    for (name, value) in &req.headers {
        b = b.header(name.as_str(), value.as_str());
    }
    if let Some(d) = &req.body {
        b = b.body(d.clone());
    }
    if let Some(id) = &a.last_event_id {
        b = b.last_event_id(id.clone());
    }
    if let Some(t) = a.idle_timeout {
        b = b.idle_timeout(Some(t));
    }
    if let Some(n) = a.max_event_size {
        b = b.max_event_size(n);
    }
    if let Some(t) = a.response_timeout {
        b = b.response_timeout(Some(t));
    }
    for event_type in &a.error_event {
        b = b.error_on_event(event_type.clone());
    }
    if a.resume_by_get {
        b = b.resume_by_get(true);
    }
    if let Some(sentinel) = &a.until_data {
        // The library ends the stream at the sentinel, and reports a stream
        // that ends for good before it as truncated.
        b = b.end_on_data(sentinel.clone());
    }
    let mut policy = RetryPolicy::default();
    if let Some(n) = a.max_retries {
        policy = policy.max_attempts(n);
    }
    if let Some(d) = a.retry_delay {
        policy = policy.initial_delay(d);
    }
    b.retry_policy(policy).build()
}

pub async fn run(a: WatchArgs, p: &Printer) -> ExitCode {
    let req = match Request::from_args(&a.request) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    let mut es = match build(&a, &req) {
        Ok(es) => es,
        Err(e) => {
            p.error(&e);
            return ExitCode::from(2);
        }
    };
    let mut seen = 0u64;
    // Whether a connection is open: a reconnection then reports a lost
    // connection, otherwise one that failed to open, and the end of the
    // stream while open can only be the --until-data sentinel (a 204 comes
    // instead of an open connection).
    let mut connected = false;
    let stream = async {
        while let Some(item) = es.next().await {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) => {
                    p.error(&e);
                    return ExitCode::from(1);
                }
            };
            if p.event(&ev, connected).is_err() {
                return ExitCode::SUCCESS; // stdout closed (e.g. `| head`)
            }
            match &ev {
                Event::Open(_) => connected = true,
                Event::Reconnecting(_) => connected = false,
                Event::Message(_) => {
                    seen += 1;
                    if a.max_events.is_some_and(|n| seen >= n) {
                        return ExitCode::SUCCESS;
                    }
                }
                _ => {}
            }
        }
        let _ = match (&a.until_data, connected) {
            (Some(sentinel), true) => p.status(
                json!({"kind": "end", "reason": "until-data", "data": sentinel}),
                format!("* end marker received: {sentinel}"),
            ),
            _ => p.status(
                json!({"kind": "end", "reason": "server"}),
                "* stream ended by the server".into(),
            ),
        };
        ExitCode::SUCCESS
    };
    match a.timeout {
        None => stream.await,
        Some(t) => match tokio::time::timeout(t, stream).await {
            Ok(code) => code,
            Err(_) => {
                let _ = p.status(
                    json!({"kind": "error", "error": format!("timed out after {t:?}"), "timeout": true}),
                    format!("error: timed out after {t:?}"),
                );
                ExitCode::from(3)
            }
        },
    }
}
