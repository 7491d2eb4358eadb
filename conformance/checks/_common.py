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

from ..outcome import Fail

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
    "made_entry",
    "ns_ident",
    "ns_key",
    "premise_new",
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

# /proc/PID/ns entry, CLONE_NEW* flag and the name a sentence uses, per type.
_TYPES = (
    ("mnt", NEWNS, "CLONE_NEWNS", "mount"),
    ("uts", NEWUTS, "CLONE_NEWUTS", "UTS"),
    ("ipc", NEWIPC, "CLONE_NEWIPC", "IPC"),
    ("net", NEWNET, "CLONE_NEWNET", "network"),
    ("pid", NEWPID, "CLONE_NEWPID", "PID"),
    ("user", NEWUSER, "CLONE_NEWUSER", "user"),
    ("cgroup", NEWCGROUP, "CLONE_NEWCGROUP", "cgroup"),
    ("time", NEWTIME, "CLONE_NEWTIME", "time"),
)


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


def made_entry(entry: str) -> str:
    """The /proc ns entry that shows what an unshare/setns of type *entry* changed.

    For pid and time, unshare(2) and setns(2) change only what the caller's
    *children* get (``pid_for_children``, ``time_for_children``).
    """
    return f"{entry}_for_children" if entry in ("pid", "time") else entry


def _flag_names(flags: int) -> str:
    return "|".join(name for _, flag, name, _ in _TYPES if flags & flag) or str(flags)


def _snapshot(flags: int) -> dict[str, Optional[NsKey]]:
    out: dict[str, Optional[NsKey]] = {}
    for entry, flag, _, _ in _TYPES:
        if flags & flag:
            out[entry] = _key_or_none(f"/proc/thread-self/ns/{made_entry(entry)}")
    return out


def _key_or_none(path: str) -> Optional[NsKey]:
    # pid_for_children of a new pid namespace without its init yet reads ENOENT
    # (the kernel's pidns_for_children_get()): that is a new namespace too.
    try:
        return ns_key(path)
    except FileNotFoundError:
        return None


def premise_new(call: str, before: dict[str, Optional[NsKey]]) -> None:
    """Raise :class:`Fail` unless each type in *before* now names another namespace.

    *before* maps /proc ns entries to the caller's identities taken before *call*
    (a snapshot from :func:`unshare`'s first step); for a child made by clone3(2),
    compare the parent's identities with the child's own.
    """
    names = {entry: sentence for entry, _, _, sentence in _TYPES}
    for entry, key in before.items():
        now = _key_or_none(f"/proc/thread-self/ns/{made_entry(entry)}")
        if key is not None and now == key:
            raise Fail(
                f"{call} returned 0 and the {names[entry]} namespace is unchanged",
                "a new namespace",
                f"the same namespace {key}",
            )


def unshare(flags: int) -> None:
    """unshare(2) *flags* (nsprim.syscalls.unshare) and confirm each type is new.

    Raises:
        Fail: unshare returned success but some requested type's namespace is the old one.
        OSError: the kernel refused.
    """
    before = _snapshot(flags)
    syscalls.unshare(flags)
    premise_new(f"unshare({_flag_names(flags)})", before)


def setns(fd: int, nstype: int) -> None:
    """setns(2) to the namespace of *fd* and confirm the caller is now in it.

    *nstype* is the single CLONE_NEW* flag of the namespace (as setns(2) takes it).

    Raises:
        Fail: setns returned success but the caller's namespace of that type is not the target.
        OSError: the kernel refused.
    """
    st = os.fstat(fd)
    syscalls.setns(fd, nstype)
    for entry, flag, name, sentence in _TYPES:
        if nstype & flag:
            # setns moves the caller itself except for pid (only its future children).
            now = _key_or_none(
                f"/proc/thread-self/ns/{'pid_for_children' if flag == NEWPID else entry}"
            )
            if now != (st.st_dev, st.st_ino):
                raise Fail(
                    f"setns({name}) returned 0 and the caller's {sentence} namespace is not the "
                    "target",
                    (st.st_dev, st.st_ino),
                    now,
                )


def setns_path(path: str, nstype: int) -> None:
    """Open the nsfs file *path* and :func:`setns` to it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)
