"""Side-by-side benchmarks of annscale against anndata.

Run ``python -m benchmarks --help``; see ``benchmarks/README.md`` for what each workload does,
how time and memory are measured and how to read the ratios.
"""
