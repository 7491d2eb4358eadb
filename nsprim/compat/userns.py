"""Probe group ``userns``: unprivileged user namespaces and what gates them.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .record import Probe

__all__ = ["probes"]


def _p(**kw: Any) -> Probe:
    return Probe(group="userns", **kw)


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``userns`` probes."""
    f = ctx.facts
    out = []
    ops = ctx.ops(True)
    how = "as nobody (uid 65534, dropped in a throwaway child)" if ctx.root else f"as uid {f.euid}"
    create, idmap = ops["unshare.user"], ops["idmap"]
    fail = create if not create.available else (idmap if not idmap.available else None)
    if fail is None:
        out.append(
            _p(
                name="unprivileged",
                status="ok",
                value=True,
                detail=f"unshare(CLONE_NEWUSER) and writing its id maps work {how}",
                consequence="rootless containers: possible",
            )
        )
    elif fail.source is None:
        out.append(
            _p(
                name="unprivileged",
                status="unknown",
                value=None,
                detail=f"probe {how} failed: {fail.cause}",
                consequence="rootless containers: unknown",
                needs_root=ctx.root,
            )
        )
    else:
        out.append(
            _p(
                name="unprivileged",
                status="missing",
                value=False,
                detail=f"{fail.detail} ({how}): {fail.cause}",
                consequence=f"rootless containers: not possible here because {fail.cause}",
                source=fail.source,
                fix=fail.fix,
            )
        )
    clone = f.sysctls.get("kernel.unprivileged_userns_clone")
    out.append(
        _p(
            name="unprivileged_userns_clone",
            status="ok" if clone in (None, 1) else "missing",
            value=clone,
            detail="kernel.unprivileged_userns_clone "
            + ("absent (upstream kernel: no such gate)" if clone is None else f"= {clone}"),
            consequence="no Debian/Ubuntu sysctl gate"
            if clone in (None, 1)
            else "unprivileged user namespaces are disabled by sysctl",
            source=None if clone in (None, 1) else "sysctl",
            fix="" if clone in (None, 1) else "sysctl -w kernel.unprivileged_userns_clone=1",
        )
    )
    for name in (
        "apparmor_restrict_unprivileged_userns",
        "apparmor_restrict_unprivileged_unconfined",
    ):
        val = f.sysctls.get(f"kernel.{name}")
        out.append(
            _p(
                name=name,
                status="ok" if val in (None, 0) else "limited",
                value=val,
                detail=f"kernel.{name} "
                + ("absent (no AppArmor userns mediation)" if val is None else f"= {val}"),
                consequence="AppArmor does not restrict unprivileged user namespaces"
                if val in (None, 0)
                else "unconfined processes get a user namespace without capabilities (AppArmor)",
                source=None if val in (None, 0) else "lsm",
                fix=""
                if val in (None, 0)
                else f"sysctl -w kernel.{name}=0, or an AppArmor profile with the 'userns,' rule",
            )
        )
    mx = f.sysctls.get("user.max_user_namespaces")
    out.append(
        _p(
            name="max_user_namespaces",
            status="unknown" if mx is None else ("missing" if mx == 0 else "ok"),
            value=mx,
            detail=f"user.max_user_namespaces = {mx}",
            consequence="no user namespaces can be created"
            if mx == 0
            else "user namespaces allowed by the limit",
            source="limit" if mx == 0 else None,
            fix="sysctl -w user.max_user_namespaces=N (N > 0)" if mx == 0 else "",
        )
    )
    sc = f.seccomp
    mode = {"0": "disabled", "1": "strict", "2": "filter"}.get(sc.mode, sc.mode or "unknown")
    out.append(
        _p(
            name="seccomp",
            status="ok" if sc.mode == "0" else ("limited" if sc.mode else "unknown"),
            value=mode,
            detail=f"{sc.text()} ({mode})",
            consequence="no seccomp filter can refuse namespace syscalls"
            if sc.mode == "0"
            else "a seccomp filter may refuse namespace syscalls: the operations below say which",
            source=None if sc.mode in ("0", "") else "seccomp",
        )
    )
    return out
