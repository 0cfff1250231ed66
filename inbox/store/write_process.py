"""SQLite write transactions in a child process.

Python's sqlite3 releases the GIL on every step, and a writer *thread* beside a busy event
loop waits for the GIL back after each one: the loop and the writer take turns on one
core. A child process has a GIL of its own. The parent (`WriteProcess`, on the event
loop) sends `(function, args)` pickled over the child's stdin; the child runs
`function(conn, *args)` in one `BEGIN IMMEDIATE` transaction on its own connection, commits
(fsync, `synchronous=FULL`) and answers `(ok, result_or_error)` on a private pipe. One
transaction at a time, in the order sent.

Only module-level functions travel (pickled by name); their arguments and results must
pickle. A child that dies fails the transaction in flight with `StoreError` (it may or may
not have committed: callers do not acknowledge, senders retry, dedupe keeps one copy) and
the next call starts a new child. The child exits when the parent goes away (EOF on
stdin), so a killed service leaves no writer behind (inbox/child_process.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from inbox.errors import StoreError
from inbox.store.child_process import Answers, ChildProcess, serve


class WriteProcess(ChildProcess):
    """The parent side: `call(fn, *args)` runs `fn(conn, *args)` in one committed
    transaction in the child. `turn` is shared with the store's writer thread: one write
    transaction at a time, in this child or in the thread."""

    def __init__(self, url: str) -> None:
        super().__init__(__name__, [url], what="database writer", error=StoreError)


# -- the child --------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    from inbox.store.backends import WriterConnection, sqlite_engine, translate_error

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s writer %(message)s")
    # A background worker: it should not take the CPU from the event loop that just woke
    # it. Under the default policy it often did (wakeup preemption: the loop's pipe write
    # of a batch stalled while the child ran in its place; bench/README.md has the
    # figures); SCHED_BATCH (Linux; no privileges needed) turns that off.
    if hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    answers = Answers(int(argv[1]), translate_error, StoreError)
    engine = sqlite_engine(argv[2], 1, "BEGIN IMMEDIATE")  # (no I/O: the parent made one alike)
    writer = WriterConnection(engine)
    try:
        writer.open()
    except Exception as exc:
        answers.fail(exc)
        return
    answers.send(True, os.getpid())
    serve(sys.stdin.buffer, answers, lambda fn, args: writer.run(lambda conn: fn(conn, *args)))
    writer.close()
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv)
