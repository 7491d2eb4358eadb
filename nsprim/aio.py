"""asyncio: programs in new namespaces, awaited through the event loop.

Layer 3, beside the process API it is built on (:func:`nsprim.spawn`); imports
the standard library and public nsprim names only.

* :func:`aspawn` starts a program like :func:`nsprim.spawn` and returns a
  :class:`Process` whose ``stdin``/``stdout``/``stderr`` are asyncio streams,
  as ``asyncio.create_subprocess_exec`` gives.
* :func:`arun` is its ``subprocess.run``: await the result, with *input*,
  *capture_output*, *timeout* and *check*.
* :func:`acall` is the awaitable :func:`nsprim.call`: a Python callable in a
  fresh child in new namespaces, its result or exception returned.

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
import pickle
import select
import signal
import subprocess
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, Callable, NoReturn, Optional, TypeVar, Union

from . import syscalls
from .errors import CallError
from .process import DEVNULL, PIPE, STDOUT, NsProcess, call, spawn

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
    rout: Union[bytes, str, None] = out
    rerr: Union[bytes, str, None] = err
    if text_mode:
        rout, rerr = _decode(out, enc, errs), _decode(err, enc, errs)
    if check and code:
        raise subprocess.CalledProcessError(code, proc.args, output=rout, stderr=rerr)
    return subprocess.CompletedProcess(proc.args, code, rout, rerr)


def _decode(data: Optional[bytes], encoding: str, errors: str) -> Optional[str]:
    if data is None:
        return None
    return data.decode(encoding, errors).replace("\r\n", "\n").replace("\r", "\n")


# --- acall ------------------------------------------------------------------------------

#: Seconds a cancelled acall's helper gets to kill and reap its child before SIGKILL.
CANCEL_GRACE = 5.0


class _Cancelled(BaseException):
    """Raised in an acall helper by SIGTERM: unwinds nsprim.call, which kills and reaps."""


def _helper(fn: Callable[..., Any], args: Any, kwargs: Any, wfd: int, mask: Any) -> NoReturn:
    """The forked helper: run call(), send the pickled outcome, exit. Never returns."""
    code = 0
    try:
        # The parent's event loop may watch signals through a wakeup fd this
        # process shares: never write into it.
        signal.set_wakeup_fd(-1)

        def cancel(signum: int, frame: Any) -> None:
            raise _Cancelled

        signal.signal(signal.SIGTERM, cancel)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        try:
            outcome: tuple[Any, ...] = ("return", call(fn, *args, **kwargs))
        except _Cancelled:
            # call() kills and reaps its child when interrupted, except in the
            # instant between clone and its bookkeeping: make sure.
            _kill_children()
            os._exit(3)
        except Exception as exc:
            outcome = ("raise", exc)
        try:
            data = pickle.dumps(outcome)
        except Exception as err:
            data = pickle.dumps(
                (
                    "raise",
                    CallError(f"the outcome could not be pickled: {type(err).__name__}: {err}"),
                )
            )
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view) :]
    except BaseException:
        code = 2
        with contextlib.suppress(BaseException):
            os.write(2, traceback.format_exc().encode())
    finally:
        os._exit(code)


def _kill_children() -> None:
    """SIGKILL and reap every child of this process (an acall helper has only call()'s)."""
    me = str(os.getpid())
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2 :].split()[1].decode() == me:
            # Unreaped children of ours: their pids can't be recycled yet.
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


async def acall(fn: Callable[..., T], *args: Any, **options: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a fresh child in new namespaces and await its result.

    The awaitable :func:`nsprim.call`, with the same arguments (namespace
    options, *timeout*, and keywords for *fn*); its result or exception comes
    back as from :func:`nsprim.call`. The blocking call runs in a helper
    process forked from this one, from an executor thread (one fork more
    than :func:`nsprim.call`; *fn* and its arguments cross by fork, not
    pickle); its outcome and exit
    are awaited through the loop (the outcome pipe and the helper's pidfd,
    Linux 5.3). Cancelling the task makes the helper kill and reap the child
    (SIGKILL after :data:`CANCEL_GRACE` seconds), then the helper is reaped.

    Raises:
        Whatever :func:`nsprim.call` raises (TypeError for a non-callable,
        TimeoutExpired, CallError, fn's own exception ...).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
    loop = asyncio.get_running_loop()
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    # Forked from an executor thread: the loop never blocks on the fork, and
    # forks proceed in parallel. The helper's only thread is that one.
    forking = loop.run_in_executor(None, _fork_helper, fn, args, options, rfd, wfd)
    try:
        pid = await asyncio.shield(forking)
    except asyncio.CancelledError:
        forking.add_done_callback(functools.partial(_abandon_helper, rfd))
        raise
    except BaseException:
        os.close(rfd)
        raise
    pidfd = -1
    chunks: list[bytes] = []
    exited: asyncio.Future[None] = loop.create_future()

    def drain() -> None:
        # Read what is there; the helper may write more than a pipe holds.
        while True:
            try:
                data = os.read(rfd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                loop.remove_reader(rfd)
                return
            chunks.append(data)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        drain()  # the helper is gone: everything it wrote is in the pipe
        if not exited.done():
            exited.set_result(None)

    try:
        pidfd = syscalls.pidfd_open(pid)
        os.set_blocking(rfd, False)
        loop.add_reader(rfd, drain)
        loop.add_reader(pidfd, on_exit)
        try:
            await exited
        finally:
            loop.remove_reader(rfd)
            loop.remove_reader(pidfd)
        # Done by the exit, not by EOF: a copy of the pipe's write end held
        # by a process fn left behind can't stall us.
        _, status = os.waitpid(pid, 0)
        pid = 0
    except BaseException:
        if pid:
            _stop_helper(pid, pidfd)
        raise
    finally:
        os.close(rfd)
        if pidfd >= 0:
            os.close(pidfd)
    if not chunks:
        code = os.waitstatus_to_exitcode(status)
        raise CallError(f"the acall helper exited (status {code}) before it reported")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "raise":
        raise value
    return value  # type: ignore[no-any-return]


def _fork_helper(
    fn: Callable[..., Any], args: Any, options: dict[str, Any], rfd: int, wfd: int
) -> int:
    """Fork the acall helper (in an executor thread); close the write end here.

    SIGTERM stays blocked across the fork until the helper has its own
    handler: one arriving earlier would run the parent's handler in the
    helper, which may write to the parent loop's signal wakeup fd.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = -1
    try:
        pid = os.fork()
    except BaseException:
        os.close(wfd)
        raise
    finally:
        if pid != 0:  # the helper unblocks it itself, once ready
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    if pid == 0:
        os.close(rfd)
        _helper(fn, args, options, wfd, old)
    os.close(wfd)
    return pid


def _abandon_helper(rfd: int, forking: asyncio.Future[int]) -> None:
    """The task was cancelled while its helper was being forked: stop and reap it."""
    os.close(rfd)
    if forking.cancelled() or forking.exception() is not None:
        return
    pid = forking.result()
    try:
        pidfd = syscalls.pidfd_open(pid)
    except OSError:
        pidfd = -1
    try:
        _stop_helper(pid, pidfd)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _stop_helper(pid: int, pidfd: int) -> None:
    """Cancel a helper: SIGTERM (it kills and reaps its child), SIGKILL if it hangs; reap it."""
    with contextlib.suppress(OSError):
        if pidfd >= 0:
            syscalls.pidfd_send_signal(pidfd, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    if pidfd >= 0:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(int(CANCEL_GRACE * 1000)):
            with contextlib.suppress(OSError):
                syscalls.pidfd_send_signal(pidfd, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
