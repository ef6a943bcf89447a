"""Pages rendered by a forked child while MkDocs renders others (builds with two cores or more).

MkDocs converts pages to HTML one after another, on one core; converting a postmortem's
Markdown is most of what a page costs. The child is forked once every plugin has added its
files, and runs MkDocs' own `Page.render` on its copy of the build (same configuration,
files and Markdown extensions), so its HTML is the HTML this process would make. It works
from the last page back while MkDocs works from the first (see core.parallel.Prefetch).

This process uses the child's render of a page only when the page's Markdown, when MkDocs
is about to render it, is the very text the child rendered: a plugin that changed it meanwhile
gets MkDocs' own render. Markdown extensions given as objects (how plugins such as autorefs
collect what pages contain while they render) could keep what they see in the child; with any
of those configured, nothing is rendered ahead. Messages logged while the child rendered a page
are logged here when MkDocs takes that page, so `--strict` counts them.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

# what MkDocs 1.6's Page.render sets; a render that sets anything else is not used
RENDER_SETS = frozenset({"content", "toc", "_title_from_render", "present_anchor_ids", "links_to_anchors"})
_MISSING = object()


@dataclass(slots=True)
class Rendered:
    """One page as the child made it, stage by stage, so each hook here can check that its
    input is what the child's was before taking the child's output."""

    source: str  # what MkDocs reads (for a postmortem, the prose: on_page_read_source gives it)
    md_in: str  # what MkDocs hands the page hooks: the source without its front matter
    markdown: str  # what this plugin's page hooks make of it: what MkDocs renders
    stashed: dict[str, str]  # the HTML the Markdown's placeholders stand for
    attrs: dict  # what Page.render set (links_to_anchors keyed by src path, not File)
    cleaned: str  # page.content after this plugin's on_page_content
    unstashed: str  # after its on_page_context
    logs: list  # records logged while the Markdown was made
    render_logs: list  # records logged by Page.render


def usable(config) -> bool:
    """Only extensions MkDocs makes afresh for every page, from their names."""
    return all(isinstance(ext, str) for ext in config.markdown_extensions)


class _Kept:
    records: list | None = None


def keep_logs_in_child() -> None:
    """In the child: what is logged is kept for this process to log, never printed there."""

    def call_handlers(logger, record) -> None:
        if _Kept.records is None:
            return
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        _Kept.records.append(record)

    logging.Logger.callHandlers = call_handlers


@contextmanager
def kept_logs():
    outer, _Kept.records = _Kept.records, []
    try:
        yield _Kept.records
    finally:
        _Kept.records = outer


def log_again(records: list) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)


class NotRenderedAhead(Exception):
    """This page is left to MkDocs (the child's render would not be the one MkDocs makes)."""


def render_in_child(page, config, files) -> tuple[dict, list]:
    """MkDocs' render of page.markdown, as the attributes it sets and the records it logs."""
    before = dict(vars(page))
    config._current_page = page
    try:
        with kept_logs() as records:
            type(page).render(page, config, files)
    finally:
        config._current_page = None
    attrs = {k: v for k, v in vars(page).items() if before.get(k, _MISSING) is not v}
    if "content" not in attrs or not attrs.keys() <= RENDER_SETS:
        raise NotRenderedAhead(f"Page.render set {sorted(attrs.keys() - RENDER_SETS)}")
    links = attrs.get("links_to_anchors")
    if links:
        attrs["links_to_anchors"] = {f.src_uri: anchors for f, anchors in links.items()}
    return attrs, records


def apply(page, rendered: Rendered, files) -> None:
    """Set what MkDocs' render would have set, and log what it would have logged."""
    for name, value in rendered.attrs.items():
        if name == "links_to_anchors" and value:
            value = {files.get_file_from_path(src): anchors for src, anchors in value.items()}
        setattr(page, name, value)
    log_again(rendered.render_logs)
