"""CIVIC baselines: Myopic-Optimal vs brute force (also on a non-default room table), policy outputs."""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.civic import model as cm
from jaxtwin.civic.env import CivicEnv
from jaxtwin.civic.baselines import BASELINE_NAMES, make_baseline
from jaxtwin.civic.evaluate import make_evaluator


def _np_immersion_cost(B, f, beta, eps, Cl, r):
    """Immersion and cost by the spec's formulas (NumPy; scalars or broadcasting arrays)."""
    def q(b):
        s = np.maximum(0.65, 1 - (0.368 + 1.23e-3 * r["omega"]) * b ** (-(0.85 + 1.23e-3 * r["omega"])))
        v = np.minimum(100.0, 36.13 - 1.66e-2 * r["omega"] + 11.62 * b - 6.07e-3 * r["omega"] * b)
        return r["w_sigma"] * s + r["w_eta"] * v / 100
    acc = lambda e, b: 3 / (1 / e + 1 / b + 1)  # noqa: E731
    qn = (q(B) - q(r["B_min"])) / (q(r["B_max"]) - q(r["B_min"]))
    fn = (f - r["f_min"]) / (r["f_max"] - r["f_min"])
    an = (acc(eps, beta) - acc(r["eps_min"], r["beta_min"])) / (acc(r["eps_max"], r["beta_max"]) - acc(r["eps_min"], r["beta_min"]))
    I = (qn + fn + an) / 3
    comp = r["P_v"] / 1e5 + r["O_v"] / 100 + r["A_v"] / 10 + r["N_d"] / 100 + r["SV_d"] / 100 + r["U_d"] / 10
    dens = 1 - r["iota"] * (1 - (Cl / r["V_max"]) ** r["Lambda"])
    cost = 0.01 * comp * (f / r["f_min"]) ** r["kappa_comp"] * Cl ** r["theta_comp"] * dens \
        + 0.01 * (B + 0.1 * r["B_min"] * beta) * (f / r["f_min"]) ** r["kappa_net"] * Cl ** r["theta_net"] * dens
    return I, cost


SMALL = {"B_max": (24.0, 36.0, 29.0), "f_max": (37.0, 66.0, 36.0), "beta_max": (0.75, 0.8, 0.6)}


@pytest.mark.parametrize("threshold", [0.45, 0.6, 0.99])
def test_myopic_optimal_is_cheapest_feasible_by_brute_force(threshold):
    rows = cm.room_table_rows()
    rows.update(SMALL)
    table = cm.RoomTable(**{k: jnp.asarray(v, jnp.float32) for k, v in rows.items()})
    sizes = cm.grid_sizes(table)
    rooms = cm.rooms_for_heads(table, jnp.asarray([0, 1, 2, 0]))
    eps = jnp.asarray([0.7, 0.9, 0.85, 1.0])
    clients = jnp.asarray([3, 60, 9, 10])
    out = jax.jit(lambda r, e, c: cm.myopic_optimal(r, e, c, threshold, cm.ModelConstants(), sizes))(
        rooms, eps, clients)
    B, f, k, beta, I, cost, feasible = (np.asarray(x) for x in out)
    for h, t in enumerate([0, 1, 2, 0]):
        r = {name: v[t] for name, v in rows.items()}
        best = None  # brute force: (cost, I, alloc) over every admissible grid point
        points = []
        for b, ff, kk in itertools.product(range(int(r["B_min"]), int(r["B_max"]) + 1),
                                           range(int(r["f_min"]), int(r["f_max"]) + 1),
                                           range(int(round((r["beta_max"] - r["beta_min"]) / 0.05)) + 1)):
            Ih, ch = _np_immersion_cost(b, ff, r["beta_min"] + 0.05 * kk, float(eps[h]), float(clients[h]), r)
            points.append((Ih, ch, (b, ff, kk)))
        ok = [p for p in points if p[0] >= threshold]
        if ok:
            best = min(ok, key=lambda p: p[1])
            assert feasible[h]
            assert I[h] >= threshold
            np.testing.assert_allclose(cost[h], best[1], rtol=1e-5)
        else:
            best_I = max(p[0] for p in points)
            assert not feasible[h]
            np.testing.assert_allclose(I[h], best_I, atol=1e-5)
        np.testing.assert_allclose(beta[h], r["beta_min"] + 0.05 * k[h], atol=1e-6)
    assert not feasible.all() if threshold == 0.99 else feasible.all()


ENV = CivicEnv(n_msps=2, heads_per_msp=2, horizon=8, cooperative=True)
PARAMS = ENV.default_params


def test_baselines_emit_admissible_actions():
    obs, state = jax.jit(ENV.reset_env)(jax.random.PRNGKey(0), PARAMS)
    decode = jax.jit(ENV.decode_action)
    for name in BASELINE_NAMES:
        a = jax.jit(make_baseline(name, ENV))(jax.random.PRNGKey(1), obs, state, PARAMS)
        assert a.shape == (ENV.action_size,)
        assert bool(jnp.all((a >= -1) & (a <= 1)))
        al = decode(a, PARAMS)
        r = ENV.rooms(PARAMS)
        if name in ("Saving",):
            assert al.B.tolist() == r.B_min.tolist() and al.f.tolist() == r.f_min.tolist()
        if name in ("Max", "Max-GCP"):
            assert al.B.tolist() == r.B_max.tolist() and al.f.tolist() == r.f_max.tolist()
        np.testing.assert_allclose(al.delta, 1.0 if name.endswith("GCP") else 0.0)
    with pytest.raises(ConfigError, match="unknown policy"):
        make_baseline("Greedy", ENV)
    with pytest.raises(ConfigError, match="cooperative"):
        make_baseline("Max-GCP", CivicEnv(2, 1, 5, cooperative=False))


# Arena (type 1) with far wider B and f ranges than the default table (B 30..50, f 60..120):
# its grid needs 51 x 91 points where the default table's needs 21 x 61.
WIDE_ROWS = {**cm.room_table_rows(), "B_max": (25.0, 80.0, 35.0), "f_max": (60.0, 150.0, 60.0)}
WIDE = cm.RoomTable(**{k: jnp.asarray(v, jnp.float32) for k, v in WIDE_ROWS.items()})
WIDE_ENV = CivicEnv(n_msps=3, heads_per_msp=1, horizon=4, cooperative=False)   # Heads: Lib, Arena, Gal
WIDE_PARAMS = WIDE_ENV.default_params.replace(room_table=WIDE, threshold=0.8)


@functools.lru_cache(maxsize=None)
def _wide_reset():
    return jax.jit(WIDE_ENV.reset_env)(jax.random.PRNGKey(2), WIDE_PARAMS)


def _brute_force(r, eps, clients, threshold):
    """Cheapest (B, f, beta) with I >= threshold over the whole admissible grid, else the best I."""
    B, f, k = np.meshgrid(np.arange(r["B_min"], r["B_max"] + 1), np.arange(r["f_min"], r["f_max"] + 1),
                          np.arange(int(round((r["beta_max"] - r["beta_min"]) / 0.05)) + 1), indexing="ij")
    I, cost = _np_immersion_cost(B, f, r["beta_min"] + 0.05 * k, eps, clients, r)
    ok = I >= threshold
    i = np.argmin(np.where(ok, cost, np.inf)) if ok.any() else np.argmax(I)
    return B.flat[i], f.flat[i], k.flat[i], cost.flat[i]


def test_myopic_grid_is_sized_from_the_params_room_table():
    env, params = WIDE_ENV, WIDE_PARAMS
    assert cm.grid_sizes(WIDE) == (51, 91, 15) != cm.grid_sizes(cm.default_room_table())
    obs, state = _wide_reset()
    action = jax.jit(make_baseline("Myopic-Optimal", env, params))(jax.random.PRNGKey(0), obs, state, params)
    al = env.decode_action(action, params)
    for h, t in enumerate(np.asarray(env.types)):
        r = {name: v[t] for name, v in WIDE_ROWS.items()}
        B, f, k, cost = _brute_force(r, float(state.eps[h]), float(state.clients[h]), 0.8)
        assert (float(al.B[h]), float(al.f[h]), int(al.beta_index[h])) == (B, f, k), h
        if t == 1:
            # the Arena optimum lies beyond what a grid sized for the default table reaches
            assert B > r["B_min"] + 20 or f > r["f_min"] + 60


def test_myopic_refuses_a_wider_table_than_it_was_sized_for():
    env, params = WIDE_ENV, WIDE_PARAMS
    narrow = make_baseline("Myopic-Optimal", env)                 # sized for the default table
    obs, state = _wide_reset()
    with pytest.raises(ConfigError, match=r"RoomTable\.B_max=.*51 grid points.*sized for 21"):
        narrow(jax.random.PRNGKey(0), obs, state, params)
    with pytest.raises(ConfigError, match=r"RoomTable\.B_max"):
        make_evaluator(env, [make_baseline("Saving", env), narrow])(jax.random.split(jax.random.PRNGKey(0), 2), params)
    # a narrower table than the grid is fine (the extra points are masked)
    wide_policy = make_baseline("Myopic-Optimal", env, params)
    wide_policy.validate(env.default_params)


def test_myopic_gcp_is_myopic_optimal_allocation_plus_the_pool_rule():
    """Spec v2: the same (B, f, beta) as Myopic-Optimal; every step all surplus goes to the pool
    (delta = 1), so after one step from reset the budgets are empty and the pool holds
    everything not spent, while Myopic-Optimal keeps its surplus and leaves the pool empty."""
    obs, state = jax.jit(ENV.reset_env)(jax.random.PRNGKey(0), PARAMS)
    step = jax.jit(ENV.step_env)
    after = {}
    for name in ("Myopic-Optimal", "Myopic-GCP"):
        action = jax.jit(make_baseline(name, ENV))(jax.random.PRNGKey(1), obs, state, PARAMS)
        after[name] = (ENV.decode_action(action, PARAMS), step(jax.random.PRNGKey(2), state, action, PARAMS)[1])
    (mo, s_mo), (mg, s_mg) = after["Myopic-Optimal"], after["Myopic-GCP"]
    for field in ("B", "f", "beta"):
        np.testing.assert_array_equal(getattr(mo, field), getattr(mg, field))
    np.testing.assert_array_equal(mo.delta, 0.0)
    np.testing.assert_array_equal(mg.delta, 1.0)
    assert int(s_mo.spent) == int(s_mg.spent) > 0                      # the same Heads served at the same cost
    total = int(np.sum(np.asarray(state.initial_budget, np.int64)))
    assert int(s_mo.gcp) == 0 and int(np.sum(s_mo.budget)) == total - int(s_mo.spent)
    assert np.all(np.asarray(s_mg.budget) == 0) and int(s_mg.gcp) == total - int(s_mg.spent)
