"""The ledger of launches: fds in flight and dropped children, owned by one object.

Layer 2, private: standard library, :mod:`nsprim.syscalls` and :mod:`nsprim._fd`.

Two things every launch in a process shares. The fds of launches in flight
and of open :class:`~nsprim.NsProcess` pipes: a child started meanwhile
from another thread closes them at once, so it never holds another spawn's
channel or pipe open (the classic concurrent-Popen EOF hang). And the
children whose objects were dropped while they ran: they are reaped later,
as ``subprocess._active`` does, so none stays a zombie.
"""

from __future__ import annotations

import _thread
import os

from . import syscalls as _sc
from ._fd import OwnedFd
from ._stdlib import signal, suppress

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["Ledger", "LEDGER", "kill_reap"]


class Ledger:
    """In-flight fds and orphaned children of this process's launches."""

    def __init__(self) -> None:
        self._fds: set[int] = set()
        self._orphans: list[tuple[int, Optional[OwnedFd]]] = []
        self._lock = _thread.allocate_lock()

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's launches are not ours (their fds are closed or
        inherited, their numbers free for reuse; their children are not our children)."""
        self._fds = set()
        self._orphans = []
        self._lock = _thread.allocate_lock()

    def track(self, *fds: int) -> None:
        """Record *fds* as in flight (other children close them at once)."""
        self._fds.update(fds)

    def forget(self, fd: int) -> None:
        """Stop tracking *fd* (its owner closes it)."""
        self._fds.discard(fd)

    def close(self, fd: int) -> None:
        """Stop tracking *fd* and close it."""
        self._fds.discard(fd)
        with suppress(OSError):
            os.close(fd)

    def foreign(self, own: set[int]) -> tuple[int, ...]:
        """The fds in flight that are not in *own* (a snapshot: other threads change the set)."""
        return tuple(fd for fd in tuple(self._fds) if fd not in own)

    def orphan(self, pid: int, pidfd: Optional[OwnedFd]) -> None:
        """Take over a child whose object was dropped while it ran; reap what has exited."""
        with self._lock:
            self._orphans.append((pid, pidfd))
        self.reap_orphans()

    def reap_orphans(self) -> None:
        """Reap the orphans that have exited (never blocks)."""
        with self._lock:
            keep = []
            for pid, pidfd in self._orphans:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    if pidfd is not None:
                        pidfd.close()
                else:
                    keep.append((pid, pidfd))
            self._orphans[:] = keep


def kill_reap(pid: int, pidfd: Optional[OwnedFd]) -> Optional[int]:
    """SIGKILL and reap a child; return its wait status (None if someone else reaped it)."""
    with suppress(OSError):
        if pidfd is not None and not pidfd.closed:
            _sc.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    status: Optional[int] = None
    with suppress(ChildProcessError):
        status = os.waitpid(pid, 0)[1]
    if pidfd is not None:
        pidfd.close()
    return status


#: The process's ledger.
LEDGER = Ledger()
os.register_at_fork(after_in_child=LEDGER.reset_after_fork)
