"""Find every namespace on the machine and how it is held, in one pass over /proc (``nsprim ls``).

Layer 2: imports the standard library, :mod:`nsprim.errors`, :mod:`nsprim.syscalls`,
:mod:`nsprim._fd` and :mod:`nsprim.namespace` only; returns data, never prints.

util-linux ``lsns`` finds a namespace only while some process is a member
(``/proc/PID/ns/TYPE``). A namespace lives as long as anything references it, so
:func:`scan` also looks where lsns does not (the places TheDiveO/lxkns searches):

* per-thread namespaces: ``/proc/PID/task/TID/ns/TYPE`` differing from the
  process's own (setns(2) and unshare(2) act on the calling thread);
* namespaces held only by an open file descriptor (``/proc/PID/fd/N`` that
  reads ``TYPE:[INODE]``);
* namespaces held only by a bind mount: ``nsfs`` entries of
  ``/proc/PID/mountinfo``, read once per mount namespace, the mount point
  stat'ed through ``/proc/PID/root`` so it resolves in that mount namespace;
* with ``sockets=True``, network namespaces held only by a socket: each socket
  fd is duplicated with pidfd_getfd(2) and asked with ioctl(SIOCGSKNS). Off by
  default: it needs ptrace-attach rights over every process, briefly holds a
  reference to other processes' sockets (if the owner closes its fd meanwhile,
  the final close happens here), and costs four syscalls per socket;
* owners and parents reached only through NS_GET_USERNS / NS_GET_PARENT (a
  user namespace with no member process left, kept alive by what it owns);
* on Linux 6.19, every namespace listns(2) names that none of the above found
  (held by a socket, by a bind mount in a mount namespace no process is in, or
  by the kernel), opened by its id through an nsfs file handle. Before 6.19
  listns is ENOSYS and the /proc scan is all there is.

Processes that exit mid-scan, and those the caller may not inspect, are
skipped and counted, never fatal. Identity is the nsfs ``(st_dev, st_ino)`` pair
(never a readlink string); the kernel's 64-bit NS_GET_ID is reported where it exists
(Linux 6.18).

Cost: per process one ``open`` of ``/proc/PID``, one ``fstatat`` per namespace
type, one for ``task`` (its link count is 2 + the thread count, so
single-threaded processes are not listed), and a ``readlink`` per open fd.
Commands and user names are read only for the one process per namespace that
is reported.
"""

from __future__ import annotations

import enum
import os
import pwd

from . import syscalls as _sc
from ._stdlib import suppress
from .errors import UnsupportedError
from .namespace import NsType, nstype_of

# typing.TYPE_CHECKING without importing typing: `nsprim ls` on a small host
# spends more on imports than on its scan.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Optional, TypeVar, Union

    _T = TypeVar("_T")

__all__ = [
    "Held",
    "NsRef",
    "FdHolder",
    "MountHolder",
    "NsInfo",
    "Listing",
    "TreeNode",
    "scan",
    "tree",
    "walk",
]

_PROC = "/proc"
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _Record:
    """A frozen record: what ``@dataclass(frozen=True)`` gives (eq, hash, repr,
    immutability), without importing dataclasses, whose inspect/ast/dis
    imports cost ``nsprim ls`` more than its scan of a small host.
    Subclasses name their fields in ``_fields`` and set them with ``_set``."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _set(self, *values: object) -> None:
        for name, value in zip(self._fields, values):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, _Record)
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{self.__class__.__qualname__}({args})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"cannot assign to field {name!r}: {self.__class__.__name__} is frozen"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {self.__class__.__name__} is frozen")


class Held(str, enum.Enum):
    """How a namespace is kept alive (one namespace may be held several ways)."""

    PROCESS = "process"  # a process is a member (/proc/PID/ns)
    THREAD = "thread"  # a thread other than the main one is a member (/proc/PID/task/TID/ns)
    FD = "fd"  # an open file descriptor refers to it (/proc/PID/fd)
    BIND_MOUNT = "bind-mount"  # an nsfs bind mount (/proc/PID/mountinfo)
    SOCKET = "socket"  # a socket created in it (SIOCGSKNS), net only
    ANCESTOR = "ancestor"  # found only as the owner or parent of another namespace
    LISTNS = "listns"  # only listns(2) (Linux 6.19) names it: no process, fd or mount here does

    def __str__(self) -> str:
        return self.value


class NsRef(_Record):
    """The identity of a namespace: its type and nsfs ``(st_dev, st_ino)``."""

    type: NsType
    dev: int
    ino: int
    _fields = ("type", "dev", "ino")

    def __init__(self, type: NsType, dev: int, ino: int) -> None:
        self._set(type, dev, ino)

    def __str__(self) -> str:
        return f"{self.type.value}:[{self.ino}]"


class FdHolder(_Record):
    """File descriptor *fd* of process *pid* refers to the namespace (or, for sockets, into it)."""

    pid: int
    fd: int
    _fields = ("pid", "fd")

    def __init__(self, pid: int, fd: int) -> None:
        self._set(pid, fd)


class MountHolder(_Record):
    """An nsfs bind mount at *path* in the mount namespace of *pid* (path as *pid* sees it)."""

    pid: int
    path: str
    _fields = ("pid", "path")

    def __init__(self, pid: int, path: str) -> None:
        self._set(pid, path)


class NsInfo(_Record):
    """One namespace as found by :func:`scan`.

    ``pid``/``command``/``uid``/``user`` describe the lowest member pid, as
    lsns's PID/COMMAND/USER columns do; they are None when no process is a
    member (the namespace is held by a thread, fd, bind mount, socket, or only
    as an ancestor). ``owner`` is the owning user namespace (for a user
    namespace: its parent) and ``owner_uid`` the euid that created that user
    namespace, as NS_GET_OWNER_UID reports it; ``parent`` is set for pid and
    user namespaces. Both are None at the top of the caller's scope.
    """

    ref: NsRef
    ns_id: Optional[int]
    nprocs: int
    pid: Optional[int]
    command: Optional[str]
    uid: Optional[int]
    user: Optional[str]
    owner: Optional[NsRef]
    owner_uid: Optional[int]
    parent: Optional[NsRef]
    held: tuple[Held, ...]
    pids: tuple[int, ...]
    threads: tuple[int, ...]
    fds: tuple[FdHolder, ...]
    mounts: tuple[MountHolder, ...]
    sockets: tuple[FdHolder, ...]
    _fields = (
        "ref", "ns_id", "nprocs", "pid", "command", "uid", "user", "owner", "owner_uid",
        "parent", "held", "pids", "threads", "fds", "mounts", "sockets",
    )  # fmt: skip

    def __init__(
        self,
        ref: NsRef,
        ns_id: Optional[int],
        nprocs: int,
        pid: Optional[int],
        command: Optional[str],
        uid: Optional[int],
        user: Optional[str],
        owner: Optional[NsRef],
        owner_uid: Optional[int],
        parent: Optional[NsRef],
        held: tuple[Held, ...],
        pids: tuple[int, ...] = (),
        threads: tuple[int, ...] = (),
        fds: tuple[FdHolder, ...] = (),
        mounts: tuple[MountHolder, ...] = (),
        sockets: tuple[FdHolder, ...] = (),
    ) -> None:
        self._set(
            ref, ns_id, nprocs, pid, command, uid, user, owner, owner_uid, parent, held,
            pids, threads, fds, mounts, sockets,
        )  # fmt: skip

    @property
    def type(self) -> NsType:
        """The namespace type."""
        return self.ref.type

    @property
    def ino(self) -> int:
        """The nsfs inode number (lsns's NS column)."""
        return self.ref.ino

    @property
    def dev(self) -> int:
        """The nsfs device number."""
        return self.ref.dev


class Listing(_Record):
    """The result of one :func:`scan`.

    Attributes:
        namespaces: every namespace found, sorted by type then inode.
        scanned: processes inspected.
        vanished: processes that exited during the scan (skipped).
        denied: processes the caller may not inspect (skipped; run as root to see them).
        sources: where the namespaces came from: ``("proc",)`` when the /proc scan
            was all there was (before Linux 6.19, where listns(2) is ENOSYS, or with
            ``ioctls=False``), ``("proc", "listns")`` when listns(2) also answered
            and every namespace it names was looked for (Linux 6.19).
    """

    namespaces: tuple[NsInfo, ...]
    scanned: int
    vanished: int
    denied: int
    sources: tuple[str, ...]
    _fields = ("namespaces", "scanned", "vanished", "denied", "sources")

    def __init__(
        self,
        namespaces: tuple[NsInfo, ...],
        scanned: int,
        vanished: int,
        denied: int,
        sources: tuple[str, ...] = ("proc",),
    ) -> None:
        self._set(namespaces, scanned, vanished, denied, sources)

    def by_ref(self) -> dict[NsRef, NsInfo]:
        """Return the namespaces keyed by identity."""
        return {n.ref: n for n in self.namespaces}

    def select(
        self,
        types: Optional[Iterable[Union[NsType, str]]] = None,
        pid: Optional[int] = None,
    ) -> list[NsInfo]:
        """Return the namespaces of the given *types* that *pid* belongs to or holds.

        Args:
            types: namespace types to keep (None: all).
            pid: keep the namespaces this process (or one of its threads) is in,
                or holds by fd, bind mount (in its mount namespace) or socket.
        """
        wanted = None if types is None else {NsType.parse(t) for t in types}
        out = []
        for n in self.namespaces:
            if wanted is not None and n.type not in wanted:
                continue
            if pid is not None and not _involves(n, pid):
                continue
            out.append(n)
        return out


def _involves(n: NsInfo, pid: int) -> bool:
    return (
        pid in n.pids
        or any(h.pid == pid for h in n.fds)
        or any(h.pid == pid for h in n.mounts)
        or any(h.pid == pid for h in n.sockets)
        or pid in n.threads
    )


class TreeNode(_Record):
    """A namespace and its children in the user or pid hierarchy (see :func:`tree`)."""

    ns: NsInfo
    children: tuple[TreeNode, ...]
    _fields = ("ns", "children")

    def __init__(self, ns: NsInfo, children: tuple[TreeNode, ...] = ()) -> None:
        self._set(ns, children)


_Key = tuple[str, int, int]  # (type name, dev, ino): cheap to hash during the scan


class _Scan:
    """Mutable state of one pass; turned into a :class:`Listing` by :meth:`result`."""

    def __init__(self, types: list[str]) -> None:
        self.types = types
        self.members: dict[_Key, list[int]] = {}
        self.threads: dict[_Key, list[int]] = {}
        self.fds: dict[_Key, list[FdHolder]] = {}
        self.mounts: dict[_Key, list[MountHolder]] = {}
        self.sockets: dict[_Key, list[FdHolder]] = {}
        # A /proc path through which the namespace can be opened for ioctls.
        self.opener: dict[_Key, str] = {}
        self.mnt_seen: set[_Key] = set()
        # One nsfs fd per namespace found through a socket (SIOCGSKNS): the
        # only handle on a namespace that no /proc path reaches.
        self.socket_fds: dict[_Key, int] = {}
        self.scanned = 0
        self.vanished = 0
        self.denied = 0

    def note(self, table: dict[_Key, list[_T]], key: _Key, item: _T, path: str) -> None:
        lst = table.get(key)
        if lst is None:
            table[key] = [item]
        else:
            lst.append(item)
        if key not in self.opener:
            self.opener[key] = path


def scan(
    *,
    threads: bool = True,
    fds: bool = True,
    mounts: bool = True,
    sockets: bool = False,
    ioctls: bool = True,
) -> Listing:
    """Find the namespaces visible from here in one pass over /proc.

    Reads /proc (Linux 3.8 for nsfs links); NS_GET_USERNS/NS_GET_PARENT (4.9),
    NS_GET_OWNER_UID (4.11), NS_GET_ID (6.18), and with *ioctls* listns(2) and
    nsfs file handles (6.19) where present; SIOCGSKNS (4.9) and pidfd_getfd
    (5.6) with *sockets*. Never changes any namespace.

    Args:
        threads: also look at every thread's namespaces.
        fds: also look for namespaces held by open fds.
        mounts: also look for nsfs bind mounts (once per mount namespace).
        sockets: also find the network namespace of every socket (see the
            module docstring for why this is off by default).
        ioctls: ask the kernel for owners, parents, owner uids and ids.

    Returns:
        A :class:`Listing`; processes that vanish or may not be inspected are
        counted, not fatal.
    """
    types = [t.value for t in NsType if os.path.exists(f"{_PROC}/self/ns/{t.value}")]
    st = _Scan(types)
    procfd = os.open(_PROC, _O_DIR)
    try:
        for name in os.listdir(procfd):
            if name.isdigit():
                _scan_pid(st, procfd, int(name), threads, fds, mounts, sockets)
    finally:
        os.close(procfd)
    return _finish(st, ioctls)


def _scan_pid(
    st: _Scan, procfd: int, pid: int, threads: bool, fds: bool, mounts: bool, sockets: bool
) -> None:
    try:
        pfd = os.open(str(pid), _O_DIR, dir_fd=procfd)
    except OSError:
        st.vanished += 1
        return
    try:
        own: dict[str, _Key] = {}
        for t in st.types:
            try:
                s = os.stat(f"ns/{t}", dir_fd=pfd)
            except PermissionError:
                st.denied += 1
                return
            except OSError:
                # ENOENT: either the process exited (the /proc/PID we hold is
                # now empty) or it is a zombie, whose nsproxy is gone while its
                # pid and user namespaces still resolve; lsns counts those, so
                # keep whichever types resolve.
                continue
            own[t] = (t, s.st_dev, s.st_ino)
        if not own:
            st.vanished += 1
            return
        st.scanned += 1
        for t, key in own.items():
            st.note(st.members, key, pid, f"{_PROC}/{pid}/ns/{t}")
        if threads:
            _scan_threads(st, pfd, pid, own)
        if mounts:
            mkey = own.get("mnt")
            if mkey is not None and mkey not in st.mnt_seen:
                st.mnt_seen.add(mkey)
                _scan_mountinfo(st, pfd, pid)
        if fds or sockets:
            _scan_fds(st, pfd, pid, fds, sockets)
    finally:
        os.close(pfd)


def _scan_threads(st: _Scan, pfd: int, pid: int, own: dict[str, _Key]) -> None:
    # /proc/PID/task's link count is 2 + the number of threads
    # (fs/proc/base.c proc_task_getattr): skip the listing for 1 thread.
    try:
        if os.stat("task", dir_fd=pfd).st_nlink <= 3:
            return
        tids = [int(n) for n in os.listdir(f"{_PROC}/{pid}/task") if n.isdigit()]
    except OSError:
        return
    for tid in tids:
        if tid == pid:
            continue
        for t in st.types:
            try:
                s = os.stat(f"task/{tid}/ns/{t}", dir_fd=pfd)
            except OSError:
                break  # the thread exited
            key = (t, s.st_dev, s.st_ino)
            if key != own.get(t):
                st.note(st.threads, key, tid, f"{_PROC}/{pid}/task/{tid}/ns/{t}")


def _scan_fds(st: _Scan, pfd: int, pid: int, fds: bool, sockets: bool) -> None:
    try:
        dfd = os.open("fd", _O_DIR, dir_fd=pfd)
    except OSError:
        return
    # The scan's own handles (nsfs fds it got through sockets) are not holders: seen
    # when the scanner's pid comes after a socket's owner (pids wrap around).
    own = set(st.socket_fds.values()) if pid == os.getpid() else set()
    try:
        names = os.listdir(dfd)
        sock_fds: list[int] = []
        for name in names:
            if own and int(name) in own:
                continue
            try:
                link = os.readlink(name, dir_fd=dfd)
            except OSError:
                continue
            head, sep, _ = link.partition(":[")
            if not sep:
                continue
            if head == "socket":
                if sockets:
                    sock_fds.append(int(name))
                continue
            if not fds or head not in st.types:
                continue
            try:
                s = os.stat(name, dir_fd=dfd)
            except OSError:
                continue
            st.note(
                st.fds,
                (head, s.st_dev, s.st_ino),
                FdHolder(pid, int(name)),
                f"{_PROC}/{pid}/fd/{name}",
            )
    except OSError:
        return
    finally:
        os.close(dfd)
    if sock_fds:
        _scan_sockets(st, pid, sock_fds)


def _scan_sockets(st: _Scan, pid: int, sock_fds: list[int]) -> None:
    try:
        pidfd = _sc.pidfd_open(pid)
    except (OSError, UnsupportedError):
        return
    try:
        for fd in sock_fds:
            try:
                dup = _sc.pidfd_getfd(pidfd, fd)
            except (OSError, UnsupportedError):
                continue
            try:
                nsfd = _sc.socket_netns(dup)
            except (OSError, UnsupportedError):
                continue
            finally:
                os.close(dup)
            try:
                s = os.fstat(nsfd)
            except OSError:
                os.close(nsfd)
                continue
            key = ("net", s.st_dev, s.st_ino)
            if key in st.socket_fds:
                os.close(nsfd)
            else:
                st.socket_fds[key] = nsfd
            lst = st.sockets.setdefault(key, [])
            lst.append(FdHolder(pid, fd))
    finally:
        os.close(pidfd)


def _unescape(field_: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c).
    if "\\" not in field_:
        return field_
    out = []
    i = 0
    while i < len(field_):
        c = field_[i]
        if c == "\\" and i + 4 <= len(field_) and field_[i + 1 : i + 4].isdigit():
            out.append(chr(int(field_[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _scan_mountinfo(st: _Scan, pfd: int, pid: int) -> None:
    try:
        fd = os.open("mountinfo", os.O_RDONLY | os.O_CLOEXEC, dir_fd=pfd)
    except OSError:
        return
    try:
        with os.fdopen(fd, "rb", buffering=0) as f:
            chunks = []
            while True:
                b = f.read(65536)
                if not b:
                    break
                chunks.append(b)
    except OSError:
        return
    text = b"".join(chunks).decode("utf-8", "surrogateescape")
    for line in text.splitlines():
        if " - nsfs " not in line:
            continue
        fields = line.split(" ")
        # 36 35 0:4 net:[4026532286] /run/netns/x rw shared:5 - nsfs nsfs rw
        root, mountpoint = fields[3], _unescape(fields[4])
        head, sep, _ = root.partition(":[")
        if not sep or head not in st.types:
            continue
        path = f"{_PROC}/{pid}/root{mountpoint}"
        try:
            s = os.stat(path)
        except OSError:
            continue
        key = (head, s.st_dev, s.st_ino)
        st.note(st.mounts, key, MountHolder(pid, mountpoint), path)


# --- after the pass: identities, owners, parents, commands -----------------------


class _Kernel:
    """The nsfs ioctls, remembering which ones this kernel lacks."""

    def __init__(self) -> None:
        self.has_id = True

    def ns_id(self, fd: int) -> Optional[int]:
        if not self.has_id:
            return None
        try:
            return _sc.ns_get_id(fd)
        except UnsupportedError:
            self.has_id = False
        except OSError:
            pass
        return None


def _drain(
    st: _Scan,
    kern: _Kernel,
    todo: list[tuple[_Key, Optional[int]]],
    done: set[_Key],
    keys: set[_Key],
    owner: dict[_Key, Optional[_Key]],
    parent: dict[_Key, Optional[_Key]],
    owner_uid: dict[_Key, Optional[int]],
    ns_id: dict[_Key, Optional[int]],
    ancestors: set[_Key],
) -> None:
    """Ask the kernel about each namespace of *todo* (and the owners and parents it finds)."""
    while todo:
        key, fd = todo.pop()
        if key in done:
            if fd is not None:
                os.close(fd)
            continue
        done.add(key)
        if fd is None and key in st.socket_fds:
            fd = st.socket_fds.pop(key)
        if fd is None:
            path = st.opener.get(key)
            if path is None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            if _key_of(fd, key[0]) != key:  # the holder moved on; pid reused
                os.close(fd)
                continue
        try:
            ns_id[key] = kern.ns_id(fd)
            for table, call, tname in (
                (owner, _sc.ns_get_userns, "user"),
                (parent, _sc.ns_get_parent, key[0]),
            ):
                if call is _sc.ns_get_parent and key[0] not in ("pid", "user"):
                    continue
                try:
                    rfd = call(fd)
                except OSError:
                    table[key] = None  # EPERM: outside the caller's scope
                    continue
                rkey = _key_of(rfd, tname)
                table[key] = rkey
                if rkey not in keys and rkey not in ancestors:
                    ancestors.add(rkey)
                todo.append((rkey, rfd))
            if key[0] == "user":
                try:
                    owner_uid[key] = _sc.ns_get_owner_uid(fd)
                except OSError:
                    owner_uid[key] = None
        finally:
            os.close(fd)


def _listns_extra(st: _Scan, known: set[Optional[int]]) -> Optional[list[int]]:
    """nsfs fds of the namespaces listns(2) names and the scan did not find.

    None when listns(2) did not answer (ENOSYS before 6.19, or refused).
    """
    try:
        ids = _sc.listns()
    except (UnsupportedError, OSError):
        return None
    wanted = {NsType(t).flag for t in st.types}
    out = []
    for nid in ids:
        if nid in known:
            continue
        try:
            fd = _sc.open_ns_by_id(nid)
        except (UnsupportedError, OSError):
            continue  # gone meanwhile, or out of reach
        try:
            keep = nstype_of(fd).flag in wanted
        except (ValueError, OSError):
            keep = False
        if keep:
            out.append(fd)
        else:
            os.close(fd)
    return out


def _key_of(fd: int, t: str) -> _Key:
    s = os.fstat(fd)
    return (t, s.st_dev, s.st_ino)


def _finish(st: _Scan, ioctls: bool) -> Listing:
    keys: set[_Key] = set(st.opener)
    keys.update(st.sockets)
    owner: dict[_Key, Optional[_Key]] = {}
    parent: dict[_Key, Optional[_Key]] = {}
    owner_uid: dict[_Key, Optional[int]] = {}
    ns_id: dict[_Key, Optional[int]] = {}
    ancestors: set[_Key] = set()
    listed: set[_Key] = set()
    sources: tuple[str, ...] = ("proc",)
    if ioctls:
        kern = _Kernel()
        todo: list[tuple[_Key, Optional[int]]] = [(k, None) for k in sorted(keys)]
        done: set[_Key] = set()
        _drain(st, kern, todo, done, keys, owner, parent, owner_uid, ns_id, ancestors)
        # listns(2) (Linux 6.19) names every namespace the caller may see, also those
        # nothing under /proc reaches (held by a socket, a foreign mount namespace's
        # bind mount, the kernel): open them by id and walk them as the others.
        extra = _listns_extra(st, set(ns_id.values()))
        if extra is not None:
            sources = ("proc", "listns")
        for fd in extra or ():
            key = _key_of(fd, nstype_of(fd).value)
            if key in done or key in keys:
                os.close(fd)
                continue
            listed.add(key)
            todo.append((key, fd))
        _drain(st, kern, todo, done, keys, owner, parent, owner_uid, ns_id, ancestors)
    for fd in st.socket_fds.values():
        os.close(fd)
    st.socket_fds.clear()
    keys.update(listed)
    keys.update(ancestors - listed)

    users: dict[int, Optional[str]] = {}
    out = []
    for key in keys:
        t = key[0]
        members = sorted(st.members.get(key, ()))
        held = []
        if members:
            held.append(Held.PROCESS)
        if key in st.threads:
            held.append(Held.THREAD)
        if key in st.fds:
            held.append(Held.FD)
        if key in st.mounts:
            held.append(Held.BIND_MOUNT)
        if key in st.sockets:
            held.append(Held.SOCKET)
        if not held:
            held.append(Held.LISTNS if key in listed else Held.ANCESTOR)
        pid = members[0] if members else None
        command = uid = user = None
        if pid is not None:
            command, uid = _command_and_uid(pid)
            if uid is not None:
                if uid not in users:
                    users[uid] = _user_name(uid)
                user = users[uid]
        okey = owner.get(key)
        pkey = parent.get(key)
        # For a user namespace, owner_uid is its own creator; for the others the
        # creator of the owning user namespace.
        ouid = owner_uid.get(key) if t == "user" else (owner_uid.get(okey) if okey else None)
        out.append(
            NsInfo(
                ref=_ref(key),
                ns_id=ns_id.get(key),
                nprocs=len(members),
                pid=pid,
                command=command,
                uid=uid,
                user=user,
                owner=_ref(okey) if okey else None,
                owner_uid=ouid,
                parent=_ref(pkey) if pkey else None,
                held=tuple(held),
                pids=tuple(members),
                threads=tuple(sorted(st.threads.get(key, ()))),
                fds=tuple(sorted(st.fds.get(key, ()), key=lambda h: (h.pid, h.fd))),
                mounts=tuple(sorted(st.mounts.get(key, ()), key=lambda h: (h.pid, h.path))),
                sockets=tuple(sorted(st.sockets.get(key, ()), key=lambda h: (h.pid, h.fd))),
            )
        )
    order = {t.value: i for i, t in enumerate(NsType)}
    out.sort(key=lambda n: (order[n.type.value], n.ino, n.dev))
    return Listing(tuple(out), st.scanned, st.vanished, st.denied, sources)


def _ref(key: _Key) -> NsRef:
    return NsRef(NsType(key[0]), key[1], key[2])


def _command_and_uid(pid: int) -> tuple[Optional[str], Optional[int]]:
    # lsns: the command line with NULs as spaces, else the comm name.
    command: Optional[str] = None
    uid: Optional[int] = None
    with suppress(OSError):
        uid = os.stat(f"{_PROC}/{pid}").st_uid
    with suppress(OSError):
        with open(f"{_PROC}/{pid}/cmdline", "rb") as f:
            raw = f.read()
        text = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "surrogateescape")
        if text:
            command = text
    if command is None:
        with suppress(OSError), open(f"{_PROC}/{pid}/comm", "rb") as f:
            command = f.read().rstrip(b"\n").decode("utf-8", "surrogateescape")
    return command, uid


def _user_name(uid: int) -> Optional[str]:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def tree(listing: Listing, kind: Union[NsType, str] = NsType.USER) -> list[TreeNode]:
    """Arrange the user or pid namespaces of *listing* by parent.

    For ``user`` every other namespace hangs under the user namespace that
    owns it (lsns ``--tree=owner``); for ``pid`` the pid namespaces form their
    own hierarchy (lsns ``--tree=parent``).

    Args:
        listing: a :func:`scan` result.
        kind: ``"user"`` or ``"pid"``.

    Returns:
        The roots (namespaces whose parent is unknown or outside scope), sorted.

    Raises:
        ValueError: *kind* is not a hierarchical type.
        TypeError: *listing* is not a :class:`Listing`.
    """
    if not isinstance(listing, Listing):
        raise TypeError(f"listing must be a Listing from scan(), got {type(listing).__name__}")
    k = NsType.parse(kind)
    if not k.hierarchical:
        raise ValueError(f"tree kind must be 'user' or 'pid', got {k.value!r}")
    nodes = {n.ref: n for n in listing.namespaces}
    children: dict[NsRef, list[NsInfo]] = {}
    roots: list[NsInfo] = []
    for n in listing.namespaces:
        if k is NsType.PID and n.type is not NsType.PID:
            continue
        up = n.parent if n.type is k else n.owner
        if up is not None and up in nodes:
            children.setdefault(up, []).append(n)
        elif n.type is k:
            roots.append(n)

    def build(n: NsInfo, depth: int) -> TreeNode:
        kids = children.get(n.ref, []) if depth < 64 else []
        # hierarchy nodes first, then owned namespaces by type and inode
        kids.sort(key=lambda c: (c.type is not k, c.type.value, c.ino))
        return TreeNode(n, tuple(build(c, depth + 1) for c in kids))

    return [build(r, 0) for r in sorted(roots, key=lambda n: n.ino)]


def walk(nodes: Iterable[TreeNode], depth: int = 0) -> Iterator[tuple[int, TreeNode]]:
    """Yield ``(depth, node)`` for a forest from :func:`tree`, depth first.

    Raises:
        TypeError: an item is not a :class:`TreeNode`.
    """
    for node in nodes:
        if not isinstance(node, TreeNode):
            raise TypeError(f"nodes must be TreeNode objects from tree(), got {node!r}")
        yield depth, node
        yield from walk(node.children, depth + 1)
