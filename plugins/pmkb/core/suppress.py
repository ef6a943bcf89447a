"""Inline suppression comments, markdownlint/ruff style, that must name their rules.

    <!-- pmkb-disable-next-line blame-counterfactual -->
    <!-- pmkb-disable blame-judgement, PM604 --> ... <!-- pmkb-enable blame-judgement, PM604 -->
    <!-- pmkb-disable-file unknown-key -->
    # pmkb-disable-next-line unknown-key        (a YAML comment in front matter)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .model import Diagnostic, Span
from .rules.registry import REGISTRY

_COMMENT = re.compile(
    r"(?:<!--|#)\s*pmkb-(disable-next-line|disable-line|disable-file|disable|enable)\b(.*?)(?:-->|$)"
)


@dataclass
class Suppression:
    kind: str
    rules: tuple[str, ...]  # canonical rule names
    line: int  # where the comment is
    col: int
    first: int  # first line silenced
    last: int  # last line silenced
    used: set[str] = field(default_factory=set)


@dataclass
class Suppressions:
    items: list[Suppression] = field(default_factory=list)
    problems: list[tuple[str, Span, str]] = field(default_factory=list)  # (rule, span, message)

    def silences(self, d: Diagnostic) -> bool:
        for s in self.items:
            if d.rule in s.rules and s.first <= d.span.line <= s.last:
                s.used.add(d.rule)
                return True
        return False


def parse_suppressions(lines: list[str]) -> Suppressions:
    out = Suppressions()
    open_blocks: dict[str, Suppression] = {}
    n = len(lines)
    for i, line in enumerate(lines):
        if "pmkb-" not in line:
            continue
        for m in _COMMENT.finditer(line):
            kind, names = m.group(1), m.group(2)
            lineno, col = i + 1, m.start() + 1
            span = Span(lineno, col, lineno, m.end() + 1)
            rules = []
            for raw in re.split(r"[,\s]+", names.strip()):
                if not raw:
                    continue
                rule = REGISTRY.get(raw)
                if rule is None:
                    out.problems.append(("unknown-rule", span, f"pmkb-{kind} names unknown rule '{raw}'"))
                else:
                    rules.append(rule.name)
            if not rules and not names.strip():
                out.problems.append(("unknown-rule", span, f"pmkb-{kind} must name the rules it silences"))
                continue
            if kind == "enable":
                for r in rules:
                    blk = open_blocks.pop(r, None)
                    if blk:
                        blk.last = lineno
                continue
            if kind == "disable-next-line":
                first = last = lineno + 1
            elif kind == "disable-line":
                first = last = lineno
            elif kind == "disable-file":
                first, last = 1, n
            else:
                first, last = lineno, n
            s = Suppression(kind, tuple(rules), lineno, col, first, last)
            out.items.append(s)
            if kind == "disable":
                for r in rules:
                    open_blocks[r] = s
    return out


def apply_suppressions(diags: list[Diagnostic], sup: Suppressions, path: str, findings) -> list[Diagnostic]:
    """Drop silenced diagnostics; report comments that name unknown rules or silence nothing.
    What is used is worked out afresh: a kept postmortem (serve, the results cache) is checked
    again when other files change what it is told."""
    for s in sup.items:
        s.used.clear()
    kept = [d for d in diags if not sup.silences(d)]
    for rule, span, msg in sup.problems:
        findings.add(rule, span, msg, "use a rule code or name from `pmkb rules`")
    for s in sup.items:
        unused = [r for r in s.rules if r not in s.used]
        for r in unused:
            findings.add("unused-suppression", Span(s.line, s.col), f"pmkb-{s.kind} {r} silences nothing here",
                         "remove the comment")
    return kept
