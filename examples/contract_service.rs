//! A test service for LaunchDarkly's SSE contract-test suite.
//!
//! [sse-contract-tests](https://github.com/launchdarkly/sse-contract-tests)
//! is a language-neutral test harness for SSE clients: it runs mock SSE
//! servers, asks a *test service* to start clients against them, and checks
//! what the clients report back. This example is that test service for
//! `ssekit`. It listens on `127.0.0.1` (port 8000 unless `--port N` says
//! otherwise) and speaks the harness's REST protocol:
//!
//! | request | effect |
//! |---|---|
//! | `GET /` | 200 with `{"name": "ssekit", "capabilities": [...]}` |
//! | `DELETE /` | the service exits |
//! | `POST /` | starts a client; 201 with `Location: .../streams/N` (400 on bad input) |
//! | `POST /streams/N` | `{"command": "restart"}` forces a reconnection; `{"command": "listen", "listen": {"type": T}}` adds event type `T` (400 unknown command, 404 unknown stream) |
//! | `DELETE /streams/N` | stops that client (404 unknown stream) |
//!
//! The body of `POST /` is a JSON object: `streamUrl` and `callbackUrl`
//! (required), and optionally `tag`, `initialDelayMs`, `readTimeoutMs`,
//! `lastEventId`, `headers` (an object of strings), `method` and `body`. Two
//! extensions, also optional, tune `ssekit` itself: `"maxEventBytes"` and
//! `"backoff": {"initialMs", "maxMs", "multiplier", "maxAttempts", "jitter"}`
//! (each key optional; `"maxAttempts": null` means unlimited; `initialMs`
//! wins over `initialDelayMs`).
//!
//! Each client reports to `{callbackUrl}/1`, `/2`, ... in order, one POST at
//! a time, with a JSON body:
//!
//! * `{"kind": "event", "event": {"type", "data", "id"}}` for each event
//!   (`id` left out when the event has none) of type `message`, or of a type
//!   added with `listen` (capability `event-type-listeners`: each client is
//!   an [`ssekit::EventSubscription`] of a [`ssekit::Dispatcher`]);
//! * `{"kind": "comment", "comment": "..."}` for each comment line, as soon
//!   as it is read;
//! * `{"kind": "error", "error": "...", "fatal": false}` when a connection
//!   fails or ends and the client is about to reconnect, and `"fatal": true`
//!   when the stream ends with an error for good.
//!
//! Run the service, then the harness against it:
//!
//! ```text
//! cargo run --example contract_service -- --port 8000
//! # elsewhere, with the harness from github.com/launchdarkly/sse-contract-tests:
//! sse-contract-tests --url http://localhost:8000 --stop-service-at-end
//! ```

use std::collections::HashMap;
use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use ssekit::{
    Dispatcher, Event, EventSource, EventSubscription, Handle, Listener, RetryPolicy,
    SubscriptionError,
};

/// What the harness may test; see the harness's `docs/optional_features.md`.
const CAPABILITIES: &[&str] = &[
    "bom",
    "comments",
    "headers",
    "last-event-id",
    "post",
    "read-timeout",
    "report",
    "restart",
    "event-type-listeners",
    "server-directed-shutdown-request",
];

const DEFAULT_PORT: u16 = 8000;

/// How long one callback POST may take before it is given up.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let port = match parse_port(std::env::args().skip(1)) {
        Ok(Some(port)) => port,
        Ok(None) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("contract_service: {msg}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match serve(port).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("contract_service: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    format!("usage: contract_service [--port N]   (default port {DEFAULT_PORT})")
}

/// Reads `--port N` or `--port=N`; `Ok(None)` for `--help`.
fn parse_port(mut args: impl Iterator<Item = String>) -> Result<Option<u16>, String> {
    let mut port = DEFAULT_PORT;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => args.next().ok_or("--port needs a value")?,
            _ => match arg.strip_prefix("--port=") {
                Some(v) => v.to_owned(),
                None => return Err(format!("unexpected argument {arg:?}")),
            },
        };
        port = value
            .parse()
            .map_err(|_| format!("invalid port {value:?}"))?;
    }
    Ok(Some(port))
}

async fn serve(port: u16) -> Result<(), Box<dyn StdError>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr()?;
    let service = Arc::new(Service {
        addr,
        callbacks: reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .build()?,
        next_id: AtomicU64::new(1),
        streams: Mutex::new(HashMap::new()),
    });
    let app = Router::new()
        .route("/", get(status).post(create).delete(quit))
        .route("/streams/{id}", post(command).delete(close))
        .with_state(service);
    println!("ssekit contract-test service listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The REST endpoints
// ---------------------------------------------------------------------------

struct Service {
    /// Where the service listens.
    addr: std::net::SocketAddr,
    /// One client for every callback of every stream.
    callbacks: reqwest::Client,
    next_id: AtomicU64,
    streams: Mutex<HashMap<u64, Stream>>,
}

/// A running client, as the service keeps it.
struct Stream {
    tag: String,
    handle: Handle,
    /// Adds event types for the `listen` command.
    listener: Listener,
    task: tokio::task::JoinHandle<()>,
}

type Shared = State<Arc<Service>>;

/// `GET /`: the service is up, and what it can do.
async fn status() -> Response {
    let body = json!({ "name": "ssekit", "capabilities": CAPABILITIES });
    json_response(StatusCode::OK, &body)
}

/// `DELETE /`: answers, then exits.
async fn quit() -> StatusCode {
    println!("asked to exit");
    tokio::spawn(async {
        // Give the response a moment to go out.
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::process::exit(0);
    });
    StatusCode::NO_CONTENT
}

/// `POST /`: starts a client.
async fn create(State(service): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::parse(&body) {
        Ok(p) => p,
        Err(msg) => return bad_request(msg),
    };
    let mut es = match params.event_source() {
        Ok(es) => es,
        Err(msg) => return bad_request(msg),
    };
    let id = service.next_id.fetch_add(1, Ordering::Relaxed);
    let tag = params.tag.clone().unwrap_or_else(|| format!("stream {id}"));
    println!(
        "[{tag}] start: {} {}",
        params.method_name(),
        params.stream_url
    );

    let handle = es.handle();
    // Only `message` events until a `listen` command adds more types; the
    // subscription alone keeps the connection (the hub handle is dropped).
    let hub = Dispatcher::spawn(es);
    let events = hub.subscribe_events(&["message"]);
    let listener = events.listener();
    drop(hub);
    let reporter = Reporter {
        http: service.callbacks.clone(),
        base: params.callback_url.trim_end_matches('/').to_owned(),
        next: 1,
        tag: tag.clone(),
    };
    let task = tokio::spawn(run(events, reporter));
    service.streams.lock().unwrap().insert(
        id,
        Stream {
            tag,
            handle,
            listener,
            task,
        },
    );

    // An absolute URL, so the harness need not resolve it.
    let host = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => host.to_owned(),
        None => service.addr.to_string(),
    };
    let location = format!("http://{host}/streams/{id}");
    (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
}

/// `POST /streams/{id}`: a command for one client.
async fn command(State(service): Shared, Path(id): Path<String>, body: Bytes) -> Response {
    let streams = service.streams.lock().unwrap();
    let Some(stream) = id.parse().ok().and_then(|id: u64| streams.get(&id)) else {
        return not_found(&id);
    };
    let (command, listen) = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(obj)) => (obj.get("command").cloned(), obj.get("listen").cloned()),
        Ok(_) => return bad_request("the command must be a JSON object".into()),
        Err(e) => return bad_request(format!("the command is not valid JSON: {e}")),
    };
    match command {
        Some(Value::String(c)) if c == "restart" => {
            stream.handle.reconnect();
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Value::String(c)) if c == "listen" => {
            match listen
                .as_ref()
                .and_then(|l| l.get("type"))
                .and_then(Value::as_str)
            {
                Some(t) => {
                    stream.listener.listen(t);
                    println!("[{}] listening to {t:?} events", stream.tag);
                    StatusCode::NO_CONTENT.into_response()
                }
                None => bad_request("\"listen\" needs {\"listen\": {\"type\": \"...\"}}".into()),
            }
        }
        Some(Value::String(c)) => bad_request(format!("unknown command {c:?}")),
        Some(_) => bad_request("\"command\" must be a string".into()),
        None => bad_request("missing \"command\"".into()),
    }
}

/// `DELETE /streams/{id}`: stops one client.
async fn close(State(service): Shared, Path(id): Path<String>) -> Response {
    let removed = id
        .parse()
        .ok()
        .and_then(|id: u64| service.streams.lock().unwrap().remove(&id));
    match removed {
        Some(stream) => {
            // Aborting the task drops the EventSource (closing its
            // connection) and stops any callback in flight.
            stream.task.abort();
            println!("[{}] stopped", stream.tag);
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(&id),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let body = serde_json::to_vec(body).expect("a Value always serializes");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn bad_request(msg: String) -> Response {
    eprintln!("400: {msg}");
    (StatusCode::BAD_REQUEST, msg).into_response()
}

fn not_found(id: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no stream {id:?}")).into_response()
}

// ---------------------------------------------------------------------------
// The parameters of `POST /`
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Params {
    stream_url: String,
    callback_url: String,
    tag: Option<String>,
    initial_delay_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    last_event_id: Option<String>,
    headers: Vec<(String, String)>,
    method: Option<reqwest::Method>,
    body: Option<String>,
    backoff: BackoffParams,
    max_event_bytes: Option<usize>,
}

#[derive(Debug, Default)]
struct BackoffParams {
    initial_ms: Option<u64>,
    max_ms: Option<u64>,
    multiplier: Option<f64>,
    /// `Some(None)`: explicitly unlimited.
    max_attempts: Option<Option<u32>>,
    jitter: Option<bool>,
}

impl Params {
    /// Reads and checks the JSON body; the error says what is wrong.
    fn parse(body: &[u8]) -> Result<Params, String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("the request body is not valid JSON: {e}"))?;
        let Value::Object(obj) = value else {
            return Err("the request body must be a JSON object".into());
        };
        let fields = Fields(&obj);

        let stream_url = fields.string("streamUrl")?.ok_or("missing \"streamUrl\"")?;
        let callback_url = fields
            .string("callbackUrl")?
            .ok_or("missing \"callbackUrl\"")?;
        match reqwest::Url::parse(&callback_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(_) => return Err("\"callbackUrl\" must be an http or https URL".into()),
            Err(e) => return Err(format!("\"callbackUrl\" is not a valid URL: {e}")),
        }
        let method = match fields.string("method")? {
            None => None,
            Some(m) => Some(
                reqwest::Method::from_bytes(m.as_bytes())
                    .map_err(|_| format!("\"method\" {m:?} is not a valid HTTP method"))?,
            ),
        };
        let headers = match obj.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(h)) => h
                .iter()
                .map(|(name, value)| match value {
                    _ if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() => {
                        Err(format!("{name:?} is not a valid header name"))
                    }
                    Value::String(v) => Ok((name.clone(), v.clone())),
                    _ => Err(format!("header {name:?} must have a string value")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("\"headers\" must be an object of strings".into()),
        };
        let backoff = match obj.get("backoff") {
            None | Some(Value::Null) => BackoffParams::default(),
            Some(Value::Object(b)) => {
                let b = Fields(b);
                BackoffParams {
                    initial_ms: b.uint("initialMs")?,
                    max_ms: b.uint("maxMs")?,
                    multiplier: b.number("multiplier")?,
                    max_attempts: match b.0.get("maxAttempts") {
                        None => None,
                        Some(Value::Null) => Some(None),
                        Some(_) => Some(Some(
                            b.uint("maxAttempts")?
                                .and_then(|n| u32::try_from(n).ok())
                                .ok_or("\"maxAttempts\" is too large")?,
                        )),
                    },
                    jitter: b.bool("jitter")?,
                }
            }
            Some(_) => return Err("\"backoff\" must be an object".into()),
        };
        let max_event_bytes = match fields.uint("maxEventBytes")? {
            None => None,
            Some(n) => Some(usize::try_from(n).map_err(|_| "\"maxEventBytes\" is too large")?),
        };

        Ok(Params {
            stream_url,
            callback_url,
            tag: fields.string("tag")?,
            initial_delay_ms: fields.uint("initialDelayMs")?,
            read_timeout_ms: fields.uint("readTimeoutMs")?,
            last_event_id: fields.string("lastEventId")?,
            headers,
            method,
            body: fields.string("body")?,
            backoff,
            max_event_bytes,
        })
    }

    fn method_name(&self) -> &str {
        self.method.as_ref().map_or("GET", |m| m.as_str())
    }

    /// The client these parameters describe; `build()`'s complaints (a bad
    /// URL, header or multiplier) come back as the error message.
    fn event_source(&self) -> Result<EventSource, String> {
        let ms = Duration::from_millis;
        let b = &self.backoff;
        let mut policy = RetryPolicy::default();
        if let Some(initial) = b.initial_ms.or(self.initial_delay_ms) {
            policy = policy.initial_delay(ms(initial));
        }
        if let Some(max) = b.max_ms {
            policy = policy.max_delay(ms(max));
        }
        if let Some(m) = b.multiplier {
            policy = policy.multiplier(m);
        }
        match b.max_attempts {
            Some(Some(n)) => policy = policy.max_attempts(n),
            Some(None) => policy = policy.unlimited_attempts(),
            None => {}
        }
        if let Some(on) = b.jitter {
            policy = policy.jitter(on);
        }

        let mut builder = EventSource::builder(&self.stream_url)
            .retry_policy(policy)
            .comments(true)
            .reconnect_events(true);
        if let Some(t) = self.read_timeout_ms {
            builder = builder.idle_timeout(Some(ms(t)));
        }
        if let Some(id) = &self.last_event_id {
            builder = builder.last_event_id(id);
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(method) = &self.method {
            if method != reqwest::Method::GET {
                // The harness expects a POST or REPORT stream to be re-sent
                // on every reconnection, even after events.
                builder = builder.resend_after_events(true);
            }
            builder = builder.method(method.clone());
        }
        if let Some(body) = &self.body {
            let typed = self
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
            if !typed {
                builder = builder.header("content-type", "text/plain; charset=utf-8");
            }
            builder = builder.body(body.clone());
        }
        if let Some(n) = self.max_event_bytes {
            builder = builder.max_event_size(n);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// Typed access to optional JSON fields: absent and `null` are `None`, a
/// value of the wrong type is an error naming the field.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" must be a string")),
        }
    }

    fn uint(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("\"{key}\" must be a non-negative integer")),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("\"{key}\" must be a number")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("\"{key}\" must be true or false")),
        }
    }
}

// ---------------------------------------------------------------------------
// One client and its callbacks
// ---------------------------------------------------------------------------

/// Sends one stream's callbacks, numbered, one at a time.
struct Reporter {
    http: reqwest::Client,
    base: String,
    next: u64,
    tag: String,
}

impl Reporter {
    async fn send(&mut self, message: Value) {
        let url = format!("{}/{}", self.base, self.next);
        self.next += 1;
        let body = serde_json::to_vec(&message).expect("a Value always serializes");
        let sent = self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => eprintln!("[{}] callback {url} answered {}", self.tag, r.status()),
            Err(e) => eprintln!("[{}] callback {url} failed: {}", self.tag, chain(&e)),
        }
    }
}

/// Reads the stream and reports each item, awaiting each callback before
/// reading on, so callbacks are never out of order or concurrent.
async fn run(mut events: EventSubscription, mut reporter: Reporter) {
    while let Some(item) = events.next().await {
        let message = match item {
            Ok(Event::Message(m)) => {
                let mut event = json!({ "type": m.event(), "data": m.data() });
                if !m.id().is_empty() {
                    event["id"] = m.id().into();
                }
                json!({ "kind": "event", "event": event })
            }
            Ok(Event::Comment(text)) => json!({ "kind": "comment", "comment": text }),
            Ok(Event::Reconnecting(r)) => {
                // A reconnection the harness asked for is not an error.
                if r.cause().is_reconnect_requested() {
                    println!("[{}] restarting as asked", reporter.tag);
                    continue;
                }
                let cause = chain(r.cause());
                println!(
                    "[{}] reconnecting in {} ms: {cause}",
                    reporter.tag,
                    r.delay().as_millis()
                );
                json!({ "kind": "error", "error": cause, "fatal": false })
            }
            Ok(Event::Open(open)) => {
                println!(
                    "[{}] open (connection {}, attempt {})",
                    reporter.tag,
                    open.connection(),
                    open.attempt()
                );
                continue;
            }
            Ok(_) => continue,
            Err(SubscriptionError::Stream(e)) => {
                let error = chain(&*e);
                println!("[{}] failed for good: {error}", reporter.tag);
                json!({ "kind": "error", "error": error, "fatal": true })
            }
            // Backpressure (the default) never drops events: no lag.
            Err(e) => {
                println!("[{}] {e}", reporter.tag);
                continue;
            }
        };
        reporter.send(message).await;
    }
    println!("[{}] stream ended", reporter.tag);
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
