"""Benchmarks behind `mvlm bench`: one module per target, each with `add_arguments(parser)` and
`run(args) -> dict`. Targets are ratios measured within one run so they hold on a noisy machine."""

TARGETS = ["metrics", "model", "tracker", "train"]
