"""The conformance suite as pytest items gives the verdicts ``nsprim conformance`` gives.

Both run on this machine, on the same subset: the CLI's JSON report and
pytest's JUnit XML are parsed and compared check by check. A run with
checks registered by a conftest proves the mapping of every verdict
(PASS/FAIL/SKIP/ERROR, and controls) and that -k, -x, --junitxml and
pytest-xdist work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.needs_root

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
# A subset that covers several namespace types and keeps the test quick.
ONLY = ("UTS-0[1-3]", "IPC-01", "MNT-10", "PID-01")
KEYWORDS = "UTS-01 or UTS-02 or UTS-03 or IPC-01 or MNT-10 or PID-01"


def junit_verdicts(path: Path) -> dict[str, tuple[str, str]]:
    """Return ``{item name: (verdict, message)}`` from a JUnit XML report of pytest."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        verdict, message = "PASS", ""
        for tag, name in (("failure", "FAIL"), ("error", "ERROR"), ("skipped", "SKIP")):
            node = case.find(tag)
            if node is not None:
                verdict, message = name, node.get("message", "")
        out[case.get("name", "")] = (verdict, message)
    return out


def cli_report(tmp_path: Path, *args: str) -> dict[str, dict[str, object]]:
    out = tmp_path / "cli.json"
    subprocess.run(
        [sys.executable, "-m", "nsprim", "conformance", "--format", "json", "-o", str(out), *args],
        check=False, capture_output=True, timeout=120,
    )  # fmt: skip
    return {r["id"]: r for r in json.loads(out.read_text())["results"] if r["type"] != "guard"}


def test_items_give_the_cli_verdicts(pytester: pytest.Pytester, tmp_path: Path) -> None:
    cli = cli_report(tmp_path, "--controls", "--only", *ONLY)
    xml = tmp_path / "items.xml"
    result = pytester.runpytest(
        *QUIET, "--nsprim-conformance", "--nsprim-controls", "-k", KEYWORDS, f"--junitxml={xml}"
    )
    items = junit_verdicts(xml)
    assert len(cli) == 6
    assert len(items) == 2 * len(cli)
    for check_id, row in cli.items():
        verdict, message = items[f"{check_id}[{row['catalogue_id']}]"]
        assert verdict == row["status"], (check_id, message, row["message"])
        if verdict == "SKIP":
            assert message == row["message"]
        # A control item passes exactly when the control FAILed, as it must.
        control, _ = items[f"{check_id}[{row['catalogue_id']}-control]"]
        expected = {"FAIL": "PASS", "SKIP": "SKIP", "ERROR": "ERROR"}.get(
            str(row["control"]), "FAIL"
        )
        assert control == expected, (check_id, row["control"])
    assert sum(1 for v, _ in items.values() if v == "FAIL") == result.parseoutcomes().get(
        "failed", 0
    )


REGISTERED = '''
import os

from nsprim.conformance.outcome import Fail, Skip
from nsprim.conformance.registry import check


@check("uts.zz_passes", catalogue="TST-01")
def passes(ctx):
    """A check that passes, and whose control fails."""
    if ctx.control:
        raise Fail("control run", expected="isolation", actual="none")


@check("uts.zz_fails", catalogue="TST-02")
def fails(ctx):
    """A guarantee this kernel breaks."""
    raise Fail("the parent saw it", expected="nothing", actual="everything")


@check("uts.zz_skips", catalogue="TST-03")
def skips(ctx):
    """A check that can't run here."""
    raise Skip("needs CONFIG_NOTHING")


@check("uts.zz_errors", catalogue="TST-04")
def errors(ctx):
    """A check with a bug."""
    raise RuntimeError("bug in the check")


@check("uts.zz_proves_nothing", catalogue="TST-05")
def proves_nothing(ctx):
    """A check that passes with and without isolation."""
'''


def test_every_verdict_maps_to_its_pytest_outcome(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(REGISTERED)
    xml = pytester.path / "out.xml"
    # In a subprocess: the registered checks must not stay in this process's registry.
    result = pytester.runpytest_subprocess(
        *QUIET, "--nsprim-conformance", "--nsprim-controls", "-k", "TST-", "-rs",
        f"--junitxml={xml}",
    )  # fmt: skip
    result.assert_outcomes(passed=4, failed=2, skipped=2, errors=2)
    items = junit_verdicts(xml)
    assert items["uts.zz_passes[TST-01]"] == ("PASS", "")
    assert items["uts.zz_passes[TST-01-control]"] == ("PASS", "")
    assert items["uts.zz_fails[TST-02]"][0] == "FAIL"
    assert items["uts.zz_skips[TST-03]"] == ("SKIP", "needs CONFIG_NOTHING")
    assert items["uts.zz_errors[TST-04]"][0] == "ERROR"
    assert items["uts.zz_proves_nothing[TST-05]"] == ("PASS", "")
    assert items["uts.zz_proves_nothing[TST-05-control]"][0] == "FAIL"
    result.stdout.fnmatch_lines(
        [
            "*uts.zz_fails (TST-02, MUST) FAIL: A guarantee this kernel breaks.",
            "*the parent saw it*",
            "expected: nothing",
            "actual:   everything",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of TST-04 uts.zz_errors *", "*RuntimeError*bug in the check*"]
    )
    result.stdout.fnmatch_lines(["*the negative control PASSed but must FAIL*"])
    result.stdout.fnmatch_lines(["SKIPPED [[]2[]] *: needs CONFIG_NOTHING"])

    # -x stops at the first failure; node ids carry the catalogue id.
    result = pytester.runpytest_subprocess(*QUIET, "--nsprim-conformance", "-k", "TST-", "-x", "-v")
    result.stdout.fnmatch_lines(["*collected * items / * deselected / 5 selected"])
    result.stdout.fnmatch_lines(["nsprim-conformance::uts.zz_passes[[]TST-01[]] PASSED*"])
    result.stdout.fnmatch_lines(["nsprim-conformance::uts.zz_fails[[]TST-02[]] FAILED*"])
    result.stdout.no_fnmatch_line("*zz_skips*SKIPPED*")
    assert result.ret == 1


def test_items_run_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(REGISTERED)
    result = pytester.runpytest_subprocess(
        *QUIET, "--nsprim-conformance", "-k", "TST- or UTS-01", "-n", "2"
    )
    result.assert_outcomes(passed=3, failed=1, skipped=1, errors=1)
