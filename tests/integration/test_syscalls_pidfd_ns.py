"""The pidfs ioctls as typed bindings: PIDFD_GET_*_NAMESPACE (Linux 6.11), PIDFD_GET_INFO (6.13).

Each answer is compared with what /proc says about the same process; the
refusals (an exited process, an fd that is not a pidfd, a kernel without the
ioctl) raise what the docstrings promise.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
from collections.abc import Iterator

import pytest

from nsprim import syscalls as S
from nsprim.errors import UnsupportedError
from nsprim.namespace import NsType

_M = re.match(r"(\d+)\.(\d+)", os.uname().release)
assert _M
_KERNEL = (int(_M.group(1)), int(_M.group(2)))
pytestmark = pytest.mark.skipif(_KERNEL < (6, 13), reason="PIDFD_GET_INFO needs Linux 6.13")


@pytest.fixture()
def child_in_new_uts_and_net() -> Iterator[tuple[int, int]]:
    """A child that unshared UTS, NET and PID (for its children), then waits; yields (pid, pidfd)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            S.unshare(int(NsType.UTS.flag) | int(NsType.NET.flag) | int(NsType.PID.flag))
            os.write(w, b"1")
            signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"
        pidfd = S.pidfd_open(pid)
        try:
            yield pid, pidfd
        finally:
            os.close(pidfd)
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@pytest.mark.needs_root
def test_each_namespace_is_the_one_proc_names(child_in_new_uts_and_net: tuple[int, int]) -> None:
    pid, pidfd = child_in_new_uts_and_net
    for t in NsType:
        fd = S.pidfd_get_namespace(pidfd, t.value)
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") == os.readlink(f"/proc/{pid}/ns/{t.value}")
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        finally:
            os.close(fd)
    # the child's own UTS and net namespaces are not ours (the control)
    for t in ("uts", "net"):
        fd = S.pidfd_get_namespace(pidfd, int(NsType(t).flag))
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") != os.readlink(f"/proc/self/ns/{t}")
        finally:
            os.close(fd)
    fd = S.pidfd_get_namespace(pidfd, "pid", for_children=True)
    try:
        child_pid_ns = os.readlink(f"/proc/{pid}/ns/pid")
        assert os.readlink(f"/proc/self/fd/{fd}") != child_pid_ns  # unshare(CLONE_NEWPID) above
    finally:
        os.close(fd)


def test_info_matches_proc_status() -> None:
    pidfd = S.pidfd_open(os.getpid())
    try:
        info = S.pidfd_get_info(pidfd)
    finally:
        os.close(pidfd)
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    assert (info.pid, info.tgid, info.ppid) == (os.getpid(), os.getpid(), os.getppid())
    uids = [int(x) for x in status["Uid"].split()]
    gids = [int(x) for x in status["Gid"].split()]
    assert [info.ruid, info.euid, info.suid, info.fsuid] == uids
    assert [info.rgid, info.egid, info.sgid, info.fsgid] == gids
    # the cgroup id is the inode of the process's cgroup v2 directory
    with open("/proc/self/cgroup") as f:
        path = next(line[3:].strip() for line in f if line.startswith("0::"))
    with open("/proc/self/mountinfo") as f:
        mnt = next((p[4] for p in (line.split() for line in f) if "cgroup2" in p), None)
    if mnt is not None and info.cgroupid is not None:
        assert info.cgroupid == os.stat(os.path.join(mnt, path.lstrip("/"))).st_ino


def test_refusals_raise_what_the_docstrings_promise() -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(0)
    pidfd = S.pidfd_open(pid)
    try:
        os.waitpid(pid, 0)  # reaped: the pidfd now names no process
        with pytest.raises(ProcessLookupError):
            S.pidfd_get_namespace(pidfd, "uts")
        with pytest.raises(ProcessLookupError):
            S.pidfd_get_info(pidfd)
    finally:
        os.close(pidfd)
    with open("/proc/self/status", "rb") as f:
        # an fd that is not a pidfd: the kernel's ENOTTY, not "unsupported"
        with pytest.raises(OSError) as exc:
            S.pidfd_get_info(f.fileno())
        assert exc.value.errno == errno.ENOTTY and not isinstance(exc.value, UnsupportedError)
    with pytest.raises(ValueError, match="nstype must be one of"):
        S.pidfd_get_namespace(0, "bogus")
    with pytest.raises(ValueError, match="for_children applies to pid and time"):
        S.pidfd_get_namespace(0, "net", for_children=True)
    with pytest.raises(TypeError, match="nstype must be"):
        S.pidfd_get_namespace(0, 1.5)  # type: ignore[arg-type]


def test_a_pidfs_ioctl_this_kernel_lacks_is_unsupported_naming_the_version() -> None:
    # The path an older kernel takes: ENOTTY on a real pidfd (nr 99: no such pidfs ioctl).
    from nsprim._sys import consts as C

    pidfd = S.pidfd_open(os.getpid())
    try:
        with pytest.raises(UnsupportedError) as exc:
            S._pidfd_ioctl(pidfd, C.io(C.PIDFS_IOCTL_MAGIC, 99), "PIDFD_GET_X", "Linux 9.9")
        assert "Linux 9.9" in str(exc.value)
    finally:
        os.close(pidfd)
