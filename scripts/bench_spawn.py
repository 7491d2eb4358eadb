#!/usr/bin/env python3
"""Benchmark: what it costs to start /bin/true in new namespaces, side by side in one run.

For each flag set (none; uts; ipc; net; mnt; pid; cgroup; user; the six
thread-scoped types together; all but user; all) it measures the wall time
of one start-and-reap of ``/bin/true`` with:

* ``nsprim.run`` as users call it (defaults, so ``die_with_parent=True``);
* ``nsprim.run(die_with_parent=False)`` (the posix_spawn fast path where
  the set allows it);
* for the sets that need the fork path (user, time): ``nsprim.run`` with
  the forker turned off (:mod:`nsprim._forker`), i.e. forked by this
  process itself, next to the default, which the forker starts;
* the prototype supervisor (:mod:`nsprim._supervisor`): ``spawn`` (the
  supervisor unshares and posix_spawns; its children die with this process)
  and ``watch`` (this process posix_spawns through the fast path and hands
  the pidfd to the supervisor), for the sets a thread can unshare;
* a C program doing ``clone3`` + ``execve`` + ``waitpid`` (the floor;
  compiled at run time with the machine's ``cc`` into a temporary folder and
  kept running as a co-process that times one start per request);
* ``subprocess.run(["unshare", ..., "/bin/true"])``, with ``--fork`` for
  the sets with pid only (the program is then in every namespace of the
  set, as with nsprim; a fork it doesn't need would slow the baseline);
* ``os.fork`` + ctypes ``unshare`` + ``execve`` (the bare Python floor).

The methods run interleaved: each round starts every method once per set, in
a shuffled order, so the noise of a shared machine falls on all of them
alike. Reported: medians, the interquartile range as a share of the median
(noise), the path each nsprim call took (fork, forker, posix_spawn from the
calling thread or from a throwaway one, supervisor: seen by counting calls,
not assumed), and the ratios the speed issue names:
default / Python floor (target <= 1.1), unshare(1) / default (>= 1), fast
path / C floor and supervisor / C floor (<= 1.3). Then ``call()`` of a
trivial function and ``enter()``/``call_in()`` round trips. ``--json``
prints one JSON object. Needs root.

Usage: python scripts/bench_spawn.py [-n 60] [--json] [--sets none,uts,...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import nsprim.process as process
from nsprim.flags import CloneFlags
from nsprim.syscalls import unshare

try:  # absent from trees older than the forker: that column and label are left out
    from nsprim import _forker as forker

    if os.path.dirname(forker.__file__ or "") != os.path.dirname(process.__file__ or ""):
        forker = None  # type: ignore[assignment]
except ImportError:  # pragma: no cover
    forker = None  # type: ignore[assignment]

from nsprim import _launch as launch  # its fast path's thread, counted for the paths column

try:  # absent from trees older than the prototype: those columns are left out
    from nsprim import _supervisor as sup

    if os.path.dirname(sup.__file__ or "") != os.path.dirname(process.__file__ or ""):
        sup = None  # type: ignore[assignment]  # an editable install's, not this tree's
except ImportError:  # pragma: no cover
    sup = None  # type: ignore[assignment]

TRUE = "/bin/true"

#: --before TREE: that tree's nsprim, loaded as the package ``nsprim_before``.
before: Any = None


def load_tree(tree: str) -> Any:
    """Import *tree*/nsprim under another name, to run it in the same rounds as this one.

    nsprim's modules import each other relatively, so the package works under
    any name; its supervisor (a separate interpreter) imports its own tree.
    """
    import importlib
    import importlib.util

    init = os.path.join(os.path.abspath(tree), "nsprim", "__init__.py")
    spec = importlib.util.spec_from_file_location(
        "nsprim_before", init, submodule_search_locations=[os.path.dirname(init)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench_spawn: no nsprim package in {tree}")
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["nsprim_before"] = pkg
    spec.loader.exec_module(pkg)
    return importlib.import_module("nsprim_before.process")


ALL = ["mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"]
THREAD = ["mnt", "uts", "ipc", "pid", "net", "cgroup"]
SETS: list[tuple[str, list[str]]] = [
    ("none", []),
    ("uts", ["uts"]),
    ("ipc", ["ipc"]),
    ("net", ["net"]),
    ("mnt", ["mnt"]),
    ("pid", ["pid"]),
    ("cgroup", ["cgroup"]),
    ("user", ["user"]),
    ("thread-scoped 6", THREAD),
    ("all but user", [t for t in ALL if t != "user"]),
    ("all", ALL),
]
_FLAG = {
    "mnt": CloneFlags.NEWNS,
    "uts": CloneFlags.NEWUTS,
    "ipc": CloneFlags.NEWIPC,
    "pid": CloneFlags.NEWPID,
    "net": CloneFlags.NEWNET,
    "user": CloneFlags.NEWUSER,
    "cgroup": CloneFlags.NEWCGROUP,
    "time": CloneFlags.NEWTIME,
}
_UNSHARE_OPT = {
    "mnt": "-m",
    "uts": "-u",
    "ipc": "-i",
    "pid": "-p",
    "net": "-n",
    "user": "-U",
    "cgroup": "-C",
    "time": "-T",
}

# One start per line of stdin ("FLAGS\n"), its time in microseconds on stdout.
C_SOURCE = r"""
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    char line[64];
    char *av[] = {"/bin/true", 0}, *ev[] = {0};
    while (fgets(line, sizeof line, stdin)) {
        struct timespec a, b;
        struct clone_args ca;
        int st;
        clock_gettime(CLOCK_MONOTONIC, &a);
        memset(&ca, 0, sizeof ca);
        ca.flags = strtoull(line, 0, 0);
        ca.exit_signal = SIGCHLD;
        long pid = syscall(SYS_clone3, &ca, sizeof ca);
        if (pid < 0) { perror("clone3"); return 1; }
        if (pid == 0) { execve(av[0], av, ev); _exit(127); }
        if (waitpid(pid, &st, 0) != pid || st != 0) { fprintf(stderr, "child failed\n"); return 1; }
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%.1f\n", (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3);
        fflush(stdout);
    }
    return 0;
}
"""


class Floor:
    """The C clone3+execve floor as a co-process: one timed start per call."""

    def __init__(self, exe: str) -> None:
        self.proc = subprocess.Popen(
            [exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def once(self, flags: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{flags:#x}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the C floor failed (clone3 refused?)")
        return float(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def build_floor(tmp: str) -> tuple[Optional[str], str]:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None, "no C compiler: the clone3+execve floor is skipped"
    src = os.path.join(tmp, "floor.c")
    exe = os.path.join(tmp, "floor")
    with open(src, "w") as f:
        f.write(C_SOURCE)
    r = subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"cc failed, floor skipped: {r.stderr.strip()[:200]}"
    return exe, ""


def fork_unshare(flags: int) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            if flags:
                unshare(flags)
            os.execv(TRUE, [TRUE])
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"fork+unshare child failed: {status}")


class PathProbe:
    """Counts os.posix_spawn, supervisor and forker requests to tell which path a call took."""

    def __init__(self) -> None:
        self.spawns = 0
        self.sup = 0
        self.forked = 0
        self._posix_spawn = os.posix_spawn
        self._sup_spawn = sup.spawn if sup is not None else None
        self._forker_request = forker._request if forker is not None else None
        self.threads = 0
        self._own_thread = getattr(launch, "_on_own_thread", None)

        def counted_thread(*a: Any, **k: Any) -> Any:
            self.threads += 1
            assert self._own_thread is not None
            return self._own_thread(*a, **k)

        if self._own_thread is not None:
            launch._on_own_thread = counted_thread

        def counted_request(*a: Any, **k: Any) -> Any:
            assert self._forker_request is not None
            got = self._forker_request(*a, **k)
            self.forked += got is not None
            return got

        if forker is not None:
            forker._request = counted_request

        def counted_spawn(*a: Any, **k: Any) -> int:
            self.spawns += 1
            return self._posix_spawn(*a, **k)

        def counted_sup(*a: Any, **k: Any) -> Any:
            self.sup += 1
            assert self._sup_spawn is not None
            return self._sup_spawn(*a, **k)

        os.posix_spawn = counted_spawn
        if sup is not None:
            sup.spawn = counted_sup

    def path(self, fn: Callable[[], object]) -> str:
        self.spawns = self.sup = self.forked = self.threads = 0
        fn()
        if self.forked:
            return "forker"
        if self.sup:
            return "supervisor"
        if self.spawns:
            # +thread: from a throwaway thread, not the calling one (nsprim._launch.fast_spawn)
            return "posix_spawn+thread" if self.threads else "posix_spawn"
        return "fork"

    def close(self) -> None:
        if self._own_thread is not None:
            launch._on_own_thread = self._own_thread
        if forker is not None and self._forker_request is not None:
            forker._request = self._forker_request
        os.posix_spawn = self._posix_spawn
        if sup is not None and self._sup_spawn is not None:
            sup.spawn = self._sup_spawn


def _stats(samples: list[float]) -> dict[str, float]:
    """Median, noise (IQR / median) and the 10th percentile, robust when the CPUs are busy."""
    q = statistics.quantiles(samples, n=4)
    d = statistics.quantiles(samples, n=10)
    med = statistics.median(samples)
    return {
        "median_us": round(med, 1),
        "iqr_pct": round(100 * (q[2] - q[0]) / med, 1),
        "p10_us": round(d[0], 1),
    }


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e6


def methods_for(types: list[str], floor: Optional[Floor]) -> dict[str, Callable[[], float]]:
    flags = 0
    for t in types:
        flags |= int(_FLAG[t])
    # --fork only where the program needs it to be in every namespace asked
    # for (pid: unshare(2) moves only the caller's children). Elsewhere
    # unshare(1) execs the program itself, as nsprim does: a fork it doesn't
    # need would slow the baseline down and flatter nsprim's ratio.
    fork = ["--fork"] if "pid" in types else []
    ucmd = ["unshare", *[_UNSHARE_OPT[t] for t in types], *fork, TRUE]
    out: dict[str, Callable[[], float]] = {
        "default": lambda: _timed(lambda: process.run([TRUE], namespaces=types, check=True)),
        "no_pdeath": lambda: _timed(
            lambda: process.run([TRUE], namespaces=types, die_with_parent=False, check=True)
        ),
        "unshare1": lambda: _timed(lambda: subprocess.run(ucmd, check=True)),
        "py_floor": lambda: _timed(lambda: fork_unshare(flags)),
    }
    if before is not None:
        out["b_default"] = lambda: _timed(lambda: before.run([TRUE], namespaces=types, check=True))
        out["b_no_pdeath"] = lambda: _timed(
            lambda: before.run([TRUE], namespaces=types, die_with_parent=False, check=True)
        )
    if floor is not None:
        out["c_floor"] = lambda: floor.once(flags)
    if forker is not None and any(t in WHY_FORK for t in types):

        def fork_path() -> None:
            forker._enabled[0] = False  # not use(False): that would stop the forker
            try:
                process.run([TRUE], namespaces=types, check=True)
            finally:
                forker._enabled[0] = True

        out["fork_path"] = lambda: _timed(fork_path)
    if sup is not None and not flags & ~sup.THREAD_FLAGS:

        def via_supervisor() -> None:
            # usable() is part of the price: an integration must check it per spawn.
            if not sup.usable(flags) or sup.spawn([TRUE.encode()], flags=flags).wait() != 0:
                raise RuntimeError("supervised /bin/true failed")

        def fast_and_watch() -> None:
            with process.spawn([TRUE], namespaces=types, die_with_parent=False) as p:
                sup.watch(p.pidfd)
                if p.wait() != 0:
                    raise RuntimeError("/bin/true failed")

        out["supervisor"] = lambda: _timed(via_supervisor)
        out["fast_watch"] = lambda: _timed(fast_and_watch)
    return out


def _warm_forker() -> None:
    """Start the forker outside the timings (it starts at a process's second fork-path spawn)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.run([TRUE], namespaces=["user"], check=True)
        h = forker._handle
        if h is not None and h.up():
            return
        time.sleep(0.02)


def bench(n: int, sets: list[tuple[str, list[str]]]) -> dict[str, Any]:
    rows = []
    if sup is not None:
        sup.usable()  # start the supervisor outside the timings (once per process)
    if forker is not None and any(t in WHY_FORK for _, ts in sets for t in ts):
        _warm_forker()
    with tempfile.TemporaryDirectory(prefix="nsprim-bench-") as tmp:
        floor_exe, note = build_floor(tmp)
        floor = Floor(floor_exe) if floor_exe else None
        try:
            table = {name: methods_for(types, floor) for name, types in sets}
            samples: dict[str, dict[str, list[float]]] = {
                name: {m: [] for m in meths} for name, meths in table.items()
            }
            jobs = [(name, m) for name, meths in table.items() for m in meths]
            for i in range(n + 2):  # two warm-up rounds
                random.shuffle(jobs)
                for name, m in jobs:
                    dt = table[name][m]()
                    if i >= 2:
                        samples[name][m].append(dt)
        finally:
            if floor is not None:
                floor.close()
    probe = PathProbe()
    try:
        for name, types in sets:
            st = {m: _stats(v) for m, v in samples[name].items()}
            med = {m: v["median_us"] for m, v in st.items()}
            low = {m: v["p10_us"] for m, v in st.items()}

            def r(a: str, b: str, med: dict[str, float] = med) -> Optional[float]:
                return round(med[a] / med[b], 2) if a in med and b in med else None

            def default(t: list[str] = types) -> None:
                process.run([TRUE], namespaces=t)

            def no_pdeath(t: list[str] = types) -> None:
                process.run([TRUE], namespaces=t, die_with_parent=False)

            rows.append(
                {
                    "set": name,
                    "types": types,
                    "paths": {"default": probe.path(default), "no_pdeath": probe.path(no_pdeath)},
                    "why_fork": [WHY_FORK[t] for t in types if t in WHY_FORK],
                    "us": st,
                    "ratios": {
                        "b_default/py_floor": r("b_default", "py_floor"),
                        "unshare1/b_default": r("unshare1", "b_default"),
                        "b_no_pdeath/c_floor": r("b_no_pdeath", "c_floor"),
                        "default/py_floor": r("default", "py_floor"),
                        "fork_path/py_floor": r("fork_path", "py_floor"),
                        "unshare1/default": r("unshare1", "default"),
                        "default/c_floor": r("default", "c_floor"),
                        "no_pdeath/c_floor": r("no_pdeath", "c_floor"),
                        "supervisor/c_floor": r("supervisor", "c_floor"),
                        "fast_watch/c_floor": r("fast_watch", "c_floor"),
                        "supervisor/default": r("supervisor", "default"),
                    },
                    "ratios_p10": {
                        k: r(k.split("/")[0], k.split("/")[1], low)
                        for k in (
                            "b_default/py_floor",
                            "unshare1/b_default",
                            "b_no_pdeath/c_floor",
                            "default/py_floor",
                            "fork_path/py_floor",
                            "unshare1/default",
                            "no_pdeath/c_floor",
                            "supervisor/c_floor",
                            "fast_watch/c_floor",
                        )
                    },
                }
            )
    finally:
        probe.close()
    extra = {
        "call_trivial_us": _stats([_timed(lambda: process.call(_nothing)) for _ in range(n)]),
        "call_trivial_pid_us": _stats(
            [_timed(lambda: process.call(_nothing, namespaces=["pid"])) for _ in range(n)]
        ),
    }
    if sup is not None:
        started: list[float] = []
        ready: list[float] = []
        for _ in range(max(5, n // 4)):
            sup.shutdown()  # the old one exits: it holds no child
            t0 = time.perf_counter()
            sup.usable()  # the caller's share: snapshot, posix_spawn, reaper thread
            t1 = time.perf_counter()
            sup.supervisor_pid()  # until its hello: python -I -S up, nsprim imported
            started.append((t1 - t0) * 1e6)
            ready.append((time.perf_counter() - t0) * 1e6)
        extra["supervisor_start_caller_us"] = _stats(started)
        extra["supervisor_start_ready_us"] = _stats(ready)
        # The share of usable() (the per-spawn check of inherited state) in
        # the supervisor column, and watch()'s share in fast+watch.
        extra["supervisor_usable_check_us"] = _stats([_timed(sup.usable) for _ in range(n)])
        with process.spawn(["sleep", "600"], die_with_parent=False) as sleeper:
            extra["supervisor_watch_us"] = _stats(
                [_timed(lambda: sup.watch(sleeper.pidfd)) for _ in range(n)]
            )
            sleeper.kill()
    with process.spawn(["sleep", "600"], namespaces=["uts", "net", "ipc", "pid", "mnt"]) as target:

        def enter_once() -> None:
            with process.enter(target, "uts", "net"):
                pass

        extra["enter_uts_net_us"] = _stats([_timed(enter_once) for _ in range(n)])
        extra["call_in_all_us"] = _stats(
            [_timed(lambda: process.call_in(target, _nothing)) for _ in range(n)]
        )
    return {
        "iterations": n,
        "nsprim": os.path.dirname(os.path.dirname(os.path.abspath(process.__file__))),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "note": note,
        "rows": rows,
        "extra": extra,
    }


def _nothing() -> None:
    return None


# --- CPU time: what each method costs the machine, steady when the CPUs are shared ------------

CPU_METHODS = ("py_floor", "unshare1", "default", "no_pdeath", "b_default", "b_no_pdeath")


def _cpu_child(method: str, types: list[str], n: int) -> None:
    """In a child interpreter: run *method* *n* times (after two warm-ups)."""
    fn = methods_for(types, None)[method]
    for _ in range(n + 2 if n else 0):
        fn()


def _rusage_children() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_bench(n: int, reps: int, sets: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """CPU seconds (user + system, the spawned programs included) per start, by method.

    Each method runs *n* times in a fresh interpreter (``--before`` passed on),
    minus that interpreter's own start-up (the same run with none), *reps*
    times interleaved; the median is reported. The C floor runs *n* starts in
    its co-process. Wall times say what a caller waits; on a machine whose
    CPUs other work shares, these say what each method costs.
    """
    here = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory(prefix="nsprim-bench-") as tmp:
        floor_exe, _ = build_floor(tmp)
        out: dict[str, Any] = {}
        for name, types in sets:
            flags = 0
            for t in types:
                flags |= int(_FLAG[t])
            methods = [m for m in CPU_METHODS if before is not None or not m.startswith("b_")]
            samples: dict[str, list[float]] = {m: [] for m in [*methods, "c_floor"]}
            for _ in range(reps):
                order = [*methods, "c_floor"]
                random.shuffle(order)
                for m in order:
                    if m == "c_floor":
                        if floor_exe is None:
                            continue
                        t0 = _rusage_children()
                        subprocess.run([floor_exe], input=f"{flags:#x}\n" * n, text=True,
                                       stdout=subprocess.DEVNULL, check=True)  # fmt: skip
                        samples[m].append((_rusage_children() - t0) / n)
                        continue
                    cost = []
                    for count in (0, n):
                        code = (
                            f"import sys; sys.path.insert(0, {os.path.dirname(here)!r}); "
                            "import bench_spawn as b; "
                            + (
                                f"b.before = b.load_tree({args_before[0]!r}); "
                                if args_before
                                else ""
                            )
                            + f"b._cpu_child({m!r}, {types!r}, {count})"
                        )
                        t0 = _rusage_children()
                        subprocess.run([sys.executable, "-c", code], check=True)
                        cost.append(_rusage_children() - t0)
                    samples[m].append((cost[1] - cost[0]) / n)
            med = {m: statistics.median(v) * 1e6 for m, v in samples.items() if v}
            out[name] = {
                "cpu_us": {m: round(v, 1) for m, v in med.items()},
                "ratios": {
                    k: round(med[a] / med[b], 2)
                    for k, a, b in (
                        ("default/py_floor", "default", "py_floor"),
                        ("b_default/py_floor", "b_default", "py_floor"),
                        ("unshare1/default", "unshare1", "default"),
                        ("no_pdeath/c_floor", "no_pdeath", "c_floor"),
                        ("b_no_pdeath/c_floor", "b_no_pdeath", "c_floor"),
                    )
                    if a in med and b in med
                },
            }
    return out


args_before: list[str] = []  # --before, for the CPU children


# Why a set can't take the posix_spawn fast path (a CLONE_VM child of a thread
# that unshared), whatever nsprim does: the kernel's rules on this machine.
WHY_FORK = {
    "user": "unshare(CLONE_NEWUSER) is refused (EINVAL) in a multithreaded process",
    "time": "copy_process() refuses a CLONE_VM child across a time namespace boundary",
}

COLUMNS = [
    ("b_default", "before run()"),
    ("b_no_pdeath", "before dwp=F"),
    ("default", "run()"),
    ("fork_path", "run() forked"),
    ("no_pdeath", "run(dwp=F)"),
    ("supervisor", "supervisor"),
    ("fast_watch", "fast+watch"),
    ("c_floor", "C clone3"),
    ("unshare1", "unshare(1)"),
    ("py_floor", "py fork"),
]
RATIOS = [
    ("b_default/py_floor", "b run/py"),
    ("unshare1/b_default", "unsh/b run"),
    ("b_no_pdeath/c_floor", "b fast/C"),
    ("default/py_floor", "run/py"),
    ("fork_path/py_floor", "forked/py"),
    ("unshare1/default", "unsh/run"),
    ("no_pdeath/c_floor", "fast/C"),
    ("supervisor/c_floor", "sup/C"),
    ("fast_watch/c_floor", "f+w/C"),
]


def table(result: dict[str, Any]) -> str:
    head = ["set", "paths (run; dwp=F)"] + [h for _, h in COLUMNS] + [h for _, h in RATIOS]
    widths = [15, 22] + [12] * len(COLUMNS) + [10] * len(RATIOS)
    lines = [" ".join(f"{h:>{w}}" for h, w in zip(head, widths))]
    for row in result["rows"]:
        cells = [row["set"], f"{row['paths']['default']}; {row['paths']['no_pdeath']}"]
        for key, _ in COLUMNS:
            s = row["us"].get(key)
            cells.append(f"{s['median_us']:.0f}±{s['iqr_pct']:.0f}%" if s else "-")
        for key, _ in RATIOS:
            v = row["ratios"][key]
            cells.append(f"{v:.2f}x" if v is not None else "-")
        lines.append(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    whys = sorted({w for row in result["rows"] for w in row.get("why_fork", [])})
    if whys:
        lines.append("fork path because: " + "; ".join(whys))
    lines.append(
        "default run() takes the fast path from a process's second die_with_parent spawn "
        "(the supervisor watches it); the first is forked by the launcher thread"
    )
    lines.append(
        "a fork-path set (user, time) is started by the forker from a process's second "
        "such spawn on; 'run() forked' is the same call with the forker off"
    )
    lines.append("")
    lines.append("the same ratios on the 10th percentiles (steadier when the CPUs are shared):")
    for row in result["rows"]:
        cells = [f"{row['set']:>15}"]
        for key, h in RATIOS:
            v = row["ratios_p10"].get(key)
            cells.append(f"{h} {v:.2f}x" if v is not None else f"{h} -")
        lines.append("  ".join(cells))
    lines.append("")
    for k, v in result["extra"].items():
        lines.append(f"{k:>22}: {v['median_us']:.0f} us ±{v['iqr_pct']:.0f}%")
    if result["note"]:
        lines.append(f"note: {result['note']}")
    lines.append(
        f"medians of {result['iterations']} interleaved rounds (us ± interquartile range as a "
        f"share of the median); kernel {result['kernel']}; {result['cpus']} cpus; "
        f"load {result['load'][0]:.1f}"
    )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("-n", "--iterations", type=int, default=60, help="rounds (default 60)")
    ap.add_argument("--sets", default="", help="comma-separated subset of the flag sets")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--cpu",
        type=int,
        default=0,
        metavar="N",
        help="instead: CPU time per start (N starts per method and set, 3 interleaved reps)",
    )
    ap.add_argument(
        "--before",
        default="",
        help="another tree (a git worktree of an older commit): its run() runs in the same "
        "interleaved rounds, for before/after ratios",
    )
    args = ap.parse_args(argv)
    global before
    if args.before:
        before = load_tree(args.before)
        args_before.append(args.before)
    if os.geteuid() != 0:
        print("bench_spawn: needs root (CAP_SYS_ADMIN for every flag set but 'user')",
              file=sys.stderr)  # fmt: skip
        return 2
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()]
    sets = [s for s in SETS if not wanted or s[0] in wanted]
    if not sets:
        print(f"bench_spawn: no such set; choose from {', '.join(n for n, _ in SETS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.cpu:
        cpu = cpu_bench(args.cpu, 3, sets)
        if args.json:
            print(json.dumps(cpu, indent=2))
        else:
            for name, row in cpu.items():
                cells = "  ".join(f"{m} {v:.0f}" for m, v in row["cpu_us"].items())
                ratios = "  ".join(f"{k} {v:.2f}x" for k, v in row["ratios"].items())
                print(f"{name:>15}: CPU us per start: {cells}\n{'':>17}{ratios}")
        return 0
    result = bench(max(4, args.iterations), sets)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
