"""Render a run, or a matrix of runs, as one self-contained HTML page.

Layer: conformance reports. Standard library and the sibling report modules only.

The page needs nothing but a browser: inline CSS, no script, no font, image or
stylesheet fetched from anywhere. Rows are guarantees, columns are runs (a host or
kernel at one privilege level). Each cell is coloured by its outcome; a cell that
did not PASS carries its reason twice, on hover (``title``) and as a numbered
footnote, so the page also reads well printed or in a text browser. Every row
links to the guarantee's sentence and its anchors (LTP, selftests, man pages)
further down the page, and a table under the matrix gives each column's
environment.

Each outcome cell is ``<td class="o-PASS" data-outcome="PASS" ...>``: the
``data-*`` attributes are the machine-readable contract that tests parse.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ..outcome import CheckResult
from . import json as json_report
from ._common import ReportInfo
from .matrix import STATUSES, Matrix, Row, build_matrix, ls_table

__all__ = ["render", "render_matrix_html"]

_MISSING = "-"

# Colour per outcome: green, red, grey and amber backgrounds that keep black text
# readable, and a border so the outcome is not told by colour alone (each cell also
# spells its outcome).
_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em;
       color: #111; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; }
p.lead { margin: 0 0 1em; color: #444; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; }
thead th { position: sticky; top: 0; background: #f4f4f4; }
th.col { font-size: .9em; min-width: 5.5em; max-width: 8em; white-space: normal;
         overflow-wrap: anywhere; }
td.id { white-space: nowrap; font-family: ui-monospace, monospace; }
td.title { max-width: 30em; min-width: 18em; }
td.o { text-align: center; white-space: nowrap; font-weight: 600; }
.o-PASS { background: #d7f5dc; border-color: #6abf78; }
.o-FAIL { background: #fbd3d0; border-color: #d9534f; }
.o-SKIP { background: #eeeeee; border-color: #aaaaaa; color: #444; }
.o-ERROR { background: #ffe3a8; border-color: #e0a100; }
.o-none { background: #fff; color: #999; }
tr.summary td { font-weight: 600; background: #fafafa; }
tr.differs td.id::after { content: " \\2260"; color: #d9534f; }
sup { font-weight: 400; }
ol.notes li, dl.guarantees dd { margin-bottom: .3em; }
dl.guarantees dt { font-family: ui-monospace, monospace; margin-top: .6em; }
dl.guarantees dt:target, dl.guarantees dt:target + dd { background: #fff7cc; }
.legend span { display: inline-block; padding: .1em .6em; margin-right: .4em;
               border: 1px solid; font-weight: 600; }
small.muted { color: #666; }
"""

_LEGEND = {
    "PASS": "the kernel kept the guarantee",
    "FAIL": "the operation was permitted and the kernel broke the guarantee",
    "SKIP": "could not be checked here (the reason says why)",
    "ERROR": "the suite itself failed (a bug in nsprim)",
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _slug(check_id: str) -> str:
    return "g-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in check_id)


def _footnotes(matrix: Matrix) -> dict[str, int]:
    """Number each distinct reason in row-major order (the same order as the text matrix)."""
    numbers: dict[str, int] = {}
    for row in matrix.rows:
        for cell in row.cells:
            if cell.status is not None and cell.reason:
                numbers.setdefault(cell.reason, len(numbers) + 1)
    return numbers


def _differs(row: Row, matrix: Matrix) -> bool:
    groups: dict[str, set[str]] = {}
    for column, cell in zip(matrix.columns, row.cells):
        if cell.status is not None:
            groups.setdefault(column.privileges, set()).add(cell.status)
    return any(len(s) > 1 for s in groups.values())


def _cell(row: Row, index: int, numbers: Mapping[str, int]) -> str:
    cell = row.cells[index]
    if cell.status is None:
        return (
            f'<td class="o o-none" data-outcome="" data-col="{index}" '
            f'title="no result in this report">{_MISSING}</td>'
        )
    status = cell.status if cell.status in STATUSES else "ERROR"
    title = cell.reason or _LEGEND.get(status, status)
    control = f"; control {cell.control}" if cell.control else ""
    note = ""
    if cell.reason:
        n = numbers[cell.reason]
        note = f'<sup><a href="#n{n}">[{n}]</a></sup>'
    return (
        f'<td class="o o-{status}" data-outcome="{_e(cell.status)}" data-col="{index}" '
        f'title="{_e(title + control)}">{_e(cell.status)}{note}</td>'
    )


def _ls_section(matrix: Matrix) -> list[str]:
    """The "what nsprim ls finds" table: a FAIL cell is red, a namespace found green."""
    if not matrix.ls:
        return []
    headers, body, notes = ls_table(matrix)
    out = [
        '<h2 id="ls">What nsprim ls finds</h2>',
        '<p class="lead">Namespaces planted held each way, one column per kernel: whether'
        " <code>nsprim ls</code> finds each one, and how it says the namespace is held.</p>",
        '<table class="ls"><thead><tr>',
    ]
    out += [f'<th class="col">{_e(h)}</th>' for h in headers]
    out.append("</tr></thead><tbody>")
    for line in body:
        out.append(f'<tr><td class="id">{_e(line[0])}</td><td class="title">{_e(line[1])}</td>')
        for text in line[2:]:
            if "FAIL" in text or "ERROR" in text:
                css = "o-FAIL"
            elif text.startswith("found") or text == "ok":
                css = "o-PASS"
            else:
                css = "o-SKIP"
            out.append(f'<td class="o {css}" data-ls="{_e(text)}">{_e(text)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    if notes:
        out.append("<ul>")
        out += [f"<li>{_e(n)}</li>" for n in notes]
        out.append("</ul>")
    return out


def _environment_table(matrix: Matrix) -> list[str]:
    keys: list[str] = []
    for column in matrix.columns:
        for key in column.environment:
            if key not in keys:
                keys.append(key)
    if not keys:
        return []
    out = ["<h2>Where each column ran</h2>", '<table class="env">', "<thead><tr><th></th>"]
    out += [f'<th class="col">{_e(c.label)}</th>' for c in matrix.columns]
    out.append("</tr></thead><tbody>")
    for key in keys:
        out.append(f"<tr><th>{_e(key)}</th>")
        out += [f"<td>{_e(c.environment.get(key, ''))}</td>" for c in matrix.columns]
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def render_matrix_html(matrix: Matrix, *, title: str = "nsprim conformance") -> str:
    """Render *matrix* as a self-contained HTML5 page (inline CSS, no script, no fetches)."""
    numbers = _footnotes(matrix)
    total = len(matrix.rows)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="lead">{total} guarantees &times; {len(matrix.columns)} runs. '
        "Hover a cell for its reason; numbers point to the notes below; "
        "&#8800; marks a guarantee whose outcome differs between runs of the same privileges.</p>",
        '<p class="legend">',
    ]
    out += [f'<span class="o-{s}" title="{_e(t)}">{s}</span>' for s, t in _LEGEND.items()]
    out.append("</p>")
    out.append('<table class="matrix"><thead><tr><th>Check</th><th>Guarantee</th>')
    out += [
        f'<th class="col" data-col="{i}" title="{_e(c.kernel)} ({_e(c.privileges)})">'
        f"{_e(c.label)}</th>"
        for i, c in enumerate(matrix.columns)
    ]
    out.append("</tr></thead><tbody>")
    for row in matrix.rows:
        css = ' class="differs"' if _differs(row, matrix) else ""
        label = row.catalogue_id or row.id
        out.append(
            f'<tr{css} data-check="{_e(row.id)}">'
            f'<td class="id"><a href="#{_slug(row.id)}">{_e(label)}</a>'
            f'<br><small class="muted">{_e(row.id)}</small></td>'
            f'<td class="title">{_e(row.title)}</td>'
        )
        out += [_cell(row, i, numbers) for i in range(len(matrix.columns))]
        out.append("</tr>")
    out.append('<tr class="summary"><td>Summary</td><td>PASS / FAIL / SKIP / ERROR</td>')
    for i, column in enumerate(matrix.columns):
        counts = " / ".join(str(column.summary.get(s, 0)) for s in STATUSES)
        out.append(f'<td class="o" data-summary-col="{i}">{_e(counts)}</td>')
    out.append("</tr></tbody></table>")
    if numbers:
        out.append('<h2>Notes</h2><ol class="notes">')
        out += [f'<li id="n{n}">{_e(text)}</li>' for text, n in numbers.items()]
        out.append("</ol>")
    out += _ls_section(matrix)
    out += _environment_table(matrix)
    if matrix.notes:
        out.append("<h2>Notes on the runs</h2><ul>")
        out += [f"<li>{_e(note)}</li>" for note in matrix.notes]
        out.append("</ul>")
    out.append('<h2>The guarantees</h2><dl class="guarantees">')
    for row in matrix.rows:
        level = f' <small class="muted">{_e(row.level)}</small>' if row.level else ""
        anchors = ", ".join(_e(a) for a in row.anchors)
        out.append(
            f'<dt id="{_slug(row.id)}">{_e(row.catalogue_id or "")} {_e(row.id)}{level}</dt>'
            f"<dd>{_e(row.title)}"
            + (f'<br><small class="muted">Anchors: {anchors}</small>' if anchors else "")
            + "</dd>"
        )
    out.append("</dl></body></html>")
    return "\n".join(out) + "\n"


def render(results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render one run as a page: the matrix with a single column."""
    document: Mapping[str, Any] = json_report.to_document(results, info)
    return render_matrix_html(build_matrix([document]))
