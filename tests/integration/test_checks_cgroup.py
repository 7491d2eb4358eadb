"""The cgroup checks (CG-01..09) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``).
Rootless, the cgroup2 hierarchy is not writable, so every check that needs
cgroups of its own must SKIP and say so (CG-09 needs none and must PASS).
The checks create cgroups in the host's hierarchy (under the runner's own
cgroup) and must remove every one of them: the runner's guard does not
watch cgroups, so this test does.
"""

from __future__ import annotations

import os

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group

CHECKS = group_checks("cgroup")
PREFIX = "nsprim-cgroup-"
#: Checks that create no cgroup, so they run rootless too.
NEEDS_NO_CGROUP = {"cgroup.unshare_needs_privilege"}


def _own_cgroup_dir() -> str | None:
    """The directory of this process's cgroup v2, found through a cgroup2 mount of its root."""
    with open("/proc/self/cgroup") as f:
        path = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    if path is None:
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[:1] == ["cgroup2"] and fields[3] == "/":
                return os.path.join(fields[4], path.lstrip("/"))
    return None


def _ours() -> set[str]:
    top = _own_cgroup_dir()
    if top is None:
        return set()
    return {name for name in os.listdir(top) if name.startswith(PREFIX)}


@pytest.fixture(scope="module", params=PRIVILEGES)
def cgroup_run(request: pytest.FixtureRequest) -> tuple[GroupRun, set[str]]:
    before = _ours()
    run = run_group(CHECKS, request.param)
    return run, _ours() - before


def test_cgroup_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"CG-0{i}" for i in range(1, 10)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_cgroup_check_passes_and_control_fails(
    cgroup_run: tuple[GroupRun, set[str]], check_id: str
) -> None:
    assert_conforms(cgroup_run[0], check_id, allow_skip="not writable here")


def test_cgroup_checks_skip_only_when_rootless(cgroup_run: tuple[GroupRun, set[str]]) -> None:
    run = cgroup_run[0]
    skipped = sorted(i for i, r in run.by_id.items() if r.status.value == "SKIP")
    if run.privileges == "root":
        assert skipped == []
    else:
        assert skipped == sorted(c.id for c in CHECKS if c.id not in NEEDS_NO_CGROUP)


def test_cgroup_checks_remove_their_cgroups(cgroup_run: tuple[GroupRun, set[str]]) -> None:
    assert _own_cgroup_dir() is not None, "no cgroup2 mount of the hierarchy root to look in"
    assert cgroup_run[1] == set()
