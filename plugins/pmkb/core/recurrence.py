"""Recurring problems: incidents grouped by `problem`, and possible recurrences nobody linked.

A possible recurrence is two incidents on the same service, with at least one
tag in common, starting within `recurrence_window_days` of each other, that share
neither a `problem` nor a `related` link. Each incident is paired with the latest
such earlier incident on each of its services, so the list grows with the number
of incidents, not with the square of how many fall in one window. Per service the
incidents are sorted once and scanned backwards only inside the window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .config import Config
from .metrics import incident_start
from .model import Postmortem


@dataclass(frozen=True)
class Recurrence:
    service: str
    first: Postmortem
    second: Postmortem
    shared_tags: tuple[str, ...]
    days_apart: float


def problems(pms: list[Postmortem]) -> dict[str, list[Postmortem]]:
    groups: dict[str, list[Postmortem]] = defaultdict(list)
    for pm in pms:
        if pm.problem:
            groups[pm.problem].append(pm)
    return {k: sorted(v, key=lambda p: (p.date, p.id or "")) for k, v in sorted(groups.items())}


def _linked(a: Postmortem, b: Postmortem) -> bool:
    if a.problem and a.problem == b.problem:
        return True
    return (b.id in a.related) or (a.id in b.related)


def possible_recurrences(pms: list[Postmortem], cfg: Config) -> list[Recurrence]:
    window = float(cfg.options.get("recurrence_window_days") or 90) * 1440
    by_service: dict[str, list[tuple]] = defaultdict(list)
    for pm in pms:
        start = incident_start(pm, cfg)
        if start is None or not pm.tags:
            continue
        for s in pm.services:
            by_service[s].append((start, pm.id or "", pm))
    seen: set[tuple[str, str]] = set()
    out = []
    for service in sorted(by_service):
        items = sorted(by_service[service], key=lambda t: (t[0], t[1]))
        lo = 0
        for hi in range(len(items)):
            while (items[hi][0] - items[lo][0]).total_seconds() / 60 > window:
                lo += 1
            b = items[hi][2]
            tags = set(b.tags)
            for j in range(hi - 1, lo - 1, -1):  # the latest earlier match only
                a = items[j][2]
                shared = tuple(sorted(tags.intersection(a.tags)))
                if not shared or _linked(a, b):
                    continue
                key = (a.id or a.path, b.id or b.path)
                if key not in seen:
                    seen.add(key)
                    days = round((items[hi][0] - items[j][0]).total_seconds() / 86400, 1)
                    out.append(Recurrence(service, a, b, shared, days))
                break
    return out
