"""System-agnostic building blocks: environment contract, spaces, rollouts,
statistics, artifacts, plotting, progress, config validation and CLI helpers."""
