"""Time ``nsprim ls`` against util-linux ``lsns`` with a few thousand processes, in one run.

Spawns ``--procs`` sleeping processes (``/bin/sleep``, pdeathsig-tied) inside a
throwaway pid namespace, every ``--distinct``-th of them in its own UTS and IPC
namespace so there are many namespaces to report, then times, each
``--repeat`` times, median reported:

* ``lsns`` and ``lsns -J`` (the command);
* ``python -m nsprim ls`` and ``--json`` (the command: interpreter start-up included);
* ``nsprim.listing.scan()`` in-process (the library call alone).

The ratios divide by the matching lsns time. Every spawned process dies with
the pid namespace's init, which is killed (and the holder reaped) on the way
out, whatever happens. Needs root (or a user namespace) for the pid namespace.

Usage: ``.venv/bin/python scripts/bench_ls.py [--procs 2000] [--repeat 5] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Callable

from nsprim import listing
from nsprim import syscalls as S
from nsprim.flags import CloneFlags


def _read_line(fd: int, timeout: float) -> str:
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise TimeoutError(f"the process farm did not report within {timeout} s")
        b = os.read(fd, 4096)
        if not b:
            raise RuntimeError("the process farm exited before it was ready")
        buf += b
    return buf.decode().strip()


def _farm(n: int, distinct: int, w: int) -> None:
    """pid 1 of the throwaway pid namespace: start *n* sleepers, report, then wait."""
    S.set_pdeathsig(signal.SIGKILL)
    sleep = shutil.which("sleep") or "/bin/sleep"
    for i in range(n):
        # A CLOEXEC pipe per child: EOF means it has unshared and exec'd, so
        # the farm is complete (every namespace exists) when "ready" is sent.
        r, cw = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                S.set_pdeathsig(signal.SIGKILL)
                if distinct and i % distinct == 0:
                    S.unshare(int(CloneFlags.NEWUTS | CloneFlags.NEWIPC))
                os.execv(sleep, ["sleep", "3600"])
            finally:
                os._exit(127)
        os.close(cw)
        os.read(r, 1)
        os.close(r)
    os.write(w, f"{n}\n".encode())
    while True:
        with contextlib.suppress(ChildProcessError):
            os.wait()
        signal.pause()


@contextlib.contextmanager
def process_farm(n: int, distinct: int, timeout: float = 120.0) -> Iterator[int]:
    """Run *n* sleepers in a throwaway pid namespace; yield the host pid of its holder."""
    r, w = os.pipe()
    holder = os.fork()
    if holder == 0:  # pragma: no cover - child
        try:
            os.close(r)
            S.set_pdeathsig(signal.SIGKILL)
            S.unshare(int(CloneFlags.NEWPID))
            init = os.fork()
            if init == 0:
                _farm(n, distinct, w)
            os.close(w)
            os.waitpid(init, 0)
        finally:
            os._exit(0)
    os.close(w)
    try:
        _read_line(r, timeout)
        yield holder
    finally:
        os.close(r)
        # Killing the holder kills init by pdeathsig, and the kernel then
        # kills every process of the pid namespace.
        with contextlib.suppress(ProcessLookupError):
            os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)


def _count(entries: list[dict[str, object]]) -> int:
    # lsns -J nests namespaces under their lowest pid's parent's ("children").
    n = 0
    for e in entries:
        kids = e.get("children")
        n += 1 + (_count(kids) if isinstance(kids, list) else 0)
    return n


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _command(argv: list[str]) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, timeout=120, check=True)

    return run


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (or JSON); exit 2 without lsns."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=2000, help="sleeping processes (default 2000)")
    ap.add_argument("--distinct", type=int, default=20, help="every Nth gets own uts+ipc ns")
    ap.add_argument("--repeat", type=int, default=5, help="runs per tool (median)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    lsns = shutil.which("lsns")
    if lsns is None:
        print("bench_ls: util-linux lsns is not installed", file=sys.stderr)
        return 2
    if args.procs < 1 or args.repeat < 1:
        print("bench_ls: --procs and --repeat must be positive", file=sys.stderr)
        return 2
    nsprim_cmd = [sys.executable, "-m", "nsprim", "ls"]
    with process_farm(args.procs, args.distinct):
        found = listing.scan()
        out = subprocess.run([lsns, "-J"], capture_output=True, timeout=120, check=True).stdout
        lsns_count = _count(json.loads(out)["namespaces"])
        rows = {
            "lsns": _median(_command([lsns]), args.repeat),
            "lsns -J": _median(_command([lsns, "-J"]), args.repeat),
            "nsprim ls": _median(_command(nsprim_cmd), args.repeat),
            "nsprim ls --json": _median(_command([*nsprim_cmd, "--json"]), args.repeat),
            "listing.scan()": _median(listing.scan, args.repeat),
            "python -c pass": _median(_command([sys.executable, "-c", "pass"]), args.repeat),
        }
    base = {
        "lsns": rows["lsns"],
        "lsns -J": rows["lsns -J"],
        "nsprim ls": rows["lsns"],
        "nsprim ls --json": rows["lsns -J"],
        "listing.scan()": rows["lsns -J"],
        "python -c pass": rows["lsns"],
    }
    result = {
        "processes": found.scanned,
        "spawned": args.procs,
        "namespaces": {"nsprim": len(found.namespaces), "lsns": lsns_count},
        "repeat": args.repeat,
        "seconds": rows,
        "ratio_vs_lsns": {k: rows[k] / base[k] for k in rows},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{found.scanned} processes scanned ({args.procs} spawned); namespaces: "
        f"nsprim {len(found.namespaces)}, lsns {lsns_count}; median of {args.repeat}"
    )
    for name, sec in rows.items():
        print(f"  {name:<18} {sec * 1000:9.1f} ms   x{result['ratio_vs_lsns'][name]:.2f} vs lsns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
