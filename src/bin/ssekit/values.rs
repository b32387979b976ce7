//! The parsers of flag values shared by the subcommands' arguments
//! (seconds, counts, sizes, URLs, headers, bodies): each turns bad input
//! into a message that clap prints as bad usage (exit 2).

use std::time::Duration;

/// A positive number of seconds, fractions allowed, under a century.
pub fn parse_secs(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero() && *d < Duration::from_secs(100 * 365 * 86_400))
        .ok_or_else(|| format!("expected a positive number of seconds, got {v:?}"))
}

/// A URL the client can request (http or https), as given: a malformed
/// one is bad usage (exit 2), as for the default command.
pub fn parse_url(v: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(v).map_err(|e| format!("invalid URL {v:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(v.to_owned()),
        other => Err(format!(
            "invalid URL {v:?}: the scheme {other:?} is not http or https"
        )),
    }
}

/// A count of at least 1.
pub fn parse_count(v: &str) -> Result<u64, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected a count of at least 1, got {v:?}"))
}

/// A number of bytes of at least 1.
pub fn parse_size<N: std::str::FromStr + PartialOrd + From<u8>>(v: &str) -> Result<N, String> {
    v.parse()
        .ok()
        .filter(|n| *n > N::from(0))
        .ok_or_else(|| format!("expected a number of bytes of at least 1, got {v:?}"))
}

/// A positive, finite speed factor.
pub fn parse_speed(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("expected a positive factor, got {v:?}"))
}

/// An HTTP method, in any case (`post` is `POST`).
pub fn parse_method(v: &str) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(v.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid request method {v:?}"))
}

/// A `Name: value` header, both parts trimmed.
pub fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, v) = h
        .split_once(':')
        .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
    Ok((name.trim().to_owned(), v.trim().to_owned()))
}

/// A request body (a newtype: clap would take a `Vec<u8>` for many values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(pub Vec<u8>);

/// A request body: the text itself, or `@FILE`'s contents.
pub fn parse_data(d: &str) -> Result<Body, String> {
    match d.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .map(Body)
            .map_err(|e| format!("reading {path}: {e}")),
        None => Ok(Body(d.as_bytes().to_vec())),
    }
}
