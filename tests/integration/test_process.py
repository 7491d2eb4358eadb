"""spawn/run/call on the real kernel: every option's observable effect, errors, threads.

Each test asserts what a person would check by hand (hostname inside and
outside, ``getpid() == 1``, ``ipcs``, two binds of one port, ``id -u``...).
Anything that changes the namespaces of the calling process runs in a
forked child (``in_child``); the conftest leak guard checks that no fd,
child, mount or host setting is left behind.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from forked import drop_to_nobody, in_child

import nsprim
import nsprim._forker as _forker
import nsprim._launch as _launch
import nsprim._supervisor as _supervisor
import nsprim.process as process
from nsprim.errors import AccessDenied, CallError, TimeoutExpired, UnsupportedError
from nsprim.flags import CloneFlags
from nsprim.namespace import Namespace, NsType
from nsprim.syscalls import unshare

pytestmark = pytest.mark.needs_root

PY = "/usr/bin/python3"  # the venv's python lives under /root (0700): nobody can't exec it


# --- each option, observed ------------------------------------------------------------------


def test_spawn_hostname_invisible_to_host() -> None:
    host = socket.gethostname()
    r = process.run(["hostname"], hostname="nsprim-inside", capture_output=True, check=True)
    assert r.stdout == b"nsprim-inside\n"
    assert socket.gethostname() == host


def test_spawn_domainname_set_inside_only() -> None:
    before = Path("/proc/sys/kernel/domainname").read_text()
    r = process.run(
        ["cat", "/proc/sys/kernel/domainname"], namespaces=["uts"], domainname="nsprim.test",
        capture_output=True,
    )  # fmt: skip
    assert r.stdout == b"nsprim.test\n"
    assert Path("/proc/sys/kernel/domainname").read_text() == before


def _ipc_object_hidden() -> tuple[bytes, bytes]:
    # In a throwaway outer IPC namespace, so the queue never exists on the host.
    unshare(CloneFlags.NEWIPC)
    subprocess.run(["ipcmk", "-Q"], check=True, capture_output=True)
    seen = process.run(["ipcs", "-q"], capture_output=True, check=True).stdout
    hidden = process.run(["ipcs", "-q"], namespaces=["ipc"], capture_output=True, check=True).stdout
    return seen, hidden


def test_spawn_ipc_objects_hidden() -> None:
    seen, hidden = in_child(_ipc_object_hidden)
    assert b"0x" in seen  # the control: without the namespace the queue is listed
    assert b"0x" not in hidden


def test_spawn_pid_is_1_and_proc_lists_only_the_namespace() -> None:
    r = process.run(
        ["sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"],
        namespaces=["pid"], mount_proc=True, capture_output=True, check=True,
    )  # fmt: skip
    first, listing = r.stdout.decode().splitlines()
    assert first == "1"
    pids = [int(p) for p in listing.split()]
    assert pids[0] == 1 and max(pids) < 10, pids  # sh, ls, grep, sort, tr: nothing of the host
    # The host's /proc is untouched (the mount was in the child's mount namespace).
    assert os.path.exists(f"/proc/{os.getpid()}")


def test_spawn_pid_without_mount_proc_still_pid1() -> None:
    r = process.run(["sh", "-c", "echo $$"], namespaces=["pid"], capture_output=True)
    assert r.stdout == b"1\n"


_BIND = (
    "import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,0);"
    "s.bind(('127.0.0.1',int(sys.argv[1])));s.listen();print('bound',flush=True);sys.stdin.read()"
)


def test_spawn_net_same_port_bound_twice() -> None:
    port = 47111
    procs = [
        process.spawn(
            [PY, "-c", _BIND, str(port)], loopback_up=True, stdin=process.PIPE, stdout=process.PIPE
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline() == b"bound\n"
        # Both are listening at the same time, each in its own namespace.
        assert all(p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.communicate(b"", timeout=10)
    assert [p.returncode for p in procs] == [0, 0]


def test_spawn_net_sees_only_loopback() -> None:
    r = process.run([PY, "-c", "import socket;print(socket.if_nameindex())"], namespaces=["net"],
                    capture_output=True, check=True)  # fmt: skip
    assert r.stdout.strip() == b"[(1, 'lo')]"


def _map_root_as_nobody() -> tuple[str, str, str]:
    drop_to_nobody()
    inside = process.run(["id", "-u"], map_root=True, capture_output=True, check=True).stdout
    with process.spawn(["sleep", "30"], map_root=True) as p:
        status = Path(f"/proc/{p.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        uid_map = Path(f"/proc/{p.pid}/uid_map").read_text().split()
    return inside.decode().strip(), uid_line.split()[1], " ".join(uid_map)


def test_run_map_root_as_nobody() -> None:
    inside, outside, uid_map = in_child(_map_root_as_nobody)
    assert inside == "0"  # root inside
    assert outside == "65534"  # still nobody from the outside
    assert uid_map == "0 65534 1"


def _unprivileged_needs_user(types: list[str]) -> str:
    drop_to_nobody()
    try:
        process.run(["true"], namespaces=types)
    except AccessDenied as err:
        return f"{err.operation}|{err.hint}"
    return "no error"


def test_spawn_unprivileged_without_user_is_access_denied() -> None:
    for types in (["uts"], ["pid"]):  # pid: refused to the launcher thread, nothing forked
        op, hint = in_child(_unprivileged_needs_user, types).split("|")
        assert op == "unshare" and "add 'user'" in hint


def _root_inside() -> tuple[int, int, str, str]:
    from nsprim.idmap import map_self_as_root

    map_self_as_root(int(CloneFlags.NEWUTS))
    socket.sethostname("mapped")  # root of the new user namespace owns the new UTS one
    return (os.getuid(), os.getgid(), Path("/proc/self/uid_map").read_text().split()[1],
            socket.gethostname())  # fmt: skip


def _map_self_as_nobody() -> tuple[int, int, str, str]:
    drop_to_nobody()
    return process.call(_root_inside)


def test_map_self_as_root_as_root_and_as_nobody() -> None:
    host = socket.gethostname()
    assert process.call(_root_inside) == (0, 0, "0", "mapped")
    assert in_child(_map_self_as_nobody) == (0, 0, "65534", "mapped")
    assert socket.gethostname() == host


def _multi_extent_map() -> str:
    with process.spawn(["sleep", "30"], uid_map=[(0, 100000, 1000), (1000, 0, 1)],
                       gid_map="0 100000 1000\n") as p:  # fmt: skip
        return Path(f"/proc/{p.pid}/uid_map").read_text()


def test_spawn_multi_extent_map_for_privileged_caller() -> None:
    text = process.call(_multi_extent_map)  # our own child: root in the init user ns
    assert [line.split() for line in text.splitlines()] == [
        ["0", "100000", "1000"],
        ["1000", "0", "1"],
    ]


def test_spawn_time_offsets_shift_monotonic_clock() -> None:
    r = process.run([PY, "-c", "import time;print(time.monotonic())"],
                    time_offsets={"monotonic": 7 * 86400}, capture_output=True, check=True)  # fmt: skip
    inside = float(r.stdout)
    assert abs(inside - (time.monotonic() + 7 * 86400)) < 30
    r = process.run([PY, "-c", "import time;print(time.monotonic())"], namespaces=["time"],
                    capture_output=True, check=True)  # fmt: skip
    assert abs(float(r.stdout) - time.monotonic()) < 30  # control: no offset, no shift


def _copy_program(name: str, root: Path) -> str:
    """Copy the host's *name* and the shared libraries ldd(1) lists for it into *root*."""
    program = shutil.which(name)
    assert program is not None, f"no {name} on PATH"
    listing = subprocess.run(["ldd", program], capture_output=True, text=True, check=True).stdout
    files = [program] + [w for w in listing.split() if w.startswith("/")]
    for path in files:
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)  # follows symlinks: the real file under the link's name
    return program


def test_spawn_pivots_into_prepared_root(tmp_path: Path) -> None:
    # The root holds the host's own sh, cat and ls with their libraries (nothing a
    # distribution may lack, such as busybox); the host's / has far more than these.
    root = tmp_path / "root"
    root.mkdir()
    sh, cat, ls = (_copy_program(name, root) for name in ("sh", "cat", "ls"))
    (root / "marker").write_text("inside the new root\n")
    r = process.run([sh, "-c", f"{cat} /marker; {ls} /"],
                    root=root, capture_output=True, check=True)  # fmt: skip
    out = r.stdout.decode().splitlines()
    assert out[0] == "inside the new root"
    assert sorted(out[1:]) == sorted(p.name for p in root.iterdir())
    assert "marker" in out[1:] and "proc" not in out[1:]
    # Control: the same command without the pivot sees the host's /, not the marker.
    host = process.run([sh, "-c", f"{ls} /"], namespaces=["mnt"], capture_output=True, check=True)
    assert "marker" not in host.stdout.decode().split() and "proc" in host.stdout.decode().split()


def test_spawn_loopback_up_in_new_netns() -> None:
    code = (
        "import socket;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();"
        "c=socket.socket();c.settimeout(5);print(c.connect_ex(s.getsockname()))"
    )
    assert process.run([PY, "-c", code], loopback_up=True, capture_output=True).stdout == b"0\n"
    # Control: lo stays down in a bare new network namespace (ENETUNREACH).
    down = process.run([PY, "-c", code], namespaces=["net"], capture_output=True)
    assert down.stdout == f"{errno.ENETUNREACH}\n".encode()


def test_spawn_cwd_env_and_propagation(tmp_path: Path) -> None:
    r = process.run(["sh", "-c", "pwd; echo $FOO; grep ' / / ' /proc/self/mountinfo"],
                    namespaces=["mnt"], cwd=tmp_path, env={"FOO": "bar", "PATH": "/usr/bin:/bin"},
                    capture_output=True, check=True)  # fmt: skip
    pwd, foo, rootline = r.stdout.decode().splitlines()
    assert (pwd, foo) == (str(tmp_path), "bar")
    assert "shared:" not in rootline  # private propagation
    r = process.run(["grep", " / / ", "/proc/self/mountinfo"], namespaces=["mnt"],
                    propagation="shared", capture_output=True, check=True)  # fmt: skip
    assert b"shared:" in r.stdout


@pytest.mark.parametrize("types", [["user"], ["uts"], []], ids=["fork-path", "fast-path", "none"])
def test_spawn_default_env_is_the_current_environment(
    types: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # env=None: the program gets os.environ as it is now, additions and
    # removals included, on every path. Not environ(7): a C library may
    # setenv behind os.environ's back (GNU readline exports LINES and
    # COLUMNS), and the fork path must not differ from the posix_spawn one.
    monkeypatch.setenv("NSPRIM_ENV_PROBE", "added")
    monkeypatch.delenv("NSPRIM_ENV_GONE", raising=False)
    os.environ["NSPRIM_ENV_GONE"] = "x"
    del os.environ["NSPRIM_ENV_GONE"]
    r = process.run(["/usr/bin/env"], namespaces=types, capture_output=True, check=True)
    lines = set(r.stdout.decode().splitlines())
    assert "NSPRIM_ENV_PROBE=added" in lines
    assert not any(line.startswith("NSPRIM_ENV_GONE=") for line in lines)
    assert {f"{k}={v}" for k, v in os.environ.items()} == lines


def _die_with_parent(flag: bool) -> int:
    p = process.spawn(["sleep", "60"], die_with_parent=flag)
    return p.pid  # this process exits now without waiting


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: it exited while we read
        return True
    return state in ("Z", "X")


def test_spawn_die_with_parent_kills_child_when_parent_dies() -> None:
    pid = in_child(_die_with_parent, True)
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid)
    # Control: without it the program outlives its parent.
    pid = in_child(_die_with_parent, False)
    try:
        time.sleep(0.2)
        assert not _gone(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


# A helper process spawns `sleep` from one kind of thread, lets that thread end,
# says whether the program still runs, then waits to be SIGKILLed.
_FROM_THREAD = r"""
import asyncio, concurrent.futures, os, sys, threading, time
import nsprim

kind = sys.argv[1]
box = []
start = lambda: box.append(nsprim.spawn(["sleep", "60"], namespaces=["uts"]).pid)
if kind == "thread":
    t = threading.Thread(target=start)
    t.start()
    t.join()
elif kind == "pool":
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(start).result()
elif kind == "to_thread":
    asyncio.run(asyncio.to_thread(start))  # ends the loop's default executor too
else:
    start()
time.sleep(0.3)  # the spawning thread is gone; a thread-scoped pdeathsig has fired
alive = os.waitpid(box[0], os.WNOHANG) == (0, 0)
print(box[0], "alive" if alive else "dead", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("kind", ["thread", "pool", "to_thread", "main"])
def test_die_with_parent_follows_the_process_not_the_spawning_thread(kind: str) -> None:
    helper = subprocess.Popen([sys.executable, "-c", _FROM_THREAD, kind], stdout=subprocess.PIPE)
    try:
        assert helper.stdout is not None
        line = helper.stdout.readline().decode().split()
        assert len(line) == 2, line
        pid, state = int(line[0]), line[1]
        # The spawning thread ended: the program must still run.
        assert state == "alive" and not _gone(pid)
        helper.kill()  # SIGKILL of the calling process: the program must die
        helper.wait()
        deadline = time.monotonic() + 5
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _gone(pid)
    finally:
        helper.kill()
        helper.wait()
        helper.stdout.close()  # type: ignore[union-attr]


# --- the process object ----------------------------------------------------------------------


def test_nsprocess_has_no_public_constructor() -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        process.NsProcess([], 1, None, None, None, None)  # type: ignore[arg-type]


def test_nsprocess_is_popen_like() -> None:
    with process.spawn(["sleep", "30"], namespaces=["uts"]) as p:
        assert p.pidfd >= 0 and p.poll() is None
        with pytest.raises(TimeoutExpired) as info:
            p.wait(timeout=0.05)
        assert info.value.pid == p.pid
        assert isinstance(info.value, TimeoutError)
        ns = p.namespaces()
        assert ns[NsType.UTS] != Namespace.of_self("uts")
        assert ns[NsType.NET] == Namespace.of_self("net")
        p.terminate()
        assert p.wait(timeout=5) == -signal.SIGTERM
        assert p.pidfd == -1  # closed once reaped
        p.kill()  # a no-op after reaping, like Popen


def test_nsprocess_context_manager_kills_and_reaps() -> None:
    with process.spawn(["sleep", "30"]) as p:
        pid = p.pid
    assert p.returncode == -signal.SIGKILL
    assert _gone(pid)


def test_communicate_feeds_input_and_reads_both_streams() -> None:
    with process.spawn(["sh", "-c", "cat; echo err >&2"], namespaces=["ipc"], stdin=process.PIPE,
                       stdout=process.PIPE, stderr=process.PIPE) as p:  # fmt: skip
        out, err = p.communicate(b"x" * 200_000, timeout=10)
    assert out == b"x" * 200_000 and err == b"err\n" and p.returncode == 0


def test_communicate_timeout_keeps_partial_output() -> None:
    with process.spawn(["sh", "-c", "echo early; sleep 30"], stdout=process.PIPE) as p:
        with pytest.raises(TimeoutExpired) as info:
            p.communicate(timeout=0.5)
        assert info.value.output == b"early\n"  # type: ignore[attr-defined]


def test_stderr_to_stdout_and_devnull() -> None:
    r = process.run(["sh", "-c", "echo a; echo b >&2"], stdout=process.PIPE, stderr=process.STDOUT)
    assert sorted(r.stdout.split()) == [b"a", b"b"] and r.stderr is None
    r = process.run(["sh", "-c", "echo a"], stdout=process.DEVNULL)
    assert r.stdout is None and r.returncode == 0


def test_pass_fds_kept_and_other_fds_closed() -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.set_inheritable(w2, True)  # inheritable, yet not in pass_fds: must still be closed
    try:
        code = (
            "import os,sys\nos.write(int(sys.argv[1]), b'kept\\n')\n"
            "try: os.fstat(int(sys.argv[2])); print('leaked')\nexcept OSError: print('closed')"
        )
        r = process.run([PY, "-c", code, str(w1), str(w2)], pass_fds=[w1], capture_output=True)
        assert r.stdout == b"closed\n", r.stderr
        os.close(w1)
        assert os.read(r1, 100) == b"kept\n"
    finally:
        for fd in (r1, w2, r2):
            os.close(fd)


# --- run() mirrors subprocess.run ---------------------------------------------------------------


def test_run_check_raises_called_process_error() -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        process.run(["sh", "-c", "echo out; exit 3"], capture_output=True, check=True)
    assert info.value.returncode == 3 and info.value.stdout == b"out\n"
    assert process.run(["sh", "-c", "exit 3"]).returncode == 3


def test_run_timeout_raises_subprocess_timeout_and_kills() -> None:
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        process.run(["sh", "-c", "echo partial; exec sleep 30"], timeout=0.5, capture_output=True)
    assert time.monotonic() - t0 < 10
    assert info.value.timeout == 0.5 and info.value.output == b"partial\n"


def test_run_argument_conflicts_match_subprocess() -> None:
    with pytest.raises(ValueError, match=r"stdin and input arguments may not both be used\."):
        process.run(["true"], input=b"x", stdin=process.PIPE)
    with pytest.raises(ValueError, match="stdout and stderr arguments may not be used with"):
        process.run(["true"], capture_output=True, stdout=process.PIPE)
    assert process.run(["cat"], input=b"abc", capture_output=True).stdout == b"abc"


# --- bad input: typed error, nothing started ----------------------------------------------------


def _children() -> set[int]:
    me = str(os.getpid()).encode()
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_bytes()
            except OSError:
                continue
            if stat[stat.rindex(b")") + 2 :].split()[1] == me:
                out.add(int(name))
    return out


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"namespaces": ["uts", "bogus"]}, ValueError, r"unknown namespace type 'bogus'"),
        ({"namespaces": [3.5]}, TypeError, r"namespace type must be NsType, str or int"),
        ({"mount_proc": True}, ValueError, r"mount_proc=True needs 'pid' in namespaces"),
        ({"uid_map": "0 0 10\n5 100 1\n"}, ValueError, r"uid_map: .*overlap on the inside side"),
        ({"uid_map": [(i, i, 1) for i in range(341)]}, ValueError, r"at most 340 extents"),
        ({"map_root": True, "uid_map": "0 0 1"}, ValueError, r"can't be combined with uid_map"),
        ({"hostname": "x" * 65}, ValueError, r"hostname must be at most 64 bytes"),
        ({"propagation": "weird"}, ValueError, r"propagation must be one of .* got 'weird'"),
        ({"propagation": "shared"}, ValueError, r"propagation='shared' needs 'mnt'"),
        ({"setgroups": "maybe"}, ValueError, r"setgroups must be 'allow', 'deny' or None"),
        ({"time_offsets": {"realtime": 1}}, ValueError, r"keys must be 'monotonic' or 'boottime'"),
        ({"die_with_parent": 99}, ValueError, r"die_with_parent must be a bool or a signal"),
        ({"pass_fds": [1]}, ValueError, r"pass_fds must hold fds >= 3"),
        ({"root": "/tmp", "propagation": "shared"}, ValueError, r"root needs propagation"),
    ],
)
def test_spawn_bad_input_is_typed_and_starts_nothing(
    kwargs: dict[str, Any], exc: type, match: str
) -> None:
    before = _children()
    with pytest.raises(exc, match=match):
        process.spawn(["true"], **kwargs)
    assert _children() == before


_C_INT_OVERFLOW = 2147483648  # one past INT_MAX: what os.fstat/poll turn into OverflowError


@pytest.mark.parametrize(
    ("start", "exc", "match"),
    [
        # The report of issue 10: OverflowError escaped from os.fstat.
        (lambda: process.spawn_in(1, ["/bin/true"], pass_fds=[_C_INT_OVERFLOW]),
         ValueError, r"pass_fds must hold fds that fit a C int, got 2147483648"),
        (lambda: process.spawn(["true"], pass_fds=[2**64]), ValueError, r"fit a C int"),
        (lambda: process.spawn(["true"], stdout=_C_INT_OVERFLOW), ValueError, r"stdout must fit"),
        (lambda: process.spawn(["true"], die_with_parent=2**64), ValueError, r"die_with_parent"),
        (lambda: process.spawn_in(1, ["true"], uid=2**64), ValueError, r"uid must be an id"),
        (lambda: process.spawn_in(_C_INT_OVERFLOW, ["true"]), ValueError, r"pid must be"),
        (lambda: process.spawn(["true"], time_offsets={"monotonic": float("inf")}),
         ValueError, r"time_offsets\['monotonic'\] must be a number of seconds within"),
        (lambda: process.spawn(["true"], time_offsets={"boottime": 2**64}),
         ValueError, r"time_offsets\['boottime'\] must be a number of seconds within"),
        (lambda: process.call(os.getpid, timeout=float("nan")), ValueError, r"timeout must be"),
        (lambda: process.call(os.getpid, timeout="1"), TypeError, r"timeout must be None or"),
        (lambda: process.call(os.getpid, timeout=-1), ValueError, r"seconds >= 0, got -1"),
    ],
)  # fmt: skip
def test_out_of_range_ints_are_typed_errors_and_start_nothing(
    start: Any, exc: type, match: str
) -> None:
    before = _children()
    with pytest.raises(exc, match=match):
        start()
    assert _children() == before


def test_huge_timeouts_wait_instead_of_overflowing() -> None:
    # inf and 1e300 seconds are "no limit": poll(2) waits in slices of INT_MAX ms.
    assert process.call(os.getpid, namespaces=["pid"], timeout=float("inf")) == 1
    assert process.call(os.getpid, timeout=1e300) > 1
    assert process.call(os.getpid, timeout=2**2000) > 1
    assert process.run(["true"], timeout=1e300).returncode == 0
    with process.spawn(["sleep", "5"]) as proc:
        for bad, exc in ((float("nan"), ValueError), ("1", TypeError)):
            with pytest.raises(exc, match="timeout must be"):
                proc.wait(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout must be"):
            proc.communicate(timeout=float("nan"))
        with pytest.raises(TimeoutExpired):
            proc.wait(-1)  # as Popen.wait: a negative timeout has already expired
        proc.kill()
        assert proc.wait(float("inf")) == -signal.SIGKILL
        assert proc.wait(1e300) == -signal.SIGKILL


def test_spawn_empty_args_rejected() -> None:
    with pytest.raises(ValueError, match="args must be a non-empty sequence"):
        process.spawn([])


def test_spawn_missing_program_is_file_not_found_with_step() -> None:
    with pytest.raises(FileNotFoundError) as info:
        process.spawn(["/nonexistent/program"], namespaces=["uts"])
    err = info.value
    assert err.step == "execve"  # type: ignore[attr-defined]
    assert err.filename == "/nonexistent/program"
    assert any("before exec" in n for n in getattr(err, "__notes__", []))


def test_spawn_child_step_error_is_reraised_with_step() -> None:
    with pytest.raises(FileNotFoundError) as info:
        process.spawn(["true"], namespaces=["mnt"], cwd="/nonexistent-dir")
    assert info.value.step == "chdir"  # type: ignore[attr-defined]


def test_spawn_without_clone3_still_makes_pid_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    # As under a seccomp profile that answers clone3 with ENOSYS: launches
    # fork, so pid namespaces work as long as nothing needs the
    # CLONE_PARENT hop (a pid namespace owned by a new user namespace).
    def no_clone3(*a: Any, **k: Any) -> Any:
        raise UnsupportedError("clone3", requires="Linux 5.3")

    monkeypatch.setattr(nsprim.syscalls, "clone3", no_clone3)
    monkeypatch.setattr(_launch, "_clone3_ok", [True])  # learns ENOSYS here, forgets after
    # This process's own fork path (the forker's clone3 is not the one patched here).
    monkeypatch.setattr(_forker, "_enabled", [False])
    r = process.run(["hostname"], hostname="forked", capture_output=True, check=True)
    assert r.stdout == b"forked\n"
    assert process.call(os.getpid, namespaces=["pid"]) == 1
    with pytest.raises(UnsupportedError, match="clone3") as info:
        process.spawn(["true"], namespaces=["pid"], map_root=True)
    assert info.value.step == "clone3"  # type: ignore[attr-defined]


def test_pid_namespace_owned_by_new_user_namespace_gives_pid1_and_proc() -> None:
    # The child unshares user+pid and hops (clone3 CLONE_PARENT): the
    # program is PID 1, the caller's own child, and can mount /proc.
    me = Namespace.of_self("pid")
    with process.spawn(["sh", "-c", "echo $$; echo /proc/[0-9]*; exec sleep 30"],
                       namespaces=["pid"], map_root=True, mount_proc=True,
                       stdout=process.PIPE) as p:  # fmt: skip
        assert p.stdout is not None
        assert p.stdout.readline() == b"1\n" and p.stdout.readline() == b"/proc/1\n"
        assert Path(f"/proc/{p.pid}/stat").read_text().split()[3] == str(os.getpid())
        ns = p.namespaces()
        assert ns[NsType.PID] != me and ns[NsType.PID].owner() == ns[NsType.USER]
    # The launcher thread's own pid namespace for children is untouched.
    assert Namespace.of_thread("pid") == me


# --- call ------------------------------------------------------------------------------------------


def test_call_returns_result_from_inside() -> None:
    assert process.call(os.getpid, namespaces=["pid"]) == 1
    assert process.call(socket.gethostname, hostname="called") == "called"
    assert process.call(lambda a, b=0: a + b, 2, b=3) == 5


class Boom(Exception):
    pass


def _raise() -> None:
    raise Boom("from the child")


def test_call_reraises_child_exception_with_traceback_note() -> None:
    with pytest.raises(Boom, match="from the child") as info:
        process.call(_raise, namespaces=["uts"])
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "in child" in notes and "_raise" in notes and 'raise Boom("from the child")' in notes


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no pickling for you")


def _raise_unpicklable() -> None:
    raise Unpicklable("x")


def test_call_unpicklable_result_or_exception_is_call_error() -> None:
    with pytest.raises(CallError, match="result could not be pickled") as info:
        process.call(lambda: threading.Lock())
    assert info.value.type_name == "_thread.lock"
    with pytest.raises(CallError, match="exception could not be pickled") as info2:
        process.call(_raise_unpicklable)
    assert (
        "Unpicklable" in info2.value.type_name
        and "_raise_unpicklable" in info2.value.child_traceback
    )


def test_call_child_death_names_the_signal() -> None:
    with pytest.raises(CallError, match="killed by SIGKILL") as info:
        process.call(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert info.value.returncode == -signal.SIGKILL
    with pytest.raises(CallError, match=r"exited \(status 7\)") as info:
        process.call(lambda: os._exit(7))
    assert info.value.returncode == 7


def _fds_open(fds: list[int]) -> list[int]:
    return [fd for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")]


def _open_then_call_nested() -> tuple[list[int], list[int]]:
    # The first fds opened in a call child reuse the number of the parent's
    # channel end, which the child closed first thing.
    fds = [fd for _ in range(3) for fd in os.pipe()]
    return fds, nsprim.call(_fds_open, fds)


def test_nested_call_keeps_fds_that_reuse_the_parent_channel_number() -> None:
    # A call child must not take the parent's in-flight launches for its own:
    # a nested launch closed them in the grandchild, by number.
    fds, seen = nsprim.call(_open_then_call_nested)
    assert seen == fds


def _sleep_then_exit(seconds: float, code: int) -> None:
    time.sleep(seconds)
    os._exit(code)


def test_pending_call_detach_hands_the_child_over() -> None:
    child = nsprim.call_start(_sleep_then_exit, 0.2, 7)
    pid = child.detach()
    assert child.pidfd == -1 and child.fileno() == -1
    with pytest.raises(CallError, match="detached"):
        child.result()
    del child  # dropping it neither kills nor reaps the child now
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def test_pending_call_detach_after_reaping_is_value_error() -> None:
    child = nsprim.call_start(os.getpid)
    child.result()
    with pytest.raises(ValueError, match="already reaped"):
        child.detach()


def test_call_start_returns_while_the_callable_runs() -> None:
    r, w = os.pipe()
    try:
        # The child blocks on the pipe: call_start returned, so it is live.
        with process.call_start(os.read, r, 1, namespaces=["pid"]) as pending:
            assert not pending.poll() and pending.fileno() >= 0
            assert Path(f"/proc/{pending.pid}/status").read_text().count("NSpid:") == 1
            os.write(w, b"x")
            assert pending.result(timeout=10) == b"x"
            assert pending.poll() and pending.pidfd == -1
        with process.call_start(time.sleep, 30) as pending:
            pid = pending.pid
        assert _gone(pid)  # leaving the block killed and reaped it
        pending = process.call_start(time.sleep, 30)
        with pytest.raises(TimeoutExpired):
            pending.result(timeout=0.2)
        assert _gone(pending.pid)
    finally:
        os.close(r)
        os.close(w)
    with pytest.raises(FileNotFoundError) as info:
        process.call_start(os.getpid, namespaces=["mnt"], cwd="/nonexistent-dir")
    assert info.value.step == "chdir"  # type: ignore[attr-defined]


def _free_pid() -> int:
    return next(p for p in range(20000, 30000) if not os.path.exists(f"/proc/{p}"))


def _orphan_then_list() -> list[int]:
    if os.fork() == 0:  # a child that forks a sleeper and exits: the sleeper is orphaned
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kids = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
        if len(kids) == 2:  # the exited child (a zombie) and the orphan, reparented here
            return [int(k) for k in kids]
        time.sleep(0.01)
    raise AssertionError("the orphan was not reparented to the subreaper")


def test_call_options_for_the_suite_set_tid_subreaper_unshare() -> None:
    pid = _free_pid()
    assert process.call(os.getpid, set_tid=[pid]) == pid
    assert process.call(os.getpid, namespaces=["pid"], set_tid=[1]) == 1
    kids = process.call(_orphan_then_list, subreaper=True)
    assert all(_gone(k) for k in kids)  # killed and reaped before the result came back
    mine = Namespace.of_self("pid")
    inner = process.call(lambda: Namespace.of_self("pid"), unshare=int(CloneFlags.NEWPID))
    grandchild = process.call(
        lambda: process.call(lambda: Namespace.of_self("pid")), unshare=int(CloneFlags.NEWPID)
    )
    assert inner == mine and grandchild != mine  # unshare(NEWPID) holds the children only
    for bad, exc in (([0], ValueError), ("1", TypeError), ([2**31], ValueError)):
        with pytest.raises(exc, match="set_tid"):
            process.call(os.getpid, set_tid=bad)
    with pytest.raises(ValueError, match="unshare must be"):
        process.call(os.getpid, unshare=int(CloneFlags.THREAD))


def test_call_system_exit_stays_in_the_child() -> None:
    with pytest.raises(CallError, match="SystemExit") as info:
        process.call(sys.exit, 3)
    assert info.value.type_name == "builtins.SystemExit"


def test_call_timeout_kills_the_child() -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutExpired, match=r"call timed out after 0\.3 seconds"):
        process.call(time.sleep, 30, timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_call_big_result_does_not_deadlock() -> None:
    data = process.call(lambda: b"z" * (8 << 20))
    assert len(data) == 8 << 20


def _mount_proc_and_count() -> int:
    return len([p for p in os.listdir("/proc") if p.isdigit()])


def test_call_mount_proc_sees_only_itself() -> None:
    assert process.call(_mount_proc_and_count, namespaces=["pid"], mount_proc=True) == 1


def test_call_result_pickles_exceptions_from_nsprim() -> None:
    err = AccessDenied("setns", pid=5, hint="h")
    assert pickle.loads(pickle.dumps(err)).hint == "h"


# --- threads ------------------------------------------------------------------------------------


def test_spawn_run_call_from_16_threads_at_once() -> None:
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            kind = i % 4
            if kind == 0:
                r = process.run(["hostname"], hostname=f"t{i}", capture_output=True, check=True)
                results.append(r.stdout.decode().strip() == f"t{i}")
            elif kind == 1:
                results.append(process.call(os.getpid, namespaces=["pid"]) == 1)
            elif kind == 2:
                with process.spawn(["cat"], map_root=True, stdin=process.PIPE,
                                   stdout=process.PIPE) as p:  # fmt: skip
                    out, _ = p.communicate(f"{i}".encode(), timeout=20)
                results.append(out == f"{i}".encode())
            else:
                results.append(process.call(os.getuid, map_root=True) == 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert results == [True] * 16


def test_user_namespace_works_from_a_process_with_running_threads() -> None:
    stop = threading.Event()
    spinners = [threading.Thread(target=lambda: stop.wait(30)) for _ in range(4)]
    for t in spinners:
        t.start()
    try:
        assert threading.active_count() > 4
        # unshare(CLONE_NEWUSER) would be EINVAL here; nsprim does it in the fresh child.
        with pytest.raises(OSError) as info:
            unshare(CloneFlags.NEWUSER)
        assert info.value.errno == errno.EINVAL
        assert process.call(os.getuid, map_root=True) == 0
        assert process.run(["id", "-u"], map_root=True, capture_output=True).stdout == b"0\n"
    finally:
        stop.set()
        for t in spinners:
            t.join()


# --- the posix_spawn fast path (die_with_parent=False, thread-scoped types and mnt) --------------


def test_fast_path_is_taken_and_isolates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[int] = []
    real = _launch.fast_spawn

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(_launch, "fast_spawn", counting)
    host = socket.gethostname()
    mnt = Namespace.of_self("mnt")
    r = process.run(
        ["sh", "-c", "hostname; pwd; grep ' / / ' /proc/self/mountinfo; readlink /proc/self/ns/mnt"],
        namespaces=["mnt", "ipc", "cgroup"], hostname="fast", cwd=tmp_path, loopback_up=True,
        die_with_parent=False, capture_output=True, check=True,
    )  # fmt: skip
    name, pwd, rootline, mntlink = r.stdout.decode().splitlines()
    assert calls == [1]
    assert (name, pwd) == ("fast", str(tmp_path)) and "shared:" not in rootline
    assert mntlink != f"mnt:[{mnt.ino}]"
    # Nothing of the caller changed: not this thread, not the process.
    assert socket.gethostname() == host and Namespace.of_thread("mnt") == mnt
    assert os.getcwd() != str(tmp_path)
    # user, time and mount_proc need the fork path; so does die_with_parent
    # while no supervisor is wanted (a process's first such spawn).
    process.run(["true"], namespaces=["user"], die_with_parent=False)
    process.run(["true"], namespaces=["time"], die_with_parent=False)
    process.run(["true"], namespaces=["pid"], mount_proc=True, die_with_parent=False)
    monkeypatch.setattr(_supervisor, "want_watch", lambda: False)
    process.run(["true"], namespaces=["uts"])
    assert calls == [1]
    # From the second on, die_with_parent takes the fast path, watched.
    monkeypatch.setattr(_supervisor, "want_watch", lambda: True)
    process.run(["true"], namespaces=["uts"])
    assert calls == [1, 1]


def test_watched_fast_path_hands_over_on_the_spawning_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # die_with_parent on the fast path: the pidfd reaches the supervisor from
    # the thread that posix_spawned (no thread switch in the kill window).
    seen: list[tuple[int, bool]] = []
    real_watch = _supervisor.watch

    def watch(fd: int, sig: int = signal.SIGKILL, owner: Any = None, start: bool = True) -> None:
        seen.append((threading.get_native_id(), start))
        real_watch(fd, sig, owner, start)

    monkeypatch.setattr(_supervisor, "watch", watch)
    process.run(["true"], namespaces=["uts"])  # a process's first may take the fork path
    # From the second on: watched, from the thread that spawned: mnt's
    # throwaway thread; for uts from a thread that is not the main one, that
    # thread itself (it unshares and comes back).
    seen.clear()
    r = process.run(["true"], namespaces=["mnt"])
    assert r.returncode == 0 and len(seen) == 1
    assert seen[0][0] != threading.get_native_id() and seen[0][1] is False
    seen.clear()
    worker: list[int] = []

    def from_worker() -> None:
        worker.append(threading.get_native_id())
        worker.append(process.run(["true"], namespaces=["uts"]).returncode)

    t = threading.Thread(target=from_worker)
    t.start()
    t.join()
    assert worker[1] == 0 and seen == [(worker[0], False)]

    # A supervisor gone since want_watch: the caller's thread hands the
    # running program to a new one; the program is never started twice.
    def gone_then_back(
        fd: int, sig: int = signal.SIGKILL, owner: Any = None, start: bool = True
    ) -> None:
        seen.append((threading.get_native_id(), start))
        if not start:
            raise _supervisor.SupervisorError("test: gone")
        real_watch(fd, sig, owner, start)

    monkeypatch.setattr(_supervisor, "watch", gone_then_back)
    seen.clear()
    log = tmp_path / "runs"
    r = process.run(["sh", "-c", f"echo $PPID >> {log}"], namespaces=["uts"])
    assert r.returncode == 0 and log.read_text().split() == [str(os.getpid())]
    assert [s for _, s in seen] == [False, True] and seen[1][0] == threading.get_native_id()

    # No supervisor at all: the spawn fails, the program is killed and reaped.
    def never(fd: int, sig: int = signal.SIGKILL, owner: Any = None, start: bool = True) -> None:
        raise _supervisor.SupervisorError("test: no supervisor")

    monkeypatch.setattr(_supervisor, "watch", never)
    before = set(_children_now())
    with pytest.raises(_supervisor.SupervisorError):
        process.run(["sleep", "60"], namespaces=["uts"])
    assert set(_children_now()) <= before


def _children_now() -> list[int]:
    out: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def test_fast_path_takes_pid_and_gives_pid1(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = _launch.fast_spawn

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(_launch, "fast_spawn", counting)
    me = Namespace.of_self("pid")
    for types in (["pid"], ["pid", "net", "uts", "ipc", "cgroup", "mnt"], ["pid"]):
        # "sh" by PATH: one posix_spawn attempt, or the dead init's namespace
        # would refuse the next with ENOMEM.
        r = process.run(["sh", "-c", "echo $$; readlink /proc/self/ns/pid"], namespaces=types,
                        die_with_parent=False, capture_output=True, check=True)  # fmt: skip
        pid1, link = r.stdout.decode().split()
        assert pid1 == "1" and link != f"pid:[{me.ino}]"
    assert calls == [1, 1, 1]
    assert Namespace.of_thread("pid") == me
    with pytest.raises(FileNotFoundError) as info:
        process.run(["no-such-program-xyz"], namespaces=["pid"], die_with_parent=False)
    assert info.value.step == "execve"  # type: ignore[attr-defined]


def test_fast_path_closes_inheritable_fds_and_reports_exec_errors() -> None:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.set_inheritable(w2, True)
    try:
        code = (
            "import os,sys\nos.write(int(sys.argv[1]), b'kept\\n')\n"
            "try: os.fstat(int(sys.argv[2])); print('leaked')\nexcept OSError: print('closed')"
        )
        r = process.run([PY, "-c", code, str(w1), str(w2)], pass_fds=[w1], namespaces=["uts"],
                        die_with_parent=False, capture_output=True)  # fmt: skip
        assert r.stdout == b"closed\n", r.stderr
        os.close(w1)
        assert os.read(r1, 100) == b"kept\n"
    finally:
        for fd in (r1, w2, r2):
            os.close(fd)
    with pytest.raises(FileNotFoundError) as info:
        process.run(["no-such-program-xyz"], namespaces=["net"], die_with_parent=False)
    assert info.value.step == "execve"  # type: ignore[attr-defined]


def test_run_text_mode_encodes_input_and_decodes_output_like_subprocess() -> None:
    import subprocess as sp

    ours = nsprim.run(
        ["sh", "-c", "cat; printf 'a\\r\\nb'"],
        input="héllo\n",
        capture_output=True,
        text=True,
        namespaces=["uts"],
    )
    theirs = sp.run(
        ["sh", "-c", "cat; printf 'a\\r\\nb'"], input="héllo\n", capture_output=True, text=True
    )
    assert ours.stdout == theirs.stdout == "héllo\na\nb"
    assert ours.stderr == theirs.stderr == ""
    with pytest.raises(TypeError, match="input must be bytes unless text"):
        nsprim.run(["true"], input="x")


def test_enter_refusal_is_a_thread_scope_error() -> None:
    cm = nsprim.enter(os.getpid(), "mnt")
    with pytest.raises(nsprim.ThreadScopeError, match=r"use nsprim\.call_in"), cm:
        pass


_AFTER_PRELOAD = """
import os, sys
import nsprim
if sys.argv[1] == "preload":
    nsprim.preload()
# From here on nothing can be imported (as after a setuid to a user who can't
# read the checkout).
sys.path[:] = []
sys.path_importer_cache.clear()
assert nsprim.call(os.getpid, namespaces=["uts"]) > 0
assert nsprim.run(["/bin/true"], namespaces=["uts"]).returncode == 0
for _ in range(2):  # the second die_with_parent spawn starts the supervisor
    with nsprim.spawn(["/bin/sleep", "5"], namespaces=["uts"], die_with_parent=True) as p:
        assert nsprim.call_in(p, os.getpid) > 0
        p.kill()
print("ok")
"""


def test_preload_leaves_nothing_to_import_for_the_process_api() -> None:
    import subprocess
    import sys

    def go(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _AFTER_PRELOAD, mode],
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = go("preload")
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    # Control: without preload the same program needs an import on the way.
    control = go("none")
    assert control.returncode != 0 and "ModuleNotFoundError" in control.stderr, control.stderr
