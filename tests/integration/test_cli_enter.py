"""``nsprim enter``'s nsenter(1) options beyond the 2.38 core (issue 14).

Where util-linux 2.38's nsenter (this machine's) has the option, both run the
same command against the same target and must print the same and exit the
same; options newer than 2.38 are checked against nsenter(1)'s documented
behaviour. Every target is a process this test started in namespaces of its
own, killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

import nsprim.process as process
import nsprim.syscalls as sc

pytestmark = pytest.mark.needs_root

NSENTER = shutil.which("nsenter")
UNSHARE = shutil.which("unshare")
needs_nsenter = pytest.mark.skipif(NSENTER is None, reason="util-linux nsenter not installed")


def nsprim(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nsprim", "enter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        **kw,  # type: ignore[call-overload]
    )


def nsenter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NSENTER or "nsenter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def same(ours: subprocess.CompletedProcess[str], theirs: subprocess.CompletedProcess[str]) -> None:
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (ours, theirs)


def _ns(pid: int, t: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{t}")


@pytest.fixture
def target() -> Iterator[process.NsProcess]:
    """A sleep in new uts, net and mnt namespaces; /mnt/inside exists only in its mount ns."""
    script = "mount -t tmpfs tmp /mnt && mkdir /mnt/inside && echo ready && exec sleep 60"
    with process.spawn(
        ["sh", "-c", script], namespaces=["uts", "net", "mnt"], stdout=process.PIPE
    ) as p:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        yield p


@needs_nsenter
@pytest.mark.parametrize(
    "args",
    [
        # a file and -t mixed (nsenter takes the file for that type, the pid for the rest)
        ["-n", "--uts=/proc/{pid}/ns/uts"],
        ["-a", "--net=/proc/self/ns/net"],
        # --wdns resolves in the entered mount namespace; --wd=DIR before joining
        ["-m", "--wdns=/mnt/inside"],
        ["-m", "-W/mnt/inside"],
        ["-m", "-W", "/mnt/inside"],
        ["-m", "--wd=/tmp"],
        ["-m", "--wd=/mnt/inside"],
        ["-m", "--root=/"],
        ["-u", "-r/", "-w/tmp"],
        # -F: no fork; -p: the command's children are in the pid namespace
        ["-F", "-u"],
    ],
    ids=lambda a: " ".join(a),
)
def test_like_nsenter(target: process.NsProcess, args: list[str]) -> None:
    argv = [a.format(pid=target.pid) for a in ["-t", str(target.pid), *args]]
    script = "pwd; hostname; for t in uts net mnt; do readlink /proc/self/ns/$t; done"
    ours = nsprim(*argv, "--", "sh", "-c", script)
    theirs = nsenter(*argv, "sh", "-c", script)
    same(ours, theirs)
    assert ours.returncode == 0 or "--wd=/mnt/inside" in args, ours.stderr


@needs_nsenter
def test_wd_and_wdns_are_exclusive_like_nsenter(target: process.NsProcess) -> None:
    for args in (["-w", "-W/tmp"], ["-W/tmp", "-w"]):
        ours = nsprim("-t", str(target.pid), "-u", *args, "true")
        theirs = nsenter("-t", str(target.pid), "-u", *args, "true")
        assert ours.returncode == theirs.returncode == 1
        assert ours.stderr.replace("nsprim enter:", "nsenter:") == theirs.stderr


@needs_nsenter
def test_no_fork_pid_namespace_like_nsenter() -> None:
    with process.spawn(["sleep", "60"], namespaces=["pid", "mnt"], mount_proc=True) as p:
        # exec: readlink itself is the command (a child of sh would be in the pid namespace)
        script = "exec readlink /proc/self/ns/pid /proc/self/ns/pid_for_children"
        argv = ["-F", "-t", str(p.pid), "-p", "sh", "-c", script]
        ours, theirs = nsprim(*argv), nsenter(*argv)
        same(ours, theirs)
        # the command stayed in our pid namespace; its children go into the target's
        assert ours.stdout.split() == [_ns(os.getpid(), "pid"), _ns(p.pid, "pid")]


def test_no_fork_becomes_the_command(target: process.NsProcess) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nsprim",
            "enter",
            "-F",
            "-t",
            str(target.pid),
            "-u",
            "sh",
            "-c",
            "echo $$; hostname",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as p:
        out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and out.split()[0] == str(p.pid)  # no fork: the same process


def test_no_namespace_is_an_error_like_nsenter_2_41(target: process.NsProcess) -> None:
    # util-linux 2.41+ ("no namespace specified"); 2.38 ran the command in no namespace
    r = nsprim("-t", str(target.pid), "true")
    assert (r.returncode, r.stderr) == (1, "nsprim enter: no namespace specified\n")
    r = nsprim("-t", str(target.pid), "-r", "true")
    assert (r.returncode, r.stderr) == (1, "nsprim enter: no namespace specified\n")
    for args in (["-u", "true"], ["-N", "3", "true"], ["--user-parent", "true"]):
        r = nsprim(*args)
        assert (r.returncode, r.stderr) == (1, "nsprim enter: no target PID specified\n"), args


# --- -t PID:INODE refuses a reused pid ------------------------------------------------------

_REUSE = textwrap.dedent(
    """
    import os, subprocess, sys
    import nsprim.syscalls as sc

    def sleeper():
        return subprocess.Popen(["unshare", "-u", "sleep", "60"])

    # pid 1 of this throwaway pid namespace is this script; ns_last_pid steers the next pid
    first = sleeper()
    fd = sc.pidfd_open(first.pid)
    old_ino = os.fstat(fd).st_ino
    os.close(fd)
    first.kill(); first.wait()
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(first.pid - 1))
    second = sleeper()
    assert second.pid == first.pid, (first.pid, second.pid)  # the pid was reused
    fd = sc.pidfd_open(second.pid)
    new_ino = os.fstat(fd).st_ino
    os.close(fd)
    assert new_ino != old_ino
    def enter(ino):
        return subprocess.run(
            [sys.executable, "-m", "nsprim", "enter", "-t", f"{second.pid}:{ino}", "-u",
             "hostname"], capture_output=True, text=True)
    stale, fresh = enter(old_ino), enter(new_ino)
    second.kill(); second.wait()
    print(second.pid, stale.returncode, stale.stderr.strip(), sep="|")
    print(second.pid, fresh.returncode, fresh.stdout.strip(), sep="|")
    """
)


@pytest.mark.skipif(
    tuple(int(x) for x in os.uname().release.split(".")[:2]) < (6, 9),
    reason="pidfd inodes identify a process from Linux 6.9 (pidfs)",
)
def test_target_pid_inode_refuses_a_reused_pid() -> None:
    # A real reuse, in a pid namespace of our own (unshare -p --mount-proc), never the host's.
    r = subprocess.run(
        [UNSHARE or "unshare", "-pf", "--mount-proc", sys.executable, "-c", _REUSE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    stale, fresh = (line.split("|") for line in r.stdout.splitlines())
    pid = stale[0]
    assert stale[1:] == [
        "1",
        f"nsprim enter: failed to obtain a valid file descriptor for PID {pid}: No such process",
    ]
    assert fresh[1] == "0" and fresh[2]  # the right inode: entered, hostname printed


def test_target_pid_inode_parse_errors() -> None:
    for text in ("1:", "1:x", "1:0", ":5", "1:-2"):
        r = nsprim("-t", text, "-u", "true")
        assert r.returncode == 1, text
        assert r.stderr.splitlines()[0] == f"nsprim enter: failed to parse pid: '{text}'"


# --- options newer than util-linux 2.38, against nsenter(1)'s documented behaviour ------------


def test_env_takes_the_targets_environment(target: process.NsProcess) -> None:
    with process.spawn(
        ["sleep", "60"],
        namespaces=["uts"],
        env={"NSPRIM_TARGET_VAR": "from-target", "PATH": "/usr/bin:/bin"},
    ) as p:
        r = nsprim(
            "-t",
            str(p.pid),
            "-u",
            "-e",
            "sh",
            "-c",
            "echo ${NSPRIM_TARGET_VAR:-unset}; echo ${NSPRIM_MINE:-unset}",
            env={**os.environ, "NSPRIM_MINE": "mine"},
        )
        assert (r.returncode, r.stdout) == (0, "from-target\nunset\n"), r.stderr
        r = nsprim(
            "-t",
            str(p.pid),
            "-u",
            "sh",
            "-c",
            "echo ${NSPRIM_TARGET_VAR:-unset}; echo ${NSPRIM_MINE:-unset}",
            env={**os.environ, "NSPRIM_MINE": "mine"},
        )
        assert (r.returncode, r.stdout) == (0, "unset\nmine\n"), r.stderr


def test_setuid_setgid_follow_the_target() -> None:
    with process.spawn(
        ["setpriv", "--reuid=65534", "--regid=65533", "--clear-groups", "sleep", "60"],
        namespaces=["uts"],
    ) as p:
        deadline = time.monotonic() + 10
        while os.stat(f"/proc/{p.pid}").st_uid != 65534:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        r = nsprim(
            "-t", str(p.pid), "-u", "-S", "follow", "-G", "follow", "sh", "-c", "id -u; id -g"
        )
        assert (r.returncode, r.stdout) == (0, "65534\n65533\n"), r.stderr


@pytest.fixture
def nested_userns() -> Iterator[tuple[int, int]]:
    """(pid of a sleep two user namespaces down, pid of the process in the middle one)."""
    with subprocess.Popen(
        [UNSHARE or "unshare", "-Ur", "sh", "-c", "unshare -Ur sleep 60 & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
    ) as p:
        try:
            assert p.stdout is not None
            inner = int(p.stdout.readline())  # no pid namespace: the pid as seen here
            deadline = time.monotonic() + 10
            while _ns(inner, "user") == _ns(p.pid, "user"):  # until the inner unshare ran
                assert time.monotonic() < deadline
                time.sleep(0.01)
            yield inner, p.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(inner, signal.SIGKILL)
            p.kill()
            p.wait()


def test_user_parent_enters_the_parent_user_namespace(nested_userns: tuple[int, int]) -> None:
    inner, middle = nested_userns
    r = nsprim("-t", str(inner), "--user-parent", "readlink", "/proc/self/ns/user")
    assert (r.returncode, r.stdout.strip()) == (0, _ns(middle, "user")), r.stderr
    # with -U the parent of that user namespace replaces it: the same namespace here
    r = nsprim("-t", str(inner), "-U", "--user-parent", "readlink", "/proc/self/ns/user")
    assert (r.returncode, r.stdout.strip()) == (0, _ns(middle, "user")), r.stderr
    # and by file (nsenter wants -t with --user-parent all the same)
    r = nsprim(
        "-t", str(inner), f"--user=/proc/{inner}/ns/user", "--user-parent",
        "readlink", "/proc/self/ns/user",
    )  # fmt: skip
    assert (r.returncode, r.stdout.strip()) == (0, _ns(middle, "user")), r.stderr


def test_keep_caps_raises_ambient_capabilities(nested_userns: tuple[int, int]) -> None:
    inner, _ = nested_userns
    script = "awk '/^CapAmb/{print $2}' /proc/self/status"
    kept = nsprim("-t", str(inner), "-U", "--keep-caps", "sh", "-c", script)
    plain = nsprim("-t", str(inner), "-U", "sh", "-c", script)
    assert kept.returncode == plain.returncode == 0, (kept.stderr, plain.stderr)
    assert int(plain.stdout, 16) == 0
    assert int(kept.stdout, 16) & (1 << 21)  # CAP_SYS_ADMIN, granted in that user namespace
    # without a user namespace --keep-caps does nothing (nsenter: "when --user is given")
    r = nsprim("-t", str(inner), "-u", "--keep-caps", "sh", "-c", script)
    assert (r.returncode, int(r.stdout or "1", 16)) == (0, 0), r.stderr


_SOCKET_HOLDER = textwrap.dedent(
    """
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print(s.fileno(), flush=True)
    time.sleep(60)
    """
)


def test_net_socket_enters_the_sockets_namespace() -> None:
    # The holder makes its socket in a new network namespace, then moves itself back
    # out: the socket's namespace is held by the socket alone.
    script = textwrap.dedent(
        """
        import os, socket, sys, time
        import nsprim.syscalls as sc
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        sc.unshare(0x40000000)  # CLONE_NEWNET
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        netns = os.readlink("/proc/self/ns/net")
        sc.setns(own, 0x40000000)
        print(s.fileno(), netns, flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout is not None
            fd, netns = p.stdout.readline().split()
            assert _ns(p.pid, "net") != netns
            r = nsprim("-t", str(p.pid), "-N", fd, "readlink", "/proc/self/ns/net")
            assert (r.returncode, r.stdout.strip()) == (0, netns), r.stderr
            r = nsprim("-t", str(p.pid), "-N", "0", "true")  # stdin: not a socket
            assert r.returncode == 1 and r.stderr.startswith("nsprim enter: ioctl("), r.stderr
            assert "Inappropriate ioctl for device" in r.stderr
            r = nsprim("-t", str(p.pid), "-N", "999", "true")
            assert r.returncode == 1 and "pidfd_getfd" in r.stderr and "Bad file" in r.stderr
        finally:
            p.kill()


_CGROUP = textwrap.dedent(
    """
    import os, subprocess, sys, tempfile, time
    base = "/sys/fs/cgroup"  # cgroup v2 here (this test's own mount if the host's isn't)
    path = tempfile.mkdtemp(prefix="nsprim-cgroup-enter-", dir=base)
    name = "0::/" + os.path.basename(path)
    def enter(*flags):
        return subprocess.run(
            [sys.executable, "-m", "nsprim", "enter", "-t", str(p.pid), "-u", *flags,
             "cat", "/proc/self/cgroup"], capture_output=True, text=True)
    try:
        p = subprocess.Popen(["unshare", "-u", "sleep", "60"])
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(p.pid))
            joined, plain = enter("-c"), enter()
        finally:
            p.kill()
            p.wait()
        print(joined.returncode, name in joined.stdout.splitlines(), joined.stderr.strip())
        print(plain.returncode, name in plain.stdout.splitlines(), plain.stderr.strip())
    finally:
        deadline = time.monotonic() + 10
        while os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    """
)


def test_join_cgroup_moves_the_command_into_the_targets_cgroup() -> None:
    with open("/proc/self/mounts") as f:
        v2 = any(line.split()[1:3] == ["/sys/fs/cgroup", "cgroup2"] for line in f)
    if not v2:
        # nsenter(1): "--join-cgroup is only supported in cgroup v2"
        with process.spawn(["sleep", "60"], namespaces=["uts"]) as p:
            r = nsprim("-t", str(p.pid), "-u", "-c", "true")
            p.kill()
        assert (r.returncode, r.stderr) == (
            1, "nsprim enter: --join-cgroup is only supported in cgroup v2\n"
        )  # fmt: skip
    # A throwaway child of the v2 root cgroup (root may always make one), removed at the
    # end; on a hybrid host the v2 hierarchy is mounted on /sys/fs/cgroup in a mount
    # namespace of this test only.
    mount = "" if v2 else "mount -t cgroup2 none /sys/fs/cgroup && "
    r = subprocess.run(
        [UNSHARE or "unshare", "-m", "sh", "-c", f'{mount}exec "$0" -c "$1"', sys.executable,
         _CGROUP],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    joined, plain = r.stdout.splitlines()
    assert joined == "0 True "  # exit 0, the command ran in the target's cgroup
    assert plain == "0 False "  # without -c: its own


def test_entering_uses_the_pidfd_namespace_ioctls(target: process.NsProcess) -> None:
    # Linux 6.11: the namespaces come through the pidfd (no /proc); earlier kernels
    # fall back on /proc/PID/ns (the kernel matrix runs both).
    from nsprim import _targets

    with process.spawn_in(target.pid, ["true"], types=["uts"]) as p:
        assert p.wait() == 0
    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    assert _targets._pidfd_ns_ioctls is (release >= (6, 11))
    fd = sc.pidfd_open(target.pid)
    try:
        if release >= (6, 11):
            ns = sc.pidfd_get_namespace(fd, "uts")
            assert os.fstat(ns).st_ino == os.stat(f"/proc/{target.pid}/ns/uts").st_ino
            os.close(ns)
    finally:
        os.close(fd)


def test_namespace_by_id(target: process.NsProcess) -> None:
    # util-linux 2.42's --TYPE=:NSID: an nsfs file handle with the id alone, Linux 6.19
    fd = os.open(f"/proc/{target.pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        nid = sc.ns_get_id(fd)
    finally:
        os.close(fd)
    r = nsprim(f"--uts=:{nid}", "readlink", "/proc/self/ns/uts")
    if tuple(int(x) for x in os.uname().release.split(".")[:2]) >= (6, 19):
        assert (r.returncode, r.stdout.strip()) == (0, _ns(target.pid, "uts")), r.stderr
    else:  # 6.18 opens a handle only with its type and inode: what nsenter gets too
        assert (r.returncode, r.stderr) == (
            1, f"nsprim enter: cannot open namespace of id {nid}: Stale file handle\n"
        )  # fmt: skip
    r = nsprim("--uts=:x", "true")
    assert (r.returncode, r.stderr) == (1, "nsprim enter: failed to parse nsid: x\n")
