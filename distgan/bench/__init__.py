"""Benchmarks behind ``distgan bench``: each measures distgan against a baseline in the same run."""
