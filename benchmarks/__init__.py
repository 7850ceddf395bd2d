"""End-to-end and micro benchmarks for meshcore (see benchmarks/README.md)."""
