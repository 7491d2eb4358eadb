"""The PID checks (PID-01..23) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``):
every PID guarantee is observable from a user namespace too (set_tid needs
CAP_SYS_ADMIN only over the levels it sets, which the sandbox's user
namespace owns), so no check may SKIP here.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("pid")


@pytest.fixture(scope="module", params=PRIVILEGES)
def pid_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_pid_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"PID-{i:02d}" for i in range(1, 24)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_pid_check_passes_and_control_fails(pid_run: GroupRun, check_id: str) -> None:
    assert_conforms(pid_run, check_id)
