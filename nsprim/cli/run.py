"""``nsprim run``: start a command in new namespaces, with util-linux unshare(1)'s flags.

Layer 4: imports the standard library and the public nsprim API. Like
``unshare --fork``, the command is a child (PID 1 with ``-p``); this process
waits and exits with its status (see :mod:`nsprim.cli._spawn`).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import signal
from typing import Any, Optional

from ..errors import NsprimError
from ..namespace import NsType
from ..process import spawn
from ._spawn import add_command, add_ns_flags, chosen_types, command, fail, wait

__all__ = ["add_run_parser", "cmd_run"]


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``run``: start a command in new namespaces, with unshare(1)'s flags."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run a command in new namespaces (like unshare --fork)",
        description="Run COMMAND in new namespaces, as util-linux unshare(1) --fork does.",
    )
    add_ns_flags(p)
    p.add_argument(
        "-f",
        "--fork",
        action="store_true",
        help="accepted for unshare(1) compatibility; nsprim always forks",
    )
    p.add_argument(
        "-r",
        "--map-root-user",
        action="store_true",
        help="map the current user to root (implies -U, setgroups deny)",
    )
    p.add_argument(
        "--map-user", metavar="UID|NAME", help="map the current euid to UID (implies -U)"
    )
    p.add_argument(
        "--map-group",
        metavar="GID|NAME",
        help="map the current egid to GID (implies -U, setgroups deny)",
    )
    p.add_argument(
        "--mount-proc", action="store_true", help="mount a fresh /proc (implies -m; needs -p)"
    )
    p.add_argument(
        "--propagation",
        choices=("slave", "shared", "private", "unchanged"),
        default="private",
        help="propagation of / in the new mount namespace",
    )
    p.add_argument("--setgroups", choices=("allow", "deny"), help="control setgroups(2) (with -U)")
    p.add_argument("-R", "--root", metavar="DIR", help="pivot into DIR (implies -m)")
    p.add_argument("-w", "--wd", metavar="DIR", help="working directory of the command")
    p.add_argument(
        "--monotonic",
        metavar="SECONDS",
        type=float,
        help="CLOCK_MONOTONIC offset in the new time namespace (implies -T)",
    )
    p.add_argument(
        "--boottime",
        metavar="SECONDS",
        type=float,
        help="CLOCK_BOOTTIME offset in the new time namespace (implies -T)",
    )
    p.add_argument(
        "--kill-child",
        metavar="SIGNAL",
        nargs="?",
        const="KILL",
        default=None,
        help="signal the command gets when nsprim dies (default KILL)",
    )
    p.add_argument("--hostname", metavar="NAME", help="hostname in the new UTS namespace")
    p.add_argument("--domainname", metavar="NAME", help="NIS domain name in the new UTS namespace")
    p.add_argument("--lo-up", action="store_true", help="bring lo up in the new network namespace")
    add_command(p)
    return p


def _id(value: str, kind: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid if kind == "user" else grp.getgrnam(value).gr_gid
    except KeyError:
        raise ValueError(f"--map-{kind}: no such {kind} {value!r}") from None


def _signal(value: str) -> int:
    name = value.upper()
    if name.isdigit():
        return int(name)
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"--kill-child: unknown signal {value!r}") from None


def cmd_run(ns: argparse.Namespace) -> int:
    """Handle ``nsprim run``; return the exit status."""
    try:
        cmd = command(ns)
        uid_map: Optional[str] = None
        gid_map: Optional[str] = None
        if ns.map_user is not None:
            uid_map = f"{_id(ns.map_user, 'user')} {os.geteuid()} 1"
        if ns.map_group is not None:
            gid_map = f"{_id(ns.map_group, 'group')} {os.getegid()} 1"
        setgroups = ns.setgroups
        if gid_map is not None and setgroups is None:
            setgroups = "deny"  # unshare(1): --map-group implies --setgroups=deny
        offsets = {
            k: v
            for k, v in (("monotonic", ns.monotonic), ("boottime", ns.boottime))
            if v is not None
        }
        types = chosen_types(ns)
        if (ns.map_root_user or uid_map or gid_map) and NsType.USER not in types:
            types.append(NsType.USER)
        proc = spawn(
            cmd,
            namespaces=types,
            hostname=ns.hostname,
            domainname=ns.domainname,
            map_root=ns.map_root_user,
            uid_map=uid_map,
            gid_map=gid_map,
            setgroups=setgroups,
            mount_proc=ns.mount_proc,
            propagation=ns.propagation,
            root=ns.root,
            time_offsets=offsets or None,
            loopback_up=ns.lo_up,
            cwd=ns.wd,
            die_with_parent=_signal(ns.kill_child) if ns.kill_child is not None else False,
        )
    except (NsprimError, OSError, ValueError, TypeError) as err:
        return fail("run", err)
    return wait(proc)
