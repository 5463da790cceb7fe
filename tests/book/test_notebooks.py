"""The stored notebooks are executed, in order, clean, and listed in the table of contents.

nbval (``make test``) re-executes each notebook and compares outputs; this file checks what
nbval does not: that outputs were stored at all, top to bottom, and hold nothing that varies
between machines (paths, addresses, timestamps) or that nbval would compare as text (SVG);
and the mechanical conventions of CONTRIBUTING.md: every checking cell labelled identity or
evidence, code lines of at most 88 characters, cells of at most 30 lines, glue-only cells
hidden. Each check is parametrised per notebook, so a failure names its file.
"""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
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
            f"{path.name} cell {i}: execution timestamps in metadata; run dev/clean_notebook.py")
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


# --- The conventions of CONTRIBUTING.md that a machine can check (issue 10) -----------------

MAX_LINE = 88
MAX_CELL_LINES = 30
KINDS = ("identity", "evidence")
ASSERT = re.compile(r"^\s*assert\b", re.M)


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _is_glue_call(node):
    """True for a statement that only calls ``glue(...)`` (or a loop of nothing else)."""
    import ast

    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        f = node.value.func
        return (isinstance(f, ast.Name) and f.id == "glue") or (
            isinstance(f, ast.Attribute) and f.attr == "glue")
    if isinstance(node, ast.For):
        return all(_is_glue_call(n) for n in node.body) and not node.orelse
    return False


def _only_glue(source):
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(_is_glue_call(n) for n in body)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checking_cells_say_identity_or_evidence(path):
    """A cell with an ``assert`` carries exactly one tag, identity or evidence, and opens with
    the matching ``# identity: …`` / ``# evidence: …`` comment (CONTRIBUTING.md)."""
    nb = json.loads(path.read_text())
    bad = []
    for i, cell in enumerate(code_cells(nb)):
        src = "".join(cell["source"])
        if not ASSERT.search(src):
            continue
        kinds = [k for k in KINDS if k in _tags(cell)]
        first = src.lstrip().split("\n", 1)[0]
        if len(kinds) != 1:
            bad.append(f"code cell {i}: tags {kinds or 'none'}, need exactly one of {KINDS}")
        elif not first.startswith(f"# {kinds[0]}: "):
            bad.append(f"code cell {i}: tagged {kinds[0]}, first line must be "
                       f"'# {kinds[0]}: …', got {first[:40]!r}")
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_fits_the_page(path):
    """No code line is wider than MAX_LINE (88) characters and no code cell longer than
    MAX_CELL_LINES (30) lines: longer logic belongs in ``pgnotes``."""
    nb = json.loads(path.read_text())
    bad = []
    for i, cell in enumerate(code_cells(nb)):
        lines = "".join(cell["source"]).rstrip("\n").split("\n")
        wide = [n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE]
        if wide:
            bad.append(f"code cell {i}: lines {wide} exceed {MAX_LINE} characters")
        if len(lines) > MAX_CELL_LINES:
            bad.append(f"code cell {i}: {len(lines)} lines, more than {MAX_CELL_LINES}")
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_glue_cells_are_hidden(path):
    """A cell made only of ``glue(...)`` calls is plumbing: it is tagged ``remove-cell``."""
    nb = json.loads(path.read_text())
    bad = [f"code cell {i}: only glue calls, not tagged remove-cell"
           for i, cell in enumerate(code_cells(nb))
           if _only_glue("".join(cell["source"])) and "remove-cell" not in _tags(cell)]
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


def test_the_conventions_checks_can_fail():
    """The three checks above reject a notebook that breaks each rule."""
    assert _only_glue('glue("a", "1", display=False)\nfor k in "ab":\n    glue(k, k)')
    assert not _only_glue('x = 1\nglue("a", f"{x}", display=False)')
    assert not _only_glue("")
    assert ASSERT.search("x = 1\n    assert x") and not ASSERT.search("# no assert here")


PROOF = re.compile(r"^(`{3,}|:{3,})\{prf:proof\}[^\n]*\n", re.M)
OPTION = re.compile(r"^:[\w-]+:")
LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s")


def _proofs_opening_with_a_list(source):
    """The first non-empty content line of each prf:proof that is a list item.

    sphinx-proof puts "Proof." before the first line of the proof, so a list there becomes
    a run-on paragraph ("Proof. 1. … 2. …"): a proof starts with a sentence.
    """
    bad = []
    for m in PROOF.finditer(source):
        for line in source[m.end():].splitlines():
            if not line.strip() or OPTION.match(line.strip()):
                continue
            if LIST_ITEM.match(line):
                bad.append(line.strip()[:60])
            break
    return bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_proofs_start_with_a_sentence(path):
    nb = json.loads(path.read_text())
    bad = [f"markdown cell {i}: prf:proof opens with a list item: {line!r}"
           for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
           for line in _proofs_opening_with_a_list("".join(cell["source"]))]
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


def test_the_proof_check_can_fail():
    assert _proofs_opening_with_a_list("```{prf:proof}\n\n1. first\n2. second\n```")
    assert _proofs_opening_with_a_list("```{prf:proof}\n:label: p\n- first\n```")
    assert not _proofs_opening_with_a_list("```{prf:proof}\n\nIn two steps.\n\n1. a\n2. b\n```")
