"""Views of :class:`~jaxtwin.coevodt.env.CoEvoEnv` for existing JAX RL code.

* :func:`single_controller` — a gymnax ``Environment`` with one joint
  ``Discrete(27)`` action and the agents' summed reward, so single-agent code
  (gymnax's wrappers, PureJaxRL's ``ppo.py``) runs on Co-EvoDT unchanged.
* :func:`as_jaxmarl` — a JaxMARL ``MultiAgentEnv`` with dict-keyed agents
  ``"content"``, ``"infra"``, ``"user"`` (needs the optional extra ``marl``).

Both views are exact: with the same keys they produce the raw environment's
observations, states and rewards (the single controller sums the latter).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from jaxtwin.coevodt.env import AGENTS, N_ACTIONS, N_AGENTS, CoEvoEnv, observation
from jaxtwin.core.spaces import discrete_index

N_JOINT = N_ACTIONS ** N_AGENTS
"""Number of joint actions of the single controller (27)."""
_RADIX = tuple(N_ACTIONS ** (N_AGENTS - 1 - i) for i in range(N_AGENTS))  # (9, 3, 1)


def decode_joint_action(index) -> jax.Array:
    """``int32[3]`` agent actions (content, infra, user) of a joint index in ``0..26``.

    The encoding is base 3 with the content agent most significant:
    ``index = 9*a_content + 3*a_infra + a_user``. A concrete index that is not
    an integer in ``0..26`` is rejected with ``ValueError``; a traced one
    (inside ``jit``/``vmap``) is projected: NaN -> 0, rounded, clipped.
    """
    i = discrete_index(index, N_JOINT, "single_controller")  # 9*content + 3*infra + user
    return (i // jnp.asarray(_RADIX, jnp.int32)) % N_ACTIONS


def encode_joint_action(action) -> jax.Array:
    """Inverse of :func:`decode_joint_action`: ``int32[3]`` agent actions -> joint index."""
    return jnp.sum(jnp.asarray(action, jnp.int32) * jnp.asarray(_RADIX, jnp.int32))


def _gymnax_box(space) -> spaces.Box:
    """The same bounds as a gymnax ``Box`` (whatever Box class the raw env uses)."""
    return spaces.Box(space.low, space.high, tuple(space.shape), space.dtype)


class SingleController(environment.Environment):
    """Co-EvoDT seen by one controller choosing all three agents' actions.

    Observation: the raw ``f32[5]``. Action: ``Discrete(27)``, see
    :func:`decode_joint_action`. Reward: the sum of the three agents' rewards
    (float32 scalar); the per-agent ones are in ``info["agent_rewards"]``.
    Params are the raw env's ``EnvParams``. ``reset``/``step`` delegate to the
    raw env's (auto-reset, ``info["final_observation"]``), so the view follows
    the raw env key for key.
    """

    def __init__(self, env: CoEvoEnv):
        if not isinstance(env, CoEvoEnv):
            raise TypeError(f"single_controller(env): expected a CoEvoEnv, got {type(env).__name__}")
        self.env = env

    @property
    def default_params(self):
        """The raw env's default ``EnvParams``."""
        return self.env.default_params

    @property
    def name(self) -> str:
        """Environment name."""
        return "CoEvoDT-SingleController"

    @property
    def num_actions(self) -> int:
        """Number of joint actions (27)."""
        return N_JOINT

    def action_space(self, params=None) -> spaces.Discrete:
        """``Discrete(27)``: joint index ``9*content + 3*infra + user``."""
        return spaces.Discrete(N_JOINT)

    def observation_space(self, params=None) -> spaces.Box:
        """The raw observation space as a gymnax ``Box``."""
        return _gymnax_box(self.env.observation_space(params))

    def reset_env(self, key, params):
        """The raw env's episode start."""
        return self.env.reset_env(key, params)

    def reset(self, key, params=None):
        """``(obs f32[5], state)`` of a fresh episode."""
        return self.env.reset(key, self.default_params if params is None else params)

    def step_env(self, key, state, action, params):
        """The raw transition without auto-reset, in the raw env's ``step_env``
        form, with the joint action decoded and the rewards summed."""
        out = self.env.step_env(key, state, decode_joint_action(action), params)
        return (out[0], out[1], jnp.sum(out[2])) + tuple(out[3:-1]) \
            + ({**out[-1], "agent_rewards": out[2]},)

    def step(self, key, state, action, params=None):
        """``(obs, state, reward, terminated, truncated, info)`` with auto-reset (gymnax 1.x)."""
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self.env.step(
            key, state, decode_joint_action(action), params)
        return obs, state, jnp.sum(reward), terminated, truncated, {**info, "agent_rewards": reward}


def single_controller(env: CoEvoEnv | None = None) -> SingleController:
    """A gymnax view of ``env`` (default ``CoEvoEnv()``) with one joint
    ``Discrete(27)`` action and the summed reward (:class:`SingleController`)."""
    return SingleController(CoEvoEnv() if env is None else env)


def _raw_transition(env: CoEvoEnv, key, state, action, params):
    """``(obs, state, reward, terminated, truncated, info)`` without reset, from
    either step_env form (jaxtwin's 6-tuple, or gymnax's 5-tuple plus ``is_truncated``)."""
    out = env.step_env(key, state, action, params)
    if len(out) == 5:
        obs, nxt, reward, terminated, info = out
        return obs, nxt, reward, terminated, env.is_truncated(nxt, params), info
    return out


class JaxMARLMethods:
    """The JaxMARL ``MultiAgentEnv`` interface over a :class:`CoEvoEnv`.

    Mixed into JaxMARL's ``MultiAgentEnv`` by :func:`as_jaxmarl` (JaxMARL is
    imported only then). Agents :data:`~jaxtwin.coevodt.env.AGENTS`; every agent
    observes the full ``f32[5]`` state and picks one of 3 actions (all always
    available). ``dones`` are ``terminated | truncated`` for every agent and
    ``"__all__"``; ``info`` keeps the raw metrics plus ``"terminated"`` and
    ``"truncated"`` so time limits stay distinguishable. JaxMARL's own ``step``
    does the auto-reset: it splits the key exactly as the raw env does, so the
    view reproduces the raw env key for key.
    """

    def __init__(self, env: CoEvoEnv, params, marl_spaces):
        super().__init__(num_agents=N_AGENTS)
        self.env = env
        self.params = env.default_params if params is None else params
        self.agents = list(AGENTS)
        obs = env.observation_space(self.params)
        self.observation_spaces = {a: marl_spaces.Box(obs.low, obs.high, tuple(obs.shape), obs.dtype)
                                   for a in self.agents}
        self.action_spaces = {a: marl_spaces.Discrete(N_ACTIONS) for a in self.agents}

    @property
    def name(self) -> str:
        """Environment name."""
        return "CoEvoDT"

    @property
    def agent_classes(self) -> dict:
        """Each agent is its own class (distinct roles and rewards)."""
        return {a: [a] for a in self.agents}

    def _per_agent(self, x) -> dict:
        return {a: x for a in self.agents}

    def get_obs(self, state) -> dict:
        """The shared observation ``f32[5]`` for every agent."""
        return self._per_agent(observation(state, self.env.episode_len))

    def reset(self, key):
        """``(obs dict, state)`` of a fresh episode."""
        obs, state = self.env.reset(key, self.params)
        return self._per_agent(obs), state

    def step_env(self, key, state, actions):
        """One raw transition (no reset) from the agent-keyed ``actions``."""
        action = jnp.stack([jnp.asarray(actions[a]) for a in self.agents])
        obs, nxt, reward, terminated, truncated, info = _raw_transition(
            self.env, key, state, action, self.params)
        done = jnp.logical_or(terminated, truncated)
        rewards = {a: reward[i] for i, a in enumerate(self.agents)}
        dones = {**self._per_agent(done), "__all__": done}
        return self._per_agent(obs), nxt, rewards, dones, \
            {**info, "terminated": terminated, "truncated": truncated}

    def get_avail_actions(self, state) -> dict:
        """Every action is always available: ``bool[3]`` of ones per agent."""
        return self._per_agent(jnp.ones((N_ACTIONS,), jnp.bool_))


@functools.cache
def _jaxmarl_class():
    try:
        from jaxmarl.environments import spaces as marl_spaces
        from jaxmarl.environments.multi_agent_env import MultiAgentEnv
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError("as_jaxmarl needs JaxMARL: pip install 'jaxtwin[marl]'") from err
    return type("CoEvoJaxMARL", (JaxMARLMethods, MultiAgentEnv), {
        "__doc__": JaxMARLMethods.__doc__, "__module__": __name__}), marl_spaces


def as_jaxmarl(env: CoEvoEnv | None = None, params=None):
    """A JaxMARL ``MultiAgentEnv`` view of ``env`` (default ``CoEvoEnv()``) with
    ``params`` fixed (default ``env.default_params``; JaxMARL envs take no params
    argument). See :class:`JaxMARLMethods`. Raises ``ImportError`` without JaxMARL."""
    env = CoEvoEnv() if env is None else env
    if not isinstance(env, CoEvoEnv):
        raise TypeError(f"as_jaxmarl(env): expected a CoEvoEnv, got {type(env).__name__}")
    cls, marl_spaces = _jaxmarl_class()
    return cls(env, params, marl_spaces)
