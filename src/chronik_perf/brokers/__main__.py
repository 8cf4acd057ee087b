"""`python -m chronik_perf.brokers start|stop|status|logs NAME`: run brokers without Docker.

Exit codes: 0 done, 2 could not (one line on stderr saying what is wrong and what to do).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time

from . import DEFAULT_PORTS, DEFAULT_TIMEOUT, NAMES, BrokerError, log_file, running, start, status, stop
from . import chronik
from .kafka import DEFAULT_HEAP, pinned_version


def _property(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds above 0, got {text!r}")
    return value


def _heap(text: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[kKmMgG]?", text):
        raise argparse.ArgumentTypeError(f"expected a JVM heap size such as 512m or 2g, got {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chronik_perf.brokers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="start a broker and print its bootstrap address")
    p.add_argument("name", choices=NAMES)
    p.add_argument("--port", type=_port, help="listening port (" + ", ".join(
        f"{name} {port}" for name, port in DEFAULT_PORTS.items()) + " only)")
    p.add_argument("--host", default="127.0.0.1", help="listening address (default 127.0.0.1)")
    p.add_argument("--fresh", action="store_true", help="kafka, chronik: wipe the data dir first")
    p.add_argument("--kafka-version", metavar="VERSION",
                   help=f"kafka: the Kafka 4.x release to run (default {pinned_version()}, the pinned one)")
    p.add_argument("--binary", metavar="PATH",
                   help=f"chronik: the chronik-server executable (default ${chronik.BINARY_ENV})")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                   help=f"seconds to wait for it to answer (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--advertised-host", help="host advertised to clients (default: --host)")
    p.add_argument("--advertised-port", type=_port, help="port advertised to clients (default: --port)")
    p.add_argument("--heap", type=_heap, default=DEFAULT_HEAP, help=f"kafka: JVM heap (default {DEFAULT_HEAP})")
    p.add_argument("--property", type=_property, action="append", default=[], metavar="KEY=VALUE",
                   help="kafka: server.properties override (repeatable)")
    p.add_argument("--brokers", type=int, default=3, help="mock: number of brokers (default 3)")
    p = sub.add_parser("stop", help="stop a broker we started (SIGTERM, then SIGKILL after --timeout)")
    p.add_argument("name", choices=NAMES)
    p.add_argument("--port", type=_port, help="only the instance on this port")
    p.add_argument("--timeout", type=_seconds, default=30.0, help="seconds before SIGKILL (default 30)")
    p = sub.add_parser("status", help="list brokers: running or not, address, pid, version, data dir")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("logs", help="print the end of a broker's log")
    p.add_argument("name", choices=NAMES)
    p.add_argument("--port", type=_port)
    p.add_argument("-n", "--lines", type=int, default=40, help="default 40")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C to end)")
    return parser


def _start(args) -> None:
    only = {"--fresh": (args.fresh, ("kafka", "chronik")), "--property": (args.property, ("kafka",)),
            "--heap": (args.heap != DEFAULT_HEAP, ("kafka",)), "--kafka-version": (args.kafka_version, ("kafka",)),
            "--binary": (args.binary, ("chronik",))}
    refused = [f"{flag} ({'/'.join(names)} only)" for flag, (used, names) in only.items()
               if used and args.name not in names]
    if refused:
        raise BrokerError(f"{args.name} does not take {', '.join(refused)}")
    existing = running(args.name, args.port)
    if existing is not None and args.kafka_version in (None, existing.version):
        print(f"{args.name} is already running at {existing.bootstrap_servers} (pid {existing.pid})", file=sys.stderr)
        print(existing.bootstrap_servers)
        return
    options = {"port": args.port, "host": args.host, "timeout": args.timeout}
    if args.name == "mock":
        options.update(in_process=False, num_brokers=args.brokers)
    else:
        options.update(advertised_host=args.advertised_host, advertised_port=args.advertised_port)
    if args.name == "kafka":
        options.update(fresh=args.fresh, heap=args.heap, properties=dict(args.property), version=args.kafka_version)
    if args.name == "chronik":
        options.update(fresh=args.fresh, binary_path=args.binary)
    broker = start(args.name, **options)
    where = f", data {broker.log_dirs[0]}" if broker.log_dirs else ""
    print(f"{broker.name} {broker.version} running at {broker.bootstrap_servers} (pid {broker.pid}{where}; "
          f"log {broker.log_file})", file=sys.stderr)
    print(broker.bootstrap_servers)


def _status(args) -> None:
    rows = status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        if r["address"] is None:
            print(f"{r['name']:7} not running")
            continue
        state = "running" if r["running"] else "not running (stale record)"
        data = ",".join(r["data"]) or "-"
        print(f"{r['name']:7} {state:8} {r['address']}  pid {r['pid']}  version {r['version']}  data {data}")


def _logs(args) -> None:
    path = log_file(args.name, args.port)
    with open(path, errors="replace") as f:
        sys.stdout.writelines(f.readlines()[-args.lines:] if args.lines > 0 else [])
        sys.stdout.flush()
        while args.follow:
            line = f.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            _start(args)
        elif args.command == "stop":
            print("\n".join(stop(args.name, args.port, args.timeout)))
        elif args.command == "status":
            _status(args)
        else:
            _logs(args)
    except (BrokerError, OSError) as exc:  # OSError: a state folder or log that cannot be written or read
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
