"""`pmkb check --format sarif|github|markdown`, run through the real CLI on real files.

The SARIF log is validated against the OASIS SARIF 2.1.0 JSON schema (a verbatim copy next to
this file, see SCHEMA-SOURCE.md), and SARIF, GitHub and JSON must report the same findings.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import markdown as pymarkdown
import pytest

import pmkb
from conftest import KB, fixture_text
from pmkb.core.rules.registry import REGISTRY

SCHEMA_PATH = Path(__file__).parent / "sarif-schema-2.1.0.json"
CLEAN = fixture_text("clean-sev2.md")  # INC-2024-001, SEV2, published: passes every check
OTHER = fixture_text("other-sev3.md")  # INC-2024-002, SEV3, published: passes every check
AS_OF = ("--as-of", "2099-06-01")  # INC-2024-001-1 (due 2099-01-31) is overdue: a notice

# a.md: a typo'd key (warning PM107, line 8), an action item without owner (error PM401),
# a counterfactual in a published postmortem (blame error PM601, line 61), an overdue item (notice).
MIXED = (CLEAN.replace("services: [checkout]", "servces: [checkout]")
         .replace("    owner: Wei Zhang\n", "")
         .replace("The rollback tool needed a manual approval step.", "The on-call should have rolled back sooner."))
# b.md: a hostile unknown key (warning PM107, line 6) whose message holds %, comma, colon and a newline.
HOSTILE_KEY = OTHER.replace("severity: SEV3\n", 'severity: SEV3\n"50%,\\nkey:x": 1\n')
# "c,d:e.md": a file name with a comma and a colon, and broken YAML (error PM003, line 5, column 15).
BROKEN = CLEAN.replace("id: INC-2024-001", "id: INC-2024-003").replace("severity: SEV2", "severity: SEV2: major")
EVIL_TITLE = "<script>alert(1)</script> | *bold* [x](https://evil.example) `code` _u_ @admins & ~~s~~"
EVIL = OTHER.replace("id: INC-2024-002", "id: INC-2024-004").replace(
    "title: Search results were stale for twenty minutes", "title: '" + EVIL_TITLE + "'")


@pytest.fixture
def mixed_kb(make_kb) -> KB:
    return make_kb({"2024/a.md": MIXED, "2024/b.md": HOSTILE_KEY, "2024/c,d:e.md": BROKEN})


@pytest.fixture
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def sarif_validator(schema: dict):
    cls = jsonschema.validators.validator_for(schema)  # the draft the schema itself declares
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def run_format(k: KB, fmt: str, *args: str, cwd: Path | None = None):
    run = k.run("check", "--format", fmt, *args, cwd=cwd)
    assert run.returncode in (0, 1), f"exit {run.returncode}\nstdout={run.stdout}\nstderr={run.stderr}"
    assert "Traceback" not in run.stderr
    return run


# ---- GitHub workflow commands: parsing them back as the runner does ------------------------------

_COMMAND = re.compile(r"^::(error|warning|notice) ([^:]*)::(.*)$")


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def parse_github(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        if not line:
            continue
        m = _COMMAND.match(line)
        assert m, f"not a workflow command: {line!r}"
        props = dict(p.split("=", 1) for p in m.group(2).split(","))
        out.append({"command": m.group(1), **{k: unescape_property(v) for k, v in props.items()},
                    "message": unescape_data(m.group(3))})
    return out


def json_findings(data: dict) -> set[tuple]:
    level = {"error": "error", "warning": "warning", "notice": "notice"}
    return {(d["path"], d["line"], d["column"], d["code"], level[d["severity"]]) for d in data["diagnostics"]}


def sarif_findings(log: dict) -> set[tuple]:
    back = {"error": "error", "warning": "warning", "note": "notice"}
    out = set()
    for r in log["runs"][0]["results"]:
        loc = r["locations"][0]["physicalLocation"]
        out.add((loc["artifactLocation"]["uri"], loc["region"]["startLine"], loc["region"]["startColumn"],
                 r["ruleId"], back[r["level"]]))
    return out


def github_findings(stdout: str) -> set[tuple]:
    return {(c["file"], int(c["line"]), int(c["col"]), re.search(r"\((PM\d+)\)$", c["title"]).group(1),
             c["command"]) for c in parse_github(stdout)}


# ---- SARIF ------------------------------------------------------------------------------------------


def test_sarif_is_valid_against_the_oasis_schema(mixed_kb, schema):
    run = run_format(mixed_kb, "sarif", *AS_OF)
    log = json.loads(run.stdout)
    validator = sarif_validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert errors == []
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    # the validation has teeth: the same log with a level SARIF does not know is rejected
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["level"] = "notice"
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(log)
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert not validator.is_valid(broken)


def test_sarif_results_locations_and_artifacts(mixed_kb):
    run = run_format(mixed_kb, "sarif", *AS_OF)
    _, data, _ = mixed_kb.check(*AS_OF)
    run_ = json.loads(run.stdout)["runs"][0]
    driver = run_["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("pmkb", pmkb.__version__)
    assert driver["informationUri"].startswith("https://")
    assert run_["originalUriBaseIds"] == {"%SRCROOT%": {"uri": mixed_kb.root.resolve().as_uri() + "/"}}
    # every file once, in order; a comma or colon in a name is percent-encoded in the URI
    uris = [a["location"]["uri"] for a in run_["artifacts"]]
    assert uris == ["docs/2024/a.md", "docs/2024/b.md", "docs/2024/c%2Cd%3Ae.md"]
    assert all(a["location"]["uriBaseId"] == "%SRCROOT%" for a in run_["artifacts"])
    results = run_["results"]
    assert len(results) == len(data["diagnostics"]) == 6
    rules = driver["rules"]
    paths = sorted({d["path"] for d in data["diagnostics"]})
    for r, d in zip(results, data["diagnostics"]):  # same order as the diagnostics
        assert r["ruleId"] == d["code"] and rules[r["ruleIndex"]]["id"] == d["code"]
        assert r["level"] == {"error": "error", "warning": "warning", "notice": "note"}[d["severity"]]
        loc = r["locations"][0]["physicalLocation"]
        art = loc["artifactLocation"]
        assert run_["artifacts"][art["index"]]["location"]["uri"] == art["uri"]
        assert paths[art["index"]] == d["path"]
        assert loc["region"] == {"startLine": d["line"], "startColumn": d["column"],
                                 "endLine": d["end_line"], "endColumn": d["end_column"]}
        if d["suggestion"]:
            assert r["message"]["text"] == d["message"] + "\nSuggestion: " + d["suggestion"]
            assert r["properties"] == {"suggestion": d["suggestion"]}
        else:
            assert r["message"]["text"] == d["message"] and "properties" not in r
    by_code = {(r["ruleId"], r["level"]) for r in results}
    assert {("PM107", "warning"), ("PM401", "error"), ("PM601", "error"), ("PM407", "note"),
            ("PM003", "error")} <= by_code
    # deterministic: a second run gives the same bytes
    assert run_format(mixed_kb, "sarif", *AS_OF).stdout == run.stdout


def test_sarif_lists_every_rule_once_with_help(kb, clean_text, schema):
    kb.write("2024/a.md", clean_text)
    run = run_format(kb, "sarif")
    assert run.returncode == 0
    log = json.loads(run.stdout)
    assert sarif_validator(schema).is_valid(log)
    run_ = log["runs"][0]
    assert run_["results"] == [] and run_["artifacts"] == []  # nothing fired: all rules still listed
    rules = run_["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in REGISTRY]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) == len(list(REGISTRY))
    level = {"error": "error", "warning": "warning", "notice": "note", "status": "warning"}
    for desc, rule in zip(rules, REGISTRY):
        assert desc["name"] == rule.name
        assert desc["shortDescription"]["text"] == rule.summary
        assert desc["fullDescription"]["text"] == (rule.explanation or rule.summary)
        help_text, help_md = desc["help"]["text"], desc["help"]["markdown"]
        assert help_text.strip() and help_md.strip()
        assert (rule.explanation or rule.summary) in help_text
        assert ("Flagged: " + rule.bad in help_text) == bool(rule.bad)
        assert ("Better: " + rule.good in help_text) == bool(rule.good)
        if rule.bad:
            assert rule.bad in help_md
        assert desc["defaultConfiguration"]["level"] == level[rule.level]
        assert desc["properties"]["tags"] == [rule.family]


def test_sarif_path_outside_the_current_directory_is_an_absolute_uri(make_kb, schema):
    k = make_kb({"2024/a.md": MIXED})
    sub = k.root / "sub"
    sub.mkdir()
    run = run_format(k, "sarif", "-f", "../mkdocs.yml", "../docs/2024/a.md", *AS_OF, cwd=sub)
    log = json.loads(run.stdout)
    assert sarif_validator(schema).is_valid(log)
    expected = (k.docs / "2024" / "a.md").resolve().as_uri()
    assert [a["location"] for a in log["runs"][0]["artifacts"]] == [{"uri": expected}]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]} == {expected}


# ---- the same findings in every machine format --------------------------------------------------------


def test_sarif_json_and_github_report_the_same_findings(mixed_kb):
    _, data, _ = mixed_kb.check(*AS_OF)
    expected = json_findings(data)
    kinds = {(code, level) for _, _, _, code, level in expected}
    assert {("PM107", "warning"), ("PM401", "error"), ("PM601", "error"), ("PM407", "notice"),
            ("PM003", "error")} <= kinds  # errors, warnings, a notice and a blame finding
    assert github_findings(run_format(mixed_kb, "github", *AS_OF).stdout) == expected
    log = json.loads(run_format(mixed_kb, "sarif", *AS_OF).stdout)
    uri_to_path = {"docs/2024/c%2Cd%3Ae.md": "docs/2024/c,d:e.md"}
    assert {(uri_to_path.get(p, p), *rest) for p, *rest in sarif_findings(log)} == expected


# ---- GitHub workflow commands ----------------------------------------------------------------------------


def test_github_escapes_messages_and_properties(mixed_kb):
    run = run_format(mixed_kb, "github", *AS_OF)
    lines = run.stdout.splitlines()
    _, data, _ = mixed_kb.check(*AS_OF)
    assert len(lines) == len(data["diagnostics"])  # one command per diagnostic and nothing else
    hostile = [ln for ln in lines if "docs/2024/b.md" in ln]
    assert hostile == [
        "::warning file=docs/2024/b.md,line=6,col=1,endLine=6,endColumn=14,title=unknown-key (PM107)::"
        "unknown key '50%25,%0Akey:x'%0Ahelp: remove it, or check the format reference"
    ]
    # a comma and a colon in a file name are escaped in the property
    broken = [ln for ln in lines if "c%2Cd%3Ae.md" in ln]
    assert len(broken) == 1
    assert broken[0].startswith("::error file=docs/2024/c%2Cd%3Ae.md,line=5,col=15,")
    assert ",title=invalid-yaml (PM003)::" in broken[0]
    # and everything round-trips through the runner's unescaping
    for cmd, d in zip(parse_github(run.stdout), data["diagnostics"]):
        assert cmd["file"] == d["path"]
        assert (int(cmd["line"]), int(cmd["col"]), int(cmd["endLine"]), int(cmd["endColumn"])) == (
            d["line"], d["column"], d["end_line"], d["end_column"])
        assert cmd["title"] == f"{d['rule']} ({d['code']})"
        assert cmd["message"] == d["message"] + ("\nhelp: " + d["suggestion"] if d["suggestion"] else "")
    assert "\n" in parse_github("\n".join(hostile))[0]["message"].split("\nhelp:")[0]
    assert [c["command"] for c in parse_github(run.stdout)].count("notice") == 1


def test_github_prints_nothing_when_clean(make_kb):
    k = make_kb({"2024/a.md": CLEAN, "2024/b.md": OTHER})
    run = run_format(k, "github")
    assert (run.returncode, run.stdout.strip(), run.stderr) == (0, "", "")


# ---- Markdown pull-request comment -------------------------------------------------------------------------


def test_markdown_comment(mixed_kb):
    run = run_format(mixed_kb, "markdown", *AS_OF)
    text = run.stdout
    lines = text.splitlines()
    assert lines[:3] == ["## pmkb check", "", "❌ Checked 3 files: 3 errors, 2 warnings, 1 notice."]
    assert "### docs/2024/a.md" in lines and "### docs/2024/b.md" in lines
    assert "### docs/2024/c,d:e.md" in lines
    assert "- **warning** `unknown-key` line 8: unknown key 'servces'" in lines
    assert "- **error** `action-item-missing-owner` line 31: action item 1 has no owner" in lines
    blame = [ln for ln in lines if "`blame-counterfactual`" in ln]
    assert len(blame) == 1 and blame[0].startswith("- **error** `blame-counterfactual` line 61: 'should have'")
    assert " — describe what the system lacked" in blame[0]  # blame rules carry their suggestion
    assert "did you mean" not in text  # other rules do not
    assert "- 1 notice (run `pmkb check` to see it)" in lines
    assert "action-item-overdue" not in text  # notices are only counted
    digest = lines[lines.index("### Postmortems in this change") + 2:]
    assert digest == [
        "- **INC-2024-001** Checkout returned HTTP 500 for an hour — SEV2, 1h, 1 action item (1 without owner)",
        "- **INC-2024-002** Search results were stale for twenty minutes — SEV3, 20m, no action items",
    ]  # c,d:e.md has no readable front matter, so no id and no digest


def test_markdown_escapes_hostile_titles_and_messages(make_kb):
    evil = EVIL.replace("severity: SEV3\n", "severity: SEV3\n'<b>k|*': 1\n")  # and a hostile key in a message
    k = make_kb({"2024/a.md": CLEAN, "2024/evil.md": evil})
    run = run_format(k, "markdown")
    text = run.stdout
    assert "<script>" not in text and "<b>" not in text and "</" not in text
    line = next(ln for ln in text.splitlines() if ln.startswith("- **INC-2024-004**"))
    assert line == (r"- **INC-2024-004** &lt;script&gt;alert(1)&lt;/script&gt; \| \*bold\* \[x\](https://evil.example)"
                    r" \`code\` \_u\_ @" "\u2060" r"admins &amp; \~\~s\~\~ — SEV3, 20m, no action items")
    assert r"unknown key '&lt;b&gt;k\|\*'" in text
    # rendered as Markdown (with tables), nothing hostile turns into HTML
    html = pymarkdown.markdown(text, extensions=["tables"])
    for tag in ("<script", "<b>", "<table", "<a ", "<em>", "<code>code", "<del"):
        assert tag not in html, tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "*bold*" in html and "[x](https://evil.example)" in html


def test_markdown_when_clean_and_for_a_subset(make_kb):
    k = make_kb({"2024/a.md": CLEAN, "2024/b.md": OTHER})
    run = run_format(k, "markdown")
    assert run.returncode == 0
    assert run.stdout.splitlines()[:3] == ["## pmkb check", "", "✅ Checked 2 files: no errors or warnings."]
    assert "INC-2024-001" in run.stdout and "INC-2024-002" in run.stdout
    k.write("2024/b.md", OTHER.replace("services: [search]", "servces: [search]"))
    run = run_format(k, "markdown", "docs/2024/b.md")
    assert run.stdout.splitlines()[2] == "⚠️ Checked 1 file: 0 errors, 1 warning."
    assert "INC-2024-002" in run.stdout
    assert "INC-2024-001" not in run.stdout  # a.md was not part of this check


# ---- exit codes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["sarif", "github", "markdown"])
def test_exit_codes_match_text(fmt, make_kb):
    k = make_kb({"2024/a.md": CLEAN, "2024/b.md": OTHER})
    cases = [((), 0), (AS_OF, 0), (("--strict", *AS_OF), 0)]  # clean; a notice never fails
    for args, want in cases:
        assert k.run("check", *args).returncode == want
        assert k.run("check", "--format", fmt, *args).returncode == want, args
    k.write("2024/b.md", OTHER.replace("services: [search]", "servces: [search]"))  # one warning
    for args, want in (((), 0), (("--strict",), 1)):
        assert k.run("check", *args).returncode == want
        assert k.run("check", "--format", fmt, *args).returncode == want, args
    k.write("2024/c,d:e.md", BROKEN)  # an error
    assert k.run("check").returncode == 1
    run = k.run("check", "--format", fmt)
    assert run.returncode == 1 and run.stdout.strip() and "Traceback" not in run.stderr
