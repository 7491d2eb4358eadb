"""The reliability tests pass from a clone in /tmp, with its venv there too.

Their sandbox mounts a private tmpfs on /tmp; a checkout and venv under /tmp must stay
importable inside it (``_support._private_tmp`` binds them back). This clones the
repository into /tmp, makes a venv in the clone holding this venv's packages (copied: no
network) and the clone's nsprim, and runs a bounded subset of the reliability tests from
there (seconds, not the whole suite): fuzz targets (hypothesis is imported inside the
sandbox, the first thing a hidden venv breaks), the CLI run as subprocesses of the
clone's interpreter, and the rootless checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_root, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FUZZ = (
    "tests/reliability/test_fuzz.py::test_fuzz_target_refuses_bad_input_with_typed_one_line_errors"
)
SUBSET = [
    f"{FUZZ}[idmap.IdMap.parse]",
    f"{FUZZ}[cli.ls]",
    "tests/reliability/test_fuzz.py::test_cli_subprocess_bad_input_one_line_no_traceback[argv0]",
    "tests/reliability/test_rootless.py::test_userns_root_cannot_change_host_hostname_mounts_or_network",
]

SKIP = ("mypy", "ruff", "pip", "setuptools", "pkg_resources", "_distutils_hack", "distutils-")

# What `pip install -e` of the clone would give (nsprim from nsprim/, nsprim.conformance
# from conformance/), without pip, wheel or the network.
FINDER = """\
import sys
from importlib.machinery import PathFinder


class CloneFinder:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname in ("nsprim", "nsprim.conformance"):
            return PathFinder.find_spec(fullname, [{root!r}])
        return None


sys.meta_path.insert(0, CloneFinder)
"""


def _venv_in(clone: Path) -> Path:
    """A venv in *clone* with this venv's third-party packages and the clone's nsprim."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(clone / ".venv")], check=True
    )
    python = clone / ".venv" / "bin" / "python"
    dest = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    src = Path(sysconfig.get_paths()["purelib"])
    for entry in src.iterdir():
        if entry.name.startswith(("nsprim", "__editable__", "_nsprim")):
            continue  # this checkout's nsprim: the clone brings its own
        if entry.name.startswith(SKIP) or "__mypyc" in entry.name:
            continue  # the linters and installers: not needed to run tests
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, dest / entry.name)
    (dest / "_nsprim_clone_finder.py").write_text(FINDER.format(root=str(clone)))
    (dest / "_nsprim_clone_finder.pth").write_text("import _nsprim_clone_finder\n")
    return python


def test_reliability_subset_passes_from_a_clone_in_tmp() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout to clone")
    with tempfile.TemporaryDirectory(prefix="nsprim-clone-", dir="/tmp") as tmp:
        clone = Path(tmp) / "nsprim"
        subprocess.run(["git", "clone", "-q", "--shared", str(REPO), str(clone)], check=True)
        # Run this checkout's versions of the files under test (the clone has the last
        # commit; a developer's uncommitted fix must be tested too).
        for name in ("tests/reliability/_support.py", "tests/reliability/_fuzz.py"):
            shutil.copy2(REPO / name, clone / name)
        python = _venv_in(clone)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the clone's own caches go with it
        # The scenario is real: the clone's interpreter runs from /tmp, and nsprim with it.
        where = subprocess.run(
            [str(python), "-c", "import hypothesis, nsprim, sys; print(sys.prefix);"
             "print(nsprim.__file__); print(hypothesis.__file__)"],
            cwd=clone, env=env, check=True, capture_output=True, text=True,
        ).stdout.splitlines()  # fmt: skip
        assert where[0] == str(clone / ".venv")
        assert where[1] == str(clone / "nsprim" / "__init__.py")
        assert where[2].startswith(str(clone / ".venv"))
        done = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET],
            cwd=clone, env=env, capture_output=True, text=True, timeout=110,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
