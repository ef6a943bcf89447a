"""Under `mkdocs serve`, each page's render kept for the next rebuild.

MkDocs converts every page's Markdown again on every rebuild: at 5,000 postmortems that was
8.5 s of a 24 s rebuild after one edit, for pages whose text had not changed. What `Page.render`
makes of a page depends on its Markdown, on the site's files (links resolve against them and
against the page's own URL), on the Markdown extensions and their settings, and on the link
validation settings (the level of what it logs). While all of those are the same as in the last
build, the page gets that build's HTML, table of contents, title and anchors, with its links to
anchors pointed at this build's files, and the messages that render logged are logged again, so
the serve log and `--strict` count them in every build.

Used only where the header render is (an explicit list of extensions made afresh from their
names, see header_render), and not with pymdownx.snippets, whose files can change while the
page's text does not. The table of contents and anchor set are handed out as copies when another
plugin handles page events (it could change them in place); otherwise the same objects serve
every build.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .header_render import markdown_settings
from .render_ahead import held_logs, log_again

_SETS = ("content", "toc", "_title_from_render", "present_anchor_ids", "links_to_anchors")
_MISSING = object()
_PAGES_LOG = logging.getLogger("mkdocs.structure.pages")  # MkDocs keeps links_to_anchors above DEBUG


def usable(config) -> bool:
    """No extension that reads files of its own while rendering."""
    return not any(str(ext).removeprefix("markdown.extensions.") == "pymdownx.snippets"
                   for ext in config.markdown_extensions)


@dataclass(slots=True)
class _Kept:
    """One page's render: the attributes are those Page.render sets (see _SETS), flat rather than
    in a dict, so taking them touches one object (see RenderMemo.render)."""

    markdown: str  # the text rendered
    content: str
    toc: object
    title: object  # _title_from_render
    anchors: object  # present_anchor_ids
    links: dict | None  # links_to_anchors, keyed by source path rather than File
    unset: tuple  # those of _SETS the render left unset (on MkDocs' Page, class attributes)
    records: list  # what it logged


def _site_key(config, files) -> tuple:
    """Everything but the page's own text that its render reads: of each file its path, its
    inclusion, and its output path and URL where known. MkDocs computes those two on first use
    from the path and use_directory_urls (in the key), or a plugin sets them: unknown, they are
    what the path makes them. (Computing them here cost 13 ms a rebuild for the theme's files.)
    The files make one string, not a tuple each: thousands of new tuples that live on pushed
    the collector into a full pass, 16 ms at 5,000 postmortems."""
    return (markdown_settings(config), repr(config.validation),
            config.use_directory_urls, _PAGES_LOG.getEffectiveLevel(),
            "\n".join([f"{f.src_uri}\t{d.get('dest_uri')}\t{d.get('url')}\t{f.inclusion.value}"
                       for f in files for d in (f.__dict__,)]))


class RenderMemo:
    """Renders kept from one serve build to the next (see the module's docstring)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.files = None  # the Files the key was made for: one object a build
        self.kept: dict[str, _Kept] = {}  # src -> its last render
        self.shared = True  # hand out the kept toc and anchors themselves (no other page hooks)
        self.reused = 0
        self.rendered = 0

    def start(self, shared: bool) -> None:
        """A new build: counters at zero; the key is checked against its files at its first render."""
        self.shared, self.reused, self.rendered, self.files = shared, 0, 0, None

    def render(self, page, config, files, render) -> None:
        """`render(page, config, files)`, or what it made of the same text in the last build.
        Under serve that is nearly every page, and this runs between two pages' work in MkDocs,
        where each object it touches is out of the CPU's caches: hence the flat record."""
        if files is not self.files:
            key = _site_key(config, files)
            if key != self.key:
                self.key, self.kept = key, {}
            self.files = files
        kept = self.kept.get(page.file.src_uri)
        if kept is not None and kept.markdown == page.markdown:
            if kept.unset or not self.shared:
                self._apply(page, kept, files)
            else:
                page.content, page.toc, page._title_from_render, page.present_anchor_ids = \
                    kept.content, kept.toc, kept.title, kept.anchors
                page.links_to_anchors = _links_here(kept.links, files) if kept.links is not None else None
                if kept.records:
                    log_again(kept.records)
            self.reused += 1
            return
        self._render(page, config, files, render)

    def _render(self, page, config, files, render) -> None:
        src, text = page.file.src_uri, page.markdown
        self.kept.pop(src, None)
        before = dict(vars(page))
        with held_logs() as records:  # logged at once if the render raises
            render(page, config, files)
        log_again(records)
        self.rendered += 1
        if any(before.get(name, _MISSING) is not value for name, value in vars(page).items() if name not in _SETS):
            return  # a render of another class's that sets more than MkDocs' does: not kept
        after = [vars(page).get(name, _MISSING) for name in _SETS]
        unset = tuple(name for name, value in zip(_SETS, after) if value is _MISSING)  # as on a new page
        content, toc, title, anchors, links = after
        if links is not _MISSING and links is not None:
            links = {f.src_uri: dict(anchors) for f, anchors in links.items()}
        kept = _Kept(text, content, toc, title, anchors, links, unset, records)
        if not self.shared:
            kept.toc, kept.anchors = _copies(toc, anchors)
        self.kept[src] = kept

    def _apply(self, page, kept: _Kept, files) -> None:
        toc, anchors = _copies(kept.toc, kept.anchors) if not self.shared else (kept.toc, kept.anchors)
        links = kept.links
        if links is not None and links is not _MISSING:
            links = _links_here(links, files)
        for name, value in zip(_SETS, (kept.content, toc, kept.title, anchors, links)):
            if name not in kept.unset:
                setattr(page, name, value)
        log_again(kept.records)


def _links_here(links: dict, files) -> dict:
    """A kept render's links to anchors (by source path) keyed by this build's Files, which
    MkDocs' anchor check looks the linked pages up with."""
    return {files.get_file_from_path(src): dict(anchors) for src, anchors in links.items()}


def _copies(toc, anchors) -> tuple:
    """The table of contents and anchors as new objects (another plugin may change them)."""
    return (_toc_copy(toc) if toc is not None and toc is not _MISSING else toc,
            set(anchors) if isinstance(anchors, set) else anchors)


def _toc_copy(toc):
    copy = toc.__class__.__new__(toc.__class__)
    copy.__dict__.update(toc.__dict__)
    copy.items = _links_copy(toc.items)
    return copy


def _links_copy(items: list) -> list:
    out = []
    for item in items:
        copy = item.__class__.__new__(item.__class__)
        copy.__dict__.update(item.__dict__)  # with `active`, and whatever else a plugin set
        copy.children = _links_copy(item.children)
        out.append(copy)
    return out
