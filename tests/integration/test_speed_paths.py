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
    # Namespaces, or a step (cwd is the thread's own with CLONE_FS): a thread.
    r = process.run(["pwd"], cwd=tmp_path, die_with_parent=False, capture_output=True)
    assert r.stdout.decode().strip() == str(tmp_path) and os.getcwd() != str(tmp_path)
    process.run(["true"], namespaces=["uts"], die_with_parent=False, check=True)
    assert started == [1, 1]


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
