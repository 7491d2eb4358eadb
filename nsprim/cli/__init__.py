"""The ``nsprim`` command: one module per subcommand, as util-linux keeps one tool per file.

Layer 4, the top: the only layer that prints or exits. Subcommands:

* ``run``         start a command in new namespaces (util-linux ``unshare(1)`` flags);
* ``enter``       run a command in the namespaces of a process (``nsenter(1)`` flags);
* ``check``       what this kernel and environment support;
* ``ls``          the namespaces that exist right now (``lsns(8)`` and more);
* ``conformance`` the isolation conformance suite (``python -m nsprim.conformance``).

Each lives in the module of its name (:mod:`nsprim.cli.run` ...).

Errors print one line (``nsprim: <message>``) and exit 1; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Callable, Optional

from .._version import __version__
from ..errors import NsprimError

__all__ = ["main", "build_parser"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand."""
    from . import check, conformance, enter, ls, run

    parser = argparse.ArgumentParser(
        prog="nsprim",
        description="Linux namespaces: run, enter, inspect, and prove their isolation.",
    )
    parser.add_argument("--version", action="version", version=f"nsprim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    table: list[tuple[str, Callable[..., object], Handler]] = [
        ("run", run.add_run_parser, run.cmd_run),
        ("enter", enter.add_enter_parser, enter.cmd_enter),
        ("check", check.add_check_parser, check.cmd_check),
        ("ls", ls.add_ls_parser, ls.cmd_ls),
    ]
    for name, add, handler in table:
        add(sub)
        sub.choices[name].set_defaults(func=handler)
    conformance.add_conformance_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``nsprim`` command line and return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "conformance":
        from .conformance import cmd_conformance

        return cmd_conformance(args[1:])
    parser = build_parser()
    ns = parser.parse_args(args)
    handler: Handler = ns.func
    try:
        return handler(ns)
    except KeyboardInterrupt:
        return 130
    except (NsprimError, OSError, ValueError, TypeError) as err:
        print(f"nsprim: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
