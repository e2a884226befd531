"""The seed's directional findings of the sync-game sensitivity studies (spec
``syncgame.md`` §6), checked against the finished ``sensitivity_<study>.csv`` files:
``findings.csv`` (``finding, reproduced, evidence``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core.artifacts import read_csv, write_csv


def _load_study(out: Path, name: str, column: str | None = None):
    """``(values, u_plateau, y_plateau, y_settle_time)`` arrays ``[value, vsp]`` of
    one finished study, or just ``column`` when given."""
    rows = read_csv(out / f"sensitivity_{name}.csv")
    vals = sorted({float(r["value"]) for r in rows})
    m = max(int(r["vsp"]) for r in rows)
    get = lambda key: np.array([[float(next(r[key] for r in rows if float(r["value"]) == v and int(r["vsp"]) == i + 1))  # noqa: E731
                                  for i in range(m)] for v in vals])
    if column is not None:
        return get(column)
    return np.array(vals), get("u_plateau"), get("y_plateau"), get("y_settle_time")


def write_findings(out: Path, studies: tuple[str, ...], focal: int) -> None:
    """Check the seed's directional findings against the studies finished under ``out``
    (``studies``: every study name; ``focal``: index of the focal VSP k) and write
    ``findings.csv``."""
    k = focal
    rows = []

    def add(finding, ok, evidence):
        rows.append(dict(finding=finding, reproduced=bool(ok), evidence=evidence))

    have = {n for n in studies if (out / f"sensitivity_{n}.csv").exists()}
    fmt = lambda a: np.array2string(np.asarray(a), precision=3, separator=" ")  # noqa: E731
    if "sigma" in have:
        v, u, y, settle = _load_study(out, "sigma")
        y_rest = _load_study(out, "sigma", "y_rest")
        # NaN = not settled before 0.6 T: slower than any point that settled
        ranked = np.where(np.isnan(settle[:, 0]), np.inf, settle[:, 0])
        with np.errstate(invalid="ignore"):   # inf - inf (neither settled) is NaN: not faster
            step = np.diff(ranked)
        faster = np.all((step < 0) | ((step <= 1e-9) & np.isfinite(ranked[1:])))
        add("higher sigma speeds population convergence", faster,
            f"sigma={fmt(v)} settle_time(|y-y_plateau|<0.01; nan = not by 0.6T)={fmt(settle[:, 0])}")
        spread = y_rest.max(0) - y_rest.min(0)
        add("higher sigma leaves the replicator rest point unchanged (within 0.01)", np.all(spread < 0.01),
            f"rest-point y under the plateau controls, range over sigma per VSP: {fmt(spread)}; "
            f"plateau u range: {fmt(u.max(0) - u.min(0))}; mean y over [0.4T,0.6T] range: {fmt(y.max(0) - y.min(0))}")
    if "delta_k" in have:
        v, u, y, _ = _load_study(out, "delta_k")
        others = [i for i in range(u.shape[1]) if i != k]
        add("raising delta_k raises u_k", np.all(np.diff(u[:, k]) > 0), f"delta_k={fmt(v)} u_k={fmt(u[:, k])}")
        add("raising delta_k raises y_k", np.all(np.diff(y[:, k]) > 0), f"y_k={fmt(y[:, k])}")
        add("raising delta_k lowers the other u", np.all(np.diff(u[:, others], axis=0) < 0), f"u_others first->last={fmt(u[0, others])}->{fmt(u[-1, others])}")
        add("raising delta_k lowers the other y", np.all(np.diff(y[:, others], axis=0) < 0), f"y_others first->last={fmt(y[0, others])}->{fmt(y[-1, others])}")
    if "r" in have:
        v, u, y, _ = _load_study(out, "r")
        add("raising r lowers all u", np.all(np.diff(u, axis=0) < 0), f"r={fmt(v)} u first->last={fmt(u[0])}->{fmt(u[-1])}")
    if "N" in have:
        v, u, y, _ = _load_study(out, "N")
        add("raising N raises all u", np.all(np.diff(u, axis=0) > 0), f"N={fmt(v)} u first->last={fmt(u[0])}->{fmt(u[-1])}")
    if "p_k" in have:
        v, u, y, _ = _load_study(out, "p_k")
        add("raising p_k raises u_k", np.all(np.diff(u[:, k]) > 0), f"p_k={fmt(v)} u_k={fmt(u[:, k])}")
    if "s" in have:
        v, u, y, _ = _load_study(out, "s")
        add("raising s lowers u_k", np.all(np.diff(u[:, k]) < 0), f"s={fmt(v)} u_k={fmt(u[:, k])}")
    if "w3" in have:
        v, u, y, _ = _load_study(out, "w3")
        inc = np.all(np.diff(u[:, k]) > 0)
        slope = np.diff(u[:, k]) / np.diff(np.log(v))     # du_k / dlog(w3)
        sat = inc and slope[-1] < 0.5 * slope.max()
        add("raising w3 raises u_k", inc, f"w3={fmt(v)} u_k={fmt(u[:, k])}")
        add("u_k saturates in w3 (du_k/dlog w3 at the top < half its max)", sat, f"du_k/dlog(w3)={fmt(slope)}")
    if rows:
        write_csv(out / "findings.csv", rows)
