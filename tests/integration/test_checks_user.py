"""The user namespace checks (USR-01..21) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
like ``test_checks_uts.py``; see ``conformance_helpers.py``.
"""

from __future__ import annotations

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("user")

# Rootless, the sandbox's user namespace maps a single id and (to write its own
# gid_map) denies setgroups for itself and every child: these checks can't show
# their guarantee there and must SKIP, saying why. As root they must PASS.
ROOTLESS_SKIPS = {
    "user.unprivileged_map_rules": "a rootless sandbox maps one id",
    "user.large_maps": "a rootless sandbox maps one id",
    "user.setgroups_deny_permanent": "already has setgroups=deny",
    "user.map_within_parent": "a rootless sandbox maps one id",
    "user.map_opener_credentials": "a rootless sandbox maps one id",
}


@pytest.fixture(scope="module", params=PRIVILEGES)
def user_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_user_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"USR-{i:02d}" for i in range(1, 22)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_user_check_passes_and_control_fails(user_run: GroupRun, check_id: str) -> None:
    allow = ROOTLESS_SKIPS.get(check_id) if user_run.privileges != "root" else None
    assert_conforms(user_run, check_id, allow_skip=allow)
