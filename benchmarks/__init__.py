"""Timing scripts (`python -m benchmarks.<name>`); they report figures and are never part of the tests."""
