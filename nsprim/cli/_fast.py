"""The plain command lines of ``nsprim run``, ``enter`` and ``ls``, parsed without argparse.

Layer 4, private. Building an argparse parser costs a command like
``nsprim run -u -- true`` more than its whole spawn: argparse imports re,
gettext and locale, and every ``add_argument`` formats its help. So
:func:`parse` reads the common shapes here, from a table that
:func:`derive` computes from the real parsers, and answers None for
anything else (``--help``, an abbreviation, a value it can't check, a
mistake): argparse then parses, errors and messages included, exactly as
before. ``tests/unit/test_cli_fast.py`` proves that both give the same
namespace wherever this one answers, and that :data:`SPECS` is what
:func:`derive` says today; after changing an option of ``run`` or ``enter``,
regenerate it with ``python -m nsprim.cli._fast``.

A spec, per command: ``flags`` (option string -> ``(dest, value)``, options
that take no value: store_true, or the const of a bare ``--opt[=VALUE]``),
``last`` (short options whose bare form is allowed only at the end of a
cluster: getopt takes the rest of the word as their value), ``values``
(option string -> ``(dest, kind, lowest)``: a decimal argument from
*lowest* to 2**31-1, as ``nsprim.cli._spawn.number`` reads it (kind
``"int"``) or as ``enter -t`` reads a plain PID (kind ``"pid"``, the value
``(pid, None)``)), ``defaults`` (every dest of the parser) and ``command``
(the dest of the trailing ``[--] COMMAND...``, or None for a command
whose only positional is an optional word, as ``ls [NS]``: a command line
that gives it is left to argparse).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Optional

__all__ = ["SPECS", "parse", "derive"]

_INT_MAX = 2**31 - 1


class Namespace:
    """What ``argparse.Namespace`` is to the handlers: attributes, compared by value."""

    func: Any  # the handler, set by nsprim.cli

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def parse(spec: dict[str, Any], words: list[str]) -> Optional[Namespace]:
    """The namespace argparse would give for *words*, or None to let argparse decide."""
    values = dict(spec["defaults"])
    flags, ints, last = spec["flags"], spec["values"], spec["last"]
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--" or not word.startswith("-"):
            if spec["command"] is None:
                return None  # `ls NS`, `ls -- NS`: argparse reads the positional
            break  # the command, "--" included (argparse's REMAINDER keeps it)
        if word == "-":
            return None
        if word.startswith("--"):
            name, eq, text = word.partition("=")
            if name in flags and not eq:
                dest, value = flags[name]
                values[dest] = value
            elif name in ints:
                if not eq:
                    i += 1
                    if i == len(words):
                        return None
                    text = words[i]
                if not _int(ints[name], text, values):
                    return None
            else:
                return None  # a value, an abbreviation, --help, a typo
        else:
            j = 1
            while j < len(word):
                option = "-" + word[j]
                if option in flags and (option not in last or j == len(word) - 1):
                    dest, value = flags[option]
                    values[dest] = value
                    j += 1
                elif option in ints:
                    text = word[j + 1 :]
                    if not text:
                        i += 1
                        if i == len(words):
                            return None
                        text = words[i]
                    if not _int(ints[option], text, values):
                        return None
                    break
                else:
                    return None  # "-", -h, -V, a value option, a typo
        i += 1
    if spec["command"] is not None:
        values[spec["command"]] = words[i:]
    return Namespace(**values)


def _int(rule: tuple[str, str, int], text: str, values: dict[str, Any]) -> bool:
    dest, kind, lowest = rule
    if not (text.isascii() and text.isdigit()):
        return False
    number = int(text, 10)
    if not lowest <= number <= _INT_MAX:
        return False
    values[dest] = (number, None) if kind == "pid" else number
    return True


# --- the table, and how it is made ------------------------------------------------------


def derive(parser: argparse.ArgumentParser) -> Optional[dict[str, Any]]:
    """The spec of *parser* (see the module docstring); None if a default isn't plain data."""
    import argparse

    from ._spawn import number
    from .enter import _target

    flags: dict[str, tuple[str, Any]] = {}
    ints: dict[str, tuple[str, str, int]] = {}
    last: list[str] = []
    defaults: dict[str, Any] = {}
    command = None
    optional = False  # an optional positional (`ls [NS]`) instead of a command
    explicit: dict[str, str] = getattr(parser, "_explicit_only", {})
    bare: set[str] = getattr(parser, "_short_bare", set())
    sample = number("x", 0)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if not action.option_strings:
            if command is not None or optional:
                return None
            if action.nargs == argparse.REMAINDER:
                command = action.dest
            elif action.nargs == "?" and action.default is None:
                optional = True  # left to argparse whenever it is given
                defaults[action.dest] = None
            else:
                return None
            continue
        if not _plain(action.default) or (isinstance(action.default, str) and action.type):
            return None  # argparse would convert a str default with its type
        defaults[action.dest] = action.default
        names = action.option_strings
        if isinstance(action, argparse._StoreConstAction) and _plain(action.const):
            # store_true, store_false, store_const
            for name in names:
                flags[name] = (action.dest, action.const)
        elif isinstance(action, argparse._StoreAction) and action.nargs == "?":
            # argparse passes a str const through type and choices: only plain ones here
            plain = action.type is None and action.choices is None and _plain(action.const)
            if all(n in explicit for n in names) and plain:
                for name in names:
                    flags[name] = (action.dest, action.const)
                    if not name.startswith("--") and name not in bare:
                        last.append(name)
        elif (
            isinstance(action, argparse._StoreAction)
            and action.nargs is None
            and getattr(action.type, "__code__", None) is sample.__code__
        ):
            # a closure of _spawn.number(what, lowest): read its lower bound
            fn: Any = action.type
            cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
            lowest = cells["lowest"].cell_contents
            for name in names:
                ints[name] = (action.dest, "int", lowest)
        elif isinstance(action, argparse._StoreAction) and action.type is _target:
            for name in names:
                ints[name] = (action.dest, "pid", 1)
    for dest, value in parser._defaults.items():
        if dest != "func":
            if not _plain(value):
                return None
            defaults[dest] = value
    if command is None and not optional:
        return None
    return {
        "flags": flags,
        "values": ints,
        "last": sorted(last),
        "defaults": defaults,
        "command": command,
    }


def _plain(value: object) -> bool:
    return value is None or isinstance(value, (bool, int, str))


def derive_all() -> dict[str, dict[str, Any]]:
    """The specs of the commands this module parses, from today's parsers."""
    from ._parser import command_parser

    out = {}
    for name in ("run", "enter", "ls"):
        spec = derive(command_parser(name))
        if spec is not None:
            out[name] = spec
    return out


def _render(specs: dict[str, dict[str, Any]]) -> str:
    lines = ["SPECS: dict[str, dict[str, Any]] = {"]
    for name, spec in specs.items():
        lines.append(f"    {name!r}: {{")
        for key in ("flags", "values", "last", "defaults", "command"):
            lines.append(f"        {key!r}: {spec[key]!r},")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


_BEGIN = "# --- generated by `python -m nsprim.cli._fast`: do not edit by hand ---\n"
_END = "# --- end of generated table ---\n"

# --- generated by `python -m nsprim.cli._fast`: do not edit by hand ---
SPECS: dict[str, dict[str, Any]] = {
    "run": {
        "flags": {
            "-m": ("ns_mnt", "\x00"),
            "--mount": ("ns_mnt", "\x00"),
            "-u": ("ns_uts", "\x00"),
            "--uts": ("ns_uts", "\x00"),
            "-i": ("ns_ipc", "\x00"),
            "--ipc": ("ns_ipc", "\x00"),
            "-n": ("ns_net", "\x00"),
            "--net": ("ns_net", "\x00"),
            "-p": ("ns_pid", "\x00"),
            "--pid": ("ns_pid", "\x00"),
            "-U": ("ns_user", "\x00"),
            "--user": ("ns_user", "\x00"),
            "-C": ("ns_cgroup", "\x00"),
            "--cgroup": ("ns_cgroup", "\x00"),
            "-T": ("ns_time", "\x00"),
            "--time": ("ns_time", "\x00"),
            "-f": ("fork", True),
            "--fork": ("fork", True),
            "--forward-signals": ("forward_signals", True),
            "-r": ("map_root_user", True),
            "--map-root-user": ("map_root_user", True),
            "-c": ("map_current_user", True),
            "--map-current-user": ("map_current_user", True),
            "--map-auto": ("map_auto", True),
            "--map-subids": ("map_subids", True),
            "--keep-caps": ("keep_caps", True),
            "--mount-proc": ("mount_proc", "/proc"),
            "--mount-binfmt": ("mount_binfmt", "/proc/sys/fs/binfmt_misc"),
            "--clear-env": ("clear_env", True),
            "--lo-up": ("lo_up", True),
        },
        "values": {
            "-S": ("setuid", "int", 0),
            "--setuid": ("setuid", "int", 0),
            "-G": ("setgid", "int", 0),
            "--setgid": ("setgid", "int", 0),
        },
        "last": [],
        "defaults": {
            "ns_mnt": None,
            "ns_uts": None,
            "ns_ipc": None,
            "ns_net": None,
            "ns_pid": None,
            "ns_user": None,
            "ns_cgroup": None,
            "ns_time": None,
            "fork": False,
            "forward_signals": False,
            "kill_child": None,
            "map_root_user": False,
            "map_current_user": False,
            "setuid": None,
            "setgid": None,
            "map_user": None,
            "map_group": None,
            "map_users": None,
            "map_groups": None,
            "map_auto": False,
            "map_subids": False,
            "owner": None,
            "keep_caps": False,
            "setgroups": None,
            "mount_proc": None,
            "mount_binfmt": None,
            "load_interp": None,
            "propagation": None,
            "root": None,
            "wd": None,
            "clear_env": False,
            "whitelist_env": None,
            "monotonic": None,
            "boottime": None,
            "hostname": None,
            "domainname": None,
            "lo_up": False,
            "veth": None,
            "addr": None,
            "host_addr": None,
        },
        "command": "command",
    },
    "enter": {
        "flags": {
            "-a": ("all", True),
            "--all": ("all", True),
            "-m": ("ns_mnt", "\x00"),
            "--mount": ("ns_mnt", "\x00"),
            "-u": ("ns_uts", "\x00"),
            "--uts": ("ns_uts", "\x00"),
            "-i": ("ns_ipc", "\x00"),
            "--ipc": ("ns_ipc", "\x00"),
            "-n": ("ns_net", "\x00"),
            "--net": ("ns_net", "\x00"),
            "-p": ("ns_pid", "\x00"),
            "--pid": ("ns_pid", "\x00"),
            "-U": ("ns_user", "\x00"),
            "--user": ("ns_user", "\x00"),
            "-C": ("ns_cgroup", "\x00"),
            "--cgroup": ("ns_cgroup", "\x00"),
            "-T": ("ns_time", "\x00"),
            "--time": ("ns_time", "\x00"),
            "--user-parent": ("user_parent", True),
            "--preserve-credentials": ("preserve_credentials", True),
            "--keep-caps": ("keep_caps", True),
            "-r": ("root", "\x00"),
            "--root": ("root", "\x00"),
            "-w": ("wd", "\x00"),
            "--wd": ("wd", "\x00"),
            "-e": ("env", True),
            "--env": ("env", True),
            "-F": ("no_fork", True),
            "--no-fork": ("no_fork", True),
            "-c": ("join_cgroup", True),
            "--join-cgroup": ("join_cgroup", True),
            "-Z": ("follow_context", True),
            "--follow-context": ("follow_context", True),
        },
        "values": {
            "-t": ("target", "pid", 1),
            "--target": ("target", "pid", 1),
            "-N": ("net_socket", "int", 0),
            "--net-socket": ("net_socket", "int", 0),
        },
        "last": ["-C", "-T", "-U", "-i", "-m", "-n", "-p", "-r", "-u", "-w"],
        "defaults": {
            "target": None,
            "all": False,
            "ns_mnt": None,
            "ns_uts": None,
            "ns_ipc": None,
            "ns_net": None,
            "ns_pid": None,
            "ns_user": None,
            "ns_cgroup": None,
            "ns_time": None,
            "net_socket": None,
            "user_parent": False,
            "setuid": None,
            "setgid": None,
            "preserve_credentials": False,
            "keep_caps": False,
            "root": None,
            "wd": None,
            "wdns": None,
            "env": False,
            "no_fork": False,
            "join_cgroup": False,
            "follow_context": False,
        },
        "command": "command",
    },
    "ls": {
        "flags": {
            "-J": ("json", True),
            "--json": ("json", True),
            "--output-all": ("output_all", True),
            "-n": ("noheadings", True),
            "--noheadings": ("noheadings", True),
            "-r": ("raw", True),
            "--raw": ("raw", True),
            "-l": ("list", True),
            "--list": ("list", True),
            "-u": ("notruncate", True),
            "--notruncate": ("notruncate", True),
            "-W": ("nowrap", True),
            "--nowrap": ("nowrap", True),
            "-T": ("tree", "owner"),
            "--tree": ("tree", "owner"),
            "-P": ("persistent", True),
            "--persistent": ("persistent", True),
            "-H": ("list_columns", True),
            "--list-columns": ("list_columns", True),
            "--sockets": ("sockets", True),
        },
        "values": {},
        "last": ["-T"],
        "defaults": {
            "json": False,
            "type": None,
            "pid": None,
            "output": None,
            "output_all": False,
            "noheadings": False,
            "raw": False,
            "list": False,
            "notruncate": False,
            "nowrap": False,
            "tree": None,
            "persistent": False,
            "filter": None,
            "list_columns": False,
            "namespace": None,
            "sockets": False,
        },
        "command": None,
    },
}
# --- end of generated table ---


def _write() -> None:  # pragma: no cover - a maintainer's tool
    import os
    import subprocess
    import sys

    table = _render(derive_all())  # first: a failure must not touch the file
    path = os.path.abspath(__file__)
    with open(path) as f:
        text = f.read()
    head, rest = text.split(_BEGIN, 1)
    _, tail = rest.split(_END, 1)
    with open(path + ".new", "w") as f:
        f.write(head + _BEGIN + table + _END + tail)
    os.replace(path + ".new", path)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", path], check=False)


if __name__ == "__main__":  # pragma: no cover
    _write()
