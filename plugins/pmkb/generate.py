"""`pmkb generate OUT`: the knowledge base as a plain Markdown docs tree.

Every page the MkDocs plugin makes (home, indexes, group pages, action items,
metrics, problems), every postmortem page (the same generated header the plugin
injects, then the author's prose), the exports and the CSS/JS assets, written as
files below OUT. Any generator that reads Markdown with raw HTML (MkDocs without the
plugin, ProperDocs, Zensical) can then build the site; docs/generate.md shows how.

The pages come from the same `SiteBuilder` calls the plugin makes, so the two cannot
drift apart. What the plugin does after rendering (sanitising the author's HTML
with nh3) has no rendering step to hook into here, so the prose is made safe as
Markdown text instead (`ProseGuard.safe`): raw HTML is reduced to an allowlist, comments
go, links with unsafe schemes and attribute lists that set unsafe attributes are
defused. The result is then rendered with Python-Markdown (the site's extensions
plus attr_list and md_in_html) and every tag of the HTML checked against the same
allowlist; if anything is left, the prose is written as HTML that went through
`pmkb.sanitize.clean_html`, exactly as the plugin would show it.

Writing never touches anything outside OUT, refuses a non-empty OUT unless forced,
replaces files one by one (temporary file + rename), and is deterministic.
"""

from __future__ import annotations

import bisect
import hashlib
import html
import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path

from .core.config import Config
from .core.cache import ResultCache
from .core.gc_pause import paused_gc
from .core.editions import EDITIONS, chosen_edition
from .core.kb import CheckResult, ParseCache, RelativeTo, discover
from .core.kb import check as run_check
from .core.parse import decode
from .sanitize import _ATTRIBUTES, _TAGS, URL_SCHEMES, clean_html
from .core.safe_write import write_atomic
from .site import ASSETS, PROSE_MARK, SiteBuilder, meta_title

MANIFEST = ".pmkb-generated.json"  # what the last run wrote, so --force can retire stale pages


class GenerateError(Exception):
    """A refusal or failure with the exit status the CLI should use."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ==================================================================== the tree ==
@dataclass
class Tree:
    files: dict[str, bytes]  # posix path below OUT -> content
    result: CheckResult
    postmortems: int = 0
    broken: int = 0
    prose_modes: dict[str, str] = field(default_factory=dict)  # page src -> markdown | html | text
    warnings: list[str] = field(default_factory=list)


def site_settings(cfg: Config) -> dict:
    """What the site's mkdocs.yml says beyond the pmkb options (as Config.from_file read it)."""
    data = cfg.site
    name = data.get("site_name")
    return {
        "site_name": name if isinstance(name, str) and name.strip() else "Postmortems",
        "use_directory_urls": data.get("use_directory_urls", True) is not False,
        "markdown_extensions": data.get("markdown_extensions"),
    }


def build_tree(cfg: Config, *, as_of: date | None = None, edition: str | None = None) -> Tree:
    """Every file of the docs tree, in memory. Nothing is written."""
    with paused_gc():
        return _build_tree(cfg, as_of, edition)


def _build_tree(cfg: Config, as_of: date | None, edition: str | None) -> Tree:
    edition = chosen_edition(cfg, edition)
    if edition not in EDITIONS:
        raise GenerateError(f"pmkb configuration: 'edition': {edition!r} is not one of {', '.join(EDITIONS)}")
    settings = site_settings(cfg)
    cfg = replace(cfg, for_site=True)  # timelines and page meta, from the check and the cache
    found = discover(cfg)
    # as the plugin does: paths relative to mkdocs.yml's folder, and a cache that keeps the bytes
    # the check read, so the prose comes from them and no file is read twice
    cache = ParseCache()
    result = run_check(cfg, found, display=RelativeTo(cfg.root), cache=cache, as_of=as_of,
                       disk=ResultCache.for_config(cfg))
    site = SiteBuilder(result, cfg, use_directory_urls=settings["use_directory_urls"],
                       site_name=settings["site_name"], stash=False, edition=edition)
    guard = ProseGuard(settings["markdown_extensions"])
    tree = Tree({}, result, warnings=list(guard.warnings))

    for pm in sorted(result.kb.postmortems, key=lambda p: p.rel_path):
        if not _plain_name(site.pm_src(pm)):
            tree.warnings.append(f"{_printable(pm.path)}: the file name cannot be a page path (not UTF-8, or a "
                                 "backslash); its page is left out: rename the file")
            continue
        if pm.fatal:
            if site.public:  # as the plugin: a broken file leaves no trace in the public edition
                continue
            tree.files[site.pm_src(pm)] = _utf8(site.broken_page(pm))
            tree.broken += 1
            continue
        if not site.includes(pm):
            continue
        src = site.pm_src(pm)
        body = _body(cache.bytes_of(pm))
        if body is None:
            tree.warnings.append(f"{pm.path}: its text was not kept by the check; its page has the header only")
            body = ""
        prose, mode = guard.safe(site.prose(pm, body))
        tree.prose_modes[src] = mode
        if mode != "markdown":
            tree.warnings.append(f"{pm.path}: the prose kept markup that could not be made safe as Markdown; "
                                 f"it is written as sanitised HTML")
        page = _front_matter(pm, public=site.public) + site.postmortem_header(pm) + f"\n{PROSE_MARK}\n\n" + prose
        tree.files[src] = _utf8(_ensure_newline(page))
        tree.postmortems += 1

    for page in site.pages():
        if page.src in tree.files:  # the plugin, too, keeps the postmortem and drops the generated page
            tree.warnings.append(f"{page.src}: a postmortem has the path of a generated page; the postmortem is kept")
            continue
        tree.files[page.src] = _utf8(_ensure_newline(page.markdown))
    for path, text in site.exports().items():
        tree.files[path] = _utf8(text)
    for name in ASSETS:
        tree.files[f"assets/pmkb/{name}"] = (resources.files("pmkb") / "assets" / name).read_bytes()
    for path in tree.files:
        _check_rel(path)
    return tree


def _body(data: bytes | None) -> str | None:
    """The Markdown after the front matter, as MkDocs hands it to the plugin, from the bytes
    the check read (None: no bytes, or not text)."""
    text = decode(data) if data is not None else None
    if text is None:
        return None
    lines = text.split("\n")
    if lines and lines[0].rstrip() == "---":
        close = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
        if close is not None:
            return "\n".join(lines[close + 1:]).lstrip("\n")
    return text


def _front_matter(pm, *, public: bool) -> str:
    """Title, tags and services (authors too, except in the public edition), made safe the way the
    plugin makes page.meta safe: themes print them unescaped."""
    lines = ["---", f"title: {meta_title(pm.title or pm.id or pm.rel_path)}"]
    keys = ("tags", "services") if public else ("tags", "services", "authors")
    for key in keys:
        values = [v for v in getattr(pm, key) if str(v).strip()]
        if values:
            lines.append(f"{key}:")
            lines += [f"  - {meta_title(v)}" for v in values]
    return "\n".join(lines) + "\n---\n\n"


def _utf8(text: str) -> bytes:
    """Text as UTF-8; a file name that was not UTF-8 (shown in a table, say) becomes '?'."""
    return text.encode("utf-8", "replace")


def _printable(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _plain_name(src: str) -> bool:
    try:
        src.encode("utf-8")
        _check_rel(src)
    except (UnicodeEncodeError, GenerateError):
        return False
    return True


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _check_rel(path: str) -> None:
    """Every generated path is relative, normalised and stays below OUT."""
    norm = posixpath.normpath(path)
    if (not path or path.startswith("/") or "\\" in path or "\0" in path or norm != path
            or norm == ".." or norm.startswith("../") or re.match(r"^[A-Za-z]:", path)):
        raise GenerateError(f"refusing to write {path!r}: not a plain path below OUT", 1)


# ================================================================== the prose ==
_URL_ATTRS = {"href", "src"}
_MARKDOWN_ATTR = {"1", "0", "block", "span", "auto", "html"}
_ZWSP = "\u200b"  # breaks `<tag` in code, where an entity would show literally


def _allowed_attrs(tag: str) -> set[str]:
    return set(_ATTRIBUTES["*"]) | set(_ATTRIBUTES.get(tag, ()))


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see, after entities, with the characters URL parsing drops
    (and, to be safe, all white space and backslashes) removed; None for a relative URL."""
    s = re.sub(r"[\x00-\x20\x7f-\x9f\\`<]", "", html.unescape(value))
    m = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", s)
    return m.group(1).lower() if m else None


def safe_url(value: str) -> bool:
    scheme = url_scheme(value)
    return scheme is None or scheme in URL_SCHEMES


# ---- raw HTML in Markdown source --------------------------------------------------
_SRC_TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^\s"'<>/=`]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(/?)>""")
_SRC_ATTR = re.compile(r"""\s+([^\s"'<>/=`]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_AUTOLINK = re.compile(r"<(?:(?:https?|ftp)://[^\s<>]*|mailto:[^\s<>]+|[^\s<>@:/\\\"']+@[^\s<>@\\\"']+\.[^\s<>@\\\"']+)>", re.IGNORECASE)


# Where Markdown is not processed (a raw HTML block when md_in_html is off), a browser reads
# an "autolink" as a tag: `<http://x/onmouseover=alert(1)//>` has an onmouseover attribute.
_RISKY_AUTOLINK = re.compile(r"(?i)/on[a-z0-9_-]*=|[\"'`]")


def _rebuild(m: re.Match) -> tuple[str | None, bool]:
    """A source tag as clean, canonical HTML (None: not an allowed element) and whether
    anything had to be dropped."""
    tag = m.group(2).lower()
    if tag not in _TAGS:
        return None, True
    if m.group(1):
        return f"</{tag}>", bool(m.group(3).strip())
    allowed = _allowed_attrs(tag)
    kept: dict[str, str | None] = {}
    dropped = False
    for am in _SRC_ATTR.finditer(m.group(3)):
        key, raw = am.group(1).lower(), am.group(2)
        value = None if raw is None else html.unescape(raw[1:-1] if raw[:1] in "\"'" else raw)
        if key in kept:
            continue
        ok = key in allowed or (key == "markdown" and (value or "1") in _MARKDOWN_ATTR)
        if ok and key in _URL_ATTRS:
            ok = value is not None and safe_url(value)
        if not ok:
            dropped = True
            continue
        kept[key] = value
    if tag == "a" and "href" in kept:
        kept["rel"] = "noopener noreferrer"
    parts = [tag] + [k if v is None else f'{k}="{html.escape(v, quote=True)}"' for k, v in kept.items()]
    return "<" + " ".join(parts) + (" />" if m.group(4) else ">"), dropped


def _scrub_markup(text: str, code: bool) -> str:
    """Raw HTML reduced to the allowlist. Outside code: allowed tags rebuilt, comments
    removed, anything else tag-like escaped as text. In code nothing is rendered, so a
    clean tag stays as written and any other gets a zero-width space after its `<`."""
    out: list[str] = []
    pos = 0
    n = len(text)
    newlines: list[int] | None = None  # found once, for comments: no rescans of long lines
    comment_ends = True  # False once no '-->' is left after some point
    while True:
        i = text.find("<", pos)
        if i < 0:
            out.append(text[pos:])
            return "".join(out)
        nxt = text[i + 1:i + 2]
        if not (nxt.isascii() and (nxt.isalpha() or nxt in "/!?")):
            out.append(text[pos:i + 1])
            pos = i + 1
            continue
        if not code and comment_ends and text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            comment_ends = end >= 0
            if end >= 0:
                end += 3
                if newlines is None:
                    newlines = [m.start() for m in re.finditer("\n", text)]
                k = bisect.bisect_left(newlines, i)
                line_start = newlines[k - 1] + 1 if k > 0 else 0
                k = bisect.bisect_left(newlines, end)
                line_end = newlines[k] if k < len(newlines) else n
                if line_start >= pos and not text[line_start:i].strip(" \t") and not text[end:line_end].strip(" \t"):
                    out.append(text[pos:line_start])  # a comment on lines of its own: the lines go
                    pos = min(line_end + 1, n)
                else:
                    out.append(text[pos:i] + " ")  # a space, so the text around cannot join up
                    pos = end
                continue
        m = _AUTOLINK.match(text, i)
        if m and not _RISKY_AUTOLINK.search(m.group(0)):
            out.append(text[pos:m.end()])
            pos = m.end()
            continue
        m = _SRC_TAG.match(text, i)
        if m:
            clean, dropped = _rebuild(m)
            if clean is not None and not code:
                out.append(text[pos:i] + clean)
                pos = m.end()
                continue
            if clean is not None and not dropped:
                out.append(text[pos:m.end()])
                pos = m.end()
                continue
        out.append(text[pos:i] + ("<" + _ZWSP if code else "&lt;"))
        pos = i + 1


# ---- links, attribute lists, snippets ------------------------------------------------
_LINK_OPEN = re.compile(r"\]\s*\(")
_REF_DEF = re.compile(r"^([ \t>]*)\[[^\]\n]*\]:[ \t]*\n?[ \t>]*(\S+)", re.MULTILINE)
_SNIPPET = re.compile(r"^([ \t]*;*)(?=-+8<-)", re.MULTILINE)


def _defuse_links(text: str, code_at) -> list[tuple[int, str]]:
    """Insertions (position, text) that break inline links, images and reference definitions
    whose destination has an unsafe scheme: `](` becomes `]\\(`, `[id]:` becomes `\\[id]:`."""
    edits = []
    for m in _LINK_OPEN.finditer(text):
        if code_at(m.start()):
            continue
        dest = text[m.end():m.end() + 400].lstrip()
        if not safe_url(dest.split(")", 1)[0] if not dest.startswith("<") else dest[1:].split(">", 1)[0]):
            edits.append((m.end() - 1, "\\"))
    for m in _REF_DEF.finditer(text):
        if code_at(m.start(2)):
            continue
        if not safe_url(m.group(2).lstrip("<")):
            edits.append((m.start() + len(m.group(1)), "\\"))
    return edits


def _attr_list_ok(content: str) -> bool:
    """Whether `{...}` could only set attributes the sanitiser allows on any element (conservative)."""
    stripped = re.sub(r'"[^"]*"|\'[^\']*\'', '""', content)
    for token in stripped.split():
        token = token.lstrip(":")
        if not token or token == "=" or token.startswith(("#", ".", '""')):
            continue
        key = token.split("=", 1)[0].lower()
        if key and key not in _ATTRIBUTES["*"]:
            return False
    return True


def _defuse_attr_lists(text: str, code_at) -> list[tuple[int, str]]:
    """attr_list (`{: onclick=... }`) sets any attribute it is given: escape the brace of any
    brace group that names one the sanitiser would drop. `\\{` renders as `{` everywhere.
    A line with very many braces gets all of them escaped, so the work stays linear."""
    edits = []
    start = 0
    for line in text.split("\n"):
        braces = [start + j for j, ch in enumerate(line) if ch == "{"]
        close = line.rfind("}")
        for i in braces:
            if code_at(i):
                continue
            k = i
            while k > 0 and text[k - 1] == "\\":
                k -= 1
            if (i - k) % 2:  # already escaped
                continue
            if len(braces) > MAX_BRACES or (i - start < close and not _attr_list_ok(line[i - start + 1:close])):
                edits.append((i, "\\"))
        start += len(line) + 1
    return edits


MAX_BRACES = 32  # per line, before every brace on it is escaped


def _apply(text: str, edits: list[tuple[int, str]]) -> str:
    """Insert each (position, text) in one pass (linear: a file can hold many thousands)."""
    out, last = [], 0
    for pos, ins in sorted(set(edits)):
        out.append(text[last:pos])
        out.append(ins)
        last = pos
    out.append(text[last:])
    return "".join(out)


def _code_at(text: str):
    """Whether a position is inside a code span: a binary search, not a scan per brace."""
    spans = [(m.start(), m.end()) for m in _CODE_SPAN.finditer(text)]
    starts = [a for a, _ in spans]

    def at(pos: int) -> bool:
        k = bisect.bisect_right(starts, pos) - 1
        return k >= 0 and pos < spans[k][1]

    return at


_FENCE = re.compile(r"^([ \t>]*)(`{3,}|~{3,})([^\n]*)$")
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)((?:(?!\n[ \t>]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)


def _split_fences(text: str) -> list[tuple[bool, str]]:
    """(is_code, chunk): fenced code blocks (opener and closer lines included) and the rest.
    A fence that is never closed is text, as Python-Markdown reads it."""
    lines = text.split("\n")
    out: list[tuple[bool, list[str]]] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        close = None
        if m and not (m.group(2)[0] == "`" and "`" in m.group(3)):
            marker = m.group(2)
            for j in range(i + 1, len(lines)):
                s = lines[j].strip(" \t>")
                if s and set(s) == {marker[0]} and len(s) >= len(marker):
                    close = j
                    break
        if close is None:
            if out and not out[-1][0]:
                out[-1][1].append(lines[i])
            else:
                out.append((False, [lines[i]]))
            i += 1
            continue
        out.append((True, lines[i:close + 1]))
        i = close + 1
    chunks = [(code, "\n".join(ls)) for code, ls in out]
    # rejoin with the newlines between chunks
    return [(code, chunk + ("\n" if k < len(chunks) - 1 else "")) for k, (code, chunk) in enumerate(chunks)]


def neutralise(text: str) -> str:
    """The Markdown-level pass of `ProseGuard.safe` (see the module docstring)."""
    out = []
    for is_code, chunk in _split_fences(text):
        if is_code:
            first, newline, rest = chunk.partition("\n")
            # the opener's info string can carry an attribute list too
            first = re.sub(r"\{([^\n]*)\}", lambda m: m.group(0) if _attr_list_ok(m.group(1)) else "", first)
            out.append(first + newline + _scrub_markup(rest, code=True))
            continue
        code_at = _code_at(chunk)
        chunk = _apply(chunk, _defuse_links(chunk, code_at) + _defuse_attr_lists(chunk, code_at))
        pieces, last = [], 0
        for m in _CODE_SPAN.finditer(chunk):
            pieces.append(_scrub_markup(chunk[last:m.start()], code=False))
            pieces.append(_scrub_markup(m.group(0), code=True))
            last = m.end()
        pieces.append(_scrub_markup(chunk[last:], code=False))
        chunk = "".join(pieces)
        # the comment and tag pass can join text: look at links and brace groups once more
        code_at = _code_at(chunk)
        chunk = _apply(chunk, _defuse_links(chunk, code_at) + _defuse_attr_lists(chunk, code_at))
        out.append(chunk)
    # pymdownx.snippets includes files at build time (`--8<-- "path"`): never from prose
    return _SNIPPET.sub(lambda m: m.group(1) + _ZWSP, "".join(out))


# ---- the check on rendered HTML -----------------------------------------------------
_OUT_TAG = re.compile(r'<(/?)([A-Za-z][A-Za-z0-9]*)((?:\s+[A-Za-z_:][-A-Za-z0-9_:.]*(?:="[^"]*")?)*)\s*/?>')
_OUT_ATTR = re.compile(r'\s+([A-Za-z_:][-A-Za-z0-9_:.]*)(?:="([^"]*)")?')
_ALIGN = re.compile(r"text-align:\s*(left|right|center);?")


def html_problem(rendered: str) -> str | None:
    """None when every `<` in the HTML opens a well-formed tag of an allowed element with only
    allowed attributes and safe URLs (a lexical check: no parser can read it differently)."""
    pos = 0
    while True:
        i = rendered.find("<", pos)
        if i < 0:
            return None
        m = _OUT_TAG.match(rendered, i)
        if not m:
            return f"markup {rendered[i:i + 40]!r}"
        tag = m.group(2).lower()
        if tag not in _TAGS:
            return f"element <{tag}>"
        if m.group(1):
            if m.group(3).strip():
                return f"attributes on </{tag}>"
        else:
            allowed = _allowed_attrs(tag) | ({"rel"} if tag == "a" else set())
            for am in _OUT_ATTR.finditer(m.group(3)):
                key, value = am.group(1).lower(), html.unescape(am.group(2) or "")
                if key == "style" and tag in ("th", "td") and _ALIGN.fullmatch(value.strip()):
                    continue  # Python-Markdown's table alignment
                if key not in allowed:
                    return f"attribute {key} on <{tag}>"
                if key in _URL_ATTRS and not safe_url(value):
                    return f"URL {value[:40]!r} on <{tag}>"
        pos = m.end()


class ProseGuard:
    """Makes authors' prose safe for any Python-Markdown based generator (see `safe`)."""

    BUILTIN = ("toc", "tables", "fenced_code")  # MkDocs (and ProperDocs) always add these
    EXTRA = ("attr_list", "md_in_html")  # the riskiest common ones, checked even when not configured
    SKIP = frozenset({"pymdownx.snippets", "snippets"})  # reads files at build time; neutralised instead

    def __init__(self, configured=None):
        import markdown

        self.warnings: list[str] = []
        names, configs = self._extensions(configured)
        usable = []
        for name in names:
            for conf in (configs.get(name), None):
                try:
                    markdown.Markdown(extensions=[name], extension_configs={name: conf} if conf else {}).convert("x")
                except Exception:
                    continue
                usable.append((name, conf))
                break
            else:
                self.warnings.append(f"markdown extension {name!r} could not be loaded; "
                                     "the prose was checked without it")
        try:
            self.md = markdown.Markdown(extensions=[n for n, _ in usable],
                                        extension_configs={n: c for n, c in usable if c})
        except Exception:  # extensions that load alone but not together
            self.warnings.append("the configured markdown extensions could not be loaded together; "
                                 "the prose was checked with the built-in ones only")
            self.md = markdown.Markdown(extensions=[*self.BUILTIN, *self.EXTRA])

    @classmethod
    def _extensions(cls, configured) -> tuple[list[str], dict[str, dict]]:
        names: list[str] = list(cls.BUILTIN)
        configs: dict[str, dict] = {}
        items: list = []
        if isinstance(configured, dict):
            items = list(configured.items())
        elif isinstance(configured, list):
            for item in configured:
                if isinstance(item, str):
                    items.append((item, None))
                elif isinstance(item, dict):
                    items += list(item.items())
        for name, conf in items:
            if not isinstance(name, str) or name in cls.SKIP:
                continue
            if name not in names:
                names.append(name)
            if isinstance(conf, dict):
                configs[name] = {k: v for k, v in conf.items() if v is not None}  # unrun YAML tags load as None
        for name in cls.EXTRA:
            if name not in names and f"markdown.extensions.{name}" not in names:
                names.append(name)
        return names, configs

    def render(self, text: str) -> str:
        self.md.reset()
        return self.md.convert(text)

    def problem(self, text: str) -> str | None:
        try:
            return html_problem(self.render(text))
        except Exception as exc:  # an extension that fails on this text: treat as unsafe
            return f"rendering failed: {type(exc).__name__}"

    def safe(self, prose: str) -> tuple[str, str]:
        """(Markdown to write, how): "markdown" when the neutralised prose renders to allowed HTML
        only; else "html": the prose rendered and cleaned by clean_html, as one raw HTML line;
        else "text": the prose escaped in a <pre>."""
        text = neutralise(prose)
        if self.problem(text) is None:
            return text, "markdown"
        try:
            cleaned = clean_html(self.render(prose))
        except Exception:
            cleaned = None
        if cleaned is not None:
            block = '<div class="pmkb-prose">' + cleaned.replace("\r", "").replace("\n", "&#10;") + "</div>\n"
            if self.problem(block) is None:
                return block, "html"
        return '<pre class="pmkb-prose">' + html.escape(prose).replace("\n", "&#10;") + "</pre>\n", "text"


# ================================================================== writing ==
@dataclass
class Written:
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    kept: list[str] = field(default_factory=list)  # stale files left alone (changed since written)


def _inside(root: Path, path: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_target(cfg: Config, out: Path, *, force: bool) -> Path:
    """The resolved OUT, or a GenerateError (exit 2) for an OUT that must not be written."""
    real = Path(os.path.realpath(out))
    if out.exists() and not out.is_dir():
        raise GenerateError(f"{out} exists and is not a folder")
    protected = [Path(os.path.realpath(cfg.docs_dir)), Path(os.path.realpath(cfg.postmortems_root))]
    if cfg.config_file is not None:
        protected.append(Path(os.path.realpath(cfg.config_file)))
    for p in protected:
        if _inside(p, real) or _inside(real, p):
            raise GenerateError(f"{out} overlaps {p} (the site's sources); choose a folder outside docs_dir")
    if out.is_dir() and not force:
        with os.scandir(out) as it:
            if any(True for _ in it):
                raise GenerateError(f"{out} is not empty; pass --force to replace the files pmkb generates "
                                    "(nothing else in it is touched)")
    return real


def _ensure_dir(root: Path, rel_dir: str) -> Path:
    """Create rel_dir below root one level at a time; never follow a link out of root."""
    here = root
    for part in [p for p in rel_dir.split("/") if p]:
        here = here / part
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            os.mkdir(here)
            continue
        if stat.S_ISLNK(st.st_mode):
            if not _inside(root, Path(os.path.realpath(here))) or not here.is_dir():
                raise GenerateError(f"{here} is a link that leads out of OUT; nothing is written through it", 1)
        elif not stat.S_ISDIR(st.st_mode):
            raise GenerateError(f"{here} is in the way: a file where pmkb writes a folder", 1)
    if not _inside(root, Path(os.path.realpath(here))):
        raise GenerateError(f"{here} leads out of OUT; nothing is written there", 1)
    return here


def _write_atomic(folder: Path, name: str, data: bytes) -> None:
    target = folder / name
    if os.path.lexists(target) and os.path.isdir(target) and not os.path.islink(target):
        raise GenerateError(f"{target} is a folder where pmkb writes a file", 1)
    write_atomic(target, data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tree(files: dict[str, bytes], out: Path, root: Path) -> Written:
    """Write `files` below `root` (the resolved OUT). Files with the same bytes are left alone;
    files the previous run wrote and this one does not are removed if nobody changed them."""
    done = Written()
    root.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(root)
    for rel in sorted(files):
        _check_rel(rel)
        folder = _ensure_dir(root, posixpath.dirname(rel))
        name = posixpath.basename(rel)
        target = folder / name
        data = files[rel]
        if not os.path.islink(target) and target.is_file():
            try:
                if target.read_bytes() == data:
                    done.unchanged += 1
                    continue
            except OSError:
                pass
        _write_atomic(folder, name, data)
        done.written += 1
    for rel, digest in sorted(previous.items()):
        if rel in files:
            continue
        try:
            _check_rel(rel)
        except GenerateError:
            continue
        target = root / rel
        if os.path.islink(target) or not target.is_file() or not _inside(root, Path(os.path.realpath(target.parent))):
            continue
        try:
            if _sha(target.read_bytes()) != digest:
                done.kept.append(rel)
                continue
            target.unlink()
        except OSError:
            done.kept.append(rel)
            continue
        done.removed += 1
        parent = target.parent
        while parent != root and _inside(root, parent):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent
    manifest = (json.dumps({"generator": "pmkb generate", "files": {k: _sha(v) for k, v in sorted(files.items())}},
                           indent=1, sort_keys=True) + "\n").encode("utf-8")
    target = root / MANIFEST
    if os.path.islink(target) or not target.is_file() or target.read_bytes() != manifest:
        _write_atomic(root, MANIFEST, manifest)
    return done


def _read_manifest(root: Path) -> dict[str, str]:
    path = root / MANIFEST
    if os.path.islink(path) or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data.get("files", {})
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def generate(cfg: Config, out: Path, *, as_of: date | None = None, force: bool = False,
             edition: str | None = None) -> tuple[Tree, Written]:
    out = Path(out)
    root = check_target(cfg, out, force=force)
    tree = build_tree(cfg, as_of=as_of, edition=edition)
    try:
        written = write_tree(tree.files, out, root)
    except OSError as exc:
        raise GenerateError(f"cannot write below {out}: {exc.strerror or exc}", 1) from None
    return tree, written
