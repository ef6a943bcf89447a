"""Action-item rules that need the whole postmortem (kinds, completeness, overdue)."""

from __future__ import annotations

from datetime import date

from ..config import Config
from ..findings import Findings
from ..model import Postmortem

MAJOR = ("SEV1", "SEV2")


def check_actions(pm: Postmortem, f: Findings, cfg: Config, as_of: date) -> None:
    items = pm.action_items
    if pm.severity in _prevent_severities(cfg) and items and not any(a.kind == "prevent" for a in items):
        f.add("missing-prevent-action", pm.span_of("action_items", key=True),
              f"{pm.severity} postmortem has no action item of kind 'prevent'",
              "add an item that removes the cause, with kind: prevent")
    for a in items:
        if pm.status == "published" and a.owner and a.due is None:
            f.add("action-item-incomplete", pm.span_of("action_items", a.index), f"action item {a.id} has no due date",
                  "add due: YYYY-MM-DD so the item can be tracked")
        if a.is_overdue(as_of):
            days = (as_of - a.due).days
            f.add("action-item-overdue", pm.span_of("action_items", a.index, "due"),
                  f"action item {a.id} ({a.owner or 'no owner'}) is {days} day{'s' * (days != 1)} overdue (due {a.due})",
                  "finish it, move the due date, or mark it wont-do with a reason",
                  level=overdue_level(pm, days, f, cfg))


def _prevent_severities(cfg: Config) -> tuple[str, ...]:
    names = cfg.severity_names()
    return tuple(names[:2]) if len(names) >= 2 else tuple(names)


def overdue_level(pm: Postmortem, days: int, f: Findings, cfg: Config) -> str | None:
    """Notice by default; `overdue_policy` rules ({severities, days, level}) can raise it."""
    level = f.level("action-item-overdue")
    if level is None:
        return None
    rank = {"notice": 0, "warning": 1, "error": 2}
    for rule in cfg.options.get("overdue_policy") or []:
        sevs = rule.get("severities") or cfg.severity_names()
        if pm.severity in sevs and days > int(rule.get("days", 0)) and rank[rule["level"]] > rank[level]:
            level = rule["level"]
    return level
