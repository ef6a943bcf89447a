"""Read one postmortem file: bytes -> text -> front matter + body sections -> model.

Line numbers are file lines (1-based) whatever the line ends (LF, CRLF, CR) and
whether or not the file starts with a UTF-8 byte-order mark.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

from .config import SECTION_ALIASES, SECTIONS, OPTIONAL_SECTIONS, Config
from .findings import Findings
from .model import Postmortem, Section, Span
from .normalise import normalise
from .page_meta import PageMeta
from .suppress import parse_suppressions
from .yamlload import YamlProblem, load

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_KNOWN = {s.lower(): s for s in (*SECTIONS, *OPTIONAL_SECTIONS)}
_YAML_BREAKS = {0x2028: " ", 0x2029: " ", 0x85: " "}
_MARKUP_START = {" ", "`", "~", "#"}  # how a fence or a `## ` heading line can start


@lru_cache(maxsize=1024)  # the same few headings, in every postmortem
def canonical_section(heading: str) -> tuple[str, bool]:
    key = re.sub(r"[\s:.]+$", "", heading.strip()).lower()
    key = re.sub(r"\s+", " ", key)
    if key in _KNOWN:
        return _KNOWN[key], True
    if key in SECTION_ALIASES:
        return SECTION_ALIASES[key], True
    return heading.strip(), False


def decode(data: bytes) -> str | None:
    """UTF-8 (BOM allowed) with line ends normalised to LF; None for binary or other encodings."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def content_hash(data: bytes) -> str:
    """What identifies a file's bytes (pages, serve and the results cache all key on it)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_bytes(path: Path, limit: int) -> bytes | int:
    """A file's bytes, or its size when that is over `limit`. One open, fstat and read, without
    the file objects Path.read_bytes makes (a third of reading 10,000 files)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            return size
        parts = [os.read(fd, size + 1)]
        total = len(parts[0])
        while parts[-1]:  # until end of file: it may have grown since the fstat
            if total > limit:
                return total
            parts.append(os.read(fd, 1 << 20))
            total += len(parts[-1])
        return parts[0] if len(parts) == 2 else b"".join(parts)
    finally:
        os.close(fd)


def read_postmortem(path: Path, display: str, rel_path: str, config: Config,
                    data: bytes | None = None) -> tuple[Postmortem, list]:
    """Parse a file from disk (or from `data`). Never raises for bad content."""
    pm = Postmortem(path=display, rel_path=rel_path)
    if config.for_site:
        pm.meta = PageMeta(None)  # until the front matter is read: MkDocs reads this file itself
    f = Findings(display, config)
    if data is None:
        try:
            data = read_bytes(path, config.max_file_size)
            if isinstance(data, int):
                pm.fatal = True
                f.add("file-too-large", Span(1), f"file is {data:,} bytes; the limit (max_file_size) is {config.max_file_size:,}")
                return pm, f.items
        except OSError as exc:
            pm.fatal = True
            f.add("unreadable-file", Span(1), f"cannot read the file: {exc.strerror or exc}")
            return pm, f.items
    elif len(data) > config.max_file_size:
        pm.fatal = True
        f.add("file-too-large", Span(1), f"file is {len(data):,} bytes; the limit (max_file_size) is {config.max_file_size:,}")
        return pm, f.items
    pm.content_hash = content_hash(data)
    text = decode(data)
    if text is None:
        pm.fatal = True
        f.add("unreadable-file", Span(1), "the file is not UTF-8 text (binary data or another encoding)",
              "save it as UTF-8")
        return pm, f.items
    return parse_text(text, pm, f, config)


def parse_text(text: str, pm: Postmortem, f: Findings, config: Config) -> tuple[Postmortem, list]:
    if not text.strip():
        pm.fatal = True
        f.add("empty-file", Span(1), "the file is empty", "run `pmkb new` to start from the template")
        return pm, f.items
    lines = text.split("\n")
    pm.line_count = len(lines) - (1 if text.endswith("\n") else 0)
    if "pmkb-" in text:
        pm.suppressions = parse_suppressions(lines)
    if lines[0].rstrip() != "---":
        pm.fatal = True
        f.add("missing-front-matter", Span(1, 1, 1, len(lines[0]) + 1),
              "the file does not start with YAML front matter", "start the file with a line '---', the fields, and '---'")
        _sections(pm, lines, 0)
        return pm, f.items
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if close is None:
        pm.fatal = True
        f.add("unterminated-front-matter", Span(1, 1, 1, 4), "the front matter has no closing '---' line",
              "add a line '---' after the last front-matter field")
        return pm, f.items
    yaml_text = "\n".join(lines[1:close])
    as_mkdocs_reads = config.for_site
    if not yaml_text.isascii() and any(chr(ch) in yaml_text for ch in _YAML_BREAKS):  # isascii: O(1)
        # YAML counts U+2028, U+2029 and NEL as line breaks; files and editors do not
        yaml_text = yaml_text.translate(_YAML_BREAKS)
        as_mkdocs_reads = False  # MkDocs reads the text as it is: its meta is its own to make
    try:
        loaded = load(yaml_text, line_offset=1, typed=config.for_site)
    except YamlProblem as exc:
        pm.fatal = True
        rule = {"syntax": "invalid-yaml"}.get(exc.kind, "unsafe-yaml")
        f.add(rule, Span(exc.line + 2, exc.column + 1), exc.message)
        _sections(pm, lines, close + 1)
        return pm, f.items
    if not isinstance(loaded.value, dict):
        pm.fatal = True
        kind = "empty" if loaded.value is None else type(loaded.value).__name__
        f.add("front-matter-not-mapping", Span(2, 1), f"the front matter is {'empty' if kind == 'empty' else 'a ' + kind}, not key: value pairs")
        _sections(pm, lines, close + 1)
        return pm, f.items
    for kpath, span in loaded.duplicates:
        f.add("duplicate-key", span, f"key '{'.'.join(map(str, kpath))}' appears more than once; YAML keeps only the last")
    pm.spans, pm.key_spans = loaded.spans, loaded.key_spans
    if config.for_site:
        pm.meta = PageMeta(loaded.value if as_mkdocs_reads and loaded.exact else None, tuple(loaded.typed))
    pm.body = "\n".join(lines[close + 1:])
    pm.body_line = close + 2
    _sections(pm, lines, close + 1)
    normalise(pm, loaded.value, f, config)
    return pm, f.items


def _sections(pm: Postmortem, lines: list[str], start: int) -> None:
    """Find `## ` sections, ignoring headings inside fenced code."""
    fence: str | None = None
    heads: list[tuple[int, str]] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if line[:1] not in _MARKUP_START:  # prose: neither a fence nor a heading
            continue
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip()[len(marker):].strip():
                fence = None
            continue
        if fence is None and line.startswith("##") and not line.startswith("###"):
            hm = _HEADING.match(line)
            if hm and len(hm.group(1)) == 2:
                heads.append((i, hm.group(2)))
    sections = []
    for n, (i, heading) in enumerate(heads):
        end = heads[n + 1][0] - 1 if n + 1 < len(heads) else len(lines) - 1
        name, known = canonical_section(heading)
        sections.append(Section(name, heading, i + 1, i + 2, end + 1, "\n".join(lines[i + 1:end + 1]), known))
    pm.sections = sections
    if pm.body == "" and start < len(lines):
        pm.body = "\n".join(lines[start:])
        pm.body_line = start + 1
