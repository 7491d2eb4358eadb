"""Render results as plain-text tables, one per namespace type, with a summary line.

Layer: conformance reports. Standard library, tabulate and the conformance
outcome module. For a terminal or a CI log.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from tabulate import tabulate

from ..outcome import CheckResult
from ._common import (
    ReportInfo,
    by_type,
    environment_lines,
    one_line,
    problem_text,
    skip_lines,
    summary,
    verdict_text,
)

__all__ = ["render"]

_WIDTH = 60  # characters of title/message per cell line


def _control(r: CheckResult) -> str:
    if r.control is None:
        return ""
    # Flag a control only where it matters: a PASS whose control did not FAIL.
    # A SKIPped check's control is skipped for the same reason, not suspicious.
    flagged = r.status.value == "PASS" and r.discriminating is False
    return f"{r.control.value} (!)" if flagged else r.control.value


def _note(r: CheckResult) -> str:
    text = problem_text(r) or (r.message if r.message else r.title)
    if (r.expected is not None or r.actual is not None) and r.status.value == "FAIL":
        text += f" [expected {r.expected}, got {r.actual}]"
    return textwrap.shorten(one_line(text), width=3 * _WIDTH, placeholder=" …")


def render(results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render *results* grouped by namespace type, ending with the summary line."""
    info = info if info is not None else ReportInfo()
    controls = info.controls or any(r.control is not None for r in results)
    headers = ["ID", "Catalogue", "Level", "Status"]
    if controls:
        headers.append("Control")
    headers.append("Title / reason")
    out: list[str] = []
    env = info.environment
    out.append(
        f"nsprim conformance on Linux {env.get('kernel', '?')} ({env.get('arch', '?')}), "
        f"{env.get('privileges', '?')}, started {info.started}"
    )
    for nstype, group in by_type(results).items():
        rows = []
        for r in group:
            row = [r.id, r.catalogue_id, r.level, r.status.value]
            if controls:
                row.append(_control(r))
            row.append("\n".join(textwrap.wrap(_note(r), _WIDTH)) or "")
            rows.append(row)
        out.append("")
        out.append(f"[{nstype}]")
        out.append(tabulate(rows, headers=headers, tablefmt="simple"))
    out.append("")
    legend = (
        "Status: the check's verdict (PASS: the guarantee holds; FAIL: the kernel broke it; "
        "SKIP: it could not be checked here, the reason says why; ERROR: the suite broke)."
    )
    if controls:
        legend += (
            " Control: the same check with the isolation left out; it must FAIL, which shows "
            "the check can tell a broken guarantee from a kept one (FAIL is the good result)."
        )
    out.extend(textwrap.wrap(legend, 100))
    env_lines = environment_lines(env)
    if env_lines:
        out.append("")
        out.extend(env_lines)
    skipped = skip_lines(results)
    if skipped:
        out.append("")
        out.extend(skipped)
    out.append("")
    line = verdict_text(summary(results), results)
    if info.duration_s:
        line += f" in {info.duration_s:.2f} s"
    out.append(line)
    return "\n".join(out) + "\n"
