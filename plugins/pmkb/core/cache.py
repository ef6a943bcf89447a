"""Per-file check results kept on disk between runs, so an unchanged postmortem is never
parsed or scanned for blame twice (as ruff's cache does).

A file's entry is found by its path and the hash of its bytes, inside a cache made for one
configuration and one version of the code (the fingerprint): change either and the old
results are simply not looked at. What depends on the date (overdue action items) and on
other files (unique ids, related links, named people) is never cached; `kb.check` runs it
on every call.

The cache is a convenience, never a source of truth: a missing, corrupt or unwritable cache
is a miss, never an error. Entries are JSON: the model's classes are rebuilt by name from an
allowlist and every field is checked against its annotation, so a cache planted by someone
else (a restored CI cache, say) can neither run code nor hand the check a malformed object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import types
import typing
import zoneinfo
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from .safe_write import write_atomic
from .model import ActionItem, Diagnostic, Impact, Postmortem, Section, Span, TimelineEntry
from .page_meta import PageMeta
from .suppress import Suppression, Suppressions

FORMAT = 3  # 3: entries keyed by the path below the postmortems folder alone
SHARDS = 64  # an edit rewrites one shard, not the whole cache
KEEP = 4  # fingerprints kept side by side (switching branches or configs back and forth)
DEFAULT_DIR = ".pmkb_cache"


# ---- the file format: JSON, with the model's classes rebuilt by name and checked ------------
_CLASSES = {c.__name__: c for c in (Span, Diagnostic, Section, TimelineEntry, ActionItem, Impact, Postmortem,
                                    Suppression, Suppressions)}


_NOT_CACHED = {"meta"}  # a page generator's copy of the front matter: kept beside, as JSON text


class _Bad(Exception):
    """An entry that is not what pmkb writes: treated as a miss."""


def _encode(v):
    t = type(v)
    if v is None or t is str or t is int or t is float or t is bool:
        return v
    if t is list:
        return ["L", *map(_encode, v)]
    if t is dict:
        return ["M", *([_encode(k), _encode(x)] for k, x in v.items())]
    if t is tuple:
        return ["T", *map(_encode, v)]
    if t is set or t is frozenset:
        return ["S", *map(_encode, sorted(v, key=repr))]
    if t is datetime:
        tz = v.tzinfo
        zone = None if tz is None else tz.key if isinstance(tz, zoneinfo.ZoneInfo) else v.utcoffset().total_seconds()
        return ["DT", v.replace(tzinfo=None).isoformat(), zone]
    if t is date:
        return ["D", v.isoformat()]
    if t is Span:  # the most common object by far: a compact form of its own
        return ["P", v.line, v.column, v.end_line, v.end_column]
    if t.__name__ in _CLASSES and _CLASSES[t.__name__] is t:
        return ["C", t.__name__, *(None if f.name in _NOT_CACHED else _encode(getattr(v, f.name))
                                   for f in dataclasses.fields(t))]
    raise TypeError(f"cannot cache a {t.__name__}")


_PLAIN = (str, int, float, bool, type(None))


def _decode(v):
    if type(v) is not list:
        if type(v) is dict:
            raise _Bad("a bare mapping")
        return v
    if not v:
        raise _Bad("an untagged list")
    tag = v[0]
    if tag == "P":
        if len(v) != 5 or type(v[1]) is not int or type(v[2]) is not int or \
                not (v[3] is None or type(v[3]) is int) or not (v[4] is None or type(v[4]) is int):
            raise _Bad("a broken span")
        return Span(v[1], v[2], v[3], v[4])
    if tag == "C":
        cls = _CLASSES.get(v[1]) if len(v) >= 2 and type(v[1]) is str else None
        if cls is None:
            raise _Bad("a class that is not the model's")
        checks = _checks(cls)
        if len(v) - 2 != len(checks):
            raise _Bad(f"{v[1]} with {len(v) - 2} fields")
        values = [x if type(x) in _PLAIN else _decode(x) for x in v[2:]]
        for value, ok in zip(values, checks):
            if not ok(value):
                raise _Bad(f"{v[1]} with a field of type {type(value).__name__}")
        return cls(*values)
    if tag == "L":
        return [x if type(x) in _PLAIN else _decode(x) for x in v[1:]]
    if tag == "M":
        out = {}
        for pair in v[1:]:
            if type(pair) is not list or len(pair) != 2:
                raise _Bad("a broken mapping")
            key, value = pair
            if type(key) is not str:
                key = _decode(key)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise _Bad("an unhashable key")
            out[key] = value if type(value) in _PLAIN else _decode(value)
        return out
    if tag == "T":
        return tuple(x if type(x) in _PLAIN else _decode(x) for x in v[1:])
    if tag == "S":
        return {x for x in v[1:] if type(x) is str or type(x) is int}
    if tag == "D" and len(v) == 2 and type(v[1]) is str:
        return date.fromisoformat(v[1])
    if tag == "DT" and len(v) == 3 and type(v[1]) is str:
        naive = datetime.fromisoformat(v[1])
        zone = v[2]
        if naive.tzinfo is not None:
            raise _Bad("a datetime with two zones")
        if zone is None:
            return naive
        if type(zone) is str:
            return naive.replace(tzinfo=_zone(zone))
        if type(zone) in (int, float) and abs(zone) < 86400:
            return naive.replace(tzinfo=timezone.utc if zone == 0 else timezone(timedelta(seconds=zone)))
        raise _Bad("a bad time zone")
    raise _Bad(f"tag {tag!r}")


@lru_cache(maxsize=None)
def _zone(key: str):
    return zoneinfo.ZoneInfo(key)  # refuses absolute and '..' keys itself


@lru_cache(maxsize=None)
def _checks(cls) -> tuple:
    """One check per field, made once from the annotations (checking by walking the
    annotation each time made a warm cache slower than no cache)."""
    hints = typing.get_type_hints(cls)
    return tuple(_check(hints[f.name]) for f in dataclasses.fields(cls))


def _check(hint):
    """A function telling whether a decoded value fits `hint` (the shapes the model uses)."""
    if hint is typing.Any:
        return lambda v: True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        alternatives = tuple(_check(h) for h in typing.get_args(hint))
        if len(alternatives) == 2 and type(None) in typing.get_args(hint):
            other = alternatives[0] if typing.get_args(hint)[1] is type(None) else alternatives[1]
            return lambda v: v is None or other(v)
        return lambda v: any(ok(v) for ok in alternatives)
    args = typing.get_args(hint)
    if origin is dict:
        key, value = (_check(args[0]), _check(args[1])) if args else (lambda v: True, lambda v: True)
        return lambda v: type(v) is dict and all(key(k) and value(x) for k, x in v.items())
    if origin is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            item = _check(args[0]) if args else (lambda v: True)
            return lambda v: type(v) is tuple and all(item(x) for x in v)
        items = tuple(_check(h) for h in args)
        return lambda v: type(v) is tuple and len(v) == len(items) and all(ok(x) for ok, x in zip(items, v))
    if origin in (list, set):
        item = _check(args[0]) if args else (lambda v: True)
        return lambda v: type(v) is origin and all(item(x) for x in v)
    if hint in (list, set, tuple, dict):
        return lambda v: type(v) is hint
    if hint is type(None):
        return lambda v: v is None
    if hint is float:
        return lambda v: type(v) is float or type(v) is int
    if hint in (int, str, bool, date, datetime) or hint in _CLASSES.values():
        return lambda v: type(v) is hint
    return lambda v: False


def dumps(shard: dict) -> bytes:
    return json.dumps([[k, d, _encode(pm), _encode(diags), meta] for k, (d, pm, diags, meta) in shard.items()],
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes) -> dict:
    out = {}
    for row in json.loads(data):
        if not (isinstance(row, list) and len(row) == 5 and isinstance(row[0], str) and isinstance(row[1], str)
                and (row[4] is None or isinstance(row[4], str))):
            raise _Bad("a malformed entry")
        pm, diags = _decode(row[2]), _decode(row[3])
        if not isinstance(pm, Postmortem) or not isinstance(diags, list) or \
                not all(isinstance(d, Diagnostic) and d.path == pm.path for d in diags):
            raise _Bad("an entry without a postmortem and its diagnostics")
        out[row[0]] = (row[1], pm, diags, row[4])
    return out


def _meta_json(meta: PageMeta | None) -> str | None:
    """The front matter a site generator reuses as page meta, kept as JSON text: only a build
    decodes it (json.loads, in C). None: not asked for (the CLI's runs); a value JSON cannot
    hold (!!binary) is kept as "no meta", so MkDocs reads that file itself."""
    if meta is None:
        return None
    return meta.to_json() or PageMeta(None).to_json()


# ---- where and under which key ------------------------------------------------------------
@lru_cache(maxsize=1)
def _code_stamp() -> str:
    """pmkb's own modules and the libraries a file check leans on: a changed checkout or
    upgrade never reuses old results. Contents, not times, so CI can share a cache."""
    import yaml

    package = Path(__file__).resolve().parent.parent
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{FORMAT}\n{sys.version}\n{yaml.__version__}\n{hasattr(yaml, 'CSafeLoader')}\n".encode())
    for path in sorted(package.rglob("*.py")):
        try:
            h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            continue
    try:
        from importlib.metadata import version

        h.update(version("tzdata").encode())
    except Exception:  # no tzdata package: the system's zone files
        pass
    return h.hexdigest()


def _stable(v) -> str:
    """A canonical text of configuration values (keys of any type, in a fixed order)."""
    if isinstance(v, dict):
        return "{" + ",".join(sorted(f"{_stable(k)}:{_stable(x)}" for k, x in v.items())) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_stable(x) for x in v) + "]"
    return repr(v)


def fingerprint(cfg) -> str:
    """Everything besides the file itself that the cached results depend on."""
    state = [
        _code_stamp(), str(cfg.root), str(cfg.docs_dir), cfg.postmortems_dir, cfg.timezone, cfg.id_prefix,
        cfg.currency, repr(cfg.severities), _stable({k: repr(v) for k, v in cfg.required.items()}),
        _stable(cfg.status_levels), _stable(cfg.rule_levels), _stable(cfg.blame), _stable(list(cfg.people)),
        cfg.max_file_size, _stable(list(cfg.options.get("customers") or ())),  # the one raw option a file rule reads
    ]
    return hashlib.blake2b(_stable(state).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def settings_key(cfg) -> str:
    """The fingerprint and every option besides: what in-memory results may depend on. The
    stages never cached on disk (overdue items, named people) read options the fingerprint
    leaves out (overdue_policy), and `mkdocs serve` keeps results across edits of mkdocs.yml."""
    return fingerprint(cfg) + hashlib.blake2b(_stable(cfg.options).encode("utf-8", "surrogatepass"),
                                              digest_size=12).hexdigest()


def cache_folder(cfg) -> Path | None:
    """Where the cache lives, or None when it is switched off (`cache_dir: ""` or PMKB_NO_CACHE)."""
    if os.environ.get("PMKB_NO_CACHE", "").strip() not in ("", "0"):
        return None
    configured = cfg.options.get("cache_dir", DEFAULT_DIR)
    if configured in (None, False) or not str(configured).strip():
        return None
    folder = Path(str(configured)).expanduser()
    return folder if folder.is_absolute() else cfg.root / folder


class ResultCache:
    """Check results by path below the postmortems folder and content hash. Not by the path
    a run shows (relative to where it runs): the CLI from any folder and the plugin share
    the entries, and each gets them with its own paths."""

    def __init__(self, folder: Path, fingerprint: str):
        self.top = folder
        self.folder = folder / f"v{FORMAT}" / fingerprint
        self._shards: dict[int, dict] = {}
        self._dirty: set[int] = set()
        self._seen: set[str] = set()
        self._kept: set[int] = set()  # shards holding a kept file, not opened

    @classmethod
    def for_config(cls, cfg) -> ResultCache | None:
        folder = cache_folder(cfg)
        return None if folder is None else cls(folder, fingerprint(cfg))

    def _shard_of(self, rel: str) -> int:
        return hashlib.blake2b(rel.encode("utf-8", "surrogatepass"), digest_size=2).digest()[0] % SHARDS

    def _shard(self, n: int) -> dict:
        shard = self._shards.get(n)
        if shard is None:
            try:
                shard = loads((self.folder / f"{n:02x}.json").read_bytes())
            except Exception:  # missing, truncated, hand-edited, planted: a miss
                shard = {}
            self._shards[n] = shard
        return shard

    def get(self, display: str, rel: str, digest: str, for_site: bool = False) -> tuple[Postmortem, list[Diagnostic]] | None:
        """The results for this file if its bytes still hash to `digest` (parse.content_hash).
        `for_site` (Config.for_site) takes only an entry written for a site, with the page meta
        and timeline: one the CLI wrote without them is a miss, so the file is checked again
        and its entry gains them."""
        self._seen.add(rel)
        shard = self._shard(self._shard_of(rel))
        hit = shard.get(rel)
        if hit is None or hit[0] != digest:
            return None
        if hit[1].path != display:  # written by a run that shows paths from elsewhere
            hit[1].path = display
            hit = shard[rel] = (hit[0], hit[1], [dataclasses.replace(d, path=display) for d in hit[2]], hit[3])
        if for_site and hit[1].meta is None:
            hit[1].meta = None if hit[3] is None else PageMeta.from_json(hit[3])
            if hit[1].meta is None:
                return None
        return hit[1], hit[2]

    def keep(self, rel: str) -> None:
        """A file answered from elsewhere (the in-memory cache of `mkdocs serve`) is still here
        (its shard is not even opened)."""
        self._seen.add(rel)
        self._kept.add(self._shard_of(rel))

    def put(self, rel: str, pm: Postmortem, diags: list[Diagnostic]) -> None:
        self._seen.add(rel)
        n = self._shard_of(rel)
        self._shard(n)[rel] = (pm.content_hash, pm, list(diags), _meta_json(pm.meta))
        self._dirty.add(n)

    def save(self) -> None:
        """Write the shards that changed (and drop entries for files no longer there); any
        failure leaves the cache as it was. A run sees every file of the knowledge base, so a
        shard it never opened holds no file that is still there."""
        for n, shard in self._shards.items():
            stale = [k for k in shard if k not in self._seen]
            for k in stale:
                del shard[k]
            if stale:
                self._dirty.add(n)
        for n in range(SHARDS):
            if n not in self._shards and n not in self._kept:
                try:
                    (self.folder / f"{n:02x}.json").unlink()
                except OSError:  # mostly: there is none
                    pass
        if not self._dirty:
            return
        try:
            created = not self.top.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
            if created:  # only a folder pmkb made is marked: cache_dir could be any folder of yours
                _mark_as_cache(self.top)
        except OSError:
            return
        for n in sorted(self._dirty):
            try:
                write_atomic(self.folder / f"{n:02x}.json", dumps(self._shards[n]))
            except Exception:  # unwritable, or a value that is not the model's: that shard stays as it was
                continue
        self._dirty.clear()
        _prune(self.folder.parent, keep=self.folder.name)


def _mark_as_cache(top: Path) -> None:
    """As ruff does: a .gitignore that ignores the folder, and a CACHEDIR.TAG for backup tools."""
    ignore = top / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Automatically created by pmkb.\n*\n", encoding="utf-8")
    tag = top / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n# This is a cache directory created by pmkb.\n",
                       encoding="utf-8")


def _prune(versions: Path, keep: str) -> None:
    """Keep the newest KEEP fingerprints (folders named as pmkb names them, nothing else)."""
    import re
    import shutil

    try:
        folders = sorted((p for p in versions.iterdir() if p.is_dir() and p.name != keep
                          and re.fullmatch(r"[0-9a-f]{24}", p.name) and not p.is_symlink()),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in folders[KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)
