//! Sharing HTTP clients between streams without hitting HTTP/2's
//! concurrent-stream limit (SPEC rule 28).
//!
//! One `reqwest::Client` keeps one HTTP/2 connection per origin, and a
//! server allows only so many streams on a connection (100 is common):
//! further streams queue inside the client, silently. A [`ClientPool`]
//! hands each stream a client that carries fewer than its
//! `max_streams_per_client`, building another client when all are full, so
//! 1,000 streams to one origin open ten connections instead of waiting.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::gate::{Admission, Gates};
use crate::Error;

/// The default [`ClientPool::max_streams_per_client`]: 100, the
/// `SETTINGS_MAX_CONCURRENT_STREAMS` that many servers (hypercorn, h2o,
/// Jetty) send and the smallest that the specification recommends.
pub const DEFAULT_STREAMS_PER_CLIENT: usize = 100;

type Factory = dyn Fn() -> reqwest::ClientBuilder + Send + Sync;

/// A set of `reqwest::Client`s shared by many streams, with at most
/// [`max_streams_per_client`](Self::max_streams_per_client) streams on each.
///
/// Streams built without [`client`](crate::EventSourceBuilder::client) or
/// [`client_pool`](crate::EventSourceBuilder::client_pool) share one
/// process-wide pool of clients made with reqwest's defaults (which route
/// through the proxies of `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and
/// `NO_PROXY`). Give streams a pool of your own for an explicit proxy, TLS
/// roots, timeouts or HTTP/2 settings: its factory returns a configured
/// `reqwest::ClientBuilder`, and the pool builds a client from it whenever
/// the clients it has are full.
///
/// A stream takes its place on a client when it is built and gives it back
/// when it is dropped or ends. A client built by a pool does not follow
/// redirects itself: the stream does, so that credentials are dropped when a
/// redirect leaves the origin (SPEC rule 22).
///
/// Each client a factory's builder makes loads its own TLS roots (with
/// rustls, the system's: about 100 KiB); a factory for many clients can
/// return `tls_backend_preconfigured` with one shared `rustls::ClientConfig`,
/// as the default pool does.
///
/// With HTTP/1.1 every stream has a connection of its own anyway; the pool
/// then only spreads streams over several connection pools, at no cost.
///
/// Over TLS a client learns that an origin speaks HTTP/2 only from its first
/// handshake (ALPN): streams started all at once on a new client would race
/// that handshake, each opening a connection of its own (1,000 streams
/// opened about 900). So, per client and HTTPS origin, the first stream to
/// connect goes alone; the others wait until its response head shows the
/// connection works (3 s at most), then share it. A connection that fails
/// (reset, refused) makes the next reconnection go alone again, so a mass
/// reconnection after a server restart opens one connection per client
/// too. Plain `http` origins are not gated.
///
/// | setting | default |
/// |---|---|
/// | factory | `reqwest::Client::builder`, with one TLS configuration shared by all the pool's clients (see [`Default`](#impl-Default-for-ClientPool)) |
/// | [`max_streams_per_client`](Self::max_streams_per_client) | 100 ([`DEFAULT_STREAMS_PER_CLIENT`]) |
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ssekit::{ClientPool, EventSource};
///
/// let pool = ClientPool::new(|| {
///     reqwest::Client::builder()
///         .connect_timeout(Duration::from_secs(5))
///         .http2_prior_knowledge() // an h2c server
/// })
/// .max_streams_per_client(50);
/// let streams: Vec<EventSource> = (0..200)
///     .map(|i| {
///         EventSource::builder(format!("http://127.0.0.1:8080/feed/{i}"))
///             .client_pool(pool.clone())
///             .build()
///     })
///     .collect::<Result<_, _>>()?;
/// assert_eq!(pool.client_count(), 4);
/// # Ok::<(), ssekit::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    factory: Box<Factory>,
    /// Its clients use the proxies of the environment and system (see
    /// [`ClientPool::system_proxies`]), so an error can name the one it went
    /// through.
    system_proxies: AtomicBool,
    per_client: AtomicUsize,
    clients: Mutex<Vec<Entry>>,
}

struct Entry {
    client: reqwest::Client,
    streams: usize,
    /// Which origins this client has a working connection to (see
    /// `gate.rs`).
    gates: Gates,
}

impl fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clients = lock(&self.inner.clients);
        f.debug_struct("ClientPool")
            .field(
                "max_streams_per_client",
                &self.inner.per_client.load(Ordering::Relaxed),
            )
            .field("clients", &clients.len())
            .field("streams", &clients.iter().map(|e| e.streams).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl Default for ClientPool {
    /// A pool of clients with reqwest's defaults. With the `rustls` feature
    /// (and not `native-tls`, which reqwest then prefers) its clients share
    /// one TLS configuration, made as reqwest makes its
    /// own (the system's roots through the platform verifier, the process's
    /// default crypto provider or aws-lc-rs, ALPN `h2` and `http/1.1`), so
    /// the system's root certificates are loaded once, not once per client.
    fn default() -> Self {
        ClientPool::new(default_builder).system_proxies(true)
    }
}

/// `reqwest::Client::builder()`, with the shared TLS configuration when
/// there is one.
fn default_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
    if let Some(tls) = shared_tls() {
        return builder.tls_backend_preconfigured(tls.clone());
    }
    builder
}

/// The TLS configuration of the default pool's clients: what reqwest builds
/// for a client with default settings, built once. `None` when it cannot be
/// built (no root certificates on the system, say): each client then builds
/// its own, and reports the failure as reqwest does.
#[cfg(all(feature = "rustls", not(feature = "native-tls")))]
fn shared_tls() -> Option<&'static rustls::ClientConfig> {
    static TLS: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    TLS.get_or_init(|| {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .inspect_err(|e| tracing::debug!(error = %e, "no shared TLS configuration"))
            .ok()?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![
            #[cfg(feature = "http2")]
            b"h2".to_vec(),
            b"http/1.1".to_vec(),
        ];
        Some(tls)
    })
    .as_ref()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few counter updates: poisoning cannot
    // leave the pool inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientPool {
    /// A pool whose clients are built from `factory`'s builders (the pool
    /// turns off their redirect following; see the type's docs).
    pub fn new<F>(factory: F) -> Self
    where
        F: Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    {
        ClientPool {
            inner: Arc::new(PoolInner {
                factory: Box::new(factory),
                system_proxies: AtomicBool::new(false),
                per_client: AtomicUsize::new(DEFAULT_STREAMS_PER_CLIENT),
                clients: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Declares that the factory's clients route requests as reqwest's
    /// defaults do, through the proxies of `HTTP_PROXY`, `HTTPS_PROXY`,
    /// `ALL_PROXY` less `NO_PROXY` (and the system's settings with the
    /// `system-proxy` feature): it set no `proxy` or `no_proxy` of its own.
    /// An error of a request that went through such a proxy then names it
    /// ([`Error::proxy`](crate::Error::proxy)). Default: on for
    /// [`ClientPool::default`] (and the pool shared by streams built
    /// without one), off for [`new`](Self::new), whose factory may set
    /// proxies the stream cannot see.
    pub fn system_proxies(self, on: bool) -> Self {
        self.inner.system_proxies.store(on, Ordering::Relaxed);
        self
    }

    /// The most streams one client carries (at least 1): set it to the
    /// server's HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` or below. It applies
    /// to every clone of the pool, from the next stream on. Default: 100.
    #[must_use]
    pub fn max_streams_per_client(self, streams: usize) -> Self {
        self.inner
            .per_client
            .store(streams.max(1), Ordering::Relaxed);
        self
    }

    /// How many clients the pool has built.
    pub fn client_count(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// How many streams hold a place on one of the pool's clients.
    pub fn stream_count(&self) -> usize {
        lock(&self.inner.clients).iter().map(|e| e.streams).sum()
    }

    /// Takes a place for one stream on a client with room, building a new
    /// client when none has.
    pub(crate) fn lease(&self) -> Result<Lease, Error> {
        let mut clients = lock(&self.inner.clients);
        let per_client = self.inner.per_client.load(Ordering::Relaxed);
        let index = match clients.iter().position(|e| e.streams < per_client) {
            Some(i) => i,
            None => {
                let client = (self.inner.factory)()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| {
                        Error::builder(format!("building an HTTP client for the pool failed: {e}"))
                    })?;
                clients.push(Entry {
                    client,
                    streams: 0,
                    gates: Gates::default(),
                });
                clients.len() - 1
            }
        };
        clients[index].streams += 1;
        Ok(Lease {
            client: clients[index].client.clone(),
            pool: self.inner.clone(),
            index,
            probing: None,
        })
    }

    /// The pool shared by every stream built without a client of its own.
    pub(crate) fn global() -> &'static ClientPool {
        static POOL: OnceLock<ClientPool> = OnceLock::new();
        POOL.get_or_init(ClientPool::default)
    }
}

/// One stream's place on a pooled client; given back when dropped.
pub(crate) struct Lease {
    pub(crate) client: reqwest::Client,
    pool: Arc<PoolInner>,
    index: usize,
    /// The origin this stream is probing for its client, if it is.
    probing: Option<Box<str>>,
}

impl Lease {
    fn gates<R>(&self, f: impl FnOnce(&mut Gates) -> R) -> Option<R> {
        lock(&self.pool.clients)
            .get_mut(self.index)
            .map(|entry| f(&mut entry.gates))
    }

    /// Admits this stream's next connection to `origin` (see `gate.rs`):
    /// `Wait` means another stream is finding out whether a connection
    /// works; `waker` is woken when it knows.
    pub(crate) fn admit(&mut self, origin: &str, waker: &std::task::Waker) -> Admission {
        if self.probing.as_deref() == Some(origin) {
            // Ours already (an attempt restarted while probing).
            return Admission::Probe;
        }
        let admission = self
            .gates(|g| g.admit(origin, waker))
            .unwrap_or(Admission::Go);
        if admission == Admission::Probe {
            self.probing = Some(origin.into());
        }
        admission
    }

    /// This stream's probe ended: a response head arrived (`ok`), or not.
    pub(crate) fn probed(&mut self, ok: bool) {
        if let Some(origin) = self.probing.take() {
            self.gates(|g| g.probed(&origin, ok));
        }
    }

    /// A connection to `origin` failed: the next stream to connect probes.
    pub(crate) fn cool(&mut self, origin: &str) {
        self.probed(false);
        self.gates(|g| g.cool(origin));
    }

    /// Whether this client routes through the environment's and system's
    /// proxies as reqwest's defaults do (the default pool's clients).
    pub(crate) fn system_proxies(&self) -> bool {
        self.pool.system_proxies.load(Ordering::Relaxed)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A stream that ends while probing hands the probe on.
        self.probed(false);
        if let Some(entry) = lock(&self.pool.clients).get_mut(self.index) {
            entry.streams = entry.streams.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_fill_clients_in_turn_and_places_are_given_back() {
        let pool = ClientPool::default().max_streams_per_client(3);
        let leases: Vec<Lease> = (0..7).map(|_| pool.lease().unwrap()).collect();
        assert_eq!(pool.client_count(), 3);
        assert_eq!(pool.stream_count(), 7);
        let indexes: Vec<usize> = leases.iter().map(|l| l.index).collect();
        assert_eq!(indexes, [0, 0, 0, 1, 1, 1, 2]);
        drop(leases.into_iter().nth(1)); // all dropped; one kept below
        assert_eq!(pool.stream_count(), 0);
        let again = pool.lease().unwrap();
        assert_eq!(
            again.index, 0,
            "a freed place is reused before a new client"
        );
        assert_eq!(
            pool.client_count(),
            3,
            "no client is built while one has room"
        );
    }
}
