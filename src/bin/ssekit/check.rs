//! `ssekit check URL`: connect as an SSE client would, watch the stream for
//! a while, and report PASS / WARN / FAIL for each property that makes an
//! SSE endpoint work behind proxies and for reconnecting clients.
//!
//! The rules live in `judge_*` functions over what was observed (arrival
//! times, frames), so that each threshold is in one place and is the one
//! `--help` documents.

use std::collections::HashSet;
use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use ssekit::{Frame, SseCodec};
use tokio::time::Instant;

use crate::client::{body_start, chain, shown_url, Request, RequestArgs};
use crate::printer::escape_controls;
use crate::values::{parse_secs, parse_url};

pub const HELP: &str = "\
Makes up to three requests: one watched for --duration, one that resumes
with Last-Event-ID, one that asks for compression. A request that is not a
GET (-X POST, -d) is sent once: the two probes would re-send it and its
body (an LLM prompt, a payment), so they are skipped unless --resend asks
for them. Exit 0 when no check FAILed, 1 otherwise, 2 on bad usage. The
checks and their thresholds:

  status         200 PASS; anything else FAIL (the other checks are skipped);
                 no response head within the duration (at least 5 s) FAIL,
                 most likely a buffering proxy (X-Accel-Buffering: no, or
                 nginx's proxy_buffering off)
  content-type   text/event-stream PASS (a charset other than utf-8 WARN:
                 SSE is always read as UTF-8); anything else FAIL
  cache-control  no-cache or no-store PASS; missing or other WARN (a cache
                 may store or merge the stream)
  connection     open for the whole duration PASS; ended by the server WARN
                 (clients reconnect: fine for a finite answer); failed FAIL
  buffering      a burst is 3+ events arriving within 10 ms of each other
                 after a silence of 1 s or more, as a buffering proxy (nginx's
                 default proxy_buffering) releases them. Half the events or
                 more in bursts FAIL, some WARN, none PASS; no bytes at all
                 in the duration WARN (silent, or held in a buffer)
  heartbeat      the longest silence (no event or comment): 100 s or more
                 FAIL (Cloudflare closes idle connections at 100 s), 60 s or
                 more FAIL (nginx's proxy_read_timeout), 45 s or more WARN;
                 with a duration under 60 s, a silence of half the duration
                 or more WARN (cannot tell: use --duration 70); else PASS
  retry          no retry: field or 1 ms..1 h PASS; retry: 0 WARN (clients
                 reconnect at once: storms); over 1 h WARN
  ids            events with id: PASS; events without WARN (a reconnecting
                 client cannot resume); no events WARN
  resumption     reconnects with Last-Event-ID set to the last id seen and
                 waits up to min(duration, 10 s) for an event: its id already
                 seen FAIL (replayed from the start, or repeated); a new id
                 PASS; 204 PASS (nothing left); another status FAIL; no
                 event or no id WARN. SKIP without ids
  event-size     the largest event (data and type): over 16 MiB FAIL
                 (ssekit's default limit), over 1 MiB WARN, else PASS
  compression    Content-Encoding of a request with Accept-Encoding: gzip,
                 br, zstd, deflate: none, gzip, br, zstd or deflate PASS
                 (decoded as it streams; the server must flush per event,
                 see buffering); any other FAIL";

/// The arguments of `ssekit check`.
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

const MIB: usize = 1024 * 1024;
const BURST_GAP: Duration = Duration::from_millis(10);
const BURST_SILENCE: Duration = Duration::from_secs(1);
const BURST_MIN: usize = 3;
const NGINX_READ_TIMEOUT: Duration = Duration::from_secs(60);
const CLOUDFLARE_TIMEOUT: Duration = Duration::from_secs(100);
const HEARTBEAT_WARN: Duration = Duration::from_secs(45);
const RETRY_MAX: Duration = Duration::from_secs(3600);
const RESUME_WAIT_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Skip,
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Skip => "SKIP",
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

struct Check {
    name: &'static str,
    level: Level,
    detail: String,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
    }
}

/// An event as observed: when its chunk arrived and what it carried. Its id
/// is kept as a hash: a server may send ids of megabytes, and the checks
/// only compare them (the first and last are kept whole, in
/// [`Observation`]).
struct Seen {
    at: Duration,
    id: Option<u64>,
    size: usize,
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// An id as the report quotes it: its first 64 characters.
fn shown_id(id: &str) -> String {
    let mut shown: String = id.chars().take(64).collect();
    if shown.len() < id.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// The most chunks (and events) one watched connection records, so that a
/// server sending tiny chunks as fast as it can cannot grow the report
/// without bound: the watch stops there (at 16 bytes a chunk, 16 MiB).
const MAX_OBSERVED: usize = 1 << 20;
/// How many distinct `retry:` values the report lists.
const SHOWN_RETRIES: usize = 8;

/// How the watched connection ended.
enum End {
    StillOpen,
    Ended(Duration),
    Failed(Duration, String),
}

/// Everything one watched connection showed.
struct Observation {
    watched: Duration,
    /// Arrival time of every chunk, since the response head.
    chunks: Vec<Duration>,
    events: Vec<Seen>,
    /// The first and the last non-empty event ids, empty when none.
    first_id: String,
    last_id: String,
    /// The first distinct `retry:` values, and whether any was 0 or over
    /// an hour.
    retries: Vec<Duration>,
    retry_zero: bool,
    retry_over: bool,
    /// Whether the watch stopped at [`MAX_OBSERVED`] chunks.
    capped: bool,
    end: End,
}

impl Observation {
    fn new(watched: Duration) -> Observation {
        Observation {
            watched,
            chunks: Vec::new(),
            events: Vec::new(),
            first_id: String::new(),
            last_id: String::new(),
            retries: Vec::new(),
            retry_zero: false,
            retry_over: false,
            capped: false,
            end: End::StillOpen,
        }
    }

    fn saw_event(&mut self, at: Duration, m: &ssekit::MessageEvent) {
        let id = (!m.id().is_empty()).then(|| id_hash(m.id()));
        if id.is_some() {
            if self.first_id.is_empty() {
                self.first_id = m.id().to_owned();
            }
            if self.last_id != m.id() {
                self.last_id = m.id().to_owned();
            }
        }
        self.events.push(Seen {
            at,
            id,
            size: m.data().len() + m.event().len(),
        });
    }

    fn saw_retry(&mut self, d: Duration) {
        self.retry_zero |= d.is_zero();
        self.retry_over |= d > RETRY_MAX;
        if self.retries.len() < SHOWN_RETRIES && !self.retries.contains(&d) {
            self.retries.push(d);
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

pub async fn run(a: CheckArgs, colour: bool) -> ExitCode {
    let req = match Request::from_args(&a.request) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    let client = match req.client() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("ssekit: {msg}");
            return ExitCode::from(2);
        }
    };
    if let Err(msg) = req.header_map() {
        eprintln!("ssekit: {msg}");
        return ExitCode::from(2);
    }
    let checks = run_checks(&a, &req, &client).await;
    report(&a, &checks, colour);
    if checks.iter().any(|c| c.level == Level::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn run_checks(a: &CheckArgs, req: &Request, client: &reqwest::Client) -> Vec<Check> {
    let mut checks = Vec::new();
    let head_wait = a.duration.max(Duration::from_secs(5));
    let sent = match req.build(client, &a.url, "") {
        Ok(rb) => tokio::time::timeout(head_wait, req.send(client, rb)).await,
        Err(msg) => {
            checks.push(check("status", Level::Fail, msg));
            return checks;
        }
    };
    let mut resp = match sent {
        Err(_) => {
            checks.push(check(
                "status",
                Level::Fail,
                format!(
                    "no response head within {}: a buffering proxy is the likely cause (nginx's default proxy_buffering holds the head of a slow stream back); have the server send the header X-Accel-Buffering: no, or set proxy_buffering off in nginx; other checks skipped",
                    secs(head_wait)
                ),
            ));
            return checks;
        }
        Ok(Err(msg)) => {
            checks.push(check("status", Level::Fail, msg));
            return checks;
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    let version = resp.version();
    let headers = resp.headers().clone();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if status != reqwest::StatusCode::OK {
        let body = body_start(resp, 4096).await;
        let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let body: String = body.chars().take(200).collect();
        checks.push(check(
            "status",
            Level::Fail,
            format!("{status} ({version:?}), not 200: {body}; other checks skipped"),
        ));
        return checks;
    }
    checks.push(check(
        "status",
        Level::Pass,
        format!("{status} ({version:?})"),
    ));
    checks.push(judge_content_type(header("content-type").as_deref()));
    if checks.last().is_some_and(|c| c.level == Level::Fail) {
        return checks;
    }
    checks.push(judge_cache_control(header("cache-control").as_deref()));

    let obs = observe(&mut resp, a.duration).await;
    drop(resp);
    checks.push(judge_connection(&obs));
    checks.push(judge_buffering(
        &obs,
        header("x-accel-buffering").as_deref(),
    ));
    checks.push(judge_heartbeat(&obs));
    checks.push(judge_retry(&obs));
    checks.push(judge_ids(&obs));
    // SPEC rule 25: nothing re-sends a request body without consent.
    let resend = if req.method == reqwest::Method::GET || a.resend {
        None
    } else {
        Some(format!(
            "skipped: would re-send the request body ({} request); --resend allows it",
            req.method
        ))
    };
    checks.push(match &resend {
        Some(why) => check("resumption", Level::Skip, why.clone()),
        None => resume(a, req, client, &obs).await,
    });
    checks.push(judge_event_size(&obs));
    checks.push(match resend {
        Some(why) => check("compression", Level::Skip, why),
        None => compression(a, req).await,
    });
    checks
}

async fn observe(resp: &mut reqwest::Response, duration: Duration) -> Observation {
    let start = Instant::now();
    let until = start + duration;
    let mut codec = SseCodec::new().with_max_event_size(64 * MIB);
    let mut obs = Observation::new(duration);
    loop {
        if obs.chunks.len() >= MAX_OBSERVED || obs.events.len() >= MAX_OBSERVED {
            obs.capped = true;
            obs.watched = start.elapsed();
            break;
        }
        let chunk = match tokio::time::timeout_at(until, resp.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => {
                obs.end = End::Ended(start.elapsed());
                break;
            }
            Ok(Err(e)) => {
                obs.end = End::Failed(start.elapsed(), chain(&e.without_url()));
                break;
            }
        };
        let at = start.elapsed();
        obs.chunks.push(at);
        codec.feed(chunk);
        loop {
            match codec.next_frame() {
                Ok(Some(Frame::Message(m))) => obs.saw_event(at, &m),
                Ok(Some(Frame::Retry(d))) => obs.saw_retry(d),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    obs.end = End::Failed(at, e.to_string());
                    return obs;
                }
            }
        }
    }
    if !matches!(obs.end, End::StillOpen) {
        let end = match &obs.end {
            End::Ended(t) | End::Failed(t, _) => *t,
            End::StillOpen => duration,
        };
        obs.watched = end;
    }
    obs
}

fn judge_content_type(ct: Option<&str>) -> Check {
    let Some(ct) = ct else {
        return check(
            "content-type",
            Level::Fail,
            "missing; expected text/event-stream",
        );
    };
    let mut parts = ct.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("text/event-stream"))
    {
        return check(
            "content-type",
            Level::Fail,
            format!("{ct:?}; expected text/event-stream (clients refuse the stream)"),
        );
    }
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned());
    match charset {
        Some(c) if !c.eq_ignore_ascii_case("utf-8") => check(
            "content-type",
            Level::Warn,
            format!("{ct:?}: charset {c} is ignored, event streams are always UTF-8"),
        ),
        _ => check("content-type", Level::Pass, ct),
    }
}

fn judge_cache_control(cc: Option<&str>) -> Check {
    match cc {
        None => check(
            "cache-control",
            Level::Warn,
            "missing; send Cache-Control: no-cache so that caches and proxies do not store the stream",
        ),
        Some(v)
            if v.split(',')
                .map(str::trim)
                .any(|d| d.eq_ignore_ascii_case("no-cache") || d.eq_ignore_ascii_case("no-store")) =>
        {
            check("cache-control", Level::Pass, v)
        }
        Some(v) => check(
            "cache-control",
            Level::Warn,
            format!("{v:?} has neither no-cache nor no-store: a cache may store the stream"),
        ),
    }
}

fn judge_connection(obs: &Observation) -> Check {
    match &obs.end {
        End::StillOpen if obs.capped => check(
            "connection",
            Level::Pass,
            format!(
                "open; watched for {}, until {MAX_OBSERVED} chunks had arrived",
                secs(obs.watched)
            ),
        ),
        End::StillOpen => check(
            "connection",
            Level::Pass,
            format!("open for the {} watched", secs(obs.watched)),
        ),
        End::Ended(t) => check(
            "connection",
            Level::Warn,
            format!(
                "the server ended the stream after {} (clients reconnect: fine for a finite answer, not for a feed)",
                secs(*t)
            ),
        ),
        End::Failed(t, why) => check(
            "connection",
            Level::Fail,
            match idle_cut(obs) {
                Some(silence) => format!(
                    "failed after {}: {why}; cut after {} of silence (likely a proxy's idle timeout: send comments as heartbeats more often than that)",
                    secs(*t),
                    secs(silence)
                ),
                None => format!("failed after {}: {why}", secs(*t)),
            },
        ),
    }
}

/// Event arrivals that came in bursts after a silence (see `HELP`).
fn bursts(obs: &Observation) -> (usize, usize) {
    let (mut in_bursts, mut count) = (0, 0);
    let mut i = 0;
    while i < obs.events.len() {
        let first = obs.events[i].at;
        let mut j = i + 1;
        while j < obs.events.len() && obs.events[j].at - obs.events[j - 1].at <= BURST_GAP {
            j += 1;
        }
        // The silence before the run: since the previous chunk of any kind
        // (comments included), or since the response head.
        let before = obs
            .chunks
            .iter()
            .rev()
            .find(|t| **t < first)
            .copied()
            .unwrap_or(Duration::ZERO);
        if j - i >= BURST_MIN && first - before >= BURST_SILENCE {
            in_bursts += j - i;
            count += 1;
        }
        i = j;
    }
    (in_bursts, count)
}

fn judge_buffering(obs: &Observation, accel: Option<&str>) -> Check {
    let hint = match accel {
        Some(v) => format!(" (X-Accel-Buffering: {v})"),
        None => String::new(),
    };
    if obs.chunks.is_empty() {
        return check(
            "buffering",
            Level::Warn,
            format!(
                "no bytes in {}: a silent stream, or a proxy holding them in its buffer{hint}",
                secs(obs.watched)
            ),
        );
    }
    let total = obs.events.len();
    let (in_bursts, count) = bursts(obs);
    let detail = format!(
        "{in_bursts} of {total} events arrived in {count} bursts (3+ within 10 ms after 1 s or more of silence){hint}"
    );
    if in_bursts > 0 && in_bursts * 2 >= total {
        check(
            "buffering",
            Level::Fail,
            format!("{detail}: a proxy buffers the response (nginx: proxy_buffering off, or send X-Accel-Buffering: no)"),
        )
    } else if in_bursts > 0 {
        check("buffering", Level::Warn, detail)
    } else {
        check(
            "buffering",
            Level::Pass,
            format!(
                "{total} events in {} chunks, none in bursts{hint}",
                obs.chunks.len()
            ),
        )
    }
}

/// The silence (no bytes at all) between the last chunk, or the response
/// head, and the end of a connection that ended or failed.
fn silence_before_end(obs: &Observation) -> Option<Duration> {
    let last = obs.chunks.last().copied().unwrap_or(Duration::ZERO);
    match &obs.end {
        End::StillOpen => None,
        End::Ended(t) | End::Failed(t, _) => Some(t.saturating_sub(last)),
    }
}

/// A connection cut after a silence at least this long, and longer than
/// every earlier one, was most likely cut for being idle.
const CUT_SILENCE_MIN: Duration = Duration::from_secs(1);

/// The silence before a connection failed, when it looks like the cause:
/// long enough, and the longest of the connection (a proxy's idle timeout
/// cuts the first silence that reaches it).
fn idle_cut(obs: &Observation) -> Option<Duration> {
    if !matches!(obs.end, End::Failed(..)) {
        return None;
    }
    let silence = silence_before_end(obs)?;
    let mut prev = Duration::ZERO;
    let mut longest_before = Duration::ZERO;
    for t in &obs.chunks {
        longest_before = longest_before.max(*t - prev);
        prev = *t;
    }
    (silence >= CUT_SILENCE_MIN && silence >= longest_before).then_some(silence)
}

fn judge_heartbeat(obs: &Observation) -> Check {
    let mut longest = Duration::ZERO;
    let mut prev = Duration::ZERO;
    for t in &obs.chunks {
        longest = longest.max(*t - prev);
        prev = *t;
    }
    // The silence that ended the connection counts too: when a proxy cut
    // it, that silence is the finding.
    longest =
        longest.max(silence_before_end(obs).unwrap_or_else(|| obs.watched.saturating_sub(prev)));
    let proxies = "nginx closes idle proxied connections after 60 s, Cloudflare after 100 s: send a comment (`: ping`) every 15-30 s";
    if let Some(silence) = idle_cut(obs) {
        return check(
            "heartbeat",
            Level::Fail,
            format!(
                "the connection was cut after {} of silence: likely a proxy's idle timeout; send comments (`: ping`) as heartbeats more often than that",
                secs(silence)
            ),
        );
    }
    if longest >= CLOUDFLARE_TIMEOUT {
        return check(
            "heartbeat",
            Level::Fail,
            format!("silent for {}: {proxies}", secs(longest)),
        );
    }
    if longest >= NGINX_READ_TIMEOUT {
        return check(
            "heartbeat",
            Level::Fail,
            format!(
                "silent for {} (nginx's default proxy_read_timeout is 60 s): {proxies}",
                secs(longest)
            ),
        );
    }
    if longest >= HEARTBEAT_WARN {
        return check(
            "heartbeat",
            Level::Warn,
            format!(
                "silent for {}, close to nginx's 60 s: {proxies}",
                secs(longest)
            ),
        );
    }
    if obs.watched < NGINX_READ_TIMEOUT && longest * 2 >= obs.watched {
        let what = if obs.chunks.is_empty() {
            "nothing arrived".to_owned()
        } else {
            format!("the longest silence was {}", secs(longest))
        };
        return check(
            "heartbeat",
            Level::Warn,
            format!(
                "{what} in {}: cannot tell whether it keeps idle connections alive (run with --duration 70); {proxies}",
                secs(obs.watched)
            ),
        );
    }
    check(
        "heartbeat",
        Level::Pass,
        format!(
            "longest silence {} (nginx closes at 60 s, Cloudflare at 100 s)",
            secs(longest)
        ),
    )
}

fn judge_retry(obs: &Observation) -> Check {
    if obs.retries.is_empty() {
        return check(
            "retry",
            Level::Pass,
            "no retry: field (clients use their own delay)",
        );
    }
    let shown: Vec<String> = obs
        .retries
        .iter()
        .map(|d| format!("{} ms", d.as_millis()))
        .collect();
    let shown = shown.join(", ");
    if obs.retry_zero {
        check(
            "retry",
            Level::Warn,
            format!("retry: {shown}: 0 makes every client reconnect at once when the server drops them (storms)"),
        )
    } else if obs.retry_over {
        check(
            "retry",
            Level::Warn,
            format!("retry: {shown}: over an hour, clients may wait that long after a drop"),
        )
    } else {
        check("retry", Level::Pass, format!("retry: {shown}"))
    }
}

fn judge_ids(obs: &Observation) -> Check {
    let total = obs.events.len();
    if total == 0 {
        return check(
            "ids",
            Level::Warn,
            format!("no events in {}", secs(obs.watched)),
        );
    }
    let with = obs.events.iter().filter(|e| e.id.is_some()).count();
    let last = (!obs.last_id.is_empty()).then(|| shown_id(&obs.last_id));
    match last {
        None => check(
            "ids",
            Level::Warn,
            format!("none of {total} events had an id: a client that reconnects cannot resume and misses what was sent meanwhile"),
        ),
        Some(last) if with < total => check(
            "ids",
            Level::Warn,
            format!("{with} of {total} events had an id (last {last})"),
        ),
        Some(last) => check(
            "ids",
            Level::Pass,
            format!("all {total} events had an id (last {last})"),
        ),
    }
}

async fn resume(
    a: &CheckArgs,
    req: &Request,
    client: &reqwest::Client,
    obs: &Observation,
) -> Check {
    if obs.last_id.is_empty() {
        return check("resumption", Level::Skip, "no ids to resume from");
    }
    let seen: HashSet<u64> = obs.events.iter().filter_map(|e| e.id).collect();
    let first_id = obs.first_id.as_str();
    let shown_last = shown_id(&obs.last_id);
    let wait = a.duration.min(RESUME_WAIT_MAX);
    let deadline = Instant::now() + wait;
    let rb = match req.build(client, &a.url, &obs.last_id) {
        Ok(rb) => rb,
        Err(msg) => return check("resumption", Level::Fail, msg),
    };
    let mut resp = match tokio::time::timeout_at(deadline, req.send(client, rb)).await {
        Err(_) => {
            return check(
                "resumption",
                Level::Warn,
                format!(
                    "no response within {} to Last-Event-ID: {}",
                    secs(wait),
                    shown_last
                ),
            )
        }
        Ok(Err(msg)) => {
            return check(
                "resumption",
                Level::Fail,
                format!("reconnecting with Last-Event-ID failed: {msg}"),
            )
        }
        Ok(Ok(r)) => r,
    };
    match resp.status().as_u16() {
        200 => {}
        204 => {
            return check(
                "resumption",
                Level::Pass,
                format!(
                    "204 No Content after Last-Event-ID: {} (nothing left)",
                    shown_last
                ),
            )
        }
        _ => {
            return check(
                "resumption",
                Level::Fail,
                format!(
                    "answered {} to Last-Event-ID: {}",
                    resp.status(),
                    shown_last
                ),
            )
        }
    }
    let mut codec = SseCodec::new().with_max_event_size(64 * MIB);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => c,
            Err(_) | Ok(Ok(None)) | Ok(Err(_)) => {
                return check(
                    "resumption",
                    Level::Warn,
                    format!(
                        "no event within {} after resuming from {}: cannot tell",
                        secs(wait),
                        shown_last
                    ),
                )
            }
        };
        codec.feed(chunk);
        let m = match codec.next_event() {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                return check(
                    "resumption",
                    Level::Warn,
                    format!("after resuming from {shown_last}: {e}: cannot tell"),
                )
            }
        };
        {
            let id = m.id();
            return if id.is_empty() {
                check(
                    "resumption",
                    Level::Warn,
                    "the first event after resuming had no id",
                )
            } else if id == first_id {
                check(
                    "resumption",
                    Level::Fail,
                    format!("replayed from the start: after Last-Event-ID: {shown_last} the first id was {} again", shown_id(id)),
                )
            } else if seen.contains(&id_hash(id)) {
                check(
                    "resumption",
                    Level::Fail,
                    format!(
                        "after Last-Event-ID: {shown_last} the first id was {}, already seen",
                        shown_id(id)
                    ),
                )
            } else {
                check(
                    "resumption",
                    Level::Pass,
                    format!(
                        "after Last-Event-ID: {shown_last} the first id was {}, a new one",
                        shown_id(id)
                    ),
                )
            };
        }
    }
}

fn judge_event_size(obs: &Observation) -> Check {
    let Some(largest) = obs.events.iter().map(|e| e.size).max() else {
        return check("event-size", Level::Skip, "no events");
    };
    let detail = format!("largest event {largest} bytes");
    if largest > 16 * MIB {
        check(
            "event-size",
            Level::Fail,
            format!("{detail}: over 16 MiB, ssekit's default limit (clients refuse it)"),
        )
    } else if largest > MIB {
        check(
            "event-size",
            Level::Warn,
            format!("{detail}: over 1 MiB (many clients buffer a whole event in memory)"),
        )
    } else {
        check("event-size", Level::Pass, detail)
    }
}

/// A separate request that does not decode the body (reqwest removes
/// `Content-Encoding` from a response it decodes), to see the encoding.
async fn compression(a: &CheckArgs, req: &Request) -> Check {
    let client = match (req.factory)()
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .no_deflate()
        .build()
    {
        Ok(c) => c,
        Err(e) => return check("compression", Level::Skip, format!("no client: {e}")),
    };
    let rb = match req.build(&client, &a.url, "") {
        Ok(rb) => rb.header("accept-encoding", "gzip, br, zstd, deflate"),
        Err(msg) => return check("compression", Level::Skip, msg),
    };
    let wait = a.duration.min(RESUME_WAIT_MAX);
    let resp = match tokio::time::timeout(wait, req.send(&client, rb)).await {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) => return check("compression", Level::Skip, msg),
        Err(_) => {
            return check(
                "compression",
                Level::Skip,
                format!("no response within {}", secs(wait)),
            )
        }
    };
    let encoding = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => {
            check("compression", Level::Pass, "none (uncompressed)")
        }
        Some(e)
            if ["gzip", "br", "zstd", "deflate"]
                .iter()
                .any(|k| e.eq_ignore_ascii_case(k)) =>
        {
            check(
                "compression",
                Level::Pass,
                format!("Content-Encoding: {e} (decoded as it streams; the server must flush it after every event)"),
            )
        }
        Some(e) => check(
            "compression",
            Level::Fail,
            format!("Content-Encoding: {e}, which SSE clients cannot decode"),
        ),
    }
}

fn report(a: &CheckArgs, checks: &[Check], colour: bool) {
    let worst = checks
        .iter()
        .map(|c| c.level)
        .max()
        .unwrap_or(Level::Pass)
        .max(Level::Pass);
    if a.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| json!({"check": c.name, "result": c.level.to_string(), "detail": c.detail}))
            .collect();
        println!(
            "{}",
            json!({
                "url": shown_url(&a.url),
                "duration_s": a.duration.as_secs_f64(),
                "result": worst.to_string(),
                "checks": list,
            })
        );
        return;
    }
    let paint = |level: Level| {
        let code = match level {
            Level::Pass => "32",
            Level::Warn => "33",
            Level::Fail => "31",
            Level::Skip => "2",
        };
        if colour {
            format!("\x1b[{code}m{level}\x1b[0m")
        } else {
            level.to_string()
        }
    };
    println!(
        "ssekit check {} (watched {})",
        shown_url(&a.url),
        secs(a.duration)
    );
    for c in checks {
        // Details quote what the server sent (a body, header values).
        println!(
            "{}  {:<14}{}",
            paint(c.level),
            c.name,
            escape_controls(&c.detail)
        );
    }
    let count = |l| checks.iter().filter(|c| c.level == l).count();
    println!(
        "result: {} ({} passed, {} warnings, {} failed)",
        paint(worst),
        count(Level::Pass),
        count(Level::Warn),
        count(Level::Fail)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs_f(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// An observation with events (and chunks) at these times, open for
    /// `watched` seconds.
    fn obs(watched: f64, events: &[f64]) -> Observation {
        let mut o = Observation::new(secs_f(watched));
        for (i, t) in events.iter().enumerate() {
            o.chunks.push(secs_f(*t));
            o.saw_event(
                secs_f(*t),
                &ssekit::MessageEvent::new("", "0123456789", i.to_string()),
            );
        }
        o
    }

    #[test]
    fn heartbeat_thresholds() {
        let level = |watched, events: &[f64]| judge_heartbeat(&obs(watched, events)).level;
        assert_eq!(
            level(200.0, &[0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0]),
            Level::Pass
        );
        assert_eq!(level(200.0, &[0.0, 46.0, 92.0, 138.0, 184.0]), Level::Warn);
        assert_eq!(level(200.0, &[0.0, 61.0, 122.0, 183.0]), Level::Fail);
        assert_eq!(level(200.0, &[0.0, 101.0, 190.0]), Level::Fail);
        // The silence after the last chunk counts, as does the start.
        assert_eq!(level(200.0, &[0.0, 10.0]), Level::Fail);
        assert_eq!(level(90.0, &[50.0, 60.0, 70.0, 80.0]), Level::Warn);
        // Short runs: a silence of half the run cannot be judged.
        assert_eq!(level(10.0, &[0.1, 1.0, 2.0]), Level::Warn);
        assert_eq!(level(10.0, &[]), Level::Warn);
        assert_eq!(level(10.0, &[0.5, 3.0, 6.0, 9.0]), Level::Pass);
        let cf = judge_heartbeat(&obs(200.0, &[0.0, 101.0, 190.0]));
        assert!(cf.detail.contains("Cloudflare"), "{}", cf.detail);
    }

    #[test]
    fn the_silence_before_a_cut_is_a_finding() {
        let cut = |events: &[f64], at: f64| {
            let mut o = obs(at, events);
            o.end = End::Failed(secs_f(at), "unexpected EOF".into());
            o
        };
        // A silent origin behind a proxy that cuts idle connections at 3 s.
        let silent = cut(&[], 3.0);
        let hb = judge_heartbeat(&silent);
        assert_eq!(hb.level, Level::Fail);
        assert!(
            hb.detail.contains("cut after 3.0 s of silence"),
            "{}",
            hb.detail
        );
        let conn = judge_connection(&silent);
        assert!(
            conn.detail.contains("cut after 3.0 s of silence"),
            "{}",
            conn.detail
        );
        // Events every 0.5 s, then 3 s of silence and the cut.
        assert_eq!(
            judge_heartbeat(&cut(&[0.5, 1.0, 1.5], 4.5)).level,
            Level::Fail
        );
        // A cut right after an event is not about silence.
        let busy = cut(&[0.5, 1.0, 1.5], 1.6);
        assert_eq!(judge_heartbeat(&busy).level, Level::Pass);
        assert!(!judge_connection(&busy).detail.contains("silence"));
        // Nor one after a silence shorter than an earlier one.
        assert!(idle_cut(&cut(&[0.1, 5.0], 7.0)).is_none());
        // A clean end counts its silence, with the usual thresholds.
        let mut ended = obs(100.0, &[0.0, 10.0]);
        ended.end = End::Ended(secs_f(75.0));
        assert_eq!(judge_heartbeat(&ended).level, Level::Fail);
    }

    #[test]
    fn bursts_need_three_events_within_10_ms_after_a_second_of_silence() {
        let burst = |events: &[f64]| bursts(&obs(5.0, events));
        assert_eq!(burst(&[1.2, 1.2, 1.205]), (3, 1));
        assert_eq!(burst(&[1.2, 1.2]), (0, 0), "two are not a burst");
        assert_eq!(burst(&[0.5, 0.5, 0.5]), (0, 0), "no silence before");
        assert_eq!(burst(&[0.0, 0.5, 0.5, 0.5]), (0, 0));
        assert_eq!(burst(&[0.0, 1.5, 1.5, 1.5, 3.0, 3.0, 3.0]), (6, 2));
        assert_eq!(
            burst(&[1.2, 1.22, 1.24]),
            (0, 0),
            "20 ms apart is not a burst"
        );
        assert_eq!(
            judge_buffering(&obs(5.0, &[1.2, 1.2, 1.2]), None).level,
            Level::Fail
        );
        let mostly_spread = obs(5.0, &[0.0, 0.2, 0.4, 0.6, 1.7, 1.7, 1.7]);
        assert_eq!(judge_buffering(&mostly_spread, None).level, Level::Warn);
    }

    #[test]
    fn retry_and_size_thresholds() {
        let retry = |values: &[Duration]| {
            let mut o = obs(1.0, &[0.0]);
            for d in values {
                o.saw_retry(*d);
            }
            judge_retry(&o)
        };
        assert_eq!(retry(&[Duration::from_millis(3000)]).level, Level::Pass);
        assert_eq!(retry(&[Duration::ZERO]).level, Level::Warn);
        assert_eq!(retry(&[RETRY_MAX]).level, Level::Pass);
        assert_eq!(
            retry(&[RETRY_MAX + Duration::from_millis(1)]).level,
            Level::Warn
        );
        // Many values: the first distinct ones are listed, and a 0 after
        // them still counts.
        let mut many: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        many.push(Duration::ZERO);
        let r = retry(&many);
        assert_eq!(r.level, Level::Warn);
        assert!(r.detail.starts_with("retry: 1 ms, 2 ms,"), "{}", r.detail);
        assert!(!r.detail.contains("9 ms"), "{}", r.detail);

        let sized = |size| {
            let mut o = obs(1.0, &[0.0]);
            o.events[0].size = size;
            judge_event_size(&o).level
        };
        assert_eq!(sized(MIB), Level::Pass);
        assert_eq!(sized(MIB + 1), Level::Warn);
        assert_eq!(sized(16 * MIB + 1), Level::Fail);
        assert_eq!(judge_event_size(&obs(1.0, &[])).level, Level::Skip);
    }

    #[test]
    fn header_rules() {
        assert_eq!(
            judge_content_type(Some("text/event-stream")).level,
            Level::Pass
        );
        assert_eq!(
            judge_content_type(Some("Text/Event-Stream; charset=UTF-8")).level,
            Level::Pass
        );
        assert_eq!(
            judge_content_type(Some("text/event-stream; charset=latin1")).level,
            Level::Warn
        );
        assert_eq!(judge_content_type(Some("text/plain")).level, Level::Fail);
        assert_eq!(judge_content_type(None).level, Level::Fail);
        assert_eq!(
            judge_cache_control(Some("no-store, must-revalidate")).level,
            Level::Pass
        );
        assert_eq!(
            judge_cache_control(Some("private, No-Cache")).level,
            Level::Pass
        );
        assert_eq!(judge_cache_control(Some("max-age=5")).level, Level::Warn);
        assert_eq!(judge_cache_control(None).level, Level::Warn);
    }
}
