"""The fuzz harness: hypothesis draws recipes, a fresh forked child per example runs the call.

Layout (every process below pytest is a sandbox member, see
:func:`._support.sandboxed`)::

    pytest
     └─ sandbox init (PID 1: new mnt rec-private, uts, ipc, net, pid, cgroup; own /proc)
         runs hypothesis; for every example:
         └─ example child: resolves the recipe (fds, pids, paths), calls the target once,
            reports "ok" / the exception class and message over a pipe, _exits.

The init kills an example child that takes longer than :data:`WATCHDOG`
seconds (a hang), treats death by a signal as an interpreter crash, and reaps
every orphan (``waitpid(-1, __WALL)``) after each example. Targets that touch
mounts run their example child as ``nobody`` that then unshared a user and a
mount namespace, so no remount can reach a superblock the host owns.

Draws are *recipes* (:class:`Special`), not live objects: an fd or a pid is
made in the example child itself, so a closed fd, a pidfd, a namespace fd or
a pid that exits mid-call is real there.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import strategies as st

from nsprim.errors import NsprimError

from ._support import drop_to_nobody, raw_unshare, set_dumpable

__all__ = ["Special", "Target", "junk", "fd", "pid", "path", "run_examples", "WATCHDOG"]

#: Seconds one example may take before it counts as a hang.
WATCHDOG = 15.0
WALL = 0x40000000  # __WALL

ALLOWED = (ValueError, TypeError, OSError, NsprimError)
NS_NAMES = ("mnt", "uts", "ipc", "net", "pid", "user", "cgroup", "time")


@dataclass(frozen=True)
class Special:
    """A value that only the example child can make (an fd, a pid, a path)."""

    kind: str
    arg: str = ""

    def __repr__(self) -> str:
        return f"<{self.kind}:{self.arg}>"


FD_KINDS = (
    "closed",
    "pipe",
    "file",
    "dir",
    "socket",
    "nsfs",
    "pidfd",
    "pidfd_exited",
    "devnull",
    "epoll",
    "memfd",
)
PID_KINDS = ("gone", "exiting", "zombie", "self", "init", "sleeper", "userns_child")
PATH_KINDS = ("missing", "tmpdir", "file", "root", "proc", "long", "relative")


def fd() -> st.SearchStrategy[Any]:
    """An fd of every kind, or a junk value where an fd was expected."""
    return st.one_of(
        st.builds(Special, st.just("fd"), st.sampled_from(FD_KINDS)),
        st.integers(-5, 1 << 31),
        junk(),
    )


def pid() -> st.SearchStrategy[Any]:
    """A pid that is live, gone, exiting mid-call, a zombie, huge, negative, or junk."""
    return st.one_of(
        st.builds(Special, st.just("pid"), st.sampled_from(PID_KINDS)),
        st.integers(-(1 << 40), 1 << 40),
        junk(),
    )


def path() -> st.SearchStrategy[Any]:
    """A path that exists or not, is too long, holds NULs or unicode, or junk."""
    return st.one_of(
        st.builds(Special, st.just("path"), st.sampled_from(PATH_KINDS)),
        st.text(max_size=30),
        st.binary(max_size=30),
        junk(),
    )


def junk() -> st.SearchStrategy[Any]:
    """Wrong types and edge values: None, bools, huge/negative ints, NaN, NULs, unicode, containers."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(1 << 70), 1 << 70),
        st.sampled_from([0, -1, 1 << 31, (1 << 32) - 1, 1 << 63, -(1 << 63)]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(["\0", "a\0b", "é", "\U0001f600", "\udcff", "", " ", "-1", "net"]),
        st.binary(max_size=20),
        st.lists(st.integers(-3, 3), max_size=3),
        st.tuples(st.integers(), st.text(max_size=3)),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
        st.just(object()),
        st.just(3.5),
    )


def nstype() -> st.SearchStrategy[Any]:
    """A namespace type spelled any way, or junk."""
    return st.one_of(st.sampled_from(NS_NAMES), st.integers(-1, 1 << 32), junk())


def nstypes() -> st.SearchStrategy[Any]:
    """A collection of namespace types (or a single one, or junk)."""
    return st.one_of(
        st.lists(nstype(), max_size=4), st.lists(st.sampled_from(NS_NAMES), max_size=8), nstype()
    )


@dataclass(frozen=True)
class Target:
    """One public function to fuzz: how to draw its arguments and how to call it."""

    name: str
    args: st.SearchStrategy[Any]
    call: Callable[..., Any]
    userns: bool = False  # run the example as nobody in its own user+mount namespace
    allowed: tuple[type[BaseException], ...] = ()  # documented extra outcomes (subprocess.run's)


class _Made:
    """What the example child made while resolving recipes (closed again at the end)."""

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.objects: list[Any] = []


def _child(fn: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            # Don't hold the report pipe (or anything else) open while sleeping.
            os.closerange(3, 1 << 16)
            fn()
        finally:
            os._exit(0)
    return pid


def _resolve(value: Any, made: _Made) -> Any:
    if isinstance(value, Special):
        return _make(value, made)
    if isinstance(value, list):
        return [_resolve(v, made) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, made) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, made) for k, v in value.items()}
    return value


def _sleeper(seconds: float) -> Callable[[], None]:
    return lambda: time.sleep(seconds)


def _make(sp: Special, made: _Made) -> Any:
    k, a = sp.kind, sp.arg
    if k == "fd":
        if a == "closed":
            n = os.open("/dev/null", os.O_RDONLY)
            os.close(n)
            return n
        if a == "pipe":
            r, w = os.pipe()
            made.fds += [r, w]
            return r
        if a == "socket":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            made.objects.append(s)
            return s.fileno()
        if a == "epoll":
            e = select.epoll()
            made.objects.append(e)
            return e.fileno()
        if a == "memfd":
            n = os.memfd_create("fuzz")
        elif a in ("pidfd", "pidfd_exited"):
            child = _child(_sleeper(0.0 if a == "pidfd_exited" else 5.0))
            n = os.pidfd_open(child)
            if a == "pidfd_exited":
                os.waitpid(child, 0)
        else:
            where = {
                "file": "/etc/hostname",
                "dir": "/",
                "nsfs": "/proc/self/ns/net",
                "devnull": "/dev/null",
            }[a]
            n = os.open(where, os.O_RDONLY)
        made.fds.append(n)
        return n
    if k == "pid":
        if a == "self":
            return os.getpid()
        if a == "init":
            return 1
        if a == "gone":
            child = _child(lambda: None)
            os.waitpid(child, 0)
            return child
        if a == "zombie":
            child = _child(lambda: None)
            time.sleep(0.005)
            return child
        if a == "exiting":  # exits a moment into the call
            return _child(_sleeper(0.002))
        if a == "sleeper":
            return _child(_sleeper(5.0))
        if a == "userns_child":  # in a fresh user namespace, maps not yet written

            def body() -> None:
                raw_unshare(0x10000000)
                time.sleep(5.0)

            return _child(body)
    if k == "path":
        if a == "missing":
            return "/nonexistent/fuzz/path"
        if a == "tmpdir":
            d = tempfile.mkdtemp(prefix="nsprim-fuzz-")
            made.objects.append(d)
            return d
        return {
            "file": "/etc/hostname",
            "root": "/",
            "proc": "/proc/self/ns/uts",
            "long": "/" + "x" * 5000,
            "relative": "no/such/relative",
        }[a]
    raise AssertionError(f"unknown recipe {sp!r}")


def _cleanup(made: _Made) -> None:
    for n in made.fds:
        with contextlib.suppress(OSError):
            os.close(n)
    for obj in made.objects:
        if isinstance(obj, str):
            with contextlib.suppress(OSError):
                os.rmdir(obj)
        else:
            obj.close()


def _enter_userns() -> None:
    """Become root of a fresh user namespace (from nobody) with a private mount namespace."""
    drop_to_nobody()
    set_dumpable()
    raw_unshare(0x10000000 | 0x00020000)  # CLONE_NEWUSER | CLONE_NEWNS
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write("0 65534 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write("0 65534 1")


def _example(target: Target, drawn: Any, w: int) -> None:
    """The example child: resolve, call once, report; always _exit."""
    me = os.getpid()
    made = _Made()
    try:
        if target.userns:
            _enter_userns()
        value = _resolve(drawn, made)
        try:
            target.call(value)
            report = ("ok", "", "")
        except ALLOWED + target.allowed as exc:
            report = ("typed", type(exc).__name__, str(exc))
        except BaseException as exc:
            report = ("untyped", type(exc).__name__, f"{exc}\n{traceback.format_exc()}")
        if os.getpid() != me:  # a clone3/fork returned in a new child: leave quietly
            os._exit(0)
        _cleanup(made)
        os.write(w, pickle.dumps(report))
    except BaseException as exc:
        if os.getpid() == me:
            os.write(w, pickle.dumps(("harness", type(exc).__name__, traceback.format_exc())))
    finally:
        os._exit(0)


def _reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG | WALL)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_one(target: Target, drawn: Any) -> tuple[str, str, str]:
    """Run one example in a forked child under the watchdog; return (verdict, type, message)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        _example(target, drawn, w)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + WATCHDOG
    hung = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                hung = True
                break
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
        if hung:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Grandchildren (spawned programs, fd/pid recipes) were reparented to
        # us or die with their parent; wait for the child, then reap them all.
        _, status = os.waitpid(pid, 0)
        # Kill everything the example left running, then reap it.
        for other in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(other, signal.SIGKILL)
        time.sleep(0)
        _reap_orphans()
    if hung:
        return ("hang", "", f"no answer within {WATCHDOG} s")
    if os.WIFSIGNALED(status):
        return ("crash", signal.Signals(os.WTERMSIG(status)).name, "the interpreter died")
    if not chunks:
        return ("crash", f"exit {os.waitstatus_to_exitcode(status)}", "no report")
    verdict, name, message = pickle.loads(b"".join(chunks))
    return (str(verdict), str(name), str(message))


def _children() -> list[int]:
    out = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def judge(verdict: str, name: str, message: str) -> str | None:
    """Return what is wrong with one outcome, or None when it is acceptable."""
    if verdict == "ok":
        return None
    if verdict == "typed":
        if not message.strip():
            return f"{name} with an empty message"
        if "\n" in message:
            return f"{name} with a multi-line message: {message!r}"
        return None
    return f"{verdict}: {name}: {message}"


def run_examples(
    target: Target, max_examples: int, seed: int
) -> dict[str, Any]:  # runs inside the sandbox
    """Run hypothesis over *target* (inside the sandbox); return the tally and any problems."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    tally: Counter[str] = Counter()
    problems: list[str] = []

    @hseed(seed)
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(target.args)
    def prop(drawn: Any) -> None:
        verdict, name, message = run_one(target, drawn)
        tally[f"{verdict} {name}".strip()] += 1
        bad = judge(verdict, name, message)
        if bad is not None:
            problems.append(f"{target.name}({drawn!r}) -> {bad}")
            raise AssertionError(bad)

    try:
        prop()
    except AssertionError:
        pass  # the shrunk example is the last problem recorded
    except Exception as exc:  # hypothesis itself gave up (e.g. Flaky)
        problems.append(
            f"{target.name}: hypothesis: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        )
    return {"tally": dict(tally), "problems": problems}
