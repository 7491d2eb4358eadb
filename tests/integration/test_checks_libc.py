"""The suite's libc module agrees with this machine's C headers and libc, and works.

``conformance/_libc.py`` is the one place the checks bind C: its syscall
numbers, structure sizes and constants are compared with what a C program
compiled with the machine's ``cc`` prints (nothing re-typed from memory is
trusted), and its wrappers are exercised against the real kernel: a POSIX
message queue round trip with a notification, an absolute timerfd, a futex
timeout, a raw clock_gettime next to the vDSO's, and the unchecked calls'
kernel errors. Skipped, with the reason, where no compiler or headers exist.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from forked import in_child
from nsprim.conformance import _libc
from nsprim.conformance.outcome import Skip

from nsprim import CloneFlags, syscalls

CC = shutil.which("cc") or shutil.which("gcc")

PROGRAM = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <signal.h>
#include <time.h>
#include <mqueue.h>
#include <sys/sysinfo.h>
#include <sys/sem.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#define P(name, expr) printf("%s %lld\n", name, (long long)(expr));
int main(void) {
    P("clock_gettime", SYS_clock_gettime)
    P("futex", SYS_futex)
#ifdef SYS_clone3
    P("clone3", SYS_clone3)
#endif
#ifdef SYS_mount_setattr
    P("mount_setattr", SYS_mount_setattr)
#endif
    P("sizeof(struct sigevent)", sizeof(struct sigevent))
    P("sizeof(struct mq_attr)", sizeof(struct mq_attr))
    P("sizeof(struct sysinfo)", sizeof(struct sysinfo))
    P("sizeof(struct timespec)", sizeof(struct timespec))
    P("sizeof(struct itimerspec)", sizeof(struct itimerspec))
    P("sizeof(struct sembuf)", sizeof(struct sembuf))
    P("IPC_CREAT", IPC_CREAT)
    P("IPC_EXCL", IPC_EXCL)
    P("IPC_NOWAIT", IPC_NOWAIT)
    P("IPC_RMID", IPC_RMID)
    P("IPC_STAT", IPC_STAT)
    P("GETVAL", GETVAL)
    P("SHM_LOCK", SHM_LOCK)
    P("MSG_NOERROR", MSG_NOERROR)
    P("TIMER_ABSTIME", TIMER_ABSTIME)
    P("TFD_TIMER_ABSTIME", TFD_TIMER_ABSTIME)
    P("SIGEV_SIGNAL", SIGEV_SIGNAL)
    P("FUTEX_WAIT_BITSET", FUTEX_WAIT_BITSET)
    P("FUTEX_PRIVATE_FLAG", FUTEX_PRIVATE_FLAG)
    P("FUTEX_BITSET_MATCH_ANY", (unsigned)FUTEX_BITSET_MATCH_ANY)
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_values() -> dict[str, int]:
    if CC is None:
        pytest.skip("no C compiler to read the headers with")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "libc.c")
        src.write_text(PROGRAM)
        exe = Path(tmp, "libc")
        proc = subprocess.run([CC, "-o", str(exe), str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"the header probe did not compile (headers missing?): {proc.stderr[:500]}")
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, _, v in (line.rpartition(" ") for line in out.splitlines())}


def test_syscall_numbers_match_the_headers(c_values: dict[str, int]) -> None:
    for name in ("clock_gettime", "futex", "clone3", "mount_setattr"):
        if name in c_values:
            assert _libc.syscall_number(name) == c_values[name], name


def test_structures_and_constants_match_the_headers(c_values: dict[str, int]) -> None:
    sizes = {
        "sigevent": _libc._Sigevent,
        "mq_attr": _libc._MqAttr,
        "sysinfo": _libc._Sysinfo,
        "timespec": _libc._Timespec,
        "itimerspec": _libc._Itimerspec,
        "sembuf": _libc._SemBuf,
    }
    for name, struct in sizes.items():
        assert ctypes.sizeof(struct) == c_values[f"sizeof(struct {name})"], name
    for name in [
        "IPC_CREAT",
        "IPC_EXCL",
        "IPC_NOWAIT",
        "IPC_RMID",
        "IPC_STAT",
        "GETVAL",
        "SHM_LOCK",
        "MSG_NOERROR",
        "TIMER_ABSTIME",
        "TFD_TIMER_ABSTIME",
        "SIGEV_SIGNAL",
        "FUTEX_WAIT_BITSET",
        "FUTEX_PRIVATE_FLAG",
        "FUTEX_BITSET_MATCH_ANY",
    ]:
        assert getattr(_libc, name) == c_values[name], name


def test_an_unknown_architecture_is_a_skip_not_a_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "vax")
    with pytest.raises(Skip, match="no futex syscall number for vax"):
        _libc.syscall_number("futex")


def _mq_round_trip() -> tuple[bytes, int, int]:
    """In a child with its own IPC namespace: queue, notify, send, receive, unlink."""
    syscalls.unshare(CloneFlags.NEWIPC)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    mqd = _libc.mq_open("/nsprim-libc", os.O_CREAT | os.O_EXCL | os.O_RDWR, maxmsg=1, msgsize=8)
    try:
        _libc.mq_notify(mqd, signal.SIGUSR1)
        _libc.mq_send(mqd, b"nsprim")
        info = signal.sigtimedwait([signal.SIGUSR1], 2.0)
        assert info is not None
        return _libc.mq_receive(mqd, 8), info.si_code, info.si_pid
    finally:
        _libc.mq_close(mqd)
        _libc.mq_unlink("/nsprim-libc")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a throwaway IPC namespace")
def test_message_queue_round_trip_with_notification() -> None:
    data, code, pid = in_child(_mq_round_trip)
    assert data == b"nsprim"
    assert code == -3  # SI_MESGQ
    assert pid > 0


def test_absolute_timerfd_and_futex_timeout_wake_on_time() -> None:
    target = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + 20_000_000
    fd = _libc.timerfd_abs(time.CLOCK_MONOTONIC, target)
    try:
        assert int.from_bytes(os.read(fd, 8), "little") >= 1
    finally:
        os.close(fd)
    assert time.clock_gettime_ns(time.CLOCK_MONOTONIC) >= target
    target = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + 20_000_000
    assert _libc.futex_wait_abs(target) == "ETIMEDOUT"
    assert time.clock_gettime_ns(time.CLOCK_MONOTONIC) >= target


def test_raw_clock_gettime_lies_between_two_vdso_readings() -> None:
    first = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    raw = _libc.clock_gettime_syscall(time.CLOCK_MONOTONIC)
    assert first <= raw <= time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def test_unchecked_calls_reach_the_kernel() -> None:
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as bad_setns:  # not an nsfs fd: the kernel says EINVAL
            _libc.setns_unchecked(fd, 0)
    finally:
        os.close(fd)
    assert bad_setns.value.errno == errno.EINVAL
    with pytest.raises(OSError) as bad_clone:
        _libc.clone3_unchecked(int(CloneFlags.FS | CloneFlags.NEWNS))
    assert bad_clone.value.errno == errno.EINVAL
    assert _libc.try_pthread() == "ok"
