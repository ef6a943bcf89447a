"""A postmortem's front matter as MkDocs itself would read it, for page.meta.

pmkb's loader keeps dates, times and base-60 numbers (`14:02`) as the text written, because
the check parses them with the configured zone. MkDocs reads front matter with PyYAML's
SafeLoader, and other plugins (blog, RSS, tags) expect its types: a `date:` is a date. So
the loader notes where SafeLoader would read something else, and `value()` builds that.
Where pmkb cannot tell what SafeLoader would say (a non-text key, a tag on text it cannot
read), there is no value and MkDocs reads the file itself: the types never depend on which
path a page took.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import yaml
from yaml.nodes import ScalarNode

from .yamlload import _FLOAT, _INT, _TIMESTAMP, _constructor

TYPED_TAGS = (_TIMESTAMP, _INT, _FLOAT)
_CONSTRUCT = {_TIMESTAMP: _constructor.construct_yaml_timestamp, _INT: _constructor.construct_yaml_int,
              _FLOAT: _constructor.construct_yaml_float}


class _Unreadable(Exception):
    """SafeLoader would fail on this text (and MkDocs would then keep no meta at all)."""


@lru_cache(maxsize=4096)  # dates and times repeat across files; the results are immutable
def _typed(tag: str, text: str):
    try:
        return _CONSTRUCT[tag](ScalarNode(tag, text))
    except (ValueError, TypeError, OverflowError, yaml.YAMLError) as exc:
        raise _Unreadable(text) from exc


@dataclass(slots=True)
class PageMeta:
    plain: dict | None  # as pmkb's loader read it; None: MkDocs must read this file itself
    typed: tuple = ()  # ((key path, tag, text), ...) where SafeLoader reads a date, time or number

    def value(self) -> dict | None:
        """A new mapping equal to what MkDocs' own reading gives (containers on the way to a
        typed value are copies, so nothing reaches back into `plain`)."""
        if self.plain is None:
            return None
        out = dict(self.plain)
        if not self.typed:
            return out
        copied: set[tuple] = {()}
        try:
            for path, tag, text in self.typed:
                node = out
                for depth, step in enumerate(path[:-1]):
                    child = node[step]
                    if path[:depth + 1] not in copied:
                        child = node[step] = dict(child) if type(child) is dict else list(child)
                        copied.add(path[:depth + 1])
                    node = child
                node[path[-1]] = _typed(tag, text)
        except (_Unreadable, KeyError, IndexError, TypeError):
            return None
        return out

    def to_json(self) -> str | None:
        """For the results cache; None when JSON cannot hold a value (!!binary)."""
        try:
            return json.dumps([self.plain, [[list(p), t, x] for p, t, x in self.typed]],
                              ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            return None

    @classmethod
    def from_json(cls, text: str) -> PageMeta | None:
        """None for anything pmkb does not write (a miss, never an error)."""
        try:
            plain, typed = json.loads(text)
        except (ValueError, TypeError):
            return None
        if not (plain is None or type(plain) is dict) or type(typed) is not list:
            return None
        out = []
        for item in typed:
            if not (type(item) is list and len(item) == 3 and type(item[0]) is list and item[0]
                    and all(type(s) in (str, int) for s in item[0]) and item[1] in TYPED_TAGS
                    and type(item[2]) is str):
                return None
            out.append((tuple(item[0]), item[1], item[2]))
        return cls(plain, tuple(out))
