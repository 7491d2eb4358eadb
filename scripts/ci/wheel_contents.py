"""Check an installed nsprim against its source tree (called by scripts/ci/wheel.sh).

    python scripts/ci/wheel_contents.py REPO DIST

Run with the venv's interpreter, from outside the checkout. It compares what the
source packages hold (every module, ``py.typed``, and any data file: man pages,
completions, schemas) with what the installed distribution lists in its RECORD;
checks that the console script and every entry point group of pyproject.toml are
installed and importable; that the licence ships in the wheel's metadata; and that
the sdist in DIST carries the tests (so a distributor can run them). Exits non-zero
naming every missing piece.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import sys
import tarfile
from pathlib import Path

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # pragma: no cover - CI runs 3.11
    tomllib = None  # type: ignore[assignment]

# Source folder -> installed package path (pyproject maps conformance/ to nsprim.conformance).
PACKAGE_DIRS = {"nsprim": "nsprim", "conformance": "nsprim/conformance"}
SKIP_PARTS = {"__pycache__"}
# Entry point groups whose modules need their host program installed to import.
OPTIONAL_HOSTS = {"pytest11": "pytest"}


def source_files(repo: Path) -> set[str]:
    """Installed-relative paths of every file the source packages should ship."""
    wanted: set[str] = set()
    for src, dest in PACKAGE_DIRS.items():
        root = repo / src
        for path in root.rglob("*"):
            rel = path.relative_to(root)
            if path.is_dir() or SKIP_PARTS & set(rel.parts) or path.suffix == ".pyc":
                continue
            # Reports committed as examples and notes for contributors are not code.
            if src == "conformance" and rel.parts[0] == "reports":
                continue
            if path.suffix == ".md" and path.name not in {"SCHEMA.md", "CHECK-SCHEMA.md"}:
                continue
            wanted.add(f"{dest}/{rel.as_posix()}")
    return wanted


def main(repo: Path, dist_dir: Path) -> int:
    problems: list[str] = []
    dist = md.distribution("nsprim")
    installed = {str(f) for f in dist.files or ()}
    for rel in sorted(source_files(repo) - installed):
        problems.append(f"not installed: {rel}")
    if "nsprim/py.typed" not in installed:
        problems.append("not installed: nsprim/py.typed (PEP 561 marker)")
    licences = [f for f in installed if "dist-info" in f and "LICENSE" in f.upper()]
    if not licences:
        problems.append("the wheel's metadata carries no LICENSE file")

    pyproject = (repo / "pyproject.toml").read_text()
    declared: dict[str, dict[str, str]] = {}
    if tomllib is not None:
        project = tomllib.loads(pyproject)["project"]
        declared = {"console_scripts": dict(project.get("scripts", {}))}
        for group, entries in project.get("entry-points", {}).items():
            declared[group] = dict(entries)
    for group, entries in declared.items():
        have = {ep.name: ep for ep in dist.entry_points if ep.group == group}
        for name, target in entries.items():
            ep = have.get(name)
            if ep is None:
                problems.append(f"entry point {group}:{name} not installed")
                continue
            if ep.value != target:
                problems.append(f"entry point {group}:{name} is {ep.value!r}, not {target!r}")
            # A plugin entry point is loaded by its host program (pytest for pytest11),
            # which this venv rightly lacks: there, check the module is installed.
            host = OPTIONAL_HOSTS.get(group)
            if host is not None and importlib.util.find_spec(host) is None:
                path = ep.module.replace(".", "/") + ".py"
                if path not in installed:
                    problems.append(f"entry point {group}:{name}: {path} not installed")
                continue
            try:
                module = importlib.import_module(ep.module)
                if ep.attr:
                    getattr(module, ep.attr)
            except Exception as err:  # any import failure is what this check reports
                problems.append(f"entry point {group}:{name} ({ep.value}) does not load: {err!r}")

    sdists = sorted(dist_dir.glob("nsprim-*.tar.gz"))
    if not sdists:
        problems.append(f"no sdist in {dist_dir}")
    else:
        with tarfile.open(sdists[0]) as tar:
            names = tar.getnames()
        for needed in ("tests/conftest.py", "LICENSE", "README.md", "pyproject.toml"):
            if not any(n.split("/", 1)[-1] == needed for n in names):
                problems.append(f"the sdist lacks {needed}")

    for problem in problems:
        print(f"wheel_contents: {problem}", file=sys.stderr)
    print(
        f"wheel_contents: {len(installed)} installed files checked, "
        f"{len(declared)} entry point group(s), {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: wheel_contents.py REPO DIST")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
