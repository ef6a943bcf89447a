"""Collecting diagnostics for one file, with the level each rule has there."""

from __future__ import annotations

from .model import Diagnostic, Span
from .rules.registry import BY_STATUS, REGISTRY


class Findings:
    """Turns (rule, span, message) into Diagnostics at the level config and status give."""

    def __init__(self, path: str, config, status: str = "draft"):
        self.path = path
        self.config = config
        self.status = status
        self.items: list[Diagnostic] = []

    def level(self, rule_name: str) -> str | None:
        rule = REGISTRY[rule_name]
        override = self.config.rule_levels.get(rule.name) if self.config else None
        if override == "off":
            return None
        if override:
            return override
        if rule.level == BY_STATUS:
            levels = self.config.status_levels if self.config else {}
            return levels.get(self.status, "error")
        return rule.level

    def add(self, rule_name: str, span: Span, message: str, suggestion: str | None = None,
            level: str | None = None) -> None:
        rule = REGISTRY[rule_name]
        lvl = level or self.level(rule_name)
        if lvl is None:
            return
        if self.config is not None and self.config.rule_levels.get(rule.name) == "off":
            return
        self.items.append(Diagnostic(self.path, span, rule.code, rule.name, lvl, message, suggestion))
