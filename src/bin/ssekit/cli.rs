//! The command line: clap derive structs for the default command (watch a
//! URL) and the subcommands, and the parsers of their values.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const EXIT_STATUS: &str = "\
Exit status: 0 when stopped as asked (--max-events, --until-data, or the
server ended the stream with 204), 1 on a stream error (an HTTP error status,
retries exhausted, a stream that ended before its --until-data marker, ...),
2 on bad usage, 3 on --timeout.

TLS: --cacert adds certificates to the trusted roots. Without it the system's
roots are used; on Linux and other Unix systems but macOS, SSL_CERT_FILE (a
PEM file) and SSL_CERT_DIR, when set, replace the system's roots (with the
rustls backend; OpenSSL, the native-tls backend, honours them too). On macOS
and Windows the system's verifier is used and they are ignored.

Subcommands: `ssekit check URL` checks a server's SSE hygiene, `ssekit
record URL -o FILE` and `ssekit serve FILE` capture and replay a stream,
`ssekit completions SHELL` prints shell completions.";

/// ssekit: print the server-sent events of a URL, reconnecting as needed
#[derive(Debug, Parser)]
#[command(
    name = "ssekit",
    version,
    override_usage = "ssekit URL [OPTIONS]\n       ssekit <COMMAND> [ARGS]",
    after_help = EXIT_STATUS,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a server's SSE hygiene: status, media type, caching, proxy
    /// buffering, heartbeats, retry, ids and resumption, event sizes,
    /// compression
    #[command(after_help = crate::check::HELP)]
    Check(CheckArgs),
    /// Record a stream's bytes with their arrival times to a file
    #[command(after_help = crate::record::HELP)]
    Record(RecordArgs),
    /// Serve a recording on 127.0.0.1 as an SSE endpoint, with its timing
    #[command(after_help = crate::serve::HELP)]
    Serve(ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

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

/// The default command: print a URL's events.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The URL of the event stream
    #[arg(required = true)]
    pub url: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Start from this last event ID
    #[arg(long, value_name = "ID")]
    pub last_event_id: Option<String>,
    /// Exit 0 after N events
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_events: Option<u64>,
    /// Exit 0 when an event's data is exactly TEXT (that event is not
    /// printed); a stream that ends for good before it exits 1
    #[arg(long, value_name = "TEXT")]
    pub until_data: Option<String>,
    /// Give up (exit 3) after SECS in all
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Reconnect when nothing arrives for SECS (default 300)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub idle_timeout: Option<Duration>,
    /// Reconnection attempts in a row without progress before giving up
    /// (default: unlimited)
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Give up on a response head after SECS, retrying with backoff (for
    /// a server that accepts the connection and never answers; default
    /// 300, long enough for a buffering proxy)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub response_timeout: Option<Duration>,
    /// End the stream with exit 1 when an event of this type arrives
    /// (repeatable): `error`, as Anthropic, hono and OpenAI-compatible
    /// servers send after a 200; the event is printed as the error
    #[arg(long, value_name = "TYPE")]
    pub error_event: Vec<String>,
    /// Resume the answer to a request that is not a GET by GET, as MCP
    /// Streamable HTTP does: once it delivered an event id, reconnections
    /// are a GET with Last-Event-ID and no body (never the request again)
    #[arg(long)]
    pub resume_by_get: bool,
    /// The delay before the first reconnection, until the server sends
    /// retry: (default 1)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub retry_delay: Option<Duration>,
    /// The largest accepted event; a larger one ends the stream with exit 1
    /// (default 16777216, 16 MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_size::<usize>)]
    pub max_event_size: Option<usize>,
    /// Print comment lines too
    #[arg(long)]
    pub comments: bool,
    /// One JSON object per line on stdout, each with a "time" (RFC 3339,
    /// UTC, milliseconds)
    #[arg(long)]
    pub json: bool,
    /// Print the status and response headers of each connection that opens
    #[arg(short = 'i', long)]
    pub include: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The URL of the event stream
    #[arg(value_parser = parse_url)]
    pub url: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// How long to watch the stream (the resumption check adds up to 10 s)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub duration: Duration,
    /// Print the report as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Allow the resumption and compression probes to re-send a request
    /// that is not a GET (and its body); without it they are skipped
    #[arg(long)]
    pub resend: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The URL of the event stream
    #[arg(value_parser = parse_url)]
    pub url: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// The file to write (replaced if it exists)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Stop after N events
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_events: Option<u64>,
    /// Stop after SECS
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Duration>,
    /// Stop after N bytes of body (the file then ends with exactly N bytes
    /// of body, possibly mid-event)
    #[arg(long, value_name = "N", value_parser = parse_size::<u64>)]
    pub max_bytes: Option<u64>,
    /// The largest event counted; a larger one stops the recording with
    /// exit 1 (default 16777216, 16 MiB)
    #[arg(long, value_name = "BYTES", value_parser = parse_size::<usize>)]
    pub max_event_size: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A recording made by `ssekit record`
    pub file: PathBuf,
    /// The port on 127.0.0.1 (default: a free one)
    #[arg(long, default_value = "0")]
    pub port: u16,
    /// Play the recording X times faster (0.5: twice as slow)
    #[arg(long, value_name = "X", default_value = "1", value_parser = parse_speed)]
    pub speed: f64,
    /// Start the recording again when it ends, on the same connection
    #[arg(long = "loop")]
    pub looped: bool,
}

fn parse_secs(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero() && *d < Duration::from_secs(100 * 365 * 86_400))
        .ok_or_else(|| format!("expected a positive number of seconds, got {v:?}"))
}

/// A URL the client can request (http or https), as given: a malformed
/// one is bad usage (exit 2), as for the default command.
fn parse_url(v: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(v).map_err(|e| format!("invalid URL {v:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(v.to_owned()),
        other => Err(format!(
            "invalid URL {v:?}: the scheme {other:?} is not http or https"
        )),
    }
}

fn parse_count(v: &str) -> Result<u64, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected a count of at least 1, got {v:?}"))
}

fn parse_size<N: std::str::FromStr + PartialOrd + From<u8>>(v: &str) -> Result<N, String> {
    v.parse()
        .ok()
        .filter(|n| *n > N::from(0))
        .ok_or_else(|| format!("expected a number of bytes of at least 1, got {v:?}"))
}

fn parse_speed(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("expected a positive factor, got {v:?}"))
}

fn parse_method(v: &str) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(v.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid request method {v:?}"))
}

fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, v) = h
        .split_once(':')
        .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
    Ok((name.trim().to_owned(), v.trim().to_owned()))
}

/// A request body (a newtype: clap would take a `Vec<u8>` for many values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(pub Vec<u8>);

fn parse_data(d: &str) -> Result<Body, String> {
    match d.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .map(Body)
            .map_err(|e| format!("reading {path}: {e}")),
        None => Ok(Body(d.as_bytes().to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ssekit").chain(v.iter().copied()))
    }

    #[test]
    fn parses_every_option() {
        let cli = parse(&[
            "http://127.0.0.1/x",
            "-X",
            "post",
            "-H",
            "Authorization: Bearer t",
            "-d",
            "{}",
            "--last-event-id",
            "9",
            "--max-events",
            "3",
            "--until-data",
            "[DONE]",
            "--timeout",
            "1.5",
            "--idle-timeout",
            "2",
            "--max-retries",
            "4",
            "--retry-delay",
            "0.25",
            "--max-event-size",
            "1024",
            "--response-timeout",
            "30",
            "--error-event",
            "error",
            "--error-event",
            "fault",
            "--resume-by-get",
            "--cacert",
            "ca.pem",
            "-x",
            "http://u:p@proxy:3128",
            "--noproxy",
            "localhost,.internal",
            "-k",
            "-i",
            "--comments",
            "--json",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let a = cli.watch;
        assert_eq!(a.url.as_deref(), Some("http://127.0.0.1/x"));
        assert_eq!(a.request.method, Some(reqwest::Method::POST));
        assert_eq!(
            a.request.headers,
            [("Authorization".into(), "Bearer t".into())]
        );
        assert_eq!(a.request.data, Some(Body(b"{}".to_vec())));
        assert_eq!(a.max_events, Some(3));
        assert_eq!(a.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(a.retry_delay, Some(Duration::from_millis(250)));
        assert_eq!(a.max_event_size, Some(1024));
        assert_eq!(a.max_retries, Some(4));
        assert_eq!(a.response_timeout, Some(Duration::from_secs(30)));
        assert_eq!(a.error_event, ["error", "fault"]);
        assert!(a.resume_by_get);
        assert!(a.comments && a.json && a.include && a.request.insecure);
        assert_eq!(a.request.proxy.as_deref(), Some("http://u:p@proxy:3128"));
        assert_eq!(a.request.noproxy.as_deref(), Some("localhost,.internal"));
    }

    #[test]
    fn subcommands_parse() {
        let cli = parse(&["check", "http://x/", "--duration", "2", "--json"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Check(ref c)) if c.json && c.duration == Duration::from_secs(2))
        );
        let cli = parse(&["record", "http://x/", "-o", "f.jsonl", "--max-events", "2"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Record(ref r)) if r.max_events == Some(2)));
        let cli = parse(&["serve", "f.jsonl", "--speed", "2", "--loop"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve(ref s)) if s.looped && s.speed == 2.0));
        assert!(parse(&["completions", "bash"]).is_ok());
    }

    #[test]
    fn rejects_bad_usage() {
        for bad in [
            &[][..],
            &["u", "--max-events", "x"],
            &["u", "--timeout", "-1"],
            &["u", "--timeout", "1e30"],
            &["u", "--retry-delay", "0"],
            &["u", "--max-event-size", "0"],
            &["u", "-H", "nocolon"],
            &["u", "-X", "BAD METHOD"],
            &["u", "--bogus"],
            &["u", "v"],
            &["u", "-d"],
            &["serve", "f", "--speed", "0"],
            &["completions", "tcsh"],
            &["check", "not a url"],
            &["check", "ftp://127.0.0.1/"],
            &["record", "http://[::1", "-o", "f"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
