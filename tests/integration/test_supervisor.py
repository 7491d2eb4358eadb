"""The prototype supervisor (nsprim._supervisor): die-with-parent for posix_spawn'd programs.

Real processes, real namespaces, real SIGKILLs. Tests that need the caller
to die run the caller as a separate Python process that prints the pids
it wants checked; the others use this process and shut the supervisor down
afterwards (the leak guard sees no fd and no child left: the supervisor is
a double fork, not our child). No timed assertions: a deadline only bounds
how long we wait for something that must happen.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsprim import _supervisor as S
from nsprim import syscalls
from nsprim._sys import consts as C

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def sup() -> Iterator[object]:
    yield S
    S.shutdown()


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """True once *pid* has exited (pidfd readable), waiting at most *timeout* s."""
    try:
        fd = syscalls.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    return not _gone(pid, 0)


def _caller(code: str) -> subprocess.Popen[str]:
    """Run *code* as a separate caller process (nsprim importable), stdout piped."""
    prelude = f"import sys; sys.path.insert(0, {ROOT!r})\n"
    return subprocess.Popen(
        [sys.executable, "-c", prelude + code], stdout=subprocess.PIPE, text=True
    )


def _read_pids(p: subprocess.Popen[str], n: int) -> list[int]:
    assert p.stdout is not None
    pids = []
    for _ in range(n):
        line = p.stdout.readline()
        assert line, f"caller ended early (status {p.wait()})"
        pids.append(int(line))
    return pids


def _kill_all(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- exit status, signals, stdio, fds, cwd, namespaces -------------------------------------


def test_exit_status_and_signals_through_the_pidfd(sup: object) -> None:
    assert S.spawn([b"/bin/true"]).wait() == 0
    assert S.spawn([b"/bin/sh", b"-c", b"exit 7"]).wait() == 7
    p = S.spawn([b"/bin/sleep", b"600"])
    assert p.poll() is None
    assert p.pidfd >= 0
    with pytest.raises(S.TimeoutExpired):
        p.wait(timeout=0.05)
    p.send_signal(signal.SIGTERM)
    assert p.wait() == -signal.SIGTERM
    assert p.returncode == -signal.SIGTERM and p.pidfd == -1
    p.kill()  # a no-op once reaped


def test_stdio_pass_fds_and_closed_fds(sup: object) -> None:
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    keep_r, keep_w = os.pipe()
    os.set_inheritable(keep_w, False)  # the program gets it anyway: pass_fds
    stray = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(stray, True)  # inheritable here, but not passed: closed there
    script = (
        b'read line; echo "out:$line"; echo err >&2; echo kept > /proc/self/fd/%d; '
        b'ls /proc/self/fd | sort -n | tr "\\n" " "' % keep_w
    )
    try:
        p = S.spawn([b"/bin/sh", b"-c", script], stdio=(r_in, w_out, w_err), pass_fds=(keep_w,))
        for fd in (r_in, w_out, w_err, keep_w):
            os.close(fd)
        os.write(w_in, b"hello\n")
        os.close(w_in)
        assert p.wait() == 0
        out = os.read(r_out, 4096).decode()
        assert out.startswith("out:hello\n")
        # 0, 1, 2, the passed fd and the one ls opens; not the stray one.
        fds = out.split("\n", 1)[1].split()
        assert str(keep_w) in fds and str(stray) not in fds
        assert os.read(r_err, 100) == b"err\n"
        assert os.read(keep_r, 100) == b"kept\n"
    finally:
        for fd in (r_out, r_err, keep_r, stray):
            os.close(fd)


def test_cwd_umask_and_env_are_the_callers_at_request_time(sup: object, tmp_path: Path) -> None:
    S.usable()  # the supervisor starts here, in the old cwd
    r, w = os.pipe()
    old = os.getcwd()
    mask = os.umask(0o027)
    try:
        os.chdir(tmp_path)
        p = S.spawn(
            [b"/bin/sh", b"-c", b"pwd; umask; echo $NSPRIM_T"],
            env={b"NSPRIM_T": b"yes", b"PATH": b"/usr/bin:/bin"},
            stdio=(-1, w, -1),
        )
    finally:
        os.chdir(old)
        os.umask(mask)
        os.close(w)
    assert p.wait() == 0
    assert os.read(r, 4096).decode().split() == [str(tmp_path), "0027", "yes"]
    os.close(r)


def test_thread_scoped_namespaces_and_pid_1(sup: object) -> None:
    r, w = os.pipe()
    flags = C.CLONE_NEWUTS | C.CLONE_NEWPID | C.CLONE_NEWNET | C.CLONE_NEWIPC | C.CLONE_NEWCGROUP
    p = S.spawn(
        [b"/bin/sh", b"-c", b"hostname; echo $$; readlink /proc/self/ns/net"],
        flags=flags | C.CLONE_NEWNS,
        hostname=b"supervised",
        propagation=C.MS_PRIVATE,
        stdio=(-1, w, -1),
    )
    os.close(w)
    assert p.wait() == 0
    host, pid, net = os.read(r, 4096).decode().split()
    os.close(r)
    assert host == "supervised" and pid == "1"
    assert net != os.readlink("/proc/self/ns/net")
    assert os.uname().nodename != "supervised"
    # Fresh namespaces every time: a second pid namespace gives PID 1 again.
    r, w = os.pipe()
    assert S.spawn([b"/bin/sh", b"-c", b"echo $$"], flags=C.CLONE_NEWPID, stdio=(-1, w, -1)).wait() == 0
    os.close(w)
    assert os.read(r, 100) == b"1\n"
    os.close(r)


def test_errors_come_back_typed_with_the_step(sup: object) -> None:
    with pytest.raises(FileNotFoundError) as exc:
        S.spawn([b"/nonexistent/program"])
    assert exc.value.step == "execve"  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        S.spawn([b"/bin/true"], flags=C.CLONE_NEWUSER)
    assert not S.usable(C.CLONE_NEWUSER) and not S.usable(C.CLONE_NEWTIME)
    with pytest.raises(OSError) as exc:
        S.spawn([b"/bin/true"], cwd=b"/nonexistent/dir")
    assert exc.value.step == "chdir"  # type: ignore[attr-defined]
    assert S.spawn([b"/bin/true"]).wait() == 0  # and the supervisor still serves


def test_usable_notices_a_thread_in_other_namespaces(sup: object) -> None:
    assert S.usable(C.CLONE_NEWUTS)
    seen: list[bool] = []

    def other_ns() -> None:
        syscalls.unshare(C.CLONE_NEWUTS)  # this thread only
        seen.append(S.usable(0))

    t = threading.Thread(target=other_ns)
    t.start()
    t.join()
    assert seen == [False]


def test_no_zombie_when_nobody_waits(sup: object) -> None:
    p = S.spawn([b"/bin/true"])
    pid = p.pid
    p.close()  # drop it without waiting
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}"), "the supervisor left a zombie"


def test_many_threads_spawning_at_once(sup: object) -> None:
    results: dict[tuple[int, int], int] = {}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(4):
                code = (t * 4 + i) % 100
                flags = C.CLONE_NEWUTS if i % 2 else 0
                p = S.spawn([b"/bin/sh", b"-c", b"exit %d" % code], flags=flags)
                results[(t, i)] = p.wait() - code
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 48 and set(results.values()) == {0}


# --- die with the caller's process -------------------------------------------------------------

_SPAWN_FROM_THREAD = """
import os, threading, time
from nsprim import _supervisor as S
NULL = os.open(os.devnull, os.O_WRONLY)  # the programs must not hold our stdout pipe
box = []
t = threading.Thread(target=lambda: box.append(S.spawn([b"/bin/sleep", b"600"], flags={flags}, stdio=(-1, NULL, -1))))
t.start(); t.join()
time.sleep(0.2)  # the spawning thread is gone; the program must live on
print(box[0].pid if box[0].poll() is None else -1, flush=True)
print(S.supervisor_pid(), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("flags", [0, C.CLONE_NEWPID | C.CLONE_NEWUTS])
def test_program_outlives_its_thread_and_dies_with_the_process(flags: int) -> None:
    caller = _caller(_SPAWN_FROM_THREAD.format(flags=flags))
    pids: list[int] = []
    try:
        pids = _read_pids(caller, 2)
        child, supervisor = pids
        assert child > 0, "the program died with the thread that spawned it"
        assert _alive(child) and _alive(supervisor)
        caller.kill()
        caller.wait()
        assert _gone(child), "the program survived the SIGKILL of its caller"
        assert _gone(supervisor), "the supervisor outlived its caller"
    finally:
        caller.kill()
        caller.wait()
        _kill_all(*pids)


_WATCH = """
import asyncio, os, threading, time
from concurrent.futures import ThreadPoolExecutor
import nsprim
from nsprim import _supervisor as S

def start():
    p = nsprim.spawn(["sleep", "600"], namespaces=["uts"], die_with_parent=False, stdout=nsprim.DEVNULL)
    S.watch(p.pidfd, owner=p)
    return p

procs = [start()]  # the main thread
box = []
t = threading.Thread(target=lambda: box.append(start())); t.start(); t.join()
procs += box  # a plain thread, gone by now
with ThreadPoolExecutor(2) as pool:
    procs.append(pool.submit(start).result())  # a pool worker, shut down below
async def main():
    return await asyncio.to_thread(start)
procs.append(asyncio.run(main()))  # asyncio's default executor, closed by run()
time.sleep(0.2)  # every spawning thread but the main one has ended
for p in procs:
    print(p.pid if p.poll() is None else -1, flush=True)
{end}
"""


@pytest.mark.parametrize("end", ["time.sleep(600)", "raise SystemExit(0)"])
def test_watched_children_of_the_fast_path_die_with_the_process(end: str) -> None:
    caller = _caller(_WATCH.format(end=end))
    pids: list[int] = []
    try:
        pids = _read_pids(caller, 4)
        assert all(pid > 0 for pid in pids), "a program died with the thread that spawned it"
        if "sleep" in end:
            caller.kill()
        caller.wait()
        for pid, where in zip(pids, ("main thread", "thread", "pool worker", "to_thread")):
            assert _gone(pid), f"the program spawned from the {where} survived its caller"
    finally:
        caller.kill()
        caller.wait()
        _kill_all(*pids)


_FORK = """
import os, time
from nsprim import _supervisor as S
NULL = os.open(os.devnull, os.O_WRONLY)  # the programs must not hold our stdout pipe
a = S.spawn([b"/bin/sleep", b"600"], stdio=(-1, NULL, -1))
print(a.pid, flush=True); print(S.supervisor_pid(), flush=True)
pid = os.fork()
if pid == 0:
    b = S.spawn([b"/bin/sleep", b"600"], stdio=(-1, NULL, -1))
    print(b.pid, flush=True); print(S.supervisor_pid(), flush=True)
    assert S.spawn([b"/bin/sh", b"-c", b"exit 5"]).wait() == 5
    print(os.getpid(), flush=True)
    time.sleep(600)
time.sleep(600)
"""


def test_fork_of_the_caller_gets_its_own_supervisor() -> None:
    caller = _caller(_FORK)
    pids: list[int] = []
    try:
        pids = _read_pids(caller, 5)
        a, sup_a, b, sup_b, forked = pids
        assert sup_a != sup_b
        os.kill(forked, signal.SIGKILL)  # the forked caller dies: only its program goes
        assert _gone(b) and _gone(sup_b)
        assert _alive(a) and _alive(sup_a)
        caller.kill()
        caller.wait()
        assert _gone(a) and _gone(sup_a)
    finally:
        caller.kill()
        caller.wait()
        _kill_all(*pids)


def test_supervisor_killed_by_someone_else(sup: object) -> None:
    p = S.spawn([b"/bin/sleep", b"600"])
    first = S.supervisor_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    # Its program can no longer be waited for nor die with us: it is killed,
    # and the loss is reported instead of an invented status.
    with pytest.raises(S.SupervisorError):
        p.wait()
    assert _gone(p.pid)
    # The next request starts a new supervisor.
    assert S.spawn([b"/bin/sh", b"-c", b"exit 4"]).wait() == 4
    assert S.supervisor_pid() not in (None, first)


def test_caller_closing_its_end_lets_the_supervisor_finish(sup: object) -> None:
    p = S.spawn([b"/bin/sleep", b"600"])
    supervisor = S.supervisor_pid()
    assert supervisor is not None
    S.shutdown()  # as after an exec of the caller: no more requests
    assert _alive(supervisor)  # it still holds a running program
    p.kill()
    assert p.wait() == -signal.SIGKILL
    assert _gone(supervisor)


_DIE_AT_ONCE = """
import os, signal
import nsprim
from nsprim import _supervisor as S
p = nsprim.spawn(["sleep", "600"], die_with_parent=False, stdout=nsprim.DEVNULL)
S.watch(p.pidfd)  # the supervisor is still starting: the request waits in the socket
print(p.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_caller_dead_before_its_supervisor_is_up() -> None:
    # The supervisor finds the caller gone at start; what was queued still counts
    # (the kernel reports ECONNRESET for the unread hello first).
    caller = _caller(_DIE_AT_ONCE)
    pids: list[int] = []
    try:
        pids = _read_pids(caller, 1)
        caller.wait()
        assert _gone(pids[0]), "a child watched just before the caller died survived it"
    finally:
        caller.kill()
        caller.wait()
        _kill_all(*pids)


_REWATCH = """
import os, signal
import nsprim
from nsprim import _supervisor as S
a = nsprim.spawn(["sleep", "600"], die_with_parent=False, stdout=nsprim.DEVNULL)
S.watch(a.pidfd, owner=a)
first = S.supervisor_pid()
os.kill(first, signal.SIGKILL)  # someone else kills the supervisor
import select
fd = os.pidfd_open(first); select.select([fd], [], []); os.close(fd)
b = nsprim.spawn(["sleep", "600"], die_with_parent=False, stdout=nsprim.DEVNULL)
S.watch(b.pidfd, owner=b)  # starts a new supervisor, which takes `a` over too
print(a.pid, flush=True); print(b.pid, flush=True); print(S.supervisor_pid(), flush=True)
import time; time.sleep(600)
"""


def test_a_new_supervisor_takes_over_the_watched_children_of_a_killed_one() -> None:
    caller = _caller(_REWATCH)
    pids: list[int] = []
    try:
        pids = _read_pids(caller, 3)
        a, b, second = pids
        assert _alive(a) and _alive(b) and _alive(second)
        caller.kill()
        caller.wait()
        assert _gone(b), "the child watched by the new supervisor survived"
        assert _gone(a), "the child of the killed supervisor was not taken over"
    finally:
        caller.kill()
        caller.wait()
        _kill_all(*pids)


def test_watched_processes_that_exit_are_forgotten(sup: object) -> None:
    import nsprim

    for _ in range(40):
        with nsprim.spawn(["/bin/true"], die_with_parent=False) as p:
            S.watch(p.pidfd)
            assert p.wait() == 0
    supervisor = S.supervisor_pid()
    assert supervisor is not None
    # The next batch prunes what has exited: its fds come back to a handful.
    deadline = time.monotonic() + 10
    count = len(os.listdir(f"/proc/{supervisor}/fd"))
    while count > 12 and time.monotonic() < deadline:
        with nsprim.spawn(["/bin/true"], die_with_parent=False) as p:
            S.watch(p.pidfd)
            p.wait()
        time.sleep(0.05)
        count = len(os.listdir(f"/proc/{supervisor}/fd"))
    assert count <= 12, f"the supervisor still holds {count} fds"


# --- nsprim.spawn's default (die_with_parent=True) on the fast path --------------------------

_DEFAULT_FROM_THREADS = """
import os, threading, time
import nsprim
from nsprim import _supervisor as S
calls = []
real = os.posix_spawn
def counted(*a, **k):
    calls.append(1)
    return real(*a, **k)
os.posix_spawn = counted
first = nsprim.spawn(["sleep", "600"], namespaces=["uts"], stdout=nsprim.DEVNULL)  # the first: the launcher's fork
assert not calls and S.supervisor_pid() is None, "a one-shot spawn started the supervisor"
box = []
t = threading.Thread(target=lambda: box.append(nsprim.spawn(["sleep", "600"], namespaces=["uts"], stdout=nsprim.DEVNULL)))
t.start(); t.join()
assert calls and S.supervisor_pid() is not None, "the second spawn did not take the fast path"
time.sleep(0.2)  # the spawning thread is gone
second = box[0]
assert second.poll() is None, "the program died with its thread"
assert os.waitid(os.P_PID, second.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None  # our child
print(first.pid, flush=True); print(second.pid, flush=True)
time.sleep(600)
"""


def test_default_spawn_rides_the_fast_path_and_dies_with_the_process() -> None:
    caller = _caller(_DEFAULT_FROM_THREADS)
    pids: list[int] = []
    try:
        pids = _read_pids(caller, 2)
        assert all(_alive(p) for p in pids)
        caller.kill()
        caller.wait()
        assert _gone(pids[0]), "the launcher's child survived its caller"
        assert _gone(pids[1]), "the watched fast-path child survived its caller"
    finally:
        caller.kill()
        caller.wait()
        _kill_all(*pids)


def test_default_spawn_falls_back_to_the_fork_path_without_a_supervisor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nsprim

    def refused(*a: object, **k: object) -> None:
        raise S.SupervisorError("no supervisor here")

    # No supervisor can be started: want_watch() finds out before anything
    # is spawned, so the fork path starts the program, once.
    monkeypatch.setattr(S, "_get", refused)
    monkeypatch.setattr(S, "_dwp_spawns", 5)
    spawned: list[int] = []
    real = os.posix_spawn

    def counted(*a: object, **k: object) -> int:
        pid = real(*a, **k)  # type: ignore[arg-type]
        spawned.append(pid)
        return pid

    monkeypatch.setattr(os, "posix_spawn", counted)
    r = nsprim.run(["sh", "-c", "exit 3"], namespaces=["uts"])
    assert r.returncode == 3
    assert spawned == []  # never posix_spawned first (it would have run twice)
    assert S.want_watch() is False


def test_one_shot_command_never_starts_a_supervisor() -> None:
    code = (
        "from nsprim.cli import main\n"
        "from nsprim import _supervisor as S\n"
        "try:\n    main(['run', '-u', '--', '/bin/true'])\nexcept SystemExit:\n    pass\n"
        "print(S.supervisor_pid())\n"
    )
    caller = _caller(code)
    out, _ = caller.communicate(timeout=60)
    assert out.strip() == "None"
