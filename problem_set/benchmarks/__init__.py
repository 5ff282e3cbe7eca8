"""Benchmarks: timings of the measures and training loops, run by hand or by scripts/."""
