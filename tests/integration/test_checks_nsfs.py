"""The nsfs/cross-cutting checks (NS-01..06) PASS on this kernel and their controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
after ``test_checks_uts.py``.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("nsfs")


@pytest.fixture(scope="module", params=PRIVILEGES)
def nsfs_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_nsfs_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"NS-0{i}" for i in range(1, 7)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_nsfs_check_passes_and_control_fails(nsfs_run: GroupRun, check_id: str) -> None:
    assert_conforms(nsfs_run, check_id)
