"""PID namespace checks: PID-01 to PID-14 of GUARANTEES.md.

Layer: conformance checks. Imports public nsprim names and the conformance
registry only; the few libc calls nsprim.syscalls does not bind (POSIX
message queues for PID-09, pthread_create for PID-12, prctl for
PR_SET_CHILD_SUBREAPER) are bound here with full prototypes (STYLE.md 5.7).

Shape (see :mod:`.uts`): the check forks a helper (``ctx.in_child`` through
:func:`_in_helper`, which makes it a child subreaper), and the helper
creates the process under test with ``clone3``/``unshare``+``fork``/
``setns``+``fork`` using the flags ``ctx.isolate`` returned, so the negative
control is the same code without CLONE_NEWPID (or, for guarantees about an
error or a privilege, with the precondition removed). The process under test
runs a module-level function and sends its result back over a pipe
(:func:`_run_in_pidns`); if it dies instead, the result is an :class:`InitDied`
value, which the check compares like any other, so a control that kills the
process FAILs rather than ERRORs.

Every process made here is reaped by its parent before the helper returns,
and whatever a control orphans on purpose comes back to the helper, which is
a child subreaper, and is killed and reaped there. Long-lived ones also have
PR_SET_PDEATHSIG(SIGKILL), so a helper killed on timeout takes them along,
except where surviving the parent is what a check measures (PID-06); killing
a pid-namespace init takes its whole namespace (pid_namespaces(7)).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import pickle
import select
import signal
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Optional

from nsprim import syscalls
from nsprim.flags import CloneFlags, MountFlags, UmountFlags

from ..registry import Context, Needs, Skip, check
from ._common import attempt as _attempt
from ._common import errname as _errname

__all__: list[str] = []

NEWPID = int(CloneFlags.NEWPID)
NEWNS = int(CloneFlags.NEWNS)

#: Seconds any single wait inside a helper may take before it gives up.
_WAIT = 3.0
#: MAX_PID_NS_LEVEL (include/linux/pid_namespace.h): the deepest pid namespace level.
MAX_PID_NS_LEVEL = 32
#: PF_KTHREAD (include/linux/sched.h): the per-task flag (stat field 9) of kernel threads.
_PF_KTHREAD = 0x00200000
_PROC_FLAGS = int(MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC)

_MSG = struct.Struct("!I")

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_PR_SET_CHILD_SUBREAPER = 36  # include/uapi/linux/prctl.h; Linux 3.4
_WALL = 0x40000000  # include/uapi/linux/wait.h __WALL: also wait for "clone" children


# -- plumbing: processes, pipes, results -------------------------------------------


@dataclass(frozen=True)
class InitDied:
    """The process under test died before it could report (a value checks compare against)."""

    status: str


def _status_text(status: Optional[int]) -> str:
    if status is None:
        return "was reaped elsewhere"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    if os.WIFSTOPPED(status):
        return f"stopped by {signal.Signals(os.WSTOPSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _send_msg(fd: int, obj: object) -> None:
    body = pickle.dumps(obj)
    data = _MSG.pack(len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


def _read_exact(fd: int, n: int, deadline: float) -> Optional[bytes]:
    """Read *n* bytes from *fd*; ``None`` at EOF; TimeoutError after *deadline*."""
    chunks: list[bytes] = []
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_msg(fd: int, timeout: float = _WAIT) -> tuple[bool, Any]:
    """Receive one message: ``(True, obj)``, or ``(False, None)`` at EOF.

    Raises:
        TimeoutError: nothing complete arrived within *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    head = _read_exact(fd, _MSG.size, deadline)
    if head is None:
        return False, None
    body = _read_exact(fd, _MSG.unpack(head)[0], deadline)
    if body is None:
        return False, None
    return True, pickle.loads(body)


def _wait(pid: int, timeout: float = _WAIT) -> int:
    """Reap child *pid*, waiting at most *timeout* seconds; return its wait status.

    Raises:
        TimeoutError: it is still running (the caller kills it).
    """
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} still running after {timeout} s")
        time.sleep(0.002)


def _kill_and_reap(pid: int, options: int = 0) -> Optional[int]:
    """SIGKILL child *pid* (from its parent: reaches even a pid-namespace init) and reap it.

    Pass ``options=_WALL`` for a child created with exit_signal 0.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        return os.waitpid(pid, options)[1]
    except ChildProcessError:
        return None


def _child_exit(code: int = 0) -> NoReturn:
    """Leave a forked process without running anything of the parent's (no cleanups, no atexit)."""
    os._exit(code)


def _serve_result(wfd: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> NoReturn:
    """In the process under test: run ``fn(*args)``, send the outcome on *wfd*, exit."""
    try:
        syscalls.set_pdeathsig(signal.SIGKILL)
        try:
            msg: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:
            msg = ("exc", exc)
        try:
            _send_msg(wfd, msg)
        except Exception as exc:  # the value would not pickle
            _send_msg(wfd, ("exc", TypeError(f"{fn.__name__} result cannot be pickled: {exc}")))
    finally:
        _child_exit(0)


#: How the process under test gets into its pid namespace: ``("clone3", flags)``
#: (optionally ``("clone3", flags, set_tid)``), ``("unshare", flags)`` (then fork)
#: or ``("setns", path)`` (then fork).
Entry = tuple[Any, ...]


def _fork_into(entry: Entry) -> int:
    """Create the process under test as *entry* says; fork-style return value."""
    how, arg = entry[0], entry[1]
    if how == "clone3":
        return _clone3(arg, *entry[2:])
    if how == "unshare":
        syscalls.unshare(arg)
    elif how == "setns":
        fd = os.open(arg, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, NEWPID)
        finally:
            os.close(fd)
    else:
        raise ValueError(f"entry must be clone3, unshare or setns, got {how!r}")
    return os.fork()


def _run_in_pidns(entry: Entry, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a new child made as *entry* says; return its result.

    Runs in a helper (``ctx.in_child``). With CLONE_NEWPID the child is the
    namespace's init. The child's exception is re-raised here; if it dies
    without reporting, the result is :class:`InitDied`.

    Raises:
        TimeoutError: no result within ``_WAIT`` seconds (the child is killed).
    """
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _fork_into(entry)
    except BaseException:
        os.close(rfd)
        os.close(wfd)
        raise
    if pid == 0:
        os.close(rfd)
        _serve_result(wfd, fn, args)
    os.close(wfd)
    try:
        ok, msg = _recv_msg(rfd)
    finally:
        os.close(rfd)
        status = _kill_and_reap(pid)
    if not ok:
        return InitDied(_status_text(status))
    kind, value = msg
    if kind == "exc":
        raise value
    return value


def _idle() -> None:
    """Nothing: a helper that only holds its namespaces."""


def _clone3(flags: int, set_tid: list[int] | None = None) -> int:
    """clone3(2) without a pidfd: the child's pid, or 0 in the child."""
    pid = syscalls.clone3(flags, set_tid=set_tid or ())
    assert isinstance(pid, int)
    return pid


def _try_clone3(flags: int, set_tid: list[int]) -> str:
    """Try clone3(flags, set_tid); a child made anyway exits at once and is reaped."""
    try:
        pid = _clone3(flags, set_tid)
    except OSError as err:
        return _errname(err)
    if pid == 0:
        _child_exit(0)
    _wait(pid)
    return "ok"


def _nspid() -> list[int]:
    """Return this process's ``NSpid:`` line: its pid per level, from /proc's pid ns down."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(v) for v in line.split()[1:]]
    raise OSError(errno.ENOENT, "no NSpid line in /proc/self/status (Linux 4.1+)")


def _ns_key(path: str) -> tuple[int, int]:
    """Identity of the namespace behind an nsfs path (STYLE.md 5.8)."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _mount_proc() -> None:
    """Mount a fresh procfs on /proc (in a mount namespace the caller owns)."""
    syscalls.mount("proc", "/proc", "proc", _PROC_FLAGS)


def _proc_pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


def _reap_children(timeout: float = _WAIT) -> None:
    """SIGKILL this process's remaining children (when /proc lists them), then reap them all.

    ``/proc/self/task/*/children`` needs CONFIG_PROC_CHILDREN; without it, or
    when /proc is another pid namespace's, the children are only reaped (they
    are processes the helper expects to exit on their own), for at most
    *timeout* seconds.
    """
    with contextlib.suppress(OSError, ValueError):
        if os.readlink("/proc/self") == str(os.getpid()):  # /proc is our pid namespace's
            for tid in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{tid}/children") as f:
                    for child in f.read().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(child), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG | _WALL)
        except ChildProcessError:
            return  # none left
        if reaped == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.002)


def _as_subreaper(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` as a child subreaper, then kill and reap every child left.

    For helpers whose control run orphans processes on purpose: the orphans
    come back to this helper (prctl(2) PR_SET_CHILD_SUBREAPER) instead of the
    sandbox's init, and are reaped here. A subreaper outside a pid namespace
    never adopts that namespace's orphans (kernel find_new_reaper() looks only
    inside the orphan's namespace), so the checks themselves are unaffected.
    """
    if _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")
    try:
        return fn(*args)
    finally:
        _reap_children()


def _in_helper(ctx: Context, fn: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Any:
    """``ctx.in_child(fn, *args)`` in a helper that subreaps (:func:`_as_subreaper`)."""
    return ctx.in_child(_as_subreaper, fn, *args, timeout=timeout)


# -- PID-01 ----------------------------------------------------------------------


def _getpid() -> int:
    return os.getpid()


#: PID-01 variants: how the first process gets into the new namespace (LTP pidns01
#: clones, unshare05 and the selftest regression_enomem unshare then fork).
_ENTRY_VARIANTS = ("clone3", "unshare")


@check(
    "pid.first_child_is_init",
    catalogue="PID-01",
    level="MUST",
    anchors=(
        "LTP pidns01",
        "LTP unshare05",
        "selftest pid_namespace/pidns_init_via_setns",
        "pid_namespaces(7)",
    ),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def first_child_is_init(ctx: Context) -> None:
    """The first process created in a new pid namespace sees getpid() == 1.

    Two ways in, each a parameter of the same body: clone3(CLONE_NEWPID),
    and unshare(CLONE_NEWPID) then fork(). (The selftest's third way,
    setns(2) into another process's init-less ``pid_for_children``, needs a
    newer kernel: up to at least 6.18 that file is ENOENT until the
    namespace has an init.) Control: no CLONE_NEWPID, so the child is an
    ordinary process of the check's namespace and its pid is not 1.
    """
    flags = ctx.isolate(NEWPID)
    for variant in _ENTRY_VARIANTS:
        pid = _in_helper(ctx, _run_in_pidns, (variant, flags), _getpid)
        ctx.expect_equal(pid, 1, f"getpid() of the first process in the new pid ns ({variant})")


# -- PID-02 ----------------------------------------------------------------------


def _init_identity() -> dict[str, int]:
    ppid = os.getppid()
    os.setsid()
    return {"pid": os.getpid(), "ppid": ppid, "sid": os.getsid(0), "pgid": os.getpgid(0)}


@check(
    "pid.init_parent_invisible",
    catalogue="PID-02",
    level="MUST",
    anchors=("LTP pidns01", "LTP pidns02", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def init_parent_invisible(ctx: Context) -> None:
    """A pid namespace's init sees getppid() == 0, and after setsid() its sid and pgid are 1.

    The parent lives outside the namespace, so the kernel has no pid to give
    for it (LTP pidns01); setsid() makes init the leader of a session and
    group named by its own pid, 1 (LTP pidns02). Control: no CLONE_NEWPID,
    so the parent is visible and the ids are the child's real pid.
    """
    seen = _in_helper(ctx, _run_in_pidns, ("clone3", ctx.isolate(NEWPID)), _init_identity)
    ctx.expect_equal(seen["ppid"], 0, "getppid() of a pid namespace's init")
    ctx.expect_equal(seen["sid"], 1, "getsid(0) of the init after setsid()")
    ctx.expect_equal(seen["pgid"], 1, "getpgid(0) of the init after setsid()")


# -- PID-03 ----------------------------------------------------------------------


def _proc_view() -> dict[str, Any]:
    """Mount /proc, start one more member, and report what /proc shows."""
    _mount_proc()
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    member = os.fork()
    if member == 0:
        try:
            os.close(wfd)
            syscalls.set_pdeathsig(signal.SIGKILL)
            os.read(rfd, 1)  # until the init closes its end
        finally:
            _child_exit(0)
    os.close(rfd)
    try:
        seen = {
            "self": os.readlink("/proc/self"),
            "pid": os.getpid(),
            "listed": _proc_pids(),
            "members": sorted([os.getpid(), member]),
        }
    finally:
        os.close(wfd)
        _wait(member)
    return seen


@check(
    "pid.proc_view",
    catalogue="PID-03",
    level="MUST",
    anchors=("LTP pidns03", "util-linux unshare --mount-proc", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def proc_view(ctx: Context) -> None:
    """A procfs mounted inside a new pid (and mount) namespace shows only that namespace's members.

    The init mounts proc on /proc in its own mount namespace and forks one
    more member: /proc/self must name the reader's own namespace pid and
    /proc must list exactly the two members (1 and 2). Control: no
    CLONE_NEWPID (the mount namespace stays), so the fresh procfs shows the
    whole sandbox.
    """
    flags = ctx.isolate(NEWPID) | NEWNS
    seen = _in_helper(ctx, _run_in_pidns, ("clone3", flags), _proc_view)
    ctx.expect_equal(seen["self"], str(seen["pid"]), "/proc/self inside the namespace")
    ctx.expect_equal(seen["listed"], seen["members"], "pids listed in the namespace's /proc")
    ctx.expect_equal(seen["members"], [1, 2], "pids of the namespace's two members")


# -- PID-04 ----------------------------------------------------------------------

#: Signals whose default action ends a process; SIGKILL last (LTP pidns04 sends SIGKILL).
_FATAL_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGKILL)


def _send_from_member(sig: int) -> None:
    """Fork a member that sends *sig* to its parent (kill(getppid(), sig)); reap it."""
    killer = os.fork()
    if killer == 0:
        try:
            os.kill(os.getppid(), sig)
        finally:
            _child_exit(0)
    # The signal is queued (or dropped) before the killer exits; a fatal one
    # would end this process on its way back from waitpid.
    _wait(killer)


def _signal_self_from_member() -> dict[str, Any]:
    """In the init: have members send it each fatal signal, then a handled one; report."""
    for sig in _FATAL_SIGNALS:
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)  # "without an installed handler"
    survived = []
    for sig in _FATAL_SIGNALS:
        _send_from_member(sig)
        survived.append(sig.name)
    # The protection is about handlers, not a blanket drop: a handled signal arrives.
    caught: list[int] = []
    signal.signal(signal.SIGUSR2, lambda signum, frame: caught.append(signum))
    _send_from_member(signal.SIGUSR2)
    deadline = time.monotonic() + _WAIT
    while not caught and time.monotonic() < deadline:
        time.sleep(0.001)  # Python runs the handler between bytecodes
    return {"survived": survived, "handled signal caught": bool(caught)}


@check(
    "pid.init_signal_protection",
    catalogue="PID-04",
    level="MUST",
    anchors=("LTP pidns04", "pid_namespaces(7)", "kernel sig_task_ignored()"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def init_signal_protection(ctx: Context) -> None:
    """Unhandled signals sent to a pid namespace's init from inside it, SIGKILL too, are ignored.

    The init leaves SIGHUP, SIGINT, SIGTERM and SIGUSR1 at SIG_DFL, then for
    each of those and SIGKILL forks a member that sends it with kill(1, sig);
    the init must survive them all. A SIGUSR2 for which it installed a
    handler must still arrive (the rule is about handlers, not a blanket
    drop). Control: no CLONE_NEWPID, so the "init" is an ordinary process
    and the first signal kills it.
    """
    seen = _in_helper(ctx, _run_in_pidns, ("clone3", ctx.isolate(NEWPID)), _signal_self_from_member)
    ctx.expect(isinstance(seen, dict), "the init reported after the signals", "a report", seen)
    ctx.expect_equal(
        seen["survived"],
        [s.name for s in _FATAL_SIGNALS],
        "signals from a member the init survived",
    )
    ctx.expect(
        seen["handled signal caught"], "a handled SIGUSR2 from a member arrives", True, False
    )


# -- PID-05 ----------------------------------------------------------------------

#: Signals an ancestor sends to init, and what each must do (pid_namespaces(7):
#: only SIGKILL and SIGSTOP are forced; other unhandled signals are dropped).
_ANCESTOR_SIGNALS = {
    signal.SIGTERM: "ignored",
    signal.SIGSTOP: "stopped",
    signal.SIGKILL: "killed by SIGKILL",
}


def _echo_loop(cmd_fd: int, reply_fd: int) -> None:
    """The init for PID-05: answer each byte on *cmd_fd* with one on *reply_fd*, until EOF."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while os.read(cmd_fd, 1):
        os.write(reply_fd, b"p")


def _send_signal(init: int, sig: int, from_inside: bool) -> None:
    """Send *sig* to *init* from a fresh process: of this namespace, or of init's (setns)."""
    sender = os.fork()
    if sender == 0:
        try:
            if from_inside:
                fd = os.open(f"/proc/{init}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
                syscalls.setns(fd, NEWPID)
                inner = os.fork()  # setns moves only the children (PID-12)
                if inner == 0:
                    try:
                        os.kill(1, sig)
                    finally:
                        _child_exit(0)
                _wait(inner)
            else:
                os.kill(init, sig)
        finally:
            _child_exit(0)
    _wait(sender)


def _observe(init: int, cmd_fd: int, reply_fd: int) -> str:
    """Ping the init; return whether it answers ("ignored"), stopped or died (deterministic).

    A signal that was delivered is acted on before the init returns from its
    read(2), so an answer proves the signal was dropped.
    """
    with contextlib.suppress(BrokenPipeError):
        os.write(cmd_fd, b"x")
    deadline = time.monotonic() + _WAIT
    poller = select.poll()
    poller.register(reply_fd, select.POLLIN)
    while time.monotonic() < deadline:
        pid, status = os.waitpid(init, os.WNOHANG | os.WUNTRACED)
        if pid:
            return "stopped" if os.WIFSTOPPED(status) else _status_text(status)
        if poller.poll(2) and os.read(reply_fd, 1):
            return "ignored"
    return "no change"


def _signal_init(flags: int, from_inside: bool) -> dict[str, str]:
    """PID-05 in the helper: start an echoing init, signal it, record what each signal did."""
    cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
    reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
    init = _clone3(flags)
    if init == 0:
        try:
            syscalls.set_pdeathsig(signal.SIGKILL)
            os.close(cmd_w)
            os.close(reply_r)
            _echo_loop(cmd_r, reply_w)
        finally:
            _child_exit(0)
    os.close(cmd_r)
    os.close(reply_w)
    seen: dict[str, str] = {}
    try:
        for sig, _ in _ANCESTOR_SIGNALS.items():
            _send_signal(init, sig, from_inside)
            seen[sig.name] = outcome = _observe(init, cmd_w, reply_r)
            if outcome == "stopped":
                os.kill(init, signal.SIGCONT)
                _recv_byte(reply_r)  # the answer to the ping it could not give while stopped
            elif outcome != "ignored":
                break
    finally:
        os.close(cmd_w)
        os.close(reply_r)
        _kill_and_reap(init)
    return seen


def _recv_byte(fd: int) -> None:
    if not select.select([fd], [], [], _WAIT)[0] or not os.read(fd, 1):
        raise TimeoutError("the continued init did not answer")


@check(
    "pid.ancestor_can_kill_init",
    catalogue="PID-05",
    level="MUST",
    anchors=("pid_namespaces(7)", "LTP pidns05", "kernel sig_task_ignored()"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def ancestor_can_kill_init(ctx: Context) -> None:
    """SIGKILL and SIGSTOP sent from an ancestor pid namespace always reach the namespace's init.

    A helper starts an init that answers pings, then sends it SIGTERM (must
    be dropped: only SIGKILL and SIGSTOP are forced), SIGSTOP (must stop it;
    SIGCONT resumes it) and SIGKILL (must kill it), observing after each
    through a ping/answer round trip and waitpid(WUNTRACED). Control: the
    same signals come from a process that setns(2)-joined the init's
    namespace (the ancestor precondition removed), so init's protection
    drops them all.
    """
    seen = _in_helper(ctx, _signal_init, NEWPID, ctx.control)
    for sig, expected in _ANCESTOR_SIGNALS.items():
        ctx.expect_equal(seen.get(sig.name), expected, f"effect of {sig.name} on the init")


# -- PID-06 ----------------------------------------------------------------------


def _report_and_sleep(wfd: int) -> None:
    """A member: report its pid as the helper sees it (first NSpid), then sleep until killed."""
    _send_msg(wfd, _nspid()[0])
    time.sleep(30)


def _nested_member(wfd: int) -> None:
    """A member that is itself init of a nested pid namespace with one member of its own."""
    inner = _clone3(NEWPID)
    if inner == 0:
        try:
            _report_and_sleep(wfd)
        finally:
            _child_exit(0)
    _report_and_sleep(wfd)


def _spawn_member(body: Callable[[int], None], wfd: int) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            body(wfd)
        finally:
            _child_exit(0)
    return pid


def _populate_then_exit(wfd: int, go_fd: int) -> None:
    """The init for PID-06: start three members (one in a nested ns), wait for go, exit."""
    _spawn_member(_report_and_sleep, wfd)
    _spawn_member(_nested_member, wfd)
    os.read(go_fd, 1)
    _child_exit(0)


def _members_after_init_exit(flags: int) -> dict[str, Any]:
    """PID-06 in the helper: make the init and its members, let init exit, see who is left."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    init = _clone3(flags)
    if init == 0:
        try:
            os.close(rfd)
            os.close(go_w)
            syscalls.set_pdeathsig(signal.SIGKILL)
            _populate_then_exit(wfd, go_r)
        finally:
            _child_exit(0)
    os.close(wfd)
    os.close(go_r)
    pidfds: list[int] = []
    try:
        members = []
        for _ in range(3):
            ok, pid = _recv_msg(rfd)
            if not ok:
                raise RuntimeError("a member died before reporting its pid")
            members.append(pid)
            pidfds.append(syscalls.pidfd_open(pid))
        os.write(go_w, b"g")
        init_status = _status_text(_wait(init))
        # zap_pid_ns_processes() kills the members and waits for them before the
        # init can be reaped, so they are gone by now; the grace is for slow machines.
        alive = _still_alive(pidfds, 0.5)
    finally:
        for fd in pidfds:
            # The control leaves them running (orphans of the subreaping helper).
            with contextlib.suppress(ProcessLookupError):
                syscalls.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        for fd in (rfd, go_w):
            os.close(fd)
        _kill_and_reap(init)
    return {"init": init_status, "members": len(members), "alive": alive}


def _still_alive(pidfds: list[int], timeout: float) -> int:
    """Wait until every pidfd reports its process gone (or *timeout*); return how many are not."""
    poller = select.poll()
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    gone: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(gone) < len(pidfds):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000):
            gone.add(fd)
            poller.unregister(fd)
    return len(pidfds) - len(gone)


@check(
    "pid.init_death_kills_members",
    catalogue="PID-06",
    level="MUST",
    anchors=("LTP pidns05", "LTP pidns17", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=8.0,
)
def init_death_kills_members(ctx: Context) -> None:
    """When a pid namespace's init exits, every process in it and in nested namespaces is killed.

    The init starts a sleeping member and a member that is itself init of a
    nested namespace with a sleeping member (LTP pidns05's nesting); all
    three sleep for 30 s. The helper holds pidfds to them, lets the init
    exit(0), and once it is reaped all three must be gone. Control: no
    CLONE_NEWPID for the outer init, so its exit orphans the members and
    they live on (the helper, a subreaper, then kills and reaps them).
    """
    flags = ctx.isolate(NEWPID)
    seen = _in_helper(ctx, _members_after_init_exit, flags, timeout=8.0)
    ctx.expect_equal(seen["init"], "exited with status 0", "how the init ended")
    ctx.expect_equal(seen["members"], 3, "members that reported before the init exited")
    ctx.expect_equal(seen["alive"], 0, "members still alive after the init exited")


# -- PID-07 ----------------------------------------------------------------------


def _orphan_parent() -> dict[str, Any]:
    """In the init: fork C, C forks D and exits; report D's new parent and who reaps D."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    middle = os.fork()
    if middle == 0:
        try:
            os.close(rfd)
            syscalls.set_pdeathsig(signal.SIGKILL)
            middle_pid = os.getpid()
            orphan = os.fork()
            if orphan == 0:
                try:
                    deadline = time.monotonic() + _WAIT
                    while os.getppid() == middle_pid and time.monotonic() < deadline:
                        time.sleep(0.001)
                    _send_msg(wfd, (os.getpid(), os.getppid()))
                finally:
                    _child_exit(0)
        finally:
            _child_exit(0)
    os.close(wfd)
    try:
        _wait(middle)
        ok, report = _recv_msg(rfd)
    finally:
        os.close(rfd)
    if not ok:
        raise RuntimeError("the orphan died before reporting its parent")
    orphan, new_parent = report
    try:
        reaped = os.waitpid(orphan, 0)[0] == orphan
    except ChildProcessError:  # not our child: someone else adopted it
        reaped = False
    return {"init": os.getpid(), "new_parent": new_parent, "reaped_by_init": reaped}


@check(
    "pid.orphan_reparenting",
    catalogue="PID-07",
    level="MUST",
    anchors=("pid_namespaces(7)", "prctl(2) PR_SET_CHILD_SUBREAPER"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def orphan_reparenting(ctx: Context) -> None:
    """An orphaned process in a pid namespace is reparented to that namespace's init.

    Inside the namespace (no subreaper there), the init forks C, C forks D
    and exits: D's getppid() must become the init's pid, 1, and the init must
    be able to reap D. The helper outside is a child subreaper and must not
    get D. Control: no CLONE_NEWPID, so D goes to that subreaper, not to the
    process that played init.
    """
    entry = ("clone3", ctx.isolate(NEWPID))
    seen = _in_helper(ctx, _run_in_pidns, entry, _orphan_parent)
    ctx.expect_equal(seen["new_parent"], seen["init"], "the orphan's new parent (getppid())")
    ctx.expect(seen["reaped_by_init"], "the init reaps the orphan", True, False)
    ctx.expect_equal(seen["init"], 1, "pid of the init that adopted the orphan")


# -- PID-08 ----------------------------------------------------------------------


def _outside_view(outer: list[int]) -> dict[str, Any]:
    """In the init (own mount ns): try to reach *outer* pids by kill(2) and through /proc."""
    seen: dict[str, Any] = {str(p): _attempt(os.kill, p, 0) for p in outer}
    # kill(-1, sig) reaches every process but init and the caller (LTP pidns10);
    # signal 0 only checks, so the control cannot hurt anything.
    seen["-1"] = _attempt(os.kill, -1, 0)
    _mount_proc()
    seen["in /proc"] = sorted(set(outer) & set(_proc_pids()))
    return seen


@check(
    "pid.outside_invisible",
    catalogue="PID-08",
    level="MUST",
    anchors=("LTP pidns06", "LTP pidns10", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def outside_invisible(ctx: Context) -> None:
    """Processes outside a pid namespace can't be signalled from inside (ESRCH) nor seen in /proc.

    The init gets the pids of two outside processes (the check itself and an
    idle sibling): kill(pid, 0) must fail with ESRCH for both, kill(-1, 0)
    must find nobody (ESRCH, LTP pidns10), and a procfs it mounts must not
    list them. Control: no CLONE_NEWPID, so all of them are reachable.
    """
    sibling = ctx.spawn_child(_idle)
    sibling.recv()
    outer = [os.getpid(), sibling.pid]
    flags = ctx.isolate(NEWPID) | NEWNS
    seen = _in_helper(ctx, _run_in_pidns, ("clone3", flags), _outside_view, outer)
    for pid in outer:
        ctx.expect_equal(seen[str(pid)], "ESRCH", f"kill({pid}, 0) of an outside process")
    ctx.expect_equal(seen["-1"], "ESRCH", "kill(-1, 0) from an init with no other members")
    ctx.expect_equal(seen["in /proc"], [], "outside pids listed in the namespace's /proc")


# -- PID-09 ----------------------------------------------------------------------


class _MqAttr(ctypes.Structure):
    """``struct mq_attr`` (<mqueue.h>)."""

    _fields_ = [
        ("mq_flags", ctypes.c_long),
        ("mq_maxmsg", ctypes.c_long),
        ("mq_msgsize", ctypes.c_long),
        ("mq_curmsgs", ctypes.c_long),
        ("__reserved", ctypes.c_long * 4),
    ]


class _SigEvent(ctypes.Structure):
    """``struct sigevent`` (<bits/types/sigevent_t.h>): 64 bytes on every Linux ABI."""

    _fields_ = [
        ("sigev_value", ctypes.c_void_p),  # union sigval
        ("sigev_signo", ctypes.c_int),
        ("sigev_notify", ctypes.c_int),
        ("_sigev_un", ctypes.c_byte * (64 - 16)),
    ]


assert ctypes.sizeof(_SigEvent) == 64
_SIGEV_SIGNAL = 0  # <bits/sigevent-consts.h>
_SI_MESGQ = -3  # <bits/siginfo-consts.h>


def _load_mq() -> Any:
    # glibc 2.34 moved the mq_* functions from librt into libc.
    lib = ctypes.CDLL(None, use_errno=True)
    if not hasattr(lib, "mq_open"):
        lib = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)
    lib.mq_open.restype = ctypes.c_int
    lib.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_MqAttr)]
    lib.mq_notify.restype = ctypes.c_int
    lib.mq_notify.argtypes = [ctypes.c_int, ctypes.POINTER(_SigEvent)]
    lib.mq_send.restype = ctypes.c_int
    lib.mq_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]
    lib.mq_receive.restype = ctypes.c_ssize_t
    lib.mq_receive.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_uint),
    ]
    lib.mq_close.restype = ctypes.c_int
    lib.mq_close.argtypes = [ctypes.c_int]
    lib.mq_unlink.restype = ctypes.c_int
    lib.mq_unlink.argtypes = [ctypes.c_char_p]
    return lib


_mq = _load_mq()
_MQ_MSGSIZE = 8


def _mq_check(ret: int, call: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return ret


def _mq_open(name: bytes, create: bool) -> int:
    attr = _MqAttr(mq_maxmsg=1, mq_msgsize=_MQ_MSGSIZE)  # tiny: RLIMIT_MSGQUEUE is per user
    oflag = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    return _mq_check(_mq.mq_open(name, oflag, 0o600, ctypes.byref(attr)), "mq_open")


def _mq_notify(mqd: int, sig: int) -> None:
    ev = _SigEvent(sigev_signo=sig, sigev_notify=_SIGEV_SIGNAL)
    _mq_check(_mq.mq_notify(mqd, ctypes.byref(ev)), "mq_notify")


def _mq_send(mqd: int) -> None:
    _mq_check(_mq.mq_send(mqd, b"nsprim", 6, 0), "mq_send")


def _mq_drain(mqd: int) -> None:
    buf = ctypes.create_string_buffer(_MQ_MSGSIZE)
    _mq_check(_mq.mq_receive(mqd, buf, _MQ_MSGSIZE, None), "mq_receive")


def _wait_siginfo(sig: int, code: Optional[int] = None) -> int:
    """Wait for the blocked *sig*; return its si_pid (checking si_code when given)."""
    info = signal.sigtimedwait([sig], _WAIT)
    if info is None:
        raise TimeoutError(f"no {signal.Signals(sig).name} within {_WAIT} s")
    if code is not None and info.si_code != code:
        raise RuntimeError(f"{signal.Signals(sig).name} had si_code {info.si_code}, not {code}")
    return int(info.si_pid)


def _member_sends(mqd: int) -> int:
    """From a new member: signal the init and post to the queue; return the member's pid."""
    member = os.fork()
    if member == 0:
        try:
            os.kill(os.getppid(), signal.SIGUSR1)
            _mq_send(mqd)
        finally:
            _child_exit(0)
    _wait(member)
    return member


def _siginfo_receiver(name: bytes, cmd_fd: int, reply_fd: int) -> dict[str, int]:
    """In the init: collect si_pid of a signal and an mq notification from outside, then inside."""
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGUSR2])
    mqd = _mq_open(name, create=False)
    try:
        _mq_notify(mqd, signal.SIGUSR2)
        os.write(reply_fd, b"r")  # ready: the ancestor sends now
        if not os.read(cmd_fd, 1):
            raise RuntimeError("the ancestor went away before sending")
        seen = {
            "signal from ancestor": _wait_siginfo(signal.SIGUSR1),
            "mq from ancestor": _wait_siginfo(signal.SIGUSR2, _SI_MESGQ),
        }
        _mq_drain(mqd)
        _mq_notify(mqd, signal.SIGUSR2)  # notification is one-shot (mq_notify(3))
        seen["member"] = _member_sends(mqd)
        seen["signal from member"] = _wait_siginfo(signal.SIGUSR1)
        seen["mq from member"] = _wait_siginfo(signal.SIGUSR2, _SI_MESGQ)
        _mq_drain(mqd)
    finally:
        _mq.mq_close(mqd)
    return seen


def _siginfo_from_ancestor(flags: int, name: bytes) -> Any:
    """PID-09 in the helper: own the queue, start the receiving init, send it both kinds."""
    mqd = _mq_open(name, create=True)
    cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
    reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    init = -1
    try:
        init = _clone3(flags)
        if init == 0:
            for fd in (rfd, cmd_w, reply_r):
                os.close(fd)
            _serve_result(wfd, _siginfo_receiver, (name, cmd_r, reply_w))
        for fd in (cmd_r, reply_w, wfd):
            os.close(fd)
        _recv_byte(reply_r)
        os.kill(init, signal.SIGUSR1)
        _mq_send(mqd)
        os.write(cmd_w, b"s")
        ok, msg = _recv_msg(rfd)
    finally:
        for fd in (cmd_r, cmd_w, reply_r, reply_w, rfd, wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if init > 0:
            _kill_and_reap(init)
        _mq.mq_close(mqd)
        _mq.mq_unlink(name)
    if not ok:
        return InitDied("the receiver died before reporting")
    kind, value = msg
    if kind == "exc":
        raise value
    return value


@check(
    "pid.siginfo_translation",
    catalogue="PID-09",
    level="MUST",
    anchors=("LTP pidns12", "LTP pidns16", "LTP pidns30", "LTP pidns31", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS", "POSIX_MQUEUE")),
    timeout=6.0,
)
def siginfo_translation(ctx: Context) -> None:
    """si_pid is 0 for a sender outside the receiver's pid namespace, else its namespace pid.

    The init blocks SIGUSR1/SIGUSR2 and registers for SIGUSR2 on a POSIX
    message queue (mq_notify(3), SIGEV_SIGNAL). The helper, outside, sends
    SIGUSR1 and posts a message: both siginfos must carry si_pid 0 (LTP
    pidns12, pidns30). A member inside then does the same: si_pid must be
    the member's namespace pid (LTP pidns16, pidns31). Control: no
    CLONE_NEWPID, so the helper is visible and its pid appears.
    """
    name = f"/nsprim-pid-siginfo-{os.getpid()}-{int(ctx.control)}".encode()
    seen = _in_helper(ctx, _siginfo_from_ancestor, ctx.isolate(NEWPID), name)
    ctx.expect(isinstance(seen, dict), "the receiving init reported", "a report", seen)
    ctx.expect_equal(seen["signal from ancestor"], 0, "si_pid of SIGUSR1 sent by an ancestor")
    ctx.expect_equal(seen["mq from ancestor"], 0, "si_pid of an mq notification by an ancestor")
    ctx.expect_equal(seen["signal from member"], seen["member"], "si_pid of SIGUSR1 from a member")
    ctx.expect_equal(
        seen["mq from member"], seen["member"], "si_pid of an mq notification by a member"
    )


# -- PID-10 ----------------------------------------------------------------------


def _absolute_level() -> int:
    """Return the level of this process's pid namespace (0 = initial), or raise Skip.

    Runs in a helper with its own mount namespace: unmounting the sandbox's
    /proc there uncovers the procfs the runner's mount namespace had, whose
    NSpid line for us starts at that procfs's pid namespace. It is the
    initial one when its pid 2 is kthreadd (kernel threads live only there).
    """
    try:
        syscalls.umount("/proc", int(UmountFlags.DETACH))
    except OSError as err:
        raise Skip(
            f"cannot uncover the runner's procfs under the sandbox's /proc ({err})"
        ) from None
    try:
        with open("/proc/2/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        kthread = bool(int(fields[6]) & _PF_KTHREAD)  # field 9, counted after "(comm)"
    except (OSError, IndexError, ValueError):
        kthread = False
    if not kthread:
        raise Skip(
            "the runner's procfs is not the initial pid namespace's (pid 2 is not kthreadd), "
            "so the absolute nesting level is not observable"
        )
    return len(_nspid()) - 1


def _nest(flags: int, attempts: int, wfd: int) -> None:
    """Make a chain of processes, each cloned with *flags* by the previous one.

    The process where the chain ends writes ``(attempt, outcome)`` on *wfd*:
    the number of the clone3 that failed and its errno name, or
    ``(attempts, "ok")`` when all succeeded. Every link waits for the one
    below it and exits; only the caller returns.
    """
    top = os.getpid()
    try:
        for attempt in range(1, attempts + 1):
            try:
                pid = _clone3(flags)
            except OSError as err:
                _send_msg(wfd, (attempt, _errname(err)))
                return
            if pid == 0:
                syscalls.set_pdeathsig(signal.SIGKILL)
                if attempt == attempts:
                    _send_msg(wfd, (attempt, "ok"))
                    return
                continue  # the child goes one level deeper
            os.waitpid(pid, 0)
            return
    finally:
        if os.getpid() != top:
            _child_exit(0)


def _nesting(flags: int, attempts: int) -> tuple[int, str]:
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        _nest(flags, attempts, wfd)
        os.close(wfd)
        wfd = -1
        ok, report = _recv_msg(rfd)
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)
    if not ok:
        raise RuntimeError("the chain ended without a report")
    return (int(report[0]), str(report[1]))


@check(
    "pid.nesting_limit",
    catalogue="PID-10",
    level="MUST",
    anchors=("LTP pidns32", "pid_namespaces(7)", "clone(2) ENOSPC"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=8.0,
)
def nesting_limit(ctx: Context) -> None:
    """Pid namespaces nest 32 levels below the initial one; a 33rd level fails with ENOSPC.

    The check learns its own level L (the sandbox is at least 1), then a
    chain of processes each clone3(CLONE_NEWPID)s the next: the first
    32 - L must succeed and the next one must fail with ENOSPC (since 3.7;
    LTP pidns32 counts the same chain from the initial namespace). Control:
    the chain clones without CLONE_NEWPID (the precondition, depth, is
    removed), so every step succeeds.
    """
    try:
        with open("/proc/sys/user/max_pid_namespaces") as f:
            budget = int(f.read())
    except OSError:
        budget = MAX_PID_NS_LEVEL
    if budget < MAX_PID_NS_LEVEL:
        raise Skip(f"user.max_pid_namespaces is {budget}: ENOSPC would come from that limit")
    level = ctx.in_child(_absolute_level, unshare=NEWNS)  # forks nothing
    allowed = MAX_PID_NS_LEVEL - level
    seen = _in_helper(ctx, _nesting, ctx.isolate(NEWPID), allowed + 1, timeout=8.0)
    ctx.expect_equal(
        seen,
        (allowed + 1, "ENOSPC"),
        f"(attempt, outcome) where the chain from level {level} stopped",
    )


# -- PID-11 ----------------------------------------------------------------------


def _fork_after_init_exit(flags: int) -> str:
    """unshare(flags); fork an init that exits at once; then try to fork again."""
    syscalls.unshare(flags)
    first = os.fork()
    if first == 0:
        _child_exit(0)
    _wait(first)
    try:
        second = os.fork()
    except OSError as err:
        return _errname(err)
    if second == 0:
        _child_exit(0)
    _wait(second)
    return "ok"


@check(
    "pid.init_one_shot",
    catalogue="PID-11",
    level="MUST",
    anchors=("selftest pid_namespace/regression_enomem", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(3, 8), kconfig=("PID_NS",)),
    timeout=5.0,
)
def init_one_shot(ctx: Context) -> None:
    """After the init of a namespace made by unshare(CLONE_NEWPID) exits, fork() fails with ENOMEM.

    A helper unshares CLONE_NEWPID, forks the namespace's init, which exits
    at once, and forks again: the namespace is dead, so the second fork must
    fail with ENOMEM (not EAGAIN: kernel commits 35f71bc0a09a, b26ebfe12f34).
    Control: no CLONE_NEWPID, so the second fork succeeds.
    """
    seen = _in_helper(ctx, _fork_after_init_exit, ctx.isolate(NEWPID))
    ctx.expect_equal(seen, "ENOMEM", "fork() after the namespace's init exited")


# -- PID-12 ----------------------------------------------------------------------

_THREAD_START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_pthread_create = _libc.pthread_create
_pthread_create.restype = ctypes.c_int
_pthread_create.argtypes = [
    ctypes.POINTER(ctypes.c_ulong),
    ctypes.c_void_p,
    _THREAD_START,
    ctypes.c_void_p,
]
_pthread_join = _libc.pthread_join
_pthread_join.restype = ctypes.c_int
_pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]


def _thread_body(arg: Optional[int]) -> None:
    return None


_THREAD_BODY = _THREAD_START(_thread_body)  # kept alive for the module's lifetime


def _try_thread() -> str:
    """Create and join one thread with pthread_create(3); return "ok" or its errno name.

    Python's threading hides the errno ("can't start new thread"), so the
    thread is made with pthread_create directly, which returns it.
    """
    tid = ctypes.c_ulong()
    rc = _pthread_create(ctypes.byref(tid), None, _THREAD_BODY, None)
    if rc:
        return errno.errorcode.get(rc, str(rc))
    _pthread_join(tid.value, None)
    return "ok"


def _start_init() -> int:
    """In a helper that unshared CLONE_NEWPID: start the namespace's init; return its pid.

    ``pid_for_children`` can only be opened once its namespace has an init.
    The init is clone3(CLONE_PARENT)ed, so it is the check's child and the
    check kills and reaps it, not the sandbox's init. clone3(2) wants
    exit_signal 0 with CLONE_PARENT, which makes it a "clone" child that only
    waitpid(__WALL) sees.
    """
    pid = syscalls.clone3(int(CloneFlags.PARENT), exit_signal=0)
    assert isinstance(pid, int)
    if pid == 0:
        try:
            time.sleep(60)
        finally:
            _child_exit(0)
    return pid


def _for_children(active: tuple[int, int]) -> str:
    """Describe /proc/self/ns/pid_for_children relative to the *active* pid namespace."""
    try:
        key = _ns_key("/proc/self/ns/pid_for_children")
    except FileNotFoundError:
        # pidns_for_children_get(): ENOENT while the namespace has no init yet.
        return "a new namespace without an init (ENOENT)"
    return "the active namespace" if key == active else "another namespace"


def _caller_not_moved(how: str, arg: Any) -> dict[str, Any]:
    """unshare(arg) or setns(open(arg)); report what moved and what thread creation does."""
    pid = os.getpid()
    active = _ns_key("/proc/self/ns/pid")
    if how == "unshare":
        syscalls.unshare(arg)
    else:
        fd = os.open(arg, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, NEWPID)
        finally:
            os.close(fd)
    seen: dict[str, Any] = {
        "pid unchanged": os.getpid() == pid,
        "pid ns unchanged": _ns_key("/proc/self/ns/pid") == active,
        "pid_for_children": _for_children(active),
        "thread": _try_thread(),
    }
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, NEWPID)  # back to the active namespace
    finally:
        os.close(fd)
    seen["pid_for_children after reset"] = _for_children(active)
    seen["thread after reset"] = _try_thread()
    return seen


@check(
    "pid.caller_not_moved",
    catalogue="PID-12",
    level="MUST",
    anchors=(
        "runc libcontainer/nsenter/nsexec.c",
        "mitogen setns.py",
        "gentoo/portage#1633",
        "selftest proc/proc-pidns",
        "pid_namespaces(7)",
    ),
    needs=Needs(min_kernel=(4, 12), kconfig=("PID_NS",)),
    timeout=5.0,
)
def caller_not_moved(ctx: Context) -> None:
    """unshare/setns(CLONE_NEWPID) move only pid_for_children; threads fail (EINVAL) until reset.

    In each variant (unshare(CLONE_NEWPID); setns(2) into the pid namespace
    a helper made with its init) the caller's getpid() and /proc/self/ns/pid
    must stay, ``pid_for_children`` must move (after unshare it reads ENOENT
    until the new namespace has an init), and pthread_create(3) must
    fail with EINVAL (a thread can't live in another pid namespace than its
    group, kernel copy_process()); after setns(2) back to /proc/self/ns/pid,
    ``pid_for_children`` is the active namespace again and threads work.
    Control: no CLONE_NEWPID (unshare(0); the setns target is the caller's
    own namespace), so nothing moves and the thread starts.
    """
    flags = ctx.isolate(NEWPID)
    keeper = ctx.spawn_child(_start_init, unshare=flags)
    ctx.defer(_kill_and_reap, keeper.recv(), _WALL)
    variants = {"unshare": flags, "setns": keeper.ns_path("pid_for_children")}
    for how, arg in variants.items():
        seen = _in_helper(ctx, _caller_not_moved, how, arg)
        ctx.expect(seen["pid unchanged"], f"getpid() unchanged after {how}", True, False)
        ctx.expect(
            seen["pid ns unchanged"], f"/proc/self/ns/pid unchanged after {how}", True, False
        )
        ctx.expect(
            seen["pid_for_children"] != "the active namespace",
            f"pid_for_children is another namespace after {how}",
            "another namespace",
            seen["pid_for_children"],
        )
        ctx.expect_equal(seen["thread"], "EINVAL", f"pthread_create() after {how}")
        ctx.expect_equal(
            seen["pid_for_children after reset"],
            "the active namespace",
            f"pid_for_children after {how} and setns(own pid ns)",
        )
        ctx.expect_equal(
            seen["thread after reset"], "ok", f"pthread_create() after {how} and reset"
        )


# -- PID-13 ----------------------------------------------------------------------

#: The pids PID-13 asks for in the check's (fresh, sparsely used) pid namespace.
_TID_OUTER = (4242, 4343)
_TID_MIDDLE = 42


def _clone_report(flags: int, set_tid: list[int]) -> Any:
    """clone3(flags, set_tid); return the child's NSpid, its errno name, or InitDied."""
    try:
        return _run_in_pidns(("clone3", flags, set_tid), _nspid)
    except TimeoutError:
        raise
    except OSError as err:  # from clone3 itself
        return _errname(err)


def _inner_set_tid(flags: int) -> dict[str, Any]:
    """In A (pid 1 of a new ns): clone B two levels down, and try a pid != 1 for a new ns."""
    return {
        "B": _clone_report(flags, [1, _TID_MIDDLE, _TID_OUTER[1]]),
        "no init": _try_clone3(flags, [7]),
    }


def _set_tid_chain(flags: int) -> dict[str, Any]:
    """PID-13 in the helper: A via clone3(flags, set_tid=[1, X]), B inside A; then reuse X."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    try:
        a = _clone3(flags, [1, _TID_OUTER[0]])
    except OSError as err:
        for fd in (rfd, wfd, go_r, go_w):
            os.close(fd)
        return {"A": _errname(err)}
    if a == 0:
        try:
            os.close(rfd)
            os.close(go_w)
            syscalls.set_pdeathsig(signal.SIGKILL)
            _send_msg(wfd, {"A": _nspid(), **_inner_set_tid(flags)})
            os.read(go_r, 1)  # stay alive (holding pid X) until the helper has retried X
        finally:
            _child_exit(0)
    for fd in (wfd, go_r):
        os.close(fd)
    try:
        ok, seen = _recv_msg(rfd)
        if not ok:
            return {"A": InitDied(_status_text(_kill_and_reap(a)))}
        seen["X again"] = _try_clone3(flags, [1, _TID_OUTER[0]])
    finally:
        os.close(rfd)
        os.close(go_w)
        _kill_and_reap(a)
    return dict(seen)


@check(
    "pid.nspid_chain",
    catalogue="PID-13",
    level="MUST",
    anchors=(
        "selftest clone3/clone3_set_tid",
        "selftest pid_namespace/pidns_init_via_setns",
        "LTP clone304",
        "proc(5) NSpid",
    ),
    needs=Needs(min_kernel=(5, 5), kconfig=("PID_NS",)),
    timeout=5.0,
)
def nspid_chain(ctx: Context) -> None:
    """/proc/PID/status NSpid lists one pid per pid-namespace level, and clone3 set_tid picks them.

    A helper clone3(CLONE_NEWPID, set_tid=[1, 4242])s A, and A clones B with
    set_tid=[1, 42, 4343]: A's NSpid must read ``4242 1`` and B's
    ``4343 42 1`` (outermost first). A pid already in use must fail with
    EEXIST, and a pid other than 1 for a new namespace (no init yet) with
    EINVAL (selftest clone3_set_tid). Needs CAP_SYS_ADMIN or
    CAP_CHECKPOINT_RESTORE over every level set. Control: no CLONE_NEWPID,
    so there is no level for the 1, and pid 1 of the check's namespace is
    taken (EEXIST).
    """
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    if pid_max <= max(_TID_OUTER):
        raise Skip(f"kernel.pid_max is {pid_max}, too small for the chosen pids")
    seen = _in_helper(ctx, _set_tid_chain, ctx.isolate(NEWPID))
    if seen.get("A") == "EPERM":
        raise Skip("clone3 set_tid needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE here (EPERM)")
    ctx.expect_equal(seen["A"], [_TID_OUTER[0], 1], "NSpid of A (set_tid=[1, 4242])")
    ctx.expect_equal(
        seen["B"], [_TID_OUTER[1], _TID_MIDDLE, 1], "NSpid of B (set_tid=[1, 42, 4343])"
    )
    ctx.expect_equal(seen["X again"], "EEXIST", "clone3 with set_tid naming a pid in use")
    ctx.expect_equal(seen["no init"], "EINVAL", "clone3(CLONE_NEWPID) with set_tid=[7]")


# -- PID-14 ----------------------------------------------------------------------


def _join_ancestor(ancestor_fd: int) -> str:
    """In the init: try setns(2) into the (inherited) fd of an ancestor pid namespace."""
    return _attempt(syscalls.setns, ancestor_fd, NEWPID)


def _descendant_view() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "nspid": _nspid(),
        "ns": _ns_key("/proc/self/ns/pid"),
    }


def _join_both_ways(flags: int) -> dict[str, Any]:
    """PID-14 in the helper: the init tries the ancestor; the helper joins the init's namespace."""
    ancestor = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # the init inherits it
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    init = _clone3(flags)
    if init == 0:
        try:
            os.close(rfd)
            os.close(go_w)
            syscalls.set_pdeathsig(signal.SIGKILL)
            _send_msg(wfd, _join_ancestor(ancestor))
            os.read(go_r, 1)  # keep the namespace alive for the helper's join
        finally:
            _child_exit(0)
    for fd in (ancestor, wfd, go_r):
        os.close(fd)
    try:
        ok, seen_ancestor = _recv_msg(rfd)
        if not ok:
            return {"ancestor": "the init died before reporting"}
        init_ns = _ns_key(f"/proc/{init}/ns/pid")
        seen = {
            "ancestor": seen_ancestor,
            "init ns": init_ns,
            "descendant": _run_in_pidns(("setns", f"/proc/{init}/ns/pid"), _descendant_view),
        }
    finally:
        os.close(rfd)
        os.close(go_w)
        _kill_and_reap(init)
    return seen


@check(
    "pid.no_ancestor_join",
    catalogue="PID-14",
    level="MUST",
    anchors=("setns(2)", "selftest pid_namespace/pidns_init_via_setns", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def no_ancestor_join(ctx: Context) -> None:
    """setns(2) to an ancestor pid namespace fails (EINVAL); to a descendant, children land there.

    The init of a new namespace inherits an fd of its parent's pid namespace
    and setns(2)es to it: EINVAL. The helper, outside, setns(2)es into the
    init's namespace and forks: the child must be in that namespace, with a
    second NSpid level, pid 2 there and parent 0 (invisible). Control: no
    CLONE_NEWPID, so the "ancestor" is the init's own namespace and the join
    succeeds.
    """
    seen = _in_helper(ctx, _join_both_ways, ctx.isolate(NEWPID))
    ctx.expect_equal(seen["ancestor"], "EINVAL", "setns(2) into an ancestor pid namespace")
    child = seen["descendant"]
    ctx.expect_equal(child["ns"], seen["init ns"], "pid namespace of a child forked after the join")
    ctx.expect_equal(len(child["nspid"]), 2, "NSpid levels of that child")
    ctx.expect_equal((child["pid"], child["ppid"]), (2, 0), "(getpid(), getppid()) of that child")
