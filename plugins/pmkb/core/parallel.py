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
