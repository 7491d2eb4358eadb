"""Thread safety: enter() moves only its own thread; spawn works from a busy multithreaded process.

Both run in a forked child (tests/forked.py), so no thread of pytest itself
is ever moved.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

import pytest
from forked import in_child

import nsprim.process as process
from nsprim.namespace import NsType

pytestmark = [pytest.mark.needs_root]

SCOPED = ("net", "uts", "ipc", "cgroup")
WATCHERS = 8
BUSY = 8


def _ids(prefix: str = "/proc/thread-self/ns") -> dict[str, tuple[int, int]]:
    out = {}
    for t in SCOPED:
        st = os.stat(f"{prefix}/{t}")
        out[t] = (st.st_dev, st.st_ino)
    return out


def _enter_one_thread() -> dict[str, Any]:
    with process.spawn(["/bin/sleep", "60"], namespaces=list(SCOPED)) as holder:
        theirs = _ids(f"/proc/{holder.pid}/ns")
        mine = _ids()
        inside = threading.Event()
        leave = threading.Event()
        seen: dict[str, Any] = {}

        def mover() -> None:
            seen["before"] = _ids()
            with process.enter(holder):
                seen["inside"] = _ids()
                inside.set()
                leave.wait(10)
            seen["after"] = _ids()

        changed: list[str] = []
        checks = [0]
        lock = threading.Lock()

        def watcher() -> None:
            inside.wait(10)
            while not leave.is_set():
                now = _ids()
                with lock:
                    checks[0] += 1
                    if now != mine:
                        changed.append(f"tid {threading.get_native_id()}: {now}")

        threads = [threading.Thread(target=watcher) for _ in range(WATCHERS)]
        t = threading.Thread(target=mover)
        for th in [*threads, t]:
            th.start()
        assert inside.wait(10), "mover never entered"
        time.sleep(0.3)
        main_inside = _ids()
        leave.set()
        for th in [*threads, t]:
            th.join(10)
        holder.kill()
    return {
        "mine": mine,
        "theirs": theirs,
        "main_inside": main_inside,
        "changed": changed,
        "checks": checks[0],
        **seen,
    }


def test_enter_in_one_thread_leaves_every_other_thread_where_it_was() -> None:
    r = in_child(_enter_one_thread, timeout=60)
    assert r["inside"] == r["theirs"], "the entering thread did not move"
    assert r["inside"] != r["mine"]  # control: the holder's namespaces really differ
    assert r["changed"] == [], r["changed"]
    assert r["checks"] > 100, r["checks"]
    assert r["main_inside"] == r["mine"]
    assert r["before"] == r["after"] == r["mine"], "the thread was not moved back"


def _spawn_while_busy() -> dict[str, Any]:
    stop = threading.Event()
    spins = [0] * BUSY

    def busy(i: int) -> None:
        data = os.urandom(1 << 20)
        while not stop.is_set():
            # Alternate pure-Python work (holds the GIL) with hashing, which
            # releases it, as numpy's kernels do.
            sum(range(2000))
            hashlib.sha256(data).digest()
            spins[i] += 1

    threads = [threading.Thread(target=busy, args=(i,)) for i in range(BUSY)]
    for th in threads:
        th.start()
    out: dict[str, Any] = {"threads": len(os.listdir("/proc/self/task"))}
    mine = {t.value: os.stat(f"/proc/self/ns/{t.value}").st_ino for t in NsType}
    try:
        for t in NsType:
            rc = process.run(["/bin/true"], namespaces=[t]).returncode
            ino = process.call(
                lambda name=t.value: os.stat(f"/proc/self/ns/{name}").st_ino, namespaces=[t]
            )
            out[t.value] = (rc, ino != mine[t.value])
    finally:
        stop.set()
        for th in threads:
            th.join(10)
    out["spins"] = min(spins)
    out["unchanged"] = mine == {t.value: os.stat(f"/proc/self/ns/{t.value}").st_ino for t in NsType}
    return out


def test_spawn_and_call_from_busy_multithreaded_process_every_type() -> None:
    r = in_child(_spawn_while_busy, timeout=120)
    assert r["threads"] >= BUSY + 1
    for t in NsType:
        assert r[t.value] == (0, True), (t.value, r[t.value])
    assert r["spins"] > 0, "a busy thread never ran"
    assert r["unchanged"], "spawning moved the caller"
