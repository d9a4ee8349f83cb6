"""memnode benchmarks: ``python -m bench <name> [--quick] [--json OUT]``.

Each benchmark is a module with ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> int``, registered in :data:`bench.__main__.BENCHMARKS`. Benchmarks report
numbers together with the raw libraries (or simpler baselines) doing the same work in the
same run, as ratios: the machines are shared and noisy, absolute numbers drift, ratios
and medians much less. Results go to ``bench/results/``.
"""
