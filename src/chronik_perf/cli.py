"""The chronik-perf console script: `chronik-perf e2e ...` (more subcommands as components land)."""

from __future__ import annotations

import sys

USAGE = "usage: chronik-perf COMMAND [options]\n\ncommands:\n  e2e    end-to-end benchmarks against live brokers\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "e2e":
        from chronik_perf.e2e.cli import main as e2e_main
        return e2e_main(rest)
    print(f"chronik-perf: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
