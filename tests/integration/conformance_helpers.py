"""Helpers for the per-group conformance tests (``test_checks_<group>.py``).

A group's test runs the group's checks once through the real runner (each in
its own sandbox, with controls), then asserts per check that it PASSes and
that its negative control FAILs. Copy ``test_checks_uts.py``::

    from conformance_helpers import PRIVILEGES, assert_conforms, group_checks, run_group

    CHECKS = group_checks("ipc")

    @pytest.fixture(scope="module", params=PRIVILEGES)
    def ipc_run(request):
        return run_group(CHECKS, request.param)

    @pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
    def test_ipc_check_passes_and_control_fails(ipc_run, check_id):
        assert_conforms(ipc_run, check_id)

A check that must SKIP somewhere (e.g. ``Needs(root=True)`` under
``nobody``) is accepted as SKIP only when its reason matches ``allow_skip``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from nsprim.conformance import runner
from nsprim.conformance.outcome import CheckResult, Outcome
from nsprim.conformance.registry import Check, load_checks, select

__all__ = ["PRIVILEGES", "GroupRun", "assert_conforms", "group_checks", "run_group"]

#: Run every group as root and rootless (``--as-user nobody``); rootless needs root to drop.
PRIVILEGES = ("root", "nobody")


class GroupRun:
    """The results of one runner run, keyed by check id, plus how it ran."""

    def __init__(self, run: runner.Run, privileges: str) -> None:
        self.run = run
        self.privileges = privileges
        self.by_id: dict[str, CheckResult] = {r.id: r for r in run.results}

    def guard_results(self) -> list[CheckResult]:
        """The host-guard results (each one is a leak)."""
        return [r for r in self.run.results if r.type == "guard"]


def group_checks(prefix: str) -> list[Check]:
    """Return the registered checks of one group (``"uts"`` → ``uts.*``)."""
    return select(load_checks(), [f"{prefix}.*"])


def run_group(checks: Sequence[Check], privileges: str = "root") -> GroupRun:
    """Run *checks* with controls, as root or rootless as *privileges* (a user name).

    Skips the calling test when it needs root and isn't root.
    """
    if os.geteuid() != 0:
        pytest.skip("the conformance runner tests drive both privilege levels from root")
    as_user = None if privileges == "root" else privileges
    run = runner.run(checks, controls=True, as_user=as_user)
    return GroupRun(run, privileges)


def _describe(r: CheckResult) -> str:
    text = f"{r.id} [{r.catalogue_id}]: status {r.status.value}, control {r.control}"
    if r.message:
        text += f"\n  message: {r.message}"
    if r.expected is not None or r.actual is not None:
        text += f"\n  expected {r.expected}, actual {r.actual}"
    if r.control_message:
        text += f"\n  control message: {r.control_message}"
    return text


def assert_conforms(group: GroupRun, check_id: str, allow_skip: str | None = None) -> None:
    """Assert that *check_id* PASSed and its control FAILed, and that nothing leaked.

    Args:
        group: the result of :func:`run_group`.
        check_id: the check to look at.
        allow_skip: a substring of an acceptable SKIP reason (e.g. ``"needs root"``).
    """
    assert not group.guard_results(), "\n".join(_describe(r) for r in group.guard_results())
    r = group.by_id[check_id]
    if allow_skip is not None and r.status is Outcome.SKIP and allow_skip in r.message:
        return
    assert r.status is Outcome.PASS, f"({group.privileges}) " + _describe(r)
    assert r.control is Outcome.FAIL, f"({group.privileges}) not discriminating: " + _describe(r)
