"""Syscall numbers for the calls glibc does not wrap (or wraps only recently).

Layer 0: standard library and :mod:`nsprim.errors` only.

Never guess at the ABI: numbers come from a table keyed by
``os.uname().machine`` (what ``platform.machine()`` returns); an
architecture that is not in the table raises
:class:`~nsprim.errors.UnsupportedError` when a number is asked for, instead
of falling back on x86_64's (pyroute2's default-308 counterexample).

Syscalls added since Linux 5.1 share one number on every architecture except
alpha (+110) and the MIPS ABIs (+4000 o32, +5000 n64, +6000 n32); the older
ones (setns, unshare, pivot_root) differ per architecture. Sources:
``arch/x86/entry/syscalls/syscall_64.tbl``, ``include/uapi/asm-generic/unistd.h``,
``arch/{arm,x86,powerpc,s390}/.../syscall*.tbl``.
"""

from __future__ import annotations

import os

from ..errors import UnsupportedError

# Unified numbering for syscalls added in 5.1 and later.
_UNIFIED = {
    "pidfd_send_signal": 424,  # Linux 5.1
    "open_tree": 428,  # Linux 5.2
    "move_mount": 429,  # Linux 5.2
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_open": 434,  # Linux 5.3
    "clone3": 435,  # Linux 5.3
    "pidfd_getfd": 438,  # Linux 5.6
    "mount_setattr": 442,  # Linux 5.12
    "listns": 470,  # Linux 6.19
}

# Per-architecture numbers of the older syscalls.
_GENERIC = {"unshare": 97, "setns": 268, "pivot_root": 41}  # asm-generic
_OLD = {
    "x86_64": {"unshare": 272, "setns": 308, "pivot_root": 155},
    "i386": {"unshare": 310, "setns": 346, "pivot_root": 217},
    "aarch64": _GENERIC,
    "riscv64": _GENERIC,
    "loongarch64": _GENERIC,
    "armv7l": {"unshare": 337, "setns": 375, "pivot_root": 218},
    "ppc64le": {"unshare": 282, "setns": 350, "pivot_root": 203},
    "ppc64": {"unshare": 282, "setns": 350, "pivot_root": 203},
    "s390x": {"unshare": 303, "setns": 339, "pivot_root": 217},
}
_ALIASES = {
    "amd64": "x86_64",
    "i686": "i386",
    "i586": "i386",
    "arm64": "aarch64",
    "armv6l": "armv7l",
    "armv8l": "armv7l",
}

SUPPORTED_ARCHES = tuple(sorted(_OLD))


def table(machine: str | None = None) -> dict[str, int]:
    """Return the syscall-number table of *machine* (default: this one).

    Raises:
        UnsupportedError: the architecture is not in nsprim's table.
    """
    arch = machine if machine is not None else os.uname().machine
    arch = _ALIASES.get(arch, arch)
    try:
        old = _OLD[arch]
    except KeyError:
        raise UnsupportedError(
            f"syscall numbers for architecture {arch!r}",
            requires="one of " + ", ".join(SUPPORTED_ARCHES),
        ) from None
    return {**old, **_UNIFIED}


def nr(name: str) -> int:
    """Return the syscall number of *name* on this architecture.

    Raises:
        UnsupportedError: unknown architecture.
        KeyError: *name* is not a syscall nsprim knows (a programming error).
    """
    return _TABLE()[name]


_cache: dict[str, int] = {}


def _TABLE() -> dict[str, int]:
    if not _cache:
        _cache.update(table())
    return _cache
