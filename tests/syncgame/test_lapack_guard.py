"""Every batched dense solve of the sync-game solvers goes through the deadlock guard
``jaxtwin.core.linalg.solve``: on a CPU split into devices, the vmapped solvers contain
no LAPACK call whose batch jaxlib 0.10 would spread over the thread pool the devices'
programs run on (batches it runs inline may stay), except lineax GMRES's Hessenberg
QR, which the guard's docstring names as not covered. Checked on the lowered programs
(no compilation), at batch sizes past jaxlib's threshold."""
import os
import subprocess
import sys
import textwrap

from jaxtwin.core.linalg import reaches_pool

CODE = textwrap.dedent("""
    import math, re, jax, jax.numpy as jnp
    import jaxtwin.core.linalg as L
    from jaxtwin.syncgame.collocation import CollocationOptions, solve_nash_collocation
    from jaxtwin.syncgame.nash import solve_nash
    from jaxtwin.syncgame.params import as_float64, default_params
    from jaxtwin.syncgame.pmp import SolverOptions
    from jaxtwin.syncgame.static import static_nash
    assert jax.local_device_count() == 2 and L._split_cpu()
    jax.config.update("jax_enable_x64", True)

    def batch_of(params, n):
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct((n, *x.shape), x.dtype), as_float64(params))

    def cost(name, shapes):
        dims = [[int(d) for d in re.findall(r"(\\d+)x", s)] for s in shapes]
        m, n = dims[0][-2:]
        if "getrf" in name:
            return m * n * min(m, n)
        if "trsm" in name:                       # (a, y): y_rows * y_cols * y_rows (left side)
            r, k = dims[1][-2:]
            return r * k * r
        return 2 * m * n * min(m, n) - (2 * min(m, n) ** 3) // 3     # QR and friends

    def pooled_lapack(fn, args):
        text = jax.jit(jax.vmap(fn)).lower(args).as_text()
        calls = [(re.search(r"@(lapack_\\w+)", line).group(1),
                  re.findall(r"tensor<[^>]*>", line.rsplit(" : (", 1)[1].split(") -> ")[0]))
                 for line in text.splitlines() if "custom_call @lapack_" in line]
        assert calls, "no LAPACK call found: the lowering changed form"
        out = set()
        for name, shapes in calls:
            dims = [int(d) for d in re.findall(r"(\\d+)x", shapes[0])]
            batch = math.prod(dims[:-2])
            if batch > 1 and batch > -(-L.POOL_MIN_WORK // cost(name, shapes)):
                out.add(f"{name}:{batch}")
        return sorted(out)

    p2, p4 = default_params(T=10.0), default_params(4, T=10.0)
    cases = {   # batches past jaxlib's pool threshold for each solve's size
        "collocation": (lambda p: solve_nash_collocation(p, CollocationOptions(n_grid=6, coarse_grid=4)), batch_of(p4, 8)),
        "sweep_dense": (lambda p: solve_nash(p, SolverOptions(n_grid=5, max_iter=2)), batch_of(p2, 256)),
        "static": (lambda p: static_nash(p, n_grid=5), batch_of(p2, 32768)),
        "sweep_gmres": (lambda p: solve_nash(p, SolverOptions(n_grid=5, max_iter=2, linear_solver="gmres")),
                        batch_of(p2, 256)),
    }
    for name, (fn, args) in cases.items():
        print(name, "guarded", pooled_lapack(fn, args))
    L._split_cpu = lambda: False          # the guard off: the check sees the pooled LU
    print("collocation", "unguarded", pooled_lapack(*cases["collocation"]))
""")


def test_pool_threshold_follows_jaxlib():
    # jaxlib 0.10 GetLapackBatchChunkSize: one chunk (inline) while batch <= ceil(2e5 / cost)
    assert not reaches_pool(116, 12) and reaches_pool(117, 12)             # 12^3 = 1728
    assert not reaches_pool(4, 40, 9) and reaches_pool(5, 40, 9)           # 4-VSP collocation blocks
    assert reaches_pool(2, 402) and not reaches_pool(1, 402)               # 2-VSP sweep Jacobian


def test_no_pooled_lapack_call_on_a_split_cpu():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = {tuple(line.split(" ", 2)[:2]): line.split(" ", 2)[2] for line in r.stdout.strip().splitlines()}
    for name in ("collocation", "sweep_dense", "static"):
        assert got[name, "guarded"] == "[]", (name, got)
    assert "lapack_dgetrf_ffi:8" in got["collocation", "unguarded"], got
    # GMRES's least-squares step (lineax QR of its Hessenberg matrix) stays batched: the documented exception
    assert "geqrf" in got["sweep_gmres", "guarded"] and "getrf" not in got["sweep_gmres", "guarded"], got
