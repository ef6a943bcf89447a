"""Time spent inside the pmkb plugin's MkDocs events during one build (wall clock, no profiler).

    python benchmarks/plugin_time.py path/to/mkdocs.yml
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict


def timed_build(config_file: str, site_dir: str) -> tuple[float, dict[str, float]]:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    from pmkb.mkdocs_plugin import PmkbPlugin

    spent: dict[str, float] = defaultdict(float)
    for name in ("on_config", "on_files", "on_page_markdown", "on_page_content", "on_page_context"):
        original = getattr(PmkbPlugin, name)

        def wrapper(self, *a, __o=original, __n=name, **k):
            t = time.perf_counter()
            try:
                return __o(self, *a, **k)
            finally:
                spent[__n] += time.perf_counter() - t

        wrapper.mkdocs_priority = getattr(original, "mkdocs_priority", None)
        if wrapper.mkdocs_priority is None:
            del wrapper.mkdocs_priority
        setattr(PmkbPlugin, name, wrapper)
    logging.disable(logging.WARNING)
    cfg = load_config(config_file, site_dir=site_dir)
    cfg.plugins.on_startup(command="build", dirty=False)
    t = time.perf_counter()
    build(cfg)
    return time.perf_counter() - t, dict(spent)


if __name__ == "__main__":
    total, spent = timed_build(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/tmp/pmkb-plugin-time")
    print(f"build {total:.2f} s; plugin events {sum(spent.values()):.2f} s")
    for k, v in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<18} {v:.3f} s")
