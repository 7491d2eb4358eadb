"""Checks verify their premise: a namespace call that fakes success makes them FAIL, naming it.

The environment is real, not mocked: inside a throwaway child that already
has its own UTS, IPC and mount namespaces (so nothing reaches the host), a
seccomp BPF filter makes unshare(2) and setns(2) return 0 without doing
anything, the failure mode of incomplete sandboxes and emulations. The
shared helpers (``_common.unshare``/``setns``) must then raise ``Fail``
saying the namespace is unchanged, and a whole check run there must FAIL
with that sentence, never PASS on a namespace that was never created.
"""

from __future__ import annotations

import os
import socket

import pytest
from forked import in_child
from nsprim.conformance.checks import _common
from nsprim.conformance.outcome import Fail
from nsprim.conformance.registry import Context, load_checks

from nsprim import syscalls

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for the throwaway namespaces")
seccomp = pytest.importorskip("nsprim.seccomp")


def _fake_namespace_calls() -> None:
    """Install a seccomp filter: unshare(2) and setns(2) return 0 and do nothing."""
    seccomp.install([seccomp.Rule("unshare", errno=0), seccomp.Rule("setns", errno=0)])


def _in_fake_environment(fn: object) -> str:
    """In a child with its own UTS/IPC/mount namespaces and the faking filter: run *fn*."""
    syscalls.unshare(_common.NEWUTS | _common.NEWIPC | _common.NEWNS)
    other = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)  # before the filter
    _fake_namespace_calls()
    socket.sethostname("nsprim-premise")  # only the throwaway namespace's
    try:
        fn(other)  # type: ignore[operator]
    except Fail as exc:
        return str(exc)
    return "no Fail"


def _unshare_uts(_: int) -> None:
    _common.unshare(_common.NEWUTS)


def _setns_other_ipc(_: int) -> None:
    # A real IPC namespace other than ours: the caller's parent's (the test process's).
    fd = os.open(f"/proc/{os.getppid()}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _common.setns(fd, _common.NEWIPC)
    finally:
        os.close(fd)


def test_unshare_that_fakes_success_fails_naming_the_premise() -> None:
    said = in_child(_in_fake_environment, _unshare_uts)
    assert said.startswith("unshare(CLONE_NEWUTS) returned 0 and the UTS namespace is unchanged")


def test_setns_that_fakes_success_fails_naming_the_premise() -> None:
    said = in_child(_in_fake_environment, _setns_other_ipc)
    assert said.startswith(
        "setns(CLONE_NEWIPC) returned 0 and the thread is not in the target IPC namespace"
    )


def _run_check(check_id: str) -> object:
    def run(_: int) -> None:
        check = next(c for c in load_checks() if c.id == check_id)
        ctx = Context(check_id=check_id)
        try:
            check.func(ctx)
        finally:
            ctx.run_cleanups()  # the helpers hold the result pipe: stop them

    return run


@pytest.mark.parametrize(
    "check_id", ["uts.setns_roundtrip", "pid.init_one_shot", "pid.caller_not_moved"]
)
def test_a_check_never_passes_on_a_namespace_that_was_never_created(check_id: str) -> None:
    said = in_child(_in_fake_environment, _run_check(check_id))
    assert "returned 0 and the" in said, said
