"""Blank out what prose rules must not read, keeping every other character in place.

Fenced code, inline code spans, HTML comments, link and image URLs, bare URLs,
link reference definitions and block quotes (quoted log lines, chat) become
spaces, so an offset in the masked text is the same offset in the original and
line/column positions stay exact.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_LINK_TARGET = re.compile(r"\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<(?:https?|mailto|ftp):[^>\s]*>", re.I)
_BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>()\[\]]+", re.I)
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$", re.M)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_QUOTE = re.compile(r"^ {0,3}>.*$", re.M)
_INDENTED_LOG = re.compile(r"^(?: {4,}|\t)\S.*$", re.M)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


def _blank(m: re.Match) -> str:
    return re.sub(r"[^\n]", " ", m.group(0))


def _blank_group(group: int):
    def sub(m: re.Match) -> str:
        s, e = m.span(group)
        full = m.group(0)
        a, b = s - m.start(), e - m.start()
        return full[:a] + re.sub(r"[^\n]", " ", full[a:b]) + full[b:]

    return sub


def mask_markdown(text: str) -> str:
    """Same length as `text`; code, comments, URLs and quotes replaced by spaces."""
    if not text:
        return text
    # single characters first: looking for one is a memchr, far cheaper than a substring search
    if "`" in text or "~" in text or "\t" in text or "\n    " in text or text.startswith("    "):
        out = _mask_blocks(text)
    else:  # no fence and no indented line: the line by line pass would change nothing
        out = text
    if "<" in out and "<!--" in out:
        out = _COMMENT.sub(_blank, out)
    if "`" in out:
        out = _CODE_SPAN.sub(_blank, out)
    if "]" in out and "](" in out:
        out = _LINK_TARGET.sub(_blank_group(1), out)
    if "<" in out or (":" in out and "://" in out):
        out = _AUTOLINK.sub(_blank, out)
        out = _BARE_URL.sub(_blank, out)
        out = _HTML_TAG.sub(_blank, out)
    if "]" in out and "]:" in out:
        out = _REF_DEF.sub(_blank, out)
    if ">" in out:
        out = _QUOTE.sub(_blank, out)
    return out


def _mask_blocks(text: str) -> str:
    """Fenced code and indented blocks (code or pasted logs) become spaces."""
    lines = text.split("\n")
    fence = None
    prev_blank = True
    in_list = False
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            lines[i] = " " * len(line)
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            lines[i] = " " * len(line)
            continue
        is_item = bool(_LIST_ITEM.match(line))
        # an indented block after a blank line, outside a list, is code (or pasted logs)
        if prev_blank and not in_list and _INDENTED_LOG.match(line) and not is_item:
            lines[i] = " " * len(line)
            continue
        if is_item:
            in_list = True
        elif line.strip() and not line[:1].isspace():
            in_list = False
        prev_blank = not line.strip()
    return "\n".join(lines)
