#![cfg(feature = "cli")]
//! The `ssekit` command-line tool, run as a subprocess against in-process
//! test servers: what it prints on stdout and stderr, and how it exits.
//!
//! Every run has a time limit, so a CLI that hangs fails its test instead of
//! hanging the suite. Stdout and stderr are pipes here, never terminals, so
//! no run may print colour codes.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Reply, TestServer};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_ssekit");

/// The longest any run may take.
const LIMIT: Duration = Duration::from_secs(20);

/// What one run of the CLI did.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// Panics, showing everything the run printed, unless it exited with `code`.
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "ssekit {:?} exited with {} instead of {code}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Every stdout line parsed as JSON (each must parse).
    #[track_caller]
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!(
                        "stdout line {line:?} is not JSON ({e})\n--- stderr:\n{}",
                        self.stderr
                    )
                })
            })
            .collect()
    }

    /// The stdout lines of kind `kind`.
    fn json_of_kind(&self, kind: &str) -> Vec<Value> {
        self.json()
            .into_iter()
            .filter(|v| v["kind"] == kind)
            .collect()
    }
}

fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        // No colour must come from the pipes alone, not from NO_COLOR.
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs the CLI to completion (killed and failing after [`LIMIT`]).
async fn ssekit(args: &[&str]) -> Run {
    let start = Instant::now();
    let child = command(args).spawn().expect("spawning the ssekit binary");
    let out = match tokio::time::timeout(LIMIT, child.wait_with_output()).await {
        Ok(out) => out.expect("waiting for ssekit"),
        // Dropping the future drops the child, which kills it.
        Err(_) => panic!("ssekit {args:?} did not exit within {LIMIT:?}"),
    };
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("ssekit {args:?} was killed by a signal: {}", out.status)),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        elapsed: start.elapsed(),
    };
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains("\x1b["),
            "ssekit {args:?} printed colour codes on {name}, which is not a terminal: {text:?}"
        );
    }
    run
}

/// A temporary file with a unique name, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "ssekit-cli-test-{}-{nanos}-{}.json",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("writing the temporary file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("temporary path is UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---- human output ---------------------------------------------------------

#[tokio::test]
async fn human_output_shows_type_id_and_multiline_data() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("event: greet\nid: 1\ndata: hello\n\n")
            .body("data: line one\ndata: line two\ndata: line three\n\n")
            .body("event: plain\ndata: no id change\n\n")
            .stall()
    })
    .await;
    let url = server.url("/events");
    let run = ssekit(&[&url, "--max-events", "3"]).await;
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "greet id=1: hello\n\
         message id=1: line one\n  line two\n  line three\n\
         plain id=1: no id change\n",
        "the id in force is shown; continuation lines are indented"
    );
    assert!(
        run.stderr
            .contains(&format!("* connected: 200 OK {url} (attempt 0)")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn human_output_leaves_out_an_empty_id() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let run = ssekit(&[&server.url("/"), "--max-events", "1"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message: x\n");
}

// ---- JSON output ----------------------------------------------------------

#[tokio::test]
async fn json_lines_have_every_kind_and_the_message_fields() {
    const FIRST: &str = ": hello\nretry: 10\nid: 5\nevent: tick\ndata: a\ndata: b\n\n";
    const DENIED: &str = r#"{"error":"go away"}"#;
    let server = TestServer::start(|_, i| match i {
        // Cut without the final chunk: a body error, then a reconnection.
        0 => Reply::sse().body(FIRST).drop_after(FIRST.len()),
        _ => Reply::status(401)
            .header("content-type", "application/json")
            .body(DENIED),
    })
    .await;
    let url = server.url("/events");
    let run = ssekit(&[&url, "--json", "--comments"]).await;
    run.assert_code(1);

    let lines = run.json();
    let kinds: Vec<&str> = lines.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["open", "comment", "message", "reconnecting", "error"],
        "{}",
        run.stdout
    );
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["url"], url.as_str());
    assert_eq!(lines[0]["attempt"], 0);
    assert_eq!(lines[1]["comment"], " hello");
    assert_eq!(lines[2]["type"], "tick");
    assert_eq!(lines[2]["data"], "a\nb");
    assert_eq!(lines[2]["id"], "5");
    assert_eq!(lines[3]["attempt"], 1);
    let delay = lines[3]["delay_ms"].as_u64().expect("delay_ms is a number");
    // Jitter never shortens the server's delay and adds at most half of it.
    assert!(
        (10..=15).contains(&delay),
        "retry: 10 sets the delay, got {delay} ms"
    );
    assert!(lines[3]["cause"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(lines[4]["status"], 401);
    assert_eq!(lines[4]["body"], DENIED);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "a 401 is not retried");
    assert_eq!(reqs[1].header("last-event-id"), Some("5"));
}

#[tokio::test]
async fn json_message_with_no_id_has_an_empty_id() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: x\n\n").stall()).await;
    let run = ssekit(&[&server.url("/"), "--json", "--max-events", "1"]).await;
    run.assert_code(0);
    let messages = run.json_of_kind("message");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["type"], "message");
    assert_eq!(messages[0]["data"], "x");
    assert_eq!(messages[0]["id"], "");
    assert!(
        run.stderr.is_empty(),
        "JSON mode prints status on stdout: {}",
        run.stderr
    );
}

// ---- stopping as asked ------------------------------------------------------

#[tokio::test]
async fn max_events_exits_zero_after_n_events() {
    let server = TestServer::start(|_, _| {
        let mut reply = Reply::sse();
        for n in 1..=5 {
            reply = reply.body(format!("data: {n}\n\n"));
        }
        reply.stall()
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--max-events", "3"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message: 1\nmessage: 2\nmessage: 3\n");

    let run = ssekit(&[&server.url("/"), "--json", "--max-events", "2"]).await;
    run.assert_code(0);
    let data: Vec<_> = run
        .json_of_kind("message")
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data, ["1", "2"]);
}

#[tokio::test]
async fn max_events_counts_messages_only() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body(": one\n: two\ndata: a\n\n: three\ndata: b\n\ndata: c\n\n")
            .stall()
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--comments", "--max-events", "2"]).await;
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        ": one\n: two\nmessage: a\n: three\nmessage: b\n"
    );
}

#[tokio::test]
async fn until_data_exits_zero_after_the_sentinel() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("data: a\n\ndata: [DONE] not yet\n\ndata: [DONE]\n\ndata: after\n\n")
            .stall()
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--until-data", "[DONE]"]).await;
    run.assert_code(0);
    // The sentinel ends the stream (the library's `end_on_data`) and is not
    // itself an event; the end is reported on stderr.
    assert_eq!(run.stdout, "message: a\nmessage: [DONE] not yet\n");
    assert!(
        run.stderr.contains("* end marker received: [DONE]"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn no_content_exits_zero() {
    let server = TestServer::start(|_, _| Reply::status(204)).await;
    let run = ssekit(&[&server.url("/")]).await;
    run.assert_code(0);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("stream ended by the server"),
        "{}",
        run.stderr
    );
    assert_eq!(server.request_count(), 1, "a 204 is not retried");

    let run = ssekit(&[&server.url("/"), "--json"]).await;
    run.assert_code(0);
    let lines = run.json();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    assert_eq!(lines[0]["kind"], "end");
}

// ---- errors -------------------------------------------------------------------

#[tokio::test]
async fn retries_exhausted_exits_one_after_exactly_two_requests() {
    let server = TestServer::start(|_, _| {
        Reply::status(503)
            .header("retry-after", "0")
            .header("content-type", "text/plain")
            .body("overloaded, try later")
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--max-retries", "1"]).await;
    run.assert_code(1);
    assert_eq!(server.request_count(), 2, "one request plus one retry");
    assert!(
        run.stderr
            .contains("* connection failed (unexpected HTTP status 503"),
        "the retry is shown, as a failure to connect (no connection had opened): {}",
        run.stderr
    );
    assert!(run.stderr.contains("(attempt 1)"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: gave up after 1 reconnection attempt without progress"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("overloaded, try later"),
        "the last body is shown: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    let server = TestServer::start(|_, _| {
        Reply::status(503)
            .header("retry-after", "0")
            .body("overloaded")
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--json", "--max-retries", "1"]).await;
    run.assert_code(1);
    assert_eq!(server.request_count(), 2);
    let errors = run.json_of_kind("error");
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert_eq!(errors[0]["status"], 503);
    assert_eq!(errors[0]["body"], "overloaded");
    assert_eq!(run.json_of_kind("reconnecting").len(), 1);
}

#[tokio::test]
async fn max_retries_zero_never_reconnects() {
    let server = TestServer::start(|_, _| Reply::status(503).header("retry-after", "0")).await;
    let run = ssekit(&[&server.url("/"), "--max-retries", "0"]).await;
    run.assert_code(1);
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn unauthorized_shows_status_and_body_on_stderr() {
    const BODY: &str = r#"{"error":{"message":"invalid API key","code":"bad_key"}}"#;
    let server = TestServer::start(|_, _| {
        Reply::status(401)
            .header("content-type", "application/json")
            .body(BODY)
    })
    .await;
    let run = ssekit(&[&server.url("/v1/stream")]).await;
    run.assert_code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("401 Unauthorized"),
        "the status is shown: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(BODY),
        "the body is shown: {}",
        run.stderr
    );
    assert_eq!(server.request_count(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn unauthorized_in_json_is_one_error_object() {
    const BODY: &str = r#"{"error":{"message":"invalid API key"}}"#;
    let server = TestServer::start(|_, _| {
        Reply::status(401)
            .header("content-type", "application/json")
            .body(BODY)
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--json"]).await;
    run.assert_code(1);
    let lines = run.json();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    let e = &lines[0];
    assert_eq!(e["kind"], "error");
    assert_eq!(e["status"], 401);
    assert_eq!(e["body"], BODY);
    let message = e["error"].as_str().expect("error is a string");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("invalid API key"), "{message}");
}

#[tokio::test]
async fn timeout_exits_three_against_a_stalling_server() {
    let server = TestServer::start(|_, _| Reply::sse().body(": waiting\n\n").stall()).await;
    let run = ssekit(&[&server.url("/"), "--timeout", "0.5"]).await;
    run.assert_code(3);
    assert!(
        run.elapsed >= Duration::from_millis(500),
        "exited after {:?}",
        run.elapsed
    );
    assert!(
        run.stderr.contains("error: timed out after 500ms"),
        "{}",
        run.stderr
    );

    let run = ssekit(&[&server.url("/"), "--json", "--timeout", "0.5"]).await;
    run.assert_code(3);
    let lines = run.json();
    let last = lines.last().expect("some output");
    assert_eq!(last["kind"], "error");
    assert_eq!(last["timeout"], true);
}

#[tokio::test]
async fn timeout_also_covers_a_server_that_never_answers() {
    let server = TestServer::start(|_, _| Reply::sse().delay_head(Duration::from_secs(60))).await;
    let run = ssekit(&[&server.url("/"), "--timeout", "0.3"]).await;
    run.assert_code(3);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[tokio::test]
async fn idle_timeout_reconnects() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body("retry: 10\ndata: first\n\n").stall(),
        _ => Reply::sse().body("data: second\n\n").stall(),
    })
    .await;
    let run = ssekit(&[
        &server.url("/"),
        "--idle-timeout",
        "0.3",
        "--max-events",
        "2",
    ])
    .await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message: first\nmessage: second\n");
    assert!(run.stderr.contains("idle timeout"), "{}", run.stderr);
    assert_eq!(server.request_count(), 2);
}

// ---- the request ------------------------------------------------------------

#[tokio::test]
async fn method_body_and_headers_are_sent() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    let run = ssekit(&[
        &server.url("/v1/chat?stream=1"),
        "-X",
        "POST",
        "-d",
        r#"{"prompt":"hi"}"#,
        "-H",
        "Authorization: Bearer x",
        "--header",
        "X-Trace:  abc ",
        "--max-events",
        "1",
    ])
    .await;
    run.assert_code(0);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat?stream=1");
    assert_eq!(r.body_text(), r#"{"prompt":"hi"}"#);
    assert_eq!(r.header("authorization"), Some("Bearer x"));
    assert_eq!(r.header("x-trace"), Some("abc"));
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("last-event-id"), None);
}

#[tokio::test]
async fn method_defaults_to_get_and_lowercase_methods_are_accepted() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    ssekit(&[&server.url("/"), "--max-events", "1"])
        .await
        .assert_code(0);
    ssekit(&[&server.url("/"), "-X", "put", "--max-events", "1"])
        .await
        .assert_code(0);
    let methods: Vec<_> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "PUT"]);
    assert!(server.requests()[0].body.is_empty());
}

#[tokio::test]
async fn data_from_a_file_is_posted() {
    let contents = "{\n  \"model\": \"m\",\n  \"stream\": true\n}\n";
    let file = TempFile::new(contents.as_bytes());
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    let run = ssekit(&[
        &server.url("/"),
        "-d",
        &format!("@{}", file.path()),
        "--max-events",
        "1",
    ])
    .await;
    run.assert_code(0);
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST", "-d alone means POST");
    assert_eq!(r.body_text(), contents);
}

#[tokio::test]
async fn data_from_a_missing_file_is_bad_usage() {
    let file = TempFile::new(b"");
    let missing = format!("{}.missing", file.path());
    let server = TestServer::start(|_, _| Reply::sse().stall()).await;
    let run = ssekit(&[&server.url("/"), "-d", &format!("@{missing}")]).await;
    run.assert_code(2);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn last_event_id_flag_sends_the_header() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    ssekit(&[
        &server.url("/"),
        "--last-event-id",
        "7",
        "--max-events",
        "1",
    ])
    .await
    .assert_code(0);
    assert_eq!(server.requests()[0].header("last-event-id"), Some("7"));
}

// ---- comments and reconnection ---------------------------------------------

#[tokio::test]
async fn comments_are_printed_only_when_asked() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body(": keep-alive\n:no space\ndata: x\n\n")
            .stall()
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--max-events", "1"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message: x\n");

    let run = ssekit(&[&server.url("/"), "--comments", "--max-events", "1"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, ": keep-alive\n:no space\nmessage: x\n");

    let run = ssekit(&[
        &server.url("/"),
        "--json",
        "--comments",
        "--max-events",
        "1",
    ])
    .await;
    run.assert_code(0);
    let comments: Vec<_> = run
        .json_of_kind("comment")
        .iter()
        .map(|c| c["comment"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(comments, [" keep-alive", "no space"]);
}

#[tokio::test]
async fn reconnection_is_shown_and_resumes_with_last_event_id() {
    const FIRST: &str = "retry: 10\nid: 1\ndata: first\n\n";
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body(FIRST).drop_after(FIRST.len()),
        _ => Reply::sse().body("id: 2\ndata: second\n\n").stall(),
    })
    .await;
    let url = server.url("/events");
    let run = ssekit(&[&url, "--max-events", "2"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message id=1: first\nmessage id=2: second\n");
    assert!(
        run.stderr.contains("* disconnected ("),
        "the disconnection is shown: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("reconnecting in") && run.stderr.contains("(attempt 1)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("* connected: 200 OK").count(),
        2,
        "{}",
        run.stderr
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("last-event-id"), None);
    assert_eq!(reqs[1].header("last-event-id"), Some("1"));
}

#[tokio::test]
async fn a_clean_end_of_body_reconnects_too() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body("retry: 10\nid: a\ndata: one\n\n"),
        _ => Reply::sse().body("data: two\n\n").stall(),
    })
    .await;
    let run = ssekit(&[&server.url("/"), "--json", "--max-events", "2"]).await;
    run.assert_code(0);
    let r = run.json_of_kind("reconnecting");
    assert_eq!(r.len(), 1, "{}", run.stdout);
    assert!(
        r[0]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("ended the stream")),
        "{}",
        r[0]
    );
    assert_eq!(server.requests()[1].header("last-event-id"), Some("a"));
}

// ---- usage ----------------------------------------------------------------------

#[tokio::test]
async fn bad_usage_exits_two() {
    let bad: &[&[&str]] = &[
        &[],
        &["--bogus"],
        &["http://127.0.0.1:9/", "--bogus"],
        &["http://127.0.0.1:9/", "http://127.0.0.1:9/other"],
        &["http://127.0.0.1:9/", "--max-events", "x"],
        &["http://127.0.0.1:9/", "--max-events"],
        &["http://127.0.0.1:9/", "--max-retries", "-1"],
        &["http://127.0.0.1:9/", "--timeout", "0"],
        &["http://127.0.0.1:9/", "--timeout", "soon"],
        &["http://127.0.0.1:9/", "--idle-timeout", "-2"],
        &["http://127.0.0.1:9/", "-H", "no colon"],
        &["http://127.0.0.1:9/", "-d"],
    ];
    for args in bad {
        let run = ssekit(args).await;
        run.assert_code(2);
        assert!(
            run.stderr.starts_with("ssekit: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("Usage:"), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
}

#[tokio::test]
async fn invalid_configuration_exits_two() {
    for args in [
        &["not a url"][..],
        &["ftp://127.0.0.1/x"],
        &["http://127.0.0.1:9/", "-H", "Bad Name: v"],
        &["http://127.0.0.1:9/", "-H", "X-Ok: line\u{1}break"],
    ] {
        let run = ssekit(args).await;
        run.assert_code(2);
        assert!(
            run.stderr.contains("invalid event source configuration"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn help_and_version_exit_zero() {
    for flag in ["-h", "--help"] {
        let run = ssekit(&[flag]).await;
        run.assert_code(0);
        assert!(run.stdout.contains("Usage: ssekit URL"), "{}", run.stdout);
        assert!(run.stdout.contains("--max-retries"), "{}", run.stdout);
    }
    for flag in ["-V", "--version"] {
        let run = ssekit(&[flag]).await;
        run.assert_code(0);
        assert_eq!(
            run.stdout.trim(),
            format!("ssekit {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

// ---- pipes ----------------------------------------------------------------------

#[tokio::test]
async fn a_closed_stdout_ends_the_run_with_zero() {
    let mut events = String::new();
    for n in 0..200 {
        events.push_str(&format!("data: {n}\n\n"));
    }
    let server = TestServer::start(move |_, _| {
        Reply::sse()
            .trickle(events.clone(), 9, Duration::from_millis(10))
            .stall()
    })
    .await;
    let mut child = command(&[&server.url("/")])
        .spawn()
        .expect("spawning ssekit");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("no first line within the limit")
        .unwrap();
    assert_eq!(first.as_deref(), Some("message: 0"));
    drop(lines); // as `| head -1` does
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("ssekit kept running after stdout closed")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

// ---- known failures (see the report) ----------------------------------------

#[tokio::test]
async fn out_of_range_seconds_are_bad_usage_not_a_panic() {
    for args in [
        &["http://127.0.0.1:9/", "--timeout", "1e30"][..],
        &["http://127.0.0.1:9/", "--idle-timeout", "1e20"],
    ] {
        let run = ssekit(args).await;
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        run.assert_code(2);
    }
}

#[tokio::test]
async fn an_invalid_method_is_bad_usage_not_a_silent_get() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    let run = ssekit(&[&server.url("/"), "-X", "BAD METHOD", "--max-events", "1"]).await;
    let methods: Vec<_> = server.requests().into_iter().map(|r| r.method).collect();
    assert!(methods.is_empty(), "sent {methods:?} instead of refusing");
    run.assert_code(2);
}

// ---- the toolkit flags (issue "The SSE testing toolkit") ---------------------

#[tokio::test]
async fn until_data_with_a_stream_cut_before_the_marker_exits_one() {
    // A POST answer that ends cleanly before [DONE]: incomplete.
    let server = TestServer::start(|_, _| Reply::sse().body("data: partial\n\n")).await;
    let run = ssekit(&[
        &server.url("/v1/chat"),
        "-d",
        r#"{"stream":true}"#,
        "--until-data",
        "[DONE]",
    ])
    .await;
    run.assert_code(1);
    assert_eq!(run.stdout, "message: partial\n");
    assert!(
        run.stderr
            .contains("error: the stream ended before its end marker"),
        "{}",
        run.stderr
    );

    let run = ssekit(&[
        &server.url("/v1/chat"),
        "-d",
        r#"{"stream":true}"#,
        "--until-data",
        "[DONE]",
        "--json",
    ])
    .await;
    run.assert_code(1);
    let errors = run.json_of_kind("error");
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert_eq!(errors[0]["truncated"], true);

    // The same answer with its marker exits 0.
    let server =
        TestServer::start(|_, _| Reply::sse().body("data: whole\n\ndata: [DONE]\n\n")).await;
    let run = ssekit(&[&server.url("/"), "-d", "{}", "--until-data", "[DONE]"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message: whole\n");
}

#[tokio::test]
async fn a_json_body_is_sent_as_json_unless_a_content_type_is_given() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    let url = server.url("/");
    for args in [
        &[url.as_str(), "-d", r#"{"a":1}"#][..],
        &[url.as_str(), "-d", "not json"],
        &[url.as_str(), "-d", "[1]", "-H", "Content-Type: text/plain"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--max-events", "1"]);
        ssekit(&args).await.assert_code(0);
    }
    let reqs = server.requests();
    assert_eq!(reqs[0].header_all("content-type"), ["application/json"]);
    assert_eq!(reqs[1].header("content-type"), None);
    assert_eq!(reqs[2].header_all("content-type"), ["text/plain"]);
}

#[tokio::test]
async fn an_error_body_is_printed_once() {
    const BODY: &str = r#"{"error":"quota exceeded"}"#;
    let server = TestServer::start(|_, _| {
        Reply::status(403)
            .header("content-type", "application/json")
            .body(BODY)
    })
    .await;
    let run = ssekit(&[&server.url("/")]).await;
    run.assert_code(1);
    assert_eq!(run.stderr.matches(BODY).count(), 1, "{}", run.stderr);

    // A body too long for the one-line excerpt is shown in full, below.
    let long = format!("{{\"error\":\"{}\"}}", "x".repeat(400));
    let body = long.clone();
    let server = TestServer::start(move |_, _| Reply::status(403).body(body.clone())).await;
    let run = ssekit(&[&server.url("/")]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!("response body:\n{long}")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn include_prints_status_and_headers_of_each_connection() {
    let server = TestServer::start(|_, i| {
        Reply::sse()
            .header("x-served-by", &format!("node-{i}"))
            .body("retry: 10\ndata: a\n\n")
    })
    .await;
    let run = ssekit(&[&server.url("/"), "-i", "--max-events", "2"]).await;
    run.assert_code(0);
    let blocks: Vec<&str> = run.stdout.split("HTTP/1.1 200 OK\n").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{}", run.stdout);
    assert!(
        run.stdout.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        run.stdout
    );
    assert!(
        blocks[0].contains("content-type: text/event-stream\n"),
        "{}",
        blocks[0]
    );
    assert!(blocks[0].contains("x-served-by: node-0\n"), "{}", blocks[0]);
    assert!(
        blocks[0].contains("\n\nmessage: a\n"),
        "a blank line, then the events: {}",
        blocks[0]
    );
    assert!(blocks[1].contains("x-served-by: node-1\n"), "{}", blocks[1]);

    let run = ssekit(&[&server.url("/"), "-i", "--json", "--max-events", "1"]).await;
    run.assert_code(0);
    let open = &run.json_of_kind("open")[0];
    assert_eq!(open["headers"]["content-type"], "text/event-stream");
    // Without -i the open line has no headers.
    let run = ssekit(&[&server.url("/"), "--json", "--max-events", "1"]).await;
    assert!(run.json_of_kind("open")[0].get("headers").is_none());
}

/// Days since 1970 of a `YYYY-MM-DD` date (proleptic Gregorian), for
/// checking the CLI's timestamps independently.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[tokio::test]
async fn every_json_line_has_an_rfc3339_utc_time() {
    let server = TestServer::start(|_, _| Reply::sse().body(": c\ndata: x\n\n").stall()).await;
    let before = std::time::SystemTime::now();
    let run = ssekit(&[
        &server.url("/"),
        "--json",
        "--comments",
        "--max-events",
        "1",
    ])
    .await;
    run.assert_code(0);
    let after = std::time::SystemTime::now();
    let lines = run.json();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for line in &lines {
        let t = line["time"].as_str().expect("a time");
        // 2025-01-31T23:59:59.123Z
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == ".",
            "{t}"
        );
        let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
        let secs = days_from_civil(n(0..4), n(5..7), n(8..10)) * 86_400
            + n(11..13) * 3600
            + n(14..16) * 60
            + n(17..19);
        let at = std::time::UNIX_EPOCH + Duration::from_millis((secs * 1000 + n(20..23)) as u64);
        let slack = Duration::from_millis(1);
        assert!(at + slack >= before && at <= after + slack, "{t}");
    }
}

#[tokio::test]
async fn max_event_size_ends_the_stream_with_an_error() {
    let big = format!("data: {}\n\n", "y".repeat(100));
    let server = TestServer::start(move |_, _| Reply::sse().body(big.clone()).stall()).await;
    let run = ssekit(&[&server.url("/"), "--max-event-size", "50"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("larger than the limit of 50 bytes"),
        "{}",
        run.stderr
    );
    let run = ssekit(&[
        &server.url("/"),
        "--max-event-size",
        "200",
        "--max-events",
        "1",
    ])
    .await;
    run.assert_code(0);
}

#[tokio::test]
async fn retry_delay_sets_the_first_reconnection_delay() {
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body("data: one\n\n"),
        _ => Reply::sse().body("data: two\n\n").stall(),
    })
    .await;
    let run = ssekit(&[
        &server.url("/"),
        "--json",
        "--retry-delay",
        "0.6",
        "--max-events",
        "2",
    ])
    .await;
    run.assert_code(0);
    let r = run.json_of_kind("reconnecting");
    assert_eq!(r.len(), 1, "{}", run.stdout);
    let delay = r[0]["delay_ms"].as_u64().unwrap();
    assert!((600..=800).contains(&delay), "{delay}");
    let reqs = server.requests();
    assert!(reqs[1].at - reqs[0].at >= Duration::from_millis(600));
}

#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_ssekit()"),
        ("zsh", "#compdef ssekit"),
        ("fish", "complete -c ssekit"),
    ] {
        let run = ssekit(&["completions", shell]).await;
        run.assert_code(0);
        assert!(run.stdout.contains(marker), "{shell}: {}", run.stdout);
        assert!(run.stdout.contains("until-data"), "{shell}");
    }
    ssekit(&["completions", "nosuchshell"]).await.assert_code(2);
}

// ---- TLS ----------------------------------------------------------------------

/// An HTTPS SSE server on 127.0.0.1 with `cert`; every connection gets one
/// event, then silence.
async fn tls_server(cert: &rcgen::CertifiedKey) -> std::net::SocketAddr {
    support::net::tls_sse_server(support::net::tls_config(cert, None, &[]))
        .await
        .0
}

#[tokio::test]
async fn cacert_trusts_a_self_signed_server_and_insecure_skips_verification() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    // An unrelated certificate, with a subject of its own (OpenSSL, the
    // native-tls backend, looks issuers up by subject name).
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "unrelated test CA");
    let other = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let addr = tls_server(&cert).await;
    let url = format!("https://{addr}/");
    // A bundle: the unrelated certificate first, the server's second.
    let bundle = TempFile::new(format!("{}{}", other.pem(), cert.cert.pem()).as_bytes());

    let run = ssekit(&[&url, "--cacert", bundle.path(), "--max-events", "1"]).await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message: secure\n");

    let run = ssekit(&[&url, "--max-retries", "0"]).await;
    run.assert_code(1);
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );

    let only_other = TempFile::new(other.pem().as_bytes());
    let run = ssekit(&[&url, "--cacert", only_other.path(), "--max-retries", "0"]).await;
    run.assert_code(1);

    for flag in ["-k", "--insecure"] {
        let run = ssekit(&[&url, flag, "--max-events", "1"]).await;
        run.assert_code(0);
        assert_eq!(run.stdout, "message: secure\n");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn ssl_cert_file_replaces_the_system_roots_on_linux() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let addr = tls_server(&cert).await;
    let pem = TempFile::new(cert.cert.pem().as_bytes());
    let mut cmd = command(&[&format!("https://{addr}/"), "--max-events", "1"]);
    cmd.env("SSL_CERT_FILE", pem.path());
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .expect("ssekit did not exit")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "message: secure\n");
}

#[tokio::test]
async fn a_bad_cacert_file_is_bad_usage() {
    let not_pem = TempFile::new(b"hello");
    let run = ssekit(&["https://127.0.0.1:9/", "--cacert", not_pem.path()]).await;
    run.assert_code(2);
    assert!(run.stderr.contains(not_pem.path()), "{}", run.stderr);
    let missing = format!("{}.missing", not_pem.path());
    let run = ssekit(&["https://127.0.0.1:9/", "--cacert", &missing]).await;
    run.assert_code(2);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
}

/// An error body's control characters are escaped on the terminal (the
/// run helper fails on any escape sequence in the output).
#[tokio::test]
async fn an_error_body_has_its_control_characters_escaped() {
    let server = TestServer::start(|_, _| {
        Reply::status(403)
            .header("content-type", "text/plain")
            .body("denied\x1b[2J\x07\r\nnext line")
    })
    .await;
    let run = ssekit(&[&server.url("/")]).await;
    run.assert_code(1);
    assert!(!run.stderr.contains('\x07'), "{:?}", run.stderr);
    assert!(
        run.stderr.contains("denied\\u{1b}[2J\\u{7}"),
        "{}",
        run.stderr
    );
}

// ---- proxies ----------------------------------------------------------------

/// Runs the CLI with no proxy variables from the environment but `env`.
async fn ssekit_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let start = Instant::now();
    let mut cmd = command(args);
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied());
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("ssekit {args:?} did not exit within {LIMIT:?}"))
        .unwrap();
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A forward proxy for plain HTTP: it gets the absolute URL as the
/// request target and answers with one event.
async fn proxy() -> ssekit::testing::MockServer {
    ssekit::testing::MockServer::start(
        ssekit::testing::Script::sse()
            .write("id: 1\ndata: via proxy\n\n")
            .stall(),
    )
    .await
    .unwrap()
}

/// -x sends every subcommand's requests through the proxy, with the
/// proxy's credentials as Proxy-Authorization, and prints them nowhere.
#[tokio::test]
async fn proxy_flag_is_used_by_every_subcommand() {
    let proxy = proxy().await;
    let via = format!("http://alice:pw-secret@{}", proxy.addr());
    let file = TempFile::new(b"");
    let runs = [
        ssekit_env(
            &["http://sse.invalid/feed", "-x", &via, "--max-events", "1"],
            &[],
        )
        .await,
        ssekit_env(
            &[
                "check",
                "http://sse.invalid/feed",
                "--proxy",
                &via,
                "--duration",
                "0.5",
            ],
            &[],
        )
        .await,
        ssekit_env(
            &[
                "record",
                "http://sse.invalid/feed",
                "-x",
                &via,
                "-o",
                file.path(),
                "--max-events",
                "1",
            ],
            &[],
        )
        .await,
    ];
    for run in &runs {
        assert!(
            run.code == 0 || run.args[0] == "check",
            "{:?}: {}\n{}",
            run.args,
            run.stdout,
            run.stderr
        );
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains("pw-secret"), "{:?}: {text}", run.args);
        }
    }
    assert!(runs[0].stdout.contains("via proxy"), "{}", runs[0].stdout);
    let requests = proxy.requests();
    assert!(requests.len() >= 3, "{requests:?}");
    for r in &requests {
        assert_eq!(r.path(), "http://sse.invalid/feed");
        // Basic base64("alice:pw-secret").
        assert_eq!(
            r.header("proxy-authorization"),
            Some("Basic YWxpY2U6cHctc2VjcmV0")
        );
    }
}

/// --noproxy lists hosts reached directly, with -x or with the proxy of
/// the environment (replacing NO_PROXY); '*' turns every proxy off.
#[tokio::test]
async fn noproxy_bypasses_the_proxy_for_the_hosts_listed() {
    let proxy = proxy().await;
    let origin = TestServer::start(|_, _| Reply::sse().body("data: direct\n\n").stall()).await;
    let url = origin.url("/");
    let via = format!("http://{}", proxy.addr());
    let direct = |run: &Run| {
        run.assert_code(0);
        assert!(run.stdout.contains("direct"), "{}", run.stdout);
    };
    direct(
        &ssekit_env(
            &[
                &url,
                "-x",
                &via,
                "--noproxy",
                "127.0.0.1",
                "--max-events",
                "1",
            ],
            &[],
        )
        .await,
    );
    direct(
        &ssekit_env(
            &[
                &url,
                "--noproxy",
                "localhost, 127.0.0.0/8",
                "--max-events",
                "1",
            ],
            &[("HTTP_PROXY", &via), ("NO_PROXY", "other.example")],
        )
        .await,
    );
    direct(
        &ssekit_env(
            &[&url, "--noproxy", "*", "--max-events", "1"],
            &[("ALL_PROXY", &via)],
        )
        .await,
    );
    assert_eq!(proxy.request_count(), 0);
    // Without --noproxy, the environment's proxy is used.
    let run = ssekit_env(&[&url, "--max-events", "1"], &[("HTTP_PROXY", &via)]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("via proxy"), "{}", run.stdout);
    assert_eq!(proxy.request_count(), 1);
}

/// A proxy that cannot be reached is named in check's and record's error,
/// without its credentials; a malformed one is bad usage.
#[tokio::test]
async fn a_failing_proxy_is_named_without_its_credentials() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let via = format!("http://alice:pw-secret@127.0.0.1:{port}");
    let file = TempFile::new(b"");
    let run = ssekit_env(
        &[
            "record",
            "http://sse.invalid/",
            "-x",
            &via,
            "-o",
            file.path(),
        ],
        &[],
    )
    .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "through the proxy http://alice:redacted@127.0.0.1:{port}/"
        )),
        "{}",
        run.stderr
    );
    let run = ssekit_env(&["check", "http://sse.invalid/", "-x", &via, "--json"], &[]).await;
    run.assert_code(1);
    assert!(
        run.stdout
            .contains("through the proxy http://alice:redacted@"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("pw-secret") && !run.stderr.contains("pw-secret"));
    // The default command: its reconnections and final error name it.
    let run = ssekit_env(
        &[
            "http://sse.invalid/",
            "-x",
            &via,
            "--max-retries",
            "1",
            "--retry-delay",
            "0.05",
        ],
        &[],
    )
    .await;
    run.assert_code(1);
    let named = format!("through the proxy http://alice:redacted@127.0.0.1:{port}/");
    assert_eq!(run.stderr.matches(&named).count(), 2, "{}", run.stderr);
    assert!(!run.stderr.contains("pw-secret"), "{}", run.stderr);
    let run = ssekit_env(
        &[
            "http://sse.invalid/",
            "-x",
            &via,
            "--max-retries",
            "0",
            "--json",
        ],
        &[],
    )
    .await;
    run.assert_code(1);
    let error = &run.json_of_kind("error")[0];
    assert_eq!(
        error["proxy"],
        format!("http://alice:redacted@127.0.0.1:{port}/")
    );

    let run = ssekit_env(&["http://127.0.0.1:9/", "-x", "ftp://u:pw-secret@h/"], &[]).await;
    run.assert_code(2);
    assert!(!run.stderr.contains("pw-secret"), "{}", run.stderr);
    assert!(run.stderr.contains("--proxy"), "{}", run.stderr);
}

// ---- library settings ----------------------------------------------------------

/// --response-timeout bounds the wait for a response head.
#[tokio::test]
async fn response_timeout_bounds_the_wait_for_a_head() {
    let server =
        TestServer::start(|_, _| Reply::sse().delay_head(Duration::from_secs(60)).stall()).await;
    let run = ssekit(&[
        &server.url("/"),
        "--response-timeout",
        "0.5",
        "--max-retries",
        "0",
    ])
    .await;
    run.assert_code(1);
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    assert!(run.stderr.contains("response"), "{}", run.stderr);
}

/// --error-event TYPE (repeatable) ends the stream with exit 1 at such an
/// event, which is shown as the error, not printed as an event.
#[tokio::test]
async fn error_event_ends_the_stream_with_exit_one() {
    let server = TestServer::start(|_, _| {
        Reply::sse()
            .body("data: partial\n\n")
            .body("event: error\ndata: {\"type\":\"overloaded_error\"}\n\n")
            .stall()
    })
    .await;
    let run = ssekit(&[
        &server.url("/"),
        "--error-event",
        "fault",
        "--error-event",
        "error",
    ])
    .await;
    run.assert_code(1);
    assert_eq!(run.stdout, "message: partial\n");
    assert!(run.stderr.contains("overloaded_error"), "{}", run.stderr);
    // Without the flag it is an event like any other.
    let run = ssekit(&[&server.url("/"), "--max-events", "2"]).await;
    run.assert_code(0);
    assert!(run.stdout.contains("overloaded_error"), "{}", run.stdout);
}

/// --resume-by-get: a POST answer that carried an id is resumed by a GET
/// with Last-Event-ID and no body, never by the POST again.
#[tokio::test]
async fn resume_by_get_resumes_a_post_answer_with_a_get() {
    const FIRST: &str = "retry: 10\nid: 1\ndata: first\n\n";
    let server = TestServer::start(|_, i| match i {
        0 => Reply::sse().body(FIRST).drop_after(FIRST.len()),
        _ => Reply::sse().body("id: 2\ndata: second\n\n").stall(),
    })
    .await;
    let run = ssekit(&[
        &server.url("/mcp"),
        "-d",
        "{\"method\":\"tools/call\"}",
        "--resume-by-get",
        "--max-events",
        "2",
    ])
    .await;
    run.assert_code(0);
    assert_eq!(run.stdout, "message id=1: first\nmessage id=2: second\n");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].method.as_str(), reqs[0].body.len()), ("POST", 23));
    assert_eq!(reqs[1].method, "GET");
    assert!(reqs[1].body.is_empty());
    assert_eq!(reqs[1].header("last-event-id"), Some("1"));
    assert_eq!(reqs[1].header("content-type"), None);
}

/// The default command keeps a caller's Accept too, adding
/// text/event-stream to it (the library's rule 17).
#[tokio::test]
async fn a_callers_accept_is_kept_by_the_default_command() {
    let server = TestServer::start(|_, _| Reply::sse().body("data: ok\n\n").stall()).await;
    let run = ssekit(&[
        &server.url("/"),
        "-H",
        "Accept: application/json",
        "--max-events",
        "1",
    ])
    .await;
    run.assert_code(0);
    let reqs = server.requests();
    assert_eq!(
        reqs[0].header("accept"),
        Some("application/json, text/event-stream")
    );
}

/// SPEC rule 29: a proxy from the environment that fails is named too,
/// without its password, by the default command.
#[tokio::test]
async fn a_failing_environment_proxy_is_named_without_its_credentials() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let via = format!("http://alice:pw-secret@127.0.0.1:{port}");
    let run = ssekit_env(
        &["http://sse.invalid/", "--max-retries", "0"],
        &[("HTTP_PROXY", via.as_str())],
    )
    .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "request through the proxy http://127.0.0.1:{port}/ failed"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("pw-secret"), "{}", run.stderr);
}
