"""Raw seccomp(2) structures and constants: classic BPF filters over ``struct seccomp_data``.

Layer 0: standard library, :mod:`nsprim.errors` and :mod:`.nr`.

Sources: ``include/uapi/linux/seccomp.h``, ``include/uapi/linux/filter.h``,
``include/uapi/linux/audit.h`` and the architectures' syscall tables
(``arch/x86/entry/syscalls/syscall_64.tbl``, ``include/uapi/asm-generic/unistd.h``).
"""

from __future__ import annotations

import ctypes
import platform

from ..errors import UnsupportedError as UnsupportedError
from . import nr as _nr

__all__ = [
    "SockFilter",
    "SockFprog",
    "AUDIT_ARCH",
    "SECCOMP_RET_ALLOW",
    "SECCOMP_RET_ERRNO",
    "SECCOMP_SET_MODE_FILTER",
    "PR_SET_NO_NEW_PRIVS",
    "PR_GET_NO_NEW_PRIVS",
    "PR_GET_SECCOMP",
    "syscall_number",
]


class SockFilter(ctypes.Structure):
    """``struct sock_filter``: one classic BPF instruction."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class SockFprog(ctypes.Structure):
    """``struct sock_fprog``: a BPF program (length and pointer)."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


# classic BPF opcodes (filter.h / bpf_common.h)
BPF_LD, BPF_JMP, BPF_RET = 0x00, 0x05, 0x06
BPF_W, BPF_ABS = 0x00, 0x20
BPF_JEQ, BPF_JSET, BPF_K = 0x10, 0x40, 0x00

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_DATA = 0x0000FFFF
PR_GET_SECCOMP = 21
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16

#: AUDIT_ARCH_* of each machine nsprim has a syscall table for.
AUDIT_ARCH = {
    "x86_64": 0xC000003E,
    "aarch64": 0xC00000B7,
    "riscv64": 0xC00000F3,
    "loongarch64": 0xC0000102,
}

_X86_64 = {
    "clone": 56,
    "ioctl": 16,
    "mount": 165,
    "umount2": 166,
    "sethostname": 170,
    "setdomainname": 171,
    "unshare": 272,
    "setns": 308,
    "pivot_root": 155,
}
_GENERIC = {
    "clone": 220,
    "ioctl": 29,
    "mount": 40,
    "umount2": 39,
    "sethostname": 161,
    "setdomainname": 162,
    "unshare": 97,
    "setns": 268,
    "pivot_root": 41,
}
_TABLES = {"x86_64": _X86_64, "aarch64": _GENERIC, "riscv64": _GENERIC, "loongarch64": _GENERIC}


def machine() -> str:
    """Return this machine's name as the tables key it (``amd64`` → ``x86_64``)."""
    m = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def syscall_number(name: str) -> int:
    """Return the number of syscall *name* on this machine.

    Raises:
        UnsupportedError: the machine or the syscall is not in the tables.
    """
    m = machine()
    table = _TABLES.get(m)
    if table is None:
        raise UnsupportedError(
            f"seccomp filters on {m!r}", requires="one of " + ", ".join(sorted(_TABLES))
        )
    if name in table:
        return table[name]
    try:
        return _nr.nr(name)
    except KeyError:
        raise UnsupportedError(f"the syscall number of {name!r} on {m}") from None
