//! Which forward proxy a request went through, so that an error caused by a
//! dead or refusing proxy names it (SPEC rule 29). The default pool's
//! clients route as reqwest's defaults do: through the proxies of
//! `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` less `NO_PROXY` (lower-case
//! names too) and, with the `system-proxy` feature, the system's settings.
//! hyper-util's matcher is the one reqwest itself uses for that, so the
//! answer here is the route reqwest took.

use hyper_util::client::proxy::matcher::Matcher;
use url::Url;

use crate::redact::redact_url;

/// The proxy that reqwest's default settings route `url` through, as a URL
/// with any credentials left out; `None` when it goes direct.
pub(crate) fn for_url(url: &Url) -> Option<Box<str>> {
    let uri: http::Uri = url.as_str().parse().ok()?;
    let intercept = Matcher::from_system().intercept(&uri)?;
    // The matcher keeps credentials apart from the URI; hide any left over.
    let proxy = Url::parse(&intercept.uri().to_string()).ok()?;
    Some(redact_url(&proxy).as_str().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matcher_is_the_environments() {
        // Only what holds whatever the environment: a URL that NO_PROXY
        // would never name still gets an answer without panicking, and an
        // answer never carries a password.
        let url: Url = "http://127.0.0.1:9/events".parse().unwrap();
        if let Some(proxy) = for_url(&url) {
            assert!(
                !proxy.contains('@') || proxy.contains("redacted"),
                "{proxy}"
            );
        }
    }
}
