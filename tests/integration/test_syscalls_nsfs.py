"""nsfs pid translation (NS_GET_*_PIDNS, Linux 6.11) and nsfs file handles (Linux 6.18).

Each answer is checked against what the kernel says another way (getpid(2) in
the namespace, the nsfs identity of the reopened file); the refusals raise
what the docstrings promise.
"""

from __future__ import annotations

import errno
import os
import re

import pytest
from forked import in_child

from nsprim import syscalls as S
from nsprim.flags import CloneFlags

_M = re.match(r"(\d+)\.(\d+)", os.uname().release)
assert _M
_KERNEL = (int(_M.group(1)), int(_M.group(2)))
NEWPID = int(CloneFlags.NEWPID)
NEWUTS = int(CloneFlags.NEWUTS)


def _translate() -> dict[str, object]:
    """In a child: clone3 an init of a new pid namespace and translate pids both ways."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = S.clone3(NEWPID)
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    assert isinstance(pid, int)
    os.close(r)
    fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    uts = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        out: dict[str, object] = {
            "from": S.ns_pid_from_pidns(fd, 1),
            "tgid from": S.ns_pid_from_pidns(fd, 1, tgid=True),
            "in": S.ns_pid_in_pidns(fd, pid),
            "tgid in": S.ns_pid_in_pidns(fd, pid, tgid=True),
            "pid": pid,
        }
        for name, call in (
            ("we are not in it", lambda: S.ns_pid_in_pidns(fd, os.getpid())),
            ("not a pid ns", lambda: S.ns_pid_from_pidns(uts, 1)),
        ):
            try:
                call()
                out[name] = "ok"
            except OSError as err:
                out[name] = errno.errorcode[err.errno or 0]
        return out
    finally:
        os.close(fd)
        os.close(uts)
        os.close(w)
        os.waitpid(pid, 0)


@pytest.mark.skipif(_KERNEL < (6, 11), reason="NS_GET_*_PIDNS need Linux 6.11")
def test_pid_translation_between_a_pid_namespace_and_ours() -> None:
    if os.geteuid() != 0:
        pytest.skip("creates a pid namespace")
    out = in_child(_translate)
    pid = out.pop("pid")
    assert out == {
        "from": pid,
        "tgid from": pid,
        "in": 1,
        "tgid in": 1,
        "we are not in it": "ESRCH",
        "not a pid ns": "EINVAL",
    }


def _handles() -> dict[str, object]:
    """A handle of our UTS namespace reopens it; one of a freed namespace is stale."""
    home = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        kind, data, _ = S.name_to_handle_at("", dirfd=home, flags=0x1000)  # AT_EMPTY_PATH
        again = S.open_by_handle_at(S.FD_NSFS_ROOT, kind, data)
        try:
            same = os.fstat(again)[1:3] == os.fstat(home)[1:3]  # (st_ino, st_dev)
        finally:
            os.close(again)
        S.unshare(NEWUTS)
        kind, data, _ = S.name_to_handle_at("/proc/self/ns/uts", flags=0x400)  # AT_SYMLINK_FOLLOW
        S.setns(home, NEWUTS)  # the new namespace had no other member: it is freed
    finally:
        os.close(home)
    try:
        os.close(S.open_by_handle_at(S.FD_NSFS_ROOT, kind, data))
        stale = "ok"
    except OSError as err:
        stale = errno.errorcode[err.errno or 0]
    return {"same": same, "nsfs handle type": kind, "freed": stale}


@pytest.mark.skipif(_KERNEL < (6, 18), reason="nsfs file handles need Linux 6.18")
def test_nsfs_handle_reopens_a_live_namespace_and_goes_stale() -> None:
    if os.geteuid() != 0:
        pytest.skip("creates a UTS namespace")
    assert in_child(_handles) == {"same": True, "nsfs handle type": 0xF1, "freed": "ESTALE"}
