"""Raw UAPI integers, spelled as in the kernel headers.

Layer 0: standard library only. Each group names the header it mirrors; the
values are the same on every architecture nsprim supports unless a comment
says otherwise (the ioctl encodings are computed per architecture in
:func:`ioc`). ``tests/unit/test_consts.py`` compares them with this machine's
headers.
"""

from __future__ import annotations

import os

# --- <linux/sched.h> (uapi) ------------------------------------------------
CSIGNAL = 0x000000FF
CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_PIDFD = 0x00001000  # Linux 5.2
CLONE_PTRACE = 0x00002000
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000  # Linux 2.4.19
CLONE_SYSVSEM = 0x00040000
CLONE_SETTLS = 0x00080000
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_DETACHED = 0x00400000
CLONE_UNTRACED = 0x00800000
CLONE_CHILD_SETTID = 0x01000000
CLONE_NEWCGROUP = 0x02000000  # Linux 4.6
CLONE_NEWUTS = 0x04000000  # Linux 2.6.19
CLONE_NEWIPC = 0x08000000  # Linux 2.6.19
CLONE_NEWUSER = 0x10000000  # Linux 3.8 (usable unprivileged)
CLONE_NEWPID = 0x20000000  # Linux 2.6.24
CLONE_NEWNET = 0x40000000  # Linux 2.6.29
CLONE_IO = 0x80000000
CLONE_NEWTIME = 0x00000080  # Linux 5.6; shares the CSIGNAL bits, so clone() can't take it
# clone3-only flags (64-bit)
CLONE_CLEAR_SIGHAND = 0x100000000  # Linux 5.5
CLONE_INTO_CGROUP = 0x200000000  # Linux 5.7

# --- <linux/mount.h>, <sys/mount.h> ------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_KERNMOUNT = 1 << 22
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# umount2(2)
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# open_tree(2) / move_mount(2) / mount_setattr(2), <linux/mount.h>
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000  # == O_CLOEXEC
MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_AUTOMOUNTS = 0x02
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOVE_MOUNT_SET_GROUP = 0x100
MOVE_MOUNT_BENEATH = 0x200
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070
MOUNT_ATTR_RELATIME = 0x00000000
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000
MOUNT_ATTR_SIZE_VER0 = 32

# <fcntl.h>
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_SYMLINK_FOLLOW = 0x400
MAX_HANDLE_SZ = 128
FD_PIDFS_ROOT = -10002  # Linux 6.14: open_by_handle_at(2) of a pidfd handle
FD_NSFS_ROOT = -10003  # Linux 6.18: open_by_handle_at(2) of an nsfs handle

# --- <linux/pidfd.h> ----------------------------------------------------------
PIDFD_NONBLOCK = 0o4000  # == O_NONBLOCK; Linux 5.10
PIDFD_THREAD = 0o200  # == O_EXCL; Linux 6.9
PIDFD_SIGNAL_THREAD = 1 << 0  # Linux 6.9
PIDFD_SIGNAL_THREAD_GROUP = 1 << 1
PIDFD_SIGNAL_PROCESS_GROUP = 1 << 2

# --- <linux/wait.h>: wait for any child whatever its exit signal (needed for
# children made with exit_signal 0, e.g. clone3 with CLONE_PARENT); os lacks it.
WALL = 0x40000000
WCLONE = 0x80000000

# --- <sys/prctl.h> --------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47  # Linux 4.3
PR_CAP_AMBIENT_RAISE = 2

# --- <linux/nsfs.h>: listns(2), Linux 6.19 ----------------------------------------
NS_ID_REQ_SIZE_VER0 = 32  # sizeof(struct ns_id_req) as first published
LISTNS_CURRENT_USER = 0xFFFFFFFFFFFFFFFF  # user_ns_id: the caller's user namespace
# <fcntl.h> name_to_handle_at(2)
AT_EMPTY_PATH = 0x1000
AT_HANDLE_FID = 0x200  # Linux 6.5: a handle to identify, not to open

# --- <linux/sockios.h> ----------------------------------------------------------
SIOCGSKNS = 0x894C  # Linux 4.9: the netns of a socket, as an nsfs fd

# HOST_NAME_MAX / __NEW_UTS_LEN (include/uapi/linux/utsname.h)
NEW_UTS_LEN = 64

# --- ioctl encoding (<asm-generic/ioctl.h> and the arch overrides) ------------
_MACHINE = os.uname().machine  # what platform.machine() returns, without importing it
if _MACHINE.startswith(("mips", "ppc", "powerpc", "sparc", "alpha")):
    # alpha, mips, powerpc and sparc use 13 size bits and 3 direction bits
    # with NONE=1, READ=2, WRITE=4 (arch/*/include/uapi/asm/ioctl.h).
    _IOC_SIZEBITS, _IOC_NONE, _IOC_READ, _IOC_WRITE = 13, 1, 2, 4
else:
    _IOC_SIZEBITS, _IOC_NONE, _IOC_READ, _IOC_WRITE = 14, 0, 2, 1
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = 8
_IOC_SIZESHIFT = 16
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS


def ioc(direction: int, type_: int, nr: int, size: int) -> int:
    """Encode an ioctl request number like the kernel's ``_IOC()`` macro."""
    return (
        (direction << _IOC_DIRSHIFT)
        | (type_ << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def io(type_: int, nr: int) -> int:
    """``_IO(type, nr)``."""
    return ioc(_IOC_NONE, type_, nr, 0)


def ior(type_: int, nr: int, size: int) -> int:
    """``_IOR(type, nr, size)``."""
    return ioc(_IOC_READ, type_, nr, size)


def iowr(type_: int, nr: int, size: int) -> int:
    """``_IOWR(type, nr, size)``."""
    return ioc(_IOC_READ | _IOC_WRITE, type_, nr, size)


# --- <linux/nsfs.h> -------------------------------------------------------------
NSIO = 0xB7
NS_GET_USERNS = io(NSIO, 0x1)  # Linux 4.9
NS_GET_PARENT = io(NSIO, 0x2)  # Linux 4.9
NS_GET_NSTYPE = io(NSIO, 0x3)  # Linux 4.11
NS_GET_OWNER_UID = io(NSIO, 0x4)  # Linux 4.11
NS_GET_MNTNS_ID = ior(NSIO, 0x5, 8)  # Linux 6.8 (mnt only)
NS_GET_PID_FROM_PIDNS = ior(NSIO, 0x6, 4)  # Linux 6.11
NS_GET_TGID_FROM_PIDNS = ior(NSIO, 0x7, 4)
NS_GET_PID_IN_PIDNS = ior(NSIO, 0x8, 4)
NS_GET_TGID_IN_PIDNS = ior(NSIO, 0x9, 4)
NS_GET_ID = ior(NSIO, 13, 8)  # Linux 6.18: every namespace type

# Fixed inode numbers of the initial namespaces (<linux/nsfs.h> enum init_ns_ino).
IPC_NS_INIT_INO = 0xEFFFFFFF
UTS_NS_INIT_INO = 0xEFFFFFFE
USER_NS_INIT_INO = 0xEFFFFFFD
PID_NS_INIT_INO = 0xEFFFFFFC
CGROUP_NS_INIT_INO = 0xEFFFFFFB
TIME_NS_INIT_INO = 0xEFFFFFFA
NET_NS_INIT_INO = 0xEFFFFFF9  # fixed only since Linux 6.18
MNT_NS_INIT_INO = 0xEFFFFFF8  # fixed only since Linux 6.18

# --- <linux/pidfd.h> ioctls (Linux 6.11) ------------------------------------------
PIDFS_IOCTL_MAGIC = 0xFF
PIDFD_GET_CGROUP_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 1)
PIDFD_GET_IPC_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 2)
PIDFD_GET_MNT_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 3)
PIDFD_GET_NET_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 4)
PIDFD_GET_PID_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 5)
PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 6)
PIDFD_GET_TIME_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 7)
PIDFD_GET_TIME_FOR_CHILDREN_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 8)
PIDFD_GET_USER_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 9)
PIDFD_GET_UTS_NAMESPACE = io(PIDFS_IOCTL_MAGIC, 10)
PIDFD_INFO_SIZE_VER0 = 64
PIDFD_GET_INFO = iowr(PIDFS_IOCTL_MAGIC, 11, PIDFD_INFO_SIZE_VER0)  # Linux 6.13
