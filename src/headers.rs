//! The headers every SSE request carries (SPEC rule 17), merged with the
//! caller's own: `Accept` names `text/event-stream` and `Cache-Control` is
//! `no-cache`, unless the caller said otherwise. Shared by the stream and
//! the command-line tool, so that every request of the project agrees.

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL};

/// The media type of a server-sent events body.
const EVENT_STREAM: &str = "text/event-stream";

/// Adds to `headers` what a server-sent events request needs, keeping every
/// value the caller set (SPEC rule 17):
///
/// - `Accept`: `text/event-stream` when the caller set none. A caller's
///   `Accept` is kept as it is when it already accepts `text/event-stream`
///   (by name, `text/*` or `*/*`, with a non-zero `q`); otherwise
///   `text/event-stream` is appended to it. MCP servers, for instance,
///   answer 406 unless `Accept` names both `application/json` and
///   `text/event-stream`, so `application/json` alone becomes
///   `application/json, text/event-stream`.
/// - `Cache-Control`: `no-cache` when the caller set none; a caller's value
///   is kept.
///
/// [`EventSource`](crate::EventSource) applies this to every request it
/// sends; it is public for code that builds SSE requests of its own (the
/// `ssekit` tool's `check` and `record` do).
///
/// ```
/// use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL};
///
/// let mut headers = HeaderMap::new();
/// ssekit::add_sse_headers(&mut headers);
/// assert_eq!(headers[ACCEPT], "text/event-stream");
/// assert_eq!(headers[CACHE_CONTROL], "no-cache");
///
/// let mut mcp = HeaderMap::new();
/// mcp.insert(ACCEPT, HeaderValue::from_static("application/json"));
/// ssekit::add_sse_headers(&mut mcp);
/// assert_eq!(mcp[ACCEPT], "application/json, text/event-stream");
///
/// let mut both = HeaderMap::new();
/// both.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
/// ssekit::add_sse_headers(&mut both);
/// assert_eq!(both[ACCEPT], "application/json, text/event-stream");
/// ```
pub fn add_sse_headers(headers: &mut HeaderMap) {
    let accepted = headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| accepts_event_stream(v.as_bytes()));
    if !accepted {
        let merged = match headers.get(ACCEPT) {
            None => HeaderValue::from_static(EVENT_STREAM),
            Some(_) => {
                // Several `Accept` lines are one comma-separated list.
                let mut list = Vec::new();
                for value in headers.get_all(ACCEPT) {
                    let value = value.as_bytes().trim_ascii();
                    if !value.is_empty() {
                        list.extend_from_slice(value);
                        list.extend_from_slice(b", ");
                    }
                }
                list.extend_from_slice(EVENT_STREAM.as_bytes());
                // Made of valid header values, comma and space: valid.
                HeaderValue::from_bytes(&list)
                    .unwrap_or_else(|_| HeaderValue::from_static(EVENT_STREAM))
            }
        };
        headers.insert(ACCEPT, merged);
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
}

/// Whether one `Accept` value accepts `text/event-stream`: a media range
/// that matches it (`text/event-stream`, `text/*`, `*/*`, any case) whose
/// `q` parameter, if any, is not zero.
fn accepts_event_stream(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|range| {
        let mut parts = range.split(|&b| b == b';');
        let media = parts.next().unwrap_or_default().trim_ascii();
        let matches = [EVENT_STREAM.as_bytes(), b"text/*", b"*/*"]
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m));
        matches && !parts.any(|p| is_zero_q(p.trim_ascii()))
    })
}

/// Whether a media-range parameter is `q=0` (`q=0`, `q=0.0`, `q=0.000`).
fn is_zero_q(param: &[u8]) -> bool {
    let Some(value) = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))
    else {
        return false;
    };
    let value = value.trim_ascii();
    match value.split_first() {
        Some((b'0', rest)) => match rest.split_first() {
            None => true,
            Some((b'.', decimals)) => decimals.iter().all(|&b| b == b'0'),
            Some(_) => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_after(values: &[&'static str]) -> String {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT, HeaderValue::from_static(v));
        }
        add_sse_headers(&mut h);
        let all: Vec<_> = h.get_all(ACCEPT).iter().collect();
        assert_eq!(all.len(), 1, "one Accept line after the merge: {all:?}");
        all[0].to_str().unwrap().to_owned()
    }

    #[test]
    fn accept_is_kept_when_it_accepts_event_streams() {
        for kept in [
            "text/event-stream",
            "TEXT/Event-Stream",
            "application/json, text/event-stream",
            "text/event-stream;q=0.5, application/json",
            "text/*",
            "*/*",
            "application/json, */*;q=0.1",
        ] {
            assert_eq!(accept_after(&[kept]), kept);
        }
    }

    #[test]
    fn accept_gets_event_stream_added_otherwise() {
        assert_eq!(accept_after(&[]), "text/event-stream");
        assert_eq!(
            accept_after(&["application/json"]),
            "application/json, text/event-stream"
        );
        // Refused with q=0 counts as not accepted: the request asks anew.
        assert_eq!(
            accept_after(&["text/event-stream;q=0"]),
            "text/event-stream;q=0, text/event-stream"
        );
        assert_eq!(
            accept_after(&["application/json", "text/plain"]),
            "application/json, text/plain, text/event-stream"
        );
        assert_eq!(accept_after(&["  "]), "text/event-stream");
    }

    #[test]
    fn zero_q_forms() {
        for zero in ["q=0", "q=0.", "q=0.000", "Q=0", "q= 0"] {
            assert!(is_zero_q(zero.as_bytes()), "{zero}");
        }
        for not in ["q=0.5", "q=1", "q=01", "charset=0", "q="] {
            assert!(!is_zero_q(not.as_bytes()), "{not}");
        }
    }

    #[test]
    fn cache_control_is_added_only_when_absent() {
        let mut h = HeaderMap::new();
        add_sse_headers(&mut h);
        assert_eq!(h[CACHE_CONTROL], "no-cache");
        let mut own = HeaderMap::new();
        own.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
        add_sse_headers(&mut own);
        assert_eq!(own[CACHE_CONTROL], "max-age=0");
        assert_eq!(own.get_all(CACHE_CONTROL).iter().count(), 1);
    }
}
