"""What every report renderer shares: the run's facts, the counts, the grouping.

Layer: conformance reports, private. Standard library and :mod:`..outcome` only.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..outcome import CheckResult, Outcome, skipped_by_cause

__all__ = [
    "ReportInfo",
    "summary",
    "by_type",
    "one_line",
    "verdict_text",
    "problem_text",
    "skip_lines",
    "environment_lines",
]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ReportInfo:
    """The facts about a run that reports print besides the results.

    Attributes:
        environment: the JSON schema's ``environment`` object (kernel, arch, ...).
        started: ISO-8601 start time.
        duration_s: wall time of the whole run.
        controls: whether negative controls ran.
    """

    environment: Mapping[str, Any] = field(
        default_factory=lambda: {"kernel": platform.release(), "arch": platform.machine()}
    )
    started: str = field(default_factory=_now)
    duration_s: float = 0.0
    controls: bool = False


def summary(results: Sequence[CheckResult]) -> dict[str, int]:
    """Count results per status; every status is present, in PASS, FAIL, SKIP, ERROR order."""
    counts = {o.value: 0 for o in Outcome}
    for r in results:
        counts[r.status.value] += 1
    return counts


def by_type(results: Sequence[CheckResult]) -> dict[str, list[CheckResult]]:
    """Group results by namespace type, keeping first-seen order."""
    groups: dict[str, list[CheckResult]] = {}
    for r in results:
        groups.setdefault(r.type, []).append(r)
    return groups


def one_line(text: str) -> str:
    """Collapse whitespace so a message fits a table cell or a TAP description."""
    return " ".join(text.split())


def problem_text(r: CheckResult) -> str:
    """Why *r* is a problem (FAIL, ERROR, or a control that did not FAIL); "" if it isn't."""
    if r.status in (Outcome.FAIL, Outcome.ERROR):
        return r.message
    if r.problem:
        detail = f": {r.control_message}" if r.control_message else ""
        return f"not discriminating: the negative control came out {r.control}{detail}"
    return ""


def verdict_text(counts: Mapping[str, int], results: Sequence[CheckResult]) -> str:
    """Return ``"6 checks: 6 PASS, 0 FAIL, 0 SKIP, 0 ERROR"`` plus the control tally if any."""
    text = f"{len(results)} checks: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    with_control = [r for r in results if r.control is not None and r.status is Outcome.PASS]
    if with_control:
        bad = sum(1 for r in with_control if r.discriminating is False)
        text += f"; controls: {len(with_control) - bad} discriminating, {bad} not"
    return text


def skip_lines(results: Sequence[CheckResult]) -> list[str]:
    """What could not be checked, one line per cause: ``"14 checks skipped: <cause>"``."""
    lines = []
    for cause, members in skipped_by_cause(results):
        n = len(members)
        lines.append(f"{n} check{'s' if n != 1 else ''} skipped: {cause}")
    return lines


def environment_lines(env: Mapping[str, Any]) -> list[str]:
    """The probed environment for people: what the sandbox isolated, what is refused here."""
    lines = []
    sandbox = env.get("sandbox")
    if isinstance(sandbox, Mapping):
        isolated = ", ".join(sandbox.get("isolated", ())) or "nothing"
        lines.append(f"sandbox: own {isolated} namespaces")
        for t, cause in dict(sandbox.get("not_isolated", {})).items():
            lines.append(f"  not isolated: {t} ({cause}); the host guard watches it")
    probed = env.get("probed")
    if isinstance(probed, Mapping) and probed:
        ok = [op for op, a in probed.items() if a.get("state") == "available"]
        lines.append(f"probed: {len(ok)} of {len(probed)} operations work here")
        for op, a in probed.items():
            if a.get("state") != "available":
                lines.append(f"  {op}: {a.get('state')}: {a.get('cause')}")
    return lines
