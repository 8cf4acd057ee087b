"""Tables and charts of one micro-benchmark suite: per group, median time ± spread, throughput, chronik_perf's
speedup over each peer and its speed against the physical floor, all measured in the same run.

    python micro/report.py FILE [--html OUT] [--charts DIR | --no-charts]

Names are group/operation/parameter/implementation; implementations starting with "chronik_perf" are ours, those
starting with "floor-" the floor of the case, the others peers. Speedup = peer median / our median for the same
group, operation and parameter (above 1: ours is faster); a benchmark with metadata `peers` is compared with those
peers only. "vs floor" = floor median / our median (1: as fast as the floor) with our time over the floor's;
a floor with metadata `floor_bar` sets the least ratio accepted. Rows where a peer is ahead or a floor bar is
missed are flagged: a marker in the text, red in the HTML and the charts. Spread is the median absolute deviation.
The header names the commit, machine, dates and load of the run.

Last come the bars the issues set, one line each, "met" or "MISSED": a benchmark with metadata `bar_peer` and
`peer_bar` must be at least `peer_bar` times faster than that peer; ours must be at least `floor_bar` times the speed
of a floor that carries one (1.0: at most the floor's time). The exit status is 1 when a bar is missed. Charts: one PNG per group (default FILE's name +
"-charts/").
"""
if __name__ == "__main__" and not __package__:  # `python micro/report.py` runs `python -m micro.report`
    import os, sys  # noqa: E401
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), os.environ.get("PYTHONPATH")]))
    os.execv(sys.executable, [sys.executable, "-m", "micro.report", *sys.argv[1:]])

import argparse
import base64
import html
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyperf
from .suite_arg import suite_file

OURS = "chronik_perf"
FLOOR = "floor-"
PEER_AHEAD = "PEER AHEAD"
BELOW_BAR = "BELOW FLOOR BAR"


@dataclass
class Row:
    group: str
    operation: str
    parameter: str
    implementation: str
    median: float
    spread: float
    nbytes: int = None
    items: int = None
    compression_ratio: float = None
    clock: str = "wall"
    peers: str = None
    floor_bar: float = None
    bar_peer: str = None
    peer_bar: float = None

    @property
    def ours(self):
        return self.implementation.startswith(OURS)

    @property
    def floor(self):
        return self.implementation.startswith(FLOOR)

    @property
    def case(self):
        return self.group, self.operation, self.parameter


def load_rows(path):
    """One Row per benchmark of the suite at `path`, in the suite's order."""
    rows = []
    for bench in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks():
        parts = bench.get_name().split("/")
        if len(parts) != 4:
            continue
        meta = bench.get_metadata()
        values = bench.get_values()
        median = statistics.median(values)
        spread = statistics.median(abs(v - median) for v in values)
        rows.append(Row(*parts, median, spread, meta.get("throughput_bytes"), meta.get("throughput_items"),
                        meta.get("compression_ratio"), meta.get("clock", "wall"), meta.get("peers"),
                        meta.get("floor_bar"), meta.get("bar_peer"), meta.get("peer_bar")))
    return rows


def run_description(path):
    """One line naming the commit, machine, Python, dates and load average of the suite's runs."""
    suite = pyperf.BenchmarkSuite.load(str(path))
    meta, dates, loads = {}, [], []
    for bench in suite.get_benchmarks():
        meta.update(bench.get_metadata())
        for run in bench.get_runs():
            dates.append(run.get_metadata().get("date", ""))
            loads.append(run.get_metadata().get("load_avg_1min"))
    dates = sorted(d for d in dates if d)
    loads = [x for x in loads if x is not None]
    parts = [f"commit {meta.get('chronik_perf_git', 'unknown')}",
             f"{meta.get('cpu_model_name', 'unknown CPU')}, {meta.get('cpu_count', '?')} CPUs",
             f"host {meta.get('hostname', '?')}", f"Python {meta.get('python_version', '?').split(' ')[0]}",
             f"CRC32C via {meta.get('crc32c_implementation', '?')}"]
    if meta.get("codec_libraries"):
        parts.append(f"codecs {meta['codec_libraries']}")
    if dates:
        parts.append(f"runs from {dates[0][:19]} to {dates[-1][:19]}")
    if loads:
        parts.append(f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}")
    return "; ".join(parts)


def speedups(rows):
    """{(group, operation, parameter, our implementation): {peer: peer median / our median}}; floors are not
    peers, and a benchmark naming its `peers` is compared with those only."""
    by_case = defaultdict(list)
    for row in rows:
        by_case[row.case].append(row)
    out = {}
    for case, members in by_case.items():
        peers = [r for r in members if not r.ours and not r.floor]
        for ours in (r for r in members if r.ours):
            chosen = set(ours.peers.split(",")) if ours.peers else None
            out[(*case, ours.implementation)] = {p.implementation: p.median / ours.median for p in peers
                                                 if chosen is None or p.implementation in chosen}
    return out


def floors(rows):
    """{(group, operation, parameter): the floor Row of that case}."""
    return {r.case: r for r in rows if r.floor}


def verdict(row, ratios, floor):
    """The flag of one row: PEER_AHEAD when a peer beats it, BELOW_BAR when it misses its floor's bar, else ""."""
    if not row.ours:
        return ""
    if any(r < 1.0 for r in ratios.get((*row.case, row.implementation), {}).values()):
        return PEER_AHEAD
    if floor is not None and floor.floor_bar and floor.median / row.median < floor.floor_bar:
        return BELOW_BAR
    return ""


def bar_lines(rows, ratios):
    """[(line, met)] for every bar of the suite: each peer bar of ours, then each of ours against a floor bar."""
    out = []
    floor_of = floors(rows)
    for row in rows:
        if not row.ours:
            continue
        name = "/".join((*row.case, row.implementation))
        if row.peer_bar:
            ratio = ratios.get((*row.case, row.implementation), {}).get(row.bar_peer)
            met = ratio is not None and ratio >= row.peer_bar
            seen = f"{ratio:.2f}x" if ratio is not None else "not measured"
            out.append((f"{name}: speedup over {row.bar_peer} {seen}, bar at least {row.peer_bar:g}x: "
                        f"{'met' if met else 'MISSED'}", met))
        floor = floor_of.get(row.case)
        if floor is not None and floor.floor_bar:
            met = floor.median / row.median >= floor.floor_bar
            out.append((f"{name}: {row.median / floor.median:.2f}x the time of {floor.implementation} "
                        f"({floor.median / row.median:.2f}x its speed), bar at least {floor.floor_bar:g}x its speed: "
                        f"{'met' if met else 'MISSED'}", met))
    return out


def format_time(seconds):
    seconds = float(f"{seconds:.3g}")          # round first, so 999.7 us reads "1 ms"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_throughput(row):
    parts = []
    if row.nbytes:
        parts.append(f"{row.nbytes / row.median / 1e6:,.1f} MB/s")
    if row.items:
        rate = row.items / row.median
        parts.append(f"{rate / 1e6:,.2f} M items/s" if rate >= 1e6 else f"{rate / 1e3:,.1f} k items/s")
    return ", ".join(parts)


def floor_cell(row, floor):
    """"0.93x (+1.2 us)": floor median / our median and our time over the floor's; the bar when one is set."""
    if not row.ours or floor is None:
        return ""
    over = row.median - floor.median
    text = f"{floor.median / row.median:.2f}x ({'+' if over >= 0 else '-'}{format_time(abs(over))})"
    return text + (f", bar {floor.floor_bar:g}x" if floor.floor_bar else "")


def group_table(rows, ratios, flags=None):
    """Markdown table rows (header first) for one group; `flags` collects {row index: flag} of flagged rows."""
    lines = [["benchmark", "implementation", "median ± MAD", "throughput", "speedup of ours over peers",
              "vs floor", "flag"]]
    floor_of = floors(rows)
    for row in rows:
        ratio = ratios.get((*row.case, row.implementation), {})
        extra = f" (ratio {row.compression_ratio:g})" if row.compression_ratio else ""
        extra += f" (bar {row.floor_bar:g}x)" if row.floor and row.floor_bar else ""
        flag = verdict(row, ratios, floor_of.get(row.case))
        if flag and flags is not None:
            flags[len(lines)] = flag
        lines.append([f"{row.operation}/{row.parameter}", row.implementation + extra,
                      f"{format_time(row.median)} ± {100 * row.spread / row.median:.1f}%", format_throughput(row),
                      ", ".join(f"{ratio[p]:.2f}x vs {p}" for p in ratio), floor_cell(row, floor_of.get(row.case)),
                      f"!! {flag}" if flag else ""])
    return lines


def markdown(table):
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"   # noqa: E731
    return "\n".join([fmt(table[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in table[1:]])


def chart(group, rows, out, flagged=()):
    """A horizontal bar chart of median times (log scale), one bar per implementation, written to `out`; the
    cases in `flagged` ((operation, parameter) pairs) get red labels, floors grey hatched bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys((r.operation, r.parameter) for r in rows))
    impls = list(dict.fromkeys(r.implementation for r in rows))
    height = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(9, 1 + 0.25 * len(cases) * max(len(impls), 2) * 0.6))
    for k, impl in enumerate(impls):
        ys, xs = [], []
        for i, case in enumerate(cases):
            for r in rows:
                if (r.operation, r.parameter) == case and r.implementation == impl:
                    ys.append(i + k * height)
                    xs.append(r.median)
        style = {"color": "lightgrey", "hatch": "//", "edgecolor": "grey"} if impl.startswith(FLOOR) else {}
        ax.barh(ys, xs, height=height, label=impl, **style)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cases))],
                  [f"{'!! ' if c in flagged else ''}{c[0]}/{c[1]}" for c in cases], fontsize=7)
    for label, case in zip(ax.get_yticklabels(), cases):
        if case in flagged:
            label.set_color("red")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median time per call (s, log scale)")
    ax.set_title(f"{group}: lower is faster")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=suite_file)
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write an HTML page with tables and charts")
    parser.add_argument("--charts", type=Path, metavar="DIR", help="where the PNG charts go")
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args(argv)

    rows = load_rows(args.file)
    ratios = speedups(rows)
    groups = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    for members in groups.values():     # operations and parameters in suite order, ours first within a case
        ops = list(dict.fromkeys(r.operation for r in members))
        params = list(dict.fromkeys(r.parameter for r in members))
        members.sort(key=lambda r: (ops.index(r.operation), params.index(r.parameter), not r.ours, r.floor))
    charts = None if args.no_charts else (args.charts or args.file.with_name(args.file.stem + "-charts"))
    if charts:
        charts.mkdir(parents=True, exist_ok=True)
    clock = ", ".join(sorted({r.clock for r in rows}))
    described = run_description(args.file)
    print(f"{args.file.name}: times are {clock} time (--clock)\n{described}\n")
    page = [f"<h1>{html.escape(args.file.name)}</h1><p>times are {clock} time (--clock)</p>"
            f"<p>{html.escape(described)}</p>"]
    total = 0
    for group, members in groups.items():
        flags = {}
        table = group_table(members, ratios, flags)
        total += len(flags)
        print(f"## {group}\n\n{markdown(table)}\n")
        page.append(f"<h2>{html.escape(group)}</h2><table border=1 cellspacing=0 cellpadding=3>"
                    + "".join(("<tr style=\"background:#fdd;color:#b00\">" if i in flags else "<tr>")
                              + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                              for i, r in enumerate(table)) + "</table>")
        if charts:
            png = charts / f"{group}.png"
            chart(group, members, png, {(members[i - 1].operation, members[i - 1].parameter) for i in flags})
            page.append(f'<img src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">')
    print(f"{total} row(s) flagged (!!): a peer ahead or a floor bar missed")
    checked = bar_lines(rows, ratios)
    if checked:
        print("\n## bars\n\n" + "\n".join(line for line, _ in checked))
        print(f"bars met: {sum(met for _, met in checked)} of {len(checked)}")
        page.append("<h2>bars</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line, _ in checked) + "</ul>")
    if charts:
        print(f"charts in {charts}/")
    if args.html:
        args.html.write_text("<html><body>" + "\n".join(page) + "</body></html>\n")
        print(f"wrote {args.html}")
    return 0 if all(met for _, met in checked) else 1


if __name__ == "__main__":
    sys.exit(main())
