"""The two editions show the same book: same numbers, maths, figures and anchors per page.

Static (no browser): reads ``_build/html/en`` and ``_build/html/zh`` as ``make book`` left
them. Only the prose is translated, so for every page:

- the glued values (``{glue:text}`` and friends) are the same, in the same order: a glue
  role broken in a translation renders empty and fails here;
- the formulas (their text), the images and the equation and proof anchors are the same (a
  lost ``$…$`` or ``{eq}`` in a ``msgstr`` fails here, as in ``tests/book/test_translation.py``).
"""

from __future__ import annotations

import pathlib

import pytest
from bs4 import BeautifulSoup

SITE = pathlib.Path(__file__).resolve().parents[2] / "_build" / "html"


def pages():
    if not (SITE / "en").is_dir():
        return []
    return sorted(p.relative_to(SITE / "en").as_posix() for p in (SITE / "en").rglob("*.html")
                  if "_static" not in p.parts)


def facts(path: pathlib.Path) -> dict:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    article = soup.find("article") or soup
    return {
        "glued values": [x.get_text(" ", strip=True) for x in article.select(".pasted-text, .pasted-inline")],
        # the same formulas, character for character (a translated display formula renders as
        # "\\[::\\]"); sorted, since a translation may move an inline formula in its sentence
        "formulas": sorted(" ".join(x.get_text().split()) for x in article.select(".math")),
        "images": [img.get("src") for img in article.find_all("img")],
        "equation anchors": sorted(t["id"] for t in article.find_all(id=True) if t["id"].startswith("equation-")),
        "equation references": [a.get_text() for a in article.select('a[href*="#equation-"]')],
    }


def test_both_editions_are_built():
    if not (SITE / "en").is_dir():
        pytest.skip("no _build/html/en: run make book first")
    assert (SITE / "zh").is_dir(), "_build/html/zh missing: make book builds both editions"
    assert (SITE / "index.html").exists(), "no root index.html offering both editions"


@pytest.mark.parametrize("relpath", pages())
def test_chinese_page_shows_the_same_book(relpath):
    zh = SITE / "zh" / relpath
    assert zh.exists(), f"{relpath} has no Chinese edition"
    en, cn = facts(SITE / "en" / relpath), facts(zh)
    for what in en:
        assert en[what] == cn[what], f"{relpath}: {what} differ between editions: {en[what]} vs {cn[what]}"
