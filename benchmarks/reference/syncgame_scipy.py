"""Open-loop Nash of the sync game (spec ``syncgame.md`` §1-2) as a two-point
boundary-value problem for ``scipy.integrate.solve_bvp``, with every derivative
written out by hand (NumPy only; independent of jaxtwin's autodiff).

Unknown vector at each time, ``v = (x, y, lam, P)`` of length ``2M + 2M^2 + M``:
states ``z = (x, y)`` (``2M``), VSP ``i``'s costate ``lam_i = (lx_i, ly_i)`` of
length ``2M`` for every ``i`` (row-major ``(M, 2M)``) and the running discounted
payoffs ``P_i`` (so the payoff comes out of the same collocation). Boundary
conditions: ``z(0) = z0``, ``P(0) = 0``, ``lam(T) = 0``.

Hand derivation (``k_i = (a delta_i + b) D_i / N``, ``g_i = k_i u_i - c_i y_i``,
``S = sum_j g_j``, ``m_i = D_i s u_i - N d y_i``)::

    f_x = u - delta x                 f_y = sigma (g - y S)
    J_i = w1 p_i d N y_i + w2 rho_i e^{delta_i} x_i - w3 (x_i - xbar_i)^2 - w4 m_i^2
    H_i = J_i + lx_i . f_x + ly_i . f_y
    dH_i/dx_j = -lx_ij delta_j + [j=i] (w2 rho_i e^{delta_i} - 2 w3 (x_i - xbar_i))
    dH_i/dy_j = sigma (c_j (ly_i . y) - ly_ij (c_j + S)) + [j=i] (w1 p_i d N + 2 w4 N d m_i)
    dH_i/du_i = -2 w4 D_i s m_i + lx_ii + sigma k_i (ly_ii - ly_i . y)
    dlam_i/dt = r lam_i - dH_i/dz
    u_i* = clip(N d y_i / (D_i s) + (lx_ii + sigma k_i (ly_ii - ly_i . y)) / (2 w4 (D_i s)^2), 0, u_max)

(``H_i`` is quadratic in ``u_i`` with ``d2H_i/du_i^2 = -2 w4 (D_i s)^2 < 0``.)
:func:`bvp_jacobian` is the analytic Jacobian of the right-hand side (the clip's
derivative is taken as 0 outside ``(0, u_max)``), so solve_bvp needs no finite
differences.

Parameters come as a plain :class:`Params` of NumPy arrays (see
:func:`params_from_jaxtwin` to convert a ``jaxtwin.syncgame.params.SyncParams``).
"""
from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import numpy as np
from scipy.integrate import solve_bvp


@dataclasses.dataclass(frozen=True)
class Params:
    """Model constants (spec §1), per-VSP fields of shape ``(M,)``."""

    delta: np.ndarray
    D: np.ndarray
    c: np.ndarray
    p: np.ndarray
    rho: np.ndarray
    xbar: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    w: np.ndarray
    a: float
    b: float
    N: float
    d: float
    s: float
    sigma: float
    r: float
    T: float
    u_max: float

    @property
    def m(self) -> int:
        """Number of VSPs."""
        return self.delta.shape[0]


PER_VSP = ("delta", "D", "c", "p", "rho", "xbar", "x0", "y0")
SCALARS = ("a", "b", "N", "d", "s", "sigma", "r", "T", "u_max")


def default_params(**overrides) -> Params:
    """The spec's 2-VSP defaults (per-VSP values may be given as scalars)."""
    base = dict(delta=(0.1, 0.3), D=10.0, c=0.1, p=1.0, rho=1.0, xbar=50.0, x0=1.0, y0=None,
                w=(1.0, 0.2, 0.05, 0.5), a=1.0, b=0.1, N=100.0, d=0.1, s=0.1, sigma=0.5,
                r=0.05, T=50.0, u_max=40.0)
    base.update(overrides)
    m = len(base["delta"])
    if base["y0"] is None:
        base["y0"] = np.full(m, 1.0 / m)
    vals = {k: np.broadcast_to(np.asarray(base[k], float), (m,)).copy() for k in PER_VSP}
    vals["w"] = np.asarray(base["w"], float)
    vals.update({k: float(base[k]) for k in SCALARS})
    return Params(**vals)


def params_from_jaxtwin(sp) -> Params:
    """Convert one (unbatched) ``jaxtwin.syncgame.params.SyncParams`` to :class:`Params`."""
    vals = {k: np.asarray(getattr(sp, k), float) for k in PER_VSP + ("w",)}
    vals.update({k: float(getattr(sp, k)) for k in SCALARS})
    return Params(**vals)


# ------------------------------------------------------------- layout
def _split(p: Params, v: np.ndarray):
    """``v`` (n, K) -> x (M,K), y (M,K), lx (M,M,K), ly (M,M,K), P (M,K)."""
    m = p.m
    x, y = v[:m], v[m:2 * m]
    lam = v[2 * m:2 * m + 2 * m * m].reshape(m, 2 * m, -1)
    return x, y, lam[:, :m], lam[:, m:], v[2 * m + 2 * m * m:]


def n_unknowns(m: int) -> int:
    """Length of the BVP vector for ``m`` VSPs."""
    return 2 * m + 2 * m * m + m


# ------------------------------------------------------------- model
def _k(p: Params) -> np.ndarray:
    return (p.a * p.delta + p.b) * p.D / p.N


def free_controls(p: Params, y, lx, ly) -> np.ndarray:
    """Unclipped maximisers ``u_i*`` (``(M, K)``); ``lx, ly``: ``(M, M, K)``."""
    m, ds = p.m, p.D * p.s
    diag_lx = lx[np.arange(m), np.arange(m)]
    diag_ly = ly[np.arange(m), np.arange(m)]
    ly_dot_y = np.einsum("ijk,jk->ik", ly, y)
    grad = diag_lx + p.sigma * _k(p)[:, None] * (diag_ly - ly_dot_y)
    return (p.N * p.d * y / ds[:, None]) + grad / (2 * p.w[3] * ds[:, None] ** 2)


def maximiser(p: Params, y: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``argmax_{u_i in [0,u_max]} H_i`` (``(M, K)``) for shares ``y`` ``(M, K)`` and
    costates ``lam`` ``(M, 2M, K)`` (it does not depend on ``x`` or the others' ``u``)."""
    return np.clip(free_controls(p, y, lam[:, :p.m], lam[:, p.m:]), 0.0, p.u_max)


def controls(p: Params, v: np.ndarray) -> np.ndarray:
    """Clipped maximisers along a BVP vector ``v`` (``(n, K)`` -> ``(M, K)``)."""
    _, y, lx, ly, _ = _split(p, v)
    return np.clip(free_controls(p, y, lx, ly), 0.0, p.u_max)


def instantaneous_payoff(p: Params, x, y, u) -> np.ndarray:
    """``J_i`` (``(M, K)``)."""
    w1, w2, w3, w4 = p.w
    col = lambda a: a[:, None]  # noqa: E731
    mis = col(p.D) * p.s * u - p.N * p.d * y
    return (w1 * col(p.p) * p.d * p.N * y + w2 * col(p.rho * np.exp(p.delta)) * x
            - w3 * (x - col(p.xbar)) ** 2 - w4 * mis ** 2)


def state_rhs(p: Params, x, y, u) -> np.ndarray:
    """``dz/dt = (u - delta x, sigma (g - y S))`` (``(2M, K)``)."""
    col = lambda a: a[:, None]  # noqa: E731
    g = col(_k(p)) * u - col(p.c) * y
    return np.concatenate([u - col(p.delta) * x, p.sigma * (g - y * g.sum(0))])


def costate_rhs(p: Params, x, y, lam, u) -> np.ndarray:
    """``dlam_i/dt = r lam_i - dH_i/dz`` (``lam``: ``(M, 2M, K)``; any ``u``)."""
    m = p.m
    lx, ly = lam[:, :m], lam[:, m:]
    col = lambda a: a[:, None]  # noqa: E731
    S = (col(_k(p)) * u - col(p.c) * y).sum(0)
    w1, w2, w3, w4 = p.w
    mis = col(p.D) * p.s * u - p.N * p.d * y
    # dH_i/dx_j and dH_i/dy_j, shape (M_i, M_j, K)
    dHdx = -lx * p.delta[None, :, None]
    dHdy = p.sigma * (p.c[None, :, None] * np.einsum("ijk,jk->ik", ly, y)[:, None, :]
                      - ly * (p.c[None, :, None] + S[None, None, :]))
    ii = np.arange(m)
    dHdx[ii, ii] += w2 * col(p.rho * np.exp(p.delta)) - 2 * w3 * (x - col(p.xbar))
    dHdy[ii, ii] += w1 * col(p.p) * p.d * p.N + 2 * w4 * p.N * p.d * mis
    return p.r * lam - np.concatenate([dHdx, dHdy], axis=1)


def bvp_rhs(t: np.ndarray, v: np.ndarray, p: Params) -> np.ndarray:
    """``dv/dt`` for solve_bvp: ``v`` has shape ``(n, K)``."""
    m = p.m
    x, y, _, _, _ = _split(p, v)
    lam = v[2 * m:2 * m + 2 * m * m].reshape(m, 2 * m, -1)
    u = maximiser(p, y, lam)
    dP = np.exp(-p.r * t)[None, :] * instantaneous_payoff(p, x, y, u)
    return np.concatenate([state_rhs(p, x, y, u), costate_rhs(p, x, y, lam, u).reshape(2 * m * m, -1), dP])


def bvp_jacobian(t: np.ndarray, v: np.ndarray, p: Params) -> np.ndarray:
    """Analytic ``d(bvp_rhs)/dv``, shape ``(n, n, K)`` (solve_bvp's ``fun_jac``)."""
    m = p.m
    n, K = v.shape
    x, y, lx, ly, _ = _split(p, v)
    uf = free_controls(p, y, lx, ly)
    u = np.clip(uf, 0.0, p.u_max)
    active = ((uf > 0.0) & (uf < p.u_max)).astype(float)     # (M, K): d clip / d uf
    k = _k(p)
    ds = p.D * p.s
    w1, w2, w3, w4 = p.w
    ix = lambda j: j                       # noqa: E731  index of x_j in v
    iy = lambda j: m + j                   # noqa: E731
    ilx = lambda i, j: 2 * m + i * 2 * m + j        # noqa: E731
    ily = lambda i, j: 2 * m + i * 2 * m + m + j    # noqa: E731
    iP = lambda i: 2 * m + 2 * m * m + i            # noqa: E731

    # du_i/dv (M, n, K)
    du = np.zeros((m, n, K))
    coef = 1.0 / (2 * w4 * ds ** 2)
    for i in range(m):
        du[i, iy(i)] += p.N * p.d / ds[i]
        du[i, ilx(i, i)] += coef[i]
        du[i, ily(i, i)] += coef[i] * p.sigma * k[i]
        for j in range(m):
            du[i, ily(i, j)] -= coef[i] * p.sigma * k[i] * y[j]
            du[i, iy(j)] -= coef[i] * p.sigma * k[i] * ly[i, j]
        du[i] *= active[i]

    g = k[:, None] * u - p.c[:, None] * y
    S = g.sum(0)
    # dg_j/dv and dS/dv
    dg = k[:, None, None] * du
    for j in range(m):
        dg[j, iy(j)] -= p.c[j]
    dS = dg.sum(0)

    jac = np.zeros((n, n, K))
    for j in range(m):
        jac[ix(j)] = du[j]
        jac[ix(j), ix(j)] -= p.delta[j]
        # f_y_j = sigma (g_j - y_j S)
        jac[iy(j)] = p.sigma * (dg[j] - y[j] * dS)
        jac[iy(j), iy(j)] -= p.sigma * S
    mis = p.D[:, None] * p.s * u - p.N * p.d * y
    dmis = p.D[:, None, None] * p.s * du
    for i in range(m):
        dmis[i, iy(i)] -= p.N * p.d
    for i in range(m):
        for j in range(m):
            # dlx_ij/dt = r lx_ij - dH_i/dx_j = r lx_ij + lx_ij delta_j - [i=j](w2 rho e^d - 2 w3 (x_i - xbar_i))
            row = jac[ilx(i, j)]
            row[ilx(i, j)] += p.r + p.delta[j]
            if i == j:
                row[ix(i)] += 2 * w3
            # dly_ij/dt = r ly_ij - sigma (c_j lyy_i - ly_ij (c_j + S)) - [i=j](w1 p d N + 2 w4 N d mis_i)
            row = jac[ily(i, j)]
            row[ily(i, j)] += p.r
            # - sigma c_j d(lyy_i) ; lyy_i = sum_l ly_il y_l
            for l_ in range(m):
                row[ily(i, l_)] -= p.sigma * p.c[j] * y[l_]
                row[iy(l_)] -= p.sigma * p.c[j] * ly[i, l_]
            row[ily(i, j)] += p.sigma * (p.c[j] + S)
            row += p.sigma * ly[i, j] * dS
            if i == j:
                row -= 2 * w4 * p.N * p.d * dmis[i]
    # dP_i/dt = e^{-rt} J_i
    disc = np.exp(-p.r * t)
    for i in range(m):
        dJ = -2 * w4 * mis[i] * dmis[i]
        dJ[ix(i)] += w2 * p.rho[i] * np.exp(p.delta[i]) - 2 * w3 * (x[i] - p.xbar[i])
        dJ[iy(i)] += w1 * p.p[i] * p.d * p.N
        jac[iP(i)] = disc * dJ
    return jac


def bvp_bc(va: np.ndarray, vb: np.ndarray, p: Params) -> np.ndarray:
    """Residuals of ``z(0) = z0``, ``P(0) = 0``, ``lam(T) = 0``."""
    m = p.m
    return np.concatenate([va[:m] - p.x0, va[m:2 * m] - p.y0, va[2 * m + 2 * m * m:],
                           vb[2 * m:2 * m + 2 * m * m]])


def bvp_bc_jacobian(va: np.ndarray, vb: np.ndarray, p: Params):
    """``(d bc / d va, d bc / d vb)``."""
    m, n = p.m, va.shape[0]
    ja, jb = np.zeros((n, n)), np.zeros((n, n))
    rows = 0
    for idx in list(range(2 * m)) + list(range(2 * m + 2 * m * m, n)):
        ja[rows, idx] = 1.0
        rows += 1
    for idx in range(2 * m, 2 * m + 2 * m * m):
        jb[rows, idx] = 1.0
        rows += 1
    return ja, jb


def initial_guess(p: Params, mesh: np.ndarray) -> np.ndarray:
    """States relaxing from ``z0`` toward the desired DT values; zero costates."""
    m = p.m
    v = np.zeros((n_unknowns(m), mesh.size))
    ramp = 1.0 - np.exp(-mesh / 10.0)
    v[:m] = p.x0[:, None] + (0.8 * p.xbar - p.x0)[:, None] * ramp[None, :]
    v[m:2 * m] = p.y0[:, None]
    return v


class BVPSolution(NamedTuple):
    """A solve_bvp run, plus diagnostics."""

    result: object            # scipy's result (``.sol`` is the C1 cubic interpolant)
    params: Params
    seconds: float

    @property
    def success(self) -> bool:
        return bool(self.result.success)

    @property
    def max_rms_residual(self) -> float:
        """solve_bvp's own measure: max over mesh intervals of the relative RMS collocation residual."""
        return float(np.max(self.result.rms_residuals))

    def sample(self, ts: np.ndarray):
        """``(states (K, 2M), controls (K, M), costates (K, M, 2M))`` at times ``ts``."""
        m = self.params.m
        v = self.result.sol(ts)
        lam = v[2 * m:2 * m + 2 * m * m].reshape(m, 2 * m, -1)
        return v[:2 * m].T, controls(self.params, v).T, np.moveaxis(lam, -1, 0)

    @property
    def payoffs(self) -> np.ndarray:
        """Discounted payoffs ``P_i(T)``."""
        m = self.params.m
        return self.result.y[2 * m + 2 * m * m:, -1].copy()


def solve_nash_bvp(p: Params, *, tol: float = 1e-6, n_mesh: int = 51, max_nodes: int = 20000,
                   analytic_jacobian: bool = True, guess: tuple[np.ndarray, np.ndarray] | None = None) -> BVPSolution:
    """Open-loop Nash paths by ``scipy.integrate.solve_bvp`` (4th-order collocation).

    ``tol`` is solve_bvp's relative collocation-residual tolerance (it also sets
    ``bc_tol``). ``guess = (mesh, values)`` warm-starts it (e.g. a neighbour's solution).
    """
    if guess is None:
        mesh = np.linspace(0.0, p.T, n_mesh)
        y0 = initial_guess(p, mesh)
    else:
        mesh, y0 = guess
    kw = {}
    if analytic_jacobian:
        kw = dict(fun_jac=lambda t, v: bvp_jacobian(t, v, p), bc_jac=lambda a, b: bvp_bc_jacobian(a, b, p))
    t0 = time.perf_counter()
    res = solve_bvp(lambda t, v: bvp_rhs(t, v, p), lambda a, b: bvp_bc(a, b, p), mesh, y0,
                    tol=tol, bc_tol=tol, max_nodes=max_nodes, **kw)
    return BVPSolution(res, p, time.perf_counter() - t0)
