"""The raw calls of the probes: errno in, errno out, arguments the bindings refuse.

Layer 2, private to :mod:`nsprim.compat`, and the one compat module that
reaches the raw layer (:mod:`nsprim._sys`). The typed bindings rightly refuse
a 65-byte hostname, unknown flag bits or a NULL path; a probe must pass them,
because the question is what the kernel (or a seccomp filter in front of it)
answers. Every function returns the errno (0 on success) and closes any fd
the call created.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Optional

from .._sys import consts as C
from .._sys import libc as _libc
from .._sys import nr as _nr
from ..errors import UnsupportedError

__all__ = [
    "syscall_errno",
    "unshare_errno",
    "setns_errno",
    "sethostname_errno",
    "setdomainname_errno",
    "mount_errno",
    "ioctl_errno",
    "libc_has",
    "syscall_table_error",
    "C",
]


def syscall_errno(name: str, *args: int) -> int:
    """Return the errno of the raw syscall *name* (0 on success; a result fd is closed)."""
    try:
        ret = _libc.syscall(name, *args)
    except UnsupportedError:
        return errno.ENOSYS
    except OSError as err:
        return err.errno or errno.EIO
    if ret >= 0 and name in ("pidfd_open", "open_tree"):
        os.close(ret)
    return 0


def unshare_errno(flags: int) -> int:
    """Return the errno of unshare(*flags*), unknown bits included."""
    return 0 if _libc.unshare(flags) == 0 else ctypes.get_errno()


def setns_errno(fd: int, nstype: int) -> int:
    """Return the errno of setns(*fd*, *nstype*), a bad fd included."""
    return 0 if _libc.setns(fd, nstype) == 0 else ctypes.get_errno()


def sethostname_errno(name: bytes, length: Optional[int] = None) -> int:
    """Return the errno of sethostname(*name*, *length*), any length included."""
    n = len(name) if length is None else length
    return 0 if _libc.sethostname(name, n) == 0 else ctypes.get_errno()


def setdomainname_errno(name: bytes, length: Optional[int] = None) -> int:
    """Return the errno of setdomainname(*name*, *length*), any length included."""
    n = len(name) if length is None else length
    return 0 if _libc.setdomainname(name, n) == 0 else ctypes.get_errno()


def mount_errno(source: Optional[bytes], target: bytes, fstype: Optional[bytes], flags: int) -> int:
    """Return the errno of mount(2) with a missing target allowed."""
    ret = _libc.mount(source, target, fstype, flags, None)
    return 0 if ret == 0 else ctypes.get_errno()


def ioctl_errno(fd: int, request: int, size: int = 0) -> tuple[int, int]:
    """Return ``(errno, result)`` of ioctl(fd, request, buf), buf NULL when *size* is 0."""
    # The _IO() requests take no argument, and the pidfs ones refuse a
    # non-zero one with EINVAL (fs/pidfs.c pidfd_ioctl).
    buf = ctypes.create_string_buffer(size) if size else None
    ret = _libc.ioctl(fd, request, ctypes.addressof(buf) if buf is not None else None)
    if ret == -1:
        return ctypes.get_errno(), -1
    return 0, int(ret)


def pidfd_info_errno(pidfd: int) -> int:
    """Return the errno of ioctl(PIDFD_GET_INFO) asking for the pid (Linux 6.13)."""
    # struct pidfd_info is 64 bytes (PIDFD_INFO_SIZE_VER0); mask PIDFD_INFO_PID = 1.
    info = ctypes.create_string_buffer(64)
    ctypes.c_uint64.from_buffer(info).value = 1
    req = C.iowr(C.PIDFS_IOCTL_MAGIC, 11, 64)
    ret = _libc.ioctl(pidfd, req, ctypes.addressof(info))
    return ctypes.get_errno() if ret == -1 else 0


def libc_has(name: str) -> bool:
    """Whether the C library exports *name*."""
    return hasattr(_libc.libc, name)


def syscall_table_error(machine: str) -> Optional[str]:
    """``None`` when nsprim knows this architecture's syscall numbers, else why not."""
    try:
        _nr.table(machine)
    except UnsupportedError as err:
        return str(err)
    return None


#: Which kernel brought each raw syscall.
SYSCALL_SINCE = dict(_libc.SYSCALL_SINCE)
