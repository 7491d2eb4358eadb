"""The raw layer's numbers agree with this machine's kernel headers.

A C program compiled with the machine's ``cc`` prints each constant from the
UAPI headers (``linux-libc-dev``); nothing here is re-typed from memory.
Skipped, with the reason, where no compiler or headers exist.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from nsprim._sys import consts as C
from nsprim._sys import nr, structs
from nsprim.errors import UnsupportedError

CC = shutil.which("cc") or shutil.which("gcc")

# name in nsprim -> C expression
SYSCALLS = [
    "unshare",
    "setns",
    "pivot_root",
    "pidfd_send_signal",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pidfd_open",
    "clone3",
    "pidfd_getfd",
    "mount_setattr",
]
CONSTS = [
    "CLONE_VM",
    "CLONE_FS",
    "CLONE_FILES",
    "CLONE_SIGHAND",
    "CLONE_PIDFD",
    "CLONE_VFORK",
    "CLONE_PARENT",
    "CLONE_THREAD",
    "CLONE_NEWNS",
    "CLONE_SYSVSEM",
    "CLONE_NEWCGROUP",
    "CLONE_NEWUTS",
    "CLONE_NEWIPC",
    "CLONE_NEWUSER",
    "CLONE_NEWPID",
    "CLONE_NEWNET",
    "CLONE_NEWTIME",
    "CLONE_CLEAR_SIGHAND",
    "CLONE_INTO_CGROUP",
    "MS_RDONLY",
    "MS_NOSUID",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_REMOUNT",
    "MS_BIND",
    "MS_MOVE",
    "MS_REC",
    "MS_PRIVATE",
    "MS_SLAVE",
    "MS_SHARED",
    "MS_UNBINDABLE",
    "MS_NOSYMFOLLOW",
    "MNT_FORCE",
    "MNT_DETACH",
    "MNT_EXPIRE",
    "UMOUNT_NOFOLLOW",
    "MOUNT_ATTR_RDONLY",
    "MOUNT_ATTR_NOSUID",
    "MOUNT_ATTR_NODEV",
    "MOUNT_ATTR_NOEXEC",
    "MOUNT_ATTR_IDMAP",
    "MOUNT_ATTR_NOSYMFOLLOW",
    "MOUNT_ATTR_SIZE_VER0",
    "OPEN_TREE_CLONE",
    "OPEN_TREE_CLOEXEC",
    "AT_RECURSIVE",
    "AT_EMPTY_PATH",
    "AT_SYMLINK_FOLLOW",
    "AT_HANDLE_FID",
    "MAX_HANDLE_SZ",
    "FD_PIDFS_ROOT",
    "FD_NSFS_ROOT",
    "MOVE_MOUNT_F_EMPTY_PATH",
    "NS_GET_USERNS",
    "NS_GET_PARENT",
    "NS_GET_NSTYPE",
    "NS_GET_OWNER_UID",
    "NS_GET_PID_FROM_PIDNS",
    "NS_GET_TGID_FROM_PIDNS",
    "NS_GET_PID_IN_PIDNS",
    "NS_GET_TGID_IN_PIDNS",
    "SIOCGSKNS",
    "PR_SET_PDEATHSIG",
    "CLONE_ARGS_SIZE_VER0",
    "CLONE_ARGS_SIZE_VER1",
    "CLONE_ARGS_SIZE_VER2",
]
PROGRAM = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <linux/sched.h>
#include <linux/mount.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#define P(name, expr) printf("%s %lld\n", name, (long long)(expr));
#define Q(name) P(#name, name)
#define OPT(name) IFDEF_##name
int main(void) {
@BODY@
    return 0;
}
"""


@pytest.fixture(scope="module")
def header_values() -> dict[str, int]:
    if CC is None:
        pytest.skip("no C compiler to read the kernel headers with")
    lines = [f'#ifdef __NR_{s}\n    P("__NR_{s}", __NR_{s})\n#endif' for s in SYSCALLS]
    lines += [f"#ifdef {c}\n    Q({c})\n#endif" for c in CONSTS]
    src = PROGRAM.replace("@BODY@", "\n".join(lines))
    with tempfile.TemporaryDirectory() as tmp:
        c = Path(tmp, "h.c")
        c.write_text(src)
        exe = Path(tmp, "h")
        proc = subprocess.run([CC, "-o", str(exe), str(c)], capture_output=True, text=True)
        if proc.returncode != 0:
            if not Path("/usr/include/linux/sched.h").exists():
                pytest.skip("kernel headers missing (install linux-libc-dev)")
            pytest.fail(f"header probe did not compile: {proc.stderr[:2000]}")
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.mark.parametrize("name", SYSCALLS)
def test_syscall_number_matches_headers(header_values: dict[str, int], name: str) -> None:
    key = f"__NR_{name}"
    if key not in header_values:
        pytest.skip(f"{key} is newer than this machine's headers")
    assert nr.nr(name) == header_values[key]


@pytest.mark.parametrize("name", CONSTS)
def test_constant_matches_headers(header_values: dict[str, int], name: str) -> None:
    if name not in header_values:
        pytest.skip(f"{name} is newer than this machine's headers")
    ours = getattr(structs, name, None)
    if ours is None:
        ours = getattr(C, name)
    assert ours == header_values[name], f"{name}: ours {ours:#x}, headers {header_values[name]:#x}"


def test_headers_were_really_read(header_values: dict[str, int]) -> None:
    # Guards the guard: a broken program that printed nothing would skip every case.
    assert len(header_values) > 50
    assert "__NR_clone3" in header_values


def test_nsfs_ioctls_use_the_nsio_type() -> None:
    assert C.NS_GET_USERNS == 0xB701
    assert C.ior(0xB7, 13, 8) == C.NS_GET_ID


def test_unknown_architecture_is_unsupported_not_a_guess() -> None:
    with pytest.raises(UnsupportedError, match="'vax'"):
        nr.table("vax")


@pytest.mark.parametrize("machine", nr.SUPPORTED_ARCHES)
def test_every_table_has_every_syscall(machine: str) -> None:
    t = nr.table(machine)
    assert {"unshare", "setns", "pivot_root", "clone3", "pidfd_open"} <= set(t)
    assert t["clone3"] == 435


def test_this_machine_is_supported() -> None:
    assert nr.table(platform.machine())["clone3"] == 435
