"""Run the micro-benchmark groups (micro/bench_<group>.py) into one pyperf suite JSON.

    python micro/run.py [-o FILE] [--fast | --check] [--group G[,G]] [--select REGEX] [pyperf options...]

(`python micro/run.py` is `python -m micro.run`; each group runs as `python -m micro.bench_<group>`.)

Default output: micro/results/<UTC timestamp>.json, readable by `python -m pyperf show/compare_to` and by
micro/report.py and micro/compare.py. Every run carries the environment metadata (CPU, Python, chronik_perf's git
commit and path, peer package versions). Options run.py does not know are handed to pyperf (e.g. `--rigorous`,
`-p 20`, `--affinity 1`).

Without --fast each benchmark runs in 6 pyperf worker processes of 3 values (pass `-p`/`-n` to change);
--fast runs every benchmark inside its group's process (pyperf --in-process), 3 runs of 3 values of >= 20 ms:
a quick look and a rough comparison, a few minutes for all groups. --check sets up every benchmark and runs one
call of it, untimed, and writes nothing: seconds, to find a broken benchmark.
"""
if __name__ == "__main__" and not __package__:  # `python micro/run.py` runs `python -m micro.run`
    import os, sys  # noqa: E401
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), os.environ.get("PYTHONPATH")]))
    os.execv(sys.executable, [sys.executable, "-m", "micro.run", *sys.argv[1:]])

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = ["--processes", "6"]
ORDER = ("protocol", "varint", "crc", "records", "compression", "index", "storage")
FAST = ["--in-process", "--processes", "3", "--values", "3", "--warmups", "1", "--min-time", "0.02"]


def groups():
    """Group names in the issue's order, then any other bench_<group>.py alphabetically."""
    found = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    order = [g for g in ORDER if g in found]
    return order + [g for g in found if g not in order]


def group_list(text):
    """--group crc,varint: the named groups, each one that exists."""
    names = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in names if g not in groups()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown group(s) {', '.join(unknown) or '(none)'}; "
                                         f"known: {', '.join(groups())}")
    return names


def regex(text):
    """--select REGEX: checked here, so that a bad one is one line rather than a traceback per group."""
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {text!r} ({exc})") from None
    return text


def group_command(group, *options):
    """The command running one group's module (found as this package was: from the same folder or PYTHONPATH)."""
    return [sys.executable, "-m", f"{__package__}.bench_{group}", *options]


def check(chosen, select):
    """Run each group's script with --check; the exit status of the first that fails, else 0."""
    for group in chosen:
        result = subprocess.run(group_command(group, "--check", *(["--select", select] if select else [])))
        if result.returncode:
            print(f"group {group} failed (exit {result.returncode})", file=sys.stderr)
            return result.returncode
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="suite JSON to write (must not exist)")
    parser.add_argument("--fast", action="store_true", help="in-process, fewer values: minutes, not an hour")
    parser.add_argument("--check", action="store_true", help="set up and call every benchmark once, untimed")
    parser.add_argument("--group", action="extend", type=group_list, metavar="G[,G]",
                        help=f"run only these groups (comma-separated, repeatable): {', '.join(groups())}")
    parser.add_argument("--select", metavar="REGEX", type=regex, help="run only benchmarks whose name matches")
    args, pyperf_args = parser.parse_known_args(argv)
    if args.check:
        return check(args.group or groups(), args.select)

    output = args.output or HERE / "results" / (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".json")
    if output.exists():
        parser.error(f"{output} exists: choose another -o")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)

    chosen = args.group or groups()
    options = (FAST if args.fast else FULL) + pyperf_args + ["--quiet", "--append", str(partial)]
    if args.select:
        options += ["--select", args.select]
    start = time.monotonic()
    for number, group in enumerate(chosen, 1):
        print(f"== group {group} ({number}/{len(chosen)}) ==", flush=True)
        result = subprocess.run(group_command(group, *options))
        if result.returncode:
            print(f"group {group} failed (exit {result.returncode}); partial results in {partial}", file=sys.stderr)
            return result.returncode
    if not partial.exists():
        print("no benchmark matched", file=sys.stderr)
        return 2
    partial.rename(output)
    print(f"wrote {output} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
