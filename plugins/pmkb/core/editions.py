"""Editions: who may read what.

- `restricted`: everything.
- `internal` (default): every postmortem but `visibility: restricted`, and no passage
  marked `<!-- pmkb:restricted --> ... <!-- pmkb:end -->`.
- `public`: only `visibility: public` postmortems, in the style of a status-page
  postmortem (summary, impact, timeline, what we are changing), with passages marked
  `<!-- pmkb:internal -->` or `pmkb:restricted`, revenue, people's names, owners and roles
  removed.

An edition is applied to the knowledge base before any page, export or metric is made,
so nothing excluded can leak into an index, a rollup, a backlink or the search index.
"""

from __future__ import annotations

import copy
import re

from .model import Postmortem

EDITIONS = ("public", "internal", "restricted")
DEFAULT_EDITION = "internal"
PUBLIC_SECTIONS = ("Summary", "Impact")
_MARKED = re.compile(r"<!--\s*pmkb:(internal|restricted)\s*-->.*?(?:<!--\s*pmkb:end\s*-->|\Z)", re.S | re.I)
_SECTION = re.compile(r"^##[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
NEUTRAL = "a responder"


def chosen_edition(cfg, requested: str | None = None) -> str:
    """The edition asked for, else the configured one, else the default: one rule for the site,
    `pmkb generate` and the CLI, so all three show the same postmortems."""
    return requested or cfg.options.get("edition") or DEFAULT_EDITION


def includes(pm: Postmortem, edition: str) -> bool:
    if edition == "restricted":
        return True
    if edition == "internal":
        return pm.visibility != "restricted"
    return pm.visibility == "public"


def strip_marked(text: str, edition: str) -> str:
    """Remove the passages this edition may not show (the markers go too)."""
    if edition == "restricted" or "pmkb:" not in text:
        return text

    def drop(m: re.Match) -> str:
        kind = m.group(1).lower()
        if edition == "internal" and kind == "internal":
            return m.group(0)
        return ""

    return _MARKED.sub(drop, text)


def public_body(markdown: str, people) -> str:
    """Summary and Impact only, names replaced: the status-page shape of a postmortem."""
    from .blame import find_names
    from .parse import canonical_section

    text = strip_marked(markdown, "public")
    heads = list(_SECTION.finditer(text))
    keep = []
    for i, m in enumerate(heads):
        name, _ = canonical_section(m.group(1))
        if name in PUBLIC_SECTIONS:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            keep.append(text[m.start():end].rstrip() + "\n")
    return redact_names("\n".join(keep), people, find_names)


def redact_names(text: str, people, find_names=None) -> str:
    if find_names is None:
        from .blame import find_names
    spans = find_names(text, people)
    for a, b, _ in sorted(spans, reverse=True):
        start = not text[:a].strip() or text[:a].rstrip()[-1:] in ".!?:\n-*"
        text = text[:a] + (NEUTRAL.capitalize() if start else NEUTRAL) + text[b:]
    return text


def public_view(pm: Postmortem, people) -> Postmortem:
    """A copy with what a public reader may see: no people, no revenue, no internal links."""
    v = rewrite_texts(pm, lambda text: redact_names(text, people))
    v.authors = []
    v.roles = {}
    v.impact.revenue = None
    for a in v.action_items:
        a.owner = None
        a.ticket = None  # trackers are internal
    v.front_matter = {k: val for k, val in pm.front_matter.items() if k not in ("authors", "roles")}
    return v


def rewrite_texts(pm: Postmortem, fn) -> Postmortem:
    """A copy whose title, impact description, timeline events and actions went through fn."""
    v = copy.copy(pm)
    v.title = fn(pm.title) if pm.title else pm.title
    v.impact = copy.copy(pm.impact)
    v.impact.description = fn(pm.impact.description) if pm.impact.description else pm.impact.description
    v.timeline = [copy.copy(e) for e in pm.timeline]
    for e in v.timeline:
        e.event = fn(e.event)
    v.action_items = [copy.copy(a) for a in pm.action_items]
    for a in v.action_items:
        a.action = fn(a.action)
    return v


_ID = re.compile(r"\b[A-Z][A-Z0-9]*-[A-Za-z0-9][A-Za-z0-9-]*\b")
WITHHELD = "another incident"


def redact_ids(text: str, excluded: set[str]) -> str:
    """Mentions of postmortems outside the edition become 'another incident'."""
    if not excluded or not text:
        return text
    return _ID.sub(lambda m: WITHHELD if m.group(0) in excluded else m.group(0), text)


def apply_edition(pms: list[Postmortem], edition: str, people) -> list[Postmortem]:
    """The postmortems of an edition: `related` links to excluded ones dropped, and mentions
    of excluded IDs in titles, impact, timeline and action items withheld."""
    chosen = list(pms) if edition == "restricted" else \
        [pm for pm in pms if pm.visibility != "restricted"] if edition == "internal" else \
        [pm for pm in pms if includes(pm, edition)]  # includes(), inline for the common editions
    if edition == "public":
        chosen = [public_view(pm, people) for pm in chosen]
    ids = {pm.id for pm in chosen if pm.id}
    excluded = {pm.id for pm in pms if pm.id and pm.id not in ids}
    out = []
    for pm in chosen:
        if (pm.related and not ids.issuperset(pm.related)) or \
                (excluded and any(_mentions(t, excluded) for t in _texts(pm))):
            pm = _withhold(pm, ids, excluded)
        out.append(pm)
    return out


def _texts(pm: Postmortem) -> list[str]:
    """The texts `_withhold` rewrites (made only when some ID is excluded)."""
    return [pm.title or "", pm.impact.description or ""] + [e.event for e in pm.timeline] + \
        [a.action for a in pm.action_items]


def _mentions(text: str, excluded: set[str]) -> bool:
    return any(m.group(0) in excluded for m in _ID.finditer(text))


def _withhold(pm: Postmortem, ids: set[str], excluded: set[str]) -> Postmortem:
    v = rewrite_texts(pm, lambda text: redact_ids(text, excluded))
    v.related = [r for r in pm.related if r in ids]
    return v


def check_public(pm: Postmortem, f, people, customers: tuple[str, ...]) -> None:
    """Warn where a public postmortem names people or customers outside marked passages."""
    if pm.visibility != "public" or not pm.body:
        return
    from .blame import find_names
    from .model import Span
    from .textmask import mask_markdown

    text = mask_markdown(_blank_marked(pm.body))
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(offset: int) -> tuple[int, int]:
        import bisect

        i = bisect.bisect_right(starts, offset) - 1
        return pm.body_line + i, offset - starts[i] + 1

    for a, b, name in find_names(text, people):
        (line, col), (eline, ecol) = at(a), at(b)
        f.add("public-names-person", Span(line, col, eline, ecol), f"public postmortem names '{name}'",
              "refer to the role, or mark the passage <!-- pmkb:internal --> ... <!-- pmkb:end -->")
    for customer in customers:
        for m in re.finditer(rf"(?<!\w){re.escape(customer)}(?!\w)", text, re.I):
            (line, col), (eline, ecol) = at(m.start()), at(m.end())
            f.add("public-names-customer", Span(line, col, eline, ecol), f"public postmortem names customer '{customer}'",
                  "describe the customer ('an enterprise customer'), or mark the passage internal")


def _blank_marked(text: str) -> str:
    return _MARKED.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
