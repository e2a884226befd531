"""CoEvoEnv (spec coevodt §1) in plain Python/NumPy, two ways:

* :func:`run_per_step` — one episode at a time, one step at a time, Python
  floats and ``numpy.random`` draws per step (the shape of the seed's code);
* :func:`run_vectorised` — NumPy arrays over all episodes, a Python loop over steps.

Both return the sums of QoE, latency and cost over all steps (to compare
with jaxtwin) and take the spec's constants.
"""
from __future__ import annotations

import numpy as np

A_P, A_I, A_U = 0.05, 0.08, 0.02


def step_numpy(v, l, c, q, a, z):
    """One transition with explicit standard-normal ``z = (z_v, z_l, z_lat, z_q)`` (arrays ok).

    Returns ``(v', l', c', qoe, latency, cost)``.
    """
    promo, infra, engage = A_P * a[0], A_I * a[1], A_U * (a[2] - 1.0)
    v2 = np.clip(v * (1.0 + 0.02 * z[0]) + promo * (1.0 - 0.2 * (1.0 - c)), 0.01, 1.0)
    c2 = np.clip(0.98 * c + infra, 0.1, 1.5)
    l2 = np.clip(l + 0.5 * (v2 + engage) - infra + 0.01 * z[1], 0.0, 2.0)
    lat = np.clip(0.5 * (l2 / c2 + 0.01 * z[2]), 0.0, 2.0)
    qoe = np.clip(q - 0.6 * lat + 0.05 * z[3], 0.0, 1.0)
    cost = 0.8 * infra + 0.5 * promo
    return v2, l2, c2, qoe, lat, cost


def run_per_step(n_episodes: int, horizon: int = 50, seed: int = 0) -> np.ndarray:
    """Per-step Python loop over episodes and steps; returns sums ``[qoe, latency, cost]``."""
    rng = np.random.default_rng(seed)
    sums = np.zeros(3)
    for _ in range(n_episodes):
        v, l, q = rng.uniform(size=3)
        c = 0.5
        for _ in range(horizon):
            a = rng.integers(0, 3, size=3)
            z = rng.standard_normal(4)
            v, l, c, qoe, lat, cost = step_numpy(v, l, c, q, a, z)
            sums += (qoe, lat, cost)
    return sums


def run_vectorised(n_episodes: int, horizon: int = 50, seed: int = 0) -> np.ndarray:
    """NumPy over episodes, Python loop over steps; returns sums ``[qoe, latency, cost]``."""
    rng = np.random.default_rng(seed)
    v, l, q = rng.uniform(size=(3, n_episodes)).astype(np.float32)
    c = np.full(n_episodes, 0.5, np.float32)
    sums = np.zeros(3)
    for _ in range(horizon):
        a = rng.integers(0, 3, size=(3, n_episodes)).astype(np.float32)
        z = rng.standard_normal((4, n_episodes), dtype=np.float32)
        v, l, c, qoe, lat, cost = step_numpy(v, l, c, q, a, z)
        sums += (qoe.sum(), lat.sum(), cost.sum())
    return sums
