"""Targets of enter, call_in and spawn_in: pids, pidfds, processes, namespaces; and joins.

Layer 2, private: standard library and nsprim layers 0-2. :func:`resolve`
opens what a target names (validation first, nothing changed), and
:func:`join_plan` turns it into the :class:`nsprim._child.Join` a child
runs: one atomic ``setns(pidfd, mask)`` on Linux 5.8, or one setns(2) per
type in util-linux nsenter's order.
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Iterable

from . import _child
from . import syscalls as _sc
from ._fd import HasFileno, OwnedFd, fd_of
from ._options import parse_types
from .errors import NoSuchProcess, NsprimError, UnsupportedError, reraise
from .flags import CloneFlags
from .namespace import Namespace, NsType

# typing.TYPE_CHECKING without importing typing (see nsprim.process).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

    from ._options import NsSpec

__all__ = [
    "ORDER",
    "Target",
    "resolve",
    "open_target_ns",
    "differs",
    "join_plan",
    "join_each",
    "restore",
    "thread_ns_path",
    "pidfd_setns",
]

ORDER = (
    # util-linux nsenter's namespace_files[] order: user first, so that an
    # unprivileged caller gains its capabilities before the others are checked.
    NsType.USER,
    NsType.CGROUP,
    NsType.IPC,
    NsType.UTS,
    NsType.NET,
    NsType.PID,
    NsType.MNT,
    NsType.TIME,
)


def kernel_at_least(major: int, minor: int) -> bool:
    rel = os.uname().release.split("-")[0].split(".")
    try:
        return (int(rel[0]), int(rel[1])) >= (major, minor)
    except (ValueError, IndexError):
        return False


# setns(pidfd, mask), several types at once and atomically: Linux 5.8.
pidfd_setns = kernel_at_least(5, 8)


class Target:
    """A resolved target: a pidfd and pid, or one namespace fd."""

    def __init__(self) -> None:
        self.pid: Optional[int] = None
        self.pidfd: Optional[int] = None
        self.ns: Optional[Namespace] = None
        self.owned: list[OwnedFd] = []

    def close(self) -> None:
        for fd in self.owned:
            fd.close()
        self.owned.clear()


def fd_kind(fd: int) -> str:
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError as err:
        raise ValueError(f"target fd {fd} is not open ({err.strerror})") from None
    if link in ("anon_inode:[pidfd]",) or link.startswith("pidfd:"):
        return "pidfd"
    head, sep, _ = link.partition(":[")
    if sep and head in {t.value for t in NsType}:
        return "nsfs"
    raise ValueError(f"target fd {fd} is neither a pidfd nor a namespace file descriptor ({link})")


def pid_of_pidfd(fd: int) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                pid = int(line.split()[1])
                if pid <= 0:
                    raise NoSuchProcess(pid, f"pidfd {fd} refers to a process that exited")
                return pid
    raise ValueError(f"fd {fd} has no Pid in its fdinfo")


def resolve(target: object, process_types: tuple[type, ...] = ()) -> Target:
    """Open what *target* names; validation errors before any syscall that changes anything.

    *process_types* are the classes of process objects (``NsProcess``) with
    ``pid``, ``pidfd`` and ``poll()``; this module can't import them.
    """
    out = Target()
    try:
        if process_types and isinstance(target, process_types):
            proc: Any = target
            if proc.poll() is not None:
                raise NoSuchProcess(proc.pid, f"process {proc.pid} has exited")
            out.pid, out.pidfd = proc.pid, proc.pidfd
        elif isinstance(target, Namespace):
            owned = target.open()
            out.owned.append(owned)
            out.ns = target
            out.pidfd = None
        elif isinstance(target, bool):
            raise TypeError(f"target must be a pid, pidfd, NsProcess or Namespace, got {target!r}")
        elif isinstance(target, int):
            if target <= 0:
                raise ValueError(f"target pid must be positive, got {target}")
            try:
                fd = _sc.pidfd_open(target)
            except ProcessLookupError:
                raise NoSuchProcess(target) from None
            out.owned.append(OwnedFd(fd))
            out.pid, out.pidfd = target, fd
        elif isinstance(target, HasFileno):
            fd = fd_of(target, "target")
            kind = fd_kind(fd)
            if kind == "pidfd":
                out.pidfd = fd
                out.pid = pid_of_pidfd(fd)
            else:
                out.ns = Namespace.from_fd(fd)
                out.owned.append(OwnedFd(os.dup(fd)))
                os.set_inheritable(out.owned[-1].fileno(), False)
        else:
            raise TypeError(
                "target must be a pid, a pidfd, an NsProcess or a Namespace, "
                f"got {type(target).__name__} {target!r}"
            )
    except BaseException:
        out.close()
        raise
    return out


def same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def thread_ns_path(t: NsType) -> str:
    # What a child of this thread would be in: pid/time children land in *_for_children.
    name = t.value + "_for_children" if t in (NsType.PID, NsType.TIME) else t.value
    return f"/proc/thread-self/ns/{name}"


def open_target_ns(tgt: Target, types: Iterable[NsType], op: str) -> list[tuple[NsType, OwnedFd]]:
    """Open the target's namespace fds for *types* (skipping those it lacks)."""
    out: list[tuple[NsType, OwnedFd]] = []
    try:
        if tgt.ns is not None:
            out.append((tgt.ns.type, tgt.owned[0]))
            return out
        assert tgt.pid is not None and tgt.pidfd is not None
        types = list(types)
        if _by_pidfd(tgt, types, out, op):
            return out
        for t in types:
            path = f"/proc/{tgt.pid}/ns/{t.value}"
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{tgt.pid}"):
                    raise NoSuchProcess(tgt.pid) from None
                continue  # this kernel lacks the type
            except OSError as err:
                reraise(err, op, tgt.pid)
            out.append((t, OwnedFd(fd)))
        # The pid could have been recycled between pidfd_open and the opens:
        # the pidfd still being alive proves it was not.
        p = select.poll()
        p.register(tgt.pidfd, select.POLLIN)
        if p.poll(0):
            raise NoSuchProcess(tgt.pid)
    except BaseException:
        for _, owned in out:
            if owned not in tgt.owned:
                owned.close()
        raise
    return out


# PIDFD_GET_<TYPE>_NAMESPACE (Linux 6.11): None until the first try says.
_pidfd_ns_ioctls: Optional[bool] = None


def _by_pidfd(tgt: Target, types: list[NsType], out: list[tuple[NsType, OwnedFd]], op: str) -> bool:
    """Open the namespaces through the pidfd (Linux 6.11): no /proc, no pid-reuse race.

    Return False (nothing opened) where the kernel lacks the ioctls.
    """
    global _pidfd_ns_ioctls
    if _pidfd_ns_ioctls is False:
        return False
    assert tgt.pidfd is not None
    for t in types:
        try:
            fd = _sc.pidfd_get_namespace(tgt.pidfd, t.value)
        except UnsupportedError:
            if _pidfd_ns_ioctls is None and not out:
                _pidfd_ns_ioctls = False
                return False
            continue  # this kernel lacks the type (CONFIG_*_NS off)
        except ProcessLookupError:
            raise NoSuchProcess(tgt.pid or 0) from None
        except OSError as err:
            if err.errno == errno.EOPNOTSUPP:
                continue  # this kernel lacks the type
            reraise(err, op, tgt.pid)
        _pidfd_ns_ioctls = True
        out.append((t, OwnedFd(fd)))
    return True


def differs(t: NsType, fd: Union[OwnedFd, int]) -> bool:
    try:
        mine = os.stat(thread_ns_path(t))
    except OSError:
        return True
    return not same(mine, os.fstat(fd if isinstance(fd, int) else fd.fileno()))


def join_each(
    todo: list[tuple[NsType, OwnedFd]],
    joined: list[tuple[NsType, OwnedFd]],
    saved: list[tuple[NsType, OwnedFd]],
    pid: Optional[int],
) -> None:
    """setns one type at a time; on a failure restore the ones already joined, then raise."""
    for t, fd in todo:
        try:
            _sc.setns(fd, int(t.flag))
        except OSError as err:
            restore(joined, saved)
            joined.clear()
            reraise(err, "setns", pid)
        joined.append((t, fd))


def restore(joined: list[tuple[NsType, OwnedFd]], saved: list[tuple[NsType, OwnedFd]]) -> None:
    back = dict(saved)
    first: Optional[BaseException] = None
    for t, _ in reversed(joined):
        try:
            _sc.setns(back[t], int(t.flag))
        except OSError as err:
            first = first or err
    if first is not None:
        raise NsprimError(
            f"could not move the thread back into its previous namespaces: {first}"
        ) from first


def join_plan(
    tgt: Target,
    types: Optional[Iterable[NsSpec]],
    extra: dict[str, Any],
    overrides: Iterable[tuple[NsType, int]] = (),
    in_place: bool = False,
) -> tuple[_child.Join, list[tuple[NsType, OwnedFd]]]:
    """Plan the joins: the target's namespaces of *types*, and *overrides* (type, nsfs fd).

    A type in *overrides* is taken from its fd, not from the target; without a
    process or namespace target only the overrides are joined. *in_place*:
    the caller itself joins and execs (no second child for a pid namespace).
    """
    over = dict(overrides)
    has_target = tgt.pidfd is not None or tgt.ns is not None
    if types is not None:
        wanted = parse_types(types, "types")
    else:
        wanted = frozenset(NsType) if has_target else frozenset()
    if tgt.ns is not None:
        if types is not None and wanted != {tgt.ns.type}:
            raise ValueError(
                f"target is a {tgt.ns.type.value} namespace; types must be None or "
                f"({tgt.ns.type.value!r},), got {sorted(t.value for t in wanted)}"
            )
        wanted = frozenset({tgt.ns.type})
    order = [t for t in ORDER if t in wanted and t not in over]
    theirs = open_target_ns(tgt, order, "setns") if order and has_target else []
    # Re-joining one's own user namespace is EINVAL (setns(2)); skip every
    # namespace the child would already be in.
    todo = [(t, fd) for t, fd in theirs if differs(t, fd)]
    mask = 0
    for t, _ in todo:
        mask |= int(t.flag)
    atomic = tgt.pidfd is not None and pidfd_setns and bool(todo)
    fds = [] if atomic else [(int(t.flag), fd.fileno()) for t, fd in todo]
    hop = bool(mask & int(CloneFlags.NEWPID))
    for t in ORDER:
        if t in over and differs(t, over[t]):
            fds.append((int(t.flag), over[t]))
            hop = hop or t is NsType.PID
    hop = hop and not in_place
    join = _child.Join(
        pidfd=tgt.pidfd if tgt.pidfd is not None else -1,
        mask=mask,
        fds=tuple(fds),
        atomic=atomic,
        hop=hop,
        **extra,
    )
    return join, theirs
