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


# lsns(8)'s columns, in its order; DEFAULT is lsns's default set.
COLUMNS = (
    "NS", "TYPE", "PATH", "NPROCS", "PID", "PPID", "COMMAND", "UID", "USER",
    "NETNSID", "NSFS", "PNS", "ONS",
)  # fmt: skip
DEFAULT = ("NS", "TYPE", "NPROCS", "PID", "USER", "COMMAND")
_RIGHT = frozenset({"NS", "NPROCS", "PID", "PPID", "UID", "NETNSID", "PNS", "ONS"})
_NUMBERS = frozenset({"NS", "NPROCS", "PID", "PPID", "UID", "PNS", "ONS"})


def _column_list(text: str) -> list[str]:
    add = text.startswith("+")
    names = [c.strip().upper() for c in text.lstrip("+").split(",") if c.strip()]
    for c in names:
        if c not in COLUMNS:
            raise argparse.ArgumentTypeError(f"unknown column: {c}")
    return [*DEFAULT, *names] if add else names


__all__ = ["add_ls_parser", "cmd_ls", "ns_json", "render_ls", "render_tree"]


def add_ls_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ls`` subcommand (handler :func:`cmd_ls` in ``func``)."""
    p = subparsers.add_parser(
        "ls",
        help="list namespaces (like lsns, plus those held by threads, fds and bind mounts)",
        description="List every namespace visible from here in one pass over /proc.",
    )
    p.add_argument("-J", "--json", action="store_true", help="print JSON shaped like lsns -J")
    p.add_argument(
        "-t",
        "--type",
        action="append",
        metavar="TYPE",
        type=_ns_type,
        help="only this namespace type (repeatable; " + ", ".join(TYPES) + ")",
    )
    p.add_argument(
        "-p",
        "--task",
        "--pid",
        dest="pid",
        type=_pid,
        metavar="PID",
        help="only namespaces this process is in or holds",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="LIST",
        type=_column_list,
        help="columns to print, comma-separated; '+LIST' adds to the default ("
        + ", ".join(DEFAULT)
        + "). Available: "
        + ", ".join(COLUMNS)
        + " (NETNSID stays empty: nsprim does not ask rtnetlink for it)",
    )
    p.add_argument("--output-all", action="store_true", help="print every column")
    p.add_argument("-n", "--noheadings", action="store_true", help="don't print headings")
    p.add_argument(
        "-r", "--raw", action="store_true", help="raw output: one space between fields, escaped"
    )
    p.add_argument(
        "-l", "--list", action="store_true", help="list format (the default; flattens --tree)"
    )
    p.add_argument(
        "-u",
        "--notruncate",
        action="store_true",
        help="accepted for lsns(8) compatibility; nsprim never truncates",
    )
    p.add_argument(
        "-W",
        "--nowrap",
        action="store_true",
        help="accepted for lsns(8) compatibility; nsprim never wraps",
    )
    p.add_argument(
        "-T",
        "--tree",
        nargs="?",
        const="user",
        choices=("user", "owner", "pid", "parent"),
        metavar="owner|parent",
        help="show the ownership (owner, user: the default) or parent (parent, pid) hierarchy "
        "as a tree",
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
    paint = not ns.json and not getattr(ns, "raw", False) and colour(stdout)
    columns = _chosen_columns(ns)
    result = listing.scan(sockets=ns.sockets)
    chosen = result.select(ns.type or None, ns.pid)
    tree = ns.tree and not getattr(ns, "list", False)
    if tree:
        relation = {"owner": "user", "parent": "pid"}.get(ns.tree, ns.tree)
        sub = listing.Listing(tuple(chosen), result.scanned, result.vanished, result.denied)
        roots = listing.tree(sub, relation)
        if ns.json:
            doc = [_tree_json(r, columns) for r in roots]
            json.dump({"namespaces": doc}, stdout, indent=2)
            stdout.write("\n")
        else:
            stdout.write(render_tree(roots, paint=paint, columns=columns, **_style(ns)))
        return 0
    if ns.json:
        doc = [ns_json(n) if columns is None else _json_columns(n, columns) for n in chosen]
        json.dump({"namespaces": doc}, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(render_ls(chosen, paint=paint, columns=columns, **_style(ns)))
    return 0


def _chosen_columns(ns: argparse.Namespace) -> Optional[list[str]]:
    """The columns of -o/--output-all, or None for the default (and nsprim's JSON keys)."""
    if getattr(ns, "output_all", False):
        return list(COLUMNS)
    output: Optional[list[str]] = getattr(ns, "output", None)
    return output


def _style(ns: argparse.Namespace) -> dict[str, bool]:
    return {"raw": getattr(ns, "raw", False), "headings": not getattr(ns, "noheadings", False)}


def _ppid(pid: Optional[int]) -> Optional[int]:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _value(n: listing.NsInfo, column: str) -> Any:
    """One lsns column of *n*: an int, a str, or None when it has no value."""
    if column == "NS":
        return n.ino
    if column == "TYPE":
        return n.type.value
    if column == "PATH":
        if n.pid is not None:
            return f"/proc/{n.pid}/ns/{n.type.value}"
        return n.mounts[0].path if n.mounts else None
    if column == "NPROCS":
        return n.nprocs
    if column == "PID":
        return n.pid
    if column == "PPID":
        return _ppid(n.pid)
    if column == "COMMAND":
        return n.command if n.pid is not None else _holder_text(n)
    if column == "UID":
        return n.uid
    if column == "USER":
        return n.user
    if column == "NSFS":
        return n.mounts[0].path if n.mounts else None
    if column == "PNS":
        return n.parent.ino if n.parent else 0
    if column == "ONS":
        return n.owner.ino if n.owner else 0
    return None  # NETNSID: nsprim does not ask rtnetlink for it (RTM_GETNSID)


def _json_columns(n: listing.NsInfo, columns: Sequence[str]) -> dict[str, Any]:
    return {c.lower(): _value(n, c) for c in columns}


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


def _tree_json(node: listing.TreeNode, columns: Optional[Sequence[str]] = None) -> dict[str, Any]:
    d = ns_json(node.ns) if columns is None else _json_columns(node.ns, columns)
    d["children"] = [_tree_json(c, columns) for c in node.children]
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


def _cell(n: listing.NsInfo, column: str) -> str:
    value = _value(n, column)
    if value is None:
        # nsprim's own rows (no member process) show '-' where lsns has no row at all
        return "-" if column in ("PID", "PPID", "UID", "USER") else ""
    return str(value)


_BOLD, _YELLOW, _RESET = "\033[1m", "\033[33m", "\033[0m"


def _escape(text: str) -> str:
    # libsmartcols' raw output: bytes outside printable ASCII, space and backslash as \xHH
    out = []
    for b in text.encode("utf-8", "surrogateescape"):
        out.append(chr(b) if 0x21 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}")
    return "".join(out)


def render_ls(
    namespaces: Sequence[listing.NsInfo],
    paint: bool = False,
    columns: Optional[Sequence[str]] = None,
    raw: bool = False,
    headings: bool = True,
) -> str:
    """Return the lsns-style table (default columns NS TYPE NPROCS PID USER COMMAND).

    With *paint* (a terminal, see :func:`nsprim.cli.colour`) the header is bold
    and a namespace no process is a member of shows its holder in yellow.
    """
    cols = list(columns or DEFAULT)
    rows = [[_cell(n, c) for c in cols] for n in namespaces]
    held = [n.pid is None for n in namespaces]
    return _table(cols, rows, held, paint=paint, raw=raw, headings=headings)


def _table(
    cols: Sequence[str],
    rows: list[list[str]],
    held: Sequence[bool],
    paint: bool = False,
    raw: bool = False,
    headings: bool = True,
    right: frozenset[str] = _RIGHT,
) -> str:
    # lsns's layout: numbers right-aligned, text left, the last column unpadded.
    # Hand-made because importing tabulate costs ~20 ms, a tenth of a whole scan.
    table = ([list(cols)] if headings else []) + rows
    if not table:
        return ""
    if raw:
        return "".join(" ".join(_escape(c) for c in r) + "\n" for r in table)
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    lines = []
    for k, r in enumerate(table):
        cells = [
            r[i].rjust(widths[i]) if cols[i] in right else r[i].ljust(widths[i])
            for i in range(len(r) - 1)
        ]
        line = " ".join([*cells, r[-1]])
        is_head = headings and k == 0
        if paint and is_head:
            line = _BOLD + line + _RESET
        elif paint and held[k - 1 if headings else k]:
            line = " ".join([*cells, _YELLOW + r[-1] + _RESET])
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_tree(
    roots: Sequence[listing.TreeNode],
    paint: bool = False,
    columns: Optional[Sequence[str]] = None,
    raw: bool = False,
    headings: bool = True,
) -> str:
    """Return the hierarchy as a table whose NS column is indented with tree branches."""
    cols = list(columns or DEFAULT)
    rows: list[list[str]] = []
    held: list[bool] = []

    def visit(node: listing.TreeNode, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─" if last else "├─")
        row = [_cell(node.ns, c) for c in cols]
        if "NS" in cols:
            row[cols.index("NS")] = f"{prefix}{branch}{node.ns.ino}"
        rows.append(row)
        held.append(node.ns.pid is None)
        child_prefix = prefix if top else prefix + ("  " if last else "│ ")
        for i, c in enumerate(node.children):
            visit(c, child_prefix, i == len(node.children) - 1, False)

    for r in roots:
        visit(r, "", True, True)
    # the NS column carries the branches: left-aligned
    return _table(cols, rows, held, paint, raw, headings, right=_RIGHT - {"NS"})
