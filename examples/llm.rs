//! Streaming a chat completion from an LLM API, token by token.
//!
//! The example sends one prompt to an OpenAI-style `chat/completions`
//! endpoint or an Anthropic-style `messages` endpoint with `"stream": true`,
//! prints the answer as it arrives (stdout is flushed after every piece),
//! rebuilds any tool call from its argument fragments, and ends with a
//! summary: how many content deltas came, the tool calls with their full
//! arguments, the token usage the API reported, the finish (stop) reason,
//! and whether the answer was complete or truncated.
//!
//! What it shows of `ssekit`:
//!
//! * `EventSource::post(url).json(&body)` with `bearer_auth` (OpenAI) or
//!   `x-api-key` and `anthropic-version` headers (Anthropic);
//! * end markers: `end_on_data("[DONE]")` for OpenAI, and
//!   `end_on_event("message_stop")` plus `end_on_event("error")` for
//!   Anthropic. The client closes the connection itself when the marker comes,
//!   even though the server keeps the socket open, and a stream that stops
//!   before its marker is reported as truncated (`Error::is_truncated`);
//! * typed events with `es.json::<T>()` (feature `json`);
//! * error responses: `Error::status` and `Error::body` give the API's own
//!   JSON error message; a 429 is retried twice before giving up;
//! * an Anthropic `event: error` after a `200 OK` (for instance
//!   `overloaded_error`), reported with whether any content came before it.
//!
//! Without `--base-url` the example starts an embedded mock API on
//! `127.0.0.1` (an ephemeral port; no other network is used) that checks the
//! request (method, path, credentials, `"stream": true`) and streams a canned
//! answer with a tool call, with small delays so the streaming is visible.
//! After the end marker the mock keeps the connection open, and reports when
//! the client closed it. In that mode the example also checks that what it
//! rebuilt equals what the mock sent, and exits with status 1 otherwise.
//!
//! ```text
//! cargo run --example llm --features json
//! cargo run --example llm --features json -- --provider anthropic
//! cargo run --example llm --features json -- --mock-error                       # 429
//! cargo run --example llm --features json -- --provider anthropic --mock-error  # event: error
//!
//! # A real API (the key comes from OPENAI_API_KEY or ANTHROPIC_API_KEY):
//! cargo run --example llm --features json -- --base-url https://api.openai.com/v1
//! cargo run --example llm --features json -- --provider anthropic \
//!     --base-url https://api.anthropic.com/v1 --prompt "Say hello in French"
//! ```
//!
//! Options: `--provider openai|anthropic` (default `openai`), `--base-url URL`,
//! `--model NAME` (default `gpt-4o-mini` or `claude-sonnet-4-5`),
//! `--prompt TEXT`, `--max-tokens N` (Anthropic; default 1024),
//! `--mock-error`. Exit status: 0 for a complete answer, 1 for an error or an
//! incomplete answer, 2 for bad usage.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use ssekit::{EventSource, RetryPolicy, TypedError};
use tokio::sync::Notify;

/// How long the whole exchange with the embedded mock may take.
const MOCK_DEADLINE: Duration = Duration::from_secs(15);
/// How long to wait, after the answer, for the mock to see the connection
/// closed.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The key sent to the embedded mock (a real key never goes there).
const MOCK_KEY: &str = "mock-key-not-secret";
/// The prompt used when none is given.
const DEFAULT_PROMPT: &str = "Why is the sky blue, and is it blue over Lisbon right now?";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("llm: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("llm: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("llm: {}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const USAGE: &str = "\
usage: llm [--provider openai|anthropic] [--base-url URL] [--model NAME]
           [--prompt TEXT] [--max-tokens N] [--mock-error]

Without --base-url an embedded mock API answers. With it, the key comes from
OPENAI_API_KEY or ANTHROPIC_API_KEY (for example --base-url https://api.openai.com/v1
or --base-url https://api.anthropic.com/v1).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    fn default_model(self) -> &'static str {
        match self {
            Provider::OpenAi => "gpt-4o-mini",
            Provider::Anthropic => "claude-sonnet-4-5",
        }
    }

    fn key_variable(self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
        }
    }

    /// The endpoint, relative to the base URL.
    fn path(self) -> &'static str {
        match self {
            Provider::OpenAi => "/chat/completions",
            Provider::Anthropic => "/messages",
        }
    }

    /// What ends a complete answer, as printed in the summary.
    fn end_marker(self) -> &'static str {
        match self {
            Provider::OpenAi => "data: [DONE]",
            Provider::Anthropic => "event: message_stop",
        }
    }
}

#[derive(Debug)]
struct Args {
    provider: Provider,
    base_url: Option<String>,
    model: Option<String>,
    prompt: String,
    max_tokens: u32,
    mock_error: bool,
}

impl Args {
    /// `Ok(None)` for `--help`.
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut args = Args {
            provider: Provider::OpenAi,
            base_url: None,
            model: None,
            prompt: DEFAULT_PROMPT.to_owned(),
            max_tokens: 1024,
            mock_error: false,
        };
        while let Some(arg) = argv.next() {
            // Both `--flag value` and `--flag=value`.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg, None),
            };
            let mut value = |flag: &str| {
                inline
                    .clone()
                    .or_else(|| argv.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--provider" => {
                    args.provider = match value("--provider")?.as_str() {
                        "openai" => Provider::OpenAi,
                        "anthropic" => Provider::Anthropic,
                        other => {
                            return Err(format!(
                                "unknown provider {other:?} (expected openai or anthropic)"
                            ))
                        }
                    }
                }
                "--base-url" => {
                    args.base_url = Some(value("--base-url")?.trim_end_matches('/').to_owned())
                }
                "--model" => args.model = Some(value("--model")?),
                "--prompt" => args.prompt = value("--prompt")?,
                "--max-tokens" => {
                    let v = value("--max-tokens")?;
                    args.max_tokens = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--max-tokens wants a positive number, not {v:?}")
                    })?;
                }
                "--mock-error" if inline.is_none() => args.mock_error = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if args.mock_error && args.base_url.is_some() {
            return Err("--mock-error only applies to the embedded mock (no --base-url)".into());
        }
        Ok(Some(args))
    }
}

// ---------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------

/// The one tool offered to the model, so that a tool call can be shown.
fn weather_tool_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City and country code, e.g. Oslo, NO"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["location"]
    })
}

const TOOL_NAME: &str = "get_current_weather";
const TOOL_DESCRIPTION: &str = "Current weather conditions at a location.";

fn request_body(args: &Args, model: &str) -> Value {
    let messages = json!([{"role": "user", "content": args.prompt}]);
    match args.provider {
        Provider::OpenAi => json!({
            "model": model,
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": messages,
            "tools": [{
                "type": "function",
                "function": {
                    "name": TOOL_NAME,
                    "description": TOOL_DESCRIPTION,
                    "parameters": weather_tool_schema()
                }
            }]
        }),
        Provider::Anthropic => json!({
            "model": model,
            "max_tokens": args.max_tokens,
            "stream": true,
            "messages": messages,
            "tools": [{
                "name": TOOL_NAME,
                "description": TOOL_DESCRIPTION,
                "input_schema": weather_tool_schema()
            }]
        }),
    }
}

// ---------------------------------------------------------------------------
// Wire types: only the fields this example reads (serde ignores the rest)
// ---------------------------------------------------------------------------

/// One `data:` line of an OpenAI chat completion stream.
#[derive(Debug, Deserialize)]
struct ChatChunk {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    /// Only in the last chunk (with `include_usage`); `null` before it.
    usage: Option<OpenAiUsage>,
    /// Some OpenAI-compatible servers report a failure inside the stream.
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: ChunkDelta,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkDelta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    index: usize,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// The error object of both APIs: `{"type": ..., "message": ...}` (OpenAI
/// adds `code`).
#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<Value>,
    message: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match &self.code {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let label = code.or_else(|| self.kind.clone());
        match (label, &self.message) {
            (Some(l), Some(m)) => write!(f, "{l}: {m}"),
            (Some(l), None) => f.write_str(&l),
            (None, Some(m)) => f.write_str(m),
            (None, None) => f.write_str("(no message)"),
        }
    }
}

/// One event of an Anthropic messages stream: the `type` in its data equals
/// its `event:` name.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AnthropicEvent {
    MessageStart {
        message: AnthropicMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<AnthropicUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ApiError,
    },
    /// Event types added to the API later are ignored, as Anthropic asks.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
struct AnthropicMessage {
    model: Option<String>,
    usage: Option<AnthropicUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

/// Anthropic's counts: `message_start` has the input tokens, `message_delta`
/// the (cumulative) output tokens.
#[derive(Debug, Deserialize)]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

// ---------------------------------------------------------------------------
// The answer, rebuilt
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone, PartialEq)]
struct ToolCall {
    id: String,
    name: String,
    /// The argument fragments, concatenated: a JSON document once complete.
    arguments: String,
}

/// What the client made of the stream.
#[derive(Debug, Default)]
struct Answer {
    text: String,
    /// Content deltas received: roughly one per token.
    deltas: usize,
    /// By the index the API gives them (OpenAI's `tool_calls[].index`,
    /// Anthropic's content block index).
    tool_calls: BTreeMap<usize, ToolCall>,
    usage: Option<String>,
    finish_reason: Option<String>,
    model: Option<String>,
    /// An error the server reported inside a `200 OK` stream.
    stream_error: Option<String>,
    /// Events whose data was not the JSON expected.
    bad_events: Vec<String>,
}

/// Prints the answer as it arrives: text, and tool calls on lines of their
/// own.
struct Printer {
    /// The tool call being printed, if any.
    tool: Option<usize>,
    at_line_start: bool,
}

impl Printer {
    fn new() -> Self {
        Printer {
            tool: None,
            at_line_start: true,
        }
    }

    fn text(&mut self, piece: &str) {
        if self.tool.take().is_some() {
            out("\n");
        }
        out(piece);
        self.at_line_start = piece.ends_with('\n');
    }

    fn tool_start(&mut self, index: usize, name: &str) {
        if !self.at_line_start {
            out("\n");
        }
        out(&format!("[tool call {index}] {name} "));
        self.tool = Some(index);
        self.at_line_start = false;
    }

    fn tool_arguments(&mut self, index: usize, piece: &str, name: &str) {
        if self.tool != Some(index) {
            self.tool_start(index, name);
        }
        out(piece);
    }

    fn end_line(&mut self) {
        if !self.at_line_start {
            out("\n");
            self.at_line_start = true;
        }
        self.tool = None;
    }
}

/// Writes to stdout at once: tokens must show as they arrive.
fn out(s: &str) {
    let mut stdout = io::stdout().lock();
    // A closed stdout (`| head`) is not worth a panic in an example.
    let _ = stdout.write_all(s.as_bytes()).and_then(|()| stdout.flush());
}

impl Answer {
    fn openai_chunk(&mut self, chunk: ChatChunk, printer: &mut Printer) {
        if self.model.is_none() {
            self.model = chunk.model;
        }
        if let Some(err) = chunk.error {
            self.stream_error = Some(err.to_string());
        }
        for choice in chunk.choices {
            let delta = choice.delta;
            for piece in [delta.content, delta.refusal].into_iter().flatten() {
                if !piece.is_empty() {
                    self.deltas += 1;
                    self.text.push_str(&piece);
                    printer.text(&piece);
                }
            }
            for call in delta.tool_calls.into_iter().flatten() {
                let entry = self.tool_calls.entry(call.index).or_default();
                if let Some(id) = call.id {
                    entry.id = id;
                }
                let Some(function) = call.function else {
                    continue;
                };
                if let Some(name) = function.name {
                    entry.name.push_str(&name);
                    printer.tool_start(call.index, &entry.name);
                }
                if let Some(args) = function.arguments {
                    entry.arguments.push_str(&args);
                    printer.tool_arguments(call.index, &args, &entry.name);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(format!(
                "{} prompt + {} completion = {} tokens",
                u.prompt_tokens, u.completion_tokens, u.total_tokens
            ));
        }
    }

    fn anthropic_event(&mut self, event: AnthropicEvent, printer: &mut Printer, input: &mut u64) {
        match event {
            AnthropicEvent::MessageStart { message } => {
                self.model = message.model;
                if let Some(u) = message.usage {
                    *input = u.input_tokens.unwrap_or(0);
                }
            }
            AnthropicEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                ContentBlock::Text { text } if !text.is_empty() => {
                    self.deltas += 1;
                    self.text.push_str(&text);
                    printer.text(&text);
                }
                ContentBlock::ToolUse { id, name } => {
                    printer.tool_start(index, &name);
                    self.tool_calls.insert(
                        index,
                        ToolCall {
                            id,
                            name,
                            arguments: String::new(),
                        },
                    );
                }
                _ => {}
            },
            AnthropicEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => {
                    self.deltas += 1;
                    self.text.push_str(&text);
                    printer.text(&text);
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    let call = self.tool_calls.entry(index).or_default();
                    call.arguments.push_str(&partial_json);
                    printer.tool_arguments(index, &partial_json, &call.name);
                }
                BlockDelta::Other => {}
            },
            AnthropicEvent::ContentBlockStop { index } => {
                if printer.tool == Some(index) {
                    printer.end_line();
                }
            }
            AnthropicEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish_reason = Some(reason);
                }
                if let Some(output) = usage.and_then(|u| u.output_tokens) {
                    self.usage = Some(format!(
                        "{input} input + {output} output = {} tokens",
                        *input + output
                    ));
                }
            }
            AnthropicEvent::Error { error } => self.stream_error = Some(error.to_string()),
            // `message_stop` ends the stream (it is an end marker); `ping`
            // only keeps the connection busy.
            AnthropicEvent::MessageStop | AnthropicEvent::Ping | AnthropicEvent::Unknown => {}
        }
    }

    /// The tool calls as `name {arguments}`, or why the arguments are not
    /// JSON.
    fn tool_call_lines(&self) -> Vec<String> {
        self.tool_calls
            .values()
            .map(|call| {
                // Anthropic sends no fragment at all for a tool without input.
                let raw = if call.arguments.is_empty() {
                    "{}"
                } else {
                    &call.arguments
                };
                match serde_json::from_str::<Value>(raw) {
                    Ok(args) => format!("{} {args} (id {})", call.name, call.id),
                    Err(e) => format!(
                        "{} with arguments that are not JSON ({e}): {raw:?}",
                        call.name
                    ),
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// How the stream ended.
enum Ending {
    /// The end marker came (`[DONE]`, `message_stop` or `error`).
    Marker,
    /// The server closed the stream before the marker.
    Truncated(ssekit::Error),
    /// The request failed (error status, network, retries exhausted).
    Failed(ssekit::Error),
    /// An error of a kind added to `TypedError` after this example.
    Other(String),
    /// The mock took longer than `MOCK_DEADLINE`.
    Stalled,
}

async fn run(args: Args) -> Result<bool, Box<dyn StdError>> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| args.provider.default_model().to_owned());

    // The mock, unless a real API was named.
    let mock = match &args.base_url {
        Some(_) => None,
        None => Some(Mock::start(args.provider, args.mock_error).await?),
    };
    let (base, key, client) = match (&args.base_url, &mock) {
        (Some(base), _) => {
            let var = args.provider.key_variable();
            let key = std::env::var(var)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| format!("{var} is not set (needed with --base-url)"))?;
            (base.clone(), key, reqwest::Client::new())
        }
        (None, Some(mock)) => (
            mock.base_url.clone(),
            MOCK_KEY.to_owned(),
            // Loopback only: ignore any HTTP(S)_PROXY in the environment.
            reqwest::Client::builder().no_proxy().build()?,
        ),
        (None, None) => unreachable!("a mock is started without --base-url"),
    };
    let url = format!("{base}{}", args.provider.path());

    println!(
        "ssekit llm example: {} {model}, {}",
        args.provider.name(),
        match &mock {
            Some(_) if args.mock_error => "embedded mock API (told to fail)".to_owned(),
            Some(_) => "embedded mock API".to_owned(),
            None => format!("API at {base}"),
        }
    );
    println!("POST {url}");
    println!("prompt: {}", args.prompt);
    println!();

    // Counts the HTTP requests, to show the retries of a 429.
    let requests = Arc::new(AtomicU32::new(0));
    let counter = requests.clone();
    let builder = EventSource::post(&url)
        .client(client)
        .json(&request_body(&args, &model))
        .on_request(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        // A 429 or 5xx before the first event is retried, twice at most;
        // once tokens have arrived a POST is never re-sent (it would
        // duplicate the answer and its cost).
        .retry_policy(
            RetryPolicy::default()
                .initial_delay(Duration::from_millis(300))
                .max_attempts(2),
        )
        .idle_timeout(Some(Duration::from_secs(90)));
    let builder = match args.provider {
        Provider::OpenAi => builder.bearer_auth(&key).end_on_data("[DONE]"),
        Provider::Anthropic => builder
            .header("x-api-key", key.as_str())
            .header("anthropic-version", "2023-06-01")
            .end_on_event("message_stop")
            // After an `error` event nothing else comes; stop reading.
            .end_on_event("error"),
    };
    let es = builder.build()?;

    let started = Instant::now();
    let mut answer = Answer::default();
    let mut printer = Printer::new();
    let read = async {
        match args.provider {
            Provider::OpenAi => {
                let mut chunks = es.json::<ChatChunk>();
                while let Some(item) = chunks.next().await {
                    match item {
                        Ok(chunk) => answer.openai_chunk(chunk, &mut printer),
                        Err(TypedError::Json(e)) => answer.bad_events.push(e.to_string()),
                        Err(TypedError::Stream(e)) => return ending(e),
                        Err(e) => return Ending::Other(e.to_string()),
                    }
                }
                // `None` without an error: the end marker came.
                debug_assert!(chunks.get_mut().is_finished());
                Ending::Marker
            }
            Provider::Anthropic => {
                let mut events = es.json::<AnthropicEvent>();
                let mut input_tokens = 0;
                while let Some(item) = events.next().await {
                    match item {
                        Ok(event) => answer.anthropic_event(event, &mut printer, &mut input_tokens),
                        Err(TypedError::Json(e)) => answer.bad_events.push(e.to_string()),
                        Err(TypedError::Stream(e)) => return ending(e),
                        Err(e) => return Ending::Other(e.to_string()),
                    }
                }
                Ending::Marker
            }
        }
    };
    let ending = match &mock {
        Some(_) => tokio::time::timeout(MOCK_DEADLINE, read)
            .await
            .unwrap_or(Ending::Stalled),
        None => read.await,
    };
    let elapsed = started.elapsed();
    printer.end_line();

    let ok = report(
        &args,
        &answer,
        &ending,
        requests.load(Ordering::Relaxed),
        elapsed,
    );
    let ok = match &mock {
        Some(mock) => check_against_mock(mock, &answer, &ending).await && ok,
        None => ok,
    };
    Ok(ok)
}

fn ending(e: ssekit::Error) -> Ending {
    if e.is_truncated() {
        Ending::Truncated(e)
    } else {
        Ending::Failed(e)
    }
}

/// Prints the summary; true when the answer is complete and clean.
fn report(args: &Args, answer: &Answer, ending: &Ending, requests: u32, elapsed: Duration) -> bool {
    println!();
    println!("summary");
    if let Some(model) = &answer.model {
        println!("  model:          {model}");
    }
    println!(
        "  content deltas: {} ({} characters)",
        answer.deltas,
        answer.text.chars().count()
    );
    let calls = answer.tool_call_lines();
    if calls.is_empty() {
        println!("  tool calls:     none");
    }
    for (i, line) in calls.iter().enumerate() {
        let label = if i == 0 { "tool calls:" } else { "" };
        println!("  {label:<15} {line}");
    }
    println!(
        "  usage:          {}",
        answer.usage.as_deref().unwrap_or("not reported")
    );
    println!(
        "  finish reason:  {}",
        answer.finish_reason.as_deref().unwrap_or("none")
    );
    let retries = requests.saturating_sub(1);
    println!(
        "  requests:       {requests}{} in {} ms",
        match retries {
            0 => String::new(),
            n => format!(" ({n} retried)"),
        },
        elapsed.as_millis()
    );
    for bad in &answer.bad_events {
        println!("  undecodable:    {bad}");
    }

    let marker = args.provider.end_marker();
    let ok = match (ending, &answer.stream_error) {
        (Ending::Marker, None) => {
            println!(
                "  answer:         complete ({marker} received; the client closed the connection)"
            );
            true
        }
        (Ending::Marker, Some(error)) => {
            let when = if answer.deltas == 0 && answer.tool_calls.is_empty() {
                "before any content".to_owned()
            } else {
                format!(
                    "after {} content deltas: the text above is only the start of the answer",
                    answer.deltas
                )
            };
            println!("  answer:         FAILED with an error event inside the 200 stream, {when}");
            println!("  error:          {error}");
            false
        }
        (Ending::Truncated(e), _) => {
            println!("  answer:         TRUNCATED: the stream ended before {marker}");
            println!("  cause:          {}", chain(e));
            false
        }
        (Ending::Failed(e), _) => {
            println!("  answer:         none, the request failed");
            match e.status() {
                Some(status) => {
                    let after = match e.attempts() {
                        Some(n) if n > 0 => format!(" (gave up after {n} retries)"),
                        _ => String::new(),
                    };
                    println!("  status:         {status}{after}");
                    let body = e.body().unwrap_or("");
                    if let Some(api) = api_error(body) {
                        println!("  API error:      {api}");
                    }
                    println!("  body:           {}", excerpt(body, 300));
                }
                None => println!("  error:          {}", chain(e)),
            }
            false
        }
        (Ending::Other(e), _) => {
            println!("  answer:         FAILED: {e}");
            false
        }
        (Ending::Stalled, _) => {
            println!("  answer:         STALLED: no end within {MOCK_DEADLINE:?}");
            false
        }
    };
    ok && answer.bad_events.is_empty()
}

/// The API error object in an error body (`{"error": {...}}` in both APIs).
fn api_error(body: &str) -> Option<ApiError> {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    serde_json::from_str::<Envelope>(body).ok().map(|e| e.error)
}

/// The start of `text` on one line, at most `max` characters.
fn excerpt(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if line.is_empty() => "(empty)".to_owned(),
        None => line,
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

/// In mock mode: what the client rebuilt must be what the mock sent, and the
/// mock must have seen the client close a connection it kept open.
async fn check_against_mock(mock: &Mock, answer: &Answer, ending: &Ending) -> bool {
    let mut problems = Vec::new();
    let sent_error = mock.mock_error;
    let expect_failure = mock.provider == Provider::OpenAi && sent_error;
    if !expect_failure && !matches!(ending, Ending::Marker) {
        // The summary already says what went wrong; nothing to compare.
        return false;
    }
    match (mock.provider, sent_error) {
        // The 429 never opens a stream: nothing to compare.
        (Provider::OpenAi, true) => {
            let status = match ending {
                Ending::Failed(e) => e.status(),
                _ => None,
            };
            if status != Some(StatusCode::TOO_MANY_REQUESTS) {
                problems.push("expected the request to fail with 429".to_owned());
            }
            let seen = mock.requests.lock().unwrap().len();
            if seen != 3 {
                problems.push(format!(
                    "the mock saw {seen} requests, expected 3 (2 retries)"
                ));
            }
        }
        (Provider::Anthropic, true) => {
            let cut = canned_pieces().len() / 2;
            let expected: String = canned_pieces()[..cut].concat();
            if answer.text != expected {
                problems.push(format!(
                    "text before the error differs from what the mock sent: {:?}",
                    answer.text
                ));
            }
            if answer.stream_error.as_deref() != Some("overloaded_error: Overloaded") {
                problems.push(format!(
                    "expected the overloaded_error event, got {:?}",
                    answer.stream_error
                ));
            }
        }
        (provider, false) => {
            let text: String = canned_pieces().concat();
            if answer.text != text {
                problems.push(format!(
                    "text differs from what the mock sent: {:?}",
                    answer.text
                ));
            }
            let call = answer.tool_calls.values().next();
            let args = call.and_then(|c| serde_json::from_str::<Value>(&c.arguments).ok());
            if call.map(|c| c.name.as_str()) != Some(TOOL_NAME)
                || args != Some(canned_tool_arguments())
            {
                problems.push(format!("tool call differs from the mock's: {call:?}"));
            }
            let reason = match provider {
                Provider::OpenAi => "tool_calls",
                Provider::Anthropic => "tool_use",
            };
            if answer.finish_reason.as_deref() != Some(reason) || answer.usage.is_none() {
                problems.push("finish reason or usage missing".to_owned());
            }
        }
    }
    // The mock holds every stream open after its last event; it must see the
    // client hang up on its own.
    if !expect_failure {
        match mock.wait_closed(CLOSE_WAIT).await {
            Some(after) => println!(
                "[mock] the client closed the connection {} ms after the mock's last event \
                 (the mock had kept it open)",
                after.as_millis()
            ),
            None => problems.push(format!(
                "the mock did not see the connection closed within {CLOSE_WAIT:?}"
            )),
        }
    }
    for p in &problems {
        println!("check against the mock: WRONG: {p}");
    }
    problems.is_empty()
}

// ---------------------------------------------------------------------------
// The embedded mock API
// ---------------------------------------------------------------------------

/// The canned answer, in the pieces the mock streams (about one token each).
fn canned_pieces() -> Vec<&'static str> {
    const TEXT: &str = "Sunlight holds every colour, but on its way through the air the \
        short blue wavelengths bounce off nitrogen and oxygen molecules far more than the \
        long red ones: Ray|leigh scattering, which grows as the inverse fourth power of the \
        wavelength. That scattered blue reaches you from every part of the sky, so the sky \
        looks blue; near sunset the light crosses so much air that the blue is scattered \
        away and reds remain.\n\nWhether Lisbon's sky is blue right now depends on the \
        clouds, so let me check the current weather there.";
    // Split before each space (a space starts the next token) and at `|`.
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in TEXT.char_indices() {
        if (c == ' ' || c == '|') && i > start {
            pieces.push(&TEXT[start..i]);
            start = if c == '|' { i + 1 } else { i };
        }
    }
    pieces.push(&TEXT[start..]);
    pieces
}

/// The tool call's arguments, in the fragments the mock sends.
const TOOL_ARGUMENT_PIECES: [&str; 5] = [
    "{\"location\"",
    ": \"Lis",
    "bon, PT\", ",
    "\"unit\": \"cel",
    "sius\"}",
];

fn canned_tool_arguments() -> Value {
    serde_json::from_str(&TOOL_ARGUMENT_PIECES.concat()).expect("valid JSON")
}

/// The mock's pause before each piece: 20 to 40 ms, varied.
fn pace(i: usize) -> Duration {
    Duration::from_millis(20 + (i as u64 * 7) % 21)
}

struct Mock {
    provider: Provider,
    mock_error: bool,
    base_url: String,
    /// One line per request, for the check of the retries.
    requests: Mutex<Vec<String>>,
    /// How long after its last event the mock saw the connection closed.
    closed_after: Mutex<Option<Duration>>,
    closed: Notify,
}

impl Mock {
    async fn start(provider: Provider, mock_error: bool) -> io::Result<Arc<Mock>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mock = Arc::new(Mock {
            provider,
            mock_error,
            base_url: format!("http://{}/v1", listener.local_addr()?),
            requests: Mutex::new(Vec::new()),
            closed_after: Mutex::new(None),
            closed: Notify::new(),
        });
        let app = Router::new().fallback(mock_api).with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(mock)
    }

    async fn wait_closed(&self, limit: Duration) -> Option<Duration> {
        let _ = tokio::time::timeout(limit, self.closed.notified()).await;
        *self.closed_after.lock().unwrap()
    }

    /// An error response in the provider's format.
    fn error(&self, status: StatusCode, kind: &str, message: &str) -> Response {
        println!("[mock] answering {status}: {message}");
        let body = match self.provider {
            Provider::OpenAi => {
                let code =
                    (status == StatusCode::TOO_MANY_REQUESTS).then_some("rate_limit_exceeded");
                json!({
                    "error": {"message": message, "type": kind, "param": null, "code": code}
                })
            }
            Provider::Anthropic => json!({
                "type": "error",
                "error": {"type": kind, "message": message}
            }),
        };
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// Every request: checked like the real API would, then answered.
async fn mock_api(
    State(mock): State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut requests = mock.requests.lock().unwrap();
        requests.push(format!("{method} {uri}"));
        requests.len()
    };
    println!("[mock] request {n}: {method} {}", uri.path());
    let expected = format!("/v1{}", mock.provider.path());
    if uri.path() != expected {
        return mock.error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("no route {}; the mock serves {expected}", uri.path()),
        );
    }
    if method != Method::POST {
        return mock.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            &format!("{expected} wants POST, not {method}"),
        );
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let authorized = match mock.provider {
        Provider::OpenAi => header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| !key.trim().is_empty()),
        Provider::Anthropic => header("x-api-key").is_some(),
    };
    if !authorized {
        let (kind, what) = match mock.provider {
            Provider::OpenAi => ("invalid_request_error", "an Authorization: Bearer header"),
            Provider::Anthropic => ("authentication_error", "an x-api-key header"),
        };
        return mock.error(
            StatusCode::UNAUTHORIZED,
            kind,
            &format!("no API key: send {what}"),
        );
    }
    if mock.provider == Provider::Anthropic && header("anthropic-version").is_none() {
        return mock.error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return mock.error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("the body is not JSON: {e}"),
            )
        }
    };
    if request["stream"] != Value::Bool(true) {
        return mock.error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "this mock only streams: send \"stream\": true",
        );
    }
    if request["messages"].as_array().is_none_or(Vec::is_empty) {
        return mock.error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: at least one message is required",
        );
    }
    if mock.provider == Provider::Anthropic && !request["max_tokens"].is_u64() {
        return mock.error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: field required",
        );
    }
    if mock.mock_error && mock.provider == Provider::OpenAi {
        return mock.error(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "Too many requests: the mock was started with --mock-error and turns every \
             request away. Retry later.",
        );
    }
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let prompt_tokens = 64 + body.len() as u64 / 16;
    let frames = match mock.provider {
        Provider::OpenAi => openai_frames(&model, prompt_tokens),
        Provider::Anthropic => anthropic_frames(&model, prompt_tokens, mock.mock_error),
    };
    println!(
        "[mock] 200 text/event-stream: {} events, then the connection is held open",
        frames.len()
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(paced(frames, mock.clone())),
    )
        .into_response()
}

/// The frames, one after another with a small pause each, then nothing for
/// ever: the connection stays open until the client closes it.
fn paced(
    frames: Vec<String>,
    mock: Arc<Mock>,
) -> impl futures::Stream<Item = Result<Bytes, io::Error>> {
    futures::stream::unfold(
        (frames.into_iter().enumerate(), mock),
        |(mut frames, mock)| async move {
            match frames.next() {
                Some((i, frame)) => {
                    tokio::time::sleep(pace(i)).await;
                    Some((Ok(Bytes::from(frame)), (frames, mock)))
                }
                None => {
                    // Dropped (and so reporting) when hyper drops the body,
                    // which it does when the client closes the connection.
                    let _watch = CloseWatch {
                        since: Instant::now(),
                        mock,
                    };
                    std::future::pending::<()>().await;
                    None
                }
            }
        },
    )
}

/// Reports, when dropped, how long the held-open connection lasted.
struct CloseWatch {
    since: Instant,
    mock: Arc<Mock>,
}

impl Drop for CloseWatch {
    fn drop(&mut self) {
        *self.mock.closed_after.lock().unwrap() = Some(self.since.elapsed());
        self.mock.closed.notify_one();
    }
}

fn openai_frames(model: &str, prompt_tokens: u64) -> Vec<String> {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let chunk = |choices: Value, usage: Value| {
        let chunk = json!({
            "id": "chatcmpl-mock-0001",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": choices,
            "usage": usage,
        });
        format!("data: {chunk}\n\n")
    };
    let delta = |delta: Value, finish: Value| {
        chunk(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            Value::Null,
        )
    };
    let pieces = canned_pieces();
    let mut frames = vec![delta(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in &pieces {
        frames.push(delta(json!({"content": piece}), Value::Null));
    }
    frames.push(delta(
        json!({"tool_calls": [{
            "index": 0,
            "id": "call_mock_weather_01",
            "type": "function",
            "function": {"name": TOOL_NAME, "arguments": ""}
        }]}),
        Value::Null,
    ));
    for piece in TOOL_ARGUMENT_PIECES {
        frames.push(delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            Value::Null,
        ));
    }
    frames.push(delta(json!({}), json!("tool_calls")));
    let completion = (pieces.len() + TOOL_ARGUMENT_PIECES.len() + 6) as u64;
    frames.push(chunk(
        json!([]),
        json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion
        }),
    ));
    frames.push("data: [DONE]\n\n".to_owned());
    frames
}

fn anthropic_frames(model: &str, input_tokens: u64, fail: bool) -> Vec<String> {
    let event = |data: Value| {
        let kind = data["type"].as_str().expect("typed").to_owned();
        format!("event: {kind}\ndata: {data}\n\n")
    };
    let pieces = canned_pieces();
    let mut frames = vec![
        event(json!({
            "type": "message_start",
            "message": {
                "id": "msg_mock_0001",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1}
            }
        })),
        event(json!({
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""}
        })),
        event(json!({"type": "ping"})),
    ];
    let text_delta = |piece: &str| {
        event(json!({
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece}
        }))
    };
    if fail {
        // Half the answer, then the API is overloaded.
        for piece in &pieces[..pieces.len() / 2] {
            frames.push(text_delta(piece));
        }
        frames.push(event(json!({
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"}
        })));
        return frames;
    }
    for piece in &pieces {
        frames.push(text_delta(piece));
    }
    frames.push(event(json!({"type": "content_block_stop", "index": 0})));
    frames.push(event(json!({
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_mock_01", "name": TOOL_NAME, "input": {}}
    })));
    // The first fragment of a tool's input is often empty.
    for piece in std::iter::once("").chain(TOOL_ARGUMENT_PIECES) {
        frames.push(event(json!({
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": piece}
        })));
    }
    frames.push(event(json!({"type": "content_block_stop", "index": 1})));
    frames.push(event(json!({"type": "ping"})));
    let output = (pieces.len() + TOOL_ARGUMENT_PIECES.len() + 6) as u64;
    frames.push(event(json!({
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": null},
        "usage": {"output_tokens": output}
    })));
    frames.push(event(json!({"type": "message_stop"})));
    frames
}
