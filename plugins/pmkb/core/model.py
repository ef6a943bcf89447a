"""The postmortem data model: plain data classes, no behaviour beyond derived values.

Everything here is what a parsed, normalised postmortem *is*; validation lives in
`rules/`, reading files in `parse.py`, and knowledge-base-wide facts in `kb.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

SEVERITY_LEVELS = ("error", "warning", "notice")
TIME_KEYS = ("started", "detected", "acknowledged", "mitigated", "resolved")
ROLE_KEYS = ("incident_commander", "tech_lead", "comms_lead", "scribe")
STATUSES = ("draft", "in-review", "published")
DETECTIONS = ("alert", "customer", "internal", "healthcheck", "other")
PHASES = ("detect", "triage", "mitigate", "resolve", "review")
ACTION_STATUSES = ("open", "in-progress", "done", "wont-do")
ACTION_KINDS = ("prevent", "detect", "mitigate", "process")


@dataclass(frozen=True, slots=True)
class Span:
    """1-based line and column; `end_column` is exclusive (as in ruff and SARIF)."""

    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def end(self) -> tuple[int, int]:
        return (self.end_line or self.line, self.end_column or self.column)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    path: str
    span: Span
    code: str
    rule: str
    severity: str  # error | warning | notice
    message: str
    suggestion: str | None = None

    def sort_key(self) -> tuple:
        return (self.path, self.span.line, self.span.column)  # stable sort keeps emission order


@dataclass(slots=True)
class Section:
    """A `## ` section of the body. Lines are 1-based file lines."""

    name: str  # canonical name ("What Went Poorly") or the heading as written
    heading: str  # the heading text as written
    line: int  # the heading's line
    body_start: int  # first line after the heading
    body_end: int  # last line of the section (inclusive)
    text: str  # the section's body text (lines body_start..body_end)
    known: bool = True

    @property
    def is_empty(self) -> bool:
        return not strip_comments(self.text).strip()


def strip_comments(text: str) -> str:
    """Text without HTML comments: template guidance is not content."""
    out, i = [], 0
    while True:
        j = text.find("<!--", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = text.find("-->", j + 4)
        if k < 0:
            return "".join(out)
        i = k + 3


@dataclass(slots=True)
class TimelineEntry:
    time: datetime | None
    event: str
    phase: str | None = None
    raw_time: str = ""


@dataclass(slots=True)
class ActionItem:
    id: str
    action: str
    owner: str | None = None
    due: date | None = None
    status: str = "open"
    kind: str | None = None
    ticket: str | None = None
    index: int = 0  # position in the front matter list, for spans

    def is_closed(self) -> bool:
        return self.status in ("done", "wont-do")

    def is_overdue(self, as_of: date) -> bool:
        return self.due is not None and self.due < as_of and not self.is_closed()


@dataclass(slots=True)
class Impact:
    users_affected: int | None = None
    revenue: float | None = None
    data_loss: str | None = None
    description: str | None = None


@dataclass(slots=True)
class Postmortem:
    """One postmortem, normalised. Fields are None when absent or invalid."""

    path: str  # as the user named it (relative when possible)
    rel_path: str  # posix path relative to the postmortems root (the page's src path)
    id: str | None = None
    title: str | None = None
    date: date | None = None
    severity: str | None = None
    status: str = "draft"
    authors: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    detection: str | None = None
    roles: dict[str, str] = field(default_factory=dict)
    times: dict[str, datetime] = field(default_factory=dict)
    duration_minutes: int | None = None
    impact: Impact = field(default_factory=Impact)
    timeline: list[TimelineEntry] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    problem: str | None = None
    visibility: str = "internal"
    sections: list[Section] = field(default_factory=list)
    body: str = ""  # the Markdown after the front matter, line ends normalised
    body_line: int = 1  # file line of the body's first line
    line_count: int = 0
    front_matter: dict[str, Any] = field(default_factory=dict)  # normalised raw mapping
    meta: Any = None  # page_meta.PageMeta for site generators, when asked for (Config.for_site)
    spans: dict[tuple, Span] = field(default_factory=dict)  # value spans by key path
    key_spans: dict[tuple, Span] = field(default_factory=dict)  # key spans by key path
    content_hash: str = ""
    suppressions: Any = None  # suppress.Suppressions, when the file has pmkb- comments
    fatal: bool = False  # front matter unusable: only file-level diagnostics apply

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def span_of(self, *path: Any, key: bool = False) -> Span:
        """The best span for a key path: the value, else the key, else the nearest parent."""
        table = self.key_spans if key else self.spans
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.key_spans:
                return self.key_spans[p]
            p = p[:-1]
        return Span(1, 1)

    def minutes_between(self, a: str, b: str) -> float | None:
        ta, tb = self.times.get(a), self.times.get(b)
        if ta is None or tb is None:
            return None
        return (tb - ta).total_seconds() / 60.0

    @property
    def people(self) -> set[str]:
        names = set(self.authors) | set(self.roles.values())
        names |= {a.owner for a in self.action_items if a.owner}
        return names
