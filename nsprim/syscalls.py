"""Typed bindings of the Linux namespace syscalls, one function per man page.

Layer 1: imports :mod:`nsprim.errors`, :mod:`nsprim._sys`, :mod:`nsprim.flags`
and :mod:`nsprim._fd` only.

Each function validates its arguments before any syscall (a bad value is a
``ValueError``/``TypeError`` naming the parameter and echoing the value), makes
exactly one call, and raises ``OSError`` with the kernel's errno (the subclass
follows PEP 3151: ``PermissionError`` for EPERM, ``ProcessLookupError`` for
ESRCH, ...) just as Python 3.12's ``os.unshare``/``os.setns`` do. ENOSYS
becomes :class:`nsprim.UnsupportedError` naming the kernel version needed.

Several calls act on the calling **thread** (setns, unshare): say so where it
matters, and prefer :mod:`nsprim.process`, which does the work in a fresh
single-threaded child.

The bindings no spawn needs (pidfs ioctls, listns(2), nsfs file handles, the
unchecked ``*_errno`` calls) are defined in :mod:`nsprim._syscalls_more` and
load on first use of their name here (PEP 562).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

from ._fd import fd_of
from ._stdlib import signal
from ._sys import consts as C
from ._sys import libc as _libc
from ._sys import nr as _nr
from ._sys.structs import (
    CLONE_ARGS_SIZE_VER0,
    CLONE_ARGS_SIZE_VER1,
    CLONE_ARGS_SIZE_VER2,
    LINUX_CAPABILITY_VERSION_3,
    CapUserData,
    CapUserHeader,
    CloneArgs,
    MountAttr,
)
from .errors import UnsupportedError
from .flags import CloneFlags

# typing.TYPE_CHECKING without importing typing: every nsprim command imports
# this module, and typing (with the re it imports) costs `nsprim run` more
# than its whole spawn.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

    from ._fd import FdLike

    StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

    from ._syscalls_more import (
        LISTNS_CURRENT_USER as LISTNS_CURRENT_USER,
    )
    from ._syscalls_more import (
        PIDFD_INFO_CGROUPID as PIDFD_INFO_CGROUPID,
    )
    from ._syscalls_more import (
        PIDFD_INFO_CREDS as PIDFD_INFO_CREDS,
    )
    from ._syscalls_more import (
        PIDFD_INFO_PID as PIDFD_INFO_PID,
    )
    from ._syscalls_more import (
        PidfdInfo as PidfdInfo,
    )
    from ._syscalls_more import (
        ioctl_errno as ioctl_errno,
    )
    from ._syscalls_more import (
        libc_has as libc_has,
    )
    from ._syscalls_more import (
        listns as listns,
    )
    from ._syscalls_more import (
        mount_errno as mount_errno,
    )
    from ._syscalls_more import (
        open_ns_by_id as open_ns_by_id,
    )
    from ._syscalls_more import (
        pidfd_get_info as pidfd_get_info,
    )
    from ._syscalls_more import (
        pidfd_get_namespace as pidfd_get_namespace,
    )
    from ._syscalls_more import (
        pidfd_info_errno as pidfd_info_errno,
    )
    from ._syscalls_more import (
        setdomainname_errno as setdomainname_errno,
    )
    from ._syscalls_more import (
        sethostname_errno as sethostname_errno,
    )
    from ._syscalls_more import (
        setns_errno as setns_errno,
    )
    from ._syscalls_more import (
        syscall_errno as syscall_errno,
    )
    from ._syscalls_more import (
        syscall_table_error as syscall_table_error,
    )
    from ._syscalls_more import (
        unshare_errno as unshare_errno,
    )

__all__ = [
    "unshare",
    "setns",
    "clone3",
    "sethostname",
    "setdomainname",
    "mount",
    "umount",
    "pivot_root",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "ns_get_userns",
    "ns_get_parent",
    "ns_get_nstype",
    "ns_get_owner_uid",
    "ns_get_id",
    "socket_netns",
    "set_pdeathsig",
    "set_dumpable",
    "get_dumpable",
    "set_child_subreaper",
    "capget",
    "capset",
    "drop_capabilities",
    "cap_ambient_raise",
    "listns",
    "LISTNS_CURRENT_USER",
    "open_ns_by_id",
    "HOST_NAME_MAX",
    "pidfd_get_namespace",
    "pidfd_get_info",
    "ns_pid_from_pidns",
    "ns_pid_in_pidns",
    "name_to_handle_at",
    "open_by_handle_at",
    "FD_NSFS_ROOT",
    "FD_PIDFS_ROOT",
    "PidfdInfo",
    # the kernel's answer, unchecked (probes)
    "syscall_errno",
    "unshare_errno",
    "setns_errno",
    "sethostname_errno",
    "setdomainname_errno",
    "mount_errno",
    "ioctl_errno",
    "pidfd_info_errno",
    "libc_has",
    "syscall_table_error",
]

HOST_NAME_MAX = C.NEW_UTS_LEN

_UNSHARE_OK = int(CloneFlags.UNSHARE_ALL) | C.CLONE_THREAD | C.CLONE_SIGHAND | C.CLONE_VM
_NS_ALL = int(CloneFlags.NS_ALL)


# --- validation helpers ------------------------------------------------------------


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def _flags(value: object, name: str, allowed: int, what: str) -> int:
    v = _int(value, name)
    if v < 0 or v & ~allowed:
        bad = v & ~allowed if v >= 0 else v
        raise ValueError(
            f"{name} must be a combination of {what}, got {value!r} (bad bits {bad:#x})"
        )
    return v


def _path(value: object, name: str, *, allow_none: bool = False) -> Optional[bytes]:
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a path, got None")
    if isinstance(value, (str, bytes, os.PathLike)):
        b = os.fsencode(value)
    else:
        raise TypeError(f"{name} must be str, bytes or os.PathLike, got {type(value).__name__}")
    if b"\0" in b:
        raise ValueError(f"{name} must not contain a NUL byte, got {value!r}")
    return b


def _name(value: object, name: str, limit: int) -> bytes:
    if isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, (bytes, bytearray)):
        b = bytes(value)
    else:
        raise TypeError(f"{name} must be str or bytes, got {type(value).__name__} {value!r}")
    if b"\0" in b:
        raise ValueError(f"{name} must not contain a NUL byte, got {value!r}")
    if len(b) > limit:
        raise ValueError(f"{name} must be at most {limit} bytes, got {len(b)} bytes: {value!r}")
    return b


def _pid(value: object, name: str = "pid") -> int:
    v = _int(value, name)
    if v <= 0 or v > 0x7FFFFFFF:
        raise ValueError(f"{name} must be a positive process id, got {v}")
    return v


# --- namespaces --------------------------------------------------------------------


def unshare(flags: int) -> None:
    """Disassociate parts of the calling thread's execution context.

    Wraps unshare(2); Linux 2.6.16 (each namespace flag needs the kernel that
    brought that type: user 3.8, cgroup 4.6, time 5.6). Same contract as
    Python 3.12's ``os.unshare``. ``CLONE_NEWPID`` and ``CLONE_NEWTIME`` move
    only the caller's future children; ``CLONE_NEWUSER`` is refused (EINVAL)
    in a multithreaded process (joining a mount namespace with setns is too,
    but unsharing one is not).

    Args:
        flags: ``CLONE_*`` bits (:class:`~nsprim.flags.CloneFlags`).

    Raises:
        TypeError: *flags* is not an int.
        ValueError: *flags* has bits unshare(2) does not accept.
        OSError: the kernel refused (EPERM without privilege, EINVAL, ENOSPC
            at a nesting or ``max_*_namespaces`` limit, ENOMEM ...).
        UnsupportedError: the kernel lacks unshare(2).
    """
    f = _flags(flags, "flags", _UNSHARE_OK, "CLONE_NEW* and CLONE_FILES/FS/SYSVSEM flags")
    _libc.check(_libc.unshare(f), "unshare")


def setns(fd: FdLike, nstype: int = 0) -> None:
    """Move the calling thread into the namespace(s) that *fd* refers to.

    Wraps setns(2); Linux 3.0 with an nsfs fd (``/proc/PID/ns/TYPE``), Linux
    5.8 with a pidfd, which may name several types at once (joined
    atomically: all or none). Same contract as Python 3.12's ``os.setns``.

    Args:
        fd: an nsfs file descriptor or a pidfd (int or object with ``fileno()``).
        nstype: 0 (any type, nsfs fd only) or ``CLONE_NEW*`` bits: for an nsfs
            fd, the one type it must be; for a pidfd, the types to join.

    Raises:
        TypeError/ValueError: bad fd or non-namespace bits in *nstype*.
        OSError: EINVAL (type mismatch, joining one's own user namespace, a
            multithreaded caller for user/mnt), EPERM, EBADF, ESRCH (pidfd of
            an exited process), EUSERS (time namespace, multithreaded).
    """
    f = fd_of(fd, "fd")
    t = _flags(nstype, "nstype", _NS_ALL, "CLONE_NEW* flags")
    _libc.check(_libc.setns(f, t), "setns")


# CLONE_FS shares only cwd/root/umask (no memory), so a Python child survives it;
# CLONE_VM, CLONE_FILES, CLONE_SIGHAND and CLONE_THREAD would not.
_CLONE3_OK = _NS_ALL | C.CLONE_CLEAR_SIGHAND | C.CLONE_PARENT | C.CLONE_FS


def clone3(
    flags: int = 0,
    *,
    pidfd: bool = False,
    exit_signal: int = signal.SIGCHLD,
    set_tid: Sequence[int] = (),
    cgroup: Optional[FdLike] = None,
) -> Union[int, tuple[int, int]]:
    """Create a child process, fork-style, optionally in new namespaces.

    Wraps clone3(2); Linux 5.3 (``set_tid`` 5.5, ``cgroup``/CLONE_INTO_CGROUP
    5.7, ``CLONE_NEWTIME`` 6.3: earlier kernels refuse it with EINVAL unless
    they carry the stable backport of "fork: allow CLONE_NEWTIME in clone3
    flags"; unshare(2) has it since 5.6). Like ``os.fork()``: the child continues from
    this call with 0 as the result and runs CPython's after-fork handlers, so
    Python stays usable in it. With ``CLONE_NEWPID`` the child is PID 1 of the
    new pid namespace. Shared-memory flags (CLONE_VM, CLONE_THREAD, ...) are
    refused: they cannot be used safely from Python.

    Args:
        flags: ``CLONE_NEW*`` bits, plus ``CLONE_CLEAR_SIGHAND``, ``CLONE_PARENT``
            and ``CLONE_FS`` (which the kernel refuses together with CLONE_NEWNS).
        pidfd: also return a pidfd for the child (CLONE_PIDFD), O_CLOEXEC.
        exit_signal: signal sent to the parent when the child exits.
        set_tid: pids to give the child, innermost pid namespace first
            (needs CAP_SYS_ADMIN in the owning user namespaces).
        cgroup: fd of a cgroup v2 directory to start the child in.

    Returns:
        In the child 0 (or ``(0, -1)`` when *pidfd*); in the parent the child's
        pid, or ``(pid, pidfd)`` when *pidfd* is true.

    Raises:
        ValueError/TypeError: unsupported flags, bad signal, bad set_tid.
        UnsupportedError: no clone3 in this kernel.
        OSError: the kernel refused (EPERM, ENOSPC, EEXIST for set_tid ...).
    """
    f = _flags(
        flags, "flags", _CLONE3_OK, "CLONE_NEW* flags, CLONE_CLEAR_SIGHAND, CLONE_PARENT, CLONE_FS"
    )
    sig = _int(exit_signal, "exit_signal")
    if not 0 <= sig < signal.NSIG:
        raise ValueError(f"exit_signal must be 0 or a signal number below {signal.NSIG}, got {sig}")
    if not isinstance(pidfd, bool):
        raise TypeError(f"pidfd must be a bool, got {pidfd!r}")
    tids = [_pid(t, "set_tid[]") for t in set_tid]
    if len(tids) > 32:
        raise ValueError(f"set_tid may name at most 32 pids (MAX_PID_NS_LEVEL), got {len(tids)}")
    args = CloneArgs()
    out_pidfd = ctypes.c_int(-1)
    args.flags = f
    args.exit_signal = sig
    size = CLONE_ARGS_SIZE_VER0
    if pidfd:
        args.flags |= C.CLONE_PIDFD
        args.pidfd = ctypes.addressof(out_pidfd)
    tid_arr = (ctypes.c_int32 * max(1, len(tids)))(*tids)
    if tids:
        args.set_tid = ctypes.addressof(tid_arr)
        args.set_tid_size = len(tids)
        size = CLONE_ARGS_SIZE_VER1
    if cgroup is not None:
        args.flags |= C.CLONE_INTO_CGROUP
        args.cgroup = fd_of(cgroup, "cgroup")
        size = CLONE_ARGS_SIZE_VER2
    number = _nr.nr("clone3")
    # The syscall runs with the GIL held (PyDLL) and between CPython's own
    # before/after-fork hooks, exactly as os.fork() does (Modules/posixmodule.c):
    # a child that inherited a GIL owned by another thread would deadlock.
    _libc.pyapi.PyOS_BeforeFork()
    ret = int(_libc.syscall_gil_held(number, ctypes.addressof(args), size, 0, 0, 0, 0))
    err = ctypes.get_errno()
    if ret == 0:
        _libc.pyapi.PyOS_AfterFork_Child()
        return (0, -1) if pidfd else 0
    _libc.pyapi.PyOS_AfterFork_Parent()
    if ret < 0:
        _libc.raise_errno(err, "clone3")
    return (ret, out_pidfd.value) if pidfd else ret


# --- UTS ---------------------------------------------------------------------------


def sethostname(name: Union[str, bytes]) -> None:
    """Set the hostname of the calling process's UTS namespace.

    Wraps sethostname(2); any Linux. Needs CAP_SYS_ADMIN in the user
    namespace that owns the UTS namespace.

    Args:
        name: at most 64 bytes (HOST_NAME_MAX), no NUL; str is UTF-8 encoded.

    Raises:
        TypeError/ValueError: not str/bytes, too long, or contains NUL.
        OSError: EPERM without privilege.
    """
    b = _name(name, "name", HOST_NAME_MAX)
    _libc.check(_libc.sethostname(b, len(b)), "sethostname")


def setdomainname(name: Union[str, bytes]) -> None:
    """Set the NIS domain name of the calling process's UTS namespace.

    Wraps setdomainname(2); any Linux. Same rules as :func:`sethostname`.
    """
    b = _name(name, "name", HOST_NAME_MAX)
    _libc.check(_libc.setdomainname(b, len(b)), "setdomainname")


# --- mounts ------------------------------------------------------------------------

# The bits of nsprim.flags.MountFlags, UmountFlags and MountAttrFlags (plus
# MOUNT_ATTR__ATIME) and the values of Propagation, spelled from the constants:
# those enums are made on first use, and a spawn's child mounts without them.
# tests/unit/test_flags_lazy.py checks that both agree.
_MS_ALL = (
    C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC | C.MS_SYNCHRONOUS | C.MS_REMOUNT
    | C.MS_MANDLOCK | C.MS_DIRSYNC | C.MS_NOSYMFOLLOW | C.MS_NOATIME | C.MS_NODIRATIME
    | C.MS_BIND | C.MS_MOVE | C.MS_REC | C.MS_SILENT | C.MS_POSIXACL | C.MS_UNBINDABLE
    | C.MS_PRIVATE | C.MS_SLAVE | C.MS_SHARED | C.MS_RELATIME | C.MS_KERNMOUNT
    | C.MS_I_VERSION | C.MS_STRICTATIME | C.MS_LAZYTIME
)  # fmt: skip
_UMOUNT_ALL = C.MNT_FORCE | C.MNT_DETACH | C.MNT_EXPIRE | C.UMOUNT_NOFOLLOW
_ATTR_ALL = (
    C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC
    | C.MOUNT_ATTR_NOATIME | C.MOUNT_ATTR_STRICTATIME | C.MOUNT_ATTR_NODIRATIME
    | C.MOUNT_ATTR_IDMAP | C.MOUNT_ATTR_NOSYMFOLLOW | C.MOUNT_ATTR__ATIME
)  # fmt: skip
_PROPAGATIONS = frozenset((C.MS_SHARED, C.MS_PRIVATE, C.MS_SLAVE, C.MS_UNBINDABLE))


def mount(
    source: Optional[StrPath],
    target: StrPath,
    fstype: Optional[Union[str, bytes]] = None,
    flags: int = 0,
    data: Optional[Union[str, bytes]] = None,
) -> None:
    """Attach a filesystem, or change a mount's flags or propagation.

    Wraps mount(2); any Linux (MS_NOSYMFOLLOW 5.10). Acts in the calling
    process's mount namespace; needs CAP_SYS_ADMIN in the user namespace
    that owns it.

    Args:
        source: device, directory (bind) or a name ("proc", "tmpfs"); may be None.
        target: mount point.
        fstype: filesystem type, or None for bind/remount/propagation changes.
        flags: ``MS_*`` bits (:class:`~nsprim.flags.MountFlags`).
        data: filesystem options ("mode=755,size=1m").

    Raises:
        TypeError/ValueError: bad types, NUL bytes, unknown flag bits.
        OSError: the kernel refused; *filename* is the target.
    """
    src = _path(source, "source", allow_none=True)
    tgt = _path(target, "target")
    fst = _path(fstype, "fstype", allow_none=True)
    fl = _flags(flags, "flags", _MS_ALL, "MS_* flags")
    dat = _path(data, "data", allow_none=True)
    assert tgt is not None
    _libc.check(_libc.mount(src, tgt, fst, fl, dat), "mount", os.fsdecode(tgt))


def umount(target: StrPath, flags: int = 0) -> None:
    """Detach the filesystem mounted on *target*.

    Wraps umount2(2); Linux 2.1.116 (MNT_DETACH 2.4.11, UMOUNT_NOFOLLOW 2.6.34).

    Args:
        target: mount point.
        flags: ``MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW``.

    Raises:
        TypeError/ValueError: bad path or flags.
        OSError: EBUSY, EINVAL (not a mount point), EPERM.
    """
    tgt = _path(target, "target")
    fl = _flags(flags, "flags", _UMOUNT_ALL, "MNT_FORCE/MNT_DETACH/MNT_EXPIRE/UMOUNT_NOFOLLOW")
    assert tgt is not None
    _libc.check(_libc.umount2(tgt, fl), "umount2", os.fsdecode(tgt))


def pivot_root(new_root: StrPath, put_old: StrPath) -> None:
    """Make *new_root* the root of the calling process's mount namespace.

    Wraps pivot_root(2) (raw syscall: glibc has no wrapper); Linux 2.3.41.
    The old root is moved to *put_old*, which must be at or under
    *new_root*; *new_root* must be a mount point that is not on the current
    root's filesystem, and neither may have shared propagation.

    Raises:
        TypeError/ValueError: bad paths.
        OSError: EBUSY, EINVAL, ENOTDIR, EPERM (see pivot_root(2)).
    """
    new = _path(new_root, "new_root")
    old = _path(put_old, "put_old")
    assert new is not None and old is not None
    bnew = ctypes.create_string_buffer(new)
    bold = ctypes.create_string_buffer(old)
    try:
        _libc.syscall("pivot_root", ctypes.addressof(bnew), ctypes.addressof(bold))
    except OSError as err:
        if isinstance(err, UnsupportedError):
            raise
        raise OSError(
            err.errno, f"pivot_root: {os.strerror(err.errno or 0)}", os.fsdecode(new)
        ) from None


def open_tree(path: StrPath, flags: int = 0, *, dirfd: int = C.AT_FDCWD) -> int:
    """Open a mount (or clone a mount tree) as an fd.

    Wraps open_tree(2); Linux 5.2. ``OPEN_TREE_CLONE`` (optionally with
    ``AT_RECURSIVE``) makes a detached copy that :func:`move_mount` can
    attach. The fd is always close-on-exec.

    Returns:
        A new file descriptor (the caller closes it).
    """
    p = _path(path, "path")
    allowed = (
        C.OPEN_TREE_CLONE
        | C.OPEN_TREE_CLOEXEC
        | C.AT_EMPTY_PATH
        | C.AT_NO_AUTOMOUNT
        | C.AT_RECURSIVE
        | C.AT_SYMLINK_NOFOLLOW
    )
    fl = _flags(flags, "flags", allowed, "OPEN_TREE_*/AT_* flags") | C.OPEN_TREE_CLOEXEC
    d = _dirfd(dirfd)
    assert p is not None
    buf = ctypes.create_string_buffer(p)
    return _libc.syscall("open_tree", d, ctypes.addressof(buf), fl)


def move_mount(
    from_path: StrPath,
    to_path: StrPath,
    flags: int = 0,
    *,
    from_dirfd: int = C.AT_FDCWD,
    to_dirfd: int = C.AT_FDCWD,
) -> None:
    """Move a mount (or attach a detached one from :func:`open_tree`).

    Wraps move_mount(2); Linux 5.2. Pass ``from_path=""`` with
    ``MOVE_MOUNT_F_EMPTY_PATH`` and ``from_dirfd=<tree fd>`` to attach a tree.
    """
    fp = _path(from_path, "from_path")
    tp = _path(to_path, "to_path")
    allowed = 0x377  # every MOVE_MOUNT_* bit defined up to Linux 6.5
    fl = _flags(flags, "flags", allowed, "MOVE_MOUNT_* flags")
    fd1 = _dirfd(from_dirfd, "from_dirfd")
    fd2 = _dirfd(to_dirfd, "to_dirfd")
    assert fp is not None and tp is not None
    b1 = ctypes.create_string_buffer(fp)
    b2 = ctypes.create_string_buffer(tp)
    _libc.syscall("move_mount", fd1, ctypes.addressof(b1), fd2, ctypes.addressof(b2), fl)


def mount_setattr(
    path: StrPath,
    *,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: Optional[FdLike] = None,
    recursive: bool = False,
    dirfd: int = C.AT_FDCWD,
    flags: int = 0,
) -> None:
    """Change the properties of a mount (or a whole tree with *recursive*).

    Wraps mount_setattr(2); Linux 5.12 (MOUNT_ATTR_NOSYMFOLLOW 5.14).

    Args:
        path: the mount.
        attr_set: ``MOUNT_ATTR_*`` bits to set.
        attr_clr: ``MOUNT_ATTR_*`` bits to clear.
        propagation: 0 (unchanged) or one of ``MS_SHARED``, ``MS_PRIVATE``,
            ``MS_SLAVE``, ``MS_UNBINDABLE``.
        userns_fd: user namespace for ``MOUNT_ATTR_IDMAP``.
        recursive: apply to the whole subtree (AT_RECURSIVE).
        flags: extra ``AT_*`` lookup flags.

    Raises:
        ValueError: unknown attribute bits, a propagation that is not one type.
        OSError: EINVAL, EPERM, EBUSY ...
    """
    p = _path(path, "path")
    s = _flags(attr_set, "attr_set", _ATTR_ALL, "MOUNT_ATTR_* flags")
    c = _flags(attr_clr, "attr_clr", _ATTR_ALL, "MOUNT_ATTR_* flags")
    prop = _int(propagation, "propagation")
    if prop != 0 and prop not in _PROPAGATIONS:
        raise ValueError(
            "propagation must be 0 or one of MS_SHARED/MS_PRIVATE/MS_SLAVE/MS_UNBINDABLE, "
            f"got {prop:#x}"
        )
    fl = _flags(
        flags,
        "flags",
        C.AT_EMPTY_PATH | C.AT_NO_AUTOMOUNT | C.AT_SYMLINK_NOFOLLOW | C.AT_RECURSIVE,
        "AT_* flags",
    )
    if recursive:
        fl |= C.AT_RECURSIVE
    attr = MountAttr(
        attr_set=s,
        attr_clr=c,
        propagation=prop,
        userns_fd=fd_of(userns_fd, "userns_fd") if userns_fd is not None else 0,
    )
    d = _dirfd(dirfd)
    assert p is not None
    buf = ctypes.create_string_buffer(p)
    try:
        _libc.syscall(
            "mount_setattr",
            d,
            ctypes.addressof(buf),
            fl,
            ctypes.addressof(attr),
            ctypes.sizeof(attr),
        )
    except UnsupportedError:
        raise
    except OSError as err:
        raise OSError(
            err.errno, f"mount_setattr: {os.strerror(err.errno or 0)}", os.fsdecode(p)
        ) from None


def _dirfd(value: object, name: str = "dirfd") -> int:
    v = _int(value, name)
    if v != C.AT_FDCWD and v < 0:
        raise ValueError(f"{name} must be AT_FDCWD or a non-negative fd, got {v}")
    return v


# --- pidfds --------------------------------------------------------------------------


def pidfd_open(pid: int, flags: int = 0) -> int:
    """Return a pidfd referring to process *pid* (close-on-exec).

    Wraps pidfd_open(2); Linux 5.3 (PIDFD_NONBLOCK 5.10, PIDFD_THREAD 6.9).

    Raises:
        ValueError: *pid* not positive, unknown flags.
        ProcessLookupError: no such process (ESRCH).
        UnsupportedError: no pidfd_open in this kernel.
    """
    p = _pid(pid)
    fl = _flags(flags, "flags", C.PIDFD_NONBLOCK | C.PIDFD_THREAD, "PIDFD_NONBLOCK/PIDFD_THREAD")
    return _libc.syscall("pidfd_open", p, fl)


def pidfd_send_signal(pidfd: FdLike, sig: int, flags: int = 0) -> None:
    """Send signal *sig* to the process that *pidfd* refers to.

    Wraps pidfd_send_signal(2); Linux 5.1 (scope flags 6.9). Unlike kill(2),
    a recycled pid can't redirect the signal to another process.

    Raises:
        ValueError: bad fd, signal out of range, unknown flags.
        ProcessLookupError: the process has exited (ESRCH).
    """
    fd = fd_of(pidfd, "pidfd")
    s = _int(sig, "sig")
    if not 0 <= s < signal.NSIG:
        raise ValueError(f"sig must be 0 or a signal number below {signal.NSIG}, got {s}")
    fl = _flags(flags, "flags", 0x7, "PIDFD_SIGNAL_* flags")
    _libc.syscall("pidfd_send_signal", fd, s, 0, fl)


def pidfd_getfd(pidfd: FdLike, targetfd: int) -> int:
    """Duplicate fd *targetfd* of the process behind *pidfd* into this process.

    Wraps pidfd_getfd(2); Linux 5.6. Needs PTRACE_MODE_ATTACH_REALCREDS.
    """
    fd = fd_of(pidfd, "pidfd")
    t = fd_of(targetfd, "targetfd")
    return _libc.syscall("pidfd_getfd", fd, t, 0)


# --- nsfs ioctls ---------------------------------------------------------------------


def _ns_ioctl(
    fd: FdLike, request: int, call: str, arg: Optional[ctypes._SimpleCData[Any]] = None
) -> int:
    f = fd_of(fd, "fd")
    ptr = ctypes.addressof(arg) if arg is not None else None
    ret = _libc.ioctl(f, request, ptr)
    if ret == -1:
        err = ctypes.get_errno()
        if err == errno.ENOTTY and _is_nsfs(f):
            raise UnsupportedError(call, requires=_IOCTL_SINCE[call])
        _libc.raise_errno(err, call)
    return int(ret)


_IOCTL_SINCE = {
    "NS_GET_USERNS": "Linux 4.9",
    "NS_GET_PARENT": "Linux 4.9",
    "NS_GET_NSTYPE": "Linux 4.11",
    "NS_GET_OWNER_UID": "Linux 4.11",
    "NS_GET_ID": "Linux 6.18",
    "NS_GET_PID_FROM_PIDNS": "Linux 6.11",
    "NS_GET_TGID_FROM_PIDNS": "Linux 6.11",
    "NS_GET_PID_IN_PIDNS": "Linux 6.11",
    "NS_GET_TGID_IN_PIDNS": "Linux 6.11",
    "SIOCGSKNS": "Linux 4.9",
}


def _is_nsfs(fd: int) -> bool:
    # An nsfs fd's /proc link reads "<type>:[<inode>]"; nothing else does.
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    head, _, tail = target.partition(":[")
    return bool(tail) and head in {"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"}


def ns_get_userns(fd: FdLike) -> int:
    """Return a new fd for the user namespace that owns namespace *fd*.

    Wraps ioctl(NS_GET_USERNS); Linux 4.9.

    Raises:
        PermissionError: the owner is outside the caller's user namespace scope (EPERM).
        OSError: ENOTTY/EINVAL if *fd* is not an nsfs fd.
    """
    return _ns_ioctl(fd, C.NS_GET_USERNS, "NS_GET_USERNS")


def ns_get_parent(fd: FdLike) -> int:
    """Return a new fd for the parent of the pid or user namespace *fd*.

    Wraps ioctl(NS_GET_PARENT); Linux 4.9. EINVAL for non-hierarchical
    types, EPERM when the parent is outside the caller's scope.
    """
    return _ns_ioctl(fd, C.NS_GET_PARENT, "NS_GET_PARENT")


def ns_get_nstype(fd: FdLike) -> CloneFlags:
    """Return the ``CLONE_NEW*`` type of namespace *fd*.

    Wraps ioctl(NS_GET_NSTYPE); Linux 4.11.
    """
    return CloneFlags(_ns_ioctl(fd, C.NS_GET_NSTYPE, "NS_GET_NSTYPE"))


def ns_get_owner_uid(fd: FdLike) -> int:
    """Return the uid (in the caller's user namespace) that created user namespace *fd*.

    Wraps ioctl(NS_GET_OWNER_UID); Linux 4.11. EINVAL if *fd* is not a user namespace.
    """
    uid = ctypes.c_uint32(0)
    _ns_ioctl(fd, C.NS_GET_OWNER_UID, "NS_GET_OWNER_UID", uid)
    return int(uid.value)


def ns_get_id(fd: FdLike) -> int:
    """Return the 64-bit namespace id of namespace *fd* (never reused until reboot).

    Wraps ioctl(NS_GET_ID); Linux 6.18 for every type (NS_GET_MNTNS_ID, 6.8,
    covers mount namespaces on older kernels).

    Raises:
        UnsupportedError: the kernel lacks NS_GET_ID.
    """
    out = ctypes.c_uint64(0)
    _ns_ioctl(fd, C.NS_GET_ID, "NS_GET_ID", out)
    return int(out.value)


def socket_netns(sock: FdLike) -> int:
    """Return a new nsfs fd for the network namespace a socket belongs to.

    Wraps ioctl(SIOCGSKNS); Linux 4.9. Needs CAP_NET_ADMIN in the user
    namespace that owns that network namespace.
    """
    return _ns_ioctl(sock, C.SIOCGSKNS, "SIOCGSKNS")


def _ns_ioctl_value(fd: FdLike, request: int, call: str, value: int) -> int:
    """An nsfs ioctl whose argument is an integer value, not a pointer; its return value."""
    f = fd_of(fd, "fd")
    ret = _libc.ioctl(f, request, value)
    if ret == -1:
        err = ctypes.get_errno()
        if err == errno.ENOTTY and _is_nsfs(f):
            raise UnsupportedError(call, requires=_IOCTL_SINCE[call])
        _libc.raise_errno(err, call)
    return int(ret)


def ns_pid_from_pidns(fd: FdLike, pid: int, *, tgid: bool = False) -> int:
    """Translate *pid*, as pid namespace *fd* numbers it, into the caller's pid namespace.

    Wraps ioctl(NS_GET_PID_FROM_PIDNS), or NS_GET_TGID_FROM_PIDNS with *tgid*
    (the pid of that thread's thread-group leader); Linux 6.11. Needs no
    ``/proc`` of either namespace.

    Raises:
        ValueError/TypeError: *pid* is not a positive process id, *tgid* not a bool.
        UnsupportedError: the kernel lacks the ioctl (before Linux 6.11).
        ProcessLookupError: no such process there, or it is not visible here (ESRCH).
        OSError: EINVAL when *fd* is not a pid namespace, ENOTTY when not an nsfs fd.
    """
    p = _pid(pid)
    if not isinstance(tgid, bool):
        raise TypeError(f"tgid must be a bool, got {tgid!r}")
    if tgid:
        return _ns_ioctl_value(fd, C.NS_GET_TGID_FROM_PIDNS, "NS_GET_TGID_FROM_PIDNS", p)
    return _ns_ioctl_value(fd, C.NS_GET_PID_FROM_PIDNS, "NS_GET_PID_FROM_PIDNS", p)


def ns_pid_in_pidns(fd: FdLike, pid: int, *, tgid: bool = False) -> int:
    """Translate *pid* of the caller's pid namespace into the one pid namespace *fd* numbers.

    Wraps ioctl(NS_GET_PID_IN_PIDNS), or NS_GET_TGID_IN_PIDNS with *tgid*;
    Linux 6.11.

    Raises:
        ValueError/TypeError: *pid* is not a positive process id, *tgid* not a bool.
        UnsupportedError: the kernel lacks the ioctl (before Linux 6.11).
        ProcessLookupError: no such process here, or it is not in that namespace (ESRCH).
        OSError: EINVAL when *fd* is not a pid namespace, ENOTTY when not an nsfs fd.
    """
    p = _pid(pid)
    if not isinstance(tgid, bool):
        raise TypeError(f"tgid must be a bool, got {tgid!r}")
    if tgid:
        return _ns_ioctl_value(fd, C.NS_GET_TGID_IN_PIDNS, "NS_GET_TGID_IN_PIDNS", p)
    return _ns_ioctl_value(fd, C.NS_GET_PID_IN_PIDNS, "NS_GET_PID_IN_PIDNS", p)


# --- file handles ---------------------------------------------------------------------

#: open_by_handle_at(2)'s *mount_fd* for handles of nsfs files (Linux 6.18).
FD_NSFS_ROOT = C.FD_NSFS_ROOT
#: open_by_handle_at(2)'s *mount_fd* for handles of pidfds (Linux 6.14).
FD_PIDFS_ROOT = C.FD_PIDFS_ROOT

_HANDLE_FLAGS = C.AT_EMPTY_PATH | C.AT_SYMLINK_FOLLOW | C.AT_HANDLE_FID
_MOUNT_FD_SPECIAL = (C.AT_FDCWD, C.FD_PIDFS_ROOT, C.FD_NSFS_ROOT)
#: The open(2) flags that mean something to open_by_handle_at(2) (it creates nothing).
_OPEN_BY_HANDLE_FLAGS = (
    os.O_ACCMODE
    | os.O_APPEND
    | os.O_NONBLOCK
    | os.O_DSYNC
    | os.O_SYNC
    | os.O_DIRECTORY
    | os.O_NOFOLLOW
    | os.O_NOATIME
    | os.O_CLOEXEC
    | os.O_PATH
    | os.O_LARGEFILE
)


def _file_handle(size: int) -> ctypes.Structure:
    class FileHandle(ctypes.Structure):
        # struct file_handle (include/linux/fs.h, fcntl.h)
        _fields_ = [
            ("handle_bytes", ctypes.c_uint),
            ("handle_type", ctypes.c_int),
            ("f_handle", ctypes.c_ubyte * size),
        ]

    return FileHandle()


def name_to_handle_at(
    path: StrPath, *, dirfd: FdLike = C.AT_FDCWD, flags: int = 0
) -> tuple[int, bytes, int]:
    """Return a file handle for *path*: ``(handle_type, handle_bytes, mount_id)``.

    Wraps name_to_handle_at(2); Linux 2.6.39. Handles of nsfs files need
    Linux 6.18 (pidfds Linux 6.14): pass an nsfs fd with ``path=""`` and
    ``AT_EMPTY_PATH``, or a ``/proc/PID/ns/*`` path with ``AT_SYMLINK_FOLLOW``
    (without it the handle would be procfs's symlink's, which has none). A
    filesystem without handles answers EOPNOTSUPP.

    Args:
        path: the file, relative to *dirfd*; ``""`` with ``AT_EMPTY_PATH`` for *dirfd* itself.
        dirfd: a directory fd, ``AT_FDCWD``, or the file's own fd with ``AT_EMPTY_PATH``.
        flags: ``AT_EMPTY_PATH``, ``AT_SYMLINK_FOLLOW``, ``AT_HANDLE_FID``.

    Raises:
        ValueError/TypeError: a bad path, fd or flag.
        OSError: the kernel refused (EOPNOTSUPP: no handles on that filesystem).
    """
    p = _path(path, "path")
    assert p is not None
    if isinstance(dirfd, int) and not isinstance(dirfd, bool) and dirfd == C.AT_FDCWD:
        d = dirfd
    else:
        d = fd_of(dirfd, "dirfd")
    f = _flags(flags, "flags", _HANDLE_FLAGS, "AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, AT_HANDLE_FID")
    handle = _file_handle(C.MAX_HANDLE_SZ)
    handle.handle_bytes = C.MAX_HANDLE_SZ
    mount_id = ctypes.c_int(0)
    ret = _libc.name_to_handle_at(d, p, ctypes.addressof(handle), ctypes.addressof(mount_id), f)
    _libc.check(ret, "name_to_handle_at", os.fsdecode(p))
    data = bytes(handle.f_handle[: handle.handle_bytes])
    return int(handle.handle_type), data, int(mount_id.value)


def open_by_handle_at(mount_fd: FdLike, handle_type: int, handle: bytes, flags: int = 0) -> int:
    """Open the file a handle from :func:`name_to_handle_at` names; return the new fd.

    Wraps open_by_handle_at(2); Linux 2.6.39. *mount_fd* is an fd on the
    handle's filesystem, or :data:`FD_NSFS_ROOT` for an nsfs handle (Linux
    6.18) or :data:`FD_PIDFS_ROOT` for a pidfd's (Linux 6.14). Handles of
    other filesystems need CAP_DAC_READ_SEARCH; an nsfs handle reopens a
    namespace the caller is in, or (with CAP_SYS_ADMIN over its owner) one
    it is not in. O_CLOEXEC is always added.

    Raises:
        ValueError/TypeError: a bad fd, handle or flags.
        OSError: ESTALE when the file (or namespace) is gone or out of the
            caller's reach, EPERM, EINVAL for a malformed handle.
    """
    if (
        isinstance(mount_fd, int)
        and not isinstance(mount_fd, bool)
        and mount_fd in _MOUNT_FD_SPECIAL
    ):
        m = mount_fd
    else:
        m = fd_of(mount_fd, "mount_fd")
    t = _int(handle_type, "handle_type")
    if not -(1 << 31) <= t < 1 << 31:
        raise ValueError(f"handle_type must fit a C int, got {t}")
    if not isinstance(handle, (bytes, bytearray)):
        raise TypeError(f"handle must be bytes, got {type(handle).__name__} {handle!r}")
    if not 0 < len(handle) <= C.MAX_HANDLE_SZ:
        raise ValueError(f"handle must be 1 to {C.MAX_HANDLE_SZ} bytes, got {len(handle)}")
    o = _flags(flags, "flags", _OPEN_BY_HANDLE_FLAGS, "O_RDONLY/O_WRONLY/O_RDWR and open(2) flags")
    fh = _file_handle(len(handle))
    fh.handle_bytes = len(handle)
    fh.handle_type = t
    ctypes.memmove(fh.f_handle, bytes(handle), len(handle))
    ret = _libc.open_by_handle_at(m, ctypes.addressof(fh), o | os.O_CLOEXEC)
    return _libc.check(ret, "open_by_handle_at")


# --- prctl ---------------------------------------------------------------------------


def set_pdeathsig(sig: int) -> None:
    """Ask for signal *sig* when the parent thread exits (0 cancels).

    Wraps prctl(PR_SET_PDEATHSIG); Linux 2.1.57. Note: it fires when the
    parent *thread* exits, and is cleared by fork and by set-user-ID exec.
    """
    s = _int(sig, "sig")
    if not 0 <= s < signal.NSIG:
        raise ValueError(f"sig must be 0 or a signal number below {signal.NSIG}, got {s}")
    _libc.check(_libc.prctl(C.PR_SET_PDEATHSIG, s, 0, 0, 0), "prctl")


def set_dumpable(on: bool) -> None:
    """Set the calling process's "dumpable" attribute.

    Wraps prctl(PR_SET_DUMPABLE); Linux 2.3.20. A uid change clears it, and
    a non-dumpable process's /proc/PID files belong to root, so a process
    that dropped root must set it again to write its own ``uid_map``.
    """
    if not isinstance(on, bool):
        raise TypeError(f"on must be a bool, got {on!r}")
    _libc.check(_libc.prctl(C.PR_SET_DUMPABLE, int(on), 0, 0, 0), "prctl")


def get_dumpable() -> int:
    """Return the calling process's "dumpable" attribute (0, 1, or 2 for suid_dumpable=2).

    Wraps prctl(PR_GET_DUMPABLE); Linux 2.3.20.
    """
    return _libc.check(_libc.prctl(C.PR_GET_DUMPABLE, 0, 0, 0, 0), "prctl")


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Return the (effective, permitted, inheritable) capability sets of *pid* (0: caller).

    Wraps capget(2) with _LINUX_CAPABILITY_VERSION_3 (Linux 2.6.26); each set
    is a 64-bit mask with bit N for capability N (``CAP_SYS_ADMIN`` is 21).
    """
    p = _int(pid, "pid")
    if p < 0:
        raise ValueError(f"pid must be 0 (the caller) or a positive process id, got {p}")
    header = CapUserHeader(LINUX_CAPABILITY_VERSION_3, p)
    data = (CapUserData * 2)()
    _libc.check(_libc.capget(ctypes.addressof(header), ctypes.addressof(data)), "capget")
    return (
        data[0].effective | (data[1].effective << 32),
        data[0].permitted | (data[1].permitted << 32),
        data[0].inheritable | (data[1].inheritable << 32),
    )


def capset(effective: int, permitted: int, inheritable: int = 0) -> None:
    """Set the calling thread's capability sets (each a 64-bit mask).

    Wraps capset(2) (Linux 2.6.26 for 64-bit sets). Only dropping is possible
    without CAP_SETPCAP; effective must stay a subset of permitted.
    """
    sets = []
    for name, value in (
        ("effective", effective),
        ("permitted", permitted),
        ("inheritable", inheritable),
    ):
        v = _int(value, name)
        if not 0 <= v < 1 << 64:
            raise ValueError(f"{name} must be a 64-bit capability mask, got {v:#x}")
        sets.append(v)
    header = CapUserHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapUserData * 2)()
    for i in range(2):
        data[i].effective = (sets[0] >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (sets[1] >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (sets[2] >> (32 * i)) & 0xFFFFFFFF
    _libc.check(_libc.capset(ctypes.addressof(header), ctypes.addressof(data)), "capset")


def drop_capabilities() -> None:
    """Clear the calling thread's effective, permitted and inheritable capabilities.

    Wraps capset(2). The uid does not change, so this also works inside a
    user namespace that maps a single uid; ambient capabilities go too
    (they must stay a subset of permitted and inheritable, capabilities(7)).
    """
    capset(0, 0, 0)


def cap_ambient_raise() -> int:
    """Raise every permitted capability into the inheritable and ambient sets; return the mask.

    Wraps capset(2) and prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE) (Linux 4.3)
    for the calling thread, as util-linux's ``--keep-caps`` does: the
    capabilities then survive an execve(2) of a program without file
    capabilities, even for a non-root uid (capabilities(7)). Capabilities the
    kernel does not know (bits above CAP_LAST_CAP) are never in permitted.

    Raises:
        UnsupportedError: no ambient capabilities in this kernel (EINVAL from prctl).
        OSError: capset(2) refused (EPERM).
    """
    effective, permitted, _ = capget()
    capset(effective, permitted, permitted)
    for cap in range(64):
        raised = (
            permitted >> cap & 1 == 0
            or _libc.prctl(C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_RAISE, cap, 0, 0) != -1
        )
        if not raised:
            err = ctypes.get_errno()
            if err == errno.EINVAL:
                raise UnsupportedError("PR_CAP_AMBIENT", requires="Linux 4.3")
            _libc.raise_errno(err, "prctl")
    return permitted


def set_child_subreaper(on: bool = True) -> None:
    """Make the calling process a "child subreaper" (or stop being one).

    Wraps prctl(PR_SET_CHILD_SUBREAPER); Linux 3.4. Orphaned descendants are
    then reparented to this process instead of the pid namespace's init, so
    it can reap them.
    """
    if not isinstance(on, bool):
        raise TypeError(f"on must be a bool, got {on!r}")
    _libc.check(_libc.prctl(C.PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0), "prctl")


# --- loaded on first use ---------------------------------------------------------------------
# pidfs ioctls, listns(2), nsfs file handles and the unchecked errno calls live
# in nsprim._syscalls_more: a spawn needs none of them (PEP 562).


def __getattr__(name: str) -> Any:
    from . import _syscalls_more

    try:
        value = getattr(_syscalls_more, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    from . import _syscalls_more

    return sorted(set(globals()) | set(vars(_syscalls_more)))
