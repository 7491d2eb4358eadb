"""Cgroup namespace checks: CG-01 to CG-09.

Layer: conformance checks. Imports public nsprim names, the conformance
registry and the helpers every group shares (:mod:`._common`).

Every check works in a private cgroup v2 subtree it creates and removes
(:func:`_tree`): the check mounts a fresh cgroup2 in its own (sandbox) mount
namespace, which roots it at the sandbox's cgroup namespace root (the cgroup
the runner was in), and makes ``nsprim-<check>-<random>`` there with the
children it needs. Helpers move themselves into those cgroups, so nothing of
the host's moves; the deferred cleanup removes the directories after the
framework has killed and reaped every helper (a cgroup can only be removed
once no process is left in it). The random suffix keeps a check and its
control, which may run at the same time, apart.

Paths in ``/proc/PID/cgroup`` are relative to the *reader's* cgroup namespace
root (cgroup_namespaces(7)); the check process reads from the sandbox
namespace, whose root is the mount's root, so ``/<base>/a`` names ``a``.

Where the cgroup2 hierarchy can't be written (a rootless run without a
delegated subtree) the checks that need cgroups of their own SKIP, saying
which step was refused; CG-09 needs none.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import time
from dataclasses import dataclass
from typing import Any, Optional

from nsprim import syscalls
from nsprim.flags import CloneFlags, MountFlags, UmountFlags

from ..registry import Context, Needs, Skip, check
from ._common import NEWUSER, attempt, errname, setns_path, unshare

__all__: list[str] = []

NEWCGROUP = int(CloneFlags.NEWCGROUP)
NEWNS = int(CloneFlags.NEWNS)

_MOUNT_FLAGS = int(MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC)
#: errnos that mean "this environment does not let us create cgroups": SKIP, not ERROR.
_REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS, errno.EAGAIN)
_WAIT = 3.0


@dataclass(frozen=True)
class _Tree:
    """A private cgroup subtree: *mnt* is the cgroup2 mount, *base* our directory under it."""

    mnt: str
    base: str

    def path(self, name: str = "") -> str:
        """Filesystem path of cgroup *name* (relative to the base; "" is the base)."""
        return (
            os.path.join(self.mnt, self.base, name) if name else os.path.join(self.mnt, self.base)
        )

    def procs(self, name: str) -> str:
        """Path of the ``cgroup.procs`` file of cgroup *name*."""
        return os.path.join(self.path(name), "cgroup.procs")

    def shown(self, name: str) -> str:
        """How ``/proc/PID/cgroup`` shows cgroup *name* to a reader in the sandbox namespace."""
        return "/" + os.path.join(self.base, name) if name else "/" + self.base


def _rmdir(path: str) -> None:
    """Remove an (empty) cgroup, retrying briefly while the last exiting task leaves it."""
    deadline = time.monotonic() + _WAIT
    while True:
        try:
            os.rmdir(path)
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise
        time.sleep(0.01)


def _tree(ctx: Context, *names: str) -> _Tree:
    """Create our cgroup subtree with *names* (parents first) and defer its removal.

    Raises:
        Skip: cgroup2 can't be mounted, or the hierarchy is not writable here.
    """
    mnt = os.path.join(ctx.tmpdir, "cgroup2")
    os.mkdir(mnt)
    ctx.defer(os.rmdir, mnt)
    try:
        syscalls.mount("cgroup2", mnt, "cgroup2", _MOUNT_FLAGS)
    except OSError as err:
        raise Skip(f"cannot mount cgroup2 here ({errname(err)}): no cgroup v2 hierarchy") from None
    ctx.defer(syscalls.umount, mnt, int(UmountFlags.DETACH))
    tree = _Tree(mnt, f"nsprim-{ctx.check_id.replace('.', '-')}-{os.urandom(4).hex()}")
    for name in ("", *names):
        try:
            os.mkdir(tree.path(name))
        except OSError as err:
            if err.errno not in _REFUSED:
                raise
            raise Skip(
                f"cannot create a cgroup under the sandbox's cgroup2 root ({errname(err)} "
                f"for {_who()}): the hierarchy is not writable here (a rootless run needs a "
                "delegated cgroup subtree)"
            ) from None
        ctx.defer(_rmdir, tree.path(name))
    return tree


def _who() -> str:
    """Name the caller's euid, and the uid it maps to outside its user namespace if it differs."""
    uid = os.geteuid()
    try:
        with open("/proc/self/uid_map") as f:
            for line in f:
                inside, outside, count = (int(v) for v in line.split())
                if inside <= uid < inside + count and outside + uid - inside != uid:
                    return f"uid {uid}, uid {outside + uid - inside} outside its user namespace"
    except (OSError, ValueError):
        pass
    return f"uid {uid}"


def _cgroup_path(pid: str = "self") -> str:
    """Return the cgroup v2 path of process *pid* from ``/proc/PID/cgroup`` (the ``0::`` line)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    raise OSError(errno.ENOENT, f"no cgroup v2 line in /proc/{pid}/cgroup")


def _move(pid: int, procs: str) -> None:
    """Move process *pid* (as the caller's pid namespace numbers it) into a cgroup."""
    fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)


def _join(procs: str) -> None:
    """Move the calling process into the cgroup whose ``cgroup.procs`` is *procs*."""
    _move(os.getpid(), procs)


def _join_then_unshare(procs: str, flags: int) -> str:
    """Join a cgroup, unshare *flags* (CLONE_NEWCGROUP, or 0), return our own cgroup path."""
    _join(procs)
    if flags:
        unshare(flags)
    return _cgroup_path()


# -- CG-01 -----------------------------------------------------------------------


@check(
    "cgroup.root_view",
    catalogue="CG-01",
    level="MUST",
    anchors=("cgroup_namespaces(7)",),
    needs=Needs(min_kernel=(4, 6), kconfig=("CGROUPS",)),
    timeout=5.0,
)
def root_view(ctx: Context) -> None:
    """After unshare(CLONE_NEWCGROUP), /proc/self/cgroup shows the creator's cgroup as 0::/.

    A helper moves itself into a cgroup of our private subtree, then
    unshares CLONE_NEWCGROUP: its cgroup becomes the namespace root, so the
    v2 line of /proc/self/cgroup must read ``0::/``. Control: no
    CLONE_NEWCGROUP, so the line shows the full path (``0::/<base>/leaf``).
    """
    tree = _tree(ctx, "leaf")
    seen = ctx.in_child(_join_then_unshare, tree.procs("leaf"), ctx.isolate(NEWCGROUP))
    ctx.expect_equal(seen, "/", "the creator's cgroup v2 path after unshare(CLONE_NEWCGROUP)")


# -- CG-02 -----------------------------------------------------------------------


def _views_from_inside(procs: str, flags: int, others: dict[str, int]) -> dict[str, str]:
    """Join a cgroup, unshare *flags*, and read the cgroup path of each of *others*."""
    seen = {"self": _join_then_unshare(procs, flags)}
    for label, pid in others.items():
        seen[label] = _cgroup_path(str(pid))
    return seen


@check(
    "cgroup.outside_paths_relative",
    catalogue="CG-02",
    level="MUST",
    anchors=("cgroup_namespaces(7)",),
    needs=Needs(min_kernel=(4, 6), kconfig=("CGROUPS",)),
    timeout=5.0,
)
def outside_paths_relative(ctx: Context) -> None:
    """A process outside the cgroup namespace root is shown with a path relative to it (/..).

    A sibling helper joins cgroup ``b``; the reader joins ``a`` and unshares
    CLONE_NEWCGROUP, then reads /proc/PID/cgroup of the sibling and of the
    check process (in the subtree's parent): they must read ``/../b`` and
    ``/../..``, and its own ``/``. Control: no CLONE_NEWCGROUP, so the reader
    sees the full paths from the sandbox's root.
    """
    tree = _tree(ctx, "a", "b")
    sibling = ctx.spawn_child(_join, tree.procs("b"))
    sibling.recv()
    others = {"sibling": sibling.pid, "check": os.getpid()}
    flags = ctx.isolate(NEWCGROUP)
    seen = ctx.in_child(_views_from_inside, tree.procs("a"), flags, others)
    ctx.expect_equal(seen["self"], "/", "the reader's own cgroup path")
    ctx.expect_equal(seen["sibling"], "/../b", "cgroup path of a process in a sibling cgroup")
    ctx.expect_equal(seen["check"], "/../..", "cgroup path of a process two levels up")


# -- CG-03 -----------------------------------------------------------------------


def _mount_view(procs: str, flags: int, mountpoint: str) -> dict[str, Any]:
    """Join a cgroup, unshare *flags*, mount cgroup2 at *mountpoint*; report its top level."""
    _join(procs)
    unshare(flags)
    syscalls.mount("cgroup2", mountpoint, "cgroup2", _MOUNT_FLAGS)
    with open(os.path.join(mountpoint, "cgroup.procs")) as f:
        procs_at_root = sorted(int(line) for line in f)
    dirs = sorted(e.name for e in os.scandir(mountpoint) if e.is_dir(follow_symlinks=False))
    return {"dirs": dirs, "procs": procs_at_root, "pid": os.getpid()}


@check(
    "cgroup.cgroupfs_mount_root",
    catalogue="CG-03",
    level="MUST",
    anchors=("cgroup_namespaces(7)",),
    needs=Needs(min_kernel=(4, 6), kconfig=("CGROUPS",)),
    timeout=5.0,
)
def cgroupfs_mount_root(ctx: Context) -> None:
    """A cgroup2 filesystem mounted inside a cgroup namespace has the namespace root as its root.

    A helper joins ``leaf`` (which has a child cgroup ``child``), unshares
    CLONE_NEWCGROUP and CLONE_NEWNS, and mounts cgroup2: the mount's top
    level must be ``leaf`` itself (its only directory is ``child``, its
    ``cgroup.procs`` lists the helper) and none of the cgroups above are
    reachable. Control: no CLONE_NEWCGROUP (the mount namespace stays), so
    the mount shows the sandbox's root with our subtree in it.
    """
    tree = _tree(ctx, "leaf", "leaf/child")
    mountpoint = os.path.join(ctx.tmpdir, "cgroup2-inner")
    os.mkdir(mountpoint)
    ctx.defer(os.rmdir, mountpoint)
    flags = ctx.isolate(NEWCGROUP) | NEWNS
    seen = ctx.in_child(_mount_view, tree.procs("leaf"), flags, mountpoint)
    ctx.expect_equal(seen["dirs"], ["child"], "cgroups at the top of the mount")
    ctx.expect_equal(seen["procs"], [seen["pid"]], "cgroup.procs at the top of the mount")


# -- CG-04 -----------------------------------------------------------------------


@check(
    "cgroup.root_fixed_at_creation",
    catalogue="CG-04",
    level="MUST",
    anchors=("cgroup_namespaces(7)",),
    needs=Needs(min_kernel=(4, 6), kconfig=("CGROUPS",)),
    timeout=5.0,
)
def root_fixed_at_creation(ctx: Context) -> None:
    """Moving a process to another cgroup after it made a cgroup namespace does not move the root.

    A helper joins ``a`` and unshares CLONE_NEWCGROUP (it then reads
    ``/``); the check moves it to the sibling ``b`` by writing its pid to
    ``b/cgroup.procs``: its own path must now read ``/../b``, relative to
    the unchanged root ``a``. Control: no CLONE_NEWCGROUP, so the helper
    sees full paths.
    """
    tree = _tree(ctx, "a", "b")
    member = ctx.spawn_child(_join_then_unshare, tree.procs("a"), ctx.isolate(NEWCGROUP))
    before = member.recv()
    _move(member.pid, tree.procs("b"))
    after = member.call(_cgroup_path)
    ctx.expect_equal(before, "/", "the helper's cgroup path right after unshare")
    ctx.expect_equal(after, "/../b", "the helper's cgroup path after being moved to b")


# -- CG-05 -----------------------------------------------------------------------


def _clone_into(target: str, into: bool, flags: int = 0) -> dict[str, Any]:
    """clone3 a child (*flags*), with CLONE_INTO_CGROUP *target* when *into*; report where it is.

    The child reports its own view of its cgroup as its very first act; the
    parent then reads the child's cgroup from its own view and the target's
    ``cgroup.procs`` while the child waits.
    """
    dirfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    pid: Optional[int] = None
    try:
        child = syscalls.clone3(flags, cgroup=dirfd if into else None)
        assert isinstance(child, int)
        if child == 0:
            try:
                os.close(go_w)
                syscalls.set_pdeathsig(signal.SIGKILL)
                os.write(report_w, _cgroup_path().encode())  # its very first act
                os.read(go_r, 1)  # stay in the cgroup until the parent has looked
            finally:
                os._exit(0)
        pid = child
        os.close(report_w)
        report_w = -1
        if not _readable(report_r):
            raise TimeoutError("the clone3 child did not report")
        started_in = os.read(report_r, 4096).decode()
        seen_from_parent = _cgroup_path(str(pid))
        with open(os.path.join(target, "cgroup.procs")) as f:
            procs = sorted(int(line) for line in f)
    finally:
        for fd in (dirfd, report_r, report_w, go_r, go_w):
            if fd >= 0:
                os.close(fd)  # closing go_w lets the child exit
        if pid is not None:
            os.waitpid(pid, 0)
    return {
        "pid": pid,
        "started_in": started_in,
        "seen_from_parent": seen_from_parent,
        "procs": procs,
    }


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], _WAIT)[0])


@check(
    "cgroup.clone_into_cgroup",
    catalogue="CG-05",
    level="MUST",
    anchors=("LTP clone303", "clone(2) CLONE_INTO_CGROUP"),
    needs=Needs(min_kernel=(5, 7), kconfig=("CGROUPS",)),
    timeout=5.0,
)
def clone_into_cgroup(ctx: Context) -> None:
    """clone3(CLONE_INTO_CGROUP, cgroup=fd) starts the child directly in the target cgroup.

    A helper opens a cgroup2 directory of our subtree and clone3()s with it:
    the child's first read of /proc/self/cgroup must name the target, and
    the target's ``cgroup.procs`` must list exactly the child (LTP
    clone303). Control: clone3 without CLONE_INTO_CGROUP, so the child
    starts in the helper's cgroup.
    """
    tree = _tree(ctx, "target")
    seen = ctx.in_child(_clone_into, tree.path("target"), not ctx.control)
    ctx.expect_equal(seen["started_in"], tree.shown("target"), "the child's cgroup at its start")
    ctx.expect_equal(seen["procs"], [seen["pid"]], "cgroup.procs of the target cgroup")


# -- CG-06 -----------------------------------------------------------------------


def _clone_into_fd(fd: int) -> str:
    """clone3(CLONE_INTO_CGROUP, cgroup=*fd*): "ok" (the child exits at once) or the errno name."""
    try:
        child = syscalls.clone3(0, cgroup=fd)
    except OSError as err:
        return errname(err)
    assert isinstance(child, int)
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    return "ok"


def _clone_into_each(fds: dict[str, int]) -> dict[str, str]:
    return {what: _clone_into_fd(fd) for what, fd in fds.items()}


#: The fds CG-06 expects CLONE_INTO_CGROUP to refuse.
_REFUSED_FDS = ("a plain directory", "a cgroup.procs file", "a removed cgroup")


def _open_dir(path: str, flags: int = os.O_RDONLY) -> int:
    return os.open(path, flags | os.O_DIRECTORY | os.O_CLOEXEC)


@check(
    "cgroup.clone_into_needs_live_cgroup",
    catalogue="CG-06",
    level="MUST",
    anchors=("selftest clone3/clone3_cgroup", "clone(2) CLONE_INTO_CGROUP", "LTP clone303"),
    needs=Needs(min_kernel=(5, 7), kconfig=("CGROUPS",), ops=("clone3",)),
    timeout=5.0,
)
def clone_into_needs_live_cgroup(ctx: Context) -> None:
    """CLONE_INTO_CGROUP takes only a live cgroup2 directory fd: else EBADF, or ENOENT once removed.

    A helper clone3()s with CLONE_INTO_CGROUP and, in turn, an fd of a plain
    directory and of a cgroup's ``cgroup.procs`` file → EBADF (kernel
    cgroup_css_set_fork() wants a cgroup directory), an fd of a cgroup
    removed after it was opened → ENOENT; an O_PATH fd of a live cgroup
    directory works (the kernel documents that it may). Control: every
    refused fd is replaced by an fd of the live target, so every clone
    succeeds.
    """
    tree = _tree(ctx, "target")
    opened: list[int] = []

    def keep(fd: int) -> int:
        opened.append(fd)
        return fd

    try:
        target = keep(_open_dir(tree.path("target")))
        fds = {
            "the target": target,
            "an O_PATH fd of a live cgroup": keep(_open_dir(tree.path("target"), os.O_PATH)),
        }
        if ctx.control:
            fds.update(dict.fromkeys(_REFUSED_FDS, target))
        else:
            os.mkdir(tree.path("removed"))
            try:
                removed = keep(_open_dir(tree.path("removed")))
            finally:
                os.rmdir(tree.path("removed"))
            fds["a plain directory"] = keep(_open_dir(ctx.tmpdir))
            fds["a cgroup.procs file"] = keep(
                os.open(tree.procs("target"), os.O_RDONLY | os.O_CLOEXEC)
            )
            fds["a removed cgroup"] = removed
        seen = ctx.in_child(_clone_into_each, fds)
    finally:
        for fd in opened:
            os.close(fd)
    ctx.expect_equal(seen["the target"], "ok", "clone3 into the live target cgroup")
    ctx.expect_equal(seen["an O_PATH fd of a live cgroup"], "ok", "clone3 into an O_PATH cgroup fd")
    ctx.expect_equal(seen["a plain directory"], "EBADF", "clone3 into a plain directory's fd")
    ctx.expect_equal(seen["a cgroup.procs file"], "EBADF", "clone3 into a cgroup.procs fd")
    ctx.expect_equal(seen["a removed cgroup"], "ENOENT", "clone3 into a removed cgroup's fd")


# -- CG-07 -----------------------------------------------------------------------


@check(
    "cgroup.clone_into_sets_ns_root",
    catalogue="CG-07",
    level="MUST",
    anchors=("clone(2) CLONE_INTO_CGROUP", "cgroup_namespaces(7)", "kernel cgroup_post_fork()"),
    needs=Needs(min_kernel=(5, 7), kconfig=("CGROUPS",), ops=("clone3",)),
    timeout=5.0,
)
def clone_into_sets_ns_root(ctx: Context) -> None:
    """clone3 with CLONE_NEWCGROUP and CLONE_INTO_CGROUP roots the child's cgroup ns at the target.

    A helper (in the sandbox's root cgroup) clone3()s a child with both
    flags and an fd of ``target``: the child's first read of
    /proc/self/cgroup must be ``0::/`` (its namespace root is the cgroup it
    was placed in, not the parent's, kernel cgroup_post_fork() since 5.7),
    while the helper sees it in ``target`` and ``target``'s cgroup.procs
    lists it. Control: no CLONE_NEWCGROUP, so the child sees the full path.
    """
    tree = _tree(ctx, "target")
    seen = ctx.in_child(_clone_into, tree.path("target"), True, ctx.isolate(NEWCGROUP))
    ctx.expect_equal(seen["started_in"], "/", "the child's own view of its cgroup at its start")
    ctx.expect_equal(seen["seen_from_parent"], tree.shown("target"), "the child's cgroup")
    ctx.expect_equal(seen["procs"], [seen["pid"]], "cgroup.procs of the target cgroup")


# -- CG-08 -----------------------------------------------------------------------


def _join_then_setns(procs: str, holder: Optional[int]) -> str:
    """Join a cgroup, setns(2) into *holder*'s cgroup namespace (if given); return our path."""
    _join(procs)
    if holder is not None:
        setns_path(f"/proc/{holder}/ns/cgroup", NEWCGROUP)
    return _cgroup_path()


@check(
    "cgroup.setns_moves_view_only",
    catalogue="CG-08",
    level="MUST",
    anchors=("setns(2)", "cgroup_namespaces(7)", "kernel cgroupns_install()"),
    needs=Needs(min_kernel=(4, 6), kconfig=("CGROUPS",), ops=("setns",)),
    timeout=5.0,
)
def setns_moves_view_only(ctx: Context) -> None:
    """setns(2) into a cgroup namespace changes the caller's view of cgroup paths, not its cgroup.

    A holder joins ``a`` and unshares CLONE_NEWCGROUP (its root is ``a``).
    A member joins ``b`` and setns(2)es into the holder's cgroup namespace:
    it must read its own path as ``/../b`` (relative to the new root), while
    the check still sees it in ``b`` and ``b``'s cgroup.procs lists it (the
    join moved no process). Control: the member does not setns, so it reads
    its full path.
    """
    tree = _tree(ctx, "a", "b")
    holder = ctx.spawn_child(_join_then_unshare, tree.procs("a"), NEWCGROUP)
    holder.recv()
    member = ctx.spawn_child(_join_then_setns, tree.procs("b"), None if ctx.control else holder.pid)
    own_view = member.recv()
    ctx.expect_equal(own_view, "/../b", "the member's own cgroup path after setns(2)")
    ctx.expect_equal(_cgroup_path(str(member.pid)), tree.shown("b"), "the member's cgroup")
    with open(tree.procs("b")) as f:
        procs = sorted(int(line) for line in f)
    ctx.expect_equal(procs, [member.pid], "cgroup.procs of b after the member's setns(2)")


# -- CG-09 -----------------------------------------------------------------------


def _privilege_attempts(drop: bool) -> dict[str, str]:
    """Clear the capability sets (if *drop*), then try unshare(CLONE_NEWCGROUP) both ways."""
    if drop:
        syscalls.drop_capabilities()
    seen = {"unshare(CLONE_NEWCGROUP)": attempt(syscalls.unshare, NEWCGROUP)}
    both = attempt(unshare, NEWUSER | NEWCGROUP)
    seen["unshare(CLONE_NEWUSER|CLONE_NEWCGROUP)"] = both
    if both == "ok":
        seen["own cgroup"] = _cgroup_path()
    return seen


@check(
    "cgroup.unshare_needs_privilege",
    catalogue="CG-09",
    level="MUST",
    anchors=("cgroup_namespaces(7)", "unshare(2) EPERM", "user_namespaces(7)"),
    needs=Needs(userns=True, min_kernel=(4, 6), kconfig=("CGROUPS", "USER_NS")),
    timeout=5.0,
)
def unshare_needs_privilege(ctx: Context) -> None:
    """Without CAP_SYS_ADMIN, unshare(CLONE_NEWCGROUP) is EPERM unless a user ns comes with it.

    A helper clears its capability sets (capset(2); the uid stays, so this
    works rootless, where no cgroup can be created): unshare(CLONE_NEWCGROUP)
    must fail with EPERM (kernel unshare_nsproxy_namespaces()), while
    unshare(CLONE_NEWUSER|CLONE_NEWCGROUP) must succeed, the new user
    namespace giving the capability, and the helper's cgroup is then its
    namespace root (``0::/``). Control: the helper keeps its capabilities,
    so the first unshare succeeds.
    """
    seen = ctx.in_child(_privilege_attempts, not ctx.control)
    ctx.expect_equal(
        seen["unshare(CLONE_NEWCGROUP)"], "EPERM", "unshare(CLONE_NEWCGROUP) without CAP_SYS_ADMIN"
    )
    both = seen["unshare(CLONE_NEWUSER|CLONE_NEWCGROUP)"]
    if both in ("EPERM", "ENOSPC", "EUSERS"):
        raise Skip(f"unprivileged processes cannot create user namespaces here ({both})")
    ctx.expect_equal(both, "ok", "unshare(CLONE_NEWUSER|CLONE_NEWCGROUP) without CAP_SYS_ADMIN")
    ctx.expect_equal(seen["own cgroup"], "/", "the helper's cgroup path in its new cgroup ns")
