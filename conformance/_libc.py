"""The libc calls the checks need and nsprim does not bind: the suite's one ctypes module.

Layer: conformance, private. Imports the standard library and
:mod:`.outcome` (for :class:`Skip`) only. Nothing else in ``conformance/``
loads a C library: a check that needs a call nsprim has no binding for adds
it here, with full ``argtypes``/``restype``, and calls the typed wrapper.

What lives here and why nsprim does not offer it:

* SysV IPC (msg*, sem*, shm*) and POSIX message queues (mq_*): IPC objects are
  what the IPC and PID checks create inside their namespaces; they are not
  namespace plumbing, so nsprim has no business binding them.
* POSIX timers, timerfd, clock_nanosleep, sysinfo(2) and futex(2): how the time
  checks observe the clocks a time namespace offsets.
* pthread_create(3): the one way to see the errno a refused thread gets
  (Python's threading hides it).
* Unchecked system calls: setns(2), clone3(2) and mount_setattr(2) with
  arguments that :mod:`nsprim.syscalls` rightly refuses before the kernel sees
  them, for the checks that test the *kernel's* refusal.

Every wrapper raises ``OSError`` with the kernel's errno, as :mod:`os` does.
A syscall number this module does not know for the running architecture is a
:class:`Skip`, never a guessed number.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from collections.abc import Sequence
from typing import Any, Optional

from .outcome import Skip

__all__ = [
    "IPC_CREAT",
    "IPC_EXCL",
    "IPC_NOWAIT",
    "HAVE_POSIX_TIMERS",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgstat",
    "msgrm",
    "semget",
    "semop",
    "semval",
    "semrm",
    "shmget",
    "shmwrite",
    "shmread",
    "shmlock",
    "shmrm",
    "mq_open",
    "mq_send",
    "mq_receive",
    "mq_notify",
    "mq_close",
    "mq_unlink",
    "clock_gettime_syscall",
    "clock_nanosleep_abs",
    "timerfd_abs",
    "PosixTimer",
    "futex_wait_abs",
    "sysinfo_uptime",
    "try_pthread",
    "setns_unchecked",
    "clone3_unchecked",
    "mount_setattr_unchecked",
]

NSEC = 1_000_000_000

# include/uapi/linux/ipc.h, msg.h, sem.h, shm.h
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_NOWAIT = 0o4000
IPC_RMID = 0
IPC_STAT = 2
GETVAL = 12
SHM_LOCK = 11
MSG_NOERROR = 0o10000
#: Room for struct msqid_ds (120 bytes on 64-bit Linux) with margin.
_MSQID_DS_SIZE = 512
# include/uapi/linux/time.h, timerfd.h, asm-generic/siginfo.h, futex.h
TIMER_ABSTIME = 1
TFD_TIMER_ABSTIME = 1
SIGEV_SIGNAL = 0
FUTEX_WAIT_BITSET = 9
FUTEX_PRIVATE_FLAG = 128
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
SIGCHLD = 17
AT_FDCWD = -100

# --- the libraries ----------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
# PyDLL keeps the GIL held across the call, as os.fork does: a clone3 child can
# then leave with os._exit at once.
_pylibc = ctypes.PyDLL(None, use_errno=True)


def _librt() -> Optional[ctypes.CDLL]:
    """glibc 2.34 moved the mq_* and timer_* functions from librt into libc."""
    if hasattr(_libc, "mq_open") and hasattr(_libc, "timer_create"):
        return _libc
    try:
        return ctypes.CDLL("librt.so.1", use_errno=True)
    except OSError:
        return None


_rt = _librt()


def _proto(lib: Optional[ctypes.CDLL], name: str, restype: Any, *argtypes: Any) -> Any:
    """Return a fresh function object for *name* (``lib[name]``), so one symbol can carry
    several prototypes (syscall(2)); ``None`` when the library or symbol is missing."""
    if lib is None or not hasattr(lib, name):
        return None
    fn = lib[name]
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


def _check(ret: int, call: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return ret


# --- structures -------------------------------------------------------------------------


class _SemBuf(ctypes.Structure):
    """struct sembuf (sys/sem.h)."""

    _fields_ = [
        ("sem_num", ctypes.c_ushort),
        ("sem_op", ctypes.c_short),
        ("sem_flg", ctypes.c_short),
    ]


class _MqAttr(ctypes.Structure):
    """struct mq_attr (mqueue.h)."""

    _fields_ = [
        ("mq_flags", ctypes.c_long),
        ("mq_maxmsg", ctypes.c_long),
        ("mq_msgsize", ctypes.c_long),
        ("mq_curmsgs", ctypes.c_long),
        ("_pad", ctypes.c_long * 4),
    ]


class _Sigevent(ctypes.Structure):
    """struct sigevent: sigval, signo, notify, padding to 64 bytes (glibc sigevent_t.h)."""

    _fields_ = [
        ("sigev_value", ctypes.c_void_p),
        ("sigev_signo", ctypes.c_int),
        ("sigev_notify", ctypes.c_int),
        ("_pad", ctypes.c_int * ((64 - ctypes.sizeof(ctypes.c_void_p) - 8) // 4)),
    ]


class _Timespec(ctypes.Structure):
    """struct timespec (time_t and long, as glibc declares them for this ABI)."""

    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    """struct itimerspec."""

    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _Sysinfo(ctypes.Structure):
    """struct sysinfo (linux/sysinfo.h)."""

    _fields_ = [
        ("uptime", ctypes.c_long),
        ("loads", ctypes.c_ulong * 3),
        ("totalram", ctypes.c_ulong),
        ("freeram", ctypes.c_ulong),
        ("sharedram", ctypes.c_ulong),
        ("bufferram", ctypes.c_ulong),
        ("totalswap", ctypes.c_ulong),
        ("freeswap", ctypes.c_ulong),
        ("procs", ctypes.c_ushort),
        ("pad", ctypes.c_ushort),
        ("totalhigh", ctypes.c_ulong),
        ("freehigh", ctypes.c_ulong),
        ("mem_unit", ctypes.c_uint),
        ("_f", ctypes.c_char * (20 - 2 * ctypes.sizeof(ctypes.c_long) - 4)),
    ]


class _CloneArgs(ctypes.Structure):
    """struct clone_args up to CLONE_ARGS_SIZE_VER0 (64 bytes; linux/sched.h)."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "flags",
            "pidfd",
            "child_tid",
            "parent_tid",
            "exit_signal",
            "stack",
            "stack_size",
            "tls",
        )
    ]


class _MountAttr(ctypes.Structure):
    """struct mount_attr, MOUNT_ATTR_SIZE_VER0 (32 bytes; linux/mount.h)."""

    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _timespec(ns: int) -> _Timespec:
    # Floor division keeps tv_nsec in [0, 1e9) for negative values too.
    return _Timespec(ns // NSEC, ns % NSEC)


# --- prototypes -------------------------------------------------------------------------

_int, _uint, _long, _size, _ssize, _vp = (
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_long,
    ctypes.c_size_t,
    ctypes.c_ssize_t,
    ctypes.c_void_p,
)
_TS = ctypes.POINTER(_Timespec)
_ITS = ctypes.POINTER(_Itimerspec)

_msgget = _proto(_libc, "msgget", _int, _int, _int)
_msgsnd = _proto(_libc, "msgsnd", _int, _int, _vp, _size, _int)
_msgrcv = _proto(_libc, "msgrcv", _ssize, _int, _vp, _size, _long, _int)
_msgctl = _proto(_libc, "msgctl", _int, _int, _int, _vp)
_semget = _proto(_libc, "semget", _int, _int, _int, _int)
_semop = _proto(_libc, "semop", _int, _int, ctypes.POINTER(_SemBuf), _size)
# semctl is variadic; GETVAL and IPC_RMID take no fourth argument (glibc reads
# the va_list only for the commands that use union semun).
_semctl = _proto(_libc, "semctl", _int, _int, _int, _int)
_shmget = _proto(_libc, "shmget", _int, _int, _size, _int)
_shmat = _proto(_libc, "shmat", _vp, _int, _vp, _int)
_shmdt = _proto(_libc, "shmdt", _int, _vp)
_shmctl = _proto(_libc, "shmctl", _int, _int, _int, _vp)
# mq_open is variadic (mode, attr); declaring all four is what glibc reads with O_CREAT.
_mq_open = _proto(_rt, "mq_open", _int, ctypes.c_char_p, _int, _uint, ctypes.POINTER(_MqAttr))
_mq_send = _proto(_rt, "mq_send", _int, _int, ctypes.c_char_p, _size, _uint)
_mq_receive = _proto(_rt, "mq_receive", _ssize, _int, ctypes.c_char_p, _size, _vp)
_mq_notify = _proto(_rt, "mq_notify", _int, _int, ctypes.POINTER(_Sigevent))
_mq_close = _proto(_rt, "mq_close", _int, _int)
_mq_unlink = _proto(_rt, "mq_unlink", _int, ctypes.c_char_p)
_timer_create = _proto(
    _rt, "timer_create", _int, _int, ctypes.POINTER(_Sigevent), ctypes.POINTER(_vp)
)
_timer_settime = _proto(_rt, "timer_settime", _int, _vp, _int, _ITS, _ITS)
_timer_delete = _proto(_rt, "timer_delete", _int, _vp)
_clock_nanosleep = _proto(_libc, "clock_nanosleep", _int, _int, _int, _TS, _TS)
_timerfd_create = _proto(_libc, "timerfd_create", _int, _int, _int)
_timerfd_settime = _proto(_libc, "timerfd_settime", _int, _int, _int, _ITS, _ITS)
_sysinfo = _proto(_libc, "sysinfo", _int, ctypes.POINTER(_Sysinfo))
_setns = _proto(_libc, "setns", _int, _int, _int)
_THREAD_START = ctypes.CFUNCTYPE(_vp, _vp)
_pthread_create = _proto(
    _libc, "pthread_create", _int, ctypes.POINTER(ctypes.c_ulong), _vp, _THREAD_START, _vp
)
_pthread_join = _proto(_libc, "pthread_join", _int, ctypes.c_ulong, _vp)
# syscall(2) is variadic and reads every argument as a long: pass longs (and
# addresses as ints) only. The blocking calls release the GIL (CDLL); clone3
# keeps it (PyDLL).
_syscall = _proto(_libc, "syscall", _long, *([_long] * 7))
_pysyscall = _proto(_pylibc, "syscall", _long, *([_long] * 7))

#: Whether POSIX timers (timer_create and friends) are in libc or librt.so.1.
HAVE_POSIX_TIMERS = _timer_create is not None

# --- raw system calls -------------------------------------------------------------------

# syscall(2) numbers, per architecture (arch/x86/entry/syscalls/syscall_64.tbl,
# include/uapi/asm-generic/unistd.h). Calls added since Linux 5.1 share one number
# on every architecture listed here.
_UNIFIED = {"clone3": 435, "mount_setattr": 442}
_OLD = {
    "x86_64": {"clock_gettime": 228, "futex": 202},
    "aarch64": {"clock_gettime": 113, "futex": 98},
    "riscv64": {"clock_gettime": 113, "futex": 98},
    "loongarch64": {"clock_gettime": 113, "futex": 98},
}
_UNIFIED_ARCHES = frozenset(
    [
        "x86_64",
        "i386",
        "i686",
        "aarch64",
        "armv7l",
        "armv8l",
        "riscv64",
        "ppc64le",
        "ppc64",
        "s390x",
        "loongarch64",
    ]
)


def syscall_number(name: str) -> int:
    """Return the syscall(2) number of *name* on this architecture.

    Raises:
        Skip: the architecture is not in this module's table (a check can't run here).
    """
    machine = platform.machine()
    if name in _UNIFIED and machine in _UNIFIED_ARCHES:
        return _UNIFIED[name]
    number = _OLD.get(machine, {}).get(name)
    if number is None:
        raise Skip(f"no {name} syscall number for {machine} in the suite's table")
    return number


def _raw(name: str, *args: int, hold_gil: bool = False) -> int:
    padded = (*args, 0, 0, 0, 0, 0, 0)[:6]
    fn = _pysyscall if hold_gil else _syscall
    ret = int(fn(syscall_number(name), *padded))
    return _check(ret, name)


# --- SysV message queues ----------------------------------------------------------------


def msgget(key: int, flags: int = 0) -> int:
    """Return the id of the message queue with *key*. msgget(2)."""
    return _check(_msgget(key, flags), f"msgget({key:#x})")


def msgsnd(msqid: int, mtype: int, text: bytes) -> None:
    """Queue *text* as a message of type *mtype*, without blocking. msgsnd(2)."""
    buf = ctypes.create_string_buffer(struct.pack("l", mtype) + text)
    _check(_msgsnd(msqid, buf, len(text), IPC_NOWAIT), f"msgsnd({msqid})")


def msgrcv(msqid: int, mtype: int = 0, size: int = 256) -> tuple[int, bytes]:
    """Dequeue the first message of type *mtype* (0: any), without blocking. msgrcv(2).

    Raises:
        OSError: ENOMSG when no such message is queued.
    """
    head = struct.calcsize("l")
    buf = ctypes.create_string_buffer(head + size)
    n = _check(_msgrcv(msqid, buf, size, mtype, IPC_NOWAIT | MSG_NOERROR), f"msgrcv({msqid})")
    (got,) = struct.unpack_from("l", buf.raw)
    return got, buf.raw[head : head + n]


def msgstat(msqid: int) -> None:
    """Stat the queue *msqid* (IPC_STAT), only to see whether the id resolves. msgctl(2)."""
    buf = ctypes.create_string_buffer(_MSQID_DS_SIZE)
    _check(_msgctl(msqid, IPC_STAT, buf), f"msgctl({msqid}, IPC_STAT)")


def msgrm(msqid: int) -> None:
    """Remove the queue *msqid* (IPC_RMID). msgctl(2)."""
    _check(_msgctl(msqid, IPC_RMID, None), f"msgctl({msqid}, IPC_RMID)")


# --- SysV semaphores --------------------------------------------------------------------


def semget(key: int, nsems: int, flags: int = 0) -> int:
    """Return the id of the semaphore set with *key*. semget(2)."""
    return _check(_semget(key, nsems, flags), f"semget({key:#x})")


def semop(semid: int, ops: Sequence[tuple[int, int, int]]) -> None:
    """Apply ``(sem_num, sem_op, sem_flg)`` operations atomically. semop(2)."""
    arr = (_SemBuf * len(ops))(*(_SemBuf(n, op, fl) for n, op, fl in ops))
    _check(_semop(semid, arr, len(ops)), f"semop({semid})")


def semval(semid: int, num: int = 0) -> int:
    """Return the value of semaphore *num* of set *semid* (GETVAL). semctl(2)."""
    return _check(_semctl(semid, num, GETVAL), f"semctl({semid}, GETVAL)")


def semrm(semid: int) -> None:
    """Remove the semaphore set *semid* (IPC_RMID). semctl(2)."""
    _check(_semctl(semid, 0, IPC_RMID), f"semctl({semid}, IPC_RMID)")


# --- SysV shared memory -----------------------------------------------------------------

_SHMAT_FAILED = ctypes.c_void_p(-1).value


def shmget(key: int, size: int, flags: int = 0) -> int:
    """Return the id of the shared memory segment with *key*. shmget(2)."""
    return _check(_shmget(key, size, flags), f"shmget({key:#x})")


def _attach(shmid: int) -> int:
    addr = _shmat(shmid, None, 0)
    if addr is None or addr == _SHMAT_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, f"shmat({shmid}): {os.strerror(err)}")
    return int(addr)


def shmwrite(shmid: int, data: bytes) -> None:
    """Attach segment *shmid*, copy *data* to its start, detach. shmat(2)/shmdt(2)."""
    addr = _attach(shmid)
    try:
        ctypes.memmove(addr, data, len(data))
    finally:
        _check(_shmdt(addr), "shmdt")


def shmread(shmid: int, size: int) -> bytes:
    """Attach segment *shmid*, return its first *size* bytes, detach. shmat(2)/shmdt(2)."""
    addr = _attach(shmid)
    try:
        return ctypes.string_at(addr, size)
    finally:
        _check(_shmdt(addr), "shmdt")


def shmlock(shmid: int) -> None:
    """Lock segment *shmid* in memory (SHM_LOCK, charged to RLIMIT_MEMLOCK). shmctl(2)."""
    _check(_shmctl(shmid, SHM_LOCK, None), f"shmctl({shmid}, SHM_LOCK)")


def shmrm(shmid: int) -> None:
    """Mark segment *shmid* for removal (IPC_RMID). shmctl(2)."""
    _check(_shmctl(shmid, IPC_RMID, None), f"shmctl({shmid}, IPC_RMID)")


# --- POSIX message queues ---------------------------------------------------------------


def _mq_missing() -> None:
    if _mq_open is None:
        raise OSError(errno.ENOSYS, "no mq_open in libc or librt.so.1")


def mq_open(
    name: str | bytes, flags: int, *, mode: int = 0o600, maxmsg: int = 0, msgsize: int = 0
) -> int:
    """Open (or with ``os.O_CREAT`` create) the POSIX queue *name*; return its descriptor.

    mq_open(3). *maxmsg*/*msgsize* (both or neither) size a new queue.
    """
    _mq_missing()
    attr = None
    if maxmsg or msgsize:
        attr = ctypes.pointer(_MqAttr(0, maxmsg, msgsize, 0))
    return _check(_mq_open(os.fsencode(name), flags, mode, attr), f"mq_open({name!r})")


def mq_send(mqd: int, data: bytes, prio: int = 0) -> None:
    """Send *data* on queue descriptor *mqd*. mq_send(3)."""
    _check(_mq_send(mqd, data, len(data), prio), "mq_send")


def mq_receive(mqd: int, size: int) -> bytes:
    """Receive the oldest highest-priority message (*size* ≥ the queue's msgsize). mq_receive(3)."""
    buf = ctypes.create_string_buffer(size)
    n = _check(_mq_receive(mqd, buf, size, None), "mq_receive")
    return buf.raw[:n]


def mq_notify(mqd: int, signo: int) -> None:
    """Ask for *signo* (SIGEV_SIGNAL) when a message arrives on an empty queue. mq_notify(3)."""
    event = _Sigevent(sigev_signo=signo, sigev_notify=SIGEV_SIGNAL)
    _check(_mq_notify(mqd, ctypes.byref(event)), "mq_notify")


def mq_close(mqd: int) -> None:
    """Close queue descriptor *mqd*. mq_close(3)."""
    _check(_mq_close(mqd), "mq_close")


def mq_unlink(name: str | bytes) -> None:
    """Remove the queue *name*. mq_unlink(3)."""
    _check(_mq_unlink(os.fsencode(name)), f"mq_unlink({name!r})")


# --- clocks and timers ------------------------------------------------------------------


def clock_gettime_syscall(clock: int) -> int:
    """Read *clock* in nanoseconds with a raw clock_gettime(2), bypassing the vDSO."""
    ts = _Timespec()
    _raw("clock_gettime", clock, ctypes.addressof(ts))
    return int(ts.tv_sec) * NSEC + int(ts.tv_nsec)


def clock_nanosleep_abs(clock: int, target_ns: int) -> None:
    """Sleep until *clock* reads *target_ns* (TIMER_ABSTIME), restarting on EINTR."""
    ts = _timespec(target_ns)
    while True:
        ret = _clock_nanosleep(clock, TIMER_ABSTIME, ctypes.byref(ts), None)
        if ret != errno.EINTR:
            break
    if ret:
        raise OSError(ret, f"clock_nanosleep: {os.strerror(ret)}")


def timerfd_abs(clock: int, target_ns: int) -> int:
    """Return a timerfd (O_CLOEXEC) on *clock* armed for absolute *target_ns*; caller closes it.

    timerfd_create(2), timerfd_settime(2) with TFD_TIMER_ABSTIME.
    """
    fd = _check(_timerfd_create(clock, os.O_CLOEXEC), "timerfd_create")
    try:
        spec = _Itimerspec(_Timespec(0, 0), _timespec(target_ns))
        _check(_timerfd_settime(fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None), "timerfd_settime")
    except BaseException:
        os.close(fd)
        raise
    return fd


class PosixTimer:
    """A POSIX timer on *clock* that sends *signo* (SIGEV_SIGNAL). timer_create(2).

    Use as a context manager; :meth:`arm_abs` arms it (timer_settime(2), TIMER_ABSTIME).
    """

    def __init__(self, clock: int, signo: int) -> None:
        if not HAVE_POSIX_TIMERS:
            raise OSError(errno.ENOSYS, "no timer_create in libc or librt.so.1")
        event = _Sigevent(sigev_signo=signo, sigev_notify=SIGEV_SIGNAL)
        self._timer = ctypes.c_void_p()
        _check(_timer_create(clock, ctypes.byref(event), ctypes.byref(self._timer)), "timer_create")

    def arm_abs(self, target_ns: int) -> None:
        spec = _Itimerspec(_Timespec(0, 0), _timespec(target_ns))
        _check(
            _timer_settime(self._timer, TIMER_ABSTIME, ctypes.byref(spec), None), "timer_settime"
        )

    def __enter__(self) -> PosixTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        _timer_delete(self._timer)


def futex_wait_abs(target_ns: int) -> str:
    """Wait on a private futex word until CLOCK_MONOTONIC reads *target_ns*.

    futex(2) FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout.
    Returns the errno name it ended with (``"ETIMEDOUT"`` when it timed out).
    """
    word = ctypes.c_uint32(0)
    ts = _timespec(target_ns)
    op = FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG
    while True:
        try:
            _raw(
                "futex",
                ctypes.addressof(word),
                op,
                0,
                ctypes.addressof(ts),
                0,
                FUTEX_BITSET_MATCH_ANY,
            )
        except OSError as err:
            if err.errno == errno.EINTR:
                continue
            return errno.errorcode.get(err.errno or 0, str(err.errno))
        return "ok"


def sysinfo_uptime() -> int:
    """Return sysinfo(2)'s uptime, in seconds."""
    info = _Sysinfo()
    _check(_sysinfo(ctypes.byref(info)), "sysinfo")
    return int(info.uptime)


# --- threads ----------------------------------------------------------------------------


def _thread_body(arg: Optional[int]) -> None:
    return None


_THREAD_BODY = _THREAD_START(_thread_body)  # kept alive for the module's lifetime


def try_pthread() -> str:
    """Create and join one thread with pthread_create(3); return "ok" or its errno name.

    Python's threading hides the errno ("can't start new thread"); pthread_create returns it.
    """
    tid = ctypes.c_ulong()
    rc = _pthread_create(ctypes.byref(tid), None, _THREAD_BODY, None)
    if rc:
        return errno.errorcode.get(rc, str(rc))
    _pthread_join(tid.value, None)
    return "ok"


# --- unchecked system calls -------------------------------------------------------------


def setns_unchecked(fd: int, nstype: int) -> None:
    """setns(2) with *nstype* passed as is (nsprim.syscalls.setns refuses invalid masks)."""
    _check(_setns(fd, nstype), "setns")


def clone3_unchecked(flags: int) -> None:
    """clone3(2) with *flags* passed as is and SIGCHLD; a child made anyway exits and is reaped.

    For the checks of the kernel's own refusals (CLONE_FS|CLONE_NEWNS is EINVAL),
    which :func:`nsprim.syscalls.clone3` refuses before the call.
    """
    args = _CloneArgs(flags=flags, exit_signal=SIGCHLD)
    pid = _raw("clone3", ctypes.addressof(args), ctypes.sizeof(args), hold_gil=True)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def mount_setattr_unchecked(path: str, propagation: int) -> None:
    """mount_setattr(2) changing only the propagation of *path*, passed as is."""
    attr = _MountAttr(propagation=propagation & 0xFFFFFFFFFFFFFFFF)
    buf = ctypes.create_string_buffer(os.fsencode(path))
    _raw(
        "mount_setattr",
        AT_FDCWD,
        ctypes.addressof(buf),
        0,
        ctypes.addressof(attr),
        ctypes.sizeof(attr),
    )
