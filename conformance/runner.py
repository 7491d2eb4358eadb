"""Run conformance checks, each (and its negative control) in a fresh throwaway sandbox.

Layer: conformance. Imports the standard library, :mod:`nsprim` and the
conformance modules; reports and the CLI sit above it.

Process tree of one run (kselftest's fork-per-test, LTP's ``MS_REC |
MS_PRIVATE`` "no effect on a real system")::

    runner                       (as root, or the dropped ``--as-user`` worker)
     └─ launcher                 unshare(outer set) ; make / rec-private
         └─ sandbox init         pid 1 of a new pid ns; fresh /proc, tmpfs tmpdir
             └─ check worker     evaluates needs, runs the check, sends JSON

The sandbox adapts to what the environment allows. Before the first check
the runner probes, each in a throwaway child, which namespace types it can
create (mount, UTS, IPC, net, cgroup and pid; plus a user namespace mapping
the runner's uid to 0 when it is not privileged), and the outer set holds
those that work: under a seccomp profile, a ``user.max_*_namespaces`` limit
or without a capability some are missing. Then, inside one sandbox built
like the checks', it tries every operation checks rely on
(:func:`._needs.probe_operations`). A check runs only when its type, its
declared needs and those operations are available; otherwise it is a SKIP
that names the cause. What the sandbox could not isolate, the host guard
covers (:mod:`._guard`: hostname, IPC objects, mounts, interfaces, cgroups,
/tmp, the runner's children and fds; any difference is an extra ERROR).

Without a pid namespace the launcher is a child subreaper and kills what is
left when the check ends. The launcher dies with the runner (PDEATHSIG), the
init with the launcher, and everything in the pid namespace with the init,
so a killed or crashing run leaves nothing behind. Temporary files of the
run (each sandbox's tmpdir, and whatever checks create with :mod:`tempfile`)
live in one run directory that the outermost process removes. Results travel
back as one line of JSON per message over a pipe; the pipe reaches EOF only
once every process that could write to it is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import functools
import json
import os
import platform
import pwd
import re
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import nsprim
from nsprim import compat

from . import _context, _guard, _kernel, _needs
from ._context import Context, describe_exception, exception_detail, wait_status
from ._needs import (
    Availability,
    has_cap_sys_admin,
    is_privileged,
    kernel_version,
    probe_skip_reason,
    read_kconfig,
)
from ._needs import static_skip_reason as _static_skip_reason
from .outcome import CheckResult, Fail, Outcome, Skip, skipped_by_cause
from .registry import Check

__all__ = [
    "Run",
    "RunConfig",
    "run",
    "environment",
    "OUTER_TYPES",
    "OUTER_NAMESPACES",
    "skipped_by_cause",
]

#: The namespace types the outer sandbox unshares when it can (plus a user ns when rootless).
OUTER_TYPES = ("mnt", "uts", "ipc", "net", "cgroup", "pid")
#: Their CLONE_NEW* flags together.
OUTER_NAMESPACES = 0
for _t in OUTER_TYPES:
    OUTER_NAMESPACES |= _needs.NSTYPES[_t][0]
#: Seconds a run may use for sandbox setup on top of the check's own timeout.
SETUP_SLACK = 1.0
# The timeout multiplier (--timeout-mul, $NSPRIM_TIMEOUT_MUL) lives with the context.
TIMEOUT_MUL_ENV = _context.TIMEOUT_MUL_ENV
timeout_mul = _context.timeout_mul


#: Seconds to wait for a killed sandbox to go away before killing its launcher too.
KILL_GRACE = 5.0

ProgressFn = Callable[[int, int, CheckResult], None]


@dataclass
class RunConfig:
    """How checks are run; built by :func:`run`, shipped into every sandbox by fork.

    Attributes:
        rootless: not privileged: the sandbox wants a user namespace mapping the uid to 0.
        privileged: uid 0 with CAP_SYS_ADMIN in the initial user namespace.
        kernel: the running kernel's version.
        kconfig: its configuration, when readable.
        run_dir: the run's private temporary directory.
        userns: the sandbox creates a user namespace (rootless, and the kernel allows it).
        outer: the types (by /proc name) the sandbox isolates.
        outer_missing: the types it could not isolate, each with why.
        probed: every probed operation, see :mod:`._needs`.
    """

    rootless: bool
    privileged: bool
    kernel: tuple[int, int, int]
    kconfig: dict[str, str] | None
    run_dir: str = ""
    userns: bool = False
    outer: tuple[str, ...] = ()
    outer_missing: dict[str, Availability] = field(default_factory=dict)
    probed: dict[str, Availability] = field(default_factory=dict)

    @property
    def outer_flags(self) -> int:
        flags = 0
        for t in self.outer:
            flags |= _needs.NSTYPES[t][0]
        return flags


@dataclass
class Run:
    """A finished run: results in check order (guard results last), and the run's facts."""

    results: list[CheckResult]
    environment: dict[str, Any]
    started: str
    duration_s: float
    controls: bool = False

    @property
    def summary(self) -> dict[str, int]:
        """Count of results per status, every status present."""
        counts = {o.value: 0 for o in Outcome}
        for r in self.results:
            counts[r.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        """Nothing FAILed or ERRORed, and every control that ran discriminated."""
        return not any(r.problem for r in self.results)

    @property
    def checked_nothing(self) -> bool:
        """No check could run: every result is a SKIP (guard results aside)."""
        checks = [r for r in self.results if r.type != "guard"]
        return all(r.status is Outcome.SKIP for r in checks)

    @property
    def non_discriminating(self) -> list[CheckResult]:
        """The PASSing checks whose control did not FAIL."""
        return [r for r in self.results if r.status is Outcome.PASS and r.discriminating is False]


# -- environment ----------------------------------------------------------


def _distribution() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            continue
    return "unknown"


def environment(
    *, uid: int | None = None, rootless: bool | None = None, cfg: RunConfig | None = None
) -> dict[str, Any]:
    """Describe this machine for a report (the JSON schema's ``environment``).

    With *cfg* (a probed run), it also holds ``sandbox`` (the types the outer
    sandbox isolated, and why the others were not) and ``probed`` (each
    operation's availability).
    """
    uid = os.geteuid() if uid is None else uid
    if rootless is None:
        rootless = not is_privileged()
    env: dict[str, Any] = {
        "kernel": platform.release(),
        "arch": platform.machine(),
        "distribution": _distribution(),
        "uid": uid,
        "privileges": "user" if rootless else "root",
        "python": platform.python_version(),
    }
    if cfg is not None:
        env["sandbox"] = {
            "isolated": (["user"] if cfg.userns else []) + list(cfg.outer),
            "not_isolated": {t: a.cause for t, a in cfg.outer_missing.items()},
        }
        env["probed"] = {op: a.to_dict() for op, a in cfg.probed.items()}
    return env


# -- inside the sandbox (forked children; they never return) ---------------


def _emit(fd: int, msg: dict[str, Any]) -> None:
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _map_self_as_root(uid: int, gid: int) -> None:
    # user_namespaces(7): an unprivileged writer may map only its own
    # ids, one line, and gid_map needs setgroups=deny first.
    _write_file("/proc/self/setgroups", "deny")
    _write_file("/proc/self/uid_map", f"0 {uid} 1")
    _write_file("/proc/self/gid_map", f"0 {gid} 1")


def _child(fn: Callable[..., Any], *args: Any) -> nsprim.PendingCall:
    """Start ``fn(*args)`` in a child of this process (nsprim's child mechanism).

    No namespaces of its own and no parent-death signal: each process of the
    sandbox sets up both itself, as the tree above describes.
    """
    return nsprim.call_start(fn, *args, die_with_parent=False)


def _reap(child: nsprim.PendingCall) -> int | None:
    """Wait for *child* to end and reap it; return its wait status (None: reaped elsewhere)."""
    try:
        child.result()
    except nsprim.CallError as err:
        return wait_status(err.returncode)
    return 0


#: What runs in the sandbox's worker process: it gets the result pipe and sends messages.
Task = Callable[[RunConfig, str, int], None]


def _enter_outer(cfg: RunConfig, userns: bool, flags: int) -> None:
    """unshare the outer set (after a user namespace when *userns*), make / private."""
    if userns:
        uid, gid = os.geteuid(), os.getegid()
        _kernel.unshare(_kernel.CLONE_NEWUSER)
        _map_self_as_root(uid, gid)
    if flags:
        _kernel.unshare(flags)
    if flags & _kernel.CLONE_NEWNS:
        # Stop mount events propagating back to the host (util-linux unshare's default).
        _kernel.mount("none", "/", None, _kernel.MS_REC | _kernel.MS_PRIVATE)


def _kill_descendants() -> None:
    """Kill and reap every descendant (we are their subreaper), until none is left."""
    while True:
        kids = []
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/children") as f:
                kids += [int(p) for p in f.read().split()]
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            if not kids:
                return


def _launcher(task: Task, cfg: RunConfig, tmpdir: str, wfd: int, rfd: int) -> None:
    """First child: unshare the outer namespaces, fork the sandbox init, wait for it."""
    code = 1
    try:
        os.close(rfd)  # the runner's end
        # The CLI unwinds on SIGTERM/SIGHUP; a check must see the default
        # dispositions (an init ignores SIGTERM only when it has no handler).
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        _kernel.set_pdeathsig(signal.SIGKILL)
        _enter_outer(cfg, cfg.userns, cfg.outer_flags)
        if not cfg.outer_flags & _kernel.CLONE_NEWPID:
            # No pid namespace: adopt orphans instead, and kill them at the end.
            _kernel.set_child_subreaper(True)
        init = _child(_sandbox_init, task, cfg, tmpdir, wfd)
        _emit(wfd, {"init": init.pid})
        _reap(init)
        if not cfg.outer_flags & _kernel.CLONE_NEWPID:
            _kill_descendants()
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            _emit(
                wfd,
                {
                    "setup_error": f"outer sandbox: {describe_exception(exc)}",
                    "detail": exception_detail(exc),
                },
            )
    finally:
        os._exit(code)


def _sandbox_init(task: Task, cfg: RunConfig, tmpdir: str, wfd: int) -> None:
    """Pid 1 of the outer pid namespace: give it its own /proc, run the worker, reap."""
    try:
        _kernel.set_pdeathsig(signal.SIGKILL)
        flags = cfg.outer_flags
        mnt = bool(flags & _kernel.CLONE_NEWNS)
        proc_flags = _kernel.MS_NOSUID | _kernel.MS_NODEV | _kernel.MS_NOEXEC
        if mnt and flags & _kernel.CLONE_NEWPID:
            # Refused where /proc is partly masked (mount_too_revealing): the
            # worker then checks whether the /proc it sees is its own.
            with contextlib.suppress(OSError):
                _kernel.mount("proc", "/proc", "proc", proc_flags)
        if mnt:
            _private_tmp(tmpdir)
            with contextlib.suppress(OSError):  # a plain directory still works
                _kernel.mount("tmpfs", tmpdir, "tmpfs", _kernel.MS_NOSUID, "mode=1777")
        if mnt and flags & _kernel.CLONE_NEWIPC and os.path.isdir("/dev/mqueue"):
            with contextlib.suppress(OSError):  # so /dev/mqueue shows this IPC ns
                _kernel.mount("mqueue", "/dev/mqueue", "mqueue", proc_flags)
        worker = _child(_run_task, task, cfg, tmpdir, wfd)
        while True:
            # As pid 1, reap whatever is orphaned here too, until the worker ends.
            try:
                pid, status = os.waitpid(-1, 0)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if pid == worker.pid:
                break
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            _emit(wfd, {"crash": _status_text(status)})
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            _emit(
                wfd,
                {
                    "setup_error": f"sandbox init: {describe_exception(exc)}",
                    "detail": exception_detail(exc),
                },
            )
    finally:
        # Exiting kills every process left in the pid namespace (pid_namespaces(7)).
        os._exit(0)


def _run_task(task: Task, cfg: RunConfig, tmpdir: str, wfd: int) -> None:
    """The worker: run *task* with the run's tmpdir as every tempfile's home."""
    # Whatever a check creates with tempfile lands in the run's tmpdir.
    tempfile.tempdir = tmpdir
    os.environ["TMPDIR"] = tmpdir
    task(cfg, tmpdir, wfd)


def _private_tmp(tmpdir: str) -> None:
    """Cover the system's temporary directory with a tmpfs, keeping *tmpdir* reachable.

    Whatever a check writes under /tmp then vanishes with the sandbox's mount
    namespace. Not done when nsprim or the interpreter itself lives under it
    (a checkout in /tmp): a later lazy import would find nothing there.
    """
    top = tempfile.gettempdir()
    mine = (sys.prefix, os.path.dirname(os.path.abspath(nsprim.__file__)))
    if any(p == top or p.startswith(top + os.sep) for p in mine):
        return
    try:
        keep = os.open(tmpdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        _kernel.mount("tmpfs", top, "tmpfs", _kernel.MS_NOSUID, "mode=1777")
        os.makedirs(tmpdir, exist_ok=True)
        _kernel.mount(f"/proc/self/fd/{keep}", tmpdir, None, _kernel.MS_BIND)
    except OSError:
        # Undo a half-done cover: the checks then use /tmp as it is.
        with contextlib.suppress(OSError):
            _kernel.umount(top, _kernel.MNT_DETACH)
    finally:
        os.close(keep)


def _own_proc() -> bool:
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _needs_reason(check: Check, cfg: RunConfig) -> tuple[Outcome, str, str] | None:
    """Why *check* can't run in this sandbox, from what the runner probed; None if it can."""
    if check.type in cfg.outer_missing:
        a = cfg.outer_missing[check.type]
        status = Outcome.FAIL if a.state == _needs.BROKEN else Outcome.SKIP
        return status, a.cause, a.detail
    missing = _needs.unmet(_needs.ops_needed(check.type, check.needs), cfg.probed)
    if missing is not None:
        status = Outcome.FAIL if missing.state == _needs.BROKEN else Outcome.SKIP
        return status, missing.cause, missing.detail
    return None


def _call_of(exc: BaseException) -> str:
    """The nsprim call an error came from (``"unshare: Operation not permitted"`` → unshare)."""
    if isinstance(exc, nsprim.UnsupportedError):
        return str(exc.feature)
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else ""
    head, sep, _ = text.partition(": ")
    return head if sep and head.replace("_", "").isalnum() else ""


_POLICY_ERRNO_NAMES = ("EPERM", "EACCES", "ENOSPC", "EUSERS", "ENOSYS")
_CALL_WORD = re.compile(r"\b(unshare|setns|sethostname|setdomainname|mount|clone3|mount_setattr)\b")


def _refused_fail(exc: Fail, ctx: Context) -> Skip | None:
    """A FAIL that only saw a refusal by policy (the errno the probe found here), as a Skip.

    Checks compare errno names (``expected 'EINVAL', got 'ENOSYS'``); when the
    observed one is a policy errno and the failing sentence names an
    operation the probe found refused here, the operation was never
    permitted, so the guarantee was not tested.
    """
    actual = (exc.actual or "").strip("'\"")
    if actual not in _POLICY_ERRNO_NAMES:
        return None
    for call in _CALL_WORD.findall(exc.msg):
        skip = ctx.skip_for(getattr(errno, actual), call)
        if skip is not None:
            return skip
    return None


def _check_task(check: Check, control: bool) -> Task:
    def task(cfg: RunConfig, tmpdir: str, wfd: int) -> None:
        _worker(check, control, cfg, tmpdir, wfd)

    return task


def _worker(check: Check, control: bool, cfg: RunConfig, tmpdir: str, wfd: int) -> None:
    """Run the check (or its control) and send its result."""
    me = os.getpid()
    ctx = Context(
        control=control,
        privileged=cfg.privileged,
        as_user=cfg.rootless,
        kernel=cfg.kernel,
        tmpdir=tmpdir,
        check_id=check.id,
        probed=cfg.probed,
    )
    status, message, detail = Outcome.PASS, "", ""
    expected: str | None = None
    actual: str | None = None
    start = time.monotonic()
    try:
        unmet = _needs_reason(check, cfg)
        if unmet is not None:
            status, message, detail = unmet
        elif not _own_proc():
            raise Skip(
                "the /proc mounted here shows another pid namespace, "
                "and the sandbox could not mount its own"
            )
        else:
            reason = probe_skip_reason(check.needs)
            if reason:
                raise Skip(reason)
            check.func(ctx)
    except Fail as exc:
        status, message, expected, actual = Outcome.FAIL, exc.msg, exc.expected, exc.actual
        refused = _refused_fail(exc, ctx)
        if refused is not None:
            # The operation under test was refused by policy: nothing the
            # kernel did contradicts the guarantee, it just can't be checked.
            status, message, expected, actual = Outcome.SKIP, refused.reason, None, None
            detail = f"the check saw: {exc}"
    except Skip as exc:
        status, message = Outcome.SKIP, exc.reason
    except nsprim.UnsupportedError as exc:
        skip = ctx.skip_for(exc, _call_of(exc))
        # The kernel lacks a syscall or ioctl the check needs (ENOSYS and the
        # like): that is "can't run here", not broken set-up.
        status = Outcome.SKIP
        message = skip.reason if skip else f"not supported by this kernel: {exc}"
        detail = exception_detail(exc)
    except BaseException as exc:
        skip = ctx.skip_for(exc, _call_of(exc)) if isinstance(exc, OSError) else None
        if skip is not None:
            status, message = Outcome.SKIP, skip.reason
        else:
            status, message = Outcome.ERROR, describe_exception(exc)
        detail = f"{describe_exception(exc)} {exception_detail(exc)}".strip()
    if os.getpid() != me:
        # The check forked by hand and the child returned from it: not ours to report.
        os._exit(0)
    duration = time.monotonic() - start
    errors = ctx.run_cleanups()
    if errors:
        if status is not Outcome.PASS:
            errors.append(f"the check itself was {status.value}: {message}")
        status, message = Outcome.ERROR, "; ".join(errors)
    result = check.result(
        status, message, expected=expected, actual=actual, duration_s=duration, detail=detail
    ).to_dict()
    try:
        _emit(wfd, {"result": result})
    finally:
        os._exit(0)


def _probe_task(cfg: RunConfig, tmpdir: str, wfd: int) -> None:
    # nsprim check's engine, asked inside a sandbox like the checks', as this
    # process is (no further user namespace): one engine for both.
    found = compat.operations(rootless=False, timeout=5.0)
    probed = {op: Availability(r.state, r.cause, r.detail) for op, r in found.items()}
    _emit(wfd, {"probed": {op: a.to_dict() for op, a in probed.items()}})


def _status_words(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


def _status_text(status: int) -> str:
    return f"the check process {_status_words(status)} without reporting"


# -- the runner side --------------------------------------------------------


@dataclass
class _Job:
    check: Check
    control: bool
    task: Task | None = None
    launcher: nsprim.PendingCall | None = None
    pid: int = 0
    pidfd: int = -1
    rfd: int = -1
    init_pidfd: int = -1
    tmpdir: str = ""
    started: float = 0.0
    deadline: float = 0.0
    killed_at: float | None = None
    buf: bytes = b""
    messages: list[dict[str, Any]] = field(default_factory=list)
    result: CheckResult | None = None


def _start(job: _Job, cfg: RunConfig) -> None:
    job.tmpdir = tempfile.mkdtemp(prefix=f"{job.check.id}-", dir=cfg.run_dir or None)
    # As the tmpfs mounted over it would be: a check's mapped ids must reach it
    # when the sandbox has no mount namespace (the run directory is not listable).
    os.chmod(job.tmpdir, 0o1777)
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    job.started = time.monotonic()
    job.deadline = job.started + (job.check.timeout + SETUP_SLACK) * timeout_mul()
    task = job.task if job.task is not None else _check_task(job.check, job.control)
    try:
        # The sandbox processes write results into wfd; it must survive forks
        # (always true) but not leak into anything a check execs.
        job.launcher = _child(_launcher, task, cfg, job.tmpdir, wfd, rfd)
    except BaseException:
        os.close(rfd)
        raise
    finally:
        os.close(wfd)
    job.pid, job.pidfd, job.rfd = job.launcher.pid, job.launcher.pidfd, rfd


def _signal(pidfd: int, pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        elif pid > 0:
            os.kill(pid, signal.SIGKILL)


def _kill(job: _Job, cfg: RunConfig) -> None:
    """Kill the sandbox: its init (taking the whole pid ns along), else its launcher."""
    if job.init_pidfd >= 0 and cfg.outer_flags & _kernel.CLONE_NEWPID:
        _signal(job.init_pidfd, 0)
    else:
        # Without a pid namespace, the launcher's death (PDEATHSIG) takes the
        # init along, and the init's the worker; orphans go to our subreaper.
        _signal(job.pidfd, job.pid)
        if job.init_pidfd >= 0:
            _signal(job.init_pidfd, 0)


def _read(job: _Job) -> bool:
    """Read what is available; return False at EOF."""
    try:
        data = os.read(job.rfd, 65536)
    except InterruptedError:  # pragma: no cover - PEP 475 retries
        return True
    if not data:
        return False
    job.buf += data
    *lines, job.buf = job.buf.split(b"\n")
    for line in lines:
        try:
            msg = json.loads(line)
        except ValueError:  # a check wrote into the result pipe
            msg = {"setup_error": f"garbage on the result pipe: {line[:80]!r}"}
        job.messages.append(msg)
        if "init" in msg and job.init_pidfd < 0:
            # The launcher cannot reap the init before we look: it waits for it,
            # and the init cannot exit before the worker has reported or died.
            with contextlib.suppress(OSError):
                job.init_pidfd = os.pidfd_open(int(msg["init"]))
    return True


def _finish(job: _Job) -> CheckResult:
    os.close(job.rfd)
    job.rfd = -1
    status = 0
    if job.launcher is not None:  # it closes its pidfd when reaped
        status = _reap(job.launcher) or 0
        job.pidfd = -1
    if job.init_pidfd >= 0:
        os.close(job.init_pidfd)
    shutil.rmtree(job.tmpdir, ignore_errors=True)
    duration = time.monotonic() - job.started
    by_kind: dict[str, Any] = {}
    for msg in job.messages:
        for key, value in msg.items():
            by_kind.setdefault(key, value)
    check = job.check
    if "result" in by_kind:
        return CheckResult.from_dict(by_kind["result"])
    detail = str(by_kind.get("detail", ""))
    if job.killed_at is not None:
        message = f"timed out after {check.timeout * timeout_mul():g} s; the sandbox was killed"
    elif "setup_error" in by_kind:
        message = f"setup failed: {by_kind['setup_error']}"
    elif "crash" in by_kind:
        message = str(by_kind["crash"])
    else:
        message = f"the sandbox launcher {_status_words(status)} without reporting"
    return check.result(Outcome.ERROR, message, duration_s=duration, detail=detail)


def _schedule(
    pending: list[_Job],
    running: dict[int, _Job],
    done: dict[tuple[str, bool], CheckResult],
    cfg: RunConfig,
    jobs: int,
    report_ready: Callable[[], None],
) -> None:
    """Start, watch, time out and finish jobs until none is left."""
    while pending or running:
        serial_running = any(j.check.serial for j in running.values())
        while pending and len(running) < jobs and not serial_running:
            if pending[0].check.serial and running:
                break
            job = pending.pop(0)
            _start(job, cfg)
            running[job.rfd] = job
            serial_running = job.check.serial
        poller = select.poll()
        for fd in running:
            poller.register(fd, select.POLLIN)
        now = time.monotonic()
        wake = min(
            (j.deadline if j.killed_at is None else j.killed_at + KILL_GRACE)
            for j in running.values()
        )
        events = poller.poll(max(0.0, wake - now) * 1000 + 1)
        for fd, _ in events:
            job = running[fd]
            if not _read(job):
                del running[fd]
                job.result = _finish(job)
                done[(job.check.id, job.control)] = job.result
        now = time.monotonic()
        for job in running.values():
            if job.killed_at is None and now >= job.deadline:
                job.killed_at = now
                _kill(job, cfg)
            elif job.killed_at is not None and now >= job.killed_at + KILL_GRACE:
                _signal(job.pidfd, job.pid)  # the launcher hangs on: kill it too
        report_ready()


def _run_jobs(
    checks: Sequence[Check],
    cfg: RunConfig,
    controls: bool,
    jobs: int,
    progress: ProgressFn | None,
) -> list[CheckResult]:
    """Run every check (and control) with at most *jobs* sandboxes alive at once."""
    pending: list[_Job] = []
    done: dict[tuple[str, bool], CheckResult] = {}
    for check in checks:
        reason = _static_skip_reason(
            check.needs, privileged=cfg.privileged, kernel=cfg.kernel, kconfig=cfg.kconfig
        )
        if reason:
            done[(check.id, False)] = check.result(Outcome.SKIP, reason)
            if controls:
                done[(check.id, True)] = check.result(Outcome.SKIP, reason)
            continue
        pending.append(_Job(check, False))
        if controls:
            pending.append(_Job(check, True))
    total = len(checks)
    reported: set[str] = set()

    def report_ready() -> None:
        for check in checks:
            if check.id in reported or (check.id, False) not in done:
                continue
            if controls and (check.id, True) not in done:
                continue
            reported.add(check.id)
            if progress is not None:
                progress(len(reported), total, done[(check.id, False)])

    report_ready()
    running: dict[int, _Job] = {}
    try:
        _schedule(pending, running, done, cfg, jobs, report_ready)
    finally:
        # Only reached with jobs still running if something raised (^C, a bug):
        # never leave a sandbox behind.
        for job in running.values():
            _kill(job, cfg)
            _signal(job.pidfd, job.pid)
            _finish(job)

    results = []
    for check in checks:
        result = done[(check.id, False)]
        if controls:
            ctl = done[(check.id, True)]
            result.control = ctl.status
            result.control_message = ctl.message
        results.append(result)
    return results


# -- probing the environment -------------------------------------------------


def _probe_unshare(t: str) -> Callable[[], None]:
    def probe() -> None:
        _needs._unshare_step(t)

    return probe


def _proc_overmounted() -> bool:
    """Whether something is mounted over a part of the /proc visible here (masked paths)."""
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f if len(line.split()) > 4]
    except OSError:
        return False
    return any(p.startswith("/proc/") for p in points)


def _probe_proc_at(target: str | None) -> Callable[[], None]:
    """Mount a new procfs for a new pid namespace, at *target* (None: a tmpfs dir)."""

    def probe() -> None:
        _needs._unshare_step("mnt")
        _kernel.mount("none", "/", None, _kernel.MS_REC | _kernel.MS_PRIVATE)
        _needs._unshare_step("pid")
        # The next child is the new pid namespace's init: it mounts the procfs.
        try:
            code = nsprim.call(_mount_proc_at, target, die_with_parent=False)
        except nsprim.CallError:
            code = 255
        if code == errno.EPERM and not _needs._seccomp_filtered() and _proc_overmounted():
            raise _needs._Refusal(
                Availability(
                    _needs.REFUSED,
                    "the kernel refuses a new /proc here because parts of the visible /proc "
                    "are covered by other mounts (as in containers)",
                    "mount(2) of procfs -> EPERM",
                )
            )
        if code:
            raise _needs._Refusal(_needs.attribute("mount(2) of a new /proc", code))

    return probe


def _mount_proc_at(target: str | None) -> int:
    """Mount a new procfs at *target* (None: in a fresh tmpfs); return 0 or the errno."""
    try:
        where = target
        if where is None:
            base = tempfile.mkdtemp()
            _kernel.mount("tmpfs", base, "tmpfs", 0)
            where = os.path.join(base, "proc")
            os.mkdir(where)
        _kernel.mount("proc", where, "proc", 0)
    except OSError as err:
        return min(err.errno or 255, 255)
    except BaseException:
        return 255
    return 0


def _run_probe(fn: Callable[[], None]) -> Availability:
    """Run *fn* in a throwaway child; return what happened."""
    try:
        return Availability(*nsprim.call(_probe_outcome, fn, die_with_parent=False))
    except nsprim.CallError as err:
        status = wait_status(err.returncode)
        return Availability(_needs.REFUSED, f"the probe child died (wait status {status})", "")


def _probe_outcome(fn: Callable[[], None]) -> tuple[str, str, str]:
    """In the probe child: run *fn*; its availability as ``(state, cause, detail)``."""
    try:
        fn()
        out = Availability(_needs.AVAILABLE)
    except _needs._Refusal as r:
        out = r.result
    except _needs.PremiseBroken as b:
        out = Availability(_needs.BROKEN, str(b), "found by the runner's probe")
    except BaseException as exc:
        # A probe that breaks is not an answer: don't gate checks on it
        # (they find out for themselves), but show it.
        out = Availability(
            _needs.AVAILABLE,
            "",
            f"the probe failed unexpectedly: {type(exc).__name__}: {exc}",
        )
    return out.state, out.cause, out.detail


def _outer_probe(t: str, userns: bool) -> Callable[[], None]:
    def probe() -> None:
        if userns:
            uid, gid = os.geteuid(), os.getegid()
            _needs._unshare_step("user")
            _needs._step("writing /proc/self/uid_map", _map_self_as_root, uid, gid, nstype="user")
        if t != "user":
            _needs._unshare_step(t)

    return probe


def _probe_outer(cfg: RunConfig) -> None:
    """Decide the outer sandbox: which types (and whether a user ns) work here."""
    cfg.userns = False
    if cfg.rootless:
        user = _run_probe(_outer_probe("user", True))
        if user.ok:
            cfg.userns = True
        elif has_cap_sys_admin():
            # Root in a user namespace of its own (or a container) needs none.
            cfg.outer_missing["user"] = user
        else:
            cfg.outer_missing["user"] = user
            cfg.outer_missing.update({t: user for t in OUTER_TYPES})
            cfg.outer = ()
            return
    outer = []
    for t in OUTER_TYPES:
        a = _run_probe(_outer_probe(t, cfg.userns))
        if a.ok:
            outer.append(t)
        else:
            cfg.outer_missing[t] = a
    if "pid" in outer and "mnt" not in outer:
        outer.remove("pid")
        mnt = cfg.outer_missing["mnt"]
        cfg.outer_missing["pid"] = Availability(
            _needs.REFUSED,
            f"{mnt.cause}, and without a mount namespace the sandbox cannot give a new pid "
            "namespace its own /proc, so it keeps the current one",
            mnt.detail,
        )
    if "pid" in outer and "mnt" in outer:
        # A pid namespace whose /proc shows another one misleads every check
        # that reads /proc/<pid>: keep the current one if no /proc can be mounted.
        proc = _run_probe(_outer_proc_probe(cfg.userns))
        if not proc.ok:
            outer.remove("pid")
            cfg.outer_missing["pid"] = Availability(
                _needs.REFUSED,
                f"{proc.cause}, so the sandbox keeps the current pid namespace",
                proc.detail,
            )
    cfg.outer = tuple(outer)


def _outer_proc_probe(userns: bool) -> Callable[[], None]:
    def probe() -> None:
        _outer_probe("user", userns)()
        _probe_proc_at("/proc")()

    return probe


def _probe_in_sandbox(cfg: RunConfig) -> None:
    """Probe every operation once, inside a sandbox like the checks' (one job)."""
    probe_check = Check(
        id="runner.probe",
        catalogue_id="PROBE",
        level="MUST",
        title="The runner's probe of this environment",
        description="",
        anchors=(),
        needs=_needs_default(),
        timeout=20.0,
        serial=False,
        func=lambda ctx: None,
    )
    job = _Job(probe_check, False, task=_probe_task)
    done: dict[tuple[str, bool], CheckResult] = {}
    _schedule([job], {}, done, cfg, 1, lambda: None)
    probed: dict[str, Any] | None = None
    for msg in job.messages:
        if "probed" in msg:
            probed = msg["probed"]
    if probed is None:
        result = job.result
        why = result.message if result is not None else "no answer"
        cause = f"the runner could not build its sandbox here: {why}"
        cfg.probed = {op: Availability(_needs.REFUSED, cause) for op in _needs.OPERATIONS}
        return
    cfg.probed = {op: Availability.from_dict(a) for op, a in probed.items()}
    if cfg.rootless and not cfg.userns and "unshare.user" in cfg.outer_missing:
        # The probe ran without a fresh user ns; keep the outer verdict on it.
        cfg.probed["unshare.user"] = cfg.outer_missing["user"]


def _needs_default() -> Any:
    from .registry import Needs

    return Needs()


def _probe(cfg: RunConfig) -> None:
    _probe_outer(cfg)
    if cfg.rootless and not cfg.userns and not has_cap_sys_admin():
        cause = cfg.outer_missing["user"]
        cfg.probed = {op: cause for op in _needs.OPERATIONS}
        return
    _probe_in_sandbox(cfg)


def _execute(
    checks: Sequence[Check],
    cfg: RunConfig,
    controls: bool,
    jobs: int,
    progress: ProgressFn | None,
    repeat: int,
) -> list[CheckResult]:
    """Probe the environment once, then run the checks *repeat* times; flag changed verdicts."""
    _probe(cfg)
    runs = [_run_jobs(checks, cfg, controls, jobs, progress) for _ in range(repeat)]
    return _merge_repeats(runs)


def _merge_repeats(runs: list[list[CheckResult]]) -> list[CheckResult]:
    """The first run's results, where a verdict that changed between runs becomes an ERROR."""
    first = runs[0]
    if len(runs) == 1:
        return first
    merged = []
    for i, r in enumerate(first):
        seen = [run[i] for run in runs]
        verdicts = [(x.status, x.control) for x in seen]
        if len(set(verdicts)) == 1:
            merged.append(r)
            continue
        words = ", ".join(
            x.status.value + ("" if x.control is None else f"/{x.control.value}") for x in seen
        )
        messages = "; ".join(f"run {n + 1}: {x.message or 'PASS'}" for n, x in enumerate(seen))
        r.status = Outcome.ERROR
        r.message = (
            f"the verdict changed between {len(runs)} runs ({words}): "
            "a defect of the suite, not of the kernel"
        )
        r.detail = messages
        merged.append(r)
    return merged


# Standard modules a check or the harness may import lazily. After dropping to
# --as-user the interpreter's own library may be unreadable (here it lives in
# /root, mode 700), so they are imported while still root. Check modules
# should import at module level for the same reason.
_PRELOAD = (
    "json",
    "pickle",
    "traceback",
    "linecache",
    "tokenize",
    "shutil",
    "tempfile",
    "gzip",
    "zlib",
    "ipaddress",
    "subprocess",
    "selectors",
    "fcntl",
    "mmap",
    "random",
    "encodings.idna",
)


#: Each run's scratch directory under the temporary directory starts with this.
RUN_DIR_PREFIX = "nsprim-conformance-"
#: A run directory younger than this is never swept (a run between mkdtemp and its lock).
STALE_AFTER_S = 60.0


def _sweep_stale_run_dirs() -> None:
    """Remove the run directories of runs that were SIGKILLed, which could not clean up.

    A live run holds a shared flock(2) on its directory; one that nobody
    holds and that is older than :data:`STALE_AFTER_S` belongs to a run
    that is gone. Only the caller's own directories (or any, for root) are
    touched; anything unexpected is left alone.
    """
    tmp = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(tmp) if n.startswith(RUN_DIR_PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(tmp, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if os.geteuid() not in (0, st.st_uid) or time.time() - st.st_mtime < STALE_AFTER_S:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live run holds it
                continue
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _drop_privileges(user: str | int) -> tuple[int, int]:
    """Become *user* in-process (no exec: the interpreter may not be readable by *user*)."""
    pw = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    # Import what may be imported lazily later while root can still read it.
    for name in _PRELOAD:
        __import__(name)
    nsprim.preload()
    os.setgroups([])
    os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
    os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
    # A uid change clears "dumpable", making /proc/self/uid_map root-owned.
    _kernel.set_dumpable(True)
    os.chdir("/")
    return pw.pw_uid, pw.pw_gid


def _cfg_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return {
        "userns": cfg.userns,
        "outer": list(cfg.outer),
        "outer_missing": {t: a.to_dict() for t, a in cfg.outer_missing.items()},
        "probed": {op: a.to_dict() for op, a in cfg.probed.items()},
    }


def _cfg_from_dict(cfg: RunConfig, data: Mapping[str, Any]) -> None:
    cfg.userns = bool(data["userns"])
    cfg.outer = tuple(data["outer"])
    cfg.outer_missing = {t: Availability.from_dict(a) for t, a in data["outer_missing"].items()}
    cfg.probed = {op: Availability.from_dict(a) for op, a in data["probed"].items()}


def _run_in_dropped_child(
    user: str | int,
    checks: Sequence[Check],
    cfg: RunConfig,
    controls: bool,
    jobs: int,
    progress: ProgressFn | None,
    repeat: int,
) -> tuple[list[CheckResult], int]:
    """Fork, drop to *user*, run the jobs there; return the results and the uid they ran as."""
    # Interrupted (^C, SIGTERM): the worker is killed and reaped, and its
    # sandboxes die with it (PDEATHSIG).
    execute = functools.partial(_execute, checks, cfg, controls, jobs, progress, repeat)
    worker = _child(_dropped_worker, user, cfg, execute)
    try:
        raw = worker.result()
    except nsprim.CallError as err:
        if err.returncode is None:
            raise
        raise nsprim.CallError(
            f"the --as-user worker (pid {worker.pid}) died without reporting"
        ) from None
    msg = json.loads(raw)
    if "error" in msg:
        raise nsprim.CallError(f"the --as-user worker failed: {msg['error']}")
    _cfg_from_dict(cfg, msg["cfg"])
    return [CheckResult.from_dict(r) for r in msg["results"]], int(msg["uid"])


def _dropped_worker(
    user: str | int, cfg: RunConfig, execute: Callable[[], list[CheckResult]]
) -> str:
    """The --as-user worker: drop to *user*, run the jobs; the results as one JSON document."""
    try:
        _kernel.set_pdeathsig(signal.SIGKILL)
        uid, _ = _drop_privileges(user)
        before = _guard.snapshot(_guard.PROCESS)
        results = execute()
        results += _guard.compare(before, _guard.snapshot(_guard.PROCESS))
        rows = [dict(r.to_dict(), control_message=r.control_message) for r in results]
        msg: dict[str, Any] = {"uid": uid, "results": rows, "cfg": _cfg_to_dict(cfg)}
    except BaseException as exc:
        msg = {"error": describe_exception(exc)}
    return json.dumps(msg)


def run(
    checks: Sequence[Check],
    *,
    controls: bool = False,
    jobs: int | None = None,
    as_user: str | int | None = None,
    guard: bool = True,
    progress: ProgressFn | None = None,
    repeat: int = 1,
) -> Run:
    """Run *checks* (and, with *controls*, their negative controls); return the :class:`Run`.

    The environment is probed first (once); then each run of a check happens
    in its own outer sandbox (see the module docstring), at most *jobs* at
    once; ``serial=True`` checks run alone.

    Args:
        checks: the checks, in report order; any list (tests pass their own).
        controls: also run each check with ``ctx.control=True``; it must FAIL.
        jobs: parallel sandboxes (default: the number of CPUs).
        as_user: when root, drop to this user (name or uid) and run rootless.
            A non-root caller always runs rootless as itself.
        guard: snapshot the host before and after; report differences as ERROR.
        progress: called as ``progress(done, total, result)`` after each check.
        repeat: run every check this many times; a check whose verdict (or
            control's verdict) changes between runs is an ERROR.

    Raises:
        ValueError: *jobs* or *repeat* is not positive, or *as_user* is given but unknown.
        nsprim.CallError: the ``--as-user`` worker died.
    """
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat!r}")
    ids = [c.id for c in checks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"checks must have distinct ids, got {ids!r}")
    pw = None
    if as_user is not None:
        try:
            pw = pwd.getpwuid(as_user) if isinstance(as_user, int) else pwd.getpwnam(as_user)
        except (KeyError, TypeError, OverflowError):
            raise ValueError(f"as_user must name an existing user, got {as_user!r}") from None
        if pw.pw_uid == os.geteuid():
            as_user = None
        elif os.geteuid() != 0:
            raise ValueError(f"as_user: only root can switch to {as_user!r}; run as that user")
    privileged = is_privileged()
    drop = as_user is not None and os.geteuid() == 0
    rootless = drop or not privileged
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    _sweep_stale_run_dirs()
    before = _guard.snapshot() if guard else None
    run_dir = tempfile.mkdtemp(prefix=RUN_DIR_PREFIX)
    # Held for the run's lifetime: what tells a live run's directory from one
    # a SIGKILLed run left behind (see _sweep_stale_run_dirs).
    held = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(held, fcntl.LOCK_SH)
    try:
        # Others may pass through (a check's mapped uid reaching its tmpdir), not list it.
        os.chmod(run_dir, 0o711)
        if drop and pw is not None:
            os.chown(run_dir, pw.pw_uid, pw.pw_gid)
        cfg = RunConfig(
            rootless=rootless,
            privileged=privileged and not rootless,
            kernel=kernel_version(),
            kconfig=read_kconfig(),
            run_dir=run_dir,
        )
        if drop:
            assert as_user is not None
            results, uid = _run_in_dropped_child(
                as_user, checks, cfg, controls, jobs, progress, repeat
            )
        else:
            uid = os.geteuid()
            results = _execute(checks, cfg, controls, jobs, progress, repeat)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        os.close(held)
    if before is not None:
        results += _guard.compare(before, _guard.settled(before, _guard.snapshot()))
        results += _guard.leftovers(run_dir)
    return Run(
        results=results,
        environment=environment(uid=uid, rootless=rootless, cfg=cfg),
        started=started,
        duration_s=time.monotonic() - t0,
        controls=controls,
    )
