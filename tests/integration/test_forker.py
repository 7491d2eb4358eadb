"""The forker: fork-path programs started by a helper process keep the fork path's semantics.

What is pinned here (timings live in scripts/bench_spawn.py):

* which spawns it takes (the second fork-path program of a process starts
  it, the ones after it use it; a single spawn never starts it);
* that a program started through it sees exactly what the fork path gives
  it (ids, capabilities, signal dispositions and mask, umask, cwd, fds,
  environment, namespaces and their setup), for a table of option sets,
  compared side by side with ``use_forker(False)``;
* that a change of what a child inherits retires it (and the program gets
  the new state), that its errors read as the fork path's, that it dies
  with its caller and can be killed without harm, and that die_with_parent
  holds for its programs.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsprim import _forker, _forkerd, process

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/ns/user"), reason="no user namespaces"
)


@pytest.fixture
def forker() -> Iterator[list[int]]:
    """A fresh, running forker for this test; counts the spawns it answered."""
    _forker.shutdown()
    process.use_forker(True)
    real = _forker._request
    used = _count_answers()
    try:
        _warm()
        yield used
    finally:
        _forker._request = real  # type: ignore[assignment]
        _forker.shutdown()


def _count_answers() -> list[int]:
    """Wrap the forker's request so that each program it started is listed (by pid)."""
    used: list[int] = []
    real = _forker._request

    def counting(*a: Any) -> Any:
        got = real(*a)
        if got is not None:
            used.append(got[0])
        return got

    _forker._request = counting  # type: ignore[assignment]
    return used


def _warm() -> None:
    """Spawn fork-path programs until the forker answers (its python takes a while to start)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.run(["true"], namespaces=["user"], check=True)
        h = _forker._handle
        if h is not None and h.up():
            return
        time.sleep(0.02)
    raise AssertionError("the forker never said hello")


# Everything a program can tell about what it inherited, minus what differs
# between two programs anyway (pids, times).
PROBE = r"""
for f in /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups /proc/self/timens_offsets; do
    echo "$f: $(cat $f 2>/dev/null | tr -s ' ' | tr '\n' ';')"
done
grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|SigBlk|SigIgn|Umask|Cpus_allowed):' /proc/self/status
echo "cwd: $(pwd)"
echo "fds: $(ls /proc/self/fd | sort -n | tr '\n' ' ')"
echo "hostname: $(hostname)"
echo "ns: $(for n in uts ipc net mnt pid user cgroup time; do readlink /proc/self/ns/$n | cut -d: -f1; done | tr '\n' ' ')"
echo "pid1: $([ $$ = 1 ] && echo yes || echo no)"
echo "ppid-is-caller: $([ "$PPID" = "$CALLER" ] && echo yes || echo no-or-other-pidns)"
echo "limits: $(ulimit -n) $(ulimit -s)"
echo "cgroup: $(cat /proc/self/cgroup | tr '\n' ';')"
echo "proc-mounted: $(mount | grep -c ' /proc type proc')"
echo "env: FOO=${FOO:-unset} PATH-set=${PATH:+yes}"
"""

CASES: list[dict[str, Any]] = [
    {"namespaces": ["user"]},
    {"namespaces": ["user"], "map_root": True},
    {"namespaces": ["user"], "uid_map": [(0, os.geteuid(), 1)], "setgroups": "deny",
     "gid_map": [(0, os.getegid(), 1)]},
    {"namespaces": ["user", "uts"], "hostname": "forked", "map_root": True},
    {"namespaces": ["user", "pid", "mnt"], "mount_proc": True, "map_root": True},
    {"namespaces": ["user", "mnt", "ipc", "net", "cgroup"], "loopback_up": True,
     "map_root": True},
    {"namespaces": ["user", "time"], "time_offsets": {"monotonic": 3600}, "map_root": True},
    {"namespaces": ["user"], "die_with_parent": False, "env": {"FOO": "bar"}},
    {"namespaces": ["user", "mnt"], "map_root": True, "cwd": "/usr"},
    # a step the lean child leaves to nsprim's own table (the forker loads it)
    {"namespaces": ["user"], "map_root": True, "keep_caps": True},
]  # fmt: skip


def _probe(**kw: Any) -> str:
    env = dict(kw.pop("env", os.environ))
    env["CALLER"] = str(os.getpid())
    r = process.run(["sh", "-c", PROBE], env=env, capture_output=True, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(kw["namespaces"]) + str(len(kw)))
def test_a_program_sees_what_the_fork_path_gives_it(forker: list[int], kw: dict[str, Any]) -> None:
    via = _probe(**kw)
    assert forker, "the forker did not start this program"
    process.use_forker(False)
    try:
        plain = _probe(**kw)
    finally:
        process.use_forker(True)
    assert via == plain


def test_the_callers_changing_state_travels_with_each_request(
    forker: list[int], tmp_path: Path
) -> None:
    """cwd, umask, ignored and blocked signals, stdio and pass_fds: as the caller has them now."""
    r, w = os.pipe()
    old_mask = os.umask(0o027)
    old_cwd = os.getcwd()
    os.chdir(tmp_path)
    old_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
    try:
        out = process.run(
            ["sh", "-c", f"echo ok > /proc/self/fd/{w}; {PROBE}"],
            namespaces=["user"],
            pass_fds=[w],
            capture_output=True,
            env={"CALLER": str(os.getpid())},
        ).stdout.decode()
        # dash clears its signal mask at start: the program itself reads it.
        mask = process.run(
            ["grep", "SigBlk", "/proc/self/status"], namespaces=["user"], capture_output=True
        ).stdout.decode()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGUSR1, old_usr1)
        os.chdir(old_cwd)
        os.umask(old_mask)
        os.close(w)
    assert os.read(r, 10) == b"ok\n"
    os.close(r)
    assert forker
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["Umask"].strip() == "0027"
    assert lines["cwd"].strip() == str(tmp_path)
    usr1, usr2 = 1 << (signal.SIGUSR1 - 1), 1 << (signal.SIGUSR2 - 1)
    assert int(lines["SigIgn"], 16) == usr1  # and SIGPIPE/SIGXFSZ back at their default
    assert int(mask.split(":")[1], 16) == usr2
    assert lines["fds"].split() == ["0", "1", "2", "3", str(w)]  # 3: ls's own directory


def test_a_control_sees_a_different_umask(forker: list[int]) -> None:
    # The comparison above is not vacuous: one changed inheritance shows in the probe.
    before = _probe(namespaces=["user"])
    old = os.umask(0o077)
    try:
        after = _probe(namespaces=["user"])
    finally:
        os.umask(old)
    assert before != after and "Umask:\t0077" in after


def test_a_changed_rlimit_retires_the_forker(forker: list[int]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    first = process.helper_pids()
    assert first
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
    try:
        used = len(forker)
        out = _probe(namespaces=["user"])
        assert f"limits: {soft - 1} " in out  # the new limit, through the fork path
        assert len(forker) == used
        assert not (process.helper_pids() & first)  # the old one is gone (and reaped)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_control_without_the_check_a_program_would_get_the_old_rlimit(
    forker: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the check protects against: with the comparison forced to "same",
    # the forker's program inherits the limit the forker had, not the caller's.
    h = _forker._handle
    assert h is not None
    monkeypatch.setattr(_forker, "_rest", lambda: h.snap[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
    try:
        out = _probe(namespaces=["user"])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert f"limits: {soft} " in out


def test_errors_read_as_the_fork_paths(forker: list[int]) -> None:
    def error(**kw: Any) -> tuple[type, str, int | None, str | None]:
        with pytest.raises(OSError) as info:
            process.run(["/nonexistent/prog"], **kw)
        e = info.value
        return type(e), str(e), e.errno, getattr(e, "step", None)

    via = error(namespaces=["user"])
    assert forker
    process.use_forker(False)
    try:
        plain = error(namespaces=["user"])
    finally:
        process.use_forker(True)
    assert via == plain
    assert via[0] is FileNotFoundError and via[3] == "execve"


def test_a_killed_forker_costs_one_fork_path_spawn(forker: list[int]) -> None:
    (pid,) = process.helper_pids()
    os.kill(pid, signal.SIGKILL)
    r = process.run(["sh", "-c", "echo $$"], namespaces=["user"], capture_output=True)
    assert r.returncode == 0
    assert pid not in process.helper_pids()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped, not a zombie
    _warm()  # and a new one serves again


def test_use_forker_false_stops_and_reaps_it(forker: list[int]) -> None:
    (pid,) = process.helper_pids()
    process.use_forker(False)
    try:
        assert process.helper_pids() == frozenset()
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        used = len(forker)
        process.run(["true"], namespaces=["user"], check=True)
        process.run(["true"], namespaces=["user"], check=True)
        assert len(forker) == used and process.helper_pids() == frozenset()
    finally:
        process.use_forker(True)
    with pytest.raises(TypeError, match="bool"):
        process.use_forker(1)  # type: ignore[arg-type]


def _script(body: str) -> subprocess.Popen[str]:
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_one_spawn_never_starts_it() -> None:
    p = _script(
        """
        import nsprim
        from nsprim import process
        nsprim.run(["true"], namespaces=["user"], check=True)
        print(sorted(process.helper_pids()), flush=True)
        """
    )
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and out.strip() == "[]"


def test_its_programs_and_itself_die_with_the_caller() -> None:
    p = _script(
        """
        import threading, time
        import nsprim
        from nsprim import process, _forker
        for _ in range(400):
            nsprim.run(["true"], namespaces=["user"], check=True)
            h = _forker._handle
            if h is not None and h.up():
                break
            time.sleep(0.02)
        kids = []
        def worker():
            kids.append(nsprim.spawn(["sleep", "600"], namespaces=["user"]))
        t = threading.Thread(target=worker)
        t.start(); t.join()  # the spawning thread is gone: the program lives on
        kids.append(nsprim.spawn(["sleep", "600"], namespaces=["user", "pid"]))
        time.sleep(0.2)
        print(*process.helper_pids(), *(k.pid for k in kids), all(k.poll() is None for k in kids),
              flush=True)
        time.sleep(600)
        """
    )
    assert p.stdout is not None
    line = p.stdout.readline().split()
    assert line and line[-1] == "True", line
    pids = [int(x) for x in line[:-1]]
    assert len(pids) == 3  # the forker and two programs
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    p.stdout.close()
    for pid in pids:
        assert _gone(pid), f"{pid} outlived its caller"


def test_a_forked_caller_gets_its_own(forker: list[int]) -> None:
    theirs = process.helper_pids()
    # The child's spawns work and never use the parent's forker.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        try:
            os.close(r)
            ok = all(process.run(["true"], namespaces=["user"]).returncode == 0 for _ in range(5))
            mine = process.helper_pids()
            os.write(w, b"1" if ok and not (mine & theirs) else b"0")
            process.use_forker(False)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.close(r)
    os.waitpid(pid, 0)
    assert process.helper_pids() == theirs
    process.run(["true"], namespaces=["user"], check=True)
    assert forker


def test_pass_fds_on_the_forkers_own_numbers(forker: list[int]) -> None:
    # The forker keeps its own fds at _HIGH and up (600 under the usual
    # limit): a caller's fd there still arrives under its number, and the
    # forker goes on serving.
    high = _forkerd._HIGH
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    wanted = [high, high + 1, high + 2] + ([1000] if soft > 1001 else [])
    r, w = os.pipe()
    try:
        for fd in wanted:
            os.dup2(w, fd)
        used = len(forker)
        script = " ".join(str(fd) for fd in wanted)
        out = process.run(
            ["sh", "-c", f"for fd in {script}; do echo $fd > /proc/self/fd/$fd; done; "
             "ls /proc/self/fd | sort -n | tr '\\n' ' '"],
            namespaces=["user"], pass_fds=wanted, capture_output=True,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert len(forker) == used + 1
        assert out.stdout.decode().split() == ["0", "1", "2", "3", *map(str, wanted)]
    finally:
        for fd in (w, *wanted):
            os.close(fd)
    assert sorted(os.read(r, 100).split()) == sorted(b"%d" % fd for fd in wanted)
    os.close(r)
    process.run(["true"], namespaces=["user"], check=True)
    assert len(forker) == used + 2


def test_closed_stdio_stays_closed(forker: list[int]) -> None:
    # A caller without a stdin gives its program none, as a fork would; and
    # the fds nsprim opens for the request meanwhile (its channel, the
    # working directory) take the free number 0 without becoming the stdin.
    # (The shell's own test, a builtin: a pipeline would open fds of its own.)
    r, w = os.pipe()
    saved = os.dup(0)
    try:
        os.close(0)
        used = len(forker)
        p = process.run(
            ["sh", "-c", "[ -e /proc/self/fd/0 ] && echo open || echo closed"],
            namespaces=["user"],
            stdout=w,
        )
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(w)
    assert p.returncode == 0 and len(forker) == used + 1
    assert os.read(r, 100) == b"closed\n"
    os.close(r)


def _threads_at_once() -> tuple[list[str], int]:
    """In a forked child (its threads must not outlive it in pytest's process)."""
    import threading

    used = _count_answers()
    _warm()
    errors: list[str] = []

    def worker(k: int) -> None:
        for i in range(5):
            r = process.run(
                ["sh", "-c", 'echo "$TAG $(cat /proc/self/uid_map | tr -s " ")"'],
                namespaces=["user"],
                map_root=bool(i % 2),
                env={"TAG": f"{k}.{i}"},
                capture_output=True,
            )
            want = [f"{k}.{i}", "0", str(os.geteuid()), "1"] if i % 2 else [f"{k}.{i}"]
            if r.returncode != 0 or r.stdout.decode().split()[: len(want)] != want:
                errors.append(f"{k}.{i}: {r.returncode} {r.stdout!r} {r.stderr!r}")

    before = len(used)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    process.use_forker(False)  # and reap it before this child exits
    return errors, len(used) - before


def test_threads_spawning_at_once_each_get_their_own_program() -> None:
    # One request at a time on one channel: 8 threads x 5 spawns, each
    # program answering with what it was given, none mixed up or lost.
    from forked import in_child

    errors, served = in_child(_threads_at_once, timeout=120)
    assert errors == []
    assert served == 40
