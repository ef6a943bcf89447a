"""Time spent inside the pmkb plugin's MkDocs events (wall clock, no profiler).

    python benchmarks/plugin_time.py path/to/mkdocs.yml [SITE_DIR]           # one build
    python benchmarks/plugin_time.py path/to/mkdocs.yml [SITE_DIR] --serve   # a serve rebuild

With --serve it does what `mkdocs serve` does: one build, then (after editing one
postmortem) a second build with the same plugin instance, and reports the second:
the plugin's share of a rebuild, every event counted, next to the whole rebuild. The
plugin's own code in MkDocs' render of a page counts as "page render": the header kept out of
Markdown (pmkb.header_render) and, under serve, renders kept from the last build
(pmkb.render_memo). MkDocs' own render of the page's Markdown within it does not count.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

def instrument() -> dict[str, float]:
    """Wrap every event the plugin defines; the returned dict fills as builds run."""
    from mkdocs.plugins import EVENTS, CombinedEvent

    from pmkb.mkdocs_plugin import PmkbPlugin

    # every MkDocs event but on_startup and on_shutdown (once a session, not in a rebuild)
    events = [f"on_{name}" for name in EVENTS if name not in ("startup", "shutdown")]

    spent: dict[str, float] = defaultdict(float)

    def timed(original, name: str):
        def wrapper(self, *a, **k):
            t = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        if hasattr(original, "mkdocs_priority"):
            wrapper.mkdocs_priority = original.mkdocs_priority
        return wrapper

    # pmkb's own code inside MkDocs' render of a page (pmkb.mkdocs_plugin._RenderedHere: the render
    # memo and header render), MkDocs' Page.render within it left out
    from mkdocs.structure.pages import Page

    inner = [0.0, 0]  # seconds in Page.render called from those, depth

    def page_render(self, config, files, _render=Page.render):
        if not inner[1]:
            return _render(self, config, files)
        t = time.perf_counter()
        try:
            return _render(self, config, files)
        finally:
            inner[0] += time.perf_counter() - t

    def counted(render):
        def counted_render(*args):
            t, before = time.perf_counter(), inner[0]
            inner[1] += 1
            try:
                return render(*args)
            finally:
                inner[1] -= 1
                spent["page render"] += time.perf_counter() - t - (inner[0] - before)
        return counted_render

    from pmkb.mkdocs_plugin import _RenderedHere

    Page.render = page_render
    _RenderedHere.render = counted(_RenderedHere.render)  # what MkDocs calls: page.render(config, files)
    _RenderedHere.render_once = classmethod(counted(_RenderedHere.render_once.__func__))
    for name in events:
        original = PmkbPlugin.__dict__.get(name)
        if isinstance(original, CombinedEvent):  # several handlers of one event, each its own priority
            setattr(PmkbPlugin, name, CombinedEvent(*(timed(f, name) for f in original.methods)))
        elif original is not None:
            setattr(PmkbPlugin, name, timed(original, name))
    return spent


def timed_build(config_file: str, site_dir: str, serve: bool = False) -> tuple[float, dict[str, float]]:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    spent = instrument()
    logging.disable(logging.CRITICAL)
    cfg = load_config(config_file, site_dir=site_dir)
    cfg.plugins.on_startup(command="serve" if serve else "build", dirty=False)
    if serve:
        build(cfg)
        docs = Path(cfg.docs_dir)
        pages = sorted(docs.rglob("*.md"))
        victim = pages[len(pages) // 2]
        victim.write_text(victim.read_text().replace("title: ", "title: Edited ", 1))
        cfg = load_config(config_file, site_dir=site_dir)  # as serve does: plugins with on_startup are kept
        spent.clear()
    t = time.perf_counter()
    build(cfg)
    return time.perf_counter() - t, dict(spent)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--serve"]
    total, spent = timed_build(args[0], args[1] if len(args) > 1 else "/tmp/pmkb-plugin-time", "--serve" in sys.argv)
    print(f"build {total:.2f} s; plugin events {sum(spent.values()):.3f} s")
    for k, v in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<20} {v:.4f} s")
