//! The throughput mode's report: medians over rounds, ratios to the
//! reqwest ceiling, the rows a client cannot run, and the Markdown tables
//! printed at the end (BENCHMARKS.md's tables come from
//! `scripts/bench_chart.py`, which reads `e2e.json`).

use serde_json::{json, Value};

use crate::clients::unable;

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The (row, client) pairs not run, with the reason.
pub(crate) fn unable_list(rows: &[(&str, &str, usize)], clients: &[String]) -> Vec<Value> {
    rows.iter()
        .flat_map(|&(corpus, rt, _)| {
            clients.iter().filter_map(move |client| {
                unable(client, rt).map(
                    |why| json!({"corpus": corpus, "runtime": rt, "client": client, "reason": why}),
                )
            })
        })
        .collect()
}

pub(crate) fn summarize(
    runs: &[Value],
    rows: &[(&str, &str, usize)],
    clients: &[String],
) -> Vec<Value> {
    let mut out = Vec::new();
    for &(corpus, rt, _) in rows {
        let of = |client: &str| -> Vec<&Value> {
            runs.iter()
                .filter(|r| r["corpus"] == corpus && r["runtime"] == rt && r["client"] == client)
                .collect()
        };
        let med = |rs: &[&Value], f: &dyn Fn(&Value) -> f64| {
            let mut v: Vec<f64> = rs.iter().map(|r| f(r)).collect();
            median(&mut v)
        };
        let rate = |r: &Value| r["events"].as_f64().unwrap() / r["wall_s"].as_f64().unwrap();
        let ceiling = med(&of("reqwest"), &rate);
        let cpu_per_event =
            |r: &Value| r["cpu_s"].as_f64().unwrap() / r["events"].as_f64().unwrap() * 1e6;
        let ceiling_cpu = med(&of("reqwest"), &cpu_per_event);
        for client in clients {
            if let Some(why) = unable(client, rt) {
                out.push(json!({
                    "corpus": corpus,
                    "runtime": rt,
                    "client": client,
                    "runs": 0,
                    "unable": why,
                }));
                continue;
            }
            let rs = of(client);
            let events_per_s = med(&rs, &rate);
            let cpu_us = med(&rs, &cpu_per_event);
            out.push(json!({
                "corpus": corpus,
                "runtime": rt,
                "client": client,
                "runs": rs.len(),
                "events_per_s": events_per_s,
                "mib_per_s": med(&rs, &|r| r["bytes"].as_f64().unwrap() / r["wall_s"].as_f64().unwrap() / 1048576.0),
                "ratio": events_per_s / ceiling,
                "cpu_us_per_event": cpu_us,
                "cpu_vs_ceiling": cpu_us / ceiling_cpu,
                "allocs_per_event": med(&rs, &|r| r["allocs"].as_f64().unwrap() / r["events"].as_f64().unwrap()),
                "vol_ctx_switches_per_event": med(&rs, &|r| r["vol_ctx_switches"].as_f64().unwrap() / r["events"].as_f64().unwrap()),
                "server_cpu_share": med(&rs, &|r| r["server_cpu_s"].as_f64().unwrap() / r["lifetime_s"].as_f64().unwrap()),
                "contended_runs": rs.iter().filter(|r| r["contended"] == true).count(),
            }));
        }
    }
    out
}

pub(crate) fn print_throughput_tables(
    summary: &[Value],
    rows: &[(&str, &str, usize)],
    clients: &[String],
    mb: usize,
    rounds: usize,
    machine: &Value,
) {
    println!(
        "\nEnd to end, {mb} MiB per corpus, median of {rounds} rounds; {} ({} cores), Linux {}, {}\n",
        machine["cpu"].as_str().unwrap_or(""),
        machine["nproc"],
        machine["kernel"].as_str().unwrap_or(""),
        machine["date"].as_str().unwrap_or("")
    );
    println!("| corpus | runtime | client | events/s | x ceiling | MiB/s | CPU µs/event | CPU x ceiling | allocs/event |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for s in summary {
        if s["unable"].is_string() {
            println!(
                "| {} | {} | {} | — | — | — | — | — | — |",
                s["corpus"].as_str().unwrap(),
                s["runtime"].as_str().unwrap(),
                s["client"].as_str().unwrap(),
            );
            continue;
        }
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.0} | {:.3} | {:.2} | {:.2} |",
            s["corpus"].as_str().unwrap(),
            s["runtime"].as_str().unwrap(),
            s["client"].as_str().unwrap(),
            s["events_per_s"].as_f64().unwrap(),
            // No ratios without the ceiling (SSEKIT_BENCH_CLIENTS without
            // `reqwest`): JSON has no NaN, so they are null.
            s["ratio"].as_f64().unwrap_or(f64::NAN),
            s["mib_per_s"].as_f64().unwrap(),
            s["cpu_us_per_event"].as_f64().unwrap(),
            s["cpu_vs_ceiling"].as_f64().unwrap_or(f64::NAN),
            s["allocs_per_event"].as_f64().unwrap(),
        );
    }
    // The same ratios, one row per corpus x runtime.
    println!("\n| corpus / runtime | {} |", clients.join(" | "));
    println!("|---|{}", "---:|".repeat(clients.len()));
    for &(corpus, rt, _) in rows {
        let cells: Vec<String> = clients
            .iter()
            .map(|client| {
                let s = summary
                    .iter()
                    .find(|s| {
                        s["corpus"] == corpus
                            && s["runtime"] == rt
                            && s["client"] == client.as_str()
                    })
                    .unwrap();
                match s["ratio"].as_f64() {
                    Some(r) if !s["unable"].is_string() => format!("{r:.2}x"),
                    _ => "—".to_string(),
                }
            })
            .collect();
        println!("| {corpus} / {rt} | {} |", cells.join(" | "));
    }
    let unable = unable_list(rows, clients);
    if !unable.is_empty() {
        println!();
    }
    for u in &unable {
        println!(
            "— {} cannot run {} / {}: {}",
            u["client"].as_str().unwrap(),
            u["corpus"].as_str().unwrap(),
            u["runtime"].as_str().unwrap(),
            u["reason"].as_str().unwrap()
        );
    }
}
