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
