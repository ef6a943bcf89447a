"""SARIF 2.1.0 (Static Analysis Results Interchange Format), e.g. for GitHub code scanning.

One run; the driver lists every pmkb rule (not only those that fired) so viewers can show a
rule's help for any result. Results come in the diagnostics' order, and nothing in the log
depends on the time, so the same input gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from ..core.rules.registry import BY_STATUS, REGISTRY

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/pmkb/pmkb"
SRCROOT = "%SRCROOT%"

# pmkb severity -> SARIF level. A "status" rule is a warning in drafts and an error once in
# review (config `status_levels`); its default is the milder of the two.
_LEVELS = {"error": "error", "warning": "warning", "notice": "note", BY_STATUS: "warning"}


def _level(severity: str) -> str:
    return _LEVELS.get(severity, "warning")


def _fence(text: str) -> str:
    """A fenced code block that the text itself cannot close."""
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def reporting_descriptor(rule) -> dict:
    explanation = rule.explanation or rule.summary
    text = [explanation]
    markdown = [f"**{rule.summary}**"]
    if rule.explanation:
        markdown.append(rule.explanation)
    if rule.bad:
        text.append("Flagged: " + rule.bad)
        markdown.append("Flagged:\n\n" + _fence(rule.bad))
    if rule.good:
        text.append("Better: " + rule.good)
        markdown.append("Better:\n\n" + _fence(rule.good))
    level_note = ("The level follows the postmortem's status (config `status_levels`: "
                  "warning for drafts, error in review or published).")
    if rule.level == BY_STATUS:
        text.append(level_note)
        markdown.append(level_note)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": explanation},
        "help": {"text": "\n\n".join(text), "markdown": "\n\n".join(markdown)},
        "defaultConfiguration": {"level": _level(rule.level)},
        "properties": {"tags": [rule.family]},
    }


def _artifact_location(path: str) -> dict:
    """Relative paths below the current directory are relative to %SRCROOT%; anything else
    (absolute, or climbing out with ..) becomes an absolute file URI."""
    posix = path.replace("\\", "/")
    pure = PurePosixPath(posix)
    if os.path.isabs(path) or pure.is_absolute() or ".." in pure.parts:
        return {"uri": Path(os.path.abspath(path)).as_uri()}
    return {"uri": quote(posix, safe="/"), "uriBaseId": SRCROOT}


def _region(span) -> dict:
    line = max(1, span.line)
    column = max(1, span.column)
    end_line, end_column = span.end()
    end_line, end_column = max(1, end_line), max(1, end_column)
    if (end_line, end_column) < (line, column):  # never an inverted region
        end_line, end_column = line, column
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def sarif_log(result) -> dict:
    from .. import __version__

    rules = list(REGISTRY)
    index_of = {r.code: i for i, r in enumerate(rules)}
    artifacts: list[dict] = []
    artifact_index: dict[str, int] = {}
    results = []
    for d in result.diagnostics:
        if d.path not in artifact_index:
            artifact_index[d.path] = len(artifacts)
            artifacts.append({"location": _artifact_location(d.path)})
        text = d.message
        if d.suggestion:
            text += "\nSuggestion: " + d.suggestion
        entry = {
            "ruleId": d.code,
            "level": _level(d.severity),
            "message": {"text": text},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {**_artifact_location(d.path), "index": artifact_index[d.path]},
                    "region": _region(d.span),
                },
            }],
        }
        if d.code in index_of:
            entry["ruleIndex"] = index_of[d.code]
        if d.suggestion:
            entry["properties"] = {"suggestion": d.suggestion}
        results.append(entry)
    run = {
        "tool": {
            "driver": {
                "name": "pmkb",
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [reporting_descriptor(r) for r in rules],
            },
        },
        "originalUriBaseIds": {SRCROOT: {"uri": Path(os.getcwd()).as_uri().rstrip("/") + "/"}},
        "artifacts": artifacts,
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(result, *, color: bool = False, **_) -> str:
    return json.dumps(sarif_log(result), indent=2, ensure_ascii=False)
