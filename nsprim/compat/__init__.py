"""What this kernel and environment let nsprim do with namespaces (``nsprim check``).

Layer 2: returns data, never prints. The package, one module per concern:

- :mod:`~nsprim.compat.facts`: kernel version, kernel config, capabilities,
  seccomp state, sysctls, LSMs: read once, the single source for the probes,
  the conformance suite's needs and the process layer.
- :mod:`~nsprim.compat.engine`: the probe engine. Each namespace operation
  (create each type, write id maps, sethostname, mount a tmpfs and /proc,
  bring lo up, setns back, clone3 and its features, mount_setattr,
  timens_offsets, create a cgroup) is *done* in a throwaway child, once per
  run, and a refusal is attributed to its source (seccomp, LSM, sysctl,
  limit, capability, kernel, cgroup delegation).
- one module per probe group (:data:`GROUPS`): ``system``, ``namespaces``,
  ``userns``, ``operations``/``rootless`` (:mod:`~nsprim.compat.opgroups`),
  ``syscalls``, ``kconfig``, ``limits``, ``credentials``, ``environment``,
  ``features``, and ``verdict``: can rootful containers, rootless ones and
  the conformance suite run here, yes or no with the reasons.

:func:`probe_all` never needs root and never changes the caller: every probe
that creates a namespace runs in a throwaway forked child (reaped, with a
timeout). The answers blend the approaches of moby's
``contrib/check-config.sh`` (kernel config), genuinetools/amicontained
(capabilities, seccomp, container evidence) with actually trying each
operation, because a config option says nothing about the sysctls, LSMs,
limits or seccomp filters that refuse it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Callable, Optional, Union

from . import (
    credentials,
    environment,
    features,
    kconfig,
    limits,
    namespaces,
    opgroups,
    syscalls,
    system,
    userns,
    verdict,
)
from . import require as _require
from .context import Ctx
from .engine import OPERATIONS, STATES, OperationResult, Refusal, explain, operations
from .facts import KCONFIG_OPTIONS, decode_caps, kernel_config
from .record import GROUPS, SOURCES, STATUSES, Probe

__all__ = [
    "Probe",
    "STATUSES",
    "GROUPS",
    "SOURCES",
    "STATES",
    "OPERATIONS",
    "OperationResult",
    "KCONFIG_OPTIONS",
    "operations",
    "explain",
    "Refusal",
    "probe_all",
    "require",
    "requirement_names",
    "kernel_config",
    "decode_caps",
]

_PROBERS: dict[str, Callable[[Ctx], list[Probe]]] = {
    "system": system.probes,
    "namespaces": namespaces.probes,
    "userns": userns.probes,
    "operations": opgroups.probes_direct,
    "rootless": opgroups.probes_rootless,
    "syscalls": syscalls.probes,
    "kconfig": kconfig.probes,
    "limits": limits.probes,
    "credentials": credentials.probes,
    "environment": environment.probes,
    "features": features.probes,
    "verdict": verdict.probes,
}

#: Longest per-probe timeout accepted: beyond it poll(2)'s millisecond int overflows.
_MAX_TIMEOUT = 86400.0


def probe_all(*, groups: Optional[Iterable[str]] = None, timeout: float = 10.0) -> list[Probe]:
    """Run every compatibility probe (or those of *groups*) and return the answers.

    Never needs root and never changes the caller: namespace-creating probes
    run in throwaway forked children, each reaped, with *timeout* seconds to
    answer. Reads /proc and /sys; kernel config from /proc/config.gz or
    /boot/config-RELEASE when readable. The operations tried need up to
    Linux 5.12; what the kernel lacks is reported, not raised.

    Args:
        groups: names from :data:`GROUPS` (default: all, in that order).
        timeout: seconds each throwaway child may take.

    Returns:
        The probes, grouped in :data:`GROUPS` order.

    Raises:
        ValueError: an unknown group name, or a timeout that is not a positive
            number of seconds (at most a day).
        TypeError: a timeout that is not a number.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not 0 < timeout <= _MAX_TIMEOUT:
        raise ValueError(
            f"timeout must be more than 0 and at most {_MAX_TIMEOUT:.0f} seconds, got {timeout!r}"
        )
    wanted = list(GROUPS) if groups is None else list(groups)
    for g in wanted:
        if g not in _PROBERS:
            raise ValueError(f"unknown probe group {g!r}; expected one of {', '.join(GROUPS)}")
    ctx = Ctx(timeout)
    out: list[Probe] = []
    for g in GROUPS:
        if g in wanted:
            out.extend(_PROBERS[g](ctx))
    return out


def require(
    names: Union[str, Sequence[str]], probes: Optional[Sequence[Probe]] = None
) -> list[Probe]:
    """Return the probes behind the *names* that are not satisfied here.

    A requirement holds when its probe is ``ok`` or ``limited`` (a type that
    works only inside a new user namespace still works); ``missing``,
    ``absent`` and ``unknown`` fail it. ``nsprim check --require user,net,pid``
    exits 1 when this returns anything.

    Args:
        names: a comma-separated string or a sequence of names: namespace
            types (``"net"``), ``"rootless"`` (unprivileged user namespaces),
            ``"rootful"`` or ``"conformance"`` (the verdict answers), a
            syscall probe name (``"clone3"``, ``"setns_pidfd"``, ...) or an
            operation (``"sethostname"``, ``"mount.proc"``, ...).
        probes: results of :func:`probe_all` to judge (default: run the
            probes needed).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: *names* is not a str or a sequence of str.
    """
    return _require.require(names, probes, probe_all=probe_all)


def requirement_names() -> list[str]:
    """Return the names :func:`require` accepts (types, ``rootless`` and syscalls)."""
    return _require.requirement_names()
