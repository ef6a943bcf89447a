"""Building a knowledge base allocates many objects that all live to the end of the run, so
the cyclic garbage collector's passes only re-walk them (about 15% of a 5,000-postmortem
rebuild). Pause it for those stretches."""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def paused_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def freeze_heap() -> bool:
    """Leave everything allocated so far out of the collector's passes until `thaw_heap`: a
    site's build keeps its knowledge base, files and pages to the end, and each full pass
    re-walked them (0.5-1.4 s of a build at 5,000 postmortems). A forked process also stops
    copying the pages the collector would write to. False when something else froze first."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def thaw_heap() -> None:
    """What freeze_heap left out is collected again (garbage among it included)."""
    gc.unfreeze()
