"""Install a seccomp BPF filter that refuses (or fakes) chosen syscalls: environments for tests.

Layer 1 (typed bindings): standard library, :mod:`nsprim.errors` and :mod:`nsprim._sys`.

Container runtimes filter namespace syscalls with seccomp (moby's default
profile answers ``unshare``/``setns``/``mount`` with EPERM and ``clone3`` with
ENOSYS). This module builds such filters from a list of :class:`Rule` so that
tests and ``scripts/environments.py`` can put nsprim in that situation with
nothing but the kernel: it is a test instrument, not a security boundary (it
allows every syscall of a foreign ABI, e.g. x32, untouched).

A filter applies to the calling thread and everything it starts afterwards,
and cannot be removed: install it in a throwaway child. Installing one
without CAP_SYS_ADMIN needs ``no_new_privs`` (prctl(2) ``PR_SET_NO_NEW_PRIVS``,
Linux 3.5), which :func:`install` sets by default. Filters need Linux 3.5
(``SECCOMP_MODE_FILTER``); returning 0 without running the call
(``errno=0``) works from the same version.
"""

from __future__ import annotations

import ctypes
import errno as _errno
from collections.abc import Sequence
from dataclasses import dataclass

from ._sys import libc as _libc
from ._sys import seccomp as S

__all__ = ["Rule", "build_filter", "install", "set_no_new_privs", "no_new_privs", "filter_mode"]

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


@dataclass(frozen=True)
class Rule:
    """What the filter does with one syscall.

    Attributes:
        syscall: its name (``"unshare"``, ``"sethostname"``, ``"clone3"``...).
        errno: the error the call returns without running (``errno.EPERM``);
            0 makes it return 0 without doing anything (a call that "succeeds").
        arg0_mask: when non-zero, the rule applies only when the first
            argument has one of these bits (its low 32 bits), e.g. the
            ``CLONE_NEW*`` bits of clone(2)'s flags, so plain fork() still works.
    """

    syscall: str
    errno: int = _errno.EPERM
    arg0_mask: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.syscall, str) or not self.syscall:
            raise TypeError(f"syscall must be a syscall name, got {self.syscall!r}")
        if not isinstance(self.errno, int) or not 0 <= self.errno <= S.SECCOMP_RET_DATA:
            raise ValueError(f"errno must be an int in 0..4095, got {self.errno!r}")
        if not isinstance(self.arg0_mask, int) or not 0 <= self.arg0_mask < 1 << 32:
            raise ValueError(f"arg0_mask must be a 32-bit mask, got {self.arg0_mask!r}")


def _stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def build_filter(rules: Sequence[Rule]) -> list[tuple[int, int, int, int]]:
    """Return the classic BPF program for *rules* as ``(code, jt, jf, k)`` instructions.

    Calls of another architecture's ABI and calls no rule names are allowed.

    Raises:
        TypeError: an item of *rules* is not a :class:`Rule`.
        UnsupportedError: this machine, or a named syscall, is not in nsprim's tables.
        ValueError: more rules than one BPF program can jump over.
    """
    arch = S.AUDIT_ARCH.get(S.machine())
    if arch is None:
        raise S.UnsupportedError(
            f"seccomp filters on {S.machine()!r}", requires="one of " + ", ".join(S.AUDIT_ARCH)
        )
    body: list[tuple[int, int, int, int]] = []
    for rule in rules:
        if not isinstance(rule, Rule):
            raise TypeError(f"rules must be Rule objects, got {rule!r}")
        ret = _stmt(S.BPF_RET | S.BPF_K, S.SECCOMP_RET_ERRNO | rule.errno)
        body.append(_stmt(S.BPF_LD | S.BPF_W | S.BPF_ABS, S.OFF_NR))
        if rule.arg0_mask:
            body.append(
                _jump(S.BPF_JMP | S.BPF_JEQ | S.BPF_K, S.syscall_number(rule.syscall), 0, 3)
            )
            body.append(_stmt(S.BPF_LD | S.BPF_W | S.BPF_ABS, S.OFF_ARGS))  # low half (LE)
            body.append(_jump(S.BPF_JMP | S.BPF_JSET | S.BPF_K, rule.arg0_mask, 0, 1))
        else:
            body.append(
                _jump(S.BPF_JMP | S.BPF_JEQ | S.BPF_K, S.syscall_number(rule.syscall), 0, 1)
            )
        body.append(ret)
    if len(body) > 250:
        raise ValueError(f"too many rules for one filter: {len(rules)}")
    head = [
        _stmt(S.BPF_LD | S.BPF_W | S.BPF_ABS, S.OFF_ARCH),
        _jump(S.BPF_JMP | S.BPF_JEQ | S.BPF_K, arch, 0, len(body)),
    ]
    return [*head, *body, _stmt(S.BPF_RET | S.BPF_K, S.SECCOMP_RET_ALLOW)]


def set_no_new_privs() -> None:
    """Set ``no_new_privs`` for the calling thread (prctl(2) ``PR_SET_NO_NEW_PRIVS``, Linux 3.5).

    Raises:
        OSError: the kernel refused (EINVAL before Linux 3.5).
    """
    _libc.check(_libc.prctl(S.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")


def no_new_privs() -> bool:
    """Whether ``no_new_privs`` is set for the calling thread (``PR_GET_NO_NEW_PRIVS``)."""
    return bool(_libc.check(_libc.prctl(S.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), "prctl"))


def filter_mode() -> int:
    """Return the calling thread's seccomp mode: 0 none, 1 strict, 2 filter (``PR_GET_SECCOMP``)."""
    return int(_libc.check(_libc.prctl(S.PR_GET_SECCOMP, 0, 0, 0, 0), "prctl"))


def install(rules: Sequence[Rule], *, set_nnp: bool = True) -> None:
    """Install a filter applying *rules* to the calling thread and its future children.

    Wraps prctl(2) ``PR_SET_SECCOMP``/``SECCOMP_MODE_FILTER`` (Linux 3.5). It
    cannot be undone: call it in a process you are about to throw away.

    Args:
        rules: what to refuse or fake; see :class:`Rule`.
        set_nnp: set ``no_new_privs`` first (needed without CAP_SYS_ADMIN).

    Raises:
        TypeError/ValueError/UnsupportedError: see :func:`build_filter`.
        OSError: the kernel refused the filter (EACCES without ``no_new_privs``
            or CAP_SYS_ADMIN; EINVAL for a kernel without seccomp filters).
    """
    program = build_filter(rules)
    insns = (S.SockFilter * len(program))(*(S.SockFilter(c, t, f, k) for c, t, f, k in program))
    prog = S.SockFprog(len(program), ctypes.cast(insns, ctypes.POINTER(S.SockFilter)))
    if set_nnp:
        set_no_new_privs()
    _libc.check(
        _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0), "prctl"
    )
