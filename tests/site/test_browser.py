"""The built site, read the way a reader reads it: every page of both editions in headless Chromium, offline.

Runs after the build in ``make test`` (it needs ``_build/html``). Chromium comes from Debian
(``apt-get install chromium``; ``.ci/run`` installs it). Without it the test skips with that
hint on a reader's machine, and fails in CI (``CI`` set), so it never passes silently there.

For each page it asserts:
- the maths is typeset: MathJax containers are present wherever the page has maths, and no
  raw TeX (``\\frac``, ``$$``, ``\\begin{``) is left in the visible text;
- every image loads;
- every internal link and every ``{eq}``/``{prf:ref}`` anchor resolves to an existing page and id;
- no console error (beyond the allow-list below) and no uncaught exception;
- no request leaves the local site (offline reading, reader privacy);
- in the Chinese edition (``zh/``), the page shows Chinese text; on every page of either
  edition, the language switch leads to the same page in the other edition;
- the Chinese search finds a query of joined words (``_ext/static/pgnotes_zh_search.js``).

The site is ``make book``'s: ``_build/html/{en,zh}/`` and a root ``index.html``. One
browser is shared by all pages.
"""

from __future__ import annotations

import functools
import http.server
import re
import os
import pathlib
import shutil
import threading
import urllib.parse

import pytest
from bs4 import BeautifulSoup

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RAW_TEX = ("\\frac", "$$", "\\begin{", "\\nabla", "\\mathbb")
CJK = re.compile(r"[\u4e00-\u9fff]")
EDITIONS = {"en": "zh", "zh": "en"}

#: Console errors known to be harmless, as (message fragment, URL fragment, reason).
ALLOWED_CONSOLE = (
    ("Failed to load resource", "/favicon.ico",
     "the browser asks the server root for a favicon the book does not have; not a page resource"),
)


def pages():
    if not SITE.is_dir():
        return []
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html") if "_static" not in p.parts)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        msg = "Chromium not found: install it with `apt-get install chromium` (Debian) to run the browser test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    if not SITE.is_dir():
        pytest.fail("no _build/html: build the site first (make book)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def server():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@functools.lru_cache(maxsize=None)
def ids_of(relpath: str) -> frozenset:
    soup = BeautifulSoup((SITE / relpath).read_text(encoding="utf-8"), "html.parser")
    return frozenset(tag["id"] for tag in soup.find_all(id=True))


def test_site_has_pages():
    assert len(pages()) >= 3, "the site has almost no pages; was it built?"


def test_both_editions_have_the_same_pages():
    en = {p[3:] for p in pages() if p.startswith("en/")}
    zh = {p[3:] for p in pages() if p.startswith("zh/")}
    assert en and en == zh, f"pages in one edition only: {sorted(en ^ zh)} (build with make book)"


def test_chinese_search_splits_joined_words(browser, server):
    """折扣访问计数占用度量 is two indexed words written together: Sphinx alone finds nothing."""
    page = browser.new_page()
    page.goto(server + "zh/search.html?q=" + urllib.parse.quote("折扣访问计数占用度量"), wait_until="load")
    page.wait_for_function("() => document.querySelector('#search-results p.search-summary')", timeout=20_000)
    hits = page.evaluate("() => Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)")
    page.close()
    # the chapter that defines both terms (derivation B) is found; Sphinx alone finds nothing
    assert any(h.endswith("book/02_derivation_b.html") for h in hits), f"joined-words query found {hits}"


@pytest.mark.parametrize("relpath", pages())
def test_page_reads_offline(browser, server, relpath):
    source = (SITE / relpath).read_text(encoding="utf-8")
    if 'http-equiv="Refresh"' in source:  # a redirect stub (index.html): its target is tested itself
        target = source.split("url=")[1].split('"')[0]
        assert (SITE / relpath).parent.joinpath(target).exists(), f"{relpath} redirects to missing {target}"
        return
    page = browser.new_page()
    outside, errors = [], []

    def route(r):
        url = r.request.url
        if url.startswith(server) or url.startswith("data:") or url.startswith("blob:"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append((m.text, m.location.get("url", ""))) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append((f"uncaught: {e}", "")))
    page.goto(server + relpath, wait_until="load")

    if page.locator(".math").count() > 0:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, f"{relpath}: maths present but not typeset"
    text = page.inner_text("body")
    for raw in RAW_TEX:
        assert raw not in text, f"{relpath}: raw TeX {raw!r} visible"
    edition = relpath.split("/")[0]
    if edition == "zh":
        assert page.evaluate("() => document.documentElement.lang") == "zh-CN", f"{relpath}: lang"
        assert len(CJK.findall(page.inner_text("article, main, body"))) >= 2, f"{relpath}: no Chinese"
    if edition in EDITIONS and relpath.startswith(f"{edition}/book/"):
        switch = page.evaluate("() => Array.from(document.querySelectorAll("
                               "'.pgnotes-language-switch a')).map(a => a.href)")
        other = f"{server}{EDITIONS[edition]}/{relpath.split('/', 1)[1]}"
        assert switch == [other], f"{relpath}: language switch {switch}, expected {other}"

    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"{relpath}: images that did not load: {broken}"

    for href in page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
        if not href.startswith(server):
            continue
        url = urllib.parse.urlsplit(href)
        target = urllib.parse.unquote(url.path[len(urllib.parse.urlsplit(server).path):]) or "index.html"
        if target.endswith("/"):
            target += "index.html"
        assert (SITE / target).exists(), f"{relpath}: link to missing {target}"
        if url.fragment and target.endswith(".html"):
            assert urllib.parse.unquote(url.fragment) in ids_of(target), f"{relpath}: broken anchor {href}"

    real_errors = [e for e in errors if not any(m in e[0] and u in e[1] for m, u, _ in ALLOWED_CONSOLE)]
    assert not real_errors, f"{relpath}: console errors: {real_errors}"
    assert not outside, f"{relpath}: requests leaving the local site: {outside}"
    page.close()
