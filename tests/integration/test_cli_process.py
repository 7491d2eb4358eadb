"""``nsprim run`` / ``nsprim enter`` against util-linux ``unshare`` / ``nsenter`` on the same commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nsprim.process as process
from nsprim.cli import command_parser
from nsprim.cli import enter as cli_enter
from nsprim.cli import run as cli_run

pytestmark = pytest.mark.needs_root


def nsprim(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "nsprim", *args], capture_output=True, input=input, timeout=60
    )


def util(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), capture_output=True, timeout=60)


@pytest.mark.parametrize(
    ("ours", "theirs", "script"),
    [
        (["-p", "--mount-proc"], ["-pf", "--mount-proc"], "echo $$; readlink /proc/self"),
        (["-u"], ["-uf"], "hostname ns-cli; hostname"),
        (["-r"], ["-rf"], "id -u; id -g; cat /proc/self/uid_map"),
        (["-n"], ["-nf"], "ls /sys/class/net | wc -l; cat /proc/net/dev | wc -l"),
        (["-U", "--map-user=1000", "--map-group=1000"], ["-Uf", "--map-user=1000", "--map-group=1000"],
         "id -u; id -g; cat /proc/self/setgroups"),
        (["-T", "--monotonic", "86400"], ["-Tf", "--monotonic", "86400"],
         "cut -d. -f1 /proc/uptime | cut -c1-2"),
        # -S/-G after the namespaces are set up, -c maps you to yourself
        (["-u", "-S", "65534", "-G", "65534"], ["-uf", "-S", "65534", "-G", "65534"],
         "id -u; id -g; id -G"),
        (["-c"], ["-cf"], "id -u; cat /proc/self/uid_map /proc/self/setgroups"),
        (["-r", "-S", "1"], ["-rf", "-S", "1"], "true"),
        # -R chroots as unshare does (so -R / works), --wd inside the new root
        # (and the command's ignored signals are unshare's: none of 1-31, SIGPIPE included)
        (["-R", "/"], ["-f", "-R", "/"],
         "pwd; echo $(( 0x$(awk '/^SigIgn/{print $2}' /proc/self/status) & 0x7fffffff ))"),
        (["-R", "/", "-w", "/tmp"], ["-f", "-R", "/", "-w", "/tmp"], "pwd"),
        (["-p", "-R", "/", "--mount-proc"], ["-pf", "-R", "/", "--mount-proc"], "readlink /proc/self"),
        # --mount-proc without -p: the current pid namespace's proc, in a new mount namespace
        (["--mount-proc"], ["-f", "--mount-proc"],
         "grep -c ' /proc ' /proc/self/mountinfo; test $(readlink /proc/self) -gt 2 && echo host pids"),
        (["-m", "--propagation", "shared", "--mount-proc"], ["-mf", "--propagation", "shared", "--mount-proc"],
         "grep ' /proc ' /proc/self/mountinfo | grep -c shared"),
    ],
)  # fmt: skip
def test_run_matches_unshare(ours: list[str], theirs: list[str], script: str) -> None:
    a = nsprim("run", *ours, "--", "sh", "-c", script)
    b = util("unshare", *theirs, "sh", "-c", script)
    assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (a.stderr, b.stderr)


def test_run_hostname_and_lo_up_extras() -> None:
    r = nsprim(
        "run",
        "--hostname",
        "extra",
        "--lo-up",
        "--",
        "sh",
        "-c",
        "hostname; cat /sys/class/net/lo/operstate",
    )
    assert r.returncode == 0
    assert r.stdout.decode().splitlines()[0] == "extra"


@pytest.mark.parametrize(("script", "status"), [("exit 7", 7), ("kill -TERM $$", 143), ("true", 0)])
def test_run_exit_status_like_unshare(script: str, status: int) -> None:
    a = nsprim("run", "-u", "--", "sh", "-c", script)
    b = util("unshare", "-uf", "sh", "-c", script)
    # unshare(1) re-raises the signal on itself (a shell reports 128+N); nsprim too.
    assert a.returncode == b.returncode
    assert (128 - a.returncode if a.returncode < 0 else a.returncode) == status


def test_run_errors_are_one_line_with_status() -> None:
    r = nsprim("run", "-u", "--", "/nonexistent/cmd")
    assert r.returncode == 127
    assert (
        r.stderr.count(b"\n") == 1 and b"nsprim run:" in r.stderr and b"Traceback" not in r.stderr
    )
    r = nsprim("run", "--map-user", "no-such-user-xyz", "--", "true")
    assert r.returncode == 1 and b"failed to parse uid: 'no-such-user-xyz'" in r.stderr


@pytest.fixture
def target() -> Iterator[process.NsProcess]:
    with process.spawn(["sleep", "60"], namespaces=["uts", "pid", "mnt", "net", "ipc"],
                       hostname="cli-target", mount_proc=True) as p:  # fmt: skip
        yield p


@pytest.mark.parametrize(
    "flags",
    [["-u"], ["-a"], ["-p", "-m"], ["-n", "-u", "-i"], ["-a", "-r", "-w"]],
    ids=lambda f: " ".join(f),
)
def test_enter_matches_nsenter(target: process.NsProcess, flags: list[str]) -> None:
    script = "hostname; for t in uts ipc net pid mnt cgroup user; do readlink /proc/self/ns/$t; done; pwd"
    a = nsprim("enter", "-t", str(target.pid), *flags, "--", "sh", "-c", script)
    b = util("nsenter", "-t", str(target.pid), *flags, "sh", "-c", script)
    assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (a.stderr, b.stderr)


def test_enter_exit_status_and_errors(target: process.NsProcess) -> None:
    r = nsprim("enter", "-t", str(target.pid), "-u", "--", "sh", "-c", "exit 5")
    assert r.returncode == 5
    p = process.spawn(["true"])
    p.wait()
    r = nsprim("enter", "-t", str(p.pid), "-u", "--", "true")
    assert r.returncode == 1 and b"does not exist" in r.stderr and r.stderr.count(b"\n") == 1
    # util-linux 2.41+ (2.38 ran the command in no namespace at all)
    r = nsprim("enter", "-t", str(target.pid), "--", "true")
    assert (r.returncode, r.stderr) == (1, b"nsprim enter: no namespace specified\n")


def _as_nobody_cli(args: list[str]) -> int:
    from forked import drop_to_nobody

    drop_to_nobody()
    ns = command_parser(args[0]).parse_args(args[1:])
    return cli_run.cmd_run(ns)


def test_handlers_called_directly_as_nobody(capfd: pytest.CaptureFixture[str]) -> None:
    from forked import in_child

    # The venv's python can't be exec'd as nobody: call the handler in-process.
    assert in_child(_as_nobody_cli, ["run", "-r", "--", "sh", "-c", "test $(id -u) = 0"]) == 0
    capfd.readouterr()
    assert in_child(_as_nobody_cli, ["run", "-u", "--", "true"]) == 1  # EPERM without -U
    # The hint names the CLI's flags, not the library's keyword arguments.
    assert capfd.readouterr().err == (
        "nsprim run: unshare: Operation not permitted; creating namespaces other than user "
        "needs CAP_SYS_ADMIN; add -r (or -U with --map-user) to run unprivileged\n"
    )
    assert in_child(_as_nobody_cli, ["run", "-r", "--", "sh", "-c", "exit 9"]) == 9


def test_enter_handler_direct_call(
    target: process.NsProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    ns = command_parser("enter").parse_args(["-t", str(target.pid), "-u", "--", "hostname"])
    assert cli_enter.cmd_enter(ns) == 0
    assert capfd.readouterr().out == "cli-target\n"


@pytest.fixture(scope="module")
def nobody_pythonpath() -> Iterator[str]:
    """A copy of the package that nobody can read (the venv under /work is not)."""
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="nsprim-cli-nobody-")
    try:
        shutil.copytree(
            Path(process.__file__).parent,
            Path(root, "nsprim"),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        os.chmod(root, 0o755)
        for d, _, files in os.walk(root):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(
    shutil.which("setpriv") is None or not os.access("/usr/bin/python3", os.X_OK),
    reason="needs util-linux setpriv and /usr/bin/python3",
)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (["-r", "-R", "/", "--", "pwd"], ["-r", "-R", "/", "pwd"]),
        (["-r", "-R", "/", "-w", "/tmp", "--", "pwd"], ["-r", "-R", "/", "-w", "/tmp", "pwd"]),
        (["-r", "-p", "--mount-proc", "--", "readlink", "/proc/self"],
         ["-r", "-pf", "--mount-proc", "readlink", "/proc/self"]),
        # proc of the caller's pid namespace from a new user namespace: the kernel refuses both
        (["-r", "--mount-proc", "--", "true"], ["-r", "--mount-proc", "true"]),
        (["-u", "--", "true"], ["-u", "true"]),
        (["-c", "--", "id", "-u"], ["-c", "id", "-u"]),
    ],
    ids=lambda a: " ".join(a),
)  # fmt: skip
def test_rootless_run_matches_unshare(
    nobody_pythonpath: str, ours: list[str], theirs: list[str]
) -> None:
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    env = {**os.environ, "PYTHONPATH": nobody_pythonpath}
    a = subprocess.run([*as_nobody, "/usr/bin/python3", "-m", "nsprim", "run", *ours],
                       capture_output=True, timeout=60, env=env, cwd="/")  # fmt: skip
    b = subprocess.run([*as_nobody, "unshare", *theirs], capture_output=True, timeout=60, cwd="/")
    assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (a.stderr, b.stderr)
    assert b"Traceback" not in a.stderr and a.stderr.count(b"\n") == b.stderr.count(b"\n")


@pytest.mark.parametrize(
    ("args", "uid_map"),
    [
        # util-linux 2.38's OUTER,INNER,COUNT and 2.39's INNER:OUTER:COUNT, repeatable
        (["--map-users=100000,0,65536"], [["0", "100000", "65536"]]),
        (["--map-users=0:100000:65536", "--map-users=70000,200000,10"],
         [["0", "100000", "65536"], ["200000", "70000", "10"]]),
        # with -r: the ranges and the caller's own line, as unshare adds it
        (["-r", "--map-users=100000,1,10"], [["1", "100000", "10"], ["0", "0", "1"]]),
    ],
)  # fmt: skip
def test_map_users_writes_the_ranges(args: list[str], uid_map: list[list[str]]) -> None:
    # unshare 2.38 writes these through newuidmap (not installed here): compared with its
    # man page's meaning instead — each range is one uid_map line "inner outer count".
    r = nsprim("run", *args, "--map-groups=100000,7,10", "--", "cat",
               "/proc/self/uid_map", "/proc/self/gid_map")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.decode().splitlines()]
    assert lines[: len(uid_map)] == uid_map
    assert ["7", "100000", "10"] in lines[len(uid_map) :]
