"""IPC namespace checks: IPC-01 to IPC-07.

Layer: conformance checks. Imports public nsprim names, the conformance
registry and :mod:`.._libc` (SysV IPC and POSIX message queues, which neither
the standard library nor nsprim binds).

Every object a check creates lives in an IPC namespace that a helper created,
or in the runner's throwaway sandbox IPC namespace (the "parent" here), so
nothing reaches the host; what the sandbox holds dies with it, and the checks
remove their own objects anyway.

The SysV kinds (IPC-01..03) share one body, :func:`_sysv_isolated`, driven by
the :data:`_SYSV` table, after LTP's ``mesgq_nstest``/``sem_nstest``/
``shmnstest`` (the parent's key and id don't resolve in a new namespace) and
``msg_comm``/``sem_comm``/``shm_comm`` (the same key in two namespaces names
two objects that don't interfere).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import time
from dataclasses import dataclass
from typing import Callable

from nsprim import idmap, syscalls
from nsprim.flags import MountFlags, UmountFlags

from .. import _libc
from ..registry import ChildHandle, Context, Needs, Skip, check
from ._common import NEWIPC, NEWUSER, attempt, setns, setns_path, unshare

__all__: list[str] = []


#: The SysV key every check uses ("nsp" + 1); each namespace starts empty, so it can't clash.
KEY = 0x6E737001
#: Who marks an object, and how the mark reads back.
_WHO = {"parent": 1, "child": 2}
_SHM_SIZE = 4096
_MARK_LEN = 8


def _pad(who: str) -> bytes:
    return who.encode().ljust(_MARK_LEN)


def _msg_drain(msqid: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while True:
        try:
            out.append(_libc.msgrcv(msqid))
        except OSError as err:
            if err.errno == errno.ENOMSG:
                return out
            raise


def _sem_init(semid: int) -> None:
    _libc.semop(semid, [(0, 1, 0)])  # a new set starts at 0: make it an unlocked binary lock


@dataclass(frozen=True)
class _SysV:
    """How one SysV IPC kind is created, touched by id, marked and read back.

    Attributes:
        get: ``(key, flags) -> id`` (msgget/semget/shmget with mode 0600).
        init: prepares a freshly created object.
        use: touches an id without changing it (IPC_STAT, GETVAL, shmat+shmdt).
        mark: leaves a process's mark (send a message, take the lock, write).
        view: what the object holds now.
        marked: what ``view`` returns when only *who* marked it.
        remove: IPC_RMID.
    """

    get: Callable[[int, int], int]
    init: Callable[[int], None]
    use: Callable[[int], object]
    mark: Callable[[int, str], None]
    view: Callable[[int], object]
    marked: Callable[[str], object]
    remove: Callable[[int], None]


_SYSV = {
    "msg": _SysV(
        get=lambda key, flags: _libc.msgget(key, flags | 0o600),
        init=lambda _id: None,
        use=_libc.msgstat,
        mark=lambda msqid, who: _libc.msgsnd(msqid, _WHO[who], who.encode()),
        view=_msg_drain,
        marked=lambda who: [(_WHO[who], who.encode())],
        remove=_libc.msgrm,
    ),
    "sem": _SysV(
        get=lambda key, flags: _libc.semget(key, 1, flags | 0o600),
        init=_sem_init,
        use=_libc.semval,
        # sem_comm: take the lock without waiting; EAGAIN if someone else holds it.
        mark=lambda semid, who: _libc.semop(semid, [(0, -1, _libc.IPC_NOWAIT)]),
        view=_libc.semval,
        marked=lambda who: 0,
        remove=_libc.semrm,
    ),
    "shm": _SysV(
        get=lambda key, flags: _libc.shmget(key, _SHM_SIZE, flags | 0o600),
        init=lambda _id: None,
        use=lambda shmid: _libc.shmread(shmid, 1),
        mark=lambda shmid, who: _libc.shmwrite(shmid, _pad(who)),
        view=lambda shmid: _libc.shmread(shmid, _MARK_LEN),
        marked=_pad,
        remove=_libc.shmrm,
    ),
}


def _sysv_create(kind: str) -> int:
    ops = _SYSV[kind]
    obj = ops.get(KEY, _libc.IPC_CREAT | _libc.IPC_EXCL)
    ops.init(obj)
    return obj


def _sysv_in_new_ns(kind: str, parent_id: int) -> dict[str, object]:
    """Probe the parent's key and id, then use the same key here; report what happened."""
    ops = _SYSV[kind]
    # Before creating anything here: a new namespace is empty, so no id resolves.
    seen: dict[str, object] = {
        "lookup": attempt(ops.get, KEY, 0),
        "parent id": attempt(ops.use, parent_id),
    }
    try:
        obj = _sysv_create(kind)
        seen["create"] = "ok"
    except FileExistsError:
        seen["create"] = "EEXIST"
        obj = ops.get(KEY, 0)
    seen["mark"] = attempt(ops.mark, obj, "child")
    seen["view"] = ops.view(obj)
    return seen


def _sysv_isolated(ctx: Context, kind: str) -> None:
    ops = _SYSV[kind]
    flags = ctx.isolate(NEWIPC)
    own = _sysv_create(kind)
    ctx.defer(ops.remove, own)
    ops.mark(own, "parent")

    seen = ctx.in_child(_sysv_in_new_ns, kind, own, unshare=flags)
    ctx.expect_equal(seen["lookup"], "ENOENT", f"{kind}get(parent's key, 0) in a new IPC namespace")
    ctx.expect_equal(seen["parent id"], "EINVAL", f"using the parent's {kind} id in a new IPC ns")
    ctx.expect_equal(
        seen["create"], "ok", f"{kind}get(parent's key, IPC_CREAT|IPC_EXCL) in a new IPC ns"
    )
    ctx.expect_equal(
        seen["mark"], "ok", f"marking the new namespace's {kind} (parent holds its own)"
    )
    ctx.expect_equal(
        seen["view"], ops.marked("child"), f"the new namespace's {kind} after both sides marked"
    )
    ctx.expect_equal(ops.view(own), ops.marked("parent"), f"the parent's {kind} after both marked")


@check(
    "ipc.sysv_msg",
    catalogue="IPC-01",
    level="MUST",
    anchors=("LTP mesgq_nstest", "LTP msg_comm", "ipc_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6), kconfig=("IPC_NS", "SYSVIPC")),
    timeout=5.0,
)
def sysv_msg(ctx: Context) -> None:
    """A SysV message queue of the parent is invisible in a new IPC namespace, and its key is free.

    The parent creates a queue with a key and queues a message; a helper that
    unshared CLONE_NEWIPC must get ENOENT for msgget(key, 0) and EINVAL for
    the parent's queue id, create its own queue with the same key (IPC_EXCL),
    and each side must then find only its own message. Control: the helper
    does not unshare, so it finds the parent's queue.
    """
    _sysv_isolated(ctx, "msg")


@check(
    "ipc.sysv_sem",
    catalogue="IPC-02",
    level="MUST",
    anchors=("LTP sem_nstest", "LTP semtest_2ns", "LTP sem_comm", "ipc_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6), kconfig=("IPC_NS", "SYSVIPC")),
    timeout=5.0,
)
def sysv_sem(ctx: Context) -> None:
    """A SysV semaphore set of the parent is invisible in a new IPC namespace and doesn't lock it.

    As IPC-01 with a one-semaphore set used as a lock: the parent takes its
    lock, and the helper's semop(-1, IPC_NOWAIT) on the same key in the new
    namespace must still succeed (sem_comm). Control: the helper does not
    unshare, so the key resolves and the lock is taken (EAGAIN).
    """
    _sysv_isolated(ctx, "sem")


@check(
    "ipc.sysv_shm",
    catalogue="IPC-03",
    level="MUST",
    anchors=("LTP shmnstest", "LTP shmem_2nstest", "LTP shm_comm", "LTP setns02"),
    needs=Needs(min_kernel=(2, 6), kconfig=("IPC_NS", "SYSVIPC")),
    timeout=5.0,
)
def sysv_shm(ctx: Context) -> None:
    """A SysV shared memory segment of the parent is invisible in a new IPC namespace.

    As IPC-01 with a segment: shmat(2) of the parent's id fails (EINVAL) in
    the new namespace, and writes through the same key on both sides don't
    interfere (shm_comm). Control: the helper does not unshare, so it attaches
    the parent's segment and overwrites it.
    """
    _sysv_isolated(ctx, "shm")


# -- POSIX message queues (IPC-04, IPC-05) -------------------------------------

MQ_NAME = "/nsprim-ipc-q"
MQ_CHILD_ONLY = "/nsprim-ipc-child"
_MQ_SIZE = {"maxmsg": 4, "msgsize": 64}
_RDWR_NB = os.O_RDWR | os.O_NONBLOCK


#: A receive buffer at least as large as any queue here (a new namespace's msgsize_default is 8192).
_MQ_RECV = 65536


def _mq_drain(mqd: int) -> list[bytes]:
    out: list[bytes] = []
    while True:
        try:
            out.append(_libc.mq_receive(mqd, _MQ_RECV))
        except BlockingIOError:
            return out


def _mq_probe(name: str) -> str:
    """Open the existing queue *name* and close it again; "ok" or the errno name."""
    return attempt(lambda: _libc.mq_close(_libc.mq_open(name, os.O_RDWR)))


def _mq_discard(mqd: int, names: tuple[str, ...]) -> None:
    """Close *mqd* and unlink *names* that exist in this IPC namespace."""
    _libc.mq_close(mqd)
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            _libc.mq_unlink(name)


def _mq_in_new_ns() -> dict[str, object]:
    """mqns_01/02 from the helper's side: probe the parent's name, reuse it, keep a name."""
    seen: dict[str, object] = {"open parent's": _mq_probe(MQ_NAME)}
    try:
        mqd = _libc.mq_open(MQ_NAME, os.O_CREAT | os.O_EXCL | _RDWR_NB, **_MQ_SIZE)
        seen["create"] = "ok"
    except FileExistsError:
        seen["create"] = "EEXIST"
        mqd = _libc.mq_open(MQ_NAME, _RDWR_NB)
    try:
        _libc.mq_send(mqd, b"child")
        seen["received"] = _mq_drain(mqd)
    finally:
        _libc.mq_close(mqd)
    # A queue only this namespace has; the helper stays alive so it exists while probed.
    _libc.mq_close(_libc.mq_open(MQ_CHILD_ONLY, os.O_CREAT | os.O_RDWR, **_MQ_SIZE))
    return seen


@check(
    "ipc.posix_mq",
    catalogue="IPC-04",
    level="MUST",
    anchors=("LTP mqns_01", "LTP mqns_02", "mq_overview(7)", "ipc_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6), kconfig=("IPC_NS", "POSIX_MQUEUE")),
    timeout=5.0,
)
def posix_mq(ctx: Context) -> None:
    """A POSIX message queue of the parent is invisible (ENOENT) in a new IPC namespace.

    The parent creates a queue and sends a message; a helper that unshared
    CLONE_NEWIPC must get ENOENT from mq_open(3) of that name, create its own
    queue under the same name (O_EXCL), and receive only its own message; the
    parent must receive only its own, and must not see a queue that only the
    helper created (mqns_02). Control: the helper does not unshare, so it
    opens the parent's queue.
    """
    flags = ctx.isolate(NEWIPC)
    own = _libc.mq_open(MQ_NAME, os.O_CREAT | os.O_EXCL | _RDWR_NB, **_MQ_SIZE)
    ctx.defer(_mq_discard, own, (MQ_NAME, MQ_CHILD_ONLY))
    _libc.mq_send(own, b"parent")

    helper = ctx.spawn_child(_mq_in_new_ns, unshare=flags)
    seen = helper.recv()
    ctx.expect_equal(seen["open parent's"], "ENOENT", "mq_open(parent's name) in a new IPC ns")
    ctx.expect_equal(seen["create"], "ok", "mq_open(parent's name, O_CREAT|O_EXCL) in a new IPC ns")
    ctx.expect_equal(seen["received"], [b"child"], "messages on the new namespace's queue")
    ctx.expect_equal(_mq_drain(own), [b"parent"], "messages on the parent's queue")
    ctx.expect_equal(
        _mq_probe(MQ_CHILD_ONLY), "ENOENT", "the parent's mq_open of a queue only the helper made"
    )


_MQ_IN = "/nsprim-mqfs-1"
_MQ_VIA_FS = "/nsprim-mqfs-2"
_MQ_OUTSIDE = "/nsprim-mqfs-parent"
_MQ_LATE = "/nsprim-mqfs-late"
_MOUNT_FLAGS = int(MountFlags.NOSUID | MountFlags.NODEV)


def _qsize(path: str) -> int:
    """Return QSIZE from an mqueue file's status line (mq_overview(7))."""
    with open(path) as f:
        fields = dict(item.split(":", 1) for item in f.read().split())
    return int(fields["QSIZE"])


def _mqueuefs_inside(mnt: str) -> dict[str, object]:
    """mqns_03 in the helper: make a queue, mount mqueue, create through the fs, remount."""
    _libc.mq_close(_libc.mq_open(_MQ_IN, os.O_CREAT | os.O_EXCL | os.O_RDWR, **_MQ_SIZE))
    syscalls.mount("mqueue", mnt, "mqueue", _MOUNT_FLAGS)
    seen: dict[str, object] = {"listing": sorted(os.listdir(mnt))}

    path = os.path.join(mnt, _MQ_VIA_FS.lstrip("/"))
    os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600))
    mqd = _libc.mq_open(_MQ_VIA_FS, _RDWR_NB)
    try:
        _libc.mq_send(mqd, b"via-fs")
        seen["qsize"] = _qsize(path)
        seen["received"] = _mq_drain(mqd)
    finally:
        _libc.mq_close(mqd)

    # The superblock belongs to the namespace: a fresh mount shows the same queues.
    syscalls.umount(mnt)
    syscalls.mount("mqueue", mnt, "mqueue", _MOUNT_FLAGS)
    seen["remounted"] = sorted(os.listdir(mnt))
    return seen


def _umount_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        syscalls.umount(path, int(UmountFlags.DETACH))


@check(
    "ipc.mqueuefs_bound",
    catalogue="IPC-05",
    level="MUST",
    anchors=("LTP mqns_03", "LTP mqns_04", "mq_overview(7)", "ipc_namespaces(7)"),
    needs=Needs(min_kernel=(3, 8), kconfig=("IPC_NS", "POSIX_MQUEUE")),
    timeout=5.0,
)
def mqueuefs_bound(ctx: Context) -> None:
    """An mqueue fs mounted from inside a new IPC namespace shows exactly that namespace's queues.

    The parent makes a queue; a helper that unshared CLONE_NEWIPC makes one,
    mounts mqueue and must list only its own; a file it creates in the mount
    must be a real queue (mq_open, send, QSIZE, receive), and after umount
    and remount both are still listed (mqns_03). The parent, sharing the
    mount, sees the same two and cannot mq_open them; once the helper's
    namespace is gone, creating a queue through the mount fails with EACCES
    (mqns_04). Control: the helper does not unshare, so its mount lists the
    parent's queue too.
    """
    flags = ctx.isolate(NEWIPC)
    mnt = os.path.join(ctx.tmpdir, "mqueue")
    os.mkdir(mnt)
    own = _libc.mq_open(_MQ_OUTSIDE, os.O_CREAT | os.O_EXCL | os.O_RDWR, **_MQ_SIZE)
    ctx.defer(_mq_discard, own, (_MQ_OUTSIDE, _MQ_IN, _MQ_VIA_FS, _MQ_LATE))
    ctx.defer(_umount_quietly, mnt)  # LIFO: unmount first, then the parent's queues

    helper = ctx.spawn_child(_mqueuefs_inside, mnt, unshare=flags)
    seen = helper.recv()
    names = [_MQ_IN.lstrip("/")]
    ctx.expect_equal(seen["listing"], names, "queues listed by an mqueue fs mounted in a new ns")
    ctx.expect_equal(seen["qsize"], len(b"via-fs"), "QSIZE of a queue created through the fs")
    ctx.expect_equal(seen["received"], [b"via-fs"], "messages on a queue created through the fs")
    both = sorted([*names, _MQ_VIA_FS.lstrip("/")])
    ctx.expect_equal(seen["remounted"], both, "queues listed after umount and remount")

    ctx.expect_equal(sorted(os.listdir(mnt)), both, "queues the parent lists through the mount")
    ctx.expect_equal(_mq_probe(_MQ_IN), "ENOENT", "the parent's mq_open of the helper's queue")
    helper.stop()
    ctx.expect_equal(
        attempt(_create_file, os.path.join(mnt, _MQ_LATE.lstrip("/"))),
        "EACCES",
        "creating a queue through the mount after its IPC namespace died",
    )


def _create_file(path: str) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600))


# -- /proc views (IPC-06) ------------------------------------------------------

#: Per-namespace sysctls and the values a helper writes (defaults of a new ns differ).
_SYSCTLS = {
    "kernel/shmmax": "268435456",
    "kernel/msgmni": "1234",
    "kernel/sem": "250 32000 32 128",
    "fs/mqueue/msg_max": "12",
    "fs/mqueue/msgsize_max": "4096",
    "fs/mqueue/queues_max": "77",
}
_SYSVIPC = ("msg", "sem", "shm")
_VIEW_KEY = 0x6E737006


def _sysvipc_keys(kind: str) -> list[int]:
    with open(f"/proc/sysvipc/{kind}") as f:
        return sorted(int(line.split()[0]) for line in f.read().splitlines()[1:] if line.strip())


def _views() -> dict[str, object]:
    """Return what this process sees: each sysctl (spaces normalised), each sysvipc key list."""
    out: dict[str, object] = {}
    for name in _SYSCTLS:
        with open(f"/proc/sys/{name}") as f:
            out[name] = " ".join(f.read().split())
    for kind in _SYSVIPC:
        out[f"sysvipc/{kind}"] = _sysvipc_keys(kind)
    return out


def _configure() -> dict[str, object]:
    """Write every sysctl and create one object of each SysV kind; return the resulting views."""
    for name, value in _SYSCTLS.items():
        try:
            with open(f"/proc/sys/{name}", "w") as f:
                f.write(value)
        except PermissionError as err:
            return {"denied": f"writing /proc/sys/{name}: {err.strerror}"}
    for kind in _SYSVIPC:
        _SYSV[kind].get(_VIEW_KEY, _libc.IPC_CREAT)
    return _views()


def _views_across_setns(ns_path: str) -> dict[str, object]:
    """Read the views, pin their dentries, setns(2) to *ns_path*, read them again."""
    before = _views()
    pinned = [os.open(f"/proc/sys/{name}", os.O_RDONLY | os.O_CLOEXEC) for name in _SYSCTLS]
    pinned += [os.open(f"/proc/sysvipc/{k}", os.O_RDONLY | os.O_CLOEXEC) for k in _SYSVIPC]
    try:
        setns_path(ns_path, NEWIPC)
        return {"before": before, "after": _views()}
    finally:
        for fd in pinned:
            os.close(fd)


def _remove_view_objects() -> None:
    """Remove the IPC-06 objects from this namespace (they are here only in the control run)."""
    for kind in _SYSVIPC:
        with contextlib.suppress(OSError):
            _SYSV[kind].remove(_SYSV[kind].get(_VIEW_KEY, 0))


@check(
    "ipc.proc_views",
    catalogue="IPC-06",
    level="MUST",
    anchors=("selftest proc/setns-sysvipc", "ipc_namespaces(7)", "mq_overview(7)"),
    needs=Needs(min_kernel=(3, 8), kconfig=("IPC_NS", "SYSVIPC", "POSIX_MQUEUE")),
    timeout=5.0,
)
def proc_views(ctx: Context) -> None:
    """/proc/sysvipc/* and the kernel.{shmmax,msgmni,sem} and fs.mqueue.* sysctls are per IPC ns.

    A helper that unshared CLONE_NEWIPC writes new values to those sysctls and
    creates a queue, a semaphore set and a segment; it must read its values
    and keys back, while the parent's views stay as they were. A third process
    reads the parent's views, keeps the files open (their dentries cached,
    as in selftest setns-sysvipc), setns(2)es into the helper's namespace and
    must then read the helper's views. Control: the helper does not unshare,
    so the parent's views change.
    """
    flags = ctx.isolate(NEWIPC)
    before = _views()
    helper = ctx.spawn_child(_configure, unshare=flags)
    ctx.defer(_remove_view_objects)
    theirs = helper.recv()
    if "denied" in theirs:
        if ctx.as_user:  # older kernels kept them read-only outside the initial user ns
            raise Skip(f"IPC sysctls of a user-namespace-owned IPC ns are read-only here: {theirs}")
        raise PermissionError(f"root could not write IPC sysctls: {theirs}")
    wanted: dict[str, object] = {n: " ".join(v.split()) for n, v in _SYSCTLS.items()}
    wanted.update({f"sysvipc/{k}": [_VIEW_KEY] for k in _SYSVIPC})
    ctx.expect_equal(theirs, wanted, "the new namespace's views after it set them")
    ctx.expect_equal(_views(), before, "the parent's views after the new namespace set its own")

    seen = ctx.in_child(_views_across_setns, helper.ns_path("ipc"))
    ctx.expect_equal(seen["before"], before, "a third process's views before setns")
    ctx.expect_equal(seen["after"], wanted, "its views after setns into the new namespace")


# -- lifetime (IPC-07) ---------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")
#: One queue's worth of RLIMIT_MSGQUEUE: four 4 KiB messages plus overhead fit once, not twice.
_LIFE_MQ = {"maxmsg": 4, "msgsize": 4096}
_LIFE_MQ_LIMIT = 6 * 4096
#: One locked segment's worth of RLIMIT_MEMLOCK: 2 pages fit once in 3, not twice.
_LIFE_SHM = 2 * _PAGE
_LIFE_SHM_LIMIT = 3 * _PAGE
_LIFE_MQ_NAME = "/nsprim-life"
_LIFE_PROBE = "/nsprim-life-probe"
#: Seconds to wait for the kernel to free a dead IPC namespace (it does so from a workqueue).
_RELEASE_WAIT = 1.5


def _fill_namespace() -> None:
    """Create a POSIX queue, a locked SysV segment and a SysV queue in this IPC namespace."""
    _libc.mq_close(_libc.mq_open(_LIFE_MQ_NAME, os.O_CREAT | os.O_EXCL | os.O_RDWR, **_LIFE_MQ))
    shmid = _libc.shmget(KEY, _LIFE_SHM, _libc.IPC_CREAT | 0o600)
    _libc.shmlock(shmid)
    _libc.msgsnd(_libc.msgget(KEY, _libc.IPC_CREAT | 0o600), 1, b"kept")


def _take_queue() -> None:
    """Create (and at once remove) one queue of the IPC-07 size in this IPC namespace."""
    _libc.mq_close(_libc.mq_open(_LIFE_PROBE, os.O_CREAT | os.O_EXCL | os.O_RDWR, **_LIFE_MQ))
    _libc.mq_unlink(_LIFE_PROBE)


def _charge_attempts(shmid: int) -> dict[str, str]:
    """Try to take one more queue's and one more locked segment's worth of the rlimits."""
    return {"mq": attempt(_take_queue), "shm": attempt(_libc.shmlock, shmid)}


def _fresh_charges() -> dict[str, str]:
    """In a fresh IPC namespace (a throwaway helper), try both charges once."""
    return _charge_attempts(_libc.shmget(KEY, _LIFE_SHM, _libc.IPC_CREAT | 0o600))


def _look_inside(fd: int) -> dict[str, str]:
    """setns(2) into the IPC namespace *fd*; report whether the objects are still there."""
    setns(fd, NEWIPC)
    return {
        "mq": _mq_probe(_LIFE_MQ_NAME),
        "shm": attempt(_libc.shmget, KEY, 0),
        "msg": attempt(_libc.msgget, KEY, 0),
    }


def _lifetime(ctx: Context, uid: int, gid: int, keep_fd: bool) -> dict[str, object]:
    """Run IPC-07 in this process, which has just unshared CLONE_NEWUSER."""
    idmap.map_root(os.getpid(), uid, gid)
    # The rlimits are counted per (user ns, uid) since Linux 5.14, and this user
    # namespace is new, so nothing else is charged here.
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (_LIFE_MQ_LIMIT, _LIFE_MQ_LIMIT))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (_LIFE_SHM_LIMIT, _LIFE_SHM_LIMIT))
    member: ChildHandle = ctx.spawn_child(_fill_namespace, unshare=NEWIPC)
    member.recv()
    seen: dict[str, object] = {"charged": ctx.in_child(_fresh_charges, unshare=NEWIPC)}

    fd = os.open(member.ns_path("ipc"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        member.stop()  # the last member is gone; only fd holds the namespace
        seen["held"] = ctx.in_child(_look_inside, fd)
    finally:
        if not keep_fd:
            os.close(fd)
    # Probe the charges from a namespace of our own until the dead one is freed.
    unshare(NEWIPC)
    shmid = _libc.shmget(KEY, _LIFE_SHM, _libc.IPC_CREAT | 0o600)
    deadline = time.monotonic() + _RELEASE_WAIT
    while True:
        seen["released"] = released = _charge_attempts(shmid)
        if set(released.values()) == {"ok"} or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)


@check(
    "ipc.lifetime",
    catalogue="IPC-07",
    level="MUST",
    anchors=("ipc_namespaces(7)", "mq_overview(7)", "LTP mqns_04"),
    needs=Needs(userns=True, min_kernel=(5, 14), kconfig=("IPC_NS", "POSIX_MQUEUE", "SYSVIPC")),
    timeout=8.0,
)
def lifetime(ctx: Context) -> None:
    """IPC objects are destroyed with their IPC namespace (no member left, no fd or bind mount).

    Objects can't be looked up in a dead namespace, so the check watches what
    they are charged to: in a fresh user namespace (rlimits are counted per
    user namespace since 5.14) RLIMIT_MSGQUEUE and RLIMIT_MEMLOCK are set to
    fit exactly one POSIX queue and one SHM_LOCKed segment. A member process
    creates both (and a SysV queue) in a new IPC namespace; a second namespace
    must then be refused another queue (EMFILE) and lock (ENOMEM). The member
    exits while an nsfs fd holds the namespace: setns(2) through it must still
    find all three objects. Once the fd is closed, the charges must come back
    (within 1.5 s; the kernel frees the namespace from a workqueue). Control:
    the fd stays open, so the namespace lives and the charges stay taken.
    """
    uid, gid = os.geteuid(), os.getegid()
    seen = ctx.in_child(_lifetime, ctx, uid, gid, ctx.control, unshare=NEWUSER, timeout=6.0)
    if seen["charged"] != {"mq": "EMFILE", "shm": "ENOMEM"}:
        raise Skip(f"RLIMIT_MSGQUEUE/RLIMIT_MEMLOCK are not enforced here: {seen['charged']}")
    everything = {"mq": "ok", "shm": "ok", "msg": "ok"}
    ctx.expect_equal(seen["held"], everything, "objects of a memberless IPC ns held by an fd")
    ctx.expect_equal(
        seen["released"], {"mq": "ok", "shm": "ok"}, "charges after the last reference went away"
    )
