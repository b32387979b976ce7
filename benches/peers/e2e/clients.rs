//! The client processes of the throughput mode (`client` mode): each peer
//! client, and reqwest as the ceiling, reading the server's bodies, checked
//! against the expected events and bytes, timed from the moment every stream
//! has opened to the last event.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;

use crate::corpus::events_per_stream;
use crate::measure::{alloc_totals, usage, vm_rss_kib, Usage, COUNTING};
use crate::server::{h2_stats, h2_windows, plain_get, H2_DEFAULT_WINDOWS};
use crate::throughput::env_usize;

pub(crate) const CLIENTS: [&str; 6] = [
    "reqwest",
    "ssekit",
    "sse-stream",
    "sseer",
    "reqwest-eventsource",
    "eventsource-client",
];

#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) events: u64,
    pub(crate) data_bytes: u64,
    pub(crate) body_bytes: u64,
}

/// What one stream must see.
#[derive(Clone, Copy)]
pub(crate) struct Expect {
    pub(crate) events: u64,
    pub(crate) raw_bytes: u64,
    pub(crate) data_bytes: u64,
}

/// Where measurement starts: the last stream to open records the time and
/// usage and switches allocation counting on, then lets all streams read.
pub(crate) struct Gate {
    pub(crate) streams: usize,
    pub(crate) opened: AtomicUsize,
    pub(crate) open_tx: tokio::sync::watch::Sender<bool>,
    /// Time, usage and VmRSS when the last stream opened.
    pub(crate) start: Mutex<Option<(Instant, Usage, u64)>>,
}

impl Gate {
    pub(crate) fn new(streams: usize) -> Self {
        Gate {
            streams,
            opened: AtomicUsize::new(0),
            open_tx: tokio::sync::watch::channel(false).0,
            start: Mutex::new(None),
        }
    }

    pub(crate) async fn opened(&self) {
        if self.opened.fetch_add(1, Relaxed) + 1 == self.streams {
            let rss = vm_rss_kib();
            *self.start.lock().unwrap() = Some((Instant::now(), usage(), rss));
            COUNTING.store(true, Relaxed);
            self.open_tx.send_replace(true);
        } else {
            let mut rx = self.open_tx.subscribe();
            let _ = rx.wait_for(|open| *open).await;
        }
    }
}

/// Rows over HTTP/2: their runtime is named `h2-<runtime>`.
pub(crate) fn row_h2(rt: &str) -> bool {
    rt.starts_with("h2-")
}

/// Rows of gzip bodies: their runtime is named `gzip-<runtime>`.
pub(crate) fn row_gzip(rt: &str) -> bool {
    rt.starts_with("gzip-")
}

/// The runtime a row runs on (`ct1`, `mt100`, ...), without its protocol.
pub(crate) fn base_runtime(rt: &str) -> &str {
    rt.strip_prefix("h2-")
        .or_else(|| rt.strip_prefix("gzip-"))
        .unwrap_or(rt)
}

/// Why `client` cannot run the rows of runtime `rt`, if it cannot: it is
/// not run there, and the tables show "—" with this reason.
pub(crate) fn unable(client: &str, rt: &str) -> Option<&'static str> {
    match client {
        "eventsource-client" if row_gzip(rt) => Some(
            "no gzip: its transport (launchdarkly-sdk-transport 0.1, hyper) neither asks for nor decodes content-encoding",
        ),
        "eventsource-client" if row_h2(rt) && h2_windows() != H2_DEFAULT_WINDOWS => Some(
            "SSEKIT_BENCH_H2_WINDOWS differs from hyper's defaults, and its transport exposes no HTTP/2 settings",
        ),
        _ => None,
    }
}

/// The HTTP clients, built once per process and shared by its streams.
/// For the HTTP/2 rows, h2c with prior knowledge and the same flow-control
/// windows ([`h2_windows`]) in each.
/// The exit status of a client whose HTTP/2 streams were all made but
/// split over more than one connection. hyper-util's pooled client (under
/// eventsource-client, and reqwest's) starts a connection per waiting
/// request until the first is up, and now and then two of them carry
/// requests: about one run in five of the HTTP/2 rows on a busy 2-core
/// machine, before and after the benches moved to their own package. Such a
/// run measures a different thing, so it is not kept, but it is run again
/// rather than failing the bench (see `throughput_parent`).
pub(crate) const H2_SPLIT_EXIT: i32 = 3;

pub(crate) struct Clients {
    pub(crate) h2: bool,
    pub(crate) reqwest: reqwest::Client,
    pub(crate) reqwest012: reqwest012::Client,
    pub(crate) launchdarkly: Option<Arc<dyn eventsource_client::Client>>,
}

impl Clients {
    pub(crate) fn new(kind: &str, url: &str, h2: bool) -> Self {
        let launchdarkly = (kind == "eventsource-client").then(|| {
            use eventsource_client as es;
            let transport = launchdarkly_sdk_transport::HyperTransport::builder();
            let builder = es::ClientBuilder::for_url(url)
                .expect("eventsource-client URL")
                .reconnect(es::ReconnectOptions::reconnect(false).build());
            if h2 {
                // Its transport's HTTP/2 settings are hyper's defaults,
                // which the others are given explicitly.
                let transport = transport
                    .build_with_connector(H2cConnector)
                    .expect("hyper transport");
                Arc::new(builder.build_with_transport(transport)) as Arc<dyn es::Client>
            } else {
                let transport = transport.build_http().expect("hyper transport");
                Arc::new(builder.build_with_transport(transport)) as Arc<dyn es::Client>
            }
        });
        let (reqwest, reqwest012) = if h2 {
            (
                reqwest::Client::builder()
                    .http2_prior_knowledge()
                    .http2_initial_stream_window_size(h2_windows().0)
                    .http2_initial_connection_window_size(h2_windows().1)
                    .build()
                    .expect("reqwest h2c client"),
                reqwest012::Client::builder()
                    .http2_prior_knowledge()
                    .http2_initial_stream_window_size(h2_windows().0)
                    .http2_initial_connection_window_size(h2_windows().1)
                    .build()
                    .expect("reqwest 0.12 h2c client"),
            )
        } else {
            (reqwest::Client::new(), reqwest012::Client::new())
        };
        Clients {
            h2,
            reqwest,
            reqwest012,
            launchdarkly,
        }
    }
}

/// eventsource-client's transport has no prior-knowledge switch: it speaks
/// HTTP/2 on a connection whose connector says ALPN chose `h2`. This
/// connector opens plain TCP and says so: h2c with prior knowledge. (Its
/// requests race to connect until the first connection is up; the spare
/// sockets are closed unused, and the server counts them apart.)
#[derive(Clone)]
pub(crate) struct H2cConnector;

/// A TCP connection for HTTP/2: for eventsource-client's transport, and
/// for the server, which says it has no vectored writes (`vectored:
/// false`), so that h2 copies DATA frames under 1 KiB into its 16 KiB write
/// buffer instead of one `writev` per frame above 256 bytes (one per
/// `openai` event): the server then keeps up with the clients, as the
/// HTTP/1.1 one does with its single `write_all`.
pub(crate) struct H2cIo {
    pub(crate) io: hyper_util::rt::TokioIo<tokio::net::TcpStream>,
    pub(crate) vectored: bool,
}

pub(crate) type IoResult<T> = std::task::Poll<std::io::Result<T>>;

impl hyper::rt::Read for H2cIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> IoResult<()> {
        hyper::rt::Read::poll_read(std::pin::Pin::new(&mut self.get_mut().io), cx, buf)
    }
}

impl hyper::rt::Write for H2cIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> IoResult<usize> {
        hyper::rt::Write::poll_write(std::pin::Pin::new(&mut self.get_mut().io), cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> IoResult<usize> {
        hyper::rt::Write::poll_write_vectored(std::pin::Pin::new(&mut self.get_mut().io), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored && hyper::rt::Write::is_write_vectored(&self.io)
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> IoResult<()> {
        hyper::rt::Write::poll_flush(std::pin::Pin::new(&mut self.get_mut().io), cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> IoResult<()> {
        hyper::rt::Write::poll_shutdown(std::pin::Pin::new(&mut self.get_mut().io), cx)
    }
}

impl hyper_util::client::legacy::connect::Connection for H2cIo {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new().negotiated_h2()
    }
}

impl tower::Service<hyper::Uri> for H2cConnector {
    type Response = H2cIo;
    type Error = std::io::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<H2cIo>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> IoResult<()> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().unwrap_or("127.0.0.1").to_string();
            let sock = tokio::net::TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
            sock.set_nodelay(true)?;
            Ok(H2cIo {
                io: hyper_util::rt::TokioIo::new(sock),
                vectored: true,
            })
        })
    }
}

pub(crate) fn fail<T>(kind: &str, what: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{kind}: {what}"))
}

/// One stream of client `kind`: connects, reports the open to `gate`, then
/// reads until it has seen `want.events` events.
pub(crate) async fn run_stream(
    kind: &str,
    url: &str,
    clients: &Clients,
    want: Expect,
    gate: &Gate,
) -> Result<Tally, String> {
    let mut t = Tally::default();
    let mut opened = false;
    macro_rules! on_open {
        () => {{
            if opened {
                return fail(kind, "reconnected: the first connection lost events");
            }
            opened = true;
            gate.opened().await;
        }};
    }
    macro_rules! on_event {
        ($data_len:expr) => {{
            t.events += 1;
            t.data_bytes += $data_len as u64;
            if t.events == want.events {
                t.body_bytes = want.raw_bytes;
                return check(kind, t, want);
            }
        }};
    }
    match kind {
        "reqwest" => {
            let mut resp = clients
                .reqwest
                .get(url)
                .send()
                .await
                .or_else(|e| fail(kind, e))?;
            if !resp.status().is_success() {
                return fail(kind, resp.status());
            }
            gate.opened().await;
            while let Some(chunk) = resp.chunk().await.or_else(|e| fail(kind, e))? {
                t.body_bytes += chunk.len() as u64;
                if t.body_bytes >= want.raw_bytes {
                    if t.body_bytes != want.raw_bytes {
                        return fail(kind, format!("read {} body bytes", t.body_bytes));
                    }
                    // The ceiling parses nothing: its events are its bytes
                    // divided by the bytes per event, here exactly these.
                    t.events = want.events;
                    t.data_bytes = want.data_bytes;
                    return Ok(t);
                }
            }
        }
        "ssekit" => {
            // Over HTTP/2, the shared h2c client (the default pool would
            // spread 100 streams over several connections); otherwise the
            // default client, which decodes gzip.
            let mut es =
                if clients.h2 || std::env::var_os("SSEKIT_BENCH_SSEKIT_SHARED_CLIENT").is_some() {
                    ssekit::EventSource::builder(url)
                        .client(clients.reqwest.clone())
                        .build()
                } else if std::env::var_os("SSEKIT_BENCH_SSEKIT_NO_IDLE").is_some() {
                    // Diagnostic: the idle timer's share of the cost.
                    ssekit::EventSource::builder(url).idle_timeout(None).build()
                } else {
                    ssekit::EventSource::new(url)
                }
                .or_else(|e| fail(kind, e))?;
            while let Some(item) = es.next().await {
                match item.or_else(|e| fail(kind, e))? {
                    ssekit::Event::Open(_) => on_open!(),
                    ssekit::Event::Message(m) => on_event!(m.data().len()),
                    _ => {}
                }
            }
        }
        "sse-stream" => {
            let resp = clients
                .reqwest
                .get(url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .or_else(|e| fail(kind, e))?;
            if !resp.status().is_success() {
                return fail(kind, resp.status());
            }
            gate.opened().await;
            let mut s = sse_stream::SseByteStream::new(resp.bytes_stream());
            while let Some(item) = s.next().await {
                let sse = item.or_else(|e| fail(kind, e))?;
                if let Some(data) = sse.data {
                    on_event!(data.len());
                }
            }
        }
        "sseer" => {
            let mut es = sseer::EventSource::new(clients.reqwest.get(url))
                .or_else(|e| fail(kind, format!("{e:?}")))?;
            while let Some(item) = es.next().await {
                match item.or_else(|e| fail(kind, e))? {
                    sseer::reqwest::StreamEvent::Open => on_open!(),
                    sseer::reqwest::StreamEvent::Event(e) => on_event!(e.data.len()),
                }
            }
        }
        "reqwest-eventsource" => {
            let mut es = reqwest_eventsource::EventSource::new(clients.reqwest012.get(url))
                .or_else(|e| fail(kind, e))?;
            while let Some(item) = es.next().await {
                match item.or_else(|e| fail(kind, e))? {
                    reqwest_eventsource::Event::Open => on_open!(),
                    reqwest_eventsource::Event::Message(m) => on_event!(m.data.len()),
                }
            }
        }
        "eventsource-client" => {
            use eventsource_client::SSE;
            let client = clients.launchdarkly.as_ref().expect("built for this kind");
            let mut s = client.stream();
            while let Some(item) = s.next().await {
                match item.or_else(|e| fail(kind, format!("{e:?}")))? {
                    SSE::Connected(_) => on_open!(),
                    SSE::Event(e) => on_event!(e.data.len()),
                    SSE::Comment(_) => {}
                }
            }
        }
        _ => return fail(kind, "unknown client"),
    }
    fail(
        kind,
        format!("stream ended after {} of {} events", t.events, want.events),
    )
}

pub(crate) fn check(kind: &str, t: Tally, want: Expect) -> Result<Tally, String> {
    if t.events != want.events || t.data_bytes != want.data_bytes {
        return fail(
            kind,
            format!(
                "saw {} events with {} data bytes; expected {} with {}",
                t.events, t.data_bytes, want.events, want.data_bytes
            ),
        );
    }
    Ok(t)
}

pub(crate) fn runtime(kind: &str) -> tokio::runtime::Runtime {
    let mut b = if base_runtime(kind) == "ct1" {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    b.enable_all().build().unwrap()
}

/// How many times each stream reads its events over (in one body), so that
/// a run lasts long enough to time: the dashboard corpus is read fast.
pub(crate) fn repeat(corpus: &str) -> usize {
    let (var, default) = match corpus {
        "dashboard" => ("SSEKIT_BENCH_REPEAT_DASHBOARD", 8),
        _ => ("SSEKIT_BENCH_REPEAT_OPENAI", 1),
    };
    env_usize(var, default)
}

pub(crate) fn parse_meta(s: &str) -> Expect {
    let v: Vec<u64> = s
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    Expect {
        events: v[0],
        raw_bytes: v[1],
        data_bytes: v[2],
    }
}

pub(crate) fn client_main(kind: &str, corpus: &str, rt_kind: &str, streams: usize) {
    let addr = std::env::var("SSEKIT_BENCH_ADDR").expect("SSEKIT_BENCH_ADDR");
    let total = parse_meta(&plain_get(&addr, &format!("/meta/{corpus}")));
    let per_stream = events_per_stream(total.events as usize, streams, rt_kind);
    let k = repeat(corpus);
    let want = parse_meta(&plain_get(
        &addr,
        &format!("/meta/{corpus}?events={per_stream}&repeat={k}"),
    ));
    let h2 = row_h2(rt_kind);
    let (host, path) = if h2 {
        let h2_addr = std::env::var("SSEKIT_BENCH_H2_ADDR").expect("SSEKIT_BENCH_H2_ADDR");
        (h2_addr, "sse")
    } else if row_gzip(rt_kind) {
        (addr.clone(), "gz")
    } else {
        (addr.clone(), "sse")
    };
    let url = format!("http://{host}/{path}/{corpus}?events={per_stream}&repeat={k}");
    // HTTP/2: the server's counts before, to tell the connections this
    // client opened.
    let h2_before = h2.then(|| h2_stats(&addr));
    let rt = runtime(rt_kind);
    let clients = Arc::new(rt.block_on(async { Clients::new(kind, &url, h2) }));
    let gate = Arc::new(Gate::new(streams));
    let connect_start = Instant::now();
    let kind_owned = kind.to_string();
    let result: Result<Vec<Tally>, String> = rt.block_on(async {
        // `mt1spawn`: the one stream is a spawned task (on a worker, beside
        // reqwest's connection task) rather than `block_on`'s main thread.
        if streams == 1 && base_runtime(rt_kind) != "mt1spawn" {
            run_stream(kind, &url, &clients, want, &gate)
                .await
                .map(|t| vec![t])
        } else {
            let tasks: Vec<_> = (0..streams)
                .map(|_| {
                    let (kind, url, clients, gate) = (
                        kind_owned.clone(),
                        url.clone(),
                        clients.clone(),
                        gate.clone(),
                    );
                    tokio::spawn(
                        async move { run_stream(&kind, &url, &clients, want, &gate).await },
                    )
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.map_err(|e| e.to_string())??);
            }
            Ok(out)
        }
    });
    COUNTING.store(false, Relaxed);
    let (end, end_usage) = (Instant::now(), usage());
    let tallies = match result {
        Ok(t) => t,
        Err(e) => {
            eprintln!("FAILED {kind} {corpus} {rt_kind} x{streams}: {e}");
            std::process::exit(1);
        }
    };
    let (start, start_usage, rss_start) = gate.start.lock().unwrap().expect("all streams opened");
    let (allocs, alloc_bytes, _) = alloc_totals();
    // HTTP/2: all streams on one connection, one request each. Sockets
    // opened and closed without a request (a client racing to connect) are
    // reported, not failed.
    let h2_conns = h2_before.map(|before| {
        let after = h2_stats(&addr);
        let (tcp, used, requests) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
        if used != 1 || requests != streams as u64 {
            eprintln!(
                "FAILED {kind} {corpus} {rt_kind} x{streams}: {requests} requests on {used} HTTP/2 connections ({tcp} TCP connections); expected {streams} on one"
            );
            // Every request made, but over more than one connection: the
            // client's pool raced itself (see `H2_SPLIT_EXIT`).
            let split = used > 1 && requests == streams as u64;
            std::process::exit(if split { H2_SPLIT_EXIT } else { 1 });
        }
        (tcp, used)
    });
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let mut out = json!({
        "client": kind,
        "corpus": corpus,
        "runtime": rt_kind,
        "streams": streams,
        "repeat": k,
        "events": sum(|t| t.events),
        "bytes": sum(|t| t.body_bytes),
        "data_bytes": sum(|t| t.data_bytes),
        "wall_s": (end - start).as_secs_f64(),
        "open_s": (start - connect_start).as_secs_f64(),
        "cpu_s": (end_usage.user_s - start_usage.user_s) + (end_usage.sys_s - start_usage.sys_s),
        "cpu_user_s": end_usage.user_s - start_usage.user_s,
        "cpu_sys_s": end_usage.sys_s - start_usage.sys_s,
        "vol_ctx_switches": end_usage.nvcsw - start_usage.nvcsw,
        "invol_ctx_switches": end_usage.nivcsw - start_usage.nivcsw,
        "allocs": allocs,
        "alloc_bytes": alloc_bytes,
        "rss_kib_start": rss_start,
        "rss_kib_end": vm_rss_kib(),
    });
    if let Some((tcp, used)) = h2_conns {
        out["h2_tcp_connections"] = json!(tcp);
        out["h2_connections_used"] = json!(used);
    }
    println!("{out}");
    // Skip dropping runtimes and connections.
    std::process::exit(0);
}
