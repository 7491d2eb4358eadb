"""Probe group ``limits``: the per-user-namespace counts and id/pid ranges.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

import os
from typing import Any

from ..namespace import NsType
from .context import Ctx
from .facts import sysctl_int
from .record import Probe

__all__ = ["probes"]


def _p(**kw: Any) -> Probe:
    return Probe(group="limits", **kw)


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``limits`` probes."""
    out = []
    for t in NsType:
        key = f"user.max_{t.value}_namespaces"
        path = f"/proc/sys/user/max_{t.value}_namespaces"
        val = ctx.facts.sysctls.get(key)
        status = "unknown" if val is None else ("missing" if val == 0 else "ok")
        out.append(
            _p(
                name=f"max_{t.value}_namespaces",
                status=status,
                value=val,
                detail=f"{path} = {val}" if val is not None else f"{path} unreadable",
                consequence=f"{t.value} namespaces: none can be created (limit 0)"
                if val == 0
                else f"up to {val} {t.value} namespaces per user",
                source="limit" if val == 0 else None,
                fix=f"sysctl -w {key}=N (N > 0)" if val == 0 else "",
            )
        )
    for name in ("overflowuid", "overflowgid"):
        val = sysctl_int(f"kernel.{name}")
        out.append(
            _p(
                name=name,
                status="ok" if val is not None else "unknown",
                value=val,
                detail=f"kernel.{name} = {val}",
                consequence=f"unmapped ids appear as {val} inside user namespaces (USR-01)",
            )
        )
    pid_max = sysctl_int("kernel.pid_max")
    out.append(
        _p(
            name="pid_max",
            status="ok" if pid_max else "unknown",
            value=pid_max,
            detail=f"kernel.pid_max = {pid_max}; writable by mode: "
            f"{os.access('/proc/sys/kernel/pid_max', os.W_OK)} (not written: before Linux 6.14 "
            "it is global)",
            consequence="pid numbers inside a pid namespace stay below pid_max",
        )
    )
    return out
