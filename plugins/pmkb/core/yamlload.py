"""Load YAML front matter safely, keeping where every key and value stands.

libyaml's C parser composes the node graph (0.9 ms for a typical front matter
against 8.3 ms in pure Python); we then build plain Python values ourselves, so
we can record positions, report duplicate keys, refuse language-specific tags and
stop alias expansion bombs before they cost memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MethodType

import yaml
from yaml.nodes import MappingNode, ScalarNode

from .model import Span

try:  # libyaml is the fast path; pure Python is a correct fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

HAS_LIBYAML = _Loader.__name__.startswith("C")

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BINARY = "tag:yaml.org,2002:binary"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP, _BINARY}

MAX_NODES = 50_000  # far beyond any real front matter; an alias bomb exceeds it at once

_constructor = yaml.constructor.SafeConstructor()
# Called directly rather than through construct_object, which would keep every node it
# ever saw (its memo is never cleared) and does nothing else for a scalar.
_CONSTRUCT = {tag: MethodType(_constructor.yaml_constructors[tag], _constructor)
              for tag in (_INT, _FLOAT, _BOOL, _NULL, _BINARY)}


class YamlProblem(Exception):
    """A front-matter problem with its position (file lines are added by the caller)."""

    def __init__(self, kind: str, message: str, line: int = 0, column: int = 0):
        super().__init__(message)
        self.kind = kind  # syntax | unsafe-tag | alias-bomb
        self.message = message
        self.line = line  # 0-based, relative to the YAML text
        self.column = column


class Spans(dict):
    """Key path -> Span. The builder stores each path's YAML node; the Span is made from it
    when first read. A front matter has ~200 values and a check reads the spans of a few:
    making them all was 0.45 s of the 2.8 s that loading 10,000 front matters takes."""

    __slots__ = ("_off",)

    def __init__(self, line_offset: int = 0, items=()):
        super().__init__(items)
        self._off = line_offset + 1  # marks are 0-based

    def __getitem__(self, path) -> Span:
        value = dict.__getitem__(self, path)
        if value.__class__ is Span:
            return value
        span = _node_span(value, self._off)
        dict.__setitem__(self, path, span)  # and the node can go
        return span

    def get(self, path, default=None):
        return self[path] if path in self else default

    def items(self):
        return [(path, self[path]) for path in self]

    def values(self):
        return [self[path] for path in self]

    def __eq__(self, other) -> bool:
        return dict(self.items()) == other

    __hash__ = None

    def __reduce__(self):  # plain Spans across processes, never nodes
        return dict, (self.items(),)

    def copy(self) -> dict:
        return dict(self.items())


_SPANS: dict[tuple, Span] = {}  # Span objects are immutable and positions recur across files
_SPANS_MAX = 16384  # a few MB at most


def _node_span(node, off: int) -> Span:
    s, e = node.start_mark, node.end_mark
    key = (s.line + off, s.column + 1, e.line + off, e.column + 1)
    sp = _SPANS.get(key)
    if sp is None:
        if len(_SPANS) >= _SPANS_MAX:
            _SPANS.clear()
        sp = _SPANS[key] = Span(*key)
    return sp


@dataclass
class Loaded:
    value: object
    spans: dict[tuple, Span] = field(default_factory=Spans)
    key_spans: dict[tuple, Span] = field(default_factory=Spans)
    duplicates: list[tuple[tuple, Span]] = field(default_factory=list)
    # with load(typed=True), for page meta (core.page_meta): where PyYAML's SafeLoader reads a
    # value other than ours, and whether it reads anything pmkb cannot reproduce
    typed: list[tuple[tuple, str, str]] | None = None
    exact: bool = True


# ---- composing: libyaml, with PyYAML's resolver made cheap ------------------------------------

def _implicit_table() -> tuple[dict[str, tuple], tuple]:
    """PyYAML's implicit resolvers by first character, each list already joined with the
    wildcard ones (BaseResolver.resolve concatenates the two lists on every call)."""
    table = _Loader.yaml_implicit_resolvers
    ours = {tag: tag for tag in (*_SCALAR_TAGS, _MERGE)}  # so `tag is _STR` tests suffice

    def entries(resolvers):
        return tuple((ours.get(tag, tag), regexp) for tag, regexp in resolvers)

    wildcard = entries(table.get(None, ()))
    return {ch: entries(rs) + wildcard for ch, rs in table.items() if ch is not None}, wildcard


_IMPLICIT, _WILDCARD = _implicit_table()
_PLAIN_TAGS: dict[str, str] = {}  # plain scalar -> tag; keys, enums and names repeat across files
_PLAIN_TAGS_MAX = 8192
_PLAIN_TAGS_LEN = 40  # longer values (prose) rarely repeat: not worth keeping


def _plain_tag(value: str) -> str:
    """The tag YAML 1.1 gives an untagged plain scalar: exactly BaseResolver.resolve's answer
    (yes -> bool, 0o17 -> str, 1_000 -> int, .inf -> float, 14:02 -> int, dates -> timestamp)."""
    for tag, regexp in _IMPLICIT.get(value[:1], _WILDCARD):
        if regexp.match(value):
            return tag
    return _STR


class _Composer(_Loader):
    """The C composer calls back into Python to resolve every node's tag. PyYAML's generic
    resolver re-joins lists and runs regexes each time; an implicit tag depends on nothing
    but the kind and, for a plain scalar, its text (a safe loader has no path resolvers),
    so answer from tables instead."""

    def resolve(self, kind, value, implicit):
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = _plain_tag(value)
                if len(value) <= _PLAIN_TAGS_LEN:
                    if len(_PLAIN_TAGS) >= _PLAIN_TAGS_MAX:
                        _PLAIN_TAGS.clear()
                    _PLAIN_TAGS[value] = tag
            return tag
        return _MAP if kind is MappingNode else _SEQ

    def descend_resolver(self, current_node, current_index):
        """Only path resolvers need this; a safe loader has none."""

    def ascend_resolver(self):
        """See descend_resolver."""


def _compose(text: str):
    loader = _Composer(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


# ---- building values and spans ----------------------------------------------------------------

def load(text: str, line_offset: int = 0, typed: bool = False) -> Loaded:
    """Parse one YAML document. `line_offset` is the file line before the YAML's first line;
    `typed` also notes what SafeLoader would read differently (Loaded.typed)."""
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YamlProblem("syntax", problem, mark.line if mark else 0, mark.column if mark else 0) from None
    except yaml.YAMLError as exc:
        raise YamlProblem("syntax", str(exc)) from None
    out = Loaded(None, Spans(line_offset), Spans(line_offset), typed=[] if typed else None)
    if node is not None:
        out.value = _build(node, out)
    return out


def _build(root, out: Loaded):
    """Values from nodes, recording the node of every value and key (out.spans makes the
    Span of those read).

    Iterative, so nesting as deep as libyaml allows cannot exhaust Python's stack. Scalars,
    most of the nodes, are handled in their parent's loop; the order of everything (spans,
    the node budget, the first problem raised) is that of a depth-first recursive walk."""
    spans, key_spans, duplicates, typed = out.spans, out.key_spans, out.duplicates, out.typed
    budget = MAX_NODES
    active: set[int] = set()  # containers being built: an alias back to one would never end

    def scalar(node, path: tuple):
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise _too_many(node)
        spans[path] = node
        tag = node.tag
        if tag is _STR:  # most scalars: the tags our resolver returns
            return node.value
        if tag is _TIMESTAMP:
            if typed is not None:
                typed.append((path, tag, node.value))
            return node.value
        value = _scalar(node)
        if typed is not None and value is node.value and tag != _STR:  # kept as written
            if tag == _TIMESTAMP or tag in (_INT, _FLOAT):
                typed.append((path, tag, node.value))
            else:
                out.exact = False  # `!!bool maybe`: SafeLoader fails
        return value

    def enter(node, path: tuple) -> tuple:
        """Start a mapping or sequence: (its children still to build, its path, the value)."""
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise _too_many(node)
        spans[path] = node
        nid = id(node)
        if nid in active:
            raise _at(node, "alias-bomb", "recursive YAML alias")
        active.add(nid)
        if node.__class__ is MappingNode:
            if node.tag != _MAP:
                raise _unsafe(node)
            return iter(node.value), path, {}, nid
        if node.tag != _SEQ:
            raise _unsafe(node)
        return enumerate(node.value), path, [], nid

    if root.__class__ is ScalarNode:
        return scalar(root, ())
    stack = [enter(root, ())]
    value = stack[0][2]
    while stack:
        children, path, result, nid = stack[-1]
        if result.__class__ is dict:
            for knode, vnode in children:
                key = _key(knode)
                if typed is not None and knode.tag != _STR:
                    out.exact = False  # SafeLoader's key is a number, date or bool, not text
                kpath = path + (key,)
                key_spans[kpath] = knode
                if key in result:
                    duplicates.append((kpath, key_spans[kpath]))
                if vnode.__class__ is ScalarNode:
                    result[key] = scalar(vnode, kpath)
                else:
                    child = enter(vnode, kpath)
                    result[key] = child[2]
                    stack.append(child)
                    break
            else:
                stack.pop()
                active.discard(nid)
        else:
            for i, item in children:
                ipath = path + (i,)
                if item.__class__ is ScalarNode:
                    result.append(scalar(item, ipath))
                else:
                    child = enter(item, ipath)
                    result.append(child[2])
                    stack.append(child)
                    break
            else:
                stack.pop()
                active.discard(nid)
    return value


def _key(node) -> str:
    """A mapping key as text: `yes: 1` has the key 'True', as it always had."""
    if node.__class__ is not ScalarNode:
        raise _at(node, "syntax", "a key must be plain text")
    if node.tag is _STR:
        return node.value
    if node.tag == _MERGE:
        raise _at(node, "unsafe-tag", "merge keys (<<) are not supported")
    key = _scalar(node)
    return key if isinstance(key, str) else str(key)


def _at(node, kind: str, message: str) -> YamlProblem:
    return YamlProblem(kind, message, node.start_mark.line, node.start_mark.column)


def _too_many(node) -> YamlProblem:
    return _at(node, "alias-bomb", f"front matter expands to more than {MAX_NODES} values (YAML alias expansion?)")


def _unsafe(node) -> YamlProblem:
    return _at(node, "unsafe-tag", f"YAML tag {node.tag!r} is not allowed in front matter")


def _scalar(node: yaml.ScalarNode):
    tag = node.tag
    if tag not in _SCALAR_TAGS:
        raise _unsafe(node)
    if tag == _STR or tag == _TIMESTAMP:
        # Dates and times stay text: we parse them ourselves with the configured zone.
        return node.value
    if tag == _INT and ":" in node.value:
        return node.value  # YAML 1.1 reads 14:02 as base-60 842; a postmortem means a time
    if tag == _FLOAT and ":" in node.value:
        return node.value
    try:
        return _CONSTRUCT[tag](node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, KeyError, IndexError):
        return node.value  # an explicit tag on text it cannot read (`!!bool maybe`, empty `!!int`)


class _LenientLoader(yaml.SafeLoader):
    """For mkdocs.yml: unknown tags (!ENV, !!python/name:...) load as None, never run."""


def _ignore_tag(loader, suffix, node):  # noqa: ARG001 - PyYAML's signature
    return None


_LenientLoader.add_multi_constructor("", _ignore_tag)
_LenientLoader.add_multi_constructor("tag:yaml.org,2002:python/", _ignore_tag)


def load_config_file(text: str):
    """Read mkdocs.yml without executing any tag in it."""
    return yaml.load(text, Loader=_LenientLoader)  # noqa: S506 - the loader is safe by construction
