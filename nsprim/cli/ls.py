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
       "held": ["process", "fd"],  # process | thread | fd | bind-mount | socket | ancestor | listns
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

import os
import sys

from . import colour

# typing.TYPE_CHECKING without importing typing, and argparse only where the
# command line needs it (see nsprim.cli._fast): `nsprim ls` on a small host
# spends more on imports than on its scan.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, Optional, TextIO

    from .. import listing
    from ..namespace import NsType

TYPES = ("mnt", "net", "ipc", "user", "pid", "uts", "cgroup", "time")  # lsns(8)'s order


def _ns_type(text: str) -> NsType:
    import argparse

    from ..namespace import NsType

    try:
        return NsType.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown namespace type: {text}") from None


def _pid(text: str) -> int:
    import argparse

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
DEFAULT_NET = ("NS", "TYPE", "NPROCS", "PID", "USER", "NETNSID", "NSFS", "COMMAND")  # -t net
DEFAULT_PROCS = ("PID", "PPID", "USER", "COMMAND")  # with a namespace argument
HELP = {
    "NS": "namespace identifier (inode number)",
    "TYPE": "kind of namespace",
    "PATH": "path to the namespace",
    "NPROCS": "number of processes in the namespace",
    "PID": "lowest PID in the namespace",
    "PPID": "PPID of the PID",
    "COMMAND": "command line of the PID",
    "UID": "UID of the PID",
    "USER": "username of the PID",
    "NETNSID": "namespace ID as used by network subsystem",
    "NSFS": "nsfs mountpoint (usually used network subsystem)",
    "PNS": "parent namespace identifier (inode number)",
    "ONS": "owner namespace identifier (inode number)",
}
TREES = ("owner", "parent", "process", "user", "pid")  # lsns's three, and nsprim's aliases
_RIGHT = frozenset({"NS", "NPROCS", "PID", "PPID", "UID", "NETNSID", "PNS", "ONS"})
_NUMBERS = frozenset({"NS", "NPROCS", "PID", "PPID", "UID", "PNS", "ONS"})
_HINTS = {"NS": 10, "TYPE": 5, "NPROCS": 5, "PID": 5, "PPID": 5, "PNS": 10, "ONS": 10}


def _column_list(text: str) -> list[str]:
    import argparse

    add = text.startswith("+")
    names = [c.strip().upper() for c in text.lstrip("+").split(",") if c.strip()]
    for c in names:
        if c not in COLUMNS:
            raise argparse.ArgumentTypeError(f"unknown column: {c}")
    return [*DEFAULT, *names] if add else names


__all__ = ["add_ls_parser", "cmd_ls", "json_text", "ns_json", "render_ls", "render_tree"]


def add_ls_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ls`` subcommand (handler :func:`cmd_ls` in ``func``)."""
    from . import Parser

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
        + " (see -H)",
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
    tree_help = (
        "tree format: the ownership (owner, the default), parent (parent) or process "
        "(process) hierarchy"
    )
    if isinstance(p, Parser):
        p.add_explicit_only(
            "-T", "--tree", const="owner", metavar="owner|parent|process", help=tree_help
        )
    else:
        p.add_argument(
            "-T", "--tree", nargs="?", const="owner", metavar="owner|parent|process",
            help=tree_help,
        )  # fmt: skip
    p.add_argument(
        "-P",
        "--persistent",
        action="store_true",
        help="only namespaces without processes (held by a bind mount, an fd or a thread)",
    )
    p.add_argument(
        "-Q",
        "--filter",
        metavar="EXPR",
        help='only the lines EXPR is true of (scols-filter(5): e.g. \'TYPE == "net" && '
        "NPROCS > 1'; columns need not be shown)",
    )
    p.add_argument("-H", "--list-columns", action="store_true", help="list the available columns")
    p.add_argument(
        "namespace",
        nargs="?",
        metavar="NS",
        help="list the processes of the namespace with this inode number (lsns <namespace>)",
    )
    p.add_argument(
        "--sockets",
        action="store_true",
        help="also find network namespaces held only by sockets (pidfd_getfd + SIOCGSKNS; "
        "needs ptrace rights over every process)",
    )
    p.set_defaults(func=cmd_ls)


def cmd_ls(ns: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """Run ``nsprim ls``: 0, or 1 when lsns would refuse (util-linux's message on stderr)."""
    stdout = out if out is not None else sys.stdout
    try:
        return _ls(ns, stdout)
    except _Refusal as err:
        print(f"nsprim ls: {err}", file=sys.stderr)
        return 1


class _Refusal(Exception):
    """lsns's words for a refusal: ``nsprim ls: MESSAGE``, exit 1."""


def _ls(ns: argparse.Namespace, stdout: TextIO) -> int:
    from .. import listing

    raw = getattr(ns, "raw", False)
    if getattr(ns, "list_columns", False):
        stdout.write(_list_columns(ns.json, raw))
        return 0
    if ns.json and raw:
        raise _Refusal("mutually exclusive arguments: --json --raw")
    persistent = getattr(ns, "persistent", False)
    if persistent and ns.pid:
        raise _Refusal("mutually exclusive arguments: --persistent --task")
    nsid: Optional[int] = None
    if getattr(ns, "namespace", None) is not None:
        if ns.pid:
            raise _Refusal("--task is mutually exclusive with <namespace>")
        text = ns.namespace
        if not text.isdigit():
            raise _Refusal(f"invalid namespace argument: '{text}'")
        if int(text) >= 2**64:  # util-linux's strtou64_or_err() adds the errno
            raise _Refusal(f"invalid namespace argument: '{text}': {os.strerror(34)}")
        nsid = int(text)
    tree = ns.tree
    if tree is not None and tree not in TREES:
        raise _Refusal(f"unknown tree type: {tree}")
    tree = {"user": "owner", "pid": "parent"}.get(tree, tree)
    if getattr(ns, "list", False):
        tree = None  # -l: the list format (lsns 2.38 lets it win over --tree)
    flt = None
    if getattr(ns, "filter", None) is not None:
        from ._filter import Filter, FilterError

        try:
            flt = Filter(ns.filter, {c: c in _NUMBERS for c in COLUMNS})
        except FilterError as err:
            if str(err).startswith("unknown column"):
                raise _Refusal(f"failed to initialize filter ({err})") from None
            raise _Refusal(f'failed to parse "{ns.filter}": {err}') from None
    paint = not ns.json and not raw and colour(stdout)
    columns = _chosen_columns(ns)
    result = listing.scan(sockets=ns.sockets)
    cache: dict[Any, Any] = {}
    if nsid is not None:
        return _ls_members(ns, stdout, result, nsid, columns, tree, flt, cache)
    # lsns's order: by inode (the library sorts by type first)
    chosen = sorted(result.select(ns.type or None, ns.pid), key=lambda n: (n.ino, n.dev))
    if persistent:
        chosen = [n for n in chosen if n.nprocs == 0]
    if flt is not None:
        f = flt
        chosen = [n for n in chosen if f.match(lambda c, n=n: _value(n, c, cache))]  # type: ignore[misc]
    net_only = bool(ns.type) and set(ns.type) == {_net_type()}
    if columns is None and net_only and not ns.json:
        columns = list(DEFAULT_NET)  # as lsns -t net; JSON keeps nsprim's keys, plus these
    if tree in ("owner", "parent"):
        relation = "user" if tree == "owner" else "pid"
        sub = listing.Listing(
            tuple(chosen), result.scanned, result.vanished, result.denied, result.sources
        )
        roots = listing.tree(sub, relation)
        if ns.json:
            doc = [_tree_json(r, columns, cache) for r in roots]
            stdout.write(json_text({"namespaces": doc}) + "\n")
        else:
            stdout.write(render_tree(roots, paint=paint, columns=columns, **_style(ns)))
        return 0
    if tree == "process":
        # a line goes under the latest line of its pid's parent, as in lsns
        nodes = _process_tree([(n, n.pid) for n in chosen])
        cols = list(columns or DEFAULT)
        if ns.json:
            doc = [_proc_json(node, cols, cache) for node in nodes]
            stdout.write(json_text({"namespaces": doc}) + "\n")
        else:
            stdout.write(_render_process_tree(nodes, cols, paint, cache, **_style(ns)))
        return 0
    if ns.json:
        doc = [
            _json_columns(n, columns, cache)
            if columns is not None
            else {
                **ns_json(n),
                **(_json_columns(n, ("NETNSID", "NSFS"), cache) if net_only else {}),
            }
            for n in chosen
        ]
        stdout.write(json_text({"namespaces": doc}) + "\n")
    else:
        stdout.write(render_ls(chosen, paint=paint, columns=columns, cache=cache, **_style(ns)))
    return 0


def _net_type() -> NsType:
    from ..namespace import NsType

    return NsType.NET


def _ls_members(
    ns: argparse.Namespace,
    stdout: TextIO,
    result: listing.Listing,
    nsid: int,
    columns: Optional[list[str]],
    tree: Optional[str],
    flt: Any,
    cache: dict[Any, Any],
) -> int:
    """``lsns NS``: the processes of one namespace (PID PPID USER COMMAND), as a process tree."""
    found = [n for n in result.namespaces if n.ino == nsid]
    if not found:
        raise _Refusal(f"not found namespace: {nsid}")
    n = found[0]
    cols = list(columns or DEFAULT_PROCS)
    members = [(n, pid) for pid in sorted(n.pids)]
    if flt is not None:
        f = flt
        members = [m for m in members if f.match(lambda c, m=m: _value(m[0], c, cache, m[1]))]
    if tree in (None, "process") and not getattr(ns, "list", False):
        nodes = _process_tree(members)
    else:
        nodes = [_Node(ns_, pid) for ns_, pid in members]
    if ns.json:
        doc = [_proc_json(x, cols, cache) for x in nodes]
        stdout.write(json_text({"namespaces": doc}) + "\n")
    else:
        paint = not getattr(ns, "raw", False) and colour(stdout)
        stdout.write(_render_process_tree(nodes, cols, paint, cache, **_style(ns)))
    return 0


def json_text(value: Any, level: int = 0) -> str:
    """``json.dumps(value, indent=2)``, without importing json, for what a listing holds.

    ``import json`` loads its decoder and with it re: more than the whole
    scan of a small host. So the common values are written here, as json
    writes them (``None``, bools, ints, printable ASCII strings, lists,
    tuples and dicts with such keys), and anything else (a float, a string
    json escapes further, another key type) is handed to json itself, from
    *level* (the nesting depth, two spaces each) on.
    """
    if isinstance(value, str):
        if value.isascii() and value.isprintable():
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif value is None:
        return "null"
    elif value is True:
        return "true"
    elif value is False:
        return "false"
    elif isinstance(value, int):
        return int.__repr__(value)
    elif isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = "\n" + "  " * (level + 1)
        items = [json_text(v, level + 1) for v in value]
        return "[" + inner + ("," + inner).join(items) + "\n" + "  " * level + "]"
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if not value:
            return "{}"
        inner = "\n" + "  " * (level + 1)
        items = [f"{json_text(k)}: {json_text(v, level + 1)}" for k, v in value.items()]
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * level + "}"
    import json

    return json.dumps(value, indent=2).replace("\n", "\n" + "  " * level)


class _Node:
    """A line of a process tree: a namespace, the process shown for it, the lines under it."""

    __slots__ = ("children", "ns", "pid")

    def __init__(self, ns: listing.NsInfo, pid: Optional[int]) -> None:
        self.ns, self.pid = ns, pid
        self.children: list[_Node] = []


def _process_tree(lines: Sequence[tuple[listing.NsInfo, Optional[int]]]) -> list[_Node]:
    """lsns's process tree: a line goes under the latest earlier line of its pid's parent."""
    nodes = [_Node(n, pid) for n, pid in lines]
    last: dict[int, _Node] = {}
    roots: list[_Node] = []
    for node in nodes:
        ppid = _ppid(node.pid)
        parent = last.get(ppid) if ppid else None
        (parent.children if parent is not None else roots).append(node)
        if node.pid is not None:
            last[node.pid] = node
    return roots


def _proc_json(node: _Node, cols: Sequence[str], cache: dict[Any, Any]) -> dict[str, Any]:
    d = _json_columns(node.ns, cols, cache, node.pid)
    if node.children:
        d["children"] = [_proc_json(c, cols, cache) for c in node.children]
    return d


def _render_process_tree(
    roots: Sequence[_Node],
    cols: Sequence[str],
    paint: bool,
    cache: dict[Any, Any],
    raw: bool = False,
    headings: bool = True,
) -> str:
    rows: list[list[str]] = []
    held: list[bool] = []

    def visit(node: _Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─" if last else "├─")
        row = [_cell(node.ns, c, cache, node.pid) for c in cols]
        if "COMMAND" in cols:
            i = cols.index("COMMAND")
            row[i] = f"{prefix}{branch}{row[i]}"
        rows.append(row)
        held.append(node.pid is None)
        child_prefix = prefix if top else prefix + ("  " if last else "│ ")
        for k, c in enumerate(node.children):
            visit(c, child_prefix, k == len(node.children) - 1, False)

    for r in roots:
        visit(r, "", True, True)
    return _table(cols, rows, held, paint, raw, headings)


def _list_columns(as_json: bool, raw: bool) -> str:
    """``lsns -H``: each column, its JSON type and what it shows (no headings)."""
    types = [("<integer>" if c in _NUMBERS else "<string>") for c in COLUMNS]
    if as_json:
        import json

        doc = [{"holder": c, "type": t, "description": HELP[c]} for c, t in zip(COLUMNS, types)]
        return json.dumps({"lsns-columns": doc}, indent=3) + "\n"
    rows = [[c, t, HELP[c]] for c, t in zip(COLUMNS, types)]
    return _table(
        ["HOLDER", "TYPE", "DESCRIPTION"], rows, [False] * len(rows), raw=raw, headings=False,
        right=frozenset({"HOLDER"}),
    )  # fmt: skip


def _chosen_columns(ns: argparse.Namespace) -> Optional[list[str]]:
    """The columns of -o/--output-all, or None for the default (and nsprim's JSON keys)."""
    if getattr(ns, "output_all", False):
        return list(COLUMNS)
    output: Optional[list[str]] = getattr(ns, "output", None)
    if (
        output is not None
        and getattr(ns, "namespace", None) is not None
        and output[: len(DEFAULT)] == list(DEFAULT)
    ):
        return [*DEFAULT_PROCS, *output[len(DEFAULT) :]]  # '+LIST' adds to that default
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


def _value(
    n: listing.NsInfo, column: str, cache: Optional[dict[Any, Any]] = None, pid: Any = -1
) -> Any:
    """One lsns column of *n* (of its process *pid*, default: the lowest): int, str or None."""
    if pid == -1:
        pid = n.pid
    if column == "NS":
        return n.ino
    if column == "TYPE":
        return n.type.value
    if column == "PATH":
        if pid is not None:
            return f"/proc/{pid}/ns/{n.type.value}"
        return n.mounts[0].path if n.mounts else None
    if column == "NPROCS":
        return n.nprocs
    if column == "PID":
        return pid
    if column == "PPID":
        return _ppid(pid)
    if column in ("COMMAND", "UID", "USER"):
        if pid is None:
            return _holder_text(n) if column == "COMMAND" else None
        if pid == n.pid:
            return {"COMMAND": n.command, "UID": n.uid, "USER": n.user}[column]
        return _proc_info(pid, cache)[column]
    if column == "NSFS":
        return n.mounts[0].path if n.mounts else None
    if column == "PNS":
        return n.parent.ino if n.parent else 0
    if column == "ONS":
        return n.owner.ino if n.owner else 0
    if column == "NETNSID":
        return _netnsid(n, cache if cache is not None else {})
    return None


def _proc_info(pid: int, cache: Optional[dict[Any, Any]]) -> dict[str, Any]:
    from .. import listing

    key = ("proc", pid)
    if cache is not None and key in cache:
        return cache[key]  # type: ignore[no-any-return]
    command, uid = listing._command_and_uid(pid)
    info = {
        "COMMAND": command,
        "UID": uid,
        "USER": listing._user_name(uid) if uid is not None else None,
    }
    if cache is not None:
        cache[key] = info
    return info


def _netnsid(n: listing.NsInfo, cache: dict[Any, Any]) -> Optional[str]:
    """lsns's NETNSID: the id this network namespace gives *n* (RTM_GETNSID), or "unassigned"."""
    from .. import net
    from ..namespace import NsType

    if n.type is not NsType.NET:
        return None
    key = ("netnsid", n.dev, n.ino)
    if key in cache:
        return cache[key]  # type: ignore[no-any-return]
    value: Optional[str] = None
    paths = [f"/proc/{n.pid}/ns/net"] if n.pid is not None else []
    paths += [f"/proc/{m.pid}/root{m.path}" for m in n.mounts]
    paths += [f"/proc/{h.pid}/fd/{h.fd}" for h in n.fds]
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (n.dev, n.ino):
                continue  # the pid or the fd number was reused meanwhile
            nsid = net.netnsid(fd)
            value = "unassigned" if nsid is None else str(nsid)
            break
        except OSError:
            continue
        finally:
            os.close(fd)
    cache[key] = value
    return value


def _json_columns(
    n: listing.NsInfo, columns: Sequence[str], cache: Optional[dict[Any, Any]] = None, pid: Any = -1
) -> dict[str, Any]:
    return {c.lower(): _value(n, c, cache, pid) for c in columns}


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


def _tree_json(
    node: listing.TreeNode,
    columns: Optional[Sequence[str]] = None,
    cache: Optional[dict[Any, Any]] = None,
) -> dict[str, Any]:
    d = ns_json(node.ns) if columns is None else _json_columns(node.ns, columns, cache)
    d["children"] = [_tree_json(c, columns, cache) for c in node.children]
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
    if any(h.value == "listns" for h in n.held):
        return "[listed by listns(2) only]"
    return "[ancestor only]"


def _cell(
    n: listing.NsInfo, column: str, cache: Optional[dict[Any, Any]] = None, pid: Any = -1
) -> str:
    value = _value(n, column, cache, pid)
    if value is None:
        # nsprim's own rows (no member process) show '-' where lsns has no row at all
        return "-" if column in ("PID", "PPID", "UID", "USER") else ""
    return str(value)


_BOLD, _YELLOW, _RESET = "\033[1m", "\033[33m", "\033[0m"


def _width(column: str, data: int) -> int:
    """The width libsmartcols gives a column of non-terminal output.

    Its quirk (calculate.c, count_column_width): the header's width is the least
    width, and the width hint applies only when the data are at least as wide as
    the header. So ``PID`` over ``907`` is 5 wide (the hint), ``PPID`` over
    ``758`` only 4, and ``TYPE`` over ``uts`` 4 (the hint 5 never applies), with
    or without headings.
    """
    least = max(len(column), 1)
    if data < least:
        return least
    hint = _HINTS.get(column, 0)
    return hint if least < hint and data < hint else data


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
    cache: Optional[dict[Any, Any]] = None,
) -> str:
    """Return the lsns-style table (default columns NS TYPE NPROCS PID USER COMMAND).

    With *paint* (a terminal, see :func:`nsprim.cli.colour`) the header is bold
    and a namespace no process is a member of shows its holder in yellow.
    """
    cols = list(columns or DEFAULT)
    rows = [[_cell(n, c, cache) for c in cols] for n in namespaces]
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
    # the last column is padded only when it is right-aligned
    widths = [_width(c, max((len(r[i]) for r in rows), default=0)) for i, c in enumerate(cols)]
    last = len(cols) - 1
    lines = []
    for k, r in enumerate(table):
        cells = [
            r[i].rjust(widths[i]) if cols[i] in right else r[i].ljust(widths[i])
            for i in range(len(r) - 1)
        ]
        tail = r[-1].rjust(widths[last]) if cols[last] in right else r[-1]
        line = " ".join([*cells, tail])
        is_head = headings and k == 0
        if paint and is_head:
            line = _BOLD + line + _RESET
        elif paint and held[k - 1 if headings else k]:
            line = " ".join([*cells, _YELLOW + tail + _RESET])
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
