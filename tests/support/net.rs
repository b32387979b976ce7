//! Real servers for tests that need more than the scripted HTTP/1.1 server:
//! TLS with a given certificate, and HTTP/2 (h2c with prior knowledge, or
//! over TLS with ALPN) with a chosen concurrent-stream limit. Each counts
//! the connections it accepted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// A rustls server configuration for `cert`, with these protocol versions
/// (all safe defaults when `None`) and ALPN protocols.
pub fn tls_config(
    cert: &rcgen::CertifiedKey,
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsAcceptor {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ));
    let builder = match versions {
        Some(v) => builder.with_protocol_versions(v),
        None => builder.with_safe_default_protocol_versions(),
    };
    let mut config = builder
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Accepts connections on 127.0.0.1 for ever, counting them, and hands
/// each to `serve`.
async fn accept_loop<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(sock));
        }
    });
    (addr, accepted)
}

/// An HTTPS (HTTP/1.1) SSE server with `acceptor`: each connection whose
/// handshake succeeds gets `data: secure` and is then held open for a while.
pub async fn tls_sse_server(acceptor: tokio_rustls::TlsAcceptor) -> (SocketAddr, Arc<AtomicUsize>) {
    accept_loop(move |sock| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(sock).await else {
                return;
            };
            if read_head(&mut tls).await {
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                          transfer-encoding: chunked\r\n\r\n10\r\ndata: secure\n\n\r\n",
                    )
                    .await;
                let _ = tls.flush().await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    })
    .await
}

/// Reads up to the end of a request head; false when the peer went away.
async fn read_head(io: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Serves HTTP/2 on `io` allowing `limit` concurrent streams: each stream
/// gets `data: hi` and is then held open.
async fn serve_h2(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, limit: u32) {
    let service = hyper::service::service_fn(|_req| async {
        let first = futures::stream::once(async {
            Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from_static(
                b"data: hi\n\n",
            )))
        });
        let body = http_body_util::StreamBody::new(first.chain(futures::stream::pending()));
        Ok::<_, Infallible>(
            hyper::Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .unwrap(),
        )
    });
    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .max_concurrent_streams(limit)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// An h2c server (HTTP/2 with prior knowledge, no TLS) allowing `limit`
/// concurrent streams per connection.
pub async fn h2c_server(limit: u32) -> (SocketAddr, Arc<AtomicUsize>) {
    accept_loop(move |sock| serve_h2(sock, limit)).await
}

/// An HTTP/2-over-TLS server (ALPN `h2`) allowing `limit` concurrent
/// streams per connection; counts only connections whose handshake
/// succeeded.
pub async fn h2_tls_server(
    acceptor: tokio_rustls::TlsAcceptor,
    limit: u32,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let (addr, handshakes, _restart) = h2_tls_server_restartable(acceptor, limit).await;
    (addr, handshakes)
}

/// [`h2_tls_server`], with a switch that drops every connection open at
/// once (as a server restart does: each stream's connection resets); the
/// listener goes on accepting.
pub async fn h2_tls_server_restartable(
    acceptor: tokio_rustls::TlsAcceptor,
    limit: u32,
) -> (
    SocketAddr,
    Arc<AtomicUsize>,
    tokio::sync::watch::Sender<u64>,
) {
    let handshakes = Arc::new(AtomicUsize::new(0));
    let count = handshakes.clone();
    let (restart, restarts) = tokio::sync::watch::channel(0u64);
    let (addr, _) = accept_loop(move |sock| {
        let acceptor = acceptor.clone();
        let count = count.clone();
        let mut restarts = restarts.clone();
        async move {
            restarts.mark_unchanged();
            if let Ok(tls) = acceptor.accept(sock).await {
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                count.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    () = serve_h2(tls, limit) => {}
                    _ = restarts.changed() => {}
                }
            }
        }
    })
    .await;
    (addr, handshakes, restart)
}
