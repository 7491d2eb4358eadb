"""``nsprim run`` / ``nsprim enter`` against util-linux ``unshare`` / ``nsenter`` on the same commands."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

import nsprim.process as process
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
        (["-p", "--mount-proc"], ["-pf", "--mount-proc"], "echo $$; ls /proc | grep -c '^[0-9]'"),
        (["-u"], ["-uf"], "hostname ns-cli; hostname"),
        (["-r"], ["-rf"], "id -u; id -g; cat /proc/self/uid_map"),
        (["-n"], ["-nf"], "ls /sys/class/net | wc -l; cat /proc/net/dev | wc -l"),
        (["-U", "--map-user=1000", "--map-group=1000"], ["-Uf", "--map-user=1000", "--map-group=1000"],
         "id -u; id -g; cat /proc/self/setgroups"),
        (["-T", "--monotonic", "86400"], ["-Tf", "--monotonic", "86400"],
         "cut -d. -f1 /proc/uptime | cut -c1-2"),
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
    assert a.returncode == status
    # unshare(1) re-raises the signal on itself; a shell reports that as 128+N too.
    assert (128 - b.returncode if b.returncode < 0 else b.returncode) == status


def test_run_errors_are_one_line_with_status() -> None:
    r = nsprim("run", "-u", "--", "/nonexistent/cmd")
    assert r.returncode == 127
    assert (
        r.stderr.count(b"\n") == 1 and b"nsprim run:" in r.stderr and b"Traceback" not in r.stderr
    )
    r = nsprim("run", "--mount-proc", "--", "true")  # needs -p: bad usage
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1
    r = nsprim("run", "--map-user", "no-such-user-xyz", "--", "true")
    assert r.returncode == 2 and b"no such user" in r.stderr


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
    r = nsprim("enter", "-t", str(target.pid), "--", "true")
    assert r.returncode == 2 and b"no namespace to enter" in r.stderr


def _as_nobody_cli(args: list[str]) -> int:
    from forked import drop_to_nobody

    drop_to_nobody()
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_run.add_run_parser(sub)
    cli_enter.add_enter_parser(sub)
    ns = parser.parse_args(args)
    return cli_run.cmd_run(ns)


def test_handlers_called_directly_as_nobody() -> None:
    from forked import in_child

    # The venv's python can't be exec'd as nobody: call the handler in-process.
    assert in_child(_as_nobody_cli, ["run", "-r", "--", "sh", "-c", "test $(id -u) = 0"]) == 0
    assert in_child(_as_nobody_cli, ["run", "-u", "--", "true"]) == 1  # EPERM without -U
    assert in_child(_as_nobody_cli, ["run", "-r", "--", "sh", "-c", "exit 9"]) == 9


def test_enter_handler_direct_call(
    target: process.NsProcess, capfd: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_enter.add_enter_parser(sub)
    ns = parser.parse_args(["enter", "-t", str(target.pid), "-u", "--", "hostname"])
    assert cli_enter.cmd_enter(ns) == 0
    assert capfd.readouterr().out == "cli-target\n"
