"""nsprim.idmap's /etc/subuid reader and helper lookup (files under tmp_path, no helper run)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from nsprim import idmap


def _me() -> tuple[int, str]:
    uid = os.geteuid()
    return uid, pwd.getpwuid(uid).pw_name


def test_subid_range_first_line_by_name_or_number(tmp_path: Path) -> None:
    uid, name = _me()
    f = tmp_path / "subuid"
    f.write_text(f"other:1:2\nbad line\n{name}:100000:65536\n{uid}:5:6\n")
    assert idmap.subid_range("uid", uid, path=str(f)) == (100000, 65536)
    f.write_text(f"{uid}:5:6\n{name}:100000:65536\n")
    assert idmap.subid_range("uid", uid, path=str(f)) == (5, 6)


def test_subid_range_refusals(tmp_path: Path) -> None:
    uid, name = _me()
    f = tmp_path / "subuid"
    f.write_text("other:1:2\n")
    with pytest.raises(LookupError, match=f'no line matching user "{name}" in {f}'):
        idmap.subid_range("uid", uid, path=str(f))
    f.write_text(f"{name}:x:2\n")
    with pytest.raises(ValueError, match="bad subordinate id range"):
        idmap.subid_range("uid", uid, path=str(f))
    with pytest.raises(ValueError, match="kind"):
        idmap.subid_range("pid")
    with pytest.raises(FileNotFoundError):
        idmap.subid_range("gid", uid, path=str(tmp_path / "missing"))


def test_find_map_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="uidmap package") as exc:
        idmap.find_map_helper("newuidmap")
    assert exc.value.filename == "newuidmap"
    helper = tmp_path / "newgidmap"
    helper.write_text("#!/bin/sh\n")
    helper.chmod(0o755)
    assert idmap.find_map_helper("newgidmap") == str(helper)
    with pytest.raises(ValueError):
        idmap.find_map_helper("sh")


def test_newuidmap_checks_before_running(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no helper: a bad map is still found first
    with pytest.raises(ValueError):
        idmap.newuidmap(1, "0 0 2\n1 5 1")  # overlapping
    with pytest.raises(ValueError):
        idmap.newuidmap(0, "0 0 1")
    with pytest.raises(FileNotFoundError):
        idmap.newgidmap(1, "0 0 1")
