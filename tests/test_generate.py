"""`pmkb generate OUT`: the site as plain Markdown, built by MkDocs without the plugin and by
ProperDocs, tested with real files, the real CLI and real builds."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import venv
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import fixture_text
from sitetools import ENV, QUOTED, REPO, assert_titles_intact, copy_sample, front_matter, site_postmortems

PMKB = [sys.executable, "-m", "pmkb"]
PROSE_MARK = "<!-- pmkb:prose -->"
NAV = [
    {"Home": "index.md"},
    {"All postmortems": "incidents/index.md"},
    {"Open action items": "actions/index.md"},
    {"Incident metrics": "metrics/index.md"},
    {"Recurring problems": "problems/index.md"},
    {"By severity": "severities/index.md"},
    {"By service": "services/index.md"},
    {"By tag": "tags/index.md"},
    {"By year": "years/index.md"},
]
EXTENSIONS = ["tables", "attr_list", "md_in_html", "admonition", {"toc": {"permalink": True}}]


def pmkb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PMKB, *args], cwd=cwd, env={**ENV, "NO_COLOR": "1"}, capture_output=True, text=True,
                          timeout=120)


def generate(root: Path, out: str = "out", *args: str) -> subprocess.CompletedProcess:
    proc = pmkb("generate", out, *args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc


def plain_config(path: Path, docs_dir: Path, site_dir: Path, **extra) -> Path:
    """A site that builds OUT as it is: no pmkb plugin, the pmkb assets as extra CSS/JS."""
    cfg = {
        "site_name": "Postmortem knowledge base", "docs_dir": str(docs_dir), "site_dir": str(site_dir),
        "use_directory_urls": True, "theme": {"name": "material"},
        "extra_css": ["assets/pmkb/pmkb.css"], "extra_javascript": ["assets/pmkb/pmkb.js"],
        "markdown_extensions": EXTENSIONS, "plugins": ["search"], "nav": NAV, "not_in_nav": "/*/\n",
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def mkdocs_build(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config), *args],
                          cwd=config.parent, capture_output=True, text=True, env=ENV, timeout=300)


def tree_of(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def split_page(text: str) -> tuple[dict, str, str]:
    """(front matter, generated header, prose) of a generated postmortem page."""
    assert text.startswith("---\n")
    fm_text, rest = text[4:].split("\n---\n\n", 1)
    header, mark, prose = rest.partition(f"\n{PROSE_MARK}\n\n")
    assert mark, "the prose marker is missing"
    return yaml.safe_load(fm_text), header, prose


def site_builder(root: Path, *, as_of=None):
    from pmkb.core.config import Config
    from pmkb.core.kb import ParseCache, RelativeTo, check, discover
    from pmkb.site import SiteBuilder

    cfg = Config.from_file(root / "mkdocs.yml")
    cfg.for_site = True
    result = check(cfg, discover(cfg), display=RelativeTo(cfg.root), cache=ParseCache(), as_of=as_of)
    return SiteBuilder(result, cfg, use_directory_urls=True, site_name=yaml.safe_load(
        (root / "mkdocs.yml").read_text())["site_name"], stash=False), result


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The sample knowledge base, generated into out/ by the real CLI."""
    root = copy_sample(tmp_path_factory.mktemp("gen-sample"))
    generate(root)
    return root


# ------------------------------------------------------------------ the tree --
def test_every_page_export_and_asset_is_written(sample):
    out = sample / "out"
    site, _ = site_builder(sample, as_of=__import__("datetime").date(2025, 6, 30))
    for page in site.pages():
        assert (out / page.src).is_file(), page.src
        assert (out / page.src).read_text(encoding="utf-8") == page.markdown + ("" if page.markdown.endswith("\n") else "\n")
    for name in ("index.md", "incidents/index.md", "metrics/index.md", "problems/index.md", "actions/index.md",
                 "actions/overdue.md", "severities/index.md", "services/index.md", "tags/index.md", "years/index.md",
                 "pmkb/postmortems.json", "pmkb/action-items.csv", "assets/pmkb/pmkb.css", "assets/pmkb/pmkb.js"):
        assert (out / name).is_file(), name
    for path, text in site.exports().items():
        assert (out / path).read_text(encoding="utf-8") == text
    for name in ("pmkb.css", "pmkb.js"):
        assert (out / "assets/pmkb" / name).read_bytes() == (REPO / "plugins/pmkb/assets" / name).read_bytes()
    shown = site_postmortems(sample)
    for md, fm in shown:
        rel = md.relative_to(sample / "postmortems").as_posix()
        assert f'data-pmkb-id="{fm["id"]}"' in (out / rel).read_text(encoding="utf-8")
    # the internal edition leaves the restricted postmortem out, as the plugin does
    everything = {p.relative_to(sample / "postmortems").as_posix() for p in (sample / "postmortems").rglob("*.md")}
    hidden = everything - {md.relative_to(sample / "postmortems").as_posix() for md, _ in shown}
    assert hidden and not any((out / rel).exists() for rel in hidden)
    assert json.loads((out / "pmkb/postmortems.json").read_text())["as_of"] == "2025-06-30"


def test_postmortem_header_is_the_one_the_plugin_injects(sample):
    from datetime import date

    site, result = site_builder(sample, as_of=date(2025, 6, 30))
    pm = next(p for p in result.kb.valid if p.id == "INC-2024-001")
    text = (sample / "out" / site.pm_src(pm)).read_text(encoding="utf-8")
    fm, header, prose = split_page(text)
    assert header == site.postmortem_header(pm)
    assert fm["title"] == pm.title
    assert fm["tags"] == pm.tags and fm["services"] == pm.services
    assert prose.lstrip().startswith("## Summary")
    source = (sample / "postmortems" / pm.rel_path).read_text(encoding="utf-8")
    assert prose.strip() == source.split("\n---\n", 1)[1].strip()  # clean prose is passed through unchanged


def test_the_sample_prose_stays_markdown():
    """Real postmortems never need the HTML fallback: only comments are dropped."""
    from pmkb.core.config import Config
    from pmkb.generate import build_tree

    tree = build_tree(Config.from_file(REPO / "mkdocs.yml"))
    assert tree.prose_modes and set(tree.prose_modes.values()) == {"markdown"}
    assert not tree.warnings


def test_mkdocs_builds_the_tree_without_the_plugin(sample, tmp_path):
    config = plain_config(tmp_path / "mkdocs.yml", sample / "out", tmp_path / "site")
    assert yaml.safe_load(config.read_text())["plugins"] == ["search"]  # no pmkb plugin
    proc = mkdocs_build(config, "--strict")
    assert proc.returncode == 0, proc.stderr
    site = tmp_path / "site"
    for name in ("index.html", "incidents/index.html", "metrics/index.html", "problems/index.html",
                 "actions/index.html", "severities/sev2/index.html", "pmkb/postmortems.json",
                 "pmkb/action-items.csv", "assets/pmkb/pmkb.css", "assets/pmkb/pmkb.js"):
        assert (site / name).is_file(), name
    page = (site / "2024/INC-2024-001-checkout-500s-pool-resize/index.html").read_text(encoding="utf-8")
    assert 'data-pmkb-id="INC-2024-001"' in page
    assert 'data-pmkb="times"' in page and 'id="summary"' in page
    assert page.index("Key times") < page.index('id="summary"')
    assert "assets/pmkb/pmkb.css" in page and "assets/pmkb/pmkb.js" in page
    home = (site / "index.html").read_text(encoding="utf-8")
    assert "2024/INC-2024-001-checkout-500s-pool-resize/" in (site / "incidents/index.html").read_text(encoding="utf-8")
    assert "pmkb-stat" in home
    assert json.loads((site / "pmkb/postmortems.json").read_text())["postmortems"]


def test_output_is_deterministic(sample, tmp_path):
    first = tree_of(sample / "out")
    # again, from another folder through -f, into a new folder: the same bytes
    proc = pmkb("generate", str(tmp_path / "again"), "-f", str(sample / "mkdocs.yml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tree_of(tmp_path / "again") == first
    # and over itself with --force: nothing rewritten
    proc = pmkb("generate", "out", "--force", cwd=sample)
    assert proc.returncode == 0, proc.stderr
    assert "0 written" in proc.stdout
    assert tree_of(sample / "out") == first


def test_a_cache_written_by_pmkb_check_gives_the_same_tree(sample, tmp_path):
    """`pmkb check` caches what a check needs (no timelines, no page meta): generate checks
    those files again rather than build pages from less."""
    root = copy_sample(tmp_path)
    assert pmkb("check", cwd=root).returncode in (0, 1)
    assert pmkb("generate", "out", cwd=root).returncode == 0
    assert tree_of(root / "out") == tree_of(sample / "out")
    with_timeline = [p for p, fm in site_postmortems(root) if fm.get("timeline")]
    assert len(with_timeline) > 10
    for path in with_timeline:  # and the tree compared against has them
        page = (root / "out" / path.relative_to(root / "postmortems")).read_text()
        assert page.count("<time datetime=") >= len(front_matter(path)["timeline"]), path.name


def test_as_of_is_passed_through(sample, tmp_path):
    generate(sample, str(tmp_path / "o"), "--as-of", "2024-01-02")
    assert json.loads((tmp_path / "o/pmkb/postmortems.json").read_text())["as_of"] == "2024-01-02"
    proc = pmkb("generate", str(tmp_path / "p"), "--as-of", "2024-13-01", cwd=sample)
    assert proc.returncode == 2 and "--as-of" in proc.stderr
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------ writing safely --
def test_a_non_empty_out_is_refused_without_force(tmp_path):
    root = copy_sample(tmp_path / "kb")
    out = root / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    (out / "index.md").write_text("my own home page\n")
    proc = pmkb("generate", "out", cwd=root)
    assert proc.returncode == 2
    assert "not empty" in proc.stderr and "--force" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["index.md", "notes.txt"]
    assert (out / "index.md").read_text() == "my own home page\n"

    proc = pmkb("generate", "out", "--force", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert (out / "notes.txt").read_text() == "mine\n"  # not a file pmkb generates: untouched
    assert "pmkb-stats" in (out / "index.md").read_text()  # a generated path: replaced
    assert not [p for p in out.rglob("*.tmp")]


def test_force_retires_stale_pages_but_keeps_edited_ones(tmp_path):
    root = copy_sample(tmp_path / "kb")
    generate(root)
    out = root / "out"
    gone = next((root / "postmortems/2024").glob("INC-2024-006-*.md"))
    edited = next((root / "postmortems/2024").glob("INC-2024-005-*.md"))
    gone.unlink()
    edited.unlink()
    page = out / "2024" / edited.name
    page.write_text(page.read_text() + "\nmy edit\n")
    proc = pmkb("generate", "out", "--force", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "2024" / gone.name).exists()
    assert page.read_text().endswith("my edit\n")
    assert "left in place" in proc.stderr
    manifest = json.loads((out / ".pmkb-generated.json").read_text())
    assert f"2024/{gone.name}" not in manifest["files"]


@pytest.mark.parametrize("target", ["postmortems", "postmortems/2024", ".", ".."])
def test_out_overlapping_the_sources_is_refused_even_with_force(tmp_path, target):
    root = copy_sample(tmp_path / "kb")
    before = tree_of(tmp_path)
    proc = pmkb("generate", target, "--force", cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "overlaps" in proc.stderr
    assert tree_of(tmp_path) == before


def test_nothing_is_written_through_a_link_out_of_out(tmp_path):
    root = copy_sample(tmp_path / "kb")
    outside = tmp_path / "outside"
    outside.mkdir()
    out = root / "out"
    out.mkdir()
    (out / "tags").symlink_to(outside, target_is_directory=True)
    proc = pmkb("generate", "out", "--force", cwd=root)
    assert proc.returncode == 1
    assert "out of OUT" in proc.stderr
    assert list(outside.iterdir()) == []


def test_out_that_is_a_file_is_refused(tmp_path):
    root = copy_sample(tmp_path / "kb")
    (root / "out").write_text("x")
    proc = pmkb("generate", "out", "--force", cwd=root)
    assert proc.returncode == 2 and "not a folder" in proc.stderr
    assert (root / "out").read_text() == "x"


# ------------------------------------------------------------------ broken files --
def test_an_unreadable_postmortem_gets_the_plugins_error_page(tmp_path):
    root = tmp_path
    (root / "docs/2024").mkdir(parents=True)
    (root / "mkdocs.yml").write_text("site_name: T\ndocs_dir: docs\nplugins: [search, pmkb]\n")
    (root / "docs/2024/INC-2024-001.md").write_text(fixture_text("clean-sev2.md"))
    (root / "docs/2024/broken.md").write_bytes(b"---\nid: [unclosed\n---\n\n## Summary\n")
    (root / "docs/2024/binary.md").write_bytes(b"\x00\x01\x02binary")
    generate(root)
    site, result = site_builder(root)
    by_path = result.by_path()
    for name in ("broken.md", "binary.md"):
        pm = next(p for p in result.kb.postmortems if p.rel_path == f"2024/{name}")
        expected = site.env.get_template("broken_page.md.j2").render(
            title=name, path=pm.path, diagnostics=by_path.get(pm.path, []))
        assert (root / "out/2024" / name).read_text(encoding="utf-8") == expected
    assert "invalid-yaml" in (root / "out/2024/broken.md").read_text()
    assert "unreadable-file" in (root / "out/2024/binary.md").read_text()
    proc = mkdocs_build(plain_config(tmp_path / "plain.yml", root / "out", tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    assert "could not be read" in (tmp_path / "site/2024/broken/index.html").read_text()



def test_values_that_need_yaml_quoting_keep_front_matter_intact(tmp_path):
    """Titles, tags, services and problems with quotes, colons and YAML indicators stay titles."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/quoted.md").write_text(QUOTED)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nplugins: [search, pmkb]\n")
    generate(tmp_path)
    proc = mkdocs_build(plain_config(tmp_path / "plain.yml", tmp_path / "out", tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    assert_titles_intact(tmp_path / "site")

# ------------------------------------------------------------------ hostile prose --
HOSTILE = textwrap.dedent("""\
    <script>alert(1)</script>

    <img src=x onerror=alert(1)>

    [x](javascript:alert(1))

    A [spaced link](  JaVaScRiPt:alert(2) ), an [entity link](jav&#x61;script:alert(3)),
    an [angled link](<javascript:alert(4)>) and an ![image](javascript:alert(5)).

    [ref]: javascript:alert(6)

    A [reference link][ref] and an attribute list {: onclick="alert(7)" }

    ### A heading {: onmouseover=alert(8) }

    <a href="java&#x09;script:alert(9)" onclick="alert(10)">anchor</a>
    <iframe src="https://evil.example/"></iframe><object data="x"></object><embed src="x">
    <style>body { display: none }</style><svg onload=alert(11)></svg>
    <scr<!-- -->ipt>alert(12)</script> <<!-- -->script>alert(13)</script>
    <!-- a --!> <script>alert(14)</script> -->
    <div markdown="1">[inner](javascript:alert(15))</div>

    <details open><summary>Kept</summary>Allowed HTML survives: <b>bold</b>, <a href="https://example.com/">a link</a>.</details>

    `<script>alert(16)</script>` in code is shown, never run.
    """)


class Scan(HTMLParser):
    """What a browser would run: script bodies, event handlers, javascript: URLs, frames."""

    def __init__(self, elements: bool = True):
        super().__init__(convert_charrefs=True)
        self.bad: list = []
        self.script = False
        self.elements = elements  # False for a whole page: the theme has its own scripts and styles

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key.startswith("on"):
                self.bad.append((tag, key, value))
            if key in ("href", "src", "data", "action", "formaction", "srcdoc") and value and re.match(
                    r"\s*(javascript|vbscript|data):", re.sub(r"[\x00-\x20]", "", value), re.IGNORECASE):
                self.bad.append((tag, key, value))
        if self.elements and tag in ("iframe", "object", "embed", "frame", "style", "script", "base", "form"):
            self.bad.append((tag,))
        self.script = tag == "script"

    def handle_endtag(self, tag):
        self.script = False

    def handle_data(self, data):
        if self.script and "alert(" in data:
            self.bad.append(("script", data[:60]))


def hostile_kb(root: Path, body: str) -> Path:
    (root / "docs/2024").mkdir(parents=True)
    (root / "mkdocs.yml").write_text(yaml.safe_dump({
        "site_name": "Hostile", "docs_dir": "docs", "markdown_extensions": EXTENSIONS,
        "plugins": ["search", {"pmkb": {"as_of": "2024-06-01"}}]}, sort_keys=False))
    text = fixture_text("clean-sev2.md").replace("## Impact", body + "\n## Impact", 1)
    (root / "docs/2024/INC-2024-001-hostile.md").write_text(text)
    return root


def test_hostile_prose_never_reaches_the_built_html(tmp_path):
    root = hostile_kb(tmp_path / "kb", HOSTILE)
    generate(root)
    page_md = (root / "out/2024/INC-2024-001-hostile.md").read_text(encoding="utf-8")
    _, _, prose = split_page(page_md)
    assert "<script" not in prose.replace("<\u200bscript", "") and "onerror" not in prose.split("`")[0]
    proc = mkdocs_build(plain_config(tmp_path / "plain.yml", root / "out", tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    scanned = 0
    for page in (tmp_path / "site").rglob("*.html"):
        scan = Scan(elements=False)
        scan.feed(page.read_text(encoding="utf-8"))
        assert scan.bad == [], f"{page}: {scan.bad}"
        scanned += 1
    assert scanned > 5
    html_page = (tmp_path / "site/2024/INC-2024-001-hostile/index.html").read_text(encoding="utf-8")
    article = html_page.split("<article", 1)[1].split("</article>", 1)[0]
    scan = Scan()
    scan.feed("<article" + article)
    assert scan.bad == []
    # what was neutralised is shown as text; allowed HTML and ordinary prose survive
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in article
    assert "[x](javascript:alert(1))" in article
    assert "<b>bold</b>" in article and 'href="https://example.com/"' in article
    assert "<details open" in article and "<summary>Kept</summary>" in article
    assert 'id="a-heading' in article and "A heading {: onmouseover=alert(8) }" in article
    assert "Checkout returned HTTP 500 for a third of attempts" in article


def test_the_scanner_sees_what_a_browser_would_run():
    for bad in ('<img src=x onerror=alert(1)>', '<a href=" java&#x09;script:alert(1)">x</a>',
                "<script>alert(1)</script>", '<iframe src="https://x/"></iframe>'):
        scan = Scan()
        scan.feed(bad)
        assert scan.bad, bad
    scan = Scan()
    scan.feed('<p>&lt;script&gt;alert(1)&lt;/script&gt; <a href="https://x/">[x](javascript:alert(1))</a></p>')
    assert scan.bad == []


def test_the_html_fallback_is_what_clean_html_makes(monkeypatch):
    """Should the Markdown-level pass miss something, the rendered check catches it and the prose
    is written as clean_html output on one raw line."""
    import pmkb.generate as gen

    guard = gen.ProseGuard(EXTENSIONS)
    monkeypatch.setattr(gen, "neutralise", lambda text: text)
    for body in ("<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "## H {: onclick=alert(1) }",
                 "<script>alert(1)</script>\n\ntext"):
        text, mode = guard.safe(body)
        assert mode == "html", body
        assert "\n" not in text.rstrip("\n")
        rendered = guard.render(text)
        assert gen.html_problem(rendered) is None, rendered
        scan = Scan()
        scan.feed(rendered)
        assert scan.bad == []


@pytest.mark.parametrize("body", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "[x](java\nscript:alert(1))", "[x](javascript&colon;alert(1))", "[r]\n\n[r]: <javascript:alert(1)>",
    "para {: onclick=alert(1) }", "[x](y){: onclick=alert(1) }", "<a href='javascript:alert(1)'>a</a>",
    "<<!-- -->script>alert(1)</script>", "```{.py onclick=alert(1)}\nx\n```",
    "<div markdown>\n[x](javascript:alert(1))\n</div>", "<!-- x --!><script>alert(1)</script>-->",
    "```\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n```",
])
def test_each_vector_is_neutralised_as_markdown(body):
    from pmkb.generate import ProseGuard, html_problem

    guard = ProseGuard(EXTENSIONS)
    text, mode = guard.safe(body)
    assert mode == "markdown", text
    rendered = guard.render(text)
    assert html_problem(rendered) is None
    scan = Scan()
    scan.feed(rendered)
    assert scan.bad == [], rendered


RAW_BLOCK_VECTORS = [
    '<div markdown="1">\nhover <x@y/onmouseover=alert(document.domain)//.z>\n</div>',
    '<div markdown="1">\n<http://x/onmouseover=alert(1)//>\n</div>',
    "<div>\n<https://x/y/ONfocus=alert(1)//>\n</div>",
]


@pytest.mark.parametrize("body", RAW_BLOCK_VECTORS)
@pytest.mark.parametrize("extensions", [[], ["tables"], ["attr_list"], ["tables", "attr_list", "md_in_html", "admonition", "toc"]],
                         ids=["none", "tables", "attr_list", "all"])
def test_autolinks_in_raw_html_blocks_are_safe_whatever_the_site_enables(body, extensions):
    """A site that builds OUT without md_in_html leaves a <div markdown> block raw, and a browser
    reads an 'autolink' in it as a tag: one with /on...= becomes an event handler."""
    import markdown

    from pmkb.generate import neutralise

    scan = Scan()
    scan.feed(markdown.markdown(neutralise(body), extensions=extensions))
    assert scan.bad == []


def test_ordinary_autolinks_stay_links():
    from pmkb.generate import neutralise

    text = "See <https://grafana.example.com/d/abc?orgId=1> or write to <ops@example.com>."
    assert neutralise(text) == text


@pytest.mark.parametrize("text", [
    "`x` {a} " * 64_000,  # one 512 KB line of braces and code spans
    ("{a} " * 30 + "z" * 2_000 + "}\n") * 200,  # many lines just under the per-line cap
], ids=["one-line", "many-lines"])
def test_brace_checks_do_linear_work(text, monkeypatch):
    """Each brace used to re-read the rest of its line: quadratic (96 KB took 16 s). Counted in
    characters examined, not seconds, so a busy machine cannot make it flaky."""
    import pmkb.generate as gen

    examined = [0]
    real = gen._attr_list_ok

    def counted(content):
        examined[0] += len(content)
        return real(content)

    monkeypatch.setattr(gen, "_attr_list_ok", counted)
    out = gen.neutralise(text)
    assert examined[0] <= (gen.MAX_BRACES + 1) * len(text)
    assert out.count("\\{") >= text.count("{a}") - text.count("`{")


def test_file_names_that_cannot_be_page_paths_are_left_out_with_a_warning(tmp_path):
    import os

    (tmp_path / "docs/2025").mkdir(parents=True)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nplugins: [search, pmkb]\n")
    good = fixture_text("clean-sev2.md")
    (tmp_path / "docs/2025/good.md").write_text(good)
    (tmp_path / "docs/2025/a\\b.md").write_text(good.replace("INC-2024-001", "INC-2024-002"))
    bad = os.path.join(os.fsencode(tmp_path / "docs/2025"), b"bad\xff.md")
    with open(bad, "wb") as fh:
        fh.write(good.replace("INC-2024-001", "INC-2024-003").encode())
    proc = pmkb("generate", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("cannot be a page path") == 2
    assert sorted(p.name for p in (tmp_path / "out/2025").iterdir()) == ["good.md"]


def test_ordinary_markdown_is_left_alone():
    from pmkb.generate import neutralise

    text = textwrap.dedent("""\
        ## Root Cause

        p99 < 200ms, a *pool* of `<16>` and [a ticket](https://tracker.example.com/X-1 "title"),
        [relative](../2024/INC-2024-002.md#impact), <https://example.com/> and a {.note} class.

        | a | b |
        |:--|--:|
        | 1 | 2 |

        ```yaml
        pool: {max: 16}
        ```
        """)
    assert neutralise(text) == text


# ------------------------------------------------------------------ ProperDocs --
def test_properdocs_builds_the_tree(sample, tmp_path):
    """ProperDocs (the maintained MkDocs 1.x line) with its default theme, `mkdocs`, which since
    1.6.7 ships as the separate package properdocs-theme-mkdocs."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                          "properdocs", "properdocs-theme-mkdocs"],
                         capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        pytest.fail("could not install ProperDocs from the package index (network or registry error?):\n"
                    + (pip.stderr or pip.stdout)[-3000:])
    config = tmp_path / "properdocs.yml"
    config.write_text(yaml.safe_dump({
        "site_name": "Postmortem knowledge base", "docs_dir": str(sample / "out"), "site_dir": str(tmp_path / "site"),
        "theme": {"name": "mkdocs"}, "extra_css": ["assets/pmkb/pmkb.css"], "extra_javascript": ["assets/pmkb/pmkb.js"],
        "markdown_extensions": EXTENSIONS, "plugins": ["search"], "nav": NAV, "not_in_nav": "/*/\n",
    }, sort_keys=False))
    command = shutil.which("properdocs", path=str(py.parent))  # the command the package installs
    assert command, f"pip installed no `properdocs` command in {py.parent}"
    env = {k: v for k, v in ENV.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([command, "build", "--strict", "-f", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    for name in ("index.html", "incidents/index.html", "metrics/index.html", "pmkb/postmortems.json",
                 "assets/pmkb/pmkb.css", "assets/pmkb/pmkb.js"):
        assert (site / name).is_file(), name
    page = (site / "2024/INC-2024-001-checkout-500s-pool-resize/index.html").read_text(encoding="utf-8")
    assert 'data-pmkb-id="INC-2024-001"' in page and 'id="summary"' in page
    assert "assets/pmkb/pmkb.css" in page
