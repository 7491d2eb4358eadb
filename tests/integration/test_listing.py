"""``nsprim.listing`` on the real kernel: everything lsns finds, and what it misses.

Each test spawns its own holders (forked children that unshare, then wait),
compares with util-linux ``lsns -J`` on the same machine state, and kills and
reaps every holder. Bind mounts happen only inside a child's private mount
namespace, never on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Callable

import pytest

from nsprim import listing
from nsprim import syscalls as S
from nsprim.flags import CloneFlags, MountFlags
from nsprim.listing import Held, NsRef
from nsprim.namespace import NsType

LSNS = shutil.which("lsns")


def _read_line(fd: int, timeout: float = 10.0) -> str:
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            raise TimeoutError("holder did not report in time")
        b = os.read(fd, 4096)
        if not b:
            raise AssertionError(f"holder exited before reporting (got {buf!r})")
        buf += b
    return buf.decode().strip()


@contextlib.contextmanager
def holder(body: Callable[[int], None]) -> Iterator[tuple[int, str]]:
    """Fork a child that runs ``body(report_fd)`` and then waits to be killed.

    *body* writes one line to the report fd when it is set up. Yields
    ``(pid, line)``; on exit the child is killed (SIGKILL) and reaped.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            S.set_pdeathsig(signal.SIGKILL)
            body(w)
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(w)
    try:
        yield pid, _read_line(r)
    finally:
        os.close(r)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _say(fd: int, text: str) -> None:
    os.write(fd, (text + "\n").encode())


def _flatten(entries: list[dict[str, object]]) -> Iterator[dict[str, object]]:
    # lsns -J nests a namespace under the one of its lowest pid's parent
    # process ("children"); flatten to compare sets.
    for e in entries:
        yield e
        kids = e.get("children")
        if isinstance(kids, list):
            yield from _flatten(kids)


def _lsns() -> list[dict[str, object]]:
    assert LSNS is not None
    out = subprocess.run([LSNS, "-J"], capture_output=True, timeout=30, check=True).stdout
    return list(_flatten(json.loads(out)["namespaces"]))


def _ino(pid: int, t: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{t}").st_ino


def _find(result: listing.Listing, t: str, ino: int) -> listing.NsInfo:
    found = [n for n in result.namespaces if n.type.value == t and n.ino == ino]
    assert len(found) == 1, (t, ino, found)
    return found[0]


def _unshared(flags: int) -> Callable[[int], None]:
    def body(w: int) -> None:
        S.unshare(flags)
        _say(w, "ready")

    return body


def _pair_in_new_uts(w: int) -> None:
    # two processes in one new UTS namespace: nprocs 2, lowest pid reported
    S.unshare(int(CloneFlags.NEWUTS))
    pid = os.fork()
    if pid == 0:
        S.set_pdeathsig(signal.SIGKILL)
        while True:
            signal.pause()
    _say(w, str(pid))


def _still_in(pid: int, type_: str, ino: int) -> bool:
    """True if process *pid* is (still) in the *type_* namespace with inode *ino*."""
    try:
        return os.stat(f"/proc/{pid}/ns/{type_}").st_ino == ino
    except OSError:
        return False


@pytest.mark.needs_root
@pytest.mark.skipif(LSNS is None, reason="util-linux lsns not installed")
def test_ls_is_a_superset_of_lsns() -> None:
    net_uts_ipc = int(CloneFlags.NEWNET | CloneFlags.NEWUTS | CloneFlags.NEWIPC)
    user_net = int(CloneFlags.NEWUSER | CloneFlags.NEWNET)
    with contextlib.ExitStack() as stack:
        a, _ = stack.enter_context(holder(_unshared(net_uts_ipc)))
        b, _ = stack.enter_context(holder(_unshared(net_uts_ipc)))
        c, _ = stack.enter_context(holder(_unshared(user_net)))
        d, line = stack.enter_context(holder(_pair_in_new_uts))
        d2 = int(line)
        holders = [(a, "net uts ipc"), (b, "net uts ipc"), (c, "user net"), (d, "uts")]
        inos = {(pid, t): _ino(pid, t) for pid, types in holders for t in types.split()}
        first = _lsns()
        ours = listing.scan()
        second = _lsns()
        # Every namespace lsns saw in both runs, through the same process, which
        # still has it afterwards: others come and go meanwhile, and the kernel
        # hands a freed inode number to the next namespace (proc_alloc_inum takes
        # the lowest free one), so a number seen twice may name two namespaces
        # that each lived only around one lsns run.
        seen = {(e["type"], e["ns"], e["pid"]) for e in first} & {
            (e["type"], e["ns"], e["pid"]) for e in second
        }
        stable = {(t, ns) for t, ns, pid in seen if _still_in(pid, t, ns)}
    assert {(t, inos[pid, t]) for pid, types in holders for t in types.split()} <= stable
    mine = {(n.type.value, n.ino) for n in ours.namespaces}
    assert stable, "lsns reported nothing"
    assert stable <= mine, stable - mine
    # the holders' namespaces match lsns column for column
    lsns_by = {(e["type"], e["ns"]): e for e in second}
    for pid, types in holders:
        for t in types.split():
            key = (t, inos[pid, t])
            n = _find(ours, t, key[1])
            e = lsns_by[key]
            assert (n.nprocs, n.pid, n.user, n.command) == (
                e["nprocs"],
                e["pid"],
                e["user"],
                e["command"],
            ), (t, pid)
            assert n.held == (Held.PROCESS,)
    uts_pair = _find(ours, "uts", inos[d, "uts"])
    assert uts_pair.nprocs == 2 and uts_pair.pids == tuple(sorted((d, d2)))
    # ownership: c's net namespace is owned by c's user namespace, created by uid 0
    cnet = _find(ours, "net", inos[c, "net"])
    cuser = _find(ours, "user", inos[c, "user"])
    assert cnet.owner == cuser.ref and cnet.owner_uid == 0
    assert cuser.parent is not None and cuser.parent.ino == os.stat("/proc/self/ns/user").st_ino
    assert cuser.owner == cuser.parent
    # ns ids (Linux 6.18): present and unique where the kernel has them
    ids = [n.ns_id for n in ours.namespaces]
    if all(i is not None for i in ids):
        assert len(set(ids)) == len(ids)


def _bind_mounted_uts(tmpdir: str) -> Callable[[int], None]:
    def body(w: int) -> None:
        S.unshare(int(CloneFlags.NEWNS))
        # private first: nothing below may propagate to the host
        S.mount(None, "/", None, int(MountFlags.REC | MountFlags.PRIVATE))
        S.mount("tmpfs", tmpdir, "tmpfs", 0, "size=64k")
        target = os.path.join(tmpdir, "uts")
        open(target, "w").close()
        r, gw = os.pipe()
        g = os.fork()
        if g == 0:
            os.close(r)
            S.set_pdeathsig(signal.SIGKILL)
            S.unshare(int(CloneFlags.NEWUTS))
            _say(gw, "in")
            while True:
                signal.pause()
        os.close(gw)
        _read_line(r)
        S.mount(f"/proc/{g}/ns/uts", target, None, int(MountFlags.BIND))
        ino = os.stat(target).st_ino
        os.kill(g, signal.SIGKILL)
        os.waitpid(g, 0)
        _say(w, f"{ino} {target}")

    return body


@pytest.mark.needs_root
def test_ls_finds_namespaces_held_only_by_fd_and_by_bind_mount() -> None:
    tmpdir = tempfile.mkdtemp(prefix="nsprim-ls-")
    fd = -1
    try:
        with holder(_unshared(int(CloneFlags.NEWIPC))) as (pid, _):
            fd = os.open(f"/proc/{pid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
        # the holder is dead and reaped: only our fd keeps its IPC namespace
        fd_ino = os.fstat(fd).st_ino
        with holder(_bind_mounted_uts(tmpdir)) as (mpid, line):
            mount_ino, target = int(line.split()[0]), line.split()[1]
            result = listing.scan()
            seen_by_lsns = {(e["type"], e["ns"]) for e in _lsns()} if LSNS else set()
        by_fd = _find(result, "ipc", fd_ino)
        assert by_fd.held == (Held.FD,)
        assert by_fd.nprocs == 0 and by_fd.pid is None and by_fd.command is None
        assert listing.FdHolder(os.getpid(), fd) in by_fd.fds
        by_mount = _find(result, "uts", mount_ino)
        assert by_mount.held == (Held.BIND_MOUNT,)
        assert by_mount.mounts == (listing.MountHolder(mpid, target),)
        assert by_mount.owner is not None and by_mount.owner.type is NsType.USER
        if LSNS:
            assert ("ipc", fd_ino) not in seen_by_lsns
            assert ("uts", mount_ino) not in seen_by_lsns
        # the host's mount table never saw the bind mount
        with open("/proc/self/mountinfo") as f:
            assert tmpdir not in f.read()
    finally:
        if fd >= 0:
            os.close(fd)
        os.rmdir(tmpdir)


def _thread_in_new_uts(w: int) -> None:
    stop = threading.Event()

    def run() -> None:
        S.unshare(int(CloneFlags.NEWUTS))  # this thread only
        _say(
            w,
            f"{threading.get_native_id()} {os.stat(f'/proc/self/task/{threading.get_native_id()}/ns/uts').st_ino}",
        )
        stop.wait()

    threading.Thread(target=run, daemon=True).start()


@pytest.mark.needs_root
def test_ls_finds_a_namespace_only_a_thread_is_in() -> None:
    with holder(_thread_in_new_uts) as (pid, line):
        tid, ino = (int(x) for x in line.split())
        result = listing.scan()
        n = _find(result, "uts", ino)
        assert n.held == (Held.THREAD,)
        assert n.threads == (tid,) and n.nprocs == 0
        assert tid != pid
        assert n in result.select(pid=tid)


def _nested_pid_namespaces(w: int) -> None:
    # three levels: each level unshares CLONE_NEWPID and forks its pid 1
    for _ in range(3):
        S.unshare(int(CloneFlags.NEWPID))
        child = os.fork()
        if child != 0:
            return  # this level waits (holder() pauses); the next level goes on
        S.set_pdeathsig(signal.SIGKILL)
    with open("/proc/self/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()[1:]
    _say(w, " ".join(nspid))


@pytest.mark.needs_root
def test_hierarchy_of_a_pid_namespace_nested_three_levels() -> None:
    with holder(_nested_pid_namespaces) as (_, line):
        nspid = [int(x) for x in line.split()]
        assert len(nspid) == 4 and nspid[-1] == 1  # host pid, level 1, 2, 3 (pid 1)
        host_pid = nspid[0]
        result = listing.scan()
    by = result.by_ref()
    leaf = next(n for n in result.namespaces if n.type is NsType.PID and host_pid in n.pids)
    chain = [leaf]
    while chain[-1].parent is not None:
        chain.append(by[chain[-1].parent])
    init = os.stat("/proc/self/ns/pid")
    assert len(chain) == 4, [str(n.ref) for n in chain]
    assert (chain[-1].dev, chain[-1].ino) == (init.st_dev, init.st_ino)
    assert all(n.nprocs == 1 for n in chain[:3])  # each level's pid 1 only
    # the tree: the leaf sits three levels under the initial pid namespace
    roots = listing.tree(result, "pid")
    depth = {node.ns.ref: d for d, node in listing.walk(roots)}
    assert depth[leaf.ref] == depth[chain[-1].ref] + 3
    assert depth[chain[1].ref] == depth[chain[-1].ref] + 2


def test_vanished_process_is_skipped() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    st = listing._Scan(["uts", "net"])
    procfd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        listing._scan_pid(st, procfd, pid, True, True, True, False)
    finally:
        os.close(procfd)
    assert (st.vanished, st.scanned) == (1, 0)
    assert not st.members


def _churn(w: int) -> None:
    _say(w, "go")
    while True:
        p = os.fork()
        if p == 0:
            os._exit(0)
        os.waitpid(p, 0)


def test_scan_survives_processes_exiting_mid_scan() -> None:
    with holder(_churn):
        results = [listing.scan(sockets=True) for _ in range(30)]
    for r in results:
        assert r.scanned > 0
        assert any(n.type is NsType.NET for n in r.namespaces)


def test_the_scans_own_socket_handles_are_not_fd_holders() -> None:
    """Regression: after a pid wrap-around the scanner's own pid comes after a socket's
    owner, and the nsfs fd the scan got through SIOCGSKNS showed up as an FD holder
    (CI's pristine root: held == (FD, SOCKET) for a socket-only namespace)."""
    st = listing._Scan(["net"])
    nsfd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    other = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)  # a real holder
    s = os.fstat(nsfd)
    st.socket_fds[("net", s.st_dev, s.st_ino)] = nsfd
    procfd = os.open(f"/proc/{os.getpid()}", os.O_RDONLY | os.O_DIRECTORY)
    try:
        listing._scan_fds(st, procfd, os.getpid(), True, False)
    finally:
        os.close(procfd)
        os.close(nsfd)
        os.close(other)
    holders = st.fds.get(("net", s.st_dev, s.st_ino), [])
    assert listing.FdHolder(os.getpid(), other) in holders
    assert listing.FdHolder(os.getpid(), nsfd) not in holders


@pytest.mark.needs_root
def test_socket_only_netns_found_with_sockets() -> None:
    def body(w: int) -> None:
        import socket

        keep = os.open("/proc/self/ns/net", os.O_RDONLY)
        S.unshare(int(CloneFlags.NEWNET))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ino = os.stat("/proc/self/ns/net").st_ino
        S.setns(keep, int(CloneFlags.NEWNET))  # back home; only the socket holds it
        os.close(keep)
        _say(w, f"{s.detach()} {ino}")  # detach: the fd outlives this function

    with holder(body) as (pid, line):
        sfd, ino = (int(x) for x in line.split())
        without = listing.scan()
        with_sockets = listing.scan(sockets=True)
    assert not [n for n in without.namespaces if n.type is NsType.NET and n.ino == ino]
    n = _find(with_sockets, "net", ino)
    assert n.held == (Held.SOCKET,)
    assert listing.FdHolder(pid, sfd) in n.sockets
    assert n.owner is not None  # SIOCGSKNS gave an nsfs fd, so its owner is known


def test_nsref_and_select_filters() -> None:
    result = listing.scan()
    mine = result.select(pid=os.getpid())
    assert {n.type for n in mine} >= {t for t in NsType if os.path.exists(f"/proc/self/ns/{t}")}
    nets = result.select(types=["net"])
    assert nets and all(n.type is NsType.NET for n in nets)
    st = os.stat("/proc/self/ns/net")
    assert NsRef(NsType.NET, st.st_dev, st.st_ino) in result.by_ref()
    with pytest.raises(ValueError, match="tree kind must be 'user' or 'pid'"):
        listing.tree(result, "net")


def _zombie_in_new_pidns(w: int) -> None:
    S.unshare(int(CloneFlags.NEWPID))
    z = os.fork()
    if z == 0:
        os._exit(0)  # pid 1 of the new pid namespace exits; nobody reaps it yet
    ino = 0
    for _ in range(200):
        with open(f"/proc/{z}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                ino = os.stat(f"/proc/{z}/ns/pid").st_ino
                break
        time.sleep(0.01)
    _say(w, f"{z} {ino}")


@pytest.mark.needs_root
def test_zombie_keeps_its_pid_namespace_listed_like_lsns() -> None:
    # A zombie has no nsproxy (mnt/net/... links give ENOENT) but its pid and
    # user namespaces still resolve; lsns lists them, so must we.
    with holder(_zombie_in_new_pidns) as (_, line):
        zpid, ino = (int(x) for x in line.split())
        assert ino, "the child never became a zombie"
        result = listing.scan()
        lsns_seen = {(e["type"], e["ns"]) for e in _lsns()} if LSNS else {("pid", ino)}
    n = _find(result, "pid", ino)
    assert n.pids == (zpid,) and n.held == (Held.PROCESS,)
    assert ("pid", ino) in lsns_seen
