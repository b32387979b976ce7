//! How the default command shows a stream: events on stdout, status on
//! stderr (or everything as JSON lines on stdout), colour only on a
//! terminal, every error printed once.

use std::borrow::Cow;
use std::io::{self, Write};

use serde_json::{json, Value};
use ssekit::{Event, Open};

use crate::time::now_rfc3339;

/// How the output looks.
pub struct Printer {
    pub json: bool,
    pub colour: bool,
    /// -i: print each opened connection's status and headers.
    pub include: bool,
    /// The proxy of -x, redacted: named in a failure to connect, which is
    /// a failure to reach it (SPEC rule 29).
    pub proxy: Option<String>,
}

impl Printer {
    /// The proxy that `e` went through, when the library does not name it
    /// already: the -x proxy, for a failure to connect (the connection was
    /// to the proxy) or a request that failed before any response.
    fn proxy_of(&self, e: &ssekit::Error) -> Option<&str> {
        let request_failed = e.is_connect() || (e.status().is_none() && e.is_timeout());
        match (&self.proxy, e.proxy()) {
            (Some(p), None) if request_failed => Some(p),
            _ => None,
        }
    }

    /// `" (through the proxy P)"` for [`proxy_of`](Self::proxy_of).
    fn through(&self, e: &ssekit::Error) -> String {
        self.proxy_of(e)
            .map(|p| format!(" (through the proxy {p})"))
            .unwrap_or_default()
    }

    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn out(&self, line: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    }

    /// One JSON line, with the time added as its `time` field.
    pub fn out_json(&self, mut value: Value) -> io::Result<()> {
        if let Value::Object(map) = &mut value {
            map.insert("time".into(), now_rfc3339().into());
        }
        self.out(&value.to_string())
    }

    /// A status line: on stderr for people, on stdout in JSON mode.
    pub fn status(&self, value: Value, human: String) -> io::Result<()> {
        if self.json {
            self.out_json(value)
        } else {
            eprintln!("{}", self.paint("2", &human));
            Ok(())
        }
    }

    /// Prints one item of the stream. `connected` says whether a connection
    /// was open before a reconnection, to tell a lost connection from one
    /// that never opened.
    pub fn event(&self, ev: &Event, connected: bool) -> io::Result<()> {
        match ev {
            Event::Open(o) => self.open(o),
            Event::Message(m) => {
                if self.json {
                    return self.out_json(
                        json!({"kind": "message", "type": m.event(), "data": m.data(), "id": m.id()}),
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
                    self.out_json(json!({"kind": "comment", "comment": c}))
                } else {
                    self.out(&self.paint("2", &format!(":{c}")))
                }
            }
            Event::Reconnecting(r) => {
                let what = if connected {
                    "disconnected"
                } else {
                    "connection failed"
                };
                self.status(
                    json!({
                        "kind": "reconnecting",
                        "attempt": r.attempt(),
                        "delay_ms": r.delay().as_millis() as u64,
                        "cause": format!("{:#}", r.cause()),
                        "proxy": self.proxy_of(r.cause()),
                        "was_connected": connected,
                    }),
                    format!(
                        "* {what} ({:#}{}); reconnecting in {} ms (attempt {})",
                        r.cause(),
                        self.through(r.cause()),
                        r.delay().as_millis(),
                        r.attempt()
                    ),
                )
            }
            _ => Ok(()),
        }
    }

    fn open(&self, o: &Open) -> io::Result<()> {
        if self.json {
            let mut v = json!({"kind": "open", "status": o.status().as_u16(), "version": format!("{:?}", o.version()), "url": o.url().as_str(), "attempt": o.attempt()});
            if self.include {
                v["headers"] = headers_json(o.headers());
            }
            return self.out_json(v);
        }
        eprintln!(
            "{}",
            self.paint(
                "2",
                &format!(
                    "* connected: {} {} (attempt {})",
                    o.status(),
                    o.url(),
                    o.attempt()
                )
            )
        );
        if self.include {
            // As curl -i, on stdout before the events: `HTTP/1.1 200 OK`.
            let mut text = format!("{:?} {}\n", o.version(), o.status());
            for (name, value) in o.headers() {
                text.push_str(&format!(
                    "{}: {}\n",
                    name,
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
            self.out(&text)?;
        }
        Ok(())
    }

    pub fn error(&self, e: &ssekit::Error) {
        let _ = if self.json {
            self.out_json(json!({
                "kind": "error",
                "error": e.to_string(),
                "status": e.status().map(|s| s.as_u16()),
                "body": e.body(),
                "truncated": e.is_truncated(),
                "proxy": e.proxy().or(self.proxy_of(e)),
            }))
        } else {
            let mut text = human_error(e);
            if let Some(p) = self.proxy_of(e) {
                text.push_str(&format!("\n  through the proxy {p}"));
            }
            eprintln!("{}", self.paint("31", &text));
            Ok(())
        };
    }
}

/// The error and its causes, one per line, and the response body unless
/// one of those lines already shows all of it (an error's message quotes
/// the start of the body it carries, on one line). Server text in it has
/// its control characters escaped ([`escape_controls`]).
pub fn human_error(e: &ssekit::Error) -> String {
    let mut msg = format!("error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    let mut msg = escape_lines(&msg);
    if let Some(body) = e.body().filter(|b| !b.trim().is_empty()) {
        let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
        if !msg.contains(escape_controls(&one_line).as_ref()) {
            msg.push_str(&format!("\nresponse body:\n{}", escape_controls(body)));
        }
    }
    msg
}

/// Whether printing `c` as it is could drive a terminal or hide what is
/// shown: control characters (C0, DEL, C1: escape sequences, carriage
/// returns that overwrite a line) and the bidirectional formatting
/// characters (text shown in another order than it is).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control and bidirectional formatting character
/// escaped as `char::escape_debug` does (`\n`, `\u{1b}`), line feeds
/// included, and everything else as it is: for text a server chose (a
/// body, a header, a request path) before it reaches a terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`escape_controls`], but keeps the line feeds: for a message of
/// several lines made by the CLI.
pub fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Headers as a JSON object; a repeated name maps to an array of values.
pub fn headers_json(headers: &reqwest::header::HeaderMap) -> Value {
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        let value = if values.len() == 1 {
            values.into_iter().next().unwrap_or_default()
        } else {
            Value::Array(values)
        };
        map.insert(name.as_str().to_owned(), value);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(
            escape_controls("plain ünïcode \"q\" \\"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\x1b[2Jb\r\nc\td\u{7f}\u{9b}e\u{202e}f"),
            "a\\u{1b}[2Jb\\r\\nc\\td\\u{7f}\\u{9b}e\\u{202e}f"
        );
        assert_eq!(escape_lines("one\x07\ntwo"), "one\\u{7}\ntwo");
    }
}
