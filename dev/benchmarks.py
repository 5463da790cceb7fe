"""Performance ratios, each measured within one run on this machine.

Run with ``make benchmarks``. Timings are the best of several repeats (``time.perf_counter``);
peak memory is the largest traced allocation (``tracemalloc``, which sees NumPy buffers).
Ratios, not seconds, are the claims: both sides of each ratio run here, now.

1. exact gradient vs one policy evaluation (dense S = 2000, A = 4); and vs central differences;
2. the vectorised sampler vs a plain Gymnasium ``env.step`` loop (FrozenLake 8x8);
3. the same sampler vs drawing its random numbers alone.
"""

from __future__ import annotations

import platform
import time
import tracemalloc
import warnings

import numpy as np

import pgnotes as pg


def best_time(f, repeats: int = 5) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_mib(f) -> float:
    tracemalloc.start()
    f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def dense_mdp(S: int, A: int, rng) -> pg.TabularMDP:
    P = rng.random((S, A, S))
    P /= P.sum(axis=2, keepdims=True)
    return pg.TabularMDP(P, rng.standard_normal((S, A)), np.full(S, 1 / S), 0.99)


def gradient_vs_evaluation(rows):
    rng = np.random.default_rng(0)
    S, A = 2000, 4
    mdp = dense_mdp(S, A, rng)
    θ = rng.standard_normal((S, A))
    t_eval = best_time(lambda: pg.exact.objective(mdp, θ))
    t_grad = best_time(lambda: pg.exact.policy_gradient(mdp, θ))
    # Central differences need 2·S·A evaluations; time 8 of them and scale (16,000 would take minutes).
    probe = 8
    t_fd8 = best_time(lambda: [pg.exact.objective(mdp, θ + 1e-6) for _ in range(probe)], repeats=2)
    t_fd = t_fd8 / probe * 2 * θ.size
    rows.append(("exact ∇J / one evaluation of J (S=2000, A=4, dense)", t_grad / t_eval, "≤ 2",
                 f"{t_eval * 1e3:.0f} ms vs {t_grad * 1e3:.0f} ms",
                 f"{peak_mib(lambda: pg.exact.objective(mdp, θ)):.0f} / "
                 f"{peak_mib(lambda: pg.exact.policy_gradient(mdp, θ)):.0f} MiB"))
    rows.append(("central differences / exact ∇J (extrapolated from 8 evaluations)", t_fd / t_grad, "—",
                 f"{t_fd:.0f} s vs {t_grad:.2f} s", "—"))


def sampler_vs_gymnasium(rows):
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("FrozenLake-v1", map_name="8x8")
    mdp = pg.envs.from_gymnasium(env, 0.99)
    rng = np.random.default_rng(1)
    θ = rng.standard_normal((64, 4))
    cdf = np.cumsum(pg.softmax_policy(mdp, θ).probs, axis=1)

    steps_gym = 20_000

    def gym_loop():
        r = np.random.default_rng(2)
        u = r.random(steps_gym)
        s, _ = env.reset(seed=3)
        for i in range(steps_gym):
            a = min(int(np.searchsorted(cdf[s], u[i], side="right")), 3)
            s, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                s, _ = env.reset()

    n, T = 100_000, 100
    t_gym = best_time(gym_loop, repeats=2) / steps_gym
    t_ours = best_time(lambda: pg.sample(mdp, θ, n=n, horizon=T, rng=np.random.default_rng(4)), repeats=3) / (n * T)

    def draws_alone():
        r, u = np.random.default_rng(4), np.empty(n)
        for _ in range(T):  # the sampler's own pattern: one uniform per trajectory per step
            r.random(out=u)

    t_rng = best_time(draws_alone, repeats=3) / (n * T)
    rows.append(("sampler steps/s ÷ Gymnasium env.step loop (FrozenLake 8x8)", t_gym / t_ours, "≥ 200",
                 f"{1 / t_gym:,.0f} vs {1 / t_ours:,.0f} steps/s",
                 f"— / {peak_mib(lambda: pg.sample(mdp, θ, n=n, horizon=T, rng=np.random.default_rng(4))):.0f} MiB"))
    rows.append(("sampler time ÷ drawing its random numbers alone", t_ours / t_rng, "≤ 4",
                 f"{t_ours * 1e9:.1f} vs {t_rng * 1e9:.1f} ns/step",
                 f"{peak_mib(draws_alone):.1f} MiB for the draws"))


def main():
    rows: list[tuple] = []
    gradient_vs_evaluation(rows)
    sampler_vs_gymnasium(rows)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}")
    print()
    print("| measure | ratio | goal | raw | peak memory |")
    print("|---|---|---|---|---|")
    for name, ratio, goal, raw, mem in rows:
        print(f"| {name} | {ratio:.2f} | {goal} | {raw} | {mem} |")


if __name__ == "__main__":
    main()
