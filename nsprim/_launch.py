"""Launching: fork a child on a precomputed plan and see it through its setup.

Layer 2, private: standard library and nsprim layers 0-2. This is nsprim's
one throwaway-child mechanism: :func:`launch` forks (on a thread that lives
as long as the process, see :mod:`nsprim._launcher`), runs the parent's half
of the frame protocol (id maps and time offsets while the child waits, a
pid-namespace hop, errors), and leaves nothing behind when anything fails.
:func:`fast_spawn` is the posix_spawn path for programs that need no Python
in the child; both run the same step table (:func:`nsprim._child.setup_steps`).
:mod:`nsprim.process` builds the public API on these.
"""

from __future__ import annotations

import _thread
import errno
import gc
import os
import select
import sys
import time
from collections.abc import Sequence

from . import _child
from . import syscalls as _sc
from ._child import Plan
from ._fd import OwnedFd
from ._frames import ERROR, GO, HOP, READY, Channel, decode_error, encode_error, send_frame
from ._launcher import LAUNCHER
from ._ledger import LEDGER, kill_reap
from ._nstype import NsType
from ._stdlib import environ_bytes, signal, suppress
from .errors import AccessDenied, TimeoutExpired, UnsupportedError, add_note, reraise, translate
from .flags import CloneFlags

# typing.TYPE_CHECKING without importing typing (see nsprim.process).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Optional

    from ._child import Join, Program
    from ._options import NsOptions

__all__ = ["SETUP_TIMEOUT", "Launch", "launch", "fast_eligible", "fast_spawn"]

#: How long a child may take from fork to exec (or to its callable) before it is killed.
SETUP_TIMEOUT = 60.0

_NEWPID = int(CloneFlags.NEWPID)
_NEWUSER = int(CloneFlags.NEWUSER)


class Launch:
    """A started child: its pid, pidfd and the parent's end of the channel."""

    __slots__ = ("_open", "chan", "pid", "pidfd")

    def __init__(self, pid: int, pidfd: OwnedFd, chan: Channel) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.chan = chan
        self._open = True

    def close_chan(self) -> None:
        """Close the parent's end of the channel (once: the number may be reused after)."""
        if self._open:
            self._open = False
            LEDGER.close(self.chan.fd)


def _pidns_to_return_to(flags: int) -> int:
    """An fd of the launcher thread's pid namespace if it may unshare one and come back, else -1.

    Only without a new user namespace (the pid namespace must belong to it
    otherwise), and only when setns(2) back is allowed: a caller that is
    root in a user namespace can unshare a pid namespace but not return to
    the one it came from (setns needs CAP_SYS_ADMIN over its owner).
    Probed by setns() into the thread's own active pid namespace, which the
    kernel accepts exactly when it would accept the way back.
    """
    if not flags & _NEWPID or flags & _NEWUSER:
        return -1
    try:
        fd = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        _sc.setns(fd, _NEWPID)
    except OSError:
        os.close(fd)
        return -1
    return fd


def _single_threaded() -> bool:
    """True when this process has exactly one thread (no other can hold or want the GIL).

    One stat(2): procfs gives /proc/PID/task a link count of its threads + 2
    (proc_task_getattr, as a directory with a subdirectory per thread would
    have). A count below 3 is a /proc that doesn't keep it: then the listing.
    """
    try:
        links = os.stat("/proc/self/task").st_nlink
        return links == 3 if links >= 3 else len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


#: Every signal a handler may catch (SIGKILL and SIGSTOP can't be blocked anyway).
_ALL_SIGNALS = frozenset(int(s) for s in signal.valid_signals()) - {
    int(signal.SIGKILL),
    int(signal.SIGSTOP),
}

# _signal's pthread_sigmask (see nsprim._stdlib) answers with ints; the signal
# module's turns each of the 64 into a Signals member, which cost a fork 60 us (twice).
_sigmask = signal.pthread_sigmask


def _hold_signals() -> set[signal.Signals | int]:
    """Block every signal for the fork itself; return the mask to restore on both sides.

    Like CPython's _posixsubprocess. The fork runs CPython's at-fork hooks
    (threading's, logging's) on the forking thread; when that is the main
    thread, a SIGINT landing inside one raised KeyboardInterrupt there,
    where Python reports "Exception ignored" and drops it: the caller's ^C
    was lost and its call went on. Held, the signal stays pending and is
    delivered when the mask is restored, outside the hooks. The child's
    pending set starts empty (fork(2)), so it gets nothing meant for the
    parent.
    """
    return _sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)


#: clone3 answered (False once it said ENOSYS, as under some seccomp profiles).
_clone3_ok = [True]


def _clone(flags: int, plan: Plan, body: Callable[[Plan], NoReturn]) -> tuple[int, OwnedFd]:
    """clone3(2) with all *flags* at once and a pidfd (Linux 5.3); single-threaded callers only.

    A raw clone3 returns into the eval loop before CPython's after-fork
    reset; with no other thread in the process no GIL drop request can be
    pending, so the child can't park in drop_gil() (see :func:`_fork`).
    It saves the hop's second fork for a pid namespace owned by a new user
    namespace.
    """
    held = _hold_signals()
    try:
        res = _sc.clone3(flags, pidfd=True)
    except UnsupportedError:
        raise
    except OSError as err:
        reraise(err, "clone3")
    finally:
        _sigmask(signal.SIG_SETMASK, held)  # in the parent and the child
    assert isinstance(res, tuple)
    pid, pidfd = res
    if pid == 0:
        try:
            gc.disable()
            body(plan)
        finally:
            os._exit(255)
    return pid, OwnedFd(pidfd)


#: How long the parent waits still, right after a fork, for the child's first word or exec.
_FIRST_LOOK_MS = 50


def _fork(
    flags: int,
    plan: Plan,
    body: Callable[[Plan], NoReturn],
    pidns: int = -1,
    close_chan: Optional[Callable[[], None]] = None,
) -> tuple[int, OwnedFd]:
    """Create the child with os.fork() and put it in new namespaces with unshare(2).

    Runs on the launcher thread. Why os.fork() and not a raw clone3(2)
    syscall: glibc's fork() and CPython's os.fork() prepare the child in C,
    with no bytecode between the syscall and CPython's after-fork reset. A
    raw clone3 returns into the eval loop first, and a GIL drop request that
    another thread made just before the clone then parks the child forever
    in drop_gil() waiting for a thread that does not exist in it (seen as
    "did not finish its setup in time" under 16 spawning threads).

    A new pid namespace: unshare(CLONE_NEWPID) moves only later children
    (pid_namespaces(7)). With *pidns* (see :func:`_pidns_to_return_to`) the
    launcher thread unshares it, forks the child into it as PID 1 and
    setns(2)es back at once, so that the thread keeps its own
    pid_for_children and the next launch never meets a namespace whose init
    has exited. Otherwise (a new user namespace, which must own the pid
    namespace, or no way back) the child unshares it with the rest and
    starts its successor, the PID 1, with clone3(CLONE_PARENT)
    (``plan.pid_hop``): safe there, because the child has a single thread.
    """
    child_flags = flags
    if pidns >= 0:
        try:
            _sc.unshare(_NEWPID)
        except OSError as err:
            reraise(err, "unshare")
        child_flags &= ~_NEWPID
    first_look = select.poll()
    first_look.register(plan.peer, select.POLLIN)
    try:
        held = _hold_signals()
        try:
            pid = os.fork()
        except OSError as err:  # EAGAIN at pid_max or RLIMIT_NPROC: name the call
            raise OSError(err.errno, f"fork: {err.strerror}") from None
        finally:
            _sigmask(signal.SIG_SETMASK, held)  # in the parent and the child
        if pid and close_chan is not None:
            # Until the child execs (or says something), every page the
            # parent writes is copied for it: sit still meanwhile instead of
            # running Python (waiting first took a fork of /bin/true a fifth
            # less CPU). The child's end closes here, so its exec shows as
            # end-of-file. Bounded: after _FIRST_LOOK_MS the channel's own
            # loop, which also watches the pidfd, waits.
            close_chan()
            first_look.poll(_FIRST_LOOK_MS)
        if pid == 0:
            try:
                gc.disable()
                owner = plan.setup.owner if plan.setup is not None else None
                if owner is not None:
                    # The user namespace's owner is the euid/egid of its creator.
                    step = "setgroups"
                    try:
                        os.setgroups([])
                        step = "setgid"
                        os.setgid(owner[1])
                        step = "setuid"
                        os.setuid(owner[0])
                    except BaseException as exc:
                        send_frame(plan.chan, ERROR, encode_error(exc, step))
                        os._exit(255)
                if child_flags:
                    try:
                        _sc.unshare(child_flags)
                    except BaseException as exc:
                        send_frame(plan.chan, ERROR, encode_error(exc, "unshare"))
                        os._exit(255)
                body(plan)
            finally:
                os._exit(255)
    finally:
        if pidns >= 0:
            # Probed before: this can't fail short of a kernel surprise, and
            # then the thread must not go on with a foreign pid_for_children.
            _sc.setns(pidns, _NEWPID)
    try:
        return pid, OwnedFd(_sc.pidfd_open(pid))
    except BaseException:
        kill_reap(pid, None)
        raise


def _write_setup(pid: int, setup: NsOptions) -> None:
    """The parent's part while the child waits: setgroups, id maps, time offsets."""
    from .idmap import write_gid_map, write_setgroups, write_uid_map

    op = "setgroups"
    try:
        if setup.setgroups is not None:
            write_setgroups(pid, setup.setgroups)  # type: ignore[arg-type]
        if setup.uid_map is not None:
            op = "uid_map"
            if setup.map_helpers:
                from .idmap import newuidmap

                newuidmap(pid, setup.uid_map)
            else:
                write_uid_map(pid, setup.uid_map)
        if setup.gid_map is not None:
            op = "gid_map"
            if setup.map_helpers:
                from .idmap import newgidmap

                newgidmap(pid, setup.gid_map)
            else:
                write_gid_map(pid, setup.gid_map)
        if setup.offsets is not None:
            op = "timens_offsets"
            path = f"/proc/{pid}/timens_offsets"
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, setup.offsets.encode())
            except OSError as err:
                raise OSError(err.errno, f"timens_offsets: {err.strerror}", path) from None
            finally:
                os.close(fd)
    except AccessDenied as err:
        if err.operation in ("newuidmap", "newgidmap"):
            raise  # the helper's refusal, already named and explained
        # idmap translated it for the file; name this launch's step and its hint.
        raise translate(PermissionError(err.errno, err.strerror), op, pid) from err
    except OSError as err:
        reraise(err, op, pid)


def launch(
    body: Callable[[Plan], NoReturn],
    *,
    setup: Optional[NsOptions] = None,
    program: Optional[Program] = None,
    join: Optional[Join] = None,
    own: Sequence[int] = (),
    pdeathsig: int = 0,
    set_tid: tuple[int, ...] = (),
    subreaper: bool = False,
    unshare_late: int = 0,
    until: bytes = b"",
    deadline: Optional[float] = None,
) -> tuple[Launch, Optional[bytes]]:
    """Start a child on a plan and see it through setup.

    Returns the launch and, when *until* names a frame tag (``O`` for
    :func:`call`), that frame's payload (None if the child died first).
    Without *until* it returns once the child has exec'd (channel EOF).

    On any failure the child is killed and reaped and nothing is left open.
    """
    LEDGER.reap_orphans()
    clone_flags = 0
    if setup is not None:
        clone_flags = setup.flags
        pdeathsig = setup.pdeathsig
    join_hop = join is not None and join.hop
    steps = _child.setup_steps(setup) if setup is not None else ()
    # _socket's own pair: socket.socketpair wraps both ends in socket.socket
    # objects only for us to detach them (and `nsprim run` on the fast path
    # never imports socket.py).
    import _socket

    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    pfd, cfd = a.detach(), b.detach()
    LEDGER.track(pfd, cfd)
    cfd_open = [True]

    def close_cfd() -> None:  # once: the number may be reused after
        if cfd_open[0]:
            cfd_open[0] = False
            LEDGER.close(cfd)

    def fork_job() -> tuple[int, OwnedFd, set[int], bool, str]:
        # On the launcher thread (see nsprim._launcher): the child's parent
        # thread lives as long as this process, and so does its pdeathsig.
        ppfd = LAUNCHER.pidfd() if pdeathsig else -1
        # A pid namespace owned by a new user namespace: clone3 makes both at
        # once, but only a single-threaded process may call it raw (see _fork).
        # An owner: the child changes its ids before it unshares everything itself,
        # the pid namespace too (so that the new user namespace owns it).
        owned = setup is not None and setup.owner is not None
        raw = (
            bool(clone_flags & _NEWPID and clone_flags & _NEWUSER)
            and _clone3_ok[0]
            and (not set_tid and _single_threaded())
            and not owned
        )
        pidns = -1 if set_tid or raw or owned else _pidns_to_return_to(clone_flags)
        try:
            # Without a way back for the launcher thread, the child makes the
            # pid namespace and hands over to its PID 1 (see _fork).
            pid_hop = bool(clone_flags & _NEWPID) and pidns < 0 and not raw
            plan = Plan(
                chan=cfd,
                peer=pfd,
                setup=setup,
                steps=steps,
                join=join,
                pid_hop=pid_hop,
                program=program,
                pdeathsig=pdeathsig,
                parent_pidfd=ppfd,
                foreign=LEDGER.foreign({pfd, cfd, ppfd, pidns, *own}),
                set_tid=set_tid,
                subreaper=subreaper,
                unshare_late=unshare_late,
            )
            hop = pid_hop or join_hop or bool(set_tid)
            # The successor of a hop is this thread's child (CLONE_PARENT), and
            # so is a child whose pid a ^C took between fork and return.
            tid = _thread.get_native_id()
            children = f"/proc/self/task/{tid}/children"
            sweep = hop or tid == caller
            before = _thread_children(children) if sweep else set()
            state.update(before=before, children=children, sweep=sweep and tid == caller)
            if raw:
                try:
                    pid, pidfd = _clone(clone_flags, plan, body)
                    state["child"] = (pid, pidfd)
                    return pid, pidfd, before, hop, children
                except UnsupportedError:  # ENOSYS (seccomp): fork and hop instead
                    _clone3_ok[0] = False
                    plan.pid_hop = True
                    hop = True
            pid, pidfd = _fork(clone_flags, plan, body, pidns, close_cfd)
            state["child"] = (pid, pidfd)
            return pid, pidfd, before, hop, children
        finally:
            if ppfd >= 0:
                os.close(ppfd)
            if pidns >= 0:
                os.close(pidns)

    # What fork_job got so far, for the clean-up when a signal (^C) lands
    # between the fork and the launch object: that child must not be lost.
    state: dict[str, Any] = {}
    caller = _thread.get_native_id()
    launch: Optional[Launch] = None
    hopped = False
    if deadline is None:
        deadline = time.monotonic() + SETUP_TIMEOUT
    try:
        try:
            pid, pidfd = LAUNCHER.run(fork_job, lambda r: kill_reap(r[0], r[1]))[:2]
        finally:
            close_cfd()
        launch = Launch(pid, pidfd, Channel(pfd))
        while True:
            try:
                frame = launch.chan.next(launch.pidfd.fileno(), deadline)
            except TimeoutError:
                raise TimeoutExpired(
                    SETUP_TIMEOUT if not until else max(0.0, deadline - time.monotonic()),
                    launch.pid,
                    msg=f"child {launch.pid} did not finish its setup in time",
                ) from None
            if frame is None:
                return launch, None
            tag, payload = frame
            if tag == READY:
                assert setup is not None
                _write_setup(launch.pid, setup)
                send_frame(pfd, GO)
            elif tag == HOP:
                # The intermediate joined a pid namespace and started its
                # successor as our child (CLONE_PARENT); it exits now.
                new_pid = int(payload)
                with suppress(ChildProcessError):
                    os.waitpid(launch.pid, 0)
                launch.pidfd.close()
                launch.pid = new_pid
                launch.pidfd = OwnedFd(_sc.pidfd_open(new_pid))
                hopped = True
                send_frame(pfd, GO)  # the successor may go on
            elif tag == ERROR:
                exc = decode_error(
                    payload, launch.pid, "before the callable ran" if until else "before exec"
                )
                with suppress(ChildProcessError):
                    os.waitpid(launch.pid, 0)
                launch.pidfd.close()
                launch.close_chan()
                raise exc
            elif tag == until:
                return launch, payload
    except BaseException:
        if launch is not None and not launch.pidfd.closed:
            kill_reap(launch.pid, launch.pidfd)
        elif launch is None and "child" in state:
            kill_reap(*state["child"])
        if launch is not None:
            launch.close_chan()
        else:
            LEDGER.close(pfd)
        # Only when the fork ran on this thread: the launcher thread's other
        # children belong to other launches.
        if state.get("sweep") and not hopped:
            _reap_lost_successors(state["before"], state["children"])
        raise


def _thread_children(path: str) -> set[int]:
    """The children of the thread whose ``/proc/self/task/TID/children`` is *path*."""
    # os-level: a file object (buffer, decoder) is a dozen objects more for
    # every page the next fork makes this process copy.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return set()
    try:
        data = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return set()
    finally:
        os.close(fd)
    return {int(p) for p in data.split()}


def _reap_lost_successors(before: set[int], children: str) -> None:
    # A pid-namespace hop that failed before its HOP frame arrived may have
    # left a successor we never heard of. It is the launcher thread's child
    # (CLONE_PARENT) and leaves on the closed channel; make sure of it and
    # reap it, so that nothing outlives the failed launch.
    for pid in _thread_children(children) - before:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(pid, _child.WALL)


# --- the fast path: no Python between fork and exec ---------------------------------------

# Types one thread can unshare in a multithreaded process and pass on to a
# vfork-style child. pid too: copy_process() refuses CLONE_VM only across a
# *time* namespace boundary, and unshare(CLONE_NEWPID) in the spawning
# thread makes the posix_spawn child PID 1 of the new namespace (the thread
# is a fresh one each time, so its dead pid_for_children never meets a
# second spawn). Not user (unshare(2) refuses it in a multithreaded
# process), not time (CLONE_VM into a new time namespace is EINVAL, and
# offsets need the fork path's parent/child dance), not mount_proc (a
# /proc mounted by the thread shows the thread's own pid namespace).
_FAST_TYPES = frozenset({NsType.UTS, NsType.IPC, NsType.NET, NsType.CGROUP, NsType.MNT, NsType.PID})
_fast_ok = hasattr(os, "posix_spawn")


def _candidates(setup: NsOptions, executables: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The PATH candidates to try; just one with a new pid namespace.

    Every posix_spawn attempt is a child, and the first child of a new pid
    namespace is its init: when it fails to exec and exits, the namespace
    is dead and the next attempt gets ENOMEM. So pick the program here, as
    execvpe(3) would (the first executable file, else the first file).
    """
    if not setup.flags & _NEWPID or len(executables) < 2:
        return executables
    files = [e for e in executables if os.path.isabs(e) and os.path.isfile(e)]
    runnable = [e for e in files if os.access(e, os.X_OK)]
    return tuple((runnable or files or list(executables))[:1])


def fast_eligible(setup: NsOptions, stdio: Sequence[int], watched: bool = False) -> bool:
    """Whether posix_spawn can start this program; *watched*: die_with_parent is kept by
    nsprim._supervisor.watch (posix_spawn(3) can't set PR_SET_PDEATHSIG in the child)."""
    return (
        _fast_ok
        and (setup.pdeathsig == 0 or watched)
        and not setup.sync
        and setup.root is None
        and not setup.mount_proc
        and setup.binfmt_misc is None
        and setup.owner is None
        and not setup.keep_caps
        and setup.types <= _FAST_TYPES
        and all(src < 0 or src == i or src > 2 for i, src in enumerate(stdio))
    )


# Types the calling thread itself can unshare for one spawn and leave again
# with setns(2), every one re-entered by a caller allowed to setns into it
# (probed first), and the steps that touch only those namespaces and the
# thread's own working directory. mnt and a cwd step change the fs_struct
# (root, cwd), which every thread of a process shares: the calling thread
# takes them only when it is its process's one thread (see _fs_home).
_CALLER_TYPES = frozenset(
    {NsType.UTS, NsType.IPC, NsType.NET, NsType.CGROUP, NsType.PID, NsType.MNT}
)
_CALLER_STEPS = frozenset({"sethostname", "setdomainname", "set_link_up", "mount", "chdir"})
_NEWNS = int(CloneFlags.NEWNS)
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def _ways_back(setup: NsOptions) -> Optional[list[tuple[int, int]]]:
    """This thread's namespaces of *setup*'s types as (fd, flag), if it may come back to each.

    None when setns(2) into a namespace the thread is in now is refused (a
    caller with CAP_SYS_ADMIN in a user namespace that does not own it: it
    could unshare, but never return). The kernel accepts that probe exactly
    when it would accept the way back. For pid the way back is
    pid_for_children, what unshare(2) changes.
    """
    back: list[tuple[int, int]] = []
    try:
        for t in setup.types - {NsType.MNT}:  # (mnt: _fs_home's probe)
            name = "pid_for_children" if t is NsType.PID else t.value
            fd = os.open(f"/proc/thread-self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            back.append((fd, int(t.flag)))
            _sc.setns(fd, int(t.flag))
    except OSError:
        for fd, _ in back:
            os.close(fd)
        return None
    return back


def _fs_home() -> Optional[tuple[int, int, int]]:
    """This thread's working directory, root and mount namespace as fds, if it may leave them.

    For mnt (unshare(CLONE_NEWNS) on this thread) and a cwd step. setns(2)
    back into a mount namespace sets root and cwd to its root, so both are
    kept as O_PATH fds and restored after it with fchdir(2) and chroot(2).
    None when the way back is not sure: setns(CLONE_NEWNS) is EINVAL when
    the thread's fs_struct is shared (another thread, or a process cloned
    with CLONE_FS, would see the move; unshare would take a private copy
    that can never be shared again), and EPERM without CAP_SYS_ADMIN and
    CAP_SYS_CHROOT. The probe is a setns into the mount namespace the
    thread is in, after a restore of root and cwd to themselves has shown
    that a filter or LSM lets the restore through (so a refusal changes
    nothing).
    """
    opened: list[int] = []
    try:
        for path in (".", "/"):
            opened.append(os.open(path, _O_PATH_DIR))
        opened.append(os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
        cwd, root, mnt = opened
        os.fchdir(cwd)
        try:
            os.fchdir(root)
            os.chroot(".")
        finally:
            os.fchdir(cwd)
        _sc.setns(mnt, _NEWNS)
    except OSError:
        for fd in opened:
            os.close(fd)
        return None
    _fs_back(cwd, root)
    return cwd, root, mnt


def _fs_back(cwd: int, root: int) -> None:
    """Root and working directory back to the fds :func:`_fs_home` kept (probed there)."""
    try:
        os.fchdir(root)
        os.chroot(".")
        os.fchdir(cwd)
    except OSError as err:  # pragma: no cover - refused after the probe accepted it
        raise RuntimeError(f"chroot/fchdir back to the caller's root and cwd: {err}") from err


def _go_back(back: list[tuple[int, int]]) -> None:
    """setns(2) into each saved namespace and close its fd; probed, so it can't fail short of
    a kernel surprise, and then this thread must not run on in a foreign namespace."""
    try:
        for fd, flag in back:
            _sc.setns(fd, flag)
    except OSError as err:  # pragma: no cover - refused after the probe accepted it
        raise RuntimeError(f"setns back to the caller's namespaces failed: {err}") from err
    finally:
        for fd, _ in back:
            os.close(fd)


def _nothing_else_runs_here(fs: bool = False) -> bool:
    """Whether only nsprim's code can run on this thread while it is in other namespaces.

    Trace and profile hooks run at every call: not with those. Python runs
    signal handlers on the main thread at any call, whichever thread took
    the signal: on another thread never; on the main thread only when no
    other thread can take one (this process has one thread, and it holds
    every signal while away), so that a handler runs once the thread is
    home. A main thread among others takes a thread of its own. *fs*: the
    work moves the thread's root or cwd, which all its process's threads
    share, so only a process's one thread may do it. About 3 microseconds
    (a stat of /proc/self/task, main thread or *fs* only).
    """
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return False
    if fs:
        return _single_threaded()
    return not LAUNCHER._on_main_thread() or _single_threaded()


def _handlers_ran() -> None:
    """Nothing: calling a Python function lets CPython run pending signal handlers."""


def _on_own_thread(work: Callable[[], None]) -> None:
    """Run *work* on a new thread and wait for it, even through a ^C.

    A bare ``_thread`` with a lock: threading.Thread's bookkeeping (its
    Event, the registry, join) costs a fast spawn a tenth more. *work*
    catches everything it raises; an interruption of the wait is re-raised
    once *work* is done (the caller then finds and kills what it started).
    """
    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            work()
        finally:
            done.release()

    try:
        _thread.start_new_thread(run, ())
    except RuntimeError as why:  # clone(2) of the thread refused: EAGAIN at pid_max
        msg = f"posix_spawn: can't start the thread that unshares first: {why}"
        raise OSError(errno.EAGAIN, msg) from None
    interrupted: Optional[BaseException] = None
    while True:
        try:
            done.acquire()
            break
        except BaseException as exc:  # KeyboardInterrupt from a signal handler
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


def fast_spawn(
    setup: NsOptions, program: Program, watch: Optional[Callable[[int], None]] = None
) -> tuple[int, OwnedFd]:
    """Start the program with posix_spawn(3) from a thread that unshared first.

    glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK): nothing of this
    process is copied and no Python runs in the child, which is what makes
    it several times cheaper than fork() of a big interpreter. The new
    namespaces are made by unshare(2), set up (hostname, propagation, lo,
    cwd) and inherited by the child, on one of two threads:

    * the calling thread, for uts, ipc, net, cgroup and pid with no step
      but hostname, domainname and lo, when it may setns(2) back into each
      namespace it is in (probed first) and no code but this can run on it
      meanwhile (no trace or profile hook; not the main thread of a process
      with other threads, where Python would run a signal handler): every
      signal is held from the unshare to the way back, and the program
      gets the caller's mask. Also mnt, propagation and cwd when it is its
      process's one thread and may setns back into its mount namespace,
      which resets root and cwd: both are restored from O_PATH fds with
      fchdir(2) and chroot(2) (see :func:`_fs_home`);
    * else a throwaway thread (with CLONE_FS, so its cwd and root are its
      own: mnt and cwd need that there, and it can't be undone), which then
      ends; the namespaces live on in the child. A thread costs about 0.1 ms.

    *watch*, if given, gets the program's pidfd on the spawning thread
    right after posix_spawn returns (die_with_parent's hand-over to the
    supervisor): no thread switch lies between the program's start and
    the request, so a caller killed meanwhile leaves nothing running but
    for those few microseconds. If *watch* raises, the program is killed
    and reaped and the exception propagates.
    """
    argv, pass_fds = program.argv, program.pass_fds
    actions: list[tuple[int, ...]] = []
    keep = set(pass_fds)
    for i, src in enumerate(program.stdio):
        if src >= 0:
            keep.add(src)
            actions.append((os.POSIX_SPAWN_DUP2, src, i))
    for fd in pass_fds:
        # dup2(fd, fd) clears FD_CLOEXEC in posix_spawn (glibc 2.29).
        actions.append((os.POSIX_SPAWN_DUP2, fd, fd))
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                inheritable = os.get_inheritable(fd)
            except OSError:
                continue
            if inheritable:
                actions.append((os.POSIX_SPAWN_CLOSE, fd))
    env = program.envp if program.envp is not None else environ_bytes()
    steps = _child.setup_steps(setup)
    box: list[Any] = []

    # On the calling thread (see _ways_back and _nothing_else_runs_here) every
    # signal is held on it and the collector is off from before the saved fds
    # are opened to the way back: no handler, __del__ or weakref callback runs
    # in the new namespaces, and no fd is lost. The program gets the mask the
    # caller had.
    back: Optional[list[tuple[int, int]]] = None
    home: Optional[tuple[int, int, int]] = None
    mask: Optional[set[Any]] = None
    collecting = gc.isenabled()
    fs = NsType.MNT in setup.types or any(s[0] == "chdir" for s in steps)
    if (
        setup.flags
        and setup.types <= _CALLER_TYPES
        and all(s[0] in _CALLER_STEPS for s in steps)
        and _nothing_else_runs_here(fs)
    ):
        held = _hold_signals()
        gc.disable()
        if fs:
            home = _fs_home()
        back = _ways_back(setup) if home is not None or not fs else None
        if back is not None and home is not None:
            if NsType.MNT in setup.types:
                back.append((home[2], _NEWNS))
            else:
                os.close(home[2])  # a cwd step alone: the probe was all it was for
        if back is None:  # no way back: a throwaway thread, below
            if home is not None:
                for fd in home:
                    os.close(fd)
                home = None
            if collecting:
                gc.enable()
            _sigmask(signal.SIG_SETMASK, held)
        else:
            mask = held

    def start(exe: bytes) -> int:
        if mask is not None:
            return os.posix_spawn(
                exe,
                argv,
                env,
                file_actions=actions,
                setsigdef=_child.RESTORE_SIGNALS,
                setsigmask=mask,
            )
        return os.posix_spawn(
            exe, argv, env, file_actions=actions, setsigdef=_child.RESTORE_SIGNALS
        )

    opened: list[OwnedFd] = []

    def work() -> None:
        step = _child.StepName("unshare")
        try:
            if setup.flags or steps:
                # a thread of its own unshares its cwd and root too (mnt needs it)
                _sc.unshare(setup.flags | (0 if back is not None else int(CloneFlags.FS)))
                _child.run_steps(steps, step)
            step.name = "execve"
            box.append(_child.search_exec(_candidates(setup, program.executables), start))
        except BaseException as exc:  # every failure goes back to the caller's thread
            box.append((step.name, exc))
            return
        if watch is not None:
            try:
                opened.append(OwnedFd(_sc.pidfd_open(int(box[0]))))
                watch(opened[0].fileno())
            except BaseException as exc:
                box.append(exc)  # the caller kills the program and raises it

    if back is not None:
        assert mask is not None
        try:
            try:
                work()
            finally:
                try:
                    try:
                        _go_back(back)  # mnt among them resets root and cwd: restored next
                    finally:
                        if home is not None:
                            try:
                                _fs_back(home[0], home[1])
                            finally:
                                os.close(home[0])
                                os.close(home[1])
                finally:
                    if collecting:
                        gc.enable()
                    _sigmask(signal.SIG_SETMASK, mask)
            # A handler held meanwhile (^C) runs at the next Python call: this
            # one, while the program's pid is still in hand to be killed.
            _handlers_ran()
        except BaseException:
            if box and not isinstance(box[0], tuple):
                kill_reap(int(box[0]), opened[0] if opened else None)
            raise
    elif setup.flags or steps:
        try:
            _on_own_thread(work)
        except BaseException:
            if box and not isinstance(box[0], tuple):
                # started while the caller was interrupted
                kill_reap(int(box[0]), opened[0] if opened else None)
            raise
    else:
        # Nothing to unshare or set up: the caller's thread spawns (a thread
        # costs about a sixth of a posix_spawn of /bin/true).
        work()
    if len(box) > 1:  # the watch failed: nothing may run unwatched
        kill_reap(int(box[0]), opened[0] if opened else None)
        raise box[1]
    res = box[0]
    if isinstance(res, tuple):
        step, exc = res
        if isinstance(exc, OSError):
            if step == "execve" and exc.errno in (errno.EAGAIN, errno.ENOMEM):
                # posix_spawn's clone ran out of pids or memory: no program was run.
                step = "posix_spawn"
                exc = OSError(exc.errno, f"posix_spawn: {exc.strerror}")
            elif step == "execve":
                exc = OSError(exc.errno, f"execve: {exc.strerror}", os.fsdecode(argv[0]))
            exc = translate(exc, step)
        with suppress(AttributeError):
            exc.step = step
        add_note(exc, "in the posix_spawn child before exec")  # as the fork path says
        raise exc
    pid = int(res)
    if opened:
        return pid, opened[0]
    try:
        return pid, OwnedFd(_sc.pidfd_open(pid))
    except BaseException:
        kill_reap(pid, None)
        raise
