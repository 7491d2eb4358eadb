"""The namespace model on the real kernel: identity, lookups, relations."""

from __future__ import annotations

import errno
import os
import pickle
import signal
import subprocess
import tempfile
import time

import pytest
from forked import in_child

from nsprim import AccessDenied, NoSuchProcess, NsprimError
from nsprim import syscalls as S
from nsprim.flags import CloneFlags, MountFlags, UmountFlags
from nsprim.namespace import Namespace, NsType, namespaces, nstype_of


def test_nstype_table_matches_proc() -> None:
    assert {t.value for t in NsType} <= set(os.listdir("/proc/self/ns"))
    assert NsType.parse("NET") is NsType.NET
    assert NsType.parse(int(CloneFlags.NEWTIME)) is NsType.TIME
    with pytest.raises(
        ValueError, match="unknown namespace type 'bogus'; expected one of mnt, uts"
    ):
        NsType.parse("bogus")
    with pytest.raises(TypeError):
        NsType.parse(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a single CLONE_NEW"):
        NsType.parse(int(CloneFlags.NEWNET | CloneFlags.NEWUTS))


def test_identity_is_dev_and_inode_not_the_path() -> None:
    a = Namespace.of_self("net")
    b = Namespace.of_pid(os.getpid(), NsType.NET)
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        c = Namespace.from_fd(fd)
    finally:
        os.close(fd)
    assert a == b == c and hash(a) == hash(c)
    st = os.stat("/proc/self/ns/net")
    assert (a.dev, a.ino) == (st.st_dev, st.st_ino)
    assert a != Namespace.of_self("uts")
    assert str(a) == os.readlink("/proc/self/ns/net")


def test_namespaces_returns_all_eight_types_here() -> None:
    ns = namespaces()
    assert set(ns) == set(NsType)
    assert all(n.type is t for t, n in ns.items())


def test_of_pid_of_a_vanished_process_is_no_such_process() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with pytest.raises(NoSuchProcess) as info:
        Namespace.of_pid(pid, "net")
    assert info.value.pid == pid
    with pytest.raises(NoSuchProcess):
        namespaces(pid)


def test_of_pid_rejects_bad_pids() -> None:
    with pytest.raises(ValueError, match="pid must be a positive process id, got 0"):
        Namespace.of_pid(0, "net")
    with pytest.raises(TypeError, match="pid must be an int"):
        Namespace.of_pid("1", "net")  # type: ignore[arg-type]


def _as_nobody_of_pid1() -> str:
    from forked import drop_to_nobody

    drop_to_nobody()
    try:
        Namespace.of_pid(1, "net")
    except AccessDenied as err:
        return f"{err.errno}:{err.pid}"
    return "allowed"


@pytest.mark.needs_root
def test_of_pid_without_ptrace_access_is_access_denied() -> None:
    assert in_child(_as_nobody_of_pid1) == f"{errno.EACCES}:1"


def test_from_fd_rejects_a_non_namespace_fd() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match=f"fd {r} is not a namespace file descriptor"):
            Namespace.from_fd(r)
        with pytest.raises(ValueError):
            nstype_of(r)
    finally:
        os.close(r)
        os.close(w)


def test_open_checks_identity_before_use() -> None:
    ns = Namespace.of_self("uts")
    with ns.open() as fd:
        assert Namespace.from_fd(fd) == ns
    stale = Namespace(NsType.UTS, ns.dev, ns.ino + 1, "/proc/self/ns/uts")
    with pytest.raises(NsprimError, match="now refers to another namespace"):
        stale.open()
    with pytest.raises(NsprimError, match="no path to open it by"):
        Namespace(NsType.UTS, ns.dev, ns.ino).open()


def test_namespace_pickles_by_value() -> None:
    ns = Namespace.of_self("pid")
    assert pickle.loads(pickle.dumps(ns)) == ns


def test_parent_rejects_non_hierarchical_types() -> None:
    with pytest.raises(ValueError, match="uts namespaces have no parent; only pid and user do"):
        Namespace.of_self("uts").parent()


def test_initial_namespaces_are_recognised_by_fixed_inode() -> None:
    ns = namespaces()
    for t in (NsType.USER, NsType.UTS, NsType.IPC, NsType.PID, NsType.CGROUP, NsType.TIME):
        assert ns[t].is_initial is True, t


def _three_levels() -> list[bool]:
    # Nested pid namespaces three deep, observed from the outermost process.
    chain = [Namespace.of_self("pid")]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for _ in range(3):
                S.unshare(CloneFlags.NEWPID)
                if os.fork() != 0:
                    os.wait()
                    os._exit(0)
            os.write(w, str(int(os.readlink("/proc/self"))).encode())
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        leaf = int(os.read(r, 32))
        ns = Namespace.of_pid(leaf, "pid")
        seen = [ns]
        while (p := seen[-1].parent()) is not None:
            seen.append(p)
        return [len(seen) == 4, seen[-1] == chain[0], len(set(seen)) == 4]
    finally:
        # Killing the first-level init kills every deeper level (pid_namespaces(7)).
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                os.kill(int(child), signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)


@pytest.mark.needs_root
def test_parent_walks_a_three_level_pid_hierarchy() -> None:
    assert in_child(_three_levels) == [True, True, True]


def _bind_mount_keeps_namespace() -> tuple[bool, bool]:
    S.unshare(CloneFlags.NEWNS)
    S.mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)
    # The directory itself lives on a tmpfs of this private namespace, not in the host's /tmp.
    S.mount("tmpfs", tempfile.gettempdir(), "tmpfs", 0, "size=1m,mode=1777")
    d = tempfile.mkdtemp()
    S.mount("tmpfs", d, "tmpfs", 0, "size=1m")
    target = os.path.join(d, "uts")
    open(target, "w").close()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        S.unshare(CloneFlags.NEWUTS)
        os.write(w, b"x")
        time.sleep(30)
        os._exit(0)
    os.read(r, 1)
    held = Namespace.of_pid(pid, "uts")
    S.mount(f"/proc/{pid}/ns/uts", target, None, MountFlags.BIND)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    via_mount = Namespace.from_path(target)
    ok = via_mount == held
    S.umount(target, UmountFlags.DETACH)
    return ok, via_mount.type is NsType.UTS


@pytest.mark.needs_root
def test_from_path_reads_a_bind_mounted_namespace_after_its_members_exit() -> None:
    assert in_child(_bind_mount_keeps_namespace) == (True, True)


def test_lsns_agrees_on_our_own_namespaces() -> None:
    # Cross-check with util-linux where present: same inode numbers.
    try:
        out = subprocess.run(
            ["lsns", "-n", "-o", "NS,TYPE", "-p", str(os.getpid())],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"lsns unavailable: {err}")
    theirs = {t: int(ino) for ino, t in (line.split() for line in out.splitlines())}
    ours = {t.value: n.ino for t, n in namespaces().items()}
    assert {t: ours[t] for t in theirs} == theirs
