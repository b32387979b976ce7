#!/usr/bin/env python3
"""Chart and tables from the end-to-end benchmark's own output.

Reads benches/results/e2e.json (written by `cargo bench -p ssekit-peer-benches --bench e2e`; its
HTTP/2 and gzip rows are labelled so, and a client that cannot run a row
shows "—" with the reason under the table) and,
if present, benches/results/idle.json (`cargo bench -p ssekit-peer-benches --bench e2e -- idle`:
a table per stream count, a client that cannot hold that many shown "—"
with its reason) and benches/results/cold.json (`... --bench e2e -- cold`:
the cold-start table); writes benches/results/e2e.svg (and idle.svg) and prints the markdown tables
for BENCHMARKS.md. Medians are recomputed here from the raw runs, so the chart
shows exactly what the runs measured. Standard library only.

    python3 scripts/bench_chart.py [RESULTS_DIR]
"""

import json
import os
import statistics
import sys
import textwrap
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "benches", "results")

CEILING = "reqwest"
# One colour per client, in the benchmark's client order (colour-blind safe).
PALETTE = ["#7f7f7f", "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#f0e442"]
RUNTIME_NOTE = {
    "ct1": "1 stream, current-thread",
    "mt100": "100 streams, multi-thread",
    "mt1": "1 stream, multi-thread (info)",
    "h2-mt100": "100 streams on 1 h2c connection",
    "gzip-ct1": "1 gzip stream, current-thread",
    "gzip-mt100": "100 gzip streams, multi-thread",
}
# Row kinds other than HTTP/1.1 chunked: how their labels name them.
PROTOCOL_PREFIX = {"h2-": "HTTP/2", "gzip-": "gzip"}
CLIENT_NOTE = {CEILING: "reqwest, no parsing (ceiling)"}


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def machine_line(m):
    return "{} ({} cores, {} GiB), Linux {}, {}".format(
        m.get("cpu", "?"), m.get("nproc", "?"), m.get("mem_gib", "?"), m.get("kernel", "?"),
        m.get("date", "?")[:10])


def row_label(corpus, rt):
    """`openai / ct1`, or with the protocol spelled out: `openai / HTTP/2 mt100`."""
    for prefix, name in PROTOCOL_PREFIX.items():
        if rt.startswith(prefix):
            return "{} / {} {}".format(corpus, name, rt[len(prefix):])
    return "{} / {}".format(corpus, rt)


def protocol_note(rows, cfg):
    """What the chart's subtitle says of the HTTP/2 and gzip rows, if any."""
    notes = []
    if any(r.startswith("h2-") for _, r in rows):
        notes.append("HTTP/2: h2c, one connection")
    if any(r.startswith("gzip-") for _, r in rows):
        notes.append("gzip: the first 1/{} of the corpus".format(cfg.get("gzip_share", 4)))
    return " ({})".format("; ".join(notes)) if notes else ""


def unable_map(data):
    """(corpus, runtime, client) -> why that client cannot run that row."""
    return {(u["corpus"], u["runtime"], u["client"]): u["reason"] for u in data.get("unable", [])}


def unable_notes(data):
    """One line per client that cannot run some rows, naming the rows."""
    by_client = {}
    for u in data.get("unable", []):
        by_client.setdefault((u["client"], u["reason"]), []).append(
            row_label(u["corpus"], u["runtime"]))
    return ["— {} cannot run {}: {}".format(client, ", ".join(rows), reason)
            for (client, reason), rows in by_client.items()]


def e2e_summary(data):
    """Per (corpus, runtime, client): medians over the raw runs."""
    rows = [(r["corpus"], r["runtime"]) for r in data["config"]["rows"]]
    clients = data["config"]["clients"]
    out = {}
    for corpus, rt in rows:
        for client in clients:
            runs = [r for r in data["runs"]
                    if r["corpus"] == corpus and r["runtime"] == rt and r["client"] == client]
            if not runs:
                continue
            out[(corpus, rt, client)] = {
                "runs": len(runs),
                "events_per_s": statistics.median(r["events"] / r["wall_s"] for r in runs),
                "mib_per_s": statistics.median(r["bytes"] / r["wall_s"] / 2**20 for r in runs),
                "cpu_us": statistics.median(r["cpu_s"] / r["events"] * 1e6 for r in runs),
                "allocs": statistics.median(r["allocs"] / r["events"] for r in runs),
                "spread": (max(r["events"] / r["wall_s"] for r in runs)
                           - min(r["events"] / r["wall_s"] for r in runs)),
            }
        ceiling = out.get((corpus, rt, CEILING))
        for client in clients:
            s = out.get((corpus, rt, client))
            if s is not None:
                s["ratio"] = s["events_per_s"] / ceiling["events_per_s"] if ceiling else float("nan")
    return rows, clients, out


def fmt_rate(x):
    if x >= 1e6:
        return "{:.2f} M".format(x / 1e6)
    if x >= 1e3:
        return "{:.0f} k".format(x / 1e3)
    return "{:.0f}".format(x)


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#222", extra=""):
    return ('<text x="{:.1f}" y="{:.1f}" font-size="{}" text-anchor="{}" font-weight="{}" '
            'fill="{}"{}>{}</text>').format(x, y, size, anchor, weight, fill, extra, escape(str(s)))


def bar_chart(path, title, subtitle, groups, series, values, labels, x_label, ref_lines,
              x_max=None, footnotes=()):
    """A grouped horizontal bar chart as SVG.

    groups: [(key, label, sublabel)]; series: [(key, label)];
    values[(group, series)] -> bar length; labels[(group, series)] -> text
    after the bar (or in place of a missing bar); ref_lines: [(x, label,
    dashed)]; footnotes: lines under the legend.
    """
    # Footnotes wrapped to the chart's width (about 6 px per character).
    footnotes = [line for note in footnotes for line in textwrap.wrap(note, 140)]
    bar_h, gap, group_gap = 13, 2, 18
    left, right, top = 210, 150, 92
    plot_w = 560
    n_series = len(series)
    group_h = n_series * (bar_h + gap) - gap
    height = (top + len(groups) * (group_h + group_gap) + 70 + 18 * ((n_series + 2) // 3)
              + 16 * len(footnotes))
    width = left + plot_w + right
    vmax = x_max or max([v for v in values.values() if v == v] + [r[0] for r in ref_lines])
    step = next(st for st in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500)
                if vmax / st <= 10)
    vmax = step * int(vmax / step + 0.999)
    sx = plot_w / vmax

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">'.format(width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           text(width / 2, 26, title, 16, "middle", "bold"),
           text(width / 2, 46, subtitle[0], 11, "middle", fill="#444")]
    if len(subtitle) > 1:
        out.append(text(width / 2, 62, subtitle[1], 11, "middle", fill="#444"))

    plot_bottom = top + len(groups) * (group_h + group_gap) - group_gap + 6
    # Grid and x axis.
    t = 0.0
    while t <= vmax + 1e-9:
        x = left + t * sx
        out.append('<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="#e4e4e4"/>'.format(
            x, top - 6, x, plot_bottom))
        out.append(text(x, plot_bottom + 16, "{:g}".format(t), 11, "middle", fill="#444"))
        t += step
    out.append('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#444"/>'.format(
        left, plot_bottom, left + plot_w, plot_bottom))
    out.append('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#444"/>'.format(
        left, top - 6, left, plot_bottom))
    out.append(text(left + plot_w / 2, plot_bottom + 36, x_label, 12, "middle"))

    # Bars.
    for gi, (gkey, glabel, gsub) in enumerate(groups):
        y0 = top + gi * (group_h + group_gap)
        out.append(text(left - 10, y0 + group_h / 2 - 2, glabel, 12, "end", "bold"))
        out.append(text(left - 10, y0 + group_h / 2 + 12, gsub, 10, "end", fill="#555"))
        for si, (skey, _) in enumerate(series):
            v = values.get((gkey, skey))
            y = y0 + si * (bar_h + gap)
            if v is None or v != v:
                if (gkey, skey) in labels:
                    out.append(text(left + 4, y + bar_h - 3, labels[(gkey, skey)], 10,
                                    fill="#777"))
                continue
            w = max(v * sx, 1)
            out.append('<rect x="{}" y="{:.1f}" width="{:.1f}" height="{}" fill="{}"/>'.format(
                left, y, w, bar_h, PALETTE[si % len(PALETTE)]))
            out.append(text(left + w + 4, y + bar_h - 3, labels.get((gkey, skey), ""), 10,
                            fill="#333"))
    for i, (x, label, dashed) in enumerate(ref_lines):
        px = left + x * sx
        dash = ' stroke-dasharray="4,3"' if dashed else ""
        out.append('<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="#b00"{}/>'.format(
            px, top - 14, px, plot_bottom, dash))
        # Labels beside their lines, alternately right and left, so that two
        # close lines stay readable.
        out.append(text(px + (3 if i % 2 == 0 else -3), top - 10, label, 10,
                        "start" if i % 2 == 0 else "end", fill="#b00"))

    # Legend.
    ly = plot_bottom + 58
    for si, (_, slabel) in enumerate(series):
        col, row = si % 3, si // 3
        lx = 30 + col * (width - 60) / 3
        yy = ly + row * 18
        out.append('<rect x="{:.1f}" y="{}" width="12" height="12" fill="{}"/>'.format(
            lx, yy - 10, PALETTE[si % len(PALETTE)]))
        out.append(text(lx + 17, yy, slabel, 11))
    fy = ly + 18 * ((n_series + 2) // 3) + 6
    for i, note in enumerate(footnotes):
        out.append(text(30, fy + 16 * i, note, 10, fill="#555"))
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def e2e(data):
    rows, clients, s = e2e_summary(data)
    unable = unable_map(data)
    notes = unable_notes(data)
    cfg, m = data["config"], data["machine"]
    groups = [((c, r), row_label(c, r), RUNTIME_NOTE.get(r, r)) for c, r in rows]
    series = [(c, CLIENT_NOTE.get(c, c)) for c in clients]
    values, labels = {}, {}
    for c, r in rows:
        for client in clients:
            v = s.get((c, r, client))
            if v:
                values[((c, r), client)] = v["ratio"]
                labels[((c, r), client)] = "{:.2f}x  {} ev/s".format(v["ratio"], fmt_rate(v["events_per_s"]))
            elif (c, r, client) in unable:
                labels[((c, r), client)] = "— cannot (see below)"
    bar_chart(
        os.path.join(RESULTS, "e2e.svg"),
        "Rust SSE clients end to end: events/s relative to reqwest reading the body unparsed",
        ["{} MiB per corpus over loopback HTTP/1.1 chunked, median of {} rounds{}".format(
            cfg["mb"], cfg["rounds"], protocol_note(rows, cfg)), machine_line(m)],
        groups, series, values, labels,
        "median events/s / median events/s of reqwest without parsing (1 = the ceiling)",
        [(1.0, "ceiling", False), (0.95, "0.95", True)], footnotes=notes)

    print("### End to end: events/s relative to the reqwest ceiling\n")
    print("{} MiB per corpus, median of {} rounds; {}.\n".format(cfg["mb"], cfg["rounds"], machine_line(m)))
    peers = [client for client in clients if client not in (CEILING, "ssekit")]
    extra = ["ssekit ÷ best peer"] if "ssekit" in clients and peers else []
    print("| corpus / runtime | " + " | ".join(clients + extra) + " |")
    print("|---|" + "---:|" * (len(clients) + len(extra)))
    for c, r in rows:
        cells = []
        for client in clients:
            v = s.get((c, r, client))
            cells.append("{:.2f}x".format(v["ratio"]) if v
                         else "—" if (c, r, client) in unable else "-")
        if extra:
            ours = s.get((c, r, "ssekit"))
            best = max((s[(c, r, p)]["events_per_s"] for p in peers if (c, r, p) in s), default=None)
            cells.append("{:.2f}".format(ours["events_per_s"] / best) if ours and best else "-")
        print("| {} | {} |".format(row_label(c, r), " | ".join(cells)))
    if notes:
        print()
        for note in notes:
            print(note + "  ")
    print("\n### End to end: detail\n")
    print("| corpus | runtime | client | events/s | x ceiling | MiB/s | CPU µs/event | CPU x ceiling | allocs/event |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for c, r in rows:
        for client in clients:
            v = s.get((c, r, client))
            label = row_label(c, r).split(" / ", 1)[1]
            if v:
                ceiling = s.get((c, r, CEILING))
                cpu_x = v["cpu_us"] / ceiling["cpu_us"] if ceiling else float("nan")
                print("| {} | {} | {} | {:,.0f} | {:.2f} | {:.0f} | {:.3f} | {:.2f} | {:.2f} |".format(
                    c, label, client, v["events_per_s"], v["ratio"], v["mib_per_s"], v["cpu_us"],
                    cpu_x, v["allocs"]))
            elif (c, r, client) in unable:
                print("| {} | {} | {} | — | — | — | — | — | — |".format(c, label, client))
    print()


def idle_counts(data):
    """The stream counts of an idle run: `config.streams` is a number in
    files from before the counts became a list."""
    n = data["config"]["streams"]
    return n if isinstance(n, list) else [n]


def idle_table(data, n):
    """The table of one stream count; returns its rows for the chart."""
    cfg, m = data["config"], data["machine"]
    runs = [r for r in data["runs"] if r.get("streams", n) == n]
    unable = {u["client"]: u["reason"] for u in data.get("unable", []) if u["streams"] == n}
    clients = []
    for r in runs:
        if r["client"] not in clients:
            clients.append(r["client"])
    for c in unable:
        if c not in clients:
            clients.append(c)

    def med(client, f):
        return statistics.median(f(r) for r in runs if r["client"] == client)

    def kib(key):
        return lambda r: (r[key] - r["rss_kib_before"]) / n

    floor = med(CEILING, kib("rss_kib_open")) if CEILING in clients and CEILING not in unable \
        else float("nan")
    rows = []
    for c in clients:
        if c in unable:
            continue
        rows.append((c, med(c, kib("rss_kib_open")), med(c, kib("rss_kib_after_heartbeat")),
                     med(c, lambda r: r["heap_bytes_open"] / n / 1024),
                     med(c, lambda r: r["allocs_to_open"] / n), med(c, lambda r: r["open_s"])))
    heap_floor = next((h for c, _, _, h, _, _ in rows if c == CEILING), float("nan"))
    print("### {:,} idle streams\n".format(n))
    print("One event, then a comment every {} s; median of {} rounds; {}. Floor: one shared "
          "`reqwest::Client` holding the bodies.\n".format(cfg.get("heartbeat_s", 5), cfg["rounds"],
                                                          machine_line(m)))
    print("| client | RSS KiB/stream | vs floor | heap KiB/stream | vs floor | allocs/stream | s to open all |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in clients:
        name = "reqwest (floor)" if c == CEILING else c
        if c in unable:
            print("| {} | — | — | — | — | — | — |".format(name))
            continue
        _, rss, _beat, heap, allocs, open_s = next(r for r in rows if r[0] == c)
        print("| {} | {:.1f} | {:+.1f} | {:.1f} | {:+.1f} | {:.0f} | {:.3f} |".format(
            name, rss, rss - floor, heap, heap - heap_floor, allocs, open_s))
    if unable:
        print()
        for c, why in unable.items():
            print("— {} cannot hold {:,} streams: {}  ".format(c, n, why))
    print()
    return rows, unable


def idle(data):
    cfg, m = data["config"], data["machine"]
    counts = idle_counts(data)
    per_count = [(n,) + idle_table(data, n) for n in counts]
    # One chart: a group per measure and stream count.
    groups, values, labels, series = [], {}, {}, []
    notes = []
    for n, rows, unable in per_count:
        for c, *_ in rows:
            if c not in [k for k, _ in series]:
                series.append((c, "reqwest, bodies only (floor)" if c == CEILING else c))
        for c in unable:
            if c not in [k for k, _ in series]:
                series.append((c, c))
    for n, rows, unable in per_count:
        rss_key, heap_key = ("rss", n), ("heap", n)
        groups.append((rss_key, "resident, {:,}".format(n), "VmRSS delta / stream"))
        groups.append((heap_key, "heap, {:,}".format(n), "live bytes / stream"))
        for c, rss, _beat, heap, _a, open_s in rows:
            values[(rss_key, c)] = rss
            labels[(rss_key, c)] = "{:.1f} KiB  (all open in {:.2f} s)".format(rss, open_s)
            values[(heap_key, c)] = heap
            labels[(heap_key, c)] = "{:.1f} KiB".format(heap)
        for c, why in unable.items():
            labels[(rss_key, c)] = "— cannot (see below)"
            labels[(heap_key, c)] = "— cannot (see below)"
            notes.append("— {} cannot hold {:,} streams: {}".format(c, n, why))
    title_n = " and ".join("{:,}".format(n) for n in counts)
    bar_chart(
        os.path.join(RESULTS, "idle.svg"),
        "{} idle SSE streams in one process: memory per stream".format(title_n),
        ["loopback HTTP/1.1, multi-thread runtime (2 workers), median of {} rounds".format(cfg["rounds"]),
         machine_line(m)],
        groups, series, values, labels, "KiB per stream (the grey bar is the floor)", [],
        footnotes=notes)


def cold(data):
    cfg, m = data["config"], data["machine"]
    clients = cfg["clients"]

    def med(rows, client, key):
        v = [r[key] for r in rows if r["client"] == client]
        return statistics.median(v) if v else float("nan")

    counted = bool(data.get("instructions"))
    print("### Cold start\n")
    print("From building the client to the first event of the first stream in a fresh process, "
          "then of a second stream in the same process (the first still open); loopback "
          "HTTP/1.1; median of {} processes per client (time){}; {}.\n".format(
              cfg["samples"],
              ", {} under callgrind (instructions)".format(cfg["callgrind_samples"]) if counted
              else "", machine_line(m)))
    print("| client | first stream ms | first stream Minstr | second stream ms | second Minstr "
          "| once-per-process share |")
    print("|---|---:|---:|---:|---:|---:|")
    for c in clients:
        f_ms, s_ms = med(data["runs"], c, "first_ms"), med(data["runs"], c, "second_ms")
        if counted:
            f_i = med(data["instructions"], c, "first_instr")
            s_i = med(data["instructions"], c, "second_instr")
            share = (f_i - s_i) / f_i
            instr = ("{:.2f}".format(f_i / 1e6), "{:.2f}".format(s_i / 1e6))
        else:
            share = (f_ms - s_ms) / f_ms
            instr = ("—", "—")
        print("| {} | {:.2f} | {} | {:.2f} | {} | {:.0f}% |".format(
            c, f_ms, instr[0], s_ms, instr[1], share * 100))
    if not counted:
        skipped = cfg.get("valgrind", {})
        why = skipped.get("skipped") if isinstance(skipped, dict) else None
        print("\nInstructions not counted{}.".format(": " + why if why else ""))
    print("\nOnce-per-process share: (first − second) ÷ first, by instructions when counted, "
          "else by time.\n")


def main():
    data = load("e2e.json")
    if data is None and load("idle.json") is None and load("cold.json") is None:
        sys.exit("no e2e.json, idle.json or cold.json in {}: run `cargo bench -p ssekit-peer-benches --bench e2e` first".format(RESULTS))
    if data is not None:
        e2e(data)
        print("wrote {}".format(os.path.join(RESULTS, "e2e.svg")), file=sys.stderr)
    idle_data = load("idle.json")
    if idle_data is not None:
        idle(idle_data)
        print("wrote {}".format(os.path.join(RESULTS, "idle.svg")), file=sys.stderr)
    cold_data = load("cold.json")
    if cold_data is not None:
        cold(cold_data)


if __name__ == "__main__":
    main()
