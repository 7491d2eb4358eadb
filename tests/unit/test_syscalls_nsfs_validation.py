"""The nsfs pid-translation and file-handle bindings refuse bad input before any syscall.

As ``test_syscalls_validation.py``: our own message text (naming the
parameter and echoing the value) proves nsprim answered before the kernel did.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from nsprim import syscalls as S

CASES: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], type, str]] = [
    (S.ns_pid_from_pidns, (3, 0), {}, ValueError, "pid must be a positive process id, got 0"),
    (S.ns_pid_from_pidns, (3, "1"), {}, TypeError, "pid must be an int, got str '1'"),
    (S.ns_pid_from_pidns, (-1, 1), {}, ValueError, "fd must be a non-negative file descriptor"),
    (S.ns_pid_from_pidns, (3, 1), {"tgid": 1}, TypeError, "tgid must be a bool, got 1"),
    (S.ns_pid_in_pidns, (3, -4), {}, ValueError, "pid must be a positive process id, got -4"),
    (S.ns_pid_in_pidns, (3, 1), {"tgid": "yes"}, TypeError, "tgid must be a bool, got 'yes'"),
    (S.name_to_handle_at, ("/x\0",), {}, ValueError, "path must not contain a NUL byte"),
    (S.name_to_handle_at, (None,), {}, TypeError, "path must be a path, got None"),
    (S.name_to_handle_at, ("/x",), {"flags": 1}, ValueError, "flags must be a combination of"),
    (S.name_to_handle_at, ("/x",), {"dirfd": -5}, ValueError, "dirfd must be a non-negative"),
    (S.open_by_handle_at, (-5, 1, b"x"), {}, ValueError, "mount_fd must be a non-negative"),
    (S.open_by_handle_at, (3, 1, "x"), {}, TypeError, "handle must be bytes, got str 'x'"),
    (S.open_by_handle_at, (3, 1, b""), {}, ValueError, "handle must be 1 to 128 bytes, got 0"),
    (S.open_by_handle_at, (3, 1, b"x" * 129), {}, ValueError, "got 129"),
    (S.open_by_handle_at, (3, 1 << 40, b"x"), {}, ValueError, "handle_type must fit a C int"),
    (S.open_by_handle_at, (3, 1, b"x", 0o100), {}, ValueError, "flags must be a combination of"),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "exc", "text"), CASES)
def test_bad_input_is_refused_before_the_kernel(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, text: str
) -> None:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert text in str(info.value)


def test_special_mount_fds_are_accepted_as_such() -> None:
    assert S.FD_NSFS_ROOT == -10003 and S.FD_PIDFS_ROOT == -10002
