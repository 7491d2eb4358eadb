"""The ``nsprim`` command: one module per subcommand, as util-linux keeps one tool per file.

Layer 4, the top: the only layer that prints or exits. Subcommands:

* ``run``         start a command in new namespaces (util-linux ``unshare(1)`` flags);
* ``enter``       run a command in the namespaces of a process (``nsenter(1)`` flags);
* ``check``       what this kernel and environment support;
* ``ls``          the namespaces that exist right now (``lsns(8)`` and more);
* ``conformance`` the isolation conformance suite (``python -m nsprim.conformance``).

Each lives in the module of its name (:mod:`nsprim.cli.run` ...); :func:`main`
imports only the one asked for, so ``nsprim ls`` never loads the process API.

The plumbing here speaks util-linux's language: a bad option or value prints
``nsprim run: <message>`` and ``Try 'nsprim run --help' for more
information.`` and exits 1, as ``errtryhelp(EXIT_FAILURE)`` does (``check``
and ``conformance`` keep 2, documented, because their 1 means "requirement
missing"/"a check failed"). Output cut short by a closed pipe (``nsprim ls |
head``) ends quietly, as a C tool killed by SIGPIPE does.
"""

from __future__ import annotations

import os
import sys

# typing.TYPE_CHECKING without importing typing. This module is the start of
# every nsprim command, and `nsprim run -u -- true` should cost little more
# than the interpreter's own start: no typing here, and argparse (with the
# re, gettext and locale it loads) only when a command line needs it. The
# parser lives in nsprim.cli._parser; `run` and `enter` with plain options
# are read by nsprim.cli._fast.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO, Any, Callable, Optional

    from ._parser import Parser, build_parser, command_parser

__all__ = [
    "COMMANDS",
    "Parser",
    "SignalStatus",
    "UsageError",
    "build_parser",
    "colour",
    "command_parser",
    "main",
]

EXIT_USAGE = 1  # util-linux: errtryhelp(EXIT_FAILURE)

# name -> (module in nsprim.cli, function adding its parser, handler, usage exit status).
COMMANDS: dict[str, tuple[str, str, str, int]] = {
    "run": ("run", "add_run_parser", "cmd_run", EXIT_USAGE),
    "enter": ("enter", "add_enter_parser", "cmd_enter", EXIT_USAGE),
    "check": ("check", "add_check_parser", "cmd_check", 2),
    "ls": ("ls", "add_ls_parser", "cmd_ls", EXIT_USAGE),
}

DESCRIPTION = "Linux namespaces: run, enter, inspect, and prove their isolation."


class UsageError(Exception):
    """Bad usage: ``prog: message`` plus the "Try ... --help" line, then *status*."""

    def __init__(self, prog: str, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.prog = prog
        self.status = status

    def __str__(self) -> str:
        return f"{self.prog}: {self.args[0]}\nTry '{self.prog} --help' for more information.\n"


class SignalStatus(int):
    """An exit status 128+N that stands for "the command was killed by signal N".

    ``main()`` acting as the process (no *argv*) re-raises N on itself, as
    ``unshare --fork`` does, so its own parent sees the same death.
    """

    signal: int

    def __new__(cls, sig: int) -> SignalStatus:
        self = super().__new__(cls, 128 + sig)
        self.signal = sig
        return self


def colour(stream: IO[str]) -> bool:
    """Whether to colour output written to *stream*: a terminal, and no ``NO_COLOR``.

    ``NO_COLOR`` (any non-empty value) turns colour off, as https://no-color.org
    asks; so does ``TERM=dumb``.
    """
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader is gone (poll says POLLERR)."""
    import select

    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), 0)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _quiet_stdout() -> None:
    # Nothing more can reach the reader; point fd 1 at /dev/null so the
    # interpreter's final flush does not complain either.
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _die_like(sig: int) -> None:
    """Re-raise *sig* on this process (unshare(1) after its child's death)."""
    import contextlib
    import resource
    import signal

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError, ValueError):
        # A core of the wrapper would describe nsprim, not the command.
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if sig != signal.SIGKILL:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``nsprim`` command line and return its exit status.

    Without *argv* (the ``nsprim`` program itself) a command killed by signal N
    makes this process die of N too, as ``unshare --fork`` does; with *argv*
    (an embedding caller, a test) the status is returned as 128+N.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            rc = _dispatch(args, program=argv is None)
        except SystemExit as done:  # argparse's --help and --version
            code = done.code
            rc = _flushed(code if isinstance(code, int) else 0 if code is None else 1)
    except UsageError as err:
        sys.stderr.write(str(err))
        return err.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        _quiet_stdout()
        rc = SignalStatus(13)  # SIGPIPE, as lsns(8) dies writing to `| head`
    if argv is None and isinstance(rc, SignalStatus):
        _die_like(rc.signal)
    if argv is None and args and args[0] in _QUICK_EXIT:
        _exit_now(int(rc))
    return int(rc)


# The commands that leave nothing for the interpreter's teardown: the wrappers (once
# their program has exited) and ls (once its output is written).
_QUICK_EXIT = ("run", "enter", "ls")


def _exit_now(rc: int) -> None:
    """End the process with *rc* now, without the interpreter's teardown; else return.

    Freeing every module and object at exit costs a wrapper like ``nsprim
    run`` several milliseconds that nobody waits for (unshare(1) just calls
    exit(3)), and ``nsprim ls`` as many once its output is written. What a
    normal exit would still do is done first: the atexit handlers and the
    flush of stdout and stderr. Any other thread still running, or a flush
    that fails, leaves the exit to the interpreter.
    """
    import atexit

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:
        return
    run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        return
    os._exit(rc)


def _dispatch(args: list[str], program: bool = False) -> int:
    handler, arg = _load(args, program)
    if args and args[0] == "conformance":
        return _flushed(handler(arg))
    from ..errors import NsprimError

    try:
        return _flushed(handler(arg))
    except BrokenPipeError:
        raise
    except (NsprimError, OSError, ValueError, TypeError) as err:
        print(f"nsprim {args[0]}: {err}", file=sys.stderr)
        return 1


def _load(args: list[str], program: bool) -> tuple[Callable[[Any], int], Any]:
    """The handler of the command line *args* and what to call it with: its module imported.

    The imports are most of a command's start (``nsprim run`` loads ctypes,
    the enums and the process API: some ten thousand objects, none of them
    garbage), so the cyclic garbage collector is held off while they run,
    instead of walking the growing heap again and again; the nsprim program
    itself (*program*) then freezes what they made into the permanent
    generation (``gc.freeze``, Python 3.7), which later collections skip.
    An embedding caller keeps its collector as it was.
    """
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        if args and args[0] == "conformance":
            from .conformance import cmd_conformance

            return cmd_conformance, args[1:]
        ns: Any = None
        if args and args[0] in COMMANDS:
            ns = _fast_args(args[0], args[1:])
            if ns is None:
                from ._parser import command_parser

                ns = command_parser(args[0]).parse_args(args[1:])
        else:
            from ._parser import build_parser

            ns = build_parser().parse_args(args)  # help, version, or a usage error
        return ns.func, ns
    finally:
        if program:
            gc.freeze()
        if collecting:
            gc.enable()


def _fast_args(name: str, words: list[str]) -> Any:
    """The arguments of *name* read without argparse (see nsprim.cli._fast), or None."""
    from . import _fast

    spec = _fast.SPECS.get(name)
    ns = _fast.parse(spec, words) if spec is not None else None
    if ns is not None:
        # __import__, not importlib.import_module: the importlib package
        # imports warnings, more bytecode than this whole module.
        module_name, _, handler_name, _ = COMMANDS[name]
        full = f"{__name__}.{module_name}"
        __import__(full)
        ns.func = getattr(sys.modules[full], handler_name)
    return ns


def __getattr__(name: str) -> Any:
    # The argparse side, loaded on first use (PEP 562).
    if name in ("Parser", "build_parser", "command_parser"):
        from . import _parser

        return getattr(_parser, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _flushed(rc: int) -> int:
    sys.stdout.flush()  # a closed pipe shows here, inside main's handler
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
