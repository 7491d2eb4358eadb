"""The repository carries no merge leftovers: conflict markers or ``*.orig``/``*.rej`` files.

A conflict resolved by hand once left its markers in the README's bindings
table, and another left ``nsprim/cli/_parser.py.orig`` in the wheel; both
shipped. This walks what ships and what documents it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("nsprim", "conformance", "tests", "scripts", ".ci")
FILES = ("README.md", "CONTRIBUTING.md", "pyproject.toml", "Vagrantfile")
SKIP_DIRS = {".venv", ".cache", "__pycache__", ".git", ".mypy_cache", ".ruff_cache"}
# Built so that this file does not match itself.
MARKER = re.compile("^(" + "<" * 7 + " |" + ">" * 7 + " |" + "=" * 7 + "$)", re.M)


def _files() -> list[Path]:
    out = [ROOT / f for f in FILES if (ROOT / f).is_file()]
    for top in TOP:
        for base, dirs, names in os.walk(ROOT / top):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            out += [Path(base) / n for n in names]
    return out


def _markers(path: Path) -> list[int]:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    return [text.count("\n", 0, m.start()) + 1 for m in MARKER.finditer(text)]


def test_no_conflict_markers_or_merge_leftovers() -> None:
    files = _files()
    assert len(files) > 100, "the walk found the repository"
    leftovers = [str(p.relative_to(ROOT)) for p in files if p.suffix in (".orig", ".rej")]
    marked = {str(p.relative_to(ROOT)): lines for p in files if (lines := _markers(p))}
    assert not leftovers, leftovers
    assert not marked, f"conflict markers (file: lines): {marked}"


@pytest.mark.parametrize(
    "text", ["a\n" + "<" * 7 + " HEAD\nb\n", "=" * 7 + "\n", ">" * 7 + " main\n"]
)
def test_the_marker_pattern_finds_each_kind(tmp_path: Path, text: str) -> None:
    # The control: each of git's three markers is found.
    f = tmp_path / "x.md"
    f.write_text(text)
    assert _markers(f)
