"""The few kernel calls the conformance harness itself needs.

Layer: conformance, private. Standard library only (ctypes with full
prototypes, STYLE.md 5.7). These are the harness's own plumbing (the outer
sandbox, capability dropping); checks should prefer :mod:`nsprim.syscalls`.
Once the public bindings cover a call, this module re-exports them instead of
keeping its own prototype.

Errors follow ``os.unshare``/``os.setns`` (Python 3.12): ``OSError`` whose
errno selects the subclass.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

__all__ = [
    "CLONE_NEWNS",
    "CLONE_NEWCGROUP",
    "CLONE_NEWUTS",
    "CLONE_NEWIPC",
    "CLONE_NEWUSER",
    "CLONE_NEWPID",
    "CLONE_NEWNET",
    "CLONE_NEWTIME",
    "MS_REC",
    "MS_PRIVATE",
    "MS_NOSUID",
    "MS_NODEV",
    "MS_NOEXEC",
    "MNT_DETACH",
    "unshare",
    "setns",
    "mount",
    "umount",
    "sethostname",
    "setdomainname",
    "drop_capabilities",
    "set_pdeathsig",
    "set_dumpable",
]

# include/uapi/linux/sched.h
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
# include/uapi/linux/mount.h
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
# include/uapi/linux/prctl.h
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
# include/uapi/linux/capability.h
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(_libc, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


class _CapHeader(ctypes.Structure):
    """struct __user_cap_header_struct (linux/capability.h)."""

    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    """struct __user_cap_data_struct (linux/capability.h)."""

    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_unshare = _proto("unshare", ctypes.c_int, ctypes.c_int)
_setns = _proto("setns", ctypes.c_int, ctypes.c_int, ctypes.c_int)
_mount = _proto(
    "mount",
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
)
_umount2 = _proto("umount2", ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
_sethostname = _proto("sethostname", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_setdomainname = _proto("setdomainname", ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_prctl = _proto(
    "prctl",
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
)
_capset = _proto("capset", ctypes.c_int, ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData))


def _check(ret: int, call: str, filename: str | None = None) -> None:
    if ret == -1:
        err = ctypes.get_errno()
        if filename is None:
            raise OSError(err, f"{call}: {os.strerror(err)}")
        raise OSError(err, f"{call}: {os.strerror(err)}", filename)


def unshare(flags: int) -> None:
    """Disassociate parts of the calling thread's context. Wraps unshare(2)."""
    _check(_unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """Move the calling thread into the namespace *fd* refers to. Wraps setns(2); Linux 3.0."""
    _check(_setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str = "") -> None:
    """Mount a filesystem or change a mount's propagation. Wraps mount(2)."""
    _check(
        _mount(
            source.encode(),
            target.encode(),
            None if fstype is None else fstype.encode(),
            flags,
            data.encode() if data else None,
        ),
        f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x})",
        target,
    )


def umount(target: str, flags: int = 0) -> None:
    """Unmount *target*. Wraps umount2(2)."""
    _check(_umount2(target.encode(), flags), f"umount2({target!r}, {flags:#x})", target)


def sethostname(name: str | bytes) -> None:
    """Set the hostname of the caller's UTS namespace. Wraps sethostname(2)."""
    raw = name.encode() if isinstance(name, str) else name
    _check(_sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str | bytes) -> None:
    """Set the NIS domain name of the caller's UTS namespace. Wraps setdomainname(2)."""
    raw = name.encode() if isinstance(name, str) else name
    _check(_setdomainname(raw, len(raw)), "setdomainname")


def drop_capabilities() -> None:
    """Clear the calling thread's effective, permitted and inheritable capability sets.

    Wraps capset(2). Ambient capabilities go with them (they must stay a
    subset of permitted and inheritable, capabilities(7)). The uid does not
    change, so this works inside a user namespace that maps a single uid.
    """
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_capset(ctypes.byref(header), data), "capset")


def set_pdeathsig(sig: int) -> None:
    """Have the kernel send *sig* to the calling thread when its parent dies. prctl(2)."""
    _check(_prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def set_dumpable(on: bool) -> None:
    """Set the dumpable attribute. prctl(2).

    A uid change clears it, and a non-dumpable process's ``/proc/self`` files
    belong to root, so a process that dropped root must set it again before it
    can write its own ``uid_map`` (proc(5), "/proc/pid" ownership).
    """
    _check(_prctl(_PR_SET_DUMPABLE, int(on), 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
