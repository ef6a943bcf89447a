"""Writing users' files without ever losing one: temporary file, fsync, then link or rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class FileExists(Exception):
    pass


def _temp_beside(path: Path, text: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_new(path: Path, text: str) -> None:
    """Create `path` with `text`, atomically; refuse if it exists (even if created meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExists(path)
    tmp = _temp_beside(path, text)
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
    tmp = _temp_beside(path, text)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
