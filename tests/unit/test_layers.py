"""The layers point one way (STYLE.md 5.1), and ``import nsprim`` needs only the stdlib.

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
    "flags": 1,
    "_fd": 1,
    "_procfs": 1,
    "syscalls": 1,
    "namespace": 2,
    "net": 2,
    "idmap": 2,
    "listing": 2,
    "compat": 2,
    "_launcher": 2,
    "process": 3,
    "_child": 3,
    "_launch": 3,
    "_supervisor": 3,
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
