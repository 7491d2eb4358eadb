"""The plugin run by ``nobody``: rootless by default, same reports, same suite verdicts as the CLI.

pytest runs as uid 65534 on /usr/bin/python3 with a world-readable copy of
nsprim and pytest (see ``_rootless.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._rootless import NOBODY, RootlessEnv
from .test_conformance_items import junit_verdicts

pytestmark = pytest.mark.needs_root

OUTCOMES = """
import os, socket, time, pytest

@pytest.mark.namespaces("net", "uts", hostname="rootless")
def test_root_of_its_own_user_namespace():
    with open("/proc/self/uid_map") as f:
        assert f.read().split() == ["0", str(NOBODY), "1"]
    assert os.getuid() == 0 and socket.gethostname() == "rootless"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 80))

@pytest.mark.namespaces("net")
def test_fails():
    got = {"uid": os.getuid()}
    assert got == {"uid": 1}, "wrong uid"

@pytest.mark.namespaces("uts")
def test_skips():
    pytest.skip("skipped inside")

@pytest.mark.namespaces("uts")
@pytest.mark.xfail(raises=PermissionError, strict=True)
def test_host_files_stay_out_of_reach():
    # root of a user namespace is still nobody for the host's files
    open("/etc/shadow").close()

def test_fixtures(netns, isolated_hostname, private_mounts):
    peer = netns.add_peer()
    assert peer.call(socket.gethostname) == isolated_hostname
    (private_mounts / "f").write_text("x")

@pytest.mark.namespaces("net", timeout=0.5)
def test_times_out():
    time.sleep(30)
""".replace("NOBODY", str(NOBODY))


@pytest.fixture(scope="module")
def nobody() -> Iterator[RootlessEnv]:
    env = RootlessEnv()
    try:
        yield env
    finally:
        env.close()


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is under *directory* (ours; others run as nobody too)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/cwd").startswith(str(directory)):
                    out.append(int(name))
            except OSError:
                continue
    return out


def test_marker_as_nobody_reports_like_pytest(nobody: RootlessEnv) -> None:
    nobody.write("test_outcomes.py", OUTCOMES)
    r = nobody.pytest("-rsx", "test_outcomes.py")
    out = r.stdout
    assert "3 failed" not in out
    assert "2 failed, 2 passed, 1 skipped, 1 xfailed" in out, out + r.stderr
    for line in (
        '>       assert got == {"uid": 1}, "wrong uid"',
        "E       AssertionError: wrong uid",
        "E       assert {'uid': 0} == {'uid': 1}",
        "test_outcomes.py:15: AssertionError",
        "SKIPPED [1] test_outcomes.py:19: skipped inside",
        "XFAIL test_outcomes.py::test_host_files_stay_out_of_reach",
    ):
        assert line in out, line
    assert "ran longer than its 0.5 s timeout" in out
    # nothing the run started is left running
    assert _processes_in(nobody.base) == []


def test_suite_items_as_nobody_give_the_cli_verdicts(nobody: RootlessEnv, tmp_path: Path) -> None:
    # Rootless, some of these SKIP (no cgroup delegation, too few ids mapped).
    ids = ("UTS-01", "IPC-01", "PID-01", "NET-01", "MNT-01", "USR-05", "USR-06", "CG-01")
    report = tmp_path / "cli.json"
    subprocess.run(
        [sys.executable, "-m", "nsprim", "conformance", "--as-user", "nobody", "--format", "json",
         "-o", str(report), "--only", *ids],
        check=False, capture_output=True, timeout=120,
    )  # fmt: skip
    cli = {r["id"]: r for r in json.loads(report.read_text())["results"] if r["type"] != "guard"}
    xml = nobody.work / "items.xml"
    nobody.pytest("--nsprim-conformance", "-k", " or ".join(ids), f"--junitxml={xml}")
    items = junit_verdicts(xml)
    assert len(items) == len(cli) == len(ids)
    for check_id, row in cli.items():
        verdict, message = items[f"{check_id}[{row['catalogue_id']}]"]
        assert verdict == row["status"], (check_id, message, row["message"])
        if verdict == "SKIP":
            assert message == row["message"]
