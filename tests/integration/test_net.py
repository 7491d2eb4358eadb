"""nsprim.net against the real kernel (no mocks).

Every test that creates or changes anything runs in a forked child that first
unshares its own network namespace(s), reports plain data through a pipe and
leaves with os._exit; the parent asserts and always reaps. Nothing is created
in the host's namespace (a module fixture checks the host's links before and
after), and traffic goes only to loopback or to documentation addresses
(198.51.100.0/24, 2001:db8::/64) inside namespaces these tests own.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pickle
import select
import signal
import socket
import time
import traceback
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

import pytest

from nsprim import AccessDenied, net, syscalls
from nsprim.flags import CloneFlags

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces")

T = TypeVar("T")
_NEWNET = int(CloneFlags.NEWNET)
_PR_SET_PDEATHSIG = 1


# --- harness ------------------------------------------------------------------


def _in_child(fn: Callable[[], T], timeout: float = 30.0) -> T:
    """Run *fn* in a forked child and return its (pickled) result.

    A child exception fails the test with the child's traceback. A child that
    does not answer within *timeout* is killed; the child is always reaped.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(r)
            try:
                payload: tuple[str, Any] = ("ok", fn())
            except BaseException:
                payload = ("raise", traceback.format_exc())
            with os.fdopen(w, "wb") as f:
                f.write(pickle.dumps(payload))
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    reaped = False
    chunks: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        with os.fdopen(r, "rb", buffering=0) as f:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"child {pid} gave no answer within {timeout} s")
                ready, _, _ = select.select([f], [], [], remaining)
                if not ready:
                    continue
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reaped = True
                break
            time.sleep(0.01)
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert reaped, f"child {pid} did not exit"
    assert os.waitstatus_to_exitcode(status) == 0, f"child {pid} status {status:#x}"
    assert chunks, f"child {pid} exited without reporting"
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "raise":
        pytest.fail(f"in child {pid}:\n{value}", pytrace=False)
    return value  # type: ignore[no-any-return]


def _new_netns() -> int:
    """Unshare a new network namespace for this thread; return an fd that pins it."""
    syscalls.unshare(_NEWNET)
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _two_netns() -> tuple[int, int]:
    """Create namespaces A and B (fds); the thread ends up in A."""
    a = _new_netns()
    b = _new_netns()
    syscalls.setns(a, _NEWNET)
    return a, b


def _enter(fd: int) -> None:
    syscalls.setns(fd, _NEWNET)


def _tcp_exchange(server_ns: int, client_ns: int, host: str) -> tuple[bytes, bytes, str]:
    """Listen on *host* in *server_ns*, connect from *client_ns*, talk both ways.

    One thread suffices: the kernel completes the handshake into the backlog.
    Returns (what the server got, what the client got, the client's address).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _enter(server_ns)
    with socket.socket(family, socket.SOCK_STREAM) as srv:
        srv.settimeout(5.0)
        srv.bind((host, 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        _enter(client_ns)  # sockets keep the namespace they were created in
        with socket.socket(family, socket.SOCK_STREAM) as cli:
            cli.settimeout(5.0)
            cli.connect((host, port))
            conn, peer = srv.accept()
            with conn:
                conn.settimeout(5.0)
                cli.sendall(b"ping")
                got_server = conn.recv(4)
                conn.sendall(b"pong")
                got_client = cli.recv(4)
    return got_server, got_client, str(peer[0])


def _error(fn: Callable[[], object]) -> tuple[str, int | None, object]:
    """Call *fn*, expecting an OSError; return (class name, errno, filename)."""
    try:
        fn()
    except OSError as err:
        return type(err).__name__, err.errno, err.filename
    return "no error", None, None


_Seen = list[tuple[str, str, "str | None"]]


def _collect(mon: net.LinkMonitor, want: set[tuple[str, str]], timeout: float = 5.0) -> _Seen:
    """Read events until every (action, name) in *want* was seen or *timeout* ran out."""
    seen: _Seen = []
    deadline = time.monotonic() + timeout
    while not want <= {(a, n) for a, n, _ in seen}:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        seen += [(e.action, e.name, e.link.kind) for e in mon.events(remaining)]
    return seen


def _host_links() -> list[tuple[int, str, str | None]]:
    return [(link.index, link.name, link.kind) for link in net.links()]


@pytest.fixture(scope="module", autouse=True)
def _host_untouched() -> Iterator[None]:
    """The host namespace has the same links after these tests as before."""
    before = _host_links()
    yield
    assert _host_links() == before


# --- NET-01 / NET-03: a fresh namespace, loopback --------------------------------


def test_new_netns_has_only_lo_down() -> None:
    def body() -> tuple[list[net.Link], list[net.Address], int, bool]:
        _new_netns()
        return net.links(), net.addresses(), int(net.link_flags("lo")), net.is_up("lo")

    links, addrs, flags, up = _in_child(body)
    assert [link.name for link in links] == ["lo"]
    lo = links[0]
    assert lo.index == 1
    assert lo.kind is None
    assert lo.mtu == 65536
    assert lo.address == "00:00:00:00:00:00"
    assert lo.flags & net.IfFlags.LOOPBACK
    assert not lo.is_up and not up
    assert not flags & net.IfFlags.UP
    assert addrs == []


def test_set_link_up_lo_gives_tcp_over_v4_and_v6() -> None:
    def body() -> dict[str, Any]:
        ns = _new_netns()
        net.set_link_up()  # default "lo"
        net.set_link_up("lo")  # already up: no-op
        out: dict[str, Any] = {
            "up": net.is_up("lo"),
            "addrs": sorted(str(a.interface) for a in net.addresses("lo")),
            "names": {a.name for a in net.addresses()},
            "v4": _tcp_exchange(ns, ns, "127.0.0.1"),
            "v6": _tcp_exchange(ns, ns, "::1"),
        }
        net.set_link_down("lo")
        out["down"] = not net.is_up("lo")
        return out

    out = _in_child(body)
    assert out["up"]
    assert out["addrs"] == ["127.0.0.1/8", "::1/128"]
    assert out["names"] == {"lo"}
    assert out["v4"] == (b"ping", b"pong", "127.0.0.1")
    assert out["v6"] == (b"ping", b"pong", "::1")
    assert out["down"]


def test_set_link_up_netlink_path_sets_and_clears_iff_up() -> None:
    # The RTM_SETLINK fallback used when the kernel has no IPv4.
    def body() -> tuple[bool, bool]:
        _new_netns()
        net._set_up_netlink(b"lo", "lo", True, "set_link_up")
        up = net.is_up("lo")
        net._set_up_netlink(b"lo", "lo", False, "set_link_down")
        return up, net.is_up("lo")

    assert _in_child(body) == (True, False)


# --- errors ---------------------------------------------------------------------


def test_missing_device_raises_enodev_naming_it() -> None:
    name = "eth-nonexistent"

    def body() -> list[tuple[str, int | None, object]]:
        other = _new_netns()
        return [
            _error(lambda: net.set_link_up(name)),
            _error(lambda: net.set_link_down(name)),
            _error(lambda: net.link_flags(name)),
            _error(lambda: net.is_up(name)),
            _error(lambda: net.delete_link(name)),
            _error(lambda: net.add_address(name, "198.51.100.1/24")),
            _error(lambda: net.addresses(name)),
            _error(lambda: net.move_link(name, netns_fd=other)),
        ]

    for result in _in_child(body):
        assert result == ("OSError", errno.ENODEV, name)


def test_configure_device_in_other_netns_raises_enodev() -> None:
    # NET-05: the peer end lives in B; from A it does not exist, and vice versa.
    def body() -> dict[str, list[tuple[str, int | None, object]]]:
        _a, b = _two_netns()
        net.create_veth("nspt-a", "nspt-b", peer_netns=b)
        from_a = [
            _error(lambda: net.set_link_up("nspt-b")),
            _error(lambda: net.add_address("nspt-b", "198.51.100.2/24")),
            _error(lambda: net.delete_link("nspt-b")),
            _error(lambda: net.link_flags("nspt-b")),
        ]
        _enter(b)
        from_b = [
            _error(lambda: net.set_link_up("nspt-a")),
            _error(lambda: net.add_address("nspt-a", "198.51.100.1/24")),
            _error(lambda: net.delete_link("nspt-a")),
            _error(lambda: net.link_flags("nspt-a")),
        ]
        return {"a": from_a, "b": from_b}

    out = _in_child(body)
    assert out["a"] == [("OSError", errno.ENODEV, "nspt-b")] * 4
    assert out["b"] == [("OSError", errno.ENODEV, "nspt-a")] * 4


def test_duplicates_raise_eexist() -> None:
    def body() -> list[tuple[str, int | None, object]]:
        _new_netns()
        net.create_veth("nspt0", "nspt1")
        net.add_address("nspt0", "198.51.100.1/24")
        net.add_address("nspt0", "2001:db8::1/64")
        return [
            _error(lambda: net.create_veth("nspt0", "nspt9")),
            _error(lambda: net.create_veth("nspt9", "nspt1")),
            _error(lambda: net.add_address("nspt0", "198.51.100.1/24")),
            _error(lambda: net.add_address("nspt0", "2001:db8::1/64")),
        ]

    out = _in_child(body)
    assert out[0] == ("FileExistsError", errno.EEXIST, "nspt0")
    assert out[1] == ("FileExistsError", errno.EEXIST, "nspt9")
    assert out[2] == ("FileExistsError", errno.EEXIST, "nspt0")
    assert out[3] == ("FileExistsError", errno.EEXIST, "nspt0")


def test_loopback_cannot_move_or_be_deleted() -> None:
    def body() -> list[tuple[str, int | None, object]]:
        _a, b = _two_netns()
        return [
            _error(lambda: net.move_link("lo", netns_fd=b)),
            _error(lambda: net.delete_link("lo")),
        ]

    move, delete = _in_child(body)
    assert move == ("OSError", errno.EINVAL, "lo")
    assert delete == ("OSError", errno.EOPNOTSUPP, "lo")


def test_create_veth_rejects_fd_that_is_not_a_netns() -> None:
    def body() -> tuple[str, int | None, object]:
        _new_netns()
        with open("/proc/self/ns/uts", "rb") as uts:
            return _error(lambda: net.create_veth("nspt0", "nspt1", peer_netns=uts))

    assert _in_child(body) == ("OSError", errno.EINVAL, "nspt0")


def test_without_cap_net_admin_raises_access_denied() -> None:
    def body() -> list[tuple[str, int | None, object, bool, str]]:
        _new_netns()
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)  # drops every capability
        out = []
        calls: list[Callable[[], object]] = [
            lambda: net.set_link_up("lo"),
            lambda: net._set_up_netlink(b"lo", "lo", True, "set_link_up"),
            lambda: net.create_veth("nspt0", "nspt1"),
            lambda: net.add_address("lo", "198.51.100.1/24"),
        ]
        for call in calls:
            try:
                call()
            except OSError as err:
                out.append(
                    (
                        type(err).__name__,
                        err.errno,
                        err.filename,
                        isinstance(err, (AccessDenied, PermissionError)),
                        str(err),
                    )
                )
        # Reading needs no privilege.
        out.append(("links", None, [link.name for link in net.links()], True, ""))
        return out

    *denied, readable = _in_child(body)
    assert len(denied) == 4
    for (cls, err, filename, is_perm, msg), name in zip(denied, ["lo", "lo", "nspt0", "lo"]):
        assert (cls, err, filename, is_perm) == ("AccessDenied", errno.EPERM, name, True)
        assert "CAP_NET_ADMIN" in msg
        assert repr(name) in msg
    assert readable[2] == ["lo"]


def test_userns_root_may_configure_its_netns_lo() -> None:
    def body() -> bool | str:
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        try:
            syscalls.unshare(int(CloneFlags.NEWUSER | CloneFlags.NEWNET))
        except OSError as err:
            return f"unprivileged user namespaces unavailable: {err}"
        net.set_link_up("lo")
        return net.is_up("lo")

    result = _in_child(body)
    if isinstance(result, str):
        pytest.skip(result)
    assert result is True


# --- NET-04: veth pairs ------------------------------------------------------------


def _configure(name: str, *cidrs: str) -> None:
    for cidr in cidrs:
        net.add_address(name, cidr)
    net.set_link_up(name)


_EXCHANGES = [  # (server side, client side, address the server listens on)
    ("a", "b", "198.51.100.1"),
    ("b", "a", "198.51.100.2"),
    ("a", "b", "2001:db8::1"),
    ("b", "a", "2001:db8::2"),
]
_EXPECTED_PEER = {
    "198.51.100.1": "198.51.100.2",
    "198.51.100.2": "198.51.100.1",
    "2001:db8::1": "2001:db8::2",
    "2001:db8::2": "2001:db8::1",
}


def _traffic(a: int, b: int) -> list[tuple[str, tuple[bytes, bytes, str]]]:
    ns = {"a": a, "b": b}
    return [(host, _tcp_exchange(ns[srv], ns[cli], host)) for srv, cli, host in _EXCHANGES]


def _assert_traffic(results: list[tuple[str, tuple[bytes, bytes, str]]]) -> None:
    assert [host for host, _ in results] == [host for _, _, host in _EXCHANGES]
    for host, (got_server, got_client, peer) in results:
        assert (got_server, got_client) == (b"ping", b"pong"), host
        assert peer == _EXPECTED_PEER[host]


def test_create_veth_peer_netns_passes_tcp_both_ways_v4_v6() -> None:
    def body() -> dict[str, Any]:
        a, b = _two_netns()
        net.create_veth("nspt-a", "nspt-b", peer_netns=b)
        _configure("nspt-a", "198.51.100.1/24", "2001:db8::1/64")
        links_a = net.links()
        addrs_a = sorted(str(x.interface) for x in net.addresses("nspt-a") if x.scope == 0)
        _enter(b)
        _configure("nspt-b", "198.51.100.2/24", "2001:db8::2/64")
        links_b = net.links()
        addrs_b = sorted(str(x.interface) for x in net.addresses("nspt-b") if x.scope == 0)
        _enter(a)
        return {
            "links_a": links_a,
            "links_b": links_b,
            "addrs_a": addrs_a,
            "addrs_b": addrs_b,
            "traffic": _traffic(a, b),
        }

    out = _in_child(body)
    assert [link.name for link in out["links_a"]] == ["lo", "nspt-a"]
    assert [link.name for link in out["links_b"]] == ["lo", "nspt-b"]
    veth_a = out["links_a"][1]
    assert veth_a.kind == "veth"
    assert veth_a.is_up
    assert veth_a.mtu == 1500
    assert veth_a.address is not None and len(veth_a.address.split(":")) == 6
    assert out["addrs_a"] == ["198.51.100.1/24", "2001:db8::1/64"]
    assert out["addrs_b"] == ["198.51.100.2/24", "2001:db8::2/64"]
    _assert_traffic(out["traffic"])


def test_move_link_netns_fd_passes_tcp_both_ways_v4_v6() -> None:
    def body() -> dict[str, Any]:
        a, b = _two_netns()
        net.create_veth("nspt-a", "nspt-b")
        net.move_link("nspt-b", netns_fd=b)
        names_a = [link.name for link in net.links()]
        _configure("nspt-a", "198.51.100.1/24", "2001:db8::1/64")
        _enter(b)
        names_b = [link.name for link in net.links()]
        _configure("nspt-b", "198.51.100.2/24", "2001:db8::2/64")
        _enter(a)
        return {"names_a": names_a, "names_b": names_b, "traffic": _traffic(a, b)}

    out = _in_child(body)
    assert out["names_a"] == ["lo", "nspt-a"]
    assert out["names_b"] == ["lo", "nspt-b"]
    _assert_traffic(out["traffic"])


def test_move_link_netns_pid_moves_into_that_process_netns() -> None:
    def body() -> tuple[list[str], list[str]]:
        _new_netns()
        ready_r, ready_w = os.pipe()
        hold_r, hold_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # grandchild: own netns, then wait until told to go
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                syscalls.unshare(_NEWNET)
                os.write(ready_w, b"r")
                select.select([hold_r], [], [], 30)
            finally:
                os._exit(0)
        try:
            os.close(ready_w)
            os.close(hold_r)
            ready, _, _ = select.select([ready_r], [], [], 10)
            assert ready and os.read(ready_r, 1) == b"r"
            net.create_veth("nspt0", "nspt1")
            net.move_link("nspt1", netns_pid=pid)
            here = [link.name for link in net.links()]
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _enter(fd)
                there = [link.name for link in net.links()]
            finally:
                os.close(fd)
            return here, there
        finally:
            os.close(hold_w)
            os.close(ready_r)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

    here, there = _in_child(body)
    assert here == ["lo", "nspt0"]
    assert there == ["lo", "nspt1"]


def test_delete_link_removes_both_veth_ends() -> None:
    def body() -> tuple[list[str], list[str]]:
        _a, b = _two_netns()
        net.create_veth("nspt-a", "nspt-b", peer_netns=b)
        net.delete_link("nspt-a")
        names_a = [link.name for link in net.links()]
        _enter(b)
        return names_a, [link.name for link in net.links()]

    assert _in_child(body) == (["lo"], ["lo"])


# --- NET-07: link notifications stay in their namespace -----------------------------


def test_link_monitor_sees_only_its_own_netns() -> None:
    def body() -> dict[str, Any]:
        a, b = _two_netns()
        out: dict[str, Any] = {}
        with net.link_monitor() as mon_a:
            _enter(b)
            with net.link_monitor() as mon_b:  # the thread is in B now
                net.create_veth("nspt-b0", "nspt-b1")
                out["b_sees_b"] = _collect(mon_b, {("new", "nspt-b0"), ("new", "nspt-b1")})
                out["a_sees_b"] = [e.name for e in mon_a.events(0.5)]
                _enter(a)
                net.create_veth("nspt-a0", "nspt-a1")
                out["a_sees_a"] = _collect(mon_a, {("new", "nspt-a0"), ("new", "nspt-a1")})
                out["b_sees_a"] = [e.name for e in mon_b.events(0.5)]
                # A pair spanning both: each side hears about its own end only.
                net.create_veth("nspt-x0", "nspt-x1", peer_netns=b)
                # (then linger 0.3 s, so a stray notification for the far end shows up)
                span_a = _collect(mon_a, {("new", "nspt-x0")})
                span_b = _collect(mon_b, {("new", "nspt-x1")})
                out["a_span"] = {n for _, n, _ in span_a} | {e.name for e in mon_a.events(0.3)}
                out["b_span"] = {n for _, n, _ in span_b} | {e.name for e in mon_b.events(0.3)}
                net.delete_link("nspt-a0")
                out["a_del"] = _collect(mon_a, {("del", "nspt-a0"), ("del", "nspt-a1")})
                out["b_after_del"] = [e.name for e in mon_b.events(0.5)]
        out["closed"] = mon_a.closed and mon_b.closed
        return out

    def names(events: list[tuple[str, str, str | None]], action: str) -> set[str]:
        return {name for act, name, _kind in events if act == action}

    out = _in_child(body)
    assert names(out["b_sees_b"], "new") == {"nspt-b0", "nspt-b1"}
    assert {kind for _, _, kind in out["b_sees_b"]} == {"veth"}
    assert names(out["a_sees_a"], "new") == {"nspt-a0", "nspt-a1"}
    assert out["a_sees_b"] == []
    assert out["b_sees_a"] == []
    assert out["a_span"] == {"nspt-x0"}
    assert out["b_span"] == {"nspt-x1"}
    assert names(out["a_del"], "del") == {"nspt-a0", "nspt-a1"}
    assert out["b_after_del"] == []
    assert out["closed"]


def test_link_monitor_reports_up_as_new_event_and_polls_with_zero_timeout() -> None:
    def body() -> tuple[list[tuple[str, str, bool]], list[net.LinkEvent], str]:
        _new_netns()
        with net.link_monitor() as mon:
            quiet = mon.events(0)
            net.set_link_up("lo")
            events: list[tuple[str, str, bool]] = []
            deadline = time.monotonic() + 5
            while not events and time.monotonic() < deadline:
                events = [(e.action, e.name, e.link.is_up) for e in mon.events(1.0)]
            text = repr(mon)
        return events, quiet, text + " " + repr(mon)

    events, quiet, text = _in_child(body)
    assert quiet == []
    assert ("new", "lo", True) in events
    assert "fd=" in text and text.endswith("<LinkMonitor closed>")


def test_links_dump_spans_many_datagrams() -> None:
    # 161 links need several 32 KiB dump datagrams (multipart, NLMSG_DONE).
    def body() -> tuple[list[str], int]:
        _new_netns()
        for i in range(80):
            net.create_veth(f"nspt{i}a", f"nspt{i}b")
        net.add_address("nspt79b", "198.51.100.79/24")
        return [link.name for link in net.links()], len(net.addresses("nspt79b"))

    names, count = _in_child(body)
    assert len(names) == 161
    assert names[0] == "lo"
    assert set(names[1:]) == {f"nspt{i}{end}" for i in range(80) for end in "ab"}
    assert count == 1


def test_link_monitor_overflow_raises_enobufs_then_recovers() -> None:
    def body() -> tuple[int | None, bool]:
        _new_netns()
        with net.link_monitor() as mon:
            mon._live().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            for i in range(40):
                net.create_veth(f"nspt{i}a", f"nspt{i}b")
            err = _error(lambda: mon.events(0))[1]
            while mon.events(0):  # read what was queued before the overflow
                pass
            net.delete_link("nspt0a")
            after = _collect(mon, {("del", "nspt0a")})
            return err, ("del", "nspt0a", "veth") in after

    assert _in_child(body) == (errno.ENOBUFS, True)
