"""Calls: run a Python callable in a launched child and bring its outcome back.

Layer 2, private: standard library and nsprim layers 0-2. The one core under
:func:`nsprim.call`, :func:`nsprim.call_start` and :func:`nsprim.call_in`
(layer 3, :mod:`nsprim.process`) and the throwaway children of the probes
(:mod:`nsprim.compat`, layer 2, which can't import the process API): the
child is started by :func:`nsprim._launch.launch`, runs the callable with
:func:`nsprim._child.run_call` and sends :func:`pack`'s pickled outcome; the
parent reads it and :func:`finish` reaps the child.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
import traceback

from . import _child
from . import syscalls as _sc
from ._frames import OUTCOME, STARTED, poll_ms
from ._launch import Launch, launch
from ._ledger import kill_reap
from ._options import NsOptions
from .errors import CallError, TimeoutExpired, add_note

# typing.TYPE_CHECKING without importing typing (see nsprim/_fd.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Callable, NoReturn, Optional

__all__ = ["pack", "unpack", "call_error", "finish", "start", "outcome", "run"]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def pack(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> bytes:
    """Run *fn* (in the child) and pickle its outcome; never raises."""
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:
        tb = traceback.format_exc()
        try:
            return pickle.dumps(("raise", exc, tb))
        except Exception as perr:
            return pickle.dumps(
                ("lost", _qualname(type(exc)), f"{type(exc).__name__}: {exc}", tb,
                 f"the exception could not be pickled ({type(perr).__name__}: {perr})")
            )  # fmt: skip
    try:
        return pickle.dumps(("return", value))
    except Exception as perr:
        return pickle.dumps(
            ("lost", _qualname(type(value)), "", "",
             f"the result could not be pickled ({type(perr).__name__}: {perr})")
        )  # fmt: skip


def unpack(payload: bytes, pid: int) -> Any:
    """Return what the callable in child *pid* returned, or raise what it raised."""
    try:
        outcome = pickle.loads(payload)
    except Exception as err:
        raise CallError(
            f"the child's outcome could not be unpickled here: {type(err).__name__}: {err}"
        ) from None
    kind = outcome[0]
    if kind == "return":
        return outcome[1]
    if kind == "raise":
        exc, tb = outcome[1], outcome[2]
        if not isinstance(exc, Exception):
            # SystemExit, KeyboardInterrupt ... belong to the child, not to us.
            raise CallError(
                f"the callable raised {type(exc).__name__}: {exc}",
                type_name=_qualname(type(exc)),
                child_traceback=tb,
            )
        add_note(exc, f"in child {pid}; its traceback:\n{tb.rstrip()}")
        with contextlib.suppress(AttributeError, TypeError):
            exc.child_traceback = tb  # type: ignore[attr-defined]
        raise exc
    _, type_name, text, tb, why = outcome
    raise CallError(
        f"{why}" + (f"; the child raised {text}" if text else f"; result type {type_name}"),
        type_name=type_name,
        child_traceback=tb,
    )


def call_error(payload: Optional[bytes], pid: int, status: Optional[int]) -> CallError:
    """The CallError of a child that ended (wait *status*) before it sent an outcome."""
    rc = os.waitstatus_to_exitcode(status) if status is not None else None
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        err = CallError(f"child {pid} was killed by {signal.Signals(sig).name} before it returned")
    else:
        err = CallError(f"child {pid} exited (status {rc}) before it returned")
    err.returncode = rc
    return err


def finish(launch: Launch, payload: Optional[bytes], deadline: Optional[float]) -> Any:
    """Reap the call child (killing it past the deadline); return ("return"|"raise", value)."""
    launch.close_chan()
    status: Optional[int] = None
    try:
        p = select.poll()
        p.register(launch.pidfd.fileno(), select.POLLIN)
        # A second past the deadline (5 s without one) for the child to exit
        # after it sent its outcome; then it is killed.
        grace = (
            time.monotonic() + 5.0 if deadline is None else max(deadline, time.monotonic()) + 1.0
        )
        if not p.poll(poll_ms(grace)):
            with contextlib.suppress(OSError):
                _sc.pidfd_send_signal(launch.pidfd, signal.SIGKILL)
        try:
            _, status = os.waitpid(launch.pid, 0)
        except ChildProcessError:
            status = None
    except BaseException:
        # Interrupted (^C) while waiting: the child must not outlive the call.
        # Left unreaped inside a pid namespace, it would also keep that
        # namespace's init from ever finishing its exit (zap_pid_ns_processes).
        kill_reap(launch.pid, launch.pidfd)
        raise
    launch.pidfd.close()
    if payload is None:
        return ("raise", call_error(None, launch.pid, status))
    try:
        return ("return", unpack(payload, launch.pid))
    except Exception as exc:
        return ("raise", exc)


def start(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    setup: Optional[NsOptions],
    deadline: Optional[float],
    **child: Any,
) -> Launch:
    """Launch a child that runs ``fn(*args, **kwargs)``; return once *fn* runs.

    *child* holds the other options of :func:`nsprim._launch.launch` (join,
    own, pdeathsig, set_tid, subreaper, unshare_late), validated by the caller.
    """

    def body(plan: _child.Plan) -> NoReturn:
        _child.run_call(plan, fn, args, kwargs, pack)

    launched, _ = launch(body, setup=setup, until=STARTED, deadline=deadline, **child)
    return launched


def outcome(child: Launch, deadline: Optional[float]) -> tuple[bool, Optional[bytes]]:
    """Read frames until the outcome or the channel's end: ``(True, payload or None)``.

    ``(False, None)`` when *deadline* passed first (the child is left running).
    """
    while True:
        try:
            frame = child.chan.next(child.pidfd.fileno(), deadline)
        except TimeoutError:
            return False, None
        if frame is None:
            return True, None
        if frame[0] == OUTCOME:
            return True, frame[1]


def run(fn: Callable[[], Any], timeout: float, pdeathsig: int = 0) -> Any:
    """Run ``fn()`` in a throwaway child with no new namespaces and return its result.

    For the layer-2 callers that can't use :func:`nsprim.call` (the probes).
    The child is always reaped; what *fn* raised is raised here.

    Raises:
        TimeoutExpired: no outcome within *timeout* seconds (the child is killed).
        CallError: the child died first (``returncode``), or the outcome didn't pickle.
        OSError: the fork itself failed.
    """
    deadline = time.monotonic() + timeout
    child = start(fn, (), {}, None, deadline, pdeathsig=pdeathsig)
    try:
        done, payload = outcome(child, deadline)
        if not done:
            raise TimeoutExpired(timeout, child.pid, msg=f"call timed out after {timeout} seconds")
    except BaseException:
        child.close_chan()
        kill_reap(child.pid, child.pidfd)
        raise
    kind, value = finish(child, payload, deadline)
    if kind == "raise":
        raise value
    return value
