"""What ``nsprim run`` and ``nsprim enter`` share: namespace flags, the command, waiting.

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
import os
import signal
import sys
from collections.abc import Iterator

from ..namespace import NsType
from ..process import NsProcess

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ENOENT = 127
EXIT_CANNOT = 126

# (short, long, type) in the order of the util-linux man pages.
NS_OPTIONS = (
    ("-m", "--mount", NsType.MNT),
    ("-u", "--uts", NsType.UTS),
    ("-i", "--ipc", NsType.IPC),
    ("-n", "--net", NsType.NET),
    ("-p", "--pid", NsType.PID),
    ("-U", "--user", NsType.USER),
    ("-C", "--cgroup", NsType.CGROUP),
    ("-T", "--time", NsType.TIME),
)


def add_ns_flags(p: argparse.ArgumentParser) -> None:
    """Add ``-m -u -i -n -p -U -C -T`` (dest ``ns_<type>``)."""
    for short, long, t in NS_OPTIONS:
        p.add_argument(
            short, long, dest=f"ns_{t.value}", action="store_true", help=f"{t.value} namespace"
        )


def add_command(p: argparse.ArgumentParser) -> None:
    """Add the trailing ``[--] COMMAND [ARG...]``."""
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
    return [t for _, _, t in NS_OPTIONS if getattr(ns, f"ns_{t.value}", False)]


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


def fail(prog: str, err: BaseException) -> int:
    """Print ``nsprim PROG: message`` and return the exit status for *err*."""
    print(f"nsprim {prog}: {err}", file=sys.stderr)
    step = getattr(err, "step", None)
    if step == "execve" and isinstance(err, OSError):
        return EXIT_ENOENT if err.errno == errno.ENOENT else EXIT_CANNOT
    if isinstance(err, (ValueError, TypeError)):
        return EXIT_USAGE
    return EXIT_FAILURE


def wait(proc: NsProcess) -> int:
    """Wait for the command and return its exit status (128+N for signal N)."""
    with proc, _ignore_interactive_signals():
        return _status(proc.wait())
