#!/usr/bin/env bash
# Runs every benchmark once, in one sitting, and writes the tables that
# BENCHMARKS.md and the README quote, so that all of them come from one run
# on one machine state:
#
#   1. the parser bench (criterion, wall time)      -> benches/results/parser.md
#   2. the parser under callgrind (instructions)    -> benches/results/parser_instructions.md
#   3. the end-to-end bench (throughput)            -> benches/results/e2e.json
#   4. its idle mode (1,000 and 10,000 streams)     -> benches/results/idle.json
#   5. its cold-start mode                          -> benches/results/cold.json
#   6. scripts/bench_chart.py (SVG charts, tables)  -> benches/results/e2e.md
#
# Usage, from the repository's root: `bash scripts/bench_all.sh` (about 35
# minutes on a 2-core machine; needs valgrind and Python 3). Run it on a
# quiet machine: nothing else should build or benchmark meanwhile. Steps can
# be chosen by name: `bash scripts/bench_all.sh parser e2e`.
# Environment: SSEKIT_BENCH_MB (e2e corpus size, default 128) and the other
# SSEKIT_BENCH_* variables of benches/peers/e2e/main.rs pass through.
set -euo pipefail
cd "$(dirname "$0")/.."

out=benches/results
mkdir -p "$out"
target=${CARGO_TARGET_DIR:-target}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(parser instructions e2e idle cold charts)

want() {
    local s
    for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

stamp() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

stamp "building the peer benches"
cargo bench -p ssekit-peer-benches --no-run

if want parser; then
    stamp "parser bench (criterion)"
    rm -rf "$target/criterion"
    cargo bench -p ssekit-peer-benches --bench parser
    python3 scripts/parser_table.py "$target/criterion" | tee "$out/parser.md"
fi
if want instructions; then
    stamp "parser under callgrind"
    CARGO=cargo python3 scripts/callgrind.py | tee "$out/parser_instructions.md"
fi
if want e2e; then
    stamp "end to end"
    cargo bench -p ssekit-peer-benches --bench e2e
fi
if want idle; then
    stamp "idle streams"
    cargo bench -p ssekit-peer-benches --bench e2e -- idle
fi
if want cold; then
    stamp "cold start"
    cargo bench -p ssekit-peer-benches --bench e2e -- cold
fi
if want charts; then
    stamp "charts and tables"
    python3 scripts/bench_chart.py | tee "$out/e2e.md"
fi
stamp "done"
