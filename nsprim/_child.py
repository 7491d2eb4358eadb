"""Everything between fork and exec (or the callable), driven by a precomputed plan.

Layer 3, internal: imports the standard library, :mod:`nsprim.errors`,
:mod:`nsprim.syscalls`, :mod:`nsprim.flags`, :mod:`nsprim._sys` and
:mod:`nsprim.net`. Only :mod:`nsprim.process` uses it.

The parent validates every argument and encodes every path, name and map
before it forks (STYLE.md 5.6, CPython's ``_execute_child``). The child then
runs only syscalls, in a fixed order, and reports the first failure to the
parent over a close-on-exec channel as one frame ``"ExcName:hexerrno:step:detail"``
(the CPython error pipe, plus the step). A clean ``execve`` closes the
channel, so end-of-file means the program is running.

The channel is a ``SOCK_STREAM`` socketpair carrying frames of one tag byte
and a 4-byte length: ``R`` (child ready for its id maps), ``G`` (parent: maps
and offsets written, go on), ``P`` (a hop child's pid, see ``join``), ``E``
(an error) and ``O`` (a pickled :func:`nsprim.call` outcome).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Optional

from . import net as _net
from . import syscalls as _sc
from ._sys import consts as C

__all__ = [
    "Plan",
    "Join",
    "run_exec",
    "run_call",
    "send_frame",
    "recv_frame",
    "encode_error",
    "poll_ms",
    "timeout_arg",
]

_HEADER = struct.Struct("=cI")

#: Frame tags.
READY = b"R"
GO = b"G"
HOP = b"P"
ERROR = b"E"
OUTCOME = b"O"
STARTED = b"S"

#: waitpid(2) option: wait for every kind of child (<linux/wait.h> __WALL).
WALL = 0x40000000


@dataclass(frozen=True)
class Join:
    """How a child joins the namespaces of a running process (call_in, spawn_in).

    Attributes:
        pidfd: pidfd of the target, for one atomic ``setns(pidfd, mask)``.
        mask: the ``CLONE_NEW*`` types to join (already-joined ones removed).
        fds: ``(flag, nsfs fd)`` pairs, user first, for the one-by-one path.
        atomic: use the pidfd (Linux 5.8) rather than the nsfs fds.
        hop: the pid namespace is among them, so a second child (created
            with CLONE_PARENT, so it is the caller's child too) runs the work.
        root_fd: fd of the target's root to chroot into, or -1.
        cwd_fd: fd of the target's cwd to change to, or -1.
        uid, gid: ids to switch to after joining, or -1 to keep them.
    """

    pidfd: int
    mask: int
    fds: tuple[tuple[int, int], ...]
    atomic: bool
    hop: bool
    root_fd: int = -1
    cwd_fd: int = -1
    uid: int = -1
    gid: int = -1


@dataclass(frozen=True)
class Plan:
    """What the child does, in order; every value ready to pass to a syscall.

    Attributes:
        chan: the child's end of the channel (close-on-exec).
        peer: the parent's end, closed first thing in the child.
        sync: wait for the parent's ``G`` frame after sending ``R``.
        unshare_time: unshare a time namespace before ``R`` and enter it
            after ``G`` (the parent writes its offsets in between).
        pdeathsig: signal for PR_SET_PDEATHSIG, 0 for none.
        parent_pidfd: pidfd of the launcher thread (or process), polled
            after PR_SET_PDEATHSIG to close the parent-death race; -1 for none.
        join: namespaces of a running process to join first, or None.
        pid_hop: the child unshared a pid namespace (owned by its new user
            namespace); after the id maps it starts the PID 1 with
            clone3(CLONE_PARENT) and that successor goes on.
        set_tid: pids for that successor, innermost pid namespace first
            (clone3 ``set_tid``, Linux 5.5); implies the hop.
        subreaper: the callable's process is a child subreaper
            (PR_SET_CHILD_SUBREAPER) and kills and reaps every descendant
            left when the callable returns.
        unshare_late: ``CLONE_*`` flags unshared by the child itself right
            before the callable (pid and time then apply to its children).
        hostname, domainname: encoded names, or None.
        propagation: ``MS_*`` propagation for ``/`` (with MS_REC), 0 to leave it.
        root: directory to pivot into, or None.
        mount_proc: mount a fresh proc on ``/proc``.
        loopback_up: bring ``lo`` up.
        cwd: directory to change to, or None.
        argv, executables, envp: for execve; ``executables`` are the PATH
            candidates in order; ``envp`` None keeps the environment.
        stdio: source fds for 0, 1, 2 (-1: inherit).
        pass_fds: fds kept open (made inheritable) across exec.
        close_fds: close every other fd before exec.
        foreign: fds of other spawns in flight in this process (their
            channels and pipes), closed at once so that this child never
            delays their end-of-file.
    """

    chan: int
    peer: int
    sync: bool = False
    unshare_time: bool = False
    pdeathsig: int = 0
    parent_pidfd: int = -1
    join: Optional[Join] = None
    pid_hop: bool = False
    set_tid: tuple[int, ...] = ()
    subreaper: bool = False
    unshare_late: int = 0
    hostname: Optional[bytes] = None
    domainname: Optional[bytes] = None
    propagation: int = 0
    root: Optional[bytes] = None
    mount_proc: bool = False
    loopback_up: bool = False
    cwd: Optional[bytes] = None
    argv: tuple[bytes, ...] = ()
    executables: tuple[bytes, ...] = ()
    envp: Optional[dict[bytes, bytes]] = None
    stdio: tuple[int, int, int] = (-1, -1, -1)
    pass_fds: tuple[int, ...] = ()
    close_fds: bool = True
    foreign: tuple[int, ...] = ()


# --- channel ---------------------------------------------------------------------------


def send_frame(fd: int, tag: bytes, payload: bytes = b"") -> None:
    """Send one frame on the channel (blocking, complete)."""
    data = _HEADER.pack(tag, len(payload)) + payload
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:  # pragma: no cover - PEP 475 retries already
            continue
        view = view[n:]


#: The longest single poll(2) wait, in milliseconds (its timeout is a C int).
_POLL_MAX_MS = 0x7FFFFFFF


def poll_ms(deadline: Optional[float], at_least: int = 1) -> int:
    """Milliseconds from now to *deadline* (``time.monotonic()``) for poll(2); -1 for None.

    Clamped to poll's C int, so that a huge or infinite timeout waits in
    slices (callers re-check the deadline) instead of overflowing.
    """
    if deadline is None:
        return -1
    left = (deadline - time.monotonic()) * 1000 + 1
    if left >= _POLL_MAX_MS:
        return _POLL_MAX_MS
    return max(at_least, int(left))


def timeout_arg(value: object, name: str = "timeout", negative_ok: bool = False) -> Optional[float]:
    """Validate a timeout in seconds: None, or an int/float (not bool, not NaN).

    ``math.inf`` and huge values mean "no limit" in practice; they never
    overflow, because every wait goes through :func:`poll_ms`.

    Raises:
        TypeError: not None, int or float.
        ValueError: NaN, or negative where *negative_ok* is False.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be None or seconds (int or float), got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond a double: as good as infinite
        seconds = float("inf") if value > 0 else float("-inf")
    if seconds != seconds:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if seconds < 0 and not negative_ok:
        raise ValueError(f"{name} must be None or seconds >= 0, got {value!r}")
    return seconds


def _read_exact(fd: int, n: int, deadline: Optional[float]) -> Optional[bytes]:
    """Read *n* bytes; None on EOF. Raises TimeoutError past *deadline* (monotonic)."""
    chunks: list[bytes] = []
    got = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while got < n:
        if deadline is not None and deadline <= time.monotonic():
            raise TimeoutError(f"no frame on fd {fd} before the deadline")
        if not poller.poll(poll_ms(deadline)):
            continue
        b = os.read(fd, n - got)
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv_frame(fd: int, deadline: Optional[float] = None) -> Optional[tuple[bytes, bytes]]:
    """Receive one frame ``(tag, payload)``, or None at end-of-file.

    Raises:
        TimeoutError: nothing complete arrived before *deadline* (``time.monotonic()``).
    """
    head = _read_exact(fd, _HEADER.size, deadline)
    if head is None:
        return None
    tag, size = _HEADER.unpack(head)
    payload = _read_exact(fd, size, deadline) if size else b""
    if payload is None:
        return None
    return tag, payload


def encode_error(exc: BaseException, step: str) -> bytes:
    """Encode *exc* from *step* as ``Name:hexerrno:step:detail`` (CPython's error pipe)."""
    err = getattr(exc, "errno", None)
    code = err if isinstance(err, int) else 0
    if isinstance(exc, OSError):
        detail = "" if exc.filename is None else os.fsdecode(exc.filename)
    else:
        detail = str(exc)
    text = f"{type(exc).__name__}:{code:x}:{step}:{detail}"
    return text.encode("utf-8", "surrogateescape")


# --- child side ------------------------------------------------------------------------


class _Step:
    """The name of the step running now, for the error frame."""

    __slots__ = ("name",)

    def __init__(self) -> None:
        self.name = "clone3"


def _fail(chan: int, exc: BaseException, step: str, code: int = 255) -> NoReturn:
    try:
        send_frame(chan, ERROR, encode_error(exc, step))
    finally:
        os._exit(code)


def _parent_alive(pidfd: int) -> bool:
    # A pidfd polls readable once its process (or, with PIDFD_THREAD, thread) exits.
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return not p.poll(0)


def _early(plan: Plan, step: _Step) -> None:
    """Steps before the parent's go: parent-death signal, the race check, time."""
    if plan.pdeathsig:
        step.name = "prctl"
        _sc.set_pdeathsig(plan.pdeathsig)
        # The parent may have died before prctl(): then nothing would ever
        # deliver the signal (prctl(2), "PR_SET_PDEATHSIG"); getppid() can't
        # tell in a new pid namespace (it reads 0), the parent's pidfd can.
        if plan.parent_pidfd >= 0 and not _parent_alive(plan.parent_pidfd):
            os._exit(1)
    if plan.unshare_time:
        step.name = "unshare"
        _sc.unshare(C.CLONE_NEWTIME)


def _handshake(plan: Plan, step: _Step) -> None:
    # A process that changed its uids (a daemon dropping root) is not
    # dumpable, and neither is this fork of it: its /proc files then belong
    # to root and the parent can't write the maps (proc(5), "/proc/pid").
    # Be dumpable only while the parent writes them.
    step.name = "prctl"
    dumpable = _sc.get_dumpable()
    if dumpable != 1:
        _sc.set_dumpable(True)
    step.name = "sync"
    send_frame(plan.chan, READY)
    frame = recv_frame(plan.chan)
    if frame is None or frame[0] != GO:
        # The parent gave up (it closed the channel or failed to write a map).
        os._exit(1)
    if dumpable != 1:
        step.name = "prctl"
        _sc.set_dumpable(False)


def _join(join: Join, step: _Step, chan: int) -> bool:
    """Join the target's namespaces; return True in the process that goes on."""
    step.name = "setns"
    if join.atomic and join.mask:
        _sc.setns(join.pidfd, join.mask)
    elif join.fds:
        # Two passes as util-linux nsenter does: a privileged caller may enter
        # the user namespace last, an unprivileged one needs it first to gain
        # the capabilities the others check. EPERM on the first pass is retried.
        pending = list(join.fds)
        for last in (False, True):
            left = []
            for flag, fd in pending:
                try:
                    _sc.setns(fd, flag)
                except PermissionError:
                    if last:
                        raise
                    left.append((flag, fd))
            pending = left
            if not pending:
                break
    if join.root_fd >= 0:
        step.name = "chroot"
        os.fchdir(join.root_fd)
        os.chroot(".")
    if join.cwd_fd >= 0:
        step.name = "chdir"
        os.fchdir(join.cwd_fd)
    elif join.root_fd >= 0:
        os.chdir("/")
    if join.gid >= 0 or join.uid >= 0:
        step.name = "setgroups"
        # With setgroups=deny in the joined user namespace this is EPERM;
        # util-linux nsenter ignores that too.
        with contextlib.suppress(PermissionError):
            os.setgroups([])
        if join.gid >= 0:
            step.name = "setgid"
            os.setresgid(join.gid, join.gid, join.gid)
        if join.uid >= 0:
            step.name = "setuid"
            os.setresuid(join.uid, join.uid, join.uid)
    if join.hop:
        # setns(CLONE_NEWPID) moves only future children (pid_namespaces(7)).
        _hop(chan, step)
    return True


def _hop(chan: int, step: _Step, set_tid: Sequence[int] = ()) -> None:
    """Start the successor that goes on (the caller's child, by CLONE_PARENT); exit here.

    Only in a single-threaded child: a raw clone3 returns into the eval loop
    before CPython's after-fork reset (see nsprim._launch._fork).
    """
    step.name = "clone3"
    # clone3(2) takes CLONE_PARENT only with exit_signal 0; the child then
    # inherits ours (SIGCHLD), as clone(2) does.
    me = _sc.pidfd_open(os.getpid())
    pid = _sc.clone3(C.CLONE_PARENT, exit_signal=0, set_tid=set_tid)
    if pid != 0:
        send_frame(chan, HOP, str(pid).encode())
        os._exit(0)
    # Say nothing before the HOP frame is out, i.e. until the intermediate
    # is gone: the parent must learn this pid before anything else, or it
    # would reap the wrong process and leave this one a zombie (which, in
    # a pid namespace, keeps its init from ever finishing its exit).
    p = select.poll()
    p.register(me, select.POLLIN)
    p.poll()
    os.close(me)
    # Then wait for the parent's acknowledgement: if it gave up before it
    # learnt this pid (a timeout, a signal), it closes the channel and
    # this process leaves without running anything.
    frame = recv_frame(chan)
    if frame is None or frame[0] != GO:
        os._exit(1)


def _setup(plan: Plan, step: _Step) -> None:
    """Namespace setup common to programs and callables, after the go."""
    if plan.hostname is not None:
        step.name = "sethostname"
        _sc.sethostname(plan.hostname)
    if plan.domainname is not None:
        step.name = "setdomainname"
        _sc.setdomainname(plan.domainname)
    if plan.propagation:
        step.name = "mount"
        _sc.mount(None, "/", None, C.MS_REC | plan.propagation)
    if plan.root is not None:
        # The pivot_root(".", ".") idiom from pivot_root(2): no put_old
        # directory is needed, and the old root is detached at once.
        step.name = "mount"
        _sc.mount(plan.root, plan.root, None, C.MS_BIND | C.MS_REC)
        step.name = "chdir"
        os.chdir(plan.root)
        step.name = "pivot_root"
        _sc.pivot_root(".", ".")
        step.name = "umount2"
        _sc.umount(".", C.MNT_DETACH)
        step.name = "chdir"
        os.chdir("/")
    if plan.mount_proc:
        step.name = "mount_proc"
        _sc.mount("proc", "/proc", "proc", C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC)
    if plan.loopback_up:
        step.name = "set_link_up"
        _net.set_link_up("lo")
    if plan.cwd is not None:
        step.name = "chdir"
        os.chdir(plan.cwd)


def _enter_time(step: _Step) -> None:
    step.name = "setns"
    fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _sc.setns(fd, C.CLONE_NEWTIME)
    finally:
        os.close(fd)


def _prologue(plan: Plan, step: _Step) -> None:
    step.name = "close"
    os.close(plan.peer)
    for fd in plan.foreign:
        with contextlib.suppress(OSError):
            os.close(fd)
    _early(plan, step)
    if plan.join is not None:
        _join(plan.join, step, plan.chan)
        if plan.pdeathsig and plan.join.hop:
            # Fresh process after the hop: fork cleared PR_SET_PDEATHSIG.
            _early(
                Plan(
                    chan=plan.chan,
                    peer=-1,
                    pdeathsig=plan.pdeathsig,
                    parent_pidfd=plan.parent_pidfd,
                ),
                step,
            )
    if plan.sync:
        _handshake(plan, step)
    if plan.unshare_time:
        _enter_time(step)
    if plan.pid_hop or plan.set_tid:
        _hop(plan.chan, step, plan.set_tid)
        if plan.pdeathsig:
            _early(
                Plan(
                    chan=plan.chan,
                    peer=-1,
                    pdeathsig=plan.pdeathsig,
                    parent_pidfd=plan.parent_pidfd,
                ),
                step,
            )
    _setup(plan, step)


def _stdio(plan: Plan) -> None:
    srcs = list(plan.stdio)
    # A source that sits on another target (a pipe end numbered 0..2) would
    # be clobbered by an earlier dup2; lift it out of the way first (CPython
    # _posixsubprocess child_exec does the same).
    for i, src in enumerate(srcs):
        if 0 <= src <= 2 and src != i:
            srcs[i] = os.dup(src)
    for target, src in enumerate(srcs):
        if src < 0:
            continue
        if src == target:
            os.set_inheritable(src, True)
        else:
            os.dup2(src, target)  # dup2 clears FD_CLOEXEC on the target


def _close_fds(keep: Sequence[int]) -> None:
    lo = 3
    for fd in sorted(k for k in set(keep) if k >= 3):
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 0x7FFFFFFF)


def run_exec(plan: Plan) -> NoReturn:
    """In the child: run the plan and execve the program; never returns."""
    step = _Step()
    try:
        _prologue(plan, step)
        step.name = "dup2"
        _stdio(plan)
        for fd in plan.pass_fds:
            os.set_inheritable(fd, True)
        if plan.close_fds:
            step.name = "close"
            _close_fds([plan.chan, *plan.pass_fds])
        # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive
        # execve, so restore them (subprocess restore_signals=True).
        for name in ("SIGPIPE", "SIGXFSZ"):
            sig = getattr(signal, name, None)
            if sig is not None:
                signal.signal(sig, signal.SIG_DFL)
        step.name = "execve"
        env = plan.envp if plan.envp is not None else os.environb
        first: Optional[OSError] = None
        for exe in plan.executables:
            try:
                os.execve(exe, plan.argv, env)
            except OSError as err:
                # Like execvpe(3): keep looking past ENOENT/ENOTDIR, and report
                # the first other error (EACCES) if nothing runs.
                if first is None or (
                    first.errno in (errno.ENOENT, errno.ENOTDIR)
                    and err.errno not in (errno.ENOENT, errno.ENOTDIR)
                ):
                    first = err
        exc: BaseException = first or OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if isinstance(exc, OSError):
            exc.filename = os.fsdecode(plan.argv[0]) if plan.argv else None
        _fail(plan.chan, exc, step.name, 127 if getattr(exc, "errno", 0) == errno.ENOENT else 126)
    except BaseException as exc:
        _fail(plan.chan, exc, step.name)


def _reap_descendants() -> None:
    """As a child subreaper: SIGKILL every child (orphans included) and reap until none is left."""
    me = str(os.getpid())
    while True:
        try:
            with open(f"/proc/self/task/{me}/children") as f:
                kids = f.read().split()
        except OSError:
            kids = []
        for kid in kids:
            with contextlib.suppress(OSError):
                os.kill(int(kid), signal.SIGKILL)
        try:
            os.waitpid(-1, WALL)
        except ChildProcessError:
            return


def run_call(
    plan: Plan,
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    pack: Callable[[Callable[..., Any], Sequence[Any], dict[str, Any]], bytes],
) -> NoReturn:
    """In the child: run the plan, then *fn*; send its packed outcome; never returns.

    *pack* calls *fn* and returns the pickled outcome (it never raises); it
    lives in :mod:`nsprim.process` next to the code that unpacks it. A
    ``S`` frame tells the parent that setup is over and *fn* runs now.
    """
    step = _Step()
    try:
        _prologue(plan, step)
        if plan.subreaper:
            step.name = "prctl"
            _sc.set_child_subreaper(True)
        if plan.unshare_late:
            step.name = "unshare"
            _sc.unshare(plan.unshare_late)
        step.name = "sync"
        send_frame(plan.chan, STARTED)
    except BaseException as exc:
        _fail(plan.chan, exc, step.name)
    code = 0
    try:
        outcome = pack(fn, args, kwargs)
        if plan.subreaper:
            _reap_descendants()
        send_frame(plan.chan, OUTCOME, outcome)
    except BaseException:
        code = 1
    os._exit(code)
