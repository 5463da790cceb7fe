"""Deliberate derivation bugs, one per mutant, each a set of exact text replacements in pgnotes.

A mutant names the maths it breaks. ``run.py`` applies one at a time to a copy of the package
and expects the unit tests or a notebook cell to go red. A surviving mutant is a missing
check: add the check, not an exception.
"""

MUTANTS = [
    {
        "name": "drop γ^t from the return-to-go",
        "file": "estimators.py",
        "edits": [("return G * discounts(batch) if from_time_zero else G", "return G")],
    },
    {
        "name": "d^γ used where η belongs in ∇J",
        "file": "exact/_evaluation.py",
        "edits": [("return ev.policy.score_contract(ev.η[:, None] * ev.π * ev.Q)",
                   "return ev.policy.score_contract((1 - mdp.gamma) * ev.η[:, None] * ev.π * ev.Q)")],
    },
    {
        "name": "off-by-one in G_t (r_t left out)",
        "file": "estimators.py",
        "edits": [("        acc = x[..., t] + c[..., t] * acc\n        y[..., t] = acc",
                   "        y[..., t] = c[..., t] * acc\n        acc = x[..., t] + c[..., t] * acc")],
    },
    {
        "name": "a baseline that depends on the action",
        "file": "estimators.py",
        "edits": [('base = _at(b, batch, batch.states, "b", lead=1) * discounts(batch)',
                   'base = (_at(b, batch, batch.states, "b", lead=1) + 0.5 * batch.actions) * discounts(batch)')],
    },
    {
        "name": "sign flip in the tabular score",
        "file": "policy.py",
        "edits": [("G = W - self.probs * W.sum(axis=1, keepdims=True)",
                   "G = self.probs * W.sum(axis=1, keepdims=True) - W")],
    },
    {
        "name": "sign flip in the sampled score",
        "file": "policy.py",
        "edits": [("return indicator - per_state[:, :, None] * self.probs[None]",
                   "return per_state[:, :, None] * self.probs[None] - indicator")],
    },
    {
        "name": "P_π transposed",
        "file": "exact/_evaluation.py",
        "edits": [('    P_π = np.einsum("sa,sax->sx", π, mdp.P)\n    r_π',
                   '    P_π = np.einsum("sa,sax->sx", π, mdp.P).T\n    r_π')],
    },
    {
        "name": "ρ0 ignored (uniform start) in η",
        "file": "exact/_evaluation.py",
        "edits": [("lu_solve(lu, mdp.rho0[live], trans=1, check_finite=False)",
                   "lu_solve(lu, np.full(live.size, 1.0 / live.size), trans=1, check_finite=False)")],
    },
    {
        "name": "advantage computed as Q − max_a Q",
        "file": "exact/_evaluation.py",
        "edits": [("A = Q - V[:, None]", "A = Q - Q.max(axis=1, keepdims=True)")],
    },
    {
        "name": "GAE: λ and γ swapped in the TD error",
        "file": "estimators.py",
        "edits": [("    δ = td_errors(mdp, batch, V)\n    return discount_cumsum",
                   "    import dataclasses\n    δ = td_errors(mdp, dataclasses.replace(batch, gamma=λ), V)\n    return discount_cumsum")],
    },
    {
        "name": "token-level GAE ignores λ (always Monte Carlo returns)",
        "file": "ppo.py",
        "edits": [("discount_cumsum(δ, lam)", "discount_cumsum(δ, 1.0)")],
    },
    {
        "name": "central differences with the wrong step",
        "file": "reference.py",
        "edits": [("/ (2 * h)", "/ h")],
    },
    {
        "name": "Monte Carlo reuses one random stream (ignores rng)",
        "file": "sampling.py",
        "edits": [("    rng = check_rng(rng)\n", "    rng = check_rng(rng)\n    rng = np.random.default_rng(0)\n")],
    },
    {
        "name": "Monte Carlo reuses one uniform for every step",
        "file": "sampling.py",
        "edits": [("        rng.random(out=u)\n", "        rng.random(out=u) if t == 0 else np.divide(u, M, out=u)\n")],
    },
    {
        "name": "occupancy not normalised",
        "file": "exact/_evaluation.py",
        "edits": [("return (1.0 - mdp.gamma) * visit_counts(mdp, θ, features=features)", "return visit_counts(mdp, θ, features=features)")],
    },
    {
        "name": "k-step transitions off by one",
        "file": "exact/_evaluation.py",
        "edits": [("matrix_power(policy_matrix(mdp, θ, features=features), k)", "matrix_power(policy_matrix(mdp, θ, features=features), k + 1)")],
    },
    {
        "name": "finite horizon: backward recursion forgets γ",
        "file": "finite.py",
        "edits": [("Q[t] = mdp.R + mdp.gamma * (mdp.P @ V[t + 1])", "Q[t] = mdp.R + (mdp.P @ V[t + 1])")],
    },
]
