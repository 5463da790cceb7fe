"""Every book label or chapter that a ``pgnotes`` docstring cites exists in the book.

Docstrings say where the book derives what a function computes, in one form::

    Book: derivation B, ``b-eta`` (book/02_derivation_b.ipynb).

The text after ``Book:``, up to the end of its paragraph, is a *citation*: it starts
with a chapter name (up to the first comma, parenthesis or full stop) and may name
labels in double backticks and notebook paths. This test collects what the book
defines and fails, naming the module, the function and the reference, on every citation
that points nowhere:

- a label (a lower-case prefix and words joined by hyphens, ``lab-*`` for a family)
  that no ``$$ … $$ (label)``, ``:label:`` or ``(label)=`` target of ``book/`` defines;
- a chapter name that is not the start of exactly one chapter's title (``derivation B``
  for "Derivation B: the standard policy gradient theorem") or a chapter's file name;
- a path ``book/….ipynb`` that does not exist.
"""

import ast
import json
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
PACKAGE = ROOT / "pgnotes"

EQ_LABEL = re.compile(r"\$\$\s*\(([\w-]+)\)")
DIRECTIVE_LABEL = re.compile(r"^\s*:label:\s*([\w-]+)\s*$", re.M)
TARGET = re.compile(r"^\(([\w-]+)\)=\s*$", re.M)
CITED_LABEL = re.compile(r"``([a-z][a-z0-9]*-[A-Za-z*][\w*-]*)``")
CITED_PATH = re.compile(r"book/[\w.-]+\.(?:ipynb|md)")
CHAPTER_END = re.compile(r"[,(.;:]|``|$")


def _markdown(path):
    """The markdown text of a chapter (markdown cells of a notebook, or a .md file)."""
    if path.suffix == ".md":
        return path.read_text()
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    return "\n".join("".join(c["source"]) for c in cells)


def _chapters():
    return sorted(p for p in BOOK.iterdir() if p.suffix in (".ipynb", ".md"))


def book_labels():
    """Every label the book defines: equations, directives (prf, math) and targets."""
    labels = set()
    for path in _chapters():
        text = _markdown(path)
        for pattern in (EQ_LABEL, DIRECTIVE_LABEL, TARGET):
            labels.update(pattern.findall(text))
    return labels


def chapter_titles():
    """Chapter file stem -> title (the first ``# `` heading)."""
    titles = {}
    for path in _chapters():
        heading = re.search(r"^# (.+)$", _markdown(path), re.M)
        titles[path.stem] = heading.group(1).strip() if heading else path.stem
    return titles


def _is_chapter(name, titles):
    """Whether ``name`` names exactly one chapter: its file stem, or the start of its
    title up to a word boundary ("derivation B", not "derivation", which names two)."""
    name = name.strip().lower()
    if not name:
        return False
    matches = set()
    for stem, title in titles.items():
        title = title.lower()
        if name in (stem.lower(), f"book/{stem.lower()}"):
            matches.add(stem)
        rest = title[len(name):] if title.startswith(name) else None
        if rest is not None and not rest[:1].isalnum():
            matches.add(stem)
    return len(matches) == 1


def _module_name(path):
    """``pgnotes/tokens/exact.py`` -> ``tokens.exact``; a package's ``__init__`` is the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def citations():
    """(module, object, citation) for every ``Book:`` paragraph of every docstring.

    Labels that a docstring names outside its ``Book:`` paragraphs are cited too; they
    come as one more citation that starts with ``-,`` (no chapter named).
    """
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = _module_name(path)
        nodes = [(module, "<module>", tree)]
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                nodes.append((module, node.name, node))
        for module, name, node in nodes:
            doc = ast.get_docstring(node) or ""
            rest = []
            for paragraph in re.split(r"\n\s*\n", doc):
                head, *pieces = re.split(r"\bBook:", paragraph)
                rest.append(head)
                found.extend((module, name, " ".join(p.split())) for p in pieces)
            rest = " ".join(" ".join(rest).split())
            if CITED_LABEL.search(rest):
                found.append((module, name, "-, " + rest))
    return found


def broken_references():
    """Each cited label, chapter or path that the book does not define, as a message."""
    labels, titles = book_labels(), chapter_titles()
    broken = []
    for module, name, text in citations():
        where = f"pgnotes.{module}" + (f".{name}" if name != "<module>" else "")
        chapter = CHAPTER_END.split(text, maxsplit=1)[0]
        if chapter != "-" and not _is_chapter(chapter, titles):
            broken.append(
                f"{where}: chapter {chapter.strip()!r} is not a chapter title or file")
        for label in CITED_LABEL.findall(text):
            if label.endswith("*"):
                ok = any(lab.startswith(label[:-1]) for lab in labels)
            else:
                ok = label in labels
            if not ok:
                broken.append(f"{where}: label {label!r} is not defined in book/")
        for cited in CITED_PATH.findall(text):
            if not (ROOT / cited).exists():
                broken.append(f"{where}: path {cited!r} does not exist")
    return broken


def test_the_book_defines_labels_and_chapters():
    # the collectors find what they should: a guard against a regex that matches nothing
    labels, titles = book_labels(), chapter_titles()
    assert {"b-eta", "ep-thm", "lm-mdp", "gae-tail-section"} <= labels
    assert titles["02_derivation_b"].startswith("Derivation B")
    assert _is_chapter("derivation B", titles)
    assert _is_chapter("language models I", titles)
    assert not _is_chapter("practice", titles) and not _is_chapter("derivation", titles)
    assert len(citations()) > 50
    # subpackages are read too: their modules appear under dotted names
    assert {"exact._evaluation", "tokens.mdp", "verify.core"} <= {m for m, _, _ in citations()}


def test_a_broken_reference_is_reported(monkeypatch):
    # the test can fail: a docstring citing a missing label and chapter is reported
    fake = [("mdp", "f", "practice, eq. ``no-such-label`` (book/none.ipynb).")]
    monkeypatch.setattr(sys.modules[__name__], "citations", lambda: fake)
    assert broken_references() == [
        "pgnotes.mdp.f: chapter 'practice' is not a chapter title or file",
        "pgnotes.mdp.f: label 'no-such-label' is not defined in book/",
        "pgnotes.mdp.f: path 'book/none.ipynb' does not exist",
    ]


@pytest.mark.parametrize("module", sorted({_module_name(p) for p in PACKAGE.rglob("*.py")}))
def test_docstrings_cite_labels_that_exist(module):
    broken = [b for b in broken_references() if b.startswith(f"pgnotes.{module}.")
              or b.startswith(f"pgnotes.{module}:")]
    assert not broken, ("docstrings cite what the book does not define:\n"
                        + "\n".join(broken))
