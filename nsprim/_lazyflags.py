"""The flag sets of nsprim.flags that a spawn does not need, built on first use.

Layer 1, private: imports only :mod:`nsprim._sys.consts`. Every class here is
:mod:`nsprim.flags`'s (``nsprim.flags.MountFlags`` is the public name, and
its ``__module__``): creating an enum class costs a tenth of a millisecond or
more, and ``nsprim run`` needs only :class:`~nsprim.flags.CloneFlags`.
:func:`nsprim.process.preload` imports this module too.
"""

from __future__ import annotations

import enum

from ._sys import consts as C

__all__ = ["MountFlags", "UmountFlags", "MountAttrFlags", "PidfdFlags", "Propagation", "Ioctl"]


class MountFlags(enum.IntFlag):
    """``MS_*`` flags of mount(2)."""

    __module__ = "nsprim.flags"

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

    __module__ = "nsprim.flags"

    FORCE = C.MNT_FORCE
    DETACH = C.MNT_DETACH
    EXPIRE = C.MNT_EXPIRE
    NOFOLLOW = C.UMOUNT_NOFOLLOW


class MountAttrFlags(enum.IntFlag):
    """``MOUNT_ATTR_*`` flags of mount_setattr(2) (Linux 5.12)."""

    __module__ = "nsprim.flags"

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

    __module__ = "nsprim.flags"

    NONBLOCK = C.PIDFD_NONBLOCK
    THREAD = C.PIDFD_THREAD


class Propagation(enum.IntEnum):
    """Mount propagation types (mount_namespaces(7))."""

    __module__ = "nsprim.flags"

    SHARED = C.MS_SHARED
    PRIVATE = C.MS_PRIVATE
    SLAVE = C.MS_SLAVE
    UNBINDABLE = C.MS_UNBINDABLE


class Ioctl(enum.IntEnum):
    """ioctl(2) requests on nsfs files, pidfds and sockets, named as in the kernel headers."""

    __module__ = "nsprim.flags"

    NS_GET_USERNS = C.NS_GET_USERNS  # Linux 4.9
    NS_GET_PARENT = C.NS_GET_PARENT  # Linux 4.9
    NS_GET_NSTYPE = C.NS_GET_NSTYPE  # Linux 4.11
    NS_GET_OWNER_UID = C.NS_GET_OWNER_UID  # Linux 4.11
    NS_GET_ID = C.NS_GET_ID  # Linux 6.18
    PIDFD_GET_UTS_NAMESPACE = C.PIDFD_GET_UTS_NAMESPACE  # Linux 6.11
    PIDFD_GET_INFO = C.PIDFD_GET_INFO  # Linux 6.13
    SIOCGSKNS = C.SIOCGSKNS  # Linux 4.9
