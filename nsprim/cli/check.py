"""``nsprim check``: what this kernel and environment let nsprim do.

Layer 4: imports :mod:`nsprim.compat` (only when the command runs) and
``tabulate``. The handler prints to stdout (errors to stderr) and returns the
exit status; it never calls ``sys.exit``.

``nsprim check --json`` prints one object::

    {
      "schema": "nsprim-check/1",
      "kernel": "6.18.44-...",            # uname -r
      "machine": "x86_64",
      "summary": {"ok": 60, "limited": 3, "missing": 2, "unknown": 0},
      "probes": [
        {"group": "namespaces",           # one of nsprim.compat.GROUPS
         "name": "net",                   # unique within the group
         "status": "ok",                  # "ok" | "limited" | "missing" | "unknown"
         "value": "works",                # string, integer, boolean or null
         "detail": "present in /proc/self/ns; unshare(CLONE_NEWNET) works",
         "consequence": "a private network stack: available",
         "needs_root": false},            # the full answer needs root
        ...
      ],
      "require": {                        # only with --require
        "names": ["user", "net"],
        "satisfied": false,
        "missing": [{"group": ..., "name": ..., "detail": ..., ...}]   # probe objects
      }
    }
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, TextIO

if TYPE_CHECKING:
    from .. import compat

__all__ = ["add_check_parser", "cmd_check", "render_check"]


def add_check_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand (handler :func:`cmd_check` in ``func``)."""
    p = subparsers.add_parser(
        "check",
        help="what this kernel and environment let nsprim do",
        description="Probe namespace support: types, syscalls, sysctls, kernel config, "
        "credentials, cgroups. Never needs root; changes nothing.",
    )
    p.add_argument("--json", action="store_true", help="print JSON (schema in the docs)")
    p.add_argument(
        "--require",
        metavar="NAMES",
        help="comma-separated requirements (namespace types, 'rootless', syscalls such as "
        "clone3): exit 1 if any is missing",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also show each probe's evidence")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds each throwaway probe child may take (default 10)",
    )
    p.set_defaults(func=cmd_check)


def cmd_check(ns: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    """Run ``nsprim check``: 0 normally, 1 when a ``--require`` is missing, 2 on bad usage."""
    from .. import compat  # only `check` pays for importing the probes

    stdout = out if out is not None else sys.stdout
    names: Optional[list[str]] = None
    if ns.require:
        names = [n.strip() for n in ns.require.split(",") if n.strip()]
        try:
            # Validate the names before any probe runs (STYLE.md 5.4).
            compat.require(names, probes=[])
        except ValueError as err:
            print(f"nsprim check: {err}", file=sys.stderr)
            return 2
    try:
        probes = compat.probe_all(timeout=ns.timeout)
    except ValueError as err:
        print(f"nsprim check: {err}", file=sys.stderr)
        return 2
    failed = compat.require(names, probes) if names else []
    if ns.json:
        doc: dict[str, Any] = {
            "schema": "nsprim-check/1",
            "kernel": platform.release(),
            "machine": platform.machine(),
            "summary": _summary(probes),
            "probes": [p.to_dict() for p in probes],
        }
        if names is not None:
            doc["require"] = {
                "names": names,
                "satisfied": not failed,
                "missing": [p.to_dict() for p in failed],
            }
        json.dump(doc, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write(render_check(probes, verbose=ns.verbose))
        if names is not None:
            if failed:
                stdout.write("\nrequired but not available here:\n")
                for p in failed:
                    stdout.write(f"  {p.name}: {p.status}: {p.consequence}\n")
            else:
                stdout.write(f"\nall required available: {', '.join(names)}\n")
    return 1 if failed else 0


def _summary(probes: Sequence[compat.Probe]) -> dict[str, int]:
    from .. import compat

    return {s: sum(1 for p in probes if p.status == s) for s in compat.STATUSES}


def render_check(probes: Sequence[compat.Probe], verbose: bool = False) -> str:
    """Return the grouped table of ``nsprim check`` (one table per group)."""
    from tabulate import tabulate

    from .. import compat

    parts = []
    for group in compat.GROUPS:
        rows = []
        for p in probes:
            if p.group != group:
                continue
            value = "-" if p.value is None else str(p.value)
            if len(value) > 40:
                value = value[:37] + "..."
            row = [p.name, p.status.upper(), value, p.consequence]
            if verbose:
                row.append(p.detail + (" [needs root for the full answer]" if p.needs_root else ""))
            rows.append(row)
        if not rows:
            continue
        headers = ["PROBE", "STATUS", "VALUE", "CONSEQUENCE"] + (["DETAIL"] if verbose else [])
        parts.append(f"== {group} ==\n" + tabulate(rows, headers=headers, tablefmt="plain"))
    s = _summary(probes)
    parts.append(", ".join(f"{n} {k}" for k, n in s.items()))
    return "\n\n".join(parts) + "\n"
