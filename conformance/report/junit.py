"""Render results as JUnit XML (one ``<testsuite>`` per namespace type).

Layer: conformance reports. Standard library and the conformance outcome
module. FAIL maps to ``<failure>``, ERROR to ``<error>``, SKIP to
``<skipped>``; a PASS whose negative control did not FAIL is a ``<failure>``
of type ``NonDiscriminating``, because it proves nothing. Parseable by
``xml.etree`` and by the usual CI consumers (Jenkins, GitLab).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ..outcome import CheckResult, Outcome
from ._common import ReportInfo, by_type, problem_text

__all__ = ["render"]


def _counts(group: Sequence[CheckResult]) -> dict[str, str]:
    failures = sum(
        1 for r in group if r.status is Outcome.FAIL or (r.problem and r.status is Outcome.PASS)
    )
    return {
        "tests": str(len(group)),
        "failures": str(failures),
        "errors": str(sum(1 for r in group if r.status is Outcome.ERROR)),
        "skipped": str(sum(1 for r in group if r.status is Outcome.SKIP)),
        "time": f"{sum(r.duration_s for r in group):.3f}",
    }


def _detail(r: CheckResult) -> str:
    lines = [problem_text(r) or r.message]
    if r.expected is not None or r.actual is not None:
        lines += [f"expected: {r.expected}", f"actual:   {r.actual}"]
    if r.control is not None:
        lines.append(f"control:  {r.control.value}")
    lines.append(f"guarantee: {r.title}")
    if r.anchors:
        lines.append("anchors:  " + "; ".join(r.anchors))
    return "\n".join(lines)


def render(results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render *results* as a JUnit ``<testsuites>`` document."""
    info = info if info is not None else ReportInfo()
    root = ET.Element("testsuites", {"name": "nsprim.conformance", **_counts(results)})
    for nstype, group in by_type(results).items():
        attrs = {"name": f"nsprim.conformance.{nstype}", "timestamp": info.started}
        suite = ET.SubElement(root, "testsuite", {**attrs, **_counts(group)})
        props = ET.SubElement(suite, "properties")
        for key, value in info.environment.items():
            ET.SubElement(props, "property", name=str(key), value=str(value))
        for r in group:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"nsprim.conformance.{r.type}",
                name=f"{r.id} [{r.catalogue_id}]",
                time=f"{r.duration_s:.3f}",
            )
            if r.status is Outcome.FAIL:
                el = ET.SubElement(case, "failure", message=r.message, type="FAIL")
                el.text = _detail(r)
            elif r.status is Outcome.ERROR:
                el = ET.SubElement(case, "error", message=r.message, type="ERROR")
                el.text = _detail(r)
            elif r.status is Outcome.SKIP:
                ET.SubElement(case, "skipped", message=r.message)
            elif r.problem:
                el = ET.SubElement(
                    case, "failure", message=problem_text(r), type="NonDiscriminating"
                )
                el.text = _detail(r)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
