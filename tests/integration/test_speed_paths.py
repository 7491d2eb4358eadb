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
    # A cwd and no namespace: no setns probe tells whether the process's
    # fs_struct is its own (see _launch._fs_home), so a thread.
    r = process.run(["pwd"], cwd=tmp_path, die_with_parent=False, capture_output=True)
    assert r.stdout.decode().strip() == str(tmp_path) and os.getcwd() != str(tmp_path)
    assert started == [1]


THREAD_SIDE = ("uts", "ipc", "net", "cgroup", "pid_for_children", "mnt")


def _mine() -> dict[str, str]:
    return {t: os.readlink(f"/proc/thread-self/ns/{t}") for t in THREAD_SIDE}


def _counting_threads() -> list[int]:
    """In a call() child: count the threads fast_spawn starts (no monkeypatch there)."""
    threads: list[int] = []
    real = _launch._thread.start_new_thread

    def counting(*a: Any) -> Any:
        threads.append(1)
        return real(*a)

    _launch._thread.start_new_thread = counting  # type: ignore[assignment]
    return threads


SCRIPT = "echo $$; hostname; readlink /proc/self/ns/net /proc/self/ns/uts"


def _spawn_twice(types: list[str]) -> list[list[str]]:
    # twice: the pid namespace of the first is dead by then
    return [
        process.run(
            ["sh", "-c", SCRIPT],
            namespaces=types,
            hostname="inner" if "uts" in types else None,
            die_with_parent=False,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split()
        for _ in range(2)
    ]


def _check_outputs(types: list[str], before: dict[str, str], outs: list[list[str]]) -> None:
    for pid, host, net, uts in outs:
        assert (pid == "1") == ("pid" in types)
        assert (host == "inner") == ("uts" in types)
        assert (net != before["net"]) == ("net" in types)
        assert (uts != before["uts"]) == ("uts" in types)


SETS = pytest.mark.parametrize(
    "types", [["uts"], ["pid"], ["net"], ["uts", "ipc", "net", "cgroup", "pid"]], ids="+".join
)


@SETS
def test_a_single_threaded_caller_unshares_on_its_own_thread_and_comes_back(
    types: list[str],
) -> None:
    # A one-thread process (the usual script, `nsprim run`, a call() child):
    # no thread for the types a thread can leave again with setns(2). Its
    # main thread unshares, spawns and goes back, namespaces unchanged.
    def inside() -> tuple[int, dict[str, str], list[list[str]], dict[str, str]]:
        threads = _counting_threads()
        before = _mine()
        outs = _spawn_twice(types)
        return len(threads), before, outs, _mine()

    started, before, outs, after = process.call(inside)
    _check_outputs(types, before, outs)
    assert started == 0 and after == before


@SETS
def test_another_thread_unshares_on_itself_and_comes_back(
    monkeypatch: pytest.MonkeyPatch, types: list[str]
) -> None:
    # Not the main thread: Python runs no signal handler there, so it may go
    # away whatever other threads there are.
    started = _count_threads(monkeypatch)
    got: list[Any] = []

    def worker() -> None:
        before = _mine()
        got.extend([before, _spawn_twice(types), _mine()])

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    before, outs, after = got
    _check_outputs(types, before, outs)
    assert started == [] and after == before


@pytest.mark.parametrize("kind", ["uts", "mnt"])
def test_a_caller_that_could_not_come_back_takes_a_thread(kind: str) -> None:
    # Root of a new user namespace may unshare a uts or mount namespace, but
    # not setns back into the one it is in (the initial user namespace owns
    # that): the probe says so, and the spawn takes a throwaway thread instead.
    def inside() -> tuple[int, str, bool, str]:
        threads = _counting_threads()
        before = _mine()
        where = os.getcwd()
        r = process.run(
            ["sh", "-c", "hostname; readlink /proc/self/ns/mnt"], namespaces=[kind],
            hostname="inner" if kind == "uts" else None, capture_output=True, check=True,
            die_with_parent=False,
        )  # fmt: skip
        host, mnt = r.stdout.decode().split()
        changed = (host == "inner") if kind == "uts" else (mnt != before["mnt"])
        return len(threads), str(changed), _mine() == before, os.getcwd() == where

    got = process.call(inside, namespaces=["user"], map_root=True)
    assert got == (1, "True", True, True)


# --- mnt and cwd on the caller's thread: root and cwd restored ----------------------------------

MARKER = "nsprim-jail-marker"


def _into_a_jail(top: str) -> None:
    """In a call() child with a mount namespace of its own: chroot(2) into a tmpfs at *top*
    that has the system's programs and /proc, a marker file and a /work, and chdir to /work.

    The root is then not the mount namespace's, which a setns(2) back would give.
    """
    from nsprim import syscalls

    # Everything the spawn imports, imported while the interpreter's files are in reach.
    process.run(["true"], namespaces=["mnt"], die_with_parent=False, check=True)
    syscalls.mount("tmpfs", top, "tmpfs", 0, None)
    for name in ("usr", "bin", "sbin", "lib", "lib64", "proc"):
        here = f"/{name}"
        if os.path.islink(here):  # merged /usr
            os.symlink(os.readlink(here), f"{top}/{name}")
        elif os.path.isdir(here):
            os.mkdir(f"{top}/{name}")
            syscalls.mount(here, f"{top}/{name}", None, 0x1000 | 0x4000, None)  # MS_BIND|MS_REC
    Path(top, MARKER).touch()
    os.mkdir(f"{top}/work")
    os.chroot(top)
    os.chdir("/work")


def _fs_state() -> tuple[Any, ...]:
    root, cwd = os.stat("/"), os.stat(".")
    return (
        (root.st_dev, root.st_ino),
        (cwd.st_dev, cwd.st_ino),
        os.getcwd(),
        os.path.exists(f"/{MARKER}"),
        os.readlink("/proc/thread-self/ns/mnt"),
    )


def _mnt_spawn_in_a_jail(top: str, restore_root: bool) -> tuple[Any, ...]:
    if not restore_root:  # the control: cwd restored, root left where setns put it
        _launch._fs_back = lambda cwd, root: os.fchdir(cwd)  # type: ignore[assignment]
    _into_a_jail(top)
    threads = _counting_threads()
    before = _fs_state()
    outs = [
        process.run(
            ["sh", "-c", "readlink /proc/self/ns/mnt; pwd; ls /"], namespaces=types, cwd="/usr",
            hostname="inner" if "uts" in types else None, die_with_parent=False,
            capture_output=True, check=True,
        ).stdout.decode().split()
        for types in (["mnt"], ["mnt", "uts", "net"], ["uts"])
    ]  # fmt: skip
    return len(threads), before, outs, _fs_state()


def test_a_single_threaded_caller_takes_mnt_and_cwd_on_its_own_thread(tmp_path: Path) -> None:
    # A one-thread process unshares its mount namespace (and changes its cwd
    # for the program) on its own thread, then comes back: setns(2) into its
    # mount namespace resets root and cwd to that namespace's root, and both
    # are restored, a chroot(2) included.
    started, before, outs, after = process.call(
        _mnt_spawn_in_a_jail, str(tmp_path), True, namespaces=["mnt"]
    )
    assert started == 0
    assert before[3] is True and after == before  # still in the jail, still in /work
    for out, new_mnt in zip(outs, (True, True, False)):
        mnt, pwd, *listing = out
        assert (mnt != before[4]) == new_mnt and pwd == "/usr" and MARKER in listing


def test_a_caller_whose_root_is_not_restored_is_caught(tmp_path: Path) -> None:
    # The control of the test above: without chroot(2) back, the caller ends
    # up at the mount namespace's root, out of its jail, and the check sees it.
    started, before, _, after = process.call(
        _mnt_spawn_in_a_jail, str(tmp_path), False, namespaces=["mnt"]
    )
    assert started == 0 and before[3] is True
    assert after != before and after[3] is False


def test_mnt_from_a_thread_among_others_takes_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Root and cwd belong to every thread of a process: one that is not its
    # process's only thread never moves them, whether it is the main one or
    # not. It spawns from a throwaway thread, and the cwd stays.
    started = _count_threads(monkeypatch)
    where = os.getcwd()
    mnt = os.readlink("/proc/thread-self/ns/mnt")
    got: list[list[str]] = []

    def spawn() -> None:
        got.append(
            process.run(
                ["sh", "-c", "readlink /proc/self/ns/mnt; pwd"], namespaces=["mnt"], cwd="/usr",
                die_with_parent=False, capture_output=True, check=True,
            ).stdout.decode().split()
        )  # fmt: skip

    worker = threading.Thread(target=spawn)
    worker.start()
    worker.join()
    bystander = threading.Event()
    other = threading.Thread(target=bystander.wait)
    other.start()
    try:
        spawn()  # this thread, with company
    finally:
        bystander.set()
        other.join()
    assert started == [1, 1]
    assert all(out[0] != mnt and out[1] == "/usr" for out in got) and len(got) == 2
    assert os.getcwd() == where and os.readlink("/proc/thread-self/ns/mnt") == mnt


MAIN_ONLY = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread only"
)


def _slow_sethostname() -> None:
    # The step a spawn runs while in its new uts namespace, made slow enough
    # for a signal to land inside it (patched for the rest of the process:
    # call() children only).
    from nsprim import syscalls

    real = syscalls.sethostname

    def slow(name: Any) -> None:
        time.sleep(0.3)
        real(name)

    syscalls.sethostname = slow  # type: ignore[assignment]


def test_a_signal_while_a_single_thread_is_away_is_handled_once_home() -> None:
    # One thread, holding every signal while away: the handler (a ^C) runs
    # once the thread is home, and the program it interrupted is killed and
    # reaped, not left running.
    def inside() -> tuple[int, bool, list[bool], list[str]]:
        _slow_sethostname()
        threads = _counting_threads()
        before = _mine()
        seen: list[bool] = []

        def interrupt(signum: int, frame: Any) -> None:
            seen.append(_mine() == before)
            raise KeyboardInterrupt

        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            process.spawn(["sleep", "30"], namespaces=["uts"], hostname="x", die_with_parent=False)
        except KeyboardInterrupt:
            seen.append(True)  # raised out of the spawn
        kids = Path(f"/proc/self/task/{threading.get_native_id()}/children").read_text().split()
        return len(threads), _mine() == before, seen, kids

    assert process.call(inside) == (0, True, [True, True], [])


@MAIN_ONLY
def test_a_main_thread_among_others_takes_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python runs a handler on the main thread whichever thread took the
    # signal, so a main thread with company never goes away: the handler sees
    # the caller's namespaces, and the program a ^C interrupted is killed.
    from nsprim import syscalls

    real = syscalls.sethostname

    def slow(name: Any) -> None:
        time.sleep(0.3)
        real(name)

    monkeypatch.setattr(syscalls, "sethostname", slow)
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
    # (nsprim's forker, if an earlier test started it, is the main thread's child too)
    assert {int(p) for p in Path(kids).read_text().split()} <= process.helper_pids()


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


def test_one_thread_is_told_by_the_link_count_or_by_the_listing() -> None:
    # procfs counts a process's threads in /proc/PID/task's link count (+2);
    # a /proc that keeps no count (below 3) gets the directory listed.
    def inside() -> list[bool]:
        seen = [_launch._single_threaded()]
        other = threading.Thread(target=time.sleep, args=(0.5,))
        other.start()
        seen.append(_launch._single_threaded())
        real = os.stat

        class NoCount:
            st_nlink = 2

        def stat(path: Any, *a: Any, **k: Any) -> Any:
            return NoCount() if path == "/proc/self/task" else real(path, *a, **k)

        os.stat = stat  # type: ignore[assignment]  # (a call() child: gone after)
        seen.append(_launch._single_threaded())
        other.join()
        seen.append(_launch._single_threaded())
        return seen

    assert process.call(inside) == [True, False, False, True]
