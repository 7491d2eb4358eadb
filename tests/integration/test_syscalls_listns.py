"""listns(2) (Linux 6.19): the ids it returns, or UnsupportedError naming 6.19 before it."""

from __future__ import annotations

import os

import pytest

import nsprim.syscalls as sc
from nsprim.errors import UnsupportedError

RELEASE = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"nstype": 1}, ValueError),  # not a CLONE_NEW* bit
        ({"nstype": "net"}, TypeError),
        ({"user_ns_id": -1}, ValueError),
        ({"after": 1 << 64}, ValueError),
    ],
)
def test_listns_validates_before_the_call(kwargs: dict[str, object], exc: type) -> None:
    with pytest.raises(exc):
        sc.listns(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(RELEASE >= (6, 19), reason="listns exists from Linux 6.19")
def test_listns_names_the_kernel_it_needs() -> None:
    with pytest.raises(UnsupportedError) as info:
        sc.listns()
    assert info.value.requires == "Linux 6.19" and "6.19" in str(info.value)


@pytest.mark.skipif(RELEASE < (6, 19), reason="listns arrived in Linux 6.19")
def test_listns_finds_our_own_namespaces() -> None:
    ids = sc.listns()
    assert len(ids) == len(set(ids)), "each namespace once"
    fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert sc.ns_get_id(fd) in ids
        assert sc.ns_get_id(fd) in sc.listns(
            os.CLONE_NEWNET if hasattr(os, "CLONE_NEWNET") else 0x40000000
        )
    finally:
        os.close(fd)
    assert sc.listns(after=ids[-1]) == []


def test_open_ns_by_id_with_type_and_inode() -> None:
    # nsfs file handles: Linux 6.18 wants the type and inode with the id; 6.19 the id alone
    fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        nid, st = sc.ns_get_id(fd), os.fstat(fd)
        other = sc.open_ns_by_id(nid, 0x40000000, st.st_ino)  # CLONE_NEWNET
        try:
            assert (os.fstat(other).st_dev, os.fstat(other).st_ino) == (st.st_dev, st.st_ino)
        finally:
            os.close(other)
        if RELEASE >= (6, 19):
            other = sc.open_ns_by_id(nid)
            assert os.fstat(other).st_ino == st.st_ino
            os.close(other)
        with pytest.raises(OSError) as info:  # the right id, another type: no such namespace
            sc.open_ns_by_id(nid, 0x04000000, st.st_ino)  # CLONE_NEWUTS
        assert info.value.errno == 116  # ESTALE
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("args", "exc"),
    [((0,), ValueError), ((1 << 64,), ValueError), ((1, 0x3), ValueError),
     ((1, 0x44000000), ValueError), ((1, 0, -1), ValueError), (("1",), TypeError)],
)  # fmt: skip
def test_open_ns_by_id_validates(args: tuple[object, ...], exc: type) -> None:
    with pytest.raises(exc):
        sc.open_ns_by_id(*args)  # type: ignore[arg-type]
