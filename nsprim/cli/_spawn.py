"""What ``nsprim run`` and ``nsprim enter`` share: namespace flags, the command, waiting.

Both commands fork the way ``unshare --fork`` and ``nsenter`` do: the
command is a child (PID 1 with ``-p``), this process waits and exits with
its status. Errors speak util-linux's language: ``nsprim run: --wd:
/nonexistent: No such file or directory``, exit 1; a command that can't be
executed exits 127 (not found) or 126, as util-linux's ``errexec``.

Signals while the command runs (util-linux's ``unshare.c`` blocks SIGINT and
SIGTERM in the waiting parent; ``nsenter`` without ``--fork`` *is* the
command):

* ``run``: SIGINT, SIGTERM and SIGQUIT are held; the command decides (a
  terminal's ^C reaches it through the process group). This process exits
  with the command's status, or dies of the signal that killed it.
* ``enter``: SIGTERM and SIGHUP are passed on to the command (what ``kill``
  of nsenter's pid does to the command it became); SIGINT and SIGQUIT are
  held as for ``run``.

The handlers are Python handlers, not SIG_IGN, installed before the fork:
execve(2) resets caught signals to their default, so the command starts
with the dispositions it would have had.
"""

from __future__ import annotations

import errno
import os
import sys

from .._stdlib import signal, suppress
from . import SignalStatus

# typing.TYPE_CHECKING without importing typing, and argparse only where a
# parser is built: `nsprim run` and `nsprim enter` with plain options parse
# without them (nsprim.cli._fast), and they cost more than the spawn.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Callable, Optional

    from .._nstype import NsType
    from ..process import NsProcess

EXIT_FAILURE = 1
EXIT_ENOENT = 127
EXIT_CANNOT = 126

# (short, long, type) in the order of the util-linux man pages.
# Plain names, so that building the parser (--help, man pages) imports no namespace code.
NS_OPTIONS = (
    ("-m", "--mount", "mnt"),
    ("-u", "--uts", "uts"),
    ("-i", "--ipc", "ipc"),
    ("-n", "--net", "net"),
    ("-p", "--pid", "pid"),
    ("-U", "--user", "user"),
    ("-C", "--cgroup", "cgroup"),
    ("-T", "--time", "time"),
)

_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


#: The value of ``-n`` given without ``=FILE`` (argv can't hold a NUL).
NO_FILE = "\0"


def add_ns_flags(
    p: argparse.ArgumentParser,
    verb: str,
    files: bool = False,
    short_files: bool = True,
    file_help: str = "(of -t PID, or the nsfs FILE)",
) -> None:
    """Add ``-m -u -i -n -p -U -C -T`` (dest ``ns_<type>``); with *files*, ``-n[=FILE]``.

    Without *short_files* only the long form takes ``=FILE`` (unshare(1):
    ``--net=FILE``, while ``-n`` is a plain flag and ``-nu`` is ``-n -u``).
    """
    from . import Parser

    for short, long, t in NS_OPTIONS:
        if files and isinstance(p, Parser):
            p.add_explicit_only(
                short,
                long,
                const=NO_FILE,
                short_bare=not short_files,
                dest=f"ns_{t}",
                metavar="FILE",
                help=f"{verb} {t} namespace {file_help}",
            )
        else:
            p.add_argument(
                short, long, dest=f"ns_{t}", action="store_true", help=f"{verb} {t} namespace"
            )


def ns_files(ns: argparse.Namespace) -> dict[str, str]:
    """The ``--TYPE=FILE`` values given: ``{type name: path}``."""
    out = {}
    for _, _, t in NS_OPTIONS:
        value = getattr(ns, f"ns_{t}", None)
        if isinstance(value, str) and value != NO_FILE:
            out[t] = value
    return out


def add_command(p: argparse.ArgumentParser) -> None:
    """Add the trailing ``[--] COMMAND [ARG...]``."""
    import argparse

    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARG...]",
        help="the program to run (default: $SHELL or /bin/sh)",
    )


def command(ns: argparse.Namespace) -> list[str]:
    """Return the command to run: the arguments after ``--``, else ``$SHELL``."""
    cmd = list(ns.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        cmd = [os.environ.get("SHELL") or "/bin/sh"]
    return cmd


def chosen_types(ns: argparse.Namespace) -> list[NsType]:
    """Return the namespace types whose flag was given."""
    from .._nstype import NsType

    return [NsType(t) for _, _, t in NS_OPTIONS if getattr(ns, f"ns_{t}", False)]


def number(what: str, lowest: int = 0) -> Callable[[str], int]:
    """An argparse type: a decimal integer >= *lowest*, else util-linux's ``failed to parse``."""

    def parse(text: str) -> int:
        import argparse

        try:
            value = int(text, 10)
        except ValueError:
            value = lowest - 1
        if value < lowest or value > 2**31 - 1:
            raise argparse.ArgumentTypeError(f"failed to parse {what}: '{text}'")
        return value

    return parse


# Steps of the child (OSError.step) and the flag that asked for them.
STEP_FLAGS = {
    "chdir": "--wd",
    "fchdir": "--wd",
    "chroot": "--root",
    "pivot_root": "--root",
    "sethostname": "--hostname",
    "setdomainname": "--domainname",
}


# What privilege a refused step needs, said with the CLI's flags (the library's
# own hints name its keyword arguments).
CLI_HINTS = {
    "clone3": "creating namespaces other than user needs CAP_SYS_ADMIN; "
    "add -r (or -U with --map-user) to run unprivileged",
    "unshare": "creating namespaces other than user needs CAP_SYS_ADMIN; "
    "add -r (or -U with --map-user) to run unprivileged",
    "gid_map": "without CAP_SETGID use --setgroups deny and map only your own group",
    "uid_map": "without CAP_SETUID only your own user can be mapped",
}


def message(err: BaseException, flags: Optional[dict[str, str]] = None) -> str:
    """Say *err* in util-linux's words: ``FLAG: PATH: strerror`` for a refused step."""
    from ..errors import AccessDenied, NsprimError

    if isinstance(err, OSError) and err.errno:
        text = os.strerror(err.errno)
        step = getattr(err, "step", None)
        name = err.filename
        path = os.fsdecode(name) if isinstance(name, (str, bytes)) else None
        if step == "execve" and path is not None:
            return f"failed to execute {path}: {text}"
        flag = {**STEP_FLAGS, **(flags or {})}.get(step or "")
        if flag is not None:
            return ": ".join(p for p in (flag, path, text) if p)
        if isinstance(err, AccessDenied):
            # e.g. "unshare: Operation not permitted; creating namespaces ... add -r"
            where = f" (pid {err.pid})" if err.pid is not None else ""
            hint = CLI_HINTS.get(err.operation, err.hint)
            return f"{err.operation}: {text}{where}" + (f"; {hint}" if hint else "")
        if isinstance(err, NsprimError):
            return str(err)  # the library's sentence (which process, which feature)
        return ": ".join(p for p in (step, path, text) if p)
    return str(err)


def fail(prog: str, err: BaseException, flags: Optional[dict[str, str]] = None) -> int:
    """Print ``nsprim PROG: message`` and return the exit status for *err*."""
    print(f"nsprim {prog}: {message(err, flags)}", file=sys.stderr)
    if getattr(err, "step", None) == "execve" and isinstance(err, OSError):
        return EXIT_ENOENT if err.errno == errno.ENOENT else EXIT_CANNOT
    return EXIT_FAILURE


class Held:
    """The signals held while a command runs; :meth:`started` names the command."""

    def __init__(self, forward: tuple[int, ...]) -> None:
        self.forward = forward
        self.proc: Optional[NsProcess] = None
        self.pending: list[int] = []  # forwarded signals that came before the pid was known

    def handler(self, signum: int, frame: Any) -> None:
        if signum not in self.forward:
            return
        if self.proc is None:
            self.pending.append(signum)
            return
        with suppress(OSError):
            self.proc.send_signal(signum)

    def started(self, proc: NsProcess) -> None:
        """Pass on what came while the command was being started."""
        self.proc = proc
        for signum in self.pending:
            with suppress(OSError):
                proc.send_signal(signum)
        self.pending.clear()


class signals_held:
    """Hold SIGINT/SIGTERM/SIGQUIT (and pass *forward* on) while the command runs.

    ``with signals_held(forward) as held:``; a class rather than a
    contextlib generator, which would import contextlib on every start.
    """

    def __init__(self, forward: tuple[int, ...] = ()) -> None:
        self.held = Held(forward)
        self.forward = forward
        self.old: dict[int, Any] = {}

    def __enter__(self) -> Held:
        try:
            for s in dict.fromkeys(_HELD + self.forward):
                self.old[s] = signal.signal(s, self.held.handler)
        except ValueError:
            pass  # not the main thread (an embedding caller): signals stay theirs
        except BaseException:
            self.__exit__()
            raise
        return self.held

    def __exit__(self, *exc: object) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
        self.old.clear()


def wait(proc: NsProcess) -> int:
    """Wait for the command; its exit status, or a :class:`SignalStatus` if a signal killed it."""
    with proc:
        rc = proc.wait()
    return SignalStatus(-rc) if rc < 0 else rc
