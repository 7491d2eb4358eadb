"""Processes under test for the checks that create them themselves (the PID group).

Layer: conformance checks, private (not loaded as a group). Imports the
standard library, public nsprim names, the registry and :mod:`._common`.

``ctx.in_child``/``ctx.spawn_child`` give a check its helpers. The PID
checks need more: the process under test is created *by* a helper, so that
it is the init of a new pid namespace; it may orphan processes on purpose;
it may be killed by the very signal under test. A process that only returns
a result runs through nsprim's own throwaway-child mechanism
(:func:`run_in_pidns` on :func:`nsprim.call`, with ``set_tid``). The ones a
check talks to while they run (signals, pings, pipes to their members) are
made here (:func:`fork_run` on the same mechanism, handed over by pid;
:func:`clone_run` by clone3(2) itself, for what no child mechanism can make:
a sibling by CLONE_PARENT, or the init of a new pid namespace as the
caller's direct child with ``set_tid``), and this module talks to them
over pipes (:func:`send_msg`/:func:`recv_msg`), waits for and reaps them
(:func:`wait`, :func:`kill_and_reap`, :func:`reap_children`), and runs a
helper as a child subreaper (:func:`in_helper`) so that whatever a control
run orphans comes back to it and is killed and reaped there.

:func:`clone_run` confirms the premise of every check built on it: a
process cloned with CLONE_NEW* flags must be in new namespaces of those
types, by identity, or the check FAILs naming that.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

import nsprim
from nsprim import syscalls
from nsprim.flags import MountFlags

from ..outcome import Fail
from ..registry import Context
from ._common import NEWNS, NEWPID, WALL, NsKey, child_exit, errname, ns_key, setns_path, unshare

__all__ = [
    "WAIT",
    "InitDied",
    "Entry",
    "status_text",
    "send_msg",
    "recv_msg",
    "recv_byte",
    "wait",
    "kill_and_reap",
    "fork_run",
    "clone_run",
    "try_clone3",
    "run_in_pidns",
    "serve_result",
    "report_then_hold",
    "nspid",
    "mount_proc",
    "proc_pids",
    "reap_children",
    "still_alive",
    "in_helper",
]

#: Seconds any single wait inside a helper may take before it gives up.
WAIT = 3.0
_MSG = struct.Struct("!I")
_PROC_FLAGS = int(MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC)


@dataclass(frozen=True)
class InitDied:
    """The process under test died before it could report (a value checks compare against)."""

    status: str


def status_text(status: Optional[int]) -> str:
    """Describe a wait status: ``"exited with status 0"``, ``"killed by SIGKILL"``..."""
    if status is None:
        return "was reaped elsewhere"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    if os.WIFSTOPPED(status):
        return f"stopped by {signal.Signals(os.WSTOPSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


# -- messages over pipes --------------------------------------------------------------


def send_msg(fd: int, obj: object) -> None:
    """Write one length-prefixed pickled message to *fd*."""
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


def recv_msg(fd: int, timeout: float = WAIT) -> tuple[bool, Any]:
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


def recv_byte(fd: int) -> None:
    """Wait for one byte on *fd* (a peer's "ready").

    Raises:
        TimeoutError: nothing within :data:`WAIT` seconds, or EOF.
    """
    if not select.select([fd], [], [], WAIT)[0] or not os.read(fd, 1):
        raise TimeoutError("the peer did not answer")


# -- waiting and reaping --------------------------------------------------------------


def wait(pid: int, timeout: float = WAIT) -> int:
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


def kill_and_reap(pid: int, options: int = 0) -> Optional[int]:
    """SIGKILL child *pid* (from its parent: reaches even a pid-namespace init) and reap it.

    Pass ``options=WALL`` for a child created with exit_signal 0.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        return os.waitpid(pid, options)[1]
    except ChildProcessError:
        return None


def reap_children(timeout: float = WAIT) -> None:
    """SIGKILL this process's remaining children (when /proc lists them), then reap them all.

    ``/proc/self/task/*/children`` needs CONFIG_PROC_CHILDREN; without it, or
    when /proc is another pid namespace's, the children are only reaped (they
    are processes the helper expects to exit on their own), for at most
    *timeout* seconds.
    """
    with contextlib.suppress(OSError, ValueError):
        if _proc_is_ours():
            for tid in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{tid}/children") as f:
                    for child in f.read().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(child), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            return  # none left
        if reaped == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.002)


def still_alive(pidfds: Sequence[int], timeout: float) -> int:
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


# -- making processes -----------------------------------------------------------------


def _start(pid: int, body: Callable[..., Any], args: tuple[Any, ...], pdeathsig: bool) -> int:
    if pid == 0:
        try:
            if pdeathsig:
                syscalls.set_pdeathsig(signal.SIGKILL)
            body(*args)
        finally:
            child_exit(0)
    return pid


def _member(pdeathsig: bool, body: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _start(0, body, args, pdeathsig)


def fork_run(body: Callable[..., Any], *args: Any, pdeathsig: bool = False) -> int:
    """Start a child that runs ``body(*args)`` and exits 0; return its pid.

    The child is made by nsprim's child mechanism (:func:`nsprim.call_start`,
    a fork of this process) and handed over at once
    (:meth:`nsprim.PendingCall.detach`): the caller waits for it by pid
    (:func:`wait`, :func:`kill_and_reap`). It leaves with ``os._exit``
    whatever *body* does (it never returns into the caller's code). With
    *pdeathsig* it dies with its parent (PR_SET_PDEATHSIG(SIGKILL)).

    Raises:
        OSError: fork(2) failed (ENOMEM in a pid namespace whose init has exited).
    """
    child = nsprim.call_start(_member, pdeathsig, body, args, die_with_parent=False)
    return child.detach()


def _proc_is_ours() -> bool:
    """Whether /proc belongs to this process's pid namespace."""
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _clone3(flags: int, set_tid: Sequence[int], exit_signal: int) -> tuple[int, dict[str, Any]]:
    """clone3(2) *flags*; return the fork-style pid and the caller's identities before it."""
    before = {}
    if flags & NEWPID:
        before["pid"] = ns_key("/proc/thread-self/ns/pid")
    pid = syscalls.clone3(flags, set_tid=list(set_tid), exit_signal=exit_signal)
    assert isinstance(pid, int)
    return pid, before


def _confirm_new_pidns(pid: int, before: dict[str, Any], flags: int) -> None:
    """In the parent: confirm child *pid* is in a new pid namespace, else kill it and FAIL."""
    if "pid" not in before or not _proc_is_ours():
        return
    try:
        child = ns_key(f"/proc/{pid}/ns/pid")
    except FileNotFoundError:
        return  # it has exited already; its report (or its absence) speaks for it
    if child == before["pid"]:
        kill_and_reap(pid)
        raise _pidns_unchanged(child)


def clone_run(
    flags: int,
    body: Callable[..., Any],
    *args: Any,
    set_tid: Sequence[int] = (),
    pdeathsig: bool = True,
    exit_signal: int = signal.SIGCHLD,
) -> int:
    """clone3(2) a process with *flags* (and *set_tid*) that runs ``body(*args)``; return its pid.

    With CLONE_NEWPID the process is the init of a new pid namespace; the
    caller confirms that by identity before returning (a child left in the
    caller's pid namespace is killed and the check FAILs). By default it dies
    with its parent (PR_SET_PDEATHSIG(SIGKILL)). With CLONE_PARENT it is the
    caller's parent's child; ``exit_signal=0`` (which CLONE_PARENT wants) makes
    it a "clone" child that only ``waitpid(..., WALL)`` sees.

    Raises:
        Fail: clone3 succeeded but the child is in the caller's pid namespace.
        OSError: clone3(2) refused (EEXIST, EINVAL, ENOSPC, EPERM for set_tid...).
    """
    pid, before = _clone3(flags, set_tid, exit_signal)
    _start(pid, body, args, pdeathsig)
    _confirm_new_pidns(pid, before, flags)
    return pid


def try_clone3(flags: int, set_tid: Sequence[int]) -> str:
    """Try clone3(flags, set_tid); ``"ok"`` or the errno name; a child made exits and is reaped."""
    try:
        pid = clone_run(flags, child_exit, set_tid=set_tid, pdeathsig=False)
    except OSError as err:
        return errname(err)
    wait(pid)
    return "ok"


#: How the process under test gets into its pid namespace: ``("clone3", flags)``
#: (optionally ``("clone3", flags, set_tid)``), ``("unshare", flags)`` (then fork)
#: or ``("setns", path)`` (then fork).
Entry = tuple[Any, ...]


def serve_result(wfd: int, fn: Callable[..., Any], *args: Any) -> None:
    """In the process under test: run ``fn(*args)`` and send ``("ok", value)`` or the exception."""
    try:
        msg: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:
        msg = ("exc", exc)
    try:
        send_msg(wfd, msg)
    except Exception as exc:  # the value would not pickle
        send_msg(wfd, ("exc", TypeError(f"{fn.__name__} result cannot be pickled: {exc}")))


def report_then_hold(wfd: int, go_fd: int, report: Callable[[], Any], *others: int) -> None:
    """A process under test: close *others* (the helper's ends), send ``report()`` on *wfd*,
    then live until *go_fd* is written to or closed (it holds its namespaces till then)."""
    for fd in others:
        os.close(fd)
    send_msg(wfd, report())
    os.read(go_fd, 1)


def _in_new_pidns(outer: Optional[NsKey], fn: Callable[..., Any], *args: Any) -> Any:
    """In the process under test: confirm it is not in *outer*'s pid namespace, run ``fn``."""
    if outer is not None and ns_key("/proc/self/ns/pid") == outer:
        raise _pidns_unchanged(outer)
    return fn(*args)


def _pidns_unchanged(key: NsKey) -> Fail:
    return Fail(
        "clone3(CLONE_NEWPID) returned a child and its PID namespace is the parent's",
        "a new namespace",
        f"the same namespace {key}",
    )


def _died(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def run_in_pidns(entry: Entry, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a new process made as *entry* says; return its result.

    Runs in a helper (:func:`in_helper`). The process is made by nsprim's own
    throwaway-child mechanism (:func:`nsprim.call`): with CLONE_NEWPID it is
    the init of a new pid namespace (``namespaces=["pid"]``, clone3
    ``set_tid`` when *entry* names pids). Its exception is re-raised here; if
    it dies without reporting (a signal under test killed it), the result is
    :class:`InitDied`, a value the check compares like any other.

    Raises:
        Fail: the entry returned success but the process is not in a new pid namespace.
        nsprim.TimeoutExpired: no result within :data:`WAIT` seconds (the process is killed).
        OSError: the kernel refused to make the process (clone3 set_tid: EEXIST, EINVAL...).
    """
    how, arg = entry[0], entry[1]
    namespaces: list[str] = []
    set_tid: Sequence[int] = ()
    if how == "clone3":
        namespaces = [name for flag, name in ((NEWPID, "pid"), (NEWNS, "mnt")) if arg & flag]
        set_tid = entry[2] if len(entry) > 2 else ()
    elif how == "unshare":
        unshare(arg)  # the helper's next child is the new namespace's init
    elif how == "setns":
        setns_path(arg, NEWPID)
    else:
        raise ValueError(f"entry must be clone3, unshare or setns, got {how!r}")
    outer = (
        ns_key("/proc/thread-self/ns/pid")
        if how != "setns" and ("pid" in namespaces or (how == "unshare" and arg & NEWPID))
        else None
    )
    try:
        return nsprim.call(
            _in_new_pidns,
            outer,
            fn,
            *args,
            namespaces=namespaces,
            set_tid=set_tid,
            propagation="unchanged",
            timeout=WAIT,
        )
    except nsprim.CallError as err:
        if err.returncode is None:
            raise
        return InitDied(_died(err.returncode))


# -- inside a pid namespace ----------------------------------------------------------


def nspid() -> list[int]:
    """Return this process's ``NSpid:`` line: its pid per level, from /proc's pid ns down."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(v) for v in line.split()[1:]]
    raise OSError(2, "no NSpid line in /proc/self/status (Linux 4.1+)")


def mount_proc() -> None:
    """Mount a fresh procfs on /proc (in a mount namespace the caller owns)."""
    syscalls.mount("proc", "/proc", "proc", _PROC_FLAGS)


def proc_pids() -> list[int]:
    """The pids /proc lists."""
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


# -- the subreaping helper -------------------------------------------------------------


def _as_subreaper(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` as a child subreaper, then kill and reap every child left.

    For helpers whose control run orphans processes on purpose: the orphans
    come back to this helper (prctl(2) PR_SET_CHILD_SUBREAPER) instead of the
    sandbox's init, and are reaped here. A subreaper outside a pid namespace
    never adopts that namespace's orphans (kernel find_new_reaper() looks only
    inside the orphan's namespace), so the checks themselves are unaffected.
    """
    syscalls.set_child_subreaper(True)
    try:
        return fn(*args)
    finally:
        reap_children()


def in_helper(ctx: Context, fn: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Any:
    """``ctx.in_child(fn, *args)`` in a helper that subreaps what it leaves behind."""
    return ctx.in_child(_as_subreaper, fn, *args, timeout=timeout)
