"""The namespace model: types and identities.

Layer 2: imports :mod:`nsprim.errors`, :mod:`nsprim.flags`,
:mod:`nsprim.syscalls`, :mod:`nsprim._fd` and :mod:`nsprim._procfs`.

A namespace *is* its nsfs inode: two handles name the same namespace when
``(st_dev, st_ino)`` of their nsfs files match (the kernel's
``pidfd_setns_test.c`` ``in_same_namespace()``). Readlink strings such as
``net:[4026531840]`` carry only the inode, and the inode alone is not unique
across nsfs instances, so nsprim never compares them.
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from . import _procfs
from . import syscalls as _sc
from ._fd import OwnedFd, fd_of
from ._nstype import NsType
from .errors import AccessDenied, NoSuchProcess, NsprimError, UnsupportedError, reraise
from .flags import _MNT_DETACH, _MS_BIND, _UMOUNT_NOFOLLOW

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

    from ._fd import FdLike

__all__ = ["NsType", "Namespace", "namespaces", "nstype_of", "unpersist"]


def nstype_of(fd: FdLike) -> NsType:
    """Return the type of the namespace that nsfs fd *fd* refers to.

    Uses NS_GET_NSTYPE (Linux 4.11), falling back to the fd's /proc link.

    Raises:
        ValueError: *fd* is not a namespace file descriptor.
    """
    f = fd_of(fd)
    try:
        return NsType.parse(int(_sc.ns_get_nstype(f)))
    except UnsupportedError:
        pass
    except OSError as err:
        if err.errno not in (errno.ENOTTY, errno.EINVAL):
            raise
        raise ValueError(f"fd {f} is not a namespace file descriptor") from None
    link = os.readlink(f"/proc/self/fd/{f}")
    head, _, _ = link.partition(":[")
    try:
        return NsType(head)
    except ValueError:
        raise ValueError(f"fd {f} is not a namespace file descriptor ({link})") from None


class Namespace:
    """One namespace, identified by the (st_dev, st_ino) of its nsfs file.

    Equality and hashing use ``(type, dev, ino)`` only; ``path`` is a hint for
    :meth:`open` (re-checked against the identity before use). Immutable.
    """

    # A frozen dataclass by hand: `dataclasses` imports `inspect` (with ast,
    # dis, tokenize), which cost more at `import nsprim` than nsprim itself.
    type: NsType
    dev: int
    ino: int
    path: Optional[str]
    # Namespaces reached by ioctl (parent(), owner()) have no /proc path; they
    # keep the kernel's fd so that they can still be opened and walked further.
    _fd: Optional[OwnedFd]

    __match_args__ = ("type", "dev", "ino", "path", "_fd")

    def __init__(
        self,
        type: NsType,
        dev: int,
        ino: int,
        path: Optional[str] = None,
        _fd: Optional[OwnedFd] = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "type", type)
        set_(self, "dev", dev)
        set_(self, "ino", ino)
        set_(self, "path", path)
        set_(self, "_fd", _fd)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Namespace is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: Namespace is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Namespace)
            return (self.type, self.dev, self.ino) == (other.type, other.dev, other.ino)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.type, self.dev, self.ino))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__qualname__}(type={self.type!r}, dev={self.dev!r}, "
            f"ino={self.ino!r}, path={self.path!r})"
        )

    # --- constructors ---------------------------------------------------------
    @classmethod
    def of_pid(cls, pid: int, type: Union[NsType, str]) -> Namespace:
        """Return the namespace of *type* that process *pid* is in.

        Reads ``/proc/PID/ns/TYPE`` (Linux 3.8 for all of them but cgroup 4.6
        and time 5.6).

        Raises:
            NoSuchProcess: *pid* does not exist.
            AccessDenied: no ptrace access to *pid*.
            UnsupportedError: this kernel has no namespaces of *type*.
        """
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise TypeError(f"pid must be an int, got {pid!r}")
        if pid <= 0:
            raise ValueError(f"pid must be a positive process id, got {pid}")
        return cls._of(
            _procfs.pid_path(pid, "ns", NsType.parse(type).value), NsType.parse(type), pid
        )

    @classmethod
    def of_self(cls, type: Union[NsType, str]) -> Namespace:
        """Return the namespace of *type* of the calling process (its main thread's view).

        Note: setns/unshare act per thread; see :meth:`of_thread`.
        """
        t = NsType.parse(type)
        pid = _procfs.self_pid()
        return cls._of(_procfs.pid_path(pid, "ns", t.value), t, pid)

    @classmethod
    def of_thread(cls, type: Union[NsType, str], tid: Optional[int] = None) -> Namespace:
        """Return the namespace of *type* of the calling thread (or of thread *tid*)."""
        t = NsType.parse(type)
        if tid is None:
            return cls._of(os.path.join(_procfs.PROC, "thread-self", "ns", t.value), t, None)
        if isinstance(tid, bool) or not isinstance(tid, int):
            raise TypeError(f"tid must be an int, got {tid!r}")
        if tid <= 0:
            raise ValueError(f"tid must be a positive thread id, got {tid}")
        task = _procfs.pid_path(_procfs.self_pid(), "task", str(tid))
        return cls._of(os.path.join(task, "ns", t.value), t, tid, alive=task)

    @classmethod
    def for_children(cls, type: Union[NsType, str], pid: Optional[int] = None) -> Namespace:
        """Return the pid or time namespace that *pid*'s future children will join.

        Reads ``/proc/PID/ns/{pid,time}_for_children`` (Linux 4.12 / 5.6).
        """
        t = NsType.parse(type)
        if t not in (NsType.PID, NsType.TIME):
            raise ValueError(f"only pid and time have a *_for_children namespace, got {t.value!r}")
        p = _procfs.self_pid() if pid is None else pid
        return cls._of(_procfs.pid_path(p, "ns", f"{t.value}_for_children"), t, p)

    @classmethod
    def from_fd(cls, fd: FdLike) -> Namespace:
        """Return the namespace that an open nsfs fd refers to.

        Raises:
            ValueError: *fd* is not a namespace fd.
            OSError: EBADF.
        """
        f = fd_of(fd)
        st = os.fstat(f)
        t = nstype_of(f)
        return cls(t, st.st_dev, st.st_ino, _procfs.pid_path(_procfs.self_pid(), "fd", str(f)))

    @classmethod
    def from_path(cls, path: Union[str, os.PathLike[str]]) -> Namespace:
        """Return the namespace behind a path (``/proc/PID/ns/X`` or a bind mount of one).

        Raises:
            ValueError: the path is not a namespace file.
            FileNotFoundError: no such path.
        """
        p = os.fspath(path)
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            t = nstype_of(fd)
        finally:
            os.close(fd)
        return cls(t, st.st_dev, st.st_ino, p)

    @classmethod
    def _of(
        cls, path: str, t: NsType, pid: Optional[int], alive: Optional[str] = None
    ) -> Namespace:
        # *alive*: the /proc directory whose existence tells "the process (or
        # thread) is gone" from "this kernel has no such namespace type".
        if alive is None and pid is not None:
            alive = _procfs.pid_path(pid)
        try:
            st = os.stat(path)
        except OSError as err:
            if err.errno == errno.ENOENT:
                if alive is not None and not os.path.exists(alive):
                    assert pid is not None
                    raise NoSuchProcess(pid) from err
                raise UnsupportedError(f"{t.value} namespaces", requires=t.since) from err
            reraise(err, f"stat {path}", pid, hint="needs ptrace access to the process")
        return cls(t, st.st_dev, st.st_ino, path)

    # --- queries -------------------------------------------------------------------
    def open(self) -> OwnedFd:
        """Open this namespace and return an owned, close-on-exec fd.

        The path hint is opened and its identity checked, so a recycled pid
        can never hand back another namespace.

        Raises:
            NsprimError: no path is known or the namespace is no longer reachable there.
        """
        path = self.path
        if self._fd is not None and not self._fd.closed:
            path = f"/proc/self/fd/{self._fd.fileno()}"
        if path is None:
            raise NsprimError(f"{self}: no path to open it by (keep an fd to it instead)")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise NsprimError(f"{self}: cannot open {self.path}: {err.strerror}") from err
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            os.close(fd)
            raise NsprimError(f"{self}: {self.path} now refers to another namespace")
        return OwnedFd(fd)

    def parent(self) -> Optional[Namespace]:
        """Return the parent pid or user namespace, or None at the top of the caller's scope.

        Uses NS_GET_PARENT (Linux 4.9).

        Raises:
            ValueError: the type is not hierarchical (only pid and user are).
        """
        if not self.type.hierarchical:
            raise ValueError(f"{self.type.value} namespaces have no parent; only pid and user do")
        with self.open() as fd:
            try:
                pfd = _sc.ns_get_parent(fd)
            except PermissionError:
                return None
        return _adopt(pfd, self.type)

    def owner(self) -> Namespace:
        """Return the user namespace that owns this namespace (NS_GET_USERNS, Linux 4.9).

        For a user namespace this is its parent.

        Raises:
            AccessDenied: the owner is outside the caller's user namespace scope.
        """
        with self.open() as fd:
            try:
                ufd = _sc.ns_get_userns(fd)
            except PermissionError as err:
                raise AccessDenied(
                    "NS_GET_USERNS", hint="the owning user namespace is outside the caller's scope"
                ) from err
        return _adopt(ufd, NsType.USER)

    @property
    def owner_uid(self) -> int:
        """For a user namespace: its creator's euid as the caller sees it.

        Uses NS_GET_OWNER_UID (Linux 4.11).
        """
        if self.type is not NsType.USER:
            raise ValueError(
                f"owner_uid is defined for user namespaces only, not {self.type.value}"
            )
        with self.open() as fd:
            return _sc.ns_get_owner_uid(fd)

    @property
    def ns_id(self) -> Optional[int]:
        """The kernel's 64-bit namespace id (NS_GET_ID, Linux 6.18), or None where unsupported."""
        with self.open() as fd:
            try:
                return _sc.ns_get_id(fd)
            except UnsupportedError:
                return None

    @property
    def is_initial(self) -> Optional[bool]:
        """Whether this is the initial namespace of its type, judged by its fixed inode.

        None for net and mnt when the inode doesn't match, because those got a
        fixed inode only in Linux 6.18; an older kernel can't tell.
        """
        if self.ino == self.type.init_ino:
            return True
        if self.type in (NsType.NET, NsType.MNT):
            return None
        return False

    # --- persistence ---------------------------------------------------------------
    def persist(self, path: Union[str, os.PathLike[str]]) -> None:
        """Bind-mount this namespace's nsfs file onto *path*, so it outlives its processes.

        What ``unshare --net=FILE`` and ``ip netns add`` do: mount(2) with
        MS_BIND of the namespace's file onto *path* in the calling thread's
        mount namespace. *path* is created (an empty regular file, mode 0444)
        when it does not exist, and removed again if the bind fails. Linux
        3.0 for net/ipc/uts files, 3.8 for mnt/pid/user, 4.6 for cgroup, 5.6
        for time (nsfs itself: 3.19). Needs CAP_SYS_ADMIN over the caller's
        mount namespace. Undo with :func:`nsprim.unpersist`.

        A mount namespace file is special: the kernel only binds one whose
        namespace is newer than the caller's (so a namespace can never hold
        itself), judged by the namespace id; on Linux 6.18 those ids come
        from per-CPU batches, so even a child's namespace can have a lower id
        than its parent's, and persisting it is refused (ValueError, checked
        with NS_GET_ID before the mount): create the namespace again. The
        kernel also refuses to propagate such a file, so *path* must not be on a
        shared mount (``findmnt -o+PROPAGATION``); make its directory a
        private mount first, as unshare(1) documents::

            mount --bind DIR DIR && mount --make-private DIR

        Every check runs before the file is created or anything is mounted;
        on any failure (or interruption) no mount and no created file is left.

        Raises:
            TypeError: *path* is not a str or os.PathLike of str.
            ValueError: an empty path or one with a NUL byte; *path* is a
                symlink or not a regular file; a mount namespace onto a shared
                mount, or the caller's own mount namespace.
            FileNotFoundError, NotADirectoryError: the parent directory is missing.
            IsADirectoryError: *path* is a directory.
            FileExistsError: *path* is already a mount point (unpersist it first).
            NsprimError: this namespace can no longer be opened.
            AccessDenied: no CAP_SYS_ADMIN over the mount namespace (EPERM).
        """
        target = _check_path(path)
        parent = os.path.dirname(target) or "/"
        pst = os.stat(parent)
        if not _stat.S_ISDIR(pst.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "parent is not a directory", parent)
        try:
            lst: Optional[os.stat_result] = os.lstat(target)
        except FileNotFoundError:
            lst = None
        if lst is not None:
            _check_regular(lst, target)
            if _mnt_id(target) != _mnt_id(parent):
                raise FileExistsError(
                    errno.EEXIST, "already a mount point (nsprim.unpersist() it first)", target
                )
        if self.type is NsType.MNT:
            mine = Namespace.of_thread(NsType.MNT)
            if self == mine:
                raise ValueError(
                    f"{self} is the caller's own mount namespace: the kernel binds only a "
                    "mount namespace newer than the caller's (persist a child's)"
                )
            theirs_id, mine_id = self.ns_id, mine.ns_id
            if theirs_id is not None and mine_id is not None and theirs_id <= mine_id:
                raise ValueError(
                    f"{self} has namespace id {theirs_id}, not above the caller's mount "
                    f"namespace's {mine_id}: the kernel binds only a mount namespace newer "
                    "than the caller's, judged by that id (ids come from per-CPU batches, "
                    "so even a child's can be lower: create it again)"
                )
            if _is_shared(_mnt_id(parent)):
                raise ValueError(
                    f"{parent} is on a shared mount: a mount namespace file cannot be bound "
                    f"there (the kernel refuses to propagate it); make it private first: "
                    f"mount --bind {parent} {parent} && mount --make-private {parent}"
                )
        with self.open() as fd:
            source = _procfs.pid_path(None, "fd", str(fd.fileno()))
            created = False
            mounted = False
            try:
                if lst is None:
                    flags = os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                    os.close(os.open(target, flags, 0o444))
                    created = True
                try:
                    _sc.mount(source, target, None, _MS_BIND)
                except OSError as err:
                    if self.type is NsType.MNT and err.errno == errno.EINVAL:
                        raise ValueError(
                            f"the kernel refuses to bind {self} onto {target} (EINVAL): a mount "
                            "namespace must be newer than the caller's and its file must not "
                            "land on a shared mount"
                        ) from err
                    reraise(err, "mount(MS_BIND)", hint="needs CAP_SYS_ADMIN", filename=target)
                mounted = True
                st = os.stat(target)
                if (st.st_dev, st.st_ino) != (self.dev, self.ino):
                    raise NsprimError(f"{target}: the bind mount shows another file than {self}")
            except BaseException:
                if mounted:
                    _sc.umount(target, _MNT_DETACH | _UMOUNT_NOFOLLOW)
                if created:
                    os.unlink(target)
                raise

    def __str__(self) -> str:
        return f"{self.type.value}:[{self.ino}]"


def _adopt(fd: int, t: NsType) -> Namespace:
    # A fresh fd from an ioctl becomes owned by the Namespace (closed when it
    # is collected), since nothing else can reach that namespace again.
    owned = OwnedFd(fd)
    st = os.fstat(fd)
    return Namespace(t, st.st_dev, st.st_ino, None, owned)


def namespaces(pid: Optional[int] = None) -> dict[NsType, Namespace]:
    """Return every namespace (all eight types the kernel has) of *pid* (default: self).

    Types this kernel lacks are left out.

    Raises:
        NoSuchProcess: *pid* does not exist.
        AccessDenied: no ptrace access to *pid*.
    """
    out: dict[NsType, Namespace] = {}
    for t in NsType:
        try:
            out[t] = Namespace.of_self(t) if pid is None else Namespace.of_pid(pid, t)
        except UnsupportedError:
            continue
    if pid is not None and not out:
        raise NoSuchProcess(pid)
    return out


# --- persistence helpers ------------------------------------------------------------


def unpersist(path: Union[str, os.PathLike[str]], *, remove: bool = True) -> None:
    """Undo :meth:`Namespace.persist`: detach the nsfs bind mount at *path*.

    umount2(2) with MNT_DETACH | UMOUNT_NOFOLLOW (Linux 2.6.34). The
    namespace lives on while a process, fd or another bind mount holds it.
    With *remove* (the default, as ``ip netns delete``) the file under the
    mount is then removed if it is an empty regular file, i.e. what persist,
    ``ip netns add`` or ``touch`` made; a file with content is never removed.
    ``remove=False`` leaves the file, as ``umount FILE`` does.

    Refuses anything but an nsfs bind mount, so it cannot unmount another
    filesystem by mistake.

    Raises:
        TypeError: *path* is not a str or os.PathLike of str, *remove* not a bool.
        ValueError: an empty path or one with a NUL byte; *path* is a symlink,
            not a mount point, or a mount point of something other than nsfs.
        FileNotFoundError: no such path.
        IsADirectoryError: *path* is a directory.
        AccessDenied: no CAP_SYS_ADMIN over the mount namespace (EPERM).
    """
    target = _check_path(path)
    if not isinstance(remove, bool):
        raise TypeError(f"remove must be a bool, got {remove!r}")
    _check_regular(os.lstat(target), target)
    parent = os.path.dirname(target) or "/"
    if _mnt_id(target) == _mnt_id(parent):
        raise ValueError(f"{target} is not a mount point: no namespace is persisted there")
    fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            nstype_of(fd)
        except ValueError:
            raise ValueError(
                f"{target} is a mount point but not of a namespace file; refusing to unmount it"
            ) from None
    finally:
        os.close(fd)
    try:
        _sc.umount(target, _MNT_DETACH | _UMOUNT_NOFOLLOW)
    except OSError as err:
        reraise(err, "umount2", hint="needs CAP_SYS_ADMIN", filename=target)
    if not remove:
        return
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if _stat.S_ISREG(st.st_mode) and st.st_size == 0 and _mnt_id(target) == _mnt_id(parent):
        os.unlink(target)


def _check_path(path: object) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    p = os.fspath(path)
    if not isinstance(p, str):
        raise TypeError(f"path must be a str path, got {type(p).__name__} {p!r}")
    if not p:
        raise ValueError("path must not be empty")
    if "\0" in p:
        raise ValueError(f"path must not contain a NUL byte, got {p!r}")
    return os.path.abspath(p)


def _check_regular(st: os.stat_result, path: str) -> None:
    if _stat.S_ISLNK(st.st_mode):
        raise ValueError(f"{path} is a symlink; give the real path of the namespace file")
    if _stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "a namespace file must be a regular file", path)
    if not _stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file")


def _mnt_id(path: str) -> int:
    # The id of the mount *path* is on (fdinfo "mnt_id:", Linux 3.15).
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        with open(_procfs.pid_path(None, "fdinfo", str(fd)), "rb") as f:
            for line in f:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    raise UnsupportedError("mnt_id in /proc/PID/fdinfo", requires="Linux 3.15")


def _is_shared(mnt_id: int) -> bool:
    # The optional fields of /proc/thread-self/mountinfo (proc(5)) name a
    # shared mount's peer group as "shared:N".
    with open(os.path.join(_procfs.PROC, "thread-self", "mountinfo"), "rb") as f:
        for line in f:
            fields = line.split()
            if int(fields[0]) == mnt_id:
                optional = fields[6 : fields.index(b"-")]
                return any(o.startswith(b"shared:") for o in optional)
    return False
