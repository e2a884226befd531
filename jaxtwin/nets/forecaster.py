"""LSTM load forecaster (spec coevodt §3): LSTM(hidden) over a window of loads -> Dense -> scalar."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform_init(hidden: int):
    """PyTorch's LSTM initialisation (the seed's framework): ``U(-1/sqrt(h), 1/sqrt(h))``.

    Why not flax's default orthogonal recurrent init: it runs LAPACK QR custom
    calls, and on a 2-core CPU two concurrent QR calls inside one XLA program
    can deadlock the intra-op thread pool (seen with jaxlib 0.10.2,
    ``lapack_sgeqrf_ffi`` blocked in ``BlockingCounter::Wait``).
    """
    bound = 1.0 / jnp.sqrt(hidden)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class LSTMForecaster(nn.Module):
    """One-step-ahead forecaster: ``f32[..., window] -> f32[...]``.

    The window of past loads (oldest first) is fed one value per time step to
    an LSTM; a dense layer maps the last hidden state to the next load.
    """

    hidden: int = 32

    @nn.compact
    def __call__(self, window: jnp.ndarray) -> jnp.ndarray:
        batch_shape = window.shape[:-1]
        seq = window.reshape((-1, window.shape[-1], 1))
        init = uniform_init(self.hidden)
        cell = nn.OptimizedLSTMCell(self.hidden, kernel_init=init, recurrent_kernel_init=init, bias_init=init)
        # unrolled: the window is short (8) and each step is tiny, so a rolled scan's
        # per-iteration overhead dominated (pretraining 1.7x faster on a 2-core CPU)
        out = nn.RNN(cell, unroll=window.shape[-1])(seq)
        pred = nn.Dense(1, kernel_init=init, bias_init=init)(out[:, -1, :])
        return pred.reshape(batch_shape)
