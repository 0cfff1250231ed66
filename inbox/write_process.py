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
stdin), so a killed service leaves no writer behind.

Frames: 4-byte big-endian length, then a pickle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from inbox.errors import StoreError

T = TypeVar("T")

_HEAD = struct.Struct(">I")
MAX_FRAME = 1 << 31  # a frame's length must fit the 4-byte header


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) >= MAX_FRAME:
        raise StoreError(f"a write of {len(data)} bytes is too large for the writer process")
    return _HEAD.pack(len(data)) + data


class WriteProcess:
    """The parent side: one child, started on first use, restarted after it dies."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.turn = asyncio.Lock()  # one write transaction at a time (this child or a thread)
        self._closed = False

    async def start(self) -> None:
        """Start the child now (else the first call starts it); waits until it is ready."""
        async with self.turn:
            await self._ensure()

    async def _ensure(self) -> None:
        loop = asyncio.get_running_loop()
        if self._proc is not None and self._proc.returncode is None and self._loop is loop:
            return
        if self._closed:
            raise StoreError("the store is closed")
        await self._stop()
        # the child answers on a pipe of its own (its stdout stays free for stray prints)
        answer_r, answer_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                str(answer_w),
                self.url,
                stdin=asyncio.subprocess.PIPE,
                stdout=None,
                pass_fds=(answer_w,),
            )
        except BaseException:
            os.close(answer_r)
            raise
        finally:
            os.close(answer_w)
        reader = asyncio.StreamReader(limit=MAX_FRAME, loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(answer_r, "rb", 0)
        )
        self._proc, self._reader, self._loop = proc, reader, loop
        ok, value = await self._answer()  # the child's first frame: ready (or why not)
        if not ok:
            await self._stop()
            raise value

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in one committed transaction in the child; its result."""
        frame = _frame((fn, args))
        async with self.turn:
            await self._ensure()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            try:
                proc.stdin.write(frame)
                await proc.stdin.drain()
            except (ConnectionError, RuntimeError) as exc:
                await self._stop()
                raise StoreError(f"the database writer process is gone: {exc}") from exc
            try:
                ok, value = await self._answer()
            except asyncio.CancelledError:
                # its answer would be read as the next call's: this child is done with
                # (whether the transaction committed is unknown, as after a crash)
                self._discard()
                raise
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    async def _answer(self) -> tuple[bool, Any]:
        assert self._reader is not None
        try:
            head = await self._reader.readexactly(_HEAD.size)
            body = await self._reader.readexactly(_HEAD.unpack(head)[0])
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self._stop()
            raise StoreError(
                f"the database writer process exited (code {code}) during a write; "
                "it is restarted for the next one"
            ) from exc
        answer: tuple[bool, Any] = pickle.loads(body)  # noqa: S301 (our child, private pipe)
        return answer

    def _discard(self) -> None:
        """Kill the child now, without waiting (the next call starts another)."""
        proc, self._proc, self._reader = self._proc, None, None
        if proc is not None and proc.returncode is None:
            proc.kill()
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()

    async def _stop(self) -> int | None:
        proc, self._proc, self._reader = self._proc, None, None
        if proc is None:
            return None
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()  # EOF: the child finishes and exits
        try:
            return await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            return await proc.wait()

    async def close(self) -> None:
        async with self.turn:
            self._closed = True
            await self._stop()

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


# -- the child --------------------------------------------------------------------------


def _portable(exc: BaseException) -> BaseException:
    """The error as the parent should see it, and one that survives pickling."""
    from inbox.store import translate_error

    err = translate_error(exc) if isinstance(exc, Exception) else exc
    try:
        pickle.loads(pickle.dumps(err))  # noqa: S301 (our own object)
    except Exception:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        err = StoreError(f"{type(exc).__name__}: {first}")
    return err


def _read(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    if len(data) < n:
        return None
    return data


def serve(url: str, requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer write requests until EOF on `requests`."""
    from inbox.store import WriterConnection, sqlite_engine

    def send(obj: object) -> None:
        try:
            data = _frame(obj)
        except Exception as exc:  # (the transaction is committed: the caller must know)
            data = _frame((False, StoreError(f"the writer's answer cannot travel: {exc}")))
        answers.write(data)
        answers.flush()

    engine = sqlite_engine(url, 1, "BEGIN IMMEDIATE")  # (no I/O: the parent made one alike)
    writer = WriterConnection(engine)
    try:
        writer.open()
    except Exception as exc:
        send((False, _portable(exc)))
        return
    send((True, os.getpid()))
    while True:
        head = _read(requests, _HEAD.size)
        if head is None:
            break
        body = _read(requests, _HEAD.unpack(head)[0])
        if body is None:
            break
        try:
            fn, args = pickle.loads(body)  # noqa: S301 (our parent, private pipe)
            result = writer.run(lambda conn: fn(conn, *args))  # noqa: B023 (runs at once)
        except Exception as exc:
            send((False, _portable(exc)))
            continue
        send((True, result))
    writer.close()
    engine.dispose()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s writer %(message)s")
    # A background worker: it should not take the CPU from the event loop that just woke
    # it. Under the default policy it often did (wakeup preemption): in bench/email.py the
    # loop's pipe write of a batch stalled ~0.9 ms of wall time, the child running in its
    # place; SCHED_BATCH (Linux; no privileges needed) turns that off: ~0.2-0.4 ms.
    if hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    answers = os.fdopen(int(argv[1]), "wb")
    serve(argv[2], sys.stdin.buffer, answers)


if __name__ == "__main__":
    main(sys.argv)
