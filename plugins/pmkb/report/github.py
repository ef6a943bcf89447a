"""GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` line per diagnostic.

GitHub turns each line into an annotation on the pull request's diff. Escaping follows the
runner's rules (actions/toolkit `command.ts`): in the message `%`, CR and LF; in property
values additionally `:` and `,`. Escaping every newline keeps each command on one line, so a
message can never start a second command.
"""

from __future__ import annotations

_COMMAND = {"error": "error", "warning": "warning", "notice": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(d) -> str:
    end_line, end_column = d.span.end()
    props = {
        "file": d.path.replace("\\", "/"),
        "line": str(d.span.line),
        "col": str(d.span.column),
        "endLine": str(end_line),
        "endColumn": str(end_column),
        "title": f"{d.rule} ({d.code})",
    }
    message = d.message
    if d.suggestion:
        message += "\nhelp: " + d.suggestion
    joined = ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
    return f"::{_COMMAND.get(d.severity, 'warning')} {joined}::{escape_data(message)}"


def render_github(result, *, color: bool = False, **_) -> str:
    return "\n".join(command(d) for d in result.diagnostics)
