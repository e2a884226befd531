"""Statistics for comparing runs: mean/std, paired t-test, bootstrap CI, Gini, range.

Host-side (NumPy/SciPy) functions work on finished results; ``gini`` and
``value_range`` are JAX functions usable inside jitted programs.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from scipy import stats as _sps


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (``ddof=1`` when n > 1) of ``n`` values."""

    mean: float
    std: float
    n: int


def mean_std(x) -> MeanStd:
    """Mean and sample std of a 1-D sequence of finite numbers."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_std: empty input")
    if not np.all(np.isfinite(x)):
        raise ValueError("mean_std: input contains NaN or inf")
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return MeanStd(float(x.mean()), std, int(x.size))


def t_ci_halfwidth(x, confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``x`` (NaN for n < 2)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size < 2:
        return float("nan")
    return float(_sps.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


@dataclass(frozen=True)
class PairedTTest:
    """Result of a paired t-test of ``a - b``: mean difference, t, two-sided p, df."""

    mean_diff: float
    t: float
    p_value: float
    df: int


def paired_ttest(a, b) -> PairedTTest:
    """Two-sided paired t-test of ``a`` against ``b`` (same length >= 2).

    A zero-variance difference gives ``t = ±inf, p = 0`` when the mean
    difference is non-zero and ``t = 0, p = 1`` when it is zero.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_ttest: shapes differ {a.shape} vs {b.shape}")
    if a.size < 2:
        raise ValueError("paired_ttest: need at least 2 pairs")
    d = a - b
    n = d.size
    md = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        if md == 0.0:
            return PairedTTest(0.0, 0.0, 1.0, n - 1)
        return PairedTTest(md, float(np.sign(md) * np.inf), 0.0, n - 1)
    t = md / (sd / np.sqrt(n))
    p = float(2.0 * _sps.t.sf(abs(t), df=n - 1))
    return PairedTTest(md, float(t), p, n - 1)


def bootstrap_ci(x, *, n_resamples: int = 10_000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``x`` (e.g. paired differences)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ci: confidence must be in (0,1), got {confidence}")
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_ci: empty input")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    means = x[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def relative_change(new: float, ref: float) -> float:
    """``(new - ref) / |ref|`` (NaN when ``ref == 0``)."""
    return float((new - ref) / abs(ref)) if ref != 0 else float("nan")


def gini(x: jnp.ndarray) -> jnp.ndarray:
    """Gini coefficient over the last axis: ``sum_ij |x_i - x_j| / (2 n^2 mean)``.

    Defined as 0 when the mean is 0 (nothing to share unequally).
    """
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    n = x.shape[-1]
    total = jnp.sum(jnp.abs(x[..., :, None] - x[..., None, :]), axis=(-2, -1))
    mean = jnp.mean(x, axis=-1)
    safe = jnp.where(mean == 0, 1.0, mean)
    return jnp.where(mean == 0, 0.0, total / (2.0 * n * n * safe))


def value_range(x: jnp.ndarray) -> jnp.ndarray:
    """``max - min`` over the last axis."""
    return jnp.max(x, axis=-1) - jnp.min(x, axis=-1)
