//! One connection, several subscribers: a live terminal dashboard.
//!
//! An embedded server on `127.0.0.1` (an ephemeral port; no other network is
//! used) streams about three seconds of mixed events, one every 50 ms, each
//! with an id: `metrics` (`{"cpu", "mem", "rps"}`), `alerts`
//! (`{"level", "text"}`) and `logs` (plain text), with `: heartbeat` comments
//! in between. Once, in the middle of an event, it cuts the connection; the
//! client reconnects with `Last-Event-ID` and the server resumes after that
//! event. When everything has been sent it ends the response, and answers
//! the client's next request with `204 No Content`, which ends the stream.
//!
//! The client opens one `EventSource` and hands it to a `Dispatcher`, which
//! fans the events out to three subscribers, each in its own task:
//!
//! * `metrics`: `hub.subscribe("metrics").json::<Metric>()`, typed values;
//! * `alerts`: `hub.subscribe("alerts").json::<Alert>()`;
//! * `everything`: `hub.subscribe_all()`, which counts the events by type and
//!   checks their ids.
//!
//! A render task redraws a small view five times a second: the connection,
//! the last metrics with a bar for the CPU, the last three alerts, and the
//! counts per type. When stdout is a terminal the view is redrawn in place
//! with ANSI cursor movement; otherwise (a pipe, a CI log) each redraw is one
//! plain snapshot line.
//!
//! The example exits by itself after about 3.5 s with a summary, and with
//! status 1 if the `everything` subscriber did not get exactly the events the
//! server sent (each once, in order), if a typed subscriber missed one, or if
//! the reconnection did not resume where the cut happened.
//!
//! ```text
//! cargo run --example dashboard --features json
//! cargo run --example dashboard --features json | cat    # plain snapshots
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use ssekit::{
    Dispatcher, EventSource, Json, RetryPolicy, Subscription, SubscriptionError, TypedError,
};
use tokio::sync::Notify;

/// The number of events the server has.
const TOTAL: u32 = 60;
/// The server cuts the first connection in the middle of the event after
/// this one.
const CUT_AFTER: u32 = 27;
/// The pause between two events.
const PACE: Duration = Duration::from_millis(50);
/// A heartbeat comment goes out before every this many events.
const HEARTBEAT_EVERY: u32 = 5;
/// The reconnection delay the server asks for, in milliseconds.
const RETRY_MS: u64 = 150;
/// How often the view is redrawn.
const FRAME: Duration = Duration::from_millis(200);
/// How long the whole example may take before it counts as a failure.
const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dashboard failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The events
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Deserialize)]
struct Metric {
    /// Percent.
    cpu: f64,
    /// Percent.
    mem: f64,
    /// Requests per second.
    rps: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct Alert {
    level: String,
    text: String,
}

/// The type of event number `n`: mostly metrics, some logs, an alert now
/// and then.
fn event_type(n: u32) -> &'static str {
    if n % 8 == 5 {
        "alerts"
    } else if n % 3 == 0 {
        "logs"
    } else {
        "metrics"
    }
}

/// The data of event number `n`.
fn event_data(n: u32) -> String {
    let t = f64::from(n);
    match event_type(n) {
        "metrics" => {
            // A slow wave, with a burst of traffic (the "cpu above 90%" alert).
            let burst = (17..=23).contains(&n);
            let cpu = if burst {
                88.0 + f64::from(n % 4) * 2.5
            } else {
                40.0 + 22.0 * (t / 6.0).sin()
            };
            let mem = 52.0 + t * 0.25;
            let rps = 850 + (n * 37) % 400 + if burst { 900 } else { 0 };
            format!("{{\"cpu\":{cpu:.1},\"mem\":{mem:.1},\"rps\":{rps}}}")
        }
        "alerts" => {
            const ALERTS: [(&str, &str); 6] = [
                ("info", "deploy 7c1e9a0 rolled out to 4/4 hosts"),
                ("warn", "p99 latency 910 ms on /checkout"),
                ("crit", "cpu above 90% on web-3 for 20 s"),
                ("info", "cpu back under 70% on web-3"),
                ("warn", "queue 'emails' backlog at 1.2k"),
                ("crit", "disk /var/lib/pg on db-1 at 94%"),
            ];
            let (level, text) = ALERTS[(n / 8) as usize % ALERTS.len()];
            format!("{{\"level\":\"{level}\",\"text\":\"{text}\"}}")
        }
        _ => {
            const PATHS: [&str; 4] = ["/api/items", "/api/cart", "/healthz", "/api/search?q=lamp"];
            let path = PATHS[n as usize % PATHS.len()];
            format!("GET {path} 200 {}ms", 3 + (n * 13) % 40)
        }
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// What the server did, for the summary (it prints nothing while the view
/// is being drawn).
#[derive(Default)]
struct Server {
    /// The `Last-Event-ID` of each request.
    requests: Mutex<Vec<Option<String>>>,
    /// Complete events written, by type.
    sent: Mutex<BTreeMap<&'static str, u64>>,
    log: Mutex<Vec<String>>,
}

impl Server {
    fn note(&self, line: String) {
        lock(&self.log).push(line);
    }

    fn sent_total(&self) -> u64 {
        lock(&self.sent).values().sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `GET /dashboard`: resumes after the `Last-Event-ID`, if any.
async fn dashboard(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = {
        let mut requests = lock(&server.requests);
        requests.push(last_id.clone());
        requests.len()
    };
    let after = match last_id.as_deref().map(str::parse::<u32>) {
        None => 0,
        Some(Ok(id)) if id >= TOTAL => {
            server.note(format!(
                "request {request}: Last-Event-ID {id}, nothing left: 204 No Content"
            ));
            return StatusCode::NO_CONTENT.into_response();
        }
        Some(Ok(id)) => id,
        Some(Err(_)) => {
            server.note(format!(
                "request {request}: bad Last-Event-ID {last_id:?}: 400"
            ));
            return (StatusCode::BAD_REQUEST, "bad Last-Event-ID").into_response();
        }
    };
    server.note(match &last_id {
        None => format!("request {request}: no Last-Event-ID, streaming from event 1"),
        Some(id) => format!(
            "request {request}: Last-Event-ID {id}, resuming at event {}",
            after + 1
        ),
    });
    // Only the first connection is cut.
    let cut = (after < CUT_AFTER).then_some(CUT_AFTER);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(script(server, request, after, cut)),
    )
        .into_response()
}

/// The next step of a response body.
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

/// The body of one response: the events after `after`, cut in the middle of
/// the event after `cut` if set, ended after the last event.
fn script(
    server: Arc<Server>,
    request: usize,
    after: u32,
    cut: Option<u32>,
) -> impl Stream<Item = io::Result<Bytes>> {
    futures::stream::unfold(Some(Step::Preamble), move |step| {
        let server = server.clone();
        async move {
            let item = match step? {
                Step::Preamble => {
                    let text =
                        format!("retry: {RETRY_MS}\n: dashboard feed, request {request}\n\n");
                    (Ok(text.into()), Some(Step::Event(after + 1)))
                }
                Step::Event(n) if n > TOTAL => {
                    tokio::time::sleep(PACE).await;
                    server.note(format!(
                        "request {request}: all {TOTAL} events sent, response ended"
                    ));
                    return None;
                }
                Step::Event(n) => {
                    tokio::time::sleep(PACE).await;
                    let kind = event_type(n);
                    let mut text = String::new();
                    if n % HEARTBEAT_EVERY == 0 {
                        text.push_str(": heartbeat\n\n");
                    }
                    let _ = write!(text, "id: {n}\nevent: {kind}\ndata: {}\n\n", event_data(n));
                    *lock(&server.sent).entry(kind).or_default() += 1;
                    let next = if cut == Some(n) {
                        Step::Partial(n + 1)
                    } else {
                        Step::Event(n + 1)
                    };
                    (Ok(text.into()), Some(next))
                }
                Step::Partial(n) => {
                    tokio::time::sleep(PACE).await;
                    // No blank line: the client must drop this half event.
                    let text = format!("id: {n}\nevent: {}\ndata: {{\"cp", event_type(n));
                    (Ok(text.into()), Some(Step::Cut(n)))
                }
                Step::Cut(n) => {
                    // Let the half event reach the client before the cut.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    server.note(format!(
                        "request {request}: connection cut in the middle of event {n}"
                    ));
                    // An error from the body stream makes hyper abort the
                    // response: the client sees the connection drop.
                    (Err(io::Error::other("connection cut on purpose")), None)
                }
            };
            Some(item)
        }
    })
}

// ---------------------------------------------------------------------------
// The client: shared state and the subscribers
// ---------------------------------------------------------------------------

/// The connection as the view shows it.
#[derive(Debug, Clone)]
enum Connection {
    /// A request is on its way (seen by the `on_request` hook).
    Connecting {
        request: u32,
        last_event_id: Option<String>,
    },
    /// Events are arriving on the connection of this request.
    Open { request: u32 },
    /// The stream ended cleanly (here: the server's 204).
    Ended,
    /// The stream ended with this error.
    Failed(String),
}

/// Everything the subscribers learnt, read by the render task.
struct View {
    connection: Connection,
    requests: u32,
    last_event_at: Option<Instant>,
    metric: Option<Metric>,
    metrics_seen: u64,
    /// The last three alerts, newest first.
    alerts: VecDeque<Alert>,
    alerts_seen: u64,
    /// Counted by the `everything` subscriber.
    counts: BTreeMap<String, u64>,
    ids: Vec<u32>,
    problems: Vec<String>,
}

impl View {
    fn new() -> Self {
        View {
            connection: Connection::Connecting {
                request: 0,
                last_event_id: None,
            },
            requests: 0,
            last_event_at: None,
            metric: None,
            metrics_seen: 0,
            alerts: VecDeque::new(),
            alerts_seen: 0,
            counts: BTreeMap::new(),
            ids: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

type Shared = Arc<Mutex<View>>;

/// `metrics`: typed values; the view shows the latest.
async fn watch_metrics(mut metrics: Json<Subscription, Metric>, view: Shared) {
    while let Some(item) = metrics.next().await {
        let mut v = lock(&view);
        match item {
            Ok(m) => {
                v.metric = Some(m);
                v.metrics_seen += 1;
            }
            Err(e) => typed_problem(&mut v, "metrics", e),
        }
    }
}

/// `alerts`: typed values; the view shows the last three.
async fn watch_alerts(mut alerts: Json<Subscription, Alert>, view: Shared) {
    while let Some(item) = alerts.next().await {
        let mut v = lock(&view);
        match item {
            Ok(a) => {
                v.alerts.push_front(a);
                v.alerts.truncate(3);
                v.alerts_seen += 1;
            }
            Err(e) => typed_problem(&mut v, "alerts", e),
        }
    }
}

fn typed_problem(v: &mut View, who: &str, e: TypedError<SubscriptionError>) {
    match e {
        // The stream's own end is reported by the `everything` subscriber.
        TypedError::Stream(SubscriptionError::Stream(_)) => {}
        e => v.problems.push(format!("{who} subscriber: {e}")),
    }
}

/// `everything`: every event, counted by type; ids checked; drives the
/// connection status.
async fn watch_everything(mut all: Subscription, view: Shared) {
    let mut failed = false;
    while let Some(item) = all.next().await {
        let mut v = lock(&view);
        match item {
            Ok(event) => {
                *v.counts.entry(event.event().to_owned()).or_default() += 1;
                match event.id().parse() {
                    Ok(id) => v.ids.push(id),
                    Err(_) => {
                        let bad = format!("event with a bad id {:?}", event.id());
                        v.problems.push(bad);
                    }
                }
                v.last_event_at = Some(Instant::now());
                v.connection = Connection::Open {
                    request: v.requests,
                };
            }
            Err(SubscriptionError::Stream(e)) => {
                failed = true;
                v.connection = Connection::Failed(chain(&*e));
            }
            Err(e) => v.problems.push(format!("everything subscriber: {e}")),
        }
    }
    if !failed {
        lock(&view).connection = Connection::Ended;
    }
}

// ---------------------------------------------------------------------------
// The view
// ---------------------------------------------------------------------------

/// Draws the view: in place on a terminal, one snapshot line otherwise.
struct Screen {
    tty: bool,
    started: Instant,
    /// Lines of the last frame (terminal mode), to move back over.
    drawn: usize,
}

impl Screen {
    fn draw(&mut self, v: &View) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut out = String::new();
        if self.tty {
            let lines = self.frame(v, elapsed);
            if self.drawn > 0 {
                // Back to the first line of the previous frame.
                let _ = write!(out, "\x1b[{}F", self.drawn);
            }
            for line in &lines {
                // Clear the line, then write it.
                let _ = writeln!(out, "\x1b[2K{line}");
            }
            self.drawn = lines.len();
        } else {
            let _ = writeln!(out, "{}", self.snapshot(v, elapsed));
        }
        let mut stdout = io::stdout().lock();
        let _ = stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush());
    }

    /// The terminal frame: always the same number of lines.
    fn frame(&self, v: &View, elapsed: f64) -> Vec<String> {
        let mut lines = vec![
            format!("\x1b[1mssekit dashboard\x1b[0m  one connection, three subscribers  {elapsed:4.1} s"),
            format!("connection  {}", connection(v)),
            format!("metrics     {}", metric(v)),
        ];
        for i in 0..3 {
            let label = if i == 0 { "alerts" } else { "" };
            let text = match v.alerts.get(i) {
                Some(a) => {
                    let colour = match a.level.as_str() {
                        "crit" => "\x1b[31;1m",
                        "warn" => "\x1b[33m",
                        _ => "\x1b[2m",
                    };
                    format!("{colour}{:<4}\x1b[0m  {}", a.level, a.text)
                }
                None if i == 0 => "none yet".to_owned(),
                None => String::new(),
            };
            lines.push(format!("{label:<11} {text}"));
        }
        lines.push(format!("events      {}", counts(v)));
        lines
    }

    /// One line for logs.
    fn snapshot(&self, v: &View, elapsed: f64) -> String {
        let alert = match v.alerts.front() {
            Some(a) => format!("alert {}: {} ({} so far)", a.level, a.text, v.alerts_seen),
            None => "no alerts".to_owned(),
        };
        format!(
            "[{elapsed:4.1}s] {} | {} | {alert} | {}",
            connection(v),
            metric(v),
            counts(v)
        )
    }
}

fn connection(v: &View) -> String {
    match &v.connection {
        Connection::Connecting {
            request,
            last_event_id,
        } => match last_event_id {
            Some(id) => format!("reconnecting: request {request}, Last-Event-ID {id}"),
            None => format!("connecting: request {request}"),
        },
        Connection::Open { request } => {
            let quiet = v.last_event_at.map_or(0, |t| t.elapsed().as_millis());
            if quiet > 3 * PACE.as_millis() {
                format!("open (request {request}), quiet for {quiet} ms")
            } else {
                format!("open (request {request}), live")
            }
        }
        Connection::Ended => "closed: the server has nothing more".to_owned(),
        Connection::Failed(e) => format!("failed: {e}"),
    }
}

fn metric(v: &View) -> String {
    match v.metric {
        Some(m) => format!(
            "cpu {:5.1}% {}  mem {:4.1}%  rps {:4}",
            m.cpu,
            bar(m.cpu, 10),
            m.mem,
            m.rps
        ),
        None => "waiting for the first value".to_owned(),
    }
}

/// `[#####.....]` for a percentage.
fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

fn counts(v: &View) -> String {
    let mut parts: Vec<String> = v.counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    parts.push(format!("total {}", v.total()));
    parts.join(", ")
}

// ---------------------------------------------------------------------------
// Putting it together
// ---------------------------------------------------------------------------

async fn run() -> Result<bool, Box<dyn StdError>> {
    let server = Arc::new(Server::default());
    let app = Router::new()
        .route("/dashboard", get(dashboard))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/dashboard", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tty = io::stdout().is_terminal();
    println!("ssekit dashboard example: {url}");
    println!(
        "{TOTAL} events, one every {} ms, the connection cut once; {}",
        PACE.as_millis(),
        if tty {
            "redrawn in place"
        } else {
            "stdout is not a terminal: snapshot lines"
        }
    );
    println!();

    let view: Shared = Arc::new(Mutex::new(View::new()));
    let hook_view = view.clone();
    let es = EventSource::builder(&url)
        // Loopback only: ignore any HTTP(S)_PROXY in the environment.
        .client(reqwest::Client::builder().no_proxy().build()?)
        .retry_policy(RetryPolicy::default().max_attempts(3))
        // The dispatcher passes on events only, so the connection status
        // comes from here: each request, with the Last-Event-ID it carries.
        .on_request(move |request| {
            let last_event_id = request
                .headers()
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut v = lock(&hook_view);
            v.requests += 1;
            v.connection = Connection::Connecting {
                request: v.requests,
                last_event_id,
            };
        })
        .build()?;

    // One connection. Subscribe at once: an event reaches only the
    // subscriptions that exist when it arrives, and the driver is already
    // running (the first event needs an HTTP round trip, ample time here).
    let hub = Dispatcher::spawn(es);
    let metrics = hub.subscribe("metrics").json::<Metric>();
    let alerts = hub.subscribe("alerts").json::<Alert>();
    let everything = hub.subscribe_all();

    let subscribers = [
        tokio::spawn(watch_metrics(metrics, view.clone())),
        tokio::spawn(watch_alerts(alerts, view.clone())),
        tokio::spawn(watch_everything(everything, view.clone())),
    ];

    let stop = Arc::new(Notify::new());
    let render = {
        let (view, stop) = (view.clone(), stop.clone());
        let mut screen = Screen {
            tty,
            started: Instant::now(),
            drawn: 0,
        };
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FRAME);
            loop {
                tokio::select! {
                    _ = ticker.tick() => screen.draw(&lock(&view)),
                    () = stop.notified() => break,
                }
            }
            // The last frame, with the final state.
            screen.draw(&lock(&view));
        })
    };

    // The subscribers end when the stream does (the server's 204).
    let started = Instant::now();
    let finished = tokio::time::timeout(DEADLINE, futures::future::join_all(subscribers)).await;
    let elapsed = started.elapsed();
    if finished.is_err() {
        hub.close();
    }
    stop.notify_one();
    render.await?;
    let closed = hub.is_closed();
    drop(hub);

    let mut v = lock(&view);
    if let Ok(results) = &finished {
        for r in results {
            if let Err(e) = r {
                v.problems.push(format!("a subscriber task failed: {e}"));
            }
        }
    } else {
        v.problems
            .push(format!("the stream did not end within {DEADLINE:?}"));
    }
    if !closed {
        v.problems.push("the dispatcher is not closed".to_owned());
    }
    Ok(report(&server, &mut v, elapsed))
}

/// Prints the summary and checks it; true when all is as expected.
fn report(server: &Server, v: &mut View, elapsed: Duration) -> bool {
    let sent = lock(&server.sent).clone();
    let sent_total = server.sent_total();
    let requests = lock(&server.requests).clone();
    let show_sent: Vec<String> = sent.iter().map(|(t, n)| format!("{t} {n}")).collect();

    println!();
    println!("summary");
    println!(
        "  server sent:        {sent_total} events ({})",
        show_sent.join(", ")
    );
    println!(
        "  everything got:     {} events ({})",
        v.total(),
        counts(v).rsplit_once(", total").map_or("", |(c, _)| c)
    );
    println!("  metrics subscriber: {} typed values", v.metrics_seen);
    println!(
        "  alerts subscriber:  {} typed values, the last ones:",
        v.alerts_seen
    );
    for a in &v.alerts {
        println!("                        {:<4}  {}", a.level, a.text);
    }
    let ids: Vec<&str> = requests
        .iter()
        .map(|id| id.as_deref().unwrap_or("(none)"))
        .collect();
    println!(
        "  requests:           {}, with Last-Event-ID {}",
        requests.len(),
        ids.join(", ")
    );
    for line in lock(&server.log).iter() {
        println!("  server:             {line}");
    }
    println!("  took:               {} ms", elapsed.as_millis());

    // Nothing lost, nothing duplicated, in order.
    let expected: Vec<u32> = (1..=TOTAL).collect();
    if v.ids != expected {
        let mut seen = v.ids.clone();
        seen.sort_unstable();
        let duplicated = seen.windows(2).filter(|w| w[0] == w[1]).count();
        seen.dedup();
        let lost = expected.iter().filter(|id| !seen.contains(id)).count();
        let order = if v.ids.windows(2).all(|w| w[0] < w[1]) {
            ""
        } else {
            ", out of order"
        };
        v.problems.push(format!(
            "the everything subscriber got ids {}..: {lost} lost, {duplicated} duplicated{order}",
            v.ids.first().copied().unwrap_or(0)
        ));
    }
    if v.total() != sent_total {
        v.problems.push(format!(
            "the everything subscriber counted {} events, the server sent {sent_total}",
            v.total()
        ));
    }
    for (kind, n) in &sent {
        let got = v.counts.get(*kind).copied().unwrap_or(0);
        if got != *n {
            v.problems.push(format!("{kind}: {got} received, {n} sent"));
        }
    }
    let typed = [("metrics", v.metrics_seen), ("alerts", v.alerts_seen)];
    for (kind, got) in typed {
        let n = sent.get(kind).copied().unwrap_or(0);
        if got != n {
            v.problems.push(format!(
                "the {kind} subscriber got {got} values, the server sent {n}"
            ));
        }
    }
    let expected_ids = [None, Some(CUT_AFTER.to_string()), Some(TOTAL.to_string())];
    if requests != expected_ids {
        v.problems.push(format!(
            "requests carried Last-Event-ID {}, expected (none), {CUT_AFTER}, {TOTAL}",
            ids.join(", ")
        ));
    }
    match &v.connection {
        Connection::Ended => {}
        other => v
            .problems
            .push(format!("the stream did not end cleanly: {other:?}")),
    }

    if v.problems.is_empty() {
        println!(
            "result: OK, all {sent_total} events reached the everything subscriber exactly once, \
             in order, across {} connections",
            requests.len() - 1
        );
        true
    } else {
        for p in &v.problems {
            println!("result: WRONG: {p}");
        }
        false
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
