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


def test_prefetch_hands_over_in_any_order_and_leaves_failures_to_the_caller():
    from pmkb.core.parallel import Prefetch

    keys = ["a", "bad", "c", "d"]
    ahead = Prefetch(keys, _header_for, batch=2)
    try:
        assert ahead.take("d") == ("<h1>d</h1>", {"k": "d"})
        assert ahead.take("bad") is None  # made by the caller, which then sees the error itself
        assert ahead.take("a") == ("<h1>a</h1>", {"k": "a"})
        assert ahead.take("a") is None  # handed over once
        assert ahead.take("not-asked-for") is None
        assert ahead.handed == 2
    finally:
        ahead.close()


def _exit_on_second(key):
    if key == 2:
        os._exit(9)
    return key * 10


def test_prefetch_whose_child_died_answers_none_without_waiting_forever():
    from pmkb.core.parallel import Prefetch

    ahead = Prefetch([1, 2, 3], _exit_on_second, batch=1)
    try:
        assert ahead.take(1) == 10
        assert ahead.take(3) is None
    finally:
        ahead.close()


def _set_workers(root: Path, workers: int) -> None:
    import yaml

    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"]["workers"] = workers
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_headers_and_pages_rendered_ahead_give_the_site_one_process_gives(tmp_path):
    """With workers, a forked child renders every postmortem's header and the generated table
    and problem pages while MkDocs renders pages; the site must be byte for byte the one a
    single process builds."""
    from sitetools import ENV, copy_sample, site_postmortems

    sites = {}
    for workers in (1, 2):
        root = copy_sample(tmp_path / f"w{workers}")
        _set_workers(root, workers)
        proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-v", "-d", "site"], cwd=root,
                              capture_output=True, text=True, env={**ENV, "PMKB_NO_CACHE": "1"}, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        ahead = re.search(r"rendered ahead by a forked process: (\d+) of (\d+) postmortem headers, "
                          r"(\d+) of (\d+) generated pages", proc.stderr)
        if workers == 1:
            assert ahead is None
        else:
            assert ahead is not None, proc.stderr[-2000:]
            assert int(ahead.group(1)) == int(ahead.group(2)) == len(site_postmortems(root))
            assert int(ahead.group(3)) == int(ahead.group(4)) > 10  # tables, action rollups, problems
        site = root / "site"
        sites[workers] = {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert sites[1].keys() == sites[2].keys()
    differ = [k for k in sites[1] if sites[1][k] != sites[2][k]]
    assert not differ, differ[:10]
