"""A postmortem page's Markdown rendered with its generated header kept out of Markdown.

The generated header (postmortem_page.md.j2) reaches Markdown as a few `## ` headings between
stash placeholders (raw HTML blocks that stand for the card, the tables and the chart). Markdown
spent 0.6 ms a page on them, a third of what the author's prose costs: each placeholder is an
HTML block to parse and a paragraph to run the inline patterns over, and the toc extension
reads every heading. Here only the prose goes through Markdown; the header's blocks are joined
as Markdown joins them, its headings are rendered once per build with the site's extensions,
and the table of contents, anchors and title from the render are those of the whole page.

The result is the one `Page.render` makes of the whole text, or `Page.render` runs on the whole
text: whenever the header holds anything but headings and placeholders (a template override),
the prose could change how the header renders (the toc marker, abbreviations, an extension this
module does not know), or the prose's ids or first heading level would make the toc extension
number or nest the header's headings otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import markdown
from mkdocs.structure.toc import get_toc

from .render_ahead import held_logs, log_again

# Extensions that work on the prose alone and render a `## ` heading from its own text alone
# (each checked against what it does to the rest of a page: abbr's definitions apply to the
# whole page, pymdownx.extra loads abbr, striphtml strips the prose mark, preview, critic,
# pathconverter and b64 work on the whole output; none of those is here)
_KNOWN = frozenset({
    "toc", "tables", "fenced_code", "admonition", "attr_list", "def_list", "footnotes", "md_in_html", "sane_lists",
    "nl2br", "smarty", "codehilite", "meta", "legacy_attrs", "legacy_em", "wikilinks",
    "pymdownx.arithmatex", "pymdownx.betterem", "pymdownx.caret", "pymdownx.details", "pymdownx.emoji",
    "pymdownx.escapeall", "pymdownx.fancylists", "pymdownx.highlight", "pymdownx.inlinehilite", "pymdownx.keys",
    "pymdownx.magiclink", "pymdownx.mark", "pymdownx.progressbar", "pymdownx.saneheaders", "pymdownx.smartsymbols",
    "pymdownx.snippets", "pymdownx.superfences", "pymdownx.tasklist", "pymdownx.tilde",
    "pymdownx.blocks.admonition", "pymdownx.blocks.caption", "pymdownx.blocks.definition", "pymdownx.blocks.details",
    "pymdownx.blocks.html",
})
# tabs get ids after MkDocs has collected the page's anchors: known only while not slugified
# (with `slugify` a tab's id is its title's, numbered against the headings' or prefixed with one)
_UNLESS_SLUGIFIED = frozenset({"pymdownx.tabbed", "pymdownx.blocks.tab"})
_PLACEHOLDER = re.compile(r'<div class="pmkb-stash" data-pmkb-stash="\d+">[^<\n]*</div>\Z')
_HEADING_HTML = re.compile(r'<h([1-6])\b[^>]*>.*</h\1>\Z')
_ID = re.compile(r'\bid="([^"]*)"')
_LINES = re.compile(r"^.+$", re.MULTILINE)


def usable(config) -> bool:
    """Extensions given by name, each known to work on the prose alone (see _KNOWN)."""
    configs = config.mdx_configs or {}
    for ext in config.markdown_extensions:
        if not isinstance(ext, str):
            return False
        name = ext.removeprefix("markdown.extensions.")
        if name in _UNLESS_SLUGIFIED:
            if (configs.get(ext) or {}).get("slugify"):
                return False
        elif name not in _KNOWN:
            return False
    return True


def _toc_settings(config) -> dict:
    configs = config.mdx_configs or {}
    return configs.get("toc") or configs.get("markdown.extensions.toc") or {}


@dataclass(slots=True)
class _Headings:
    """The header's headings as the site's Markdown renders them at the top of a page."""

    html: list[str]  # each heading's HTML
    tokens: list  # the toc extension's entries for them
    ids: set[str]
    level: int | None  # their level in the table of contents (None: none is in it)


def markdown_settings(config) -> str:
    """The site's Markdown extensions and their options, as one comparable string."""
    return repr((config.markdown_extensions, config.mdx_configs))


class HeaderRender:
    """Renders postmortem pages for one Markdown configuration. Under serve (`keep`), each
    page's header as last parsed is kept: in a rebuild most headers are the same text."""

    def __init__(self, config, mark: str, keep: bool = False) -> None:
        self.config, self.mark, self.keep = config, mark, keep
        self.settings = markdown_settings(config)
        toc = _toc_settings(config)
        self.toc_marker = toc.get("marker", "[TOC]")
        # a marker the prose brings in some other way (a snippet) shows in its render
        self.toc_div = f'<div class="{toc.get("toc_class", "toc")}">'
        self.headings: dict[tuple[str, ...], _Headings | None] = {}
        self.parsed: dict[str, tuple[str, tuple | None]] = {}  # src -> (header text, _head's answer)
        self.seen: set[str] = set()  # the pages of this build
        self.fast = 0  # pages rendered with the header kept out of Markdown
        self.whole: list[str] = []  # and those rendered whole (both reported with -v)

    def again(self, config) -> HeaderRender:
        """This renderer for the next build (under serve), or a new one if the Markdown
        configuration changed."""
        if markdown_settings(config) != self.settings:
            return HeaderRender(config, self.mark, self.keep)
        self.config, self.fast, self.whole = config, 0, []
        self.parsed = {src: self.parsed[src] for src in self.seen if src in self.parsed}  # pages gone: dropped
        self.seen = set()
        return self

    def render(self, page, config, files) -> None:
        """What MkDocs' Page.render sets, for a page whose Markdown is header, mark, prose."""
        text = page.markdown
        head, mark, prose = text.partition(self.mark)
        parts = None
        if mark and not (self.toc_marker and self.toc_marker in prose):
            if self.keep:
                src = page.file.src_uri
                self.seen.add(src)
                known = self.parsed.get(src)
                if known is None or known[0] != head:
                    known = self.parsed[src] = (head, self._head(head))
                parts = known[1]
            else:
                parts = self._head(head)
        if parts is not None:
            html, headings = parts
            page.markdown = prose
            try:
                with held_logs() as records:  # logged if this render is the page's, else dropped
                    type(page).render(page, config, files)
            finally:
                page.markdown = text
            if self.toc_div not in page.content and self._fits(page, headings):
                self._join(page, html, headings)
                log_again(records)
                self.fast += 1
                return
        self.whole.append(page.file.src_uri)
        type(page).render(page, config, files)

    def _head(self, head: str) -> tuple[str, _Headings] | None:
        """The header's HTML, up to the mark, and its headings; None unless every line is
        blank, a placeholder or a `## ` heading. An HTML block is followed by a blank line, as
        Markdown joins them."""
        blocks: list = []
        titles: list[str] = []
        for line in _LINES.findall(head):  # the lines that are not empty (a template leaves many)
            if line.startswith("## "):
                blocks.append(len(titles))
                titles.append(line)
            elif _PLACEHOLDER.match(line):
                blocks.append(line)
            else:
                return None
        key = tuple(titles)
        if key not in self.headings:
            self.headings[key] = self._render_headings(key)
        headings = self.headings[key]
        if headings is None:
            return None
        out = [b + "\n" if b.__class__ is str else headings.html[b] for b in blocks]
        out.append(self.mark)
        return "\n".join(out), headings

    def _render_headings(self, titles: tuple[str, ...]) -> _Headings | None:
        if not titles:
            return _Headings([], [], set(), None)
        with held_logs():  # dropped: the whole render of a page logs whatever this would
            try:
                md = markdown.Markdown(extensions=self.config.markdown_extensions,
                                       extension_configs=self.config.mdx_configs or {})
                html = md.convert("\n\n".join(titles)).split("\n")
            except Exception:  # noqa: BLE001 - an extension that needs more than Markdown: pages render whole
                return None
        if len(html) != len(titles) or not all(_HEADING_HTML.match(h) for h in html):
            return None
        ids = [m.group(1) for h in html for m in [_ID.search(h.split(">", 1)[0])] if m]
        tokens = list(getattr(md, "toc_tokens", []))
        levels = {t["level"] for t in tokens}
        if any(t["children"] for t in tokens) or len(levels) > 1:
            return None
        return _Headings(html, tokens, set(ids), levels.pop() if levels else None)

    def _fits(self, page, headings: _Headings) -> bool:
        """Whether the whole text renders the prose as it rendered alone, and the headings as
        rendered once: no id of the prose's is one the toc extension would number against the
        header's, and its first heading does not nest under the header's last."""
        ours, anchors = headings.ids, page.present_anchor_ids or ()
        if ours and not ours.isdisjoint(anchors):
            return False
        for anchor in anchors:
            if "_" in anchor:  # the toc extension numbers a repeated id: timeline_1
                base, _, count = anchor.rpartition("_")
                if base in ours and count.isdigit():
                    return False
        items = page.toc.items
        return not (items and headings.level is not None and items[0].level > headings.level)

    def _join(self, page, html: str, headings: _Headings) -> None:
        """The header's HTML before the prose's: the mark is an HTML block too, and ends the
        text when the prose is empty. MkDocs titles a page by its first element if that is an
        h1: on the whole page that is the header's, never one."""
        page.content = html + "\n\n" + page.content if page.content else html
        page._title_from_render = None
        if headings.tokens:
            toc = get_toc(headings.tokens)
            rest = page.toc.items
            if rest:
                del rest[0].active  # get_toc marks the first entry of the page, which is the header's
            toc.items.extend(rest)
            page.toc = toc
        if headings.ids:
            page.present_anchor_ids = (page.present_anchor_ids or set()) | headings.ids
