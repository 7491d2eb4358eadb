"""Evaluate a check's :class:`~nsprim.conformance.registry.Needs`: unmet ⇒ a SKIP reason.

Layer: conformance, private. Standard library and the conformance modules.

Static needs (root, kernel version, kernel config) are decided in the runner
without forking. Dynamic needs (user namespaces, probes) ask the kernel by
trying, inside the check's outer sandbox (LTP ``.needs_kconfigs`` plus
kselftest's "try it and SKIP on EPERM"); nothing reads module index files.
"""

from __future__ import annotations

import gzip
import os
import platform
import re

from ._context import Context
from ._kernel import CLONE_NEWUSER
from .registry import Needs

__all__ = [
    "kernel_version",
    "is_privileged",
    "read_kconfig",
    "static_skip_reason",
    "dynamic_skip_reason",
]


def kernel_version(release: str | None = None) -> tuple[int, int, int]:
    """Return ``(major, minor, patch)`` from ``uname -r`` (``"6.1.0-13-amd64"`` → 6, 1, 0)."""
    release = release if release is not None else platform.release()
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        return (0, 0, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def _cap_sys_admin() -> bool:
    # CAP_SYS_ADMIN is bit 21 (linux/capability.h).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 21))
    except OSError:
        pass
    return False


def _initial_userns() -> bool:
    # The initial user namespace maps the whole 32-bit range onto itself.
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def is_privileged() -> bool:
    """Whether this process is uid 0 with CAP_SYS_ADMIN in the initial user namespace."""
    return os.geteuid() == 0 and _cap_sys_admin() and _initial_userns()


def read_kconfig(release: str | None = None) -> dict[str, str] | None:
    """Return the running kernel's config as ``{"CONFIG_X": "y"|"m"|...}``, ``None`` if unreadable.

    Reads ``/proc/config.gz`` (CONFIG_IKCONFIG_PROC), else ``/boot/config-<release>``.
    """
    release = release if release is not None else platform.release()
    text: str | None = None
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{release}") as f:
                text = f.read()
        except OSError:
            return None
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_"):
            name, _, value = line.partition("=")
            config[name] = value
    return config


def static_skip_reason(
    needs: Needs,
    *,
    privileged: bool,
    kernel: tuple[int, int, int],
    kconfig: dict[str, str] | None,
) -> str | None:
    """Return why *needs* can't be met here without running anything, or ``None``."""
    if needs.root and not privileged:
        return "needs root in the initial user namespace"
    if kernel[:2] < needs.min_kernel:
        want = ".".join(map(str, needs.min_kernel))
        have = ".".join(map(str, kernel))
        return f"needs Linux {want} or later (running {have})"
    if kconfig is not None:
        for option in needs.kconfig:
            name = option if option.startswith("CONFIG_") else f"CONFIG_{option}"
            if kconfig.get(name) not in ("y", "m"):
                return f"needs {name} (kernel config says {kconfig.get(name, 'is not set')})"
    return None


def _try_userns() -> None:
    """Run in a throwaway child that has already unshared CLONE_NEWUSER: nothing left to do."""


def dynamic_skip_reason(needs: Needs, ctx: Context) -> str | None:
    """Return why *needs* can't be met, found by asking the kernel; ``None`` when they are.

    Runs inside the check's outer sandbox, before the check.
    """
    if needs.userns:
        try:
            ctx.in_child(_try_userns, unshare=CLONE_NEWUSER, timeout=5.0)
        except OSError as err:
            return f"cannot create user namespaces here: {err}"
    # A probe that raises is a broken probe, not an answer: the exception
    # propagates and the result is ERROR.
    for probe in needs.probes:
        reason = probe()
        if reason:
            return reason
    return None
