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

Once MkDocs has read every page, the child also puts the pages it rendered through the theme's
template (a second round, see Prefetch's `then`): Material renders the whole nav into each page,
and its search plugin parses each page's HTML, which together cost about as much as rendering
the Markdown. The child writes each such page's output file too. This process uses the
child's output, leaves the file alone when the bytes it would write are the child's, and adds
the search entries the child made. It does so only while no plugin other than this one and
Material's search works on pages (tags, blog, macros and hooks all leave the templates to
MkDocs), and only for a page whose context and content, when MkDocs is about to render the
template, are the ones the child rendered it with.
"""

from __future__ import annotations

import logging
import threading
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


@dataclass(slots=True)
class Built:
    """One page put through the theme's template by the child, with what its context held."""

    template: str  # the template's name
    keys: tuple  # the context's keys, after every page_context hook
    urls: tuple  # base_url, extra_css, extra_javascript: what differs from page to page
    title: str | None
    content: str | None  # page.content the template saw (None: the unstashed HTML MkDocs' process has)
    html: str  # the template's output
    entries: list | None  # what Material's search added to its index (None: no search plugin)
    logs: list
    written: bool = False  # the child wrote `html` to the page's output file (see write_built)


@dataclass(slots=True)
class ReadPages:
    """What the child needs of the pages MkDocs' process rendered, to put them through the
    template too."""

    shown: dict  # src -> (title, meta) of every page in the nav: what the nav shows of it
    pages: dict  # src -> (content, toc, title, meta or None: the child makes a postmortem's)
    blobs: dict  # the HTML their placeholders stand for


# events whose handlers work on a page between reading it and rendering its template
PAGE_EVENTS = ("env", "pre_page", "page_read_source", "page_markdown", "page_content", "page_context")


def search_plugin(config):
    """Material's search plugin, if the site has it."""
    try:
        from material.plugins.search.plugin import SearchPlugin
    except ImportError:
        return None
    return next((p for p in config.plugins.values() if isinstance(p, SearchPlugin)), None)


def builds_whole_pages(config, ours) -> bool:
    """Whether the child may put pages through the template: no plugin but this one (and
    Material's search, whose page_context hook indexes the page) handles a page event."""
    return no_other_page_hooks(config, ours, PAGE_EVENTS)


def no_other_page_hooks(config, ours, events) -> bool:
    """Whether no plugin but `ours` handles these events, Material's search's page_context hook
    aside (it reads the page and its meta, and changes neither)."""
    search = search_plugin(config)
    for event in events:
        for handler in config.plugins.events.get(event, ()):
            owner = getattr(handler, "__self__", None)
            if owner is ours or (owner is search and owner is not None and event == "page_context"):
                continue
            return False
    return True


def build_in_child(page, config, nav, env, doc_files, index) -> Built:
    """What MkDocs' _build_page makes of a rendered page, up to the template's output."""
    from mkdocs.commands.build import get_context

    config._current_page = page
    page.active = True
    start = len(index.entries) if index is not None else 0
    try:
        with kept_logs() as records:
            context = get_context(nav, doc_files, config, page)
            name = page.meta.get("template", "main.html")
            template = env.get_template(name)
            context = config.plugins.on_page_context(context, page=page, config=config, nav=nav)
            html = template.render(context)
    finally:
        page.active = False
        config._current_page = None
    entries = None
    if index is not None:
        entries = index.entries[start:]
        del index.entries[start:]
    return Built(template=name, keys=tuple(context), urls=_urls(context), title=page.title, content=page.content,
                 html=html, entries=entries, logs=records)


def write_built(page, built: Built) -> None:
    """In the child: the page's output file, written as MkDocs' _build_page would write it
    (nothing for an empty output, which MkDocs skips). MkDocs' process then writes the file
    only if what it would write differs (see SkipWritten). Writing a page cost 0.3-0.5 ms in a
    build at 1,000 postmortems; left to MkDocs' process, the writes of the pages the child
    made were most of what that process did after the two met, while the child sat idle."""
    from mkdocs import utils

    if not built.html.strip():
        return
    try:
        utils.write_file(_as_written(built.html), page.file.abs_dest_path)
    except OSError:  # MkDocs' process writes it, and reports what fails
        return
    built.written = True


def _as_written(html: str) -> bytes:
    """A page's output as MkDocs' _build_page encodes it for write_file."""
    return html.encode("utf-8", errors="xmlcharrefreplace")


class SkipWritten:
    """Stands in for mkdocs.utils.write_file while the child's pages are taken: a file the
    child wrote is not written again when the bytes are the very ones it wrote. Anything
    else (another page's output, a render that differs, a later plugin's change) is written."""

    def __init__(self) -> None:
        from mkdocs import utils

        self.utils, self.write_file = utils, utils.write_file
        self.written: dict[str, str] = {}  # output path -> the HTML the child wrote there
        self.skipped = 0
        utils.write_file = self

    def __call__(self, content: bytes, output_path: str) -> None:
        html = self.written.pop(output_path, None)
        if html is not None and _as_written(html) == content:
            self.skipped += 1
            return
        self.write_file(content, output_path)

    def close(self) -> None:
        if self.utils.write_file is self:
            self.utils.write_file = self.write_file


def _urls(context) -> tuple:
    return context.get("base_url"), context.get("extra_css"), context.get("extra_javascript")


class Prebuilt:
    """Stands in for a page's template in MkDocs' _build_page: its render is the child's
    output when MkDocs hands it the context the child rendered with, and the template's own
    render otherwise."""

    def __init__(self, template, built: Built, page, nav, used) -> None:
        self.template, self.built, self.page, self.nav, self.used = template, built, page, nav, used

    def render(self, context) -> str:
        built, page = self.built, self.page
        if (context.get("page") is page and context.get("nav") is self.nav and tuple(context) == built.keys
                and page.content == built.content and page.title == built.title and _urls(context) == built.urls):
            log_again(built.logs)
            self.used()
            return built.html
        return self.template.render(context)

    def __getattr__(self, name):
        return getattr(self.template, name)


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


class held_logs:  # noqa: N801 - used as a context manager, like contextlib's
    """Records this thread logs meanwhile, held back instead of handled (the caller may handle
    them), unless the block raises: then they are handled, as they would have been before the
    error. Other threads' records (under serve, the file watcher's and the web server's) are
    handled at once: held, they could be dropped with the block's or logged in every build."""

    __slots__ = ("records", "handle")

    def __enter__(self) -> list[logging.LogRecord]:
        records: list[logging.LogRecord] = []
        handle = logging.Logger.handle
        me = threading.get_ident()

        def hold(logger: logging.Logger, record: logging.LogRecord) -> None:
            if threading.get_ident() == me:
                records.append(record)
            else:
                handle(logger, record)

        self.records, self.handle = records, handle
        logging.Logger.handle = hold
        return records

    def __exit__(self, kind, error, traceback) -> None:
        logging.Logger.handle = self.handle
        if kind is not None:
            log_again(self.records)


class NotRenderedAhead(Exception):
    """This page is left to MkDocs (the child's render would not be the one MkDocs makes)."""


def render_in_child(page, config, files) -> tuple[dict, list]:
    """MkDocs' render of page.markdown (the page's own render, if a hook set one), as the
    attributes it sets and the records it logs."""
    before = dict(vars(page))
    config._current_page = page
    try:
        with kept_logs() as records:
            page.render(config, files)
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
