"""A postmortem page rendered with its generated header kept out of Markdown (pmkb.header_render):
the site must be byte for byte the one MkDocs makes when Markdown renders the whole page, and
the pages whose prose could change how the header renders must be rendered whole."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sitetools import ENV, REPO, copy_sample

SAMPLE = sorted((REPO / "postmortems" / "2025").glob("INC-2025-001-*.md"))[0]

# prose that the toc extension would number or nest differently next to the header's headings,
# or that renders a table of contents of the whole page: each page must be rendered whole
WHOLE = {
    "body-timeline": "## Summary\n\nA summary, a [gone](missing-page.md) link.\n\n## Timeline\n\nThe author's own.\n",
    "first-heading-deeper": "### A note before the summary\n\nNested under the header's last heading.\n\n"
                            "## Summary\n\nA summary.\n",
    "toc-marker": "## Summary\n\n[TOC]\n\nA summary.\n",
    "numbered-id": "## Summary\n\nA summary.\n\n## Key times_2\n\nAn id the toc extension numbers like its own.\n",
    "raw-html-anchor": '## Summary\n\n<a id="action-items"></a>An anchor of the header\'s.\n',
}
# prose that renders alike either way
ALIKE = {
    "no-prose": "",
    "other-headings": "# A title of the author's\n\nIntro.\n\n## Summary\n\nA [link](#key-times), links to "
                      "[another header's](INC-2025-906-no-prose.md#action-items) and to "
                      "[no anchor](INC-2025-906-no-prose.md#no-such-anchor), [gone](missing-page.md).\n\n"
                      "### Detail\n\n```\n## not a heading\n```\n\n## Timeline of the fix\n\nDone.\n",
    "untitled-h1-first": "# The author's heading\n\n## Summary\n\nNo title in the front matter.\n",
    "tabs": '## Summary\n\n=== "Timeline"\n\n    In a tab.\n\n=== "Other"\n\n    More.\n',
}
# where a table of contents is asked for otherwise: the configured marker, or a snippet's
MARKERS = {"custom-marker": "## Summary\n\n{{toc}}\n\nA summary.\n",
           "snippet-toc": '## Summary\n\n--8<-- "toc.md"\n\nA summary.\n'}
ATTR_ID = {"attr-list-id": "## Summary\n\nA paragraph with the header's id.\n{#action-items}\n"}


def _write_postmortems(root: Path, pages: dict[str, str], start: int) -> None:
    text = SAMPLE.read_text()
    front = text[:text.index("\n---\n", 4) + 5]
    for n, (name, prose) in enumerate(pages.items(), start):
        pid = f"INC-2025-{n}"
        page = front.replace("INC-2025-001", pid).replace("title: ", f"title: {name} ", 1)
        if name.startswith("untitled"):  # MkDocs titles the page from its first heading, if an h1 comes first
            page = re.sub(r"^title: .*\n", "", page, flags=re.MULTILINE)
        (root / "postmortems" / "2025" / f"{pid}-{name}.md").write_text(page + "\n" + prose)


def _site(root: Path, extensions: list, workers: int = 2) -> None:
    (root / "snippets").mkdir(exist_ok=True)
    (root / "snippets" / "toc.md").write_text("[TOC]\n\n{{toc}}\n")
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["markdown_extensions"] = extensions
    cfg["validation"] = {"anchors": "warn"}  # links to the header's anchors from other pages are checked
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["workers"] = workers  # 2: the forked child renders pages too
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _build(root: Path, env: dict, out: str = "site", verbose: bool = True) -> tuple[str, dict[str, bytes]]:
    """-v for the plugin's counts; without it, MkDocs checks links to other pages' anchors."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", *(["-v"] if verbose else []), "-d", out], cwd=root,
                          capture_output=True, text=True, env={**ENV, "PMKB_NO_CACHE": "1", **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    site = root / out
    return proc.stderr, {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def _postmortem_pages(site: dict[str, bytes]) -> list[str]:
    """The postmortems' pages in a built site (the default edition leaves restricted ones out)."""
    return [k for k in sorted(site) if re.fullmatch(r"20\d\d/INC-[^/]+/index\.html", k)]


def _counts(stderr: str) -> tuple[int, int] | None:
    found = re.search(r"rendered here with the header kept out of Markdown: (\d+), whole: (\d+)", stderr)
    return found and (int(found.group(1)), int(found.group(2)))


def _whole(stderr: str) -> set[str]:
    """The cases (see _write_postmortems) whose pages were rendered whole."""
    found = re.search(r"kept out of Markdown: \d+, whole: \d+ \(([^)]*)\)", stderr)
    return {re.sub(r"^\d+/INC-\d+-\d+-|\.md$", "", src) for src in found.group(1).split(", ")} if found else set()


SAMPLE_EXTENSIONS = yaml.safe_load((REPO / "mkdocs.yml").read_text())["markdown_extensions"]
EVERY_CASE = [*WHOLE, *ATTR_ID]
EXTENSION_SETS = {  # the extensions, and the pages rendered whole with them
    "sample": (SAMPLE_EXTENSIONS, EVERY_CASE),  # attr_list among them
    "mkdocs-defaults": ([], list(WHOLE)),  # `{#action-items}` is text
    # the author's first heading is an h4, deeper than the toc: it nests under nothing
    "baselevel-and-pymdownx": ([{"toc": {"baselevel": 2, "permalink": "#", "toc_depth": 3}}, "footnotes",
                                "pymdownx.superfences", "pymdownx.details", "attr_list", "pymdownx.tabbed"],
                               [c for c in EVERY_CASE if c != "first-heading-deeper"]),
    # toc configured by its full name, with a marker of its own; a snippet may hold the marker
    "full-name-marker-snippets": ([{"markdown.extensions.toc": {"marker": "{{toc}}", "permalink": True}},
                                  {"pymdownx.snippets": {"base_path": ["snippets"]}}, "pymdownx.tabbed"],
                                 [c for c in WHOLE if c != "toc-marker"] + list(MARKERS)),
}


@pytest.mark.parametrize("name", list(EXTENSION_SETS))
def test_the_site_is_the_one_markdown_makes_of_the_whole_page(tmp_path, name):
    extensions, whole = EXTENSION_SETS[name]
    pages = {**WHOLE, **ALIKE, **ATTR_ID, **MARKERS}
    sites, logs = {}, {}
    for mode, env in (("kept-out", {}), ("whole", {"PMKB_HEADER_RENDER": "markdown"}),
                      ("one-process", {"PMKB_RENDER_AHEAD": "off"})):
        root = copy_sample(tmp_path / mode)
        _write_postmortems(root, pages, 901)
        _site(root, extensions)
        logs[mode], sites[mode] = _build(root, env, verbose=mode == "one-process")
    for mode in ("kept-out", "one-process"):
        assert sites[mode].keys() == sites["whole"].keys()
        differ = [k for k in sites[mode] if sites[mode][k] != sites["whole"][k]]
        assert not differ, (mode, differ[:10])
    # in one process every postmortem page is rendered here: the ones that must be whole are
    n = len(_postmortem_pages(sites["whole"]))
    assert _counts(logs["one-process"]) == (n - len(whole), len(whole))
    assert _whole(logs["one-process"]) == set(whole)
    for mode in ("kept-out", "whole"):  # MkDocs knows the header's anchors: only the link to none is reported
        assert re.findall(r"does not contain an anchor '#([^']*)'", logs[mode]) == ["no-such-anchor"], mode
    for mode, log in logs.items():  # a render's messages once, whichever way the page was rendered
        assert sorted(re.findall(r"Doc file '2025/INC-2025-\d+-([a-z-]+)\.md' contains a link 'missing-page\.md'",
                                 log)) == ["body-timeline", "other-headings"], mode
    # what the header renders to is there: its headings in the table of contents, with their ids
    page = sites["one-process"][next(k for k in sites["one-process"] if "-other-headings/" in k)].decode()
    toc = page[page.index('<nav class="md-nav md-nav--secondary"'):]
    for anchor in ("key-times", "timeline", "action-items", "summary", "timeline-of-the-fix"):
        assert f'href="#{anchor}"' in toc and f'id="{anchor}"' in page, anchor
    assert page.index('id="key-times"') < page.index('id="summary"')


SLUGIFIED_TABS = """  - pymdownx.tabbed:
      alternate_style: true
      slugify: !!python/object/apply:pymdownx.slugs.slugify
        kwds:
          case: lower
"""
WHOLE_PAGE_EXTENSIONS = {  # as written in mkdocs.yml's markdown_extensions
    "abbr": "  - abbr\n", "abbr-full-name": "  - markdown.extensions.abbr\n",
    "extra": "  - pymdownx.extra\n",  # loads abbr
    "striphtml": "  - pymdownx.striphtml\n", "preview": "  - material.extensions.preview\n",
    "slugified-tabs": SLUGIFIED_TABS, "unknown": "  - some_other.extension\n",
}


@pytest.mark.parametrize("name", list(WHOLE_PAGE_EXTENSIONS))
def test_an_extension_that_may_read_the_whole_page_has_every_page_rendered_whole(tmp_path, name):
    """Abbreviations defined in the prose apply to the header's headings too; striphtml strips
    the comment that marks where the prose begins; slugified tabs are numbered against the
    header's ids; what another extension does is unknown."""
    root = copy_sample(tmp_path / "site")
    _write_postmortems(root, {"abbr": "## Summary\n\nThe Key times.\n\n*[Key]: A word of the header's\n",
                              "tabs": '## Summary\n\n=== "Timeline"\n\n    In a tab.\n'}, 901)
    (root / "some_other").mkdir()  # a local extension that changes nothing
    (root / "some_other" / "__init__.py").write_text("")
    (root / "some_other" / "extension.py").write_text(
        "from markdown.extensions import Extension\n\n"
        "class Noop(Extension):\n    def extendMarkdown(self, md):\n        pass\n\n"
        "def makeExtension(**kwargs):\n    return Noop(**kwargs)\n")
    _site(root, ["toc"])
    text = (root / "mkdocs.yml").read_text()
    (root / "mkdocs.yml").write_text(text.replace("markdown_extensions:\n- toc\n",
                                                  "markdown_extensions:\n  - toc\n" + WHOLE_PAGE_EXTENSIONS[name]))
    stderr, site = _build(root, {"PYTHONPATH": str(root)})
    assert _counts(stderr) is None
    if "abbr" in name or name == "extra":
        assert '<abbr title="A word of the header\'s">Key</abbr> times</h2>' in \
            site["2025/INC-2025-901-abbr/index.html"].decode()
    if name == "slugified-tabs":  # numbered against the header's heading, as Markdown does on the whole page
        assert 'id="timeline_1"' in site["2025/INC-2025-902-tabs/index.html"].decode()


def test_a_header_template_with_markdown_of_its_own_is_rendered_whole(tmp_path):
    """An override of postmortem_page.md.j2 may write any Markdown: Markdown renders it."""
    root = copy_sample(tmp_path / "site")
    (root / "templates").mkdir()
    original = (REPO / "templates" / "postmortem_page.md.j2").read_text()
    (root / "templates" / "postmortem_page.md.j2").write_text(
        original.replace("## Key times", "Reviewed by **the review board**.\n\n## Key times", 1))
    _site(root, SAMPLE_EXTENSIONS, workers=1)
    stderr, site = _build(root, {})
    pages = _postmortem_pages(site)
    assert _counts(stderr) == (0, len(pages))
    page = site[pages[0]].decode()
    assert "Reviewed by <strong>the review board</strong>." in page


TOC_HOOK = '''import json
from pathlib import Path

def _items(items):
    return [[i.title, i.id, i.level, getattr(i, "active", None), _items(i.children)] for i in items]

def on_page_context(context, page, config, nav, **kwargs):
    out = Path(config.config_file_path).parent / "tocs.json"
    tocs = json.loads(out.read_text()) if out.exists() else {}
    tocs[page.file.src_uri] = [_items(page.toc.items), sorted(page.present_anchor_ids or ()), page.title]
    out.write_text(json.dumps(tocs, sort_keys=True))
    return context
'''


def test_other_plugins_see_the_table_of_contents_and_anchors_of_the_whole_page(tmp_path):
    """page.toc (which entry is marked active included) and the page's anchors, as a hook sees them."""
    tocs = {}
    for mode, env in (("kept-out", {}), ("whole", {"PMKB_HEADER_RENDER": "markdown"})):
        root = copy_sample(tmp_path / mode)
        _write_postmortems(root, {**WHOLE, **ALIKE, **ATTR_ID}, 901)
        _site(root, SAMPLE_EXTENSIONS)
        (root / "hooks.py").write_text(TOC_HOOK)
        (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
        stderr, _ = _build(root, env)
        tocs[mode] = json.loads((root / "tocs.json").read_text())
        if mode == "kept-out":
            assert _counts(stderr)[0] > 0
    assert tocs["kept-out"] == tocs["whole"]
    page = tocs["kept-out"][next(k for k in tocs["kept-out"] if "-other-headings" in k)]
    assert [i[:4] for i in page[0][:3]] == [["Key times", "key-times", 2, True], ["Timeline", "timeline", 2, None],
                                            ["Action items", "action-items", 2, None]]
