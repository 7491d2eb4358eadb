"""``nsprim run -n --veth HOST:INSIDE [--addr CIDR] [--host-addr CIDR]`` against the real kernel.

The "host" side of every test is a throwaway network namespace made by
``nsprim.call(..., namespaces=["net"])``: no interface is ever created in
the machine's own network namespace, and whatever a test creates dies with
its namespace even if the test fails half-way.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import nsprim
from nsprim import net

pytestmark = pytest.mark.needs_root  # CAP_NET_ADMIN over the "host" namespace

NSPRIM = [sys.executable, "-m", "nsprim", "run"]
VETH = ["-n", "--veth", "h0:i0", "--addr", "10.9.0.2/24", "--host-addr", "10.9.0.1/24"]

INSIDE = """
import socket, sys
# lo is up: a listener on 127.0.0.1 takes a connection
lo = socket.socket(); lo.bind(("127.0.0.1", 0)); lo.listen(1)
socket.create_connection(lo.getsockname(), timeout=5).close()
# and the host end answers at --host-addr, from --addr
s = socket.create_connection(("10.9.0.1", int(sys.argv[1])), timeout=5)
s.sendall(s.getsockname()[0].encode())
s.close()
"""


def _run(argv: list[str]) -> tuple[int, str, str]:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def _host(fn: Any, *args: Any) -> Any:
    return nsprim.call(fn, *args, namespaces=["net"], timeout=90)


def _gone(name: str, deadline: float = 20.0) -> bool:
    # The kernel tears a network namespace down in a work queue after its last
    # process exits; the veth pair goes with it, a moment later.
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if name not in {link.name for link in net.links()}:
            return True
        time.sleep(0.05)
    return False


def _tcp_across() -> dict[str, Any]:
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))  # the address --host-addr gives comes later
    srv.listen(1)
    srv.settimeout(30)
    port = srv.getsockname()[1]
    proc = subprocess.Popen(
        [*NSPRIM, *VETH, "--", sys.executable, "-c", INSIDE, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        conn, peer = srv.accept()
        with conn:
            data = conn.recv(64).decode()
        host_link = {str(a.interface) for a in net.addresses("h0")}
        up = net.is_up("h0")
    finally:
        _, err = proc.communicate(timeout=60)
        srv.close()
    return {"rc": proc.returncode, "err": err, "peer": peer[0], "said": data,
            "host_addrs": host_link, "host_up": up, "gone": _gone("h0")}  # fmt: skip


def test_veth_connects_the_new_namespace_to_the_caller() -> None:
    res = _host(_tcp_across)
    assert res["rc"] == 0, res
    assert res["peer"] == res["said"] == "10.9.0.2", res  # INSIDE end, addressed, up
    assert "10.9.0.1/24" in res["host_addrs"] and res["host_up"], res
    assert res["gone"], "the HOST end must go when the namespace goes"


def _ping() -> tuple[int, str, bool]:
    rc, out, err = _run([*NSPRIM, *VETH, "--", "ping", "-c1", "-W5", "10.9.0.1"])
    return rc, out + err, _gone("h0")


@pytest.mark.skipif(shutil.which("ping") is None, reason="ping (iputils-ping) not installed")
def test_veth_ping_across() -> None:
    rc, out, gone = _host(_ping)
    assert rc == 0 and "1 received" in out, out
    assert gone


def _taken(marker: str) -> tuple[int, str, set[str], bool]:
    before = {link.name for link in net.links()}
    rc, _, err = _run([*NSPRIM, "--veth", "lo:i0", "--", "touch", marker])
    return rc, err, {link.name for link in net.links()} - before, os.path.exists(marker)


def test_veth_name_taken_fails_before_the_command_runs(tmp_path: Path) -> None:
    rc, err, new, ran = _host(_taken, str(tmp_path / "ran"))
    assert rc == 1 and err == "nsprim run: --veth: lo:i0: File exists", err
    assert new == set() and not ran


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--veth", "a"], "nsprim run: --veth: 'a' is not HOST:INSIDE"),
        (["--veth", "a:" + "b" * 16], "nsprim run: --veth: invalid interface name '" + "b" * 16 + "'"),
        (["--veth", "a:b", "--addr", "10.0.0.1/33"], "nsprim run: --addr: invalid address '10.0.0.1/33'"),
        (["--veth", "a:b", "--host-addr", "10.0.0.1"], "nsprim run: --host-addr: invalid address '10.0.0.1'"),
        (["--addr", "10.0.0.1/24"], "nsprim run: --addr needs --veth"),
    ],
)  # fmt: skip
def test_veth_bad_usage(args: list[str], message: str) -> None:
    rc, out, err = _run([*NSPRIM, *args, "true"])
    assert rc == 1 and err.splitlines()[0] == message, err
    assert out == ""


def _readme_demo(d: str) -> tuple[int, str, list[str], bool]:
    from nsprim import syscalls

    syscalls.mount("tmpfs", d, "tmpfs", 0)  # /run of the demo, in this throwaway mount namespace
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("Two namespaces, a veth pair between them and a ping across:")[1]
    lines = block.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    script = "\n".join(lines).replace("/run/", d + "/")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + ":" + os.environ["PATH"])
    r = subprocess.run(
        ["sh", "-e", "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if line.split()[4].startswith(d + "/")]
    return r.returncode, r.stdout + r.stderr, left, os.listdir(d) == []


@pytest.mark.skipif(shutil.which("ping") is None, reason="ping (iputils-ping) not installed")
def test_readme_veth_demo_works(tmp_path: Path) -> None:
    # The three commands as written (with /run moved to a tmpfs of a throwaway mount
    # namespace); the veth pair's "host" end lives in the demo's namespace a, not here.
    rc, out, left, empty = nsprim.call(
        _readme_demo, str(tmp_path), namespaces=["mnt", "net"], timeout=90
    )
    assert rc == 0 and "1 received" in out, out
    assert left == [] and empty
