"""pmkb benchmarks: each figure against its floor, printed as a table.

    python benchmarks/run.py --sizes 1000 10000              # pmkb check at each size
    python benchmarks/run.py --sizes 1000 --build 1000 5000  # also full mkdocs builds and serve rebuilds

Measurements (wall clock, this machine, after a warm-up of the file cache):
- floor: read every file and load its front matter with PyYAML's C loader, one process;
- pmkb check in one process (--workers 1) and with the default workers, and its peak RSS,
  all cold (--no-cache): these three `--repeat` times (default 3), interleaved, medians
  shown; then with the results cache warm (a second run, nothing changed) and after
  editing one file (one run each);
- mkdocs build with the plugin and with `enabled: false` (same mkdocs.yml, postmortems
  kept out of the nav with not_in_nav in both): cold (PMKB_NO_CACHE=1), `--repeat` times
  interleaved, medians shown, and the same with the plugin's `nav: none` (Material renders
  the nav into every page: none keeps it as empty as the plugin-off build's); the plugin's
  own share of a cold build, and a build with the results cache warm (one run each);
- a `mkdocs serve` rebuild after editing one postmortem (benchmarks/plugin_time.py --serve):
  the plugin's own time in every event of the rebuild, next to the whole rebuild; `--repeat`
  sessions, medians shown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate, write_config  # noqa: E402

ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "SOURCE_DATE_EPOCH": "1751241600"}


def floor_seconds(docs: Path) -> float:
    import yaml

    files = sorted(docs.rglob("*.md"))
    t = time.perf_counter()
    for f in files:
        text = f.read_text(encoding="utf-8")
        yaml.load(text.split("---", 2)[1], Loader=yaml.CSafeLoader)
    return time.perf_counter() - t


_PEAK = ("import resource, subprocess, sys\n"
         "code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
         "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
         "sys.exit(code)\n")


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB of the command and its worker processes, exit code). A small
    parent per command, so one run's peak never carries over into the next figure."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _PEAK, report.name, *cmd], cwd=cwd, env=env or ENV)
        secs = time.perf_counter() - t
        peak_kb = float(Path(report.name).read_text() or 0)
    return secs, peak_kb / 1024, proc.returncode


def check_figures(root: Path, repeat: int) -> dict:
    """The floor and the cold checks are taken `repeat` times, interleaved, and their medians
    reported: on a shared machine one run of each can be 20% off, in either direction."""
    pmkb = [sys.executable, "-m", "pmkb", "check", "--format", "json"]
    floor_seconds(root / "docs")  # warm the page cache
    runs: dict[str, list[float]] = {"floor": [], "serial": [], "parallel": [], "serial_mb": [], "parallel_mb": []}
    for _ in range(repeat):
        runs["floor"].append(floor_seconds(root / "docs"))
        secs, mb, _ = timed(pmkb + ["--workers", "1", "--no-cache"], root)
        runs["serial"].append(secs)
        runs["serial_mb"].append(mb)
        secs, mb, _ = timed(pmkb + ["--no-cache"], root)
        runs["parallel"].append(secs)
        runs["parallel_mb"].append(mb)
    floor, serial, parallel = (statistics.median(runs[k]) for k in ("floor", "serial", "parallel"))
    serial_mb, parallel_mb = max(runs["serial_mb"]), max(runs["parallel_mb"])
    timed(pmkb, root)  # fill the results cache
    warm, warm_mb, _ = timed(pmkb, root)
    victim = sorted((root / "docs").rglob("*.md"))[0]
    victim.write_text(victim.read_text().replace("title: ", "title: Edited ", 1))
    one_edit, _, _ = timed(pmkb, root)
    return {"floor_s": floor, "check_serial_s": serial, "check_parallel_s": parallel,
            "check_serial_peak_mb": serial_mb, "check_parallel_peak_mb": parallel_mb,
            "check_warm_s": warm, "check_warm_peak_mb": warm_mb, "check_one_edit_s": one_edit,
            "runs": {k: [round(x, 3) for x in v] for k, v in runs.items()}}


def serve_rebuild(root: Path, repeat: int) -> dict:
    """The plugin's time in every event of a `mkdocs serve` rebuild after one edit, and the whole
    rebuild: benchmarks/plugin_time.py --serve, each run on a fresh copy so the edit stays out of
    the other figures; medians of `repeat` sessions (one run varied by ±10% on this machine)."""
    import shutil

    plugin, rebuild = [], []
    for _ in range(repeat):
        copy = root.parent / f"{root.name}-serve"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("site*", ".pmkb_cache"))
        time.sleep(2.1)  # as in any real repository, the files are older than the racy-stat window
        out = subprocess.run([sys.executable, str(HERE / "plugin_time.py"), str(copy / "mkdocs.yml"),
                              str(copy / "site"), "--serve"], env={**ENV, "PMKB_NO_CACHE": "1"},
                             capture_output=True, text=True, check=True)
        shutil.rmtree(copy, ignore_errors=True)
        head = out.stdout.split("build ")[1]
        plugin.append(float(head.split("plugin events ")[1].split(" s")[0]))
        rebuild.append(float(head.split(" s;")[0]))
    return {"serve_plugin_s": statistics.median(plugin), "serve_rebuild_s": statistics.median(rebuild),
            "serve_runs": {"plugin": plugin, "rebuild": rebuild}}


def plugin_events(root: Path, env: dict) -> float | None:
    """Seconds spent in the plugin's events during one build (benchmarks/plugin_time.py)."""
    proc = subprocess.run([sys.executable, str(HERE / "plugin_time.py"), str(root / "mkdocs.yml"),
                           str(root / "site-timed")], env=env, capture_output=True, text=True)
    return float(proc.stdout.split("plugin events ")[1].split(" s")[0]) if "plugin events" in proc.stdout else None


def build_figures(root: Path, repeat: int) -> dict:
    """Plugin off and on (cold) are built `repeat` times, interleaved, and their medians
    reported, as the checks are; the rest is one run each."""
    build = [sys.executable, "-m", "mkdocs", "build", "-q", "-d"]
    cold = {**ENV, "PMKB_NO_CACHE": "1"}
    runs: dict[str, list] = {"off": [], "on": [], "nav_none": [], "off_mb": [], "on_mb": [], "rc": []}
    for _ in range(repeat):
        secs, mb, rc_off = timed(build + [str(root / "site-off"), "-f", "mkdocs-off.yml"], root)
        runs["off"].append(secs)
        runs["off_mb"].append(mb)
        secs, mb, rc_on = timed(build + [str(root / "site-on"), "-f", "mkdocs.yml"], root, cold)
        runs["on"].append(secs)
        runs["on_mb"].append(mb)
        secs, _, rc_none = timed(build + [str(root / "site-nav-none"), "-f", "mkdocs-nav-none.yml"], root, cold)
        runs["nav_none"].append(secs)
        runs["rc"] += [rc_off, rc_on, rc_none]
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    off_mb, on_mb = max(runs["off_mb"]), max(runs["on_mb"])
    share = plugin_events(root, cold)
    timed(build + [str(root / "site-warm"), "-f", "mkdocs.yml"], root)  # fill the results cache
    warm, _, _ = timed(build + [str(root / "site-warm"), "-f", "mkdocs.yml"], root)
    warm_share = plugin_events(root, ENV)
    size = lambda d: sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) / 2**20  # noqa: E731
    return {"build_off_s": off, "build_on_s": on, "build_on_nav_none_s": statistics.median(runs["nav_none"]),
            "build_off_peak_mb": off_mb, "build_on_peak_mb": on_mb,
            "plugin_share_s": share, "build_on_warm_s": warm, "plugin_share_warm_s": warm_share,
            "site_off_mb": size(root / "site-off"), "site_on_mb": size(root / "site-on"),
            "exit_codes": runs["rc"], "build_runs": {k: [round(x, 2) for x in runs[k]] for k in ("off", "on", "nav_none")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="pmkb check at these sizes")
    ap.add_argument("--build", type=int, nargs="*", default=[], help="mkdocs builds and serve rebuilds at these sizes")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of the floor, the cold checks, the cold builds and the serve rebuilds (medians shown)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="pmkb-bench-") as tmp:
        for n in sorted(set(args.sizes) | set(args.build)):
            root = Path(tmp) / str(n)
            generate(root, n)
            write_config(root)
            write_config(root, enabled=False)
            write_config(root, extra="      nav: none\n", name="mkdocs-nav-none.yml")
            r: dict = {"postmortems": n}
            if n in args.sizes:
                r |= check_figures(root, args.repeat)
            if n in args.build:
                r |= build_figures(root, args.repeat)
                r |= serve_rebuild(root, args.repeat)
            rows[n] = r
            print(json.dumps(r), file=sys.stderr)
    print(f"{'postmortems':>11} {'floor':>7} {'check 1p':>9} {'ratio':>6} {'check Np':>9} {'ratio':>6} {'peak MB':>8} "
          f"{'ms/pm':>6} {'warm':>6} {'ratio':>6} {'1 edit':>6} {'serve':>7} {'rebuild':>7} {'build off':>9} {'build on':>9} "
          f"{'ratio':>6} {'plugin':>7} {'warm on':>8} {'ratio':>6} {'plugin':>7} {'nav none':>8} {'ratio':>6}")
    for n, r in rows.items():
        def f(key, fmt="{:.2f}"):
            return fmt.format(r[key]) if r.get(key) is not None else "-"
        ratio1 = f"{r['check_serial_s'] / r['floor_s']:.2f}x" if "floor_s" in r else "-"
        ratio2 = f"{r['check_parallel_s'] / r['floor_s']:.2f}x" if "floor_s" in r else "-"
        ms = f"{1000 * r['check_serial_s'] / n:.2f}" if "check_serial_s" in r else "-"
        bratio = f"{r['build_on_s'] / r['build_off_s']:.2f}x" if "build_on_s" in r else "-"
        wratio = f"{r['check_warm_s'] / r['floor_s']:.2f}x" if "check_warm_s" in r else "-"
        bwratio = f"{r['build_on_warm_s'] / r['build_off_s']:.2f}x" if "build_on_warm_s" in r else "-"
        nratio = f"{r['build_on_nav_none_s'] / r['build_off_s']:.2f}x" if "build_on_nav_none_s" in r else "-"
        print(f"{n:>11} {f('floor_s'):>7} {f('check_serial_s'):>9} {ratio1:>6} {f('check_parallel_s'):>9} {ratio2:>6} "
              f"{f('check_parallel_peak_mb', '{:.0f}'):>8} {ms:>6} {f('check_warm_s'):>6} {wratio:>6} "
              f"{f('check_one_edit_s'):>6} {f('serve_plugin_s', '{:.3f}'):>7} {f('serve_rebuild_s', '{:.1f}'):>7} "
              f"{f('build_off_s', '{:.1f}'):>9} {f('build_on_s', '{:.1f}'):>9} {bratio:>6} {f('plugin_share_s', '{:.1f}'):>7} "
              f"{f('build_on_warm_s', '{:.1f}'):>8} {bwratio:>6} {f('plugin_share_warm_s', '{:.1f}'):>7} "
              f"{f('build_on_nav_none_s', '{:.1f}'):>8} {nratio:>6}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
