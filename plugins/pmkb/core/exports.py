"""Data exports with a stable shape: postmortems.json and action-items.csv.

postmortems.json: {"as_of": "YYYY-MM-DD", "postmortems": [ one object per postmortem:
  id, title, date, severity, status, visibility, authors, services, tags, detection, roles,
  times (ISO-8601), duration_minutes, impact, timeline, action_items (with overdue), related,
  problem, url, source, metrics {ttd_minutes, tta_minutes, ttm_minutes, ttr_minutes,
  response_target_met, resolve_target_met} ]}
"""

from __future__ import annotations

import json
from datetime import date

from .config import Config
from .metrics import postmortem_metrics
from .model import Postmortem


def postmortem_record(pm: Postmortem, cfg: Config, as_of: date, url: str) -> dict:
    m = postmortem_metrics(pm, cfg)
    return {
        "id": pm.id, "title": pm.title, "date": pm.date.isoformat() if pm.date else None,
        "severity": pm.severity, "status": pm.status, "visibility": pm.visibility,
        "authors": pm.authors, "services": pm.services, "tags": pm.tags, "detection": pm.detection,
        "roles": dict(pm.roles), "times": {k: v.isoformat() for k, v in pm.times.items()},
        "duration_minutes": pm.duration_minutes if pm.duration_minutes is not None else
        (round(m.ttr) if m.ttr is not None else None),
        "impact": {"users_affected": pm.impact.users_affected, "revenue": pm.impact.revenue,
                   "data_loss": pm.impact.data_loss, "description": pm.impact.description},
        "timeline": [{"time": e.time.isoformat() if e.time else None, "event": e.event, "phase": e.phase}
                     for e in pm.timeline],
        "action_items": [{"id": a.id, "action": a.action, "owner": a.owner,
                          "due": a.due.isoformat() if a.due else None, "status": a.status, "kind": a.kind,
                          "ticket": a.ticket, "overdue": a.is_overdue(as_of)} for a in pm.action_items],
        "related": pm.related, "problem": pm.problem, "url": url, "source": pm.rel_path,
        "metrics": {"ttd_minutes": m.ttd, "tta_minutes": m.tta, "ttm_minutes": m.ttm, "ttr_minutes": m.ttr,
                    "response_target_met": m.response_met, "resolve_target_met": m.resolve_met},
    }


def postmortems_json(pms: list[Postmortem], cfg: Config, as_of: date, url_of, memo=None) -> str:
    """`memo(key, make)` may return a record's JSON kept from an earlier call (serve rebuilds)."""
    parts = []
    for pm in sorted(pms, key=lambda p: p.id or ""):
        url = url_of(pm)
        make = lambda: _compact(postmortem_record(pm, cfg, as_of, url))  # noqa: B023,E731 - called at once
        parts.append(memo((pm.path, pm.content_hash, url), make) if memo else make())
    return '{"as_of":' + _compact(as_of.isoformat()) + ',"postmortems":[' + ",".join(parts) + "]}\n"


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
