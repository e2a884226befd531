"""Helpers shared by several test modules."""
from __future__ import annotations

import jax


def scan_rollout(env, params, keys, actions, to_action=lambda a: a):
    """``(obs0, (obs, state, reward, terminated, truncated, final_obs))`` of ``env``
    stepped once per entry of ``actions`` in one ``lax.scan`` (``keys[0]`` resets,
    ``keys[1:]`` step), each action mapped through ``to_action`` first."""
    obs, state = env.reset(keys[0], params)

    def body(state, x):
        key, a = x
        obs, state, reward, term, trunc, info = env.step(key, state, to_action(a), params)
        return state, (obs, state, reward, term, trunc, info["final_observation"])
    return obs, jax.lax.scan(body, state, (keys[1:], actions))[1]


def xla_bytes(compiled) -> int:
    """What a compiled program holds at its peak by XLA's count (``memory_analysis()``):
    temp, argument and output buffers, less the outputs aliasing arguments."""
    m = compiled.memory_analysis()
    return m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes


def interrupt_training_after_first_chunk(monkeypatch) -> None:
    """Make every CIVIC PPO training stop (``KeyboardInterrupt``) when its second chunk starts."""
    import jaxtwin.civic.agents as agents

    real = agents._learner_programs

    def programs(*args):
        init, run = real(*args)
        calls = []

        def first_only(runner, params, n):
            if calls:
                raise KeyboardInterrupt
            calls.append(n)
            return run(runner, params, n)
        return init, first_only

    monkeypatch.setattr(agents, "_learner_programs", programs)
