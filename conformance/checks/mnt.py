"""Mount namespace checks: MNT-01 to MNT-18.

Layer: conformance checks. Imports public nsprim names, the conformance
registry, and :mod:`.._libc` for clone3(2) and mount_setattr(2) with the
arguments whose nsprim binding validates away the kernel error under test.

MNT-11 to MNT-15 are about idmapped mounts (MOUNT_ATTR_IDMAP, Linux 5.12),
made on tmpfs, which supports them since Linux 6.3: a detached copy of a
tmpfs (open_tree(2) OPEN_TREE_CLONE) gets an idmap from a user namespace the
check creates and maps, is attached with move_mount(2), and is then judged by
what the kernel shows: ``idmapped`` among the mount options in
/proc/self/mountinfo and, as root, the owners stat(2) reports. Rootless, the
sandbox's user namespace maps a single id, so the only idmap it can write is
``0 0 1`` (nothing to see in the owners, but the kernel's rules are the same).

Every tree a check builds is a tmpfs under ``ctx.tmpdir``, never a host path.
The runner's sandbox mount namespace is already ``MS_REC|MS_PRIVATE``, so a
check that needs propagation makes its own tmpfs shared (``MS_SHARED``) to
stand in for a systemd host's shared ``/``. Work that changes propagation or
the root happens in forked helpers with their own mount namespace, which
vanishes with them; mounts the check makes in its own (sandbox) namespace are
unmounted by ``ctx.defer``.

Visibility is judged the way LTP's mountns tests judge it: a mount carries a
marker file, and "sees the mount" means the marker path exists.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import threading
from typing import Any, Callable, TypeVar

from nsprim import UnsupportedError, idmap, process, syscalls
from nsprim.flags import CloneFlags, MountAttrFlags, MountFlags, UmountFlags
from nsprim.namespace import NsType

from .. import _libc, _needs
from ..registry import Context, Needs, Skip, check
from ._common import attempt, errname, idle, unshare

__all__: list[str] = []

T = TypeVar("T")

NEWNS = int(CloneFlags.NEWNS)
NEWUSER = int(CloneFlags.NEWUSER)
NEWPID = int(CloneFlags.NEWPID)
NEWNET = int(CloneFlags.NEWNET)
CLONE_FS = int(CloneFlags.FS)

MS_RDONLY = int(MountFlags.RDONLY)
MS_NOSUID = int(MountFlags.NOSUID)
MS_NODEV = int(MountFlags.NODEV)
MS_NOEXEC = int(MountFlags.NOEXEC)
MS_REMOUNT = int(MountFlags.REMOUNT)
MS_BIND = int(MountFlags.BIND)
MS_REC = int(MountFlags.REC)
MS_PRIVATE = int(MountFlags.PRIVATE)
MS_SHARED = int(MountFlags.SHARED)
MS_SLAVE = int(MountFlags.SLAVE)
MS_UNBINDABLE = int(MountFlags.UNBINDABLE)
MNT_DETACH = int(UmountFlags.DETACH)

#: util-linux unshare(1)'s default since 2.27 ("--propagation private"), which is
#: also nsprim.process's (``propagation="private"``); MNT-05 checks nsprim's own.
NSPRIM_DEFAULT_PROPAGATION = MS_REC | MS_PRIVATE

AT_EMPTY_PATH = 0x1000  # linux/fcntl.h
AT_RECURSIVE = 0x8000  # linux/fcntl.h
OPEN_TREE_CLONE = 0x1  # linux/mount.h
MOVE_MOUNT_F_EMPTY_PATH = 0x4  # linux/mount.h
MOVE_MOUNT_SET_GROUP = 0x100  # linux/mount.h, Linux 5.15
IDMAP_ATTR = int(MountAttrFlags.IDMAP)
MS_RDONLY_ATTR = int(MountAttrFlags.RDONLY)
# statvfs(3) f_flag bits (linux/statfs.h); os lacks ST_NOSYMFOLLOW.
_ST_NOSYMFOLLOW = 0x2000
_PROC_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC


# -- small helpers (run in whichever process calls them) --------------------------


def _touch(path: str) -> None:
    with open(path, "w") as f:
        f.write("nsprim\n")


def _tmpfs(target: str, tag: str | None = None, flags: int = 0) -> str:
    """Mount a small tmpfs on *target* (created if missing), with a marker file *tag*."""
    os.makedirs(target, exist_ok=True)
    syscalls.mount("tmpfs", target, "tmpfs", flags, "size=1m,mode=0755")
    if tag is not None:
        _touch(os.path.join(target, tag))
    return target


def _set_propagation(target: str, flag: int) -> None:
    syscalls.mount(None, target, None, flag)


def _make_root_private() -> None:
    syscalls.mount(None, "/", None, NSPRIM_DEFAULT_PROPAGATION)


def _propagation(mountpoint: str) -> str:
    """Return the propagation tags of the topmost mount on *mountpoint* ("private" if none).

    Reads the optional fields of /proc/self/mountinfo (proc(5)): ``shared:N``,
    ``master:N``, ``propagate_from:N``, ``unbindable``; the numbers are dropped.
    """
    tags = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left = line.split(" - ", 1)[0].split()
            if len(left) >= 6 and left[4] == mountpoint:
                tags = [t.split(":", 1)[0] for t in left[6:]]
    if tags is None:
        return "not a mount point"
    return " ".join(sorted(tags)) or "private"


def _unshare(flags: int) -> None:
    """unshare(2) *flags*; with CLONE_NEWUSER also map root to the caller's old ids."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(flags)
    if flags & NEWUSER:
        idmap.map_root(os.getpid(), uid, gid)


# -- MNT-01 -------------------------------------------------------------------------


def _shared_base(ctx: Context, name: str, subdirs: tuple[str, ...], flag: int = MS_SHARED) -> str:
    """Mount a tmpfs under ctx.tmpdir with propagation *flag* in the check's own namespace.

    One deferred MNT_DETACH umount of it takes every mount below it along.
    """
    base = _tmpfs(os.path.join(ctx.tmpdir, name))
    ctx.defer(syscalls.umount, base, MNT_DETACH)
    _set_propagation(base, flag)
    for sub in subdirs:
        os.mkdir(os.path.join(base, sub))
    return base


@check(
    "mnt.private_isolation",
    catalogue="MNT-01",
    level="MUST",
    anchors=("LTP mountns02", "util-linux unshare(1) --propagation", "mount_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6)),
    timeout=5.0,
)
def private_isolation(ctx: Context) -> None:
    """After unshare(CLONE_NEWNS) and MS_REC|MS_PRIVATE on /, mounts don't cross either way.

    The check mounts a tmpfs and makes it shared (the worst case: a systemd
    host's ``/``). A helper unshares CLONE_NEWNS and makes ``/`` rec-private;
    a tmpfs it mounts under the shared tmpfs must not appear in the check's
    namespace, and one the check mounts there must not appear in the helper's.
    Control: the helper does not unshare, so its mount is the check's mount.
    """
    base = _shared_base(ctx, "mnt01", ("from-child", "from-parent"))
    child = ctx.spawn_child(_make_root_private, unshare=ctx.isolate(NEWNS))
    child.recv()
    child.call(_tmpfs, f"{base}/from-child", "mark")
    ctx.expect(
        not os.path.exists(f"{base}/from-child/mark"),
        "the parent sees a mount made in a private child mount namespace",
        "absent",
        "present",
    )
    _tmpfs(f"{base}/from-parent", "mark")
    ctx.expect(
        not child.call(os.path.exists, f"{base}/from-parent/mark"),
        "a private child mount namespace sees a mount the parent made after it was created",
        "absent",
        "present",
    )


# -- MNT-02 / MNT-03 ----------------------------------------------------------------


@check(
    "mnt.shared_propagation",
    catalogue="MNT-02",
    level="MUST",
    anchors=("LTP mountns01", "runtime-tools linux_rootfs_propagation", "mount_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6)),
    timeout=5.0,
)
def shared_propagation(ctx: Context) -> None:
    """A shared mount and its copy in a new mount namespace propagate mount and umount both ways.

    As LTP mountns01: the check makes a tmpfs shared, a helper unshares
    CLONE_NEWNS (its copy joins the peer group). A mount by the check must
    appear in the helper and go away when the helper unmounts it; a mount by
    the helper must appear in the check and go away when the check unmounts
    it. Control: the tmpfs is made private instead, so nothing propagates.
    """
    # The control takes the sharing away (MNT-02 is about propagation, not isolation).
    flag = MS_PRIVATE if ctx.control else MS_SHARED
    base = _shared_base(ctx, "mnt02", ("a", "b"), flag)
    peer = ctx.spawn_child(idle, unshare=NEWNS)
    peer.recv()

    _tmpfs(f"{base}/a", "mark")
    ctx.expect(
        peer.call(os.path.exists, f"{base}/a/mark"),
        "a mount under a shared mount reaches the peer in the new namespace",
        "present",
        "absent",
    )
    peer.call(syscalls.umount, f"{base}/a")
    ctx.expect(
        not os.path.exists(f"{base}/a/mark"),
        "the peer's umount propagates back to the parent",
        "absent",
        "present",
    )
    peer.call(_tmpfs, f"{base}/b", "mark")
    ctx.expect(
        os.path.exists(f"{base}/b/mark"),
        "a mount made by the peer reaches the parent",
        "present",
        "absent",
    )
    syscalls.umount(f"{base}/b")
    ctx.expect(
        not peer.call(os.path.exists, f"{base}/b/mark"),
        "the parent's umount propagates to the peer",
        "absent",
        "present",
    )


@check(
    "mnt.slave_propagation",
    catalogue="MNT-03",
    level="MUST",
    anchors=("LTP mountns03", "mount_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6)),
    timeout=5.0,
)
def slave_propagation(ctx: Context) -> None:
    """A slave mount receives mount events from its master but sends none back.

    As LTP mountns03: the check makes a tmpfs shared; a helper unshares
    CLONE_NEWNS and makes its copy MS_SLAVE. The check's mount must reach
    the helper; the helper's mount and its umount of the propagated mount
    must not reach the check, and the helper's mountinfo must say
    ``master``. Control: the helper makes its copy MS_SHARED (a peer), so its
    mount comes back.
    """
    base = _shared_base(ctx, "mnt03", ("a", "b"))
    flag = MS_SHARED if ctx.control else MS_SLAVE  # the control keeps the two-way peer
    slave = ctx.spawn_child(_set_propagation, base, flag, unshare=NEWNS)
    slave.recv()

    _tmpfs(f"{base}/a", "mark")
    ctx.expect(
        slave.call(os.path.exists, f"{base}/a/mark"),
        "a mount on the master reaches the slave",
        "present",
        "absent",
    )
    slave.call(_tmpfs, f"{base}/b", "mark")
    ctx.expect(
        not os.path.exists(f"{base}/b/mark"),
        "a mount made on the slave reaches the master",
        "absent",
        "present",
    )
    slave.call(syscalls.umount, f"{base}/a")
    ctx.expect(
        os.path.exists(f"{base}/a/mark"),
        "the slave's umount of a propagated mount removes it from the master",
        "present",
        "absent",
    )
    ctx.expect_equal(slave.call(_propagation, base), "master", "propagation of the slave copy")


# -- MNT-04 -------------------------------------------------------------------------


def _bind_unbindable(base: str, flag: int) -> dict[str, object]:
    """In a private mount namespace: make a mount *flag*, then bind it and rbind its parent."""
    _make_root_private()
    tree = _tmpfs(f"{base}/tree", "top")
    src = _tmpfs(f"{tree}/src", "mark")
    for sub in ("bind", "rbind"):
        os.mkdir(f"{base}/{sub}")
    _set_propagation(src, flag)
    seen: dict[str, object] = {"propagation": _propagation(src)}
    seen["bind"] = attempt(syscalls.mount, src, f"{base}/bind", None, MS_BIND)
    # mount_namespaces(7): a recursive bind prunes unbindable submounts.
    seen["rbind"] = attempt(syscalls.mount, tree, f"{base}/rbind", None, MS_BIND | MS_REC)
    seen["rbind copies the tree"] = os.path.exists(f"{base}/rbind/top")
    seen["rbind copies the submount"] = os.path.exists(f"{base}/rbind/src/mark")
    return seen


@check(
    "mnt.unbindable",
    catalogue="MNT-04",
    level="MUST",
    anchors=("LTP mountns04", "mount_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6)),
    timeout=5.0,
)
def unbindable(ctx: Context) -> None:
    """Bind-mounting an unbindable mount fails with EINVAL, and a recursive bind leaves it out.

    In a helper with a private mount namespace (LTP mountns04): a tmpfs
    made MS_UNBINDABLE must show ``unbindable`` in mountinfo, a bind mount of
    it must fail with EINVAL, and a recursive bind of its parent tree must
    copy the tree without it. Control: the tmpfs is made MS_PRIVATE instead,
    so the bind succeeds.
    """
    flag = MS_PRIVATE if ctx.control else MS_UNBINDABLE
    seen = ctx.in_child(_bind_unbindable, os.path.join(ctx.tmpdir, "mnt04"), flag, unshare=NEWNS)
    ctx.expect_equal(seen["bind"], "EINVAL", "bind mount of an unbindable mount")
    ctx.expect_equal(seen["propagation"], "unbindable", "mountinfo of the unbindable mount")
    ctx.expect_equal(seen["rbind"], "ok", "recursive bind of the tree holding it")
    ctx.expect(seen["rbind copies the tree"], "the recursive bind copies the parent tree")
    ctx.expect(
        not seen["rbind copies the submount"],
        "a recursive bind copies the unbindable submount",
        "pruned",
        "copied",
    )


# -- MNT-05 -------------------------------------------------------------------------


def _mount_marked(target: str) -> str:
    """Mount a marked tmpfs on *target*; return the propagation this namespace sees.

    That is of ``/`` and of the shared tmpfs holding *target*.
    """
    _tmpfs(target, "mark")
    return f"/ {_propagation('/')}, the shared tmpfs {_propagation(os.path.dirname(target))}"


@check(
    "mnt.inherited_propagation",
    catalogue="MNT-05",
    level="MUST",
    anchors=(
        "util-linux unshare(1) --propagation (private since 2.27)",
        "runtime-tools rootfsPropagation",
        "mount_namespaces(7)",
    ),
    needs=Needs(min_kernel=(2, 6)),
    timeout=5.0,
)
def inherited_propagation(ctx: Context) -> None:
    """unshare(CLONE_NEWNS) alone keeps shared mounts shared; nsprim's default makes them private.

    A new mount namespace copies peer groups, so on a host whose ``/`` is
    shared (systemd's default) a child's mount leaks back. The sandbox's own
    ``/`` is private (the runner made it so; the host's ``/`` can't be seen
    from inside), so the check mounts a shared tmpfs to play the host's ``/``:
    a child that only unshares must leak a mount into it; a child started by
    ``nsprim.process.call(..., namespaces=["mnt"])`` with its default
    propagation (``"private"``: MS_REC|MS_PRIVATE on ``/``, util-linux's
    default since 2.27) must not. The propagation the children saw is in
    the failure message. Control: the nsprim child is started with
    ``propagation="unchanged"``.
    """
    base = _shared_base(ctx, "mnt05", ("plain", "nsprim"))
    sandbox_root = _propagation("/")
    ctx.in_child(_mount_marked, f"{base}/plain", unshare=NEWNS)
    ctx.expect(
        os.path.exists(f"{base}/plain/mark"),
        "with unshare(CLONE_NEWNS) alone, a child's mount under a shared mount reaches the "
        "parent (the peer group is copied)",
        "present",
        "absent",
    )
    # The check relies on nsprim's default; the control asks it to leave propagation alone.
    target = f"{base}/nsprim"
    child_root = (
        process.call(
            _mount_marked, target, namespaces=["mnt"], timeout=5.0, propagation="unchanged"
        )
        if ctx.control
        else process.call(_mount_marked, target, namespaces=["mnt"], timeout=5.0)
    )
    ctx.expect(
        not os.path.exists(f"{base}/nsprim/mark"),
        f"a mount by a child of nsprim.process.call(namespaces=['mnt']) reached the parent "
        f"(in the sandbox: / {sandbox_root}; in the child: {child_root})",
        "absent",
        "present",
    )


# -- MNT-06 -------------------------------------------------------------------------

# (case, expected errno or "ok"); LTP pivot_root01's table.
_PIVOT_CASES = (
    ("pivot", "ok"),
    ("new_root on the current root mount", "EBUSY"),
    ("put_old not under new_root", "EINVAL"),
    ("put_old not a directory", "ENOTDIR"),
    ("no CAP_SYS_ADMIN", "EPERM"),
)


def _pivot(base: str, case: str, tweak: bool) -> dict[str, object]:
    """Run one pivot_root(2) case of LTP pivot_root01 in this (fresh mount namespace) process.

    With *tweak* false the case's precondition is left out, so the call
    succeeds (and for the "pivot" case, pivot_root is not called at all).
    """
    _make_root_private()
    # pivot_root doesn't work from a rootfs/initramfs root: chroot into a tmpfs first (LTP).
    os.chroot(_tmpfs(f"{base}/chroot"))
    os.chdir("/")
    os.mkdir("/new_root")
    if not (tweak and case == "new_root on the current root mount"):
        _tmpfs("/new_root")
    _touch("/new_root/marker")
    if tweak and case == "put_old not under new_root":
        put_old = "/put_old_fs/put_old"
        _tmpfs("/put_old_fs")
        os.mkdir(put_old)
    else:
        put_old = "/new_root/put_old"
        if tweak and case == "put_old not a directory":
            _touch(put_old)
        else:
            os.mkdir(put_old)
    if tweak and case == "no CAP_SYS_ADMIN":
        syscalls.drop_capabilities()
    new_root = os.stat("/new_root")
    if case == "pivot" and not tweak:
        return {"result": "not called"}
    result = attempt(syscalls.pivot_root, "/new_root", put_old)
    if result != "ok" or case != "pivot":
        return {"result": result}
    os.chdir("/")
    put_old = put_old[len("/new_root") :]
    syscalls.umount(put_old, MNT_DETACH)
    root = os.stat("/")
    return {
        "result": result,
        "root is new_root": (root.st_dev, root.st_ino) == (new_root.st_dev, new_root.st_ino),
        "/": sorted(os.listdir("/")),
        "put_old": sorted(os.listdir(put_old)),
    }


@check(
    "mnt.pivot_root",
    catalogue="MNT-06",
    level="MUST",
    anchors=("LTP pivot_root01", "pivot_root(2)", "amicontained Chroot", "tailhook/unshare"),
    needs=Needs(min_kernel=(2, 6)),
    timeout=5.0,
)
def pivot_root(ctx: Context) -> None:
    """pivot_root(new, put_old) plus a lazy umount of put_old leaves only new as /; bad calls fail.

    LTP pivot_root01's table, each case in a helper with its own mount
    namespace, chrooted into a tmpfs: a good pivot makes ``/`` the new root
    (same (st_dev, st_ino)), and after umount2(put_old, MNT_DETACH) only the
    new root's entries remain, put_old empty. new_root on the current root
    mount → EBUSY, put_old outside new_root → EINVAL, put_old a file →
    ENOTDIR, no CAP_SYS_ADMIN → EPERM. Control: each case without its
    precondition (the error cases then succeed; the good case skips the
    pivot).
    """
    for index, (case, expected) in enumerate(_PIVOT_CASES):
        base = os.path.join(ctx.tmpdir, f"mnt06-{index}")
        seen = ctx.in_child(_pivot, base, case, not ctx.control, unshare=NEWNS)
        ctx.expect_equal(seen["result"], expected, f"pivot_root: {case}")
        if case != "pivot":
            continue
        ctx.expect(seen["root is new_root"], "after pivot_root, / is new_root", True, False)
        ctx.expect_equal(seen["/"], ["marker", "put_old"], "entries of / after the pivot")
        ctx.expect_equal(seen["put_old"], [], "entries of put_old after umount2(MNT_DETACH)")


# -- MNT-07 -------------------------------------------------------------------------


def _ids(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _thread_unshares(sub: str, flags: int) -> dict[str, object]:
    """Let a second thread unshare *flags*, chdir and chroot; report the main thread's view.

    Threads share one fs_struct (cwd, root) unless it is unshared
    (CLONE_FS); unshare(CLONE_NEWNS) implies CLONE_FS (kernel/fork.c
    ksys_unshare), so the main thread must keep its cwd and root.
    """
    before = {"cwd": _ids("."), "root": _ids("/")}
    errors: list[str] = []

    def worker() -> None:
        try:
            unshare(flags)
            os.chdir(sub)
            os.chroot(".")
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5.0)
    if thread.is_alive() or errors:
        raise RuntimeError(f"the unsharing thread failed: {errors or 'still running'}")
    return {"before": before, "after": {"cwd": _ids("."), "root": _ids("/")}}


@check(
    "mnt.fs_struct_unshared",
    catalogue="MNT-07",
    level="MUST",
    anchors=("LTP unshare04", "LTP clone302", "unshare(2)", "clone(2)"),
    needs=Needs(min_kernel=(5, 3), ops=("clone3",)),
    timeout=5.0,
)
def fs_struct_unshared(ctx: Context) -> None:
    """unshare(CLONE_NEWNS) also unshares cwd and root; clone3(CLONE_FS|CLONE_NEWNS) is EINVAL.

    A helper starts a thread, which shares its fs_struct; the thread
    unshares CLONE_NEWNS, then chdirs and chroots into a directory. The main
    thread's cwd and root (st_dev, st_ino) must not move (LTP unshare04 does
    the same with a CLONE_FS child). Then clone3(2) with CLONE_FS|CLONE_NEWNS
    must fail with EINVAL (LTP clone302 "fs-newns"). Control: the thread
    unshares nothing, so the main thread follows its chdir/chroot; and
    clone3 gets CLONE_NEWNS alone, which succeeds.
    """
    sub = os.path.join(ctx.tmpdir, "mnt07")
    os.mkdir(sub)
    seen = ctx.in_child(_thread_unshares, sub, ctx.isolate(NEWNS))
    for what, call in (("cwd", "chdir"), ("root", "chroot")):
        ctx.expect_equal(
            seen["after"][what],
            seen["before"][what],
            f"main thread's {what} after another thread's unshare(CLONE_NEWNS) and {call}",
        )
    clone_flags = NEWNS if ctx.control else CLONE_FS | NEWNS
    ctx.expect_equal(
        ctx.in_child(attempt, _libc.clone3_unchecked, clone_flags),
        "EINVAL",
        "clone3(CLONE_FS|CLONE_NEWNS)",
    )


# -- MNT-08 -------------------------------------------------------------------------

# (name, MOUNT_ATTR_* bit, statvfs f_flag bit, first kernel); LTP mount_setattr01's table.
_ATTRS = (
    ("RDONLY", int(MountAttrFlags.RDONLY), os.ST_RDONLY, (5, 12)),
    ("NOSUID", int(MountAttrFlags.NOSUID), os.ST_NOSUID, (5, 12)),
    ("NODEV", int(MountAttrFlags.NODEV), os.ST_NODEV, (5, 12)),
    ("NOEXEC", int(MountAttrFlags.NOEXEC), os.ST_NOEXEC, (5, 12)),
    ("NOSYMFOLLOW", int(MountAttrFlags.NOSYMFOLLOW), _ST_NOSYMFOLLOW, (5, 14)),
)


def _effect(name: str, mnt: str) -> str:
    """Try what attribute *name* forbids on mount *mnt*; return "ok" or the errno name."""
    if name == "RDONLY":
        return attempt(_touch, f"{mnt}/new")
    if name == "NOEXEC":
        # do_mmap(): PROT_EXEC of a file on a noexec mount is EPERM, no exec needed.
        def map_exec() -> None:
            with open(f"{mnt}/file", "rb") as f:
                mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | mmap.PROT_EXEC).close()

        return attempt(map_exec)
    if name == "NOSYMFOLLOW":
        return attempt(lambda: open(f"{mnt}/link").close())
    return "not observable"  # NOSUID/NODEV: needs a setuid exec or a device node


def _attr_matrix(base: str, names: tuple[str, ...], control: bool) -> dict[str, object]:
    """In a private mount namespace: set and clear each attribute, then change propagation."""
    _make_root_private()
    seen: dict[str, object] = {}
    for name, bit, st_flag, _ in _ATTRS:
        if name not in names:
            continue
        mnt = _tmpfs(f"{base}/{name}", "file")
        os.symlink("file", f"{mnt}/link")
        syscalls.mount_setattr(mnt, attr_set=0 if control else bit)
        seen[f"{name} set"] = bool(os.statvfs(mnt).f_flag & st_flag)
        seen[f"{name} effect"] = _effect(name, mnt)
        syscalls.mount_setattr(mnt, attr_clr=bit)
        seen[f"{name} cleared"] = not os.statvfs(mnt).f_flag & st_flag
        seen[f"{name} effect cleared"] = _effect(name, mnt)
    top = _tmpfs(f"{base}/prop")
    os.mkdir(f"{base}/prop-bind")
    for name, flag in (("shared", MS_SHARED), ("unbindable", MS_UNBINDABLE)):
        syscalls.mount_setattr(top, propagation=flag)
        seen[f"propagation {name}"] = _propagation(top)
    syscalls.mount_setattr(top, propagation=MS_SHARED)
    # A bind of a shared mount joins its peer group; MS_SLAVE makes it a slave (mount_setattr02).
    syscalls.mount(top, f"{base}/prop-bind", None, MS_BIND)
    syscalls.mount_setattr(f"{base}/prop-bind", propagation=MS_SLAVE)
    seen["propagation slave"] = _propagation(f"{base}/prop-bind")
    syscalls.mount_setattr(top, propagation=0)
    seen["propagation 0 keeps"] = _propagation(top)
    syscalls.mount_setattr(top, propagation=MS_PRIVATE)
    seen["propagation private"] = _propagation(top)
    # Invalid propagation values reach the kernel only through the raw call.
    for label, bad in (("-1", -1), ("MS_SHARED|MS_SLAVE", MS_SHARED | MS_SLAVE)):
        value = MS_SHARED if control else bad
        seen[f"propagation {label}"] = attempt(_libc.mount_setattr_unchecked, top, value)
    seen["propagation after invalid"] = _propagation(top)
    # selftest mount_setattr wrong_mount_namespace: a mount of another mount ns is EINVAL.
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        unshare(0 if control else NEWNS)
        seen["other mount ns"] = attempt(
            syscalls.mount_setattr, "", dirfd=fd, flags=AT_EMPTY_PATH, attr_set=MS_RDONLY_ATTR
        )
    finally:
        os.close(fd)
    return seen


@check(
    "mnt.mount_setattr",
    catalogue="MNT-08",
    level="MUST",
    anchors=(
        "LTP mount_setattr01",
        "LTP mount_setattr02",
        "selftest mount_setattr",
        "mount_setattr(2)",
    ),
    needs=Needs(min_kernel=(5, 12)),
    timeout=5.0,
)
def mount_setattr(ctx: Context) -> None:
    """mount_setattr(2) sets and clears RDONLY/NOSUID/NODEV/NOEXEC/NOSYMFOLLOW and propagation.

    In a helper with a private mount namespace, for each attribute on a
    fresh tmpfs (LTP mount_setattr01): after ``attr_set`` statvfs(3) reports
    the flag and the effect shows (EROFS creating a file, EPERM mapping a
    file PROT_EXEC, ELOOP opening a symlink; NOSUID/NODEV by flag only);
    after ``attr_clr`` both are gone. Propagation (LTP mount_setattr02):
    MS_SHARED, MS_UNBINDABLE, MS_SLAVE on a bind of a shared mount, 0 keeps,
    MS_PRIVATE; -1 and MS_SHARED|MS_SLAVE → EINVAL with nothing changed.
    A mount of the mount namespace the helper left (held by an fd) → EINVAL
    (selftest ``wrong_mount_namespace``).
    NOSYMFOLLOW needs Linux 5.14 and is left out before. Control:
    ``attr_set`` is 0, the invalid propagations are replaced by MS_SHARED,
    and the helper stays in the mount's namespace.
    """
    names = tuple(name for name, _, _, since in _ATTRS if ctx.kernel[:2] >= since)
    base = os.path.join(ctx.tmpdir, "mnt08")
    seen = ctx.in_child(_attr_matrix, base, names, ctx.control, unshare=NEWNS)
    expected_effect = {"RDONLY": "EROFS", "NOEXEC": "EPERM", "NOSYMFOLLOW": "ELOOP"}
    for name in names:
        ctx.expect(
            seen[f"{name} set"], f"statvfs flag after attr_set=MOUNT_ATTR_{name}", True, False
        )
        if name in expected_effect:
            ctx.expect_equal(
                seen[f"{name} effect"], expected_effect[name], f"effect of MOUNT_ATTR_{name}"
            )
        ctx.expect(seen[f"{name} cleared"], f"statvfs flag after attr_clr=MOUNT_ATTR_{name}")
        if name in expected_effect:
            ctx.expect_equal(seen[f"{name} effect cleared"], "ok", f"after clearing {name}")
    ctx.expect_equal(seen["propagation -1"], "EINVAL", "mount_setattr with propagation -1")
    ctx.expect_equal(
        seen["propagation MS_SHARED|MS_SLAVE"], "EINVAL", "mount_setattr with two propagations"
    )
    ctx.expect_equal(seen["propagation after invalid"], "private", "propagation after EINVAL")
    ctx.expect_equal(seen["other mount ns"], "EINVAL", "mount_setattr of another mount ns's mount")
    for name, want in (
        ("shared", "shared"),
        ("unbindable", "unbindable"),
        ("slave", "master"),
        ("0 keeps", "shared"),
        ("private", "private"),
    ):
        ctx.expect_equal(seen[f"propagation {name}"], want, f"mountinfo after propagation {name}")


# -- MNT-09 -------------------------------------------------------------------------

_LOCKABLE = {"MS_RDONLY": MS_RDONLY, "MS_NOSUID": MS_NOSUID, "MS_NODEV": MS_NODEV}
_LOCKABLE["MS_NOEXEC"] = MS_NOEXEC
_ALL_LOCKABLE = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
_ALL_LOCKABLE_ATTRS = int(
    MountAttrFlags.RDONLY | MountAttrFlags.NOSUID | MountAttrFlags.NODEV | MountAttrFlags.NOEXEC
)


def _try_unlock(base: str) -> dict[str, str]:
    """In the less privileged namespace: try to reveal, clear flags, read propagation."""
    seen = {"umount covering mount": attempt(syscalls.umount, f"{base}/stack")}
    # Its own mounts are not locked: the EINVAL above is the lock, not the call.
    seen["umount own mount"] = attempt(syscalls.umount, _tmpfs(f"{base}/own"))
    flags = f"{base}/flags"
    remount = MS_REMOUNT | MS_BIND
    seen["remount keeping the flags"] = attempt(
        syscalls.mount, None, flags, None, remount | _ALL_LOCKABLE
    )
    for name, bit in _LOCKABLE.items():
        seen[f"remount clearing {name}"] = attempt(
            syscalls.mount, None, flags, None, remount | (_ALL_LOCKABLE & ~bit)
        )
    seen["mount_setattr clearing all"] = attempt(
        syscalls.mount_setattr, flags, attr_clr=_ALL_LOCKABLE_ATTRS
    )
    seen["propagation"] = _propagation(f"{base}/shared")
    return seen


@check(
    "mnt.locked_in_less_privileged_ns",
    catalogue="MNT-09",
    level="MUST",
    anchors=("mount_namespaces(7) (restrictions on mount namespaces)", "user_namespaces(7)"),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("USER_NS",)),
    timeout=5.0,
)
def locked_in_less_privileged_ns(ctx: Context) -> None:
    """Mounts inherited by a mount ns created with a new user ns are locked and arrive as slaves.

    The check builds, in its own namespace: a tmpfs stacked on another
    (the top one covers the bottom one), a tmpfs mounted ro,nosuid,nodev,noexec,
    and a shared tmpfs. A helper unshares CLONE_NEWUSER|CLONE_NEWNS (the
    less privileged mount namespace, mount_namespaces(7)): unmounting the
    covering tmpfs must fail with EINVAL, a bind remount that keeps the four
    flags must work but one clearing any of them (and mount_setattr clearing
    them) must fail with EPERM; the shared tmpfs must be a slave there
    (``master`` in mountinfo), so the check's mounts arrive and the
    helper's don't go back. Control: the helper unshares CLONE_NEWNS alone,
    so nothing is locked and the copy stays a shared peer.
    """
    base = _tmpfs(os.path.join(ctx.tmpdir, "mnt09"))
    ctx.defer(syscalls.umount, base, MNT_DETACH)
    _tmpfs(f"{base}/stack", "under")
    _tmpfs(f"{base}/stack", "over")
    _tmpfs(f"{base}/flags", None, _ALL_LOCKABLE)
    _tmpfs(f"{base}/shared")
    _set_propagation(f"{base}/shared", MS_SHARED)
    for sub in ("from-parent", "from-child"):
        os.mkdir(f"{base}/shared/{sub}")
    os.mkdir(f"{base}/own")

    helper = ctx.spawn_child(_unshare, ctx.isolate(NEWUSER) | NEWNS)
    helper.recv()
    seen = helper.call(_try_unlock, base)
    ctx.expect_equal(seen["umount covering mount"], "EINVAL", "umount of a locked covering mount")
    ctx.expect_equal(seen["umount own mount"], "ok", "umount of a mount the helper made itself")
    ctx.expect_equal(seen["remount keeping the flags"], "ok", "bind remount keeping all flags")
    for name in _LOCKABLE:
        ctx.expect_equal(seen[f"remount clearing {name}"], "EPERM", f"remount clearing {name}")
    ctx.expect_equal(seen["mount_setattr clearing all"], "EPERM", "mount_setattr clearing them")
    ctx.expect_equal(seen["propagation"], "master", "propagation of an inherited shared mount")
    _tmpfs(f"{base}/shared/from-parent", "mark")
    ctx.expect(
        helper.call(os.path.exists, f"{base}/shared/from-parent/mark"),
        "a mount by the more privileged namespace reaches the less privileged one",
        "present",
        "absent",
    )
    helper.call(_tmpfs, f"{base}/shared/from-child", "mark")
    ctx.expect(
        not os.path.exists(f"{base}/shared/from-child/mark"),
        "a mount by the less privileged namespace reaches the more privileged one",
        "absent",
        "present",
    )


# -- MNT-10 -------------------------------------------------------------------------


def _fs_mount(fstype: str, target: str) -> dict[str, object]:
    """Mount a fresh *fstype* on *target*; report the result and what the mount shows."""
    seen: dict[str, object] = {
        "result": attempt(syscalls.mount, fstype, target, fstype, _PROC_FLAGS)
    }
    if seen["result"] == "ok":
        if fstype == "proc":
            seen["self"] = os.readlink(f"{target}/self")
        else:
            seen["net"] = sorted(os.listdir(f"{target}/class/net"))
    return seen


def _fs_mount_in_userns(ctx: Context, fstype: str, target: str, extra: int) -> dict[str, object]:
    """In a new user+mount namespace (plus *extra*), mount *fstype* from a forked child.

    The fork puts the mounter in a new pid namespace when *extra* has
    CLONE_NEWPID: procfs belongs to the mounter's active pid namespace.
    """
    _unshare(NEWUSER | NEWNS | extra)
    return dict(ctx.in_child(_fs_mount, fstype, target))


def _other_procfs() -> list[str]:
    """Mount points of procfs instances other than /proc and those below it."""
    found: list[str] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040
            if fstype == "proc" and point != "/proc" and not point.startswith("/proc/"):
                found.append(point)
    return found


def _mountinfo_rows() -> list[tuple[int, int, str, str]]:
    """(mount id, parent id, mount point, fs type) of every line of /proc/self/mountinfo."""
    rows = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040
            rows.append((int(fields[0]), int(fields[1]), point, fields[fields.index("-") + 1]))
    return rows


def _covering(point: str) -> list[str]:
    """Mount points of the mounts that hide the procfs on *point* (shortest first).

    A mount on an ancestor path of *point* that is not one of the procfs's own
    ancestor mounts sits on top of the path: umount2(*point*) can't reach it
    (the runner's sandbox mounts its own /tmp over the host's, where a chroot's
    /proc may live).
    """
    rows = _mountinfo_rows()
    parent = {mnt_id: parent_id for mnt_id, parent_id, _, _ in rows}
    procs = [row for row in rows if row[2] == point and row[3] == "proc"]
    if not procs:
        return []
    chain = {procs[-1][0]}
    mnt_id = procs[-1][1]
    while mnt_id in parent and mnt_id not in chain:
        chain.add(mnt_id)
        mnt_id = parent[mnt_id]
    above = {
        where
        for mnt_id, _, where, _ in rows
        if mnt_id not in chain and where != "/" and point.startswith(where.rstrip("/") + "/")
    }
    return sorted(above, key=len)


def _detach_hidden(points: list[str]) -> None:
    """Uncover and detach the procfs mounts on *points* in this private mount namespace.

    The covering mount is cloned (open_tree(2), recursive), detached, the
    procfs now in reach detached, and the clone put back where it was, so
    every path (the check's tmpdir among them) resolves as before.
    """
    for point in points:
        covers = _covering(point)
        if not covers:
            continue
        cover = covers[0]
        try:
            fd = syscalls.open_tree(cover, OPEN_TREE_CLONE | AT_RECURSIVE)
        except (OSError, UnsupportedError):
            continue
        try:
            syscalls.umount(cover, MNT_DETACH)
            for hidden in sorted(_other_procfs(), key=len, reverse=True):
                attempt(syscalls.umount, hidden, MNT_DETACH)
            syscalls.move_mount("", cover, MOVE_MOUNT_F_EMPTY_PATH, from_dirfd=fd)
        finally:
            os.close(fd)


def _masked(ctx: Context, masked: bool, fstype: str, target: str, extra: int) -> dict[str, object]:
    """In a privileged mount namespace of its own, over-mount /proc/sys (if *masked*), then try.

    The kernel allows the user namespace's procfs mount when *any* procfs of the
    mount namespace is fully visible (mount_too_revealing), so a procfs mounted
    elsewhere (a chroot's /proc being built next to the run) would make the
    kernel right and the check wrong: those are detached from this private
    copy first (uncovered first when a mount hides them, as the sandbox's
    /tmp hides a host chroot under /tmp), and if one can't be (a locked
    mount), the case can't be shown.
    """
    if masked:
        for point in sorted(_other_procfs(), key=len, reverse=True):
            attempt(syscalls.umount, point, UmountFlags.DETACH)
        left = _other_procfs()
        if left:
            _detach_hidden(left)  # under a mount of its own: the sandbox's /tmp
            left = _other_procfs()
        if left:
            return {"result": "other-procfs", "where": left[0]}
        _tmpfs("/proc/sys")
    return dict(ctx.in_child(_fs_mount_in_userns, ctx, fstype, target, extra))


@check(
    "mnt.userns_fs_mount_rules",
    catalogue="MNT-10",
    level="MUST",
    anchors=(
        "systemd/systemd#6018",
        "systemd/systemd#35387",
        "mount_namespaces(7)",
        "user_namespaces(7)",
    ),
    needs=Needs(userns=True, min_kernel=(4, 8), kconfig=("USER_NS", "PID_NS", "NET_NS")),
    timeout=5.0,
)
def userns_fs_mount_rules(ctx: Context) -> None:
    """In a user+mount ns, procfs needs an owned pid ns and a fully visible /proc; sysfs a net ns.

    Each case is a helper that unshares CLONE_NEWUSER|CLONE_NEWNS (plus
    CLONE_NEWPID or CLONE_NEWNET where the case owns one) and mounts from a
    forked child: procfs without an owned pid namespace → EPERM; with one →
    works and ``self`` is pid 1; with one but /proc/sys over-mounted by the
    more privileged namespace (the mount is locked, so /proc is not fully
    visible) → EPERM; sysfs without an owned net namespace → EPERM; with one
    → works and shows only ``lo``. Control: each refused case gets what it
    lacked (the pid or net namespace, an unmasked /proc), so it succeeds.
    """
    own = ctx.control  # the control hands every refused case what it lacks
    cases = (
        ("procfs without an owned pid namespace", False, "proc", NEWPID if own else 0, "EPERM"),
        ("procfs with /proc/sys over-mounted", not own, "proc", NEWPID, "EPERM"),
        ("sysfs without an owned net namespace", False, "sysfs", NEWNET if own else 0, "EPERM"),
        ("procfs with an owned pid namespace", False, "proc", NEWPID, "ok"),
        ("sysfs with an owned net namespace", False, "sysfs", NEWNET, "ok"),
    )
    for index, (what, masked, fstype, extra, expected) in enumerate(cases):
        target = os.path.join(ctx.tmpdir, f"mnt10-{index}")
        os.mkdir(target)
        seen = ctx.in_child(_masked, ctx, masked, fstype, target, extra, unshare=NEWNS)
        if seen["result"] == "other-procfs":
            raise Skip(
                f"{what}: another procfs is mounted at {seen['where']} here and can't be "
                "detached, and one fully visible procfs lets the kernel allow the mount"
            )
        if expected == "ok" and seen["result"] == "EPERM":
            raise Skip(f"{what}: EPERM; this environment does not show a fully visible {fstype}")
        ctx.expect_equal(seen["result"], expected, f"mount of {what}")
        if expected == "ok" and fstype == "proc":
            ctx.expect_equal(seen["self"], "1", "/proc/self of the new procfs")
        elif expected == "ok":
            ctx.expect_equal(seen["net"], ["lo"], "class/net of the new sysfs")


# -- MNT-11 to MNT-15: idmapped mounts ------------------------------------------------

#: The idmap written as root: ids 0 and 1000 swap places, so an owner on disk and the
#: owner the mount shows always differ. Rootless, the sandbox maps one id, so "0 0 1".
_SWAP_MAP = "0 1000 1\n1000 0 1\n"
_ROOTLESS_MAP = "0 0 1\n"
_IDMAP_NEEDS = Needs(
    userns=True, min_kernel=(6, 3), kconfig=("USER_NS",), ops=("mount_setattr", "idmap")
)
_IDMAP_ANCHORS = ("selftest mount_setattr (mount_setattr_idmapped)", "mount_setattr(2)")


def _idmap_userns(ctx: Context, maps: str | None = None) -> str:
    """Create a user namespace with *maps* (default: the idmap this run can write).

    Returns its nsfs path. The namespace is held by a helper child
    (premise-checked by ``spawn_child``); the check's process, in the parent
    user namespace, writes both maps.
    """
    holder = ctx.spawn_child(idle, unshare=NEWUSER)
    holder.recv()
    if maps is None:
        maps = _ROOTLESS_MAP if ctx.as_user else _SWAP_MAP
    idmap.write_uid_map(holder.pid, maps)
    idmap.write_gid_map(holder.pid, maps)
    return holder.ns_path("user")


def _mount_options(mountpoint: str) -> list[str]:
    """Return the per-mount options of the topmost mount on *mountpoint* (mountinfo field 6)."""
    found: list[str] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5 and fields[4] == mountpoint:
                found = fields[5].split(",")
    return found


def _idmapped(mountpoint: str) -> bool:
    return "idmapped" in _mount_options(mountpoint)


def _setup(call: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a setup step ``fn(*args)`` (not the operation under test) of syscall *call*.

    EPERM, EACCES or ENOSYS from it here (root of its own namespaces) is a
    refusal by policy (a seccomp filter, an LSM): :class:`Skip` naming it.
    """
    try:
        return fn(*args)
    except OSError as err:
        if err.errno in (errno.EPERM, errno.EACCES, errno.ENOSYS):
            raise Skip(_needs.attribute(f"{call}(2)", err.errno).cause) from None
        raise
    except UnsupportedError as err:
        raise Skip(f"{call}(2): {err}") from None


def _open_tree(path: str, flags: int = 0) -> int:
    return _setup("open_tree", syscalls.open_tree, path, flags)


def _clone(path: str, recursive: bool = False) -> int:
    """open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at *path*."""
    return _open_tree(path, OPEN_TREE_CLONE | (AT_RECURSIVE if recursive else 0))


def _set_idmap(fd: int, userns: str, recursive: bool = False) -> str:
    """mount_setattr(2) MOUNT_ATTR_IDMAP on the mount *fd* with the user namespace at *userns*."""
    ns = os.open(userns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return attempt(
            syscalls.mount_setattr,
            "",
            dirfd=fd,
            flags=AT_EMPTY_PATH,
            attr_set=IDMAP_ATTR,
            userns_fd=ns,
            recursive=recursive,
        )
    finally:
        os.close(ns)


def _attach(fd: int, target: str) -> None:
    """move_mount(2) the detached mount *fd* onto *target* (created if missing)."""
    os.makedirs(target, exist_ok=True)
    _setup("move_mount", _move_detached, fd, target)


def _move_detached(fd: int, target: str) -> None:
    syscalls.move_mount("", target, MOVE_MOUNT_F_EMPTY_PATH, from_dirfd=fd)


def _owners(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_uid, st.st_gid)


def _attached_or_detached(base: str, userns: str, control: bool) -> dict[str, object]:
    """In a private mount namespace: MOUNT_ATTR_IDMAP on attached mounts, then a detached one."""
    _make_root_private()
    src = _tmpfs(f"{base}/src", "mark")
    seen: dict[str, object] = {}
    # An O_PATH-like fd of the attached mount itself (open_tree without OPEN_TREE_CLONE).
    fd = _clone(src) if control else _open_tree(src)
    try:
        seen["attached fd"] = _set_idmap(fd, userns)
    finally:
        os.close(fd)
    if control:
        seen["attached path"] = "ok"  # the control's "attached" cases work on detached copies
    else:
        ns = os.open(userns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            seen["attached path"] = attempt(
                syscalls.mount_setattr, src, attr_set=IDMAP_ATTR, userns_fd=ns
            )
        finally:
            os.close(ns)
    seen["attached mount idmapped"] = _idmapped(src)
    fd = _clone(src)
    try:
        seen["detached"] = _set_idmap(fd, userns)
        _attach(fd, f"{base}/view")
    finally:
        os.close(fd)
    seen["attached copy idmapped"] = _idmapped(f"{base}/view")
    seen["marker through the copy"] = os.path.exists(f"{base}/view/mark")
    return seen


@check(
    "mnt.idmap_detached_only",
    catalogue="MNT-11",
    level="MUST",
    anchors=_IDMAP_ANCHORS,
    needs=_IDMAP_NEEDS,
    timeout=5.0,
)
def idmap_detached_only(ctx: Context) -> None:
    """MOUNT_ATTR_IDMAP is EINVAL on a mount attached to the tree and works on a detached one.

    In a helper with a private mount namespace, a tmpfs is mounted.
    mount_setattr(2) with MOUNT_ATTR_IDMAP (and a user namespace the check
    created and mapped) must fail with EINVAL both on an open_tree(2) fd of
    the mount itself and by path, and the mount must not show ``idmapped``
    in mountinfo; on a detached copy (OPEN_TREE_CLONE) the same call must
    work, and the copy, once attached with move_mount(2), shows ``idmapped``
    and the tmpfs's files (selftest
    ``attached_mount_inside_current_mount_namespace`` and
    ``detached_mount_inside_current_mount_namespace``). Control: the
    "attached" calls are made on detached copies, so they succeed.
    """
    userns = _idmap_userns(ctx)
    base = os.path.join(ctx.tmpdir, "mnt11")
    seen = ctx.in_child(_attached_or_detached, base, userns, ctx.control, unshare=NEWNS)
    ctx.expect_equal(seen["detached"], "ok", "MOUNT_ATTR_IDMAP on a detached copy")
    ctx.expect(seen["attached copy idmapped"], "the attached copy shows idmapped", True, False)
    ctx.expect(seen["marker through the copy"], "the idmapped copy shows the tmpfs's files")
    ctx.expect_equal(seen["attached fd"], "EINVAL", "MOUNT_ATTR_IDMAP on an attached mount's fd")
    ctx.expect_equal(seen["attached path"], "EINVAL", "MOUNT_ATTR_IDMAP on an attached mount")
    ctx.expect(
        not seen["attached mount idmapped"],
        "the attached mount after the refused MOUNT_ATTR_IDMAP is not idmapped",
        False,
        True,
    )


def _idmap_twice(base: str, first: str, second: str, control: bool) -> dict[str, object]:
    """In a private mount namespace: idmap a detached copy, then try a second idmap."""
    _make_root_private()
    src = _tmpfs(f"{base}/src")
    seen: dict[str, object] = {"disk owner": _owners(src)}
    fd = _clone(src)
    try:
        seen["first"] = _set_idmap(fd, first)
        if control:  # the control gives the second idmap a fresh copy
            os.close(fd)
            fd = _clone(src)
        seen["second"] = _set_idmap(fd, second)
        # attr_clr=MOUNT_ATTR_IDMAP; the control clears a clearable attribute instead.
        clear = int(MountAttrFlags.NOSUID) if control else IDMAP_ATTR
        seen["clear"] = attempt(
            syscalls.mount_setattr, "", dirfd=fd, flags=AT_EMPTY_PATH, attr_clr=clear
        )
        _attach(fd, f"{base}/view")
    finally:
        os.close(fd)
    seen["idmapped"] = _idmapped(f"{base}/view")
    seen["shown owner"] = _owners(f"{base}/view")
    return seen


@check(
    "mnt.idmap_once",
    catalogue="MNT-12",
    level="MUST",
    anchors=(*_IDMAP_ANCHORS, "selftest mount_setattr change_idmapping"),
    needs=_IDMAP_NEEDS,
    timeout=5.0,
)
def idmap_once(ctx: Context) -> None:
    """A mount's idmap is final: a second MOUNT_ATTR_IDMAP is EPERM, clearing it EINVAL.

    In a helper with a private mount namespace, a detached copy of a tmpfs
    is idmapped with one user namespace, then MOUNT_ATTR_IDMAP is asked
    again with a second one: EPERM (selftest ``change_idmapping``); and
    ``attr_clr=MOUNT_ATTR_IDMAP``: EINVAL. Attached, the copy is idmapped,
    and as root its root directory, owned by 0 on disk, shows as owned by
    1000, the first idmap's view (it swaps 0 and 1000; the second would
    swap 0 and 2000). Control: the second idmap is applied to a fresh
    copy, so it succeeds, and MOUNT_ATTR_NOSUID is cleared instead.
    """
    first = _idmap_userns(ctx)
    second = _idmap_userns(ctx, None if ctx.as_user else "0 2000 1\n2000 0 1\n")
    base = os.path.join(ctx.tmpdir, "mnt12")
    seen = ctx.in_child(_idmap_twice, base, first, second, ctx.control, unshare=NEWNS)
    ctx.expect_equal(seen["first"], "ok", "the first MOUNT_ATTR_IDMAP on a detached copy")
    ctx.expect_equal(seen["second"], "EPERM", "a second MOUNT_ATTR_IDMAP on the idmapped copy")
    ctx.expect_equal(seen["clear"], "EINVAL", "attr_clr=MOUNT_ATTR_IDMAP on the idmapped copy")
    ctx.expect(seen["idmapped"], "the copy, attached, is idmapped", True, False)
    if not ctx.as_user:
        ctx.expect_equal(seen["disk owner"], (0, 0), "owner of the tmpfs root on disk")
        ctx.expect_equal(seen["shown owner"], (1000, 1000), "owner shown through the first idmap")


def _not_initial_userns() -> str | None:
    """None if this process is in the initial user namespace, else why not.

    The initial user namespace has a fixed nsfs inode (0xEFFFFFFD); a nested
    one, even with a uid_map of all 2**32 ids (a privileged container), has
    another, and from inside it its ancestors can't be opened (NS_GET_PARENT
    and NS_GET_USERNS stop at the caller's own user namespace with EPERM).
    """
    if os.stat("/proc/self/ns/user").st_ino == NsType.USER.init_ino:
        return None
    return (
        f"the run is in a nested user namespace (its nsfs inode is not "
        f"{NsType.USER.init_ino:#x}), not the initial user namespace, which can't be "
        "opened from inside it"
    )


def _idmap_with(base: str, userns: str) -> dict[str, object]:
    """In a private mount namespace: idmap a detached tmpfs copy with the user ns at *userns*."""
    _make_root_private()
    src = _tmpfs(f"{base}/src")
    fd = _clone(src)
    try:
        seen: dict[str, object] = {"result": _set_idmap(fd, userns)}
        _attach(fd, f"{base}/view")
    finally:
        os.close(fd)
    seen["idmapped"] = _idmapped(f"{base}/view")
    return seen


@check(
    "mnt.idmap_not_initial_userns",
    catalogue="MNT-13",
    level="MUST",
    anchors=(*_IDMAP_ANCHORS, "selftest mount_setattr invalid_fd_initial_userns"),
    needs=_IDMAP_NEEDS,
    timeout=5.0,
)
def idmap_not_initial_userns(ctx: Context) -> None:
    """MOUNT_ATTR_IDMAP with the initial user namespace fails with EPERM and leaves the mount as is.

    The initial user namespace is the kernel's marker for "not idmapped",
    so it can't be an idmap (selftest ``invalid_fd_initial_userns``). In a
    helper with a private mount namespace, a detached copy of a tmpfs gets
    MOUNT_ATTR_IDMAP with an fd of the initial user namespace: EPERM, and
    attached it is not idmapped. Rootless, or as root of a nested user
    namespace (a full uid_map doesn't make it the initial one: its nsfs
    inode tells), no fd of the initial user namespace can be had
    (NS_GET_PARENT from inside stops with EPERM), so the check SKIPs.
    Control: a user namespace the check created instead, so the idmap
    succeeds.
    """
    if ctx.as_user:
        raise Skip(
            "the run is inside a user namespace of its own (no CAP_SYS_ADMIN in the "
            "initial one) and the initial one can't be opened from there "
            "(NS_GET_PARENT stops with EPERM)"
        )
    nested = _not_initial_userns()
    if nested is not None:
        raise Skip(nested)
    userns = _idmap_userns(ctx) if ctx.control else "/proc/self/ns/user"
    seen = ctx.in_child(_idmap_with, os.path.join(ctx.tmpdir, "mnt13"), userns, unshare=NEWNS)
    ctx.expect_equal(seen["result"], "EPERM", "MOUNT_ATTR_IDMAP with the initial user namespace")
    ctx.expect(
        not seen["idmapped"], "the copy after the refused idmap is not idmapped", False, True
    )


def _create_through(base: str, userns: str, control: bool) -> dict[str, object]:
    """In a private mount namespace: create files through an idmapped copy of a tmpfs."""
    _make_root_private()
    src = _tmpfs(f"{base}/src")
    os.chmod(src, 0o777)
    _touch(f"{src}/old")
    os.chown(f"{src}/old", 1000, 1000)
    fd = _clone(src)
    try:
        seen: dict[str, object] = {"idmap": "not asked" if control else _set_idmap(fd, userns)}
        _attach(fd, f"{base}/view")
    finally:
        os.close(fd)
    view = f"{base}/view"
    _touch(f"{view}/new")
    os.mkdir(f"{view}/newdir")
    seen.update(
        {
            "root shown": _owners(view),
            "old shown": _owners(f"{view}/old"),
            "new shown": _owners(f"{view}/new"),
            "new on disk": _owners(f"{src}/new"),
            "newdir on disk": _owners(f"{src}/newdir"),
        }
    )
    return seen


@check(
    "mnt.idmap_owner_on_disk",
    catalogue="MNT-14",
    level="MUST",
    anchors=(*_IDMAP_ANCHORS, "xfstests vfs/idmapped-mounts", "mount_idmappings docs"),
    needs=_IDMAP_NEEDS,
    timeout=5.0,
)
def idmap_owner_on_disk(ctx: Context) -> None:
    """Through an idmapped mount, owners are shown mapped and files created are stored unmapped.

    As root, in a helper with a private mount namespace: a tmpfs (root
    directory owned by 0, a file ``old`` chowned to 1000) is cloned, the
    copy idmapped with a user namespace whose map swaps ids 0 and 1000, and
    attached. Through it the root directory shows owner 1000 and ``old``
    owner 0; a file and a directory root creates through it are stored on
    the tmpfs as 1000:1000 (seen through the original mount) and show as
    0:0 through the copy. Rootless the sandbox maps one id, so no idmap can
    show another and the check SKIPs. Control: the copy is not idmapped, so
    the new file is stored as 0:0.
    """
    if ctx.as_user:
        raise Skip(
            "the run's own user namespace maps a single id, so no idmap can show or "
            "store a file's owner as another id"
        )
    userns = _idmap_userns(ctx)
    base = os.path.join(ctx.tmpdir, "mnt14")
    seen = ctx.in_child(_create_through, base, userns, ctx.control, unshare=NEWNS)
    ctx.expect_equal(seen["new on disk"], (1000, 1000), "on-disk owner of a file created by root")
    ctx.expect_equal(seen["newdir on disk"], (1000, 1000), "on-disk owner of a new directory")
    ctx.expect_equal(seen["new shown"], (0, 0), "owner of the new file through the idmapped mount")
    ctx.expect_equal(seen["root shown"], (1000, 1000), "tmpfs root (0 on disk) through the idmap")
    ctx.expect_equal(seen["old shown"], (0, 0), "a file owned by 1000 on disk through the idmap")
    ctx.expect_equal(seen["idmap"], "ok", "MOUNT_ATTR_IDMAP on the detached copy")


_TREE = ("a", "b", "c")  # submounts of the tree, in mount order; "b" is the one that can't


def _idmap_tree(base: str, userns: str, bad: str) -> dict[str, object]:
    """In a private mount namespace: recursively idmap a tree whose "b" is a *bad* fs."""
    _make_root_private()
    # The premise: ramfs itself refuses an idmap here (no FS_ALLOW_IDMAP).
    os.makedirs(f"{base}/ramfs")
    syscalls.mount("ramfs", f"{base}/ramfs", "ramfs", 0)
    fd = _clone(f"{base}/ramfs")
    try:
        alone = _set_idmap(fd, userns)
    finally:
        os.close(fd)
    if alone != "EINVAL":
        return {"ramfs alone": alone}
    top = _tmpfs(f"{base}/top", "mark")
    for sub in _TREE:
        os.mkdir(f"{top}/{sub}")
        if sub == "b":
            syscalls.mount(bad, f"{top}/{sub}", bad, 0)
        else:
            _tmpfs(f"{top}/{sub}")
    fd = _clone(top, recursive=True)
    try:
        seen: dict[str, object] = {"result": _set_idmap(fd, userns, recursive=True)}
        _attach(fd, f"{base}/view")
    finally:
        os.close(fd)
    view = f"{base}/view"
    seen["idmapped"] = {
        name: _idmapped(path)
        for name, path in (("top", view), *((sub, f"{view}/{sub}") for sub in _TREE))
    }
    seen["tree"] = os.path.exists(f"{view}/mark")
    return seen


@check(
    "mnt.idmap_tree_all_or_nothing",
    catalogue="MNT-15",
    level="MUST",
    anchors=(*_IDMAP_ANCHORS, "selftest mount_setattr idmap_mount_tree_invalid"),
    needs=_IDMAP_NEEDS,
    timeout=5.0,
)
def idmap_tree_all_or_nothing(ctx: Context) -> None:
    """A recursive MOUNT_ATTR_IDMAP that meets a mount it can't idmap is EINVAL and idmaps none.

    In a helper with a private mount namespace, a tmpfs gets three
    submounts in order: tmpfs ``a``, ramfs ``b`` (ramfs does not support
    idmapped mounts) and tmpfs ``c``. A detached recursive copy
    (OPEN_TREE_CLONE|AT_RECURSIVE) is idmapped with AT_RECURSIVE: EINVAL,
    and once attached no mount of the copy, not even the top or ``a``
    which come before ``b``, shows ``idmapped`` (selftest
    ``idmap_mount_tree_invalid``). The premise, that ramfs refuses an idmap
    (EINVAL on a lone ramfs), is checked first; a kernel where it doesn't
    SKIPs. Control: ``b`` is a tmpfs too, so the idmap succeeds and every
    mount shows ``idmapped``.
    """
    userns = _idmap_userns(ctx)
    base = os.path.join(ctx.tmpdir, "mnt15")
    bad = "tmpfs" if ctx.control else "ramfs"
    seen = ctx.in_child(_idmap_tree, base, userns, bad, unshare=NEWNS)
    if "ramfs alone" in seen:
        raise Skip(
            f"MOUNT_ATTR_IDMAP on a lone ramfs gives {seen['ramfs alone']}, not EINVAL: "
            "ramfs can't be the submount that makes the recursion fail on this kernel"
        )
    ctx.expect(seen["tree"], "the attached copy shows the tree")
    ctx.expect_equal(seen["result"], "EINVAL", "recursive MOUNT_ATTR_IDMAP over a ramfs submount")
    ctx.expect_equal(
        seen["idmapped"],
        dict.fromkeys(("top", *_TREE), False),
        "mounts of the tree that show idmapped after the refused recursive idmap",
    )


# -- MNT-16 -------------------------------------------------------------------------


def _setattr_from_userns(base: str, flags: int) -> dict[str, object]:
    """Mount a tmpfs here, unshare *flags* (a user ns, maybe a mount ns), try mount_setattr."""
    _make_root_private()
    target = _tmpfs(f"{base}/target", "mark")
    _unshare(flags)
    return {
        "result": attempt(syscalls.mount_setattr, target, attr_set=MS_RDONLY_ATTR),
        "read-only": bool(os.statvfs(target).f_flag & os.ST_RDONLY),
    }


@check(
    "mnt.setattr_needs_owning_userns",
    catalogue="MNT-16",
    level="MUST",
    anchors=("selftest mount_setattr wrong_user_namespace", "mount_setattr(2)"),
    needs=Needs(userns=True, min_kernel=(5, 12), kconfig=("USER_NS",), ops=("mount_setattr",)),
    timeout=5.0,
)
def setattr_needs_owning_userns(ctx: Context) -> None:
    """mount_setattr(2) from a user namespace that does not own the mount namespace is EPERM.

    A helper with a private mount namespace mounts a tmpfs, then unshares
    CLONE_NEWUSER alone (it is root in the new user namespace, but its
    mount namespace is still owned by the parent one) and asks for
    MOUNT_ATTR_RDONLY: EPERM, and the tmpfs stays writable (selftest
    ``wrong_user_namespace``). Control: the helper unshares
    CLONE_NEWUSER|CLONE_NEWNS, so its new mount namespace is owned by its
    new user namespace and the call works.
    """
    flags = NEWUSER | (NEWNS if ctx.control else 0)
    seen = ctx.in_child(
        _setattr_from_userns, os.path.join(ctx.tmpdir, "mnt16"), flags, unshare=NEWNS
    )
    ctx.expect_equal(
        seen["result"], "EPERM", "mount_setattr(MOUNT_ATTR_RDONLY) from a non-owning user ns"
    )
    ctx.expect(
        not seen["read-only"], "the mount after the refused mount_setattr is read-only", False, True
    )


# -- MNT-17 -------------------------------------------------------------------------


def _readonly_with_writer(base: str, keep_writer: bool) -> dict[str, object]:
    """In a private mount namespace: make RDONLY a tree with a file open for writing deep inside."""
    _make_root_private()
    top = _tmpfs(f"{base}/top")
    mid = _tmpfs(f"{top}/mid")
    low = _tmpfs(f"{mid}/low")
    tree = {"top": top, "mid": mid, "low": low}
    writer = os.open(f"{low}/open-for-writing", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if not keep_writer:
            os.close(writer)
            writer = -1
        result = attempt(
            syscalls.mount_setattr,
            top,
            attr_set=MS_RDONLY_ATTR | int(MountAttrFlags.NOEXEC),
            propagation=MS_SHARED,
            recursive=True,
        )
    finally:
        if writer >= 0:
            os.close(writer)
    return {
        "result": result,
        "read-only": {k: bool(os.statvfs(p).f_flag & os.ST_RDONLY) for k, p in tree.items()},
        "noexec": {k: bool(os.statvfs(p).f_flag & os.ST_NOEXEC) for k, p in tree.items()},
        "propagation": {k: _propagation(p) for k, p in tree.items()},
    }


@check(
    "mnt.recursive_setattr_all_or_nothing",
    catalogue="MNT-17",
    level="MUST",
    anchors=(
        "selftest mount_setattr mount_has_writers",
        "selftest mount_setattr basic_recursive",
        "mount_setattr(2)",
    ),
    needs=Needs(min_kernel=(5, 12), ops=("mount_setattr",)),
    timeout=5.0,
)
def recursive_setattr_all_or_nothing(ctx: Context) -> None:
    """A recursive mount_setattr that fails on one mount (EBUSY: a writer) changes no mount.

    In a helper with a private mount namespace, three stacked tmpfs mounts
    (top, mid under it, low under mid) hold a file open for writing on
    ``low``. mount_setattr(2) with AT_RECURSIVE, MOUNT_ATTR_RDONLY|NOEXEC and
    MS_SHARED on ``top`` must fail with EBUSY (the open writer), and every
    mount of the tree must keep its flags (writable, exec) and stay private
    (selftest ``mount_has_writers``). Control: the writer is closed first,
    so the call succeeds and every mount changes.
    """
    seen = ctx.in_child(
        _readonly_with_writer, os.path.join(ctx.tmpdir, "mnt17"), not ctx.control, unshare=NEWNS
    )
    ctx.expect_equal(
        seen["result"], "EBUSY", "recursive MOUNT_ATTR_RDONLY with a file open to write"
    )
    levels = ("top", "mid", "low")
    ctx.expect_equal(
        seen["read-only"], dict.fromkeys(levels, False), "read-only mounts after EBUSY"
    )
    ctx.expect_equal(seen["noexec"], dict.fromkeys(levels, False), "noexec mounts after EBUSY")
    ctx.expect_equal(
        seen["propagation"], dict.fromkeys(levels, "private"), "propagation after EBUSY"
    )


# -- MNT-18 -------------------------------------------------------------------------


def _peer_groups(base: str, set_group: bool) -> dict[str, object]:
    """In a private mount namespace: give a private bind the peer group of a shared mount."""
    _make_root_private()
    src = _tmpfs(f"{base}/src")
    for sub in ("from-src", "from-dst"):
        os.mkdir(f"{src}/{sub}")
    _set_propagation(src, MS_SHARED)
    dst = f"{base}/dst"
    os.mkdir(dst)
    syscalls.mount(src, dst, None, MS_BIND)
    _set_propagation(dst, MS_PRIVATE)  # a bind of a shared mount joins its group; leave it
    seen: dict[str, object] = {"before": _propagation(dst)}
    seen["set group"] = "not asked"
    if set_group:
        try:
            _setup("move_mount", syscalls.move_mount, src, dst, MOVE_MOUNT_SET_GROUP)
            seen["set group"] = "ok"
        except OSError as err:
            seen["set group"] = errname(err)
    seen["groups"] = (_peer_group(src), _peer_group(dst))
    _tmpfs(f"{src}/from-src", "mark")
    seen["src to dst"] = os.path.exists(f"{dst}/from-src/mark")
    _tmpfs(f"{dst}/from-dst", "mark")
    seen["dst to src"] = os.path.exists(f"{src}/from-dst/mark")
    return seen


def _peer_group(mountpoint: str) -> str | None:
    """Return the ``shared:N`` tag of the topmost mount on *mountpoint*, or None."""
    tag = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left = line.split(" - ", 1)[0].split()
            if len(left) >= 6 and left[4] == mountpoint:
                tag = next((t for t in left[6:] if t.startswith("shared:")), None)
    return tag


@check(
    "mnt.move_mount_set_group",
    catalogue="MNT-18",
    level="MUST",
    anchors=("selftest move_mount_set_group", "move_mount(2) MOVE_MOUNT_SET_GROUP", "CRIU"),
    needs=Needs(min_kernel=(5, 15)),
    timeout=5.0,
)
def move_mount_set_group(ctx: Context) -> None:
    """move_mount(2) with MOVE_MOUNT_SET_GROUP puts a private mount into another's peer group.

    In a helper with a private mount namespace, a tmpfs is made shared and
    a bind of it private. move_mount(src, dst, MOVE_MOUNT_SET_GROUP) must
    succeed; both must then show the same ``shared:N`` in mountinfo, and a
    mount under either must appear under the other (the way CRIU restores
    peer groups; selftest ``move_mount_set_group``). EPERM, EACCES or ENOSYS
    from move_mount(2) here, as root of the namespace, is a refusal by
    policy: SKIP naming it. Control: the call is not made, so the bind
    stays private and nothing propagates.
    """
    seen = ctx.in_child(
        _peer_groups, os.path.join(ctx.tmpdir, "mnt18"), not ctx.control, unshare=NEWNS
    )
    ctx.expect_equal(seen["before"], "private", "propagation of the bind before the call")
    src_group, dst_group = seen["groups"]
    ctx.expect(
        src_group is not None and src_group == dst_group,
        f"the bind joins the shared mount's peer group (move_mount: {seen['set group']})",
        src_group,
        dst_group,
    )
    ctx.expect(
        seen["src to dst"], "a mount under the source reaches the target", "present", "absent"
    )
    ctx.expect(
        seen["dst to src"], "a mount under the target reaches the source", "present", "absent"
    )


# -- MNT-19 -------------------------------------------------------------------------

# (case, expected errno): do_set_group()'s refusals, each with a well-formed twin.
_SET_GROUP_CASES = (
    ("target on another superblock", "EINVAL"),
    ("private source", "EINVAL"),
    ("target already shared", "EINVAL"),
    ("target root wider than the source's", "EINVAL"),
    ("target not a mount root", "EINVAL"),
)


def _set_group_case(base: str, case: str, malformed: bool) -> dict[str, object]:
    """In a private mount namespace: build one MOVE_MOUNT_SET_GROUP case and try it.

    With *malformed* false the case's defect is left out (the well-formed twin).
    """
    _make_root_private()
    fs = _tmpfs(f"{base}/fs")
    os.makedirs(f"{fs}/sub/dir")
    _set_propagation(fs, MS_SHARED)
    src, dst = fs, f"{base}/dst"
    os.mkdir(dst)
    if case == "target on another superblock" and malformed:
        _tmpfs(dst)
    elif case == "target root wider than the source's":
        # Malformed: the source is a bind of sub (narrower) and the target the whole fs.
        src = f"{base}/src"
        os.mkdir(src)
        syscalls.mount(f"{fs}/sub" if malformed else fs, src, None, MS_BIND)
        syscalls.mount(fs if malformed else f"{fs}/sub", dst, None, MS_BIND)
        _set_propagation(src, MS_SHARED)
    else:
        syscalls.mount(fs, dst, None, MS_BIND)
    if case != "target root wider than the source's":
        _set_propagation(dst, MS_PRIVATE)  # the bind joined the shared fs's group: leave it
    if case == "private source" and malformed:
        _set_propagation(src, MS_PRIVATE)
    if case == "target already shared" and malformed:
        _set_propagation(dst, MS_SHARED)  # a group of its own
    else:
        _set_propagation(dst, MS_PRIVATE)
    target = f"{dst}/sub" if case == "target not a mount root" and malformed else dst
    before = _propagation(dst)
    try:
        _setup("move_mount", syscalls.move_mount, src, target, MOVE_MOUNT_SET_GROUP)
        result = "ok"
    except OSError as err:
        result = errname(err)
    return {
        "result": result,
        "before": before,
        "after": _propagation(dst),
    }


@check(
    "mnt.set_group_rules",
    catalogue="MNT-19",
    level="MUST",
    anchors=("move_mount(2) MOVE_MOUNT_SET_GROUP", "kernel do_set_group()", "CRIU"),
    needs=Needs(min_kernel=(5, 15)),
    timeout=5.0,
)
def set_group_rules(ctx: Context) -> None:
    """MOVE_MOUNT_SET_GROUP is EINVAL across superblocks, from private sources, onto shared targets.

    Each case in a helper with a private mount namespace, on a shared
    tmpfs: the target is another tmpfs; the source is private; the target
    is already shared (a group of its own); the target's root is wider than
    the source's (the source is a bind of a subdirectory, the target of the
    whole tmpfs); the target path is a directory, not a mount root. Each
    must fail with EINVAL and leave the target's propagation as it was.
    EPERM, EACCES or ENOSYS from move_mount(2) here is a refusal by policy:
    SKIP naming it. Control: each case's well-formed twin (a bind of the
    same tmpfs, a shared source, a private target, a narrower target, the
    mount root), which succeeds and joins the source's peer group.
    """
    for index, (case, expected) in enumerate(_SET_GROUP_CASES):
        base = os.path.join(ctx.tmpdir, f"mnt19-{index}")
        seen = ctx.in_child(_set_group_case, base, case, not ctx.control, unshare=NEWNS)
        ctx.expect_equal(seen["result"], expected, f"MOVE_MOUNT_SET_GROUP with {case}")
        ctx.expect_equal(seen["after"], seen["before"], f"target's propagation after: {case}")


# -- MNT-20 -------------------------------------------------------------------------

#: Maps on-disk id 0 (shown as 1000) and nothing else: not the caller (0), not 1000 on disk.
_NARROW_MAP = "0 1000 1\n"


def _overflow_ids() -> tuple[int, int]:
    ids = []
    for name in ("overflowuid", "overflowgid"):
        with open(f"/proc/sys/fs/{name}") as f:
            ids.append(int(f.read()))
    return (ids[0], ids[1])


def _unmapped_through(base: str, userns: str) -> dict[str, object]:
    """In a private mount namespace: look and create through an idmapped copy of a tmpfs."""
    _make_root_private()
    src = _tmpfs(f"{base}/src")
    os.chmod(src, 0o777)
    _touch(f"{src}/old")
    os.chown(f"{src}/old", 1000, 1000)
    fd = _clone(src)
    try:
        seen: dict[str, object] = {"idmap": _set_idmap(fd, userns)}
        _attach(fd, f"{base}/view")
    finally:
        os.close(fd)
    view = f"{base}/view"
    seen["root shown"] = _owners(view)
    seen["old shown"] = _owners(f"{view}/old")
    seen["create"] = attempt(_touch, f"{view}/new")
    seen["mkdir"] = attempt(os.mkdir, f"{view}/newdir")
    seen["on disk"] = sorted(os.listdir(src))
    return seen


@check(
    "mnt.idmap_unmapped_ids",
    catalogue="MNT-20",
    level="MUST",
    anchors=(*_IDMAP_ANCHORS, "xfstests vfs/idmapped-mounts", "mount_idmappings docs"),
    needs=_IDMAP_NEEDS,
    timeout=5.0,
)
def idmap_unmapped_ids(ctx: Context) -> None:
    """An idmapped mount shows unmapped owners as overflow ids; unmapped callers can't create there.

    As root, in a helper with a private mount namespace: a tmpfs (root
    directory owned by 0, mode 0777; a file ``old`` owned by 1000) is cloned,
    idmapped with a user namespace whose map is only ``0 1000 1``, and
    attached. The root directory shows owner 1000; ``old``, whose 1000 the
    idmap doesn't map, shows /proc/sys/fs/overflowuid:overflowgid; root,
    whose fsuid 0 the idmap doesn't map either, can neither create a file
    nor a directory there: EOVERFLOW, and nothing appears on the tmpfs.
    Rootless the sandbox maps one id, so no idmap can leave the caller out
    and the check SKIPs. Control: the idmap swaps 0 and 1000 (both mapped),
    so the creations work.
    """
    if ctx.as_user:
        raise Skip(
            "the run's own user namespace maps a single id, so no idmap can leave "
            "the caller or a file's owner unmapped"
        )
    userns = _idmap_userns(ctx, _SWAP_MAP if ctx.control else _NARROW_MAP)
    seen = ctx.in_child(_unmapped_through, os.path.join(ctx.tmpdir, "mnt20"), userns, unshare=NEWNS)
    ctx.expect_equal(seen["idmap"], "ok", "MOUNT_ATTR_IDMAP on the detached copy")
    ctx.expect_equal(seen["create"], "EOVERFLOW", "creating a file as an unmapped caller")
    ctx.expect_equal(seen["mkdir"], "EOVERFLOW", "creating a directory as an unmapped caller")
    ctx.expect_equal(seen["on disk"], ["old"], "entries of the tmpfs after the refused creations")
    ctx.expect_equal(seen["root shown"], (1000, 1000), "tmpfs root (0 on disk) through the idmap")
    ctx.expect_equal(seen["old shown"], _overflow_ids(), "a file owned by unmapped 1000")
