"""Rules across the whole knowledge base: unique IDs, `related` links that resolve."""

from __future__ import annotations

from collections import defaultdict

from ..config import Config
from ..findings import Findings
from ..model import Postmortem


def check_knowledge_base(pms: list[Postmortem], findings: dict[str, Findings], cfg: Config) -> None:
    """O(n): one pass to index IDs, one to check each postmortem against the index."""
    by_id: dict[str, list[Postmortem]] = defaultdict(list)
    action_ids: dict[str, list[tuple[Postmortem, int]]] = defaultdict(list)
    for pm in pms:
        if pm.id:
            by_id[pm.id].append(pm)
        for a in pm.action_items:
            if pm.id or not a.id.startswith("#"):
                action_ids[a.id].append((pm, a.index))
    for pid, group in by_id.items():
        if len(group) > 1:
            paths = sorted(p.path for p in group)
            for pm in group:
                others = ", ".join(p for p in paths if p != pm.path)
                findings[pm.path].add("duplicate-id", pm.span_of("id"), f"id {pid} is also used by {others}",
                                      "the next free id is shown by `pmkb new --dry-run`")
    for aid, group in action_ids.items():
        if len(group) > 1:
            for pm, idx in group:
                where = ", ".join(sorted({p.path for p, _ in group}))
                findings[pm.path].add("duplicate-action-id", pm.span_of("action_items", idx),
                                      f"action item id {aid} is used {len(group)} times ({where})")
    for pm in pms:
        raw = pm.front_matter.get("related")
        for i, rid in enumerate(pm.related):
            span = pm.span_of("related", i) if isinstance(raw, list) else pm.span_of("related")
            if rid == pm.id:
                findings[pm.path].add("self-related", span, f"{rid} lists itself in related")
            elif rid not in by_id:
                findings[pm.path].add("unknown-related", span, f"related id {rid} is not a postmortem in the knowledge base")
