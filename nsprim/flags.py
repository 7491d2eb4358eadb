"""Typed flag sets built on the raw UAPI constants.

Layer 1: imports only :mod:`nsprim._sys.consts`. Members drop the header
prefix (``CloneFlags.NEWNET`` is ``CLONE_NEWNET``) and keep its value, so they
mix freely with ``os.CLONE_*`` integers.

Only :class:`CloneFlags` is made on import; the other classes (mount, umount,
mount_setattr, pidfd, propagation, ioctl) are made on first use (PEP 562)
in the private ``nsprim._lazyflags``, which ``nsprim run`` never loads.
"""

from __future__ import annotations

import enum

from ._sys import consts as C

# typing.TYPE_CHECKING without importing typing (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._lazyflags import Ioctl as Ioctl
    from ._lazyflags import MountAttrFlags as MountAttrFlags
    from ._lazyflags import MountFlags as MountFlags
    from ._lazyflags import PidfdFlags as PidfdFlags
    from ._lazyflags import Propagation as Propagation
    from ._lazyflags import UmountFlags as UmountFlags

__all__ = [
    "CloneFlags",
    "MountFlags",
    "UmountFlags",
    "MountAttrFlags",
    "Propagation",
    "PidfdFlags",
    "NAMESPACE_FLAGS",
    "Ioctl",
    "NS_INIT_INO",
]


class CloneFlags(enum.IntFlag):
    """``CLONE_*`` flags (clone(2), clone3(2), unshare(2), setns(2))."""

    NEWNS = C.CLONE_NEWNS
    NEWCGROUP = C.CLONE_NEWCGROUP
    NEWUTS = C.CLONE_NEWUTS
    NEWIPC = C.CLONE_NEWIPC
    NEWUSER = C.CLONE_NEWUSER
    NEWPID = C.CLONE_NEWPID
    NEWNET = C.CLONE_NEWNET
    NEWTIME = C.CLONE_NEWTIME
    FILES = C.CLONE_FILES
    FS = C.CLONE_FS
    SYSVSEM = C.CLONE_SYSVSEM
    VM = C.CLONE_VM
    VFORK = C.CLONE_VFORK
    PIDFD = C.CLONE_PIDFD
    PARENT = C.CLONE_PARENT
    SIGHAND = C.CLONE_SIGHAND
    THREAD = C.CLONE_THREAD
    CLEAR_SIGHAND = C.CLONE_CLEAR_SIGHAND
    INTO_CGROUP = C.CLONE_INTO_CGROUP

    #: Every namespace flag (the eight types).
    NS_ALL = (
        C.CLONE_NEWNS
        | C.CLONE_NEWCGROUP
        | C.CLONE_NEWUTS
        | C.CLONE_NEWIPC
        | C.CLONE_NEWUSER
        | C.CLONE_NEWPID
        | C.CLONE_NEWNET
        | C.CLONE_NEWTIME
    )
    #: What unshare(2) accepts: the namespaces plus the non-namespace unsharing flags.
    UNSHARE_ALL = NS_ALL | C.CLONE_FILES | C.CLONE_FS | C.CLONE_SYSVSEM


NAMESPACE_FLAGS = int(CloneFlags.NS_ALL)


#: The fixed inode number of each type's initial namespace (include/linux/proc_ns.h),
#: by ``CLONE_NEW*`` flag; the mount and network ones are fixed only since Linux 6.18.
NS_INIT_INO: dict[CloneFlags, int] = {
    CloneFlags.NEWNS: C.MNT_NS_INIT_INO,
    CloneFlags.NEWUTS: C.UTS_NS_INIT_INO,
    CloneFlags.NEWIPC: C.IPC_NS_INIT_INO,
    CloneFlags.NEWPID: C.PID_NS_INIT_INO,
    CloneFlags.NEWNET: C.NET_NS_INIT_INO,
    CloneFlags.NEWUSER: C.USER_NS_INIT_INO,
    CloneFlags.NEWCGROUP: C.CGROUP_NS_INIT_INO,
    CloneFlags.NEWTIME: C.TIME_NS_INIT_INO,
}


# The bits of the lazily made classes that a spawn uses (propagation, the
# root's bind mount and detach, /proc's flags, the launcher's pidfd), as plain
# ints: the process API and its child need none of those classes.
_MS_BIND = C.MS_BIND
_MS_REC = C.MS_REC
_MS_NOSUID = C.MS_NOSUID
_MS_NODEV = C.MS_NODEV
_MS_NOEXEC = C.MS_NOEXEC
_MS_PRIVATE = C.MS_PRIVATE
_MS_SLAVE = C.MS_SLAVE
_MS_SHARED = C.MS_SHARED
_MS_UNBINDABLE = C.MS_UNBINDABLE
_MNT_DETACH = C.MNT_DETACH
_UMOUNT_NOFOLLOW = C.UMOUNT_NOFOLLOW
_PIDFD_THREAD = C.PIDFD_THREAD

_LAZY = frozenset(
    {"MountFlags", "UmountFlags", "MountAttrFlags", "PidfdFlags", "Propagation", "Ioctl"}
)


def __getattr__(name: str) -> object:
    # The classes of nsprim._lazyflags, made on first use (PEP 562).
    if name in _LAZY:
        from . import _lazyflags

        value = getattr(_lazyflags, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
