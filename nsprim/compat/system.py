"""Probe group ``system``: kernel, architecture, Python, libc, threads, util-linux.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from typing import Any

from .. import syscalls as _sc
from .context import Ctx
from .record import Probe

__all__ = ["probes"]


def _p(**kw: Any) -> Probe:
    return Probe(group="system", **kw)


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``system`` probes."""
    f = ctx.facts
    out = []
    uname = os.uname()
    out.append(
        _p(
            name="kernel",
            status="ok",
            value=f.release,
            detail=f"{uname.sysname} {f.release} {uname.version}",
            consequence=f"Linux {f.version[0]}.{f.version[1]}: features are probed below, "
            "not assumed",
        )
    )
    machine = platform.machine()
    why = _sc.syscall_table_error(machine)
    odd = machine.startswith(("mips", "ppc", "powerpc", "sparc", "alpha"))
    ioctl = "; ioctl direction bits: " + ("3 (alpha/mips/powerpc/sparc)" if odd else "2 (generic)")
    out.append(
        _p(
            name="architecture",
            status="ok" if why is None else "missing",
            value=machine,
            detail=("in nsprim's syscall-number table" if why is None else why) + ioctl,
            consequence="raw syscalls (clone3, pidfd_*, mount API) use the table for this arch"
            if why is None
            else "raw syscalls are unavailable: nsprim raises UnsupportedError for them",
        )
    )
    py = platform.python_version()
    extras = [
        f"os.setns/os.unshare: {'yes' if hasattr(os, 'setns') else 'no (3.12+)'}",
        f"os.timerfd_create: {'yes' if hasattr(os, 'timerfd_create') else 'no (3.13+)'}",
    ]
    out.append(
        _p(
            name="python",
            status="ok",
            value=py,
            detail=f"{sys.implementation.name} {py}; " + "; ".join(extras),
            consequence="nsprim uses its own ctypes bindings either way",
        )
    )
    import multiprocessing  # here: importing it costs ~10 ms that `nsprim ls` needn't pay

    method = multiprocessing.get_start_method(allow_none=True)
    out.append(
        _p(
            name="multiprocessing",
            status="ok",
            value=method or "default",
            detail=f"start method {method!r}" if method else "start method not set (default)",
            consequence="nsprim forks its own children and does not use multiprocessing",
        )
    )
    libc_ver = (
        os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
    )
    names = (
        "pidfd_open",
        "pidfd_getfd",
        "mount_setattr",
        "open_tree",
        "move_mount",
        "clone3",
        "pidfd_spawn",
    )
    have = [n for n in names if _sc.libc_has(n)]
    lack = [n for n in names if n not in have]
    out.append(
        _p(
            name="libc",
            status="ok" if libc_ver else "unknown",
            value=libc_ver or "not glibc",
            detail=f"wrappers present: {', '.join(have) or 'none'}; "
            f"absent: {', '.join(lack) or 'none'}",
            consequence="nsprim calls clone3, pidfd_*, open_tree, move_mount and mount_setattr "
            "through syscall(2) whatever the libc exports; unshare, setns and mount through libc",
        )
    )
    tasks = len(os.listdir("/proc/self/task"))
    out.append(
        _p(
            name="threads",
            status="ok" if tasks == 1 else "limited",
            value=tasks,
            detail=f"{tasks} thread(s) in /proc/self/task",
            consequence="unshare/setns of user and mnt work in this process"
            if tasks == 1
            else "user/mnt unshare and setns are refused (EINVAL) in a multithreaded "
            "process: nsprim does them in a fresh child",
        )
    )
    import subprocess

    for tool in ("unshare", "nsenter"):
        path = shutil.which(tool)
        if path is None:
            out.append(
                _p(
                    name=tool,
                    status="missing",
                    value=None,
                    detail=f"{tool} not on PATH",
                    consequence=f"no util-linux {tool} to cross-check against",
                    fix="apt-get install util-linux (Debian/Ubuntu), dnf install util-linux",
                )
            )
            continue
        try:
            proc = subprocess.run(
                [path, "--version"], capture_output=True, timeout=ctx.timeout, check=False
            )
            text = proc.stdout.decode("utf-8", "replace").strip().splitlines()
            ver = text[0] if text else ""
        except (OSError, subprocess.TimeoutExpired) as err:
            ver = f"error: {err}"
        m = re.search(r"util-linux\s+([\d.]+)", ver)
        out.append(
            _p(
                name=tool,
                status="ok" if m else "unknown",
                value=m.group(1) if m else ver,
                detail=f"{path}: {ver}",
                consequence=f"util-linux {tool} available for cross-checks",
            )
        )
    return out
