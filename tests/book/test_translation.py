"""The Chinese edition's catalogues: complete, faithful to the markup, and on one glossary.

One ``.po`` file per page of the book (``locales/zh_CN/LC_MESSAGES/book/<page>.po``, made
by ``make po``), so every test below is parametrised per file and a failure names the
chapter. When the English prose changes, ``make po`` marks the changed entries fuzzy (or
adds them untranslated), and ``test_catalogue_is_complete`` fails until the Chinese follows.

- complete: no untranslated and no fuzzy entry;
- markup survives: in every translated entry, the roles and references (``{glue:text}``,
  ``{eq}``, ``{prf:ref}``, ``{doc}``, ``{cite}``, ``{numref}`` …, compared by role and
  target, the link text may be translated), the maths (``$…$``, ``$$…$$``), the link
  targets and the footnote references of ``msgstr`` are exactly those of ``msgid``;
- one glossary (``locales/zh_CN/glossary.tsv``): an English term in ``msgid`` means its
  Chinese term in ``msgstr``; an entry may be exempted for one term in
  ``locales/zh_CN/glossary_exceptions.tsv`` (page, term, start of the msgid, reason).
"""

from __future__ import annotations

import collections
import pathlib
import re

import pytest
from babel.messages.pofile import read_po

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locales" / "zh_CN"
CATALOGUES = sorted((LOCALE / "LC_MESSAGES").rglob("*.po"))
IDS = [p.relative_to(LOCALE / "LC_MESSAGES").with_suffix("").as_posix() for p in CATALOGUES]

#: {role}`text <target>` or {role}`target`; a role's target never changes in translation
ROLE = re.compile(r"\{([a-z]+(?::[a-z]+)*)\}`([^`]*)`")
DISPLAY_MATHS = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATHS = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
FOOTNOTE = re.compile(r"\[\^([^\]]+)\]")
CJK = re.compile(r"[\u4e00-\u9fff]")


def entries(path):
    with path.open("rb") as f:
        catalogue = read_po(f)
    return [m for m in catalogue if m.id]  # the header has no msgid


def role_target(role: str, content: str) -> str:
    if role.startswith("glue") or role in ("cite", "cite:p", "cite:t", "eq", "math"):
        return content.strip()
    match = re.search(r"<([^<>]+)>\s*$", content)  # {doc}`the text <target>`
    return (match.group(1) if match else content).strip()


def markup(text: str) -> collections.Counter:
    """The roles, maths, link targets and footnote references of a message, with counts."""
    found = collections.Counter()
    for role, content in ROLE.findall(text):
        found[f"{{{role}}}{role_target(role, content)}"] += 1
    rest = ROLE.sub(" ", text)
    for maths in DISPLAY_MATHS.findall(rest):
        found[f"$${maths.strip()}$$"] += 1
    rest = DISPLAY_MATHS.sub(" ", rest)
    for maths in INLINE_MATHS.findall(rest):
        found[f"${maths.strip()}$"] += 1
    for target in LINK_TARGET.findall(rest):
        found[f"]({target})"] += 1
    for note in FOOTNOTE.findall(rest):
        found[f"[^{note}]"] += 1
    return found


def glossary():
    rows = []
    for line in (LOCALE / "glossary.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip() and not line.startswith("#"):
            english, chinese = line.split("\t")[:2]
            rows.append((english, tuple(chinese.split("|"))))
    return rows


def english_pattern(term: str) -> re.Pattern:
    plural = r"(?:s|es)?" if not term.endswith("y") else r"(?:ies)?"
    stem = re.escape(term[:-1] if term.endswith("y") else term)
    tail = "" if not term.endswith("y") else "(?:y|ies)"
    if term.endswith("y"):
        return re.compile(rf"(?<![\w-]){stem}{tail}(?![\w-])", re.I)
    return re.compile(rf"(?<![\w-]){stem}{plural}(?![\w-])", re.I)


def exceptions():
    path = LOCALE / "glossary_exceptions.tsv"
    rows = set()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            if line.strip() and not line.startswith("#"):
                page, term, start = line.split("\t")[:3]
                rows.add((page, term, start))
    return rows


def is_formula(msgid: str) -> bool:
    """A display formula (``$$ … $$`` in the notebook): its msgid is the bare LaTeX, no ``$``.

    Sphinx keeps such a block only when the translation equals the English; any other
    string goes through a reStructuredText path that MyST renders as ``\\[::\\]``.
    """
    return (msgid.startswith("\n") and "$" not in msgid and not ROLE.search(msgid)
            and bool(re.search(r"\\[A-Za-z]+|[_^]\{", msgid)))


def prose(msgid: str) -> str:
    """The words of a message that a translator translates: no roles, maths, code or links."""
    text = ROLE.sub(" ", msgid)
    text = DISPLAY_MATHS.sub(" ", text)
    text = INLINE_MATHS.sub(" ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    return LINK_TARGET.sub(" ", text)


def test_every_page_has_a_catalogue():
    pages = {p.with_suffix("").relative_to(ROOT).as_posix() for p in (ROOT / "book").iterdir()
             if p.suffix in (".ipynb", ".md")}
    assert pages <= set(IDS), f"pages without a .po file (run `make po`): {sorted(pages - set(IDS))}"


def test_the_checks_can_fail():
    assert markup("see {eq}`pg-thm` and $x$") != markup("见 {eq}`pg-thm`")
    assert markup("{doc}`the text <02_derivation_b>`") == markup("{doc}`正文 <02_derivation_b>`")
    assert markup("$a$ and $$b$$") == markup("$$b$$ 与 $a$")
    assert markup("{glue:text}`x:.3f`") != markup("{glue:text}`x:.2f`")
    assert english_pattern("trajectory").search("two Trajectories")
    assert not english_pattern("discount").search("discounted")
    assert not english_pattern("return").search("return-to-go")


@pytest.mark.parametrize("path", CATALOGUES, ids=IDS)
def test_catalogue_is_complete(path):
    todo = [m.id for m in entries(path) if not m.string or m.fuzzy]
    missing = sum(not m.string for m in entries(path))
    fuzzy = sum(bool(m.string) and m.fuzzy for m in entries(path))
    assert not todo, (f"{path.relative_to(ROOT)}: {missing} untranslated and {fuzzy} fuzzy "
                      f"of {len(entries(path))} entries; first: {todo[0][:120]!r}")


@pytest.mark.parametrize("path", CATALOGUES, ids=IDS)
def test_roles_references_and_maths_survive(path):
    bad = []
    for m in entries(path):
        if m.string and not m.fuzzy and markup(m.id) != markup(m.string):
            lost, added = markup(m.id) - markup(m.string), markup(m.string) - markup(m.id)
            bad.append(f"{m.id[:60]!r}: lost {dict(lost)}, added {dict(added)}")
    assert not bad, f"{path.relative_to(ROOT)}: " + "\n".join(bad)


@pytest.mark.parametrize("path", CATALOGUES, ids=IDS)
def test_translations_are_chinese(path):
    """A translated entry with English words in it has Chinese in it (code-only entries aside)."""
    bad = [m.id[:60] for m in entries(path) if m.string and not m.fuzzy and not is_formula(m.id)
           and re.search(r"[A-Za-z]{4,}\s+[a-z]{3,}", prose(m.id)) and not CJK.search(m.string)]
    assert not bad, f"{path.relative_to(ROOT)}: entries left in English: {bad}"


@pytest.mark.parametrize("path", CATALOGUES, ids=IDS)
def test_display_formulas_are_copied_unchanged(path):
    """A display formula's msgstr is its msgid: a changed one renders as ``\\[::\\]``."""
    bad = [m.id[:60] for m in entries(path) if m.string and is_formula(m.id) and m.string != m.id]
    assert not bad, f"{path.relative_to(ROOT)}: display formulas changed in translation: {bad}"


@pytest.mark.parametrize("path", CATALOGUES, ids=IDS)
def test_glossary_terms_are_translated_the_same_way(path):
    page = path.relative_to(LOCALE / "LC_MESSAGES").with_suffix("").as_posix()
    allowed, bad = exceptions(), []
    for m in entries(path):
        if not m.string or m.fuzzy:
            continue
        for english, chinese in glossary():
            if english_pattern(english).search(prose(m.id)) and not any(c in m.string for c in chinese):
                if not any(p == page and t == english and m.id.startswith(s) for p, t, s in allowed):
                    bad.append(f"{english!r} → {'|'.join(chinese)} missing in {m.string[:60]!r}")
    assert not bad, f"{path.relative_to(ROOT)} (or add to glossary_exceptions.tsv): " + "\n".join(bad)


def test_glossary_is_well_formed():
    rows = glossary()
    english = [e.lower() for e, _ in rows]
    assert len(english) == len(set(english)), "a term is in the glossary twice"
    assert all(c and all(c) for _, c in rows), "a glossary term has no Chinese"


def test_make_po_turns_changed_english_fuzzy_and_new_english_untranslated(tmp_path):
    """What ``make po`` does after a prose change, on a two-entry page: the test above then fails."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po
    from sphinx_intl.basic import update

    def pot(*ids):
        catalogue = Catalog()
        for msgid in ids:
            catalogue.add(msgid)
        (tmp_path / "pot").mkdir(exist_ok=True)
        with (tmp_path / "pot" / "page.pot").open("wb") as f:
            write_po(f, catalogue)

    pot("The discounted visit count is {glue:text}`b_eta`.", "Derivation B.")
    update(str(tmp_path / "locales"), str(tmp_path / "pot"), ("zh_CN",))
    po = tmp_path / "locales" / "zh_CN" / "LC_MESSAGES" / "page.po"
    with po.open("rb") as f:
        catalogue = read_po(f)
    for m in catalogue:
        if m.id:
            m.string = {"Derivation B.": "推导方式 B。"}.get(m.id, "折扣访问计数为 {glue:text}`b_eta`。")
    with po.open("wb") as f:
        write_po(f, catalogue)
    assert not [m for m in entries(po) if not m.string or m.fuzzy]

    pot("The discounted visit count is now {glue:text}`b_eta`.", "Derivation B.", "A new sentence.")
    update(str(tmp_path / "locales"), str(tmp_path / "pot"), ("zh_CN",))
    state = {m.id: (bool(m.string), m.fuzzy) for m in entries(po)}
    assert state == {"The discounted visit count is now {glue:text}`b_eta`.": (True, True),
                     "Derivation B.": (True, False), "A new sentence.": (False, False)}, state
