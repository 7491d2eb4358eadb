"""A process's LSM context and the exec context, without libselinux (nsenter's ``-Z``).

Layer 1: standard library and :mod:`nsprim.errors` only.

The kernel interface is procfs's ``attr`` directory (proc(5), Linux 2.6.0):
``/proc/PID/attr/current`` holds the context a process runs in, and
``/proc/thread-self/attr/exec`` (Linux 3.17; before, ``/proc/self/task/TID/attr/exec``)
the context the calling thread's next execve(2) runs in. The kernel resets the
exec context at every execve, and a fork or clone copies it (it lives in the
credentials). What the text means belongs to the LSM that owns those files:
an SELinux context (``user:role:type:level``), an AppArmor profile command, ...;
with no such LSM the kernel answers EINVAL to both.

:func:`selinux_enabled` decides as libselinux's ``is_selinux_enabled()``
does, so that ``nsprim enter -Z`` acts where util-linux's nsenter acts and is
a no-op where it is one.
"""

from __future__ import annotations

import os

from .errors import reraise

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

__all__ = [
    "SELINUX_CONFIG",
    "SELINUXFS_MOUNTS",
    "exec_context_arg",
    "pid_context",
    "selinux_enabled",
    "selinuxfs_mount",
    "set_exec_context",
    "write_exec_context",
]

#: Where libselinux looks for selinuxfs first, in order.
SELINUXFS_MOUNTS = ("/sys/fs/selinux", "/selinux")
#: libselinux counts SELinux as enabled only where this file exists (selinux_config(5)).
SELINUX_CONFIG = "/etc/selinux/config"


def _fstype(dev: int, mountinfo: str) -> Optional[str]:
    """The filesystem type of the superblock *dev* (``st_dev``), from mountinfo's text."""
    want = f"{os.major(dev)}:{os.minor(dev)}"
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 2 and fields[2] == want and " - " in line:
            return line.split(" - ", 1)[1].split(" ", 1)[0]
    return None


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _verify(path: str, mountinfo: str) -> Optional[bool]:
    """None if *path* is no selinuxfs; else whether that selinuxfs is mounted read-write.

    libselinux asks statfs(2) for the magic number; the same superblock fact
    is the type mountinfo gives the device of *path*. A read-only selinuxfs
    is how an init says "SELinux disabled".
    """
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    if _fstype(dev, mountinfo) != "selinuxfs":
        return None
    try:
        flags = os.statvfs(path).f_flag
    except OSError:
        return None
    return not flags & os.ST_RDONLY


def _unescape(field: str) -> str:
    """A /proc/mounts field with its octal escapes (``\\040`` for a space) undone."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        part = field[i : i + 4]
        if len(part) == 4 and part[0] == "\\" and all(c in "01234567" for c in part[1:]):
            out.append(chr(int(part[1:], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def selinuxfs_mount() -> Optional[str]:
    """Where a read-write selinuxfs is mounted, found as libselinux's init looks for it.

    First :data:`SELINUXFS_MOUNTS` in order (the first that is a selinuxfs
    decides, even read-only); then, if ``/proc/filesystems`` lists selinuxfs,
    the first selinuxfs line of ``/proc/mounts``. None: no usable selinuxfs.
    """
    mountinfo = _read("/proc/self/mountinfo") or ""
    for path in SELINUXFS_MOUNTS:
        rw = _verify(path, mountinfo)
        if rw is not None:
            return path if rw else None
    filesystems = _read("/proc/filesystems")
    if filesystems is not None and "selinuxfs" not in filesystems:
        return None  # (unreadable: libselinux goes on as if it were listed)
    for line in (_read("/proc/mounts") or "").splitlines():
        fields = line.split(" ")
        if len(fields) > 2 and fields[2] == "selinuxfs":
            path = _unescape(fields[1])
            return path if _verify(path, mountinfo) else None
    return None


def selinux_enabled() -> bool:
    """Whether SELinux is enabled, decided as libselinux's ``is_selinux_enabled()`` does.

    A read-write selinuxfs is mounted (:func:`selinuxfs_mount`) and
    :data:`SELINUX_CONFIG` exists. Reads files only; never raises.
    """
    return selinuxfs_mount() is not None and os.access(SELINUX_CONFIG, os.F_OK)


def pid_context(pid: int) -> bytes:
    """The LSM context process *pid* runs in: ``/proc/PID/attr/current`` (libselinux's getpidcon).

    Returns the text up to its first NUL (SELinux ends it with one); b"" when
    the LSM gives none.

    Raises:
        TypeError, ValueError: *pid* is not a positive int.
        NoSuchProcess: the process is gone.
        AccessDenied: the LSM or ptrace rules refuse the read.
        OSError: naming the file; EINVAL when no LSM provides the attribute
            (none is active), ENOENT without CONFIG_SECURITY.
    """
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(f"pid must be an int, got {pid!r}")
    if pid <= 0:
        raise ValueError(f"pid must be positive, got {pid}")
    path = f"/proc/{pid}/attr/current"
    try:
        with open(path, "rb", buffering=0) as f:
            data = f.read()
    except OSError as err:
        reraise(err, f"read {path}", pid, filename=path)
    return data.split(b"\0", 1)[0]


def exec_context_arg(context: object) -> bytes:
    """Validate an exec context (str or bytes, non-empty, no NUL); return its bytes."""
    if isinstance(context, str):
        data = os.fsencode(context)
    elif isinstance(context, bytes):
        data = context
    else:
        raise TypeError(f"exec context must be str or bytes, got {context!r}")
    if not data or b"\0" in data:
        raise ValueError(f"exec context must be non-empty without NUL, got {context!r}")
    return data


def write_exec_context(data: bytes) -> None:
    """Write *data* and a NUL to this thread's ``attr/exec``, in one write(2).

    The half of :func:`set_exec_context` that runs between fork and exec:
    *data* is already validated (:func:`exec_context_arg`); no translation.
    OSErrors keep their errno and name the file.
    """
    path = "/proc/thread-self/attr/exec"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        # before Linux 3.17 (libselinux falls back the same way)
        import threading

        path = f"/proc/self/task/{threading.get_native_id()}/attr/exec"
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data + b"\0")
    except OSError as err:
        code = err.errno or 0
        raise OSError(code, os.strerror(code), path) from None
    finally:
        os.close(fd)


def set_exec_context(context: Union[str, bytes]) -> None:
    """Make this thread's next execve(2) run in the LSM *context* (libselinux's setexeccon).

    Writes *context* and a NUL to ``/proc/thread-self/attr/exec`` (Linux 3.17;
    before, ``/proc/self/task/TID/attr/exec``). Only the calling thread's next
    successful execve uses it, a fork copies it, and execve resets it; whether
    the switch is allowed is the LSM policy's decision, at this write
    (SELinux ``process:setexec``) and at the execve (the transition).

    Raises:
        TypeError, ValueError: *context* is not non-empty str/bytes without NUL.
        AccessDenied: the LSM policy refuses (EACCES/EPERM).
        OSError: naming the file; EINVAL when no active LSM takes exec
            contexts or the LSM rejects the text.
    """
    data = exec_context_arg(context)
    try:
        write_exec_context(data)
    except OSError as err:
        reraise(err, "setexeccon", filename=err.filename)
