"""Benchmark harness of the QIWI bill toolkit: ``python -m bench [--quick]`` (``make bench``).

See ``docs/performance.md`` for what it measures and the latest results.
"""
