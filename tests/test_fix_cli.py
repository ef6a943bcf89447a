"""`pmkb fix` through the real CLI: --diff writes nothing, a fix changes only what it must."""

from __future__ import annotations

import shutil
import subprocess
import sys

from sitetools import REPO


def run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pmkb", "fix", *args], cwd=cwd, capture_output=True, text=True)


def test_fix_diff_then_write(tmp_path):
    shutil.copytree(REPO / "postmortems", tmp_path / "postmortems")
    shutil.copy(REPO / "mkdocs.yml", tmp_path)
    target = tmp_path / "postmortems/2024/INC-2024-001-checkout-500s-pool-resize.md"
    original = target.read_bytes()
    lines = original.decode().split("\n")
    start = lines.index("timeline:")
    # swap the first two timeline entries (3 lines each) and use a severity alias
    lines[start + 1:start + 7] = lines[start + 4:start + 7] + lines[start + 1:start + 4]
    broken = "\n".join(lines).replace("severity: SEV2", "severity: p2", 1).encode()
    target.write_bytes(broken)
    before = {p: p.read_bytes() for p in (tmp_path / "postmortems").rglob("*.md")}

    diff = run(tmp_path, "--diff", str(target.relative_to(tmp_path)))
    assert diff.returncode == 1
    assert "-severity: p2" in diff.stdout and "+severity: SEV2" in diff.stdout
    assert {p: p.read_bytes() for p in before} == before  # --diff wrote nothing

    done = run(tmp_path, str(target.relative_to(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "invalid-severity" in done.stdout and "timeline-out-of-order" in done.stdout
    assert target.read_bytes() == original  # exactly the file as it was before we broke it
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temporary files left

    again = run(tmp_path, str(target.relative_to(tmp_path)))
    assert again.returncode == 0 and again.stdout == "" and "fixed 0 files" in again.stderr


def test_fix_on_a_missing_path_is_a_usage_error(tmp_path):
    shutil.copy(REPO / "mkdocs.yml", tmp_path)
    proc = run(tmp_path, "nope.md")
    assert proc.returncode == 2 and "nope.md" in proc.stderr
