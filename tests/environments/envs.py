"""Run ``nsprim conformance`` under a given environment, built with nsprim's own means.

Each :class:`Environment` sets itself up in a forked child (a seccomp filter
from :mod:`nsprim.seccomp`, limits written inside a new user namespace,
capabilities dropped with capset(2), nested user/pid namespaces, a uid
change) and then runs the conformance CLI in that same process, so nothing
it changes reaches the caller. ``bubblewrap`` runs the CLI through
``bwrap`` where it is installed. Used by ``tests/environments/test_environments.py``
and by ``scripts/environments.py`` (the table in README.md, "In containers and CI").
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from nsprim import seccomp, syscalls
from nsprim.seccomp import Rule

__all__ = ["Environment", "Outcome", "ENVIRONMENTS", "run_in", "by_name"]

NEWNS, NEWUTS, NEWIPC, NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
NEWCGROUP, NEWPID, NEWUSER, NEWTIME = 0x02000000, 0x20000000, 0x10000000, 0x00000080
NS_ALL = NEWNS | NEWUTS | NEWIPC | NEWNET | NEWCGROUP | NEWPID | NEWUSER | NEWTIME
TYPES = ("user", "net", "ipc", "pid", "mnt", "uts", "time", "cgroup")
CAP_SYS_ADMIN = 21
#: podman's default capability set (containers.conf default_capabilities).
PODMAN_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31)  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL
# SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP
TIMEOUT = 240.0


@dataclass
class Outcome:
    """What one run of the CLI in an environment gave."""

    name: str
    status: int
    report: dict[str, Any] | None
    stderr: str

    @property
    def results(self) -> list[dict[str, Any]]:
        return [] if self.report is None else list(self.report["results"])

    @property
    def counts(self) -> dict[str, int]:
        out = {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0}
        for r in self.results:
            out[r["status"]] += 1
        return out

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.results}


@dataclass
class Environment:
    """A place users run nsprim in, rebuilt here by :attr:`setup` in a throwaway child.

    Attributes:
        name: short key (``"max_net=0"``).
        description: one line for the table.
        setup: runs in the child before the CLI; may fork (then only the
            process it returns ``True`` in runs the CLI; the other waits and
            passes on the exit status).
        args: extra CLI arguments (``--as-user nobody``).
        expect_nothing: nothing can be checked here (exit 32 expected).
        fakes: namespaces are faked here: FAILs naming the broken premise are right.
        available: whether this machine can build it (``bwrap`` installed...).
        command: run this argv instead of the in-process CLI (bubblewrap).
    """

    name: str
    description: str
    setup: Callable[[], None] = lambda: None
    args: Sequence[str] = ()
    expect_nothing: bool = False
    fakes: bool = False
    available: Callable[[], Optional[str]] = lambda: None
    command: Optional[Callable[[], list[str]]] = None
    skip_words: Sequence[str] = field(default_factory=tuple)


# -- building blocks (run in the child) ------------------------------------------


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _enter_userns(full: bool = True) -> None:
    """unshare(CLONE_NEWUSER) and map root: every id when root (the way a
    privileged runtime maps a container), else only the caller's own.

    A map of more than one's own id must be written from the parent user
    namespace, so for *full* the parent stays behind to write it, then waits
    and passes on the exit status.
    """
    uid, gid = os.geteuid(), os.getegid()
    if not (full and uid == 0):
        syscalls.unshare(NEWUSER)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
        return
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        syscalls.unshare(NEWUSER)
        os.write(ready_w, b"x")
        if os.read(go_r, 1) != b"x":
            os._exit(125)
        os.close(ready_w)
        os.close(go_r)
        return
    os.close(ready_w)
    os.close(go_r)
    ok = os.read(ready_r, 1) == b"x"
    if ok:
        _write(f"/proc/{pid}/uid_map", "0 0 4294967295")
        _write(f"/proc/{pid}/gid_map", "0 0 4294967295")
        os.write(go_w, b"x")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _fork_into_pid_ns() -> None:
    """unshare(CLONE_NEWPID) then fork: the child (pid 1 there) returns, the parent relays."""
    syscalls.unshare(NEWPID)
    _relay_fork()


def _relay_fork() -> None:
    pid = os.fork()
    if pid == 0:
        return
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _become(user: str) -> None:
    pw = pwd.getpwnam(user)
    os.setgroups([])
    os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
    os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
    syscalls.set_dumpable(True)
    os.chdir("/")


def _keep_caps(caps: Sequence[int]) -> None:
    mask = 0
    for c in caps:
        mask |= 1 << c
    _, permitted, _ = syscalls.capget()
    syscalls.capset(mask & permitted, mask & permitted, 0)


def _limit(nstype: str) -> Callable[[], None]:
    def setup() -> None:
        _enter_userns()
        _write(f"/proc/sys/user/max_{nstype}_namespaces", "0")

    return setup


def _runtime_seccomp() -> None:
    # moby's default profile without CAP_SYS_ADMIN: namespace and mount calls
    # are EPERM, clone with CLONE_NEW* flags too, clone3 is ENOSYS.
    rules = [Rule(n, errno.EPERM) for n in ("unshare", "setns", "mount", "umount2", "pivot_root")]
    rules.append(Rule("clone", errno.EPERM, arg0_mask=NS_ALL & 0xFFFFFFFF))
    rules.append(Rule("clone3", errno.ENOSYS))
    seccomp.install(rules)


def _podman() -> None:
    # podman's profile refuses these without CAP_SYS_ADMIN, and its default
    # capability set has no CAP_SYS_ADMIN; clone3 is ENOSYS there too.
    rules = [Rule(n, errno.EPERM) for n in ("sethostname", "setdomainname", "setns")]
    rules.append(Rule("clone3", errno.ENOSYS))
    seccomp.install(rules)
    _keep_caps(PODMAN_CAPS)


def _no_sys_admin() -> None:
    _, permitted, _ = syscalls.capget()
    keep = [c for c in range(64) if permitted & (1 << c) and c != CAP_SYS_ADMIN]
    _keep_caps(keep)


def _userns_refused() -> None:
    mask = NEWUSER
    seccomp.install(
        [
            Rule("unshare", errno.EPERM, arg0_mask=mask),
            Rule("clone", errno.EPERM, arg0_mask=mask),
            Rule("clone3", errno.ENOSYS),
        ]
    )
    _become("nobody")


def _rootless_in_rootless() -> None:
    _become("nobody")
    _enter_userns(full=False)


def _nested_user_pid() -> None:
    _enter_userns()
    _fork_into_pid_ns()  # /proc stays the host's: nothing remounts it


def _fake_success() -> None:
    # Real throwaway namespaces first, so nothing a check does reaches the host...
    syscalls.unshare(NEWNS | NEWUTS | NEWIPC | NEWNET | NEWCGROUP)
    syscalls.mount("none", "/", None, 16384 | (1 << 18))  # MS_REC | MS_PRIVATE
    _fork_into_pid_ns()
    syscalls.mount("proc", "/proc", "proc", 2 | 4 | 8)
    # ...then unshare and setns return 0 and do nothing (an incomplete sandbox).
    seccomp.install(
        [
            Rule("unshare", 0),
            Rule("setns", 0),
            Rule("clone", errno.EPERM, arg0_mask=NS_ALL & 0xFFFFFFFF),
            Rule("clone3", errno.ENOSYS),
        ]
    )


def _bwrap_missing() -> str | None:
    return None if shutil.which("bwrap") else "bwrap is not installed (apt-get install bubblewrap)"


def _bwrap_command() -> list[str]:
    return [
        shutil.which("bwrap") or "bwrap",
        "--unshare-user",
        "--uid",
        "0",
        "--gid",
        "0",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--dev-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--die-with-parent",
        "--",
        sys.executable,
        "-m",
        "nsprim.conformance",
    ]


ENVIRONMENTS: list[Environment] = [
    Environment("host root", "root on the host (the reference)"),
    Environment("host nobody", "--as-user nobody (rootless)", args=("--as-user", "nobody")),
    Environment(
        "runtime seccomp",
        "a container runtime's default seccomp profile (unshare/setns/mount EPERM, clone3 ENOSYS)",
        setup=_runtime_seccomp,
        expect_nothing=True,
    ),
    Environment(
        "podman default",
        "podman's profile (sethostname/setdomainname/setns EPERM, clone3 ENOSYS) and capabilities",
        setup=_podman,
    ),
    *(
        Environment(
            f"max_{t}=0",
            f"user.max_{t}_namespaces = 0, set inside a user namespace",
            setup=_limit(t),
            # Without a mount namespace, checks that mount say they cannot. The limit is set
            # inside a (full-map) user namespace: checks that need the initial one say so.
            skip_words=(
                ("mount", "not the initial user namespace")
                if t == "mnt"
                else ("not the initial user namespace",)
            ),
        )
        for t in TYPES
    ),
    Environment(
        "userns refused",
        "unprivileged user namespaces refused (seccomp), as nobody",
        setup=_userns_refused,
        expect_nothing=True,
    ),
    Environment(
        "rootless in rootless",
        "nobody, inside a user namespace nobody created",
        setup=_rootless_in_rootless,
        skip_words=("cgroup",),
    ),
    Environment("no CAP_SYS_ADMIN", "root without CAP_SYS_ADMIN (capset)", setup=_no_sys_admin),
    Environment(
        "nested user+pid",
        "inside a nested user and pid namespace, with the host's /proc",
        setup=_nested_user_pid,
        # root there has a full uid_map but no capability in the initial user namespace
        skip_words=("not the initial user namespace",),
    ),
    Environment(
        "bubblewrap",
        "inside bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-net",
        available=_bwrap_missing,
        command=_bwrap_command,
        skip_words=("proc",),
    ),
    Environment(
        "fake success",
        "unshare/setns return 0 and do nothing (seccomp), inside real throwaway namespaces",
        setup=_fake_success,
        fakes=True,
    ),
]


def by_name(name: str) -> Environment:
    for env in ENVIRONMENTS:
        if env.name == name:
            return env
    raise KeyError(name)


# -- running ------------------------------------------------------------------------


def _preload() -> None:
    """Import what the CLI imports lazily while everything is still readable."""
    from nsprim.conformance import cli, runner
    from nsprim.conformance.registry import load_checks
    from nsprim.conformance.report import json as _json  # noqa: F401
    from nsprim.conformance.report import table as _table  # noqa: F401

    load_checks()
    for name in runner._PRELOAD:
        __import__(name)
    del cli


def _child(env: Environment, argv: list[str], out_w: int, err_w: int) -> None:
    code = 125
    try:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        # pytest (or any caller) may have replaced sys.stdout/sys.stderr
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        env.setup()
        from nsprim.conformance import cli

        code = cli.main(argv)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException as exc:
        with_text = f"environment {env.name!r}: setup or run raised {type(exc).__name__}: {exc}\n"
        os.write(2, with_text.encode())
        code = 125
    finally:
        os._exit(code)


def _collect(fds: list[int], deadline: float, on_timeout: Callable[[], None]) -> list[bytes]:
    bufs = {fd: b"" for fd in fds}
    open_fds = set(fds)
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            on_timeout()
            deadline = time.monotonic() + 10
        ready, _, _ = select.select(list(open_fds), [], [], max(left, 0.1))
        for fd in ready:
            data = os.read(fd, 1 << 16)
            if data:
                bufs[fd] += data
            else:
                open_fds.discard(fd)
                os.close(fd)
    return [bufs[fd] for fd in fds]


def run_in(env: Environment, extra: Sequence[str] = ("--controls",), jobs: int = 2) -> Outcome:
    """Run ``nsprim conformance --format json *extra*`` in *env*; return what it gave.

    Raises:
        RuntimeError: the environment is not available on this machine.
    """
    missing = env.available()
    if missing:
        raise RuntimeError(f"{env.name}: {missing}")
    argv = ["--format", "json", "--jobs", str(jobs), *extra, *env.args]
    if env.command is not None:
        proc = subprocess.run(
            [*env.command(), *argv], capture_output=True, timeout=TIMEOUT, check=False
        )
        out, err, status = proc.stdout, proc.stderr, proc.returncode
    else:
        _preload()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(out_r)
            os.close(err_r)
            _child(env, argv, out_w, err_w)
        os.close(out_w)
        os.close(err_w)

        def kill() -> None:
            os.kill(pid, signal.SIGKILL)

        out, err = _collect([out_r, err_r], time.monotonic() + TIMEOUT, kill)
        _, wstatus = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wstatus)
    report = None
    if out.strip():
        try:
            report = json.loads(out)
        except ValueError:
            report = None
    return Outcome(env.name, status, report, err.decode(errors="replace"))
