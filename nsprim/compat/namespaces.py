"""Probe group ``namespaces``: each type, judged by creating *and using* it.

Layer 2, private to :mod:`nsprim.compat`. A type is ``ok`` when this process
can create and use it directly, ``limited`` when only inside a new user
namespace (rootless), ``missing`` otherwise, with the refusal's cause. Use
means: set a hostname (uts), mount a tmpfs (mnt), mount a fresh /proc (pid),
bring lo up (net), write the id maps (user), write timens_offsets (time).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..namespace import NsType
from .context import Ctx
from .engine import OperationResult
from .record import Probe

__all__ = ["probes", "USE", "TYPE_USE"]

#: What each type is for, in the consequence column.
TYPE_USE = {
    NsType.MNT: "private mount trees and pivot_root",
    NsType.UTS: "a private hostname",
    NsType.IPC: "private SysV/POSIX IPC",
    NsType.PID: "private pid numbering (pid 1 inside)",
    NsType.NET: "a private network stack",
    NsType.USER: "rootless containers and id mapping",
    NsType.CGROUP: "a private cgroup root view",
    NsType.TIME: "per-namespace CLOCK_MONOTONIC/BOOTTIME offsets",
}
#: The operation that proves a type usable, beyond creating it.
USE = {
    NsType.UTS: "sethostname",
    NsType.MNT: "mount.tmpfs",
    NsType.PID: "mount.proc",
    NsType.NET: "net.lo_up",
    NsType.USER: "idmap",
    NsType.TIME: "timens_offsets",
}


def _p(**kw: Any) -> Probe:
    return Probe(group="namespaces", **kw)


def _first_failure(ops: dict[str, OperationResult], t: NsType) -> Optional[OperationResult]:
    for name in (f"unshare.{t.value}", USE.get(t)):
        if name is not None and not ops[name].available:
            return ops[name]
    return None


def _flag(t: NsType) -> str:
    return f"unshare(CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()})"


def _status_of(fail: OperationResult) -> str:
    return "absent" if fail.state == "absent" and fail.source == "kernel" else "missing"


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``namespaces`` probes."""
    direct = ctx.ops(False)
    rootless = ctx.ops(True)
    out = []
    for t in NsType:
        present = os.path.exists(f"/proc/self/ns/{t.value}")
        where = "present in /proc/self/ns" if present else "absent from /proc/self/ns"
        use = TYPE_USE[t]
        used = f" and {USE[t]} works" if t in USE else ""
        d_fail = _first_failure(direct, t)
        r_fail = _first_failure(rootless, t)
        who = "as nobody, " if ctx.root else ""
        if d_fail is None:
            out.append(
                _p(
                    name=t.value,
                    status="ok",
                    value="works",
                    detail=f"{where}; {_flag(t)} works{used}",
                    consequence=f"{use}: available",
                    needs_root=not ctx.root,
                )
            )
        elif r_fail is None and t is not NsType.USER:
            out.append(
                _p(
                    name=t.value,
                    status="limited",
                    value="in userns only",
                    detail=f"{where}; {_flag(t)} directly: {d_fail.cause}, "
                    "but works inside a new user namespace" + used,
                    consequence=f"{use}: only rootless, inside a new user namespace",
                    needs_root=not ctx.root,
                    source=d_fail.source,
                    fix=d_fail.fix,
                )
            )
        else:
            # Neither way: the rootless refusal is the one a user can act on,
            # unless the direct one is the kernel's (absent or a rule).
            fail = d_fail if r_fail is None or d_fail.state == "absent" else r_fail
            mode = "directly" if fail is d_fail else f"inside a new user namespace ({who}rootless)"
            created = (
                f"{_flag(t)} works {mode}, but "
                if fail.name != f"unshare.{t.value}" and fail.name != "unshare.user"
                else ""
            )
            reason = f"{created}{fail.cause}"
            out.append(
                _p(
                    name=t.value,
                    status=_status_of(fail),
                    value=_ename(fail),
                    detail=f"{where}; {mode}: {fail.detail}; {reason}"
                    + (f"; directly: {d_fail.cause}" if fail is not d_fail else ""),
                    consequence=f"{use}: not possible here because {reason}",
                    needs_root=not ctx.root,
                    source=fail.source,
                    fix=fail.fix,
                )
            )
    fc = [
        n for n in ("pid_for_children", "time_for_children") if os.path.exists(f"/proc/self/ns/{n}")
    ]
    out.append(
        _p(
            name="for_children",
            status="ok" if len(fc) == 2 else "limited",
            value=",".join(fc) or None,
            detail=f"/proc/self/ns has {', '.join(fc) or 'no *_for_children entries'}",
            consequence="after unshare(CLONE_NEWPID/NEWTIME) the children's namespace is visible"
            if len(fc) == 2
            else "pending pid/time namespaces are not visible in /proc",
        )
    )
    return out


def _ename(r: OperationResult) -> str:
    import errno

    if r.errno is None:
        return "fake success" if "returned 0" in r.cause else "refused"
    return errno.errorcode.get(r.errno, str(r.errno))
