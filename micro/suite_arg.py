"""argparse type of a pyperf suite file argument: a missing file or one that is not a suite is a one-line error."""
import argparse
from pathlib import Path

import pyperf


def suite_file(text):
    """The path, once pyperf has read it as a benchmark suite (argparse.ArgumentTypeError naming the file if not)."""
    try:
        pyperf.BenchmarkSuite.load(text)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text}: not a pyperf suite ({exc})") from None
    return Path(text)
