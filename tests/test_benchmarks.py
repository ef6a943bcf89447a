"""The benchmark tools on a small synthetic knowledge base (benchmarks/generate.py): what
they report is what the README's figures come from (plugin_time.py's serve share among them)."""

from __future__ import annotations

import re
import subprocess
import sys

from sitetools import ENV, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from generate import generate, write_config  # noqa: E402


def _knowledge_base(root):
    """300 postmortems: enough for pmkb's code in the pages' render to show in tenths of a millisecond."""
    generate(root, 300)
    write_config(root)
    return root


def _plugin_time(root, env: dict) -> tuple[float, float, dict[str, float]]:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "plugin_time.py"), str(root / "mkdocs.yml"),
                           str(root / "site"), "--serve"], capture_output=True, text=True, timeout=300,
                          env={**ENV, "PMKB_NO_CACHE": "1", **env})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    head = re.match(r"build ([\d.]+) s; plugin events ([\d.]+) s\n", proc.stdout)
    parts = {name.strip(): float(secs) for name, secs in re.findall(r"^  (.+?)\s+([\d.]+) s$", proc.stdout, re.M)}
    return float(head.group(1)), float(head.group(2)), parts


def test_the_serve_share_counts_pmkb_code_inside_mkdocs_render(tmp_path):
    """The plugin's own code in Page.render of each page is part of its share: the header render
    and the render memo (kept renders, under serve). Without the header render
    (PMKB_HEADER_RENDER=markdown) there is neither, and none to count."""
    for env in ({}, {"PMKB_RENDER_MEMO": "off"}):
        root = _knowledge_base(tmp_path / f"kept-out-{len(env)}")
        rebuild, share, parts = _plugin_time(root, env)
        assert 0 < parts["page render"] < share < rebuild
        assert abs(sum(parts.values()) - share) < 0.002  # the share is the parts, rounded
        assert "on_files" in parts and "on_page_markdown" in parts
    root = _knowledge_base(tmp_path / "whole")
    _, _, parts = _plugin_time(root, {"PMKB_HEADER_RENDER": "markdown"})
    assert "page render" not in parts and "on_files" in parts
