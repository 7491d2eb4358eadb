"""``nsprim run --TYPE=FILE`` (persistent namespaces) side by side with util-linux unshare(1).

Every command that binds runs inside a throwaway mount namespace made by
``nsprim.call(..., namespaces=["mnt"])`` whose mounts are private, on a tmpfs
mounted there, so the host's mount table never changes. Each case runs the
same command through ``nsprim run`` and ``unshare --fork`` and compares the
exit status and what is observable: the FILE is a bind mount of the very
namespace the command ran in, after the command (its last process) is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import nsprim
from nsprim import Namespace, syscalls
from nsprim.flags import MountFlags

pytestmark = pytest.mark.needs_root  # mounting and most namespace types need root here

UNSHARE = shutil.which("unshare")
needs_unshare = pytest.mark.skipif(UNSHARE is None, reason="util-linux unshare not installed")

NSPRIM = [sys.executable, "-m", "nsprim", "run"]
LONG = {"mnt": "mount", "uts": "uts", "ipc": "ipc", "net": "net", "pid": "pid",
        "user": "user", "cgroup": "cgroup", "time": "time"}  # fmt: skip


def _mounts() -> list[str]:
    with open("/proc/thread-self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _run(argv: list[str]) -> tuple[int, str, str]:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def _throwaway(fn: Any, *args: Any) -> Any:
    """Run *fn* in a new private mount namespace on a tmpfs over *args[0]*."""

    def body(d: str, *rest: Any) -> Any:
        syscalls.mount("tmpfs", d, "tmpfs", 0)
        return fn(d, *rest)

    return nsprim.call(body, *args, namespaces=["mnt"], timeout=90)


def _persisted(path: str) -> str:
    ns = Namespace.from_path(path)
    return f"{ns.type.value}:[{ns.ino}]"


def _one_type(d: str, t: str, tool: str) -> dict[str, Any]:
    """Run the command with --TYPE=FILE through *tool*; what can be seen afterwards."""
    path = os.path.join(d, f"{tool}-{t}")
    open(path, "w").close()
    before = _mounts()
    opts = [f"--{LONG[t]}={path}"] + (["-r"] if t == "user" else [])
    argv = (NSPRIM if tool == "nsprim" else [UNSHARE or "unshare", "--fork"]) + opts
    rc, out, err = _run([*argv, "readlink", f"/proc/self/ns/{t}"])
    res: dict[str, Any] = {"rc": rc, "err": err, "ran_in": out}
    if rc == 0:
        res["persisted"] = _persisted(path)  # the command is gone; the bind holds it
        res["mounted"] = path in _mounts()
        res["is_new"] = res["persisted"] != f"{t}:[{os.stat(f'/proc/self/ns/{t}').st_ino}]"
        nsprim.unpersist(path)
        res["gone"] = _mounts() == before and not os.path.exists(path)
    return res


@needs_unshare
@pytest.mark.parametrize("t", ["uts", "ipc", "net", "pid", "user", "cgroup", "time"])
def test_type_file_persists_like_unshare(tmp_path: Path, t: str) -> None:
    def both(d: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return _one_type(d, t, "nsprim"), _one_type(d, t, "unshare")

    ours, theirs = _throwaway(both, str(tmp_path))
    assert ours["rc"] == 0, ours
    checked = [ours]
    if t == "user" and theirs["rc"] == 1 and theirs["err"].endswith("Operation not permitted"):
        # unshare 2.38 binds /proc/PID/ns/user of itself after unshare(2) made it
        # non-dumpable, and the kernel refuses its bind child here (EPERM): nsprim is
        # held to the man page's promise instead ("a persistent namespace is created
        # by a bind mount").
        pass
    else:
        assert theirs["rc"] == 0, theirs
        checked.append(theirs)
    for res in checked:
        # the file holds the namespace the command ran in, a new one, after its last process
        assert res["persisted"] == res["ran_in"], res
        assert res["mounted"] and res["is_new"] and res["gone"], res
    assert list(tmp_path.iterdir()) == []


def _mount_file(d: str, runs: int) -> list[dict[str, Any]]:
    return [_one_type(d, "mnt", "nsprim") for _ in range(runs)]


def test_mount_file_persists_every_time(tmp_path: Path) -> None:
    # The kernel binds a mount namespace file only when the namespace's id is above
    # the caller's; on 6.18 ids come in per-CPU batches, so unshare 2.38 fails here
    # now and then (EINVAL). nsprim makes the namespace again (on each CPU in turn)
    # before the command runs: every run must succeed.
    results = _throwaway(_mount_file, str(tmp_path), 12)
    for res in results:
        assert res["rc"] == 0, res
        assert res["persisted"] == res["ran_in"] and res["is_new"], res
        assert res["mounted"] and res["gone"], res


@needs_unshare
def test_mount_file_like_unshare_when_unshare_gets_a_newer_namespace(tmp_path: Path) -> None:
    def theirs(d: str) -> list[dict[str, Any]]:
        return [_one_type(d, "mnt", "unshare") for _ in range(4)]

    for res in _throwaway(theirs, str(tmp_path)):
        if res["rc"] != 0:  # the per-CPU id batch trap (see above): the kernel's EINVAL
            assert res["err"].endswith("Invalid argument"), res
            continue
        assert res["persisted"] == res["ran_in"] and res["is_new"], res
        assert res["mounted"] and res["gone"], res


def _shared_parent(d: str, tool: str) -> tuple[int, str, bool]:
    sub = os.path.join(d, tool)
    os.mkdir(sub)
    syscalls.mount("tmpfs", sub, "tmpfs", 0)
    syscalls.mount(None, sub, None, MountFlags.SHARED)
    path = os.path.join(sub, "mnt")
    open(path, "w").close()
    before = _mounts()
    argv = NSPRIM if tool == "nsprim" else [UNSHARE or "unshare", "--fork"]
    # --propagation unchanged: the new namespace's copy of the mount stays a peer,
    # so the kernel must refuse unshare's bind too (with the default 'private'
    # unshare 2.38 races its own child's propagation change and sometimes binds).
    rc, _, err = _run([*argv, "--propagation", "unchanged", f"--mount={path}", "true"])
    return rc, err, _mounts() == before


@needs_unshare
def test_mount_file_on_a_shared_mount_fails_like_unshare(tmp_path: Path) -> None:
    # unshare(1): "file must be located on a mount whose propagation type is not
    # shared (or an error results)"; the kernel's EINVAL for unshare, nsprim says why.
    ours = _throwaway(_shared_parent, str(tmp_path), "nsprim")
    theirs = _throwaway(_shared_parent, str(tmp_path), "unshare")
    assert ours[0] == theirs[0] == 1, (ours, theirs)
    assert re.fullmatch(r"nsprim run: mount /proc/\d+/ns/mnt on .*/nsprim/mnt failed: .*", ours[1])
    assert theirs[1].endswith("Invalid argument"), theirs
    assert "make-private" in ours[1] and ours[2], ours  # nothing left mounted


def _missing(d: str, tool: str) -> tuple[int, str]:
    argv = NSPRIM if tool == "nsprim" else [UNSHARE or "unshare", "--fork"]
    rc, _, err = _run([*argv, f"--uts={d}/nonexistent", "true"])
    return rc, re.sub(r"^(nsprim run|unshare): ", "", re.sub(r"/proc/\d+/", "/proc/PID/", err))


@needs_unshare
def test_missing_file_fails_like_unshare(tmp_path: Path) -> None:
    ours = _throwaway(_missing, str(tmp_path), "nsprim")
    theirs = _throwaway(_missing, str(tmp_path), "unshare")
    assert ours == theirs, (ours, theirs)  # same status, same words (pid aside)
    assert ours[0] == 1 and ours[1].endswith("failed: No such file or directory")


def _all_or_nothing(d: str) -> tuple[int, str, bool, bool]:
    good, marker = os.path.join(d, "uts"), os.path.join(d, "ran")
    open(good, "w").close()
    before = _mounts()
    rc, _, err = _run([*NSPRIM, f"--uts={good}", f"--net={d}/missing", "touch", marker])
    return rc, err, _mounts() == before, os.path.exists(marker)


def test_a_failed_bind_undoes_the_others_and_runs_nothing(tmp_path: Path) -> None:
    rc, err, clean, ran = _throwaway(_all_or_nothing, str(tmp_path))
    assert rc == 1 and "/missing failed: No such file or directory" in err, err
    assert clean, "the uts bind made before the net one failed is undone"
    assert not ran, "the command must not run when a bind failed"


@needs_unshare
@pytest.mark.parametrize("args", [["-un=/x", "true"], ["-n/x", "true"], ["--net=", "true"]])
def test_short_flags_take_no_file_like_unshare(args: list[str]) -> None:
    # unshare's getopt string lists -m -u -i -n -p -U -C -T without a colon: only
    # the long forms take =FILE. (An empty FILE fails as a missing file.)
    ours = _run([*NSPRIM, *args])
    theirs = _run([UNSHARE or "unshare", "--fork", *args])
    assert ours[0] == theirs[0] == 1, (ours, theirs)
    first = [e.splitlines()[0].split(": ", 1)[1] for e in (ours[2], theirs[2])]
    assert re.sub(r"/proc/\d+/", "", first[0]) == re.sub(r"/proc/\d+/", "", first[1])


def test_short_flags_cluster() -> None:
    rc, out, err = _run([*NSPRIM, "-nu", "readlink", "/proc/self/ns/net", "/proc/self/ns/uts"])
    assert rc == 0, err
    mine = [f"{t}:[{os.stat(f'/proc/self/ns/{t}').st_ino}]" for t in ("net", "uts")]
    theirs = out.split()
    assert len(theirs) == 2 and theirs[0] != mine[0] and theirs[1] != mine[1]


def _never_bindable(d: str) -> tuple[int, str, int, bool, list[int]]:
    import contextlib
    import io

    from nsprim.cli import main
    from nsprim.cli import run as run_mod

    seen: list[int] = []

    def refuse(pid: int) -> bool:
        seen.append(pid)
        return False

    run_mod._mnt_bindable = refuse  # as if every new mount namespace were older
    path = os.path.join(d, "mnt")
    open(path, "w").close()
    before = _mounts()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", f"--mount={path}", "--", "touch", os.path.join(d, "ran")])
    alive = [p for p in seen if os.path.exists(f"/proc/{p}")]
    return rc, err.getvalue(), len(seen), _mounts() == before and not alive, os.listdir(d)


def test_mount_file_gives_up_after_bounded_tries_and_leaves_nothing(tmp_path: Path) -> None:
    # The negative control of the retry: when no new namespace is ever bindable,
    # nsprim stops after MNT_TRIES namespaces (each killed and reaped, the command
    # never run) and says why in unshare's form.
    from nsprim.cli.run import MNT_TRIES

    rc, err, spawned, clean, left = _throwaway(_never_bindable, str(tmp_path))
    assert rc == 1 and spawned == MNT_TRIES, (rc, err, spawned)
    assert re.fullmatch(
        rf"nsprim run: mount /proc/\d+/ns/mnt on .*/mnt failed: the kernel binds only a mount "
        rf"namespace newer than the caller's, and {MNT_TRIES} new ones were all older\n",
        err,
    ), err
    assert clean and left == ["mnt"]  # no mount, no process, the command never ran
