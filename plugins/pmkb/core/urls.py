"""Page URLs the way MkDocs computes them, and links between pages.

Generated HTML is not rewritten by MkDocs (only Markdown links are), so links in
it are made relative to the page they appear on, here, for any site generator.
"""

from __future__ import annotations

import posixpath
import re

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str, max_len: int = 80) -> str:
    """A path segment that can never escape its folder: [a-z0-9-] only."""
    import unicodedata

    norm = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    s = _UNSAFE.sub("-", norm).strip("-")[:max_len].rstrip("-")
    return s or "x"


def page_url(src_path: str, use_directory_urls: bool = True) -> str:
    """'a/b.md' -> 'a/b/' (or 'a/b.html'); 'a/index.md' -> 'a/'; any other file keeps its path."""
    stem, ext = posixpath.splitext(src_path)
    if ext.lower() not in (".md", ".markdown"):
        return src_path
    name = posixpath.basename(stem)
    folder = posixpath.dirname(stem)
    if name in ("index", "README"):
        return f"{folder}/" if folder else ""
    if use_directory_urls:
        return f"{stem}/"
    return f"{stem}.html"


def relative_url(from_url: str, to_url: str) -> str:
    """Link from the page at `from_url` to `to_url` (both site-relative, as page_url makes
    them). String work only: index pages make tens of thousands of these, and
    posixpath.relpath resolves both against the working directory each time."""
    base = from_url if from_url.endswith("/") or from_url == "" else posixpath.dirname(from_url) + "/"
    here = [p for p in base.split("/") if p and p != "."]
    there = [p for p in to_url.rstrip("/").split("/") if p and p != "."]
    common = 0
    for a, b in zip(here, there):
        if a != b:
            break
        common += 1
    rel = "/".join([".."] * (len(here) - common) + there[common:]) or "."
    if to_url.endswith("/") or to_url == "":
        return "./" if rel == "." else rel + "/"
    return rel
