//! The command line as a whole: the default command (watch a URL) and the
//! subcommands, composed from the argument structs and help texts that
//! each subcommand's module owns (`watch::WatchArgs`, `check::CheckArgs`,
//! ...). The dependency goes one way: this module uses them, they do not
//! use it.

use clap::{Parser, Subcommand};

use crate::check::CheckArgs;
use crate::record::RecordArgs;
use crate::serve::ServeArgs;
use crate::watch::WatchArgs;

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::values::Body;

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
