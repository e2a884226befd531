"""Statistics against hand-computed values and scipy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats as sps

from jaxtwin.core.stats import bootstrap_ci, gini, mean_std, paired_ttest, relative_change, value_range


def test_mean_std_hand_values():
    r = mean_std([1.0, 2.0, 3.0, 4.0])
    assert r.mean == 2.5 and r.std == pytest.approx(np.sqrt(5 / 3)) and r.n == 4
    assert mean_std([7.0]).std == 0.0
    with pytest.raises(ValueError, match="NaN"):
        mean_std([1.0, float("nan")])


def test_paired_ttest_matches_scipy_and_degenerate_cases():
    a, b = [1.0, 2.0, 4.0, 8.0], [0.5, 2.5, 3.0, 6.0]
    r, ref = paired_ttest(a, b), sps.ttest_rel(a, b)
    assert r.t == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert paired_ttest([1.0, 2.0], [1.0, 2.0]).p_value == 1.0
    same_shift = paired_ttest([2.0, 3.0], [1.0, 2.0])
    assert same_shift.p_value == 0.0 and same_shift.t == np.inf
    with pytest.raises(ValueError, match="shapes differ"):
        paired_ttest([1.0, 2.0], [1.0])


def test_bootstrap_ci_contains_mean_and_excludes_zero_for_clear_shift():
    rng = np.random.default_rng(0)
    x = 1.0 + 0.1 * rng.standard_normal(30)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi and lo > 0
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(x, confidence=1.5)


def test_gini_and_range_hand_values():
    # |x_i-x_j| sums to 2*(1+2+1)=8 ; 8 / (2*9*mean 1) = 4/9
    assert float(gini(np.array([0.0, 1.0, 2.0]))) == pytest.approx(4 / 9)
    assert float(gini(np.array([3.0, 3.0, 3.0]))) == 0.0
    assert float(gini(np.zeros(4))) == 0.0
    assert float(gini(np.array([0.0, 0.0, 0.0, 5.0]))) == pytest.approx(0.75)
    np.testing.assert_allclose(gini(np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])), [4 / 9, 0.0], rtol=1e-6)
    assert float(value_range(np.array([2.0, -1.0, 5.0]))) == 6.0
    assert relative_change(1.5, 1.0) == pytest.approx(0.5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=2, max_size=8))
def test_gini_is_in_unit_interval(xs):
    g = float(gini(np.array(xs, dtype=np.float32)))
    assert 0.0 <= g <= 1.0 + 1e-6
