"""Unit tests of ``nsprim.compat`` helpers: capability decoding, --require, argument checks, the child runner."""

from __future__ import annotations

import errno
import os
import time

import pytest

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
    with pytest.raises(ValueError, match="timeout must be more than 0 and at most 86400 seconds, got 0"):
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
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


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
