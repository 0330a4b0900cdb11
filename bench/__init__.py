"""Development benchmarks: python -m bench.NAME from the repository root (bench/README.md)."""
