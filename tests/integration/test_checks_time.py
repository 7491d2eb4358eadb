"""The TIME checks (TIME-01..15) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
like ``test_checks_uts.py``; see ``conformance_helpers.py``.
"""

from __future__ import annotations

import errno

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group
from forked import in_child

CHECKS = group_checks("time")


@pytest.fixture(scope="module", params=PRIVILEGES)
def time_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_time_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"TIME-{i:02d}" for i in range(1, 16)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_time_check_passes_and_control_fails(time_run: GroupRun, check_id: str) -> None:
    assert_conforms(time_run, check_id)


def _run_filtered(patterns: list[str], rules: list[tuple[str, int]]) -> list[tuple[str, str, str]]:
    from nsprim.conformance import runner
    from nsprim.conformance.registry import load_checks, select

    from nsprim import seccomp

    seccomp.install([seccomp.Rule(name, err) for name, err in rules])
    run = runner.run(select(load_checks(), patterns), controls=True)
    return [(r.catalogue_id, r.status.value, r.message) for r in run.results if r.type != "guard"]


@pytest.mark.needs_root
def test_time14_setns_refused_by_policy_is_a_skip() -> None:
    """TIME-14 relies on setns(2): a seccomp filter's EPERM makes it a SKIP naming the filter."""
    pytest.importorskip("nsprim.seccomp")
    results = in_child(_run_filtered, ["TIME-14"], [("setns", errno.EPERM)], timeout=100)
    assert [r[:2] for r in results] == [("TIME-14", "SKIP")], results
    assert "seccomp filter returns EPERM for setns" in results[0][2], results


def test_new_time_checks_declare_the_kernel_they_hold_from() -> None:
    """execve(2) switching to time_for_children is Linux 6.2 (2b5f9dad32ed); the rest 5.6."""
    since = {c.catalogue_id: c.needs.min_kernel for c in CHECKS if c.catalogue_id >= "TIME-10"}
    assert since == {"TIME-10": (6, 2), **{f"TIME-{i}": (5, 6) for i in range(11, 16)}}
