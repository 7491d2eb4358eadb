"""listing.scan() with listns(2) (Linux 6.19) and without it (the /proc scan alone).

A network namespace held only by a socket of a process that left it: no
/proc path names it, so the scan finds it only with sockets=True (pidfd_getfd
+ SIOCGSKNS) or, from Linux 6.19, through listns(2) and an nsfs file handle.
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

_HOLDER = textwrap.dedent(
    """
    import os, socket, time
    import nsprim.syscalls as sc
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    sc.unshare(0x40000000)  # CLONE_NEWNET
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ino = os.stat("/proc/self/ns/net").st_ino
    sc.setns(own, 0x40000000)
    print(ino, flush=True)
    time.sleep(60)
    """
)


def test_a_namespace_only_a_socket_holds() -> None:
    with subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None
            ino = int(p.stdout.readline())
            found = {n.ino: n for n in listing.scan().namespaces if n.type.value == "net"}
            if RELEASE >= (6, 19):
                assert ino in found and found[ino].held == (listing.Held.LISTNS,)
                assert found[ino].ns_id is not None and found[ino].nprocs == 0
            else:  # listns is ENOSYS: the /proc scan can't see it
                assert ino not in found
            with_sockets = {n.ino: n for n in listing.scan(sockets=True).namespaces}
            assert listing.Held.SOCKET in with_sockets[ino].held
            assert listing.Held.LISTNS not in with_sockets[ino].held
        finally:
            p.kill()
