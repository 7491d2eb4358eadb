"""Probe groups ``operations`` and ``rootless``: every operation the engine tried.

Layer 2, private to :mod:`nsprim.compat`. ``operations`` is each operation
done directly as this process; ``rootless`` the same inside a new user
namespace (as nobody when this process holds CAP_SYS_ADMIN).
"""

from __future__ import annotations

from .context import Ctx
from .engine import DESCRIPTION, OperationResult
from .record import Probe

__all__ = ["probes_direct", "probes_rootless", "as_probe"]

_STATUS = {"available": "ok", "refused": "missing", "absent": "absent", "broken": "missing"}


def as_probe(group: str, r: OperationResult, needs_root: bool = False) -> Probe:
    """Return the report line of one operation result."""
    what = DESCRIPTION[r.name]
    return Probe(
        group=group,
        name=r.name,
        status=_STATUS[r.state] if r.source is not None or r.available else "unknown",
        value="works" if r.available else r.state,
        detail=r.detail,
        consequence=f"{what}: works" if r.available else f"{what}: no: {r.cause}",
        needs_root=needs_root,
        source=r.source,
        fix=r.fix,
    )


def probes_direct(ctx: Ctx) -> list[Probe]:
    """Return the ``operations`` probes (directly, as this process)."""
    return [as_probe("operations", r, not ctx.root) for r in ctx.ops(False).values()]


def probes_rootless(ctx: Ctx) -> list[Probe]:
    """Return the ``rootless`` probes (inside a new user namespace)."""
    return [as_probe("rootless", r) for r in ctx.ops(True).values()]
