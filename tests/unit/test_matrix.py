"""Unit tests for nsprim.conformance.report.matrix on synthetic reports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nsprim.conformance.report.matrix import (
    Matrix,
    build_matrix,
    differing_rows,
    matrix_from_dict,
    matrix_to_dict,
    render_matrix,
)


def _result(check_id: str, status: str, message: str = "", **extra: Any) -> dict[str, Any]:
    ns_type = check_id.split(".")[0]
    result: dict[str, Any] = {
        "id": check_id,
        "catalogue_id": f"{ns_type.upper()}-01",
        "type": ns_type,
        "title": f"title of {check_id}",
        "level": "MUST",
        "status": status,
        "control": "FAIL" if status == "PASS" else None,
        "message": message,
        "expected": None,
        "actual": None,
        "duration_s": 0.01,
        "anchors": [],
    }
    result.update(extra)
    return result


def _report(kernel: str, privileges: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {s: sum(r["status"] == s for r in results) for s in ("PASS", "FAIL", "SKIP", "ERROR")}
    return {
        "schema": "nsprim.conformance/1",
        "nsprim_version": "0.1.0",
        "environment": {
            "kernel": kernel,
            "arch": "x86_64",
            "distribution": "Debian GNU/Linux 12 (bookworm)",
            "uid": 0 if privileges == "root" else 65534,
            "privileges": privileges,
            "python": "3.11.2",
            "hostname_hidden": True,
        },
        "started": "2025-01-01T00:00:00+00:00",
        "duration_s": 1.0,
        "summary": summary,
        "results": results,
    }


NO_TIMENS = "time namespaces need Linux 5.6"


@pytest.fixture
def reports() -> list[dict[str, Any]]:
    return [
        _report(
            "5.4.0-1-amd64",
            "root",
            [
                _result("uts.hostname_isolated", "PASS"),
                _result("time.offsets_isolated", "SKIP", NO_TIMENS),
                _result(
                    "net.same_port_bound_twice",
                    "FAIL",
                    "second bind failed",
                    expected="bind ok",
                    actual="EADDRINUSE",
                ),
            ],
        ),
        _report(
            "6.1.0-56-amd64",
            "root",
            [
                _result("uts.hostname_isolated", "PASS"),
                _result("time.offsets_isolated", "PASS"),
                _result("net.same_port_bound_twice", "PASS"),
                _result("pid.first_child_is_pid1", "ERROR", "fork failed: | pipe"),
            ],
        ),
        _report(
            "6.1.0-56-amd64",
            "user",
            [
                _result("uts.hostname_isolated", "SKIP", "needs root"),
                _result("time.offsets_isolated", "SKIP", "needs root"),
                _result("net.same_port_bound_twice", "PASS"),
            ],
        ),
    ]


def test_build_matrix_labels_from_environment(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports)
    assert [c.label for c in matrix.columns] == [
        "5.4.0-1-amd64 (root)",
        "6.1.0-56-amd64 (root)",
        "6.1.0-56-amd64 (user)",
    ]
    assert [c.privileges for c in matrix.columns] == ["root", "root", "user"]


def test_build_matrix_caller_labels_and_duplicates(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports, labels=["a", None, "a"])
    assert [c.label for c in matrix.columns] == ["a", "6.1.0-56-amd64 (root)", "a #2"]
    with pytest.raises(ValueError, match="one entry per report"):
        build_matrix(reports, labels=["a"])


def test_build_matrix_rejects_other_schema() -> None:
    with pytest.raises(ValueError, match="schema must be"):
        build_matrix([{"schema": "other/9", "results": []}])


def test_build_matrix_rows_are_union_in_first_seen_order(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports)
    assert [r.id for r in matrix.rows] == [
        "uts.hostname_isolated",
        "time.offsets_isolated",
        "net.same_port_bound_twice",
        "pid.first_child_is_pid1",
    ]
    assert matrix.rows[0].catalogue_id == "UTS-01"
    pid_row = matrix.rows[3]
    assert [c.status for c in pid_row.cells] == [None, "ERROR", None]


def test_build_matrix_cells_and_reasons(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports)
    time_row = matrix.rows[1]
    assert [c.status for c in time_row.cells] == ["SKIP", "PASS", "SKIP"]
    assert time_row.cells[0].reason == NO_TIMENS
    assert time_row.cells[1].reason is None
    net_row = matrix.rows[2]
    assert net_row.cells[0].reason == "second bind failed (expected bind ok, got EADDRINUSE)"
    assert net_row.cells[1].control == "FAIL"


def test_build_matrix_summary_counts(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports)
    assert [dict(c.summary) for c in matrix.columns] == [
        {"PASS": 1, "FAIL": 1, "SKIP": 1, "ERROR": 0},
        {"PASS": 3, "FAIL": 0, "SKIP": 0, "ERROR": 1},
        {"PASS": 1, "FAIL": 0, "SKIP": 2, "ERROR": 0},
    ]


def test_differing_rows_compare_same_privileges_only(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports)
    # uts differs only between root and user columns: not a kernel difference.
    assert [r.id for r in differing_rows(matrix)] == [
        "time.offsets_isolated",
        "net.same_port_bound_twice",
    ]


def test_render_markdown_footnotes_and_summary(reports: list[dict[str, Any]]) -> None:
    text = render_matrix(build_matrix(reports, notes=["7.2 (root): did not boot"]), "markdown")
    lines = text.splitlines()
    assert lines[0] == (
        "| Check | Catalogue | 5.4.0-1-amd64 (root) | 6.1.0-56-amd64 (root)"
        " | 6.1.0-56-amd64 (user) |"
    )
    # Footnotes are numbered row by row, each distinct reason once.
    assert "| uts.hostname_isolated | UTS-01 | PASS | PASS | SKIP [1] |" in lines
    assert "| time.offsets_isolated | TIME-01 | SKIP [2] | PASS | SKIP [1] |" in lines
    assert "| net.same_port_bound_twice | NET-01 | FAIL [3] | PASS | PASS |" in lines
    # A "|" in a message stays out of the table: it lives in the footnote.
    assert "| pid.first_child_is_pid1 | PID-01 | - | ERROR [4] | - |" in lines
    assert "| Summary (P/F/S/E) |  | P:1 F:1 S:1 E:0 | P:3 F:0 S:0 E:1 | P:1 F:0 S:2 E:0 |" in lines
    assert "1. needs root" in lines
    assert f"2. {NO_TIMENS}" in lines
    assert "3. second bind failed (expected bind ok, got EADDRINUSE)" in lines
    assert "4. fork failed: | pipe" in lines
    assert "- 7.2 (root): did not boot" in lines
    assert "- `time.offsets_isolated`: PASS on 6.1.0-56-amd64 (root); SKIP on the other 2" in lines


def test_render_table_uses_same_footnotes(reports: list[dict[str, Any]]) -> None:
    text = render_matrix(build_matrix(reports), "table")
    assert "SKIP [2]" in text
    assert "[1] needs root" in text
    assert f"[2] {NO_TIMENS}" in text
    summary = next(line for line in text.splitlines() if line.startswith("Summary"))
    assert summary.split()[-4:] == ["P:1", "F:0", "S:2", "E:0"]


def test_render_json_round_trips(reports: list[dict[str, Any]]) -> None:
    matrix = build_matrix(reports, notes=["a note"])
    data = json.loads(render_matrix(matrix, "json"))
    assert data["schema"] == "nsprim.conformance.matrix/1"
    assert [r["differs"] for r in data["rows"]] == [False, True, True, False]
    again = matrix_from_dict(data)
    assert isinstance(again, Matrix)
    assert again == matrix
    assert matrix_to_dict(again) == data
    assert render_matrix(again, "markdown") == render_matrix(matrix, "markdown")


def test_render_rejects_unknown_format(reports: list[dict[str, Any]]) -> None:
    with pytest.raises(
        ValueError, match="fmt must be one of table, markdown, json, html, got 'pdf'"
    ):
        render_matrix(build_matrix(reports), "pdf")


def test_empty_matrix_renders() -> None:
    matrix = build_matrix([])
    assert "Summary" in render_matrix(matrix, "table")
    assert json.loads(render_matrix(matrix, "json"))["rows"] == []
