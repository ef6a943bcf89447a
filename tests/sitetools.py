"""Helpers for tests that build real sites: copy the sample, run MkDocs, serve pages."""

from __future__ import annotations

import functools
import http.server
import os
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
