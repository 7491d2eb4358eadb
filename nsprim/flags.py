"""Typed flag sets built on the raw UAPI constants.

Layer 1: imports only :mod:`nsprim._sys.consts`. Members drop the header
prefix (``CloneFlags.NEWNET`` is ``CLONE_NEWNET``) and keep its value, so they
mix freely with ``os.CLONE_*`` integers.
"""

from __future__ import annotations

import enum

from ._sys import consts as C

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


class MountFlags(enum.IntFlag):
    """``MS_*`` flags of mount(2)."""

    RDONLY = C.MS_RDONLY
    NOSUID = C.MS_NOSUID
    NODEV = C.MS_NODEV
    NOEXEC = C.MS_NOEXEC
    SYNCHRONOUS = C.MS_SYNCHRONOUS
    REMOUNT = C.MS_REMOUNT
    MANDLOCK = C.MS_MANDLOCK
    DIRSYNC = C.MS_DIRSYNC
    NOSYMFOLLOW = C.MS_NOSYMFOLLOW
    NOATIME = C.MS_NOATIME
    NODIRATIME = C.MS_NODIRATIME
    BIND = C.MS_BIND
    MOVE = C.MS_MOVE
    REC = C.MS_REC
    SILENT = C.MS_SILENT
    POSIXACL = C.MS_POSIXACL
    UNBINDABLE = C.MS_UNBINDABLE
    PRIVATE = C.MS_PRIVATE
    SLAVE = C.MS_SLAVE
    SHARED = C.MS_SHARED
    RELATIME = C.MS_RELATIME
    KERNMOUNT = C.MS_KERNMOUNT
    I_VERSION = C.MS_I_VERSION
    STRICTATIME = C.MS_STRICTATIME
    LAZYTIME = C.MS_LAZYTIME


class UmountFlags(enum.IntFlag):
    """Flags of umount2(2)."""

    FORCE = C.MNT_FORCE
    DETACH = C.MNT_DETACH
    EXPIRE = C.MNT_EXPIRE
    NOFOLLOW = C.UMOUNT_NOFOLLOW


class MountAttrFlags(enum.IntFlag):
    """``MOUNT_ATTR_*`` flags of mount_setattr(2) (Linux 5.12)."""

    RDONLY = C.MOUNT_ATTR_RDONLY
    NOSUID = C.MOUNT_ATTR_NOSUID
    NODEV = C.MOUNT_ATTR_NODEV
    NOEXEC = C.MOUNT_ATTR_NOEXEC
    NOATIME = C.MOUNT_ATTR_NOATIME
    STRICTATIME = C.MOUNT_ATTR_STRICTATIME
    NODIRATIME = C.MOUNT_ATTR_NODIRATIME
    IDMAP = C.MOUNT_ATTR_IDMAP
    NOSYMFOLLOW = C.MOUNT_ATTR_NOSYMFOLLOW


class PidfdFlags(enum.IntFlag):
    """Flags of pidfd_open(2): ``PIDFD_NONBLOCK`` (Linux 5.10), ``PIDFD_THREAD`` (6.9)."""

    NONBLOCK = C.PIDFD_NONBLOCK
    THREAD = C.PIDFD_THREAD


class Propagation(enum.IntEnum):
    """Mount propagation types (mount_namespaces(7))."""

    SHARED = C.MS_SHARED
    PRIVATE = C.MS_PRIVATE
    SLAVE = C.MS_SLAVE
    UNBINDABLE = C.MS_UNBINDABLE


class Ioctl(enum.IntEnum):
    """ioctl(2) requests on nsfs files, pidfds and sockets, named as in the kernel headers."""

    NS_GET_USERNS = C.NS_GET_USERNS  # Linux 4.9
    NS_GET_PARENT = C.NS_GET_PARENT  # Linux 4.9
    NS_GET_NSTYPE = C.NS_GET_NSTYPE  # Linux 4.11
    NS_GET_OWNER_UID = C.NS_GET_OWNER_UID  # Linux 4.11
    NS_GET_ID = C.NS_GET_ID  # Linux 6.18
    PIDFD_GET_UTS_NAMESPACE = C.PIDFD_GET_UTS_NAMESPACE  # Linux 6.11
    PIDFD_GET_INFO = C.PIDFD_GET_INFO  # Linux 6.13
    SIOCGSKNS = C.SIOCGSKNS  # Linux 4.9


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
