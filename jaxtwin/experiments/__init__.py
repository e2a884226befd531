"""Experiments: config dataclass + run(config, out_dir) writing CSV/JSON/PNG; cli(argv, prog)."""
