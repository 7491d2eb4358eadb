"""The ``nsprim run`` and ``nsprim enter`` subcommands (util-linux unshare(1) and nsenter(1)).

Layer 4: imports the standard library and the public nsprim API
(:mod:`nsprim.process`, :mod:`nsprim.namespace`, :mod:`nsprim.errors`);
:mod:`nsprim.cli` wires the parsers and handlers in.

Both commands fork the way ``unshare --fork`` and ``nsenter`` do: the
command is a child (PID 1 with ``-p``), this process waits and exits with
its status, or 128+N when a signal N killed it. A refused syscall prints one
line (``nsprim run: ...``) and exits 1; bad usage exits 2; a command that
can't be executed exits 127 (not found) or 126 (as util-linux's
``errexec``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import grp
import os
import pwd
import signal
import sys
from collections.abc import Iterator
from typing import Any, Optional

from .errors import NsprimError
from .namespace import NsType
from .process import NsProcess, spawn, spawn_in

__all__ = ["add_run_parser", "add_enter_parser", "cmd_run", "cmd_enter"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ENOENT = 127
EXIT_CANNOT = 126

# (short, long, type) in the order of the util-linux man pages.
_NS_OPTIONS = (
    ("-m", "--mount", NsType.MNT),
    ("-u", "--uts", NsType.UTS),
    ("-i", "--ipc", NsType.IPC),
    ("-n", "--net", NsType.NET),
    ("-p", "--pid", NsType.PID),
    ("-U", "--user", NsType.USER),
    ("-C", "--cgroup", NsType.CGROUP),
    ("-T", "--time", NsType.TIME),
)


def _add_ns_flags(p: argparse.ArgumentParser) -> None:
    for short, long, t in _NS_OPTIONS:
        p.add_argument(
            short, long, dest=f"ns_{t.value}", action="store_true", help=f"{t.value} namespace"
        )


def _add_command(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARG...]",
        help="the program to run (default: $SHELL or /bin/sh)",
    )


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``run``: start a command in new namespaces, with unshare(1)'s flags."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run a command in new namespaces (like unshare --fork)",
        description="Run COMMAND in new namespaces, as util-linux unshare(1) --fork does.",
    )
    _add_ns_flags(p)
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
    _add_command(p)
    return p


def add_enter_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``enter``: run a command in the namespaces of a process, with nsenter(1)'s flags."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "enter",
        help="run a command in the namespaces of a process (like nsenter)",
        description="Run COMMAND in the namespaces of process PID, as util-linux nsenter(1) does.",
    )
    p.add_argument("-t", "--target", metavar="PID", type=int, required=True, help="target process")
    p.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="enter every namespace of the target (those shared are skipped)",
    )
    _add_ns_flags(p)
    p.add_argument("-S", "--setuid", metavar="UID", type=int, help="uid in the entered namespaces")
    p.add_argument("-G", "--setgid", metavar="GID", type=int, help="gid in the entered namespaces")
    p.add_argument(
        "--preserve-credentials",
        action="store_true",
        help="keep uid and gid when entering a user namespace",
    )
    p.add_argument("-r", "--root", action="store_true", help="use the target's root directory")
    p.add_argument("-w", "--wd", action="store_true", help="use the target's working directory")
    _add_command(p)
    return p


def _command(ns: argparse.Namespace) -> list[str]:
    cmd = list(ns.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        cmd = [os.environ.get("SHELL") or "/bin/sh"]
    return cmd


def _types(ns: argparse.Namespace) -> list[NsType]:
    return [t for _, _, t in _NS_OPTIONS if getattr(ns, f"ns_{t.value}", False)]


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


def _status(rc: int) -> int:
    # Popen's negative returncode is a signal; shells report 128+N (unshare(1) too).
    return 128 - rc if rc < 0 else rc


@contextlib.contextmanager
def _ignore_interactive_signals() -> Iterator[None]:
    # While the command runs it owns the terminal: ^C and ^\ reach it (same
    # process group); this process just waits for it, as unshare(1) does.
    old = [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGQUIT)]
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGQUIT, old[1])


def _fail(prog: str, err: BaseException) -> int:
    print(f"nsprim {prog}: {err}", file=sys.stderr)
    step = getattr(err, "step", None)
    if step == "execve" and isinstance(err, OSError):
        return EXIT_ENOENT if err.errno == errno.ENOENT else EXIT_CANNOT
    if isinstance(err, (ValueError, TypeError)):
        return EXIT_USAGE
    return EXIT_FAILURE


def _wait(proc: NsProcess) -> int:
    with proc, _ignore_interactive_signals():
        return _status(proc.wait())


def cmd_run(ns: argparse.Namespace) -> int:
    """Handle ``nsprim run``; return the exit status."""
    try:
        cmd = _command(ns)
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
        types = _types(ns)
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
        return _fail("run", err)
    return _wait(proc)


def _other_userns(pid: int) -> bool:
    try:
        theirs = os.stat(f"/proc/{pid}/ns/user")
    except OSError:
        return True  # spawn_in reports the real problem
    mine = os.stat("/proc/self/ns/user")
    return (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino)


def cmd_enter(ns: argparse.Namespace) -> int:
    """Handle ``nsprim enter``; return the exit status."""
    try:
        cmd = _command(ns)
        types = list(NsType) if ns.all else _types(ns)
        if not types:
            raise ValueError("no namespace to enter: give -a or at least one of -muinpUCT")
        uid, gid = ns.setuid, ns.setgid
        if NsType.USER in types and not ns.preserve_credentials and _other_userns(ns.target):
            # nsenter(1): entering a user namespace sets uid and gid to 0
            # unless --preserve-credentials (or -S/-G) says otherwise.
            uid = 0 if uid is None else uid
            gid = 0 if gid is None else gid
        proc = spawn_in(
            ns.target,
            cmd,
            types=types,
            uid=uid,
            gid=gid,
            target_root=ns.root,
            target_cwd=ns.wd,
            die_with_parent=False,
        )
    except (NsprimError, OSError, ValueError, TypeError) as err:
        return _fail("enter", err)
    return _wait(proc)
