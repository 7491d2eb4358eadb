"""Probe group ``verdict``: the three answers a user wants, each yes or no with reasons.

Layer 2, private to :mod:`nsprim.compat`. Judged from the operations the
engine actually did (:mod:`nsprim.compat.engine`), never from versions
or config alone:

- ``rootful``: can a root container runtime set up a container here (mount,
  UTS, IPC, pid and network namespaces, a fresh /proc, a tmpfs, a hostname,
  lo up, setns)?
- ``rootless``: the same inside a new user namespace, as an unprivileged user.
- ``conformance``: can ``nsprim conformance`` run every check here, as this
  process (every namespace type and every operation the checks use)?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from .context import Ctx
from .engine import OPERATIONS, OperationResult
from .record import Probe

__all__ = ["probes", "ROOTFUL", "ROOTLESS", "CONFORMANCE"]

ROOTFUL = (
    "unshare.mnt",
    "unshare.uts",
    "unshare.ipc",
    "unshare.pid",
    "unshare.net",
    "mount.tmpfs",
    "mount.proc",
    "sethostname",
    "net.lo_up",
    "setns",
)
ROOTLESS = ("unshare.user", "idmap", *ROOTFUL)
#: Every operation but clone3's optional features (pidfd, set_tid, into a cgroup).
CONFORMANCE = tuple(n for n in OPERATIONS if not n.startswith("clone3."))


def _answer(
    name: str,
    question: str,
    ops: dict[str, OperationResult],
    needed: Sequence[str],
    how: str,
    note: Optional[str] = None,
) -> Probe:
    failed = [ops[n] for n in needed if not ops[n].available]
    if not failed:
        return Probe(
            group="verdict",
            name=name,
            status="ok",
            value="yes",
            detail=f"{how}: {', '.join(needed)} all work" + (f"; {note}" if note else ""),
            consequence=f"{question} yes" + (f" ({note})" if note else ""),
        )
    # Group the operations by cause: "sethostname, setdomainname: a seccomp filter ..."
    by_cause: dict[str, list[str]] = {}
    for r in failed:
        by_cause.setdefault(r.cause, []).append(r.name)
    reasons = "; ".join(f"{', '.join(names)}: {cause}" for cause, names in by_cause.items())
    fixes: list[str] = []
    for r in failed:
        if r.fix and r.fix not in fixes:
            fixes.append(r.fix)
    return Probe(
        group="verdict",
        name=name,
        status="missing",
        value="no",
        detail=f"{how}: " + "; ".join(f"{r.name} -> {r.detail}" for r in failed),
        consequence=f"{question} no: {reasons}",
        source=failed[0].source,
        fix="; ".join(fixes),
    )


def probes(ctx: Ctx) -> list[Probe]:
    """Return the three answers."""
    out = []
    if ctx.root or ctx.facts.euid == 0:
        # uid 0 without CAP_SYS_ADMIN (a container's default set) tries too:
        # its refusals, attributed, are the answer.
        out.append(
            _answer(
                "rootful",
                "Can rootful containers run here?",
                ctx.ops(False),
                ROOTFUL,
                "as this process" + (" (CAP_SYS_ADMIN)" if ctx.root else " (uid 0)"),
            )
        )
    else:
        out.append(
            Probe(
                group="verdict",
                name="rootful",
                status="unknown",
                value="unknown",
                detail=f"this process (uid {ctx.facts.euid}) lacks CAP_SYS_ADMIN, so it cannot "
                "try what a root runtime does",
                consequence="Can rootful containers run here? unknown: run nsprim check as root",
                needs_root=True,
            )
        )
    out.append(
        _answer(
            "rootless",
            "Can rootless containers run here?",
            ctx.ops(True),
            ROOTLESS,
            "inside a new user namespace" + (", as nobody" if ctx.root else ""),
        )
    )
    out.append(
        _answer(
            "conformance",
            "Can the conformance suite run fully here?",
            ctx.ops(not ctx.root),
            CONFORMANCE,
            "as this process" if ctx.root else "as this process, inside a new user namespace",
            None if ctx.root else "rootless: the checks that need root still skip",
        )
    )
    return out
