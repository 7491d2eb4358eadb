"""The options of a launch, validated in the parent before anything is created.

Layer 2, private: standard library and nsprim layers 0-2 (:mod:`nsprim.idmap`,
:mod:`nsprim.namespace`, :mod:`nsprim.syscalls`). Every check is a
``ValueError``/``TypeError`` whose message names the parameter and echoes
the value (CPython's Popen does the same), so nothing starts on bad input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence

from . import syscalls as _sc
from ._nstype import NsType
from ._stdlib import signal
from .flags import _MS_PRIVATE, _MS_SHARED, _MS_SLAVE, _MS_UNBINDABLE, CloneFlags

# typing.TYPE_CHECKING without importing typing (see nsprim.process); the
# aliases below exist for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import timedelta
    from typing import Any, Optional, Union

    from ._fd import HasFileno
    from .idmap import IdMap, IdMapLike

    NsSpec = Union[NsType, str, int]
    StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
    StdSpec = Union[None, int, HasFileno]

__all__ = [
    "THREAD_SCOPED",
    "C_INT_MAX",
    "NsOptions",
    "parse_types",
    "pdeathsig_arg",
    "argv_arg",
    "envp_arg",
    "executables",
    "pass_fds_arg",
]

#: The namespace types that setns(2) moves per thread, so :func:`enter` can use them.
THREAD_SCOPED = frozenset({NsType.NET, NsType.UTS, NsType.IPC, NsType.CGROUP})

_ALL_FLAGS = 0
for _t in NsType:
    _ALL_FLAGS |= int(_t.flag)
del _t

_PROPAGATION = {
    "private": _MS_PRIVATE,
    "slave": _MS_SLAVE,
    "shared": _MS_SHARED,
    "unbindable": _MS_UNBINDABLE,
    "unchanged": 0,
}

_CLOCKS = ("monotonic", "boottime")

#: The largest fd (and pid) a C int holds.
C_INT_MAX = 0x7FFFFFFF

# The kernel refuses offsets beyond KTIME_SEC_MAX seconds either way with
# ERANGE (kernel/time/namespace.c, proc_timens_set_offset), after parsing
# them with an overflowing strtoll: refuse them here, by value.
_KTIME_SEC_MAX = (2**63 - 1) // 1_000_000_000

# --- validation ------------------------------------------------------------------------


def parse_types(namespaces: Iterable[NsSpec], name: str = "namespaces") -> frozenset[NsType]:
    if isinstance(namespaces, (str, NsType)):
        namespaces = (namespaces,)
    if not isinstance(namespaces, Iterable):
        raise TypeError(
            f"{name} must be an iterable of namespace types, got "
            f"{type(namespaces).__name__} {namespaces!r}"
        )
    out = set()
    for item in namespaces:
        try:
            out.add(NsType.parse(item))
        except (ValueError, TypeError) as err:
            raise type(err)(f"{name}: {err}") from None
    return frozenset(out)


def _opt_name(value: object, name: str) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, bytes):
        b = value
    else:
        raise TypeError(f"{name} must be str or bytes, got {type(value).__name__} {value!r}")
    if b"\0" in b:
        raise ValueError(f"{name} must not contain a NUL byte, got {value!r}")
    if len(b) > _sc.HOST_NAME_MAX:
        raise ValueError(
            f"{name} must be at most {_sc.HOST_NAME_MAX} bytes, got {len(b)}: {value!r}"
        )
    return b


def _opt_path(value: object, name: str) -> Optional[bytes]:
    if value is None:
        return None
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(value).__name__} {value!r}")
    b = os.fsencode(value)
    if not b or b"\0" in b:
        raise ValueError(f"{name} must be a non-empty path without NUL bytes, got {value!r}")
    return b


def _seconds(value: object, name: str) -> int:
    """Return *value* (seconds: int, float or timedelta) in nanoseconds."""
    # No timedelta exists unless datetime was imported: don't import it here.
    dt = sys.modules.get("datetime")
    if dt is not None and isinstance(value, dt.timedelta):
        td: timedelta = value
        return (td.days * 86400 + td.seconds) * 1_000_000_000 + td.microseconds * 1000
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be seconds (int, float or timedelta), got {value!r}")
    if isinstance(value, float) and not -_KTIME_SEC_MAX <= value <= _KTIME_SEC_MAX:  # NaN, inf
        raise ValueError(
            f"{name} must be a number of seconds within +-{_KTIME_SEC_MAX}, got {value!r}"
        )
    ns = round(value * 1_000_000_000) if isinstance(value, float) else value * 1_000_000_000
    if not -_KTIME_SEC_MAX <= ns // 1_000_000_000 <= _KTIME_SEC_MAX:
        raise ValueError(
            f"{name} must be a number of seconds within +-{_KTIME_SEC_MAX}, got {value!r}"
        )
    return ns


def _format_offsets(offsets: Mapping[str, Any]) -> str:
    if not isinstance(offsets, Mapping):
        raise TypeError(
            f"time_offsets must be a mapping like {{'monotonic': 3600}}, got {offsets!r}"
        )
    lines = []
    for clock, value in offsets.items():
        if clock not in _CLOCKS:
            raise ValueError(f"time_offsets keys must be 'monotonic' or 'boottime', got {clock!r}")
        ns = _seconds(value, f"time_offsets[{clock!r}]")
        sec, nsec = divmod(ns, 1_000_000_000)
        lines.append(f"{clock} {sec} {nsec}\n")
    return "".join(lines)


def pdeathsig_arg(value: object) -> int:
    if isinstance(value, bool):
        return int(signal.SIGKILL) if value else 0
    if isinstance(value, int):
        if not 0 < value < signal.NSIG:
            raise ValueError(
                f"die_with_parent must be a bool or a signal number below {signal.NSIG}, "
                f"got {value}"
            )
        return int(value)
    raise TypeError(f"die_with_parent must be a bool or a signal number, got {value!r}")


def _has_cap(bit: int) -> bool:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


_CAP_SETGID = 6


class NsOptions:
    """The validated namespace options of spawn and call: frozen, keyword-only.

    Built in the parent before anything is created (every bad value is a
    ValueError/TypeError naming the parameter); the child reads it from its
    plan. Options that only make sense in a namespace imply it, as in
    unshare(1): hostname implies uts, maps imply user, root implies mnt.
    """

    __slots__ = (
        "_frozen",
        "binfmt_misc",
        "binfmt_register",
        "cwd",
        "domainname",
        "flags",
        "gid_map",
        "hostname",
        "keep_caps",
        "loopback_up",
        "map_helpers",
        "mount_proc",
        "offsets",
        "owner",
        "pdeathsig",
        "propagation",
        "root",
        "setgroups",
        "types",
        "uid_map",
    )

    def __init__(
        self,
        *,
        namespaces: Iterable[NsSpec] = (),
        hostname: Optional[Union[str, bytes]] = None,
        domainname: Optional[Union[str, bytes]] = None,
        map_root: bool = False,
        uid_map: Optional[IdMapLike] = None,
        gid_map: Optional[IdMapLike] = None,
        setgroups: Optional[str] = None,
        mount_proc: bool = False,
        propagation: str = "private",
        root: Optional[StrPath] = None,
        time_offsets: Optional[Mapping[str, Any]] = None,
        loopback_up: bool = False,
        cwd: Optional[StrPath] = None,
        die_with_parent: Union[bool, int] = True,
        map_helpers: bool = False,
        binfmt_misc: Optional[StrPath] = None,
        owner: Optional[tuple[int, int]] = None,
        keep_caps: bool = False,
        binfmt_register: Iterable[Union[str, bytes]] = (),
    ) -> None:
        # Set first: __setattr__ reads it for each of the twenty fields below,
        # and a missing slot makes each read raise and catch an AttributeError.
        object.__setattr__(self, "_frozen", False)
        types = set(parse_types(namespaces))
        for flag_name, flag in (
            ("map_root", map_root),
            ("map_helpers", map_helpers),
            ("keep_caps", keep_caps),
            ("mount_proc", mount_proc),
            ("loopback_up", loopback_up),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{flag_name} must be a bool, got {flag!r}")
        self.hostname = _opt_name(hostname, "hostname")
        self.domainname = _opt_name(domainname, "domainname")
        self.root = _opt_path(root, "root")
        self.cwd = _opt_path(cwd, "cwd")
        self.pdeathsig = pdeathsig_arg(die_with_parent)
        if map_root and (uid_map is not None or gid_map is not None):
            raise ValueError(
                f"map_root=True maps the caller to 0; it can't be combined with "
                f"uid_map={uid_map!r} or gid_map={gid_map!r}"
            )
        self.uid_map: Optional[IdMap] = None
        self.gid_map: Optional[IdMap] = None
        if uid_map is not None or gid_map is not None or map_root:
            from .idmap import IdMap  # only user namespaces need it

            if uid_map is not None:
                self.uid_map = IdMap.coerce(uid_map, "uid_map")
            if gid_map is not None:
                self.gid_map = IdMap.coerce(gid_map, "gid_map")
        if map_root:
            self.uid_map = IdMap.single(0, os.geteuid())
            self.gid_map = IdMap.single(0, os.getegid())
        if setgroups is not None and setgroups not in ("allow", "deny"):
            raise ValueError(f"setgroups must be 'allow', 'deny' or None, got {setgroups!r}")
        # unshare(1) --map-root-user writes 'deny'; an unprivileged writer
        # must (user_namespaces(7), "Interaction with setgroups").
        if (
            setgroups is None
            and self.gid_map is not None
            and not map_helpers  # newgidmap writes setgroups itself
            and (map_root or not _has_cap(_CAP_SETGID))
        ):
            setgroups = "deny"
        self.map_helpers = map_helpers
        if map_helpers:
            from .idmap import find_map_helper

            # missing helpers are an error before anything is created
            if self.uid_map is not None:
                find_map_helper("newuidmap")
            if self.gid_map is not None:
                find_map_helper("newgidmap")
        self.setgroups = setgroups
        # Options that only make sense in a namespace imply it, as in unshare(1).
        if self.uid_map is not None or self.gid_map is not None or setgroups is not None:
            types.add(NsType.USER)
        if self.hostname is not None or self.domainname is not None:
            types.add(NsType.UTS)
        if loopback_up:
            types.add(NsType.NET)
        if mount_proc:
            if NsType.PID not in types:
                names = sorted(t.value for t in types)
                raise ValueError(
                    "mount_proc=True needs 'pid' in namespaces: a fresh /proc of the "
                    f"caller's own pid namespace isolates nothing (namespaces={names})"
                )
            types.add(NsType.MNT)
        if self.root is not None:
            types.add(NsType.MNT)
        self.binfmt_misc = _opt_path(binfmt_misc, "binfmt_misc")
        if isinstance(binfmt_register, (str, bytes)):
            raise TypeError(
                f"binfmt_register must be an iterable of definitions, got {binfmt_register!r}"
            )
        entries = []
        for entry in binfmt_register:
            raw = entry.encode("utf-8", "surrogateescape") if isinstance(entry, str) else entry
            if not isinstance(raw, bytes) or not raw or b"\0" in raw:
                raise ValueError(f"binfmt_register holds a bad definition: {entry!r}")
            entries.append(raw)
        if entries and self.binfmt_misc is None:
            raise ValueError("binfmt_register needs binfmt_misc (where to register them)")
        self.binfmt_register = tuple(entries)
        self.owner: Optional[tuple[int, int]] = None
        if owner is not None:
            if (
                not isinstance(owner, tuple)
                or len(owner) != 2
                or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 0xFFFFFFFF
                    for v in owner
                )
            ):
                raise ValueError(f"owner must be a (uid, gid) pair of ids, got {owner!r}")
            self.owner = (owner[0], owner[1])
            types.add(NsType.USER)
        if self.binfmt_misc is not None:
            types.add(NsType.MNT)
        self.offsets = _format_offsets(time_offsets) if time_offsets is not None else None
        if self.offsets is not None:
            types.add(NsType.TIME)
        if not isinstance(propagation, str) or propagation not in _PROPAGATION:
            raise ValueError(
                f"propagation must be one of {', '.join(_PROPAGATION)}, got {propagation!r}"
            )
        if NsType.MNT in types:
            self.propagation = _PROPAGATION[propagation]
            if self.root is not None and self.propagation in (0, _MS_SHARED):
                raise ValueError(
                    f"root needs propagation 'private', 'slave' or 'unbindable' "
                    f"(pivot_root(2) refuses shared mounts), got {propagation!r}"
                )
        else:
            if propagation not in ("private", "unchanged"):
                raise ValueError(f"propagation={propagation!r} needs 'mnt' in namespaces")
            self.propagation = 0
        self.mount_proc = mount_proc
        # unshare(1): --keep-caps acts only with a new user namespace
        self.keep_caps = keep_caps and NsType.USER in types
        self.loopback_up = loopback_up
        self.types = frozenset(types)
        flags = 0
        for t in types:
            flags |= int(t.flag)
        # unshare(CLONE_NEWTIME) moves only the caller's children
        # (time_namespaces(7)); offsets can only be written before any
        # process is in the namespace (timens_offsets, Linux 5.6). So the
        # child unshares it on its own, the parent writes any offsets, and
        # the child enters it with setns(time_for_children).
        flags &= ~int(CloneFlags.NEWTIME)
        self.flags = flags
        self._frozen = True

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"NsOptions is frozen; can't set {name}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        types = ",".join(sorted(t.value for t in self.types))
        return f"<NsOptions types={types} pdeathsig={self.pdeathsig}>"

    @property
    def unshare_time(self) -> bool:
        """The child unshares a time namespace itself and enters it after the go."""
        return NsType.TIME in self.types

    @property
    def sync(self) -> bool:
        return (
            self.uid_map is not None
            or self.gid_map is not None
            or bool(self.setgroups or self.offsets)
        )


def argv_arg(args: object) -> tuple[bytes, ...]:
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    if not isinstance(args, Sequence) or not args:
        raise ValueError(f"args must be a non-empty sequence of str/bytes/PathLike, got {args!r}")
    out = []
    for i, a in enumerate(args):
        if not isinstance(a, (str, bytes, os.PathLike)):
            raise TypeError(
                f"args[{i}] must be str, bytes or PathLike, got {type(a).__name__} {a!r}"
            )
        b = os.fsencode(a)
        if b"\0" in b:
            raise ValueError(f"args[{i}] must not contain a NUL byte, got {a!r}")
        out.append(b)
    return tuple(out)


def envp_arg(env: Optional[Mapping[Any, Any]]) -> Optional[dict[bytes, bytes]]:
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping or None, got {type(env).__name__}")
    out = {}
    for k, v in env.items():
        kb, vb = os.fsencode(k), os.fsencode(v)
        if not kb or b"=" in kb or b"\0" in kb or b"\0" in vb:
            raise ValueError(f"env has an invalid entry {k!r}={v!r}")
        out[kb] = vb
    return out


def executables(argv0: bytes, env: Optional[Mapping[Any, Any]]) -> tuple[bytes, ...]:
    if b"/" in argv0:
        return (argv0,)
    # PATH of the child's environment, as CPython's _execute_child computes it.
    path_env: Optional[Mapping[Any, Any]] = env
    if env is not None and b"PATH" not in {os.fsencode(k) for k in env}:
        path_env = None
    dirs = os.get_exec_path(path_env)
    return tuple(os.path.join(os.fsencode(d), argv0) for d in dirs)


def pass_fds_arg(pass_fds: Iterable[int]) -> tuple[int, ...]:
    if isinstance(pass_fds, (str, bytes)) or not isinstance(pass_fds, Iterable):
        raise TypeError(f"pass_fds must be an iterable of fds, got {pass_fds!r}")
    out = set()
    for fd in pass_fds:
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"pass_fds must hold ints, got {fd!r}")
        if fd < 3:
            raise ValueError(f"pass_fds must hold fds >= 3 (0-2 are stdin/stdout/stderr), got {fd}")
        if fd > C_INT_MAX:
            raise ValueError(f"pass_fds must hold fds that fit a C int, got {fd}")
        os.fstat(fd)  # EBADF now, not in the child
        out.add(fd)
    return tuple(sorted(out))
