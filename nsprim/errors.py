"""The whole nsprim exception hierarchy.

Layer: bottom. This module imports nothing from nsprim, so every other module
(the raw ctypes layer included) may import it.

Design: domain errors refine the builtin ones, so
code that catches ``PermissionError`` or ``ProcessLookupError`` keeps working
(the attrs ``FrozenError(AttributeError)`` pattern); every class pickles
(psutil's ``__reduce__``), because errors cross process boundaries in
:func:`nsprim.call`. The one translation from kernel errors to these
(:func:`translate`, :func:`reraise`, :func:`wrap_exceptions`) lives here too,
at the bottom, so every layer applies the same rules.
"""

from __future__ import annotations

import errno as _errno
import functools
import os

from ._stdlib import suppress

# typing.TYPE_CHECKING without importing typing: this module is imported by
# every command, and typing (with the re it imports) would cost `nsprim run`
# more than its whole spawn.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Optional, TypeVar, Union

    F = TypeVar("F", bound=Callable[..., Any])
    Context = Union[str, Callable[..., "tuple[str, Optional[int]]"]]

__all__ = [
    "NsprimError",
    "UnsupportedError",
    "NoSuchProcess",
    "AccessDenied",
    "TimeoutExpired",
    "CallError",
    "ThreadScopeError",
    "HINTS",
    "translate",
    "reraise",
    "wrap_exceptions",
    "add_note",
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


# --- the one translation from kernel errors to nsprim's -----------------------------------

#: What privilege an operation needs, for AccessDenied hints (keyed by the step or call name).
HINTS = {
    "clone3": "creating namespaces other than 'user' needs CAP_SYS_ADMIN; "
    "add 'user' (map_root=True) to run unprivileged",
    "unshare": "creating namespaces other than 'user' needs CAP_SYS_ADMIN; "
    "add 'user' (map_root=True) to run unprivileged",
    "sethostname": "needs CAP_SYS_ADMIN in the user namespace that owns the new UTS namespace",
    "setdomainname": "needs CAP_SYS_ADMIN in the user namespace that owns the new UTS namespace",
    "mount": "needs CAP_SYS_ADMIN in the user namespace that owns the mount namespace",
    "mount_proc": "mounting proc needs a pid namespace owned by the caller's user namespace "
    "and a /proc that is not partly hidden by other mounts",
    "pivot_root": "needs CAP_SYS_ADMIN over the new mount namespace",
    "set_link_up": "needs CAP_NET_ADMIN over the new network namespace",
    "setns": "needs CAP_SYS_ADMIN in the user namespace that owns the target namespace "
    "(and in the caller's own)",
    "uid_map": "without CAP_SETUID only the caller's own euid can be mapped, in one line",
    "gid_map": "without CAP_SETGID write setgroups='deny' first and map only the caller's egid",
    "timens_offsets": "needs CAP_SYS_TIME over the new time namespace",
    "pidfd_send_signal": "the process belongs to another user",
    "chroot": "needs CAP_SYS_CHROOT",
    "setuid": "needs CAP_SETUID in the joined user namespace",
    "setgid": "needs CAP_SETGID in the joined user namespace",
    "setexeccon": "the LSM policy must allow the switch (SELinux: process setexec permission)",
}


def _process_gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def translate(
    err: OSError,
    operation: str,
    pid: Optional[int] = None,
    hint: str = "",
    msg: str = "",
    filename: Optional[str] = None,
) -> OSError:
    """Return the nsprim error for *err* raised by *operation* (psutil's ``wrap_exceptions``).

    The one rule set, for every layer:

    * an :class:`NsprimError` stays as it is;
    * ESRCH about *pid* is :class:`NoSuchProcess`, and so is ENOENT once
      ``/proc/<pid>`` itself is gone (a missing file of a live process
      stays FileNotFoundError);
    * EPERM and EACCES are :class:`AccessDenied` (a ``PermissionError``)
      naming *operation*, *pid* and the *hint* (default: :data:`HINTS`);
    * anything else keeps its errno class; *filename* fills a missing one.

    Callers raise the result ``from err``.
    """
    if isinstance(err, NsprimError):
        return err
    code = err.errno
    if pid is not None and (code == _errno.ESRCH or (code == _errno.ENOENT and _process_gone(pid))):
        return NoSuchProcess(pid)
    if code in (_errno.EPERM, _errno.EACCES):
        out = AccessDenied(
            operation, pid=pid, hint=hint or HINTS.get(operation, ""), msg=msg, err=code
        )
        out.filename = err.filename if err.filename is not None else filename
        return out
    if err.filename is None and filename is not None:
        new = OSError(code, f"{operation}: {err.strerror}", filename)
        return new
    return err


def reraise(
    err: OSError,
    operation: str,
    pid: Optional[int] = None,
    hint: str = "",
    filename: Optional[str] = None,
) -> NoReturn:
    """Raise :func:`translate`'s answer for *err* (``from err``), or *err* itself if unchanged."""
    new = translate(err, operation, pid, hint, filename=filename)
    if new is err:
        raise err
    raise new from err


def wrap_exceptions(context: Context, hint: str = "") -> Callable[[F], F]:
    """Decorate a function so that an OSError escaping it goes through :func:`translate`.

    *context* is the operation's name (the pid then comes from ``self.pid``
    when the first argument has one, as psutil's methods do), or a callable
    that takes the function's arguments and returns ``(operation, pid)``.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except OSError as err:
                if isinstance(context, str):
                    operation = context
                    pid = getattr(args[0], "pid", None) if args else None
                else:
                    operation, pid = context(*args, **kwargs)
                reraise(err, operation, pid if isinstance(pid, int) else None, hint)

        return inner  # type: ignore[return-value]  # functools.wraps keeps fn's face

    return deco


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (PEP 678), also on Python < 3.11."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
        return
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
    notes.append(note)
    with suppress(AttributeError, TypeError):
        exc.__notes__ = notes  # type: ignore[attr-defined]
