"""The one handle on the C library, with a prototype for every symbol nsprim uses.

Layer 0: standard library, :mod:`nsprim.errors` and the other ``_sys`` modules.

Every function declares ``argtypes``/``restype`` (linuxnamespaces' ``call_libc``
without prototypes is the counterexample: a 64-bit pointer passed as a C int
truncates). Every call's result goes through :func:`check`, which turns -1
into an ``OSError`` whose errno picks the subclass (PEP 3151), like
``os.unshare`` does, except ENOSYS, which becomes ``UnsupportedError``.
"""

from __future__ import annotations

import ctypes
import errno
import os

from ..errors import UnsupportedError
from . import nr as _nr

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["libc", "check", "syscall", "raise_errno", "pyapi", "syscall_gil_held"]

libc = ctypes.CDLL(None, use_errno=True)

_c_int = ctypes.c_int
_c_long = ctypes.c_long
_c_ulong = ctypes.c_ulong
_c_char_p = ctypes.c_char_p
_c_void_p = ctypes.c_void_p
_c_size_t = ctypes.c_size_t


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(libc, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


unshare = _proto("unshare", _c_int, _c_int)  # glibc 2.14
setns = _proto("setns", _c_int, _c_int, _c_int)  # glibc 2.14
sethostname = _proto("sethostname", _c_int, _c_char_p, _c_size_t)
setdomainname = _proto("setdomainname", _c_int, _c_char_p, _c_size_t)
mount = _proto("mount", _c_int, _c_char_p, _c_char_p, _c_char_p, _c_ulong, _c_void_p)
# glibc 2.14; nsfs file handles: Linux 6.18
name_to_handle_at = _proto(
    "name_to_handle_at", _c_int, _c_int, _c_char_p, _c_void_p, _c_void_p, _c_int
)
open_by_handle_at = _proto("open_by_handle_at", _c_int, _c_int, _c_void_p, _c_int)
umount2 = _proto("umount2", _c_int, _c_char_p, _c_int)
ioctl = _proto("ioctl", _c_int, _c_int, _c_ulong, _c_void_p)
prctl = _proto("prctl", _c_int, _c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong)
capget = _proto("capget", _c_int, _c_void_p, _c_void_p)
capset = _proto("capset", _c_int, _c_void_p, _c_void_p)
# syscall(2) is variadic; on the supported Linux ABIs integer variadic
# arguments travel exactly like fixed ones, so a fixed 7-long prototype is
# correct and keeps ctypes from guessing the width of each argument.
_syscall = _proto("syscall", _c_long, _c_long, _c_long, _c_long, _c_long, _c_long, _c_long, _c_long)

# syscall(2) called with the GIL held (PyDLL) and CPython's fork hooks, for
# clone3 (syscalls.clone3): a raw clone must not release the GIL around the
# syscall, or the child could inherit a GIL owned by another thread.
pyapi = ctypes.pythonapi
pyapi.PyOS_BeforeFork.restype = None
pyapi.PyOS_BeforeFork.argtypes = []
pyapi.PyOS_AfterFork_Child.restype = None
pyapi.PyOS_AfterFork_Child.argtypes = []
pyapi.PyOS_AfterFork_Parent.restype = None
pyapi.PyOS_AfterFork_Parent.argtypes = []
syscall_gil_held = ctypes.PyDLL(None, use_errno=True).syscall
syscall_gil_held.restype = _c_long
syscall_gil_held.argtypes = [_c_long] * 7

# Which kernel brought each raw syscall, for UnsupportedError messages.
SYSCALL_SINCE = {
    "unshare": "Linux 2.6.16",
    "setns": "Linux 3.0",
    "pivot_root": "Linux 2.3.41",
    "pidfd_send_signal": "Linux 5.1",
    "open_tree": "Linux 5.2",
    "move_mount": "Linux 5.2",
    "pidfd_open": "Linux 5.3",
    "clone3": "Linux 5.3",
    "pidfd_getfd": "Linux 5.6",
    "mount_setattr": "Linux 5.12",
    "listns": "Linux 6.19",
}


def raise_errno(err: int, call: str, filename: Optional[str] = None) -> None:
    """Raise the exception that *err* from *call* maps to.

    ENOSYS becomes :class:`UnsupportedError`; everything else an ``OSError``
    whose errno selects the subclass, with *filename* set (as ``os`` does).
    """
    if err == errno.ENOSYS:
        raise UnsupportedError(call, requires=SYSCALL_SINCE.get(call, "a newer kernel"))
    if filename is None:
        raise OSError(err, f"{call}: {os.strerror(err)}")
    raise OSError(err, f"{call}: {os.strerror(err)}", filename)


def check(ret: int, call: str, filename: Optional[str] = None) -> int:
    """Return *ret*, or raise from errno when it is -1."""
    if ret == -1:
        raise_errno(ctypes.get_errno(), call, filename)
    return ret


def syscall(name: str, *args: int) -> int:
    """Make the raw syscall *name* with up to six integer arguments; errors raise.

    Raises:
        UnsupportedError: unknown architecture, or the kernel answered ENOSYS.
        OSError: any other failure.
    """
    number = _nr.nr(name)
    padded = [*args, 0, 0, 0, 0, 0, 0][:6]
    ret = int(_syscall(number, *padded))
    return check(ret, name)
