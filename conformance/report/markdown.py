"""Render results as GitHub-flavoured Markdown, for a pull request or an issue.

Layer: conformance reports. Standard library and the conformance outcome
module. A summary line, a table per namespace type, then the details of
every problem (FAIL, ERROR, non-discriminating control).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..outcome import CheckResult, Outcome
from ._common import ReportInfo, by_type, one_line, problem_text, summary, verdict_text

__all__ = ["render"]

_ICON = {Outcome.PASS: "✅", Outcome.FAIL: "❌", Outcome.SKIP: "⏭️", Outcome.ERROR: "💥"}


def _cell(text: str) -> str:
    return one_line(text).replace("|", "\\|")


def _code(text: str | None) -> str:
    return "`" + (text or "").replace("`", "'") + "`"


def render(results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render *results* as Markdown."""
    info = info if info is not None else ReportInfo()
    env = info.environment
    controls = info.controls or any(r.control is not None for r in results)
    out = [
        "## nsprim conformance",
        "",
        f"Linux `{env.get('kernel', '?')}` ({env.get('arch', '?')}, "
        f"{env.get('distribution', '?')}), privileges: **{env.get('privileges', '?')}**, "
        f"started {info.started}.",
        "",
        f"**{verdict_text(summary(results), results)}**",
    ]
    for nstype, group in by_type(results).items():
        out += ["", f"### {nstype}", ""]
        header = "| | ID | Catalogue | Level | Guarantee |"
        rule = "|---|---|---|---|---|"
        if controls:
            header += " Control |"
            rule += "---|"
        out += [header, rule]
        for r in group:
            row = (
                f"| {_ICON[r.status]} {r.status.value} | `{r.id}` | {r.catalogue_id} | "
                f"{r.level} | {_cell(r.title)} |"
            )
            if controls:
                mark = "" if r.discriminating is not False else " ⚠️"
                row += f" {r.control.value if r.control else ''}{mark} |"
            out.append(row)
    problems = [r for r in results if r.problem]
    skips = [r for r in results if r.status is Outcome.SKIP]
    if problems:
        out += ["", "### Problems", ""]
        for r in problems:
            out.append(
                f"- **`{r.id}`** ({r.catalogue_id}, {r.status.value}): {_cell(problem_text(r))}"
            )
            if r.expected is not None or r.actual is not None:
                out.append(f"  - expected {_code(r.expected)}, got {_code(r.actual)}")
    if skips:
        out += ["", "<details><summary>Skipped</summary>", ""]
        out += [f"- `{r.id}`: {_cell(r.message)}" for r in skips]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"
