"""chronik-perf's pyperf micro-benchmarks: one module per group (bench_<group>.py), run.py to run groups into one
suite file, report.py for tables, charts and the issues' bars, compare.py to compare two builds. Run from the
repository root as `python -m micro.run` (or `python micro/run.py`)."""
