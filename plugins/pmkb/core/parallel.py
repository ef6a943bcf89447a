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
    """make(key) for every key, shared between this process and a forked child, for a caller
    that wants the values one by one, in key order, while it is busy with other work (MkDocs
    renders pages on one core; the child renders pages on the other).

    The child works from the last key back; `take(key)` either hands over the child's value
    (waiting while the child is still making it) or, when the child has not reached the key,
    claims it and answers None: the caller makes that one itself. The two meet where their
    work balances, whatever either costs, and nothing is made twice. None also comes back for
    a key the child failed on, or when the child died or cannot be forked: same values, one
    core. Every take() reads what the child has sent meanwhile, so its pipe never fills.
    With `share=False` the caller never claims a key: the child makes them all (tests use it
    to know who made what)."""

    _SKIPPED = "pmkb-prefetch-skipped"  # what the child sends for a key whose make() raised
    FREE, PARENT, CHILD = 0, 1, 2

    def __init__(self, keys: Sequence, make: Callable[[object], object],
                 child_setup: Callable[[], None] | None = None, share: bool = True) -> None:
        self._done: dict = {}
        self._share = share  # False: the child makes every key, take() waits for it
        self.handed = 0  # values take() returned
        self._index = {key: i for i, key in enumerate(keys)}
        self._children: list = []
        self._conns: list = []
        self._claims = None
        if not keys or "fork" not in multiprocessing.get_all_start_methods():
            return
        ctx = multiprocessing.get_context("fork")
        claims = self._claims = ctx.RawArray("b", len(keys))  # who makes each key
        lock = self._lock = ctx.Lock()
        keys = list(keys)

        def child(conn) -> None:
            if child_setup is not None:
                child_setup()
            for i in range(len(keys) - 1, -1, -1):
                with lock:
                    if claims[i] != self.FREE:
                        continue
                    claims[i] = self.CHILD
                try:
                    data = pickle.dumps((keys[i], make(keys[i])), pickle.HIGHEST_PROTOCOL)
                except Exception:  # the parent makes this one itself, and reports what it raises
                    data = pickle.dumps((keys[i], self._SKIPPED), pickle.HIGHEST_PROTOCOL)
                conn.send_bytes(data)
            conn.close()

        self._children, self._conns = _start(ctx, child, 1)

    def _keep(self, message) -> None:
        key, value = message
        self._done[key] = value

    def take(self, key):
        i = self._index.get(key)
        if i is None or self._claims is None:
            return None
        if self._conns:
            _receive(self._conns, self._keep, block=False)
        if key not in self._done:
            with self._lock:
                if self._share and self._claims[i] == self.FREE:
                    self._claims[i] = self.PARENT
                    return None  # the caller makes it
                if self._claims[i] == self.PARENT:  # asked for twice
                    return None
            while key not in self._done and self._conns:
                _receive(self._conns, self._keep, block=True)
        value = self._done.pop(key, None)
        if value is None or (isinstance(value, str) and value == self._SKIPPED):
            return None
        self._claims[i] = self.PARENT  # handed over once
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
