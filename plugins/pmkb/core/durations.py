"""Durations, targets and incident times: the small grammar postmortems use."""

from __future__ import annotations

import re
from datetime import date, datetime, time, tzinfo

_DURATION = re.compile(
    r"^\s*(?:(?P<w>\d+)\s*w(?:eeks?)?)?\s*(?:(?P<d>\d+)\s*d(?:ays?)?)?\s*"
    r"(?:(?P<h>\d+)\s*h(?:ours?|rs?)?)?\s*(?:(?P<m>\d+)\s*m(?:in(?:utes?|s)?)?)?\s*"
    r"(?:(?P<s>\d+)\s*s(?:ec(?:onds?|s)?)?)?\s*$",
    re.IGNORECASE,
)
_HHMM = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\s*$")
_TIMESTAMP_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
UNMEASURABLE = {"next sprint", "none", "n/a", "best effort", ""}


def parse_duration(text: str) -> float | None:
    """'2h 34m' -> 154.0 minutes; None when it is not a duration."""
    m = _DURATION.match(text)
    if not m or not any(m.groupdict().values()):
        return None
    g = {k: int(v or 0) for k, v in m.groupdict().items()}
    return g["w"] * 10080 + g["d"] * 1440 + g["h"] * 60 + g["m"] + g["s"] / 60


def parse_target(value) -> float | None:
    """A severity target in minutes: 'immediate' is 0, 'next sprint' cannot be measured."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text in UNMEASURABLE:
        return None
    if text in ("immediate", "immediately", "0"):
        return 0.0
    minutes = parse_duration(text.replace(" week", "w").replace(" day", "d"))
    if minutes is None:
        raise ValueError(f"{value!r} is not a duration like '15m', '4h', '1 week', 'immediate' or 'next sprint'")
    return minutes


def format_minutes(minutes: float | None) -> str:
    """154 -> '2h 34m'; used on pages and in the CLI."""
    if minutes is None:
        return "—"
    total = int(round(minutes))
    sign = "-" if total < 0 else ""
    total = abs(total)
    d, rem = divmod(total, 1440)
    h, m = divmod(rem, 60)
    parts = []
    if d:
        parts.append(f"{d}d")
    if h:
        parts.append(f"{h}h")
    if m or not parts:
        parts.append(f"{m}m")
    return sign + " ".join(parts)


def parse_time(value: str, day: date | None, tz: tzinfo) -> datetime | None:
    """'14:02' (on `day` in `tz`) or a full ISO-8601 timestamp; naive timestamps are in `tz`."""
    text = value.strip()
    m = _HHMM.match(text) if len(text) <= 8 else None  # a stripped H:MM[:SS] is 4 to 8 characters
    if m:
        if day is None:
            return None
        t = time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        return datetime.combine(day, t, tzinfo=tz)
    if len(text) < 16 or not _TIMESTAMP_START.match(text):
        return None
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def parse_date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None
