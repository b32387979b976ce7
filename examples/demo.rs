//! Reconnection and resumption, end to end, in one process.
//!
//! The demo starts a small SSE server on `127.0.0.1` (an ephemeral port; no
//! other network is used) that sends twelve numbered events (`id: N`,
//! `data: tick N`) and asks for quick reconnections with `retry: 300`. It
//! misbehaves on purpose: it cuts the connection twice in the middle of an
//! event (after events 3 and 7), and after event 12 it ends the response.
//! The server honours `Last-Event-ID`: a request that carries it resumes after
//! that event, and one that has already seen event 12 gets `204 No Content`,
//! which tells the client to stop.
//!
//! An `ssekit` client reads the stream with comments and reconnection events
//! turned on and prints what happens: each connection, comment and event,
//! each disconnection with its cause and the delay before the next attempt.
//! The server prints the `Last-Event-ID` it receives on every request. At the
//! end the demo checks the account: every event exactly once and in order,
//! and the expected `Last-Event-ID` on every reconnection. It exits with a
//! non-zero status if anything is missing, duplicated or unexpected, so CI
//! can run it as a check.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! It finishes by itself in about two seconds.

use std::error::Error as StdError;
use std::io;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use ssekit::{Event, EventSource, RetryPolicy};

/// The id of the last event the server has.
const LAST_ID: u32 = 12;
/// The server cuts the connection in the middle of the event after these.
const CUT_AFTER: [u32; 2] = [3, 7];
/// The reconnection delay the server asks for, in milliseconds.
const RETRY_MS: u64 = 300;
/// The pause between two events.
const PACE: Duration = Duration::from_millis(80);
/// How long the whole demo may take before it counts as a failure.
const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo failed: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// What the server saw: the `Last-Event-ID` of each request, in order.
#[derive(Default)]
struct Server {
    requests: Mutex<Vec<Option<String>>>,
}

/// `GET /events`: resumes after the `Last-Event-ID`, if any.
async fn events(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let last_id = headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let request = {
        let mut requests = server.requests.lock().unwrap();
        requests.push(last_id.clone());
        requests.len()
    };
    let resume_after = match last_id.as_deref().map(str::parse::<u32>) {
        None => {
            println!("[server] request {request}: no Last-Event-ID, starting at event 1");
            0
        }
        Some(Ok(id)) if id >= LAST_ID => {
            println!(
                "[server] request {request}: Last-Event-ID: {id}, nothing left to send: \
                 204 No Content"
            );
            return StatusCode::NO_CONTENT.into_response();
        }
        Some(Ok(id)) => {
            println!(
                "[server] request {request}: Last-Event-ID: {id}, resuming at event {}",
                id + 1
            );
            id
        }
        Some(Err(_)) => {
            println!("[server] request {request}: unusable Last-Event-ID {last_id:?}: 400");
            return (StatusCode::BAD_REQUEST, "bad Last-Event-ID").into_response();
        }
    };
    let body = Body::from_stream(script(request, resume_after));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// One step of a response body.
#[derive(Clone, Copy)]
enum Step {
    /// `retry:` and a greeting comment.
    Preamble,
    /// Event `n` (or the end of the response past the last one).
    Event(u32),
    /// The first bytes of event `n`, which never completes.
    Partial(u32),
    /// The connection is cut in the middle of event `n`.
    Cut(u32),
}

/// The body of the response to request number `request`, starting after
/// event `resume_after`.
fn script(request: usize, resume_after: u32) -> impl Stream<Item = io::Result<Bytes>> {
    futures::stream::unfold(Some(Step::Preamble), move |step| async move {
        let item = match step? {
            Step::Preamble => {
                let greeting = if resume_after == 0 {
                    "hello from the demo server".to_owned()
                } else {
                    format!("welcome back, resuming after event {resume_after}")
                };
                let text = format!("retry: {RETRY_MS}\n: {greeting}\n\n");
                (Ok(text.into()), Some(Step::Event(resume_after + 1)))
            }
            Step::Event(n) if n > LAST_ID => {
                tokio::time::sleep(PACE).await;
                println!("[server] all {LAST_ID} events sent: ending response {request}");
                return None;
            }
            Step::Event(n) => {
                tokio::time::sleep(PACE).await;
                let text = format!("id: {n}\ndata: tick {n}\n\n");
                let next = if CUT_AFTER.contains(&n) {
                    Step::Partial(n + 1)
                } else {
                    Step::Event(n + 1)
                };
                (Ok(text.into()), Some(next))
            }
            Step::Partial(n) => {
                tokio::time::sleep(PACE).await;
                // No terminating blank line: the client must discard this.
                let text = format!("id: {n}\ndata: ti");
                (Ok(text.into()), Some(Step::Cut(n)))
            }
            Step::Cut(n) => {
                // Let the partial event reach the client before the cut.
                tokio::time::sleep(Duration::from_millis(20)).await;
                println!("[server] cutting connection {request} in the middle of event {n}");
                // An error from the body stream makes hyper abort the
                // response: the client sees the connection end mid-event.
                (Err(io::Error::other("connection cut by the demo")), None)
            }
        };
        Some(item)
    })
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// What the client saw.
#[derive(Default)]
struct Account {
    ids: Vec<u32>,
    connections: u64,
    reconnections: u32,
    failure: Option<String>,
}

async fn run() -> Result<bool, Box<dyn StdError>> {
    let server = Arc::new(Server::default());
    let app = Router::new()
        .route("/events", get(events))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!("ssekit demo: a server that cuts the stream twice, a client that resumes");
    println!("server listening on {url}");
    println!();

    // Loopback only: ignore any HTTP(S)_PROXY set in the environment.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut es = EventSource::builder(&url)
        .client(http)
        // Without jitter the delays printed are exactly the server's `retry`.
        .retry_policy(RetryPolicy::default().jitter(false).max_attempts(3))
        .comments(true)
        .reconnect_events(true)
        .build()?;

    let mut account = Account::default();
    let read = async {
        while let Some(item) = es.next().await {
            match item {
                Ok(Event::Open(open)) => {
                    account.connections = open.connection();
                    let attempt = match open.attempt() {
                        0 => "first attempt".to_owned(),
                        n => format!("reconnection attempt {n}"),
                    };
                    println!(
                        "[client] connected: {} (connection {}, {attempt})",
                        open.status(),
                        open.connection()
                    );
                }
                Ok(Event::Comment(text)) => println!("[client] comment: {}", text.trim_start()),
                Ok(Event::Message(m)) => {
                    println!("[client] event {:>2}: {}", m.id(), m.data());
                    match m.id().parse() {
                        Ok(id) => account.ids.push(id),
                        Err(_) => {
                            account.failure = Some(format!("event with a bad id {:?}", m.id()))
                        }
                    }
                }
                Ok(Event::Reconnecting(r)) => {
                    account.reconnections += 1;
                    println!("[client] disconnected: {}", cause(r.cause()));
                    println!(
                        "[client] retrying in {} ms (attempt {})",
                        r.delay().as_millis(),
                        r.attempt()
                    );
                }
                Ok(other) => println!("[client] {other:?}"),
                Err(e) => {
                    println!("[client] stream failed: {}", chain(&e));
                    account.failure = Some(format!("the stream failed: {e}"));
                }
            }
        }
        // No error and no close(): the stream ends only on a 204.
        if account.failure.is_none() {
            println!("[client] stream ended: the server has nothing more (204 No Content)");
        }
    };
    if tokio::time::timeout(DEADLINE, read).await.is_err() {
        account.failure = Some(format!("the demo did not finish within {DEADLINE:?}"));
    }

    let seen = server.requests.lock().unwrap().clone();
    Ok(report(&account, &seen))
}

/// Prints the summary and checks it; true when everything is as expected.
fn report(account: &Account, seen_by_server: &[Option<String>]) -> bool {
    let expected: Vec<u32> = (1..=LAST_ID).collect();
    let mut sorted = account.ids.clone();
    sorted.sort_unstable();
    let mut duplicated: Vec<u32> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    duplicated.dedup();
    let lost: Vec<u32> = expected
        .iter()
        .copied()
        .filter(|id| !account.ids.contains(id))
        .collect();
    let in_order = account.ids == expected;

    // The reconnections must resume exactly after the events before each cut.
    let mut expected_ids = vec![None];
    expected_ids.extend(CUT_AFTER.iter().map(|id| Some(id.to_string())));
    expected_ids.push(Some(LAST_ID.to_string()));
    let last_ids_ok = seen_by_server == expected_ids.as_slice();
    let show = |ids: &[Option<String>]| {
        let ids: Vec<&str> = ids
            .iter()
            .map(|id| id.as_deref().unwrap_or("(none)"))
            .collect();
        ids.join(", ")
    };

    let expected_connections = CUT_AFTER.len() as u64 + 1;
    let expected_reconnections = CUT_AFTER.len() as u32 + 1;

    println!();
    println!("summary");
    println!(
        "  events received:  {} of {LAST_ID}{}",
        account.ids.len(),
        if in_order {
            format!(", ids 1 to {LAST_ID} in order")
        } else {
            String::new()
        }
    );
    println!("  duplicated:       {}", list(&duplicated));
    println!("  lost:             {}", list(&lost));
    let how = if account.connections == expected_connections {
        format!(
            " ({} cut mid-event, 1 ended by the server)",
            CUT_AFTER.len()
        )
    } else {
        String::new()
    };
    println!("  connections:      {}{how}", account.connections);
    println!("  reconnections:    {}", account.reconnections);
    println!(
        "  Last-Event-ID received by the server, per request: {}",
        show(seen_by_server)
    );

    let mut problems = Vec::new();
    if let Some(f) = &account.failure {
        problems.push(f.clone());
    }
    if !in_order {
        problems.push(format!(
            "events arrived as {:?}, expected 1 to {LAST_ID}",
            account.ids
        ));
    }
    if !last_ids_ok {
        problems.push(format!(
            "the server received Last-Event-ID {}, expected {}",
            show(seen_by_server),
            show(&expected_ids)
        ));
    }
    if account.connections != expected_connections {
        problems.push(format!(
            "{} connections, expected {expected_connections}",
            account.connections
        ));
    }
    if account.reconnections != expected_reconnections {
        problems.push(format!(
            "{} reconnections, expected {expected_reconnections}",
            account.reconnections
        ));
    }
    if problems.is_empty() {
        println!(
            "result: OK, every event exactly once and in order, across {} connections",
            account.connections
        );
        true
    } else {
        for p in &problems {
            println!("result: WRONG: {p}");
        }
        false
    }
}

fn list(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    ids.join(", ")
}

/// An error and, in parentheses, its innermost source (the root cause).
fn cause(e: &(dyn StdError + 'static)) -> String {
    let mut root = e;
    while let Some(s) = root.source() {
        root = s;
    }
    if std::ptr::addr_eq(root, e) {
        e.to_string()
    } else {
        format!("{e} ({root})")
    }
}

/// An error and its sources, joined with `: `.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
