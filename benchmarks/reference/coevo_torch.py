"""The Co-EvoDT protocol (spec coevodt §2-4) as a researcher would write it from
the paper in PyTorch: Python loops over runs, episodes, steps, agents and
members; one small ``torch.nn`` MLP per member with its own ``torch.optim.Adam``;
REINFORCE from log-probabilities stored during the rollout; an ``nn.LSTM``
forecaster pretrained on random-action episodes and (Online) fine-tuned every
``online_every`` episodes; evolution every ``evolve_freq`` episodes; final
greedy evaluation of the best member per agent.

Hyperparameters come from jaxtwin's :class:`~jaxtwin.coevodt.protocol.ProtocolConfig`
(same values, not the same code); the environment is
:func:`benchmarks.reference.coevo_numpy.step_numpy` (the spec's default
constants) plus :func:`reward_numpy`. Readings shared with jaxtwin so the two
compute the same thing: population std in the return normalisation, the
forecast buffer starting with ``l_0``, fitness = mean per-step reward of the
member acting greedily with the other agents random over ``eval_per_member``
episodes shared by all members (common random numbers), parents drawn from the
population before any replacement, the last group not evolved.

The deterministic pieces (:func:`env_step`, :class:`PolicyMLP`,
:func:`reinforce_update`, :func:`child_params`, :func:`tournament_winner`,
:func:`weakest`, :class:`LSTMForecasterTorch`) are separate functions so the
benchmark can check them against jaxtwin on the same inputs; the loaders
:func:`policy_from_flax` / :func:`forecaster_from_flax` copy jaxtwin
parameters into the torch modules.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from benchmarks.reference.coevo_numpy import A_P, step_numpy

N_AGENTS, N_ACTIONS = 3, 3
W_QOE, W_COST, W_LATENCY, W_PROMO = 1.1, 0.9, 0.15, 0.6
MODES = ("NoPred", "PretrainOnly", "Online")


# ------------------------------------------------------------------ environment
def reward_numpy(qoe, cost, latency, promo):
    """The shared reward ``1.1 qoe - 0.9 cost - 0.15 latency - 0.6 promo`` (all agents)."""
    return W_QOE * qoe - W_COST * cost - W_LATENCY * latency - W_PROMO * promo


def env_step(state, action, z):
    """One step: ``state = (v, l, c, q)``, ``action`` three ints, ``z`` four standard normals.

    Returns ``(next_state, reward, (qoe, latency, cost))``.
    """
    v, l, c, q = state
    v2, l2, c2, qoe, lat, cost = step_numpy(v, l, c, q, action, z)
    return (v2, l2, c2, q), reward_numpy(qoe, cost, lat, A_P * action[0]), (qoe, lat, cost)


# ------------------------------------------------------------------ networks
class PolicyMLP(nn.Module):
    """``obs -> 64 -> ReLU -> 32 -> ReLU -> 3`` logits (the paper's PolicyNet)."""

    def __init__(self, obs_dim: int, hidden=(64, 32), n_actions: int = N_ACTIONS):
        super().__init__()
        layers, width = [], obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class LSTMForecasterTorch(nn.Module):
    """``nn.LSTM(1, hidden)`` over a window of (scaled) loads -> ``nn.Linear(hidden, 1)``."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(windows.unsqueeze(-1))
        return self.head(out[:, -1, :]).squeeze(-1)


def _t(x) -> torch.Tensor:
    return torch.tensor(np.array(x), dtype=torch.float32)


def policy_from_flax(flax_params, obs_dim: int, hidden=(64, 32)) -> PolicyMLP:
    """A :class:`PolicyMLP` holding jaxtwin ``PolicyNet`` parameters (Dense kernels transposed)."""
    net = PolicyMLP(obs_dim, hidden)
    p = flax_params["params"]
    linears = [m for m in net.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            lin.weight.copy_(_t(p[f"Dense_{i}"]["kernel"]).T)
            lin.bias.copy_(_t(p[f"Dense_{i}"]["bias"]))
    return net


def forecaster_from_flax(flax_params, hidden: int = 32) -> LSTMForecasterTorch:
    """An :class:`LSTMForecasterTorch` holding jaxtwin ``LSTMForecaster`` parameters.

    flax keeps per-gate input kernels ``i{g}`` (no bias) and recurrent kernels
    ``h{g}`` (with bias), gates ``i, f, g, o`` — PyTorch's order.
    """
    model = LSTMForecasterTorch(hidden)
    cell = flax_params["params"]["OptimizedLSTMCell_0"]
    gates = "ifgo"
    with torch.no_grad():
        model.lstm.weight_ih_l0.copy_(torch.cat([_t(cell[f"i{g}"]["kernel"]).T for g in gates]))
        model.lstm.weight_hh_l0.copy_(torch.cat([_t(cell[f"h{g}"]["kernel"]).T for g in gates]))
        model.lstm.bias_hh_l0.copy_(torch.cat([_t(cell[f"h{g}"]["bias"]) for g in gates]))
        model.lstm.bias_ih_l0.zero_()
        model.head.weight.copy_(_t(flax_params["params"]["Dense_0"]["kernel"]).T)
        model.head.bias.copy_(_t(flax_params["params"]["Dense_0"]["bias"]))
    return model


def make_adam(params, cfg) -> torch.optim.Adam:
    """A fresh Adam with the protocol's lr/betas/eps."""
    return torch.optim.Adam(params, lr=cfg.policy_lr, betas=(cfg.adam_b1, cfg.adam_b2), eps=cfg.adam_eps)


# ------------------------------------------------------------------ REINFORCE
def normalised_returns(rewards, gamma: float) -> torch.Tensor:
    """Discounted returns normalised over the episode (population std, like jaxtwin)."""
    g, running = [], 0.0
    for r in reversed(list(np.asarray(rewards, np.float64))):
        running = r + gamma * running
        g.append(running)
    g = torch.tensor(g[::-1], dtype=torch.float32)
    return (g - g.mean()) / (g.std(unbiased=False) + 1e-8)


def reinforce_update(net: PolicyMLP, opt: torch.optim.Optimizer, log_probs: torch.Tensor,
                     rewards, gamma: float, max_grad_norm: float | None = None) -> float:
    """One step on ``-(1/T) sum_t log pi(a_t|s_t) G~_t``; ``log_probs`` carry the graph."""
    loss = -(log_probs * normalised_returns(rewards, gamma)).mean()
    opt.zero_grad()
    loss.backward()
    if max_grad_norm is not None:
        nn.utils.clip_grad_norm_(net.parameters(), max_grad_norm)
    opt.step()
    return loss.detach().item()


# ------------------------------------------------------------------ evolution
def tournament_winner(scores, entrants) -> int:
    """The entrant with the highest score (first on ties)."""
    entrants = list(entrants)
    return int(entrants[int(np.argmax([scores[e] for e in entrants]))])


def weakest(scores, n: int) -> np.ndarray:
    """Indices of the ``n`` lowest scores (stable: ties by index)."""
    return np.argsort(np.asarray(scores), kind="stable")[:n]


def child_params(parent_a: nn.Module, parent_b: nn.Module, noise: list[torch.Tensor], std: float) -> list[torch.Tensor]:
    """``mean(a, b) + std * noise`` for every parameter (noise in ``parameters()`` order)."""
    with torch.no_grad():
        return [0.5 * (pa + pb) + std * z for pa, pb, z in
                zip(parent_a.parameters(), parent_b.parameters(), noise)]


# ------------------------------------------------------------------ forecasting
def make_windows(loads: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows over each episode's loads, episode by episode."""
    xs, ys = [], []
    for ep in loads:
        for s in range(len(ep) - window):
            xs.append(ep[s:s + window])
            ys.append(ep[s + window])
    return np.asarray(xs, np.float32), np.asarray(ys, np.float32)


def fit_lstm(model: LSTMForecasterTorch, x: np.ndarray, y: np.ndarray, *, lr: float, epochs: int,
             batch_size: int, gen: torch.Generator) -> list[float]:
    """Adam on shuffled minibatches (the last incomplete batch dropped, as jaxtwin); epoch losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    bs = min(batch_size, len(x))
    n_batches = max(len(x) // batch_size, 1)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for b in range(n_batches):
            idx = perm[b * bs:(b + 1) * bs]
            loss = ((model(xt[idx]) - yt[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach().item()
        losses.append(total / n_batches)
    return losses


class Forecaster:
    """The LSTM with the training min-max range; forecasts feed the policies' state."""

    def __init__(self, model: LSTMForecasterTorch, lo: float, hi: float, window: int):
        self.model, self.lo, self.hi, self.window = model, lo, hi, window
        self.span = max(hi - lo, 1e-8)

    def scale(self, v):
        return (np.asarray(v, np.float32) - self.lo) / self.span

    def predict(self, windows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            unit = self.model(torch.from_numpy(self.scale(windows).astype(np.float32))).numpy()
        return self.lo + unit * self.span

    def feature(self, loads: list[float]) -> float:
        """Normalised forecast in [0, 1]; the last load until ``window`` loads exist."""
        if len(loads) >= self.window:
            raw = float(self.predict(np.asarray(loads[-self.window:], np.float32)[None])[0])
        else:
            raw = loads[-1]
        return float(np.clip((raw - self.lo) / self.span, 0.0, 1.0))


def pretrain_forecaster(loads: np.ndarray, fcfg, gen: torch.Generator) -> tuple[Forecaster, dict]:
    """Train on the 70% split of the baseline windows; RMSE of LSTM / naive / AR(1) / exp. smoothing."""
    x, y = make_windows(loads, fcfg.window)
    n = len(x)
    n_tr, n_va = int(fcfg.train_frac * n), int(fcfg.val_frac * n)
    x_tr, y_tr, x_te, y_te = x[:n_tr], y[:n_tr], x[n_tr + n_va:], y[n_tr + n_va:]
    lo = float(min(x_tr.min(), y_tr.min()))
    hi = float(max(x_tr.max(), y_tr.max()))
    fc = Forecaster(LSTMForecasterTorch(fcfg.hidden), lo, hi, fcfg.window)
    losses = fit_lstm(fc.model, fc.scale(x_tr), fc.scale(y_tr), lr=fcfg.lr, epochs=fcfg.epochs,
                      batch_size=fcfg.batch_size, gen=gen)
    b1, b0 = np.polyfit(x_tr[:, -1], y_tr, 1)
    level = x_te[:, 0].copy()
    for t in range(1, fcfg.window):
        level = fcfg.exp_alpha * x_te[:, t] + (1 - fcfg.exp_alpha) * level
    preds = {"lstm": fc.predict(x_te), "naive": x_te[:, -1], "ar1": b0 + b1 * x_te[:, -1],
             "exp_smoothing": level}
    rmse = {k: float(np.sqrt(np.mean((p - y_te) ** 2))) for k, p in preds.items()}
    return fc, dict(rmse=rmse, train_loss=losses)


def finetune_forecaster(fc: Forecaster, loads: np.ndarray, fcfg, gen: torch.Generator) -> None:
    """Online update on the last episodes' loads: fresh Adam at ``online_lr``, ``online_epochs``."""
    x, y = make_windows(loads, fcfg.window)
    fit_lstm(fc.model, fc.scale(x), fc.scale(y), lr=fcfg.online_lr, epochs=fcfg.online_epochs,
             batch_size=fcfg.batch_size, gen=gen)


# ------------------------------------------------------------------ episodes
def play_episode(rng: np.random.Generator, cfg, choose: Callable, forecaster: Forecaster | None):
    """One episode; ``choose(obs_tensor) -> list of 3 actions`` (may record log-probs itself).

    Returns per-step rewards and the per-episode means of qoe, latency, cost, and the loads.
    """
    v, l, q = rng.uniform(size=3)
    state = (v, l, 0.5, q)
    loads = [l]
    rewards, qoe_s, lat_s, cost_s = [], [], [], []
    for t in range(cfg.episode_len):
        obs = [state[0], state[1], state[2], state[3], t / cfg.episode_len]
        if forecaster is not None:
            obs.append(forecaster.feature(loads))
        action = choose(torch.tensor(obs, dtype=torch.float32))
        z = rng.standard_normal(4)
        state, r, (qoe, lat, cost) = env_step(state, action, z)
        loads.append(state[1])
        rewards.append(r)
        qoe_s.append(qoe)
        lat_s.append(lat)
        cost_s.append(cost)
    return dict(rewards=np.asarray(rewards), qoe=float(np.mean(qoe_s)), latency=float(np.mean(lat_s)),
                cost=float(np.mean(cost_s)), loads=np.asarray(loads[1:], np.float32))


def random_chooser(rng: np.random.Generator):
    """All three agents uniformly random."""
    return lambda obs: [int(a) for a in rng.integers(0, N_ACTIONS, size=N_AGENTS)]


def greedy(net: PolicyMLP, obs: torch.Tensor) -> int:
    """``argmax`` of the logits."""
    with torch.no_grad():
        return int(torch.argmax(net(obs)))


def score_population(populations, cfg, forecaster, rng: np.random.Generator) -> np.ndarray:
    """Fitness ``[agent, member]``: the member greedy, the others random, shared episode seeds."""
    seeds = rng.integers(0, 2**31 - 1, size=cfg.eval_per_member)
    scores = np.zeros((N_AGENTS, cfg.pop_size))
    for agent in range(N_AGENTS):
        for m, net in enumerate(populations[agent]):
            total = 0.0
            for s in seeds:
                erng = np.random.default_rng(int(s))

                def choose(obs, net=net, agent=agent, erng=erng):
                    acts = [int(a) for a in erng.integers(0, N_ACTIONS, size=N_AGENTS)]
                    acts[agent] = greedy(net, obs)
                    return acts

                total += play_episode(erng, cfg, choose, forecaster)["rewards"].mean()
            scores[agent, m] = total / cfg.eval_per_member
    return scores


def evolve(populations, optimizers, scores, cfg, obs_dim: int, rng: np.random.Generator) -> None:
    """Tournament, parent averaging, Gaussian mutation; children replace the weakest, fresh Adam."""
    for agent in range(N_AGENTS):
        pop = populations[agent]
        children = []
        for _ in range(cfg.n_replace):
            pa, pb = (tournament_winner(scores[agent], rng.choice(cfg.pop_size, cfg.tournament_k, replace=False))
                      for _ in range(2))
            noise = [torch.randn_like(p) for p in pop[pa].parameters()]
            children.append(child_params(pop[pa], pop[pb], noise, cfg.mutation_std))
        for slot, params in zip(weakest(scores[agent], cfg.n_replace), children):
            net = PolicyMLP(obs_dim, cfg.policy_hidden)
            with torch.no_grad():
                for p, new in zip(net.parameters(), params):
                    p.copy_(new)
            pop[slot] = net
            optimizers[agent][slot] = make_adam(net.parameters(), cfg)


# ------------------------------------------------------------------ one run
def run_protocol(cfg, mode: str, seed: int, progress: Callable[[str], None] | None = None) -> dict:
    """One run of the whole protocol (spec §4); ``cfg`` is a jaxtwin ``ProtocolConfig``.

    Returns the baseline and trained per-episode metrics, the forecaster RMSEs,
    per-episode training rewards, final scores and wall-time per phase.
    """
    import time

    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: must be one of {MODES}")
    fcfg = cfg.forecast
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    timing, t0 = {}, time.perf_counter()

    # 1-2. random baseline
    base = [play_episode(rng, cfg, random_chooser(rng), None) for _ in range(cfg.baseline_episodes)]
    baseline = {m: np.array([e[m] for e in base]) for m in ("qoe", "latency", "cost")}
    timing["baseline"] = time.perf_counter() - t0

    # 3. forecaster
    t1 = time.perf_counter()
    forecaster, lstm_report = None, None
    if mode != "NoPred":
        forecaster, lstm_report = pretrain_forecaster(np.stack([e["loads"] for e in base]), fcfg, gen)
    timing["pretrain"] = time.perf_counter() - t1

    # 4. MARL with co-evolution
    t1 = time.perf_counter()
    obs_dim = 6 if mode != "NoPred" else 5
    populations = [[PolicyMLP(obs_dim, cfg.policy_hidden) for _ in range(cfg.pop_size)] for _ in range(N_AGENTS)]
    optimizers = [[make_adam(net.parameters(), cfg) for net in pop] for pop in populations]
    mean_rewards, recent_loads, evo_time, ft_time = [], [], 0.0, 0.0
    for ep in range(cfg.episodes):
        members = rng.integers(0, cfg.pop_size, size=N_AGENTS)
        nets = [populations[i][members[i]] for i in range(N_AGENTS)]
        log_probs = [[] for _ in range(N_AGENTS)]

        def choose(obs):
            acts = []
            for i, net in enumerate(nets):
                dist = torch.distributions.Categorical(logits=net(obs))
                a = dist.sample()
                log_probs[i].append(dist.log_prob(a))
                acts.append(int(a))
            return acts

        out = play_episode(rng, cfg, choose, forecaster)
        for i in range(N_AGENTS):
            reinforce_update(nets[i], optimizers[i][members[i]], torch.stack(log_probs[i]),
                             out["rewards"], cfg.gamma, cfg.max_grad_norm)
        mean_rewards.append(out["rewards"].mean())
        recent_loads.append(out["loads"])
        if mode == "Online" and (ep + 1) % fcfg.online_every == 0:
            t2 = time.perf_counter()
            finetune_forecaster(forecaster, np.stack(recent_loads[-fcfg.online_every:]), fcfg, gen)
            ft_time += time.perf_counter() - t2
        if (ep + 1) % cfg.evolve_freq == 0 and ep + 1 < cfg.episodes:
            t2 = time.perf_counter()
            scores = score_population(populations, cfg, forecaster, rng)
            evolve(populations, optimizers, scores, cfg, obs_dim, rng)
            evo_time += time.perf_counter() - t2
            if progress:
                progress(f"episode {ep + 1}/{cfg.episodes}")
    timing["train_total"] = time.perf_counter() - t1
    timing["evolution"], timing["finetune"] = evo_time, ft_time
    timing["train_episodes"] = timing["train_total"] - evo_time - ft_time

    # 5. final greedy evaluation of the best member per agent
    t1 = time.perf_counter()
    final_scores = score_population(populations, cfg, forecaster, rng)
    best = final_scores.argmax(axis=1)
    champions = [populations[i][best[i]] for i in range(N_AGENTS)]
    evals = [play_episode(rng, cfg, lambda obs: [greedy(n, obs) for n in champions], forecaster)
             for _ in range(cfg.eval_episodes)]
    trained = {m: np.array([e[m] for e in evals]) for m in ("qoe", "latency", "cost")}
    timing["final"] = time.perf_counter() - t1
    timing["total"] = time.perf_counter() - t0

    w = cfg.convergence_window
    delta = float(np.mean(mean_rewards[-w:]) - np.mean(mean_rewards[-2 * w:-w]))
    return dict(baseline=baseline, trained=trained, forecast=lstm_report, mean_reward=np.asarray(mean_rewards),
                final_scores=final_scores, best=best, convergence_delta=delta,
                converged=abs(delta) < cfg.convergence_tol, timing=timing)


def run_many(cfg, mode: str, seeds, progress=None) -> list[dict]:
    """Runs one after another (a Python loop over runs, as in the paper)."""
    return [run_protocol(cfg, mode, int(s), progress) for s in seeds]


def episodes_per_run(cfg, mode: str) -> int:
    """Environment episodes one run plays (baseline, training, evolution scoring, final)."""
    n_evo = cfg.episodes // cfg.evolve_freq - 1  # the last group is not evolved
    scoring = N_AGENTS * cfg.pop_size * cfg.eval_per_member
    return cfg.baseline_episodes + cfg.episodes + (n_evo + 1) * scoring + cfg.eval_episodes

