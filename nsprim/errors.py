"""The whole nsprim exception hierarchy.

Layer: bottom. This module imports nothing from nsprim, so every other module
(the raw ctypes layer included) may import it.

Design (see STYLE.md section 2): domain errors refine the builtin ones, so
code that catches ``PermissionError`` or ``ProcessLookupError`` keeps working
(the attrs ``FrozenError(AttributeError)`` pattern); every class pickles
(psutil's ``__reduce__``), because errors cross process boundaries in
:func:`nsprim.call`.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any, Optional

__all__ = [
    "NsprimError",
    "UnsupportedError",
    "NoSuchProcess",
    "AccessDenied",
    "TimeoutExpired",
    "CallError",
    "ThreadScopeError",
]


class NsprimError(Exception):
    """Base class of every error that nsprim defines itself."""

    def __init__(self, msg: str = "") -> None:
        super().__init__(msg)
        self.msg = msg

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from keyword attributes so subclasses with extra fields
        # survive pickling (psutil._common.Error.__reduce__).
        state = dict(self.__dict__)
        if isinstance(self, OSError):
            # errno/strerror/filename live in OSError's C slots, not __dict__.
            state["__oserror__"] = (self.errno, self.strerror, self.filename)
        return (_rebuild, (type(self), state))


def _rebuild(cls: type[NsprimError], state: dict[str, Any]) -> NsprimError:
    obj = cls.__new__(cls)
    Exception.__init__(obj, state.get("msg", ""))
    slots = state.pop("__oserror__", None)
    obj.__dict__.update(state)
    if slots is not None and isinstance(obj, OSError):
        obj.errno, obj.strerror, obj.filename = slots
    return obj


class UnsupportedError(NsprimError):
    """The kernel, architecture or C library lacks a feature (ENOSYS and the like).

    Attributes:
        feature: what was asked for, e.g. ``"clone3"``.
        requires: what would provide it, e.g. ``"Linux 5.3"``.
    """

    def __init__(self, feature: str, requires: str = "", msg: str = "") -> None:
        if not msg:
            msg = f"{feature} is not supported here"
            if requires:
                msg += f" (needs {requires})"
        super().__init__(msg)
        self.feature = feature
        self.requires = requires


class NoSuchProcess(NsprimError, ProcessLookupError):
    """The target process is gone (ESRCH, or its /proc entry vanished).

    Attributes:
        pid: the process id that was asked for.
    """

    def __init__(self, pid: int, msg: str = "") -> None:
        if not msg:
            msg = f"process {pid} does not exist (or exited)"
        NsprimError.__init__(self, msg)
        self.pid = pid
        self.errno = _errno.ESRCH
        self.strerror = os.strerror(_errno.ESRCH)

    def __str__(self) -> str:
        return self.msg


class AccessDenied(NsprimError, PermissionError):
    """The kernel refused an operation for lack of privilege (EPERM/EACCES).

    Attributes:
        pid: the process involved, if any.
        operation: the call that was refused, e.g. ``"setns"``.
        hint: what privilege would be needed.
    """

    def __init__(
        self,
        operation: str,
        pid: Optional[int] = None,
        hint: str = "",
        msg: str = "",
        err: int = _errno.EPERM,
    ) -> None:
        if not msg:
            msg = f"{operation}: permission denied"
            if pid is not None:
                msg += f" (pid={pid})"
            if hint:
                msg += f"; {hint}"
        NsprimError.__init__(self, msg)
        self.operation = operation
        self.pid = pid
        self.hint = hint
        self.errno = err
        self.strerror = os.strerror(err)

    def __str__(self) -> str:
        return self.msg


class TimeoutExpired(NsprimError, TimeoutError):
    """A wait ran out of time.

    Attributes:
        seconds: the timeout that expired.
        pid: the process waited for.
    """

    def __init__(self, seconds: float, pid: Optional[int] = None, msg: str = "") -> None:
        if not msg:
            msg = f"timed out after {seconds} seconds"
            if pid is not None:
                msg += f" waiting for pid {pid}"
        NsprimError.__init__(self, msg)
        self.seconds = seconds
        self.pid = pid

    def __str__(self) -> str:
        return self.msg


class ThreadScopeError(NsprimError, ValueError):
    """The kernel won't do this to one thread of a process; do it in a fresh child.

    Raised by :func:`nsprim.enter` for user, mnt and time namespaces (setns(2)
    refuses them in a multithreaded process) and pid (it applies to children
    only). :func:`nsprim.call_in` runs code in a single-threaded child there.
    A ``ValueError`` too, because it is about the arguments, checked first.
    """


class CallError(NsprimError):
    """A callable run by :func:`nsprim.call` failed in a way the parent cannot rebuild.

    Raised when the child's exception (or its return value) cannot be pickled,
    or when the child died before it could report.

    Attributes:
        type_name: qualified name of the child's exception type ("" if none).
        child_traceback: the child's formatted traceback text ("" if none).
        returncode: how the child ended when it died before reporting: its
            exit code, or the negative signal number (as ``Popen``); None
            when it did report.
    """

    def __init__(
        self,
        msg: str,
        type_name: str = "",
        child_traceback: str = "",
        returncode: Optional[int] = None,
    ) -> None:
        super().__init__(msg)
        self.type_name = type_name
        self.child_traceback = child_traceback
        self.returncode = returncode


for _cls in (
    NsprimError,
    UnsupportedError,
    NoSuchProcess,
    AccessDenied,
    TimeoutExpired,
    CallError,
    ThreadScopeError,
):
    _cls.__module__ = "nsprim"
del _cls
