"""``nsprim enter``: run a command in the namespaces of a process, with nsenter(1)'s flags.

Layer 4: imports the standard library and the public nsprim API. Like
nsenter(1), the command is a child; this process waits and exits with its
status (see :mod:`nsprim.cli._spawn`).
"""

from __future__ import annotations

import os
import signal

from ._spawn import (
    NS_OPTIONS,
    add_command,
    add_ns_flags,
    chosen_types,
    command,
    fail,
    ns_files,
    number,
    signals_held,
    wait,
)

# typing.TYPE_CHECKING without importing typing, and argparse only where the
# parser is built: plain command lines parse without them (nsprim.cli._fast).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

_LONG = {t: long.lstrip("-") for _, long, t in NS_OPTIONS}

__all__ = ["add_enter_parser", "cmd_enter"]


def add_enter_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``enter``: run a command in the namespaces of a process, with nsenter(1)'s flags."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "enter",
        help="run a command in the namespaces of a process (like nsenter)",
        description="Run COMMAND in the namespaces of process PID, as util-linux nsenter(1) does.",
    )
    p.add_argument(
        "-t",
        "--target",
        metavar="PID",
        type=number("pid", lowest=1),
        help="target process (required)",
    )
    p.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="enter every namespace of the target (those shared are skipped)",
    )
    add_ns_flags(p, "enter the", files=True)
    p.add_argument(
        "-S", "--setuid", metavar="UID", type=number("uid"), help="uid in the entered namespaces"
    )
    p.add_argument(
        "-G", "--setgid", metavar="GID", type=number("gid"), help="gid in the entered namespaces"
    )
    p.add_argument(
        "--preserve-credentials",
        action="store_true",
        help="keep uid and gid when entering a user namespace",
    )
    p.add_argument("-r", "--root", action="store_true", help="use the target's root directory")
    p.add_argument("-w", "--wd", action="store_true", help="use the target's working directory")
    add_command(p)
    return p


def _other_userns(pid: int) -> bool:
    try:
        theirs = os.stat(f"/proc/{pid}/ns/user")
    except OSError:
        return True  # spawn_in reports the real problem
    mine = os.stat("/proc/self/ns/user")
    return (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino)


def cmd_enter(ns: argparse.Namespace) -> int:
    """Handle ``nsprim enter``; return the exit status."""
    from ..errors import NsprimError
    from ..namespace import NsType
    from ..process import spawn_in
    from . import UsageError

    files = ns_files(ns)
    if ns.target is None and not files:
        raise UsageError("nsprim enter", "no target process: give -t PID")
    if files and (ns.target is not None or ns.all or len(chosen_types(ns)) > 1):
        # nsenter mixes them freely; nsprim joins one target per command
        raise UsageError(
            "nsprim enter", "a namespace FILE can't be combined with -t, -a or other namespaces"
        )

    # nsenter(1) without --fork *is* the command: `kill PID` reaches it. nsprim
    # always forks, so it passes SIGTERM and SIGHUP on.
    with signals_held(forward=(signal.SIGTERM, signal.SIGHUP)) as held:
        try:
            types = list(NsType) if ns.all else chosen_types(ns)
            if not types:
                raise ValueError("no namespace to enter: give -a or at least one of -muinpUCT")
            uid, gid = ns.setuid, ns.setgid
            if (
                NsType.USER in types
                and not ns.preserve_credentials
                and not files
                and _other_userns(ns.target)
            ):
                # nsenter(1): entering a user namespace sets uid and gid to 0
                # unless --preserve-credentials (or -S/-G) says otherwise.
                uid = 0 if uid is None else uid
                gid = 0 if gid is None else gid
            target: Any = ns.target
            if files:
                from ..namespace import Namespace

                ((kind, path),) = files.items()
                try:
                    target = Namespace.from_path(path)
                except OSError as err:
                    raise OSError(err.errno, err.strerror, path) from None
                if target.type is not NsType(kind):
                    raise ValueError(f"--{_LONG[kind]}: {path} is a {target.type.value} namespace")
            proc = spawn_in(
                target,
                command(ns),
                types=types,
                uid=uid,
                gid=gid,
                target_root=ns.root,
                target_cwd=ns.wd,
                die_with_parent=False,
            )
        except (NsprimError, OSError, ValueError, TypeError) as err:
            return fail("enter", err)
        held.started(proc)
        return wait(proc)
