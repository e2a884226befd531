"""Co-EvoDT environment (spec coevodt §1): three agents — content, infra, user —
steer one shared media/metaverse system whose state is
``[virality v, load l, capacity c, content quality q, time fraction tau]``.

The model is a set of standalone pure functions (:func:`action_effects`,
:func:`transition`, :func:`metrics`, :func:`agent_rewards`, and
:func:`step_with_noise` which composes them with the noise drawn explicitly);
:class:`CoEvoEnv` wraps them as a gymnax environment.

Actions: ``int[3]`` = (content, infra, user), each in ``{0, 1, 2}``.
Untrusted actions: a *concrete* action that is not three integers in
``{0,1,2}`` is rejected with ``ValueError``; a *traced* action (inside
``jit``/``vmap``) cannot be inspected, so it is projected: NaN -> 0, then
rounded to the nearest integer and clipped to ``[0, 2]`` (:func:`project_action`).
Untrusted params: concrete :class:`EnvParams` given to ``reset``/``step`` are
checked by :func:`validate_params` (``ConfigError`` naming the field); traced
ones are not (:meth:`jaxtwin.core.env.Environment.check_params`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxtwin.core.config import ConfigError
from jaxtwin.core.env import Environment
from jaxtwin.core.spaces import Box, MultiDiscrete

AGENTS = ("content", "infra", "user")
"""Agent order along every agent axis (actions, rewards, populations)."""
N_AGENTS = len(AGENTS)
N_ACTIONS = 3
OBS_NAMES = ("virality", "load", "capacity", "quality", "tau")
NOISE_NAMES = ("virality", "load", "latency", "qoe")
"""Order of the four standard-normal draws consumed by one step."""


@struct.dataclass
class EnvParams:
    """Every numeric constant of the model (spec defaults); ``replace`` or ``vmap`` them.

    The reward of agent ``i`` is
    ``w_qoe[i]*qoe - w_cost[i]*cost - w_latency[i]*latency - w_promo[i]*promo``.
    """

    alpha_p: float = struct.field(default=0.05, metadata={"help": "promotion per content-action unit"})
    alpha_i: float = struct.field(default=0.08, metadata={"help": "infrastructure per infra-action unit"})
    alpha_u: float = struct.field(default=0.02, metadata={"help": "engagement per user-action unit (centred at a=1)"})
    capacity_init: float = struct.field(default=0.5, metadata={"help": "c_0"})
    promo_capacity_damping: float = struct.field(default=0.2, metadata={"help": "promo * (1 - d*(1-c))"})
    virality_noise_std: float = struct.field(default=0.02, metadata={"help": "std of e_v"})
    virality_min: float = struct.field(default=0.01, metadata={"help": "lower clip of v"})
    virality_max: float = struct.field(default=1.0, metadata={"help": "upper clip of v"})
    capacity_decay: float = struct.field(default=0.98, metadata={"help": "c' = decay*c + infra"})
    capacity_min: float = struct.field(default=0.1, metadata={"help": "lower clip of c"})
    capacity_max: float = struct.field(default=1.5, metadata={"help": "upper clip of c"})
    load_gain: float = struct.field(default=0.5, metadata={"help": "l' = l + gain*(v'+engage) - infra + e_l"})
    load_noise_std: float = struct.field(default=0.01, metadata={"help": "std of e_l"})
    load_max: float = struct.field(default=2.0, metadata={"help": "upper clip of l (lower: 0)"})
    beta_l: float = struct.field(default=0.5, metadata={"help": "latency = beta_l*(l/c + e_lat)"})
    latency_noise_std: float = struct.field(default=0.01, metadata={"help": "std of e_lat"})
    latency_max: float = struct.field(default=2.0, metadata={"help": "upper clip of latency"})
    gamma_q: float = struct.field(default=0.6, metadata={"help": "QoE latency sensitivity"})
    qoe_noise_std: float = struct.field(default=0.05, metadata={"help": "std of e_q"})
    kappa_i: float = struct.field(default=0.8, metadata={"help": "cost per unit infra"})
    kappa_p: float = struct.field(default=0.5, metadata={"help": "cost per unit promo"})
    w_qoe: tuple[float, ...] = struct.field(default=(1.1, 1.1, 1.1), metadata={"help": "per-agent QoE reward weight"})
    w_cost: tuple[float, ...] = struct.field(default=(0.9, 0.9, 0.9), metadata={"help": "per-agent cost penalty"})
    w_latency: tuple[float, ...] = struct.field(default=(0.15, 0.15, 0.15), metadata={"help": "per-agent latency penalty"})
    w_promo: tuple[float, ...] = struct.field(default=(0.6, 0.6, 0.6), metadata={"help": "per-agent promotion penalty"})


_NONNEG = ("alpha_p", "alpha_i", "alpha_u", "promo_capacity_damping", "virality_noise_std",
           "load_noise_std", "latency_noise_std", "qoe_noise_std", "kappa_i", "kappa_p",
           "load_gain", "beta_l", "gamma_q")


def _as_array(value) -> np.ndarray:
    """float64 array of a field; a tuple of weights (stacked: a tuple of arrays) gets the agents last."""
    if isinstance(value, (tuple, list)):
        return np.stack([np.asarray(v, dtype=np.float64) for v in value], axis=-1)
    return np.asarray(value, dtype=np.float64)


def validate_params(params: EnvParams) -> EnvParams:
    """Check concrete parameters (host side); raise ``ConfigError`` naming the field.

    Every field finite; the weights one per agent; :data:`_NONNEG` fields ``>= 0``;
    ``0 < virality_min < virality_max``, ``0 < capacity_min < capacity_max``,
    ``capacity_min <= capacity_init <= capacity_max``, ``capacity_decay`` in
    ``(0, 1]``, ``load_max, latency_max > 0``. Stacked (``vmap``-ed) parameters
    are checked entry by entry. :class:`CoEvoEnv` runs it on concrete params
    given to ``reset``/``step``; never under ``jit`` (leaves may be tracers there).
    """
    def bad(name, msg):
        raise ConfigError(f"EnvParams.{name}={getattr(params, name)!r}: {msg}")

    val = {}
    for name in EnvParams.__dataclass_fields__:
        try:
            val[name] = _as_array(getattr(params, name))
        except (TypeError, ValueError):
            bad(name, "must be a number (weights: one number per agent)")
    for name, arr in val.items():
        if not np.all(np.isfinite(arr)):
            bad(name, "must be finite")
        if name.startswith("w_") and arr.shape[-1:] != (N_AGENTS,):
            bad(name, f"must hold one weight per agent {AGENTS}")
    for name in _NONNEG:
        if not np.all(val[name] >= 0):
            bad(name, "must be >= 0")
    for lo, hi in (("virality_min", "virality_max"), ("capacity_min", "capacity_max")):
        if not np.all((val[lo] > 0) & (val[lo] < val[hi])):
            bad(lo, f"must satisfy 0 < {lo} < {hi} (= {getattr(params, hi)!r})")
    if not np.all((val["capacity_decay"] > 0) & (val["capacity_decay"] <= 1)):
        bad("capacity_decay", "must be in (0, 1]")
    for name in ("load_max", "latency_max"):
        if not np.all(val[name] > 0):
            bad(name, "must be > 0")
    if not np.all((val["capacity_min"] <= val["capacity_init"]) & (val["capacity_init"] <= val["capacity_max"])):
        bad("capacity_init", f"must lie in [capacity_min, capacity_max] "
                             f"(= [{params.capacity_min!r}, {params.capacity_max!r}])")
    return params


@struct.dataclass
class EnvState:
    """Simulator state; ``time`` counts steps taken in the episode."""

    virality: jax.Array
    load: jax.Array
    capacity: jax.Array
    quality: jax.Array
    time: jax.Array


def project_action(action: jax.Array) -> jax.Array:
    """Admissible ``int32[3]`` from any numeric action: NaN -> 0, round, clip to [0, 2]."""
    a = jnp.nan_to_num(jnp.asarray(action, jnp.float32), nan=0.0)
    return jnp.clip(jnp.round(a), 0, N_ACTIONS - 1).astype(jnp.int32)


def check_action(action) -> None:
    """Reject a concrete action that is not three integers in ``{0,1,2}`` (tracers pass)."""
    if isinstance(action, jax.core.Tracer):
        if jnp.shape(action) != (N_AGENTS,):
            raise ValueError(f"CoEvoEnv action: shape must be ({N_AGENTS},), got {jnp.shape(action)}")
        return
    a = np.asarray(action)
    if a.shape != (N_AGENTS,):
        raise ValueError(f"CoEvoEnv action: shape must be ({N_AGENTS},) "
                         f"(one per agent {AGENTS}), got {a.shape}")
    af = a.astype(np.float64)
    for i, name in enumerate(AGENTS):
        v = af[i]
        if not (np.isfinite(v) and v == np.round(v) and 0 <= v < N_ACTIONS):
            raise ValueError(f"CoEvoEnv action[{i}] ({name})={a[i]!r}: must be an integer in "
                             f"{{0, 1, 2}}")


def action_effects(action: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(promo, infra, engage) = (alpha_p*a_c, alpha_i*a_i, alpha_u*(a_u - 1))``."""
    a = project_action(action).astype(jnp.float32)
    return params.alpha_p * a[0], params.alpha_i * a[1], params.alpha_u * (a[2] - 1.0)


def transition(state: EnvState, promo, infra, engage, z_v, z_l, params: EnvParams) -> EnvState:
    """Next state from the action effects and standard-normal draws ``z_v, z_l``.

    ``v' = clip(v(1+e_v) + promo(1 - d(1-c)))``, ``c' = clip(0.98c + infra)``,
    ``l' = clip(l + 0.5(v' + engage) - infra + e_l)``, ``q' = q``.
    """
    v = state.virality * (1.0 + params.virality_noise_std * z_v) \
        + promo * (1.0 - params.promo_capacity_damping * (1.0 - state.capacity))
    v = jnp.clip(v, params.virality_min, params.virality_max)
    # the product is rounded on its own, whatever the batch: XLA's CPU backend always allows
    # fused multiply-adds, and whether LLVM folds `decay * c` into the add depends on how it
    # vectorised the loop for the batch a device holds, so `decay * c + infra` came out 1 ulp
    # apart with the runs on 1 or 2 devices. The clip (the identity: 0 < decay * c <= c_max)
    # cannot be folded; infra = alpha_i * {0, 1, 2} is exact, so an FMA of it changes nothing.
    decayed = jnp.clip(params.capacity_decay * state.capacity, 0.0, params.capacity_max)
    c = jnp.clip(decayed + infra, params.capacity_min, params.capacity_max)
    l = state.load + params.load_gain * (v + engage) - infra + params.load_noise_std * z_l
    l = jnp.clip(l, 0.0, params.load_max)
    return EnvState(virality=v, load=l, capacity=c, quality=state.quality, time=state.time + 1)


def metrics(state: EnvState, promo, infra, z_lat, z_q, params: EnvParams) -> dict[str, jax.Array]:
    """Latency, QoE and cost on the post-step state (standard-normal ``z_lat, z_q``)."""
    latency = jnp.clip(params.beta_l * (state.load / state.capacity + params.latency_noise_std * z_lat),
                       0.0, params.latency_max)
    qoe = jnp.clip(state.quality - params.gamma_q * latency + params.qoe_noise_std * z_q, 0.0, 1.0)
    cost = params.kappa_i * infra + params.kappa_p * promo
    return dict(latency=latency, qoe=qoe, cost=cost)


def agent_rewards(qoe, cost, latency, promo, params: EnvParams) -> jax.Array:
    """``f32[3]``: per-agent ``w_qoe*qoe - w_cost*cost - w_latency*latency - w_promo*promo``."""
    w = lambda x: jnp.asarray(x, jnp.float32)
    return (w(params.w_qoe) * qoe - w(params.w_cost) * cost
            - w(params.w_latency) * latency - w(params.w_promo) * promo)


def observation(state: EnvState, episode_len: int) -> jax.Array:
    """``f32[5] = [v, l, c, q, t/T]``."""
    return jnp.stack([state.virality, state.load, state.capacity, state.quality,
                      state.time / episode_len]).astype(jnp.float32)


def step_with_noise(state: EnvState, action: jax.Array, noise: jax.Array, params: EnvParams):
    """One transition with explicit standard-normal ``noise`` (``f32[4]``, order :data:`NOISE_NAMES`).

    Returns ``(next_state, reward f32[3], info)``; ``info`` holds the metrics
    and the post-step state variables.
    """
    promo, infra, engage = action_effects(action, params)
    nxt = transition(state, promo, infra, engage, noise[0], noise[1], params)
    m = metrics(nxt, promo, infra, noise[2], noise[3], params)
    reward = agent_rewards(m["qoe"], m["cost"], m["latency"], promo, params)
    info = dict(m, load=nxt.load, virality=nxt.virality, capacity=nxt.capacity,
                promo=promo, infra=infra, engage=engage)
    return nxt, reward, info


def initial_state(key: jax.Array, params: EnvParams) -> EnvState:
    """``c_0`` fixed; ``v_0, l_0, q_0 ~ U(0, 1)``; ``t = 0``."""
    v, l, q = jax.random.uniform(key, (3,))
    c = jnp.asarray(params.capacity_init, jnp.float32)
    return EnvState(virality=v, load=l, capacity=c, quality=q, time=jnp.asarray(0, jnp.int32))


class CoEvoEnv(Environment[EnvState, EnvParams]):
    """Three-agent Co-EvoDT environment; ``episode_len`` (T) is the only shape-fixer.

    Episodes end by time limit (``truncated``), never by termination. Observation
    ``f32[5]``, action ``int32[3]``, reward ``f32[3]`` (one per agent in :data:`AGENTS`).
    A gymnax environment (:class:`jaxtwin.core.env.Environment`); gymnax code that
    wants one scalar reward and one discrete action needs the single-controller view.
    """

    def __init__(self, episode_len: int = 50):
        if isinstance(episode_len, bool) or not isinstance(episode_len, int) or episode_len < 1:
            raise ConfigError(f"CoEvoEnv.episode_len={episode_len!r}: must be an integer >= 1")
        self.episode_len = episode_len

    @property
    def name(self) -> str:
        """``"CoEvoDT"``."""
        return "CoEvoDT"

    @property
    def default_params(self) -> EnvParams:
        """The spec's constants."""
        return EnvParams()

    def check_params(self, params: EnvParams) -> None:
        """:func:`validate_params`: ``reset``/``step`` run it on concrete params given to them."""
        validate_params(params)

    def reset_env(self, key, params):
        """Fresh episode: ``(obs f32[5], state)``."""
        state = initial_state(key, params)
        return observation(state, self.episode_len), state

    def check_action(self, action) -> None:
        """:func:`check_action`: ``step`` runs it on a concrete action before its compiled call."""
        check_action(action)

    def step_env(self, key, state, action, params):
        """Raw transition; rejects concrete bad actions, projects traced ones."""
        check_action(action)
        nxt, reward, info = step_with_noise(state, action, jax.random.normal(key, (4,)), params)
        truncated = nxt.time >= self.episode_len
        return (observation(nxt, self.episode_len), nxt, reward,
                jnp.asarray(False), truncated, info)

    def action_space(self, params=None):
        """One choice in ``{0,1,2}`` per agent: ``MultiDiscrete(3, (3,))``, a gymnax Box
        (gymnax has no multi-discrete space; ``num_actions`` is the 3 choices per agent)."""
        return MultiDiscrete(N_ACTIONS, (N_AGENTS,))

    def observation_space(self, params=None):
        """``[v, l, c, q, tau]`` within their clip bounds (``v_0 ~ U(0,1)`` may start below ``virality_min``)."""
        p = self.default_params if params is None else params
        low = jnp.array([0.0, 0.0, p.capacity_min, 0.0, 0.0], jnp.float32)
        high = jnp.array([p.virality_max, p.load_max, p.capacity_max, 1.0, 1.0], jnp.float32)
        return Box(low, high, (5,))


def default_params() -> EnvParams:
    """The spec's Co-EvoDT constants (``CoEvoEnv().default_params``)."""
    return EnvParams()
