"""The kernel calls the conformance harness itself needs, in one place.

Layer: conformance, private. Re-exports the public :mod:`nsprim.syscalls`
bindings the harness uses, and binds (ctypes with full prototypes, STYLE.md
5.7) the two calls nsprim does not: capset(2) and prctl(PR_SET_DUMPABLE).
Errors follow ``os.unshare`` (Python 3.12): ``OSError`` whose errno selects
the subclass.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from nsprim.syscalls import mount as mount
from nsprim.syscalls import set_pdeathsig as set_pdeathsig
from nsprim.syscalls import setdomainname as setdomainname
from nsprim.syscalls import sethostname as sethostname
from nsprim.syscalls import setns as setns
from nsprim.syscalls import umount as umount
from nsprim.syscalls import unshare as unshare

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
    "set_pdeathsig",
    "drop_capabilities",
    "set_dumpable",
]

# include/uapi/linux/sched.h (the same values as nsprim.flags.CloneFlags)
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


_ulong = ctypes.c_ulong
_prctl = _proto("prctl", ctypes.c_int, ctypes.c_int, _ulong, _ulong, _ulong, _ulong)
_capset = _proto("capset", ctypes.c_int, ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData))


def _check(ret: int, call: str) -> None:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")


def drop_capabilities() -> None:
    """Clear the calling thread's effective, permitted and inheritable capability sets.

    Wraps capset(2). Ambient capabilities go with them (they must stay a
    subset of permitted and inheritable, capabilities(7)). The uid does not
    change, so this works inside a user namespace that maps a single uid.
    """
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_capset(ctypes.byref(header), data), "capset")


def set_dumpable(on: bool) -> None:
    """Set the dumpable attribute. prctl(2).

    A uid change clears it, and a non-dumpable process's ``/proc/self`` files
    belong to root, so a process that dropped root must set it again before it
    can write its own ``uid_map`` (proc(5), "/proc/pid" ownership).
    """
    _check(_prctl(_PR_SET_DUMPABLE, int(on), 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
