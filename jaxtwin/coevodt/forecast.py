"""Load forecasting for Co-EvoDT (spec coevodt §3): LSTM training, the three
classical baselines, online fine-tuning, and the normalised forecast feature
appended to the policies' state.

All functions are pure and jittable with the :class:`ForecastConfig` static.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxtwin.core.config import require_int, require_positive, require_range, ConfigError
from jaxtwin.nets.forecaster import LSTMForecaster

FORECASTERS = ("lstm", "naive", "ar1", "exp_smoothing")
"""Order of the forecasters in ``report["rmse"]`` and ``report["test_pred"]``."""


@dataclass(frozen=True)
class ForecastConfig:
    """Forecaster hyperparameters (spec coevodt §3 defaults)."""

    window: int = field(default=8, metadata={"help": "number of past loads fed to the forecaster"})
    hidden: int = field(default=32, metadata={"help": "LSTM hidden size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate for pretraining"})
    epochs: int = field(default=20, metadata={"help": "pretraining epochs"})
    batch_size: int = field(default=64, metadata={"help": "minibatch size"})
    train_frac: float = field(default=0.7, metadata={"help": "fraction of sequences for training"})
    val_frac: float = field(default=0.15, metadata={"help": "fraction of sequences for validation (rest: test)"})
    exp_alpha: float = field(default=0.5, metadata={"help": "exponential-smoothing baseline alpha"})
    online_lr: float = field(default=1e-4, metadata={"help": "Adam learning rate of the online fine-tune"})
    online_epochs: int = field(default=2, metadata={"help": "epochs of each online fine-tune"})
    online_every: int = field(default=10, metadata={"help": "episodes between online fine-tunes (and their data)"})

    def __post_init__(self):
        require_int(self, "window", "hidden", "epochs", "batch_size", "online_epochs", "online_every", minimum=1)
        require_positive(self, "lr", "online_lr")
        require_range(self, "train_frac", 0.0, 1.0, lo_open=True, hi_open=True)
        require_range(self, "val_frac", 0.0, 1.0, lo_open=True, hi_open=True)
        require_range(self, "exp_alpha", 0.0, 1.0, lo_open=True)
        if self.train_frac + self.val_frac >= 1.0:
            raise ConfigError(
                f"ForecastConfig.train_frac+val_frac={self.train_frac + self.val_frac!r}: "
                "must be < 1 to leave a test split")


@struct.dataclass
class ForecasterState:
    """Trained LSTM parameters and the training load range used to normalise forecasts."""

    params: dict
    lo: jax.Array
    hi: jax.Array


def make_windows(loads: jax.Array, window: int) -> tuple[jax.Array, jax.Array]:
    """Sliding windows over each episode: ``f32[E, T] -> (X f32[E*(T-w), w], y f32[E*(T-w)])``.

    Sequences are ordered episode by episode, so contiguous splits do not mix episodes
    (except at one boundary).
    """
    n_ep, horizon = loads.shape
    if horizon <= window:
        raise ConfigError(f"make_windows: episode length {horizon} must exceed window {window}")
    starts = jnp.arange(horizon - window)
    idx = starts[:, None] + jnp.arange(window + 1)[None, :]
    seqs = loads[:, idx].reshape(-1, window + 1)
    return seqs[:, :window], seqs[:, window]


def split_sizes(n: int, cfg: ForecastConfig) -> tuple[int, int, int]:
    """``(n_train, n_val, n_test)`` for ``n`` sequences; each must be >= 1."""
    n_train = int(cfg.train_frac * n)
    n_val = int(cfg.val_frac * n)
    n_test = n - n_train - n_val
    if min(n_train, n_val, n_test) < 1:
        raise ConfigError(f"too few sequences ({n}) for a train/val/test split")
    return n_train, n_val, n_test


def _span(lo, hi):
    return jnp.maximum(hi - lo, 1e-8)


def _to_unit(v, lo, hi):
    """Min-max scaling with the training range (not clipped)."""
    return (v - lo) / _span(lo, hi)


def _mse(model: LSTMForecaster, params, x, y):
    return jnp.mean((model.apply(params, x) - y) ** 2)


def _fit(model, params, key, x, y, *, lr: float, epochs: int, batch_size: int,
         x_val=None, y_val=None):
    """Adam on shuffled minibatches; scan over epochs and batches. Returns params, losses."""
    n_batches = max(x.shape[0] // batch_size, 1)
    bs = min(batch_size, x.shape[0])
    opt = optax.adam(lr)
    grad_fn = jax.value_and_grad(lambda p, xb, yb: _mse(model, p, xb, yb))

    def epoch(carry, ekey):
        params, opt_state = carry
        perm = jax.random.permutation(ekey, x.shape[0])[: n_batches * bs].reshape(n_batches, bs)

        def batch(carry, idx):
            params, opt_state = carry
            loss, grads = grad_fn(params, x[idx], y[idx])
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(batch, (params, opt_state), perm)
        val = _mse(model, params, x_val, y_val) if x_val is not None else jnp.nan
        return (params, opt_state), (losses.mean(), val)

    (params, _), (train_loss, val_loss) = jax.lax.scan(
        epoch, (params, opt.init(params)), jax.random.split(key, epochs))
    return params, train_loss, val_loss


def exp_smoothing_forecast(x: jax.Array, alpha: float) -> jax.Array:
    """Simple exponential smoothing over each window (level started at its first value)."""

    def step(level, xt):
        level = alpha * xt + (1 - alpha) * level
        return level, None

    level, _ = jax.lax.scan(step, x[:, 0], x[:, 1:].T)
    return level


def fit_ar1(x_last: jax.Array, y: jax.Array) -> jax.Array:
    """Least-squares ``(b0, b1)`` of ``y ≈ b0 + b1 * x_last`` (the seed's "ARIMA").

    Closed form on centred data (``b1 = cov(x, y) / var(x)``, ``b0 = mean(y) -
    b1 mean(x)``; ``b1 = 0`` when ``x_last`` is constant). Why not
    ``jnp.linalg.lstsq``: its LAPACK SVD, batched over runs and sharded over
    several CPU devices, can deadlock XLA's intra-op thread pool (seen with
    jaxlib 0.10.2 and ``--devices 2`` on a 2-core CPU), and two coefficients
    need no SVD.
    """
    dx, dy = x_last - x_last.mean(), y - y.mean()
    sxx = jnp.sum(dx * dx)
    b1 = jnp.where(sxx > 0, jnp.sum(dx * dy) / jnp.where(sxx > 0, sxx, 1.0), 0.0)
    return jnp.stack([y.mean() - b1 * x_last.mean(), b1])


def pretrain(key: jax.Array, loads: jax.Array, cfg: ForecastConfig) -> tuple[ForecasterState, dict]:
    """Train the LSTM on the windows of ``loads`` (``f32[E, T]``) and score all forecasters.

    The LSTM is trained on loads min-max scaled with the training range
    (``lo``, ``hi`` in the state); its forecasts are mapped back to loads.
    ``train_loss``/``val_loss`` are MSEs in the scaled units. Returns the
    forecaster state and a report: ``rmse`` (``f32[4]`` in
    :data:`FORECASTERS` order, test split), ``train_loss``/``val_loss`` per
    epoch, ``test_target`` and ``test_pred`` (``f32[n_test, 4]``), ``ar1_coef``.
    """
    x, y = make_windows(loads, cfg.window)
    n_train, n_val, _ = split_sizes(x.shape[0], cfg)
    x_tr, y_tr = x[:n_train], y[:n_train]
    x_va, y_va = x[n_train:n_train + n_val], y[n_train:n_train + n_val]
    x_te, y_te = x[n_train + n_val:], y[n_train + n_val:]

    train_loads = jnp.concatenate([x_tr.ravel(), y_tr])
    lo, hi = train_loads.min(), train_loads.max()
    scale = lambda v: _to_unit(v, lo, hi)

    model = LSTMForecaster(cfg.hidden)
    key_init, key_fit = jax.random.split(key)
    params = model.init(key_init, x_tr[:1])
    # the LSTM learns on min-max scaled loads (the usual MinMaxScaler practice): raw loads
    # sit near the clip at 2, far from where tanh units and small output biases start
    params, train_loss, val_loss = _fit(model, params, key_fit, scale(x_tr), scale(y_tr), lr=cfg.lr,
                                        epochs=cfg.epochs, batch_size=cfg.batch_size,
                                        x_val=scale(x_va), y_val=scale(y_va))
    state = ForecasterState(params=params, lo=lo, hi=hi)
    coef = fit_ar1(x_tr[:, -1], y_tr)
    preds = jnp.stack([
        predict(state, x_te, cfg),
        x_te[:, -1],
        coef[0] + coef[1] * x_te[:, -1],
        exp_smoothing_forecast(x_te, cfg.exp_alpha),
    ], axis=1)
    rmse = jnp.sqrt(jnp.mean((preds - y_te[:, None]) ** 2, axis=0))
    report = dict(rmse=rmse, train_loss=train_loss, val_loss=val_loss,
                  test_target=y_te, test_pred=preds, ar1_coef=coef)
    return state, report


def finetune(fstate: ForecasterState, key: jax.Array, loads: jax.Array,
             cfg: ForecastConfig) -> ForecasterState:
    """Online update on the windows of recent episodes' ``loads`` (``f32[P, T]``).

    A fresh Adam at ``online_lr`` for ``online_epochs`` epochs; the normalisation
    range stays the pretraining one so the policies' input keeps its meaning.
    """
    x, y = make_windows(loads, cfg.window)
    model = LSTMForecaster(cfg.hidden)
    scale = lambda v: _to_unit(v, fstate.lo, fstate.hi)
    params, _, _ = _fit(model, fstate.params, key, scale(x), scale(y), lr=cfg.online_lr,
                        epochs=cfg.online_epochs, batch_size=cfg.batch_size)
    return fstate.replace(params=params)


def predict(fstate: ForecasterState, windows: jax.Array, cfg: ForecastConfig) -> jax.Array:
    """Next-load forecasts (in load units) for ``f32[..., window]`` inputs."""
    unit = LSTMForecaster(cfg.hidden).apply(fstate.params, _to_unit(windows, fstate.lo, fstate.hi))
    return fstate.lo + unit * _span(fstate.lo, fstate.hi)


def push_load(buffer: jax.Array, load: jax.Array) -> jax.Array:
    """Shift the load buffer left by one and append ``load`` (oldest first)."""
    return jnp.concatenate([buffer[1:], jnp.reshape(load, (1,)).astype(buffer.dtype)])


def forecast_feature(fstate: ForecasterState, buffer: jax.Array, count: jax.Array,
                     cfg: ForecastConfig) -> jax.Array:
    """Normalised next-load forecast in ``[0, 1]`` for the policies' state.

    ``buffer`` holds the episode's last ``window`` loads (oldest first,
    right-aligned); ``count`` is how many loads the episode has produced so far.
    Until ``window`` loads exist the last observed load stands in for the
    forecast (spec §3). Min-max normalised with the training range, clipped.
    """
    raw = jnp.where(count >= cfg.window, predict(fstate, buffer, cfg), buffer[-1])
    return jnp.clip(_to_unit(raw, fstate.lo, fstate.hi), 0.0, 1.0)
