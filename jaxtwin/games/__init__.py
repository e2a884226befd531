"""Differential and evolutionary games (sync game): model, replicator, PMP solvers."""
