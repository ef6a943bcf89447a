"""Every generated page of the knowledge base, as Markdown, for any site generator.

`SiteBuilder` turns a checked knowledge base into pages (a path below docs_dir,
a title and Markdown) and into the header that goes above each postmortem's
prose. Both the MkDocs plugin and `pmkb generate` use it: one renderer, two
entry points. Links inside generated HTML are relative to the page they are on.
"""

from __future__ import annotations

import html
import itertools
import operator
import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from html import escape as html_escape
from datetime import date

import jinja2
from markupsafe import Markup, escape

from .core.config import Config
from .core.durations import format_minutes
from .charts import line, months_between, stacked_bars
from .core.actions import ActionRow, action_rows, csv_text, select
from .core.exports import postmortems_json
from .core.kb import CheckResult, backlinks
from .core.metrics import LABELS, incident_start, postmortem_metrics, stats
from .core.blame import people_index
from .core.editions import apply_edition, chosen_edition, includes
from .core.recurrence import possible_recurrences, problems
from .core.model import TIME_KEYS, Postmortem
from .core.urls import page_url, relative_url, slug
from .render import page_environment, yaml_scalar

ASSETS = ("pmkb.css", "pmkb.js")  # written below assets/pmkb/ by the plugin and by `pmkb generate` alike
PROSE_MARK = "<!-- pmkb:prose -->"  # where the generated header ends and the author's prose begins

_STASH_IDS = itertools.count(1)


@jinja2.pass_environment
def _stash_filter(env, html, search: str = "") -> str:
    """Stash into the environment's current builder: imported macros keep the filter they
    first saw, and under serve one environment serves one builder after another."""
    return env.pmkb_site._stash(html, search)


ROLE_LABELS = {"incident_commander": "Incident commander", "tech_lead": "Tech lead",
               "comms_lead": "Comms lead", "scribe": "Scribe"}


def safe_title(text: str) -> str:
    """For titles a theme prints unescaped (MkDocs/Material <title> and header): no markup
    can survive, whatever the theme does with entities."""
    return html.escape(str(text).replace("<", "‹").replace(">", "›"), quote=False)


def meta_title(text) -> Markup:
    """A title for generated front matter: one line, made safe, then quoted for YAML. Marked
    safe so autoescaping cannot turn YAML's quotes into entities and break the front matter."""
    return Markup(yaml_scalar(safe_title(" ".join(str(text).split()))))


class Page:
    """A generated page. Its Markdown may be given as a function, called when first read: a
    build with workers leaves the rendering to a forked child (see SiteBuilder.defer)."""

    __slots__ = ("src", "title", "in_nav", "_markdown")

    def __init__(self, src: str, title: str, markdown: str | Callable[[], str], in_nav: bool = False) -> None:
        self.src = src  # path below docs_dir, e.g. "services/checkout.md"
        self.title = title
        self.in_nav = in_nav
        self._markdown = markdown

    @property
    def rendered(self) -> bool:
        return isinstance(self._markdown, str)

    @property
    def markdown(self) -> str:
        if not isinstance(self._markdown, str):
            self._markdown = self._markdown()
        return self._markdown

    def __repr__(self) -> str:
        return f"Page({self.src!r}, {self.title!r}, in_nav={self.in_nav})"


def _rendered(value):
    """`value` with the Markdown of every Page in it rendered (what stashing_into captures)."""
    for page in value if isinstance(value, list) else (value,):
        if isinstance(page, Page):
            page.markdown  # noqa: B018 - rendered now
    return value


@dataclass
class Group:
    kind: str  # severity | service | tag | year
    key: str
    label: str
    src: str
    postmortems: list[Postmortem] = field(default_factory=list)


def _src_link(target_src: str, anchor: str = "") -> str:
    """A `link` that names the target itself: a row made with it holds every value the row shows
    and every page it links to, so it is the row's key (links are a function of the page and this)."""
    return f"{target_src}#{anchor}" if anchor else target_src


def _fields(row: dict) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in row.values())


@dataclass(frozen=True, eq=False)
class _Row(ActionRow):
    """An action row with its key: its fields as `SiteBuilder.action_row` makes them (_src_link).
    Rows with equal keys are equal, so a page's key can hold its rows themselves."""

    key: tuple = field(default=(), repr=False)

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, _Row) and self.key == other.key)

    def __hash__(self) -> int:
        return hash(self.key)


_PATH = operator.attrgetter("path")  # a postmortem's path, in C: keys of thousands of rows per build


@dataclass
class _Changes:
    """Between two builds: the paths of postmortems added, removed or changed (by token); the IDs,
    related targets and problems of their old and new versions; paths whose errors changed; and
    (kind, key) of groups whose page moved, appeared or went."""

    paths: set[str]
    ids: set[str]
    targets: set[str]
    problems: set[str]
    errors: set[str]
    groups: set[tuple[str, str]]


class _Refs(dict):
    """A postmortem's token by ID; an ID no postmortem has stands for itself."""

    def __missing__(self, rid):
        return (rid,)


class _Derived:
    """What a build makes from one postmortem, kept by its token (see SiteBuilder.__init__): a
    `mkdocs serve` rebuild reuses it for every postmortem whose token is unchanged."""

    __slots__ = ("token", "rows", "open", "overdue", "done", "open_items", "overdue_items", "action_key", "csv", "json",
                 "metrics", "recurrence", "ref", "groups")

    def __init__(self, token: tuple):
        self.token = token
        self.rows: list[_Row] | None = None  # its action rows, and of them those the rollups select
        self.open = self.overdue = self.done = None
        self.open_items = self.overdue_items = 0
        self.action_key: tuple | None = None  # its rows and services, all the rollups read of it
        self.csv: str | None = None  # its lines of action-items.csv
        self.json: str | None = None  # its record in postmortems.json (URLs are a function of its path)
        self.metrics: tuple | None = None  # the fields the metrics page reads
        self.recurrence: tuple | None = None  # the fields possible_recurrences reads
        self.ref: tuple | None = None  # what a problem or a recurrence shows of it (see SiteBuilder._ref_key)
        self.groups: tuple | None = None  # the fields _groups reads


class SiteBuilder:
    def __init__(self, result: CheckResult, cfg: Config, *, use_directory_urls: bool = True,
                 site_name: str = "Postmortems", stash: bool = False, edition: str | None = None,
                 previous: SiteBuilder | None = None, memo: bool = False):
        self.result = result
        self.kb = result.kb
        self.cfg = cfg
        self.as_of: date = result.kb.as_of
        self.use_directory_urls = use_directory_urls
        self.site_name = site_name
        self.base = cfg.pages_dir
        self.per_page = int(cfg.options.get("per_page") or 500)
        self.latest = int(cfg.options.get("latest") or 10)
        # `previous`: the last build's builder under `mkdocs serve`, when nothing but postmortems
        # changed since: its compiled templates, and (see `_memoised`) what it made from each
        # postmortem and each page's inputs, are reused where they are unchanged
        self.env = previous.env if previous else page_environment(cfg.root / cfg.templates_dir).overlay()
        self.env.filters["minutes"] = format_minutes
        self.stashing = stash
        self.blobs: dict[str, str] = {}
        self._capture: dict[str, str] | None = None
        self.env.pmkb_site = self  # the builder `stash` stashes into (see _stash_filter)
        self.env.filters["stash"] = _stash_filter
        self.env.filters["meta_title"] = meta_title
        self.env.filters["rows_html"] = rows_html
        self._tops: set[str] | None = None  # first path segments of row link targets
        self._pm_tops: set[str] | None = None  # of them, the postmortems' (see _row_key)
        self._group_srcs: dict[tuple[str, str], str] | None = None
        self._rows: dict[tuple, Markup] = {}
        self._diagnostics_by_path: dict[str, list] | None = None  # for broken pages, made on first use
        self.edition = chosen_edition(cfg, edition)
        self.public = self.edition == "public"
        self.people = self._people_index(previous)
        chosen = apply_edition(self.kb.valid, self.edition, self.people)
        ids = {pm.id for pm in chosen if pm.id}
        self.excluded_ids = {pm.id for pm in self.kb.valid if pm.id and pm.id not in ids}
        # What every page depends on beyond its own postmortem: who counts as a person (the public
        # edition takes their names out) and which IDs are redacted. Nothing of the previous build
        # is reused unless it is unchanged.
        self.kb_key = (tuple(sorted(self.people.names)), tuple(sorted(self.excluded_ids)))
        carry = previous if previous is not None and previous.kb_key == self.kb_key else None
        # Under serve, postmortems edited in place (same path, date and ID) keep their places in
        # the last build's orders and groups: (last version, this one) of each, else None.
        self._chosen = chosen
        self._edited = _edited(chosen, carry._chosen) if carry is not None else None
        if self._edited is not None:
            self.pms = _swapped(carry.pms, self._edited)
        else:
            self.pms = sorted(chosen, key=lambda p: (p.date or date.min, p.id or ""), reverse=True)
        self.by_id = {pm.id: pm for pm in self.pms if pm.id}
        self._previous_id_order = carry._id_order if self._edited is not None else None
        self._previous_groups = carry.groups if self._edited is not None else None
        self._previous_exports = carry._exports if self._edited is not None else None
        # edits in place keep every path: so are the first segments of the postmortems' URLs
        self._previous_pm_tops = carry._pm_tops if self._edited is not None else None
        self._exports: tuple | None = None
        self._previous_totals = carry._kept_totals if self._edited is not None else None
        self._kept_totals: tuple | None = None
        # URLs and relative links are functions of paths alone (and use_directory_urls, which a
        # kept builder shares): they carry over as they are
        self._urls: dict[str, str] = carry._urls if carry else {}
        self._links: dict[str, dict[str, str]] = carry._links if carry else {}
        self._previous_rows = carry._rows if carry else {}
        self._previous_memo: dict = carry._memo if carry else {}
        self._memo: dict = {}
        self.memo = memo
        # pages whose Markdown is left to be rendered when first read (the plugin has a forked
        # child render them meanwhile); never under memo, whose pages are rendered where made
        self.defer = False
        # Each postmortem's token: its path, content and the `related` links its edition view kept
        # (which depend on which IDs exist). Given kb_key, the view is a function of it, so what is
        # made from a postmortem is kept by token; an unchanged token is the previous build's very
        # object, so comparing keys made of tokens costs a pointer compare each.
        previous_tokens = self._previous_tokens = carry._tokens if carry else {}
        changed = []
        # with edits in place, the others are the last build's objects: so are their tokens and paths
        renewed = [new for _, new in self._edited] if self._edited is not None else self.pms
        self._tokens: dict[str, tuple] = dict(previous_tokens) if self._edited is not None else {}
        self._by_path = dict(carry._by_path) if self._edited is not None else {}
        for pm in renewed:
            token = (pm.path, pm.content_hash, tuple(pm.related))
            old = previous_tokens.get(pm.path)
            if old == token:
                token = old
            else:
                changed.append(pm.path)
            self._tokens[pm.path] = token
            self._by_path[pm.path] = pm
        self.generation = previous.generation + 1 if previous is not None else 0
        self.previous_generation = carry.generation if carry else None
        self._previous_derived: dict[str, _Derived] = carry._derived if carry else {}
        self._derived: dict[str, _Derived] = {}
        self.backlinks = backlinks(self.pms, self.by_id)
        self.by_problem: dict[str, list[Postmortem]] = defaultdict(list)
        for pm in self.pms:
            if pm.problem:
                self.by_problem[pm.problem].append(pm)
        self.errors = defaultdict(list)
        for d in result.diagnostics:
            if d.severity == "error" and not self.public:  # messages can quote names
                self.errors[d.path].append(d)
        self._id_order: list[Postmortem] | None = None
        self._previous_group_names = carry._group_names if carry else None
        self.groups = self._groups()
        self._srcs = {kind: {g.key: g.src for g in gs} for kind, gs in self.groups.items()}
        # what a header shows of its postmortem's errors
        self._error_keys = {path: tuple([(d.span.line, d.rule, d.message) for d in ds]) for path, ds in self.errors.items()}
        self._changes = self._changes_since(carry, changed, previous_tokens.keys() - self._tokens.keys()) if carry else None
        self._problem_changed: dict[str, bool] = {}
        self._header_lookups: dict | None = None
        # A row's key: every value it shows and where it links (see _src_link), made again only
        # when its postmortem's token or the pages of its services changed.
        previous_keys = carry._row_keys if carry else {}
        services = {g.key: g.src for g in self.groups["service"]}
        if self._edited is not None and not any(kind == "service" for kind, _ in self._changes.groups):
            # every other postmortem's token and service pages are the last build's: so is its key
            self._row_keys, self._pm_keys = dict(previous_keys), dict(carry._pm_keys)
        else:
            self._row_keys, self._pm_keys, renewed = {}, {}, self.pms
        for pm in renewed:
            token = self._tokens[pm.path]
            srcs = [services[s] for s in pm.services]
            old = previous_keys.get(pm.path)
            if old is None or old[0] is not token or old[1] != srcs:
                old = (token, srcs, _fields(self.row(pm, _src_link)))
            self._row_keys[pm.path] = old
            self._pm_keys[pm.path] = old[2]

    def _people_index(self, previous: SiteBuilder | None):
        """people_index(kb.valid, cfg.people), each postmortem's people kept while it is the same
        object (the check's memory under serve), the index itself while the names are the same."""
        self._people_of: dict[str, tuple[Postmortem, frozenset[str]]] = {}
        index = self.result.people  # the check's, made of the same postmortems
        if index is not None and self.kb.config is self.cfg:
            if previous is not None and previous.people.names == index.names:
                return previous.people
            return index
        known = previous._people_of if previous is not None else {}
        names: set[str] = set()
        for pm in self.kb.valid:
            hit = known.get(pm.path)
            if hit is None or hit[0] is not pm:
                hit = (pm, frozenset(pm.people))
            self._people_of[pm.path] = hit
            names |= hit[1]
        index = people_index([], [*self.cfg.people, *names])
        if previous is not None and previous.people.names == index.names:
            return previous.people  # with whatever it built on first use
        return index

    # ---- stashed HTML ------------------------------------------------------------
    def _stash(self, html, search: str = "") -> str:
        """Big generated HTML (tables, charts, the postmortem card) need not go through Markdown
        or the search indexer: with stashing on, a placeholder stands in and `unstash` puts it
        back. `search` is the text the search index should still see in its place."""
        if not self.stashing:
            return html
        key = str(next(_STASH_IDS))
        text = html_escape(" ".join(str(search).split()), quote=False)
        self.blobs[key] = str(html)
        if self._capture is not None:
            self._capture[key] = self.blobs[key]
        return Markup(f'\n\n<div class="pmkb-stash" data-pmkb-stash="{key}">{text}</div>\n\n')

    _STASH_OPEN = '<div class="pmkb-stash" data-pmkb-stash="'
    _STASH_RE = re.compile(r'<div class="pmkb-stash" data-pmkb-stash="(\d+)">[^<]*</div>')

    def unstash(self, html: str) -> str:
        """What `_STASH_RE.sub` would make of `html`, with str.find looking for the placeholders:
        the regex scans a postmortem page several times slower, on every page of every build."""
        find, opening = html.find, self._STASH_OPEN
        i = find(opening)
        if i < 0:
            return html
        parts, pos, match = [], 0, self._STASH_RE.match
        while i >= 0:
            m = match(html, i)
            if m is None:
                i = find(opening, i + 1)
                continue
            parts.append(html[pos:i])
            parts.append(self.blobs.pop(m.group(1), ""))
            pos = m.end()
            i = find(opening, pos)
        parts.append(html[pos:])
        return "".join(parts)

    def stashing_into(self, render) -> tuple[str, dict[str, str]]:
        """`render()`'s output and what it stashed, to keep together (serve reuses both)."""
        outer, self._capture = self._capture, {}
        try:
            out = render()
            return out, self._capture
        finally:
            captured, self._capture = self._capture, outer
            if outer is not None:
                outer.update(captured)

    def restash(self, blobs: dict[str, str]) -> None:
        """Stash again what a reused output stands in for (keys are unique in the process)."""
        self.blobs.update(blobs)
        if self._capture is not None:
            self._capture.update(blobs)

    def _memoised(self, name, key, make):
        """`make()`, or under `mkdocs serve` (`memo`) what it returned in the previous build when
        `key()` equals that build's: `key` must name everything `make` reads that can change
        between rebuilds (postmortems by token or by the fields it reads; the builder's settings
        and the date cannot change while a builder is carried over). What it stashed comes back too."""
        if not self.memo:
            return make() if self.defer else _rendered(make())
        k = key()
        hit = self._previous_memo.get(name)
        if hit is not None and hit[0] == k:
            self.restash(hit[2])
            self._memo[name] = hit
            return hit[1]
        value, stashed = self.stashing_into(lambda: _rendered(make()))
        self._memo[name] = (k, value, stashed)
        return value

    # ---- paths and links ----------------------------------------------------
    def path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts) if self.base else posixpath.join(*parts)

    def pm_src(self, pm: Postmortem) -> str:
        prefix = self.cfg.postmortems_dir.strip("/")
        return f"{prefix}/{pm.rel_path}" if prefix else pm.rel_path

    def url(self, src: str) -> str:
        u = self._urls.get(src)
        if u is None:
            u = self._urls[src] = page_url(src, self.use_directory_urls)
        return u

    def linker(self, from_src: str):
        here = self.url(from_src)
        memo = self._links.setdefault(here, {})

        def link(target_src: str, anchor: str = "") -> str:
            rel = memo.get(target_src)
            if rel is None:
                rel = memo[target_src] = relative_url(here, self.url(target_src))
            return rel + (f"#{anchor}" if anchor else "")

        link.folder = self._row_key(here)
        return link

    def _row_key(self, here: str):
        """Pages whose links to postmortems and service pages come out alike share rendered rows:
        from a folder that holds none of them, every link is '../' * depth + the target."""
        base = here if here.endswith("/") or here == "" else posixpath.dirname(here) + "/"
        parts = [p for p in base.split("/") if p]
        if self._tops is None:
            pm_tops = self._pm_tops = self._previous_pm_tops or {
                self.url(self.pm_src(pm)).split("/", 1)[0] for pm in self.pms}
            self._tops = pm_tops | {self.url(g.src).split("/", 1)[0] for g in self.groups["service"]}
        if not parts or parts[0] not in self._tops:
            return ("root", len(parts))
        return ("dir", base)

    # ---- groups ---------------------------------------------------------------
    def _groups(self) -> dict[str, list[Group]]:
        previous = self._previous_groups
        if previous is not None and all(_group_key(old) == _group_key(new) for old, new in self._edited):
            self._group_names = self._previous_group_names
            return _groups_swapped(previous, self._edited)
        out: dict[str, dict[str, Group]] = {"severity": {}, "service": {}, "tag": {}, "year": {}}
        used: dict[str, set[str]] = defaultdict(set)

        def group(kind: str, key: str, label: str, folder: str) -> Group:
            g = out[kind].get(key)
            if g is None:
                s = slug(key)
                while s in used[kind]:  # two names that slug alike still get their own pages
                    s += "-x"
                used[kind].add(s)
                g = out[kind][key] = Group(kind, key, label, self.path(folder, f"{s}.md"))
            return g

        # Groups in the order their keys first appear, postmortems by ID (a key that slugs like
        # an earlier one gets "-x"): configured severities first, a postmortem's services and tags
        # in sorted order. Slugs are per kind, so each kind is taken on its own. Under serve the
        # order is the last build's while every postmortem's fields for it are.
        fields = [self._group_fields(pm) for pm in self._by_id()]
        known = self._previous_group_names
        if known is not None and known[0] == fields:
            names = known[1]
        else:
            names = {"severity": (*self.cfg.severity_names(), *dict.fromkeys(f[0] for f in fields if f[0])),
                     "service": tuple(dict.fromkeys(s for f in fields for s in f[1])),
                     "tag": tuple(dict.fromkeys(t for f in fields for t in f[2])),
                     "year": tuple(dict.fromkeys(f[3] for f in fields if f[3]))}
        self._group_names = (fields, names)
        for kind, folder in (("severity", "severities"), ("service", "services"), ("tag", "tags"), ("year", "years")):
            for name in names[kind]:
                group(kind, name, name, folder)
        severities, services, tags, years = out["severity"], out["service"], out["tag"], out["year"]
        for pm in self.pms:  # newest first inside every group
            if pm.severity:
                severities[pm.severity].postmortems.append(pm)
            for s in pm.services:
                services[s].postmortems.append(pm)
            for t in pm.tags:
                tags[t].postmortems.append(pm)
            if pm.date:
                years[str(pm.date.year)].postmortems.append(pm)
        order = {
            "severity": list(out["severity"].values()),
            "service": sorted(out["service"].values(), key=lambda g: g.key.lower()),
            "tag": sorted(out["tag"].values(), key=lambda g: g.key.lower()),
            "year": sorted(out["year"].values(), key=lambda g: g.key, reverse=True),
        }
        return order

    def _group_fields(self, pm: Postmortem) -> tuple:
        """What _groups reads of a postmortem to know which groups there are, in what order."""
        d = self._of(pm)
        if d.groups is None:
            d.groups = _group_key(pm)
        return d.groups

    def group_src(self, kind: str, key: str) -> str | None:
        if self._group_srcs is None:
            self._group_srcs = {(g.kind, g.key): g.src for gs in self.groups.values() for g in gs}
        return self._group_srcs.get((kind, key))

    # ---- rows -------------------------------------------------------------------
    def _rendered_row(self, template: str, macro: str, key: tuple, link, make, **options) -> Markup:
        """A table row rendered once per link context (see _row_key), however many index and
        rollup tables list it, and under `mkdocs serve` once per content: rows carried over from
        the previous build (`previous_rows`) are reused while their postmortem is unchanged."""
        key = (macro, *key, link.folder, *options.items())
        html = self._rows.get(key)
        if html is None:
            html = self._previous_rows.get(key)
            if html is None:
                render = getattr(self.env.get_template(template).module, macro)
                html = Markup(render(make(link), **options))
            self._rows[key] = html
        return html

    def _pm_key(self, pm: Postmortem) -> tuple:
        """What a postmortem's row in index tables shows, and where it links."""
        return self._pm_keys[pm.path]

    def _of(self, pm: Postmortem) -> _Derived:
        """What this build made, or the previous one kept, from this postmortem (see _Derived)."""
        return self._derived.get(pm.path) or self._of_path(pm.path)

    def _of_path(self, path: str) -> _Derived:
        d = self._derived.get(path)
        if d is None:
            token = self._tokens[path]
            d = self._previous_derived.get(path)
            if d is None or d.token != token:
                d = _Derived(token)
            self._derived[path] = d
        return d

    def _actions_of(self, pm: Postmortem) -> _Derived:
        """A postmortem's action rows (as `action_rows` makes them) and what rollups count of them."""
        d = self._of(pm)
        if d.rows is None:
            rows = [_Row(r.postmortem, r.item, r.overdue, r.days_overdue, _fields(self.action_row(r, _src_link)))
                    for r in action_rows([pm], self.as_of)]
            d.open = select(rows, status=("open", "in-progress"))
            d.overdue = select(rows, overdue=True)
            d.done = select(rows, status=("done",))
            d.action_key = (rows, tuple(pm.services))
            d.open_items = _open_items(pm)
            d.overdue_items = _overdue_items(pm, self.as_of)
            d.rows = rows
        return d

    def _by_id(self) -> list[Postmortem]:
        """The postmortems in `action_rows`' order (by ID)."""
        if self._id_order is None:
            if self._previous_id_order is not None:
                self._id_order = _swapped(self._previous_id_order, self._edited)
            else:
                self._id_order = sorted(self.pms, key=lambda p: p.id or "")
        return self._id_order

    def row_html(self, pm: Postmortem, link) -> Markup:
        """A postmortem's row in index tables."""
        return self._rendered_row("_macros.j2", "incident_row", self._pm_key(pm), link, lambda lk: self.row(pm, lk))

    def row(self, pm: Postmortem, link) -> dict:
        minutes = pm.minutes_between("started", "resolved")
        if minutes is None and pm.duration_minutes is not None:
            minutes = pm.duration_minutes
        return {
            "id": pm.id, "title": pm.title or "", "href": link(self.pm_src(pm)),
            "date": pm.date.isoformat() if pm.date else "", "year": str(pm.date.year) if pm.date else "",
            "severity": pm.severity or "", "status": pm.status,
            "services": [(s, link(self.group_src("service", s))) for s in pm.services],
            "duration": format_minutes(minutes) if minutes is not None else "",
            "duration_minutes": int(round(minutes)) if minutes is not None else "",
        }

    # ---- pages ----------------------------------------------------------------
    def includes(self, pm: Postmortem) -> bool:
        return includes(pm, self.edition)

    def view(self, pm: Postmortem) -> Postmortem:
        """The edition's view of a postmortem (for the public edition, one without people)."""
        return self.by_id.get(pm.id, pm) if pm.id else pm

    def pages(self) -> list[Page]:
        actions = [] if self.public else self._action_pages()  # rollups by owner name people
        pages = [self._home(), *self._incident_pages(), *actions, self._metrics_page(), *self._problem_pages()]
        titles = {"severity": "By severity", "service": "By service", "tag": "By tag", "year": "By year"}
        folders = {"severity": "severities", "service": "services", "tag": "tags", "year": "years"}
        for kind, groups in self.groups.items():
            src = self.path(folders[kind], "index.md")
            summary = tuple((g.label, g.src, len(g.postmortems),
                             g.postmortems[0].date.isoformat() if g.postmortems and g.postmortems[0].date else "")
                            for g in groups)

            def make() -> Page:
                link = self.linker(src)
                md = self.env.get_template("groups.md.j2").render(
                    title=titles[kind], kind=kind,
                    groups=[{"label": label, "href": link(g_src), "count": count, "latest": latest}
                            for label, g_src, count, latest in summary],
                )
                return Page(src, titles[kind], md, in_nav=True)

            pages.append(self._memoised(("groups", src), lambda: (kind, summary), make))
            for g in groups:
                pages.extend(self._table_pages(g.src, f"{g.label}", g.postmortems, kind=kind,
                                               subtitle=_GROUP_SUBTITLE[kind].format(label=g.label)))
        return pages

    def _home(self) -> Page:
        src = self.path("index.md")
        statuses, open_items, overdue = self._totals()
        latest = self.pms[: self.latest]
        data = {
            "total": len(self.pms),
            "by_severity": [(g.label, g.src, len(g.postmortems)) for g in self.groups["severity"]],
            "by_year": [(g.label, g.src, len(g.postmortems)) for g in self.groups["year"]],
            "by_status": [(s, statuses[s]) for s in ("published", "in-review", "draft")],
            "services": len(self.groups["service"]),
            "open_items": open_items, "overdue": overdue,
        }

        def make() -> Page:
            link = self.linker(src)
            md = self.env.get_template("home.md.j2").render(
                site_name=self.site_name,
                total=data["total"],
                latest=[self.row_html(pm, link) for pm in latest],
                by_severity=[(label, link(g_src), n) for label, g_src, n in data["by_severity"]],
                by_year=[(label, link(g_src), n) for label, g_src, n in data["by_year"]],
                by_status=data["by_status"],
                services=data["services"],
                open_items=data["open_items"], overdue=data["overdue"], public=self.public,
                links={"all": link(self.path("incidents", "index.md")),
                       "severities": link(self.path("severities", "index.md")),
                       "services": link(self.path("services", "index.md")),
                       "tags": link(self.path("tags", "index.md")),
                       "years": link(self.path("years", "index.md")),
                       "actions": link(self.path("actions", "index.md")),
                       "overdue": link(self.path("actions", "overdue.md")),
                       "metrics": link(self.path("metrics", "index.md")),
                       "problems": link(self.path("problems", "index.md"))},
                as_of=self.as_of.isoformat(),
            )
            return Page(src, self.site_name, md, in_nav=True)

        return self._memoised(("home", src), lambda: (tuple(data.values()), tuple(self._pm_key(pm) for pm in latest)), make)

    def _incident_pages(self) -> list[Page]:
        return self._table_pages(self.path("incidents", "index.md"), "All postmortems", self.pms, kind="all",
                                 subtitle="Every postmortem, newest first. Sort by any column; filter by severity, "
                                          "service, year or status.", in_nav=True)

    def _table_pages(self, first_src: str, title: str, pms: list[Postmortem], *, kind: str, subtitle: str,
                     in_nav: bool = False) -> list[Page]:
        """One table, split into pages of `per_page` rows so no page grows without bound."""
        chunks = [pms[i:i + self.per_page] for i in range(0, len(pms), self.per_page)] or [[]]
        stem = first_src[:-len("index.md")] if first_src.endswith("index.md") else first_src[:-3] + "-"
        srcs = [first_src] + [f"{stem}page-{n}.md" if stem.endswith("/") else f"{stem}page-{n}.md"
                              for n in range(2, len(chunks) + 1)]
        keys = self._pm_keys
        out = []
        for n, (src, chunk) in enumerate(zip(srcs, chunks), start=1):
            def make(src=src, chunk=chunk, n=n) -> Page:  # bound now: the Markdown may be rendered later
                def markdown() -> str:
                    link = self.linker(src)
                    return self.env.get_template("table_page.md.j2").render(
                        title=title, subtitle=subtitle, kind=kind, rows=self._table_rows(src, chunk, link),
                        total=len(pms), page=n,
                        pages=[(i + 1, link(s)) for i, s in enumerate(srcs)] if len(srcs) > 1 else [],
                        filters=kind in ("all", "severity", "service", "tag", "year"),
                    )
                return Page(src, title if n == 1 else f"{title} (page {n})", markdown, in_nav=in_nav and n == 1)

            out.append(self._memoised(
                ("table", src), lambda: (first_src, title, subtitle, kind, in_nav, n, len(srcs), len(pms),
                                         tuple(map(keys.__getitem__, map(_PATH, chunk)))), make))
            if self.memo and ("table rows", src) not in self._memo and ("table rows", src) in self._previous_memo:
                self._memo[("table rows", src)] = self._previous_memo[("table rows", src)]
        return out

    def _table_rows(self, src: str, chunk: list[Postmortem], link) -> list[Markup]:
        """row_html of each postmortem on the table page `src`. A row is a function of its key and
        the page, so under serve a row of the last build's table on this page is kept while its
        key is the very same object (its postmortem's token and service pages unchanged)."""
        keys = list(map(self._pm_keys.__getitem__, map(_PATH, chunk)))
        previous = self._previous_memo.get(("table rows", src)) if self.memo else None
        if previous is not None and len(previous[0]) == len(keys):
            rows = [row if key is was else self.row_html(pm, link)
                    for pm, key, was, row in zip(chunk, keys, previous[0], previous[1])]
        else:
            rows = [self.row_html(pm, link) for pm in chunk]
        if self.memo:
            self._memo[("table rows", src)] = (keys, rows)
        return rows

    # ---- action items --------------------------------------------------------------
    def action_row_html(self, r: _Row, link, show_pm: bool = True) -> Markup:
        """An action item's row in the rollups (open, by owner, by service, by severity)."""
        return self._rendered_row("_actions.j2", "action_row", r.key, link, lambda lk: self.action_row(r, lk),
                                  show_pm=show_pm)

    def action_row(self, r: ActionRow, link) -> dict:
        a, pm = r.item, r.postmortem
        return {"pm_id": pm.id, "href": link(self.pm_src(pm)), "id": a.id, "action": a.action, "owner": a.owner,
                "due": a.due.isoformat() if a.due else "", "status": a.status, "severity": pm.severity or "",
                "ticket": a.ticket, "overdue": r.overdue, "days_overdue": r.days_overdue}

    def _totals(self) -> tuple[Counter, int, int]:
        """Postmortems by status, open and overdue action items. Under serve, when only postmortems
        edited in place changed, the last build's totals less their old versions' and plus the new."""
        previous = self._previous_totals
        if previous is not None:
            statuses, open_items, overdue = Counter(previous[0]), previous[1], previous[2]
            for old, new in self._edited:
                statuses[old.status] -= 1
                statuses[new.status] += 1
                open_items += _open_items(new) - _open_items(old)
                overdue += _overdue_items(new, self.as_of) - _overdue_items(old, self.as_of)
        else:
            ds = [self._actions_of(pm) for pm in self.pms]
            statuses = Counter(pm.status for pm in self.pms)
            open_items, overdue = sum(d.open_items for d in ds), sum(d.overdue_items for d in ds)
        self._kept_totals = (statuses, open_items, overdue)
        return statuses, open_items, overdue

    def _action_pages(self) -> list[Page]:
        # Every rollup is made of the rows (compared by what they show) and the services they are
        # grouped by: while those are the last build's, so are the pages (a title edit, prose).
        # When only postmortems edited in place changed, theirs alone are compared.
        hit = self._previous_memo.get(("action pages",)) if self.memo and self._edited is not None else None
        if hit is not None and all(self._previous_action_key(old) == self._actions_of(new).action_key
                                   for old, new in self._edited):
            return self._memoised(("action pages",), lambda: hit[0], lambda: self._make_action_pages(
                [self._actions_of(pm) for pm in self._by_id()]))
        ds = [self._actions_of(pm) for pm in self._by_id()]  # `action_rows` order, `select`ed per postmortem
        return self._memoised(("action pages",), lambda: [d.action_key for d in ds], lambda: self._make_action_pages(ds))

    def _previous_action_key(self, old: Postmortem):
        """The action key the last build made of `old` (None if it made none)."""
        d = self._previous_derived.get(old.path)
        return d.action_key if d is not None and d.token == self._previous_tokens.get(old.path) else None

    def _make_action_pages(self, ds: list[_Derived]) -> list[Page]:
        open_rows = [r for d in ds for r in d.open]
        overdue = sorted([r for d in ds for r in d.overdue], key=lambda r: (r.item.due, r.postmortem.id or ""))
        done = sorted([r for d in ds for r in d.done], key=lambda r: (r.item.due or date.min, r.postmortem.id or ""),
                      reverse=True)
        specs = [
            ("index.md", "Open action items", "Every action item that is open or in progress.", open_rows, None),
            ("overdue.md", "Overdue action items", "Past their due date and not done, oldest first.", overdue, None),
            ("owners.md", "Action items by owner", "Each owner's open items, overdue ones marked.", open_rows, "owner"),
            ("services.md", "Action items by service", "Open items of the incidents on each service.", open_rows, "service"),
            ("severities.md", "Action items by severity", "Open items by the severity of their incident.", open_rows, "severity"),
            ("completed.md", "Completed action items", "Done items, the latest due date first.", done, None),
        ]
        srcs = {name: self.path("actions", name) for name, *_ in specs}
        pages = []
        for name, title, subtitle, chosen, group_by in specs:
            pages.extend(self._action_table_pages(srcs[name], title, subtitle, chosen, group_by, specs, srcs))
        return pages

    def _action_table_pages(self, first_src, title, subtitle, rows, group_by, specs, srcs) -> list[Page]:
        groups: list[tuple[str, list[_Row]]] = []
        if group_by == "owner":
            keyed: dict[str, list] = defaultdict(list)
            for r in rows:
                keyed[r.item.owner or "No owner"].append(r)
            groups = sorted(keyed.items(), key=lambda kv: kv[0].casefold())
        elif group_by == "service":
            keyed = defaultdict(list)
            for r in rows:
                for s in r.postmortem.services or ["No service"]:
                    keyed[s].append(r)
            groups = sorted(keyed.items(), key=lambda kv: kv[0].casefold())
        elif group_by == "severity":
            keyed = defaultdict(list)
            for r in rows:
                keyed[r.severity or "No severity"].append(r)
            order = {n: i for i, n in enumerate(self.cfg.severity_names())}
            groups = sorted(keyed.items(), key=lambda kv: order.get(kv[0], 99))
        else:
            # an ungrouped list is split anywhere: one page of per_page rows after another
            groups = [("", rows[i:i + self.per_page]) for i in range(0, len(rows), self.per_page)] or [("", [])]
        # split into pages of about per_page rows without cutting a group in two
        chunks: list[list[tuple[str, list]]] = [[]]
        size = 0
        for g in groups:
            if size and size + len(g[1]) > self.per_page:
                chunks.append([])
                size = 0
            chunks[-1].append(g)
            size += len(g[1])
        stem = first_src[:-3]
        page_srcs = [first_src] + [f"{stem}-page-{n}.md" for n in range(2, len(chunks) + 1)]
        out = []
        for n, (src, chunk) in enumerate(zip(page_srcs, chunks), start=1):
            def make(src=src, chunk=chunk, n=n) -> Page:  # bound now: the Markdown may be rendered later
                def markdown() -> str:
                    link = self.linker(src)
                    rendered_groups = []
                    if group_by:
                        for label, grs in chunk:
                            over = sum(1 for r in grs if r.overdue)
                            rendered_groups.append({"label": label, "anchor": slug(label),
                                                    "rows": [self.action_row_html(r, link) for r in grs],
                                                    "summary": f"{len(grs)} open, {over} overdue."})
                    flat = [self.action_row_html(r, link) for _, grs in chunk for r in grs] if not group_by else []
                    return self.env.get_template("actions_page.md.j2").render(
                        title=title, subtitle=subtitle, as_of=self.as_of.isoformat(), rows=flat,
                        groups=rendered_groups, links=[(t, link(srcs[nm])) for nm, t, *_ in specs], page=n,
                        pages=[(i + 1, link(s)) for i, s in enumerate(page_srcs)] if len(page_srcs) > 1 else [],
                    )
                return Page(src, title if n == 1 else f"{title} (page {n})", markdown,
                            in_nav=first_src.endswith("actions/index.md") and n == 1)

            out.append(self._memoised(
                ("actions", src), lambda: (first_src, title, subtitle, group_by, n, len(page_srcs),
                                           tuple([(label, tuple(grs)) for label, grs in chunk])), make))
        return out

    # ---- metrics -------------------------------------------------------------------
    def stats(self) -> dict:
        return stats(self.pms, self.cfg, self.as_of)

    def _metric_fields(self, pm: Postmortem) -> tuple:
        """Every field of a postmortem the metrics page reads (through `stats` and the owners'
        chart): a title or prose edit leaves the page as it was."""
        d = self._of(pm)
        if d.metrics is None:
            d.metrics = (pm.severity, tuple(pm.services), pm.date, tuple(pm.times.items()),
                         tuple((a.status, a.due, a.owner) for a in pm.action_items))
        return d.metrics

    def _metrics_page(self) -> Page:
        src = self.path("metrics", "index.md")
        return self._memoised(
            ("metrics", src),
            lambda: (tuple(map(self._metric_fields, self.pms)),
                     tuple((g.key, g.src) for g in self.groups["severity"]),
                     tuple((g.key, g.src) for g in self.groups["service"])),
            lambda: self._make_metrics_page(src))

    def _make_metrics_page(self, src: str) -> Page:
        link = self.linker(src)
        st = self.stats()
        sevs = list(st["by_severity"])
        months = months_between(min(st["incidents_per_month"]), max(st["incidents_per_month"])) \
            if st["incidents_per_month"] else []
        per_month = stacked_bars(
            "Incidents per month by severity",
            f"Stacked bars, one per month from {months[0] if months else '-'} to {months[-1] if months else '-'}; "
            "the table below has the numbers.",
            months, [(s, f"pmkb-sev--{s.lower()}", [st["incidents_per_month"].get(m, {}).get(s, 0) for m in months]) for s in sevs])
        quarters = list(st["by_quarter"])
        mttr = line("Mean time to resolve by quarter (minutes)",
                    "A line through each quarter's mean time to resolve; the By quarter table has the numbers.",
                    quarters, [st["by_quarter"][q]["mttr_minutes"] for q in quarters])
        owners: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in action_rows(self.pms, self.as_of):
            if r.item.is_closed():
                continue
            owners[r.item.owner or "No owner"][1 if r.overdue else 0] += 1
        top = sorted(owners.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))
        shown = top[:20]
        owner_chart = stacked_bars(
            "Open and overdue action items by owner",
            f"Stacked bars for the {len(shown)} owners with the most open items; the table below lists everyone.",
            [o for o, _ in shown], [("open", "pmkb-open", [v[0] for _, v in shown]),
                                    ("overdue", "pmkb-overdue-bar", [v[1] for _, v in shown])])
        md = self.env.get_template("metrics.md.j2").render(
            stats=st, severities=sevs, per_month_chart=per_month, mttr_chart=mttr, owner_chart=owner_chart,
            owners=[] if self.public else [(o, v[0], v[1]) for o, v in top], public=self.public,
            by_severity=[(k, link(self.group_src("severity", k)) if self.group_src("severity", k) else "", v)
                         for k, v in st["by_severity"].items()],
            by_service=[(k, link(self.group_src("service", k)), v) for k, v in st["by_service"].items()],
            by_quarter=[(k, "", v) for k, v in st["by_quarter"].items()],
            export_json=link(self.path("pmkb", "postmortems.json")),
            export_csv=link(self.path("pmkb", "action-items.csv")),
        )
        return Page(src, "Incident metrics", md, in_nav=True)

    # ---- problems ------------------------------------------------------------------
    def _recurrence_fields(self, pm: Postmortem) -> tuple:
        """Every field of a postmortem `possible_recurrences` reads."""
        d = self._of(pm)
        if d.recurrence is None:
            d.recurrence = self._recurrence_key(pm)
        return d.recurrence

    def _recurrence_key(self, pm: Postmortem) -> tuple:
        return (pm.path, pm.id, incident_start(pm, self.cfg), tuple(pm.tags), tuple(pm.services),
                pm.problem, tuple(pm.related))

    def _recurrences(self) -> list[tuple]:
        """(service, earlier path, later path, shared tags, days apart) of each possible recurrence.
        When only postmortems edited in place changed, only theirs are compared (old and new)."""
        hit = self._previous_memo.get(("recurrences",)) if self.memo and self._edited is not None else None
        if hit is not None and all(self._recurrence_key(old) == self._recurrence_fields(new)
                                   for old, new in self._edited):
            def key() -> tuple:
                return hit[0]
        else:
            def key() -> tuple:
                return tuple([self._recurrence_fields(pm) for pm in self.pms])
        return self._memoised(
            ("recurrences",), key,
            lambda: [(r.service, r.first.path, r.second.path, r.shared_tags, r.days_apart)
                     for r in possible_recurrences(self.pms, self.cfg)])

    def _problem_pages(self) -> list[Page]:
        src = self.path("problems", "index.md")
        groups = problems(self.pms)
        used: set[str] = set()
        srcs = {}
        for name in groups:
            s = slug(name)
            while s in used:
                s += "-x"
            used.add(s)
            srcs[name] = self.path("problems", f"{s}.md")
        recs = self._recurrences()
        ref = self._ref_key
        members = {name: tuple([ref(pm) for pm in pms]) for name, pms in groups.items()}
        # the possible recurrences, per_page to a page: the first on this page, the rest after it
        per = self.per_page
        spans = [(i, min(i + per, len(recs))) for i in range(0, len(recs), per)] or [(0, 0)]
        rec_srcs = [src] + [self.path("problems", "recurrences", f"page-{n}.md") for n in range(2, len(spans) + 1)]
        made_rows: list[list[Markup]] = []

        def rows() -> list[Markup]:  # rendered once, when a page (or under serve a key) first needs them
            if not made_rows:
                made_rows.append(self._recurrence_rows(recs, rec_srcs))
            return made_rows[0]

        def markdown(n: int) -> str:
            page_src = rec_srcs[n - 1]
            link = self.linker(page_src)
            start, end = spans[n - 1]
            return self.env.get_template("problems.md.j2").render(
                window=int(self.cfg.options.get("recurrence_window_days") or 90),
                problems=[{"name": name, "href": link(srcs[name]), "count": len(v),
                           "first": v[0].date.isoformat() if v[0].date else "", "last": v[-1].date.isoformat() if v[-1].date else "",
                           "services": sorted({s for pm in v for s in pm.services})} for name, v in groups.items()],
                recurrences=rows()[start:end], total=len(recs), page=n, first=start + 1,
                pages=[(i + 1, link(s)) for i, s in enumerate(rec_srcs)] if len(rec_srcs) > 1 else [],
            )

        pages = [self._memoised(
            ("problems", src),
            lambda: (tuple((n, srcs[n], members[n]) for n in groups), tuple(rows()[spans[0][0]:spans[0][1]]),
                     len(recs)),
            lambda: Page(src, "Recurring problems", lambda: markdown(1), in_nav=True))]
        for n in range(2, len(rec_srcs) + 1):
            def make_more(n=n) -> Page:  # bound now: the Markdown may be rendered later
                return Page(rec_srcs[n - 1], f"Possible recurrences (page {n})", lambda: markdown(n))

            pages.append(self._memoised(("recurrences", rec_srcs[n - 1]), lambda n=n: (
                tuple(rows()[spans[n - 1][0]:spans[n - 1][1]]), len(recs)), make_more))
        for name, pms in groups.items():
            def make_problem(name=name, pms=pms) -> Page:  # bound now: the Markdown may be rendered later
                def markdown() -> str:
                    plink = self.linker(srcs[name])
                    incidents = [{"id": pm.id, "title": pm.title, "href": plink(self.pm_src(pm)),
                                  "anchor": slug(pm.id or ""), "date": pm.date.isoformat() if pm.date else "",
                                  "severity": pm.severity or "", "services": pm.services,
                                  "rows": [self.action_row_html(r, plink, show_pm=False)
                                           for r in self._actions_of(pm).rows]}
                                 for pm in pms]
                    return self.env.get_template("problem.md.j2").render(name=name, incidents=incidents)
                return Page(srcs[name], f"Problem: {name}", markdown)

            pages.append(self._memoised(("problem", srcs[name]), lambda: (name, tuple(
                [(ref(pm), tuple(self._actions_of(pm).rows)) for pm in pms])), make_problem))
        return pages

    def _ref_key(self, pm: Postmortem) -> tuple:
        """What the problem pages show of a postmortem besides its action items, and where they link."""
        d = self._of(pm)
        if d.ref is None:
            d.ref = (pm.path, self.pm_src(pm), pm.id, pm.title, pm.date, pm.severity, tuple(pm.services))
        return d.ref

    def _pm_by_path(self, path: str) -> Postmortem:
        return self._by_path[path]

    def _recurrence_rows(self, recs: list[tuple], srcs: list[str]) -> list[Markup]:
        """The rendered rows of the possible-recurrences table, per_page of them on each of the
        pages `srcs`, each row linked from its own page. A row shows its two postmortems' ref
        keys, the service, shared tags and days: under serve a row of the last build is kept
        while those and its page are equal, and while the recurrences themselves are the last
        build's (the same list), only the rows of postmortems changed since are looked at."""
        links = [self.linker(src) for src in srcs]
        per = self.per_page
        ref, by_path = self._ref_key, self._by_path

        def render(i: int, rec: tuple) -> tuple:
            service, a, b, tags, days = rec
            ra, rb = ref(by_path[a]), ref(by_path[b])
            html = self._rendered_row("_macros.j2", "recurrence_row", (service, ra, rb, tags, days), links[i // per],
                                      lambda lk: self._recurrence_row(by_path[a], by_path[b], service, tags, days, lk))
            return ra, rb, html

        previous = self._previous_memo.get(("recurrence rows",)) if self.memo else None
        if previous is not None and previous[0] is recs and self._changes is not None:
            _, rows, made, index = previous
            touched = sorted({i for p in self._changes.paths for i in index.get(p, ())})
            if touched:
                rows, made = list(rows), list(made)
                for i in touched:
                    made[i] = render(i, recs[i])
                    rows[i] = made[i][2]
        else:
            known: dict[tuple, tuple] = {}
            if previous is not None:  # by pair and page, for rows whose postmortems and numbers are unchanged
                known = {(*r[:3], i // per): (m, r) for i, (r, m) in enumerate(zip(previous[0], previous[2]))}
            made = []
            for i, rec in enumerate(recs):
                hit = known.get((*rec[:3], i // per))
                if hit is not None and hit[1] == rec and hit[0][0] == ref(by_path[rec[1]]) \
                        and hit[0][1] == ref(by_path[rec[2]]):
                    made.append(hit[0])
                else:
                    made.append(render(i, rec))
            rows = [m[2] for m in made]
            index: dict[str, list[int]] = defaultdict(list)
            for i, (_, a, b, _, _) in enumerate(recs):
                index[a].append(i)
                index[b].append(i)
        if self.memo:
            self._memo[("recurrence rows",)] = (recs, rows, made, index)
        return rows

    def _recurrence_row(self, first: Postmortem, second: Postmortem, service: str, tags: tuple, days: float,
                        link) -> dict:
        return {"service": service, "first_id": first.id, "first_title": first.title,
                "first_href": link(self.pm_src(first)), "second_id": second.id, "second_title": second.title,
                "second_href": link(self.pm_src(second)), "days": days, "tags": tags}

    def problem_src(self, name: str) -> str:
        return self.path("problems", f"{slug(name)}.md")

    # ---- exports -------------------------------------------------------------------
    def prose(self, pm: Postmortem, markdown: str) -> str:
        """The author's prose as this edition may show it."""
        from .core.editions import public_body, redact_ids, strip_marked

        text = public_body(markdown, self.people) if self.public else strip_marked(markdown, self.edition)
        return redact_ids(text, self.excluded_ids)

    def exports(self) -> dict[str, str]:
        site_url = lambda pm: self.url(self.pm_src(pm))  # noqa: E731 - site-relative URL
        header = csv_text([])
        if self.memo:
            head, empty, tail = postmortems_json([], self.cfg, self.as_of, site_url).rpartition("[]")
        if not self.memo or not empty:  # an envelope _export_parts does not know: all at once
            lines = [self._csv_lines(pm, header) for pm in self._by_id()]
            text = postmortems_json(self.pms, self.cfg, self.as_of, site_url)
        else:
            lines, parts = self._export_parts(header, head, tail, site_url)
            # one join, no copy of its output: at 5,000 postmortems the JSON is 20 MB, and each
            # copy of that cost 10 ms in a serve rebuild
            if len(parts) > 1:
                text = ",".join([f"{head}[{parts[0]}", *parts[1:-1], f"{parts[-1]}]{tail}"])
            else:
                text = f"{head}[{''.join(parts)}]{tail}"
        json_path, csv_path = self.export_paths()
        return {json_path: text, csv_path: "".join([header, *lines])}

    def export_paths(self) -> tuple[str, str]:
        return self.path("pmkb", "postmortems.json"), self.path("pmkb", "action-items.csv")

    def _csv_lines(self, pm: Postmortem, header: str) -> str:
        d = self._actions_of(pm)
        if d.csv is None:
            d.csv = csv_text(d.rows)[len(header):]  # the same lines as in one `csv_text` of every row
        return d.csv

    def _export_parts(self, header: str, head: str, tail: str, site_url) -> tuple[list[str], list[str]]:
        """Each postmortem's lines of action-items.csv and record in postmortems.json, by ID as
        _by_id orders them and as postmortems_json makes them (the envelope of no postmortem, a
        record of one), kept by token. Under serve, when only postmortems edited in place changed
        (see `_edited`), the last build's lists with those postmortems' parts made again."""
        def json_of(pm: Postmortem) -> str:
            d = self._of(pm)
            if d.json is None:
                one = postmortems_json([pm], self.cfg, self.as_of, site_url)
                d.json = one[len(head) + 1:len(one) - len(tail) - 1]
            return d.json

        order = self._by_id()
        previous = self._previous_exports
        if previous is not None and previous[0] == (head, tail) and len(previous[1]) == len(order):
            lines, parts = list(previous[2]), list(previous[3])
            for i in [i for i, (pm, was) in enumerate(zip(order, previous[1])) if pm is not was]:
                lines[i], parts[i] = self._csv_lines(order[i], header), json_of(order[i])
        else:
            lines = [self._csv_lines(pm, header) for pm in order]
            parts = [json_of(pm) for pm in order]
        self._exports = ((head, tail), order, lines, parts)
        return lines, parts

    # ---- the postmortem page ------------------------------------------------------
    def postmortem_header(self, pm: Postmortem) -> str:
        pm = self.view(pm)
        src = self.pm_src(pm)
        link = self.linker(src)
        m = postmortem_metrics(pm, self.cfg)
        sev = self.cfg.severity(pm.severity)
        times = []
        derived = {"detected": "ttd", "acknowledged": "tta", "mitigated": "ttm", "resolved": "ttr"}
        for key in TIME_KEYS:
            t = pm.times.get(key)
            d = derived.get(key)
            times.append(_View({
                "label": key.capitalize(), "time": t.strftime("%Y-%m-%d %H:%M %Z").strip() if t else "",
                "iso": t.isoformat() if t else "",
                "derived_label": LABELS[d] if d else "", "derived": format_minutes(m.get(d)) if d and m.get(d) is not None else "",
            }))
        timeline = _timeline_view(pm)
        related = [self._ref(rid, link) for rid in pm.related]
        backlinks = [self._ref(rid, link) for rid in self.backlinks.get(pm.id or "", []) if rid not in pm.related]
        siblings = []
        if pm.problem:
            siblings = [self._ref(p.id, link) for p in self.by_problem[pm.problem] if p.id != pm.id]
        items = [_View({
            "id": a.id, "action": a.action, "owner": a.owner or "", "due": a.due.isoformat() if a.due else "",
            "status": a.status, "kind": a.kind or "", "ticket": a.ticket, "overdue": a.is_overdue(self.as_of),
            "days_overdue": (self.as_of - a.due).days if a.is_overdue(self.as_of) else 0,
        }) for a in pm.action_items]
        return self.env.get_template("postmortem_page.md.j2").render(
            pm=pm, m=m, sev=sev, times=times, timeline=timeline, items=items, related=related,
            backlinks=backlinks, siblings=siblings, errors=self.errors.get(pm.path, []),
            roles=[(ROLE_LABELS[k], pm.roles[k]) for k in ROLE_LABELS if k in pm.roles],
            services=[(s, link(self.group_src("service", s))) for s in pm.services],
            tags=[(t, link(self.group_src("tag", t))) for t in pm.tags],
            severity_href=link(self.group_src("severity", pm.severity)) if pm.severity else "",
            duration=format_minutes(m.ttr if m.ttr is not None else pm.duration_minutes)
            if (m.ttr is not None or pm.duration_minutes is not None) else "",
            currency=self.cfg.currency, as_of=self.as_of.isoformat(), public=self.public,
        )

    def broken_page(self, pm: Postmortem) -> str:
        """The page in place of a postmortem whose front matter could not be read: what is wrong
        with the file, so a reader following a link learns why there is no postmortem."""
        if self._diagnostics_by_path is None:
            self._diagnostics_by_path = self.result.by_path()
        diagnostics = self._diagnostics_by_path.get(pm.path, [])
        return self.env.get_template("broken_page.md.j2").render(
            title=pm.rel_path.rsplit("/", 1)[-1], path=pm.path, diagnostics=diagnostics)

    def header_inputs(self, pm: Postmortem) -> tuple:
        """Everything `postmortem_header` reads besides this builder's settings: under serve,
        equal inputs mean an equal header, so it is not rendered again. Postmortems are named by
        token (see __init__): for an unchanged one the compare is mostly pointer compares."""
        v = self.view(pm)
        h = self._header_lookups
        if h is None:
            h = self._header_lookups = self._make_header_lookups()
        refs, srcs = h["refs"].__getitem__, h["srcs"]
        siblings = ()
        if v.problem:
            siblings = h["siblings"].get(v.problem)
            if siblings is None:
                siblings = h["siblings"][v.problem] = tuple(map(refs, [p.id for p in self.by_problem.get(v.problem, ())]))
        return (
            self._tokens.get(v.path) or (v.path, v.content_hash, tuple(v.related)), tuple(map(refs, v.related)),
            tuple(map(refs, self.backlinks.get(v.id or "", ()))), siblings, h["errors"].get(v.path, ()),
            tuple(map(srcs["service"].get, v.services)), tuple(map(srcs["tag"].get, v.tags)),
            srcs["severity"].get(v.severity) if v.severity else None,
        )

    def _make_header_lookups(self) -> dict:
        """What header_inputs looks up, once per build: a postmortem named in a header by ID is
        named by its token ((ID,) when no postmortem has it)."""
        refs = _Refs({i: self._tokens[t.path] for i, t in self.by_id.items()})
        return {"refs": refs, "srcs": self._srcs, "errors": self._error_keys, "siblings": {}}

    def _changes_since(self, carry: SiteBuilder, changed: list[str], removed) -> _Changes:
        """What changed since the previous build, in the terms `header_unchanged` asks about."""
        paths = set(changed) | set(removed)
        pms = [pm for p in paths for pm in (carry._by_path.get(p), self._by_path.get(p)) if pm is not None]
        errors = {p for p in self._error_keys.keys() | carry._error_keys.keys()
                  if self._error_keys.get(p) != carry._error_keys.get(p)}
        groups = {(kind, key) for kind, srcs in self._srcs.items() for key in srcs.keys() | carry._srcs[kind].keys()
                  if srcs.get(key) != carry._srcs[kind].get(key)}
        return _Changes(paths, {pm.id for pm in pms if pm.id}, {r for pm in pms for r in pm.related},
                        {pm.problem for pm in pms if pm.problem}, errors, groups)

    def header_unchanged(self, pm: Postmortem) -> bool:
        """Is `postmortem_header(pm)` certainly what it was in the previous build (the builder
        passed as `previous`)? A cheaper answer than comparing `header_inputs`, which every page
        of a serve rebuild would pay for: True only when nothing header_inputs names changed.
        (header_inputs: its own token; the postmortems its related, backlinks and problem
        siblings name, by ID; its errors; the pages of its services, tags and severity.)"""
        ch = self._changes
        if ch is None:
            return False
        ids, paths = ch.ids, ch.paths
        if pm.path in paths or pm.id in ids:
            return False  # itself, or which postmortem its ID names (its view, see `view`)
        v = self.by_id.get(pm.id, pm) if pm.id else pm  # self.view(pm)
        if v.path in paths or v.path in ch.errors:
            return False  # its view, or its errors
        if v.related and not ids.isdisjoint(v.related):
            return False  # a postmortem its related name, or which one an ID names
        if v.id is not None and (v.id in ch.targets or not ids.isdisjoint(self.backlinks.get(v.id, ()))):
            return False  # who links to it, or a postmortem that does
        if v.problem and self._problem_changes(v.problem):
            return False
        groups = ch.groups
        if groups and (("severity", v.severity) in groups or any(("service", x) in groups for x in v.services)
                       or any(("tag", x) in groups for x in v.tags)):
            return False
        return True

    def _problem_changes(self, problem: str) -> bool:
        """Did the siblings a header lists for this problem change (who they are, or what their IDs name)?"""
        hit = self._problem_changed.get(problem)
        if hit is None:
            ch = self._changes
            hit = self._problem_changed[problem] = problem in ch.problems or not ch.ids.isdisjoint(
                [p.id for p in self.by_problem.get(problem, ())])
        return hit

    def _ref(self, rid: str, link) -> dict:
        target = self.by_id.get(rid)
        if target is None or target.fatal:
            return _View({"id": rid, "title": "", "href": "", "date": ""})
        return _View({"id": rid, "title": target.title or "", "href": link(self.pm_src(target)),
                      "date": target.date.isoformat() if target.date else "", "severity": target.severity or ""})


_GROUP_SUBTITLE = {
    "severity": "Postmortems of {label} incidents, newest first.",
    "service": "Postmortems that involve the {label} service, newest first.",
    "tag": "Postmortems tagged {label}, newest first.",
    "year": "Postmortems of incidents that started in {label}.",
}
_PHASE_COLOURS = {"detect": "detect", "triage": "triage", "mitigate": "mitigate", "resolve": "resolve", "review": "review"}


def _open_items(pm: Postmortem) -> int:
    return sum(1 for a in pm.action_items if not a.is_closed())


def _overdue_items(pm: Postmortem, as_of: date) -> int:
    return sum(1 for a in pm.action_items if a.is_overdue(as_of))


def _group_key(pm: Postmortem) -> tuple:
    """Everything _groups reads of a postmortem (its groups, and their order of appearance)."""
    return (pm.severity, tuple(sorted(pm.services)), tuple(sorted(pm.tags)), str(pm.date.year) if pm.date else None)


_MAX_EDITED = 16  # more edits than this at once: sorting afresh is as cheap


def _edited(now: list[Postmortem], before: list[Postmortem]) -> list[tuple[Postmortem, Postmortem]] | None:
    """(last version, this one) of each postmortem that is not the last build's object, when each
    has the same place, path, date and ID as before: then every order (newest first, by ID) is
    the last build's with the new versions in the old ones' places. None otherwise."""
    if len(now) != len(before):
        return None
    out = []
    for new, old in zip(now, before):
        if new is not old:
            if new.path != old.path or new.date != old.date or new.id != old.id or len(out) == _MAX_EDITED:
                return None
            out.append((old, new))
    return out


def _swapped(order: list[Postmortem], edited: list[tuple[Postmortem, Postmortem]]) -> list[Postmortem]:
    """`order` with each edited postmortem's new version in place of its last one."""
    if not edited:
        return list(order)
    new_of = {id(old): new for old, new in edited}
    return [new_of.get(id(pm), pm) for pm in order]


def _groups_swapped(groups: dict[str, list[Group]], edited) -> dict[str, list[Group]]:
    """The last build's groups (its order, pages and members) with edited postmortems' new
    versions in place: their _group_key is unchanged, so they are in the same groups."""
    out = {kind: list(gs) for kind, gs in groups.items()}
    for old, new in edited:
        severity, services, tags, year = _group_key(old)
        for kind, keys in (("severity", (severity,) if severity else ()), ("service", services), ("tag", tags),
                           ("year", (year,) if year else ())):
            gs = out[kind]
            for key in set(keys):
                i = next(i for i, g in enumerate(gs) if g.key == key)
                gs[i] = replace(gs[i], postmortems=[new if pm is old else pm for pm in gs[i].postmortems])
    return out


def _timeline_view(pm: Postmortem) -> dict:
    entries = [e for e in pm.timeline]
    timed = [e.time for e in entries if e.time is not None]
    start = min(timed + [pm.times["started"]] if "started" in pm.times else timed, default=None)
    end = max(timed + [pm.times["resolved"]] if "resolved" in pm.times else timed, default=None)
    span = (end - start).total_seconds() if start and end and end > start else 0
    rows = []
    for i, e in enumerate(entries, start=1):
        pos = None
        if e.time is not None and start is not None:
            pos = round(100 * (e.time - start).total_seconds() / span, 2) if span else 0.0
        rows.append(_View({
            "n": i, "time": _hh_mm(e.time) if e.time else e.raw_time,
            "datetime": e.time.isoformat() if e.time else "",
            "day": e.time.strftime("%Y-%m-%d") if e.time else "",
            "event": e.event, "phase": e.phase or "", "pos": pos,
            "offset": format_minutes((e.time - start).total_seconds() / 60) if e.time and start else "",
        }))
    multi_day = len({r["day"] for r in rows if r["day"]}) > 1
    return _View({"rows": rows, "start": _hh_mm(start) if start else "", "end": _hh_mm(end) if end else "",
                  "total": format_minutes(span / 60) if span else "", "multi_day": multi_day})


def _hh_mm(t) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"  # strftime("%H:%M"), at a fifth of the cost


def rows_html(rows) -> Markup:
    """Rendered rows as one table body: the same text as `{% for r in rows %}{{ r }}` and a
    newline, without escaping each (already safe) row again, or copying it."""
    rows = [r if isinstance(r, Markup) else escape(r) for r in rows]
    return Markup("\n".join(rows) + "\n" if rows else "")


class _View(dict):
    """Template data read as `row.key` (and still `row["key"]`) without Jinja's slow path for
    dicts: it tries an attribute first and pays for the AttributeError on every lookup."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
