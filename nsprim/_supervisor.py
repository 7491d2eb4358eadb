"""Die-with-parent for programs started with posix_spawn, through a supervisor process.

Layer 3, private: imports the standard library and nsprim layers 0-2 only.
:func:`nsprim.spawn` uses :func:`watch` (and :func:`want_watch`,
:func:`remember`) for ``die_with_parent`` on the fast path; :func:`spawn`
(the supervisor starts the program) is a measured alternative that nsprim
does not use: its programs would be the supervisor's children, not the
caller's (no ``waitid``, ``getppid``, rusage; the exit status travels over a
socket and is lost with the supervisor), what they inherit is the caller's
state when the supervisor started (checked per request by :func:`usable`,
~90 microseconds), and each start crosses four process hand-offs.
``scripts/bench_spawn.py`` measures both against the fork path;
tests/integration/test_supervisor.py pins their behaviour.

posix_spawn(3) (glibc's clone(CLONE_VM|CLONE_VFORK), no interpreter pages
copied) cannot set PR_SET_PDEATHSIG in the child, and a parent-death signal
follows the spawning *thread* anyway. Here one supervisor process per caller
process, started at first use, holds a pidfd of the caller (pidfd_open(2),
Linux 5.3) and polls it: when the caller's process exits, whatever killed
it and whichever thread spawned, the supervisor SIGKILLs every child it
still has, then exits.

Two ways to use it:

* :func:`spawn` sends a request over a SOCK_SEQPACKET socketpair (the
  caller's stdio, pass_fds, working directory and a reply socket travel as
  SCM_RIGHTS); a fresh thread of the supervisor unshares the thread-scoped
  types (uts, ipc, net, cgroup, mnt with CLONE_FS, and pid for its children),
  sets them up and posix_spawns. The program is the *supervisor's* child:
  the reply socket brings back its pid, a pidfd (opened by its parent before
  any reap, so never a recycled pid) and later its wait status. The caller
  gets a :class:`Supervised`, not a child it could ``waitid``.
* :func:`watch` hands the supervisor a pidfd of a child the caller started
  itself (with the posix_spawn fast path): the child stays the caller's
  (exit status, zombies, ``os.waitpid`` all unchanged) and the supervisor
  only kills it when the caller's process dies. The request travels on a
  channel of its own that the supervisor reads in batches (every 20 ms at
  most): the pidfds wait in the socket, held by the kernel, so a spawn costs
  the caller one sendmsg and the supervisor no wake-up of its own; when the
  caller dies, the queue is read first. The window: the caller killed
  (SIGKILL, or SIGTERM at its default) between the clone and the sendmsg
  leaves the child running; that is posix_spawn's own clone-to-exec time
  (a fraction of a millisecond, more under load) plus microseconds, as
  :func:`want_watch` starts the supervisor before the program and the
  spawning thread sends the request itself (``fast_spawn``'s *watch*).

The supervisor is a fresh ``python -I -S`` that the caller posix_spawns
without waiting for it (requests queue in the socket meanwhile; a caller
that dies even before the supervisor is up still has its queued children
killed), and that forks once more so that it is never the caller's child
(``os.wait()`` in the caller can't meet it). It holds no fd of the caller's
but the channel and the pidfd, ignores the terminal's job-control signals
(it stays in the caller's session and process group so that its children
do), and exits when the caller dies or, after the caller exec'd or closed
its end, when it has no children left. A caller that forks gets its own
supervisor in the child at first use. What :func:`spawn` children inherit from the supervisor rather
than from the caller is checked per request (:func:`usable`): the calling
thread's namespaces, credentials, rlimits and ignored signals must match the
snapshot taken at start; cwd, umask, environment and the signal mask are
sent with each request; everything else (cgroup, seccomp, no_new_privs,
capabilities, nice, affinity, oom_score_adj) is the start-time snapshot.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import marshal
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Sequence

from . import syscalls as _sc
from ._fd import OwnedFd
from .errors import NsprimError, TimeoutExpired
from .flags import CloneFlags, MountFlags

# typing.TYPE_CHECKING without importing typing: the supervisor's own
# interpreter starts with this module, and so does a process's first watch.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

#: Namespace types a thread of a multithreaded process can unshare and hand to
#: a CLONE_VM child: not user (unshare refuses it with several threads), not
#: time (copy_process refuses CLONE_VM across a time namespace).
THREAD_FLAGS = int(
    CloneFlags.NEWUTS
    | CloneFlags.NEWIPC
    | CloneFlags.NEWNET
    | CloneFlags.NEWCGROUP
    | CloneFlags.NEWNS
    | CloneFlags.NEWPID
)

# Signals the supervisor ignores (the terminal's, and Python's two); its
# children get them back at their default unless the caller ignores them too.
_IGNORED = tuple(
    s
    for s in (
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGHUP,
        signal.SIGTSTP,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGPIPE,
        signal.SIGXFSZ,
    )
)
_CATCHABLE = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))
_NS_FILES = ("mnt", "uts", "ipc", "net", "cgroup", "user", "pid_for_children", "time_for_children")
_MAX_MSG = 1 << 20
_MAX_FDS = 253  # SCM_MAX_FD


class SupervisorError(NsprimError):
    """The supervisor could not be started or died while it held a child."""


# --- the caller's side ------------------------------------------------------------------------


def _snapshot() -> tuple[Any, ...]:
    """What a spawned child inherits from its parent process that a request can't carry."""
    ns: list[Optional[tuple[int, int]]] = []
    for name in _NS_FILES:
        try:
            st = os.stat(f"/proc/thread-self/ns/{name}")
            ns.append((st.st_dev, st.st_ino))
        except OSError:
            ns.append(None)
    limits = tuple(resource.getrlimit(r) for r in _RLIMITS)
    ignored = tuple(s for s in _CATCHABLE if signal.getsignal(s) is signal.SIG_IGN)
    return (tuple(ns), os.getresuid(), os.getresgid(), tuple(os.getgroups()), limits, ignored)


_RLIMITS = tuple(
    getattr(resource, n)
    for n in dir(resource)
    if n.startswith("RLIMIT_") and isinstance(getattr(resource, n), int)
)


class _Handle:
    """The caller's end of one supervisor; its pid and pidfd arrive in its first message."""

    def __init__(self, sock: socket.socket, wsock: socket.socket, snap: tuple[Any, ...]) -> None:
        self.sock = sock  # spawn requests (and the hello back)
        self.wsock = wsock  # watch requests, which the supervisor reads in batches
        self.snap = snap
        self.owner = os.getpid()
        self.pid: Optional[int] = None
        self.pidfd: Optional[OwnedFd] = None
        self.dead = False

    def _hello(self, timeout: Optional[float]) -> None:
        if self.pidfd is not None or self.dead:
            return
        if not select.select([self.sock], [], [], timeout)[0]:
            if timeout:
                raise SupervisorError(f"the supervisor did not start within {timeout} s")
            return
        data, fds = _recv_fds(self.sock, 64, 1)
        if not data or not fds:
            for fd in fds:
                os.close(fd)
            self.dead = True
            return
        self.pid, self.pidfd = int(marshal.loads(data)), OwnedFd(fds[0])

    def ready(self, timeout: float = 30.0) -> int:
        """Wait for the supervisor's hello; return its pid."""
        self._hello(timeout)
        if self.pid is None:
            raise SupervisorError("the supervisor exited before it was ready")
        return self.pid

    def alive(self) -> bool:
        self._hello(0)  # never blocks: a supervisor still starting counts as alive
        if self.dead:
            return False
        return self.pidfd is None or not select.select([self.pidfd.fileno()], [], [], 0)[0]

    def close(self) -> None:
        self.sock.close()
        self.wsock.close()
        if self.pidfd is not None:
            self.pidfd.close()


_lock = threading.Lock()
_handle: Optional[_Handle] = None


def _after_fork_in_child() -> None:
    # The forked caller is another process: the supervisor watches its parent,
    # not it. Drop the inherited end without telling the supervisor anything
    # (closing our copy leaves the parent's open) and start afresh on demand.
    global _handle, _lock
    _lock = threading.Lock()
    _watched.clear()  # the parent's children, not ours
    global _dwp_spawns
    _dwp_spawns = 0
    h, _handle = _handle, None
    if h is not None:
        with contextlib.suppress(OSError):
            h.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _start() -> _Handle:
    """posix_spawn a fresh ``python -I -S`` running :func:`_main`; don't wait for it.

    A fresh interpreter, not a fork of the caller: nothing of a possibly
    multithreaded caller (locks, fds, finalizers) is copied. It gets the
    channel as fd 3 and a pidfd of the caller as fd 4; requests sent before
    it is up wait in the socket, and if the caller dies even before that,
    the supervisor finds the pidfd readable at once and kills what the
    queue names. It double-forks so that it is never the caller's child.
    """
    if not sys.executable:
        raise SupervisorError("no sys.executable to start the supervisor with")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    wours, wtheirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    snap = _snapshot()
    lifted: list[int] = []
    try:
        caller = _sc.pidfd_open(os.getpid())
        lifted.append(caller)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        lifted.append(null)
        # Above 5 so that no dup2 below overwrites a later source.
        srcs = [
            fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 6)
            for fd in (theirs.fileno(), caller, null, wtheirs.fileno())
        ]
        lifted += srcs
        chan, pid_fd, dev_null, wchan = srcs
        actions = [
            (os.POSIX_SPAWN_DUP2, dev_null, 0),
            (os.POSIX_SPAWN_DUP2, dev_null, 1),
            (os.POSIX_SPAWN_DUP2, dev_null, 2),
            (os.POSIX_SPAWN_DUP2, chan, 3),
            (os.POSIX_SPAWN_DUP2, pid_fd, 4),
            (os.POSIX_SPAWN_DUP2, wchan, 5),
        ]
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = f"import sys; sys.path.insert(0, {top!r}); import nsprim._supervisor as s; s._main()"
        mid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", "-c", code],
            os.environ,
            file_actions=actions,
            setsigmask=(),
            setsigdef=_IGNORED,
        )
    except BaseException:
        ours.close()
        wours.close()
        raise
    finally:
        theirs.close()
        wtheirs.close()
        for fd in lifted:
            os.close(fd)
    # The intermediate exits as soon as it has forked the supervisor; reap it
    # without making the caller wait for an interpreter to start.
    threading.Thread(
        target=_reap, args=(mid,), name="nsprim-supervisor-reaper", daemon=True
    ).start()
    return _Handle(ours, wours, snap)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _get(restart: bool = False) -> _Handle:
    global _handle
    with _lock:
        h = _handle
        lost = h is not None and h.owner == os.getpid() and (restart or not h.alive())
        if h is not None and (lost or h.owner != os.getpid()):
            _handle = None
            h.close()
            h = None
        if h is None:
            h = _handle = _start()
            if lost:
                _rewatch(h)
        return h


# Watched processes that have an owner object, so that a new supervisor (the
# old one was killed by someone else) can take them over.
_watched: list[tuple[weakref.ref[Any], int]] = []


def _rewatch(h: _Handle) -> None:
    live = []
    for ref, sig in _watched:
        owner = ref()
        fd = getattr(owner, "pidfd", -1) if owner is not None else -1
        if isinstance(fd, int) and fd >= 0 and getattr(owner, "returncode", None) is None:
            with contextlib.suppress(OSError):
                socket.send_fds(h.wsock, [marshal.dumps(("watch", sig))], [fd], socket.MSG_NOSIGNAL)
                live.append((ref, sig))
    _watched[:] = live


def shutdown() -> None:
    """Close this process's end of its supervisor (for tests and clean-ups).

    The supervisor then takes no more requests and exits once the children
    it holds have exited (or kills them when this process dies first).
    """
    global _handle
    with _lock:
        h, _handle = _handle, None
    if h is not None:
        h.close()


def held_fds() -> frozenset[int]:
    """The fds this process holds for its supervisor (for leak checks in tests)."""
    h = _handle
    if h is None or h.owner != os.getpid():
        return frozenset()
    fds = {h.sock.fileno(), h.wsock.fileno()}
    if h.pidfd is not None and not h.pidfd.closed:
        fds.add(h.pidfd.fileno())
    return frozenset(fd for fd in fds if fd >= 0)


def supervisor_pid() -> Optional[int]:
    """The pid of this process's supervisor (waiting for it to be up), None before first use."""
    h = _handle
    return h.ready() if h is not None and h.owner == os.getpid() else None


def usable(flags: int = 0) -> bool:
    """Whether :func:`spawn` can start a child that inherits what the caller would give it.

    True when *flags* are thread-scoped types only and the calling thread's
    namespaces, ids, rlimits and ignored signals match the supervisor's
    snapshot (taken when it started; one is started here if needed).
    """
    if flags & ~THREAD_FLAGS:
        return False
    return _snapshot() == _get().snap


def _recv_fds(sock: socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """recvmsg with MSG_CMSG_CLOEXEC (socket.recv_fds drops its flags argument before 3.12)."""
    msg, anc, _, _ = sock.recvmsg(bufsize, socket.CMSG_LEN(maxfds * 4), socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % arr.itemsize])
            fds += list(arr)
    return msg, fds


def _send(h: _Handle, payload: bytes, fds: Sequence[int]) -> None:
    if len(fds) > _MAX_FDS:
        raise ValueError(f"at most {_MAX_FDS - 4} pass_fds can travel to the supervisor")
    socket.send_fds(h.sock, [payload], list(fds), socket.MSG_NOSIGNAL)


def watch(
    pidfd: int, sig: int = signal.SIGKILL, owner: Optional[object] = None, start: bool = True
) -> None:
    """Have the supervisor send *sig* to the process behind *pidfd* when the caller dies.

    The pidfd is duplicated into the supervisor (SCM_RIGHTS); the process
    stays the caller's child. With *owner* (an object with ``pidfd`` and
    ``returncode``, such as an ``NsProcess``), a supervisor started because
    the previous one was killed takes the process over at its start; until
    then (the next request) the process would not die with the caller.
    With *start* false, only a supervisor that is running already is asked
    (for a thread that unshared namespaces, where a supervisor started
    would live in them).

    Raises:
        SupervisorError: no supervisor can be reached.
    """
    payload = marshal.dumps(("watch", int(sig)))
    for attempt in (0, 1):
        h = _get(restart=attempt == 1) if start else _running()
        try:
            socket.send_fds(h.wsock, [payload], [pidfd], socket.MSG_NOSIGNAL)
        except (BrokenPipeError, ConnectionResetError):
            if not start:
                raise SupervisorError("the supervisor is gone") from None
            continue
        if owner is not None:
            remember(owner, sig)
        return
    raise SupervisorError("the supervisor died twice in a row")


def _running() -> _Handle:
    """This process's supervisor if it runs; never starts one."""
    with _lock:
        h = _handle
    if h is None or h.owner != os.getpid() or not h.alive():
        raise SupervisorError("no running supervisor to hand the program to")
    return h


_dwp_spawns = 0


def want_watch() -> bool:
    """Whether a die-with-parent spawn should take the posix_spawn fast path + :func:`watch`.

    False for the first such spawn of a process (which takes the fork path),
    True from the second on: a one-shot program (``nsprim run``) never pays
    the supervisor's start (~1 ms of the caller's time, its interpreter's
    start in the background), a program that spawns again does once. When
    it says True the supervisor has been started (or is still alive), so
    that its start is not part of the program's unwatched time.
    """
    global _dwp_spawns
    _dwp_spawns += 1
    h = _handle
    if not (_dwp_spawns > 1 or (h is not None and h.owner == os.getpid())):
        return False
    # Start the supervisor now, before the program exists: started between
    # posix_spawn and the hand-over, its start (~1.4 ms of the caller's time,
    # more in a fresh fork) was a window in which a SIGTERM of the caller
    # left the program running. No supervisor: the fork path.
    try:
        _get()
    except (SupervisorError, OSError):
        return False
    return True


def remember(owner: object, sig: int = signal.SIGKILL) -> None:
    """Name the object (``pidfd``, ``returncode``) behind a process given to :func:`watch`.

    For a caller that creates that object only after the watch request (the
    pidfd must reach the supervisor as early as possible): a supervisor
    restarted after someone killed the previous one takes it over.
    """
    with _lock:
        _watched[:] = [(r, s) for r, s in _watched if r() is not None]
        _watched.append((weakref.ref(owner), int(sig)))


class Supervised:
    """A program started by the supervisor: its child, seen through a pidfd and a status channel.

    ``pid``, ``pidfd``, ``returncode``; :meth:`poll`, :meth:`wait`,
    :meth:`send_signal`, :meth:`kill`, :meth:`close`. The wait status comes
    from the supervisor, which reaps the program as soon as it exits (no
    zombie, whether or not anyone waits). If the supervisor itself dies
    first, the program is killed (it could no longer be waited for or
    die with the caller) and :meth:`wait` raises :class:`SupervisorError`.
    """

    def __init__(self, pid: int, pidfd: OwnedFd, chan: socket.socket) -> None:
        self.pid = pid
        self._pidfd: Optional[OwnedFd] = pidfd
        self._chan: Optional[socket.socket] = chan
        self.returncode: Optional[int] = None
        self._lock = threading.Lock()

    @property
    def pidfd(self) -> int:
        """The pidfd (close-on-exec; polls readable at exit); -1 once waited for."""
        fd = self._pidfd
        return -1 if fd is None or fd.closed else fd.fileno()

    def _status(self, timeout: Optional[float]) -> Optional[int]:
        chan = self._chan
        if chan is None:
            return self.returncode
        if timeout is not None and not select.select([chan], [], [], max(timeout, 0))[0]:
            return None
        data = chan.recv(64)
        if not data:
            # The supervisor died before it could report this program's end.
            pidfd = self._pidfd
            if pidfd is not None and not pidfd.closed:
                with contextlib.suppress(ProcessLookupError):
                    _sc.pidfd_send_signal(pidfd, signal.SIGKILL)
            self.close()
            raise SupervisorError(f"the supervisor of pid {self.pid} died; its exit status is lost")
        kind, status = marshal.loads(data)
        assert kind == "exit"
        self.returncode = os.waitstatus_to_exitcode(status)
        self.close()
        return self.returncode

    def poll(self) -> Optional[int]:
        """The exit code if the program has ended (negative: killed by that signal), else None."""
        with self._lock:
            return self._status(0)

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the program to end and return its exit code.

        Raises:
            nsprim.TimeoutExpired: still running after *timeout* seconds.
            SupervisorError: the supervisor died first (the program was killed).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                code = self._status(left)
                if code is not None:
                    return code
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutExpired(timeout or 0.0, self.pid)

    def send_signal(self, sig: int) -> None:
        """Send *sig* through the pidfd (pidfd_send_signal(2), Linux 5.1); no-op once reaped."""
        fd = self._pidfd
        if fd is None or fd.closed or self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            _sc.pidfd_send_signal(fd, sig)

    def kill(self) -> None:
        """SIGKILL the program."""
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Drop the pidfd and the status channel (the supervisor still reaps the program)."""
        chan, self._chan = self._chan, None
        if chan is not None:
            chan.close()
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            fd.close()

    def __enter__(self) -> Supervised:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.returncode is None and self._chan is not None:
            self.kill()
            with contextlib.suppress(SupervisorError):
                self.wait()
        self.close()


def spawn(
    argv: Sequence[bytes],
    *,
    executables: Optional[Sequence[bytes]] = None,
    flags: int = 0,
    hostname: Optional[bytes] = None,
    domainname: Optional[bytes] = None,
    propagation: int = 0,
    loopback_up: bool = False,
    cwd: Optional[bytes] = None,
    env: Optional[dict[bytes, bytes]] = None,
    stdio: Sequence[int] = (-1, -1, -1),
    pass_fds: Sequence[int] = (),
) -> Supervised:
    """Start *argv* as a child of the supervisor, in new thread-scoped namespaces.

    *stdio*: the fds the program gets as 0, 1, 2 (-1: the caller's own);
    *pass_fds* keep their numbers; every other fd is closed. *executables*:
    the paths to try in turn (default: ``argv[0]``). Call :func:`usable`
    first: this function does not check the snapshot.

    Raises:
        ValueError: flags outside :data:`THREAD_FLAGS`, too many fds.
        OSError: the step that failed (``err.step``: unshare, sethostname,
            mount, chdir, execve ...), as the fork path raises it.
        SupervisorError: the supervisor could not be reached.
    """
    if flags & ~THREAD_FLAGS:
        raise ValueError("the supervisor unshares thread-scoped types only")
    sigmask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    sigdef = tuple(
        int(s) for s in _IGNORED if s in _RESET or signal.getsignal(s) is not signal.SIG_IGN
    )
    mask = os.umask(0o22)
    os.umask(mask)
    targets = [i for i, fd in enumerate(stdio) if fd >= 0]
    closed = [i for i, fd in enumerate(stdio) if fd < 0 and not _is_open(i)]
    fds = [fd for fd in stdio if fd >= 0]
    inherit = [i for i, fd in enumerate(stdio) if fd < 0 and i not in closed]
    payload = marshal.dumps(
        (
            "spawn",
            tuple(argv),
            tuple(executables or (argv[0],)),
            dict(os.environb if env is None else env),
            flags,
            hostname,
            domainname,
            propagation,
            loopback_up,
            cwd,
            mask,
            tuple(int(s) for s in sigmask),
            sigdef,
            tuple(targets + inherit),
            closed,
            tuple(pass_fds),
        )
    )
    if len(payload) > _MAX_MSG:
        raise ValueError("argv and environment are too large for the supervisor's channel")
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    here = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        all_fds = [theirs.fileno(), here, *fds, *inherit, *pass_fds]
        for attempt in (0, 1):
            h = _get(restart=attempt == 1)
            try:
                _send(h, payload, all_fds)
                break
            except (BrokenPipeError, ConnectionResetError):
                continue
        else:
            raise SupervisorError("the supervisor died twice in a row")
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
        os.close(here)
    try:
        data, got = _recv_fds(mine, 4096, 1)
        if not data:
            raise SupervisorError("the supervisor died while starting the program")
        reply = marshal.loads(data)
        if reply[0] == "exc":
            raise SupervisorError(f"the supervisor failed at {reply[1]}: {reply[2]}: {reply[3]}")
        if reply[0] == "err":
            for fd in got:
                os.close(fd)
            _, step, num, msg, filename = reply
            err = OSError(num, msg, filename) if filename else OSError(num, msg)
            with contextlib.suppress(AttributeError):
                err.step = step  # type: ignore[attr-defined]
            raise err
        return Supervised(int(reply[1]), OwnedFd(got[0]), mine)
    except BaseException:
        mine.close()
        raise


_RESET = (signal.SIGPIPE, signal.SIGXFSZ)  # reset even when the caller ignores them


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# --- the supervisor's side --------------------------------------------------------------------


class _Child:
    """A process the supervisor kills when the caller dies; *reply* set: its own child."""

    __slots__ = ("pid", "pidfd", "reply", "sig")

    def __init__(self, pid: int, pidfd: int, reply: Optional[socket.socket], sig: int) -> None:
        self.pid, self.pidfd, self.reply, self.sig = pid, pidfd, reply, sig


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.children: dict[int, _Child] = {}  # its own, by pidfd
        self.watched: dict[int, int] = {}  # the caller's (watch), pidfd -> signal
        self.inflight = 0
        self.dying = False
        self.idle = threading.Condition(self.lock)
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def add(self, child: _Child) -> None:
        with self.lock:
            if self.dying:
                with contextlib.suppress(OSError):
                    _sc.pidfd_send_signal(child.pidfd, child.sig)
            self.children[child.pidfd] = child
        with contextlib.suppress(BlockingIOError):
            os.write(self.wake_w, b"x")


def _main() -> None:  # pragma: no cover - runs in the supervisor's interpreter
    """Entry point of ``python -I -S -c``: fork once more, so the caller never has us as a child."""
    if os.fork() != 0:
        os._exit(0)
    _serve(3, 4, 5)


def _serve(sock: int, caller: int, wsock: int) -> None:  # pragma: no cover - supervisor
    """The supervisor's main loop; never returns."""
    try:
        for sig in _IGNORED:
            signal.signal(sig, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd, inheritable=False)
        keep = sorted({sock, caller, wsock})
        lo = 3
        for fd in keep:
            os.closerange(lo, fd)
            lo = fd + 1
        os.closerange(lo, 1 << 20)
        st = _State()
        chan = socket.socket(fileno=sock)
        me = _sc.pidfd_open(os.getpid())
        # The caller may be dead already (EPIPE): its queued requests still count.
        with contextlib.suppress(OSError):
            socket.send_fds(chan, [marshal.dumps(os.getpid())], [me], socket.MSG_NOSIGNAL)
        os.close(me)
        _loop(st, chan, caller, socket.socket(fileno=wsock))
    finally:
        os._exit(0)


# Watch requests are read in batches, at most this often: the pidfds wait in
# the socket meanwhile (the kernel holds them), so a burst of spawns costs the
# supervisor one wake-up instead of one each, and the CPU stays the caller's.
_WATCH_BATCH = 0.02


def _loop(
    st: _State, sock: socket.socket, caller: int, wsock: socket.socket
) -> None:  # pragma: no cover - runs in the supervisor
    reading = wreading = True
    wsock.setblocking(False)
    rest_until = 0.0
    while True:
        with st.lock:
            kids = list(st.children.values())
            if not (reading or wreading or kids or st.watched or st.inflight):
                return
        p = select.poll()
        p.register(caller, select.POLLIN)
        p.register(st.wake_r, select.POLLIN)
        if reading:
            p.register(sock.fileno(), select.POLLIN)
        timeout: Optional[float] = None
        if wreading:
            left = rest_until - time.monotonic()
            if left <= 0:
                p.register(wsock.fileno(), select.POLLIN)
            else:
                timeout = left * 1000 + 1
        else:  # no more watch requests: wait for the watched ones themselves
            for fd in st.watched:
                p.register(fd, select.POLLIN)
        for k in kids:
            p.register(k.pidfd, select.POLLIN)
        for fd, _ in p.poll(timeout):
            if fd == caller:
                # Whatever the caller sent before it died is still queued: take
                # it in first (watch: killed on arrival, spawn: refused).
                with st.lock:
                    st.dying = True
                if reading:
                    sock.setblocking(False)
                    while _request(st, sock):
                        pass
                if wreading:
                    _watch_batch(st, wsock)
                _die(st)
                return
            if fd == st.wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(st.wake_r, 4096)
            elif fd == sock.fileno():
                reading = _request(st, sock)
            elif fd == wsock.fileno():
                wreading = _watch_batch(st, wsock)
                _prune(st)
                rest_until = time.monotonic() + _WATCH_BATCH
            elif fd in st.watched:
                del st.watched[fd]
                os.close(fd)
            else:
                _reaped(st, fd)


def _watch_batch(st: _State, wsock: socket.socket) -> bool:  # pragma: no cover - supervisor
    """Take in every queued watch request; False once the caller closed its end."""
    retried = False
    while True:
        try:
            data, fds = _recv_fds(wsock, 64, 4)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            # The caller died with our hello unread: reported once, then the queue.
            if retried:
                return False
            retried = True
            continue
        except OSError:
            return False
        if not data:
            return False
        sig = int(marshal.loads(data)[1])
        for fd in fds[1:]:
            os.close(fd)
        if fds:
            with st.lock:
                if st.dying:
                    with contextlib.suppress(OSError):
                        _sc.pidfd_send_signal(fds[0], sig)
                st.watched[fds[0]] = sig


def _prune(st: _State) -> None:  # pragma: no cover - runs in the supervisor
    """Forget the watched processes that have exited (their pidfds poll readable)."""
    if not st.watched:
        return
    p = select.poll()
    for fd in st.watched:
        p.register(fd, select.POLLIN)
    for fd, _ in p.poll(0):
        del st.watched[fd]
        os.close(fd)


def _die(st: _State) -> None:  # pragma: no cover - runs in the supervisor
    with st.lock:
        st.dying = True
        for k in st.children.values():
            with contextlib.suppress(OSError):
                _sc.pidfd_send_signal(k.pidfd, k.sig)
        for fd, sig in st.watched.items():
            with contextlib.suppress(OSError):
                _sc.pidfd_send_signal(fd, sig)
        # A spawn in flight kills its child itself once it sees `dying`.
        st.idle.wait_for(lambda: st.inflight == 0, timeout=5)


def _reaped(st: _State, pidfd: int) -> None:  # pragma: no cover - runs in the supervisor
    with st.lock:
        k = st.children.pop(pidfd, None)
    if k is None:
        return
    if k.reply is not None:
        _, status = os.waitpid(k.pid, 0)
        with contextlib.suppress(OSError):
            k.reply.send(marshal.dumps(("exit", status)), socket.MSG_NOSIGNAL)
        k.reply.close()
    os.close(k.pidfd)


def _request(st: _State, sock: socket.socket) -> bool:  # pragma: no cover - supervisor
    try:
        data, fds = _recv_fds(sock, _MAX_MSG, _MAX_FDS)
    except ConnectionResetError:
        # The caller died with our hello unread: the kernel reports ECONNRESET
        # once, then hands out what the caller queued before it died.
        try:
            data, fds = _recv_fds(sock, _MAX_MSG, _MAX_FDS)
        except OSError:
            return False
    except OSError:
        return False
    if not data:
        # The caller closed its end (it exec'd, or closed every fd): no more
        # requests; keep watching the children until the caller's process dies.
        return False
    req = marshal.loads(data)
    with st.lock:
        if st.dying:
            for fd in fds:
                os.close(fd)
            return True
        st.inflight += 1
    if req[4]:  # namespaces to unshare: a fresh thread, which takes them to its grave
        threading.Thread(target=_spawn_worker, args=(st, req, fds), daemon=True).start()
    else:  # nothing to unshare: the main thread spawns (its cwd/umask are only its own)
        _spawn_worker(st, req, fds)
    return True


def _spawn_worker(st: _State, req: tuple[Any, ...], fds: list[int]) -> None:  # pragma: no cover
    (_, argv, executables, env, flags, hostname, domainname, propagation, loopback_up, cwd,
     mask, sigmask, sigdef, targets, closed, pass_fds) = req  # fmt: skip
    reply = socket.socket(fileno=fds[0])
    here, srcs = fds[1], fds[2:]
    lifted: list[int] = []
    step = "unshare"
    try:
        try:
            _sc.unshare(flags | int(CloneFlags.FS))
            step = "chdir"
            os.fchdir(here)
            os.umask(mask)
            if hostname is not None:
                step = "sethostname"
                _sc.sethostname(hostname)
            if domainname is not None:
                step = "setdomainname"
                _sc.setdomainname(domainname)
            if propagation:
                step = "mount"
                _sc.mount(None, "/", None, int(MountFlags.REC) | propagation)
            if loopback_up:
                from . import net as _net

                step = "set_link_up"
                _net.set_link_up("lo")
            if cwd is not None:
                step = "chdir"
                os.chdir(cwd)
            step = "dup2"
            want = [*targets, *pass_fds]
            floor = max([2, *want]) + 1
            # Lift every source above every target so no dup2 clobbers a later source.
            lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in srcs]
            actions: list[tuple[int, ...]] = [
                (os.POSIX_SPAWN_DUP2, src, dst) for src, dst in zip(lifted, want)
            ]
            actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in closed]
            step = "execve"
            pid = _posix_spawn(executables, argv, env, actions, sigmask, sigdef)
        except BaseException as exc:
            msg: tuple[Any, ...]
            if isinstance(exc, OSError) and step == "execve":
                msg = ("err", step, exc.errno, f"execve: {exc.strerror}", os.fsdecode(argv[0]))
            elif isinstance(exc, OSError):
                name = exc.filename if isinstance(exc.filename, (str, bytes)) else None
                msg = ("err", step, exc.errno, exc.strerror, name)
            else:
                msg = ("exc", step, type(exc).__name__, str(exc), None)
            with contextlib.suppress(OSError):
                reply.send(marshal.dumps(msg), socket.MSG_NOSIGNAL)
            reply.close()
            return
        pidfd = _sc.pidfd_open(pid)
        with contextlib.suppress(OSError):
            socket.send_fds(reply, [marshal.dumps(("ok", pid))], [pidfd], socket.MSG_NOSIGNAL)
        st.add(_Child(pid, pidfd, reply, signal.SIGKILL))
    finally:
        for fd in (here, *srcs, *lifted):
            with contextlib.suppress(OSError):
                os.close(fd)
        with st.lock:
            st.inflight -= 1
            st.idle.notify_all()


def _posix_spawn(
    executables: Sequence[bytes],
    argv: Sequence[bytes],
    env: dict[bytes, bytes],
    actions: list[tuple[int, ...]],
    sigmask: Sequence[int],
    sigdef: Sequence[int],
) -> int:  # pragma: no cover - runs in the supervisor
    first: Optional[OSError] = None
    for exe in executables:
        try:
            return os.posix_spawn(
                exe, list(argv), env, file_actions=actions, setsigmask=sigmask, setsigdef=sigdef
            )
        except OSError as err:
            if first is None or (
                first.errno in (errno.ENOENT, errno.ENOTDIR)
                and err.errno not in (errno.ENOENT, errno.ENOTDIR)
            ):
                first = err
    raise first or OSError(errno.ENOENT, os.strerror(errno.ENOENT))
