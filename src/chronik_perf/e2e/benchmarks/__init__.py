"""The five end-to-end benchmarks, by name."""

from .concurrent import run_concurrent
from .groups import run_groups
from .latency import run_latency
from .throughput import run_consumer, run_producer

BENCHMARKS = {
    "producer": run_producer,
    "consumer": run_consumer,
    "latency": run_latency,
    "concurrent": run_concurrent,
    "groups": run_groups,
}
