"""Mount namespace checks: MNT-01 to MNT-10.

Layer: conformance checks. Imports public nsprim names, the conformance
registry, and :mod:`.._libc` for clone3(2) and mount_setattr(2) with the
arguments whose nsprim binding validates away the kernel error under test.

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

import mmap
import os
import re
import threading

from nsprim import idmap, process, syscalls
from nsprim.flags import CloneFlags, MountAttrFlags, MountFlags, UmountFlags

from .. import _libc
from ..registry import Context, Needs, Skip, check
from ._common import attempt, idle, unshare

__all__: list[str] = []

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


def _masked(ctx: Context, masked: bool, fstype: str, target: str, extra: int) -> dict[str, object]:
    """In a privileged mount namespace of its own, over-mount /proc/sys (if *masked*), then try.

    The kernel allows the user namespace's procfs mount when *any* procfs of the
    mount namespace is fully visible (mount_too_revealing), so a procfs mounted
    elsewhere (a chroot's /proc being built next to the run) would make the
    kernel right and the check wrong: those are detached from this private
    copy first, and if one can't be (a locked mount), the case can't be shown.
    """
    if masked:
        for point in sorted(_other_procfs(), key=len, reverse=True):
            attempt(syscalls.umount, point, UmountFlags.DETACH)
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
