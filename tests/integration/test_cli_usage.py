"""The CLI speaks util-linux's language: each mistake and signal run through both, compared.

unshare(1), nsenter(1) and lsns(8) (util-linux) get the same mistake as
``nsprim run``/``enter``/``ls``; the message after ``prog:`` and the exit
status must be the same. Where util-linux prints only the message for a bad
value, nsprim adds the "Try ... --help" line (issue 17: every usage error
ends with it); that line is checked separately.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from nsprim.cli import main

UNSHARE, NSENTER, LSNS = (shutil.which(t) for t in ("unshare", "nsenter", "lsns"))
needs_util_linux = pytest.mark.skipif(
    None in (UNSHARE, NSENTER, LSNS), reason="util-linux unshare/nsenter/lsns not installed"
)


def _util_linux_version() -> str:
    if UNSHARE is None:
        return ""
    out = subprocess.run([UNSHARE, "--version"], capture_output=True, text=True).stdout
    return out.split()[-1] if out.split() else ""


# nsprim's --map-users/--map-groups messages are util-linux 2.38's (2.41 reworded them:
# "invalid mapping 'abc'" became "could not parse ID: 'abc'"); compare only with 2.38.
util_linux_238 = pytest.mark.skipif(
    not _util_linux_version().startswith("2.38"),
    reason="the --map-users/--map-groups messages compared are util-linux 2.38's",
)


def nsprim(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nsprim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        **kw,  # type: ignore[call-overload]
    )


def util(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def _message(stderr: str, prog: str) -> str:
    first = stderr.splitlines()[0]
    assert first.startswith(f"{prog}: "), stderr
    return first[len(prog) + 2 :]


# (nsprim subcommand + args, util-linux tool + args): the same mistake.
SAME = [
    (["run", "--bogus"], ["unshare", "--bogus"]),
    (["run", "-x"], ["unshare", "-x"]),
    (["run", "-ux", "true"], ["unshare", "-ux", "true"]),
    (["run", "--wd"], ["unshare", "--wd"]),
    (["run", "-w"], ["unshare", "-w"]),
    (["run", "--propagation", "bogus", "true"], ["unshare", "--propagation", "bogus", "true"]),
    (["run", "--setgroups", "bogus", "true"], ["unshare", "--setgroups", "bogus", "true"]),
    (["run", "-p", "--kill-child=bogus", "true"], ["unshare", "-p", "--kill-child=bogus", "true"]),
    (["run", "--map-user", "no-such-user-x", "true"], ["unshare", "--map-user", "no-such-user-x", "true"]),
    (["run", "--map-group", "no-such-grp-x", "true"], ["unshare", "--map-group", "no-such-grp-x", "true"]),
    (["run", "-T", "--monotonic", "abc", "true"], ["unshare", "-T", "--monotonic", "abc", "true"]),
    (["run", "-T", "--boottime", "x", "true"], ["unshare", "-T", "--boottime", "x", "true"]),
    (["run", "-r", "--setgroups", "allow", "true"], ["unshare", "-r", "--setgroups", "allow", "true"]),
    pytest.param(["run", "--map-users=abc", "true"], ["unshare", "--map-users=abc", "true"], marks=util_linux_238),
    pytest.param(["run", "--map-groups=1,2", "true"], ["unshare", "--map-groups=1,2", "true"], marks=util_linux_238),
    pytest.param(["run", "--map-users=1,x,3", "true"], ["unshare", "--map-users=1,x,3", "true"], marks=util_linux_238),
    pytest.param(["run", "--map-users=1,2,3,4", "true"], ["unshare", "--map-users=1,2,3,4", "true"], marks=util_linux_238),
    # These two get past the parser: creating a UTS namespace needs root.
    pytest.param(
        ["run", "-u", "/nonexistent/cmd"],
        ["unshare", "-u", "/nonexistent/cmd"],
        marks=pytest.mark.needs_root,
    ),
    pytest.param(["run", "-u", "/etc"], ["unshare", "-u", "/etc"], marks=pytest.mark.needs_root),
    (["enter", "--bogus"], ["nsenter", "--bogus"]),
    (["enter", "-t"], ["nsenter", "-t"]),
    (["enter", "-t", "abc", "-u", "true"], ["nsenter", "-t", "abc", "-u", "true"]),
    (["enter", "-t", "1", "-S", "abc", "-u", "true"], ["nsenter", "-t", "1", "-S", "abc", "-u", "true"]),
    (["enter", "-t", "1", "-G", "abc", "-u", "true"], ["nsenter", "-t", "1", "-G", "abc", "-u", "true"]),
    (["ls", "--bogus"], ["lsns", "--bogus"]),
    (["ls", "-t"], ["lsns", "-t"]),
    (["ls", "-t", "bogus"], ["lsns", "-t", "bogus"]),
    (["ls", "-p", "abc"], ["lsns", "-p", "abc"]),
]  # fmt: skip


@needs_util_linux
@pytest.mark.parametrize(("ours", "theirs"), SAME, ids=lambda a: " ".join(a))
def test_bad_usage_matches_util_linux(ours: list[str], theirs: list[str]) -> None:
    a = nsprim(*ours)
    b = util(*theirs)
    assert b.returncode != 0, b
    assert a.returncode == b.returncode, (a.stderr, b.stderr)
    assert _message(a.stderr, f"nsprim {ours[0]}") == _message(b.stderr, theirs[0])
    lines = a.stderr.splitlines()
    if a.returncode in (126, 127) or "mutually exclusive" in lines[0]:
        assert len(lines) == 1, a.stderr  # not a usage error: the message alone
    else:
        assert lines[1:] == [f"Try 'nsprim {ours[0]} --help' for more information."], a.stderr
    assert "Traceback" not in a.stderr and a.stdout == ""


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--wd", "/nonexistent", "true"], "nsprim run: --wd: /nonexistent: No such file or directory"),
        (["run", "-u", "--wd", "/etc/passwd", "true"], "nsprim run: --wd: /etc/passwd: Not a directory"),
        (["run", "-R", "/nonexistent", "true"], "nsprim run: --root: /nonexistent: No such file or directory"),
        (["run", "-R", "/", "-w", "/nonexistent", "true"], "nsprim run: --wd: /nonexistent: No such file or directory"),
        (["bogus"], "nsprim: unknown command 'bogus'"),
        ([], "nsprim: no command specified"),
        (["enter", "-u", "true"], "nsprim enter: no target PID specified"),
        (["ls", "foo"], "nsprim ls: invalid namespace argument: 'foo'"),
        (["check", "--bogus"], "nsprim check: unrecognized option '--bogus'"),
        (["run", "--map"], "nsprim run: option '--map' is ambiguous; possibilities: "
                           "'--map-root-user' '--map-current-user' '--map-user' '--map-group' "
                           "'--map-users' '--map-groups' '--map-auto' '--map-subids'"),
        (["run", "--mount-proc=/nonexistent", "true"], "nsprim run: --mount-proc: /nonexistent: No such file or directory"),
    ],
)  # fmt: skip
def test_messages_speak_flags_and_paths(args: list[str], expected: str) -> None:
    r = nsprim(*args)
    assert r.stderr.splitlines()[0] == expected, r.stderr
    assert r.returncode == (2 if args[:1] == ["check"] else 1)  # check: 1 means "missing"
    assert "=True" not in r.stderr and "b'" not in r.stderr and "namespaces=" not in r.stderr


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
def test_wd_failure_like_unshare_status() -> None:
    # unshare words it "cannot chdir to '/nonexistent'": same status, same cause.
    a = nsprim("run", "-u", "--wd", "/nonexistent", "true")
    b = util("unshare", "-u", "--wd", "/nonexistent", "true")
    assert a.returncode == b.returncode == 1
    assert "/nonexistent" in b.stderr and b.stderr.rstrip().endswith("No such file or directory")


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
@pytest.mark.parametrize("script", ["echo ok", "echo $$"], ids=["sh -c echo ok", "pid 1"])
def test_kill_child_takes_its_signal_only_after_equals(script: str) -> None:
    # `--kill-child sh -c ...`: sh is the command, not the signal (getopt optional_argument).
    for ours, theirs in [
        (["--kill-child"], ["--kill-child"]),
        (["--kill-child=TERM"], ["--kill-child=TERM"]),
        (["--kill"], ["--kill-child"]),  # a unique prefix, as getopt_long allows
    ]:
        a = nsprim("run", "-p", *ours, "sh", "-c", script)
        b = util("unshare", "-pf", *theirs, "sh", "-c", script)
        assert (a.returncode, a.stdout) == (b.returncode, b.stdout) == (0, b.stdout), (a, b)
    assert nsprim("run", "-p", "--kill-child", "true").returncode == 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _started(proc: subprocess.Popen[bytes]) -> int:
    """Wait until the wrapper has forked its command; return the command's pid."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if kids:
            # the command (or a setup child about to exec it): wait for its exec
            exe = ""
            with contextlib.suppress(OSError):
                exe = os.readlink(f"/proc/{kids[0]}/exe")
            if exe.endswith("/sh") or exe.endswith("/dash") or exe.endswith("/bash"):
                return kids[0]
        time.sleep(0.01)
    raise AssertionError(f"{proc.args} did not start its command")


def _signal_then_finish(argv: list[str], sig: int) -> tuple[bool, int]:
    """Start argv (a command reading one line), send *sig* to the wrapper, then finish it.

    Returns (wrapper still running after the signal, final returncode).
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        _started(proc)
        proc.send_signal(sig)
        time.sleep(0.3)
        alive = proc.poll() is None
        if alive:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        return alive, proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_run_holds_term_and_int_until_the_command_ends_like_unshare(sig: int) -> None:
    script = ["sh", "-c", "read x; exit 3"]
    assert _signal_then_finish([UNSHARE or "", "-uf", *script], sig) == (True, 3)
    assert _signal_then_finish(
        [sys.executable, "-m", "nsprim", "run", "-u", "--", *script], sig
    ) == (True, 3)


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_run_dies_of_the_signal_that_killed_the_command(sig: int) -> None:
    script = f"kill -{int(sig)} $$"
    a = nsprim("run", "-u", "--", "sh", "-c", script)
    b = util("unshare", "-uf", "sh", "-c", script)
    assert a.returncode == b.returncode == -sig
    assert main(["run", "-u", "--", "sh", "-c", script]) == 128 + sig  # in-process: a status


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
def test_run_dies_of_sigkill_too() -> None:
    # unshare 2.38 fails here ("sigprocmask unblock failed", exit 1): nsprim does
    # what unshare means to do.
    assert nsprim("run", "-u", "--", "sh", "-c", "kill -9 $$").returncode == -signal.SIGKILL


@pytest.fixture
def target() -> Iterator[int]:
    with subprocess.Popen([UNSHARE or "unshare", "-u", "sleep", "60"]) as p:
        try:
            yield p.pid
        finally:
            p.kill()


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
def test_enter_passes_term_on_to_the_command_like_nsenter(target: int) -> None:
    # nsenter without -p execs the command: `kill -TERM` of its pid kills the command.
    script = ["sh", "-c", "read x; exit 3"]
    ours = _signal_then_finish(
        [sys.executable, "-m", "nsprim", "enter", "-t", str(target), "-u", "--", *script],
        signal.SIGTERM,
    )
    proc = subprocess.Popen(
        [NSENTER or "", "-t", str(target), "-u", *script], stdin=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while not os.readlink(f"/proc/{proc.pid}/exe").endswith("sh"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        theirs = (False, proc.wait(timeout=30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert ours == theirs == (False, -signal.SIGTERM)


def _into_closed_pipe(argv: list[str]) -> tuple[int, bytes]:
    r, w = os.pipe()
    os.close(r)  # the reader (`head`) is gone before anything is written
    try:
        p = subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(w)
    return p.returncode, p.stderr


@needs_util_linux
@pytest.mark.parametrize(
    "args",
    [["ls"], ["ls", "--json"], ["check", "--json"], ["conformance", "--list"]],
    ids=lambda a: " ".join(a),
)
def test_closed_pipe_ends_quietly_like_lsns(args: list[str]) -> None:
    rc, err = _into_closed_pipe([sys.executable, "-m", "nsprim", *args])
    assert err == b"", err
    assert rc == _into_closed_pipe([LSNS or ""])[0] == -signal.SIGPIPE


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]], ids=lambda a: " ".join(a))
def test_help_into_a_closed_pipe_is_quiet(args: list[str]) -> None:
    rc, err = _into_closed_pipe([sys.executable, "-m", "nsprim", *args])
    assert err == b"" and rc in (0, -signal.SIGPIPE), (rc, err)


def _on_pty(args: list[str], env: dict[str, str]) -> bytes:
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen(
            [sys.executable, "-m", "nsprim", *args], stdout=follower, stderr=follower, env=env
        )
        os.close(follower)
        out = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the last writer closed
                break
            if not chunk:
                break
            out += chunk
        p.wait(timeout=30)
        return out
    finally:
        os.close(leader)


def test_ls_colour_on_a_terminal_only_and_never_with_no_color() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    painted = _on_pty(["ls", "-p", str(os.getpid())], env)
    assert painted.startswith(b"\033[1m") and b"NS TYPE" in painted.split(b"\n")[0], painted
    assert b"\033[" not in _on_pty(["ls", "-p", str(os.getpid())], {**env, "NO_COLOR": "1"})
    piped = subprocess.run(
        [sys.executable, "-m", "nsprim", "ls", "-p", str(os.getpid())],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert piped.returncode == 0 and b"\033[" not in piped.stdout and b"NS" in piped.stdout


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
def test_kill_child_signals_the_command_when_nsprim_is_killed_like_unshare() -> None:
    def command_dies(argv: list[str], within: float = 10) -> bool:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        try:
            child = _started(proc)
            proc.kill()  # SIGKILL: no handler of the wrapper runs
            proc.wait(timeout=30)
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                try:
                    with open(f"/proc/{child}/stat") as f:
                        if f.read().split(") ")[1].startswith("Z"):
                            return True  # dead, waiting for init to reap it
                except FileNotFoundError:
                    return True
                time.sleep(0.02)
            os.kill(child, signal.SIGKILL)
            return False
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    script = ["sh", "-c", "read x"]
    assert command_dies([UNSHARE or "", "-u", "--kill-child", *script])
    assert command_dies(
        [sys.executable, "-m", "nsprim", "run", "-u", "--kill-child", "--", *script]
    )
    # control: without --kill-child the command outlives a SIGKILLed wrapper (both tools)
    assert not command_dies([UNSHARE or "", "-uf", *script], within=1)
    assert not command_dies([sys.executable, "-m", "nsprim", "run", "-u", "--", *script], within=1)


# --- nsprim ls with lsns(8)'s options (issue 14), on a namespace this test owns ----------------


@pytest.fixture
def own_uts() -> Iterator[int]:
    """A sleep in a new UTS namespace (its only member), started by this test."""
    with subprocess.Popen([UNSHARE or "unshare", "-u", "sleep", "60"]) as p:
        try:
            deadline = time.monotonic() + 10
            while os.readlink(f"/proc/{p.pid}/ns/uts") == os.readlink("/proc/self/ns/uts"):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            yield p.pid
        finally:
            p.kill()


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
@pytest.mark.parametrize(
    "options",
    [
        ["-n", "-r", "-o", "NS,TYPE,PATH,NPROCS,PID,PPID,COMMAND,UID,USER,PNS,ONS"],
        ["-n", "-r", "--output-all"],
        ["-o", "+PPID"],
        ["--output-all"],
        ["-l", "-u", "-W", "-n", "-r"],
        ["-J", "-o", "NS,TYPE,PATH,NPROCS,PID,PPID,UID,USER,NETNSID,NSFS,PNS,ONS"],
        ["-J", "--output-all"],
    ],
    ids=lambda o: " ".join(o),
)
def test_ls_options_match_lsns(own_uts: int, options: list[str]) -> None:
    where = ["-p", str(own_uts), "-t", "uts"]
    a = nsprim("ls", *where, *options)
    for _ in range(5):
        # lsns 2.38 sometimes exits 1 with no output when another process vanishes
        # during its scan (busy host): ask again
        b = util(LSNS or "", *where, *options)
        if b.returncode == 0:
            break
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    if "-J" in options:
        assert json.loads(a.stdout) == json.loads(b.stdout)
    else:
        # same cells; widths may differ only where lsns pads a column of the whole host
        assert [line.split() for line in a.stdout.splitlines()] == [
            line.split() for line in b.stdout.splitlines()
        ]
    assert str(own_uts) in a.stdout


@needs_util_linux
def test_ls_bad_column_like_lsns() -> None:
    a, b = nsprim("ls", "-o", "NS,BOGUS"), util(LSNS or "", "-o", "NS,BOGUS")
    assert a.returncode == b.returncode == 1
    assert _message(a.stderr, "nsprim ls") == _message(b.stderr, "lsns") == "unknown column: BOGUS"


# --- nsprim enter joins by nsfs file, as nsenter --uts=FILE does (issue 14) -------------------


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
@pytest.mark.parametrize(
    "form",
    ["--uts={}", "-u{}", "--ut={}"],  # long, short with the file attached, a unique prefix
)
def test_enter_joins_by_file_like_nsenter(own_uts: int, form: str) -> None:
    flag = form.format(f"/proc/{own_uts}/ns/uts")
    a = nsprim("enter", flag, "--", "readlink", "/proc/self/ns/uts")
    b = util(NSENTER or "", flag.replace("--ut=", "--uts="), "readlink", "/proc/self/ns/uts")
    assert (a.returncode, a.stdout) == (b.returncode, b.stdout) == (0, b.stdout), (a, b)
    assert a.stdout.strip() == os.readlink(f"/proc/{own_uts}/ns/uts")


@pytest.mark.needs_root  # namespaces (and util-linux's side) need root here
@needs_util_linux
def test_enter_file_errors_like_nsenter(own_uts: int) -> None:
    for flag in ("--uts=/nonexistent", f"--uts=/proc/{own_uts}/ns/net"):
        a = nsprim("enter", flag, "--", "true")
        b = util(NSENTER or "", flag, "true")
        assert a.returncode == b.returncode == 1, (a.stderr, b.stderr)
        assert a.stderr.count("\n") == 1 and "Traceback" not in a.stderr
    assert "No such file or directory" in nsprim("enter", "--uts=/nonexistent", "true").stderr
    # -u without =FILE still needs -t, and a bare -u before the command takes no file
    assert nsprim("enter", "-u", "true").returncode == 1
    r = nsprim("enter", "-t", str(own_uts), "-u", "readlink", "/proc/self/ns/uts")
    assert r.returncode == 0 and r.stdout.strip() == os.readlink(f"/proc/{own_uts}/ns/uts")


@pytest.mark.needs_root
def test_conformance_progress_line_on_a_terminal_only(tmp_path: os.PathLike[str]) -> None:
    """A run longer than a second shows one live line on a terminal, and nothing in a log."""
    env = dict(os.environ)
    report = os.path.join(str(tmp_path), "r.tap")
    # The whole catalogue, one sandbox at a time: about 2-3 s, past the 1 s threshold.
    args = ["conformance", "--jobs", "1", "--format", "tap", "-o", report]
    painted = _on_pty(args, env)
    assert re.search(rb"\r\x1b\[2K\[\d+/\d+\] uts\.", painted), painted[-300:]
    assert painted.rstrip().endswith(b"\x1b[2K"), "the line is erased at the end"
    piped = subprocess.run(
        [sys.executable, "-m", "nsprim", *args], capture_output=True, env=env, timeout=120
    )
    assert piped.returncode == 0, piped.stderr[-500:]
    assert b"\x1b[" not in piped.stderr and b"\r" not in piped.stderr, piped.stderr[-300:]
