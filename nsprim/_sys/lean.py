"""The few raw calls of nsprim's forker process, on ctypes alone.

Layer 0: standard library only (not even :mod:`nsprim.errors`).

The forker (:mod:`nsprim._forkerd`) is a ``python -I -S`` that forks every
program it starts. Each page it maps is a page-table entry that its
clone3(2) copies and that its child's execve(2) tears down again, so it
imports as little as it can. :mod:`nsprim._sys.libc` and
:mod:`nsprim.syscalls` bring nsprim.errors, the enum flags and their
dependencies: 1.3 MB more anonymous memory, which made each clone-and-exec
of /bin/true 0.23 ms slower on the 2-CPU VM this was measured on
(fork+exec 866 us with ctypes alone, 1084 us with nsprim.syscalls).

Every function is called with the GIL held (``PyDLL``): clone3 must not
release it (see :func:`nsprim.syscalls.clone3`), and the forker has no
other thread to hand it to. Errors raise ``OSError(errno, "call: strerror")``
as :func:`nsprim._sys.libc.check` does (ENOSYS included: the forker's
callers decode errors by errno).
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "check",
    "clone3_parent",
    "mount",
    "prctl",
    "sethostname",
    "setdomainname",
    "setns",
    "unshare",
]

_lib = ctypes.PyDLL(None, use_errno=True)
_c_int = ctypes.c_int
_c_long = ctypes.c_long
_c_ulong = ctypes.c_ulong
_c_char_p = ctypes.c_char_p


def _proto(name: str, restype: object, *argtypes: object) -> Any:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


prctl = _proto("prctl", _c_int, _c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong)
unshare = _proto("unshare", _c_int, _c_int)
setns = _proto("setns", _c_int, _c_int, _c_int)
sethostname = _proto("sethostname", _c_int, _c_char_p, ctypes.c_size_t)
setdomainname = _proto("setdomainname", _c_int, _c_char_p, ctypes.c_size_t)
mount = _proto("mount", _c_int, _c_char_p, _c_char_p, _c_char_p, _c_ulong, ctypes.c_void_p)
_syscall = _proto("syscall", _c_long, *([_c_long] * 7))

CLONE_PIDFD = 0x00001000
CLONE_PARENT = 0x00008000
_CLONE_ARGS_SIZE_VER0 = 64  # flags, pidfd, child_tid, parent_tid, exit_signal, stack, size, tls


def check(ret: int, call: str, filename: object = None) -> int:
    """Return *ret*, or raise ``OSError`` from errno when it is -1."""
    if ret == -1:
        err = ctypes.get_errno()
        if filename is None:
            raise OSError(err, f"{call}: {os.strerror(err)}")
        raise OSError(err, f"{call}: {os.strerror(err)}", filename)
    return ret


def clone3_parent(flags: int, number: int) -> tuple[int, int]:
    """clone3(2) with CLONE_PARENT, CLONE_PIDFD and *flags*; no exit signal (Linux 5.3).

    *number* is clone3's syscall number (the caller's :func:`nsprim._sys.nr.nr`
    gives it; this module keeps no table). CLONE_PARENT makes the child a
    child of this process's parent, and the kernel requires exit_signal 0
    with it (the child inherits this process's). No CPython fork hooks run:
    only for a single-threaded process whose child runs a few lines and
    execs. Returns (pid, pidfd) in the parent and (0, -1) in the child.
    """
    args = (ctypes.c_uint64 * 8)()
    out = ctypes.c_int(-1)
    args[0] = flags | CLONE_PARENT | CLONE_PIDFD
    args[1] = ctypes.addressof(out)
    ret = check(
        int(_syscall(number, ctypes.addressof(args), _CLONE_ARGS_SIZE_VER0, 0, 0, 0, 0)), "clone3"
    )
    return (ret, out.value) if ret else (0, -1)
