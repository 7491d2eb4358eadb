"""nsprim.net.create_veth(peer_netns=...) with every kind of handle, against the real kernel.

Each test runs in ``nsprim.call(..., namespaces=["net", "mnt"])``: the
caller's end lives in that throwaway network namespace A, the peer's in the
network namespace B of a sleeping child it spawns; mounts (a persisted B)
stay in the throwaway mount namespace. Nothing touches the host's links.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import nsprim
from nsprim import Namespace, NoSuchProcess, net

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces")


def _fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def _names() -> list[str]:
    return sorted(link.name for link in net.links())


def _every_handle(d: str) -> dict[str, list[str]]:
    proc = nsprim.spawn(["sleep", "60"], namespaces=["net"])
    try:
        fds = _fds()
        b = Namespace.of_pid(proc.pid, "net")
        net.create_veth("vp-a0", "vp-b0", peer_netns=proc)
        net.create_veth("vp-a1", "vp-b1", peer_netns=b)
        net.create_veth("vp-a2", "vp-b2", peer_netns=f"/proc/{proc.pid}/ns/net")
        net.create_veth("vp-a3", "vp-b3", peer_netns=Path(f"/proc/{proc.pid}/ns/net"))
        persisted = os.path.join(d, "b")  # as ip netns add makes /run/netns/NAME
        b.persist(persisted)
        net.create_veth("vp-a4", "vp-b4", peer_netns=persisted)
        with open(f"/proc/{proc.pid}/ns/net", "rb") as f:
            net.create_veth("vp-a5", "vp-b5", peer_netns=f)
            os.fstat(f.fileno())  # the caller's fd stays open
            net.create_veth("vp-a6", "vp-b6", peer_netns=f.fileno())
        assert _fds() == fds  # every fd nsprim opened is closed
        nsprim.unpersist(persisted)
        return {"a": _names(), "b": nsprim.call_in(proc, _names, types=["net"])}
    finally:
        proc.kill()
        proc.wait()


def test_peer_netns_takes_a_process_namespace_path_or_fd(tmp_path: Path) -> None:
    seen = nsprim.call(_every_handle, str(tmp_path), namespaces=["net", "mnt"], timeout=60)
    assert seen == {
        "a": ["lo"] + [f"vp-a{i}" for i in range(7)],
        "b": ["lo"] + [f"vp-b{i}" for i in range(7)],
    }


def _bad_handles(d: str) -> list[str]:
    proc = nsprim.spawn(["sleep", "60"], namespaces=["net", "uts"])
    fds = _fds()
    uts_path = f"/proc/{proc.pid}/ns/uts"
    cases: list[tuple[object, type[BaseException], str]] = [
        (Namespace.of_pid(proc.pid, "uts"), ValueError, "peer_netns must be a network namespace"),
        (uts_path, ValueError, "peer_netns: .* is a uts namespace"),
        (Path(uts_path), ValueError, "peer_netns: .* is a uts namespace"),
        ("/etc/hostname", ValueError, "peer_netns: /etc/hostname is not a namespace file"),
        (os.path.join(d, "missing"), FileNotFoundError, ""),
        ("", ValueError, "peer_netns must be a non-empty"),
        ("a\0b", ValueError, "peer_netns must be a non-empty"),
        (3.5, TypeError, "peer_netns"),
        (True, TypeError, "peer_netns"),
        (b"/proc/self/ns/net", TypeError, "peer_netns"),
        (-1, ValueError, "peer_netns"),
    ]
    for value, exc, match in cases:
        with pytest.raises(exc, match=match):
            net.create_veth("vp-x0", "vp-x1", peer_netns=value)  # type: ignore[arg-type]
    assert _fds() == fds
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
    with pytest.raises(NoSuchProcess, match=r"peer_netns: process \d+ has exited"):
        net.create_veth("vp-x0", "vp-x1", peer_netns=proc)
    assert _fds() == fds
    proc.wait()
    fds = _fds()  # the reaped child's pidfd is closed now
    with pytest.raises(NoSuchProcess, match=r"peer_netns: process \d+ has exited"):
        net.create_veth("vp-x0", "vp-x1", peer_netns=proc)
    assert _fds() == fds
    return _names()


def test_bad_peer_netns_gives_typed_errors_and_creates_nothing(tmp_path: Path) -> None:
    names = nsprim.call(_bad_handles, str(tmp_path), namespaces=["net", "mnt"], timeout=60)
    assert names == ["lo"]
