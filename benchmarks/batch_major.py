"""Batch-major rollouts with counter-mode random numbers (the ``env`` benchmark's fast path).

At step ``t`` ONE call draws all randomness (actions and noise) for every
episode and hands each episode its slice; the env step takes its noise
explicitly (e.g. ``coevodt.env.step_with_noise``). With
:func:`discrete_normal_sampler` (counter-mode Threefry-2x32-20 from
:mod:`benchmarks.prng`) this runs many *random* CoEvoEnv episodes about 10x
faster on CPU than the episode-major :func:`jaxtwin.core.rollout.batch_rollout`
(BENCHMARKS.md). It lives here, not in the library, because it did not pay on
the studies' own episodes (measured for issue 10 on 2 shared CPU cores, best
of 3-5, process CPU time): a Co-EvoDT Online run at paper size (10 runs) took
11.1 s with the protocol's ``jax.random`` draws and 10.8 s with counter-mode
draws (1.03x; NoPred 0.53 vs 0.56 s); even a near-free stand-in generator only
reached 1.08x, since the policy networks and the forecaster dominate. A CIVIC
evaluation runs 0.02-0.07 s (cooperative policies; 2.8 s with Myopic-Optimal,
where a free generator gains nothing) after 10-15 s of compilation, so its
random draws are noise on the study's path.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from benchmarks import prng


def batch_major_rollout(
    step_fn: Callable[[Any, Any], tuple[Any, Any]],
    state0: Any,
    sample_fn: Callable[[jax.Array], Any],
    num_steps: int,
    summarize: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any]:
    """Run ``num_steps`` steps of a batch of episodes, drawing randomness batch-major.

    ``state0``: state pytree with a leading episode axis. ``sample_fn(t)``
    returns everything random that step ``t`` needs for ALL episodes (a pytree
    whose leaves have the episode axis LAST, e.g. ``uint32`` words are
    ``[words, episodes]``), typically a closure over a key such as
    :func:`discrete_normal_sampler`. ``step_fn(state, sample) -> (state, out)``
    is one episode's transition with that randomness explicit; it is
    ``vmap``-ed over episodes. ``summarize(out)`` reduces the batched ``out``
    per step (e.g. sums over episodes, so 1e6 episodes need no ``[T, n]``
    trajectory); default keeps it.

    No auto-reset: an episode is ``num_steps`` steps from ``state0``. Returns
    ``(final_state, summaries)`` with a leading time axis on ``summaries``.
    """
    summarize = (lambda out: out) if summarize is None else summarize
    batched_step = jax.vmap(step_fn, in_axes=(0, -1))

    def one_step(state, t):
        # the barrier materialises the draws once; without it XLA fuses the
        # (expensive) hash into every consumer and recomputes it per use
        sample = jax.lax.optimization_barrier(sample_fn(t))
        state, out = batched_step(state, sample)
        return state, summarize(out)

    return jax.lax.scan(one_step, state0, jnp.arange(num_steps, dtype=jnp.uint32))


def discrete_normal_sampler(
    key: jax.Array,
    num_episodes: int,
    num_choices: int,
    num_agents: int,
    num_normals: int,
    normal_method: str = "box_muller",
) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
    """``sample_fn(t) -> (actions int32[num_agents, n], noise f32[num_normals, n])`` for
    :func:`batch_major_rollout`: uniform random joint actions and standard normals.

    Words come from counter-mode Threefry-2x32-20 (:mod:`benchmarks.prng`,
    the hash of JAX's default key implementation) keyed by ``key`` and counted
    by episode and step; normals come from the top 23 bits of
    ``max(num_normals, 4)`` words (rounded up to even) by Box–Muller
    (``normal_method="box_muller"``, the faster on CPU) or by
    ``jax.random.normal``'s erf-inverse transform (``"erfinv"``), and the
    joint action is a multiply-shift of the words' unused low bits
    (:func:`benchmarks.prng.joint_uniform_ints`; relative bias
    ``<= num_choices**num_agents / 2**32``).
    """
    for name, v in (("num_episodes", num_episodes), ("num_choices", num_choices),
                    ("num_agents", num_agents)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"discrete_normal_sampler: {name}={v!r} must be an integer >= 1")
    if not isinstance(num_normals, int) or num_normals < 0:
        raise ValueError(f"discrete_normal_sampler: num_normals={num_normals!r} must be an integer >= 0")
    transforms = {"box_muller": prng.box_muller_normals_from_words, "erfinv": prng.normals_from_words}
    if normal_method not in transforms:
        raise ValueError(f"discrete_normal_sampler: normal_method={normal_method!r} must be one of {sorted(transforms)}")
    to_normals = transforms[normal_method]
    words_of_key = prng.key_words(key)
    num_words = max(num_normals + num_normals % 2, 4)

    def sample(t):
        words = jax.lax.optimization_barrier(
            prng.counter_words(words_of_key, t, num_words, num_episodes))
        actions = prng.joint_uniform_ints(prng.spare_word(words), num_choices, num_agents)
        return actions, to_normals(words)[:num_normals]

    return sample
