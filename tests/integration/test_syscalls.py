"""Every binding against the real kernel.

Each namespace-changing body runs in a forked child (:func:`forked.in_child`),
so pytest and the host keep their namespaces, hostname and mounts; the leak
guard in conftest.py checks that afterwards.
"""

from __future__ import annotations

import errno
import os
import platform
import signal
import socket
import tempfile
import time

import pytest
from forked import drop_to_nobody, in_child

import nsprim
from nsprim import UnsupportedError
from nsprim import syscalls as S
from nsprim._sys import consts as C
from nsprim._sys import libc
from nsprim.flags import CloneFlags, Ioctl, MountFlags, UmountFlags
from nsprim.namespace import Namespace, NsType, namespaces

pytestmark = pytest.mark.needs_root


def _ids(pid: int | None = None) -> dict[str, tuple[int, int]]:
    return {t.value: (n.dev, n.ino) for t, n in namespaces(pid).items()}


def _for_children(t: str) -> tuple[int, int]:
    st = os.stat(f"/proc/self/ns/{t}_for_children")
    return (st.st_dev, st.st_ino)


def _unshare_and_compare(
    t: NsType,
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]], tuple, tuple]:
    before = _ids()
    kids_before = _for_children(t.value) if t in (NsType.PID, NsType.TIME) else ()
    S.unshare(t.flag)
    kids_after: tuple = ()
    if t is NsType.PID:
        # pid_for_children can't be followed until the namespace has an init
        # (pidns_for_children_get() checks child_reaper), so create one.
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        kids_after = _for_children("pid")
        os.waitpid(pid, 0)
    elif t is NsType.TIME:
        kids_after = _for_children("time")
    return before, _ids(), kids_before, kids_after


@pytest.mark.parametrize("t", list(NsType), ids=str)
def test_unshare_changes_exactly_that_type(t: NsType) -> None:
    before, after, kb, ka = in_child(_unshare_and_compare, t)
    changed = {k for k in before if before[k] != after[k]}
    if t in (NsType.PID, NsType.TIME):
        # The caller stays; only the namespace of its future children changes.
        assert changed == set()
        assert kb != ka
    else:
        assert changed == {t.value}


def _setns_roundtrip(t: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    saved = os.open(f"/proc/self/ns/{t}", os.O_RDONLY | os.O_CLOEXEC)
    orig = _ids()[t]
    S.unshare(NsType(t).flag)
    moved = _ids()[t]
    S.setns(saved, NsType(t).flag)
    os.close(saved)
    return orig, moved, _ids()[t]


@pytest.mark.parametrize("t", ["uts", "ipc", "net", "mnt", "cgroup"])
def test_setns_back_restores_identity(t: str) -> None:
    orig, moved, back = in_child(_setns_roundtrip, t)
    assert moved != orig
    assert back == orig


def _pidfd_multi_join() -> tuple[bool, bool]:
    # A holder in new uts+ipc+net namespaces; we join all three with one setns.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        S.unshare(CloneFlags.NEWUTS | CloneFlags.NEWIPC | CloneFlags.NEWNET)
        os.write(w, b"x")
        time.sleep(30)
        os._exit(0)
    os.read(r, 1)
    try:
        target = _ids(pid)
        pidfd = S.pidfd_open(pid)
        S.setns(pidfd, CloneFlags.NEWUTS | CloneFlags.NEWIPC | CloneFlags.NEWNET)
        os.close(pidfd)
        mine = _ids()
        joined = all(mine[t] == target[t] for t in ("uts", "ipc", "net"))
        untouched = mine["mnt"] != target.get("mnt") or mine["mnt"] == target["mnt"]
        return joined, untouched and mine["user"] == target["user"]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_setns_pidfd_joins_several_types_at_once() -> None:
    joined, rest_same = in_child(_pidfd_multi_join)
    assert joined and rest_same


def _setns_wrong_type() -> int:
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
    try:
        S.setns(fd, CloneFlags.NEWNET)
    except OSError as err:
        return err.errno or 0
    finally:
        os.close(fd)
    return 0


def test_setns_with_mismatching_type_is_einval() -> None:
    assert in_child(_setns_wrong_type) == errno.EINVAL


def test_clone3_child_is_pid1_and_pidfd_signals_it() -> None:
    r, w = os.pipe()
    pid, pidfd = S.clone3(CloneFlags.NEWPID, pidfd=True)
    if pid == 0:
        os.close(r)
        os.write(w, str(os.getpid()).encode())
        time.sleep(30)
        os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 16) == b"1"
        assert Namespace.of_pid(pid, "pid") != Namespace.of_self("pid")
        S.pidfd_send_signal(pidfd, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        with pytest.raises(ProcessLookupError):
            S.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(r)
        os.close(pidfd)


def test_clone3_without_pidfd_returns_pid_and_python_works_in_child() -> None:
    pid = S.clone3(CloneFlags.NEWUTS | CloneFlags.NEWNET)
    if pid == 0:
        import json  # the child is a normal Python process

        S.sethostname("clone3-child")
        os._exit(0 if json.dumps(socket.gethostname()) == '"clone3-child"' else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _sethostname_in_new_uts() -> str:
    S.unshare(CloneFlags.NEWUTS)
    S.sethostname(b"x" * 64)
    S.setdomainname("nsprim.test")
    return socket.gethostname()


def test_sethostname_in_new_uts_leaves_host_unchanged() -> None:
    host = socket.gethostname()
    assert in_child(_sethostname_in_new_uts) == "x" * 64
    assert socket.gethostname() == host


def _rootless_uts() -> tuple[int, str]:
    drop_to_nobody()
    try:
        S.unshare(CloneFlags.NEWUTS)
        first = 0
    except PermissionError as err:
        first = err.errno or 0
    S.unshare(CloneFlags.NEWUSER | CloneFlags.NEWUTS)
    S.sethostname("rootless")
    return first, socket.gethostname()


@pytest.mark.needs_userns
def test_unprivileged_needs_a_user_namespace_for_uts() -> None:
    first, name = in_child(_rootless_uts)
    assert first == errno.EPERM
    assert name == "rootless"


def _private_tmp() -> None:
    """A tmpfs on /tmp in this (private) mount namespace: the directories a test makes
    there vanish with the namespace instead of piling up in the host's /tmp."""
    S.mount("tmpfs", tempfile.gettempdir(), "tmpfs", 0, "size=4m,mode=1777")


def _mount_and_pivot() -> tuple[bool, list[str], bool]:
    S.unshare(CloneFlags.NEWNS)
    S.mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)
    _private_tmp()
    new = tempfile.mkdtemp(prefix="nsprim-pivot-")
    S.mount("tmpfs", new, "tmpfs", 0, "size=1m")
    os.mkdir(os.path.join(new, "old"))
    with open(os.path.join(new, "marker"), "w") as f:
        f.write("new root")
    mounted = os.path.ismount(new)
    S.pivot_root(new, os.path.join(new, "old"))
    os.chdir("/")
    S.umount("/old", UmountFlags.DETACH)
    listing = sorted(os.listdir("/"))
    return mounted, listing, os.path.exists("/etc")


def test_mount_and_pivot_root_in_a_throwaway_mount_namespace() -> None:
    mounted, listing, etc_visible = in_child(_mount_and_pivot)
    assert mounted
    assert listing == ["marker", "old"]
    assert not etc_visible


def _pivot_errors() -> list[int]:
    S.unshare(CloneFlags.NEWNS)
    S.mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)
    out = []
    for new, old in (("/nonexistent-nsprim", "/nonexistent-nsprim/x"), ("/etc/hostname", "/etc")):
        try:
            S.pivot_root(new, old)
            out.append(0)
        except OSError as err:
            out.append(err.errno or 0)
    return out


def test_pivot_root_reports_kernel_errors() -> None:
    assert in_child(_pivot_errors) == [errno.ENOENT, errno.ENOTDIR]


def _open_tree_move_mount_setattr() -> tuple[bool, bool, str]:
    S.unshare(CloneFlags.NEWNS)
    S.mount(None, "/", None, MountFlags.REC | MountFlags.PRIVATE)
    _private_tmp()
    src = tempfile.mkdtemp(prefix="nsprim-src-")
    dst = tempfile.mkdtemp(prefix="nsprim-dst-")
    S.mount("tmpfs", src, "tmpfs", 0, "size=1m")
    with open(os.path.join(src, "f"), "w") as f:
        f.write("hi")
    tree = S.open_tree(src, C.OPEN_TREE_CLONE)
    S.move_mount("", dst, C.MOVE_MOUNT_F_EMPTY_PATH, from_dirfd=tree)
    os.close(tree)
    S.mount_setattr(dst, attr_set=C.MOUNT_ATTR_RDONLY)
    try:
        open(os.path.join(dst, "g"), "w").close()
        ro = False
    except OSError as err:
        ro = err.errno == errno.EROFS
    with open(os.path.join(dst, "f")) as f:
        content = f.read()
    return os.path.ismount(dst), ro, content


def test_open_tree_move_mount_and_mount_setattr() -> None:
    try:
        attached, ro, content = in_child(_open_tree_move_mount_setattr)
    except UnsupportedError as err:
        pytest.skip(str(err))
    assert attached and ro and content == "hi"


def _nested_pid_parent() -> tuple[bool, bool, bool]:
    outer = Namespace.of_self("pid")
    S.unshare(CloneFlags.NEWPID)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        seen_inside = b"?"
        try:
            # From inside, the parent is above the caller's scope: EPERM -> None.
            seen_inside = b"1" if Namespace.of_self("pid").parent() is None else b"0"
        finally:
            os.write(w, seen_inside)
            time.sleep(30)
            os._exit(0)
    try:
        inside_none = os.read(r, 1) == b"1"
        inner = Namespace.of_pid(pid, "pid")
        return inner != outer, inner.parent() == outer, inside_none
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_ns_get_parent_of_nested_pid_namespace_is_the_outer_one() -> None:
    assert in_child(_nested_pid_parent) == (True, True, True)


def _userns_owner() -> tuple[bool, bool, int]:
    init = Namespace.of_self("user")
    S.unshare(CloneFlags.NEWUSER)
    me = Namespace.of_self("user")
    S.unshare(CloneFlags.NEWUTS)
    uts = Namespace.of_self("uts")
    # The parent user namespace is out of the caller's scope from inside.
    return uts.owner() == me, me.parent() is None and me != init, me.owner_uid


def test_ns_get_userns_of_namespace_created_in_userns_is_that_userns() -> None:
    owned, parent_is_init, owner_uid = in_child(_userns_owner)
    assert owned and parent_is_init
    # From inside an unmapped user namespace, the creator's uid 0 shows as overflowuid.
    assert owner_uid == 65534


def test_ns_get_nstype_names_each_type() -> None:
    for t in NsType:
        fd = os.open(f"/proc/self/ns/{t.value}", os.O_RDONLY)
        try:
            assert S.ns_get_nstype(fd) == t.flag
        finally:
            os.close(fd)


def test_ns_ioctl_on_a_non_namespace_fd_is_enotty() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            S.ns_get_nstype(r)
        assert info.value.errno == errno.ENOTTY
    finally:
        os.close(r)
        os.close(w)


def test_ns_get_id_is_stable_or_unsupported() -> None:
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        try:
            first = S.ns_get_id(fd)
        except UnsupportedError as err:
            assert "NS_GET_ID" in str(err) and "6.18" in str(err)
            return
        assert first > 0 and first == S.ns_get_id(fd)
        assert Namespace.of_self("net").ns_id == first
    finally:
        os.close(fd)


def _socket_netns() -> bool:
    s = socket.socket()
    S.unshare(CloneFlags.NEWNET)
    fd = S.socket_netns(s)
    try:
        return Namespace.from_fd(fd) == Namespace.of_pid(os.getppid(), "net")
    finally:
        os.close(fd)
        s.close()


def test_socket_netns_names_the_namespace_the_socket_was_made_in() -> None:
    assert in_child(_socket_netns)


def test_pidfd_open_of_missing_process_is_esrch() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    with pytest.raises(ProcessLookupError):
        S.pidfd_open(pid)


def test_pidfd_getfd_duplicates_a_child_fd() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        time.sleep(30)
        os._exit(0)
    pidfd = S.pidfd_open(pid)
    try:
        dup = S.pidfd_getfd(pidfd, w)
        assert os.fstat(dup).st_ino == os.fstat(w).st_ino
        os.close(dup)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(pidfd)
        os.close(r)
        os.close(w)


def test_enosys_becomes_unsupported_error_naming_the_kernel() -> None:
    with pytest.raises(UnsupportedError, match=r"clone3 is not supported here \(needs Linux 5.3\)"):
        libc.raise_errno(errno.ENOSYS, "clone3")


def _pdeathsig() -> int:
    S.set_pdeathsig(signal.SIGTERM)
    import ctypes

    out = ctypes.c_int(0)
    libc.libc.prctl(C.PR_GET_PDEATHSIG, ctypes.addressof(out), 0, 0, 0)
    return out.value


def test_set_pdeathsig_is_read_back() -> None:
    assert in_child(_pdeathsig) == signal.SIGTERM


def _child_userns_parent() -> bool:
    mine = Namespace.of_self("user")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            S.unshare(CloneFlags.NEWUSER)
        finally:
            os.write(w, b"x")
            time.sleep(30)
            os._exit(0)
    try:
        os.read(r, 1)
        child = Namespace.of_pid(pid, "user")
        return child.parent() == mine and child.owner_uid == os.geteuid()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_ns_get_parent_of_a_child_user_namespace_is_ours() -> None:
    assert in_child(_child_userns_parent)


def _drop_caps() -> tuple[tuple[int, int, int], tuple[int, int, int], int]:
    before = S.capget()
    S.drop_capabilities()
    after = S.capget()
    try:
        S.unshare(CloneFlags.NEWUTS)
        err = 0
    except PermissionError as e:
        err = e.errno or 0
    return before, after, err


def test_drop_capabilities_leaves_root_powerless() -> None:
    before, after, err = in_child(_drop_caps)
    assert before[0] & (1 << 21)  # CAP_SYS_ADMIN
    assert after == (0, 0, 0)
    assert err == errno.EPERM


def test_capset_refuses_bad_masks() -> None:
    with pytest.raises(ValueError, match="effective must be a 64-bit capability mask"):
        S.capset(-1, 0)
    with pytest.raises(TypeError, match="on must be a bool"):
        S.set_dumpable(1)  # type: ignore[arg-type]


def _subreaper_adopts_orphans() -> bool:
    S.set_child_subreaper(True)
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        if os.fork() == 0:  # grandchild: orphaned when mid exits
            time.sleep(0.2)
            os.write(w, str(os.getppid()).encode())
            os._exit(0)
        os._exit(0)
    os.waitpid(mid, 0)
    adopted = int(os.read(r, 32)) == os.getpid()
    os.wait()
    return adopted


def test_child_subreaper_adopts_orphaned_grandchildren() -> None:
    assert in_child(_subreaper_adopts_orphans)


def _errno_answers() -> dict[str, object]:
    fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        nstype = S.ioctl_errno(fd, Ioctl.NS_GET_NSTYPE)
    finally:
        os.close(fd)
    return {
        "sethostname 65 bytes": S.sethostname_errno(b"h" * 65),
        "sethostname 64 bytes": S.sethostname_errno(b"h" * 64),
        "setns(-1)": S.setns_errno(-1, 0),
        "unshare(unknown bit)": S.unshare_errno(1 << 0),
        "pidfd_open(self)": S.syscall_errno("pidfd_open", os.getpid(), 0),
        "NS_GET_NSTYPE": nstype,
    }


def test_errno_calls_pass_what_the_bindings_refuse_and_return_the_kernels_answer() -> None:
    # The probes' unchecked calls: no validation, no exception, the errno.
    with pytest.raises(ValueError):
        S.sethostname(b"h" * 65)
    assert nsprim.call(_errno_answers, namespaces=["uts"]) == {
        "sethostname 65 bytes": errno.EINVAL,
        "sethostname 64 bytes": 0,
        "setns(-1)": errno.EBADF,
        "unshare(unknown bit)": errno.EINVAL,
        "pidfd_open(self)": 0,
        "NS_GET_NSTYPE": (0, int(CloneFlags.NEWUTS)),
    }
    assert S.libc_has("unshare") and not S.libc_has("nsprim_no_such_function")
    assert S.syscall_table_error(platform.machine()) is None
    assert "vax" in (S.syscall_table_error("vax") or "")
