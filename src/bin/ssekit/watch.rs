//! The default command, `ssekit URL`: print a stream's events as they
//! arrive, reconnecting like the library, and exit with a status scripts
//! can assert on.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use serde_json::json;
use ssekit::{ClientPool, Event, EventSource, RetryPolicy};

use crate::client::{Request, RequestArgs};
use crate::printer::Printer;
use crate::values::{parse_count, parse_secs, parse_size};

/// The default command: print a URL's events.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The URL of the event stream
    #[arg(required = true)]
    pub url: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Start from this last event ID
    #[arg(long, value_name = "ID")]
    pub last_event_id: Option<String>,
    /// Exit 0 after N events
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_events: Option<u64>,
    /// Exit 0 when an event's data is exactly TEXT (that event is not
    /// printed); a stream that ends for good before it exits 1
    #[arg(long, value_name = "TEXT")]
    pub until_data: Option<String>,
    /// Give up (exit 3) after SECS in all
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Reconnect when nothing arrives for SECS (default 300)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub idle_timeout: Option<Duration>,
    /// Reconnection attempts in a row without progress before giving up
    /// (default: unlimited)
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Give up on a response head after SECS, retrying with backoff (for
    /// a server that accepts the connection and never answers; default
    /// 300, long enough for a buffering proxy)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub response_timeout: Option<Duration>,
    /// End the stream with exit 1 when an event of this type arrives
    /// (repeatable): `error`, as Anthropic, hono and OpenAI-compatible
    /// servers send after a 200; the event is printed as the error
    #[arg(long, value_name = "TYPE")]
    pub error_event: Vec<String>,
    /// Resume the answer to a request that is not a GET by GET, as MCP
    /// Streamable HTTP does: once it delivered an event id, reconnections
    /// are a GET with Last-Event-ID and no body (never the request again)
    #[arg(long)]
    pub resume_by_get: bool,
    /// The delay before the first reconnection, until the server sends
    /// retry: (default 1)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub retry_delay: Option<Duration>,
    /// The largest accepted event; a larger one ends the stream with exit 1
    /// (default 16777216, 16 MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_size::<usize>)]
    pub max_event_size: Option<usize>,
    /// Print comment lines too
    #[arg(long)]
    pub comments: bool,
    /// One JSON object per line on stdout, each with a "time" (RFC 3339,
    /// UTC, milliseconds)
    #[arg(long)]
    pub json: bool,
    /// Print the status and response headers of each connection that opens
    #[arg(short = 'i', long)]
    pub include: bool,
}

fn build(a: &WatchArgs, req: &Request) -> Result<EventSource, ssekit::Error> {
    let factory = req.factory.clone();
    let mut b = EventSource::builder(a.url.as_deref().unwrap_or_default())
        .client_pool(ClientPool::new(move || factory()).system_proxies(req.environment_proxies))
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

pub async fn run(a: WatchArgs, mut printer: Printer) -> ExitCode {
    let req = match Request::from_args(&a.request) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    printer.proxy = req.proxy.clone();
    let p = &printer;
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
