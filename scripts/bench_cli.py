#!/usr/bin/env python3
"""Benchmark: the ``nsprim`` command as a whole process against util-linux, side by side.

Every command is started with ``posix_spawn`` (stdout to /dev/null) and
reaped; one *round* runs each command once, in a shuffled order, so the
noise of a shared machine falls on every command alike. Reported: the
median wall time of ``-n`` rounds, the interquartile range as a share of
the median (the noise), and the ratios the speed issue names:

* start-up: ``nsprim run -u -- /bin/true`` against ``unshare -u /bin/true``
  and ``python -I -c pass`` (target: at most 2x the latter);
* ``nsprim enter -t PID -u -- /bin/true`` against ``nsenter -t PID -u /bin/true``;
* ``nsprim ls --json`` against ``lsns -J`` on this host as it is (target: at
  most 3x) and with N extra sleeping processes in a throwaway pid namespace
  (``--procs 100,1000,2000,5000``; target at 2,000: at most 0.6x), which
  also shows whether the scan is linear in the number of processes;
* ``--importtime``: ``python -X importtime`` of ``nsprim``, ``nsprim.cli``
  and ``nsprim.process`` (median self time of each module over the rounds).

How nsprim is started matters more than nsprim itself in a development
venv: an editable install adds a meta-path finder that every interpreter
of the venv imports at start-up (about 12 ms here, pathlib and re
included). So ``nsprim`` is measured as a wheel install would run it: the
base interpreter with ``-I``, the source tree and the venv's site-packages
put on ``sys.path`` by ``-c``, then ``nsprim.cli.main()``; and the baseline
``python -I -c pass`` uses that same base interpreter. The venv's own
console script is reported too ("dev install").

Needs root (the uts namespace for ``run``; ``nsenter``; the pid namespace
for the process farm). ``--before TREE`` runs another tree's ``nsprim`` (a
``git worktree`` of an older commit) in the same interleaved rounds, so the
before/after ratios come from one run. Usage:
``python scripts/bench_cli.py [-n 30] [--procs 100,1000,2000,5000] [--importtime]
[--before TREE] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
TRUE = "/bin/true"


PYTHON = ""  # set by main(): the interpreter both nsprim and the baseline run on


def _base_python() -> str:
    """/usr/bin/python3 where it is this Python's version, else the venv's base interpreter.

    The distribution's interpreter is what a packaged nsprim runs on; a
    pyenv or venv base may carry .pth files that cost more at start-up than
    nsprim itself (both sides would pay them, hiding the ratio).
    """
    if PYTHON:
        return PYTHON
    sys_py = "/usr/bin/python3"
    if os.path.exists(sys_py):
        ver = subprocess.run(
            [sys_py, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if ver == str(tuple(sys.version_info[:2])):
            return sys_py
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.path.exists(base) else sys.executable


BEFORE = ""  # set by main() from --before: a second tree, measured in the same rounds


def nsprim_argv(*args: str, src: str = "") -> list[str]:
    """``nsprim ARGS`` as a wheel install runs it (see the module docstring)."""
    site = sysconfig.get_paths()["purelib"]
    code = (
        f"import sys; sys.path[:0] = [{src or SRC!r}, {site!r}]; "
        "from nsprim.cli import main; sys.exit(main())"
    )
    return [_base_python(), "-I", "-c", code, *args]


def dev_argv(*args: str) -> list[str]:
    """``nsprim ARGS`` through the venv's console script (or ``-m nsprim``)."""
    script = os.path.join(os.path.dirname(sys.executable), "nsprim")
    if os.path.exists(script):
        return [script, *args]
    return [sys.executable, "-m", "nsprim", *args]


def once_us(argv: list[str]) -> float:
    """Start *argv* (stdout and stderr to /dev/null), wait, return the wall time in us."""
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
        t0 = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        dt = (time.perf_counter() - t0) * 1e6
    finally:
        os.close(null)
    if status != 0:
        r = subprocess.run(argv, capture_output=True, text=True)
        raise RuntimeError(f"{argv[:1]} ... failed ({status}): {r.stderr.strip()[-300:]}")
    return dt


def stats(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else [samples[0]] * 3
    d = statistics.quantiles(samples, n=10) if len(samples) >= 2 else [samples[0]] * 9
    med = statistics.median(samples)
    return {
        "median_us": round(med, 1),
        "iqr_pct": round(100 * (q[2] - q[0]) / med, 1),
        "p10_us": round(d[0], 1),
    }


def _retried(argv: list[str], tries: int = 3) -> float:
    # lsns (and a scan of ours) can fail when a process of another user of the
    # machine vanishes under it; such a run is not a timing: run it again.
    for i in range(tries):
        try:
            return once_us(argv)
        except RuntimeError:
            if i == tries - 1:
                raise
    raise AssertionError("unreachable")


def rounds(commands: dict[str, list[str]], n: int) -> dict[str, dict[str, float]]:
    """Median and noise of each command, interleaved round by round (2 warm-up rounds)."""
    samples: dict[str, list[float]] = {k: [] for k in commands}
    names = list(commands)
    for i in range(n + 2):
        random.shuffle(names)
        for k in names:
            dt = _retried(commands[k])
            if i >= 2:
                samples[k].append(dt)
    return {k: stats(v) for k, v in samples.items()}


def ratio(res: dict[str, dict[str, float]], a: str, b: str) -> float:
    return round(res[a]["median_us"] / res[b]["median_us"], 2)


def ratio_p10(res: dict[str, dict[str, float]], a: str, b: str) -> float:
    """The same ratio on the 10th percentiles: steadier when other work shares the CPUs."""
    return round(res[a]["p10_us"] / res[b]["p10_us"], 2)


def host_processes() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def startup(n: int) -> dict[str, Any]:
    py = _base_python()
    target = subprocess.Popen(["unshare", "-u", "sleep", "600"])
    try:
        time.sleep(0.05)  # unshare(1) has exec'd sleep in its new uts namespace
        pid = str(target.pid)
        cmds = {
            "python -I -c pass": [py, "-I", "-c", "pass"],
            "nsprim run -u -- true": nsprim_argv("run", "-u", "--", TRUE),
            "unshare -u true": ["unshare", "-u", TRUE],
            "nsprim enter -u": nsprim_argv("enter", "-t", pid, "-u", "--", TRUE),
            "nsenter -u": ["nsenter", "-t", pid, "-u", TRUE],
            "nsprim ls --json": nsprim_argv("ls", "--json"),
            "lsns -J": ["lsns", "-J"],
            "dev: nsprim run -u -- true": dev_argv("run", "-u", "--", TRUE),
            "dev: python -c pass": [sys.executable, "-c", "pass"],
        }
        if BEFORE:
            cmds["before: nsprim run -u -- true"] = nsprim_argv("run", "-u", "--", TRUE, src=BEFORE)
            cmds["before: nsprim enter -u"] = nsprim_argv(
                "enter", "-t", pid, "-u", "--", TRUE, src=BEFORE
            )
            cmds["before: nsprim ls --json"] = nsprim_argv("ls", "--json", src=BEFORE)
        res = rounds(cmds, n)
    finally:
        target.kill()
        target.wait()
    ratios = {
        "run / python -I (<= 2)": ratio(res, "nsprim run -u -- true", "python -I -c pass"),
        "run / unshare": ratio(res, "nsprim run -u -- true", "unshare -u true"),
        "enter / nsenter": ratio(res, "nsprim enter -u", "nsenter -u"),
        "enter / python -I": ratio(res, "nsprim enter -u", "python -I -c pass"),
        "ls --json / lsns -J (<= 3 at ~70)": ratio(res, "nsprim ls --json", "lsns -J"),
        "dev run / python -I": ratio(res, "dev: nsprim run -u -- true", "python -I -c pass"),
    }
    if BEFORE:
        ratios.update(
            {
                "before: run / python -I": ratio(
                    res, "before: nsprim run -u -- true", "python -I -c pass"
                ),
                "before: enter / nsenter": ratio(res, "before: nsprim enter -u", "nsenter -u"),
                "before: enter / python -I": ratio(
                    res, "before: nsprim enter -u", "python -I -c pass"
                ),
                "before: ls --json / lsns -J": ratio(res, "before: nsprim ls --json", "lsns -J"),
            }
        )
    pairs = {
        "run / python -I": ("nsprim run -u -- true", "python -I -c pass"),
        "enter / nsenter": ("nsprim enter -u", "nsenter -u"),
        "enter / python -I": ("nsprim enter -u", "python -I -c pass"),
        "ls --json / lsns -J": ("nsprim ls --json", "lsns -J"),
    }
    if BEFORE:
        pairs.update({f"before: {k}": (f"before: {a}", b) for k, (a, b) in list(pairs.items())})
    p10 = {k: ratio_p10(res, a, b) for k, (a, b) in pairs.items()}
    return {"processes": host_processes(), "commands": res, "ratios": ratios, "ratios_p10": p10}


def ls_scaling(procs: list[int], n: int) -> list[dict[str, Any]]:
    sys.path.insert(0, HERE)
    from bench_ls import process_farm  # the throwaway pid namespace full of sleepers

    out = []
    for count in procs:
        with process_farm(count, distinct=20):
            res = rounds(
                {"nsprim ls --json": nsprim_argv("ls", "--json"), "lsns -J": ["lsns", "-J"]}, n
            )
            out.append(
                {
                    "extra": count,
                    "processes": host_processes(),
                    "commands": res,
                    "ls / lsns": ratio(res, "nsprim ls --json", "lsns -J"),
                }
            )
    return out


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def importtime(module: str, n: int) -> dict[str, Any]:
    """Median self/cumulative microseconds of every module *module* imports (base python -I)."""
    site = sysconfig.get_paths()["purelib"]
    code = f"import sys; sys.path[:0] = [{SRC!r}, {site!r}]; import {module}"
    selfs: dict[str, list[int]] = {}
    total: list[int] = []
    for _ in range(n):
        err = subprocess.run(
            [_base_python(), "-I", "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        seen: dict[str, int] = {}
        for m in _IMPORT_LINE.finditer(err):
            seen[m.group(4)] = int(m.group(1))
            if m.group(4) == module and not m.group(3):
                total.append(int(m.group(2)))
        for k, v in seen.items():
            selfs.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in selfs.items() if len(v) == n}
    top = sorted(med.items(), key=lambda kv: -kv[1])
    ours = sum(v for k, v in med.items() if k.split(".")[0] == "nsprim")
    return {
        "module": module,
        "cumulative_us": statistics.median(total) if total else None,
        "nsprim_self_us": ours,
        "stdlib_self_us": sum(med.values()) - ours,
        "top_self_us": [(k, v) for k, v in top[:25]],
    }


def render(result: dict[str, Any]) -> str:
    lines = []
    st = result["startup"]
    lines.append(
        f"whole processes, {st['processes']} processes on the host, "
        f"median of {result['rounds']} interleaved rounds, {result['interpreter']}"
    )
    for k, v in st["commands"].items():
        lines.append(
            f"  {k:<32} {v['median_us'] / 1000:8.2f} ms   noise (IQR) {v['iqr_pct']:5.1f}%"
            f"   p10 {v['p10_us'] / 1000:7.2f} ms"
        )
    for k, v in st["ratios"].items():
        lines.append(f"  {k:<34} {v:.2f}x")
    if st.get("ratios_p10"):
        lines.append("  the same on the 10th percentiles:")
        for k, v in st["ratios_p10"].items():
            lines.append(f"  {k:<34} {v:.2f}x")
    for row in result.get("ls_scaling", []):
        c = row["commands"]
        ours, theirs = c["nsprim ls --json"], c["lsns -J"]
        lines.append(
            f"  +{row['extra']:>5} sleepers ({row['processes']} processes): "
            f"nsprim ls --json {ours['median_us'] / 1000:7.1f} ms (±{ours['iqr_pct']:.0f}%), "
            f"lsns -J {theirs['median_us'] / 1000:7.1f} ms (±{theirs['iqr_pct']:.0f}%), "
            f"ratio {row['ls / lsns']:.2f}x"
        )
    rows = result.get("ls_scaling", [])
    for a, b in zip(rows, rows[1:]):
        dp = (b["processes"] - a["processes"]) / 1000
        if dp > 0:
            slope = {
                k: (b["commands"][k]["median_us"] - a["commands"][k]["median_us"]) / 1000 / dp
                for k in ("nsprim ls --json", "lsns -J")
            }
            lines.append(
                f"  {a['processes']} -> {b['processes']} processes: "
                f"nsprim ls +{slope['nsprim ls --json']:.1f} ms, "
                f"lsns +{slope['lsns -J']:.1f} ms per 1000 processes"
            )
    for imp in result.get("importtime", []):
        lines.append(
            f"python -X importtime -c 'import {imp['module']}': "
            f"{(imp['cumulative_us'] or 0) / 1000:.1f} ms cumulative; self time: "
            f"nsprim {imp['nsprim_self_us'] / 1000:.1f} ms, "
            f"the rest {imp['stdlib_self_us'] / 1000:.1f} ms; largest:"
        )
        lines.append("    " + ", ".join(f"{k} {v / 1000:.1f}" for k, v in imp["top_self_us"][:16]))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("-n", "--rounds", type=int, default=30, help="rounds (default 30)")
    ap.add_argument("--procs", default="", help="extra sleepers for ls, e.g. 100,1000,2000,5000")
    ap.add_argument("--importtime", action="store_true", help="also break down import times")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up comparison")
    ap.add_argument("--python", default="", help="interpreter for nsprim and the baseline")
    ap.add_argument("--src", default="", help="the tree whose nsprim to run (default: this one)")
    ap.add_argument(
        "--before",
        default="",
        help="another tree (e.g. a git worktree of an older commit): its run, enter and ls "
        "run in the same interleaved rounds, for before/after ratios",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    global PYTHON, SRC, BEFORE
    PYTHON = args.python or _base_python()
    SRC = os.path.abspath(args.src) if args.src else SRC
    BEFORE = os.path.abspath(args.before) if args.before else ""
    if os.geteuid() != 0:
        print("bench_cli: needs root (unshare -u, nsenter, a pid namespace)", file=sys.stderr)
        return 2
    for tool in ("unshare", "nsenter", "lsns"):
        if shutil.which(tool) is None:
            print(f"bench_cli: util-linux {tool} is not installed", file=sys.stderr)
            return 2
    try:
        procs = [int(p) for p in args.procs.split(",") if p.strip()]
    except ValueError:
        print("bench_cli: --procs takes numbers separated by commas", file=sys.stderr)
        return 2
    if args.rounds < 3 or any(p < 1 for p in procs):
        print("bench_cli: -n must be >= 3 and --procs positive", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # An installed nsprim has its bytecode; compile it here too, or every start
    # (PYTHONDONTWRITEBYTECODE set, or a read-only tree) pays the compiler.
    for tree in (SRC, BEFORE):
        if tree:
            subprocess.run(
                [PYTHON, "-I", "-m", "compileall", "-q", os.path.join(tree, "nsprim")],
                stdout=subprocess.DEVNULL,
                check=False,
            )
    n = args.rounds
    result: dict[str, Any] = {
        "src": SRC,
        "before": BEFORE or None,
        "rounds": n,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "interpreter": PYTHON,
    }
    if not args.no_startup:
        result["startup"] = startup(n)
    else:
        result["startup"] = {"processes": host_processes(), "commands": {}, "ratios": {}}
    if procs:
        result["ls_scaling"] = ls_scaling(procs, max(3, n // 3))
    if args.importtime:
        result["importtime"] = [
            importtime(m, max(5, n // 3)) for m in ("nsprim", "nsprim.cli", "nsprim.process")
        ]
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
