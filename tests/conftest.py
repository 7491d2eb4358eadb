"""Shared test configuration: markers and the per-test leak guard.

Every test runs under an autouse guard that snapshots what a namespace
library can leak — this process's fds, children and mounts, the host's
hostname and domainname, SysV IPC objects, POSIX message queues and network
interfaces — and fails the test if any of it differs afterwards (CPython's
subprocess tests check fds the same way; the kernel selftests' FIXTURE_TEARDOWN
is the model). Mark a test ``@pytest.mark.no_leak_guard`` only when it owns a
documented exception.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent / "integration"))
sys.path.insert(0, str(Path(__file__).parent))


# Hypothesis runs derandomized (a seed fixed per test) unless asked to explore, so that
# whether CI passes is never luck. NSPRIM_RELIABILITY_SEED=random explores with fresh
# seeds everywhere (the reliability fuzzers print theirs; property tests print a
# @reproduce_failure blob); NSPRIM_RELIABILITY_SEED=<n> replays a fuzzer seed.
settings.register_profile("nsprim-derandomized", derandomize=True, database=None, print_blob=True)
settings.register_profile("nsprim-explore", derandomize=False, print_blob=True)
settings.load_profile(
    "nsprim-explore"
    if os.environ.get("NSPRIM_RELIABILITY_SEED") == "random"
    else "nsprim-derandomized"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_leak_guard: the test is exempt from the leak guard")


def _userns_works() -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            from nsprim.syscalls import unshare

            unshare(0x10000000)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = os.geteuid() == 0
    userns = None
    for item in items:
        if "needs_root" in item.keywords and not root:
            item.add_marker(pytest.mark.skip(reason="needs root (uid 0 with CAP_SYS_ADMIN)"))
        if "needs_userns" in item.keywords:
            if userns is None:
                userns = _userns_works()
            if not userns:
                item.add_marker(pytest.mark.skip(reason="unprivileged user namespaces unavailable"))


def _children() -> set[int]:
    # nsprim's forker (nsprim.process.helper_pids()) is this process's child
    # for the process's life, as the launcher thread lives on: not a leak of
    # the test that happened to start it.
    from nsprim import process

    helpers = process.helper_pids()
    me = str(os.getpid())
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[1].decode() == me and int(name) not in helpers:
            out.add(int(name))
    return out


def _fds() -> dict[int, str]:
    # The supervisor that die_with_parent spawns start once per process holds
    # its channel and pidfd for the process's life, as the launcher thread
    # lives on: not a leak of the test that happened to start it.
    from nsprim import _forker, _supervisor

    held = _supervisor.held_fds() | _forker.held_fds()
    out = {}
    for name in os.listdir("/proc/self/fd"):
        if int(name) in held:
            continue
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _ipc() -> list[str]:
    rows = []
    for kind in ("msg", "sem", "shm"):
        rows += [
            f"{kind}: {line.split()[0:2]}"
            for line in _read(f"/proc/sysvipc/{kind}").splitlines()[1:]
        ]
    with contextlib.suppress(OSError):
        rows += [f"mqueue: {n}" for n in os.listdir("/dev/mqueue")]
    return sorted(rows)


def _host_state() -> dict[str, object]:
    return {
        "hostname": socket.gethostname(),
        "domainname": _read("/proc/sys/kernel/domainname").strip(),
        "ipc": _ipc(),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "mounts": sorted(
            line.split(" - ")[0].split(" ", 4)[4]
            for line in _read("/proc/self/mountinfo").splitlines()
        ),
    }


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    if "no_leak_guard" in request.keywords:
        yield
        return
    fds, kids, host = _fds(), _children(), _host_state()
    yield
    problems: list[str] = []
    # Give reaped children and closed sockets a moment to disappear.
    for _ in range(50):
        gc.collect()
        new_fds = {fd: t for fd, t in _fds().items() if fd not in fds or fds[fd] != t}
        new_kids = _children() - kids
        now = _host_state()
        if not new_fds and not new_kids and now == host:
            return
        time.sleep(0.02)
    if new_fds:
        problems.append(f"fds leaked: {new_fds}")
    if new_kids:
        problems.append(f"child processes left: {sorted(new_kids)}")
    for key, before in host.items():
        if now[key] != before:
            problems.append(f"host {key} changed: {before!r} -> {now[key]!r}")
    pytest.fail("leak guard: " + "; ".join(problems), pytrace=False)
