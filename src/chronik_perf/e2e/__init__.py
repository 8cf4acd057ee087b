"""End-to-end benchmarks against live Kafka-compatible brokers: `python -m chronik_perf.e2e --help`."""
