"""CIVIC model formulas vs hand computations (NumPy, float64, independent code path)."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.civic import model as cm

ROWS = cm.room_table_rows()
C = cm.ModelConstants()
TYPES = {"Library": 0, "Arena": 1, "Gallery": 2}


def row(name):
    i = TYPES[name]
    return {k: v[i] for k, v in ROWS.items()}


def room(name):
    return cm.rooms_for_heads(cm.default_room_table(), jnp.asarray(TYPES[name]))


def hand_q(B, r):
    s = max(0.65, 1 - (0.368 + 1.23e-3 * r["omega"]) * B ** (-(0.85 + 1.23e-3 * r["omega"])))
    v = min(100.0, 36.13 - 1.66e-2 * r["omega"] + 11.62 * B - 6.07e-3 * r["omega"] * B)
    return s, v, r["w_sigma"] * s + r["w_eta"] * v / 100


def hand_a(e, b, t=1.0):
    return 3 / (1 / e + 1 / b + 1 / t)


def hand_immersion(B, f, beta, eps, r):
    q = (hand_q(B, r)[2] - hand_q(r["B_min"], r)[2]) / (hand_q(r["B_max"], r)[2] - hand_q(r["B_min"], r)[2])
    fh = (f - r["f_min"]) / (r["f_max"] - r["f_min"])
    a_lo, a_hi = hand_a(r["eps_min"], r["beta_min"]), hand_a(r["eps_max"], r["beta_max"])
    a = (hand_a(eps, beta) - a_lo) / (a_hi - a_lo)
    return (0.33 * q + 0.33 * fh + 0.33 * a) / 0.99


def hand_cost(B, f, beta, Cl, r):
    comp = (r["P_v"] / 1e5 + r["O_v"] / 100 + r["A_v"] / 10) + (r["N_d"] / 100 + r["SV_d"] / 100 + r["U_d"] / 10)
    net = B + 0.1 * r["B_min"] * beta
    dens = 1 - r["iota"] * (1 - (Cl / r["V_max"]) ** r["Lambda"])
    s_c = (f / r["f_min"]) ** r["kappa_comp"] * Cl ** r["theta_comp"] * dens
    s_n = (f / r["f_min"]) ** r["kappa_net"] * Cl ** r["theta_net"] * dens
    return 0.01 * comp * s_c + 0.01 * net * s_n


CASES = [("Library", 22.0, 45.0, 0.7, 0.8, 4.0), ("Arena", 41.0, 97.0, 0.85, 0.6, 37.0),
         ("Gallery", 33.0, 31.0, 0.45, 0.95, 9.0)]


@pytest.mark.parametrize("name,B,f,beta,eps,Cl", CASES)
def test_ssim_vmaf_q(name, B, f, beta, eps, Cl):
    r, rr = row(name), room(name)
    s, v, q = hand_q(B, r)
    np.testing.assert_allclose(cm.ssim(B, rr.omega, C), s, rtol=1e-5)
    np.testing.assert_allclose(cm.vmaf(B, rr.omega, C), v, rtol=1e-5)
    np.testing.assert_allclose(cm.qope(B, rr, C), q, rtol=1e-5)


@pytest.mark.parametrize("name,B,f,beta,eps,Cl", CASES)
def test_normalised_terms_and_immersion(name, B, f, beta, eps, Cl):
    r, rr = row(name), room(name)
    np.testing.assert_allclose(cm.qope_normalised(r["B_min"], rr, C), 0.0, atol=1e-6)
    np.testing.assert_allclose(cm.qope_normalised(r["B_max"], rr, C), 1.0, atol=1e-6)
    np.testing.assert_allclose(cm.frame_rate_normalised(f, rr), (f - r["f_min"]) / (r["f_max"] - r["f_min"]), rtol=1e-6)
    np.testing.assert_allclose(cm.dt_accuracy(eps, beta, 1.0), hand_a(eps, beta), rtol=1e-6)
    # float32: Q^ divides differences of Q values near 1, so allow float32 cancellation (~1e-5 abs)
    np.testing.assert_allclose(cm.immersion(B, f, beta, eps, rr, C), hand_immersion(B, f, beta, eps, r), atol=5e-5)
    # all maxima with eps_max gives exactly 1, all minima with eps_min exactly 0
    np.testing.assert_allclose(cm.immersion(r["B_max"], r["f_max"], r["beta_max"], r["eps_max"], rr, C), 1.0, atol=1e-6)
    np.testing.assert_allclose(cm.immersion(r["B_min"], r["f_min"], r["beta_min"], r["eps_min"], rr, C), 0.0, atol=1e-6)


@pytest.mark.parametrize("name,B,f,beta,eps,Cl", CASES)
def test_resource_scale_and_cost(name, B, f, beta, eps, Cl):
    r, rr = row(name), room(name)
    want = (f / r["f_min"]) ** 1.1 * Cl ** r["theta_comp"] * (1 - r["iota"] * (1 - (Cl / r["V_max"]) ** r["Lambda"]))
    got = cm.resource_scale(f, Cl, rr.f_min, rr.kappa_comp, rr.theta_comp, rr.iota, rr.Lambda, rr.V_max)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(cm.head_cost(B, f, beta, Cl, rr, C), hand_cost(B, f, beta, Cl, r), rtol=1e-5)


def test_library_cost_by_hand_numbers():
    # Library, B=20, f=30, beta=0.5, C=10 (full room): scale = 10^theta, comp base 3+1=4
    got = float(cm.head_cost(20.0, 30.0, 0.5, 10.0, room("Library"), C))
    want = 0.01 * 4.0 * 10 ** 0.7 + 0.01 * (20 + 0.1 * 20 * 0.5) * 10 ** 0.9
    assert math.isclose(got, want, rel_tol=1e-5)


def test_dt_accuracy_zero_and_degenerate_range():
    assert float(cm.dt_accuracy(0.0, 0.7, 1.0)) == 0.0
    assert float(cm.dt_accuracy(0.7, 0.0, 1.0)) == 0.0
    table = cm.default_room_table().replace(B_max=cm.default_room_table().B_min)
    rr = cm.rooms_for_heads(table, jnp.asarray(0))
    assert float(cm.qope_normalised(20.0, rr, C)) == 1.0


def test_efficiency_score_pieces():
    thr = 0.8
    np.testing.assert_allclose(cm.efficiency_score(jnp.asarray([0.79, 0.8, 0.88, 0.9, 1.2]), thr),
                               [-1.0, 1.5, 1.5, 0.5 - 0.1 / 0.8, 0.5 - 0.3], rtol=1e-6)


def test_head_types_cycle_and_grid_sizes():
    assert cm.head_types(11).tolist() == [0, 1, 2, 0, 2, 1, 2, 0, 0, 0, 1]
    assert cm.grid_sizes(cm.default_room_table()) == (21, 61, 15)
    assert cm.beta_levels(cm.default_room_table()).tolist() == [11, 11, 15]
