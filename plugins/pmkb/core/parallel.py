"""Work spread over every core, this process included.

A pool of n workers leaves the parent waiting while n children parse, and every result
then crosses a pipe (pickled by a child, unpickled by the parent: a tenth of what a file
costs). Here the parent takes chunks too, from the same counter the children take them
from: with two cores, half the results never cross a process boundary, and the parent
takes fewer chunks while it is busy unpickling the children's. Forked children inherit
their input, so nothing is sent to them.

The parent reads the children's pipes itself, between its own pieces of work, never from
a thread: a reader thread must win the GIL back from the busy main thread after every
read (up to 5 ms each), and a child whose pipe is full waits meanwhile. Measured with
preloaded files at 1,000 postmortems, the child then did 5 of 67 chunks. Pipes are
widened to 1 MB where Linux allows, so a child rarely waits for the parent to read.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait

PIPE_BYTES = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def _pipe(ctx):
    recv, send = ctx.Pipe(duplex=False)
    try:
        import fcntl

        fcntl.fcntl(send.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or a lower limit: 64 KB it is
        pass
    return recv, send


def _start(ctx, target, n: int) -> tuple[list, list]:
    """n forked children running target(conn); the parent keeps the reading ends."""
    children, conns = [], []
    for _ in range(n):
        recv, send = _pipe(ctx)
        proc = ctx.Process(target=target, args=(send,), daemon=True)
        proc.start()
        send.close()  # the child's copy is the only writer: EOF when it exits
        children.append(proc)
        conns.append(recv)
    return children, conns


def _receive(conns: list, into: Callable[[object], None], block: bool) -> None:
    """Read every message waiting (or, with `block`, at least one event); a pipe at EOF is
    closed and dropped from `conns` (its child finished, or died: see the callers)."""
    for conn in wait(list(conns), timeout=None if block else 0):
        try:
            into(pickle.loads(conn.recv_bytes()))
        except (EOFError, OSError, pickle.UnpicklingError):
            conns.remove(conn)
            conn.close()


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

    def keep(message) -> None:
        i, part = message
        done[i] = part

    children, conns = _start(ctx, child, n - 1)
    while (i := take()) is not None:
        done[i] = work(chunks[i])
        if conns:
            _receive(conns, keep, block=False)
    while conns:
        _receive(conns, keep, block=True)
    for proc in children:
        proc.join()
    # a chunk a dead child had taken is done here
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
        self._children: list = []
        self._conns: list = []
        if not keys or "fork" not in multiprocessing.get_all_start_methods():
            return

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

        self._children, self._conns = _start(multiprocessing.get_context("fork"), child, 1)

    def take(self, key):
        if key not in self._keys:
            return None
        while key not in self._done and self._conns:
            _receive(self._conns, self._done.update, block=True)
        value = self._done.pop(key, None)
        if value is None or value == self._SKIPPED:
            return None
        self.handed += 1
        return value

    def close(self) -> None:
        """Stop the child (if the build ended before it did) and forget what is left."""
        for proc in self._children:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for conn in self._conns:
            conn.close()
        self._children, self._conns = [], []
        self._done.clear()
