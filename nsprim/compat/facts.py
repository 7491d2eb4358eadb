"""Facts about the running kernel and this process, read in one place.

Layer 2: standard library, :mod:`nsprim.syscalls` and :mod:`nsprim.flags`.
The single source for the probes of ``nsprim check``, for the conformance
suite's needs and for the process layer: the kernel version (parsed here and
nowhere else), the kernel config (one reader, one key convention),
capabilities, the seccomp state, sysctls and LSMs. Everything here only reads
``/proc`` and ``/sys``, except :func:`setns_accepts_pidfd`, which asks the
kernel once per process in a throwaway child.
"""

from __future__ import annotations

import errno
import gzip
import os
import platform
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Optional, Union

from .. import syscalls as _sc
from ..flags import CloneFlags
from . import _throwaway

__all__ = [
    "kernel_release",
    "kernel_version",
    "version_text",
    "KernelConfig",
    "kernel_config",
    "KCONFIG_OPTIONS",
    "decode_caps",
    "CAP_NAMES",
    "Seccomp",
    "seccomp",
    "sysctl",
    "sysctl_int",
    "Lsm",
    "lsm",
    "status_fields",
    "Facts",
    "gather",
    "setns_accepts_pidfd",
    "ename",
]


# --- small readers -------------------------------------------------------------------


def read_text(path: str) -> Optional[str]:
    """Return the file's text (surrogateescape), or ``None`` when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def read_int(path: str) -> Optional[int]:
    """Return the file's content as an int, or ``None``."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def status_fields(path: str = "/proc/self/status") -> dict[str, str]:
    """Return ``{"Seccomp": "2", "CapEff": "...", ...}`` from a proc status file."""
    out = {}
    for line in (read_text(path) or "").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def ename(err: Optional[int]) -> str:
    """Return the errno's symbolic name (``"EPERM"``), ``"0"`` for none."""
    if not err:
        return "0"
    return errno.errorcode.get(err, str(err))


# --- kernel version --------------------------------------------------------------------


def kernel_release() -> str:
    """Return ``uname -r``."""
    return platform.release()


def kernel_version(release: Optional[str] = None) -> tuple[int, int, int]:
    """Return ``(major, minor, patch)`` of *release* (default: the running kernel).

    ``"6.1.0-13-amd64"`` gives ``(6, 1, 0)``; an unparsable release ``(0, 0, 0)``.
    """
    rel = release if release is not None else kernel_release()
    if not isinstance(rel, str):
        raise TypeError(f"release must be a str, got {rel!r}")
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", rel)
    if not m:
        return (0, 0, 0)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def version_text(since: str) -> tuple[int, int]:
    """Return ``(major, minor)`` from a text like ``"Linux 5.3"`` (``(0, 0)`` if none)."""
    m = re.search(r"(\d+)\.(\d+)", since)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# --- kernel config ---------------------------------------------------------------------

#: The options ``nsprim check`` reports (check-config.sh's namespace set,
#: plus time, veth and checkpoint/restore).
KCONFIG_OPTIONS = (
    "NAMESPACES",
    "UTS_NS",
    "IPC_NS",
    "USER_NS",
    "PID_NS",
    "NET_NS",
    "TIME_NS",
    "CGROUPS",
    "POSIX_MQUEUE",
    "VETH",
    "CHECKPOINT_RESTORE",
)


def _option(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a kernel option name must be a str, got {name!r}")
    return name[7:] if name.startswith("CONFIG_") else name


class KernelConfig(Mapping[str, str]):
    """The running kernel's config: option name → value.

    One key convention: names are stored without the ``CONFIG_`` prefix, and
    every lookup accepts either form (``cfg["UTS_NS"]`` is ``cfg["CONFIG_UTS_NS"]``).
    Values are as written, unquoted (``"y"``, ``"m"``, a string or number),
    and ``"n"`` for "is not set".
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {_option(k): v for k, v in values.items()}

    def __getitem__(self, name: str) -> str:
        return self._values[_option(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _option(name) in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def enabled(self, name: str) -> bool:
        """Whether the option is built in or a module (``y``/``m``)."""
        return self._values.get(_option(name)) in ("y", "m")

    def __repr__(self) -> str:
        return f"KernelConfig({len(self._values)} options)"


def parse_kconfig(text: str) -> KernelConfig:
    """Parse the text of a kernel ``.config``.

    Raises:
        TypeError: *text* is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_"):
            key, _, value = line.partition("=")
            out[key] = value.strip('"')
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:-11]] = "n"
    return KernelConfig(out)


def kernel_config(release: Optional[str] = None) -> tuple[Optional[str], KernelConfig]:
    """Return ``(source, config)`` from /proc/config.gz or /boot/config-RELEASE.

    ``(None, <empty>)`` when neither file is readable. Lookups in *config*
    accept ``"UTS_NS"`` and ``"CONFIG_UTS_NS"`` alike; iteration gives the
    names without the prefix.
    """
    rel = release if release is not None else kernel_release()
    if not isinstance(rel, str):
        raise TypeError(f"release must be a str, got {rel!r}")
    if "/" in rel or "\0" in rel:
        raise ValueError(f"release must be a kernel release like '6.1.0-13-amd64', got {rel!r}")
    for path in ("/proc/config.gz", f"/boot/config-{rel}"):
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as f:
                    raw = f.read()
            else:
                with open(path, "rb") as f:
                    raw = f.read()
        except OSError:
            continue
        return path, parse_kconfig(raw.decode("utf-8", "replace"))
    return None, KernelConfig({})


# --- capabilities ----------------------------------------------------------------------

CAP_NAMES = (
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
)


def decode_caps(mask: Union[int, str]) -> list[str]:
    """Return the capability names (``"sys_admin"``, ...) set in *mask*.

    Args:
        mask: an int or the hex string of a ``Cap*`` line of /proc/PID/status.

    Raises:
        TypeError: *mask* is neither an int nor a str.
        ValueError: a negative mask, or a string that is not hexadecimal.
    """
    if isinstance(mask, bool) or not isinstance(mask, (int, str)):
        raise TypeError(f"mask must be an int or a hex str, got {type(mask).__name__} {mask!r}")
    if isinstance(mask, str):
        try:
            m = int(mask, 16)
        except ValueError:
            raise ValueError(f"mask must be hexadecimal, got {mask!r}") from None
    else:
        m = mask
    if m < 0:
        raise ValueError(f"mask must not be negative, got {m}")
    return [
        CAP_NAMES[i] if i < len(CAP_NAMES) else f"cap_{i}"
        for i in range(m.bit_length())
        if m >> i & 1
    ]


def caps_text(names: list[str]) -> str:
    """Summarise capability names: ``"all"``, ``"all but sys_resource"``, ``"none"``..."""
    if not names:
        return "none"
    known = set(CAP_NAMES)
    have = set(names)
    if have >= known:
        return "all"
    if len(have & known) > len(known) // 2:
        return "all but " + ",".join(n for n in CAP_NAMES if n not in have)
    return ",".join(names)


# --- seccomp, sysctls, LSMs ------------------------------------------------------------


@dataclass(frozen=True)
class Seccomp:
    """The seccomp state of this thread (``Seccomp``/``Seccomp_filters`` of /proc/self/status).

    Attributes:
        mode: ``"0"`` disabled, ``"1"`` strict, ``"2"`` filter, ``""`` unknown
            (no CONFIG_SECCOMP, or a kernel before 3.8).
        filters: the number of attached filters (Linux 5.9+), else ``None``.
    """

    mode: str
    filters: Optional[int]

    @property
    def filtered(self) -> bool:
        """Whether a filter may answer for the kernel."""
        return self.mode == "2"

    def text(self) -> str:
        """``"Seccomp: 2, 1 filter(s)"``."""
        n = "?" if self.filters is None else str(self.filters)
        return f"Seccomp: {self.mode or '?'}, {n} filter(s)"


def seccomp(fields: Optional[Mapping[str, str]] = None) -> Seccomp:
    """Return the seccomp state of this thread."""
    f = fields if fields is not None else status_fields()
    raw = f.get("Seccomp_filters", "")
    return Seccomp(f.get("Seccomp", ""), int(raw) if raw.isdigit() else None)


def sysctl(name: str) -> Optional[str]:
    """Return the value of the sysctl *name* (``"user.max_net_namespaces"``), or ``None``."""
    if not isinstance(name, str) or not name or ".." in name or name.startswith((".", "/")):
        raise ValueError(f"a sysctl name like 'kernel.pid_max' is expected, got {name!r}")
    text = read_text("/proc/sys/" + name.replace(".", "/"))
    return None if text is None else text.strip()


def sysctl_int(name: str) -> Optional[int]:
    """Return the sysctl *name* as an int, or ``None`` when absent or not a number."""
    v = sysctl(name)
    try:
        return None if v is None else int(v)
    except ValueError:
        return None


@dataclass(frozen=True)
class Lsm:
    """The Linux security modules as seen from this process."""

    active: tuple[str, ...]
    label: Optional[str]
    selinux_enforcing: Optional[bool]
    apparmor_enabled: Optional[bool]

    @property
    def confined(self) -> bool:
        """Whether a policy confines this process (an AppArmor label or enforcing SELinux)."""
        aa = self.label is not None and self.label not in ("unconfined", "kernel")
        return aa or bool(self.selinux_enforcing)


def lsm() -> Lsm:
    """Return the active LSMs, this process's label and the SELinux/AppArmor switches."""
    label = read_text("/proc/self/attr/apparmor/current") or read_text("/proc/self/attr/current")
    active = tuple(x for x in (read_text("/sys/kernel/security/lsm") or "").strip().split(",") if x)
    enforce = read_text("/sys/fs/selinux/enforce")
    aa = read_text("/sys/module/apparmor/parameters/enabled")
    return Lsm(
        active=active,
        label=label.strip().rstrip("\0") if label else None,
        selinux_enforcing=None if enforce is None else enforce.strip() == "1",
        apparmor_enabled=None if aa is None else aa.strip() == "Y",
    )


# --- one snapshot ---------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """The facts the probes share, gathered once by :func:`gather`."""

    release: str
    version: tuple[int, int, int]
    status: Mapping[str, str]
    euid: int
    egid: int
    caps: tuple[str, ...]
    seccomp: Seccomp
    lsm: Lsm
    kconfig_source: Optional[str]
    kconfig: KernelConfig
    sysctls: Mapping[str, Optional[int]] = field(default_factory=dict)

    @property
    def root(self) -> bool:
        """Whether this process holds CAP_SYS_ADMIN (in its own user namespace)."""
        return "sys_admin" in self.caps

    def at_least(self, since: str) -> bool:
        """Whether the running kernel is at least the one named in *since* (``"Linux 5.3"``)."""
        return self.version[:2] >= version_text(since)


#: The sysctls that gate namespaces, read into :attr:`Facts.sysctls`.
GATE_SYSCTLS = (
    "kernel.unprivileged_userns_clone",
    "kernel.apparmor_restrict_unprivileged_userns",
    "kernel.apparmor_restrict_unprivileged_unconfined",
    "user.max_user_namespaces",
    "user.max_mnt_namespaces",
    "user.max_uts_namespaces",
    "user.max_ipc_namespaces",
    "user.max_pid_namespaces",
    "user.max_net_namespaces",
    "user.max_cgroup_namespaces",
    "user.max_time_namespaces",
)


def gather() -> Facts:
    """Read every fact once (no child, no syscall that changes anything)."""
    status = status_fields()
    src, cfg = kernel_config()
    release = kernel_release()
    return Facts(
        release=release,
        version=kernel_version(release),
        status=status,
        euid=os.geteuid(),
        egid=os.getegid(),
        caps=tuple(decode_caps(status.get("CapEff", "0") or "0")),
        seccomp=seccomp(status),
        lsm=lsm(),
        kconfig_source=src,
        kconfig=cfg,
        sysctls={name: sysctl_int(name) for name in GATE_SYSCTLS},
    )


# --- the one fact that needs a child -------------------------------------------------

_SETNS_PIDFD: dict[int, bool] = {}


def _setns_pidfd_body() -> _throwaway.Result:
    pidfd = _sc.pidfd_open(os.getpid())
    try:
        _sc.setns(pidfd, int(CloneFlags.NEWUTS))
    except OSError as err:
        return {"errno": err.errno}
    finally:
        os.close(pidfd)
    return {"errno": 0}


def setns_pidfd_errno(timeout: float = 10.0) -> Optional[int]:
    """Return the errno of setns(pidfd_of_self, CLONE_NEWUTS) in a throwaway child (0: works).

    ``None`` when the child could not answer (it died or timed out).
    """
    res = _throwaway.run(_setns_pidfd_body, timeout)
    err = res.get("errno")
    if "error" in res and err is None:
        return None
    return int(err) if err is not None else None


def setns_accepts_pidfd() -> bool:
    """Whether setns(2) takes a pidfd and a namespace mask here (Linux 5.8).

    Probed by doing, once per process: a throwaway child joins its own UTS
    namespace through a pidfd of itself. Success or EPERM (a refusal of the
    join, after the pidfd was accepted) mean yes; EINVAL, EBADF (pre-5.8: not
    an nsfs file) or no pidfd_open at all mean no. Nothing forks before the
    first call.
    """
    pid = os.getpid()
    if pid not in _SETNS_PIDFD:
        err = setns_pidfd_errno()
        _SETNS_PIDFD.clear()
        _SETNS_PIDFD[pid] = err in (0, errno.EPERM)
    return _SETNS_PIDFD[pid]
