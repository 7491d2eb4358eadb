"""The :class:`Context` a check receives, and its forked helpers (``in_child``, ``spawn_child``).

Layer: conformance, private; re-exported by :mod:`nsprim.conformance.registry`.
Imports the standard library, :mod:`nsprim` (its public API) and the
conformance private modules.

A check already runs in a forked child inside the runner's outer sandbox, and
it may have unshared namespaces itself. The helpers here are children made by
nsprim's own mechanism (:func:`nsprim.call_start`, forked on the calling
thread: no threads are added, as ``unshare(CLONE_NEWUSER)`` refuses
multithreaded callers, user_namespaces(7)), with no new namespaces of their
own and no exec; ``spawn_child`` talks to its helper over a socketpair. Each
helper child is tracked by a pidfd and is always killed and reaped
(kselftest's fork-per-test and ``FIXTURE_TEARDOWN``; psutil's ``reap_children``).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import pickle
import select
import signal
import socket
import struct
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import nsprim

from . import _kernel, _needs
from ._needs import Availability, ns_identity
from .outcome import Fail, Skip

__all__ = [
    "Context",
    "ChildHandle",
    "describe_exception",
    "exception_detail",
    "unshare_verified",
    "setns_verified",
    "ns_identity",
    "POLICY_ERRNOS",
    "wait_status",
]

#: Errnos with which policy (seccomp, LSM, limits, capabilities) refuses an operation.
POLICY_ERRNOS = frozenset({errno.EPERM, errno.EACCES, errno.ENOSPC, errno.EUSERS, errno.ENOSYS})

_HEADER = struct.Struct("!I")


#: Multiplies every check's timeout and the waits inside checks, for slow machines and
#: emulators, as LTP's LTP_TIMEOUT_MUL does; ``nsprim conformance --timeout-mul`` sets it.
TIMEOUT_MUL_ENV = "NSPRIM_TIMEOUT_MUL"


def timeout_mul() -> float:
    """The timeout multiplier from ``$NSPRIM_TIMEOUT_MUL`` (1 when unset or invalid: >= 1 only)."""
    try:
        value = float(os.environ.get(TIMEOUT_MUL_ENV, "1"))
    except ValueError:
        return 1.0
    return value if math.isfinite(value) and value >= 1.0 else 1.0


def describe_exception(exc: BaseException) -> str:
    """Return ``"TypeName: message"`` for an ERROR report (where: :func:`exception_detail`)."""
    return f"{type(exc).__name__}: {exc}"


def exception_detail(exc: BaseException) -> str:
    """Return where *exc* was raised (``"at file.py:42 in func"``), for the JSON's detail field."""
    child_where = getattr(exc, "_nsprim_where", None)
    if child_where:
        return str(child_where)
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        return f"at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    return ""


def unshare_verified(flags: int) -> None:
    """unshare(2) *flags*, then FAIL unless each CLONE_NEW* type in them is a new namespace.

    For use inside helper children that unshare by hand; ``ctx.in_child`` and
    ``ctx.spawn_child`` already do this for their ``unshare=``. The identity
    compared is ``/proc/thread-self/ns/<type>`` (``pid_for_children`` and
    ``time_for_children`` for the types that move only future children).

    Raises:
        Fail: "unshare(CLONE_NEWUTS) returned 0 and the UTS namespace is unchanged".
        OSError: unshare(2) itself failed.
    """
    before = _needs.identities(flags)
    _kernel.unshare(flags)
    try:
        _needs.verify_new(flags, before)
    except _needs.PremiseBroken as err:
        raise Fail(str(err)) from None


def setns_verified(fd: int, nstype: int) -> None:
    """setns(2) to *fd*, then FAIL unless the thread is now in that namespace (by identity).

    *nstype* is one CLONE_NEW* flag.

    Raises:
        Fail: "setns(CLONE_NEWUTS) returned 0 and the thread is not in the target UTS namespace".
        OSError: setns(2) itself failed.
    """
    types = [t for t, (flag, _) in _needs.NSTYPES.items() if flag == nstype]
    if len(types) != 1:
        raise ValueError(f"nstype must be one CLONE_NEW* flag, got {nstype!r}")
    _kernel.setns(fd, nstype)
    try:
        _needs.verify_joined(fd, types[0])
    except _needs.PremiseBroken as err:
        raise Fail(str(err)) from None


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return f"in child {os.getpid()}"
    last = frames[-1]
    return (
        f"in child {os.getpid()} at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    )


def _send(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj)
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes | None:
    """Read *n* bytes; ``None`` on EOF; :class:`TimeoutError` when *deadline* passes."""
    chunks: list[bytes] = []
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not poller.poll(left * 1000):
                continue
        try:
            chunk = sock.recv(n)
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket, deadline: float | None) -> tuple[bool, Any]:
    """Receive one message: ``(True, obj)``, or ``(False, None)`` on EOF."""
    head = _recv_exact(sock, _HEADER.size, deadline)
    if head is None:
        return False, None
    (size,) = _HEADER.unpack(head)
    body = _recv_exact(sock, size, deadline)
    if body is None:
        return False, None
    return True, pickle.loads(body)


def _reply(sock: socket.socket, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)``; send ``("ok", value)`` or the exception in a form the parent rebuilds."""
    try:
        msg: tuple[Any, ...] = ("ok", fn(*args))
    except BaseException as exc:
        msg = ("exc", exc, _where(exc), "".join(traceback.format_exception(exc)))
    try:
        _send(sock, msg)
    except Exception as err:  # the value or the exception would not pickle
        if msg[0] == "ok":
            text = f"result of type {type(msg[1]).__name__} cannot be pickled: {err}"
            _send(sock, ("raw", "CallError", text, ""))
        else:
            _send(sock, ("raw", type(msg[1]).__qualname__, f"{msg[1]} ({msg[2]})", msg[3]))


def _rebuild(msg: tuple[Any, ...]) -> Any:
    """Return the value in a reply, or raise the child's exception in this process."""
    if msg[0] == "ok":
        return msg[1]
    if msg[0] == "exc":
        exc: BaseException = msg[1]
        if not isinstance(exc, (Fail, Skip)):
            exc._nsprim_where = msg[2]  # type: ignore[attr-defined]
        raise exc
    _, type_name, text, child_tb = msg
    raise nsprim.CallError(f"{type_name}: {text}", type_name=type_name, child_traceback=child_tb)


def _kill_and_reap(pending: nsprim.PendingCall) -> int | None:
    """SIGKILL the helper through its pidfd (no pid-reuse race), reap it; return its wait status."""
    pending.kill()
    try:
        pending.result()
    except nsprim.CallError as err:
        return wait_status(err.returncode)
    return None  # pragma: no cover - a killed helper never returns


def wait_status(returncode: int | None) -> int | None:
    """The wait status behind a Popen-style *returncode* (-N: killed by signal N)."""
    if returncode is None:
        return None
    return -returncode if returncode < 0 else returncode << 8


def _describe_status(status: int | None) -> str:
    if status is None:
        return "was already reaped"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class ChildHandle:
    """A long-lived helper child made by :meth:`Context.spawn_child`.

    The child runs ``fn(*args)`` (after ``unshare``), sends the result, then
    blocks serving requests until :meth:`stop`. A request is a module-level
    callable or a tuple ``(callable, *args)``; it runs in the child and its
    result (or exception) is what the next :meth:`recv` returns (or raises).
    The framework stops every handle at the end of the check.

    Attributes:
        pid: the child's pid as this process sees it.
    """

    def __init__(self, pending: nsprim.PendingCall, sock: socket.socket, owner: int) -> None:
        self.pid = pending.pid
        self._pending = pending
        self._sock = sock
        self._owner = owner
        self._stopped = False

    def ns_path(self, nstype: str) -> str:
        """Return ``/proc/<pid>/ns/<nstype>`` (``nstype`` is a /proc ns name such as ``"uts"``)."""
        return f"/proc/{self.pid}/ns/{nstype}"

    def send(self, obj: Any) -> None:
        """Ask the child to run *obj*: a callable or ``(callable, *args)`` (both picklable)."""
        if self._stopped:
            raise ValueError(f"send(): helper child {self.pid} was stopped")
        if not (callable(obj) or (isinstance(obj, tuple) and obj and callable(obj[0]))):
            raise TypeError(f"send(obj): obj must be a callable or (callable, *args), got {obj!r}")
        _send(self._sock, obj if isinstance(obj, tuple) else (obj,))

    def recv(self, timeout: float = 5.0) -> Any:
        """Return the next reply from the child, re-raising its exception if it raised one.

        Raises:
            nsprim.TimeoutExpired: nothing arrived within *timeout* seconds.
            nsprim.CallError: the child died, or its reply could not be rebuilt.
        """
        timeout *= timeout_mul()
        try:
            ok, msg = _recv(self._sock, time.monotonic() + timeout)
        except TimeoutError:
            raise nsprim.TimeoutExpired(timeout, self.pid) from None
        if not ok:
            status = self.stop()
            raise nsprim.CallError(
                f"helper child {self.pid} {_describe_status(status)} before replying"
            )
        return _rebuild(msg)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 5.0) -> Any:
        """Run ``fn(*args)`` in the child and return its result: :meth:`send` then :meth:`recv`."""
        self.send((fn, *args))
        return self.recv(timeout)

    def stop(self) -> int | None:
        """Kill and reap the child (idempotent); return its wait status the first time."""
        if self._stopped:
            return None
        self._stopped = True
        self._sock.close()
        return _kill_and_reap(self._pending)


def _serve(sock: socket.socket) -> None:
    while True:
        ok, request = _recv(sock, None)
        if not ok:
            return
        fn, *args = request
        _reply(sock, fn, *args)


class Context:
    """What a check gets: the run's facts and the helpers to fork, expect and clean up.

    Unshare in helpers (``in_child(..., unshare=...)``, ``spawn_child``), not
    in the check's own process: after ``unshare(CLONE_NEWPID)`` the first
    child becomes that namespace's init and, once it exits, every later fork
    fails with ENOMEM (pid_namespaces(7)), which would break the helpers.

    Attributes:
        control: True in the negative-control run; :meth:`isolate` then returns 0.
        privileged: real root with CAP_SYS_ADMIN in the initial user namespace.
        as_user: the run is rootless (``--as-user`` or started as non-root): the
            outer sandbox is a user namespace that maps one uid to 0.
        kernel: the running kernel's version, ``(major, minor, patch)``.
        tmpdir: a private directory (a tmpfs when the sandbox could mount one), removed after.
        check_id: the id of the running check.
        check_type: the check's namespace type (the id's prefix).
        probed: what the runner found this environment allows, operation name to
            :class:`~nsprim.conformance._needs.Availability` (see :meth:`availability`).
    """

    def __init__(
        self,
        *,
        control: bool = False,
        privileged: bool = False,
        as_user: bool = False,
        kernel: tuple[int, int, int] = (0, 0, 0),
        tmpdir: str = "",
        check_id: str = "",
        probed: Mapping[str, Availability] | None = None,
    ) -> None:
        self.control = control
        self.privileged = privileged
        self.as_user = as_user
        self.kernel = kernel
        self.tmpdir = tmpdir
        self.check_id = check_id
        self.check_type = check_id.split(".", 1)[0]
        self.probed: Mapping[str, Availability] = dict(probed or {})
        self._cleanups: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._handles: list[ChildHandle] = []

    # -- verdicts ---------------------------------------------------------

    def isolate(self, flags: int) -> int:
        """Return *flags*, or 0 in the control run (the control leaves isolation out)."""
        return 0 if self.control else flags

    def expect(self, cond: object, msg: str, expected: Any = None, actual: Any = None) -> None:
        """Raise :class:`Fail` (*msg*, *expected*, *actual*) unless *cond* is true."""
        if not cond:
            raise Fail(msg, expected, actual)

    def expect_equal(self, actual: Any, expected: Any, what: str) -> None:
        """Raise :class:`Fail` unless ``actual == expected``; *what* names the observed thing."""
        if actual != expected:
            raise Fail(f"{what}: expected {expected!r}, got {actual!r}", expected, actual)

    # -- what the environment allows ----------------------------------------

    def availability(self, op: str) -> Availability:
        """Return whether operation *op* works here (``"sethostname"``, ``"unshare.net"``...).

        The runner probed every operation once, by doing it in a throwaway child
        inside a sandbox like this one. An operation it did not probe is
        reported available (the check will find out).
        """
        return self.probed.get(op, Availability(_needs.AVAILABLE))

    def require(self, *ops: str) -> None:
        """Raise :class:`Skip` naming the cause unless every operation in *ops* works here.

        A *broken* operation (it returned 0 and did nothing) raises :class:`Fail`
        instead: the kernel contradicts the guarantee the check relies on.
        """
        missing = _needs.unmet(ops, self.probed)
        if missing is None:
            return
        if missing.state == _needs.BROKEN:
            raise Fail(missing.cause)
        raise Skip(missing.cause)

    def skip_for(self, err: BaseException | int, call: str) -> Skip | None:
        """Return a :class:`Skip` naming the cause if *err* from *call* is a refusal by policy.

        *err* is an ``OSError``, an ``UnsupportedError`` or an errno. *call* names
        the operation as nsprim does (``"sethostname"``, ``"setns"``, ``"unshare"``,
        ``"mount"``, ``"clone3"``...). It is a refusal by policy only when the
        errno is one policy uses (EPERM, EACCES, ENOSPC, EUSERS, ENOSYS) *and*
        the runner's probe found that operation refused here; otherwise
        ``None`` (the error is the check's business: FAIL or ERROR).
        """
        if isinstance(err, nsprim.UnsupportedError):
            code = errno.ENOSYS
        elif isinstance(err, OSError):
            code = err.errno or 0
        elif isinstance(err, int):
            code = err
        else:
            return None
        if code not in POLICY_ERRNOS:
            return None
        op = _needs.op_for_error(call.split("(", 1)[0], self.check_type, self.probed, code)
        if op is None:
            return None
        return Skip(self.probed[op].cause)

    @contextlib.contextmanager
    def refusal_is_skip(self, call: str) -> Iterator[None]:
        """Turn a refusal by policy of *call* inside the block into :class:`Skip`.

        See :meth:`skip_for` for what counts as one.
        """
        try:
            yield
        except (OSError, nsprim.UnsupportedError) as err:
            skip = self.skip_for(err, call)
            if skip is None:
                raise
            raise skip from None

    # -- cleanup ----------------------------------------------------------

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` when the check ends, whatever its outcome (LIFO order).

        A cleanup that raises turns the result into ERROR, naming the cleanup.
        """
        self._cleanups.append((fn, args))

    def run_cleanups(self) -> list[str]:
        """Stop helper children and run deferred cleanups; return one line per failure.

        Called by the runner; checks don't call it.
        """
        errors: list[str] = []
        me = os.getpid()
        for handle in reversed(self._handles):
            if handle._owner == me:
                handle.stop()
        self._handles.clear()
        while self._cleanups:
            fn, args = self._cleanups.pop()
            try:
                fn(*args)
            except Exception as exc:
                name = getattr(fn, "__qualname__", repr(fn))
                errors.append(f"cleanup {name}{args!r} failed: {describe_exception(exc)}")
        return errors

    # -- forked helpers ---------------------------------------------------

    def _stop_own_handles(self) -> None:
        """In a helper child: stop the helpers *it* spawned (never the check's cleanups)."""
        me = os.getpid()
        for handle in self._handles:
            if handle._owner == me:
                handle.stop()

    def in_child(
        self, fn: Callable[..., Any], *args: Any, unshare: int = 0, timeout: float = 5.0
    ) -> Any:
        """Run ``fn(*args)`` in a forked child (after ``unshare(unshare)``) and return its result.

        The result must pickle. An exception in the child (``Fail`` and ``Skip``
        included) is re-raised here. The child is always killed and reaped.

        Args:
            fn: what to run; a closure is fine (fork, not spawn).
            unshare: CLONE_NEW* flags to unshare in the child first (0: none).
            timeout: seconds to wait for the result.

        Raises:
            nsprim.TimeoutExpired: no result within *timeout* (an ERROR, not a FAIL).
            nsprim.CallError: the child died before reporting, or its result did not pickle.
        """
        timeout *= timeout_mul()
        _unshare_arg(unshare)
        with nsprim.call_start(_helper, self, unshare, fn, args, die_with_parent=False) as child:
            try:
                return child.result(timeout)
            except nsprim.TimeoutExpired:
                raise nsprim.TimeoutExpired(
                    timeout, child.pid, msg=f"in_child({_name(fn)}): no result after {timeout} s"
                ) from None
            except nsprim.CallError as err:
                if err.returncode is None:
                    raise
                words = _describe_status(wait_status(err.returncode))
                raise nsprim.CallError(
                    f"in_child({_name(fn)}): child {child.pid} {words} before reporting",
                    returncode=err.returncode,
                ) from None

    def spawn_child(self, fn: Callable[..., Any], *args: Any, unshare: int = 0) -> ChildHandle:
        """Fork a long-lived helper that runs ``fn(*args)`` then waits for requests.

        It returns at once, before ``fn`` has run: the first
        :meth:`ChildHandle.recv` waits for ``fn`` and returns what it returned
        (or raises what it raised), so call it before relying on the helper's
        state (e.g. that its ``unshare`` happened). The framework stops the child when the check
        ends; :meth:`ChildHandle.stop` does it earlier.

        Args:
            fn: the helper's setup; a closure is fine.
            unshare: CLONE_NEW* flags to unshare in the child first (0: none).
        """
        _unshare_arg(unshare)
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pending = nsprim.call_start(
                _serving_helper, self, parent_sock.fileno(), child_sock, unshare, fn, args,
                die_with_parent=False,
            )  # fmt: skip
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        handle = ChildHandle(pending, parent_sock, owner=os.getpid())
        self._handles.append(handle)
        return handle


def _unshare_arg(unshare: int) -> None:
    if unshare < 0:
        raise ValueError(f"unshare must be a combination of CLONE_* flags, got {unshare!r}")


def _helper(ctx: Context, unshare: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """In an ``in_child`` child: unshare, run *fn*, stop the helpers it spawned."""
    try:
        return _call_after_unshare(unshare, fn, args)
    except BaseException as exc:
        if not isinstance(exc, (Fail, Skip)):
            # Where it was raised, for the report's detail (exception_detail).
            with contextlib.suppress(AttributeError):
                exc._nsprim_where = _where(exc)  # type: ignore[attr-defined]
        raise
    finally:
        ctx._stop_own_handles()


def _serving_helper(
    ctx: Context,
    peer: int,
    sock: socket.socket,
    unshare: int,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    """A ``spawn_child`` child: reply with *fn*'s result, then serve requests until EOF."""
    os.close(peer)  # the parent's end: its close is our end-of-requests
    try:
        _reply(sock, _call_after_unshare, unshare, fn, args)
        _serve(sock)
    finally:
        ctx._stop_own_handles()


def _call_after_unshare(flags: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if flags:
        unshare_verified(flags)
    return fn(*args)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
