"""The forker's own side: the loop that runs in the helper process (see :mod:`nsprim._forker`).

Layer 3, private. At import: the standard library's C modules and
:mod:`nsprim._sys.lean` only, so that the forker stays small (every page it
maps is copied by each clone and torn down by each exec, see
:mod:`nsprim._sys.lean`). A plan with a step the lean child can't run
(pivot_root, bringing lo up, binfmt_misc, ambient capabilities) loads
:mod:`nsprim._child` on first use and runs nsprim's own step table.

One request at a time, over a SOCK_SEQPACKET channel:

* in: ``(seq, flags, pdeathsig, sync, unshare_time, steps, setup, argv,
  executables, envp, stdio, pass_fds, umask, ignored, blocked)`` (marshal)
  with SCM_RIGHTS ``[cwd, channel, stdio that is open..., pass_fds...]``;
  *steps* is the lean step table or None, and then *setup* the options'
  state for nsprim's table (:func:`encode_setup`);
* out: ``(seq, "pid", pid)`` with the child's pidfd, or ``(seq, "fork")``:
  take the fork path (a refused clone3, a bad fd).

The forker gives the child its fd table, working directory, umask and
signal dispositions by taking them itself around the clone and undoing them
after (all signals blocked meanwhile, so that none meets a borrowed
disposition). The child then runs only its plan: PR_SET_PDEATHSIG and the
parent's liveness, the caller's go (or the id-map handshake), a time
namespace, the steps, the caller's signal mask, execve. Its errors travel
on its channel as on the fork path (:func:`nsprim._frames.encode_error`'s
``Name:hexerrno:step:detail``).
"""

from __future__ import annotations

import _socket
import errno
import marshal
import os
import select
import sys
from array import array
from fcntl import F_DUPFD_CLOEXEC, fcntl

from ._stdlib import signal, suppress
from ._sys import lean

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn, Optional

__all__ = ["LEAN_OPS", "clone3_number", "decode_setup", "encode_setup", "main"]

#: Steps the lean child runs itself, by the name nsprim's step table gives them.
LEAN_OPS = frozenset(("sethostname", "setdomainname", "mount", "chdir"))

#: Signals the forker ignores: the terminal's (it shares the caller's process
#: group) and Python's own two. Its children get each one as the caller has it.
IGNORED: tuple[int, ...] = (
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGPIPE,
    signal.SIGXFSZ,
)
CATCHABLE: tuple[int, ...] = tuple(
    int(s) for s in sorted(signal.valid_signals()) if s not in (signal.SIGKILL, signal.SIGSTOP)
)
#: Where the forker keeps its own fds, above those a caller usually passes (lower
#: under a small RLIMIT_NOFILE, where F_DUPFD at 600 would be EINVAL).
_HIGH = max(10, min(600, os.sysconf("SC_OPEN_MAX") // 2))
_MAX_FDS = 253  # SCM_MAX_FD
_PR_SET_PDEATHSIG = 1
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_CLONE_NEWTIME = 0x00000080
_HEADER = 5  # frame: tag byte and a native 4-byte length (nsprim._frames.HEADER)
_ZERO = (0).to_bytes(4, sys.byteorder)
_READY = b"R" + _ZERO
_GO = b"G"


def clone3_number() -> int:
    """clone3's syscall number here (nsprim._sys.nr's table), for the forker's command line.

    Called in the caller: the forker itself never loads the table.
    """
    from ._sys import nr

    return nr.nr("clone3")


def encode_setup(setup: Any) -> dict[str, Any]:
    """An :class:`nsprim._options.NsOptions` as plain data for marshal."""
    out: dict[str, Any] = {}
    for name in type(setup).__slots__:
        value = getattr(setup, name)
        if name in ("uid_map", "gid_map") and value is not None:
            value = tuple((m.inside, m.outside, m.count) for m in value.mappings)
        elif name == "types":
            value = tuple(sorted(t.value for t in value))
        out[name] = value
    return out


def decode_setup(state: dict[str, Any]) -> Any:
    """The :class:`nsprim._options.NsOptions` that :func:`encode_setup` encoded."""
    from ._nstype import NsType
    from ._options import NsOptions

    setup = object.__new__(NsOptions)
    for name, value in state.items():
        if name in ("uid_map", "gid_map") and value is not None:
            from .idmap import IdMap, IdMapping

            value = IdMap(tuple(IdMapping(*t) for t in value))
        elif name == "types":
            value = frozenset(NsType(v) for v in value)
        object.__setattr__(setup, name, value)
    object.__setattr__(setup, "_frozen", True)
    return setup


def _recv(sock: _socket.socket) -> tuple[bytes, list[int]]:
    fds = array("i")
    msg, anc, _flags, _addr = sock.recvmsg(
        1 << 20, _socket.CMSG_LEN(_MAX_FDS * fds.itemsize), _socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _send(sock: _socket.socket, msg: tuple[Any, ...], fds: tuple[int, ...] = ()) -> None:
    anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array("i", fds).tobytes())] if fds else []
    sock.sendmsg([marshal.dumps(msg)], anc, _socket.MSG_NOSIGNAL)


def _lift(fd: int, avoid: object) -> int:
    """A close-on-exec copy of *fd* at _HIGH or above, on no number in *avoid*."""
    low = _HIGH
    while True:
        new = fcntl(fd, F_DUPFD_CLOEXEC, low)
        if new not in avoid:  # type: ignore[operator]
            return new
        os.close(new)
        low = new + 1


def main() -> None:  # pragma: no cover - runs in the forker's interpreter
    """The forker; ``argv[1:]``: its channel's fd, its parent thread's pidfd, clone3's number."""
    try:
        fd = os.open("/proc/thread-self/comm", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"nsprim-forker")  # its name in ps, top and /proc/PID/comm
        finally:
            os.close(fd)
    except OSError:
        pass
    for sig in IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    chan, parent, number = (int(a) for a in sys.argv[1:4])
    # PR_SET_PDEATHSIG is set already (the fork path's die_with_parent started us).
    if select.select([parent], [], [], 0)[0]:
        os._exit(0)  # the thread that started us is gone already
    own = [_lift(fd, ()) for fd in (chan, parent, 0)]
    for fd in (chan, parent):
        os.close(fd)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, own[0])
    sock.send(b"hello")
    mine = 0
    for s in IGNORED:
        mine |= 1 << (s - 1)
    setups: dict[bytes, tuple[Any, tuple[Any, ...]]] = {}
    while True:
        try:
            data, fds = _recv(sock)
        except OSError:
            return
        if not data:
            return
        try:
            sock = _serve(sock, data, fds, own, mine, number, setups)
        finally:
            for fd in fds:
                with suppress(OSError):
                    os.close(fd)


def _serve(  # pragma: no cover - runs in the forker's interpreter
    sock: _socket.socket,
    data: bytes,
    fds: list[int],
    own: list[int],
    mine: int,
    number: int,
    setups: dict[bytes, tuple[Any, tuple[Any, ...]]],
) -> _socket.socket:
    """One request: take on the state the child must start with, clone it, undo.

    Returns the channel's socket object (a new one if its fd had to move).
    """
    (
        seq, flags, pdeathsig, sync, unshare_time, steps, state, argv, execs, envp, stdio,
        pass_fds, umask, ign, blk,
    ) = marshal.loads(data)  # fmt: skip
    plan = None
    if steps is None:
        # nsprim's own step table (a step the lean child doesn't know).
        known = setups.get(state)
        if known is None:
            from . import _child

            if len(setups) >= 64:
                setups.clear()
            setup = decode_setup(marshal.loads(state))
            known = setups[state] = (setup, _child.setup_steps(setup))
        plan = known
    # Sources: cwd, the child's channel end, each stdio fd that is open, the pass_fds.
    pairs: list[tuple[int, int]] = []
    closed: list[int] = []
    i = 2
    for target, present in enumerate(stdio):
        if present:
            pairs.append((fds[i], target))
            i += 1
        else:
            closed.append(target)
    pairs += zip(fds[i:], pass_fds)
    targets = {t for _, t in pairs} | set(closed)
    # Everything the forker holds goes off the targets first.
    moved = {fd: _lift(fd, targets) for fd in {*fds, *own} if fd in targets}
    if moved:
        fds[:] = [moved.get(fd, fd) for fd in fds]
        if own[0] in moved:
            sock.detach()
        own[:] = [moved.get(fd, fd) for fd in own]
        pairs = [(moved.get(src, src), t) for src, t in pairs]
        for old in moved:
            os.close(old)
        if sock.fileno() < 0:
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, own[0])
    cwd, chan = fds[0], fds[1]
    parent = own[1] if pdeathsig else -1
    blocked = [s for s in CATCHABLE if blk >> (s - 1) & 1]
    full = signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
    changed: list[int] = []
    pid, pidfd = -1, -1
    try:
        for sig in CATCHABLE:
            bit = 1 << (sig - 1)
            if ign & bit and not mine & bit:
                signal.signal(sig, signal.SIG_IGN)
                changed.append(sig)
            elif mine & bit and not ign & bit:
                signal.signal(sig, signal.SIG_DFL)
                changed.append(sig)
        os.fchdir(cwd)
        os.umask(umask)
        for src, target in pairs:
            if src == target:
                os.set_inheritable(src, True)
            else:
                os.dup2(src, target)  # inheritable
        for target in closed:
            with suppress(OSError):
                os.close(target)
        pid, pidfd = lean.clone3_parent(flags, number)
        if pid == 0:
            try:
                if plan is None:
                    _child_lean(
                        chan, parent, pdeathsig, sync, unshare_time, steps, blocked, execs,
                        argv, envp,
                    )  # fmt: skip
                _child_nsprim(chan, parent, plan[0], plan[1], blocked, execs, argv, envp)
            finally:
                os._exit(255)  # never back into the forker's loop
        # The child usually starts on this CPU (fork balancing): let it run
        # now, its exec is what the caller waits for; the answer goes out
        # next, and our undoing can wait until after it.
        os.sched_yield()
        _answer(sock, seq, pid, pidfd)
    except OSError:
        pid = -1  # a bad fd, a refused clone3: the fork path meets it and says it its way
    finally:
        # Back to the forker's own state, whatever happened.
        for target in targets:
            if target > 2:
                with suppress(OSError):
                    os.close(target)
        for target in (0, 1, 2):
            os.dup2(own[2], target)
        os.chdir("/")
        os.umask(0o022)
        for sig in changed:
            signal.signal(sig, signal.SIG_IGN if mine & (1 << (sig - 1)) else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, full)
    if pid < 0:
        _send(sock, (seq, "fork"))
    return sock


def _answer(sock: _socket.socket, seq: int, pid: int, pidfd: int) -> None:
    """Send the new child's pid and pidfd to the caller (and end the child if it is gone)."""
    try:
        _send(sock, (seq, "pid", pid), (pidfd,))
    except OSError:
        # The caller is gone: its program must not run on.
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)


def _frame_error(chan: int, exc: BaseException, step: str, code: int = 255) -> NoReturn:
    """Report *exc* from *step* on the channel (nsprim._frames' error frame) and exit."""
    try:
        err = getattr(exc, "errno", None)
        detail = (
            ("" if exc.filename is None else os.fsdecode(exc.filename))
            if isinstance(exc, OSError)
            else str(exc)
        )
        text = f"{type(exc).__name__}:{err if isinstance(err, int) else 0:x}:{step}:{detail}"
        payload = text.encode("utf-8", "surrogateescape")
        os.write(chan, b"E" + len(payload).to_bytes(4, sys.byteorder) + payload)
    finally:
        os._exit(code)


def _wait_go(chan: int) -> None:
    got = b""
    while len(got) < _HEADER:
        chunk = os.read(chan, _HEADER - len(got))
        if not chunk:
            os._exit(1)  # the caller gave up
        got += chunk
    if got[:1] != _GO:
        os._exit(1)


def _child_lean(  # pragma: no cover - runs in the forker's child
    chan: int,
    parent: int,
    pdeathsig: int,
    sync: bool,
    unshare_time: bool,
    steps: tuple[tuple[str, str, tuple[Any, ...]], ...],
    blocked: list[int],
    execs: tuple[bytes, ...],
    argv: tuple[bytes, ...],
    envp: dict[bytes, bytes],
) -> NoReturn:
    """In the child: the plan in as few lines as can be (every page it writes is a copy)."""
    step = "prctl"
    try:
        if pdeathsig:
            lean.check(lean.prctl(_PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0), "prctl")
            # The parent thread may have died before prctl() (nothing would
            # signal us then); its pidfd polls readable once it is gone.
            if parent >= 0 and select.select([parent], [], [], 0)[0]:
                os._exit(1)
        if unshare_time:
            step = "unshare"
            lean.check(lean.unshare(_CLONE_NEWTIME), "unshare")
        step = "sync"
        if sync:
            # Dumpable while the caller writes the id maps (see nsprim._child._handshake).
            dumpable = lean.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0)
            if dumpable != 1:
                lean.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
            os.write(chan, _READY)
            _wait_go(chan)
            if dumpable != 1:
                lean.prctl(_PR_SET_DUMPABLE, dumpable, 0, 0, 0)
        else:
            _wait_go(chan)  # the caller checked what we inherit (see nsprim._forker)
        if unshare_time:
            step = "setns"
            fd = os.open("/proc/self/ns/time_for_children", os.O_RDONLY | os.O_CLOEXEC)
            lean.check(lean.setns(fd, _CLONE_NEWTIME), "setns")
            os.close(fd)
        for name, op, args in steps:
            step = name
            if op == "chdir":
                os.chdir(args[0])
            elif op == "mount":
                src, target, fstype = (None if a is None else os.fsencode(a) for a in args[:3])
                lean.check(lean.mount(src, target, fstype, args[3], None), "mount", target)
            else:
                name_b = args[0]
                fn = lean.sethostname if op == "sethostname" else lean.setdomainname
                lean.check(fn(name_b, len(name_b)), op)
        step = "sigprocmask"
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        step = "execve"
        _exec(execs, argv, envp)
    except OSError as exc:
        if step == "execve":
            exc.filename = os.fsdecode(argv[0]) if argv else None
            _frame_error(chan, exc, step, 127 if exc.errno == errno.ENOENT else 126)
        _frame_error(chan, exc, step)
    except BaseException as exc:
        _frame_error(chan, exc, step)
    _frame_error(chan, OSError(errno.ENOEXEC, "execve returned"), "execve")


def _exec(execs: tuple[bytes, ...], argv: tuple[bytes, ...], envp: dict[bytes, bytes]) -> None:
    """execve each PATH candidate in turn, as nsprim._child.search_exec does."""
    first: Optional[OSError] = None
    for exe in execs:
        try:
            os.execve(exe, argv, envp)
        except OSError as err:
            if first is None or (
                first.errno in (errno.ENOENT, errno.ENOTDIR)
                and err.errno not in (errno.ENOENT, errno.ENOTDIR)
            ):
                first = err.with_traceback(None)
    raise first or OSError(errno.ENOENT, os.strerror(errno.ENOENT))


def _child_nsprim(  # pragma: no cover - runs in the forker's child
    chan: int,
    parent: int,
    setup: Any,
    steps: tuple[Any, ...],
    blocked: list[int],
    execs: tuple[bytes, ...],
    argv: tuple[bytes, ...],
    envp: dict[bytes, bytes],
) -> NoReturn:
    """In the child, for a plan with steps the lean child doesn't know: nsprim's own."""
    from . import _child

    plan = _child.Plan(
        chan=chan, peer=-1, setup=setup, steps=steps, pdeathsig=setup.pdeathsig, parent_pidfd=parent
    )
    step = _child.StepName()
    try:
        _child._early(plan, step)
        if setup.sync:
            _child._handshake(plan, step)
        else:
            step.name = "sync"
            _wait_go(chan)
        if setup.unshare_time:
            _child._enter_time(step)
        _child.run_steps(steps, step)
        step.name = "sigprocmask"
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        step.name = "execve"
        _exec(execs, argv, envp)
    except OSError as exc:
        if step.name == "execve":
            exc.filename = os.fsdecode(argv[0]) if argv else None
            _frame_error(chan, exc, step.name, 127 if exc.errno == errno.ENOENT else 126)
        _frame_error(chan, exc, step.name)
    except BaseException as exc:
        _frame_error(chan, exc, step.name)
    _frame_error(chan, OSError(errno.ENOEXEC, "execve returned"), "execve")
