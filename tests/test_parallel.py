"""Checks spread over processes give what one process gives: core.parallel on its own, and
the real CLI on a knowledge base large enough to use workers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmkb.core.parallel import map_chunks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from generate import generate, write_config  # noqa: E402

PARENT = os.getpid()


def _square_with_pid(chunk):
    time.sleep(0.01)  # long enough that a forked child is up before the parent takes every chunk
    return [(x * x, os.getpid()) for x in chunk]


def _die_in_child(chunk):
    if os.getpid() != PARENT:
        os._exit(3)  # a worker killed mid-run (out of memory, a signal)
    return [x + 1 for x in chunk]


def test_results_come_back_in_order_and_the_parent_takes_chunks_too():
    chunks = [list(range(i, i + 5)) for i in range(0, 200, 5)]
    parts = map_chunks(_square_with_pid, chunks, 2)
    assert [v for part in parts for v, _ in part] == [x * x for x in range(200)]
    pids = {pid for part in parts for _, pid in part}
    assert PARENT in pids and len(pids) == 2


def test_chunks_of_a_worker_that_died_are_done_by_the_parent():
    chunks = [[i, i + 1] for i in range(0, 40, 2)]
    assert map_chunks(_die_in_child, chunks, 3) == [[x + 1 for x in c] for c in chunks]


@pytest.mark.parametrize("n", [0, 1])
def test_one_process_needs_no_fork(n):
    chunks = [[1, 2], [3]]
    assert [[v for v, _ in part] for part in map_chunks(_square_with_pid, chunks, n)] == [[1, 4], [9]]
    assert {pid for part in map_chunks(_square_with_pid, chunks, n) for _, pid in part} == {PARENT}


def test_check_with_workers_reports_what_one_process_reports(tmp_path):
    """250 postmortems (workers start at 200), with a duplicate ID and an unreadable file, so
    the knowledge-base stage sees results that crossed a process boundary."""
    generate(tmp_path, 250)
    write_config(tmp_path)
    files = sorted((tmp_path / "docs").rglob("*.md"))
    dup = files[10].read_text(encoding="utf-8")
    (tmp_path / "docs" / files[10].relative_to(tmp_path / "docs").parent / "copy-of-an-id.md").write_text(
        dup, encoding="utf-8")
    files[20].write_text("---\ntitle: [unclosed\n---\n# x\n", encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}

    def check(workers: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json", "--no-cache",
                               "--workers", workers], cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        return json.loads(proc.stdout)

    one = check("1")
    assert one["files_checked"] == 251
    rules = {d["rule"] for d in one["diagnostics"]}
    assert {"duplicate-id", "invalid-yaml"} <= rules, rules
    assert check("2") == one
    assert check("3") == one


def _header_for(key):
    if key == "bad":
        raise ValueError("a template error")
    return (f"<h1>{key}</h1>", {"k": key})


def test_prefetch_without_sharing_hands_every_value_over_in_any_order_and_leaves_failures_to_the_caller():
    from pmkb.core.parallel import Prefetch

    keys = ["a", "bad", "c", "d"]
    ahead = Prefetch(keys, _header_for, share=False)
    try:
        assert ahead.take("a") == ("<h1>a</h1>", {"k": "a"})  # the child's last: waited for
        assert ahead.take("bad") is None  # made by the caller, which then sees the error itself
        assert ahead.take("d") == ("<h1>d</h1>", {"k": "d"})
        assert ahead.take("d") is None  # handed over once
        assert ahead.take("not-asked-for") is None
        assert ahead.handed == 2
    finally:
        ahead.close()


def _made_by(log: Path, key: int) -> int:
    time.sleep(0.02)  # a page's worth of work
    with open(log, "a") as f:  # O_APPEND: lines from both processes stay whole
        f.write(f"{key} {os.getpid()}\n")
    return key * 10


def test_prefetch_shares_keys_between_caller_and_child_each_made_once(tmp_path):
    """The caller takes keys in order and makes those the child has not reached; the child
    works from the last key back. Every key is made exactly once, by one of the two."""
    from pmkb.core.parallel import Prefetch

    log = tmp_path / "made.log"
    keys = list(range(40))
    ahead = Prefetch(keys, lambda k: _made_by(log, k))
    by_caller, by_child = [], []
    try:
        for k in keys:
            got = ahead.take(k)
            if got is None:
                _made_by(log, k)
                by_caller.append(k)
            else:
                assert got == k * 10
                by_child.append(k)
    finally:
        ahead.close()
    made = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    assert sorted(k for k, _ in made) == keys  # each once, none twice
    assert {k for k, pid in made if pid == os.getpid()} == set(by_caller)
    assert by_caller and by_child  # both worked: the caller from the first key, the child from the last
    assert by_caller == keys[:len(by_caller)] and by_child == keys[len(by_caller):]  # they met once


def _unpicklable_on_b(key):
    return (lambda: key) if key == "b" else key.upper()


def test_prefetch_leaves_a_value_it_cannot_send_to_the_caller():
    from pmkb.core.parallel import Prefetch

    ahead = Prefetch(["a", "b", "c"], _unpicklable_on_b, share=False)
    try:
        assert ahead.take("a") == "A"  # the child carried on past b
        assert ahead.take("b") is None
        assert ahead.take("c") == "C"
    finally:
        ahead.close()


def _exit_on_second(key):
    if key == 2:
        os._exit(9)
    return key * 10


def test_prefetch_whose_child_died_answers_none_without_waiting_forever():
    from pmkb.core.parallel import Prefetch

    ahead = Prefetch([1, 2, 3], _exit_on_second, share=False)
    try:
        assert ahead.take(3) == 30
        assert ahead.take(1) is None  # the child died on 2 before it got to 1
    finally:
        ahead.close()


def _set_workers(root: Path, workers: int, **options) -> None:
    import yaml

    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["workers"] = workers
            p["pmkb"].update(options)
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _counts(stderr: str) -> tuple | None:
    """(pages whose render was the child's, pages asked for, pages whose template output was
    the child's or None) from a build's -v output; None without a child."""
    ahead = re.search(r"rendered ahead by a forked process: (\d+) of (\d+) pages", stderr)
    if ahead is None:
        return None
    assert "exports made by a forked process" in stderr  # the child's first work, whatever the mode
    built = re.search(r"put through the template by a forked process: (\d+) pages", stderr)
    return int(ahead.group(1)), int(ahead.group(2)), built and int(built.group(1))


def _written(stderr: str) -> int | None:
    """Pages whose output file the child wrote and MkDocs' process left as it was, from -v."""
    found = re.search(r"written by a forked process: (\d+) pages", stderr)
    return found and int(found.group(1))


def test_pages_rendered_ahead_give_the_site_one_process_gives(tmp_path):
    """With workers, a forked child renders postmortem and generated pages (MkDocs' own render,
    on a copy of the build) while MkDocs renders others, then puts pages through the theme's
    template while MkDocs does the same; the site (search index included) must be byte for byte
    the one a single process builds, whether the child does some pages or all of them, and
    whether it renders a page's template from its own render or from MkDocs'."""
    from sitetools import ENV, copy_sample

    sites, counts, written = {}, {}, {}
    for mode, workers, env in (("one", 1, {}), ("shared", 2, {}), ("child", 2, {"PMKB_RENDER_AHEAD": "all"}),
                               ("templates", 2, {"PMKB_RENDER_AHEAD": "templates"}),
                               ("markdown", 2, {"PMKB_RENDER_AHEAD": "markdown"})):
        root = copy_sample(tmp_path / mode)
        _set_workers(root, workers, exclude=["guides"])
        # a page of the user's in MkDocs' nav, whose title only its render tells, and an icon in its
        # meta: every page shows both, so the child must show them as MkDocs' process has them
        (root / "postmortems" / "guides").mkdir()
        (root / "postmortems" / "guides" / "on-call.md").write_text(
            "---\nicon: material/book-open-variant\n---\n# The on-call guide\n\nWho answers the pager.\n")
        proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-v", "-d", "site"], cwd=root,
                              capture_output=True, text=True, env={**ENV, "PMKB_NO_CACHE": "1", **env}, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        counts[mode] = _counts(proc.stderr)
        written[mode] = _written(proc.stderr)
        site = root / "site"
        sites[mode] = {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    pages = sum(1 for k in sites["one"] if k.endswith(".html")) - 1  # every page but 404.html
    guide = 'href="guides/on-call/" class="md-nav__link">'
    assert guide in sites["one"]["index.html"].decode() and "The on-call guide" in sites["one"]["index.html"].decode()
    pages -= 1  # the guide: MkDocs' own page, not pmkb's
    assert counts["one"] is None
    assert counts["shared"] is not None and counts["shared"][1] == pages
    assert counts["child"] == (pages, pages, pages)  # MkDocs took the child's render and output of every page
    assert counts["templates"] == (0, pages, pages)  # the child's output of pages MkDocs rendered
    assert counts["markdown"][2] is None  # the child renders Markdown alone
    # the child writes the output files of the pages it put through the template, and MkDocs'
    # process, about to write the same bytes, leaves them
    assert written == {"one": None, "shared": counts["shared"][2], "child": pages, "templates": pages,
                       "markdown": None}
    assert 0 < written["shared"] < pages
    for mode in ("shared", "child", "templates", "markdown"):
        assert sites[mode].keys() == sites["one"].keys()
        differ = [k for k in sites["one"] if sites["one"][k] != sites[mode][k]]
        assert not differ, (mode, counts[mode], differ[:10])


def _build_modes(tmp_path: Path, prepare, *args: str) -> dict:
    """The sample, prepared, built by one process and with the child rendering every page:
    mode -> (the build, (pages whose render was the child's, pages), the site's files), and
    "written" -> mode -> the pages the child wrote (see _written). The counts come from a
    second build with -v (which also turns MkDocs' anchor checks off)."""
    from sitetools import ENV, copy_sample

    out = {}
    for mode, workers, env in (("one", 1, {}), ("child", 2, {"PMKB_RENDER_AHEAD": "all"})):
        root = copy_sample(tmp_path / mode)
        _set_workers(root, workers)
        prepare(root)
        runs = []
        for verbose in ((), ("-v",)):
            runs.append(subprocess.run([sys.executable, "-m", "mkdocs", "build", *verbose, "-d", "site", *args],
                                       cwd=root, capture_output=True, text=True, timeout=300,
                                       env={**ENV, "PMKB_NO_CACHE": "1", **env}))
            assert "Traceback" not in runs[-1].stderr
        site = root / "site"
        out[mode] = (runs[0], _counts(runs[1].stderr),
                     {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()})
        out.setdefault("written", {})[mode] = _written(runs[1].stderr)
    return out


def test_messages_of_pages_rendered_ahead_are_logged_and_fail_a_strict_build(tmp_path):
    """MkDocs' warnings about a page's links come from its render: a page the child rendered
    must log them in the build's own process, so `--strict` counts them, and anchors on it
    (the generated header's headings included) must be known to links from other pages."""
    def prepare(root: Path) -> None:
        cfg = (root / "mkdocs.yml").read_text()
        (root / "mkdocs.yml").write_text(cfg + "validation:\n  anchors: warn\n")
        a, b = sorted((root / "postmortems" / "2025").glob("*.md"))[:2]
        a.write_text(a.read_text() + f"\n\nSee [the runbook](../runbooks/missing.md), [this](#no-such-anchor), "
                     f"[its timeline]({b.name}#timeline) and [its nothing]({b.name}#no-such-section).\n")

    built = _build_modes(tmp_path, prepare, "--strict")
    warnings = {}
    for mode in ("one", "child"):
        proc = built[mode][0]
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "Aborted with 3 warnings in strict mode" in proc.stdout, proc.stderr[-2000:]
        warnings[mode] = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings["child"] == warnings["one"]
    text = "\n".join(warnings["one"])
    assert "runbooks/missing.md" in text and "#no-such-anchor" in text and "no-such-section" in text
    assert "#timeline" not in text  # the header's heading is an anchor of the page the child rendered
    assert built["child"][1][0] == built["child"][1][1] == built["child"][1][2]  # every page was the child's


def _with_hook(code: str):
    """A `prepare` for _build_modes: an MkDocs hooks file (a plugin of one module) with `code`."""
    def prepare(root: Path) -> None:
        (root / "hooks.py").write_text(code)
        (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
    return prepare


def test_pages_another_plugin_changed_after_pmkb_are_rendered_by_mkdocs(tmp_path):
    """The child renders the Markdown pmkb makes; a hook that changes it afterwards must get
    MkDocs' render of its own text."""
    built = _build_modes(tmp_path, _with_hook(
        "def on_page_markdown(markdown, page, **kwargs):\n"
        "    if page.file.src_uri.startswith('20'):\n"
        "        return markdown + '\\n\\nAdded by a hook after pmkb.\\n'\n"
        "    return markdown\n"))
    (one, _, site_one), (child, counts, site_child) = built["one"], built["child"]
    assert one.returncode == 0 and child.returncode == 0, child.stderr[-2000:]
    changed = [k for k, v in site_one.items() if k.startswith("20") and k.endswith(".html")]
    assert changed and all(b"Added by a hook after pmkb." in site_one[k] for k in changed)
    assert site_child == site_one
    # all but the postmortems the hook changed; a hook on pages leaves every template to MkDocs
    assert counts == (counts[1] - len(changed), counts[1], None)


def test_markdown_extensions_given_as_objects_turn_rendering_ahead_off(tmp_path):
    """Such an extension may keep what it sees (autorefs does): in a child that would be lost."""
    built = _build_modes(tmp_path, _with_hook(
        "from markdown.extensions.abbr import AbbrExtension\n"
        "def on_config(config, **kwargs):\n"
        "    config.markdown_extensions.append(AbbrExtension())\n"
        "    return config\n"))
    assert built["child"][0].returncode == 0, built["child"][0].stderr[-2000:]
    assert built["child"][1] is None
    assert built["child"][2] == built["one"][2]


def test_output_of_pages_the_child_put_through_the_template_goes_through_other_plugins_post_page(tmp_path):
    """A post_page hook works on the HTML MkDocs is about to write, after the template: it runs
    in MkDocs' process on the child's output as on its own, and does not stop the child."""
    built = _build_modes(tmp_path, _with_hook(
        "def on_post_page(output, page, **kwargs):\n"
        "    return output.replace('</body>', '<!-- post_page: ' + page.file.src_uri + ' --></body>')\n"))
    (one, _, site_one), (child, counts, site_child) = built["one"], built["child"]
    assert one.returncode == 0 and child.returncode == 0, child.stderr[-2000:]
    pages = [k for k in site_one if k.endswith(".html") and k != "404.html"]
    assert all(b"<!-- post_page: " in site_one[k] for k in pages)
    assert counts == (len(pages), len(pages), len(pages))
    # the child wrote every page without the hook's change: MkDocs' process wrote each again
    assert built["written"] == {"one": None, "child": 0}
    assert site_child == site_one


def test_a_page_context_hook_of_another_plugin_leaves_templates_to_mkdocs(tmp_path):
    """A page_context hook may change what the template sees (here: the page's title); the
    child's output would not have it, so every template is rendered by MkDocs."""
    built = _build_modes(tmp_path, _with_hook(
        "def on_page_context(context, page, **kwargs):\n"
        "    context['page'].title = 'Retitled by a hook'\n"
        "    return context\n"))
    (one, _, site_one), (child, counts, site_child) = built["one"], built["child"]
    assert child.returncode == 0, child.stderr[-2000:]
    assert counts[0] == counts[1] and counts[2] is None
    assert b"Retitled by a hook" in site_one["index.html"]
    assert site_child == site_one


class _Template:
    def __init__(self) -> None:
        self.rendered = []

    def render(self, context):
        self.rendered.append(context)
        return "rendered here"


def test_output_made_ahead_is_used_only_for_the_context_it_was_made_with():
    """What the child made is the page's output only if MkDocs hands the template the page,
    nav, content, title and URLs the child had; otherwise the template renders."""
    from types import SimpleNamespace

    from pmkb.render_ahead import Built, Prebuilt

    page, nav = SimpleNamespace(content="<p>x</p>", title="T"), object()
    context = {"nav": nav, "page": page, "base_url": "..", "extra_css": ["a.css"], "extra_javascript": []}
    built = Built(template="main.html", keys=tuple(context), urls=("..", ["a.css"], []), title="T",
                  content="<p>x</p>", html="made ahead", entries=None, logs=[])
    used = []
    template = _Template()
    assert Prebuilt(template, built, page, nav, lambda: used.append(1)).render(dict(context)) == "made ahead"
    for change in ({"base_url": "."}, {"extra_css": []}, {"nav": object()}, {"page": SimpleNamespace()},
                   {"added_by_a_plugin": 1}):
        assert Prebuilt(template, built, page, nav, lambda: used.append(1)).render({**context, **change}) \
            == "rendered here"
    page.content = "<p>changed</p>"
    assert Prebuilt(template, built, page, nav, lambda: used.append(1)).render(dict(context)) == "rendered here"
    page.content, page.title = "<p>x</p>", "Other"
    assert Prebuilt(template, built, page, nav, lambda: used.append(1)).render(dict(context)) == "rendered here"
    assert used == [1] and len(template.rendered) == 7


def _second_round(data):
    prefix = data["prefix"]
    return lambda key: None if key == 3 else f"{prefix}{key}"


def test_prefetch_second_round_starts_with_the_callers_data(tmp_path):
    """After the first round, the child waits for the caller's data and makes second values
    with it (every one here: share_then=False); a None leaves a key to the caller, and nothing
    comes before then_go. Sharing keys works as in the first round (same code)."""
    from pmkb.core.parallel import Prefetch

    log = tmp_path / "made.log"
    keys = list(range(30))
    ahead = Prefetch(keys, lambda k: _made_by(log, k), then=_second_round, share_then=False)
    try:
        for k in keys:
            ahead.take(k)
        assert ahead.take_then(0) is None  # before then_go: nothing
        assert ahead.then_go({"prefix": "second-"})
        assert ahead.then_go({"prefix": "ignored"})  # sent once
        got = {k: ahead.take_then(k) for k in keys}
    finally:
        ahead.close()
    assert got == {k: None if k == 3 else f"second-{k}" for k in keys}
    assert ahead.handed_then == 29


def test_prefetch_second_round_without_a_child_is_the_callers():
    from pmkb.core.parallel import Prefetch

    ahead = Prefetch([1, 2], lambda k: os._exit(9), then=_second_round, share=False)  # the child dies at once
    try:
        assert ahead.take(1) is None and ahead.take(2) is None
        assert not ahead.then_go({"prefix": "x"})
        assert ahead.take_then(1) is None
    finally:
        ahead.close()


def test_the_heap_frozen_during_a_build_is_thawed_when_it_ends_or_fails(tmp_path, monkeypatch):
    """The plugin keeps the collector off the heap from on_files on (gc.freeze); a process that
    builds again (serve, a test run, an API user) must get it back, after a failed build too."""
    import gc
    import logging

    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from sitetools import copy_sample

    from pmkb.mkdocs_plugin import PmkbPlugin

    root = copy_sample(tmp_path / "sample")
    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    seen = []
    on_nav = PmkbPlugin.on_nav

    def spy(self, nav, **kwargs):
        seen.append(gc.get_freeze_count())
        return on_nav(self, nav, **kwargs)

    spy.mkdocs_priority = on_nav.mkdocs_priority
    monkeypatch.setattr(PmkbPlugin, "on_nav", spy)
    logging.disable(logging.CRITICAL)
    try:
        assert gc.get_freeze_count() == 0
        build(load_config(str(root / "mkdocs.yml"), site_dir=str(tmp_path / "site")))
        assert seen[-1] > 0 and gc.get_freeze_count() == 0  # frozen mid-build, thawed after
        (root / "hooks.py").write_text("def on_page_markdown(markdown, **kwargs):\n    raise RuntimeError('boom')\n")
        (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
        with pytest.raises(Exception, match="boom"):
            build(load_config(str(root / "mkdocs.yml"), site_dir=str(tmp_path / "site2")))
        assert len(seen) == 2 and seen[-1] > 0 and gc.get_freeze_count() == 0
    finally:
        logging.disable(logging.NOTSET)
        gc.unfreeze()


def test_mkdocs_write_file_is_its_own_again_after_a_build_that_ends_or_fails(tmp_path, monkeypatch):
    """While MkDocs writes the pages the child put through the template, its write_file leaves
    alone a file the child wrote with the same bytes (render_ahead.SkipWritten). Any later
    writer in the process (serve, a test run, an API user) must get MkDocs' own function back,
    after a build that fails while writing pages too."""
    import logging

    import mkdocs.utils
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from sitetools import copy_sample

    from pmkb.mkdocs_plugin import PmkbPlugin
    from pmkb.render_ahead import SkipWritten

    own = mkdocs.utils.write_file
    root = copy_sample(tmp_path / "sample")
    _set_workers(root, 2)
    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    monkeypatch.setenv("PMKB_NO_CACHE", "1")
    seen = []
    on_post_build = PmkbPlugin.on_post_build

    def spy(self, **kwargs):  # before pmkb's own on_post_build: what MkDocs wrote pages with
        seen.append((mkdocs.utils.write_file, self.skip_written and self.skip_written.skipped))
        return on_post_build(self, **kwargs)

    monkeypatch.setattr(PmkbPlugin, "on_post_build", spy)
    taken = []  # builds in which MkDocs took the child's pages (and write_file was replaced)
    take = PmkbPlugin._take_built_pages
    monkeypatch.setattr(PmkbPlugin, "_take_built_pages", lambda self, *a: (taken.append(1), take(self, *a))[1])
    logging.disable(logging.CRITICAL)
    try:
        build(load_config(str(root / "mkdocs.yml"), site_dir=str(tmp_path / "site")))
        assert isinstance(seen[0][0], SkipWritten) and seen[0][1] > 0
        assert mkdocs.utils.write_file is own
        postmortem = next(p for p in sorted((tmp_path / "site").rglob("index.html")) if "INC-" in p.as_posix())
        (root / "hooks.py").write_text(
            "def on_post_page(output, page, **kwargs):\n"
            f"    if page.file.dest_uri == {postmortem.relative_to(tmp_path / 'site').as_posix()!r}:\n"
            "        raise RuntimeError('boom')\n"
            "    return output\n")
        (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
        with pytest.raises(Exception, match="boom"):
            build(load_config(str(root / "mkdocs.yml"), site_dir=str(tmp_path / "site2")))
        assert len(taken) == 2 and len(seen) == 1 and mkdocs.utils.write_file is own
    finally:
        logging.disable(logging.NOTSET)
        mkdocs.utils.write_file = own
