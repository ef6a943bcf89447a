"""Action items across the knowledge base: one row per item, with what rollups need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .model import ActionItem, Postmortem


@dataclass(frozen=True)
class ActionRow:
    postmortem: Postmortem
    item: ActionItem
    overdue: bool
    days_overdue: int

    @property
    def severity(self) -> str:
        return self.postmortem.severity or ""

    def as_dict(self) -> dict:
        a, pm = self.item, self.postmortem
        return {
            "postmortem_id": pm.id, "id": a.id, "action": a.action, "owner": a.owner,
            "due": a.due.isoformat() if a.due else None, "status": a.status, "kind": a.kind,
            "ticket": a.ticket, "overdue": self.overdue, "days_overdue": self.days_overdue,
            "severity": pm.severity, "services": list(pm.services),
        }


CSV_COLUMNS = ["postmortem_id", "id", "action", "owner", "due", "status", "kind", "ticket", "overdue",
               "severity", "services"]


def action_rows(pms: list[Postmortem], as_of: date) -> list[ActionRow]:
    """Sorted by postmortem id, then the items' order in the file."""
    rows = []
    for pm in sorted(pms, key=lambda p: p.id or ""):
        for a in pm.action_items:
            over = a.is_overdue(as_of)
            rows.append(ActionRow(pm, a, over, (as_of - a.due).days if over else 0))
    return rows


def select(rows: list[ActionRow], *, owner: str | None = None, service: str | None = None,
           overdue: bool = False, status: tuple[str, ...] | None = None) -> list[ActionRow]:
    out = []
    for r in rows:
        if owner and (r.item.owner or "").casefold() != owner.casefold():
            continue
        if service and service not in r.postmortem.services:
            continue
        if overdue and not r.overdue:
            continue
        if status and r.item.status not in status:
            continue
        out.append(r)
    return out


def csv_text(rows: list[ActionRow]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        d = r.as_dict()
        d["overdue"] = "true" if r.overdue else "false"
        d["services"] = ";".join(d["services"])
        w.writerow(["" if d[c] is None else d[c] for c in CSV_COLUMNS])
    return buf.getvalue()
