"""The MkDocs plugin: a thin adapter from MkDocs events to pmkb.core.

Findings go through MkDocs' plugin logger, so `mkdocs build --strict` fails on
them; generated pages are virtual files (nothing is written into docs_dir).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import File, Files

from .core.config import Config, ConfigError
from .core.kb import MARKDOWN_SUFFIXES, CheckResult, ParseCache, is_excluded
from .core.kb import check as run_check

log = get_plugin_logger(__name__)


class PmkbConfig(base.Config):
    """Mirrors pmkb.core.config's options; the core validates the values."""

    enabled = c.Type(bool, default=True)
    postmortems_dir = c.Type(str, default="")
    exclude = c.ListOfItems(c.Type(str), default=[])
    timezone = c.Type(str, default="UTC")
    id_prefix = c.Type(str, default="INC")
    currency = c.Type(str, default="USD")
    severities = c.Optional(c.Type(list))
    required = c.Optional(c.Type(dict))
    status_levels = c.Optional(c.Type(dict))
    rules = c.Optional(c.Type(dict))
    blame = c.Type(dict, default={})
    people = c.ListOfItems(c.Type(str), default=[])
    as_of = c.Optional(c.Type((str, date)))
    max_file_size = c.Type(int, default=1_048_576)
    templates_dir = c.Type(str, default="templates")
    nav = c.Optional(c.Type(str))
    nav_title = c.Optional(c.Type(str))
    pages_dir = c.Optional(c.Type(str))
    edition = c.Optional(c.Type(str))
    recurrence_window_days = c.Optional(c.Type(int))
    overdue_policy = c.Optional(c.Type(list))
    workers = c.Optional(c.Type(int))
    cache_dir = c.Optional(c.Type(str))
    per_page = c.Optional(c.Type(int))
    latest = c.Optional(c.Type(int))


class PmkbPlugin(BasePlugin[PmkbConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        self.cache = ParseCache()
        self.core: Config | None = None
        self.result: CheckResult | None = None

    # Defining on_startup keeps this instance (and its cache) across `mkdocs serve` rebuilds.
    def on_startup(self, *, command, dirty) -> None:
        self.command = command

    def on_config(self, config):
        if not self.config.enabled:
            return
        opts = {k: v for k, v in self.config.items() if k != "enabled" and v is not None}
        root = Path(config.config_file_path).parent if config.config_file_path else Path.cwd()
        try:
            self.core = Config.from_options(opts, root=root, docs_dir=config.docs_dir,
                                            config_file=Path(config.config_file_path or "mkdocs.yml"))
        except ConfigError as exc:
            raise PluginError(str(exc)) from None
        return config

    def _postmortem_files(self, files: Files) -> list[tuple[Path, str, File]]:
        cfg = self.core
        prefix = cfg.postmortems_dir.strip("/")
        out = []
        for f in files.documentation_pages():
            if f.generated_by or not f.abs_src_path:
                continue
            src = f.src_uri
            if prefix:
                if not src.startswith(prefix + "/"):
                    continue
                rel = src[len(prefix) + 1:]
            else:
                rel = src
            name = rel.rsplit("/", 1)[-1].lower()
            if not name.endswith(MARKDOWN_SUFFIXES) or name in ("index.md", "readme.md"):
                continue
            if is_excluded(rel, cfg.exclude):
                continue
            out.append((Path(f.abs_src_path), rel, f))
        return out

    def on_files(self, files: Files, *, config) -> Files:
        if not self.config.enabled or self.core is None:
            return files
        found = self._postmortem_files(files)
        root = self.core.root

        def display(p: Path) -> str:
            try:
                return Path(os.path.relpath(p, root)).as_posix()
            except ValueError:
                return str(p)

        self.result = run_check(self.core, [(p, rel) for p, rel, _ in found], display=display, cache=self.cache)
        for d in self.result.diagnostics:
            msg = f"{d.path}:{d.span.line}:{d.span.column}: {d.rule} [{d.code}] {d.message}"
            {"error": log.error, "warning": log.warning}.get(d.severity, log.info)(msg)
        if files.get_file_from_path("index.md") is None:
            from .render import page_environment

            env = page_environment(self.core.root / self.core.templates_dir)
            pms = sorted(self.result.kb.valid, key=lambda p: (p.date or date.min, p.id or ""), reverse=True)
            by_rel = {rel: f for _, rel, f in found}
            items = [(pm, by_rel.get(pm.rel_path)) for pm in pms]
            content = env.get_template("landing.md.j2").render(
                site_name=config.site_name, postmortems=[(pm, f.src_uri if f else "") for pm, f in items]
            )
            files.append(File.generated(config, "index.md", content=content))
        return files
