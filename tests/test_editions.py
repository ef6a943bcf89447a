"""Editions: build each one and scan every output file for what it must not contain."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sitetools import build, copy_sample, sample_postmortems

MARKED = re.compile(r"<!--\s*pmkb:(internal|restricted)\s*-->(.*?)<!--\s*pmkb:end\s*-->", re.S)


def people(fm: dict) -> set[str]:
    names = set(fm.get("authors") or []) | set((fm.get("roles") or {}).values())
    names |= {a["owner"] for a in fm.get("action_items") or [] if a.get("owner")}
    return {n for n in names if n}


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("editions"))
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    out = {}
    for edition in ("public", "internal", "restricted"):
        for p in cfg["plugins"]:
            if isinstance(p, dict) and "pmkb" in p:
                p["pmkb"]["edition"] = edition
        (root / f"mkdocs-{edition}.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        proc = build(root, "--strict", "-f", f"mkdocs-{edition}.yml", out=f"site-{edition}")
        assert proc.returncode == 0, proc.stderr
        out[edition] = root / f"site-{edition}"
    return root, out


def every_output(site: Path) -> str:
    """All text the edition publishes: pages, search index, sitemap, exports."""
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(site.rglob("*"))
                     if p.is_file() and p.suffix in (".html", ".json", ".xml", ".csv", ".txt"))


def test_the_sample_has_every_kind_of_visibility(editions):
    root, _ = editions
    kinds = {fm.get("visibility", "internal") for _, fm in sample_postmortems(root)}
    assert kinds == {"public", "internal", "restricted"}
    texts = " ".join(md.read_text() for md, _ in sample_postmortems(root))
    assert {m.group(1) for m in MARKED.finditer(texts)} == {"internal", "restricted"}


@pytest.mark.parametrize("edition", ["public", "internal", "restricted"])
def test_nothing_excluded_appears_anywhere_in_the_edition(editions, edition):
    root, sites = editions
    assert_edition(root, sites[edition], every_output(sites[edition]), edition)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The same three editions written by `pmkb generate` (plain Markdown and exports)."""
    root = copy_sample(tmp_path_factory.mktemp("generated-editions"))
    for edition in ("public", "internal", "restricted"):
        proc = subprocess.run([sys.executable, "-m", "pmkb", "generate", f"out-{edition}", "--edition", edition],
                              cwd=root, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.parametrize("edition", ["public", "internal", "restricted"])
def test_nothing_excluded_appears_in_the_generated_tree(generated, edition):
    out = generated / f"out-{edition}"
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(out.rglob("*"))
                     if p.is_file() and p.suffix in (".md", ".json", ".csv"))
    assert_edition(generated, out, text, edition)


def assert_edition(root: Path, site: Path, output: str, edition: str) -> None:
    pms = sample_postmortems(root)
    allowed = {"public": {"public"}, "internal": {"public", "internal"},
               "restricted": {"public", "internal", "restricted"}}[edition]
    for md, fm in pms:
        visible = fm.get("visibility", "internal") in allowed
        assert (fm["id"] in output) == visible, (edition, fm["id"])
        for m in MARKED.finditer(md.read_text()):
            passage = " ".join(m.group(2).split())[:60]
            shown = m.group(1) in {"public": set(), "internal": {"internal"}, "restricted": {"internal", "restricted"}}[edition]
            plain = " ".join(re.sub(r"<[^>]+>", " ", output).split())
            assert (passage.lstrip("- ") in plain) == (shown and visible), (edition, passage)
    if edition == "public":
        everyone = set().union(*(people(fm) for _, fm in pms))
        for name in everyone:
            assert name not in output, name
        data = json.loads((site / "pmkb/postmortems.json").read_text())
        assert all(p["impact"]["revenue"] is None and not p["authors"] and not p["roles"] for p in data["postmortems"])
        assert all(a["owner"] is None for p in data["postmortems"] for a in p["action_items"])
        assert not (site / "actions").exists()


def test_public_pages_have_the_status_page_shape(editions):
    root, sites = editions
    md, fm = next((md, fm) for md, fm in sample_postmortems(root) if fm.get("visibility") == "public")
    page = (sites["public"] / md.relative_to(root / "postmortems").with_suffix("") / "index.html").read_text()
    headings = re.findall(r'<h2 id="([^"]+)"', page)
    assert headings[:1] == ["key-times"] and "what-we-are-changing" in headings
    assert "summary" in headings and "impact" in headings
    assert "root-cause" not in headings and "lessons-learned" not in headings


def test_check_warns_when_a_public_postmortem_names_people(tmp_path):
    root = copy_sample(tmp_path)
    md = next((root / "postmortems").rglob("INC-2025-002-*.md"))
    fm = yaml.safe_load(md.read_text().split("---", 2)[1])
    name = sorted(people(fm))[0]
    md.write_text(md.read_text() + f"\nThanks to {name} and to Globex Corp for the report.\n")
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["customers"] = ["Globex Corp"]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json", str(md.relative_to(root))],
                          cwd=root, capture_output=True, text=True)
    rules = sorted(d["rule"] for d in json.loads(proc.stdout)["diagnostics"] if d["rule"].startswith("public-"))
    assert rules == ["public-names-customer", "public-names-person"]
