"""The study engine on a toy adapter: a sweep equals per-point calls, one compilation per
shape group however many chunks, resume after an interruption gives byte-identical
files, a finished study is read back, another declaration is refused."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.core import engine
from jaxtwin.core.config import ConfigError
from jaxtwin.core.study import AxisField, Study


def point_metrics(p, keys, n, n_policies):
    """What one point computes: per policy i and seed key, a*(i+1) + b*n + noise."""
    noise = jax.vmap(lambda k: jax.random.normal(k))(keys)
    base = p["a"] * (jnp.arange(n_policies) + 1.0) + p["b"] * n
    return {"value": base[:, None] + noise[None, :], "ok": jnp.broadcast_to(p["a"] > 0, (n_policies, keys.shape[0]))}


class ToyRunner:
    metrics = ("value", "ok")

    def __init__(self, shape, policies, log):
        self.policies, self.n, self.log = policies, shape["n"], log
        self.call = jax.jit(jax.vmap(lambda p, k: point_metrics(p, k, self.n, len(policies)), in_axes=(0, None)))

    def params(self, values):
        if values.get("a", 1.0) == 99.0:
            raise ConfigError(f"ToyParams.a={values['a']}: must not be 99")
        return {"a": np.float32(values.get("a", 1.0)), "b": np.float32(values.get("b", 0.0))}

    def __call__(self, stacked, keys):
        self.log.append(np.asarray(stacked["a"]).shape[0])
        if self.log.interrupt_at == len(self.log):
            raise KeyboardInterrupt
        return self.call(stacked, keys)


class Log(list):
    interrupt_at = 0


class ToyAdapter:
    system = "toy"
    policy_label = "policy"
    seed_label = "seed"
    stochastic = True
    default_seeds = 3
    plot_metrics = ("value",)
    fields = {"a": AxisField("a", float, 1.0), "b": AxisField("b", float, 0.0), "n": AxisField("n", int, 1, "shape")}

    def __init__(self):
        self.log = Log()

    def policies(self, shape):
        return ("p0", "p1")

    def default_policies(self, shape):
        return ("p0", "p1")

    def keys(self, seed, n):
        return jax.random.split(jax.random.PRNGKey(seed), n)

    def group(self, shape, fixed, policies, n_seeds, devices):
        return ToyRunner(shape, policies, self.log)


STUDY = Study("toy", (("a", (0.5, 1.0, 1.5, 2.0, 2.5)), ("n", (1, 2))), fixed=(("b", 0.25),), chunk=2)


def test_sweep_equals_per_point_calls_and_compiles_once_per_group(tmp_path):
    ad = ToyAdapter()
    rows, summary = engine.run(STUDY, ad, tmp_path / "s", progress=False)
    assert len(rows) == 5 * 2 * 2 * 3 and len(summary) == 5 * 2 * 2
    keys = ad.keys(0, 3)
    for r in rows[:: 7]:
        one = point_metrics({"a": jnp.float32(r["a"]), "b": jnp.float32(0.25)}, keys, r["n"], 2)
        p = ("p0", "p1").index(r["policy"])
        assert r["value"] == float(one["value"][p, r["seed"]])   # exact
    record = __import__("json").loads((tmp_path / "s" / "study.json").read_text())
    assert [g["chunks"] for g in record["groups"]] == [3, 3]
    assert [g["compilations"] for g in record["groups"]] == [1, 1]   # padded last chunk: no new program
    assert ad.log == [2, 2, 2] * 2
    s0 = [s for s in summary if s["policy"] == "p0" and s["n"] == 1]
    assert s0[0]["n_seeds"] == 3
    vals = [r["value"] for r in rows if r["point"] == s0[0]["point"] and r["policy"] == "p0"]
    assert s0[0]["value_mean"] == pytest.approx(np.mean(vals))
    assert s0[0]["value_ci95"] == pytest.approx(4.302653 * np.std(vals, ddof=1) / np.sqrt(3), rel=1e-5)
    assert (tmp_path / "s" / "value_heatmap.png").exists()


def test_resume_after_interruption_is_byte_identical_and_finished_is_read_back(tmp_path):
    engine.run(STUDY, ToyAdapter(), tmp_path / "full", progress=False)
    ad = ToyAdapter()
    ad.log.interrupt_at = 4   # the first chunk of the second group
    with pytest.raises(KeyboardInterrupt):
        engine.run(STUDY, ad, tmp_path / "cut", progress=False)
    assert not (tmp_path / "cut" / "results.csv").exists()
    ad.log.clear()
    ad.log.interrupt_at = 0
    engine.run(STUDY, ad, tmp_path / "cut", progress=False)
    assert ad.log == [2, 2, 2]   # only the unfinished group ran again
    for name in ("results.csv", "summary.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()
    ad.log.clear()
    engine.run(STUDY, ad, tmp_path / "cut", progress=False)
    assert ad.log == []   # finished: read back, nothing runs


def test_another_declaration_is_refused_and_overwrite_recomputes(tmp_path):
    engine.run(STUDY, ToyAdapter(), tmp_path, progress=False)
    other = Study("toy", (("a", (0.5, 1.0)),), fixed=(("b", 0.25),), chunk=2)
    with pytest.raises(ConfigError, match="holds results of other options"):
        engine.run(other, ToyAdapter(), tmp_path, progress=False)
    rows, _ = engine.run(other, ToyAdapter(), tmp_path, overwrite=True, progress=False)
    assert len(rows) == 2 * 2 * 3 and not (tmp_path / "parts" / "g001_c0000.csv").exists()


def test_bad_point_fails_before_anything_runs(tmp_path):
    ad = ToyAdapter()
    with pytest.raises(ConfigError, match="ToyParams.a=99.0"):
        engine.run(Study("toy", (("a", (1.0, 99.0)),)), ad, tmp_path, progress=False)
    assert ad.log == []


def test_table_is_a_dataframe_or_columns():
    t = engine.table([{"a": 1, "b": 2.0}, {"a": 3, "b": 4.0}])
    cols = dict(t) if isinstance(t, dict) else {c: list(t[c]) for c in t.columns}
    assert cols == {"a": [1, 3], "b": [2.0, 4.0]}
