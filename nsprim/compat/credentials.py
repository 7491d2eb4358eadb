"""Probe group ``credentials``: ids, capabilities, no_new_privs, LSMs.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

from typing import Any

from .context import Ctx
from .engine import _CAP_FIX
from .facts import caps_text, decode_caps, read_text
from .record import Probe

__all__ = ["probes"]


def _p(**kw: Any) -> Probe:
    return Probe(group="credentials", **kw)


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``credentials`` probes."""
    out = []
    s = ctx.facts.status
    euid = ctx.facts.euid
    out.append(
        _p(
            name="ids",
            status="ok",
            value=euid,
            detail=f"Uid: {s.get('Uid', '?')}; Gid: {s.get('Gid', '?')}; "
            f"Groups: {s.get('Groups', '') or '-'}",
            consequence="running as root"
            if euid == 0
            else "running unprivileged: nsprim uses user namespaces",
        )
    )
    for field in ("CapEff", "CapBnd", "CapAmb", "CapPrm"):
        names = decode_caps(s.get(field, "0"))
        if field == "CapEff":
            status = "ok" if "sys_admin" in names else "limited"
            cons = (
                "CAP_SYS_ADMIN: every namespace type directly"
                if status == "ok"
                else "no CAP_SYS_ADMIN: other types only inside a new user namespace"
            )
        elif field == "CapBnd":
            status = "ok" if "sys_admin" in names else "limited"
            cons = (
                "bounding set keeps CAP_SYS_ADMIN"
                if status == "ok"
                else "CAP_SYS_ADMIN was dropped from the bounding set"
            )
        else:
            status, cons = "ok", "informative"
        out.append(
            _p(
                name=field,
                status=status,
                value=caps_text(names),
                detail=f"{field}: {s.get(field, '?')} = {', '.join(names) or 'none'}",
                consequence=cons,
                source=None if status == "ok" else "capability",
                fix="" if status == "ok" else _CAP_FIX,
            )
        )
    nnp = s.get("NoNewPrivs")
    out.append(
        _p(
            name="NoNewPrivs",
            status="ok" if nnp == "0" else ("limited" if nnp else "unknown"),
            value=nnp,
            detail=f"NoNewPrivs: {nnp}",
            consequence="setuid helpers (newuidmap) work"
            if nnp == "0"
            else "setuid newuidmap/newgidmap gain no privilege here",
        )
    )
    out.append(_lsm())
    return out


def _lsm() -> Probe:
    parts = []
    aa = read_text("/proc/self/attr/apparmor/current") or read_text("/proc/self/attr/current")
    if aa:
        parts.append(f"current label: {aa.strip()}")
    lsms = read_text("/sys/kernel/security/lsm")
    if lsms:
        parts.append(f"LSMs: {lsms.strip()}")
    enforce = read_text("/sys/fs/selinux/enforce")
    if enforce is not None:
        parts.append(f"SELinux {'enforcing' if enforce.strip() == '1' else 'permissive'}")
    aa_enabled = read_text("/sys/module/apparmor/parameters/enabled")
    if aa_enabled is not None:
        parts.append(f"AppArmor enabled: {aa_enabled.strip()}")
    if not parts:
        return _p(
            name="lsm",
            status="ok",
            value="none",
            detail="no LSM label (/proc/self/attr/current: EINVAL), no SELinux, no AppArmor",
            consequence="no LSM restricts namespaces here",
        )
    confined = (
        bool(aa and aa.strip() not in ("unconfined", "kernel")) or (enforce or "").strip() == "1"
    )
    return _p(
        name="lsm",
        status="limited" if confined else "ok",
        value="; ".join(parts),
        detail="; ".join(parts),
        consequence="an LSM policy may refuse mounts or namespaces" if confined else "unconfined",
        source="lsm" if confined else None,
    )
