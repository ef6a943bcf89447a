"""Chunks of per-file work spread over every core, this process included.

A pool of n workers leaves the parent waiting while n children parse, and every result
then crosses a pipe (pickled by a child, unpickled by the parent: a tenth of what a file
costs). Here the parent takes chunks too, from the same counter the children take them
from: with two cores, half the results never cross a process boundary, and the parent
takes fewer chunks while it is busy unpickling the children's. Forked children inherit
the chunks, so nothing is sent to them either.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable, Sequence


def map_chunks(work: Callable[[object], list], chunks: Sequence, n: int) -> list[list]:
    """[work(c) for c in chunks], computed by this process and n - 1 others. `work` and the
    chunks must be picklable where processes cannot be forked (they are then sent)."""
    if n <= 1 or len(chunks) <= 1:
        return [work(c) for c in chunks]
    if "fork" not in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("spawn").Pool(n) as pool:
            return pool.map(work, chunks, chunksize=1)
    ctx = multiprocessing.get_context("fork")
    taken = ctx.Value("l", 0)  # the next chunk anyone may take

    def take() -> int | None:
        with taken.get_lock():
            i = taken.value
            if i >= len(chunks):
                return None
            taken.value = i + 1
            return i

    def child(conn) -> None:
        while (i := take()) is not None:
            conn.send_bytes(pickle.dumps((i, work(chunks[i])), pickle.HIGHEST_PROTOCOL))
        conn.close()

    done: dict[int, list] = {}

    def receive(conn) -> None:
        try:
            while True:
                i, part = pickle.loads(conn.recv_bytes())
                done[i] = part
        except (EOFError, OSError):  # the child finished (or died: its chunks are redone below)
            pass
        finally:
            conn.close()

    children, pipes = [], []
    for _ in range(n - 1):  # every fork before any thread starts
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=child, args=(send,), daemon=True)
        proc.start()
        send.close()  # the child's copy is the only writer: EOF when it exits
        children.append(proc)
        pipes.append(recv)
    readers = [threading.Thread(target=receive, args=(recv,), daemon=True) for recv in pipes]
    for reader in readers:
        reader.start()
    mine: dict[int, list] = {}
    while (i := take()) is not None:
        mine[i] = work(chunks[i])
    for reader in readers:
        reader.join()
    for proc in children:
        proc.join()
    done.update(mine)
    return [done[i] if i in done else work(c) for i, c in enumerate(chunks)]


class Prefetch:
    """make(key) for each key, in order, computed by a forked child while this process goes
    on with other work (MkDocs renders pages on one core; the child renders what those pages
    will ask for on the other). `take(key)` hands a value over, waiting only while the child
    has yet to reach that key; None when there is none (the child failed on it, died, or
    cannot be forked), and the caller then makes it itself: same value, one core."""

    _SKIPPED = "pmkb-prefetch-skipped"  # what the child sends for a key whose make() raised

    def __init__(self, keys: Sequence, make: Callable[[object], object],
                 child_setup: Callable[[], None] | None = None, batch: int = 8) -> None:
        self._done: dict = {}
        self.handed = 0  # values take() returned
        self._keys = frozenset(keys)
        self._finished = False
        self._cond = threading.Condition()
        self._proc = None
        self._reader = None
        if not keys or "fork" not in multiprocessing.get_all_start_methods():
            self._finished = True
            return
        ctx = multiprocessing.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)

        def child(conn) -> None:
            if child_setup is not None:
                child_setup()
            out = []
            for key in keys:
                try:
                    out.append((key, make(key)))
                except Exception:  # the parent makes this one itself, and reports what it raises
                    out.append((key, self._SKIPPED))
                if len(out) >= batch:
                    conn.send_bytes(pickle.dumps(out, pickle.HIGHEST_PROTOCOL))
                    out = []
            if out:
                conn.send_bytes(pickle.dumps(out, pickle.HIGHEST_PROTOCOL))
            conn.close()

        self._proc = ctx.Process(target=child, args=(send,), daemon=True)
        self._proc.start()
        send.close()
        self._reader = threading.Thread(target=self._receive, args=(recv,), daemon=True)
        self._reader.start()

    def _receive(self, conn) -> None:
        try:
            while True:
                pairs = pickle.loads(conn.recv_bytes())
                with self._cond:
                    self._done.update(pairs)
                    self._cond.notify_all()
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        finally:
            conn.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def take(self, key):
        if key not in self._keys:
            return None
        with self._cond:
            while key not in self._done and not self._finished:
                self._cond.wait()
            value = self._done.pop(key, None)
        if value is None or value == self._SKIPPED:
            return None
        self.handed += 1
        return value

    def close(self) -> None:
        """Stop the child (if the build ended before it did) and forget what is left."""
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join()
            self._proc = None
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        self._done.clear()
