"""The one configuration object, read from the `pmkb` entry in mkdocs.yml.

The CLI and the MkDocs plugin both build it with `Config.from_options`, so they
cannot disagree. Every problem raises ConfigError naming the offending key.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .durations import parse_target
from .editions import EDITIONS
from .model import SEVERITY_LEVELS, STATUSES
from .yamlload import load_config_file

SECTIONS = (
    "Summary",
    "Impact",
    "Root Cause",
    "Contributing Factors",
    "What Went Well",
    "What Went Poorly",
    "Lessons Learned",
)
OPTIONAL_SECTIONS = ("Detection", "Response", "Five Whys", "Timeline", "Action Items")
SECTION_ALIASES = {
    "what could be improved": "What Went Poorly",
    "what went wrong": "What Went Poorly",
    "5 whys": "Five Whys",
    "root causes": "Root Cause",
    "contributing factor": "Contributing Factors",
    "lessons": "Lessons Learned",
}
ALL_TIMES = ["times.started", "times.detected", "times.acknowledged", "times.mitigated", "times.resolved"]


class ConfigError(Exception):
    def __init__(self, key: str, message: str):
        super().__init__(f"pmkb configuration: '{key}': {message}")
        self.key = key


@dataclass(frozen=True)
class SeverityDef:
    name: str
    aliases: tuple[str, ...]
    response_target: float | None  # minutes; None = cannot be measured ("next sprint")
    resolve_target: float | None
    response_label: str
    resolve_label: str


@dataclass(frozen=True)
class Requirement:
    sections: tuple[str, ...]
    fields: tuple[str, ...]


DEFAULT_SEVERITIES = [
    {"name": "SEV1", "aliases": ["P1", "S1"], "response_target": "immediate", "resolve_target": "1h"},
    {"name": "SEV2", "aliases": ["P2", "S2"], "response_target": "15m", "resolve_target": "4h"},
    {"name": "SEV3", "aliases": ["P3", "S3"], "response_target": "1h", "resolve_target": "24h"},
    {"name": "SEV4", "aliases": ["P4", "S4"], "response_target": "next sprint", "resolve_target": "1 week"},
]
_MAJOR = {"sections": list(SECTIONS), "fields": ALL_TIMES + ["roles.incident_commander", "action_items"]}
_MINOR = {"sections": ["Summary", "Impact", "Root Cause"], "fields": ["times.started", "times.resolved"]}
DEFAULT_REQUIRED = {"SEV1": _MAJOR, "SEV2": _MAJOR, "SEV3": _MINOR, "SEV4": _MINOR}
DEFAULT_STATUS_LEVELS = {"draft": "warning", "in-review": "error", "published": "error"}
KNOWN_FIELDS = {
    "id", "title", "date", "severity", "status", "authors", "services", "tags", "detection",
    "roles", "times", "duration", "impact", "timeline", "action_items", "related", "problem",
    "visibility",
}
REQUIRABLE = KNOWN_FIELDS | {f"times.{k}" for k in ("started", "detected", "acknowledged", "mitigated", "resolved")} | {
    f"roles.{k}" for k in ("incident_commander", "tech_lead", "comms_lead", "scribe")
} | {f"impact.{k}" for k in ("users_affected", "revenue", "data_loss", "description")}


@dataclass
class Config:
    config_file: Path | None = None
    root: Path = Path(".")  # folder of mkdocs.yml
    docs_dir: Path = Path("docs")  # absolute after from_options
    postmortems_dir: str = ""  # relative to docs_dir
    pages_dir: str = ""  # where generated pages go, relative to docs_dir
    exclude: tuple[str, ...] = ()
    timezone: str = "UTC"
    id_prefix: str = "INC"
    currency: str = "USD"
    severities: tuple[SeverityDef, ...] = ()
    required: dict[str, Requirement] = field(default_factory=dict)
    status_levels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS_LEVELS))
    rule_levels: dict[str, str] = field(default_factory=dict)  # rule name -> level | off
    blame: dict[str, Any] = field(default_factory=dict)
    people: tuple[str, ...] = ()
    as_of: date | None = None
    max_file_size: int = 1_048_576
    templates_dir: str = "templates"
    options: dict[str, Any] = field(default_factory=dict)  # the raw plugin options
    site: dict[str, Any] = field(default_factory=dict)  # the rest of mkdocs.yml, as read (site_name...)
    blame_settings: Any = None  # compiled blame patterns (core.blame.BlameSettings)
    for_site: bool = False  # results will build a site: keep each file's page meta and timeline

    # ---- derived -------------------------------------------------------
    @property
    def tz(self):
        return ZoneInfo(self.timezone) if self.timezone != "UTC" else timezone.utc

    @property
    def postmortems_root(self) -> Path:
        return (self.docs_dir / self.postmortems_dir).resolve() if self.postmortems_dir else self.docs_dir

    def severity(self, name: str | None) -> SeverityDef | None:
        for s in self.severities:
            if s.name == name:
                return s
        return None

    def severity_names(self) -> list[str]:
        return [s.name for s in self.severities]

    def canonical_severity(self, value: str) -> str | None:
        v = value.strip().upper().replace(" ", "")
        for s in self.severities:
            if v == s.name.upper() or v in (a.upper() for a in s.aliases):
                return s.name
        return None

    def today(self) -> date:
        """The as-of date: configured, else SOURCE_DATE_EPOCH, else today (UTC)."""
        if self.as_of:
            return self.as_of
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch and epoch.strip().isdigit():
            return datetime.fromtimestamp(int(epoch), tz=timezone.utc).date()
        return datetime.now(tz=timezone.utc).date()

    # ---- construction ---------------------------------------------------
    @classmethod
    def from_options(
        cls,
        options: dict[str, Any] | None,
        *,
        root: Path,
        docs_dir: str | Path = "docs",
        config_file: Path | None = None,
    ) -> Config:
        opts = dict(options or {})
        unknown = sorted(set(opts) - _OPTION_KEYS)
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], sorted(_OPTION_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(unknown[0], f"unknown option{hint}")
        root = Path(root).resolve()
        cfg = cls(config_file=config_file, root=root, options=opts)
        cfg.docs_dir = (root / docs_dir).resolve()
        cfg.postmortems_dir = _folder(opts, "postmortems_dir")
        cfg.pages_dir = _folder(opts, "pages_dir")
        cfg.exclude = tuple(_str_list(opts, "exclude"))
        cfg.timezone = _str(opts, "timezone", "UTC")
        try:
            ZoneInfo(cfg.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("timezone", f"unknown time zone {cfg.timezone!r} (use an IANA name like 'Europe/Berlin')") from None
        cfg.id_prefix = _str(opts, "id_prefix", "INC")
        if not re.fullmatch(r"[A-Z][A-Z0-9]*", cfg.id_prefix):
            raise ConfigError("id_prefix", "must be upper-case letters and digits, starting with a letter")
        cfg.currency = _str(opts, "currency", "USD")
        cfg.severities = tuple(_severities(opts.get("severities", DEFAULT_SEVERITIES)))
        cfg.required = _required(opts.get("required"), cfg.severity_names())
        cfg.status_levels = _status_levels(opts.get("status_levels"))
        cfg.rule_levels = _rule_levels(opts.get("rules"))
        blame = opts.get("blame", {})
        if not isinstance(blame, dict):
            raise ConfigError("blame", "must be a mapping")
        cfg.blame = blame
        from .blame import settings_from_config  # validates terms now, so errors name the key

        cfg.blame_settings = settings_from_config(blame)
        cfg.people = tuple(_str_list(opts, "people"))
        _str_list(opts, "customers")
        edition = opts.get("edition")
        if edition is not None and edition not in EDITIONS:
            raise ConfigError("edition", f"{edition!r} is not one of {', '.join(EDITIONS)}")
        as_of = opts.get("as_of")
        if as_of not in (None, ""):
            try:
                cfg.as_of = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))
            except ValueError:
                raise ConfigError("as_of", f"{as_of!r} is not a YYYY-MM-DD date") from None
        size = opts.get("max_file_size", cfg.max_file_size)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ConfigError("max_file_size", "must be a positive number of bytes")
        cfg.max_file_size = size
        cfg.templates_dir = _str(opts, "templates_dir", "templates")
        _overdue_policy(opts.get("overdue_policy"), cfg.severity_names())
        for key in ("recurrence_window_days", "per_page", "latest", "workers"):
            v = opts.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "workers" else 1)):
                raise ConfigError(key, "must be a positive whole number")
        return cfg

    @classmethod
    def from_file(cls, path: Path, *, required: bool = True) -> Config:
        """Read mkdocs.yml; without one (and not asked for), use the defaults."""
        path = Path(path)
        if not path.exists():
            if required:
                raise ConfigError("config_file", f"{path} does not exist")
            return cls.from_options({}, root=path.parent, docs_dir="docs")
        try:
            data = load_config_file(path.read_text(encoding="utf-8-sig"))
        except Exception as exc:  # YAML errors of any kind become one clear message
            raise ConfigError("config_file", f"cannot read {path}: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("config_file", f"{path} is not a mapping")
        docs_dir = data.get("docs_dir") or "docs"
        cfg = cls.from_options(
            plugin_options(data.get("plugins")), root=path.parent, docs_dir=docs_dir, config_file=path
        )
        cfg.site = data
        return cfg


def plugin_options(plugins: Any) -> dict[str, Any]:
    """The `pmkb` entry of mkdocs.yml's `plugins` (a list or a mapping)."""
    items: list = []
    if isinstance(plugins, list):
        items = plugins
    elif isinstance(plugins, dict):
        items = [{k: v} for k, v in plugins.items()]
    for item in items:
        if item == "pmkb":
            return {}
        if isinstance(item, dict) and "pmkb" in item:
            opts = item["pmkb"] or {}
            if not isinstance(opts, dict):
                raise ConfigError("plugins.pmkb", "options must be a mapping")
            return {k: v for k, v in opts.items() if k != "enabled"}
    return {}


# Options the plugin accepts; the MkDocs Config class mirrors these names.
_OPTION_KEYS = {
    "postmortems_dir", "exclude", "timezone", "id_prefix", "currency", "severities", "required",
    "status_levels", "rules", "blame", "people", "as_of", "max_file_size", "templates_dir",
    "nav", "nav_title", "pages_dir", "edition", "recurrence_window_days", "overdue_policy",
    "workers", "cache_dir", "per_page", "latest", "customers",
}


def _str(opts: dict, key: str, default: str) -> str:
    v = opts.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise ConfigError(key, f"must be text, got {type(v).__name__}")
    return v


def _folder(opts: dict, key: str) -> str:
    """A folder below docs_dir as page paths need it: "./kb/" and "kb" are one folder, "" the top."""
    folder = posixpath.normpath(_str(opts, key, "").replace("\\", "/").strip("/") or ".")
    return "" if folder == "." else folder


def _str_list(opts: dict, key: str) -> list[str]:
    v = opts.get(key) or []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(key, "must be a list of text values")
    return list(v)


def _severities(raw: Any) -> list[SeverityDef]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("severities", "must be a non-empty list of {name, aliases, response_target, resolve_target}")
    out, seen = [], set()
    for i, item in enumerate(raw):
        key = f"severities[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(key, "each severity needs a 'name'")
        extra = set(item) - {"name", "aliases", "response_target", "resolve_target"}
        if extra:
            raise ConfigError(f"{key}.{sorted(extra)[0]}", "unknown key")
        name = item["name"].strip().upper()
        aliases = item.get("aliases") or []
        if isinstance(aliases, str):
            aliases = [aliases]
        if not isinstance(aliases, list):
            raise ConfigError(f"{key}.aliases", "must be a list")
        names = {name, *(str(a).upper() for a in aliases)}
        if names & seen:
            raise ConfigError(key, f"name or alias used twice: {sorted(names & seen)[0]}")
        seen |= names
        targets = []
        for t in ("response_target", "resolve_target"):
            value = item.get(t)
            try:
                targets.append(parse_target(value))
            except ValueError as exc:
                raise ConfigError(f"{key}.{t}", str(exc)) from None
        out.append(
            SeverityDef(
                name,
                tuple(str(a).upper() for a in aliases),
                targets[0],
                targets[1],
                str(item.get("response_target", "none")),
                str(item.get("resolve_target", "none")),
            )
        )
    return out


def _required(raw: Any, severities: list[str]) -> dict[str, Requirement]:
    table = {k: dict(v) for k, v in DEFAULT_REQUIRED.items() if k in severities}
    for s in severities:
        table.setdefault(s, dict(_MINOR))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("required", "must map severity names to {sections, fields}")
    for sev, spec in raw.items():
        name = str(sev).upper()
        if name not in severities:
            raise ConfigError(f"required.{sev}", f"unknown severity (known: {', '.join(severities)})")
        if not isinstance(spec, dict):
            raise ConfigError(f"required.{sev}", "must be a mapping with 'sections' and/or 'fields'")
        for k, v in spec.items():
            if k not in ("sections", "fields"):
                raise ConfigError(f"required.{sev}.{k}", "unknown key (use 'sections' or 'fields')")
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"required.{sev}.{k}", "must be a list of names")
            if k == "fields":
                bad = [f for f in v if f not in REQUIRABLE]
                if bad:
                    raise ConfigError(f"required.{sev}.fields", f"unknown field {bad[0]!r}")
            table[name][k] = v
    return {k: Requirement(tuple(v["sections"]), tuple(v["fields"])) for k, v in table.items()}


def _overdue_policy(raw: Any, severities: list[str]) -> None:
    """[{severities: [SEV1, SEV2], days: 30, level: warning}]: raise overdue notices for those."""
    if raw is None:
        return
    if not isinstance(raw, list):
        raise ConfigError("overdue_policy", "must be a list of {severities, days, level}")
    for i, rule in enumerate(raw):
        key = f"overdue_policy[{i}]"
        if not isinstance(rule, dict) or set(rule) - {"severities", "days", "level"}:
            raise ConfigError(key, "each entry takes severities, days and level")
        if rule.get("level") not in ("notice", "warning", "error"):
            raise ConfigError(f"{key}.level", "use notice, warning or error")
        days = rule.get("days", 0)
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise ConfigError(f"{key}.days", "must be a whole number of days")
        for s in rule.get("severities") or []:
            if str(s).upper() not in severities:
                raise ConfigError(f"{key}.severities", f"unknown severity {s!r}")


def _status_levels(raw: Any) -> dict[str, str]:
    levels = dict(DEFAULT_STATUS_LEVELS)
    if raw is None:
        return levels
    if not isinstance(raw, dict):
        raise ConfigError("status_levels", "must map statuses to error|warning|notice")
    for k, v in raw.items():
        if k not in STATUSES:
            raise ConfigError(f"status_levels.{k}", f"unknown status (use {', '.join(STATUSES)})")
        if v not in SEVERITY_LEVELS:
            raise ConfigError(f"status_levels.{k}", f"unknown level {v!r} (use error, warning or notice)")
        levels[k] = v
    return levels


def _rule_levels(raw: Any) -> dict[str, str]:
    from .rules.registry import REGISTRY  # late: the registry imports nothing from here

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("rules", "must map rule names or codes to error|warning|notice|off")
    out = {}
    for k, v in raw.items():
        rule = REGISTRY.get(str(k))
        if rule is None:
            raise ConfigError(f"rules.{k}", "unknown rule (see `pmkb rules`)")
        if v is False:
            v = "off"
        if v not in (*SEVERITY_LEVELS, "off"):
            raise ConfigError(f"rules.{k}", f"unknown level {v!r} (use error, warning, notice or off)")
        out[rule.name] = v
    return out
