//! Keeping secrets out of logs, `Debug` output and errors (SPEC rule 22):
//! which headers carry credentials, and URLs with their passwords and
//! credential query parameters hidden.
//!
//! Two functions are public, for code that makes its own requests and must
//! follow the same rules (the `ssekit` command-line tool does):
//! [`strip_credential_headers`] and [`redact_url`].

use std::borrow::Cow;
use std::fmt;

use reqwest::header::{HeaderMap, HeaderName};
use url::Url;

/// What a hidden value is replaced with.
const HIDDEN: &str = "redacted";

/// Request headers that carry credentials whatever the caller says: never
/// sent to another origin after a redirect, and shown as `Sensitive` in
/// `Debug` output.
pub(crate) const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];

/// Whether `name` is a credential header, or one the caller marked.
pub(crate) fn is_credential(name: &HeaderName, extra: &[HeaderName]) -> bool {
    CREDENTIAL_HEADERS.contains(&name.as_str()) || extra.contains(name)
}

/// Marks every credential header's values sensitive, so that `HeaderMap`'s
/// `Debug` shows them as `Sensitive`.
pub(crate) fn mark_sensitive(headers: &mut HeaderMap, extra: &[HeaderName]) {
    for (name, value) in headers.iter_mut() {
        if is_credential(name, extra) {
            value.set_sensitive(true);
        }
    }
}

/// Removes the credential headers, before a request goes to another origin:
/// those of [`CREDENTIAL_HEADERS`], those named in `extra`, and any with a
/// value marked sensitive.
pub(crate) fn strip_credentials(headers: &mut HeaderMap, extra: &[HeaderName]) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            is_credential(name, extra) || headers.get_all(*name).iter().any(|v| v.is_sensitive())
        })
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Removes every header that carries credentials, as a client must before
/// it follows a redirect to another origin (scheme, host and port): the
/// headers `Authorization`, `Proxy-Authorization`, `Cookie`, `x-api-key`
/// and `api-key`, and any header with a value marked sensitive
/// ([`HeaderValue::set_sensitive`](reqwest::header::HeaderValue::set_sensitive)).
/// An [`EventSource`](crate::EventSource) does this itself; this is for
/// code that follows redirects with its own requests.
///
/// # Example
///
/// ```
/// use reqwest::header::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-api-key", HeaderValue::from_static("k"));
/// let mut tenant = HeaderValue::from_static("t");
/// tenant.set_sensitive(true);
/// headers.insert("x-tenant-token", tenant);
/// headers.insert("accept", HeaderValue::from_static("text/event-stream"));
/// ssekit::strip_credential_headers(&mut headers);
/// assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
/// ```
pub fn strip_credential_headers(headers: &mut HeaderMap) {
    strip_credentials(headers, &[]);
}

/// Whether a query parameter of this name is likely to carry a credential:
/// browsers cannot set headers on an `EventSource`, so many SSE servers take
/// tokens in the query string.
fn is_credential_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const EXACT: [&str; 14] = [
        "token",
        "access_token",
        "auth",
        "authorization",
        "key",
        "api_key",
        "apikey",
        "api-key",
        "sig",
        "signature",
        "password",
        "secret",
        "code",
        "jwt",
    ];
    const SUFFIXES: [&str; 6] = ["token", "secret", "password", "_key", "-key", "signature"];
    EXACT.contains(&name.as_str())
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.starts_with("x-amz-")
}

/// `url` without its password and the values of credential query
/// parameters (`token`, `access_token`, `api_key`, `sig`, names ending in
/// `token`, `secret`, `_key` and the like, `X-Amz-*`), each replaced with
/// `redacted`; borrowed when there is nothing to hide. What ssekit shows of
/// a URL in logs, errors and `Debug` output.
///
/// # Example
///
/// ```
/// let url = reqwest::Url::parse("https://u:pw@h/s?access_token=abc&room=7").unwrap();
/// assert_eq!(
///     ssekit::redact_url(&url).as_str(),
///     "https://u:redacted@h/s?access_token=redacted&room=7"
/// );
/// ```
pub fn redact_url(url: &Url) -> Cow<'_, Url> {
    let hide_password = url.password().is_some();
    let hide_query = url.query_pairs().any(|(k, _)| is_credential_param(&k));
    if !hide_password && !hide_query {
        return Cow::Borrowed(url);
    }
    let mut out = url.clone();
    if hide_password {
        let _ = out.set_password(Some(HIDDEN));
    }
    if hide_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_credential_param(&k) {
                    HIDDEN.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        out.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Cow::Owned(out)
}

/// Displays a URL with its secrets hidden (see [`redact_url`]).
pub(crate) struct Redacted<'a>(pub(crate) &'a Url);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redact_url(self.0).as_str())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(redact_url(self.0).as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn urls_hide_passwords_and_credential_parameters() {
        let cases = [
            ("http://h/x?a=1", "http://h/x?a=1"),
            ("http://u:pw@h/x", "http://u:redacted@h/x"),
            ("http://u@h/x", "http://u@h/x"),
            (
                "http://h/s?token=abc&room=7",
                "http://h/s?token=redacted&room=7",
            ),
            (
                "http://h/s?Access_Token=abc&api_key=k&sig=s&page=2",
                "http://h/s?Access_Token=redacted&api_key=redacted&sig=redacted&page=2",
            ),
            (
                "http://h/s?X-Amz-Signature=abc&refresh_token=r",
                "http://h/s?X-Amz-Signature=redacted&refresh_token=redacted",
            ),
        ];
        for (input, want) in cases {
            let url: Url = input.parse().unwrap();
            assert_eq!(Redacted(&url).to_string(), want, "{input}");
        }
    }

    #[test]
    fn credential_headers_are_marked_and_stripped() {
        let custom = HeaderName::from_static("x-tenant-secret");
        let mut h = HeaderMap::new();
        for name in [
            "authorization",
            "x-api-key",
            "api-key",
            "cookie",
            "x-tenant-secret",
            "x-trace",
        ] {
            h.insert(name, HeaderValue::from_static("v"));
        }
        mark_sensitive(&mut h, std::slice::from_ref(&custom));
        let shown = format!("{h:?}");
        assert_eq!(shown.matches("Sensitive").count(), 5, "{shown}");
        strip_credentials(&mut h, &[custom]);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-trace"]
        );
    }

    #[test]
    fn values_marked_sensitive_are_stripped_too() {
        let mut h = HeaderMap::new();
        h.insert("x-trace", HeaderValue::from_static("v"));
        h.append("x-session", HeaderValue::from_static("public"));
        let mut secret = HeaderValue::from_static("s");
        secret.set_sensitive(true);
        h.append("x-session", secret);
        h.insert("api-key", HeaderValue::from_static("k"));
        strip_credential_headers(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-trace"]
        );
    }
}
