"""enter(), call_in() and spawn_in() on the real kernel.

``enter`` moves one thread and must put it back; a failed entry must change
nothing (the kernel's ``pidfd_setns_test.c`` "verify that we haven't changed
any namespaces"). ``call_in``/``spawn_in`` join from a fresh child, so every
type works, pid and user included, as root and as nobody.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from forked import drop_to_nobody, in_child

import nsprim._targets as _targets
import nsprim.process as process
from nsprim._fd import OwnedFd
from nsprim.errors import AccessDenied, NoSuchProcess
from nsprim.flags import CloneFlags
from nsprim.namespace import Namespace, NsType
from nsprim.syscalls import pidfd_open, unshare

pytestmark = pytest.mark.needs_root


@pytest.fixture
def target() -> Iterator[process.NsProcess]:
    with process.spawn(
        ["sleep", "60"],
        namespaces=["uts", "ipc", "net", "pid", "mnt"],
        hostname="target-host",
        mount_proc=True,
    ) as p:
        yield p


def _thread_ns(t: str) -> Namespace:
    return Namespace.of_thread(t)


# --- enter ------------------------------------------------------------------------------------


def test_enter_moves_thread_and_restores(target: process.NsProcess) -> None:
    host = socket.gethostname()
    before = {t: _thread_ns(t) for t in ("uts", "net", "ipc", "cgroup")}
    with process.enter(target, "uts", "net"):
        assert socket.gethostname() == "target-host"
        assert _thread_ns("net") == target.namespaces()[NsType.NET]
        assert [name for _, name in socket.if_nameindex()] == ["lo"]
    assert socket.gethostname() == host
    assert {t: _thread_ns(t) for t in before} == before


def test_enter_by_pid_pidfd_and_namespace(target: process.NsProcess) -> None:
    with process.enter(target.pid, "uts"):
        assert socket.gethostname() == "target-host"
    with OwnedFd(pidfd_open(target.pid)) as fd, process.enter(fd, "uts"):
        assert socket.gethostname() == "target-host"
    ns = target.namespaces()[NsType.UTS]
    with process.enter(ns):
        assert socket.gethostname() == "target-host"
    with ns.open() as nsfd, process.enter(nsfd):
        assert socket.gethostname() == "target-host"


def test_enter_default_types_are_the_thread_scoped_ones(target: process.NsProcess) -> None:
    with process.enter(target):
        assert _thread_ns("ipc") == target.namespaces()[NsType.IPC]
        assert _thread_ns("net") == target.namespaces()[NsType.NET]
        assert _thread_ns("mnt") == Namespace.of_self("mnt")  # untouched


def test_enter_affects_only_the_calling_thread(target: process.NsProcess) -> None:
    seen: list[str] = []
    inside = threading.Event()
    done = threading.Event()

    def other() -> None:
        inside.wait(10)
        seen.append(socket.gethostname())
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with process.enter(target, "uts"):
        inside.set()
        done.wait(10)
        assert socket.gethostname() == "target-host"
    t.join()
    assert seen == [socket.gethostname()]


@pytest.mark.parametrize("t", ["mnt", "user", "time", "pid"])
def test_enter_refuses_process_wide_types_pointing_to_call_in(
    target: process.NsProcess, t: str
) -> None:
    before = _thread_ns("uts")
    cm = process.enter(target, "uts", t)
    with pytest.raises(ValueError, match=r"can't enter .*use nsprim\.call_in\(\)"), cm:
        pass
    assert _thread_ns("uts") == before


def test_enter_exited_pid_is_no_such_process() -> None:
    p = process.spawn(["true"])
    pid = p.pid
    p.wait()
    with pytest.raises(NoSuchProcess), process.enter(pid, "uts"):
        pass


def test_enter_non_namespace_fd_is_value_error(tmp_path: Path) -> None:
    match = "neither a pidfd nor a namespace file descriptor"
    with open(tmp_path / "f", "w") as f:
        cm = process.enter(f, "uts")
        with pytest.raises(ValueError, match=match), cm:
            pass


def _failed_entry_changes_nothing(atomic: bool) -> tuple[bool, bool, str]:
    """In a child: a user ns of our own, a uts ns it owns, and a target we can only half enter.

    The target's uts namespace is owned by our user namespace (setns allowed);
    its ipc namespace is the host's, owned by the initial user namespace
    (setns refused with EPERM). The one-by-one path joins uts, fails on ipc
    and must put uts back; the pidfd path must fail as a whole.
    """
    _targets.pidfd_setns = atomic
    unshare(CloneFlags.NEWUSER | CloneFlags.NEWUTS)
    target = process.spawn(["sleep", "30"], namespaces=["uts"], hostname="half")
    try:
        unshare(CloneFlags.NEWIPC)  # so the target's (host) ipc ns differs from ours
        before = {t: _thread_ns(t) for t in ("uts", "ipc", "net")}
        name = socket.gethostname()
        try:
            with process.enter(target, "uts", "ipc"):
                pass
        except AccessDenied:
            denied = True
        else:
            denied = False
        after = {t: _thread_ns(t) for t in before}
        return denied, after == before, socket.gethostname() + "|" + name
    finally:
        target.kill()
        target.wait()


@pytest.mark.parametrize("atomic", [True, False], ids=["pidfd", "nsfd"])
def test_enter_failed_entry_leaves_every_namespace_unchanged(atomic: bool) -> None:
    denied, unchanged, names = in_child(_failed_entry_changes_nothing, atomic)
    assert denied
    assert unchanged
    now, before = names.split("|")
    assert now == before


# --- call_in / spawn_in ---------------------------------------------------------------------------


def _ns_ids() -> dict[str, tuple[int, int]]:
    out = {}
    for t in ("uts", "ipc", "net", "pid", "mnt"):
        st = os.stat(f"/proc/self/ns/{t}")
        out[t] = (st.st_dev, st.st_ino)
    return out


def test_call_in_joins_every_namespace_of_target(target: process.NsProcess) -> None:
    theirs = {t.value: (ns.dev, ns.ino) for t, ns in target.namespaces().items()}
    got = process.call_in(target, _ns_ids)
    assert got == {t: theirs[t] for t in got}
    # pid: the callable runs inside (the target, sleep, is 1; /proc is the target's).
    assert process.call_in(target, os.getpid) > 1
    assert process.call_in(target, lambda: Path("/proc/1/comm").read_text()) == "sleep\n"
    assert process.call_in(target, socket.gethostname) == "target-host"


def test_call_in_types_subset(target: process.NsProcess) -> None:
    got = process.call_in(target, _ns_ids, types=["uts"])
    assert got["uts"] != _ns_ids()["uts"] and got["net"] == _ns_ids()["net"]


def test_call_in_skips_own_user_namespace(target: process.NsProcess) -> None:
    # The target shares our user namespace; setns into it would be EINVAL.
    assert process.call_in(target, os.getuid, types=["user", "uts"]) == 0


def test_call_in_exited_target_is_no_such_process() -> None:
    p = process.spawn(["true"])
    pid = p.pid
    p.wait()
    with pytest.raises(NoSuchProcess):
        process.call_in(pid, os.getpid)


def _call_in_as_nobody() -> tuple[int, str]:
    drop_to_nobody()
    with process.spawn(["sleep", "30"], map_root=True, namespaces=["uts", "net"],
                       hostname="rootless") as t:  # fmt: skip
        # One atomic setns(pidfd): user first internally, then the ones it owns.
        uid = process.call_in(t, os.getuid)
        name = process.call_in(t, socket.gethostname)
    return uid, name


def test_call_in_unprivileged_enters_user_namespace_first() -> None:
    assert in_child(_call_in_as_nobody) == (0, "rootless")


def _call_in_as_nobody_one_by_one() -> tuple[int, str]:
    _targets.pidfd_setns = False  # nsenter's two-pass order
    return _call_in_as_nobody()


def test_call_in_unprivileged_one_by_one() -> None:
    assert in_child(_call_in_as_nobody_one_by_one) == (0, "rootless")


def test_spawn_in_runs_program_as_our_child(target: process.NsProcess) -> None:
    with process.spawn_in(target, ["sh", "-c", "echo $$ $(hostname); read x"],
                          stdin=process.PIPE, stdout=process.PIPE) as p:  # fmt: skip
        assert p.stdout is not None
        pid_inside, host = p.stdout.readline().decode().split()
        assert int(pid_inside) > 1 and host == "target-host"
        # Our own child (the CLONE_PARENT hop), not a grandchild behind a proxy.
        ppid = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        assert int(ppid) == os.getpid()
        p.communicate(b"\n", timeout=10)
    assert p.returncode == 0


def test_spawn_in_target_root_and_cwd(target: process.NsProcess) -> None:
    r = process.spawn_in(target, ["sh", "-c", "pwd"], target_root=True, target_cwd=True,
                         stdout=process.PIPE)  # fmt: skip
    with r:
        out, _ = r.communicate(timeout=10)
    assert out == (os.readlink(f"/proc/{target.pid}/cwd") + "\n").encode()
