"""Hostile and broken input: one clear diagnostic each, never a traceback, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmkb.core.config import Config
from pmkb.core.kb import check, check_file_content, dated_findings
from pmkb.core.model import Postmortem
from pmkb.core.parse import parse_text
from pmkb.core.findings import Findings
from sitetools import ENV, build

GOOD = textwrap.dedent("""\
    ---
    id: INC-2024-001
    title: Good one
    date: 2024-03-14
    severity: SEV3
    status: draft
    times:
      started: "10:00"
      resolved: "10:40"
    ---

    ## Summary

    The search index served stale results.

    ## Impact

    Search results were stale for 40 minutes.

    ## Root Cause

    The indexer had no alert for a stalled partition.
    """)

BOMB = "---\n" + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9)) + "---\n## Summary\n"

BROKEN = {  # file name -> (content, the rule it must get, the line)
    "no-front-matter.md": (b"# Just a heading\n\nText.\n", "missing-front-matter", 1),
    "unterminated.md": (b"---\nid: INC-2024-002\ntitle: x\n\n## Summary\n", "unterminated-front-matter", 1),
    "yaml-syntax.md": (b"---\nid: INC-2024-003\ntitle: [unclosed\n---\n", "invalid-yaml", 4),
    "list.md": (b"---\n- id\n- title\n---\n", "front-matter-not-mapping", 2),
    "scalar.md": (b"---\njust text\n---\n", "front-matter-not-mapping", 2),
    "wrong-types.md": (GOOD.replace("id: INC-2024-001", "id: INC-2024-004").replace(
        "title: Good one", "title: Good one\nservices: {a: 1}").encode(), "invalid-type", 4),
    "impossible-date.md": (GOOD.replace("INC-2024-001", "INC-2024-005").replace("2024-03-14", "2024-02-30").encode(),
                           "invalid-date", 4),
    "bad-time.md": (GOOD.replace("INC-2024-001", "INC-2024-006").replace('"10:00"', '"ten o\'clock"').encode(),
                    "invalid-time", 8),
    "empty.md": (b"", "empty-file", 1),
    "latin1.md": (GOOD.replace("INC-2024-001", "INC-2024-007").replace("Good one", "Caf\xe9").encode("latin-1"),
                  "unreadable-file", 1),
    "binary.md": (bytes(range(256)) * 4, "unreadable-file", 1),
    "huge.md": (GOOD.replace("INC-2024-001", "INC-2024-008").encode() + b"x" * 5000, "file-too-large", 1),
    "duplicate-key.md": (GOOD.replace("INC-2024-001", "INC-2024-009").replace(
        "severity: SEV3", "severity: SEV3\nseverity: SEV1").encode(), "duplicate-key", 6),
    "bomb.md": (BOMB.encode(), "unsafe-yaml", None),
    "python-tag.md": (b"---\nid: !!python/object/apply:os.system ['touch PWNED']\n---\n", "unsafe-yaml", 2),
}


@pytest.fixture
def broken_kb(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb:\n      max_file_size: 2000\n")
    (docs / "good.md").write_text(GOOD)
    for name, (data, _, _) in BROKEN.items():
        (docs / name).write_bytes(data)
    return tmp_path


def test_every_broken_file_gets_its_diagnostic_and_the_rest_are_checked(broken_kb):
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json"], cwd=broken_kb,
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["files_checked"] == len(BROKEN) + 1
    by_file: dict[str, list] = {}
    for d in result["diagnostics"]:
        by_file.setdefault(Path(d["path"]).name, []).append(d)
    assert "good.md" not in by_file
    for name, (_, rule, line) in BROKEN.items():
        found = [d for d in by_file.get(name, []) if d["rule"] == rule]
        assert len(found) == 1, (name, by_file.get(name))
        assert found[0]["severity"] == "error" and found[0]["message"]
        if line is not None:
            assert found[0]["line"] == line, (name, found[0])
    assert not (broken_kb / "PWNED").exists()


def test_the_site_still_builds_without_strict_and_fails_with_it(broken_kb):
    plain = build(broken_kb)
    assert plain.returncode == 0, plain.stderr
    assert "Traceback" not in plain.stderr
    assert (broken_kb / "site/good/index.html").exists()
    for name in ("binary", "bomb", "python-tag", "yaml-syntax", "huge", "latin1"):
        page = (broken_kb / f"site/{name}/index.html").read_text()
        assert "could not be read" in page, name
    strict = build(broken_kb, "--strict", out="site2")
    assert strict.returncode != 0 and "Traceback" not in strict.stderr
    assert not (broken_kb / "PWNED").exists()


def _cfg(tmp_path: Path) -> Config:
    return Config.from_options({}, root=tmp_path, docs_dir="docs")


def test_alias_bomb_is_refused_with_bounded_memory(tmp_path):
    cfg = _cfg(tmp_path)
    tracemalloc.start()
    pm, diags = parse_text(BOMB, Postmortem("bomb.md", "bomb.md"), Findings("bomb.md", cfg), cfg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [d.rule for d in diags] == ["unsafe-yaml"] and pm.fatal
    assert peak < 30 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_recursive_alias_is_refused(tmp_path):
    cfg = _cfg(tmp_path)
    text = "---\na: &a [1, *a]\n---\n"
    pm, diags = parse_text(text, Postmortem("r.md", "r.md"), Findings("r.md", cfg), cfg)
    assert pm.fatal and diags and diags[0].rule in ("unsafe-yaml", "invalid-yaml")


@pytest.mark.parametrize("shape", ["list", "mapping", "block"])
def test_front_matter_nested_as_deep_as_libyaml_allows_gets_diagnostics(tmp_path, shape):
    """libyaml stops at 1,000 levels; building the values must not run out of Python stack first."""
    depth = 990
    value = {"list": "[" * depth + "x" + "]" * depth, "mapping": "{a: " * depth + "x" + "}" * depth,
             "block": "".join("\n" + "  " * (i + 1) + "a:" for i in range(depth)) + " x"}[shape]
    text = f"---\nid: INC-2024-001\ntitle: Deep\ndate: 2024-03-14\nseverity: SEV3\ntags: {value}\n---\n"
    cfg = _cfg(tmp_path)
    pm, diags = parse_text(text, Postmortem("d.md", "d.md"), Findings("d.md", cfg), cfg)
    assert not pm.fatal and pm.id == "INC-2024-001"
    assert [(d.rule, d.span.line) for d in diags] == [("invalid-type", 7 if shape == "block" else 6)]


@pytest.mark.parametrize("value", ["!!bool maybe", "!!int", "!!int ''", "!!float", "!!bool", "!!null x"])
def test_an_explicit_tag_on_text_it_cannot_read_keeps_the_text(tmp_path, value):
    """`!!bool maybe` used to stop the whole run ("internal error: KeyError")."""
    cfg = _cfg(tmp_path)
    text = f"---\nid: INC-2024-001\ntitle: Tagged\ndate: 2024-03-14\nseverity: SEV3\nproblem: {value}\n---\n"
    pm, diags = parse_text(text, Postmortem("t.md", "t.md"), Findings("t.md", cfg), cfg)
    assert not pm.fatal and pm.id == "INC-2024-001"
    md = tmp_path / "t.md"
    md.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json", str(md)], cwd=tmp_path,
                          capture_output=True, text=True, env=ENV)
    assert proc.returncode in (0, 1) and "internal error" not in proc.stderr, proc.stderr
    assert all(d["path"].endswith("t.md") for d in json.loads(proc.stdout)["diagnostics"])


# ------------------------------------------------------------ property tests --
KEYS = ["id", "title", "date", "severity", "status", "authors", "services", "tags", "detection", "roles", "times",
        "duration", "impact", "timeline", "action_items", "related", "problem", "visibility", "severty"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["SEV1", "p2", "14:02", "2024-02-30", "25:99", "1h 5m",
                                                            "2024-03-14T10:00:00Z", "http://x", "javascript:x", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS + ["time", "event",
                                                                                               "owner", "due",
                                                                                               "action", "started",
                                                                                               "resolved"]),
                                                                       inner, max_size=5)), max_leaves=12)


def _run(tmp_path: Path, data: bytes) -> None:
    cfg = _cfg(tmp_path)
    path = tmp_path / "docs" / "x.md"
    pm, diags = check_file_content(path, "x.md", "x.md", cfg, data)
    diags = diags + dated_findings(pm, "x.md", cfg, cfg.today())
    for d in diags:
        assert d.rule and d.span.line >= 1 and d.severity in ("error", "warning", "notice")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=12), st.text(max_size=300))
def test_random_front_matter_gives_diagnostics_never_exceptions(tmp_path, fm, body):
    import yaml

    text = "---\n" + yaml.safe_dump(fm, allow_unicode=True) + "---\n" + body
    _run(tmp_path, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(GOOD)), st.integers(0, 20), st.text(max_size=8)), max_size=6))
def test_mutated_postmortems_give_diagnostics_never_exceptions(tmp_path, edits):
    text = GOOD
    for pos, cut, insert in edits:
        pos = min(pos, len(text))
        text = text[:pos] + insert + text[pos + cut:]
    _run(tmp_path, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_random_bytes_give_diagnostics_never_exceptions(tmp_path, data):
    _run(tmp_path, data)


def test_whole_knowledge_base_of_random_files_checks(tmp_path):
    """The KB-wide stage (ids, related, people) also survives what the file stage let through."""
    docs = tmp_path / "docs"
    docs.mkdir()
    variants = [GOOD, GOOD.replace("title: Good one", "title: [a, b]"), GOOD.replace("INC-2024-001", "x y"),
                GOOD.replace("status: draft", "related: [INC-2024-001, 7, null]\nauthors: {a: b}")]
    for i, v in enumerate(variants):
        (docs / f"f{i}.md").write_text(v)
    result = check(_cfg(tmp_path))
    assert result.files_checked == len(variants)
    assert any(d.rule == "duplicate-id" for d in result.diagnostics)


# ------------------------------------------------------------ writes -------------
KILLER = textwrap.dedent("""\
    import os, sys, time
    from pathlib import Path
    import pmkb.core.safe_write as sw
    marker = Path(sys.argv[3])
    def stuck(fd):
        marker.write_text("writing")  # the temporary file is written; now we hang before the rename
        time.sleep(60)
    sw.os.fsync = stuck
    target = Path(sys.argv[2])
    if sys.argv[1] == "replace":
        sw.replace_file(target, "NEW CONTENT\\n" * 1000, target.read_bytes())
    else:
        sw.write_new(target, "NEW CONTENT\\n" * 1000)
    """)


@pytest.mark.parametrize("mode", ["replace", "new"])
def test_a_process_killed_mid_write_leaves_the_original_intact(tmp_path, mode):
    target = tmp_path / "postmortem.md"
    original = GOOD.encode()
    if mode == "replace":
        target.write_bytes(original)
    marker = tmp_path / "marker"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.Popen([sys.executable, str(script), mode, str(target), str(marker)])
    deadline = time.time() + 30
    while not marker.exists():
        assert time.time() < deadline and proc.poll() is None, "the writer never started"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if mode == "replace":
        assert target.read_bytes() == original
    else:
        assert not target.exists()  # no half-written file under the final name


def test_replace_refuses_when_the_file_changed_since_it_was_read(tmp_path):
    from pmkb.core.safe_write import FileExists, replace_file

    target = tmp_path / "p.md"
    target.write_text("mine, edited meanwhile\n")
    with pytest.raises(FileExists):
        replace_file(target, "theirs\n", b"what we read before\n")
    assert target.read_text() == "mine, edited meanwhile\n"


# ------------------------------------------------------------ paths ----------------
def test_ids_services_and_tags_never_escape_their_folder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    evil = GOOD.replace("title: Good one", "title: Good one\nservices: ['../../../etc/passwd', '..', '/abs']\n"
                        "tags: ['../x', '~root']\nproblem: ../../../problem")
    (docs / "evil.md").write_text(evil)
    (tmp_path / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb\n")
    proc = build(tmp_path)
    assert proc.returncode == 0, proc.stderr
    site = (tmp_path / "site").resolve()
    cache = re.compile(r"\.pmkb_cache/(\.gitignore|CACHEDIR\.TAG|v\d+/[0-9a-f]{24}/[0-9a-f]{2}\.json)")
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and site not in p.resolve().parents
               and p.resolve() != (docs / "evil.md").resolve() and p.name != "mkdocs.yml"
               and not cache.fullmatch(p.relative_to(tmp_path).as_posix())]  # the results cache, by its fixed names
    assert outside == []
    services = sorted(p.name for p in (site / "services").iterdir())
    assert all(all(c.isalnum() or c in "-." for c in name) for name in services)
    assert "etc-passwd" in services


def test_pmkb_new_keeps_the_file_in_its_year_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nplugins:\n  - pmkb\n")
    proc = subprocess.run([sys.executable, "-m", "pmkb", "new", "--title", "../../../escape attempt", "--date",
                           "2024-01-02"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    path = (tmp_path / proc.stdout.strip()).resolve()
    assert path.parent == (tmp_path / "docs/2024").resolve()
    assert path.name == "INC-2024-001-escape-attempt.md"
