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


# --- pidfd namespace ioctls (pidfs) ---------------------------------------------------

_PIDFD_NS_REQUEST = {
    "cgroup": C.PIDFD_GET_CGROUP_NAMESPACE,
    "ipc": C.PIDFD_GET_IPC_NAMESPACE,
    "mnt": C.PIDFD_GET_MNT_NAMESPACE,
    "net": C.PIDFD_GET_NET_NAMESPACE,
    "pid": C.PIDFD_GET_PID_NAMESPACE,
    "time": C.PIDFD_GET_TIME_NAMESPACE,
    "user": C.PIDFD_GET_USER_NAMESPACE,
    "uts": C.PIDFD_GET_UTS_NAMESPACE,
}
_PIDFD_NS_FOR_CHILDREN = {
    "pid": C.PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE,
    "time": C.PIDFD_GET_TIME_FOR_CHILDREN_NAMESPACE,
}
_NS_OF_FLAG = {
    int(CloneFlags.NEWCGROUP): "cgroup",
    int(CloneFlags.NEWIPC): "ipc",
    int(CloneFlags.NEWNS): "mnt",
    int(CloneFlags.NEWNET): "net",
    int(CloneFlags.NEWPID): "pid",
    int(CloneFlags.NEWTIME): "time",
    int(CloneFlags.NEWUSER): "user",
    int(CloneFlags.NEWUTS): "uts",
}


def _is_pidfd(fd: int) -> bool:
    # A pidfd's fdinfo has a "Pid:" line (Linux 5.3); nothing else's does.
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            return any(line.startswith(b"Pid:") for line in f)
    except OSError:
        return False


def _pidfd_ioctl(pidfd: FdLike, request: int, call: str, since: str, arg: Any = None) -> int:
    fd = fd_of(pidfd, "pidfd")
    ret = _libc.ioctl(fd, request, ctypes.addressof(arg) if arg is not None else None)
    if ret == -1:
        err = ctypes.get_errno()
        if err in (errno.ENOTTY, errno.EINVAL) and _is_pidfd(fd):
            raise UnsupportedError(call, requires=since)
        _libc.raise_errno(err, call)
    return int(ret)


def pidfd_get_namespace(
    pidfd: FdLike, nstype: Union[str, int], *, for_children: bool = False
) -> int:
    """Return a new nsfs fd (O_CLOEXEC) for a namespace of the process behind *pidfd*.

    Wraps ioctl(PIDFD_GET_<TYPE>_NAMESPACE); Linux 6.11. Unlike opening
    ``/proc/PID/ns/TYPE`` it needs no ``/proc`` and cannot race pid reuse.

    Args:
        pidfd: a pidfd (pidfd_open(2), CLONE_PIDFD).
        nstype: ``"mnt"``, ``"uts"``, ``"ipc"``, ``"pid"``, ``"net"``,
            ``"user"``, ``"cgroup"``, ``"time"``, or a ``CLONE_NEW*`` flag.
        for_children: the namespace the process's future children get
            (pid and time only: ``pid_for_children``/``time_for_children``).

    Raises:
        ValueError/TypeError: an unknown type, ``for_children`` for another type.
        UnsupportedError: the kernel lacks the ioctl (before Linux 6.11).
        ProcessLookupError: the process has exited (ESRCH).
        PermissionError: no ptrace read access to the process (EPERM/EACCES).
        OSError: EBADF, or ENOTTY when *pidfd* is not a pidfd.
    """
    if isinstance(nstype, bool) or not isinstance(nstype, (str, int)):
        raise TypeError(f"nstype must be a namespace type name or CLONE_NEW* flag, got {nstype!r}")
    name = _NS_OF_FLAG.get(nstype) if isinstance(nstype, int) else nstype
    if name not in _PIDFD_NS_REQUEST:
        raise ValueError(
            f"nstype must be one of {', '.join(sorted(_PIDFD_NS_REQUEST))} or a CLONE_NEW* flag, "
            f"got {nstype!r}"
        )
    if not isinstance(for_children, bool):
        raise TypeError(f"for_children must be a bool, got {for_children!r}")
    if for_children and name not in _PIDFD_NS_FOR_CHILDREN:
        raise ValueError(f"for_children applies to pid and time namespaces only, not {name!r}")
    request = _PIDFD_NS_FOR_CHILDREN[name] if for_children else _PIDFD_NS_REQUEST[name]
    suffix = "_FOR_CHILDREN" if for_children else ""
    call = f"PIDFD_GET_{name.upper()}{suffix}_NAMESPACE"
    return _pidfd_ioctl(pidfd, request, call, "Linux 6.11")


class _PidfdInfoStruct(ctypes.Structure):
    # struct pidfd_info, PIDFD_INFO_SIZE_VER0 (include/uapi/linux/pidfd.h)
    _fields_ = [
        ("mask", ctypes.c_uint64),
        ("cgroupid", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("tgid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("ruid", ctypes.c_uint32),
        ("rgid", ctypes.c_uint32),
        ("euid", ctypes.c_uint32),
        ("egid", ctypes.c_uint32),
        ("suid", ctypes.c_uint32),
        ("sgid", ctypes.c_uint32),
        ("fsuid", ctypes.c_uint32),
        ("fsgid", ctypes.c_uint32),
        ("spare0", ctypes.c_uint32),
    ]


assert ctypes.sizeof(_PidfdInfoStruct) == C.PIDFD_INFO_SIZE_VER0

PIDFD_INFO_PID = 1 << 0
PIDFD_INFO_CREDS = 1 << 1
PIDFD_INFO_CGROUPID = 1 << 2


_PIDFD_INFO_FIELDS = (
    "pid", "tgid", "ppid", "ruid", "rgid", "euid", "egid", "suid", "sgid", "fsuid", "fsgid",
    "cgroupid",
)  # fmt: skip


class PidfdInfo:
    """What ioctl(PIDFD_GET_INFO) says about a process (ids as seen from the caller's namespaces).

    Attributes:
        pid, tgid, ppid: in the caller's pid namespace (0 where not visible there).
        ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid: in the caller's user namespace.
        cgroupid: the cgroup v2 id, or ``None`` when the kernel did not return one.

    A frozen record (eq, hash, repr) written out rather than a dataclass:
    importing dataclasses costs every user of this module (``nsprim run``
    included) more than its start-up.
    """

    __slots__ = _PIDFD_INFO_FIELDS

    pid: int
    tgid: int
    ppid: int
    ruid: int
    rgid: int
    euid: int
    egid: int
    suid: int
    sgid: int
    fsuid: int
    fsgid: int
    cgroupid: Optional[int]

    def __init__(self, **fields: Optional[int]) -> None:
        if set(fields) != set(_PIDFD_INFO_FIELDS):
            raise TypeError(f"PidfdInfo takes exactly {', '.join(_PIDFD_INFO_FIELDS)}")
        for name in _PIDFD_INFO_FIELDS:
            object.__setattr__(self, name, fields[name])

    def _values(self) -> tuple[Optional[int], ...]:
        return tuple(getattr(self, n) for n in _PIDFD_INFO_FIELDS)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PidfdInfo):
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in _PIDFD_INFO_FIELDS)
        return f"PidfdInfo({args})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: PidfdInfo is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: PidfdInfo is frozen")


def pidfd_get_info(pidfd: FdLike) -> PidfdInfo:
    """Return the pid, parent, credentials and cgroup id of the process behind *pidfd*.

    Wraps ioctl(PIDFD_GET_INFO); Linux 6.13. Needs no ``/proc`` and cannot
    race pid reuse.

    Raises:
        UnsupportedError: the kernel lacks the ioctl (before Linux 6.13).
        ProcessLookupError: the process has exited (ESRCH).
        OSError: EBADF, or ENOTTY when *pidfd* is not a pidfd.
    """
    info = _PidfdInfoStruct()
    info.mask = PIDFD_INFO_PID | PIDFD_INFO_CREDS | PIDFD_INFO_CGROUPID
    _pidfd_ioctl(pidfd, C.PIDFD_GET_INFO, "PIDFD_GET_INFO", "Linux 6.13", info)
    return PidfdInfo(
        pid=int(info.pid),
        tgid=int(info.tgid),
        ppid=int(info.ppid),
        ruid=int(info.ruid),
        rgid=int(info.rgid),
        euid=int(info.euid),
        egid=int(info.egid),
        suid=int(info.suid),
        sgid=int(info.sgid),
        fsuid=int(info.fsuid),
        fsgid=int(info.fsgid),
        cgroupid=int(info.cgroupid) if info.mask & PIDFD_INFO_CGROUPID else None,
    )


# --- listns(2) ----------------------------------------------------------------------

LISTNS_CURRENT_USER = C.LISTNS_CURRENT_USER


class _NsIdReq(ctypes.Structure):
    # struct ns_id_req, NS_ID_REQ_SIZE_VER0 (include/uapi/linux/nsfs.h, Linux 6.19)
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("spare", ctypes.c_uint32),
        ("ns_id", ctypes.c_uint64),
        ("ns_type", ctypes.c_uint32),
        ("spare2", ctypes.c_uint32),
        ("user_ns_id", ctypes.c_uint64),
    ]


assert ctypes.sizeof(_NsIdReq) == C.NS_ID_REQ_SIZE_VER0

_LISTNS_BATCH = 256


def listns(nstype: int = 0, user_ns_id: int = 0, *, after: int = 0) -> list[int]:
    """Return the 64-bit ids (NS_GET_ID) of the namespaces the kernel lets the caller see.

    Wraps listns(2); Linux 6.19. Pages through the whole list (``ns_id`` of
    the request is the last id returned). Unlike a scan of ``/proc`` it also
    finds namespaces that no process is a member of but that are alive
    (held by an fd, a bind mount or a child namespace).

    Args:
        nstype: a combination of ``CLONE_NEW*`` flags to keep (0: every type).
        user_ns_id: only namespaces owned by the user namespace with this id;
            0 for all (subject to the kernel's permission checks),
            :data:`LISTNS_CURRENT_USER` for the caller's user namespace.
        after: start after this id (0: from the beginning).

    Raises:
        ValueError/TypeError: *nstype* not a combination of CLONE_NEW* flags,
            an id outside 0..2**64-1.
        UnsupportedError: the kernel lacks listns (before Linux 6.19).
        OSError: what the kernel answers otherwise (EINVAL, EFAULT); ENOENT, its
            answer when nothing is left to list, is an empty (last) page.
    """
    t = _flags(nstype, "nstype", _NS_ALL, "CLONE_NEW*")
    uid = _int(user_ns_id, "user_ns_id")
    start = _int(after, "after")
    for name, v in (("user_ns_id", uid), ("after", start)):
        if not 0 <= v < 1 << 64:
            raise ValueError(f"{name} must be a 64-bit namespace id, got {v}")
    ids: list[int] = []
    buf = (ctypes.c_uint64 * _LISTNS_BATCH)()
    req = _NsIdReq(size=C.NS_ID_REQ_SIZE_VER0, ns_id=start, ns_type=t, user_ns_id=uid)
    while True:
        try:
            n = _libc.syscall(
                "listns", ctypes.addressof(req), ctypes.addressof(buf), _LISTNS_BATCH, 0
            )
        except FileNotFoundError:
            return ids  # ENOENT: nothing (more) after req.ns_id
        ids.extend(int(buf[i]) for i in range(n))
        if n < _LISTNS_BATCH:
            return ids
        req.ns_id = int(buf[n - 1])


# --- nsfs file handles ----------------------------------------------------------------


class _FileHandle(ctypes.Structure):
    # struct file_handle with room for struct nsfs_file_handle (u64 ns_id, u32 ns_type,
    # u32 ns_inum; include/uapi/linux/nsfs.h)
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("ns_id", ctypes.c_uint64),
        ("ns_type", ctypes.c_uint32),
        ("ns_inum", ctypes.c_uint32),
    ]


_NSFS_HANDLE_BYTES = 16


def open_ns_by_id(ns_id: int, nstype: int = 0, ino: int = 0) -> int:
    """Open the namespace whose 64-bit id (NS_GET_ID, listns(2)) is *ns_id*; return an nsfs fd.

    Wraps open_by_handle_at(2) with an nsfs file handle, as ``nsenter
    --net=:NSID`` does. The handle type comes from name_to_handle_at(2) of the
    caller's own mount namespace, which also serves as the mount fd. The kernel
    lets the caller open namespaces it could reach anyway (privilege over the
    owning user namespace). Linux 6.18 opens a handle only with the type and
    inode filled in; from 6.19 (listns' kernel) the id alone is enough.

    Args:
        ns_id: the namespace id (1 .. 2**64-1).
        nstype: the ``CLONE_NEW*`` flag of the namespace (0: any type, Linux 6.19).
        ino: its nsfs inode number (0: any, Linux 6.19).

    Raises:
        ValueError/TypeError: a bad id or type.
        UnsupportedError: no nsfs file handles in this kernel (before Linux 6.18).
        OSError: ESTALE when no such namespace is alive (or, before 6.19, without
            *nstype* and *ino*), EPERM when it is out of reach.
    """
    nid = _int(ns_id, "ns_id")
    if not 0 < nid < 1 << 64:
        raise ValueError(f"ns_id must be a namespace id from 1 to 2**64-1, got {nid}")
    t = _flags(nstype, "nstype", _NS_ALL, "CLONE_NEW*")
    if t and t & (t - 1):
        raise ValueError(f"nstype must be one CLONE_NEW* flag or 0, got {nstype:#x}")
    inum = _int(ino, "ino")
    if not 0 <= inum < 1 << 32:
        raise ValueError(f"ino must be an nsfs inode number (32 bits) or 0, got {inum}")
    here = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fh = _FileHandle(handle_bytes=_NSFS_HANDLE_BYTES)
        mount_id = ctypes.c_int()
        ret = _libc.name_to_handle_at(
            here,
            b"",
            ctypes.addressof(fh),
            ctypes.addressof(mount_id),
            C.AT_EMPTY_PATH | C.AT_HANDLE_FID,
        )
        if ret == -1:
            err = ctypes.get_errno()
            if err in (errno.EOPNOTSUPP, errno.EINVAL, errno.EOVERFLOW):
                raise UnsupportedError("nsfs file handles", requires="Linux 6.18")
            _libc.raise_errno(err, "name_to_handle_at")
        fh.handle_bytes = _NSFS_HANDLE_BYTES
        # The kernel wants the type and the inode together or neither (6.19: neither
        # is "any"); a type alone is checked here after the open.
        fh.ns_id, fh.ns_type, fh.ns_inum = nid, t if inum else 0, inum
        fd = _libc.open_by_handle_at(here, ctypes.addressof(fh), os.O_RDONLY | os.O_CLOEXEC)
        _libc.check(fd, "open_by_handle_at")
    finally:
        os.close(here)
    if t and not inum:
        try:
            actual = _ns_ioctl(fd, C.NS_GET_NSTYPE, "NS_GET_NSTYPE")
        except BaseException:
            os.close(fd)
            raise
        if actual != t:
            os.close(fd)
            raise OSError(errno.ESTALE, f"open_by_handle_at: {os.strerror(errno.ESTALE)}")
    return int(fd)


# --- the kernel's answer, unchecked: for probes -----------------------------------------------
#
# The functions above refuse a 65-byte hostname, unknown flag bits or a NULL
# path before any syscall. A probe (``nsprim check``, the conformance suite's
# premises) must pass them, because the question is what the kernel, or a
# seccomp filter in front of it, answers. These make exactly the one call,
# never raise for the kernel's refusal, and return its errno (0 on success),
# closing any fd the call created.


def syscall_errno(name: str, *args: int) -> int:
    """Return the errno of the raw syscall *name* with integer *args* (0 on success).

    ENOSYS also when nsprim has no number for *name* on this architecture.
    A result fd (``pidfd_open``, ``open_tree``) is closed.
    """
    try:
        ret = _libc.syscall(name, *args)
    except UnsupportedError:
        return errno.ENOSYS
    except OSError as err:
        return err.errno or errno.EIO
    if ret >= 0 and name in ("pidfd_open", "open_tree"):
        os.close(ret)
    return 0


def unshare_errno(flags: int) -> int:
    """Return the errno of unshare(2) of *flags* as given, unknown bits included (2.6.16)."""
    return 0 if _libc.unshare(flags) == 0 else ctypes.get_errno()


def setns_errno(fd: int, nstype: int) -> int:
    """Return the errno of setns(2) of *fd*, *nstype* as given, a bad fd included (Linux 3.0)."""
    return 0 if _libc.setns(fd, nstype) == 0 else ctypes.get_errno()


def sethostname_errno(name: bytes, length: Optional[int] = None) -> int:
    """Return the errno of sethostname(2) of *name*, *length* bytes (default: all), any length."""
    n = len(name) if length is None else length
    return 0 if _libc.sethostname(name, n) == 0 else ctypes.get_errno()


def setdomainname_errno(name: bytes, length: Optional[int] = None) -> int:
    """Return the errno of setdomainname(2) of *name*, *length* bytes (default: all)."""
    n = len(name) if length is None else length
    return 0 if _libc.setdomainname(name, n) == 0 else ctypes.get_errno()


def mount_errno(source: Optional[bytes], target: bytes, fstype: Optional[bytes], flags: int) -> int:
    """Return the errno of mount(2) as given (no data), a missing target included."""
    ret = _libc.mount(source, target, fstype, flags, None)
    return 0 if ret == 0 else ctypes.get_errno()


def ioctl_errno(fd: int, request: int, size: int = 0) -> tuple[int, int]:
    """Return ``(errno, result)`` of ioctl(2) *request* on *fd*; result -1 on error.

    The argument is a zeroed buffer of *size* bytes, or NULL when *size* is 0
    (the ``_IO()`` requests take none, and the pidfs ones refuse a non-zero
    one with EINVAL). A result fd is the caller's to close.
    """
    buf = ctypes.create_string_buffer(size) if size else None
    ret = _libc.ioctl(fd, request, ctypes.addressof(buf) if buf is not None else None)
    if ret == -1:
        return ctypes.get_errno(), -1
    return 0, int(ret)


def pidfd_info_errno(pidfd: int) -> int:
    """Return the errno of ioctl(PIDFD_GET_INFO) asking for the pid (Linux 6.13)."""
    info = _PidfdInfoStruct()
    info.mask = PIDFD_INFO_PID
    ret = _libc.ioctl(pidfd, C.PIDFD_GET_INFO, ctypes.addressof(info))
    return ctypes.get_errno() if ret == -1 else 0


def libc_has(name: str) -> bool:
    """Whether the C library exports the function *name*."""
    return hasattr(_libc.libc, name)


def syscall_table_error(machine: str) -> Optional[str]:
    """``None`` when nsprim knows the syscall numbers of *machine* (``uname -m``), else why not."""
    try:
        _nr.table(machine)
    except UnsupportedError as err:
        return str(err)
    return None
