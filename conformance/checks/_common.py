"""What every check group shares: errno names, namespace identity, and premise-checked entry.

Layer: conformance checks, private (not loaded as a group). Imports the
standard library, public nsprim names and :mod:`nsprim.conformance.outcome`.

A check's verdict is only as good as its premise: a PASS must never rest on
a namespace that was never created. :func:`unshare` and :func:`setns` are
nsprim's calls followed by a look at the caller's namespaces by identity
(the nsfs ``(st_dev, st_ino)`` of ``/proc/thread-self/ns/*``); when the call
returned success but nothing changed (a seccomp filter or an emulation that
fakes success), they raise :class:`Fail` naming that, which is the most
important finding a conformance suite can make. Use them wherever a check
(or its helper) enters a namespace itself, instead of the bare
:mod:`nsprim.syscalls` calls.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, NoReturn, Optional

from nsprim import UnsupportedError, syscalls
from nsprim.flags import CloneFlags

from .._context import setns_verified, unshare_verified

__all__ = [
    "NEWCGROUP",
    "NEWIPC",
    "NEWNET",
    "NEWNS",
    "NEWPID",
    "NEWTIME",
    "NEWUSER",
    "NEWUTS",
    "WALL",
    "NsKey",
    "attempt",
    "child_exit",
    "errname",
    "idle",
    "ns_ident",
    "ns_key",
    "setns",
    "setns_path",
    "unshare",
]

NEWNS = int(CloneFlags.NEWNS)
NEWCGROUP = int(CloneFlags.NEWCGROUP)
NEWUTS = int(CloneFlags.NEWUTS)
NEWIPC = int(CloneFlags.NEWIPC)
NEWUSER = int(CloneFlags.NEWUSER)
NEWPID = int(CloneFlags.NEWPID)
NEWNET = int(CloneFlags.NEWNET)
NEWTIME = int(CloneFlags.NEWTIME)
#: waitpid(2) option for children whatever their exit signal (linux/wait.h ``__WALL``; not in os).
WALL = 0x40000000

#: A namespace's identity: the (st_dev, st_ino) of its nsfs file.
NsKey = tuple[int, int]


def errname(err: OSError) -> str:
    """Return the symbolic errno of *err* ("EPERM"), or its number as text."""
    return errno.errorcode.get(err.errno or 0, str(err.errno))


def attempt(fn: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """Call ``fn(*args, **kwargs)``; return ``"ok"`` or the errno name it failed with.

    Checks compare these strings with ``ctx.expect_equal`` so that reports
    show "expected EPERM, got ok" rather than a traceback.
    """
    try:
        fn(*args, **kwargs)
    except OSError as err:
        return errname(err)
    return "ok"


def idle() -> None:
    """Nothing: the body of a helper that only holds its namespaces."""


def child_exit(code: int = 0) -> NoReturn:
    """Leave a forked process without running anything of the parent's (no cleanups, no atexit)."""
    os._exit(code)


def ns_key(path: str) -> NsKey:
    """Return the identity of the namespace behind an nsfs *path*: its ``(st_dev, st_ino)``."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def ns_ident(fd: int) -> tuple[int, int, Optional[int]]:
    """Return ``(st_dev, st_ino, NS_GET_ID or None)`` of the namespace nsfs *fd* refers to.

    The nsfs inode pair is the identity; NS_GET_ID (Linux 6.18) adds an id that
    is never reused, so a namespace freed and replaced by one with a recycled
    inode number can't pass for the original.
    """
    st = os.fstat(fd)
    try:
        ns_id: Optional[int] = syscalls.ns_get_id(fd)
    except UnsupportedError:
        ns_id = None
    return (st.st_dev, st.st_ino, ns_id)


def unshare(flags: int) -> None:
    """unshare(2) *flags* and confirm by identity that each CLONE_NEW* type in them is new.

    The suite's one premise check (:func:`nsprim.conformance._context.unshare_verified`,
    which ``ctx.in_child``/``ctx.spawn_child`` apply to their ``unshare=``).

    Raises:
        Fail: "unshare(CLONE_NEWUTS) returned 0 and the UTS namespace is unchanged".
        OSError: the kernel refused.
    """
    unshare_verified(flags)


def setns(fd: int, nstype: int) -> None:
    """setns(2) to the namespace of *fd* and confirm by identity that the caller is in it.

    *nstype* is one CLONE_NEW* flag (for pid, what moves is ``pid_for_children``).

    Raises:
        Fail: "setns(CLONE_NEWUTS) returned 0 and the thread is not in the target UTS namespace".
        OSError: the kernel refused.
    """
    setns_verified(fd, nstype)


def setns_path(path: str, nstype: int) -> None:
    """Open the nsfs file *path* and :func:`setns` to it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)
