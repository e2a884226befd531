"""Generate notebooks/syncgame.ipynb (run: python notebooks/make_syncgame.py)."""
from pathlib import Path

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# IoT-assisted DT synchronisation game\n"
        "VSPs choose sync intensities `u_i(t)`; UAVs pick VSPs by replicator dynamics. "
        "We solve the open-loop Nash equilibrium (Pontryagin conditions, damped Newton on the "
        "forward-backward sweep map), and compare with the "
        "static Stackelberg game. Small grids keep this notebook fast."),
    nbf.v4.new_code_cell(
        "import jax, numpy as np, matplotlib.pyplot as plt\n"
        "from jaxtwin.syncgame import (SolverOptions, default_params, nash_equilibrium,\n                              static_stackelberg_equilibrium)\n"
        "opts = SolverOptions(n_grid=51)\n"
        "params = default_params()  # spec defaults, 2 VSPs"),
    nbf.v4.new_markdown_cell("## Open-loop Nash (2 VSPs)"),
    nbf.v4.new_code_cell(
        "sol = nash_equilibrium(params, opts)\n"
        "print('residual', float(sol.residual), 'converged', bool(sol.converged), 'Newton iterations', int(sol.iterations))\n"
        "ts, z, u = np.asarray(sol.ts), np.asarray(sol.states), np.asarray(sol.controls)\n"
        "fig, ax = plt.subplots(1, 3, figsize=(13, 3.5))\n"
        "for i in range(2):\n"
        "    ax[0].plot(ts, z[:, 2 + i], label=f'VSP {i+1}'); ax[1].plot(ts, u[:, i]); ax[2].plot(ts, z[:, i])\n"
        "for a, l in zip(ax, ['UAV share y', 'sync intensity u', 'DT value x']): a.set_xlabel('t'); a.set_ylabel(l)\n"
        "ax[0].legend(); plt.show()"),
    nbf.v4.new_markdown_cell(
        "## Static Stackelberg baseline (VSP 1 leads, constant controls)\n"
        "The dynamic Stackelberg game is `stackelberg_equilibrium(params, (0,), opts)` "
        "(left out here: it compiles for about a minute); `jaxtwin syncgame compare` runs all three."),
    nbf.v4.new_code_cell(
        "static = static_stackelberg_equilibrium(params, (0,), n_grid=51)\n"
        "for name, s in [('simultaneous', sol), ('static', static)]:\n"
        "    print(f'{name:>13}', np.round(np.asarray(s.payoffs), 3))\n"
        "plt.bar(['VSP1 dyn', 'VSP1 static', 'VSP2 dyn', 'VSP2 static'],\n"
        "        [float(sol.payoffs[0]), float(static.payoffs[0]), float(sol.payoffs[1]), float(static.payoffs[1])])\n"
        "plt.ylabel('discounted payoff'); plt.show()"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
nbf.write(nb, Path(__file__).with_name("syncgame.ipynb"))
