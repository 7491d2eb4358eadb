"""Probe group ``features``: behaviours tried in throwaway children.

Layer 2, private to :mod:`nsprim.compat`: a fresh /proc and /sys, threads
after unshare(CLONE_NEWTIME), lo in a new network namespace, the hostname
length limit, ns_last_pid.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Any, Callable

from .. import syscalls as _sc
from ..flags import CloneFlags, MountFlags
from ._throwaway import Result as _Result
from ._throwaway import map_self as _map_self
from ._throwaway import run as _in_child
from .context import Ctx
from .engine import unshare_verified
from .facts import ename as _ename
from .record import Probe, child_failed

__all__ = ["probes"]

_NEW_UTS_LEN = _sc.HOST_NAME_MAX
_USER, _NS, _PID, _NET = (
    int(CloneFlags.NEWUSER),
    int(CloneFlags.NEWNS),
    int(CloneFlags.NEWPID),
    int(CloneFlags.NEWNET),
)


def _p(**kw: Any) -> Probe:
    return Probe(group="features", **kw)


#: The operations each feature's child needs, for the cause when it fails.
_NEEDS = {
    "fresh_proc": ("unshare.mnt", "unshare.pid", "unshare.net", "mount.proc"),
    "fresh_sysfs": ("unshare.mnt", "unshare.pid", "unshare.net", "mount.tmpfs"),
    "time_ns_threads": ("unshare.time",),
    "netns_loopback": ("unshare.net", "net.lo_up"),
    "hostname_max": ("unshare.uts", "sethostname"),
    "ns_last_pid": ("unshare.pid",),
}


def _child_failed(ctx: Ctx, name: str, res: _Result, consequence: str) -> Probe:
    """A feature whose child failed: missing with the engine's cause when an operation
    it needs is refused both directly and rootless, else unknown."""
    for op in _NEEDS[name]:
        direct, rootless = ctx.ops(False)[op], ctx.ops(True)[op]
        if direct.available or rootless.available:
            continue
        r = direct if direct.state == "absent" else rootless
        if r.source is None:
            break
        return Probe(
            group="features",
            name=name,
            status="absent" if r.state == "absent" else "missing",
            value=None,
            detail=f"probe child failed: {res['error']}; {op}: {r.detail}",
            consequence=f"{consequence.split(':')[0]}: not possible here because {r.cause}",
            source=r.source,
            fix=r.fix,
        )
    return child_failed("features", name, str(res["error"]), consequence)


def _enter_private(euid: int, egid: int, extra: int) -> bool:
    """Child helper: unshare *extra* types, inside a new user namespace when not root.

    Returns whether a user namespace was created.
    """
    try:
        unshare_verified(extra)
        return False
    except PermissionError:
        unshare_verified(extra | _USER)
        _map_self(euid, egid)
        return True


def _pid1(fn: Callable[[], _Result], timeout: float) -> _Result:
    """Child helper, after unshare(CLONE_NEWPID): run *fn* as pid 1 of the new namespace."""

    def init() -> _Result:
        _sc.set_pdeathsig(signal.SIGKILL)
        return fn()

    res = _in_child(init, timeout)
    if "error" in res:
        return {"error": f"pid 1 child: {res['error']}"}
    return res


def _fresh_fs_body(euid: int, egid: int, timeout: float) -> Callable[[], _Result]:
    def mounts() -> _Result:
        got: _Result = {}
        # Private first: nothing here may propagate to the caller's tree.
        _sc.mount(None, "/", None, int(MountFlags.REC | MountFlags.PRIVATE))
        for fs, target in (("proc", "/proc"), ("sysfs", "/sys")):
            try:
                _sc.mount(
                    fs,
                    target,
                    fs,
                    int(MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC),
                )
                got[fs] = 0
            except OSError as err:
                got[fs] = err.errno or errno.EIO
        return got

    def body() -> _Result:
        unshare_verified(_USER | _NS | _PID | _NET)
        _map_self(euid, egid)
        return _pid1(mounts, timeout)

    return body


def _time_body(euid: int, egid: int, timeout: float) -> Callable[[], _Result]:
    def body() -> _Result:
        import _thread

        _enter_private(euid, egid, int(CloneFlags.NEWTIME))
        res: _Result = {}
        try:
            _thread.start_new_thread(lambda: None, ())
            res["thread"] = "allowed"
        except RuntimeError as exc:
            res["thread"] = f"refused ({exc})"
        try:
            # glibc's posix_spawn uses clone(CLONE_VM|CLONE_VFORK).
            p = os.posix_spawn("/bin/true", ["true"], {})
            os.waitpid(p, 0)
            res["vfork"] = "allowed"
        except OSError as exc:
            res["vfork"] = f"refused ({_ename(exc.errno)})"
        forked = _in_child(dict, timeout)
        if "error" in forked:
            raise OSError(forked.get("errno") or errno.EIO, f"fork: {forked['error']}")
        res["fork"] = "allowed"
        return res

    return body


def _lo_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        from .. import net

        _enter_private(euid, egid, _NET)
        before = net.is_up("lo")
        net.set_link_up("lo")
        return {"before": before, "after": net.is_up("lo")}

    return body


def _hostname_body(euid: int, egid: int) -> Callable[[], _Result]:
    def body() -> _Result:
        _enter_private(euid, egid, int(CloneFlags.NEWUTS))
        res = {}
        for n in (_NEW_UTS_LEN, _NEW_UTS_LEN + 1):
            name = b"h" * n
            # The raw libc call: nsprim.syscalls.sethostname refuses 65 bytes
            # itself, and the question is what the kernel accepts.
            res[str(n)] = _sc.sethostname_errno(name, n)
        return res

    return body


def _ns_last_pid_body(euid: int, egid: int, timeout: float) -> Callable[[], _Result]:
    def next_pid() -> _Result:
        # pid 1 of a fresh pid namespace: ns_last_pid is its own
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write("299")
        except OSError as err:
            return {"errno": err.errno}
        child = _in_child(lambda: {"pid": os.getpid()}, timeout)
        if "error" in child:
            return {"errno": child.get("errno") or errno.EIO}
        return {"errno": 0, "next_pid": child["pid"]}

    def body() -> _Result:
        _enter_private(euid, egid, _PID)
        return _pid1(next_pid, timeout)

    return body


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``features`` probes."""
    out = []
    ids = (ctx.facts.euid, ctx.facts.egid)
    res = _in_child(_fresh_fs_body(*ids, ctx.timeout), ctx.timeout)
    for fs in ("proc", "sysfs"):
        if "error" in res:
            out.append(_child_failed(ctx, f"fresh_{fs}", res, f"fresh {fs}: unknown"))
            continue
        err = int(res[fs])
        if err == 0:
            out.append(
                _p(
                    name=f"fresh_{fs}",
                    status="ok",
                    value="mountable",
                    detail=f"mount -t {fs} works in a child user+mnt+pid+net namespace",
                    consequence=f"containers get their own {'/proc' if fs == 'proc' else '/sys'}",
                )
            )
        else:
            out.append(
                _p(
                    name=f"fresh_{fs}",
                    status="missing",
                    value=_ename(err),
                    detail=f"mount -t {fs} in a child user namespace -> {_ename(err)} "
                    "(the fully-visible "
                    "rule: the caller's /proc or /sys has overmounts)",
                    consequence=f"no private {fs} in user namespaces: bind the host's instead",
                )
            )
    res = _in_child(_time_body(*ids, ctx.timeout), ctx.timeout)
    if "error" in res:
        out.append(
            _child_failed(
                ctx, "time_ns_threads", res, "threads after unshare(CLONE_NEWTIME): unknown"
            )
        )
    else:
        limited = res["thread"] != "allowed" or res["vfork"] != "allowed"
        out.append(
            _p(
                name="time_ns_threads",
                status="limited" if limited else "ok",
                value=f"thread {res['thread'].split()[0]}, vfork {res['vfork'].split()[0]}",
                detail=f"after unshare(CLONE_NEWTIME): thread {res['thread']}, "
                f"vfork {res['vfork']}, fork {res['fork']}",
                consequence="nsprim enters time namespaces by fork, never threads"
                if limited
                else "threads and vfork work after unshare(CLONE_NEWTIME)",
            )
        )
    res = _in_child(_lo_body(*ids), ctx.timeout)
    if "error" in res:
        out.append(
            _child_failed(ctx, "netns_loopback", res, "lo in a new network namespace: unknown")
        )
    else:
        ok = res["before"] is False and res["after"] is True
        out.append(
            _p(
                name="netns_loopback",
                status="ok" if ok else "limited",
                value=f"{'UP' if res['before'] else 'DOWN'} -> {'UP' if res['after'] else 'DOWN'}",
                detail=f"lo in a new network namespace starts {'UP' if res['before'] else 'DOWN'}; "
                f"nsprim.net.set_link_up('lo') leaves it {'UP' if res['after'] else 'DOWN'}",
                consequence="bring lo up with nsprim.net.set_link_up('lo') in new network "
                "namespaces"
                if ok
                else "loopback behaves unexpectedly in new network namespaces",
            )
        )
    res = _in_child(_hostname_body(*ids), ctx.timeout)
    if "error" in res:
        out.append(_child_failed(ctx, "hostname_max", res, "the hostname length limit: unknown"))
    else:
        e64, e65 = int(res["64"]), int(res["65"])
        ok = e64 == 0 and e65 == errno.EINVAL
        if e64 in (errno.EPERM, errno.EACCES):
            # Refused, not a different limit: say by whom (the engine tried it too).
            res["error"] = f"sethostname of 64 bytes -> {_ename(e64)}"
            out.append(
                _child_failed(ctx, "hostname_max", res, "the hostname length limit: unknown")
            )
        else:
            out.append(
                _p(
                    name="hostname_max",
                    status="ok" if ok else "unknown",
                    value=_NEW_UTS_LEN if e64 == 0 else None,
                    detail=f"sethostname of 64 bytes -> {_ename(e64)}, "
                    f"65 bytes -> {_ename(e65)} (in a new UTS namespace)",
                    consequence="hostnames up to HOST_NAME_MAX (64) bytes"
                    if ok
                    else "hostname length limit differs from 64",
                )
            )
    res = _in_child(_ns_last_pid_body(*ids, ctx.timeout), ctx.timeout)
    if "error" in res:
        out.append(_child_failed(ctx, "ns_last_pid", res, "set_tid/ns_last_pid: unknown"))
    else:
        err = int(res["errno"])
        ok = err == 0 and res.get("next_pid") == 300
        out.append(
            _p(
                name="ns_last_pid",
                status="ok" if ok else "missing",
                value="writable" if ok else _ename(err),
                detail=f"in a fresh pid namespace ns_last_pid := 299, "
                f"next fork got pid {res.get('next_pid')}"
                if err == 0
                else f"writing ns_last_pid in a fresh pid namespace -> {_ename(err)}",
                consequence="choosing pids (set_tid, checkpoint/restore) works in own pid "
                "namespaces"
                if ok
                else "pids cannot be chosen (no CONFIG_CHECKPOINT_RESTORE or privilege)",
            )
        )
    return out
