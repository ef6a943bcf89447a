"""The built sample site in a real browser: search, open a result, filter the index.

Uses Debian's Chromium (`make test` installs it) through Playwright; never a
browser download. Pages come from a local server on 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from sitetools import build, copy_sample, front_matter, site_postmortems, serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("browser"))
    proc = build(root)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium package"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_search_finds_a_postmortem_and_opens_it(site, browser, tmp_path):
    md = next((site / "postmortems").rglob("INC-2024-002-*.md"))
    fm = front_matter(md)
    others = " ".join(p.read_text().lower() for p in (site / "postmortems").rglob("*.md") if p != md)
    prose = md.read_text().split("## Root Cause", 1)[1]
    words = [w for w in re.findall(r"[A-Za-z]{7,}", prose) if w.lower() not in others]
    word = max(words, key=len)  # a word of this postmortem's prose and of no other
    with serve(site / "site") as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/")
        query = page.locator("input[data-md-component='search-query']")
        query.click()
        result = page.locator(".md-search-result__item a").first
        # Material wires the search box up asynchronously (a web worker builds the index); a query
        # typed before that is ignored, so type it again until results show (bounded).
        for _attempt in range(20):
            query.fill("")
            query.type(word, delay=30)
            try:
                result.wait_for(timeout=3000)
                break
            except PlaywrightTimeout:
                continue
        else:
            page.screenshot(path=str(tmp_path / "search-failed.png"))
            raise AssertionError(f"no search result for {word!r}; see {tmp_path / 'search-failed.png'}")
        page.screenshot(path=str(tmp_path / "search.png"))
        href = result.get_attribute("href")
        assert "INC-2024-002" in href
        result.click()
        page.wait_for_url("**/INC-2024-002-*/**", timeout=60000)
        page.locator("[data-pmkb-id='INC-2024-002']").wait_for(timeout=60000)
        assert fm["title"] in page.title()
        page.screenshot(path=str(tmp_path / "postmortem.png"), full_page=True)
        page.close()
    assert (tmp_path / "search.png").stat().st_size > 10_000


def test_index_table_filters_by_severity_and_sorts(site, browser, tmp_path):
    pms = site_postmortems(site)
    sev2 = {fm["id"] for _, fm in pms if str(fm["severity"]).upper() in ("SEV2", "P2")}
    with serve(site / "site") as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/incidents/")
        select = page.locator("select[data-pmkb-filter='severity']")
        select.wait_for(timeout=60000)
        rows = page.locator("table[data-pmkb-table] tbody tr")
        assert rows.count() == len(pms)
        select.select_option("SEV2")
        visible = page.locator("table[data-pmkb-table] tbody tr:not([hidden])")
        ids = {visible.nth(i).locator("td").first.inner_text().strip() for i in range(visible.count())}
        assert ids == sev2
        assert f"{len(sev2)} of {len(pms)} shown" in page.locator("[data-pmkb-filters]").inner_text()
        page.screenshot(path=str(tmp_path / "filtered.png"))
        select.select_option("")
        page.locator("table[data-pmkb-table] th", has_text="ID").click()
        first = page.locator("table[data-pmkb-table] tbody tr td").first.inner_text().strip()
        assert first == min(fm["id"] for _, fm in pms)
        page.close()


def test_pages_read_well_dark_and_on_a_phone(site, browser, tmp_path):
    with serve(site / "site") as base:
        ctx = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
        page = ctx.new_page()
        page.goto(f"{base}/incidents/")
        scheme = page.evaluate("document.body.getAttribute('data-md-color-scheme')")
        assert scheme == "slate"
        # the card and the table stay inside the viewport width (the table scrolls in its own box)
        page.goto(f"{base}/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        page.screenshot(path=str(tmp_path / "phone-dark.png"), full_page=True)
        ctx.close()
