"""`pmkb fix`: safe, minimal rewrites of a postmortem's front matter.

Three rewrites, each changing only the bytes it needs:

* ``invalid-severity`` -- a severity alias (``p2``, ``sev2``, ``" Sev2"``) becomes the
  canonical name (``SEV2``), keeping its quoting and any trailing comment;
* ``timeline-out-of-order`` -- the entries of a block-style ``timeline`` list are
  put in chronological order, moving whole blocks of lines (an entry runs from its
  ``- `` line to the line before the next entry, comments and blank lines included);
* ``missing-action-id`` -- a block-style action item without an ``id`` gets
  ``id: <postmortem id>-<n>`` as its first key.

Positions come from the spans recorded by :func:`core.yamlload.load`; the edits are
made on the file's own lines, so line ends (LF, CRLF, CR, even mixed), a byte-order
mark, comments, quoting and key order elsewhere stay byte for byte. Every edit is
checked by loading the front matter again: the data must equal the old data with
exactly the intended change (key order included), or the edit is dropped. A file
whose front matter cannot be read is returned unchanged.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from .core.config import Config
from .core.durations import parse_date, parse_time
from .core.normalise import ID_RE, KEY_ALIASES, _key, _text
from .core.parse import _YAML_BREAKS
from .core.yamlload import YamlProblem, load

__all__ = ["Change", "fix_text", "fix_bytes", "unified_diff"]

BOM = "\ufeff"
# The line ends parse.py counts (it turns CRLF and lone CR into LF before splitting).
# str.splitlines() would also split at form feeds, U+2028 and friends, and the
# line numbers would no longer be the file's.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_DASH = re.compile(r"^( *)-[ \t]+$")  # what precedes an item's first key on a `- key: value` line
_TIMELINE_KEYS = {"description": "event", "at": "time"}  # as normalise reads timeline entries


@dataclass(frozen=True)
class Change:
    rule: str  # the rule it fixes: invalid-severity | timeline-out-of-order | missing-action-id
    line: int  # 1-based line of the input text where the change starts
    description: str  # e.g. "severity: p2 -> SEV2"


@dataclass
class _Edit:
    start: int  # index (0-based) of the first line replaced
    stop: int  # index after the last line replaced
    new: list[str]  # the replacement lines, with their line ends
    change: Change
    expect: Callable[[dict], None]  # applies the intended change to (a copy of) the data


class _Doc:
    """The file split into lines, the front matter located and loaded."""

    def __init__(self, text: str):
        self.bom = BOM if text.startswith(BOM) else ""
        self.lines = split_lines(text[len(self.bom):])
        self.content = [_strip_eol(line) for line in self.lines]
        self.close = _closing_line(self.content)
        self.loaded = None
        if self.close is not None:
            self.loaded = load(_yaml_text(self.content, self.close), line_offset=1)


def split_lines(text: str) -> list[str]:
    """Lines with their ends kept; only CRLF, CR and LF end a line (as in parse.py)."""
    return _LINE.findall(text)


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


def _closing_line(content: list[str]) -> int | None:
    if not content or content[0].rstrip() != "---":
        return None
    return next((i for i in range(1, len(content)) if content[i].rstrip() in ("---", "...")), None)


def _yaml_text(content: list[str], close: int) -> str:
    text = "\n".join(content[1:close])
    if any(chr(ch) in text for ch in _YAML_BREAKS):
        text = text.translate(_YAML_BREAKS)  # one character for one: columns do not move
    return text


# ---------------------------------------------------------------------------
# public API


def fix_text(text: str, cfg: Config) -> tuple[str, list[Change]]:
    """Return the fixed text and what changed. Never raises on bad input: a file whose
    front matter cannot be parsed (or that has no front matter) is returned unchanged
    with no changes.

    Pass the text decoded with plain ``utf-8`` (not ``utf-8-sig``) and without newline
    translation, so a byte-order mark and CRLF line ends survive the round trip.
    """
    try:
        return _fix(text, cfg)
    except Exception:  # noqa: BLE001 - a defensive net: a bad file must never crash `fix`
        return text, []


def fix_bytes(data: bytes, cfg: Config) -> tuple[bytes, list[Change]]:
    """`fix_text` on a file's bytes; anything that is not UTF-8 text comes back unchanged."""
    if b"\x00" in data:
        return data, []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data, []
    new, changes = fix_text(text, cfg)
    if not changes:
        return data, []
    return new.encode("utf-8"), changes


def unified_diff(path: str, old: str, new: str) -> str:
    """A unified diff (difflib, `a/` and `b/` labels); empty when nothing changed."""
    if old == new:
        return ""
    label = path.replace("\\", "/").lstrip("/")
    out = []
    for line in difflib.unified_diff(split_lines(old), split_lines(new), f"a/{label}", f"b/{label}"):
        if line.endswith(("\n", "\r")):
            out.append(line)
        else:  # the last line of a file without a final line end (as git shows it)
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# the engine


def _fix(text: str, cfg: Config) -> tuple[str, list[Change]]:
    doc = _Doc(text)
    if doc.loaded is None or not isinstance(doc.loaded.value, dict):
        return text, []
    data = doc.loaded.value
    keys = _top_keys(data)
    dup_tops = {p[0] for p, _ in doc.loaded.duplicates if p}
    edits: list[_Edit] = []
    for fixer in (_severity_edits, _timeline_edits, _action_id_edits):
        edits.extend(fixer(doc, data, keys, dup_tops, cfg))
    if not edits:
        return text, []

    # Keep each edit only if the front matter, reloaded, holds exactly the data intended.
    edits.sort(key=lambda e: e.start)
    accepted: list[_Edit] = []
    for edit in edits:
        if accepted and edit.start < accepted[-1].stop:
            continue  # overlapping edits (cannot happen for block-style front matter)
        trial = accepted + [edit]
        if _verify(doc, data, trial):
            accepted = trial
    if not accepted:
        return text, []
    lines = _apply(doc.lines, accepted)
    changes = [e.change for e in accepted]
    return doc.bom + "".join(lines), changes


def _apply(lines: list[str], edits: list[_Edit]) -> list[str]:
    out = list(lines)
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        out[e.start:e.stop] = e.new
    return out


def _verify(doc: _Doc, data: dict, edits: list[_Edit]) -> bool:
    content = [_strip_eol(line) for line in _apply(doc.lines, edits)]
    close = _closing_line(content)
    if close is None:
        return False
    try:
        after = load(_yaml_text(content, close), line_offset=1)
    except YamlProblem:
        return False
    if len(after.duplicates) != len(doc.loaded.duplicates):
        return False
    expected = copy.deepcopy(data)
    for e in edits:
        e.expect(expected)
    return _same(after.value, expected)


def _same(a: Any, b: Any) -> bool:
    """Equal data, key order and types included (1, 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _top_keys(data: dict) -> dict[str, str]:
    """canonical top-level key -> the key as written (the first spelling wins, as in normalise)."""
    out: dict[str, str] = {}
    for k in data:
        c = _key(k)
        out.setdefault(KEY_ALIASES.get(c, c), k)
    return out


def _item_keys(item: dict, aliases: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k in item:
        c = _key(k)
        out.setdefault(aliases.get(c, c), k)
    return out


def _char(doc: _Doc, line: int, column: int) -> str:
    """The character at a 1-based file line and column ('' past the end)."""
    i = line - 1
    if not 0 <= i < len(doc.content):
        return ""
    return doc.content[i][column - 1:column]


# ---------------------------------------------------------------------------
# 1. severity aliases


def _severity_edits(doc: _Doc, data: dict, keys: dict[str, str], dup_tops: set, cfg: Config) -> list[_Edit]:
    key = keys.get("severity")
    if key is None or key in dup_tops:
        return []
    value = data[key]
    if value is None or isinstance(value, (dict, list)):
        return []
    canonical = cfg.canonical_severity(str(value))
    if canonical is None or str(value) == canonical:
        return []
    span = doc.loaded.spans.get((key,))
    kspan = doc.loaded.key_spans.get((key,))
    if span is None or kspan is None or span.end_line != span.line or span.end_column is None:
        return []
    if (span.line, span.column) < kspan.end():  # an alias: the value stands elsewhere
        return []
    i = span.line - 1
    line = doc.lines[i]
    old = line[span.column - 1:span.end_column - 1]
    if not old or old[0] in "&!*|>":
        return []
    if old[0] == '"' and old.endswith('"') and len(old) >= 2:
        new = '"' + canonical.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif old[0] == "'" and old.endswith("'") and len(old) >= 2:
        new = "'" + canonical.replace("'", "''") + "'"
    else:
        new = canonical
    fixed = line[:span.column - 1] + new + line[span.end_column - 1:]

    def expect(d: dict, key=key, canonical=canonical) -> None:
        d[key] = canonical

    return [_Edit(i, i + 1, [fixed], Change("invalid-severity", span.line, f"{key}: {old} -> {new}"), expect)]


# ---------------------------------------------------------------------------
# 2. timeline order


def _block_items(doc: _Doc, key: str, items: list) -> list[tuple[int, int]] | None:
    """(line, column) of each item of a block sequence written as `- key: value` lines.

    None when the list is flow style, an item is an alias, or an item does not start
    on its own `- ` line at the sequence's indentation.
    """
    spans = doc.loaded.spans
    seq = spans.get((key,))
    kspan = doc.loaded.key_spans.get((key,))
    if seq is None or kspan is None or (seq.line, seq.column) < kspan.end():
        return None
    if _char(doc, seq.line, seq.column) != "-":
        return None  # flow style [...], or an anchored/tagged list
    out = []
    prev_line = seq.line - 1
    for i in range(len(items)):
        sp = spans.get((key, i))
        if sp is None or sp.line <= prev_line or sp.line > doc.close:
            return None
        m = _DASH.match(doc.content[sp.line - 1][:sp.column - 1])
        if m is None or len(m.group(1)) != seq.column - 1:
            return None
        out.append((sp.line, sp.column))
        prev_line = sp.line
    return out


def _content_end(doc: _Doc, path: tuple) -> int:
    """The last file line holding text of the node at `path` (its scalars and keys)."""
    spans, kspans = doc.loaded.spans, doc.loaded.key_spans
    n = len(path)
    under = [p for p in spans if p[:n] == path]
    leaves = [p for p in under if not any(len(q) > len(p) and q[:len(p)] == p for q in under)]
    last = spans[path].line
    for table, paths in ((spans, leaves), (kspans, [p for p in kspans if p[:n] == path])):
        for p in paths:
            sp = table[p]
            end_line, end_col = sp.end()
            last = max(last, end_line if end_col > 1 else end_line - 1)
    return last


def _timeline_edits(doc: _Doc, data: dict, keys: dict[str, str], dup_tops: set, cfg: Config) -> list[_Edit]:
    key = keys.get("timeline")
    if key is None or key in dup_tops:
        return []
    items = data[key]
    if not isinstance(items, list) or len(items) < 2:
        return []
    day = parse_date(data[keys["date"]]) if "date" in keys else None
    tz = cfg.tz
    times = []
    for item in items:
        if not isinstance(item, dict):
            return []
        written = _item_keys(item, _TIMELINE_KEYS).get("time")
        raw = item.get(written) if written is not None else None
        dt = parse_time(raw, day, tz) if isinstance(raw, str) else None
        if dt is None:
            return []  # one time we cannot place: leave the order to the author
        times.append(dt)
    order = sorted(range(len(items)), key=lambda i: times[i])  # stable: equal times keep their order
    if order == list(range(len(items))):
        return []
    starts = _block_items(doc, key, items)
    if starts is None:
        return []
    first = starts[0][0] - 1  # 0-based line index of the first `- ` line
    bounds = [line - 1 for line, _ in starts]
    end = _content_end(doc, (key, len(items) - 1))  # 1-based last line of the last entry
    # comment lines right below the last entry, indented deeper than its dash, belong to it
    dash_indent = doc.loaded.spans[(key,)].column - 1
    while end < doc.close:
        nxt = doc.content[end]
        stripped = nxt.lstrip(" ")
        if not stripped.startswith("#") or len(nxt) - len(stripped) <= dash_indent:
            break
        end += 1
    bounds.append(end)  # exclusive 0-based index = 1-based last line
    if end <= bounds[-2]:
        return []
    blocks = [doc.lines[bounds[i]:bounds[i + 1]] for i in range(len(items))]
    new = [line for i in order for line in blocks[i]]
    moved = next(n for n, i in enumerate(order) if i != n)
    change = Change(
        "timeline-out-of-order",
        starts[moved][0],
        f"{key}: sorted {len(items)} entries by time",
    )

    def expect(d: dict, key=key, order=order) -> None:
        d[key] = [d[key][i] for i in order]

    return [_Edit(first, end, new, change, expect)]


# ---------------------------------------------------------------------------
# 3. missing action-item ids


def _action_id_edits(doc: _Doc, data: dict, keys: dict[str, str], dup_tops: set, cfg: Config) -> list[_Edit]:
    key = keys.get("action_items")
    id_key = keys.get("id")
    if key is None or id_key is None or key in dup_tops or id_key in dup_tops:
        return []
    pm_id = _text(data[id_key])
    if pm_id is None or not ID_RE.match(pm_id):
        return []
    items = data[key]
    if not isinstance(items, list) or not items:
        return []
    existing = set()
    missing = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        written = _item_keys(item, {}).get("id")
        if written is None:
            missing.append(i)
            continue
        raw = item[written]
        if raw is not None:
            existing.add(str(raw))
            existing.add(_text(raw) or "")
    if not missing:
        return []
    spans = doc.loaded.spans
    seq = spans.get((key,))
    kspan = doc.loaded.key_spans.get((key,))
    if seq is None or kspan is None or (seq.line, seq.column) < kspan.end() or _char(doc, seq.line, seq.column) != "-":
        return []  # flow style, or the list is an alias
    edits = []
    prev = seq.line - 1
    for i in missing:
        new_id = f"{pm_id}-{i + 1}"
        if new_id in existing:
            continue  # it would collide with an id already written
        sp = spans.get((key, i))
        if sp is None or sp.line <= prev or sp.line >= doc.close + 1 or sp.column < 2:
            continue
        idx = sp.line - 1
        line, content = doc.lines[idx], doc.content[idx]
        if content[sp.column - 1:sp.column] in ("", "{", "&", "!", "*", "?", "#"):
            continue  # flow mapping, anchored/tagged item or something unusual: leave it
        before = content[:sp.column - 1]
        indent = " " * (sp.column - 1)
        eol = line[len(content):]
        if not eol:
            continue
        id_line = f"id: {new_id}"
        if not before.strip(" "):  # `-` alone on the line above: insert a line before the first key
            new = [indent + id_line + eol, line]
        elif _DASH.match(before):  # `- action: X` -> `- id: ...` / `  action: X`
            new = [before + id_line + eol, indent + line[sp.column - 1:]]
        else:
            continue
        change = Change("missing-action-id", sp.line, f"{key}[{i + 1}]: added id {new_id}")

        def expect(d: dict, key=key, i=i, new_id=new_id) -> None:
            d[key][i] = {"id": new_id, **d[key][i]}

        edits.append(_Edit(idx, idx + 1, new, change, expect))
        prev = sp.line
    return edits
