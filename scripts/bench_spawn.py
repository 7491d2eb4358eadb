#!/usr/bin/env python3
"""Benchmark: what it costs to start /bin/true in new namespaces, side by side.

For each flag set (none; uts; ipc; pid; net; mnt; user; all but user; all)
it measures, in the same run, the median wall time of one start-and-reap of
``/bin/true`` with:

* ``nsprim.run`` (the process API as users call it, defaults included, so
  ``die_with_parent=True``, which needs the fork path), and
  ``nsprim.run(die_with_parent=False)``, which takes the posix_spawn fast
  path for uts/ipc/net/cgroup/mnt;
* a C program doing ``clone3`` + ``execve`` + ``waitpid`` in a loop (the floor;
  compiled with the machine's ``cc`` into a temporary folder; skipped with a
  note where there is no compiler);
* ``subprocess.run(["unshare", ..., "--fork", "/bin/true"])``;
* ``os.fork`` + ctypes ``unshare`` + ``execve``.

and prints medians (microseconds) with the ratios nsprim/C and
unshare(1)/nsprim, then ``call()`` of a trivial function and
``enter()``/``call_in()`` round trips. ``--json`` prints one JSON object.
Needs root (every flag set but "user" needs CAP_SYS_ADMIN).

Usage: python scripts/bench_spawn.py [-n 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
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

TRUE = "/bin/true"

ALL = ["mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"]
SETS: list[tuple[str, list[str]]] = [
    ("none", []),
    ("uts", ["uts"]),
    ("ipc", ["ipc"]),
    ("pid", ["pid"]),
    ("net", ["net"]),
    ("mnt", ["mnt"]),
    ("user", ["user"]),
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
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
int main(int argc, char **argv) {
    unsigned long long flags = strtoull(argv[1], 0, 0);
    int n = atoi(argv[2]);
    double *t = malloc(n * sizeof(double));
    char *av[] = {"/bin/true", 0}, *ev[] = {0};
    for (int i = -3; i < n; i++) { /* 3 warm-up rounds */
        struct timespec a, b;
        struct clone_args ca;
        int st;
        clock_gettime(CLOCK_MONOTONIC, &a);
        memset(&ca, 0, sizeof ca);
        ca.flags = flags;
        ca.exit_signal = SIGCHLD;
        long pid = syscall(SYS_clone3, &ca, sizeof ca);
        if (pid < 0) { perror("clone3"); return 1; }
        if (pid == 0) { execve(av[0], av, ev); _exit(127); }
        if (waitpid(pid, &st, 0) != pid || st != 0) { fprintf(stderr, "child failed\n"); return 1; }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= 0) t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    }
    qsort(t, n, sizeof(double), cmp);
    printf("%.1f\n", n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2);
    return 0;
}
"""


def median_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


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


def c_floor(exe: str, flags: int, n: int) -> float:
    out = subprocess.run([exe, hex(flags), str(n)], capture_output=True, text=True, check=True)
    return float(out.stdout)


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


def _nothing() -> None:
    return None


def bench(n: int) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="nsprim-bench-") as tmp:
        floor_exe, note = build_floor(tmp)
        for name, types in SETS:
            flags = 0
            for t in types:
                flags |= int(_FLAG[t])
            ucmd = ["unshare", *[_UNSHARE_OPT[t] for t in types], "--fork", TRUE]

            def run_default(t: list[str] = types) -> None:
                process.run([TRUE], namespaces=t, check=True)

            def run_fast(t: list[str] = types) -> None:
                # Without PR_SET_PDEATHSIG, uts/ipc/net/cgroup/mnt take the posix_spawn path.
                process.run([TRUE], namespaces=t, die_with_parent=False, check=True)

            def run_util(c: list[str] = ucmd) -> None:
                subprocess.run(c, check=True)

            def run_fork(f: int = flags) -> None:
                fork_unshare(f)

            ours = median_us(run_default, n)
            fast = median_us(run_fast, n)
            floor = c_floor(floor_exe, flags, n) if floor_exe else None
            util = median_us(run_util, n)
            forked = median_us(run_fork, n)
            rows.append(
                {
                    "set": name,
                    "nsprim_run_us": round(ours, 1),
                    "nsprim_run_nodeathsig_us": round(fast, 1),
                    "c_clone3_us": floor,
                    "unshare1_us": round(util, 1),
                    "fork_unshare_us": round(forked, 1),
                    "nsprim_over_c": round(ours / floor, 2) if floor else None,
                    "nodeathsig_over_c": round(fast / floor, 2) if floor else None,
                    "unshare1_over_nsprim": round(util / ours, 2),
                }
            )
    extra = {
        "call_trivial_us": round(median_us(lambda: process.call(_nothing), n), 1),
        "call_trivial_pid_us": round(
            median_us(lambda: process.call(_nothing, namespaces=["pid"]), n), 1
        ),
    }
    with process.spawn(["sleep", "600"], namespaces=["uts", "net", "ipc", "pid", "mnt"]) as target:

        def enter_once() -> None:
            with process.enter(target, "uts", "net"):
                pass

        extra["enter_uts_net_us"] = round(median_us(enter_once, n), 1)
        extra["call_in_all_us"] = round(median_us(lambda: process.call_in(target, _nothing), n), 1)
    return {
        "iterations": n,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "note": note,
        "rows": rows,
        "extra": extra,
    }


def table(result: dict[str, Any]) -> str:
    head = ("flag set", "nsprim.run", "run(no pdeath)", "C clone3", "unshare(1)", "fork+unshare",
            "nsprim/C", "no-pdeath/C", "unshare/nsprim")  # fmt: skip
    lines = [" | ".join(f"{h:>12}" for h in head)]
    for r in result["rows"]:
        cells = [
            r["set"],
            f"{r['nsprim_run_us']:.0f} us",
            f"{r['nsprim_run_nodeathsig_us']:.0f} us",
            f"{r['c_clone3_us']:.0f} us" if r["c_clone3_us"] else "-",
            f"{r['unshare1_us']:.0f} us",
            f"{r['fork_unshare_us']:.0f} us",
            f"{r['nsprim_over_c']:.2f}x" if r["nsprim_over_c"] else "-",
            f"{r['nodeathsig_over_c']:.2f}x" if r["nodeathsig_over_c"] else "-",
            f"{r['unshare1_over_nsprim']:.2f}x",
        ]
        lines.append(" | ".join(f"{c:>12}" for c in cells))
    lines.append("")
    for k, v in result["extra"].items():
        lines.append(f"{k:>22}: {v:.0f} us")
    if result["note"]:
        lines.append(f"note: {result['note']}")
    lines.append(f"medians of {result['iterations']} runs; kernel {result['kernel']}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("-n", "--iterations", type=int, default=60, help="runs per measurement")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_spawn: needs root (CAP_SYS_ADMIN for every flag set but 'user')",
              file=sys.stderr)  # fmt: skip
        return 2
    result = bench(max(3, args.iterations))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
