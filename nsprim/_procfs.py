"""Every /proc read nsprim makes, with the race handling a live /proc needs.

Layer 1: standard library and :mod:`nsprim.errors` only. A process can exit
between listing /proc and reading its files; like psutil's ``_pslinux`` this
module turns that into :class:`~nsprim.NoSuchProcess` (the caller decides
whether to skip it) and EACCES/EPERM into :class:`~nsprim.AccessDenied`,
through the one translator, :func:`nsprim.errors.wrap_exceptions`.
"""

from __future__ import annotations

import os

from .errors import wrap_exceptions

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

#: Why a /proc read of another process is refused (proc(5), "ptrace access mode").
_PTRACE = "needs ptrace access (PTRACE_MODE_READ) to the process"

__all__ = [
    "PROC",
    "pid_path",
    "read_text",
    "read_bytes",
    "readlink",
    "stat",
    "pids",
    "tids",
    "status_field",
    "self_pid",
]

PROC = "/proc"


def pid_path(pid: Optional[int], *parts: str) -> str:
    """Return ``/proc/<pid>/<parts...>``; *pid* None means ``self``."""
    head = "self" if pid is None else str(pid)
    return os.path.join(PROC, head, *parts)


def self_pid() -> int:
    """Return this process's pid as the mounted /proc numbers it.

    Differs from ``os.getpid()`` in a child pid namespace that still sees its
    parent's /proc: paths must use the /proc numbering.
    """
    return int(os.readlink(os.path.join(PROC, "self")))


@wrap_exceptions(lambda path, pid=None: (f"read {path}", pid), _PTRACE)
def read_bytes(path: str, pid: Optional[int] = None) -> bytes:
    """Read a whole /proc file (one read loop, no buffering surprises)."""
    with open(path, "rb", buffering=0) as f:
        chunks = []
        while True:
            b = f.read(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def read_text(path: str, pid: Optional[int] = None) -> str:
    """Read a /proc file as text (surrogateescape: /proc holds raw bytes)."""
    return read_bytes(path, pid).decode("utf-8", "surrogateescape")


@wrap_exceptions(lambda path, pid=None: (f"readlink {path}", pid), _PTRACE)
def readlink(path: str, pid: Optional[int] = None) -> str:
    """readlink(2) on a /proc link."""
    return os.readlink(path)


@wrap_exceptions(lambda path, pid=None: (f"stat {path}", pid), _PTRACE)
def stat(path: str, pid: Optional[int] = None) -> os.stat_result:
    """stat(2) following the link (nsfs files resolve to the namespace inode)."""
    return os.stat(path)


def pids() -> list[int]:
    """Return the pids visible in this /proc, ascending."""
    return sorted(int(n) for n in os.listdir(PROC) if n.isdigit())


def tids(pid: int) -> list[int]:
    """Return the thread ids of *pid* ([] if it vanished)."""
    try:
        return sorted(int(n) for n in os.listdir(pid_path(pid, "task")) if n.isdigit())
    except OSError:
        return []


def status_field(pid: Optional[int], field: str) -> Optional[str]:
    """Return one field of ``/proc/<pid>/status`` (None if absent)."""
    for line in read_text(pid_path(pid, "status"), pid).splitlines():
        key, _, value = line.partition(":")
        if key == field:
            return value.strip()
    return None
