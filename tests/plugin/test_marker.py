"""The pytest plugin's marker and fixtures, run by pytest's own ``pytester``.

Each test writes a small test module, runs pytest on it (in this process, or
in a subprocess where a signal is involved) and checks what pytest reported.
The per-test leak guard (tests/conftest.py) checks that the inner runs left
no fd, child, mount, interface or hostname behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.needs_root

HOST_NET = os.stat("/proc/self/ns/net").st_ino
# The inner runs need neither a cache nor hypothesis (whose import dominates their time).
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def _inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


OUTCOMES = f"""
import os, socket, sys, time, pytest

HOST_NET = {HOST_NET}

@pytest.mark.namespaces("net", "uts", hostname="inner")
def test_passes(tmp_path):
    assert os.stat("/proc/self/ns/net").st_ino != HOST_NET
    assert socket.gethostname() == "inner"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 80))
    (tmp_path / "pid").write_text(str(os.getpid()))

@pytest.mark.namespaces("net")
def test_fails():
    values = [1, 2]
    print("printed by the child")
    assert values == [1, 3], "values differ"

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

@pytest.mark.namespaces("net")
def test_errors(broken):
    pass

@pytest.mark.namespaces("uts")
def test_skips():
    pytest.skip("not in here")

@pytest.mark.namespaces("uts")
@pytest.mark.xfail(raises=ZeroDivisionError, strict=True)
def test_xfails():
    1 / 0

@pytest.mark.namespaces("uts")
@pytest.mark.xfail(strict=True)
def test_xpasses_strictly():
    pass

@pytest.mark.namespaces("net", timeout=0.5)
def test_times_out():
    time.sleep(30)
"""


def test_marker_reports_each_outcome_as_pytest_does(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=OUTCOMES)
    t0 = time.monotonic()
    result = _inner(pytester, "-rsxX")
    assert time.monotonic() - t0 < 20  # the 30 s sleep was cut by the timeout
    result.assert_outcomes(passed=1, failed=3, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            # the failing assertion: rewritten, with its source line and message
            "*_ test_fails _*",
            '    @pytest.mark.namespaces("net")',
            "    def test_fails():",
            "        values = [1, 2]",
            '>       assert values == [1, 3], "values differ"',
            "E       AssertionError: values differ",
            "E       assert [1, 2] == [1, 3]",
            "*At index 1 diff: 2 != 3*",
            "test_inner.py:17: AssertionError",
            "*- Captured stdout call -*",
            "printed by the child",
        ]
    )
    result.stdout.fnmatch_lines(["*ERROR at setup of test_errors*", "*RuntimeError: fixture broke"])
    result.stdout.fnmatch_lines(["*test_times_out*", "*ran longer than its 0.5 s timeout*"])
    result.stdout.fnmatch_lines(["*[XPASS(strict)]*"])
    result.stdout.fnmatch_lines(["SKIPPED [1] test_inner.py:29: not in here"])
    result.stdout.fnmatch_lines(["XFAIL test_inner.py::test_xfails"])


def test_marker_captures_sys_level_output_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_out="""
        import sys, pytest

        @pytest.mark.namespaces("uts")
        def test_prints(capsys):
            print("to capsys")
            assert capsys.readouterr().out == "to capsys\\n"
            print("left over")
            sys.stderr.write("on stderr\\n")
            assert False
        """
    )
    result = _inner(pytester, "--capture=sys")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*- Captured stdout call -*", "left over", "*- Captured stderr call -*", "on stderr"]
    )


def test_marker_is_rootless_by_default_only_without_root(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import os, pytest

        @pytest.mark.namespaces("net")
        def test_root_without_user_namespace():
            # As root no user namespace is added: the body is real root.
            with open("/proc/self/uid_map") as f:
                assert f.read().split() == ["0", "0", "4294967295"]

        @pytest.mark.namespaces("net", map_root=True)
        def test_map_root_adds_one():
            with open("/proc/self/uid_map") as f:
                assert f.read().split() == ["0", "0", "1"]

        @pytest.mark.namespaces("pid", "mnt", mount_proc=True)
        def test_pid_namespace_with_its_proc():
            assert os.getpid() == 1
            assert sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) == [1]
        """
    )
    result = _inner(pytester)
    result.assert_outcomes(passed=3)


def test_marker_rejects_bad_arguments_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.namespaces("net", colour="red")
        def test_unknown_keyword():
            pass

        @pytest.mark.namespaces("bogus")
        def test_unknown_type():
            pass

        @pytest.mark.namespaces("uts", timeout=-1)
        def test_bad_timeout():
            pass
        """
    )
    result = _inner(pytester)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*TypeError: @pytest.mark.namespaces got an unknown keyword 'colour'*"]
    )
    result.stdout.fnmatch_lines(["*ValueError*bogus*"])
    result.stdout.fnmatch_lines(["*ValueError: timeout must be seconds (a number >= 0), got -1"])


FIXTURES = """
import os, socket, sys, pytest
from nsprim import PIPE, syscalls

SERVER = '''
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 80))
s.listen()
print("ready", flush=True)
c, _ = s.accept()
c.sendall(c.recv(100).upper())
'''

def test_peer_over_veth(netns):
    peer = netns.add_peer("10.77.0.1/24", "10.77.0.2/24")
    assert (peer.local_address, peer.address) == ("10.77.0.1", "10.77.0.2")
    server = peer.spawn([sys.executable, "-c", SERVER, peer.address], stdout=PIPE)
    with server:
        assert server.stdout.readline() == b"ready\\n"
        with socket.create_connection((peer.address, 80), timeout=5) as c:
            c.sendall(b"hello")
            assert c.recv(100) == b"HELLO"
        assert server.wait(5) == 0
    # the peer namespace is not ours
    assert peer.call(os.stat, "/proc/self/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino

def test_hostname(isolated_hostname):
    assert socket.gethostname() == isolated_hostname
    socket.sethostname("changed-by-a-test")
    assert socket.gethostname() == "changed-by-a-test"

@pytest.mark.namespaces(hostname="chosen")
def test_hostname_from_marker(isolated_hostname):
    assert isolated_hostname == socket.gethostname() == "chosen"

@pytest.fixture
def scratch(private_mounts):
    return private_mounts / "scratch"

def test_fixture_through_another_fixture(scratch, isolated_hostname):
    # private_mounts was asked for by a fixture only: still mounted in here
    with open("/proc/self/mountinfo") as f:
        assert any(line.split()[4] == str(scratch.parent) for line in f)
    assert socket.gethostname() == isolated_hostname

def test_mounts(private_mounts):
    with open("/proc/self/mountinfo") as f:
        assert any(line.split()[4] == str(private_mounts) and " tmpfs " in line for line in f)
    (private_mounts / "inside").write_text("x")
    os.mkdir(private_mounts / "sub")
    syscalls.mount("none", str(private_mounts / "sub"), "tmpfs")
"""


def test_fixtures_run_the_body_in_their_namespaces(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fixtures=FIXTURES)
    host = socket.gethostname()
    result = _inner(pytester, "--basetemp", str(pytester.path / "bt"))
    result.assert_outcomes(passed=5)
    assert socket.gethostname() == host
    # The tmpfs lived in the test's mount namespace only: the directory is empty here.
    mounted = [p for p in (pytester.path / "bt").rglob("private_mounts*") if p.is_dir()]
    assert mounted and all(not any(p.iterdir()) for p in mounted)
    with open("/proc/self/mountinfo") as f:
        assert "private_mounts" not in f.read()


def test_own_fixture_named_netns_does_not_imply_namespaces(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_own=f"""
        import os, pytest

        @pytest.fixture
        def netns():
            return "mine"

        def test_in_host_namespace(netns):
            assert netns == "mine"
            assert os.stat("/proc/self/ns/net").st_ino == {HOST_NET}
        """
    )
    _inner(pytester).assert_outcomes(passed=1)


INTERRUPTED = """
import os, time, pytest

@pytest.mark.namespaces("net", "pid")
def test_sleeps(tmp_path_factory):
    here = os.environ["MARK_DIR"]
    with open(os.path.join(here, "net"), "w") as f:
        f.write(str(os.stat("/proc/self/ns/net").st_ino))
    time.sleep(60)
"""

CONFTEST = """
import os

def pytest_sessionfinish(session, exitstatus):
    # Still inside pytest, after the interruption: is the child still around?
    here = os.environ["MARK_DIR"]
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2:].split()[1] == str(os.getpid()):
                kids.append(name)
    with open(os.path.join(here, "children"), "w") as f:
        f.write(" ".join(kids))
"""


def _ns_in_use(inode: int, under: Path) -> bool:
    """Whether a process working under *under* (the inner run's) is in net namespace *inode*.

    Processes elsewhere don't count: a freed namespace's inode number can be
    given to anyone's new namespace at once.
    """
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/net").st_ino == inode and os.readlink(
                    f"/proc/{name}/cwd"
                ).startswith(str(under)):
                    return True
            except OSError:
                continue
    return False


def test_interrupted_pytest_kills_and_reaps_the_child(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_interrupted=INTERRUPTED)
    pytester.makeconftest(CONFTEST)
    marks = pytester.mkdir("marks")
    env = dict(os.environ, MARK_DIR=str(marks))
    with subprocess.Popen(
        [sys.executable, "-m", "pytest", *QUIET, "-q"],
        cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as proc:  # fmt: skip
        deadline = time.monotonic() + 20
        while not (marks / "net").exists() or not (marks / "net").read_text():
            assert time.monotonic() < deadline, "the test body never started"
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.02)
        inode = int((marks / "net").read_text())
        assert _ns_in_use(inode, pytester.path)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == 2, text  # pytest's "interrupted"
    assert "KeyboardInterrupt" in text
    assert (marks / "children").read_text() == ""  # killed and reaped before pytest ended
    assert not _ns_in_use(inode, pytester.path)


def test_plugin_is_not_imported_by_nsprim() -> None:
    code = "import sys, nsprim, nsprim.aio; print('pytest' in sys.modules, 'nsprim.pytest_plugin' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_entry_point_registers_the_plugin() -> None:
    from importlib.metadata import entry_points

    eps = entry_points(group="pytest11")
    assert any(ep.value == "nsprim.pytest_plugin" for ep in eps)
