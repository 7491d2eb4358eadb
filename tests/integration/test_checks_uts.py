"""The UTS checks (UTS-01..06) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``).
This file is the model for ``test_checks_<group>.py``; see
``conformance_helpers.py``.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("uts")


@pytest.fixture(scope="module", params=PRIVILEGES)
def uts_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_uts_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"UTS-0{i}" for i in range(1, 7)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_uts_check_passes_and_control_fails(uts_run: GroupRun, check_id: str) -> None:
    assert_conforms(uts_run, check_id)
