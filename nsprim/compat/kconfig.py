"""Probe group ``kconfig``: the kernel options namespaces depend on.

Layer 2, private to :mod:`nsprim.compat`. Read with :func:`nsprim.compat.facts.kernel_config`.
"""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .facts import KCONFIG_OPTIONS
from .record import Probe

__all__ = ["probes", "OPT_USE"]

#: What is lost without each option.
OPT_USE = {
    "NAMESPACES": "no namespaces at all",
    "UTS_NS": "no UTS namespaces",
    "IPC_NS": "no IPC namespaces",
    "USER_NS": "no user namespaces (no rootless mode)",
    "PID_NS": "no pid namespaces",
    "NET_NS": "no network namespaces",
    "TIME_NS": "no time namespaces",
    "CGROUPS": "no cgroups and no cgroup namespaces",
    "POSIX_MQUEUE": "no POSIX message queues to isolate (IPC checks skip them)",
    "VETH": "no veth pairs between network namespaces",
    "CHECKPOINT_RESTORE": "no set_tid/ns_last_pid and fewer /proc fields",
}


def _p(**kw: Any) -> Probe:
    return Probe(group="kconfig", **kw)


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``kconfig`` probes."""
    f = ctx.facts
    out = []
    if f.kconfig_source is None:
        for opt in KCONFIG_OPTIONS:
            out.append(
                _p(
                    name=opt,
                    status="unknown",
                    value=None,
                    detail=f"neither /proc/config.gz nor /boot/config-{f.release} is readable",
                    consequence="kernel config unknown: the operations probed are authoritative",
                    fix="modprobe configs (for /proc/config.gz), or install the kernel's "
                    "/boot/config file",
                )
            )
        return out
    for opt in KCONFIG_OPTIONS:
        val = f.kconfig.get(opt)
        fix = ""
        source = None
        if val in ("y", "m"):
            status, cons = "ok", f"CONFIG_{opt} built {'in' if val == 'y' else 'as a module'}"
        elif val is None or val == "n":
            status, cons = "missing", f"CONFIG_{opt} is not set: {OPT_USE.get(opt, 'unavailable')}"
            fix = f"a kernel built with CONFIG_{opt}=y"
            source = "kernel"
        else:
            status, cons = "ok", f"CONFIG_{opt}={val}"
        out.append(
            _p(
                name=opt,
                status=status,
                value="n" if val is None else val,
                detail=f"CONFIG_{opt}={val if val is not None else 'absent'} in {f.kconfig_source}",
                consequence=cons,
                source=source,
                fix=fix,
            )
        )
    return out
