"""Allowlist sanitising of the HTML rendered from authors' prose (nh3 = Rust's ammonia).

Markdown passes raw HTML through, so a postmortem anyone can edit could put a
script into every reader's browser. Formatting, tables, code, links and images
survive; scripts, event handlers, styles, frames and javascript: URLs do not.
"""

from __future__ import annotations

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) | {
    "div", "span", "p", "br", "hr", "pre", "code", "kbd", "samp", "var", "mark", "sub", "sup", "del", "ins", "s",
    "small", "abbr", "details", "summary", "figure", "figcaption", "table", "thead", "tbody", "tfoot", "tr", "th",
    "td", "caption", "colgroup", "col", "img", "a", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
    "input", "label", "time", "section", "article", "aside", "nav",
}
_ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir", "align"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height", "loading"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"},
    "details": {"open"},
    "input": {"type", "checked", "disabled"},
    "time": {"datetime"},
    "col": {"span"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})  # of links and images; relative URLs always pass


def clean_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
