"""Wall time of ``python -m pgnotes.verify`` on a numpy and a PyTorch function, measured in this run.

Run with ``make verify-bench`` (or ``.venv/bin/python dev/verify_cli.py``). Each command
runs as a fresh subprocess, as a user would start it, from a temporary directory outside the
repository; the claim is that each finishes within 60 s on this 2-core machine. Printed: the
seconds of each run, and the ratio of each to the time of ``python -c "import pgnotes"`` (the
fixed start-up cost) measured in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

NUMPY = '''
import numpy as np

def ppo_loss(log_prob, old_log_prob, ref_log_prob, token_level_scores, values, response_mask, kl_coef, lam,
             cliprange):
    r = (token_level_scores - kl_coef * (old_log_prob - ref_log_prob)) * response_mask
    N, T = r.shape
    A, last = np.zeros((N, T)), np.zeros(N)
    for t in reversed(range(T)):
        nxt = values[:, t + 1] if t < T - 1 else 0.0
        last = r[:, t] + nxt - values[:, t] + lam * last
        A[:, t] = last
    A = A * response_mask
    ratio = np.exp(log_prob - old_log_prob)
    loss = np.maximum(-A * ratio, -A * np.clip(ratio, 1 - cliprange, 1 + cliprange))
    return (loss * response_mask).sum() / response_mask.sum()
'''

TORCH = '''
import functools
import numpy as np
import torch

def torch_fn(f):
    @functools.wraps(f)
    def g(**kw):
        return f(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
    return g

@torch_fn
def ppo_loss(log_prob, old_log_prob, ref_log_prob, token_level_scores, values, response_mask, kl_coef, lam,
             cliprange):
    with torch.no_grad():
        r = (token_level_scores - kl_coef * (old_log_prob - ref_log_prob)) * response_mask
        last, out = 0.0, []
        for t in reversed(range(r.shape[1])):
            nxt = values[:, t + 1] if t < r.shape[1] - 1 else 0.0
            last = r[:, t] + nxt - values[:, t] + lam * last
            out.append(last)
        A = torch.stack(out[::-1], 1) * response_mask
    ratio = torch.exp(log_prob - old_log_prob)
    loss = torch.maximum(-A * ratio, -A * torch.clamp(ratio, 1 - cliprange, 1 + cliprange))
    return (loss * response_mask).sum() / response_mask.sum()
'''


def timed(cmd, cwd) -> tuple[float, int]:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, run.returncode


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "numpy_impl.py").write_text(textwrap.dedent(NUMPY))
        (tmp / "torch_impl.py").write_text(textwrap.dedent(TORCH))
        base, _ = timed([sys.executable, "-c", "import pgnotes"], tmp)
        print(f"python -c 'import pgnotes': {base:.1f} s")
        for name in ("numpy_impl", "torch_impl"):
            seconds, code = timed([sys.executable, "-m", "pgnotes.verify", f"{name}.py:ppo_loss"], tmp)
            print(f"python -m pgnotes.verify {name}.py:ppo_loss: {seconds:.1f} s (exit {code}), "
                  f"{seconds / base:.0f}x the import, {'within' if seconds < 60 else 'OVER'} 60 s")


if __name__ == "__main__":
    main()
