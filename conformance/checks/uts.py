"""UTS namespace checks: UTS-01 to UTS-06.

Layer: conformance checks. Imports public nsprim names and the conformance
registry, and the helpers every group shares (:mod:`._common`).

This module is the model for the other groups:

* one function per guarantee, its docstring's first line *is* the guarantee;
* the work happens in forked helpers (``ctx.in_child``/``ctx.spawn_child``),
  which unshare what ``ctx.isolate`` returns, so the negative control is the
  same code with the isolation left out (or, for guarantees about an error,
  the precondition removed) and must come out FAIL;
* helpers that run in a child are module-level and return plain data, so the
  assertions (``ctx.expect``/``ctx.expect_equal``) read top to bottom in the
  check itself, with the expected and actual values in the report;
* variants are parameters of one body (UTS-01 and UTS-02 share
  :func:`_name_isolated`), never pasted copies;
* where a helper enters a namespace by hand, it does so through
  :func:`._common.unshare`/:func:`._common.setns`, which confirm by identity
  that the namespace really is new (or really is the target), so no PASS
  rests on a namespace that was never created.

The runner's outer sandbox already gives every run its own UTS namespace, so
a control that renames "the parent" renames only that throwaway namespace.
"""

from __future__ import annotations

import os
import socket

from nsprim import syscalls
from nsprim.namespace import Namespace, NsType

from ..registry import Context, Needs, Skip, check
from ._common import NEWUSER, NEWUTS, attempt, idle, setns, unshare

__all__: list[str] = []

# Which call sets a name, and where the kernel shows it (uts_namespaces(7)).
_SETTERS = {"hostname": syscalls.sethostname, "domainname": syscalls.setdomainname}


def _proc(kind: str) -> str:
    with open(f"/proc/sys/kernel/{kind}") as f:
        return f.read().strip()


def _view(kind: str) -> tuple[str, str]:
    """Return both views of a name: the syscall's and /proc/sys/kernel's."""
    if kind == "hostname":
        return (os.uname().nodename, _proc("hostname"))
    # There is no getdomainname in os; uname(2) carries it but os.uname drops it.
    return (_proc("domainname"), _proc("domainname"))


def _set(kind: str, name: str) -> tuple[str, str]:
    """Set the name in the caller's UTS namespace and return the caller's view of it."""
    _SETTERS[kind](name)
    return _view(kind)


def _both(name: str) -> tuple[str, str]:
    return (name, name)


def _name_isolated(ctx: Context, kind: str) -> None:
    flags = ctx.isolate(NEWUTS)
    before = _view(kind)

    first = ctx.spawn_child(_set, kind, "nsprim-uts-a", unshare=flags)
    ctx.expect_equal(
        first.recv(), _both("nsprim-uts-a"), f"{kind} inside the namespace that set it"
    )
    ctx.expect_equal(
        _view(kind), before, f"{kind} seen by the parent after a child namespace set it"
    )

    # A sibling created now copies the parent, which must still have the old name.
    ctx.expect_equal(
        ctx.in_child(_view, kind, unshare=flags), before, f"{kind} seen by a sibling namespace"
    )
    ctx.in_child(_set, kind, "nsprim-uts-b", unshare=flags)
    ctx.expect_equal(
        first.call(_view, kind),
        _both("nsprim-uts-a"),
        f"{kind} in the first namespace after a sibling set its own",
    )


@check(
    "uts.hostname_isolated",
    catalogue="UTS-01",
    level="MUST",
    anchors=("LTP utsname03", "LTP setns02", "util-linux unshare(1)", "uts_namespaces(7)"),
    needs=Needs(min_kernel=(2, 6), kconfig=("UTS_NS",)),
    timeout=5.0,
)
def hostname_isolated(ctx: Context) -> None:
    """A hostname set in a new UTS namespace is seen there, not by the parent or a sibling.

    A helper unshares CLONE_NEWUTS and calls sethostname(2); it must see the
    name in both uname(2) and /proc/sys/kernel/hostname, while the parent and
    a sibling namespace keep the old name, and the sibling's own rename does
    not reach the helper. Control: the helper does not unshare, so the parent
    sees the new name.
    """
    _name_isolated(ctx, "hostname")


@check(
    "uts.domainname_isolated",
    catalogue="UTS-02",
    level="MUST",
    anchors=("uts_namespaces(7)", "LTP setdomainname01"),
    needs=Needs(min_kernel=(2, 6), kconfig=("UTS_NS",)),
    timeout=5.0,
)
def domainname_isolated(ctx: Context) -> None:
    """A NIS domain name set in a new UTS namespace is seen there, not by the parent or a sibling.

    As UTS-01, with setdomainname(2) and /proc/sys/kernel/domainname.
    Control: the helper does not unshare.
    """
    _name_isolated(ctx, "domainname")


@check(
    "uts.shared_without_newuts",
    catalogue="UTS-03",
    level="MUST",
    anchors=("LTP utsname01", "LTP utsname02"),
    needs=Needs(kconfig=("UTS_NS",)),
    timeout=5.0,
)
def shared_without_newuts(ctx: Context) -> None:
    """Without CLONE_NEWUTS, a hostname change by one process is seen by another.

    A helper in the check's (sandbox) UTS namespace sets the hostname; another
    process must read it. This is the baseline that makes UTS-01 meaningful.
    Control: the helper unshares CLONE_NEWUTS, so the change is not seen.
    """
    flags = NEWUTS if ctx.control else 0  # here the control *adds* the isolation
    writer = ctx.spawn_child(_set, "hostname", "nsprim-uts-shared", unshare=flags)
    writer.recv()
    ctx.expect_equal(
        ctx.in_child(_view, "hostname"),
        _both("nsprim-uts-shared"),
        "hostname seen by another process in the same UTS namespace",
    )


def _names() -> tuple[str, str]:
    return (_view("hostname")[0], _view("domainname")[0])


@check(
    "uts.initial_copy",
    catalogue="UTS-04",
    level="MUST",
    anchors=("uts_namespaces(7)",),
    needs=Needs(kconfig=("UTS_NS",)),
    timeout=5.0,
)
def initial_copy(ctx: Context) -> None:
    """A new UTS namespace starts with its creator's hostname and domainname.

    The check renames its own (sandbox) namespace, then a helper unshares
    CLONE_NEWUTS and must report exactly those names. Control: the helper's
    namespace is created *before* the rename, so it holds the old names and
    the comparison must fail (the check can tell a copy from a stale one).
    """
    early = None
    if ctx.control:
        early = ctx.spawn_child(idle, unshare=NEWUTS)
        early.recv()  # wait until its unshare is done, or it could copy the new names
    names = ("nsprim-uts-copy-h", "nsprim-uts-copy-d")
    syscalls.sethostname(names[0])
    syscalls.setdomainname(names[1])
    seen = early.call(_names) if early is not None else ctx.in_child(_names, unshare=NEWUTS)
    ctx.expect_equal(seen, names, "(hostname, domainname) of a new UTS namespace")


def _privilege_attempts(drop: bool) -> dict[str, str]:
    """Try the UTS-05 steps in this (fresh) process; report each step's errno name or "ok"."""
    if drop:
        syscalls.drop_capabilities()
    seen = {"unshare(CLONE_NEWUTS)": attempt(syscalls.unshare, NEWUTS)}
    seen["unshare(CLONE_NEWUSER|CLONE_NEWUTS)"] = attempt(syscalls.unshare, NEWUSER | NEWUTS)
    if seen["unshare(CLONE_NEWUSER|CLONE_NEWUTS)"] != "ok":
        return seen
    seen["sethostname(64 bytes)"] = attempt(syscalls.sethostname, "u" * 64)
    seen["nodename"] = os.uname().nodename
    # socket.sethostname passes the name through unchecked, so the kernel
    # answers (nsprim.syscalls.sethostname refuses >64 bytes before the call).
    seen["sethostname(65 bytes)"] = attempt(socket.sethostname, "u" * 65)
    return seen


@check(
    "uts.unshare_needs_privilege",
    catalogue="UTS-05",
    level="MUST",
    anchors=("LTP utsname04", "selftest nsfs/owner.c", "user_namespaces(7)"),
    needs=Needs(
        userns=True, min_kernel=(3, 8), kconfig=("UTS_NS", "USER_NS"), ops=("sethostname",)
    ),
    timeout=5.0,
)
def unshare_needs_privilege(ctx: Context) -> None:
    """Without CAP_SYS_ADMIN, unshare(CLONE_NEWUTS) fails with EPERM unless a user ns comes with it.

    A helper clears its capability sets (capset(2); the uid stays, so this
    works rootless too), then: unshare(CLONE_NEWUTS) must fail with EPERM;
    unshare(CLONE_NEWUSER|CLONE_NEWUTS) must succeed; sethostname(2) of 64
    bytes must then work and 65 bytes fail with EINVAL. Control: the helper
    keeps its capabilities (the precondition is removed), so the first
    unshare succeeds.
    """
    seen = ctx.in_child(_privilege_attempts, not ctx.control)
    ctx.expect_equal(
        seen["unshare(CLONE_NEWUTS)"], "EPERM", "unshare(CLONE_NEWUTS) without CAP_SYS_ADMIN"
    )
    both = seen["unshare(CLONE_NEWUSER|CLONE_NEWUTS)"]
    if both in ("EPERM", "ENOSPC", "EUSERS"):
        raise Skip(f"unprivileged processes cannot create user namespaces here ({both})")
    ctx.expect_equal(both, "ok", "unshare(CLONE_NEWUSER|CLONE_NEWUTS) without CAP_SYS_ADMIN")
    ctx.expect_equal(seen["sethostname(64 bytes)"], "ok", "sethostname of 64 bytes in the new ns")
    ctx.expect_equal(seen["nodename"], "u" * 64, "nodename after sethostname in the new ns")
    ctx.expect_equal(seen["sethostname(65 bytes)"], "EINVAL", "sethostname of 65 bytes")


def _roundtrip(control: bool) -> dict[str, object]:
    """Save the UTS ns fd, unshare and rename, setns back; report what the thread then sees."""
    orig_ns = Namespace.of_thread(NsType.UTS)
    orig_name = os.uname().nodename
    saved = os.open("/proc/thread-self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        unshare(NEWUTS)
        if control:  # the control keeps an fd to the *new* namespace instead
            os.close(saved)
            saved = os.open("/proc/thread-self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        syscalls.sethostname("nsprim-uts-roundtrip")
        setns(saved, NEWUTS)
    finally:
        os.close(saved)
    return {
        "orig_name": orig_name,
        "name": os.uname().nodename,
        "proc_name": _proc("hostname"),
        "same_ns": Namespace.of_thread(NsType.UTS) == orig_ns,
    }


@check(
    "uts.setns_roundtrip",
    catalogue="UTS-06",
    level="MUST",
    anchors=("LTP setns02", "setns(2)"),
    needs=Needs(min_kernel=(3, 0), kconfig=("UTS_NS",)),
    timeout=5.0,
)
def setns_roundtrip(ctx: Context) -> None:
    """setns(2) to a saved UTS namespace fd restores the original names for the calling thread.

    A helper opens /proc/thread-self/ns/uts, unshares CLONE_NEWUTS, renames,
    and setns(2)es back: it must be in the original namespace again (same
    nsfs (st_dev, st_ino)) and see the original hostname. Control: the fd is
    taken after the unshare, so setns returns to the renamed namespace.
    """
    seen = ctx.in_child(_roundtrip, ctx.control)
    ctx.expect(seen["same_ns"], "the thread is back in its original UTS namespace", True, False)
    ctx.expect_equal(seen["name"], seen["orig_name"], "nodename after setns back")
    ctx.expect_equal(seen["proc_name"], seen["orig_name"], "/proc/sys/kernel/hostname after setns")
