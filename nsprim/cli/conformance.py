"""``nsprim conformance``: the isolation conformance suite.

The suite owns its parser (``nsprim.conformance.cli``, also reached as
``python -m nsprim.conformance``); this module only wires the name into
``nsprim --help`` and hands the arguments over.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

__all__ = ["add_conformance_parser", "cmd_conformance"]


def add_conformance_parser(subparsers: Any) -> None:
    """Add ``conformance`` to the top-level help (its own parser does the parsing)."""
    subparsers.add_parser(
        "conformance",
        help="run the isolation conformance suite (see 'nsprim conformance --help')",
        add_help=False,
    )


def cmd_conformance(args: Sequence[str]) -> int:
    """Run ``nsprim conformance ARGS``; return the suite's exit status."""
    # Imported by name: the suite lives in the top-level conformance/ folder,
    # mapped to nsprim.conformance at install time.
    conformance_cli = importlib.import_module("nsprim.conformance.cli")
    return int(conformance_cli.main(list(args)))
