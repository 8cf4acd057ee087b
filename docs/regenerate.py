"""Regenerate every measured table in README.md and docs/ from result files of one commit.

    python docs/regenerate.py                      # run every data set's commands, store the results, write the tables
    python docs/regenerate.py --only records-ratios,e2e   # some data sets (or table names); repeatable
    python docs/regenerate.py --quick              # smaller runs, for a look (each table says it was quick)
    python docs/regenerate.py --write-only         # no runs: rewrite the tables from the stored results
    python docs/regenerate.py --list               # data sets, their commands and tables

A table lives between `<!-- table:NAME -->` and `<!-- /table:NAME -->` in README.md or any page under docs/. Each
data set runs its commands (under `nice` with --nice), then stores their output and result files with the
environment (machine, software, git commit, load average, date) in docs/results/data/<data set>/, and every table
is written from those files alone, starting with the commit, machine and date it came from. A table whose data is
missing says so instead of keeping old figures; a marker this script does not know is an error. The e2e data sets
use the brokers already running at the targets' default addresses (Kafka 127.0.0.1:9095, Tansu 127.0.0.1:9093);
--start lets the suite start them.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("docs") / "results" / "data"
MARKER = re.compile(r"<!-- table:(?P<name>[\w.-]+) -->\n.*?<!-- /table:(?P=name) -->", re.S)
SUMMARY = "results-summary"   # the table of where every data set's results come from, rewritten on every write
# Producer and concurrent tests run for 5 s; the consumer test reads what the producer test wrote, the groups test a
# fill of 1.5 M messages: every throughput window lasts seconds on Kafka and Tansu here.
E2E_WORKLOAD = ["--producer-seconds", "5", "--num-messages", "1500000", "--message-size", "1024", "--num-partitions", "6",
                "--producers", "2",
                "--consumers", "2", "--rate", "1000", "--duration", "15", "--warmup", "3",
                "-X", "consumer.session.timeout.ms=6000", "-X", "consumer.max.poll.interval.ms=8000"]


@dataclasses.dataclass
class Options:
    quick: bool = False
    start: bool = False


@dataclasses.dataclass
class DataSet:
    """Commands that produce result files, and the tables written from them."""

    name: str
    commands: Callable[[Options, Path], list[list[str]]]
    tables: dict[str, Callable[[Path], str]]
    keep: tuple[str, ...] = ()   # result files (globs under the output folder) kept beside the commands' output
    ok: tuple[int, ...] = (0,)   # exit statuses that still mean "measured" (a failed e2e test, a missed bar)
    missing: Callable[[], str | None] = lambda: None   # why the data set cannot run on this machine, if it cannot


def _e2e_commands(opts: Options, out: Path) -> list[list[str]]:
    workload = ["--quick"] if opts.quick else E2E_WORKLOAD
    start = ["--start"] if opts.start else []
    return [[sys.executable, "-m", "chronik_perf.e2e", "--targets", "kafka,tansu", *start, *workload,
             "--results-dir", str(out / "runs")]]


def _chronik_commands(opts: Options, out: Path) -> list[list[str]]:
    """Chronik Stream beside Kafka on the e2e data set's workload, through confluent-kafka and through the native
    client; both brokers started by the suite (Chronik from $CHRONIK_SERVER)."""
    workload = ["--quick"] if opts.quick else E2E_WORKLOAD
    return [[sys.executable, "-m", "chronik_perf.e2e", "--targets", "chronik,kafka", "--start", *workload,
             *driver, "--results-dir", str(out / "runs")] for driver in ([], ["--driver", "native"])]


def _no_chronik_binary() -> str | None:
    return None if os.environ.get("CHRONIK_SERVER") else (
        "needs a chronik-server binary: CHRONIK_SERVER=PATH (Chronik Stream is on no package index)")


def _cluster_commands(opts: Options, out: Path) -> list[list[str]]:
    """examples/cluster_overhead.py: this host and --cluster local:2 alternating, 3 rounds (quick: 2 of --quick)."""
    rounds = ["--quick", "--rounds", "2"] if opts.quick else ["--rounds", "3"]
    start = ["--start"] if opts.start else []
    return [[sys.executable, "examples/cluster_overhead.py", *rounds, *start, "--results-dir", str(out / "runs")]]


# The driver comparison of issue 12's "done when": the suite's own --drivers run, median of 5 runs with windows of
# 10 s or more for every driver, as two invocations of one command: the producer test (native and confluent produce
# for 10 s; Java's ProducerPerformance has no duration and sends DRIVERS_JAVA_COUNT, 10 s or more at up to 1.2 M
# msg/s) and the consumer test (one shared fill of DRIVERS_FILL messages read by every driver, enough for 10 s of the
# fastest consumer, Java's, at up to 6 M msg/s). One invocation would make Java send the whole fill 5 times. --start finds the Kafka already running
# at 127.0.0.1:9095 and uses it (it starts one, and stops it after, only when none answers there).
DRIVERS_JAVA_COUNT = 12_000_000
DRIVERS_FILL = 60_000_000
DRIVERS_WORKLOAD = ["--message-size", "100", "--num-partitions", "6", "--acks", "1", "--batch-size", "65536"]
DRIVERS_TESTS = {"producer": ["--producer-seconds", "10", "--num-messages", str(DRIVERS_JAVA_COUNT)],
                 "consumer": ["--num-messages", str(DRIVERS_FILL)]}


def _drivers_commands(opts: Options, out: Path) -> list[list[str]]:
    return [[sys.executable, "-m", "chronik_perf.e2e", "--target", "kafka", "--start", "--drivers",
             "native,confluent,java", "--tests", test,
             *(["--quick"] if opts.quick else [*DRIVERS_WORKLOAD, *sizes, "--repeat", "5"]),
             "--results-dir", str(out / f"runs-{test}")] for test, sizes in DRIVERS_TESTS.items()]


def _suite_commands(groups: str | None = None, select: str | None = None, quick_groups: str | None = None,
                    processes: int | None = 2) -> Callable[[Options, Path], list[list[str]]]:
    """micro/run.py over `groups` (all: None) and the benchmarks matching `select`, in run.py's default mode (pyperf
    worker processes) with `processes` workers of 3 values per benchmark (None: run.py's default, 6), or --fast in
    quick mode (over `quick_groups` when given); then micro/report.py's tables and bar lines of that suite."""
    def commands(opts: Options, out: Path) -> list[list[str]]:
        suite = out / "micro.json"
        chosen = (quick_groups or groups) if opts.quick else groups
        mode = ["--fast"] if opts.quick else ["--processes", str(processes)] if processes else []
        mode += (["--group", chosen] if chosen else []) + (["--select", select] if select else [])
        return [[sys.executable, "micro/run.py", *mode, "-o", str(suite)],
                [sys.executable, "micro/report.py", str(suite), "--no-charts"]]
    return commands


# The same-run comparisons the issues set bars for (records: issue 1; protocol: issues 3 and 15), and the storage
# and index floors, as benchmarks of the micro suite; the whole suite in run.py's default mode (every group: 373
# benchmarks in 6 worker processes each, about 35 minutes of one quiet core) is the `micro` data set, quick: crc and
# records with --fast.
RECORDS_RATIOS = r"^(records/(build|parse|consume)/100x100B-unkeyed/|crc/crc32c/1MiB/)"
PROTOCOL_RATIOS = (r"/(produce_frame_\w+/16KiB|metadata_\w+/1000topics|fetch_response_decoding/10x1MiB(-zero_copy)?"
                   r"|heartbeat_\w+/1000x10)/")


def _java_direct_commands(opts: Options, out: Path) -> list[list[str]]:
    """examples/producer_performance_direct.py: Kafka's ProducerPerformance straight from a subprocess and through
    the suite's --driver java, alternating, 5 rounds of 10,000,000 messages (windows of 10 s or more); quick: 2
    rounds of 300,000. Uses the Kafka answering at 127.0.0.1:9095."""
    runs, count = ("2", "300000") if opts.quick else ("5", "10000000")
    return [[sys.executable, "examples/producer_performance_direct.py", "--runs", runs, "--num-messages", count,
             "--results-dir", str(out / "runs")]]


def _fuzz_commands(opts: Options, out: Path) -> list[list[str]]:
    """Every fuzz target at once from its seeds, up to 1,000,000 inputs each, all stopped 2 hours after the start
    (a cheap target that reaches its count leaves its CPU share to the others; the slowest, segment, needs about
    40 minutes of one core; exit status 1, a finding, is a result too: its row says FAILED); quick: 20,000 inputs
    each within 5 minutes."""
    runs, seconds = ("20000", "300") if opts.quick else ("1000000", "7200")
    return [[sys.executable, "fuzz/run.py", "--target", "all", "--runs", runs, "--total-time", seconds, "--jobs", "7",
             "--fresh", "--json", str(out / "fuzz.json")]]


def output(folder: Path, index: int = 0) -> str:
    """What command `index` of a data set printed."""
    return (folder / f"output-{index}.txt").read_text(encoding="utf-8")


def markdown_table_lines(folder: Path, index: int = 0) -> str:
    """The Markdown table a command printed (its lines starting with '|')."""
    lines = [line for line in output(folder, index).splitlines() if line.startswith("|")]
    if not lines:
        raise ValueError(f"{folder.name}: no Markdown table in the output of command {index}")
    return "\n".join(lines)


def text_output(folder: Path) -> str:
    """What the data set's one command printed, as a text block."""
    return "```text\n" + output(folder).strip("\n") + "\n```"


def micro_report(folder: Path) -> str:
    """micro/report.py's tables and bar lines, one heading level below the page's."""
    return re.sub(r"^## ", "#### ", output(folder, 1).strip("\n"), flags=re.M)


def micro_margins(folder: Path) -> str:
    """Per group of the micro run: our row farthest from its floor (our speed over the floor's) and our row with the
    smallest speedup over its best peer."""
    sys.path.insert(0, str(ROOT))
    from micro import report
    rows = report.load_rows(folder / "micro.json")
    ratios, floor_of = report.speedups(rows), report.floors(rows)
    lines = ["| Group | Farthest from its floor | Speed vs floor | Smallest margin over the best peer | Speedup |",
             "|---|---|---|---|---|"]
    for group in dict.fromkeys(r.group for r in rows):
        ours = [r for r in rows if r.group == group and r.ours]
        floored = [(floor_of[r.case].median / r.median, r) for r in ours if r.case in floor_of]
        peered = [(max(ratios[(*r.case, r.implementation)].values()), r) for r in ours
                  if ratios.get((*r.case, r.implementation))]
        cells = [group]
        for pairs, of in ((floored, lambda r: floor_of[r.case].implementation), (peered, None)):
            if pairs:
                value, row = min(pairs, key=lambda p: p[0])
                against = f" ({of(row)})" if of else ""
                cells += [f"`{row.operation}/{row.parameter}`{against}", f"{value:.2f}x" if value >= 0.1 else
                          f"{value:.1g}x"]
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def e2e_table(folder: Path) -> str:
    """The suite's comparison table over every target of the run, tests grouped together."""
    from chronik_perf.e2e import report
    from chronik_perf.e2e.results import HEADERS, load
    docs = [load(str(p)) for p in sorted((folder / "runs").glob("*/results.json"))]
    if not docs:
        raise ValueError(f"{folder.name}: no results.json under runs/")
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in report.ordered_rows(docs)]
    return "\n".join(lines)


def drivers_table(folder: Path) -> str:
    """The suite's driver comparison (runs, windows, CPU, batching, the work per message) and each driver's msg/s
    against the first's, from the stored runs of every test in the order the drivers ran."""
    from chronik_perf.e2e import report
    from chronik_perf.e2e.comparable import header
    from chronik_perf.e2e.results import load
    lines, work, ratios = [], [], []
    for test in DRIVERS_TESTS:
        docs = [load(str(p)) for p in sorted((folder / f"runs-{test}").glob("*/results.json"))]
        if not docs:
            raise ValueError(f"{folder.name}: no results.json under runs-{test}/")
        lines.append(f"- {test} test: {header(docs)}")
        work += report.work_rows(docs)
        ratios += [[*cells[:2], f"{cells[2]} against {report.label(docs[0])}"] for cells in report.ratio_rows(docs)]
    for headers, rows in ((report.WORK_HEADERS, work), (("System", "Test", "msg/s ratio"), ratios)):
        lines += ["", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _cluster_overhead():
    """examples/cluster_overhead.py as a module: its tables are written from the stored runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("cluster_overhead", ROOT / "examples" / "cluster_overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cluster_table(folder: Path) -> str:
    """Each test's figures and the harness's CPU on this host and on `--cluster local:2`: medians and ranges."""
    script = _cluster_overhead()
    return script.table(_cluster_runs(script, folder))


def cluster_runs_table(folder: Path) -> str:
    """The suite's comparison table of the first run on this host and the first on `--cluster local:2`."""
    script = _cluster_overhead()
    return script.first_runs(_cluster_runs(script, folder))


def _cluster_runs(script, folder: Path) -> dict[str, list[dict]]:
    runs = script.load(str(folder / "runs"))
    if not all(runs.values()):
        raise ValueError(f"{folder.name}: runs/local and runs/cluster need results.json files")
    return runs


DATA_SETS = [
    DataSet("e2e", _e2e_commands, {"readme-e2e": e2e_table, "e2e-kafka-tansu": e2e_table},
            keep=("runs/*/results.json", "runs/*/summary.md"), ok=(0, 1)),
    DataSet("chronik", _chronik_commands, {"chronik-kafka": e2e_table}, keep=("runs/*/results.json",), ok=(0, 1),
            missing=_no_chronik_binary),
    DataSet("drivers", _drivers_commands, {"drivers": drivers_table}, keep=("runs-*/*/results.json",), ok=(0, 1)),
    DataSet("records-ratios", _suite_commands("records,crc", RECORDS_RATIOS), {"records-ratios": micro_report},
            keep=("micro.json",), ok=(0, 1)),
    DataSet("protocol-ratios", _suite_commands("protocol", PROTOCOL_RATIOS), {"protocol-ratios": micro_report},
            keep=("micro.json",), ok=(0, 1)),
    DataSet("storage-ratios", _suite_commands("index,storage"), {"storage-ratios": micro_report},
            keep=("micro.json",), ok=(0, 1)),
    DataSet("micro", _suite_commands(quick_groups="crc,records", processes=None),
            {"micro": micro_report, "micro-margins": micro_margins},
            keep=("micro.json",), ok=(0, 1)),
    DataSet("cluster-overhead", _cluster_commands, {"cluster-overhead": cluster_table,
                                                    "cluster-runs": cluster_runs_table},
            keep=("runs/*/*/results.json",), ok=(0, 1)),
    DataSet("java-direct", _java_direct_commands, {"java-direct": text_output}, keep=("runs/*/results.json",),
            ok=(0, 1)),
    DataSet("fuzz", _fuzz_commands, {"fuzz": markdown_table_lines}, keep=("fuzz.json",), ok=(0, 1)),
]


def environment(root: Path = ROOT) -> dict:
    """The machine, software and checkout, as the e2e suite records them in every results.json; `dirty` counts only
    changes outside README.md and docs/, which this script rewrites and which measure nothing."""
    from chronik_perf.e2e.environment import environment as e2e_environment
    env = e2e_environment({})
    if env.get("git"):
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  ":(exclude)README.md", ":(exclude)docs"], capture_output=True, text=True)
        env["git"]["dirty"] = bool(changed.stdout.strip()) if changed.returncode == 0 else env["git"]["dirty"]
    return env


def foreign_package(root: Path) -> str | None:
    """Where chronik_perf is imported from when that is another checkout than root's: the runs would measure that
    code (and record its commit) while the tables claim root's."""
    import chronik_perf
    pkg = (root / "src" / "chronik_perf").resolve()
    here = Path(chronik_perf.__file__).resolve().parent
    return str(here) if pkg.is_dir() and here != pkg else None


def stale_core(root: Path) -> list[str]:
    """Sources of the native core newer than the extension built beside them: figures would describe other code."""
    pkg = root / "src" / "chronik_perf"
    built = [*pkg.glob("_core*.so"), *pkg.glob("_core*.pyd")]
    if not built:
        return []            # an installed package: nothing in this tree to be stale against
    newest = max(p.stat().st_mtime for p in built)
    sources = [*pkg.glob("*.pyx"), *pkg.glob("**/*.pxi"), *pkg.glob("**/*.pxd"), *pkg.glob("csrc/*")]
    return sorted(str(p.relative_to(root)) for p in sources if p.stat().st_mtime > newest)


def run(ds: DataSet, opts: Options, root: Path, nice: int) -> bool:
    """Run a data set's commands; on success its folder holds their output, kept files and meta.json."""
    if reason := ds.missing():
        print(f"[{ds.name}] not run: {reason}; its tables keep the stored data", file=sys.stderr)
        return True
    final = root / DATA / ds.name
    work = final.with_name(ds.name + ".running")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started, load_before, t0 = dt.datetime.now(dt.timezone.utc), os.getloadavg(), time.monotonic()
    commands, codes = ds.commands(opts, work), []
    for i, cmd in enumerate(commands):
        shown = " ".join(str(c) for c in cmd).replace(sys.executable, "python").replace(str(work), f"<{ds.name}>")
        print(f"[{ds.name}] {shown}", flush=True)
        prefix = ["nice", "-n", str(nice)] if nice else []
        with open(work / f"output-{i}.txt", "w", encoding="utf-8") as out:
            proc = subprocess.run(prefix + [str(c) for c in cmd], cwd=root, stdout=out, stderr=subprocess.STDOUT)
        codes.append(proc.returncode)
        if proc.returncode not in ds.ok:
            print(f"[{ds.name}] failed with exit status {proc.returncode}; the stored data is unchanged "
                  f"(output in {work / f'output-{i}.txt'})", file=sys.stderr)
            return False
    meta = {"data_set": ds.name, "quick": opts.quick,
            "commands": [" ".join(str(c) for c in cmd).replace(sys.executable, "python").replace(str(work), ".")
                         for cmd in commands],
            "exit_status": codes, "started_utc": started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t0, 1),
            "load_average": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "nice": nice, "environment": environment(root)}
    (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    _prune(work, ds.keep)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return True


def _prune(folder: Path, keep: tuple[str, ...]) -> None:
    """Keep the commands' output, meta.json and the `keep` globs; drop charts, histograms and the rest."""
    kept = {p for pattern in keep for p in folder.glob(pattern)}
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path.parent == folder and (path.name == "meta.json" or path.name.startswith("output-")):
            continue
        if path.is_file() and path not in kept:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def provenance(meta: dict) -> str:
    """One line: commit, machine, date, load, mode, commands."""
    env = meta["environment"]
    git = env.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + ("-dirty" if git.get("dirty") else "")
    load = meta.get("load_average") or {}
    mode = "quick mode, " if meta.get("quick") else ""
    mode += "".join(f"exit status {code} (a failed test or a missed bar), " for code in meta.get("exit_status", []) if code)
    commands = "; ".join(f"`{c}`" for c in meta["commands"])
    when = dt.datetime.fromisoformat(meta["started_utc"]).astimezone(dt.timezone.utc)
    return (f"*Commit {commit} · {env.get('cpu_model')}, {env.get('cpu_count')} CPUs, {env.get('memory_gib')} GiB · "
            f"{env.get('os')} · Python {env.get('python')} · {when:%Y-%m-%d %H:%M} UTC · "
            f"{mode}load average {load.get('before')} before, {load.get('after')} after · {commands}*")


def summary(root: Path) -> str:
    """Which commit, machine and date every data set's stored results come from."""
    lines = ["| data set | commit | measured | machine | mode |", "|---|---|---|---|---|"]
    for ds in DATA_SETS:
        try:
            meta = json.loads((root / DATA / ds.name / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            lines.append(f"| {ds.name} | no data | | | |")
            continue
        env, git = meta["environment"], meta["environment"].get("git") or {}
        when = dt.datetime.fromisoformat(meta["started_utc"]).astimezone(dt.timezone.utc)
        commit = (git.get("commit") or "unknown")[:10] + ("-dirty" if git.get("dirty") else "")
        lines.append(f"| {ds.name} | {commit} | {when:%Y-%m-%d %H:%M} UTC | {env.get('cpu_model')}, "
                     f"{env.get('cpu_count')} CPUs | {'quick' if meta.get('quick') else 'full'} |")
    commits = {line.split(" | ")[1] for line in lines[2:]} - {"no data"}
    verdict = ("All stored results come from one commit." if len(commits) == 1 else
               f"The stored results come from {len(commits)} commits." if commits else "No stored results.")
    return verdict + "\n\n" + "\n".join(lines)


def render(table: str, ds: DataSet | None, root: Path) -> str:
    """The text between a table's markers: provenance and figures, or why there are none."""
    if table == SUMMARY:
        return summary(root)
    if ds is None:
        raise KeyError(table)
    folder = root / DATA / ds.name
    missing = (f"**No data.** `python docs/regenerate.py --only {ds.name}` measures and writes this table; figures "
               f"from an earlier run are not kept once they cannot be regenerated.")
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        body = ds.tables[table](folder)
    except (OSError, ValueError, KeyError) as exc:
        reason = str(exc).replace(f"{root}{os.sep}", "")   # paths relative to the checkout, as the docs show them
        return f"{missing} ({type(exc).__name__}: {reason})"
    return provenance(meta) + "\n\n" + body


def pages(root: Path) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def write_tables(root: Path, names: set[str] | None) -> list[str]:
    """Rewrite the marked tables (all, or those named); returns the names written. Unknown markers are errors."""
    by_table = {table: ds for ds in DATA_SETS for table in ds.tables} | {SUMMARY: None}
    written, unknown = [], []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")

        def replace(m: re.Match) -> str:
            name = m["name"]
            if name not in by_table:
                unknown.append(f"{page.relative_to(root)}: {name}")
                return m[0]
            if names is not None and name not in names and name != SUMMARY:
                return m[0]
            written.append(name)
            return f"<!-- table:{name} -->\n{render(name, by_table[name], root)}\n<!-- /table:{name} -->"
        new = MARKER.sub(replace, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
    if unknown:
        raise SystemExit("unknown table markers (no data set writes them): " + ", ".join(unknown))
    return written


def select(only: list[str]) -> list[DataSet]:
    """Data sets named, or holding a table named, in --only (comma lists allowed); all when none."""
    wanted = {n.strip() for item in only for n in item.split(",") if n.strip()}
    if not wanted:
        return DATA_SETS
    chosen = [ds for ds in DATA_SETS if ds.name in wanted or wanted & set(ds.tables)]
    known = {ds.name for ds in DATA_SETS} | {t for ds in DATA_SETS for t in ds.tables}
    if wanted - known:
        raise SystemExit(f"unknown data set or table: {', '.join(sorted(wanted - known))} "
                         f"(known: {', '.join(sorted(known))})")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]",
                   help="data sets or tables to regenerate (default: all)")
    p.add_argument("--quick", action="store_true", help="smaller runs; the tables say so")
    p.add_argument("--write-only", action="store_true", help="no runs: write the tables from the stored results")
    p.add_argument("--start", action="store_true", help="let the e2e runs start Kafka and Tansu if not running")
    p.add_argument("--nice", type=int, default=0, help="run the commands under nice -n N")
    p.add_argument("--list", action="store_true", help="print the data sets, their commands and tables")
    p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    chosen = select(args.only)
    opts = Options(quick=args.quick, start=args.start)
    if args.list:
        for ds in chosen:
            commands = "; ".join(" ".join(c).replace(sys.executable, "python")
                                 for c in ds.commands(opts, DATA / ds.name))
            print(f"{ds.name}: {commands}\n    tables: {', '.join(ds.tables)}")
        return 0
    failed = []
    if not args.write_only and (stale := stale_core(args.root)):
        raise SystemExit(f"the native core is older than its sources ({', '.join(stale[:3])}...): rebuild it first "
                         f"(pip install -e . --no-deps --no-build-isolation)")
    if not args.write_only and (other := foreign_package(args.root)):
        raise SystemExit(f"chronik_perf is imported from {other}, not from {args.root / 'src'}: run this script with "
                         f"the environment of the checkout it measures (pip install -e {args.root})")
    if not args.write_only and ((environment(args.root).get("git") or {}).get("dirty")):
        print("warning: the checkout has uncommitted changes; the tables will name the commit with -dirty",
              file=sys.stderr)
    if not args.write_only:
        failed = [ds.name for ds in chosen if not run(ds, opts, args.root, args.nice)]
    names = {t for ds in chosen for t in ds.tables} if args.only else None
    written = write_tables(args.root, names)
    print(f"wrote {len(written)} table(s): {', '.join(written) or 'none'}")
    if failed:
        print(f"failed: {', '.join(failed)} (their tables show the data stored before)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
