"""Under `mkdocs serve`, a page's render kept for the next rebuild (pmkb.render_memo): a rebuild
renders again exactly the pages whose Markdown changed, or every page when anything else a
render reads changed (the site's files, Markdown or validation settings), and the site is byte
for byte a fresh build's. What a kept render logged is logged again in every build."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml
from sitetools import ENV, copy_sample, same_as_a_fresh_build

PM = "2025/INC-2025-001-sso-saml-signing-cert-expiry.md"  # a postmortem of the sample, by src path
OTHER = "2025/INC-2025-002-android-throttled-rate-limit-key.md"


class _Session:
    """One plugin instance across builds, as `mkdocs serve` keeps it. Each build reports the pages
    MkDocs' own Page.render converted, the Markdown every page was rendered from, and the
    warnings logged."""

    def __init__(self, root: Path, monkeypatch) -> None:
        from mkdocs.config import load_config
        from mkdocs.structure.pages import Page

        import pmkb.core.kb as kb
        from pmkb import render_memo

        monkeypatch.setattr(kb.ParseCache, "RACY_NS", -10**18)  # trust file stats at once (a test is fast)
        for k in ("SOURCE_DATE_EPOCH", "NO_MKDOCS_2_WARNING"):
            monkeypatch.setenv(k, ENV[k])
        monkeypatch.setenv("PMKB_NO_CACHE", "1")
        self.root, self.served = root, root / "served"
        self.rendered: list[str] = []  # by MkDocs' Page.render, this build
        self.markdown: dict[str, str] = {}  # src -> the Markdown its render was asked for, this build
        self.warnings: list[str] = []
        real_render, real_memo = Page.render, render_memo.RenderMemo.render

        def page_render(page, config, files):
            self.rendered.append(page.file.src_uri)
            return real_render(page, config, files)

        def memo_render(memo, page, config, files, render):
            self.markdown[page.file.src_uri] = page.markdown
            return real_memo(memo, page, config, files, render)

        monkeypatch.setattr(Page, "render", page_render)
        monkeypatch.setattr(render_memo.RenderMemo, "render", memo_render)

        session = self

        class Warnings(logging.Handler):
            def emit(self, record):
                session.warnings.append(record.getMessage())

        monkeypatch.setattr(logging.getLogger("mkdocs"), "handlers", [Warnings(logging.WARNING)])
        monkeypatch.setattr(logging.getLogger("mkdocs"), "level", logging.INFO)
        self.config = load_config(str(root / "mkdocs.yml"), site_dir=str(self.served))
        self.config.plugins.on_startup(command="serve", dirty=False)
        self.plugin = self.config.plugins["pmkb"]

    def build(self) -> None:
        from mkdocs.commands.build import build as mkdocs_build
        from mkdocs.config import load_config

        self.rendered, self.markdown, self.warnings[:] = [], {}, []
        config = load_config(str(self.root / "mkdocs.yml"), site_dir=str(self.served))
        assert config.plugins["pmkb"] is self.plugin  # the instance serve keeps
        mkdocs_build(config)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _append(path: Path, text: str) -> None:
    _edit(path, path.read_text()[-40:], path.read_text()[-40:] + text)


@pytest.fixture
def kb(tmp_path):
    return copy_sample(tmp_path / "kb")


def test_a_rebuild_renders_again_the_pages_whose_markdown_changed_and_no_other(kb, tmp_path, monkeypatch):
    docs = kb / "postmortems"
    session = _Session(kb, monkeypatch)
    session.build()
    before = dict(session.markdown)
    assert sorted(session.rendered) == sorted(before)  # the first build renders every page

    _append(docs / PM, "\nA sentence added by the edit.\n")
    session.build()
    changed = sorted(src for src, text in session.markdown.items() if before.get(src) != text)
    assert PM in changed and 0 < len(changed) < len(session.markdown) // 4
    assert sorted(session.rendered) == changed
    assert session.plugin.render_memo.reused == len(session.markdown) - len(changed)
    fresh = same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")
    assert b"A sentence added by the edit." in fresh[Path(PM[:-3]) / "index.html"]

    # a title edit changes every index and rollup that lists it, and the headers that name it
    before = dict(session.markdown)
    _edit(docs / PM, "title: ", "title: Edited ")
    session.build()
    changed = sorted(src for src, text in session.markdown.items() if before.get(src) != text)
    assert sorted(session.rendered) == changed and len(changed) > 5
    same_as_a_fresh_build(kb, session.served, tmp_path / "fresh-2")


def test_a_kept_render_logs_its_messages_and_anchor_checks_use_this_builds_pages(kb, tmp_path, monkeypatch):
    """A broken link's warning comes back in every build (serve's log, --strict); a link to
    an anchor that an edit removed from another page is reported though the linking page's
    render was kept."""
    cfg = yaml.safe_load((kb / "mkdocs.yml").read_text())
    cfg["validation"] = {"anchors": "warn"}
    (kb / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    docs = kb / "postmortems"
    target = Path(OTHER).name
    _append(docs / PM, f"\nSee [gone](missing-page.md) and [the fix]({target}#a-heading-to-remove).\n")
    _append(docs / OTHER, "\n## A heading to remove\n\nSome text.\n")
    session = _Session(kb, monkeypatch)
    session.build()
    gone = [w for w in session.warnings if "missing-page.md" in w]
    assert len(gone) == 1 and "a-heading-to-remove" not in " ".join(session.warnings)

    before = dict(session.markdown)
    _append(sorted((docs / "2026").glob("INC-*.md"))[-1], "\nAn unrelated edit.\n")
    session.build()
    assert session.markdown[PM] == before[PM] and session.markdown[OTHER] == before[OTHER]
    assert PM not in session.rendered and OTHER not in session.rendered
    assert [w for w in session.warnings if "missing-page.md" in w] == gone  # once, as in the first build

    _edit(docs / OTHER, "## A heading to remove\n", "## A heading renamed\n")
    session.build()
    assert OTHER in session.rendered and PM not in session.rendered
    missing = [w for w in session.warnings if "#a-heading-to-remove" in w]
    assert len(missing) == 1 and PM in missing[0]
    same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")


def test_a_new_file_renders_every_page_again(kb, tmp_path, monkeypatch):
    """Links resolve against the site's files: a file added makes an unchanged page's link to it
    resolve, so no render is kept."""
    docs = kb / "postmortems"
    _append(docs / PM, "\nSee [the diagram](diagram.svg).\n")
    session = _Session(kb, monkeypatch)
    session.build()
    assert any("diagram.svg" in w for w in session.warnings)

    (docs / "2025" / "diagram.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    session.build()
    assert sorted(session.rendered) == sorted(session.markdown) and session.plugin.render_memo.reused == 0
    assert not any("diagram.svg" in w for w in session.warnings)
    fresh = same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")
    assert b'href="../diagram.svg"' in fresh[Path(PM[:-3]) / "index.html"]


def test_changed_markdown_settings_render_every_page_again(kb, tmp_path, monkeypatch):
    session = _Session(kb, monkeypatch)
    session.build()
    cfg = yaml.safe_load((kb / "mkdocs.yml").read_text())
    cfg["markdown_extensions"][-1] = {"toc": {"permalink": "#"}}
    (kb / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    session.build()
    assert sorted(session.rendered) == sorted(session.markdown) and session.plugin.render_memo.reused == 0
    fresh = same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")
    assert b'title="Permanent link">#</a>' in fresh[Path(PM[:-3]) / "index.html"]


HOOK = '''
from mkdocs.structure.toc import AnchorLink


def on_page_content(html, page, **kwargs):
    # a plugin that changes the table of contents in place: a kept one must not keep the change
    page.toc.items.append(AnchorLink("Added by a hook", "added-by-a-hook", 2))
    page.present_anchor_ids.add("added-by-a-hook")
    return html
'''


def _with_hook(kb: Path, source: str) -> None:
    """The site's mkdocs.yml runs `source` as a hooks module: a stand-in for another plugin."""
    (kb / "hooks.py").write_text(source)
    cfg = yaml.safe_load((kb / "mkdocs.yml").read_text())
    cfg["hooks"] = ["hooks.py"]
    (kb / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_another_plugin_changing_the_toc_in_place_gets_a_copy(kb, tmp_path, monkeypatch):
    _with_hook(kb, HOOK)
    session = _Session(kb, monkeypatch)
    session.build()
    _append(kb / "postmortems" / OTHER, "\nAn edit.\n")
    session.build()
    session.build()
    assert PM not in session.rendered and session.plugin.render_memo.reused > 0
    fresh = same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")
    assert fresh[Path(PM[:-3]) / "index.html"].count(b'href="#added-by-a-hook"') == 1


CLASS_HOOK = '''
from mkdocs.structure.pages import Page


class Counted(Page):
    """Another plugin's page class whose render sets more than MkDocs' does."""

    def render(self, config, files):
        super().render(config, files)
        self.paragraphs = self.content.count("<p>")


def on_pre_page(page, **kwargs):
    page.__class__ = Counted
    return page


def on_page_content(html, page, **kwargs):
    return html + f"<!-- paragraphs: {getattr(page, 'paragraphs', None)} -->"
'''


def test_a_render_that_sets_more_than_mkdocs_is_not_kept(kb, tmp_path, monkeypatch):
    _with_hook(kb, CLASS_HOOK)
    session = _Session(kb, monkeypatch)
    session.build()
    first = sorted(session.rendered)
    _append(kb / "postmortems" / OTHER, "\nAn edit.\n")
    session.build()
    assert sorted(session.rendered) == first and session.plugin.render_memo.reused == 0
    fresh = same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")
    assert b"<!-- paragraphs: None -->" not in fresh[Path(PM[:-3]) / "index.html"]


def test_snippets_and_the_switch_render_every_page(kb, tmp_path, monkeypatch):
    """A snippet's file can change while the page's text does not: with pymdownx.snippets no
    render is kept, and an edit to the snippet shows."""
    cfg = yaml.safe_load((kb / "mkdocs.yml").read_text())
    cfg["markdown_extensions"].append({"pymdownx.snippets": {"base_path": [str(kb / "snippets")]}})
    (kb / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (kb / "snippets").mkdir()
    (kb / "snippets" / "note.md").write_text("The first text of the snippet.\n")
    _append(kb / "postmortems" / PM, '\n--8<-- "note.md"\n')
    session = _Session(kb, monkeypatch)
    session.build()
    assert session.plugin.render_memo is None
    (kb / "snippets" / "note.md").write_text("The snippet, edited.\n")
    session.build()
    assert PM in session.rendered
    fresh = same_as_a_fresh_build(kb, session.served, tmp_path / "fresh")
    assert b"The snippet, edited." in fresh[Path(PM[:-3]) / "index.html"]


def test_pmkb_render_memo_off_renders_every_page(kb, monkeypatch):
    monkeypatch.setenv("PMKB_RENDER_MEMO", "off")
    session = _Session(kb, monkeypatch)
    session.build()
    first = sorted(session.rendered)
    _append(kb / "postmortems" / PM, "\nAn edit.\n")
    session.build()
    assert session.plugin.render_memo is None
    assert sorted(session.rendered) == first and PM in first


def test_another_threads_message_during_a_render_is_logged_once_not_kept_with_it(kb, monkeypatch):
    """Under serve the file watcher and the web server log from their own threads; a message
    of theirs that comes while a page renders is not that page's, to log again in every build."""
    import threading

    from mkdocs.structure.pages import Page

    session = _Session(kb, monkeypatch)
    session_render, during = Page.render, []

    def render(page, config, files):
        if not during:  # the first page of the session
            during.append(page.file.src_uri)
            other = threading.Thread(target=logging.getLogger("mkdocs.livereload").warning,
                                     args=("a message from another thread",))
            other.start()
            other.join()
        return session_render(page, config, files)

    monkeypatch.setattr(Page, "render", render)
    session.build()
    assert session.warnings.count("a message from another thread") == 1
    _append(kb / "postmortems" / OTHER, "\nAn edit.\n")
    session.build()
    assert during[0] != OTHER and during[0] not in session.rendered  # its render was kept
    assert session.plugin.render_memo.reused > 0
    assert "a message from another thread" not in session.warnings
