"""nsprim.net argument validation: every message, and no socket before it.

Bad arguments must raise ValueError/TypeError naming the parameter and echoing
the value *before* any socket is opened. The last test proves the "before" on
the real kernel: it runs every case in a forked child whose RLIMIT_NOFILE
forbids opening any new fd, so a socket opened first would surface as EMFILE.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import resource
import select
import signal
import time
from typing import Any, Callable

import pytest

from nsprim import net


def _any(value: object) -> Any:
    """Pass a deliberately wrong type past mypy."""
    return value


_LONG = "a" * 16
_WIDE = "é" * 8  # 8 characters, 16 bytes in UTF-8

# (call, exception type, exact message)
Case = tuple[Callable[[], object], type, str]

_NAME_CASES: list[tuple[object, type, str]] = [
    ("", ValueError, "name must be a non-empty interface name, got ''"),
    (_LONG, ValueError, f"name must be at most 15 bytes (IFNAMSIZ-1), got 16 bytes: {_LONG!r}"),
    (_WIDE, ValueError, f"name must be at most 15 bytes (IFNAMSIZ-1), got 16 bytes: {_WIDE!r}"),
    ("a/b", ValueError, "name must not contain '/', ':', NUL or whitespace, got 'a/b'"),
    ("a b", ValueError, "name must not contain '/', ':', NUL or whitespace, got 'a b'"),
    ("a\tb", ValueError, "name must not contain '/', ':', NUL or whitespace, got 'a\\tb'"),
    ("a\nb", ValueError, "name must not contain '/', ':', NUL or whitespace, got 'a\\nb'"),
    ("a\0b", ValueError, "name must not contain '/', ':', NUL or whitespace, got 'a\\x00b'"),
    ("a:b", ValueError, "name must not contain '/', ':', NUL or whitespace, got 'a:b'"),
    (".", ValueError, "name must not be '.' or '..', got '.'"),
    ("..", ValueError, "name must not be '.' or '..', got '..'"),
    (None, TypeError, "name must be a str interface name, got NoneType: None"),
    (b"lo", TypeError, "name must be a str interface name, got bytes: b'lo'"),
    (1, TypeError, "name must be a str interface name, got int: 1"),
]

_NAME_FUNCS: list[tuple[str, Callable[[Any], object]]] = [
    ("set_link_up", lambda n: net.set_link_up(n)),
    ("set_link_down", lambda n: net.set_link_down(n)),
    ("link_flags", lambda n: net.link_flags(n)),
    ("is_up", lambda n: net.is_up(n)),
    ("create_veth", lambda n: net.create_veth(n, "peer0")),
    ("move_link", lambda n: net.move_link(n, netns_pid=1)),
    ("delete_link", lambda n: net.delete_link(n)),
    ("add_address", lambda n: net.add_address(n, "198.51.100.1/24")),
    ("addresses", lambda n: net.addresses(n)),
]


def _cases() -> list[tuple[str, Case]]:
    out: list[tuple[str, Case]] = []
    for func_name, func in _NAME_FUNCS:
        for value, exc, msg in _NAME_CASES:
            if func_name == "addresses" and value is None:
                continue  # None means "all links" there
            call: Callable[[], object] = functools.partial(func, value)
            out.append((f"{func_name}-name={value!r}", (call, exc, msg)))
    peer_msg = "peer must differ from name when both ends are in one namespace, got 'x0'"
    bad_cidr = "cidr must be ADDRESS/PREFIXLEN like '198.51.100.1/24' or '2001:db8::1/64', got "
    more: list[tuple[str, Callable[[], object], type, str]] = [
        (
            "veth-peer-empty",
            lambda: net.create_veth("x0", ""),
            ValueError,
            "peer must be a non-empty interface name, got ''",
        ),
        (
            "veth-peer-long",
            lambda: net.create_veth("x0", _LONG),
            ValueError,
            f"peer must be at most 15 bytes (IFNAMSIZ-1), got 16 bytes: {_LONG!r}",
        ),
        (
            "veth-peer-type",
            lambda: net.create_veth("x0", _any(None)),
            TypeError,
            "peer must be a str interface name, got NoneType: None",
        ),
        ("veth-same-name", lambda: net.create_veth("x0", "x0"), ValueError, peer_msg),
        (
            "veth-netns-negative",
            lambda: net.create_veth("x0", "x1", peer_netns=-1),
            ValueError,
            "peer_netns must be a non-negative file descriptor, got -1",
        ),
        (
            "veth-netns-bool",
            lambda: net.create_veth("x0", "x1", peer_netns=True),
            TypeError,
            "peer_netns must be an int or have fileno(), got True",
        ),
        (
            # A str is a path to a namespace file now (peer_netns="/run/netns/x"); a
            # float is none of the accepted handles.
            "veth-netns-float",
            lambda: net.create_veth("x0", "x1", peer_netns=_any(3.0)),
            TypeError,
            "peer_netns must be an int or have fileno(), got float 3.0",
        ),
        (
            "move-no-target",
            lambda: net.move_link("x0"),
            ValueError,
            "give exactly one of netns_fd and netns_pid, got netns_fd=None, netns_pid=None",
        ),
        (
            "move-two-targets",
            lambda: net.move_link("x0", netns_fd=3, netns_pid=1),
            ValueError,
            "give exactly one of netns_fd and netns_pid, got netns_fd=3, netns_pid=1",
        ),
        (
            "move-fd-negative",
            lambda: net.move_link("x0", netns_fd=-2),
            ValueError,
            "netns_fd must be a non-negative file descriptor, got -2",
        ),
        (
            "move-pid-zero",
            lambda: net.move_link("x0", netns_pid=0),
            ValueError,
            "netns_pid must be a positive pid, got 0",
        ),
        (
            "move-pid-negative",
            lambda: net.move_link("x0", netns_pid=-5),
            ValueError,
            "netns_pid must be a positive pid, got -5",
        ),
        (
            "move-pid-bool",
            lambda: net.move_link("x0", netns_pid=True),
            TypeError,
            "netns_pid must be an int pid, got bool: True",
        ),
        (
            "move-pid-str",
            lambda: net.move_link("x0", netns_pid=_any("1")),
            TypeError,
            "netns_pid must be an int pid, got str: '1'",
        ),
        (
            "cidr-no-prefix",
            lambda: net.add_address("x0", "198.51.100.1"),
            ValueError,
            bad_cidr + "'198.51.100.1'",
        ),
        (
            "cidr-empty-prefix",
            lambda: net.add_address("x0", "198.51.100.1/"),
            ValueError,
            bad_cidr + "'198.51.100.1/'",
        ),
        ("cidr-empty-addr", lambda: net.add_address("x0", "/24"), ValueError, bad_cidr + "'/24'"),
        ("cidr-empty", lambda: net.add_address("x0", ""), ValueError, bad_cidr + "''"),
        (
            "cidr-bad-v4",
            lambda: net.add_address("x0", "198.51.100.256/24"),
            ValueError,
            "cidr has a malformed IPv4/IPv6 address, got '198.51.100.256/24'",
        ),
        (
            "cidr-bad-v6",
            lambda: net.add_address("x0", "2001:db8:::1/64"),
            ValueError,
            "cidr has a malformed IPv4/IPv6 address, got '2001:db8:::1/64'",
        ),
        (
            "cidr-hostname",
            lambda: net.add_address("x0", "localhost/8"),
            ValueError,
            "cidr has a malformed IPv4/IPv6 address, got 'localhost/8'",
        ),
        (
            "cidr-v4-prefix-33",
            lambda: net.add_address("x0", "198.51.100.1/33"),
            ValueError,
            "cidr prefix length must be 0..32 for IPv4, got '198.51.100.1/33'",
        ),
        (
            "cidr-v6-prefix-129",
            lambda: net.add_address("x0", "2001:db8::1/129"),
            ValueError,
            "cidr prefix length must be 0..128 for IPv6, got '2001:db8::1/129'",
        ),
        (
            "cidr-prefix-negative",
            lambda: net.add_address("x0", "198.51.100.1/-1"),
            ValueError,
            "cidr must have a decimal prefix length, got '198.51.100.1/-1'",
        ),
        (
            "cidr-prefix-netmask",
            lambda: net.add_address("x0", "198.51.100.1/255.255.255.0"),
            ValueError,
            "cidr must have a decimal prefix length, got '198.51.100.1/255.255.255.0'",
        ),
        (
            "cidr-prefix-nonascii",
            lambda: net.add_address("x0", "198.51.100.1/\u0662\u0664"),
            ValueError,
            "cidr must have a decimal prefix length, got '198.51.100.1/\u0662\u0664'",
        ),
        (
            "cidr-type",
            lambda: net.add_address("x0", _any(24)),
            TypeError,
            "cidr must be a str like '198.51.100.1/24' or '2001:db8::1/64', got int: 24",
        ),
    ]
    out += [(cid, (call, exc, msg)) for cid, call, exc, msg in more]
    return out


_CASES = _cases()


@pytest.mark.parametrize(("call", "exc", "msg"), [c for _, c in _CASES], ids=[i for i, _ in _CASES])
def test_net_rejects_bad_argument_with_message(
    call: Callable[[], object], exc: type, msg: str
) -> None:
    with pytest.raises(exc, match=f"^{re.escape(msg)}$"):
        call()


def test_net_validation_accepts_interface_objects_and_fileno() -> None:
    import ipaddress

    assert net._check_cidr(ipaddress.ip_interface("198.51.100.1/24")) == ipaddress.ip_interface(
        "198.51.100.1/24"
    )
    assert str(net._check_cidr("2001:DB8::1/64")) == "2001:db8::1/64"
    assert net._check_ifname("a" * 15) == b"a" * 15
    assert net._check_ifname("veth-é") == "veth-é".encode()


def test_link_monitor_has_no_public_constructor() -> None:
    msg = "LinkMonitor has no public constructor; use nsprim.net.link_monitor()"
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        net.LinkMonitor(object(), _any(None))


@pytest.mark.parametrize(
    ("timeout", "exc", "msg"),
    [
        (-1, ValueError, "timeout must be >= 0 seconds, got -1"),
        (float("nan"), ValueError, "timeout must be >= 0 seconds, got nan"),
        ("1", TypeError, "timeout must be a number of seconds, got str: '1'"),
        (True, TypeError, "timeout must be a number of seconds, got bool: True"),
    ],
)
def test_link_monitor_events_rejects_bad_timeout(timeout: object, exc: type, msg: str) -> None:
    # Listening in the host namespace only reads; nothing is created.
    with net.link_monitor() as mon, pytest.raises(exc, match=f"^{re.escape(msg)}$"):
        mon.events(_any(timeout))
    with pytest.raises(ValueError, match="closed LinkMonitor"):
        mon.events(0)
    with pytest.raises(ValueError, match="closed LinkMonitor"):
        mon.fileno()
    mon.close()  # idempotent


def test_net_validation_happens_before_any_socket() -> None:
    """With no fd left to open, every bad call still fails with its own message."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            # RLIMIT_NOFILE 0: any new fd (a socket) fails with EMFILE, so an
            # early socket() would replace the expected exception.
            resource.setrlimit(resource.RLIMIT_NOFILE, (0, 0))
            results = []
            for case_id, (call, _exc, _msg) in _CASES:
                try:
                    call()
                    results.append((case_id, "no error", ""))
                except BaseException as err:
                    results.append((case_id, type(err).__name__, str(err)))
            with os.fdopen(w, "wb") as f:
                f.write(pickle.dumps(results))
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    reaped = False
    try:
        deadline = time.monotonic() + 30
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"child {pid} gave no answer within 30 s")
            ready, _, _ = select.select([r], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            data += chunk
        _, status = os.waitpid(pid, 0)  # EOF: the child is in os._exit
        reaped = True
    finally:
        os.close(r)
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = {case_id: (name, msg) for case_id, name, msg in pickle.loads(data)}
    for case_id, (_call, exc, msg) in _CASES:
        assert got[case_id] == (exc.__name__, msg), case_id
