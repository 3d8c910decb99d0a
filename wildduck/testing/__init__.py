"""Helpers for tests and benchmarks: running servers, protocol clients."""
