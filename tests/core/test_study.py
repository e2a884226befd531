"""Study declarations: expansion, zipping, parsing, TOML round trip and validation
errors (no JAX work; a toy adapter of fields only)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from jaxtwin.core.config import ConfigError
from jaxtwin.core.study import (AxisField, Study, expand, group_policies, load_study, merge_cli, parse_axis,
                                study_toml, validate)


class FieldsOnly:
    system = "toy"
    policy_label = "policy"
    seed_label = "seed"
    stochastic = True
    default_seeds = 4
    plot_metrics = ()
    fields = {"a": AxisField("a", float, 1.0), "b": AxisField("b", float, 0.0),
              "flag": AxisField("flag", bool, False), "n": AxisField("n", int, 2, "shape"),
              "opt.kind": AxisField("opt.kind", str, "v2", "shape", choices=("v1", "v2"))}

    def policies(self, shape):
        return ("x", "y", "z") if shape["n"] > 1 else ("x",)

    def default_policies(self, shape):
        return ("x",)


def test_product_first_axis_slowest_and_zipped_axes_vary_together():
    s = Study("toy", (("a", (1, 2)), ("b", (10, 20, 30)), ("n", (1, 2, 3))), zipped=(("b", "n"),))
    pts = expand(s)
    assert pts == [{"a": 1, "b": 10, "n": 1}, {"a": 1, "b": 20, "n": 2}, {"a": 1, "b": 30, "n": 3},
                   {"a": 2, "b": 10, "n": 1}, {"a": 2, "b": 20, "n": 2}, {"a": 2, "b": 30, "n": 3}]
    assert len(expand(Study("toy", (("a", (1, 2)), ("b", (1, 2, 3)))))) == 6


@pytest.mark.parametrize("kwargs, message", [
    (dict(axes=(("a", ()),)), "a has no values"),
    (dict(axes=(("a", (1,)), ("a", (2,)))), "a declared more than once"),
    (dict(axes=(("a", (1, 2)), ("b", (1,))), zipped=(("a", "b"),)), "equal lengths"),
    (dict(axes=(("a", (1,)),), zipped=(("a", "c"),)), "c not among the axes"),
    (dict(axes=(("a", (1,)),), fixed=(("a", 2),)), "a is also an axis"),
    (dict(seeds=-1), "Study.seeds=-1"),
    (dict(seeds=True), "Study.seeds=True"),
])
def test_bad_declarations_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Study("toy", **kwargs)


def test_validate_coerces_types_and_names_bad_fields():
    v = validate(Study("toy", (("a", ("0.5", 2)), ("n", ("3",)), ("flag", ("true",)))), FieldsOnly())
    assert v.axes == (("a", (0.5, 2.0)), ("n", (3,)), ("flag", (True,)))
    assert v.seeds == 4   # the system's default
    with pytest.raises(ConfigError, match=r"unknown field 'c' of toy; valid fields: a, b, flag, n"):
        validate(Study("toy", (("c", (1,)),)), FieldsOnly())
    with pytest.raises(ConfigError, match=r"study axis n: 1.5 is not a valid int"):
        validate(Study("toy", (("n", (1.5,)),)), FieldsOnly())
    with pytest.raises(ConfigError, match=r"study axis a: 'x' is not a valid float"):
        validate(Study("toy", (("a", ("x",)),)), FieldsOnly())
    with pytest.raises(ConfigError, match=r"study fixed value flag: 3 is not a valid bool"):
        validate(Study("toy", fixed=(("flag", 3),)), FieldsOnly())
    assert validate(Study("toy", (("opt.kind", ("v1",)),)), FieldsOnly()).axes == (("opt.kind", ("v1",)),)
    with pytest.raises(ConfigError, match=r"study axis opt.kind: 'v3' is not one of 'v1', 'v2'"):
        validate(Study("toy", (("opt.kind", ("v3",)),)), FieldsOnly())
    with pytest.raises(ConfigError, match=r"study fixed value opt.kind: 2 is not a valid str"):
        validate(Study("toy", fixed=(("opt.kind", 2),)), FieldsOnly())


def test_policies_all_default_and_invalid():
    ad, s = FieldsOnly(), Study("toy")
    assert group_policies(s, ad, {"n": 2}) == ("x",)
    assert group_policies(Study("toy", policies=("all",)), ad, {"n": 2}) == ("x", "y", "z")
    with pytest.raises(ConfigError, match=r"'y' not valid for toy \(n=1\); valid: x"):
        group_policies(Study("toy", policies=("y",)), ad, {"n": 1})


def test_parse_axis_lists_ranges_and_log():
    assert parse_axis("a=1,2,3") == ("a", ("1", "2", "3"))
    assert parse_axis("budget-factor=0.4:1.2:5") == ("budget_factor", (0.4, 0.6, 0.8, 1.0, 1.2))
    name, vals = parse_axis("r=0.01:1:3", log=True)
    assert vals == pytest.approx((0.01, 0.1, 1.0))
    for bad, msg in (("a", "expected FIELD="), ("a=1:2", "lo:hi:n"), ("a=x:2:3", "numbers"),
                     ("a=1:2:0", "n >= 1")):
        with pytest.raises(ConfigError, match=msg):
            parse_axis(bad)
    with pytest.raises(ConfigError, match="log range needs lo, hi > 0"):
        parse_axis("a=0:1:3", log=True)


def test_merge_cli_adds_to_a_study_file(tmp_path):
    base = Study("toy", (("a", (1.0, 2.0)),), fixed=(("n", 3),), seeds=5)
    s = merge_cli(base, "toy", ["b=1,2"], [], ["flag=true"], None, None, 7, None, 1)
    assert s.axes == (("a", (1.0, 2.0)), ("b", ("1", "2"))) and dict(s.fixed) == {"n": 3, "flag": "true"}
    assert (s.seeds, s.seed) == (5, 7)
    with pytest.raises(ConfigError, match="--log c: not a --grid axis"):
        merge_cli(None, "toy", ["a=1,2"], ["c"], [], None, None, None, None, 1)
    with pytest.raises(ConfigError, match="declares system 'toy'"):
        merge_cli(base, "civic", [], [], [], None, None, None, None, 1)


_values = st.one_of(st.integers(-5, 5), st.floats(-1e3, 1e3, allow_nan=False), st.booleans(),
                    st.sampled_from(["x", "a b", 'q"t']))


@settings(max_examples=40, deadline=None)
@given(axes=st.dictionaries(st.sampled_from(["a", "b", "n", "flag", "agent.lr", "x.y.z"]), st.lists(_values, min_size=1, max_size=4),
                            min_size=0, max_size=3),
       seeds=st.integers(0, 100), policies=st.lists(st.sampled_from(["x", "y", "all"]), max_size=2))
def test_toml_round_trip(tmp_path_factory, axes, seeds, policies):
    s = Study("toy", tuple((k, tuple(v)) for k, v in axes.items()), fixed=(("c", 1.5), ("agent.num_envs", 8)),
              policies=tuple(policies),
              seeds=seeds, seed=3, chunk=2)
    path = tmp_path_factory.mktemp("toml") / "s.toml"
    path.write_text(study_toml(s))
    assert load_study(path) == s


def test_study_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("system = 'toy'\n[axes]\na = {lo = 1}\n")
    with pytest.raises(ConfigError, match=r"axes.a must be a list or \{lo, hi, n"):
        load_study(bad)
    bad.write_text("system = 'toy'\nbogus = 1\n")
    with pytest.raises(ConfigError, match="unknown key.*bogus"):
        load_study(bad)
    bad.write_text("system = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(bad)
    with pytest.raises(ConfigError, match="No such file"):
        load_study(tmp_path / "missing.toml")
    bad.write_text("system = 'toy'\naxes = [1, 2]\n")
    with pytest.raises(ConfigError, match=r"`axes` must be a table"):
        load_study(bad)
    dotted = tmp_path / "d.toml"   # TOML reads `agent.lr = ...` as a nested table: flattened back
    dotted.write_text("system = 'toy'\n[axes]\nagent.lr = [1, 2]\nagent.span = {lo = 0, hi = 1, n = 3}\n"
                      "[fixed]\nagent.num_envs = 4\n")
    assert load_study(dotted) == Study("toy", (("agent.lr", (1, 2)), ("agent.span", (0.0, 0.5, 1.0))),
                                       fixed=(("agent.num_envs", 4),))
    ranged = tmp_path / "r.toml"
    ranged.write_text("system = 'toy'\n[axes]\na = {lo = 1, hi = 100, n = 3, log = true}\n")
    assert load_study(ranged).axes == (("a", (1.0, 10.0, 100.0)),)
