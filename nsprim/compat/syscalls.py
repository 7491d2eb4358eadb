"""Probe group ``syscalls``: which calls and ioctls this kernel has, and who refuses them.

Layer 2, private to :mod:`nsprim.compat`. Presence is judged from the errno
of a call that cannot do anything (ENOSYS: missing). A filter's ENOSYS is
told apart from the kernel's by the kernel version: ENOSYS for clone3 on
Linux 6.18, with a seccomp filter attached, is the filter's. An optional
call newer than this kernel (``listns``, Linux 6.19) is ``absent``, which is
no defect of the host.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from .. import syscalls as _sc
from ..errors import UnsupportedError
from ..flags import Ioctl
from .context import Ctx
from .engine import _SECCOMP_FIX
from .facts import Facts, ename, setns_pidfd_errno
from .record import Probe, child_failed

__all__ = ["probes", "REQUIRABLE"]

#: (name, arguments of a call that cannot do anything, text, kernel that added it)
TABLE: list[tuple[str, tuple[int, ...], str, str]] = [
    ("unshare", (0,), "unshare(0)", "Linux 2.6.16"),
    ("setns", (-1, 0), "setns(-1, 0)", "Linux 3.0"),
    # clone3(NULL, 0): EINVAL from the size check before anything happens.
    ("clone3", (0, 0), "clone3(NULL, 0)", "Linux 5.3"),
    ("pidfd_open", (-1, 0), "pidfd_open(getpid(), 0)", "Linux 5.3"),
    ("pidfd_send_signal", (-1, 0, 0, 0), "pidfd_send_signal(-1, 0)", "Linux 5.1"),
    ("pidfd_getfd", (-1, 0, 0), "pidfd_getfd(-1, 0, 0)", "Linux 5.6"),
    ("mount_setattr", (-1, 0, 0, 0, 0), "mount_setattr(-1, NULL, 0, NULL, 0)", "Linux 5.12"),
    ("open_tree", (-1, 0, 0xFFFFFFFF), "open_tree(-1, NULL, ~0)", "Linux 5.2"),
    ("move_mount", (-1, 0, -1, 0, 0xFFFFFFFF), "move_mount(-1, NULL, -1, NULL, ~0)", "Linux 5.2"),
    ("listns", (0, 0, 0, 0), "listns(NULL, NULL, 0, 0)", "Linux 6.19"),
]
#: The syscall probes ``require`` accepts.
REQUIRABLE = (
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


def _p(**kw: Any) -> Probe:
    return Probe(group="syscalls", **kw)


def syscall_probe(name: str, err: int, call: str, since: str, f: Facts) -> Probe:
    """Judge one presence probe from its errno."""
    if err == errno.ENOSYS:
        if f.seccomp.filtered and f.at_least(since):
            cause = (
                f"{name}(2) returns ENOSYS from a seccomp filter "
                f"(Linux {f.version[0]}.{f.version[1]} has it: {since})"
            )
            return _p(
                name=name,
                status="missing",
                value="ENOSYS",
                detail=f"{call} -> ENOSYS; {f.seccomp.text()}",
                consequence=f"{name}: refused here: {cause}",
                source="seccomp",
                fix=_SECCOMP_FIX,
            )
        if not f.at_least(since):
            return _p(
                name=name,
                status="absent",
                value="ENOSYS",
                detail=f"{call} -> ENOSYS",
                consequence=f"{name}: not in this kernel (needs {since}); "
                "nsprim falls back or raises UnsupportedError",
                source="kernel",
                fix=f"only if you need it: a kernel of {since} or later",
            )
        return _p(
            name=name,
            status="missing",
            value="ENOSYS",
            detail=f"{call} -> ENOSYS on Linux {f.version[0]}.{f.version[1]}, no seccomp filter",
            consequence=f"{name}: not built into this kernel (since {since})",
            source="kernel",
        )
    if err == errno.EPERM and f.seccomp.filtered:
        if name == "move_mount":
            # move_mount checks may_mount() before its flags: EPERM may be the kernel's.
            return _p(
                name=name,
                status="unknown",
                value="EPERM",
                detail=f"{call} -> EPERM with a seccomp filter active ({f.seccomp.text()}): the "
                "filter or the kernel's privilege check answered, so presence is unknown",
                consequence=f"{name}: refused here",
            )
        # The arguments are ones the kernel rejects before any permission check.
        return _p(
            name=name,
            status="missing",
            value="EPERM",
            detail=f"{call} -> EPERM, where the kernel answers EINVAL/EBADF; {f.seccomp.text()}",
            consequence=f"{name}: refused here: a seccomp filter returns EPERM for {name}(2)",
            source="seccomp",
            fix=_SECCOMP_FIX,
        )
    if err == errno.EPERM:
        # No filter: only the syscall's own privilege check answers EPERM
        # (move_mount checks may_mount() before its flags).
        return _p(
            name=name,
            status="ok",
            value="EPERM",
            detail=f"{call} -> EPERM (no seccomp filter: the kernel's own privilege check; "
            "present)",
            consequence=f"{name}: available with CAP_SYS_ADMIN",
            needs_root=True,
        )
    return _p(
        name=name,
        status="ok",
        value=ename(err),
        detail=f"{call} -> {ename(err)} (not ENOSYS: present)",
        consequence=f"{name}: available",
    )


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``syscalls`` probes."""
    f = ctx.facts
    out = []
    for name, args, text, since in TABLE:
        if name == "pidfd_open":
            args = (os.getpid(), 0)
        out.append(syscall_probe(name, _sc.syscall_errno(name, *args), text, since, f))
    # setns with a pidfd (5.8): the errno of joining our own UTS namespace, in a child.
    err = setns_pidfd_errno(ctx.timeout)
    if err is None:
        out.append(child_failed("syscalls", "setns_pidfd", "no answer", "setns(pidfd): unknown"))
    elif err in (0, errno.EPERM):
        out.append(
            _p(
                name="setns_pidfd",
                status="ok",
                value=ename(err),
                detail=f"setns(pidfd, CLONE_NEWUTS) -> {ename(err)} (a pidfd is accepted)",
                consequence="setns(pidfd, mask) joins several namespaces atomically",
            )
        )
    else:
        old = not f.at_least("Linux 5.8")
        out.append(
            _p(
                name="setns_pidfd",
                status="absent" if old else "missing",
                value=ename(err),
                detail=f"setns(pidfd, CLONE_NEWUTS) -> {ename(err)}: needs Linux 5.8",
                consequence="setns(pidfd): not here; nsprim joins one nsfs fd at a time",
                source="kernel" if old else ("seccomp" if f.seccomp.filtered else "kernel"),
            )
        )
    out.extend(_ioctls(f))
    return out


def _ioctls(f: Facts) -> list[Probe]:
    out = []
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for name, req, since in (
            ("NS_GET_USERNS", Ioctl.NS_GET_USERNS, "Linux 4.9"),
            ("NS_GET_NSTYPE", Ioctl.NS_GET_NSTYPE, "Linux 4.11"),
            ("NS_GET_ID", Ioctl.NS_GET_ID, "Linux 6.18"),
        ):
            err, ret = _sc.ioctl_errno(fd, req, 8 if name == "NS_GET_ID" else 0)
            if err == 0 and name == "NS_GET_USERNS":
                os.close(ret)
            out.append(_ioctl_probe(name, err, since, f))
    finally:
        os.close(fd)
    ufd = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    pfd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        err, ret = _sc.ioctl_errno(pfd, Ioctl.NS_GET_PARENT)
        if err == 0:
            os.close(ret)
        out.append(_ioctl_probe("NS_GET_PARENT", err, "Linux 4.9", f))
        err, _ = _sc.ioctl_errno(ufd, Ioctl.NS_GET_OWNER_UID, 4)
        out.append(_ioctl_probe("NS_GET_OWNER_UID", err, "Linux 4.11", f))
    finally:
        os.close(ufd)
        os.close(pfd)
    # pidfs ioctls (6.11: PIDFD_GET_*_NAMESPACE; 6.13: PIDFD_GET_INFO)
    try:
        pidfd = _sc.pidfd_open(os.getpid())
    except (OSError, UnsupportedError) as exc:
        for name in ("PIDFD_GET_NAMESPACE", "PIDFD_GET_INFO"):
            out.append(
                _p(
                    name=name,
                    status="missing",
                    value=None,
                    detail=f"no pidfd: {exc}",
                    consequence="pidfd ioctls: unavailable",
                )
            )
    else:
        try:
            err, ret = _sc.ioctl_errno(pidfd, Ioctl.PIDFD_GET_UTS_NAMESPACE)
            if err == 0:
                os.close(ret)
            out.append(_ioctl_probe("PIDFD_GET_NAMESPACE", err, "Linux 6.11", f))
            out.append(_ioctl_probe("PIDFD_GET_INFO", _sc.pidfd_info_errno(pidfd), "Linux 6.13", f))
        finally:
            os.close(pidfd)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            err, ret = _sc.ioctl_errno(s.fileno(), Ioctl.SIOCGSKNS)
            if err == 0:
                os.close(ret)
    except OSError as exc:
        err = exc.errno or errno.EIO
    out.append(
        _ioctl_probe("SIOCGSKNS", err, "Linux 4.9", f, perm="CAP_NET_ADMIN over the socket's netns")
    )
    return out


def _ioctl_probe(name: str, err: int, since: str, f: Facts, perm: str = "") -> Probe:
    if err == 0:
        return _p(
            name=name,
            status="ok",
            value="works",
            detail=f"ioctl {name} works",
            consequence=f"{name}: available",
        )
    if err == errno.EPERM:
        return _p(
            name=name,
            status="ok",
            value="EPERM",
            detail=f"ioctl {name} -> EPERM: known to the kernel, refused for this caller"
            + (f" (needs {perm})" if perm else " (target outside the caller's scope)"),
            consequence=f"{name}: available with privilege",
            needs_root=bool(perm),
        )
    if err in (errno.ENOTTY, errno.EINVAL):
        old = not f.at_least(since)
        return _p(
            name=name,
            status="absent" if old else "missing",
            value=ename(err),
            detail=f"ioctl {name} -> {ename(err)}: not in this kernel (needs {since})",
            consequence=f"{name}: not here; nsprim works without it"
            + (" (identity by inode only)" if name == "NS_GET_ID" else ""),
            source="kernel",
            fix=f"only if you need it: a kernel of {since} or later" if old else "",
        )
    return _p(
        name=name,
        status="unknown",
        value=ename(err),
        detail=f"ioctl {name} -> {ename(err)}",
        consequence=f"{name}: unknown",
    )
