"""Material's nav rendered once for the pages outside it (pmkb.nav_memo): the site must be
byte for byte the one MkDocs makes when it renders the nav into every page, whatever the
nav features, and the memo must stand aside where a template or a plugin could make the nav
differ from page to page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sitetools import ENV, copy_sample

FEATURES = ["navigation.tabs", "navigation.sections", "navigation.indexes", "navigation.prune",
            "navigation.expand", "toc.integrate", "navigation.path"]


def _configure(root: Path, features: list[str], **extra) -> None:
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["theme"]["features"] = features
    cfg.update(extra)
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["workers"] = 2  # the child renders templates too: its memo must agree
            p["pmkb"]["exclude"] = ["guides", "misc"]  # the user's own pages, not postmortems
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # pages of the user's: one in the nav, nested, and one outside it at another depth
    (root / "postmortems" / "guides" / "deep").mkdir(parents=True)
    (root / "postmortems" / "guides" / "on-call.md").write_text("# The on-call guide\n\nWho answers.\n")
    (root / "postmortems" / "guides" / "deep" / "drill.md").write_text(
        "---\nicon: material/book-open-variant\n---\n# A drill\n\nHow we practise.\n")
    (root / "postmortems" / "misc").mkdir()
    (root / "postmortems" / "misc" / "notes.md").write_text("# Notes\n\nNot in the nav.\n")


def _build(root: Path, env: dict) -> tuple[subprocess.CompletedProcess, dict[str, bytes]]:
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-v", "-d", "site"], cwd=root,
                          capture_output=True, text=True, env={**ENV, "PMKB_NO_CACHE": "1", **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    site = root / "site"
    return proc, {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def _reused(stderr: str) -> int | None:
    found = re.search(r"nav rendered (\d+) times for the pages outside it, reused for (\d+)", stderr)
    return found and int(found.group(2))


def _nav(html: bytes) -> str:
    """The primary nav's HTML (the table of contents' sidebar after it included, if any)."""
    text = html.decode()
    start = text.index('<nav class="md-nav md-nav--primary')
    return text[start:text.index('class="md-content"', start)]


USER_NAV = {"nav": [{"Guides": ["guides/on-call.md", "guides/deep/drill.md"]}]}  # pmkb adds its section


@pytest.mark.parametrize("features,extra", [([], {}), (FEATURES, USER_NAV),
                                            (["navigation.tabs", "navigation.sections"], {})],
                         ids=["plain", "every-nav-feature-user-nav", "tabs-and-sections"])
def test_the_site_is_the_one_mkdocs_makes_rendering_the_nav_into_every_page(tmp_path, features, extra):
    sites, logs = {}, {}
    for mode, env in (("memo", {}), ("every-page", {"PMKB_NAV_MEMO": "off"})):
        root = copy_sample(tmp_path / mode)
        _configure(root, features, repo_url="https://example.com/org/postmortems",
                   extra={"homepage": "https://example.com/"}, not_in_nav="/misc/", **extra)
        logs[mode], sites[mode] = _build(root, env)
    assert _reused(logs["every-page"].stderr) is None
    assert _reused(logs["memo"].stderr) > 0
    assert sites["memo"].keys() == sites["every-page"].keys()
    differ = [k for k in sites["memo"] if sites["memo"][k] != sites["every-page"][k]]
    assert not differ, differ[:10]
    # what it reused differs from page to page where it must: relative links, the active item
    postmortem = next(k for k in sites["memo"] if k.startswith("2025/INC-") and k.endswith("index.html"))
    service = next(k for k in sites["memo"] if re.fullmatch(r"services/[^/]+/index\.html", k))
    notes, guide = "misc/notes/index.html", "guides/deep/drill/index.html"
    assert 'href="../../guides/on-call/"' in _nav(sites["memo"][postmortem])
    assert 'href="../../on-call/"' in _nav(sites["memo"][guide])
    if "navigation.prune" not in features:  # pruned, the section shows its first link alone
        # two pages outside the nav at the same depth, which see the nav's service index differently
        assert 'href="../../services/"' in _nav(sites["memo"][postmortem])
        assert 'href="../"' in _nav(sites["memo"][service])
    assert "md-nav__link--active" in _nav(sites["memo"][guide])
    assert "md-nav__link--active" not in _nav(sites["memo"][notes])


def test_a_theme_override_of_the_nav_turns_the_memo_off(tmp_path):
    """An override may read anything of the page: here, its title, in every page's nav."""
    root = copy_sample(tmp_path / "site")
    _configure(root, ["navigation.sections"])
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["theme"]["custom_dir"] = "overrides"
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (root / "overrides" / "partials").mkdir(parents=True)
    (root / "overrides" / "partials" / "nav.html").write_text(
        '<nav class="md-nav md-nav--primary" data-md-level="0">Now reading: {{ page.title }}</nav>\n')
    proc, site = _build(root, {})
    assert _reused(proc.stderr) is None
    pages = [k for k in site if k.startswith("2025/INC-") and k.endswith("index.html")]
    titles = {re.search(r"Now reading: ([^<]*)<", site[k].decode()).group(1) for k in pages}
    assert len(pages) > 1 and len(titles) == len(pages)


def test_a_page_context_hook_of_another_plugin_turns_the_memo_off(tmp_path):
    """Another plugin's page hook could change what the nav shows for one page (its title)."""
    root = copy_sample(tmp_path / "site")
    _configure(root, ["navigation.sections"])
    (root / "hooks.py").write_text(
        "def on_page_context(context, page, nav, **kwargs):\n"
        "    nav.items[0].title = 'Home, seen from ' + page.file.src_uri\n"
        "    return context\n")
    (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
    proc, site = _build(root, {})
    assert _reused(proc.stderr) is None
    pages = [k for k in site if k.startswith("2025/INC-") and k.endswith("index.html")]
    assert all(f"Home, seen from {k.removesuffix('/index.html')}.md" in site[k].decode() for k in pages)


def test_a_disabled_plugin_leaves_the_nav_to_mkdocs(tmp_path):
    """`enabled: false` (the benchmarks' baseline) must build what MkDocs builds without pmkb."""
    root = copy_sample(tmp_path / "site")
    _configure(root, ["navigation.sections"])
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["enabled"] = False
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc, site = _build(root, {})
    assert "md-nav--primary" in site["misc/notes/index.html"].decode()  # the user's pages make a nav
    assert _reused(proc.stderr) is None and "pmkb:" not in proc.stderr
