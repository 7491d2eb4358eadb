"""Everything between fork and exec (or the callable), driven by a precomputed plan.

Layer 2, private: standard library and nsprim layers 0-2 (:mod:`nsprim.syscalls`,
:mod:`nsprim.flags`, :mod:`nsprim.net`, :mod:`nsprim._frames`,
:mod:`nsprim._options`). :mod:`nsprim._launch` forks; this is the child's half.

The parent validates every argument and encodes every path, name and map
before it forks (CPython's ``_execute_child`` does the same), and even
precomputes the step table (:func:`setup_steps`) that both the fork path and
the posix_spawn fast path run. The child then makes only syscalls, in a
fixed order, and reports the first failure over the channel as one ``E``
frame naming the step (see :mod:`nsprim._frames`).
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Sequence

from . import syscalls as _sc
from ._frames import ERROR, GO, HOP, OUTCOME, READY, STARTED, encode_error, recv_frame, send_frame
from ._stdlib import environ_bytes, signal, suppress
from .flags import _MNT_DETACH, _MS_BIND, _MS_NODEV, _MS_NOEXEC, _MS_NOSUID, _MS_REC, CloneFlags

# typing.TYPE_CHECKING without importing typing (see nsprim.process).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Optional, TypeVar

    from ._options import NsOptions

    #: One step of the table: its name (for the error frame), a call and its arguments.
    Step = tuple[str, Callable[..., object], tuple[Any, ...]]
    R = TypeVar("R")

__all__ = [
    "Plan",
    "Join",
    "Program",
    "setup_steps",
    "search_exec",
    "run_steps",
    "StepName",
    "RESTORE_SIGNALS",
    "run_exec",
    "run_call",
    "WALL",
]

#: waitpid(2) option: wait for every kind of child (<linux/wait.h> __WALL).
WALL = 0x40000000

_NEWTIME = int(CloneFlags.NEWTIME)
_NEWPID = int(CloneFlags.NEWPID)
_NEWUSER = int(CloneFlags.NEWUSER)
_PARENT = int(CloneFlags.PARENT)


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
        wdns: directory to change to after joining and chroot (resolved
            there), or empty.
        keep_caps: raise the permitted capabilities into the ambient set
            after the id switch, so that they survive execve(2).
        exec_context: LSM context for the execve(2), written to
            ``/proc/thread-self/attr/exec`` before the first setns (see
            :mod:`nsprim.lsm`), or empty.
    """

    # Plain classes, not dataclasses: importing dataclasses (inspect, ast,
    # dis, tokenize) would cost every `nsprim run` more than its whole spawn.
    __slots__ = (
        "atomic", "cwd_fd", "exec_context", "fds", "gid", "hop", "keep_caps", "mask", "pidfd",
        "root_fd", "uid", "wdns",
    )  # fmt: skip

    def __init__(
        self,
        pidfd: int,
        mask: int,
        fds: tuple[tuple[int, int], ...],
        atomic: bool,
        hop: bool,
        root_fd: int = -1,
        cwd_fd: int = -1,
        uid: int = -1,
        gid: int = -1,
        wdns: bytes = b"",
        keep_caps: bool = False,
        exec_context: bytes = b"",
    ) -> None:
        self.pidfd = pidfd
        self.mask = mask
        self.fds = fds
        self.atomic = atomic
        self.hop = hop
        self.root_fd = root_fd
        self.cwd_fd = cwd_fd
        self.uid = uid
        self.gid = gid
        self.wdns = wdns
        self.keep_caps = keep_caps
        self.exec_context = exec_context


class Program:
    """What to execve(2), all of it encoded in the parent.

    Attributes:
        argv, executables, envp: ``executables`` are the PATH candidates in
            order; ``envp`` None keeps the environment.
        stdio: source fds for 0, 1, 2 (-1: inherit).
        pass_fds: fds kept open (made inheritable) across exec.
    """

    __slots__ = ("argv", "envp", "executables", "pass_fds", "stdio")

    def __init__(
        self,
        argv: tuple[bytes, ...],
        executables: tuple[bytes, ...],
        envp: Optional[dict[bytes, bytes]] = None,
        stdio: tuple[int, int, int] = (-1, -1, -1),
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.argv = argv
        self.executables = executables
        self.envp = envp
        self.stdio = stdio
        self.pass_fds = pass_fds


class Plan:
    """What the child does, in order; built once, in the parent, before the fork.

    Attributes:
        chan: the child's end of the channel (close-on-exec).
        peer: the parent's end, closed first thing in the child.
        setup: the validated namespace options (None to join instead).
        steps: the step table for *setup* (:func:`setup_steps`).
        join: namespaces of a running process to join first, or None.
        pid_hop: the child unshared a pid namespace; after the id maps it
            starts the PID 1 with clone3(CLONE_PARENT) and that successor
            goes on.
        program: what to execve, or None for a callable.
        pdeathsig: signal for PR_SET_PDEATHSIG, 0 for none.
        parent_pidfd: pidfd of the forking thread (or process), polled
            after PR_SET_PDEATHSIG to close the parent-death race; -1 for none.
        foreign: fds of other launches in flight in this process, closed at
            once so that this child never delays their end-of-file.
        set_tid: pids for the successor, innermost pid namespace first
            (clone3 ``set_tid``, Linux 5.5); implies the hop.
        subreaper: the callable's process is a child subreaper and kills and
            reaps every descendant left when the callable returns.
        unshare_late: ``CLONE_*`` flags unshared right before the callable.
    """

    __slots__ = (
        "chan", "foreign", "join", "parent_pidfd", "pdeathsig", "peer", "pid_hop", "program",
        "set_tid", "setup", "steps", "subreaper", "unshare_late",
    )  # fmt: skip

    def __init__(
        self,
        chan: int,
        peer: int,
        setup: Optional[NsOptions] = None,
        steps: tuple[Step, ...] = (),
        join: Optional[Join] = None,
        pid_hop: bool = False,
        program: Optional[Program] = None,
        pdeathsig: int = 0,
        parent_pidfd: int = -1,
        foreign: tuple[int, ...] = (),
        set_tid: tuple[int, ...] = (),
        subreaper: bool = False,
        unshare_late: int = 0,
    ) -> None:
        self.chan = chan
        self.peer = peer
        self.setup = setup
        self.steps = steps
        self.join = join
        self.pid_hop = pid_hop
        self.program = program
        self.pdeathsig = pdeathsig
        self.parent_pidfd = parent_pidfd
        self.foreign = foreign
        self.set_tid = set_tid
        self.subreaper = subreaper
        self.unshare_late = unshare_late


# --- child side ------------------------------------------------------------------------


class StepName:
    """The name of the step running now, for the error frame."""

    __slots__ = ("name",)

    def __init__(self, name: str = "fork") -> None:
        self.name = name


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


def _early(plan: Plan, step: StepName) -> None:
    """Steps before the parent's go: parent-death signal, the race check, time."""
    if plan.pdeathsig:
        step.name = "prctl"
        _sc.set_pdeathsig(plan.pdeathsig)
        # The parent may have died before prctl(): then nothing would ever
        # deliver the signal (prctl(2), "PR_SET_PDEATHSIG"); getppid() can't
        # tell in a new pid namespace (it reads 0), the parent's pidfd can.
        if plan.parent_pidfd >= 0 and not _parent_alive(plan.parent_pidfd):
            os._exit(1)
    if plan.setup is not None and plan.setup.unshare_time:
        step.name = "unshare"
        _sc.unshare(_NEWTIME)


def _handshake(plan: Plan, step: StepName) -> None:
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


def _join(join: Join, step: StepName, chan: int) -> bool:
    """Join the target's namespaces; return True in the process that goes on."""
    if join.exec_context:
        # First, as util-linux nsenter calls setexeccon() before any setns:
        # here /proc is still this process's own (after the joins it may be
        # another pid namespace's, or absent after the chroot). The context
        # lives in the credentials: setns, setresuid and the pid-namespace
        # hop's clone3 copy it; the execve uses and resets it.
        step.name = "setexeccon"
        from . import lsm  # already imported by the parent that planned this

        lsm.write_exec_context(join.exec_context)
    step.name = "setns"
    # Two passes as util-linux nsenter does: the user namespace last on the
    # first pass (a privileged caller keeps its power over the others), and
    # whatever EPERM refused then is retried after it (an unprivileged caller
    # gains its capabilities there first). The atomic pidfd join (mask) and the
    # nsfs fds (files, sockets, parents) take part in both.
    mask = join.mask if join.atomic else 0
    pending = list(join.fds)
    for last in (False, True):
        users = [p for p in pending if p[0] == _NEWUSER]
        left = _setns_fds(users, last) if last else users
        mask = _setns_mask(join.pidfd, mask, last)
        left += _setns_fds([p for p in pending if p[0] != _NEWUSER], last)
        pending = left
        if not pending and not mask:
            break
    if join.root_fd >= 0:
        step.name = "chroot"
        # util-linux nsenter keeps the working directory (by fd, across the
        # chroot) unless --wd or --wdns change it.
        here = -1 if join.cwd_fd >= 0 or join.wdns else os.open(".", os.O_RDONLY | os.O_CLOEXEC)
        os.fchdir(join.root_fd)
        os.chroot(".")
        os.chdir("/")
        if here >= 0:
            os.fchdir(here)
            os.close(here)
    if join.cwd_fd >= 0:
        step.name = "chdir"
        os.fchdir(join.cwd_fd)
    elif join.wdns:
        step.name = "wdns"
        os.chdir(join.wdns)
    if join.gid >= 0 or join.uid >= 0:
        step.name = "setgroups"
        # With setgroups=deny in the joined user namespace this is EPERM;
        # util-linux nsenter ignores that too.
        with suppress(PermissionError):
            os.setgroups([])
        if join.gid >= 0:
            step.name = "setgid"
            os.setresgid(join.gid, join.gid, join.gid)
        if join.uid >= 0:
            step.name = "setuid"
            os.setresuid(join.uid, join.uid, join.uid)
    if join.keep_caps:
        step.name = "keep_caps"
        _sc.cap_ambient_raise()
    if join.hop:
        # setns(CLONE_NEWPID) moves only future children (pid_namespaces(7)).
        _hop(chan, step)
    return True


def _setns_fds(fds: Sequence[tuple[int, int]], last: bool) -> list[tuple[int, int]]:
    """setns(fd, flag) for each; return those EPERM refused (on the last pass: raise)."""
    left = []
    for flag, fd in fds:
        try:
            _sc.setns(fd, flag)
        except PermissionError:
            if last:
                raise
            left.append((flag, fd))
    return left


def _setns_mask(pidfd: int, mask: int, last: bool) -> int:
    """setns(pidfd, mask) for the types of *mask* this pass takes; return what is left."""
    now = mask if last else mask & ~_NEWUSER
    if not now:
        return mask
    try:
        _sc.setns(pidfd, now)
    except PermissionError:
        if last:
            raise
        return mask
    return mask & ~now


def _hop(chan: int, step: StepName, set_tid: Sequence[int] = ()) -> None:
    """Start the successor that goes on (the caller's child, by CLONE_PARENT); exit here.

    Only in a single-threaded child: a raw clone3 returns into the eval loop
    before CPython's after-fork reset (see nsprim._launch._fork).
    """
    step.name = "clone3"
    # clone3(2) takes CLONE_PARENT only with exit_signal 0; the child then
    # inherits ours (SIGCHLD), as clone(2) does.
    me = _sc.pidfd_open(os.getpid())
    pid = _sc.clone3(_PARENT, exit_signal=0, set_tid=set_tid)
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


def setup_steps(setup: NsOptions) -> tuple[Step, ...]:
    """The namespace setup after the go, as a table; the parent builds it once.

    The fork path runs it in the child, the posix_spawn fast path in the
    thread that unshared (where root and mount_proc never occur).
    """
    steps: list[Step] = []
    if setup.hostname is not None:
        steps.append(("sethostname", _sc.sethostname, (setup.hostname,)))
    if setup.domainname is not None:
        steps.append(("setdomainname", _sc.setdomainname, (setup.domainname,)))
    if setup.propagation:
        steps.append(("mount", _sc.mount, (None, "/", None, _MS_REC | setup.propagation)))
    if setup.root is not None:
        # The pivot_root(".", ".") idiom from pivot_root(2): no put_old
        # directory is needed, and the old root is detached at once.
        root = setup.root
        steps += [
            ("mount", _sc.mount, (root, root, None, _MS_BIND | _MS_REC)),
            ("chdir", os.chdir, (root,)),
            ("pivot_root", _sc.pivot_root, (".", ".")),
            ("umount2", _sc.umount, (".", _MNT_DETACH)),
            ("chdir", os.chdir, ("/",)),
        ]
    if setup.mount_proc:
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        steps.append(("mount_proc", _sc.mount, ("proc", "/proc", "proc", flags)))
    if setup.binfmt_misc is not None:
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        steps.append(
            ("mount_binfmt", _sc.mount, ("binfmt_misc", setup.binfmt_misc, "binfmt_misc", flags))
        )
        for entry in setup.binfmt_register:
            steps.append(("binfmt_register", _binfmt_register, (setup.binfmt_misc, entry)))
    if setup.loopback_up:
        from . import net  # netlink: imported only by the programs that bring lo up

        steps.append(("set_link_up", net.set_link_up, ("lo",)))
    if setup.cwd is not None:
        steps.append(("chdir", os.chdir, (setup.cwd,)))
    if setup.keep_caps:  # (NsOptions keeps it only with a new user namespace)
        # last: the capabilities the new user namespace gave survive the execve
        steps.append(("keep_caps", _sc.cap_ambient_raise, ()))
    return tuple(steps)


def _binfmt_register(where: bytes, entry: bytes) -> None:
    """Write one interpreter definition to WHERE/register (binfmt-misc.rst), in one write."""
    fd = os.open(os.path.join(where, b"register"), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, entry)
    finally:
        os.close(fd)


def run_steps(steps: Sequence[Step], step: StepName) -> None:
    """Run a step table, naming each step first (for the error frame)."""
    for name, fn, args in steps:
        step.name = name
        fn(*args)


def search_exec(executables: Sequence[bytes], start: Callable[[bytes], R]) -> R:
    """Try ``start(path)`` for each PATH candidate, as execvpe(3) does.

    Keeps looking past ENOENT/ENOTDIR and, if nothing starts, raises the
    first other error (EACCES) or else ENOENT. Shared by execve in the child
    and posix_spawn on the fast path.
    """
    first: Optional[OSError] = None
    for exe in executables:
        try:
            return start(exe)
        except OSError as err:
            if first is None or (
                first.errno in (errno.ENOENT, errno.ENOTDIR)
                and err.errno not in (errno.ENOENT, errno.ENOTDIR)
            ):
                # Without its traceback: that holds this frame, which holds
                # *first*, a cycle that kept the caller's frames (and the
                # new NsProcess in them) alive until the next collection.
                first = err.with_traceback(None)
    raise first or OSError(errno.ENOENT, os.strerror(errno.ENOENT))


def _enter_time(step: StepName) -> None:
    step.name = "setns"
    fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _sc.setns(fd, _NEWTIME)
    finally:
        os.close(fd)


def _prologue(plan: Plan, step: StepName) -> None:
    step.name = "close"
    os.close(plan.peer)
    for fd in plan.foreign:
        with suppress(OSError):
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
    if plan.setup is not None and plan.setup.sync:
        _handshake(plan, step)
    if plan.setup is not None and plan.setup.unshare_time:
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
    run_steps(plan.steps, step)


def _stdio(stdio: Sequence[int]) -> None:
    srcs = list(stdio)
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
    step = StepName()
    prog = plan.program
    assert prog is not None
    try:
        _prologue(plan, step)
        step.name = "dup2"
        _stdio(prog.stdio)
        for fd in prog.pass_fds:
            os.set_inheritable(fd, True)
        step.name = "close"
        _close_fds([plan.chan, *prog.pass_fds])
        # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive
        # execve, so restore them (subprocess restore_signals=True).
        for sig in RESTORE_SIGNALS:
            _set_handler(sig, _SIG_DFL)
        step.name = "execve"
        env = prog.envp if prog.envp is not None else environ_bytes()
        search_exec(prog.executables, lambda exe: os.execve(exe, prog.argv, env))
    except OSError as exc:
        if step.name == "execve":
            exc.filename = os.fsdecode(prog.argv[0]) if prog.argv else None
            _fail(plan.chan, exc, step.name, 127 if exc.errno == errno.ENOENT else 126)
        _fail(plan.chan, exc, step.name)
    except BaseException as exc:
        _fail(plan.chan, exc, step.name)
    _fail(plan.chan, OSError(errno.ENOEXEC, "execve returned"), "execve")


# _signal's signal() (see nsprim._stdlib): the signal module's wrapper turns the
# old handler into a Handlers member, enum machinery whose every page the child
# would copy.
_set_handler = signal.signal
_SIG_DFL = signal.SIG_DFL

#: Signals Python ignores and a program must not inherit ignored.
RESTORE_SIGNALS = tuple(
    sig for sig in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if sig
)


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
            with suppress(OSError):
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
    step = StepName()
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
