#!/usr/bin/env python3
"""Benchmark: nsprim.aio's throughput, and the pytest marker's per-test overhead.

1. **asyncio throughput.** N short commands (``/bin/true``) in new namespaces
   with at most C running at once, measured in the same run with:

   * ``nsprim.aio.arun`` under an ``asyncio.Semaphore(C)`` (one thread; exits
     awaited on pidfds);
   * ``nsprim.run`` from a ``ThreadPoolExecutor(C)`` (the baseline: one
     blocked thread per running child);
   * ``asyncio.create_subprocess_exec`` without namespaces (the stdlib's
     floor for the event-loop plumbing);
   * ``nsprim.aio.acall`` of a trivial function against ``nsprim.call``
     from the same thread pool.

   Prints commands per second for each and the ratio arun / thread pool,
   best of *repeat* rounds, and the most threads alive during each.
   ``nsprim.run`` from threads can stall: with several Python threads a
   clone3 child may inherit a GIL drop request before CPython's after-fork
   hook runs (the 60 s setup timeout then ends it); the arun column has one
   thread and no such risk.

2. **marker overhead.** A generated test module with M plain tests and M
   tests marked ``@pytest.mark.namespaces(...)`` (trivial bodies) is run by
   pytest in a subprocess; the JUnit XML gives each test's time; the
   overhead is median(marked) - median(plain), per test.

Usage: python scripts/bench_aio.py [-n 400] [-c 32] [--types uts] [-m 40] [--json]
Needs root for namespaces without a user namespace, or ``--types user,net``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import nsprim
from nsprim import aio

TRUE = "/bin/true"


# Peak thread counts are sampled from inside each contender, never by a
# watcher thread: a spinning thread is exactly what clone3's fork window must
# not see (see the note in main()).
_peak = 0
# die_with_parent=False by default for both: spawn's posix_spawn fast path (no
# Python runs in the child), the only path that is safe from many threads.
_DWP = False


def _sample() -> None:
    global _peak
    _peak = max(_peak, threading.active_count())


def bench_arun(n: int, c: int, types: list[str], map_root: bool) -> None:
    async def main() -> None:
        sem = asyncio.Semaphore(c)

        async def one() -> None:
            async with sem:
                r = await aio.arun(
                    [TRUE], namespaces=types, map_root=map_root, die_with_parent=_DWP
                )
                _sample()
                assert r.returncode == 0

        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())


def bench_threads(n: int, c: int, types: list[str], map_root: bool) -> None:
    def one(_: int) -> None:
        r = nsprim.run([TRUE], namespaces=types, map_root=map_root, die_with_parent=_DWP)
        assert r.returncode == 0

    with ThreadPoolExecutor(c) as pool:
        list(pool.map(one, range(n)))
        _sample()


def bench_stdlib(n: int, c: int) -> None:
    async def main() -> None:
        sem = asyncio.Semaphore(c)

        async def one() -> None:
            async with sem:
                p = await asyncio.create_subprocess_exec(TRUE)
                assert await p.wait() == 0
                _sample()

        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())


def _answer() -> int:
    return 42


def bench_acall(n: int, c: int, types: list[str], map_root: bool) -> None:
    async def main() -> None:
        sem = asyncio.Semaphore(c)

        async def one() -> None:
            async with sem:
                assert await aio.acall(_answer, namespaces=types, map_root=map_root) == 42
                _sample()

        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())


def bench_call_threads(n: int, c: int, types: list[str], map_root: bool) -> None:
    def one(_: int) -> None:
        assert nsprim.call(_answer, namespaces=types, map_root=map_root) == 42

    with ThreadPoolExecutor(c) as pool:
        list(pool.map(one, range(n)))
        _sample()


def _fds() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, int]:
    global _peak
    _peak = 0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, _peak


MODULE = """
import pytest

MARK = pytest.mark.namespaces({types})

{tests}
"""


def bench_marker(m: int, types: list[str]) -> dict[str, float]:
    """Median per-test time (ms) of plain vs marked trivial tests, from pytest's JUnit XML."""
    tests = []
    for i in range(m):
        tests.append(f"def test_plain_{i}():\n    assert True\n")
        tests.append(f"@MARK\ndef test_marked_{i}():\n    assert True\n")
    with tempfile.TemporaryDirectory() as tmp:
        mod = Path(tmp) / "test_bench.py"
        mod.write_text(
            MODULE.format(types=", ".join(repr(t) for t in types), tests="\n".join(tests))
        )
        xml = Path(tmp) / "out.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
             str(mod)],
            cwd=tmp, check=True, capture_output=True,
        )  # fmt: skip
        times: dict[str, list[float]] = {"plain": [], "marked": []}
        for case in ET.parse(xml).getroot().iter("testcase"):
            kind = "marked" if "marked" in case.get("name", "") else "plain"
            times[kind].append(float(case.get("time", "0")) * 1000)
    plain = statistics.median(times["plain"])
    marked = statistics.median(times["marked"])
    return {"plain_ms": plain, "marked_ms": marked, "overhead_ms": marked - plain}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=400, help="commands per round (default 400)")
    parser.add_argument("-c", type=int, default=32, help="at most C running at once (default 32)")
    parser.add_argument("--types", default="uts", help="namespace types, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("-m", type=int, default=40, help="tests of each kind for the marker")
    parser.add_argument(
        "--die-with-parent",
        action="store_true",
        help="spawn with die_with_parent=True (the clone3 path; may stall in threads)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    global _DWP
    _DWP = args.die_with_parent
    types = [t for t in args.types.split(",") if t]
    map_root = os.geteuid() != 0
    fds = _fds()

    rows: dict[str, dict[str, float]] = {}
    runs: list[tuple[str, Callable[[], None]]] = [
        ("nsprim.aio.arun", lambda: bench_arun(args.n, args.c, types, map_root)),
        ("nsprim.run in threads", lambda: bench_threads(args.n, args.c, types, map_root)),
        ("asyncio.create_subprocess_exec (no ns)", lambda: bench_stdlib(args.n, args.c)),
        ("nsprim.aio.acall", lambda: bench_acall(args.n, args.c, types, map_root)),
        ("nsprim.call in threads", lambda: bench_call_threads(args.n, args.c, types, map_root)),
    ]
    for _ in range(args.repeat):
        for name, fn in runs:  # interleaved, so load changes hit every contender
            seconds, peak = _timed(fn)
            best = rows.get(name)
            if best is None or seconds < best["seconds"]:
                rows[name] = {"seconds": seconds, "per_s": args.n / seconds, "peak_threads": peak}
    ratio = rows["nsprim.aio.arun"]["per_s"] / rows["nsprim.run in threads"]["per_s"]
    call_ratio = rows["nsprim.aio.acall"]["per_s"] / rows["nsprim.call in threads"]["per_s"]
    # The spawn supervisor's fds (one per process, started on first need) stay.
    from nsprim import _supervisor

    held = _supervisor.held_fds()
    leaked = {fd: ln for fd, ln in _fds().items() if fds.get(fd) != ln and fd not in held}
    assert not leaked, f"fds leaked: {leaked}"
    marker = bench_marker(args.m, types)
    out = {
        "n": args.n,
        "concurrency": args.c,
        "types": types,
        "map_root": map_root,
        "die_with_parent": _DWP,
        "throughput": rows,
        "arun_vs_thread_pool": ratio,
        "acall_vs_thread_pool": call_ratio,
        "marker": marker,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{args.n} x {TRUE} in namespaces {types} (map_root={map_root}, "
        f"die_with_parent={_DWP}), at most {args.c} at once"
    )
    print(f"{'':42} {'cmds/s':>8} {'seconds':>8} {'threads':>8}")
    for name, row in rows.items():
        print(f"{name:42} {row['per_s']:8.0f} {row['seconds']:8.2f} {row['peak_threads']:8d}")
    print(f"arun / thread pool throughput: {ratio:.2f}x")
    print(f"acall / thread pool throughput: {call_ratio:.2f}x")
    print(
        f"marker overhead per test ({args.m} each, namespaces {types}): "
        f"plain {marker['plain_ms']:.2f} ms, marked {marker['marked_ms']:.2f} ms, "
        f"overhead {marker['overhead_ms']:.2f} ms"
    )
    print(f"(load average {out['loadavg']:.1f} on {out['cpus']} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
