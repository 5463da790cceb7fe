r"""The command: ``python -m pgnotes.verify path/to/file.py:function``.

Loads ``function`` from the file, runs :func:`pgnotes.verify.check` on it with progress on
stderr, prints the report, and exits 0 when it is correct, 1 when it is not (or when the
function cannot be checked: the message says why), 2 on a bad command line.
Book: check your own PPO or GRPO code, ``verify-command``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import time

from .core import check


def load(target: str):
    """The function named by ``path/to/file.py:function``; ``SystemExit(2)`` with a message otherwise."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise SystemExit(f"error: expected path/to/file.py:function, got {target!r}")
    file = pathlib.Path(path)
    if not file.is_file():
        raise SystemExit(f"error: no such file: {file}")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.resolve().parent))  # the user's file may import its neighbours
    spec.loader.exec_module(module)
    if not hasattr(module, name):
        found = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_")]
        raise SystemExit(f"error: {file} defines no {name!r}; it defines {', '.join(found) or 'no functions'}")
    return getattr(module, name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgnotes.verify",
                                     description="Check a PPO/GRPO advantage or loss function against exact answers.")
    parser.add_argument("target", help="path/to/file.py:function")
    parser.add_argument("--kind", choices=("ppo", "grpo"), default=None,
                        help="force the scenario kind (default: grpo if the function takes index and no values)")
    args = parser.parse_args(argv)
    fn = load(args.target)
    start = time.perf_counter()
    try:
        report = check(fn, kind=args.kind, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, TypeError) as e:
        print(f"cannot check {args.target}: {e}", file=sys.stderr)
        return 1
    except Exception:  # the user's function itself failed: show where, in their code
        import traceback

        traceback.print_exc()
        print(f"cannot check {args.target}: the function raised the error above", file=sys.stderr)
        return 1
    print(report)
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
