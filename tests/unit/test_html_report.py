"""The HTML report: a self-contained page whose every cell says what the JSON says.

The page is parsed with the standard library's HTML parser (what a browser would
build from it is checked by eye in headless Chromium, see the README); these tests
hold the machine-readable contract: one ``data-outcome`` cell per check and run,
equal to the JSON report's status, and nothing fetched from anywhere.
"""

from __future__ import annotations

import glob
import json
import os
from html.parser import HTMLParser
from typing import Any, ClassVar, Optional

import pytest
from nsprim.conformance.outcome import CheckResult, Outcome
from nsprim.conformance.report import render
from nsprim.conformance.report.matrix import build_matrix, render_matrix

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RAW = sorted(glob.glob(os.path.join(ROOT, "conformance", "reports", "raw", "*.json")))


class _Page(HTMLParser):
    """Collect the matrix cells, the links and every tag that could fetch something."""

    VOID: ClassVar[set[str]] = {"meta", "br", "link", "img", "input", "hr", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.rows: dict[str, dict[int, str]] = {}
        self.titles: dict[tuple[str, int], str] = {}
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.fetchers: list[str] = []
        self._row: Optional[str] = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in {"script", "link", "img", "iframe", "object", "embed"} or "src" in a:
            self.fetchers.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a":
            self.hrefs.append(a.get("href", ""))
        if tag == "tr":
            self._row = a.get("data-check")
        if tag == "td" and self._row is not None and "data-outcome" in a:
            col = int(a["data-col"])
            self.rows.setdefault(self._row, {})[col] = a["data-outcome"]
            self.titles[(self._row, col)] = a.get("title", "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "tr":
            self._row = None


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    assert page.errors == [], page.errors[:5]
    assert page.stack == [], f"unclosed tags: {page.stack}"
    return page


def _raw() -> list[dict[str, Any]]:
    if not RAW:
        pytest.skip("no committed raw reports")
    return [json.load(open(p, encoding="utf-8")) for p in RAW]


def _reports() -> list[dict[str, Any]]:
    return [d for d in _raw() if d.get("schema") != "nsprim.lsprobe/1"]


def _probes() -> list[dict[str, Any]]:
    # scripts/vm/matrix --reports-dir also keeps each kernel's nsprim ls probe there
    return [d for d in _raw() if d.get("schema") == "nsprim.lsprobe/1"]


def test_matrix_page_parses_and_every_cell_matches_the_json() -> None:
    reports = _reports()
    page = _parse(render_matrix(build_matrix(reports), "html"))
    assert page.fetchers == [], "the page must fetch nothing"
    for col, report in enumerate(reports):
        for result in report["results"]:
            assert page.rows[result["id"]][col] == result["status"], (result["id"], col)
    assert len(page.rows) == len({r["id"] for rep in reports for r in rep["results"]})
    # Every in-page link lands on an element of the page.
    for href in page.hrefs:
        assert href.startswith("#") and href[1:] in page.ids, href


def test_reasons_are_on_hover_and_in_footnotes() -> None:
    reports = _reports()
    text = render_matrix(build_matrix(reports), "html")
    page = _parse(text)
    skipped = [
        (col, r) for col, rep in enumerate(reports) for r in rep["results"] if r["status"] == "SKIP"
    ]
    assert skipped, "the committed matrix has rootless SKIPs"
    col, result = skipped[0]
    assert result["message"].split()[0] in page.titles[(result["id"], col)]
    assert 'id="n1"' in text


def test_committed_html_is_current() -> None:
    reports = _reports()
    committed = os.path.join(ROOT, "conformance", "reports", "kernel-matrix.html")
    with open(committed, encoding="utf-8") as f:
        assert f.read() == render_matrix(build_matrix(reports, ls_probes=_probes()), "html"), (
            "regenerate: nsprim conformance --merge conformance/reports/raw/*.json "
            "--format html -o conformance/reports/kernel-matrix.html"
        )


def test_single_run_page_and_a_control_that_did_not_fail() -> None:
    results = [
        CheckResult(
            id="uts.x", catalogue_id="UTS-99", type="uts", title="A <b> & \"quoted\" title.",
            level="MUST", status=Outcome.FAIL, control=Outcome.FAIL,
            message="expected 'a', got 'b'", anchors=("man <7>",),
        ),
        CheckResult(
            id="uts.y", catalogue_id="UTS-98", type="uts", title="Another.",
            level="MUST", status=Outcome.PASS, control=Outcome.FAIL, message="",
        ),
    ]  # fmt: skip
    text = render("html", results)
    page = _parse(text)
    assert page.rows == {"uts.x": {0: "FAIL"}, "uts.y": {0: "PASS"}}
    assert "<b>" not in text and "&lt;b&gt;" in text  # escaped, never markup
    assert "man &lt;7&gt;" in text
