"""Which path a spawn takes, and that the cheaper ones keep the semantics.

Not timings (those live in scripts/bench_spawn.py): which thread makes the
child, what a ^C during the hand-off does, and that nothing of the caller
changes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nsprim import _launch, process
from nsprim.namespace import Namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the fast path needs CAP_SYS_ADMIN")


def _count_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    started: list[int] = []
    real = _launch._thread.start_new_thread

    def counting(*a: Any) -> Any:
        started.append(1)
        return real(*a)

    monkeypatch.setattr(_launch._thread, "start_new_thread", counting)
    return started


def test_nothing_to_unshare_spawns_from_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started = _count_threads(monkeypatch)
    r = process.run(["sh", "-c", "echo $$"], die_with_parent=False, capture_output=True)
    assert r.returncode == 0 and int(r.stdout) > 1
    assert started == []
    # A step that needs CLONE_FS (cwd is the thread's own then), or mnt: a thread.
    r = process.run(["pwd"], cwd=tmp_path, die_with_parent=False, capture_output=True)
    assert r.stdout.decode().strip() == str(tmp_path) and os.getcwd() != str(tmp_path)
    process.run(["true"], namespaces=["mnt"], die_with_parent=False, check=True)
    assert started == [1, 1]


THREAD_SIDE = ("uts", "ipc", "net", "cgroup", "pid_for_children", "mnt")


def _mine() -> dict[str, str]:
    return {t: os.readlink(f"/proc/thread-self/ns/{t}") for t in THREAD_SIDE}


@pytest.mark.parametrize(
    "types", [["uts"], ["pid"], ["net"], ["uts", "ipc", "net", "cgroup", "pid"]], ids="+".join
)
def test_thread_scoped_sets_unshare_on_the_callers_thread_and_come_back(
    monkeypatch: pytest.MonkeyPatch, types: list[str], no_handlers: None
) -> None:
    # No thread for the types a thread can leave again with setns(2): the
    # caller's thread unshares, spawns and goes back, namespaces unchanged.
    started = _count_threads(monkeypatch)
    before = _mine()
    script = "echo $$; hostname; readlink /proc/self/ns/net /proc/self/ns/uts"
    for _ in range(2):  # twice: the pid namespace of the first is dead by then
        r = process.run(
            ["sh", "-c", script],
            namespaces=types,
            hostname="inner" if "uts" in types else None,
            die_with_parent=False,
            capture_output=True,
            check=True,
        )
        pid, host, net, uts = r.stdout.decode().split()
        assert (pid == "1") == ("pid" in types)
        assert (host == "inner") == ("uts" in types)
        assert (net != before["net"]) == ("net" in types)
        assert (uts != before["uts"]) == ("uts" in types)
    assert started == [] and _mine() == before


def test_a_caller_that_could_not_come_back_takes_a_thread() -> None:
    # Root of a new user namespace may unshare a uts namespace, but not setns
    # back into the one it is in (the initial user namespace owns that): the
    # probe says so, and the spawn takes a throwaway thread instead.
    def inside() -> tuple[int, str, bool]:
        for sig in signal.valid_signals():  # no handler of pytest's sends it to a thread
            if callable(signal.getsignal(sig)) and sig != signal.SIGINT:
                signal.signal(sig, signal.SIG_IGN)
        threads: list[int] = []
        real = _launch._thread.start_new_thread

        def counting(*a: Any) -> Any:
            threads.append(1)
            return real(*a)

        _launch._thread.start_new_thread = counting  # type: ignore[assignment]
        before = _mine()
        r = process.run(
            ["hostname"], namespaces=["uts"], hostname="inner", capture_output=True, check=True,
            die_with_parent=False,
        )  # fmt: skip
        return len(threads), r.stdout.decode().strip(), _mine() == before

    assert process.call(inside, namespaces=["user"], map_root=True) == (1, "inner", True)


MAIN_ONLY = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread only"
)


def _slow_sethostname(monkeypatch: pytest.MonkeyPatch) -> None:
    # The step a spawn runs while in its new uts namespace, made slow enough
    # for a signal to land inside it.
    from nsprim import syscalls

    real = syscalls.sethostname

    def slow(name: Any) -> None:
        time.sleep(0.3)
        real(name)

    monkeypatch.setattr(syscalls, "sethostname", slow)


@MAIN_ONLY
def test_a_handler_of_the_callers_makes_the_spawn_take_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python runs a handler on the main thread whichever thread the signal
    # reached: with one of the caller's installed, the caller's thread never
    # goes away, and the handler sees the caller's namespaces. The program a
    # ^C interrupted is killed and reaped, not left running.
    _slow_sethostname(monkeypatch)
    started = _count_threads(monkeypatch)
    before = _mine()
    seen: list[dict[str, str]] = []

    def interrupt(signum: int, frame: Any) -> None:
        seen.append(_mine())
        raise KeyboardInterrupt

    kids = f"/proc/self/task/{threading.get_native_id()}/children"
    bystander = threading.Event()  # another thread, which the signal may reach
    other = threading.Thread(target=bystander.wait)
    other.start()
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            process.spawn(["sleep", "30"], namespaces=["uts"], hostname="x", die_with_parent=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        bystander.set()
        other.join()
    assert seen == [before] and _mine() == before and started == [1]  # the throwaway
    assert Path(kids).read_text().split() == []


@MAIN_ONLY
def test_a_ctrl_c_while_the_callers_thread_is_away_unwinds_home(
    monkeypatch: pytest.MonkeyPatch, no_handlers: None
) -> None:
    # Python's own SIGINT handler only raises KeyboardInterrupt: the spawn
    # stays on the caller's thread, and the ^C, raised in the new namespaces
    # (another thread took the signal) or once home (held on this one),
    # leaves the thread home and nothing running.
    _slow_sethostname(monkeypatch)
    started = _count_threads(monkeypatch)
    before = _mine()
    kids = f"/proc/self/task/{threading.get_native_id()}/children"
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    ctrl_c = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    try:
        ctrl_c.start()
        with pytest.raises(KeyboardInterrupt):
            process.spawn(["sleep", "30"], namespaces=["uts"], hostname="x", die_with_parent=False)
    finally:
        ctrl_c.join()
        signal.signal(signal.SIGINT, old)
    assert _mine() == before and started == []
    assert Path(kids).read_text().split() == []


def test_the_spawning_thread_leaves_the_callers_namespaces_alone() -> None:
    mine = {t: Namespace.of_thread(t) for t in ("uts", "net", "mnt", "ipc", "cgroup")}
    for _ in range(3):
        process.run(["true"], namespaces=list(mine), die_with_parent=False, check=True)
    assert {t: Namespace.of_thread(t) for t in mine} == mine


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread only"
)
def test_a_signal_during_the_hand_off_waits_for_the_thread_then_raises() -> None:
    # A KeyboardInterrupt while the caller waits for the spawning thread must
    # not abandon that thread's work: it is raised once the work is done.
    events: list[str] = []

    def work() -> None:
        time.sleep(0.3)
        events.append("work done")

    def interrupt(signum: int, frame: Any) -> None:
        events.append("signal")
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            _launch._on_own_thread(work)
        events.append("raised")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert events == ["signal", "work done", "raised"]


def test_a_dropped_program_is_handed_to_the_ledger_at_once_and_reaped_later() -> None:
    # NsProcess ends with its __del__ (no weakref.finalize): dropped at once
    # (no reference cycle through a PATH search's error keeps it), a running
    # program goes to the ledger with its pidfd still open, and is reaped once
    # it exits.
    import gc

    from nsprim._ledger import LEDGER

    gc.disable()
    try:
        proc = process.spawn(["sleep", "0.2"], die_with_parent=False)  # "sleep" by PATH
        pid = proc.pid
        del proc
        held = [fd for p, fd in LEDGER._orphans if p == pid]
        assert held and held[0] is not None and not held[0].closed
    finally:
        gc.enable()
    deadline = time.monotonic() + 10
    while any(p == pid for p, _ in LEDGER._orphans) and time.monotonic() < deadline:
        time.sleep(0.05)
        LEDGER.reap_orphans()
    assert not any(p == pid for p, _ in LEDGER._orphans)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
