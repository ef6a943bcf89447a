"""Rules: one module per family, all registered in `registry`."""

from .registry import REGISTRY, Rule

__all__ = ["REGISTRY", "Rule"]
