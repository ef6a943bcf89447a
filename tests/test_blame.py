"""The blame-language checker, exercised through the real `pmkb check` on real files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
CAST = ["Priya Raman", "Marcus Oyelaran", "Hannah Lindqvist", "Diego Alvarez", "Sam Okafor", "Wei Zhang",
        "Fatima Haddad", "Tomasz Nowak", "Aiko Tanaka", "Ben Carter", "Chloe Dubois", "Dmitri Volkov",
        "Elena Rossi", "Farid Nasser"]
BLAME_RULES = {"blame-counterfactual", "blame-human-error", "blame-judgement", "blame-fault",
               "blame-person-subject", "blame-named-person"}


def run_check(root: Path, *args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json", *args],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def write_site(root: Path, files: dict[str, str], options: str = "") -> None:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "mkdocs.yml").write_text(
        "site_name: t\ndocs_dir: docs\nplugins:\n  - search\n  - pmkb:\n      as_of: 2025-01-01\n"
        + textwrap.indent(options, "      ") + "\n", encoding="utf-8")
    for name, text in files.items():
        p = root / "docs" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def postmortem(body: str, *, pid="INC-2024-001", status="draft", extra="", authors=("Priya Raman",)) -> str:
    fm = textwrap.dedent(f"""\
        ---
        id: {pid}
        title: Checkout errors
        date: 2024-03-14
        severity: SEV3
        status: {status}
        authors: [{", ".join(authors)}]
        times:
          started: "14:00"
          resolved: "14:30"
        """) + extra + "---\n"
    return fm + textwrap.dedent(body)


def blame_findings(result: dict) -> list[dict]:
    return [d for d in result["diagnostics"] if d["rule"] in BLAME_RULES]


# ---------------------------------------------------------------- corpus --
def load_corpus(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def score_corpus(tmp_path: Path, rows: list[dict]) -> dict:
    """Every sentence becomes a paragraph of its section in a real postmortem; the real CLI
    checks them all and each finding is matched back to its sentence by line."""
    by_section: dict[str, list[tuple[int, dict]]] = {}
    for i, row in enumerate(rows):
        by_section.setdefault(row["section"], []).append((i, row))
    files, line_of = {}, {}
    for n, (section, items) in enumerate(sorted(by_section.items())):
        head = postmortem("", pid=f"INC-2024-{n + 100:03d}", authors=CAST)
        lines = head.rstrip("\n").split("\n") + ["", f"## {section}", ""]
        for i, row in items:
            lines.append(row["sentence"])
            line_of[(f"docs/corpus-{n}.md", len(lines))] = i
            lines.append("")
        files[f"corpus-{n}.md"] = "\n".join(lines) + "\n"
    write_site(tmp_path, files)
    _, result = run_check(tmp_path)
    flagged: dict[int, set[str]] = {}
    for d in blame_findings(result):
        idx = line_of.get((d["path"], d["line"]))
        assert idx is not None, f"finding on a line that holds no corpus sentence: {d}"
        flagged.setdefault(idx, set()).add(d["rule"])
    tp = fp = fn = tn = right_rule = 0
    misses = []
    for i, row in enumerate(rows):
        hit = i in flagged
        if row["label"] == "blame":
            tp += hit
            fn += not hit
            right_rule += hit and row["rule"] in flagged[i]
            if not hit:
                misses.append(("missed", row["sentence"]))
        else:
            fp += hit
            tn += not hit
            if hit:
                misses.append(("false alarm", row["sentence"]))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "right_rule": right_rule, "misses": misses,
            "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}


@pytest.mark.parametrize("name", ["blame_corpus.tsv", "blame_corpus_extra.tsv"])
def test_corpus_precision_and_recall(tmp_path, name):
    rows = load_corpus(name)
    labels = Counter(r["label"] for r in rows)
    assert len(rows) >= 200 and labels["blame"] >= 100 and labels["ok"] >= 100
    s = score_corpus(tmp_path, rows)
    print(f"{name}: precision={s['precision']:.3f} recall={s['recall']:.3f} "
          f"rule agreement={s['right_rule']}/{s['tp']} {s['misses']}")
    assert s["precision"] >= 0.9, s["misses"]
    assert s["recall"] >= 0.9, s["misses"]
    assert s["right_rule"] >= 0.85 * s["tp"]


def test_corpus_covers_every_blame_rule():
    rules = Counter(r["rule"] for r in load_corpus("blame_corpus.tsv") if r["label"] == "blame")
    assert set(rules) == BLAME_RULES
    assert min(rules.values()) >= 15


# ---------------------------------------------------------------- spans ---
def test_exact_span_message_and_suggestion(tmp_path):
    body = """
    ## Summary

    Checkout failed for 30 minutes.

    ## Root Cause

    The pool was too small. The on-call should have rolled back sooner.
    """
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    [d] = blame_findings(result)
    text = (tmp_path / "docs/a.md").read_text().split("\n")
    line = text[d["line"] - 1]
    assert d["rule"] == "blame-counterfactual" and d["code"] == "PM601"
    assert line[d["column"] - 1:d["end_column"] - 1] == "should have"
    assert d["end_line"] == d["line"]
    assert "hindsight" in d["message"]
    assert "system lacked" in d["suggestion"]
    assert d["severity"] == "warning"  # a draft


def test_published_postmortems_get_errors(tmp_path):
    body = "\n## Root Cause\n\nThe outage was caused by human error.\n"
    write_site(tmp_path, {"a.md": postmortem(body, status="published")})
    code, result = run_check(tmp_path)
    [d] = blame_findings(result)
    assert d["severity"] == "error" and d["rule"] == "blame-human-error"
    assert code == 1


def test_phrase_wrapped_across_lines_is_found_at_its_start(tmp_path):
    body = "\n## Root Cause\n\nThe migration ran on the primary. The team could\nhave waited for the replica.\n"
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    [d] = blame_findings(result)
    lines = (tmp_path / "docs/a.md").read_text().split("\n")
    assert lines[d["line"] - 1].endswith("could") and d["end_line"] == d["line"] + 1


def test_crlf_and_bom_give_the_same_positions(tmp_path):
    body = "\n## Contributing Factors\n\nA careless edit dropped the TLS listener.\n"
    text = postmortem(body)
    results = []
    for variant, data in [("lf", text.encode()), ("crlf", text.replace("\n", "\r\n").encode()),
                          ("bom", b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())]:
        root = tmp_path / variant
        write_site(root, {})
        (root / "docs/a.md").write_bytes(data)
        _, result = run_check(root)
        results.append([(d["line"], d["column"], d["end_column"]) for d in blame_findings(result)])
    assert results[0] == results[1] == results[2] and len(results[0]) == 1



def test_contractions_inflections_and_near_misses(tmp_path):
    """The checker reads only the sentences around words a pattern needs (blame.WAKE): curly
    apostrophes, split contractions, hyphens, capitals and line breaks must still be found,
    and look-alikes must still be left alone."""
    flagged = {
        "The on-call shouldn’t have restarted the primary.": ("blame-counterfactual", "shouldn’t have"),
        "The DBA should’ve checked the replica lag.": ("blame-counterfactual", "should’ve"),
        "We ought to have paused the rollout.": ("blame-counterfactual", "ought to have"),
        "The engineer didn’t check the dashboard.": ("blame-person-subject", "didn’t check"),
        "The engineer did n't escalate the page.": ("blame-person-subject", "did n't escalate"),
        "A slip-up by the operator deleted the volume.": ("blame-human-error", "slip-up by the operator"),
        "It was the intern’s error.": ("blame-person-subject", "intern’s error"),
        "OUR ENGINEER FORGOT TO RENEW THE CERTIFICATE.": ("blame-person-subject", "FORGOT"),
        "The engineer FAILED TO follow the runbook.": ("blame-person-subject", "FAILED TO"),
        "If only we had known.": ("blame-counterfactual", "If only"),
        "The responder was asleep at the wheel.": ("blame-judgement", "asleep at the wheel"),
    }
    left_alone = ["The targeting rules failed to load.", "Terror by night is not a metric.",
                  "The error budget burn rate paged the on-call.", "Nobody was to blame.",
                  "git blame shows the change.", "The operator never verified the backup."]
    wrapped = "The reviewer\nforgot to check the diff."
    body = "\n## Root Cause\n\n" + "\n\n".join([*flagged, *left_alone, wrapped]) + "\n"
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    lines = (tmp_path / "docs/a.md").read_text().split("\n")
    found = {lines[d["line"] - 1]: (d["rule"], lines[d["line"] - 1][d["column"] - 1:d["end_column"] - 1])
             for d in blame_findings(result) if d["end_line"] == d["line"]}
    assert len(found) == len(blame_findings(result))
    assert found == {**flagged, "forgot to check the diff.": ("blame-person-subject", "forgot")}


def test_scan_finds_what_reading_every_triggered_sentence_finds():
    """`scan` cuts out only the sentences around the anchor words of blame.WAKE; on the corpora,
    in other casings and run together, it must find exactly what running every pattern on
    every sentence its stems wake up (the reference path) finds."""
    from pmkb.core import blame

    settings, people = blame.settings_from_config({}), blame.PeopleIndex(CAST)
    sentences = [r["sentence"] for name in ("blame_corpus.tsv", "blame_corpus_extra.tsv") for r in load_corpus(name)]
    texts = sentences + [s.upper() for s in sentences] + [s.lower() for s in sentences]
    texts += [" ".join(sentences[i:i + 7]) for i in range(0, len(sentences), 7)]
    texts += ["\n".join(sentences[i:i + 5]).replace(" the ", " the\n") for i in range(0, len(sentences), 5)]
    checked = 0
    for text in texts:
        masked = blame.mask_markdown(text)
        reference = blame._hits(masked, blame._triggered_sentences(masked, masked.lower(), settings), settings, people)
        assert blame.scan(masked, settings, people) == reference, text
        checked += bool(reference)
    assert checked > 500


def test_a_people_index_crosses_a_process_boundary_built_or_not():
    """Worker processes get what they are sent pickled: a PeopleIndex must arrive whole whether
    or not its lookups were built yet, and find the same names on the other side."""
    import multiprocessing
    import pickle

    from pmkb.core import blame

    names = CAST + ["@oncall-bot", "  Ana   María  López ", "", "SRE", "payments-team", "May Chen", "X Ray"]
    text = "Priya Raman paged @oncall-bot; Ana María López and May Chen joined. Marcus rolled back."
    fresh, built = blame.PeopleIndex(names), blame.PeopleIndex(names)
    expected = blame.find_names(text, built)
    assert {name for _, _, name in expected} >= {"Priya Raman", "@oncall-bot", "Ana María López", "May Chen", "Marcus"}
    assert "full" not in vars(fresh)  # not built: pickled with its names only
    for index in (fresh, built):
        copy = pickle.loads(pickle.dumps(index))
        assert (copy.full, copy.first, copy.handles) == (built.full, built.first, built.handles)
        assert blame.find_names(text, copy) == expected and bool(copy)
    assert "full" not in vars(fresh)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(blame.find_names, (text, fresh)) == expected
        assert pool.apply(blame.find_names, (text, built)) == expected


@pytest.mark.parametrize("before", ["", "İzmir and İstanbul saw it first. ", "ǅ ẞ ﬁ Σ. "])
def test_characters_that_change_length_in_lower_case_keep_positions_exact(tmp_path, before):
    """The trigger scan lowers the text; 'İ' lowers to two characters, which must not shift columns."""
    body = f"\n## Root Cause\n\n{before}The on-call SHOULD HAVE rolled back sooner.\n"
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    [d] = blame_findings(result)
    line = (tmp_path / "docs/a.md").read_text().split("\n")[d["line"] - 1]
    assert d["rule"] == "blame-counterfactual" and line[d["column"] - 1:d["end_column"] - 1] == "SHOULD HAVE"

# ---------------------------------------------------------- not flagged ---
def test_code_links_quotes_and_fences_are_not_read(tmp_path):
    body = """
    ## Root Cause

    The `should_have_retried` flag was unset; see the [guide](https://wiki.example.com/human-error-careless).

    > ERROR: user error: the operator ignored the request

    ```
    engineer forgot to drain: human error
    ```

        2024-03-14 the on-call ignored page 7

    <!-- the engineer was careless -->
    """
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    assert blame_findings(result) == []


def test_names_are_fine_outside_root_cause_analysis(tmp_path):
    body = """
    ## Summary

    Thanks to Marcus Oyelaran and @jdoe for the fast rollback.

    ## What Went Well

    Marcus spotted the graph.

    ## Root Cause

    Marcus Oyelaran merged the change without the canary.
    """
    write_site(tmp_path, {"a.md": postmortem(body, extra="roles:\n  incident_commander: Marcus Oyelaran\n")})
    _, result = run_check(tmp_path)
    found = [(d["rule"], d["line"]) for d in blame_findings(result)]
    lines = (tmp_path / "docs/a.md").read_text().split("\n")
    assert found == [("blame-named-person", lines.index("Marcus Oyelaran merged the change without the canary.") + 1)]
    [d] = blame_findings(result)
    assert d["column"] == 1 and d["end_column"] == len("Marcus Oyelaran") + 1


def test_people_come_from_the_whole_knowledge_base_and_config(tmp_path):
    other = postmortem("\n## Summary\n\nFine.\n", pid="INC-2024-002", authors=("Chloe Dubois",))
    body = "\n## Five Whys\n\n1. Why? Chloe applied the plan. Then Zed restarted it. @ops-bot paged.\n"
    write_site(tmp_path, {"a.md": postmortem(body), "b.md": other}, options="people: [Zed Quinn]")
    _, result = run_check(tmp_path)
    named = sorted(d["message"].split("'")[1] for d in blame_findings(result) if d["rule"] == "blame-named-person")
    assert named == ["@ops-bot", "Chloe", "Zed"]


def test_a_full_name_is_one_finding_even_when_its_last_word_is_a_given_name():
    from pmkb.core.blame import PeopleIndex, find_names

    people = PeopleIndex(["May Chen", "Priya Raman"])
    text = "Then May Chen restarted it. Chen paged. Priya Raman said so."
    assert find_names(text, people) == [(5, 13, "May Chen"), (28, 32, "Chen"), (40, 51, "Priya Raman")]

def test_timeline_event_blame_is_located_in_the_front_matter(tmp_path):
    extra = 'timeline:\n  - time: "14:05"\n    event: The on-call ignored the page\n'
    write_site(tmp_path, {"a.md": postmortem("\n## Summary\n\nFine.\n", extra=extra)})
    _, result = run_check(tmp_path)
    [d] = blame_findings(result)
    lines = (tmp_path / "docs/a.md").read_text().split("\n")
    assert d["rule"] == "blame-person-subject"
    assert lines[d["line"] - 1][d["column"] - 1:d["end_column"] - 1] == "ignored"


# ---------------------------------------------------------- suppressions --
def test_disable_next_line_and_blocks(tmp_path):
    body = """
    ## Root Cause

    <!-- pmkb-disable-next-line blame-counterfactual -->
    We should have paged sooner.

    <!-- pmkb-disable PM603 -->
    A careless edit.
    A sloppy rollout.
    <!-- pmkb-enable PM603 -->
    A reckless change.

    <!-- pmkb-disable-next-line blame-fault -->
    Nothing to silence here.
    """
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    got = sorted((d["rule"], d["line"]) for d in result["diagnostics"] if d["rule"] != "missing-section")
    lines = (tmp_path / "docs/a.md").read_text().split("\n")
    assert got == sorted([
        ("blame-judgement", lines.index("A reckless change.") + 1),
        ("unused-suppression", lines.index("<!-- pmkb-disable-next-line blame-fault -->") + 1),
    ])


def test_suppression_naming_an_unknown_rule_is_reported(tmp_path):
    body = "\n## Root Cause\n\n<!-- pmkb-disable-next-line blame-everything -->\nFine.\n"
    write_site(tmp_path, {"a.md": postmortem(body)})
    _, result = run_check(tmp_path)
    assert [d["rule"] for d in result["diagnostics"] if d["rule"] != "missing-section"] == ["unknown-rule"]


# ---------------------------------------------------------- configuration --
def test_teams_add_remove_allow_and_relevel_terms(tmp_path):
    body = """
    ## Root Cause

    The rollout was asleep on the job. An inexperienced responder restarted pods.
    The migration was sloppy. The reviewer was careless.
    """
    options = textwrap.dedent("""\
        blame:
          terms:
            blame-judgement: [asleep on the job]
          remove: [inexperienced]
          allow: [migration was sloppy]
          levels:
            careless: notice
        """)
    write_site(tmp_path, {"a.md": postmortem(body)}, options=options)
    _, result = run_check(tmp_path)
    got = sorted((d["message"].split("'")[1], d["severity"]) for d in blame_findings(result))
    assert got == [("asleep on the job", "warning"), ("careless", "notice")]


def test_rule_can_be_switched_off_or_raised(tmp_path):
    body = "\n## Root Cause\n\nWe should have paged. It was human error.\n"
    write_site(tmp_path, {"a.md": postmortem(body)},
               options="rules:\n  blame-counterfactual: off\n  PM602: error\n")
    code, result = run_check(tmp_path)
    assert [(d["rule"], d["severity"]) for d in blame_findings(result)] == [("blame-human-error", "error")]
    assert code == 1


def test_bad_blame_configuration_names_the_key(tmp_path):
    write_site(tmp_path, {"a.md": postmortem("\n## Summary\n\nx\n")}, options="blame:\n  remove: [no-such-term]\n")
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "blame.remove.no-such-term" in proc.stderr and "Traceback" not in proc.stderr


def test_rules_command_explains_each_blame_rule_with_examples():
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "pmkb", "rules", "blame-person-subject"], capture_output=True,
                         text=True, env=env).stdout
    assert "PM605" in out and "Flagged:" in out and "Better:" in out
    listing = subprocess.run([sys.executable, "-m", "pmkb", "rules"], capture_output=True, text=True).stdout
    for rule in BLAME_RULES:
        assert rule in listing


def test_names_are_found_in_a_lone_file_without_configuration(tmp_path):
    """No mkdocs.yml, one file, nobody known: a given name as the subject in Root Cause still counts."""
    (tmp_path / "x.md").write_text(postmortem(
        "\n## Root Cause\n\nDmitri rebooted the primary. Kubernetes evicted the pods. Jenkins retried the job.\n",
        authors=("Ops Bot",)))
    _, result = run_check(tmp_path, "x.md")
    assert [(d["rule"], d["message"].split("'")[1]) for d in blame_findings(result)] == [("blame-named-person", "Dmitri")]
