"""``nsprim ls``'s lsns(8) options beyond the 2.38 core (issue 14).

Side by side with this machine's lsns (util-linux 2.38) where it has the
option, on namespaces this test made (other processes on the machine come and
go between two runs, so comparisons are restricted to lines that are ours);
-P, -Q and -H (util-linux 2.40+) against lsns(8)'s documented behaviour.
Namespaces, mounts and interfaces made here live in throwaway namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.needs_root

LSNS = shutil.which("lsns")
UNSHARE = shutil.which("unshare")
needs_lsns = pytest.mark.skipif(LSNS is None, reason="util-linux lsns not installed")
NSPRIM = [sys.executable, "-m", "nsprim", "ls"]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def ours(*args: str) -> subprocess.CompletedProcess[str]:
    return run([*NSPRIM, *args])


def theirs(*args: str) -> subprocess.CompletedProcess[str]:
    # lsns exits 1 without a word when a process vanishes under its scan (other
    # tests' processes come and go): ask again, a few times
    for _ in range(3):
        r = run([LSNS or "lsns", *args])
        if r.returncode != 1 or r.stderr:
            break
    return r


@pytest.fixture
def tree() -> Iterator[tuple[int, int]]:
    """(inode, pid): a new uts namespace holding a small process tree (sh, two sleeps)."""
    with subprocess.Popen(
        [UNSHARE or "unshare", "-u", "sh", "-c", "sleep 60 & sleep 61 & echo go; wait"],
        stdout=subprocess.PIPE,
        text=True,
    ) as p:
        try:
            assert p.stdout is not None and p.stdout.readline() == "go\n"
            deadline = time.monotonic() + 10
            # both sleeps have exec'd (their comm is no longer sh)
            while sorted(_comms(p.pid)) != ["sleep", "sleep"]:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            yield os.stat(f"/proc/{p.pid}/ns/uts").st_ino, p.pid
        finally:
            for child in _children(p.pid):
                os.kill(child, 9)
            p.kill()
            p.wait()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def _comms(pid: int) -> list[str]:
    out = []
    for child in _children(pid):
        with open(f"/proc/{child}/comm") as f:
            out.append(f.read().strip())
    return out


@needs_lsns
@pytest.mark.parametrize(
    "args",
    [[], ["-J"], ["-r"], ["-n"], ["-l"], ["-o", "PID,COMMAND"], ["-o", "+NS,TYPE"], ["-J", "-l"]],
    ids=lambda a: " ".join(a) or "default",
)
def test_namespace_argument_lists_its_processes_like_lsns(
    tree: tuple[int, int], args: list[str]
) -> None:
    ino, _ = tree
    a, b = ours(*args, str(ino)), theirs(*args, str(ino))
    assert (a.returncode, a.stderr) == (b.returncode, b.stderr) == (0, "")
    if "-J" in args:  # the same document (lsns indents by 3, nsprim by 2)
        assert json.loads(a.stdout) == json.loads(b.stdout)
    else:
        assert a.stdout == b.stdout
    assert "sleep" in a.stdout


@needs_lsns
@pytest.mark.skipif(UNSHARE is None, reason="util-linux unshare not installed")
@pytest.mark.parametrize(
    "args",
    [["-t", "uts", "-o", "TYPE,NS,PID,PPID"], ["-n", "-o", "PPID,PID,TYPE,USER"], ["-t", "pid"]],
    ids=" ".join,
)
def test_small_pids_get_lsns_widths(args: list[str]) -> None:
    # In a fresh PID namespace the PIDs are 1, 2, ...: narrower than the width
    # hints, where libsmartcols gives PID 5 columns but PPID and TYPE only their
    # header's width (a pristine container's PIDs showed this; this machine's
    # are too wide to). The listers list only the namespace's own processes;
    # NPROCS and COMMAND tell the two listers apart, so the columns leave them out.
    if "-t" in args and "-o" not in args:
        args = [*args, "-o", "NS,TYPE,PID,PPID,USER"]
    script = 'lsns "$@"; echo "rc=$?"; "$0" -m nsprim ls "$@"; echo "rc=$?"'
    r = run(
        [UNSHARE or "unshare", "-pf", "--mount-proc", "sh", "-c", script, sys.executable, *args]
    )
    assert (r.returncode, r.stderr) == (0, "")
    theirs_out, ours_out, rest = r.stdout.split("rc=")
    assert rest == "0\n" and ours_out.startswith("0\n")
    assert ours_out[2:] == theirs_out
    pid = args[args.index("-o") + 1].split(",").index("PID")
    assert "1" in [line.split()[pid] for line in theirs_out.splitlines()]


@needs_lsns
def test_process_tree_like_lsns(tree: tuple[int, int]) -> None:
    # lsns's default is the process tree; nsprim's is a flat list, -T process asks for it.
    # -p: only the namespaces of our process (kthreadd's for the initial ones); NPROCS
    # left out, as other processes come and go between the two runs.
    _, pid = tree
    cols = ["-o", "NS,TYPE,PID,PPID,USER,COMMAND"]
    a = ours("-p", str(pid), "--tree=process", *cols)
    b = theirs("-p", str(pid), *cols)
    assert (a.returncode, a.stdout) == (b.returncode, b.stdout), (a.stderr, b.stderr)
    a = ours("-p", str(pid), "-Tprocess", "-J", *cols)
    b = theirs("-p", str(pid), "-J", *cols)
    assert json.loads(a.stdout) == json.loads(b.stdout)


@needs_lsns
@pytest.mark.parametrize(
    "args",
    [
        ["-J", "-r"],
        ["abc"],
        ["18446744073709551616"],
        ["123"],
        ["-p", "1", "4026531836"],
        ["-Tbogus"],
        ["-T", "process"],  # -T's value must be attached: 'process' is the namespace argument
    ],
    ids=lambda a: " ".join(a),
)
def test_refusals_like_lsns(args: list[str]) -> None:
    a, b = ours(*args), theirs(*args)
    assert a.returncode == b.returncode == 1, (a.stderr, b.stderr)
    assert a.stderr.replace("nsprim ls:", "lsns:") == b.stderr
    assert a.stdout == b.stdout == ""


@needs_lsns
@pytest.mark.parametrize("args", [["--output-all"], ["-t", "net"]], ids=" ".join)
def test_headers_like_lsns(args: list[str]) -> None:
    # the same columns (the widths follow libsmartcols' layout only where the table fits)
    a, b = ours(*args, "-l"), theirs(*args, "-l")
    assert a.stdout.splitlines()[0].split() == b.stdout.splitlines()[0].split()


_NETNSID = textwrap.dedent(
    """
    # in a network namespace of this test only: a second one joined to it by a veth
    unshare -n sleep 60 &
    peer=$!
    while [ "$(readlink /proc/$peer/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do :; done
    ip link add nsprim-a type veth peer name nsprim-b netns $peer
    echo "$(stat -Lc %i /proc/$peer/ns/net) $(stat -Lc %i /proc/self/ns/net)"
    "$@" -t net -n -o NS,NETNSID -l
    echo --
    lsns -t net -n -o NS,NETNSID -l
    kill $peer
    """
)


@needs_lsns
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's ip not installed")
def test_netnsid_like_lsns() -> None:
    r = run([UNSHARE or "unshare", "-n", "sh", "-c", _NETNSID, "sh", sys.executable, "-m",
             "nsprim", "ls"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    first, rest = r.stdout.split("\n", 1)
    peer, own = first.split()
    # other processes' namespaces may come and go between the two listings
    mine, util = ({ln.split()[0]: ln.split()[1:] for ln in part.splitlines()}
                  for part in rest.split("--\n"))  # fmt: skip
    # the peer got an id from the veth; our own namespace and the host's have none here
    assert mine[peer] == util[peer] == ["0"], (mine, util)
    assert mine[own] == util[own] == ["unassigned"], (mine, util)


_PERSIST = textwrap.dedent(
    """
    # a private mount namespace of this test: the bind mount dies with it
    dir=$(mktemp -d /tmp/nsprim-ls-P.XXXXXX)
    touch $dir/uts
    unshare --uts=$dir/uts true
    echo "$(stat -Lc %i $dir/uts) $dir/uts"
    "$@" -P -t uts -n -o NS,TYPE,NPROCS,NSFS
    umount $dir/uts
    rm -r $dir
    """
)


@needs_lsns
def test_persistent_lists_namespaces_without_processes() -> None:
    r = run([UNSHARE or "unshare", "-m", "--propagation", "private", "sh", "-c", _PERSIST, "sh",
             sys.executable, "-m", "nsprim", "ls"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    head, mine = r.stdout.split("\n", 1)
    ino, path = head.split()
    # lsns(8) 2.40+: "-P, --persistent: namespaces without processes" (2.38 does not
    # find a namespace only a bind mount holds)
    lines = [ln.split() for ln in mine.splitlines()]
    assert [ino, "uts", "0", path] in lines
    assert all(ln[2] == "0" for ln in lines)  # others' too: no process in any of them
    r = ours("-P", "-p", "1")
    assert (r.returncode, r.stderr) == (
        1,
        "nsprim ls: mutually exclusive arguments: --persistent --task\n",
    )


def test_filter_selects_lines(tree: tuple[int, int]) -> None:
    ino, pid = tree
    r = ours("-n", "-o", "NS,PID", "-Q", f'TYPE == "uts" && PID == {pid}')
    assert (r.returncode, r.stdout.split()) == (0, [str(ino), str(pid)]), r.stderr
    # word operators, a regular expression, a column not shown, !, parentheses
    r = ours("-n", "-o", "NS", "-Q", f'(TYPE eq "uts") and COMMAND =~ "^sh " and not NS != {ino}')
    assert r.stdout.split() == [str(ino)], r.stderr
    # JSON types: numbers compare as numbers, with libsmartcols' size suffixes
    r = ours("-J", "-o", "NS,NPROCS", "-Q", f"NS == {ino} && NPROCS >= 3 && NPROCS < 1K")
    assert json.loads(r.stdout) == {"namespaces": [{"ns": ino, "nprocs": 3}]}
    # in the namespace-argument view the filter picks processes
    r = ours("-n", "-o", "PID,COMMAND", "-Q", 'COMMAND == "sleep 61"', str(ino))
    assert r.stdout.split()[1:] == ["sleep", "61"]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("NPROCS >", 'failed to parse "NPROCS >": syntax error, unexpected end of file'),
        ("(PID", 'failed to parse "(PID": syntax error, unexpected end of file'),
        ("PID == 1)", "failed to parse \"PID == 1)\": syntax error, unexpected ')'"),
        ("PID @ 1", "failed to parse \"PID @ 1\": syntax error, unexpected character '@'"),
        ("COMMAND =~ PID", 'failed to parse "COMMAND =~ PID": regular expression must be a string'),
        ("BOGUS == 1", "failed to initialize filter (unknown column: BOGUS)"),
    ],
)
def test_filter_errors_in_util_linux_form(expr: str, message: str) -> None:
    r = ours("-Q", expr)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"nsprim ls: {message}\n")


def test_list_columns() -> None:
    # lsns -H (2.40+): no headings; the holder right-aligned, its JSON type, what it shows
    r = ours("-H")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 13
    assert lines[0] == "     NS <integer> namespace identifier (inode number)"
    assert lines[9] == "NETNSID <string>  namespace ID as used by network subsystem"
    doc = json.loads(ours("-H", "-J").stdout)["lsns-columns"]
    assert [c["holder"] for c in doc] == (
        [
            "NS",
            "TYPE",
            "PATH",
            "NPROCS",
            "PID",
            "PPID",
            "COMMAND",
            "UID",
            "USER",
            "NETNSID",
            "NSFS",
            "PNS",
            "ONS",
        ]
    )
    assert {c["holder"] for c in doc if c["type"] == "<integer>"} == {
        "NS", "NPROCS", "PID", "PPID", "UID", "PNS", "ONS"
    }  # fmt: skip
    if LSNS is not None:  # the same descriptions as lsns --help's column list
        helptext = theirs("--help").stdout
        for c in doc:
            assert f"{c['holder']}  {c['description']}" in helptext


def test_every_column_in_json(tree: tuple[int, int]) -> None:
    ino, pid = tree
    r = ours("-J", "--output-all", "-Q", f"NS == {ino}")
    (entry,) = json.loads(r.stdout)["namespaces"]
    assert entry == {
        "ns": ino, "type": "uts", "path": f"/proc/{pid}/ns/uts", "nprocs": 3, "pid": pid,
        "ppid": os.getpid(), "command": entry["command"], "uid": 0, "user": "root",
        "netnsid": None, "nsfs": None, "pns": 0, "ons": os.stat("/proc/self/ns/user").st_ino,
    }  # fmt: skip
    assert entry["command"].startswith("sh -c sleep 60")
