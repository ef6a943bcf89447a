"""A short Markdown summary for a pull-request comment.

Everything that comes from a postmortem (titles, ids, paths, messages that quote the text)
is escaped, so a hostile title cannot add markup, HTML, links or @-mentions to the comment.
"""

from __future__ import annotations

import re

from ..core.durations import format_minutes
from ..core.metrics import postmortem_metrics

BLAME_FAMILY = "PM6"
_SEVERITY_LABEL = {"error": "error", "warning": "warning", "notice": "notice"}
# Characters that mean something inline in GitHub Markdown (emphasis, code, links and images,
# tables, strikethrough, math, heading closers, escapes). Values never start a line (they are
# collapsed to one line and always follow a prefix), so line-start markers need no escape.
_SPECIAL = re.compile(r"([\\`*_\[\]#!|~$])")
_MENTION = re.compile(r"@(?=\w)")


def escape(value) -> str:
    """Plain text, safe anywhere inline in GitHub Markdown: one line, no markup, no HTML."""
    text = " ".join(str(value).split())  # newlines could start a new block
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return _MENTION.sub("@\u2060", text)  # a word joiner after @ stops mentions from pinging


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def summary(result) -> str:
    e, w, n = result.count("error"), result.count("warning"), result.count("notice")
    files = _plural(result.files_checked, "file")
    if not (e or w):
        tail = f" ({_plural(n, 'notice')})" if n else ""
        return f"✅ Checked {files}: no errors or warnings{tail}."
    mark = "❌" if e else "⚠️"
    parts = [_plural(e, "error"), _plural(w, "warning")]
    if n:
        parts.append(_plural(n, "notice"))
    return f"{mark} Checked {files}: " + ", ".join(parts) + "."


def _bullet(d) -> str:
    line = f"- **{_SEVERITY_LABEL.get(d.severity, 'warning')}** `{d.rule}` line {d.span.line}: {escape(d.message)}"
    if d.suggestion and d.code.startswith(BLAME_FAMILY):
        line += f" — {escape(d.suggestion)}"
    return line


def checked_postmortems(result) -> list:
    """The postmortems this check covered: `result.checked_paths` when the result carries it;
    else all of them when every file was checked; else (a subset was checked and the result
    does not say which) those with findings, so nothing outside the change is listed."""
    pms = [pm for pm in result.kb.postmortems if pm.id]
    paths = getattr(result, "checked_paths", None)
    if paths is None:
        if result.files_checked >= len(result.kb.postmortems):
            return pms
        paths = {d.path for d in result.diagnostics}
    paths = set(paths)
    return [pm for pm in pms if pm.path in paths]


def digest(pm, cfg) -> str:
    parts = []
    if pm.severity:
        parts.append(escape(pm.severity))
    minutes = postmortem_metrics(pm, cfg).ttr if not pm.fatal else None
    if minutes is None:
        minutes = pm.duration_minutes
    if minutes is not None:
        parts.append(format_minutes(minutes))
    items = len(pm.action_items)
    text = _plural(items, "action item") if items else "no action items"
    no_owner = sum(1 for a in pm.action_items if not a.owner)
    if no_owner:
        text += f" ({no_owner} without owner)"
    parts.append(text)
    title = escape(pm.title) if pm.title else "_(no title)_"
    return f"- **{escape(pm.id)}** {title} — " + ", ".join(parts)


def render_markdown(result, *, color: bool = False, **_) -> str:
    lines = ["## pmkb check", "", summary(result)]
    for path, diags in result.by_path().items():
        shown = [d for d in diags if d.severity != "notice"]
        notices = len(diags) - len(shown)
        lines += ["", f"### {escape(path)}", ""]
        lines += [_bullet(d) for d in shown]
        if notices:
            lines.append(f"- {_plural(notices, 'notice')} (run `pmkb check` to see {'it' if notices == 1 else 'them'})")
    pms = checked_postmortems(result)
    if pms:
        lines += ["", "### Postmortems in this change", ""]
        lines += [digest(pm, result.kb.config) for pm in pms]
    return "\n".join(lines)
