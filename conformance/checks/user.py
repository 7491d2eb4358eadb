"""User namespace checks: USR-01 to USR-21.

Layer: conformance checks. Imports public nsprim names, the conformance
registry, the helpers every group shares (:mod:`._common`) and
:func:`._procs.try_clone3` (USR-17 clones from a chroot).

Most checks follow LTP's userns tests: a helper unshares CLONE_NEWUSER and
waits (``ctx.spawn_child``; its first ``recv()`` is the "I'm in" message),
the check writes the helper's ``/proc/PID/uid_map``/``gid_map`` from the
parent namespace, then asks the helper what it sees. The check process is
root of its user namespace in both runs: the initial one as root, the
sandbox's one-id namespace under ``--as-user`` (where the check's uid 0 is
the host's ``nobody``). Guarantees that need more than one mapped id (the
unprivileged-writer rules, 340-extent maps) SKIP in a one-id namespace,
saying so, rather than pass on the part they could show.
"""

from __future__ import annotations

import os
import subprocess
import threading

from nsprim import idmap, process, syscalls
from nsprim.namespace import Namespace, NsType

from ..registry import ChildHandle, Context, Needs, Skip, check
from ._common import NEWUSER, NEWUTS, attempt, idle, setns, unshare
from ._procs import try_clone3

__all__: list[str] = []


#: The unprivileged id the checks drop to where the namespace has it (nobody).
NOBODY = 65534
#: CAP_SYS_ADMIN's bit (linux/capability.h).
CAP_SYS_ADMIN = 21

_USERNS = Needs(userns=True, min_kernel=(3, 8), kconfig=("USER_NS",))


# -- small helpers (run in whichever process calls them) --------------------------


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    """Write *text* with one write(2), as map files demand (user_namespaces(7))."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _write_attempt(path: str, text: str) -> str:
    return attempt(_write, path, text)


def _extents(path: str) -> list[tuple[int, int, int]]:
    """Parse a uid_map/gid_map file into (inside, outside, count) triples."""
    out = []
    for line in _read(path).splitlines():
        inside, outside, count = (int(v) for v in line.split())
        out.append((inside, outside, count))
    return out


def _mapped(kind: str, ids: range | tuple[int, ...]) -> bool:
    """Whether every id in *ids* is mapped in the caller's user namespace (*kind* uid or gid)."""
    extents = _extents(f"/proc/self/{kind}_map")
    return all(any(i <= x < i + n for i, _, n in extents) for x in ids)


def _ids() -> tuple[int, int, int, int]:
    return (os.getuid(), os.geteuid(), os.getgid(), os.getegid())


def _caps(status: str | None = None) -> dict[str, int]:
    """Return the Cap* sets of /proc/self/status (or of the *status* text) as integers."""
    text = _read("/proc/self/status") if status is None else status
    caps = {}
    for line in text.splitlines():
        if line.startswith("Cap"):
            name, value = line.split(":", 1)
            caps[name] = int(value, 16)
    return caps


def _full_caps() -> int:
    """The set a new user namespace's first process gets: every capability the kernel knows."""
    return (1 << (int(_read("/proc/sys/kernel/cap_last_cap")) + 1)) - 1


def _drop_to(uid: int, gid: int) -> None:
    """Become *uid*/*gid* with no supplementary groups (and so no capabilities)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # A uid change clears "dumpable" and makes /proc/self/* root's (proc(5)).
    syscalls.set_dumpable(True)


def _map_helper(pid: int, uid_line: str, gid_line: str, setgroups: str | None = None) -> None:
    """Write a helper's setgroups (if given), uid_map and gid_map from the parent namespace."""
    if setgroups is not None:
        _write(f"/proc/{pid}/setgroups", setgroups)
    _write(f"/proc/{pid}/uid_map", uid_line)
    _write(f"/proc/{pid}/gid_map", gid_line)


def _map_root_to_me(pid: int) -> None:
    """Map root of helper *pid*'s user namespace to the check's own euid/egid."""
    _map_helper(pid, f"0 {os.geteuid()} 1", f"0 {os.getegid()} 1")


def _userns_helper(ctx: Context) -> ChildHandle:
    """Spawn a helper in a new user namespace (unmapped) and wait until it is there."""
    helper = ctx.spawn_child(idle, unshare=NEWUSER)
    helper.recv()
    return helper


def _overflow_ids() -> tuple[int, int]:
    """The ids unmapped ones show as: /proc/sys/kernel/overflow{uid,gid} (proc(5))."""
    return (
        int(_read("/proc/sys/kernel/overflowuid")),
        int(_read("/proc/sys/kernel/overflowgid")),
    )


def _fd(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _create(path: str, mode: int = 0o644, owner: int | None = None) -> str:
    """Create an empty file *path* with *mode*, chowned to uid=gid=*owner* if given."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode))
    if owner is not None:
        os.chown(path, owner, owner)
    return path


# -- USR-01 / USR-02 ----------------------------------------------------------------


def _unmapped_view(path: str) -> dict[str, object]:
    st = os.stat(path)
    return {"ids": _ids(), "file": (st.st_uid, st.st_gid)}


@check(
    "user.overflow_ids",
    catalogue="USR-01",
    level="MUST",
    anchors=("LTP userns01", "user_namespaces(7)", "proc(5) overflowuid"),
    needs=_USERNS,
    timeout=5.0,
)
def overflow_ids(ctx: Context) -> None:
    """Before its maps are written, a new user ns shows the overflow uid/gid for itself and files.

    A helper unshares CLONE_NEWUSER and, with no uid_map/gid_map yet, must
    see getuid()/geteuid() and getgid()/getegid() as
    /proc/sys/kernel/overflowuid and overflowgid (65534), and a file the
    check created (owned by an id unmapped there) as owned by them too.
    Control: the helper does not unshare, so it sees the check's own ids.
    """
    overflow = _overflow_ids()
    path = _create(os.path.join(ctx.tmpdir, "owned"))
    seen = ctx.in_child(_unmapped_view, path, unshare=ctx.isolate(NEWUSER))
    uid, euid, gid, egid = seen["ids"]
    ctx.expect_equal(
        (uid, euid), (overflow[0],) * 2, "getuid()/geteuid() before uid_map is written"
    )
    ctx.expect_equal(
        (gid, egid), (overflow[1],) * 2, "getgid()/getegid() before gid_map is written"
    )
    ctx.expect_equal(seen["file"], overflow, "(st_uid, st_gid) of a file owned by unmapped ids")


def _caps_in_new_userns(flags: int) -> dict[str, int]:
    """Drop every capability, unshare *flags*; return the capability sets before and after."""
    syscalls.drop_capabilities()
    before = _caps()
    unshare(flags)
    after = _caps()
    return {"before": before["CapEff"] | before["CapPrm"], **after, "full": _full_caps()}


@check(
    "user.full_caps_inside",
    catalogue="USR-02",
    level="MUST",
    anchors=("LTP userns01", "user_namespaces(7) (capabilities)"),
    needs=_USERNS,
    timeout=5.0,
)
def full_caps_inside(ctx: Context) -> None:
    """The first process of a new user namespace has every capability, even if it had none before.

    A helper clears its capability sets with capset(2) (unprivileged
    outside, the uid unchanged), unshares CLONE_NEWUSER and must then have
    CapEff and CapPrm equal to every capability up to
    /proc/sys/kernel/cap_last_cap. Control: the helper does not unshare, so
    its sets stay empty.
    """
    seen = ctx.in_child(_caps_in_new_userns, ctx.isolate(NEWUSER))
    if seen["before"]:
        raise RuntimeError(f"capset(2) left capabilities {seen['before']:#x}")
    for name in ("CapEff", "CapPrm"):
        ctx.expect_equal(
            hex(seen[name]), hex(seen["full"]), f"{name} of the first process in a new user ns"
        )


# -- USR-03 -------------------------------------------------------------------------


def _attempts_outside(flags: int, sibling: int) -> dict[str, object]:
    """Unshare *flags*, then try to act on the parent's UTS ns and to join a sibling's ns."""
    user_fd = _fd(f"/proc/{sibling}/ns/user")
    uts_fd = _fd(f"/proc/{sibling}/ns/uts")
    try:
        unshare(flags)
        seen: dict[str, object] = {"CAP_SYS_ADMIN": bool(_caps()["CapEff"] >> CAP_SYS_ADMIN & 1)}
        # The same name: success would change nothing the control could leak.
        seen["sethostname"] = attempt(syscalls.sethostname, os.uname().nodename)
        seen["setns(sibling uts)"] = attempt(syscalls.setns, uts_fd, NEWUTS)
        seen["setns(sibling user)"] = attempt(syscalls.setns, user_fd, NEWUSER)
    finally:
        os.close(user_fd)
        os.close(uts_fd)
    return seen


@check(
    "user.no_caps_outside",
    catalogue="USR-03",
    level="MUST",
    anchors=("LTP userns04", "selftest pidfd_setns no_foul_play", "user_namespaces(7)"),
    needs=Needs(
        userns=True,
        min_kernel=(3, 8),
        kconfig=("USER_NS", "UTS_NS"),
        ops=("unshare.uts", "sethostname", "setns"),
    ),
    timeout=5.0,
)
def no_caps_outside(ctx: Context) -> None:
    """Capabilities in a new user namespace give no power over namespaces it does not own.

    A sibling helper holds its own user and UTS namespaces. Another helper
    opens them, unshares CLONE_NEWUSER (gaining CAP_SYS_ADMIN there), and
    then: sethostname(2) on the UTS namespace it still shares with the
    check (owned by the parent user ns) → EPERM; setns(2) into the
    sibling's UTS and user namespaces → EPERM (LTP userns04). Control: the
    helper does not unshare, so it acts with the check's privileges.
    """
    sibling = ctx.spawn_child(idle, unshare=NEWUSER | NEWUTS)
    sibling.recv()
    seen = ctx.in_child(_attempts_outside, ctx.isolate(NEWUSER), sibling.pid)
    ctx.expect(seen["CAP_SYS_ADMIN"], "the helper has CAP_SYS_ADMIN in its own user ns")
    ctx.expect_equal(seen["sethostname"], "EPERM", "sethostname on the parent's UTS ns")
    ctx.expect_equal(seen["setns(sibling uts)"], "EPERM", "setns into a sibling's UTS ns")
    ctx.expect_equal(seen["setns(sibling user)"], "EPERM", "setns into a sibling user ns")


# -- USR-04 -------------------------------------------------------------------------


@check(
    "user.map_write_once",
    catalogue="USR-04",
    level="MUST",
    anchors=("user_namespaces(7) (defining a mapping)", "LTP userns02", "LTP userns03"),
    needs=_USERNS,
    timeout=5.0,
)
def map_write_once(ctx: Context) -> None:
    """uid_map and gid_map each accept one successful write; a second write fails with EPERM.

    The check maps root of a waiting helper's user namespace to its own
    ids, then writes each map again with different content: EPERM, and
    the map still reads as the first write, and the helper is root there.
    Control: the second write goes to a fresh namespace's map instead (the
    precondition, a map already written, is removed), so it succeeds.
    """
    helper = _userns_helper(ctx)
    fresh = _userns_helper(ctx)
    second = fresh if ctx.control else helper
    for kind, own in (("uid", os.geteuid()), ("gid", os.getegid())):
        path = f"/proc/{helper.pid}/{kind}_map"
        ctx.expect_equal(_write_attempt(path, f"0 {own} 1"), "ok", f"first write to {kind}_map")
        again = _write_attempt(f"/proc/{second.pid}/{kind}_map", f"1 {own} 1")
        ctx.expect_equal(again, "EPERM", f"second write to {kind}_map")
        ctx.expect_equal(_extents(path), [(0, own, 1)], f"{kind}_map after the second write")
    ctx.expect_equal(helper.call(_ids), (0, 0, 0, 0), "the helper's ids after the first writes")


# -- USR-05 -------------------------------------------------------------------------

# What an unprivileged writer (euid NOBODY, no CAP_SETUID/CAP_SETGID in the parent
# ns) may write for a namespace it owns, in this order (user_namespaces(7)).
_UNPRIVILEGED_WRITES = (
    ("uid_map", "0 0 1", "EPERM", "an id other than the writer's euid"),
    ("uid_map", f"0 {NOBODY} 2", "EPERM", "two ids starting at the writer's euid"),
    ("uid_map", f"0 {NOBODY} 1\n1 1000 1", "EPERM", "two lines"),
    ("gid_map", f"0 {NOBODY} 1", "EPERM", "the writer's egid before setgroups=deny"),
    ("uid_map", f"0 {NOBODY} 1", "ok", "the writer's own euid, one line"),
    ("setgroups", "deny", "ok", "deny"),
    ("gid_map", f"0 {NOBODY} 1", "ok", "the writer's own egid after setgroups=deny"),
)


def _drop_then_unshare(uid: int, gid: int) -> None:
    _drop_to(uid, gid)
    unshare(NEWUSER)


def _writer(unprivileged: bool) -> None:
    """Become the map writer: nobody without capabilities, or (control) stay root."""
    if unprivileged:
        _drop_to(NOBODY, NOBODY)


def _ids_for_usr05() -> str | None:
    ids = (0, 1000, NOBODY, NOBODY + 1)
    if _mapped("uid", ids) and _mapped("gid", ids):
        return None
    return (
        "needs uids and gids 0, 1000, 65534 and 65535 mapped in this user namespace to tell "
        "the unprivileged-writer rule from unmapped ids (a rootless sandbox maps one id)"
    )


@check(
    "user.unprivileged_map_rules",
    catalogue="USR-05",
    level="MUST",
    anchors=("user_namespaces(7) (defining a mapping)", "LTP userns03", "util-linux -r"),
    needs=Needs(userns=True, min_kernel=(3, 19), kconfig=("USER_NS",), probes=(_ids_for_usr05,)),
    timeout=5.0,
)
def unprivileged_map_rules(ctx: Context) -> None:
    """Without CAP_SETUID/CAP_SETGID a writer may map only its own euid/egid, gid after deny.

    A helper drops to nobody (65534) and unshares CLONE_NEWUSER; a writer
    in the parent namespace, also dropped to nobody (no capabilities there),
    writes the helper's maps: another id, a two-id range and two lines →
    EPERM; gid_map before setgroups=deny → EPERM; its own euid, one line →
    accepted; setgroups=deny then its own egid → accepted; the helper is
    then root inside. Control: the writer keeps root's capabilities, so the
    first refused write goes through.
    """
    target = ctx.spawn_child(_drop_then_unshare, NOBODY, NOBODY)
    target.recv()
    writer = ctx.spawn_child(_writer, not ctx.control)
    writer.recv()
    for name, text, expected, what in _UNPRIVILEGED_WRITES:
        seen = writer.call(_write_attempt, f"/proc/{target.pid}/{name}", text)
        ctx.expect_equal(seen, expected, f"unprivileged write to {name} of {what} ({text!r})")
    ctx.expect_equal(target.call(_ids), (0, 0, 0, 0), "the helper's ids after its maps")


# -- USR-06 -------------------------------------------------------------------------


def _nested_setgroups(pid: int) -> str:
    """Join helper *pid*'s user namespace, create a child of it, and read setgroups there."""
    fd = _fd(f"/proc/{pid}/ns/user")
    try:
        setns(fd, NEWUSER)
    finally:
        os.close(fd)
    unshare(NEWUSER)
    return _read("/proc/self/setgroups").strip()


def _setgroups_allowed_here() -> str | None:
    if _read("/proc/self/setgroups").strip() == "allow":
        return None
    return (
        "this user namespace already has setgroups=deny (a rootless sandbox must, to write its "
        "gid_map) and every child inherits it, so allow vs deny can't be shown here"
    )


@check(
    "user.setgroups_deny_permanent",
    catalogue="USR-06",
    level="MUST",
    anchors=("user_namespaces(7) (/proc/PID/setgroups)", "LTP userns03", "util-linux --setgroups"),
    needs=Needs(
        userns=True, min_kernel=(3, 19), kconfig=("USER_NS",), probes=(_setgroups_allowed_here,)
    ),
    timeout=5.0,
)
def setgroups_deny_permanent(ctx: Context) -> None:
    """After setgroups=deny, setgroups(2) fails, "allow" can't return, and child user ns inherit it.

    The check writes ``deny`` to a waiting helper's /proc/PID/setgroups and
    maps it: setgroups(2) in the helper (root there, with CAP_SETGID) →
    EPERM; writing ``allow`` → EPERM; a user namespace created inside it
    reads ``deny``. In a second helper whose gid_map is written first,
    writing ``deny`` → EPERM. Control: the check writes ``allow`` instead,
    so the helper's setgroups(2) succeeds.
    """
    policy = "allow" if ctx.control else "deny"
    helper = _userns_helper(ctx)
    _map_helper(helper.pid, f"0 {os.geteuid()} 1", f"0 {os.getegid()} 1", setgroups=policy)
    ctx.expect_equal(helper.call(attempt, os.setgroups, []), "EPERM", "setgroups(2) after deny")
    again = _write_attempt(f"/proc/{helper.pid}/setgroups", "allow")
    ctx.expect_equal(again, "EPERM", "writing allow after deny")
    nested = ctx.in_child(_nested_setgroups, helper.pid)
    ctx.expect_equal(nested, "deny", "setgroups of a user ns created inside a denied one")
    late = _userns_helper(ctx)
    _map_root_to_me(late.pid)
    ctx.expect_equal(
        _write_attempt(f"/proc/{late.pid}/setgroups", "deny"), "EPERM", "deny after gid_map"
    )


# -- USR-07 -------------------------------------------------------------------------


@check(
    "user.map_relative_view",
    catalogue="USR-07",
    level="MUST",
    anchors=("LTP userns03", "user_namespaces(7) (uid_map)"),
    needs=_USERNS,
    timeout=5.0,
)
def map_relative_view(ctx: Context) -> None:
    """/proc/PID/uid_map shows the outside ids relative to the reader's user namespace.

    As LTP userns03: helper A maps root to the check's ids, helper B maps
    200 to them. B must read its own maps as ``200 <check id> 1`` and A's as
    ``0 200 1`` (the outside ids in B's terms), while the check reads A's as
    ``0 <check id> 1``. Control: B stays in the check's user namespace, so
    it reads A's maps in the check's terms.
    """
    a = _userns_helper(ctx)
    _map_root_to_me(a.pid)
    b = ctx.spawn_child(idle, unshare=ctx.isolate(NEWUSER))
    b.recv()
    uid, gid = os.geteuid(), os.getegid()
    if not ctx.control:
        _map_helper(b.pid, f"200 {uid} 1", f"200 {gid} 1")
    for kind, own in (("uid", uid), ("gid", gid)):
        ctx.expect_equal(
            _extents(f"/proc/{a.pid}/{kind}_map"),
            [(0, own, 1)],
            f"A's {kind}_map read by the check",
        )
        ctx.expect_equal(
            b.call(_extents, f"/proc/self/{kind}_map"), [(200, own, 1)], f"B's own {kind}_map"
        )
        ctx.expect_equal(
            b.call(_extents, f"/proc/{a.pid}/{kind}_map"),
            [(0, 200, 1)],
            f"A's {kind}_map read by B",
        )


# -- USR-08 -------------------------------------------------------------------------

_MAX_EXTENTS = 340  # UID_GID_MAP_MAX_EXTENTS since Linux 4.15
_BASE = 1000  # outside ids of the large map: inside k is outside _BASE + k
# LTP userns08 (CVE-2018-18955): level 1 maps 0..999 to 100000..100999; level 2 maps
# 6 extents (more than the 5 kept unsorted) back onto level 1's ids.
_LEVEL1 = (100000, 1000)
_OVER_5 = "0 0 1\n1 1 1\n2 2 1\n3 3 1\n4 4 1\n5 5 990"


def _large_map(n: int) -> str:
    return "".join(f"{k} {_BASE + k} 1\n" for k in range(n))


def _ids_for_usr08() -> str | None:
    ids = (*range(_BASE, _BASE + _MAX_EXTENTS + 2), *range(_LEVEL1[0], sum(_LEVEL1)))
    if _mapped("uid", ids) and _mapped("gid", ids):
        return None
    return (
        f"needs uids and gids {_BASE}-{_BASE + _MAX_EXTENTS + 1} and "
        f"{_LEVEL1[0]}-{sum(_LEVEL1) - 1} mapped in this user namespace (a rootless sandbox "
        "maps one id)"
    )


def _owners(paths: list[str]) -> list[tuple[int, int]]:
    return [(os.stat(p).st_uid, os.stat(p).st_gid) for p in paths]


def _become_root() -> None:
    """In a user namespace that maps 0: become uid/gid 0 there (LTP userns08 level 1)."""
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    syscalls.set_dumpable(True)


def _level2(level1: int) -> None:
    """Join *level1*'s user namespace as its root, then unshare a child of it."""
    fd = _fd(f"/proc/{level1}/ns/user")
    try:
        setns(fd, NEWUSER)
    finally:
        os.close(fd)
    _become_root()
    unshare(NEWUSER)


def _level2_view(paths: list[str], restricted: str) -> dict[str, object]:
    return {
        "ids": _ids(),
        "owners": _owners(paths),
        "open restricted": attempt(lambda: os.close(os.open(restricted, os.O_WRONLY))),
    }


@check(
    "user.large_maps",
    catalogue="USR-08",
    level="MUST",
    anchors=("LTP userns08 (CVE-2018-18955)", "user_namespaces(7)", "kernel commit d2f007dbe7e4"),
    needs=Needs(userns=True, min_kernel=(4, 15), kconfig=("USER_NS",), probes=(_ids_for_usr08,)),
    timeout=5.0,
)
def large_maps(ctx: Context) -> None:
    """Maps of up to 340 extents are accepted and translate ids right, also nested (CVE-2018-18955).

    341 one-id extents → EINVAL; 340 are accepted (uid_map and gid_map),
    read back unchanged, and files owned by outside ids map to the right
    inside ids (the kernel switches to sorted lookups above 5 extents) or to
    the overflow id outside the map. Nested, as LTP userns08: level 1 maps
    0..999 to 100000..100999 and its root writes a 6-extent map for level 2;
    level 2 must see a host-root file as overflow-owned and be refused
    writing it (EACCES), and see 100005 as 5. Control: the first write has
    340 extents, within the limit, so it succeeds.
    """
    too_many = _MAX_EXTENTS if ctx.control else _MAX_EXTENTS + 1
    helper = _userns_helper(ctx)
    for kind in ("uid", "gid"):
        path = f"/proc/{helper.pid}/{kind}_map"
        seen = _write_attempt(path, _large_map(too_many))
        ctx.expect_equal(seen, "EINVAL", f"{kind}_map with {too_many} extents")
        seen = _write_attempt(path, _large_map(_MAX_EXTENTS))
        ctx.expect_equal(seen, "ok", f"{kind}_map with {_MAX_EXTENTS} extents")
        ctx.expect_equal(
            _extents(path),
            [(k, _BASE + k, 1) for k in range(_MAX_EXTENTS)],
            f"{kind}_map read back",
        )
    probes = (0, 4, 5, 6, 170, _MAX_EXTENTS - 1, _MAX_EXTENTS)
    overflow = _overflow_ids()
    paths = [_create(os.path.join(ctx.tmpdir, f"owned-{k}"), 0o600, _BASE + k) for k in probes]
    want = [(k, k) if k < _MAX_EXTENTS else overflow for k in probes]
    ctx.expect_equal(helper.call(_owners, paths), want, "owners seen through a 340-extent map")

    level1 = _userns_helper(ctx)
    _map_helper(level1.pid, f"0 {_LEVEL1[0]} {_LEVEL1[1]}", f"0 {_LEVEL1[0]} {_LEVEL1[1]}")
    level1.call(_become_root)
    level2 = ctx.spawn_child(_level2, level1.pid)
    level2.recv()
    level1.call(_map_helper, level2.pid, _OVER_5, _OVER_5)
    # Level 2's root is host uid 100000: it must be able to traverse ctx.tmpdir,
    # which is a 1777 tmpfs in a sandbox with a mount namespace, else 0700.
    os.chmod(ctx.tmpdir, os.stat(ctx.tmpdir).st_mode & 0o7777 | 0o111)
    restricted = _create(os.path.join(ctx.tmpdir, "restricted"), 0o700, 0)
    nested = [
        _create(os.path.join(ctx.tmpdir, f"nested-{uid}"), 0o600, uid)
        for uid in (0, _LEVEL1[0] + 5, _LEVEL1[0] + 500)
    ]
    seen = level2.call(_level2_view, nested, restricted)
    ctx.expect_equal(seen["ids"], (0, 0, 0, 0), "level 2's ids")
    ctx.expect_equal(
        seen["owners"],
        [overflow, (5, 5), (500, 500)],
        "owners of host 0, 100005 and 100500 seen from level 2",
    )
    ctx.expect_equal(seen["open restricted"], "EACCES", "level 2 opening a root-only file")


# -- USR-09 -------------------------------------------------------------------------

#: create_user_ns() refuses a child of a namespace whose level is above 32, so the
#: deepest user namespace is at level 33 below the initial one (kernel/user_namespace.c).
_DEEPEST_LEVEL = 33


def _unshare_mapped() -> None:
    """unshare(CLONE_NEWUSER) and map root to the caller's old ids (``unshare -r``)."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(NEWUSER)
    idmap.map_root(os.getpid(), uid, gid)


def _nest(ctx: Context, nested: bool, attempts: int) -> dict[str, object]:
    """Create up to *attempts* user namespaces, each inside the last; stop at the first error.

    With *nested* false each one is made by a fresh child of this process instead.
    """
    created, error = 0, None
    for _ in range(attempts):
        # Not nested: each from a fresh child, so every one is at the same level.
        result = attempt(_unshare_mapped) if nested else ctx.in_child(attempt, _unshare_mapped)
        if result != "ok":
            error = result
            break
        created += 1
    return {"created": created, "error": error}


def _nest_under_limit(ctx: Context, limit: int | None, attempts: int) -> dict[str, object]:
    """In a new user namespace, set its max_user_namespaces to *limit* (if given), then nest."""
    _unshare_mapped()
    if limit is not None:
        # ucount limits are per user namespace; its root holds CAP_SYS_RESOURCE there.
        _write("/proc/sys/user/max_user_namespaces", str(limit))
    return _nest(ctx, True, attempts)


@check(
    "user.nesting_limit",
    catalogue="USR-09",
    level="MUST",
    anchors=("LTP userns07", "clone(2) ENOSPC", "user_namespaces(7)", "lxns limits API"),
    needs=Needs(userns=True, min_kernel=(4, 9), kconfig=("USER_NS",)),
    timeout=5.0,
)
def nesting_limit(ctx: Context) -> None:
    """At least 32 nested user namespaces can be created; past the kernel's limit unshare is ENOSPC.

    A helper unshares CLONE_NEWUSER (mapping root to its old ids each time)
    inside its last user namespace until it fails. From the initial user
    namespace it must create 32 or 33 levels (the kernel stops at level 33,
    one more than the catalogue's 32) and then get ENOSPC (4.9+; earlier
    kernels said EUSERS and had no ucount limits, so they SKIP). From a
    nested start (rootless), whose depth can't be seen from inside, it must
    stop with ENOSPC after at most 32. A second
    helper sets max_user_namespaces=3 in a user namespace of its own: the
    4th nested namespace below it → ENOSPC. Control: the namespaces are
    created side by side (each from a fresh child) and the limit is left
    alone, so nothing runs out.
    """
    nested = not ctx.control
    seen = ctx.in_child(_nest, ctx, nested, _DEEPEST_LEVEL + 1)
    ctx.expect_equal(seen["error"], "ENOSPC", "error once the nesting limit is reached")
    start = Namespace.of_self(NsType.USER)
    if start.is_initial:
        ctx.expect(
            32 <= seen["created"] <= _DEEPEST_LEVEL,
            "nested user namespaces below the initial one",
            f"32 to {_DEEPEST_LEVEL}",
            seen["created"],
        )
    else:
        ctx.expect(
            1 <= seen["created"] <= _DEEPEST_LEVEL - 1,
            "nested user namespaces below a non-initial one",
            f"1 to {_DEEPEST_LEVEL - 1}",
            seen["created"],
        )
    limit = 3
    seen = ctx.in_child(_nest_under_limit, ctx, None if ctx.control else limit, limit + 1)
    ctx.expect_equal(
        (seen["created"], seen["error"]),
        (limit, "ENOSPC"),
        f"(created, error) nesting below max_user_namespaces={limit}",
    )


# -- USR-10 -------------------------------------------------------------------------

_CAT = "/bin/cat"


def _exec_caps() -> dict[str, int]:
    """Return this process's CapEff, then CapEff/CapPrm of a program it execs (cat(1))."""
    out = subprocess.run(
        [_CAT, "/proc/self/status"], capture_output=True, timeout=5.0, check=True
    ).stdout.decode()
    caps = _caps(out)
    return {"before": _caps()["CapEff"], "CapEff": caps["CapEff"], "CapPrm": caps["CapPrm"]}


@check(
    "user.exec_cap_rules",
    catalogue="USR-10",
    level="MUST",
    anchors=("LTP userns06", "capabilities(7) (transformation during execve)"),
    needs=_USERNS,
    timeout=5.0,
)
def exec_cap_rules(ctx: Context) -> None:
    """In a user namespace, execve by a non-zero uid clears the capabilities; by uid 0 keeps them.

    Two helpers unshare CLONE_NEWUSER (full capabilities there); the check
    maps one as uid 1000 and the other as uid 0 (both onto its own id).
    Each execs cat(1) on /proc/self/status: after the uid-1000 exec CapEff
    and CapPrm must be empty; after the uid-0 exec both must be full.
    Control: the first helper is mapped as uid 0 too, so its exec keeps them.
    """
    if not os.access(_CAT, os.X_OK):
        raise Skip(f"needs {_CAT} to exec")
    full = _full_caps()
    uid, gid = os.geteuid(), os.getegid()
    cases = (("a non-zero uid", 0 if ctx.control else 1000, 0), ("uid 0", 0, full))
    for what, ns_uid, want in cases:
        helper = _userns_helper(ctx)
        _map_helper(helper.pid, f"{ns_uid} {uid} 1", f"0 {gid} 1")
        seen = helper.call(_exec_caps, timeout=8.0)
        if seen["before"] != full:
            raise RuntimeError(f"the helper lacks capabilities before exec: {seen['before']:#x}")
        for name in ("CapEff", "CapPrm"):
            ctx.expect_equal(hex(seen[name]), hex(want), f"{name} after an exec by {what}")


# -- USR-11 -------------------------------------------------------------------------


def _userns_identity() -> tuple[int, int]:
    ns = Namespace.of_self(NsType.USER)
    return (ns.dev, ns.ino)


def _create_userns(uid: int | None, flags: int) -> None:
    if uid is not None:
        _drop_to(uid, uid)
    unshare(flags)


@check(
    "user.membership",
    catalogue="USR-11",
    level="MUST",
    anchors=("LTP userns05", "selftest nsfs/owner.c", "lsns(8) UID", "ioctl_ns(2)"),
    needs=Needs(userns=True, min_kernel=(4, 11), kconfig=("USER_NS",)),
    timeout=5.0,
)
def membership(ctx: Context) -> None:
    """fork keeps the user ns, unshare moves the caller, NS_GET_OWNER_UID names the creator.

    A child forked without CLONE_NEWUSER must be in the check's user
    namespace (same nsfs (st_dev, st_ino)). A helper drops to nobody where
    that id is mapped (else keeps the check's uid) and unshares
    CLONE_NEWUSER: its user namespace must differ from the check's, have
    the check's as NS_GET_PARENT, and NS_GET_OWNER_UID must be the
    helper's euid. Control: the helper does not unshare, so it stays.
    """
    mine = Namespace.of_self(NsType.USER)
    forked = ctx.in_child(_userns_identity)
    ctx.expect_equal(forked, (mine.dev, mine.ino), "user ns of a child forked without NEWUSER")
    creator = NOBODY if _mapped("uid", (NOBODY,)) and _mapped("gid", (NOBODY,)) else None
    helper = ctx.spawn_child(_create_userns, creator, ctx.isolate(NEWUSER))
    helper.recv()
    theirs = Namespace.of_pid(helper.pid, NsType.USER)
    ctx.expect(theirs != mine, "unshare(CLONE_NEWUSER) moved the helper", str(theirs), str(mine))
    ctx.expect_equal(theirs.parent(), mine, "NS_GET_PARENT of the helper's user namespace")
    owner = os.geteuid() if creator is None else creator
    ctx.expect_equal(theirs.owner_uid, owner, "NS_GET_OWNER_UID of the helper's user namespace")


# -- USR-12 -------------------------------------------------------------------------


def _join_then_unshare(threaded: bool, target: int) -> dict[str, object]:
    """With a second thread running (if *threaded*): setns into *target*'s user ns, unshare one."""
    fd = _fd(f"/proc/{target}/ns/user")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, args=(5.0,)) if threaded else None
    if thread is not None:
        thread.start()
    try:
        seen: dict[str, object] = {"threads": len(os.listdir("/proc/self/task"))}
        seen["setns"] = attempt(syscalls.setns, fd, NEWUSER)
        seen["unshare"] = attempt(syscalls.unshare, NEWUSER)
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        os.close(fd)
    return seen


@check(
    "user.single_threaded_only",
    catalogue="USR-12",
    level="MUST",
    anchors=("user_namespaces(7)", "setns(2)", "unshare(2)", "numpy/numpy#27012", "runc#1795"),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("USER_NS",), ops=("setns",)),
    timeout=5.0,
)
def single_threaded_only(ctx: Context) -> None:
    """A multithreaded process can't setns into or unshare a user namespace (EINVAL).

    A helper starts a second thread, then setns(2)es into another user
    namespace (one it may join: its owner is the check) and unshares
    CLONE_NEWUSER: both EINVAL. A fresh single-threaded child then does the
    same and both succeed. Control: the helper starts no thread.
    """
    target = _userns_helper(ctx)
    _map_root_to_me(target.pid)
    seen = ctx.in_child(_join_then_unshare, not ctx.control, target.pid)
    if not ctx.control and seen["threads"] < 2:
        raise RuntimeError(f"the helper runs {seen['threads']} thread(s), expected 2")
    ctx.expect_equal(seen["setns"], "EINVAL", "setns(user ns) from a multithreaded process")
    ctx.expect_equal(seen["unshare"], "EINVAL", "unshare(CLONE_NEWUSER), multithreaded")
    fresh = ctx.in_child(_join_then_unshare, False, target.pid)
    ctx.expect_equal(
        fresh,
        {"threads": 1, "setns": "ok", "unshare": "ok"},
        "the same calls from a fresh single-threaded child",
    )


# -- USR-13 -------------------------------------------------------------------------


def _rejoin(path: str) -> dict[str, object]:
    """setns(2) into the user namespace at *path*, with and without nstype."""
    before = _userns_identity()
    fd = _fd(path)
    try:
        seen: dict[str, object] = {
            "setns(fd, CLONE_NEWUSER)": attempt(syscalls.setns, fd, NEWUSER),
            "setns(fd, 0)": attempt(syscalls.setns, fd, 0),
        }
    finally:
        os.close(fd)
    seen["unchanged"] = _userns_identity() == before
    return seen


@check(
    "user.rejoin_same_userns",
    catalogue="USR-13",
    level="MUST",
    anchors=("setns(2) EINVAL", "benfred/py-spy#68", "mitogen setns"),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("USER_NS",), ops=("setns",)),
    timeout=5.0,
)
def rejoin_same_userns(ctx: Context) -> None:
    """setns(2) into the user namespace the caller is already in fails with EINVAL.

    A child (with CAP_SYS_ADMIN in its user namespace, so privilege is not
    the reason) opens /proc/self/ns/user and setns(2)es into it, with
    CLONE_NEWUSER and with 0: both EINVAL, and the namespace is unchanged;
    ``nsprim.process.call_in`` the check's own user namespace must skip the
    join and run in it. Control: the fd names another user namespace (owned by the check), so
    the first setns succeeds.
    """
    if ctx.control:
        other = _userns_helper(ctx)
        path = f"/proc/{other.pid}/ns/user"
    else:
        path = "/proc/self/ns/user"
    seen = ctx.in_child(_rejoin, path)
    for call in ("setns(fd, CLONE_NEWUSER)", "setns(fd, 0)"):
        ctx.expect_equal(seen[call], "EINVAL", f"{call} into the caller's own user ns")
    ctx.expect(seen["unchanged"], "the caller's user namespace is unchanged", True, False)
    # nsprim must not trip over it: joining one's own user namespace is skipped.
    joined = process.call_in(Namespace.of_self(NsType.USER), _userns_identity, timeout=5.0)
    ctx.expect_equal(joined, _userns_identity(), "nsprim.process.call_in into the own user ns")


# -- USR-14 -------------------------------------------------------------------------


def _join_user(pid: int) -> None:
    """setns(2) into helper *pid*'s user namespace (every capability there, its uid 0)."""
    fd = _fd(f"/proc/{pid}/ns/user")
    try:
        setns(fd, NEWUSER)
    finally:
        os.close(fd)


def _join_then_unshare_user(pid: int) -> None:
    """Join helper *pid*'s user namespace, then unshare a child of it (a grandchild of ours)."""
    _join_user(pid)
    unshare(NEWUSER)


@check(
    "user.map_writer_level",
    catalogue="USR-14",
    level="MUST",
    anchors=("user_namespaces(7) (defining a mapping, rule 2)", "kernel map_write()"),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("USER_NS",), ops=("setns",)),
    timeout=5.0,
)
def map_writer_level(ctx: Context) -> None:
    """Only a process in a user ns or its parent may write its maps; from two levels up, EPERM.

    Level 1 is a child of the check's user namespace (root mapped to the
    check's ids); level 2 is created inside level 1. The check, with every
    capability in level 2's grandparent, opens and writes level 2's uid_map
    and gid_map (``0 0 1``): EPERM (kernel map_write() accepts only the
    namespace itself or its parent as the opener's). A writer that joined
    level 1 then writes the same lines: accepted, and level 2's process is
    root there. Control: the first writes come from the level-1 writer too,
    so they are accepted.
    """
    level1 = _userns_helper(ctx)
    _map_root_to_me(level1.pid)
    level2 = ctx.spawn_child(_join_then_unshare_user, level1.pid)
    level2.recv()
    parent = ctx.spawn_child(_join_user, level1.pid)
    parent.recv()
    for kind in ("uid", "gid"):
        path = f"/proc/{level2.pid}/{kind}_map"
        far = (
            parent.call(_write_attempt, path, "0 0 1")
            if ctx.control
            else _write_attempt(path, "0 0 1")
        )
        ctx.expect_equal(far, "EPERM", f"{kind}_map of a grandchild user ns written from above")
        near = parent.call(_write_attempt, path, "0 0 1")
        ctx.expect_equal(near, "ok", f"{kind}_map written from the parent user namespace")
    ctx.expect_equal(level2.call(_ids), (0, 0, 0, 0), "level 2's ids after its maps")


# -- USR-15 -------------------------------------------------------------------------


def _join_without_caps(path: str, leave_parent: bool) -> tuple[int, str, int]:
    """Drop every capability, setns(2) into the user ns at *path*: (CapEff, errno name, CapEff)."""
    fd = _fd(path)
    try:
        if leave_parent:
            unshare(NEWUSER)
        syscalls.drop_capabilities()
        before = _caps()["CapEff"]
        joined = attempt(setns, fd, NEWUSER)
        return before, joined, _caps()["CapEff"]
    finally:
        os.close(fd)


@check(
    "user.owner_holds_caps",
    catalogue="USR-15",
    level="MUST",
    anchors=(
        "user_namespaces(7) (capabilities: the owner in the parent namespace)",
        "kernel cap_capable()",
        "setns(2)",
    ),
    needs=Needs(userns=True, min_kernel=(3, 8), kconfig=("USER_NS",), ops=("setns",)),
    timeout=5.0,
)
def owner_holds_caps(ctx: Context) -> None:
    """A process of the parent user ns whose euid owns a child ns may join it with no capabilities.

    The owner's euid, in the parent namespace, has every capability in the
    child (kernel cap_capable()). A helper with the check's euid (the owner
    of a waiting helper's user namespace) clears its capability sets with
    capset(2), then setns(2)es into that namespace: it must succeed, and the
    joiner then holds every capability there (CapEff full). Control: the
    joiner first unshares a user namespace of its own (same euid, but no
    longer in the parent), so the setns fails with EPERM.
    """
    target = _userns_helper(ctx)
    before, joined, after = ctx.in_child(
        _join_without_caps, f"/proc/{target.pid}/ns/user", ctx.control
    )
    ctx.expect_equal(hex(before), hex(0), "CapEff of the joiner before setns")
    ctx.expect_equal(joined, "ok", "setns(2) into the user ns its euid owns, with no capability")
    ctx.expect_equal(hex(after), hex(_full_caps()), "CapEff after joining the user namespace")


# -- USR-16 -------------------------------------------------------------------------

#: (what is mapped, map uid, map gid) before the helper tries to create a child user ns.
_CREATOR_CASES = (
    ("neither its uid nor its gid", False, False),
    ("only its uid", True, False),
    ("only its gid", False, True),
    ("its uid and gid", True, True),
)


@check(
    "user.unmapped_creator_refused",
    catalogue="USR-16",
    level="MUST",
    anchors=("clone(2) EPERM (CLONE_NEWUSER)", "user_namespaces(7)", "kernel create_user_ns()"),
    needs=_USERNS,
    timeout=5.0,
)
def unmapped_creator_refused(ctx: Context) -> None:
    """A process whose euid or egid is unmapped in its user ns can't create a child user ns (EPERM).

    Four helpers unshare CLONE_NEWUSER; the check maps neither of the
    helper's ids, only its uid, only its gid, or both (onto its own), and
    each helper then unshares CLONE_NEWUSER again: EPERM unless both are
    mapped (kernel create_user_ns() wants the creator's euid and egid
    mapped in the parent), then a new namespace. Control: both ids are
    mapped in every case, so every creation succeeds.
    """
    uid, gid = os.geteuid(), os.getegid()
    for what, map_uid, map_gid in _CREATOR_CASES:
        expected = "ok" if map_uid and map_gid else "EPERM"
        helper = _userns_helper(ctx)
        if map_uid or ctx.control:
            _write(f"/proc/{helper.pid}/uid_map", f"0 {uid} 1")
        if map_gid or ctx.control:
            _write(f"/proc/{helper.pid}/gid_map", f"0 {gid} 1")
        seen = helper.call(attempt, unshare, NEWUSER)
        ctx.expect_equal(seen, expected, f"unshare(CLONE_NEWUSER) with {what} mapped")


# -- USR-17 -------------------------------------------------------------------------


def _userns_from(root: str | None) -> dict[str, str]:
    """chroot(2) to *root* (if given), then try to create a user namespace both ways."""
    if root is not None:
        try:
            os.chroot(root)
        except PermissionError as err:
            return {"chroot": f"{err.strerror} (errno {err.errno})"}
        os.chdir("/")
    return {
        "clone3(CLONE_NEWUSER)": try_clone3(NEWUSER, ()),
        "unshare(CLONE_NEWUSER)": attempt(unshare, NEWUSER),
    }


@check(
    "user.chroot_refused",
    catalogue="USR-17",
    level="MUST",
    anchors=("clone(2) EPERM (chroot)", "unshare(2) EPERM", "kernel create_user_ns()"),
    needs=Needs(userns=True, min_kernel=(5, 3), kconfig=("USER_NS",), ops=("clone3",)),
    timeout=5.0,
)
def chroot_refused(ctx: Context) -> None:
    """A chrooted process can't create a user namespace (EPERM), by clone3 or by unshare.

    A user namespace would give the process CAP_SYS_CHROOT there and so a way
    out of its chroot (kernel create_user_ns() refuses a caller whose root is
    not its mount namespace's root, since 3.9). A helper chroots into an
    empty directory of the check's private tmpdir and tries
    clone3(CLONE_NEWUSER) and unshare(CLONE_NEWUSER): both EPERM. Control:
    the helper does not chroot, so both succeed.
    """
    root = None
    if not ctx.control:
        root = os.path.join(ctx.tmpdir, "chroot")
        os.mkdir(root)
    seen = ctx.in_child(_userns_from, root)
    if "chroot" in seen:
        raise Skip(f"chroot(2) is refused here: {seen['chroot']}")
    for call in ("clone3(CLONE_NEWUSER)", "unshare(CLONE_NEWUSER)"):
        ctx.expect_equal(seen[call], "EPERM", f"{call} from a chrooted process")


# -- USR-18 -------------------------------------------------------------------------

#: Level 1 of USR-18 maps ids 0..9 onto the check's 0..9; id 10 is outside it.
_LEVEL1_IDS = 10


def _six_extents(last: int) -> str:
    """Six one-id extents (more than the 5 kept unsorted), the last naming outer id *last*."""
    return "".join(f"{k} {k} 1\n" for k in range(5)) + f"5 {last} 1\n"


def _ids_for_usr18() -> str | None:
    if _mapped("uid", range(_LEVEL1_IDS)) and _mapped("gid", range(_LEVEL1_IDS)):
        return None
    return (
        f"needs uids and gids 0-{_LEVEL1_IDS - 1} mapped in this user namespace to give level 1 "
        "six ids (a rootless sandbox maps one id)"
    )


@check(
    "user.map_within_parent",
    catalogue="USR-18",
    level="MUST",
    anchors=(
        "user_namespaces(7) (defining a mapping)",
        "LTP userns08 (CVE-2018-18955)",
        "kernel map_write()",
    ),
    needs=Needs(
        userns=True,
        min_kernel=(4, 15),
        kconfig=("USER_NS",),
        ops=("setns",),
        probes=(_ids_for_usr18,),
    ),
    timeout=5.0,
)
def map_within_parent(ctx: Context) -> None:
    """A map naming an id its parent user ns doesn't map is refused (EPERM), also with > 5 extents.

    Level 1 maps ids 0-9 onto the check's; a writer that joined level 1
    (every capability there) writes the uid_map and gid_map of fresh level-2
    namespaces: one extent naming id 10 (unmapped in level 1) → EPERM; six
    extents, the sixth naming 10 → EPERM (with more than 5 extents the kernel
    sorts the map, the path of CVE-2018-18955; every extent is still
    translated through the parent's map); six extents within 0-9 → accepted.
    Control: the extents name id 9 instead of 10, so every write is accepted.
    """
    outside = _LEVEL1_IDS - 1 if ctx.control else _LEVEL1_IDS
    level1 = _userns_helper(ctx)
    _map_helper(level1.pid, f"0 0 {_LEVEL1_IDS}", f"0 0 {_LEVEL1_IDS}")
    writer = ctx.spawn_child(_join_user, level1.pid)
    writer.recv()
    cases = (
        (f"one extent naming id {outside}", f"0 {outside} 1", "EPERM"),
        (f"six extents, the last naming id {outside}", _six_extents(outside), "EPERM"),
        ("six extents within level 1's ids", _six_extents(5), "ok"),
    )
    for what, text, expected in cases:
        level2 = ctx.spawn_child(_join_then_unshare_user, level1.pid)
        level2.recv()
        for kind in ("uid", "gid"):
            seen = writer.call(_write_attempt, f"/proc/{level2.pid}/{kind}_map", text)
            ctx.expect_equal(seen, expected, f"level 2's {kind}_map of {what}")
        if expected == "ok":
            ctx.expect_equal(
                writer.call(_extents, f"/proc/{level2.pid}/uid_map"),
                [(k, k, 1) for k in range(6)],
                "level 2's uid_map read back from level 1",
            )


# -- USR-19 -------------------------------------------------------------------------

#: The id USR-19 tries to take on: unmapped in the helper's namespace (it maps only 0).
_UNMAPPED = 1


def _use_unmapped(path: str) -> dict[str, str]:
    """chown *path* to, then become, uid/gid 1; the uid last (it costs the capabilities)."""
    return {
        "chown": attempt(os.chown, path, _UNMAPPED, _UNMAPPED),
        "setresgid": attempt(os.setresgid, _UNMAPPED, _UNMAPPED, _UNMAPPED),
        "setresuid": attempt(os.setresuid, _UNMAPPED, _UNMAPPED, _UNMAPPED),
    }


@check(
    "user.unmapped_ids_unusable",
    catalogue="USR-19",
    level="MUST",
    anchors=("setresuid(2) EINVAL", "chown(2) EINVAL", "user_namespaces(7) (unmapped ids)"),
    needs=_USERNS,
    timeout=5.0,
)
def unmapped_ids_unusable(ctx: Context) -> None:
    """Ids a user ns doesn't map can't be taken on or given: setresuid/gid and chown are EINVAL.

    A helper in a new user namespace that maps only 0 (onto the check's
    ids), with every capability there, tries chown(2) of a file the check
    made to uid/gid 1, then setresgid(1) and setresuid(1): each must fail
    with EINVAL (the id has no kernel id to convert to), not EPERM, and
    nothing changes. Control: the namespace maps 1 (onto the same ids)
    instead, so each call succeeds (the file keeps its owner).
    """
    path = _create(os.path.join(ctx.tmpdir, "owned"), 0o644)
    inside = _UNMAPPED if ctx.control else 0
    helper = _userns_helper(ctx)
    _map_helper(helper.pid, f"{inside} {os.geteuid()} 1", f"{inside} {os.getegid()} 1")
    seen = helper.call(_use_unmapped, path)
    for call in ("chown", "setresgid", "setresuid"):
        ctx.expect_equal(seen[call], "EINVAL", f"{call}() to an id the user ns doesn't map")
    st = os.stat(path)
    ctx.expect_equal((st.st_uid, st.st_gid), (os.geteuid(), os.getegid()), "the file's owner")


# -- USR-20 -------------------------------------------------------------------------

#: fds a USR-20 helper opened, by path (module state of that helper process only).
_HELD: dict[str, int] = {}


def _open_for_writing(path: str) -> int:
    """In the opener: open *path* for writing and keep it open; return the fd number."""
    _HELD[path] = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    return _HELD[path]


def _ids_for_usr20() -> str | None:
    if os.geteuid() != NOBODY and _mapped("uid", (NOBODY,)) and _mapped("gid", (NOBODY,)):
        return None
    return (
        "needs the id 65534 mapped in this user namespace besides the check's own (a rootless "
        "sandbox maps one id)"
    )


@check(
    "user.map_opener_credentials",
    catalogue="USR-20",
    level="MUST",
    anchors=("CVE-2013-1959", "kernel new_idmap_permitted()", "user_namespaces(7)"),
    needs=Needs(userns=True, min_kernel=(5, 6), kconfig=("USER_NS",), probes=(_ids_for_usr20,)),
    timeout=5.0,
)
def map_opener_credentials(ctx: Context) -> None:
    """A uid_map write needs the privilege in the opener's credentials too, not only the writer's.

    A helper running as nobody creates a user namespace; another process,
    nobody with no capabilities, opens that namespace's uid_map for writing
    and keeps it open. The check, root with CAP_SETUID, takes the fd
    (pidfd_getfd(2)) and writes ``0 0 1`` through it: EPERM, since the
    opener could not have mapped root (kernel new_idmap_permitted(), the
    fix of CVE-2013-1959). The same line through an fd the check opened
    itself is accepted. Control: the first write also goes through an fd
    the check opened, so it is accepted.
    """
    target = ctx.spawn_child(_drop_then_unshare, NOBODY, NOBODY)
    target.recv()
    path = f"/proc/{target.pid}/uid_map"
    opener = ctx.spawn_child(_writer, True)
    opener.recv()
    number = opener.call(_open_for_writing, path)
    if ctx.control:
        borrowed = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    else:
        pidfd = syscalls.pidfd_open(opener.pid)
        try:
            borrowed = syscalls.pidfd_getfd(pidfd, number)
        except PermissionError as err:
            # root holds CAP_SYS_PTRACE over nobody: only a policy (Yama, an LSM) says no.
            raise Skip(f"pidfd_getfd(2) of the opener's fd is refused here ({err})") from None
        finally:
            os.close(pidfd)
    try:
        seen = attempt(os.write, borrowed, b"0 0 1")
    finally:
        os.close(borrowed)
    ctx.expect_equal(seen, "EPERM", "uid_map write through an fd an unprivileged process opened")
    ctx.expect_equal(_write_attempt(path, "0 0 1"), "ok", "the same write through the check's fd")
    ctx.expect_equal(_extents(path), [(0, 0, 1)], "the helper's uid_map")


# -- USR-21 -------------------------------------------------------------------------


def _malformed_maps(own: int) -> tuple[tuple[str, str], ...]:
    """(what, text) of map writes the kernel must refuse as malformed, around the id *own*."""
    return (
        ("overlapping inside ranges", f"0 {own} 1\n0 {own} 1\n"),
        ("overlapping outside ranges", f"0 {own} 1\n1 {own} 1\n"),
        ("a zero count", f"0 {own} 0\n"),
        ("an inside range past 2^32", f"4294967295 {own} 2\n"),
        ("an outside range past 2^32", "0 4294967295 2\n"),
        ("a missing field", f"0 {own}\n"),
        ("a negative id", f"-1 {own} 1\n"),
        ("trailing garbage", f"0 {own} 1 junk\n"),
        ("an empty line", f"0 {own} 1\n\n"),
    )


@check(
    "user.map_syntax",
    catalogue="USR-21",
    level="MUST",
    anchors=("user_namespaces(7) (defining a mapping)", "kernel map_write()", "LTP userns03"),
    needs=_USERNS,
    timeout=5.0,
)
def map_syntax(ctx: Context) -> None:
    """A malformed uid_map/gid_map write fails with EINVAL and leaves the map writable.

    The check writes a waiting helper's uid_map and gid_map with overlapping
    inside or outside ranges, a zero count, a range past 2^32, a missing
    field, a negative id, trailing garbage and an empty line: each EINVAL
    (kernel map_write() parses and validates before any permission check,
    so this holds rootless too), the map stays empty, and the well-formed
    ``0 <own id> 1`` is then accepted (only a successful write uses up the
    one write). Control: the first malformed write is replaced by the
    well-formed line, so it is accepted.
    """
    helper = _userns_helper(ctx)
    for kind, own in (("uid", os.geteuid()), ("gid", os.getegid())):
        path = f"/proc/{helper.pid}/{kind}_map"
        good = f"0 {own} 1\n"
        for i, (what, text) in enumerate(_malformed_maps(own)):
            seen = _write_attempt(path, good if ctx.control and i == 0 else text)
            ctx.expect_equal(seen, "EINVAL", f"{kind}_map write with {what}")
        ctx.expect_equal(_read(path), "", f"{kind}_map after the refused writes")
        ctx.expect_equal(_write_attempt(path, good), "ok", f"the well-formed {kind}_map write")
        ctx.expect_equal(_extents(path), [(0, own, 1)], f"{kind}_map read back")
