"""The mount namespace checks (MNT-01..19) PASS on this kernel and their negative controls FAIL.

Runs through the real runner, as root and rootless (``--as-user nobody``),
like ``test_checks_uts.py``; see ``conformance_helpers.py``.
"""

from __future__ import annotations

import errno

import pytest
from conformance_helpers import PRIVILEGES, GroupRun, assert_conforms, group_checks, run_group
from forked import in_child

CHECKS = group_checks("mnt")
#: Checks that can't be made rootless, and the reason they must name (a one-id user namespace).
_ROOTLESS_SKIPS = {
    "mnt.idmap_not_initial_userns": "the initial one can't be opened from there",
    "mnt.idmap_owner_on_disk": "maps a single id",
    # Only while a host procfs is mounted elsewhere (a VM matrix's chroot): locked rootless.
    "mnt.userns_fs_mount_rules": "another procfs is mounted at",
}


@pytest.fixture(scope="module", params=PRIVILEGES)
def mnt_run(request: pytest.FixtureRequest) -> GroupRun:
    return run_group(CHECKS, request.param)


def test_mnt_group_covers_the_catalogue() -> None:
    assert sorted(c.catalogue_id for c in CHECKS) == [f"MNT-{i:02d}" for i in range(1, 20)]


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_mnt_check_passes_and_control_fails(mnt_run: GroupRun, check_id: str) -> None:
    allow = _ROOTLESS_SKIPS.get(check_id) if mnt_run.privileges != "root" else None
    assert_conforms(mnt_run, check_id, allow_skip=allow)


@pytest.mark.needs_root
@pytest.mark.parametrize("where", ["/var/tmp", "/tmp"])
@pytest.mark.parametrize("privileges", PRIVILEGES)
def test_mnt10_is_not_fooled_by_another_visible_procfs(
    tmp_path, privileges: str, where: str
) -> None:
    """A fully visible procfs elsewhere (a chroot's /proc being built) lets the kernel allow
    the user namespace's procfs mount even with /proc/sys masked: MNT-10 must then detach
    it from its private copy (root) or SKIP naming it (rootless, where it is locked), never
    FAIL. Regression: it FAILed while CI debootstrapped a root next to the run. Under /tmp
    the runner's sandbox mounts its own /tmp over it (hidden, it still counts for the
    kernel): as root MNT-10 must uncover it in its private copy and still PASS (it SKIPped
    while a VM matrix built its root under /tmp)."""
    import json
    import pathlib
    import subprocess
    import sys
    import tempfile

    extra = pathlib.Path(tempfile.mkdtemp(prefix="nsprim-mnt10-", dir=where))
    tmp_path.chmod(0o755)
    report = tmp_path / "report.json"
    who = [] if privileges == "root" else ["--as-user", privileges]
    nsprim = [sys.executable, "-m", "nsprim"]
    inner = [*nsprim, "conformance", "--only", "mnt.userns_fs_mount_rules", "--controls",
             "--format", "json", "-o", str(report), *who]  # fmt: skip
    script = 'mount -t proc proc "$0" && exec "$@"'
    # A private mount namespace of the test's own: the extra procfs never reaches the host.
    try:
        subprocess.run([*nsprim, "run", "-m", "--", "sh", "-c", script, str(extra), *inner],
                       check=False, timeout=60)  # fmt: skip
    finally:
        extra.rmdir()
    (result,) = json.loads(report.read_text())["results"][:1]
    if privileges == "root":
        assert (result["status"], result["control"]) == ("PASS", "FAIL"), result
    else:
        assert result["status"] in ("PASS", "SKIP"), result
        if result["status"] == "SKIP":
            assert "another procfs is mounted at" in result["message"], result


def _run_filtered(patterns: list[str], rules: list[tuple[str, int]]) -> list[tuple[str, str, str]]:
    from nsprim.conformance import runner
    from nsprim.conformance.registry import load_checks, select

    from nsprim import seccomp

    seccomp.install([seccomp.Rule(name, err) for name, err in rules])
    run = runner.run(select(load_checks(), patterns), controls=True)
    return [(r.catalogue_id, r.status.value, r.message) for r in run.results if r.type != "guard"]


@pytest.mark.needs_root
@pytest.mark.parametrize(
    ("patterns", "rules", "cause"),
    [
        (["MNT-1[1-7]"], [("mount_setattr", errno.EPERM)], "seccomp filter returns EPERM"),
        (["MNT-1[1-5]"], [("open_tree", errno.EPERM)], "seccomp filter returns EPERM"),
        (["MNT-1[1-5]", "MNT-18", "MNT-19"], [("move_mount", errno.ENOSYS)], "move_mount"),
    ],
    ids=["mount_setattr-refused", "open_tree-refused", "move_mount-absent"],
)
def test_mnt_refusal_by_policy_is_a_skip(
    patterns: list[str], rules: list[tuple[str, int]], cause: str
) -> None:
    """A seccomp filter refusing a call the new mount checks make is a SKIP naming it."""
    pytest.importorskip("nsprim.seccomp")
    results = in_child(_run_filtered, patterns, rules, timeout=100)
    assert results
    for check_id, status, message in results:
        assert status == "SKIP", (check_id, status, message)
        assert cause in message, (check_id, message)


def test_new_mnt_checks_declare_the_kernel_they_hold_from() -> None:
    """The kernel each MNT-11.. guarantee needs (older kernels SKIP naming it): idmapped mounts
    of tmpfs (6.3; MOUNT_ATTR_IDMAP itself is 5.12), mount_setattr (5.12), set-group (5.15)."""
    since = {c.catalogue_id: c.needs.min_kernel for c in CHECKS if c.catalogue_id >= "MNT-11"}
    assert since == {
        **dict.fromkeys(("MNT-11", "MNT-12", "MNT-13", "MNT-14", "MNT-15"), (6, 3)),
        "MNT-16": (5, 12),
        "MNT-17": (5, 12),
        "MNT-18": (5, 15),
        "MNT-19": (5, 15),
    }
