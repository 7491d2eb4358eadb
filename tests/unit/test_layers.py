"""The layers point one way, and ``import nsprim`` needs only the stdlib.

The imports of every module are read with ``ast`` (nothing is executed), in
the spirit of trio's ``test_exports.py`` and psutil's "should not import
psutil" rule.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "nsprim"
CONF = ROOT / "conformance"

# Layer of each module; a module may import its own layer or lower ones.
LAYERS = {
    "errors": 0,
    "_version": 0,
    "_sys": 0,
    "_stdlib": 0,
    "flags": 1,
    "_lazyflags": 1,
    "_nstype": 1,
    "_fd": 1,
    "_procfs": 1,
    "lsm": 1,
    "syscalls": 1,
    "_syscalls_more": 1,
    "seccomp": 1,
    "namespace": 2,
    "net": 2,
    "idmap": 2,
    "listing": 2,
    "compat": 2,
    # the child mechanism: low enough for compat, the process API builds on it
    "_options": 2,
    "_frames": 2,
    "_ledger": 2,
    "_launcher": 2,
    "_child": 2,
    "_launch": 2,
    "_calls": 2,
    "_targets": 2,
    "process": 3,
    "_supervisor": 3,
    "_forker": 3,
    "_forkerd": 3,
    "aio": 3,
    "cli": 4,
    "pytest_plugin": 4,
    "conformance": 4,  # the suite: public API only; the CLI dispatches to it
}
FACADES = {"__init__", "__main__"}


def _layer_of(dotted: str) -> int | None:
    parts = dotted.split(".")
    if parts[0] != "nsprim" or len(parts) == 1:
        return None
    return LAYERS.get(parts[1])


def _imports(path: Path, package: str) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    out += [f"{mod}.{a.name}" for a in node.names]
                else:
                    out.append(mod)
            elif node.module:
                out.append(node.module)
    return out


def _modules() -> list[tuple[str, Path, str]]:
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        name = rel.parts[0]
        if name in FACADES and len(rel.parts) == 1:
            continue
        package = "nsprim" if len(rel.parts) == 1 else "nsprim." + ".".join(rel.parts[:-1])
        found.append((name, path, package))
    return found


@pytest.mark.parametrize(("name", "path", "package"), _modules(), ids=lambda v: str(v))
def test_module_imports_no_higher_layer(name: str, path: Path, package: str) -> None:
    own = LAYERS.get(name)
    assert own is not None, f"{path}: module has no layer in tests/unit/test_layers.py"
    for target in _imports(path, package):
        layer = _layer_of(target)
        if layer is not None:
            assert layer <= own, f"{path.name} (layer {own}) imports {target} (layer {layer})"


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.py")), ids=lambda p: str(p.relative_to(CONF)))
def test_conformance_uses_only_public_nsprim(path: Path) -> None:
    package = ".".join(["nsprim", "conformance", *path.relative_to(CONF).parts[:-1]])
    for target in _imports(path, package):
        parts = target.split(".")
        if parts[0] == "nsprim" and len(parts) > 1 and parts[1] != "conformance":
            assert not parts[1].startswith("_"), f"{path.name} imports private {target}"


def test_import_nsprim_loads_only_the_stdlib() -> None:
    code = (
        "import sys; before = set(sys.modules); import nsprim; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] not in sys.stdlib_module_names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = eval(out.stdout)
    assert mods and all(m == "nsprim" or m.startswith("nsprim.") for m in mods), mods


# --- what the layers mean, beyond their order (issue: one house) -----------------------------

ROOTS = (PKG, CONF)


def _all_files() -> list[Path]:
    return sorted(p for root in ROOTS for p in root.rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _package_of(path: Path) -> str:
    if path.is_relative_to(CONF):
        return ".".join(["nsprim", "conformance", *path.relative_to(CONF).parts[:-1]])
    return ".".join(["nsprim", *path.relative_to(PKG).parts[:-1]])


# Files of other helpers that don't follow a rule yet, each named with the
# rule it breaks. The rules never bend; this list only shrinks as they land.
ALLOW_CTYPES: set[str] = set()
ALLOW_SYS: set[str] = set()
ALLOW_FORK: set[str] = set()
ALLOW_PRIVATE_NAMES: set[str] = set()

#: Where raw ctypes libraries may be opened: the raw layer and the suite's one libc module.
CTYPES_HOME = ("nsprim/_sys/", "conformance/_libc.py")
#: Modules that may import nsprim._sys: itself and the typed bindings over it.
SYS_USERS = (
    "nsprim/_sys/",
    "nsprim/flags.py",
    "nsprim/_lazyflags.py",
    "nsprim/syscalls.py",
    "nsprim/_syscalls_more.py",
    "nsprim/seccomp.py",
    # the forker process's loop: nsprim._sys.lean only, so that it stays small
    "nsprim/_forkerd.py",
)
#: The one child mechanism: the only place that forks. The fast path's supervisor
#: (die_with_parent for posix_spawn children) belongs to it: it forks itself, once.
FORK_HOME = (
    "nsprim/_launch.py",
    "nsprim/_supervisor.py",
    "nsprim/_forker.py",
    "nsprim/_forkerd.py",
)


def _ctypes_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "ctypes" and node.attr in (
                "CDLL",
                "PyDLL",
                "util",
                "cdll",
                "pydll",
            ):
                found.append(f"ctypes.{node.attr}")
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "ctypes.util"]
        elif isinstance(node, ast.ImportFrom) and node.module in ("ctypes", "ctypes.util"):
            found += [
                f"from {node.module} import {a.name}"
                for a in node.names
                if node.module == "ctypes.util"
                or a.name in ("CDLL", "PyDLL", "cdll", "pydll", "util")
            ]
    return found


def _forks(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("fork", "forkpty"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"from os import {a.name}" for a in node.names if a.name in ("fork", "forkpty")
            ]
    return found


def _private_imports(path: Path) -> list[str]:
    """``from X import _name`` where X is a module of another package (not a submodule)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _package_of(path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        if not mod.startswith("nsprim"):
            continue
        for alias in node.names:
            name = alias.name
            if not name.startswith("_") or name.startswith("__"):
                continue
            target = mod + "." + name
            if _module_file(target) is not None:
                continue  # a private submodule, imported as a module
            if mod.rsplit(".", 1)[0] != package and mod != package:
                found.append(f"from {mod} import {name}")
    return found


def _module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")
    if parts[:2] == ["nsprim", "conformance"]:
        base, rest = CONF, parts[2:]
    elif parts[0] == "nsprim":
        base, rest = PKG, parts[1:]
    else:
        return None
    for cand in (base.joinpath(*rest).with_suffix(".py"), base.joinpath(*rest, "__init__.py")):
        if rest and cand.exists():
            return cand
    return None


def _sys_importers(path: Path) -> list[str]:
    package = _package_of(path)
    return [
        t for t in _imports(path, package) if t == "nsprim._sys" or t.startswith("nsprim._sys.")
    ]


@pytest.mark.parametrize("path", _all_files(), ids=_rel)
def test_ctypes_libraries_only_in_the_raw_layer(path: Path) -> None:
    rel = _rel(path)
    uses = _ctypes_uses(ast.parse(path.read_text(), rel))
    if rel.startswith(CTYPES_HOME) or rel in ALLOW_CTYPES:
        return
    assert not uses, f"{rel} opens libraries with {uses}: bind them in nsprim/_sys"


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=_rel)
def test_nothing_above_the_typed_bindings_imports_sys(path: Path) -> None:
    rel = _rel(path)
    if (
        rel.startswith(SYS_USERS)
        or rel in ALLOW_SYS
        or (path.name in ("__init__.py",) and path.parent == PKG)
    ):
        return
    found = _sys_importers(path)
    assert not found, f"{rel} imports {found}: use nsprim.flags / nsprim.syscalls"


@pytest.mark.parametrize("path", _all_files(), ids=_rel)
def test_only_the_child_mechanism_forks(path: Path) -> None:
    rel = _rel(path)
    if rel.startswith(FORK_HOME) or rel in ALLOW_FORK:
        return
    found = _forks(ast.parse(path.read_text(), rel))
    assert not found, f"{rel} calls {found}: use nsprim.call/call_start (or nsprim._launch)"


@pytest.mark.parametrize("path", _all_files(), ids=_rel)
def test_no_private_names_across_packages(path: Path) -> None:
    rel = _rel(path)
    if rel in ALLOW_PRIVATE_NAMES:
        return
    found = _private_imports(path)
    assert not found, f"{rel}: {found} imports another package's private names"


def test_allowlists_name_only_files_that_still_need_them() -> None:
    # An entry whose file now follows the rule (or is gone) must leave the list.
    stale = []
    for allow, check in (
        (ALLOW_CTYPES, lambda p: _ctypes_uses(ast.parse(p.read_text()))),
        (ALLOW_SYS, _sys_importers),
        (ALLOW_FORK, lambda p: _forks(ast.parse(p.read_text()))),
        (ALLOW_PRIVATE_NAMES, _private_imports),
    ):
        for rel in sorted(allow):
            path = ROOT / rel
            if not path.exists() or not check(path):
                stale.append(rel)
    assert not stale, f"allowlist entries that no longer break their rule: {stale}"


def test_rule_detectors_catch_their_violations() -> None:
    # Controls: each detector sees the forms it must refuse, and not the harmless ones.
    bad = "import ctypes, ctypes.util\nfrom ctypes import CDLL\nlibc = ctypes.CDLL(None)\n"
    assert len(_ctypes_uses(ast.parse(bad))) == 3
    assert _ctypes_uses(ast.parse("import ctypes\nx = ctypes.c_int(1)\n")) == []
    assert sorted(_forks(ast.parse("import os\nos.fork()\nfrom os import forkpty\n"))) == [
        "from os import forkpty",
        "os.fork",
    ]
    assert _forks(ast.parse("import os\nos.forked = 1\nos.posix_spawn\n")) == []
