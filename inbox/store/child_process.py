"""Calls into a child Python process of our own, from the event loop.

The parent (`ChildProcess`) starts `python -m <module> <answer_fd> <args...>`, sends
`(function, args)` pickled over the child's stdin and reads `(ok, result_or_error)` from
a private pipe. One call at a time (`turn`), answered in the order sent. Only module-level
functions travel (pickled by name); arguments and results must pickle.

What it is for: work that would hold this process's GIL (the SQLite writer, the email
parser) runs beside the event loop on another core, and a call that overstays its
deadline is ended by killing the child, which a thread cannot be.

A child that dies fails the call in flight with the owner's error type and the next call
starts a new child. The child exits when the parent goes away (EOF on its stdin), so a
killed service leaves no child behind. Frames: a 4-byte big-endian length, then a pickle.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")

_HEAD = struct.Struct(">I")
MAX_FRAME = 1 << 31  # a frame's length must fit the 4-byte header


class FrameTooLarge(ValueError):
    pass


def frame(obj: object) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) >= MAX_FRAME:
        raise FrameTooLarge(f"{len(data)} bytes is too large to send to a child process")
    return _HEAD.pack(len(data)) + data


class ChildProcess:
    """The parent side: one child, started on first use, restarted after it dies.

    `what` names the child in errors ("database writer"); `error` is the exception type
    its callers expect when the child fails them (a `StoreError` for the writer)."""

    def __init__(
        self, module: str, args: Sequence[str], *, what: str, error: Callable[[str], Exception]
    ) -> None:
        self.module = module
        self.args = list(args)
        self.what = what
        self.error = error
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.turn = asyncio.Lock()  # one call at a time
        self._closed = False
        self.starts = 0  # children started (more than one: it was restarted)
        self.last_exit: int | None = None  # the exit code of the last child that ended
        self.start_error: str | None = None  # why the last start failed, until one works

    async def start(self) -> None:
        """Start the child now (else the first call starts it); waits until it is ready."""
        async with self.turn:
            await self._ensure()

    async def _ensure(self) -> None:
        loop = asyncio.get_running_loop()
        if self._proc is not None and self._proc.returncode is None and self._loop is loop:
            return
        if self._closed:
            raise self.error(f"the {self.what} process is closed")
        await self._stop()
        # the child answers on a pipe of its own (its stdout stays free for stray prints)
        answer_r, answer_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                str(answer_w),
                *self.args,
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
        self.starts += 1
        try:
            ok, value = await self._answer()  # the child's first frame: ready (or why not)
        except Exception as exc:
            self.start_error = str(exc)
            raise
        if not ok:
            self.start_error = str(value)
            await self._stop()
            raise value
        self.start_error = None

    async def call(self, fn: Callable[..., T], *args: Any, time_limit: float | None = None) -> T:
        """`fn(*args)` as the child runs it (see the child's `serve`); its result, or the
        error it raised. Over `time_limit` seconds from when the child takes the call
        (waiting for the turn not counted) the child is killed and TimeoutError raised;
        the next call starts a new child."""
        try:
            data = frame((fn, args))
        except FrameTooLarge as exc:
            raise self.error(str(exc)) from None
        async with self.turn:
            await self._ensure()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            try:
                proc.stdin.write(data)
                await proc.stdin.drain()
            except (ConnectionError, RuntimeError) as exc:
                await self._stop()
                raise self.error(f"the {self.what} process is gone: {exc}") from exc
            try:
                if time_limit is None:
                    ok, value = await self._answer()
                else:
                    ok, value = await asyncio.wait_for(self._answer(), time_limit)
            except (asyncio.CancelledError, TimeoutError):
                # its answer would be read as the next call's: this child is done with
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
            raise self.error(
                f"the {self.what} process exited (code {code}) during a call; "
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
            code = await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            code = await proc.wait()
        self.last_exit = code
        return code

    async def close(self) -> None:
        async with self.turn:
            self._closed = True
            await self._stop()

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def health(self) -> tuple[bool, str]:
        """For /readyz: (ok, what the child is doing). A child that ended is restarted by
        the next call: ready again unless its last start failed."""
        proc = self._proc
        restarts = max(self.starts - 1, 0)
        if self._closed:
            return False, "closed"
        if self.start_error is not None:
            return False, f"cannot start: {self.start_error}"
        if proc is not None and proc.returncode is None:
            return True, f"alive (pid {proc.pid}, restarts {restarts})"
        if self.starts == 0:
            return True, "not started yet (starts on the first call)"
        return True, f"restarting (last exit code {self.last_exit}, restarts {restarts})"


# -- the child side ---------------------------------------------------------------------


def _read(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    if len(data) < n:
        return None
    return data


class Answers:
    """The child's end of the answer pipe. `translate` turns an error into what callers
    handle (our own errors unchanged); `error` makes the owner's error type from a text,
    for what cannot travel."""

    def __init__(
        self,
        fd: int,
        translate: Callable[[Exception], Exception],
        error: Callable[[str], Exception],
    ) -> None:
        self._stream = os.fdopen(fd, "wb")
        self._translate = translate
        self._error = error

    def send(self, ok: bool, value: object) -> None:
        try:
            data = frame((ok, value))
        except Exception as exc:  # (a write is committed: the caller must hear of it)
            data = frame((False, self._error(f"the answer cannot travel: {exc}")))
        self._stream.write(data)
        self._stream.flush()

    def fail(self, exc: Exception) -> None:
        err = self._translate(exc)
        try:
            pickle.loads(pickle.dumps(err))  # noqa: S301 (our own object)
        except Exception:
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            err = self._error(f"{type(exc).__name__}: {first}")
        self.send(False, err)


def serve(
    requests: BinaryIO, answers: Answers, run: Callable[[Callable[..., Any], tuple[Any, ...]], Any]
) -> None:
    """Answer `run(function, args)` for each request until EOF on `requests`."""
    while True:
        head = _read(requests, _HEAD.size)
        if head is None:
            return
        body = _read(requests, _HEAD.unpack(head)[0])
        if body is None:
            return
        try:
            fn, args = pickle.loads(body)  # noqa: S301 (our parent, private pipe)
            result = run(fn, args)
        except Exception as exc:
            answers.fail(exc)
            continue
        answers.send(True, result)
