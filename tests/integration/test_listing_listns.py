"""listing.scan() with listns(2) (Linux 6.19) and without it (the /proc scan alone).

The namespace nothing under /proc reaches: a network namespace bind-mounted
inside a mount namespace that no process is in, only an fd holds (lxkns calls
such namespaces hidden). The /proc scan finds the mount namespace (by the fd)
but reads mount tables only of mount namespaces processes are in; listns(2)
names the network namespace, and nsprim opens it by id. (A namespace only a
socket holds is no such case: a socket's reference is not an active one, and
listns does not list it; ``sockets=True`` finds it.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from nsprim import listing

pytestmark = pytest.mark.needs_root

RELEASE = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])

HOLDER = textwrap.dedent(
    """
    import os, time
    import nsprim.syscalls as sc
    NEWNS, NEWNET, REC_PRIVATE = 0x00020000, 0x40000000, (1 << 14) | (1 << 18)
    host_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    host_net = os.open("/proc/self/ns/net", os.O_RDONLY)
    sc.unshare(NEWNS)                         # a mount namespace of this test only
    sc.mount(None, "/", None, REC_PRIVATE)
    sc.mount("tmpfs", "/mnt", "tmpfs", 0)
    open("/mnt/net", "w").close()
    sc.unshare(NEWNET)
    ino = os.stat("/proc/self/ns/net").st_ino
    sc.mount("/proc/self/ns/net", "/mnt/net", None, 1 << 12)  # MS_BIND
    sc.setns(host_net, NEWNET)
    hidden = os.open("/proc/self/ns/mnt", os.O_RDONLY)  # only this fd keeps it
    sc.setns(host_mnt, NEWNS)
    print(ino, flush=True)
    time.sleep(60)
    """
)


def test_a_namespace_only_a_hidden_bind_mount_holds() -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None
            ino = int(p.stdout.readline())
            found = {n.ino: n for n in listing.scan(sockets=True).namespaces}
            if RELEASE >= (6, 19):
                n = found[ino]
                assert (n.type.value, n.held, n.nprocs) == ("net", (listing.Held.LISTNS,), 0)
                assert n.ns_id is not None and n.owner is not None  # walked as the others
            else:  # listns is ENOSYS: the /proc scan alone can't see it
                assert ino not in found
        finally:
            p.kill()


def test_the_listing_says_where_it_looked() -> None:
    assert listing.scan().sources == (("proc", "listns") if RELEASE >= (6, 19) else ("proc",))
    assert listing.scan(ioctls=False).sources == ("proc",)  # listns is one of the ioctls' calls
