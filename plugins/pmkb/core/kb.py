"""The knowledge base: every postmortem, lookups by id, the people registry, and the
one `check` pipeline that the CLI and the MkDocs plugin both call.
"""

from __future__ import annotations

import bisect
import fnmatch
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .cache import ResultCache, settings_key
from .gc_pause import paused_gc
from .blame import PeopleIndex, check_blame_file, check_named_people, settings_for
from .editions import check_public
from .config import Config
from .findings import Findings
from .model import Diagnostic, Postmortem
from .normalise import later_spans
from .parallel import map_chunks
from .parse import content_hash, read_bytes, read_postmortem
from .rules.actions import check_actions
from .rules.knowledge_base import add_notes, kb_facts, kb_notes
from .rules.template import check_template
from .suppress import apply_suppressions

MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass
class KnowledgeBase:
    config: Config
    postmortems: list[Postmortem]
    as_of: date
    by_id: dict[str, Postmortem] = field(default_factory=dict)
    backlinks: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pm in self.postmortems:
            if pm.id and pm.id not in self.by_id:
                self.by_id[pm.id] = pm
        self.backlinks = backlinks(self.postmortems, self.by_id)

    @property
    def valid(self) -> list[Postmortem]:
        """Postmortems whose front matter could be read."""
        return [pm for pm in self.postmortems if not pm.fatal]


def backlinks(pms: list[Postmortem], by_id: dict[str, Postmortem]) -> dict[str, list[str]]:
    """id -> the ids of the postmortems whose `related` names it."""
    back: dict[str, set[str]] = defaultdict(set)
    for pm in pms:
        for rid in pm.related:
            if rid in by_id and pm.id and rid != pm.id:
                back[rid].add(pm.id)
    return {k: sorted(v) for k, v in back.items()}


@dataclass
class CheckResult:
    kb: KnowledgeBase
    diagnostics: list[Diagnostic]
    files_checked: int
    checked_paths: set[str] = field(default_factory=set)  # display paths whose findings are reported
    people: PeopleIndex | None = None  # everyone the knowledge base knows (people_index of kb.valid and config)

    def count(self, severity: str) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)

    def by_path(self) -> dict[str, list[Diagnostic]]:
        out: dict[str, list[Diagnostic]] = defaultdict(list)
        for d in self.diagnostics:
            out[d.path].append(d)
        return out


def is_excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    """gitignore-like: a pattern with no slash matches any path component."""
    parts = rel.split("/")
    for pat in patterns:
        p = pat.strip("/")
        if not p:
            continue
        if fnmatch.fnmatchcase(rel, p) or rel.startswith(p + "/"):
            return True
        if "/" not in p and any(fnmatch.fnmatchcase(part, p) for part in parts):
            return True
    return False


def discover(cfg: Config, below: Path | None = None) -> list[tuple[Path, str]]:
    """(absolute path, path relative to the postmortems root) of every postmortem, sorted.
    `below` limits the walk to one folder, with the same rules (the CLI's `pmkb check DIR`)."""
    root = cfg.postmortems_root
    start = below.resolve() if below is not None else root
    try:
        start.relative_to(root)
    except ValueError:
        root = start  # a folder outside the knowledge base: its own root for exclude patterns
    out = []
    if not start.is_dir():
        return out
    top = os.path.join(str(root), "")  # with its separator at the end, even for "/"
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        # below `root` (os.walk joins onto `start`, itself below it): the relative path by
        # slicing, not Path.relative_to (0.08 s against 0.035 s for 10,000 files)
        folder = dirpath[len(top):].replace(os.sep, "/")
        for name in filenames:
            lower = name.lower()
            if not lower.endswith(MARKDOWN_SUFFIXES) or lower in ("index.md", "readme.md"):
                continue
            rel = f"{folder}/{name}" if folder else name
            if not cfg.exclude or not is_excluded(rel, cfg.exclude):
                out.append((Path(dirpath, name), rel))
    out.sort(key=lambda t: t[1])
    return out


def display_path(path: Path) -> str:
    """Relative to the current directory when below it, as users type paths."""
    text, cwd = str(path), os.getcwd()
    if text.startswith(cwd) and text[len(cwd):len(cwd) + 1] == os.sep and os.path.isabs(text) \
            and os.sep + "." not in text[len(cwd):]:  # below it, nothing for relpath to normalise
        return text[len(cwd) + 1:]
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") and os.path.isabs(path) and len(rel) > len(str(path)) else rel


def check_file_content(abs_path: Path, rel: str, display: str, cfg: Config,
                       data: bytes | None = None) -> tuple[Postmortem, list[Diagnostic]]:
    """What depends on this file's bytes and the configuration alone, so it can be cached;
    the postmortem comes back slim (no prose), as the later stages need it."""
    pm, diags = read_postmortem(abs_path, display, rel, cfg, data)
    f = Findings(display, cfg, pm.status)
    f.items = diags
    if not pm.fatal:
        check_template(pm, f, cfg)
        check_blame_file(pm, f, settings_for(cfg), cfg.people)
        if pm.visibility == "public":
            check_public(pm, f, PeopleIndex(sorted(pm.people | set(cfg.people))), tuple(cfg.options.get("customers") or ()))
    return _slim(pm, settings_for(cfg).named_sections, cfg.for_site), f.items


def dated_findings(pm: Postmortem, display: str, cfg: Config, as_of: date) -> list[Diagnostic]:
    """What changes with the date (overdue action items): never cached."""
    if pm.fatal:
        return []
    f = Findings(display, cfg, pm.status)
    check_actions(pm, f, cfg, as_of)
    return f.items


class ParseCache:
    """Per-file results kept across `mkdocs serve` rebuilds, so a rebuild after one edit
    redoes the work of one file: the per-file stage by path and content (a file whose size,
    times and inode are unchanged is not even read again), the dated and named-people
    stages by content and the date or the people they depend on."""

    RACY_NS = 2_000_000_000  # a file changed within 2 s of being read may change again unseen

    def __init__(self) -> None:
        self._items: dict[str, tuple[bytes, Postmortem, list[Diagnostic]]] = {}
        self._stats: dict[str, tuple[tuple, str, tuple[Postmortem, list[Diagnostic]]]] = {}
        self.dated: dict[str, tuple[str, date, list[Diagnostic]]] = {}
        self.named: dict[str, tuple[str, list[Diagnostic]]] = {}
        self.people: frozenset[str] | None = None
        self.last = None  # what the last check left for the next (kb._LastCheck)
        self._key: str | None = None

    def use(self, key: str) -> None:
        """Forget everything when the configuration (mkdocs.yml edited under serve) or code
        changed: `key` is cache.settings_key."""
        if key != self._key:
            self.__init__()
            self._key = key

    def get(self, display: str, data: bytes):
        hit = self._items.get(display)
        if hit and hit[0] == data:
            return hit[1], hit[2]
        return None

    def put(self, display: str, data: bytes, pm: Postmortem, diags: list[Diagnostic]) -> None:
        self._items[display] = (data, pm, diags)

    def bytes_of(self, pm: Postmortem) -> bytes | None:
        """The bytes `pm` was read from, so a site generator need not read the file again."""
        hit = self._items.get(pm.path)
        return hit[0] if hit is not None and hit[1] is pm else None

    def put_stat(self, abs_path: str, key: tuple, display: str, result) -> None:
        """`result` for the file while its stat key (times, size, inode: see _per_file, which
        looks these up for every file) is `key`."""
        if time.time_ns() - key[0] > self.RACY_NS and time.time_ns() - key[1] > self.RACY_NS:
            self._stats[abs_path] = (key, display, result)
        else:
            self._stats.pop(abs_path, None)


def check(
    cfg: Config,
    files: list[tuple[Path, str]] | None = None,
    *,
    only: set[Path] | None = None,
    display=display_path,
    cache: ParseCache | None = None,
    as_of: date | None = None,
    workers: int | None = None,
    disk: ResultCache | None = None,
) -> CheckResult:
    """Load and check the knowledge base. `only` limits which files' findings are reported;
    knowledge-base rules still see every file. `cache` keeps results in memory (across
    `mkdocs serve` rebuilds), `disk` across runs."""
    if files is None:
        files = discover(cfg)
    extra = sorted(set(only) - {p.resolve() for p, _ in files}) if only else []
    files = list(files) + [(p, p.name) for p in extra]
    as_of = as_of or cfg.today()
    if cache is not None:
        cache.use(settings_key(cfg))
    with paused_gc():
        return _check(cfg, files, only, display, cache, as_of, workers, disk)


def _check(cfg, files, only, display, cache, as_of, workers, disk) -> CheckResult:
    results = _per_file(cfg, files, display, cache, workers, disk)
    last = cache.last if cache is not None else None
    if cache is not None:
        cache.last = None
    if last is not None and only is None and last.as_of == as_of:
        out = _check_again(cfg, results, last, cache)
        if out is not None:
            return out
    pms = [pm for pm, _ in results]
    per_path: dict[str, Findings] = {}
    for pm, diags in results:
        f = Findings(pm.path, cfg, pm.status)
        f.items = list(diags) + _dated(pm, cfg, as_of, cache)
        per_path[pm.path] = f
    kb = KnowledgeBase(cfg, pms, as_of)
    valid = [pm for pm in pms if not pm.fatal]
    notes = kb_notes(valid)
    for pm in valid:
        if pm.path in notes:
            add_notes(pm, notes[pm.path], per_path[pm.path])
    people_of = [None if pm.fatal else frozenset(pm.people) for pm in pms]
    index = PeopleIndex(sorted(set(cfg.people).union(*[p for p in people_of if p is not None])))
    _named_people(kb, index, per_path, cache)
    wanted = None if only is None else {display(p.resolve()) for p in only}
    items: dict[str, list[Diagnostic]] = {}
    for pm in pms:
        items[pm.path] = sorted(_final(pm, per_path[pm.path]), key=Diagnostic.sort_key)
    diagnostics = [d for pm in pms if wanted is None or pm.path in wanted for d in items[pm.path]]
    diagnostics.sort(key=Diagnostic.sort_key)
    checked = {pm.path for pm in pms} if wanted is None else wanted
    result = CheckResult(kb, diagnostics, len(checked), checked, people=index)
    if cache is not None and only is None and len(items) == len(pms):  # paths are unique: each its own findings
        cache.last = _LastCheck(as_of, results, [kb_facts(pm) for pm in pms], people_of, notes, items, result)
    return result


def _final(pm: Postmortem, f: Findings) -> list[Diagnostic]:
    """A file's findings once its suppression comments had their say."""
    items = f.items
    if pm.suppressions is not None:
        f.items = []
        items = apply_suppressions(items, pm.suppressions, pm.path, f) + f.items
    return items


@dataclass
class _LastCheck:
    """What a check left for the next under `mkdocs serve` (see `_check_again`): the per-file
    results it was made of, each file's knowledge-base facts, people and notes, and each
    file's findings (in line order)."""

    as_of: date
    results: list
    facts: list[tuple]
    people_of: list[frozenset[str] | None]
    notes: dict[str, list]
    items: dict[str, list[Diagnostic]]
    result: CheckResult


def _check_again(cfg, results, last: _LastCheck, cache: ParseCache) -> CheckResult | None:
    """The check of a knowledge base whose files are the last check's, some edited without
    changing what other files' findings depend on: their paths, knowledge-base facts (IDs,
    action-item IDs, related links) and the people they name. Only the edited files' findings
    are made again; None when that is not the case (the whole check runs)."""
    old = last.results
    if len(old) != len(results):
        return None
    changed = [i for i, (new, was) in enumerate(zip(results, old)) if new is not was]
    people_of = last.people_of
    facts = last.facts
    for i in changed:
        pm, was = results[i][0], old[i][0]
        if pm.path != was.path or kb_facts(pm) != facts[i] \
                or (None if pm.fatal else frozenset(pm.people)) != people_of[i]:
            return None
    prev = last.result
    items = last.items
    if changed:
        index = prev.people
        if cache.people != frozenset(index.names):  # the named-people memo is for other people
            return None
        items = dict(items)
        settings = settings_for(cfg)
        for i in changed:
            pm, diags = results[i]
            f = Findings(pm.path, cfg, pm.status)
            f.items = list(diags) + _dated(pm, cfg, last.as_of, cache)
            add_notes(pm, last.notes.get(pm.path, ()), f)
            if not pm.fatal:
                f.items.extend(_named_in(pm, cfg, index, settings, cache.named))
            items[pm.path] = sorted(_final(pm, f), key=Diagnostic.sort_key)
        diagnostics = prev.diagnostics
        for path in {results[i][0].path for i in changed}:  # each file's findings in place of its last
            start = bisect.bisect_left(diagnostics, path, key=_path_of)
            end = bisect.bisect_right(diagnostics, path, lo=start, key=_path_of)
            diagnostics = diagnostics[:start] + items[path] + diagnostics[end:]
        kb = _kb_again(prev.kb, cfg, [pm for pm, _ in results], [(old[i][0], results[i][0]) for i in changed])
        prev = CheckResult(kb, diagnostics, prev.files_checked, prev.checked_paths, people=prev.people)
    cache.last = _LastCheck(last.as_of, results, facts, people_of, last.notes, items, prev)
    return prev


def _path_of(d: Diagnostic) -> str:
    return d.path


def _kb_again(kb: KnowledgeBase, cfg: Config, pms: list[Postmortem], replaced: list[tuple[Postmortem, Postmortem]]) -> KnowledgeBase:
    """The knowledge base with edited postmortems in place of their last versions, whose IDs
    and related links are unchanged (so the backlinks are too)."""
    by_id = dict(kb.by_id)
    for was, pm in replaced:
        if pm.id and by_id.get(pm.id) is was:
            by_id[pm.id] = pm
    out = object.__new__(KnowledgeBase)
    out.config, out.postmortems, out.as_of, out.by_id, out.backlinks = cfg, pms, kb.as_of, by_id, kb.backlinks
    return out


def _dated(pm: Postmortem, cfg: Config, as_of: date, cache: ParseCache | None) -> list[Diagnostic]:
    if cache is None:
        return dated_findings(pm, pm.path, cfg, as_of)
    hit = cache.dated.get(pm.path)
    if hit is not None and hit[0] == pm.content_hash and hit[1] == as_of:
        return hit[2]
    items = dated_findings(pm, pm.path, cfg, as_of)
    cache.dated[pm.path] = (pm.content_hash, as_of, items)
    return items


def _named_people(kb: KnowledgeBase, index: PeopleIndex, per_path: dict[str, Findings], cache: ParseCache | None) -> None:
    """People named in root-cause sections: needs everyone the knowledge base knows, so under
    serve a file's result is kept while its content and that set of people are unchanged."""
    cfg = kb.config
    memo: dict[str, tuple[str, list[Diagnostic]]] = {}
    if cache is not None:
        people = frozenset(index.names)
        if people != cache.people:
            cache.named.clear()
            cache.people = people
        memo = cache.named
    settings = settings_for(cfg)
    for pm in kb.valid:
        per_path[pm.path].items.extend(_named_in(pm, cfg, index, settings, memo))


def _named_in(pm: Postmortem, cfg: Config, index: PeopleIndex, settings, memo: dict) -> list[Diagnostic]:
    """The named-person findings of `pm`, kept in `memo` by path while its content is the same
    (the caller clears `memo` when the people change)."""
    hit = memo.get(pm.path)
    if hit is None or hit[0] != pm.content_hash:
        f = Findings(pm.path, cfg, pm.status)
        check_named_people(pm, f, index, settings)
        hit = memo[pm.path] = (pm.content_hash, f.items)
    return hit[1]


PARALLEL_MIN_FILES = 200  # below this, starting processes costs more than it saves


def default_workers(cfg: Config, n_files: int, requested: int | None) -> int:
    if requested is None:
        requested = int(cfg.options.get("workers") or 0)
    if requested > 0:
        return requested
    return min(os.cpu_count() or 1, 8) if n_files >= PARALLEL_MIN_FILES else 1


def _slim(pm: Postmortem, named_sections: tuple[str, ...], for_site: bool) -> Postmortem:
    """What the knowledge-base stage and the reports need, without the prose: results cross a
    process boundary, and the body is most of a postmortem's bytes. The timeline (a third of
    what is left) only a site shows."""
    pm.body = ""
    if not for_site:
        pm.timeline = []
    pm.sections = [s for s in pm.sections if s.name in named_sections]
    pm.spans, pm.key_spans = later_spans(pm)
    pm.front_matter = {k: v for k, v in pm.front_matter.items() if k == "related"} | \
        {k: True for k in pm.front_matter if k != "related"}
    return pm


class RelativeTo:
    """Display paths relative to a folder; picklable, so workers show the same paths."""

    def __init__(self, root: Path | str):
        self.root = str(root)

    def __call__(self, path: Path) -> str:
        try:
            return Path(os.path.relpath(path, self.root)).as_posix()
        except ValueError:
            return str(path)


def _work(args):
    cfg, chunk, display = args
    return [check_file_content(a, rel, display(a), cfg, data) for a, rel, data in chunk]


def _per_file(cfg, files, display, cache, workers, disk):
    """Per-file checks: cache hits first; the misses in worker processes when there are many."""
    results: list = [None] * len(files)
    todo: list[tuple[int, Path, str, bytes | None]] = []
    stats: dict[int, tuple] = {}
    known = cache._stats if cache is not None else {}
    stat = os.stat
    for i, (abs_path, rel) in enumerate(files):
        data = None
        if cache is not None or disk is not None:
            try:
                name = str(abs_path)
                st = stat(name)
                if cache is not None:
                    # a file whose stat is what it was when last read (put_stat) is not read again
                    key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)
                    hit = known.get(name)
                    if hit is not None and hit[0] == key:
                        if disk is not None:
                            disk.keep(rel)
                        results[i] = hit[2]
                        continue
                    stats[i] = key
                data = read_bytes(name, cfg.max_file_size) if st.st_size <= cfg.max_file_size else None
                if isinstance(data, int):  # grew past the limit since the stat
                    data = None
            except OSError:
                data = None
        if data is not None:
            shown = display(abs_path)
            hit = cache.get(shown, data) if cache is not None else None
            if hit is not None and disk is not None:
                disk.keep(rel)
            if hit is None and disk is not None:
                hit = disk.get(shown, rel, content_hash(data), for_site=cfg.for_site)
                if hit is not None and cache is not None:
                    cache.put(shown, data, *hit)
            if hit is not None:
                results[i] = hit
                if i in stats:
                    cache.put_stat(str(abs_path), stats[i], shown, hit)
                continue
        todo.append((i, abs_path, rel, data))
    n = default_workers(cfg, len(todo), workers)
    if n > 1:
        done = _parallel(cfg, [(a, rel, d) for _, a, rel, d in todo], display, n)
    else:
        done = [check_file_content(a, rel, display(a), cfg, d) for _, a, rel, d in todo]
    for (i, abs_path, rel, data), result in zip(todo, done):
        results[i] = result
        if data is not None:
            if cache is not None:
                cache.put(result[0].path, data, *result)
                if i in stats:
                    cache.put_stat(str(abs_path), stats[i], result[0].path, result)
            if disk is not None:
                disk.put(rel, *result)
    if disk is not None:
        disk.save()
    return results


def _parallel(cfg, items, display, n):
    # small chunks (~25 ms, ~150 KB of results): whoever finishes last waits for little more
    # than one, and a child's results fit its pipe while the parent is busy with its own
    size = max(8, min(32, len(items) // (n * 8)))
    chunks = [(cfg, items[i:i + size], display) for i in range(0, len(items), size)]
    return [r for part in map_chunks(_work, chunks, n) for r in part]

