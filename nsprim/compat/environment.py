"""Probe group ``environment``: container evidence, cgroups, propagation, id-map tools.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
from typing import Any, Optional

from ..namespace import NsType
from .context import Ctx
from .facts import read_text as _read
from .record import Probe

__all__ = ["probes"]


def _p(**kw: Any) -> Probe:
    return Probe(group="environment", **kw)


def _mountinfo_root() -> Optional[list[str]]:
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        f = line.split(" ")
        if len(f) > 4 and f[4] == "/":
            return f
    return None


def probes(ctx: Ctx) -> list[Probe]:
    """Return the ``environment`` probes."""
    out = []
    # initial namespaces, by the fixed inodes of <linux/nsfs.h>
    initial, other, unsure = [], [], []
    for t in NsType:
        try:
            ino = os.stat(f"/proc/self/ns/{t.value}").st_ino
        except OSError:
            continue
        if ino == t.init_ino:
            initial.append(t.value)
        elif t in (NsType.NET, NsType.MNT) and ctx.facts.version < (6, 18, 0):
            unsure.append(t.value)
        else:
            other.append(f"{t.value}:[{ino}]")
    nspid = ctx.facts.status.get("NSpid", "").split()
    depth = len(nspid)
    detail = f"initial: {', '.join(initial) or 'none'}"
    if other:
        detail += f"; not initial: {', '.join(other)}"
    if unsure:
        detail += f"; unknown before Linux 6.18 (no fixed inode): {', '.join(unsure)}"
    out.append(
        _p(
            name="initial_namespaces",
            status="ok" if not unsure else "limited",
            value="all" if not other and not unsure else ("some" if initial else "none"),
            detail=detail,
            consequence="in the host's namespaces"
            if not other
            else "inside namespaces not created by boot: likely a container",
        )
    )
    out.append(
        _p(
            name="nspid_depth",
            status="ok" if depth else "unknown",
            value=depth or None,
            detail=f"NSpid: {' '.join(nspid) or '(absent before Linux 4.1)'}",
            consequence="in the initial pid namespace"
            if depth == 1
            else f"nested {depth - 1} pid namespace(s) deep",
        )
    )
    hints = []
    # systemd's container interface sets the lower-case $container.
    runtime = os.environ.get("container")  # noqa: SIM112
    if runtime:
        hints.append(f"$container={runtime}")
    rsc = _read("/run/systemd/container")
    if rsc:
        hints.append(f"/run/systemd/container={rsc.strip()}")
    for path in ("/.dockerenv", "/run/.containerenv"):
        if os.path.exists(path):
            hints.append(path)
    cg = _read("/proc/self/cgroup") or ""
    for word in ("docker", "lxc", "kubepods", "libpod", "containerd", "machine.slice"):
        if word in cg:
            hints.append(f"cgroup path contains {word!r}")
    if other:
        hints.append("non-initial namespaces: " + ", ".join(o.split(":")[0] for o in other))
    out.append(
        _p(
            name="container",
            status="ok",
            value="container" if hints else "host",
            detail="; ".join(hints)
            if hints
            else "no container evidence ($container, /run/systemd/container, "
            "/.dockerenv, cgroup path, namespace inodes)",
            consequence="informative only: the probes above are what counts",
        )
    )
    out.append(_cgroup_probe())
    root = _mountinfo_root()
    if root is None:
        out.append(
            _p(
                name="root_propagation",
                status="unknown",
                value=None,
                detail="/ not in /proc/self/mountinfo",
                consequence="unknown",
            )
        )
    else:
        opt = root[6 : root.index("-")]
        prop = "private"
        for o in opt:
            if o.startswith("shared:"):
                prop = "shared"
            elif o == "unbindable":
                prop = "unbindable"
        out.append(
            _p(
                name="root_propagation",
                status="ok",
                value=prop,
                detail=f"/ is {prop} ({' '.join(opt) or 'no propagation tags'})",
                consequence="new mount namespaces must make / private (MS_REC|MS_PRIVATE) "
                "before mounting"
                if prop == "shared"
                else "mounts in a new mount namespace do not propagate back",
            )
        )
    out.append(_idmap_tools(ctx))
    return out


def _cgroup_probe() -> Probe:
    fstype = None
    has_unified = False
    v1 = []
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        f = line.split(" ")
        try:
            dash = f.index("-")
        except ValueError:
            continue
        mp, typ = f[4], f[dash + 1]
        if mp == "/sys/fs/cgroup":
            fstype = typ
        elif mp.startswith("/sys/fs/cgroup/"):
            if typ == "cgroup2":
                has_unified = True
            elif typ == "cgroup":
                v1.append(mp.rsplit("/", 1)[1])
    lines = (_read("/proc/self/cgroup") or "").splitlines()
    v2_line = any(line.startswith("0::") for line in lines)
    if fstype == "cgroup2":
        layout, status = "v2", "ok"
    elif v1 and (has_unified or v2_line):
        layout, status = "hybrid", "limited"
    elif v1:
        layout, status = "v1", "limited"
    elif v2_line:
        layout, status = "v2 (not mounted at /sys/fs/cgroup)", "limited"
    else:
        layout, status = "none", "missing"
    # statfs(2) f_type is what check-config.sh uses; the mount's fstype in
    # mountinfo is the same superblock fact without a new ctypes binding.
    return _p(
        name="cgroup",
        status=status,
        value=layout,
        detail=f"/sys/fs/cgroup is {fstype or 'not mounted'}; "
        f"v1 controllers: {','.join(v1) or 'none'}; "
        f"unified hierarchy: {'yes' if has_unified or fstype == 'cgroup2' else 'no'}; "
        f"/proc/self/cgroup has 0:: line: {v2_line}",
        consequence="cgroup v2 delegation and CLONE_INTO_CGROUP work"
        if status == "ok"
        else "cgroup v2 features (CLONE_INTO_CGROUP, delegation) are limited here",
        fix=""
        if status == "ok"
        else "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2 only)",
    )


_SUBID_FIX = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"


def _idmap_tools(ctx: Ctx) -> Probe:
    parts = []
    why = []
    fix = []
    for tool in ("newuidmap", "newgidmap"):
        path = shutil.which(tool)
        if path is None:
            parts.append(f"{tool}: absent")
            why.append(f"no {tool}")
            continue
        st = os.stat(path)
        setuid = bool(st.st_mode & stat.S_ISUID)
        fcaps = False
        with contextlib.suppress(OSError):
            fcaps = bool(os.getxattr(path, "security.capability"))
        parts.append(
            f"{tool}: {path} ({'setuid' if setuid else 'file caps' if fcaps else 'no privilege'})"
        )
        if not (setuid or fcaps):
            why.append(f"{tool} is neither setuid nor file-capable")
            fix.append(f"chmod u+s {path}")
    if any(w.startswith("no new") for w in why):
        fix.insert(0, "apt-get install uidmap (Debian/Ubuntu; shadow-utils on Fedora)")
    euid = ctx.facts.euid
    try:
        user = pwd.getpwuid(euid).pw_name
    except KeyError:
        user = str(euid)
    ranges = []
    missing = []
    for path in ("/etc/subuid", "/etc/subgid"):
        found = False
        for line in (_read(path) or "").splitlines():
            f = line.strip().split(":")
            if len(f) == 3 and f[0] in (user, str(euid)):
                ranges.append(f"{path}: {f[1]}+{f[2]}")
                found = True
        if not found:
            missing.append(path)
    if missing:
        parts.append(f"no {' or '.join(missing)} range for {user}")
        why.append(f"no {' or '.join(missing)} range for {user}")
        fix.append(_SUBID_FIX.format(user=user))
    else:
        parts.append("; ".join(ranges))
    ok = not why
    return _p(
        name="idmap_tools",
        status="ok" if ok else "limited",
        value="yes" if ok else "no",
        detail="; ".join(parts),
        consequence="rootless with many ids (newuidmap ranges) possible"
        if ok
        else f"{'; '.join(why)}: rootless user namespaces map only the caller's own uid/gid",
        fix="; ".join(fix),
    )
