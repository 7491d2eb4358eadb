"""The "what nsprim ls finds" section of the kernel matrix (conformance.report.matrix, html).

The renderer is pure: these feed it probe results shaped as nsprim.conformance.lsprobe
writes them; tests/integration/test_lsprobe.py renders real ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from nsprim.conformance.report import matrix


def _plant(name: str, found: bool, held: list[str] | None, expected: bool | None) -> dict[str, Any]:
    ok = None if expected is None else (found == expected)
    return {
        "name": name, "type": "uts", "how": f"held by {name}", "planted": True, "ino": 1,
        "id": None, "found": found, "held": held, "expected": expected, "expected_held": name,
        "ok": ok, "error": None,
    }  # fmt: skip


def _probe(kernel: str, sources: list[str], plants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": "nsprim.lsprobe/1", "kernel": kernel, "sources": sources, "seconds": 1.0,
        "ok": all(p["ok"] is not False for p in plants), "error": None, "plants": plants,
    }  # fmt: skip


OLD = _probe("6.1.0-1-amd64", ["proc"], [
    _plant("fd", True, ["fd"], True),
    _plant("hidden-mount", False, None, False),
])  # fmt: skip
NEW = _probe("7.2.0-1-amd64", ["proc", "listns"], [
    _plant("fd", True, ["fd"], True),
    _plant("hidden-mount", True, ["listns"], True),
])  # fmt: skip
BROKEN = _probe("7.2.0-1-amd64", ["proc", "listns"], [
    _plant("fd", False, None, True),
    _plant("hidden-mount", True, ["listns"], True),
])  # fmt: skip


def test_one_column_per_kernel_with_its_source() -> None:
    m = matrix.build_matrix([], ls_probes=[OLD, NEW])
    headers, body, notes = matrix.ls_table(m)
    assert headers == ["Planted namespace", "Held only by", "6.1.0-1-amd64", "7.2.0-1-amd64"]
    assert body[0][2:] == ["/proc scan", "/proc scan + listns(2)"]
    assert body[1] == ["fd (uts)", "held by fd", "found (fd)", "found (fd)"]
    assert body[2][2:] == ["not found", "found (listns)"]
    assert body[-1][2:] == ["ok", "ok"]
    assert notes == []


def test_a_namespace_that_should_be_found_and_is_not_says_fail() -> None:
    m = matrix.build_matrix([], ls_probes=[BROKEN], ls_labels=["7.2"])
    text = matrix.render_matrix(m, "table")
    assert "not found FAIL: expected found (fd)" in text
    _, body, _ = matrix.ls_table(m)
    assert body[-1][2:] == ["FAIL"]


def test_a_probe_that_could_not_run_is_an_error_not_a_pass() -> None:
    failed = dict(OLD, ok=False, error="the planting child exited 1: EPERM", sources=[])
    failed["plants"] = [dict(p, planted=False, error="EPERM", ok=False) for p in OLD["plants"]]
    m = matrix.build_matrix([], ls_probes=[failed])
    _, body, notes = matrix.ls_table(m)
    assert body[0][2] == "probe ERROR"
    assert {line[2] for line in body[1:-1]} == {"not planted: FAIL"}
    assert body[-1][2] == "FAIL"
    assert notes == ["6.1.0-1-amd64: the planting child exited 1: EPERM"]


def test_every_format_carries_the_section_and_json_round_trips() -> None:
    m = matrix.build_matrix([], ls_probes=[OLD, BROKEN])
    assert "**What nsprim ls finds**" in matrix.render_matrix(m, "markdown")
    assert "What nsprim ls finds" in matrix.render_matrix(m, "table")
    page = matrix.render_matrix(m, "html")
    assert '<h2 id="ls">What nsprim ls finds</h2>' in page
    assert 'class="o o-FAIL" data-ls="not found FAIL: expected found (fd)"' in page
    assert matrix.matrix_from_dict(matrix.matrix_to_dict(m)) == m


def test_no_probe_no_section() -> None:
    m = matrix.build_matrix([])
    for fmt in matrix.FORMATS:
        assert "nsprim ls finds" not in matrix.render_matrix(m, fmt)


def test_bad_probes_are_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        matrix.build_matrix([], ls_probes=[{"schema": "nsprim.conformance/1"}])
    with pytest.raises(ValueError, match="ls_labels"):
        matrix.build_matrix([], ls_probes=[OLD], ls_labels=["a", "b"])


def test_a_scan_that_skipped_an_answering_listns_says_fail() -> None:
    # listns(2) answered the probe, yet the scan looked in /proc only: not "by design".
    skipped = dict(NEW, sources=["proc"], listns="present", ok=False)
    _, body, _ = matrix.ls_table(matrix.build_matrix([], ls_probes=[skipped]))
    assert body[0][2] == "/proc scan FAIL: listns(2) answers here"
    refused = dict(OLD, listns="refused: Operation not permitted")
    _, body, _ = matrix.ls_table(matrix.build_matrix([], ls_probes=[refused]))
    assert body[0][2] == "/proc scan (listns(2) refused: Operation not permitted)"
