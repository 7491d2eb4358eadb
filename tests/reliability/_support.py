"""Helpers shared by the reliability tests: host snapshots, process markers, sandboxes.

Deliberately independent of nsprim (plain ctypes and /proc reads): the code
under test must not vouch for itself, so the observer uses none of it. The
conformance runner's guard (``conformance/_guard.py``) watches the same
categories for its own runs; this is the test suite's second opinion.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import sys
import time
import traceback
from typing import Any, Callable

import nsprim

__all__ = [
    "HostState",
    "host_state",
    "host_diff",
    "marked",
    "wait_unmarked",
    "posix_mqueues",
    "fd_count",
    "rss_kib",
    "zombies_of",
    "nsfs_ids",
    "sandboxed",
    "drop_to_nobody",
    "reap",
    "SANDBOX_FLAGS",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_PRIVATE = 1 << 18
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
PR_SET_PDEATHSIG = 1

#: What a sandbox unshares: everything a fuzzed call could change on the host.
SANDBOX_FLAGS = (
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP
)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.mount.restype = ctypes.c_int
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.prctl.restype = ctypes.c_int


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def raw_unshare(flags: int) -> None:
    """unshare(2) through plain ctypes (not nsprim's binding)."""
    _check(_libc.unshare(flags), "unshare")


def raw_mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str = ""
) -> None:
    """mount(2) through plain ctypes (not nsprim's binding)."""
    opts = ctypes.c_char_p(data.encode()) if data else None
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            ctypes.cast(opts, ctypes.c_void_p) if opts is not None else None,
        ),
        f"mount {target}",
    )


def set_pdeathsig(sig: int) -> None:
    """PR_SET_PDEATHSIG for the calling thread."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def set_dumpable() -> None:
    """PR_SET_DUMPABLE 1: a process that changed its uids may again open its own /proc files."""
    _check(_libc.prctl(4, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")


def set_comm(name: str) -> None:
    """Set this thread's comm (forks inherit it, so it marks fork-only children too)."""
    with open("/proc/thread-self/comm", "w") as f:
        f.write(name[:15])


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


# --- the host -----------------------------------------------------------------------------

HostState = dict[str, list[str]]


def _sysvipc() -> list[str]:
    out = []
    for kind in ("msg", "sem", "shm"):
        for line in _read(f"/proc/sysvipc/{kind}").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 2:
                out.append(f"{kind} key={cols[0]} id={cols[1]}")
    return sorted(out)


def posix_mqueues(timeout: float = 10.0) -> list[str]:
    """List the host IPC namespace's POSIX message queues.

    This host has no /dev/mqueue, so a child mounts an mqueue fs on /tmp in a
    private mount namespace of its own: an mqueue mount shows the queues of
    the mounter's IPC namespace (mq_overview(7)), here the host's.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            raw_unshare(CLONE_NEWNS)
            raw_mount(None, "/", None, MS_REC | MS_PRIVATE)
            raw_mount("mqueue", "/tmp", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            os.write(w, "\n".join(sorted(os.listdir("/tmp"))).encode() + b"\n.")
        finally:
            os._exit(0)
    os.close(w)
    try:
        data = _read_all(r, timeout)
    finally:
        os.close(r)
        reap(pid, timeout=timeout)
    if not data.endswith(b"."):
        raise RuntimeError(f"mqueue lister {pid} died without an answer")
    return [f"mqueue {n}" for n in data[:-1].decode().split("\n") if n]


#: Mount points another CI stage mounts and unmounts on the host while we run
#: (the VM image build, scripts/vm): not ours, so not judged.
FOREIGN_MOUNTS = (os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "vm", ".cache"),)
_FOREIGN = tuple(os.path.realpath(p) + "/" for p in FOREIGN_MOUNTS)


def _mounts() -> list[str]:
    out = []
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        lcols, rcols = left.split(), right.split()
        if len(lcols) >= 5 and (lcols[4] + "/").startswith(_FOREIGN):
            continue
        if len(lcols) >= 5 and len(rcols) >= 2:
            out.append(f"{lcols[4]} {rcols[0]} {rcols[1]} root={lcols[3]}")
    return sorted(out)


def host_state(mqueue: bool = True) -> HostState:
    """Observe everything a namespace tool could leave behind on the host."""
    state: HostState = {
        "hostname": [_read("/proc/sys/kernel/hostname").strip()],
        "domainname": [_read("/proc/sys/kernel/domainname").strip()],
        "sysvipc": _sysvipc(),
        "mounts": _mounts(),
        "interfaces": _listdir("/sys/class/net"),
        "named netns": _listdir("/run/netns") + _listdir("/var/run/netns"),
    }
    if mqueue:
        state["mqueue"] = posix_mqueues()
    return state


def host_diff(before: HostState, after: HostState) -> list[str]:
    """Describe every difference between two host states (empty when equal)."""
    out = []
    for key in before:
        old, new = before[key], after.get(key, [])
        if old != new:
            added = sorted(set(new) - set(old))
            gone = sorted(set(old) - set(new))
            out.append(f"{key}: appeared {added}, disappeared {gone}")
    return out


# --- processes ----------------------------------------------------------------------------


def _state(pid: int) -> str:
    stat = _read(f"/proc/{pid}/stat")
    return stat[stat.rfind(")") + 2 :][:1] if ")" in stat else ""


def marked(token: str) -> list[str]:
    """Return ``"pid state comm"`` for every process whose argv or comm carries *token*."""
    me = os.getpid()
    tb = token.encode()
    out = []
    for name in _listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        comm = _read(f"/proc/{name}/comm").strip()
        if tb in cmd or token in comm:
            out.append(f"{name} {_state(int(name))} {comm} {cmd[:120]!r}")
    return out


def wait_unmarked(token: str, timeout: float = 10.0) -> list[str]:
    """Wait up to *timeout* s for every process marked with *token* to vanish; return the rest."""
    deadline = time.monotonic() + timeout
    while True:
        left = marked(token)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def _zombies_now(pid: int) -> set[int]:
    out = set()
    for tid in _listdir(f"/proc/{pid}/task"):
        for child in _read(f"/proc/{pid}/task/{tid}/children").split():
            if _state(int(child)) == "Z":
                out.add(int(child))
    return out


def zombies_of(pid: int, settle: float = 2.0) -> list[int]:
    """Children of *pid* that stay zombies (exited, never reaped) for *settle* seconds.

    A zombie that one of the process's threads reaps a moment later is not a
    leak: nsprim's supervisor start leaves its short-lived intermediate to a
    reaper thread (see nsprim._supervisor._start), and on a loaded machine
    that thread may run only milliseconds after the intermediate exited.
    A leaked zombie stays: it is in every scan until *settle* runs out.
    """
    left = _zombies_now(pid)
    deadline = time.monotonic() + settle
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left &= _zombies_now(pid)
    return sorted(left)


def fd_count() -> int:
    """How many fds this process holds, not counting its supervisor's and forker's.

    nsprim starts one supervisor per process at its second die_with_parent spawn and
    keeps its channel for the process's life (like the leak guard in conftest, this
    is not a leak: nsprim._supervisor.held_fds() names those fds).
    """
    from nsprim import _forker, _supervisor

    held = _supervisor.held_fds() | _forker.held_fds()
    fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    return len([fd for fd in fds if fd not in held]) - 1  # minus listdir's own


def rss_kib() -> int:
    """This process's resident set size in KiB (VmRSS)."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def nsfs_ids(proc: str = "/proc") -> set[tuple[int, int]]:
    """Distinct namespaces (st_dev, st_ino) reachable from every ``<proc>/*/ns/*`` entry."""
    out: set[tuple[int, int]] = set()
    for name in _listdir(proc):
        if not name.isdigit():
            continue
        for entry in _listdir(f"{proc}/{name}/ns"):
            with contextlib.suppress(OSError):
                st = os.stat(f"{proc}/{name}/ns/{entry}")
                out.add((st.st_dev, st.st_ino))
    return out


def reap(pid: int, timeout: float = 10.0) -> int:
    """Wait for child *pid* (SIGKILL after *timeout* s); return its wait status."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.005)


def drop_to_nobody() -> None:
    """Become uid/gid 65534 with no supplementary groups (and so no capabilities).

    nsprim's lazily imported parts come first: a checkout in a mode-700
    directory (mkdtemp, /root) is unreadable to nobody afterwards.
    """
    nsprim.preload()
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


def _read_all(fd: int, timeout: float) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no answer within {timeout} s")
        b = os.read(fd, 1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


class SandboxError(AssertionError):
    """The sandboxed function raised; the message carries its traceback."""


def sandboxed(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float = 60.0,
    flags: int = SANDBOX_FLAGS,
) -> Any:
    """Run ``fn(*args)`` as PID 1 of fresh namespaces (*flags*) with its own /proc; return its result.

    A forked child unshares *flags*, makes every mount rec-private (so no
    mount event can propagate back to the host) and forks the worker, which
    mounts a proc of the new pid namespace on /proc and a private tmpfs on
    /tmp (keeping what this interpreter runs from, see :func:`_private_tmp`),
    and runs *fn* (with every inherited fd closed). The worker has
    PR_SET_PDEATHSIG=SIGKILL, so killing the
    intermediate on a timeout tears the whole pid namespace down.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(r)
            os.closerange(3, w)
            os.closerange(w + 1, 1 << 16)
            raw_unshare(flags)
            if flags & CLONE_NEWNS:
                raw_mount(None, "/", None, MS_REC | MS_PRIVATE)
            worker = os.fork()
            if worker == 0:
                _sandbox_worker(w, flags, fn, args)
            os.close(w)
            code = os.waitstatus_to_exitcode(os.waitpid(worker, 0)[1])
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code if code >= 0 else 128 - code)
    os.close(w)
    try:
        data = _read_all(r, timeout)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        raise TimeoutError(f"sandboxed {fn.__name__} did not finish in {timeout} s") from None
    finally:
        os.close(r)
        status = reap(pid, timeout=5)
    if not data:
        raise SandboxError(
            f"sandbox for {fn.__name__} died without a result "
            f"(status {os.waitstatus_to_exitcode(status)})"
        )
    kind, value = pickle.loads(data)
    if kind == "ok":
        return value
    raise SandboxError(value)


def tmp_dirs_in_use() -> list[str]:
    """The entries of /tmp this interpreter runs from: its venv, sys.path, this checkout."""
    tmp = os.path.realpath("/tmp")
    names = set()
    for path in (sys.prefix, sys.exec_prefix, os.path.dirname(__file__), *sys.path):
        if not path:
            continue
        rel = os.path.relpath(os.path.realpath(path), tmp)
        if rel != "." and not rel.startswith(".."):
            names.add(rel.split(os.sep)[0])
    return sorted(names)


def _private_tmp() -> None:
    """Mount a private tmpfs on /tmp, with the /tmp entries this interpreter needs bound back.

    Whatever the function writes in /tmp vanishes with the sandbox; a checkout or venv
    under /tmp (a clone in /tmp, CI) stays importable: each is bind-mounted from the
    hidden /tmp (reached through an O_PATH fd opened before the tmpfs covers it).
    """
    keep = tmp_dirs_in_use()
    old = os.open("/tmp", os.O_PATH | os.O_DIRECTORY) if keep else -1
    try:
        raw_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        for name in keep:
            source = f"/proc/self/fd/{old}/{name}"
            if os.path.isdir(source):
                os.mkdir(f"/tmp/{name}")
            else:
                open(f"/tmp/{name}", "x").close()
            raw_mount(source, f"/tmp/{name}", None, MS_BIND | MS_REC)
    finally:
        if old >= 0:
            os.close(old)


def _sandbox_worker(w: int, flags: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        try:
            set_pdeathsig(signal.SIGKILL)
            if flags & CLONE_NEWPID:
                raw_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            if flags & CLONE_NEWNS:
                _private_tmp()
            payload = pickle.dumps(("ok", fn(*args)))
        except BaseException as exc:
            payload = pickle.dumps(
                ("err", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            )
        os.write(w, payload)
    finally:
        os._exit(0)
