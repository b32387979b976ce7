//! The cold-start mode (`-- cold`): what a fresh process pays from building
//! a client to the first event of its first stream, and then of a second
//! stream in the same process. The `cold-client` processes measure one
//! sample each (wall time natively; instructions when the parent runs them
//! under callgrind, collecting only the measured regions); the `cold`
//! parent runs them per client and sample, writes `cold.json` and prints
//! the table.

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::clients::{fail, runtime};
use crate::measure::{alloc_totals, loadavg, machine_info, source_info, COUNTING};
use crate::report::median;
use crate::throughput::{env_list, env_usize, try_run_child, write_results, Server};

// ---------------------------------------------------------------------------
// Callgrind client requests (valgrind.h's documented x86-64 protocol,
// written out here): no-ops when the process is not under valgrind.

/// `VG_USERREQ_TOOL_BASE('C','T')`: callgrind's first request number.
const CALLGRIND_BASE: usize = (b'C' as usize) << 24 | (b'T' as usize) << 16;
const DUMP_STATS_AT: usize = CALLGRIND_BASE + 3;
const START_INSTRUMENTATION: usize = CALLGRIND_BASE + 4;
const STOP_INSTRUMENTATION: usize = CALLGRIND_BASE + 5;

/// One valgrind client request with one argument; returns valgrind's
/// answer, or 0 natively.
#[cfg(target_arch = "x86_64")]
fn client_request(request: usize, arg: usize) -> usize {
    let args: [usize; 6] = [request, arg, 0, 0, 0, 0];
    let mut result: usize = 0;
    // SAFETY: the four rotations of rdi add up to 128 bits (rdi is left as
    // it was) and `xchg rbx, rbx` changes nothing, so natively this only
    // sets flags; valgrind recognises the sequence and reads the six words
    // at rax, which live until the block ends.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            options(nostack),
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: usize, _arg: usize) -> usize {
    0
}

/// Starts counting instructions (all threads): the process runs under
/// `--instr-atstart=no`.
fn callgrind_start() {
    client_request(START_INSTRUMENTATION, 0);
}

/// Writes what was counted since the last dump to a file of its own, with
/// `what` in its `desc: Trigger:` line, and stops counting.
fn callgrind_dump_and_stop(what: &std::ffi::CStr) {
    client_request(DUMP_STATS_AT, what.as_ptr() as usize);
    client_request(STOP_INSTRUMENTATION, 0);
}

// ---------------------------------------------------------------------------
// The child

/// What each client builds once per process: its HTTP client, or for
/// ssekit nothing (its first `EventSource::new` builds the default pool's
/// first client; `ssekit-client` hands it a `reqwest::Client` made here).
enum Built {
    Reqwest(reqwest::Client),
    Reqwest012(reqwest012::Client),
    Launchdarkly(Arc<dyn eventsource_client::Client>),
    Ssekit,
}

/// The clients of this mode: the e2e bench's, and `ssekit-client`, ssekit
/// given a `reqwest::Client::new()` as the peers on reqwest 0.13 are,
/// which separates the default pool's set-up from the stream's.
pub(crate) const COLD_CLIENTS: [&str; 7] = [
    "reqwest",
    "ssekit",
    "ssekit-client",
    "sse-stream",
    "sseer",
    "reqwest-eventsource",
    "eventsource-client",
];

fn build(kind: &str, url: &str) -> Built {
    match kind {
        "reqwest" | "sse-stream" | "sseer" | "ssekit-client" => {
            Built::Reqwest(reqwest::Client::new())
        }
        "reqwest-eventsource" => Built::Reqwest012(reqwest012::Client::new()),
        "eventsource-client" => {
            use eventsource_client as es;
            let transport = launchdarkly_sdk_transport::HyperTransport::builder()
                .build_http()
                .expect("hyper transport");
            let client = es::ClientBuilder::for_url(url)
                .expect("eventsource-client URL")
                .reconnect(es::ReconnectOptions::reconnect(false).build())
                .build_with_transport(transport);
            Built::Launchdarkly(Arc::new(client))
        }
        _ => Built::Ssekit,
    }
}

type Ready = tokio::sync::oneshot::Sender<Result<(), String>>;

/// One stream of `kind` on what `build` made: opens, says so on `ready` at
/// its first event (or its error), then keeps reading until the stream or
/// the process ends, so that a second stream cannot reuse its connection.
async fn stream(kind: String, built: Arc<Built>, url: String, ready: Ready) {
    let mut ready = Some(ready);
    let mut first = |r: Result<(), String>| {
        if let Some(tx) = ready.take() {
            let _ = tx.send(r);
        }
    };
    let result: Result<(), String> = async {
        match (kind.as_str(), &*built) {
            ("reqwest", Built::Reqwest(c)) => {
                let mut resp = c.get(&url).send().await.or_else(|e| fail(&kind, e))?;
                while let Some(chunk) = resp.chunk().await.or_else(|e| fail(&kind, e))? {
                    if !chunk.starts_with(b":") {
                        first(Ok(()));
                    }
                }
            }
            ("ssekit" | "ssekit-client", b) => {
                let mut es = match b {
                    Built::Reqwest(c) => {
                        ssekit::EventSource::builder(&url).client(c.clone()).build()
                    }
                    _ => ssekit::EventSource::new(&url),
                }
                .or_else(|e| fail(&kind, e))?;
                while let Some(item) = es.next().await {
                    if let ssekit::Event::Message(_) = item.or_else(|e| fail(&kind, e))? {
                        first(Ok(()));
                    }
                }
            }
            ("sse-stream", Built::Reqwest(c)) => {
                let resp = c
                    .get(&url)
                    .header("accept", "text/event-stream")
                    .send()
                    .await
                    .or_else(|e| fail(&kind, e))?;
                let mut s = sse_stream::SseByteStream::new(resp.bytes_stream());
                while let Some(item) = s.next().await {
                    if item.or_else(|e| fail(&kind, e))?.data.is_some() {
                        first(Ok(()));
                    }
                }
            }
            ("sseer", Built::Reqwest(c)) => {
                let mut es = sseer::EventSource::new(c.get(&url))
                    .or_else(|e| fail(&kind, format!("{e:?}")))?;
                while let Some(item) = es.next().await {
                    if let sseer::reqwest::StreamEvent::Event(_) =
                        item.or_else(|e| fail(&kind, e))?
                    {
                        first(Ok(()));
                    }
                }
            }
            ("reqwest-eventsource", Built::Reqwest012(c)) => {
                let mut es = reqwest_eventsource::EventSource::new(c.get(&url))
                    .or_else(|e| fail(&kind, e))?;
                while let Some(item) = es.next().await {
                    if let reqwest_eventsource::Event::Message(_) =
                        item.or_else(|e| fail(&kind, e))?
                    {
                        first(Ok(()));
                    }
                }
            }
            ("eventsource-client", Built::Launchdarkly(c)) => {
                let mut s = c.stream();
                while let Some(item) = s.next().await {
                    if let eventsource_client::SSE::Event(_) =
                        item.or_else(|e| fail(&kind, format!("{e:?}")))?
                    {
                        first(Ok(()));
                    }
                }
            }
            _ => return fail(&kind, "unknown client"),
        }
        fail(&kind, "stream ended")
    }
    .await;
    if let Err(e) = result {
        first(Err(e));
    }
}

/// One sample: builds `kind`'s client and opens a stream, timed and counted
/// to its first event; then the same for a second stream beside it.
pub(crate) fn cold_client_main(kind: &str) {
    let addr = std::env::var("SSEKIT_BENCH_ADDR").expect("SSEKIT_BENCH_ADDR");
    let url = format!("http://{addr}/idle");
    // The runtime is the application's, not the client's: made before.
    let rt = runtime("mt");
    let wait = |rx: tokio::sync::oneshot::Receiver<Result<(), String>>| {
        rt.block_on(async {
            match tokio::time::timeout(Duration::from_secs(60), rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => fail(kind, "the stream's task ended"),
                Err(_) => fail(kind, "no first event within 60 s"),
            }
        })
    };
    let counted = || alloc_totals().0;
    COUNTING.store(true, Relaxed);

    // First stream: the client built, then the stream, in this process.
    let a0 = counted();
    callgrind_start();
    let t0 = Instant::now();
    let built = Arc::new(build(kind, &url));
    let build_s = t0.elapsed().as_secs_f64();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(stream(kind.to_string(), built.clone(), url.clone(), tx));
    let first = wait(rx);
    let first_s = t0.elapsed().as_secs_f64();
    callgrind_dump_and_stop(c"first");
    let a1 = counted();

    // Second stream, the first still open.
    callgrind_start();
    let t1 = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(stream(kind.to_string(), built, url, tx));
    let second = wait(rx);
    let second_s = t1.elapsed().as_secs_f64();
    callgrind_dump_and_stop(c"second");
    let a2 = counted();

    if let Err(e) = first.and(second) {
        eprintln!("FAILED cold {kind}: {e}");
        std::process::exit(1);
    }
    let out = json!({
        "client": kind,
        "build_ms": build_s * 1e3,
        "first_ms": first_s * 1e3,
        "second_ms": second_s * 1e3,
        "first_allocs": a1 - a0,
        "second_allocs": a2 - a1,
    });
    println!("{out}");
    // Skip dropping the runtime and the open streams.
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// The parent

/// Whether valgrind runs here; `None` with the reason when not.
fn valgrind_available() -> Result<String, String> {
    if std::env::var("SSEKIT_COLD_CALLGRIND").is_ok_and(|v| v == "0") {
        return Err("SSEKIT_COLD_CALLGRIND=0".into());
    }
    match Command::new("valgrind").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!("`valgrind --version` exited with {}", o.status)),
        Err(e) => Err(format!("no valgrind ({e})")),
    }
}

/// The instructions of one callgrind dump file: its `totals:` line (the
/// first event is `Ir`). Not `summary:`, which valgrind 3.19 gets wrong in
/// every dump after the first (it underflows).
fn dump_instructions(path: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// One sample of `client` under callgrind, counting only the two measured
/// regions: (first stream, second stream) instructions.
fn callgrind_sample(
    client: &str,
    server: &Server,
    dir: &std::path::Path,
) -> Result<(u64, u64), String> {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=callgrind",
        "--instr-atstart=no",
        "--dump-line=no",
        "--dump-instr=no",
    ])
    .arg(format!(
        "--callgrind-out-file={}",
        dir.join("callgrind.out.%p").display()
    ))
    .arg(std::env::current_exe().unwrap());
    let args = vec!["cold-client".to_string(), client.to_string()];
    // The JSON line (times under valgrind mean nothing) is not kept: the
    // instructions are in the dump files.
    try_run_child(cmd, &args, server, Duration::from_secs(300))?.ok_or("split")?;
    // The dumps this run made: callgrind.out.<pid>.<n>, each naming its
    // trigger ("first", "second"); the final one at exit (no number) has
    // nothing, instrumentation being off.
    let mut first = None;
    let mut second = None;
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let trigger = text
            .lines()
            .find_map(|l| l.strip_prefix("desc: Trigger: "))
            .unwrap_or_default()
            .to_string();
        if trigger.ends_with("first") {
            first = dump_instructions(&path);
        } else if trigger.ends_with("second") {
            second = dump_instructions(&path);
        }
        let _ = std::fs::remove_file(&path);
    }
    match (first, second) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!(
            "{client}: no callgrind dumps for both streams in {}",
            dir.display()
        )),
    }
}

pub(crate) fn cold_parent() {
    let samples = env_usize("SSEKIT_COLD_SAMPLES", 15);
    let cg_samples = env_usize("SSEKIT_COLD_CALLGRIND_SAMPLES", 3);
    let clients: Vec<String> = env_list("SSEKIT_BENCH_CLIENTS")
        .unwrap_or_else(|| COLD_CLIENTS.iter().map(|c| c.to_string()).collect());
    for c in &clients {
        assert!(COLD_CLIENTS.contains(&c.as_str()), "unknown client {c}");
    }
    let machine = machine_info();
    let load = loadavg();
    let started = Instant::now();
    let server = Server::start(0);
    let mut runs: Vec<Value> = Vec::new();
    for sample in 0..samples {
        for i in 0..clients.len() {
            let client = &clients[(i + sample) % clients.len()];
            let cmd = Command::new(std::env::current_exe().unwrap());
            let args = vec!["cold-client".to_string(), client.clone()];
            match try_run_child(cmd, &args, &server, Duration::from_secs(120)) {
                Ok(Some(mut run)) => {
                    run["sample"] = json!(sample);
                    runs.push(run);
                }
                Ok(None) => unreachable!("HTTP/1.1 has no split"),
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    let valgrind = valgrind_available();
    let mut instr: Vec<Value> = Vec::new();
    match &valgrind {
        Ok(version) if cg_samples > 0 => {
            eprintln!("instructions: {version}, {cg_samples} run(s) per client under callgrind");
            let dir = std::env::temp_dir().join(format!("ssekit-cold-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a folder for callgrind's files");
            for sample in 0..cg_samples {
                for client in &clients {
                    match callgrind_sample(client, &server, &dir) {
                        Ok((a, b)) => instr.push(json!({"client": client, "sample": sample, "first_instr": a, "second_instr": b})),
                        Err(e) => {
                            eprintln!("FAILED under callgrind: {e}");
                            std::process::exit(1);
                        }
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        Ok(_) => eprintln!("instructions skipped: SSEKIT_COLD_CALLGRIND_SAMPLES=0"),
        Err(why) => eprintln!("instructions skipped: {why}"),
    }
    let mut summary = Vec::new();
    for client in &clients {
        let med = |rs: &[Value], f: &dyn Fn(&Value) -> f64| {
            let mut v: Vec<f64> = rs
                .iter()
                .filter(|r| r["client"] == *client)
                .map(f)
                .collect();
            median(&mut v)
        };
        let num = |k: &'static str| move |r: &Value| r[k].as_f64().unwrap();
        let first_ms = med(&runs, &num("first_ms"));
        let second_ms = med(&runs, &num("second_ms"));
        let first_instr = med(&instr, &num("first_instr"));
        let second_instr = med(&instr, &num("second_instr"));
        // What the first stream paid that the second did not: the share of
        // its cost paid once per process (by instructions when counted).
        let once = |first: f64, second: f64| (first - second) / first;
        let mut s = json!({
            "client": client,
            "build_ms": med(&runs, &num("build_ms")),
            "first_ms": first_ms,
            "second_ms": second_ms,
            "once_share_time": once(first_ms, second_ms),
            "first_allocs": med(&runs, &num("first_allocs")),
            "second_allocs": med(&runs, &num("second_allocs")),
        });
        if !instr.is_empty() {
            s["first_minstr"] = json!(first_instr / 1e6);
            s["second_minstr"] = json!(second_instr / 1e6);
            s["once_share_instr"] = json!(once(first_instr, second_instr));
        }
        summary.push(s);
    }
    println!(
        "\nCold start, from building the client to the first event, fresh process per sample; median of {samples} samples (time), {} under callgrind (instructions)\n",
        if instr.is_empty() { 0 } else { cg_samples }
    );
    println!("| client | first stream ms | first stream Minstr | second stream ms | second Minstr | once-per-process share | client build ms | allocs first / second |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in &summary {
        let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
        let minstr = |k: &str| {
            s[k].as_f64()
                .map_or_else(|| "—".to_string(), |v| format!("{v:.2}"))
        };
        let share = s["once_share_instr"]
            .as_f64()
            .unwrap_or(f("once_share_time"));
        // ssekit builds its default pool's client inside the stream's
        // first poll, not before: no build time of its own.
        let build = if s["client"] == "ssekit" {
            "—".to_string()
        } else {
            format!("{:.2}", f("build_ms"))
        };
        println!(
            "| {} | {:.2} | {} | {:.2} | {} | {:.0}% | {build} | {:.0} / {:.0} |",
            s["client"].as_str().unwrap(),
            f("first_ms"),
            minstr("first_minstr"),
            f("second_ms"),
            minstr("second_minstr"),
            share * 100.0,
            f("first_allocs"),
            f("second_allocs"),
        );
    }
    if let Err(why) = &valgrind {
        println!("\nInstructions not counted: {why}.");
    }
    let out = json!({
        "machine": machine,
        "ssekit": source_info(),
        "config": {
            "samples": samples,
            "callgrind_samples": if instr.is_empty() { 0 } else { cg_samples },
            "valgrind": valgrind.as_ref().map_or_else(|why| json!({"skipped": why}), |v| json!(v)),
            "clients": clients,
            "url": "http://127.0.0.1/idle (loopback, plain HTTP/1.1)",
            "runtime": "multi-thread, 2 workers, built before the measured region",
            "load_avg_1m_start": load,
            "total_s": started.elapsed().as_secs_f64(),
        },
        "summary": summary,
        "runs": runs,
        "instructions": instr,
    });
    write_results("cold.json", &out, started);
}
