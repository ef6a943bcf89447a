"""Action-item rollups, exports, metrics and problem pages on real builds; the overdue policy;
and the serve cache re-parsing only what changed."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from sitetools import ENV, build, copy_sample, same_as_a_fresh_build, sample_postmortems, site_postmortems
from pmkb.core.cache import FORMAT

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("rollups"), as_of=AS_OF.isoformat())
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    return root


def expected_items(root: Path):
    """Every action item, computed from the front matter independently of pmkb."""
    out = []
    for _md, fm in site_postmortems(root):
        for n, a in enumerate(fm.get("action_items") or [], start=1):
            due = date.fromisoformat(str(a["due"])) if a.get("due") else None
            status = a.get("status", "open")
            out.append({"pm": fm["id"], "id": a.get("id", f"{fm['id']}-{n}"), "owner": a.get("owner"), "due": due,
                        "status": status, "overdue": bool(due and due < AS_OF and status not in ("done", "wont-do")),
                        "services": fm.get("services", [])})
    return out


def test_exports_are_complete_and_parse(sample):
    data = json.loads((sample / "site/pmkb/postmortems.json").read_text())
    pms = site_postmortems(sample)
    assert data["as_of"] == AS_OF.isoformat()
    assert sorted(p["id"] for p in data["postmortems"]) == sorted(fm["id"] for _, fm in pms)
    for record in data["postmortems"]:
        assert (sample / "site" / record["url"] / "index.html").exists()
        assert set(record["metrics"]) == {"ttd_minutes", "tta_minutes", "ttm_minutes", "ttr_minutes",
                                          "response_target_met", "resolve_target_met"}
    rows = list(csv.DictReader(io.StringIO((sample / "site/pmkb/action-items.csv").read_text())))
    items = expected_items(sample)
    assert len(rows) == len(items)
    assert {(r["id"], r["overdue"]) for r in rows} == {(i["id"], "true" if i["overdue"] else "false") for i in items}


def test_overdue_page_lists_exactly_the_overdue_items(sample):
    page = (sample / "site/actions/overdue/index.html").read_text()
    listed = set(re.findall(r"<td>(INC-\d{4}-\d{3}-\d+)</td>", page))
    assert listed == {i["id"] for i in expected_items(sample) if i["overdue"]}
    assert listed, "the sample has overdue items"


def test_owner_page_groups_open_items_by_owner(sample):
    page = (sample / "site/actions/owners/index.html").read_text()
    for item in expected_items(sample):
        if item["status"] in ("open", "in-progress"):
            section = page.split(f">{item['owner']}</h2>", 1)
            assert len(section) == 2, item["owner"]
            assert f"<td>{item['id']}</td>" in section[1].split("<h2", 1)[0]


def test_long_tables_and_rollups_are_split_into_pages_of_per_page_rows(tmp_path):
    """Index and rollup pages stay small: every table, grouped or not, is split into pages of
    `per_page` rows (a group is only kept whole when it fits), and no row is lost or repeated."""
    root = copy_sample(tmp_path, as_of=AS_OF.isoformat())
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["per_page"] = 3
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = build(root, "--strict")
    assert proc.returncode == 0, proc.stderr
    site = root / "site"

    def pages(first: Path, rest: str) -> list[Path]:
        return [first] + sorted(site.glob(rest), key=lambda p: int(re.search(r"page-(\d+)", str(p)).group(1)))

    incidents = pages(site / "incidents/index.html", "incidents/page-*/index.html")
    rows = [re.findall(r'<tr data-severity="[^"]*" data-services="[^"]*" data-year="\d+" data-status="[\w-]+">\s*<td><a href="[^"]*">([^<]+)</a>',
                       p.read_text()) for p in incidents]
    assert all(len(r) <= 3 for r in rows) and len(incidents) >= 5
    listed = [i for r in rows for i in r]
    assert sorted(listed) == sorted(fm["id"] for _, fm in site_postmortems(root))  # each exactly once

    open_items = {i["id"] for i in expected_items(root) if i["status"] in ("open", "in-progress")}
    done_items = {i["id"] for i in expected_items(root) if i["status"] == "done"}
    for name, expected in (("index", open_items), ("completed", done_items)):
        found = pages(site / "actions" / ("" if name == "index" else name) / "index.html",
                      f"actions/{name}-page-*/index.html")
        per_page = [re.findall(r"<td>(INC-\d{4}-\d{3}-\d+)</td>", p.read_text()) for p in found]
        assert all(len(r) <= 3 for r in per_page), (name, [len(r) for r in per_page])
        assert len(found) == -(-len(expected) // 3) and len(expected) > 3
        assert sorted(i for r in per_page for i in r) == sorted(expected)


def test_pmkb_actions_filters_and_formats(sample):
    items = expected_items(sample)
    owner = next(i["owner"] for i in items if i["overdue"])

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pmkb", "actions", "--as-of", AS_OF.isoformat(), *args],
                              cwd=sample, capture_output=True, text=True, env=ENV)

    got = json.loads(run("--owner", owner.upper(), "--overdue", "--format", "json").stdout)
    assert {a["id"] for a in got["action_items"]} == {i["id"] for i in items if i["overdue"] and i["owner"] == owner}
    rows = list(csv.DictReader(io.StringIO(run("--service", "checkout", "--format", "csv").stdout)))
    assert {r["id"] for r in rows} == {i["id"] for i in items if "checkout" in i["services"]
                                       and i["status"] in ("open", "in-progress")}
    text = run().stdout
    assert f"{sum(i['status'] in ('open', 'in-progress') for i in items)} action items" in text


def test_metrics_page_has_definitions_accessible_charts_and_data(sample):
    page = (sample / "site/metrics/index.html").read_text()
    assert "Time to detect (MTTD)" in page and "detected − started" in page
    charts = re.findall(r'<svg class="pmkb-chart"[^>]*role="img" aria-labelledby="([^"]+)"', page)
    assert len(charts) == 3
    for ids in charts:
        for i in ids.split():
            assert f'id="{i}"' in page
    assert "Data: incidents per month by severity" in page
    stats = json.loads(subprocess.run([sys.executable, "-m", "pmkb", "stats", "--format", "json", "--as-of",
                                       AS_OF.isoformat()], cwd=sample, capture_output=True, text=True).stdout)
    for month, counts in stats["incidents_per_month"].items():
        assert re.search(rf"<td>{month}</td>" + "".join(rf"<td>{counts[s]}</td>" for s in ("SEV1", "SEV2", "SEV3", "SEV4")),
                         page), month


def test_problem_pages_list_incidents_in_time_order(sample):
    groups: dict[str, list] = {}
    for _, fm in site_postmortems(sample):
        if fm.get("problem"):
            groups.setdefault(fm["problem"], []).append((str(fm["date"]), fm["id"]))
    assert groups
    for name, incidents in groups.items():
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        page = (sample / f"site/problems/{slug}/index.html").read_text()
        order = re.findall(r'<h2 id="[^"]*"><a href="[^"]*">(INC-\d{4}-\d{3})</a>', page)
        assert order == [i for _, i in sorted(incidents)]


RECUR = textwrap.dedent("""\
    ---
    id: {id}
    title: Cache errors
    date: {day}
    severity: SEV3
    services: [cache]
    tags: [{tags}]
    {extra}
    times:
      started: "10:00"
      resolved: "10:30"
    ---

    ## Summary

    x

    ## Impact

    x

    ## Root Cause

    x
    """)


def test_possible_recurrences(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    specs = [("INC-2024-001", "2024-01-10", "redis, memory", ""),
             ("INC-2024-002", "2024-02-01", "redis", ""),                           # recurrence of 001
             ("INC-2024-003", "2024-02-20", "redis", "related: [INC-2024-002]"),    # linked: not listed with 002
             ("INC-2024-004", "2024-12-01", "redis", ""),                           # outside the 90-day window
             ("INC-2024-005", "2024-02-05", "network", "")]                         # no shared tag
    for pid, day, tags, extra in specs:
        (docs / f"{pid}.md").write_text(RECUR.format(id=pid, day=day, tags=tags, extra=extra))
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb\n")
    assert build(tmp_path).returncode == 0
    page = (tmp_path / "site/problems/index.html").read_text()
    table = page.split("Possible recurrences", 1)[1]
    pairs = set(re.findall(r">(INC-2024-\d{3})</a>[^<]*</td><td><a[^>]*>(INC-2024-\d{3})</a>", table))
    assert pairs == {("INC-2024-001", "INC-2024-002"), ("INC-2024-001", "INC-2024-003")}


def _recurrence_kb(docs: Path, n: int) -> list[str]:
    """n postmortems of one service a week apart with a tag in common: each is a possible
    recurrence of the one before."""
    ids = []
    for i in range(n):
        pid = f"INC-2024-{i + 1:03d}"
        day = (date(2024, 1, 1) + timedelta(days=7 * i)).isoformat()
        (docs / f"{pid}.md").write_text(RECUR.format(id=pid, day=day, tags="redis", extra=""))
        ids.append(pid)
    return ids


def _recurrence_pairs(html: str) -> list[tuple[str, str]]:
    table = html.split("Possible recurrences", 1)[1]
    return re.findall(r">(INC-2024-\d{3})</a>[^<]*</td><td><a[^>]*>(INC-2024-\d{3})</a>", table)


def test_possible_recurrences_are_paginated_and_every_link_resolves(tmp_path):
    """However many pairs there are, no page lists more than per_page of them: the first page of
    the table stays on the problems page, the rest follow on pages of their own, each pair once,
    with links that work from where each page is."""
    docs = tmp_path / "docs"
    docs.mkdir()
    ids = _recurrence_kb(docs, 14)  # 13 pairs
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n"
                                         "  - pmkb:\n      per_page: 4\n")
    proc = build(tmp_path, "--strict")
    assert proc.returncode == 0, proc.stderr
    site = tmp_path / "site"
    first = site / "problems/index.html"
    more = [site / f"problems/recurrences/page-{n}/index.html" for n in (2, 3, 4)]
    assert not (site / "problems/recurrences/page-5").exists()
    pages = [first, *more]
    pairs = [_recurrence_pairs(p.read_text()) for p in pages]
    assert [len(p) for p in pairs] == [4, 4, 4, 1]
    every = [pair for page in pairs for pair in page]
    assert sorted(every) == list(zip(ids, ids[1:]))  # each pair once
    assert "1–4 of 13" in first.read_text() and "13–13 of 13" in more[-1].read_text()
    assert "## Problems" not in more[0].read_text() and ">Problems</h2>" not in more[0].read_text()
    for page in pages:
        html = page.read_text()
        table = html.split("Possible recurrences", 1)[1]
        hrefs = re.findall(r'href="([^"#]+)"', table)
        assert hrefs, page
        for href in hrefs:
            if href.startswith(("http", "mailto")):
                continue
            target = (page.parent / href).resolve()
            assert (target / "index.html").exists() or target.is_file(), (page, href)


def test_overdue_policy_raises_old_major_items(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    item = "action_items:\n  - action: Fix it.\n    owner: Ana Silva\n    due: {due}\n    kind: prevent\n"
    for pid, sev, due in [("INC-2024-001", "SEV2", "2024-05-01"), ("INC-2024-002", "SEV2", "2024-06-20"),
                          ("INC-2024-003", "SEV3", "2024-01-01")]:
        (docs / f"{pid}.md").write_text(RECUR.format(id=pid, day="2024-01-01", tags="x", extra=item.format(due=due))
                                        .replace("severity: SEV3", f"severity: {sev}").replace("    action_items", "action_items"))
    (tmp_path / "mkdocs.yml").write_text(textwrap.dedent("""\
        site_name: t
        plugins:
          - pmkb:
              as_of: 2024-07-01
              rules: {missing-section: off, missing-field: off}
              overdue_policy:
                - {severities: [SEV1, SEV2], days: 30, level: error}
        """))
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json"], cwd=tmp_path,
                          capture_output=True, text=True)
    levels = {Path(d["path"]).stem: d["severity"] for d in json.loads(proc.stdout)["diagnostics"]
              if d["rule"] == "action-item-overdue"}
    assert levels == {"INC-2024-001": "error", "INC-2024-002": "notice", "INC-2024-003": "notice"}
    assert proc.returncode == 1
    strict_without_policy = subprocess.run([sys.executable, "-m", "pmkb", "check", "--strict", "--as-of", "2030-01-01"],
                                           cwd=REPO_ROOT, capture_output=True, text=True)
    assert strict_without_policy.returncode == 0  # time passing alone never fails --strict


REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("edition", ["internal", "public"])
def test_serve_rebuild_equals_a_fresh_build(tmp_path, monkeypatch, edition):
    """Everything reused across `mkdocs serve` rebuilds (results by file stat and content, rows,
    headers, sanitised prose, export records, compiled templates) gives the same site, byte for
    byte, as a fresh build of the edited sources: the edit shows up on every page it touches.
    In the public edition the edit makes a name another postmortem's summary mentions a known
    person's, so that unchanged page must lose the name too."""
    import logging
    import os

    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    import pmkb.core.kb as kb

    monkeypatch.setattr(kb.ParseCache, "RACY_NS", -10**18)  # trust file stats at once (a test is fast)
    for k in ("SOURCE_DATE_EPOCH", "NO_MKDOCS_2_WARNING"):
        monkeypatch.setenv(k, ENV[k])
    monkeypatch.setenv("PMKB_NO_CACHE", "1")
    root = copy_sample(tmp_path / "kb")
    public = next((root / "postmortems").rglob("INC-2024-003-*.md"))
    public.write_text(public.read_text().replace("## Summary\n", "## Summary\n\nXantippe Quorl renewed the certificate.\n", 1))
    if edition == "public":
        cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
        for p in cfg["plugins"]:
            if isinstance(p, dict) and "pmkb" in p:
                p["pmkb"]["edition"] = "public"
        (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    calls: list[str] = []
    real = kb.check_file_content
    monkeypatch.setattr(kb, "check_file_content", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    logging.getLogger("mkdocs").setLevel(logging.CRITICAL)
    served = tmp_path / "served"
    cfg = load_config(str(root / "mkdocs.yml"), site_dir=str(served))
    cfg.plugins.on_startup(command="serve", dirty=False)
    plugin = cfg.plugins["pmkb"]
    mkdocs_build(cfg)
    calls.clear()

    md = next((root / "postmortems").rglob("INC-2025-004-*.md"))
    text = md.read_text()
    edited = (text.replace("title: ", "title: Edited ", 1).replace("severity: SEV2", "severity: SEV1", 1)
              .replace("incident_commander: Priya Raman", "incident_commander: Xantippe Quorl", 1))
    assert edited.count("Edited ") == 1 and "Xantippe Quorl" in edited and "SEV1" in edited
    md.write_text(edited)
    os.utime(md, ns=(md.stat().st_atime_ns, md.stat().st_mtime_ns + 1_000_000_000))
    cfg = load_config(str(root / "mkdocs.yml"), site_dir=str(served))
    assert cfg.plugins["pmkb"] is plugin  # the instance serve keeps
    mkdocs_build(cfg)
    assert calls == [md.relative_to(root).as_posix()]  # the other files were not even read

    fresh = same_as_a_fresh_build(root, served, tmp_path / "fresh")
    summary = fresh[next(p for p in fresh if "INC-2024-003" in str(p) and p.suffix == ".html")]
    if edition == "public":
        assert b"renewed the certificate" in summary and b"Xantippe" not in summary
        return
    assert b"Xantippe Quorl renewed" in summary
    pages = [p for p, b in fresh.items() if b"Edited Checkout 503s" in b and p.suffix == ".html"]
    assert len(pages) >= 8  # its own page, the home page, every index, rollup and problem page listing it
    assert b"Xantippe Quorl" in fresh[Path("pmkb/postmortems.json")]


def test_serve_rebuild_reparses_only_the_edited_file(tmp_path, monkeypatch):
    """The plugin instance that `mkdocs serve` keeps: a second build after one edit re-parses one file."""
    import pmkb.core.kb as kb

    root = copy_sample(tmp_path)
    calls: list[str] = []
    real = kb.check_file_content
    monkeypatch.setattr(kb, "check_file_content", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    plugin, rebuild = _serve_session(root, monkeypatch)
    rebuild()
    assert len(calls) == len(sample_postmortems(root))  # every file is checked, whatever the edition shows
    calls.clear()
    md = next((root / "postmortems").rglob("INC-2025-004-*.md"))
    md.write_text(md.read_text().replace("title: ", "title: Edited ", 1))
    files = rebuild()
    assert calls == [md.relative_to(root).as_posix()]
    incidents = files.get_file_from_path("incidents/index.md").content_string
    assert plugin.site.unstash(incidents).count("Edited ") == 1


def _serve_session(root: Path, monkeypatch, *, disk_cache: bool = False):
    """The plugin instance `mkdocs serve` keeps, and a rebuild of its files (on_files) after an edit."""
    import logging

    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files

    import pmkb.core.kb as kb

    monkeypatch.setattr(kb.ParseCache, "RACY_NS", -10**18)  # trust file stats at once (a test is fast)
    if disk_cache:
        monkeypatch.delenv("PMKB_NO_CACHE", raising=False)
    else:
        monkeypatch.setenv("PMKB_NO_CACHE", "1")
    logging.getLogger("mkdocs").setLevel(logging.CRITICAL)
    cfg = load_config(str(root / "mkdocs.yml"))
    cfg.plugins.on_startup(command="serve", dirty=False)
    plugin = cfg.plugins["pmkb"]

    def rebuild():
        c = load_config(str(root / "mkdocs.yml"))
        c.plugins = cfg.plugins
        c = cfg.plugins.on_config(c)
        files = plugin.on_files(get_files(c), config=c)
        plugin.on_post_build(config=c)  # as a build ends: the heap on_files froze is thawed
        return files

    return plugin, rebuild


def _generated(plugin, files) -> tuple[dict[str, str], dict[str, str]]:
    """Every generated page and export as the serve rebuild made it, and as a builder that keeps
    nothing makes them from the same check (stashed HTML put back in both)."""
    from pmkb.site import SiteBuilder

    site = plugin.site
    fresh = SiteBuilder(plugin.result, plugin.core, use_directory_urls=site.use_directory_urls,
                        site_name=site.site_name, stash=True, edition=site.edition)
    expected = {p.src: fresh.unstash(p.markdown) for p in fresh.pages()} | fresh.exports()
    got = {}
    for src in expected:
        f = files.get_file_from_path(src)
        got[src] = site.unstash(f.content_string) if f is not None else None
    return got, expected


def test_serve_rebuilds_show_each_edit_on_every_index_rollup_and_export(tmp_path, monkeypatch):
    """Generated pages and exports are kept across `mkdocs serve` rebuilds by what they show: after
    each edit of one postmortem (title, severity, a service, an owner, prose only, a link to an ID
    that does not exist yet, then a new postmortem with that ID), every page and export equals
    what a builder that keeps nothing makes, and the edit shows where it should."""
    root = copy_sample(tmp_path)
    plugin, rebuild = _serve_session(root, monkeypatch)
    rebuild()
    md = next((root / "postmortems").rglob("INC-2025-004-*.md"))

    def edit(old: str, new: str) -> dict[str, str]:
        text = md.read_text()
        assert text.count(old) >= 1, old
        md.write_text(text.replace(old, new, 1))
        got, expected = _generated(plugin, rebuild())
        assert [src for src in expected if got[src] != expected[src]] == []
        return got

    pages = edit("title: ", "title: Edited ")
    listing = [src for src, text in pages.items() if "Edited Checkout 503s" in text]
    for src in ("index.md", "incidents/index.md", "severities/sev2.md", "services/checkout.md",
                "services/postgres-primary.md", "tags/pgbouncer.md", "years/2025.md",
                "problems/prb-connection-pool-exhaustion.md", "pmkb/postmortems.json"):
        assert src in listing, src

    pages = edit("severity: SEV2", "severity: SEV1")
    assert "INC-2025-004" in pages["severities/sev1.md"] and "INC-2025-004" not in pages["severities/sev2.md"]
    assert re.search(r'<h2 id="sev1">SEV1</h2>(?:(?!<h2).)*INC-2025-004-3', pages["actions/severities.md"], re.S)

    pages = edit("services: [checkout, postgres-primary]", "services: [checkout, postgres-primary, brand-new-service]")
    assert "INC-2025-004" in pages["services/brand-new-service.md"]
    assert "brand-new-service" in pages["services/index.md"] and "brand-new-service" in pages["metrics/index.md"]

    pages = edit("owner: Priya Raman", "owner: Xantippe Quorl")
    assert re.search(r">Xantippe Quorl</h2>(?:(?!<h2).)*INC-2025-004-3", pages["actions/owners.md"], re.S)

    before = _generated(plugin, rebuild())[0]
    assert edit("\n## Summary\n", "\n## Summary\n\nOne more sentence of prose.\n") == before

    pages = edit("related: [INC-2024-001]", "related: [INC-2024-001, INC-2099-001]")
    record = next(r for r in json.loads(pages["pmkb/postmortems.json"])["postmortems"] if r["id"] == "INC-2025-004")
    assert record["related"] == ["INC-2024-001"]  # no postmortem has that ID yet
    (md.parent / "INC-2099-001-new.md").write_text(
        "---\nid: INC-2099-001\ntitle: A new one\ndate: 2025-01-02\nseverity: SEV3\nstatus: draft\n"
        "services: [checkout]\ntags: [tcp]\n---\n\n## Summary\n\nNew.\n")
    got, expected = _generated(plugin, rebuild())  # INC-2025-004 is unchanged; what its link names is new
    assert [src for src in expected if got[src] != expected[src]] == []
    record = next(r for r in json.loads(got["pmkb/postmortems.json"])["postmortems"] if r["id"] == "INC-2025-004")
    assert record["related"] == ["INC-2024-001", "INC-2099-001"]


def test_serve_header_unchanged_only_when_its_inputs_are(tmp_path, monkeypatch):
    """Under serve a postmortem's header is reused when `header_unchanged` says nothing it reads
    changed since the last build, a check that does not compute `header_inputs` for every page.
    After each edit (a title, a related link, an action ID another file has, a service whose page
    takes another's name, a duplicated ID, a problem, a new service, an error, a new file, a deleted
    file), every header it calls unchanged has the inputs it had."""
    root = copy_sample(tmp_path)
    plugin, rebuild = _serve_session(root, monkeypatch)
    rebuild()
    folder = root / "postmortems"

    def step(name: str, old: str | None, new: str | None) -> None:
        path = next(folder.rglob(f"{name}*.md"), folder / "2025" / f"{name}.md")
        if new is None:
            path.unlink()
        elif old is None:
            path.write_text(new)
        else:
            text = path.read_text()
            assert old in text, old
            path.write_text(text.replace(old, new, 1))
        before, old_pms = plugin.site, {pm.path: pm for pm in plugin.by_src.values()}
        rebuild()
        site = plugin.site
        unchanged = [pm for pm in plugin.by_src.values() if site.header_unchanged(pm)]
        assert [pm.path for pm in unchanged if pm.path not in old_pms or
                before.header_inputs(old_pms[pm.path]) != site.header_inputs(pm)] == []
        assert len(unchanged) >= len(plugin.by_src) // 2, name  # most headers are reused

    step("INC-2025-004", "title: ", "title: Edited ")
    step("INC-2025-004", "related: [INC-2024-001]", "related: [INC-2024-001, INC-2024-003]")  # a new backlink
    step("INC-2024-002", "id: INC-2024-002", "id: INC-2025-004")  # the backlink's ID now names another file
    step("INC-2024-002", "id: INC-2025-004", "id: INC-2024-002")
    step("INC-2025-004", "related: [INC-2024-001, INC-2024-003]", "related: [INC-2024-001]")  # the backlink gone
    step("INC-2025-004", "  - id: INC-2025-004-1", "  - id: INC-2024-006-1")  # an error in another file
    step("INC-2024-001", "services: [checkout, payments]", "services: [Checkout, checkout, payments]")  # checkout-x.md
    step("INC-2024-002", "id: INC-2024-002", "id: INC-2024-001")  # two postmortems, one ID
    step("INC-2024-002", "id: INC-2024-001", "id: INC-2024-002")
    step("INC-2025-004", "problem: PRB-connection-pool-exhaustion", "problem: PRB-cert-expiry")
    step("INC-2025-004", "services: [checkout, postgres-primary]", "services: [checkout, postgres-primary, a-new-one]")
    step("INC-2025-004", "severity: SEV2", "severity: SEV9")  # an error: no such severity
    step("INC-2099-001", None, "---\nid: INC-2099-001\ntitle: New\ndate: 2025-01-02\nseverity: SEV3\nstatus: draft\n"
                               "services: [checkout]\ntags: [tcp]\nrelated: [INC-2025-004]\nproblem: PRB-cert-expiry\n---\n\nNew.\n")
    step("INC-2099-001", "", None)


def test_serve_rebuild_updates_the_headers_that_name_an_edited_postmortem(tmp_path, monkeypatch):
    """A title edit that names no new person keeps every other header (see header_unchanged), but
    the headers that list the edited postmortem as related, backlink or problem sibling show the new
    title: the rebuilt site equals a fresh build of the edited sources, byte for byte."""
    import logging
    import os

    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    import pmkb.core.kb as kb

    monkeypatch.setattr(kb.ParseCache, "RACY_NS", -10**18)
    for k in ("SOURCE_DATE_EPOCH", "NO_MKDOCS_2_WARNING"):
        monkeypatch.setenv(k, ENV[k])
    monkeypatch.setenv("PMKB_NO_CACHE", "1")
    logging.getLogger("mkdocs").setLevel(logging.CRITICAL)
    root = copy_sample(tmp_path / "kb")
    served = tmp_path / "served"
    cfg = load_config(str(root / "mkdocs.yml"), site_dir=str(served))
    cfg.plugins.on_startup(command="serve", dirty=False)
    plugin = cfg.plugins["pmkb"]
    mkdocs_build(cfg)
    rendered = []
    real = plugin.site.__class__.postmortem_header
    monkeypatch.setattr(plugin.site.__class__, "postmortem_header", lambda s, pm: rendered.append(pm.id) or real(s, pm))

    md = next((root / "postmortems").rglob("INC-2024-001-*.md"))  # INC-2025-004 and INC-2026-004 name it
    md.write_text(md.read_text().replace("title: ", "title: Edited ", 1))
    os.utime(md, ns=(md.stat().st_atime_ns, md.stat().st_mtime_ns + 1_000_000_000))
    mkdocs_build(load_config(str(root / "mkdocs.yml"), site_dir=str(served)))
    assert "INC-2024-001" in rendered and "INC-2025-004" in rendered
    assert len(rendered) < len(sample_postmortems(root, "internal")) // 2  # the others were kept

    fresh = same_as_a_fresh_build(root, served, tmp_path / "fresh")
    page = next(b for p, b in fresh.items() if "INC-2025-004" in str(p) and p.suffix == ".html")
    assert b"Edited Checkout" in page


def test_serve_reuses_no_header_made_before_a_build_that_did_not_finish(tmp_path, monkeypatch):
    """header_unchanged compares a build with the one before it, so a header is reused only if that
    build made or reused it: here a build stops after on_files (as when a page fails), the next
    sees no change since, and still the header shows the title edited before the stopped build."""
    from types import SimpleNamespace

    root = copy_sample(tmp_path)
    plugin, rebuild = _serve_session(root, monkeypatch)
    rebuild()
    src = next(src for src, pm in plugin.by_src.items() if pm.id == "INC-2025-004")  # names INC-2024-001
    page = SimpleNamespace(file=SimpleNamespace(src_uri=src), meta={})
    prose = "\n## Summary\n\nProse.\n"

    def header() -> str:
        return plugin.site.unstash(plugin._page_header(prose, page=page, config=None, files=None))

    assert "Edited" not in header()
    md = next((root / "postmortems").rglob("INC-2024-001-*.md"))
    md.write_text(md.read_text().replace("title: ", "title: Edited ", 1))
    rebuild()  # stops after on_files: no page sees the edit
    rebuild()
    assert "Edited Checkout" in header()


def test_serve_rebuilds_keep_the_recurrences_table_up_to_date(tmp_path, monkeypatch):
    """The possible-recurrences table keeps the last build's rows: after each edit (a title shown
    in it, a date that makes a new pair, a title and a tag at once, a related link that unmade one) it equals what a builder
    that keeps nothing makes."""
    docs = tmp_path / "docs"
    docs.mkdir()
    specs = [("INC-2024-001", "2024-01-10", "redis, memory", ""), ("INC-2024-002", "2024-02-01", "redis", ""),
             ("INC-2024-003", "2024-02-20", "redis", "related: [INC-2024-002]"),
             ("INC-2024-004", "2024-12-01", "redis", ""), ("INC-2024-005", "2024-02-05", "network", "")]
    for pid, day, tags, extra in specs:
        (docs / f"{pid}.md").write_text(RECUR.format(id=pid, day=day, tags=tags, extra=extra))
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb\n")
    plugin, rebuild = _serve_session(tmp_path, monkeypatch)
    rebuild()

    def edit(pid: str, old: str, new: str) -> str:
        md = docs / f"{pid}.md"
        md.write_text(md.read_text().replace(old, new, 1))
        got, expected = _generated(plugin, rebuild())
        assert [src for src in expected if got[src] != expected[src]] == []
        return got["problems/index.md"].split("Possible recurrences", 1)[1]

    assert "Edited cache errors" in edit("INC-2024-002", "title: Cache errors", "title: Edited cache errors")
    assert "INC-2024-004" in edit("INC-2024-004", "date: 2024-12-01", "date: 2024-03-01")
    assert "Edited again" in edit("INC-2024-001", "title: Cache errors\ndate: 2024-01-10\nseverity: SEV3\n"
                                  "services: [cache]\ntags: [redis, memory]", "title: Edited again\ndate: 2024-01-10\n"
                                  "severity: SEV3\nservices: [cache]\ntags: [redis, memory, zzz]")
    assert "Third title" in edit("INC-2024-002", "title: Edited cache errors\ndate: 2024-02-01\nseverity: SEV3\n"
                                 "services: [cache]\ntags: [redis]", "title: Third title\ndate: 2024-02-01\n"
                                 "severity: SEV3\nservices: [cache]\ntags: [redis, zzz]")  # same pairs, new title
    edit("INC-2024-003", "related: [INC-2024-002]", "related: []")


def test_serve_rebuilds_keep_paginated_recurrences_up_to_date(tmp_path, monkeypatch):
    """With the possible recurrences over several pages, an edit that adds pairs moves rows from
    one page to the next: every page still equals what a builder that keeps nothing makes."""
    docs = tmp_path / "docs"
    docs.mkdir()
    _recurrence_kb(docs, 5)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n"
                                         "  - pmkb:\n      per_page: 2\n")
    plugin, rebuild = _serve_session(tmp_path, monkeypatch)
    rebuild()

    def edit(pid: str, old: str, new: str) -> dict[str, str]:
        md = docs / f"{pid}.md"
        md.write_text(md.read_text().replace(old, new, 1))
        got, expected = _generated(plugin, rebuild())
        assert [src for src in expected if got[src] != expected[src]] == []
        return got

    assert "Renamed" in edit("INC-2024-002", "title: Cache errors", "title: Renamed")["problems/index.md"]
    (docs / "INC-2024-099.md").write_text(RECUR.format(id="INC-2024-099", day="2024-01-03", tags="redis", extra=""))
    got, expected = _generated(plugin, rebuild())  # a new pair near the top: rows move to later pages
    assert [src for src in expected if got[src] != expected[src]] == []
    assert "problems/recurrences/page-3.md" in got
    edit("INC-2024-099", "title: Cache errors", "title: Late rename")
    edit("INC-2024-001", "tags: [redis]", "tags: [network]")  # its pairs are gone


def test_serve_fills_the_results_cache_once_and_a_later_check_is_still_right(tmp_path, monkeypatch):
    """Under serve the first build fills the results cache on disk; rebuilds are answered from
    memory and do not write it for every edit. A later `pmkb check` re-checks the edited file
    (its content no longer matches) and reports what a check without the cache reports."""
    root = copy_sample(tmp_path)
    plugin, rebuild = _serve_session(root, monkeypatch, disk_cache=True)
    rebuild()
    shards = sorted((root / ".pmkb_cache").glob(f"v{FORMAT}/*/*.json"))
    assert shards
    written = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in shards}
    md = next((root / "postmortems").rglob("INC-2025-004-*.md"))
    md.write_text(md.read_text().replace("## Root Cause\n", "## Root Cause\n\nIt was human error.\n", 1))
    rebuild()
    assert any(d.rule == "blame-human-error" for d in plugin.result.diagnostics)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in shards} == written

    def check(*args: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json", *args], cwd=root,
                              capture_output=True, text=True, env={**ENV, "NO_COLOR": "1"}, timeout=120)
        assert proc.returncode in (0, 1), proc.stderr
        return json.loads(proc.stdout)

    assert check() == check("--no-cache")
    assert any(d["rule"] == "blame-human-error" for d in check()["diagnostics"])


def test_serve_reports_a_suppression_that_another_files_edit_left_unused(tmp_path, monkeypatch):
    """Which suppressions silenced something is worked out afresh on every check: a copy of a
    postmortem suppresses its duplicate ID; once the original's ID changes, the comment
    silences nothing and says so, as a fresh check does."""
    root = copy_sample(tmp_path)
    original = next((root / "postmortems").rglob("INC-2024-001-*.md"))
    text = original.read_text(encoding="utf-8")
    copy = original.with_name("INC-2024-001-copy.md")
    copy.write_text(text.replace("\n## ", "\n<!-- pmkb-disable-file duplicate-id -->\n\n## ", 1), encoding="utf-8")
    plugin, rebuild = _serve_session(root, monkeypatch)

    def rules_of(path: Path) -> set[str]:
        return {d.rule for d in plugin.result.diagnostics if d.path.endswith(path.name)}

    rebuild()
    assert "duplicate-id" in rules_of(original) and "duplicate-id" not in rules_of(copy)
    assert "unused-suppression" not in rules_of(copy)
    original.write_text(text.replace("id: INC-2024-001", "id: INC-2024-901", 1), encoding="utf-8")
    rebuild()
    assert "duplicate-id" not in rules_of(original)
    assert "unused-suppression" in rules_of(copy)


def test_serve_rebuild_follows_an_edited_exclude(tmp_path, monkeypatch):
    """What a file is (a postmortem or not, and its path below the postmortems folder) is kept
    across serve rebuilds, and forgotten when the options that decide it change."""
    root = copy_sample(tmp_path)
    plugin, rebuild = _serve_session(root, monkeypatch)
    rebuild()
    assert any(pm.id == "INC-2025-004" for pm in plugin.by_src.values())

    def set_exclude(patterns: list[str]) -> None:
        cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
        for p in cfg["plugins"]:
            if isinstance(p, dict) and "pmkb" in p:
                p["pmkb"]["exclude"] = patterns
        (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    set_exclude(["INC-2025-004-*"])
    files = rebuild()
    assert not any(pm.id == "INC-2025-004" for pm in plugin.by_src.values())
    assert "INC-2025-004" not in plugin.site.unstash(files.get_file_from_path("incidents/index.md").content_string)
    set_exclude([])
    files = rebuild()
    assert any(pm.id == "INC-2025-004" for pm in plugin.by_src.values())
    assert "INC-2025-004" in plugin.site.unstash(files.get_file_from_path("incidents/index.md").content_string)


_META_CHANGING_HOOK = """\
import copy

SEEN = []


def on_page_markdown(markdown, page, **kwargs):
    if page.meta.get("id") == "INC-2025-004":
        SEEN.append(copy.deepcopy(page.meta))
        for key in ("tags", "services", "authors"):
            page.meta[key].append("changed by another plugin")
        page.meta["title"] = "changed by another plugin"
    return markdown
"""


@pytest.mark.parametrize("other_plugin", [True, False], ids=["another-plugin", "alone"])
def test_serve_page_meta_is_the_last_builds(tmp_path, monkeypatch, other_plugin):
    """Under serve an unchanged postmortem's page.meta is made from the last build's. While another
    plugin handles page events it is a copy, its lists too, so a plugin that changes page.meta in
    one build leaves the next one's alone; while none does, it is the last build's dict itself."""
    import copy

    from mkdocs.config import load_config
    from mkdocs.structure.pages import Page as MkPage

    root = copy_sample(tmp_path)
    if other_plugin:
        (root / "hooks.py").write_text(_META_CHANGING_HOOK)
        (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
    plugin, rebuild = _serve_session(root, monkeypatch)
    config = load_config(str(root / "mkdocs.yml"))
    seen, metas = [], []
    for _ in range(3):
        files = rebuild()
        src = next(src for src, pm in plugin.by_src.items() if pm.id == "INC-2025-004")
        page = MkPage(None, files.get_file_from_path(src), config)
        markdown = plugin.on_page_read_source(page=page, config=config)
        assert markdown is not None
        config.plugins.on_page_markdown(markdown, page=page, config=config, files=files)  # every handler
        for key in ("tags", "services", "authors"):
            assert isinstance(page.meta[key], list), key
        seen.append(copy.deepcopy(page.meta))
        metas.append(page.meta)
    if other_plugin:
        seen = config.plugins["hooks.py"].SEEN  # as the other plugin found it, before its change
        assert len(seen) == 3 and metas[2]["title"] == "changed by another plugin"
        assert metas[1] is not metas[2]
    else:
        assert metas[1] is metas[2]
    assert seen[0] == seen[1] == seen[2]
    assert seen[0]["id"] == "INC-2025-004" and "kubernetes" in seen[0]["tags"]
    assert seen[0]["title"] != "changed by another plugin"


def test_serve_rebuilds_after_edits_that_move_a_postmortem_in_the_orders(tmp_path, monkeypatch):
    """Postmortems edited in place keep their places in the last build's orders and groups, and
    the home page's totals are corrected by their old and new versions: edits of a date, an ID,
    a tag, several files at once, action items and status give every page and export a builder
    that keeps nothing makes."""
    root = copy_sample(tmp_path)
    plugin, rebuild = _serve_session(root, monkeypatch)
    rebuild()
    md = next((root / "postmortems").rglob("INC-2025-004-*.md"))
    other = next((root / "postmortems").rglob("INC-2024-002-*.md"))

    def edit(*changes: tuple[Path, str, str]) -> dict[str, str]:
        for path, old, new in changes:
            text = path.read_text()
            assert old in text, old
            path.write_text(text.replace(old, new, 1))
        got, expected = _generated(plugin, rebuild())
        assert [src for src in expected if got[src] != expected[src]] == []
        return got

    pages = edit((md, "date: 2025-07-08", "date: 2019-01-01"))  # newest first: it moves to the end
    assert "INC-2025-004" in pages["years/2019.md"]
    edit((md, "title: ", "title: Edited "), (other, "title: ", "title: Also edited "))
    pages = edit((md, "id: INC-2025-004", "id: INC-2000-001"))  # by ID: it moves to the front
    assert "INC-2000-001" in pages["incidents/index.md"]
    pages = edit((md, "tags: [kubernetes,", "tags: [a-new-tag, kubernetes,"))
    assert "INC-2000-001" in pages["tags/a-new-tag.md"]
    edit((md, "title: Edited ", "title: Edited twice "))
    edit((md, "    due: 2025-10-31", "    due: 2025-01-31"))  # an overdue item more: the home page counts it
    edit((md, "    status: open", "    status: done"))  # an open item less
    edit((md, "status: published", "status: draft"))
