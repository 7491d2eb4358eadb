"""Unit tests of ``nsprim.compat`` helpers: capability decoding, --require, argument checks, the child runner."""

from __future__ import annotations

import errno
import os
import time

import pytest
from forked import assert_all_reaped

from nsprim import compat, listing
from nsprim.compat import Probe, _throwaway, facts


def test_decode_caps_names_bits_from_status_hex() -> None:
    assert compat.decode_caps("0000000000000000") == []
    assert compat.decode_caps(1 << 21) == ["sys_admin"]
    names = compat.decode_caps("000001fffeffffff")  # everything but CAP_SYS_RESOURCE (24)
    assert "sys_resource" not in names and "sys_admin" in names and "checkpoint_restore" in names
    assert len(names) == 40
    assert compat.decode_caps(1 << 45) == ["cap_45"]  # a bit newer than the table


def test_caps_text_summarises() -> None:
    assert facts.caps_text([]) == "none"
    assert facts.caps_text(compat.decode_caps("000001fffeffffff")) == "all but sys_resource"
    assert facts.caps_text(["net_admin"]) == "net_admin"


def _probe(name: str, status: str, group: str = "namespaces") -> Probe:
    return Probe(
        group=group, name=name, status=status, value=None, detail="detail", consequence="c"
    )


def test_require_judges_status() -> None:
    probes = [
        _probe("user", "ok"),
        _probe("net", "limited"),
        _probe("pid", "missing"),
        _probe("time", "unknown"),
        _probe("unprivileged", "missing", "userns"),
        _probe("clone3", "ok", "syscalls"),
    ]
    assert compat.require("user,net", probes) == []
    assert [p.name for p in compat.require("user, pid ,time", probes)] == ["pid", "time"]
    assert [p.name for p in compat.require(["rootless", "clone3"], probes)] == ["unprivileged"]
    # a requirement nobody probed counts as unknown, never as satisfied
    failed = compat.require("ipc", probes)
    assert [(p.name, p.status) for p in failed] == [("ipc", "unknown")]


def test_require_rejects_unknown_and_empty_names() -> None:
    with pytest.raises(ValueError, match=r"unknown requirement 'netz'; expected some of mnt, uts"):
        compat.require("user,netz", [])
    with pytest.raises(ValueError, match="no requirement given in ' , '"):
        compat.require(" , ", [])


def test_probe_all_validates_arguments() -> None:
    with pytest.raises(ValueError, match="unknown probe group 'bogus'; expected one of system"):
        compat.probe_all(groups=["bogus"])
    with pytest.raises(
        ValueError, match="timeout must be more than 0 and at most 86400 seconds, got 0"
    ):
        compat.probe_all(timeout=0)


def test_probe_to_dict_keys() -> None:
    d = _probe("net", "ok").to_dict()
    assert list(d) == [
        "group",
        "name",
        "status",
        "value",
        "detail",
        "consequence",
        "needs_root",
        "source",
        "fix",
    ]


def test_probe_is_keyword_only_and_validated() -> None:
    with pytest.raises(TypeError):
        Probe("system", "kernel", "ok", "6.18", "d", "c")  # type: ignore[misc]
    with pytest.raises(ValueError, match="status must be one of ok, limited"):
        Probe(group="system", name="x", status="fine", value=None, detail="d", consequence="c")
    with pytest.raises(ValueError, match="source must be None or one of seccomp"):
        Probe(
            group="system",
            name="x",
            status="missing",
            value=None,
            detail="d",
            consequence="c",
            source="gremlins",
        )


def test_in_child_times_out_kills_and_reaps() -> None:
    def sleeper() -> dict[str, object]:
        time.sleep(60)
        return {}

    t0 = time.monotonic()
    res = _throwaway.run(sleeper, 0.3)
    assert res == {"error": "timed out after 0.3 s"}
    assert time.monotonic() - t0 < 5
    assert_all_reaped()  # every child was reaped (the leak guard checks fds)


def test_in_child_reports_exceptions_and_signals() -> None:
    def fails() -> dict[str, object]:
        raise FileNotFoundError(errno.ENOENT, "gone")

    res = _throwaway.run(fails, 5)
    assert res["errno"] == errno.ENOENT and res["error"].startswith("FileNotFoundError")

    def killed() -> dict[str, object]:
        os.kill(os.getpid(), 9)
        return {}

    assert _throwaway.run(killed, 5)["error"] == "child killed by signal SIGKILL"


def test_mountinfo_unescape() -> None:
    assert listing._unescape(r"/run/a\040b") == "/run/a b"
    assert listing._unescape(r"/x\134y") == "/x\\y"
    assert listing._unescape("/plain") == "/plain"
    assert listing._unescape("/end\\04") == "/end\\04"


# --- attribution of a refused step to its source ------------------------------------


def _facts(**kw: object) -> facts.Facts:
    base = facts.gather()
    fields = {
        "release": "6.18.0",
        "version": (6, 18, 0),
        "status": {},
        "euid": 1000,
        "egid": 1000,
        "caps": (),
        "seccomp": facts.Seccomp("0", 0),
        "lsm": facts.Lsm((), None, None, None),
        "kconfig_source": base.kconfig_source,
        "kconfig": base.kconfig,
        "sysctls": {},
    }
    fields.update(kw)
    return facts.Facts(**fields)  # type: ignore[arg-type]


def _why(name: str, rec: dict[str, object], f: facts.Facts, **kw: bool) -> tuple[str, ...]:
    from nsprim.compat import engine as ops

    args = {"rootless": True, "dropped": False}
    args.update(kw)
    state, source, cause, fix = ops._attribute(name, rec, f, **args)
    return state, str(source), cause, fix


def test_enosys_is_the_filters_on_a_kernel_that_has_the_call() -> None:
    rec = {"step": "clone3()", "call": "clone3", "errno": errno.ENOSYS, "sentinel": errno.ENOSYS}
    state, source, cause, _ = _why("clone3", rec, _facts(seccomp=facts.Seccomp("2", 1)))
    assert (state, source) == ("refused", "seccomp")
    assert cause == "clone3(2) returns ENOSYS from a seccomp filter (Linux 6.18 has it)"
    # the same ENOSYS on Linux 5.2, without a filter: the kernel lacks it
    old = _facts(version=(5, 2, 0))
    state, source, cause, fix = _why("clone3", rec, old)
    assert (state, source) == ("absent", "kernel")
    assert "not in this kernel (needs Linux 5.3, running Linux 5.2)" in cause
    assert fix == "a kernel of Linux 5.3 or later"


def test_eperm_with_a_sentinel_that_the_kernel_would_reject_is_the_filter() -> None:
    rec = {
        "step": "unshare(CLONE_NEWUTS)",
        "call": "unshare",
        "errno": errno.EPERM,
        "type": "uts",
        "sentinel": errno.EPERM,
    }
    f = _facts(seccomp=facts.Seccomp("2", 1))
    assert _why("unshare.uts", rec, f)[:3] == (
        "refused",
        "seccomp",
        "a seccomp filter returns EPERM for unshare(2)",
    )
    # sethostname's sentinel proves nothing without CAP_SYS_ADMIN held
    rec = {"step": "sethostname(2)", "call": "sethostname", "errno": errno.EPERM}
    rec.update(sentinel=errno.EPERM, cap_sys_admin=False)
    assert _why("sethostname", rec, f)[1] == "seccomp"  # a filter is still the only candidate
    assert "a rule on the arguments" in _why("sethostname", rec, f)[2]


def test_userns_gates_name_their_sysctl_and_lsm() -> None:
    rec = {
        "step": "unshare(CLONE_NEWUSER)",
        "call": "unshare",
        "errno": errno.EPERM,
        "type": "user",
        "sentinel": errno.EINVAL,
    }
    f = _facts(sysctls={"kernel.unprivileged_userns_clone": 0})
    _, source, cause, fix = _why("unshare.user", rec, f)
    assert (source, fix) == ("sysctl", "sysctl -w kernel.unprivileged_userns_clone=1")
    assert "kernel.unprivileged_userns_clone=0" in cause
    # Ubuntu 24.04: creating works, using fails inside (AppArmor)
    use = {"step": "sethostname(2)", "call": "sethostname", "errno": errno.EPERM}
    f = _facts(sysctls={"kernel.apparmor_restrict_unprivileged_userns": 1})
    _, source, cause, fix = _why("sethostname", use, f)
    assert source == "lsm"
    assert cause == (
        "AppArmor restricts unprivileged user namespaces "
        "(kernel.apparmor_restrict_unprivileged_userns=1)"
    )
    assert "apparmor_restrict_unprivileged_userns=0" in fix


def test_limits_capabilities_and_cgroups() -> None:
    rec = {"step": "unshare(CLONE_NEWNET)", "call": "unshare", "errno": errno.ENOSPC, "type": "net"}
    f = _facts(sysctls={"user.max_net_namespaces": 0})
    assert _why("unshare.net", rec, f)[1:3] == ("limit", "user.max_net_namespaces is 0")
    f = _facts(sysctls={"user.max_net_namespaces": 5})
    assert "limit (5)" in _why("unshare.net", rec, f)[2]
    rec = {"step": "unshare(CLONE_NEWNET)", "call": "unshare", "errno": errno.EPERM, "type": "net"}
    _, source, cause, _ = _why("unshare.net", rec, _facts(), rootless=False)
    assert source == "capability" and "no CAP_SYS_ADMIN" in cause
    rec = {"step": "mkdir /sys/fs/cgroup/x", "call": "cgroup", "errno": errno.EACCES}
    _, source, cause, fix = _why("cgroup.create", rec, _facts())
    assert source == "cgroup-delegation" and "Delegate=yes" in fix
    rec = {"step": "write uid_map/gid_map", "call": "idmap", "errno": errno.EPERM}
    rec.update(outer_uid=0, cap_setfcap=False)
    assert "CAP_SETFCAP" in _why("idmap", rec, _facts(euid=0))[2]


def test_kernel_config_accepts_both_key_forms() -> None:
    cfg = facts.parse_kconfig('CONFIG_UTS_NS=y\n# CONFIG_TIME_NS is not set\nCONFIG_X="s"\n')
    assert cfg["UTS_NS"] == cfg["CONFIG_UTS_NS"] == "y"
    assert cfg.get("CONFIG_TIME_NS") == "n" and not cfg.enabled("TIME_NS")
    assert cfg.enabled("CONFIG_UTS_NS") and "CONFIG_X" in cfg and cfg["X"] == "s"
    assert list(cfg) == ["UTS_NS", "TIME_NS", "X"]
    assert facts.kernel_version("6.1.0-13-amd64") == (6, 1, 0)
    assert facts.kernel_version("5.15") == (5, 15, 0)
    assert facts.kernel_version("weird") == (0, 0, 0)
    with pytest.raises(ValueError, match="a sysctl name like"):
        facts.sysctl("../../etc/passwd")


def test_operations_validates_arguments() -> None:
    with pytest.raises(ValueError, match="unknown operation 'fly'"):
        compat.operations(names=["fly"])
    with pytest.raises(TypeError, match="names must be a list or tuple"):
        compat.operations(names="sethostname")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="names must be operation names"):
        compat.operations(names=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="rootless must be a bool or None"):
        compat.operations(rootless="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be more than 0"):
        compat.operations(timeout=-1)


def test_require_accepts_the_answers_and_the_operations() -> None:
    probes = [
        _probe("conformance", "missing", "verdict"),
        _probe("rootful", "ok", "verdict"),
        _probe("sethostname", "missing", "operations"),
        _probe("sethostname", "missing", "rootless"),
    ]
    assert [p.name for p in compat.require("rootful,conformance", probes)] == ["conformance"]
    assert [p.group for p in compat.require("sethostname", probes)] in (
        ["operations"],
        ["rootless"],
    )
    names = compat.requirement_names()
    assert len(names) == len(set(names))
    assert {"rootful", "conformance", "mount.proc", "cgroup.create"} <= set(names)


def test_check_table_colours_only_when_asked() -> None:
    import re

    from nsprim.cli.check import render_check

    probes = [_probe("user", "ok"), _probe("net", "missing"), _probe("x", "absent", "syscalls")]
    plain = render_check(probes)
    painted = render_check(probes, paint=True)
    assert "\033[" not in plain
    assert "\033[32mOK\033[0m" in painted and "\033[31mMISSING\033[0m" in painted
    assert re.sub(r"\033\[[0-9;]*m", "", painted) == plain  # same columns, same widths


def test_explain_applies_the_engines_rules_to_an_errno_seen_elsewhere() -> None:
    filtered = _facts(seccomp=facts.Seccomp("2", 1), version=(6, 18, 0))
    r = compat.explain("clone3", errno.ENOSYS, facts=filtered)
    assert (r.state, r.source) == ("refused", "seccomp")
    assert r.cause == "clone3(2) returns ENOSYS from a seccomp filter (Linux 6.18 has it)"
    r = compat.explain("sethostname", errno.EPERM, facts=filtered, rootless=True)
    assert r.source == "seccomp" and "sethostname(2)" in r.cause
    capped = _facts(sysctls={"user.max_pid_namespaces": 0})
    r = compat.explain("unshare", errno.ENOSPC, nstype="pid", facts=capped)
    assert (r.source, r.cause) == ("limit", "user.max_pid_namespaces is 0")
    with pytest.raises(ValueError, match="call must be one of unshare"):
        compat.explain("reboot", errno.EPERM)
    with pytest.raises(TypeError, match="err must be an errno number"):
        compat.explain("unshare", "EPERM")  # type: ignore[arg-type]
    for bad in (0, -1, 10**30):
        with pytest.raises(ValueError, match="err must be a positive errno below 4096"):
            compat.explain("unshare", bad)
    with pytest.raises(TypeError, match="rootless must be a bool or None"):
        compat.explain("unshare", errno.EPERM, rootless="yes")  # type: ignore[arg-type]
