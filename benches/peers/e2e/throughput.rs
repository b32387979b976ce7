//! The throughput mode, what `cargo bench -p ssekit-peer-benches --bench e2e` runs by default:
//! starts the server process, runs one client process per (row, client,
//! round), re-runs a run that other processes disturbed, and writes
//! `e2e.json`; plus the helpers the idle mode shares (the server handle,
//! running a child, the environment, the results folder).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clients::{repeat, unable, CLIENTS, H2_SPLIT_EXIT};
use crate::corpus::{gzip_share, CORPORA};
use crate::measure::{
    children_cpu_s, loadavg, machine_cpu_s, machine_info, proc_cpu_s, source_info,
};
use crate::report::{print_throughput_tables, summarize, unable_list};
use crate::server::h2_windows;

pub(crate) struct Server {
    pub(crate) child: std::process::Child,
    pub(crate) addr: String,
    /// The h2c listener.
    pub(crate) h2_addr: String,
    pub(crate) stats: Value,
}

impl Server {
    pub(crate) fn start(mb: usize) -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["server", &mb.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("server output").unwrap();
        let port = next().strip_prefix("PORT ").expect("PORT line").to_string();
        let h2_port = next()
            .strip_prefix("H2PORT ")
            .expect("H2PORT line")
            .to_string();
        let stats: Value = serde_json::from_str(next().strip_prefix("STATS ").unwrap()).unwrap();
        Server {
            child,
            addr: format!("127.0.0.1:{port}"),
            h2_addr: format!("127.0.0.1:{h2_port}"),
            stats,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the server exits on EOF
        let _ = self.child.wait();
    }
}

/// Runs this binary in a child mode; returns its JSON line, or exits the
/// whole benchmark with the child's message.
///
/// The run's JSON gets what else the machine did meanwhile: `server_cpu_s`
/// (the server process), `other_cpu_s` (every other process: busy CPU time
/// of the machine less the client's and the server's) and `steal_s` (time
/// the hypervisor gave to other machines), over the client's `lifetime_s`.
/// Runs one client process and returns its JSON line with the parent's
/// measurements added; `None` when the client exited with
/// [`H2_SPLIT_EXIT`] (its HTTP/2 streams split over two connections), for
/// the caller to run it again. Any other failure ends the bench.
pub(crate) fn run_child(args: &[String], server: &Server, timeout: Duration) -> Option<Value> {
    let cmd = Command::new(std::env::current_exe().unwrap());
    match try_run_child(cmd, args, server, timeout) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}

/// As [`run_child`], but `cmd` is the program to run `args` with (this
/// binary, or valgrind with this binary as its first argument), and a
/// failure is returned (the child's status and output) rather than ending
/// the bench: the idle mode reports a client that cannot hold its streams.
pub(crate) fn try_run_child(
    mut cmd: Command,
    args: &[String],
    server: &Server,
    timeout: Duration,
) -> Result<Option<Value>, String> {
    let (busy0, steal0) = machine_cpu_s();
    let children0 = children_cpu_s();
    let server0 = proc_cpu_s(server.child.id());
    let t0 = Instant::now();
    let child = cmd
        .args(args)
        .env("SSEKIT_BENCH_ADDR", &server.addr)
        .env("SSEKIT_BENCH_H2_ADDR", &server.h2_addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a client process");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("client output"),
        Err(_) => {
            // SAFETY: signalling our own child by its id.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            // Reap it (the waiting thread sends its output once it exits).
            let _ = rx.recv_timeout(Duration::from_secs(10));
            return Err(format!("{args:?} still running after {timeout:?}; killed"));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(H2_SPLIT_EXIT) {
        // The client's own message says how the streams were split.
        eprintln!(
            "not kept: {}",
            stderr.trim_end().trim_start_matches("FAILED ")
        );
        return Ok(None);
    }
    if !output.status.success() {
        return Err(format!(
            "{args:?} exited with {}\n{stderr}{stdout}",
            output.status
        ));
    }
    let lifetime = t0.elapsed().as_secs_f64();
    let (busy1, steal1) = machine_cpu_s();
    let client_cpu = children_cpu_s() - children0;
    let server_cpu = proc_cpu_s(server.child.id()) - server0;
    let line = stdout.lines().last().unwrap_or_default();
    let mut run: Value = serde_json::from_str(line)
        .map_err(|e| format!("{args:?} printed no JSON ({e}):\n{stdout}\n{stderr}"))?;
    run["lifetime_s"] = json!(lifetime);
    run["client_total_cpu_s"] = json!(client_cpu);
    run["server_cpu_s"] = json!(server_cpu);
    run["other_cpu_s"] = json!((busy1 - busy0 - client_cpu - server_cpu).max(0.0));
    run["steal_s"] = json!(steal1 - steal0);
    Ok(Some(run))
}

/// Whether other processes took more than `SSEKIT_BENCH_MAX_OTHER` (default
/// 0.15) of a core during a run.
pub(crate) fn contended(run: &Value) -> Option<f64> {
    let limit = std::env::var("SSEKIT_BENCH_MAX_OTHER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.15);
    let other = run["other_cpu_s"].as_f64()? + run["steal_s"].as_f64()?;
    let share = other / run["lifetime_s"].as_f64()?;
    // /proc/stat counts in 10 ms ticks: ignore a few.
    (other > 0.05 && share > limit).then_some(share)
}

pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn env_list(name: &str) -> Option<Vec<String>> {
    let v = std::env::var(name).ok()?;
    Some(v.split(',').map(|s| s.trim().to_string()).collect())
}

/// The ssekit crate's folder: this bench's package is `benches/peers/` in it.
pub(crate) fn ssekit_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes a mode's results as `name` in the results folder, and says so
/// with the time the mode took since `started`.
pub(crate) fn write_results(name: &str, out: &serde_json::Value, started: Instant) {
    let path = results_dir().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(out).unwrap() + "\n").unwrap();
    eprintln!(
        "wrote {} ({:.0} s in all)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

pub(crate) fn results_dir() -> std::path::PathBuf {
    let dir = std::env::var("SSEKIT_BENCH_OUT").map_or_else(
        |_| ssekit_root().join("benches/results"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create the results folder");
    dir
}

pub(crate) fn clients_selected() -> Vec<String> {
    let clients: Vec<String> = env_list("SSEKIT_BENCH_CLIENTS")
        .unwrap_or_else(|| CLIENTS.iter().map(|c| c.to_string()).collect());
    for c in &clients {
        assert!(CLIENTS.contains(&c.as_str()), "unknown client {c}");
    }
    clients
}

/// Rows run by default; `SSEKIT_BENCH_ROWS` may also name
/// `<corpus>/mt1spawn` (one stream spawned as a task on the multi-thread
/// runtime), which is not run by default.
pub(crate) const ROWS: [(&str, &str, usize); 12] = [
    ("openai", "ct1", 1),
    ("openai", "mt100", 100),
    ("openai", "mt1", 1),
    ("openai", "h2-mt100", 100),
    ("openai", "gzip-ct1", 1),
    ("openai", "gzip-mt100", 100),
    ("dashboard", "ct1", 1),
    ("dashboard", "mt100", 100),
    ("dashboard", "mt1", 1),
    ("dashboard", "h2-mt100", 100),
    ("dashboard", "gzip-ct1", 1),
    ("dashboard", "gzip-mt100", 100),
];

pub(crate) fn throughput_parent() {
    let mb = env_usize("SSEKIT_BENCH_MB", 128);
    let rounds = env_usize("SSEKIT_BENCH_ROUNDS", 5);
    let clients = clients_selected();
    let rows: Vec<(&str, &str, usize)> = match env_list("SSEKIT_BENCH_ROWS") {
        Some(sel) => ROWS
            .iter()
            .copied()
            .chain(CORPORA.iter().map(|c| (*c, "mt1spawn", 1)))
            .filter(|(c, r, _)| sel.contains(&format!("{c}/{r}")))
            .collect(),
        None => ROWS.to_vec(),
    };
    let load = loadavg();
    if load > 0.5 {
        eprintln!("WARNING: 1-minute load average is {load:.2}: other work may skew the numbers");
    }
    let bench_start = Instant::now();
    let machine = machine_info();
    eprintln!("generating {mb} MiB corpora in the server process...");
    let server = Server::start(mb);
    eprintln!("server at {} ({})", server.addr, server.stats);
    let mut runs: Vec<Value> = Vec::new();
    for round in 0..rounds {
        for &(corpus, rt, streams) in &rows {
            for i in 0..clients.len() {
                let client = &clients[(i + round) % clients.len()];
                if let Some(why) = unable(client, rt) {
                    if round == 0 {
                        eprintln!("{corpus:9} {rt:10} {client:20} not run: {why}");
                    }
                    continue;
                }
                let args = vec![
                    "client".to_string(),
                    client.clone(),
                    corpus.to_string(),
                    rt.to_string(),
                    streams.to_string(),
                ];
                // A run during which other processes took CPU is run again
                // (after a pause), up to 3 times, then kept and marked. A
                // run whose HTTP/2 streams split over two connections is not
                // kept: it is run again, up to 3 times, then the bench fails.
                let mut attempt = 1;
                let mut splits = 0;
                let mut run = loop {
                    let Some(run) = run_child(&args, &server, Duration::from_secs(600)) else {
                        splits += 1;
                        if splits > 3 {
                            eprintln!(
                                "FAILED: {args:?} split its HTTP/2 streams {splits} times in a row"
                            );
                            std::process::exit(1);
                        }
                        eprintln!(
                            "round {round} {corpus} {rt} {client}: streams split over HTTP/2 connections; again"
                        );
                        continue;
                    };
                    match contended(&run) {
                        Some(share) if attempt < 4 => {
                            eprintln!(
                                "round {round} {corpus} {rt} {client}: other processes used {:.0}% of a core; again in 20 s",
                                share * 100.0
                            );
                            std::thread::sleep(Duration::from_secs(20));
                            attempt += 1;
                        }
                        _ => break run,
                    }
                };
                run["round"] = json!(round);
                run["attempts"] = json!(attempt);
                run["h2_split_reruns"] = json!(splits);
                run["contended"] = json!(contended(&run).is_some());
                let conns = match run["h2_tcp_connections"].as_u64() {
                    Some(1) => "  1 connection".to_string(),
                    Some(tcp) => {
                        format!("  1 connection used, {} opened and closed unused", tcp - 1)
                    }
                    None => String::new(),
                };
                eprintln!(
                    "round {round} {corpus:9} {rt:10} {client:20} {:>12.0} events/s  {:.2} s{conns}",
                    run["events"].as_f64().unwrap() / run["wall_s"].as_f64().unwrap(),
                    run["wall_s"].as_f64().unwrap()
                );
                runs.push(run);
            }
        }
    }
    let summary = summarize(&runs, &rows, &clients);
    print_throughput_tables(&summary, &rows, &clients, mb, rounds, &machine);
    let out = json!({
        "machine": machine,
        "ssekit": source_info(),
        "config": {
            "mb": mb,
            "rounds": rounds,
            "repeat": CORPORA.iter().map(|c| (c.to_string(), json!(repeat(c)))).collect::<serde_json::Map<_, _>>(),
            "gzip_share": gzip_share(),
            "h2_windows": {"stream": h2_windows().0, "connection": h2_windows().1},
            "clients": clients,
            "rows": rows.iter().map(|(c, r, s)| json!({"corpus": c, "runtime": r, "streams": s})).collect::<Vec<_>>(),
            "load_avg_1m_start": load,
            "load_avg_1m_end": loadavg(),
            "total_s": bench_start.elapsed().as_secs_f64(),
        },
        "server": server.stats,
        "summary": summary,
        "unable": unable_list(&rows, &clients),
        "runs": runs,
    });
    write_results("e2e.json", &out, bench_start);
}
