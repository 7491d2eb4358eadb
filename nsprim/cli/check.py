"""``nsprim check``: what this kernel and environment let nsprim do.

Layer 4: imports :mod:`nsprim.compat` (only when the command runs) and
``tabulate``. The handler prints to stdout (errors to stderr) and returns the
exit status; it never calls ``sys.exit``.

Output: one table per probe group, each refused or limited probe followed by
how to fix it where a fix exists, then the three answers (rootful containers,
rootless containers, the conformance suite) with their reasons. ``--require``
prints only the required probes and the verdict on them; ``--quiet`` prints the
verdict alone. ``--json`` prints the ``nsprim-check/2`` document described in
``conformance/report/CHECK-SCHEMA.md``.

Exit status: 0; 1 when a ``--require`` is not met; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, TextIO

from . import colour

if TYPE_CHECKING:
    from .. import compat

__all__ = ["add_check_parser", "cmd_check", "render_check", "render_verdict", "validate", "SCHEMA"]

#: The ``schema`` field of ``nsprim check --json``.
SCHEMA = "nsprim-check/2"

_STATUS_WORDS = {
    "ok": "ok",
    "limited": "limited",
    "missing": "missing",
    "unknown": "unknown",
    "absent": "not in this kernel",
}


def add_check_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand (handler :func:`cmd_check` in ``func``)."""
    p = subparsers.add_parser(
        "check",
        help="what this kernel and environment let nsprim do",
        description="Probe namespace support by doing: each namespace type created and used, "
        "id maps, mounts, setns, clone3, cgroups, each tried in a throwaway child; every "
        "refusal named with its source (seccomp, LSM, sysctl, limit, capability, kernel, "
        "cgroup delegation) and its fix. Ends with three answers: can rootful containers, "
        "rootless containers and the conformance suite run here. Never needs root; changes "
        "nothing.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON (schema nsprim-check/2, conformance/report/CHECK-SCHEMA.md)",
    )
    p.add_argument(
        "--require",
        metavar="NAMES",
        help="comma-separated requirements: namespace types, 'rootless', 'rootful', "
        "'conformance' (the answers), syscalls such as clone3, operations such as "
        "sethostname or mount.proc; print only those, exit 1 if any is not met",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print the verdict alone (the three answers, or the --require verdict)",
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
    groups: Optional[list[str]] = None
    if ns.require:
        names = [n.strip() for n in ns.require.split(",") if n.strip()]
        try:
            # Validate the names before any probe runs.
            compat.require(names, probes=[])
        except ValueError as err:
            print(f"nsprim check: --require: {err}", file=sys.stderr)
            return 2
        if not ns.json:
            # Only what is required is shown: only those groups are probed.
            groups = sorted({g for g, _ in _keys(names)})
    try:
        probes = compat.probe_all(groups=groups, timeout=ns.timeout)
    except (ValueError, TypeError) as err:
        print(f"nsprim check: --timeout: {err}", file=sys.stderr)
        return 2
    failed = compat.require(names, probes) if names else []
    if ns.json:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "kernel": platform.release(),
            "machine": platform.machine(),
            "summary": _summary(probes),
            "probes": [p.to_dict() for p in probes],
            "verdict": {
                p.name: {"answer": p.value, "reasons": _reasons(p), "fix": p.fix}
                for p in probes
                if p.group == "verdict"
            },
        }
        if names is not None:
            doc["require"] = {
                "names": names,
                "satisfied": not failed,
                "missing": [p.to_dict() for p in failed],
            }
        json.dump(doc, stdout, indent=2)
        stdout.write("\n")
        return 1 if failed else 0
    if names is not None:
        keys = _keys(names)
        if not ns.quiet:
            chosen = [p for p in probes if (p.group, p.name) in keys]
            paint = colour(stdout)
            stdout.write(render_check(chosen, verbose=ns.verbose, summary=False, paint=paint))
            stdout.write("\n")
        if failed:
            stdout.write("required but not available here:\n")
            for p in failed:
                if p.status == "absent":  # the consequence says "not in this kernel"
                    stdout.write(f"  {p.name}: {p.consequence}\n")
                else:
                    stdout.write(f"  {p.name}: {p.status}: {p.consequence}\n")
                if p.fix:
                    stdout.write(f"    fix: {p.fix}\n")
        else:
            stdout.write(f"all required available: {', '.join(names)}\n")
        return 1 if failed else 0
    if ns.quiet:
        stdout.write(render_verdict(probes))
    else:
        stdout.write(render_check(probes, verbose=ns.verbose, paint=colour(stdout)))
    return 0


def _reasons(p: compat.Probe) -> str:
    """The reasons of a verdict line, without its question and its yes/no."""
    text = p.consequence.split("? ", 1)[-1]
    for lead in ("yes", "no: ", "no", "unknown: ", "unknown"):
        if text.startswith(lead):
            return text[len(lead) :].strip(" ()")
    return text


def validate(doc: object) -> list[str]:
    """Return the problems of an ``nsprim-check/2`` document (empty when valid).

    The executable form of ``conformance/report/CHECK-SCHEMA.md``.
    """
    from .. import compat

    if not isinstance(doc, dict):
        return ["the document is not a JSON object"]
    problems = []
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key, typ in (("kernel", str), ("machine", str), ("summary", dict), ("probes", list)):
        if not isinstance(doc.get(key), typ):
            problems.append(f"{key} is missing or not a {typ.__name__}")
    raw_probes = doc.get("probes")
    probes: list[Any] = raw_probes if isinstance(raw_probes, list) else []
    keys = (
        "group",
        "name",
        "status",
        "value",
        "detail",
        "consequence",
        "needs_root",
        "source",
        "fix",
    )
    seen = set()
    for i, p in enumerate(probes):
        if not isinstance(p, dict) or tuple(p) != keys:
            problems.append(f"probes[{i}] does not have exactly the keys {', '.join(keys)}")
            continue
        if p["group"] not in compat.GROUPS:
            problems.append(f"probes[{i}].group {p['group']!r} is not one of GROUPS")
        if p["status"] not in compat.STATUSES:
            problems.append(f"probes[{i}].status {p['status']!r} is not one of STATUSES")
        if p["source"] is not None and p["source"] not in compat.SOURCES:
            problems.append(f"probes[{i}].source {p['source']!r} is not one of SOURCES")
        if p["value"] is not None and not isinstance(p["value"], (str, int, bool)):
            problems.append(f"probes[{i}].value is not a string, integer, boolean or null")
        for text in ("name", "detail", "consequence", "fix"):
            if not isinstance(p[text], str):
                problems.append(f"probes[{i}].{text} is not a string")
        if (p["group"], p["name"]) in seen:
            problems.append(f"probes[{i}] repeats {p['group']}/{p['name']}")
        seen.add((p["group"], p["name"]))
    raw_summary = doc.get("summary")
    summary: dict[str, Any] = raw_summary if isinstance(raw_summary, dict) else {}
    if set(summary) != set(compat.STATUSES):
        problems.append("summary does not count exactly the STATUSES")
    elif sum(summary.values()) != len(probes):
        problems.append("summary does not add up to the number of probes")
    verdict = doc.get("verdict")
    if verdict is not None:
        if not isinstance(verdict, dict):
            problems.append("verdict is not an object")
        else:
            for name, v in verdict.items():
                ok = isinstance(v, dict) and set(v) == {"answer", "reasons", "fix"}
                if not ok or v["answer"] not in ("yes", "no", "unknown"):
                    problems.append(
                        f"verdict.{name} is not {{answer: yes|no|unknown, reasons, fix}}"
                    )
    req = doc.get("require")
    if req is not None and not (
        isinstance(req, dict)
        and set(req) == {"names", "satisfied", "missing"}
        and isinstance(req["satisfied"], bool)
    ):
        problems.append("require is not {names, satisfied, missing}")
    return problems


def _keys(names: Sequence[str]) -> list[tuple[str, str]]:
    from ..compat.require import requirement_keys

    return requirement_keys(list(names))


def _summary(probes: Sequence[compat.Probe]) -> dict[str, int]:
    from .. import compat

    return {s: sum(1 for p in probes if p.status == s) for s in compat.STATUSES}


def render_verdict(probes: Sequence[compat.Probe]) -> str:
    """Return the three answers, one line each, with a fix line where one exists."""
    lines = []
    for p in probes:
        if p.group != "verdict":
            continue
        lines.append(p.consequence)
        if p.fix:
            lines.append(f"  fix: {p.fix}")
    return "\n".join(lines) + ("\n" if lines else "")


_PAINT = {
    "ok": "\033[32m",
    "limited": "\033[33m",
    "missing": "\033[31m",
    "absent": "\033[36m",
}
_RESET = "\033[0m"


def _status(p: compat.Probe, paint: bool) -> str:
    text = "NOT IN KERNEL" if p.status == "absent" else p.status.upper()
    code = _PAINT.get(p.status) if paint else None
    return f"{code}{text}{_RESET}" if code else text


def render_check(
    probes: Sequence[compat.Probe],
    verbose: bool = False,
    summary: bool = True,
    paint: bool = False,
) -> str:
    """Return the grouped table of ``nsprim check`` (one table per group).

    Under each group's table, every probe that is not ok says how to fix it
    where a fix exists; the three answers come last. With *paint* (a
    terminal, see :func:`nsprim.cli.colour`) the STATUS column is coloured.
    """
    from tabulate import tabulate

    from .. import compat

    parts = []
    for group in compat.GROUPS:
        if group == "verdict":
            continue
        rows = []
        fixes: dict[str, list[str]] = {}  # one line per fix, naming every probe it fixes
        for p in probes:
            if p.group != group:
                continue
            value = "-" if p.value is None else str(p.value)
            if len(value) > 40:
                value = value[:37] + "..."
            row = [p.name, _status(p, paint), value, p.consequence]
            if verbose:
                row.append(p.detail + (" [needs root for the full answer]" if p.needs_root else ""))
            rows.append(row)
            if p.status != "ok" and p.fix:
                fixes.setdefault(p.fix, []).append(p.name)
        if not rows:
            continue
        headers = ["PROBE", "STATUS", "VALUE", "CONSEQUENCE"] + (["DETAIL"] if verbose else [])
        table = tabulate(rows, headers=headers, tablefmt="plain")
        lines = [f"  fix {', '.join(names)}: {fix}" for fix, names in fixes.items()]
        parts.append(f"== {group} ==\n" + table + ("\n" + "\n".join(lines) if lines else ""))
    verdict = render_verdict(probes)
    if verdict:
        parts.append("== verdict ==\n" + verdict.rstrip("\n"))
    if summary:
        s = _summary(probes)
        parts.append(", ".join(f"{n} {_STATUS_WORDS[k]}" for k, n in s.items()))
    return "\n\n".join(parts) + "\n"
