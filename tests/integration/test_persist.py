"""Namespace.persist / nsprim.unpersist against the real kernel.

Everything that mounts runs inside a throwaway mount namespace made by
``nsprim.call(..., namespaces=["mnt"])`` (its mounts are private), so the
host's mount table never changes; the files live under pytest's tmp_path.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest

import nsprim
from nsprim import Namespace, NsType, syscalls
from nsprim.flags import MountFlags
from nsprim.listing import Held, NsRef, scan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount")

ALL = [t.value for t in NsType]


def _mounts() -> list[str]:
    with open("/proc/thread-self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _in_private_mntns(fn, *args):  # type: ignore[no-untyped-def]
    return nsprim.call(fn, *args, namespaces=["mnt"], timeout=60)


def _spawn(types: list[str], **kw: object) -> nsprim.NsProcess:
    """A sleeping child in new *types*; with mnt, one whose mount namespace persist accepts.

    The kernel binds a mount namespace file only when its namespace id is
    above the caller's, and those ids come from per-CPU batches, so a child's
    can be lower than its parent's: spawn again until it is above. Each try
    pins this process's threads (the launcher's too: the fork path forks
    there) to the next CPU, so that a scheduler that keeps putting the
    child on the CPU with the older batch can't make every try miss (seen
    in CI: 50 misses on 2 CPUs). This runs in nsprim.call's throwaway child.
    """
    mine = Namespace.of_self("mnt").ns_id
    cpus = sorted(os.sched_getaffinity(0))
    for i in range(50):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that just ended
                os.sched_setaffinity(int(tid), {cpus[i % len(cpus)]})
        proc = nsprim.spawn(["sleep", "60"], namespaces=types, **kw)  # type: ignore[arg-type]
        theirs = Namespace.of_pid(proc.pid, "mnt").ns_id
        if "mnt" not in types or mine is None or theirs is None or theirs > mine:
            return proc
        proc.kill()
        proc.wait()
    raise AssertionError("no child mount namespace with an id above the caller's in 50 tries")


def _persist_and_outlive(d: str, types: list[str]) -> dict[str, str]:
    before = _mounts()
    proc = _spawn(types, hostname="persisted")
    try:
        orig = {t: Namespace.of_pid(proc.pid, t) for t in types}
        for t in types:
            orig[t].persist(os.path.join(d, t))
    finally:
        proc.kill()
        proc.wait()
    seen = {}
    held = scan().by_ref()
    for t in types:
        p = os.path.join(d, t)
        again = Namespace.from_path(p)
        assert again == orig[t], t  # same (type, dev, ino) after its last process died
        assert p in _mounts()
        info = held[NsRef(NsType(t), again.dev, again.ino)]
        assert Held.BIND_MOUNT in info.held and Held.PROCESS not in info.held, info
        assert any(m.path == p for m in info.mounts), info.mounts
        if t == "uts":
            seen["uts"] = nsprim.call_in(again, socket.gethostname, types=["uts"])
    for t in types:
        p = os.path.join(d, t)
        nsprim.unpersist(p)
        assert not os.path.exists(p)
    assert _mounts() == before
    return seen


def test_uts_and_net_outlive_their_process_until_unpersist(tmp_path: Path) -> None:
    seen = _in_private_mntns(_persist_and_outlive, str(tmp_path), ["uts", "net"])
    assert seen == {"uts": "persisted"}
    assert list(tmp_path.iterdir()) == []


def test_every_type_persists(tmp_path: Path) -> None:
    # mnt too: the spawned child's mount namespace is newer than the caller's.
    _in_private_mntns(_persist_and_outlive, str(tmp_path), ALL)
    assert list(tmp_path.iterdir()) == []


def _shared_refused(d: str) -> None:
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    os.mkdir(a)
    os.mkdir(b)
    syscalls.mount("tmpfs", a, "tmpfs", 0)
    syscalls.mount(None, a, None, MountFlags.SHARED)
    syscalls.mount(a, b, None, MountFlags.BIND)  # b is a's peer
    before = _mounts()
    proc = _spawn(["mnt", "uts"])
    try:
        mnt = Namespace.of_pid(proc.pid, "mnt")
        with pytest.raises(ValueError, match="make-private"):
            mnt.persist(os.path.join(a, "mnt"))
        assert not os.path.exists(os.path.join(a, "mnt"))
        assert _mounts() == before
        # Other types propagate to the peer, and so does their unmount.
        Namespace.of_pid(proc.pid, "uts").persist(os.path.join(a, "uts"))
        assert os.path.join(b, "uts") in _mounts()
        nsprim.unpersist(os.path.join(a, "uts"))
        assert _mounts() == before
        # A private mount takes the mount namespace.
        syscalls.mount(None, a, None, MountFlags.PRIVATE)
        mnt.persist(os.path.join(a, "mnt"))
        assert Namespace.from_path(os.path.join(a, "mnt")) == mnt
        nsprim.unpersist(os.path.join(a, "mnt"))
        assert _mounts() == before
    finally:
        proc.kill()
        proc.wait()


def test_mount_namespace_onto_a_shared_mount_is_refused(tmp_path: Path) -> None:
    _in_private_mntns(_shared_refused, str(tmp_path))


def _loops_refused(d: str) -> None:
    before = _mounts()
    target = os.path.join(d, "self")
    with pytest.raises(ValueError, match="own mount namespace"):
        Namespace.of_self("mnt").persist(target)
    # The parent's (older) mount namespace: refused (by NS_GET_ID where the
    # kernel has it, else by the kernel's EINVAL, after which the file that
    # persist created is removed again).
    with pytest.raises(ValueError, match="newer than the caller's"):
        Namespace.of_pid(os.getppid(), "mnt").persist(target)
    assert not os.path.exists(target)
    # A child whose mount namespace id is lower than ours, when the per-CPU id
    # batches give one: the check comes before the file is created.
    mine = Namespace.of_self("mnt").ns_id
    if mine is not None:
        for _ in range(50):
            proc = nsprim.spawn(["sleep", "60"], namespaces=["mnt"])
            try:
                child = Namespace.of_pid(proc.pid, "mnt")
                theirs = child.ns_id
                assert theirs is not None
                if theirs < mine:
                    with pytest.raises(ValueError, match="per-CPU"):
                        child.persist(target)
                    assert not os.path.exists(target)
                    break
            finally:
                proc.kill()
                proc.wait()
    assert _mounts() == before


def test_mount_namespace_loops_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    _in_private_mntns(_loops_refused, str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def _bad_inputs(d: str) -> None:
    before = _mounts()
    uts = Namespace.of_self("uts")
    with pytest.raises(TypeError, match="path"):
        uts.persist(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path"):
        uts.persist(b"/tmp/x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        uts.persist("")
    with pytest.raises(ValueError, match="NUL"):
        uts.persist(os.path.join(d, "a\0b"))
    with pytest.raises(FileNotFoundError):
        uts.persist(os.path.join(d, "missing", "uts"))
    with pytest.raises(IsADirectoryError):
        uts.persist(d)
    os.symlink("/etc/hostname", os.path.join(d, "link"))
    with pytest.raises(ValueError, match="symlink"):
        uts.persist(os.path.join(d, "link"))
    os.mkfifo(os.path.join(d, "fifo"))
    with pytest.raises(ValueError, match="regular file"):
        uts.persist(os.path.join(d, "fifo"))
    # A relative path is taken against the working directory, as mount(8) does.
    os.chdir(d)
    uts.persist("rel")
    assert os.path.join(d, "rel") in _mounts()
    with pytest.raises(FileExistsError, match="mount point"):
        uts.persist("rel")
    nsprim.unpersist(Path("rel"), remove=False)  # as umount FILE: the file stays
    assert os.path.isfile(os.path.join(d, "rel"))
    # unpersist refuses what persist did not make.
    with pytest.raises(ValueError, match="not a mount point"):
        nsprim.unpersist(os.path.join(d, "rel"))
    with pytest.raises(FileNotFoundError):
        nsprim.unpersist(os.path.join(d, "nothing"))
    with pytest.raises(TypeError, match="remove"):
        nsprim.unpersist(os.path.join(d, "rel"), remove=1)  # type: ignore[arg-type]
    other = os.path.join(d, "other")
    with open(other, "w") as f:
        f.write("data")
    syscalls.mount("/etc/hostname", other, None, MountFlags.BIND)
    with pytest.raises(ValueError, match="not of a namespace file"):
        nsprim.unpersist(other)
    assert other in _mounts()
    syscalls.umount(other)
    # A file with content under the mount is never removed.
    uts.persist(other)
    nsprim.unpersist(other)
    with open(other) as f:
        assert f.read() == "data"
    assert _mounts() == before
    # A mount the kernel refuses (no CAP_SYS_ADMIN) leaves neither a mount nor the file.
    syscalls.drop_capabilities()
    with pytest.raises(PermissionError):
        uts.persist(os.path.join(d, "nocap"))
    assert not os.path.exists(os.path.join(d, "nocap"))
    assert _mounts() == before


def test_bad_inputs_give_typed_errors_before_any_harm(tmp_path: Path) -> None:
    _in_private_mntns(_bad_inputs, str(tmp_path))


def _in_user_namespace(d: str) -> tuple[bool, bool]:
    proc = nsprim.spawn(["sleep", "60"], namespaces=["uts"])
    try:
        target = os.path.join(d, "uts")
        Namespace.of_pid(proc.pid, "uts").persist(target)
        same = Namespace.from_path(target) == Namespace.of_pid(proc.pid, "uts")
        nsprim.unpersist(target)
        return same, os.path.exists(target)
    finally:
        proc.kill()
        proc.wait()


def test_persist_needs_only_cap_sys_admin_over_the_mount_namespace(tmp_path: Path) -> None:
    # The rootless shape: a user namespace's root owns the new mount namespace.
    tmp_path.chmod(0o777)
    out = nsprim.call(
        _in_user_namespace, str(tmp_path), namespaces=["user", "mnt"], map_root=True, timeout=60
    )
    assert out == (True, False)
