"""Per-file check results kept on disk between runs, so an unchanged postmortem is never
parsed or scanned for blame twice (as ruff's cache does).

A file's entry is found by its path and the hash of its bytes, inside a cache made for one
configuration and one version of the code (the fingerprint): change either and the old
results are simply not looked at. What depends on the date (overdue action items) and on
other files (unique ids, related links, named people) is never cached; `kb.check` runs it
on every call.

The cache is a convenience, never a source of truth: a missing, corrupt or unwritable cache
is a miss, never an error. Entries are pickles read through an allowlist of the model's own
classes, so a cache planted by someone else (a restored CI cache, say) cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path

from .model import Diagnostic, Postmortem

FORMAT = 1
SHARDS = 64  # an edit rewrites one shard, not the whole cache
KEEP = 4  # fingerprints kept side by side (switching branches or configs back and forth)
DEFAULT_DIR = ".pmkb_cache"

_ALLOWED = {
    ("datetime", "date"), ("datetime", "datetime"), ("datetime", "time"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("zoneinfo", "ZoneInfo._unpickle"), ("zoneinfo._zoneinfo", "ZoneInfo._unpickle"),
}
_ALLOWED_MODULES = {"pmkb.core.model", "pmkb.core.suppress"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED or (module in _ALLOWED_MODULES and "." not in name and not name.startswith("_")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the pmkb cache")


def _code_stamp() -> str:
    """Size and mtime of every module of pmkb: an edited checkout never reuses old results."""
    package = Path(__file__).resolve().parent.parent
    parts = [f"{FORMAT}", sys.version]
    for path in sorted(package.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        parts.append(f"{path.relative_to(package).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def fingerprint(cfg) -> str:
    """Everything besides the file itself that the cached results depend on."""
    state = {
        "code": _code_stamp(), "root": str(cfg.root), "docs_dir": str(cfg.docs_dir),
        "postmortems_dir": cfg.postmortems_dir, "timezone": cfg.timezone, "id_prefix": cfg.id_prefix,
        "currency": cfg.currency, "severities": repr(cfg.severities), "required": repr(sorted(cfg.required.items())),
        "status_levels": cfg.status_levels, "rule_levels": cfg.rule_levels, "blame": cfg.blame,
        "people": list(cfg.people), "max_file_size": cfg.max_file_size,
        "customers": list(cfg.options.get("customers") or ()),  # the one raw option a per-file rule reads
    }
    text = json.dumps(state, sort_keys=True, default=repr)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


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
    """Check results by (display path, path below the postmortems folder, content hash)."""

    def __init__(self, folder: Path, fingerprint: str):
        self.folder = folder / f"v{FORMAT}" / fingerprint
        self._shards: dict[int, dict] = {}
        self._dirty: set[int] = set()
        self._seen: set[tuple[str, str]] = set()

    @classmethod
    def for_config(cls, cfg) -> ResultCache | None:
        folder = cache_folder(cfg)
        return None if folder is None else cls(folder, fingerprint(cfg))

    @staticmethod
    def digest(data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=16).digest()

    def _shard_of(self, key: tuple[str, str]) -> int:
        return hashlib.blake2b("\0".join(key).encode("utf-8", "surrogatepass"), digest_size=2).digest()[0] % SHARDS

    def _shard(self, n: int) -> dict:
        shard = self._shards.get(n)
        if shard is None:
            shard = {}
            try:
                with open(self.folder / f"{n:02x}.pickle", "rb") as fh:
                    loaded = _Unpickler(io.BytesIO(fh.read())).load()
                if isinstance(loaded, dict):
                    shard = loaded
            except Exception:  # missing, truncated, from another Python, planted: a miss
                shard = {}
            self._shards[n] = shard
        return shard

    def get(self, display: str, rel: str, digest: bytes) -> tuple[Postmortem, list[Diagnostic]] | None:
        key = (display, rel)
        self._seen.add(key)
        hit = self._shard(self._shard_of(key)).get(key)
        if hit is None or not isinstance(hit, tuple) or len(hit) != 3 or hit[0] != digest:
            return None
        _, pm, diags = hit
        if not isinstance(pm, Postmortem) or not isinstance(diags, list):
            return None
        return pm, diags

    def put(self, display: str, rel: str, digest: bytes, pm: Postmortem, diags: list[Diagnostic]) -> None:
        key = (display, rel)
        self._seen.add(key)
        n = self._shard_of(key)
        self._shard(n)[key] = (digest, pm, list(diags))
        self._dirty.add(n)

    def save(self) -> None:
        """Write the shards that changed (and drop entries for files no longer there); any
        failure leaves the cache as it was."""
        for n, shard in self._shards.items():
            stale = [k for k in shard if k not in self._seen]
            for k in stale:
                del shard[k]
            if stale:
                self._dirty.add(n)
        if not self._dirty:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _mark_as_cache(self.folder.parent.parent)
        except OSError:
            return
        for n in sorted(self._dirty):
            target = self.folder / f"{n:02x}.pickle"
            try:
                fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{n:02x}.", suffix=".tmp")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        pickle.dump(self._shards[n], fh, protocol=pickle.HIGHEST_PROTOCOL)
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
            except Exception:
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
    """Keep the newest KEEP fingerprints."""
    import shutil

    try:
        folders = sorted((p for p in versions.iterdir() if p.is_dir() and p.name != keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in folders[KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)
