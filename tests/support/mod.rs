//! A scriptable, in-process HTTP/1.1 test server over raw tokio TCP.
//!
//! The server binds `127.0.0.1:0`, parses requests by hand and answers each one
//! with a [`Reply`] script produced by a handler closure. Scripts control the
//! status line, headers, body framing (chunked, `Content-Length` or
//! close-delimited), the timing of every write, and misbehaviour such as
//! cutting the connection after an exact number of body bytes or stalling.
//!
//! Dropping the [`TestServer`] aborts the accept task and every connection task.
//!
//! A handler that panics (a failed `assert!` in it) is answered with a `500`
//! and a closed connection, so the client does not hang; the panic is
//! recorded, and dropping the server then panics with every recorded message
//! (unless the test is already panicking), so the test fails although the
//! client may have retried past the `500`. [`TestServer::assert_no_handler_panics`]
//! checks the same at any point.
//!
//! Request times ([`Request::at`]) are read from Tokio's clock, so under a
//! paused clock (`#[tokio::test(start_paused = true)]`) they are virtual,
//! like the server's own sleeps and the client's timers.
#![allow(dead_code)]

pub mod net;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head (request line + headers) accepted before the connection is dropped.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted before the connection is dropped.
const MAX_BODY: usize = 64 * 1024 * 1024;

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync + 'static;

/// Locks a mutex, ignoring poisoning (a panicking test must not cascade into the server).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target exactly as sent: path plus query.
    pub path: String,
    /// Header fields in arrival order, names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Body, read by `Content-Length` or decoded from `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
    /// When the request head had been fully read, on Tokio's clock (virtual
    /// under a paused clock).
    pub at: tokio::time::Instant,
    /// 0-based index of the TCP connection it came on (equal values = keep-alive reuse).
    pub conn: usize,
}

impl Request {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

// ---------------------------------------------------------------------------
// Reply
// ---------------------------------------------------------------------------

/// How the response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`; each write is one chunk (the default).
    Chunked,
    /// `Content-Length` computed from the total of all writes.
    ContentLength,
    /// No length; the body ends when the server closes the connection.
    CloseDelimited,
}

/// One step of a reply body script.
#[derive(Clone, Debug)]
enum Action {
    Write(Vec<u8>),
    Sleep(Duration),
    Trickle {
        bytes: Vec<u8>,
        piece: usize,
        every: Duration,
    },
}

/// What to send back for one request. Builder style, by value.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    actions: Vec<Action>,
    drop_after: Option<usize>,
    stall: bool,
    framing: Framing,
    head_delay: Option<Duration>,
    raw: Option<Vec<u8>>,
}

impl Reply {
    /// A reply with status `code`, no headers and an empty body (chunked framing).
    pub fn status(code: u16) -> Reply {
        Reply {
            status: code,
            headers: Vec::new(),
            actions: Vec::new(),
            drop_after: None,
            stall: false,
            framing: Framing::Chunked,
            head_delay: None,
            raw: None,
        }
    }

    /// `200` with `content-type: text/event-stream` and `cache-control: no-cache`.
    pub fn sse() -> Reply {
        Reply::status(200)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
    }

    /// `code` with a `location` header and an empty body (`content-length: 0`).
    pub fn redirect(code: u16, location: &str) -> Reply {
        Reply::status(code)
            .header("location", location)
            .content_length()
    }

    /// Raw bytes written verbatim instead of a structured response (no status
    /// line or headers are generated), then the connection is closed (or
    /// stalled, with [`Reply::stall`]). For malformed-response tests.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        let mut r = Reply::status(0);
        r.raw = Some(bytes.into());
        r
    }

    /// Adds a header (may repeat). A `content-length` / `transfer-encoding`
    /// given here replaces the one the framing would add (lets a test lie).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Removes every header named `name` (case-insensitive) added so far.
    pub fn without_header(mut self, name: &str) -> Reply {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    /// Appends one write action (one chunk under chunked framing). Empty writes are skipped.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Reply {
        self.actions.push(Action::Write(bytes.into()));
        self
    }

    /// Same as [`Reply::body`].
    pub fn write(self, bytes: impl Into<Vec<u8>>) -> Reply {
        self.body(bytes)
    }

    /// Pauses (`tokio::time::sleep`) at this point of the body script.
    pub fn sleep(mut self, d: Duration) -> Reply {
        self.actions.push(Action::Sleep(d));
        self
    }

    /// Writes `bytes` in separate writes of `piece` bytes (min 1), sleeping `every` between them.
    pub fn trickle(mut self, bytes: impl Into<Vec<u8>>, piece: usize, every: Duration) -> Reply {
        self.actions.push(Action::Trickle {
            bytes: bytes.into(),
            piece: piece.max(1),
            every,
        });
        self
    }

    /// Closes the connection as soon as `n` body payload bytes (framing not
    /// counted) have been written, splitting a write if needed; no terminating
    /// chunk is sent. If the script writes fewer bytes, the connection is
    /// closed after the last action, likewise without terminator.
    pub fn drop_after(mut self, n: usize) -> Reply {
        self.drop_after = Some(n);
        self
    }

    /// After all actions, sends nothing more and keeps the connection open until
    /// the client closes it or the server is dropped; then closes it.
    pub fn stall(mut self) -> Reply {
        self.stall = true;
        self
    }

    /// Body ends when the connection closes: no `transfer-encoding`, no
    /// `content-length`, and `connection: close` is sent.
    pub fn close_delimited(mut self) -> Reply {
        self.framing = Framing::CloseDelimited;
        self
    }

    /// `content-length` is the total of all writes (also allowed with
    /// [`Reply::drop_after`], which then gives a short body).
    pub fn content_length(mut self) -> Reply {
        self.framing = Framing::ContentLength;
        self
    }

    /// Chunked framing (the default).
    pub fn chunked(mut self) -> Reply {
        self.framing = Framing::Chunked;
        self
    }

    /// Waits `d` before sending the status line and headers.
    pub fn delay_head(mut self, d: Duration) -> Reply {
        self.head_delay = Some(d);
        self
    }

    /// Total payload bytes of all writes in the script.
    fn total_len(&self) -> usize {
        self.actions
            .iter()
            .map(|a| match a {
                Action::Write(b) => b.len(),
                Action::Trickle { bytes, .. } => bytes.len(),
                Action::Sleep(_) => 0,
            })
            .sum()
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// Reason phrase for a status code ("Status" for unknown codes).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------
// TestServer
// ---------------------------------------------------------------------------

/// State shared between the server handle and its tasks.
struct Shared {
    handler: Box<Handler>,
    requests: Mutex<Vec<Request>>,
    arrived: Notify,
    connections: AtomicUsize,
    /// One line per handler call that panicked: the request and the message.
    panics: Mutex<Vec<String>>,
}

impl Shared {
    /// Records a request and returns its 0-based index.
    fn record(&self, req: Request) -> usize {
        let idx = {
            let mut reqs = lock(&self.requests);
            reqs.push(req);
            reqs.len() - 1
        };
        self.arrived.notify_waiters();
        idx
    }

    /// Records a handler panic for request `idx`.
    fn record_panic(&self, req: &Request, idx: usize, payload: &(dyn std::any::Any + Send)) {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic payload that is not a string)".to_string());
        lock(&self.panics).push(format!(
            "request #{idx} ({} {}): {msg}",
            req.method, req.path
        ));
    }
}

/// The text a failing test shows for these handler panics.
fn describe_panics(panics: &[String]) -> String {
    let mut text = format!(
        "test server: {} handler call(s) panicked (each was answered with 500, which the client may have retried past):",
        panics.len()
    );
    for p in panics {
        text.push_str("\n  ");
        text.push_str(p);
    }
    text
}

/// Live connection tasks; `None` once the server has been dropped.
type Conns = Arc<Mutex<Option<JoinSet<()>>>>;

/// A running test server on `127.0.0.1`; dropping it shuts everything down.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    conns: Conns,
}

impl TestServer {
    /// Starts a server; `handler` is called for every request with the recorded
    /// request and its 0-based index across the server's life.
    pub async fn start<F>(handler: F) -> TestServer
    where
        F: Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("test server: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("test server: local_addr");
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            connections: AtomicUsize::new(0),
            panics: Mutex::new(Vec::new()),
        });
        let conns: Conns = Arc::new(Mutex::new(Some(JoinSet::new())));
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), conns.clone()));
        TestServer {
            addr,
            shared,
            accept,
            conns,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// Number of requests seen so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Number of TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived (checking on every arrival and
    /// every 5ms) and returns them all; panics once `timeout` of real time
    /// (`std::time::Instant`) has passed, saying how many arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            // Created before the check so an arrival in between is not missed.
            let arrived = self.shared.arrived.notified();
            {
                let reqs = lock(&self.shared.requests);
                if reqs.len() >= n {
                    return reqs.clone();
                }
                if Instant::now() >= deadline {
                    panic!(
                        "test server: waited {:?} for {} request(s), but only {} arrived",
                        timeout,
                        n,
                        reqs.len()
                    );
                }
            }
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    /// Number of connections whose task is still running (e.g. stalled ones
    /// the client has not closed yet).
    pub fn open_connections(&self) -> usize {
        match lock(&self.conns).as_mut() {
            Some(set) => {
                while set.try_join_next().is_some() {}
                set.len()
            }
            None => 0,
        }
    }

    /// The handler panics recorded so far, one line each: the request's
    /// index, method and path, and the panic message.
    pub fn handler_panics(&self) -> Vec<String> {
        lock(&self.shared.panics).clone()
    }

    /// Takes the handler panics recorded so far, for a test that expects one:
    /// those taken no longer fail the test when the server drops.
    pub fn take_handler_panics(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.panics))
    }

    /// Panics with every recorded handler panic, if there was any. Dropping
    /// the server does the same; this says so at a chosen point (before
    /// assertions that a handler panic would make confusing).
    #[track_caller]
    pub fn assert_no_handler_panics(&self) {
        let panics = self.handler_panics();
        if !panics.is_empty() {
            panic!("{}", describe_panics(&panics));
        }
    }

    /// Aborts every open connection (peers see the socket close) while the
    /// server keeps accepting new ones.
    pub fn kill_connections(&self) {
        if let Some(set) = lock(&self.conns).as_mut() {
            set.abort_all();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
        // Taking the set under the lock stops the accept loop from adding more;
        // dropping a JoinSet aborts every task in it.
        let set = lock(&self.conns).take();
        drop(set);
        // A handler's failed assertion fails the test here. Not while the
        // test is already failing: a second panic would abort the process.
        if !std::thread::panicking() {
            let panics = std::mem::take(&mut *lock(&self.shared.panics));
            if !panics.is_empty() {
                panic!("{}", describe_panics(&panics));
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, conns: Conns) {
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(_) => {
                // e.g. too many open files: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let mut guard = lock(&conns);
        match guard.as_mut() {
            Some(set) => {
                while set.try_join_next().is_some() {}
                let conn = shared.connections.fetch_add(1, Ordering::SeqCst);
                set.spawn(serve_connection(sock, conn, shared.clone()));
            }
            None => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Connection handling
// ---------------------------------------------------------------------------

/// Why reading a request stopped.
enum ReadEnd {
    /// Clean end of stream between requests.
    Eof,
    /// Peer vanished mid-request, I/O error or unparseable request.
    Bad,
}

/// A parsed request plus connection-level facts.
struct Incoming {
    req: Request,
    http10: bool,
    wants_close: bool,
}

async fn serve_connection(mut sock: TcpStream, conn: usize, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        let inc = match read_request(&mut sock, &mut buf, conn).await {
            Ok(inc) => inc,
            Err(ReadEnd::Eof) | Err(ReadEnd::Bad) => return,
        };
        let idx = shared.record(inc.req.clone());
        let reply = match std::panic::catch_unwind(AssertUnwindSafe(|| {
            (shared.handler)(&inc.req, idx)
        })) {
            Ok(r) => r,
            Err(payload) => {
                shared.record_panic(&inc.req, idx, &*payload);
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                let _ = sock.shutdown().await;
                return;
            }
        };
        match write_reply(&mut sock, &inc, reply).await {
            Ok(true) if !inc.wants_close => continue,
            Ok(_) => {
                let _ = sock.shutdown().await;
                return;
            }
            Err(_) => return,
        }
    }
}

/// Reads more bytes into `buf`; `Ok(false)` on end of stream.
async fn fill(sock: &mut TcpStream, buf: &mut BytesMut) -> Result<bool, ReadEnd> {
    buf.reserve(8 * 1024);
    match sock.read_buf(buf).await {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(_) => Err(ReadEnd::Bad),
    }
}

/// Finds the end of the head: returns the length including the blank line.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        i = nl + 1;
    }
    None
}

/// Takes one line (without its CRLF/LF) from `buf`, reading more as needed.
async fn take_line(sock: &mut TcpStream, buf: &mut BytesMut) -> Result<Vec<u8>, ReadEnd> {
    loop {
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let mut line = buf.split_to(pos + 1).to_vec();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if buf.len() > MAX_HEAD || !fill(sock, buf).await? {
            return Err(ReadEnd::Bad);
        }
    }
}

/// Takes exactly `n` bytes from `buf`, reading more as needed.
async fn take_exact(
    sock: &mut TcpStream,
    buf: &mut BytesMut,
    n: usize,
) -> Result<Vec<u8>, ReadEnd> {
    while buf.len() < n {
        if !fill(sock, buf).await? {
            return Err(ReadEnd::Bad);
        }
    }
    Ok(buf.split_to(n).to_vec())
}

async fn read_request(
    sock: &mut TcpStream,
    buf: &mut BytesMut,
    conn: usize,
) -> Result<Incoming, ReadEnd> {
    // Head.
    let head_len = loop {
        // Ignore empty lines before a request line (RFC 9112 section 2.2).
        while buf.starts_with(b"\r\n") || buf.starts_with(b"\n") {
            let n = if buf[0] == b'\r' { 2 } else { 1 };
            buf.advance(n);
        }
        if let Some(n) = find_head_end(buf) {
            break n;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadEnd::Bad);
        }
        let had_bytes = !buf.is_empty();
        if !fill(sock, buf).await? {
            return Err(if had_bytes {
                ReadEnd::Bad
            } else {
                ReadEnd::Eof
            });
        }
    };
    let at = tokio::time::Instant::now();
    let head = buf.split_to(head_len);
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));

    let request_line = lines.next().ok_or(ReadEnd::Bad)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().ok_or(ReadEnd::Bad)?.to_string();
    let path = parts.next().ok_or(ReadEnd::Bad)?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            // Obsolete line folding: continue the previous value.
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let http10 = version.eq_ignore_ascii_case("HTTP/1.0");
    let conn_tokens = get("connection").unwrap_or("").to_ascii_lowercase();
    let wants_close = if http10 {
        !conn_tokens.contains("keep-alive")
    } else {
        conn_tokens.split(',').any(|t| t.trim() == "close")
    };
    let chunked = get("transfer-encoding")
        .map(|v| v.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false);
    let content_length = match get("content-length") {
        Some(v) if !chunked => Some(v.trim().parse::<usize>().map_err(|_| ReadEnd::Bad)?),
        _ => None,
    };
    if content_length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadEnd::Bad);
    }
    let has_body = chunked || content_length.is_some_and(|n| n > 0);
    let expects_continue = get("expect")
        .map(|v| v.eq_ignore_ascii_case("100-continue"))
        .unwrap_or(false);
    if has_body && expects_continue {
        sock.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| ReadEnd::Bad)?;
    }

    // Body.
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let line = take_line(sock, buf).await?;
            let line = String::from_utf8_lossy(&line);
            let size_str = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_str, 16).map_err(|_| ReadEnd::Bad)?;
            if size == 0 {
                // Trailer section, ended by an empty line.
                while !take_line(sock, buf).await?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadEnd::Bad);
            }
            body.extend_from_slice(&take_exact(sock, buf, size).await?);
            if !take_line(sock, buf).await?.is_empty() {
                return Err(ReadEnd::Bad);
            }
        }
        body
    } else if let Some(n) = content_length {
        take_exact(sock, buf, n).await?
    } else {
        Vec::new()
    };

    Ok(Incoming {
        req: Request {
            method,
            path,
            headers,
            body,
            at,
            conn,
        },
        http10,
        wants_close,
    })
}

/// Result of writing one piece of body.
enum Wrote {
    Continue,
    /// The `drop_after` budget is spent: close now.
    Cut,
}

/// Body writer: applies framing and the `drop_after` budget.
struct BodyWriter<'a> {
    sock: &'a mut TcpStream,
    framing: Framing,
    written: usize,
    budget: Option<usize>,
}

impl BodyWriter<'_> {
    async fn emit(&mut self, data: &[u8]) -> std::io::Result<Wrote> {
        if data.is_empty() {
            // An empty chunk would terminate a chunked body: skip it.
            return Ok(Wrote::Continue);
        }
        let allowed = match self.budget {
            Some(n) => n.saturating_sub(self.written).min(data.len()),
            None => data.len(),
        };
        if allowed == 0 {
            return Ok(Wrote::Cut);
        }
        let mut out = Vec::with_capacity(data.len() + 16);
        if self.framing == Framing::Chunked {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        out.extend_from_slice(&data[..allowed]);
        if self.framing == Framing::Chunked && allowed == data.len() {
            out.extend_from_slice(b"\r\n");
        }
        self.sock.write_all(&out).await?;
        self.sock.flush().await?;
        self.written += allowed;
        Ok(match self.budget {
            Some(n) if self.written >= n => Wrote::Cut,
            _ => Wrote::Continue,
        })
    }
}

/// Waits until the peer closes its side (or errors).
async fn stall(sock: &mut TcpStream) {
    let mut scratch = [0u8; 1024];
    loop {
        match sock.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Writes a reply; `Ok(true)` if the connection may serve another request.
async fn write_reply(sock: &mut TcpStream, inc: &Incoming, reply: Reply) -> std::io::Result<bool> {
    if let Some(d) = reply.head_delay {
        tokio::time::sleep(d).await;
    }
    if let Some(raw) = &reply.raw {
        sock.write_all(raw).await?;
        sock.flush().await?;
        if reply.stall {
            stall(sock).await;
        }
        return Ok(false);
    }

    let code = reply.status;
    let no_body_status = (100..200).contains(&code) || code == 204 || code == 304;
    let is_head = inc.req.method.eq_ignore_ascii_case("HEAD");
    let mut framing = reply.framing;
    if inc.http10 && framing == Framing::Chunked {
        framing = Framing::CloseDelimited;
    }

    let mut head = format!("HTTP/1.1 {} {}\r\n", code, reason_phrase(code));
    let close_delimited = framing == Framing::CloseDelimited && !no_body_status;
    for (k, v) in &reply.headers {
        if close_delimited && k.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(&format!("{}: {}\r\n", k, v));
    }
    if !no_body_status {
        match framing {
            Framing::Chunked if !reply.has_header("transfer-encoding") => {
                head.push_str("transfer-encoding: chunked\r\n")
            }
            Framing::ContentLength if !reply.has_header("content-length") => {
                head.push_str(&format!("content-length: {}\r\n", reply.total_len()))
            }
            _ => {}
        }
    }
    if close_delimited || (inc.wants_close && !reply.has_header("connection")) {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.flush().await?;

    if no_body_status || is_head {
        if reply.stall {
            stall(sock).await;
            return Ok(false);
        }
        return Ok(reply.drop_after.is_none() && !close_delimited);
    }

    let mut w = BodyWriter {
        sock,
        framing,
        written: 0,
        budget: reply.drop_after,
    };
    if reply.drop_after == Some(0) {
        return Ok(false);
    }
    for action in &reply.actions {
        match action {
            Action::Write(bytes) => {
                if let Wrote::Cut = w.emit(bytes).await? {
                    return Ok(false);
                }
            }
            Action::Sleep(d) => tokio::time::sleep(*d).await,
            Action::Trickle {
                bytes,
                piece,
                every,
            } => {
                let mut pieces = bytes.chunks(*piece).peekable();
                while let Some(p) = pieces.next() {
                    if let Wrote::Cut = w.emit(p).await? {
                        return Ok(false);
                    }
                    if pieces.peek().is_some() {
                        tokio::time::sleep(*every).await;
                    }
                }
            }
        }
    }
    let sock = w.sock;
    if reply.stall {
        stall(sock).await;
        return Ok(false);
    }
    if reply.drop_after.is_some() {
        return Ok(false);
    }
    match framing {
        Framing::Chunked => {
            sock.write_all(b"0\r\n\r\n").await?;
            sock.flush().await?;
            Ok(true)
        }
        Framing::ContentLength => Ok(true),
        Framing::CloseDelimited => Ok(false),
    }
}
