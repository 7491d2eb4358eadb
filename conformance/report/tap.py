"""Render results as TAP version 13 (Test Anything Protocol), one test point per check.

Layer: conformance reports. Standard library and the conformance outcome
module. SKIP is ``ok … # SKIP reason``; FAIL, ERROR and non-discriminating
PASS are ``not ok`` with a YAML diagnostic block (``severity: fail|error``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..outcome import CheckResult, Outcome
from ._common import ReportInfo, one_line, problem_text, summary, verdict_text

__all__ = ["render"]


def _yaml_str(text: str) -> str:
    # A JSON string is a valid YAML flow scalar, and it escapes everything.
    return json.dumps(text, ensure_ascii=False)


def render(results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render *results* as a TAP 13 stream: version line, plan, test points, summary comment."""
    info = info if info is not None else ReportInfo()
    out = ["TAP version 13", f"1..{len(results)}"]
    env = info.environment
    out.append(
        f"# nsprim conformance on Linux {env.get('kernel', '?')}, {env.get('privileges', '?')}"
    )
    for n, r in enumerate(results, 1):
        desc = f"{r.id} [{r.catalogue_id}] {one_line(r.title)}".replace("#", "\\#")
        if r.status is Outcome.SKIP:
            out.append(f"ok {n} - {desc} # SKIP {one_line(r.message)}")
            continue
        if not r.problem:
            out.append(f"ok {n} - {desc}")
            continue
        out.append(f"not ok {n} - {desc}")
        block = {
            "severity": "error" if r.status is Outcome.ERROR else "fail",
            "status": r.status.value,
            "message": problem_text(r),
        }
        if r.expected is not None:
            block["expected"] = r.expected
        if r.actual is not None:
            block["actual"] = r.actual
        if r.control is not None:
            block["control"] = r.control.value
        out.append("  ---")
        out.extend(f"  {key}: {_yaml_str(value)}" for key, value in block.items())
        out.append("  ...")
    out.append(f"# {verdict_text(summary(results), results)}")
    return "\n".join(out) + "\n"
