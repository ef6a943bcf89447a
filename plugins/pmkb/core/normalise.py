"""Front matter -> model fields, reporting every value that does not fit its type.

Aliases are accepted and normalised (P2 -> SEV2, `Incident-Commander` ->
`incident_commander`, a single service -> a list). Invalid values are reported and
left as None so later rules work on what is valid.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from functools import lru_cache

from .config import KNOWN_FIELDS, Config
from .durations import parse_date, parse_duration, parse_time
from .findings import Findings
from .model import (
    ACTION_KINDS,
    ACTION_STATUSES,
    DETECTIONS,
    PHASES,
    ROLE_KEYS,
    STATUSES,
    TIME_KEYS,
    ActionItem,
    Impact,
    Postmortem,
    TimelineEntry,
)

ID_RE = re.compile(r"^[A-Z][A-Z0-9]*-[A-Za-z0-9][A-Za-z0-9-]*$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s<>\"']*$", re.IGNORECASE)

KEY_ALIASES = {
    "author": "authors", "service": "services", "tag": "tags", "actions": "action_items",
    "action_item": "action_items", "related_incidents": "related", "severity_level": "severity",
}
ROLE_ALIASES = {"ic": "incident_commander", "commander": "incident_commander", "lead": "tech_lead",
                "comms": "comms_lead", "communications_lead": "comms_lead", "note_taker": "scribe"}
TIME_ALIASES = {"start": "started", "begin": "started", "began": "started", "detect": "detected",
                "ack": "acknowledged", "acked": "acknowledged", "acknowledge": "acknowledged",
                "mitigate": "mitigated", "resolve": "resolved", "end": "resolved", "ended": "resolved"}
STATUS_ALIASES = {"review": "in-review", "in_review": "in-review", "inreview": "in-review", "final": "published"}
ACTION_STATUS_ALIASES = {"in_progress": "in-progress", "inprogress": "in-progress", "doing": "in-progress",
                         "closed": "done", "complete": "done", "completed": "done", "wont_do": "wont-do",
                         "won't do": "wont-do", "wontdo": "wont-do", "todo": "open"}


@lru_cache(maxsize=4096)  # the same few keys, in every postmortem
def _key(k: str) -> str:
    return k.strip().lower().replace("-", "_").replace(" ", "_")


def _as_written(known, aliases: dict[str, str]) -> frozenset[str]:
    """The canonical keys that are their own spelling (`time`, not `Time` or `at`)."""
    return frozenset(k for k in known if aliases.get(_key(k), _key(k)) == k)


def _mapping_keys(raw: dict, aliases: dict[str, str], plain: frozenset[str],
                  collisions: list | None = None) -> dict[str, tuple[str, object]]:
    """canonical key -> (key as written, value); the first spelling wins, later ones are collisions.

    `plain` is _as_written(known keys, aliases): a mapping written with those alone, the usual
    case, needs no key-by-key work."""
    if raw.keys() <= plain:
        return {k: (k, v) for k, v in raw.items()}
    out = {}
    for k, v in raw.items():
        c = _key(k)
        c = aliases.get(c, c)
        if c in out:
            if collisions is not None:
                collisions.append((k, out[c][0], c))
            continue
        out[c] = (k, v)
    return out


_FIELDS_PLAIN = _as_written(KNOWN_FIELDS, KEY_ALIASES)
_ROLES_PLAIN = _as_written(ROLE_KEYS, ROLE_ALIASES)
_TIMES_PLAIN = _as_written(TIME_KEYS, TIME_ALIASES)


def _fields(raw: dict, aliases: dict[str, str], plain: frozenset[str], known, f: Findings, pm: Postmortem,
            path: tuple) -> tuple[dict, dict]:
    """(canonical key -> value, canonical key -> key as written) of an entry at `path`, reporting
    keys that are not `known`. An entry written with canonical keys alone is its own answer."""
    if raw.keys() <= plain:
        return raw, _AS_WRITTEN
    keys = _mapping_keys(raw, aliases, plain)
    for c, (written, _) in keys.items():
        if c not in known:
            _unknown(f, pm, (*path, written), written, known)
    return {c: v for c, (_, v) in keys.items()}, {c: w for c, (w, _) in keys.items()}


def _unknown(f: Findings, pm: Postmortem, path: tuple, written: str, known) -> None:
    close = difflib.get_close_matches(_key(written), sorted(known), n=1, cutoff=0.75)
    where = ".".join(map(str, path[:-1]))
    label = f"{where}.{written}" if where else written
    f.add("unknown-key", pm.span_of(*path, key=True), f"unknown key '{label}'",
          f"did you mean '{close[0]}'?" if close else "remove it, or check the format reference")


def _text(v) -> str | None:
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return None


def _person(v) -> str | None:
    return _text(v)


def normalise(pm: Postmortem, raw: dict, f: Findings, cfg: Config) -> None:
    collisions: list = []
    fm = _mapping_keys(raw, KEY_ALIASES, _FIELDS_PLAIN, collisions)
    for written, first, canonical in collisions:
        f.add("duplicate-key", pm.span_of(written, key=True),
              f"'{written}' and '{first}' both set '{canonical}'; only '{first}' is used", "keep one of them")
    pm.front_matter = {c: v for c, (_, v) in fm.items()}
    written = {c: k for c, (k, _) in fm.items()}

    def sp(*path):
        p = list(path)
        if p and p[0] in written:
            p[0] = written[p[0]]
        return pm.span_of(*p)

    # status first: the level of template rules depends on it
    status = fm.get("status", (None, None))[1]
    if status is not None:
        s = STATUS_ALIASES.get(str(status).strip().lower(), str(status).strip().lower())
        if s in STATUSES:
            pm.status = s
        else:
            f.add("invalid-value", sp("status"), f"status {status!r} is not one of {', '.join(STATUSES)}",
                  "use draft, in-review or published")
    f.status = pm.status

    for c, (k, _) in fm.items():
        if c not in KNOWN_FIELDS:
            _unknown(f, pm, (k,), k, KNOWN_FIELDS)

    # id
    v = fm.get("id", (None, None))[1]
    if v is not None:
        t = _text(v)
        if t and ID_RE.match(t):
            pm.id = t
        else:
            f.add("invalid-id", sp("id"), f"id {v!r} does not match PREFIX-NUMBER (e.g. {cfg.id_prefix}-2024-001)",
                  "use upper-case letters for the prefix, then '-', then letters, digits and dashes")
    # title
    v = fm.get("title", (None, None))[1]
    if v is not None:
        t = _text(v)
        if t is None:
            f.add("invalid-type", sp("title"), "title must be text")
        elif "\n" in t:
            f.add("multiline-title", sp("title"), "title spans several lines", "keep the title to one line")
            pm.title = " ".join(t.split())
        else:
            pm.title = t
    # date
    v = fm.get("date", (None, None))[1]
    if v is not None:
        d = parse_date(v)
        if d is None:
            f.add("invalid-date", sp("date"), f"date {v!r} is not a real YYYY-MM-DD date")
        else:
            pm.date = d
    # severity
    v = fm.get("severity", (None, None))[1]
    if v is not None:
        s = cfg.canonical_severity(str(v))
        if s is None:
            f.add("invalid-severity", sp("severity"), f"severity {v!r} is not one of {', '.join(cfg.severity_names())}",
                  "use SEV1 (most severe) to SEV4, or an alias like P2")
        else:
            pm.severity = s
    # lists of text
    for name in ("authors", "services", "tags", "related"):
        v = fm.get(name, (None, None))[1]
        if v is None:
            continue
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list):
            f.add("invalid-type", sp(name), f"{name} must be a list")
            continue
        good, at = [], []
        for i, item in enumerate(items):
            t = _text(item)
            if t is None:
                f.add("invalid-type", sp(name, i) if isinstance(v, list) else sp(name), f"{name} entries must be text")
            elif t not in good:
                good.append(t)
                at.append(i)
        setattr(pm, name, good)
        if name == "related" and isinstance(v, list) and len(at) < len(items):
            # knowledge-base notes name an entry by its place in pm.related, which leaves out
            # repeats and entries that are not text: file each entry's span at that place
            k = written.get(name, name)
            for j, i in enumerate(at):  # i >= j: a place is refiled only after it was read
                _file_span(pm.spans, (k, i), (k, j))
    # detection
    v = fm.get("detection", (None, None))[1]
    if v is not None:
        t = (_text(v) or "").lower()
        if t in DETECTIONS:
            pm.detection = t
        else:
            f.add("invalid-value", sp("detection"), f"detection {v!r} is not one of {', '.join(DETECTIONS)}")
    # problem / visibility
    v = fm.get("problem", (None, None))[1]
    if v is not None:
        t = _text(v)
        if t is None or "\n" in t:
            f.add("invalid-type", sp("problem"), "problem must be a one-line identifier")
        else:
            pm.problem = t
    v = fm.get("visibility", (None, None))[1]
    if v is not None:
        t = (_text(v) or "").lower()
        if t in ("public", "internal", "restricted"):
            pm.visibility = t
        else:
            f.add("invalid-value", sp("visibility"), f"visibility {v!r} is not one of public, internal, restricted")
    _roles(pm, fm, f, sp)
    _times(pm, fm, f, cfg, sp)
    _duration(pm, fm, f, sp)
    _impact(pm, fm, f, sp)
    _timeline(pm, fm, f, cfg, sp)
    _action_items(pm, fm, f, sp)
    _canonical_spans(pm, written)


def _container(fm, name: str, typ: type, f, sp, message: str):
    """(key as written, value) of a mapping or list field; None when absent or of the wrong type."""
    entry = fm.get(name)
    if entry is None or entry[1] is None:
        return None
    if not isinstance(entry[1], typ):
        f.add("invalid-type", sp(name), message)
        return None
    return entry


def _roles(pm, fm, f, sp):
    entry = _container(fm, "roles", dict, f, sp, "roles must map role names to people (incident_commander: ...)")
    if entry is None:
        return
    k, v = entry
    for rk, (written, person) in _mapping_keys(v, ROLE_ALIASES, _ROLES_PLAIN).items():
        if rk not in ROLE_KEYS:
            _unknown(f, pm, (k, written), written, ROLE_KEYS)
            continue
        p = _person(person)
        if p is None:
            if person is not None:
                f.add("invalid-type", pm.span_of(k, written), f"roles.{rk} must be a person's name")
            continue
        pm.roles[rk] = p


def _times(pm, fm, f, cfg, sp):
    entry = _container(fm, "times", dict, f, sp,
                       "times must be a mapping of started, detected, acknowledged, mitigated, resolved")
    if entry is None:
        return
    k, v = entry
    tz = cfg.tz
    written_of = {}
    for tk, (written, raw) in _mapping_keys(v, TIME_ALIASES, _TIMES_PLAIN).items():
        if tk not in TIME_KEYS:
            _unknown(f, pm, (k, written), written, TIME_KEYS)
            continue
        if raw is None:
            continue
        written_of[tk] = written
        dt = parse_time(str(raw), pm.date, tz) if isinstance(raw, str) else None
        if dt is None:
            hint = "add the incident `date` so HH:MM has a day" if isinstance(raw, str) and pm.date is None and ":" in raw else \
                "use \"HH:MM\" (quoted) or a full timestamp like 2024-03-14T14:02:00Z"
            f.add("invalid-time", pm.span_of(k, written), f"times.{tk} {raw!r} is not a time", hint)
            continue
        pm.times[tk] = dt
    prev = None
    for tk in TIME_KEYS:
        if tk not in pm.times:
            continue
        if prev is not None and pm.times[tk] < pm.times[prev]:
            f.add("times-out-of-order", pm.span_of(k, written_of[tk]),
                  f"times.{tk} ({pm.times[tk]:%Y-%m-%d %H:%M}) is before times.{prev} ({pm.times[prev]:%Y-%m-%d %H:%M})",
                  "times run started <= detected <= acknowledged <= mitigated <= resolved; "
                  "use a full timestamp for times after midnight")
        prev = tk


def _duration(pm, fm, f, sp):
    entry = fm.get("duration")
    if entry is None or entry[1] is None:
        return
    v = entry[1]
    minutes = parse_duration(v) if isinstance(v, str) else None
    if minutes is None:
        f.add("invalid-duration", sp("duration"), f"duration {v!r} is not like '25m', '2h 34m' or '1h'")
        return
    pm.duration_minutes = round(minutes)
    actual = pm.minutes_between("started", "resolved")
    if actual is not None and abs(actual - minutes) > 1:
        from .durations import format_minutes

        f.add("duration-mismatch", sp("duration"),
              f"duration {v} disagrees with resolved - started ({format_minutes(actual)})",
              f"set duration: {format_minutes(actual)} or correct the times")


_IMPACT_KEYS = ("users_affected", "revenue", "data_loss", "description")
_IMPACT_PLAIN = _as_written(_IMPACT_KEYS, {})


def _impact(pm, fm, f, sp):
    entry = _container(fm, "impact", dict, f, sp,
                       "impact must be a mapping (users_affected, revenue, data_loss, description)")
    if entry is None:
        return
    k, v = entry
    known = _IMPACT_KEYS
    imp = Impact()
    for ik, (written, raw) in _mapping_keys(v, {}, _IMPACT_PLAIN).items():
        if ik not in known:
            _unknown(f, pm, (k, written), written, known)
        elif raw is None:
            continue
        elif ik == "users_affected":
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
                imp.users_affected = raw
            else:
                f.add("invalid-type", pm.span_of(k, written), f"impact.users_affected {raw!r} must be a whole number", "e.g. users_affected: 18250")
        elif ik == "revenue":
            if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw >= 0:
                imp.revenue = float(raw)
            else:
                f.add("invalid-type", pm.span_of(k, written), f"impact.revenue {raw!r} must be a number", "e.g. revenue: 42000")
        else:
            t = _text(raw)
            if t is None:
                f.add("invalid-type", pm.span_of(k, written), f"impact.{ik} must be text")
            else:
                setattr(imp, ik, t)
    pm.impact = imp


_TIMELINE_KEYS = ("time", "event", "phase")
_TIMELINE_ALIASES = {"description": "event", "at": "time"}
_TIMELINE_PLAIN = _as_written(_TIMELINE_KEYS, _TIMELINE_ALIASES)


def _timeline(pm, fm, f, cfg, sp):
    entry = _container(fm, "timeline", list, f, sp, "timeline must be a list of {time, event}")
    if entry is None:
        return
    k, v = entry
    last = None
    day, tz, timeline = pm.date, cfg.tz, pm.timeline
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            f.add("invalid-timeline-entry", pm.span_of(k, i), "each timeline entry needs 'time' and 'event'")
            continue
        vals, written = _fields(item, _TIMELINE_ALIASES, _TIMELINE_PLAIN, _TIMELINE_KEYS, f, pm, (k, i))
        raw_time = vals.get("time")
        event = _text(vals.get("event"))
        if raw_time is None or event is None:
            missing = "time" if raw_time is None else "event"
            f.add("invalid-timeline-entry", pm.span_of(k, i), f"timeline entry {i + 1} has no {missing}")
        dt = None
        if raw_time is not None:
            dt = parse_time(raw_time, day, tz) if isinstance(raw_time, str) else None
            if dt is None:
                f.add("invalid-time", pm.span_of(k, i, written["time"]), f"timeline time {raw_time!r} is not a time",
                      "use \"HH:MM\" (quoted) or a full timestamp")
        phase = vals.get("phase")
        if phase is not None:
            p = str(phase).strip().lower()
            if p not in PHASES:
                f.add("invalid-value", pm.span_of(k, i, written["phase"]), f"phase {phase!r} is not one of {', '.join(PHASES)}")
                phase = None
            else:
                phase = p
        if dt is not None:
            if last is not None and dt < last:
                f.add("timeline-out-of-order", pm.span_of(k, i, written["time"]),
                      f"timeline entry {i + 1} ({raw_time}) comes before the entry above it",
                      "list entries in chronological order (`pmkb fix` sorts them)")
            last = dt if last is None or dt > last else last
        timeline.append(TimelineEntry(dt, event or "", phase, str(raw_time or "")))


_ACTION_KEYS = ("id", "action", "owner", "due", "status", "kind", "ticket")
_ACTION_ALIASES = {"title": "action", "description": "action", "assignee": "owner", "due_date": "due",
                   "type": "kind", "url": "ticket", "link": "ticket", "issue": "ticket"}
_ACTION_PLAIN = _as_written(_ACTION_KEYS, _ACTION_ALIASES)
_AS_WRITTEN = {k: k for k in _TIMELINE_PLAIN | _ACTION_PLAIN}  # _fields' answer for canonical keys


def _action_items(pm, fm, f, sp):
    entry = _container(fm, "action_items", list, f, sp, "action_items must be a list")
    if entry is None:
        return
    k, v = entry
    known = _ACTION_KEYS
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            f.add("invalid-type", pm.span_of(k, i), f"action item {i + 1} must be a mapping with action, owner, due...")
            continue
        raw, written = _fields(item, _ACTION_ALIASES, _ACTION_PLAIN, known, f, pm, (k, i))
        if written is not _AS_WRITTEN and written.get("due", "due") != "due":
            _file_span(pm.spans, (k, i, written["due"]), (k, i, "due"))  # `due_date:`: see later_spans

        def vspan(name, raw=raw, written=written, i=i):
            return pm.span_of(k, i, written[name]) if name in raw else pm.span_of(k, i)

        action = _text(raw.get("action"))
        if action is None:
            f.add("action-item-missing-action", pm.span_of(k, i), f"action item {i + 1} has no 'action' text")
        owner = _person(raw.get("owner"))
        if owner is None:
            f.add("action-item-missing-owner", pm.span_of(k, i), f"action item {i + 1} has no owner",
                  "name the one person who will see it through")
        raw_id = raw.get("id")
        aid = _text(raw_id)
        if raw_id is not None and (aid is None or not ID_RE.match(aid)):
            f.add("invalid-id", vspan("id"), f"action item id {raw_id!r} is not a valid identifier")
            aid = None
        due: date | None = None
        raw_due = raw.get("due")
        if raw_due is not None:
            due = parse_date(raw_due)
            if due is None:
                f.add("invalid-date", vspan("due"), f"due {raw_due!r} is not a real YYYY-MM-DD date")
        status = "open"
        raw_status = raw.get("status")
        if raw_status is not None:
            s = str(raw_status).strip().lower()
            s = ACTION_STATUS_ALIASES.get(s, s)
            if s in ACTION_STATUSES:
                status = s
            else:
                f.add("invalid-value", vspan("status"),
                      f"action status {raw_status!r} is not one of {', '.join(ACTION_STATUSES)}")
        kind = None
        raw_kind = raw.get("kind")
        if raw_kind is not None:
            kd = str(raw_kind).strip().lower()
            if kd in ACTION_KINDS:
                kind = kd
            else:
                f.add("invalid-value", vspan("kind"), f"kind {raw_kind!r} is not one of {', '.join(ACTION_KINDS)}")
        ticket = None
        raw_ticket = raw.get("ticket")
        if raw_ticket is not None:
            t = _text(raw_ticket)
            if t and URL_RE.match(t):
                ticket = t
            else:
                f.add("invalid-url", vspan("ticket"), f"ticket {raw_ticket!r} is not an http(s) URL",
                      "link the tracker issue, e.g. https://tracker.example.com/OPS-123")
        default_id = f"{pm.id}-{i + 1}" if pm.id else f"#{i + 1}"
        pm.action_items.append(ActionItem(aid or default_id, action or "", owner, due, status, kind, ticket, i))


_LATER_KEYS = ("id", "related", "action_items")


def later_spans(pm: Postmortem) -> tuple[dict, dict]:
    """(value spans, key spans) that stages after a file's own checks read (knowledge-base
    notes, overdue items), by canonical key path (see _canonical_spans). Only these Spans are
    made (yamlload.Spans)."""
    spans, key_spans = pm.spans, pm.key_spans
    paths = [("id",), ("related",), *[("related", i) for i in range(len(pm.related))], ("action_items",)]
    for a in pm.action_items:
        paths += [("action_items", a.index), ("action_items", a.index, "due")]
    return ({p: spans[p] for p in paths if p in spans},
            {(c,): key_spans[(c,)] for c in _LATER_KEYS if (c,) in key_spans})


def _canonical_spans(pm: Postmortem, written: dict[str, str]) -> None:
    """A file that writes `actions:` or `related_incidents:` has its spans under those keys;
    later stages look them up by canonical name, so the spans of those keys are also filed
    under it (the spelling `_mapping_keys` chose, where two set one field)."""
    moved = {w: c for c, w in written.items() if c != w and c in _LATER_KEYS}
    if not moved:
        return
    for table in (pm.spans, pm.key_spans):
        for path in [p for p in table if p and p[0] in moved]:
            _file_span(table, path, (moved[path[0]], *path[1:]))


def _file_span(table: dict, path: tuple, to: tuple) -> None:
    """The span at `path` also at `to`, as it is (a yamlload.Spans keeps a node until read)."""
    if path in table:
        dict.__setitem__(table, to, dict.__getitem__(table, path))
