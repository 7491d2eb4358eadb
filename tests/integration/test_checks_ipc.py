"""The IPC checks (IPC-01..07) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
after ``test_checks_uts.py``.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("ipc")


@pytest.fixture(scope="module", params=PRIVILEGES)
def ipc_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_ipc_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"IPC-0{i}" for i in range(1, 8)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_ipc_check_passes_and_control_fails(ipc_run: GroupRun, check_id: str) -> None:
    assert_conforms(ipc_run, check_id)
