"""The argument conventions of ``pgnotes/__init__.py`` ("Conventions"), checked on every public function.

A new function that takes ``(batch, mdp, θ)``, a positional ``features`` or ``horizon``, or a
Greek keyword fails here, so the rule stays without exceptions.
"""

import importlib
import inspect
import pkgutil

import pytest

import pgnotes

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(pgnotes.__path__, "pgnotes.")
    if not name.rsplit(".", 1)[-1].startswith("_")
)
#: Keyword-only parameters that may keep the book's letter (rule 4: an optional ``θ``).
GREEK_KEYWORDS = {"θ"}
MODELS = {"mdp", "tmdp"}


def public_functions():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            f = getattr(module, attr)
            if inspect.isfunction(f) and f.__module__.startswith("pgnotes"):  # classes are records
                yield f"{name}.{attr}", f


FUNCTIONS = dict(public_functions())


def test_there_are_functions_to_check():
    assert len(FUNCTIONS) > 90 and "pgnotes.estimators.gae" in FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_argument_conventions(name):
    params = inspect.signature(FUNCTIONS[name]).parameters.values()
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keywords = [p.name for p in params if p.kind == p.KEYWORD_ONLY]
    assert "features" not in positional, f"{name}: features must be keyword-only (rule 1)"
    if positional[:1] in (["mdp"], ["tmdp"]):  # a function of a model (envs' constructors build one)
        for size in ("horizon", "T", "n", "rng"):
            assert size not in positional, f"{name}: {size} must be keyword-only (rule 1)"
    if "batch" in positional and MODELS & set(positional):
        model = next(m for m in positional if m in MODELS)
        assert positional.index(model) < positional.index("batch"), f"{name}: the model comes first (rule 1)"
        if "θ" in positional:
            assert positional.index("θ") < positional.index("batch"), f"{name}: θ comes before the data (rule 1)"
    if "θ_old" in positional and "θ" in positional:
        assert positional.index("θ") < positional.index("θ_old"), f"{name}: θ_old follows θ (rule 1)"
    greek = [k for k in keywords if not k.isascii() and k not in GREEK_KEYWORDS]
    assert not greek, f"{name}: keyword-only {greek} must be ASCII words (rule 4)"
    for size in ("vocab_size", "G"):  # V and P are the maths (values, transitions), never sizes
        assert size not in positional + keywords, f"{name}: {size} as a size collides with the notation (rule 3)"
