"""Man pages and bash completion are generated from the parsers, shipped, and render."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nsprim.cli import manpages

CLI = Path(manpages.__file__).parent
MAN = shutil.which("man")
GROFF = shutil.which("groff")
BASH = shutil.which("bash")
PAGES = ["nsprim", "run", "enter", "ls", "check", "conformance"]


def _file(name: str) -> str:
    return "nsprim.1" if name == "nsprim" else f"nsprim-{name}.1"


def test_shipped_pages_and_completion_are_the_generators_output() -> None:
    # A parser changed (an option added, a help reworded): the shipped pages follow it.
    hint = "stale: run python -m nsprim.cli.manpages nsprim/cli/man nsprim/cli/completion"
    shipped = {p.name: p.read_text() for p in (CLI / "man").glob("*.1")}
    assert shipped == manpages.pages(), hint
    assert (CLI / "completion" / "nsprim").read_text() == manpages.completion(), hint


def test_generator_writes_every_page(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nsprim.cli.manpages", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path)) == sorted([*map(_file, PAGES), "nsprim"])
    bad = subprocess.run(
        [sys.executable, "-m", "nsprim.cli.manpages"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and bad.stderr.startswith("usage:")


@pytest.mark.parametrize("name", PAGES)
def test_page_names_every_option_of_its_parser(name: str) -> None:
    parser = manpages.parsers()[name]
    text = manpages.pages()[_file(name)]
    for action in parser._actions:
        if action.help is argparse.SUPPRESS:
            continue
        for opt in action.option_strings:
            assert f"\\fB{opt.replace('-', chr(92) + '-')}\\fR" in text, (name, opt)
    assert ".SH EXIT STATUS" in text and ".SH SEE ALSO" in text


@pytest.mark.skipif(GROFF is None, reason="groff not installed")
@pytest.mark.parametrize("name", PAGES)
def test_page_is_clean_troff(name: str, tmp_path: Path) -> None:
    page = tmp_path / _file(name)
    page.write_text(manpages.pages()[_file(name)])
    r = subprocess.run(
        [GROFF or "", "-man", "-Tutf8", "-ww", "-z", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.skipif(MAN is None, reason="man-db not installed")
@pytest.mark.parametrize("name", PAGES)
def test_page_renders_with_man(name: str) -> None:
    r = subprocess.run(
        [MAN or "", "-l", str(CLI / "man" / _file(name))],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80", "LC_ALL": "C.UTF-8"},
    )
    assert r.returncode == 0, r.stderr
    title = "NSPRIM" if name == "nsprim" else f"NSPRIM-{name.upper()}"
    first = r.stdout.lstrip().splitlines()[0]
    assert first.startswith(f"{title}(1)"), first
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"):
        assert f"\n{heading}\n" in r.stdout
    if name == "run":
        assert "--kill-child[=SIGNAL]" in r.stdout  # the value only after '='
        assert "SIGNALS" in r.stdout


def _complete(*words: str) -> list[str]:
    """What bash completes for the last word of ``nsprim WORDS``."""
    line = ["nsprim", *words]
    script = (
        f"source {CLI / 'completion' / 'nsprim'}\n"
        f"COMP_WORDS=({' '.join(repr(w) if w else repr('') for w in line)})\n"
        f"COMP_CWORD={len(line) - 1}\n"
        "_nsprim\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = subprocess.run(
        [BASH or "", "--norc", "-c", script], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


@pytest.mark.skipif(BASH is None, reason="bash not installed")
def test_bash_completion() -> None:
    assert _complete("r") == ["run"]
    assert _complete("") == ["run", "enter", "check", "ls", "conformance", "--help", "--version"]
    assert _complete("run", "--prop") == ["--propagation"]
    assert _complete("run", "--propagation", "") == ["slave", "shared", "private", "unchanged"]
    assert _complete("run", "--kill") == ["--kill-child="]
    assert _complete("ls", "-t", "") == list(manpages.NS_TYPES)
    assert _complete("conformance", "--format", "js") == ["json"]
    assert str(os.getpid()) in _complete("enter", "-t", "")
    assert "--preserve-credentials" in _complete("enter", "--p")
    assert _complete("run", "-u", "--", "nsprim-no-such-cmd-") == []
    assert "sh" in _complete("run", "-u", "--", "sh")
