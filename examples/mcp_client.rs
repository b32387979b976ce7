//! A minimal MCP client over Streamable HTTP (protocol revision 2025-11-25),
//! built on ssekit's public API.
//!
//! It initializes a session, sends `notifications/initialized`, lists the
//! server's tools and, depending on `MCP_CONFORMANCE_SCENARIO`, calls one:
//!
//! | scenario | what it does after `tools/list` |
//! |---|---|
//! | `initialize` | nothing |
//! | `tools_call` | `tools/call` of `add_numbers` with `{"a": 2, "b": 3}` |
//! | `sse-retry` | `tools/call` of the first listed tool, no arguments |
//! | unset | `add_numbers` when the server has it |
//!
//! What it shows of `ssekit`:
//!
//! * each JSON-RPC request is `EventSource::post(url)` with
//!   `Accept: application/json, text/event-stream`; `accept_json(true)`
//!   takes a plain JSON answer as one message, so the same code reads a JSON
//!   or an SSE answer;
//! * `resume_by_get(true)`: when the server ends an SSE answer early (after
//!   a priming event with an `id:`), the stream waits the server's `retry:`
//!   and resumes with a `GET` carrying `Last-Event-ID`; the client stops
//!   reading once the response to its request has come;
//! * `reconnect_events(true)`: each reconnection, with its delay and cause,
//!   is printed on stderr;
//! * the `Mcp-Session-Id` response header, read from `Event::Open`, is sent
//!   with `MCP-Protocol-Version` on every later request.
//!
//! Notifications are answered `202 Accepted` without a body, so they are
//! sent with plain reqwest.
//!
//! Run it against a server, or as the client of the official MCP
//! conformance suite (it installs Node 22 and the suite with npm):
//!
//! ```text
//! cargo build --example mcp_client --features json
//! target/debug/examples/mcp_client http://127.0.0.1:3000/mcp
//! scripts/mcp_conformance.sh target/debug/examples/mcp_client
//! ```
//!
//! The server's URL is the last argument. Exit status: 0 on success, 1 on
//! any error (printed on stderr).

use std::error::Error;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use ssekit::{Event, EventSource, EventSourceBuilder};

/// The protocol revision this client speaks.
const PROTOCOL_VERSION: &str = "2025-11-25";
/// Revisions a server may answer `initialize` with that this client accepts.
const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// What every request accepts: a JSON answer or an SSE stream.
const ACCEPT: &str = "application/json, text/event-stream";
/// How long one request may take, resumptions included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);

type BoxError = Box<dyn Error>;

/// One MCP session with a Streamable HTTP server.
struct Session {
    url: String,
    /// For notifications, which get no stream back.
    http: reqwest::Client,
    next_id: u64,
    /// The `Mcp-Session-Id` the server gave at initialization, if any.
    session_id: Option<String>,
    /// The negotiated revision, once initialized.
    protocol_version: Option<String>,
}

impl Session {
    fn new(url: String) -> Self {
        Session {
            url,
            http: reqwest::Client::new(),
            next_id: 1,
            session_id: None,
            protocol_version: None,
        }
    }

    /// Runs the `initialize` exchange and records the session ID and the
    /// negotiated revision. Returns the server's `serverInfo`.
    async fn initialize(&mut self) -> Result<Value, BoxError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "ssekit-mcp-client", "version": env!("CARGO_PKG_VERSION") },
        });
        let result = self.request("initialize", params).await?;
        let version = result["protocolVersion"]
            .as_str()
            .ok_or("the initialize result has no protocolVersion")?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(format!("the server chose unsupported protocol revision {version}").into());
        }
        self.protocol_version = Some(version.to_owned());
        self.notify("notifications/initialized").await?;
        Ok(result["serverInfo"].clone())
    }

    /// Sends a JSON-RPC request and returns its `result`; a JSON-RPC error
    /// becomes an `Err`.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, BoxError> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let stream = self
            .session_headers(EventSource::post(&self.url))
            .header("accept", ACCEPT)
            .json(&message)
            .accept_json(true)
            .resume_by_get(true)
            .reconnect_events(true)
            .build()?;
        let response = tokio::time::timeout(REQUEST_DEADLINE, self.read_response(stream, id))
            .await
            .map_err(|_| format!("{method}: no response within {REQUEST_DEADLINE:?}"))??;
        if let Some(error) = response.get("error") {
            return Err(format!("{method} failed: {error}").into());
        }
        response
            .get("result")
            .cloned()
            .ok_or_else(|| format!("{method}: the response has neither result nor error").into())
    }

    /// Reads a request's answer (JSON or SSE, resumed by GET if the server
    /// ends it early) until the JSON-RPC response with `id`, then drops the
    /// stream: the server may keep it open, or end it for the client to
    /// poll again.
    async fn read_response(&mut self, mut stream: EventSource, id: u64) -> Result<Value, BoxError> {
        let mut first_open = true;
        while let Some(event) = stream.next().await {
            match event? {
                Event::Open(open) if first_open => {
                    first_open = false;
                    if self.protocol_version.is_none() {
                        // The answer to `initialize` assigns the session.
                        self.session_id = header_str(open.headers(), "mcp-session-id");
                    }
                }
                Event::Message(m) if !m.data().is_empty() => {
                    let message: Value = serde_json::from_str(m.data())
                        .map_err(|e| format!("invalid JSON-RPC message {:?}: {e}", m.data()))?;
                    if message["id"] == json!(id) && message.get("method").is_none() {
                        return Ok(message);
                    }
                    // A notification or a request from the server, which
                    // this minimal client does not handle.
                    eprintln!("ignored server message: {message}");
                }
                Event::Reconnecting(r) => eprintln!(
                    "request {id}: reconnecting in {:?} (attempt {}): {}",
                    r.delay(),
                    r.attempt(),
                    describe(r.cause())
                ),
                _ => {}
            }
        }
        Err(format!("the answer to request {id} ended without its response").into())
    }

    /// Sends a JSON-RPC notification; the server answers with no stream.
    async fn notify(&self, method: &str) -> Result<(), BoxError> {
        let message = json!({ "jsonrpc": "2.0", "method": method });
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", ACCEPT)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&message)?);
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        if let Some(version) = &self.protocol_version {
            request = request.header("mcp-protocol-version", version);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{method}: the server answered {status}: {body}").into());
        }
        Ok(())
    }

    /// Adds `Mcp-Session-Id` and `MCP-Protocol-Version` once known.
    fn session_headers(&self, mut builder: EventSourceBuilder) -> EventSourceBuilder {
        if let Some(id) = &self.session_id {
            builder = builder.header("mcp-session-id", id.as_str());
        }
        if let Some(version) = &self.protocol_version {
            builder = builder.header("mcp-protocol-version", version.as_str());
        }
        builder
    }
}

/// A header's value as text, if present and printable.
fn header_str(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

/// An error with its causes: `request failed: ... Connection refused`.
fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The tool to call after `tools/list` and its arguments, for a scenario of
/// the conformance suite (or none: `add_numbers` when listed).
fn choose_call(scenario: &str, tools: &[Value]) -> Result<Option<(String, Value)>, BoxError> {
    let has = |name: &str| tools.iter().any(|t| t["name"] == name);
    let add_numbers = || ("add_numbers".to_owned(), json!({ "a": 2, "b": 3 }));
    match scenario {
        "initialize" => Ok(None),
        "tools_call" if has("add_numbers") => Ok(Some(add_numbers())),
        "tools_call" => Err("the server does not list the tool add_numbers".into()),
        "sse-retry" => {
            let name = tools
                .first()
                .and_then(|t| t["name"].as_str())
                .ok_or("the server lists no tool")?;
            Ok(Some((name.to_owned(), json!({}))))
        }
        _ if has("add_numbers") => Ok(Some(add_numbers())),
        _ => Ok(None),
    }
}

/// The text parts of a `tools/call` result, joined.
fn result_text(result: &Value) -> String {
    let parts = result["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    parts
        .iter()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let url = std::env::args()
        .skip(1)
        .last()
        .ok_or("usage: mcp_client <server URL>")?;
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let mut session = Session::new(url);

    let server = session.initialize().await?;
    println!(
        "initialized: server {} {}, protocol {}, session {}",
        server["name"].as_str().unwrap_or("?"),
        server["version"].as_str().unwrap_or("?"),
        session.protocol_version.as_deref().unwrap_or("?"),
        session.session_id.as_deref().unwrap_or("(none)"),
    );

    let listed = session.request("tools/list", json!({})).await?;
    let tools = listed["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    println!("tools: {names:?}");

    if let Some((name, arguments)) = choose_call(&scenario, &tools)? {
        let params = json!({ "name": name, "arguments": arguments });
        let result = session.request("tools/call", params).await?;
        if result["isError"] == json!(true) {
            return Err(format!("tool {name} reported an error: {}", result_text(&result)).into());
        }
        println!("{name}({arguments}): {}", result_text(&result));
    }
    Ok(())
}
