//! The idle mode: 1,000 and 10,000 streams (`SSEKIT_BENCH_IDLE_STREAMS`)
//! that stay open after one event. The `idle-client` processes hold the
//! streams and report resident memory and live heap; the `idle` parent runs
//! them per stream count, client and round, reports a client that cannot
//! hold that many with its reason, and writes `idle.json`.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::clients::{fail, runtime, Clients};
use crate::measure::{
    alloc_totals, live_by_size, loadavg, machine_info, raise_nofile, source_info, vm_rss_kib,
    COUNTING, SIZES,
};
use crate::report::median;
use crate::throughput::{
    clients_selected, env_list, env_usize, try_run_child, write_results, Server,
};

/// File descriptors a client process needs besides its sockets (the
/// runtime, the standard streams, the epoll instance), with room to spare.
const FD_MARGIN: u64 = 64;

pub(crate) fn idle_client_main(kind: &str, streams: usize) {
    let nofile = raise_nofile();
    if nofile < streams as u64 + FD_MARGIN {
        eprintln!(
            "FAILED idle {kind}: the open-file limit is {nofile}, below {streams} sockets + {FD_MARGIN} (raise the hard limit, ulimit -Hn)"
        );
        std::process::exit(1);
    }
    let sizes = std::env::var("SSEKIT_BENCH_ALLOC_SIZES").is_ok_and(|v| v == "1");
    SIZES.store(sizes, Relaxed);
    let addr = std::env::var("SSEKIT_BENCH_ADDR").expect("SSEKIT_BENCH_ADDR");
    let url = format!("http://{addr}/idle");
    let rt = runtime("mt");
    let clients = Arc::new(rt.block_on(async { Clients::new(kind, &url, false) }));
    if kind == "ssekit" {
        // As the others' clients are built before the baseline, so is the
        // default pool's first client: building an EventSource leases it,
        // and with it the TLS configuration the pool's clients share (the
        // system's roots, read once per process: about 1.5 MiB of resident
        // memory that the allocator keeps). Dropped at once; the pool keeps
        // the client, and the streams below take their places on it. That
        // cost is the cold mode's (`-- cold`), not a per-stream one.
        drop(ssekit::EventSource::new(&url).expect("an ssekit stream"));
    }
    let ready = Arc::new(Ready {
        count: AtomicUsize::new(0),
        streams,
        all: tokio::sync::Notify::new(),
    });
    let failed = Arc::new(Mutex::new(None::<String>));
    // Give the runtime's threads a moment to settle before the baseline.
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = vm_rss_kib();
    COUNTING.store(true, Relaxed);
    let (_, in0, out0) = alloc_totals();
    let t0 = Instant::now();
    for _ in 0..streams {
        let holder = hold_stream(kind, url.clone(), clients.clone(), ready.clone());
        let (ready, failed) = (ready.clone(), failed.clone());
        rt.spawn(async move {
            if let Err(e) = holder.await {
                failed.lock().unwrap().get_or_insert(e);
                ready.all.notify_one();
            }
        });
    }
    let opened = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                let notified = ready.all.notified();
                if ready.count.load(Relaxed) == streams || failed.lock().unwrap().is_some() {
                    break;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    });
    let open_s = t0.elapsed().as_secs_f64();
    if let Some(e) = failed.lock().unwrap().take() {
        eprintln!("FAILED idle {kind}: {e}");
        std::process::exit(1);
    }
    if !opened {
        eprintln!(
            "FAILED idle {kind}: only {} of {streams} streams open after 120 s",
            ready.count.load(Relaxed)
        );
        std::process::exit(1);
    }
    let rss_open = vm_rss_kib();
    let (allocs, in1, out1) = alloc_totals();
    // Past one heartbeat (every 5 s): the streams have been woken once more.
    std::thread::sleep(Duration::from_secs(6));
    let rss_beat = vm_rss_kib();
    let (_, in2, out2) = alloc_totals();
    let heap = |i: u64, o: u64| (i as i64 - in0 as i64) - (o as i64 - out0 as i64);
    let live_sizes = sizes.then(live_by_size);
    if let Some(e) = failed.lock().unwrap().take() {
        eprintln!("FAILED idle {kind}: {e}");
        std::process::exit(1);
    }
    let mut out = json!({
        "client": kind,
        "streams": streams,
        "open_s": open_s,
        "rss_kib_before": rss_before,
        "rss_kib_open": rss_open,
        "rss_kib_after_heartbeat": rss_beat,
        "heap_bytes_open": heap(in1, out1),
        "heap_bytes_after_heartbeat": heap(in2, out2),
        "allocs_to_open": allocs,
        "nofile_limit": nofile,
    });
    if let Some(live) = live_sizes {
        // Allocations live after the heartbeat, by size (see `live_by_size`).
        out["live_by_size"] = json!(live);
    }
    println!("{out}");
    std::process::exit(0);
}

/// Counts streams that have seen their first event.
pub(crate) struct Ready {
    pub(crate) count: AtomicUsize,
    pub(crate) streams: usize,
    pub(crate) all: tokio::sync::Notify,
}

impl Ready {
    pub(crate) fn mark(&self) {
        if self.count.fetch_add(1, Relaxed) + 1 == self.streams {
            self.all.notify_one();
        }
    }
}

pub(crate) type Holder =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// One idle stream of client `kind`: it opens, marks itself ready at its
/// first event, then keeps reading (heartbeats) for as long as the process
/// lives. Each kind is its own boxed future, so a task is as large as that
/// client needs, not as the largest of them.
pub(crate) fn hold_stream(
    kind: &str,
    url: String,
    clients: Arc<Clients>,
    ready: Arc<Ready>,
) -> Holder {
    match kind {
        // The floor: the bodies alone (as `bytes_stream()`), the rest of
        // each `Response` dropped, as an SSE client keeps them.
        "reqwest" => Box::pin(async move {
            let resp = clients
                .reqwest
                .get(&url)
                .send()
                .await
                .or_else(|e| fail("reqwest", e))?;
            let mut body = resp.bytes_stream();
            let mut seen = false;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.or_else(|e| fail("reqwest", e))?;
                if !seen && !chunk.starts_with(b":") {
                    seen = true;
                    ready.mark();
                }
            }
            fail("reqwest", "idle stream ended")
        }),
        "ssekit" => Box::pin(async move {
            let mut es = ssekit::EventSource::new(&url).or_else(|e| fail("ssekit", e))?;
            let mut seen = false;
            while let Some(item) = es.next().await {
                if let ssekit::Event::Message(_) = item.or_else(|e| fail("ssekit", e))? {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail("ssekit", "idle stream ended")
        }),
        "sse-stream" => Box::pin(async move {
            let resp = clients
                .reqwest
                .get(&url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .or_else(|e| fail("sse-stream", e))?;
            let mut s = sse_stream::SseByteStream::new(resp.bytes_stream());
            let mut seen = false;
            while let Some(item) = s.next().await {
                if item.or_else(|e| fail("sse-stream", e))?.data.is_some() && !seen {
                    seen = true;
                    ready.mark();
                }
            }
            fail("sse-stream", "idle stream ended")
        }),
        "sseer" => Box::pin(async move {
            let mut es = sseer::EventSource::new(clients.reqwest.get(&url))
                .or_else(|e| fail("sseer", format!("{e:?}")))?;
            let mut seen = false;
            while let Some(item) = es.next().await {
                if let sseer::reqwest::StreamEvent::Event(_) = item.or_else(|e| fail("sseer", e))? {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail("sseer", "idle stream ended")
        }),
        "reqwest-eventsource" => Box::pin(async move {
            let kind = "reqwest-eventsource";
            let mut es = reqwest_eventsource::EventSource::new(clients.reqwest012.get(&url))
                .or_else(|e| fail(kind, e))?;
            let mut seen = false;
            while let Some(item) = es.next().await {
                if let reqwest_eventsource::Event::Message(_) = item.or_else(|e| fail(kind, e))? {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail(kind, "idle stream ended")
        }),
        "eventsource-client" => Box::pin(async move {
            let kind = "eventsource-client";
            let client = clients.launchdarkly.as_ref().expect("built for this kind");
            let mut s = client.stream();
            let mut seen = false;
            while let Some(item) = s.next().await {
                if let eventsource_client::SSE::Event(_) =
                    item.or_else(|e| fail(kind, format!("{e:?}")))?
                {
                    if !seen {
                        seen = true;
                        ready.mark();
                    }
                }
            }
            fail(kind, "idle stream ended")
        }),
        other => {
            let e = format!("{other}: unknown client");
            Box::pin(async move { Err(e) })
        }
    }
}

/// The stream counts of the idle mode: `SSEKIT_BENCH_IDLE_STREAMS`, a
/// comma list (default `1000,10000`).
fn idle_stream_counts() -> Vec<usize> {
    env_list("SSEKIT_BENCH_IDLE_STREAMS")
        .map(|v| {
            v.iter()
                .map(|n| n.parse().expect("SSEKIT_BENCH_IDLE_STREAMS: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![1000, 10_000])
}

/// Why an idle client failed, from its output: the child's own `FAILED
/// idle <client>: ...` line, or the first line of the parent's message.
fn failure_reason(message: &str, client: &str) -> String {
    let prefix = format!("FAILED idle {client}: ");
    message
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .or_else(|| message.lines().next())
        .unwrap_or("failed")
        .to_string()
}

pub(crate) fn idle_parent() {
    let counts = idle_stream_counts();
    let rounds = env_usize("SSEKIT_BENCH_IDLE_ROUNDS", 3);
    let clients = clients_selected();
    let machine = machine_info();
    let load = loadavg();
    let started = Instant::now();
    // The server's sockets: one per stream of the client running, and the
    // closing ones of the client before.
    raise_nofile();
    let server = Server::start(0);
    let mut runs: Vec<Value> = Vec::new();
    // (streams, client) -> why that client cannot hold that many streams:
    // it is not run again at that count.
    let mut unable: Vec<(usize, String, String)> = Vec::new();
    for &streams in &counts {
        for round in 0..rounds {
            for i in 0..clients.len() {
                let client = &clients[(i + round) % clients.len()];
                if unable.iter().any(|(n, c, _)| *n == streams && c == client) {
                    continue;
                }
                let args = vec![
                    "idle-client".to_string(),
                    client.clone(),
                    streams.to_string(),
                ];
                let cmd = std::process::Command::new(std::env::current_exe().unwrap());
                // Idle streams are HTTP/1.1: no run comes back split.
                let mut run = match try_run_child(cmd, &args, &server, Duration::from_secs(300)) {
                    Ok(Some(run)) => run,
                    Ok(None) => unreachable!("an HTTP/1.1 idle client reported a split"),
                    Err(e) => {
                        let reason = failure_reason(&e, client);
                        eprintln!("round {round} {client:20} {streams} streams: cannot: {reason}");
                        unable.push((streams, client.clone(), reason));
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                };
                run["round"] = json!(round);
                let per = |k: &str| {
                    (run[k].as_f64().unwrap() - run["rss_kib_before"].as_f64().unwrap())
                        / streams as f64
                };
                eprintln!(
                    "round {round} {client:20} {streams} streams: {:.1} KiB/stream open, {:.1} after a heartbeat, all open in {:.3} s",
                    per("rss_kib_open"),
                    per("rss_kib_after_heartbeat"),
                    run["open_s"].as_f64().unwrap()
                );
                runs.push(run);
                // Let the server notice the closed sockets before the next client.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    let mut summary = Vec::new();
    for &streams in &counts {
        let med = |client: &str, f: &dyn Fn(&Value) -> f64| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter(|r| r["client"] == client && r["streams"] == streams)
                .map(f)
                .collect();
            median(&mut v)
        };
        let kib = |k: &'static str| {
            move |r: &Value| {
                (r[k].as_f64().unwrap() - r["rss_kib_before"].as_f64().unwrap()) / streams as f64
            }
        };
        let heap =
            |k: &'static str| move |r: &Value| r[k].as_f64().unwrap() / streams as f64 / 1024.0;
        let floor = med("reqwest", &kib("rss_kib_open"));
        let floor_beat = med("reqwest", &kib("rss_kib_after_heartbeat"));
        let heap_floor = med("reqwest", &heap("heap_bytes_open"));
        println!(
            "\n{streams} idle streams (one event, then a comment every 5 s), median of {rounds} rounds; floor: one shared reqwest::Client holding the bodies\n"
        );
        println!("| client | KiB/stream | vs floor | after a heartbeat | vs floor | heap KiB/stream | vs floor | allocs/stream | s to open all |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for client in &clients {
            if let Some((_, _, why)) = unable.iter().find(|(n, c, _)| *n == streams && c == client)
            {
                println!("| {client} | — | — | — | — | — | — | — | — |");
                summary.push(json!({"streams": streams, "client": client, "unable": why}));
                continue;
            }
            let open = med(client, &kib("rss_kib_open"));
            let beat = med(client, &kib("rss_kib_after_heartbeat"));
            let heap_open = med(client, &heap("heap_bytes_open"));
            let s = json!({
                "streams": streams,
                "client": client,
                "kib_per_stream": open,
                "delta_vs_floor_kib": open - floor,
                "kib_per_stream_after_heartbeat": beat,
                "delta_vs_floor_after_heartbeat_kib": beat - floor_beat,
                "heap_kib_per_stream": heap_open,
                "heap_delta_vs_floor_kib": heap_open - heap_floor,
                "heap_kib_per_stream_after_heartbeat": med(client, &heap("heap_bytes_after_heartbeat")),
                "allocs_per_stream_to_open": med(client, &|r| r["allocs_to_open"].as_f64().unwrap() / streams as f64),
                "open_all_s": med(client, &|r| r["open_s"].as_f64().unwrap()),
            });
            // JSON has no NaN: without the floor (SSEKIT_BENCH_CLIENTS
            // without `reqwest`) the deltas are null and print as NaN.
            let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {client} | {:.1} | {:+.1} | {:.1} | {:+.1} | {:.1} | {:+.1} | {:.0} | {:.3} |",
                f("kib_per_stream"),
                f("delta_vs_floor_kib"),
                f("kib_per_stream_after_heartbeat"),
                f("delta_vs_floor_after_heartbeat_kib"),
                f("heap_kib_per_stream"),
                f("heap_delta_vs_floor_kib"),
                f("allocs_per_stream_to_open"),
                f("open_all_s"),
            );
            summary.push(s);
        }
        for (n, client, why) in &unable {
            if *n == streams {
                println!("\n— {client} cannot hold {streams} streams: {why}");
            }
        }
        print_live_sizes(&runs, streams, &clients);
    }
    let out = json!({
        "machine": machine,
        "ssekit": source_info(),
        "config": {"streams": counts, "rounds": rounds, "heartbeat_s": 5, "runtime": "multi-thread, 2 workers", "load_avg_1m_start": load, "total_s": started.elapsed().as_secs_f64()},
        "summary": summary,
        "unable": unable.iter().map(|(n, c, why)| json!({"streams": n, "client": c, "reason": why})).collect::<Vec<_>>(),
        "runs": runs,
    });
    write_results("idle.json", &out, started);
}

/// With `SSEKIT_BENCH_ALLOC_SIZES=1`: per client, the live allocations per
/// stream by size that differ from the floor's (reqwest's) by 0.05 or more
/// per stream, from each client's first run at this stream count, and the
/// bytes per stream they add up to.
fn print_live_sizes(runs: &[Value], streams: usize, clients: &[String]) {
    let sizes = |client: &str| -> Option<std::collections::BTreeMap<u64, f64>> {
        let run = runs
            .iter()
            .find(|r| r["client"] == client && r["streams"] == streams)?;
        Some(
            run["live_by_size"]
                .as_array()?
                .iter()
                .map(|p| {
                    (
                        p[0].as_u64().unwrap(),
                        p[1].as_f64().unwrap() / streams as f64,
                    )
                })
                .collect(),
        )
    };
    let Some(floor) = sizes("reqwest") else {
        return;
    };
    for client in clients.iter().filter(|c| *c != "reqwest") {
        let Some(mine) = sizes(client) else { continue };
        let mut keys: Vec<u64> = floor.keys().chain(mine.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut cells = Vec::new();
        let (mut bytes, mut count) = (0.0, 0.0);
        for k in keys {
            let d = mine.get(&k).copied().unwrap_or(0.0) - floor.get(&k).copied().unwrap_or(0.0);
            bytes += d * k as f64;
            count += d;
            if d.abs() >= 0.05 {
                cells.push(format!("{k} B x {d:+.2}"));
            }
        }
        println!(
            "\nlive allocations per stream, {client} less the floor ({count:+.1} allocations, {bytes:+.0} bytes; sizes above {} by power of two): {}",
            crate::measure::EXACT_SIZES,
            cells.join(", ")
        );
    }
}
