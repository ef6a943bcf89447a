"""The reviewer's workflow: --changed-since on a real git repository, and pre-commit itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sitetools import REPO


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    shutil.copytree(REPO / "postmortems", tmp_path / "postmortems")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "ci@example.com")
    git(tmp_path, "config", "user.name", "CI")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "knowledge base")
    return tmp_path


def check(cwd: Path, *args: str):
    proc = subprocess.run([sys.executable, "-m", "pmkb", "check", "--format", "json", *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1735689600"})
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else proc


def test_changed_since_checks_committed_staged_unstaged_and_untracked_changes(repo):
    files = sorted((repo / "postmortems").rglob("INC-*.md"))
    committed, staged, unstaged = files[0], files[1], files[2]
    committed.write_text(committed.read_text() + "\nMore detail.\n")
    git(repo, "commit", "-qam", "edit one")
    staged.write_text(staged.read_text().replace("status: published", "status: draft", 1))
    git(repo, "add", str(staged))
    unstaged.write_text(unstaged.read_text() + "\nThe on-call should have paged sooner.\n")
    new = repo / "postmortems/2026/INC-2026-099-new.md"
    new.write_text(files[3].read_text())  # a copy: duplicate id against the whole folder
    (repo / "notes.md").write_text("not a postmortem\n")
    code, result = check(repo, "--changed-since", "HEAD~1")
    assert result["files_checked"] == 4
    paths = {d["path"] for d in result["diagnostics"]}
    rel = lambda p: p.relative_to(repo).as_posix()  # noqa: E731
    assert rel(new) in paths and rel(files[3]) not in paths  # KB-wide duplicate-id, reported on the new file only
    assert any(d["rule"] == "duplicate-id" for d in result["diagnostics"])
    assert any(d["rule"] == "blame-counterfactual" and d["path"] == rel(unstaged) for d in result["diagnostics"])
    assert "notes.md" not in paths
    assert code == 1


def test_changed_since_with_nothing_changed_checks_nothing(repo):
    code, result = check(repo, "--changed-since", "HEAD")
    assert (code, result["files_checked"], result["diagnostics"]) == (0, 0, [])


def test_changed_since_a_bad_revision_is_a_usage_error(repo):
    code, proc = check(repo, "--changed-since", "no-such-rev")
    assert code == 2 and "no-such-rev" in proc.stderr and "Traceback" not in proc.stderr


def test_force_exclude_skips_files_that_are_not_postmortems(repo):
    (repo / "README.md").write_text("# Readme\n")
    code, result = check(repo, "--force-exclude", "README.md")
    assert (code, result["files_checked"]) == (0, 0)
    code, result = check(repo, "README.md")
    assert code == 1 and result["diagnostics"][0]["rule"] == "missing-front-matter"


def test_pre_commit_runs_the_hook_from_this_repository(repo, tmp_path_factory):
    """pre-commit installs pmkb from a snapshot of this repository (like `rev:` in a user's
    config) and runs the pmkb-check hook on the staged files of a temporary repository."""
    pre_commit = shutil.which("pre-commit", path=os.path.dirname(sys.executable))
    assert pre_commit, "pre-commit is a test dependency"
    snapshot = tmp_path_factory.mktemp("pmkb-src")
    subprocess.run(["git", "archive", "--format=tar", "-o", str(snapshot / "src.tar"), "HEAD"], cwd=REPO, check=True)
    src = snapshot / "pmkb"
    src.mkdir()
    subprocess.run(["tar", "-xf", str(snapshot / "src.tar"), "-C", str(src)], check=True)
    # the working tree's hook file and package, so the test sees uncommitted work too
    shutil.copy(REPO / ".pre-commit-hooks.yaml", src / ".pre-commit-hooks.yaml")
    shutil.rmtree(src / "plugins")
    shutil.copytree(REPO / "plugins", src / "plugins", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.rmtree(src / "templates")
    shutil.copytree(REPO / "templates", src / "templates", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "snapshot")
    rev = git(src, "rev-parse", "HEAD").strip()
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {src.as_posix()}\n    rev: {rev}\n    hooks:\n      - id: pmkb-check\n")
    env = {**os.environ, "PRE_COMMIT_HOME": str(Path.home() / ".cache" / "pmkb-pre-commit"),
           "SOURCE_DATE_EPOCH": "1735689600"}
    env.pop("VIRTUAL_ENV", None)
    bad = repo / "postmortems/2024/INC-2024-001-checkout-500s-pool-resize.md"
    bad.write_text(bad.read_text().replace("## Root Cause\n", "## Root Cause\n\nIt was human error.\n", 1))
    (repo / "README.md").write_text("# Not a postmortem\n")
    git(repo, "add", "-A")
    run = subprocess.run([pre_commit, "run", "--files", "README.md", str(bad.relative_to(repo))], cwd=repo,
                         capture_output=True, text=True, env=env, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "pmkb check" in out and "blame-human-error" in out and "README.md" not in out.split("pmkb check", 1)[1]
    bad.write_text(bad.read_text().replace("\nIt was human error.\n", "\n", 1))
    git(repo, "add", "-A")
    run = subprocess.run([pre_commit, "run", "--files", "README.md", str(bad.relative_to(repo))], cwd=repo,
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
