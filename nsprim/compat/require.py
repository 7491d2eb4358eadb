"""``nsprim check --require``: which requirements this environment does not meet.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Union

from ..namespace import NsType
from .engine import OPERATIONS as _OPS
from .record import Probe
from .syscalls import REQUIRABLE

__all__ = ["require", "requirement_names", "requirement_keys"]

_ALIASES = {
    "rootless": ("userns", "unprivileged"),
    "userns-unprivileged": ("userns", "unprivileged"),
    # the answers: "can rootful containers / the whole conformance suite run here?"
    "rootful": ("verdict", "rootful"),
    "conformance": ("verdict", "conformance"),
}


def requirement_names() -> list[str]:
    """Return the names :func:`require` accepts.

    Namespace types, ``rootless``/``rootful``/``conformance``, syscall probes
    and operations (``sethostname``, ``mount.proc``, ...: tried as this
    process would, directly with CAP_SYS_ADMIN, else inside a new user namespace).
    """
    names = [t.value for t in NsType] + sorted(_ALIASES) + list(REQUIRABLE) + list(_OPS)
    return list(dict.fromkeys(names))  # clone3, mount_setattr: the syscall probes


def _privileged() -> bool:
    from .facts import decode_caps, status_fields

    return "sys_admin" in decode_caps(status_fields().get("CapEff", "0") or "0")


def requirement_keys(names: Union[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Return the ``(group, name)`` probe keys behind *names*; raise on unknown names."""
    if isinstance(names, str):
        items = names.split(",")
    elif isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        items = list(names)
    else:
        raise TypeError(f"names must be a str or a sequence of str, got {names!r}")
    wanted: list[tuple[str, str]] = []
    for raw in items:
        n = raw.strip().lower()
        if not n:
            continue
        if n in {t.value for t in NsType}:
            wanted.append(("namespaces", n))
        elif n in _ALIASES:
            wanted.append(_ALIASES[n])
        elif n in REQUIRABLE:
            wanted.append(("syscalls", n))
        elif n in _OPS:
            wanted.append(("operations" if _privileged() else "rootless", n))
        else:
            raise ValueError(
                f"unknown requirement {raw!r}; expected some of {', '.join(requirement_names())}"
            )
    if not wanted:
        raise ValueError(f"no requirement given in {names!r}")
    return wanted


def require(
    names: Union[str, Sequence[str]],
    probes: Optional[Sequence[Probe]] = None,
    *,
    probe_all: Optional[Callable[..., list[Probe]]] = None,
) -> list[Probe]:
    """Return the probes behind the *names* that are not satisfied here.

    A requirement holds when its probe is ``ok`` or ``limited`` (a type that
    works only inside a new user namespace still works); ``missing``,
    ``absent`` (not in this kernel) and ``unknown`` fail it. ``nsprim check
    --require user,net,pid`` exits 1 when this returns anything.

    Args:
        names: a comma-separated string or a sequence of names: namespace
            types (``"net"``), ``"rootless"`` (unprivileged user namespaces),
            or a syscall probe name (``"clone3"``, ``"setns_pidfd"``, ...).
        probes: results of :func:`~nsprim.compat.probe_all` to judge (default:
            run the probes needed).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: *names* is not a str or a sequence of str.
    """
    wanted = requirement_keys(names)
    if probes is None:
        assert probe_all is not None
        probes = probe_all(groups=sorted({g for g, _ in wanted}))
    by_key = {(p.group, p.name): p for p in probes}
    failed = []
    for key in wanted:
        p = by_key.get(key)
        if p is None:
            p = Probe(
                group=key[0],
                name=key[1],
                status="unknown",
                value=None,
                detail="not probed",
                consequence=f"{key[1]}: unknown",
            )
        if p.status not in ("ok", "limited"):
            failed.append(p)
    return failed
