"""``nsprim run``'s process and id options of unshare(1) 2.38-2.42, against the real kernel.

Where util-linux 2.38 (this machine's) has the option, the same command runs
through ``unshare --fork`` and the results are compared; for newer options
the test holds nsprim to util-linux's documented behaviour (man page and
source of unshare 2.40-2.42, quoted in each test).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

UNSHARE = shutil.which("unshare")
needs_unshare = pytest.mark.skipif(UNSHARE is None, reason="util-linux unshare not installed")
NSPRIM = [sys.executable, "-m", "nsprim", "run"]


def _run(argv: list[str], **kw: object) -> tuple[int, str, str]:
    r = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        **kw,  # type: ignore[call-overload]
    )
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def _started(proc: subprocess.Popen[bytes], marker: str) -> None:
    end = time.monotonic() + 30
    while not os.path.exists(marker):
        assert proc.poll() is None, "the command ended early"
        assert time.monotonic() < end, "the command did not start"
        time.sleep(0.01)


@pytest.mark.needs_root  # a new uts namespace
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_forward_signals_passes_term_and_int_on(tmp_path: os.PathLike[str], sig: int) -> None:
    # unshare(1) 2.40: "--forward-signals: forward SIGTERM and SIGINT to child (implies
    # --fork)". Without it they are held (test_cli_usage's ..._holds_term_and_int...).
    marker = os.path.join(tmp_path, "up")
    script = f"trap 'echo got; exit 7' {signal.Signals(sig).name[3:]}; touch {marker}; " \
             "while :; do sleep 0.05; done"  # fmt: skip
    proc = subprocess.Popen(
        [*NSPRIM, "-u", "--forward-signals", "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        _started(proc, marker)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 7 and out == b"got\n"


@pytest.mark.needs_root
def test_without_forward_signals_term_is_held(tmp_path: os.PathLike[str]) -> None:
    # The control: the same command without the flag keeps running after the TERM.
    marker = os.path.join(tmp_path, "up")
    stop = os.path.join(tmp_path, "stop")
    script = f"trap 'exit 7' TERM; touch {marker}; while [ ! -e {stop} ]; do sleep 0.05; done"
    proc = subprocess.Popen([*NSPRIM, "-u", "--", "sh", "-c", script], stdin=subprocess.DEVNULL)
    try:
        _started(proc, marker)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None
        open(stop, "w").close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- id ranges for an unprivileged caller: --map-auto, --map-subids, --map-users=auto ----------

AS_NOBODY = [
    shutil.which("setpriv") or "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
]
SUBUID, SUBGID = "nobody:200000:65536\n", "nobody:300000:65536\n"
needs_root_uidmap_unshare = pytest.mark.skipif(
    os.geteuid() != 0
    or UNSHARE is None
    or shutil.which("newuidmap") is None
    or shutil.which("setpriv") is None
    or not os.access("/usr/bin/python3", os.X_OK),
    reason="needs root (to switch to nobody and write /etc/subuid), util-linux unshare and "
    "setpriv, /usr/bin/python3 and newuidmap/newgidmap (apt-get install uidmap)",
)
SHOW = ["sh", "-c", "sort /proc/self/uid_map; echo --; sort /proc/self/gid_map; id -u"]


@pytest.fixture(scope="module")
def nobody_path() -> Iterator[str]:
    """A copy of the package that nobody can read (the venv under /work is not)."""
    import tempfile
    from pathlib import Path

    import nsprim

    root = tempfile.mkdtemp(prefix="nsprim-cli-run-nobody-")
    try:
        shutil.copytree(Path(nsprim.__file__).parent, Path(root, "nsprim"),
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        for d, _, files in os.walk(root):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _subid_files_locked() -> Iterator[None]:
    """Hold the tests' lock on /etc/subuid and /etc/subgid (pytest -n, or two runs at once)."""
    where = next(d for d in ("/run/lock", "/run", "/tmp") if os.path.isdir(d))
    with open(os.path.join(where, "nsprim-tests-subids.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def subids() -> Iterator[None]:
    """/etc/subuid and /etc/subgid giving nobody a range each; the originals put back after."""
    with _subid_files_locked():
        yield from _prepared_subids()


def _prepared_subids() -> Iterator[None]:
    saved = {}
    for path, text in (("/etc/subuid", SUBUID), ("/etc/subgid", SUBGID)):
        try:
            with open(path, "rb") as f:
                saved[path] = f.read()
        except FileNotFoundError:
            saved[path] = None
        with open(path, "w") as f:
            f.write(text)
    try:
        yield
    finally:
        for path, data in saved.items():
            if data is None:
                os.unlink(path)
            else:
                with open(path, "wb") as f:
                    f.write(data)


def _nobody(path: str, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return _run([*AS_NOBODY, *argv], env=env, cwd="/")


def _both(path: str, args: list[str], cmd: list[str], env: dict[str, str] | None = None) -> Any:
    ours = _nobody(path, ["/usr/bin/python3", "-m", "nsprim", "run", *args, "--", *cmd], env)
    theirs = _nobody(path, [UNSHARE or "unshare", *args, *cmd], env)
    return ours, theirs


@needs_root_uidmap_unshare
@pytest.mark.parametrize(
    "args",
    [["--map-auto"], ["--map-auto", "-r"], ["-c", "--map-auto"], ["--map-auto", "--map-user=5"],
     ["--map-users=auto", "--map-groups=auto"], ["--map-users=auto", "-r"]],
    ids=" ".join,
)  # fmt: skip
def test_map_auto_as_nobody_like_unshare(nobody_path: str, subids: None, args: list[str]) -> None:
    ours, theirs = _both(nobody_path, args, SHOW)
    assert theirs[0] == 0, theirs
    assert ours[:2] == theirs[:2], (ours, theirs)  # same status, same maps (line order aside)
    assert "200000" in ours[1]


@needs_root_uidmap_unshare
def test_map_subids_maps_the_ranges_to_themselves(nobody_path: str, subids: None) -> None:
    # unshare(1) 2.41: "--map-subids: map the first block of user IDs owned by euid
    # (implies --user)", identity-mapped ("the subids as themselves").
    rc, out, err = _nobody(nobody_path, ["/usr/bin/python3", "-m", "nsprim", "run",
                                         "--map-subids", "--", *SHOW])  # fmt: skip
    assert rc == 0, err
    uid, gid, who = out.split("--")[0].split(), out.split("--")[1].split()[:3], out.split()[-1]
    assert uid == ["200000", "200000", "65536"] and gid == ["300000", "300000", "65536"]
    assert who == "65534"  # nobody itself is not mapped: the overflow uid


@needs_root_uidmap_unshare
def test_no_subuid_line_like_unshare(nobody_path: str) -> None:
    with _subid_files_locked():
        with open("/etc/subuid") as f:
            saved = f.read()
        try:
            with open("/etc/subuid", "w") as f:
                f.write("someoneelse:100000:65536\n")
            ours, theirs = _both(nobody_path, ["--map-auto"], ["true"])
        finally:
            with open("/etc/subuid", "w") as f:
                f.write(saved)
    assert ours[0] == theirs[0] == 1, (ours, theirs)
    # 2.38 says it with err(3), so ": Success" (errno 0) trails it; later releases don't
    assert ours[2] == theirs[2].replace("unshare:", "nsprim run:").removesuffix(": Success")
    assert ours[2] == 'nsprim run: no line matching user "nobody" in /etc/subuid'


@needs_root_uidmap_unshare
def test_range_newuidmap_refuses_like_unshare(nobody_path: str, subids: None) -> None:
    # 100..109 is not nobody's: newuidmap says so, and both exit 1 without running anything.
    ours, theirs = _both(nobody_path, ["--map-users=100,0,10"], ["true"])
    assert ours[0] == theirs[0] == 1, (ours, theirs)
    refusal = "newuidmap: uid range [0-10) -> [100-110) not allowed"
    assert refusal in ours[2].splitlines() and refusal in theirs[2].splitlines()
    assert ours[2].splitlines()[-1].startswith("nsprim run: newuidmap: ")


@needs_root_uidmap_unshare
def test_missing_helpers_like_unshare(nobody_path: str, subids: None) -> None:
    # No newuidmap on PATH: refused before any namespace exists, in util-linux's words.
    ours, theirs = _both(nobody_path, ["--map-auto"], ["/bin/true"], env={"PATH": "/nonexistent"})
    assert ours[0] == theirs[0] == 127, (ours, theirs)
    assert ours[2].startswith("nsprim run: failed to execute newuidmap: No such file or directory")
    assert theirs[2] == "unshare: failed to execute newuidmap: No such file or directory"


# --- --mount-binfmt (util-linux 2.41) ---------------------------------------------------------


def _kernel() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _has_binfmt() -> bool:
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == "binfmt_misc" for line in f if line.strip())


needs_binfmt_ns = pytest.mark.skipif(
    _kernel() < (6, 7) or not _has_binfmt(),
    reason="binfmt_misc per user namespace needs Linux 6.7 and CONFIG_BINFMT_MISC",
)


@needs_binfmt_ns
@pytest.mark.parametrize("mapping", [["-r"], []], ids=["-r", "unmapped"])
def test_mount_binfmt_gives_the_namespace_its_own_instance(mapping: list[str]) -> None:
    # unshare(1) 2.41: "--mount-binfmt[=dir]: mount binfmt filesystem first (implies --user
    # and --mount)"; without dir it mounts proc first and binfmt_misc on
    # /proc/sys/fs/binfmt_misc. Unmapped, the mounts are made before the program runs
    # (with the creator's capabilities), as unshare makes them before its execvp.
    name = f"nsprimt{os.getpid()}"
    script = "cat /proc/sys/fs/binfmt_misc/status; " + (
        f"echo ':{name}:E::{name}::/bin/true:' > /proc/sys/fs/binfmt_misc/register; "
        if mapping else ""
    ) + "ls /proc/sys/fs/binfmt_misc"  # fmt: skip
    rc, out, err = _run([*NSPRIM, "--mount-binfmt", *mapping, "-p", "--", "sh", "-c", script])
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "enabled" and "register" in lines and "status" in lines
    if mapping:
        assert name in lines  # registered in the namespace's own instance...
        assert not os.path.exists(f"/proc/sys/fs/binfmt_misc/{name}")  # ...not the host's


@needs_binfmt_ns
def test_mount_binfmt_dir(tmp_path: os.PathLike[str]) -> None:
    rc, out, err = _run([*NSPRIM, f"--mount-binfmt={tmp_path}", "-r", "--", "ls", str(tmp_path)])
    assert rc == 0, err
    assert sorted(out.split()) == ["register", "status"]
    assert os.listdir(tmp_path) == []  # the mount was the new namespace's only


def test_mount_binfmt_onto_a_missing_dir_fails_cleanly() -> None:
    rc, _, err = _run([*NSPRIM, "--mount-binfmt=/nonexistent/x", "-r", "--", "true"])
    assert rc == 1 and err == "nsprim run: mount /nonexistent/x failed: No such file or directory"


# --- --owner (util-linux 2.40) ---------------------------------------------------------------


def _owned(d: str, owner: list[str], path: str) -> tuple[int, str, int, bool]:
    import nsprim
    from nsprim import Namespace, syscalls

    syscalls.mount("tmpfs", d, "tmpfs", 0)
    user, pid = os.path.join(d, "user"), os.path.join(d, "pid")
    open(user, "w").close()
    open(pid, "w").close()
    # the copy nobody can read: the held helper runs as the owner
    rc, out, err = _run(["/usr/bin/python3", "-m", "nsprim", "run", *owner, "-p",
                         f"--user={user}", f"--pid={pid}", "--", "sh", "-c", "id -u; echo $$"],
                        env={**os.environ, "PYTHONPATH": path})  # fmt: skip
    if rc != 0:
        return rc, err, -1, False
    u, p = Namespace.from_path(user), Namespace.from_path(pid)
    res = (rc, out, u.owner_uid, p.owner() == u)
    nsprim.unpersist(user)
    nsprim.unpersist(pid)
    return res


@pytest.mark.needs_root  # setuid to another user
@pytest.mark.parametrize(("owner", "uid"), [(["--owner", "65534:65534"], 65534), ([], 0)],
                         ids=["--owner", "control"])  # fmt: skip
def test_owner_owns_the_new_user_namespace(tmp_path: os.PathLike[str], owner: list[str],
                                           uid: int, nobody_path: str) -> None:  # fmt: skip
    # unshare(1) 2.40: "--owner uid:gid: set the user namespace owner": unshare setgroups(0),
    # setgid and setuid before unshare(2), so NS_GET_OWNER_UID reports uid, and the pid
    # namespace made in the same call belongs to that user namespace. The control without
    # --owner: root owns it.
    import nsprim

    rc, out, owner_uid, pid_owned = nsprim.call(
        _owned, str(tmp_path), owner, nobody_path, namespaces=["mnt"], timeout=60
    )
    assert rc == 0, out
    assert owner_uid == uid and pid_owned
    assert out.split() == ["65534", "1"]  # no map: the overflow uid inside; PID 1


@pytest.mark.needs_root
def test_owner_refused_for_a_caller_without_setuid(nobody_path: str) -> None:
    rc, _, err = _nobody(nobody_path, ["/usr/bin/python3", "-m", "nsprim", "run", "--owner",
                                         "0:0", "--", "true"])  # fmt: skip
    assert rc == 1 and err == "nsprim run: --owner: Operation not permitted", err


@pytest.mark.parametrize("value", ["1:x", "1", "1:2:3", "-1:0", ":"])
def test_owner_bad_value(value: str) -> None:
    rc, _, err = _run([*NSPRIM, f"--owner={value}", "true"])
    assert rc == 1 and err.splitlines()[0] == "nsprim run: failed to parse owner", err


# --- --keep-caps (util-linux 2.38 has it: compared side by side) -----------------------------

CAPS = ["grep", "-E", "^Cap(Inh|Prm|Eff|Amb)", "/proc/self/status"]


@pytest.mark.needs_root
@needs_unshare
@pytest.mark.parametrize(
    "args",
    [["--map-user=1000", "--keep-caps"], ["--map-user=1000"], ["-r", "--keep-caps"],
     ["-c", "--keep-caps"], ["-u", "--keep-caps"], ["-r", "--keep-caps", "-R", "/"],
     ["-r", "--keep-caps", "-S", "0"]],
    ids=" ".join,
)  # fmt: skip
def test_keep_caps_like_unshare(args: list[str]) -> None:
    # A non-root id in the new user namespace keeps its capabilities across execve only
    # with --keep-caps (ambient set); without a new user namespace it changes nothing.
    ours = _run([*NSPRIM, *args, "--", *CAPS])
    theirs = _run([UNSHARE or "unshare", *args, *CAPS])
    assert theirs[0] == 0, theirs
    assert ours[:2] == theirs[:2], (ours, theirs)
    amb = [line.split()[1] for line in ours[1].splitlines() if line.startswith("CapAmb")]
    assert (int(amb[0], 16) != 0) == ("--keep-caps" in args and "-u" not in args), ours


@needs_root_uidmap_unshare
def test_keep_caps_as_nobody_like_unshare(nobody_path: str) -> None:
    ours, theirs = _both(nobody_path, ["-c", "--keep-caps"], CAPS)
    assert theirs[0] == 0, theirs
    assert ours[:2] == theirs[:2], (ours, theirs)
    assert "CapAmb:\t0000000000000000" not in ours[1], ours  # kept, unprivileged too


# --- --mount-proc=DIR (util-linux 2.38 has it: compared side by side) --------------------------


@pytest.mark.needs_root
@needs_unshare
@pytest.mark.parametrize("pid", [True, False], ids=["-p", "no -p"])
def test_mount_proc_dir_like_unshare(tmp_path: os.PathLike[str], pid: bool) -> None:
    d = os.path.join(tmp_path, "p")
    os.mkdir(d)
    # with -p the command is PID 1 of the new pid namespace's proc mounted on DIR; without,
    # DIR shows the current pid namespace (the command's pid is not 1)
    cmd = ["sh", "-c", f"exec readlink {d}/self"]
    ours = _run([*NSPRIM, *(["-p"] if pid else ["-m"]), f"--mount-proc={d}", "--", *cmd])
    theirs = _run([UNSHARE or "unshare", "-f", *(["-p"] if pid else ["-m"]),
                   f"--mount-proc={d}", *cmd])  # fmt: skip
    assert ours[0] == theirs[0] == 0, (ours, theirs)
    assert (ours[1] == "1") == (theirs[1] == "1") == pid, (ours, theirs)
    assert os.listdir(d) == []  # mounted in the new mount namespace only


@pytest.mark.needs_root
@needs_unshare
def test_mount_proc_missing_dir_like_unshare() -> None:
    ours = _run([*NSPRIM, "-p", "--mount-proc=/nonexistent", "--", "true"])
    theirs = _run([UNSHARE or "unshare", "-fp", "--mount-proc=/nonexistent", "true"])
    assert ours[0] == theirs[0] == 1, (ours, theirs)
    assert ours[2] == "nsprim run: --mount-proc: /nonexistent: No such file or directory"
    assert theirs[2].endswith("No such file or directory")


# --- --clear-env, --whitelist-env (util-linux after 2.38) -----------------------------------------


@pytest.mark.parametrize("helper", [[], ["-R", "/"]], ids=["direct", "through the helper"])
@pytest.mark.parametrize(
    ("args", "expected"),
    [(["--clear-env"], []), (["--whitelist-env", "FOO,NOPE"], ["FOO=1"]),
     (["--whitelist-env=FOO,BAR"], ["BAR=2", "FOO=1"]), (["--clear-env", "--whitelist-env", "BAR"], ["BAR=2"])],
)  # fmt: skip
def test_environment_options(args: list[str], expected: list[str], helper: list[str]) -> None:
    # unshare(1) (after 2.38): "--clear-env: do not inherit environment variables from the calling
    # process"; "--whitelist-env <list>: clear environment except for specified variables"
    # (a comma-separated list; unset names are skipped).
    env = {**os.environ, "FOO": "1", "BAR": "2"}
    rc, out, err = _run([*NSPRIM, "-r", *helper, *args, "--", "/usr/bin/env"], env=env)
    assert rc == 0, err
    assert sorted(out.splitlines()) == expected


@needs_binfmt_ns
def test_load_interp_registers_in_the_namespace(tmp_path: os.PathLike[str]) -> None:
    # unshare(1) 2.41: "-l, --load-interp <file>: load binfmt definition in the namespace
    # (implies --mount-binfmt)": a file of the new type then runs through the interpreter.
    name = f"nsprimt{os.getpid()}"
    prog = os.path.join(tmp_path, f"x.{name}")
    with open(prog, "w") as f:
        f.write("not a program")
    os.chmod(prog, 0o755)
    rc, out, err = _run([*NSPRIM, "-r", "-p", "-l", f":{name}:E::{name}::/bin/echo:", "--",
                         prog, "arg"])  # fmt: skip
    assert rc == 0, err
    assert out == f"{prog} arg"  # /bin/echo ran as its interpreter
    with pytest.raises(OSError) as exc:  # outside: not registered, the kernel refuses it
        subprocess.run([prog], capture_output=True, timeout=30)
    assert exc.value.errno == errno.ENOEXEC
    rc, _, err = _run([*NSPRIM, "-r", "-p", "-l", ":bad", "--", "true"])
    assert rc == 1
    assert err == "nsprim run: write failed /proc/sys/fs/binfmt_misc/register: Invalid argument"
