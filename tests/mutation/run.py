"""Apply each mutant of ``catalogue.py`` to a copy of pgnotes and see which check catches it.

Usage: ``make mutants`` (or ``python tests/mutation/run.py [--only SUBSTRING]``).

For each mutant: copy ``pgnotes/`` to a temporary folder, apply the edits (each must match
exactly once, so a stale catalogue fails loudly), put that folder first on ``PYTHONPATH``
(the nbval kernels inherit it), then run the unit tests and, if they pass, nbval over
``book/``, both stopping at the first failure. A baseline run without a mutant must pass first,
so that a failure is the mutant's doing. Prints a Markdown table and exits 1 if any
mutant survives.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "mutation"))
from catalogue import MUTANTS  # noqa: E402

FAILED = re.compile(r"^FAILED (\S+)", re.M)


def apply(mutant: dict, where: pathlib.Path) -> None:
    path = where / "pgnotes" / mutant["file"]
    text = path.read_text()
    for old, new in mutant["edits"]:
        n = text.count(old)
        if n != 1:
            raise SystemExit(f"mutant {mutant['name']!r}: the text to replace occurs {n} times in {mutant['file']}")
        text = text.replace(old, new)
    path.write_text(text)


def first_failure(cmd: list[str], env: dict) -> str | None:
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode == 0:
        return None
    m = FAILED.search(out.stdout)
    if m:
        return m[1]
    tail = (out.stdout + out.stderr).strip().splitlines()[-3:]
    return "error: " + " | ".join(tail)[:120]


def run_checks(mutant: dict, python: str) -> str | None:
    """The first check that fails with ``mutant`` applied, or None if all pass."""
    with tempfile.TemporaryDirectory() as tmp:
        where = pathlib.Path(tmp)
        shutil.copytree(ROOT / "pgnotes", where / "pgnotes", ignore=shutil.ignore_patterns("__pycache__"))
        apply(mutant, where)
        # -P: "python -m" would otherwise put the repo (and its unmutated pgnotes) first on sys.path.
        env = dict(os.environ, PYTHONPATH=str(where), PYTHONDONTWRITEBYTECODE="1")
        caught = first_failure([python, "-P", "-m", "pytest", "tests/unit", "-x", "-q", "-p", "no:cacheprovider",
                                "--ignore=tests/unit/test_mutation_catalogue.py"], env)
        if caught is None:
            caught = first_failure([python, "-P", "-m", "pytest", "--nbval", "--nbval-current-env",
                                    "--nbval-sanitize-with=book/sanitize.cfg", "book", "-x", "-q",
                                    "-p", "no:cacheprovider"], env)
        return caught


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="run the mutants whose name contains this")
    args = ap.parse_args()
    python = sys.executable
    rows, survived = [], 0
    baseline = run_checks({"name": "baseline (no mutant)", "file": "mdp.py", "edits": []}, python)
    if baseline is not None:
        raise SystemExit(f"the checks fail without any mutant ({baseline}); fix that first")
    for mutant in MUTANTS:
        if args.only not in mutant["name"]:
            continue
        t0 = time.perf_counter()
        caught = run_checks(mutant, python)
        dt = time.perf_counter() - t0
        survived += caught is None
        rows.append((mutant["name"], caught or "**SURVIVED**", dt))
        print(f"{mutant['name']}: {caught or 'SURVIVED'} ({dt:.0f} s)", file=sys.stderr, flush=True)
    print("| mutant | caught by | time |")
    print("|---|---|---|")
    for name, caught, dt in rows:
        print(f"| {name} | `{caught}` | {dt:.0f} s |")
    print(f"\n{len(rows) - survived} of {len(rows)} mutants caught.")
    print(f"mutants: {len(rows) - survived} passed, {survived} failed")  # a caught mutant is a pass
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
