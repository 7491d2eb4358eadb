"""The answer record of ``nsprim check``: :class:`Probe`, its statuses and groups.

Layer 2, private to :mod:`nsprim.compat`: standard library only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Union

__all__ = ["Probe", "STATUSES", "GROUPS", "SOURCES", "Value"]

#: The statuses, from best to worst; ``absent`` (an optional feature this
#: kernel predates) sorts last because it is no defect of the host.
STATUSES = ("ok", "limited", "missing", "unknown", "absent")
#: The probe groups, in report order.
GROUPS = (
    "system",
    "namespaces",
    "userns",
    "operations",
    "rootless",
    "syscalls",
    "kconfig",
    "limits",
    "credentials",
    "environment",
    "features",
    "verdict",
)
#: Where a refusal comes from (:attr:`Probe.source`, ``OperationResult.source``).
SOURCES = ("seccomp", "lsm", "sysctl", "limit", "capability", "kernel", "cgroup-delegation")

Value = Union[str, int, bool, None]


@dataclass(frozen=True)
class Probe:
    """One answer of ``nsprim check``; built with keywords only.

    Attributes:
        group: one of :data:`GROUPS`.
        name: short name, unique within the group (``"net"``, ``"clone3"``).
        status: ``"ok"`` (works), ``"limited"`` (works with a restriction,
            e.g. only inside a new user namespace), ``"missing"`` (not
            possible here), ``"unknown"`` (the probe could not tell) or
            ``"absent"`` (an optional feature newer than this kernel: not a
            defect of the host).
        value: the observed value (a version, errno name, sysctl value, ...).
        detail: the evidence and, when not ok, the reason.
        consequence: one line on what it means for nsprim users.
        needs_root: the full answer needs root; run as non-root, *detail*
            says what was not checked.
        source: when something is refused, where the refusal comes from (one
            of :data:`SOURCES`), else ``None``.
        fix: how to lift the restriction, where a fix exists (a sysctl, a
            package, a kernel option), else ``""``.
    """

    group: str
    name: str
    status: str
    value: Value
    detail: str
    consequence: str
    needs_root: bool
    source: Optional[str]
    fix: str

    def __init__(
        self,
        *,
        group: str,
        name: str,
        status: str,
        value: Value,
        detail: str,
        consequence: str,
        needs_root: bool = False,
        source: Optional[str] = None,
        fix: str = "",
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if group not in GROUPS:
            raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {group!r}")
        if source is not None and source not in SOURCES:
            raise ValueError(f"source must be None or one of {', '.join(SOURCES)}, got {source!r}")
        # A frozen dataclass with a keyword-only constructor on Python 3.9
        # (dataclass(kw_only=True) is 3.10+).
        for key, val in (
            ("group", group),
            ("name", name),
            ("status", status),
            ("value", value),
            ("detail", detail),
            ("consequence", consequence),
            ("needs_root", needs_root),
            ("source", source),
            ("fix", fix),
        ):
            object.__setattr__(self, key, val)

    def to_dict(self) -> dict[str, Value]:
        """Return the JSON form (keys as in the ``nsprim-check/2`` schema)."""
        return dict(asdict(self))


def child_failed(group: str, name: str, error: str, consequence: str) -> Probe:
    """The probe whose throwaway child died or timed out: status unknown, and why."""
    return Probe(
        group=group,
        name=name,
        status="unknown",
        value=None,
        detail=f"probe child failed: {error}",
        consequence=consequence,
    )
