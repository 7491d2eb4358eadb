"""``nsprim ls``: the namespaces that exist right now (``lsns(8)`` and more).

Layer 4: imports :mod:`nsprim.listing` and :mod:`nsprim.namespace`. The
handler prints to stdout (errors to stderr) and returns the exit status; it
never calls ``sys.exit``.

``nsprim ls --json`` prints what ``lsns -J`` prints, plus extra keys::

    {"namespaces": [
      {"ns": 4026531840,           # nsfs inode (lsns NS)
       "type": "net",              # lsns TYPE
       "nprocs": 97,               # member processes (lsns NPROCS)
       "pid": 2,                   # lowest member pid, or null if no process is a member
       "user": "root",             # owner of that pid (lsns USER), or null
       "command": "kthreadd",      # its command line, else its comm (lsns COMMAND), or null
       # extra keys:
       "dev": 4,                   # nsfs st_dev: (dev, ns) is the identity
       "id": 4097,                 # NS_GET_ID (Linux 6.18), or null
       "uid": 0,                   # numeric uid of "pid", or null
       "held": ["process", "fd"],  # process | thread | fd | bind-mount | socket | ancestor
       "owner": 4026531837,        # inode of the owning user namespace, or null
       "owner_uid": 0,             # creator's euid of that user namespace, or null
       "parent": null,             # parent inode (pid and user namespaces), or null
       "threads": [1234],          # tids whose thread (not process) is a member
       "fds": [{"pid": 42, "fd": 5}],              # open fds referring to it
       "mounts": [{"pid": 42, "path": "/run/x"}],  # nsfs bind mounts (path in pid's mount ns)
       "sockets": [{"pid": 42, "fd": 7}]           # sockets in it (only with --sockets)
      }, ...]}

With ``--tree`` every object also has ``"children"`` (a list of the same
objects), and only the roots are listed at the top, as ``lsns -J --tree`` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, TextIO

from . import colour

if TYPE_CHECKING:
    from .. import listing
    from ..namespace import NsType

TYPES = ("mnt", "net", "ipc", "user", "pid", "uts", "cgroup", "time")  # lsns(8)'s order


def _ns_type(text: str) -> NsType:
    from ..namespace import NsType

    try:
        return NsType.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown namespace type: {text}") from None


def _pid(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if not 0 < value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"invalid PID argument: '{text}'")
    return value


__all__ = ["add_ls_parser", "cmd_ls", "ns_json", "render_ls", "render_tree"]


def add_ls_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ls`` subcommand (handler :func:`cmd_ls` in ``func``)."""
    p = subparsers.add_parser(
        "ls",
        help="list namespaces (like lsns, plus those held by threads, fds and bind mounts)",
        description="List every namespace visible from here in one pass over /proc.",
    )
    p.add_argument("--json", action="store_true", help="print JSON shaped like lsns -J")
    p.add_argument(
        "-t",
        "--type",
        action="append",
        metavar="TYPE",
        type=_ns_type,
        help="only this namespace type (repeatable; " + ", ".join(TYPES) + ")",
    )
    p.add_argument(
        "-p", "--pid", type=_pid, metavar="PID", help="only namespaces this process is in or holds"
    )
    p.add_argument(
        "--tree",
        nargs="?",
        const="user",
        choices=("user", "pid"),
        metavar="user|pid",
        help="show the user (default: ownership) or pid hierarchy as a tree",
    )
    p.add_argument(
        "--sockets",
        action="store_true",
        help="also find network namespaces held only by sockets (pidfd_getfd + SIOCGSKNS; "
        "needs ptrace rights over every process)",
    )
    p.set_defaults(func=cmd_ls)


def cmd_ls(ns: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """Run ``nsprim ls``: 0 (bad usage never reaches here: the parser refuses it)."""
    import json

    from .. import listing

    stdout = out if out is not None else sys.stdout
    paint = not ns.json and colour(stdout)
    result = listing.scan(sockets=ns.sockets)
    chosen = result.select(ns.type or None, ns.pid)
    if ns.tree:
        sub = listing.Listing(tuple(chosen), result.scanned, result.vanished, result.denied)
        roots = listing.tree(sub, ns.tree)
        if ns.json:
            json.dump({"namespaces": [_tree_json(r) for r in roots]}, stdout, indent=2)
            stdout.write("\n")
        else:
            stdout.write(render_tree(roots, paint=paint))
        return 0
    if ns.json:
        json.dump({"namespaces": [ns_json(n) for n in chosen]}, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(render_ls(chosen, paint=paint))
    return 0


def ns_json(n: listing.NsInfo) -> dict[str, Any]:
    """Return the ``nsprim ls --json`` object of one namespace (lsns -J keys first)."""
    return {
        "ns": n.ino,
        "type": n.type.value,
        "nprocs": n.nprocs,
        "pid": n.pid,
        "user": n.user,
        "command": n.command,
        "dev": n.dev,
        "id": n.ns_id,
        "uid": n.uid,
        "held": [h.value for h in n.held],
        "owner": n.owner.ino if n.owner else None,
        "owner_uid": n.owner_uid,
        "parent": n.parent.ino if n.parent else None,
        "threads": list(n.threads),
        "fds": [{"pid": h.pid, "fd": h.fd} for h in n.fds],
        "mounts": [{"pid": h.pid, "path": h.path} for h in n.mounts],
        "sockets": [{"pid": h.pid, "fd": h.fd} for h in n.sockets],
    }


def _tree_json(node: listing.TreeNode) -> dict[str, Any]:
    d = ns_json(node.ns)
    d["children"] = [_tree_json(c) for c in node.children]
    return d


def _holder_text(n: listing.NsInfo) -> str:
    # For namespaces no process is a member of, say what keeps them alive.
    if n.threads:
        return f"[thread {n.threads[0]}]"
    if n.fds:
        return f"[fd {n.fds[0].fd} of pid {n.fds[0].pid}]"
    if n.mounts:
        return f"[bind mount {n.mounts[0].path} (mnt ns of pid {n.mounts[0].pid})]"
    if n.sockets:
        return f"[socket fd {n.sockets[0].fd} of pid {n.sockets[0].pid}]"
    return "[ancestor only]"


def _row(n: listing.NsInfo, ns_text: str) -> list[Any]:
    return [
        ns_text,
        n.type.value,
        n.nprocs,
        n.pid if n.pid is not None else "-",
        n.user if n.user is not None else "-",
        n.command if n.pid is not None else _holder_text(n),
    ]


_HEADERS = ["NS", "TYPE", "NPROCS", "PID", "USER", "COMMAND"]


def render_ls(namespaces: Sequence[listing.NsInfo], paint: bool = False) -> str:
    """Return the lsns-style table (NS TYPE NPROCS PID USER COMMAND).

    With *paint* (a terminal, see :func:`nsprim.cli.colour`) the header is bold
    and a namespace no process is a member of shows its holder in yellow.
    """
    return _columns([_row(n, str(n.ino)) for n in namespaces], right={0, 2, 3}, paint=paint)


_BOLD, _YELLOW, _RESET = "\033[1m", "\033[33m", "\033[0m"


def _columns(
    rows: list[list[Any]],
    right: frozenset[int] | set[int] = frozenset({2, 3}),
    paint: bool = False,
) -> str:
    # lsns's layout: NS (flat only), NPROCS and PID right-aligned, the rest left, the last
    # column unpadded. Hand-made because importing tabulate costs ~20 ms, a
    # tenth of a whole scan.
    table = [_HEADERS, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADERS))]
    lines = []
    for n, r in enumerate(table):
        cells = [
            r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i])
            for i in range(len(r) - 1)
        ]
        line = " ".join([*cells, r[-1]])
        if paint and n == 0:
            line = _BOLD + line + _RESET
        elif paint and r[3] == "-":  # no member process: the last column names the holder
            line = " ".join([*cells, _YELLOW + r[-1] + _RESET])
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_tree(roots: Sequence[listing.TreeNode], paint: bool = False) -> str:
    """Return the hierarchy as a table whose NS column is indented with tree branches."""
    rows = []

    def visit(node: listing.TreeNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─" if last else "├─")
        rows.append(_row(node.ns, f"{prefix}{branch}{node.ns.ino}"))
        child_prefix = prefix if top else prefix + ("  " if last else "│ ")
        for i, c in enumerate(node.children):
            visit(c, child_prefix, i == len(node.children) - 1, False)

    for r in roots:
        visit(r, "", True, True)
    return _columns(rows, paint=paint)
