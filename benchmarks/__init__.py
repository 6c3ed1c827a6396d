"""Benchmarks: timings against a baseline measured in the same run, written as JSON."""
