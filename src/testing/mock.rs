//! A scriptable SSE server on 127.0.0.1 for tests (feature `mock`): each
//! request gets a [`Script`] of status, headers and timed body writes, and
//! every request is recorded for assertions.
//!
//! The server speaks just enough HTTP/1.1 for an SSE client: it reads one
//! request per connection (head and a `Content-Length` body), answers with
//! a chunked body and `Connection: close`, and writes each step of the
//! script as it comes, so a client sees the same chunks and pauses.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::Recording;
use crate::MessageEvent;

/// The largest request head read; a longer one drops the connection.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body read; a longer one drops the connection.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The default [`MockServerBuilder::read_timeout`].
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One request as the [`MockServer`] received it.
#[derive(Debug, Clone)]
pub struct MockRequest {
    index: usize,
    method: String,
    target: String,
    headers: HeaderMap,
    /// `Last-Event-ID` decoded as UTF-8 (invalid sequences replaced).
    last_event_id: Option<String>,
    body: Bytes,
}

impl MockRequest {
    /// Its number: 0 for the first request the server received.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The method, as sent (`GET`, `POST`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent: path and query.
    pub fn path(&self) -> &str {
        &self.target
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive), if it is
    /// UTF-8 text (non-ASCII included).
    pub fn header(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.headers.get(name)?.as_bytes()).ok()
    }

    /// The `Last-Event-ID` header, `None` when it was not sent. Event IDs
    /// are UTF-8 (clients send them as its bytes): an ID that is not valid
    /// UTF-8 has its invalid sequences replaced with U+FFFD, as the event
    /// stream parser does.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write(Bytes),
    Sleep(Duration),
    Trickle {
        bytes: Bytes,
        piece: usize,
        every: Duration,
    },
    Replay {
        recording: Arc<Recording>,
        speed: f64,
        forever: bool,
    },
}

/// What the [`MockServer`] answers to one request: a status, headers and a
/// body written step by step. Built by value; steps run in the order added.
///
/// | element | what the client sees |
/// |---|---|
/// | [`sse`](Self::sse) / [`status`](Self::status) | `200 text/event-stream` with `Cache-Control: no-cache`, or any status |
/// | [`header`](Self::header), [`retry_after`](Self::retry_after) | response headers |
/// | [`event`](Self::event), [`message`](Self::message), [`comment`](Self::comment), [`retry`](Self::retry), [`write`](Self::write) | body bytes, each step one chunk |
/// | [`sleep`](Self::sleep) | a pause between chunks |
/// | [`trickle`](Self::trickle) | bytes a few at a time, with pauses |
/// | [`cut_after`](Self::cut_after) | the connection dropped after N body bytes, mid-event if N says so |
/// | [`stall`](Self::stall) | the connection kept open, silent, after the last step |
/// | [`gzip`](Self::gzip) | a gzip body, flushed at every step |
/// | [`replay`](Self::replay) | a [`Recording`]'s chunks at their recorded times |
///
/// Without [`stall`](Self::stall) the body ends cleanly after the last
/// step and the connection closes.
#[derive(Debug, Clone)]
#[must_use = "a script does nothing until a MockServer runs it"]
pub struct Script {
    status: u16,
    headers: Vec<(String, String)>,
    steps: Vec<Step>,
    gzip: bool,
    cut_after: Option<usize>,
    stall: bool,
}

impl Script {
    /// `200 OK` with `Content-Type: text/event-stream` and
    /// `Cache-Control: no-cache`, and an empty body so far.
    pub fn sse() -> Script {
        Script::status(200)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
    }

    /// Any status, with no headers besides the framing and an empty body so
    /// far (add one with [`write`](Self::write)).
    pub fn status(code: u16) -> Script {
        Script {
            status: code,
            headers: Vec::new(),
            steps: Vec::new(),
            gzip: false,
            cut_after: None,
            stall: false,
        }
    }

    /// Sets a response header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> Script {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes a response header (for instance the `Cache-Control` that
    /// [`sse`](Self::sse) sets).
    pub fn without_header(mut self, name: &str) -> Script {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sets `Retry-After: <seconds>`.
    pub fn retry_after(self, seconds: u64) -> Script {
        self.header("retry-after", &seconds.to_string())
    }

    /// Writes these bytes as they are, in one chunk.
    pub fn write(mut self, bytes: impl Into<Bytes>) -> Script {
        self.steps.push(Step::Write(bytes.into()));
        self
    }

    /// Writes an event of type `message` and no `id` field: one `data:`
    /// line per line of `data`, then a blank line.
    pub fn event(self, data: &str) -> Script {
        self.message(&MessageEvent::new("", data, ""))
    }

    /// Writes an event: an `event:` line unless its type is `message`, an
    /// `id:` line unless its id is empty, its `data:` lines and a blank line.
    pub fn message(self, event: &MessageEvent) -> Script {
        let mut text = String::new();
        if event.event() != "message" {
            text.push_str(&format!("event: {}\n", event.event()));
        }
        if !event.id().is_empty() {
            text.push_str(&format!("id: {}\n", event.id()));
        }
        for line in event.data().split('\n') {
            text.push_str(&format!("data: {line}\n"));
        }
        text.push('\n');
        self.write(text)
    }

    /// Writes a comment line (`:` and `text`, which must not hold a line
    /// break), as keep-alives do.
    pub fn comment(self, text: &str) -> Script {
        self.write(format!(":{text}\n"))
    }

    /// Writes a `retry:` field in whole milliseconds, in a block of its own.
    pub fn retry(self, delay: Duration) -> Script {
        self.write(format!("retry: {}\n\n", delay.as_millis()))
    }

    /// Waits before the next step.
    pub fn sleep(mut self, duration: Duration) -> Script {
        self.steps.push(Step::Sleep(duration));
        self
    }

    /// Writes `bytes` `piece` bytes at a time (at least 1), waiting `every`
    /// between pieces.
    pub fn trickle(mut self, bytes: impl Into<Bytes>, piece: usize, every: Duration) -> Script {
        self.steps.push(Step::Trickle {
            bytes: bytes.into(),
            piece: piece.max(1),
            every,
        });
        self
    }

    /// Drops the connection, without ending the body, once `bytes` bytes of
    /// body have been written (counted as sent: after compression, before
    /// the chunked framing). The client sees a connection lost mid-body.
    pub fn cut_after(mut self, bytes: usize) -> Script {
        self.cut_after = Some(bytes);
        self
    }

    /// Keeps the connection open after the last step, sending nothing, until
    /// the client closes it or the server is dropped.
    pub fn stall(mut self) -> Script {
        self.stall = true;
        self
    }

    /// Compresses the body with gzip (`Content-Encoding: gzip`), flushing
    /// the compressor at every step so that each event can be decoded as
    /// soon as it arrives.
    pub fn gzip(mut self) -> Script {
        self.gzip = true;
        self.header("content-encoding", "gzip")
    }

    /// Writes a recording's chunks at their recorded times (counted from
    /// the start of this step).
    pub fn replay(self, recording: &Recording) -> Script {
        self.replay_at_speed(recording, 1.0)
    }

    /// Like [`replay`](Self::replay), `speed` times faster (2.0: half the
    /// pauses; at most 1,000,000, below 0.000001 taken as that).
    pub fn replay_at_speed(mut self, recording: &Recording, speed: f64) -> Script {
        self.steps.push(Step::Replay {
            recording: Arc::new(recording.clone()),
            speed: clamp_speed(speed),
            forever: false,
        });
        self
    }

    /// Replays a recording again and again, until the client disconnects
    /// (the time between passes is the first chunk's recorded time).
    pub fn replay_forever(mut self, recording: &Recording, speed: f64) -> Script {
        self.steps.push(Step::Replay {
            recording: Arc::new(recording.clone()),
            speed: clamp_speed(speed),
            forever: true,
        });
        self
    }
}

fn clamp_speed(speed: f64) -> f64 {
    if speed.is_nan() {
        1.0
    } else {
        speed.clamp(1e-6, 1e6)
    }
}

type Responder = Arc<dyn Fn(&MockRequest) -> Script + Send + Sync>;

/// Configures a [`MockServer`]: which [`Script`] answers which request.
#[must_use = "a builder does nothing until start() is called"]
pub struct MockServerBuilder {
    addr: SocketAddr,
    default: Option<Script>,
    per_request: HashMap<usize, Script>,
    responder: Option<Responder>,
    keep: usize,
    read_timeout: Duration,
}

impl fmt::Debug for MockServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServerBuilder")
            .field("addr", &self.addr)
            .field("default", &self.default)
            .field("per_request", &self.per_request)
            .field("responder", &self.responder.as_ref().map(|_| "custom"))
            .field("keep_requests", &self.keep)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

impl MockServerBuilder {
    /// The script for every request that has none of its own
    /// ([`request`](Self::request)). Default: `404 Not Found` with a body
    /// saying that no script was given for that request.
    pub fn script(mut self, script: Script) -> Self {
        self.default = Some(script);
        self
    }

    /// The script for request number `index` (0: the first request).
    pub fn request(mut self, index: usize, script: Script) -> Self {
        self.per_request.insert(index, script);
        self
    }

    /// Chooses every request's script with a function of the request, for
    /// instance by its path or its `Last-Event-ID`; replaces
    /// [`script`](Self::script) and [`request`](Self::request).
    pub fn responder<F>(mut self, f: F) -> Self
    where
        F: Fn(&MockRequest) -> Script + Send + Sync + 'static,
    {
        self.responder = Some(Arc::new(f));
        self
    }

    /// The address to listen on. Default: `127.0.0.1:0` (a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// How many of the latest requests (with their bodies, up to 16 MiB
    /// each) [`MockServer::requests`] keeps: older ones are dropped as new
    /// ones arrive, and 0 keeps none. Requests are still counted and
    /// numbered ([`MockServer::request_count`], [`MockRequest::index`])
    /// and passed to the [`responder`](Self::responder). A server that
    /// runs for long, as `ssekit serve` does, keeps none so that its
    /// memory does not grow with every request. Default: every request
    /// (`usize::MAX`), for tests that assert on them.
    pub fn keep_requests(mut self, n: usize) -> Self {
        self.keep = n;
        self
    }

    /// How long a connection may take to send its request (head and body)
    /// before the server drops it, so that a client that sends nothing, or
    /// a byte now and then, does not hold a task for ever. Default: 30
    /// seconds.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Binds and starts serving, in a task of the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// The error of binding the address.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn start(self) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let responder = match self.responder {
            Some(r) => r,
            None => {
                let default = self.default;
                let per_request = self.per_request;
                Arc::new(move |req: &MockRequest| {
                    per_request
                        .get(&req.index)
                        .or(default.as_ref())
                        .cloned()
                        .unwrap_or_else(|| {
                            Script::status(404)
                                .header("content-type", "text/plain")
                                .write(format!("no script for request {}", req.index))
                        })
                })
            }
        };
        let shared = Arc::new(Shared {
            requests: Mutex::new(Requests {
                kept: VecDeque::new(),
                received: 0,
            }),
            keep: self.keep,
            read_timeout: self.read_timeout,
            arrived: Notify::new(),
        });
        let task = tokio::spawn(accept(listener, shared.clone(), responder));
        Ok(MockServer { addr, shared, task })
    }
}

struct Shared {
    requests: Mutex<Requests>,
    /// See [`MockServerBuilder::keep_requests`].
    keep: usize,
    read_timeout: Duration,
    arrived: Notify,
}

/// The requests kept, and how many were received in all.
struct Requests {
    kept: VecDeque<MockRequest>,
    received: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections only push or clone: a panic cannot leave them torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scriptable SSE server on `127.0.0.1` for tests; dropping it stops it
/// and closes every connection.
///
/// # Example: my app survives the stream dropping mid-answer
///
/// ```
/// use std::time::Duration;
/// use ssekit::testing::{ExpectEvents, MockServer, Script};
/// use ssekit::{EventSource, MessageEvent, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let first = "id: 1\ndata: Hel\n\n";
/// let server = MockServer::builder()
///     // The connection drops halfway through the second event...
///     .request(0, Script::sse().write(first).write("id: 2\ndata: lo").cut_after(first.len() + 6))
///     // ...and the reconnection resumes after event 1.
///     .request(1, Script::sse().message(&MessageEvent::new("", "lo", "2")).stall())
///     .start()
///     .await?;
///
/// let mut es = EventSource::builder(server.url("/answer"))
///     .retry_policy(RetryPolicy::default().initial_delay(Duration::from_millis(10)))
///     .build()?;
/// let got = es.collect_messages(2, Duration::from_secs(5)).await?;
/// let text: String = got.iter().map(|m| m.data()).collect();
/// assert_eq!(text, "Hello");
///
/// let requests = server.requests();
/// assert_eq!(requests.len(), 2);
/// assert_eq!(requests[1].last_event_id(), Some("1"));
/// # Ok(())
/// # }
/// ```
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .finish()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): aborting it
        // drops them all.
        self.task.abort();
    }
}

impl MockServer {
    /// A builder, for per-request scripts or another address.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            default: None,
            per_request: HashMap::new(),
            responder: None,
            keep: usize::MAX,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Starts a server on `127.0.0.1` (a free port) that answers every
    /// request with `script`.
    ///
    /// # Errors
    ///
    /// The error of binding the socket.
    pub async fn start(script: Script) -> std::io::Result<MockServer> {
        MockServer::builder().script(script).start().await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every request received so far, in order; only the latest ones when
    /// the server was built with
    /// [`keep_requests`](MockServerBuilder::keep_requests).
    pub fn requests(&self) -> Vec<MockRequest> {
        lock(&self.shared.requests).kept.iter().cloned().collect()
    }

    /// How many requests were received so far (kept or not).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).received
    }

    /// Waits until at least `n` requests were received, at most `timeout`,
    /// and returns every request kept by then (see
    /// [`requests`](Self::requests); fewer than `n` when the time ran out
    /// or fewer are kept).
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<MockRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            if self.request_count() >= n {
                return self.requests();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.requests();
            }
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, responder: Responder) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            // Out of file descriptors and the like: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        let responder = responder.clone();
        connections.spawn(async move {
            let _ = serve(socket, &shared, &responder).await;
        });
    }
}

/// Reads one request, records it, and runs its script.
async fn serve(
    mut socket: TcpStream,
    shared: &Shared,
    responder: &Responder,
) -> std::io::Result<()> {
    let _ = socket.set_nodelay(true);
    let read = tokio::time::timeout(shared.read_timeout, read_request(&mut socket));
    let Ok(Some((method, target, headers, body))) = read.await.unwrap_or(Ok(None)) else {
        return Ok(());
    };
    let request = {
        let mut requests = lock(&shared.requests);
        let last_event_id = headers
            .get("last-event-id")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let request = MockRequest {
            index: requests.received,
            method,
            target,
            headers,
            last_event_id,
            body,
        };
        requests.received += 1;
        if shared.keep > 0 {
            if requests.kept.len() >= shared.keep {
                requests.kept.pop_front();
            }
            requests.kept.push_back(request.clone());
        }
        request
    };
    shared.arrived.notify_waiters();
    let script = responder(&request);
    run(socket, script).await
}

type Head = (String, String, HeaderMap, Bytes);

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(1024);
    // Where the search for the end of the head resumes: a head that
    // trickles in is searched once, not again on every read.
    let mut searched = 0;
    let head_len = loop {
        if let Some(i) = memchr::memmem::find(&buf[searched..], b"\r\n\r\n") {
            break searched + i + 4;
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    // Header values are kept as bytes: a value that is not ASCII (a
    // UTF-8 Last-Event-ID) is legal and must reach the responder.
    let mut lines = buf[..head_len]
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut request_line = request_line.split(' ');
    let method = request_line.next().unwrap_or("").to_owned();
    let target = request_line.next().unwrap_or("").to_owned();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) {
            headers.append(n, v);
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Ok(None);
    }
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some((method, target, headers, body.into())))
}

/// The body writer: compression, the cut budget and chunked framing.
struct Body {
    socket: TcpStream,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    budget: Option<usize>,
}

impl Body {
    /// Writes one step's bytes; `Err(None)` when the script's cut came.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Option<std::io::Error>> {
        let bytes = match &mut self.gzip {
            Some(gz) => {
                gz.write_all(bytes).map_err(Some)?;
                gz.flush().map_err(Some)?;
                std::mem::take(gz.get_mut())
            }
            None => bytes.to_vec(),
        };
        self.frame(&bytes).await
    }

    async fn frame(&mut self, bytes: &[u8]) -> Result<(), Option<std::io::Error>> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
        let cut = match &mut self.budget {
            Some(left) if *left < bytes.len() => {
                frame.extend_from_slice(&bytes[..*left]);
                true
            }
            Some(left) => {
                *left -= bytes.len();
                frame.extend_from_slice(bytes);
                frame.extend_from_slice(b"\r\n");
                false
            }
            None => {
                frame.extend_from_slice(bytes);
                frame.extend_from_slice(b"\r\n");
                false
            }
        };
        self.socket.write_all(&frame).await.map_err(Some)?;
        self.socket.flush().await.map_err(Some)?;
        if cut {
            let _ = self.socket.shutdown().await;
            return Err(None);
        }
        Ok(())
    }
}

async fn run(mut socket: TcpStream, script: Script) -> std::io::Result<()> {
    let no_body =
        script.status == 204 || script.status == 304 || (100..200).contains(&script.status);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        script.status,
        reqwest::StatusCode::from_u16(script.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Status")
    );
    for (name, value) in &script.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !no_body {
        head.push_str("transfer-encoding: chunked\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.flush().await?;
    if no_body {
        return Ok(());
    }
    let mut body = Body {
        socket,
        gzip: script
            .gzip
            .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
        budget: script.cut_after,
    };
    match run_steps(&mut body, &script.steps).await {
        Ok(()) => {}
        Err(None) => return Ok(()),
        Err(Some(e)) => return Err(e),
    }
    if script.stall {
        // Wait for the client to go away (or the server to be dropped).
        let mut sink = [0u8; 512];
        while matches!(body.socket.read(&mut sink).await, Ok(n) if n > 0) {}
        return Ok(());
    }
    if let Some(gz) = body.gzip.take() {
        let rest = gz.finish()?;
        match body.frame(&rest).await {
            Ok(()) => {}
            Err(None) => return Ok(()),
            Err(Some(e)) => return Err(e),
        }
    }
    if body.budget == Some(0) {
        // The budget ran out exactly at the end: still a cut, not an end.
        return Ok(());
    }
    body.socket.write_all(b"0\r\n\r\n").await?;
    body.socket.flush().await?;
    let _ = body.socket.shutdown().await;
    Ok(())
}

async fn run_steps(body: &mut Body, steps: &[Step]) -> Result<(), Option<std::io::Error>> {
    for step in steps {
        match step {
            Step::Write(bytes) => body.send(bytes).await?,
            Step::Sleep(d) => tokio::time::sleep(*d).await,
            Step::Trickle {
                bytes,
                piece,
                every,
            } => {
                for (i, part) in bytes.chunks(*piece).enumerate() {
                    if i > 0 {
                        tokio::time::sleep(*every).await;
                    }
                    body.send(part).await?;
                }
            }
            Step::Replay {
                recording,
                speed,
                forever,
            } => loop {
                let start = tokio::time::Instant::now();
                for chunk in recording.chunks() {
                    let at = Duration::try_from_secs_f64(chunk.at().as_secs_f64() / speed)
                        .unwrap_or(Duration::MAX);
                    if let Some(when) = start.checked_add(at) {
                        tokio::time::sleep_until(when).await;
                    }
                    body.send(chunk.bytes()).await?;
                }
                if !forever || recording.chunks().is_empty() {
                    break;
                }
            },
        }
    }
    Ok(())
}
