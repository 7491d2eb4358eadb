"""The mount namespace checks (MNT-01..10) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
like ``test_checks_uts.py``; see ``conformance_helpers.py``.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("mnt")


@pytest.fixture(scope="module", params=PRIVILEGES)
def mnt_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_mnt_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"MNT-{i:02d}" for i in range(1, 11)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_mnt_check_passes_and_control_fails(mnt_run: GroupRun, check_id: str) -> None:
    assert_conforms(mnt_run, check_id)
