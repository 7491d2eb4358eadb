"""The forker: a small helper process that starts the fork path's programs for the caller.

Layer 3, private: imports the standard library and nsprim layers 0-2 only.
This is the caller's side; :mod:`nsprim._forkerd` is the loop the helper
runs. :func:`nsprim.spawn` calls :func:`spawn` for a program that needs the
fork path (a new user or time namespace, ``mount_proc``, ``root`` ...), from
a process's second such spawn on; ``None`` means "take the fork path".

Why. A fork of the caller write-protects every page of the caller, and
each page its Python code writes afterwards faults again (about 280 per
spawn for nsprim's launch, wait and bookkeeping); the child copies every
page it touches before its exec, and the exec tears down a copy of the
caller's page tables. So the fork path costs more the larger the caller.
A fresh ``python -I -S`` that imports almost nothing has a few MB: its
clone and its child's exec cost the same whatever the caller's size.

How the programs stay the caller's own. The helper is the caller's child,
started on the fork path by the thread that forks the fork path's children
(the main thread or nsprim's launcher thread, which live as long as the
process; see :mod:`nsprim._launcher`). It creates each program with
clone3(CLONE_PARENT) (Linux 5.3; every namespace flag at once, so a new pid
namespace needs no hop), so the program's parent is that thread, exactly as
on the fork path: ``waitpid``, exit statuses, ``getppid``, rusage and the
parent-death signal (PR_SET_PDEATHSIG, with the same race check on that
thread's pidfd) are unchanged, and the pidfd comes back over the channel
(SCM_RIGHTS). The caller then runs the frame protocol with the child as
:func:`nsprim._launch.launch` does (id maps, time offsets, errors, exec).

What the program inherits. A forked child gets the caller's state at the
fork; the helper's children get the helper's, which is the caller's when
the helper started. So each request carries what changes often (working
directory as an fd, umask, signal mask, ignored signals, environment,
stdio and ``pass_fds`` as SCM_RIGHTS), and :func:`_status` and
:func:`_rest` compare the rest, on the forking thread, with the snapshot
taken when the helper started: every line of ``/proc/thread-self/status``
that a child inherits (ids, groups, capability sets, no_new_privs, seccomp
mode and filter count, CPU and memory affinity), the thread's namespaces
and root, the rlimits, the cgroup, ``oom_score_adj``, the nice value, the
scheduling policy, the process group, session and terminal, the LSM label
and the audit login id. :func:`_rest` runs while the helper clones; the
child waits for the caller's go, which comes only when all of it matched.
Any difference retires the helper (a new one starts, with a new snapshot)
and the spawn takes the fork path. Not compared: securebits, keyrings,
personality, timer slack and I/O priority (rarely changed by a running
program; turn the helper off with ``nsprim.process.use_forker(False)``
when they are). No ``/proc``: no helper.

What a user sees. One more child process of the caller, a ``python3``
(comm ``nsprim-forker``), started at the second fork-path program spawn of
a process (never by a single spawn, so ``nsprim run`` never starts one);
until it is up, the fork path is taken. It ignores the terminal's signals,
dies with the thread that started it (PR_SET_PDEATHSIG) and exits when the
caller closes its end (:func:`shutdown`, exit, exec). Like the fork server
and the resource tracker of :mod:`multiprocessing`, a caller looping on
``os.wait()`` until ECHILD meets it; ``nsprim.process.helper_pids()`` names
it, and ``use_forker(False)`` or ``NSPRIM_FORKER=0`` turns it off.

Errors. A refused clone3 (ENOSYS, EPERM, ENOSPC ...) is answered "take the
fork path": that path meets the same refusal and reports it in its own
words. Everything after the clone (id maps, the child's setup, exec) reads
as on the fork path, from the same frames. A helper that dies is replaced
at a later spawn; three that die before their hello turn it off for the
process. The one window: a helper killed between its clone and its answer
leaves that program running without nsprim knowing its pid (it is still the
caller's child, and its parent-death signal still holds).
"""

from __future__ import annotations

import _thread
import errno
import marshal
import os
import select
import socket
import sys

from . import _child
from . import syscalls as _sc
from ._fd import OwnedFd
from ._forkerd import LEAN_OPS, clone3_number, encode_setup
from ._frames import ERROR, GO, READY, Channel, decode_error, send_frame
from ._launcher import LAUNCHER
from ._ledger import kill_reap
from ._stdlib import suppress
from .errors import NsprimError, TimeoutExpired

# typing.TYPE_CHECKING without importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from ._child import Program
    from ._options import NsOptions

__all__ = ["helper_pids", "held_fds", "shutdown", "spawn", "use"]

_MAX_FDS = 250  # SCM_MAX_FD is 253: cwd, the child's channel, three stdio, the rest pass_fds
_MAX_MSG = 1 << 20
#: Forkers that may die before saying hello before a process stops starting them.
_MAX_FAILED_STARTS = 3  # (use_forker(True) forgets them)

#: Lines of /proc/PID/status that a forked child inherits from its parent.
_STATUS_KEYS = (
    b"Uid",
    b"Gid",
    b"Groups",
    b"CapInh",
    b"CapPrm",
    b"CapEff",
    b"CapBnd",
    b"CapAmb",
    b"NoNewPrivs",
    b"Seccomp",
    b"Seccomp_filters",
    b"Speculation_Store_Bypass",
    b"SpeculationIndirectBranch",
    b"Cpus_allowed",
    b"Mems_allowed",
)
_NS_FILES = ("mnt", "uts", "ipc", "net", "cgroup", "user", "pid_for_children", "time_for_children")
# Files read whole; a missing one reads as b"" both times.
_PROC_FILES = (
    "/proc/self/limits",
    "/proc/self/cgroup",
    "/proc/self/oom_score_adj",
    "/proc/self/loginuid",
    "/proc/thread-self/attr/current",
)
_RESTORED = sum(1 << (int(s) - 1) for s in _child.RESTORE_SIGNALS)


def _read(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _status() -> tuple[tuple[bytes, ...], int, int, int]:
    """The calling thread's status lines a child inherits, its umask and signal masks.

    Returns (the compared lines, umask, ignored-signal mask, blocked-signal
    mask); the last three travel with each request.
    """
    kept = []
    umask = 0o022
    ign = blk = 0
    status = _read("/proc/thread-self/status")
    if not status:
        # No /proc (a chroot, a sandbox): nothing to compare, so no forker.
        raise OSError(errno.ENOENT, "no /proc/thread-self/status to compare with")
    for line in status.splitlines():
        key, _, value = line.partition(b":")
        if key in _STATUS_KEYS:
            kept.append(line)
        elif key == b"Umask":
            umask = int(value, 8)
        elif key == b"SigIgn":
            ign = int(value, 16)
        elif key == b"SigBlk":
            blk = int(value, 16)
    return tuple(kept), umask, ign, blk


def _rest() -> tuple[Any, ...]:
    """The rest of what the calling thread's next child would inherit and no request carries.

    Namespaces, root, process group, session, terminal, nice value,
    scheduling policy, rlimits, cgroup, oom_score_adj, audit login id and
    LSM label. Read while the forker clones (see :func:`_ask`).
    """
    ns: list[Optional[tuple[int, int]]] = []
    for name in _NS_FILES:
        try:
            st = os.stat(f"/proc/thread-self/ns/{name}")
            ns.append((st.st_dev, st.st_ino))
        except OSError:
            ns.append(None)
    try:
        st = os.stat("/proc/thread-self/root")
        root: Optional[tuple[int, int]] = (st.st_dev, st.st_ino)
    except OSError:
        root = None
    stat = _read("/proc/thread-self/stat")
    fields = stat[stat.rfind(b")") + 2 :].split()
    # pgrp, session, tty_nr (5-7), nice (19), rt_priority and policy (40-41)
    sched = tuple(fields[i - 3] for i in (5, 6, 7, 19, 40, 41) if i - 3 < len(fields))
    files = tuple(_read(p) for p in _PROC_FILES)
    return (tuple(ns), root, sched, files)


# --- the caller's side ------------------------------------------------------------------------


class _Handle:
    """The caller's end of one forker."""

    def __init__(
        self, sock: socket.socket, pid: int, pidfd: OwnedFd, snap: tuple[Any, ...]
    ) -> None:
        self.sock = sock
        self.pid = pid
        self.pidfd = pidfd
        self.snap = snap
        self.owner = os.getpid()
        self.ready = False
        self.seq = 0

    def up(self) -> bool:
        """True once the forker said hello (never blocks)."""
        if not self.ready:
            if not select.select([self.sock], [], [], 0)[0]:
                return False
            if self.sock.recv(16) != b"hello":
                raise OSError(errno.EPIPE, "the forker exited before it was ready")
            self.ready = True
        return True

    def close(self) -> None:
        """Close our end and reap the forker (it exits on the end-of-file)."""
        self.sock.close()
        if self.owner == os.getpid():
            with suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.pidfd.close()


_lock = _thread.allocate_lock()
_handle: Optional[_Handle] = None
#: Off with NSPRIM_FORKER=0 in the environment (for programs that can't call use_forker).
_enabled = [os.environ.get("NSPRIM_FORKER") != "0"]
#: Forkers of this process that exited before their hello or during a request.
_failed = [0]


def use(on: bool) -> None:
    """Turn the forker on or off for this process (off: shut it down now)."""
    if not isinstance(on, bool):
        raise TypeError(f"use_forker takes a bool, got {on!r}")
    _enabled[0] = on
    if on:
        _failed[0] = 0
    else:
        shutdown()


def shutdown() -> None:
    """Close this process's end of its forker and reap it (for tests and clean-ups).

    Waits for a request in flight on another thread to end first.
    """
    global _handle
    with _lock:
        h, _handle = _handle, None
        if h is not None and h.owner == os.getpid():
            h.close()


def helper_pids() -> frozenset[int]:
    """The pids of this process's forker, a child of this process (empty when none runs)."""
    h = _handle
    return frozenset((h.pid,)) if h is not None and h.owner == os.getpid() else frozenset()


def held_fds() -> frozenset[int]:
    """The fds this process holds for its forker (for leak checks in tests)."""
    h = _handle
    if h is None or h.owner != os.getpid():
        return frozenset()
    return frozenset(fd for fd in (h.sock.fileno(), h.pidfd.fileno()) if fd >= 0)


def _after_fork_in_child() -> None:
    # The forker is the parent's child and serves the parent: drop our copy
    # of the channel without a word (the parent's stays open).
    global _handle, _lock
    _lock = _thread.allocate_lock()
    h, _handle = _handle, None
    if h is not None:
        with suppress(OSError):
            h.sock.close()
        h.pidfd.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _start() -> _Handle:
    """Start ``python -I -S`` running :func:`_main` on the fork path, on the forking thread.

    The fork path, not posix_spawn: its child closes every fd but the two it
    is given (posix_spawn would pass on every inheritable fd of the caller)
    and keeps the caller's signal dispositions (glibc's posix_spawn leaves
    its internal signals 32 and 33 ignored, and the forker's children would
    inherit that), and it dies with the forking thread (PR_SET_PDEATHSIG).
    Its arguments name the channel's fd and a pidfd of this thread (the
    parent of every program it forks, whose death it must not miss). It
    says hello when it is up; until then spawns take the fork path.
    """
    if not sys.executable:
        raise OSError(errno.ENOENT, "no sys.executable to start the forker with")
    from ._child import Program
    from ._launch import launch
    from ._options import NsOptions

    snap = (_status()[0], _rest())
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    opened: list[int] = []
    try:
        me = LAUNCHER.pidfd()
        if me < 0:
            raise OSError(errno.ENOSYS, "no pidfd of the forking thread")
        opened.append(me)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        opened.append(null)
        chan = theirs.fileno()
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = f"import sys; sys.path.insert(0, {top!r}); import nsprim._forkerd as f; f.main()"
        exe = os.fsencode(sys.executable)
        args = (b"%d" % chan, b"%d" % me, b"%d" % clone3_number())
        child, _ = launch(
            _child.run_exec,
            setup=NsOptions(die_with_parent=True),
            program=Program(
                argv=(exe, b"-I", b"-S", b"-c", code.encode(), *args),
                executables=(exe,),
                stdio=(null, null, null),
                pass_fds=(chan, me),
            ),
            own=[null, chan, me],
        )
        child.close_chan()
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
        for fd in opened:
            os.close(fd)
    return _Handle(ours, child.pid, child.pidfd, snap)


def eligible(setup: NsOptions, program: Program) -> bool:
    """Whether the forker can start *program* as the fork path would (cheap; no I/O)."""
    return (
        _enabled[0]
        and setup.owner is None  # the child changes ids before it unshares: fork path
        and not setup.map_helpers  # newuidmap/newgidmap run by the caller's fork path
        and len(program.pass_fds) + 4 <= _MAX_FDS
    )


def spawn(setup: NsOptions, program: Program, deadline: float) -> Optional[tuple[int, OwnedFd]]:
    """Start *program* through the forker; None: take the fork path (and why is no error).

    Runs the request on the forking thread (see :meth:`Launcher.run`), so
    that the state compared is that thread's, as a fork would copy it.
    """
    return LAUNCHER.run(lambda: _request(setup, program, deadline), _abandon)


def _abandon(result: Optional[tuple[int, OwnedFd]]) -> None:
    if result is not None:
        kill_reap(result[0], result[1])


def _current() -> Optional[_Handle]:
    """The running, ready forker; starts one (and answers None) when there is none."""
    global _handle
    h = _handle
    if h is not None and h.owner != os.getpid():
        h = _handle = None
    if h is None:
        try:
            _handle = _start()
        except (OSError, NsprimError):  # no interpreter, no pidfd, no fork (EAGAIN)
            _failed_start()
        return None
    try:
        return h if h.up() else None
    except OSError:
        _retire(h)  # it exited before its hello: it could not start
        _failed_start()
        return None


def _failed_start() -> None:
    """A few failed starts or deaths, then this process takes the fork path for good."""
    _failed[0] += 1
    if _failed[0] >= _MAX_FAILED_STARTS:
        _enabled[0] = False


def _retire(h: _Handle) -> None:
    global _handle
    if _handle is h:
        _handle = None
    h.close()


def _request(setup: NsOptions, program: Program, deadline: float) -> Optional[tuple[int, OwnedFd]]:
    with _lock:
        h = _current()
        if h is None:
            return None
        try:
            lines, umask, ign, blk = _status()
        except OSError:
            _retire(h)
            return None
        # Python ignores SIGPIPE and SIGXFSZ; a program gets them at their
        # default, as the fork path's child sets them (RESTORE_SIGNALS).
        ign &= ~_RESTORED
        if lines != h.snap[0]:
            # The caller changed what a child inherits: this forker would
            # start programs with the old state. A new one takes the new.
            _retire(h)
            return None
        # Which stdio the program gets, before this function opens any fd:
        # a closed 0-2 would be reused by one of ours and sent along.
        stdio = []
        for target, src in enumerate(program.stdio):
            fd = target if src < 0 else src
            try:
                os.fstat(fd)
                stdio.append(fd)
            except OSError:
                stdio.append(-1)  # closed here, closed in the program
        try:
            cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:  # a working directory we may not search: the fork path copes
            return None
        try:
            return _ask(h, setup, program, deadline, cwd, stdio, umask, ign, blk)
        finally:
            os.close(cwd)


def _ask(
    h: _Handle,
    setup: NsOptions,
    program: Program,
    deadline: float,
    cwd: int,
    stdio: list[int],
    umask: int,
    ign: int,
    blk: int,
) -> Optional[tuple[int, OwnedFd]]:
    """Send one request (see nsprim._forkerd), then see the child through its setup.

    *stdio* holds the fd each of 0-2 comes from, -1 for one that stays closed.
    """
    import _socket

    # The frame channel: our end here, the child's through the forker.
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    pfd, cfd = a.detach(), b.detach()
    try:
        fds = [cwd, cfd, *(fd for fd in stdio if fd >= 0), *program.pass_fds]
        envp = program.envp
        if envp is None:
            from ._stdlib import environ_bytes

            envp = dict(environ_bytes())
        h.seq += 1
        seq = h.seq
        steps = _lean_steps(setup)
        req = marshal.dumps(
            (
                seq,
                setup.flags,
                setup.pdeathsig,
                setup.sync,
                setup.unshare_time,
                steps,
                None if steps is not None else marshal.dumps(encode_setup(setup)),
                program.argv,
                program.executables,
                envp,
                tuple(fd >= 0 for fd in stdio),
                program.pass_fds,
                umask,
                ign,
                blk,
            )
        )
        try:
            socket.send_fds(h.sock, [req], fds, socket.MSG_NOSIGNAL)
        except OSError:
            _retire(h)  # gone (killed?): the fork path
            os.close(pfd)
            return None
    except BaseException:  # nothing was sent (SOCK_SEQPACKET: a message goes whole or not)
        os.close(pfd)
        raise
    finally:
        os.close(cfd)
    # From here on the forker acts on the request: its answer must be read
    # whatever happens here (a ^C), and a child it made ended.
    interrupted: Optional[BaseException] = None
    same = False
    try:
        # The child waits for our go: meanwhile, check the rest of what it
        # would inherit from the forker rather than from us.
        same = _rest() == h.snap[1]
        if same and not setup.sync:
            # Queued before the child asks (it reads it after its clone),
            # so the forker's answer below is not on the way to its exec.
            # A child that is gone already (or never came: clone3 refused)
            # makes this EPIPE; the forker's answer says which.
            with suppress(OSError):
                send_frame(pfd, GO)  # with id maps, the go after them says it
    except BaseException as exc:
        interrupted, same = exc, False
    try:
        started = _started(h, seq)
    except BaseException:
        os.close(pfd)
        raise
    if started is None:
        os.close(pfd)
        if interrupted is not None:
            raise interrupted
        return None
    pid, pidfd = started
    if interrupted is not None or not same:
        kill_reap(pid, pidfd)  # it never had our go
        os.close(pfd)
        if interrupted is not None:
            raise interrupted
        _retire(h)  # a new one takes the new state
        return None
    try:
        _see_through(pid, pidfd, pfd, setup, deadline)
    except BaseException:
        if not pidfd.closed:
            kill_reap(pid, pidfd)
        raise
    finally:
        os.close(pfd)
    return pid, pidfd


def _started(h: _Handle, seq: int) -> Optional[tuple[int, OwnedFd]]:
    """The forker's answer: the new child, or None (the fork path)."""
    interrupted: Optional[BaseException] = None
    while True:
        try:
            data, got = _recv_fds(h.sock)
            break
        except InterruptedError:
            continue
        except OSError:
            data, got = b"", []
            break
        except BaseException as exc:  # ^C: the answer must still be read
            interrupted = interrupted or exc
    if not data or marshal.loads(data)[0] != seq:
        # The forker died (or, never seen, lost count): a new one next time,
        # and after a few such deaths none (a request that kills it each time).
        for fd in got:
            os.close(fd)
        _retire(h)
        _failed_start()
        if interrupted is not None:
            raise interrupted
        if data:
            raise OSError(errno.EPROTO, "the forker answered another request")
        return None
    msg = marshal.loads(data)
    if msg[1] != "pid" or len(got) != 1:
        for fd in got:
            os.close(fd)
        if interrupted is not None:
            raise interrupted
        return None  # clone3 refused: the fork path meets it and says it its way
    pid, pidfd = int(msg[2]), OwnedFd(got[0])
    if interrupted is not None:
        kill_reap(pid, pidfd)
        raise interrupted
    return pid, pidfd


def _see_through(pid: int, pidfd: OwnedFd, pfd: int, setup: NsOptions, deadline: float) -> None:
    """The parent's half of the frame protocol, as nsprim._launch.launch runs it."""
    from ._launch import SETUP_TIMEOUT, _write_setup

    chan = Channel(pfd)
    while True:
        try:
            frame = chan.next(pidfd.fileno(), deadline)
        except TimeoutError:
            raise TimeoutExpired(
                SETUP_TIMEOUT, pid, msg=f"child {pid} did not finish its setup in time"
            ) from None
        if frame is None:
            return
        tag, payload = frame
        if tag == READY:
            _write_setup(pid, setup)
            send_frame(pfd, GO)
        elif tag == ERROR:
            exc = decode_error(payload, pid, "before exec")
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
            pidfd.close()
            raise exc


def _lean_steps(setup: NsOptions) -> Optional[tuple[tuple[str, str, tuple[Any, ...]], ...]]:
    """nsprim's step table as data the forker's lean child runs, or None if it can't."""
    ops = {
        _sc.sethostname: "sethostname",
        _sc.setdomainname: "setdomainname",
        _sc.mount: "mount",
        os.chdir: "chdir",
    }
    out = []
    for name, fn, args in _child.setup_steps(setup):
        op = ops.get(fn)
        if op is None or op not in LEAN_OPS:
            return None
        out.append((name, op, tuple(args)))
    return tuple(out)


def _recv_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """recvmsg with MSG_CMSG_CLOEXEC (socket.recv_fds drops its flags argument before 3.12)."""
    import array

    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(
        _MAX_MSG, socket.CMSG_LEN(_MAX_FDS * fds.itemsize), socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)
