"""The `pmkb fix` rewrite engine (pmkb.fix): exact before/after text for each rewrite.

Every case is a whole postmortem (front matter and prose). The expected output is
written out in full, so any byte the engine should not touch (comments, quoting,
blank lines, key order, prose, line ends, a byte-order mark) is checked too.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import fixture_text
from pmkb.core.config import Config
from pmkb.core.parse import read_postmortem
from pmkb.fix import Change, fix_bytes, fix_text, unified_diff
from pmkb.core.safe_write import replace_file

CFG = Config.from_options({}, root=Path(__file__).parent)

PROSE = """
## Summary

Checkout failed; the pool had 5 connections.  Two spaces here, a tab\there.
---
A rule line above is prose, not front matter.  severity: p2 stays as written here.

- time: "09:00"
  event: a list in the body is not the timeline
"""


def front(text: str) -> dict:
    """The front matter as yaml.safe_load reads it (independent of pmkb's own loader)."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")
    close = lines.index("---", 1)
    return yaml.safe_load("\n".join(lines[1:close]))


def body(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(lines[lines.index("---", 1) + 1:])


def fixed(text: str) -> tuple[str, list[Change]]:
    new, changes = fix_text(text, CFG)
    again, more = fix_text(new, CFG)
    assert again == new and more == [], "fix_text is not idempotent"
    return new, changes


# ---------------------------------------------------------------------------
# 1. severity aliases

SEV_BEFORE = """---
# incident record
id: INC-2024-001
title: 'Checkout: HTTP 500s'
date: 2024-03-14
severity: {value}   # from the pager
status: draft
---
""" + PROSE


@pytest.mark.parametrize(
    ("value", "expected", "description"),
    [
        ("p2", "SEV2", "severity: p2 -> SEV2"),
        ("P2", "SEV2", "severity: P2 -> SEV2"),
        ("sev2", "SEV2", "severity: sev2 -> SEV2"),
        ("Sev2", "SEV2", "severity: Sev2 -> SEV2"),
        ("s1", "SEV1", "severity: s1 -> SEV1"),
        ('" Sev2"', '"SEV2"', 'severity: " Sev2" -> "SEV2"'),
        ("'p4'", "'SEV4'", "severity: 'p4' -> 'SEV4'"),
        ('"sev 3"', '"SEV3"', 'severity: "sev 3" -> "SEV3"'),
    ],
)
def test_severity_alias_becomes_canonical(value, expected, description):
    before = SEV_BEFORE.format(value=value)
    after, changes = fixed(before)
    assert after == SEV_BEFORE.format(value=expected)
    assert changes == [Change("invalid-severity", 6, description)]
    old, new = front(before), front(after)
    assert new.pop("severity") == expected.strip("'\"")
    old.pop("severity")
    assert new == old


@pytest.mark.parametrize("value", ["SEV2", '"SEV2"', "critical", "2", "[p2]", "", "&s p2"])
def test_severity_left_alone(value):
    """Canonical already, not a severity at all, not text, or an anchor: nothing to do."""
    before = SEV_BEFORE.format(value=value)
    assert fix_text(before, CFG) == (before, [])


def test_severity_through_an_alias_is_not_rewritten_at_the_anchor():
    before = "---\nid: INC-2024-001\nlevel: &s p2\nseverity: *s\n---\nText.\n"
    assert fix_text(before, CFG) == (before, [])


def test_severity_with_configured_alias():
    cfg = Config.from_options(
        {"severities": [{"name": "MAJOR", "aliases": ["big", "P1"]}, {"name": "MINOR", "aliases": ["small"]}]},
        root=Path(__file__).parent,
    )
    before = "---\nid: INC-2024-001\nseverity: Big\n---\nText.\n"
    assert fix_text(before, cfg) == (
        "---\nid: INC-2024-001\nseverity: MAJOR\n---\nText.\n",
        [Change("invalid-severity", 3, "severity: Big -> MAJOR")],
    )


# ---------------------------------------------------------------------------
# 2. timeline order

TIMELINE_BEFORE = """---
id: INC-2024-001
date: 2024-03-14
severity: SEV2
timeline:
  # times are UTC
  - time: "14:20"   # rollback
    event: Rolled back the release.
    phase: mitigate
  - time: "14:02"
    event: >-
      The error-rate alert
      fired.
    # paged the on-call

  - time: 2024-03-14T14:10:00Z
    event: 'Acknowledged: on-call joined'
  - time: "14:02"
    event: Second report at the same minute.
    phase: detect
    # trailing note about the second report
# roles below
roles:
  incident_commander: Hana Kim
---
""" + PROSE

TIMELINE_AFTER = """---
id: INC-2024-001
date: 2024-03-14
severity: SEV2
timeline:
  # times are UTC
  - time: "14:02"
    event: >-
      The error-rate alert
      fired.
    # paged the on-call

  - time: "14:02"
    event: Second report at the same minute.
    phase: detect
    # trailing note about the second report
  - time: 2024-03-14T14:10:00Z
    event: 'Acknowledged: on-call joined'
  - time: "14:20"   # rollback
    event: Rolled back the release.
    phase: mitigate
# roles below
roles:
  incident_commander: Hana Kim
---
""" + PROSE


def test_timeline_sorted_as_whole_blocks():
    after, changes = fixed(TIMELINE_BEFORE)
    assert after == TIMELINE_AFTER
    assert changes == [Change("timeline-out-of-order", 7, "timeline: sorted 4 entries by time")]
    old, new = front(TIMELINE_BEFORE), front(after)
    assert new["timeline"] == [old["timeline"][i] for i in (1, 3, 2, 0)]  # stable for the two 14:02s
    assert {k: v for k, v in new.items() if k != "timeline"} == {k: v for k, v in old.items() if k != "timeline"}
    assert list(new) == list(old)
    assert sorted(after.splitlines()) == sorted(TIMELINE_BEFORE.splitlines())  # lines only moved


def test_timeline_fix_clears_the_finding():
    def rules(text):
        _, diags = read_postmortem(Path("a.md"), "a.md", "a.md", CFG, data=text.encode())
        return [d.rule for d in diags]

    assert "timeline-out-of-order" in rules(TIMELINE_BEFORE)
    assert "timeline-out-of-order" not in rules(fix_text(TIMELINE_BEFORE, CFG)[0])


def test_timeline_already_sorted_is_unchanged():
    assert fix_text(TIMELINE_AFTER, CFG) == (TIMELINE_AFTER, [])


def test_timeline_with_an_unparseable_time_is_not_sorted():
    before = TIMELINE_BEFORE.replace('time: "14:02"\n    event: >-', 'time: "2pm"\n    event: >-')
    assert before != TIMELINE_BEFORE
    assert fix_text(before, CFG) == (before, [])


def test_timeline_hhmm_without_a_date_is_not_sorted():
    before = TIMELINE_BEFORE.replace("date: 2024-03-14\n", "")
    assert fix_text(before, CFG) == (before, [])


def test_flow_style_timeline_is_left_alone():
    before = """---
id: INC-2024-001
date: 2024-03-14
timeline: [{time: "14:20", event: Rolled back}, {time: "14:02", event: Alert fired}]
---
""" + PROSE
    assert fix_text(before, CFG) == (before, [])


def test_timeline_with_flow_entries_in_a_block_list_is_sorted():
    before = '---\ndate: 2024-03-14\ntimeline:\n- {time: "14:20", event: B}\n- {time: "14:02", event: A}\n---\nText.\n'
    after = '---\ndate: 2024-03-14\ntimeline:\n- {time: "14:02", event: A}\n- {time: "14:20", event: B}\n---\nText.\n'
    assert fixed(before) == (after, [Change("timeline-out-of-order", 4, "timeline: sorted 2 entries by time")])


def test_timeline_in_the_configured_zone():
    """14:30 local in Berlin (13:30Z) comes before a 14:00Z timestamp."""
    cfg = Config.from_options({"timezone": "Europe/Berlin"}, root=Path(__file__).parent)
    before = ('---\ndate: 2024-03-14\ntimeline:\n  - time: 2024-03-14T14:00:00Z\n    event: B\n'
              '  - time: "14:30"\n    event: A\n---\n')
    after = ('---\ndate: 2024-03-14\ntimeline:\n  - time: "14:30"\n    event: A\n'
             '  - time: 2024-03-14T14:00:00Z\n    event: B\n---\n')
    assert fix_text(before, cfg)[0] == after
    assert fix_text(before, CFG) == (before, [])  # in UTC it is already in order


def test_timeline_whose_reorder_would_break_an_alias_is_left_alone():
    before = ('---\ndate: 2024-03-14\ntimeline:\n  - time: "14:20"\n    event: &e Same text\n'
              '  - time: "14:02"\n    event: *e\n---\n')
    assert fix_text(before, CFG) == (before, [])


# ---------------------------------------------------------------------------
# 3. missing action-item ids

ACTIONS_BEFORE = """---
id: INC-2024-001
severity: SEV2
action_items:
  - action: Reject pool sizes below peak usage.  # the main one
    owner: Wei Zhang
    due: 2099-01-31
  - id: INC-2024-001-2
    action: Sample the pool-wait metric every second.
  -
    # written with the dash on its own line
    action: Remove the manual approval from rollbacks.
    owner: Ana Silva
  - {action: A flow-style item is left alone}
  - action: 'Page the database on-call, too'
---
""" + PROSE

ACTIONS_AFTER = """---
id: INC-2024-001
severity: SEV2
action_items:
  - id: INC-2024-001-1
    action: Reject pool sizes below peak usage.  # the main one
    owner: Wei Zhang
    due: 2099-01-31
  - id: INC-2024-001-2
    action: Sample the pool-wait metric every second.
  -
    # written with the dash on its own line
    id: INC-2024-001-3
    action: Remove the manual approval from rollbacks.
    owner: Ana Silva
  - {action: A flow-style item is left alone}
  - id: INC-2024-001-5
    action: 'Page the database on-call, too'
---
""" + PROSE


def test_missing_action_ids_added_as_first_key():
    after, changes = fixed(ACTIONS_BEFORE)
    assert after == ACTIONS_AFTER
    assert changes == [
        Change("missing-action-id", 5, "action_items[1]: added id INC-2024-001-1"),
        Change("missing-action-id", 12, "action_items[3]: added id INC-2024-001-3"),
        Change("missing-action-id", 15, "action_items[5]: added id INC-2024-001-5"),
    ]
    old, new = front(ACTIONS_BEFORE), front(after)
    for n in (0, 2, 4):
        item = new["action_items"][n]
        assert list(item)[0] == "id" and item.pop("id") == f"INC-2024-001-{n + 1}"
    assert new == old
    assert [list(i) for i in new["action_items"]] == [list(i) for i in old["action_items"]]  # key order


def test_added_ids_are_the_ids_pmkb_already_used():
    """The normalised model is the same: the default id of an item was <id>-<n> already."""
    def items(text):
        pm, _ = read_postmortem(Path("a.md"), "a.md", "a.md", CFG, data=text.encode())
        return [(a.id, a.action, a.owner, a.due, a.index) for a in pm.action_items]

    assert items(ACTIONS_AFTER) == items(ACTIONS_BEFORE)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # list at the key's own indentation
        ("action_items:\n- action: X\n  owner: Y\n", "action_items:\n- id: INC-9-1\n  action: X\n  owner: Y\n"),
        # deeper indentation and wider spacing after the dash
        ("action_items:\n    -   action: X\n        owner: Y\n",
         "action_items:\n    -   id: INC-9-1\n        action: X\n        owner: Y\n"),
        # key spelled with a KEY_ALIASES alias
        ("actions:\n  - action: X\n", "actions:\n  - id: INC-9-1\n    action: X\n"),
    ],
)
def test_action_id_follows_the_item_indentation(before, after):
    head = "---\nid: INC-9\n"
    assert fixed(head + before + "---\nText.\n")[0] == head + after + "---\nText.\n"


def test_action_id_that_would_collide_is_skipped():
    before = """---
id: INC-2024-001
action_items:
  - action: First
  - id: INC-2024-001-1
    action: Already uses the id the first would get
  - action: Third
---
"""
    after, changes = fixed(before)
    assert after == before.replace("  - action: Third\n", "  - id: INC-2024-001-3\n    action: Third\n")
    assert changes == [Change("missing-action-id", 7, "action_items[3]: added id INC-2024-001-3")]


@pytest.mark.parametrize("id_line", ["", "id: inc 2024/1\n", "id:\n", "id: [INC-1]\n"])
def test_action_ids_need_a_valid_postmortem_id(id_line):
    before = f"---\n{id_line}action_items:\n  - action: X\n---\nText.\n"
    assert fix_text(before, CFG) == (before, [])


def test_flow_style_action_items_are_left_alone():
    before = "---\nid: INC-2024-001\naction_items: [{action: X}, {action: Y}]\n---\nText.\n"
    assert fix_text(before, CFG) == (before, [])


def test_action_item_with_an_empty_id_key_is_left_alone():
    before = "---\nid: INC-2024-001\naction_items:\n  - id:\n    action: X\n---\nText.\n"
    assert fix_text(before, CFG) == (before, [])


# ---------------------------------------------------------------------------
# all three at once; line ends and byte-order mark

ALL_BEFORE = """---
id: INC-2024-001
date: 2024-03-14
severity: P2
timeline:
  - time: "14:05"
    event: Alert fired.
  - time: "14:00"
    event: Release finished.
action_items:
  - action: Reject small pools.
    owner: Wei Zhang
---
""" + PROSE

ALL_AFTER = """---
id: INC-2024-001
date: 2024-03-14
severity: SEV2
timeline:
  - time: "14:00"
    event: Release finished.
  - time: "14:05"
    event: Alert fired.
action_items:
  - id: INC-2024-001-1
    action: Reject small pools.
    owner: Wei Zhang
---
""" + PROSE

ALL_CHANGES = [
    Change("invalid-severity", 4, "severity: P2 -> SEV2"),
    Change("timeline-out-of-order", 6, "timeline: sorted 2 entries by time"),
    Change("missing-action-id", 11, "action_items[1]: added id INC-2024-001-1"),
]


def test_all_rewrites_together():
    after, changes = fixed(ALL_BEFORE)
    assert after == ALL_AFTER
    assert changes == ALL_CHANGES
    assert body(after) == body(ALL_BEFORE)


def test_crlf_and_bom_preserved_byte_for_byte():
    before = ("\ufeff" + ALL_BEFORE.replace("\n", "\r\n")).encode("utf-8")
    expected = ("\ufeff" + ALL_AFTER.replace("\n", "\r\n")).encode("utf-8")
    after, changes = fix_bytes(before, CFG)
    assert after == expected
    assert after.startswith(b"\xef\xbb\xbf") and b"\n" not in after.replace(b"\r\n", b"")
    assert changes == ALL_CHANGES
    new, text_changes = fix_text(before.decode("utf-8"), CFG)
    assert new.encode("utf-8") == expected and text_changes == ALL_CHANGES
    assert fix_bytes(after, CFG) == (after, [])


def test_mixed_line_ends_each_kept():
    """A CRLF file edited by an LF tool: each line keeps its own end; a new line takes its neighbour's."""
    before = ALL_BEFORE.replace("\n", "\r\n").replace("Release finished.\r\n", "Release finished.\n")
    before = before.replace("  - action: Reject small pools.\r\n", "  - action: Reject small pools.\n")
    after, changes = fixed(before)
    expected = ALL_AFTER.replace("\n", "\r\n").replace("Release finished.\r\n", "Release finished.\n")
    expected = expected.replace("  - id: INC-2024-001-1\r\n    action: Reject small pools.\r\n",
                                "  - id: INC-2024-001-1\n    action: Reject small pools.\n")
    assert after == expected
    assert changes == ALL_CHANGES


def test_cr_only_line_ends():
    before = ALL_BEFORE.replace("\n", "\r")
    assert fixed(before) == (ALL_AFTER.replace("\n", "\r"), ALL_CHANGES)


def test_no_final_newline_and_unicode_line_separators_in_prose():
    before = ALL_BEFORE + "Last line\u2028with a separator\x0cand a form feed"
    after, changes = fixed(before)
    assert after == ALL_AFTER + "Last line\u2028with a separator\x0cand a form feed"
    assert changes == ALL_CHANGES


def test_real_file_round_trip(tmp_path):
    """Read a file's bytes, fix, write with safe_write, read back: exactly the expected bytes."""
    path = tmp_path / "2024-03-14-checkout.md"
    original = ("\ufeff" + ALL_BEFORE.replace("\n", "\r\n")).encode("utf-8")
    path.write_bytes(original)
    data = path.read_bytes()
    new, changes = fix_text(data.decode("utf-8"), CFG)
    assert changes
    replace_file(path, new, data)
    assert path.read_bytes() == ("\ufeff" + ALL_AFTER.replace("\n", "\r\n")).encode("utf-8")


def test_clean_fixture_is_unchanged():
    clean = fixture_text("clean-sev2.md")
    assert fix_text(clean, CFG) == (clean, [])


def test_fixture_with_alias_reversed_timeline_and_missing_id():
    clean = fixture_text("clean-sev2.md")
    entry1 = '  - time: "14:00"\n    event: The pool-size release finished rolling out.\n    phase: detect\n'
    entry2 = '  - time: "14:05"\n    event: The checkout error-rate alert fired.\n    phase: detect\n'
    assert clean.count(entry1 + entry2) == 1
    broken = (clean.replace("severity: SEV2", "severity: p2")
              .replace(entry1 + entry2, entry2 + entry1)
              .replace("  - id: INC-2024-001-1\n    action:", "  - action:"))
    after, changes = fixed(broken)
    assert after == clean
    assert [c.rule for c in changes] == ["invalid-severity", "timeline-out-of-order", "missing-action-id"]
    assert front(after) == front(clean)


# ---------------------------------------------------------------------------
# files that cannot be fixed come back unchanged


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ufeff",
        "# Just prose\n\nseverity: p2\n",
        "---\nid: INC-1\nseverity: p2\n",  # no closing line
        "---\nseverity: p2\ntimeline: [unclosed\n---\nText.\n",  # broken YAML
        "---\nseverity: p2\n  bad: indentation\n---\n",
        "---\n- a list\n- not a mapping\n---\n",
        "---\n---\nEmpty front matter.\n",
        "---\nseverity: !!python/object/apply:os.system [echo]\n---\n",
        "---\na: &a [*a]\nseverity: p2\n---\n",
        "---\nseverity: p2\nseverity: p3\n---\n",  # duplicate key: leave it to the author
        "\x00\x01binary---",
    ],
)
def test_unfixable_files_returned_unchanged(text):
    assert fix_text(text, CFG) == (text, [])


def test_undecodable_bytes_returned_unchanged():
    data = b"---\nseverity: p2\ntitle: \xff\xfe\n---\n"
    assert fix_bytes(data, CFG) == (data, [])


# ---------------------------------------------------------------------------
# unified_diff


def test_unified_diff_exact():
    old = "---\nseverity: p2\nstatus: draft\n---\nText\n"
    new = "---\nseverity: SEV2\nstatus: draft\n---\nText\n"
    assert unified_diff("docs/2024/a.md", old, new) == (
        "--- a/docs/2024/a.md\n"
        "+++ b/docs/2024/a.md\n"
        "@@ -1,5 +1,5 @@\n"
        " ---\n"
        "-severity: p2\n"
        "+severity: SEV2\n"
        " status: draft\n"
        " ---\n"
        " Text\n"
    )
    assert unified_diff("docs/2024/a.md", old, old) == ""


def test_unified_diff_without_final_newline():
    out = unified_diff("a.md", "x\ny", "x\nz")
    assert out == "--- a/a.md\n+++ b/a.md\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n"


# ---------------------------------------------------------------------------
# property: any order of a valid timeline comes out sorted, entries unchanged

ENTRIES = [
    ('"09:00"', "Deploy started.", "  # the first deploy\n"),
    ('"09:05"', "'Alert: error rate above 5%'", ""),
    ("2024-03-14T09:07:00Z", "On-call acknowledged.", "\n"),
    ('"09:07"', "Second page at the same minute.", "    # same minute as the ack\n"),
    ('"09:30"', ">-\n      Rolled back;\n      errors dropped.", ""),
    ("2024-03-14T10:15:00+01:00", "Incident review booked.", ""),  # 09:15Z
    ('"11:00"', "Resolved.", ""),
]


@settings(max_examples=150, deadline=None)
@given(st.permutations(range(len(ENTRIES))), st.booleans())
def test_any_permutation_is_sorted_and_keeps_its_entries(order, crlf):
    blocks = []
    for i in order:
        time, event, extra = ENTRIES[i]
        blocks.append(f"  - time: {time}\n    event: {event}\n    phase: detect\n{extra}")
    text = "---\nid: INC-2024-001\ndate: 2024-03-14\ntimeline:\n" + "".join(blocks) + "related: []\n---\n" + PROSE
    if crlf:
        text = text.replace("\n", "\r\n")
    after, changes = fix_text(text, CFG)
    assert fix_text(after, CFG) == (after, [])
    assert [c.rule for c in changes] in ([], ["timeline-out-of-order"])
    assert (changes == []) == (after == text)

    old, new = front(text)["timeline"], front(after)["timeline"]
    times = [_when(e["time"]) for e in new]
    assert times == sorted(times)
    key = lambda e: json.dumps(e, sort_keys=True, default=str)  # noqa: E731
    assert collections.Counter(map(key, new)) == collections.Counter(map(key, old))
    # stability: of the two 09:07 entries, the one written first stays first
    same = [e["event"] for e in new if _when(e["time"]) == _when('2024-03-14T09:07:00Z')]
    assert same == [e["event"] for e in old if _when(e["time"]) == _when('2024-03-14T09:07:00Z')]
    # only whole lines moved; the prose and everything around the list is as it was
    assert sorted(after.splitlines(keepends=True)) == sorted(text.splitlines(keepends=True))
    assert body(after) == body(text)
    assert {k: v for k, v in front(after).items() if k != "timeline"} == {
        k: v for k, v in front(text).items() if k != "timeline"}


def _when(value) -> float:
    from datetime import datetime, timezone

    from pmkb.core.durations import parse_time

    if isinstance(value, datetime):  # yaml.safe_load reads full timestamps itself
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return parse_time(str(value), datetime(2024, 3, 14).date(), timezone.utc).timestamp()
