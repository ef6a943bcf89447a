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
    to know who made what); `share_then` is the same for the second round.

    `then` adds a second round over the keys (MkDocs renders every page before it writes any,
    and the child is idle once the first round meets): when the caller calls `then_go(data)`,
    the child calls `then(data)` for a function and makes second values with it, again from the
    last key back, while the caller asks `take_then(key)` from the first. A second value of
    None leaves that key to the caller. The child tells when its first round is over before
    it waits for `data`, and the caller sends it only then, so neither ever waits on a full
    pipe the other is not reading."""

    _SKIPPED = "pmkb-prefetch-skipped"  # what the child sends for a key whose make() raised
    _FIRST_DONE = "pmkb-prefetch-first-round-done"
    FREE, PARENT, CHILD = 0, 1, 2

    def __init__(self, keys: Sequence, make: Callable[[object], object],
                 child_setup: Callable[[], None] | None = None, share: bool = True,
                 then: Callable[[object], Callable[[object], object] | None] | None = None,
                 share_then: bool = True) -> None:
        self._done: tuple[dict, dict] = ({}, {})  # each round's values the child sent, by key
        self._share = (share, share_then)  # False: the child makes every key, take() waits for it
        self.handed = 0  # values take() returned
        self.handed_then = 0  # values take_then() returned
        self._index = {key: i for i, key in enumerate(keys)}
        self._children: list = []
        self._conns: list = []
        self._claims = None
        self._first_done = False
        self._going = False  # then_go() sent the child its data
        self._go = None  # the writing end of the pipe to the child, with `then`
        if not keys or "fork" not in multiprocessing.get_all_start_methods():
            return
        ctx = multiprocessing.get_context("fork")
        claims = self._claims = ctx.RawArray("b", len(keys))  # who makes each key
        claims_then = self._claims_then = ctx.RawArray("b", len(keys))  # the same, second round
        lock = self._lock = ctx.Lock()
        keys = list(keys)
        go_recv = None
        if then is not None:
            go_recv, self._go = ctx.Pipe(duplex=False)

        def claim(table, i: int) -> bool:
            with lock:
                if table[i] != self.FREE:
                    return False
                table[i] = self.CHILD
                return True

        def send(conn, round_: int, key, maker) -> None:
            try:
                data = pickle.dumps((round_, key, maker(key)), pickle.HIGHEST_PROTOCOL)
            except Exception:  # the parent makes this one itself, and reports what it raises
                data = pickle.dumps((round_, key, self._SKIPPED), pickle.HIGHEST_PROTOCOL)
            conn.send_bytes(data)

        def child(conn) -> None:
            if child_setup is not None:
                child_setup()
            for i in range(len(keys) - 1, -1, -1):
                if claim(claims, i):
                    send(conn, 0, keys[i], make)
            if go_recv is not None:
                conn.send_bytes(pickle.dumps(self._FIRST_DONE, pickle.HIGHEST_PROTOCOL))
                try:
                    data = pickle.loads(go_recv.recv_bytes())
                except (EOFError, OSError):
                    data = None
                try:
                    maker = then(data) if data is not None else None
                except Exception:  # the caller makes every second value itself
                    maker = None
                if maker is not None:
                    for i in range(len(keys) - 1, -1, -1):
                        if claim(claims_then, i):
                            send(conn, 1, keys[i], maker)
            conn.close()

        self._children, self._conns = _start(ctx, child, 1)
        if go_recv is not None:
            go_recv.close()

    def _keep(self, message) -> None:
        if isinstance(message, str) and message == self._FIRST_DONE:
            self._first_done = True
            return
        round_, key, value = message
        self._done[round_][key] = value

    def take(self, key):
        """The child's value for key, or None: the caller makes it."""
        return self._take(key, 0, self._claims)

    def take_then(self, key):
        """The child's second-round value for key, or None: the caller makes it (also before
        then_go)."""
        if not self._going:
            return None
        return self._take(key, 1, self._claims_then)

    def _take(self, key, round_: int, claims):
        i = self._index.get(key)
        if i is None or self._claims is None:
            return None
        done = self._done[round_]
        if self._conns:
            _receive(self._conns, self._keep, block=False)
        if key not in done:
            with self._lock:
                if self._share[round_] and claims[i] == self.FREE:
                    claims[i] = self.PARENT
                    return None  # the caller makes it
                if claims[i] == self.PARENT:  # asked for twice
                    return None
            while key not in done and self._conns:
                _receive(self._conns, self._keep, block=True)
        value = done.pop(key, None)
        if value is None or (isinstance(value, str) and value == self._SKIPPED):
            return None
        claims[i] = self.PARENT  # handed over once
        if round_:
            self.handed_then += 1
        else:
            self.handed += 1
        return value

    def then_go(self, data) -> bool:
        """Start the second round with `data` (sent to the child once its first round is over);
        False when there is none (no `then`, or the child is gone)."""
        if self._go is None or self._going:
            return self._going
        while not self._first_done and self._conns:
            _receive(self._conns, self._keep, block=True)
        if not self._conns:
            return False
        try:
            self._go.send_bytes(pickle.dumps(data, pickle.HIGHEST_PROTOCOL))
        except Exception:  # data that cannot be pickled, or a child gone meanwhile
            return False
        self._going = True
        return True

    def close(self) -> None:
        """Stop the child (if the build ended before it did) and forget what is left."""
        if self._go is not None:
            self._go.close()
            self._go = None
        for proc in self._children:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for conn in self._conns:
            conn.close()
        self._children, self._conns = [], []
        for done in self._done:
            done.clear()
