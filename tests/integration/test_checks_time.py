"""The TIME checks (TIME-01..09) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
like ``test_checks_uts.py``; see ``conformance_helpers.py``.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("time")


@pytest.fixture(scope="module", params=PRIVILEGES)
def time_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_time_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"TIME-{i:02d}" for i in range(1, 10)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_time_check_passes_and_control_fails(time_run: GroupRun, check_id: str) -> None:
    assert_conforms(time_run, check_id)
