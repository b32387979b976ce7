//! The server process (`server` mode): a plain tokio HTTP/1.1 server and a
//! hyper h2c server that send the pre-rendered corpora as fast as the
//! sockets take them, and count HTTP/2 connections and requests; plus the
//! small blocking requests the other processes make to it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::H2cIo;
use crate::corpus::{
    dashboard_corpus, gzip_prefix, gzip_renderings, gzip_row_events, gzip_self_check, gzip_trailer,
    openai_corpus, push_chunk, Corpus, Frames, GzBody, CORPORA, GZIP_HEADER,
};
use crate::measure::raise_nofile;

/// HTTP/2 flow-control windows by default (per stream, per connection):
/// hyper's client defaults, made explicit, because eventsource-client's
/// transport exposes no HTTP/2 settings and so can only run with these.
/// Larger windows make every client faster on these rows, alike (3 short
/// rounds at 64 MiB, with 16 and 64 MiB: `openai` about 1.5x, `dashboard`
/// about 1.25x; the ratios to the ceiling about the same), so this row
/// measures the clients under hyper's default flow control.
pub(crate) const H2_DEFAULT_WINDOWS: (u32, u32) = (2 << 20, 5 << 20);

/// The HTTP/2 flow-control windows of the server and every client:
/// `SSEKIT_BENCH_H2_WINDOWS=<stream MiB>,<connection MiB>`, default
/// [`H2_DEFAULT_WINDOWS`]. With others, eventsource-client is not run on
/// the HTTP/2 rows (it could not have the same).
pub(crate) fn h2_windows() -> (u32, u32) {
    let Ok(v) = std::env::var("SSEKIT_BENCH_H2_WINDOWS") else {
        return H2_DEFAULT_WINDOWS;
    };
    let mib: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    match mib[..] {
        [stream, conn] => (stream << 20, conn << 20),
        _ => panic!("SSEKIT_BENCH_H2_WINDOWS={v}: expected <stream MiB>,<connection MiB>"),
    }
}

/// What the server serves and counts.
pub(crate) struct ServerState {
    pub(crate) corpora: Vec<Arc<Corpus>>,
    /// Per corpus: its gzip renderings.
    pub(crate) gz: Vec<Vec<GzBody>>,
    /// HTTP/2: TCP connections accepted, connections that carried at least
    /// one request, requests.
    pub(crate) h2_accepted: AtomicU64,
    pub(crate) h2_used: AtomicU64,
    pub(crate) h2_requests: AtomicU64,
}

pub(crate) fn server_main(mb: usize) {
    raise_nofile();
    let started = Instant::now();
    let corpora: Vec<Arc<Corpus>> = if mb == 0 {
        Vec::new()
    } else {
        vec![
            Arc::new(openai_corpus(mb << 20)),
            Arc::new(dashboard_corpus(mb << 20)),
        ]
    };
    let generate_s = started.elapsed().as_secs_f64();
    let gz: Vec<Vec<GzBody>> = CORPORA
        .iter()
        .zip(&corpora)
        .map(|(name, c)| {
            let gz = gzip_renderings(name, c);
            gzip_self_check(&gz, c);
            gz
        })
        .collect();
    let gzip_s = started.elapsed().as_secs_f64() - generate_s;
    let state = Arc::new(ServerState {
        corpora,
        gz,
        h2_accepted: AtomicU64::new(0),
        h2_used: AtomicU64::new(0),
        h2_requests: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // A backlog for 1,000 connections arriving at once (the kernel caps
        // it at net.core.somaxconn): a dropped SYN costs its client 1 s.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        let port = listener.local_addr().unwrap().port();
        let h2_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h2_port = h2_listener.local_addr().unwrap().port();
        let mut stats = serde_json::Map::new();
        for ((name, c), gz) in CORPORA.iter().zip(&state.corpora).zip(&state.gz) {
            stats.insert(
                name.to_string(),
                json!({
                    "events": c.events(),
                    "bytes": c.raw.len(),
                    "wire_bytes": c.wire.len(),
                    "chunks": c.chunks.len(),
                    "data_bytes": c.data_cum.last().copied().unwrap_or(0),
                    // The gzip rows' prefixes: events, raw and compressed
                    // bytes (chunked, as /gz/ sends them).
                    "gzip": gzip_row_events(c).into_iter().filter_map(|n| {
                        let (w, raw, _) = gzip_prefix(gz, c, n)?;
                        Some(json!({"events": n, "bytes": raw, "wire_bytes": w.len()}))
                    }).collect::<Vec<_>>(),
                }),
            );
        }
        println!("PORT {port}");
        println!("H2PORT {h2_port}");
        println!(
            "STATS {}",
            json!({"corpora": stats, "generate_s": generate_s, "gzip_s": gzip_s})
        );
        std::io::stdout().flush().unwrap();
        // The parent's end closes our stdin: then stop.
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        });
        let h2_state = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = h2_listener.accept().await else {
                    continue;
                };
                h2_state.h2_accepted.fetch_add(1, Relaxed);
                tokio::spawn(serve_h2(sock, h2_state.clone()));
            }
        });
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let _ = serve(sock, &state).await;
            });
        }
    });
}

/// h2c (HTTP/2 with prior knowledge) on one connection: `GET
/// /sse/<corpus>?events=N&repeat=k` gets the same events as over HTTP/1.1,
/// one DATA frame per piece of the chunked body.
pub(crate) async fn serve_h2(sock: tokio::net::TcpStream, state: Arc<ServerState>) {
    let _ = sock.set_nodelay(true);
    let used = Arc::new(AtomicBool::new(false));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        if !used.swap(true, Relaxed) {
            state.h2_used.fetch_add(1, Relaxed);
        }
        state.h2_requests.fetch_add(1, Relaxed);
        let target = req.uri().to_string();
        let path = req.uri().path();
        let found = path
            .strip_prefix("/sse/")
            .and_then(|name| CORPORA.iter().position(|c| *c == name))
            .and_then(|i| state.corpora.get(i));
        let resp = match found {
            Some(c) => hyper::Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(c.frames(
                    query(&target, "events").unwrap_or(c.events()),
                    query(&target, "repeat").unwrap_or(1),
                )),
            None => hyper::Response::builder()
                .status(404)
                .body(Frames::default()),
        };
        async move { Ok::<_, std::convert::Infallible>(resp.unwrap()) }
    });
    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .initial_stream_window_size(h2_windows().0)
        .initial_connection_window_size(h2_windows().1)
        .max_concurrent_streams(1000)
        .serve_connection(
            H2cIo {
                io: hyper_util::rt::TokioIo::new(sock),
                vectored: false,
            },
            service,
        )
        .await;
}

/// The value of `name` in the query of `target`.
pub(crate) fn query(target: &str, name: &str) -> Option<usize> {
    let (_, q) = target.split_once('?')?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

pub(crate) async fn serve(
    mut sock: tokio::net::TcpStream,
    state: &ServerState,
) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(2048);
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut tmp = [0u8; 2048];
            let n = sock.read(&mut tmp).await?;
            if n == 0 || buf.len() > 65536 {
                return Ok(());
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("/");
        let corpus = |prefix: &str| {
            let name = path.strip_prefix(prefix)?;
            let i = CORPORA.iter().position(|c| *c == name)?;
            Some((state.corpora.get(i)?, state.gz.get(i)?))
        };
        const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
        const SSE_HEAD_GZIP: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n";
        if let Some((c, _)) = corpus("/sse/") {
            let events = query(&target, "events").unwrap_or(c.events());
            let (whole, tail) = c.body(events);
            sock.write_all(SSE_HEAD).await?;
            // `repeat=k`: the same events k times over, one body.
            for _ in 0..query(&target, "repeat").unwrap_or(1) {
                sock.write_all(whole).await?;
                sock.write_all(&tail).await?;
            }
            sock.write_all(b"0\r\n\r\n").await?;
        } else if let Some((c, gz)) = corpus("/gz/") {
            // Always gzip, whatever the request's Accept-Encoding says: a
            // client that cannot decode it is not run on these rows.
            let events = query(&target, "events").unwrap_or(c.events());
            let Some((pieces, raw_bytes, crc)) = gzip_prefix(gz, c, events) else {
                sock.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await?;
                return Ok(());
            };
            let repeat = query(&target, "repeat").unwrap_or(1);
            let mut head = SSE_HEAD_GZIP.to_vec();
            push_chunk(&mut head, &GZIP_HEADER);
            sock.write_all(&head).await?;
            for _ in 0..repeat {
                sock.write_all(pieces).await?;
            }
            let mut end = gzip_trailer(raw_bytes, crc, repeat);
            end.extend_from_slice(b"0\r\n\r\n");
            sock.write_all(&end).await?;
        } else if path == "/h2stats" {
            let body = format!(
                "{} {} {}\n",
                state.h2_accepted.load(Relaxed),
                state.h2_used.load(Relaxed),
                state.h2_requests.load(Relaxed)
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            return Ok(());
        } else if let Some((c, _)) = corpus("/meta/") {
            let p = c.prefix(query(&target, "events").unwrap_or(c.events()));
            let k = query(&target, "repeat").unwrap_or(1) as u64;
            let body = format!(
                "{} {} {}\n",
                p.events as u64 * k,
                p.raw_bytes as u64 * k,
                p.data_bytes * k
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await?;
            return Ok(());
        } else if path == "/idle" {
            sock.write_all(SSE_HEAD).await?;
            let first = b"data: {\"hello\":\"idle\"}\n\n";
            let mut chunk = format!("{:x}\r\n", first.len()).into_bytes();
            chunk.extend_from_slice(first);
            chunk.extend_from_slice(b"\r\n");
            sock.write_all(&chunk).await?;
            let beat = b": heartbeat\n\n";
            let mut beat_chunk = format!("{:x}\r\n", beat.len()).into_bytes();
            beat_chunk.extend_from_slice(beat);
            beat_chunk.extend_from_slice(b"\r\n");
            // Until the client goes: a closed socket is noticed at once
            // (a read returns 0), not at the next heartbeat's failed write,
            // so that 10,000 streams of one client are gone before the next
            // client opens its own (the server's file limit holds both
            // otherwise).
            let mut sink = [0u8; 512];
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        sock.write_all(&beat_chunk).await?;
                    }
                    n = sock.read(&mut sink) => {
                        if n? == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        } else {
            sock.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await?;
            return Ok(());
        }
    }
}

/// The server's HTTP/2 counts: (TCP connections accepted, connections that
/// carried a request, requests).
pub(crate) fn h2_stats(addr: &str) -> (u64, u64, u64) {
    let v: Vec<u64> = plain_get(addr, "/h2stats")
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    (v[0], v[1], v[2])
}

/// A blocking `GET` with HTTP/1.0 (the server closes after answering).
pub(crate) fn plain_get(addr: &str, target: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the bench server");
    write!(s, "GET {target} HTTP/1.0\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {target}: {head}");
    body.to_string()
}
