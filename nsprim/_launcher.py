"""The launcher thread: fork-path children are forked by a thread that lives as long as the process.

Layer 2, private: standard library and :mod:`nsprim.syscalls` only.

Why a thread. PR_SET_PDEATHSIG fires when the *thread* that created the
child exits, not the process (prctl(2): "the 'parent' in this case is
considered to be the thread that created this process"). A program spawned
with ``die_with_parent=True`` from a ``threading.Thread``, a
``ThreadPoolExecutor`` worker or ``asyncio.to_thread`` was therefore killed
as soon as that thread ended, while the caller's process went on. Forking
every such child from one daemon thread that lives exactly as long as the
process ties the signal to the process: the launcher thread only ends when
the whole thread group does (exit, any fatal signal, SIGKILL, a crash).
The main thread has that lifetime already, so it forks for itself; only
launches from other threads are handed to the launcher (see :meth:`Launcher.run`).

Alternatives weighed: a supervisor process holding pidfds (dies with the
process through its own pdeathsig and kills the children) would make the
children the supervisor's, not the caller's, which breaks ``waitpid``,
exit statuses and the "a real child, never a proxy" rule; re-parenting the
spawning thread's death onto a subreaper needs a process that is not the
caller. One thread costs one hand-off per launch (a lock released by the
launcher, two GIL switches: tens of microseconds against the ~1 ms fork)
and no new process.

Residual window. The child checks after prctl() that the launcher thread
is still alive (its pidfd), so a parent that dies between clone and prctl
is caught too. What remains: an execve(2) by the calling process ends every
other thread, the launcher included, so programs started with
``die_with_parent`` die when their parent execs (as they die when it exits).
After ``os.fork()`` the child process gets a launcher of its own, created on
its first launch; the programs of the parent stay tied to the parent.
When no thread can be started any more (interpreter shutdown), the launch
runs on the calling thread, as before this module existed.

The threading module is imported only when the launcher thread starts or
a launch must tell the main thread from another (a fork-path launch):
`nsprim run`, whose launches take the posix_spawn path, never loads it.
"""

from __future__ import annotations

import _thread
import collections
import os
import sys

from . import syscalls as _sc
from .flags import _PIDFD_THREAD

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Callable, Optional, TypeVar

    T = TypeVar("T")


__all__ = ["Launcher", "LAUNCHER"]


class _Job:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.result: object = None
        self.error: Optional[BaseException] = None
        self.done = _thread.allocate_lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to the waiting caller
            self.error = exc
        finally:
            self.done.release()


class Launcher:
    """One daemon thread, started on first use, that runs launch jobs in order."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._queue: collections.deque[_Job] = collections.deque()
        self._wake: Optional[threading.Semaphore] = None  # made with the thread
        self._thread: Optional[threading.Thread] = None
        self.tid = 0
        # The thread threading calls the main one: the first to import
        # threading, or, when nsprim came first, the thread that imported
        # this module (as threading would have, imported here).
        self._main_ident = None if "threading" in sys.modules else _thread.get_ident()

    def reset_after_fork(self) -> None:
        """In a forked child: the launcher thread did not come along; start anew."""
        self._lock = _thread.allocate_lock()
        self._queue = collections.deque()
        self._wake = None
        self._thread = None
        self.tid = 0
        if self._main_ident is not None:
            self._main_ident = _thread.get_ident()  # threading's _after_fork does the same

    def _serve(self, started: _thread.LockType, wake: threading.Semaphore) -> None:
        self.tid = _thread.get_native_id()
        started.release()
        while True:
            wake.acquire()
            self._queue.popleft().run()

    def _ensure(self) -> bool:
        """Start the thread if needed; False when no thread can be started."""
        if self._thread is not None:
            return True
        with self._lock:
            if self._thread is not None:
                return True
            import threading

            started = _thread.allocate_lock()
            started.acquire()
            wake = threading.Semaphore(0)
            t = threading.Thread(
                target=self._serve, args=(started, wake), name="nsprim-launcher", daemon=True
            )
            try:
                t.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                return False
            started.acquire()
            self._wake = wake
            self._thread = t
            return True

    def on_launcher(self) -> bool:
        """True when the caller is the launcher thread itself."""
        return self._thread is not None and _thread.get_native_id() == self.tid

    def _on_main_thread(self) -> bool:
        """``threading.current_thread() is threading.main_thread()``."""
        if self._main_ident is not None:
            return _thread.get_ident() == self._main_ident
        import threading

        return threading.current_thread() is threading.main_thread()

    def run(self, fn: Callable[[], T], abandon: Callable[[T], object]) -> T:
        """Run *fn* on a thread that lives as long as the process; return its result.

        That is the calling thread when it is the main thread (CPython's main
        thread runs the finalization and exit(), so it ends with the
        process), else the launcher thread, started on first use. Keeping
        single-threaded callers single-threaded matters: fork(2) of a
        multithreaded process costs more (every other CPU the process ran
        on takes part in the copy-on-write TLB flushes), measured at about
        1.5 ms per fork on a loaded two-core machine.

        The caller waits for *fn* even when interrupted (^C): a fork is
        short and must not be lost. If the wait was interrupted, the result
        goes to *abandon* (kill and reap the child) and the interruption
        is re-raised.
        """
        if self._on_main_thread() or self.on_launcher() or not self._ensure():
            return fn()
        job = _Job(fn)
        self._queue.append(job)
        assert self._wake is not None  # _ensure() made it
        self._wake.release()
        interrupted: Optional[BaseException] = None
        while True:
            try:
                job.done.acquire()
                break
            except BaseException as exc:  # KeyboardInterrupt from a signal handler
                interrupted = interrupted or exc
        if job.error is not None:
            if interrupted is not None:
                raise interrupted from job.error
            raise job.error
        result: T = job.result  # type: ignore[assignment]
        if interrupted is not None:
            abandon(result)
            raise interrupted
        return result

    def pidfd(self) -> int:
        """A pidfd that polls readable once the launcher thread (or this process) is gone.

        Called on the launcher thread before a fork, for the child's
        parent-death race check; -1 when none can be opened.
        """
        try:
            return _sc.pidfd_open(_thread.get_native_id(), _PIDFD_THREAD)
        except (OSError, ValueError):
            pass
        try:
            return _sc.pidfd_open(os.getpid())
        except OSError:
            return -1


#: The process's launcher.
LAUNCHER = Launcher()
os.register_at_fork(after_in_child=LAUNCHER.reset_after_fork)
