"""chronik-perf: native-accelerated benchmarks for Kafka-compatible brokers."""

__version__ = "0.1.0"

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "chronik_perf's native core (chronik_perf._core) is not built: "
        "run `pip install -e .` in the source tree (or `python setup.py build_ext --inplace`). "
        f"Cause: {exc}"
    ) from exc
