"""Run pytest as ``nobody``: /usr/bin/python3 with a copy of nsprim and pytest it can read.

The test venv lives under /root (mode 0700), so ``nobody`` can exec neither
its interpreter nor its packages. This copies what a rootless pytest run
needs (nsprim with its conformance subpackage, pytest and its dependencies)
into a world-readable temporary directory and runs the system Python on it:
the same layout a user's own virtualenv gives.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = 65534
# What `import pytest` and the plugin need, beyond the standard library.
# pytest's own requirements (pygments since pytest 8; exceptiongroup and tomli before
# Python 3.11) and xdist's, each copied when importable here: a host's system-wide
# copy must not be what makes the nobody run work.
_PACKAGES = (
    "_pytest", "pytest", "pluggy", "iniconfig", "packaging", "py", "pygments",
    "exceptiongroup", "tomli", "xdist", "execnet", "tabulate",
)  # fmt: skip


class RootlessEnv:
    """A world-readable copy of nsprim + pytest, and a nobody-owned work directory."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="nsprim-rootless-"))
        os.chmod(self.base, 0o755)
        self.lib = self.base / "lib"
        self.lib.mkdir()
        shutil.copytree(ROOT / "nsprim", self.lib / "nsprim", ignore=_no_cache)
        shutil.copytree(ROOT / "conformance", self.lib / "nsprim" / "conformance", ignore=_no_cache)
        for name in _PACKAGES:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            src = Path(mod.__file__ or "")
            if src.name == "__init__.py":
                shutil.copytree(src.parent, self.lib / name, ignore=_no_cache)
                site = src.parent.parent
            else:
                shutil.copy(src, self.lib / src.name)
                site = src.parent
            # pytest reads its own and pluggy's versions from the metadata.
            for info in site.glob(f"{name}-*.dist-info"):
                if not (self.lib / info.name).exists():
                    shutil.copytree(info, self.lib / info.name)
        for path in [self.base, *self.base.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        self.work = self.base / "work"
        self.work.mkdir()
        os.chown(self.work, NOBODY, NOBODY)

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        os.chown(path, NOBODY, NOBODY)
        return path

    def run(
        self, *args: str, timeout: float = 60.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.work),
            "PYTHONPATH": str(self.lib),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        return subprocess.run(
            [SYSTEM_PYTHON, *args],
            cwd=self.work,
            env=env,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def pytest(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.run(
            "-m", "pytest", "-p", "nsprim.pytest_plugin", "-p", "no:cacheprovider", *args,
            timeout=timeout,
        )  # fmt: skip

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def _no_cache(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]
