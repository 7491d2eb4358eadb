"""User and group id maps of user namespaces: value types and the /proc writers.

Layer 2: imports the standard library, :mod:`nsprim.errors`,
:mod:`nsprim.syscalls` and :mod:`nsprim._procfs` only.

An :class:`IdMap` is what ``/proc/PID/uid_map`` and ``gid_map`` hold
(user_namespaces(7), "User and group ID mappings"): up to 340 lines
(``UID_GID_MAP_MAX_EXTENTS``, Linux 4.15; 5 before) of ``inside outside
count``. The kernel rejects the whole write when two extents overlap on
either side, when a range wraps past 2**32 - 1, or when an id is -1
(``map_write()`` in kernel/user_namespace.c). :class:`IdMap` checks the same
rules when it is built, so a bad map is a ``ValueError`` before any process
is started and never a half-written namespace.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Optional, Union

from . import _procfs
from . import syscalls as _sc
from .errors import reraise
from .flags import CloneFlags

__all__ = [
    "IdMapping",
    "IdMap",
    "MAX_EXTENTS",
    "IdMapLike",
    "write_uid_map",
    "write_gid_map",
    "write_setgroups",
    "read_uid_map",
    "read_gid_map",
    "map_root",
    "map_self_as_root",
    "newuidmap",
    "newgidmap",
    "find_map_helper",
    "subid_range",
]

#: Most lines one uid_map/gid_map may hold (UID_GID_MAP_MAX_EXTENTS, Linux 4.15).
MAX_EXTENTS = 340

# An id is a u32, and (u32)-1 is the "invalid id" that the kernel refuses.
_ID_LIMIT = 0xFFFFFFFF


def _uint(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


@dataclass(frozen=True)
class IdMapping:
    """One extent of an id map: *count* ids from *inside* map to ids from *outside*.

    *inside* is the first id as seen in the child user namespace, *outside*
    the first id in the namespace of the process that reads or writes the
    map (user_namespaces(7)).

    Raises:
        TypeError: a field is not an int.
        ValueError: an id is negative or 4294967295 (-1 as a u32), *count*
            is below 1, or a range runs past 4294967294.
    """

    __slots__ = ("count", "inside", "outside")

    inside: int
    outside: int
    count: int

    def __post_init__(self) -> None:
        for name in ("inside", "outside", "count"):
            _uint(getattr(self, name), name)
        if self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        for name in ("inside", "outside"):
            first = getattr(self, name)
            if first < 0 or first >= _ID_LIMIT:
                raise ValueError(f"{name} must be an id from 0 to {_ID_LIMIT - 1}, got {first}")
            # map_write(): (first + count) must not wrap the u32, and ids up to
            # first + count - 1 must stay below (u32)-1.
            if first + self.count > _ID_LIMIT:
                raise ValueError(
                    f"{name} range {first}..{first + self.count - 1} runs past "
                    f"{_ID_LIMIT - 1} (count={self.count})"
                )

    @property
    def inside_end(self) -> int:
        """One past the last inside id."""
        return self.inside + self.count

    @property
    def outside_end(self) -> int:
        """One past the last outside id."""
        return self.outside + self.count

    def format(self) -> str:
        """Return the ``"inside outside count"`` line (no newline)."""
        return f"{self.inside} {self.outside} {self.count}"


def _overlap(a_first: int, a_end: int, b_first: int, b_end: int) -> bool:
    return a_first < b_end and b_first < a_end


@dataclass(frozen=True)
class IdMap:
    """A whole uid or gid map: 1 to 340 non-overlapping :class:`IdMapping` extents.

    Build one with ``IdMap([IdMapping(0, 1000, 1)])``, :meth:`single`,
    :meth:`parse` or :meth:`coerce`. It validates itself, so every
    ``IdMap`` can be written to ``/proc/PID/uid_map`` as it is.

    Raises:
        TypeError: an extent is not an :class:`IdMapping`.
        ValueError: no extents, more than 340, or two extents overlap inside
            or outside.
    """

    __slots__ = ("mappings",)

    mappings: tuple[IdMapping, ...]

    def __post_init__(self) -> None:
        if isinstance(self.mappings, (str, bytes)) or not isinstance(self.mappings, Iterable):
            raise TypeError(f"mappings must be a sequence of IdMapping, got {self.mappings!r}")
        items = tuple(self.mappings)
        object.__setattr__(self, "mappings", items)
        for i, m in enumerate(items):
            if not isinstance(m, IdMapping):
                raise TypeError(f"mappings[{i}] must be an IdMapping, got {type(m).__name__} {m!r}")
        if not items:
            raise ValueError("an id map needs at least one extent, got none")
        if len(items) > MAX_EXTENTS:
            raise ValueError(
                f"an id map holds at most {MAX_EXTENTS} extents "
                f"(UID_GID_MAP_MAX_EXTENTS), got {len(items)}"
            )
        for side in ("inside", "outside"):
            ordered = sorted(items, key=lambda m: getattr(m, side))
            for a, b in zip(ordered, ordered[1:]):
                a_first = getattr(a, side)
                b_first = getattr(b, side)
                if _overlap(a_first, a_first + a.count, b_first, b_first + b.count):
                    raise ValueError(
                        f"id map extents overlap on the {side} side: "
                        f"{a.format()!r} and {b.format()!r}"
                    )

    # --- constructors ---------------------------------------------------------
    @classmethod
    def single(cls, inside: int, outside: int, count: int = 1) -> IdMap:
        """Return the map of one extent (what an unprivileged writer may write)."""
        return cls((IdMapping(inside, outside, count),))

    @classmethod
    def parse(cls, text: Union[str, bytes]) -> IdMap:
        """Parse the text of a uid_map/gid_map file (one ``inside outside count`` per line).

        Raises:
            ValueError: a line is not three decimal integers, or the map is invalid.
        """
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        if not isinstance(text, str):
            raise TypeError(f"text must be str or bytes, got {type(text).__name__} {text!r}")
        out = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 3 or not all(f.isdigit() for f in fields):
                raise ValueError(
                    f"id map line {lineno} must be 'inside outside count', got {line!r}"
                )
            out.append(IdMapping(int(fields[0]), int(fields[1]), int(fields[2])))
        return cls(tuple(out))

    @classmethod
    def coerce(cls, value: IdMapLike, name: str = "id map") -> IdMap:
        """Return *value* as an :class:`IdMap`.

        Accepts an ``IdMap``, one ``IdMapping``, the text of a map file, or a
        sequence of ``IdMapping``/``(inside, outside, count)`` triples.

        Raises:
            TypeError, ValueError: naming *name* and echoing the value.
        """
        if isinstance(value, IdMap):
            return value
        if isinstance(value, IdMapping):
            return cls((value,))
        try:
            if isinstance(value, (str, bytes)):
                return cls.parse(value)
            if isinstance(value, Iterable):
                items: list[IdMapping] = []
                for item in value:
                    if isinstance(item, IdMapping):
                        items.append(item)
                    elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
                        if len(item) != 3:
                            raise ValueError(
                                f"each extent must be (inside, outside, count), got {item!r}"
                            )
                        items.append(IdMapping(item[0], item[1], item[2]))
                    else:
                        raise TypeError(
                            "each extent must be an IdMapping or an (inside, outside, count) "
                            f"tuple, got {type(item).__name__} {item!r}"
                        )
                return cls(tuple(items))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{name}: {err}") from None
        raise TypeError(
            f"{name} must be an IdMap, IdMapping, str or a sequence of extents, "
            f"got {type(value).__name__} {value!r}"
        )

    # --- queries ----------------------------------------------------------------
    def format(self) -> str:
        """Return the file text: one ``inside outside count`` line per extent."""
        return "".join(m.format() + "\n" for m in self.mappings)

    def to_outside(self, id: int) -> Optional[int]:
        """Return the outside id that inside id *id* maps to, or None if unmapped."""
        for m in self.mappings:
            if m.inside <= id < m.inside_end:
                return m.outside + (id - m.inside)
        return None

    def to_inside(self, id: int) -> Optional[int]:
        """Return the inside id that outside id *id* maps to, or None if unmapped."""
        for m in self.mappings:
            if m.outside <= id < m.outside_end:
                return m.inside + (id - m.outside)
        return None

    def __len__(self) -> int:
        return len(self.mappings)

    def __iter__(self) -> Iterator[IdMapping]:
        return iter(self.mappings)

    def __str__(self) -> str:
        return self.format()


IdMapLike = Union[IdMap, IdMapping, str, bytes, Iterable[Union[IdMapping, Sequence[int]]]]

SetgroupsValue = Literal["allow", "deny"]


def _write_proc(pid: int, name: str, data: str, hint: str) -> None:
    path = _procfs.pid_path(pid, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        reraise(err, f"open {path}", pid, hint, filename=path)
    try:
        # The kernel takes a map in exactly one write(2) (map_write: "*ppos != 0"
        # is EINVAL), so never let a short write split it.
        n = os.write(fd, data.encode("ascii"))
        if n != len(data):
            raise OSError(errno.EIO, f"short write to {path}: {n} of {len(data)} bytes", path)
    except OSError as err:
        reraise(err, f"write {path}", pid, hint, filename=path)
    finally:
        os.close(fd)


def _check_pid(pid: object) -> int:
    p = _uint(pid, "pid")
    if p <= 0:
        raise ValueError(f"pid must be a positive process id, got {p}")
    return p


def write_uid_map(pid: int, idmap: IdMapLike) -> None:
    """Write the uid map of the user namespace that process *pid* is in.

    Writes ``/proc/PID/uid_map`` in one write(2); Linux 3.8, 340 extents
    since 4.15. Allowed once per namespace. Without CAP_SETUID in the parent
    user namespace only one line mapping the writer's own euid is accepted.

    Raises:
        TypeError, ValueError: *idmap* is not a valid map (before any write).
        AccessDenied: the kernel refused (EPERM): a second write, or an
            unprivileged writer mapping ids other than its own.
        NoSuchProcess: *pid* is gone.
    """
    m = IdMap.coerce(idmap, "uid_map")
    _write_proc(
        _check_pid(pid),
        "uid_map",
        m.format(),
        "a uid map can be written once; without CAP_SETUID only one line "
        "mapping the writer's euid is allowed",
    )


def write_gid_map(pid: int, idmap: IdMapLike) -> None:
    """Write the gid map of the user namespace that process *pid* is in.

    Writes ``/proc/PID/gid_map`` in one write(2); Linux 3.8. An
    unprivileged writer must first write ``deny`` to ``setgroups``
    (Linux 3.19, CVE-2014-8989) and may map only its own egid.

    Raises:
        TypeError, ValueError: *idmap* is not a valid map (before any write).
        AccessDenied: the kernel refused (EPERM).
        NoSuchProcess: *pid* is gone.
    """
    m = IdMap.coerce(idmap, "gid_map")
    _write_proc(
        _check_pid(pid),
        "gid_map",
        m.format(),
        "a gid map can be written once; without CAP_SETGID write 'deny' to "
        "setgroups first and map only the writer's egid",
    )


def write_setgroups(pid: int, value: SetgroupsValue) -> None:
    """Write ``allow`` or ``deny`` to ``/proc/PID/setgroups``.

    Linux 3.19. Must happen before the gid map is written; ``deny`` is
    permanent for the namespace and its descendants.

    Raises:
        ValueError: *value* is neither "allow" nor "deny".
        AccessDenied: the gid map was already written (EPERM).
        NoSuchProcess: *pid* is gone.
    """
    if value not in ("allow", "deny"):
        raise ValueError(f"setgroups must be 'allow' or 'deny', got {value!r}")
    _write_proc(
        _check_pid(pid),
        "setgroups",
        value,
        "setgroups can only be changed before gid_map is written",
    )


def _check_opt_pid(pid: object) -> Optional[int]:
    return None if pid is None else _check_pid(pid)


def read_uid_map(pid: Optional[int] = None) -> Optional[IdMap]:
    """Return the uid map of *pid*'s user namespace (default: self), or None if unset.

    Raises:
        TypeError/ValueError: *pid* is not a positive int.
        NoSuchProcess: *pid* does not exist.
    """
    pid = _check_opt_pid(pid)
    text = _procfs.read_text(_procfs.pid_path(pid, "uid_map"), pid)
    return IdMap.parse(text) if text.strip() else None


def read_gid_map(pid: Optional[int] = None) -> Optional[IdMap]:
    """Return the gid map of *pid*'s user namespace (default: self), or None if unset.

    Raises:
        TypeError/ValueError: *pid* is not a positive int.
        NoSuchProcess: *pid* does not exist.
    """
    pid = _check_opt_pid(pid)
    text = _procfs.read_text(_procfs.pid_path(pid, "gid_map"), pid)
    return IdMap.parse(text) if text.strip() else None


def map_root(pid: int, uid: Optional[int] = None, gid: Optional[int] = None) -> None:
    """Map root of *pid*'s user namespace to *uid*/*gid* outside, as ``unshare --map-root-user``.

    Writes ``setgroups`` "deny", then ``uid_map`` "0 UID 1" and ``gid_map``
    "0 GID 1" (user_namespaces(7): an unprivileged writer may map only its
    own ids, and its gid_map needs setgroups denied first). Linux 3.19.

    Args:
        pid: a process in the new, still unmapped user namespace.
        uid, gid: the ids outside (default: the caller's euid and egid).

    Raises:
        AccessDenied, NoSuchProcess, ValueError: as the writers below.
    """
    outside_uid = os.geteuid() if uid is None else _uint(uid, "uid")
    outside_gid = os.getegid() if gid is None else _uint(gid, "gid")
    write_setgroups(pid, "deny")
    write_uid_map(pid, IdMap.single(0, outside_uid))
    write_gid_map(pid, IdMap.single(0, outside_gid))


def map_self_as_root(flags: int = 0) -> None:
    """unshare(2) a user namespace (plus *flags*) and be root in it, as ``unshare -r``.

    The calling process (single-threaded: unshare(CLONE_NEWUSER) refuses a
    multithreaded one with EINVAL) keeps its euid/egid outside and is uid 0
    and gid 0 inside, with every capability over the new namespaces. Use it
    in a throwaway child (:func:`nsprim.call` does it for you with
    ``map_root=True``). Linux 3.8.

    Args:
        flags: more ``CLONE_NEW*`` flags to unshare in the same call (those
            namespaces are then owned by the new user namespace).

    Raises:
        ValueError: *flags* has bits other than namespace flags.
        OSError: unshare(2) or a map write was refused.
    """
    uid, gid = os.geteuid(), os.getegid()
    _sc.unshare(int(CloneFlags.NEWUSER) | flags)
    # A process that changed its uids is not dumpable: its /proc files then
    # belong to root, and it could not write its own maps (proc(5)).
    dumpable = _sc.get_dumpable()
    if dumpable != 1:
        _sc.set_dumpable(True)
    try:
        map_root(os.getpid(), uid, gid)
    finally:
        if dumpable != 1:
            _sc.set_dumpable(False)


# --- the setuid helpers and /etc/subuid, /etc/subgid --------------------------------

#: Where shadow's subordinate id files live (subuid(5), subgid(5)).
SUBID_FILES = {"uid": "/etc/subuid", "gid": "/etc/subgid"}


def find_map_helper(name: str) -> str:
    """Return the path of ``newuidmap`` or ``newgidmap`` from ``$PATH``.

    These setuid-root programs (shadow's ``uidmap`` package) are the only way
    an unprivileged process can map more than its own id: the kernel lets a
    writer without CAP_SETUID in the parent user namespace write just one
    line mapping itself (user_namespaces(7)).

    Raises:
        ValueError: *name* is neither helper.
        FileNotFoundError: not installed (``err.filename`` is *name*).
    """
    if name not in ("newuidmap", "newgidmap"):
        raise ValueError(f"name must be 'newuidmap' or 'newgidmap', got {name!r}")
    for d in (os.environ.get("PATH") or os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        errno.ENOENT, f"{os.strerror(errno.ENOENT)} (install the uidmap package)", name
    )


def _run_helper(name: str, pid: int, idmap: IdMapLike, kind: str) -> None:
    m = IdMap.coerce(idmap, kind)
    target = _check_pid(pid)
    exe = find_map_helper(name)
    argv = [exe, str(target)]
    for line in m:
        argv += [str(line.inside), str(line.outside), str(line.count)]
    # its own complaints go to our stderr, as from unshare(1)
    child = os.posix_spawn(exe, argv, dict(os.environ))
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        from .errors import AccessDenied

        why = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
        raise AccessDenied(
            name,
            pid=pid,
            hint=f"{name} refused the map ({why}; its own message says why): only your "
            f"own id and the ranges {SUBID_FILES[kind[:3]]} gives you can be mapped",
        )


def newuidmap(pid: int, idmap: IdMapLike) -> None:
    """Write the uid map of *pid*'s user namespace with the setuid helper newuidmap(1).

    newuidmap allows the ranges ``/etc/subuid`` gives the caller, and its
    own uid; the map is written as one write(2) by the helper, as
    :func:`write_uid_map` would (Linux 3.8). Runs ``newuidmap PID INSIDE
    OUTSIDE COUNT...`` (the one program nsprim runs itself) and waits.

    Raises:
        TypeError, ValueError: *idmap* is not a valid map (before anything runs).
        FileNotFoundError: newuidmap is not installed.
        AccessDenied: newuidmap refused (its own message is on stderr).
    """
    _run_helper("newuidmap", pid, idmap, "uid_map")


def newgidmap(pid: int, idmap: IdMapLike) -> None:
    """Write the gid map of *pid*'s user namespace with the setuid helper newgidmap(1).

    As :func:`newuidmap`, for ``/etc/subgid``; newgidmap also writes
    ``setgroups`` itself ("deny" unless the map holds subordinate ranges),
    so do not write it first.

    Raises:
        TypeError, ValueError, FileNotFoundError, AccessDenied: as :func:`newuidmap`.
    """
    _run_helper("newgidmap", pid, idmap, "gid_map")


def subid_range(
    kind: str, uid: Optional[int] = None, path: Optional[str] = None
) -> tuple[int, int]:
    """Return ``(first, count)``: the first subordinate id range of user *uid* (default: euid).

    Reads ``/etc/subuid`` (*kind* "uid") or ``/etc/subgid`` ("gid"), or
    *path*: lines ``NAME:FIRST:COUNT`` or ``UID:FIRST:COUNT``, the first line
    naming the user (by login name, or by number) wins, as for util-linux's
    ``unshare --map-auto`` and shadow's helpers.

    Raises:
        ValueError: *kind* is neither; a matching line with a bad number.
        KeyError: *uid* has no passwd entry.
        LookupError: no line for the user (the message names user and file).
        OSError: the file can't be read.
    """
    import pwd

    if kind not in SUBID_FILES:
        raise ValueError(f"kind must be 'uid' or 'gid', got {kind!r}")
    who = os.geteuid() if uid is None else _uint(uid, "uid")
    name = pwd.getpwuid(who).pw_name
    file = path or SUBID_FILES[kind]
    with open(file, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) < 3:
                continue
            if parts[0] != name and not (parts[0].isdigit() and int(parts[0]) == who):
                continue
            try:
                first, count = int(parts[1], 10), int(parts[2], 10)
            except ValueError:
                raise ValueError(f"{file}: bad subordinate id range {line.strip()!r}") from None
            return first, count
    raise LookupError(f'no line matching user "{name}" in {file}')
