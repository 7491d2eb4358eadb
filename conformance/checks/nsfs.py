"""Cross-cutting nsfs checks: NS-01 to NS-22.

Layer: conformance checks. Imports public nsprim names (``nsprim.syscalls``, ``nsprim.idmap``,
``nsprim.flags``, ``nsprim.namespace``), the conformance registry, and
:mod:`.._libc` for setns(2) with NS-05's invalid masks, which
:func:`nsprim.syscalls.setns` rightly refuses before the kernel sees them.

Namespace identity is the nsfs ``(st_dev, st_ino)`` pair plus ``NS_GET_ID``
where the kernel has it (the kernel's ``in_same_namespace()`` in
``pidfd_setns_test.c``). Namespace types come from the one
:class:`~nsprim.namespace.NsType` table; the checks loop over it instead of
repeating a body per type.

For pid and time namespaces, unshare(2) changes only what the caller's
*children* get, so the namespace a process "created" or "joined" of those
types is read from ``pid_for_children``/``time_for_children``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import stat
import threading
import time
from collections.abc import Sequence
from typing import Callable, Optional, Union

from nsprim import UnsupportedError, idmap, syscalls
from nsprim.flags import CloneFlags, MountFlags
from nsprim.namespace import NsType

from .. import _libc
from ..registry import ChildHandle, Context, Needs, Skip, check
from ._common import WALL, attempt, errname, idle, ns_ident, setns_path, unshare
from ._procs import clone_run, fork_run

__all__: list[str] = []

NEWUSER = int(CloneFlags.NEWUSER)
NEWNS = int(CloneFlags.NEWNS)
NEWPID = int(CloneFlags.NEWPID)
NEWTIME = int(CloneFlags.NEWTIME)
NEWNET = int(CloneFlags.NEWNET)
NEWUTS = int(CloneFlags.NEWUTS)
NEWIPC = int(CloneFlags.NEWIPC)
NEWCGROUP = int(CloneFlags.NEWCGROUP)
CLONE_VM = int(CloneFlags.VM)

#: Operations for the checks that create namespaces of every type (nsfs checks have no
#: type of their own for the runner to require): each refused here is a SKIP naming it.
_EVERY_TYPE = tuple(f"unshare.{t.value}" for t in NsType)

#: A namespace's identity: nsfs (st_dev, st_ino) and NS_GET_ID (None where unsupported).
Ident = tuple[int, int, Optional[int]]


def _types() -> list[NsType]:
    """The namespace types this kernel has (a /proc/self/ns entry each)."""
    return [t for t in NsType if os.path.exists(f"/proc/self/ns/{t.value}")]


def _entry(t: NsType) -> str:
    """The /proc/PID/ns entry naming the namespace a process made or joined of type *t*."""
    return f"{t.value}_for_children" if t in (NsType.PID, NsType.TIME) else t.value


def _entries() -> list[str]:
    """Every /proc/PID/ns entry this kernel has, *_for_children included."""
    return sorted(os.listdir("/proc/self/ns"))


def _ident(path: str) -> Ident:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return ns_ident(fd)
    finally:
        os.close(fd)


def _identities(pid: Union[int, str] = "self", entries: Sequence[str] = ()) -> dict[str, Ident]:
    """Identities of *pid*'s namespaces (``"thread-self"`` for the calling thread)."""
    base = f"/proc/{pid}/ns"
    return {e: _ident(f"{base}/{e}") for e in (entries or _entries())}


def _same(a: Ident, b: Ident) -> bool:
    """Whether two identities name one namespace: same (st_dev, st_ino), same id if both have it."""
    return a[:2] == b[:2] and (a[2] is None or b[2] is None or a[2] == b[2])


def _distinct(a: Ident, b: Ident) -> bool:
    """Whether two identities name different namespaces, by (st_dev, st_ino) and by id alike."""
    return a[:2] != b[:2] and (a[2] is None or b[2] is None or a[2] != b[2])


#: Write ends of pipes a helper keeps open for its lifetime (see :func:`_hold`).
_HELD: list[int] = []


def _hold(flags: int) -> Optional[int]:
    """Hold the namespaces this helper unshared with *flags*; start a new pid ns's init.

    /proc/PID/ns/pid_for_children can't be opened before the new pid namespace
    has a first process (ENOENT; the kernel's pidns_for_children_get()), so
    make one. It is clone3(CLONE_PARENT)ed, so the check (the helper's parent)
    reaps it; it closes everything but a pipe that only this helper can write
    to and exits on EOF, that is when the helper dies.

    Returns:
        The init's pid, for the check to reap (:func:`_reap`), or None.
    """
    if not flags & NEWPID:
        return None
    r, w = os.pipe2(os.O_CLOEXEC)
    # clone3(2) wants exit_signal 0 with CLONE_PARENT, which makes it a "clone"
    # child: only waitpid with __WALL (or __WCLONE) sees it, see _reap().
    pid = clone_run(int(CloneFlags.PARENT), _wait_for_helper, r, pdeathsig=False, exit_signal=0)
    os.close(r)
    _HELD.append(w)
    return pid


def _wait_for_helper(r: int) -> None:
    """The init of a held pid namespace: close all but *r*, exit at EOF on it."""
    os.closerange(3, r)
    os.closerange(r + 1, 1 << 16)
    os.read(r, 1)


def _reap(pid: int) -> None:
    """Reap *pid* (a :func:`_hold` init: it exits once its helper is gone)."""
    os.waitpid(pid, WALL)


def _spawn_holder(ctx: Context, flags: int) -> ChildHandle:
    """Spawn a helper that unshares *flags* and holds them (see :func:`_hold`)."""
    helper = ctx.spawn_child(_hold, flags, unshare=flags)
    init = helper.recv()
    if init is not None:
        ctx.defer(_reap, init)  # cleanups run after the helpers are stopped
    return helper


def _join(path: str, nstype: int) -> dict[str, Ident]:
    """setns(2) to the namespace at *path*; return this process's identities afterwards."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, nstype)
    finally:
        os.close(fd)
    return _identities()


def _nsfs_ioctls_allowed() -> Optional[str]:
    """Probe: None when nsfs ioctls answer here, else the refusal that makes a check a SKIP.

    Checks that compare the errno of an NS_GET_*/SIOCGSKNS/PIDFD_GET_*
    ioctl must not read a seccomp filter's or an LSM's EPERM as the kernel's
    answer, so they declare this probe: it asks NS_GET_NSTYPE of the
    caller's own UTS namespace, which nothing but a policy refuses.
    (NS_GET_USERNS would not do: where the UTS namespace belongs to a user
    namespace above the caller's, as when a limit kept the sandbox from
    making its own, the kernel itself answers EPERM.)
    """
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.ns_get_nstype(fd)
    except OSError as err:
        if err.errno in (errno.EPERM, errno.EACCES, errno.ENOSYS):
            return (
                f"ioctl(2) on nsfs files is refused here ({errname(err)}): "
                "a seccomp filter or an LSM"
            )
        raise
    finally:
        os.close(fd)
    return None


# -- NS-01 identity ------------------------------------------------------------


@check(
    "nsfs.identity",
    catalogue="NS-01",
    level="MUST",
    anchors=(
        "runtime-tools linux_ns_nopath/_path/_itype",
        "selftest nsid_test",
        "selftest pidfd_setns_test in_same_namespace",
    ),
    needs=Needs(
        userns=True,
        min_kernel=(3, 8),
        kconfig=("NAMESPACES",),
        ops=_EVERY_TYPE,
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def identity(ctx: Context) -> None:
    """A namespace is its nsfs (st_dev, st_ino): new ones differ, joined ones match, others stay.

    For each namespace type this kernel has, a helper unshares that one type:
    its namespace of that type must differ from the parent's (by (st_dev,
    st_ino) and by NS_GET_ID where the kernel has it), while every other
    entry of /proc/PID/ns stays identical to the parent's; a third process
    that setns(2)es to the helper's namespace must then have exactly the
    helper's identity. Control: the helper does not unshare, so its
    namespace is the parent's.
    """
    ours = _identities()
    for t in _types():
        created = _entry(t)
        helper = _spawn_holder(ctx, ctx.isolate(int(t.flag)))
        theirs = _identities(helper.pid)
        ctx.expect(
            _distinct(theirs[created], ours[created]),
            f"a new {t.value} namespace differs from the parent's ({created})",
            f"not {ours[created]}",
            theirs[created],
        )
        inherited = {e: v for e, v in theirs.items() if e != created}
        ctx.expect_equal(
            inherited,
            {e: v for e, v in ours.items() if e != created},
            f"the other namespaces of a process that unshared only {t.value}",
        )
        joined = ctx.in_child(_join, helper.ns_path(created), int(t.flag))
        ctx.expect(
            _same(joined[created], theirs[created]),
            f"{created} of a process that setns(2)ed to the helper's {t.value} namespace",
            theirs[created],
            joined[created],
        )
        helper.stop()


# -- NS-02 type-checked join ---------------------------------------------------


def _typed_join(path: str, t: NsType, wrong: int) -> dict[str, object]:
    """NS_GET_NSTYPE, then setns(2) with type *wrong*, then with the right type."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        seen: dict[str, object] = {"nstype": int(syscalls.ns_get_nstype(fd))}
        seen["setns(wrong type)"] = attempt(syscalls.setns, fd, wrong)
        seen["setns(-1)"] = _raw_setns(fd, -1)  # LTP setns01 "invalid ns_type"
        seen["setns(right type)"] = attempt(syscalls.setns, fd, int(t.flag))
        seen["joined"] = _same(_ident(f"/proc/self/ns/{_entry(t)}"), ns_ident(fd))
        return seen
    finally:
        os.close(fd)


def _non_ns_calls(foreign: bool) -> dict[str, str]:
    """ioctl(NS_GET_*) and setns(2) on a memfd and a directory (on nsfs fds when not *foreign*)."""
    if foreign:
        memfd = os.memfd_create("nsprim-not-a-namespace", os.MFD_CLOEXEC)
        dirfd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        memfd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        dirfd = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        seen = {"setns(memfd, 0)": attempt(syscalls.setns, memfd, 0)}
        # ioctl_ns07: each NS_GET_* request on a non-namespace fd is ENOTTY.
        requests: dict[str, Callable[[int], object]] = {
            "NS_GET_USERNS": lambda fd: os.close(syscalls.ns_get_userns(fd)),
            "NS_GET_PARENT": lambda fd: os.close(syscalls.ns_get_parent(fd)),
            "NS_GET_NSTYPE": syscalls.ns_get_nstype,
            "NS_GET_OWNER_UID": syscalls.ns_get_owner_uid,
        }
        for name, call in requests.items():
            seen[f"{name}(directory)"] = attempt(call, dirfd)
        seen["NS_GET_NSTYPE(memfd)"] = attempt(syscalls.ns_get_nstype, memfd)
        return seen
    finally:
        os.close(memfd)
        os.close(dirfd)


@check(
    "nsfs.typed_join",
    catalogue="NS-02",
    level="MUST",
    anchors=(
        "LTP setns01",
        "LTP ioctl_ns07",
        "runtime-tools linux_ns_path_type",
        "selftest pidfd_setns_test setns_einval",
    ),
    needs=Needs(
        userns=True,
        min_kernel=(4, 11),
        kconfig=("NAMESPACES",),
        ops=("setns", *_EVERY_TYPE),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=10.0,
)
def typed_join(ctx: Context) -> None:
    """setns(2) refuses an nsfs fd of another type (EINVAL) and fds that are no namespace at all.

    A helper creates one namespace of every type. For each, a process gets
    NS_GET_NSTYPE (must be that type's CLONE_NEW* value), then setns(2) with
    the next type's flag and with -1 (both EINVAL), then with the right flag
    (joins: same identity). setns(memfd, 0) must fail with EINVAL and every NS_GET_*
    ioctl on a directory, and NS_GET_NSTYPE on the memfd, with ENOTTY.
    Control: the preconditions are removed (the flag matches; the fds are
    nsfs files), so the calls succeed.
    """
    mismatch = not ctx.control
    types = _types()
    all_flags = 0
    for t in types:
        all_flags |= int(t.flag)
    helper = _spawn_holder(ctx, all_flags)
    for i, t in enumerate(types):
        wrong = int(types[(i + 1) % len(types)].flag) if mismatch else int(t.flag)
        seen = ctx.in_child(_typed_join, helper.ns_path(_entry(t)), t, wrong)
        ctx.expect_equal(seen["nstype"], int(t.flag), f"NS_GET_NSTYPE of a {t.value} namespace")
        ctx.expect_equal(
            seen["setns(wrong type)"], "EINVAL", f"setns(2) of a {t.value} fd with another type"
        )
        ctx.expect_equal(seen["setns(-1)"], "EINVAL", f"setns(2) of a {t.value} fd with type -1")
        ctx.expect_equal(seen["setns(right type)"], "ok", f"setns(2) of a {t.value} fd, its type")
        ctx.expect(seen["joined"], f"the process is in the {t.value} namespace it joined")

    seen_fds = ctx.in_child(_non_ns_calls, mismatch)
    ctx.expect_equal(seen_fds.pop("setns(memfd, 0)"), "EINVAL", "setns(memfd, 0)")
    ctx.expect_equal(
        seen_fds,
        {name: "ENOTTY" for name in seen_fds},
        "NS_GET_* ioctls on fds that are not namespaces",
    )


# -- NS-03 relations -----------------------------------------------------------


def _related(ioctl: Callable[[int], int], path: str) -> Union[Ident, str]:
    """Apply an NS_GET_USERNS/NS_GET_PARENT *ioctl* to *path*; the result's identity or errno."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            got = ioctl(fd)
        except OSError as err:
            return errname(err)
        try:
            return ns_ident(got)
        finally:
            os.close(got)
    finally:
        os.close(fd)


def _relations(hpid: int, hierarchical: Sequence[str], flat: Sequence[str]) -> dict[str, object]:
    """Walk NS_GET_USERNS/NS_GET_PARENT from the helper's namespaces and from our own."""
    base = f"/proc/{hpid}/ns"
    seen: dict[str, object] = {}
    for e in [*hierarchical, *flat]:
        if e != "user":
            seen[f"owner of {e}"] = _related(syscalls.ns_get_userns, f"{base}/{e}")
    seen["owner of user"] = _related(syscalls.ns_get_userns, f"{base}/user")
    for e in hierarchical:
        seen[f"parent of {e}"] = _related(syscalls.ns_get_parent, f"{base}/{e}")
    for e in flat:
        seen[f"parent of {e}"] = _related(syscalls.ns_get_parent, f"{base}/{e}")
    # At and above the caller's own scope (selftest nsfs/pidns.c, owner.c; LTP ioctl_ns01/04).
    seen["parent of our pid"] = _related(syscalls.ns_get_parent, "/proc/self/ns/pid")
    seen["parent of our user"] = _related(syscalls.ns_get_parent, "/proc/self/ns/user")
    seen["owner of our user"] = _related(syscalls.ns_get_userns, "/proc/self/ns/user")
    return seen


def _owner_from_new_userns(path: str) -> str:
    """owner.c: after unshare(CLONE_NEWUSER), a sibling's namespace's owner is out of scope."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # before: /proc/PID needs ptrace rights
    try:
        syscalls.unshare(NEWUSER)
        return attempt(lambda: os.close(syscalls.ns_get_userns(fd)))
    finally:
        os.close(fd)


@check(
    "nsfs.relations",
    catalogue="NS-03",
    level="MUST",
    anchors=(
        "selftest nsfs/owner.c",
        "selftest nsfs/pidns.c",
        "LTP ioctl_ns01",
        "LTP ioctl_ns02",
        "LTP ioctl_ns04",
        "LTP ioctl_ns05",
        "LTP ioctl_ns06",
        "ioctl_ns(2)",
    ),
    needs=Needs(
        userns=True,
        min_kernel=(4, 9),
        kconfig=("NAMESPACES", "USER_NS", "PID_NS"),
        ops=_EVERY_TYPE,
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def relations(ctx: Context) -> None:
    """NS_GET_USERNS returns the owning user ns; NS_GET_PARENT walks pid/user ns up to the caller.

    A helper unshares a user namespace together with every other type. From
    outside: NS_GET_USERNS of each of its namespaces must be its user
    namespace, whose own owner (and NS_GET_PARENT) is ours; NS_GET_PARENT of
    its pid namespace is ours; NS_GET_PARENT of a non-hierarchical namespace
    is EINVAL; NS_GET_PARENT of our own pid and user namespaces and
    NS_GET_USERNS of our own user namespace are EPERM (out of scope); and a
    process in a new user namespace of its own gets EPERM for the owner of
    the helper's UTS namespace. Control: the helper unshares nothing, so its
    user namespace is ours and its parent is out of scope.
    """
    types = _types()
    flags = 0
    for t in types:
        flags |= int(t.flag)
    helper = _spawn_holder(ctx, ctx.isolate(flags))
    hierarchical = [_entry(t) for t in types if t.hierarchical]
    flat = [_entry(t) for t in types if not t.hierarchical]
    ours = _identities()
    theirs = _identities(helper.pid)
    seen = ctx.in_child(_relations, helper.pid, hierarchical, flat)

    ctx.expect_equal(seen["parent of user"], ours["user"], "NS_GET_PARENT of the helper's user ns")
    ctx.expect_equal(seen["owner of user"], ours["user"], "NS_GET_USERNS of the helper's user ns")
    ctx.expect_equal(
        seen["parent of pid_for_children"], ours["pid"], "NS_GET_PARENT of the helper's new pid ns"
    )
    for e in [*hierarchical, *flat]:
        if e != "user":
            ctx.expect_equal(seen[f"owner of {e}"], theirs["user"], f"NS_GET_USERNS of its {e}")
    for e in flat:
        ctx.expect_equal(seen[f"parent of {e}"], "EINVAL", f"NS_GET_PARENT of a {e} namespace")
    for what in ("parent of our pid", "parent of our user", "owner of our user"):
        ctx.expect_equal(seen[what], "EPERM", f"{what} namespace (out of the caller's scope)")
    ctx.expect_equal(
        ctx.in_child(_owner_from_new_userns, helper.ns_path("uts")),
        "EPERM",
        "NS_GET_USERNS of the helper's uts ns from a sibling user namespace",
    )


# -- NS-04 persistence ---------------------------------------------------------

#: Types whose lifetime NS-04 follows: a synchronous and two deferred frees.
_PERSIST_TYPES = (NsType.UTS, NsType.IPC, NsType.NET)
_HOLDERS = ("fd", "bind mount")
#: Seconds to wait for a released namespace to be freed (ipc and net free from a workqueue).
_RELEASE_WAIT = 2.0


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _try_unshare(flag: int) -> str:
    return attempt(syscalls.unshare, flag)


def _unshare_when_free(flag: int) -> None:
    """unshare(2) *flag*, waiting while the previous namespace of the type is still being freed."""
    deadline = time.monotonic() + _RELEASE_WAIT
    while True:
        try:
            syscalls.unshare(flag)
            return
        except OSError as err:
            if err.errno != errno.ENOSPC or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _persist_one(
    ctx: Context, t: NsType, holder: str, bind_target: str, early_release: bool
) -> dict[str, object]:
    """Hold one member's namespace by *holder*, let the member exit, re-enter, release."""
    flag = int(t.flag)
    member = ctx.spawn_child(_unshare_when_free, flag)
    member.recv()
    target = member.ns_path(t.value)
    want = _ident(target)
    fd = -1
    if holder == "fd":
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        path = f"/proc/{os.getpid()}/fd/{fd}"
    else:
        syscalls.mount(target, bind_target, None, int(MountFlags.BIND))
        path = bind_target

    def release() -> None:
        if holder == "fd":
            os.close(fd)
        else:
            syscalls.umount(bind_target)

    if early_release:
        release()
    member.stop()  # the last (only) member exits
    seen: dict[str, object] = {"want": want}
    try:
        seen["re-entered"] = _same(ctx.in_child(_join, path, flag)[t.value], want)
    except OSError as err:  # nothing to open (fd gone) or not a namespace file (EINVAL)
        seen["re-entered"] = errname(err)
    # max_<type>_namespaces is 1: the held namespace still counts, so a second is refused.
    seen["unshare while held"] = ctx.in_child(_try_unshare, flag)
    if not early_release:
        release()
    deadline = time.monotonic() + _RELEASE_WAIT
    while True:
        seen["unshare after release"] = got = ctx.in_child(_try_unshare, flag)
        if got == "ok" or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)


def _persistence(ctx: Context, tmpdir: str, early_release: bool) -> dict[str, object]:
    """Run NS-04 in this process, which has just unshared CLONE_NEWUSER|CLONE_NEWNS."""
    syscalls.mount("none", "/", None, int(MountFlags.REC | MountFlags.PRIVATE))
    out: dict[str, object] = {}
    for t in _PERSIST_TYPES:
        # Counted per owning user namespace, which is new and ours (user_namespaces(7)).
        _write(f"/proc/sys/user/max_{t.value}_namespaces", "1")
        for holder in _HOLDERS:
            bind_target = os.path.join(tmpdir, f"holder-{t.value}")
            with contextlib.suppress(FileExistsError):
                os.close(os.open(bind_target, os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            out[f"{t.value} by {holder}"] = _persist_one(ctx, t, holder, bind_target, early_release)
    return out


@check(
    "nsfs.persistence",
    catalogue="NS-04",
    level="MUST",
    anchors=("util-linux unshare(1) =file", "lsns(8) -P", "selftest namespaces/siocgskns_test"),
    needs=Needs(
        userns=True,
        min_kernel=(4, 9),
        kconfig=("USER_NS", "UTS_NS", "IPC_NS", "NET_NS"),
        ops=("setns", "unshare.uts", "unshare.ipc", "unshare.net"),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=8.0,
)
def persistence(ctx: Context) -> None:
    """An open nsfs fd or a bind mount of /proc/PID/ns/X keeps a memberless namespace alive.

    Inside a user namespace of its own (where /proc/sys/user/max_<type>_
    namespaces can be set to 1, so a live namespace of that type blocks the
    next unshare), for UTS, IPC and net namespaces and for both holders: a
    member unshares the type, the namespace is held by an fd or by a bind
    mount, and the member exits. setns(2) through the holder must re-enter
    the very namespace (same identity) and a second unshare must still be
    refused (ENOSPC); after close/umount the unshare must succeed again (the
    namespace is freed; up to 2 s for the deferred frees). Control: the
    holder is released before the member exits, so there is nothing to
    re-enter.
    """
    seen = ctx.in_child(
        _persistence, ctx, ctx.tmpdir, ctx.control, unshare=NEWUSER | NEWNS, timeout=7.0
    )
    for what, one in seen.items():
        ctx.expect_equal(one["re-entered"], True, f"{what}: setns(2) into the memberless namespace")
        ctx.expect_equal(one["unshare while held"], "ENOSPC", f"{what}: a second ns while held")
        ctx.expect_equal(one["unshare after release"], "ok", f"{what}: a second ns after release")


# -- NS-05 pidfd multi-join ----------------------------------------------------


def _switch_timens() -> None:
    """Move the calling process into a new time namespace (selftest pidfd_setns_test)."""
    unshare(NEWTIME)
    setns_path("/proc/self/ns/time_for_children", NEWTIME)


def _read_within(fd: int, seconds: float) -> bytes:
    """Read one byte from *fd* if it comes within *seconds*, else return b""."""
    ready, _, _ = select.select([fd], [], [], seconds)
    return os.read(fd, 1) if ready else b""


def _start_target(flags: int, timens: bool) -> tuple[int, int, int]:
    """clone3(2) a process into *flags*; return (pid, pidfd, the fd that keeps it waiting).

    Unlike unshare(2), clone3 makes CLONE_NEWPID the child's *active* pid
    namespace, which is what setns(pidfd, CLONE_NEWPID) joins. The child
    moves on into a new time namespace when *timens*, reports ready, then
    waits until that fd is closed or it is killed.
    """
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    try:
        result = syscalls.clone3(flags, pidfd=True)
    except BaseException:
        for fd in (hold_r, hold_w, ready_r, ready_w):
            os.close(fd)
        raise
    assert isinstance(result, tuple)
    pid, pidfd = result
    if pid == 0:
        code = 1
        try:
            os.close(hold_w)
            os.close(ready_r)
            if timens:
                _switch_timens()
            os.write(ready_w, b"1")
            os.read(hold_r, 1)  # EOF when the check is done with us
            code = 0
        finally:
            os._exit(code)
    os.close(hold_r)
    os.close(ready_w)
    try:
        ready = _read_within(ready_r, 5.0)
    finally:
        os.close(ready_r)
    if ready != b"1":
        _stop_target(pid, pidfd, hold_w)
        raise ChildProcessError(f"the clone3 target {pid} did not get ready")
    return pid, pidfd, hold_w


def _stop_target(pid: int, pidfd: int, hold_w: int) -> None:
    """Kill the target through its pidfd and reap it."""
    with contextlib.suppress(ProcessLookupError):
        syscalls.pidfd_send_signal(pidfd, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(pidfd)
    os.close(hold_w)


#: Masks setns(pidfd, mask) must refuse with EINVAL (selftest pidfd_setns_test invalid_flags).
_INVALID_MASKS = {
    "0": 0,
    "-1": -1,
    "CLONE_VM": CLONE_VM,
    "CLONE_NEWUSER|CLONE_VM": NEWUSER | CLONE_VM,
}


def _raw_setns(fd: int, nstype: int) -> str:
    """setns(2) straight to the kernel, unvalidated; "ok" or the errno name."""
    return attempt(_libc.setns_unchecked, fd, nstype)


def _setns_exited() -> str:
    """setns(pidfd) to a process that has exited but is not yet reaped; "ok" or errno name."""
    result = syscalls.clone3(NEWUSER | NEWNET, pidfd=True)
    assert isinstance(result, tuple)
    pid, pidfd = result
    if pid == 0:
        os._exit(0)
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return attempt(syscalls.setns, pidfd, NEWUSER | NEWNET)
    finally:
        os.waitpid(pid, 0)
        os.close(pidfd)


def _pidfd_joins(target: int, mask: int) -> dict[str, object]:
    """In a fresh process: invalid masks, ESRCH from an exited process, then the real join."""
    pidfd = syscalls.pidfd_open(target)
    try:
        seen: dict[str, object] = {
            "invalid": {name: _raw_setns(pidfd, m) for name, m in _INVALID_MASKS.items()}
        }
        seen["before"] = before = _identities()
        seen["exited"] = _setns_exited()
        seen["unchanged after ESRCH"] = _identities() == before
        seen["join"] = attempt(syscalls.setns, pidfd, mask)
        seen["after"] = _identities()
        return seen
    finally:
        os.close(pidfd)


def _partial_join(target: int, mask: int) -> dict[str, object]:
    """With a second thread alive, setns(pidfd, mask) whose last type, time, must be refused."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(5.0,))
    other.start()
    pidfd = syscalls.pidfd_open(target)
    try:
        before = _identities("thread-self")
        result = attempt(syscalls.setns, pidfd, mask)
        return {"result": result, "unchanged": _identities("thread-self") == before}
    finally:
        os.close(pidfd)
        stop.set()
        other.join()


def _joined_entry(t: NsType) -> str:
    # Joining a pid namespace changes only pid_for_children; time changes both entries.
    return "pid_for_children" if t is NsType.PID else t.value


@check(
    "nsfs.pidfd_multi_join",
    catalogue="NS-05",
    level="MUST",
    anchors=("selftest pidfd_setns_test", "setns(2)", "CPython os.setns", "rustix setns"),
    needs=Needs(
        userns=True,
        min_kernel=(5, 8),
        kconfig=("NAMESPACES", "USER_NS", "PID_NS"),
        ops=("setns", "clone3", *_EVERY_TYPE),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def pidfd_multi_join(ctx: Context) -> None:
    """setns(pidfd, mask) joins every listed namespace of the target at once, or none.

    A target is clone3(2)d into new user, mount, cgroup, IPC, UTS, pid and
    net namespaces and moves itself into a new time namespace. A fresh
    process must get EINVAL for the masks 0, -1, CLONE_VM and
    CLONE_NEWUSER|CLONE_VM, ESRCH for a pidfd of an exited (unreaped)
    process with nothing changed, and then join all of the target's
    namespaces with one setns(pidfd, all types): each must differ from where
    it started and equal the target's (its own pid namespace stays, as
    pid_for_children moves). Where time namespaces exist, a process with a
    second thread asking for UTS, IPC, net, cgroup and time must get EUSERS
    (time is validated last) with none of the others joined. Control: the
    target is made without new namespaces, so joining changes nothing.
    """
    types = _types()
    mask = 0
    for t in types:
        mask |= int(t.flag)
    flags = ctx.isolate(mask & ~NEWTIME)
    timens = NsType.TIME in types and bool(ctx.isolate(NEWTIME))
    pid, pidfd, hold = _start_target(flags, timens)
    ctx.defer(_stop_target, pid, pidfd, hold)
    target = _identities(pid)

    seen = ctx.in_child(_pidfd_joins, pid, mask)
    ctx.expect_equal(
        seen["invalid"], {name: "EINVAL" for name in _INVALID_MASKS}, "setns(pidfd, bad mask)"
    )
    ctx.expect_equal(seen["exited"], "ESRCH", "setns(pidfd of an exited process)")
    ctx.expect(
        seen["unchanged after ESRCH"], "no namespace changed by the ESRCH setns", True, False
    )
    before, after = seen["before"], seen["after"]
    for t in types:
        e = _joined_entry(t)
        ctx.expect(
            _distinct(before[e], target[t.value]),
            f"the target's {t.value} namespace differs from the joiner's ({e})",
            f"not {before[e]}",
            target[t.value],
        )
    ctx.expect_equal(seen["join"], "ok", "setns(pidfd, every type)")
    for t in types:
        e = _joined_entry(t)
        ctx.expect(
            _same(after[e], target[t.value]),
            f"{e} after setns(pidfd, every type) is the target's {t.value} namespace",
            target[t.value],
            after[e],
        )
    ctx.expect_equal(after["pid"], before["pid"], "the joiner's own pid namespace")

    if NsType.TIME in types:
        partial = (mask & (NEWUTS | NEWIPC | NEWNET | NEWCGROUP)) | NEWTIME
        seen = ctx.in_child(_partial_join, pid, partial)
        ctx.expect_equal(seen["result"], "EUSERS", "multithreaded setns(pidfd, ...|CLONE_NEWTIME)")
        ctx.expect(seen["unchanged"], "no namespace joined by the refused setns", True, False)


# -- NS-06 thread scope --------------------------------------------------------

_THREAD_TYPES = (NsType.NET, NsType.UTS, NsType.IPC, NsType.CGROUP)


def _run(fn: Callable[[], None], threaded: bool) -> None:
    """Run *fn* in a new thread and wait for it, or in the calling thread."""
    if not threaded:
        fn()
        return
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=body)
    th.start()
    th.join(5.0)
    if th.is_alive():
        raise TimeoutError("a helper thread did not finish within 5 s")
    if errors:
        raise errors[0]


def _thread_scope(threaded: bool) -> dict[str, object]:
    """One thread unshares, another setns(2)es to its namespaces; report every view."""
    entries = [t.value for t in _THREAD_TYPES]
    flags = 0
    for t in _THREAD_TYPES:
        flags |= int(t.flag)
    seen: dict[str, object] = {"main before": _identities("thread-self", entries)}
    fds: list[int] = []

    def unsharer() -> None:
        syscalls.unshare(flags)
        seen["unsharer"] = _identities("thread-self", entries)
        fds.extend(
            os.open(f"/proc/thread-self/ns/{e}", os.O_RDONLY | os.O_CLOEXEC) for e in entries
        )

    def joiner() -> None:
        for fd, t in zip(fds, _THREAD_TYPES):
            syscalls.setns(fd, int(t.flag))
        seen["joiner"] = _identities("thread-self", entries)

    try:
        _run(unsharer, threaded)
        _run(joiner, threaded)
    finally:
        for fd in fds:
            os.close(fd)
    seen["main after"] = _identities("thread-self", entries)
    seen["process"] = _identities("self", entries)
    return seen


#: Joins refused while another thread exists, and the errno (setns(2)).
_SINGLE_THREADED = {NsType.MNT: "EINVAL", NsType.USER: "EINVAL", NsType.TIME: "EUSERS"}


def _refused_joins(paths: dict[str, str], threaded: bool) -> dict[str, str]:
    """setns(2) to each of *paths* (type name → nsfs path), with a second thread if *threaded*."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(5.0,))
    if threaded:
        other.start()
    try:
        seen = {}
        for name, path in paths.items():
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                seen[name] = attempt(syscalls.setns, fd, int(NsType(name).flag))
            finally:
                os.close(fd)
        return seen
    finally:
        stop.set()
        if threaded:
            other.join()


@check(
    "nsfs.thread_scoped",
    catalogue="NS-06",
    level="MUST",
    anchors=("setns(2)", "unshare(2)", "vishvananda/netns#1", "moby#5926", "pyroute2#697"),
    needs=Needs(
        userns=True,
        min_kernel=(5, 6),
        kconfig=("USER_NS", "NET_NS", "UTS_NS", "IPC_NS", "CGROUPS", "TIME_NS"),
        ops=("setns", *_EVERY_TYPE),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def thread_scoped(ctx: Context) -> None:
    """setns/unshare of net, uts, ipc and cgroup move only the calling thread; mnt/user/time refuse.

    In a fresh process, one thread unshares net, UTS, IPC and cgroup
    namespaces and a second setns(2)es to them: each must then differ from
    the main thread's (read from /proc/thread-self/ns and /proc/self/ns),
    which must be unchanged. With a second thread alive, setns(2) to a mount
    or user namespace must fail with EINVAL and to a time namespace with
    EUSERS. Control: everything runs in the main thread with no other
    thread, so the main thread moves and the joins succeed.
    """
    threaded = not ctx.control
    seen = ctx.in_child(_thread_scope, threaded)
    before = seen["main before"]
    for t in _THREAD_TYPES:
        e = t.value
        ctx.expect(
            _distinct(seen["unsharer"][e], before[e]),
            f"the unsharing thread's {e} namespace is new",
            f"not {before[e]}",
            seen["unsharer"][e],
        )
        ctx.expect(
            _same(seen["joiner"][e], seen["unsharer"][e]),
            f"the joining thread's {e} namespace is the one it setns(2)ed to",
            seen["unsharer"][e],
            seen["joiner"][e],
        )
    ctx.expect_equal(seen["main after"], before, "the main thread's namespaces (thread-self)")
    ctx.expect_equal(seen["process"], before, "/proc/self/ns of the process")

    targets = NEWUSER | NEWNS | NEWTIME
    helper = ctx.spawn_child(idle, unshare=targets)
    helper.recv()
    paths = {t.value: helper.ns_path(_entry(t)) for t in _SINGLE_THREADED}
    ctx.expect_equal(
        ctx.in_child(_refused_joins, paths, threaded),
        {t.value: err for t, err in _SINGLE_THREADED.items()},
        "setns(2) to mnt/user/time namespaces with a second thread alive",
    )


# -- shared by NS-07 onwards -----------------------------------------------------


def _open_ns(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _fd_ident(get: Callable[[int], int], fd: int) -> Union[Ident, str]:
    """Apply an ioctl *get* returning a new nsfs fd to *fd*; its identity, or the errno name."""
    try:
        got = get(fd)
    except OSError as err:
        return errname(err)
    try:
        return ns_ident(got)
    finally:
        os.close(got)


def _pidfd_join(target: int, mask: int, entries: Sequence[str]) -> dict[str, object]:
    """setns(pidfd of *target*, *mask*) from this process; its *entries* before and after."""
    pidfd = syscalls.pidfd_open(target)
    try:
        before = _identities("self", entries)
        result = attempt(syscalls.setns, pidfd, mask)
        return {"result": result, "before": before, "after": _identities("self", entries)}
    finally:
        os.close(pidfd)


def _expect_would_move(
    ctx: Context, before: dict[str, Ident], target: dict[str, Ident], what: str
) -> None:
    """The premise of a refused join: each joined namespace differs from the joiner's own."""
    for e, ident in target.items():
        ctx.expect(
            _distinct(before[e], ident),
            f"{what}: the target's {e} namespace differs from the joiner's",
            f"not {before[e]}",
            ident,
        )


# -- NS-07 a pidfd join needs every right ----------------------------------------

_SPLIT = ("uts", "ipc", "net")


def _split_owners() -> None:
    """In a helper that unshared CLONE_NEWNET: a user ns of its own owning new UTS and IPC ns.

    Its net namespace stays owned by the user namespace it started in.
    """
    unshare(NEWUSER | NEWUTS | NEWIPC)


def _join_split(target: int, mask: int) -> dict[str, object]:
    """Enter *target*'s user namespace by its nsfs file, then setns(pidfd, *mask*)."""
    setns_path(f"/proc/{target}/ns/user", NEWUSER)
    return _pidfd_join(target, mask, _SPLIT)


@check(
    "nsfs.pidfd_join_needs_every_right",
    catalogue="NS-07",
    level="MUST",
    anchors=("setns(2)", "selftest pidfd_setns_test", "user_namespaces(7)"),
    needs=Needs(
        userns=True,
        min_kernel=(5, 8),
        kconfig=("USER_NS", "UTS_NS", "IPC_NS", "NET_NS"),
        ops=("setns", "unshare.uts", "unshare.ipc", "unshare.net"),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def pidfd_join_needs_every_right(ctx: Context) -> None:
    """setns(pidfd, mask) joins nothing, with EPERM, if one listed namespace is out of reach.

    A target unshares a net namespace, then a user namespace together with
    UTS and IPC namespaces, so it owns its UTS and IPC namespaces but not
    its net namespace. A joiner enters the target's user namespace (full
    capabilities there, none over the net namespace's owner) and asks
    setns(pidfd, CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET): the UTS and IPC
    joins are allowed and validated first, the net join is not, so the call
    must fail with EPERM and leave the joiner's UTS, IPC and net namespaces
    as they were. Control: the mask leaves CLONE_NEWNET out, so the call
    succeeds and the joiner moves.
    """
    target = ctx.spawn_child(_split_owners, unshare=NEWNET)
    target.recv()
    theirs = _identities(target.pid, _SPLIT)
    mask = NEWUTS | NEWIPC | (0 if ctx.control else NEWNET)
    seen = ctx.in_child(_join_split, target.pid, mask)
    _expect_would_move(ctx, seen["before"], theirs, "setns(pidfd, UTS|IPC|NET)")
    ctx.expect_equal(
        seen["result"], "EPERM", "setns(pidfd, UTS|IPC|NET) with no right over the net namespace"
    )
    ctx.expect_equal(
        seen["after"], seen["before"], "the joiner's uts/ipc/net namespaces after the refused setns"
    )


# -- NS-08 sibling user namespaces -----------------------------------------------


def _sibling_joins(target: int, own_userns: bool) -> dict[str, str]:
    """From a user namespace of our own (if *own_userns*), join *target*'s namespaces."""
    fds = {e: _open_ns(f"/proc/{target}/ns/{e}") for e in ("uts", "net", "user")}
    pidfd = syscalls.pidfd_open(target)
    try:
        if own_userns:
            unshare(NEWUSER)  # a sibling of the target's: full capabilities, over itself only
        seen = {
            "setns(uts fd)": attempt(syscalls.setns, fds["uts"], NEWUTS),
            "setns(net fd)": attempt(syscalls.setns, fds["net"], NEWNET),
            "setns(pidfd, UTS|NET)": attempt(syscalls.setns, pidfd, NEWUTS | NEWNET),
            "setns(pidfd, USER|UTS|NET)": attempt(syscalls.setns, pidfd, NEWUSER | NEWUTS | NEWNET),
            "setns(user fd)": attempt(syscalls.setns, fds["user"], NEWUSER),
        }
        return seen
    finally:
        os.close(pidfd)
        for fd in fds.values():
            os.close(fd)


@check(
    "nsfs.sibling_userns_unjoinable",
    catalogue="NS-08",
    level="MUST",
    anchors=("setns(2)", "user_namespaces(7)"),
    needs=Needs(
        userns=True,
        min_kernel=(5, 8),
        kconfig=("USER_NS", "UTS_NS", "NET_NS"),
        ops=("setns", "unshare.uts", "unshare.net"),
    ),
    timeout=5.0,
)
def sibling_userns_unjoinable(ctx: Context) -> None:
    """Namespaces owned by a sibling user namespace can't be joined, by nsfs fd or pidfd (EPERM).

    A target unshares a user namespace with UTS and net namespaces. A joiner
    opens the target's nsfs files and a pidfd, then unshares a user
    namespace of its own (a sibling of the target's, where it has every
    capability): setns(2) to the UTS, net and user namespaces by nsfs fd and
    setns(pidfd, UTS|NET) and setns(pidfd, USER|UTS|NET) must each fail with
    EPERM. Control: the joiner stays in the parent user namespace, whose
    capabilities cover the target's, so the joins succeed.
    """
    target = ctx.spawn_child(idle, unshare=NEWUSER | NEWUTS | NEWNET)
    target.recv()
    seen = ctx.in_child(_sibling_joins, target.pid, not ctx.control)
    ctx.expect_equal(
        seen,
        {call: "EPERM" for call in seen},
        "joins from a sibling user namespace",
    )


# -- NS-09 a pidfd join into the caller's own user namespace -------------------


_SAME_USERNS = ("user", "uts", "ipc", "net")


@check(
    "nsfs.pidfd_join_own_userns",
    catalogue="NS-09",
    level="MUST",
    anchors=("setns(2)", "user_namespaces(7)", "util-linux nsenter(1)"),
    needs=Needs(
        min_kernel=(5, 8),
        kconfig=("USER_NS", "UTS_NS", "IPC_NS", "NET_NS"),
        ops=("setns", "unshare.uts", "unshare.ipc", "unshare.net"),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def pidfd_join_own_userns(ctx: Context) -> None:
    """setns(pidfd, CLONE_NEWUSER|...) to a target in the caller's user namespace is EINVAL.

    A target unshares UTS, IPC and net namespaces but stays in the check's
    user namespace. A joiner asks setns(pidfd, USER|UTS|IPC|NET): joining
    the user namespace one is already in is refused (setns(2): no regaining
    capabilities by re-entering), and the whole call with it, so it must
    fail with EINVAL and leave every namespace of the joiner unchanged (a
    tool such as nsenter --all must leave CLONE_NEWUSER out itself).
    Control: the mask leaves CLONE_NEWUSER out, so the call succeeds.
    """
    target = ctx.spawn_child(idle, unshare=NEWUTS | NEWIPC | NEWNET)
    target.recv()
    theirs = _identities(target.pid, _SAME_USERNS)
    mask = NEWUTS | NEWIPC | NEWNET | (0 if ctx.control else NEWUSER)
    seen = ctx.in_child(_pidfd_join, target.pid, mask, _SAME_USERNS)
    ctx.expect(
        _same(seen["before"]["user"], theirs["user"]),
        "the target is in the joiner's user namespace",
        theirs["user"],
        seen["before"]["user"],
    )
    _expect_would_move(
        ctx, seen["before"], {e: theirs[e] for e in _SAME_USERNS[1:]}, "setns(pidfd, USER|...)"
    )
    ctx.expect_equal(seen["result"], "EINVAL", "setns(pidfd, USER|UTS|IPC|NET), same user ns")
    ctx.expect_equal(seen["after"], seen["before"], "the joiner's namespaces after the EINVAL")


# -- NS-10 SIOCGSKNS rights ------------------------------------------------------


def _netns_of(fd: int) -> str:
    """SIOCGSKNS on *fd*: "ok" (closing the nsfs fd it returns) or the errno name."""
    try:
        os.close(syscalls.socket_netns(fd))
    except OSError as err:
        return errname(err)
    return "ok"


def _socket_ns_rights(refuse: bool) -> dict[str, str]:
    """SIOCGSKNS on a non-socket, across a user namespace boundary and without capabilities."""
    outer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    r, w = os.pipe2(os.O_CLOEXEC)
    socks = [outer]
    try:
        seen = {"SIOCGSKNS(pipe)": _netns_of(r if refuse else outer.fileno())}
        if refuse:
            unshare(NEWUSER)  # every capability, but over its own user namespace only
        seen["SIOCGSKNS(socket of the parent's netns)"] = _netns_of(outer.fileno())
        unshare(NEWNET)
        inner = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        socks.append(inner)
        seen["SIOCGSKNS(own socket)"] = _netns_of(inner.fileno())
        if refuse:
            syscalls.drop_capabilities()
        seen["SIOCGSKNS(own socket, no capabilities)"] = _netns_of(inner.fileno())
        return seen
    finally:
        os.close(r)
        os.close(w)
        for s in socks:
            s.close()


@check(
    "nsfs.siocgskns_needs_net_admin",
    catalogue="NS-10",
    level="MUST",
    anchors=("selftest namespaces/siocgskns_test.c", "ioctl_ns(2)"),
    needs=Needs(
        userns=True,
        min_kernel=(4, 9),
        kconfig=("USER_NS", "NET_NS"),
        ops=("unshare.net",),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def siocgskns_needs_net_admin(ctx: Context) -> None:
    """SIOCGSKNS needs CAP_NET_ADMIN over the socket's network namespace (EPERM) and a socket.

    In a fresh process: SIOCGSKNS on a pipe must fail with ENOTTY; after
    unsharing a user namespace (every capability, but in a child of the
    socket's namespace's owner) SIOCGSKNS on a socket made before must fail
    with EPERM; on a socket of a net namespace it then creates it must work,
    and fail with EPERM again once the process dropped its capabilities.
    Control: the preconditions are removed (a socket instead of the pipe,
    no user namespace, capabilities kept), so every call succeeds.
    """
    seen = ctx.in_child(_socket_ns_rights, not ctx.control)
    ctx.expect_equal(
        seen,
        {
            "SIOCGSKNS(pipe)": "ENOTTY",
            "SIOCGSKNS(socket of the parent's netns)": "EPERM",
            "SIOCGSKNS(own socket)": "ok",
            "SIOCGSKNS(own socket, no capabilities)": "EPERM",
        },
        "SIOCGSKNS results",
    )


# -- NS-11 NS_GET_OWNER_UID is for user namespaces -------------------------------


def _owner_uids(paths: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, path in paths.items():
        fd = _open_ns(path)
        try:
            out[name] = attempt(syscalls.ns_get_owner_uid, fd)
        finally:
            os.close(fd)
    return out


@check(
    "nsfs.owner_uid_user_only",
    catalogue="NS-11",
    level="MUST",
    anchors=("LTP ioctl_ns03", "ioctl_ns(2)"),
    needs=Needs(
        userns=True,
        min_kernel=(4, 11),
        kconfig=("NAMESPACES",),
        ops=_EVERY_TYPE,
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def owner_uid_user_only(ctx: Context) -> None:
    """NS_GET_OWNER_UID answers for a user namespace and refuses every other type with EINVAL.

    A helper creates one namespace of every type this kernel has; then
    NS_GET_OWNER_UID on each of its nsfs files must fail with EINVAL, except
    on the user namespace's, where it succeeds. Control: every call is made
    on the user namespace's file, so none fails.
    """
    flags = 0
    for t in _types():
        flags |= int(t.flag)
    helper = _spawn_holder(ctx, flags)
    paths = {t.value: helper.ns_path("user" if ctx.control else _entry(t)) for t in _types()}
    ctx.expect_equal(
        ctx.in_child(_owner_uids, paths),
        {e: "ok" if e == "user" else "EINVAL" for e in paths},
        "NS_GET_OWNER_UID per namespace type",
    )


# -- NS-12 a held namespace keeps its owners alive -------------------------------


def _nested_owner(control: bool) -> None:
    """Make user ns B (mapped) and C inside it; C owns a new UTS ns (the control's is older)."""
    uid, gid = os.geteuid(), os.getegid()
    if control:
        unshare(NEWUTS)  # owned by the check's user namespace
    unshare(NEWUSER)
    idmap.map_root(os.getpid(), uid, gid)  # so that a nested user namespace may be made
    unshare(NEWUSER | (0 if control else NEWUTS))


def _owner_chain(fd: int) -> dict[str, object]:
    """NS_GET_USERNS of nsfs *fd*, NS_GET_PARENT of that, and a setns(2) into the owner."""
    seen: dict[str, object] = {"owner": _fd_ident(syscalls.ns_get_userns, fd)}
    try:
        owner = syscalls.ns_get_userns(fd)
    except OSError as err:
        seen["parent of owner"] = seen["join owner"] = errname(err)
        return seen
    try:
        seen["parent of owner"] = _fd_ident(syscalls.ns_get_parent, owner)
        seen["join owner"] = attempt(syscalls.setns, owner, NEWUSER)
    finally:
        os.close(owner)
    return seen


def _parent_of(path: str) -> Union[Ident, str]:
    fd = _open_ns(path)
    try:
        return _fd_ident(syscalls.ns_get_parent, fd)
    finally:
        os.close(fd)


@check(
    "nsfs.owner_outlives_members",
    catalogue="NS-12",
    level="MUST",
    anchors=("ioctl_ns(2)", "user_namespaces(7)", "lsns(8) -P", "lxkns"),
    needs=Needs(
        userns=True,
        min_kernel=(4, 9),
        kconfig=("USER_NS", "UTS_NS"),
        ops=("setns", "unshare.uts"),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def owner_outlives_members(ctx: Context) -> None:
    """A held namespace keeps its owning user namespace, and that one's parent, alive and usable.

    A helper creates user namespace B, then C inside it together with a UTS
    namespace (owned by C). The check notes C and C's parent B, opens the
    UTS namespace's nsfs file and lets the helper exit: no process is left
    in B, C or the UTS namespace. Through the held fd, NS_GET_USERNS must
    still return C, NS_GET_PARENT of that B (same identities), and setns(2)
    into C must work. Control: the helper's UTS namespace is created before
    its user namespaces, so its owner is the check's user namespace.
    """
    helper = ctx.spawn_child(_nested_owner, ctx.control)
    helper.recv()
    inner = _ident(helper.ns_path("user"))
    middle = ctx.in_child(_parent_of, helper.ns_path("user"))
    fd = _open_ns(helper.ns_path("uts"))
    ctx.defer(os.close, fd)
    helper.stop()
    seen = ctx.in_child(_owner_chain, fd)
    ctx.expect_equal(seen["owner"], inner, "NS_GET_USERNS of the held UTS namespace")
    ctx.expect_equal(seen["parent of owner"], middle, "NS_GET_PARENT of its owner")
    ctx.expect_equal(seen["join owner"], "ok", "setns(2) into the memberless owner")


# -- NS-13 joins refused while the fs_struct is shared ---------------------------


def _start_sharer(share_fs: bool) -> tuple[int, int]:
    """clone3(2) a process that shares our fs_struct (CLONE_FS) if *share_fs*; it waits.

    Returns its pid and the write end of a pipe whose closing lets it exit.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        result = syscalls.clone3(int(CloneFlags.FS) if share_fs else 0)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    if result == 0:
        try:
            os.close(w)
            os.read(r, 1)
        finally:
            os._exit(0)
    assert isinstance(result, int)
    os.close(r)
    return result, w


def _joins_while_sharing(target: int, share_fs: bool) -> dict[str, str]:
    """setns(2) to *target*'s mount and user namespaces while another process shares our fs."""
    mnt = _open_ns(f"/proc/{target}/ns/mnt")
    user = _open_ns(f"/proc/{target}/ns/user")
    pidfd = syscalls.pidfd_open(target)
    try:
        sharer, release = _start_sharer(share_fs)
        try:
            seen = {
                "setns(mnt fd)": attempt(syscalls.setns, mnt, NEWNS),
                "setns(pidfd, CLONE_NEWNS)": attempt(syscalls.setns, pidfd, NEWNS),
                "setns(user fd)": attempt(syscalls.setns, user, NEWUSER),
            }
        finally:
            os.close(release)
            os.waitpid(sharer, 0)
        # Alone again, the very same join is allowed: the refusal was the sharing.
        seen["setns(mnt fd) once alone"] = attempt(syscalls.setns, mnt, NEWNS)
        return seen
    finally:
        for fd in (mnt, user, pidfd):
            os.close(fd)


@check(
    "nsfs.shared_fs_join_refused",
    catalogue="NS-13",
    level="MUST",
    anchors=("setns(2)", "clone(2) CLONE_FS", "user_namespaces(7)"),
    needs=Needs(
        userns=True,
        min_kernel=(5, 8),
        kconfig=("USER_NS",),
        ops=("setns", "clone3", "unshare.mnt"),
    ),
    timeout=5.0,
)
def shared_fs_join_refused(ctx: Context) -> None:
    """setns(2) to a mount or user namespace fails with EINVAL while the fs_struct is shared.

    A target unshares user and mount namespaces. A joiner clone3(2)s a
    process with CLONE_FS (they share root, cwd and umask), then asks
    setns(2) to the target's mount namespace by nsfs fd and by pidfd and to
    its user namespace: each must fail with EINVAL, since moving one of two
    processes that share an fs_struct into another mount namespace (or
    capability scope) is impossible. Once the sharer has exited, the same
    join to the mount namespace must succeed. Control: the second process
    is cloned without CLONE_FS, so every join succeeds.
    """
    target = ctx.spawn_child(idle, unshare=NEWUSER | NEWNS)
    target.recv()
    ctx.expect_equal(
        ctx.in_child(_joins_while_sharing, target.pid, not ctx.control),
        {
            "setns(mnt fd)": "EINVAL",
            "setns(pidfd, CLONE_NEWNS)": "EINVAL",
            "setns(user fd)": "EINVAL",
            "setns(mnt fd) once alone": "ok",
        },
        "joins while a CLONE_FS sibling shares the joiner's fs_struct",
    )


# -- NS-14 mount namespace files can't form a loop -------------------------------


def _bind_ns(kind: str, pid: Union[int, str], target: str) -> str:
    return attempt(syscalls.mount, f"/proc/{pid}/ns/{kind}", target, None, int(MountFlags.BIND))


def _touch(path: str) -> str:
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    return path


def _second_binds_first(
    kind: str, first: int, target: str, wfd: int, rfd: int, others: Sequence[int]
) -> None:
    """In a forked child: a second new mount namespace binds *first*'s nsfs file of *kind*.

    *wfd* carries the result; the child returns when *rfd* reaches EOF. It
    first closes *others*, the parent's ends of those pipes.
    """
    for fd in others:
        os.close(fd)
    unshare(NEWNS)
    syscalls.mount("none", "/", None, int(MountFlags.REC | MountFlags.PRIVATE))
    os.write(wfd, _bind_ns(kind, first, target).encode())
    os.read(rfd, 1)  # EOF: the first namespace is done with us


def _ns_file_binds(tmpdir: str, kind: str) -> dict[str, object]:
    """In a new mount namespace: bind its own nsfs file of *kind*, and swap with a second one."""
    syscalls.mount("none", "/", None, int(MountFlags.REC | MountFlags.PRIVATE))
    seen: dict[str, object] = {
        "its own file, in itself": _bind_ns(kind, "self", _touch(f"{tmpdir}/ns-self"))
    }
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    me = os.getpid()
    in_second = _touch(f"{tmpdir}/ns-of-first")
    pid = fork_run(
        _second_binds_first, kind, me, in_second, report_w, go_r, (report_r, go_w), pdeathsig=True
    )
    os.close(report_w)
    os.close(go_r)
    try:
        ready, _, _ = select.select([report_r], [], [], 5.0)
        got = os.read(report_r, 64).decode() if ready else ""
        # Exactly one of the two may pin the other, either way round (see NS-14).
        seen["binds across two namespaces"] = sorted(
            [got or "no answer", _bind_ns(kind, pid, _touch(f"{tmpdir}/ns-of-second"))]
        )
    finally:
        os.close(go_w)
        os.close(report_r)
        os.waitpid(pid, 0)
    return seen


@check(
    "nsfs.mntns_file_no_loop",
    catalogue="NS-14",
    level="MUST",
    anchors=("mount_namespaces(7)", "util-linux unshare(1) --mount=file", "ip-netns(8)"),
    needs=Needs(min_kernel=(3, 8), kconfig=("NAMESPACES",), ops=("unshare.mnt", "mount.tmpfs")),
    timeout=5.0,
)
def mntns_file_no_loop(ctx: Context) -> None:
    """Bind mounts of mount namespace files can't form a loop: of two, one may pin the other.

    A bind mount of /proc/PID/ns/mnt keeps that namespace alive, so the
    kernel refuses any that could make mount namespaces pin each other
    (EINVAL): in a new mount namespace, bind-mounting its own file must
    fail, and of it and a second one created afterwards, exactly one may
    bind the other's file. Which one follows the namespaces' sequence
    numbers: creation order up to Linux 6.17; since 6.18 the unified
    namespace ids, which per-CPU batches can make run backwards across
    CPUs, so the check does not assume the older one wins. Control: the
    same binds of UTS namespace files, which pin no mounts, all succeed.
    """
    kind = "uts" if ctx.control else "mnt"
    ctx.expect_equal(
        ctx.in_child(_ns_file_binds, ctx.tmpdir, kind, unshare=NEWNS),
        {"its own file, in itself": "EINVAL", "binds across two namespaces": ["EINVAL", "ok"]},
        f"bind mounts of {kind} namespace files",
    )


# -- NS-15 PIDFD_GET_*_NAMESPACE -------------------------------------------------


def _pidfd_namespaces(pidfd: int, entries: Sequence[str]) -> dict[str, Union[Ident, str]]:
    """PIDFD_GET_<TYPE>[_FOR_CHILDREN]_NAMESPACE of *pidfd* for each /proc/PID/ns entry."""
    out: dict[str, Union[Ident, str]] = {}
    for e in entries:
        name, _, children = e.partition("_for_")
        try:
            got = syscalls.pidfd_get_namespace(pidfd, name, for_children=bool(children))
        except OSError as err:
            out[e] = errname(err)
            continue
        try:
            out[e] = ns_ident(got)
        finally:
            os.close(got)
    return out


def _namespaces_of_exited() -> str:
    """PIDFD_GET_UTS_NAMESPACE of a process that has exited but is not yet reaped."""
    result = syscalls.clone3(0, pidfd=True)
    assert isinstance(result, tuple)
    pid, pidfd = result
    if pid == 0:
        os._exit(0)
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return str(_fd_ident(lambda fd: syscalls.pidfd_get_namespace(fd, "uts"), pidfd))
    finally:
        os.waitpid(pid, 0)
        os.close(pidfd)


@check(
    "nsfs.pidfd_get_namespace",
    catalogue="NS-15",
    level="MUST",
    anchors=("selftest pidfd/pidfd_setns_test.c", "util-linux nsenter(1)", "pidfd_open(2)"),
    needs=Needs(
        userns=True,
        min_kernel=(6, 11),
        kconfig=("NAMESPACES", "USER_NS", "PID_NS"),
        ops=("setns", "clone3", *_EVERY_TYPE),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def pidfd_get_namespace(ctx: Context) -> None:
    """PIDFD_GET_<TYPE>_NAMESPACE returns the target's namespace, /proc/PID/ns's, or ESRCH.

    A target is clone3(2)d into new namespaces of every type (time by moving
    itself). For each /proc/PID/ns entry, pid_for_children and
    time_for_children included, ioctl(pidfd, PIDFD_GET_..._NAMESPACE) must
    return an nsfs fd of the very namespace that entry names (nsfs identity
    and NS_GET_ID), which is not the check's own. For a process that has
    exited but is not yet reaped it must fail with ESRCH. Control: the
    target is made without new namespaces, so they are the check's own.
    """
    types = _types()
    mask = 0
    for t in types:
        mask |= int(t.flag)
    flags = ctx.isolate(mask & ~NEWTIME)
    timens = NsType.TIME in types and bool(ctx.isolate(NEWTIME))
    pid, pidfd, hold = _start_target(flags, timens)
    ctx.defer(_stop_target, pid, pidfd, hold)
    entries = _entries()
    proc = _identities(pid, entries)
    ours = _identities("self", entries)
    got = _pidfd_namespaces(pidfd, entries)
    for e in entries:
        ctx.expect_equal(got[e], proc[e], f"PIDFD_GET namespace for {e} versus /proc/PID/ns/{e}")
        ctx.expect(
            _distinct(proc[e], ours[e]),
            f"the target's {e} namespace is not the check's own",
            f"not {ours[e]}",
            proc[e],
        )
    ctx.expect_equal(
        ctx.in_child(_namespaces_of_exited), "ESRCH", "PIDFD_GET_UTS_NAMESPACE of an exited process"
    )


# -- NS-16 NS_GET_ID -------------------------------------------------------------


def _ids(flag: int, rounds: int) -> dict[str, object]:
    """NS_GET_ID of one namespace through several fds; of *rounds* namespaces made in turn."""
    entry = "uts"
    paths = ("/proc/self/ns/uts", "/proc/thread-self/ns/uts", f"/proc/{os.getpid()}/ns/uts")
    seen: dict[str, object] = {"through fds": [_ident(p)[2] for p in paths]}
    made: list[tuple[int, Optional[int]]] = []
    for _ in range(rounds):
        if flag:
            unshare(flag)  # the previous one had no other member: it is freed
        st_ino, ns_id = _ident(f"/proc/self/ns/{entry}")[1:]
        made.append((st_ino, ns_id))
    seen["made in turn"] = made
    seen["every type"] = {e: _ident(f"/proc/self/ns/{e}")[2] for e in (t.value for t in _types())}
    return seen


@check(
    "nsfs.ns_id_unique",
    catalogue="NS-16",
    level="MUST",
    anchors=("selftest namespaces/nsid_test.c", "ioctl_ns(2) NS_GET_ID", "listns(2)"),
    needs=Needs(
        min_kernel=(6, 18),
        kconfig=("NAMESPACES", "UTS_NS"),
        ops=("unshare.uts",),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def ns_id_unique(ctx: Context) -> None:
    """NS_GET_ID is one namespace's through every fd and never names two, even after reuse.

    In a fresh process NS_GET_ID must agree through three different opens of
    its UTS namespace. The process then makes four UTS namespaces in turn,
    each freed when the next replaces it (so inode numbers may be reused):
    their ids must be distinct, and the ids of the process's namespaces of
    every type must be distinct. (Not increasing: ids come from per-CPU
    batches.) Control: the process makes no new namespace, so it reads one
    id four times.
    """
    seen = ctx.in_child(_ids, ctx.isolate(NEWUTS), 4)
    fds = seen["through fds"]
    ctx.expect(
        len(set(fds)) == 1 and fds[0] is not None, "NS_GET_ID through three fds", "one id", fds
    )
    ids = [ns_id for _, ns_id in seen["made in turn"]]
    ctx.expect(
        len(set(ids)) == 4 and None not in ids,
        "NS_GET_ID of UTS namespaces made in turn: distinct",
        "4 distinct ids",
        seen["made in turn"],
    )
    every = seen["every type"]
    ctx.expect(
        len(set(every.values())) == len(every),
        "NS_GET_ID of the process's namespaces of every type: distinct",
        "distinct ids",
        every,
    )


# -- NS-17 nsfs access needs ptrace access ----------------------------------------


def _restrict(drop_caps: bool, undumpable: bool) -> None:
    """A target's setup: drop its capabilities and/or make itself non-dumpable."""
    if drop_caps:
        syscalls.drop_capabilities()
    if undumpable:
        syscalls.set_dumpable(False)


def _ns_access(target: int, pidfd_ioctl: bool) -> dict[str, str]:
    """Without capabilities: open and readlink /proc/TARGET/ns/uts, PIDFD_GET_UTS_NAMESPACE."""
    pidfd = syscalls.pidfd_open(target) if pidfd_ioctl else -1
    try:
        syscalls.drop_capabilities()
        path = f"/proc/{target}/ns/uts"
        seen = {
            "open": attempt(lambda: os.close(_open_ns(path))),
            "readlink": attempt(os.readlink, path),
        }
        if pidfd_ioctl:
            seen["PIDFD_GET_UTS_NAMESPACE"] = attempt(
                lambda: os.close(syscalls.pidfd_get_namespace(pidfd, "uts"))
            )
        return seen
    finally:
        if pidfd >= 0:
            os.close(pidfd)


@check(
    "nsfs.access_needs_ptrace",
    catalogue="NS-17",
    level="MUST",
    anchors=("proc(5) /proc/pid/ns", "namespaces(7)", "ptrace(2) PTRACE_MODE_READ"),
    needs=Needs(
        min_kernel=(3, 8),
        kconfig=("NAMESPACES", "UTS_NS"),
        ops=("unshare.uts",),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def access_needs_ptrace(ctx: Context) -> None:
    """A process's nsfs files can be opened or read only with ptrace read access to it (EACCES).

    Two targets, each in a UTS namespace of its own, deny ptrace read
    access to a prober with the same uid but no capabilities: one keeps
    capabilities the prober lacks, the other dropped its capabilities but
    made itself non-dumpable (prctl(PR_SET_DUMPABLE, 0)). For each, the
    prober must get EACCES from open(2) and readlink(2) of
    /proc/TARGET/ns/uts and, from Linux 6.11, from ioctl(pidfd,
    PIDFD_GET_UTS_NAMESPACE). Control: both targets drop their capabilities
    and stay dumpable, so the same uid suffices and every call works.
    """
    # Per target: (drop its capabilities, make itself non-dumpable); the control's give access.
    setups = {
        "capable": (ctx.control, False),
        "non-dumpable": (True, not ctx.control),
    }
    pidfd_ioctl = ctx.kernel[:2] >= (6, 11)
    for name, setup in setups.items():
        target = ctx.spawn_child(_restrict, *setup, unshare=NEWUTS)
        target.recv()
        seen = ctx.in_child(_ns_access, target.pid, pidfd_ioctl)
        ctx.expect_equal(seen, {call: "EACCES" for call in seen}, f"nsfs access to a {name} target")


# -- NS-18 pid translation between pid namespaces -------------------------------


def _nspid(pid: int) -> list[int]:
    """The NSpid line of /proc/PID/status: its pid at each level, the reader's level first."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(v) for v in line.split()[1:]]
    raise LookupError(f"no NSpid line in /proc/{pid}/status")


def _translate(ns_path: str, target: int) -> dict[str, object]:
    """Translate *target*'s pid both ways through pid namespace *ns_path*, and two refusals."""
    fd = _open_ns(ns_path)
    uts = _open_ns("/proc/self/ns/uts")
    try:
        inner = _nspid(target)[-1]
        seen: dict[str, object] = {
            "pid 1 there, here": _attempt_value(syscalls.ns_pid_from_pidns, fd, 1),
            "tgid 1 there, here": _attempt_value(syscalls.ns_pid_from_pidns, fd, 1, tgid=True),
            "target here, there": _attempt_value(syscalls.ns_pid_in_pidns, fd, target),
            "target here, there (tgid)": _attempt_value(
                syscalls.ns_pid_in_pidns, fd, target, tgid=True
            ),
            "the caller, there": _attempt_value(syscalls.ns_pid_in_pidns, fd, os.getpid()),
            "on a UTS namespace": _attempt_value(syscalls.ns_pid_from_pidns, uts, 1),
        }
        return {"seen": seen, "target inside": inner}
    finally:
        os.close(fd)
        os.close(uts)


def _attempt_value(fn: Callable[..., int], *args: object, **kwargs: object) -> Union[int, str]:
    """``fn(*args, **kwargs)``'s value, or the errno name it failed with."""
    try:
        return fn(*args, **kwargs)
    except OSError as err:
        return errname(err)


@check(
    "nsfs.pid_translation",
    catalogue="NS-18",
    level="MUST",
    anchors=("ioctl_ns(2)", "pid_namespaces(7)", "proc(5) /proc/PID/status NSpid"),
    needs=Needs(
        userns=True,
        min_kernel=(6, 11),
        kconfig=("PID_NS",),
        ops=("clone3", "unshare.pid"),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def pid_translation(ctx: Context) -> None:
    """NS_GET_{PID,TGID}_{FROM,IN}_PIDNS translate pids between a child pid namespace and ours.

    A target is clone3(2)d as the init of a new pid namespace. Through that
    namespace's nsfs fd, pid 1 there must translate to the target's pid
    here and the target's pid here to 1 there (the pid and tgid variants,
    agreeing with /proc/PID/status NSpid); the caller, which is not in that
    namespace, must get ESRCH; and a UTS namespace fd must get EINVAL.
    Control: the check's own pid namespace fd is used instead, where pids
    are not translated.
    """
    pid, pidfd, hold = _start_target(NEWPID, False)
    ctx.defer(_stop_target, pid, pidfd, hold)
    path = "/proc/self/ns/pid" if ctx.control else f"/proc/{pid}/ns/pid"
    got = ctx.in_child(_translate, path, pid)
    inner = got["target inside"]
    ctx.expect_equal(inner, 1, "the target's pid in its own namespace (NSpid)")
    ctx.expect_equal(
        got["seen"],
        {
            "pid 1 there, here": pid,
            "tgid 1 there, here": pid,
            "target here, there": inner,
            "target here, there (tgid)": inner,
            "the caller, there": "ESRCH",
            "on a UTS namespace": "EINVAL",
        },
        "pid translations through the target's pid namespace",
    )


# -- NS-19 nsfs file handles -----------------------------------------------------

#: name_to_handle_at(2): resolve the /proc/PID/ns/* magic link to the nsfs file.
_AT_SYMLINK_FOLLOW = 0x400


def _handle_of(path: str) -> tuple[int, bytes]:
    kind, data, _ = syscalls.name_to_handle_at(path, flags=_AT_SYMLINK_FOLLOW)
    return kind, data


def _open_handle(handle: tuple[int, bytes]) -> Union[Ident, str]:
    try:
        fd = syscalls.open_by_handle_at(syscalls.FD_NSFS_ROOT, *handle)
    except OSError as err:
        return errname(err)
    try:
        return ns_ident(fd)
    finally:
        os.close(fd)


def _handles(child_userns: bool) -> dict[str, object]:
    """Reopen our UTS namespace by handle; then again from a child user (and UTS) namespace."""
    home = _ident("/proc/self/ns/uts")
    handle = _handle_of("/proc/self/ns/uts")
    seen: dict[str, object] = {"home": home, "home by handle": _open_handle(handle)}
    if child_userns:
        uid, gid = os.geteuid(), os.getegid()
        unshare(NEWUSER | NEWUTS)
        idmap.map_root(os.getpid(), uid, gid)
    seen["from a child user namespace"] = _open_handle(handle)
    return seen


@check(
    "nsfs.file_handles",
    catalogue="NS-19",
    level="MUST",
    anchors=(
        "selftest namespaces/file_handle_test.c",
        "open_by_handle_at(2)",
        "util-linux nsenter(1) --net=:NSID",
    ),
    needs=Needs(
        userns=True,
        min_kernel=(6, 18),
        kconfig=("USER_NS", "UTS_NS"),
        ops=("unshare.uts",),
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def file_handles(ctx: Context) -> None:
    """An nsfs file handle reopens a namespace for a process in it, not from a child user ns.

    In a fresh process without privilege over anything else,
    name_to_handle_at(2) of /proc/self/ns/uts and
    open_by_handle_at(FD_NSFS_ROOT) must give back the very namespace (nsfs
    identity and NS_GET_ID). After the process unshares a user namespace
    (every capability, in it) and a UTS namespace, the same handle must be
    refused: ESTALE (as the kernel's selftest expects on 6.18) or EPERM, so
    a handle gives no reach the process would not have otherwise. Control:
    the process stays where it was, so the handle opens again.
    """
    seen = ctx.in_child(_handles, not ctx.control)
    ctx.expect_equal(seen["home by handle"], seen["home"], "the caller's UTS namespace by handle")
    refused = seen["from a child user namespace"]
    ctx.expect(
        refused in ("ESTALE", "EPERM"),
        "open_by_handle_at of the parent's UTS namespace from a child user namespace",
        "ESTALE or EPERM",
        refused,
    )


# -- NS-20 the initial namespaces' fixed inode numbers -----------------------------


def _in_initial_userns(tmpdir: str) -> Optional[str]:
    """None if this process is root of the initial user namespace, else why it seems not.

    A full uid_map (the runner's premise for root) can be written in a nested
    user namespace too; creating a character device needs CAP_MKNOD in the
    initial one (capable(CAP_MKNOD) in vfs_mknod), whatever the map says.
    """
    path = os.path.join(tmpdir, "nsprim-initial-userns-probe")
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as err:
        return (
            f"mknod(2) of a character device is refused ({errname(err)}): this is not the "
            "initial user namespace, whatever uid_map says"
        )
    os.unlink(path)
    return None


def _initial_inodes(ctl: bool, tmpdir: str) -> dict[str, object]:
    """Our user (and time) namespaces' inodes, then those of namespaces made here."""
    not_initial = _in_initial_userns(tmpdir)
    if not_initial:
        raise Skip(not_initial)
    user = _ident("/proc/self/ns/user")
    seen: dict[str, object] = {"user": user[1]}
    if os.path.exists("/proc/self/ns/time"):
        owner = _related(syscalls.ns_get_userns, "/proc/self/ns/time")
        if isinstance(owner, tuple) and _same(owner, user):
            seen["time"] = _ident("/proc/self/ns/time")[1]
    made = [t for t in _types() if t not in (NsType.USER, NsType.PID, NsType.TIME)]
    flags = 0
    for t in made:
        flags |= int(t.flag)
    unshare(NEWUSER)
    unshare(flags)
    if ctl:  # the control reads a user namespace made at run time
        seen["user"] = _ident("/proc/self/ns/user")[1]
    reserved = range(0xEFFFFFF8, 0xF0000000)  # dynamic inodes start at 0xF0000000
    seen["made here, with a reserved inode"] = sorted(
        e for e in ["user", *(t.value for t in made)] if _ident(f"/proc/self/ns/{e}")[1] in reserved
    )
    return seen


@check(
    "nsfs.initial_inodes",
    catalogue="NS-20",
    level="MUST",
    anchors=("selftest namespaces/init_ino_test.c", "linux/nsfs.h enum init_ns_ino", "lsns(8)"),
    needs=Needs(
        root=True,
        min_kernel=(5, 6),
        kconfig=("USER_NS", "TIME_NS"),
        ops=_EVERY_TYPE,
        probes=(_nsfs_ioctls_allowed,),
    ),
    timeout=5.0,
)
def initial_inodes(ctx: Context) -> None:
    """The initial namespaces have their fixed nsfs inode numbers, which no other one gets.

    Run as real root, the check is in the initial user namespace (the
    runner's premise for root, uid_map mapping all 2**32 ids, confirmed by
    creating a character device, which needs CAP_MKNOD there; else a SKIP
    saying so) and, the sandbox
    leaving time namespaces alone, in the initial time namespace when that
    one is owned by it: their inodes must be 0xEFFFFFFD (user) and
    0xEFFFFFFA (time). Namespaces of every other type made at run time, in a
    new user namespace, must all have inodes outside the reserved
    0xEFFFFFF8..0xEFFFFFFF range. Control: the user namespace read is one
    made at run time.
    """
    seen = ctx.in_child(_initial_inodes, ctx.control, ctx.tmpdir)
    want: dict[str, object] = {"user": NsType.USER.init_ino}
    if "time" in seen:
        want["time"] = NsType.TIME.init_ino
    want["made here, with a reserved inode"] = []
    ctx.expect_equal(seen, want, "nsfs inode numbers")


# -- NS-21 listns(2) shows a caller only what it may see ----------------------------


def _listns_allowed() -> Optional[str]:
    """Probe: None when listns(2) answers here, else the refusal that makes NS-21 a SKIP."""
    try:
        syscalls.listns(NEWNET)
    except UnsupportedError:
        return "listns(2) answers ENOSYS on a kernel that has it: a seccomp filter"
    except OSError as err:
        if err.errno in (errno.EPERM, errno.EACCES):
            return f"listns(2) is refused here ({errname(err)}): a seccomp filter or an LSM"
        raise
    return None


def _listed(net_path: str, net_id: int, control: bool) -> dict[str, bool]:
    """listns(CLONE_NEWNET) from a user namespace of our own, or (*control*) from *net_path*'s."""
    uid, gid = os.geteuid(), os.getegid()
    if control:
        setns_path(net_path, NEWNET)  # now it is a namespace the caller is in
    else:
        unshare(NEWUSER)  # a sibling of the net namespace's owner
        idmap.map_root(os.getpid(), uid, gid)
    ours = _ident("/proc/self/ns/net")[2]
    ids = syscalls.listns(NEWNET)
    return {"its own net namespace": ours in ids, "the helper's": net_id in ids}


@check(
    "nsfs.listns_visibility",
    catalogue="NS-21",
    level="MUST",
    anchors=("selftest namespaces/listns_permissions_test.c", "listns(2)", "lsns(8)"),
    needs=Needs(
        userns=True,
        min_kernel=(6, 19),
        kconfig=("USER_NS", "NET_NS"),
        ops=("setns", "unshare.net"),
        probes=(_nsfs_ioctls_allowed, _listns_allowed),
    ),
    timeout=5.0,
)
def listns_visibility(ctx: Context) -> None:
    """listns(2) shows a caller the namespaces it is in, and none owned by a sibling user ns.

    A helper unshares a user namespace A with a net namespace N. From a user
    namespace of its own (a sibling of A, where it has every capability), a
    process asks listns(2) for net namespaces: the list must hold the net
    namespace the process is in, and not N (compared by NS_GET_ID). Control:
    the process joins N instead, so N is a namespace it is in and is listed.
    """
    helper = ctx.spawn_child(idle, unshare=NEWUSER | NEWNET)
    helper.recv()
    theirs = _ident(helper.ns_path("net"))[2]
    ctx.expect(theirs is not None, "NS_GET_ID of the helper's net namespace", "an id", theirs)
    ctx.expect_equal(
        ctx.in_child(_listed, helper.ns_path("net"), theirs, ctx.control),
        {"its own net namespace": True, "the helper's": False},
        "net namespaces listns(2) shows from a sibling user namespace",
    )


# -- NS-22 new mount namespaces leave mount-namespace files out -------------------


def _is_mountpoint(path: str) -> bool:
    """Whether *path* is a mount point in the caller's mount namespace (/proc/self/mountinfo)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def _hold_mntns(wfd: int, rfd: int, others: Sequence[int]) -> None:
    """In a forked child: a mount namespace of its own, held until *rfd* reaches EOF."""
    for fd in others:
        os.close(fd)
    unshare(NEWNS)
    os.write(wfd, b"1")
    os.read(rfd, 1)


def _copy_sees(path: str, wfd: int) -> None:
    """In a forked child: unshare(CLONE_NEWNS); report whether *path* is a mount point there."""
    unshare(NEWNS)
    os.write(wfd, b"1" if _is_mountpoint(path) else b"0")


def _read_one(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], 5.0)
    return os.read(fd, 1) if ready else b""


def _mntns_file_copied(tmpdir: str, kind: str) -> dict[str, object]:
    """Bind a newer namespace's *kind* file here, then see whether a copy of this ns has it."""
    # One CPU for this process and its children: namespace ids (what the loop rule
    # compares, see NS-14) then follow creation order, so the newer one's file binds here.
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    unshare(NEWNS)
    syscalls.mount("none", "/", None, int(MountFlags.REC | MountFlags.PRIVATE))
    target = _touch(f"{tmpdir}/ns-held")
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    holder = fork_run(_hold_mntns, ready_w, go_r, (ready_r, go_w), pdeathsig=True)
    os.close(ready_w)
    os.close(go_r)
    try:
        if _read_one(ready_r) != b"1":
            raise ChildProcessError("the mount namespace holder did not get ready")
        seen: dict[str, object] = {"bind": _bind_ns(kind, holder, target)}
        seen["a mount point here"] = _is_mountpoint(target)
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        copier = fork_run(_copy_sees, target, report_w, pdeathsig=True)
        os.close(report_w)
        try:
            seen["a mount point in a copy"] = {b"1": True, b"0": False}.get(
                _read_one(report_r), "no answer"
            )
        finally:
            os.close(report_r)
            os.waitpid(copier, 0)
        return seen
    finally:
        os.close(go_w)
        os.close(ready_r)
        os.waitpid(holder, 0)


@check(
    "nsfs.mntns_file_not_copied",
    catalogue="NS-22",
    level="MUST",
    anchors=("mount_namespaces(7)", "util-linux unshare(1) --mount=file"),
    needs=Needs(min_kernel=(3, 8), kconfig=("NAMESPACES",), ops=("unshare.mnt", "mount.tmpfs")),
    timeout=5.0,
)
def mntns_file_not_copied(ctx: Context) -> None:
    """A new mount namespace does not copy bind mounts of mount namespace files (no hidden pins).

    In a mount namespace of its own, a process bind-mounts the nsfs file of
    a newer mount namespace (allowed, see NS-14): the file is a mount point
    there. A copy of that namespace made by unshare(CLONE_NEWNS) must not
    have the mount, so a namespace can't pin another through mounts nobody
    asked for. Control: the same with a UTS namespace file, whose bind mount
    is copied like any other.
    """
    kind = "uts" if ctx.control else "mnt"
    ctx.expect_equal(
        ctx.in_child(_mntns_file_copied, ctx.tmpdir, kind),
        {"bind": "ok", "a mount point here": True, "a mount point in a copy": False},
        f"a bind mount of a {kind} namespace file, and a copy of its mount namespace",
    )
