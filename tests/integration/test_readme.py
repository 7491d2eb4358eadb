"""The README's Python examples run as written, and its two commands exist.

Each ```python block runs in its own interpreter (as this test's user); the
examples assert their own results.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.needs_root
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str) -> None:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_quick_start_commands_are_the_ones_ci_runs() -> None:
    # The same for root and a sudo user (a fresh root machine has no sudo), and what
    # .ci/run extracts and runs verbatim, on this machine and in pristine Debian roots.
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ci" / "readme-commands")],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/ci/readme-commands" in ci
    assert "pip install" not in ci
    for script in ("scripts/quickstart.sh", "scripts/test.sh"):
        assert (ROOT / script).exists()
