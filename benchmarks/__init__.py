"""Benchmarks: scripts that print numbers and ratios side by side in one run (`make bench`)."""
