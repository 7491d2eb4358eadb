"""The machinery under the process API: validation, the launch protocol, bookkeeping.

Layer 3, private: imports the standard library and nsprim layers 0-2, plus
:mod:`nsprim._child` (the half that runs between fork and exec). The public
functions are in :mod:`nsprim.process`; this module validates their options
in the parent (STYLE.md 5.4), translates kernel errors once (psutil's
``wrap_exceptions``), forks children on a precomputed plan and sees them
through setup over a close-on-exec socket, and tracks every fd and child of
a launch in flight so that nothing leaks when one fails.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Callable, NoReturn, Optional, TypeVar, Union

from . import _child
from . import syscalls as _sc
from ._fd import HasFileno, OwnedFd
from ._launcher import LAUNCHER
from ._sys import consts as C
from .errors import (
    AccessDenied,
    NsprimError,
    TimeoutExpired,
    UnsupportedError,
    add_note,
    reraise,
    translate,
)
from .idmap import IdMap, IdMapLike, write_gid_map, write_setgroups, write_uid_map
from .namespace import NsType

#: The namespace types that setns(2) moves per thread, so :func:`enter` can use them.
THREAD_SCOPED = frozenset({NsType.NET, NsType.UTS, NsType.IPC, NsType.CGROUP})

#: How long a child may take from fork to exec (or to its callable) before it is killed.
SETUP_TIMEOUT = 60.0

T = TypeVar("T")
NsSpec = Union[NsType, str, int]
StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
StdSpec = Union[None, int, HasFileno]

_ALL_FLAGS = 0
for _t in NsType:
    _ALL_FLAGS |= int(_t.flag)
del _t

_PROPAGATION = {
    "private": C.MS_PRIVATE,
    "slave": C.MS_SLAVE,
    "shared": C.MS_SHARED,
    "unbindable": C.MS_UNBINDABLE,
    "unchanged": 0,
}

_CLOCKS = ("monotonic", "boottime")

_C_INT_MAX = 0x7FFFFFFF

# The kernel refuses offsets beyond KTIME_SEC_MAX seconds either way with
# ERANGE (kernel/time/namespace.c, proc_timens_set_offset), after parsing
# them with an overflowing strtoll: refuse them here, by value.
_KTIME_SEC_MAX = (2**63 - 1) // 1_000_000_000

# --- errors ----------------------------------------------------------------------------


_CHILD_CLASSES: dict[str, type[BaseException]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "RuntimeError": RuntimeError,
}


def _child_error(payload: bytes, pid: int, when: str = "before exec") -> BaseException:
    """Rebuild the exception that the child reported as ``Name:hexerrno:step:detail``."""
    text = payload.decode("utf-8", "surrogateescape")
    parts = text.split(":", 3)
    while len(parts) < 4:
        parts.append("")
    name, hexerr, step, detail = parts
    try:
        code = int(hexerr, 16)
    except ValueError:
        code = 0
    exc: BaseException
    if code:
        os_err = OSError(code, f"{step}: {os.strerror(code)}", detail or None)
        exc = translate(os_err, step)
    elif name == "UnsupportedError":
        exc = UnsupportedError(step, msg=detail or f"{step} is not supported here")
    elif name in _CHILD_CLASSES:
        exc = _CHILD_CLASSES[name](detail)
    else:
        exc = NsprimError(f"{step}: {name}: {detail}" if detail else f"{step}: {name}")
    with contextlib.suppress(AttributeError):
        exc.step = step  # type: ignore[attr-defined]
    add_note(exc, f"in child {pid} {when}")
    return exc


# --- validation ------------------------------------------------------------------------


def _parse_types(namespaces: Iterable[NsSpec], name: str = "namespaces") -> frozenset[NsType]:
    if isinstance(namespaces, (str, NsType)):
        namespaces = (namespaces,)
    if not isinstance(namespaces, Iterable):
        raise TypeError(
            f"{name} must be an iterable of namespace types, got "
            f"{type(namespaces).__name__} {namespaces!r}"
        )
    out = set()
    for item in namespaces:
        try:
            out.add(NsType.parse(item))
        except (ValueError, TypeError) as err:
            raise type(err)(f"{name}: {err}") from None
    return frozenset(out)


def _opt_name(value: object, name: str) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, bytes):
        b = value
    else:
        raise TypeError(f"{name} must be str or bytes, got {type(value).__name__} {value!r}")
    if b"\0" in b:
        raise ValueError(f"{name} must not contain a NUL byte, got {value!r}")
    if len(b) > _sc.HOST_NAME_MAX:
        raise ValueError(
            f"{name} must be at most {_sc.HOST_NAME_MAX} bytes, got {len(b)}: {value!r}"
        )
    return b


def _opt_path(value: object, name: str) -> Optional[bytes]:
    if value is None:
        return None
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(value).__name__} {value!r}")
    b = os.fsencode(value)
    if not b or b"\0" in b:
        raise ValueError(f"{name} must be a non-empty path without NUL bytes, got {value!r}")
    return b


def _seconds(value: object, name: str) -> int:
    """Return *value* (seconds: int, float or timedelta) in nanoseconds."""
    if isinstance(value, timedelta):
        return (value.days * 86400 + value.seconds) * 1_000_000_000 + value.microseconds * 1000
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be seconds (int, float or timedelta), got {value!r}")
    if isinstance(value, float) and not -_KTIME_SEC_MAX <= value <= _KTIME_SEC_MAX:  # NaN, inf
        raise ValueError(
            f"{name} must be a number of seconds within +-{_KTIME_SEC_MAX}, got {value!r}"
        )
    ns = round(value * 1_000_000_000) if isinstance(value, float) else value * 1_000_000_000
    if not -_KTIME_SEC_MAX <= ns // 1_000_000_000 <= _KTIME_SEC_MAX:
        raise ValueError(
            f"{name} must be a number of seconds within +-{_KTIME_SEC_MAX}, got {value!r}"
        )
    return ns


def _format_offsets(offsets: Mapping[str, Any]) -> str:
    if not isinstance(offsets, Mapping):
        raise TypeError(
            f"time_offsets must be a mapping like {{'monotonic': 3600}}, got {offsets!r}"
        )
    lines = []
    for clock, value in offsets.items():
        if clock not in _CLOCKS:
            raise ValueError(f"time_offsets keys must be 'monotonic' or 'boottime', got {clock!r}")
        ns = _seconds(value, f"time_offsets[{clock!r}]")
        sec, nsec = divmod(ns, 1_000_000_000)
        lines.append(f"{clock} {sec} {nsec}\n")
    return "".join(lines)


def _pdeathsig(value: object) -> int:
    if isinstance(value, bool):
        return int(signal.SIGKILL) if value else 0
    if isinstance(value, int):
        if not 0 < value < signal.NSIG:
            raise ValueError(
                f"die_with_parent must be a bool or a signal number below {signal.NSIG}, "
                f"got {value}"
            )
        return int(value)
    raise TypeError(f"die_with_parent must be a bool or a signal number, got {value!r}")


def _has_cap(bit: int) -> bool:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


_CAP_SETGID = 6


class _Setup:
    """Validated namespace options, shared by spawn and call (parent side)."""

    __slots__ = (
        "cwd",
        "domainname",
        "flags",
        "gid_map",
        "hostname",
        "loopback_up",
        "mount_proc",
        "offsets",
        "pdeathsig",
        "propagation",
        "root",
        "setgroups",
        "types",
        "uid_map",
    )

    def __init__(
        self,
        namespaces: Iterable[NsSpec],
        hostname: Optional[Union[str, bytes]],
        domainname: Optional[Union[str, bytes]],
        map_root: bool,
        uid_map: Optional[IdMapLike],
        gid_map: Optional[IdMapLike],
        setgroups: Optional[str],
        mount_proc: bool,
        propagation: str,
        root: Optional[StrPath],
        time_offsets: Optional[Mapping[str, Any]],
        loopback_up: bool,
        cwd: Optional[StrPath],
        die_with_parent: Union[bool, int],
    ) -> None:
        types = set(_parse_types(namespaces))
        for flag_name, flag in (
            ("map_root", map_root),
            ("mount_proc", mount_proc),
            ("loopback_up", loopback_up),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{flag_name} must be a bool, got {flag!r}")
        self.hostname = _opt_name(hostname, "hostname")
        self.domainname = _opt_name(domainname, "domainname")
        self.root = _opt_path(root, "root")
        self.cwd = _opt_path(cwd, "cwd")
        self.pdeathsig = _pdeathsig(die_with_parent)
        if map_root and (uid_map is not None or gid_map is not None):
            raise ValueError(
                f"map_root=True maps the caller to 0; it can't be combined with "
                f"uid_map={uid_map!r} or gid_map={gid_map!r}"
            )
        self.uid_map = IdMap.coerce(uid_map, "uid_map") if uid_map is not None else None
        self.gid_map = IdMap.coerce(gid_map, "gid_map") if gid_map is not None else None
        if map_root:
            self.uid_map = IdMap.single(0, os.geteuid())
            self.gid_map = IdMap.single(0, os.getegid())
        if setgroups is not None and setgroups not in ("allow", "deny"):
            raise ValueError(f"setgroups must be 'allow', 'deny' or None, got {setgroups!r}")
        # unshare(1) --map-root-user writes 'deny'; an unprivileged writer
        # must (user_namespaces(7), "Interaction with setgroups").
        if (
            setgroups is None
            and self.gid_map is not None
            and (map_root or not _has_cap(_CAP_SETGID))
        ):
            setgroups = "deny"
        self.setgroups = setgroups
        # Options that only make sense in a namespace imply it, as in unshare(1).
        if self.uid_map is not None or self.gid_map is not None or setgroups is not None:
            types.add(NsType.USER)
        if self.hostname is not None or self.domainname is not None:
            types.add(NsType.UTS)
        if loopback_up:
            types.add(NsType.NET)
        if mount_proc:
            if NsType.PID not in types:
                names = sorted(t.value for t in types)
                raise ValueError(
                    "mount_proc=True needs 'pid' in namespaces: a fresh /proc of the "
                    f"caller's own pid namespace isolates nothing (namespaces={names})"
                )
            types.add(NsType.MNT)
        if self.root is not None:
            types.add(NsType.MNT)
        self.offsets = _format_offsets(time_offsets) if time_offsets is not None else None
        if self.offsets is not None:
            types.add(NsType.TIME)
        if not isinstance(propagation, str) or propagation not in _PROPAGATION:
            raise ValueError(
                f"propagation must be one of {', '.join(_PROPAGATION)}, got {propagation!r}"
            )
        if NsType.MNT in types:
            self.propagation = _PROPAGATION[propagation]
            if self.root is not None and self.propagation in (0, C.MS_SHARED):
                raise ValueError(
                    f"root needs propagation 'private', 'slave' or 'unbindable' "
                    f"(pivot_root(2) refuses shared mounts), got {propagation!r}"
                )
        else:
            if propagation not in ("private", "unchanged"):
                raise ValueError(f"propagation={propagation!r} needs 'mnt' in namespaces")
            self.propagation = 0
        self.mount_proc = mount_proc
        self.loopback_up = loopback_up
        self.types = frozenset(types)
        flags = 0
        for t in types:
            flags |= int(t.flag)
        # unshare(CLONE_NEWTIME) moves only the caller's children
        # (time_namespaces(7)); offsets can only be written before any
        # process is in the namespace (timens_offsets, Linux 5.6). So the
        # child unshares it on its own, the parent writes any offsets, and
        # the child enters it with setns(time_for_children).
        flags &= ~C.CLONE_NEWTIME
        self.flags = flags

    @property
    def sync(self) -> bool:
        return (
            self.uid_map is not None
            or self.gid_map is not None
            or bool(self.setgroups or self.offsets)
        )


def _argv(args: object) -> tuple[bytes, ...]:
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    if not isinstance(args, Sequence) or not args:
        raise ValueError(f"args must be a non-empty sequence of str/bytes/PathLike, got {args!r}")
    out = []
    for i, a in enumerate(args):
        if not isinstance(a, (str, bytes, os.PathLike)):
            raise TypeError(
                f"args[{i}] must be str, bytes or PathLike, got {type(a).__name__} {a!r}"
            )
        b = os.fsencode(a)
        if b"\0" in b:
            raise ValueError(f"args[{i}] must not contain a NUL byte, got {a!r}")
        out.append(b)
    return tuple(out)


def _envp(env: Optional[Mapping[Any, Any]]) -> Optional[dict[bytes, bytes]]:
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping or None, got {type(env).__name__}")
    out = {}
    for k, v in env.items():
        kb, vb = os.fsencode(k), os.fsencode(v)
        if not kb or b"=" in kb or b"\0" in kb or b"\0" in vb:
            raise ValueError(f"env has an invalid entry {k!r}={v!r}")
        out[kb] = vb
    return out


def _executables(argv0: bytes, env: Optional[Mapping[Any, Any]]) -> tuple[bytes, ...]:
    if b"/" in argv0:
        return (argv0,)
    # PATH of the child's environment, as CPython's _execute_child computes it.
    path_env: Optional[Mapping[Any, Any]] = env
    if env is not None and b"PATH" not in {os.fsencode(k) for k in env}:
        path_env = None
    dirs = os.get_exec_path(path_env)
    return tuple(os.path.join(os.fsencode(d), argv0) for d in dirs)


def _pass_fds(pass_fds: Iterable[int]) -> tuple[int, ...]:
    if isinstance(pass_fds, (str, bytes)) or not isinstance(pass_fds, Iterable):
        raise TypeError(f"pass_fds must be an iterable of fds, got {pass_fds!r}")
    out = set()
    for fd in pass_fds:
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"pass_fds must hold ints, got {fd!r}")
        if fd < 3:
            raise ValueError(f"pass_fds must hold fds >= 3 (0-2 are stdin/stdout/stderr), got {fd}")
        if fd > _C_INT_MAX:
            raise ValueError(f"pass_fds must hold fds that fit a C int, got {fd}")
        os.fstat(fd)  # EBADF now, not in the child
        out.add(fd)
    return tuple(sorted(out))


# --- bookkeeping shared by every launch ---------------------------------------------------

# fds of launches in flight and of open NsProcess pipes: a child started
# meanwhile from another thread closes them at once, so it can never hold
# another spawn's channel or pipe open (the classic concurrent-Popen EOF hang).
_inflight: set[int] = set()
# NsProcess objects that were dropped while their process ran; reaped later
# (subprocess._active).
_orphans: list[tuple[int, Optional[OwnedFd]]] = []
_orphans_lock = threading.Lock()


def _track(*fds: int) -> None:
    _inflight.update(fds)


def _close(fd: int) -> None:
    _inflight.discard(fd)
    with contextlib.suppress(OSError):
        os.close(fd)


def _reap_orphans() -> None:
    with _orphans_lock:
        keep = []
        for pid, pidfd in _orphans:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                if pidfd is not None:
                    pidfd.close()
            else:
                keep.append((pid, pidfd))
        _orphans[:] = keep


def _kill_reap(pid: int, pidfd: Optional[OwnedFd]) -> Optional[int]:
    """SIGKILL and reap a child; return its wait status (None if someone else reaped it)."""
    with contextlib.suppress(OSError):
        if pidfd is not None and not pidfd.closed:
            _sc.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    status: Optional[int] = None
    with contextlib.suppress(ChildProcessError):
        status = os.waitpid(pid, 0)[1]
    if pidfd is not None:
        pidfd.close()
    return status


def _pidns_to_return_to(flags: int) -> int:
    """An fd of the launcher thread's pid namespace if it may unshare one and come back, else -1.

    Only without a new user namespace (the pid namespace must belong to it
    otherwise), and only when setns(2) back is allowed: a caller that is
    root in a user namespace can unshare a pid namespace but not return to
    the one it came from (setns needs CAP_SYS_ADMIN over its owner).
    Probed by setns() into the thread's own active pid namespace, which the
    kernel accepts exactly when it would accept the way back.
    """
    if not flags & C.CLONE_NEWPID or flags & C.CLONE_NEWUSER:
        return -1
    try:
        fd = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        _sc.setns(fd, C.CLONE_NEWPID)
    except OSError:
        os.close(fd)
        return -1
    return fd


def _fork(
    flags: int, plan: _child.Plan, body: Callable[[_child.Plan], NoReturn], pidns: int = -1
) -> tuple[int, OwnedFd]:
    """Create the child with os.fork() and put it in new namespaces with unshare(2).

    Runs on the launcher thread. Why os.fork() and not a raw clone3(2)
    syscall: glibc's fork() and CPython's os.fork() prepare the child in C,
    with no bytecode between the syscall and CPython's after-fork reset. A
    raw clone3 returns into the eval loop first, and a GIL drop request that
    another thread made just before the clone then parks the child forever
    in drop_gil() waiting for a thread that does not exist in it (seen as
    "did not finish its setup in time" under 16 spawning threads).

    A new pid namespace: unshare(CLONE_NEWPID) moves only later children
    (pid_namespaces(7)). With *pidns* (see :func:`_pidns_to_return_to`) the
    launcher thread unshares it, forks the child into it as PID 1 and
    setns(2)es back at once, so that the thread keeps its own
    pid_for_children and the next launch never meets a namespace whose init
    has exited. Otherwise (a new user namespace, which must own the pid
    namespace, or no way back) the child unshares it with the rest and
    starts its successor, the PID 1, with clone3(CLONE_PARENT)
    (``plan.pid_hop``): safe there, because the child has a single thread.
    """
    child_flags = flags
    if pidns >= 0:
        try:
            _sc.unshare(C.CLONE_NEWPID)
        except OSError as err:
            reraise(err, "unshare")
        child_flags &= ~C.CLONE_NEWPID
    try:
        try:
            pid = os.fork()
        except OSError as err:  # EAGAIN at pid_max or RLIMIT_NPROC: name the call
            raise OSError(err.errno, f"fork: {err.strerror}") from None
        if pid == 0:
            try:
                gc.disable()
                if child_flags:
                    try:
                        _sc.unshare(child_flags)
                    except BaseException as exc:
                        _child.send_frame(
                            plan.chan, _child.ERROR, _child.encode_error(exc, "unshare")
                        )
                        os._exit(255)
                body(plan)
            finally:
                os._exit(255)
    finally:
        if pidns >= 0:
            # Probed before: this can't fail short of a kernel surprise, and
            # then the thread must not go on with a foreign pid_for_children.
            _sc.setns(pidns, C.CLONE_NEWPID)
    try:
        return pid, OwnedFd(_sc.pidfd_open(pid))
    except BaseException:
        _kill_reap(pid, None)
        raise


class _Channel:
    """The parent's end of the channel: frames, with the child's pidfd watched too."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def _frame(self) -> Optional[tuple[bytes, bytes]]:
        size = _child._HEADER.size
        if len(self.buf) < size:
            return None
        tag, n = _child._HEADER.unpack(bytes(self.buf[:size]))
        if len(self.buf) < size + n:
            return None
        payload = bytes(self.buf[size : size + n])
        del self.buf[: size + n]
        return tag, payload

    def next(self, pidfd: int, deadline: Optional[float]) -> Optional[tuple[bytes, bytes]]:
        """Return the next frame, or None at EOF or once the child exited with nothing more.

        Raises:
            TimeoutError: *deadline* passed first.
        """
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        exited = False
        while True:
            frame = self._frame()
            if frame is not None:
                return frame
            if self.eof:
                return None
            if exited:
                # The child is gone; whatever it wrote is already buffered in
                # the socket. A copy of its end held elsewhere must not stall us.
                ready = select.select([self.fd], [], [], 0)[0]
                if not ready:
                    return None
                self._read()
                continue
            if deadline is not None and deadline <= time.monotonic():
                raise TimeoutError
            for fd, _ in poller.poll(_child.poll_ms(deadline)):
                if fd == self.fd:
                    self._read()
                elif fd == pidfd:
                    exited = True

    def _read(self) -> None:
        data = os.read(self.fd, 65536)
        if data:
            self.buf += data
        else:
            self.eof = True


class _Launch:
    """A started child: its pid, pidfd and the parent's end of the channel."""

    __slots__ = ("chan", "pid", "pidfd")

    def __init__(self, pid: int, pidfd: OwnedFd, chan: _Channel) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.chan = chan

    def close_chan(self) -> None:
        _close(self.chan.fd)


def _write_setup(pid: int, setup: _Setup) -> None:
    """The parent's part while the child waits: setgroups, id maps, time offsets."""
    op = "setgroups"
    try:
        if setup.setgroups is not None:
            write_setgroups(pid, setup.setgroups)  # type: ignore[arg-type]
        if setup.uid_map is not None:
            op = "uid_map"
            write_uid_map(pid, setup.uid_map)
        if setup.gid_map is not None:
            op = "gid_map"
            write_gid_map(pid, setup.gid_map)
        if setup.offsets is not None:
            op = "timens_offsets"
            path = f"/proc/{pid}/timens_offsets"
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, setup.offsets.encode())
            except OSError as err:
                raise OSError(err.errno, f"timens_offsets: {err.strerror}", path) from None
            finally:
                os.close(fd)
    except AccessDenied as err:
        # idmap translated it for the file; name this launch's step and its hint.
        raise translate(PermissionError(err.errno, err.strerror), op, pid) from err
    except OSError as err:
        reraise(err, op, pid)


def _launch(
    setup: Optional[_Setup],
    fields: dict[str, Any],
    body: Callable[[_child.Plan], NoReturn],
    own: Sequence[int],
    clone_flags: int = 0,
    pdeathsig: int = 0,
    until: bytes = b"",
    deadline: Optional[float] = None,
) -> tuple[_Launch, Optional[bytes]]:
    """Start a child on a plan and see it through setup.

    Returns the launch and, when *until* names a frame tag (``O`` for
    :func:`call`), that frame's payload (None if the child died first).
    Without *until* it returns once the child has exec'd (channel EOF).

    On any failure the child is killed and reaped and nothing is left open.
    """
    _reap_orphans()
    if setup is not None:
        clone_flags = setup.flags
        pdeathsig = setup.pdeathsig
    join_hop = isinstance(fields.get("join"), _child.Join) and fields["join"].hop
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    pfd, cfd = a.detach(), b.detach()
    _track(pfd, cfd)

    def fork_job() -> tuple[int, OwnedFd, set[int], bool, str]:
        # On the launcher thread (see nsprim._launcher): the child's parent
        # thread lives as long as this process, and so does its pdeathsig.
        ppfd = LAUNCHER.pidfd() if pdeathsig else -1
        set_tid = bool(fields.get("set_tid"))
        pidns = -1 if set_tid else _pidns_to_return_to(clone_flags)
        try:
            # Without a way back for the launcher thread, the child makes the
            # pid namespace and hands over to its PID 1 (see _fork).
            pid_hop = bool(clone_flags & C.CLONE_NEWPID) and pidns < 0
            ownset = {pfd, cfd, ppfd, pidns, *own}
            plan = _child.Plan(
                chan=cfd,
                peer=pfd,
                pdeathsig=pdeathsig,
                parent_pidfd=ppfd,
                foreign=tuple(fd for fd in tuple(_inflight) if fd not in ownset),
                **fields,
            )
            if setup is not None:
                plan = _replace_setup(plan, setup, pid_hop)
            hop = pid_hop or join_hop or set_tid
            # The successor of a hop is this thread's child (CLONE_PARENT).
            children = f"/proc/self/task/{threading.get_native_id()}/children"
            before = _thread_children(children) if hop else set()
            pid, pidfd = _fork(clone_flags, plan, body, pidns)
            return pid, pidfd, before, hop, children
        finally:
            if ppfd >= 0:
                os.close(ppfd)
            if pidns >= 0:
                os.close(pidns)

    try:
        pid, pidfd, before, hop, children = LAUNCHER.run(fork_job, lambda r: _kill_reap(r[0], r[1]))
    except BaseException:
        _close(pfd)
        raise
    finally:
        _close(cfd)
    launch = _Launch(pid, pidfd, _Channel(pfd))
    hopped = False
    if deadline is None:
        deadline = time.monotonic() + SETUP_TIMEOUT
    try:
        while True:
            try:
                frame = launch.chan.next(launch.pidfd.fileno(), deadline)
            except TimeoutError:
                raise TimeoutExpired(
                    SETUP_TIMEOUT if not until else max(0.0, deadline - time.monotonic()),
                    launch.pid,
                    msg=f"child {launch.pid} did not finish its setup in time",
                ) from None
            if frame is None:
                return launch, None
            tag, payload = frame
            if tag == _child.READY:
                assert setup is not None
                _write_setup(launch.pid, setup)
                _child.send_frame(pfd, _child.GO)
            elif tag == _child.HOP:
                # The intermediate joined a pid namespace and started its
                # successor as our child (CLONE_PARENT); it exits now.
                new_pid = int(payload)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(launch.pid, 0)
                launch.pidfd.close()
                launch.pid = new_pid
                launch.pidfd = OwnedFd(_sc.pidfd_open(new_pid))
                hopped = True
                _child.send_frame(pfd, _child.GO)  # the successor may go on
            elif tag == _child.ERROR:
                exc = _child_error(
                    payload, launch.pid, "before the callable ran" if until else "before exec"
                )
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(launch.pid, 0)
                launch.pidfd.close()
                launch.close_chan()
                raise exc
            elif tag == until:
                return launch, payload
    except BaseException:
        if not launch.pidfd.closed:
            _kill_reap(launch.pid, launch.pidfd)
        launch.close_chan()
        if hop and not hopped:
            _reap_lost_successors(before, children)
        raise


def _thread_children(path: str) -> set[int]:
    """The children of the thread whose ``/proc/self/task/TID/children`` is *path*."""
    try:
        with open(path) as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def _reap_lost_successors(before: set[int], children: str) -> None:
    # A pid-namespace hop that failed before its HOP frame arrived may have
    # left a successor we never heard of. It is the launcher thread's child
    # (CLONE_PARENT) and leaves on the closed channel; make sure of it and
    # reap it, so that nothing outlives the failed launch.
    for pid in _thread_children(children) - before:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, C.WALL)


def _replace_setup(plan: _child.Plan, setup: _Setup, pid_hop: bool) -> _child.Plan:
    import dataclasses

    return dataclasses.replace(
        plan,
        pid_hop=pid_hop,
        sync=setup.sync,
        unshare_time=NsType.TIME in setup.types,
        hostname=setup.hostname,
        domainname=setup.domainname,
        propagation=setup.propagation,
        root=setup.root,
        mount_proc=setup.mount_proc,
        loopback_up=setup.loopback_up,
        cwd=setup.cwd,
    )
