"""The probe engine: each namespace operation tried by doing, once, in a throwaway child.

Layer 2: standard library, :mod:`nsprim.syscalls`, :mod:`nsprim.flags`,
:mod:`nsprim.namespace`, :mod:`nsprim.errors` and (inside throwaway children
only) :mod:`nsprim.net`.

Creating a namespace says little about *using* it: in a container whose
seccomp profile refuses sethostname(2), a UTS namespace can be created and
no hostname set; under AppArmor's ``kernel.apparmor_restrict_unprivileged_userns``
a user namespace is created and every privileged use inside it fails. So
every operation below is done for real, in a forked child that is reaped
before :func:`operations` returns, and a refusal is attributed to its source:

- ``seccomp``: the same call with arguments the kernel rejects *before* any
  permission check (an unknown flag bit, a bad fd, a missing path, a 65-byte
  hostname with CAP_SYS_ADMIN held) gets the refusal's errno instead of the
  kernel's EINVAL/EBADF/ENOENT: a filter answered. ENOSYS with a filter active
  on a kernel that has the call is the filter's, too.
- ``lsm``, ``sysctl``, ``limit``, ``capability``, ``cgroup-delegation`` from
  the facts of :mod:`nsprim.compat.facts` (the AppArmor restriction sysctls,
  ``kernel.unprivileged_userns_clone``, ``user.max_*_namespaces``, CapEff,
  the cgroup directory's permissions).
- ``kernel``: the kernel lacks it (too old, configured out: the operation is
  *absent*), or a kernel rule refuses it (a fresh /proc where /proc has covered
  parts).

Results are cached for the process and the environment (pid, user namespace,
credentials, seccomp filters): a forked child that installs a filter or drops
capabilities probes afresh.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .. import syscalls as _sc
from ..errors import UnsupportedError
from ..flags import CloneFlags, MountAttrFlags, MountFlags
from ..namespace import NsType
from . import _throwaway
from .facts import Facts, ename, gather, read_int, status_fields

__all__ = [
    "Refusal",
    "explain",
    "PremiseError",
    "unshare_verified",
    "OperationResult",
    "OPERATIONS",
    "STATES",
    "operations",
    "clear_cache",
    "kconfig_name",
]

#: Every operation, in report order.
OPERATIONS = (
    "unshare.user",
    "idmap",
    "unshare.mnt",
    "unshare.uts",
    "unshare.ipc",
    "unshare.pid",
    "unshare.net",
    "unshare.cgroup",
    "unshare.time",
    "sethostname",
    "setdomainname",
    "mount.tmpfs",
    "mount.proc",
    "net.lo_up",
    "setns",
    "timens_offsets",
    "mount_setattr",
    "clone3",
    "clone3.pidfd",
    "clone3.set_tid",
    "clone3.into_cgroup",
    "cgroup.create",
)
#: ``available``; ``refused`` by a policy or rule; ``absent`` from this kernel;
#: ``broken``: the call returned 0 and did nothing (the namespace is unchanged).
STATES = ("available", "refused", "absent", "broken")

#: What each operation does, for people.
DESCRIPTION = {
    "unshare.user": "create a user namespace",
    "idmap": "create a user namespace and write its uid/gid maps",
    "sethostname": "set a hostname in a new UTS namespace",
    "setdomainname": "set a domain name in a new UTS namespace",
    "mount.tmpfs": "mount a tmpfs in a new mount namespace",
    "mount.proc": "mount a fresh /proc in new mount and pid namespaces",
    "net.lo_up": "bring lo up in a new network namespace",
    "setns": "setns(2) back into a UTS namespace left by unshare",
    "timens_offsets": "write timens_offsets in a new time namespace",
    "mount_setattr": "make a new mount read-only with mount_setattr(2)",
    "clone3": "start a child with clone3(2)",
    "clone3.pidfd": "start a child with clone3(CLONE_PIDFD)",
    "clone3.set_tid": "choose pid 1 of a new pid namespace with clone3 set_tid",
    "clone3.into_cgroup": "start a child in a new cgroup with clone3(CLONE_INTO_CGROUP)",
    "cgroup.create": "create a child cgroup of this process's cgroup v2",
}
for _t in NsType:
    DESCRIPTION[f"unshare.{_t.value}"] = f"create a new {_t.value} namespace"

#: Which kernel first had each operation.
SINCE = {
    "timens_offsets": "Linux 5.6",
    "mount_setattr": "Linux 5.12",
    "clone3": "Linux 5.3",
    "clone3.pidfd": "Linux 5.3",
    "clone3.set_tid": "Linux 5.5",
    "clone3.into_cgroup": "Linux 5.7",
    "setns": "Linux 3.0",
    "unshare": "Linux 2.6.16",
}


def kconfig_name(t: NsType) -> str:
    """The kernel option that builds namespace type *t* (without ``CONFIG_``)."""
    return {NsType.MNT: "NAMESPACES", NsType.CGROUP: "CGROUPS"}.get(t, f"{t.value.upper()}_NS")


@dataclass(frozen=True)
class OperationResult:
    """What happened when an operation was tried here.

    Attributes:
        name: the operation (one of :data:`OPERATIONS`).
        available: it worked.
        state: ``"available"``, ``"refused"`` (a policy or kernel rule said
            no), ``"absent"`` (this kernel lacks it) or ``"broken"`` (it
            returned 0 and did nothing: a filter faking success).
        cause: a sentence for people saying why not (``""`` when available),
            e.g. ``"a seccomp filter returns EPERM for sethostname(2)"``.
        source: one of :data:`~nsprim.compat.SOURCES` when not available.
        errno: the errno of the refused step, else ``None``.
        fix: how to lift the refusal where a fix exists, else ``""``.
        detail: the steps tried and their answers.
        rootless: tried inside a new user namespace (as nobody when the
            caller was root), rather than directly as the caller.
    """

    name: str
    available: bool
    state: str
    cause: str
    source: Optional[str]
    errno: Optional[int]
    fix: str
    detail: str
    rootless: bool


# --- the child side -----------------------------------------------------------------


class _Stop(Exception):
    """A step failed; the record is in the runner."""


def _has_cap(bit: int) -> Optional[bool]:
    try:
        return bool(_sc.capget()[0] >> bit & 1)
    except OSError:
        return None


class _Steps:
    """Runs the steps of one operation in the child and records the first failure."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.failed: Optional[dict[str, Any]] = None
        self.notes: list[str] = []

    def do(
        self,
        step: str,
        call: str,
        fn: Callable[[], Any],
        *,
        sentinel: Optional[Callable[[], int]] = None,
        type_: Optional[NsType] = None,
    ) -> Any:
        try:
            value = fn()
        except UnsupportedError:
            err = errno.ENOSYS
        except OSError as exc:
            err = exc.errno or errno.EIO
        else:
            self.done.append(step)
            return value
        rec: dict[str, Any] = {"step": step, "call": call, "errno": err}
        if type_ is not None:
            rec["type"] = type_.value
        if sentinel is not None and err in (errno.EPERM, errno.EACCES, errno.ENOSYS):
            rec["sentinel"] = sentinel()
            rec["cap_sys_admin"] = _has_cap(_CAP_SYS_ADMIN)
        self.failed = rec
        raise _Stop

    def premise(self, text: str) -> None:
        """An operation returned success and did nothing."""
        self.failed = {"step": text, "call": "", "errno": 0, "premise": text}
        raise _Stop

    def result(self) -> _throwaway.Result:
        return {"done": self.done, "failed": self.failed, "notes": self.notes}


def _ns_ino(t: NsType, children: bool = False) -> str:
    name = f"{t.value}_for_children" if children else t.value
    try:
        return os.readlink(f"/proc/self/ns/{name}")
    except FileNotFoundError:
        # A new pid namespace has no pid_for_children link until its first
        # process (pid 1, the child reaper) exists: that is a new namespace.
        return "pending"


_CAP_SYS_ADMIN = 21
_CAP_SETFCAP = 31
#: Whether the caller held CAP_SETFCAP before its unshare(CLONE_NEWUSER) (set in the child).
_parent_cap_setfcap: Optional[bool] = None


_NS_WORD = {NsType.MNT: "mount", NsType.USER: "user", NsType.CGROUP: "cgroup", NsType.TIME: "time"}


def _unshare(s: _Steps, t: NsType) -> None:
    """unshare(CLONE_NEW<t>), then check by identity that the namespace is new."""
    global _parent_cap_setfcap
    if t is NsType.USER:
        _parent_cap_setfcap = _has_cap(_CAP_SETFCAP)
    later = t in (NsType.PID, NsType.TIME)
    before = _ns_ino(t, later)
    flag = int(t.flag)
    s.do(
        f"unshare(CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()})",
        "unshare",
        lambda: _sc.unshare(flag),
        # An unknown flag bit: the kernel says EINVAL before any permission check.
        sentinel=lambda: _sc.unshare_errno(flag | 0x1),
        type_=t,
    )
    if _ns_ino(t, later) == before:
        s.premise(
            f"unshare(CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()}) returned 0 "
            f"and the {_NS_WORD.get(t, t.value.upper())} namespace is unchanged"
        )


class PremiseError(RuntimeError):
    """unshare(2) returned 0 and a namespace it was asked for is unchanged."""


def unshare_verified(flags: int) -> None:
    """unshare(*flags*), then confirm by identity that each namespace asked for is new.

    Raises:
        PremiseError: unshare returned 0 and a namespace is unchanged (a filter
            faking success): nothing may then be done "inside" it.
        OSError: the kernel refused.
    """
    kinds = [t for t in NsType if flags & int(t.flag)]
    before = {t: _ns_ino(t, t in (NsType.PID, NsType.TIME)) for t in kinds}
    _sc.unshare(flags)
    for t in kinds:
        if _ns_ino(t, t in (NsType.PID, NsType.TIME)) == before[t]:
            raise PremiseError(
                f"unshare(CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()}) returned 0 "
                f"and the {_NS_WORD.get(t, t.value.upper())} namespace is unchanged"
            )


def _enter_rootless(s: _Steps, drop: bool, maps: bool = True) -> None:
    if drop:
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            s.notes.append("as nobody (uid 65534)")
        except OSError as err:
            # uid 65534 is not mapped here (inside a user namespace): drop
            # CAP_SYS_ADMIN instead, which is what the kernel's gates look at.
            eff, prm, inh = _sc.capget()
            mask = ~(1 << _CAP_SYS_ADMIN)
            _sc.capset(eff & mask, prm & mask, inh & mask)
            s.notes.append(
                f"as uid {os.geteuid()} without CAP_SYS_ADMIN (nobody: {ename(err.errno)})"
            )
    uid, gid = os.geteuid(), os.getegid()
    _unshare(s, NsType.USER)
    if maps:
        _write_maps(s, uid, gid)


def _write_maps(s: _Steps, uid: int, gid: int) -> None:
    """Map root of the new user namespace to the caller's ids (read before the unshare)."""
    try:
        s.do("write uid_map/gid_map", "idmap", lambda: _throwaway.map_self(uid, gid))
    except _Stop:
        assert s.failed is not None
        s.failed["outer_uid"] = uid
        s.failed["cap_setfcap"] = _parent_cap_setfcap
        raise


def _private_tmpfs(s: _Steps) -> str:
    _unshare(s, NsType.MNT)
    s.do(
        "mount --make-rprivate /",
        "mount",
        lambda: _sc.mount(None, "/", None, int(MountFlags.REC | MountFlags.PRIVATE)),
        sentinel=lambda: _sc.mount_errno(None, b"/nonexistent/nsprim-probe", None, 0),
    )
    target = "/tmp" if os.path.isdir("/tmp") else "/mnt"
    s.do(
        "mount -t tmpfs",
        "mount",
        lambda: _sc.mount("tmpfs", target, "tmpfs", int(MountFlags.NOSUID | MountFlags.NODEV)),
        sentinel=lambda: _sc.mount_errno(b"tmpfs", b"/nonexistent/nsprim-probe", b"tmpfs", 0),
    )
    return target


def _uts_name(s: _Steps, call: str) -> None:
    _unshare(s, NsType.UTS)
    raw = _sc.sethostname_errno if call == "sethostname" else _sc.setdomainname_errno
    err = raw(b"nsprim-probe")
    if err:
        # Through the same Steps record, with the sentinel: 65 bytes is EINVAL
        # from the kernel once the capability check has passed.
        def fail() -> None:
            raise OSError(err, os.strerror(err))

        s.do(f"{call}(2)", call, fail, sentinel=lambda: raw(b"h" * 65))
    s.done.append(f"{call}(2)")


def _cgroup2_dir() -> tuple[Optional[str], str]:
    """Return (this process's cgroup v2 directory, why not) from mountinfo and /proc/self/cgroup."""
    mnt = None
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode("utf-8", "surrogateescape").splitlines():
            p = line.split(" ")
            if "-" in p and p[p.index("-") + 1] == "cgroup2" and p[3] == "/":
                mnt = p[4].replace("\\040", " ")
                break
    if mnt is None:
        return None, "no cgroup v2 hierarchy is mounted"
    path = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                path = line[3:].strip()
    if path is None:
        return None, "/proc/self/cgroup has no cgroup v2 (0::) line"
    return os.path.join(mnt, path.lstrip("/")), ""


def _cgroup_create(s: _Steps, name: str) -> str:
    base, why = _cgroup2_dir()
    if base is None:

        def none() -> None:
            raise OSError(errno.ENOENT, why)

        s.do(why, "cgroup", none)
    assert base is not None
    path = os.path.join(base, name)
    s.do(f"mkdir {path}", "cgroup", lambda: os.mkdir(path))
    return path


def _body(name: str, *, rootless: bool, drop: bool, cgroup_name: str) -> _throwaway.Result:
    s = _Steps()
    try:
        if name == "unshare.user":
            if drop:
                _enter_rootless(s, drop=True, maps=False)
            else:
                _unshare(s, NsType.USER)
            return s.result()
        if name == "idmap":
            if rootless:
                _enter_rootless(s, drop=drop)
            else:
                uid, gid = os.geteuid(), os.getegid()
                _unshare(s, NsType.USER)
                _write_maps(s, uid, gid)
            return s.result()
        if rootless:
            _enter_rootless(s, drop=drop)
        _OPS[name](s, cgroup_name)
    except _Stop:
        pass
    return s.result()


def _op_unshare(t: NsType) -> Callable[[_Steps, str], None]:
    def op(s: _Steps, _cg: str) -> None:
        _unshare(s, t)

    return op


def _op_mount_proc(s: _Steps, _cg: str) -> None:
    _unshare(s, NsType.MNT)
    _unshare(s, NsType.PID)

    def pid1() -> _throwaway.Result:
        inner = _Steps()
        try:
            _sc.set_pdeathsig(9)
            inner.do(
                "mount --make-rprivate /",
                "mount",
                lambda: _sc.mount(None, "/", None, int(MountFlags.REC | MountFlags.PRIVATE)),
            )
            inner.do(
                "mount -t proc (as pid 1 of the new pid namespace)",
                "mount",
                lambda: _sc.mount(
                    "proc",
                    "/proc",
                    "proc",
                    int(MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC),
                ),
                sentinel=lambda: _sc.mount_errno(b"proc", b"/nonexistent/nsprim-probe", b"proc", 0),
            )
            inner.done.append(f"getpid() = {os.getpid()}")
        except _Stop:
            pass
        return inner.result()

    res = _throwaway.run(pid1, 10.0)
    if "error" in res:
        s.do("pid 1 child", "fork", lambda: _raise(res.get("errno") or errno.EIO))
    s.done.extend(res["done"])
    if res["failed"]:
        s.failed = res["failed"]
        raise _Stop


def _raise(err: int) -> None:
    raise OSError(err, os.strerror(err))


def _op_lo_up(s: _Steps, _cg: str) -> None:
    from .. import net  # only in the throwaway child

    _unshare(s, NsType.NET)
    s.do("set lo up (RTM_NEWLINK)", "netlink", lambda: net.set_link_up("lo"))
    if not net.is_up("lo"):
        s.premise("lo is still down after it was set up")


def _op_setns(s: _Steps, _cg: str) -> None:
    # setns itself is the question: the first type this process may create
    # twice serves (a capped or refused UTS type must not make setns look refused).
    first: Optional[dict[str, Any]] = None
    for t in (NsType.UTS, NsType.IPC, NsType.CGROUP, NsType.NET, NsType.MNT):
        trial = _Steps()
        try:
            _unshare(trial, t)
            fd = os.open(f"/proc/self/ns/{t.value}", os.O_RDONLY | os.O_CLOEXEC)
            target = _ns_ino(t)
            _unshare(trial, t)
        except _Stop:
            first = first or trial.failed
            continue
        s.done.extend(trial.done)
        flag = int(t.flag)
        name = f"CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()}"
        s.do(
            f"setns(fd, {name})",
            "setns",
            functools.partial(_sc.setns, fd, flag),
            sentinel=functools.partial(_sc.setns_errno, -1, flag),
        )
        if _ns_ino(t) != target:
            s.premise(f"setns({name}) returned 0 and the thread is not in the target namespace")
        return
    s.failed = first
    raise _Stop


def _op_timens(s: _Steps, _cg: str) -> None:
    _unshare(s, NsType.TIME)

    def write() -> None:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("monotonic 1 0\n")

    s.do("write /proc/self/timens_offsets", "timens_offsets", write)


def _op_mount_setattr(s: _Steps, _cg: str) -> None:
    target = _private_tmpfs(s)
    s.do(
        "mount_setattr(MOUNT_ATTR_RDONLY)",
        "mount_setattr",
        lambda: _sc.mount_setattr(target, attr_set=int(MountAttrFlags.RDONLY)),
        sentinel=lambda: _sc.syscall_errno("mount_setattr", -1, 0, 0, 0, 0),
    )


def _clone3(s: _Steps, step: str, call: str, type_: Optional[NsType] = None, **kw: Any) -> None:
    def go() -> None:
        ret = _sc.clone3(**kw)
        pid, pidfd = ret if isinstance(ret, tuple) else (ret, -1)
        if pid == 0:  # pragma: no cover - the clone3 child
            os._exit(0)
        if pidfd >= 0:
            os.close(pidfd)
        os.waitpid(pid, 0)

    s.do(step, call, go, sentinel=lambda: _sc.syscall_errno("clone3", 0, 0), type_=type_)


def _op_clone3(s: _Steps, _cg: str) -> None:
    _clone3(s, "clone3()", "clone3")


def _op_clone3_pidfd(s: _Steps, _cg: str) -> None:
    _clone3(s, "clone3(CLONE_PIDFD)", "clone3.pidfd", pidfd=True)


def _op_clone3_set_tid(s: _Steps, _cg: str) -> None:
    _clone3(
        s,
        "clone3(CLONE_NEWPID, set_tid=[1])",
        "clone3.set_tid",
        NsType.PID,
        flags=int(CloneFlags.NEWPID),
        set_tid=[1],
    )


def _op_clone3_cgroup(s: _Steps, cg: str) -> None:
    path = _cgroup_create(s, cg)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _clone3(s, "clone3(CLONE_INTO_CGROUP)", "clone3.into_cgroup", cgroup=fd)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _op_cgroup_create(s: _Steps, cg: str) -> None:
    path = _cgroup_create(s, cg)
    with contextlib.suppress(OSError):
        os.rmdir(path)


_OPS: dict[str, Callable[[_Steps, str], None]] = {
    **{f"unshare.{t.value}": _op_unshare(t) for t in NsType if t is not NsType.USER},
    "sethostname": lambda s, _cg: _uts_name(s, "sethostname"),
    "setdomainname": lambda s, _cg: _uts_name(s, "setdomainname"),
    "mount.tmpfs": lambda s, _cg: (_private_tmpfs(s), None)[1],
    "mount.proc": _op_mount_proc,
    "net.lo_up": _op_lo_up,
    "setns": _op_setns,
    "timens_offsets": _op_timens,
    "mount_setattr": _op_mount_setattr,
    "clone3": _op_clone3,
    "clone3.pidfd": _op_clone3_pidfd,
    "clone3.set_tid": _op_clone3_set_tid,
    "clone3.into_cgroup": _op_clone3_cgroup,
    "cgroup.create": _op_cgroup_create,
}


# --- attribution ----------------------------------------------------------------------

_SECCOMP_FIX = (
    "run under a seccomp profile that allows it (docker/podman: --security-opt "
    "seccomp=PROFILE with the call allowed)"
)
_CAP_FIX = (
    "run as root with CAP_SYS_ADMIN (docker/podman: --cap-add SYS_ADMIN), or rootless "
    "inside a new user namespace"
)
_AA_FIX = (
    "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give the program an "
    "AppArmor profile with the 'userns,' rule"
)


def _ver(f: Facts) -> str:
    return f"Linux {f.version[0]}.{f.version[1]}"


def _attribute(
    name: str, rec: dict[str, Any], f: Facts, *, rootless: bool, dropped: bool
) -> tuple[str, Optional[str], str, str]:
    """Return ``(state, source, cause, fix)`` for a failed step record."""
    if rec.get("premise"):
        src = "seccomp" if f.seccomp.filtered else "kernel"
        why = f" ({f.seccomp.text()}: a filter may fake success)" if f.seccomp.filtered else ""
        return "broken", src, rec["premise"] + why, ""
    err = int(rec["errno"])
    call = str(rec["call"])
    step = str(rec["step"])
    t = NsType(rec["type"]) if rec.get("type") else None
    shown = step.split("(")[0] if call in ("unshare", "setns") else call
    if call in ("sethostname", "setdomainname", "clone3", "mount_setattr"):
        shown = call
    elif call.startswith("clone3."):
        shown = "clone3"
    unprivileged = dropped or not f.root or rootless
    if err == errno.ENOSYS:
        since = SINCE.get(call) or SINCE.get(name)
        if f.seccomp.filtered and (since is None or f.at_least(since)):
            have = f" ({_ver(f)} has it)" if since else ""
            return (
                "refused",
                "seccomp",
                f"{shown}(2) returns ENOSYS from a seccomp filter{have}",
                _SECCOMP_FIX,
            )
        if since and not f.at_least(since):
            return (
                "absent",
                "kernel",
                f"{shown}(2) is not in this kernel (needs {since}, running {_ver(f)})",
                f"a kernel of {since} or later",
            )
        return "absent", "kernel", f"{shown}(2) answers ENOSYS: not built into this kernel", ""
    if err == errno.EINVAL and t is not None and call == "unshare":
        opt = kconfig_name(t)
        if f.kconfig_source is not None and not f.kconfig.enabled(opt):
            return (
                "absent",
                "kernel",
                f"this kernel is built without CONFIG_{opt} ({t.value} namespaces)",
                f"a kernel built with CONFIG_{opt}=y",
            )
        if not f.at_least(t.since):
            return (
                "absent",
                "kernel",
                f"{t.value} namespaces are not in this kernel (need {t.since})",
                f"a kernel of {t.since} or later",
            )
    if err in (errno.ENOSPC, errno.EUSERS) and t is not None:
        key = f"user.max_{t.value}_namespaces"
        limit = f.sysctls.get(key)
        if limit == 0:
            return (
                "refused",
                "limit",
                f"{key} is 0",
                f"sysctl -w {key}=N (N > 0) in the user namespace that set it",
            )
        return (
            "refused",
            "limit",
            f"the {key} limit ({limit}) of this or an ancestor user namespace is reached, "
            "or user namespaces are nested 32 deep",
            f"raise {key}, or nest fewer user namespaces",
        )
    if call == "cgroup":
        if err == errno.EROFS:
            return (
                "refused",
                "cgroup-delegation",
                "the cgroup hierarchy is mounted read-only here (EROFS creating a child cgroup)",
                "give the container a writable cgroup (a delegated cgroup v2 subtree, "
                "e.g. podman --cgroupns=private, or bind it read-write)",
            )
        if err in (errno.EACCES, errno.EPERM):
            return (
                "refused",
                "cgroup-delegation",
                f"this process's cgroup is not delegated to uid "
                f"{os.geteuid() if not dropped else 65534} "
                f"({ename(err)} creating a child cgroup)",
                "delegate a cgroup v2 subtree to the user (systemd: Delegate=yes, e.g. "
                "systemd-run --user --scope -p Delegate=yes; or chown the cgroup directory)",
            )
        if err == errno.ENOENT:
            return (
                "refused",
                "cgroup-delegation",
                f"{step} (cgroup v1 only, or cgroup2 not mounted here)",
                "boot with systemd.unified_cgroup_hierarchy=1, or mount cgroup2",
            )
    if err in (errno.EPERM, errno.EACCES):
        sentinel = rec.get("sentinel")
        conclusive = sentinel is not None and (
            call not in ("sethostname", "setdomainname") or rec.get("cap_sys_admin")
        )
        if conclusive and sentinel == err and f.seccomp.filtered:
            return (
                "refused",
                "seccomp",
                f"a seccomp filter returns {ename(err)} for {shown}(2)",
                _SECCOMP_FIX,
            )
        if call == "idmap" and rec.get("outer_uid") == 0 and rec.get("cap_setfcap") is False:
            return (
                "refused",
                "capability",
                "mapping uid 0 of the parent user namespace needs CAP_SETFCAP there "
                "(Linux 5.12+), which this process lacks",
                "keep CAP_SETFCAP (docker/podman: --cap-add SETFCAP), or run as a non-root uid",
            )
        aa = f.sysctls.get("kernel.apparmor_restrict_unprivileged_userns")
        if unprivileged and aa == 1 and (rootless or t is NsType.USER):
            return (
                "refused",
                "lsm",
                "AppArmor restricts unprivileged user namespaces "
                "(kernel.apparmor_restrict_unprivileged_userns=1)",
                _AA_FIX,
            )
        clone = f.sysctls.get("kernel.unprivileged_userns_clone")
        if t is NsType.USER and call == "unshare" and unprivileged and clone == 0:
            return (
                "refused",
                "sysctl",
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)",
                "sysctl -w kernel.unprivileged_userns_clone=1",
            )
        if f.lsm.confined:
            who = f"AppArmor label {f.lsm.label}" if f.lsm.label else "SELinux (enforcing)"
            return (
                "refused",
                "lsm",
                f"the LSM policy confining this process ({who}) refuses {shown}(2) "
                f"with {ename(err)}",
                "run the program unconfined or extend its LSM policy",
            )
        if call == "mount" and "proc" in step and rootless:
            return (
                "refused",
                "kernel",
                "the kernel refuses a fresh /proc in a user namespace while this /proc has "
                "covered parts (mount_too_revealing: a container masks /proc paths)",
                "bind the existing /proc instead, or run where /proc is fully visible",
            )
        if not rootless and not f.root:
            cap = "CAP_NET_ADMIN" if call == "netlink" else "CAP_SYS_ADMIN"
            return (
                "refused",
                "capability",
                f"no {cap} in the caller's user namespace ({ename(err)} from {shown})",
                _CAP_FIX,
            )
        if f.seccomp.filtered:
            return (
                "refused",
                "seccomp",
                f"a seccomp filter (a rule on the arguments) refuses {shown}(2) with {ename(err)}",
                _SECCOMP_FIX,
            )
        if t is NsType.USER and call == "unshare":
            return (
                "refused",
                "kernel",
                "unshare(CLONE_NEWUSER) gives EPERM: the caller is chrooted or its ids are "
                "unmapped in its user namespace (user_namespaces(7))",
                "",
            )
        return "refused", "kernel", f"the kernel refuses {step} with {ename(err)} here", ""
    return "refused", "kernel", f"{step} fails with {ename(err)}: {os.strerror(err)}", ""


@dataclass(frozen=True)
class Refusal:
    """Why a call failed here: the answer of :func:`explain`.

    Attributes:
        state: ``"refused"`` or ``"absent"`` (this kernel lacks the call).
        source: one of :data:`~nsprim.compat.SOURCES`.
        cause: one sentence for people.
        fix: how to lift it, or ``""``.
    """

    state: str
    source: str
    cause: str
    fix: str


_CALLS = ("unshare", "setns", "sethostname", "setdomainname", "mount", "clone3", "mount_setattr")


def explain(
    call: str,
    err: int,
    *,
    nstype: Optional[str] = None,
    rootless: Optional[bool] = None,
    facts: Optional[Facts] = None,
) -> Refusal:
    """Say why *call* failed with *err* in this process, by the rules of :func:`operations`.

    For an errno a caller saw itself (a conformance check, say): the same
    attribution as the engine's, from the facts alone (no sentinel call is
    made, so an argument-filtering seccomp rule and the kernel's own EPERM are
    told apart only as far as the facts allow). Makes no syscall beyond reading
    /proc and /sys.

    Args:
        call: the syscall name (``"sethostname"``, ``"unshare"``, ``"clone3"``...).
        err: its errno (EPERM, EACCES, ENOSYS, ENOSPC, EUSERS, EINVAL...).
        nstype: the namespace type the call created or joined (``"net"``), if any.
        rootless: whether the caller was inside a user namespace of its own
            (default: when it lacks CAP_SYS_ADMIN in its own).

    Raises:
        ValueError: an unknown call, a non-positive errno or an unknown type.
        TypeError: *err* is not an int.
    """
    if call not in _CALLS:
        raise ValueError(f"call must be one of {', '.join(_CALLS)}, got {call!r}")
    if isinstance(err, bool) or not isinstance(err, int):
        raise TypeError(f"err must be an errno number, got {err!r}")
    if not 0 < err < 4096:  # MAX_ERRNO
        raise ValueError(f"err must be a positive errno below 4096, got {err}")
    if rootless is not None and not isinstance(rootless, bool):
        raise TypeError(f"rootless must be a bool or None, got {rootless!r}")
    t = NsType.parse(nstype) if nstype is not None else None
    f = facts if facts is not None else gather()
    mode = (not f.root) if rootless is None else rootless
    rec: dict[str, Any] = {"step": f"{call}(2)", "call": call, "errno": err}
    if t is not None:
        rec["type"] = t.value
    state, source, cause, fix = _attribute(call, rec, f, rootless=mode, dropped=False)
    return Refusal(state, source or "kernel", cause, fix)


def _result(
    name: str, res: _throwaway.Result, f: Facts, *, rootless: bool, dropped: bool
) -> OperationResult:
    if "error" in res and "done" not in res:
        return OperationResult(
            name=name,
            available=False,
            state="refused",
            cause=f"the probe child failed: {res['error']}",
            source=None,
            errno=res.get("errno"),
            fix="",
            detail=str(res["error"]),
            rootless=rootless,
        )
    steps = "; ".join([*res.get("notes", []), *res["done"]])
    rec = res["failed"]
    if not rec:
        return OperationResult(
            name=name,
            available=True,
            state="available",
            cause="",
            source=None,
            errno=None,
            fix="",
            detail=steps or DESCRIPTION[name],
            rootless=rootless,
        )
    state, source, cause, fix = _attribute(name, rec, f, rootless=rootless, dropped=dropped)
    got = "returned 0 but did nothing" if rec.get("premise") else ename(rec["errno"])
    detail = f"{steps + '; ' if steps else ''}{rec['step']} -> {got}"
    if rec.get("sentinel") is not None:
        detail += (
            f" (the same call with arguments the kernel rejects first -> {ename(rec['sentinel'])})"
        )
    if source == "seccomp":
        detail += f"; {f.seccomp.text()}"
    return OperationResult(
        name=name,
        available=False,
        state=state,
        cause=cause,
        source=source,
        errno=rec["errno"] or None,
        fix=fix,
        detail=detail,
        rootless=rootless,
    )


# --- the public entry -----------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], dict[str, OperationResult]] = {}
_SEQ = [0]


def _fingerprint() -> tuple[Any, ...]:
    st = status_fields()
    try:
        userns = os.stat("/proc/self/ns/user").st_ino
    except OSError:
        userns = None
    return (
        os.getpid(),
        os.geteuid(),
        userns,
        st.get("CapEff"),
        st.get("CapBnd"),
        st.get("Seccomp"),
        st.get("Seccomp_filters"),
        st.get("NoNewPrivs"),
    )


def clear_cache() -> None:
    """Forget every cached result (the next :func:`operations` probes again)."""
    _CACHE.clear()


def operations(
    *,
    rootless: Optional[bool] = None,
    timeout: float = 10.0,
    names: Optional[Sequence[str]] = None,
    facts: Optional[Facts] = None,
) -> dict[str, OperationResult]:
    """Try each namespace operation here, once, and say which work and why not.

    Each operation runs in its own throwaway forked child (reaped, *timeout*
    seconds at most), so nothing changes in the caller; results are cached
    for this process and environment. Needs no privilege: unprivileged
    callers get refusals with their causes. The syscalls tried need Linux
    2.6.16 (unshare) up to 5.12 (mount_setattr); what this kernel lacks is
    reported ``absent``.

    Args:
        rootless: ``False``: directly as the caller; ``True``: inside a new
            user namespace, as nobody (uid 65534) when the caller holds
            CAP_SYS_ADMIN, so that the answer is an unprivileged user's;
            ``None`` (default): rootless exactly when the caller lacks
            CAP_SYS_ADMIN, i.e. as this process would do it.
        timeout: seconds each child may take.
        names: the operations to try (default :data:`OPERATIONS`).
        facts: facts already gathered (default: read now).

    Returns:
        ``{name: OperationResult}`` in :data:`OPERATIONS` order.

    Raises:
        ValueError: an unknown operation name or a bad timeout.
        TypeError: *rootless* is not a bool or None.
    """
    if rootless is not None and not isinstance(rootless, bool):
        raise TypeError(f"rootless must be a bool or None, got {rootless!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not 0 < timeout <= 86400:
        raise ValueError(f"timeout must be more than 0 and at most 86400 seconds, got {timeout!r}")
    if isinstance(names, str) or not (names is None or isinstance(names, (list, tuple))):
        raise TypeError(f"names must be a list or tuple of operation names, got {names!r}")
    wanted = list(OPERATIONS) if names is None else list(names)
    for n in wanted:
        if not isinstance(n, str):
            raise TypeError(f"names must be operation names (str), got {n!r}")
        if n not in OPERATIONS:
            raise ValueError(f"unknown operation {n!r}; expected some of {', '.join(OPERATIONS)}")
    if "net.lo_up" in wanted:
        # Imported here, in the parent: a child that dropped to nobody may not
        # be able to read the Python installation any more.
        from .. import net  # noqa: F401
    f = facts if facts is not None else gather()
    mode = (not f.root) if rootless is None else rootless
    drop = mode and f.root and f.euid == 0
    key = (_fingerprint(), mode)
    cache = _CACHE.setdefault(key, {})
    if len(_CACHE) > 64:  # forked children and changed credentials: keep it small
        for k in list(_CACHE)[:-8]:
            if k != key:
                del _CACHE[k]
    for n in wanted:
        if n in cache:
            continue
        _SEQ[0] += 1
        cg = f"nsprim-probe-{os.getpid()}-{_SEQ[0]}"
        try:
            res = _throwaway.run(
                functools.partial(_body, n, rootless=mode, drop=drop, cgroup_name=cg), timeout
            )
        finally:  # even when interrupted: no probe cgroup outlives the call
            if n in ("cgroup.create", "clone3.into_cgroup"):
                _cleanup_cgroup(cg)
        cache[n] = _result(n, res, f, rootless=mode, dropped=drop)
    return {n: cache[n] for n in OPERATIONS if n in wanted}


def _cleanup_cgroup(name: str) -> None:
    # The child removes its cgroup; this covers a child killed on timeout.
    with contextlib.suppress(OSError):
        base, _ = _cgroup2_dir()
        if base is not None:
            path = os.path.join(base, name)
            if os.path.isdir(path):
                os.rmdir(path)


def max_namespaces(t: NsType) -> Optional[int]:
    """``user.max_<t>_namespaces`` of the caller's user namespace."""
    return read_int(f"/proc/sys/user/max_{t.value}_namespaces")
