"""The top-level `nsprim` command: dispatch, help, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import nsprim
from nsprim.cli import build_parser, main


def _nsprim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nsprim", *args], capture_output=True, text=True, timeout=60
    )


def test_every_subcommand_is_wired() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"run", "enter", "check", "ls", "conformance"}  # type: ignore[attr-defined]


def test_version_and_help() -> None:
    out = _nsprim("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"nsprim {nsprim.__version__}"
    for sub in ("run", "enter", "ls", "check"):  # -V, as every util-linux tool
        out = _nsprim(sub, "-V")
        assert out.returncode == 0 and out.stdout.strip() == f"nsprim {nsprim.__version__}"
    out = _nsprim("--help")
    assert out.returncode == 0 and "conformance" in out.stdout


def test_unknown_subcommand_is_usage_error() -> None:
    out = _nsprim("frobnicate")
    assert out.returncode == 1
    assert out.stderr == (
        "nsprim: unknown command 'frobnicate'\nTry 'nsprim --help' for more information.\n"
    )


def test_conformance_is_dispatched_to_the_suite() -> None:
    assert main(["conformance", "--list", "--only", "uts.hostname_isolated"]) == 0
    out = _nsprim("conformance", "--only", "uts.*", "--format", "tap")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("TAP version 13")


def test_refused_syscall_prints_one_line_and_exits_1() -> None:
    out = _nsprim("enter", "-t", "999999999", "-u", "--", "true")
    assert out.returncode == 1, out
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_lazy_facade_exposes_the_daily_api() -> None:
    assert callable(nsprim.spawn) and callable(nsprim.call_in)
    assert "spawn" in dir(nsprim) and "net" in nsprim.__all__
    assert all(hasattr(nsprim, name) for name in nsprim.__all__)
