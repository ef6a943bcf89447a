"""Helpers for tests that build real sites: copy the sample, run MkDocs, serve pages."""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "SOURCE_DATE_EPOCH": "1767225600"}  # 2026-01-01


def copy_sample(dest: Path, *, as_of: str | None = "2025-06-30") -> Path:
    """The repository's sample site (mkdocs.yml + postmortems/) in a temporary folder."""
    shutil.copytree(REPO / "postmortems", dest / "postmortems")
    cfg = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    for i, p in enumerate(cfg["plugins"]):
        if isinstance(p, dict) and "pmkb" in p and as_of:
            p["pmkb"] = {**(p["pmkb"] or {}), "as_of": as_of}
        elif p == "pmkb" and as_of:
            cfg["plugins"][i] = {"pmkb": {"as_of": as_of}}
    (dest / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def build(root: Path, *args: str, out: str = "site") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", out, *args], cwd=root,
                          capture_output=True, text=True, env=ENV, timeout=300)


def same_as_a_fresh_build(root: Path, served: Path, out: Path) -> dict:
    """The files of a fresh build of `root` into `out`, after checking that `served` (what the
    serve rebuilds wrote) has exactly them, byte for byte."""
    proc = build(root, out=str(out))
    assert proc.returncode == 0, proc.stderr
    fresh = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = {p.relative_to(served): p.read_bytes() for p in served.rglob("*") if p.is_file()}
    assert sorted(again) == sorted(fresh)
    assert [str(p) for p in sorted(fresh) if again[p] != fresh[p]] == []
    return fresh


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8-sig")
    return yaml.safe_load(text.split("---", 2)[1])


def sample_postmortems(root: Path, edition: str | None = None) -> list[tuple[Path, dict]]:
    """The sample's postmortems with their front matter; with `edition`, only those it shows."""
    allowed = {None: {"public", "internal", "restricted"}, "restricted": {"public", "internal", "restricted"},
               "internal": {"public", "internal"}, "public": {"public"}}[edition]
    return [(p, fm) for p in sorted((root / "postmortems").rglob("*.md")) if p.name != "index.md"
            for fm in [front_matter(p)] if fm.get("visibility", "internal") in allowed]


def site_postmortems(root: Path) -> list[tuple[Path, dict]]:
    """What the default (internal) edition of the sample site shows."""
    return sample_postmortems(root, "internal")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@contextmanager
def serve(directory: Path):
    """Serve a built site from 127.0.0.1 on a free port."""
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


QUOTED = """\
---
id: INC-2024-901
title: "It's down: [x](javascript:alert(11)) # not a comment"
date: 2024-05-02
severity: SEV3
services: ["x: y", "'svc'", "&anchor"]
tags: ["[x](javascript:alert(14))", "a: b", "*alias", "- dash"]
problem: "p: it's \\"quoted\\""
times:
  started: "10:00"
  resolved: "10:30"
---

## Summary

Fine.
"""
QUOTED_LABELS = ("It's down: [x](javascript:alert(11)) # not a comment", "[x](javascript:alert(14))", "a: b",
                 "*alias", "- dash", "x: y", "'svc'", "&anchor", 'Problem: p: it\'s "quoted"')


def assert_titles_intact(site: Path) -> None:
    """Every page of a site built from QUOTED: no live javascript: link, no front matter shown as
    text, and each hostile label the title of some page."""
    titles = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        assert 'href="javascript:' not in text.lower(), page
        article = text.split("<article", 1)[-1].split("</article>", 1)[0]
        shown = html.unescape(re.sub(r"<[^>]+>", " ", article))
        assert not re.search(r"^\s*title:", shown, re.M), (page, shown[:300])
        titles.append(html.unescape(re.search(r"<title>(.*?)</title>", text, re.S).group(1)).strip())
    for label in QUOTED_LABELS:
        assert any(t == label or t.startswith(f"{label} - ") for t in titles), (label, titles)
