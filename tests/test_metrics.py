"""Incident metrics against figures computed by hand from the definitions.

Four postmortems (as of 2024-06-30):
  A  SEV1 2024-01-10 [api]      10:00 / 10:05 / 10:05 / 10:30 / 10:50          ttd 5  tta 0  ttm 30  ttr 50
  B  SEV1 2024-02-20 [api, db]  09:00 / 09:10 / 09:14 / 10:00 / 11:30          ttd 10 tta 4  ttm 60  ttr 150
  C  SEV2 2024-02-25 [db]       22:00 / 22:20 / -- / 00:10 (+1 day) / 01:00 (+1) ttd 20 tta -  ttm 130 ttr 180
  D  SEV4 2024-04-02 [web]      08:00 .. 2024-04-05 08:00 (started, resolved)  ttr 4320
Targets: SEV1 acknowledge immediately (0) / resolve 60; SEV2 15 / 240; SEV4 next sprint (not measured) / 10080.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sitetools import build

PM = textwrap.dedent("""\
    ---
    id: {id}
    title: Incident {id}
    date: {date}
    severity: {sev}
    status: draft
    services: [{services}]
    times:
    {times}
    {actions}
    ---

    ## Summary

    Requests failed.

    ## Impact

    Some users saw errors.

    ## Root Cause

    The pool had no upper bound.
    """)

FIXTURE = {
    "MET-A": ("2024-01-10", "SEV1", "api", {"started": '"10:00"', "detected": '"10:05"', "acknowledged": '"10:05"',
                                              "mitigated": '"10:30"', "resolved": '"10:50"'},
              [("open", "2024-03-01"), ("done", "2024-02-01")]),
    "MET-B": ("2024-02-20", "SEV1", "api, db", {"started": '"09:00"', "detected": '"09:10"',
                                                 "acknowledged": '"09:14"', "mitigated": '"10:00"',
                                                 "resolved": '"11:30"'},
              [("in-progress", "2024-12-31"), ("wont-do", "2024-01-01")]),
    "MET-C": ("2024-02-25", "SEV2", "db", {"started": '"22:00"', "detected": '"22:20"',
                                            "mitigated": "2024-02-26T00:10:00Z", "resolved": "2024-02-26T01:00:00Z"},
              [("open", "2024-07-15")]),
    "MET-D": ("2024-04-02", "SEV4", "web", {"started": "2024-04-02T08:00:00Z", "resolved": "2024-04-05T08:00:00Z"},
              []),
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    (root / "docs").mkdir()
    for pid, (day, sev, services, times, items) in FIXTURE.items():
        actions = ""
        if items:
            actions = "action_items:\n" + "".join(
                f"  - action: Fix {pid} {n}.\n    owner: Ana Silva\n    due: {due}\n    status: {status}\n"
                for n, (status, due) in enumerate(items, start=1))
        text = PM.format(id=pid, date=day, sev=sev, services=services,
                         times="\n".join(f"  {k}: {v}" for k, v in times.items()), actions=actions)
        (root / "docs" / f"{pid}.md").write_text(text.replace("\n\n---", "\n---"))
    (root / "mkdocs.yml").write_text("site_name: t\ntheme: material\nplugins:\n  - search\n  - pmkb:\n"
                                     "      as_of: 2024-06-30\n")
    return root


def stats(root: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pmkb", "stats", "--format", "json"], cwd=root,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def group(count, mttd, mtta, mttm, mttr, med, left, resp, reso, **extra):
    return {"count": count, "mttd_minutes": mttd, "mtta_minutes": mtta, "mttm_minutes": mttm, "mttr_minutes": mttr,
            "median_mttd_minutes": med[0], "median_mtta_minutes": med[1], "median_mttm_minutes": med[2],
            "median_mttr_minutes": med[3], "left_out": dict(zip(("mttd", "mtta", "mttm", "mttr"), left)),
            "response_target_met": {"met": resp[0], "measured": resp[1]},
            "resolve_target_met": {"met": reso[0], "measured": reso[1]}, **extra}


# SEV1 (A, B): ttd (5+10)/2 = 7.5, tta (0+4)/2 = 2.0, ttm (30+60)/2 = 45.0, ttr (50+150)/2 = 100.0;
# response: A 0 <= 0 met, B 4 > 0 missed; resolve: A 50 <= 60 met, B 150 > 60 missed.
SEV1 = group(2, 7.5, 2.0, 45.0, 100.0, (7.5, 2.0, 45.0, 100.0), (0, 0, 0, 0), (1, 2), (1, 2))
# SEV2 (C): no acknowledged time, so tta is left out and the response target is not measured; 180 <= 240 met.
SEV2 = group(1, 20.0, None, 130.0, 180.0, (20.0, None, 130.0, 180.0), (0, 1, 0, 0), (0, 0), (1, 1))
SEV3 = group(0, None, None, None, None, (None, None, None, None), (0, 0, 0, 0), (0, 0), (0, 0))
# SEV4 (D): only started and resolved; "next sprint" cannot be measured; 4320 <= 10080 met.
SEV4 = group(1, None, None, None, 4320.0, (None, None, None, 4320.0), (1, 1, 1, 0), (0, 0), (1, 1))


def test_by_severity(kb):
    s = stats(kb)
    assert s["postmortems"] == 4 and s["as_of"] == "2024-06-30"
    assert s["by_severity"] == {"SEV1": SEV1, "SEV2": SEV2, "SEV3": SEV3, "SEV4": SEV4}


def test_by_service_with_mtbf(kb):
    s = stats(kb)["by_service"]
    # api = A, B: as SEV1; starts 2024-01-10 10:00 and 2024-02-20 09:00: 41 days less an hour = 58980 minutes.
    assert s["api"] == {**SEV1, "mtbf_minutes": 58980.0}
    # db = B, C: ttd (10+20)/2 = 15.0; tta only B = 4.0 (C left out); ttm (60+130)/2 = 95.0; ttr (150+180)/2 = 165.0;
    # response: B missed, C not measured -> 0 of 1; resolve: B missed, C met -> 1 of 2;
    # starts 2024-02-20 09:00 and 2024-02-25 22:00: 5 days 13 hours = 7980 minutes.
    assert s["db"] == group(2, 15.0, 4.0, 95.0, 165.0, (15.0, 4.0, 95.0, 165.0), (0, 1, 0, 0), (0, 1), (1, 2),
                            mtbf_minutes=7980.0)
    assert s["web"] == {**SEV4, "mtbf_minutes": None}  # one incident: no gap


def test_by_quarter_and_month(kb):
    s = stats(kb)
    # Q1 = A, B, C: ttd (5+10+20)/3 = 11.67 -> 11.7 (median 10); tta (0+4)/2 = 2.0 (C left out);
    # ttm (30+60+130)/3 = 73.33 -> 73.3 (median 60); ttr (50+150+180)/3 = 126.67 -> 126.7 (median 150);
    # response: A met, B missed, C not measured -> 1 of 2; resolve: A met, B missed, C met -> 2 of 3.
    assert s["by_quarter"]["2024-Q1"] == group(3, 11.7, 2.0, 73.3, 126.7, (10.0, 2.0, 60.0, 150.0), (0, 1, 0, 0),
                                              (1, 2), (2, 3))
    assert s["by_quarter"]["2024-Q2"] == SEV4
    assert list(s["by_quarter"]) == ["2024-Q1", "2024-Q2"]
    assert s["incidents_per_month"] == {
        "2024-01": {"SEV1": 1, "SEV2": 0, "SEV3": 0, "SEV4": 0},
        "2024-02": {"SEV1": 1, "SEV2": 1, "SEV3": 0, "SEV4": 0},
        "2024-04": {"SEV1": 0, "SEV2": 0, "SEV3": 0, "SEV4": 1},
    }


def test_action_item_counts_and_csv(kb):
    # open: A1 (due 2024-03-01, overdue on 2024-06-30) and C1 (due 2024-07-15); in progress: B1 (due 2024-12-31);
    # done: A2; won't do: B2 (due before as-of, but won't-do is never overdue).
    assert stats(kb)["action_items"] == {"open": 2, "in_progress": 1, "done": 1, "wont_do": 1, "overdue": 1}
    assert build(kb).returncode == 0
    rows = list(csv.DictReader(io.StringIO((kb / "site/pmkb/action-items.csv").read_text())))
    assert [(r["id"], r["status"], r["overdue"]) for r in rows] == [
        ("MET-A-1", "open", "true"), ("MET-A-2", "done", "false"), ("MET-B-1", "in-progress", "false"),
        ("MET-B-2", "wont-do", "false"), ("MET-C-1", "open", "false")]


def test_the_page_shows_the_same_figures(kb):
    assert build(kb).returncode == 0
    page = (kb / "site/metrics/index.html").read_text()
    sev1 = page.split(">SEV1</a></td>", 1)[1].split("</tr>", 1)[0]
    # count, MTTD 7.5 (shown rounded: 8m), MTTA 2m, MTTM 45m, MTTR 1h 40m, median MTTR 1h 40m, 1/2 met, 1/2 met
    cells = [c for c in sev1.replace("</td>", "").split("<td>") if c]
    assert cells[:8] == ["2", "8m", "2m", "45m", "1h 40m", "1h 40m", "1/2 (50%)", "1/2 (50%)"]
    card = (kb / "site/MET-C/index.html").read_text()
    assert "not measured" in card.split("Response target", 1)[1][:300]


# ----------------------------------------------------- the nine-postmortem fixture --
NINE = Path(__file__).parent / "fixtures" / "metrics_kb"


@pytest.fixture(scope="module")
def nine(tmp_path_factory):
    """tests/fixtures/metrics_kb: nine postmortems over three services and four severities, with
    gaps (no acknowledged time, no resolved time, a multi-day SEV4), whose expected figures in
    expected_stats.json and expected_actions.csv were worked out by hand as of 2025-01-01."""
    import shutil

    root = tmp_path_factory.mktemp("metrics-kb")
    shutil.copytree(NINE, root, dirs_exist_ok=True)
    return root


def test_the_fixture_stats_are_the_hand_computed_ones(nine):
    proc = subprocess.run([sys.executable, "-m", "pmkb", "stats", "--format", "json"], cwd=nine,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads((NINE / "expected_stats.json").read_text())


def test_the_fixture_action_item_export_is_the_hand_written_one(nine):
    proc = build(nine, "--strict")
    assert proc.returncode == 0, proc.stderr
    assert (nine / "site/pmkb/action-items.csv").read_text(encoding="utf-8") == \
        (NINE / "expected_actions.csv").read_text(encoding="utf-8")
