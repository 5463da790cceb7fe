"""The site's size and the page-load-to-typeset time of its heaviest page (README, "The site").

Run after ``make book`` (``make site-metrics``). Needs Chromium (``apt-get install chromium``).

- size: ``_build/html`` in total, each edition, the shared MathJax;
- time: the heaviest page (the most maths elements) of each edition is loaded ``--runs``
  times in headless Chromium from a local server; the time is from navigation start to
  ``MathJax.startup.promise`` resolving (every formula typeset), median and range;
- ``--requests``: loads every page and lists the MathJax files the pages asked for, which
  is how ``_ext/pgnotes_site.py`` chooses what it ships (``MATHJAX_PARTS``).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import pathlib
import shutil
import statistics
import threading

ROOT = pathlib.Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"


def size(path: pathlib.Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def serve():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(SITE)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def heaviest(edition: str) -> str:
    pages = [p for p in (SITE / edition).rglob("*.html") if "_static" not in p.parts]
    best = max(pages, key=lambda p: p.read_text(encoding="utf-8").count('class="math'))
    return best.relative_to(SITE).as_posix()


def typeset_ms(browser, url: str) -> float:
    page = browser.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    ms = page.evaluate("() => MathJax.startup.promise.then(() => performance.now())")
    page.close()
    return ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", action="store_true", help="list the MathJax files every page loads")
    args = parser.parse_args()
    if not (SITE / "en").is_dir() or not (SITE / "zh").is_dir():
        raise SystemExit("no _build/html/en and zh: run `make book` first")
    print(f"site: {size(SITE):.1f} MB in total; en {size(SITE / 'en'):.1f} MB, zh {size(SITE / 'zh'):.1f} MB, "
          f"shared MathJax {size(SITE / '_mathjax'):.1f} MB")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    httpd, server = serve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for edition in ("en", "zh"):
            page = heaviest(edition)
            times = [typeset_ms(browser, server + page) for _ in range(args.runs)]
            print(f"{page}: load to typeset {statistics.median(times):.0f} ms median "
                  f"({min(times):.0f}-{max(times):.0f} ms, {args.runs} runs)")
        if args.requests:
            asked = set()
            for html in sorted(SITE.rglob("*.html")):
                if "_static" in html.parts or "_mathjax" in html.parts:
                    continue
                page = browser.new_page()
                page.on("request", lambda r: asked.add(r.url.split("/_mathjax/")[1].split("?")[0])
                        if "/_mathjax/" in r.url else None)
                page.goto(server + html.relative_to(SITE).as_posix(), wait_until="load")
                if page.locator(".math").count():
                    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                    page.evaluate("() => MathJax.startup.promise")
                page.close()
            print("MathJax files requested by the pages:", *sorted(asked), sep="\n  ")
        browser.close()
    httpd.shutdown()


if __name__ == "__main__":
    main()
