"""Human output: `path:line:col: severity rule message`, grouped by file, then a summary."""

from __future__ import annotations

import click

_COLOURS = {"error": "red", "warning": "yellow", "notice": "cyan"}


def render_text(result, *, color: bool = False) -> str:
    lines: list[str] = []
    for _path, diags in result.by_path().items():
        for d in diags:
            sev = click.style(d.severity, fg=_COLOURS[d.severity], bold=True) if color else d.severity
            loc = f"{d.path}:{d.span.line}:{d.span.column}:"
            lines.append(f"{click.style(loc, bold=True) if color else loc} {sev} {d.rule} {d.message} [{d.code}]")
            if d.suggestion:
                for i, s in enumerate(d.suggestion.splitlines()):
                    lines.append(("    help: " if i == 0 else "          ") + s)
        lines.append("")
    lines.append(summary_line(result))
    return "\n".join(lines)


def summary_line(result) -> str:
    e, w, n = result.count("error"), result.count("warning"), result.count("notice")
    files = f"{result.files_checked} file{'s' * (result.files_checked != 1)}"
    if not (e or w or n):
        return f"Checked {files}: no problems."
    parts = [f"{e} error{'s' * (e != 1)}", f"{w} warning{'s' * (w != 1)}"]
    if n:
        parts.append(f"{n} notice{'s' * (n != 1)}")
    return f"Checked {files}: " + ", ".join(parts) + "."
