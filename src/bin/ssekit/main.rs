//! `ssekit`: a curl for server-sent events (feature `cli`).
//!
//! Connects, prints events as they arrive, reconnects like the library, and
//! exits with a status scripts can assert on. Run `ssekit --help`.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use ssekit::{Event, EventSource, RetryPolicy};

const USAGE: &str = "\
ssekit: print the server-sent events of a URL, reconnecting as needed

Usage: ssekit URL [options]

Options:
  -X, --request METHOD     request method (default GET, or POST with -d)
  -H, --header 'N: V'      add a request header (repeatable)
  -d, --data BODY          request body; @FILE reads it from a file
      --last-event-id ID   start from this last event ID
      --max-events N       exit 0 after N events
      --until-data TEXT    exit 0 after an event whose data is exactly TEXT
      --timeout SECS       give up (exit 3) after SECS in all
      --idle-timeout SECS  reconnect when nothing arrives for SECS (default 300)
      --max-retries N      reconnection attempts in a row without an event
                           before giving up (default: unlimited)
      --comments           print comment lines too
      --json               one JSON object per line on stdout
  -h, --help               print this help
  -V, --version            print the version

Exit status: 0 when stopped as asked (--max-events, --until-data, or the
server ended the stream with 204), 1 on a stream error (an HTTP error status,
retries exhausted, ...), 2 on bad usage, 3 on --timeout.";

#[derive(Debug, Default)]
struct Args {
    url: String,
    method: Option<String>,
    headers: Vec<(String, String)>,
    data: Option<Vec<u8>>,
    last_event_id: Option<String>,
    max_events: Option<u64>,
    until_data: Option<String>,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_retries: Option<u32>,
    comments: bool,
    json: bool,
}

fn parse_secs(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} takes a positive number of seconds, got {v:?}"))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    let mut url = None;
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("ssekit {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-X" | "--request" => {
                let m = value(&arg)?;
                reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("invalid request method {m:?}"))?;
                a.method = Some(m);
            }
            "-H" | "--header" => {
                let h = value(&arg)?;
                let (name, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
                a.headers
                    .push((name.trim().to_owned(), v.trim().to_owned()));
            }
            "-d" | "--data" => {
                let d = value(&arg)?;
                a.data = Some(match d.strip_prefix('@') {
                    Some(path) => {
                        std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?
                    }
                    None => d.into_bytes(),
                });
            }
            "--last-event-id" => a.last_event_id = Some(value(&arg)?),
            "--max-events" => {
                let v = value(&arg)?;
                a.max_events = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--max-events takes a count of at least 1, got {v:?}")
                })?);
            }
            "--until-data" => a.until_data = Some(value(&arg)?),
            "--timeout" => a.timeout = Some(parse_secs(&arg, &value(&arg)?)?),
            "--idle-timeout" => a.idle_timeout = Some(parse_secs(&arg, &value(&arg)?)?),
            "--max-retries" => {
                let v = value(&arg)?;
                a.max_retries = Some(
                    v.parse()
                        .map_err(|_| format!("--max-retries takes a count, got {v:?}"))?,
                );
            }
            "--comments" => a.comments = true,
            "--json" => a.json = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    a.url = url.ok_or("missing URL")?;
    Ok(Some(a))
}

/// How the output looks.
struct Printer {
    json: bool,
    colour: bool,
}

impl Printer {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn out(&self, line: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    fn status(&self, value: serde_json::Value, human: String) -> io::Result<()> {
        if self.json {
            self.out(&value.to_string())
        } else {
            eprintln!("{}", self.paint("2", &human));
            Ok(())
        }
    }

    fn event(&self, ev: &Event) -> io::Result<()> {
        match ev {
            Event::Open(o) => self.status(
                json!({"kind": "open", "status": o.status().as_u16(), "url": o.url().as_str(), "attempt": o.attempt()}),
                format!("* connected: {} {} (attempt {})", o.status(), o.url(), o.attempt()),
            ),
            Event::Message(m) => {
                if self.json {
                    return self.out(
                        &json!({"kind": "message", "type": m.event(), "data": m.data(), "id": m.id()})
                            .to_string(),
                    );
                }
                let mut head = self.paint("36", m.event());
                if !m.id().is_empty() {
                    head.push(' ');
                    head.push_str(&self.paint("2", &format!("id={}", m.id())));
                }
                let data = m.data().replace('\n', "\n  ");
                self.out(&format!("{head}: {data}"))
            }
            Event::Comment(c) => {
                if self.json {
                    self.out(&json!({"kind": "comment", "comment": c}).to_string())
                } else {
                    self.out(&self.paint("2", &format!(":{c}")))
                }
            }
            Event::Reconnecting(r) => self.status(
                json!({
                    "kind": "reconnecting",
                    "attempt": r.attempt(),
                    "delay_ms": r.delay().as_millis() as u64,
                    "cause": format!("{:#}", r.cause()),
                }),
                format!(
                    "* disconnected ({}); reconnecting in {} ms (attempt {})",
                    format_args!("{:#}", r.cause()),
                    r.delay().as_millis(),
                    r.attempt()
                ),
            ),
            _ => Ok(()),
        }
    }

    fn error(&self, e: &ssekit::Error) {
        let _ = if self.json {
            self.out(
                &json!({
                    "kind": "error",
                    "error": e.to_string(),
                    "status": e.status().map(|s| s.as_u16()),
                    "body": e.body(),
                })
                .to_string(),
            )
        } else {
            let mut msg = format!("error: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg.push_str(&format!("\n  caused by: {s}"));
                source = s.source();
            }
            if let Some(body) = e.body().filter(|b| !b.trim().is_empty()) {
                msg.push_str(&format!("\nresponse body:\n{body}"));
            }
            eprintln!("{}", self.paint("31", &msg));
            Ok(())
        };
    }
}

fn build(a: &Args) -> Result<EventSource, ssekit::Error> {
    let method = match (&a.method, &a.data) {
        (Some(m), _) => m.to_ascii_uppercase(),
        (None, Some(_)) => "POST".to_owned(),
        (None, None) => "GET".to_owned(),
    };
    // Validated by parse_args.
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut b = EventSource::builder(&a.url)
        .method(method)
        .reconnect_events(true)
        .comments(a.comments);
    for (name, value) in &a.headers {
        b = b.header(name.as_str(), value.as_str());
    }
    if let Some(d) = &a.data {
        b = b.body(d.clone());
    }
    if let Some(id) = &a.last_event_id {
        b = b.last_event_id(id.clone());
    }
    if let Some(t) = a.idle_timeout {
        b = b.idle_timeout(Some(t));
    }
    if let Some(n) = a.max_retries {
        b = b.retry_policy(RetryPolicy::default().max_attempts(n));
    }
    b.build()
}

async fn run(a: Args, p: &Printer) -> ExitCode {
    let mut es = match build(&a) {
        Ok(es) => es,
        Err(e) => {
            p.error(&e);
            return ExitCode::from(2);
        }
    };
    let mut seen = 0u64;
    let stream = async {
        while let Some(item) = es.next().await {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) => {
                    p.error(&e);
                    return ExitCode::from(1);
                }
            };
            if p.event(&ev).is_err() {
                return ExitCode::SUCCESS; // stdout closed (e.g. `| head`)
            }
            if let Event::Message(m) = &ev {
                seen += 1;
                if a.max_events.is_some_and(|n| seen >= n)
                    || a.until_data.as_deref() == Some(m.data())
                {
                    return ExitCode::SUCCESS;
                }
            }
        }
        let _ = p.status(
            json!({"kind": "end"}),
            "* stream ended by the server".into(),
        );
        ExitCode::SUCCESS
    };
    match a.timeout {
        None => stream.await,
        Some(t) => match tokio::time::timeout(t, stream).await {
            Ok(code) => code,
            Err(_) => {
                let _ = p.status(
                    json!({"kind": "error", "error": format!("timed out after {t:?}"), "timeout": true}),
                    format!("error: timed out after {t:?}"),
                );
                ExitCode::from(3)
            }
        },
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("ssekit: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let printer = Printer {
        json: args.json,
        colour: io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ssekit: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(args, &printer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Option<Args>, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_every_option() {
        let a = args(&[
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
            "--comments",
            "--json",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.url, "http://127.0.0.1/x");
        assert_eq!(a.method.as_deref(), Some("post"));
        assert_eq!(a.headers, [("Authorization".into(), "Bearer t".into())]);
        assert_eq!(a.data.as_deref(), Some(&b"{}"[..]));
        assert_eq!(a.max_events, Some(3));
        assert_eq!(a.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(a.max_retries, Some(4));
        assert!(a.comments && a.json);
    }

    #[test]
    fn rejects_bad_usage() {
        for bad in [
            &[][..],
            &["u", "--max-events", "x"],
            &["u", "--timeout", "-1"],
            &["u", "-H", "nocolon"],
            &["u", "--bogus"],
            &["u", "v"],
            &["u", "-d"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }
}
