#![cfg(feature = "cli")]
//! `ssekit check` as a subprocess against in-process servers: for each
//! check, a server that passes it and one that does not, and the exit
//! status (0 unless something FAILed, 1 otherwise, 2 on bad usage).
//!
//! Thresholds that take a minute to reach (heartbeats of 60 s and 100 s) or
//! megabytes to send (16 MiB events) are tested on the rules themselves, in
//! the unit tests of `src/bin/ssekit/check.rs`. Every run has a time limit.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use ssekit::testing::{MockRequest, MockServer, Script};
use ssekit::MessageEvent;

const BIN: &str = env!("CARGO_BIN_EXE_ssekit");
const LIMIT: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one `ssekit check --json` run reported.
struct Report {
    code: i32,
    json: Value,
    stderr: String,
}

impl Report {
    /// The result of check `name` and its detail.
    #[track_caller]
    fn get(&self, name: &str) -> (String, String) {
        let checks = self.json["checks"].as_array().expect("a list of checks");
        let c = checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check {name} in {}", self.json));
        (
            c["result"].as_str().unwrap().to_owned(),
            c["detail"].as_str().unwrap().to_owned(),
        )
    }

    #[track_caller]
    fn expect(&self, name: &str, result: &str, detail_contains: &str) -> &Self {
        let (r, d) = self.get(name);
        assert_eq!(r, result, "{name}: {d}\n{}", self.json);
        assert!(
            d.contains(detail_contains),
            "{name}: {d:?} lacks {detail_contains:?}"
        );
        self
    }
}

/// Runs `ssekit ARGS` with no input, within [`LIMIT`] (killed if the test
/// ends first).
async fn run(args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LIMIT, out)
        .await
        .unwrap_or_else(|_| panic!("ssekit {args:?} did not exit in time"))
        .unwrap()
}

async fn check(url: &str, extra: &[&str]) -> Report {
    let mut args = vec!["check", url, "--json"];
    if !extra.contains(&"--duration") {
        args.extend(["--duration", "1.5"]);
    }
    args.extend_from_slice(extra);
    let out = run(&args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON report ({e}): {stdout}\n{stderr}"));
    Report {
        code: out.status.code().expect("exited"),
        json,
        stderr,
    }
}

/// A well-behaved feed: `retry: 2000`, an event with an id every 100 ms,
/// resuming after the Last-Event-ID it is sent.
fn ticker(req: &MockRequest) -> Script {
    let from = req
        .last_event_id()
        .and_then(|s| s.parse::<u32>().ok())
        .map_or(1, |n| n + 1);
    let mut s = Script::sse().retry(ms(2000));
    for k in from..from + 60 {
        s = s
            .message(&MessageEvent::new("", format!("tick {k}"), k.to_string()))
            .sleep(ms(100));
    }
    s.stall()
}

#[tokio::test]
async fn a_well_behaved_feed_passes_everything() {
    let server = MockServer::builder()
        .responder(ticker)
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/feed"), &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.json["result"], "PASS", "{}", r.json);
    r.expect("status", "PASS", "200 OK")
        .expect("content-type", "PASS", "text/event-stream")
        .expect("cache-control", "PASS", "no-cache")
        .expect("connection", "PASS", "open")
        .expect("buffering", "PASS", "none in bursts")
        .expect("heartbeat", "PASS", "longest silence")
        .expect("retry", "PASS", "2000 ms")
        .expect("ids", "PASS", "had an id")
        .expect("resumption", "PASS", "a new one")
        .expect("event-size", "PASS", "largest event")
        .expect("compression", "PASS", "none");
    let reqs = server.requests();
    assert_eq!(reqs[0].header("accept"), Some("text/event-stream"));
    let resumed = reqs
        .iter()
        .find(|r| r.last_event_id().is_some())
        .expect("a request resuming with Last-Event-ID");
    assert!(resumed.last_event_id().unwrap().parse::<u32>().unwrap() >= 5);
}

#[tokio::test]
async fn a_status_other_than_200_fails_and_skips_the_rest() {
    let server = MockServer::start(Script::status(404).write("no such feed"))
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("status", "FAIL", "no such feed");
    assert_eq!(r.json["checks"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["result"], "FAIL");
}

#[tokio::test]
async fn the_media_type_must_be_event_stream() {
    let server = MockServer::start(
        Script::status(200)
            .header("content-type", "application/json")
            .write("{}"),
    )
    .await
    .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("content-type", "FAIL", "application/json");

    let server = MockServer::builder()
        .responder(|req| {
            ticker(req).header("content-type", "text/event-stream; charset=iso-8859-1")
        })
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 0, "a warning is not a failure");
    r.expect("content-type", "WARN", "charset iso-8859-1");
    assert_eq!(r.json["result"], "WARN");
}

#[tokio::test]
async fn a_missing_or_caching_cache_control_warns() {
    let server = MockServer::builder()
        .responder(|req| ticker(req).without_header("cache-control"))
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 0);
    r.expect("cache-control", "WARN", "missing");

    let server = MockServer::builder()
        .responder(|req| ticker(req).header("cache-control", "public, max-age=60"))
        .start()
        .await
        .unwrap();
    check(&server.url("/"), &[])
        .await
        .expect("cache-control", "WARN", "max-age=60");
}

#[tokio::test]
async fn events_released_in_a_burst_after_a_silence_are_buffering() {
    let mut burst = String::new();
    for k in 1..=6 {
        burst.push_str(&format!("id: {k}\ndata: {k}\n\n"));
    }
    let server = MockServer::start(Script::sse().sleep(ms(1100)).write(burst).stall())
        .await
        .unwrap();
    let r = check(&server.url("/"), &["--duration", "2"]).await;
    assert_eq!(r.code, 1);
    r.expect("buffering", "FAIL", "6 of 6 events arrived in 1 bursts");

    // One burst among spread-out events: a warning.
    let mut script = Script::sse();
    for k in 1..=8 {
        script = script.event(&format!("spread {k}")).sleep(ms(60));
    }
    let script = script
        .sleep(ms(1100))
        .write("data: a\n\ndata: b\n\ndata: c\n\n")
        .stall();
    let server = MockServer::start(script).await.unwrap();
    let r = check(&server.url("/"), &["--duration", "2.5"]).await;
    r.expect("buffering", "WARN", "3 of 11 events");

    // Nothing at all: cannot tell a silent stream from a full buffer.
    let server = MockServer::start(Script::sse().stall()).await.unwrap();
    check(&server.url("/"), &[])
        .await
        .expect("buffering", "WARN", "no bytes");
}

#[tokio::test]
async fn a_long_silence_is_reported_against_proxy_timeouts() {
    let server = MockServer::start(Script::sse().event("only one").stall())
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    r.expect("heartbeat", "WARN", "run with --duration 70");
    // Comments count as heartbeats.
    let mut script = Script::sse().event("x");
    for _ in 0..30 {
        script = script.sleep(ms(100)).comment(" ping");
    }
    let server = MockServer::start(script.stall()).await.unwrap();
    check(&server.url("/"), &[])
        .await
        .expect("heartbeat", "PASS", "longest silence 0.1 s");
}

#[tokio::test]
async fn retry_zero_and_retry_over_an_hour_warn() {
    for (retry, why) in [("0", "storms"), ("3600001", "over an hour")] {
        let body = format!("retry: {retry}\nid: 1\ndata: x\n\n");
        let server = MockServer::start(Script::sse().write(body).stall())
            .await
            .unwrap();
        let r = check(&server.url("/"), &[]).await;
        r.expect("retry", "WARN", why);
    }
}

#[tokio::test]
async fn events_without_ids_warn_and_skip_resumption() {
    let mut script = Script::sse();
    for k in 0..5 {
        script = script.event(&format!("{k}")).sleep(ms(100));
    }
    let server = MockServer::start(script.stall()).await.unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 0);
    r.expect("ids", "WARN", "none of 5 events had an id")
        .expect("resumption", "SKIP", "no ids");
}

#[tokio::test]
async fn a_server_that_ignores_last_event_id_fails_resumption() {
    // Always from the start.
    let server = MockServer::builder()
        .responder(|_| {
            let mut s = Script::sse();
            for k in 1..=3 {
                s = s.message(&MessageEvent::new("", "x", k.to_string()));
            }
            s.stall()
        })
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("resumption", "FAIL", "replayed from the start");

    // Resumes, but repeats the last id it was given.
    let server = MockServer::builder()
        .responder(|req| {
            let from = req
                .last_event_id()
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(1);
            let mut s = Script::sse();
            for k in from..from + 3 {
                s = s.message(&MessageEvent::new("", "x", k.to_string()));
            }
            s.stall()
        })
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("resumption", "FAIL", "already seen");

    // A server with nothing more to send after the last id says 204.
    let server = MockServer::builder()
        .responder(|req| match req.last_event_id() {
            Some(_) => Script::status(204),
            None => Script::sse()
                .message(&MessageEvent::new("", "x", "1"))
                .stall(),
        })
        .start()
        .await
        .unwrap();
    check(&server.url("/"), &[])
        .await
        .expect("resumption", "PASS", "204");
}

#[tokio::test]
async fn an_event_over_a_mebibyte_warns() {
    let big = format!("id: 1\ndata: {}\n\n", "z".repeat(1024 * 1024 + 10));
    let server = MockServer::start(Script::sse().write(big).stall())
        .await
        .unwrap();
    check(&server.url("/"), &[])
        .await
        .expect("event-size", "WARN", "over 1 MiB");
}

#[tokio::test]
async fn compression_is_reported_and_an_unknown_encoding_fails() {
    let server = MockServer::builder()
        .responder(|req| ticker(req).gzip())
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 0, "{}", r.json);
    r.expect("compression", "PASS", "Content-Encoding: gzip")
        .expect("ids", "PASS", "had an id");

    let server = MockServer::builder()
        .responder(|req| ticker(req).header("content-encoding", "compress"))
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("compression", "FAIL", "compress");
}

#[tokio::test]
async fn a_stream_that_ends_warns_and_one_that_breaks_fails() {
    let server = MockServer::start(Script::sse().event("bye")).await.unwrap();
    check(&server.url("/"), &[])
        .await
        .expect("connection", "WARN", "ended the stream");

    let server = MockServer::start(Script::sse().write("data: cut").cut_after(5))
        .await
        .unwrap();
    let r = check(&server.url("/"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("connection", "FAIL", "failed after");
}

#[tokio::test]
async fn the_human_report_and_bad_usage() {
    let server = MockServer::builder()
        .responder(ticker)
        .start()
        .await
        .unwrap();
    let out = run(&["check", &server.url("/"), "--duration", "1"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS  status        200 OK"), "{text}");
    assert!(
        text.contains("\nresult: PASS (11 passed, 0 warnings, 0 failed)"),
        "{text}"
    );
    assert!(!text.contains("\x1b["), "no colour on a pipe");

    for args in [&["check"][..], &["check", "http://x/", "--duration", "0"]] {
        let out = tokio::process::Command::new(BIN).args(args).output();
        let out = tokio::time::timeout(LIMIT, out).await.unwrap().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

const CREDENTIALS: [&str; 3] = ["x-api-key", "api-key", "authorization"];

fn credential_flags() -> Vec<&'static str> {
    vec![
        "-H",
        "x-api-key: k1",
        "-H",
        "api-key: k2",
        "-H",
        "Authorization: Bearer t",
    ]
}

#[track_caller]
fn assert_no_credentials(requests: &[MockRequest], which: &str) {
    for r in requests {
        for name in CREDENTIALS {
            assert!(
                r.header(name).is_none(),
                "{which}: request {} ({} {}) carried {name}",
                r.index(),
                r.method(),
                r.path()
            );
        }
    }
}

/// Every request of `check` (the watched one, the resumption probe and the
/// compression probe) follows a redirect to another origin without its
/// credentials, and a later hop back to the first origin does not get them
/// back (SPEC rule 22).
#[tokio::test]
async fn redirects_to_another_origin_drop_every_credential_header() {
    let other = MockServer::builder()
        .responder(ticker)
        .start()
        .await
        .unwrap();
    let target = other.url("/feed");
    let first = MockServer::start(Script::status(302).header("location", &target))
        .await
        .unwrap();
    let mut args = credential_flags();
    args.extend(["--duration", "1"]);
    let r = check(&first.url("/start"), &args).await;
    assert_eq!(r.code, 0, "{}\n{}", r.json, r.stderr);
    r.expect("resumption", "PASS", "a new one")
        .expect("compression", "PASS", "none");
    let asked = first.requests();
    assert_eq!(asked.len(), 3, "stream, resumption and compression");
    for req in &asked {
        assert_eq!(
            req.header("x-api-key"),
            Some("k1"),
            "sent to the origin asked"
        );
    }
    let followed = other.requests();
    assert_eq!(followed.len(), 3);
    assert_no_credentials(&followed, "the other origin");

    // Out to another origin and back: once dropped, they stay dropped.
    let back = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let back_url = back.clone();
    let home = MockServer::builder()
        .responder(move |req| match req.path() {
            "/start" => Script::status(307).header("location", back_url.get().unwrap()),
            _ => ticker(req),
        })
        .start()
        .await
        .unwrap();
    let away = MockServer::start(Script::status(308).header("location", &home.url("/final")))
        .await
        .unwrap();
    back.set(away.url("/hop")).unwrap();
    let r = check(&home.url("/start"), &args).await;
    assert_eq!(r.code, 0, "{}\n{}", r.json, r.stderr);
    let requests = home.requests();
    let finals: Vec<_> = requests
        .iter()
        .filter(|r| r.path() == "/final")
        .cloned()
        .collect();
    assert_eq!(finals.len(), 3, "{requests:?}");
    assert_no_credentials(&finals, "back at the first origin");
    assert_no_credentials(&away.requests(), "the hop");
}

/// A redirect within the origin keeps the credentials (relative Location).
#[tokio::test]
async fn a_relative_redirect_within_the_origin_keeps_the_credentials() {
    let server = MockServer::builder()
        .responder(|req| match req.path() {
            "/old" => Script::status(301).header("location", "new"),
            _ => ticker(req),
        })
        .start()
        .await
        .unwrap();
    let mut args = credential_flags();
    args.extend(["--duration", "1"]);
    let r = check(&server.url("/old"), &args).await;
    assert_eq!(r.code, 0, "{}\n{}", r.json, r.stderr);
    let new: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/new")
        .collect();
    assert_eq!(new.len(), 3);
    for req in &new {
        assert_eq!(req.header("api-key"), Some("k2"));
    }
}

/// A redirect loop and an endless chain are reported, not followed for ever.
#[tokio::test]
async fn redirect_loops_and_chains_are_stopped() {
    let server = MockServer::builder()
        .responder(|req| {
            let n: u32 = req.path().trim_start_matches("/r").parse().unwrap_or(0);
            match req.path() {
                "/loop" => Script::status(302).header("location", "/loop"),
                _ => Script::status(302).header("location", &format!("/r{}", n + 1)),
            }
        })
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/loop"), &[]).await;
    assert_eq!(r.code, 1);
    r.expect("status", "FAIL", "redirect loop");
    let before = server.request_count();
    let r = check(&server.url("/r0"), &[]).await;
    r.expect("status", "FAIL", "too many redirects");
    assert_eq!(
        server.request_count() - before,
        11,
        "the first and ten redirects"
    );
}

/// A POST is sent once: the resumption and compression probes would
/// re-send its body (an LLM prompt), so they are skipped, unless --resend
/// asks for them (SPEC rule 25).
#[tokio::test]
async fn a_post_is_sent_once_unless_resend_is_given() {
    let server = MockServer::builder()
        .responder(ticker)
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/chat"), &["-d", "{\"prompt\":\"hi\"}"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.json, r.stderr);
    r.expect("resumption", "SKIP", "would re-send the request body")
        .expect("compression", "SKIP", "would re-send the request body");
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method() == "POST")
        .count();
    assert_eq!(posts, 1, "{:?}", server.requests());
    assert_eq!(server.request_count(), 1);

    let server = MockServer::builder()
        .responder(ticker)
        .start()
        .await
        .unwrap();
    let r = check(&server.url("/chat"), &["-X", "POST", "-d", "x", "--resend"]).await;
    r.expect("resumption", "PASS", "a new one")
        .expect("compression", "PASS", "none");
    assert_eq!(server.request_count(), 3);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.method() == "POST" && r.body() == b"x"));
}

/// A malformed URL is bad usage (exit 2) for check and record, as for the
/// default command, and nothing is written.
#[tokio::test]
async fn a_malformed_url_is_bad_usage_for_every_subcommand() {
    let file = std::env::temp_dir().join(format!("ssekit-badurl-{}.jsonl", std::process::id()));
    let path = file.to_str().unwrap();
    for args in [
        &["check", "not a url"][..],
        &["check", "ftp://127.0.0.1/x"],
        &["check", "http://[::1/"],
        &["record", "not a url", "-o", path],
        &["record", "mailto:a@b", "-o", path],
        &["not a url"],
    ] {
        let out = run(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("invalid URL"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!file.exists(), "no recording for a bad URL");
}

/// A connection cut after a silence, as a proxy's idle timeout cuts it:
/// the heartbeat check counts that silence and says so, instead of
/// "longest silence 0.0 s".
#[tokio::test]
async fn a_cut_after_a_silence_is_a_heartbeat_failure() {
    let server = MockServer::start(
        Script::sse()
            .sleep(ms(1500))
            .write("data: never\n\n")
            .cut_after(0),
    )
    .await
    .unwrap();
    let r = check(&server.url("/"), &["--duration", "4"]).await;
    assert_eq!(r.code, 1);
    r.expect("heartbeat", "FAIL", "cut after 1.")
        .expect(
            "heartbeat",
            "FAIL",
            "s of silence: likely a proxy's idle timeout",
        )
        .expect(
            "connection",
            "FAIL",
            "of silence (likely a proxy's idle timeout",
        );
}

/// A server (or proxy) that withholds the response head: the report names
/// a buffering proxy as the likely cause and how to turn buffering off.
#[tokio::test]
async fn a_withheld_head_names_a_buffering_proxy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            sockets.push(socket); // read nothing, answer nothing
        }
    });
    let r = check(&url, &["--duration", "1"]).await;
    held.abort();
    assert_eq!(r.code, 1);
    r.expect("status", "FAIL", "no response head within 5.0 s")
        .expect("status", "FAIL", "buffering proxy")
        .expect("status", "FAIL", "X-Accel-Buffering: no")
        .expect("status", "FAIL", "proxy_buffering off");
}

/// Text the server chose (an error body) reaches the terminal with its
/// control characters escaped: no escape sequence, no carriage return.
#[tokio::test]
async fn server_text_in_the_report_has_its_control_characters_escaped() {
    let server = MockServer::start(
        Script::status(500)
            .header("content-type", "text/plain")
            .write("\x1b[2J\x1b]0;pwned\x07fake\rPASS\u{202e}"),
    )
    .await
    .unwrap();
    let out = run(&["check", &server.url("/"), "--duration", "1"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for raw in ['\x1b', '\x07', '\r', '\u{202e}'] {
        assert!(!text.contains(raw), "{raw:?} printed raw: {text:?}");
    }
    // (Whitespace, the carriage return included, is folded to one space.)
    assert!(
        text.contains("\\u{1b}[2J\\u{1b}]0;pwned\\u{7}fake PASS\\u{202e}"),
        "{text}"
    );
}

/// A caller's Accept is kept by every request of check, with
/// text/event-stream added when it does not accept it (MCP servers answer
/// 406 otherwise), and a caller's Cache-Control is kept (SPEC rule 17).
#[tokio::test]
async fn a_callers_accept_is_kept_and_event_stream_added() {
    let server = MockServer::builder()
        .responder(|req| {
            let accept = req.header("accept").unwrap_or("");
            if accept.contains("application/json") && accept.contains("text/event-stream") {
                ticker(req)
            } else {
                Script::status(406).write(format!("Accept was {accept:?}"))
            }
        })
        .start()
        .await
        .unwrap();
    let r = check(
        &server.url("/mcp"),
        &[
            "-H",
            "Accept: application/json",
            "-H",
            "Cache-Control: max-age=0",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.json, r.stderr);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for req in &requests {
        assert_eq!(
            req.header("accept"),
            Some("application/json, text/event-stream")
        );
        assert_eq!(req.header("cache-control"), Some("max-age=0"));
    }
    // An Accept that accepts event streams already is left as it is.
    let before = server.request_count();
    check(
        &server.url("/mcp"),
        &["-H", "accept: text/event-stream, application/json"],
    )
    .await;
    for req in &server.requests()[before..] {
        assert_eq!(
            req.header("accept"),
            Some("text/event-stream, application/json")
        );
        assert_eq!(req.header("cache-control"), Some("no-cache"));
    }
}

/// Event ids of a megabyte each are compared, not kept: check's memory
/// stays bounded and its report quotes only the start of an id.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn huge_ids_are_not_kept_in_memory_nor_in_the_report() {
    let mut script = Script::sse();
    for k in 0..100 {
        let id = format!("{k:03}{}", "i".repeat(1024 * 1024));
        script = script.message(&MessageEvent::new("", "x", id));
    }
    let server = MockServer::start(script.stall()).await.unwrap();
    let child = tokio::process::Command::new(BIN)
        .args(["check", &server.url("/"), "--json", "--duration", "4"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = peak.clone();
    let watcher = tokio::spawn(async move {
        // VmHWM is the peak resident size; read it until the process ends.
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            {
                seen.fetch_max(kib * 1024, std::sync::atomic::Ordering::Relaxed);
            }
            tokio::time::sleep(ms(50)).await;
        }
    });
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    watcher.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.len() < 16 * 1024,
        "a report of {} bytes",
        stdout.len()
    );
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let ids = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "ids")
        .unwrap();
    assert!(
        ids["detail"]
            .as_str()
            .unwrap()
            .contains("all 100 events had an id (last \"099iii"),
        "{ids}"
    );
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak < 80 * 1024 * 1024,
        "check peaked at {} MiB",
        peak >> 20
    );
}
