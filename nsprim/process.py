"""The process API: start programs and callables in new or existing namespaces.

Layer 3: imports the standard library and nsprim layers 0-2; what it builds
on is the child mechanism underneath (:mod:`nsprim._launch` forks and runs
the parent's half of the setup, :mod:`nsprim._child` the child's,
:mod:`nsprim._options` validates, :mod:`nsprim._targets` resolves targets).

* :func:`spawn` starts a program in new namespaces and returns an
  :class:`NsProcess`, a real pidfd-backed child (never a proxy);
  :func:`run` is its ``subprocess.run``.
* :func:`call` runs a Python callable in a fresh child in new namespaces,
  :func:`call_start` starts one and returns a :class:`PendingCall`;
  :func:`call_in` and :func:`spawn_in` do the same in the namespaces of a
  running process.
* :func:`enter` moves the calling **thread** into another process's
  thread-scoped namespaces (net, uts, ipc, cgroup) and back.

Anything the kernel allows only in a single-threaded process (creating a user
namespace by unshare, joining user/mnt/time namespaces, becoming PID 1)
happens in the fresh child, so all of this works from a process with running
threads. Every option is validated in the parent before anything is created;
kernel errors keep their errno, with EPERM as :class:`~nsprim.AccessDenied`
and ESRCH as :class:`~nsprim.NoSuchProcess` (one translator,
:func:`nsprim.errors.translate`, psutil's ``wrap_exceptions``).
"""

from __future__ import annotations

import _thread
import os
import select
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

from . import _child
from . import syscalls as _sc
from ._fd import OwnedFd, fd_of
from ._nstype import NsType
from ._stdlib import signal, suppress
from .errors import (
    CallError,
    NoSuchProcess,
    ThreadScopeError,
    TimeoutExpired,
    reraise,
    wrap_exceptions,
)
from .flags import CloneFlags

__all__ = [
    "NsProcess",
    "spawn",
    "run",
    "call",
    "call_in",
    "call_start",
    "PendingCall",
    "spawn_in",
    "enter",
    "PIPE",
    "DEVNULL",
    "STDOUT",
    "THREAD_SCOPED",
    "preload",
    "use_forker",
    "helper_pids",
]

from . import _launch
from ._child import Program
from ._frames import poll_ms, timeout_arg
from ._launch import Launch, launch
from ._ledger import LEDGER, kill_reap
from ._options import (
    C_INT_MAX,
    THREAD_SCOPED,
    NsOptions,
    argv_arg,
    envp_arg,
    executables,
    parse_types,
    pass_fds_arg,
    pdeathsig_arg,
)

# typing.TYPE_CHECKING without importing typing: `nsprim run` must start fast,
# and typing (with the re it imports) costs more than the rest of the child
# mechanism. So do pickle, subprocess and traceback: imported where used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    import subprocess
    from types import TracebackType
    from typing import IO, Any, Callable, NoReturn, Optional, TypeVar, Union, final

    from ._fd import HasFileno
    from ._options import NsSpec, StdSpec, StrPath
    from .idmap import IdMapLike
    from .namespace import Namespace

    T = TypeVar("T")
else:

    def final(cls):  # typing.final: a marker for type checkers only
        return cls


# subprocess's values, so either module's constants work with either API.
PIPE = -1
STDOUT = -2
DEVNULL = -3

# --- NsProcess ---------------------------------------------------------------------------


class _NoPublicConstructor(type):
    """Metaclass: ``Cls(...)`` is a TypeError; the module builds objects with ``_create``.

    trio's ``NoPublicConstructor`` (src/trio/_util.py).
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "use nsprim.spawn() or nsprim.spawn_in()"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


class _Finalizer:
    """``weakref.finalize(owner, fn, *args)``, ``atexit=False``: run by the owner's ``__del__``.

    What NsProcess and PendingCall need of it (call once when the object is
    dropped, unless detached; never during interpreter shutdown), without
    importing weakref (a module more for every `nsprim run`) or registering
    with it (work and memory touched on every spawn).
    """

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., object], *args: object) -> None:
        self.fn: Optional[Callable[..., object]] = fn
        self.args = args

    def detach(self) -> None:
        self.fn = None
        self.args = ()

    @staticmethod
    def run_for(owner: object) -> None:
        f = getattr(owner, "_finalizer", None)
        if f is None or f.fn is None or sys.is_finalizing():
            return
        fn, args = f.fn, f.args
        f.detach()
        try:
            fn(*args)
        except Exception:  # a finalizer must not raise (weakref.finalize prints and goes on)
            sys.excepthook(*sys.exc_info())


def _status_to_returncode(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


@final
class NsProcess(metaclass=_NoPublicConstructor):
    """A program started by :func:`spawn`: a real child of the caller, pidfd-backed.

    The interface follows ``subprocess.Popen``: ``args``, ``pid``,
    ``returncode`` (negative signal number when killed), ``stdin``,
    ``stdout``, ``stderr``, :meth:`poll`, :meth:`wait`,
    :meth:`communicate`, :meth:`send_signal`, :meth:`terminate`,
    :meth:`kill`; plus ``pidfd`` and :meth:`namespaces`. Used as a context
    manager it closes the pipes and kills and reaps a process that is still
    running on exit. Signals go through the pidfd, so a recycled pid can
    never receive them.
    """

    def __init__(
        self,
        args: Sequence[Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]],
        pid: int,
        pidfd: OwnedFd,
        stdin: Optional[IO[bytes]],
        stdout: Optional[IO[bytes]],
        stderr: Optional[IO[bytes]],
    ) -> None:
        self.args = args
        self.pid = pid
        self._pidfd: Optional[OwnedFd] = pidfd
        self.returncode: Optional[int] = None
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._lock = _thread.allocate_lock()  # threading.Lock, without threading
        self._output: dict[str, list[bytes]] = {}
        self._input = memoryview(b"")
        self._input_offset = 0
        self._communication_started = False
        self._finalizer = _Finalizer(NsProcess._orphan, pid, pidfd)

    @staticmethod
    def _orphan(pid: int, pidfd: OwnedFd) -> None:
        # Dropped while possibly running: reap it later, never leave a zombie.
        LEDGER.orphan(pid, pidfd)

    def __del__(self) -> None:
        _Finalizer.run_for(self)

    @property
    def pidfd(self) -> int:
        """The pidfd (close-on-exec); -1 once the process has been reaped."""
        fd = self._pidfd
        return -1 if fd is None or fd.closed else fd.fileno()

    def __repr__(self) -> str:
        return f"<NsProcess pid={self.pid} returncode={self.returncode} args={self.args!r}>"

    # --- waiting -------------------------------------------------------------------
    def _reaped(self, status: int) -> int:
        self.returncode = _status_to_returncode(status)
        self._finalizer.detach()
        if self._pidfd is not None:
            self._pidfd.close()
        return self.returncode

    def poll(self) -> Optional[int]:
        """Return the exit code if the process has finished, else None (never blocks)."""
        if self.returncode is not None:
            return self.returncode
        if not self._lock.acquire(False):
            return None
        try:
            if self.returncode is not None:
                return self.returncode
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                # Someone else reaped it (SIGCHLD set to SIG_IGN); as Popen does.
                return self._reaped(0)
            if pid == self.pid:
                return self._reaped(status)
            return None
        finally:
            self._lock.release()

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the process to finish and return its exit code.

        Polls the pidfd (Linux 5.3), so the wait is exact, with no sleep loop.

        Raises:
            nsprim.TimeoutExpired: still running after *timeout* seconds.
        """
        timeout = timeout_arg(timeout, negative_ok=True)
        if self.returncode is not None:
            return self.returncode
        if timeout is not None:
            fd = self._pidfd
            if fd is not None and not fd.closed:
                p = select.poll()
                p.register(fd.fileno(), select.POLLIN)
                deadline = time.monotonic() + timeout
                while not p.poll(poll_ms(deadline, at_least=0)):
                    if time.monotonic() >= deadline:
                        raise TimeoutExpired(timeout, self.pid)
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return self._reaped(0)
            return self._reaped(status)

    # --- signals ---------------------------------------------------------------------
    def send_signal(self, sig: int) -> None:
        """Send signal *sig* through the pidfd; does nothing once the process is reaped.

        Raises:
            AccessDenied: the kernel refused (EPERM).
        """
        self.poll()
        fd = self._pidfd
        if self.returncode is not None or fd is None or fd.closed:
            return
        with suppress(ProcessLookupError):  # exited meanwhile; wait() will tell
            self._pidfd_send_signal(fd, sig)

    @wrap_exceptions("pidfd_send_signal")
    def _pidfd_send_signal(self, fd: OwnedFd, sig: int) -> None:
        _sc.pidfd_send_signal(fd, sig)

    def terminate(self) -> None:
        """Send SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL."""
        self.send_signal(signal.SIGKILL)

    # --- I/O ---------------------------------------------------------------------------
    def communicate(
        self, input: Optional[bytes] = None, timeout: Optional[float] = None
    ) -> tuple[Optional[bytes], Optional[bytes]]:
        """Send *input*, read stdout/stderr to EOF, wait; return ``(stdout, stderr)``.

        Like ``Popen.communicate``: only pipes give data (None otherwise), and
        after a timeout a later call goes on where the first stopped.

        Raises:
            nsprim.TimeoutExpired: not done after *timeout* seconds; the
                process keeps running, and ``output``/``stderr`` attributes
                hold what was read so far.
            ValueError: *input* after communication started.
        """
        if self._communication_started and input:
            raise ValueError("Cannot send input after starting communication")
        timeout = timeout_arg(timeout, negative_ok=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._communication_started:
            self._communication_started = True
            self._input = memoryview(input or b"")
            for key, f in (("stdout", self.stdout), ("stderr", self.stderr)):
                if f is not None:
                    self._output[key] = []
        poller = select.poll()
        fds: dict[int, tuple[str, IO[bytes]]] = {}
        for key, f in (("stdout", self.stdout), ("stderr", self.stderr)):
            if f is not None and not f.closed:
                poller.register(f.fileno(), select.POLLIN)
                fds[f.fileno()] = (key, f)
        if self.stdin is not None and not self.stdin.closed:
            if self._input_offset >= len(self._input):
                self._close_file(self.stdin)
            else:
                poller.register(self.stdin.fileno(), select.POLLOUT)
                fds[self.stdin.fileno()] = ("stdin", self.stdin)
        while fds:
            if deadline is not None and deadline <= time.monotonic():
                self._timeout(timeout)
            for fd, _mask in poller.poll(poll_ms(deadline)):
                key, f = fds[fd]
                if key == "stdin":
                    chunk = self._input[self._input_offset : self._input_offset + select.PIPE_BUF]
                    try:
                        self._input_offset += os.write(fd, chunk)
                    except BrokenPipeError:
                        self._input_offset = len(self._input)
                    if self._input_offset >= len(self._input):
                        poller.unregister(fd)
                        del fds[fd]
                        self._close_file(f)
                else:
                    data = os.read(fd, 32768)
                    if data:
                        self._output[key].append(data)
                    else:
                        poller.unregister(fd)
                        del fds[fd]
                        self._close_file(f)
        out = b"".join(self._output["stdout"]) if "stdout" in self._output else None
        err = b"".join(self._output["stderr"]) if "stderr" in self._output else None
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return out, err

    def _timeout(self, timeout: Optional[float]) -> NoReturn:
        exc = TimeoutExpired(timeout or 0.0, self.pid)
        out = b"".join(self._output["stdout"]) if "stdout" in self._output else None
        err = b"".join(self._output["stderr"]) if "stderr" in self._output else None
        exc.output = exc.stdout = out  # type: ignore[attr-defined]
        exc.stderr = err  # type: ignore[attr-defined]
        raise exc

    def _close_file(self, f: IO[bytes]) -> None:
        if f.closed:
            return
        LEDGER.forget(f.fileno())
        with suppress(OSError):
            f.close()

    # --- queries -----------------------------------------------------------------------
    def namespaces(self) -> dict[NsType, Namespace]:
        """Return ``{NsType: Namespace}`` for every namespace the process is in.

        Raises:
            NoSuchProcess: the process has finished.
        """
        if self.poll() is not None:
            raise NoSuchProcess(
                self.pid, f"process {self.pid} has exited (returncode {self.returncode})"
            )
        from . import namespace  # the model: not imported by a spawn

        return namespace.namespaces(self.pid)

    # --- context manager ---------------------------------------------------------------
    def close(self) -> None:
        """Close the pipes; kill and reap the process if it is still running."""
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                self._close_file(f)
        if self.returncode is None:
            self.kill()
            self.wait()

    def __enter__(self) -> NsProcess:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


NsProcess.__module__ = "nsprim"


# --- spawn / run ---------------------------------------------------------------------------


def _stdio(
    stdin: StdSpec, stdout: StdSpec, stderr: StdSpec
) -> tuple[list[int], list[int], list[Optional[IO[bytes]]]]:
    """Return (child source fds, fds to close in the parent after fork, parent file objects)."""
    child = [-1, -1, -1]
    to_close: list[int] = []
    files: list[Optional[IO[bytes]]] = [None, None, None]
    devnull = -1
    try:
        for i, spec in enumerate((stdin, stdout, stderr)):
            name = ("stdin", "stdout", "stderr")[i]
            if spec is None:
                continue
            if spec == PIPE:
                r, w = os.pipe2(os.O_CLOEXEC)
                LEDGER.track(r, w)
                if i == 0:
                    child[0], mine, mode = r, w, "wb"
                    to_close.append(r)
                else:
                    child[i], mine, mode = w, r, "rb"
                    to_close.append(w)
                # Owned by the NsProcess, which closes it (no context manager here).
                files[i] = open(mine, mode, buffering=0 if i == 0 else -1)  # noqa: SIM115
            elif spec == DEVNULL:
                if devnull < 0:
                    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                    LEDGER.track(devnull)
                    to_close.append(devnull)
                child[i] = devnull
            elif spec == STDOUT:
                if i != 2:
                    raise ValueError(f"{name}=STDOUT is only valid for stderr")
                child[2] = child[1] if child[1] >= 0 else 1
            elif isinstance(spec, int) and not isinstance(spec, bool) and spec < 0:
                raise ValueError(f"{name} must be PIPE, DEVNULL, a file or an fd >= 0, got {spec}")
            else:
                child[i] = fd_of(spec, name)
    except BaseException:
        for fd in to_close:
            LEDGER.close(fd)
        for f in files:
            if f is not None:
                LEDGER.forget(f.fileno())
                f.close()
        raise
    return child, to_close, files


def spawn(
    args: Union[StrPath, Sequence[StrPath]],
    *,
    namespaces: Iterable[NsSpec] = (),
    hostname: Optional[Union[str, bytes]] = None,
    domainname: Optional[Union[str, bytes]] = None,
    map_root: bool = False,
    uid_map: Optional[IdMapLike] = None,
    gid_map: Optional[IdMapLike] = None,
    setgroups: Optional[str] = None,
    mount_proc: bool = False,
    propagation: str = "private",
    root: Optional[StrPath] = None,
    time_offsets: Optional[Mapping[str, Any]] = None,
    loopback_up: bool = False,
    cwd: Optional[StrPath] = None,
    env: Optional[Mapping[Any, Any]] = None,
    stdin: StdSpec = None,
    stdout: StdSpec = None,
    stderr: StdSpec = None,
    pass_fds: Iterable[int] = (),
    die_with_parent: Union[bool, int] = True,
    map_helpers: bool = False,
    binfmt_misc: Optional[StrPath] = None,
    owner: Optional[tuple[int, int]] = None,
    keep_caps: bool = False,
    binfmt_register: Iterable[Union[str, bytes]] = (),
) -> NsProcess:
    """Start a program in new namespaces and return it as an :class:`NsProcess`.

    Uses clone3(2) with CLONE_PIDFD (Linux 5.3), so with ``"pid"`` the
    program is PID 1 of the new pid namespace; falls back to fork + unshare
    where clone3 is missing (then without ``"pid"``). The child runs a plan
    the parent computed, then execve(2)s; a failing step is re-raised here.

    Args:
        args: the program and its arguments (PATH is searched for a bare name).
        namespaces: types to create: ``NsType`` members or names ("uts",
            "ipc", "pid", "net", "mnt", "user", "cgroup", "time").
        hostname, domainname: set in the new UTS namespace (implies "uts").
        map_root: map the caller's euid/egid to 0, as ``unshare --map-root-user``
            (implies "user"; writes setgroups "deny").
        uid_map, gid_map: explicit maps (:class:`~nsprim.IdMap`, text, or
            ``(inside, outside, count)`` triples); imply "user". Written by
            the parent while the child waits.
        setgroups: "allow" or "deny"; None picks "deny" where an
            unprivileged gid map needs it.
        mount_proc: mount a fresh proc on /proc (implies "mnt"; needs "pid").
        propagation: for "/" in the new mount namespace: "private" (default),
            "slave", "shared", "unbindable" or "unchanged".
        root: directory to pivot_root(2) into (implies "mnt").
        time_offsets: ``{"monotonic": seconds, "boottime": seconds}`` (implies "time").
        loopback_up: bring ``lo`` up in the new network namespace (implies "net").
        cwd: working directory of the program (after any pivot).
        map_helpers: write *uid_map*/*gid_map* with the setuid helpers
            newuidmap(1)/newgidmap(1) (package uidmap), which allow an
            unprivileged caller the ranges of ``/etc/subuid``/``/etc/subgid``
            (see :func:`nsprim.idmap.newuidmap`); setgroups is then left to
            newgidmap. FileNotFoundError before anything is created when a
            helper that is needed is missing.
        binfmt_misc: mount a binfmt_misc filesystem on this directory of the
            new mount namespace, after any root and proc (implies "mnt"; as
            ``unshare --mount-binfmt``). Since Linux 6.7 each user namespace
            that mounts it gets its own instance (its own interpreters); on
            older kernels the mount needs CAP_SYS_ADMIN in the initial user
            namespace and shows the host's.
        owner: ``(uid, gid)``: the child drops its supplementary groups and
            takes these ids (setgroups, setgid, setuid; needs CAP_SETUID and
            CAP_SETGID) before it creates the namespaces, so they own the new
            user namespace (implies "user"), as ``unshare --owner``; the
            program runs with them. The maps, if any, are written by the caller.
        keep_caps: with a new user namespace, raise the capabilities it gave
            into the ambient set just before execve(2), so that a program
            running as a non-root id in it keeps them (``unshare --keep-caps``;
            PR_CAP_AMBIENT, Linux 4.3).
        binfmt_register: interpreter definitions (``:name:type:offset:magic:
            mask:interpreter:flags``) written to *binfmt_misc*'s ``register``
            right after it is mounted (``unshare --load-interp``).
        env: environment (default: the caller's).
        stdin, stdout, stderr: None (inherit), ``PIPE``, ``DEVNULL``, an fd or
            a file; stderr may be ``STDOUT``.
        pass_fds: fds (>= 3) the program keeps; every other fd is closed.
        die_with_parent: True (SIGKILL) or a signal the program gets when the
            calling **process** dies, whichever thread spawned it; False for
            none. The first such spawn of a process, and every one the fast
            path can't take, is forked from nsprim's launcher thread, which
            lives as long as the process, with PR_SET_PDEATHSIG. From the
            second on, a program the fast path can start (thread-scoped
            types, no root/mount_proc) is posix_spawned as with False and
            handed (its pidfd, SCM_RIGHTS) to a supervisor process that
            nsprim starts once per process and that sends the signal when
            this process dies (pidfd_open(2) of it, Linux 5.3). It stays a
            real child either way. Residual window of the supervised path:
            this process dying of a signal it does not handle (SIGKILL,
            SIGTERM at its default) while posix_spawn runs, from the
            program's clone to its exec (a fraction of a millisecond, more
            under load), or in the microseconds before the hand-over that
            follows on the same thread, leaves the program running; the
            signal arrives when the supervisor wakes, not synchronously
            with the exit. The fork path has no such window, nor has the
            forker (see :func:`use_forker`), which from a process's second
            fork-path spawn on creates the program with clone3(CLONE_PARENT)
            as a child of that same long-lived thread, with PR_SET_PDEATHSIG
            and the same race check.

    Returns:
        The running program.

    Raises:
        ValueError, TypeError: bad arguments (before anything is created).
        AccessDenied: a step needed privilege the caller lacks (EPERM).
        OSError: another refusal; ``err.step`` names the step, and a note says
            which child it came from. FileNotFoundError when the program is missing.
        UnsupportedError: the kernel lacks a feature that was asked for.
        nsprim._supervisor.SupervisorError (an NsprimError): die_with_parent
            on the fast path, and the supervisor died after the program had
            started and no new one could be started; the program is killed
            and reaped (never started a second time by the fork path).
    """
    argv = argv_arg(args)
    setup = NsOptions(
        namespaces=namespaces, hostname=hostname, domainname=domainname, map_root=map_root,
        uid_map=uid_map, gid_map=gid_map, setgroups=setgroups, mount_proc=mount_proc,
        propagation=propagation, root=root, time_offsets=time_offsets, loopback_up=loopback_up,
        cwd=cwd, die_with_parent=die_with_parent, map_helpers=map_helpers,
        binfmt_misc=binfmt_misc, owner=owner, keep_caps=keep_caps,
        binfmt_register=binfmt_register,
    )  # fmt: skip
    envp = envp_arg(env)
    fds = pass_fds_arg(pass_fds)
    child_std, to_close, files = _stdio(stdin, stdout, stderr)
    program = Program(
        argv=argv,
        executables=executables(argv[0], env),
        envp=envp,
        stdio=(child_std[0], child_std[1], child_std[2]),
        pass_fds=fds,
    )

    watched: list[bool] = []

    def start() -> tuple[int, OwnedFd]:
        if _launch.fast_eligible(setup, program.stdio):
            return _launch.fast_spawn(setup, program)
        if _launch.fast_eligible(setup, program.stdio, watched=True) and _watch_wanted():
            # die_with_parent at the fast path's cost: the program stays our
            # child, and nsprim's supervisor process kills it when this
            # process dies (see nsprim._supervisor; window: this process
            # killed while posix_spawn runs or just before the hand-over).
            from . import _supervisor

            sig = setup.pdeathsig
            missed: list[BaseException] = []

            def hand_over(fd: int) -> None:
                # On the spawning thread, right after posix_spawn (see
                # fast_spawn's *watch*); it may not start a supervisor.
                try:
                    _supervisor.watch(fd, sig, start=False)
                except _supervisor.SupervisorError as why:
                    missed.append(why)

            pid, pidfd = _launch.fast_spawn(setup, program, watch=hand_over)
            if missed:
                # The supervisor died since want_watch: this thread starts
                # another. The program runs already; never start it twice.
                try:
                    _supervisor.watch(pidfd.fileno(), sig)
                except BaseException:
                    kill_reap(pid, pidfd)
                    raise
            watched.append(True)
            return pid, pidfd
        if _fork_spawns[0]:
            # The second fork-path program of a process on: a small helper
            # process forks it for us, as our child (see nsprim._forker).
            from . import _forker

            if _forker.eligible(setup, program):
                got = _forker.spawn(setup, program, time.monotonic() + _launch.SETUP_TIMEOUT)
                if got is not None:
                    return got
        else:
            _fork_spawns[0] = 1
        child, _ = launch(_child.run_exec, setup=setup, program=program, own=[*child_std, *fds])
        child.close_chan()
        return child.pid, child.pidfd

    proc = _start_program(args, start, to_close, files)
    if watched:
        from . import _supervisor

        _supervisor.remember(proc, setup.pdeathsig)  # a restarted supervisor takes it over
    return proc


#: Whether this process made a fork-path program spawn yet (the forker starts at the second).
_fork_spawns = [0]
os.register_at_fork(after_in_child=lambda: _fork_spawns.__setitem__(0, 0))


def use_forker(on: bool) -> None:
    """Let a helper process fork the fork path's programs, or not (default: on).

    From a process's second spawn that needs the fork path (a new user or
    time namespace, ``mount_proc``, ``root`` ...), nsprim starts a small
    helper, a child of this process named ``nsprim-forker``, that creates
    each such program with clone3(CLONE_PARENT) (Linux 5.3). The program is
    still this process's own child, with the state a fork would give it
    (what could differ is checked per spawn, and the fork path taken then),
    and its start no longer costs more the larger this process is: about
    0.6 of the fork path's time for a 40 MB caller. A caller that loops on
    ``os.wait()`` until ECHILD meets the helper; :func:`helper_pids` names
    it. ``use_forker(False)``, or ``NSPRIM_FORKER=0`` in the environment
    (read when the helper is first wanted), stops it now and takes the fork
    path for every such spawn after. nsprim also stops using it by itself
    after three helpers died (before they were up, or during a request);
    ``use_forker(True)`` starts afresh.

    Raises:
        TypeError: *on* is not a bool.
    """
    from . import _forker

    _forker.use(on)


def helper_pids() -> frozenset[int]:
    """The pids of the helper processes nsprim runs as this process's children.

    Today at most one: the forker (see :func:`use_forker`). For leak checks
    that count a process's children.
    """
    if "nsprim._forker" not in sys.modules:
        return frozenset()
    from . import _forker

    return _forker.helper_pids()


def _watch_wanted() -> bool:
    from . import _supervisor  # only a die_with_parent spawn pays its import

    return _supervisor.want_watch()


def _start_program(
    args: Union[StrPath, Sequence[StrPath]],
    start: Callable[[], tuple[int, OwnedFd]],
    to_close: Sequence[int],
    files: Sequence[Optional[IO[bytes]]],
) -> NsProcess:
    """Run *start* and wrap its child in an NsProcess; on failure close the pipes."""
    try:
        pid, pidfd = start()
    except BaseException:
        for f in files:
            if f is not None:
                LEDGER.forget(f.fileno())
                f.close()
        raise
    finally:
        for fd in to_close:
            LEDGER.close(fd)
    return NsProcess._create(
        args if not isinstance(args, (str, bytes, os.PathLike)) else [args],
        pid,
        pidfd,
        files[0],
        files[1],
        files[2],
    )


def run(
    args: Union[StrPath, Sequence[StrPath]],
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
    """Run a program in new namespaces, wait for it, return a ``CompletedProcess``.

    Behaves like ``subprocess.run``: *input* feeds stdin, *capture_output*
    pipes stdout and stderr, *timeout* kills the program and raises
    ``subprocess.TimeoutExpired``, *check* raises
    ``subprocess.CalledProcessError`` on a non-zero exit. Every other keyword
    goes to :func:`spawn`. *text*, *encoding* and *errors* switch to text
    mode as in ``subprocess.run``: *input* is encoded, captured output is
    decoded with universal newlines.

    Raises:
        subprocess.TimeoutExpired, subprocess.CalledProcessError: as ``subprocess.run``.
        ValueError: conflicting stdin/input or stdout/stderr/capture_output.
        Whatever :func:`spawn` raises.
    """
    text_mode = bool(text or encoding or errors)
    if text_mode:
        import locale

        enc = encoding or locale.getpreferredencoding(False)
        errs = errors or "strict"
        if isinstance(input, str):
            input = input.encode(enc, errs)
    if isinstance(input, str):
        raise TypeError("input must be bytes unless text, encoding or errors is given")
    if input is not None:
        if spawn_options.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used.")
        spawn_options["stdin"] = PIPE
    if capture_output:
        if spawn_options.get("stdout") is not None or spawn_options.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output.")
        spawn_options["stdout"] = PIPE
        spawn_options["stderr"] = PIPE
    with spawn(args, **spawn_options) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except TimeoutExpired as exc:
            import subprocess

            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(
                proc.args,
                timeout if timeout is not None else exc.seconds,
                output=getattr(exc, "output", None),
                stderr=getattr(exc, "stderr", None),
            ) from None
        except BaseException:
            proc.kill()
            raise
        retcode = proc.poll()
        assert retcode is not None
    return _completed(proc.args, retcode, stdout, stderr, (enc, errs) if text_mode else None, check)


def _completed(
    args: Any,
    returncode: int,
    stdout: Optional[bytes],
    stderr: Optional[bytes],
    text: Optional[tuple[str, str]],
    check: bool,
) -> subprocess.CompletedProcess[Any]:
    """What :func:`run` (and ``nsprim.aio.arun``) return: decoded when *text* is
    ``(encoding, errors)``; CalledProcessError when *check* and the status is not 0."""
    import subprocess

    out: Union[bytes, str, None] = stdout
    err: Union[bytes, str, None] = stderr
    if text is not None:
        out, err = _decode(stdout, *text), _decode(stderr, *text)
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, args, output=out, stderr=err)
    return subprocess.CompletedProcess(args, returncode, out, err)


def _decode(data: Optional[bytes], encoding: str, errors: str) -> Optional[str]:
    # subprocess reads through io.TextIOWrapper: universal newlines.
    if data is None:
        return None
    return data.decode(encoding, errors).replace("\r\n", "\n").replace("\r", "\n")


# --- call / call_in ---------------------------------------------------------------------------


def _int_tuple(value: object, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of pids, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"{name} must hold ints, got {item!r}")
        if not 0 < item <= C_INT_MAX:
            raise ValueError(f"{name} must hold pids from 1 to {C_INT_MAX}, got {item}")
        out.append(item)
    if len(out) > 32:
        raise ValueError(f"{name} may name at most 32 pids (MAX_PID_NS_LEVEL), got {len(out)}")
    return tuple(out)


@final
class PendingCall(metaclass=_NoPublicConstructor):
    """A callable started by :func:`call_start`, running in its child.

    ``pid`` and ``pidfd`` name the child (the caller's own; a pid namespace's
    PID 1 when one was asked for); :meth:`fileno` is the outcome channel, for
    an event loop's reader alongside the pidfd. :meth:`poll` never blocks;
    :meth:`result` waits, reaps the child and returns what the callable
    returned (or raises what it raised) exactly as :func:`call` does.
    Dropping the object, :meth:`close` or :meth:`kill` kill and reap the child.
    """

    def __init__(self, launch: Launch) -> None:
        self._launch = launch
        self.pid = launch.pid
        self._payload: Optional[bytes] = None
        self._ended = False  # outcome in hand, or the channel closed
        self._done = False  # reaped
        self._outcome: Any = None
        self._finalizer = _Finalizer(kill_reap, launch.pid, launch.pidfd)

    def __del__(self) -> None:
        _Finalizer.run_for(self)

    @property
    def pidfd(self) -> int:
        """The child's pidfd; -1 once it has been reaped."""
        fd = self._launch.pidfd
        return -1 if fd.closed else fd.fileno()

    def fileno(self) -> int:
        """The parent's end of the outcome channel (-1 once closed)."""
        return -1 if self._ended else self._launch.chan.fd

    def __repr__(self) -> str:
        return f"<PendingCall pid={self.pid} done={self._done}>"

    def _read(self, deadline: Optional[float]) -> bool:
        """Read frames until the outcome or the end; False if *deadline* passed first."""
        if not self._ended:
            from . import _calls

            done, payload = _calls.outcome(self._launch, deadline)
            if not done:
                return False
            self._payload, self._ended = payload, True
        return True

    def poll(self) -> bool:
        """Read what is there without blocking; True once :meth:`result` won't wait long."""
        if self._done or self._ended:
            return True
        return self._read(time.monotonic())

    def result(self, timeout: Optional[float] = None) -> Any:
        """Wait for the callable, reap the child, and return its result (or raise its error).

        Raises:
            TimeoutExpired: not done after *timeout* seconds; the child is
                killed and reaped.
            CallError: as :func:`call`; ``returncode`` says how the child ended.
        """
        timeout = timeout_arg(timeout)
        if self._done:
            return self._unpacked()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if not self._read(deadline):
                raise TimeoutExpired(
                    timeout or 0.0, self.pid, msg=f"call timed out after {timeout} seconds"
                )
        except BaseException:
            self.kill()
            raise
        self._finalizer.detach()
        from . import _calls

        self._outcome = _calls.finish(self._launch, self._payload, deadline)
        self._done = True
        return self._unpacked()

    def _unpacked(self) -> Any:
        kind, value = self._outcome
        if kind == "raise":
            raise value
        return value

    def kill(self) -> None:
        """SIGKILL the child and reap it (nothing is left); a later :meth:`result` is CallError."""
        if self._done:
            return
        self._finalizer.detach()
        self._launch.close_chan()
        self._ended = True
        status = kill_reap(self._launch.pid, self._launch.pidfd)
        from . import _calls

        self._outcome = ("raise", _calls.call_error(None, self.pid, status))
        self._done = True

    def detach(self) -> int:
        """Hand the running child over to the caller and return its pid.

        The channel and the pidfd are closed; the child is never killed or
        reaped by this object again (not on drop either): the caller waits
        for it with ``os.waitpid``, as for a child of ``os.fork``. Its
        outcome is not collected, so a callable that returns makes the child
        exit with status 1 (nobody reads it); end it with ``os._exit(code)``
        to choose the status. A later :meth:`result` is CallError.

        Raises:
            ValueError: the child was already reaped.
        """
        if self._done:
            raise ValueError(f"child {self.pid} was already reaped")
        self._finalizer.detach()
        self._launch.close_chan()
        self._launch.pidfd.close()
        self._ended = self._done = True
        self._outcome = ("raise", CallError(f"child {self.pid} was detached"))
        return self.pid

    def close(self) -> None:
        """Kill and reap the child if it still runs; close the channel."""
        self.kill()

    def __enter__(self) -> PendingCall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PendingCall.__module__ = "nsprim"


def _start_call(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    setup: Optional[NsOptions],
    deadline: Optional[float],
    join: Optional[_child.Join] = None,
    own: Sequence[int] = (),
    pdeathsig: int = 0,
    set_tid: Iterable[int] = (),
    subreaper: bool = False,
    unshare: int = 0,
) -> PendingCall:
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__} {fn!r}")
    tids = _int_tuple(set_tid, "set_tid")
    if not isinstance(subreaper, bool):
        raise TypeError(f"subreaper must be a bool, got {subreaper!r}")
    if isinstance(unshare, bool) or not isinstance(unshare, int):
        raise TypeError(f"unshare must be CLONE_* flags (an int), got {unshare!r}")
    late = int(unshare)
    if late & ~int(CloneFlags.UNSHARE_ALL) or late < 0:
        raise ValueError(
            f"unshare must be a combination of CLONE_NEW* and CLONE_FILES/FS/SYSVSEM flags, "
            f"got {unshare!r}"
        )

    from . import _calls  # only a call pays for pickle and traceback

    child = _calls.start(
        fn, args, kwargs, setup, deadline, join=join, own=own, pdeathsig=pdeathsig,
        set_tid=tids, subreaper=subreaper, unshare_late=late,
    )  # fmt: skip
    return PendingCall._create(child)


def _call(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    setup: Optional[NsOptions],
    timeout: object,
    **child: Any,
) -> Any:
    seconds = timeout_arg(timeout)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        pending = _start_call(fn, args, kwargs, setup, deadline, **child)
    except TimeoutExpired as exc:
        if seconds is not None and deadline is not None and time.monotonic() >= deadline:
            raise TimeoutExpired(
                seconds, exc.pid, msg=f"call timed out after {seconds} seconds"
            ) from None
        raise
    with pending:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return pending.result(left)
        except TimeoutExpired:
            raise TimeoutExpired(
                seconds or 0.0, pending.pid, msg=f"call timed out after {seconds} seconds"
            ) from None


def call(
    fn: Callable[..., T],
    *args: Any,
    namespaces: Iterable[NsSpec] = (),
    timeout: Optional[float] = None,
    hostname: Optional[Union[str, bytes]] = None,
    domainname: Optional[Union[str, bytes]] = None,
    map_root: bool = False,
    uid_map: Optional[IdMapLike] = None,
    gid_map: Optional[IdMapLike] = None,
    setgroups: Optional[str] = None,
    mount_proc: bool = False,
    propagation: str = "private",
    root: Optional[StrPath] = None,
    time_offsets: Optional[Mapping[str, Any]] = None,
    loopback_up: bool = False,
    cwd: Optional[StrPath] = None,
    die_with_parent: Union[bool, int] = True,
    set_tid: Iterable[int] = (),
    subreaper: bool = False,
    unshare: int = 0,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a fresh child inside new namespaces; return its result.

    The child is forked like :func:`spawn`'s, with the same namespace
    options, and runs *fn* instead of a program. The result comes back
    pickled. An exception from *fn* is re-raised here with its type, with
    the child's traceback as a note (and as ``child_traceback``). Keyword
    arguments that are not options of this function go to *fn* (use
    ``functools.partial`` for one whose name clashes).

    Args:
        set_tid: the pids the child gets, innermost pid namespace first
            (clone3(2) ``set_tid``, Linux 5.5; needs CAP_SYS_ADMIN or
            CAP_CHECKPOINT_RESTORE over each pid namespace's owner).
        subreaper: make the child a child subreaper (PR_SET_CHILD_SUBREAPER,
            Linux 3.4); what *fn* forks and orphans is reparented to it, and
            every descendant left when *fn* returns is killed and reaped
            before the result comes back.
        unshare: ``CLONE_*`` flags the child unshare(2)s itself right before
            *fn*, after every other option (a new pid or time namespace then
            holds its children, not the child).

    Raises:
        CallError: the result or exception could not be pickled, *fn* raised
            a BaseException that is not an Exception, or the child died
            first (the message names the signal; ``returncode`` holds it
            as a negative number, as Popen's).
        TimeoutExpired: *timeout* seconds passed; the child is killed.
        Whatever *fn* raised, and whatever :func:`spawn` raises for setup.
    """
    setup = NsOptions(
        namespaces=namespaces, hostname=hostname, domainname=domainname, map_root=map_root,
        uid_map=uid_map, gid_map=gid_map, setgroups=setgroups, mount_proc=mount_proc,
        propagation=propagation, root=root, time_offsets=time_offsets, loopback_up=loopback_up,
        cwd=cwd, die_with_parent=die_with_parent,
    )  # fmt: skip
    result: T = _call(fn, args, kwargs, setup, timeout, set_tid=set_tid,
                      subreaper=subreaper, unshare=unshare)  # fmt: skip
    return result


def call_start(
    fn: Callable[..., Any],
    *args: Any,
    namespaces: Iterable[NsSpec] = (),
    hostname: Optional[Union[str, bytes]] = None,
    domainname: Optional[Union[str, bytes]] = None,
    map_root: bool = False,
    uid_map: Optional[IdMapLike] = None,
    gid_map: Optional[IdMapLike] = None,
    setgroups: Optional[str] = None,
    mount_proc: bool = False,
    propagation: str = "private",
    root: Optional[StrPath] = None,
    time_offsets: Optional[Mapping[str, Any]] = None,
    loopback_up: bool = False,
    cwd: Optional[StrPath] = None,
    die_with_parent: Union[bool, int] = True,
    set_tid: Iterable[int] = (),
    subreaper: bool = False,
    unshare: int = 0,
    **kwargs: Any,
) -> PendingCall:
    """Start ``fn(*args, **kwargs)`` as :func:`call` does and return once it runs.

    Same options as :func:`call` (without *timeout*: pass it to
    :meth:`PendingCall.result`). Returns when the child's setup is done and
    *fn* has been called, so ``pid`` is live; ``result()`` is :func:`call`'s
    return. Setup errors are raised here, as :func:`call` raises them.
    """
    setup = NsOptions(
        namespaces=namespaces, hostname=hostname, domainname=domainname, map_root=map_root,
        uid_map=uid_map, gid_map=gid_map, setgroups=setgroups, mount_proc=mount_proc,
        propagation=propagation, root=root, time_offsets=time_offsets, loopback_up=loopback_up,
        cwd=cwd, die_with_parent=die_with_parent,
    )  # fmt: skip
    return _start_call(fn, args, kwargs, setup, None, set_tid=set_tid, subreaper=subreaper,
                       unshare=unshare)  # fmt: skip


# --- targets (enter / call_in / spawn_in) ----------------------------------------------------

# --- enter -------------------------------------------------------------------------------------


def enter(
    target: Union[int, HasFileno, NsProcess, Namespace], *types: NsSpec
) -> contextlib.AbstractContextManager[None]:
    """Move the calling **thread** into *target*'s namespaces; move it back on exit.

    Wraps setns(2) (Linux 3.0; one atomic call with a pidfd on Linux 5.8).
    Only the thread-scoped types (net, uts, ipc, cgroup) can be entered by
    one thread of a process; the previous namespaces are saved from
    ``/proc/thread-self/ns`` first and restored on exit. Leave the ``with``
    block on the thread that entered it. Namespaces the thread is already in
    are skipped.

    Args:
        target: a pid, a pidfd (any object with ``fileno()``), an
            :class:`NsProcess`, or a :class:`~nsprim.Namespace` (then its type).
        types: the types to enter (default: every thread-scoped type, or the
            Namespace's own type).

    Raises:
        ValueError: a type is mnt, user, time or pid (the kernel refuses them
            in a multithreaded process or applies them to children only; use
            :func:`call_in`), or *target* is not a process or namespace fd.
        NoSuchProcess: the target process is gone.
        AccessDenied: setns(2) was refused; nothing was changed.
    """
    import contextlib  # here, not at import: `nsprim run` never enters

    return contextlib.contextmanager(_entering)(target, types)


def _entering(
    target: Union[int, HasFileno, NsProcess, Namespace], types: tuple[NsSpec, ...]
) -> Iterator[None]:
    """The generator behind :func:`enter`."""
    wanted = parse_types(types, "types")
    bad = sorted(t.value for t in wanted - THREAD_SCOPED)
    if bad:
        raise ThreadScopeError(
            f"enter() moves one thread and can't enter {', '.join(bad)}: the kernel refuses "
            "user/mnt/time namespaces in a multithreaded process and applies pid to "
            "children only; use nsprim.call_in() to run code in a fresh child there"
        )
    from . import _targets

    tgt = _targets.resolve(target, (NsProcess,))
    saved: list[tuple[NsType, OwnedFd]] = []
    theirs: list[tuple[NsType, OwnedFd]] = []
    joined: list[tuple[NsType, OwnedFd]] = []
    try:
        if tgt.ns is not None:
            if wanted and wanted != {tgt.ns.type}:
                raise ValueError(
                    f"target is a {tgt.ns.type.value} namespace; types must be empty or "
                    f"({tgt.ns.type.value!r},), got {sorted(t.value for t in wanted)}"
                )
            if tgt.ns.type not in THREAD_SCOPED:
                raise ThreadScopeError(
                    f"enter() can't move a thread into a {tgt.ns.type.value} namespace; "
                    "use nsprim.call_in()"
                )
            wanted = frozenset({tgt.ns.type})
        elif not wanted:
            wanted = THREAD_SCOPED
        order = [t for t in _targets.ORDER if t in wanted]
        theirs = _targets.open_target_ns(tgt, order, "setns")
        todo = [(t, fd) for t, fd in theirs if _targets.differs(t, fd)]
        for t, _ in todo:
            saved.append(
                (t, OwnedFd(os.open(f"/proc/thread-self/ns/{t.value}", os.O_RDONLY | os.O_CLOEXEC)))
            )
        tid = _thread.get_native_id()
        if todo:
            if tgt.pidfd is not None and _targets.pidfd_setns:
                mask = 0
                for t, _ in todo:
                    mask |= int(t.flag)
                try:
                    _sc.setns(tgt.pidfd, mask)  # all or nothing
                except OSError as err:
                    reraise(err, "setns", tgt.pid)
                joined = list(todo)
            else:
                _targets.join_each(todo, joined, saved, tgt.pid)
        try:
            yield
        finally:
            if _thread.get_native_id() != tid:
                raise RuntimeError(
                    "nsprim.enter() must be left on the thread that entered it "
                    f"(entered on {tid}, leaving on {_thread.get_native_id()})"
                )
            _targets.restore(joined, saved)
    finally:
        for _, fd in saved:
            fd.close()
        for _, fd in theirs:
            if fd not in tgt.owned:
                fd.close()
        tgt.close()


# --- call_in / spawn_in ------------------------------------------------------------------------


def call_in(
    target: Union[int, HasFileno, NsProcess, Namespace],
    fn: Callable[..., T],
    *args: Any,
    types: Optional[Iterable[NsSpec]] = None,
    timeout: Optional[float] = None,
    die_with_parent: Union[bool, int] = True,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a fresh child that joined *target*'s namespaces.

    The child is single-threaded, so every type can be joined, user and
    mount included: one atomic ``setns(pidfd, mask)`` (Linux 5.8), or one
    setns(2) per type (user first, as util-linux nsenter orders them for an
    unprivileged caller). Namespaces the child is already in are skipped.
    With a pid namespace the work runs in a second child, which is then in
    it (setns moves only children), and is still the caller's child.

    Args:
        target: a pid, a pidfd, an :class:`NsProcess` or a :class:`~nsprim.Namespace`.
        fn: the callable; its result and exceptions travel as in :func:`call`.
        types: which types to join (default: all of the target's).
        timeout: seconds before the child is killed and TimeoutExpired raised.
        die_with_parent: as :func:`spawn` (SIGKILL when the calling process dies).

    Raises:
        NoSuchProcess: the target is gone (before anything started).
        AccessDenied: setns(2) was refused (``err.step == "setns"``).
        CallError, TimeoutExpired: as :func:`call`.
    """
    pdeathsig = pdeathsig_arg(die_with_parent)
    from . import _targets

    tgt = _targets.resolve(target, (NsProcess,))
    theirs: list[tuple[NsType, OwnedFd]] = []
    try:
        join, theirs = _targets.join_plan(tgt, types, {})
        own = [fd for _, fd in join.fds] + ([join.pidfd] if join.pidfd >= 0 else [])
        result: T = _call(fn, args, kwargs, None, timeout, join=join, own=own,
                          pdeathsig=pdeathsig)  # fmt: skip
        return result
    finally:
        for _, fd in theirs:
            if fd not in tgt.owned:
                fd.close()
        tgt.close()


def spawn_in(
    target: Union[int, HasFileno, NsProcess, Namespace, None],
    args: Union[StrPath, Sequence[StrPath]],
    *,
    types: Optional[Iterable[NsSpec]] = None,
    uid: Optional[int] = None,
    gid: Optional[int] = None,
    target_root: Union[bool, StrPath] = False,
    target_cwd: Union[bool, StrPath] = False,
    env: Optional[Mapping[Any, Any]] = None,
    stdin: StdSpec = None,
    stdout: StdSpec = None,
    stderr: StdSpec = None,
    pass_fds: Iterable[int] = (),
    die_with_parent: Union[bool, int] = True,
    extra_ns: Iterable[Union[Namespace, HasFileno, int]] = (),
    cwd: Optional[StrPath] = None,
    keep_caps: bool = False,
    exec_context: Union[str, bytes, None] = None,
) -> NsProcess:
    """Start a program in the namespaces of *target*, as ``nsenter(1)`` does.

    Joins like :func:`call_in`, then optionally switches to *uid*/*gid*
    (dropping supplementary groups), chroots to the target's root and
    changes to its working directory, and execve(2)s. With a pid namespace
    the program is started by a second child with CLONE_PARENT, so the
    returned :class:`NsProcess` is still the caller's own child.

    Args:
        target: a pid, pidfd, :class:`NsProcess` or :class:`~nsprim.Namespace`;
            None to join only *extra_ns*.
        types: the target's namespace types to join (default: all it has).
        target_root, target_cwd: True for the target process's root and
            working directory, or a directory path, opened here before any
            join (nsenter's ``--root=DIR``, ``--wd=DIR``).
        extra_ns: nsfs fds or :class:`~nsprim.Namespace` objects, at most one
            per type, joined instead of the target's namespace of that type
            (nsenter's ``--net=FILE``); setns(2) Linux 3.0.
        cwd: working directory resolved after the joins and the chroot
            (nsenter's ``--wdns``); excludes *target_cwd*.
        keep_caps: raise the permitted capabilities into the ambient set
            after the id switch (PR_CAP_AMBIENT, Linux 4.3), as nsenter's
            ``--keep-caps``.
        exec_context: the LSM context the program runs in, as nsenter's
            ``-Z`` sets the target's (:func:`nsprim.lsm.pid_context`): the
            child writes it to its ``/proc/thread-self/attr/exec`` (procfs,
            Linux 3.17) before it joins, and the LSM applies it at execve(2).
            Its meaning and whether it is allowed are the active LSM's
            (an SELinux ``user:role:type:level``); see :mod:`nsprim.lsm`.

    Raises:
        NoSuchProcess, AccessDenied, ValueError: as :func:`call_in`.
        FileNotFoundError: the program was not found (``err.step == "execve"``).
        OSError: with ``err.step == "setexeccon"`` and the attr file as its
            filename, the exec context was refused: EINVAL where no LSM takes
            one (or it rejects the text); AccessDenied where the policy forbids.
    """
    argv = argv_arg(args)
    envp = envp_arg(env)
    exes = executables(argv[0], env)
    fds = pass_fds_arg(pass_fds)
    pdeathsig = pdeathsig_arg(die_with_parent)
    extra: dict[str, Any] = {}
    for name, value in (("uid", uid), ("gid", gid)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 0xFFFFFFFF:
                raise ValueError(f"{name} must be an id from 0 to 4294967294, got {value!r}")
            extra[name] = value
    from . import _targets

    if not isinstance(keep_caps, bool):
        raise TypeError(f"keep_caps must be a bool, got {keep_caps!r}")
    extra["keep_caps"] = keep_caps
    if exec_context is not None:
        from . import lsm

        extra["exec_context"] = lsm.exec_context_arg(exec_context)
    if cwd is not None:
        if target_cwd is not False:
            raise ValueError("cwd and target_cwd are mutually exclusive")
        extra["wdns"] = os.fsencode(os.fspath(cwd))
        if not extra["wdns"] or b"\0" in extra["wdns"]:
            raise ValueError(f"cwd must be a non-empty path without NUL, got {cwd!r}")
    extras = list(extra_ns)
    if target is None and not extras:
        raise ValueError("spawn_in needs a target or extra_ns")
    tgt = _targets.resolve(target, (NsProcess,)) if target is not None else _targets.Target()
    from .namespace import Namespace, nstype_of  # _targets imported it already

    theirs: list[tuple[NsType, OwnedFd]] = []
    aux: list[int] = []
    over: dict[NsType, int] = {}
    try:
        for item in extras:
            if isinstance(item, Namespace):
                owned = item.open()
                aux.append(owned.detach())
                t, ofd = item.type, aux[-1]
            else:
                ofd = fd_of(item, "extra_ns")
                t = nstype_of(ofd)
            if t in over:
                raise ValueError(f"extra_ns names two {t.value} namespaces")
            over[t] = ofd
        for flag, name in ((target_root, "root"), (target_cwd, "cwd")):
            if flag is False:
                continue
            if flag is True:
                if tgt.pid is None:
                    raise ValueError(f"target_{name} needs a process target, not a namespace")
                path: StrPath = f"/proc/{tgt.pid}/{name}"
            else:
                path = flag
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as err:
                if flag is not True:
                    raise
                reraise(err, f"open /proc/{tgt.pid}/{name}", tgt.pid)
            aux.append(fd)
            extra[f"{name}_fd"] = fd
        join, theirs = _targets.join_plan(tgt, types, extra, over.items())
        child_std, to_close, files = _stdio(stdin, stdout, stderr)

        program = Program(
            argv=argv,
            executables=exes,
            envp=envp,
            stdio=(child_std[0], child_std[1], child_std[2]),
            pass_fds=fds,
        )

        def start() -> tuple[int, OwnedFd]:
            child, _ = launch(
                _child.run_exec, join=join, program=program, pdeathsig=pdeathsig,
                own=[*child_std, *fds, *aux, *(fd for _, fd in join.fds),
                     *([join.pidfd] if join.pidfd >= 0 else [])],
            )  # fmt: skip
            child.close_chan()
            return child.pid, child.pidfd

        return _start_program(args, start, to_close, files)
    finally:
        for fd in aux:
            os.close(fd)
        for _, nsfd in theirs:
            if nsfd not in tgt.owned:
                nsfd.close()
        tgt.close()


def preload() -> None:
    """Import now what the process API would import on first use; no syscall.

    For ``nsprim run`` to start fast, the process API imports its heavier
    parts when first needed: the call machinery (pickle, traceback), the
    die-with-parent supervisor, target resolution for ``call_in``/``spawn_in``,
    netlink, the id-map writers, the flag enums other than ``CloneFlags``. A
    program that drops privileges in-process (setuid(2)), chroots, or
    unmounts the filesystem its Python lives on after importing nsprim calls
    this first, while the files are still readable; afterwards every nsprim
    function works without importing.
    """
    import datetime  # noqa: F401
    import locale  # noqa: F401
    import pickle  # noqa: F401
    import pwd  # noqa: F401
    import subprocess  # noqa: F401
    import traceback  # noqa: F401

    from . import _calls, _lazyflags, _supervisor, _targets, idmap, net  # noqa: F401
