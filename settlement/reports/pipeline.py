"""Two cores for one report: reading the stored upload, checking it in Python and the
database's COPY overlap instead of taking turns.

`ahead` reads an iterator's next items in a thread while the caller works on the current
one; `send_behind` hands each piece to a thread that writes it while the caller prepares the
next. Both hold at most `depth` items (about a megabyte each), so memory stays flat, and
both end their thread before returning or raising: nothing runs on after the call.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from queue import Queue
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
DEPTH = 2
_END = object()


@contextmanager
def ahead(items: Iterator[T], depth: int = DEPTH) -> Iterator[Iterator[T]]:
    """`items` read in a thread of their own, `depth` ahead of the caller. Leaving the block
    stops the reading and closes `items` (its thread's resources with it)."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for item in items:
                queue.put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            queue.put(_END)

    def taken() -> Iterator[T]:
        while (item := queue.get()) is not _END:
            yield item
        if failure:
            raise failure[0]

    thread = threading.Thread(target=read, name="report-read-ahead", daemon=True)
    thread.start()
    try:
        yield taken()
    finally:
        stop.set()
        while thread.is_alive():  # free a reader blocked on a full queue
            while not queue.empty():
                queue.get_nowait()
            thread.join(timeout=0.05)


def send_behind(pieces: Iterable[bytes], write: Callable[[bytes], None],
                depth: int = DEPTH) -> None:
    """`write(piece)` for every piece, in a thread, while the next piece is prepared here.
    An exception on either side stops both and is raised here (the caller's first)."""
    queue: Queue = Queue(maxsize=depth)
    failure: list[BaseException] = []

    def send() -> None:
        try:
            while (piece := queue.get()) is not _END:
                write(piece)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)
            while queue.get() is not _END:  # keep taking, so that the caller never blocks
                pass

    thread = threading.Thread(target=send, name="report-send-behind", daemon=True)
    thread.start()
    try:
        for piece in pieces:
            if failure:
                break
            queue.put(piece)
    finally:
        queue.put(_END)
        thread.join()
    if failure:
        raise failure[0]
