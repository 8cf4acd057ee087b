"""Run the fuzz targets under libFuzzer (atheris) against the sanitized, coverage-instrumented core.

    python fuzz/run.py --target all --runs 1000000 --jobs 2 --json results.json

Each target runs in its own Python with ASan, UBSan and libFuzzer preloaded (fuzz/sanitized.py), its corpus in
build/fuzz/<target>/corpus grown from the seeds (captured Kafka frames and segments, our encoders' output, and
fuzz/regressions/<target>/). A run fails on any crash, sanitizer report, timeout, out-of-memory, or exception
other than the named errors; the input that did it is saved under build/fuzz/<target>/ and its path printed.
"""
import argparse
import concurrent.futures
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sanitized  # noqa: E402

# costliest per input first, so that a run of all of them with --jobs 2 does not end waiting on the last one started
TARGET_NAMES = ("segment", "protocol", "records", "index", "payloads", "varint", "codecs")
# libFuzzer's input size limit where its default (4096, or the largest seed) does not fit: a segment holds the
# captured 23.9 KB log; a varint is at most 10 bytes and index lookups take the same paths over 85 entries as over
# 500, while the targets' checks cost time in proportion to the input
MAX_LEN = {"segment": 24576, "varint": 128, "index": 1024}
FINDINGS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: libFuzzer", "Uncaught Python exception",
            "==ERROR", "SUMMARY: UndefinedBehaviorSanitizer")


def _child(target, workdir, libfuzzer_args):
    """Inside the sanitized Python: check the core loaded is the instrumented one, write the seeds, fuzz."""
    import atheris

    with atheris.instrument_imports(include=["chronik_perf"]):
        import chronik_perf.protocol  # noqa: F401  (its Python parts guide the fuzzer too)
        import targets
    import chronik_perf._core as core

    expected = os.environ["CHRONIK_PERF_SANITIZED_CORE"]
    assert core.__file__.startswith(expected), f"{core.__file__} is not the sanitized core under {expected}"
    binary = Path(core.__file__).read_bytes()
    assert b"__asan_report_load" in binary and b"__sanitizer_cov_8bit_counters_init" in binary, core.__file__
    print(f"sanitized core: {core.__file__}", flush=True)
    fuzz, seeds = targets.TARGETS[target]
    if any(os.path.isfile(arg) for arg in libfuzzer_args):  # inputs to rerun (--reproduce)
        atheris.Setup([sys.argv[0], *libfuzzer_args], fuzz)
        return atheris.Fuzz()
    seed_dir = Path(workdir) / "seeds"
    shutil.rmtree(seed_dir, ignore_errors=True)
    seed_dir.mkdir(parents=True)
    for i, seed in enumerate(seeds()):
        (seed_dir / f"seed-{i:04d}").write_bytes(seed)
    for name, data in targets.regression_inputs(target):
        (seed_dir / f"regression-{name}").write_bytes(data)
    corpus = Path(workdir) / "corpus"
    corpus.mkdir(exist_ok=True)
    atheris.Setup([sys.argv[0], *libfuzzer_args, str(corpus), str(seed_dir)], fuzz)
    atheris.Fuzz()


def _stats(log):
    """Figures of one libFuzzer run from its output."""
    text = log.read_text(errors="replace")
    cov = re.findall(r"\bcov: (\d+) ft: (\d+)", text)
    stat = dict(re.findall(r"stat::(\w+):\s+(\d+)", text))
    done = re.search(r"Done (\d+) runs in (\d+) second", text)
    findings = [line for line in text.splitlines() if any(f in line for f in FINDINGS)]
    artifacts = re.findall(r"Test unit written to (\S+)", text)
    return {
        "runs": int(stat.get("number_of_executed_units", done.group(1) if done else 0)),
        "seconds": int(done.group(2)) if done else None,
        "exec_per_s": int(stat.get("average_exec_per_sec", 0)),
        "coverage": int(cov[-1][0]) if cov else 0,
        "features": int(cov[-1][1]) if cov else 0,
        "corpus_added": int(stat.get("new_units_added", 0)),
        "peak_rss_mb": int(stat.get("peak_rss_mb", 0)),
        "done": done is not None,
        "findings": findings[:20],
        "artifacts": artifacts,
    }


def run_target(target, src, runs, workdir, seed=None, max_time=None, nice=0, fresh=False, deadline=None):
    """Fuzz one target for `runs` inputs in its own sanitized Python, stopping after max_time seconds or at the
    time.monotonic() deadline; returns its figures."""
    if deadline is not None:
        max_time = max(1, min(max_time or math.inf, int(deadline - time.monotonic())))
    work = Path(workdir) / target
    if fresh:
        shutil.rmtree(work / "corpus", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    # the timeout is wall time: generous, so that a fuzzer starved by a loaded machine is not taken for a hung decoder
    args = [f"-runs={runs}", "-timeout=300", "-rss_limit_mb=3072", "-print_final_stats=1",
            f"-artifact_prefix={work}/"]
    if target in MAX_LEN:
        args.append(f"-max_len={MAX_LEN[target]}")
    if seed is not None:
        args.append(f"-seed={seed}")
    if max_time:
        args.append(f"-max_total_time={max_time}")
    log = work / "log.txt"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", target, "--workdir", str(work), "--",
               *args]
    if nice:
        command = ["nice", "-n", str(nice), *command]
    started = time.monotonic()
    with open(log, "w") as out:
        rc = subprocess.run(command, env=sanitized.environment(src), stdout=out, stderr=subprocess.STDOUT,
                            cwd=work).returncode
    figures = {"target": target, "returncode": rc, "wall_seconds": round(time.monotonic() - started, 1),
               "log": str(log), **_stats(log)}
    figures["ok"] = rc == 0 and figures["done"] and not figures["findings"]
    return figures


HEADER = ("| target | result | inputs | seconds | exec/s | coverage (edges) | features | corpus added | peak RSS MB |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|---:|")


def _row(f):
    """One target's figures as a Markdown table row."""
    return (f"| {f['target']} | {'ok' if f['ok'] else 'FAILED'} | {f['runs']} | {f['wall_seconds']:.0f} | "
            f"{f['exec_per_s']} | {f['coverage']} | {f['features']} | {f['corpus_added']} | {f['peak_rss_mb']} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="all", help=f"all, or a comma-separated list of {', '.join(TARGET_NAMES)}")
    parser.add_argument("--runs", type=int, default=10000, help="inputs per target")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once")
    parser.add_argument("--seed", type=int, help="libFuzzer's random seed (fixed for reproducible smoke runs)")
    parser.add_argument("--max-time", type=int, help="stop each target after this many seconds")
    parser.add_argument("--total-time", type=int,
                        help="stop every target this many seconds after the run starts (a target started late gets "
                             "what is left)")
    parser.add_argument("--nice", type=int, default=0, help="run the fuzzers at this niceness")
    parser.add_argument("--workdir", default=str(sanitized.REPO / "build" / "fuzz"),
                        help="corpora, logs and crash inputs go here")
    parser.add_argument("--fresh", action="store_true", help="start from the seeds, not the saved corpora")
    parser.add_argument("--json", help="write every target's figures to this file")
    parser.add_argument("--reproduce", metavar="INPUT", nargs="+",
                        help="run one --target on these inputs (saved crashes) and show what happens")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("libfuzzer_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.workdir, args.libfuzzer_args)
    names = TARGET_NAMES if args.target == "all" else tuple(args.target.split(","))
    unknown = set(names) - set(TARGET_NAMES)
    if unknown:
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; choose from {', '.join(TARGET_NAMES)}")
    try:
        src = sanitized.build()
    except sanitized.SanitizedBuildError as exc:
        print(f"fuzz: {exc}", file=sys.stderr)
        return 2
    if args.reproduce:
        if len(names) != 1:
            parser.error("--reproduce needs exactly one --target")
        workdir = Path(args.workdir) / names[0]
        workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", names[0], "--workdir",
                               str(workdir), "--", *map(os.path.abspath, args.reproduce)],
                              env=sanitized.environment(src), cwd=workdir).returncode
    started = time.time()
    deadline = time.monotonic() + args.total_time if args.total_time else None
    print(HEADER, flush=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        jobs = [pool.submit(run_target, name, src, args.runs, args.workdir, args.seed, args.max_time, args.nice,
                            args.fresh, deadline) for name in names]
        results = []
        for job in jobs:
            results.append(job.result())
            print(_row(results[-1]), flush=True)
    for f in results:
        if not f["ok"]:
            print(f"{f['target']}: exit {f['returncode']}, log {f['log']}", file=sys.stderr)
            for line in f["findings"]:
                print(f"  {line}", file=sys.stderr)
            for path in f["artifacts"]:
                print(f"  input: {path}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"started": started, "runs_per_target": args.runs,
                                               "sanitized_core": str(src), "targets": results}, indent=1))
    return 0 if all(f["ok"] for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
