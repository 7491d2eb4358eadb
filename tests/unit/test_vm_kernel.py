"""Your own kernel in the matrix: how scripts/vm finds its release, its config, and what it lacks.

These are the pure parts (no VM): reading a bzImage's release from its setup header,
finding the config in a package, a module tree or the image's IKCONFIG, and turning
missing options into sentences. Booting a kernel given by path is exercised by the
VM stage of CI (``scripts/vm/ci.sh``), which boots a kernel .deb through ``--kernel``.
"""

from __future__ import annotations

import gzip
import io
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "vm"))

import vmlib

FULL = (
    "\n".join(f"{opt}=y" for opt in [*vmlib.NAMESPACE_OPTIONS, *vmlib.BOOT_OPTIONS])
    + '\n# CONFIG_FOO is not set\nCONFIG_LOCALVERSION="-x"\n'
)


def _bzimage(path: Path, release_line: bytes) -> Path:
    """A minimal file with an x86 boot-protocol setup header pointing at a version string."""
    data = bytearray(0x1000)
    data[0x202:0x206] = b"HdrS"
    version_at = 0x600
    data[0x20E:0x210] = (version_at - 0x200).to_bytes(2, "little")
    data[version_at : version_at + len(release_line)] = release_line
    path.write_bytes(bytes(data))
    return path


def test_parse_kconfig_keeps_set_options_only() -> None:
    options = vmlib.parse_kconfig(FULL)
    assert options["CONFIG_TIME_NS"] == "y"
    assert options["CONFIG_LOCALVERSION"] == "-x"
    assert "CONFIG_FOO" not in options


def test_missing_options_are_named_with_what_needs_them() -> None:
    options = vmlib.parse_kconfig(FULL.replace("CONFIG_TIME_NS=y", "# CONFIG_TIME_NS is not set"))
    options["CONFIG_VETH"] = "m"  # a module counts: the guest loads modules
    missing = vmlib.missing_options(options, vmlib.NAMESPACE_OPTIONS)
    assert missing == [("CONFIG_TIME_NS", "the time checks")]
    assert vmlib.missing_options(vmlib.parse_kconfig(FULL), vmlib.BOOT_OPTIONS) == []


def test_ikconfig_is_read_from_a_blob() -> None:
    blob = b"\x7fELF junk" + b"IKCFG_ST" + gzip.compress(FULL.encode()) + b"IKCFG_ED more"
    assert vmlib.ikconfig(blob) == FULL
    assert vmlib.ikconfig(b"no config here") is None


def test_bzimage_release_reads_the_setup_header(tmp_path: Path) -> None:
    image = _bzimage(tmp_path / "bzImage", b"6.19.0-rc1-mine (me@host) #1 SMP\0")
    assert vmlib.bzimage_release(image) == "6.19.0-rc1-mine"
    plain = tmp_path / "vmlinux"
    plain.write_bytes(b"\x7fELF" + bytes(4096))
    assert vmlib.bzimage_release(plain) is None


@pytest.mark.skipif(shutil.which("depmod") is None, reason="needs depmod (kmod)")
def test_local_tree_pairs_an_image_with_its_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vmlib, "CACHE", tmp_path)
    image = _bzimage(tmp_path / "bzImage", b"6.19.0-mine #1\0")
    mods = tmp_path / "mods" / "lib" / "modules" / "6.19.0-mine"
    (mods / "kernel").mkdir(parents=True)
    (mods / "modules.order").write_text("")
    (mods / "config").write_text(FULL)
    # The parent lib/modules is accepted too, and the release must match the image's.
    with vmlib.local_kernel_tree(image, mods.parent) as (tree, release, vmlinuz):
        assert release == "6.19.0-mine"
        assert vmlinuz.read_bytes() == image.read_bytes()
        assert vmlib.find_kconfig(tree, release) == FULL
    other = tmp_path / "mods2" / "6.1.0"
    (other / "kernel").mkdir(parents=True)
    mismatch = r"is release 6\.19\.0-mine but .* holds modules for 6\.1\.0"
    with pytest.raises(RuntimeError, match=mismatch), vmlib.local_kernel_tree(image, other):
        pass
    with (
        pytest.raises(RuntimeError, match="needs --modules DIR"),
        vmlib.local_kernel_tree(image, None),
    ):
        pass


def test_local_kernel_spec_is_keyed_by_content(tmp_path: Path) -> None:
    a = _bzimage(tmp_path / "a", b"6.19.0 #1\0")
    b = _bzimage(tmp_path / "b", b"6.19.0 #2\0")
    assert vmlib.local_kernel_spec(a).startswith("local:a@")
    assert vmlib.local_kernel_spec(a).split("@")[1] != vmlib.local_kernel_spec(b).split("@")[1]


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_line_on_a_terminal_only() -> None:
    """The matrix's live line (which kernel is booting, running, done) is for terminals."""
    term = vmlib.Progress(_Stream(tty=True))
    term.set("6.1", "booting")
    term.set("6.12", "running")
    term.set("6.1", "done")
    out = term.stream.getvalue()  # type: ignore[attr-defined]
    assert out.endswith("\r\x1b[2K6.1: done | 6.12: running")
    term.clear()
    assert term.stream.getvalue().endswith("\x1b[2K")  # type: ignore[attr-defined]
    log = vmlib.Progress(_Stream(tty=False))
    log.set("6.1", "booting")
    log.clear()
    assert log.stream.getvalue() == ""  # type: ignore[attr-defined]
