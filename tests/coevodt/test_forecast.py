"""Forecaster: windows, baselines vs hand values, LSTM learning, feature rules, config errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.coevodt.forecast import (
    FORECASTERS, ForecastConfig, ForecasterState, exp_smoothing_forecast, finetune, fit_ar1,
    forecast_feature, make_windows, pretrain, push_load, split_sizes,
)

SMALL = ForecastConfig(window=4, hidden=8, epochs=30, batch_size=32, lr=1e-2)


def test_make_windows_matches_hand_slices():
    loads = jnp.arange(12.0).reshape(2, 6)
    x, y = make_windows(loads, 4)
    np.testing.assert_array_equal(x, [[0, 1, 2, 3], [1, 2, 3, 4], [6, 7, 8, 9], [7, 8, 9, 10]])
    np.testing.assert_array_equal(y, [4, 5, 10, 11])
    with pytest.raises(ConfigError, match="episode length 6 must exceed window 6"):
        make_windows(loads, 6)
    with pytest.raises(ConfigError, match="too few sequences"):
        split_sizes(3, SMALL)


def test_spec_sizes_give_6720_sequences_and_70_15_15_split():
    x, _ = make_windows(jnp.zeros((160, 50)), 8)
    assert x.shape == (6720, 8)
    assert split_sizes(6720, ForecastConfig()) == (4704, 1008, 1008)


def test_exp_smoothing_matches_recursion_by_hand():
    x = jnp.array([[1.0, 3.0, 2.0]])
    # level: 1 -> 0.5*3+0.5*1 = 2 -> 0.5*2+0.5*2 = 2 ; alpha 0.25: 1 -> 1.5 -> 1.625
    np.testing.assert_allclose(exp_smoothing_forecast(x, 0.5), [2.0])
    np.testing.assert_allclose(exp_smoothing_forecast(x, 0.25), [1.625])


def test_ar1_recovers_linear_relation():
    xl = jnp.linspace(0, 1, 50)
    np.testing.assert_allclose(fit_ar1(xl, 0.3 + 0.6 * xl), [0.3, 0.6], atol=1e-5)


def test_ar1_matches_numpy_least_squares_on_noisy_clipped_loads():
    rng = np.random.default_rng(0)
    x = np.minimum(rng.uniform(1.2, 2.4, 4000), 2.0)   # mostly at the clip, like the loads
    y = np.minimum(0.4 + 0.8 * x + 0.1 * rng.standard_normal(4000), 2.0)
    want = np.linalg.lstsq(np.stack([np.ones_like(x), x], 1), y, rcond=None)[0]
    np.testing.assert_allclose(fit_ar1(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)), want,
                               rtol=1e-4, atol=1e-5)


def test_ar1_constant_input_predicts_the_mean():
    b0, b1 = np.asarray(fit_ar1(jnp.full(10, 2.0), jnp.arange(10.0)))
    assert (b0, b1) == (4.5, 0.0)


def _ar_series(key, n_ep=60, horizon=30):
    """A forecastable AR(2)-like oscillation with small noise."""
    phase = jax.random.uniform(key, (n_ep, 1), maxval=2 * jnp.pi)
    t = jnp.arange(horizon)[None, :]
    noise = 0.01 * jax.random.normal(jax.random.fold_in(key, 1), (n_ep, horizon))
    return 1.0 + 0.5 * jnp.sin(0.7 * t + phase) + noise


def test_lstm_beats_all_baselines_on_forecastable_series():
    loads = _ar_series(jax.random.key(0))
    state, report = jax.jit(pretrain, static_argnames="cfg")(jax.random.key(1), loads, SMALL)
    rmse = dict(zip(FORECASTERS, np.asarray(report["rmse"])))
    assert rmse["lstm"] < rmse["naive"], rmse
    assert rmse["lstm"] < rmse["ar1"], rmse
    assert rmse["lstm"] < rmse["exp_smoothing"], rmse
    assert report["train_loss"][-1] < report["train_loss"][0]
    assert report["test_pred"].shape[1] == len(FORECASTERS)
    assert np.isnan(rmse["oracle"])  # no states given: no oracle
    assert float(state.lo) == pytest.approx(float(loads[:, :].min()), abs=0.2)


def test_finetune_reduces_error_on_its_data_and_keeps_range():
    loads = _ar_series(jax.random.key(2), n_ep=40)
    cfg = SMALL
    state, _ = pretrain(jax.random.key(3), loads, ForecastConfig(window=4, hidden=8, epochs=1, batch_size=32))
    x, y = make_windows(loads[:10], cfg.window)
    from jaxtwin.coevodt.forecast import predict
    before = float(jnp.mean((predict(state, x, cfg) - y) ** 2))
    tuned = finetune(state, jax.random.key(4), loads[:10],
                     ForecastConfig(window=4, hidden=8, online_lr=1e-2, online_epochs=20, online_batch_size=32))
    after = float(jnp.mean((predict(tuned, x, cfg) - y) ** 2))
    assert after < before
    assert tuned.lo == state.lo and tuned.hi == state.hi


def test_forecast_feature_uses_last_load_before_window_and_is_bounded():
    cfg = ForecastConfig(window=4, hidden=8)
    from jaxtwin.nets.forecaster import LSTMForecaster
    params = LSTMForecaster(8).init(jax.random.key(0), jnp.zeros((1, 4)))
    state = ForecasterState(params=params, lo=jnp.float32(0.5), hi=jnp.float32(1.5), delta_scale=jnp.float32(0.1))
    buf = jnp.zeros(4)
    buf = push_load(buf, 0.75)
    np.testing.assert_allclose(buf, [0, 0, 0, 0.75])
    assert float(forecast_feature(state, buf, jnp.int32(1), cfg)) == pytest.approx(0.25)
    big = jnp.full(4, 100.0)
    feat = forecast_feature(state, big, jnp.int32(3), cfg)
    assert float(feat) == 1.0  # clipped
    full = forecast_feature(state, jnp.array([0.6, 0.7, 0.8, 0.9]), jnp.int32(4), cfg)
    assert 0.0 <= float(full) <= 1.0


@pytest.mark.parametrize("field,value", [("window", 0), ("lr", -1.0), ("train_frac", 0.9),
                                         ("exp_alpha", 0.0), ("batch_size", 2.5)])
def test_bad_config_names_field(field, value):
    with pytest.raises(ConfigError, match=f"ForecastConfig.{field}"):
        ForecastConfig(**{field: value})
