"""What this environment lets a check do, found by doing it once; unmet needs become SKIP reasons.

Layer: conformance, private. Standard library, :mod:`nsprim` and the conformance modules.

Static needs (root, kernel version, kernel config) are decided in the runner
without forking. Everything else is *probed by doing*, once per run: the
runner asks :func:`nsprim.compat.operations` (the engine ``nsprim check``
uses) inside a sandbox built like the checks' own, and keeps each
operation's outcome for the run (LTP's ``.needs_*`` plus kselftest's "try it
and SKIP on EPERM"). This module holds what the runner builds on that: the
operation's :class:`Availability` (*available*; *refused*, with the cause as
a sentence for people; *absent*, the kernel lacks it; *broken*, the call
returned 0 and did nothing), the probes of the outer sandbox itself (which
types it can unshare, whether a new /proc can be mounted), the premise
checks by namespace identity, and :func:`attribute`, which turns an errno
into its cause: seccomp, an LSM, a ``user.max_*_namespaces`` limit, a
missing capability, or the kernel's version.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import nsprim
from nsprim import syscalls

from . import _kernel

if TYPE_CHECKING:
    from .registry import Needs

__all__ = [
    "AVAILABLE",
    "REFUSED",
    "ABSENT",
    "BROKEN",
    "Availability",
    "OPERATIONS",
    "NSTYPES",
    "PremiseBroken",
    "attribute",
    "kernel_version",
    "is_privileged",
    "has_cap_sys_admin",
    "read_kconfig",
    "static_skip_reason",
    "probe_skip_reason",
    "op_for_error",
    "flag_names",
    "identities",
    "ops_needed",
    "unmet",
    "ns_identity",
    "verify_new",
    "verify_joined",
]

AVAILABLE, REFUSED, ABSENT, BROKEN = "available", "refused", "absent", "broken"

#: Namespace types by /proc/PID/ns name: their CLONE_NEW* flag, the kernel that brought them.
NSTYPES: dict[str, tuple[int, tuple[int, int]]] = {
    "mnt": (_kernel.CLONE_NEWNS, (2, 4)),
    "uts": (_kernel.CLONE_NEWUTS, (2, 6)),
    "ipc": (_kernel.CLONE_NEWIPC, (2, 6)),
    "net": (_kernel.CLONE_NEWNET, (2, 6)),
    "pid": (_kernel.CLONE_NEWPID, (2, 6)),
    "cgroup": (_kernel.CLONE_NEWCGROUP, (4, 6)),
    "time": (_kernel.CLONE_NEWTIME, (5, 6)),
    "user": (_kernel.CLONE_NEWUSER, (3, 8)),
}
_FLAG_NAMES = {
    "mnt": "CLONE_NEWNS",
    "uts": "CLONE_NEWUTS",
    "ipc": "CLONE_NEWIPC",
    "net": "CLONE_NEWNET",
    "pid": "CLONE_NEWPID",
    "cgroup": "CLONE_NEWCGROUP",
    "time": "CLONE_NEWTIME",
    "user": "CLONE_NEWUSER",
}
_TYPE_WORDS = {
    "mnt": "mount",
    "uts": "UTS",
    "ipc": "IPC",
    "net": "network",
    "pid": "PID",
    "cgroup": "cgroup",
    "time": "time",
    "user": "user",
}
#: Since which kernel a syscall exists, for "absent" versus "hidden by a filter".
_SINCE = {"clone3": (5, 3), "mount_setattr": (5, 12), "setns": (3, 0), "unshare": (2, 6)}

#: The operations checks may name in ``ctx.require`` (nsprim.compat's engine tries these and more).
OPERATIONS = (
    *(f"unshare.{t}" for t in NSTYPES),
    "idmap",
    "setns",
    "sethostname",
    "setdomainname",
    "mount.tmpfs",
    "mount.proc",
    "clone3",
    "mount_setattr",
    "timens_offsets",
    "cgroup.create",
    "net.lo_up",
)


@dataclass(frozen=True)
class Availability:
    """Whether an operation works here.

    Attributes:
        state: ``available``, ``refused`` (policy: seccomp, LSM, limit,
            capability, delegation), ``absent`` (this kernel lacks it) or
            ``broken`` (it returned 0 and did nothing).
        cause: for people, one sentence ("seccomp filter returns EPERM for
            sethostname(2)"); "" when available.
        detail: what was observed, for the JSON's detail field (errno, call).
    """

    state: str
    cause: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == AVAILABLE

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "cause": self.cause, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Availability:
        return cls(str(data["state"]), str(data.get("cause", "")), str(data.get("detail", "")))


class PremiseBroken(Exception):
    """An operation returned success and did not do what it must (the namespace is unchanged)."""


# -- facts ---------------------------------------------------------------------


def kernel_version(release: str | None = None) -> tuple[int, int, int]:
    """Return ``(major, minor, patch)`` from ``uname -r`` (``"6.1.0-13-amd64"`` → 6, 1, 0)."""
    release = release if release is not None else platform.release()
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        return (0, 0, 0)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def _status_field(name: str) -> str:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def has_cap_sys_admin() -> bool:
    """Whether CAP_SYS_ADMIN (bit 21) is in this process's effective set (in its own user ns)."""
    value = _status_field("CapEff")
    return bool(value) and bool(int(value, 16) & (1 << 21))


def _initial_userns() -> bool:
    # The initial user namespace maps the whole 32-bit range onto itself.
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def is_privileged() -> bool:
    """Whether this process is uid 0 with CAP_SYS_ADMIN in the initial user namespace."""
    return os.geteuid() == 0 and has_cap_sys_admin() and _initial_userns()


def _seccomp_filtered() -> bool:
    return _status_field("Seccomp") == "2"


def _read_sysctl(name: str) -> str | None:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


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


# -- attribution ---------------------------------------------------------------


def _version_text(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v[:2]))


def attribute(
    call: str, err: int, *, nstype: str | None = None, kernel: tuple[int, int, int] | None = None
) -> Availability:
    """Say why *call* (``"sethostname(2)"``, ``"unshare(CLONE_NEWNET)"``) failed with *err*.

    Looks at this process's seccomp mode, capabilities, the namespace limits
    and the LSM switches; the answer is the most specific one the facts support.
    """
    kernel = kernel if kernel is not None else kernel_version()
    name = errno.errorcode.get(err, str(err))
    detail = f"{call} -> {name}"
    base = call.split("(", 1)[0]
    filtered = _seccomp_filtered()
    if err == errno.ENOSYS:
        since = _SINCE.get(base)
        if since is not None and kernel[:2] < since:
            return Availability(
                ABSENT,
                f"{base} needs Linux {_version_text(since)} (running {_version_text(kernel)})",
                detail,
            )
        if filtered:
            return Availability(
                REFUSED,
                f"{base} returns ENOSYS from a seccomp filter "
                f"(Linux {_version_text(kernel)} has it)",
                detail,
            )
        return Availability(ABSENT, f"{call} returns ENOSYS: this kernel lacks it", detail)
    if err in (errno.ENOSPC, errno.EUSERS) and nstype is not None:
        limit = f"user.max_{nstype}_namespaces"
        value = _read_sysctl(limit)
        if value == "0":
            return Availability(REFUSED, f"{limit} is 0", detail)
        if nstype in ("user", "pid"):
            return Availability(
                REFUSED,
                f"{call} returns {name}: {limit} ({value}) or the nesting limit (32) is reached",
                detail,
            )
        return Availability(REFUSED, f"{limit} ({value}) is reached", detail)
    if err in (errno.EPERM, errno.EACCES):
        if nstype == "user" and not filtered:
            if _read_sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
                return Availability(
                    REFUSED,
                    "AppArmor restricts unprivileged user namespaces "
                    "(kernel.apparmor_restrict_unprivileged_userns=1)",
                    detail,
                )
            if _read_sysctl("kernel.unprivileged_userns_clone") == "0":
                return Availability(
                    REFUSED,
                    "unprivileged user namespaces are disabled "
                    "(kernel.unprivileged_userns_clone=0)",
                    detail,
                )
        if filtered:
            return Availability(REFUSED, f"a seccomp filter returns {name} for {call}", detail)
        if nstype != "user" and not has_cap_sys_admin():
            return Availability(
                REFUSED, f"{call} needs CAP_SYS_ADMIN, which this process lacks", detail
            )
        if _read_sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
            return Availability(
                REFUSED,
                f"{call} returns {name}: AppArmor restricts unprivileged user namespaces "
                "(kernel.apparmor_restrict_unprivileged_userns=1)",
                detail,
            )
        return Availability(
            REFUSED,
            f"{call} returns {name} although no seccomp filter is active "
            "and CAP_SYS_ADMIN is held (an LSM refuses it)",
            detail,
        )
    return Availability(REFUSED, f"{call} fails with {name}", detail)


# -- premise by identity -------------------------------------------------------


def ns_identity(nstype: str, pid: str = "thread-self") -> tuple[int, int]:
    """Return the ``(st_dev, st_ino)`` of ``/proc/<pid>/ns/<nstype>``: a namespace's identity."""
    st = os.stat(f"/proc/{pid}/ns/{nstype}")
    return (st.st_dev, st.st_ino)


def _observed(nstype: str) -> str:
    # unshare(CLONE_NEWPID/NEWTIME) moves only the caller's future children.
    return f"{nstype}_for_children" if nstype in ("pid", "time") else nstype


def _types_of(flags: int) -> list[str]:
    return [t for t, (flag, _) in NSTYPES.items() if flags & flag]


def flag_names(flags: int) -> str:
    """``CLONE_NEWUTS|CLONE_NEWNET`` for *flags*."""
    return "|".join(_FLAG_NAMES[t] for t in _types_of(flags)) or hex(flags)


def identities(flags: int) -> dict[str, tuple[int, int]]:
    """The identity of every namespace type in *flags*, as an unshare of them would change it."""
    out = {}
    for t in _types_of(flags):
        with contextlib.suppress(FileNotFoundError):  # a kernel without *_for_children
            out[t] = ns_identity(_observed(t))
    return out


def verify_new(flags: int, before: Mapping[str, tuple[int, int]], call: str = "unshare") -> None:
    """Raise :class:`PremiseBroken` naming each type in *flags* whose namespace did not change."""
    for t, ident in before.items():
        try:
            now = ns_identity(_observed(t))
        except FileNotFoundError:
            # pid_for_children of a new pid namespace that has no process yet
            # cannot be opened (pid_namespaces(7)): it is not the old one.
            continue
        if now == ident:
            raise PremiseBroken(
                f"{call}({_FLAG_NAMES[t]}) returned 0 and the {_TYPE_WORDS[t]} namespace "
                "is unchanged"
            )


def verify_joined(fd: int, nstype: str) -> None:
    """Raise :class:`PremiseBroken` unless the calling thread is in the namespace *fd* names."""
    st = os.fstat(fd)
    # setns(2) to a pid namespace moves only pid_for_children (the caller's own
    # pid namespace never changes); to a time namespace, both entries move.
    if ns_identity(_observed(nstype)) != (st.st_dev, st.st_ino):
        raise PremiseBroken(
            f"setns({_FLAG_NAMES[nstype]}) returned 0 and the thread is not in the target "
            f"{_TYPE_WORDS[nstype]} namespace"
        )


# -- probes (each runs in a throwaway child) ------------------------------------


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _map_self_as_root(uid: int, gid: int) -> None:
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def _unshare_checked(flags: int) -> None:
    before = identities(flags)
    syscalls.unshare(flags)
    verify_new(flags, before)


class _Refusal(Exception):
    """A probe step failed: *call* with *err* (attributed in the child, where the facts are)."""

    def __init__(self, result: Availability) -> None:
        super().__init__(result.cause)
        self.result = result


def _step(
    call: str, fn: Callable[..., Any], *args: Any, nstype: str | None = None, **kwargs: Any
) -> Any:
    try:
        return fn(*args, **kwargs)
    except nsprim.UnsupportedError:
        raise _Refusal(attribute(call, errno.ENOSYS, nstype=nstype)) from None
    except OSError as err:
        raise _Refusal(attribute(call, err.errno or 0, nstype=nstype)) from None


def _unshare_step(t: str) -> None:
    flag = NSTYPES[t][0]
    _step(f"unshare({_FLAG_NAMES[t]})", _unshare_checked, flag, nstype=t)


# -- needs -> verdicts -----------------------------------------------------------


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


def probe_skip_reason(needs: Needs) -> str | None:
    """Run the check's own probes (``Needs.probes``); return the first reason not to run."""
    # A probe that raises is a broken probe, not an answer: the exception
    # propagates and the result is ERROR.
    for probe in needs.probes:
        reason = probe()
        if reason:
            return reason
    return None


def ops_needed(check_type: str, needs: Needs) -> list[str]:
    """The probed operations a check needs by its type and declared needs."""
    ops = []
    if check_type in NSTYPES:
        ops.append(f"unshare.{check_type}")
    if needs.userns:
        ops += ["unshare.user", "idmap"]
    ops += [op for op in getattr(needs, "ops", ()) if op not in ops]
    return ops


def unmet(ops: Iterable[str], probed: Mapping[str, Availability]) -> Availability | None:
    """Return the first of *ops* that is not available (broken first), ``None`` if all are."""
    found = [probed[op] for op in ops if op in probed and not probed[op].ok]
    broken = [a for a in found if a.state == BROKEN]
    first = broken or found
    return first[0] if first else None


def op_for_error(
    call: str, check_type: str, probed: Mapping[str, Availability], err: int = 0
) -> str | None:
    """Which refused operation an error *err* from nsprim's *call* (``"unshare"``, ``"setns"``) is.

    ``None`` when the error cannot be pinned on an operation the probe found refused.
    """
    refused = {op for op, a in probed.items() if not a.ok}
    if err in (errno.ENOSPC, errno.EUSERS) and call in ("unshare", "clone3", "clone"):
        # A namespace limit: whichever type the probe found capped.
        capped = sorted(
            op for op in refused if op.startswith("unshare.") and "max_" in probed[op].cause
        )
        if len(capped) == 1:
            return capped[0]
    if call == "unshare":
        for op in (f"unshare.{check_type}", "unshare.user"):
            if op in refused:
                return op
        candidates = [op for op in refused if op.startswith("unshare.")]
        return candidates[0] if len(candidates) == 1 else None
    if call == "mount":
        for op in ("mount.tmpfs", "mount.proc"):
            if op in refused:
                return op
        return None
    direct = {
        "setns": "setns",
        "sethostname": "sethostname",
        "setdomainname": "setdomainname",
        "clone3": "clone3",
        "mount_setattr": "mount_setattr",
    }
    named = direct.get(call)
    return named if named in refused else None
