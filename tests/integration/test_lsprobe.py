"""nsprim.conformance.lsprobe: real namespaces planted held each way, found (or not) by a real scan.

On kernels before 6.19 (this machine's 6.18) listns(2) is ENOSYS: the probe must
say the scan was the /proc scan alone, find the four namespaces /proc reaches,
and show the one only listns(2) reaches as not found. The negative controls turn
a source of the scan off: the namespaces only that source finds must then show as
not found, and the probe as failed, in its JSON and in the rendered matrix.
"""

from __future__ import annotations

import glob
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from nsprim.conformance import cli, lsprobe
from nsprim.conformance.report import matrix

from nsprim import syscalls as sc
from nsprim.errors import UnsupportedError
from nsprim.flags import CloneFlags

pytestmark = pytest.mark.needs_root

RELEASE = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
LISTNS = RELEASE >= (6, 19)


def _plants(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    plants = result["plants"]
    assert isinstance(plants, list)
    return {str(p["name"]): p for p in plants}


def test_the_probe_finds_what_this_kernel_can_find() -> None:
    result = lsprobe.probe()
    assert result["error"] is None
    assert result["kernel"] == os.uname().release
    assert result["sources"] == (["proc", "listns"] if LISTNS else ["proc"])
    assert result["listns"] == ("present" if LISTNS else "absent")
    plants = _plants(result)
    assert list(plants) == [p.name for p in lsprobe.PLANTS]
    assert all(p["planted"] and p["error"] is None for p in plants.values())
    assert len({p["ino"] for p in plants.values()}) == len(plants)  # six distinct namespaces
    for name, held in (
        ("process", ["process"]),
        ("fd", ["fd"]),
        ("bind-mount", ["bind-mount"]),
        ("owner", ["ancestor"]),
    ):
        assert (plants[name]["found"], plants[name]["held"], plants[name]["ok"]) == (
            True,
            held,
            True,
        ), name
    hidden = plants["hidden-mount"]
    if LISTNS:
        assert (hidden["found"], hidden["held"], hidden["ok"]) == (True, ["listns"], True)
    else:  # nothing under /proc names it: not found, and that is what was expected
        assert (hidden["found"], hidden["expected"], hidden["ok"]) == (False, False, True)
    assert plants["socket"]["expected"] is None and plants["socket"]["ok"] is None
    assert result["ok"] is True


def test_a_planted_namespace_the_scan_misses_shows_as_not_found() -> None:
    # Negative control: the same plants, the scan told not to read fds and mount tables.
    result = lsprobe.probe({"fds": False, "mounts": False})
    plants = _plants(result)
    assert plants["process"]["found"] is True and plants["process"]["ok"] is True
    # the owner user namespace is reached only through the uts namespace an fd holds
    for name in ("fd", "bind-mount", "owner"):
        assert (plants[name]["found"], plants[name]["ok"]) == (False, False), name
    assert result["ok"] is False
    text = matrix.render_matrix(
        matrix.build_matrix([], ls_probes=[result], ls_labels=["control"]), "markdown"
    )
    assert "| fd (uts) | only an open fd refers to it | not found FAIL: expected found (fd) |" in (
        text
    )
    assert "| probe | every judged plant as expected | FAIL |" in text
    page = matrix.render_matrix(matrix.build_matrix([], ls_probes=[result]), "html")
    assert 'class="o o-FAIL" data-ls="not found FAIL: expected found (bind-mount)"' in page


def test_the_socket_row_reports_what_the_scan_did() -> None:
    # Not a constant "not found": with sockets=True (nsprim ls --sockets) the scan
    # finds the network namespace only a socket holds.
    result = lsprobe.probe({"sockets": True})
    sock = _plants(result)["socket"]
    assert (sock["found"], sock["held"], sock["ok"]) == (True, ["socket"], None)
    assert result["ok"] is True


def test_nothing_planted_outlives_the_probe() -> None:
    before = set(glob.glob("/tmp/nsprim-lsprobe-*"))
    result = lsprobe.probe()
    assert set(glob.glob("/tmp/nsprim-lsprobe-*")) == before
    # The leak guard checks this process's children, fds and mounts; the namespaces
    # themselves are checked by id, which the kernel never reuses (NS_GET_ID, 6.18).
    flags = {"uts": CloneFlags.NEWUTS, "user": CloneFlags.NEWUSER, "net": CloneFlags.NEWNET}
    plants = _plants(result)
    if any(p["id"] is None for p in plants.values()):
        pytest.skip("no NS_GET_ID before Linux 6.18: namespaces can't be named by id")
    # User and network namespaces are freed by a workqueue after their last reference.
    deadline = time.monotonic() + 10
    alive = set(plants)
    while alive:
        for name in sorted(alive):
            p = plants[name]
            try:
                fd = sc.open_ns_by_id(int(p["id"]), int(flags[str(p["type"])]), int(p["ino"]))
            except UnsupportedError:
                pytest.skip("no nsfs file handles before Linux 6.18")
            except OSError:
                alive.discard(name)  # gone, as it must be
                continue
            os.close(fd)
        if alive and time.monotonic() > deadline:
            pytest.fail(f"still alive 10 s after the probe: {sorted(alive)}")
        time.sleep(0.05)


def test_bad_scan_options_are_refused_before_anything_is_planted() -> None:
    with pytest.raises(TypeError):
        lsprobe.probe({"fds": "no"})
    with pytest.raises(TypeError):
        lsprobe.probe({1: True})


def test_a_probe_that_cannot_run_fails_with_every_plant_not_planted() -> None:
    for python, why in (("/bin/false", "exited 1"), ("/nonexistent/python", "could not start")):
        result = lsprobe.probe(python=python)
        assert result["ok"] is False and why in str(result["error"])
        assert result["sources"] == []
        assert {(p["planted"], p["found"], p["ok"]) for p in _plants(result).values()} == {
            (False, False, False)
        }


def test_merge_renders_probe_results_next_to_reports(tmp_path: Path) -> None:
    probe_path, out = tmp_path / "host-ls.json", tmp_path / "matrix.md"
    probe_path.write_text(json.dumps(lsprobe.probe({"mounts": False})))
    assert cli.main(["--merge", str(probe_path), "--format", "markdown", "-o", str(out)]) == 0
    text = out.read_text()
    assert "**What nsprim ls finds**" in text
    assert "| fd (uts) | only an open fd refers to it | found (fd) |" in text
    assert "not found FAIL: expected found (bind-mount)" in text


def test_a_probe_out_of_time_is_an_error_and_leaves_no_directory() -> None:
    before = set(glob.glob("/tmp/nsprim-lsprobe-*"))
    result = lsprobe.probe(timeout=0.01)  # the child is killed (SIGKILL) long before it plants
    assert result["ok"] is False and "took more than" in str(result["error"])
    assert set(glob.glob("/tmp/nsprim-lsprobe-*")) == before
