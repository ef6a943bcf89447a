"""Shared fixtures: a small knowledge base in tmp_path and the real `pmkb` CLI.

Tests write real files and run the real CLI in a subprocess (`python -m pmkb.cli`,
or the installed `pmkb` script), so what is tested is exactly what a user runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"


def _pmkb_command() -> list[str]:
    """`python -m pmkb.cli` when the module calls main() when run; else the installed console script."""
    import pmkb.cli

    source = Path(pmkb.cli.__file__).read_text(encoding="utf-8")
    if re.search(r"""^if __name__ == ["']__main__["']:""", source, re.M):
        return [sys.executable, "-m", "pmkb.cli"]
    script = shutil.which("pmkb", path=os.path.dirname(sys.executable))
    assert script, "the pmkb console script is not installed next to this Python"
    return [script]


PMKB = _pmkb_command()

# A fixed "today" for everything date-dependent (overdue action items), so the
# suite gives the same answer next year. Action items in the fixtures are due in 2099.
SOURCE_DATE_EPOCH = "1717200000"  # 2024-06-01T00:00:00Z


def fixture_text(name: str) -> str:
    """A golden input under tests/fixtures/fields/."""
    return (FIXTURES / "fields" / name).read_text(encoding="utf-8")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:  # pragma: no cover - shows what came instead
            raise AssertionError(f"not JSON ({exc}):\nstdout={self.stdout!r}\nstderr={self.stderr!r}") from None


class KB:
    """A knowledge base in a folder: mkdocs.yml (docs_dir: docs) and postmortems under docs/."""

    def __init__(self, root: Path):
        self.root = root
        self.docs = root / "docs"

    def config(self, options: dict | None = None, *, raw: str | None = None) -> Path:
        """Write mkdocs.yml. Without options the plugins list is exactly `[search, pmkb]`."""
        path = self.root / "mkdocs.yml"
        if raw is not None:
            text = raw
        elif options:
            text = "site_name: Test KB\ndocs_dir: docs\n" + yaml.safe_dump(
                {"plugins": ["search", {"pmkb": options}]}, sort_keys=False
            )
        else:
            text = "site_name: Test KB\ndocs_dir: docs\nplugins: [search, pmkb]\n"
        path.write_text(text, encoding="utf-8")
        return path

    def write(self, rel: str, content: str | bytes) -> Path:
        """Write a file under docs/ byte for byte (no newline translation)."""
        path = self.docs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)
        return path

    def run(self, *args: str, cwd: Path | None = None) -> Run:
        """Run the real `pmkb` CLI with the knowledge base root as the current directory."""
        env = {k: v for k, v in os.environ.items() if k not in ("PMKB_DEBUG", "FORCE_COLOR")}
        env.update(NO_COLOR="1", SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, PYTHONIOENCODING="utf-8")
        proc = subprocess.run(
            [*PMKB, *args], cwd=cwd or self.root, env=env, capture_output=True, text=True,
            encoding="utf-8", timeout=60,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def check(self, *args: str, cwd: Path | None = None) -> tuple[int, dict, Run]:
        """`pmkb check --format json ARGS`: (exit code, parsed JSON, the run)."""
        run = self.run("check", "--format", "json", *args, cwd=cwd)
        assert run.returncode in (0, 1), f"exit {run.returncode}\nstdout={run.stdout}\nstderr={run.stderr}"
        return run.returncode, run.json(), run


@pytest.fixture
def kb(tmp_path: Path) -> KB:
    """An empty knowledge base with the default configuration (`plugins: [search, pmkb]`)."""
    k = KB(tmp_path)
    k.config()
    return k


@pytest.fixture
def make_kb(tmp_path: Path):
    """Build a knowledge base: make_kb({"2024/a.md": text, ...}, options={...})."""

    def build(files: dict[str, str | bytes], options: dict | None = None) -> KB:
        k = KB(tmp_path)
        k.config(options)
        for rel, content in files.items():
            k.write(rel, content)
        return k

    return build


@pytest.fixture
def clean_text() -> str:
    """A SEV2, published postmortem that passes every check (INC-2024-001)."""
    return fixture_text("clean-sev2.md")


@pytest.fixture
def other_text() -> str:
    """A second clean postmortem in the knowledge base (INC-2024-002, SEV3)."""
    return fixture_text("other-sev3.md")


def diags_for(data: dict, path: str | None = None, code: str | None = None) -> list[dict]:
    """The diagnostics of one path and/or one code."""
    return [d for d in data["diagnostics"] if (path is None or d["path"] == path) and (code is None or d["code"] == code)]
