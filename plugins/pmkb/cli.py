"""The `pmkb` command: a thin adapter over pmkb.core."""

from __future__ import annotations

import gc
import os
import re
import sys
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn

import click

from . import __version__
from .core.config import Config, ConfigError
from .core.editions import EDITIONS
from .core.cache import ResultCache
from .core.kb import check as run_check
from .core.kb import discover
from .core.rules.registry import FAMILIES, REGISTRY
from .report import FORMATS

config_option = click.option(
    "-f", "--config-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The site's mkdocs.yml (default: ./mkdocs.yml).",
)
edition_option = click.option(
    "--edition", type=click.Choice(EDITIONS), default=None,
    help="Which postmortems and passages count (default: the configured edition, else internal).",
)


def edition_postmortems(result, cfg: Config, edition: str | None):
    """The postmortems an edition shows, as the site shows them, so CLI and site agree."""
    from .core.blame import people_index
    from .core.editions import apply_edition, chosen_edition

    return apply_edition(result.kb.valid, chosen_edition(cfg, edition), people_index(result.kb.valid, cfg.people))


def load_config(config_file: Path | None) -> Config:
    try:
        if config_file is None:
            return Config.from_file(Path("mkdocs.yml"), required=False)
        return Config.from_file(config_file)
    except ConfigError as exc:
        raise click.exceptions.Exit(_fail(str(exc))) from None


def _fail(message: str, code: int = 2) -> int:
    click.echo(f"pmkb: {message}", err=True)
    return code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pmkb")
def cli() -> None:
    """pmkb: validate blameless postmortems and build a knowledge base from them."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@config_option
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="text", show_default=True,
              help="Output format.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD", help="The date that decides what is overdue.")
@click.option("--color/--no-color", default=None, help="Colour the text output (default: when a terminal).")
@click.option("--changed-since", "changed_since", default=None, metavar="REV",
              help="Check only postmortems that differ between git REV and the working tree (untracked included).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes (default: one per core for 200 files or more; 1 = no workers).")
@click.option("--force-exclude", is_flag=True,
              help="Skip PATHS that are not postmortems by the configuration (for pre-commit, which passes every file).")
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Neither read nor write the results cache (cache_dir, default .pmkb_cache next to mkdocs.yml).")
def check(paths, config_file, fmt, strict, as_of, color, changed_since, workers, force_exclude, no_cache):
    """Check postmortems (all of them, or PATHS) against the template and blame rules.

    Knowledge-base rules (duplicate IDs, related links, names) always see the whole folder.
    Exit status: 0 no errors, 1 errors (or warnings with --strict), 2 usage or configuration error.
    """
    cfg = load_config(config_file)
    as_of_date = _parse_as_of(as_of)
    only = None
    known = {p.resolve() for p, _ in discover(cfg)} if (force_exclude or changed_since) else set()
    if paths:
        only = set()
        for p in paths:
            if p.is_dir():
                only |= {f.resolve() for f, _ in discover(cfg, below=p)}
            elif p.exists():
                only.add(p.resolve())
            else:
                raise click.exceptions.Exit(_fail(f"{p}: no such file or folder"))
        if force_exclude:
            only &= known
    if changed_since:
        changed = _changed_files(changed_since) & known
        only = changed if only is None else only & changed
    result = run_check(cfg, only=only, as_of=as_of_date, workers=workers,
                       disk=None if no_cache else ResultCache.for_config(cfg))
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    click.echo(FORMATS[fmt](result, color=color))
    failing = result.count("error") + (result.count("warning") if strict else 0)
    sys.exit(1 if failing else 0)


@cli.command()
@config_option
@click.option("--owner", default=None, help="Only this owner's items (case-insensitive).")
@click.option("--service", default=None, help="Only items of incidents on this service.")
@click.option("--overdue", is_flag=True, help="Only overdue items.")
@click.option("--all", "show_all", is_flag=True, help="Include done and wont-do items (default: open and in progress).")
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD", help="The date that decides what is overdue.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True)
@edition_option
def actions(config_file, owner, service, overdue, show_all, as_of, fmt, edition):
    """List action items across the knowledge base (open and in progress by default)."""
    import json

    from .core.actions import action_rows, csv_text, select

    cfg = load_config(config_file)
    result = run_check(cfg, as_of=_parse_as_of(as_of), disk=ResultCache.for_config(cfg))
    rows = select(action_rows(edition_postmortems(result, cfg, edition), result.kb.as_of), owner=owner, service=service, overdue=overdue,
                  status=None if show_all or overdue else ("open", "in-progress"))
    if fmt == "json":
        click.echo(json.dumps({"as_of": result.kb.as_of.isoformat(), "action_items": [r.as_dict() for r in rows]},
                              indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(csv_text(rows), nl=False)
    else:
        for r in rows:
            a = r.item
            flag = f"  OVERDUE {r.days_overdue}d" if r.overdue else ""
            click.echo(f"{a.id:<18} {a.status:<11} {(a.due.isoformat() if a.due else '-'):<10} "
                       f"{(a.owner or '-'):<20} {a.action}{flag}")
        over = sum(1 for r in rows if r.overdue)
        click.echo(f"{len(rows)} action item{'s' * (len(rows) != 1)}, {over} overdue as of {result.kb.as_of}.")


@cli.command()
@config_option
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD", help="The date that decides what is overdue.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@edition_option
def stats(config_file, as_of, fmt, edition):
    """Incident metrics: MTTD, MTTA, MTTM, MTTR, target compliance, MTBF, action items."""
    import json

    from .core.durations import format_minutes
    from .core.metrics import stats as compute

    cfg = load_config(config_file)
    result = run_check(cfg, as_of=_parse_as_of(as_of), disk=ResultCache.for_config(cfg))
    st = compute(edition_postmortems(result, cfg, edition), cfg, result.kb.as_of)
    if fmt == "json":
        click.echo(json.dumps(st, indent=2, ensure_ascii=False))
        return

    def pct(c):
        return f"{c['met']}/{c['measured']}" if c["measured"] else "-"

    click.echo(f"{st['postmortems']} postmortems, as of {st['as_of']}")
    for title, table in (("severity", st["by_severity"]), ("service", st["by_service"]), ("quarter", st["by_quarter"])):
        click.echo(f"\nBy {title}:")
        click.echo(f"  {'':<18}{'count':>6}{'MTTD':>12}{'MTTA':>12}{'MTTM':>12}{'MTTR':>12}{'resp.':>8}{'resolve':>9}")
        for name, g in table.items():
            click.echo(f"  {name:<18}{g['count']:>6}{format_minutes(g['mttd_minutes']):>12}{format_minutes(g['mtta_minutes']):>12}"
                       f"{format_minutes(g['mttm_minutes']):>12}{format_minutes(g['mttr_minutes']):>12}"
                       f"{pct(g['response_target_met']):>8}{pct(g['resolve_target_met']):>9}")
    a = st["action_items"]
    click.echo(f"\nAction items: {a['open']} open, {a['in_progress']} in progress, {a['done']} done, "
               f"{a['wont_do']} won't do, {a['overdue']} overdue")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@config_option
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes as a unified diff; write nothing.")
def fix(paths, config_file, show_diff):
    """Apply the safe rewrites: severity aliases to canonical names, timelines sorted by time,
    missing action-item IDs added. Only those bytes change; each file is replaced atomically.

    Exit status: 0 nothing (left) to fix, 1 with --diff when there are changes, 2 usage error.
    """
    from .fix import fix_bytes, unified_diff
    from .core.safe_write import FileExists, replace_file

    cfg = load_config(config_file)
    targets: list[Path] = []
    for p in paths or [cfg.postmortems_root]:
        if p.is_dir():
            targets += [f for f, _ in discover(cfg, below=p)]
        elif p.exists():
            targets.append(p)
        else:
            raise click.exceptions.Exit(_fail(f"{p}: no such file or folder"))
    changed = failed = 0
    for path in targets:
        shown = os.path.relpath(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            click.echo(f"{shown}: cannot read: {exc.strerror or exc}", err=True)
            failed += 1
            continue
        new, changes = fix_bytes(data, cfg)
        if not changes:
            continue
        changed += 1
        if show_diff:
            click.echo(unified_diff(shown, data.decode("utf-8"), new.decode("utf-8")), nl=False)
            continue
        try:
            replace_file(path, new.decode("utf-8"), data)
        except (FileExists, OSError) as exc:
            click.echo(f"{shown}: not written: {exc}", err=True)
            failed += 1
            continue
        for c in changes:
            click.echo(f"{shown}:{c.line}: {c.rule}: {c.description}")
    verb = "would fix" if show_diff else "fixed"
    click.echo(f"{verb} {changed} file{'s' * (changed != 1)}", err=True)
    sys.exit(1 if failed or (show_diff and changed) else 0)


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@config_option
@click.option("--as-of", "as_of", default=None, metavar="YYYY-MM-DD", help="The date that decides what is overdue.")
@click.option("--force", is_flag=True,
              help="Write into a non-empty OUT: replace the files pmkb generates there, touch nothing else.")
@edition_option
def generate(out, config_file, as_of, force, edition):
    """Write the whole site as plain Markdown into OUT, for MkDocs without the plugin, ProperDocs
    or Zensical: every generated page, the postmortem pages (header + sanitised prose), the
    exports and the CSS/JS assets. See docs/generate.md.

    Exit status: 0 written, 1 a file could not be written, 2 usage error or refusal (OUT not
    empty without --force, OUT overlapping the sources).
    """
    from .generate import GenerateError
    from .generate import generate as run_generate

    cfg = load_config(config_file)
    try:
        tree, done = run_generate(cfg, out, as_of=_parse_as_of(as_of), force=force, edition=edition)
    except GenerateError as exc:
        raise click.exceptions.Exit(_fail(str(exc), exc.code)) from None
    for w in tree.warnings:
        click.echo(f"pmkb: warning: {w}", err=True)
    for rel in done.kept:
        click.echo(f"pmkb: warning: {rel}: no longer generated but changed since; left in place", err=True)
    errors = tree.result.count("error")
    if errors:
        click.echo(f"pmkb: {errors} error{'s' * (errors != 1)} in the knowledge base; `pmkb check` lists them", err=True)
    click.echo(f"{out}: {len(tree.files)} files ({tree.postmortems} postmortems"
               f"{f', {tree.broken} unreadable' if tree.broken else ''}); {done.written} written, "
               f"{done.unchanged} unchanged{f', {done.removed} stale removed' if done.removed else ''}")


def _changed_files(rev: str) -> set[Path]:
    """Files that differ between REV and the working tree, committed or not, plus untracked ones."""
    import subprocess

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            raise click.exceptions.Exit(_fail(f"--changed-since needs git: {exc}")) from None
        if out.returncode != 0:
            raise click.exceptions.Exit(_fail(f"--changed-since {rev}: {out.stderr.strip() or 'not a commit in this repository'}"))
        return out.stdout

    top = Path(git("rev-parse", "--show-toplevel").strip())
    git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    names = git("diff", "--name-only", "--no-renames", "-z", rev, "--").split("\0")
    names += git("ls-files", "--others", "--exclude-standard", "-z", "--full-name", ":/").split("\0")
    return {(top / n).resolve() for n in names if n and (top / n).is_file()}


def _parse_as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.exceptions.Exit(_fail(f"--as-of {value!r} is not a YYYY-MM-DD date")) from None


@cli.command()
@click.argument("rule", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules(rule, fmt):
    """List every rule, or explain RULE (a code like PM201 or a name like missing-section)."""
    import json

    chosen = list(REGISTRY)
    if rule:
        r = REGISTRY.get(rule)
        if r is None:
            raise click.exceptions.Exit(_fail(f"unknown rule {rule!r}; `pmkb rules` lists them"))
        chosen = [r]
    if fmt == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "family": r.family, "level": _level(r.level),
                                "summary": r.summary, "explanation": r.explanation, "bad": r.bad, "good": r.good}
                               for r in chosen], indent=2))
        return
    if rule:
        r = chosen[0]
        click.echo(f"{r.code} {r.name} ({r.family}; default level: {_level(r.level)})\n\n{r.summary}")
        if r.explanation:
            click.echo(f"\n{r.explanation}")
        if r.bad:
            click.echo("\nFlagged:\n" + _indent(r.bad))
        if r.good:
            click.echo("\nBetter:\n" + _indent(r.good))
        return
    family = None
    for r in chosen:
        if r.family != family:
            family = r.family
            click.echo(f"\n{family.capitalize()}")
        click.echo(f"  {r.code}  {r.name:<28} {_level(r.level):<9} {r.summary}")
        if r.bad and r.family == FAMILIES["PM6"]:
            click.echo(f"  {'':5}  {'':28} {'':9} e.g. \"{r.bad}\" -> \"{r.good}\"")


def _level(level: str) -> str:
    return "by status" if level == "status" else level


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def slugify(text: str, max_len: int = 60) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "postmortem"


def next_id(cfg: Config, year: int) -> str:
    """The next free <prefix>-<year>-<NNN>, from file names and id lines (no full parse)."""
    pat = re.compile(rf"\b{re.escape(cfg.id_prefix)}-{year}-(\d+)\b")
    top = 0
    for abs_path, rel in discover(cfg):
        for m in pat.finditer(rel):
            top = max(top, int(m.group(1)))
        try:
            with abs_path.open("rb") as fh:
                head = fh.read(4096).decode("utf-8", "replace")
        except OSError:
            continue
        m = re.search(rf"^id:\s*['\"]?{re.escape(cfg.id_prefix)}-{year}-(\d+)", head, re.M)
        if m:
            top = max(top, int(m.group(1)))
    return f"{cfg.id_prefix}-{year}-{top + 1:03d}"


@cli.command()
@click.option("--title", required=True, help="One line: what users saw.")
@click.option("--severity", default="SEV3", show_default=True, help="SEV1..SEV4 (or an alias such as P2).")
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD", help="The day the incident started (default: today).")
@click.option("--author", default=None, help="Your name (default: git config user.name).")
@click.option("--dry-run", is_flag=True, help="Print the file instead of writing it.")
@config_option
def new(title, severity, day, author, dry_run, config_file):
    """Start a new postmortem from the template, with the next free ID. Never overwrites a file."""
    from .render import scaffold_environment
    from .core.safe_write import FileExists, write_new

    cfg = load_config(config_file)
    sev = cfg.canonical_severity(severity)
    if sev is None:
        raise click.exceptions.Exit(_fail(f"--severity {severity!r} is not one of {', '.join(cfg.severity_names())}"))
    if "\n" in title or not title.strip():
        raise click.exceptions.Exit(_fail("--title must be one non-empty line"))
    try:
        incident_day = date.fromisoformat(day) if day else datetime.now(cfg.tz).date()
    except ValueError:
        raise click.exceptions.Exit(_fail(f"--date {day!r} is not a YYYY-MM-DD date")) from None
    pid = next_id(cfg, incident_day.year)
    if author is None:
        author = _git_user()
    env = scaffold_environment(cfg.root / cfg.templates_dir)
    text = env.get_template("postmortem.md.j2").render(
        id=pid, title=title.strip(), severity=sev, date=incident_day.isoformat(), author=author,
        required=cfg.required.get(sev),
    )
    path = cfg.postmortems_root / str(incident_day.year) / f"{pid}-{slugify(title)}.md"
    if dry_run:
        click.echo(text, nl=False)
        return
    try:
        write_new(path, text)
    except FileExists:
        raise click.exceptions.Exit(_fail(f"{path} already exists; nothing was written", 1)) from None
    except OSError as exc:
        raise click.exceptions.Exit(_fail(f"cannot write {path}: {exc.strerror or exc}", 1)) from None
    click.echo(os.path.relpath(path))


def _git_user() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run() -> None:
    """The CLI in this process; ends in SystemExit with the exit status (tests call this)."""
    try:
        cli(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug of ours must still not dump a traceback on a user
        if os.environ.get("PMKB_DEBUG"):
            raise
        click.echo(f"pmkb: internal error: {type(exc).__name__}: {exc} (set PMKB_DEBUG=1 for details)", err=True)
        sys.exit(3)


def main() -> None:
    """The `pmkb` command, a process that does one thing and ends. What a check allocates
    lives to the end, so the cyclic collector's passes only re-walk it, and freeing it all at
    exit is wasted work: at 10,000 postmortems, 0.12 s and 0.08 s of a 7 s check. So the
    collector stays off and the process ends once its output is flushed (as mypy does)."""
    gc.disable()
    try:
        run()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    _exit_now(code)


def _exit_now(code) -> NoReturn:
    """sys.exit(code) without tearing the interpreter down."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        status = 1
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`pmkb check | head`) or a closed stream
            pass
    os._exit(status)


if __name__ == "__main__":
    main()
