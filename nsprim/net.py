"""Network plumbing without the ``ip`` binary: links, veth pairs, addresses, link events.

Layer 2. May import only the standard library, :mod:`nsprim.errors`,
:mod:`nsprim._fd`, :mod:`nsprim.syscalls` and :mod:`nsprim.namespace` (never
``process``, ``cli`` or ``conformance``). It talks to
the kernel directly, over ``AF_NETLINK``/``NETLINK_ROUTE`` sockets and the
``SIOC[GS]IFFLAGS`` ioctls, so it works in a minimal VM without iproute2 and
without pyroute2.

Every function acts on the network namespace of the **calling thread**: a
socket is bound to the network namespace of the thread that creates it, and
each call here opens (and always closes) its own socket. To configure another
namespace, move the thread there first (``setns``) or do the work in a child.
A :class:`LinkMonitor` keeps the namespace it was opened in, even if the
thread moves afterwards.

Errors follow nsprim.errors: bad arguments raise ``ValueError`` or
``TypeError`` before any socket is opened; a kernel refusal raises
``OSError(errno, strerror, ifname)`` (``ENODEV`` for a device that is not in
this namespace, ``EEXIST`` for a name that is taken), and EPERM/EACCES raise
:class:`nsprim.AccessDenied`, a ``PermissionError`` that carries the same
errno and filename plus a hint. On Python 3.11+ the kernel's extended-ack text
(``NETLINK_EXT_ACK``), when it sends one, is attached as a note.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union, final

from . import _procfs
from . import syscalls as _sc
from ._fd import FdLike, OwnedFd, fd_of
from .errors import NoSuchProcess, UnsupportedError, add_note, translate
from .namespace import Namespace, NsType, nstype_of

__all__ = [
    "Address",
    "IfFlags",
    "Link",
    "LinkEvent",
    "LinkMonitor",
    "OperState",
    "add_address",
    "addresses",
    "create_veth",
    "delete_link",
    "is_up",
    "link_flags",
    "link_monitor",
    "links",
    "move_link",
    "netnsid",
    "set_link_down",
    "set_link_up",
]


# --- UAPI constants ---------------------------------------------------------
# <linux/netlink.h>
_NETLINK_ROUTE = 0
_SOL_NETLINK = 270
_NETLINK_CAP_ACK = 10  # Linux 4.3: don't echo the request back in acks
_NETLINK_EXT_ACK = 11  # Linux 4.12: error strings in acks
_NLM_F_REQUEST = 0x01
_NLM_F_MULTI = 0x02
_NLM_F_ACK = 0x04
_NLM_F_DUMP_INTR = 0x10
_NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_NLM_F_CAPPED = 0x100  # flags of an NLMSG_ERROR message
_NLM_F_ACK_TLVS = 0x200
_NLMSG_NOOP = 1
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLMSG_OVERRUN = 4
_NLMSGERR_ATTR_MSG = 1
_NLA_F_NESTED = 0x8000
_NLA_TYPE_MASK = 0x3FFF  # ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
# <linux/rtnetlink.h>
_RTM_NEWLINK = 16
_RTM_DELLINK = 17
_RTM_GETLINK = 18
_RTM_SETLINK = 19
_RTM_NEWADDR = 20
_RTM_GETADDR = 22
_RTM_NEWNSID = 88  # Linux 4.0
_RTM_GETNSID = 90
_NETNSA_NSID = 1
_NETNSA_FD = 3
_NETNSA_NSID_NOT_ASSIGNED = -1
_RTMGRP_LINK = 0x1
# <linux/if_link.h>
_IFLA_ADDRESS = 1
_IFLA_IFNAME = 3
_IFLA_MTU = 4
_IFLA_OPERSTATE = 16
_IFLA_LINKINFO = 18
_IFLA_NET_NS_PID = 19
_IFLA_NET_NS_FD = 28
_IFLA_INFO_KIND = 1
_IFLA_INFO_DATA = 2
# <linux/veth.h>
_VETH_INFO_PEER = 1
# <linux/if_addr.h>
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_IFA_FLAGS = 8
_IFA_F_NODAD = 0x02
# <linux/sockios.h>
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
# <linux/if.h>
_IFNAMSIZ = 16
_IFF_UP = 0x1

# Struct layouts, native byte order, no padding (the UAPI structs have none).
_NLMSGHDR = struct.Struct("=IHHII")  # struct nlmsghdr: len, type, flags, seq, pid
_NLMSGERR = struct.Struct("=i")  # struct nlmsgerr: error, then the offending nlmsghdr
_IFINFOMSG = struct.Struct("=BxHiII")  # struct ifinfomsg: family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # struct ifaddrmsg: family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")  # struct rtattr: len, type
_U32 = struct.Struct("=I")
_IFREQ_FLAGS = struct.Struct("=16sH22x")  # struct ifreq (40 bytes), ifr_flags member

_TIMEOUT = 5.0  # seconds; a healthy kernel answers rtnetlink within microseconds
_RECV_SIZE = 1 << 16  # the kernel caps a dump skb at 32 KiB (netlink_dump, max_recvmsg_len)
_DUMP_RETRIES = 3


class IfFlags(enum.IntFlag):
    """Interface flags (``IFF_*`` from <linux/if.h>) as in ``ifi_flags``."""

    UP = 0x1
    BROADCAST = 0x2
    DEBUG = 0x4
    LOOPBACK = 0x8
    POINTOPOINT = 0x10
    NOTRAILERS = 0x20
    RUNNING = 0x40
    NOARP = 0x80
    PROMISC = 0x100
    ALLMULTI = 0x200
    MASTER = 0x400
    SLAVE = 0x800
    MULTICAST = 0x1000
    PORTSEL = 0x2000
    AUTOMEDIA = 0x4000
    DYNAMIC = 0x8000
    LOWER_UP = 0x10000
    DORMANT = 0x20000
    ECHO = 0x40000


class OperState(enum.IntEnum):
    """RFC 2863 operational state (``IF_OPER_*`` from <linux/if.h>, IFLA_OPERSTATE)."""

    UNKNOWN = 0
    NOTPRESENT = 1
    DOWN = 2
    LOWERLAYERDOWN = 3
    TESTING = 4
    DORMANT = 5
    UP = 6


# slots=True would need Python 3.10 (requires-python is 3.9).
@dataclass(frozen=True)
class Link:
    """One network interface as RTM_NEWLINK describes it.

    Attributes:
        index: ifindex, unique within its network namespace.
        name: interface name (IFLA_IFNAME).
        flags: IFF_* flags (``ifi_flags``), e.g. ``IfFlags.UP | IfFlags.LOOPBACK``.
        kind: link type from IFLA_INFO_KIND (``"veth"``, ``"dummy"``); None for
            devices without rtnl_link_ops, such as ``lo``.
        mtu: IFLA_MTU.
        address: hardware address as ``"aa:bb:cc:dd:ee:ff"``; None if the link has none.
        operstate: IFLA_OPERSTATE.
    """

    index: int
    name: str
    flags: IfFlags
    kind: str | None
    mtu: int
    address: str | None
    operstate: OperState

    @property
    def is_up(self) -> bool:
        """Whether IFF_UP is set (administratively up)."""
        return bool(self.flags & IfFlags.UP)


@dataclass(frozen=True)
class Address:
    """One interface address as RTM_NEWADDR describes it.

    Attributes:
        index: ifindex of the interface that holds the address.
        name: that interface's name.
        interface: address and prefix, e.g. ``IPv4Interface('198.51.100.1/24')``
            (IFA_LOCAL, else IFA_ADDRESS, with ``ifa_prefixlen``).
        scope: ``ifa_scope`` (0 universe, 253 link, 254 host).
        flags: IFA_F_* flags (IFA_FLAGS when present, else ``ifa_flags``).
    """

    index: int
    name: str
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    scope: int
    flags: int

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address without its prefix."""
        return self.interface.ip

    @property
    def family(self) -> int:
        """``socket.AF_INET`` or ``socket.AF_INET6``."""
        return socket.AF_INET if self.interface.version == 4 else socket.AF_INET6


@dataclass(frozen=True)
class LinkEvent:
    """One RTMGRP_LINK notification.

    Attributes:
        action: ``"new"`` for RTM_NEWLINK (a link appeared or changed, e.g. went
            up) or ``"del"`` for RTM_DELLINK (a link was deleted or left the
            namespace).
        link: the link as the notification describes it.
    """

    action: Literal["new", "del"]
    link: Link

    @property
    def name(self) -> str:
        """The interface name."""
        return self.link.name

    @property
    def index(self) -> int:
        """The ifindex."""
        return self.link.index


# --- validation (runs before any socket is opened) --------------------------


def _check_ifname(value: object, param: str = "name") -> bytes:
    """Return *value* encoded for the kernel, or raise naming *param*.

    The rules are the kernel's dev_valid_name() (net/core/dev.c): 1..15 bytes,
    not "." or "..", no '/', ':' or whitespace; NUL can't be sent at all.
    """
    if not isinstance(value, str):
        raise TypeError(
            f"{param} must be a str interface name, got {type(value).__name__}: {value!r}"
        )
    if not value:
        raise ValueError(f"{param} must be a non-empty interface name, got {value!r}")
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > _IFNAMSIZ - 1:
        raise ValueError(
            f"{param} must be at most {_IFNAMSIZ - 1} bytes (IFNAMSIZ-1), "
            f"got {len(raw)} bytes: {value!r}"
        )
    if value in (".", ".."):
        raise ValueError(f"{param} must not be '.' or '..', got {value!r}")
    for ch in value:
        if ch in "/:\0" or ch.isspace():
            raise ValueError(f"{param} must not contain '/', ':', NUL or whitespace, got {value!r}")
    return raw


def _check_pid(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{param} must be an int pid, got {type(value).__name__}: {value!r}")
    if value <= 0:
        raise ValueError(f"{param} must be a positive pid, got {value!r}")
    return value


_Interface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]


def _check_cidr(value: object, param: str = "cidr") -> _Interface:
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return value
    if not isinstance(value, str):
        raise TypeError(
            f"{param} must be a str like '198.51.100.1/24' or '2001:db8::1/64', "
            f"got {type(value).__name__}: {value!r}"
        )
    addr, sep, prefix = value.partition("/")
    if not sep or not addr or not prefix:
        raise ValueError(
            f"{param} must be ADDRESS/PREFIXLEN like '198.51.100.1/24' or "
            f"'2001:db8::1/64', got {value!r}"
        )
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ValueError(f"{param} has a malformed IPv4/IPv6 address, got {value!r}") from None
    if not prefix.isdigit() or not prefix.isascii():
        raise ValueError(f"{param} must have a decimal prefix length, got {value!r}")
    if not 0 <= int(prefix) <= ip.max_prefixlen:
        raise ValueError(
            f"{param} prefix length must be 0..{ip.max_prefixlen} for IPv{ip.version}, "
            f"got {value!r}"
        )
    return ipaddress.ip_interface(f"{ip}/{int(prefix)}")


# --- errors -----------------------------------------------------------------

_EPERM_HINT = (
    "needs CAP_NET_ADMIN in the user namespace that owns the calling thread's network namespace"
)


def _os_error(err: int, operation: str, ifname: str | None, detail: str = "") -> OSError:
    """The exception for a kernel refusal (netlink errno *err*) of *operation* on *ifname*."""
    target = f"({ifname!r})" if ifname is not None else "()"
    exc = translate(
        OSError(err, os.strerror(err), ifname),
        operation,
        hint=_EPERM_HINT,
        msg=f"{operation}{target}: {os.strerror(err)}; {_EPERM_HINT}",
    )
    add_note(exc, f"in {operation}()" + (f"; kernel says: {detail}" if detail else ""))
    return exc


# --- netlink ----------------------------------------------------------------


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def _attr_str(kind: int, value: bytes) -> bytes:
    return _attr(kind, value + b"\0")


def _attr_u32(kind: int, value: int) -> bytes:
    return _attr(kind, _U32.pack(value))


def _parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > len(data):
            break
        attrs[kind & _NLA_TYPE_MASK] = data[offset + _RTATTR.size : offset + length]
        offset += _align(length)
    return attrs


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _extack_message(flags: int, body: bytes) -> str:
    """Return NLMSGERR_ATTR_MSG from an NLMSG_ERROR body, or ""."""
    if not flags & _NLM_F_ACK_TLVS or len(body) < _NLMSGERR.size + _NLMSGHDR.size:
        return ""
    if flags & _NLM_F_CAPPED:
        offset = _NLMSGERR.size + _NLMSGHDR.size
    else:
        (orig_len,) = _U32.unpack_from(body, _NLMSGERR.size)
        offset = _NLMSGERR.size + _align(orig_len)
    msg = _parse_attrs(body, offset).get(_NLMSGERR_ATTR_MSG)
    return _cstr(msg) if msg else ""


def _iter_messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """Split one datagram into (type, flags, seq, body) tuples."""
    out = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise OSError(errno.EBADMSG, "truncated netlink message from the kernel")
        out.append((kind, flags, seq, data[offset + _NLMSGHDR.size : offset + length]))
        offset += _align(length)
    return out


class _DumpInterrupted(Exception):
    """NLM_F_DUMP_INTR: the table changed during the dump; retry it."""


class _Rtnl:
    """A NETLINK_ROUTE request socket in the calling thread's network namespace."""

    def __init__(self, timeout: float = _TIMEOUT) -> None:
        self._timeout = timeout
        # Python sockets are non-inheritable; SOCK_CLOEXEC makes it atomic.
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE
        )
        try:
            for opt in (_NETLINK_EXT_ACK, _NETLINK_CAP_ACK):
                # Older kernels lack these options; plain acks are enough then.
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(_SOL_NETLINK, opt, 1)
            self._sock.bind((0, 0))
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0

    def __enter__(self) -> _Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def request(
        self,
        kind: int,
        body: bytes,
        *,
        flags: int = 0,
        operation: str,
        ifname: str | None = None,
    ) -> list[tuple[int, bytes]]:
        """Send one request and return the (type, body) replies before its ack.

        Non-dump requests always carry NLM_F_ACK, so success is confirmed and a
        failure is read back as NLMSG_ERROR for exactly this sequence number.
        """
        dump = flags & _NLM_F_DUMP == _NLM_F_DUMP
        flags |= _NLM_F_REQUEST | (0 if dump else _NLM_F_ACK)
        self._seq += 1
        seq = self._seq
        msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body
        self._sock.sendto(msg, (0, 0))
        replies: list[tuple[int, bytes]] = []
        interrupted = False
        deadline = time.monotonic() + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    errno.ETIMEDOUT,
                    f"no netlink answer within {self._timeout} s",
                    ifname,
                )
            self._sock.settimeout(remaining)
            try:
                data, _anc, msg_flags, _addr = self._sock.recvmsg(_RECV_SIZE)
            except socket.timeout:
                continue  # the deadline check above raises
            if msg_flags & socket.MSG_TRUNC:
                raise OSError(errno.EMSGSIZE, "netlink reply larger than the receive buffer")
            for rkind, rflags, rseq, rbody in _iter_messages(data):
                if rseq != seq:
                    continue  # a stale reply to an earlier request on this socket
                if rflags & _NLM_F_DUMP_INTR:
                    interrupted = True
                if rkind == _NLMSG_ERROR:
                    (err,) = _NLMSGERR.unpack_from(rbody)
                    if err:
                        raise _os_error(-err, operation, ifname, _extack_message(rflags, rbody))
                    return replies  # the ack
                if rkind == _NLMSG_DONE:
                    # The DONE body holds the dump's final status (0 or -errno).
                    err = _NLMSGERR.unpack_from(rbody)[0] if len(rbody) >= 4 else 0
                    if err:
                        # Here the extack TLVs follow the bare error code.
                        tlvs = _parse_attrs(rbody, 4) if rflags & _NLM_F_ACK_TLVS else {}
                        detail = _cstr(tlvs.get(_NLMSGERR_ATTR_MSG, b""))
                        raise _os_error(-err, operation, ifname, detail)
                    if interrupted:
                        raise _DumpInterrupted
                    return replies
                if rkind in (_NLMSG_NOOP, _NLMSG_OVERRUN):
                    continue
                replies.append((rkind, rbody))

    def dump(self, kind: int, body: bytes, *, operation: str) -> list[tuple[int, bytes]]:
        """Run a multipart dump, retrying when the kernel flags it inconsistent."""
        for _ in range(_DUMP_RETRIES):
            try:
                return self.request(kind, body, flags=_NLM_F_DUMP, operation=operation)
            except _DumpInterrupted:
                continue
        raise OSError(errno.EAGAIN, f"{operation}: dump kept changing underneath, gave up")

    def link(self, raw_name: bytes, name: str, operation: str) -> Link:
        """Look up one link by name (RTM_GETLINK with IFLA_IFNAME); ENODEV if absent."""
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr_str(_IFLA_IFNAME, raw_name)
        for rkind, rbody in self.request(_RTM_GETLINK, body, operation=operation, ifname=name):
            if rkind == _RTM_NEWLINK:
                return _parse_link(rbody)
        raise _os_error(errno.ENODEV, operation, name)

    def change_link(
        self,
        index: int,
        attrs: bytes,
        *,
        operation: str,
        ifname: str,
        flags: int = 0,
        change: int = 0,
    ) -> None:
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change) + attrs
        self.request(_RTM_SETLINK, body, operation=operation, ifname=ifname)


def _parse_link(body: bytes) -> Link:
    _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(body)
    attrs = _parse_attrs(body, _IFINFOMSG.size)
    kind: str | None = None
    if _IFLA_LINKINFO in attrs:
        info = _parse_attrs(attrs[_IFLA_LINKINFO])
        if _IFLA_INFO_KIND in info:
            kind = _cstr(info[_IFLA_INFO_KIND])
    hwaddr = attrs.get(_IFLA_ADDRESS)
    mtu = _U32.unpack(attrs[_IFLA_MTU])[0] if len(attrs.get(_IFLA_MTU, b"")) == 4 else 0
    raw_state = attrs.get(_IFLA_OPERSTATE, b"\0")[0]
    try:
        operstate = OperState(raw_state)
    except ValueError:
        operstate = OperState.UNKNOWN
    return Link(
        index=index,
        name=_cstr(attrs.get(_IFLA_IFNAME, b"")),
        flags=IfFlags(flags),
        kind=kind,
        mtu=mtu,
        address=":".join(f"{b:02x}" for b in hwaddr) if hwaddr else None,
        operstate=operstate,
    )


# --- links ------------------------------------------------------------------


def links() -> list[Link]:
    """List the links of the calling thread's network namespace, by ifindex.

    Uses an RTM_GETLINK dump over NETLINK_ROUTE; Linux 2.2 (IFLA_LINKINFO kind
    2.6.23, IFLA_OPERSTATE 2.6.17, per-namespace view 2.6.24).

    Returns:
        One :class:`Link` per interface, sorted by index.

    Raises:
        OSError: the netlink socket could not be opened or the dump failed.
    """
    with _Rtnl() as rtnl:
        replies = rtnl.dump(
            _RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), operation="links"
        )
    found = [_parse_link(body) for kind, body in replies if kind == _RTM_NEWLINK]
    return sorted(found, key=lambda link: link.index)


def link_flags(name: str) -> IfFlags:
    """Return the IFF_* flags of link *name* in the calling thread's network namespace.

    Uses RTM_GETLINK with IFLA_IFNAME (full 32-bit ``ifi_flags``, including
    IFF_LOWER_UP, which the 16-bit SIOCGIFFLAGS cannot report); Linux 2.6.24
    for lookup by name.

    Args:
        name: interface name.

    Returns:
        The flags, e.g. ``IfFlags.UP | IfFlags.LOOPBACK | IfFlags.RUNNING``.

    Raises:
        TypeError, ValueError: *name* is not a valid interface name.
        OSError: ENODEV if there is no such link in this namespace.
    """
    raw = _check_ifname(name)
    with _Rtnl() as rtnl:
        return rtnl.link(raw, name, "link_flags").flags


def netnsid(netns: FdLike) -> int | None:
    """Return the id the caller's network namespace gives the network namespace *netns*.

    Uses RTM_GETNSID with NETNSA_FD over NETLINK_ROUTE (Linux 4.0), as
    ``ip netns list-id`` and lsns's NETNSID column do. Ids are local to the
    asking namespace and assigned when something needs one (a veth peer, ``ip
    netns set``); ``None`` when none is assigned.

    Args:
        netns: an nsfs fd of a network namespace (``/proc/PID/ns/net``, a bind mount).

    Raises:
        ValueError: *netns* is not a network namespace fd.
        OSError: what the kernel answers (EBADF...).
    """
    fd = fd_of(netns, "netns")
    if nstype_of(fd) is not NsType.NET:
        raise ValueError(f"netns must be a network namespace fd, got a {nstype_of(fd).value} one")
    body = struct.pack("=Bxxx", socket.AF_UNSPEC) + _attr_u32(_NETNSA_FD, fd)
    with _Rtnl() as rtnl:
        replies = rtnl.request(_RTM_GETNSID, body, operation="netnsid")
    for kind, rbody in replies:
        if kind == _RTM_NEWNSID:
            raw = _parse_attrs(rbody, 4).get(_NETNSA_NSID)
            if raw is not None and len(raw) >= 4:
                (nsid,) = struct.unpack_from("=i", raw)
                return None if nsid == _NETNSA_NSID_NOT_ASSIGNED else int(nsid)
    return None


def is_up(name: str = "lo") -> bool:
    """Return whether link *name* is administratively up (IFF_UP).

    Uses RTM_GETLINK, like :func:`link_flags`; Linux 2.6.24. Acts on the
    calling thread's network namespace.

    Args:
        name: interface name.

    Raises:
        TypeError, ValueError: *name* is not a valid interface name.
        OSError: ENODEV if there is no such link in this namespace.
    """
    return bool(link_flags(name) & IfFlags.UP)


def _set_up_netlink(raw: bytes, name: str, up: bool, operation: str) -> None:
    with _Rtnl() as rtnl:
        index = rtnl.link(raw, name, operation).index
        rtnl.change_link(
            index,
            b"",
            operation=operation,
            ifname=name,
            flags=_IFF_UP if up else 0,
            change=_IFF_UP,
        )


def _set_up(name: str, up: bool, operation: str) -> None:
    raw = _check_ifname(name)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    except OSError as err:
        if err.errno != errno.EAFNOSUPPORT:
            raise
        # No IPv4 in this kernel: RTM_SETLINK with ifi_change=IFF_UP does the same.
        _set_up_netlink(raw, name, up, operation)
        return
    with sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, _IFREQ_FLAGS.pack(raw, 0))
            flags = _IFREQ_FLAGS.unpack(reply)[1]
            wanted = flags | _IFF_UP if up else flags & ~_IFF_UP & 0xFFFF
            if wanted != flags:
                fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _IFREQ_FLAGS.pack(raw, wanted))
        except OSError as err:
            raise _os_error(err.errno or errno.EIO, operation, name) from err


def set_link_up(name: str = "lo") -> None:
    """Set IFF_UP on link *name* in the calling thread's network namespace.

    Uses ioctl SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET datagram socket (any
    Linux; per-namespace since 2.6.24), or RTM_SETLINK with ``ifi_change =
    IFF_UP`` when the kernel has no IPv4. Bringing ``lo`` up also gives it
    127.0.0.1 and ::1. Does nothing if the link is already up.

    Args:
        name: interface name; ``"lo"`` by default.

    Raises:
        TypeError, ValueError: *name* is not a valid interface name.
        OSError: ENODEV if there is no such link in this namespace.
        AccessDenied: no CAP_NET_ADMIN over this namespace (EPERM).
    """
    _set_up(name, True, "set_link_up")


def set_link_down(name: str) -> None:
    """Clear IFF_UP on link *name* in the calling thread's network namespace.

    Uses ioctl SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET datagram socket (any
    Linux; per-namespace since 2.6.24), or RTM_SETLINK without IPv4.

    Args:
        name: interface name.

    Raises:
        TypeError, ValueError: *name* is not a valid interface name.
        OSError: ENODEV if there is no such link in this namespace.
        AccessDenied: no CAP_NET_ADMIN over this namespace (EPERM).
    """
    _set_up(name, False, "set_link_down")


def create_veth(
    name: str,
    peer: str,
    *,
    peer_netns: FdLike | Namespace | str | os.PathLike[str] | _HasPidfd | None = None,
) -> None:
    """Create the veth pair *name* <-> *peer* in the calling thread's network namespace.

    Sends RTM_NEWLINK with IFLA_INFO_KIND "veth" and VETH_INFO_PEER; Linux
    2.6.24. With *peer_netns* the peer end is created directly in that
    namespace (IFLA_NET_NS_FD inside VETH_INFO_PEER; Linux 3.0). Both ends
    start DOWN.

    Args:
        name: name of the end created here.
        peer: name of the other end.
        peer_netns: the peer's network namespace: an ``NsProcess`` (its
            namespace, through PIDFD_GET_NET_NAMESPACE (Linux 6.11) or else
            ``/proc/PID/ns/net`` checked against the pidfd, so a reused pid
            is never followed), a :class:`~nsprim.Namespace` of type net, a
            path to an nsfs file (``/proc/PID/ns/net``, ``/run/netns/NAME``,
            a file made by :meth:`~nsprim.Namespace.persist`), or an open
            nsfs fd (used as is, never closed). None keeps both ends here.
            Whatever nsprim opens for it is closed before this returns.

    Raises:
        TypeError, ValueError: a bad name, *name* == *peer* with both ends in
            this namespace, a bad fd, or a *peer_netns* of another type or
            namespace type (the message names ``peer_netns``).
        NoSuchProcess: *peer_netns* is a process that has exited.
        FileNotFoundError: *peer_netns* is a path that does not exist.
        OSError: EEXIST if a name is taken; EINVAL if *peer_netns* is not a
            network namespace; EOPNOTSUPP if the kernel lacks CONFIG_VETH.
        AccessDenied: no CAP_NET_ADMIN here or over *peer_netns* (EPERM).
    """
    raw = _check_ifname(name, "name")
    raw_peer = _check_ifname(peer, "peer")
    if peer_netns is None and raw == raw_peer:
        raise ValueError(
            f"peer must differ from name when both ends are in one namespace, got {peer!r}"
        )
    if peer_netns is None:
        _create_veth(raw, raw_peer, None, name)
        return
    fd, owned = _netns_fd(peer_netns, "peer_netns")
    try:
        _create_veth(raw, raw_peer, fd, name)
    finally:
        if owned is not None:
            owned.close()


class _HasPidfd(Protocol):
    """A process handle (``NsProcess``): its pid and a pidfd (-1 once reaped)."""

    @property
    def pid(self) -> int: ...

    @property
    def pidfd(self) -> int: ...


def _netns_fd(value: object, param: str) -> tuple[int, OwnedFd | None]:
    """Return (an fd of the network namespace *value* names, the OwnedFd if nsprim opened it)."""
    if isinstance(value, Namespace):
        if value.type is not NsType.NET:
            raise ValueError(f"{param} must be a network namespace, got {value}")
        return _owned(value.open())
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not isinstance(path, str) or not path or "\0" in path:
            raise ValueError(f"{param} must be a non-empty str path, got {path!r}")
        owned = OwnedFd(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        try:
            t = nstype_of(owned.fileno())
        except ValueError:
            owned.close()
            raise ValueError(f"{param}: {path} is not a namespace file") from None
        except BaseException:
            owned.close()
            raise
        if t is not NsType.NET:
            owned.close()
            raise ValueError(f"{param}: {path} is a {t.value} namespace, not a network namespace")
        return _owned(owned)
    if not isinstance(value, (bool, int)) and hasattr(value, "pidfd") and hasattr(value, "pid"):
        return _owned(_process_netns(value, param))
    return fd_of(value, param), None


def _owned(fd: OwnedFd) -> tuple[int, OwnedFd]:
    return fd.fileno(), fd


def _process_netns(proc: Any, param: str) -> OwnedFd:
    pid, pidfd = proc.pid, proc.pidfd
    if not isinstance(pid, int) or not isinstance(pidfd, int):
        raise TypeError(f"{param} must be a process handle with int pid and pidfd, got {proc!r}")
    if pidfd < 0:
        raise NoSuchProcess(pid, f"{param}: process {pid} has exited (and was reaped)")
    try:
        return OwnedFd(_sc.pidfd_get_namespace(pidfd, "net"))
    except UnsupportedError:
        pass
    except ProcessLookupError:
        raise NoSuchProcess(pid, f"{param}: process {pid} has exited") from None
    # Before Linux 6.11: open /proc/PID/ns/net, then make sure the pid still
    # names the same process (a pidfd signal 0 fails with ESRCH once it exited).
    owned = OwnedFd(os.open(_procfs.pid_path(pid, "ns", "net"), os.O_RDONLY | os.O_CLOEXEC))
    try:
        _sc.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        owned.close()
        raise NoSuchProcess(pid, f"{param}: process {pid} has exited") from None
    except BaseException:
        owned.close()
        raise
    return owned


def _create_veth(raw: bytes, raw_peer: bytes, fd: int | None, name: str) -> None:
    peer_attrs = _attr_str(_IFLA_IFNAME, raw_peer)
    if fd is not None:
        peer_attrs += _attr_u32(_IFLA_NET_NS_FD, fd)
    peer_msg = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + peer_attrs
    linkinfo = _attr(_IFLA_INFO_KIND, b"veth") + _attr(
        _IFLA_INFO_DATA | _NLA_F_NESTED, _attr(_VETH_INFO_PEER | _NLA_F_NESTED, peer_msg)
    )
    body = (
        _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        + _attr_str(_IFLA_IFNAME, raw)
        + _attr(_IFLA_LINKINFO | _NLA_F_NESTED, linkinfo)
    )
    with _Rtnl() as rtnl:
        rtnl.request(
            _RTM_NEWLINK,
            body,
            flags=_NLM_F_CREATE | _NLM_F_EXCL,
            operation="create_veth",
            ifname=name,
        )


def move_link(name: str, *, netns_fd: FdLike | None = None, netns_pid: int | None = None) -> None:
    """Move link *name* from the calling thread's network namespace into another.

    Sends RTM_SETLINK with IFLA_NET_NS_FD (Linux 3.0) or IFLA_NET_NS_PID
    (Linux 2.6.24). The link keeps its name and goes DOWN; its addresses are
    dropped. Give exactly one of *netns_fd* and *netns_pid*.

    Args:
        name: interface name.
        netns_fd: an open ``/proc/PID/ns/net`` (or nsfs) fd of the target.
        netns_pid: a process whose network namespace is the target.

    Raises:
        TypeError, ValueError: a bad name, a bad fd or pid, or not exactly one target.
        OSError: ENODEV if there is no such link here; EEXIST if the name is
            taken there; EINVAL for a device that can't move (``lo``) or an fd
            that is not a network namespace; ESRCH for an unknown pid.
        AccessDenied: no CAP_NET_ADMIN here or over the target (EPERM).
    """
    raw = _check_ifname(name)
    if (netns_fd is None) == (netns_pid is None):
        raise ValueError(
            f"give exactly one of netns_fd and netns_pid, got netns_fd={netns_fd!r}, "
            f"netns_pid={netns_pid!r}"
        )
    if netns_fd is not None:
        target = _attr_u32(_IFLA_NET_NS_FD, fd_of(netns_fd, "netns_fd"))
    else:
        target = _attr_u32(_IFLA_NET_NS_PID, _check_pid(netns_pid, "netns_pid"))
    with _Rtnl() as rtnl:
        index = rtnl.link(raw, name, "move_link").index
        rtnl.change_link(index, target, operation="move_link", ifname=name)


def delete_link(name: str) -> None:
    """Delete link *name* from the calling thread's network namespace.

    Sends RTM_DELLINK; Linux 2.6.23 (rtnl_link_ops). Deleting one end of a
    veth pair deletes the other end too, wherever it lives.

    Args:
        name: interface name.

    Raises:
        TypeError, ValueError: *name* is not a valid interface name.
        OSError: ENODEV if there is no such link here; EOPNOTSUPP for a
            device that can't be deleted (``lo``).
        AccessDenied: no CAP_NET_ADMIN over this namespace (EPERM).
    """
    raw = _check_ifname(name)
    with _Rtnl() as rtnl:
        index = rtnl.link(raw, name, "delete_link").index
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
        rtnl.request(_RTM_DELLINK, body, operation="delete_link", ifname=name)


# --- addresses --------------------------------------------------------------


def add_address(name: str, cidr: str | _Interface) -> None:
    """Add address *cidr* to link *name* in the calling thread's network namespace.

    Sends RTM_NEWADDR with IFA_LOCAL and IFA_ADDRESS; Linux 2.2. IPv6
    addresses get IFA_F_NODAD (Linux 2.6.19; IFA_FLAGS 3.14) so they are
    usable as soon as the link is up, without duplicate address detection.

    Args:
        name: interface name.
        cidr: ``"198.51.100.1/24"``, ``"2001:db8::1/64"`` or an
            ``ipaddress.IPv4Interface``/``IPv6Interface``.

    Raises:
        TypeError, ValueError: a bad name, or *cidr* is malformed or its prefix
            length is out of range.
        OSError: ENODEV if there is no such link here; EEXIST if the address
            is already there; EACCES is not used, but IPv6 disabled on the link
            (``disable_ipv6``) gives EACCES on some kernels.
        AccessDenied: no CAP_NET_ADMIN over this namespace (EPERM).
    """
    raw = _check_ifname(name)
    iface = _check_cidr(cidr)
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    ifa_flags = _IFA_F_NODAD if family == socket.AF_INET6 else 0
    packed = iface.ip.packed
    attrs = _attr(_IFA_LOCAL, packed) + _attr(_IFA_ADDRESS, packed)
    if ifa_flags:
        attrs += _attr_u32(_IFA_FLAGS, ifa_flags)
    with _Rtnl() as rtnl:
        index = rtnl.link(raw, name, "add_address").index
        body = _IFADDRMSG.pack(family, iface.network.prefixlen, ifa_flags, 0, index) + attrs
        rtnl.request(
            _RTM_NEWADDR,
            body,
            flags=_NLM_F_CREATE | _NLM_F_EXCL,
            operation="add_address",
            ifname=name,
        )


def _parse_address(body: bytes, names: dict[int, str]) -> Address | None:
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(body)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    attrs = _parse_attrs(body, _IFADDRMSG.size)
    packed = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
    if packed is None:
        return None
    if len(attrs.get(_IFA_FLAGS, b"")) == 4:
        flags = _U32.unpack(attrs[_IFA_FLAGS])[0]
    ip = ipaddress.ip_address(packed)
    return Address(
        index=index,
        name=names.get(index, ""),
        interface=ipaddress.ip_interface(f"{ip}/{prefixlen}"),
        scope=scope,
        flags=flags,
    )


def addresses(name: str | None = None) -> list[Address]:
    """List the IPv4 and IPv6 addresses in the calling thread's network namespace.

    Uses RTM_GETLINK and RTM_GETADDR dumps; Linux 2.2 (per-namespace 2.6.24).

    Args:
        name: only the addresses of this link; None for all links.

    Returns:
        One :class:`Address` per address, sorted by ifindex (kernel order within a link).

    Raises:
        TypeError, ValueError: *name* is not a valid interface name.
        OSError: ENODEV if *name* is given and there is no such link here.
    """
    raw = None if name is None else _check_ifname(name)
    with _Rtnl() as rtnl:
        only = None if raw is None else rtnl.link(raw, str(name), "addresses").index
        link_replies = rtnl.dump(
            _RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), operation="addresses"
        )
        addr_replies = rtnl.dump(
            _RTM_GETADDR, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0), operation="addresses"
        )
    names = {}
    for kind, body in link_replies:
        if kind == _RTM_NEWLINK:
            link = _parse_link(body)
            names[link.index] = link.name
    found = []
    for kind, body in addr_replies:
        if kind != _RTM_NEWADDR:
            continue
        addr = _parse_address(body, names)
        if addr is not None and (only is None or addr.index == only):
            found.append(addr)
    return sorted(found, key=lambda a: a.index)


# --- link events --------------------------------------------------------------

_PRIVATE = object()


@final
class LinkMonitor:
    """RTMGRP_LINK notifications of one network namespace.

    Built only by :func:`link_monitor`. Its socket belongs to the namespace
    the creating thread was in, and keeps it; use it as a context manager or
    call :meth:`close`.
    """

    def __init__(self, _token: object, sock: socket.socket) -> None:
        if _token is not _PRIVATE:
            raise TypeError("LinkMonitor has no public constructor; use nsprim.net.link_monitor()")
        self._sock: socket.socket | None = sock

    def __enter__(self) -> LinkMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else f"fd={self._sock.fileno()}"
        return f"<LinkMonitor {state}>"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._sock is None

    def fileno(self) -> int:
        """Return the netlink socket's fd, for select/poll.

        Raises:
            ValueError: the monitor is closed.
        """
        return self._live().fileno()

    def close(self) -> None:
        """Close the socket; calling it again does nothing."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _live(self) -> socket.socket:
        if self._sock is None:
            raise ValueError("I/O operation on a closed LinkMonitor")
        return self._sock

    def events(self, timeout: float = 1.0) -> list[LinkEvent]:
        """Wait up to *timeout* seconds for link notifications and return them.

        Reads RTM_NEWLINK/RTM_DELLINK messages from the RTMGRP_LINK group.
        Returns as soon as something arrived, after draining whatever else is
        already queued; an empty list means nothing happened within *timeout*.

        Args:
            timeout: seconds to wait for the first notification (0 polls).

        Returns:
            The events in arrival order.

        Raises:
            TypeError, ValueError: *timeout* is not a non-negative number.
            ValueError: the monitor is closed.
            OSError: ENOBUFS if the kernel dropped notifications because the
                socket buffer overflowed (call again to go on reading).
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(
                f"timeout must be a number of seconds, got {type(timeout).__name__}: {timeout!r}"
            )
        if not timeout >= 0:  # also rejects NaN
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
        sock = self._live()
        out: list[LinkEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if out:
                sock.settimeout(0.0)  # drain what is queued, don't wait for more
            elif remaining > 0:
                sock.settimeout(remaining)
            else:
                sock.settimeout(0.0)
            try:
                data = sock.recv(_RECV_SIZE)
            except (BlockingIOError, socket.timeout):
                return out
            for kind, _flags, _seq, body in _iter_messages(data):
                if kind in (_RTM_NEWLINK, _RTM_DELLINK) and len(body) >= _IFINFOMSG.size:
                    action: Literal["new", "del"] = "new" if kind == _RTM_NEWLINK else "del"
                    out.append(LinkEvent(action, _parse_link(body)))


def link_monitor() -> LinkMonitor:
    """Open a listener for link notifications in the calling thread's network namespace.

    A NETLINK_ROUTE socket bound to the RTMGRP_LINK multicast group; Linux
    2.2, scoped to the namespace since 2.6.24: links created, changed or
    deleted in other namespaces are not reported (NET-07).

    Returns:
        A :class:`LinkMonitor`; use it as a context manager.

    Raises:
        OSError: the socket could not be opened or bound.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_ROUTE)
    try:
        sock.bind((0, _RTMGRP_LINK))
    except BaseException:
        sock.close()
        raise
    return LinkMonitor(_PRIVATE, sock)
