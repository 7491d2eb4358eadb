"""PID namespace checks: PID-01 to PID-23.

Layer: conformance checks. Imports public nsprim names, the conformance
registry, :mod:`._procs` (the processes under test) and :mod:`.._libc`
(POSIX message queues for PID-09, pthread_create for PID-12).

Shape (see :mod:`.uts`): the check forks a helper (:func:`._procs.in_helper`,
which makes it a child subreaper), and the helper creates the process under
test with ``clone3``/``unshare``+``fork``/``setns``+``fork`` using the flags
``ctx.isolate`` returned, so the negative control is the same code without
CLONE_NEWPID (or, for guarantees about an error or a privilege, with the
precondition removed). The process under test runs a module-level function
and sends its result back over a pipe (:func:`._procs.run_in_pidns`); if it
dies instead, the result is an :class:`._procs.InitDied` value, which the
check compares like any other, so a control that kills the process FAILs
rather than ERRORs. A process cloned into a new pid namespace is confirmed
to be there by identity (:func:`._procs.clone_run`), or the check FAILs.

Every process made here is reaped by its parent before the helper returns,
and whatever a control orphans on purpose comes back to the helper, which is
a child subreaper, and is killed and reaped there. Long-lived ones also have
PR_SET_PDEATHSIG(SIGKILL), so a helper killed on timeout takes them along,
except where surviving the parent is what a check measures (PID-06); killing
a pid-namespace init takes its whole namespace (pid_namespaces(7)).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import time
from typing import Any, Optional

from nsprim import UnsupportedError, syscalls
from nsprim.flags import CloneFlags, UmountFlags

from .. import _libc
from ..registry import Context, Needs, Skip, check
from ._common import (
    NEWNS,
    NEWPID,
    NEWUSER,
    WALL,
    attempt,
    child_exit,
    errname,
    idle,
    ns_key,
    setns_path,
    unshare,
)
from ._procs import (
    WAIT,
    InitDied,
    clone_run,
    fork_run,
    in_helper,
    kill_and_reap,
    mount_proc,
    nspid,
    proc_pids,
    recv_byte,
    recv_msg,
    report_then_hold,
    run_in_pidns,
    send_msg,
    serve_result,
    status_text,
    still_alive,
    try_clone3,
    wait,
)

__all__: list[str] = []

#: MAX_PID_NS_LEVEL (include/linux/pid_namespace.h): the deepest pid namespace level.
MAX_PID_NS_LEVEL = 32
#: PF_KTHREAD (include/linux/sched.h): the per-task flag (stat field 9) of kernel threads.
_PF_KTHREAD = 0x00200000


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
        pid = in_helper(ctx, run_in_pidns, (variant, flags), _getpid)
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
    seen = in_helper(ctx, run_in_pidns, ("clone3", ctx.isolate(NEWPID)), _init_identity)
    ctx.expect_equal(seen["ppid"], 0, "getppid() of a pid namespace's init")
    ctx.expect_equal(seen["sid"], 1, "getsid(0) of the init after setsid()")
    ctx.expect_equal(seen["pgid"], 1, "getpgid(0) of the init after setsid()")


# -- PID-03 ----------------------------------------------------------------------


def _until_eof(rfd: int, wfd: int) -> None:
    """A member that lives until the init closes its end of the pipe."""
    os.close(wfd)
    os.read(rfd, 1)


def _proc_view() -> dict[str, Any]:
    """Mount /proc, start one more member, and report what /proc shows."""
    mount_proc()
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    member = fork_run(_until_eof, rfd, wfd, pdeathsig=True)
    os.close(rfd)
    try:
        seen = {
            "self": os.readlink("/proc/self"),
            "pid": os.getpid(),
            "listed": proc_pids(),
            "members": sorted([os.getpid(), member]),
        }
    finally:
        os.close(wfd)
        wait(member)
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
    seen = in_helper(ctx, run_in_pidns, ("clone3", flags), _proc_view)
    ctx.expect_equal(seen["self"], str(seen["pid"]), "/proc/self inside the namespace")
    ctx.expect_equal(seen["listed"], seen["members"], "pids listed in the namespace's /proc")
    ctx.expect_equal(seen["members"], [1, 2], "pids of the namespace's two members")


# -- PID-04 ----------------------------------------------------------------------

#: Signals whose default action ends a process; SIGKILL last (LTP pidns04 sends SIGKILL).
_FATAL_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGKILL)


def _kill_parent(sig: int) -> None:
    os.kill(os.getppid(), sig)


def _send_from_member(sig: int) -> None:
    """Fork a member that sends *sig* to its parent (kill(getppid(), sig)); reap it."""
    killer = fork_run(_kill_parent, sig)
    # The signal is queued (or dropped) before the killer exits; a fatal one
    # would end this process on its way back from waitpid.
    wait(killer)


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
    deadline = time.monotonic() + WAIT
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
    seen = in_helper(ctx, run_in_pidns, ("clone3", ctx.isolate(NEWPID)), _signal_self_from_member)
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


def _echo_loop(cmd_fd: int, reply_fd: int, *others: int) -> None:
    """The init for PID-05: say ready, then answer each byte on *cmd_fd* with one on *reply_fd*.

    It leaves SIGTERM at SIG_DFL (a handler inherited from the helper would make
    SIGTERM a handled signal, which reaches an init) before it says ready, so
    no signal is sent before that.
    """
    for fd in others:  # the helper's ends
        os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.write(reply_fd, b"r")
    while os.read(cmd_fd, 1):
        os.write(reply_fd, b"p")


def _kill_from_inside(init: int, sig: int) -> None:
    """Join *init*'s pid namespace and send *sig* to pid 1 from a child (setns moves only
    the children, PID-12)."""
    setns_path(f"/proc/{init}/ns/pid", NEWPID)
    wait(fork_run(os.kill, 1, sig))


def _send_signal(init: int, sig: int, from_inside: bool) -> None:
    """Send *sig* to *init* from a fresh process: of this namespace, or of init's (setns)."""
    if from_inside:
        wait(fork_run(_kill_from_inside, init, sig))
    else:
        wait(fork_run(os.kill, init, sig))


def _observe(init: int, cmd_fd: int, reply_fd: int) -> str:
    """Ping the init; return whether it answers ("ignored"), stopped or died (deterministic).

    A signal that was delivered is acted on before the init returns from its
    read(2), so an answer proves the signal was dropped.
    """
    with contextlib.suppress(BrokenPipeError):
        os.write(cmd_fd, b"x")
    deadline = time.monotonic() + WAIT
    poller = select.poll()
    poller.register(reply_fd, select.POLLIN)
    while time.monotonic() < deadline:
        pid, status = os.waitpid(init, os.WNOHANG | os.WUNTRACED)
        if pid:
            return "stopped" if os.WIFSTOPPED(status) else status_text(status)
        if poller.poll(2) and os.read(reply_fd, 1):
            return "ignored"
    return "no change"


def _signal_init(flags: int, from_inside: bool) -> dict[str, str]:
    """PID-05 in the helper: start an echoing init, signal it, record what each signal did."""
    cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
    reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
    init = clone_run(flags, _echo_loop, cmd_r, reply_w, cmd_w, reply_r)
    os.close(cmd_r)
    os.close(reply_w)
    seen: dict[str, str] = {}
    try:
        recv_byte(reply_r)  # the init is ready: SIGTERM is at SIG_DFL there
        for sig, _ in _ANCESTOR_SIGNALS.items():
            _send_signal(init, sig, from_inside)
            seen[sig.name] = outcome = _observe(init, cmd_w, reply_r)
            if outcome == "stopped":
                os.kill(init, signal.SIGCONT)
                recv_byte(reply_r)  # the answer to the ping it could not give while stopped
            elif outcome != "ignored":
                break
    finally:
        os.close(cmd_w)
        os.close(reply_r)
        kill_and_reap(init)
    return seen


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
    seen = in_helper(ctx, _signal_init, NEWPID, ctx.control)
    for sig, expected in _ANCESTOR_SIGNALS.items():
        ctx.expect_equal(seen.get(sig.name), expected, f"effect of {sig.name} on the init")


# -- PID-06 ----------------------------------------------------------------------


def _report_and_sleep(wfd: int) -> None:
    """A member: report its pid as the helper sees it (first NSpid), then sleep until killed."""
    send_msg(wfd, nspid()[0])
    time.sleep(30)


def _nested_member(wfd: int) -> None:
    """A member that is itself init of a nested pid namespace with one member of its own."""
    clone_run(NEWPID, _report_and_sleep, wfd, pdeathsig=False)
    _report_and_sleep(wfd)


def _populate_then_exit(wfd: int, go_fd: int, *others: int) -> None:
    """The init for PID-06: start three members (one in a nested ns), wait for go, exit."""
    for fd in others:  # the helper's ends
        os.close(fd)
    fork_run(_report_and_sleep, wfd)
    fork_run(_nested_member, wfd)
    os.read(go_fd, 1)
    child_exit(0)


def _members_after_init_exit(flags: int) -> dict[str, Any]:
    """PID-06 in the helper: make the init and its members, let init exit, see who is left."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    init = clone_run(flags, _populate_then_exit, wfd, go_r, rfd, go_w)
    os.close(wfd)
    os.close(go_r)
    pidfds: list[int] = []
    try:
        members = []
        for _ in range(3):
            ok, pid = recv_msg(rfd)
            if not ok:
                raise RuntimeError("a member died before reporting its pid")
            members.append(pid)
            pidfds.append(syscalls.pidfd_open(pid))
        os.write(go_w, b"g")
        init_status = status_text(wait(init))
        # zap_pid_ns_processes() kills the members and waits for them before the
        # init can be reaped, so they are gone by now; the grace is for slow machines.
        alive = still_alive(pidfds, 0.5)
    finally:
        for fd in pidfds:
            # The control leaves them running (orphans of the subreaping helper).
            with contextlib.suppress(ProcessLookupError):
                syscalls.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        for fd in (rfd, go_w):
            os.close(fd)
        kill_and_reap(init)
    return {"init": init_status, "members": len(members), "alive": alive}


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
    seen = in_helper(ctx, _members_after_init_exit, flags, timeout=8.0)
    ctx.expect_equal(seen["init"], "exited with status 0", "how the init ended")
    ctx.expect_equal(seen["members"], 3, "members that reported before the init exited")
    ctx.expect_equal(seen["alive"], 0, "members still alive after the init exited")


# -- PID-07 ----------------------------------------------------------------------


def _report_new_parent(wfd: int, old_parent: int) -> None:
    """D: wait until C has exited (getppid() changes), report (own pid, new parent)."""
    deadline = time.monotonic() + WAIT
    while os.getppid() == old_parent and time.monotonic() < deadline:
        time.sleep(0.001)
    send_msg(wfd, (os.getpid(), os.getppid()))


def _fork_orphan(wfd: int) -> None:
    """C: fork D, then exit (so that D is orphaned)."""
    fork_run(_report_new_parent, wfd, os.getpid())


def _orphan_parent() -> dict[str, Any]:
    """In the init: fork C, C forks D and exits; report D's new parent and who reaps D."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    middle = fork_run(_fork_orphan, wfd, pdeathsig=True)
    os.close(wfd)
    try:
        wait(middle)
        ok, report = recv_msg(rfd)
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
    seen = in_helper(ctx, run_in_pidns, entry, _orphan_parent)
    ctx.expect_equal(seen["new_parent"], seen["init"], "the orphan's new parent (getppid())")
    ctx.expect(seen["reaped_by_init"], "the init reaps the orphan", True, False)
    ctx.expect_equal(seen["init"], 1, "pid of the init that adopted the orphan")


# -- PID-08 ----------------------------------------------------------------------


def _outside_view(outer: list[int]) -> dict[str, Any]:
    """In the init (own mount ns): try to reach *outer* pids by kill(2) and through /proc."""
    seen: dict[str, Any] = {str(p): attempt(os.kill, p, 0) for p in outer}
    # kill(-1, sig) reaches every process but init and the caller (LTP pidns10);
    # signal 0 only checks, so the control cannot hurt anything.
    seen["-1"] = attempt(os.kill, -1, 0)
    mount_proc()
    seen["in /proc"] = sorted(set(outer) & set(proc_pids()))
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
    sibling = ctx.spawn_child(idle)
    sibling.recv()
    outer = [os.getpid(), sibling.pid]
    flags = ctx.isolate(NEWPID) | NEWNS
    seen = in_helper(ctx, run_in_pidns, ("clone3", flags), _outside_view, outer)
    for pid in outer:
        ctx.expect_equal(seen[str(pid)], "ESRCH", f"kill({pid}, 0) of an outside process")
    ctx.expect_equal(seen["-1"], "ESRCH", "kill(-1, 0) from an init with no other members")
    ctx.expect_equal(seen["in /proc"], [], "outside pids listed in the namespace's /proc")


# -- PID-09 ----------------------------------------------------------------------


_SI_MESGQ = -3  # <bits/siginfo-consts.h>
_MQ_MSGSIZE = 8


def _mq_open(name: bytes, create: bool) -> int:
    oflag = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    # tiny: RLIMIT_MSGQUEUE is per user
    return _libc.mq_open(name, oflag, maxmsg=1, msgsize=_MQ_MSGSIZE)


def _mq_send(mqd: int) -> None:
    _libc.mq_send(mqd, b"nsprim")


def _mq_drain(mqd: int) -> None:
    _libc.mq_receive(mqd, _MQ_MSGSIZE)


def _wait_siginfo(sig: int, code: Optional[int] = None) -> int:
    """Wait for the blocked *sig*; return its si_pid (checking si_code when given)."""
    info = signal.sigtimedwait([sig], WAIT)
    if info is None:
        raise TimeoutError(f"no {signal.Signals(sig).name} within {WAIT} s")
    if code is not None and info.si_code != code:
        raise RuntimeError(f"{signal.Signals(sig).name} had si_code {info.si_code}, not {code}")
    return int(info.si_pid)


def _signal_and_post(mqd: int) -> None:
    os.kill(os.getppid(), signal.SIGUSR1)
    _mq_send(mqd)


def _member_sends(mqd: int) -> int:
    """From a new member: signal the init and post to the queue; return the member's pid."""
    member = fork_run(_signal_and_post, mqd)
    wait(member)
    return member


def _siginfo_receiver(name: bytes, cmd_fd: int, reply_fd: int, *others: int) -> dict[str, int]:
    """In the init: collect si_pid of a signal and an mq notification from outside, then inside."""
    for fd in others:  # the helper's ends
        os.close(fd)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGUSR2])
    mqd = _mq_open(name, create=False)
    try:
        _libc.mq_notify(mqd, signal.SIGUSR2)
        os.write(reply_fd, b"r")  # ready: the ancestor sends now
        if not os.read(cmd_fd, 1):
            raise RuntimeError("the ancestor went away before sending")
        seen = {
            "signal from ancestor": _wait_siginfo(signal.SIGUSR1),
            "mq from ancestor": _wait_siginfo(signal.SIGUSR2, _SI_MESGQ),
        }
        _mq_drain(mqd)
        _libc.mq_notify(mqd, signal.SIGUSR2)  # notification is one-shot (mq_notify(3))
        seen["member"] = _member_sends(mqd)
        seen["signal from member"] = _wait_siginfo(signal.SIGUSR1)
        seen["mq from member"] = _wait_siginfo(signal.SIGUSR2, _SI_MESGQ)
        _mq_drain(mqd)
    finally:
        _libc.mq_close(mqd)
    return seen


def _siginfo_from_ancestor(flags: int, name: bytes) -> Any:
    """PID-09 in the helper: own the queue, start the receiving init, send it both kinds."""
    mqd = _mq_open(name, create=True)
    cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
    reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    init = -1
    try:
        init = clone_run(
            flags, serve_result, wfd, _siginfo_receiver, name, cmd_r, reply_w, rfd, cmd_w, reply_r
        )
        for fd in (cmd_r, reply_w, wfd):
            os.close(fd)
        cmd_r = reply_w = wfd = -1
        recv_byte(reply_r)
        os.kill(init, signal.SIGUSR1)
        _mq_send(mqd)
        os.write(cmd_w, b"s")
        ok, msg = recv_msg(rfd)
    finally:
        for fd in (cmd_r, cmd_w, reply_r, reply_w, rfd, wfd):
            if fd >= 0:
                os.close(fd)
        if init > 0:
            kill_and_reap(init)
        _libc.mq_close(mqd)
        _libc.mq_unlink(name)
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
    seen = in_helper(ctx, _siginfo_from_ancestor, ctx.isolate(NEWPID), name)
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
    return len(nspid()) - 1


def _nest(flags: int, made: int, attempts: int, wfd: int) -> None:
    """One link of a chain of processes, each cloned with *flags* by the previous one.

    The process where the chain ends writes ``(attempt, outcome)`` on *wfd*:
    the number of the clone3 that failed and its errno name, or
    ``(attempts, "ok")`` when all succeeded. Every link waits for the one
    below it and exits.
    """
    if made == attempts:
        send_msg(wfd, (made, "ok"))
        return
    try:
        pid = clone_run(flags, _nest, flags, made + 1, attempts, wfd)
    except OSError as err:
        send_msg(wfd, (made + 1, errname(err)))
        return
    os.waitpid(pid, 0)


def _nesting(flags: int, attempts: int) -> tuple[int, str]:
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        _nest(flags, 0, attempts, wfd)
        os.close(wfd)
        wfd = -1
        ok, report = recv_msg(rfd)
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
    seen = in_helper(ctx, _nesting, ctx.isolate(NEWPID), allowed + 1, timeout=8.0)
    ctx.expect_equal(
        seen,
        (allowed + 1, "ENOSPC"),
        f"(attempt, outcome) where the chain from level {level} stopped",
    )


# -- PID-11 ----------------------------------------------------------------------


def _fork_after_init_exit(flags: int) -> str:
    """unshare(flags); fork an init that exits at once; then try to fork again."""
    unshare(flags)
    wait(fork_run(idle))
    try:
        second = fork_run(idle)
    except OSError as err:
        return errname(err)
    wait(second)
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
    seen = in_helper(ctx, _fork_after_init_exit, ctx.isolate(NEWPID))
    ctx.expect_equal(seen, "ENOMEM", "fork() after the namespace's init exited")


# -- PID-12 ----------------------------------------------------------------------


def _start_init() -> int:
    """In a helper that unshared CLONE_NEWPID: start the namespace's init; return its pid.

    ``pid_for_children`` can only be opened once its namespace has an init.
    The init is clone3(CLONE_PARENT)ed, so it is the check's child and the
    check kills and reaps it, not the sandbox's init. clone3(2) wants
    exit_signal 0 with CLONE_PARENT, which makes it a "clone" child that only
    waitpid(__WALL) sees.
    """
    return clone_run(int(CloneFlags.PARENT), time.sleep, 60, pdeathsig=False, exit_signal=0)


def _for_children(active: tuple[int, int]) -> str:
    """Describe /proc/self/ns/pid_for_children relative to the *active* pid namespace."""
    try:
        key = ns_key("/proc/self/ns/pid_for_children")
    except FileNotFoundError:
        # pidns_for_children_get(): ENOENT while the namespace has no init yet.
        return "a new namespace without an init (ENOENT)"
    return "the active namespace" if key == active else "another namespace"


def _caller_not_moved(how: str, arg: Any) -> dict[str, Any]:
    """unshare(arg) or setns(open(arg)); report what moved and what thread creation does."""
    pid = os.getpid()
    active = ns_key("/proc/self/ns/pid")
    if how == "unshare":
        unshare(arg)
    else:
        setns_path(arg, NEWPID)
    seen: dict[str, Any] = {
        "pid unchanged": os.getpid() == pid,
        "pid ns unchanged": ns_key("/proc/self/ns/pid") == active,
        "pid_for_children": _for_children(active),
        "thread": _libc.try_pthread(),
    }
    setns_path("/proc/self/ns/pid", NEWPID)  # back to the active namespace
    seen["pid_for_children after reset"] = _for_children(active)
    seen["thread after reset"] = _libc.try_pthread()
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
    ctx.defer(kill_and_reap, keeper.recv(), WALL)
    variants = {"unshare": flags, "setns": keeper.ns_path("pid_for_children")}
    for how, arg in variants.items():
        seen = in_helper(ctx, _caller_not_moved, how, arg)
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
        return run_in_pidns(("clone3", flags, set_tid), nspid)
    except TimeoutError:
        raise
    except OSError as err:  # from clone3 itself
        return errname(err)


def _a_report(flags: int) -> dict[str, Any]:
    """In A (pid 1 of a new ns): its NSpid; clone B two levels down; try a pid != 1 for a new ns."""
    return {
        "A": nspid(),
        "B": _clone_report(flags, [1, _TID_MIDDLE, _TID_OUTER[1]]),
        "no init": try_clone3(flags, [7]),
    }


def _set_tid_chain(flags: int) -> dict[str, Any]:
    """PID-13 in the helper: A via clone3(flags, set_tid=[1, X]), B inside A; then reuse X."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    report = functools.partial(_a_report, flags)
    try:
        # A stays alive (holding pid X) until the helper has retried X.
        a = clone_run(
            flags, report_then_hold, wfd, go_r, report, rfd, go_w, set_tid=[1, _TID_OUTER[0]]
        )
    except OSError as err:
        for fd in (rfd, wfd, go_r, go_w):
            os.close(fd)
        return {"A": errname(err)}
    for fd in (wfd, go_r):
        os.close(fd)
    try:
        ok, seen = recv_msg(rfd)
        if not ok:
            return {"A": InitDied(status_text(kill_and_reap(a)))}
        seen["X again"] = try_clone3(flags, [1, _TID_OUTER[0]])
    finally:
        os.close(rfd)
        os.close(go_w)
        kill_and_reap(a)
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
    seen = in_helper(ctx, _set_tid_chain, ctx.isolate(NEWPID))
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
    try:
        return attempt(syscalls.setns, ancestor_fd, NEWPID)
    finally:
        os.close(ancestor_fd)


def _descendant_view() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "nspid": nspid(),
        "ns": ns_key("/proc/self/ns/pid"),
    }


def _join_both_ways(flags: int) -> dict[str, Any]:
    """PID-14 in the helper: the init tries the ancestor; the helper joins the init's namespace."""
    ancestor = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # the init inherits it
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    # The init keeps the namespace alive for the helper's join.
    report = functools.partial(_join_ancestor, ancestor)
    init = clone_run(flags, report_then_hold, wfd, go_r, report, rfd, go_w)
    for fd in (ancestor, wfd, go_r):
        os.close(fd)
    try:
        ok, seen_ancestor = recv_msg(rfd)
        if not ok:
            return {"ancestor": "the init died before reporting"}
        init_ns = ns_key(f"/proc/{init}/ns/pid")
        seen = {
            "ancestor": seen_ancestor,
            "init ns": init_ns,
            "descendant": run_in_pidns(("setns", f"/proc/{init}/ns/pid"), _descendant_view),
        }
    finally:
        os.close(rfd)
        os.close(go_w)
        kill_and_reap(init)
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
    seen = in_helper(ctx, _join_both_ways, ctx.isolate(NEWPID))
    ctx.expect_equal(seen["ancestor"], "EINVAL", "setns(2) into an ancestor pid namespace")
    child = seen["descendant"]
    ctx.expect_equal(child["ns"], seen["init ns"], "pid namespace of a child forked after the join")
    ctx.expect_equal(len(child["nspid"]), 2, "NSpid levels of that child")
    ctx.expect_equal((child["pid"], child["ppid"]), (2, 0), "(getpid(), getppid()) of that child")


# -- PID-15 ----------------------------------------------------------------------

#: A pid PID-15/16/17 ask for in the check's own (fresh, sparsely used) pid namespace.
_TID_FREE = 4545


def _set_tid_per_level(new_userns: bool) -> dict[str, str]:
    """In a helper: unshare CLONE_NEWUSER (when *new_userns*), then clone3 set_tid per level."""
    if new_userns:
        unshare(NEWUSER)
    return {
        "the new level only": try_clone3(NEWPID, [1]),
        "the new level and the caller's": try_clone3(NEWPID, [1, _TID_FREE]),
    }


@check(
    "pid.set_tid_owner_caps",
    catalogue="PID-15",
    level="MUST",
    anchors=(
        "selftest clone3/clone3_set_tid",
        "clone(2) set_tid EPERM",
        "kernel alloc_pid()",
    ),
    needs=Needs(userns=True, min_kernel=(5, 5), kconfig=("PID_NS", "USER_NS"), ops=("clone3",)),
    timeout=5.0,
)
def set_tid_owner_caps(ctx: Context) -> None:
    """clone3 set_tid needs CAP_SYS_ADMIN in the user ns owning each pid-ns level it sets (EPERM).

    A helper unshares CLONE_NEWUSER (full capabilities there, none over the
    check's pid namespace, which the parent user namespace owns) and
    clone3(CLONE_NEWPID)s twice: with set_tid=[1], which sets only the new
    namespace (owned by the helper's user namespace), it must succeed; with
    set_tid=[1, 4545], which also sets the helper's own pid namespace, it
    must fail with EPERM (kernel alloc_pid() checks every level it sets).
    Control: the helper stays in the check's user namespace, which owns
    both levels, so both clones succeed.
    """
    seen = in_helper(ctx, _set_tid_per_level, not ctx.control)
    if ctx.control and seen["the new level and the caller's"] == "EPERM":
        raise Skip("clone3 set_tid is refused here even in the owning user namespace (EPERM)")
    ctx.expect_equal(
        seen["the new level only"], "ok", "clone3(CLONE_NEWPID, set_tid=[1]) from a child user ns"
    )
    ctx.expect_equal(
        seen["the new level and the caller's"],
        "EPERM",
        "clone3(CLONE_NEWPID, set_tid=[1, 4545]) setting a level owned by the parent user ns",
    )


# -- PID-16 ----------------------------------------------------------------------

#: Capability bits (linux/capability.h).
_CAP_SYS_ADMIN = 21
_CAP_CHECKPOINT_RESTORE = 40  # Linux 5.9


def _set_tid_with(caps: int) -> dict[str, Any]:
    """Keep only the capabilities in the mask *caps*, then clone3 with set_tid=[4545].

    The result's "clone3" is the child's pid (it exits at once and is
    reaped) or the errno name.
    """
    syscalls.capset(caps, caps)
    seen: dict[str, Any] = {"effective": syscalls.capget()[0]}
    try:
        child = clone_run(0, child_exit, set_tid=[_TID_FREE], pdeathsig=False)
    except OSError as err:
        seen["clone3"] = errname(err)
    else:
        wait(child)
        seen["clone3"] = child
    return seen


def _knows_checkpoint_restore() -> Optional[str]:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        return None
    if last >= _CAP_CHECKPOINT_RESTORE:
        return None
    return f"this kernel's last capability is {last}: no CAP_CHECKPOINT_RESTORE (Linux 5.9)"


@check(
    "pid.set_tid_checkpoint_restore",
    catalogue="PID-16",
    level="MUST",
    anchors=(
        "selftest clone3/clone3_cap_checkpoint_restore",
        "capabilities(7) CAP_CHECKPOINT_RESTORE",
        "clone(2) set_tid",
    ),
    needs=Needs(
        min_kernel=(5, 9),
        kconfig=("PID_NS",),
        ops=("clone3",),
        probes=(_knows_checkpoint_restore,),
    ),
    timeout=5.0,
)
def set_tid_checkpoint_restore(ctx: Context) -> None:
    """clone3 set_tid works with CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN alone; with neither, EPERM.

    Three helpers keep one capability set each with capset(2) (the uid
    unchanged) and clone3 a child with set_tid=[4545] in the check's pid
    namespace: only CAP_CHECKPOINT_RESTORE (Linux 5.9) → the child gets
    4545; only CAP_SYS_ADMIN → likewise; no capability → EPERM (selftest
    clone3_cap_checkpoint_restore). Control: the capability-less helper
    keeps CAP_CHECKPOINT_RESTORE, so its clone succeeds.
    """
    cases = (
        ("CAP_CHECKPOINT_RESTORE only", 1 << _CAP_CHECKPOINT_RESTORE, _TID_FREE),
        ("CAP_SYS_ADMIN only", 1 << _CAP_SYS_ADMIN, _TID_FREE),
        ("no capability", (1 << _CAP_CHECKPOINT_RESTORE) if ctx.control else 0, "EPERM"),
    )
    for what, caps, expected in cases:
        seen = in_helper(ctx, _set_tid_with, caps)
        ctx.expect_equal(hex(seen["effective"]), hex(caps), f"CapEff of the helper with {what}")
        ctx.expect_equal(
            seen["clone3"],
            expected,
            f"pid of a clone3(set_tid=[4545]) child, or errno, with {what}",
        )


# -- PID-17 ----------------------------------------------------------------------


def _set_tid_sizes(levels: int, pid_max: int) -> dict[str, str]:
    """clone3 with set_tid one entry longer than *levels*, and with a pid of pid_max."""
    return {
        "too long": try_clone3(NEWPID, [1] * (levels + 1)),
        "pid_max": try_clone3(0, [pid_max]),
    }


@check(
    "pid.set_tid_bounds",
    catalogue="PID-17",
    level="MUST",
    anchors=("selftest clone3/clone3_set_tid", "clone(2) set_tid EINVAL", "LTP clone304"),
    needs=Needs(min_kernel=(5, 5), kconfig=("PID_NS",), ops=("clone3",)),
    timeout=5.0,
)
def set_tid_bounds(ctx: Context) -> None:
    """clone3 set_tid longer than the child's pid-ns levels, or naming pid_max, fails with EINVAL.

    The check learns its own pid-namespace level L (as PID-10 does); a
    clone3(CLONE_NEWPID) child has L + 2 levels, so set_tid with L + 3
    entries must fail with EINVAL, and so must set_tid=[pid_max] (read from
    /proc/sys/kernel/pid_max of the check's namespace). Neither creates a
    process. Control: one entry fewer (the outer entries name pid 1, which
    is taken: EEXIST, or EPERM where a level is owned by an ancestor user
    namespace) and pid_max - 1, so neither is EINVAL.
    """
    level = ctx.in_child(_absolute_level, unshare=NEWNS)  # forks nothing
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    levels = level + 2  # the child's levels: the new namespace and the check's chain
    if ctx.control:
        levels -= 1
        pid_max -= 1
    if levels + 1 > MAX_PID_NS_LEVEL:
        raise Skip(f"the check runs at pid-namespace level {level}: too deep to overshoot")
    seen = in_helper(ctx, _set_tid_sizes, levels, pid_max)
    ctx.expect_equal(
        seen["too long"], "EINVAL", f"clone3(CLONE_NEWPID) with {levels + 1} set_tid entries"
    )
    ctx.expect_equal(seen["pid_max"], "EINVAL", f"clone3 with set_tid=[{pid_max}] (pid_max)")


# -- PID-18 ----------------------------------------------------------------------


def _newpid_again(first: int) -> dict[str, str]:
    """unshare(*first*), then ask for another new pid namespace by clone3 and by unshare."""
    unshare(first)
    seen = {
        "clone3(CLONE_NEWPID)": try_clone3(NEWPID, ()),
        "unshare(CLONE_NEWPID)": attempt(syscalls.unshare, NEWPID),
    }
    setns_path("/proc/self/ns/pid", NEWPID)  # pid_for_children back to the active namespace
    seen["unshare(CLONE_NEWPID) after the reset"] = attempt(unshare, NEWPID)
    return seen


@check(
    "pid.pending_newpid_refused",
    catalogue="PID-18",
    level="MUST",
    anchors=("kernel copy_pid_ns()", "unshare(2) EINVAL", "pid_namespaces(7)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",), ops=("clone3", "setns")),
    timeout=5.0,
)
def pending_newpid_refused(ctx: Context) -> None:
    """While pid_for_children differs from the active pid namespace, CLONE_NEWPID fails with EINVAL.

    A helper unshares CLONE_NEWPID (only pid_for_children moves, PID-12) and
    asks again: clone3(CLONE_NEWPID) and unshare(CLONE_NEWPID) must both
    fail with EINVAL (kernel copy_pid_ns(): a new pid namespace can only be
    a child of the caller's active one). After setns(2) to its own
    /proc/self/ns/pid, unshare(CLONE_NEWPID) works again. Control: the first
    unshare leaves out CLONE_NEWPID, so both requests succeed.
    """
    seen = in_helper(ctx, _newpid_again, ctx.isolate(NEWPID))
    for call in ("clone3(CLONE_NEWPID)", "unshare(CLONE_NEWPID)"):
        ctx.expect_equal(seen[call], "EINVAL", f"{call} after unshare(CLONE_NEWPID)")
    ctx.expect_equal(
        seen["unshare(CLONE_NEWPID) after the reset"],
        "ok",
        "unshare(CLONE_NEWPID) after setns(2) back to the active pid namespace",
    )


# -- PID-19 / PID-20: pidfds across pid namespaces ---------------------------------


def _hold_member() -> tuple[int, int]:
    """Fork a member that lives until reaped; return its pid and a pidfd for it."""
    member = fork_run(time.sleep, 4 * WAIT, pdeathsig=True)
    return member, syscalls.pidfd_open(member)


def _signal_targets(outside_fd: int) -> dict[str, Any]:
    """In the process under test: pidfd_send_signal(0) to an outside process and to a member."""
    member, member_fd = _hold_member()
    try:
        return {
            "outside": attempt(syscalls.pidfd_send_signal, outside_fd, 0),
            "member": attempt(syscalls.pidfd_send_signal, member_fd, 0),
        }
    finally:
        os.close(member_fd)
        kill_and_reap(member)


def _id_triple(info: syscalls.PidfdInfo) -> tuple[int, int, int]:
    return (info.pid, info.tgid, info.ppid)


def _info_targets(outside_fd: int) -> dict[str, Any]:
    """In the process under test: PIDFD_GET_INFO of itself, a member, and an outside process."""
    member, member_fd = _hold_member()
    self_fd = syscalls.pidfd_open(os.getpid())
    try:
        return {
            "self": (os.getpid(), _id_triple(syscalls.pidfd_get_info(self_fd))),
            "member": (member, _id_triple(syscalls.pidfd_get_info(member_fd))),
            "outside": attempt(syscalls.pidfd_get_info, outside_fd),
        }
    except UnsupportedError as err:
        return {"unsupported": str(err)}
    except PermissionError as err:
        # pidfd_info() has no permission check of its own: this is a filter or an LSM.
        return {"refused": f"{errname(err)} for ioctl(PIDFD_GET_INFO) of the caller's own member"}
    finally:
        os.close(self_fd)
        os.close(member_fd)
        kill_and_reap(member)


def _from_both_sides(flags: int, outside_pid: int, inside: str) -> dict[str, Any]:
    """Start an init that reports ``inside(pidfd of outside_pid)``; then use a pidfd of it here.

    The init inherits the pidfd of *outside_pid* (a process of the helper's
    namespace) and holds its namespace until the helper has looked at it
    from outside (pidfd_send_signal and PIDFD_GET_INFO of the init).
    """
    report = functools.partial(_INSIDE[inside], syscalls.pidfd_open(outside_pid))
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    init = clone_run(flags, report_then_hold, wfd, go_r, report, rfd, go_w)
    os.close(report.args[0])
    for fd in (wfd, go_r):
        os.close(fd)
    init_fd = -1
    try:
        ok, seen = recv_msg(rfd)
        if not ok:
            return {"init": InitDied(status_text(kill_and_reap(init)))}
        init_fd = syscalls.pidfd_open(init)
        seen["init"] = init
        seen["helper"] = os.getpid()
        seen["signal to the init"] = attempt(syscalls.pidfd_send_signal, init_fd, 0)
        if inside == "info" and "self" in seen:  # not where the ioctl is missing or refused
            seen["info of the init"] = _id_triple(syscalls.pidfd_get_info(init_fd))
    finally:
        if init_fd >= 0:
            os.close(init_fd)
        os.close(rfd)
        os.close(go_w)
        kill_and_reap(init)
    return dict(seen)


_INSIDE = {"signal": _signal_targets, "info": _info_targets}


@check(
    "pid.pidfd_signal_scope",
    catalogue="PID-19",
    level="MUST",
    anchors=("pidfd_send_signal(2) EINVAL", "kernel access_pidfd_pidns()", "selftest pidfd"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",)),
    timeout=5.0,
)
def pidfd_signal_scope(ctx: Context) -> None:
    """pidfd_send_signal(2) from inside a pid namespace to a process outside it fails with EINVAL.

    A pidfd names a process whatever the namespace, but signalling through
    it needs the target in the sender's pid namespace or a descendant (kernel
    access_pidfd_pidns()). A helper opens a pidfd of an outside idle process
    and starts the init of a new pid namespace, which inherits it:
    pidfd_send_signal(fd, 0) → EINVAL, while to a member of its own
    namespace → ok, and the helper's signal to the init (a descendant) → ok.
    Control: no CLONE_NEWPID, so the outside process is in the sender's
    namespace and the signal goes through.
    """
    outside = ctx.spawn_child(idle)
    outside.recv()
    seen = in_helper(ctx, _from_both_sides, ctx.isolate(NEWPID), outside.pid, "signal")
    ctx.expect("outside" in seen, "the init reported", "a report", seen.get("init"))
    ctx.expect_equal(seen["outside"], "EINVAL", "pidfd_send_signal(0) to a process outside")
    ctx.expect_equal(seen["member"], "ok", "pidfd_send_signal(0) to a member of its namespace")
    ctx.expect_equal(seen["signal to the init"], "ok", "pidfd_send_signal(0) from an ancestor")


@check(
    "pid.pidfd_info_translation",
    catalogue="PID-20",
    level="MUST",
    anchors=("LTP ioctl_pidfd06", "selftest pidfd/pidfd_info_test", "kernel pidfd_info()"),
    needs=Needs(min_kernel=(6, 13), kconfig=("PID_NS",)),
    timeout=5.0,
)
def pidfd_info_translation(ctx: Context) -> None:
    """PIDFD_GET_INFO gives pids in the caller's pid namespace and refuses a process outside it.

    ioctl(PIDFD_GET_INFO) (Linux 6.13) answers for the caller's namespace:
    the init of a new pid namespace reads itself as (pid, tgid, ppid) =
    (1, 1, 0) and a member as (2, 2, 1); for an outside process whose pidfd
    it inherited it must fail with ESRCH (EREMOTE since 7.0 and its
    backports to 6.18.14/6.19.10), not report a pid. The helper, its parent
    namespace, reads the init as (its pid there, the same, the helper).
    Control: no CLONE_NEWPID, so the outside process is visible and the
    init is not pid 1.
    """
    outside = ctx.spawn_child(idle)
    outside.recv()
    seen = in_helper(ctx, _from_both_sides, ctx.isolate(NEWPID), outside.pid, "info")
    ctx.expect(
        "outside" in seen or "unsupported" in seen or "refused" in seen,
        "the init reported",
        "a report",
        seen,
    )
    if "unsupported" in seen:
        raise Skip(f"no PIDFD_GET_INFO here: {seen['unsupported']}")
    if "refused" in seen:
        raise Skip(f"PIDFD_GET_INFO is refused by policy here: {seen['refused']}")
    ctx.expect(
        seen["outside"] in ("ESRCH", "EREMOTE"),
        "PIDFD_GET_INFO of a process outside the caller's pid namespace",
        "ESRCH or EREMOTE",
        seen["outside"],
    )
    pid, triple = seen["self"]
    ctx.expect_equal((pid, triple), (1, (1, 1, 0)), "getpid() and PIDFD_GET_INFO of the init")
    member, triple = seen["member"]
    ctx.expect_equal(triple, (member, member, 1), "PIDFD_GET_INFO of a member (fork()'s pid)")
    ctx.expect_equal(
        seen["info of the init"],
        (seen["init"], seen["init"], seen["helper"]),
        "PIDFD_GET_INFO of the init read by its parent",
    )


# -- PID-21 ----------------------------------------------------------------------

_NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
_LAST = 700


def _write_text(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _member_reports(fn: Any, *args: Any) -> Any:
    """Fork a member that runs ``fn(*args)`` and sends the result; return it."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    member = fork_run(serve_result, wfd, fn, *args)
    os.close(wfd)
    try:
        ok, msg = recv_msg(rfd)
    finally:
        os.close(rfd)
        wait(member)
    if not ok:
        raise RuntimeError("the member died before reporting")
    kind, value = msg
    if kind == "exc":
        raise value
    return value


def _write_from_child_userns(new_userns: bool) -> str:
    if new_userns:
        unshare(NEWUSER)
    return attempt(_write_text, _NS_LAST_PID, str(_LAST + 50))


def _last_pid_rules(member_userns: bool) -> dict[str, Any]:
    """In the init of a new pid namespace: set ns_last_pid, fork, and let a member try too."""
    seen: dict[str, Any] = {"write": attempt(_write_text, _NS_LAST_PID, str(_LAST))}
    if seen["write"] != "ok":
        return seen
    seen["next pid"] = fork_run(idle)
    wait(seen["next pid"])
    seen["member's write"] = _member_reports(_write_from_child_userns, member_userns)
    return seen


def _has_ns_last_pid() -> Optional[str]:
    if os.path.exists(_NS_LAST_PID):
        return None
    return f"no {_NS_LAST_PID} (CONFIG_CHECKPOINT_RESTORE)"


@check(
    "pid.ns_last_pid",
    catalogue="PID-21",
    level="MUST",
    anchors=("proc(5) ns_last_pid", "CRIU", "kernel pid_ns_ctl_handler()"),
    needs=Needs(
        userns=True,
        min_kernel=(5, 3),
        kconfig=("PID_NS", "USER_NS", "CHECKPOINT_RESTORE"),
        probes=(_has_ns_last_pid,),
    ),
    timeout=5.0,
)
def ns_last_pid(ctx: Context) -> None:
    """ns_last_pid sets the writer's pid namespace's next pid, given CAP_SYS_ADMIN over its owner.

    The init of a new pid namespace writes 700 to
    /proc/sys/kernel/ns_last_pid: its next child must get pid 701 (the file
    acts on the writer's active pid namespace). A member that unshared
    CLONE_NEWUSER (full capabilities there, none in the user namespace owning
    the pid namespace) then writes: EPERM (CAP_SYS_ADMIN or, since 5.9,
    CAP_CHECKPOINT_RESTORE over the owner is needed). Control: the member
    stays in the owning user namespace, so its write succeeds.
    """
    seen = in_helper(ctx, run_in_pidns, ("clone3", NEWPID), _last_pid_rules, not ctx.control)
    if seen["write"] in ("EROFS", "EACCES"):
        raise Skip(f"{_NS_LAST_PID} is not writable here ({seen['write']})")
    ctx.expect_equal(seen["write"], "ok", "the init's write of ns_last_pid")
    ctx.expect_equal(
        seen["next pid"], _LAST + 1, f"pid of the next child after ns_last_pid={_LAST}"
    )
    ctx.expect_equal(
        seen["member's write"], "EPERM", "ns_last_pid written from a child user namespace"
    )


# -- PID-22 ----------------------------------------------------------------------


def _privilege_attempts(drop: bool) -> dict[str, Any]:
    """Clear the capability sets (if *drop*), then try unshare(CLONE_NEWPID) both ways."""
    if drop:
        syscalls.drop_capabilities()
    seen: dict[str, Any] = {"unshare(CLONE_NEWPID)": attempt(syscalls.unshare, NEWPID)}
    both = attempt(unshare, NEWUSER | NEWPID)
    seen["unshare(CLONE_NEWUSER|CLONE_NEWPID)"] = both
    if both == "ok":
        seen["first child's pid"] = _member_reports(_getpid)
    return seen


@check(
    "pid.unshare_needs_privilege",
    catalogue="PID-22",
    level="MUST",
    anchors=("unshare(2) EPERM", "user_namespaces(7)", "util-linux unshare -r --pid"),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("PID_NS", "USER_NS")),
    timeout=5.0,
)
def unshare_needs_privilege(ctx: Context) -> None:
    """Without CAP_SYS_ADMIN, unshare(CLONE_NEWPID) is EPERM unless a user ns comes with it.

    A helper clears its capability sets (capset(2); the uid stays, so this
    works rootless too): unshare(CLONE_NEWPID) must fail with EPERM (kernel
    unshare_nsproxy_namespaces() wants CAP_SYS_ADMIN in the caller's user
    namespace), while unshare(CLONE_NEWUSER|CLONE_NEWPID) must succeed, the
    new user namespace giving the capability, and its next child is pid 1
    there. Control: the helper keeps its capabilities, so the first unshare
    succeeds.
    """
    seen = in_helper(ctx, _privilege_attempts, not ctx.control)
    ctx.expect_equal(
        seen["unshare(CLONE_NEWPID)"], "EPERM", "unshare(CLONE_NEWPID) without CAP_SYS_ADMIN"
    )
    both = seen["unshare(CLONE_NEWUSER|CLONE_NEWPID)"]
    if both in ("EPERM", "ENOSPC", "EUSERS"):
        raise Skip(f"unprivileged processes cannot create user namespaces here ({both})")
    ctx.expect_equal(both, "ok", "unshare(CLONE_NEWUSER|CLONE_NEWPID) without CAP_SYS_ADMIN")
    ctx.expect_equal(seen["first child's pid"], 1, "getpid() of the next child in the new pid ns")


# -- PID-23 ----------------------------------------------------------------------

#: The signals whose default action stops a process (signal(7)); SIGSTOP first.
_STOP_SIGNALS = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
#: The two ways PID-23 sends a signal.
_SENDERS = ("kill", "pidfd_send_signal")


def _echo_with_default_stops(cmd_fd: int, reply_fd: int, *others: int) -> None:
    """PID-05's echoing init, with every stop signal at SIG_DFL ("no handler")."""
    for sig in _STOP_SIGNALS[1:]:  # SIGSTOP has no disposition to set
        signal.signal(sig, signal.SIG_DFL)
    _echo_loop(cmd_fd, reply_fd, *others)


def _send_with(how: str, pid: int, sig: int) -> None:
    if how == "kill":
        os.kill(pid, sig)
        return
    fd = syscalls.pidfd_open(pid)
    try:
        syscalls.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)


def _send_stop(init: int, sig: int, how: str, from_inside: bool) -> None:
    """In a fresh process: send *sig* to *init* by *how*, from init's namespace or from here."""
    if from_inside:
        # setns(2) moves only the children (PID-12): the sender is a child of the joiner.
        setns_path(f"/proc/{init}/ns/pid", NEWPID)
        wait(fork_run(_send_with, how, 1, sig))
    else:
        _send_with(how, init, sig)


def _stop_init(from_inside: bool) -> dict[str, str]:
    """PID-23 in the helper: start an echoing init, send it each stop signal both ways."""
    cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
    reply_r, reply_w = os.pipe2(os.O_CLOEXEC)
    init = clone_run(NEWPID, _echo_with_default_stops, cmd_r, reply_w, cmd_w, reply_r)
    os.close(cmd_r)
    os.close(reply_w)
    seen: dict[str, str] = {}
    try:
        recv_byte(reply_r)  # ready: the stop signals are at SIG_DFL there
        for how in _SENDERS:
            for sig in _STOP_SIGNALS:
                wait(fork_run(_send_stop, init, sig, how, from_inside))
                seen[f"{sig.name} by {how}"] = outcome = _observe(init, cmd_w, reply_r)
                if outcome == "stopped":
                    os.kill(init, signal.SIGCONT)
                    recv_byte(reply_r)  # the answer to the ping it could not give while stopped
                elif outcome != "ignored":
                    return seen
    finally:
        os.close(cmd_w)
        os.close(reply_r)
        kill_and_reap(init)
    return seen


@check(
    "pid.init_unstoppable_from_inside",
    catalogue="PID-23",
    level="MUST",
    anchors=("pid_namespaces(7)", "kernel sig_task_ignored()", "pidfd_send_signal(2)"),
    needs=Needs(min_kernel=(5, 3), kconfig=("PID_NS",), ops=("setns",)),
    timeout=5.0,
)
def init_unstoppable_from_inside(ctx: Context) -> None:
    """Stop signals sent to a pid namespace's init from inside it, SIGSTOP too, are ignored.

    SIGSTOP can't be caught, yet a member can't stop its init: the kernel
    forces SIGSTOP and SIGKILL on an init only from an ancestor namespace
    (sig_task_ignored(), PID-05). The init answers pings with SIGTSTP,
    SIGTTIN and SIGTTOU at SIG_DFL; processes that joined its namespace
    (setns(2), then fork) send it SIGSTOP, SIGTSTP, SIGTTIN and SIGTTOU by
    kill(1, sig) and by pidfd_send_signal(2): after each the init must still
    answer (waitpid(WUNTRACED) sees no stop). Control: the helper, an
    ancestor, sends them, so SIGSTOP stops the init.
    """
    seen = in_helper(ctx, _stop_init, not ctx.control)
    for how in _SENDERS:
        for sig in _STOP_SIGNALS:
            what = f"{sig.name} by {how}"
            ctx.expect_equal(seen.get(what), "ignored", f"effect of {what} from inside on the init")
