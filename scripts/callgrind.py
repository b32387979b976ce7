#!/usr/bin/env python3
"""Parser cost in instructions per byte, under callgrind: a noise-free figure.

Timings on a shared machine drift; instruction counts do not. This builds the
parser bench (`benches/peers/parser.rs`) and, for every corpus, cut and parser,
runs it once under `valgrind --tool=callgrind` in its one-shot mode
(`SSEKIT_CALLGRIND=corpus/cut/parser`: generate one corpus, cut it as the
benchmark does, parse it once, exit). A run with parser `none` (generate and
cut only) is the baseline: instructions per byte are

    (Ir of the run - Ir of the baseline) / corpus bytes

so the generator's cost is left out. It prints a Markdown table (the one in
BENCHMARKS.md) with each ssekit path's ratio to the best
peer on that row: best peer's Ir / ours, so above 1 means fewer
instructions than every peer.

Usage (from the repository root; needs valgrind and Python 3, standard
library only):

    python3 scripts/callgrind.py                  # all rows, 512 KiB corpora
    python3 scripts/callgrind.py -j 2             # two valgrind runs at a time
    python3 scripts/callgrind.py openai trickle   # rows whose name has both words
    python3 scripts/callgrind.py --size 1048576   # bigger corpora
    python3 scripts/callgrind.py --annotate openai/trickle/ssekit
                                                  # top functions of one run
    python3 scripts/callgrind.py --exe saved-binary  # an earlier build, to compare

The build goes through `flock /tmp/cargo.lock cargo bench -p ssekit-peer-benches --no-run` (set
`CARGO` to override the command); CARGO_TARGET_DIR is honoured. Callgrind
output files are kept in target/callgrind/ for `callgrind_annotate`.
A 512 KiB corpus takes a few seconds per run; the whole table about 3-5
minutes with `-j 1`.

`eventsource-stream` is skipped on `line_8m / tcp` and `line_8m / trickle`, as
in the benchmark: it re-parses an unfinished line for every chunk, O(line x
chunks).
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import shlex
import subprocess
import sys

CORPORA = ["openai", "anthropic", "openai_crlf", "dashboard", "multiline_64k", "line_8m"]
CUTS = ["16k", "tcp", "trickle"]
OURS = ["ssekit", "ssekit_stream", "ssekit_decoder"]
PEERS = ["eventsource-stream", "sse-stream", "sseer"]
SKIPPED = {("line_8m", "tcp", "eventsource-stream"), ("line_8m", "trickle", "eventsource-stream")}

ROOT = pathlib.Path(__file__).resolve().parent.parent


def build():
    cargo = shlex.split(os.environ.get("CARGO", "flock /tmp/cargo.lock cargo"))
    cmd = cargo + ["bench", "-p", "ssekit-peer-benches", "--bench", "parser", "--no-run",
                   "--message-format=json"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    exe = None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "parser" \
                and msg.get("executable"):
            exe = msg["executable"]
    if exe is None:
        sys.exit("no parser bench executable in cargo's output")
    return exe


def target_dir():
    return pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def run(exe, spec, size):
    """Total Ir of one run of `spec` (corpus/cut/parser), and its bytes."""
    outdir = target_dir() / "callgrind"
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / ("callgrind." + spec.replace("/", "."))
    env = dict(os.environ, SSEKIT_CALLGRIND=spec, SSEKIT_CALLGRIND_SIZE=str(size))
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", exe],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"{spec}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    fields = dict(kv.split("=") for kv in proc.stdout.split())
    if fields["ok"] != "true" and spec.split("/")[2].startswith("ssekit"):
        sys.exit(f"{spec}: wrong events or data from ssekit")
    total = None
    for line in out.read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    return total, int(fields["bytes"]), fields["ok"] == "true"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("filter", nargs="*", help="words a row's corpus/cut must contain")
    ap.add_argument("--size", type=int, default=512 << 10, help="corpus bytes (default 512 KiB)")
    ap.add_argument("-j", type=int, default=1, help="valgrind runs at a time")
    ap.add_argument("--parsers", default=",".join(OURS + PEERS), help="comma-separated")
    ap.add_argument("--exe", help="measure this parser bench binary instead of building one")
    ap.add_argument("--annotate", metavar="CORPUS/CUT/PARSER",
                    help="run one and print callgrind_annotate's top functions")
    args = ap.parse_args()
    exe = args.exe or build()
    if args.annotate:
        run(exe, args.annotate, args.size)
        out = target_dir() / "callgrind" / ("callgrind." + args.annotate.replace("/", "."))
        subprocess.run(["callgrind_annotate", "--inclusive=no", str(out)], check=False)
        return
    parsers = args.parsers.split(",")
    rows = [(c, k) for c in CORPORA for k in CUTS
            if all(w in f"{c}/{k}" for w in args.filter)]
    jobs = []
    for corpus, cut in rows:
        jobs.append((corpus, cut, "none"))
        jobs += [(corpus, cut, p) for p in parsers if (corpus, cut, p) not in SKIPPED]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.j) as pool:
        futs = {pool.submit(run, exe, "/".join(j), args.size): j for j in jobs}
        for fut in concurrent.futures.as_completed(futs):
            results[futs[fut]] = fut.result()
            print(f"  {'/'.join(futs[fut])}: {results[futs[fut]][0]:,} Ir", file=sys.stderr)
    ours = [p for p in OURS if p in parsers]
    peers = [p for p in PEERS if p in parsers]
    print(f"Instructions per byte (callgrind Ir, generation subtracted; {args.size:,}-byte "
          "corpora). Ratio: best peer's Ir ÷ ours (above 1: fewer instructions than every peer).")
    print()
    print("| input / cut | " + " | ".join(ours + peers) + " | "
          + " | ".join(f"{p} ratio" for p in ours) + " |")
    print("|---|" + "--:|" * (len(ours) + len(peers) + len(ours)))
    notes = []
    for corpus, cut in rows:
        base, nbytes, _ = results[(corpus, cut, "none")]
        ipb = {}
        for p in parsers:
            r = results.get((corpus, cut, p))
            if r is None:
                continue
            ipb[p] = (r[0] - base) / nbytes
            if not r[2]:
                notes.append(f"{corpus}/{cut}/{p}: events or data differ from the input")
        cells = [f"{ipb[p]:.2f}" if p in ipb else "skipped" for p in ours + peers]
        best = min((ipb[p] for p in peers if p in ipb), default=None)
        ratios = [f"{best / ipb[p]:.2f}" if best and p in ipb else "-" for p in ours]
        print(f"| {corpus} / {cut} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    for n in notes:
        print(f"\nNOTE {n}")


if __name__ == "__main__":
    main()
