"""LSTM load forecaster (spec coevodt §3): LSTM(hidden) over a window of loads -> Dense -> scalar."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


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
        out = nn.RNN(nn.OptimizedLSTMCell(self.hidden))(seq)
        pred = nn.Dense(1)(out[:, -1, :])
        return pred.reshape(batch_shape)
