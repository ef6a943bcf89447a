"""Every non-blame rule, failing and passing, through `pmkb check --format json` on real files.

Each case starts from a clean SEV2 postmortem (tests/fixtures/fields/clean-sev2.md,
which passes every check) and changes one thing. The failing file must produce the
rule at the exact line and column; the passing variant must not produce it.
Blame-language rules (PM6xx) are tested elsewhere.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from conftest import KB, diags_for, fixture_text
from pmkb.core.rules.registry import BY_STATUS, REGISTRY

CLEAN = fixture_text("clean-sev2.md")  # INC-2024-001, SEV2, published; line numbers below refer to it
OTHER = fixture_text("other-sev3.md")  # INC-2024-002, SEV3, published
TARGET = "2024/a.md"
OTHER_PATH = "2024/b.md"
SHOWN = f"docs/{TARGET}"  # as pmkb prints it, relative to the knowledge base root


def edit(*pairs: str, text: str = CLEAN) -> str:
    """Replace each `old` (which must occur exactly once) by `new`."""
    assert len(pairs) % 2 == 0
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


DRAFT = ("status: published", "status: draft")
SMALL = "---\nid: INC-2024-003\ntitle: Tiny\ndate: 2024-01-01\nseverity: SEV4\n---\n"  # under 200 bytes


def bomb(levels: int = 6) -> str:
    """A billion-laughs alias bomb on one line: 9**levels values from a few hundred bytes."""
    parts = ["&l0 [" + ", ".join(["lol"] * 9) + "]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "lols: [" + ", ".join(parts) + "]\n"


@dataclass
class Case:
    id: str
    code: str
    bad: str | bytes  # the target file
    where: list[tuple[int, int | None]]  # (line, column) of every diagnostic of `code` in the target
    severity: str
    good: str | bytes = CLEAN
    at: str | None = None  # text that must be on the first expected line (keeps the table honest)
    bad_other: str | None = OTHER  # the second file of the knowledge base (None: absent)
    good_other: str | None = OTHER
    options: dict = field(default_factory=dict)
    args: tuple[str, ...] = ()
    good_args: tuple[str, ...] | None = None
    good_clean: bool = True  # the passing variant has no diagnostics at all
    message: str | None = None  # a fragment the message must contain


CASES = [
    # ---- PM0xx file -------------------------------------------------------------
    Case("no-front-matter", "PM001", "# Checkout outage\n\n## Summary\n\nText.\n", [(1, 1)], "error", at="# Checkout"),
    Case("blank-line-before-front-matter", "PM001", "\n" + CLEAN, [(1, 1)], "error"),
    Case("unterminated", "PM002", edit("related: []\n---\n", "related: []\n"), [(1, 1)], "error", at="---"),
    Case("yaml-mapping-in-value", "PM003", edit("severity: SEV2", "severity: SEV2: major"), [(5, 15)], "error",
         at="severity: SEV2: major"),
    Case("yaml-bad-indent", "PM003", edit("  detected: \"14:05\"", "   detected: \"14:05\""), [(15, 4)], "error",
         at="detected"),
    Case("front-matter-list", "PM004", "---\n- id\n- title\n---\n\n## Summary\n\nText.\n", [(2, 1)], "error",
         at="- id"),
    Case("front-matter-scalar", "PM004", "---\njust a sentence\n---\n\n## Summary\n\nText.\n", [(2, 1)], "error"),
    Case("duplicate-top-level-key", "PM005", edit("status: published\n", "status: published\nseverity: SEV1\n"),
         [(7, 1)], "error", at="severity: SEV1", message="'severity'"),
    Case("duplicate-nested-key", "PM005", edit('  detected: "14:05"\n', '  detected: "14:05"\n  detected: "14:06"\n'),
         [(16, 3)], "error", at='detected: "14:06"', message="times.detected"),
    Case("python-tag", "PM006", edit("date: 2024-03-14\n", "date: 2024-03-14\nx: !!python/object/apply:os.system [echo hi]\n"),
         [(5, 4)], "error", at="!!python"),
    Case("python-scalar-tag", "PM006", edit("tags: [database]", "tags: !!python/name:os.system database"),
         [(9, 7)], "error", at="!!python"),
    Case("alias-bomb", "PM006", edit("detection: alert\n", "detection: alert\n" + bomb()), [(11, None)], "error",
         at="lols: [&l0"),
    Case("latin-1", "PM007", edit("title: Checkout returned", "title: Caf\u00e9 returned").encode("latin-1"), [(1, 1)], "error"),
    Case("binary", "PM007", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), [(1, 1)], "error"),
    Case("too-large", "PM008", CLEAN, [(1, 1)], "error", good=SMALL, options={"max_file_size": 200},
         good_clean=False, message="200"),
    Case("empty", "PM009", "", [(1, 1)], "error"),
    Case("whitespace-only", "PM009", "\n  \n\t\n", [(1, 1)], "error"),
    # ---- PM1xx front matter -------------------------------------------------------
    Case("missing-commander-published", "PM101", edit("  incident_commander: Hana Kim\n", ""), [(11, 1)], "error",
         at="roles:", message="roles.incident_commander"),
    Case("missing-commander-draft", "PM101", edit("  incident_commander: Hana Kim\n", "", *DRAFT), [(11, 1)], "warning",
         at="roles:", good=edit(*DRAFT)),
    Case("missing-time-published", "PM101", edit('  detected: "14:05"\n', ""), [(13, 1)], "error", at="times:",
         message="times.detected"),
    Case("missing-time-draft", "PM101", edit('  detected: "14:05"\n', "", *DRAFT), [(13, 1)], "warning", at="times:",
         good=edit(*DRAFT)),
    Case("missing-roles-block", "PM101", edit("roles:\n  incident_commander: Hana Kim\n", ""), [(1, 1)], "error"),
    # id/title/date/severity are required whatever the status
    Case("missing-title-draft", "PM101", edit("title: Checkout returned HTTP 500 for an hour\n", "", *DRAFT),
         [(1, 1)], "error", good=edit(*DRAFT), message="'title'"),
    Case("bad-id", "PM102", edit("id: INC-2024-001\n", "id: inc 2024/1\n"), [(2, 5)], "error", at="inc 2024/1"),
    Case("bad-action-id", "PM102", edit("  - id: INC-2024-001-1", "  - id: first item"), [(31, 9)], "error",
         at="first item"),
    Case("feb-30", "PM103", edit("date: 2024-03-14", "date: 2024-02-30"), [(4, 7)], "error", at="2024-02-30"),
    Case("due-month-13", "PM103", edit("due: 2099-01-31", "due: 2099-13-01"), [(34, 10)], "error", at="2099-13-01"),
    Case("severity-word", "PM104", edit("severity: SEV2", "severity: critical"), [(5, 11)], "error", at="critical"),
    Case("status-done", "PM105", edit("status: published", "status: done"), [(6, 9)], "error", at="status: done"),
    Case("action-kind", "PM105", edit("kind: prevent", "kind: fix"), [(35, 11)], "error", at="kind: fix"),
    Case("timeline-phase", "PM105", edit("    event: The pool-size release finished rolling out.\n    phase: detect",
                                         "    event: The pool-size release finished rolling out.\n    phase: later"),
         [(26, 12)], "error", at="phase: later"),
    Case("users-affected-text", "PM106", edit("users_affected: 1200", "users_affected: many"), [(21, 19)], "error",
         at="many"),
    Case("timeline-not-list", "PM106",
         edit(CLEAN[CLEAN.index("timeline:"):CLEAN.index("action_items:")], "timeline: none\n"), [(23, 11)], "error",
         at="timeline: none"),
    Case("typo-top-level", "PM107", edit("services: [checkout]", "servces: [checkout]"), [(8, 1)], "warning",
         at="servces", message="servces"),
    Case("typo-nested", "PM107", edit("  description: Checkout", "  descripton: Checkout"), [(22, 3)], "warning",
         at="descripton", message="impact.descripton"),
    Case("time-2pm", "PM108", edit('started: "14:00"', "started: 2pm"), [(14, 12)], "error", at="2pm"),
    Case("timeline-time-words", "PM108", edit('  - time: "14:05"', "  - time: five past two"), [(27, 11)], "error",
         at="five past"),
    Case("mitigated-before-ack", "PM109", edit('mitigated: "14:40"', 'mitigated: "13:40"'), [(17, 14)], "error",
         at="13:40"),
    Case("after-midnight-hhmm", "PM109",
         edit('"14:00"\n  detected', '"23:50"\n  detected', '"14:05"\n  ack', '"23:55"\n  ack',
              '"14:07"', '"23:58"', '"14:40"', '"00:10"', '"15:00"', '"00:20"', "duration: 1h", "duration: 30m"),
         [(17, 14)], "error", at="00:10",
         good=edit('"14:00"\n  detected', '"23:50"\n  detected', '"14:05"\n  ack', '"23:55"\n  ack',
                   '"14:07"', '"23:58"', '"14:40"', "2024-03-15T00:10:00Z", '"15:00"', "2024-03-15T00:20:00Z",
                   "duration: 1h", "duration: 30m")),
    Case("duration-words", "PM110", edit("duration: 1h", "duration: about an hour"), [(19, 11)], "error",
         at="about an hour"),
    Case("duration-off-2m", "PM111", edit("duration: 1h", "duration: 1h 2m"), [(19, 11)], "error", at="1h 2m",
         good=edit("duration: 1h", "duration: 1h 1m")),
    Case("duration-off-90s", "PM111", edit("duration: 1h", "duration: 58m 30s"), [(19, 11)], "error",
         good=edit("duration: 1h", "duration: 59m")),
    Case("ticket-javascript", "PM112", edit("ticket: https://tracker.example.com/OPS-1", "ticket: javascript:alert(1)"),
         [(36, 13)], "error", at="javascript"),
    Case("ticket-not-a-url", "PM112", edit("ticket: https://tracker.example.com/OPS-1", "ticket: OPS-1"),
         [(36, 13)], "error", at="OPS-1"),
    Case("title-block", "PM113", edit("title: Checkout returned HTTP 500 for an hour",
                                      "title: |\n  Checkout returned\n  HTTP 500 for an hour"),
         [(3, 8)], "error", at="title: |"),
    # ---- PM2xx sections -----------------------------------------------------------------
    Case("no-lessons-published", "PM201", edit("## Lessons Learned\n", "## Next Steps\n"), [(39, 1)], "error",
         message="Lessons Learned"),
    Case("no-lessons-draft", "PM201", edit("## Lessons Learned\n", "## Next Steps\n", *DRAFT), [(39, 1)], "warning",
         good=edit(*DRAFT)),
    Case("empty-root-cause-published", "PM202",
         edit("The connection pool had no lower bound tied to measured peak usage.", "<!-- TODO -->"),
         [(48, 1)], "error", at="## Root Cause"),
    Case("empty-root-cause-draft", "PM202",
         edit("The connection pool had no lower bound tied to measured peak usage.", "<!-- TODO -->", *DRAFT),
         [(48, 1)], "warning", at="## Root Cause", good=edit(*DRAFT)),
    Case("summary-twice", "PM203", CLEAN + "\n## Summary\n\nMore.\n", [(68, 1)], "warning", at="## Summary"),
    Case("alias-heading-twice", "PM203", CLEAN + "\n## What went wrong\n\nMore.\n", [(68, 1)], "warning",
         at="## What went wrong", good=edit("## What Went Poorly", "## What went wrong")),
    # ---- PM3xx timeline -----------------------------------------------------------------
    Case("timeline-backwards", "PM301", edit('  - time: "14:05"', '  - time: "13:55"'), [(27, 11)], "error",
         at="13:55"),
    Case("timeline-no-time", "PM302", edit('  - time: "14:05"\n    event:', "  - event:"), [(27, 5)], "error",
         at="- event:"),
    Case("timeline-no-event", "PM302", edit("    event: The pool-size release finished rolling out.\n", ""),
         [(24, 5)], "error", at='time: "14:00"'),
    # ---- PM4xx action items ---------------------------------------------------------------
    Case("no-owner", "PM401", edit("    owner: Wei Zhang\n", ""), [(31, 5)], "error", at="id: INC-2024-001-1"),
    Case("no-action", "PM402", edit("    action: Reject pool sizes below measured peak usage.\n", ""), [(31, 5)],
         "error", at="id: INC-2024-001-1"),
    Case("action-id-in-other-file", "PM403", CLEAN, [(31, 5)], "error", at="id: INC-2024-001-1",
         bad_other=OTHER.replace("duration: 20m\n", "duration: 20m\naction_items:\n  - id: INC-2024-001-1\n"
                                 "    action: Alert on indexer lag.\n    owner: Ana Silva\n    due: 2099-02-01\n")),
    Case("action-id-twice", "PM403",
         edit("    ticket: https://tracker.example.com/OPS-1\n",
              "    ticket: https://tracker.example.com/OPS-1\n  - id: INC-2024-001-1\n    action: Alert on pool wait.\n"
              "    owner: Ana Silva\n    due: 2099-02-01\n    kind: detect\n"),
         [(31, 5), (37, 5)], "error", at="id: INC-2024-001-1"),
    Case("no-action-items-published", "PM404", edit(CLEAN[CLEAN.index("action_items:"):CLEAN.index("related:")], ""),
         [(1, 1)], "error"),
    Case("empty-action-items-draft", "PM404",
         edit(CLEAN[CLEAN.index("action_items:"):CLEAN.index("related:")], "action_items: []\n", *DRAFT),
         [(30, 15)], "warning", at="action_items: []", good=edit(*DRAFT)),
    Case("no-prevent-published", "PM405", edit("kind: prevent", "kind: detect"), [(30, 1)], "error",
         at="action_items:"),
    Case("no-prevent-draft", "PM405", edit("kind: prevent", "kind: detect", *DRAFT), [(30, 1)], "warning",
         at="action_items:", good=edit(*DRAFT)),
    Case("published-without-due", "PM406", edit("    due: 2099-01-31\n", ""), [(31, 5)], "error",
         at="id: INC-2024-001-1", good=edit("    due: 2099-01-31\n", "", *DRAFT)),
    Case("overdue", "PM407", CLEAN, [(34, 10)], "notice", at="due: 2099-01-31", args=("--as-of", "2099-02-01"),
         good_args=("--as-of", "2099-01-31"), message="1 day overdue"),
    Case("overdue-unless-done", "PM407", CLEAN, [(34, 10)], "notice", args=("--as-of", "2100-01-01"),
         good=edit("    kind: prevent", "    status: done\n    kind: prevent")),
    # ---- PM5xx knowledge base ----------------------------------------------------------------
    Case("id-in-two-files", "PM501", CLEAN, [(2, 5)], "error", at="id: INC-2024-001",
         bad_other=OTHER.replace("id: INC-2024-002", "id: INC-2024-001"), message="docs/2024/b.md"),
    Case("related-unknown", "PM502", edit("related: []", "related: [INC-2023-999]"), [(37, 11)], "error",
         at="INC-2023-999", good=edit("related: []", "related: [INC-2024-002]")),
    Case("related-unknown-string", "PM502", edit("related: []", "related: INC-2023-999"), [(37, 10)], "error",
         at="INC-2023-999", good=edit("related: []", "related: INC-2024-002")),
    Case("related-self", "PM503", edit("related: []", "related: [INC-2024-002, INC-2024-001]"), [(37, 25)],
         "warning", at="INC-2024-001]", good=edit("related: []", "related: [INC-2024-002]")),
    # ---- PM7xx editions -------------------------------------------------------------------------
    Case("public-names-person", "PM701",
         edit("status: published", "status: published\nvisibility: public", "About 1,200 customers could not complete a purchase.", "About 1,200 customers could not complete a purchase. Thanks to Ana Silva."),
         [(47, 64)], "warning", at="Thanks to Ana Silva",
         good=edit("status: published", "status: published\nvisibility: public", "About 1,200 customers could not complete a purchase.",
                   "About 1,200 customers could not complete a purchase.\n<!-- pmkb:internal -->\nThanks to Ana Silva.\n<!-- pmkb:end -->")),
    Case("public-names-customer", "PM702",
         edit("status: published", "status: published\nvisibility: public", "About 1,200 customers could not complete a purchase.", "About 1,200 customers could not complete a purchase. Globex saw errors."),
         [(47, 54)], "warning", at="Globex saw", options={"customers": ["Globex"]},
         good=edit("status: published", "status: published\nvisibility: public", "About 1,200 customers could not complete a purchase.", "About 1,200 customers could not complete a purchase. One customer saw errors.")),
    # ---- PM9xx suppressions ------------------------------------------------------------------
    Case("unused-disable", "PM901", edit("\n## Summary\n", "\n<!-- pmkb-disable-next-line unknown-key -->\n## Summary\n"),
         [(40, 1)], "warning", at="pmkb-disable-next-line",
         good=edit("services: [checkout]", "# pmkb-disable-next-line unknown-key\nservces: [checkout]")),
    Case("unused-yaml-comment", "PM901", edit("roles:\n", "roles:\n  # pmkb-disable-next-line invalid-type\n"),
         [(12, 3)], "warning", at="# pmkb-disable",
         good=edit("users_affected: 1200", "users_affected: many  # pmkb-disable-line invalid-type")),
    Case("disable-unknown-rule", "PM902", edit("\n## Summary\n", "\n<!-- pmkb-disable-next-line no-such-rule -->\n## Summary\n"),
         [(40, 1)], "warning", at="no-such-rule", message="no-such-rule",
         good=edit("services: [checkout]", "# pmkb-disable-next-line PM107\nservces: [checkout]")),
    Case("disable-without-rule", "PM902", edit("## Impact\n", "## Impact\nText <!-- pmkb-disable-line -->\n"),
         [(45, 6)], "warning", at="pmkb-disable-line"),
]

BLAME_FAMILY = "PM6"


def test_cases_cover_every_non_blame_rule():
    """A new rule without a failing and a passing case here fails this test."""
    wanted = {r.code for r in REGISTRY if not r.code.startswith(BLAME_FAMILY)}
    covered = {c.code for c in CASES}
    assert covered == wanted, f"missing: {sorted(wanted - covered)}; unknown: {sorted(covered - wanted)}"
    names = {REGISTRY[c.code].name for c in CASES}
    assert names == {r.name for r in REGISTRY if not r.code.startswith(BLAME_FAMILY)}


def test_status_rules_are_tested_as_warning_and_as_error():
    """Rules whose level follows the status have a draft (warning) and a published (error) case."""
    for rule in REGISTRY:
        if rule.level == BY_STATUS and not rule.code.startswith(BLAME_FAMILY):
            assert {c.severity for c in CASES if c.code == rule.code} == {"warning", "error"}, rule.code


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# The same knowledge base is often checked for several cases (the clean one for most
# passing variants): run the CLI once per distinct input. The case tables are run
# up front, a few processes at a time, to keep the suite fast; each test still
# asserts on its own run.
_RUNS: dict[str, tuple[int, dict]] = {}


def _key(target, other, options, args) -> str:
    return json.dumps([repr(target), other, options, list(args)], sort_keys=True)


def _inputs(case: Case) -> list[tuple]:
    good_args = case.args if case.good_args is None else case.good_args
    return [(case.bad, case.bad_other, case.options, case.args), (case.good, case.good_other, case.options, good_args)]


def _prepare(root, target: str | bytes, other: str | None, options: dict) -> KB:
    k = KB(root)
    k.config(options)
    k.write(TARGET, target)
    if other is not None:
        k.write(OTHER_PATH, other)
    return k


@pytest.fixture(scope="module")
def check_files(tmp_path_factory):
    def run(target: str | bytes, other: str | None, options: dict, args: tuple[str, ...]) -> tuple[int, dict]:
        key = _key(target, other, options, args)
        if key not in _RUNS:
            rc, data, _ = _prepare(tmp_path_factory.mktemp("kb"), target, other, options).check(*args)
            _RUNS[key] = (rc, data)
        return _RUNS[key]

    # Folders are made here, one at a time (mktemp is not thread-safe); only the CLI runs in parallel.
    pending = {}
    for case in CASES:
        for target, other, options, args in _inputs(case):
            key = _key(target, other, options, args)
            if key not in _RUNS and key not in pending:
                pending[key] = (_prepare(tmp_path_factory.mktemp("kb"), target, other, options), args)

    def run_prepared(key: str) -> None:
        k, args = pending[key]
        try:
            rc, data, _ = k.check(*args)
        except AssertionError:  # reported again by the test that needs this run
            return
        _RUNS[key] = (rc, data)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run_prepared, pending))
    return run


def _line(text: str | bytes, n: int) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text.split("\n")[n - 1]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.code}-{c.id}")
def test_failing_file_reports_rule_at_line(case: Case, check_files):
    if case.at is not None:  # the table itself must point at the line it means
        assert case.at in _line(case.bad, case.where[0][0])
    rc, data = check_files(case.bad, case.bad_other, case.options, case.args)
    found = diags_for(data, SHOWN, case.code)
    got = sorted((d["line"], d["column"]) for d in found)
    want = sorted(case.where, key=lambda w: (w[0], w[1] or 0))
    assert len(got) == len(want), json.dumps(data, indent=1)
    for (line, col), (want_line, want_col) in zip(got, want):  # want_col None: any column on that line
        assert line == want_line and (want_col is None or col == want_col), (got, want)
    rule = REGISTRY[case.code]
    for d in found:
        assert d["rule"] == rule.name
        assert d["severity"] == case.severity
        assert d["end_line"] >= d["line"]
        if case.message:
            assert case.message in d["message"]
    assert rc == (1 if any(d["severity"] == "error" for d in data["diagnostics"]) else 0)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.code}-{c.id}")
def test_passing_variant_does_not_report_rule(case: Case, check_files):
    assert case.good != case.bad or case.good_args is not None or case.good_other != case.bad_other
    rc, data = check_files(*_inputs(case)[1])
    assert diags_for(data, SHOWN, case.code) == []
    if case.good_clean:
        assert diags_for(data, SHOWN) == [], json.dumps(data, indent=1)


def test_fixtures_are_clean(make_kb):
    k = make_kb({TARGET: CLEAN, OTHER_PATH: OTHER})
    rc, data, run = k.check()
    assert (rc, data) == (0, {"files_checked": 2, "diagnostics": []})
    assert k.run("check", "--strict").returncode == 0


# ---- cases that need more than one rule in view ---------------------------------------


def test_duplicate_action_id_reported_in_both_files(make_kb):
    other = OTHER.replace("duration: 20m\n", "duration: 20m\naction_items:\n  - id: INC-2024-001-1\n"
                          "    action: Alert on indexer lag.\n    owner: Ana Silva\n    due: 2099-02-01\n")
    k = make_kb({TARGET: CLEAN, OTHER_PATH: other})
    rc, data, _ = k.check()
    assert rc == 1
    got = sorted((d["path"], d["line"], d["column"]) for d in diags_for(data, code="PM403"))
    assert got == [("docs/2024/a.md", 31, 5), ("docs/2024/b.md", 13, 5)]


def test_duplicate_id_reported_in_both_files(make_kb):
    k = make_kb({TARGET: CLEAN, OTHER_PATH: OTHER.replace("INC-2024-002", "INC-2024-001")})
    rc, data, _ = k.check()
    got = sorted((d["path"], d["line"], d["column"], d["message"]) for d in diags_for(data, code="PM501"))
    assert got == [
        ("docs/2024/a.md", 2, 5, "id INC-2024-001 is also used by docs/2024/b.md"),
        ("docs/2024/b.md", 2, 5, "id INC-2024-001 is also used by docs/2024/a.md"),
    ]


def test_suppression_silences_only_the_named_rule_on_the_next_line(make_kb):
    text = edit("services: [checkout]", "# pmkb-disable-next-line unknown-key\nservces: [checkout]\nsevrity_x: 1")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert [(d["code"], d["line"]) for d in diags_for(data, SHOWN)] == [("PM107", 10)]


def test_alias_bomb_is_refused_quickly(make_kb):
    """9**6 = 531,441 values must not be built: the check stays fast and reports PM006."""
    import time

    deeper = bomb(8)
    k = make_kb({TARGET: edit("detection: alert\n", "detection: alert\n" + deeper), OTHER_PATH: OTHER})
    start = time.monotonic()
    rc, data, _ = k.check()
    assert time.monotonic() - start < 10
    assert rc == 1
    assert [d["code"] for d in diags_for(data, SHOWN)] == ["PM006"]


def test_recursive_alias_is_refused(make_kb):
    text = edit("tags: [database]", "tags: &t [database, *t]")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert rc == 1
    assert [(d["code"], d["line"]) for d in diags_for(data, SHOWN)] == [("PM006", 9)]


def test_unsafe_tag_is_not_executed(make_kb, tmp_path):
    marker = tmp_path / "pwned"
    text = edit("date: 2024-03-14\n", f"date: 2024-03-14\nx: !!python/object/apply:os.system [touch {marker}]\n")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert rc == 1 and not marker.exists()
    assert [d["code"] for d in diags_for(data, SHOWN)] == ["PM006"]


def test_status_levels_follow_status_for_every_status_rule(make_kb):
    """One file with all five status-dependent rules: warnings as a draft, errors in review or published."""
    text = edit(
        '  detected: "14:05"\n', "",  # PM101
        "## Lessons Learned\n", "## Next Steps\n",  # PM201
        "The connection pool had no lower bound tied to measured peak usage.", "<!-- TODO -->",  # PM202
        "kind: prevent", "kind: detect",  # PM405
    )
    no_items = edit(text[text.index("action_items:"):text.index("related:")], "action_items: []\n", text=text)
    for status, level in (("draft", "warning"), ("in-review", "error"), ("published", "error")):
        k = make_kb({"2024/x.md": text.replace("status: published", f"status: {status}"),
                     "2024/y.md": no_items.replace("status: published", f"status: {status}").replace(
                         "INC-2024-001", "INC-2024-003")})
        rc, data, _ = k.check()
        got = {(d["code"], d["severity"]) for d in data["diagnostics"]}
        expected = {(c, level) for c in ("PM101", "PM201", "PM202", "PM404", "PM405")}
        assert got == expected, status
        assert rc == (0 if level == "warning" else 1)


# ---- line numbers whatever the line ends -----------------------------------------------

MANY = edit(
    "services: [checkout]", "servces: [checkout]",  # PM107 line 8
    "ticket: https://tracker.example.com/OPS-1", "ticket: OPS-1",  # PM112 line 36
    "The connection pool had no lower bound tied to measured peak usage.", "<!-- TODO -->",  # PM202 line 48
) + "\n## Summary\n\nMore.\n"  # PM203 line 68
MANY_EXPECTED = [(8, 1, "PM107"), (36, 13, "PM112"), (48, 1, "PM202"), (68, 1, "PM203")]
BROKEN = edit("severity: SEV2", "severity: SEV2: major")
ENDINGS = {
    "lf": lambda t: t.encode(),
    "crlf": lambda t: t.replace("\n", "\r\n").encode(),
    "bom": lambda t: b"\xef\xbb\xbf" + t.encode(),
    "bom-crlf": lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode(),
    "cr": lambda t: t.replace("\n", "\r").encode(),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_line_numbers_do_not_depend_on_line_ends_or_bom(ending, make_kb):
    k = make_kb({"2024/many.md": ENDINGS[ending](MANY), "2024/broken.md": ENDINGS[ending](BROKEN),
                 "2024/title.md": ENDINGS[ending](edit("Checkout returned HTTP 500 for an hour", "|\n  Two\n  lines")
                                                  .replace("INC-2024-001", "INC-2024-004"))})
    rc, data, _ = k.check()
    got = {(d["path"], d["line"], d["column"], d["code"]) for d in data["diagnostics"]}
    assert got == {
        *(("docs/2024/many.md", line, col, code) for line, col, code in MANY_EXPECTED),
        ("docs/2024/broken.md", 5, 15, "PM003"),
        ("docs/2024/title.md", 3, 8, "PM113"),
    }
    ends = {(d["code"], d["end_line"], d["end_column"]) for d in data["diagnostics"] if d["code"] in ("PM107", "PM113")}
    assert ends == {("PM107", 8, 8), ("PM113", 6, 1)}


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"], ids=["LS", "PS", "NEL"])
def test_unicode_line_separator_inside_a_value_does_not_shift_lines(separator, make_kb):
    """U+2028/U+2029/U+0085 are not line ends for editors, grep or pmkb's own section lines;
    a title pasted with one must not move every later front-matter diagnostic down a line."""
    text = edit("title: Checkout returned HTTP 500 for an hour", f'title: "Checkout returned{separator}HTTP 500"',
                "services: [checkout]", "servces: [checkout]",
                "The connection pool had no lower bound tied to measured peak usage.", "<!-- TODO -->")
    assert text.split("\n")[7] == "servces: [checkout]"
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert [(d["code"], d["line"], d["column"]) for d in diags_for(data, SHOWN)] == [("PM107", 8, 1), ("PM202", 48, 1)]


def test_missing_section_points_at_a_line_that_exists(make_kb):
    """A front matter with no body and no final newline: 9 lines, so no diagnostic may name line 10."""
    text = "---\nid: INC-2024-003\ntitle: Tiny\ndate: 2024-01-01\nseverity: SEV4\ntimes:\n" \
           "  started: \"10:00\"\n  resolved: \"10:05\"\n---"
    assert len(text.split("\n")) == 9
    k = make_kb({TARGET: text})
    rc, data, _ = k.check()
    found = diags_for(data, SHOWN, "PM201")
    assert len(found) == 3  # Summary, Impact, Root Cause
    assert all(1 <= d["line"] <= 9 and d["end_line"] <= 9 for d in found), found


# ---- aliases and normalisation ------------------------------------------------------------


@pytest.mark.parametrize("written", ["p2", "P2", "sev2", "Sev 2", "S2", "SEV2"])
def test_severity_aliases_are_accepted(written, make_kb):
    # kind: detect makes PM405 fire, which only SEV1/SEV2 postmortems get: proof the alias means SEV2
    text = edit("severity: SEV2", f"severity: {written}", "kind: prevent", "kind: detect")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert [(d["code"], d["line"]) for d in diags_for(data, SHOWN)] == [("PM405", 30)]


def test_normalised_values(make_kb, monkeypatch):
    """Aliases end up as the canonical values in the model the pages are built from."""
    from pmkb.core.config import Config
    from pmkb.core.kb import check

    text = edit("severity: SEV2", "severity: p2", "status: published", "status: review",
                "services: [checkout]", "services: checkout", "  incident_commander: Hana Kim", "  IC: Hana Kim",
                "    kind: prevent", "    kind: prevent\n    status: Completed")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    monkeypatch.chdir(k.root)
    result = check(Config.from_file(k.root / "mkdocs.yml"))
    pm = next(p for p in result.kb.postmortems if p.id == "INC-2024-001")
    assert (pm.severity, pm.status, pm.services, pm.roles) == (
        "SEV2", "in-review", ["checkout"], {"incident_commander": "Hana Kim"})
    assert pm.action_items[0].status == "done"
    assert result.diagnostics == []


def test_entries_written_with_aliases_or_canonical_keys_mean_the_same(make_kb, monkeypatch):
    """Timeline entries and action items: canonical keys, aliases in any case, and unknown keys
    (reported where they stand) in one knowledge base."""
    from datetime import datetime, timezone

    from pmkb.core.config import Config
    from pmkb.core.kb import check

    text = edit('  - time: "14:05"\n    event: The checkout error-rate alert fired.\n',
                '  - At: "14:05"\n    Event: The checkout error-rate alert fired.\n    note: paged\n',
                "    action: Reject pool sizes below measured peak usage.\n    owner: Wei Zhang\n",
                "    title: Reject pool sizes below measured peak usage.\n    Assignee: Wei Zhang\n")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    monkeypatch.chdir(k.root)
    cfg = Config.from_file(k.root / "mkdocs.yml")
    cfg.for_site = True  # a check's results keep the timeline only for a site
    result = check(cfg)
    pm = next(p for p in result.kb.postmortems if p.id == "INC-2024-001")
    assert [(e.time, e.event, e.phase, e.raw_time) for e in pm.timeline] == [
        (datetime(2024, 3, 14, 14, 0, tzinfo=timezone.utc), "The pool-size release finished rolling out.", "detect",
         "14:00"),
        (datetime(2024, 3, 14, 14, 5, tzinfo=timezone.utc), "The checkout error-rate alert fired.", "detect", "14:05"),
    ]
    item = pm.action_items[0]
    assert (item.action, item.owner, item.kind) == ("Reject pool sizes below measured peak usage.", "Wei Zhang",
                                                    "prevent")
    assert [(d.code, d.span.line, d.span.column, d.message) for d in result.diagnostics] == [
        ("PM107", 29, 5, "unknown key 'timeline.1.note'")]


@pytest.mark.parametrize(("written", "expected"), [
    ("yes", True), ("No", False), ("on", True), ("OFF", False), ("y", "y"), ("n", "n"), ("True", True),
    ("017", 15), ("0o17", "0o17"), ("0x1F", 31), ("0b101", 5), ("1_000", 1000), ("+12", 12), ("-0", 0),
    ("1.5", 1.5), ("1e3", "1e3"), ("1.0e+3", 1000.0), (".inf", float("inf")), ("-.Inf", float("-inf")),
    ("~", None), ("null", None), ("", None), ("2024-03-14", "2024-03-14"),
    ("2024-03-14T14:02:00Z", "2024-03-14T14:02:00Z"), ("14:02", "14:02"), ("1:30.5", "1:30.5"),
    ('"yes"', "yes"), ("'017'", "017"), ("!!str 1", "1"), ("!!int '7'", 7), ("!!float 1", 1.0),
    ("!!bool 'on'", True), ("!!int x", "x"), ("!!binary aGk=", b"hi"),
    ("1" * 60, int("1" * 60)), ("a" * 60, "a" * 60),
])
def test_front_matter_scalars_are_read_as_yaml_1_1(written, expected):
    """What YAML 1.1 makes of each plain or tagged scalar, except that times and dates stay text
    (read twice: answers are remembered between files and must not change)."""
    from pmkb.core.yamlload import load

    for _ in range(2):
        value = load(f"k: {written}").value["k"]
        assert (type(value), value) == (type(expected), expected)


def test_front_matter_keys_are_text_and_unknown_tags_are_refused():
    import math

    from pmkb.core.yamlload import YamlProblem, load

    assert list(load("yes: 1\n017: 2\n~: 3\n1.5: 4\n14:02: 5").value) == ["True", "15", "None", "1.5", "14:02"]
    nan = load("k: .NaN").value["k"]
    assert isinstance(nan, float) and math.isnan(nan)
    with pytest.raises(YamlProblem) as err:
        load("a: 1\nk: !custom 1")
    assert (err.value.kind, err.value.line, err.value.column) == ("unsafe-tag", 1, 3)


def test_sections_are_found_outside_fences_only(tmp_path):
    from pmkb.core.config import Config
    from pmkb.core.findings import Findings
    from pmkb.core.model import Postmortem
    from pmkb.core.parse import parse_text

    text = (
        "---\nid: INC-2024-001\n---\n"
        "## Summary\n"                 # 4
        "   ```python\n"               # 5: a fence may be indented up to three spaces
        "## Impact\n"                  # 6: inside the fence
        "```\n"                        # 7
        "~~~~\n"                       # 8
        "## Root Cause\n"              # 9: inside
        "~~~\n"                        # 10: too short to close it
        "## Timeline\n"                # 11: still inside
        "~~~~~\n"                      # 12: closes it
        "    ```\n"                    # 13: four spaces: indented code, not a fence
        "## Root Cause\n"              # 14
        "\t## Tabbed\n ## Indented\n### Sub\n##NoSpace\n"  # 15-18: none is a section
        "## lessons learned: ##\n"     # 19
        "text\n"
    )
    cfg = Config.from_options({}, root=tmp_path, docs_dir="docs")
    pm, _ = parse_text(text, Postmortem("s.md", "s.md"), Findings("s.md", cfg), cfg)
    assert [(s.name, s.heading, s.line, s.body_end) for s in pm.sections] == [
        ("Summary", "Summary", 4, 13), ("Root Cause", "Root Cause", 14, 18),
        ("Lessons Learned", "lessons learned:", 19, 21)]


def test_review_status_makes_template_gaps_errors(make_kb):
    text = edit("status: published", "status: review", "## Lessons Learned\n", "## Next Steps\n")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert rc == 1
    assert [(d["code"], d["severity"]) for d in diags_for(data, SHOWN)] == [("PM201", "error")]


def test_single_string_services_is_a_list(make_kb):
    k = make_kb({TARGET: edit("services: [checkout]", "services: checkout"), OTHER_PATH: OTHER})
    assert k.check() [:2] == (0, {"files_checked": 2, "diagnostics": []})


# ---- times --------------------------------------------------------------------------------


def _unquote_times(text: str) -> str:
    return re.sub(r'"(\d\d:\d\d)"', r"\1", text)


def test_unquoted_hhmm_times_are_times_not_base_60(make_kb):
    text = _unquote_times(CLEAN)
    assert "started: 14:00\n" in text and '  - time: 14:05\n' in text
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    assert k.check()[:2] == (0, {"files_checked": 2, "diagnostics": []})


def test_unquoted_times_still_measure_duration(make_kb):
    # 14:00 -> 15:00 is 60 minutes; base-60 integers (840, 900) would also differ by 60, so
    # make the difference not a multiple of 60: 14:00 -> 15:07 is 67 minutes.
    text = _unquote_times(edit('resolved: "15:00"', 'resolved: "15:07"', "duration: 1h", "duration: 1h 7m"))
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    assert k.check()[:2] == (0, {"files_checked": 2, "diagnostics": []})
    wrong = _unquote_times(edit('resolved: "15:00"', 'resolved: "15:07"', "duration: 1h", "duration: 67s"))
    k.write(TARGET, wrong)
    rc, data, _ = k.check()
    assert [(d["code"], d["line"], d["message"]) for d in diags_for(data, SHOWN)] == [
        ("PM111", 19, "duration 67s disagrees with resolved - started (1h 7m)")]


def test_unquoted_times_out_of_order_are_found(make_kb):
    text = _unquote_times(edit('mitigated: "14:40"', 'mitigated: "13:40"', '  - time: "14:05"', '  - time: "13:05"'))
    assert "mitigated: 13:40" in text
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    rc, data, _ = k.check()
    assert [(d["code"], d["line"], d["column"]) for d in diags_for(data, SHOWN)] == [("PM109", 17, 14), ("PM301", 27, 11)]


def test_incident_across_midnight_with_iso_timestamps(make_kb):
    text = edit('"14:00"\n  detected', '"23:50"\n  detected', '"14:05"\n  ack', '2024-03-14T23:55:00Z\n  ack',
                '"14:07"', "2024-03-15T00:02:00Z", '"14:40"', "2024-03-15T00:40:00Z", '"15:00"',
                "2024-03-15 01:05", "duration: 1h", "duration: 1h 15m",
                '  - time: "14:00"', '  - time: "23:50"', '  - time: "14:05"', "  - time: 2024-03-15T00:02:00+00:00")
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    assert k.check()[:2] == (0, {"files_checked": 2, "diagnostics": []})
    k.write(TARGET, text.replace("duration: 1h 15m", "duration: 15m"))  # as if 23:50 -> 01:05 were on one day
    rc, data, _ = k.check()
    assert [(d["code"], d["line"]) for d in diags_for(data, SHOWN)] == [("PM111", 19)]


def test_timezone_applies_to_hhmm_and_naive_timestamps(make_kb):
    # 23:50 Berlin (22:50Z) -> 2024-03-15T00:20:00+01:00 (23:20Z) is 30 minutes
    text = edit('"14:00"\n  detected', '"23:50"\n  detected', '"14:05"\n  ack', '"23:55"\n  ack',
                '"14:07"', '"23:58"', '"14:40"', "2024-03-15T00:10:00", '"15:00"', "2024-03-14T23:20:00Z",
                "duration: 1h", "duration: 30m", '  - time: "14:00"', '  - time: "23:50"',
                '  - time: "14:05"', '  - time: "23:55"')
    k = make_kb({TARGET: text, OTHER_PATH: OTHER}, options={"timezone": "Europe/Berlin"})
    assert k.check()[:2] == (0, {"files_checked": 2, "diagnostics": []})


@pytest.mark.parametrize(("duration", "ok"), [("1h", True), ("60m", True), ("59m", True), ("1h 1m", True),
                                               ("61m 30s", False), ("58m", False), ("1h 2m", False), ("2h", False)])
def test_duration_tolerance_is_one_minute(duration, ok, check_files):
    rc, data = check_files(edit("duration: 1h", f"duration: {duration}"), OTHER, {}, ())
    assert [d["code"] for d in diags_for(data, SHOWN)] == ([] if ok else ["PM111"])


def test_findings_of_later_stages_stand_where_aliased_keys_are_written(make_kb):
    """Knowledge-base notes and overdue items are found after a file's own checks, from the
    spans kept for them: a file that writes `actions:`, `due_date:` and `related_incidents:`
    gets them at those keys, in one process, with workers and from the results cache."""
    text = edit("action_items:\n", "actions:\n",
                "    due: 2099-01-31\n", "    due_date: 2024-01-31\n",
                "related: []\n", "related_incidents: [INC-2024-002, INC-2099-009]\n")
    other = edit("duration: 20m\n", "duration: 20m\naction_items:\n  - id: INC-2024-001-1\n"  # a duplicate action-item id
                 "    action: Alert on indexer lag.\n    owner: Ana Silva\n    due: 2099-01-31\n", text=OTHER)
    k = make_kb({TARGET: text, OTHER_PATH: other})
    expected = [("action-item-overdue", 34, 15), ("duplicate-action-id", 31, 5), ("unknown-related", 37, 35)]
    lines = text.split("\n")
    assert lines[33].startswith("    due_date: 2024-01-31") and lines[30].startswith("  - id: INC-2024-001-1")
    assert lines[36][34:].startswith("INC-2099-009")
    for args in (("--workers", "1", "--no-cache"), ("--workers", "2", "--no-cache"), (), ()):  # the last from the cache
        _, data, _ = k.check("--as-of", "2024-06-01", *args)
        got = sorted((d["rule"], d["line"], d["column"]) for d in diags_for(data, SHOWN)
                     if d["rule"] in ("action-item-overdue", "duplicate-action-id", "unknown-related"))
        assert got == expected, args


def test_related_entries_are_found_where_they_stand_after_repeats_and_bad_entries(make_kb):
    """Knowledge-base notes name a related entry by its place among the entries kept (repeats
    and entries that are not text left out); each must still point at its own text."""
    line = "related: [INC-2099-001, INC-2099-001, [x], INC-2099-002]"
    text = edit("related: []", line)
    k = make_kb({TARGET: text, OTHER_PATH: OTHER})
    n = text.split("\n").index(line) + 1
    expected = [("invalid-type", n, line.index("[x]") + 1),
                ("unknown-related", n, line.index("INC-2099-001") + 1),
                ("unknown-related", n, line.index("INC-2099-002") + 1)]
    for args in (("--workers", "1", "--no-cache"), ("--workers", "2", "--no-cache"), (), ()):  # the last from the cache
        _, data, _ = k.check(*args)
        got = sorted((d["rule"], d["line"], d["column"]) for d in diags_for(data, SHOWN)
                     if d["rule"] in ("invalid-type", "unknown-related"))
        assert got == sorted(expected), args
