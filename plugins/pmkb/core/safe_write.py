"""Writing users' files without ever losing one: temporary file, fsync, then link or rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class FileExists(Exception):
    pass


def _temp_beside(path: Path, data: bytes, durable: bool = True) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace `path` in one step (a temporary file beside it, then a rename): readers see the
    old bytes or the new, never half. For files pmkb owns (generated pages, its cache); a link
    at `path` is replaced, not followed. New files get 0666 less the umask."""
    tmp = _temp_beside(path, data, durable)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def write_new(path: Path, text: str) -> None:
    """Create `path` with `text`, atomically; refuse if it exists (even if created meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExists(path)
    tmp = _temp_beside(path, text.encode("utf-8"))
    try:
        os.link(tmp, path)  # fails if path appeared in the meantime: never overwrites
    except FileExistsError:
        raise FileExists(path) from None
    finally:
        os.unlink(tmp)


def replace_file(path: Path, text: str, expected: bytes) -> None:
    """Atomically replace `path`, only if it still holds `expected` (no lost concurrent edit)."""
    if path.read_bytes() != expected:
        raise FileExists(f"{path} changed since it was read")
    tmp = _temp_beside(path, text.encode("utf-8"))
    try:
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
