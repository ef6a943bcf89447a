"""Rules across the whole knowledge base: unique IDs, `related` links that resolve."""

from __future__ import annotations

from collections import defaultdict

from ..findings import Findings
from ..model import Postmortem

# (rule, the key path of its span in the postmortem, message, suggestion)
Note = tuple[str, tuple, str, "str | None"]


def kb_facts(pm: Postmortem) -> tuple:
    """Everything the rules below read of a postmortem besides its spans: while every
    postmortem's facts (and path) are the same, so are the notes (see `kb_notes`)."""
    raw = pm.front_matter.get("related")
    return (pm.fatal, pm.id, tuple([(a.id, a.index) for a in pm.action_items if pm.id or not a.id.startswith("#")]),
            tuple(pm.related), isinstance(raw, list))


def add_notes(pm: Postmortem, notes, f: Findings) -> None:
    """`pm`'s notes (or those of an earlier version with the same path and facts) as findings,
    with `pm`'s spans."""
    for rule, where, message, suggestion in notes:
        f.add(rule, pm.span_of(*where), message, suggestion)


def kb_notes(pms: list[Postmortem]) -> dict[str, list[Note]]:
    """O(n): one pass to index IDs, one to check each postmortem against the index. Notes, not
    findings: a serve rebuild after an edit that left every postmortem's `kb_facts` as they were
    adds the edited file's notes again with its new spans (path -> notes in the order found)."""
    out: dict[str, list[Note]] = defaultdict(list)
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
                out[pm.path].append(("duplicate-id", ("id",), f"id {pid} is also used by {others}",
                                     "the next free id is shown by `pmkb new --dry-run`"))
    for aid, group in action_ids.items():
        if len(group) > 1:
            for pm, idx in group:
                where = ", ".join(sorted({p.path for p, _ in group}))
                out[pm.path].append(("duplicate-action-id", ("action_items", idx),
                                     f"action item id {aid} is used {len(group)} times ({where})", None))
    for pm in pms:
        raw = pm.front_matter.get("related")
        for i, rid in enumerate(pm.related):
            where = ("related", i) if isinstance(raw, list) else ("related",)
            if rid == pm.id:
                out[pm.path].append(("self-related", where, f"{rid} lists itself in related", None))
            elif rid not in by_id:
                out[pm.path].append(("unknown-related", where,
                                     f"related id {rid} is not a postmortem in the knowledge base", None))
    return out
