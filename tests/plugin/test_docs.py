"""The README's pytest and asyncio examples run, as root and as ``nobody``, so they can't rot.

Every fenced block preceded by ``<!-- file: NAME -->`` is written out as NAME
and run: test files with pytest, other files with Python.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._rootless import ROOT, RootlessEnv

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.needs_root

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
_BLOCK = re.compile(r"<!-- file: (?P<name>[\w.]+) -->\s*```python\n(?P<code>.*?)```", re.S)


def examples() -> dict[str, str]:
    """Return ``{file name: code}`` of the README's marked examples."""
    found: dict[str, str] = {}
    for m in _BLOCK.finditer((ROOT / "README.md").read_text()):
        found.setdefault(m["name"], m["code"])
    return found


EXAMPLES = examples()
TESTS = {name: code for name, code in EXAMPLES.items() if name.startswith("test_")}


def test_the_examples_are_there() -> None:
    assert {"test_http.py", "test_same_port.py", "test_fixtures.py", "hundred_netns.py"} <= set(
        EXAMPLES
    )


def test_pytest_examples_pass_as_root(pytester: pytest.Pytester) -> None:
    for name, code in TESTS.items():
        pytester.makepyfile(**{name[:-3]: code})
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=sum(code.count("\ndef test_") for code in TESTS.values()))


def test_same_port_tests_overlap_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_same_port=TESTS["test_same_port.py"])
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2")
    result.assert_outcomes(passed=2)


@pytest.fixture(scope="module")
def nobody() -> Iterator[RootlessEnv]:
    env = RootlessEnv()
    try:
        yield env
    finally:
        env.close()


def test_pytest_examples_pass_as_nobody(nobody: RootlessEnv) -> None:
    for name, code in TESTS.items():
        nobody.write(name, code)
    r = nobody.pytest("-q", *TESTS)
    n = sum(code.count("\ndef test_") for code in TESTS.values())
    assert f"{n} passed" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0


OUTPUT = "hostname: inside\nfunction saw: called\n100 commands ran in 100 network namespaces\n"


def test_asyncio_example_as_root_and_as_nobody(nobody: RootlessEnv, tmp_path: Path) -> None:
    code = EXAMPLES["hundred_netns.py"]
    path = tmp_path / "hundred_netns.py"
    path.write_text(code)
    r = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.stdout == OUTPUT, r.stderr
    nobody.write("hundred_netns.py", code)
    r = nobody.run("hundred_netns.py")
    assert r.stdout == OUTPUT, r.stderr
