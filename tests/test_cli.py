"""The `pmkb` command as users run it: exit codes, JSON shape, paths, `new` and `rules`."""

from __future__ import annotations

import re

import pytest

from conftest import KB, fixture_text
from pmkb.core.rules.registry import REGISTRY

CLEAN = fixture_text("clean-sev2.md")  # INC-2024-001: passes every check
OTHER = fixture_text("other-sev3.md")  # INC-2024-002
TYPO = CLEAN.replace("services: [checkout]", "servces: [checkout]")  # one warning: PM107 on line 8
BROKEN = CLEAN.replace("severity: SEV2", "severity: SEV2: major")  # PM003 on line 5, column 15
DIAGNOSTIC_KEYS = ["path", "line", "column", "end_line", "end_column", "code", "rule", "severity", "message",
                   "suggestion"]


@pytest.fixture
def clean_kb(make_kb) -> KB:
    return make_kb({"2024/a.md": CLEAN, "2024/b.md": OTHER})


# ---- exit codes -------------------------------------------------------------------------------


def test_exit_0_when_clean(clean_kb):
    run = clean_kb.run("check")
    assert (run.returncode, run.stdout.strip(), run.stderr) == (0, "Checked 2 files: no problems.", "")
    assert clean_kb.check("--strict")[:2] == (0, {"files_checked": 2, "diagnostics": []})


def test_exit_1_with_errors(make_kb):
    k = make_kb({"2024/a.md": BROKEN, "2024/b.md": OTHER})
    run = k.run("check")
    assert run.returncode == 1
    assert "docs/2024/a.md:5:15: error invalid-yaml " in run.stdout
    assert run.stdout.rstrip().endswith("Checked 2 files: 1 error, 0 warnings.")


def test_warnings_fail_only_under_strict(make_kb):
    k = make_kb({"2024/a.md": TYPO, "2024/b.md": OTHER})
    rc, data, _ = k.check()
    assert rc == 0
    assert [(d["code"], d["severity"], d["line"]) for d in data["diagnostics"]] == [("PM107", "warning", 8)]
    rc, strict, _ = k.check("--strict")
    assert rc == 1 and strict == data


def test_notices_never_fail_even_under_strict(clean_kb):
    rc, data, _ = clean_kb.check("--strict", "--as-of", "2099-06-01")
    assert rc == 0
    assert [(d["code"], d["severity"]) for d in data["diagnostics"]] == [("PM407", "notice")]


@pytest.mark.parametrize(
    ("options", "key", "also"),
    [
        ({"timezone": "Mars/Base"}, "'timezone'", "Mars/Base"),
        ({"timezon": "UTC"}, "'timezon'", "did you mean 'timezone'"),
        ({"rules": {"no-such-rule": "off"}}, "'rules.no-such-rule'", "unknown rule"),
        ({"rules": {"unknown-key": "loud"}}, "'rules.unknown-key'", "loud"),
        ({"max_file_size": -1}, "'max_file_size'", "positive"),
        ({"id_prefix": "inc"}, "'id_prefix'", "upper-case"),
    ],
)
def test_exit_2_for_bad_configuration_naming_the_key(options, key, also, make_kb):
    k = make_kb({"2024/a.md": CLEAN}, options=options)
    for args in (("check", "--format", "json"), ("new", "--title", "X", "--date", "2024-05-01")):
        run = k.run(*args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert key in run.stderr and also in run.stderr
        assert run.stdout == ""
        assert "Traceback" not in run.stderr
    assert sorted(p.name for p in (k.docs / "2024").iterdir()) == ["a.md"]  # `new` wrote nothing


def test_exit_2_for_unreadable_mkdocs_yml(kb):
    kb.config(raw="site_name: t\nplugins: [search, pmkb\n")
    run = kb.run("check")
    assert run.returncode == 2 and "mkdocs.yml" in run.stderr and "Traceback" not in run.stderr


def test_mkdocs_yml_python_tags_are_ignored_not_run(kb, tmp_path):
    """A real-world mkdocs.yml (Material's emoji config) has python tags; they must neither break nor run."""
    kb.config(raw=(
        "site_name: t\ndocs_dir: docs\nmarkdown_extensions:\n  - pymdownx.emoji:\n"
        "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n"
        f"      boom: !!python/object/apply:os.system [touch {tmp_path / 'pwned'}]\n"
        "extra:\n  token: !ENV [NO_SUCH_VARIABLE, x]\n"
        "plugins:\n  - search\n  - pmkb:\n      max_file_size: 200\n"
    ))
    kb.write("2024/a.md", CLEAN)
    rc, data, _ = kb.check()
    assert rc == 1 and [d["code"] for d in data["diagnostics"]] == ["PM008"]  # the options were read
    assert not (tmp_path / "pwned").exists()


def test_exit_2_for_missing_config_file_given_explicitly(clean_kb):
    run = clean_kb.run("check", "-f", "nope.yml")
    assert run.returncode == 2 and "nope.yml" in run.stderr


@pytest.mark.parametrize("args", [("--format", "xml"), ("--format", "JSON5"), ("--as-of", "yesterday"),
                                  ("docs/2024/missing.md",), ("--no-such-flag",)])
def test_exit_2_for_usage_errors(args, clean_kb):
    run = clean_kb.run("check", *args)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert args[-1] in run.stderr


# ---- JSON shape and paths ----------------------------------------------------------------------


def test_json_shape(make_kb):
    k = make_kb({"2024/a.md": TYPO.replace("ticket: https://tracker.example.com/OPS-1", "ticket: OPS-1"),
                 "2024/b.md": OTHER})
    rc, data, _ = k.check()
    assert rc == 1
    assert list(data) == ["files_checked", "diagnostics"]
    assert data["files_checked"] == 2
    assert [list(d) for d in data["diagnostics"]] == [DIAGNOSTIC_KEYS, DIAGNOSTIC_KEYS]
    typo, url = data["diagnostics"]
    assert typo == {
        "path": "docs/2024/a.md", "line": 8, "column": 1, "end_line": 8, "end_column": 8, "code": "PM107",
        "rule": "unknown-key", "severity": "warning", "message": "unknown key 'servces'",
        "suggestion": "did you mean 'services'?",
    }
    assert (url["line"], url["column"], url["end_line"], url["end_column"]) == (36, 13, 36, 18)
    assert (url["code"], url["rule"], url["severity"]) == ("PM112", "invalid-url", "error")
    assert "OPS-1" in url["message"] and isinstance(url["suggestion"], str)


def test_json_suggestion_is_null_when_there_is_none(make_kb):
    k = make_kb({"2024/a.md": BROKEN})
    rc, data, _ = k.check()
    assert [(d["code"], d["suggestion"]) for d in data["diagnostics"]] == [("PM003", None)]


def test_json_is_sorted_by_path_then_line(make_kb):
    k = make_kb({"2024/b.md": TYPO.replace("INC-2024-001", "INC-2024-005").replace("kind: prevent", "kind: detect"),
                 "2024/a.md": TYPO})
    rc, data, _ = k.check()
    got = [(d["path"], d["line"], d["code"]) for d in data["diagnostics"]]
    assert got == [("docs/2024/a.md", 8, "PM107"), ("docs/2024/b.md", 8, "PM107"), ("docs/2024/b.md", 30, "PM405")]


def test_paths_are_relative_to_the_current_directory(make_kb):
    k = make_kb({"2024/a.md": TYPO, "2024/b.md": OTHER})
    paths = lambda data: [d["path"] for d in data["diagnostics"]]  # noqa: E731
    assert paths(k.check()[1]) == ["docs/2024/a.md"]
    assert paths(k.check("-f", "../mkdocs.yml", cwd=k.docs)[1]) == ["2024/a.md"]
    assert paths(k.check("-f", "../../mkdocs.yml", cwd=k.docs / "2024")[1]) == ["a.md"]
    name = k.root.name
    assert paths(k.check("-f", f"{name}/mkdocs.yml", cwd=k.root.parent)[1]) == [f"{name}/docs/2024/a.md"]
    text = k.run("check", "-f", "../mkdocs.yml", cwd=k.docs).stdout
    assert text.startswith("2024/a.md:8:1: warning unknown-key unknown key 'servces' [PM107]\n")


# ---- whole knowledge base and single files -----------------------------------------------------


@pytest.mark.parametrize("args", [(), ("docs",), ("docs/2024",)])
def test_broken_file_does_not_stop_the_others(args, make_kb):
    k = make_kb({"2024/a.md": BROKEN, "2024/b.md": OTHER.replace("duration: 20m", "duration: 2h"),
                 "2024/c.md": CLEAN.replace("INC-2024-001", "INC-2024-003").replace("servic", "servc")})
    rc, data, _ = k.check(*args)
    assert rc == 1
    assert data["files_checked"] == 3
    got = [(d["path"], d["line"], d["column"], d["code"]) for d in data["diagnostics"]]
    assert got == [
        ("docs/2024/a.md", 5, 15, "PM003"),
        ("docs/2024/b.md", 11, 11, "PM111"),
        ("docs/2024/c.md", 8, 1, "PM107"),
    ]


def test_folder_argument_checks_the_same_files_as_the_whole_knowledge_base(make_kb):
    """README.md/index.md and `exclude`d files are not postmortems, whether or not the folder is named."""
    k = make_kb({"2024/a.md": CLEAN, "2024/b.md": OTHER, "README.md": "# How to write a postmortem\n",
                 "2024/notes.md": "scratch notes, not a postmortem\n"}, options={"exclude": ["notes.md"]})
    rc_all, everything, _ = k.check()
    assert (rc_all, everything) == (0, {"files_checked": 2, "diagnostics": []})
    rc, folder, _ = k.check("docs")
    assert (rc, folder) == (rc_all, everything)


def test_one_file_reports_only_that_file_but_sees_the_knowledge_base(make_kb):
    a = CLEAN.replace("related: []", "related: [INC-2024-002, INC-2023-999]")
    b = OTHER.replace("INC-2024-002", "INC-2024-001").replace("duration: 20m", "duration: 2h")  # b has its own error
    k = make_kb({"2024/a.md": a, "2024/b.md": b, "2024/c.md": CLEAN.replace("INC-2024-001", "INC-2024-002")})
    rc, data, _ = k.check("docs/2024/a.md")
    assert rc == 1
    assert data["files_checked"] == 1
    assert {d["path"] for d in data["diagnostics"]} == {"docs/2024/a.md"}
    got = [(d["line"], d["column"], d["code"], d["message"]) for d in data["diagnostics"]]
    assert got == [
        (2, 5, "PM501", "id INC-2024-001 is also used by docs/2024/b.md"),
        (37, 25, "PM502", "related id INC-2023-999 is not a postmortem in the knowledge base"),
    ]
    # the same file named from another directory
    rc, data2, _ = k.check("-f", "../mkdocs.yml", "2024/a.md", cwd=k.docs)
    assert [(d["path"], d["line"], d["code"]) for d in data2["diagnostics"]] == [
        ("2024/a.md", 2, "PM501"), ("2024/a.md", 37, "PM502")]


def test_two_files_named(make_kb):
    k = make_kb({"2024/a.md": TYPO, "2024/b.md": BROKEN.replace("INC-2024-001", "INC-2024-002"),
                 "2024/c.md": "no front matter\n"})
    rc, data, _ = k.check("docs/2024/a.md", "docs/2024/b.md")
    assert rc == 1 and data["files_checked"] == 2
    assert [(d["path"], d["code"]) for d in data["diagnostics"]] == [
        ("docs/2024/a.md", "PM107"), ("docs/2024/b.md", "PM003")]


# ---- pmkb new --------------------------------------------------------------------------------


def _new(k: KB, *extra: str, title: str = "Checkout: 502s after the deploy"):
    return k.run("new", "--title", title, "--severity", "SEV2", "--date", "2024-05-01", "--author", "Ana Silva",
                 *extra)


def test_new_writes_the_next_id_and_passes_check(clean_kb):
    run = _new(clean_kb)
    assert run.returncode == 0, run.stderr
    rel = "docs/2024/INC-2024-003-checkout-502s-after-the-deploy.md"
    assert run.stdout == rel + "\n"
    text = (clean_kb.root / rel).read_text(encoding="utf-8")
    head = text.split("\n")
    assert head[:5] == ["---", "id: INC-2024-003", "title: 'Checkout: 502s after the deploy'", "date: 2024-05-01",
                        "severity: SEV2"]
    assert head[5].startswith("status: draft")
    assert "authors: [Ana Silva]" in head
    rc, data, _ = clean_kb.check(rel)
    assert rc == 0
    assert data["files_checked"] == 1 and data["diagnostics"]  # a draft: incomplete, so warnings...
    assert {d["severity"] for d in data["diagnostics"]} == {"warning"}  # ...and nothing worse
    assert {d["code"] for d in data["diagnostics"]} <= {"PM101", "PM202", "PM404"}
    assert clean_kb.check()[0] == 0  # and the whole knowledge base still passes
    assert clean_kb.run("check", "--strict", rel).returncode == 1

    again = _new(clean_kb, title="Search is slow")
    assert (again.returncode, again.stdout) == (0, "docs/2024/INC-2024-004-search-is-slow.md\n")
    assert "id: INC-2024-004\n" in (clean_kb.root / again.stdout.strip()).read_text(encoding="utf-8")


@pytest.mark.parametrize(("title", "slug"), [("Café – latency: 40 s #2", "cafe-latency-40-s-2"),
                                             ("yes", "yes"), ("[draft] 'quoted' \"title\"", "draft-quoted-title")])
def test_new_titles_that_yaml_would_misread_round_trip(title, slug, kb):
    run = kb.run("new", "--title", title, "--severity", "p2", "--date", "2024-05-01", "--author", "Ana Silva")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"docs/2024/INC-2024-001-{slug}.md\n"
    from pmkb.core.config import Config
    from pmkb.core.kb import check

    result = check(Config.from_file(kb.root / "mkdocs.yml"))
    (pm,) = result.kb.postmortems
    assert (pm.id, pm.title, pm.severity, pm.status) == ("INC-2024-001", title, "SEV2", "draft")
    assert {d.severity for d in result.diagnostics} == {"warning"}


def test_new_ids_are_per_year_and_see_ids_inside_files(make_kb):
    # a file whose name has no id still holds one: INC-2024-007
    k = make_kb({"2024/a.md": CLEAN, "2024/old-name.md": OTHER.replace("INC-2024-002", "INC-2024-007")})
    run = _new(k)
    assert run.stdout == "docs/2024/INC-2024-008-checkout-502s-after-the-deploy.md\n"
    run = k.run("new", "--title", "New year", "--date", "2025-01-02", "--author", "Ana Silva")
    assert (run.returncode, run.stdout) == (0, "docs/2025/INC-2025-001-new-year.md\n")


def test_new_dry_run_writes_nothing(clean_kb):
    run = _new(clean_kb, "--dry-run")
    assert run.returncode == 0 and run.stdout.startswith("---\nid: INC-2024-003\n")
    assert sorted(p.name for p in (clean_kb.docs / "2024").iterdir()) == ["a.md", "b.md"]


def test_new_never_overwrites(make_kb):
    # The target exists but is excluded from the knowledge base, so the next free id points at it.
    target = "2024/INC-2024-003-checkout-502s-after-the-deploy.md"
    k = make_kb({"2024/a.md": CLEAN, "2024/b.md": OTHER, target: "my unsaved work\n"},
                options={"exclude": ["INC-2024-003-*"]})
    before = sorted(p.name for p in (k.docs / "2024").iterdir())
    run = _new(k)
    assert run.returncode != 0
    assert "already exists" in run.stderr and "INC-2024-003" in run.stderr
    assert run.stdout == ""
    assert (k.docs / target).read_bytes() == b"my unsaved work\n"
    assert sorted(p.name for p in (k.docs / "2024").iterdir()) == before  # no temporary file left behind


def test_new_rejects_bad_input(clean_kb):
    assert clean_kb.run("new", "--title", "X", "--severity", "SEV9", "--date", "2024-05-01").returncode == 2
    assert clean_kb.run("new", "--title", "X", "--date", "2024-13-01").returncode == 2
    assert clean_kb.run("new", "--title", "  ", "--date", "2024-05-01").returncode == 2
    assert sorted(p.name for p in (clean_kb.docs / "2024").iterdir()) == ["a.md", "b.md"]


# ---- pmkb rules and rule configuration ----------------------------------------------------------


def test_rules_lists_every_code_and_name(kb):
    run = kb.run("rules")
    assert run.returncode == 0
    listed = re.findall(r"^  (PM\d{3})  (\S+) ", run.stdout, re.M)
    assert listed == [(r.code, r.name) for r in REGISTRY]
    data = __import__("json").loads(kb.run("rules", "--format", "json").stdout)
    assert [(r["code"], r["name"]) for r in data] == [(r.code, r.name) for r in REGISTRY]


def test_rules_explains_one_rule_by_code_or_name(kb):
    by_code = kb.run("rules", "PM201")
    assert by_code.returncode == 0
    assert by_code.stdout.startswith("PM201 missing-section (sections; default level: by status)\n")
    assert REGISTRY["PM201"].summary in by_code.stdout
    for alias in ("missing-section", "pm201", "Missing-Section"):
        assert kb.run("rules", alias).stdout == by_code.stdout
    assert kb.run("rules", "PM107").stdout != by_code.stdout
    unknown = kb.run("rules", "PM999")
    assert unknown.returncode == 2 and "PM999" in unknown.stderr


@pytest.mark.parametrize("raw", ["unknown-key: off", "unknown-key: 'off'", "PM107: off", "unknown-key: false"])
def test_rule_switched_off_in_config(raw, kb):
    kb.config(raw=f"site_name: t\ndocs_dir: docs\nplugins:\n  - search\n  - pmkb:\n      rules:\n        {raw}\n")
    kb.write("2024/a.md", TYPO)
    rc, data, _ = kb.check("--strict")
    assert (rc, data["diagnostics"]) == (0, [])


def test_rule_relevelled_in_config(make_kb):
    k = make_kb({"2024/a.md": TYPO}, options={"rules": {"PM107": "error"}})
    rc, data, _ = k.check()
    assert rc == 1
    assert [(d["code"], d["severity"], d["line"]) for d in data["diagnostics"]] == [("PM107", "error", 8)]


def test_status_rule_relevelled_in_config(make_kb):
    draft = CLEAN.replace("status: published", "status: draft").replace("## Lessons Learned\n", "## Next\n")
    k = make_kb({"2024/a.md": draft}, options={"rules": {"missing-section": "error", "invalid-url": "warning"}})
    rc, data, _ = k.check()
    assert rc == 1
    assert [(d["code"], d["severity"]) for d in data["diagnostics"]] == [("PM201", "error")]
    k.write("2024/a.md", CLEAN.replace("ticket: https://tracker.example.com/OPS-1", "ticket: OPS-1"))
    rc, data, _ = k.check()
    assert rc == 0 and [(d["code"], d["severity"]) for d in data["diagnostics"]] == [("PM112", "warning")]
