"""Every batched dense solve of the sync-game solvers goes through the deadlock guard
``jaxtwin.core.linalg.solve``: on a CPU split into devices the vmapped solvers contain
no batched LAPACK call (which jaxlib 0.10 would spread over the thread pool the
devices' programs run on), except lineax GMRES's Hessenberg QR, which the guard's
docstring names as not covered. Checked on the lowered programs (no compilation)."""
import os
import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import re, jax, jax.numpy as jnp
    import jaxtwin.core.linalg as L
    from jaxtwin.syncgame.collocation import CollocationOptions, solve_nash_collocation
    from jaxtwin.syncgame.nash import solve_nash
    from jaxtwin.syncgame.params import as_float64, default_params, stack_params
    from jaxtwin.syncgame.pmp import SolverOptions
    from jaxtwin.syncgame.static import static_nash
    assert jax.local_device_count() == 2 and L._split_cpu()
    jax.config.update("jax_enable_x64", True)
    p2 = as_float64(stack_params([default_params(T=10.0)] * 4))
    p4 = as_float64(stack_params([default_params(4, T=10.0)] * 4))

    def batched_lapack(fn, params):
        text = jax.jit(jax.vmap(fn)).lower(params).as_text()
        calls = [(re.search(r"@(lapack_\\w+)", line).group(1),   # first operand type of the signature
                  re.search(r"tensor<[^>]*>", line.rsplit(" : (", 1)[1]).group(0))
                 for line in text.splitlines() if "custom_call @lapack_" in line]
        assert calls, "no LAPACK call found: the lowering changed form"
        return sorted({name for name, ty in calls if ty.count("x") >= 3})   # rank >= 3: a batch of matrices

    cases = {
        "collocation": (lambda p: solve_nash_collocation(p, CollocationOptions(n_grid=6, coarse_grid=4)), p4),
        "sweep_dense": (lambda p: solve_nash(p, SolverOptions(n_grid=5, max_iter=2)), p2),
        "static": (lambda p: static_nash(p, n_grid=5), p2),
        "sweep_gmres": (lambda p: solve_nash(p, SolverOptions(n_grid=5, max_iter=2, linear_solver="gmres",
                                                                krylov_dim=3)), p2),
    }
    for name, (fn, params) in cases.items():
        print(name, "guarded", batched_lapack(fn, params))
    L._split_cpu = lambda: False          # the unguarded program: the check can fail
    print("collocation", "unguarded", batched_lapack(*cases["collocation"]))
""")


def test_no_batched_lapack_call_on_a_split_cpu():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = {tuple(line.split(" ", 2)[:2]): line.split(" ", 2)[2] for line in r.stdout.strip().splitlines()}
    for name in ("collocation", "sweep_dense", "static"):
        assert got[name, "guarded"] == "[]", (name, got)
    assert "lapack_dgetrf_ffi" in got["collocation", "unguarded"], got
    # GMRES's least-squares step (lineax QR) stays batched: the documented exception
    assert "geqrf" in got["sweep_gmres", "guarded"] and "getrf" not in got["sweep_gmres", "guarded"], got
