"""Benchmark scripts; a package so tests can import benchmarks.scrub_corpus."""
