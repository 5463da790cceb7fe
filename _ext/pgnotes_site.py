"""The two editions of the site: language switch, Chinese interface, search, light MathJax.

A local Sphinx extension (``sphinx.local_extensions`` in ``_config.yml``). It reads the
build's ``language`` (``-D language=zh_CN`` for the Chinese edition, see the Makefile) and

- links every page to the same page of the other edition (``pgnotes_editions = 1``, set
  by the Makefile, which builds ``_build/html/en`` and ``_build/html/zh`` side by side);
- overrides the theme strings that ``language`` does not translate (``search_bar_text``),
  the title and the author line, and translates the part captions of ``_toc.yml``;
- in Chinese, indexes with jieba and the glossary's terms as a user dictionary, and splits
  a query of joined words against the index's own terms (``static/pgnotes_zh_search.js``);
  and keeps a table's short-term column from wrapping one character per line
  (``static/pgnotes_zh.css``);
- gives translated strings the notebook's glue data (``{glue:text}`` in a ``msgstr``);
- keeps cell outputs out of the translation (only markdown cells are translated);
- ships only the MathJax the pages use (``tex-chtml.js`` and its woff fonts: 1.5 MB
  instead of the 24 MB tree of sphinx-mathjax-offline), once, in ``<outdir>/../_mathjax``,
  shared by both editions.
"""

from __future__ import annotations

import pathlib
import shutil

from docutils import nodes
from sphinx.transforms import SphinxTransform

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
GLOSSARY = ROOT / "locales" / "zh_CN" / "glossary.tsv"
TITLES = {"zh": "pgnotes：策略梯度定理，可执行", "en": None}
AUTHORS = {"zh": "pgnotes 作者", "en": None}
SEARCH_BAR = {"zh": "在本书中搜索……", "en": "Search this book…"}
OTHER = {"en": ("zh", "中文", "zh-CN", "阅读本页的中文版"),
         "zh": ("en", "English", "en", "Read this page in English")}
#: What the pages load from MathJax, found by loading every page of both editions in
#: Chromium (``dev/site_metrics.py --requests``): the combined component and its woff
#: fonts (all 23 of them, 0.4 MB, though the pages use 10 today), no autoloaded TeX
#: extension. A formula that needs one (``\boldsymbol``, ``\cancel`` …) makes MathJax
#: request it: the browser test then fails on the missing file; add it here.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2")


def edition(config) -> str:
    return "zh" if (config.language or "en").lower().startswith("zh") else "en"


def mathjax_source() -> pathlib.Path:
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is not installed: run `make install`")
    return pathlib.Path(spec.origin).parent / "static" / "mathjax"


def glossary_terms() -> list[tuple[str, str, str]]:
    """The glossary rows ``(english, chinese, note)``; blank lines and ``#`` lines skipped."""
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip() and not line.startswith("#"):
            cells = line.split("\t")
            rows.append((cells[0], cells[1], cells[2] if len(cells) > 2 else ""))
    return rows


def config_inited(app, config):
    lang = edition(config)
    options = dict(config.html_theme_options or {})
    options["search_bar_text"] = SEARCH_BAR[lang]
    config.html_theme_options = options
    if TITLES[lang]:
        config.html_title = TITLES[lang]
        config.author = AUTHORS[lang]
    config.html_static_path = [*config.html_static_path, str(HERE / "static")]
    # relative to _static: <outdir>/../_mathjax, one copy for both editions
    config.mathjax_path = "../../_mathjax/tex-chtml.js"
    if lang == "zh":
        app.add_css_file("pgnotes_zh.css")  # tables: no column one character wide
        # myst-nb's folding buttons ("Show code cell source"): its own setting, not a catalogue
        # string; {type} would be the English "source"/"outputs", so the Chinese leaves it out
        config.nb_code_prompt_show = "显示代码单元"
        config.nb_code_prompt_hide = "隐藏代码单元"
        try:  # jieba reports building its dictionary on stderr, in every build
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
        except ImportError:
            raise RuntimeError("jieba is not installed (the Chinese search index): make install") from None
        # the glossary's terms as jieba's user dictionary: 占用度量 is indexed as one word
        words = pathlib.Path(app.doctreedir) / "jieba_userdict.txt"
        words.parent.mkdir(parents=True, exist_ok=True)
        terms = {term for _, zh, _ in glossary_terms() for term in zh.split("|")}
        words.write_text("".join(f"{term} 50 n\n" for term in sorted(terms)
                                 if term and " " not in term), encoding="utf-8")
        config.html_search_options = {**(config.html_search_options or {}), "dict": str(words)}


class OutputsStayAsComputed(SphinxTransform):
    """Cell outputs are not translated: only the prose of markdown cells is.

    A markdown output (the API page's list, generated from the package's docstrings) would
    otherwise land in the ``.po`` files and go fuzzy whenever the package changes. Runs
    before Sphinx's ``Locale`` transform (priority 20) and the gettext extraction.
    """

    default_priority = 10

    def apply(self, **kwargs):
        for output in self.document.findall(nodes.container):
            if "cell_output" in output.get("classes", []):
                for node in output.findall(nodes.TextElement):
                    node["translatable"] = False


class KeepRenderer(dict):
    """Document attributes that remember myst-nb's renderer when it is popped."""

    temp_data: dict

    def pop(self, key, *default):
        if key == "nb_renderer" and key in self:
            self.temp_data["pgnotes_nb_renderer"] = self[key]
        return super().pop(key, *default)


class TranslateTocCaptions(SphinxTransform):
    """The part captions of ``_toc.yml`` in the edition's language.

    sphinx-external-toc inserts the toctrees (priority 100) after Sphinx's ``Locale``
    transform (20) has translated the page, so their captions, extracted into
    ``book/index.po`` by ``make po``, would stay in English in the sidebar. Translated here
    from the same catalogue, the way ``Locale`` does, before the toctrees are collected.
    """

    default_priority = 110

    def apply(self, **kwargs):
        if edition(self.config) == "en":
            return
        from sphinx import addnodes
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        dirs = [str(pathlib.Path(self.env.srcdir, d)) for d in self.config.locale_dirs]
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        catalog, found = init_locale(dirs, self.config.language, domain)
        if not found:
            return
        for node in self.document.findall(addnodes.toctree):
            if node.get("caption"):
                node["caption"] = node["rawcaption"] = catalog.gettext(node["caption"])


def glued_translation_parser():
    """myst-nb's notebook parser, with the notebook's glue data in its translated strings.

    Sphinx's ``Locale`` transform parses each ``msgstr`` as a document of its own, without
    the notebook: myst-nb's glue roles then find no data (``No key 'b_J' found in glue
    data for this document``) and a translated ``{glue:text}`b_J``` renders empty. This
    subclass hands the notebook's renderer (which holds the glue data) to the parse of
    each of the notebook's translated strings. Checked by building a translated entry with
    glue roles, equation references and maths (README, "The two editions").
    """
    from myst_nb.sphinx_ import Parser

    class GluedTranslationParser(Parser):
        def parse(self, inputstring, document):
            env = getattr(document.settings, "env", None) or self.env
            if document.current_source.endswith("<translated>"):
                if "pgnotes_nb_renderer" in env.temp_data:
                    document["nb_renderer"] = env.temp_data["pgnotes_nb_renderer"]
                try:  # the glue roles are resolved during the parse
                    return super().parse(inputstring, document)
                finally:  # the translated nodes keep a reference to this document: pickled
                    document.attributes.pop("nb_renderer", None)
            # myst-nb drops the renderer from the document at the end of its parse: keep it
            # for the Locale transform, which runs next, on this document (temp_data is
            # cleared between documents)
            attributes = KeepRenderer(document.attributes)
            attributes.temp_data = env.temp_data
            document.attributes = attributes
            try:
                return super().parse(inputstring, document)
            finally:
                document.attributes = dict(attributes)  # a plain dict again, for pickling

    return GluedTranslationParser


def page_context(app, pagename, templatename, context, doctree):
    lang = edition(app.config)
    if lang == "zh" and pagename == "search":
        app.add_js_file("pgnotes_zh_search.js", priority=100)
    if app.config.pgnotes_editions in ("", "0") or "body" not in context:
        return
    other, label, hreflang, title = OTHER[lang]
    href = "../" * (pagename.count("/") + 1) + f"{other}/{pagename}.html"
    switch = (f'<p class="pgnotes-language-switch"><a href="{href}" hreflang="{hreflang}" '
              f'lang="{hreflang}" title="{title}">{label}</a></p>\n')
    context["body"] = switch + context["body"]


def build_finished(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), pathlib.Path(app.outdir).parent / "_mathjax"
    for part in MATHJAX_PARTS:
        src, dst = source / part, target / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def setup(app):
    app.add_config_value("pgnotes_editions", "", "html", [str])  # "1" from the Makefile
    app.setup_extension("myst_nb")
    app.add_source_parser(glued_translation_parser(), override=True)
    app.add_transform(OutputsStayAsComputed)
    app.add_transform(TranslateTocCaptions)
    app.connect("config-inited", config_inited)
    app.connect("html-page-context", page_context)
    app.connect("build-finished", build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
