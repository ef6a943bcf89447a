"""The Jinja2 environment: the site's templates/ folder first, the package's second.

Generated pages are Markdown with embedded HTML, so values are HTML-escaped by
default (autoescape); the postmortem scaffold is YAML, so it has its own
environment where values go through the `yaml` filter instead.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2
import yaml


def package_templates() -> Path:
    return Path(str(resources.files("pmkb.templates")))


def _loader(user_dir: Path | None) -> jinja2.BaseLoader:
    paths = [str(user_dir)] if user_dir and user_dir.is_dir() else []
    paths.append(str(package_templates()))
    return jinja2.FileSystemLoader(paths)


def yaml_scalar(value) -> str:
    """A value as a one-line YAML scalar, quoted when YAML would misread it."""
    if value is None:
        return ""
    out = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return out[:-4].rstrip() if out.endswith("\n...") or out.endswith(" ...") else out.removesuffix("...").rstrip()


@lru_cache(maxsize=8)
def scaffold_environment(user_dir: Path | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_loader(user_dir), autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    env.filters["yaml"] = yaml_scalar
    return env


@lru_cache(maxsize=8)
def page_environment(user_dir: Path | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_loader(user_dir),
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env
