//! End to end: every Rust SSE client reading real chunked HTTP bodies from a
//! local server process, against reqwest reading the same bodies with no
//! parsing at all (the ceiling). Plus two more modes: the memory of 1,000
//! and 10,000 idle streams, and the cold start of a fresh process.
//!
//! ```text
//! cargo bench -p ssekit-peer-benches --bench e2e          # throughput: table + benches/results/e2e.json
//! cargo bench -p ssekit-peer-benches --bench e2e -- idle  # idle streams: table + benches/results/idle.json
//! cargo bench -p ssekit-peer-benches --bench e2e -- cold  # cold start: table + benches/results/cold.json
//! python3 scripts/bench_chart.py                          # benches/results/e2e.svg + BENCHMARKS.md tables
//! ```
//!
//! One binary, which runs itself again (`std::env::current_exe`) in modes:
//!
//! - `server [MiB]`: a plain tokio TCP server on 127.0.0.1:0 (no hyper) that
//!   prints `PORT n` and answers `GET /sse/<corpus>?events=N` with `200`,
//!   `content-type: text/event-stream` and a chunked body, pre-rendered at
//!   start and written with one `write_all` of the whole prefix (the kernel
//!   takes as much per `write` as the socket buffer holds); `GET
//!   /meta/<corpus>?events=N` tells the events, body bytes and data bytes of
//!   that prefix; `&repeat=k` sends those events k times over in the same
//!   body; `GET /idle` sends one event, then a comment every 5 s. `GET
//!   /gz/<corpus>?events=N&repeat=k` sends the same events gzipped
//!   (`content-encoding: gzip`, always, whatever the request's
//!   `Accept-Encoding`), compressed at start (see *gzip rows*). A second
//!   listener, printed as `H2PORT n`, is a hyper HTTP/2 server, h2c with
//!   prior knowledge, that answers `GET /sse/...` with the same events as
//!   DATA frames cut where the chunks are (slices of the pre-rendered
//!   corpus); it counts TCP connections, connections that carried a
//!   request, and requests (`GET /h2stats` on the first port). It exits
//!   when its standard input closes (the parent's end).
//! - `client <name> <corpus> <runtime> <streams>`: one client kind against
//!   the server (`SSEKIT_BENCH_ADDR`), printing one JSON line. Wall and CPU
//!   time (`getrusage(RUSAGE_SELF)`, all threads) and allocations (a counting
//!   global allocator) are taken from the moment every stream has opened
//!   (response head received) to the moment the last one has seen all its
//!   events: connecting is not measured, consuming is.
//! - `idle-client <name> <streams>`: opens that many streams, waits for each
//!   one's first event, and reports resident memory (`VmRSS`) before and
//!   after, and heap bytes still allocated (with
//!   `SSEKIT_BENCH_ALLOC_SIZES=1`, also the live allocations by size, which
//!   the parent compares with the floor's). A client that cannot hold that
//!   many streams (an error, a timeout, the open-file limit) is reported
//!   with its reason, and the run goes on.
//! - `cold-client <name>`: one cold-start sample in a fresh process. The
//!   runtime (multi-thread, 2 workers) is made first; then it times, and
//!   counts allocations, from building the client (`reqwest::Client::new()`,
//!   the reqwest 0.12 one, eventsource-client's; for `ssekit` nothing: its
//!   first `EventSource::new` builds the default pool's client) to the
//!   first event of a first stream on `GET /idle`, then from opening a
//!   second stream (the first still open, so on a new connection) to its
//!   first event. Under callgrind (`--instr-atstart=no`) it starts
//!   instrumentation at each region's start and dumps and stops it at its
//!   end (client requests), so the process's start-up, the runtime and the
//!   server are not counted. `ssekit-client` (this mode only) is ssekit
//!   given a `reqwest::Client::new()` as the reqwest 0.13 peers are.
//! - default (what `cargo bench -p ssekit-peer-benches --bench e2e` runs), `idle` and `cold`:
//!   the parents, which start the server and the clients and print the
//!   tables. `cold` runs every client `SSEKIT_COLD_SAMPLES` times (default
//!   15, samples interleaved) for time, then, when `valgrind` runs,
//!   `SSEKIT_COLD_CALLGRIND_SAMPLES` times (default 3; 0, or
//!   `SSEKIT_COLD_CALLGRIND=0`, skips them, saying so) under callgrind for
//!   instructions, and reports medians.
//!
//! Clients (`name`):
//!
//! | name | what |
//! |---|---|
//! | `reqwest` | the ceiling: `Response::chunk()` in a loop, counting bytes, no parsing; its events are bytes / (bytes per event). In idle mode, the floor: the bodies alone (`bytes_stream()`), the rest of each `Response` dropped |
//! | `ssekit` | `ssekit::EventSource` (default client), counting `Event::Message`; on the HTTP/2 rows built with `.client(...)`, the shared h2c reqwest 0.13 `Client` |
//! | `sse-stream` | `sse_stream::SseByteStream` over reqwest 0.13's `bytes_stream()` |
//! | `sseer` | `sseer::EventSource` (feature `reqwest`) on requests of the shared reqwest 0.13 `Client` |
//! | `reqwest-eventsource` | `reqwest_eventsource::EventSource` on one shared reqwest 0.12 `Client` |
//! | `eventsource-client` | LaunchDarkly's `eventsource-client` 0.18.0 with `HyperTransport::build_http` (launchdarkly-sdk-transport), reconnection off; on the HTTP/2 rows `build_with_connector` with a connector of ours (`H2cConnector`) |
//!
//! The reqwest 0.13 `Client` (ceiling, sse-stream, sseer) and the reqwest
//! 0.12 one are built once per client process and shared by its streams:
//! `Client::new()`, or on the HTTP/2 rows `http2_prior_knowledge()` with
//! the windows below. Both decode gzip (feature `gzip`), and so does
//! ssekit's default client.
//!
//! Corpora, generated deterministically (SplitMix64, fixed seed) by the
//! server, `SSEKIT_BENCH_MB` MiB of events each (default 128):
//!
//! - `openai`: chat-completion chunks, `data: {~200 B json}\n\n`, then
//!   `data: [DONE]`; one event per HTTP chunk, as LLM servers flush them.
//! - `dashboard`: `id: n`, `event: metrics`, `data: {~1 KiB json}`, cut in
//!   16 KiB HTTP chunks regardless of event boundaries. It is read fast, so
//!   each stream reads its events 8 times over in one body
//!   (`SSEKIT_BENCH_REPEAT_DASHBOARD`; `SSEKIT_BENCH_REPEAT_OPENAI`, default
//!   1), for runs long enough to time.
//!
//! Runtimes: `ct1`, one stream on a current-thread runtime; `mt100`, 100
//! streams, each a spawned task on the 2-worker multi-thread runtime, each
//! reading the first 1/100 of the corpus (`?events=N`), so the total is the
//! same; `mt1`, one stream driven by `block_on` on the multi-thread runtime,
//! as `#[tokio::main]` code does (for information: reqwest's connection task
//! runs on a worker, the stream on the main thread). Not run by default:
//! `mt1spawn`, the one stream spawned as a task on that runtime
//! (`SSEKIT_BENCH_ROWS=openai/mt1spawn`).
//!
//! Rows are a corpus and a runtime (`openai/ct1`); those above are HTTP/1.1
//! with chunked bodies. Two more kinds, for both corpora, run by default:
//!
//! - HTTP/2, `h2-mt100`: the `mt100` streams all multiplexed over ONE h2c
//!   (prior knowledge) connection per client process. Flow-control windows
//!   are the same for the server and every client: 2 MiB per stream, 5 MiB
//!   per connection, which are hyper's client defaults, set explicitly in
//!   the reqwest clients, because eventsource-client's transport exposes no
//!   HTTP/2 settings (`SSEKIT_BENCH_H2_WINDOWS=16,64` sets others, in MiB,
//!   and then leaves eventsource-client out of these rows). The server's h2
//!   is told its socket has no vectored writes, so that it copies frames
//!   under 1 KiB into its 16 KiB write buffer rather than making one
//!   `writev` per `openai` event, which made the server, not the clients,
//!   the bottleneck. `openai` is one event per DATA frame, `dashboard` 16
//!   KiB frames. After the run the client asks the server's counts: all its
//!   100 requests must have come on exactly one connection. A run whose
//!   requests were all made but split over two connections (hyper-util's
//!   pool racing itself, about one run in five) is not kept but made
//!   again, up to 3 times (`h2_split_reruns` in the JSON); any other
//!   count fails the bench. eventsource-client's transport (hyper-util's pooled client, no
//!   `http2_only`) has no prior-knowledge switch; it speaks HTTP/2 on plain
//!   TCP when the connector says ALPN chose `h2`, which `H2cConnector`
//!   does. Its 100 requests each start a TCP connect until the first
//!   connection is up; the spare sockets are closed without a request: the
//!   run's `h2_tcp_connections` counts them (reported, not failed), and
//!   `h2_connections_used` must be 1.
//! - gzip, `gzip-ct1` and `gzip-mt100`: `GET /gz/...`, the same events in
//!   a gzip body, on HTTP/1.1 chunked. `openai` is one deflate stream with
//!   a sync flush after each event, each flushed piece one HTTP chunk (as a
//!   compressing LLM proxy sends it); `dashboard` is one deflate stream of
//!   the whole prefix, cut in 16 KiB chunks. Decoding makes these rows
//!   several times slower, so they read the first quarter of the corpus
//!   (`SSEKIT_BENCH_GZIP_SHARE`, default 4: each stream reads events / (4 x
//!   streams)), with the same repeats. Compressed at server start (flate2,
//!   level 6; `openai` once for every prefix of that quarter, `dashboard`
//!   once per prefix that a row reads), never per request;
//!   `repeat=k` sends the compressed prefix k times over in one stream
//!   (each copy starts fresh and ends on a sync flush, so copies concatenate),
//!   then the trailer. The server decodes a few such bodies at start to
//!   check them. Events, data and body bytes are counted on the decoded
//!   content. The server gzips whatever the request asks, so a client that
//!   cannot decode is not run: eventsource-client (its transport neither
//!   asks for nor decodes `content-encoding`) shows "—" on these rows, with
//!   the reason, in the tables and in `unable` of the JSON.
//!
//! Every client must see exactly the expected number of events and data
//! bytes on one connection (a second open, an error or an early end is a
//! failure): the run stops with the client's message.
//!
//! Environment: `SSEKIT_BENCH_MB` (corpus size), `SSEKIT_BENCH_ROUNDS`
//! (default 5; round r runs every client of every row once, the client order
//! rotated by r), `SSEKIT_BENCH_CLIENTS` and `SSEKIT_BENCH_ROWS` (comma
//! lists, e.g. `ssekit,reqwest` and `openai/ct1`), `SSEKIT_BENCH_IDLE_STREAMS`
//! (a comma list, default `1000,10000`; each count needs an open-file hard
//! limit above it: 10,000 streams on loopback take 10,000 ephemeral ports),
//! `SSEKIT_BENCH_IDLE_ROUNDS` (default 3), `SSEKIT_COLD_SAMPLES` and
//! `SSEKIT_COLD_CALLGRIND_SAMPLES` (above),
//! `SSEKIT_BENCH_OUT` (results folder, default `benches/results`),
//! `SSEKIT_BENCH_GZIP_SHARE` and `SSEKIT_BENCH_H2_WINDOWS` (see above),
//! `SSEKIT_BENCH_SSEKIT_NO_IDLE` (any value: ssekit's client is built with
//! `.idle_timeout(None)`, to measure what the idle timeout costs) and
//! `SSEKIT_BENCH_SSEKIT_SHARED_CLIENT` (any value: ssekit is given the
//! peers' shared reqwest 0.13 `Client` instead of its default pool).
//!
//! Files, one concern each: `main.rs` (this description, and the dispatch
//! on the mode), `server.rs` (the server process), `corpus.rs` (the
//! corpora and their gzip renderings), `clients.rs` (the client processes
//! and the HTTP/2 connector), `idle.rs` (the idle mode), `cold.rs` (the
//! cold-start mode and its callgrind client requests), `throughput.rs`
//! (the throughput parent and the helpers the parents share), `report.rs`
//! (medians and tables) and `measure.rs` (the counting allocator, CPU and
//! memory of processes, the machine).

mod clients;
mod cold;
mod corpus;
mod idle;
mod measure;
mod report;
mod server;
mod throughput;

use clients::client_main;
use cold::{cold_client_main, cold_parent};
use idle::{idle_client_main, idle_parent};
use server::server_main;
use throughput::throughput_parent;

fn main() {
    // `cargo bench` adds `--bench`; other flags are not ours either.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match arg(0) {
        "server" => server_main(arg(1).parse().unwrap_or(128)),
        "client" => client_main(arg(1), arg(2), arg(3), arg(4).parse().expect("streams")),
        "idle-client" => idle_client_main(arg(1), arg(2).parse().expect("streams")),
        "idle" => idle_parent(),
        "cold-client" => cold_client_main(arg(1)),
        "cold" => cold_parent(),
        "" | "throughput" => throughput_parent(),
        other => {
            eprintln!("unknown mode {other:?}: expected nothing (throughput), idle or cold");
            std::process::exit(2);
        }
    }
}
