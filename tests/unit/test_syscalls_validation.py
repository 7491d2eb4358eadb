"""Every binding refuses bad input with a message that names the parameter and
echoes the value, before any syscall (CONTRIBUTING.md, "Adding a syscall binding").

Matching our own message text proves nsprim answered before the kernel did:
the kernel would have answered with an errno and its strerror instead. Paths
here never exist and values are invalid, so a validation gap can't change the
host (the leak guard would report it).
"""

from __future__ import annotations

import os
import pickle
import signal

import pytest

from nsprim import syscalls as S
from nsprim._fd import OwnedFd, fd_of
from nsprim._sys.consts import MS_SHARED, MS_SLAVE
from nsprim.flags import CloneFlags

CASES = [
    (S.unshare, ("x",), TypeError, "flags must be an int, got str 'x'"),
    (S.unshare, (True,), TypeError, "flags must be an int, got bool True"),
    (
        S.unshare,
        (1,),
        ValueError,
        "flags must be a combination of CLONE_NEW* and CLONE_FILES/FS/SYSVSEM flags, got 1 (bad bits 0x1)",
    ),
    (S.unshare, (-1,), ValueError, "got -1"),
    (S.setns, (-1,), ValueError, "fd must be a non-negative file descriptor, got -1"),
    (S.setns, ("3",), TypeError, "fd must be an int or have fileno(), got str '3'"),
    (
        S.setns,
        (3, int(CloneFlags.VM)),
        ValueError,
        "nstype must be a combination of CLONE_NEW* flags, got 256",
    ),
    (S.setns, (2**40,), ValueError, "fd must fit a C int"),
    (S.sethostname, ("x" * 65,), ValueError, "name must be at most 64 bytes, got 65 bytes"),
    (S.sethostname, ("a\0b",), ValueError, "name must not contain a NUL byte, got 'a\\x00b'"),
    (S.sethostname, (42,), TypeError, "name must be str or bytes, got int 42"),
    (S.setdomainname, ("é" * 33,), ValueError, "name must be at most 64 bytes, got 66 bytes"),
    (
        S.mount,
        ("none", "/x", "tmpfs", 1 << 40),
        ValueError,
        "flags must be a combination of MS_* flags",
    ),
    (S.mount, ("no\0ne", "/x"), ValueError, "source must not contain a NUL byte"),
    (S.mount, (None, None), TypeError, "target must be a path, got None"),
    (S.mount, (None, 3), TypeError, "target must be str, bytes or os.PathLike, got int"),
    (
        S.umount,
        ("/x", 16),
        ValueError,
        "flags must be a combination of MNT_FORCE/MNT_DETACH/MNT_EXPIRE/UMOUNT_NOFOLLOW, got 16",
    ),
    (S.pivot_root, ("/a", "/b\0"), ValueError, "put_old must not contain a NUL byte"),
    (S.pidfd_open, (0,), ValueError, "pid must be a positive process id, got 0"),
    (S.pidfd_open, (-5,), ValueError, "pid must be a positive process id, got -5"),
    (
        S.pidfd_open,
        (1, 1),
        ValueError,
        "flags must be a combination of PIDFD_NONBLOCK/PIDFD_THREAD, got 1",
    ),
    (S.pidfd_open, (1.5,), TypeError, "pid must be an int, got float 1.5"),
    (S.pidfd_send_signal, (3, 999), ValueError, "sig must be 0 or a signal number below"),
    (
        S.pidfd_send_signal,
        (-3, 9),
        ValueError,
        "pidfd must be a non-negative file descriptor, got -3",
    ),
    (
        S.clone3,
        (int(CloneFlags.VM),),
        ValueError,
        "flags must be a combination of CLONE_NEW* flags, CLONE_CLEAR_SIGHAND, CLONE_PARENT, CLONE_FS, got 256",
    ),
    (S.ns_get_nstype, (-1,), ValueError, "fd must be a non-negative file descriptor, got -1"),
    (S.set_pdeathsig, (-1,), ValueError, "sig must be 0 or a signal number below"),
    (
        S.open_tree,
        ("/x", 1 << 30),
        ValueError,
        "flags must be a combination of OPEN_TREE_*/AT_* flags",
    ),
    (
        S.move_mount,
        ("/a", "/b", 1 << 20),
        ValueError,
        "flags must be a combination of MOVE_MOUNT_* flags",
    ),
    (S.open_tree, ("/x", 0), ValueError, None),
]


def _cases():
    for fn, args, exc, msg in CASES:
        if exc is None or msg is None:
            continue
        yield pytest.param(fn, args, exc, msg, id=f"{fn.__name__}{args!r}"[:60])


@pytest.mark.parametrize(("fn", "args", "exc", "msg"), list(_cases()))
def test_binding_rejects_bad_argument_with_named_message(fn, args, exc, msg) -> None:
    with pytest.raises(exc) as info:
        fn(*args)
    assert msg in str(info.value)


def test_clone3_rejects_bad_exit_signal_and_set_tid() -> None:
    with pytest.raises(ValueError, match="exit_signal must be 0 or a signal number below"):
        S.clone3(exit_signal=4096)
    with pytest.raises(ValueError, match=r"set_tid\[\] must be a positive process id, got 0"):
        S.clone3(set_tid=[0])
    with pytest.raises(ValueError, match="set_tid may name at most 32 pids"):
        S.clone3(set_tid=list(range(1, 34)))
    with pytest.raises(TypeError, match="pidfd must be a bool"):
        S.clone3(pidfd=1)  # type: ignore[arg-type]


def test_mount_setattr_rejects_bad_propagation_and_attrs() -> None:
    with pytest.raises(ValueError, match="propagation must be 0 or one of MS_SHARED"):
        S.mount_setattr("/nonexistent-nsprim", propagation=MS_SHARED | MS_SLAVE)
    with pytest.raises(ValueError, match="attr_set must be a combination of MOUNT_ATTR_"):
        S.mount_setattr("/nonexistent-nsprim", attr_set=1 << 40)


def test_hostname_limits_are_exactly_64_bytes() -> None:
    # 64 bytes is accepted by validation (the kernel then says EPERM/ok), 65 is not.
    S._name("a" * 64, "name", S.HOST_NAME_MAX)
    with pytest.raises(ValueError):
        S._name("a" * 65, "name", S.HOST_NAME_MAX)


def test_fd_of_accepts_objects_with_fileno() -> None:
    r, w = os.pipe()
    with OwnedFd(r) as owned, os.fdopen(w, "wb") as f:
        assert fd_of(owned) == r
        assert fd_of(f) == w
    with pytest.raises(ValueError, match="closed"):
        owned.fileno()


def test_owned_fd_closes_once() -> None:
    r, w = os.pipe()
    os.close(w)
    owned = OwnedFd(r)
    owned.close()
    owned.close()
    assert owned.closed
    with pytest.raises(OSError):
        os.fstat(r)


def test_signal_numbers_are_checked_against_nsig() -> None:
    with pytest.raises(ValueError):
        S.set_pdeathsig(signal.NSIG)


def test_errors_pickle_with_attributes() -> None:
    from nsprim.errors import (
        AccessDenied,
        CallError,
        NoSuchProcess,
        TimeoutExpired,
        UnsupportedError,
    )

    for err in (
        UnsupportedError("clone3", "Linux 5.3"),
        NoSuchProcess(42),
        AccessDenied("setns", pid=7, hint="needs CAP_SYS_ADMIN"),
        _with_filename(AccessDenied("ioctl", hint="needs CAP_NET_ADMIN"), "eth0"),
        TimeoutExpired(1.5, pid=9),
        CallError("boom", type_name="x.Y", child_traceback="tb"),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err)
        assert str(back) == str(err)
        assert back.__dict__ == err.__dict__
        if isinstance(err, OSError):
            assert (back.errno, back.strerror, back.filename) == (
                err.errno,
                err.strerror,
                err.filename,
            )


def _with_filename(err: OSError, name: str) -> OSError:
    err.filename = name
    return err


def test_errors_refine_the_builtin_classes() -> None:
    from nsprim.errors import AccessDenied, NoSuchProcess, TimeoutExpired

    assert issubclass(AccessDenied, PermissionError)
    assert issubclass(NoSuchProcess, ProcessLookupError)
    assert issubclass(TimeoutExpired, TimeoutError)
    assert AccessDenied.__module__ == "nsprim"
    assert str(AccessDenied("setns", pid=7, hint="needs CAP_SYS_ADMIN")) == (
        "setns: permission denied (pid=7); needs CAP_SYS_ADMIN"
    )
