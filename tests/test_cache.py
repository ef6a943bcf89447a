"""The on-disk results cache: a warm run says exactly what a cold one says, edits, config and
date changes are seen, and a broken or planted cache is only ever a miss."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pmkb.core.cache import FORMAT
from sitetools import ENV, copy_sample

PMKB = [sys.executable, "-m", "pmkb"]


def pmkb(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PMKB, *args], cwd=root, env={**ENV, "NO_COLOR": "1", **(env or {})},
                          capture_output=True, text=True, timeout=120)


def check_json(root: Path, *args: str, env: dict | None = None) -> dict:
    proc = pmkb(root, "check", "--format", "json", *args, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def shards(root: Path) -> list[Path]:
    return sorted((root / ".pmkb_cache").glob(f"v{FORMAT}/*/*.json"))


def set_option(root: Path, **options) -> None:
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    for p in cfg["plugins"]:
        if isinstance(p, dict) and "pmkb" in p:
            p["pmkb"].update(options)
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture
def kb(tmp_path) -> Path:
    return copy_sample(tmp_path)


def count_parses(root: Path, *args: str) -> int:
    """How many files a `pmkb check` in this process had to parse (0: all from the cache)."""
    code = (
        "import sys, pmkb.core.kb as kb\n"
        "from pmkb.cli import run\n"
        "n = [0]\n"
        "real = kb.read_postmortem\n"
        "def counted(*a, **k):\n"
        "    n[0] += 1\n"
        "    return real(*a, **k)\n"
        "kb.read_postmortem = counted\n"
        f"sys.argv = ['pmkb', 'check', '--workers', '1', {', '.join(map(repr, args))}]\n"
        "try:\n"
        "    run()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('PARSED', n[0], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=ENV, capture_output=True, text=True, timeout=120)
    return int(proc.stderr.rsplit("PARSED", 1)[1].split()[0])


def test_a_warm_run_reports_exactly_what_a_cold_run_does(kb):
    cold = check_json(kb, "--no-cache")
    assert not (kb / ".pmkb_cache").exists()  # --no-cache writes nothing either
    first = check_json(kb)
    assert shards(kb)
    assert count_parses(kb) == 0
    assert check_json(kb) == first == cold
    assert (kb / ".pmkb_cache/.gitignore").read_text().splitlines()[-1] == "*"
    assert (kb / ".pmkb_cache/CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_an_edited_file_is_checked_again_and_only_it(kb):
    check_json(kb)
    md = next((kb / "postmortems").rglob("INC-2025-004-*.md"))
    md.write_text(md.read_text().replace("## Summary\n", "## Summary\n\nThe on-call should have known better.\n", 1))
    assert count_parses(kb) == 1
    found = check_json(kb)["diagnostics"]
    assert any(d["rule"].startswith("blame-") and d["path"].endswith(md.name) for d in found)
    assert check_json(kb, "--no-cache")["diagnostics"] == found


def test_a_deleted_file_leaves_no_entry_behind(kb):
    check_json(kb)
    entries = sum(len(json.loads(p.read_bytes())) for p in shards(kb))
    next((kb / "postmortems").rglob("INC-2025-004-*.md")).unlink()
    check_json(kb)
    assert sum(len(json.loads(p.read_bytes())) for p in shards(kb)) == entries - 1


def test_configuration_changes_are_never_served_stale(kb):
    before = check_json(kb)
    assert any(d["rule"] == "action-item-overdue" for d in before["diagnostics"])
    set_option(kb, rules={"action-item-overdue": "off", "missing-section": "error"})
    after = check_json(kb)
    assert after == check_json(kb, "--no-cache")
    assert not any(d["rule"] == "action-item-overdue" for d in after["diagnostics"])


def test_the_date_is_never_cached(kb):
    early = check_json(kb, "--as-of", "2024-01-01")
    late = check_json(kb, "--as-of", "2030-01-01")
    overdue = [sum(d["rule"] == "action-item-overdue" for d in r["diagnostics"]) for r in (early, late)]
    assert overdue[0] < overdue[1]
    assert late == check_json(kb, "--as-of", "2030-01-01", "--no-cache")


def test_a_planted_pickle_is_never_run(kb):
    """Someone with write access to a restored CI cache must not get code execution."""
    check_json(kb)
    proof = kb / "pwned"

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {proof}",))

    for shard in shards(kb):
        shard.write_bytes(pickle.dumps({("x", "y"): Evil()}))
    assert check_json(kb) == check_json(kb, "--no-cache")
    assert not proof.exists()


def _tamper(kb: Path, change) -> None:
    for shard in shards(kb):
        rows = json.loads(shard.read_bytes())
        for row in rows:
            change(row)
        shard.write_text(json.dumps(rows))


@pytest.mark.parametrize("change", [
    lambda row: row[2].__setitem__(1, "Path"),  # a class that is not the model's
    lambda row: row[2].__setitem__(2, 12345),  # Postmortem.path not a string
    lambda row: row[2].append("extra"),  # one field too many
    lambda row: row[3].append(["C", "Diagnostic", "p", 1, "PM1", "r", "error", "m", None]),  # span not a Span
    lambda row: row[3].append(["C", "Span", 1, 1, None, None]),  # diagnostics that are not diagnostics
    lambda row: row[3].append(["C", "Diagnostic", "p", ["P", "1", 1, None, None], "PM1", "r", "error", "m", None]),
    lambda row: row[2].__setitem__(14, ["M", ["started", ["DT", "2024-01-01T00:00:00", "../../../etc/passwd"]]]),
    lambda row: row[2].__setitem__(6, {"__class__": "os.system"}),  # a bare mapping
], ids=["class", "type", "arity", "nested-type", "not-diagnostics", "span-type", "zone-path", "mapping"])
def test_a_tampered_entry_is_a_miss(kb, change):
    cold = check_json(kb, "--no-cache")
    check_json(kb)
    _tamper(kb, change)
    proc = pmkb(kb, "check", "--format", "json")
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout) == cold


def test_serve_hits_in_memory_do_not_empty_the_disk_cache(kb):
    """`mkdocs serve` answers unchanged files from memory; the disk cache must keep them."""
    from pmkb.core.cache import ResultCache
    from pmkb.core.config import Config
    from pmkb.core.kb import ParseCache, RelativeTo, check

    cfg = Config.from_file(kb / "mkdocs.yml")
    memory = ParseCache()
    for n in range(3):
        check(cfg, display=RelativeTo(kb), cache=memory, disk=ResultCache.for_config(cfg))
        md = sorted((kb / "postmortems").rglob("*.md"))[n]
        md.write_text(md.read_text().replace("title: ", "title: Edited ", 1))
    check(cfg, display=RelativeTo(kb), cache=memory, disk=ResultCache.for_config(cfg))
    assert sum(len(json.loads(p.read_bytes())) for p in shards(kb)) == len(list((kb / "postmortems").rglob("*.md")))


def test_runs_that_show_paths_differently_share_one_cache(kb):
    """Paths are shown relative to where pmkb runs (the plugin: to mkdocs.yml). A run from
    another folder reuses the entries and shows its own paths; neither run drops the other's."""
    sub = kb / "postmortems"
    cold_here = check_json(sub, "-f", str(kb / "mkdocs.yml"), "--no-cache")
    check_json(kb)
    assert count_parses(sub, "-f", str(kb / "mkdocs.yml")) == 0
    assert count_parses(kb) == 0
    warm_here = check_json(sub, "-f", str(kb / "mkdocs.yml"))
    assert warm_here == cold_here
    assert any(d["path"].startswith("2024/") for d in warm_here["diagnostics"])

def test_a_cache_dir_of_yours_is_not_marked_or_pruned(kb):
    """cache_dir may name an existing folder: pmkb adds its v<FORMAT>/ there and touches nothing else."""
    set_option(kb, cache_dir=".")
    (kb / f"v{FORMAT}").mkdir()
    (kb / f"v{FORMAT}" / "notes").mkdir()  # not a fingerprint: never pruned
    for n in range(6):  # more configurations than KEEP
        set_option(kb, id_prefix=f"X{n}")
        check_json(kb)
    assert not (kb / ".gitignore").exists() and not (kb / "CACHEDIR.TAG").exists()
    assert (kb / f"v{FORMAT}" / "notes").is_dir()


def test_configuration_keys_of_mixed_types_do_not_break_the_key(kb):
    set_option(kb, blame={"levels": {2024: "warning", "careless": "notice"}})
    proc = pmkb(kb, "check")
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 2), proc.stderr


@pytest.mark.parametrize("damage", [b"", b"\x80\x05garbage", b"not a pickle at all"])
def test_a_corrupt_cache_is_a_miss(kb, damage):
    cold = check_json(kb, "--no-cache")
    check_json(kb)
    for shard in shards(kb):
        shard.write_bytes(damage)
    assert check_json(kb) == cold
    assert check_json(kb) == cold  # and it heals


def test_an_unwritable_cache_never_fails_the_check(kb):
    (kb / "blocker").write_text("a file where the cache folder would go\n")
    set_option(kb, cache_dir="blocker/cache")
    proc = pmkb(kb, "check")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr
    assert (kb / "blocker").read_text() == "a file where the cache folder would go\n"


def test_the_cache_can_be_switched_off_or_moved(kb, tmp_path_factory):
    check_json(kb, env={"PMKB_NO_CACHE": "1"})
    set_option(kb, cache_dir="")
    check_json(kb)
    assert not (kb / ".pmkb_cache").exists()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    set_option(kb, cache_dir=str(elsewhere / "c"))
    check_json(kb)
    assert not (kb / ".pmkb_cache").exists() and list((elsewhere / "c").glob(f"v{FORMAT}/*/*.json"))


def test_the_site_build_uses_and_agrees_with_the_cache(kb):
    """`mkdocs build` fills the cache and a later `pmkb check` is served from it, with the same findings."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q"], cwd=kb, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert shards(kb)
    cold = check_json(kb, "--no-cache")
    assert count_parses(kb, "--format", "json") == 0  # same display paths, same configuration
    assert check_json(kb) == cold


@pytest.mark.parametrize("options", [
    {"timezone": "America/New_York"},
    {"severities": [{"name": "SEV1", "aliases": ["P1"], "response_target": "5m", "resolve_target": "30m"},
                    {"name": "SEV2", "aliases": ["P2"], "response_target": "15m", "resolve_target": "4h"}]},
    {"required": {"SEV3": {"sections": ["Summary", "Impact", "Root Cause", "Lessons Learned", "Five Whys"]}}},
    {"status_levels": {"draft": "warning", "in-review": "error", "published": "notice"}},
    {"people": ["Zephyrine Quall"]},
    {"blame": {"allow": ["human error"]}},
    {"customers": ["Northwind"]},
    {"id_prefix": "OPS", "max_file_size": 2000},
], ids=lambda o: "+".join(o))
def test_every_option_a_file_check_reads_is_part_of_the_key(kb, options):
    public = kb / "postmortems/2024/INC-2024-003-apns-certificate-expiry.md"
    public.write_text(public.read_text().replace("## Root Cause\n", "## Root Cause\n\nNorthwind saw the failures first. "
                                                 "Zephyrine Quall forgot to renew it. It was human error.\n", 1))
    before = check_json(kb)  # warm, with the sample's configuration
    set_option(kb, **options)
    after = check_json(kb)
    assert after == check_json(kb, "--no-cache")
    assert after != before  # each option changes what the check says, so a stale cache would show


def test_the_serve_memory_cache_forgets_results_when_the_configuration_changes(kb):
    """Under `mkdocs serve` the plugin outlives an edit of mkdocs.yml: its in-memory results must not."""
    from pmkb.core.config import Config
    from pmkb.core.kb import ParseCache, RelativeTo, check

    md = kb / "postmortems/2024/INC-2024-003-apns-certificate-expiry.md"
    md.write_text(md.read_text().replace("## Root Cause\n", "## Root Cause\n\nIt was human error.\n", 1))
    memory = ParseCache()
    before = check(Config.from_file(kb / "mkdocs.yml"), display=RelativeTo(kb), cache=memory)
    assert any(d.rule == "blame-human-error" for d in before.diagnostics)
    set_option(kb, rules={"blame-human-error": "off"})
    after = check(Config.from_file(kb / "mkdocs.yml"), display=RelativeTo(kb), cache=memory)
    fresh = check(Config.from_file(kb / "mkdocs.yml"), display=RelativeTo(kb))
    assert [(d.path, d.rule, d.severity, d.span) for d in after.diagnostics] == \
        [(d.path, d.rule, d.severity, d.span) for d in fresh.diagnostics]
    assert not any(d.rule == "blame-human-error" for d in after.diagnostics)



def test_the_serve_memory_cache_follows_options_outside_the_per_file_fingerprint(kb):
    """Dated and named-people findings are memoised under serve; an edit of mkdocs.yml that
    changes only what those stages read must still reach them."""
    from datetime import date

    from pmkb.core.config import Config
    from pmkb.core.kb import ParseCache, RelativeTo, check

    def findings(result):
        return sorted((d.path, d.rule, d.severity, d.span.line) for d in result.diagnostics)

    memory = ParseCache()
    check(Config.from_file(kb / "mkdocs.yml"), display=RelativeTo(kb), cache=memory, as_of=date(2031, 1, 1))
    set_option(kb, overdue_policy=[{"days": 30, "level": "error"}])  # read by the dated stage alone
    cfg = Config.from_file(kb / "mkdocs.yml")
    after = check(cfg, display=RelativeTo(kb), cache=memory, as_of=date(2031, 1, 1))
    fresh = check(cfg, display=RelativeTo(kb), as_of=date(2031, 1, 1))
    assert any(d.rule == "action-item-overdue" and d.severity == "error" for d in fresh.diagnostics)
    assert findings(after) == findings(fresh)


_COUNTING_BUILD = """
import sys
import mkdocs.utils.meta as meta
from mkdocs.commands.build import build
from mkdocs.config import load_config
parsed = []
real = meta.yaml.load
meta.yaml.load = lambda text, *a, **k: parsed.append(text) or real(text, *a, **k)
cfg = load_config("mkdocs.yml", site_dir=sys.argv[1])
cfg.plugins.on_startup(command="build", dirty=False)
build(cfg)
print(sum(isinstance(t, str) and "id: INC-" in t for t in parsed))
"""


def test_builds_parse_front_matter_once_cold_or_from_the_cache(tmp_path):
    """MkDocs parses no postmortem's YAML: a cold build gets page meta from the check, a warm
    one from the results cache, one after `pmkb check` (entries without page meta) checks
    those files again; and all these sites equal one where MkDocs reads every page's front
    matter itself (entries that say pmkb has no page meta for them)."""
    root = copy_sample(tmp_path)
    postmortems = [f for f in (root / "postmortems").rglob("*.md") if "id: INC-" in f.read_text()]

    def build(out: str) -> int:
        proc = subprocess.run([sys.executable, "-c", _COUNTING_BUILD, out], cwd=root, capture_output=True,
                              text=True, env=ENV, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    assert build("cold") == 0 and shards(root)
    assert build("warm") == 0

    def rewrite_meta(value) -> None:
        for shard in shards(root):
            rows = json.loads(shard.read_bytes())
            assert rows and all(isinstance(row[4], str) for row in rows)  # the front matter, as JSON text
            for row in rows:
                row[4] = value
            shard.write_bytes(json.dumps(rows).encode())

    rewrite_meta(None)  # as `pmkb check` writes entries
    assert build("after_cli") == 0
    rewrite_meta(json.dumps([None, []]))  # no page meta from pmkb: MkDocs reads the YAML itself
    assert len(postmortems) >= build("without") > 10  # every postmortem page this edition shows

    def files(d: str) -> dict:
        return {p.relative_to(root / d): p.read_bytes() for p in (root / d).rglob("*") if p.is_file()}

    assert files("cold") == files("warm") == files("after_cli") == files("without")


_META_HOOK = '''
import json, os
from mkdocs.plugins import event_priority

SEEN = {}

def typed(v):
    """A value with its type spelled out: a date and its text must not compare equal."""
    if isinstance(v, dict):
        return {"dict": [[typed(k), typed(x)] for k, x in v.items()]}
    if isinstance(v, list):
        return {"list": [typed(x) for x in v]}
    return [type(v).__name__ if not isinstance(v, str) else "str", repr(v) if not isinstance(v, str) else str(v)]

@event_priority(-50)
def on_page_markdown(markdown, page, config, files):
    SEEN[page.file.src_uri] = typed(page.meta)

def on_post_build(config):
    with open(os.environ["META_OUT"], "w") as f:
        json.dump(SEEN, f)
'''

_TYPED_FRONT_MATTER = """\
reviewed: 2024-03-02 10:00:00+02:00
window: 1:30
ratio: 1:30.5
labels: {first: 2024-03-01, when: [2024-03-02T10:00:00Z, plain]}
"""


def test_page_meta_has_the_types_mkdocs_gives_cold_warm_and_after_the_cli(tmp_path):
    """Other plugins read page.meta (a blog's `date`, an RSS feed's times): whichever way a
    page's meta came (the check, the results cache, MkDocs itself) it is what MkDocs' own
    reading of the front matter gives, types included."""
    from mkdocs.utils.meta import get_data

    root = copy_sample(tmp_path)
    sample = sorted((root / "postmortems").rglob("INC-*.md"))
    text = sample[0].read_text()
    typed_file = sample[0].with_name("INC-2099-001-typed.md")
    typed_file.write_text(text.replace("---\n", "---\n" + _TYPED_FRONT_MATTER, 1).replace(
        "id: INC-", "id: INC-2099-001\nold_id: INC-", 1))
    odd_key = sample[0].with_name("INC-2099-002-odd-key.md")  # a key SafeLoader reads as a number
    odd_key.write_text(text.replace("---\n", "---\n2024: a year key\n", 1).replace("id: INC-", "id: INC-2099-002\nold_id: INC-", 1))
    (root / "hook.py").write_text(_META_HOOK)
    cfg = yaml.safe_load((root / "mkdocs.yml").read_text())
    cfg["hooks"] = ["hook.py"]
    (root / "mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    hook = {}
    exec(compile(_META_HOOK, "hook", "exec"), hook)

    def seen(out: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", out], cwd=root,
                              capture_output=True, text=True, env={**ENV, "META_OUT": str(tmp_path / f"{out}.json")},
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads((tmp_path / f"{out}.json").read_text())

    pages = {"cold": seen("cold"), "warm": seen("warm")}
    shutil.rmtree(root / ".pmkb_cache")
    assert pmkb(root, "check").returncode in (0, 1)
    pages["after_cli"] = seen("after_cli")
    rewritten = ("title", "tags", "services", "authors")  # made safe for themes (they print them raw)
    compared = 0
    for path in [typed_file, odd_key, *sample]:
        src = path.relative_to(root / "postmortems").as_posix()  # the sample's docs_dir
        if src not in pages["cold"]:
            continue  # another edition's postmortem
        expected = hook["typed"]({k: v for k, v in get_data(path.read_text())[1].items() if k not in rewritten})
        for how, meta in pages.items():
            got = {"dict": [kv for kv in meta[src]["dict"] if kv[0] not in [["str", k] for k in rewritten]]}
            assert got == expected, (how, src)
        compared += 1
    typed_src = typed_file.relative_to(root / "postmortems").as_posix()
    assert compared > 10 and typed_src in pages["cold"] and odd_key.relative_to(root / "postmortems").as_posix() in pages["cold"]
    reviewed = dict((k[1], v) for k, v in pages["warm"][typed_src]["dict"])["reviewed"]
    assert reviewed[0] == "datetime"  # the test can tell a datetime from its text


def test_serve_checks_after_an_edit_equal_a_fresh_check(kb, monkeypatch):
    """Under serve, an edit that leaves every file's IDs, action-item IDs, related links and
    people as they were re-checks the edited file alone (the knowledge-base rules are not run
    again: its notes are added again with the new spans). Every result equals a fresh check."""
    import pmkb.core.kb as kbmod
    from pmkb.core.config import Config
    from pmkb.core.kb import ParseCache, RelativeTo, check

    monkeypatch.setattr(ParseCache, "RACY_NS", -10**18)  # trust file stats at once (a test is fast)
    runs = []
    real = kbmod.kb_notes
    monkeypatch.setattr(kbmod, "kb_notes", lambda pms: runs.append(1) or real(pms))
    memory = ParseCache()
    md = next((kb / "postmortems").rglob("INC-2025-004-*.md"))
    other = next((kb / "postmortems").rglob("INC-2024-001-*.md"))

    def same_as_fresh(edit: tuple[Path, str, str] | None, whole: bool):
        if edit is not None:
            path, old, new = edit
            text = path.read_text()
            assert old in text, old
            path.write_text(text.replace(old, new, 1))
        runs.clear()
        got = check(Config.from_file(kb / "mkdocs.yml"), display=RelativeTo(kb), cache=memory)
        fresh = check(Config.from_file(kb / "mkdocs.yml"), display=RelativeTo(kb))
        assert len(runs) == 1 + whole  # the fresh check, and the served one only when it must
        assert got.diagnostics == fresh.diagnostics
        assert (got.files_checked, got.checked_paths) == (fresh.files_checked, fresh.checked_paths)
        assert [pm.title for pm in got.kb.postmortems] == [pm.title for pm in fresh.kb.postmortems]
        assert {i: (pm.path, pm.title) for i, pm in got.kb.by_id.items()} == \
            {i: (pm.path, pm.title) for i, pm in fresh.kb.by_id.items()}
        assert got.kb.backlinks == fresh.kb.backlinks and got.people.names == fresh.people.names
        assert got.kb.config is not None and got.kb.as_of == fresh.kb.as_of
        return got

    same_as_fresh(None, True)
    same_as_fresh(None, False)  # nothing edited
    same_as_fresh((md, "title: ", "title: Edited "), False)
    # a link to an ID no postmortem has: the related rules' facts change, so they run again
    got = same_as_fresh((md, "related: [INC-2024-001]", "related: [INC-2024-001, INC-2099-404]"), True)
    assert any(d.rule == "unknown-related" and d.path.endswith(md.name) for d in got.diagnostics)
    # two lines more above it: its unknown-related finding moves with them
    got = same_as_fresh((md, "title: ", "# one\n# two\ntitle: "), False)
    assert any(d.rule == "unknown-related" and d.path.endswith(md.name) for d in got.diagnostics)
    # a finding of the file's own below that one: the file's findings are in line order
    got = same_as_fresh((md, "## Summary\n", "## Summary\n\nThe on-call should have known better.\n"), False)
    assert any(d.rule.startswith("blame-") and d.path.endswith(md.name) for d in got.diagnostics)
    # someone the knowledge base knows, named in a root cause
    same_as_fresh((md, "## Root Cause\n", "## Root Cause\n\nPriya Raman restarted the wrong pod.\n"), False)
    same_as_fresh((other, "title: ", "title: Also edited "), False)
    same_as_fresh((md, "owner: Priya Raman", "owner: Xantippe Quorl"), True)  # a new person
    same_as_fresh((md, "id: INC-2025-004", "id: INC-2024-001"), True)  # a duplicate ID
    same_as_fresh((md, "id: INC-2024-001", "id: INC-2025-004"), True)
    same_as_fresh((md, "title: ", "title: \"unterminated\n"), True)  # front matter it cannot read
