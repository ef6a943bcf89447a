"""The MkDocs plugin, tested by building real sites and reading the HTML they produce."""

from __future__ import annotations

import hashlib
import html
import json
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import yaml

from sitetools import ENV, QUOTED, REPO, assert_titles_intact, build, copy_sample, front_matter, site_postmortems


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("sample"))
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    return root


def page_for(root: Path, md: Path) -> Path:
    rel = md.relative_to(root / "postmortems").with_suffix("")
    return root / "site" / rel / "index.html"


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def primary_nav(page: str) -> str:
    return page.split("md-sidebar--primary", 1)[1].split("md-sidebar--secondary", 1)[0]


def visible(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", html_text))


# ---------------------------------------------------------------- pages --
def test_every_postmortem_page_has_card_times_timeline_and_actions(sample):
    for md, fm in site_postmortems(sample):
        page = text_of(page_for(sample, md))
        assert f'data-pmkb-id="{fm["id"]}"' in page
        sev = str(fm["severity"]).upper().replace("P", "SEV")
        assert f"pmkb-sev--{sev.lower()}" in page
        assert "Key times" in page
        timeline = fm.get("timeline") or []
        if timeline:
            table = page.split('data-pmkb="timeline"', 1)[1].split("</table>", 1)[0]
            assert table.count("<tr>") == len(timeline) + 1  # header + one row per event
            assert page.count('class="pmkb-axis__dot') == len(timeline)
        items = fm.get("action_items") or []
        if items:
            table = page.split('data-pmkb="actions"', 1)[1].split("</table>", 1)[0]
            assert table.count("<tr") == len(items) + 1
            for item in items:
                assert html.escape(item["owner"]) in table
        # the author's prose follows the generated header
        assert page.index("Key times") < page.index('id="summary"')


def test_derived_times_and_targets_match_the_front_matter(sample):
    md = next(p for p in (sample / "postmortems").rglob("INC-2024-001-*.md"))
    fm = front_matter(md)
    day = date.fromisoformat(str(fm["date"]))

    def at(v):
        h, m = map(int, str(v).split(":"))
        return datetime(day.year, day.month, day.day, h, m, tzinfo=timezone.utc)

    t = {k: at(v) for k, v in fm["times"].items()}
    ttd = int((t["detected"] - t["started"]).total_seconds() // 60)
    tta = int((t["acknowledged"] - t["detected"]).total_seconds() // 60)
    text = visible(text_of(page_for(sample, md)))
    assert re.search(rf"Time to detect\s+{ttd}m", text)
    assert re.search(rf"Time to acknowledge\s+{tta}m", text)
    # SEV2: acknowledge within 15 minutes, resolve within 4 hours
    ttr = (t["resolved"] - t["started"]).total_seconds() / 60
    assert re.search(r"acknowledge within 15m\):\s+" + ("met" if tta <= 15 else "missed"), text)
    assert re.search(r"resolve within 4h\):\s+" + ("met" if ttr <= 240 else "missed"), text)


def test_overdue_badge_follows_as_of(sample):
    as_of = date(2025, 6, 30)
    for md, fm in site_postmortems(sample):
        page = text_of(page_for(sample, md))
        expected = sum(1 for a in fm.get("action_items") or []
                       if a.get("due") and date.fromisoformat(str(a["due"])) < as_of
                       and a.get("status", "open") not in ("done", "wont-do"))
        assert page.count("pmkb-badge--overdue") == expected, md.name


def test_related_links_go_both_ways(sample):
    pms = site_postmortems(sample)
    urls = {fm["id"]: page_for(sample, md) for md, fm in pms}
    pairs = [(fm["id"], r) for _, fm in pms for r in fm.get("related") or []]
    assert pairs, "the sample needs related links"
    for src, dst in pairs:
        assert dst in text_of(urls[src]).split("Related incidents", 1)[1]
        assert src in text_of(urls[dst]).split("Related incidents", 1)[1]


def test_index_pages_list_what_they_should(sample):
    pms = site_postmortems(sample)
    incidents = text_of(sample / "site/incidents/index.html")
    for _, fm in pms:
        assert f">{fm['id']}</a>" in incidents
    sev1 = {fm["id"] for _, fm in pms if str(fm["severity"]).upper() in ("SEV1", "P1")}
    page = text_of(sample / "site/severities/sev1/index.html")
    assert set(re.findall(r">(INC-\d{4}-\d{3})</a>", page)) == sev1
    checkout = {fm["id"] for _, fm in pms if "checkout" in fm.get("services", [])}
    page = text_of(sample / "site/services/checkout/index.html")
    assert set(re.findall(r">(INC-\d{4}-\d{3})</a>", page)) == checkout
    for year in {str(fm["date"])[:4] for _, fm in pms}:
        page = text_of(sample / f"site/years/{year}/index.html")
        assert set(re.findall(r">(INC-\d{4}-\d{3})</a>", page)) == {fm["id"] for _, fm in pms if str(fm["date"]).startswith(year)}
    tags = {t for _, fm in pms for t in fm.get("tags", [])}
    assert all((sample / f"site/tags/{t}/index.html").exists() for t in tags)
    home = visible(text_of(sample / "site/index.html"))
    assert f"{len(pms)} postmortems" in " ".join(home.split())


def test_index_table_works_without_javascript(sample):
    page = text_of(sample / "site/incidents/index.html")
    table = page.split("<table data-pmkb-table>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr data-severity=\"(SEV\d)\" data-services=\"([^\"]*)\" data-year=\"(\d{4})\" data-status=\"([\w-]+)\"", table)
    assert len(rows) == len(site_postmortems(sample))
    assert "hidden" not in table  # nothing hidden until the script runs
    assert 'src="../assets/pmkb/pmkb.js"' in page or "assets/pmkb/pmkb.js" in page


def test_search_index_finds_id_title_service_tag_and_prose(sample):
    index = json.loads(text_of(sample / "site/search/search_index.json"))
    md, fm = site_postmortems(sample)[0]
    url = str(md.relative_to(sample / "postmortems").with_suffix("")) + "/"
    docs = [d for d in index["docs"] if d["location"].split("#")[0] == url]
    blob = " ".join(d["title"] + " " + d["text"] for d in docs)
    assert fm["id"] in blob and fm["services"][0] in blob and fm["tags"][0] in blob
    assert fm["title"].split()[0] in blob
    prose = md.read_text().split("## Root Cause", 1)[1].split()[3]
    assert prose in blob


def test_search_index_has_no_empty_entries_for_the_generated_header(sample):
    """The header's sections (key times, timeline, action items, related incidents) are
    tables and lists kept out of the indexer: entries of theirs would be a title alone, once
    per postmortem. The prose's sections and the card's text stay searchable."""
    index = json.loads(text_of(sample / "site/search/search_index.json"))
    postmortems = {str(md.relative_to(sample / "postmortems").with_suffix("")) + "/" for md, _ in site_postmortems(sample)}
    docs = [d for d in index["docs"] if d["location"].split("#")[0] in postmortems]
    assert {d["location"].split("#")[0] for d in docs} == postmortems
    header = ("key-times", "timeline", "action-items", "related-incidents", "what-we-are-changing")
    assert [d["location"] for d in docs if d["location"].endswith(tuple("#" + h for h in header))] == []
    assert [d["location"] for d in docs if not d["text"].strip()] == []
    page = text_of(sample / "site" / sorted(postmortems)[0] / "index.html")
    assert re.search(r'<h2 id="timeline" data-search-exclude>', page)  # still a heading, and in the toc
    assert 'href="#timeline"' in page


def test_generated_pages_are_virtual_and_postmortems_stay_out_of_the_nav(sample):
    sources = sorted(p.relative_to(sample) for p in (sample / "postmortems").rglob("*"))
    assert all(p.suffix == ".md" or (sample / p).is_dir() for p in sources)  # nothing was written there
    home = text_of(sample / "site/index.html")
    nav = primary_nav(home)
    assert "All postmortems" in nav and "By service" in nav
    assert "INC-20" not in nav


def test_two_builds_are_byte_identical(tmp_path):
    root = copy_sample(tmp_path)
    for out in ("a", "b"):
        assert build(root, out=out).returncode == 0

    def digest(folder: Path) -> dict:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    a, b = digest(root / "a"), digest(root / "b")
    assert a.keys() == b.keys() and len(a) > 50
    assert [k for k in a if a[k] != b[k]] == []


# ---------------------------------------------------------------- hostile --
HOSTILE = textwrap.dedent("""\
    ---
    id: INC-2024-900
    title: "<script>alert(1)</script> | pipe </title><b>x</b>"
    date: 2024-05-01
    severity: SEV3
    status: draft
    services: ["<img src=x onerror=alert(2)>", "a|b"]
    tags: ["<svg onload=alert(3)>"]
    authors: ["<i>Mallory</i>"]
    times:
      started: "10:00"
      resolved: "10:30"
    timeline:
      - time: "10:00"
        event: "<script>alert(4)</script> started | here"
    action_items:
      - action: "<iframe src=javascript:alert(5)>"
        owner: "<b onmouseover=alert(6)>Eve</b>"
        due: 2024-06-01
        ticket: "javascript:alert(7)"
    ---

    ## Summary

    Fine.

    ## Impact

    Fine.

    ## Root Cause

    Fine.
    """)


def test_front_matter_values_cannot_inject_markup(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/evil.md").write_text(HOSTILE)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb\n")
    proc = build(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "invalid-url" in proc.stderr  # the javascript: ticket is rejected, with file and line
    for page in (tmp_path / "site").rglob("*.html"):
        text = text_of(page)
        for needle in ("<script>alert", "<img src=x", "<svg onload", "<iframe", "<b onmouseover", "href=\"javascript:",
                       "<i>Mallory", "<b>x</b>"):
            assert needle not in text, (page, needle)
    page = text_of(tmp_path / "site/evil/index.html")
    assert "&lt;script&gt;alert(4)&lt;/script&gt; started | here" in page
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title and "alert(1)" in title
    search = text_of(tmp_path / "site/search/search_index.json")
    assert "<script>alert" not in search



def test_values_that_need_yaml_quoting_keep_generated_front_matter_intact(tmp_path):
    """Generated pages carry their title in front matter; a label with quotes, colons or YAML
    indicators must stay a title, never spill into the page as text or a live link."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/quoted.md").write_text(QUOTED)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb\n")
    proc = build(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_titles_intact(tmp_path / "site")

# ------------------------------------------------------ strict and errors --
BROKEN = HOSTILE.replace("severity: SEV3", "severity: SEV9").replace('title: "<script>alert(1)</script> | pipe </title><b>x</b>"', "title: Broken")


def test_strict_build_fails_and_plain_build_shows_the_errors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/bad.md").write_text(BROKEN)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb\n")
    strict = build(tmp_path, "--strict")
    assert strict.returncode != 0
    assert "docs/bad.md:5:11: invalid-severity [PM104]" in strict.stderr
    plain = build(tmp_path)
    assert plain.returncode == 0
    page = text_of(tmp_path / "site/bad/index.html")
    assert "This postmortem has 2 errors" in page and "invalid-severity" in page


def test_bad_plugin_configuration_names_the_key(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nplugins:\n  - pmkb:\n      timezone: Mars/Olympus\n")
    proc = build(tmp_path)
    assert proc.returncode != 0 and "'timezone'" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------- templates --
def test_site_templates_override_the_package_ones(tmp_path):
    root = copy_sample(tmp_path)
    (root / "templates").mkdir()
    original = (REPO / "templates/home.md.j2").read_text()
    (root / "templates/home.md.j2").write_text(original.replace("## Latest postmortems", "## Fresh from the oven"))
    assert build(root).returncode == 0
    home = text_of(root / "site/index.html")
    assert "Fresh from the oven" in home and "Latest postmortems" not in home


def test_user_nav_gets_a_postmortems_section_unless_it_places_the_pages(tmp_path):
    root = copy_sample(tmp_path)
    (root / "postmortems/about.md").write_text("# About\n\nHow we run incidents.\n")
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["nav"] = [{"About": "about.md"}]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert build(root).returncode == 0
    nav = primary_nav(text_of(root / "site/about/index.html"))
    assert "About" in nav and "All postmortems" in nav
    cfg["nav"] = [{"About": "about.md"}, {"Everything": "incidents/index.md"}]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert build(root).returncode == 0
    nav = primary_nav(text_of(root / "site/about/index.html"))
    assert "Everything" in nav and "By service" not in nav


def test_nav_link_is_one_entry_to_the_knowledge_base_home(tmp_path):
    root = copy_sample(tmp_path)
    (root / "postmortems/about.md").write_text("# About\n\nHow we run incidents.\n")
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"] = {**p["pmkb"], "nav": "link", "pages_dir": "kb", "exclude": ["about.md"]}
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = build(root, "--strict", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "not included in the \"nav\"" not in proc.stderr  # the index pages are reached from the home page
    nav = primary_nav(text_of(root / "site/about/index.html"))
    links = re.findall(r'<a href="([^"]+)" class="md-nav__link', nav)
    assert len(links) == 2 and any(h.rstrip("/").endswith("kb") for h in links)  # About and the home
    assert "All postmortems" not in nav and "By service" not in nav and "INC-20" not in nav
    home = text_of(root / "site/kb/index.html")
    assert "All postmortems" in visible(home) or "all postmortems" in visible(home)
    cfg["nav"] = [{"About": "about.md"}]  # a nav of your own gets the one entry appended
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert build(root, "--strict").returncode == 0
    nav = primary_nav(text_of(root / "site/about/index.html"))
    assert "About" in nav and "Postmortems" in nav and "By service" not in nav


def test_nav_none_adds_nothing_and_a_nav_of_your_own_may_list_any_generated_page(tmp_path):
    """`nav: none`: no generated page in MkDocs' automatic nav (nor in its "not included in
    the nav" notice); a nav of the user's lists what it wants."""
    root = copy_sample(tmp_path)
    (root / "postmortems/about.md").write_text("# About\n\nHow we run incidents.\n")
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"] = {**p["pmkb"], "nav": "none", "exclude": ["about.md"]}
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = build(root, "--strict", "-v")
    assert proc.returncode == 0, proc.stderr
    assert "not included in the \"nav\"" not in proc.stderr
    nav = primary_nav(text_of(root / "site/incidents/index.html"))
    links = re.findall(r'<a href="([^"]+)" class="md-nav__link', nav)
    assert [h.rstrip("/").rsplit("/", 1)[-1] for h in links] == ["about"]  # the user's page alone
    cfg["nav"] = [{"About": "about.md"}, {"Knowledge base": "index.md"}, {"Everything": "incidents/index.md"}]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    nav = primary_nav(text_of(root / "site/about/index.html"))
    assert "Knowledge base" in nav and "Everything" in nav and "By service" not in nav and "Postmortems" not in nav


# ------------------------------------------------------------------ serve --
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_rebuilds_an_edited_postmortem(tmp_path):
    root = copy_sample(tmp_path)
    md = next((root / "postmortems").rglob("INC-2024-003-*.md"))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"],
                            cwd=root, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/incidents/"

    def fetch():
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    try:
        deadline = time.time() + 60
        while True:
            try:
                assert "INC-2024-003" in fetch()
                break
            except OSError:
                assert time.time() < deadline, "mkdocs serve did not start"
                time.sleep(0.3)
        text = md.read_text()
        old = front_matter(md)["title"]
        md.write_text(text.replace(old, "Edited title shows up everywhere", 1))
        deadline = time.time() + 60
        while "Edited title shows up everywhere" not in fetch():
            assert time.time() < deadline, "the edit never showed up"
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_material_tags_plugin_shows_postmortem_tags(tmp_path):
    root = copy_sample(tmp_path)
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["plugins"].insert(1, "tags")
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    md, fm = site_postmortems(root)[0]
    page = text_of(page_for(root, md))
    tags = re.findall(r'class="md-tag[^"]*"[^>]*>([^<]+)<', page)
    assert {t.strip() for t in tags} >= set(fm["tags"])


def test_other_plugins_see_a_postmortems_meta_whenever_they_run(tmp_path):
    """page.meta comes from the check, not from MkDocs: it must be in place before any other
    plugin's on_page_markdown reads it, however early that one runs."""
    root = copy_sample(tmp_path)
    (root / "seen.py").write_text(textwrap.dedent("""
        from mkdocs.plugins import event_priority

        @event_priority(90)
        def on_page_markdown(markdown, page, **kwargs):
            if page.meta.get("id"):
                return markdown + f"\\n\\nmeta-seen {page.meta['id']} {len(page.meta.get('tags') or [])}\\n"
            return markdown
    """))
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["hooks"] = ["seen.py"]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    for md, fm in site_postmortems(root):
        assert f"meta-seen {fm['id']} {len(fm.get('tags') or [])}" in text_of(page_for(root, md))


# ------------------------------------------------------------ links --
@pytest.mark.parametrize("variant", [{}, {"pages_dir": "kb"}, {"pages_dir": "./kb/"}, {"use_directory_urls": False}],
                         ids=["default", "pages_dir", "pages_dir-dotted", "html-urls"])
def test_every_link_in_every_page_leads_to_a_file_of_the_site(tmp_path, variant):
    """Generated HTML is not rewritten by MkDocs, so pmkb makes its links relative itself (and
    shares rendered rows between pages that link alike): each one must land on a real file."""
    root = copy_sample(tmp_path)
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    if "use_directory_urls" in variant:
        cfg["use_directory_urls"] = variant["use_directory_urls"]
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p and "pages_dir" in variant:
            p["pmkb"]["pages_dir"] = variant["pages_dir"]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if "pages_dir" in variant:  # generated pages under kb/: the site's own home page is the user's
        (root / "postmortems/index.md").write_text("# Incidents\n\nSee [the knowledge base](kb/index.md).\n")
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    site = root / "site"
    checked = 0
    for page in site.rglob("*.html"):
        for href in re.findall(r'<a [^>]*href="([^"#]+)', text_of(page)):
            href = html.unescape(href)
            if re.match(r"[a-z]+:", href):
                continue
            path = href.split("?")[0]
            # MkDocs' 404 page links from the site root, since it is served for any URL
            target = (site / path.lstrip("/") if path.startswith("/") else page.parent / path).resolve()
            target = target / "index.html" if href.endswith("/") or target.is_dir() else target
            assert target.is_file(), (page.relative_to(site).as_posix(), href)
            checked += 1
    assert checked > 1000
