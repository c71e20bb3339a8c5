"""Evaluation: suites as data, tuned baselines, the run cache, reports and speed benchmarks."""
