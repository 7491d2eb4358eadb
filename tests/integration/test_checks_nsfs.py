"""The nsfs/cross-cutting checks (NS-01..21) PASS on this kernel and their controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
after ``test_checks_uts.py``. Under a seccomp filter that refuses setns(2) or
ioctl(2) (installed in a throwaway child, as ``test_checks_policy.py`` does),
every check that relies on the refused call is a SKIP naming the filter,
never a FAIL or an ERROR.
"""

from __future__ import annotations

import errno
import os
import re

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group
from forked import in_child
from nsprim.conformance import runner

CHECKS = group_checks("nsfs")


@pytest.fixture(scope="module", params=PRIVILEGES)
def nsfs_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_nsfs_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"NS-{i:02d}" for i in range(1, 22)]


_BY_ID = {c.id: c for c in CHECKS}
_RELEASE = re.match(r"(\d+)\.(\d+)", os.uname().release)
assert _RELEASE
_KERNEL = (int(_RELEASE.group(1)), int(_RELEASE.group(2)))


def _allowed_skip(check_id: str, privileges: str) -> str | None:
    """The SKIP a check may give here: a kernel older than it needs, or no root for a root check."""
    needs = _BY_ID[check_id].needs
    if needs.min_kernel > _KERNEL:
        return f"needs Linux {needs.min_kernel[0]}.{needs.min_kernel[1]}"
    if needs.root and privileges != "root":
        return "needs root"
    return None


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_nsfs_check_passes_and_control_fails(nsfs_run: GroupRun, check_id: str) -> None:
    assert_conforms(nsfs_run, check_id, allow_skip=_allowed_skip(check_id, nsfs_run.privileges))


def _run_filtered(syscall: str) -> list[tuple[str, str, str]]:
    from nsprim import seccomp

    seccomp.install([seccomp.Rule(syscall, errno.EPERM)])
    run = runner.run(CHECKS, controls=True)
    return [(r.catalogue_id, r.status.value, r.message) for r in run.results if r.type != "guard"]


#: Checks that neither join by setns(2) nor compare an ioctl's answer, per refused call.
_UNAFFECTED = {
    "setns": {"NS-03", "NS-10", "NS-11", "NS-14", "NS-16", "NS-17", "NS-18", "NS-19", "NS-20"},
    "ioctl": {"NS-08", "NS-13", "NS-14"},
}


@pytest.mark.skipif(os.geteuid() != 0, reason="the runner tests drive it from root")
@pytest.mark.parametrize(
    ("syscall", "cause"),
    [
        ("setns", "a seccomp filter returns EPERM for setns(2)"),
        ("ioctl", "ioctl(2) on nsfs files is refused here (EPERM)"),
    ],
)
def test_nsfs_refused_call_is_a_skip_naming_its_cause(syscall: str, cause: str) -> None:
    pytest.importorskip("nsprim.seccomp")
    results = in_child(_run_filtered, syscall, timeout=100)
    assert {r[0] for r in results} == {c.catalogue_id for c in CHECKS}
    by_catalogue = {c.catalogue_id: c for c in CHECKS}
    for check_id, status, message in results:
        if by_catalogue[check_id].needs.min_kernel > _KERNEL:
            assert status == "SKIP" and "needs Linux" in message, (check_id, status, message)
        elif check_id in _UNAFFECTED[syscall]:
            assert status == "PASS", (check_id, status, message)
        else:
            assert status == "SKIP", (check_id, status, message)
            assert cause in message, (check_id, message)
