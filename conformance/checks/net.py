"""Network namespace checks: NET-01 to NET-10.

Layer: conformance checks. Imports public nsprim names (:mod:`nsprim.net` for
links, addresses and link events, never the ``ip`` binary), the conformance
registry and the helpers every group shares (:mod:`._common`).

The runner's outer sandbox already gives every run its own network namespace,
so a control that stays in "the parent" namespace stays in that throwaway one.
Links a check creates in its own (sandbox) namespace are deleted by a deferred
cleanup; links a helper creates in its namespace go away with that namespace
when the helper is stopped. Traffic goes only over loopback or over a veth
pair inside namespaces the check created, to documentation addresses
(198.51.100.0/24, RFC 5737; 2001:db8::/64, RFC 3849).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from typing import Any, TypeVar

from nsprim import net, syscalls
from nsprim.flags import MountFlags

from ..registry import Context, Needs, Skip, check
from ._common import (
    NEWNET,
    NEWNS,
    NEWUSER,
    attempt,
    errname,
    idle,
    ns_ident,
    setns,
    setns_path,
    unshare,
)

__all__: list[str] = []


# (family, address, prefix length) of both ends of a veth pair (NET-04).
_V4 = ((socket.AF_INET, "198.51.100.1", 24), (socket.AF_INET, "198.51.100.2", 24))
_V6 = ((socket.AF_INET6, "2001:db8::1", 64), (socket.AF_INET6, "2001:db8::2", 64))
_LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))
_IO_TIMEOUT = 2.0  # seconds for any socket operation; loopback and veth answer in microseconds

# Sockets, monitors and listeners a process keeps between helper requests.
# Each forked helper has its own copy; the check process closes its own copy
# in a deferred cleanup.
_HELD: dict[str, Any] = {}
_T = TypeVar("_T")


def _hold(key: str, obj: _T) -> _T:
    """Keep *obj* in :data:`_HELD` under *key*, closing whatever was kept there before."""
    old = _HELD.pop(key, None)
    if old is not None:
        old.close()
    _HELD[key] = obj
    return obj


def _release_held() -> None:
    """Close everything this process keeps in :data:`_HELD`."""
    while _HELD:
        _, obj = _HELD.popitem()
        with contextlib.suppress(OSError):
            obj.close()


def _delete_link(name: str) -> None:
    """Delete *name* from the caller's namespace (a veth takes its peer along).

    ENODEV means it is gone already: the helpers are stopped before deferred
    cleanups run, and when the namespace holding a veth's other end is torn
    down (asynchronously, in the kernel's cleanup_net work) both ends go.
    """
    try:
        net.delete_link(name)
    except OSError as err:
        if err.errno != errno.ENODEV:
            raise


def _veth_here(ctx: Context, name: str, peer: str) -> None:
    """Create a veth pair in the check's own namespace, deleted when the check ends."""
    net.create_veth(name, peer)
    ctx.defer(_delete_link, name)


def _ipv6_missing() -> str | None:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError as err:
        return f"this kernel has no IPv6 sockets ({errname(err)})"
    return None


def _udp_reach(family: int, addr: str) -> str:
    """Whether *addr* is routable from here: connect(2) a UDP socket, which sends nothing."""
    with socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        return attempt(s.connect, (addr, 9))


# --- NET-01 ---------------------------------------------------------------------------


def _inventory() -> dict[str, Any]:
    """Describe the caller's network namespace: links, addresses, loopback reachability."""
    return {
        "links": [(link.name, link.is_up) for link in net.links()],
        "addresses": [str(a.interface) for a in net.addresses()],
        "reach": {addr: _udp_reach(family, addr) for family, addr in _LOOPBACKS},
    }


@check(
    "net.starts_empty",
    catalogue="NET-01",
    level="MUST",
    anchors=(
        "network_namespaces(7)",
        "unshare crate docs",
        "procszoo README",
        "linuxnamespaces enable_loopback_if",
    ),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS", "VETH"), probes=(_ipv6_missing,)),
    timeout=5.0,
)
def starts_empty(ctx: Context) -> None:
    """A new network namespace contains only lo, and lo is DOWN with no usable address.

    The check first makes its own namespace anything but empty (lo up, a veth
    pair), then a helper unshares CLONE_NEWNET and lists links and addresses
    over rtnetlink: exactly one link, ``lo``, down; no addresses; and neither
    127.0.0.1 nor ::1 routable (a UDP connect(2) fails). Control: the helper
    does not unshare and sees the parent's links.
    """
    flags = ctx.isolate(NEWNET)
    net.set_link_up("lo")
    _veth_here(ctx, "nsp01a", "nsp01b")
    seen = ctx.in_child(_inventory, unshare=flags)
    ctx.expect_equal(seen["links"], [("lo", False)], "links of a new namespace as (name, up)")
    ctx.expect_equal(seen["addresses"], [], "addresses in a new namespace")
    for addr, result in seen["reach"].items():
        ctx.expect(
            result != "ok",
            f"{addr} is not routable in a new namespace before lo is up",
            "an errno (ENETUNREACH, EADDRNOTAVAIL)",
            result,
        )


# --- NET-02 ---------------------------------------------------------------------------


def _bind_loopback(port: int) -> dict[str, Any]:
    """Bring lo up, then hold TCP and UDP sockets bound to 127.0.0.1:*port* (0: pick one).

    A TCP socket also listens and takes one connection from this process, to
    show the bound port is this namespace's own.
    """
    net.set_link_up("lo")
    seen: dict[str, Any] = {}
    tcp = _hold("tcp", socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
    seen["tcp"] = attempt(tcp.bind, ("127.0.0.1", port))
    if seen["tcp"] == "ok":
        tcp.listen(1)
        port = tcp.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=_IO_TIMEOUT):
            tcp.settimeout(_IO_TIMEOUT)
            conn, _ = tcp.accept()
            conn.close()
        seen["accepted"] = True
    udp = _hold("udp", socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC))
    seen["udp"] = attempt(udp.bind, ("127.0.0.1", port))
    seen["port"] = port
    return seen


@check(
    "net.same_port_bound_twice",
    catalogue="NET-02",
    level="MUST",
    anchors=("network_namespaces(7)",),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS",)),
    timeout=5.0,
)
def same_port_bound_twice(ctx: Context) -> None:
    """TCP and UDP 127.0.0.1:P can be bound in two network namespaces at the same time.

    A first helper unshares CLONE_NEWNET, brings lo up and holds a listening
    TCP socket and a UDP socket on 127.0.0.1:P (P picked by the kernel); a
    second helper does the same in its own new namespace with the same P,
    while the first still holds it. Each listener accepts a connection from
    its own namespace. Control: both helpers stay in the parent namespace, so
    the second bind fails with EADDRINUSE.
    """
    flags = ctx.isolate(NEWNET)
    first = ctx.spawn_child(_bind_loopback, 0, unshare=flags)
    held = first.recv()
    ctx.expect_equal(
        (held["tcp"], held["udp"]), ("ok", "ok"), "TCP and UDP binds in the first namespace"
    )
    ctx.expect(held.get("accepted"), "the first namespace's listener accepts its own connection")
    port = held["port"]
    second = ctx.in_child(_bind_loopback, port, unshare=flags)
    ctx.expect_equal(
        (second["tcp"], second["udp"]),
        ("ok", "ok"),
        f"TCP and UDP binds of 127.0.0.1:{port} in a second namespace while the first holds them",
    )
    ctx.expect(second.get("accepted"), "the second namespace's listener accepts its own connection")


# --- NET-03 ---------------------------------------------------------------------------


def _tcp_roundtrip(family: int, addr: str) -> str:
    """Listen, connect, accept and exchange bytes both ways over *addr*; ``"ok"`` or why not."""
    payload = b"nsprim-net-03 " * 64
    try:
        with socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as listener:
            listener.settimeout(_IO_TIMEOUT)
            listener.bind((addr, 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            with socket.create_connection((addr, port), timeout=_IO_TIMEOUT) as client:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(_IO_TIMEOUT)
                    client.sendall(payload)
                    got = _recv_exactly(conn, len(payload))
                    conn.sendall(got[::-1])
                    back = _recv_exactly(client, len(payload))
    except OSError as err:
        return errname(err)
    if got != payload or back != payload[::-1]:
        return "the bytes came back changed"
    return "ok"


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _loopback_before_and_after_up() -> dict[str, dict[str, str]]:
    before = {addr: _udp_reach(family, addr) for family, addr in _LOOPBACKS}
    net.set_link_up("lo")
    after = {addr: _tcp_roundtrip(family, addr) for family, addr in _LOOPBACKS}
    return {"before": before, "after": after}


@check(
    "net.loopback_after_up",
    catalogue="NET-03",
    level="MUST",
    anchors=("LTP netns_comm (case 3)",),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS",), probes=(_ipv6_missing,)),
    timeout=5.0,
)
def loopback_after_up(ctx: Context) -> None:
    """After IFF_UP on lo, TCP connect/accept over 127.0.0.1 and ::1 works inside a new namespace.

    The check brings lo up in its own namespace first. A helper unshares
    CLONE_NEWNET: before it sets IFF_UP on its lo, neither loopback address
    is routable (so the parent's lo does not count); after, a TCP connection
    over each one carries bytes both ways. Control: the helper does not
    unshare, so loopback already works before its own IFF_UP.
    """
    flags = ctx.isolate(NEWNET)
    net.set_link_up("lo")
    seen = ctx.in_child(_loopback_before_and_after_up, unshare=flags)
    for addr, result in seen["before"].items():
        ctx.expect(
            result != "ok",
            f"{addr} is unreachable in the new namespace until its lo is up",
            "an errno (ENETUNREACH, EADDRNOTAVAIL)",
            result,
        )
    for addr, result in seen["after"].items():
        ctx.expect_equal(result, "ok", f"TCP over {addr} after IFF_UP on lo")


# --- NET-04 ---------------------------------------------------------------------------


def _configure_end(name: str, end: int) -> list[str]:
    """Give veth end *name* its v4 and v6 address (*end* 0 or 1), bring it up; list links here."""
    for family_addrs in (_V4, _V6):
        _, addr, prefix = family_addrs[end]
        net.add_address(name, f"{addr}/{prefix}")
    net.set_link_up(name)
    return [link.name for link in net.links()]


def _listen(family: int, addr: str) -> int:
    """Hold a listening TCP socket on *addr*; return its port."""
    listener = _hold("listener", socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
    listener.settimeout(_IO_TIMEOUT)
    listener.bind((addr, 0))
    listener.listen(1)
    port: int = listener.getsockname()[1]
    return port


def _connect_send(family: int, addr: str, port: int, payload: bytes) -> None:
    """Connect to *addr*:*port*, send *payload*, keep the connection for :func:`_recv_reply`."""
    conn = _hold("conn", socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
    conn.settimeout(_IO_TIMEOUT)
    conn.connect((addr, port))
    conn.sendall(payload)


def _accept_echo(size: int) -> bytes:
    """Accept on the held listener, read *size* bytes, send them back reversed; return them."""
    conn, _ = _HELD["listener"].accept()
    with conn:
        conn.settimeout(_IO_TIMEOUT)
        got = _recv_exactly(conn, size)
        conn.sendall(got[::-1])
    return got


def _recv_reply(size: int) -> bytes:
    """Read the reply on the held connection."""
    conn: socket.socket = _HELD.pop("conn")
    with conn:
        return _recv_exactly(conn, size)


def _dev_bytes(name: str) -> tuple[int, int]:
    """Return (rx_bytes, tx_bytes) of *name* from the caller's /proc/net/dev."""
    with open("/proc/net/dev") as f:
        for line in f:
            ifname, sep, counters = line.partition(":")
            if sep and ifname.strip() == name:
                cols = counters.split()
                return int(cols[0]), int(cols[8])
    raise LookupError(f"{name} is not in /proc/net/dev")


@check(
    "net.veth_crossing",
    catalogue="NET-04",
    level="MUST",
    anchors=("LTP netns_comm",),
    needs=Needs(min_kernel=(3, 0), kconfig=("NET_NS", "VETH"), probes=(_ipv6_missing,)),
    timeout=5.0,
)
def veth_crossing(ctx: Context) -> None:
    """A veth pair with one end moved into a child namespace carries traffic both ways, v4 and v6.

    The check creates a veth pair, moves one end into a helper's new network
    namespace (IFLA_NET_NS_FD), addresses both ends from 198.51.100.0/24 and
    2001:db8::/64, and opens a TCP connection each way over each family. The
    moved end must be gone from the parent's link list and present in the
    child's, the bytes must arrive intact, and the parent's end must count
    them in /proc/net/dev (so they crossed the veth, not a local route).
    Control: the helper stays in the parent namespace; both ends stay there.
    """
    flags = ctx.isolate(NEWNET)
    ctx.defer(_release_held)
    peer = ctx.spawn_child(idle, unshare=flags)
    peer.recv()
    _veth_here(ctx, "nsp04a", "nsp04b")
    fd = os.open(peer.ns_path("net"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        net.move_link("nsp04b", netns_fd=fd)
    finally:
        os.close(fd)
    here_links = _configure_end("nsp04a", 0)
    there_links = peer.call(_configure_end, "nsp04b", 1)
    ctx.expect(
        "nsp04b" not in here_links, "the moved veth end left the parent namespace", None, here_links
    )
    ctx.expect("nsp04b" in there_links, "the moved veth end is in the child", None, there_links)

    payload = os.urandom(16384)
    rx0, tx0 = _dev_bytes("nsp04a")
    for (family, here_addr, _), (_, there_addr, _) in (_V4, _V6):
        what = "IPv4" if family == socket.AF_INET else "IPv6"
        # parent -> child
        port = peer.call(_listen, family, there_addr)
        _connect_send(family, there_addr, port, payload)
        got = peer.call(_accept_echo, len(payload))
        reply = _recv_reply(len(payload))
        ctx.expect(got == payload, f"{what} bytes sent to the child arrive intact")
        ctx.expect(reply == payload[::-1], f"{what} bytes the child sent back arrive intact")
        # child -> parent
        port = _listen(family, here_addr)
        peer.call(_connect_send, family, here_addr, port, payload)
        got = _accept_echo(len(payload))
        reply = peer.call(_recv_reply, len(payload))
        ctx.expect(got == payload, f"{what} bytes sent by the child arrive intact")
        ctx.expect(reply == payload[::-1], f"{what} bytes sent back to the child arrive intact")
    rx1, tx1 = _dev_bytes("nsp04a")
    # Each family moved the payload twice in each direction over the pair.
    least = 4 * len(payload)
    ctx.expect(rx1 - rx0 >= least, "bytes received over the veth end", f">= {least}", rx1 - rx0)
    ctx.expect(tx1 - tx0 >= least, "bytes sent over the veth end", f">= {least}", tx1 - tx0)


# --- NET-05 ---------------------------------------------------------------------------


def _configure_attempts(name: str) -> dict[str, str]:
    """Try to read and configure link *name* over rtnetlink and ioctl; errno name or "ok" each."""
    return {
        "RTM_GETLINK": attempt(net.link_flags, name),
        "RTM_NEWADDR": attempt(net.add_address, name, "198.51.100.1/24"),
        "SIOCGIFFLAGS/SIOCSIFFLAGS": attempt(net.set_link_up, name),
    }


def _foreign_and_own(foreign: str) -> dict[str, dict[str, str]]:
    own = "nsp05own"
    net.create_veth(own, "nsp05ownp")
    return {"foreign": _configure_attempts(foreign), "own": _configure_attempts(own)}


@check(
    "net.foreign_device_unreachable",
    catalogue="NET-05",
    level="MUST",
    anchors=("LTP netns_breakns",),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS", "VETH")),
    timeout=5.0,
)
def foreign_device_unreachable(ctx: Context) -> None:
    """Configuring, by netlink or ioctl, a device that lives in another namespace fails with ENODEV.

    The check creates a veth end in its own namespace; a helper in a new
    network namespace tries RTM_GETLINK, RTM_NEWADDR (an address) and the
    SIOCGIFFLAGS/SIOCSIFFLAGS ioctls (IFF_UP) on it by name: each must fail
    with ENODEV, while the same calls on a veth the helper made in its own
    namespace succeed. Control: the helper stays in the parent namespace and
    can configure the device.
    """
    flags = ctx.isolate(NEWNET)
    _veth_here(ctx, "nsp05a", "nsp05b")
    seen = ctx.in_child(_foreign_and_own, "nsp05a", unshare=flags)
    for call, result in seen["foreign"].items():
        ctx.expect_equal(result, "ENODEV", f"{call} on a device in another namespace")
    for call, result in seen["own"].items():
        ctx.expect_equal(result, "ok", f"{call} on a device in the helper's own namespace")


# --- NET-06 ---------------------------------------------------------------------------


def _listen_unix(abstract: bytes, path: str) -> None:
    """Hold listening AF_UNIX stream sockets on an abstract name and on a pathname."""
    for key, addr in (("abstract", abstract), ("pathname", path)):
        s = _hold(key, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
        s.bind(addr)
        s.listen(1)


def _unix_connect(addr: bytes | str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(_IO_TIMEOUT)
        return attempt(s.connect, addr)


def _unix_bind(addr: bytes) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        return attempt(s.bind, addr)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@check(
    "net.abstract_unix_isolated",
    catalogue="NET-06",
    level="MUST",
    anchors=("network_namespaces(7)", "unix(7)", "unshare crate namespace.rs"),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS", "UNIX")),
    timeout=5.0,
)
def abstract_unix_isolated(ctx: Context) -> None:
    """An abstract AF_UNIX socket bound in one namespace is unreachable from another.

    A helper in a new network namespace listens on an abstract name and on a
    pathname socket in the check's tmpdir. From the parent namespace,
    connect(2) to the abstract name must fail with ECONNREFUSED and binding
    the same abstract name must succeed (it is free here), while the pathname
    socket stays reachable: a shared filesystem, not the network namespace,
    scopes those. Control: the helper stays in the parent namespace.
    """
    flags = ctx.isolate(NEWNET)
    abstract = f"\0nsprim-net06-{os.getpid()}".encode()
    path = os.path.join(ctx.tmpdir, "net06.sock")
    ctx.defer(_unlink, path)
    ctx.defer(_release_held)
    holder = ctx.spawn_child(_listen_unix, abstract, path, unshare=flags)
    holder.recv()
    ctx.expect_equal(
        _unix_connect(abstract), "ECONNREFUSED", "connect to an abstract name bound in another ns"
    )
    ctx.expect_equal(
        _unix_bind(abstract), "ok", "binding an abstract name that another namespace holds"
    )
    ctx.expect_equal(
        _unix_connect(path), "ok", "connect to a pathname socket bound in another namespace"
    )


# --- NET-07 ---------------------------------------------------------------------------

_EVENT_PREFIX = "nsp07"


def _open_monitor() -> None:
    _hold("monitor", net.link_monitor())


def _seen_events(timeout: float) -> list[tuple[str, str]]:
    """Return the (action, name) link events for our links the held monitor has queued."""
    monitor: net.LinkMonitor = _HELD["monitor"]
    events = monitor.events(timeout)
    return sorted({(e.action, e.name) for e in events if e.name.startswith(_EVENT_PREFIX)})


def _churn(name: str, peer: str) -> list[tuple[str, str]]:
    """Create and delete a veth pair here; return the events this namespace's monitor saw."""
    net.create_veth(name, peer)
    net.delete_link(name)
    # rtnl_notify queues the notification before the request is answered, so it is
    # already there; the timeout only guards against a kernel that never sends it.
    return _seen_events(1.0)


@check(
    "net.netlink_scoped",
    catalogue="NET-07",
    level="MUST",
    anchors=("LTP netns_netlink",),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS", "VETH")),
    timeout=5.0,
)
def netlink_scoped(ctx: Context) -> None:
    """RTMGRP_LINK notifications reach listeners in the link's own namespace only.

    The check and a helper in a new network namespace each listen to
    RTMGRP_LINK. When the helper creates and deletes a veth pair, its own
    listener gets RTM_NEWLINK and RTM_DELLINK for it and the check's gets
    nothing; when the check does the same, the reverse. Control: the helper
    stays in the parent namespace and each listener sees the other's links.
    """
    flags = ctx.isolate(NEWNET)
    ctx.defer(_release_held)
    _open_monitor()
    there = ctx.spawn_child(_open_monitor, unshare=flags)
    there.recv()
    quiet = 0.1  # a notification is queued synchronously; waiting longer proves nothing more

    seen_there = there.call(_churn, "nsp07a", "nsp07b")
    seen_here = _seen_events(quiet)
    want = [("del", "nsp07a"), ("new", "nsp07a")]
    ctx.expect(
        set(want) <= set(seen_there), "the helper's listener sees its own links", want, seen_there
    )
    ctx.expect_equal(seen_here, [], "events for the helper's links seen in the parent namespace")

    seen_here = _churn("nsp07c", "nsp07d")
    seen_there = there.call(_seen_events, quiet)
    want = [("del", "nsp07c"), ("new", "nsp07c")]
    ctx.expect(
        set(want) <= set(seen_here), "the parent's listener sees its own links", want, seen_here
    )
    ctx.expect_equal(seen_there, [], "events for the parent's links seen in the helper")


# --- NET-08 ---------------------------------------------------------------------------

_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _write_sysctl(path: str, value: str) -> str:
    with open(path, "w") as f:
        f.write(value)
    return _read(path)


_TTL = "/proc/sys/net/ipv4/ip_default_ttl"


def _hold_abstract(name: str) -> None:
    s = _hold(name, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
    s.bind(b"\0" + name.encode())


def _mark_namespace(name: str, ttl: str) -> None:
    """Mark the caller's namespace: an abstract socket *name*, net.ipv4.ip_default_ttl *ttl*."""
    _hold_abstract(name)
    _write_sysctl(_TTL, ttl)


def _views_across_setns(here: str, there: str, target: str) -> dict[str, Any]:
    """Bind *here*, pin /proc/net/unix and a net sysctl in the dcache, setns(2) to *target*.

    Returns who /proc/net/unix lists and what ip_default_ttl reads, before and after.
    """
    _hold_abstract(here)
    # Keep both files open across setns so their dentries stay cached (selftest
    # proc/setns-dcache.c, the /proc/net bug fixed in Linux 5.1).
    with open("/proc/net/unix") as unix, open(_TTL) as ttl:
        seen: dict[str, Any] = {"here listed before setns": f"@{here}" in unix.read()}
        seen["ttl before setns"] = ttl.read().strip()
        setns_path(target, NEWNET)
        after = _read("/proc/net/unix")
        seen["here listed after setns"] = f"@{here}" in after
        seen["there listed after setns"] = f"@{there}" in after
        seen["ttl after setns"] = _read(_TTL)
    return seen


def _sysfs_view(home: str) -> dict[str, list[str]]:
    """Mount a fresh sysfs (this helper unshared CLONE_NEWNS) and list /sys/class/net.

    Lists it again after setns(2) back to the *home* network namespace: sysfs
    keeps showing the namespace that mounted it. An nsfs fd keeps that
    namespace alive meanwhile: once no process is in it, a mount of sysfs
    alone does not (the kernel then tears it down asynchronously, and its
    links, asynchronously, leave /sys/class/net), and the guarantee is about
    whose links a sysfs shows, not how long a namespace outlives its members.
    """
    net.create_veth("nsp08c", "nsp08d")
    flags = int(MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC)
    syscalls.mount("sysfs", "/sys", "sysfs", flags)
    seen = {
        "links": sorted(link.name for link in net.links()),
        "sysfs": sorted(os.listdir("/sys/class/net")),
    }
    keep = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_path(home, NEWNET)
        seen["sysfs after setns home"] = sorted(os.listdir("/sys/class/net"))
    finally:
        os.close(keep)
    return seen


@check(
    "net.proc_sys_views",
    catalogue="NET-08",
    level="MUST",
    anchors=(
        "selftest proc/setns-dcache.c",
        "LTP netns_sysfs",
        "runtime-tools linux_sysctl",
        "pyroute2#568",
    ),
    needs=Needs(min_kernel=(2, 6), kconfig=("NET_NS", "SYSFS", "VETH")),
    timeout=5.0,
)
def proc_sys_views(ctx: Context) -> None:
    """/proc/net and net.* sysctls are per namespace and follow setns; sysfs shows its mounter's.

    Three views. A helper in a new network namespace flips
    net.ipv4.ip_forward: it reads its new value, the parent keeps the old one.
    A process holding /proc/net/unix and net.ipv4.ip_default_ttl open
    (dentries cached) setns(2)es into a helper's new namespace: /proc/net/unix
    then lists the helper's abstract socket and no longer its own, and the
    sysctl reads the value the helper set there. A helper that unshares CLONE_NEWNS and
    CLONE_NEWNET and mounts sysfs finds exactly its own links in
    /sys/class/net, none of the parent's, and still its own after setns(2)
    back to the parent's namespace. Control: no helper gets a new network
    namespace.
    """
    flags = ctx.isolate(NEWNET)
    before = _read(_FORWARD)
    flipped = "0" if before == "1" else "1"
    inside = ctx.in_child(_write_sysctl, _FORWARD, flipped, unshare=flags)
    ctx.expect_equal(inside, flipped, "net.ipv4.ip_forward read back in the namespace that set it")
    ctx.expect_equal(_read(_FORWARD), before, "net.ipv4.ip_forward in the parent namespace")

    pid = os.getpid()
    ttl = "77" if _read(_TTL) != "77" else "78"
    target = ctx.spawn_child(_mark_namespace, f"nsprim-net08-there-{pid}", ttl, unshare=flags)
    target.recv()
    seen = ctx.in_child(
        _views_across_setns,
        f"nsprim-net08-here-{pid}",
        f"nsprim-net08-there-{pid}",
        target.ns_path("net"),
    )
    ctx.expect_equal(
        [seen[k] for k in ("here listed before setns", "ttl before setns")],
        [True, _read(_TTL)],
        "/proc/net/unix lists our socket, ip_default_ttl reads ours, before setns(2)",
    )
    ctx.expect_equal(
        [seen[k] for k in ("here listed after setns", "there listed after setns")],
        [False, True],
        "/proc/net/unix lists (our socket, the target's) after setns(2) into another namespace",
    )
    ctx.expect_equal(seen["ttl after setns"], ttl, "ip_default_ttl after setns(2)")

    _veth_here(ctx, "nsp08a", "nsp08b")
    view = ctx.in_child(_sysfs_view, f"/proc/{pid}/ns/net", unshare=NEWNS | flags)
    ctx.expect(
        "nsp08a" not in view["sysfs"],
        "the parent's link is absent from a sysfs mounted in a new namespace",
        None,
        view["sysfs"],
    )
    ctx.expect_equal(view["sysfs"], view["links"], "/sys/class/net vs the mounter's links")
    ctx.expect_equal(
        view["sysfs after setns home"], view["sysfs"], "/sys/class/net after setns(2) elsewhere"
    )


# --- NET-09 ---------------------------------------------------------------------------


def _thread_net() -> tuple[int, int, int | None]:
    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return ns_ident(fd)
    finally:
        os.close(fd)


def _socket_ns(sock: socket.socket) -> tuple[int, int, int | None]:
    fd = syscalls.socket_netns(sock)
    try:
        return ns_ident(fd)
    finally:
        os.close(fd)


def _udp() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)


def _socket_pins(late: bool) -> dict[str, Any]:
    """Move this thread between network namespaces around socket creation; see NET-09.

    With *late* the sockets are made after each move instead of before.
    """
    socks: list[socket.socket] = []

    def make() -> socket.socket:
        socks.append(_udp())
        return socks[-1]

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        home_id = ns_ident(home)
        s_home = None if late else make()
        unshare(NEWNET)
        new_id = _thread_net()
        s_home = s_home or make()
        net.set_link_up("lo")  # state that must still be there when the namespace is re-entered
        s_new = None if late else make()
        setns(home, NEWNET)  # now no process is in the new namespace
        s_new = s_new or make()
        seen: dict[str, Any] = {
            "home": home_id,
            "new": new_id,
            "socket made before unshare": _socket_ns(s_home),
            "socket made before setns": _socket_ns(s_new),
        }
        nsfd = syscalls.socket_netns(s_new)
        try:
            setns(nsfd, NEWNET)
        finally:
            os.close(nsfd)
        seen["re-entered"] = _thread_net()
        seen["lo up on re-entry"] = net.is_up("lo")
    finally:
        os.close(home)
        for s in socks:
            s.close()
    return seen


@check(
    "net.socket_pins_netns",
    catalogue="NET-09",
    level="MUST",
    anchors=("selftest namespaces/siocgskns_test.c", "lxkns", "pyroute2 create_socket"),
    needs=Needs(min_kernel=(4, 9), kconfig=("NET_NS",)),
    timeout=5.0,
)
def socket_pins_netns(ctx: Context) -> None:
    """A socket stays in the namespace it was made in and keeps it alive after all processes leave.

    A helper makes a socket, unshares CLONE_NEWNET, brings the new lo up,
    makes a second socket and setns(2)es back, so no process is left in the
    new namespace. SIOCGSKNS must name the original namespace for the first
    socket and the new one for the second (nsfs (st_dev, st_ino), plus
    NS_GET_ID where the kernel has it). Through the second socket's namespace
    fd the helper enters the new namespace again and finds its lo still up:
    the socket kept it alive. Control: each socket is made after the move, so
    it belongs to the namespace the thread moved into.
    """
    seen = ctx.in_child(_socket_pins, ctx.control)
    ctx.expect(seen["home"] != seen["new"], "unshare(CLONE_NEWNET) gave a new namespace")
    ctx.expect_equal(
        seen["socket made before unshare"],
        seen["home"],
        "SIOCGSKNS of a socket made before unshare",
    )
    ctx.expect_equal(
        seen["socket made before setns"], seen["new"], "SIOCGSKNS of a socket made before setns"
    )
    ctx.expect_equal(
        seen["re-entered"], seen["new"], "namespace entered through the socket's namespace fd"
    )
    ctx.expect(seen["lo up on re-entry"], "the namespace kept its state (lo up) while empty")


# --- NET-10 ---------------------------------------------------------------------------


_CAP_NET_ADMIN = 12  # linux/capability.h


def _effective_caps() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise LookupError("no CapEff line in /proc/self/status")


def _privilege_attempts(drop: bool) -> dict[str, Any]:
    """Try the NET-10 steps in this (fresh) process; report each step's errno name or result."""
    if drop:
        syscalls.drop_capabilities()
    seen: dict[str, Any] = {
        "unshare(CLONE_NEWNET)": attempt(syscalls.unshare, NEWNET),
        "set lo up in the current namespace": attempt(net.set_link_up, "lo"),
    }
    seen["unshare(CLONE_NEWUSER|CLONE_NEWNET)"] = attempt(syscalls.unshare, NEWUSER | NEWNET)
    if seen["unshare(CLONE_NEWUSER|CLONE_NEWNET)"] != "ok":
        return seen
    seen["CAP_NET_ADMIN in the new user ns"] = bool(_effective_caps() & (1 << _CAP_NET_ADMIN))
    seen["set lo up in the new namespace"] = attempt(net.set_link_up, "lo")
    seen["lo up"] = net.is_up("lo")
    return seen


@check(
    "net.netns_privilege",
    catalogue="NET-10",
    level="MUST",
    anchors=("user_namespaces(7)", "util-linux unshare(1) -r"),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("NET_NS", "USER_NS")),
    timeout=5.0,
)
def netns_privilege(ctx: Context) -> None:
    """Without CAP_SYS_ADMIN, unshare(CLONE_NEWNET) fails with EPERM unless a user ns comes with it.

    A helper clears its capability sets (capset(2); the uid stays, so this
    works rootless too), then: unshare(CLONE_NEWNET) must fail with EPERM,
    and so must setting IFF_UP on lo of its current namespace;
    unshare(CLONE_NEWUSER|CLONE_NEWNET) must succeed, and the helper, now
    root of the new user namespace (its creator, with the full capability
    set there, user_namespaces(7)), holds CAP_NET_ADMIN and brings the new lo
    up. It writes no uid_map: mapping its euid 0 would need CAP_SETFCAP in
    the parent namespace since Linux 5.12, which it has dropped. Control: the
    helper keeps its capabilities, so the first unshare succeeds.
    """
    seen = ctx.in_child(_privilege_attempts, not ctx.control)
    ctx.expect_equal(
        seen["unshare(CLONE_NEWNET)"], "EPERM", "unshare(CLONE_NEWNET) without CAP_SYS_ADMIN"
    )
    ctx.expect_equal(
        seen["set lo up in the current namespace"], "EPERM", "IFF_UP on lo without CAP_NET_ADMIN"
    )
    both = seen["unshare(CLONE_NEWUSER|CLONE_NEWNET)"]
    if both in ("EPERM", "ENOSPC", "EUSERS"):
        raise Skip(f"unprivileged processes cannot create user namespaces here ({both})")
    ctx.expect_equal(both, "ok", "unshare(CLONE_NEWUSER|CLONE_NEWNET) without CAP_SYS_ADMIN")
    ctx.expect(
        seen["CAP_NET_ADMIN in the new user ns"],
        "the creator holds CAP_NET_ADMIN in the new user ns",
    )
    ctx.expect_equal(seen["set lo up in the new namespace"], "ok", "IFF_UP on lo as user-ns root")
    ctx.expect(seen["lo up"], "lo is up in the new namespace")
