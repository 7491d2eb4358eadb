"""asyncio: programs in new namespaces, awaited through the event loop.

Layer 3, beside the process API it is built on (:func:`nsprim.spawn`); imports
the standard library and public nsprim names only.

* :func:`aspawn` starts a program like :func:`nsprim.spawn` and returns a
  :class:`Process` whose ``stdin``/``stdout``/``stderr`` are asyncio streams,
  as ``asyncio.create_subprocess_exec`` gives.
* :func:`arun` is its ``subprocess.run``: await the result, with *input*,
  *capture_output*, *timeout* and *check*.
* :func:`acall` is the awaitable :func:`nsprim.call` (on
  :func:`nsprim.call_start`): a Python callable in a fresh child in new
  namespaces, its result or exception returned.

Starting a program (a fork, or posix_spawn(3)) takes milliseconds and runs
in the loop's default executor, so the loop never blocks on it. The exit is
watched on the process's pidfd with ``loop.add_reader`` (a pidfd becomes
readable when the process exits; Linux 5.3), so no thread waits for a child
and thousands can be awaited at once. Cancelling :func:`arun` (or
leaving a :class:`Process`'s ``async with`` block) kills the program with
SIGKILL and reaps it before the cancellation goes on.

Needs a selector event loop (the default on Linux): the proactor and
uvloop-style loops without ``add_reader`` on arbitrary fds are not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import locale
import os
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, Callable, Optional, TypeVar, Union

from .errors import TimeoutExpired
from .process import DEVNULL, PIPE, STDOUT, NsProcess, PendingCall, _completed, call_start, spawn

T = TypeVar("T")

__all__ = ["Process", "aspawn", "arun", "acall", "PIPE", "DEVNULL", "STDOUT"]

_LIMIT = 2**16  # asyncio.streams' default buffer limit


class Process:
    """A program started by :func:`aspawn`: an :class:`nsprim.NsProcess` with asyncio streams.

    The interface follows ``asyncio.subprocess.Process``: ``pid``,
    ``returncode``, ``stdin`` (a ``StreamWriter``), ``stdout``/``stderr``
    (``StreamReader``), :meth:`wait`, :meth:`communicate`,
    :meth:`send_signal`, :meth:`terminate`, :meth:`kill`; plus ``pidfd`` and
    ``process`` (the underlying :class:`~nsprim.NsProcess`).
    """

    def __init__(self, proc: NsProcess, loop: asyncio.AbstractEventLoop) -> None:
        self.process = proc
        self.pid = proc.pid
        self.args = proc.args
        self.stdin: Optional[asyncio.StreamWriter] = None
        self.stdout: Optional[asyncio.StreamReader] = None
        self.stderr: Optional[asyncio.StreamReader] = None
        self._loop = loop
        self._transports: list[asyncio.BaseTransport] = []
        self._exited: asyncio.Future[int] = loop.create_future()
        self._watched = -1
        fd = proc.pidfd
        if fd >= 0:
            loop.add_reader(fd, self._on_pidfd)
            self._watched = fd
        else:  # already reaped
            self._exited.set_result(proc.returncode or 0)

    def __repr__(self) -> str:
        return f"<nsprim.aio.Process pid={self.pid} returncode={self.returncode}>"

    @property
    def returncode(self) -> Optional[int]:
        """The exit code once reaped (negative signal number when killed), else None."""
        return self.process.returncode

    @property
    def pidfd(self) -> int:
        """The pidfd; -1 once the process has been reaped."""
        return self.process.pidfd

    def _unwatch(self) -> None:
        if self._watched >= 0:
            self._loop.remove_reader(self._watched)
            self._watched = -1

    def _on_pidfd(self) -> None:
        # Readable pidfd: the process has exited; reaping it now doesn't block.
        self._unwatch()
        self._settle(self.process.wait())

    def _settle(self, code: int) -> None:
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        """Wait until the process exits; return its exit code.

        Cancelling the wait does not touch the process (as asyncio's
        ``Process.wait``); use ``async with`` or :func:`arun` for that.
        """
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        """Send *sig* through the pidfd; nothing once the process is reaped."""
        self.process.send_signal(sig)

    def terminate(self) -> None:
        """Send SIGTERM."""
        self.process.terminate()

    def kill(self) -> None:
        """Send SIGKILL."""
        self.process.kill()

    async def communicate(
        self, input: Optional[bytes] = None
    ) -> tuple[Optional[bytes], Optional[bytes]]:
        """Send *input*, read stdout and stderr to EOF, wait; return ``(stdout, stderr)``.

        Only streams that are pipes give data (None otherwise), as in asyncio.
        """

        async def feed() -> None:
            assert self.stdin is not None
            if input:
                self.stdin.write(input)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await self.stdin.drain()
            self.stdin.close()

        async def read(stream: Optional[asyncio.StreamReader]) -> Optional[bytes]:
            return None if stream is None else await stream.read()

        jobs: list[Any] = [read(self.stdout), read(self.stderr)]
        if self.stdin is not None:
            jobs.append(feed())
        out, err, *_ = await asyncio.gather(*jobs)
        await self.wait()
        return out, err

    def close(self) -> None:
        """Close the streams; kill and reap the process if it is still running.

        The reap after SIGKILL is a blocking waitpid(2), immediate once the
        kernel has torn the process down.
        """
        for t in self._transports:
            t.close()
        self._transports.clear()
        self._unwatch()
        if self.process.returncode is None:
            self.process.kill()
        self._settle(self.process.wait())
        self.process.close()

    async def __aenter__(self) -> Process:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


_StdSpec = Union[None, int, IO[Any]]


def _start(
    args: Any, spec: list[_StdSpec], spawn_options: dict[str, Any]
) -> tuple[NsProcess, list[int]]:
    """Make the pipes and start the program (in an executor thread); return it and our ends."""
    mine: list[int] = []  # our ends of the pipes
    theirs: list[int] = []  # the child's ends, closed here once it started
    try:
        for i in range(3):
            if spec[i] is PIPE or (isinstance(spec[i], int) and spec[i] == PIPE):
                r, w = os.pipe2(os.O_CLOEXEC)
                child, parent = (r, w) if i == 0 else (w, r)
                theirs.append(child)
                mine.append(parent)
                spec[i] = child
            else:
                mine.append(-1)
        proc = spawn(args, stdin=spec[0], stdout=spec[1], stderr=spec[2], **spawn_options)
    except BaseException:
        for fd in mine:
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in theirs:
            with contextlib.suppress(OSError):
                os.close(fd)
    return proc, mine


def _discard(starting: asyncio.Future[tuple[NsProcess, list[int]]]) -> None:
    """A start finished for a task that was cancelled meanwhile: kill and reap, close."""
    if starting.cancelled() or starting.exception() is not None:
        return
    proc, mine = starting.result()
    for fd in mine:
        if fd >= 0:
            os.close(fd)
    proc.close()


async def aspawn(
    args: Union[str, os.PathLike[str], Sequence[Union[str, bytes, os.PathLike[str]]]],
    *,
    stdin: _StdSpec = None,
    stdout: _StdSpec = None,
    stderr: _StdSpec = None,
    limit: int = _LIMIT,
    **spawn_options: Any,
) -> Process:
    """Start a program in new namespaces; return a :class:`Process` with asyncio streams.

    Takes :func:`nsprim.spawn`'s arguments; ``PIPE`` gives asyncio streams
    (``StreamWriter`` for stdin, ``StreamReader`` with buffer *limit* for
    stdout and stderr). The start (fork or posix_spawn(3), some
    milliseconds) runs in the loop's default executor, so the loop never
    blocks on it and starts proceed in parallel; the exit is then watched on
    the pidfd (Linux 5.3) by the loop itself, with no thread per child. A
    task cancelled while its program is starting kills and reaps it.

    Raises:
        Whatever :func:`nsprim.spawn` raises (ValueError, AccessDenied, ...).
    """
    loop = asyncio.get_running_loop()
    start = functools.partial(_start, args, [stdin, stdout, stderr], spawn_options)
    starting = loop.run_in_executor(None, start)
    try:
        proc, mine = await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(_discard)
        raise
    p = Process(proc, loop)
    try:
        for i, fd in enumerate(mine):
            if fd < 0:
                continue
            pipe = open(fd, "wb" if i == 0 else "rb", buffering=0)  # noqa: SIM115
            mine[i] = -1  # owned by the file (then the transport) from here on
            if i == 0:
                wt, wp = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
                p._transports.append(wt)
                p.stdin = asyncio.StreamWriter(wt, wp, None, loop)
            else:
                reader = asyncio.StreamReader(limit=limit, loop=loop)
                rt, _ = await loop.connect_read_pipe(
                    functools.partial(asyncio.StreamReaderProtocol, reader, loop=loop), pipe
                )
                p._transports.append(rt)
                if i == 1:
                    p.stdout = reader
                else:
                    p.stderr = reader
    except BaseException:
        for fd in mine:
            if fd >= 0:
                os.close(fd)
        p.close()
        raise
    return p


async def arun(
    args: Union[str, os.PathLike[str], Sequence[Union[str, bytes, os.PathLike[str]]]],
    *,
    input: Optional[Union[bytes, str]] = None,
    capture_output: bool = False,
    timeout: Optional[float] = None,
    check: bool = False,
    text: Optional[bool] = None,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    **spawn_options: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run a program in new namespaces and await its ``CompletedProcess``.

    The asyncio twin of :func:`nsprim.run` (itself ``subprocess.run``):
    *input* feeds stdin, *capture_output* pipes stdout and stderr, *timeout*
    kills the program and raises ``subprocess.TimeoutExpired``, *check*
    raises ``subprocess.CalledProcessError``; *text*, *encoding* and
    *errors* decode as ``subprocess.run`` does. Other keywords go to
    :func:`nsprim.spawn`. Cancelling the task kills and reaps the program.

    Raises:
        subprocess.TimeoutExpired, subprocess.CalledProcessError: as ``subprocess.run``.
        ValueError: *timeout* is negative, or conflicting stdin/input or
            stdout/stderr/capture_output.
        Whatever :func:`nsprim.spawn` raises.
    """
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise ValueError(f"timeout must be None or seconds >= 0, got {timeout!r}")
    text_mode = bool(text or encoding or errors)
    enc = encoding or locale.getpreferredencoding(False)
    errs = errors or "strict"
    if isinstance(input, str):
        if not text_mode:
            raise TypeError("input must be bytes unless text, encoding or errors is given")
        input = input.encode(enc, errs)
    if input is not None:
        if spawn_options.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        spawn_options["stdin"] = PIPE
    if capture_output:
        if spawn_options.get("stdout") is not None or spawn_options.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        spawn_options["stdout"] = PIPE
        spawn_options["stderr"] = PIPE
    proc = await aspawn(args, **spawn_options)
    try:
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout)
        except asyncio.TimeoutError:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0.0) from None
    finally:
        proc.close()  # kills and reaps it on a timeout, an error or cancellation
    code = proc.returncode
    assert code is not None
    return _completed(proc.args, code, out, err, (enc, errs) if text_mode else None, check)


# --- acall ------------------------------------------------------------------------------


async def acall(
    fn: Callable[..., T], *args: Any, timeout: Optional[float] = None, **options: Any
) -> T:
    """Run ``fn(*args, **kwargs)`` in a fresh child in new namespaces and await its result.

    The awaitable :func:`nsprim.call`, with the same arguments (namespace
    options, *timeout*, and keywords for *fn*); its result or exception comes
    back as from :func:`nsprim.call`. The child is started by
    :func:`nsprim.call_start` in the loop's default executor (a fork: some
    milliseconds); then the loop itself watches its outcome channel and its
    pidfd (Linux 5.3), with no thread per call. A *timeout* or a cancelled
    task kills and reaps the child.

    Raises:
        Whatever :func:`nsprim.call` raises (TypeError for a non-callable,
        TimeoutExpired, CallError, fn's own exception ...).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise ValueError(f"timeout must be None or seconds >= 0, got {timeout!r}")
    loop = asyncio.get_running_loop()
    starting = loop.run_in_executor(None, functools.partial(call_start, fn, *args, **options))
    try:
        pending = await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(_close_started)
        raise
    with pending:  # leaving early (timeout, cancellation) kills and reaps the child
        done: asyncio.Future[None] = loop.create_future()
        fds = [fd for fd in (pending.fileno(), pending.pidfd) if fd >= 0]

        def check() -> None:
            if pending.poll() and not done.done():
                done.set_result(None)

        for fd in fds:
            loop.add_reader(fd, check)
        try:
            check()
            await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            raise TimeoutExpired(
                timeout or 0.0, pending.pid, msg=f"call timed out after {timeout} seconds"
            ) from None
        finally:
            for fd in fds:
                loop.remove_reader(fd)
        return pending.result()  # type: ignore[no-any-return]


def _close_started(starting: asyncio.Future[PendingCall]) -> None:
    """A call started for a task that was cancelled meanwhile: kill and reap its child."""
    if not starting.cancelled() and starting.exception() is None:
        starting.result().close()
