"""The report renderers: JSON schema, JUnit counts, table summary, TAP plan, Markdown."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from nsprim.conformance import report
from nsprim.conformance.outcome import CheckResult, Outcome
from nsprim.conformance.report import ReportInfo, junit, markdown, table, tap
from nsprim.conformance.report import json as json_report

INFO = ReportInfo(
    environment={
        "kernel": "6.1.0-13-amd64",
        "arch": "x86_64",
        "distribution": "Debian GNU/Linux 12 (bookworm)",
        "uid": 0,
        "privileges": "root",
        "python": "3.11.7",
    },
    started="2025-01-01T12:00:00+00:00",
    duration_s=0.5,
    controls=True,
)


def _r(
    id: str, status: Outcome, control: Outcome | None = Outcome.FAIL, **kw: object
) -> CheckResult:
    base: dict[str, object] = {
        "id": id,
        "catalogue_id": id.split(".")[0].upper()[:3] + "-01",
        "type": id.split(".")[0],
        "title": f"The {id} guarantee holds.",
        "level": "MUST",
        "status": status,
        "control": control,
        "anchors": ("uts_namespaces(7)",),
        "duration_s": 0.01,
    }
    base.update(kw)
    return CheckResult(**base)  # type: ignore[arg-type]


RESULTS = [
    _r("uts.passes", Outcome.PASS),
    _r("uts.blind", Outcome.PASS, Outcome.PASS, control_message=""),
    _r("uts.fails", Outcome.FAIL, message="parent sees it", expected="'vm'", actual="'x'"),
    _r("ipc.skips", Outcome.SKIP, Outcome.SKIP, message="needs CONFIG_IPC_NS"),
    _r("ipc.errors", Outcome.ERROR, Outcome.ERROR, message="ZeroDivisionError: | # <x> & y"),
    _r("guard.ipc", Outcome.ERROR, None, catalogue_id="GUARD", message="appeared: msg key=0x1"),
]


def test_json_report_matches_schema() -> None:
    doc = json.loads(json_report.render(RESULTS, INFO))
    assert json_report.validate(doc) == []
    assert list(doc) == [
        "schema",
        "nsprim_version",
        "environment",
        "started",
        "duration_s",
        "summary",
        "results",
    ]
    assert doc["schema"] == "nsprim.conformance/1"
    assert doc["summary"] == {"PASS": 2, "FAIL": 1, "SKIP": 1, "ERROR": 2}
    first = doc["results"][0]
    assert first == {
        "id": "uts.passes",
        "catalogue_id": "UTS-01",
        "type": "uts",
        "title": "The uts.passes guarantee holds.",
        "level": "MUST",
        "status": "PASS",
        "control": "FAIL",
        "message": "",
        "expected": None,
        "actual": None,
        "duration_s": 0.01,
        "anchors": ["uts_namespaces(7)"],
        "detail": "",
    }
    assert doc["results"][-1]["control"] is None
    assert json_report.results_of(doc) == RESULTS


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.pop("summary"), "top-level keys"),
        (lambda d: d.update(schema="nsprim.conformance/2"), "schema must be"),
        (lambda d: d["results"][0].update(status="OK"), "status must be one of"),
        (lambda d: d["results"][0].update(control="MAYBE"), "control must be null or one of"),
        (lambda d: d["results"][0].pop("anchors"), "must have the keys"),
        (lambda d: d["results"][0].update(duration_s="1"), "duration_s has the wrong type"),
        (lambda d: d["environment"].update(uid=True), "environment.uid has the wrong type"),
        (lambda d: d["environment"].update(privileges="admin"), "privileges must be root|user"),
        (lambda d: d["summary"].update(PASS=9), "does not match the results"),
    ],
)
def test_json_validate_reports_each_departure(mutate: object, problem: str) -> None:
    doc = json.loads(json_report.render(RESULTS, INFO))
    mutate(doc)  # type: ignore[operator]
    problems = json_report.validate(doc)
    assert any(problem in p for p in problems), problems


def test_junit_parses_and_counts_match() -> None:
    root = ET.fromstring(junit.render(RESULTS, INFO))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == int(root.get("tests", "-1")) == len(RESULTS)
    # The non-discriminating PASS counts as a failure.
    assert int(root.get("failures", "-1")) == len(root.findall(".//failure")) == 2
    assert int(root.get("errors", "-1")) == len(root.findall(".//error")) == 2
    assert int(root.get("skipped", "-1")) == len(root.findall(".//skipped")) == 1
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "nsprim.conformance.uts",
        "nsprim.conformance.ipc",
        "nsprim.conformance.guard",
    ]
    for suite in suites.values():
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
    blind = root.find(".//testcase[@name='uts.blind [UTS-01]']/failure")
    assert blind is not None and blind.get("type") == "NonDiscriminating"
    failed = root.find(".//testcase[@name='uts.fails [UTS-01]']/failure")
    assert failed is not None and "expected: 'vm'" in (failed.text or "")


def test_table_groups_by_type_and_summary_adds_up() -> None:
    text = table.render(RESULTS, INFO)
    assert [line for line in text.splitlines() if re.fullmatch(r"\[\w+\]", line)] == [
        "[uts]",
        "[ipc]",
        "[guard]",
    ]
    summary_line = text.rstrip().splitlines()[-1]
    m = re.match(r"(\d+) checks: (\d+) PASS, (\d+) FAIL, (\d+) SKIP, (\d+) ERROR", summary_line)
    assert m, summary_line
    total, *counts = map(int, m.groups())
    assert total == sum(counts) == len(RESULTS)
    assert "controls: 1 discriminating, 1 not" in summary_line
    assert "not discriminating" in text


def test_tap_has_version_plan_and_one_point_per_result() -> None:
    lines = tap.render(RESULTS, INFO).splitlines()
    assert lines[:2] == ["TAP version 13", f"1..{len(RESULTS)}"]
    points = [line for line in lines if re.match(r"(not )?ok \d+ - ", line)]
    assert [int(p.split()[1 if p.startswith("ok") else 2]) for p in points] == [1, 2, 3, 4, 5, 6]
    assert sum(p.startswith("not ok") for p in points) == 4
    assert (
        "ok 4 - ipc.skips [IPC-01] The ipc.skips guarantee holds. # SKIP needs CONFIG_IPC_NS"
        in lines
    )
    # The '#' in a message stays inside the YAML block, quoted.
    assert '  message: "ZeroDivisionError: | # <x> & y"' in lines
    assert lines.count("  ---") == lines.count("  ...") == 4


def test_markdown_lists_problems_and_escapes_pipes() -> None:
    text = markdown.render(RESULTS, INFO)
    assert text.startswith("## nsprim conformance")
    assert "### Problems" in text and "`uts.blind`" in text
    assert "ZeroDivisionError: \\| # <x> & y" in text
    assert "<details><summary>Skipped</summary>" in text


def test_render_dispatches_and_rejects_unknown_format() -> None:
    for fmt in report.FORMATS:
        assert report.render(fmt, RESULTS, INFO)
    with pytest.raises(ValueError, match="fmt must be one of"):
        report.render("yaml", RESULTS, INFO)


def test_renderers_accept_empty_results() -> None:
    for fmt in report.FORMATS:
        assert report.render(fmt, [], INFO)
    assert json_report.validate(json.loads(json_report.render([], INFO))) == []
