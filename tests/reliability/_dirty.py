"""Code that runs *inside* the namespaces under test and creates everything that could leak.

Each function makes one of every kind of object the host guard watches — a
hostname, a SysV message queue and shared memory segment, a POSIX message
queue, a tmpfs mount, a veth pair with an address from 198.51.100.0/24 — so
that a namespace that failed to isolate would show up on the host afterwards.
"""

from __future__ import annotations

import ctypes
import os
import socket
import time

import nsprim.net as net

__all__ = ["dirty", "dirty_then_sleep", "SHELL_DIRTY", "SHELL_DIRTY_PID"]

IPC_CREAT = 0o1000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.msgget.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.msgget.restype = ctypes.c_int
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmget.restype = ctypes.c_int
_libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
_libc.mq_open.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.mount.restype = ctypes.c_int


def _ok(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def dirty(marker: str) -> str:
    """Create one of each watched object in the caller's namespaces; return the new hostname."""
    name = f"rel-{marker}"
    socket.sethostname(name)
    key = int(marker[-8:]) & 0x7FFFFFFF
    _ok(_libc.msgget(key, IPC_CREAT | 0o600), "msgget")
    _ok(_libc.shmget(key, 4096, IPC_CREAT | 0o600), "shmget")
    os.close(
        _ok(_libc.mq_open(f"/rel{marker}".encode(), os.O_CREAT | os.O_RDWR, 0o600, None), "mq_open")
    )
    _ok(_libc.mount(b"none", b"/mnt", b"tmpfs", 0, None), "mount tmpfs")
    net.create_veth("rel0", "rel1")
    net.add_address("rel0", "198.51.100.1/24")
    net.set_link_up("rel0")
    return name


def dirty_then_sleep(marker: str, seconds: float) -> str:
    """:func:`dirty`, then sleep (so an interruption finds a running child full of objects)."""
    name = dirty(marker)
    time.sleep(seconds)
    return name


_SHELL_DIRTY = (
    'hostname "$0"; ipcmk -Q >/dev/null; ipcmk -M 4096 >/dev/null; '
    "mount -t tmpfs none /mnt; "
    "ip link add rel0 type veth peer name rel1 && ip addr add 198.51.100.1/24 dev rel0; "
)

#: The same for a shell (``sh -c SCRIPT rel-MARKER SECONDS``; $0 carries the
#: marker). With a pid namespace the shell is its init and leaves two
#: grandchildren running: init's death must take them along.
SHELL_DIRTY_PID = 'trap "exit 130" INT TERM; ' + _SHELL_DIRTY + 'sleep "$1" & sleep "$1" & wait'
#: Without a pid namespace only the command itself is covered (PR_SET_PDEATHSIG,
#: like ``unshare --kill-child``): the shell execs the sleeper, no grandchildren.
SHELL_DIRTY = _SHELL_DIRTY + 'exec sleep "$1"'
