"""The blameless template: which sections and fields a postmortem needs.

What is required depends on severity (config `required`); how loudly a gap is
reported depends on status (a draft gets warnings, a published one errors).
"""

from __future__ import annotations

from ..config import Config
from ..findings import Findings
from ..model import Postmortem, Span

ALWAYS = ("id", "title", "date", "severity")


def check_template(pm: Postmortem, f: Findings, cfg: Config) -> None:
    # id, title, date and severity are errors whatever the status, unless configured otherwise
    always_level = None if "missing-field" in cfg.rule_levels else "error"
    for name in ALWAYS:
        if name not in pm.front_matter or pm.front_matter[name] is None:
            f.add("missing-field", Span(1, 1, 1, 4), f"required field '{name}' is missing", _hint(name, cfg),
                  level=always_level)
    req = cfg.required.get(pm.severity or "")
    if req is None:
        return
    for fld in req.fields:
        if fld == "action_items":
            if not pm.action_items:
                f.add("missing-action-items", pm.span_of("action_items") if "action_items" in pm.front_matter else Span(1, 1, 1, 4),
                      f"{pm.severity} postmortems need at least one action item",
                      "add action_items with action, owner, due and kind")
            continue
        if fld in ALWAYS:
            continue
        if not _has(pm, fld):
            parent = fld.split(".")[0]
            span = pm.span_of(parent, key=True) if parent in pm.front_matter else Span(1, 1, 1, 4)
            f.add("missing-field", span, f"{pm.severity} postmortems need '{fld}'", _hint(fld, cfg))
    seen: dict[str, int] = {}
    for s in pm.sections:
        if s.known and s.name in seen:
            f.add("duplicate-section", Span(s.line, 1, s.line, len(s.heading) + 4),
                  f"section '{s.name}' appears twice (first on line {seen[s.name]})", "merge the two sections")
        seen.setdefault(s.name, s.line)
    end_line = max(1, min(pm.body_line, pm.line_count))  # a line that exists
    for name in req.sections:
        sec = pm.section(name)
        if sec is None:
            f.add("missing-section", Span(end_line, 1), f"{pm.severity} postmortems need a '## {name}' section",
                  f"add '## {name}' with {SECTION_PROMPTS.get(name, 'its content')}")
        elif sec.is_empty:
            f.add("empty-section", Span(sec.line, 1, sec.line, len(sec.heading) + 4),
                  f"section '{name}' is empty", f"write {SECTION_PROMPTS.get(name, 'its content')}")


SECTION_PROMPTS = {
    "Summary": "two or three sentences: what happened, for how long, to whom",
    "Impact": "who was affected and how (users, requests, revenue, data)",
    "Root Cause": "the conditions in the system that made the failure possible",
    "Contributing Factors": "what made it worse or longer (tooling, alerts, docs, load)",
    "What Went Well": "what helped: alerts that fired, tools that worked, help that came",
    "What Went Poorly": "where the system or process made the response harder",
    "Lessons Learned": "what the organisation now knows that it did not before",
}


def _has(pm: Postmortem, fld: str) -> bool:
    head, _, rest = fld.partition(".")
    if head == "times":
        return rest in pm.times if rest else bool(pm.times)
    if head == "roles":
        return rest in pm.roles if rest else bool(pm.roles)
    if head == "impact":
        return getattr(pm.impact, rest, None) is not None if rest else "impact" in pm.front_matter
    value = pm.front_matter.get(head)
    return value not in (None, "", [], {})


def _hint(fld: str, cfg: Config) -> str:
    examples = {
        "id": f"id: {cfg.id_prefix}-2024-001",
        "title": "title: One line that says what users saw",
        "date": "date: 2024-03-14",
        "severity": "severity: SEV2",
        "roles.incident_commander": "roles:\n  incident_commander: <name>",
    }
    if fld.startswith("times."):
        return f"times:\n  {fld[6:]}: \"HH:MM\""
    return examples.get(fld, f"add '{fld}'")
