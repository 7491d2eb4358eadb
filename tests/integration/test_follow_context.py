"""``nsprim enter -Z/--follow-context`` and :mod:`nsprim.lsm`, against the real kernel.

Side by side: util-linux's nsenter (this machine's) for the command line, and
libselinux itself (loaded with ctypes, as nsenter uses it) for the pieces
nsprim rebuilds without it: ``is_selinux_enabled``, ``getpidcon``,
``setexeccon``. On a machine without an LSM that owns ``/proc/PID/attr`` the
kernel answers EINVAL to both files; the tests then prove that nsprim passes
that answer on as a typed error naming the file, and that ``-Z`` is the no-op
nsenter makes it there. Where SELinux is enabled the same tests compare the
successful transfer instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any, Optional

import pytest

import nsprim
import nsprim.lsm as lsm

NSENTER = shutil.which("nsenter")
TARGET_HOSTNAME = "ez-target"


def _libselinux() -> Optional[Any]:
    try:
        return ctypes.CDLL("libselinux.so.1", use_errno=True)
    except OSError:
        return None


SE = _libselinux()
needs_libselinux = pytest.mark.skipif(SE is None, reason="libselinux.so.1 not installed")


def _nsenter_has_z() -> bool:
    if NSENTER is None:
        return False
    out = subprocess.run([NSENTER, "--help"], capture_output=True, text=True, timeout=30)
    return "--follow-context" in out.stdout


needs_nsenter_z = pytest.mark.skipif(
    not _nsenter_has_z(), reason="util-linux nsenter with -Z (built with libselinux) not installed"
)


def _lsm_context() -> Optional[bytes]:
    """This process's context where an LSM provides one, else None (EINVAL: none does)."""
    try:
        return lsm.pid_context(os.getpid())
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        return None


# --- the library, beside libselinux ---------------------------------------------------


@needs_libselinux
def test_selinux_detection_agrees_with_libselinux() -> None:
    assert SE is not None
    mnt = ctypes.c_char_p.in_dll(SE, "selinux_mnt").value
    assert lsm.selinuxfs_mount() == (None if mnt is None else mnt.decode())
    assert lsm.selinux_enabled() is (SE.is_selinux_enabled() > 0)


def test_fstype_of_a_device_is_read_from_the_real_mountinfo() -> None:
    # the superblock fact libselinux gets from statfs(2)'s magic number
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    assert lsm._fstype(os.stat("/proc").st_dev, mountinfo) == "proc"
    assert lsm._fstype(os.stat("/proc/self/ns/net").st_dev, mountinfo) != "selinuxfs"
    line = (
        "31 23 0:27 / /sys/fs/selinux rw,nosuid,noexec,relatime shared:8 - selinuxfs selinuxfs rw"
    )
    assert lsm._fstype(os.makedev(0, 27), line) == "selinuxfs"
    assert lsm._fstype(os.makedev(0, 28), line) is None
    assert lsm._unescape("/mnt/a\\040b\\134c") == "/mnt/a b\\c"


@needs_libselinux
def test_pid_context_is_getpidcon() -> None:
    assert SE is not None
    with nsprim.spawn(["sleep", "60"]) as proc:
        con = ctypes.c_char_p()
        rc = SE.getpidcon_raw(proc.pid, ctypes.byref(con))
        code = ctypes.get_errno()
        try:
            theirs = con.value
        finally:
            if rc == 0 and theirs is not None:
                SE.freecon(con)
        if rc < 0:
            with pytest.raises(OSError) as info:
                lsm.pid_context(proc.pid)
            assert info.value.errno == code
            assert info.value.filename == f"/proc/{proc.pid}/attr/current"
        else:
            assert lsm.pid_context(proc.pid) == (theirs or b"")
        proc.kill()


def test_pid_context_of_a_reaped_process_is_no_such_process() -> None:
    proc = nsprim.spawn(["true"])
    with proc:
        proc.wait()
    with pytest.raises(nsprim.NoSuchProcess) as info:
        lsm.pid_context(proc.pid)
    assert info.value.pid == proc.pid


@pytest.mark.parametrize(
    ("value", "exc"),
    [(0, ValueError), (-1, ValueError), ("1", TypeError), (True, TypeError), (1.0, TypeError)],
)
def test_pid_context_refuses_a_bad_pid(value: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="pid"):
        lsm.pid_context(value)


@pytest.mark.parametrize(
    ("value", "exc"),
    [(b"", ValueError), ("", ValueError), ("a\0b", ValueError), (7, TypeError), ([], TypeError)],
)
def test_exec_context_is_checked_before_any_write(value: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="exec context"):
        lsm.set_exec_context(value)
    # before any fork or open: a pid that can't exist is not even looked at
    with pytest.raises(exc, match="exec context"):
        nsprim.spawn_in(2**22 + 1, ["true"], exec_context=value)


def _own_or_example_context() -> bytes:
    return _lsm_context() or b"system_u:system_r:unconfined_t:s0"


@needs_libselinux
def test_set_exec_context_is_setexeccon() -> None:
    """Both write this thread's attr/exec (each in a child: the test process keeps its own)."""
    assert SE is not None
    context = _own_or_example_context()

    def theirs() -> int:
        assert SE is not None
        return 0 if SE.setexeccon_raw(context) == 0 else ctypes.get_errno()

    def ours() -> tuple[int, Optional[str]]:
        try:
            lsm.set_exec_context(context)
        except OSError as err:
            return err.errno or 0, err.filename
        return 0, None

    code = nsprim.call(theirs)
    assert nsprim.call(ours) == (code, "/proc/thread-self/attr/exec" if code else None)


@pytest.mark.needs_root
def test_spawn_in_exec_context() -> None:
    """With an LSM the program runs in the context given; without one, a typed error naming
    the file, from the step that wrote it, and no child left (the leak guard checks)."""
    with nsprim.spawn(["sleep", "60"], namespaces=["uts"], hostname=TARGET_HOSTNAME) as target:
        mine = _lsm_context()
        argv = ["sh", "-c", "hostname; cat /proc/self/attr/current"]
        if mine is not None and lsm.selinux_enabled():
            with nsprim.spawn_in(
                target, argv, types=["uts"], exec_context=mine, stdout=nsprim.PIPE
            ) as proc:
                out, _ = proc.communicate(timeout=60)
            assert out is not None and out.split(b"\n", 1) == [
                TARGET_HOSTNAME.encode(),
                mine + b"\0",
            ]
        else:
            with pytest.raises(OSError) as info:
                nsprim.spawn_in(target, argv, types=["uts"], exec_context=_own_or_example_context())
            err = info.value
            assert (err.errno, err.filename) == (errno.EINVAL, "/proc/thread-self/attr/exec")
            assert getattr(err, "step", None) == "setexeccon"
        target.kill()


# --- the command line, beside nsenter -----------------------------------------------------


@pytest.fixture
def target() -> Iterator[nsprim.NsProcess]:
    # its own pid namespace too: entering it with -p takes the pid-namespace hop
    with nsprim.spawn(["sleep", "60"], namespaces=["uts", "pid"], hostname=TARGET_HOSTNAME) as p:
        yield p
        p.kill()


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


SCRIPT = "echo ran; hostname; exit 3"


@pytest.mark.needs_root
@needs_nsenter_z
@pytest.mark.parametrize(
    ("args", "runs"),
    [
        (["-Z", "-t", "{pid}", "-u"], True),
        (["--follow-context", "-t", "{pid}", "-u"], True),
        (["-Zt", "{pid}", "-u"], True),
        (["-Z", "-t", "{pid}", "-u", "-F"], True),
        (["-Z", "-t", "{pid}", "-p", "-u"], True),
        # bad input: no target, an argument to the flag
        (["-Z", "-u"], False),
        (["--follow-context=1", "-t", "{pid}", "-u"], False),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else str(a),
)
def test_follow_context_like_nsenter(target: nsprim.NsProcess, args: list[str], runs: bool) -> None:
    argv = [a.format(pid=target.pid) for a in args]
    ours = _run([sys.executable, "-m", "nsprim", "enter", *argv, "--", "sh", "-c", SCRIPT])
    theirs = _run([NSENTER or "nsenter", *argv, "--", "sh", "-c", SCRIPT])
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (ours, theirs)
    if runs:
        assert (ours.returncode, ours.stdout) == (3, f"ran\n{TARGET_HOSTNAME}\n"), ours
    else:
        assert (ours.returncode, ours.stdout) == (1, ""), ours
        assert ours.stderr.startswith("nsprim enter: ") and theirs.stderr
        if "--follow-context=1" in args:  # getopt's words (2.38's "no target" ones are older)
            mine = ours.stderr.split(": ", 1)[1]
            assert mine == theirs.stderr.split(": ", 1)[1].replace("nsenter", "nsprim enter")


# Where SELinux is not enabled, the kernel can't answer nsenter's SELinux-enabled
# path. These runs replace the one fact it can't give (that SELinux is enabled,
# and for the last runs the target's context) and let the kernel answer the rest:
# its EINVAL to the reads and writes of attr/current and attr/exec.
_FAKE = textwrap.dedent(
    """
    import sys
    import nsprim.lsm as lsm
    lsm.selinux_enabled = lambda: True
    if sys.argv[1]:
        lsm.pid_context = lambda pid: sys.argv[1].encode()
    from nsprim.cli import main
    sys.exit(main(["enter", *sys.argv[2:]]))
    """
)


@pytest.mark.needs_root
@pytest.mark.skipif(_lsm_context() is not None, reason="an LSM answers attr/current here")
@pytest.mark.parametrize(
    ("context", "args", "error"),
    [
        ("", ["-Z", "-u"], "no target PID specified for --follow-context"),
        ("", ["-Z"], "no target PID specified for --follow-context"),
        ("", ["-Z", "-t", "{pid}", "-u"], "failed to get {pid} SELinux context"),
        ("", ["-Z", "-t", "{pid}", "-u", "-F"], "failed to get {pid} SELinux context"),
        ("", ["-Z", "-t", "{gone}", "-u"], "failed to get {gone} SELinux context"),
        ("u:r:t:s0", ["-Z", "-t", "{pid}", "-u"], "failed to set exec context to 'u:r:t:s0'"),
        ("u:r:t:s0", ["-Z", "-t", "{pid}", "-u", "-F"], "failed to set exec context to 'u:r:t:s0'"),
        ("u:r:t:s0", ["-Z", "-t", "{pid}", "-p"], "failed to set exec context to 'u:r:t:s0'"),
    ],
)
def test_follow_context_with_selinux_fails_as_nsenter(
    target: nsprim.NsProcess, context: str, args: list[str], error: str
) -> None:
    gone = nsprim.spawn(["true"])
    with gone:
        gone.wait()
    fmt = {"pid": target.pid, "gone": gone.pid}
    argv = [a.format(**fmt) for a in args]
    out = _run([sys.executable, "-c", _FAKE, context, *argv, "--", "sh", "-c", SCRIPT])
    assert (out.returncode, out.stdout) == (1, ""), out  # the command never ran
    assert out.stderr == f"nsprim enter: {error.format(**fmt)}\n"
