"""Incident metrics: pure functions over postmortems (no I/O, no MkDocs).

Definitions (minutes):
  time to detect      = detected     - started
  time to acknowledge = acknowledged - detected
  time to mitigate    = mitigated    - started
  time to resolve     = resolved     - started
Response target met: time to acknowledge <= the severity's response target.
Resolve target met:  time to resolve     <= the severity's resolve target.
A target that cannot be measured ("next sprint") or a missing time gives None.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config
from .model import Postmortem

SPANS = {
    "ttd": ("started", "detected"),
    "tta": ("detected", "acknowledged"),
    "ttm": ("started", "mitigated"),
    "ttr": ("started", "resolved"),
}
LABELS = {"ttd": "Time to detect", "tta": "Time to acknowledge", "ttm": "Time to mitigate", "ttr": "Time to resolve"}


@dataclass(frozen=True)
class PostmortemMetrics:
    ttd: float | None
    tta: float | None
    ttm: float | None
    ttr: float | None
    response_met: bool | None
    resolve_met: bool | None
    response_target: float | None
    resolve_target: float | None

    def get(self, key: str) -> float | None:
        return getattr(self, key)


def postmortem_metrics(pm: Postmortem, cfg: Config) -> PostmortemMetrics:
    values = {k: pm.minutes_between(a, b) for k, (a, b) in SPANS.items()}
    sev = cfg.severity(pm.severity)
    resp = sev.response_target if sev else None
    reso = sev.resolve_target if sev else None
    return PostmortemMetrics(
        **values,
        response_met=None if resp is None or values["tta"] is None else values["tta"] <= resp,
        resolve_met=None if reso is None or values["ttr"] is None else values["ttr"] <= reso,
        response_target=resp,
        resolve_target=reso,
    )


# ---- aggregates ---------------------------------------------------------------------
MEASURES = ("mttd", "mtta", "mttm", "mttr")
_MEASURE_OF = {"mttd": "ttd", "mtta": "tta", "mttm": "ttm", "mttr": "ttr"}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    n = len(s)
    mid = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return round(mid, 1)


def group_stats(pms: list[Postmortem], cfg: Config, known: dict | None = None) -> dict:
    """count, mean and median of each measure, how many were left out, target compliance.
    `known`: each postmortem's metrics by id(), when the caller groups the same ones many ways."""
    out: dict = {"count": len(pms)}
    ms = [known[id(pm)] for pm in pms] if known is not None else [postmortem_metrics(pm, cfg) for pm in pms]
    left_out = {}
    for key in MEASURES:
        values = [v for v in (m.get(_MEASURE_OF[key]) for m in ms) if v is not None]
        out[f"{key}_minutes"] = _mean(values)
        left_out[key] = len(ms) - len(values)
    for key in MEASURES:
        values = [v for v in (m.get(_MEASURE_OF[key]) for m in ms) if v is not None]
        out[f"median_{key}_minutes"] = _median(values)
    out["left_out"] = left_out
    for name, attr in (("response_target_met", "response_met"), ("resolve_target_met", "resolve_met")):
        measured = [getattr(m, attr) for m in ms if getattr(m, attr) is not None]
        out[name] = {"met": sum(1 for x in measured if x), "measured": len(measured)}
    return out


def incident_start(pm: Postmortem, cfg: Config):
    """When an incident started: times.started, else midnight of its date in the configured zone."""
    from datetime import datetime, time

    if "started" in pm.times:
        return pm.times["started"]
    return datetime.combine(pm.date, time(0, 0), tzinfo=cfg.tz) if pm.date else None


def mtbf_minutes(pms: list[Postmortem], cfg: Config) -> float | None:
    starts = sorted(s for s in (incident_start(pm, cfg) for pm in pms) if s is not None)
    if len(starts) < 2:
        return None
    gaps = [(b - a).total_seconds() / 60 for a, b in zip(starts, starts[1:])]
    return round(sum(gaps) / len(gaps), 1)


def quarter(pm: Postmortem) -> str | None:
    return f"{pm.date.year}-Q{(pm.date.month - 1) // 3 + 1}" if pm.date else None


def stats(pms: list[Postmortem], cfg: Config, as_of) -> dict:
    """Everything `pmkb stats --format json` prints; the metrics page shows the same."""
    from collections import defaultdict

    by_sev: dict[str, list] = {name: [] for name in cfg.severity_names()}
    by_service: dict[str, list] = defaultdict(list)
    by_quarter: dict[str, list] = defaultdict(list)
    per_month: dict[str, dict[str, int]] = {}
    for pm in pms:
        if pm.severity:
            by_sev.setdefault(pm.severity, []).append(pm)
        for s in pm.services:
            by_service[s].append(pm)
        q = quarter(pm)
        if q:
            by_quarter[q].append(pm)
        if pm.date:
            month = per_month.setdefault(f"{pm.date:%Y-%m}", {name: 0 for name in cfg.severity_names()})
            if pm.severity:
                month[pm.severity] = month.get(pm.severity, 0) + 1
    known = {id(pm): postmortem_metrics(pm, cfg) for pm in pms}
    services = {}
    for name in sorted(by_service):
        entry = group_stats(by_service[name], cfg, known)
        entry["mtbf_minutes"] = mtbf_minutes(by_service[name], cfg)
        services[name] = entry
    return {
        "as_of": as_of.isoformat(),
        "postmortems": len(pms),
        "by_severity": {k: group_stats(v, cfg, known) for k, v in by_sev.items()},
        "by_service": services,
        "by_quarter": {k: group_stats(by_quarter[k], cfg, known) for k in sorted(by_quarter)},
        "incidents_per_month": {k: per_month[k] for k in sorted(per_month)},
        "action_items": action_counts(pms, as_of),
    }


def action_counts(pms: list[Postmortem], as_of) -> dict:
    counts = {"open": 0, "in_progress": 0, "done": 0, "wont_do": 0, "overdue": 0}
    for pm in pms:
        for a in pm.action_items:
            counts[a.status.replace("-", "_")] += 1
            counts["overdue"] += a.is_overdue(as_of)
    return counts
