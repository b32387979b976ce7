//! The HTTP side shared by every subcommand: the request flags
//! ([`RequestArgs`]: method, headers, body, TLS, proxy), the request they
//! describe ([`Request`]) with a `reqwest::ClientBuilder` factory for its
//! TLS and proxy settings, and redirects followed by the library's rules
//! (SPEC rule 22) for the subcommands that make their own requests
//! (`check`, `record`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, StatusCode};
use ssekit::{redact_url, strip_credential_headers};

use crate::values::{parse_data, parse_header, parse_method, Body};

/// The most redirects followed for one request, as the library (and
/// browsers) do.
const MAX_REDIRECTS: usize = 10;

/// The request: how to connect and what to send.
#[derive(Debug, Args, Clone)]
pub struct RequestArgs {
    /// Request method (default GET, or POST with -d)
    #[arg(short = 'X', long = "request", value_name = "METHOD", value_parser = parse_method)]
    pub method: Option<reqwest::Method>,
    /// Add a request header (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'N: V'", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Request body; @FILE reads it from a file. A body that parses as JSON
    /// is sent with Content-Type: application/json unless -H sets one
    #[arg(short = 'd', long = "data", value_name = "BODY", value_parser = parse_data)]
    pub data: Option<Body>,
    /// Trust the certificates of this PEM file (one or more), besides the
    /// system's roots
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Accept any TLS certificate (insecure: for tests only)
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Send every request through this proxy (http://, https://;
    /// http:// when no scheme is given). Credentials in it
    /// (http://user:password@host:port) go to the proxy and are never
    /// printed. Default: the proxy of HTTP_PROXY, HTTPS_PROXY or ALL_PROXY
    /// (and the system's on macOS and Windows)
    #[arg(short = 'x', long = "proxy", value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts reached without a proxy, as NO_PROXY, which it replaces:
    /// comma-separated host names (each with its subdomains), IP addresses
    /// and CIDR ranges, or * for no proxy at all
    #[arg(long = "noproxy", value_name = "LIST")]
    pub noproxy: Option<String>,
}

/// Makes the `reqwest::ClientBuilder`s of every connection, with the TLS
/// settings of the flags applied.
pub type Factory = Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>;

/// The request the flags describe, checked.
pub struct Request {
    pub method: Method,
    /// The -H headers, in order, plus `Content-Type: application/json` for
    /// a JSON body when -H set no content type.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub factory: Factory,
    /// The proxy of -x, redacted, for messages.
    pub proxy: Option<String>,
    /// Neither -x nor --noproxy: requests route through the environment's
    /// proxies as reqwest's defaults do (the library can then name one
    /// that failed).
    pub environment_proxies: bool,
}

impl Request {
    /// # Errors
    ///
    /// A message for bad usage: an unreadable or empty --cacert file.
    pub fn from_args(a: &RequestArgs) -> Result<Request, String> {
        let method = match (&a.method, &a.data) {
            (Some(m), _) => m.clone(),
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        let mut headers = a.headers.clone();
        let has_type = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
        if let Some(body) = &a.data {
            if !has_type && serde_json::from_slice::<serde_json::Value>(&body.0).is_ok() {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
        }
        let (proxies, proxy) = proxies(a)?;
        let factory = factory(a, proxies)?;
        Ok(Request {
            method,
            headers,
            body: a.data.clone().map(|b| b.0),
            factory,
            proxy,
            environment_proxies: a.proxy.is_none() && a.noproxy.is_none(),
        })
    }

    /// The headers as a map, for a plain reqwest request (the event source
    /// takes them one by one, so that it reports a bad one itself).
    ///
    /// # Errors
    ///
    /// A message naming an invalid header.
    pub fn header_map(&self) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::new();
        for (n, v) in &self.headers {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("invalid header name {n:?}"))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {n:?}"))?;
            map.append(name, value);
        }
        Ok(map)
    }

    /// A plain client (for `check` and `record`). It follows no redirects:
    /// [`send`](Self::send) does.
    ///
    /// # Errors
    ///
    /// The reason the client could not be built.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        (self.factory)()
            .build()
            .map_err(|e| format!("building the HTTP client failed: {e}"))
    }

    /// A request as an SSE client sends it: the -H headers with
    /// `text/event-stream` in `Accept` and `Cache-Control: no-cache` unless
    /// they say otherwise, and `Last-Event-ID` when `id` is not empty.
    ///
    /// # Errors
    ///
    /// A message naming an invalid header.
    pub fn build(
        &self,
        client: &reqwest::Client,
        url: &str,
        id: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        // The caller's Accept and Cache-Control are kept, text/event-stream
        // added to an Accept that does not accept it (SPEC rule 17).
        let mut headers = self.header_map()?;
        ssekit::add_sse_headers(&mut headers);
        let mut rb = client.request(self.method.clone(), url).headers(headers);
        if !id.is_empty() {
            rb = rb.header("last-event-id", id);
        }
        if let Some(b) = &self.body {
            rb = rb.body(b.clone());
        }
        Ok(rb)
    }

    /// Sends `rb` with `client` (one of [`client`](Self::client)'s, which
    /// follow no redirects) and follows redirects as the library does (SPEC
    /// rule 22): 301, 302, 303, 307 and 308 with a `Location` (relative
    /// ones included), at most ten, no loops, http and https only. A hop
    /// to another origin than that of the request just sent drops every
    /// credential header, and they stay dropped for the later hops: an API
    /// key must not reach whatever host a redirect names. 303, and 301 or
    /// 302 after a POST, become a GET without a body, as in browsers.
    ///
    /// A redirect without a usable `Location` is returned as the response.
    ///
    /// # Errors
    ///
    /// A message for a request that failed or a redirect not followed, with
    /// URLs redacted.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let mut next = rb
            .build()
            .map_err(|e| format!("invalid request: {}", chain(&e.without_url())))?;
        let mut visited = vec![next.url().clone()];
        loop {
            let url = next.url().clone();
            let copy = next.try_clone();
            let response = client.execute(next).await.map_err(|e| {
                // SPEC rule 29: a failure may be the proxy's; name it.
                let through = match &self.proxy {
                    Some(p) => format!(" through the proxy {p}"),
                    None => String::new(),
                };
                format!(
                    "request to {}{through} failed: {}",
                    redact_url(&url),
                    chain(&e.without_url())
                )
            })?;
            let status = response.status();
            if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let (Some(mut copy), Some(target)) = (
                copy,
                response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok()),
            ) else {
                return Ok(response);
            };
            if !matches!(target.scheme(), "http" | "https") {
                return Err(format!(
                    "redirect not followed: {} redirects to the unsupported scheme {:?}",
                    redact_url(&url),
                    target.scheme()
                ));
            }
            if visited.contains(&target) {
                return Err(format!(
                    "redirect not followed: redirect loop: {} leads back to {}",
                    redact_url(&url),
                    redact_url(&target)
                ));
            }
            if visited.len() > MAX_REDIRECTS {
                return Err(format!(
                    "redirect not followed: too many redirects (more than {MAX_REDIRECTS}), last to {}",
                    redact_url(&target)
                ));
            }
            if target.origin() != url.origin() {
                strip_credential_headers(copy.headers_mut());
            }
            let to_get = status == StatusCode::SEE_OTHER && copy.method() != Method::HEAD
                || matches!(status.as_u16(), 301 | 302) && copy.method() == Method::POST;
            if to_get {
                *copy.method_mut() = Method::GET;
                *copy.body_mut() = None;
                for name in [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING] {
                    copy.headers_mut().remove(name);
                }
            }
            *copy.url_mut() = target.clone();
            visited.push(target);
            next = copy;
        }
    }
}

/// The start of a response body, at most `limit` bytes and whatever
/// arrived within two seconds, as text (invalid UTF-8 replaced): to show
/// why a server refused, without holding a hostile body in memory or
/// waiting on one that never ends.
pub async fn body_start(mut resp: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    let read = async {
        while body.len() < limit {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read).await;
    String::from_utf8_lossy(&body).into_owned()
}

/// A URL as the CLI shows it: with its password and credential query
/// parameters redacted (SPEC rule 22).
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => redact_url(&u).to_string(),
        Err(_) => url.to_owned(),
    }
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(&format!(": {c}"));
        source = c.source();
    }
    s
}

/// The proxies of -x and --noproxy, for every client the CLI builds.
#[derive(Clone, Default)]
pub struct Proxies {
    /// `None`: reqwest's own choice (the environment's proxies and
    /// NO_PROXY, the system's). `Some`: exactly these (none for
    /// `--noproxy '*'`).
    explicit: Option<Vec<reqwest::Proxy>>,
}

impl Proxies {
    fn apply(&self, mut b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if let Some(list) = &self.explicit {
            b = b.no_proxy();
            for p in list {
                b = b.proxy(p.clone());
            }
        }
        b
    }
}

/// The proxies the flags ask for, and the -x proxy redacted for messages.
///
/// -x replaces the environment's proxies, with --noproxy (else NO_PROXY)
/// as its exclusions; --noproxy alone keeps the proxies of HTTP_PROXY,
/// HTTPS_PROXY and ALL_PROXY with its own exclusions instead of NO_PROXY,
/// and `--noproxy '*'` turns every proxy off, as in curl.
///
/// # Errors
///
/// A message for an invalid proxy URL, with its credentials redacted.
fn proxies(a: &RequestArgs) -> Result<(Proxies, Option<String>), String> {
    let exclusions = |list: &str| reqwest::NoProxy::from_string(list);
    match (&a.proxy, &a.noproxy) {
        (None, None) => Ok((Proxies::default(), None)),
        (Some(given), noproxy) => {
            let with_scheme = if given.contains("://") {
                given.clone()
            } else {
                format!("http://{given}")
            };
            let url = reqwest::Url::parse(&with_scheme)
                .map_err(|e| format!("--proxy: invalid proxy URL ({e})"))?;
            let shown = redact_url(&url).to_string();
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "--proxy {shown}: the scheme {:?} is not http or https",
                    url.scheme()
                ));
            }
            let proxy = reqwest::Proxy::all(url.as_str())
                .map_err(|e| format!("--proxy {shown}: {}", chain(&e.without_url())))?
                .no_proxy(match noproxy {
                    Some(list) => exclusions(list),
                    None => reqwest::NoProxy::from_env(),
                });
            Ok((
                Proxies {
                    explicit: Some(vec![proxy]),
                },
                Some(shown),
            ))
        }
        (None, Some(list)) if list.trim() == "*" => Ok((
            Proxies {
                explicit: Some(Vec::new()),
            },
            None,
        )),
        (None, Some(list)) => {
            let env = |names: [&str; 2]| {
                names
                    .iter()
                    .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
            };
            let mut list_of = Vec::new();
            type MakeProxy = fn(&str) -> reqwest::Result<reqwest::Proxy>;
            let kinds: [([&str; 2], MakeProxy); 3] = [
                (["HTTP_PROXY", "http_proxy"], |u| reqwest::Proxy::http(u)),
                (["HTTPS_PROXY", "https_proxy"], |u| reqwest::Proxy::https(u)),
                (["ALL_PROXY", "all_proxy"], |u| reqwest::Proxy::all(u)),
            ];
            for (names, make) in kinds {
                if let Some(url) = env(names) {
                    let proxy = make(&url).map_err(|e| {
                        format!(
                            "{}: invalid proxy URL: {}",
                            names[0],
                            chain(&e.without_url())
                        )
                    })?;
                    list_of.push(proxy.no_proxy(exclusions(list)));
                }
            }
            Ok((
                Proxies {
                    explicit: Some(list_of),
                },
                None,
            ))
        }
    }
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
fn factory(a: &RequestArgs, proxies: Proxies) -> Result<Factory, String> {
    let certs = match &a.cacert {
        None => Vec::new(),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("--cacert: reading {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--cacert: {} is not a PEM file: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--cacert: no certificate in {} (expected PEM)",
                    path.display()
                ));
            }
            certs
        }
    };
    let insecure = a.insecure;
    Ok(Arc::new(move || {
        let mut b =
            proxies.apply(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()));
        if !certs.is_empty() {
            b = b.tls_certs_merge(certs.clone());
        }
        if insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        b
    }))
}

#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
fn factory(a: &RequestArgs, proxies: Proxies) -> Result<Factory, String> {
    if a.cacert.is_some() || a.insecure {
        return Err(
            "--cacert and --insecure need a build with TLS (feature rustls or native-tls)".into(),
        );
    }
    Ok(Arc::new(move || {
        proxies.apply(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()))
    }))
}
