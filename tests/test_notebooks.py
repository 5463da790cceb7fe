"""The stored notebooks are executed, in order, clean, and listed in the table of contents.

nbval (``make test``) re-executes each notebook and compares outputs; this file checks what
nbval does not: that outputs were stored at all, top to bottom, and hold nothing that varies
between machines (paths, addresses, timestamps) or that nbval would compare as text (SVG).
"""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").glob("*.ipynb"))

PATH = re.compile(r"(/work/|/tmp/|/root/|/home/\w|/Users/|C:\\\\)")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
TIMESTAMP = re.compile(r"\b20\d\d-\d\d-\d\d[ T]\d\d:\d\d")


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_in_order(path):
    nb = json.loads(path.read_text())
    counts = [c.get("execution_count") for c in code_cells(nb)]
    assert counts, f"{path.name} has no code cells"
    assert None not in counts, f"{path.name}: {counts.count(None)} code cells stored unexecuted"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: cells not run top to bottom once: {counts}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_machine_independent(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(code_cells(nb)):
        assert "execution" not in cell.get("metadata", {}), (
            f"{path.name} cell {i}: execution timestamps in metadata; run tools/clean_notebook.py")
        tags = cell.get("metadata", {}).get("tags", [])
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                assert "raises-exception" in tags, f"{path.name} cell {i}: stored error {out['ename']}"
                tb = "".join(out.get("traceback", []))
                assert not PATH.search(tb), f"{path.name} cell {i}: traceback holds a machine path; print the error instead"
            if out.get("name") == "stderr":
                raise AssertionError(f"{path.name} cell {i}: stderr output (a warning?): {''.join(out['text'])[:200]}")
            data = out.get("data", {})
            assert "image/svg+xml" not in data, f"{path.name} cell {i}: SVG figure (nbval compares SVG text)"
            text = json.dumps({k: v for k, v in data.items() if not k.startswith("image/")}) + json.dumps(out.get("text", ""))
            for name, pattern in (("machine path", PATH), ("memory address", ADDRESS), ("timestamp", TIMESTAMP)):
                assert not pattern.search(text), f"{path.name} cell {i}: output holds a {name}: {pattern.search(text)[0]}"
            assert "np.float64(" not in text, f"{path.name} cell {i}: np.float64 repr in output"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"book/{path.stem}" in toc, f"{path.name} is not listed in _toc.yml"
