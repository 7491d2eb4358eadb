"""A refusal by policy is a SKIP naming its cause, never a FAIL: checks declare what they rely on.

Real environments, built with a seccomp filter in a throwaway child (nothing
reaches the host): the checks whose guarantee is about an errno, or that
set a hostname, join by setns(2) or clone3(2) on the way, declare those
operations (``Needs(ops=...)``), so where a filter refuses them the runner
SKIPs the check with the filter named, instead of reporting the filter's
EPERM/ENOSYS as the kernel breaking the rule (the podman case of UTS-05).
"""

from __future__ import annotations

import errno
import os

import pytest
from forked import in_child
from nsprim.conformance import runner
from nsprim.conformance.registry import load_checks, select

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the runner tests drive it from root")
seccomp = pytest.importorskip("nsprim.seccomp")


def _run_filtered(patterns: list[str], rules: list[tuple[str, int]]) -> list[tuple[str, str, str]]:
    seccomp.install([seccomp.Rule(name, err) for name, err in rules])
    run = runner.run(select(load_checks(), patterns), controls=True)
    return [(r.catalogue_id, r.status.value, r.message) for r in run.results if r.type != "guard"]


@pytest.mark.parametrize(
    ("patterns", "rules", "cause"),
    [
        (
            ["uts.*"],
            [("sethostname", errno.EPERM), ("setdomainname", errno.EPERM)],
            "seccomp filter returns EPERM for set",
        ),
        (
            ["NS-02", "NS-04", "NS-05", "TIME-09", "USR-12", "USR-13"],
            [("setns", errno.EPERM)],
            "seccomp filter returns EPERM for setns",
        ),
        (["MNT-07"], [("clone3", errno.ENOSYS)], "clone3"),
    ],
    ids=["sethostname-refused", "setns-refused", "clone3-refused"],
)
def test_refused_operation_is_a_skip_naming_its_cause(
    patterns: list[str], rules: list[tuple[str, int]], cause: str
) -> None:
    results = in_child(_run_filtered, patterns, rules, timeout=100)
    assert results
    for check_id, status, message in results:
        assert status == "SKIP", (check_id, status, message)
        assert cause in message, (check_id, message)
