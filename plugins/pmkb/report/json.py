"""Machine output: one object, paths relative to the current directory."""

from __future__ import annotations

import json


def diagnostic_dict(d) -> dict:
    return {
        "path": d.path,
        "line": d.span.line,
        "column": d.span.column,
        "end_line": d.span.end_line or d.span.line,
        "end_column": d.span.end_column or d.span.column,
        "code": d.code,
        "rule": d.rule,
        "severity": d.severity,
        "message": d.message,
        "suggestion": d.suggestion,
    }


def render_json(result, **_) -> str:
    return json.dumps(
        {"files_checked": result.files_checked, "diagnostics": [diagnostic_dict(d) for d in result.diagnostics]},
        indent=2,
        ensure_ascii=False,
    )
