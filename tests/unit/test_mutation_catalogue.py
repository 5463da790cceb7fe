"""The mutation catalogue still applies: every edit matches the current code exactly once.

The mutants themselves run with ``make mutants`` (see README); this keeps the catalogue from
going stale silently when pgnotes changes.
"""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "mutation"))
from catalogue import MUTANTS  # noqa: E402


def test_at_least_twelve_mutants():
    assert len(MUTANTS) >= 12


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m["name"])
def test_mutant_edits_match_once(mutant):
    text = (ROOT / "pgnotes" / mutant["file"]).read_text()
    for old, new in mutant["edits"]:
        assert text.count(old) == 1, f"{mutant['name']}: {old!r} occurs {text.count(old)} times"
        assert old != new
