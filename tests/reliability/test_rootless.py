"""Rootless safety: root inside a user namespace created by ``nobody`` has no power over the host.

The test process (real root) prepares a root-owned 0644 file in a 0755
directory it makes and removes, and a root-owned sleeper; a forked child
then drops to ``nobody`` in-process and runs code as uid 0 of a user
namespace through :func:`nsprim.process.call` (``map_root=True``). Every
attempt must be refused with the errno the kernel documents, and the parent
then checks the file, the sleeper and the host state itself. Each refusal
has its control: the same operation inside namespaces of its own succeeds
(so the refusals come from the ownership rules, not from a broken setup).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from forked import in_child

import nsprim.net as net
import nsprim.process as process
import nsprim.syscalls as sc

from ._support import drop_to_nobody, host_diff, host_state

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_userns]


def _errno_of(fn: Callable[[], object]) -> int:
    try:
        fn()
    except OSError as exc:
        return exc.errno or -1
    return 0


@pytest.fixture
def root_file() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="nsprim-rootless-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "owned-by-root")
    with open(path, "w") as f:
        f.write("original\n")
    os.chmod(path, 0o644)
    try:
        yield path
    finally:
        shutil.rmtree(d)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["/bin/sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _as_nobody(fn: Callable[..., Any], *args: Any) -> Any:
    def body() -> Any:
        drop_to_nobody()
        assert os.geteuid() == 65534
        return fn(*args)

    return in_child(body, timeout=60)


# --- the bodies run as uid 0 of a user namespace, created by nobody ---------------------------


def _file_attempts(path: str) -> dict[str, int]:
    def write() -> None:
        with open(path, "w") as f:
            f.write("owned\n")

    return {
        "uid": os.geteuid(),
        "write": _errno_of(write),
        "chmod": _errno_of(lambda: os.chmod(path, 0o666)),
        "chown": _errno_of(lambda: os.chown(path, 0, 0)),
        "unlink": _errno_of(lambda: os.unlink(path)),
        "create": _errno_of(lambda: open(os.path.join(os.path.dirname(path), "new"), "x").close()),
    }


def test_userns_root_cannot_write_host_root_files(root_file: str) -> None:
    r = _as_nobody(
        lambda: process.call(_file_attempts, root_file, namespaces=["user", "mnt"], map_root=True)
    )
    assert r["uid"] == 0  # root in its user namespace ...
    # ... but host uid 0 is unmapped there: "other" permissions apply, and
    # CAP_DAC_OVERRIDE/CAP_FOWNER don't cover unmapped owners (user_namespaces(7)).
    assert r["write"] == errno.EACCES
    assert r["chmod"] == errno.EPERM
    assert r["chown"] == errno.EPERM
    assert r["unlink"] == errno.EACCES
    assert r["create"] == errno.EACCES
    with open(root_file) as f:
        assert f.read() == "original\n"
    st = os.stat(root_file)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o644)
    assert os.listdir(os.path.dirname(root_file)) == ["owned-by-root"]


def _signal_attempts(pid: int) -> dict[str, int]:
    def via_pidfd() -> None:
        fd = sc.pidfd_open(pid)
        try:
            sc.pidfd_send_signal(fd, signal.SIGKILL)
        finally:
            os.close(fd)

    return {
        "uid": os.geteuid(),
        "kill": _errno_of(lambda: os.kill(pid, signal.SIGKILL)),
        "term": _errno_of(lambda: os.kill(pid, signal.SIGTERM)),
        "pidfd": _errno_of(via_pidfd),
        "self": _errno_of(lambda: os.kill(os.getpid(), 0)),  # control: signalling works at all
    }


def test_userns_root_cannot_signal_host_processes(sleeper: subprocess.Popen[bytes]) -> None:
    r = _as_nobody(
        lambda: process.call(_signal_attempts, sleeper.pid, namespaces=["user"], map_root=True)
    )
    assert r["uid"] == 0
    assert (r["kill"], r["term"], r["pidfd"], r["self"]) == (
        errno.EPERM,
        errno.EPERM,
        errno.EPERM,
        0,
    )
    # In a pid namespace of its own the host process is not even visible.
    hidden = _as_nobody(
        lambda: process.call(
            _signal_attempts, sleeper.pid, namespaces=["user", "pid"], map_root=True
        )
    )
    assert hidden["kill"] in (errno.ESRCH, errno.EPERM)
    assert sleeper.poll() is None, "the root-owned sleeper was killed"


def _uts_attempts() -> dict[str, Any]:
    return {
        "sethostname": _errno_of(lambda: socket.sethostname("pwned")),
        "setdomainname": _errno_of(lambda: sc.setdomainname("pwned")),
        "name": socket.gethostname(),
    }


def _mount_attempts() -> dict[str, int]:
    return {
        "mount": _errno_of(lambda: sc.mount("none", "/mnt", "tmpfs")),
        "umount": _errno_of(lambda: sc.umount("/proc")),
        "remount_ro": _errno_of(
            lambda: sc.mount("none", "/", None, 0x20 | 0x1)
        ),  # MS_REMOUNT|MS_RDONLY
    }


def _net_attempts() -> dict[str, int]:
    return {
        "lo_down": _errno_of(lambda: net.set_link_down("lo")),
        "veth": _errno_of(lambda: net.create_veth("pwn0", "pwn1")),
        "address": _errno_of(lambda: net.add_address("lo", "198.51.100.7/32")),
    }


def test_userns_root_cannot_change_host_hostname_mounts_or_network() -> None:
    before = host_state()
    host_only = _as_nobody(
        lambda: {
            "uts": process.call(_uts_attempts, namespaces=["user"], map_root=True),
            "mnt": process.call(_mount_attempts, namespaces=["user"], map_root=True),
            "net": process.call(_net_attempts, namespaces=["user"], map_root=True),
        }
    )
    # The host's UTS, mount and network namespaces belong to the initial user
    # namespace: root of a child user namespace has no capability there.
    assert host_only["uts"]["sethostname"] == errno.EPERM
    assert host_only["uts"]["setdomainname"] == errno.EPERM
    assert host_only["mnt"] == {
        "mount": errno.EPERM,
        "umount": errno.EPERM,
        "remount_ro": errno.EPERM,
    }
    assert host_only["net"] == {"lo_down": errno.EPERM, "veth": errno.EPERM, "address": errno.EPERM}
    # Controls: in namespaces of its own the same calls work (or hit the
    # locked-mount rules), and still nothing reaches the host.
    own = _as_nobody(
        lambda: {
            "uts": process.call(_uts_attempts, namespaces=["user", "uts"], map_root=True),
            "mnt": process.call(_mount_attempts, namespaces=["user", "mnt"], map_root=True),
            "net": process.call(_net_attempts, namespaces=["user", "net"], map_root=True),
        }
    )
    assert own["uts"] == {"sethostname": 0, "setdomainname": 0, "name": "pwned"}
    assert own["mnt"]["mount"] == 0
    # /proc came from the more privileged namespace: locked (mount_namespaces(7)).
    assert own["mnt"]["umount"] == errno.EINVAL
    # A read-only remount of the host's root filesystem stays refused.
    assert own["mnt"]["remount_ro"] == errno.EPERM
    assert own["net"] == {"lo_down": 0, "veth": 0, "address": 0}
    assert host_diff(before, host_state()) == []
