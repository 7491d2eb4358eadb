"""Merge several conformance JSON reports into one compatibility matrix.

Pure functions, no I/O: ``build_matrix`` turns reports (the ``nsprim.conformance/1``
JSON schema, already parsed) into a :class:`Matrix`; ``render_matrix`` turns a
matrix into text (``table``, ``markdown`` or ``json``). Used by
``nsprim conformance --merge`` and by ``scripts/vm/matrix`` (one column per
kernel and privilege level). ``scripts/vm/matrix`` also passes each kernel's
``nsprim.lsprobe/1`` result (:mod:`nsprim.conformance.lsprobe`): the section
"what nsprim ls finds", one column per kernel.

Imports only the standard library and tabulate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

__all__ = [
    "FORMATS",
    "MATRIX_SCHEMA",
    "STATUSES",
    "Cell",
    "Column",
    "LS_SCHEMA",
    "LsColumn",
    "Matrix",
    "Row",
    "build_matrix",
    "differing_rows",
    "ls_table",
    "matrix_from_dict",
    "matrix_to_dict",
    "render_matrix",
]

MATRIX_SCHEMA = "nsprim.conformance.matrix/1"
REPORT_SCHEMA = "nsprim.conformance/1"
LS_SCHEMA = "nsprim.lsprobe/1"
STATUSES = ("PASS", "FAIL", "SKIP", "ERROR")
FORMATS = ("table", "markdown", "json", "html")
# Statuses whose reason is worth a footnote (PASS needs no explanation).
_EXPLAINED = frozenset({"FAIL", "SKIP", "ERROR"})
_MISSING = "-"  # shown where a report has no result for a row


@dataclass(frozen=True)
class Column:
    """One report: its label, where it ran, and its status counts."""

    label: str
    kernel: str
    privileges: str
    summary: Mapping[str, int]
    environment: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One check in one report; *status* is ``None`` when the report lacks the check."""

    status: str | None
    reason: str | None = None
    control: str | None = None


@dataclass(frozen=True)
class Row:
    """One check across every column, in column order."""

    id: str
    catalogue_id: str | None
    title: str
    level: str | None
    cells: tuple[Cell, ...]
    anchors: tuple[str, ...] = ()


@dataclass(frozen=True)
class LsColumn:
    """What ``nsprim ls`` found on one kernel (an ``nsprim.lsprobe/1`` result).

    *plants* are the probe's plant dicts as it wrote them (``name``, ``type``,
    ``how``, ``found``, ``held``, ``expected``, ``ok``, ``error``, ...);
    *listns* is what the probe itself got from listns(2) (``present``,
    ``absent``, ``refused: ...``; None if not recorded).
    """

    label: str
    kernel: str
    sources: tuple[str, ...]
    ok: bool
    error: str | None
    plants: tuple[Mapping[str, Any], ...]
    listns: str | None = None


@dataclass(frozen=True)
class Matrix:
    """Checks (rows) by reports (columns), plus notes (e.g. a kernel that did not boot).

    *ls* holds what ``nsprim ls`` found per kernel (empty when no probe ran).
    """

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    ls: tuple[LsColumn, ...] = ()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(result: Mapping[str, Any]) -> str | None:
    """Explain a non-PASS result in one line: the message, then expected/actual if given."""
    status = result.get("status")
    if status not in _EXPLAINED:
        return None
    parts = [_one_line(str(result.get("message") or ""))]
    expected, actual = result.get("expected"), result.get("actual")
    if status != "SKIP" and (expected is not None or actual is not None):
        parts.append(f"(expected {_one_line(str(expected))}, got {_one_line(str(actual))})")
    text = " ".join(p for p in parts if p)
    return text or f"{status} without a message"


def _default_label(report: Mapping[str, Any], index: int) -> str:
    env = report.get("environment") or {}
    kernel = str(env.get("kernel") or f"report {index + 1}")
    privileges = env.get("privileges")
    return f"{kernel} ({privileges})" if privileges else kernel


def build_matrix(
    reports: Sequence[Mapping[str, Any]],
    labels: Sequence[str | None] | None = None,
    notes: Sequence[str] = (),
    ls_probes: Sequence[Mapping[str, Any]] = (),
    ls_labels: Sequence[str | None] | None = None,
) -> Matrix:
    """Merge conformance reports into a matrix, one column per report.

    Rows are the union of check ids, in order of first appearance. Column labels are
    ``labels[i]`` when given, else ``"<kernel release> (<privileges>)"`` from the
    report's ``environment``; repeated labels get a ``#2``, ``#3`` suffix.

    Args:
        reports: parsed ``nsprim.conformance/1`` reports.
        labels: optional label per report (``None`` entries fall back to the default).
        notes: free text shown under the matrix (a kernel that failed to boot, or what
            its config lacks).
        ls_probes: ``nsprim.lsprobe/1`` results, one per kernel: the "what nsprim ls
            finds" section.
        ls_labels: optional column label per probe (default: the probe's kernel).

    Raises:
        ValueError: a report or probe has another schema, or *labels* or
            *ls_labels* has the wrong length.
    """
    ls = _ls_columns(ls_probes, ls_labels)
    if labels is not None and len(labels) != len(reports):
        raise ValueError(
            f"labels must have one entry per report ({len(reports)}), got {len(labels)}"
        )
    columns: list[Column] = []
    seen_labels: dict[str, int] = {}
    by_id: list[dict[str, Mapping[str, Any]]] = []
    order: dict[str, Mapping[str, Any]] = {}
    for index, report in enumerate(reports):
        schema = report.get("schema")
        if schema != REPORT_SCHEMA:
            raise ValueError(
                f"report {index + 1}: schema must be {REPORT_SCHEMA!r}, got {schema!r}"
            )
        label = (labels[index] if labels is not None else None) or _default_label(report, index)
        count = seen_labels.get(label, 0) + 1
        seen_labels[label] = count
        if count > 1:
            label = f"{label} #{count}"
        results: dict[str, Mapping[str, Any]] = {}
        for result in report.get("results") or []:
            check_id = str(result["id"])
            results[check_id] = result
            order.setdefault(check_id, result)
        by_id.append(results)
        summary = {s: 0 for s in STATUSES}
        for result in results.values():
            status = str(result.get("status"))
            summary[status] = summary.get(status, 0) + 1
        env = report.get("environment") or {}
        columns.append(
            Column(
                label=label,
                kernel=str(env.get("kernel") or ""),
                privileges=str(env.get("privileges") or ""),
                summary=summary,
                environment=dict(env),
            )
        )
    rows: list[Row] = []
    for check_id, first in order.items():
        cells: list[Cell] = []
        for results in by_id:
            result = results.get(check_id)
            if result is None:
                cells.append(Cell(status=None))
                continue
            control = result.get("control")
            cells.append(
                Cell(
                    status=str(result.get("status")),
                    reason=_reason(result),
                    control=None if control is None else str(control),
                )
            )
        catalogue = first.get("catalogue_id")
        level = first.get("level")
        rows.append(
            Row(
                id=check_id,
                catalogue_id=None if catalogue is None else str(catalogue),
                title=_one_line(str(first.get("title") or "")),
                level=None if level is None else str(level),
                cells=tuple(cells),
                anchors=tuple(str(a) for a in first.get("anchors") or ()),
            )
        )
    return Matrix(columns=tuple(columns), rows=tuple(rows), notes=tuple(notes), ls=ls)


def _ls_columns(
    probes: Sequence[Mapping[str, Any]], labels: Sequence[str | None] | None
) -> tuple[LsColumn, ...]:
    if labels is not None and len(labels) != len(probes):
        raise ValueError(
            f"ls_labels must have one entry per probe ({len(probes)}), got {len(labels)}"
        )
    out = []
    for index, probe in enumerate(probes):
        schema = probe.get("schema")
        if schema != LS_SCHEMA:
            raise ValueError(f"probe {index + 1}: schema must be {LS_SCHEMA!r}, got {schema!r}")
        kernel = str(probe.get("kernel") or "")
        label = (labels[index] if labels is not None else None) or kernel or f"kernel {index + 1}"
        error = probe.get("error")
        out.append(
            LsColumn(
                label=label,
                kernel=kernel,
                sources=tuple(str(x) for x in probe.get("sources") or ()),
                ok=probe.get("ok") is True,
                error=None if error is None else _one_line(str(error)),
                plants=tuple(dict(p) for p in probe.get("plants") or ()),
                listns=None if probe.get("listns") is None else str(probe.get("listns")),
            )
        )
    return tuple(out)


def _ls_cell(plant: Mapping[str, Any] | None) -> str:
    """One planted namespace on one kernel, in words; a failed expectation says FAIL."""
    if plant is None:
        return _MISSING
    if plant.get("error") is not None or plant.get("planted") is False:
        return "not planted: FAIL"
    held = plant.get("held")
    if plant.get("found"):
        text = f"found ({', '.join(str(h) for h in held or ())})"
        if plant.get("ok") is False:
            want = plant.get("expected_held") if plant.get("expected") else "not found"
            text += f" FAIL: expected {want}"
        return text
    if plant.get("ok") is False:
        return f"not found FAIL: expected found ({plant.get('expected_held')})"
    return "not found"


def _ls_source(column: LsColumn) -> str:
    if column.error is not None:
        return "probe ERROR"
    if "listns" in column.sources:
        return "/proc scan + listns(2)"
    if not column.sources:
        return _MISSING
    if column.listns == "present":
        return "/proc scan FAIL: listns(2) answers here"
    if column.listns and column.listns.startswith("refused"):
        return f"/proc scan (listns(2) {column.listns})"
    return "/proc scan"


def ls_table(matrix: Matrix) -> tuple[list[str], list[list[str]], list[str]]:
    """Return the "what nsprim ls finds" section as headers, rows and notes.

    The first row says where each kernel's scan looked, then one row per planted
    namespace (``found (how it is held)``, ``not found``; ``FAIL`` where that
    contradicts what the scan should find), then whether the probe as a whole
    held. The notes are the probes' errors.
    """
    headers = ["Planted namespace", "Held only by", *[c.label for c in matrix.ls]]
    order: dict[str, Mapping[str, Any]] = {}
    for column in matrix.ls:
        for plant in column.plants:
            order.setdefault(str(plant.get("name")), plant)
    body = [["source", "where the scan looked", *[_ls_source(c) for c in matrix.ls]]]
    for name, first in order.items():
        cells = []
        for column in matrix.ls:
            by_name = {str(p.get("name")): p for p in column.plants}
            cells.append(_ls_cell(by_name.get(name)))
        label = f"{name} ({first.get('type')})"
        body.append([label, _one_line(str(first.get("how") or "")), *cells])
    body.append(
        ["probe", "every judged plant as expected", *["ok" if c.ok else "FAIL" for c in matrix.ls]]
    )
    notes = [f"{c.label}: {c.error}" for c in matrix.ls if c.error is not None]
    return headers, body, notes


def _differing_groups(row: Row, columns: Sequence[Column]) -> list[str]:
    """Name the privilege groups in which this row's present statuses disagree."""
    groups: dict[str, set[str]] = {}
    for index, cell in enumerate(row.cells):
        if cell.status is None:
            continue
        group = columns[index].privileges if index < len(columns) else ""
        groups.setdefault(group, set()).add(cell.status)
    return sorted(g for g, statuses in groups.items() if len(statuses) > 1)


def differing_rows(matrix: Matrix) -> list[Row]:
    """Return the rows whose statuses differ between columns with the same privileges."""
    return [row for row in matrix.rows if _differing_groups(row, matrix.columns)]


def _footnotes(matrix: Matrix) -> tuple[list[list[str]], list[str]]:
    """Number each distinct reason (row-major order) and return cell texts plus the notes."""
    numbers: dict[str, int] = {}
    texts: list[list[str]] = []
    for row in matrix.rows:
        line: list[str] = []
        for cell in row.cells:
            if cell.status is None:
                line.append(_MISSING)
                continue
            text = cell.status
            if cell.reason:
                number = numbers.setdefault(cell.reason, len(numbers) + 1)
                text = f"{text} [{number}]"
            line.append(text)
        texts.append(line)
    return texts, list(numbers)


def _describe_difference(row: Row, columns: Sequence[Column]) -> str:
    """Say which columns have which status, the most common status last and in short."""
    groups: dict[str, list[str]] = {}
    for column, cell in zip(columns, row.cells):
        groups.setdefault(cell.status or _MISSING, []).append(column.label)
    ordered = sorted(groups.items(), key=lambda item: len(item[1]))
    parts = [f"{status} on {', '.join(labels)}" for status, labels in ordered[:-1]]
    status, labels = ordered[-1]
    parts.append(f"{status} on the other {len(labels)}" if parts else f"{status} on all")
    return "; ".join(parts)


def _summary_text(summary: Mapping[str, int]) -> str:
    return " ".join(f"{s[0]}:{summary.get(s, 0)}" for s in STATUSES)


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|")


def _render_text(matrix: Matrix, markdown: bool) -> str:
    cells, footnotes = _footnotes(matrix)
    headers = ["Check", "Catalogue", *[c.label for c in matrix.columns]]
    body: list[list[str]] = []
    for row, line in zip(matrix.rows, cells):
        body.append([row.id, row.catalogue_id or "", *line])
    body.append(["Summary (P/F/S/E)", "", *[_summary_text(c.summary) for c in matrix.columns]])
    out: list[str] = []
    if markdown:
        out.append("| " + " | ".join(_escape_md(h) for h in headers) + " |")
        out.append("|" + "|".join(["---"] * len(headers)) + "|")
        for line in body:
            out.append("| " + " | ".join(_escape_md(x) for x in line) + " |")
    else:
        out.append(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
    if footnotes:
        out.append("")
        out.append("Notes:" if not markdown else "**Reasons**")
        if markdown:
            out.append("")
        for number, text in enumerate(footnotes, 1):
            out.append(f"{number}. {text}" if markdown else f"[{number}] {text}")
    diffs = [(row, _differing_groups(row, matrix.columns)) for row in matrix.rows]
    diffs = [(row, groups) for row, groups in diffs if groups]
    if diffs:
        out.append("")
        out.append(
            "**Differences between columns of the same privileges**"
            if markdown
            else "Differences between columns of the same privileges:"
        )
        if markdown:
            out.append("")
        for row, _groups in diffs:
            text = _describe_difference(row, matrix.columns)
            out.append(f"- `{row.id}`: {text}" if markdown else f"- {row.id}: {text}")
    if matrix.ls:
        out.append("")
        out += _render_ls_text(matrix, markdown)
    if matrix.notes:
        out.append("")
        out.append("**Notes on the runs**" if markdown else "Notes on the runs:")
        if markdown:
            out.append("")
        for note in matrix.notes:
            out.append(f"- {_one_line(note)}")
    return "\n".join(out) + "\n"


def _render_ls_text(matrix: Matrix, markdown: bool) -> list[str]:
    headers, body, notes = ls_table(matrix)
    out = []
    if markdown:
        out.append(
            "**What nsprim ls finds** (namespaces planted held each way, one column per kernel)"
        )
        out.append("")
        out.append("| " + " | ".join(_escape_md(h) for h in headers) + " |")
        out.append("|" + "|".join(["---"] * len(headers)) + "|")
        for line in body:
            out.append("| " + " | ".join(_escape_md(x) for x in line) + " |")
    else:
        out.append(
            "What nsprim ls finds (namespaces planted held each way, one column per kernel):"
        )
        out.append(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
    for note in notes:
        out.append(f"- {note}")
    return out


def matrix_to_dict(matrix: Matrix) -> dict[str, Any]:
    """Return the matrix as JSON-ready data (schema ``nsprim.conformance.matrix/1``)."""
    return {
        "schema": MATRIX_SCHEMA,
        "columns": [
            {
                "label": c.label,
                "kernel": c.kernel,
                "privileges": c.privileges,
                "summary": dict(c.summary),
                "environment": dict(c.environment),
            }
            for c in matrix.columns
        ],
        "rows": [
            {
                "id": r.id,
                "catalogue_id": r.catalogue_id,
                "title": r.title,
                "level": r.level,
                "anchors": list(r.anchors),
                "differs": bool(_differing_groups(r, matrix.columns)),
                "cells": [
                    {"status": c.status, "reason": c.reason, "control": c.control} for c in r.cells
                ],
            }
            for r in matrix.rows
        ],
        "notes": list(matrix.notes),
        "ls": [
            {
                "label": c.label,
                "kernel": c.kernel,
                "sources": list(c.sources),
                "ok": c.ok,
                "error": c.error,
                "plants": [dict(p) for p in c.plants],
                "listns": c.listns,
            }
            for c in matrix.ls
        ],
    }


def matrix_from_dict(data: Mapping[str, Any]) -> Matrix:
    """Rebuild a matrix from :func:`matrix_to_dict` output.

    Raises:
        ValueError: *data* has another schema.
    """
    schema = data.get("schema")
    if schema != MATRIX_SCHEMA:
        raise ValueError(f"matrix schema must be {MATRIX_SCHEMA!r}, got {schema!r}")
    return Matrix(
        columns=tuple(
            Column(
                label=str(c["label"]),
                kernel=str(c["kernel"]),
                privileges=str(c["privileges"]),
                summary={str(k): int(v) for k, v in c["summary"].items()},
                environment=dict(c.get("environment") or {}),
            )
            for c in data["columns"]
        ),
        rows=tuple(
            Row(
                id=str(r["id"]),
                catalogue_id=r["catalogue_id"],
                title=str(r["title"]),
                level=r["level"],
                cells=tuple(
                    Cell(status=c["status"], reason=c["reason"], control=c["control"])
                    for c in r["cells"]
                ),
                anchors=tuple(str(a) for a in r.get("anchors") or ()),
            )
            for r in data["rows"]
        ),
        notes=tuple(str(n) for n in data.get("notes", [])),
        ls=tuple(
            LsColumn(
                label=str(c["label"]),
                kernel=str(c["kernel"]),
                sources=tuple(str(x) for x in c.get("sources") or ()),
                ok=c.get("ok") is True,
                error=c.get("error"),
                plants=tuple(dict(p) for p in c.get("plants") or ()),
                listns=c.get("listns"),
            )
            for c in data.get("ls") or ()
        ),
    )


def render_matrix(matrix: Matrix, fmt: str) -> str:
    """Render *matrix* as ``table`` (tabulate), ``markdown``, ``json`` or ``html``.

    Table and Markdown show each FAIL/SKIP/ERROR reason once, as a numbered footnote,
    then a summary row with PASS/FAIL/SKIP/ERROR counts per column.

    Raises:
        ValueError: *fmt* is not one of :data:`FORMATS`.
    """
    if fmt == "json":
        return json.dumps(matrix_to_dict(matrix), indent=2, sort_keys=False) + "\n"
    if fmt == "markdown":
        return _render_text(matrix, markdown=True)
    if fmt == "table":
        return _render_text(matrix, markdown=False)
    if fmt == "html":
        from .html import render_matrix_html  # html imports this module

        return render_matrix_html(matrix)
    raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
