"""SysV IPC and POSIX message queue calls for the IPC checks, through ctypes.

Layer: conformance checks, private helper (not a check group: the name starts
with ``_``). Imports the standard library only.

Python's standard library binds neither SysV IPC nor POSIX message queues, and
nsprim has no business owning them, so the IPC checks bind the few calls they
need here, each with full ``argtypes``/``restype`` (STYLE.md 5.7). Every call
raises ``OSError`` with the kernel's errno, as ``os`` functions do.

Callers run these only in namespaces they created (or the runner's throwaway
sandbox IPC namespace), so nothing touches the host's IPC objects.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Sequence
from typing import Any, Callable

__all__ = [
    "IPC_CREAT",
    "IPC_EXCL",
    "IPC_NOWAIT",
    "attempt",
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
    "mq_close",
    "mq_unlink",
]

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

_libc = ctypes.CDLL(None, use_errno=True)
# glibc moved the mq_* functions from librt into libc in 2.34.
_rt = _libc if hasattr(_libc, "mq_open") else ctypes.CDLL("librt.so.1", use_errno=True)


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


def _proto(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_int, _uint, _long, _size, _ssize = (
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_long,
    ctypes.c_size_t,
    ctypes.c_ssize_t,
)
_vp = ctypes.c_void_p
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
_mq_receive = _proto(_rt, "mq_receive", _ssize, _int, ctypes.c_char_p, _size, ctypes.c_void_p)
_mq_close = _proto(_rt, "mq_close", _int, _int)
_mq_unlink = _proto(_rt, "mq_unlink", _int, ctypes.c_char_p)

_SHMAT_FAILED = ctypes.c_void_p(-1).value


def _check(ret: int, call: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return ret


def attempt(fn: Callable[..., object], *args: object) -> str:
    """Call ``fn(*args)``; return ``"ok"`` or the errno name it failed with (``"ENOENT"``)."""
    try:
        fn(*args)
    except OSError as err:
        return errno.errorcode.get(err.errno or 0, str(err.errno))
    return "ok"


# -- SysV message queues -------------------------------------------------------


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


# -- SysV semaphores -----------------------------------------------------------


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


# -- SysV shared memory ----------------------------------------------------------


def shmget(key: int, size: int, flags: int = 0) -> int:
    """Return the id of the shared memory segment with *key*. shmget(2)."""
    return _check(_shmget(key, size, flags), f"shmget({key:#x})")


def _attach(shmid: int) -> int:
    addr = _shmat(shmid, None, 0)
    if addr is None or addr == _SHMAT_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, f"shmat({shmid}): {os.strerror(err)}")
    return int(addr)


def _detach(addr: int) -> None:
    _check(_shmdt(addr), "shmdt")


def shmwrite(shmid: int, data: bytes) -> None:
    """Attach segment *shmid*, copy *data* to its start, detach. shmat(2)/shmdt(2)."""
    addr = _attach(shmid)
    try:
        ctypes.memmove(addr, data, len(data))
    finally:
        _detach(addr)


def shmread(shmid: int, size: int) -> bytes:
    """Attach segment *shmid*, return its first *size* bytes, detach. shmat(2)/shmdt(2)."""
    addr = _attach(shmid)
    try:
        return ctypes.string_at(addr, size)
    finally:
        _detach(addr)


def shmlock(shmid: int) -> None:
    """Lock segment *shmid* in memory (SHM_LOCK, charged to RLIMIT_MEMLOCK). shmctl(2)."""
    _check(_shmctl(shmid, SHM_LOCK, None), f"shmctl({shmid}, SHM_LOCK)")


def shmrm(shmid: int) -> None:
    """Mark segment *shmid* for removal (IPC_RMID). shmctl(2)."""
    _check(_shmctl(shmid, IPC_RMID, None), f"shmctl({shmid}, IPC_RMID)")


# -- POSIX message queues --------------------------------------------------------


def mq_open(name: str, flags: int, *, mode: int = 0o600, maxmsg: int = 0, msgsize: int = 0) -> int:
    """Open (or with ``os.O_CREAT`` create) the POSIX queue *name*; return its descriptor.

    mq_open(3). *maxmsg*/*msgsize* (both or neither) size a new queue.
    """
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


def mq_close(mqd: int) -> None:
    """Close queue descriptor *mqd*. mq_close(3)."""
    _check(_mq_close(mqd), "mq_close")


def mq_unlink(name: str) -> None:
    """Remove the queue *name*. mq_unlink(3)."""
    _check(_mq_unlink(os.fsencode(name)), f"mq_unlink({name!r})")
