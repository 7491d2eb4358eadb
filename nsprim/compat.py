"""What this kernel and environment let nsprim do with namespaces (``nsprim check``).

Layer 2: imports the standard library, :mod:`nsprim.errors`, :mod:`nsprim._sys`,
:mod:`nsprim.syscalls`, :mod:`nsprim.namespace` and (inside throwaway children
only) :mod:`nsprim.net`. Returns data, never prints.

:func:`probe_all` answers the 24 "Environment and compatibility probes" of
GUARANTEES.md with one :class:`Probe` each (several for the per-type and
per-option items). It never needs root and never changes the caller: every
probe that creates a namespace runs in a throwaway forked child (reaped, with a
timeout), and syscall presence is judged from the errno of a harmless call
(ENOSYS: missing). Probes whose full answer needs root say so
(``needs_root``), and report what they could see without it.

The answers blend the approaches of moby's ``contrib/check-config.sh`` and
``lxc-checkconfig`` (kernel config), genuinetools/amicontained (capabilities,
seccomp, container evidence) with actually trying each operation, because a
config option says nothing about sysctls, LSMs or seccomp filters that refuse it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import pwd
import re
import select
import shutil
import signal
import socket
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Union

from . import syscalls as _sc
from ._sys import consts as C
from ._sys import libc as _libc
from ._sys import nr as _nr
from .errors import UnsupportedError
from .namespace import NsType

__all__ = [
    "Probe",
    "STATUSES",
    "GROUPS",
    "probe_all",
    "require",
    "requirement_names",
    "kernel_config",
    "decode_caps",
]

#: The four statuses, from best to worst.
STATUSES = ("ok", "limited", "missing", "unknown")
#: The probe groups, in report order.
GROUPS = (
    "system",
    "namespaces",
    "userns",
    "syscalls",
    "kconfig",
    "limits",
    "credentials",
    "environment",
    "features",
)

Value = Union[str, int, bool, None]

_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


@dataclass(frozen=True)
class Probe:
    """One answer of ``nsprim check``.

    Attributes:
        group: one of :data:`GROUPS`.
        name: short name, unique within the group (``"net"``, ``"clone3"``).
        status: ``"ok"`` (works), ``"limited"`` (works with a restriction,
            e.g. only inside a new user namespace), ``"missing"`` (not
            possible here) or ``"unknown"`` (the probe could not tell).
        value: the observed value (a version, errno name, sysctl value, ...).
        detail: the evidence and, when not ok, the reason.
        consequence: one line on what it means for nsprim users.
        needs_root: the full answer needs root; run as non-root, *detail*
            says what was not checked.
    """

    group: str
    name: str
    status: str
    value: Value
    detail: str
    consequence: str
    needs_root: bool = False

    def to_dict(self) -> dict[str, Value]:
        """Return the JSON form (keys as in the ``nsprim check --json`` schema)."""
        return dict(asdict(self))


# --- small readers -----------------------------------------------------------------


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _read_int(path: str) -> Optional[int]:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _status_fields(path: str = "/proc/self/status") -> dict[str, str]:
    out = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _ename(err: Optional[int]) -> str:
    if not err:
        return "0"
    return errno.errorcode.get(err, str(err))


def _kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# --- throwaway children ------------------------------------------------------------

_Result = dict[str, Any]


def _in_child(fn: Callable[[], _Result], timeout: float) -> _Result:
    """Run *fn* in a forked child and return its JSON-able result.

    The child never returns into the caller's code: it writes one JSON
    document to a CLOEXEC pipe and ``_exit``\\ s. The parent reads with a
    deadline, kills the child on timeout and always reaps it. An exception in
    the child comes back as ``{"error": ..., "errno": ...}``.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError as err:
        os.close(r)
        os.close(w)
        return {"error": f"fork: {err.strerror}", "errno": err.errno}
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(r)
            try:
                res = fn()
            except BaseException as exc:
                res = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "errno": getattr(exc, "errno", None),
                }
            data = json.dumps(res).encode()
            while data:
                data = data[os.write(w, data) :]
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                timed_out = True
                break
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"error": f"timed out after {timeout} s"}
    if not chunks:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return {"error": f"child killed by signal {signal.Signals(sig).name}", "signal": sig}
        return {"error": f"child exited with status {os.waitstatus_to_exitcode(status)}"}
    try:
        parsed: _Result = json.loads(b"".join(chunks))
    except ValueError:
        return {"error": "child wrote a malformed result"}
    return parsed


def _map_self(uid: int, gid: int) -> None:
    """In a child that just unshared CLONE_NEWUSER: map root to the old ids.

    Writing one's own single id is allowed without privilege once setgroups
    is denied (user_namespaces(7), "Defining user and group ID mappings").
    A process whose ids changed (setresuid) is not dumpable, which makes its
    /proc/self files root's; this throwaway child makes itself dumpable again
    so that it can write its own maps (prctl(2) PR_SET_DUMPABLE).
    """
    _libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def _unshare_errno(flags: int) -> int:
    try:
        _sc.unshare(flags)
    except OSError as err:
        return err.errno or errno.EIO
    return 0


def _userns_then(flags: int) -> Callable[[], _Result]:
    """Child body: unshare(flags); on EPERM retry with CLONE_NEWUSER (rootless)."""

    def body() -> _Result:
        first = _unshare_errno(flags)
        out: _Result = {"errno": first, "max": _read_int(_max_path(flags))}
        if first == errno.EPERM and not flags & C.CLONE_NEWUSER:
            out["userns_errno"] = _unshare_errno(flags | C.CLONE_NEWUSER)
        return out

    return body


def _max_path(flags: int) -> str:
    for t in NsType:
        if flags & int(t.flag):
            return f"/proc/sys/user/max_{t.value}_namespaces"
    return "/proc/sys/user/max_user_namespaces"


def _enter_private(euid: int, egid: int, extra: int) -> bool:
    """Child helper: unshare *extra* types, inside a new user namespace when not root.

    Returns whether a user namespace was created.
    """
    try:
        _sc.unshare(extra)
        return False
    except PermissionError:
        _sc.unshare(extra | C.CLONE_NEWUSER)
        _map_self(euid, egid)
        return True


# --- capabilities ------------------------------------------------------------------

_CAP_NAMES = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
]


def decode_caps(mask: Union[int, str]) -> list[str]:
    """Return the capability names (``"sys_admin"``, ...) set in *mask*.

    Args:
        mask: an int or the hex string of a ``Cap*`` line of /proc/PID/status.

    Raises:
        TypeError: *mask* is neither an int nor a str.
        ValueError: a negative mask, or a string that is not hexadecimal.
    """
    if isinstance(mask, bool) or not isinstance(mask, (int, str)):
        raise TypeError(f"mask must be an int or a hex str, got {type(mask).__name__} {mask!r}")
    if isinstance(mask, str):
        try:
            m = int(mask, 16)
        except ValueError:
            raise ValueError(f"mask must be hexadecimal, got {mask!r}") from None
    else:
        m = mask
    if m < 0:
        raise ValueError(f"mask must not be negative, got {m}")
    return [
        _CAP_NAMES[i] if i < len(_CAP_NAMES) else f"cap_{i}"
        for i in range(m.bit_length())
        if m >> i & 1
    ]


def _caps_text(names: list[str]) -> str:
    if not names:
        return "none"
    known = set(_CAP_NAMES)
    have = set(names)
    if have >= known:
        return "all"
    if len(have & known) > len(known) // 2:
        return "all but " + ",".join(n for n in _CAP_NAMES if n not in have)
    return ",".join(names)


# --- kernel config -----------------------------------------------------------------

#: The options probed (check-config.sh's namespace set, plus time, veth, c/r).
KCONFIG_OPTIONS = (
    "NAMESPACES",
    "UTS_NS",
    "IPC_NS",
    "USER_NS",
    "PID_NS",
    "NET_NS",
    "TIME_NS",
    "CGROUPS",
    "POSIX_MQUEUE",
    "VETH",
    "CHECKPOINT_RESTORE",
)


def kernel_config() -> tuple[Optional[str], dict[str, str]]:
    """Return ``(source, {option: value})`` from /proc/config.gz or /boot/config-RELEASE.

    Option names drop the ``CONFIG_`` prefix; values are as written (``"y"``,
    ``"m"``, ``"n"`` for "is not set", or a string/number). ``(None, {})`` when
    neither file is readable.
    """
    import gzip

    release = platform.release()
    for path in ("/proc/config.gz", f"/boot/config-{release}"):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as f:
                    raw = f.read()
            else:
                with open(path, "rb") as f:
                    raw = f.read()
        except OSError:
            continue
        out = {}
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.startswith("CONFIG_"):
                key, _, value = line.partition("=")
                out[key[7:]] = value.strip('"')
            elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
                out[line[9:-11]] = "n"
        return path, out
    return None, {}


# --- the probes --------------------------------------------------------------------

_TYPE_USE = {
    NsType.MNT: "private mount trees and pivot_root",
    NsType.UTS: "a private hostname",
    NsType.IPC: "private SysV/POSIX IPC",
    NsType.PID: "private pid numbering (pid 1 inside)",
    NsType.NET: "a private network stack",
    NsType.USER: "rootless containers and id mapping",
    NsType.CGROUP: "a private cgroup root view",
    NsType.TIME: "per-namespace CLOCK_MONOTONIC/BOOTTIME offsets",
}


class _Ctx:
    """Facts gathered once and shared by the probes."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.release = platform.release()
        self.version = _kernel_version(self.release)
        self.status = _status_fields()
        self.euid = os.geteuid()
        self.egid = os.getegid()
        self.caps = decode_caps(self.status.get("CapEff", "0"))
        self.root = "sys_admin" in self.caps
        self.seccomp = self.status.get("Seccomp", "")
        self.seccomp_filters = self.status.get("Seccomp_filters", "")
        self.kconfig_source, self.kconfig = kernel_config()

    def gate_reasons(self, err: int, t: NsType) -> str:
        """Explain an errno from unshare(CLONE_NEW<t>) with the gates that apply."""
        if err in (errno.ENOSPC, errno.EUSERS):
            limit = _read_int(f"/proc/sys/user/max_{t.value}_namespaces")
            if limit == 0:
                return f"{_ename(err)}: user.max_{t.value}_namespaces = 0"
            return (
                f"{_ename(err)}: the user.max_{t.value}_namespaces limit ({limit}) "
                "or the nesting depth (32) is reached"
            )
        if err in (errno.EINVAL, errno.ENOSYS):
            return f"{_ename(err)}: not in this kernel (CONFIG_{_kconfig_name(t)})"
        if err != errno.EPERM:
            return f"{_ename(err)}: {os.strerror(err)}"
        gates = []
        if self.seccomp == "2":
            gates.append(
                f"a seccomp filter is active (Seccomp: 2, {self.seccomp_filters or '?'} "
                "filter(s)) and may return EPERM"
            )
        if t is NsType.USER:
            clone = _read_int("/proc/sys/kernel/unprivileged_userns_clone")
            if clone == 0 and not self.root:
                gates.append("kernel.unprivileged_userns_clone = 0")
            aa = _read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            if aa == 1 and not self.root:
                gates.append("kernel.apparmor_restrict_unprivileged_userns = 1")
            if not gates:
                gates.append(
                    "the caller's ids are unmapped in its user namespace, or it is chrooted "
                    "(user_namespaces(7))"
                )
        elif not gates:
            gates.append("no CAP_SYS_ADMIN in the caller's user namespace")
        return "EPERM: " + "; ".join(gates)


def _kconfig_name(t: NsType) -> str:
    return {NsType.MNT: "NAMESPACES", NsType.CGROUP: "CGROUPS"}.get(t, f"{t.value.upper()}_NS")


def _p(
    group: str,
    name: str,
    status: str,
    value: Value,
    detail: str,
    consequence: str,
    needs_root: bool = False,
) -> Probe:
    assert status in STATUSES, status
    return Probe(group, name, status, value, detail, consequence, needs_root)


def _child_failed(group: str, name: str, res: _Result, consequence: str) -> Probe:
    """The probe whose throwaway child died or timed out: status unknown, and why."""
    return _p(group, name, "unknown", None, f"probe child failed: {res['error']}", consequence)


def _system(ctx: _Ctx) -> list[Probe]:
    out = []
    uname = os.uname()
    out.append(
        _p(
            "system",
            "kernel",
            "ok",
            ctx.release,
            f"{uname.sysname} {ctx.release} {uname.version}",
            f"Linux {ctx.version[0]}.{ctx.version[1]}: features are probed below, not assumed",
        )
    )
    machine = platform.machine()
    try:
        _nr.table(machine)
        status, detail = "ok", "in nsprim's syscall-number table"
        cons = "raw syscalls (clone3, pidfd_*, mount API) use the table for this arch"
    except UnsupportedError as err:
        status, detail = "missing", str(err)
        cons = "raw syscalls are unavailable: nsprim raises UnsupportedError for them"
    odd = machine.startswith(("mips", "ppc", "powerpc", "sparc", "alpha"))
    detail += "; ioctl direction bits: " + (
        "3 (alpha/mips/powerpc/sparc)" if odd else "2 (generic)"
    )
    out.append(_p("system", "architecture", status, machine, detail, cons))

    py = platform.python_version()
    extras = [
        f"os.setns/os.unshare: {'yes' if hasattr(os, 'setns') else 'no (3.12+)'}",
        f"os.timerfd_create: {'yes' if hasattr(os, 'timerfd_create') else 'no (3.13+)'}",
    ]
    out.append(
        _p(
            "system",
            "python",
            "ok",
            py,
            f"{sys.implementation.name} {py}; " + "; ".join(extras),
            "nsprim uses its own ctypes bindings either way",
        )
    )
    import multiprocessing  # here: importing it costs ~10 ms that `nsprim ls` needn't pay

    method = multiprocessing.get_start_method(allow_none=True)
    out.append(
        _p(
            "system",
            "multiprocessing",
            "ok",
            method or "default",
            f"start method {method!r}" if method else "start method not set (default)",
            "nsprim forks its own children and does not use multiprocessing",
        )
    )
    libc_ver = (
        os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
    )
    names = (
        "pidfd_open",
        "pidfd_getfd",
        "mount_setattr",
        "open_tree",
        "move_mount",
        "clone3",
        "pidfd_spawn",
    )
    have = [n for n in names if hasattr(_libc.libc, n)]
    lack = [n for n in names if n not in have]
    out.append(
        _p(
            "system",
            "libc",
            "ok" if libc_ver else "unknown",
            libc_ver or "not glibc",
            f"wrappers present: {', '.join(have) or 'none'}; absent: {', '.join(lack) or 'none'}",
            "nsprim calls clone3, pidfd_*, open_tree, move_mount and mount_setattr through "
            "syscall(2) whatever the libc exports; unshare, setns and mount through libc",
        )
    )
    tasks = len(os.listdir("/proc/self/task"))
    out.append(
        _p(
            "system",
            "threads",
            "ok" if tasks == 1 else "limited",
            tasks,
            f"{tasks} thread(s) in /proc/self/task",
            "unshare/setns of user and mnt work in this process"
            if tasks == 1
            else "user/mnt unshare and setns are refused (EINVAL) in a multithreaded "
            "process: nsprim does them in a fresh child",
        )
    )
    import subprocess

    for tool in ("unshare", "nsenter"):
        path = shutil.which(tool)
        if path is None:
            out.append(
                _p(
                    "system",
                    tool,
                    "missing",
                    None,
                    f"{tool} not on PATH",
                    f"no util-linux {tool} to cross-check against",
                )
            )
            continue
        try:
            proc = subprocess.run(
                [path, "--version"], capture_output=True, timeout=ctx.timeout, check=False
            )
            text = proc.stdout.decode("utf-8", "replace").strip().splitlines()
            ver = text[0] if text else ""
        except (OSError, subprocess.TimeoutExpired) as err:
            ver = f"error: {err}"
        m = re.search(r"util-linux\s+([\d.]+)", ver)
        out.append(
            _p(
                "system",
                tool,
                "ok" if m else "unknown",
                m.group(1) if m else ver,
                f"{path}: {ver}",
                f"util-linux {tool} available for cross-checks",
            )
        )
    return out


def _namespaces(ctx: _Ctx) -> list[Probe]:
    out = []
    for t in NsType:
        present = os.path.exists(f"/proc/self/ns/{t.value}")
        res = _in_child(_userns_then(int(t.flag)), ctx.timeout)
        use = _TYPE_USE[t]
        if "error" in res:
            out.append(_child_failed("namespaces", t.value, res, f"{use}: unknown"))
            continue
        err = int(res["errno"])
        uerr = res.get("userns_errno")
        where = "present in /proc/self/ns" if present else "absent from /proc/self/ns"
        flag = f"unshare(CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()})"
        if err == 0:
            status, value = "ok", "works"
            detail = f"{where}; {flag} works"
            cons = f"{use}: available"
        elif err == errno.EPERM and uerr == 0:
            status, value = "limited", "in userns only"
            detail = (
                f"{where}; {flag} gives EPERM ({ctx.gate_reasons(err, t)[7:]}), "
                "but works inside a new user namespace"
            )
            cons = f"{use}: only rootless, inside a new user namespace"
        else:
            last = int(uerr) if uerr is not None else err
            status, value = "missing", _ename(last)
            reason = ctx.gate_reasons(last, t)
            if last in (errno.EINVAL, errno.ENOSYS):
                reason = (
                    f"{_ename(last)}: not in this kernel "
                    f"(needs {t.since}, CONFIG_{_kconfig_name(t)})"
                )
            elif last == errno.EPERM:
                reason = "not permitted here: " + reason
            detail = f"{where}; {flag}: {reason}"
            cons = f"{use}: not possible here because {reason}"
        out.append(_p("namespaces", t.value, status, value, detail, cons, needs_root=not ctx.root))
    fc = [
        n for n in ("pid_for_children", "time_for_children") if os.path.exists(f"/proc/self/ns/{n}")
    ]
    out.append(
        _p(
            "namespaces",
            "for_children",
            "ok" if len(fc) == 2 else "limited",
            ",".join(fc) or None,
            f"/proc/self/ns has {', '.join(fc) or 'no *_for_children entries'}",
            "after unshare(CLONE_NEWPID/NEWTIME) the children's namespace is visible"
            if len(fc) == 2
            else "pending pid/time namespaces are not visible in /proc",
        )
    )
    return out


def _rootless_body() -> _Result:
    # Drop to nobody in the child (needs CAP_SETUID/CAP_SETGID), then try.
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    return {
        "errno": _unshare_errno(C.CLONE_NEWUSER),
        "status": _status_fields(),
    }


def _userns(ctx: _Ctx) -> list[Probe]:
    out = []
    if ctx.euid == 0:
        res = _in_child(_rootless_body, ctx.timeout)
        how = "as nobody (uid 65534, dropped in a throwaway child)"
    else:
        res = _in_child(lambda: {"errno": _unshare_errno(C.CLONE_NEWUSER)}, ctx.timeout)
        how = f"as uid {ctx.euid}"
    if "error" in res:
        out.append(
            _p(
                "userns",
                "unprivileged",
                "unknown",
                None,
                f"probe {how} failed: {res['error']}",
                "rootless containers: unknown",
                needs_root=ctx.euid == 0,
            )
        )
    else:
        err = int(res["errno"])
        if err == 0:
            out.append(
                _p(
                    "userns",
                    "unprivileged",
                    "ok",
                    True,
                    f"unshare(CLONE_NEWUSER) works {how}",
                    "rootless containers: possible",
                )
            )
        else:
            saved_root = ctx.root
            ctx.root = False  # judge the gates as the unprivileged caller
            try:
                reason = ctx.gate_reasons(err, NsType.USER)
            finally:
                ctx.root = saved_root
            out.append(
                _p(
                    "userns",
                    "unprivileged",
                    "missing",
                    False,
                    f"unshare(CLONE_NEWUSER) {how}: {reason}",
                    f"rootless containers: not possible here because {reason}",
                )
            )
    clone = _read_int("/proc/sys/kernel/unprivileged_userns_clone")
    out.append(
        _p(
            "userns",
            "unprivileged_userns_clone",
            "ok" if clone in (None, 1) else "missing",
            clone,
            "kernel.unprivileged_userns_clone "
            + ("absent (upstream kernel: no such gate)" if clone is None else f"= {clone}"),
            "no Debian/Ubuntu sysctl gate"
            if clone in (None, 1)
            else "unprivileged user namespaces are disabled by sysctl",
        )
    )
    for name in (
        "apparmor_restrict_unprivileged_userns",
        "apparmor_restrict_unprivileged_unconfined",
    ):
        val = _read_int(f"/proc/sys/kernel/{name}")
        out.append(
            _p(
                "userns",
                name,
                "ok" if val in (None, 0) else "limited",
                val,
                f"kernel.{name} "
                + ("absent (no AppArmor userns mediation)" if val is None else f"= {val}"),
                "AppArmor does not restrict unprivileged user namespaces"
                if val in (None, 0)
                else "unconfined processes get a user namespace without capabilities (AppArmor)",
            )
        )
    mx = _read_int("/proc/sys/user/max_user_namespaces")
    out.append(
        _p(
            "userns",
            "max_user_namespaces",
            "unknown" if mx is None else ("missing" if mx == 0 else "ok"),
            mx,
            f"user.max_user_namespaces = {mx}",
            "no user namespaces can be created"
            if mx == 0
            else "user namespaces allowed by the limit",
        )
    )
    mode = {"0": "disabled", "1": "strict", "2": "filter"}.get(
        ctx.seccomp, ctx.seccomp or "unknown"
    )
    out.append(
        _p(
            "userns",
            "seccomp",
            "ok" if ctx.seccomp == "0" else ("limited" if ctx.seccomp else "unknown"),
            mode,
            f"Seccomp: {ctx.seccomp or '?'} ({mode}), filters: {ctx.seccomp_filters or '?'}",
            "no seccomp filter can refuse namespace syscalls"
            if ctx.seccomp == "0"
            else "a seccomp filter may refuse unshare/clone/setns: see the per-type probes",
        )
    )
    return out


# --- syscalls ---------------------------------------------------------------------


def _raw(name: str, *args: int) -> int:
    """Return the errno of the raw syscall *name* (0 on success; the result fd is closed)."""
    try:
        ret = _libc.syscall(name, *args)
    except UnsupportedError:
        return errno.ENOSYS
    except OSError as err:
        return err.errno or errno.EIO
    if ret >= 0 and name in ("pidfd_open", "open_tree"):
        os.close(ret)
    return 0


def _syscall_probe(name: str, err: int, call: str, since: str, seccomp: str = "0") -> Probe:
    if err == errno.ENOSYS:
        return _p(
            "syscalls",
            name,
            "missing",
            "ENOSYS",
            f"{call} -> ENOSYS",
            f"{name}: not in this kernel (needs {since}); "
            "nsprim falls back or raises UnsupportedError",
        )
    if err == errno.EPERM and seccomp != "0":
        return _p(
            "syscalls",
            name,
            "unknown",
            "EPERM",
            f"{call} -> EPERM with a seccomp filter active (Seccomp: {seccomp}): the filter "
            "may have answered for the kernel, so presence is unknown",
            f"{name}: refused here",
        )
    if err == errno.EPERM:
        # No filter: only the syscall's own privilege check answers EPERM
        # (move_mount checks may_mount() before its flags).
        return _p(
            "syscalls",
            name,
            "ok",
            "EPERM",
            f"{call} -> EPERM (no seccomp filter: the kernel's own privilege check; present)",
            f"{name}: available with CAP_SYS_ADMIN",
            needs_root=True,
        )
    return _p(
        "syscalls",
        name,
        "ok",
        _ename(err),
        f"{call} -> {_ename(err)} (not ENOSYS: present)",
        f"{name}: available",
    )


def _ioctl_errno(fd: int, request: int, size: int = 0) -> tuple[int, int]:
    """Return ``(errno, result)`` of ioctl(fd, request, buf), buf NULL when *size* is 0."""
    # The _IO() requests take no argument, and the pidfs ones refuse a
    # non-zero one with EINVAL (fs/pidfs.c pidfd_ioctl).
    buf = ctypes.create_string_buffer(size) if size else None
    ret = _libc.ioctl(fd, request, ctypes.addressof(buf) if buf is not None else None)
    if ret == -1:
        return ctypes.get_errno(), -1
    return 0, int(ret)


def _setns_pidfd_body() -> _Result:
    pidfd = _sc.pidfd_open(os.getpid())
    try:
        _sc.setns(pidfd, C.CLONE_NEWUTS)
    except OSError as err:
        return {"errno": err.errno}
    finally:
        os.close(pidfd)
    return {"errno": 0}


def _syscalls(ctx: _Ctx) -> list[Probe]:
    # (name, arguments of a call that cannot do anything, text, kernel that added it)
    table: list[tuple[str, tuple[int, ...], str, str]] = [
        ("unshare", (0,), "unshare(0)", "Linux 2.6.16"),
        ("setns", (-1, 0), "setns(-1, 0)", "Linux 3.0"),
        # clone3(NULL, 0): EINVAL from the size check before anything happens.
        ("clone3", (0, 0), "clone3(NULL, 0)", "Linux 5.3"),
        ("pidfd_open", (os.getpid(), 0), "pidfd_open(getpid(), 0)", "Linux 5.3"),
        ("pidfd_send_signal", (-1, 0, 0, 0), "pidfd_send_signal(-1, 0)", "Linux 5.1"),
        ("pidfd_getfd", (-1, 0, 0), "pidfd_getfd(-1, 0, 0)", "Linux 5.6"),
        ("mount_setattr", (-1, 0, 0, 0, 0), "mount_setattr(-1, NULL, 0, NULL, 0)", "Linux 5.12"),
        ("open_tree", (-1, 0, 0xFFFFFFFF), "open_tree(-1, NULL, ~0)", "Linux 5.2"),
        (
            "move_mount",
            (-1, 0, -1, 0, 0xFFFFFFFF),
            "move_mount(-1, NULL, -1, NULL, ~0)",
            "Linux 5.2",
        ),
        ("listns", (0, 0, 0, 0), "listns(NULL, NULL, 0, 0)", "Linux 6.19"),
    ]
    out = [
        _syscall_probe(name, _raw(name, *args), text, since, ctx.seccomp)
        for name, args, text, since in table
    ]
    # setns with a pidfd (5.8): the errno of joining our own UTS namespace, in a child.
    res = _in_child(_setns_pidfd_body, ctx.timeout)
    err = res.get("errno")
    if "error" in res and err is None:
        out.append(_child_failed("syscalls", "setns_pidfd", res, "setns(pidfd): unknown"))
    elif err in (0, errno.EPERM):
        out.append(
            _p(
                "syscalls",
                "setns_pidfd",
                "ok",
                _ename(err),
                f"setns(pidfd, CLONE_NEWUTS) -> {_ename(err)} (a pidfd is accepted)",
                "setns(pidfd, mask) joins several namespaces atomically",
            )
        )
    else:
        out.append(
            _p(
                "syscalls",
                "setns_pidfd",
                "missing",
                _ename(err),
                f"setns(pidfd, CLONE_NEWUTS) -> {_ename(err)}: needs Linux 5.8",
                "setns(pidfd): not here; nsprim joins one nsfs fd at a time",
            )
        )
    out.extend(_ioctls(ctx))
    return out


def _ioctls(ctx: _Ctx) -> list[Probe]:
    out = []
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for name, req, since in (
            ("NS_GET_USERNS", C.NS_GET_USERNS, "Linux 4.9"),
            ("NS_GET_NSTYPE", C.NS_GET_NSTYPE, "Linux 4.11"),
            ("NS_GET_ID", C.NS_GET_ID, "Linux 6.18"),
        ):
            err, ret = _ioctl_errno(fd, req, 8 if name == "NS_GET_ID" else 0)
            if err == 0 and name == "NS_GET_USERNS":
                os.close(ret)
            out.append(_ioctl_probe(name, err, since))
    finally:
        os.close(fd)
    ufd = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    pfd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        err, ret = _ioctl_errno(pfd, C.NS_GET_PARENT)
        if err == 0:
            os.close(ret)
        out.append(_ioctl_probe("NS_GET_PARENT", err, "Linux 4.9"))
        err, _ = _ioctl_errno(ufd, C.NS_GET_OWNER_UID, 4)
        out.append(_ioctl_probe("NS_GET_OWNER_UID", err, "Linux 4.11"))
    finally:
        os.close(ufd)
        os.close(pfd)
    # pidfs ioctls (6.11: PIDFD_GET_*_NAMESPACE; 6.13: PIDFD_GET_INFO)
    try:
        pidfd = _sc.pidfd_open(os.getpid())
    except (OSError, UnsupportedError) as exc:
        out.append(
            _p(
                "syscalls",
                "PIDFD_GET_NAMESPACE",
                "missing",
                None,
                f"no pidfd: {exc}",
                "pidfd ioctls: unavailable",
            )
        )
        out.append(
            _p(
                "syscalls",
                "PIDFD_GET_INFO",
                "missing",
                None,
                f"no pidfd: {exc}",
                "pidfd ioctls: unavailable",
            )
        )
    else:
        try:
            err, ret = _ioctl_errno(pidfd, C.PIDFD_GET_UTS_NAMESPACE)
            if err == 0:
                os.close(ret)
            out.append(_ioctl_probe("PIDFD_GET_NAMESPACE", err, "Linux 6.11"))
            # struct pidfd_info is 64 bytes (PIDFD_INFO_SIZE_VER0); mask PIDFD_INFO_PID = 1.
            info = ctypes.create_string_buffer(64)
            ctypes.c_uint64.from_buffer(info).value = 1
            req = C.iowr(C.PIDFS_IOCTL_MAGIC, 11, 64)
            ret = _libc.ioctl(pidfd, req, ctypes.addressof(info))
            out.append(
                _ioctl_probe("PIDFD_GET_INFO", ctypes.get_errno() if ret == -1 else 0, "Linux 6.13")
            )
        finally:
            os.close(pidfd)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            err, ret = _ioctl_errno(s.fileno(), C.SIOCGSKNS)
            if err == 0:
                os.close(ret)
    except OSError as exc:
        err = exc.errno or errno.EIO
    out.append(
        _ioctl_probe("SIOCGSKNS", err, "Linux 4.9", perm="CAP_NET_ADMIN over the socket's netns")
    )
    return out


def _ioctl_probe(name: str, err: int, since: str, perm: str = "") -> Probe:
    if err == 0:
        return _p("syscalls", name, "ok", "works", f"ioctl {name} works", f"{name}: available")
    if err == errno.EPERM:
        return _p(
            "syscalls",
            name,
            "ok",
            "EPERM",
            f"ioctl {name} -> EPERM: known to the kernel, refused for this caller"
            + (f" (needs {perm})" if perm else " (target outside the caller's scope)"),
            f"{name}: available with privilege",
            needs_root=bool(perm),
        )
    if err in (
        errno.ENOTTY,
        errno.EINVAL,
        errno.ENOIOCTLCMD if hasattr(errno, "ENOIOCTLCMD") else -1,
    ):
        return _p(
            "syscalls",
            name,
            "missing",
            _ename(err),
            f"ioctl {name} -> {_ename(err)}: not in this kernel (needs {since})",
            f"{name}: not here; nsprim works without it"
            + (" (identity by inode only)" if name == "NS_GET_ID" else ""),
        )
    return _p(
        "syscalls",
        name,
        "unknown",
        _ename(err),
        f"ioctl {name} -> {_ename(err)}",
        f"{name}: unknown",
    )


# --- kernel config, limits --------------------------------------------------------


def _kconfig(ctx: _Ctx) -> list[Probe]:
    out = []
    if ctx.kconfig_source is None:
        for opt in KCONFIG_OPTIONS:
            out.append(
                _p(
                    "kconfig",
                    opt,
                    "unknown",
                    None,
                    f"neither /proc/config.gz nor /boot/config-{ctx.release} is readable",
                    "kernel config unknown: the creatable probes are authoritative",
                )
            )
        return out
    for opt in KCONFIG_OPTIONS:
        val = ctx.kconfig.get(opt)
        if val in ("y", "m"):
            status, cons = "ok", f"CONFIG_{opt} built {'in' if val == 'y' else 'as a module'}"
        elif val is None or val == "n":
            status, cons = "missing", f"CONFIG_{opt} is not set: {_OPT_USE.get(opt, 'unavailable')}"
        else:
            status, cons = "ok", f"CONFIG_{opt}={val}"
        out.append(
            _p(
                "kconfig",
                opt,
                status,
                "n" if val is None else val,
                f"CONFIG_{opt}={val if val is not None else 'absent'} in {ctx.kconfig_source}",
                cons,
            )
        )
    return out


_OPT_USE = {
    "NAMESPACES": "no namespaces at all",
    "UTS_NS": "no UTS namespaces",
    "IPC_NS": "no IPC namespaces",
    "USER_NS": "no user namespaces (no rootless mode)",
    "PID_NS": "no pid namespaces",
    "NET_NS": "no network namespaces",
    "TIME_NS": "no time namespaces",
    "CGROUPS": "no cgroups and no cgroup namespaces",
    "POSIX_MQUEUE": "no POSIX message queues to isolate (IPC checks skip them)",
    "VETH": "no veth pairs between network namespaces",
    "CHECKPOINT_RESTORE": "no set_tid/ns_last_pid and fewer /proc fields",
}


def _limits(ctx: _Ctx) -> list[Probe]:
    out = []
    for t in NsType:
        path = f"/proc/sys/user/max_{t.value}_namespaces"
        val = _read_int(path)
        status = "unknown" if val is None else ("missing" if val == 0 else "ok")
        out.append(
            _p(
                "limits",
                f"max_{t.value}_namespaces",
                status,
                val,
                f"{path} = {val}" if val is not None else f"{path} unreadable",
                f"{t.value} namespaces: none can be created (limit 0)"
                if val == 0
                else f"up to {val} {t.value} namespaces per user",
            )
        )
    for name in ("overflowuid", "overflowgid"):
        val = _read_int(f"/proc/sys/kernel/{name}")
        out.append(
            _p(
                "limits",
                name,
                "ok" if val is not None else "unknown",
                val,
                f"kernel.{name} = {val}",
                f"unmapped ids appear as {val} inside user namespaces (USR-01)",
            )
        )
    pid_max = _read_int("/proc/sys/kernel/pid_max")
    out.append(
        _p(
            "limits",
            "pid_max",
            "ok" if pid_max else "unknown",
            pid_max,
            f"kernel.pid_max = {pid_max}; writable by mode: "
            f"{os.access('/proc/sys/kernel/pid_max', os.W_OK)} (not written: before Linux 6.14 "
            "it is global)",
            "pid numbers inside a pid namespace stay below pid_max",
        )
    )
    return out


# --- credentials, environment -------------------------------------------------------


def _credentials(ctx: _Ctx) -> list[Probe]:
    out = []
    s = ctx.status
    out.append(
        _p(
            "credentials",
            "ids",
            "ok",
            ctx.euid,
            f"Uid: {s.get('Uid', '?')}; Gid: {s.get('Gid', '?')}; "
            f"Groups: {s.get('Groups', '') or '-'}",
            "running as root"
            if ctx.euid == 0
            else "running unprivileged: nsprim uses user namespaces",
        )
    )
    for field in ("CapEff", "CapBnd", "CapAmb", "CapPrm"):
        names = decode_caps(s.get(field, "0"))
        if field == "CapEff":
            status = "ok" if "sys_admin" in names else "limited"
            cons = (
                "CAP_SYS_ADMIN: every namespace type directly"
                if status == "ok"
                else "no CAP_SYS_ADMIN: other types only inside a new user namespace"
            )
        elif field == "CapBnd":
            status = "ok" if "sys_admin" in names else "limited"
            cons = (
                "bounding set keeps CAP_SYS_ADMIN"
                if status == "ok"
                else "CAP_SYS_ADMIN was dropped from the bounding set"
            )
        else:
            status, cons = "ok", "informative"
        out.append(
            _p(
                "credentials",
                field,
                status,
                _caps_text(names),
                f"{field}: {s.get(field, '?')} = {', '.join(names) or 'none'}",
                cons,
            )
        )
    nnp = s.get("NoNewPrivs")
    out.append(
        _p(
            "credentials",
            "NoNewPrivs",
            "ok" if nnp == "0" else ("limited" if nnp else "unknown"),
            nnp,
            f"NoNewPrivs: {nnp}",
            "setuid helpers (newuidmap) work"
            if nnp == "0"
            else "setuid newuidmap/newgidmap gain no privilege here",
        )
    )
    out.append(_lsm())
    return out


def _lsm() -> Probe:
    parts = []
    aa = _read("/proc/self/attr/apparmor/current") or _read("/proc/self/attr/current")
    if aa:
        parts.append(f"current label: {aa.strip()}")
    lsms = _read("/sys/kernel/security/lsm")
    if lsms:
        parts.append(f"LSMs: {lsms.strip()}")
    enforce = _read("/sys/fs/selinux/enforce")
    if enforce is not None:
        parts.append(f"SELinux {'enforcing' if enforce.strip() == '1' else 'permissive'}")
    aa_enabled = _read("/sys/module/apparmor/parameters/enabled")
    if aa_enabled is not None:
        parts.append(f"AppArmor enabled: {aa_enabled.strip()}")
    if not parts:
        return _p(
            "credentials",
            "lsm",
            "ok",
            "none",
            "no LSM label (/proc/self/attr/current: EINVAL), no SELinux, no AppArmor",
            "no LSM restricts namespaces here",
        )
    confined = (
        bool(aa and aa.strip() not in ("unconfined", "kernel")) or (enforce or "").strip() == "1"
    )
    return _p(
        "credentials",
        "lsm",
        "limited" if confined else "ok",
        "; ".join(parts),
        "; ".join(parts),
        "an LSM policy may refuse mounts or namespaces" if confined else "unconfined",
    )


def _mountinfo_root() -> Optional[list[str]]:
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        f = line.split(" ")
        if len(f) > 4 and f[4] == "/":
            return f
    return None


def _environment(ctx: _Ctx) -> list[Probe]:
    out = []
    # initial namespaces, by the fixed inodes of <linux/nsfs.h>
    initial, other, unsure = [], [], []
    for t in NsType:
        try:
            ino = os.stat(f"/proc/self/ns/{t.value}").st_ino
        except OSError:
            continue
        if ino == t.init_ino:
            initial.append(t.value)
        elif t in (NsType.NET, NsType.MNT) and ctx.version < (6, 18):
            unsure.append(t.value)
        else:
            other.append(f"{t.value}:[{ino}]")
    nspid = ctx.status.get("NSpid", "").split()
    depth = len(nspid)
    detail = f"initial: {', '.join(initial) or 'none'}"
    if other:
        detail += f"; not initial: {', '.join(other)}"
    if unsure:
        detail += f"; unknown before Linux 6.18 (no fixed inode): {', '.join(unsure)}"
    out.append(
        _p(
            "environment",
            "initial_namespaces",
            "ok" if not unsure else "limited",
            "all" if not other and not unsure else ("some" if initial else "none"),
            detail,
            "in the host's namespaces"
            if not other
            else "inside namespaces not created by boot: likely a container",
        )
    )
    out.append(
        _p(
            "environment",
            "nspid_depth",
            "ok" if depth else "unknown",
            depth or None,
            f"NSpid: {' '.join(nspid) or '(absent before Linux 4.1)'}",
            "in the initial pid namespace"
            if depth == 1
            else f"nested {depth - 1} pid namespace(s) deep",
        )
    )
    hints = []
    # systemd's container interface sets the lower-case $container.
    runtime = os.environ.get("container")  # noqa: SIM112
    if runtime:
        hints.append(f"$container={runtime}")
    rsc = _read("/run/systemd/container")
    if rsc:
        hints.append(f"/run/systemd/container={rsc.strip()}")
    for path in ("/.dockerenv", "/run/.containerenv"):
        if os.path.exists(path):
            hints.append(path)
    cg = _read("/proc/self/cgroup") or ""
    for word in ("docker", "lxc", "kubepods", "libpod", "containerd", "machine.slice"):
        if word in cg:
            hints.append(f"cgroup path contains {word!r}")
    if other:
        hints.append("non-initial namespaces: " + ", ".join(o.split(":")[0] for o in other))
    out.append(
        _p(
            "environment",
            "container",
            "ok",
            "container" if hints else "host",
            "; ".join(hints)
            if hints
            else "no container evidence ($container, /run/systemd/container, "
            "/.dockerenv, cgroup path, namespace inodes)",
            "informative only: the probes above are what counts",
        )
    )
    out.append(_cgroup_probe())
    root = _mountinfo_root()
    if root is None:
        out.append(
            _p(
                "environment",
                "root_propagation",
                "unknown",
                None,
                "/ not in /proc/self/mountinfo",
                "unknown",
            )
        )
    else:
        opt = root[6 : root.index("-")]
        prop = "private"
        for o in opt:
            if o.startswith("shared:"):
                prop = "shared"
            elif o.startswith("master:") and prop == "private":
                prop = "slave"
            elif o == "unbindable":
                prop = "unbindable"
        out.append(
            _p(
                "environment",
                "root_propagation",
                "ok",
                prop,
                f"/ is {prop} ({' '.join(opt) or 'no propagation tags'})",
                "new mount namespaces must make / private (MS_REC|MS_PRIVATE) before mounting"
                if prop == "shared"
                else "mounts in a new mount namespace do not propagate back",
            )
        )
    out.append(_idmap_tools(ctx))
    return out


def _cgroup_probe() -> Probe:
    fstype = None
    has_unified = False
    v1 = []
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        f = line.split(" ")
        try:
            dash = f.index("-")
        except ValueError:
            continue
        mp, typ = f[4], f[dash + 1]
        if mp == "/sys/fs/cgroup":
            fstype = typ
        elif mp.startswith("/sys/fs/cgroup/"):
            if typ == "cgroup2":
                has_unified = True
            elif typ == "cgroup":
                v1.append(mp.rsplit("/", 1)[1])
    lines = (_read("/proc/self/cgroup") or "").splitlines()
    v2_line = any(line.startswith("0::") for line in lines)
    if fstype == "cgroup2":
        layout, status = "v2", "ok"
    elif v1 and (has_unified or v2_line):
        layout, status = "hybrid", "limited"
    elif v1:
        layout, status = "v1", "limited"
    elif v2_line:
        layout, status = "v2 (not mounted at /sys/fs/cgroup)", "limited"
    else:
        layout, status = "none", "missing"
    # statfs(2) f_type is what check-config.sh uses; the mount's fstype in
    # mountinfo is the same superblock fact without a new ctypes binding.
    return _p(
        "environment",
        "cgroup",
        status,
        layout,
        f"/sys/fs/cgroup is {fstype or 'not mounted'}; v1 controllers: {','.join(v1) or 'none'}; "
        f"unified hierarchy: {'yes' if has_unified or fstype == 'cgroup2' else 'no'}; "
        f"/proc/self/cgroup has 0:: line: {v2_line}",
        "cgroup v2 delegation and CLONE_INTO_CGROUP work"
        if status == "ok"
        else "cgroup v2 features (CLONE_INTO_CGROUP, delegation) are limited here",
    )


def _idmap_tools(ctx: _Ctx) -> Probe:
    parts = []
    ok = True
    for tool in ("newuidmap", "newgidmap"):
        path = shutil.which(tool)
        if path is None:
            parts.append(f"{tool}: absent")
            ok = False
            continue
        st = os.stat(path)
        setuid = bool(st.st_mode & stat.S_ISUID)
        fcaps = False
        with contextlib.suppress(OSError):
            fcaps = bool(os.getxattr(path, "security.capability"))
        parts.append(
            f"{tool}: {path} ({'setuid' if setuid else 'file caps' if fcaps else 'no privilege'})"
        )
        ok = ok and (setuid or fcaps)
    try:
        user = pwd.getpwuid(ctx.euid).pw_name
    except KeyError:
        user = str(ctx.euid)
    ranges = []
    for path in ("/etc/subuid", "/etc/subgid"):
        for line in (_read(path) or "").splitlines():
            f = line.strip().split(":")
            if len(f) == 3 and f[0] in (user, str(ctx.euid)):
                ranges.append(f"{path}: {f[1]}+{f[2]}")
    parts.append("; ".join(ranges) if ranges else f"no /etc/subuid or /etc/subgid range for {user}")
    status = "ok" if ok and ranges else "limited"
    return _p(
        "environment",
        "idmap_tools",
        status,
        "yes" if status == "ok" else "no",
        "; ".join(parts),
        "rootless with many ids (newuidmap ranges) possible"
        if status == "ok"
        else "rootless user namespaces map only the caller's own uid/gid",
    )


# --- features tried in throwaway children -------------------------------------------


def _fresh_fs_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        _sc.unshare(C.CLONE_NEWUSER | C.CLONE_NEWNS | C.CLONE_NEWPID | C.CLONE_NEWNET)
        _map_self(euid, egid)
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pid 1 of the new pid namespace
            code = 0
            try:
                os.close(r)
                _sc.set_pdeathsig(signal.SIGKILL)
                got: dict[str, int] = {}
                # Private first: nothing here may propagate to the caller's tree.
                _sc.mount(None, "/", None, C.MS_REC | C.MS_PRIVATE)
                for fs, target in (("proc", "/proc"), ("sysfs", "/sys")):
                    try:
                        _sc.mount(fs, target, fs, C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC)
                        got[fs] = 0
                    except OSError as err:
                        got[fs] = err.errno or errno.EIO
                os.write(w, json.dumps(got).encode())
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(w)
        data = os.read(r, 4096)  # bounded by the parent's timeout on our pipe
        os.close(r)
        os.waitpid(pid, 0)
        return dict(json.loads(data)) if data else {"error": "pid 1 child reported nothing"}

    return body


def _time_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        import _thread

        _enter_private(euid, egid, C.CLONE_NEWTIME)
        res: _Result = {}
        try:
            _thread.start_new_thread(lambda: None, ())
            res["thread"] = "allowed"
        except RuntimeError as exc:
            res["thread"] = f"refused ({exc})"
        try:
            # glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK).
            p = os.posix_spawn("/bin/true", ["true"], {})
            os.waitpid(p, 0)
            res["vfork"] = "allowed"
        except OSError as exc:
            res["vfork"] = f"refused ({_ename(exc.errno)})"
        p = os.fork()
        if p == 0:
            os._exit(0)
        os.waitpid(p, 0)
        res["fork"] = "allowed"
        return res

    return body


def _lo_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        from . import net

        _enter_private(euid, egid, C.CLONE_NEWNET)
        before = net.is_up("lo")
        net.set_link_up("lo")
        return {"before": before, "after": net.is_up("lo")}

    return body


def _hostname_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        _enter_private(euid, egid, C.CLONE_NEWUTS)
        res = {}
        for n in (C.NEW_UTS_LEN, C.NEW_UTS_LEN + 1):
            name = b"h" * n
            # The raw libc call: nsprim.syscalls.sethostname refuses 65 bytes
            # itself, and the question is what the kernel accepts.
            ret = _libc.sethostname(name, n)
            res[str(n)] = 0 if ret == 0 else ctypes.get_errno()
        return res

    return body


def _ns_last_pid_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        _enter_private(euid, egid, C.CLONE_NEWPID)
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pid 1 of a fresh pid namespace: ns_last_pid is its own
            code = 0
            try:
                os.close(r)
                _sc.set_pdeathsig(signal.SIGKILL)
                res: _Result = {}
                try:
                    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                        f.write("299")
                    c = os.fork()
                    if c == 0:
                        os._exit(0)
                    os.waitpid(c, 0)
                    res = {"errno": 0, "next_pid": c}
                except OSError as err:
                    res = {"errno": err.errno}
                os.write(w, json.dumps(res).encode())
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(w)
        data = os.read(r, 4096)
        os.close(r)
        os.waitpid(pid, 0)
        return dict(json.loads(data)) if data else {"error": "pid 1 child reported nothing"}

    return body


def _features(ctx: _Ctx) -> list[Probe]:
    out = []
    ids = (ctx.euid, ctx.egid)
    res = _in_child(_fresh_fs_body(*ids), ctx.timeout)
    for fs in ("proc", "sysfs"):
        if "error" in res:
            out.append(_child_failed("features", f"fresh_{fs}", res, f"fresh {fs}: unknown"))
            continue
        err = int(res[fs])
        if err == 0:
            out.append(
                _p(
                    "features",
                    f"fresh_{fs}",
                    "ok",
                    "mountable",
                    f"mount -t {fs} works in a child user+mnt+pid+net namespace",
                    f"containers get their own {'/proc' if fs == 'proc' else '/sys'}",
                )
            )
        else:
            out.append(
                _p(
                    "features",
                    f"fresh_{fs}",
                    "missing",
                    _ename(err),
                    f"mount -t {fs} in a child user namespace -> {_ename(err)} (the fully-visible "
                    "rule: the caller's /proc or /sys has overmounts)",
                    f"no private {fs} in user namespaces: bind the host's instead",
                )
            )
    res = _in_child(_time_body(*ids), ctx.timeout)
    if "error" in res:
        out.append(_child_failed("features", "time_ns_threads", res, "unknown"))
    else:
        limited = res["thread"] != "allowed" or res["vfork"] != "allowed"
        out.append(
            _p(
                "features",
                "time_ns_threads",
                "limited" if limited else "ok",
                f"thread {res['thread'].split()[0]}, vfork {res['vfork'].split()[0]}",
                f"after unshare(CLONE_NEWTIME): thread {res['thread']}, "
                f"vfork {res['vfork']}, fork {res['fork']}",
                "nsprim enters time namespaces by fork, never threads"
                if limited
                else "threads and vfork work after unshare(CLONE_NEWTIME)",
            )
        )
    res = _in_child(_lo_body(*ids), ctx.timeout)
    if "error" in res:
        out.append(_child_failed("features", "netns_loopback", res, "unknown"))
    else:
        ok = res["before"] is False and res["after"] is True
        out.append(
            _p(
                "features",
                "netns_loopback",
                "ok" if ok else "limited",
                f"{'UP' if res['before'] else 'DOWN'} -> {'UP' if res['after'] else 'DOWN'}",
                f"lo in a new network namespace starts {'UP' if res['before'] else 'DOWN'}; "
                f"nsprim.net.set_link_up('lo') leaves it {'UP' if res['after'] else 'DOWN'}",
                "bring lo up with nsprim.net.set_link_up('lo') in new network namespaces"
                if ok
                else "loopback behaves unexpectedly in new network namespaces",
            )
        )
    res = _in_child(_hostname_body(*ids), ctx.timeout)
    if "error" in res:
        out.append(_child_failed("features", "hostname_max", res, "unknown"))
    else:
        e64, e65 = int(res["64"]), int(res["65"])
        ok = e64 == 0 and e65 == errno.EINVAL
        out.append(
            _p(
                "features",
                "hostname_max",
                "ok" if ok else "unknown",
                C.NEW_UTS_LEN if e64 == 0 else None,
                f"sethostname of 64 bytes -> {_ename(e64)}, 65 bytes -> {_ename(e65)} "
                "(in a new UTS namespace)",
                "hostnames up to HOST_NAME_MAX (64) bytes"
                if ok
                else "hostname length limit differs from 64",
            )
        )
    res = _in_child(_ns_last_pid_body(*ids), ctx.timeout)
    if "error" in res:
        out.append(_child_failed("features", "ns_last_pid", res, "set_tid/ns_last_pid: unknown"))
    else:
        err = int(res["errno"])
        ok = err == 0 and res.get("next_pid") == 300
        out.append(
            _p(
                "features",
                "ns_last_pid",
                "ok" if ok else "missing",
                "writable" if ok else _ename(err),
                f"in a fresh pid namespace ns_last_pid := 299, "
                f"next fork got pid {res.get('next_pid')}"
                if err == 0
                else f"writing ns_last_pid in a fresh pid namespace -> {_ename(err)}",
                "choosing pids (set_tid, checkpoint/restore) works in own pid namespaces"
                if ok
                else "pids cannot be chosen (no CONFIG_CHECKPOINT_RESTORE or privilege)",
            )
        )
    return out


_PROBERS: dict[str, Callable[[_Ctx], list[Probe]]] = {
    "system": _system,
    "namespaces": _namespaces,
    "userns": _userns,
    "syscalls": _syscalls,
    "kconfig": _kconfig,
    "limits": _limits,
    "credentials": _credentials,
    "environment": _environment,
    "features": _features,
}


#: Longest per-probe timeout accepted: beyond it poll(2)'s millisecond int overflows.
_MAX_TIMEOUT = 86400.0


def probe_all(*, groups: Optional[Iterable[str]] = None, timeout: float = 10.0) -> list[Probe]:
    """Run every compatibility probe (or those of *groups*) and return the answers.

    Never needs root and never changes the caller: namespace-creating probes
    run in throwaway forked children, each reaped, with *timeout* seconds to
    answer. Reads /proc and /sys; kernel config from /proc/config.gz or
    /boot/config-RELEASE when readable.

    Args:
        groups: names from :data:`GROUPS` (default: all, in that order).
        timeout: seconds each throwaway child may take.

    Returns:
        The probes, grouped in :data:`GROUPS` order.

    Raises:
        ValueError: an unknown group name, or a timeout that is not a positive
            number of seconds (at most a day).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not 0 < timeout <= _MAX_TIMEOUT:
        raise ValueError(
            f"timeout must be more than 0 and at most {_MAX_TIMEOUT:.0f} seconds, got {timeout!r}"
        )
    wanted = list(GROUPS) if groups is None else list(groups)
    for g in wanted:
        if g not in _PROBERS:
            raise ValueError(f"unknown probe group {g!r}; expected one of {', '.join(GROUPS)}")
    ctx = _Ctx(timeout)
    out: list[Probe] = []
    for g in GROUPS:
        if g in wanted:
            out.extend(_PROBERS[g](ctx))
    return out


# --- --require -------------------------------------------------------------------

_ALIASES = {
    "rootless": ("userns", "unprivileged"),
    "userns-unprivileged": ("userns", "unprivileged"),
}
_REQUIRE_SYSCALLS = (
    "clone3",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "mount_setattr",
    "open_tree",
    "move_mount",
    "listns",
    "setns_pidfd",
)


def requirement_names() -> list[str]:
    """Return the names :func:`require` accepts (types, ``rootless`` and syscalls)."""
    return [t.value for t in NsType] + sorted(_ALIASES) + list(_REQUIRE_SYSCALLS)


def require(
    names: Union[str, Sequence[str]], probes: Optional[Sequence[Probe]] = None
) -> list[Probe]:
    """Return the probes behind the *names* that are not satisfied here.

    A requirement holds when its probe is ``ok`` or ``limited`` (a type that
    works only inside a new user namespace still works); ``missing`` and
    ``unknown`` fail it. ``nsprim check --require user,net,pid`` exits 1 when
    this returns anything.

    Args:
        names: a comma-separated string or a sequence of names: namespace
            types (``"net"``), ``"rootless"`` (unprivileged user namespaces),
            or a syscall probe name (``"clone3"``, ``"setns_pidfd"``, ...).
        probes: results of :func:`probe_all` to judge (default: run the
            probes needed).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: *names* is not a str or a sequence of str.
    """
    if isinstance(names, str):
        items = names.split(",")
    elif isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        items = list(names)
    else:
        raise TypeError(f"names must be a str or a sequence of str, got {names!r}")
    wanted: list[tuple[str, str]] = []
    for raw in items:
        n = raw.strip().lower()
        if not n:
            continue
        if n in {t.value for t in NsType}:
            wanted.append(("namespaces", n))
        elif n in _ALIASES:
            wanted.append(_ALIASES[n])
        elif n in _REQUIRE_SYSCALLS:
            wanted.append(("syscalls", n))
        else:
            raise ValueError(
                f"unknown requirement {raw!r}; expected some of {', '.join(requirement_names())}"
            )
    if not wanted:
        raise ValueError(f"no requirement given in {names!r}")
    if probes is None:
        probes = probe_all(groups=sorted({g for g, _ in wanted}))
    by_key = {(p.group, p.name): p for p in probes}
    failed = []
    for key in wanted:
        p = by_key.get(key)
        if p is None:
            p = _p(key[0], key[1], "unknown", None, "not probed", f"{key[1]}: unknown")
        if p.status not in ("ok", "limited"):
            failed.append(p)
    return failed
