"""Load forecasting for Co-EvoDT (spec coevodt §3): LSTM training (procedure v2 by
default, the seed's literal v1 on request), the three classical baselines, the
oracle floor, online fine-tuning, and the normalised forecast feature appended
to the policies' state.

All functions are pure and jittable with the :class:`ForecastConfig` static.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxtwin.core.concrete import compiled_when_concrete
from jaxtwin.core.config import ConfigError, require_choice, require_int, require_positive, require_range
from jaxtwin.coevodt.env import EnvParams
from jaxtwin.coevodt.oracle import expected_next_load
from jaxtwin.nets.forecaster import LSTMForecaster

FORECASTERS = ("lstm", "naive", "ar1", "exp_smoothing", "oracle")
"""Order of the forecasters in ``report["rmse"]`` and ``report["test_pred"]``; ``oracle`` is
the floor ``E[l_{t+1} | v_t, l_t, c_t]`` (:mod:`jaxtwin.coevodt.oracle`), not a window forecaster."""
PROCEDURES = ("v1", "v2")


@dataclass(frozen=True)
class ForecastConfig:
    """Forecaster hyperparameters (spec coevodt §3 defaults; training procedure v2 by default)."""

    window: int = field(default=8, metadata={"help": "number of past loads fed to the forecaster"})
    hidden: int = field(default=32, metadata={"help": "LSTM hidden size"})
    procedure: Literal["v1", "v2"] = field(default="v2", metadata={
        "help": "training procedure: v2 (residual target, warmup+cosine lr, best-validation epoch kept) "
                "or v1 (the seed's literal one: min-max target, constant lr, last epoch kept)"})
    lr: float = field(default=1e-2, metadata={"help": "v2: peak Adam learning rate of pretraining"})
    epochs: int = field(default=60, metadata={"help": "v2: maximum pretraining epochs (best validation kept)"})
    batch_size: int = field(default=256, metadata={"help": "v2: pretraining minibatch size"})
    warmup_epochs: int = field(default=1, metadata={"help": "v2: epochs of linear lr warmup before the cosine decay"})
    final_lr_frac: float = field(default=0.02, metadata={"help": "v2: lr at the end of the cosine decay, as a fraction of the peak"})
    v1_lr: float = field(default=1e-3, metadata={"help": "v1: constant Adam learning rate of pretraining"})
    v1_epochs: int = field(default=20, metadata={"help": "v1: pretraining epochs"})
    v1_batch_size: int = field(default=64, metadata={"help": "v1: pretraining minibatch size"})
    train_frac: float = field(default=0.7, metadata={"help": "fraction of sequences for training"})
    val_frac: float = field(default=0.15, metadata={"help": "fraction of sequences for validation (rest: test)"})
    exp_alpha: float = field(default=0.5, metadata={"help": "exponential-smoothing baseline alpha"})
    online_lr: float = field(default=1e-4, metadata={"help": "Adam learning rate of the online fine-tune (v2: its peak)"})
    online_epochs: int = field(default=2, metadata={"help": "epochs of each online fine-tune"})
    online_every: int = field(default=10, metadata={"help": "episodes between online fine-tunes (and their data)"})
    online_batch_size: int = field(default=64, metadata={"help": "minibatch size of the online fine-tune"})
    oracle_samples: int = field(default=256, metadata={"help": "Monte Carlo noise draws per state of the oracle floor"})

    def __post_init__(self):
        require_choice(self, "procedure", PROCEDURES)
        require_int(self, "window", "hidden", "epochs", "batch_size", "v1_epochs", "v1_batch_size",
                    "online_epochs", "online_every", "online_batch_size", "oracle_samples", minimum=1)
        require_int(self, "warmup_epochs", minimum=0)
        require_positive(self, "lr", "v1_lr", "online_lr")
        require_range(self, "final_lr_frac", 0.0, 1.0)
        require_range(self, "train_frac", 0.0, 1.0, lo_open=True, hi_open=True)
        require_range(self, "val_frac", 0.0, 1.0, lo_open=True, hi_open=True)
        require_range(self, "exp_alpha", 0.0, 1.0, lo_open=True)
        if self.train_frac + self.val_frac >= 1.0:
            raise ConfigError(
                f"ForecastConfig.train_frac+val_frac={self.train_frac + self.val_frac!r}: "
                "must be < 1 to leave a test split")


@struct.dataclass
class ForecasterState:
    """Trained LSTM parameters and the scales of its inputs and target.

    ``lo``/``hi``: the training load range (inputs are min-max scaled with it,
    and so is the policies' forecast feature). ``delta_scale``: v2 only, the
    std of the training targets' change ``l_{t+1} - l_t`` (the network's
    output unit); 1 under v1.
    """

    params: dict
    lo: jax.Array
    hi: jax.Array
    delta_scale: jax.Array


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


def window_states(states: jax.Array, window: int) -> jax.Array:
    """The state each window's target step starts from, in :func:`make_windows` order:
    ``f32[E, T, k] -> f32[E*(T-w), k]``, where ``states[e, j]`` is the state before step
    ``j`` (so its load is ``loads[e, j-1]``, the window's last load, and ``loads[e, j]``
    is the target)."""
    return states[:, window:].reshape(-1, states.shape[-1])


def split_sizes(n: int, cfg: ForecastConfig) -> tuple[int, int, int]:
    """``(n_train, n_val, n_test)`` for ``n`` sequences; each must be >= 1."""
    n_train = int(cfg.train_frac * n)
    n_val = int(cfg.val_frac * n)
    n_test = n - n_train - n_val
    if min(n_train, n_val, n_test) < 1:
        raise ConfigError(f"too few sequences ({n}) for a train/val/test split with "
                          f"forecast.train_frac={cfg.train_frac!r}, forecast.val_frac={cfg.val_frac!r}: "
                          f"{n_train}/{n_val}/{n_test} sequences (each split needs >= 1)")
    return n_train, n_val, n_test


def _span(lo, hi):
    return jnp.maximum(hi - lo, 1e-8)


def _to_unit(v, lo, hi):
    """Min-max scaling with the training range (not clipped)."""
    return (v - lo) / _span(lo, hi)


def _inputs(fstate: ForecasterState, windows):
    return _to_unit(windows, fstate.lo, fstate.hi)


def _targets(fstate: ForecasterState, windows, y, cfg: ForecastConfig):
    """What the network learns to output: v2 the scaled change from the last load, v1 the scaled load."""
    if cfg.procedure == "v2":
        return (y - windows[..., -1]) / fstate.delta_scale
    return _to_unit(y, fstate.lo, fstate.hi)


def _mse(model: LSTMForecaster, params, x, y):
    return jnp.mean((model.apply(params, x) - y) ** 2)


def lr_schedule(peak: float, steps_per_epoch: int, epochs: int, warmup_epochs: int,
                final_frac: float):
    """v2 learning rate per Adam step: linear warmup to ``peak`` over ``warmup_epochs``,
    then cosine decay to ``final_frac * peak`` at the last step."""
    warmup = warmup_epochs * steps_per_epoch
    decay = max(epochs * steps_per_epoch - warmup, 1)

    def schedule(step):
        warm = peak * (step + 1) / max(warmup, 1)
        progress = jnp.clip((step - warmup) / decay, 0.0, 1.0)
        cosine = peak * (final_frac + (1 - final_frac) * 0.5 * (1 + jnp.cos(jnp.pi * progress)))
        return jnp.where(step < warmup, warm, cosine)

    return schedule


def _fit(model, params, key, x, y, *, lr, epochs: int, batch_size: int,
         x_val=None, y_val=None, keep_best: bool = False):
    """Adam on shuffled minibatches; scan over epochs and batches. Returns params, losses.

    ``lr`` is a float or a schedule of the step. With ``keep_best`` the returned
    parameters are those with the lowest validation MSE among the start and the
    end of every epoch (early stopping as a masked select inside the scan: the
    epochs after the best one still run, their parameters are just not kept).
    """
    n_batches = max(x.shape[0] // batch_size, 1)
    bs = min(batch_size, x.shape[0])
    opt = optax.adam(lr)
    grad_fn = jax.value_and_grad(lambda p, xb, yb: _mse(model, p, xb, yb))
    has_val = x_val is not None

    def epoch(carry, ekey):
        params, opt_state, best, best_val = carry
        perm = jax.random.permutation(ekey, x.shape[0])[: n_batches * bs].reshape(n_batches, bs)

        def batch(carry, idx):
            params, opt_state = carry
            loss, grads = grad_fn(params, x[idx], y[idx])
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(batch, (params, opt_state), perm)
        val = _mse(model, params, x_val, y_val) if has_val else jnp.nan
        if keep_best:
            better = val < best_val
            best = jax.tree.map(lambda new, old: jnp.where(better, new, old), params, best)
            best_val = jnp.where(better, val, best_val)
        return (params, opt_state, best, best_val), (losses.mean(), val)

    start_val = _mse(model, params, x_val, y_val) if keep_best else jnp.inf
    best0 = params if keep_best else None
    (params, _, best, _), (train_loss, val_loss) = jax.lax.scan(
        epoch, (params, opt.init(params), best0, start_val), jax.random.split(key, epochs))
    return (best if keep_best else params), train_loss, val_loss


def _pretrain_lstm(key, x_tr, y_tr, x_va, y_va, cfg: ForecastConfig):
    """Initialise and train the LSTM under ``cfg.procedure``: ``(state, train_loss, val_loss)``."""
    train_loads = jnp.concatenate([x_tr.ravel(), y_tr])
    delta_scale = jnp.maximum(jnp.std(y_tr - x_tr[:, -1]), 1e-6) if cfg.procedure == "v2" else jnp.float32(1.0)
    state = ForecasterState(params=None, lo=train_loads.min(), hi=train_loads.max(), delta_scale=delta_scale)
    model = LSTMForecaster(cfg.hidden)
    key_init, key_fit = jax.random.split(key)
    params = model.init(key_init, x_tr[:1])
    # inputs are min-max scaled loads (the usual MinMaxScaler practice): raw loads sit near
    # the clip at 2, far from where tanh units and small output biases start
    xs, ys = _inputs(state, x_tr), _targets(state, x_tr, y_tr, cfg)
    xv, yv = _inputs(state, x_va), _targets(state, x_va, y_va, cfg)
    if cfg.procedure == "v2":
        # v2: the target is the change from the last load in units of its std, since the load
        # mostly stays put (at the clip) and a scaled level hides the small steps the error is
        # made of; warmup+cosine and the best-validation epoch train it to convergence
        steps = max(x_tr.shape[0] // cfg.batch_size, 1)
        lr = lr_schedule(cfg.lr, steps, cfg.epochs, cfg.warmup_epochs, cfg.final_lr_frac)
        fit = dict(lr=lr, epochs=cfg.epochs, batch_size=cfg.batch_size, keep_best=True)
    else:
        fit = dict(lr=cfg.v1_lr, epochs=cfg.v1_epochs, batch_size=cfg.v1_batch_size)
    params, train_loss, val_loss = _fit(model, params, key_fit, xs, ys, x_val=xv, y_val=yv, **fit)
    return state.replace(params=params), train_loss, val_loss


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


@partial(compiled_when_concrete, static_argnames=("cfg",))
def pretrain(key: jax.Array, loads: jax.Array, cfg: ForecastConfig, states: jax.Array | None = None,
             env_params: EnvParams | None = None) -> tuple[ForecasterState, dict]:
    """Train the LSTM on the windows of ``loads`` (``f32[E, T]``) and score all forecasters.

    The procedure is ``cfg.procedure`` (see :class:`ForecastConfig` and
    docs/coevodt.md); forecasts are mapped back to loads. ``train_loss`` /
    ``val_loss`` are per-epoch MSEs in the network's output units. With
    ``states`` (``f32[E, T, 3]``: ``v, l, c`` before each step, as observed) and
    ``env_params``, the oracle floor is scored on the same test
    transitions; without, its column is NaN. Returns the forecaster state and a
    report: ``rmse`` (``f32[5]`` in :data:`FORECASTERS` order, test split),
    ``train_loss``/``val_loss`` per epoch, ``test_target`` and ``test_pred``
    (``f32[n_test, 5]``), ``ar1_coef``.
    """
    x, y = make_windows(loads, cfg.window)
    n_train, n_val, _ = split_sizes(x.shape[0], cfg)
    x_tr, y_tr = x[:n_train], y[:n_train]
    x_va, y_va = x[n_train:n_train + n_val], y[n_train:n_train + n_val]
    x_te, y_te = x[n_train + n_val:], y[n_train + n_val:]
    state, train_loss, val_loss = _pretrain_lstm(key, x_tr, y_tr, x_va, y_va, cfg)
    coef = fit_ar1(x_tr[:, -1], y_tr)
    if states is None:
        oracle = jnp.full_like(y_te, jnp.nan)
    else:
        test_states = window_states(states, cfg.window)[n_train + n_val:]
        oracle = expected_next_load(jax.random.fold_in(key, 1), test_states, env_params, cfg.oracle_samples)
    preds = jnp.stack([
        predict(state, x_te, cfg),
        x_te[:, -1],
        coef[0] + coef[1] * x_te[:, -1],
        exp_smoothing_forecast(x_te, cfg.exp_alpha),
        oracle,
    ], axis=1)
    rmse = jnp.sqrt(jnp.mean((preds - y_te[:, None]) ** 2, axis=0))
    report = dict(rmse=rmse, train_loss=train_loss, val_loss=val_loss,
                  test_target=y_te, test_pred=preds, ar1_coef=coef)
    return state, report


@partial(compiled_when_concrete, static_argnames=("cfg",))
def finetune(fstate: ForecasterState, key: jax.Array, loads: jax.Array,
             cfg: ForecastConfig) -> ForecasterState:
    """Online update on the windows of recent episodes' ``loads`` (``f32[P, T]``).

    A fresh Adam for ``online_epochs`` epochs of ``online_batch_size``; the
    input and target scales stay the pretraining ones so the policies' input
    keeps its meaning. v1: constant ``online_lr``, the last epoch kept. v2: the
    pretraining procedure at the lower rate: the same residual target, cosine
    decay from ``online_lr`` (no warmup: the weights are trained already), and
    the last ``val_frac`` of the windows held out to keep the best of the start
    and every epoch, so a fine-tune never makes the forecaster worse on them.
    """
    x, y = make_windows(loads, cfg.window)
    model = LSTMForecaster(cfg.hidden)
    xs, ys = _inputs(fstate, x), _targets(fstate, x, y, cfg)
    if cfg.procedure == "v2":
        n_val = max(int(cfg.val_frac * x.shape[0]), 1)
        n_fit = x.shape[0] - n_val
        steps = max(n_fit // cfg.online_batch_size, 1)
        lr = lr_schedule(cfg.online_lr, steps, cfg.online_epochs, 0, cfg.final_lr_frac)
        params, _, _ = _fit(model, fstate.params, key, xs[:n_fit], ys[:n_fit], lr=lr,
                            epochs=cfg.online_epochs, batch_size=cfg.online_batch_size,
                            x_val=xs[n_fit:], y_val=ys[n_fit:], keep_best=True)
    else:
        params, _, _ = _fit(model, fstate.params, key, xs, ys, lr=cfg.online_lr,
                            epochs=cfg.online_epochs, batch_size=cfg.online_batch_size)
    return fstate.replace(params=params)


@partial(compiled_when_concrete, static_argnames=("cfg",))
def predict(fstate: ForecasterState, windows: jax.Array, cfg: ForecastConfig) -> jax.Array:
    """Next-load forecasts (in load units) for ``f32[..., window]`` inputs.

    v2 adds the predicted change to the last load and clips to the training
    range (every load the model can produce lies in it: the clip 0..2 binds).
    """
    out = LSTMForecaster(cfg.hidden).apply(fstate.params, _inputs(fstate, windows))
    if cfg.procedure == "v2":
        return jnp.clip(windows[..., -1] + out * fstate.delta_scale, fstate.lo, fstate.hi)
    return fstate.lo + out * _span(fstate.lo, fstate.hi)


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
