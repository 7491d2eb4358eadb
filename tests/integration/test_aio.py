"""nsprim.aio: programs in namespaces awaited on their pidfd through the event loop.

The per-test leak guard (tests/conftest.py) also checks every test here for
leaked fds, unreaped children and host changes. The 200-children tests use
UTS and IPC namespaces: network namespaces are dear for the kernel to tear
down (cleanup_net), and hundreds of them slow every other test on the host.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from typing import Any

import pytest

import nsprim
from nsprim import aio

pytestmark = pytest.mark.needs_root


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _gone(pid: int) -> bool:
    """True when *pid* is neither running nor a zombie of ours."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    # Recycled by someone else: not our child any more.
    return int(stat[stat.rindex(")") + 2 :].split()[1]) != os.getpid()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _ours(pid: int) -> bool:
    """Whether *pid* descends from this process."""
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        pid = _ppid(pid)
    return False


def _ns_in_use(inodes: set[int], kind: str = "net") -> set[int]:
    """The *inodes* still held by one of our processes or fds.

    Other processes on the host don't count: once a namespace is freed, the
    kernel may give its inode number to someone else's new namespace.
    """
    held = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ino = os.stat(f"/proc/{name}/ns/{kind}").st_ino
                if ino in inodes and _ours(int(name)):
                    held.add(ino)
            except OSError:
                continue
    for name in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if link.startswith(f"{kind}:["):
            held |= inodes & {int(link[len(kind) + 2 : -1])}
    return held


def test_arun_runs_in_new_namespaces_and_captures_output() -> None:
    r = _run(aio.arun(["hostname"], hostname="aio-inside", capture_output=True, check=True))
    assert r.returncode == 0
    assert r.stdout == b"aio-inside\n"
    assert r.stderr == b""
    assert socket.gethostname() != "aio-inside"


def test_arun_input_text_and_check_like_subprocess_run() -> None:
    r = _run(aio.arun(["cat"], input="héllo\r\n", capture_output=True, text=True))
    assert r.stdout == "héllo\n"
    with pytest.raises(subprocess.CalledProcessError) as info:
        _run(
            aio.arun(
                ["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True, check=True
            )
        )
    assert (info.value.returncode, info.value.stdout, info.value.stderr) == (3, b"out\n", b"err\n")


def test_aspawn_gives_asyncio_streams() -> None:
    async def main() -> tuple[bytes, bytes, bytes, int]:
        async with await aio.aspawn(
            ["sh", "-c", 'read line; echo "got $line"; echo bye; echo oops >&2'],
            namespaces=["uts"],
            stdin=aio.PIPE,
            stdout=aio.PIPE,
            stderr=aio.PIPE,
        ) as p:
            assert isinstance(p.stdin, asyncio.StreamWriter)
            assert isinstance(p.stdout, asyncio.StreamReader)
            p.stdin.write(b"ping\n")
            await p.stdin.drain()
            first = await p.stdout.readline()
            rest, err = await p.communicate()
            assert rest is not None and err is not None
            return first, rest, err, await p.wait()

    assert _run(main()) == (b"got ping\n", b"bye\n", b"oops\n", 0)


def test_aspawn_stderr_to_stdout_and_devnull() -> None:
    async def main() -> tuple[Any, Any]:
        p = await aio.aspawn(["sh", "-c", "echo a; echo b >&2"], stdout=aio.PIPE, stderr=aio.STDOUT)
        async with p:
            out = await p.communicate()
        q = await aio.aspawn(["echo", "x"], stdout=aio.DEVNULL)
        async with q:
            return out, await q.communicate()

    out, quiet = _run(main())
    assert out == (b"a\nb\n", None)
    assert quiet == (None, None)


def test_exits_are_awaited_on_pidfds_without_a_thread_per_child() -> None:
    async def main() -> tuple[list[int], int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        procs = [await aio.aspawn(["sleep", "0.5"], namespaces=["net"]) for _ in range(20)]
        most = threading.active_count()  # the default executor's starters, at most
        codes = await asyncio.gather(*(p.wait() for p in procs))
        most = max(most, threading.active_count())
        t.cancel()
        for p in procs:
            p.close()
        return codes, ticks, most

    before = threading.active_count()
    codes, ticks, most = _run(main())
    assert codes == [0] * 20
    assert ticks >= 20  # the loop kept running while the children lived
    # 20 children, but no more threads than the executor's few starters.
    assert most - before <= min(32, (os.cpu_count() or 1) + 4) < 20


def test_cancelled_while_starting_the_program_is_killed_and_reaped() -> None:
    async def main() -> None:
        tasks = [asyncio.ensure_future(aio.aspawn(["sleep", "30"])) for _ in range(8)]
        await asyncio.sleep(0)  # each task has handed its start to the executor
        for t in tasks:
            t.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)

    _run(main())  # the leak guard finds no child, running or zombie


def test_arun_timeout_kills_and_reaps() -> None:
    pids: list[int] = []

    async def main() -> None:
        real = aio.aspawn

        async def spy(*a: Any, **kw: Any) -> aio.Process:
            p = await real(*a, **kw)
            pids.append(p.pid)
            return p

        aio.aspawn = spy  # type: ignore[assignment]
        try:
            await aio.arun(["sleep", "30"], namespaces=["pid"], timeout=0.3)
        finally:
            aio.aspawn = real  # type: ignore[assignment]

    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        _run(main())
    assert time.monotonic() - t0 < 10
    assert info.value.timeout == 0.3
    assert pids and _gone(pids[0])


def test_cancelling_arun_kills_and_reaps_the_child() -> None:
    async def main() -> tuple[int, str]:
        task = asyncio.ensure_future(
            aio.arun(["sh", "-c", "readlink /proc/self/ns/net; exec sleep 30"],
                     namespaces=["net"], capture_output=True)
        )  # fmt: skip
        # Find the child through /proc: our only child running sleep.
        for _ in range(500):
            await asyncio.sleep(0.01)
            kids = [
                int(n) for n in os.listdir("/proc") if n.isdigit() and not _gone(int(n))
                and n != str(os.getpid())
            ]  # fmt: skip
            sleeping = [k for k in kids if _cmdline(k).startswith("sleep")]
            if sleeping:
                break
        assert sleeping, "the child never started"
        ns = os.readlink(f"/proc/{sleeping[0]}/ns/net")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return sleeping[0], ns

    pid, ns = _run(main())
    assert _gone(pid)
    inode = int(ns.split("[")[1].rstrip("]"))
    assert not _ns_in_use({inode})


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_cancelling_wait_leaves_the_process_to_its_owner() -> None:
    async def main() -> int:
        async with await aio.aspawn(["sleep", "30"]) as p:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(p.wait(), 0.1)
            assert p.returncode is None  # still running: wait() was cancelled, not the process
            p.terminate()
            return await p.wait()

    assert _run(main()) == -15


def test_200_concurrent_children_leave_no_fd_zombie_or_namespace() -> None:
    fds = len(os.listdir("/proc/self/fd"))

    async def main() -> list[tuple[bytes, bytes]]:
        # All 200 are alive at once: each reports its namespace, then waits for its line.
        procs = [
            await aio.aspawn(
                ["sh", "-c", "readlink /proc/self/ns/uts; read x; echo $x"],
                namespaces=["uts", "ipc"], hostname=f"c{i}",
                stdin=aio.PIPE, stdout=aio.PIPE,
            )
            for i in range(200)
        ]  # fmt: skip
        try:
            links = [await p.stdout.readline() for p in procs if p.stdout]
            outs = await asyncio.gather(
                *(p.communicate(f"{i}\n".encode()) for i, p in enumerate(procs))
            )
            assert all(p.returncode == 0 for p in procs)
            return [(link, out or b"") for link, (out, _) in zip(links, outs)]
        finally:
            for p in procs:
                p.close()

    results = _run(main())
    inodes = set()
    for i, (link, echoed) in enumerate(results):
        assert echoed == f"{i}\n".encode()
        inodes.add(int(link.decode().split("[")[1].split("]")[0]))
    assert len(inodes) == 200  # each child had its own UTS namespace
    assert not _ns_in_use(inodes, "uts")
    assert len(os.listdir("/proc/self/fd")) == fds


def test_200_children_cancelled_midway_leave_nothing() -> None:
    async def main() -> list[Any]:
        tasks = [
            asyncio.ensure_future(aio.arun(["sleep", "30"], namespaces=["uts"])) for _ in range(200)
        ]
        await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    fds = len(os.listdir("/proc/self/fd"))
    outcomes = _run(main())
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert len(os.listdir("/proc/self/fd")) == fds


def test_arun_validates_before_starting_anything() -> None:
    with pytest.raises(ValueError, match="timeout must be None or seconds >= 0, got -1"):
        _run(aio.arun(["true"], timeout=-1))
    with pytest.raises(ValueError, match="namespace"):
        _run(aio.arun(["true"], namespaces=["nope"]))
    with pytest.raises(TypeError, match="input must be bytes"):
        _run(aio.arun(["true"], input="text"))
    with pytest.raises(FileNotFoundError):
        _run(aio.arun(["/nonexistent/program"]))


def test_nsprim_run_from_threads_agrees_with_arun() -> None:
    # The baseline of scripts/bench_aio.py gives the same answers.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        sync = list(pool.map(
            lambda i: nsprim.run(["hostname"], hostname=f"h{i}", capture_output=True).stdout,
            range(8),
        ))  # fmt: skip

    async def main() -> list[bytes]:
        rs = await asyncio.gather(
            *(aio.arun(["hostname"], hostname=f"h{i}", capture_output=True) for i in range(8))
        )
        return [r.stdout for r in rs]

    assert _run(main()) == sync == [f"h{i}\n".encode() for i in range(8)]


# --- acall ------------------------------------------------------------------------------------


def _hostname_and_pid(x: int) -> tuple[int, str, int]:
    return x, socket.gethostname(), os.getpid()


def _raises() -> None:
    raise KeyError("from the child")


def test_acall_returns_and_raises_as_call() -> None:
    async def main() -> tuple[Any, ...]:
        got = await aio.acall(_hostname_and_pid, 7, namespaces=["uts", "pid"], hostname="ac")
        with pytest.raises(KeyError, match="from the child") as info:
            await aio.acall(_raises, namespaces=["uts"])
        big = await aio.acall(bytes, 3_000_000)  # more than a pipe holds
        return got, info.value, big

    (x, host, pid), exc, big = _run(main())
    assert (x, host, pid) == (7, "ac", 1)
    assert any("in child" in note for note in getattr(exc, "__notes__", []))
    assert big == bytes(3_000_000)
    with pytest.raises(TypeError, match="fn must be callable"):
        _run(aio.acall(42))  # type: ignore[arg-type]


def _status(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "".join(line for line in f if line.startswith(("Name", "State", "PPid")))
    except OSError:
        return "gone"


def _write_pid_and_sleep(path: str) -> None:
    with open(path, "w") as f:
        f.write(f"{os.getpid()} {os.readlink('/proc/self/ns/uts')}")
    time.sleep(30)


def test_acall_timeout_and_cancellation_kill_and_reap(tmp_path: Any) -> None:
    mark = tmp_path / "child"

    async def main() -> str:
        with pytest.raises(nsprim.TimeoutExpired):
            await aio.acall(time.sleep, 30, namespaces=["uts"], timeout=0.3)
        task = asyncio.ensure_future(aio.acall(_write_pid_and_sleep, str(mark), namespaces=["uts"]))
        for _ in range(1000):
            await asyncio.sleep(0.01)
            if mark.exists() and mark.read_text():
                break
        seen = mark.read_text()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    t0 = time.monotonic()
    pid, uts = _run(main()).split()
    assert time.monotonic() - t0 < 20
    # The child is gone, not merely killed: reaped before the cancellation returned.
    assert not os.path.exists(f"/proc/{pid}"), _status(int(pid))
    assert not _ns_in_use({int(uts.split("[")[1].rstrip("]"))}, "uts")


def test_acall_many_at_once_leave_nothing() -> None:
    fds = len(os.listdir("/proc/self/fd"))

    async def main() -> list[tuple[int, str, int]]:
        return await asyncio.gather(
            *(
                aio.acall(_hostname_and_pid, i, namespaces=["uts"], hostname=f"a{i}")
                for i in range(50)
            )
        )

    results = _run(main())
    assert [(x, host) for x, host, _ in results] == [(i, f"a{i}") for i in range(50)]
    assert len(os.listdir("/proc/self/fd")) == fds


def _later(x: int) -> tuple[int, str, int]:
    time.sleep(0.2)  # the outcome comes well after call_start returned
    return _hostname_and_pid(x)


def test_pending_call_poll_sees_the_outcome_without_blocking() -> None:
    # acall's loop readers rely on it: poll() must look, not just check a deadline.
    with nsprim.call_start(_later, 5, namespaces=["uts"], hostname="polled") as p:
        assert not p.poll()  # still sleeping
        deadline = time.monotonic() + 10
        while not p.poll():
            assert time.monotonic() < deadline, "poll() never saw the outcome"
            time.sleep(0.01)
        assert p.result()[:2] == (5, "polled")
