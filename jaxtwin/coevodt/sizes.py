"""Memory the Co-EvoDT programs allocate, estimated from the config, so that a run too
large for the machine is refused before anything compiles (:func:`require_run_fits`,
through :func:`jaxtwin.core.memory.require_all_fit`).

Every program is vmapped over the runs of a mode (``--runs``; per device on
accelerators, :func:`jaxtwin.core.memory.lanes_per_device`), so each estimate is
``runs x`` the bytes of one run: the largest terms below, in float32. They
follow XLA's count (``memory_analysis()``: temp, argument and output bytes of
``experiments._compiled``'s programs, CPU, 2 and 8 runs, ``T`` 12 and 48, up to
400 baseline episodes, 300 evaluation episodes, 30 members, ``(256, 256)``
policies, LSTM hidden 256, 4096 oracle samples: every estimate 0.99 to 1.71
times XLA's; ``tests/coevodt/test_sizes.py`` checks two of them):

* the carry (every program's input or output): the populations and their
  Adam moments, ``3 x agents x pop_size x`` the policy's parameters, and the
  LSTM's (forecast modes);
* ``setup``: the random baseline episodes (14 floats per step: the
  observation, the drawn uniforms and noise, the load; measured 56 B at
  ``T = 12``), and in forecast modes the LSTM data set (every window of
  every baseline episode, the validation and test windows run through the
  LSTM at once: about ``0.3 x window x 4 hidden`` floats per window), one
  pretraining minibatch with its gradients (``2 x batch x window x 4 hidden``
  floats: measured 4.2 KB per window at ``hidden = 32``, ``window = 4``), the
  oracle's ``test windows x oracle_samples`` noise pairs, and a few copies of
  the LSTM's parameters;
* ``group``: two copies of the populations, REINFORCE's backward pass through
  the episode (per step and agent the policy's activations twice: measured
  2.15 KB per step with ``(64, 32)``), the evolution's scoring episodes, and
  in Online the fine-tune windows and one fine-tune minibatch;
* ``finish``: the greedy evaluation episodes (measured about 41 floats per
  step), the scoring episodes, the champions and (forecast modes) a copy of
  the LSTM's weights; it reads only the populations' parameters.

The sensitivity sweep runs the whole protocol vmapped over 7 scenarios x
``--sensitivity-runs``: its estimate is the sum of the three per run.
"""
from __future__ import annotations

from jaxtwin.core.memory import F32, Need, lanes_per_device, require_all_fit
from jaxtwin.coevodt.env import N_ACTIONS, N_AGENTS

BASELINE_STEP = 9      # floats per baseline step besides the observation (uniforms, noise, load)
EVAL_STEP = 36         # floats per greedy/scoring step besides the observation (measured 41 with 5)
TRAIN_STEP = 9         # floats per scoring step of training besides the observation
LSTM_COPIES = 4        # parameters, gradients and Adam moments held by a fit
SENSITIVITY_SCENARIOS = 7   # nominal and -+delta on alpha_p, alpha_i, alpha_u (sensitivity.sensitivity_scenarios)


def policy_params(obs_dim: int, hidden: tuple[int, ...]) -> int:
    """Parameters of one :class:`~jaxtwin.nets.policy.PolicyNet`."""
    widths = (obs_dim, *hidden, N_ACTIONS)
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))


def lstm_params(hidden: int) -> int:
    """Parameters of one :class:`~jaxtwin.nets.forecaster.LSTMForecaster` (scalar input)."""
    return 4 * hidden * (hidden + 2) + hidden + 1


def _fit_terms(cfg, n_windows: int, batch: int, held_out: float, data_option: str,
               batch_option: str) -> list[tuple[str, float]]:
    """One LSTM fit on ``n_windows`` windows: the windows with the held-out ones run at once,
    one minibatch with its gradients, the parameter copies."""
    f = cfg.forecast
    gates = f.window * 4 * f.hidden
    return [(data_option, F32 * n_windows * (3 * (f.window + 1) + held_out * gates)),
            (batch_option, F32 * 2 * min(batch, n_windows) * gates),
            ("--forecast.hidden", F32 * LSTM_COPIES * lstm_params(f.hidden))]


def run_terms(cfg, mode: str) -> dict[str, list[tuple[str, float]]]:
    """Bytes of one run per program (``setup``, ``group``, ``finish``) of ``mode``:
    ``{program: [(options driving the term, bytes), ...]}``."""
    f, T = cfg.forecast, cfg.episode_len
    forecast = mode != "NoPred"
    obs = 6 if forecast else 5
    pop = F32 * N_AGENTS * cfg.pop_size * policy_params(obs, tuple(cfg.policy_hidden))
    carry = [("--pop-size or --policy-hidden", 3 * pop)]
    if forecast:
        carry.append(("--forecast.hidden", 3 * F32 * lstm_params(f.hidden)))
    per_episode_lstm = F32 * f.window * 4 * f.hidden if forecast else 0   # the feature, each step
    scoring = N_AGENTS * cfg.pop_size * cfg.eval_per_member
    # the baseline episodes act before any forecaster exists: 5-entry observations in every mode
    setup = [("--baseline-episodes or --episode-len", F32 * cfg.baseline_episodes * T * (5 + BASELINE_STEP))]
    if forecast:
        n_win = cfg.baseline_episodes * (T - f.window)
        n_test = n_win - int(f.train_frac * n_win) - int(f.val_frac * n_win)
        batch = f.batch_size if f.procedure == "v2" else f.v1_batch_size
        setup += _fit_terms(cfg, n_win, batch, 0.15, "--baseline-episodes or --episode-len",
                            "--forecast.batch-size" if f.procedure == "v2" else "--forecast.v1-batch-size")
        setup.append(("--forecast.oracle-samples", 3 * F32 * n_test * f.oracle_samples))
    group = [("--pop-size or --policy-hidden", 2 * pop),
             ("--episode-len or --policy-hidden",
              F32 * T * N_AGENTS * (obs + 2 * sum(cfg.policy_hidden) + 2 * N_ACTIONS)),
             ("--pop-size or --eval-per-member", scoring * (F32 * T * (obs + TRAIN_STEP) + per_episode_lstm))]
    if mode == "Online":
        group += _fit_terms(cfg, f.online_every * (T - f.window), f.online_batch_size, f.val_frac,
                            "--forecast.online-every or --episode-len", "--forecast.online-batch-size")
    eval_episode = F32 * T * (obs + EVAL_STEP) + per_episode_lstm
    finish = [("--eval-episodes or --episode-len", cfg.eval_episodes * eval_episode),
              ("--pop-size or --eval-per-member", scoring * (F32 * T * (obs + TRAIN_STEP) + per_episode_lstm))]
    # the carry is the output of setup, the input and output of group; finish reads only the
    # parameters (jit drops the unused Adam moments)
    params_only = [(k, b / 3) for k, b in carry]
    finish.append(("--policy-hidden", pop / cfg.pop_size))   # the champions, gathered
    if forecast:   # the episodes' forecasts hold a copy of the LSTM's weights
        finish.append(("--forecast.hidden", F32 * lstm_params(f.hidden)))
    return {"setup": setup + carry, "group": group + carry + carry, "finish": finish + params_only}


def program_need(terms: list[tuple[str, float]], lanes: int, what: str, lane_option: str) -> Need:
    """``lanes`` x the terms' sum, naming the options of the largest term and ``lane_option``."""
    top = max(terms, key=lambda t: t[1])[0]
    return Need(lanes * sum(b for _, b in terms), what, f"{top} (or {lane_option})")


def run_needs(cfg) -> list[Need]:
    """Every program the modes of ``cfg`` (a :class:`~jaxtwin.coevodt.experiments.CoEvoDTConfig`)
    compile, and the sensitivity sweep when it is on."""
    runs = lanes_per_device(cfg.runs, cfg.devices)
    per = "" if runs == cfg.runs else " per device"
    needs = [program_need(terms, runs, f"coevodt {mode}: the {program} program of {runs} runs{per}", "--runs")
             for mode in cfg.modes() for program, terms in run_terms(cfg, mode).items()]
    if cfg.sensitivity:
        # the study engine shards the scenarios; each device holds all runs of its scenarios
        n = SENSITIVITY_SCENARIOS * cfg.sensitivity_runs
        lanes = lanes_per_device(SENSITIVITY_SCENARIOS, cfg.devices) * cfg.sensitivity_runs
        whole = [t for terms in run_terms(cfg, cfg.sensitivity_mode).values() for t in terms]
        needs.append(program_need(whole, lanes, f"coevodt sensitivity: {lanes} whole runs ({SENSITIVITY_SCENARIOS} "
                                         f"scenarios x {cfg.sensitivity_runs}){'' if lanes == n else ' per device'}",
                           "--sensitivity-runs"))
    return needs


def require_run_fits(cfg) -> None:
    """Refuse ``cfg`` when one of its programs cannot fit the memory (``ConfigError``)."""
    require_all_fit(run_needs(cfg))


__all__ = ["lstm_params", "policy_params", "program_need", "require_run_fits", "run_needs", "run_terms"]
