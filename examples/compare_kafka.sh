#!/usr/bin/env bash
# The seed's Chronik-vs-Kafka flow: run the same suite against Chronik Stream (localhost:9092, started by you) and a
# Kafka started here from Maven Central jars (127.0.0.1:9095), then print the side-by-side table with ratios.
#   examples/compare_kafka.sh [extra options for both runs, e.g. --quick or --workload high-throughput]
# CHRONIK=host:port overrides Chronik's address; set TARGETS="kafka,tansu" to compare other brokers instead.
set -euo pipefail
RESULTS="${RESULTS:-results/compare-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$RESULTS"
if [ -n "${TARGETS:-}" ]; then
    exec python -m chronik_perf.e2e --targets "$TARGETS" --results-dir "$RESULTS" "$@"
fi
python -m chronik_perf.e2e --target chronik --bootstrap-servers "${CHRONIK:-localhost:9092}" \
    --results-dir "$RESULTS" "$@"
python -m chronik_perf.e2e --target kafka --start --results-dir "$RESULTS" "$@"
python -m chronik_perf.e2e compare "$RESULTS"/*_chronik "$RESULTS"/*_kafka --chart "$RESULTS/comparison.png"
