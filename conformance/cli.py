"""The ``nsprim conformance`` command line: select checks, run them, write a report.

Layer: conformance CLI, the only conformance module that prints. Imports the
standard library and the conformance modules. ``nsprim conformance ...``
(nsprim's CLI) and ``python -m nsprim.conformance`` both call :func:`main`.

Exit status (LTP's convention for "nothing could be tested"):

* 0: something was checked and nothing FAILed or ERRORed (and, with
  ``--controls``, every PASSing check's control FAILed);
* 1: a FAIL, an ERROR, or a control that did not FAIL;
* 2: bad usage;
* 32: nothing could be checked here (every check SKIPped; one line on
  stderr says why), or, with ``--strict``, some check SKIPped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pwd
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from . import report, runner
from .outcome import CheckResult
from .registry import Check, load_checks, select

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_NOTHING_CHECKED = 0, 1, 2, 32


class _UsageError(Exception):
    """Bad usage found after parsing (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would sys.exit(2) itself
        raise _UsageError(message)


def build_parser(prog: str = "nsprim conformance") -> argparse.ArgumentParser:
    """Return the argument parser (exposed for ``nsprim``'s CLI and its help text)."""
    p = _Parser(
        prog=prog,
        description="Run the namespace conformance checks, each in a throwaway sandbox.",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="run only checks of these types or whose id or catalogue id matches "
        "(a type name or an fnmatch pattern: 'uts' 'net.*' 'PID-0?')",
    )
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="skip checks of these types or matching these patterns",
    )
    p.add_argument("--list", action="store_true", help="list the selected checks and exit")
    p.add_argument(
        "--controls",
        action="store_true",
        help="also run each check's negative control; a control that does not FAIL is a problem",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 32 when any check was SKIPped (every guarantee must be verified)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every check N times; a verdict that changes is an ERROR (a defect of the suite)",
    )
    p.add_argument(
        "--timeout-mul",
        type=float,
        default=None,
        metavar="FACTOR",
        help="multiply every check's timeout by FACTOR >= 1, for slow machines and emulators"
        " (like LTP_TIMEOUT_MUL; default $NSPRIM_TIMEOUT_MUL or 1)",
    )
    p.add_argument("--format", choices=report.FORMATS, default="table", help="report format")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="sandboxes run in parallel (default: CPUs)",
    )
    p.add_argument(
        "--as-user",
        metavar="USER",
        help="as root: drop to USER and run rootless (user namespace sandbox)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="REPORT.json",
        help="render JSON reports of several runs as one matrix instead of running"
        " (nsprim.conformance.lsprobe results among them: the 'what nsprim ls finds' section)",
    )
    return p


#: A run shorter than this shows no progress line (it would only flicker).
PROGRESS_AFTER_S = 1.0


def _progress(stream: TextIO) -> runner.ProgressFn:
    """A live one-line progress display for a terminal (the caller checks isatty)."""
    started = time.monotonic()
    shown = False

    def show(done: int, total: int, result: CheckResult) -> None:
        nonlocal shown
        if not shown and time.monotonic() - started < PROGRESS_AFTER_S and done < total:
            return
        if done == total:
            if shown:
                stream.write("\r\x1b[2K")  # leave the terminal as it was
                stream.flush()
            return
        shown = True
        line = f"[{done}/{total}] {result.id} {result.status.value}"
        stream.write("\r\x1b[2K" + line[:120])
        stream.flush()

    return show


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            with open(output, "w") as f:
                f.write(text)
        except OSError as err:
            raise _UsageError(f"cannot write the report to {output}: {err.strerror}") from err


def _check_output(output: str | None) -> None:
    # Refuse an unwritable -o before a run that could take a while, not after it.
    if output is None:
        return
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise _UsageError(f"-o {output}: no such directory {parent}")
    if not os.access(parent, os.W_OK):
        raise _UsageError(f"-o {output}: directory {parent} is not writable")


def _merge(paths: Sequence[str], fmt: str, output: str | None) -> int:
    from .report import json as json_report
    from .report import matrix

    if fmt not in matrix.FORMATS:
        raise _UsageError(f"--merge renders {', '.join(matrix.FORMATS)}, not {fmt!r}")
    reports = []
    probes = []
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as err:
            raise _UsageError(f"cannot read report {path!r}: {err}") from err
        if isinstance(doc, dict) and doc.get("schema") == matrix.LS_SCHEMA:
            probes.append(doc)  # what nsprim ls found on one kernel (lsprobe)
            continue
        problems = json_report.validate(doc)
        if problems:
            raise _UsageError(f"{path!r} is not a {json_report.SCHEMA} report: {problems[0]}")
        reports.append(doc)
    _write(matrix.render_matrix(matrix.build_matrix(reports, ls_probes=probes), fmt), output)
    return EXIT_OK


def _list(checks: Sequence[Check]) -> str:
    from tabulate import tabulate

    rows = [(c.id, c.catalogue_id, c.level, c.title, ", ".join(c.anchors)) for c in checks]
    table = tabulate(
        rows, headers=["ID", "Catalogue", "Level", "Guarantee", "Anchors (where it is stated)"]
    )
    return table + "\n"


def _expand(patterns: Sequence[str], types: set[str]) -> list[str]:
    """A bare type name (``uts``) means every check of that type (``uts.*``)."""
    return [f"{p}.*" if p in types else p for p in patterns]


def _nothing_checked_line(run: runner.Run) -> str:
    groups = runner.skipped_by_cause(run.results)
    if not groups:
        return "nothing could be checked here"
    cause, _ = groups[0]
    more = f" (and {len(groups) - 1} other causes)" if len(groups) > 1 else ""
    return f"nothing could be checked here: {cause}{more}"


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (removing the run's sandboxes and files), then exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nsprim conformance`` with *argv* (default ``sys.argv[1:]``); return the exit status.

    SIGTERM and SIGHUP, like ^C, stop the run cleanly: every sandbox is killed
    and the run's temporary directory removed before exiting 128+signal.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _terminate)
    try:
        return _main(argv)
    except _Terminated as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        _check_output(args.output)
        if args.merge:
            return _merge(args.merge, args.format, args.output)
        if args.jobs < 1:
            raise _UsageError(f"--jobs must be at least 1, got {args.jobs}")
        if args.repeat < 1:
            raise _UsageError(f"--repeat must be at least 1, got {args.repeat}")
        if args.timeout_mul is not None:
            if not (math.isfinite(args.timeout_mul) and args.timeout_mul >= 1):
                raise _UsageError(f"--timeout-mul must be at least 1, got {args.timeout_mul:g}")
            os.environ[runner.TIMEOUT_MUL_ENV] = repr(args.timeout_mul)  # inherited by workers
        everything = load_checks()
        types = {c.type for c in everything}
        checks = select(everything, _expand(args.only, types), _expand(args.exclude, types))
        if not checks:
            raise _UsageError(
                f"no check matches --only {args.only or ['*']} --exclude {args.exclude}"
            )
        if args.list:
            _write(_list(checks), args.output)
            return EXIT_OK
        as_user = args.as_user
        if as_user is not None and as_user.isdigit():
            as_user = int(as_user)
        if as_user is not None:
            try:
                if isinstance(as_user, int):
                    pwd.getpwuid(as_user)
                else:
                    pwd.getpwnam(as_user)
            except (KeyError, OverflowError):
                raise _UsageError(f"--as-user: no such user: {args.as_user}") from None
        progress = _progress(sys.stderr) if sys.stderr.isatty() else None
        try:
            run = runner.run(
                checks,
                controls=args.controls,
                jobs=args.jobs,
                as_user=as_user,
                progress=progress,
                repeat=args.repeat,
            )
        except ValueError as err:  # unknown --as-user and the like
            raise _UsageError(str(err)) from err
        info = report.ReportInfo(
            environment=run.environment,
            started=run.started,
            duration_s=run.duration_s,
            controls=run.controls,
        )
        _write(report.render(args.format, run.results, info), args.output)
        if not run.ok:
            return EXIT_PROBLEM
        if run.checked_nothing:
            sys.stderr.write(f"nsprim conformance: {_nothing_checked_line(run)}\n")
            return EXIT_NOTHING_CHECKED
        if args.strict and run.summary["SKIP"]:
            sys.stderr.write(
                f"nsprim conformance: --strict: {run.summary['SKIP']} checks could not be "
                "verified here\n"
            )
            return EXIT_NOTHING_CHECKED
        return EXIT_OK
    except _UsageError as err:
        sys.stderr.write(
            f"nsprim conformance: {err}\nTry 'nsprim conformance --help' for more information.\n"
        )
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
