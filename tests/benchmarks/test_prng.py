"""benchmarks.prng: counter-mode Threefry-2x32 words and their transforms."""
import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from benchmarks import prng


def test_threefry_is_bit_identical_to_jax():
    rng = np.random.default_rng(0)
    for _ in range(3):
        k = rng.integers(0, 2**32, size=2, dtype=np.uint32)
        x = rng.integers(0, 2**32, size=(2, 257), dtype=np.uint32)
        want = np.asarray(jex_random.threefry_2x32((jnp.uint32(k[0]), jnp.uint32(k[1])),
                                                   jnp.asarray(x.reshape(-1))))
        got = np.concatenate([np.asarray(w) for w in prng.threefry2x32(k[0], k[1], x[0], x[1])])
        np.testing.assert_array_equal(got, want)


def test_key_words_accepts_every_key_kind():
    for key in (jax.random.key(3), jax.random.key(3, impl="rbg"), jax.random.PRNGKey(3)):
        w0, w1 = prng.key_words(key)
        assert w0.dtype == jnp.uint32 and w1.dtype == jnp.uint32
    a = prng.key_words(jax.random.key(3))
    b = prng.key_words(jax.random.key(4))
    assert (int(a[0]), int(a[1])) != (int(b[0]), int(b[1]))


def test_counter_words_layout_and_determinism():
    kw = prng.key_words(jax.random.key(0))
    w = np.asarray(prng.counter_words(kw, 7, 5, 64))
    assert w.shape == (5, 64) and w.dtype == np.uint32
    np.testing.assert_array_equal(w, np.asarray(prng.counter_words(kw, 7, 5, 64)))
    # word j of lane i hashes counter (i, 7*3 + j//2)
    x0, x1 = prng.threefry2x32(kw[0], kw[1], np.arange(64, dtype=np.uint32), np.uint32(7 * 3 + 1))
    np.testing.assert_array_equal(w[2], np.asarray(x0))
    np.testing.assert_array_equal(w[3], np.asarray(x1))
    other = np.asarray(prng.counter_words(kw, 8, 5, 64))
    assert np.mean(w == other) < 0.01  # another step: fresh words
    assert len(np.unique(w)) == w.size  # no repeats across words and lanes (32-bit words, 320 draws)
    with pytest.raises(ValueError, match="num_words"):
        prng.counter_words(kw, 0, 0, 4)


def _words(n, num_words=4, seed=0):
    return prng.counter_words(prng.key_words(jax.random.key(seed)), 0, num_words, n)


def test_normals_match_standard_normal():
    z = np.asarray(jax.jit(prng.normals_from_words)(_words(50_000))).ravel()
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)
    assert stats.kstest(z, "norm").pvalue > 1e-3


def test_unit_is_in_half_open_interval_and_uniform():
    u = np.asarray(prng.unit_from_words(_words(50_000))).ravel()
    assert u.min() >= 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    edges = np.asarray(prng.unit_from_words(jnp.array([0, 0xFFFFFFFF], jnp.uint32)))
    assert edges[0] == 0 and edges[1] < 1


def test_spare_word_uses_only_the_bits_normals_discard():
    w = np.asarray(_words(1000))
    flipped = w ^ np.uint32(0xFFFFFE00)  # change every bit the normals use
    np.testing.assert_array_equal(np.asarray(prng.spare_word(jnp.asarray(w))),
                                  np.asarray(prng.spare_word(jnp.asarray(flipped))))
    # and every spare bit comes from some word: flipping a low bit changes it
    np.testing.assert_array_equal(np.asarray(prng.spare_word(jnp.asarray(w ^ np.uint32(1)))),
                                  np.asarray(prng.spare_word(jnp.asarray(w))) ^ np.uint32(0x08040201))
    with pytest.raises(ValueError, match=">= 4 words"):
        prng.spare_word(jnp.asarray(w[:3]))


def test_joint_uniform_ints_are_uniform_and_independent():
    a = np.asarray(prng.joint_uniform_ints(prng.spare_word(_words(60_000)), 3, 3))
    assert a.shape == (3, 60_000) and a.min() == 0 and a.max() == 2
    joint = a[0] + 3 * a[1] + 9 * a[2]
    counts = np.bincount(joint, minlength=27)
    assert stats.chisquare(counts).pvalue > 1e-3
    # extreme words map to the first and last outcome
    ends = np.asarray(prng.joint_uniform_ints(jnp.array([0, 0xFFFFFFFF], jnp.uint32), 3, 3))
    np.testing.assert_array_equal(ends[:, 0], [0, 0, 0])
    np.testing.assert_array_equal(ends[:, 1], [2, 2, 2])
    with pytest.raises(ValueError, match="n\\*\\*k"):
        prng.joint_uniform_ints(jnp.zeros(3, jnp.uint32), 2, 17)


def test_sincos_2pi_matches_numpy():
    v = np.concatenate([np.linspace(0, 1, 20001, dtype=np.float32)[:-1],
                        np.float32([0.125, 0.375, 0.625, 0.875, 1 - 2**-23])])
    s, c = jax.jit(prng.sincos_2pi)(v)
    np.testing.assert_allclose(np.asarray(s), np.sin(2 * np.pi * v.astype(np.float64)), atol=2e-7)
    np.testing.assert_allclose(np.asarray(c), np.cos(2 * np.pi * v.astype(np.float64)), atol=2e-7)


def test_box_muller_normals_match_standard_normal():
    words = _words(50_000, seed=1)
    z = np.asarray(jax.jit(prng.box_muller_normals_from_words)(words))
    assert z.shape == (4, 50_000) and np.all(np.isfinite(z))
    flat = z.ravel()
    assert abs(flat.mean()) < 5 / np.sqrt(flat.size)
    assert abs(flat.var() - 1) < 5 * np.sqrt(2 / flat.size)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    # the cos and sin halves of a pair are uncorrelated
    assert abs(np.corrcoef(z[0], z[2])[0, 1]) < 5 / np.sqrt(50_000)
    # extreme words stay finite (1 - u1 > 0)
    extreme = prng.box_muller_normals_from_words(jnp.array([[0xFFFFFFFF], [0]], jnp.uint32))
    assert np.all(np.isfinite(np.asarray(extreme)))
    with pytest.raises(ValueError, match="even"):
        prng.box_muller_normals_from_words(words[:3])
