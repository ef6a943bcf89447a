"""The MkDocs plugin: a thin adapter from MkDocs events to pmkb.core and pmkb.site.

Findings go through MkDocs' plugin logger, so `mkdocs build --strict` fails on
them; generated pages are virtual files (nothing is written into docs_dir);
postmortems stay out of the nav (every page renders the whole nav, so listing
thousands of postmortems there costs minutes and hundreds of MB) and are reached
through the generated index pages.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import posixpath
import re
from datetime import date
from importlib import resources
from pathlib import Path

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, CombinedEvent, event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page as MkDocsPage
from mkdocs.utils.meta import YAML_RE, get_data

from .core.config import Config, ConfigError
from .core.editions import EDITIONS, chosen_edition, includes
from .core.cache import ResultCache, fingerprint
from .core.gc_pause import freeze_heap, paused_gc, thaw_heap
from .core.kb import MARKDOWN_SUFFIXES, CheckResult, ParseCache, RelativeTo, default_workers, is_excluded
from .core.parallel import Prefetch
from .core.parse import content_hash, decode
from .core.kb import check as run_check
from .sanitize import clean_html
from . import header_render, nav_memo, render_ahead, render_memo
from . import site as site_module
from .site import ASSETS, PROSE_MARK, Page, SiteBuilder, safe_title

log = get_plugin_logger(__name__)

NAV_MODES = ("section", "link", "none", "full")
_H2 = re.compile(r"<h2\b([^>]*)>")  # the generated header's headings (see PmkbPlugin._clean)
_TITLE_LISTS = ("tags", "services", "authors")  # page.meta lists whose entries are made safe as titles


class PmkbConfig(base.Config):
    """Mirrors pmkb.core.config's options; the core validates the values."""

    enabled = c.Type(bool, default=True)
    postmortems_dir = c.Type(str, default="")
    exclude = c.ListOfItems(c.Type(str), default=[])
    timezone = c.Type(str, default="UTC")
    id_prefix = c.Type(str, default="INC")
    currency = c.Type(str, default="USD")
    severities = c.Optional(c.Type(list))
    required = c.Optional(c.Type(dict))
    status_levels = c.Optional(c.Type(dict))
    rules = c.Optional(c.Type(dict))
    blame = c.Type(dict, default={})
    people = c.ListOfItems(c.Type(str), default=[])
    as_of = c.Optional(c.Type((str, date)))
    max_file_size = c.Type(int, default=1_048_576)
    templates_dir = c.Type(str, default="templates")
    nav = c.Choice(NAV_MODES, default="section")
    nav_title = c.Type(str, default="Postmortems")
    pages_dir = c.Type(str, default="")
    edition = c.Optional(c.Type(str))
    recurrence_window_days = c.Optional(c.Type(int))
    overdue_policy = c.Optional(c.Type(list))
    workers = c.Optional(c.Type(int))
    cache_dir = c.Optional(c.Type(str))
    per_page = c.Type(int, default=500)
    latest = c.Type(int, default=10)
    customers = c.ListOfItems(c.Type(str), default=[])


# InclusionLevel.is_included as a set lookup: MkDocs' own predicate reads two enum values
# through their descriptors, for each of thousands of pages in every rebuild
_INCLUDED = frozenset(level for level in InclusionLevel if level.is_included())
_EXPORTS = ("pmkb", "exports")  # the key under which the forked child makes the exports (see _render_ahead)


class _RenderedAhead(File):
    """A generated page whose Markdown (or an export) a forked child makes while MkDocs works
    on other pages: MkDocs reads `_content` (content_string, copy_file) only when it gets to
    the file, and `fetch` then takes it from the child (or makes it here)."""

    fetch = None

    @property
    def _content(self):
        if self.fetch is not None:
            self.__dict__["_pmkb_content"], self.fetch = self.fetch(), None
        return self.__dict__.get("_pmkb_content")

    @_content.setter
    def _content(self, value) -> None:
        self.__dict__["_pmkb_content"], self.fetch = value, None


class _RenderedHere(MkDocsPage):
    """A page whose render pmkb makes, from on_page_markdown until MkDocs renders it: a class
    rather than a render bound to each page, since under serve every page of every rebuild
    goes through it (a partial and a bound method a page were two objects for the collector)."""

    __slots__ = ()
    plugin: PmkbPlugin | None = None  # the plugin's one instance (supports_multiple_instances is False)

    def render(self, config, files) -> None:
        kind, self.__class__ = self.__class__, MkDocsPage  # MkDocs' own class again from here on
        kind.with_plugin(self, config, files)

    @classmethod
    def render_once(cls, page, config, files) -> None:
        del page.render
        cls.with_plugin(page, config, files)

    def with_plugin(self, config, files) -> None:
        raise NotImplementedError


class _PostmortemPage(_RenderedHere):
    __slots__ = ()

    def with_plugin(self, config, files) -> None:
        _RenderedHere.plugin._postmortem_render(self, config, files)


class _OtherPage(_RenderedHere):
    __slots__ = ()

    def with_plugin(self, config, files) -> None:
        _RenderedHere.plugin._other_render(self, config, files)


class PmkbPlugin(BasePlugin[PmkbConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        self.cache = ParseCache()
        self.core: Config | None = None
        self.result: CheckResult | None = None
        self.site: SiteBuilder | None = None
        self.ahead: Prefetch | None = None  # pages a forked child renders while MkDocs renders others
        self.ahead_plan: list[str] | None = None  # the generated pages, for on_nav to start the child
        self.got: dict[str, render_ahead.Rendered] = {}  # src -> the child's render, until on_page_context
        self.ahead_used = 0  # pages whose render by the child was used
        self.ahead_pages: list[str] = []  # the pages the child was asked to render
        self.ahead_nav = None  # the nav the child puts pages through the template with, if it does
        self.ahead_mode: str | None = None  # PMKB_RENDER_AHEAD
        self.built: dict[str, render_ahead.Built] = {}  # src -> the child's template output, until on_page_context
        self.built_used = 0  # pages whose template output by the child was used
        self.skip_written: render_ahead.SkipWritten | None = None  # MkDocs' write_file while it takes them
        self.nav = None  # this build's (on_nav)
        self.nav_memo: nav_memo.NavMemo | None = None  # Material's nav, rendered once for pages outside it
        self.header_render: header_render.HeaderRender | None = None  # postmortem pages' Page.render
        self.render_memo: render_memo.RenderMemo | None = None  # under serve, pages' renders kept for the next build
        self.pm_render = None  # this build's header_render.render
        # under serve, src -> (page.content, unstashed) of pages other than postmortems, the last
        # build's and this one's (a postmortem's is in its _PageMemo)
        self.unstashed_before: dict[str, tuple[str, str]] = {}
        self.unstashed_now: dict[str, tuple[str, str]] = {}
        self.indexed: dict[str, str] = {}  # src -> page.content the child indexed, of pages read here
        self.kept_in_child: dict[str, render_ahead.Rendered] = {}  # in the child: its renders, for the template
        self.page_memos: dict[str, _PageMemo] = {}  # src -> its memo, for this build's postmortem pages alone
        # what one build leaves for the next under `mkdocs serve` (see _remember)
        self.memo_key: tuple | None = None
        self.previous: SiteBuilder | None = None  # the last build's, for its rendered rows and templates
        self.memos: dict[str, _PageMemo] = {}  # src -> what the page hooks keep of a postmortem page
        self.serving = False
        # under serve, page.meta is the kept dict itself, not a copy, while nothing but this plugin
        # and Material's search (which only read it) sees a page: copying it cost 4 µs a page
        self.meta_shared = False
        self.dirty = False  # on_startup's; MkDocs' CLI calls it, its Python API need not
        self.frozen = False  # the heap is left out of the collector's passes (see freeze_heap)
        self.exports: dict[str, str] | None = None  # the exports the child made, once taken
        self.disk_folder: Path | None = None  # the results cache a serve session has filled
        self.files_memo: tuple[tuple, dict] = ((), {})  # (settings, src -> (src_dir, rel or None, Path))
        self.other_pages: list[File] = []  # the pages on_files was given that are not postmortems

    # Defining on_startup keeps this instance (and its parse cache) across `mkdocs serve` rebuilds.
    def on_startup(self, *, command, dirty) -> None:
        self.serving = command == "serve"  # only then is anything kept for a next build
        self.dirty = dirty

    def on_config(self, config):
        if not self.config.enabled:
            return config
        opts = {k: v for k, v in self.config.items() if k != "enabled" and v is not None}
        root = Path(config.config_file_path).parent if config.config_file_path else Path.cwd()
        try:
            self.core = Config.from_options(opts, root=root, docs_dir=config.docs_dir,
                                            config_file=Path(config.config_file_path or "mkdocs.yml"))
        except ConfigError as exc:
            raise PluginError(str(exc)) from None
        self.core.for_site = True  # pages reuse the front matter the check read (see on_page_read_source)
        for name in ASSETS:
            target = config.extra_css if name.endswith(".css") else config.extra_javascript
            if f"assets/pmkb/{name}" not in [str(x) for x in target]:
                target.append(f"assets/pmkb/{name}")
        self.user_nav = config.nav
        _RenderedHere.plugin = self  # once: a class attribute set anew would reset type caches
        if os.environ.get("PMKB_HEADER_RENDER") == "markdown" or not header_render.usable(config):
            self.header_render = None
        elif self.header_render is not None and self.serving:
            self.header_render = self.header_render.again(config)
        else:
            self.header_render = header_render.HeaderRender(config, PROSE_MARK, keep=self.serving)
        if (self.serving and self.header_render is not None and render_memo.usable(config)
                and os.environ.get("PMKB_RENDER_MEMO") != "off"):
            self.render_memo = self.render_memo or render_memo.RenderMemo()
        else:
            self.render_memo = None
        return config

    # ---- files --------------------------------------------------------------------
    def _postmortem_files(self, files: Files) -> list[tuple[Path, str, File]]:
        cfg = self.core
        prefix = cfg.postmortems_dir.strip("/")
        settings = (prefix, tuple(cfg.exclude))
        if self.files_memo[0] != settings:
            self.files_memo = (settings, {})
        memo = self.files_memo[1]  # what a file is, kept across serve rebuilds
        out = []
        others = self.other_pages = []  # for the automatic nav (see _set_nav)
        for f in files.documentation_pages(inclusion=_INCLUDED.__contains__):
            if f.generated_by:
                continue
            hit = memo.get(f.src_uri)
            if hit is None or hit[0] != f.src_dir:  # abs_src_path is src_dir joined with src_uri
                path = f.abs_src_path
                rel = self._postmortem_rel(f.src_uri, prefix) if path else None
                hit = memo[f.src_uri] = (f.src_dir, rel, Path(path) if rel is not None else None)
            if hit[1] is not None:
                out.append((hit[2], hit[1], f))
            else:
                others.append(f)
        return out

    def _postmortem_rel(self, src: str, prefix: str) -> str | None:
        """A page's path below the postmortems folder if it is a postmortem, else None."""
        if prefix:
            if not src.startswith(prefix + "/"):
                return None
            rel = src[len(prefix) + 1:]
        else:
            rel = src
        name = rel.rsplit("/", 1)[-1].lower()
        if not name.endswith(MARKDOWN_SUFFIXES) or name in ("index.md", "readme.md"):
            return None
        if is_excluded(rel, self.core.exclude):
            return None
        return rel

    @event_priority(50)  # before other plugins (tags, blog) look at the files
    def on_files(self, files: Files, *, config) -> Files:
        if not self.config.enabled or self.core is None:
            return files
        with paused_gc():
            files = self._generate(files, config)
            if not self.frozen:  # before the collector's first pass over what the check made
                self.frozen = freeze_heap()
            return files

    def _generate(self, files: Files, config) -> Files:
        found = self._postmortem_files(files)
        disk = ResultCache.for_config(self.core)
        if self.serving and disk is not None:
            # Under serve the check's memory answers a rebuild; the results cache on disk was
            # filled by the session's first build with this configuration, and is not written for
            # every edit (a later run re-checks the files edited meanwhile).
            if disk.folder == self.disk_folder:
                disk = None
            else:
                self.disk_folder = disk.folder
        self.result = run_check(self.core, [(p, rel) for p, rel, _ in found], display=RelativeTo(self.core.root),
                                cache=self.cache, disk=disk)
        notices = 0
        levels = {"error": log.error, "warning": log.warning}
        debug = log.isEnabledFor(logging.DEBUG)
        for d in self.result.diagnostics:
            level = levels.get(d.severity)
            if level is not None or debug:
                (level or log.debug)(f"{d.path}:{d.span.line}:{d.span.column}: {d.rule} [{d.code}] {d.message}")
            notices += d.severity == "notice"
        if notices:  # one line, not one per overdue item: `mkdocs build -v` or `pmkb check` lists them
            log.info(f"{notices} notice{'s' * (notices != 1)} (overdue action items and the like); "
                     "`pmkb check` or `mkdocs build -v` lists them")

        edition = chosen_edition(self.core)  # self.core.options hold the plugin's options
        if edition not in EDITIONS:
            raise PluginError(f"pmkb configuration: 'edition': {edition!r} is not one of {', '.join(EDITIONS)}")
        if self.serving:
            self._remember(config, edition)
            self.meta_shared = render_ahead.no_other_page_hooks(config, self, (*render_ahead.PAGE_EVENTS, "post_page"))
            if self.render_memo is not None:
                self.render_memo.start(shared=self.meta_shared)
                self.pm_render = self.header_render.render  # bound once, not once a page
            self.unstashed_before, self.unstashed_now = self.unstashed_now, {}
        self.site = SiteBuilder(self.result, self.core, use_directory_urls=config.use_directory_urls,
                                site_name=config.site_name, stash=True, edition=edition, previous=self.previous,
                                memo=self.serving)
        if self.previous is not None and self.previous.kb_key != self.site.kb_key:
            for memo in self.memos.values():
                memo.header = None  # prose and headers name people and IDs another file's edit may have changed
        if not self.serving:
            self.memos = {}
        memos, page_memos = self.memos, {}
        by_rel = {pm.rel_path: pm for pm in self.result.kb.postmortems}
        full_nav = self.config.nav == "full"
        not_in_nav = InclusionLevel.NOT_IN_NAV
        kept = []
        # Under serve, which headers are certainly unchanged, asked here for every page at once:
        # in the page hook, between two pages' renders, the same question cost 5 µs a page.
        header_unchanged = self.site.header_unchanged if self.serving else None
        for item in found:  # once per postmortem in every rebuild: locals, no method calls
            _, rel, f = item
            pm = by_rel.get(rel)
            # a postmortem outside this edition leaves no trace: no page, no search entry, no sitemap line
            if pm is None or (pm.fatal and edition == "public") or (not pm.fatal and not includes(pm, edition)):
                files.remove(f)
                continue
            kept.append(item)
            if not pm.fatal:
                src = f.src_uri
                memo = memos.get(src)
                if memo is None:
                    memo = memos[src] = _PageMemo()
                memo.pm, memo.meta_from_check, memo.blobs = pm, None, None
                memo.header_unchanged = header_unchanged is not None and header_unchanged(pm)
                page_memos[src] = memo
            if not full_nav:
                f.inclusion = not_in_nav
        found = kept
        self.page_memos = page_memos

        self._replace_unreadable(files, found, config)
        self._stop_ahead()
        self.got, self.ahead_plan = {}, None
        ahead = (not self.serving and not self.dirty and os.environ.get("PMKB_RENDER_AHEAD") != "off"
                 and render_ahead.usable(config) and default_workers(self.core, len(page_memos), None) > 1)
        self.site.defer = ahead  # table and problem pages rendered by the child (see _render_ahead)
        self.nav_pages: list[Page] = []
        deferred: dict[str, Page] = {}
        generated: list[str] = []
        for page in self.site.pages():
            if files.get_file_from_path(page.src) is not None:
                if page.src != self.site.path("index.md"):
                    log.warning(f"{page.src}: a file of yours has the path of a generated page; yours is kept")
                continue
            # none: nothing of pmkb's in MkDocs' automatic nav either (a nav of yours may list any page)
            in_nav = page.in_nav and self.config.nav != "none" and (
                self.config.nav != "link" or page.src == self.site.path("index.md"))
            inclusion = InclusionLevel.UNDEFINED if in_nav else InclusionLevel.NOT_IN_NAV
            if ahead and not page.rendered:
                deferred[page.src] = page
                f = _RenderedAhead.generated(config, page.src, content="", inclusion=inclusion)
                f.fetch = functools.partial(self._page_markdown_ahead, page)
                files.append(f)
            else:
                files.append(File.generated(config, page.src, content=page.markdown, inclusion=inclusion))
            generated.append(page.src)
            if page.in_nav:
                self.nav_pages.append(page)
        self.exports = None
        if ahead:  # the child makes them first, while MkDocs' process starts on the pages
            for path in self.site.export_paths():
                f = _RenderedAhead.generated(config, path, content="")
                f.fetch = functools.partial(self._export_ahead, path)
                files.append(f)
        else:
            for path, text in self.site.exports().items():
                files.append(File.generated(config, path, content=text))
        for name in ASSETS:
            data = (resources.files("pmkb") / "assets" / name).read_bytes()
            files.append(File.generated(config, f"assets/pmkb/{name}", content=data))
        self._set_nav(config, files)
        if self.serving:
            self.previous = self.site
        elif ahead:
            self.ahead_plan = generated
        return files

    # ---- pages rendered ahead (see render_ahead) ------------------------------------
    @event_priority(-100)  # once every plugin has had its say about the nav
    def on_nav(self, nav, *, config, files):
        self.nav = nav
        if self.ahead_plan is not None:
            self._render_ahead(files, config, nav, self.ahead_plan)
            self.ahead_plan = None
        return nav

    def _render_ahead(self, files: Files, config, nav, generated: list[str]) -> None:
        """A forked child renders this plugin's pages (postmortems, then generated pages) from
        the last back, while MkDocs renders from the first; each takes what the other has not.
        Then, where no other plugin works on pages, it puts the pages it rendered through the
        theme's template while MkDocs does the same from the first."""
        ours = set(self.page_memos).union(generated)
        keys = [f.src_uri for f in files.documentation_pages() if f.src_uri in ours]

        def child_setup() -> None:
            site_module._STASH_IDS = itertools.count(1 << 40)  # never a key the parent hands out meanwhile
            render_ahead.keep_logs_in_child()

        mode = self.ahead_mode = os.environ.get("PMKB_RENDER_AHEAD")
        whole = mode != "markdown" and render_ahead.builds_whole_pages(config, self)
        self.ahead_nav = nav if whole else None
        self.got, self.built, self.ahead_used, self.built_used = {}, {}, 0, 0
        self.ahead_pages = keys
        # tests: "all" has the child do every page, "templates" every template but no Markdown
        self.ahead = Prefetch([*keys, _EXPORTS], functools.partial(self._render_in_child, files, config), child_setup=child_setup,
                              share=mode != "all", share_then=mode not in ("all", "templates"),
                              then=functools.partial(self._pages_in_child, files, config, nav) if whole else None)

    def _render_in_child(self, files: Files, config, src: str) -> render_ahead.Rendered:
        """In the child: what this plugin's hooks and MkDocs' render make of one page."""
        if src == _EXPORTS:
            return self.site.exports()
        if self.ahead_mode == "templates":
            raise render_ahead.NotRenderedAhead("tests: MkDocs renders the Markdown of every page")
        file = files.get_file_from_path(src)
        page = file.page if file.page is not None else MkDocsPage(None, file, config)
        source = md_in = None

        def markdown() -> str:  # as MkDocs' read_source and this plugin's page_markdown hooks make it
            nonlocal source, md_in
            if src in self.page_memos:
                source = self.on_page_read_source(page=page, config=config)
                if source is None:
                    raise render_ahead.NotRenderedAhead("MkDocs reads this file itself")
            else:
                source = file.content_string
            md_in, page.meta = get_data(source)
            md_in = self._page_meta(md_in, page=page, config=config, files=files)
            return self._page_header(md_in, page=page, config=config, files=files)

        with render_ahead.kept_logs() as logs:
            page.markdown, stashed = self.site.stashing_into(markdown)
        attrs, render_logs = render_ahead.render_in_child(page, config, files)
        cleaned = self._clean(src, attrs["content"])
        rendered = render_ahead.Rendered(source=source, md_in=md_in, markdown=page.markdown, stashed=stashed,
                                         attrs=attrs, cleaned=cleaned, unstashed=self.site.unstash(cleaned), logs=logs,
                                         render_logs=render_logs)
        if self.ahead_nav is not None:  # for the template, later: the HTML on_page_context is handed, no more
            self.kept_in_child[src] = dataclasses.replace(rendered, source=None, md_in=None, markdown=None, attrs={},
                                                          logs=[], render_logs=[])
        return rendered

    def _pages_in_child(self, files: Files, config, nav, read: render_ahead.ReadPages):
        """In the child, once MkDocs has read every page: how to put a page through the
        template. The child rendered some pages itself; `read` has what MkDocs' process has of
        the others (see ReadPages)."""
        for page in nav.pages:
            known = read.shown.get(page.file.src_uri)
            if known is not None:
                page.title, page.meta = known
        self.site.restash(read.blobs)
        env = config.plugins.on_env(config.theme.get_env(), config=config, files=files)
        doc_files = files.documentation_pages(inclusion=InclusionLevel.is_included)
        index = getattr(render_ahead.search_plugin(config), "search_index", None)

        def build(src: str) -> render_ahead.Built | None:
            kept = self.kept_in_child.pop(src, None)
            if kept is not None:  # rendered here: on_page_context takes its unstashed HTML
                page = files.src_uris[src].page
                self.got[src] = kept
                page.content = kept.cleaned  # as this plugin's on_page_content leaves it
            else:
                state = read.pages.pop(src, None)
                if state is None:  # neither process rendered it (or it is no page)
                    return None
                file = files.src_uris[src]
                page = file.page if file.page is not None else MkDocsPage(None, file, config)
                page.content, page.toc, page.title, page.meta = state
                if page.meta is None:  # a postmortem's: made here as MkDocs' process made it
                    page.meta = {}
                    if self.on_page_read_source(page=page, config=config) is None:
                        return None  # MkDocs read this file itself
                    self._page_meta("", page=page, config=config, files=files)
            built = render_ahead.build_in_child(page, config, nav, env, doc_files, index)
            render_ahead.write_built(page, built)
            if kept is not None and built.content is kept.unstashed:
                built.content = None  # MkDocs' process has this very text: on_page_context fills it in
            return built

        return build

    def _export_ahead(self, path: str) -> str:
        """An export's text, when MkDocs copies it: the child's, or made here."""
        if self.exports is None:
            made = self.ahead.take(_EXPORTS) if self.ahead is not None else None
            if made is not None:
                log.debug("exports made by a forked process")
            self.exports = made if made is not None else self.site.exports()
        return self.exports[path]

    def _page_markdown_ahead(self, page: Page) -> str:
        """A deferred generated page's Markdown, when MkDocs reads it: the child's, or made here."""
        got = self.got.get(page.src)
        return got.source if got is not None else page.markdown

    def _render_taken(self, page, got: render_ahead.Rendered, config, files) -> None:
        """Page.render of a page the child rendered (set on the page by _page_header)."""
        del page.render
        if page.markdown == got.markdown:
            render_ahead.apply(page, got, files)
            self.ahead_used += 1
            got.source = got.md_in = got.markdown = None  # read by no later hook
        else:  # another plugin changed the Markdown after this plugin's hooks: MkDocs renders it
            got.cleaned = None
            type(page).render(page, config, files)

    @event_priority(-100)  # once every page is read: the child may put pages through the template
    def on_env(self, env, *, config, files):
        self.nav_memo = None
        if (self.config.enabled and self.core is not None and self.nav is not None
                and os.environ.get("PMKB_NAV_MEMO") != "off" and render_ahead.builds_whole_pages(config, self)):
            self.nav_memo = nav_memo.install(env, config, self.nav)
        if self.ahead is not None and self.ahead_nav is not None and self.ahead.then_go(self._read_pages(files)):
            self._take_built_pages(env, config, self.ahead_nav)
        return env

    def _read_pages(self, files: Files) -> render_ahead.ReadPages:
        """What the child needs of the pages this process rendered (see ReadPages)."""
        nav = self.ahead_nav
        read = render_ahead.ReadPages(shown={page.file.src_uri: (page.title, page.meta) for page in nav.pages},
                                      pages={}, blobs=dict(self.site.blobs))
        self.indexed = {}
        for src in self.ahead_pages:
            page = files.src_uris[src].page
            if src not in self.got and page is not None and page.content is not None:
                meta = None if src in self.page_memos else page.meta  # the child makes a postmortem's
                read.pages[src] = (page.content, page.toc, page.title, meta)
                self.indexed[src] = page.content
        return read

    def _take_built_pages(self, env, config, nav) -> None:
        """MkDocs' _build_page gets a page's template from env.get_template(name) and Material's
        search indexes the page in its page_context hook: both take what the child made."""
        get_template = env.get_template

        def page_template(name, parent=None, globals=None):
            if parent is not None or globals is not None:  # Jinja's own (extends, include, import)
                return get_template(name, parent, globals)
            template = get_template(name)
            page = config._current_page
            if page is not None and self.ahead is not None:
                built = self.ahead.take_then(page.file.src_uri)
                if built is not None and built.template == name:
                    self.built[page.file.src_uri] = built
                    if built.written:
                        self.skip_written.written[page.file.abs_dest_path] = built.html
                    return render_ahead.Prebuilt(template, built, page, nav, self._built_used)
            return template

        env.get_template = page_template
        self.skip_written = render_ahead.SkipWritten()
        index = getattr(render_ahead.search_plugin(config), "search_index", None)
        if index is not None:
            add_entry = index.add_entry_from_context

            def add_entry_from_context(page) -> None:
                """The child's entries for a page it indexed with this very content."""
                src = page.file.src_uri
                built = self.built.get(src)
                if built is not None and built.entries is not None:
                    got = self.got.get(src)
                    indexed = got.cleaned if got is not None else self.indexed.get(src)
                    if page.content is indexed:
                        index.entries.extend(built.entries)
                        return
                add_entry(page)

            index.add_entry_from_context = add_entry_from_context

    def _built_used(self) -> None:
        self.built_used += 1

    def _stop_ahead(self) -> None:
        if self.ahead is not None:
            self.ahead.close()
            log.debug(f"rendered ahead by a forked process: {self.ahead_used} of {len(self.ahead_pages)} pages")
            if self.ahead_nav is not None:
                log.debug(f"put through the template by a forked process: {self.built_used} pages")
            if self.skip_written is not None:
                self.skip_written.close()
                log.debug(f"written by a forked process: {self.skip_written.skipped} pages")
                self.skip_written = None
            self.ahead = self.ahead_nav = None

    def _thaw(self) -> None:
        if self.frozen:
            thaw_heap()
            self.frozen = False

    def on_post_build(self, *, config) -> None:
        if self.header_render is not None:
            whole = self.header_render.whole
            log.debug(f"postmortem pages rendered here with the header kept out of Markdown: "
                      f"{self.header_render.fast}, whole: {len(whole)}{' (' + ', '.join(whole[:20]) + ')' if whole else ''}")
        if self.render_memo is not None:
            log.debug(f"pages whose render was kept from the last build: {self.render_memo.reused}, "
                      f"rendered: {self.render_memo.rendered}")
        if self.nav_memo is not None:
            log.debug(f"nav rendered {len(self.nav_memo.rendered)} times for the pages outside it, "
                      f"reused for {self.nav_memo.reused}")
        self._stop_ahead()
        self._thaw()
        if not self.serving:
            self._release()

    def _release(self) -> None:
        """A written build needs none of the knowledge base, pages and parse cache this plugin
        holds (serve keeps them for the next rebuild). Dropped now, they are freed now: left to
        the interpreter's exit, where the generated pages' template environment kept them alive,
        they made that exit take 1.6 s instead of 0.4 s at 5,000 postmortems."""
        if self.site is not None:
            self.site.env.pmkb_site = None  # the environment's link back to the builder
        self.result = self.site = None
        self.cache = ParseCache()
        self.page_memos, self.memos, self.got, self.built, self.indexed = {}, {}, {}, {}, {}
        self.exports = None
        self.nav_pages, self.other_pages, self.ahead_pages = [], [], []
        self.nav = self.nav_memo = None
        self.files_memo = ((), {})

    def on_build_error(self, *, error) -> None:
        self._stop_ahead()
        self._thaw()

    def _remember(self, config, edition: str) -> None:
        """Rendered rows, headers and pages are reused across `mkdocs serve` rebuilds only
        while everything else they depend on is unchanged: configuration and code, the date,
        the edition, URL style and the user's templates."""
        key = (fingerprint(self.core), self.result.kb.as_of, edition, _file_stamp(config.config_file_path),
               _templates_stamp(self.core.root / self.core.templates_dir))
        if key != self.memo_key:
            self.memo_key = key
            self.previous, self.memos = None, {}

    def _replace_unreadable(self, files: Files, found, config) -> None:
        """A postmortem whose front matter could not be read (binary, too large, hostile YAML)
        never reaches MkDocs: a generated page says what is wrong instead."""
        fatal = {pm.rel_path: pm for pm in self.result.kb.postmortems if pm.fatal}
        if not fatal:
            return
        by_path = self.result.by_path()
        for _, rel, f in found:
            pm = fatal.get(rel)
            if pm is None:
                continue
            files.remove(f)
            md = self.site.broken_page(pm)
            files.append(File.generated(config, f.src_uri, content=md, inclusion=InclusionLevel.NOT_IN_NAV))

    @property
    def by_src(self) -> dict:
        """src -> postmortem of this build's postmortem pages."""
        return {src: memo.pm for src, memo in self.page_memos.items()}

    def _set_nav(self, config, files: Files) -> None:
        mode = self.config.nav
        if mode == "none":
            return
        home = self.site.path("index.md")
        section = [{p.title: p.src} for p in self.nav_pages if p.src != home]
        if mode == "full":
            years: dict[str, list] = {}
            for pm in sorted(self.by_src.values(), key=lambda p: (p.date or date.min, p.id or ""), reverse=True):
                years.setdefault(str(pm.date.year) if pm.date else "Undated", []).append(
                    {f"{pm.id}: {pm.title}": self.site.pm_src(pm)})
            section += [{y: items} for y, items in years.items()]
        entry = {self.config.nav_title: home if mode == "link" else section}
        if self.user_nav is not None:
            mentioned = _nav_paths(self.user_nav)
            if not mentioned & {p.src for p in self.nav_pages}:
                config.nav = list(self.user_nav) + [entry]
            return
        generated = {p.src for p in self.nav_pages} | {f"assets/pmkb/{n}" for n in ASSETS}
        others = sorted(f.src_uri for f in self.other_pages
                        if f.src_uri not in generated and f.src_uri != home and f.inclusion.is_in_nav())
        config.nav = [{"Home": home}] + _nest(others) + ([] if mode == "link" else [entry])

    # ---- pages --------------------------------------------------------------------
    def on_page_read_source(self, *, page, config):
        """A postmortem's front matter was read once already, by the check: MkDocs gets the
        prose alone (from the bytes the check read) and the parsed mapping becomes page.meta,
        so neither the file nor its YAML is read twice. Anything unexpected (another
        front-matter form) falls back to MkDocs' own reading."""
        src = page.file.src_uri
        if self.ahead is not None:  # the first hook MkDocs runs for a page: the child's, or ours to make
            got = self.ahead.take(src)
            if got is not None:
                self.got[src] = got
        memo = page.pmkb_memo = self.page_memos.get(src)  # for the later hooks (see _memo_of)
        if memo is None or memo.pm.meta is None:
            return None
        pm = memo.pm
        known = memo.meta
        if known is not None and known[0] is pm.meta:  # the same parse: _page_meta reuses its page meta
            meta = known
        else:
            meta = pm.meta.value()
            if meta is None:
                return None
        got = self.got.get(src) if self.got else None
        if got is not None:
            memo.meta_from_check = meta
            return got.source
        source = memo.source
        if source is not None and source[0] == pm.content_hash:
            memo.meta_from_check = meta
            return source[1]
        data = self.cache.bytes_of(pm)
        text = decode(data) if data is not None else None
        m = YAML_RE.match(text) if text is not None else None
        if m is None or text.count("\n", 0, m.end()) + 1 != pm.body_line:  # MkDocs would read other YAML
            return None
        memo.meta_from_check = meta
        prose = "\n" + text[m.end():].lstrip("\n")  # the blank first line: no MultiMarkdown meta either
        if self.serving:
            memo.source = (pm.content_hash, prose)
        return prose

    @event_priority(100)
    def _page_meta(self, markdown, *, page, config, files):
        """Before any other plugin reads page.meta (tags, blog): the front matter the check
        read, titles made safe, and for the public edition without people."""
        memo = self._memo_of(page)
        if memo is None or self.site is None:
            return markdown
        pm = memo.pm
        meta, memo.meta_from_check = memo.meta_from_check, None
        from_check = meta is not None
        if from_check:
            if type(meta) is tuple:  # on_page_read_source found the same parse as last build's
                if self.meta_shared:
                    page.meta = meta[1]
                    return markdown
                page.meta = made = dict(meta[1])
                for key in meta[2]:  # lists of their own, as made below
                    made[key] = list(made[key])
                return markdown
            page.meta = meta
        if pm.title:
            page.meta["title"] = safe_title(pm.title)
        for key in _TITLE_LISTS:
            if isinstance(page.meta.get(key), list):
                page.meta[key] = [safe_title(str(v)) for v in page.meta[key]]
        if self.site.public:
            for key in ("authors", "roles", "impact", "action_items", "timeline"):
                page.meta.pop(key, None)
        if from_check and self.serving:  # kept apart from page.meta, which other plugins may change
            lists = tuple([k for k in _TITLE_LISTS if isinstance(page.meta.get(k), list)])
            kept = page.meta
            if not self.meta_shared:
                kept = dict(kept)
                for key in lists:
                    kept[key] = list(kept[key])
            memo.meta = (pm.meta, kept, lists)
        return markdown

    def _page_header(self, markdown, *, page, config, files):
        """The generated header above the author's prose (the edition's view of it)."""
        got = self.got.get(page.file.src_uri) if self.got else None  # a page the child rendered
        if got is not None:  # MkDocs takes its render if no later hook changes the Markdown
            page.render = functools.partial(self._render_taken, page, got)
        memo = self._memo_of(page)
        if memo is None or self.site is None:
            if self.render_memo is not None and self.site is not None:
                self._render_here(page, _OtherPage)
            return markdown
        site = self.site
        if got is None and self.header_render is not None:
            self._render_here(page, _PostmortemPage)
        if not self.serving:
            if got is not None and markdown == got.md_in:
                render_ahead.log_again(got.logs)
                return got.markdown
            return site.postmortem_header(memo.pm) + f"\n{PROSE_MARK}\n\n" + site.prose(memo.pm, markdown)
        known = memo.header
        # reused only when made by the previous build, whose builder answered header_unchanged
        if memo.header_unchanged and known is not None and known[0] == site.previous_generation \
                and known[1] == markdown:
            known[0] = site.generation
            memo.blobs = known[3]  # stashed again only if on_page_context needs them
            return known[2]
        pm = memo.pm
        out, stashed = site.stashing_into(
            lambda: site.postmortem_header(pm) + f"\n{PROSE_MARK}\n\n" + site.prose(pm, markdown))
        memo.header = [site.generation, markdown, out, stashed]
        return out

    def _render_here(self, page, kind: type[_RenderedHere]) -> None:
        """MkDocs' render of `page` goes to kind.with_plugin: through the page's class while it
        is MkDocs' own Page (undone as the render starts), else through a render of the page's own."""
        if page.__class__ is MkDocsPage:
            page.__class__ = kind
        else:  # another plugin's class (a blog post)
            page.render = functools.partial(kind.render_once, page)

    def _postmortem_render(self, page, config, files) -> None:
        """Page.render of a postmortem page: the generated header kept out of Markdown where
        that renders the page alike (see header_render), and under serve a render kept from
        the last build (see render_memo)."""
        if self.render_memo is not None:
            self.render_memo.render(page, config, files, self.pm_render)
        else:
            self.header_render.render(page, config, files)

    def _other_render(self, page, config, files) -> None:
        """Page.render of any other page under serve: kept for the next build too (see
        render_memo). Generated index and rollup pages are most of them."""
        self.render_memo.render(page, config, files, type(page).render)

    on_page_markdown = CombinedEvent(_page_meta, _page_header)

    # After Material's search has indexed the page: the stashed tables and charts go back in.
    @event_priority(-100)
    def on_page_context(self, context, *, page, config, nav):
        # Under serve, usually the very string on_page_content returned in the last build: its
        # placeholders stand for the same stashed HTML as then, since stash keys are never reused
        # for other HTML. Compared by identity first, before touching either string. (`unstashed`
        # is kept only under serve, where nothing is rendered ahead; the memo is looked up inline:
        # between two pages' templates every object a hook touches is out of the CPU's caches,
        # about 0.5 µs each, see _memo_of.)
        memo = page.__dict__.get("pmkb_memo")
        if memo is not None:
            known = memo.unstashed
        else:  # any other page: a generated one's stashed tables too
            known = self.unstashed_before.get(page.file.src_uri) if self.unstashed_before else None
            if known is not None:
                self.unstashed_now[page.file.src_uri] = known
        if known is not None and known[0] is page.content:
            page.content = known[1]
            return context
        memo = self._memo_of(page)
        keep = self.serving and memo is not None
        if self.site is None or not page.content:
            return context
        built = self.built.pop(page.file.src_uri, None) if self.built else None
        got = self.got.pop(page.file.src_uri, None) if self.got else None
        if got is not None:
            if page.content is got.cleaned:  # as the child left it: so is its unstashed HTML
                page.content = got.unstashed
                if built is not None and built.content is None:  # what the child's template saw
                    built.content = got.unstashed
                return context
            self.site.restash(got.stashed)
        if known is not None and known[0] == page.content:
            page.content = known[1]
            return context
        if memo is not None and memo.blobs:
            self.site.restash(memo.blobs)
            memo.blobs = None
        html = self.site.unstash(page.content)
        if keep:
            memo.unstashed = (page.content, html)
        elif self.serving and memo is None and self.render_memo is not None:  # its content is kept
            self.unstashed_now[page.file.src_uri] = (page.content, html)
        page.content = html
        return context

    def on_page_content(self, html, *, page, config, files):
        memo = page.__dict__.get("pmkb_memo")  # under serve (see on_page_context)
        known = memo.cleaned if memo is not None else None
        if known is not None and known[0] is html:
            return known[1]
        memo = self._memo_of(page)
        if memo is None:
            return html
        got = self.got.get(page.file.src_uri) if self.got else None
        if got is not None and got.cleaned is not None and html is got.attrs["content"]:
            return got.cleaned
        known = memo.cleaned
        if known is not None and known[0] == html:  # a string compare: far cheaper than sanitising again
            return known[1]
        out = self._clean(page.file.src_uri, html)
        if self.serving:
            memo.cleaned = (html, out)
        return out

    def _memo_of(self, page) -> _PageMemo | None:
        """The page's memo, which on_page_read_source (MkDocs' first hook for a page) left on the
        page: the page is in memory MkDocs is working on, where a lookup in page_memos, between two
        pages' renders, touched memory the build had evicted (about 1 µs a hook)."""
        memo = page.__dict__.get("pmkb_memo", _UNSEEN)
        return self.page_memos.get(page.file.src_uri) if memo is _UNSEEN else memo

    def _clean(self, src: str, html: str) -> str:
        """A postmortem page's HTML with the author's prose sanitised, and the generated
        header's headings kept out of the search index: what they head is stashed, so each
        made an entry with a title and no text (thousands of "Timeline" hits)."""
        if src not in self.page_memos:
            return html
        head, mark, prose = html.partition(PROSE_MARK)
        if not mark:
            return clean_html(html)
        return _H2.sub(r"<h2\1 data-search-exclude>", head) + clean_html(prose)


_UNSEEN = object()  # a page on_page_read_source has not seen (see _memo_of)


class _PageMemo:
    """One postmortem page's record for the page hooks: its postmortem in this build, what one
    hook passes the next, and under `mkdocs serve` what each hook made in the last build (one
    lookup per hook instead of one per dict)."""

    __slots__ = ("pm", "meta_from_check", "blobs", "header_unchanged", "source", "meta", "header", "cleaned",
                 "unstashed")

    def __init__(self) -> None:
        self.pm = None
        self.header_unchanged = False  # this build's SiteBuilder.header_unchanged(pm), asked in on_files
        self.meta_from_check = None  # page meta (or `meta`) from on_page_read_source, for _page_meta
        self.blobs = None  # what a reused header stands in for, stashed again only if needed
        self.source: tuple[str, str] | None = None  # (content hash, prose)
        self.meta: tuple | None = None  # (front matter the check read, page.meta made of it, its list keys)
        self.header: list | None = None  # [build, Markdown in, Markdown out, stashed HTML]
        self.cleaned: tuple[str, str] | None = None  # (HTML in, sanitised HTML out)
        self.unstashed: tuple[str, str] | None = None  # (page.content in, with stashed HTML back)


def _file_stamp(path) -> tuple:
    """mkdocs.yml's bytes: any edit to it (Markdown extensions, theme) starts afresh."""
    try:
        data = Path(path).read_bytes() if path else b""
    except OSError:
        return ()
    return (str(path), content_hash(data))


def _templates_stamp(folder: Path) -> tuple:
    """Names, sizes and times of the user's template overrides: editing one under serve
    re-renders everything."""
    try:
        stats = ((p, p.stat()) for p in folder.rglob("*") if p.is_file())
        return tuple(sorted((str(p), st.st_mtime_ns, st.st_size) for p, st in stats))
    except OSError:
        return ()


def _nav_paths(nav) -> set[str]:
    out: set[str] = set()
    if isinstance(nav, str):
        out.add(nav)
    elif isinstance(nav, list):
        for item in nav:
            out |= _nav_paths(item)
    elif isinstance(nav, dict):
        for v in nav.values():
            out |= _nav_paths(v)
    return out


def _nest(paths: list[str]) -> list:
    """MkDocs-like automatic nav for the user's own pages: files first, then folders."""
    files = [p for p in paths if "/" not in p]
    folders: dict[str, list[str]] = {}
    for p in paths:
        if "/" in p:
            head, rest = p.split("/", 1)
            folders.setdefault(head, []).append(rest)
    out: list = sorted(files, key=lambda p: (not p.startswith("index."), p))
    for name, items in sorted(folders.items()):
        out.append({name.replace("-", " ").replace("_", " ").capitalize(): _prefix(name, _nest(items))})
    return out


def _prefix(folder: str, nav: list) -> list:
    out = []
    for item in nav:
        if isinstance(item, str):
            out.append(posixpath.join(folder, item))
        else:
            out.append({k: _prefix(folder, v) for k, v in item.items()})
    return out
