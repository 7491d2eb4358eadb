"""The bindings of :mod:`nsprim.syscalls` that a spawn never needs, loaded on first use.

Layer 1, private: :mod:`nsprim.syscalls` (its helpers) and what it imports.
Every public name here is :mod:`nsprim.syscalls`'s, reached through its
module ``__getattr__`` (``nsprim.syscalls.listns``, ``from nsprim.syscalls
import listns``): pidfs ioctls, listns(2), nsfs file handles, and the
unchecked errno-returning calls the probes use. Apart so that ``nsprim run``,
which imports :mod:`nsprim.syscalls`, doesn't read and run them (about
0.2 ms of its start-up). Add a binding here when nothing on a spawn's path
calls it.
"""

from __future__ import annotations

import ctypes
import errno
import os

from ._fd import fd_of
from ._sys import consts as C
from ._sys import libc as _libc
from ._sys import nr as _nr
from .errors import UnsupportedError
from .flags import CloneFlags
from .syscalls import _NS_ALL, _flags, _int, _ns_ioctl

# typing.TYPE_CHECKING without importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

    from ._fd import FdLike

# No __all__: every public name here is exported by nsprim.syscalls (its __all__).


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
