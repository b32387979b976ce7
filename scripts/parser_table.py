#!/usr/bin/env python3
"""Prints BENCHMARKS.md's parser table from criterion's saved results.

Run after `cargo bench -p ssekit-peer-benches --bench parser`. Reads
target/criterion/<group>/<parser>/new/{benchmark,estimates}.json and prints,
for every input and cut, the median throughput of each parser in MB/s
(10^6 bytes/s) and the ratio of each of ssekit's three paths (direct,
`EventStream`, `Decoder`) to the fastest peer on that row. Standard library
only.
"""
import json
import pathlib
import sys

PEERS = ["eventsource-stream", "sse-stream", "sseer"]
OURS = ["ssekit", "ssekit_stream", "ssekit_decoder"]


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    rows = {}
    for bench in sorted(root.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        nbytes = meta["throughput"]["Bytes"]
        median_ns = est["median"]["point_estimate"]
        mbps = nbytes / (median_ns / 1e9) / 1e6
        rows.setdefault(meta["group_id"], {})[meta["function_id"]] = mbps
    if not rows:
        sys.exit(f"no criterion results under {root}; run `cargo bench -p ssekit-peer-benches --bench parser` first")
    order = ["openai", "anthropic", "openai_crlf", "dashboard", "multiline_64k", "line_8m"]
    cuts = ["16k", "tcp", "trickle"]
    cols = OURS + PEERS
    ratios = [f"{o} ÷ fastest peer" for o in OURS]
    print("| input / cut | " + " | ".join(cols + ratios) + " |")
    print("|---|" + "--:|" * (len(cols) + len(ratios)))
    for corpus in order:
        for cut in cuts:
            r = rows.get(f"{corpus}/{cut}")
            if not r:
                continue
            cells = [f"{r[c]:,.0f}" if c in r else "skipped" for c in cols]
            peers = [r[p] for p in PEERS if p in r]
            ratio = [f"{r[o] / max(peers):.2f}" if peers and o in r else "-" for o in OURS]
            print(f"| {corpus} / {cut} | " + " | ".join(cells + ratio) + " |")


if __name__ == "__main__":
    main()
