"""``nsprim.compat`` on the real kernel: the answers match the machine, and a refused call is named.

The rootless view runs in a forked child that dropped to nobody in-process;
the refused-syscall cases run in a child that installed a seccomp filter
returning EPERM for unshare(2), or that lowered ``user.max_user_namespaces``
inside its own user namespace. Nothing here changes the host.
"""

from __future__ import annotations

import ctypes
import errno
import gzip
import os
import platform
import re
import shutil
from typing import Optional

import pytest
from forked import assert_all_reaped, drop_to_nobody, in_child

from nsprim import compat, seccomp
from nsprim import net as _net  # noqa: F401  (imported before a child drops to nobody)
from nsprim import syscalls as S
from nsprim.flags import CloneFlags
from nsprim.namespace import NsType, namespaces

KCONFIG_OF_TYPE = {
    "mnt": "NAMESPACES",
    "uts": "UTS_NS",
    "ipc": "IPC_NS",
    "pid": "PID_NS",
    "net": "NET_NS",
    "user": "USER_NS",
    "cgroup": "CGROUPS",
    "time": "TIME_NS",
}


def _by(probes: list[compat.Probe]) -> dict[tuple[str, str], compat.Probe]:
    return {(p.group, p.name): p for p in probes}


def _config_gz() -> dict[str, str]:
    # An independent parse of /proc/config.gz for the comparison.
    out = {}
    with gzip.open("/proc/config.gz", "rt") as f:
        for line in f:
            m = re.match(r"CONFIG_(\w+)=(.*)", line)
            if m:
                out[m.group(1)] = m.group(2)
            m = re.match(r"# CONFIG_(\w+) is not set", line)
            if m:
                out[m.group(1)] = "n"
    return out


def _kernel() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    assert m
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def probes() -> list[compat.Probe]:
    return compat.probe_all()


def test_probe_all_covers_every_group_with_unique_names(probes: list[compat.Probe]) -> None:
    assert [g for g in compat.GROUPS if any(p.group == g for p in probes)] == list(compat.GROUPS)
    keys = [(p.group, p.name) for p in probes]
    assert len(keys) == len(set(keys))
    assert all(p.status in compat.STATUSES for p in probes)
    assert all(p.consequence and p.detail for p in probes)
    # the 24 environment probes nsprim check promises, by the probe that answers each
    b = _by(probes)
    for key in [
        ("system", "kernel"),
        ("environment", "initial_namespaces"),
        ("kconfig", "NAMESPACES"),
        ("limits", "max_user_namespaces"),
        ("userns", "unprivileged_userns_clone"),
        ("credentials", "CapEff"),
        ("syscalls", "clone3"),
        ("syscalls", "setns_pidfd"),
        ("system", "threads"),
        ("environment", "cgroup"),
        ("environment", "root_propagation"),
        ("features", "fresh_proc"),
        ("features", "time_ns_threads"),
        ("environment", "idmap_tools"),
        ("system", "libc"),
        ("system", "python"),
        ("environment", "container"),
        ("credentials", "lsm"),
        ("features", "ns_last_pid"),
        ("system", "unshare"),
        ("features", "netns_loopback"),
        ("limits", "overflowuid"),
        ("features", "hostname_max"),
        ("system", "architecture"),
    ]:
        assert key in b, key


@pytest.mark.needs_root
def test_all_eight_types_creatable_and_agree_with_config_gz(probes: list[compat.Probe]) -> None:
    b = _by(probes)
    config = _config_gz()
    for t in NsType:
        p = b[("namespaces", t.value)]
        assert p.status == "ok", p
        assert p.value == "works"
        assert f"unshare(CLONE_NEW{'NS' if t is NsType.MNT else t.value.upper()}) works" in p.detail
        # a type that works must be configured in, and the probe says what config.gz says
        assert config[KCONFIG_OF_TYPE[t.value]] in ("y", "m")
    for opt in compat.KCONFIG_OPTIONS:
        p = b[("kconfig", opt)]
        assert p.value == config.get(opt, "n"), opt
        assert p.status == ("ok" if config.get(opt, "n") in ("y", "m") else "missing")
        assert "/proc/config.gz" in p.detail


def test_syscall_presence_matches_the_kernel_version(probes: list[compat.Probe]) -> None:
    b = _by(probes)
    version = _kernel()
    # listns arrived in 6.19; everything else probed here is older than 6.18
    listns = b[("syscalls", "listns")]
    # a newer optional syscall is "absent", no defect of this host
    assert listns.status == ("ok" if version >= (6, 19) else "absent")
    if version < (6, 19):
        assert listns.value == "ENOSYS"
    assert b[("syscalls", "clone3")].value == "EINVAL"  # clone3(NULL, 0): present
    for name in ("pidfd_open", "pidfd_getfd", "mount_setattr", "open_tree", "move_mount"):
        assert b[("syscalls", name)].status == "ok", name
    ns_id = b[("syscalls", "NS_GET_ID")]
    assert ns_id.status == ("ok" if version >= (6, 18) else "missing")


def test_values_match_proc_and_uname(probes: list[compat.Probe]) -> None:
    b = _by(probes)
    assert b[("system", "kernel")].value == os.uname().release
    assert b[("system", "architecture")].value == platform.machine()
    for t in NsType:
        with open(f"/proc/sys/user/max_{t.value}_namespaces") as f:
            assert b[("limits", f"max_{t.value}_namespaces")].value == int(f.read())
    with open("/proc/sys/kernel/overflowuid") as f:
        assert b[("limits", "overflowuid")].value == int(f.read())
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    assert b[("credentials", "NoNewPrivs")].value == status["NoNewPrivs"].strip()
    eff = int(status["CapEff"], 16)
    assert ("sys_admin" in compat.decode_caps(eff)) == (b[("credentials", "CapEff")].status == "ok")
    assert b[("system", "threads")].value == len(os.listdir("/proc/self/task"))
    assert b[("features", "hostname_max")].value == 64


def test_probe_all_changes_nothing_in_the_caller() -> None:
    before = {t: (n.dev, n.ino) for t, n in namespaces().items()}
    cwd, root_st = os.getcwd(), os.stat("/")
    compat.probe_all(groups=["namespaces", "userns", "syscalls", "features"])
    after = {t: (n.dev, n.ino) for t, n in namespaces().items()}
    assert after == before
    assert os.getcwd() == cwd
    assert os.stat("/").st_ino == root_st.st_ino
    assert_all_reaped()  # every child was reaped (the leak guard checks fds)


def _probe_as_nobody() -> list[compat.Probe]:
    drop_to_nobody()
    return compat.probe_all()


@pytest.mark.needs_root
def test_rootless_view_as_nobody() -> None:
    probes = in_child(_probe_as_nobody, timeout=60)
    b = _by(probes)
    assert b[("credentials", "ids")].value == 65534
    assert b[("credentials", "CapEff")].value == "none"
    assert b[("credentials", "CapEff")].status == "limited"
    assert b[("namespaces", "user")].status == "ok"
    assert b[("userns", "unprivileged")].status == "ok"
    assert "as uid 65534" in b[("userns", "unprivileged")].detail
    for t in NsType:
        if t is NsType.USER:
            continue
        p = b[("namespaces", t.value)]
        # EPERM directly, works inside a new user namespace: the rootless view
        assert p.status == "limited", p
        assert "EPERM" in p.detail and "inside a new user namespace" in p.detail, p
        assert p.needs_root
    # the features run inside a user namespace as nobody, too
    assert b[("features", "netns_loopback")].value == "DOWN -> UP"
    assert b[("features", "hostname_max")].value == 64
    assert compat.require("user,net,pid", probes) == []


# --- a syscall made to fail -------------------------------------------------------

#: The machines nsprim.seccomp can build a filter for.
_AUDIT_ARCH = ("x86_64", "aarch64")


def _install_filter(rules: dict[str, int], arg_masks: Optional[dict[str, int]] = None) -> None:
    """Install a seccomp filter with nsprim.seccomp: each named syscall returns its errno.

    An errno of 0 fakes success (the call returns 0 and does nothing); an
    *arg_masks* entry limits a rule to calls whose first argument has one of
    those bits (a runtime's rule on clone/unshare flags).
    """
    masks = arg_masks or {}
    seccomp.install([seccomp.Rule(name, err, masks.get(name, 0)) for name, err in rules.items()])


def _install_unshare_filter() -> None:
    """Return EPERM from unshare(2) for this process and its children."""
    _install_filter({"unshare": errno.EPERM})


def _probe_under_seccomp() -> tuple[list[compat.Probe], int]:
    _install_unshare_filter()
    try:
        S.unshare(0)
        direct = 0
    except OSError as err:
        direct = err.errno or 0
    probes = compat.probe_all(groups=["namespaces", "userns"])
    return probes, direct


@pytest.mark.skipif(platform.machine() not in _AUDIT_ARCH, reason="no AUDIT_ARCH value here")
def test_seccomp_refused_unshare_reported_missing_with_the_reason() -> None:
    probes, direct = in_child(_probe_under_seccomp, timeout=60)
    assert direct == errno.EPERM  # the filter really refuses unshare
    b = _by(probes)
    for t in NsType:
        p = b[("namespaces", t.value)]
        assert p.status == "missing", p
        assert p.value == "EPERM"
        assert "seccomp filter" in p.detail and "Seccomp: 2" in p.detail, p
        assert "not possible here" in p.consequence
    assert b[("userns", "seccomp")].status == "limited"
    assert b[("userns", "seccomp")].value == "filter"
    assert [p.name for p in compat.require("user,net", probes)] == ["user", "net"]


def _enter_own_userns() -> None:
    """unshare(CLONE_NEWUSER) and map root to the caller's ids (in a forked test child)."""
    uid, gid = os.geteuid(), os.getegid()
    S.unshare(int(NsType.USER.flag))
    S.set_dumpable(True)  # after a setresuid, /proc/self is root's until then
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _probe_with_max_user_namespaces_zero() -> tuple[list[compat.Probe], str]:
    _enter_own_userns()
    # The ucount sysctls are per user namespace; its creator holds
    # CAP_SYS_RESOURCE in it (kernel/ucount.c set_permissions).
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")
    with open("/proc/sys/user/max_user_namespaces") as f:
        seen = f.read().strip()
    return compat.probe_all(groups=["namespaces", "userns", "limits"]), seen


@pytest.mark.needs_userns
def test_lowered_max_user_namespaces_reported_missing_with_the_reason() -> None:
    probes, seen = in_child(_probe_with_max_user_namespaces_zero, timeout=60)
    assert seen == "0"
    b = _by(probes)
    user = b[("namespaces", "user")]
    assert user.status == "missing"
    assert user.value == "ENOSPC"
    assert "user.max_user_namespaces is 0" in user.detail
    assert user.source == "limit"
    assert user.fix.startswith("sysctl -w user.max_user_namespaces=N")
    assert "rootless containers and id mapping: not possible here" in user.consequence
    assert b[("userns", "max_user_namespaces")].status == "missing"
    assert b[("limits", "max_user_namespaces")].value == 0
    # the other types still work there (root of that user namespace)
    assert b[("namespaces", "net")].status == "ok"
    assert [p.name for p in compat.require(["user"], probes)] == ["user"]


@pytest.mark.needs_root
def test_require_on_this_machine() -> None:
    assert compat.require("user,net,pid") == []
    if _kernel() < (6, 19):
        failed = compat.require("listns,clone3")
        assert [p.name for p in failed] == ["listns"]


# --- environments built with nsprim's own means: no probe promises what they refuse ---

_ENV_GROUPS = ["namespaces", "userns", "operations", "rootless", "syscalls", "features", "verdict"]
_USE = {"uts": "sethostname", "mnt": "mount.tmpfs", "pid": "mount.proc", "net": "net.lo_up"}


def _works_independently(flags: int, then: str = "") -> bool:
    """Try unshare(flags) (and a use) in a fresh child, not through compat."""

    def body() -> bool:
        try:
            if then == "idmap":
                _enter_own_userns()
                return True
            S.unshare(flags)
            if then == "sethostname":
                S.sethostname("independent")
        except OSError:
            return False
        return True

    return bool(in_child(body, timeout=20))


def _promises_nothing_refused(probes: list[compat.Probe]) -> None:
    """Each type the probes call usable directly is, tried independently, and the reverse."""
    b = _by(probes)
    for t in NsType:
        p = b[("namespaces", t.value)]
        then = {NsType.UTS: "sethostname", NsType.USER: "idmap"}.get(t, "")
        direct = _works_independently(int(t.flag), then)
        if p.status == "ok":  # a promise: the environment keeps it
            assert direct, p
        assert p.status == "ok" or p.consequence, p
        if p.status in ("missing", "absent"):
            assert p.source in compat.SOURCES, p  # every refusal names its source
    for p in (q for q in probes if q.group == "features"):
        # a feature whose child was refused says by whom, like the operations
        assert p.status != "unknown", p
    for name in ("operations", "rootless"):
        for p in (q for q in probes if q.group == name):
            assert (p.status == "ok") == (p.value == "works"), p
            if p.status != "ok":
                assert p.source in compat.SOURCES and "no: " in p.consequence, p


def _drop_cap_sys_admin() -> None:
    """Leave CAP_SYS_ADMIN out of the bounding, effective and permitted sets (uid stays 0)."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(24, 21, 0, 0, 0) == 0  # PR_CAPBSET_DROP, CAP_SYS_ADMIN
    eff, prm, inh = S.capget()
    S.capset(eff & ~(1 << 21), prm & ~(1 << 21), inh & ~(1 << 21))


def _podman_like() -> list[compat.Probe]:
    # podman's default profile for a container without CAP_SYS_ADMIN: these
    # calls return EPERM, clone3 ENOSYS (so that glibc falls back to clone).
    _drop_cap_sys_admin()
    _install_filter(
        {
            "sethostname": errno.EPERM,
            "setdomainname": errno.EPERM,
            "setns": errno.EPERM,
            "clone3": errno.ENOSYS,
        }
    )
    probes = compat.probe_all(groups=_ENV_GROUPS)
    _promises_nothing_refused(probes)
    return probes


@pytest.mark.needs_root
@pytest.mark.skipif(platform.machine() not in _AUDIT_ARCH, reason="no AUDIT_ARCH value here")
def test_podman_like_uts_is_creatable_but_unusable_and_seccomp_is_named() -> None:
    b = _by(in_child(_podman_like, timeout=90))
    uts = b[("namespaces", "uts")]
    # creating works (inside a user namespace), setting a hostname does not
    assert uts.status == "missing", uts
    assert uts.source == "seccomp"
    assert "unshare(CLONE_NEWUTS) works inside a new user namespace" in uts.consequence
    assert "a seccomp filter returns EPERM for sethostname(2)" in uts.consequence
    assert "--security-opt seccomp" in uts.fix
    # the other types still work rootless: limited, and the direct refusal is the capability
    net = b[("namespaces", "net")]
    assert net.status == "limited" and net.source == "capability", net
    # clone3's ENOSYS on a kernel that has it is the filter's, not "not in this kernel"
    clone3 = b[("syscalls", "clone3")]
    assert clone3.status == "missing" and clone3.source == "seccomp", clone3
    assert "seccomp filter" in clone3.consequence and "has it" in clone3.consequence
    assert b[("rootless", "clone3")].source == "seccomp"
    assert b[("rootless", "setns")].source == "seccomp"
    assert b[("rootless", "setdomainname")].source == "seccomp"
    assert b[("features", "hostname_max")].source == "seccomp"
    # the three answers
    assert b[("verdict", "rootful")].value == "no"
    assert "no CAP_SYS_ADMIN" in b[("verdict", "rootful")].consequence
    rootless = b[("verdict", "rootless")]
    assert rootless.value == "no" and rootless.source == "seccomp"
    assert "sethostname" in rootless.consequence and "setns" in rootless.consequence
    assert b[("verdict", "conformance")].value == "no"


def _probe_with_limit(t: str) -> list[compat.Probe]:
    _enter_own_userns()
    with open(f"/proc/sys/user/max_{t}_namespaces", "w") as f:
        f.write("0")
    probes = compat.probe_all(groups=_ENV_GROUPS)
    _promises_nothing_refused(probes)
    return probes


@pytest.mark.needs_userns
@pytest.mark.parametrize("t", ["mnt", "uts", "ipc", "pid", "net", "cgroup", "time"])
def test_a_capped_type_is_missing_naming_the_limit_and_the_rest_still_works(t: str) -> None:
    b = _by(in_child(_probe_with_limit, t, timeout=90))
    p = b[("namespaces", t)]
    assert p.status == "missing" and p.source == "limit", p
    assert f"user.max_{t}_namespaces is 0" in p.consequence
    assert p.fix.startswith(f"sysctl -w user.max_{t}_namespaces=N")
    op = b[("operations", f"unshare.{t}")]
    assert op.source == "limit"
    # setns is judged on a type this process may create: one capped type does not refuse it
    assert b[("operations", "setns")].status == "ok", b[("operations", "setns")]
    # (using a pid namespace means mounting its /proc: that needs a mount namespace)
    for other in ("uts", "ipc", "pid", "mnt", "net"):
        if other != t and (t, other) != ("mnt", "pid"):
            assert b[("namespaces", other)].status == "ok", b[("namespaces", other)]
    assert b[("verdict", "conformance")].value == "no"
    assert f"user.max_{t}_namespaces is 0" in b[("verdict", "conformance")].consequence


def _probe_without_capabilities() -> list[compat.Probe]:
    S.drop_capabilities()  # uid 0, no capabilities at all
    probes = compat.probe_all(groups=_ENV_GROUPS)
    _promises_nothing_refused(probes)
    return probes


@pytest.mark.needs_root
def test_capabilities_dropped_with_capset_are_named() -> None:
    b = _by(in_child(_probe_without_capabilities, timeout=90))
    # uid 0 without CAP_SYS_ADMIN: nothing directly; and without CAP_SETFCAP it may
    # not map itself (uid 0) as root of a new user namespace either (Linux 5.12+)
    for t in NsType:
        p = b[("namespaces", t.value)]
        assert p.status == "missing" and p.source == "capability", p
    assert "no CAP_SYS_ADMIN in the caller's user namespace" in b[("namespaces", "net")].detail
    assert "CAP_SETFCAP" in b[("namespaces", "user")].consequence
    assert b[("operations", "unshare.user")].status == "ok"  # creating one needs nothing
    assert b[("operations", "sethostname")].source == "capability"
    assert b[("verdict", "rootful")].value == "no"
    assert b[("verdict", "rootless")].value == "no"
    assert "CAP_SETFCAP" in b[("verdict", "rootless")].consequence


def _nested(depth: int) -> list[compat.Probe]:
    for _ in range(depth):
        _enter_own_userns()
    probes = compat.probe_all(groups=_ENV_GROUPS)
    _promises_nothing_refused(probes)
    return probes


@pytest.mark.needs_userns
def test_nested_user_namespaces_promise_only_what_works() -> None:
    b = _by(in_child(_nested, 2, timeout=90))
    # root of a user namespace two levels down: every type, directly
    for t in NsType:
        assert b[("namespaces", t.value)].status == "ok", b[("namespaces", t.value)]
    assert b[("verdict", "rootful")].value == "yes"
    # as nobody is impossible there (65534 is unmapped): rootless means without CAP_SYS_ADMIN
    assert "without CAP_SYS_ADMIN" in b[("rootless", "unshare.net")].detail
    assert b[("verdict", "rootless")].value == "yes"


def _rootless_in_rootless() -> list[compat.Probe]:
    drop_to_nobody()
    return _nested(1)


@pytest.mark.needs_root
def test_rootless_inside_a_rootless_user_namespace() -> None:
    b = _by(in_child(_rootless_in_rootless, timeout=90))
    # root of a user namespace that nobody created: every type, directly
    for t in NsType:
        assert b[("namespaces", t.value)].status == "ok", b[("namespaces", t.value)]
    # but the host's cgroup tree belongs to real root: not delegated to nobody
    cg = b[("operations", "cgroup.create")]
    assert cg.status == "missing" and cg.source == "cgroup-delegation", cg
    assert "Delegate=yes" in cg.fix
    assert "cgroup.create" in b[("verdict", "conformance")].consequence


def _fake_success() -> tuple[list[compat.Probe], str]:
    # unshare(2) returns 0 and does nothing: an incomplete sandbox's failure mode.
    # Every group runs: none may then "use" the namespace it believes new (a
    # hostname set there would be the host's).
    import socket

    # Inside throwaway UTS and mount namespaces, so that a regression could
    # only rename or mount over these, never the host's.
    S.unshare(int(NsType.UTS.flag) | int(NsType.MNT.flag))
    S.mount(None, "/", None, 0x4000 | 0x40000)  # MS_REC | MS_PRIVATE
    S.sethostname("nsprim-fake-success")
    before = socket.gethostname()
    _install_filter({"unshare": 0})
    probes = compat.probe_all()
    assert socket.gethostname() == before
    return probes, before


@pytest.mark.needs_root
@pytest.mark.skipif(platform.machine() not in _AUDIT_ARCH, reason="no AUDIT_ARCH value here")
def test_a_faked_unshare_is_caught_by_identity_and_nothing_is_used() -> None:
    probes, before = in_child(_fake_success, timeout=120)
    assert before == "nsprim-fake-success"
    b = _by(probes)
    hostname = b[("features", "hostname_max")]
    assert hostname.status == "missing" and "namespace is unchanged" in hostname.detail
    for t in NsType:
        p = b[("namespaces", t.value)]
        assert p.status == "missing", p
        assert "returned 0 and the" in p.consequence and "unchanged" in p.consequence, p
        assert p.source == "seccomp"
    op = b[("operations", "unshare.uts")]
    assert op.value == "broken" and op.status == "missing"
    assert op.consequence.endswith("a filter may fake success)")


# --- nsprim check: --quiet, --require, the JSON schema --------------------------------


def _check(argv: list[str]) -> tuple[int, str]:
    import io

    from nsprim.cli import build_parser

    ns = build_parser().parse_args(["check", *argv])
    out = io.StringIO()
    rc = ns.func(ns, out)
    return rc, out.getvalue()


def test_check_quiet_prints_the_three_answers_alone() -> None:
    rc, text = _check(["--quiet"])
    assert rc == 0
    lines = [line for line in text.splitlines() if not line.startswith("  fix: ")]
    assert [line.split("?")[0] for line in lines] == [
        "Can rootful containers run here",
        "Can rootless containers run here",
        "Can the conformance suite run fully here",
    ]
    assert all(re.search(r"\? (yes|no|unknown)", line) for line in lines)


def test_check_require_prints_only_what_is_required() -> None:
    rc, text = _check(["--require", "user,net"])
    names = re.findall(r"^(\S+)\s+(?:OK|LIMITED|MISSING|UNKNOWN|NOT IN KERNEL)\s", text, re.M)
    assert sorted(names) == ["net", "user"], text
    assert "== kconfig ==" not in text and "== verdict ==" not in text
    assert text.endswith(("all required available: user, net\n",)) or rc == 1
    rc_q, quiet = _check(["--require", "user,net", "--quiet"])
    assert rc_q == rc
    assert quiet in ("all required available: user, net\n",) or quiet.startswith(
        "required but not available here:"
    )


@pytest.mark.skipif(_kernel() >= (6, 19), reason="listns exists from Linux 6.19")
def test_a_newer_optional_syscall_is_not_a_defect_but_fails_a_requirement() -> None:
    rc, text = _check([])
    assert re.search(r"^listns\s+NOT IN KERNEL\s+ENOSYS", text, re.M)
    summary = text.strip().splitlines()[-1]
    assert re.fullmatch(
        r"\d+ ok, \d+ limited, \d+ missing, \d+ unknown, 1 not in this kernel", summary
    )
    rc, text = _check(["--require", "listns", "--quiet"])
    assert rc == 1
    assert "listns: listns: not in this kernel (needs Linux 6.19)" in text
    assert "fix: only if you need it: a kernel of Linux 6.19 or later" in text


def test_idmap_tools_says_why_and_how_to_fix() -> None:
    b = _by(compat.probe_all(groups=["environment"]))
    p = b[("environment", "idmap_tools")]
    if p.status == "limited":
        assert p.consequence.startswith("no ")
        if "range for" in p.consequence:
            assert "usermod --add-subuids" in p.fix
        if "no newuidmap" in p.consequence:
            assert "apt-get install uidmap" in p.fix


def _check_json_in_podman_like() -> tuple[int, str]:
    _drop_cap_sys_admin()
    _install_filter({"sethostname": errno.EPERM, "setns": errno.EPERM, "clone3": errno.ENOSYS})
    return _check(["--json", "--require", "uts"])


@pytest.mark.needs_root
@pytest.mark.skipif(platform.machine() not in _AUDIT_ARCH, reason="no AUDIT_ARCH value here")
def test_check_json_follows_the_documented_schema_and_a_control_fails_it() -> None:
    import json

    from nsprim.cli.check import SCHEMA, validate

    rc, text = in_child(_check_json_in_podman_like, timeout=90)
    doc = json.loads(text)
    assert doc["schema"] == SCHEMA == "nsprim-check/2"
    assert validate(doc) == []
    assert rc == 1 and doc["require"]["satisfied"] is False
    assert [p["name"] for p in doc["require"]["missing"]] == ["uts"]
    assert doc["verdict"]["rootless"]["answer"] == "no"
    assert "sethostname" in doc["verdict"]["rootless"]["reasons"]
    # the validator is not a rubber stamp
    bad = dict(doc, probes=[dict(doc["probes"][0], status="great")])
    assert any("status" in problem for problem in validate(bad))
    assert validate(dict(doc, schema="nsprim-check/1"))


def _docker_like() -> list[compat.Probe]:
    # moby's default profile without CAP_SYS_ADMIN: namespace flags in clone and
    # unshare refused by a rule on the first argument, setns refused, clone3 ENOSYS.
    ns_bits = int(CloneFlags.NS_ALL)
    _install_filter(
        {"unshare": errno.EPERM, "setns": errno.EPERM, "clone3": errno.ENOSYS},
        arg_masks={"unshare": ns_bits},
    )
    S.unshare(0)  # unshare without a namespace flag still passes the filter
    return compat.probe_all(groups=_ENV_GROUPS)


@pytest.mark.skipif(platform.machine() not in _AUDIT_ARCH, reason="no seccomp filter builder here")
def test_a_rule_on_unshare_flags_is_the_filters_not_the_kernels() -> None:
    b = _by(in_child(_docker_like, timeout=90))
    for t in NsType:
        p = b[("namespaces", t.value)]
        assert p.status == "missing" and p.source == "seccomp", p
        assert "a seccomp filter returns EPERM for unshare(2)" in p.consequence, p
    # the probe's own flag bit makes the sentinel match the same rule
    assert "the same call with arguments the kernel rejects first -> EPERM" in (
        b[("operations", "unshare.net")].detail
    )
    assert b[("verdict", "rootless")].value == "no"


_BWRAP = shutil.which("bwrap")
_IN_BWRAP = """
import json, os, sys
from nsprim import compat, syscalls as S
from nsprim.cli.check import validate
from nsprim.namespace import NsType
probes = compat.probe_all(groups=["namespaces", "operations", "rootless", "verdict"])
independent = {}
for t in NsType:
    pid = os.fork()
    if pid == 0:
        try:
            S.unshare(int(t.flag))
        except OSError:
            os._exit(1)
        os._exit(0)
    independent[t.value] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
print(json.dumps({"probes": [p.to_dict() for p in probes], "independent": independent}))
"""


@pytest.mark.needs_root
@pytest.mark.skipif(_BWRAP is None, reason="bubblewrap is not installed")
def test_inside_bubblewrap_no_probe_promises_what_it_refuses() -> None:
    import json
    import subprocess
    import sys

    assert _BWRAP is not None
    argv = [_BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp", "--unshare-all", "--die-with-parent"]
    # A checkout or venv under /tmp (CI's pristine root) stays visible over that tmpfs.
    import os
    import tempfile

    import nsprim

    top = tempfile.gettempdir() + os.sep
    for path in {sys.prefix, os.path.dirname(os.path.dirname(os.path.abspath(nsprim.__file__)))}:
        if path.startswith(top):
            argv += ["--ro-bind", path, path]
    proc = subprocess.run(
        [*argv, sys.executable, "-c", _IN_BWRAP], capture_output=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    b = {(p["group"], p["name"]): p for p in out["probes"]}
    for t, works in out["independent"].items():
        if b[("namespaces", t)]["status"] == "ok":
            assert works, b[("namespaces", t)]
    # bwrap's /proc has read-only submounts (/proc/sys, /proc/irq...): a user
    # namespace may not mount a fresh one (mount_too_revealing), and / is read-only
    fresh = b[("rootless", "mount.proc")]
    assert fresh["status"] == "missing" and fresh["source"] == "kernel", fresh
    assert "covered parts" in fresh["consequence"]
    cg = b[("operations", "cgroup.create")]
    assert cg["source"] == "cgroup-delegation" and "read-only" in cg["consequence"], cg
    for p in out["probes"]:
        if p["status"] in ("missing", "absent"):
            assert p["source"] is not None, p
