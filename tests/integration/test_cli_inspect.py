"""``nsprim check`` and ``nsprim ls`` end to end: exit codes, JSON schemas, lsns columns."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys

import pytest

from nsprim import compat
from nsprim.cli import build_parser, main
from nsprim.cli import check as cli_check

LSNS = shutil.which("lsns")


def _run(argv: list[str]) -> tuple[int, str]:
    ns = build_parser().parse_args(argv)
    out = io.StringIO()
    rc = ns.func(ns, out)
    return rc, out.getvalue()


def _old_kernel() -> bool:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    assert m
    return (int(m.group(1)), int(m.group(2))) < (6, 19)


@pytest.mark.needs_root
def test_check_json_schema_and_require_satisfied() -> None:
    rc, text = _run(["check", "--json", "--require", "user,net,pid"])
    assert rc == 0
    doc = json.loads(text)
    assert doc["schema"] == "nsprim-check/2"
    assert doc["kernel"] == os.uname().release
    assert set(doc["summary"]) == set(compat.STATUSES)
    assert sum(doc["summary"].values()) == len(doc["probes"])
    for p in doc["probes"]:
        assert set(p) == {
            "group",
            "name",
            "status",
            "value",
            "detail",
            "consequence",
            "needs_root",
            "source",
            "fix",
        }
        assert p["status"] in compat.STATUSES and p["group"] in compat.GROUPS
    types = {p["name"]: p["status"] for p in doc["probes"] if p["group"] == "namespaces"}
    eight = ["mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"]
    assert {t: types[t] for t in eight} == dict.fromkeys(eight, "ok")
    assert doc["require"] == {"names": ["user", "net", "pid"], "satisfied": True, "missing": []}


@pytest.mark.skipif(not _old_kernel(), reason="listns exists from Linux 6.19")
def test_check_require_missing_exits_1_and_names_it() -> None:
    rc, text = _run(["check", "--require", "user,listns"])
    assert rc == 1
    assert "required but not available here:" in text
    assert "listns: listns: not in this kernel (needs Linux 6.19)" in text
    rc, text = _run(["check", "--json", "--require", "listns"])
    doc = json.loads(text)
    assert rc == 1 and doc["require"]["satisfied"] is False
    assert [p["name"] for p in doc["require"]["missing"]] == ["listns"]


def test_check_require_unknown_name_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, text = _run(["check", "--require", "net,bogus"])
    assert rc == 2 and text == ""
    assert "unknown requirement 'bogus'; expected some of mnt, uts" in capsys.readouterr().err


def test_check_table_groups_and_consequences() -> None:
    rc, text = _run(["check"])
    assert rc == 0
    for g in compat.GROUPS:
        assert f"== {g} ==" in text
    assert re.search(r"^net\s+(OK|LIMITED|MISSING|UNKNOWN)\s+\S+.*: ", text, re.M)
    assert re.search(
        r"\d+ ok, \d+ limited, \d+ missing, \d+ unknown, \d+ not in this kernel\n$", text
    )


@pytest.mark.needs_root
@pytest.mark.skipif(LSNS is None, reason="util-linux lsns not installed")
def test_ls_table_has_lsns_columns_and_json_has_lsns_keys() -> None:
    assert LSNS is not None
    lsns_header = subprocess.run([LSNS], capture_output=True, timeout=30, check=True).stdout
    rc, text = _run(["ls"])
    assert rc == 0
    assert text.splitlines()[0].split() == lsns_header.decode().splitlines()[0].split()
    rc, text = _run(["ls", "--json"])
    doc = json.loads(text)
    lsns_doc = json.loads(
        subprocess.run([LSNS, "-J"], capture_output=True, timeout=30, check=True).stdout
    )
    assert list(doc) == list(lsns_doc) == ["namespaces"]
    lsns_keys = list(lsns_doc["namespaces"][0])
    for e in doc["namespaces"]:
        assert list(e)[: len(lsns_keys)] == lsns_keys
        assert {"dev", "id", "held", "owner", "owner_uid", "parent", "fds", "mounts"} <= set(e)
    me = os.stat("/proc/self/ns/net").st_ino
    assert any(e["type"] == "net" and e["ns"] == me for e in doc["namespaces"])


def test_ls_filters_by_type_and_pid() -> None:
    rc, text = _run(["ls", "--json", "--type", "net", "--type", "uts", "--pid", str(os.getpid())])
    assert rc == 0
    got = {(e["type"], e["ns"]) for e in json.loads(text)["namespaces"]}
    want = {(t, os.stat(f"/proc/self/ns/{t}").st_ino) for t in ("net", "uts")}
    assert got == want


def test_ls_tree_json_nests_children() -> None:
    rc, text = _run(["ls", "--json", "--tree"])
    assert rc == 0
    roots = json.loads(text)["namespaces"]
    me = os.stat("/proc/self/ns/user").st_ino
    top = [r for r in roots if r["type"] == "user" and r["ns"] == me]
    assert len(top) == 1
    kids = {(c["type"], c["ns"]) for c in top[0]["children"]}
    assert ("net", os.stat("/proc/self/ns/net").st_ino) in kids
    rc, text = _run(["ls", "--tree=pid"])
    assert rc == 0 and all(" pid " in f" {line} " for line in text.splitlines()[1:])


def test_ls_bad_type_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--type", "bogus"]) == 1  # as lsns -t bogus
    assert capsys.readouterr().err == (
        "nsprim ls: unknown namespace type: bogus\n"
        "Try 'nsprim ls --help' for more information.\n"
    )


def test_nsprim_main_dispatches_ls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "--json", "--pid", str(os.getpid()), "-t", "user"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["ns"] for e in doc["namespaces"]] == [os.stat("/proc/self/ns/user").st_ino]


def test_nsprim_check_as_a_command_exits_with_require_status() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nsprim", "check", "--json", "--require", "user"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    doc = json.loads(proc.stdout)
    assert proc.returncode == (0 if doc["require"]["satisfied"] else 1)


def test_render_helpers_are_pure() -> None:
    probe = compat.Probe(
        group="system", name="kernel", status="ok", value="6.18", detail="d", consequence="c"
    )
    text = cli_check.render_check([probe])
    assert "== system ==" in text and "kernel" in text and "1 ok, 0 limited" in text
