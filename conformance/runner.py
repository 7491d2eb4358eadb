"""Run conformance checks, each (and its negative control) in a fresh throwaway sandbox.

Layer: conformance. Imports the standard library, :mod:`nsprim` and the
conformance modules; reports and the CLI sit above it.

Process tree of one run (STYLE.md 5.11; kselftest's fork-per-test, LTP's
``MS_REC | MS_PRIVATE`` "no effect on a real system")::

    runner                       (as root, or the dropped ``--as-user`` worker)
     └─ launcher                 unshare(outer set) ; make / rec-private
         └─ sandbox init         pid 1 of a new pid ns; fresh /proc, tmpfs tmpdir
             └─ check worker     evaluates dynamic needs, runs the check, sends JSON

The outer set is mount, UTS, IPC, net, cgroup and pid namespaces; when
rootless it also holds a user namespace mapping the runner's uid to 0 (the
rootless-container view). The launcher dies with the runner (PDEATHSIG), the
init with the launcher, and everything in the pid namespace with the init, so
a killed or crashing run leaves nothing behind. Results travel back as one
line of JSON per message over a pipe; the pipe reaches EOF only once every
process that could write to it is gone.

The host guard snapshots the host before and after the whole run
(:mod:`._guard`); any difference is an extra ERROR result.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import pwd
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import nsprim

from . import _guard, _kernel
from ._context import Context, describe_exception
from ._needs import dynamic_skip_reason, is_privileged, kernel_version, read_kconfig
from ._needs import static_skip_reason as _static_skip_reason
from .outcome import CheckResult, Fail, Outcome, Skip
from .registry import Check

__all__ = ["Run", "RunConfig", "run", "environment", "OUTER_NAMESPACES"]

#: The namespaces every check's outer sandbox unshares (plus a user ns when rootless).
OUTER_NAMESPACES = (
    _kernel.CLONE_NEWNS
    | _kernel.CLONE_NEWUTS
    | _kernel.CLONE_NEWIPC
    | _kernel.CLONE_NEWNET
    | _kernel.CLONE_NEWCGROUP
    | _kernel.CLONE_NEWPID
)
#: Seconds a run may use for sandbox setup on top of the check's own timeout.
SETUP_SLACK = 1.0
#: Seconds to wait for a killed sandbox to go away before killing its launcher too.
KILL_GRACE = 5.0

ProgressFn = Callable[[int, int, CheckResult], None]


@dataclass
class RunConfig:
    """How checks are run; built by :func:`run`, shipped into every sandbox by fork."""

    rootless: bool
    privileged: bool
    kernel: tuple[int, int, int]
    kconfig: dict[str, str] | None


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


def environment(*, uid: int | None = None, rootless: bool | None = None) -> dict[str, Any]:
    """Describe this machine for a report (the JSON schema's ``environment``)."""
    uid = os.geteuid() if uid is None else uid
    if rootless is None:
        rootless = not is_privileged()
    return {
        "kernel": platform.release(),
        "arch": platform.machine(),
        "distribution": _distribution(),
        "uid": uid,
        "privileges": "user" if rootless else "root",
        "python": platform.python_version(),
    }


# -- inside the sandbox (forked children; they never return) ---------------


def _emit(fd: int, msg: dict[str, Any]) -> None:
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _launcher(check: Check, control: bool, cfg: RunConfig, tmpdir: str, wfd: int) -> None:
    """First child: unshare the outer namespaces, fork the sandbox init, wait for it."""
    code = 1
    try:
        _kernel.set_pdeathsig(signal.SIGKILL)
        if cfg.rootless:
            uid, gid = os.geteuid(), os.getegid()
            _kernel.unshare(_kernel.CLONE_NEWUSER | OUTER_NAMESPACES)
            # user_namespaces(7): an unprivileged writer may map only its own
            # ids, one line, and gid_map needs setgroups=deny first.
            _write_file("/proc/self/setgroups", "deny")
            _write_file("/proc/self/uid_map", f"0 {uid} 1")
            _write_file("/proc/self/gid_map", f"0 {gid} 1")
        else:
            _kernel.unshare(OUTER_NAMESPACES)
        # Stop mount events propagating back to the host (util-linux unshare's default).
        _kernel.mount("none", "/", None, _kernel.MS_REC | _kernel.MS_PRIVATE)
        init = os.fork()
        if init == 0:
            _sandbox_init(check, control, cfg, tmpdir, wfd)
        _emit(wfd, {"init": init})
        os.waitpid(init, 0)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            _emit(wfd, {"setup_error": f"outer sandbox: {describe_exception(exc)}"})
    finally:
        os._exit(code)


def _sandbox_init(check: Check, control: bool, cfg: RunConfig, tmpdir: str, wfd: int) -> None:
    """Pid 1 of the outer pid namespace: give it its own /proc, run the worker, reap."""
    try:
        _kernel.set_pdeathsig(signal.SIGKILL)
        proc_flags = _kernel.MS_NOSUID | _kernel.MS_NODEV | _kernel.MS_NOEXEC
        _kernel.mount("proc", "/proc", "proc", proc_flags)
        with contextlib.suppress(OSError):  # a plain directory still works
            _kernel.mount("tmpfs", tmpdir, "tmpfs", _kernel.MS_NOSUID, "mode=1777")
        if os.path.isdir("/dev/mqueue"):
            with contextlib.suppress(OSError):  # so /dev/mqueue shows this IPC ns
                _kernel.mount("mqueue", "/dev/mqueue", "mqueue", proc_flags)
        worker = os.fork()
        if worker == 0:
            _worker(check, control, cfg, tmpdir, wfd)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if pid == worker:
                break
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            _emit(wfd, {"crash": _status_text(status)})
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            _emit(wfd, {"setup_error": f"sandbox init: {describe_exception(exc)}"})
    finally:
        # Exiting kills every process left in the pid namespace (pid_namespaces(7)).
        os._exit(0)


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
    )
    status, message = Outcome.PASS, ""
    expected: str | None = None
    actual: str | None = None
    start = time.monotonic()
    try:
        reason = dynamic_skip_reason(check.needs, ctx)
        if reason:
            raise Skip(reason)
        check.func(ctx)
    except Fail as exc:
        status, message, expected, actual = Outcome.FAIL, exc.msg, exc.expected, exc.actual
    except Skip as exc:
        status, message = Outcome.SKIP, exc.reason
    except nsprim.UnsupportedError as exc:
        # The kernel lacks a syscall or ioctl the check needs (ENOSYS and the
        # like): that is "can't run here", not broken set-up.
        status, message = Outcome.SKIP, f"not supported by this kernel: {exc}"
    except BaseException as exc:
        status, message = Outcome.ERROR, describe_exception(exc)
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
        status, message, expected=expected, actual=actual, duration_s=duration
    ).to_dict()
    try:
        _emit(wfd, {"result": result})
    finally:
        os._exit(0)


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
    job.tmpdir = tempfile.mkdtemp(prefix=f"nsprim-{job.check.id}-")
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    job.started = time.monotonic()
    job.deadline = job.started + job.check.timeout + SETUP_SLACK
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            # The sandbox processes write results into wfd; it must survive forks
            # (always true) but not leak into anything a check execs.
            _launcher(job.check, job.control, cfg, job.tmpdir, wfd)
        finally:
            os._exit(1)
    os.close(wfd)
    job.pid, job.rfd = pid, rfd
    try:
        job.pidfd = os.pidfd_open(pid)
    except OSError:
        job.pidfd = -1


def _signal(pidfd: int, pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        elif pid > 0:
            os.kill(pid, signal.SIGKILL)


def _kill(job: _Job) -> None:
    """Kill the sandbox: its init (taking the whole pid ns along), else its launcher."""
    if job.init_pidfd >= 0:
        _signal(job.init_pidfd, 0)
    else:
        _signal(job.pidfd, job.pid)


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
    try:
        _, status = os.waitpid(job.pid, 0)
    except ChildProcessError:  # pragma: no cover - someone else reaped it
        status = 0
    for fd in (job.pidfd, job.init_pidfd):
        if fd >= 0:
            os.close(fd)
    shutil.rmtree(job.tmpdir, ignore_errors=True)
    duration = time.monotonic() - job.started
    by_kind: dict[str, Any] = {}
    for msg in job.messages:
        for key, value in msg.items():
            by_kind.setdefault(key, value)
    check = job.check
    if "result" in by_kind:
        return CheckResult.from_dict(by_kind["result"])
    if job.killed_at is not None:
        message = f"timed out after {check.timeout:g} s; the sandbox was killed"
    elif "setup_error" in by_kind:
        message = f"setup failed: {by_kind['setup_error']}"
    elif "crash" in by_kind:
        message = str(by_kind["crash"])
    else:
        message = f"the sandbox launcher {_status_words(status)} without reporting"
    return check.result(Outcome.ERROR, message, duration_s=duration)


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
                done[(job.check.id, job.control)] = _finish(job)
        now = time.monotonic()
        for job in running.values():
            if job.killed_at is None and now >= job.deadline:
                job.killed_at = now
                _kill(job)
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
            _kill(job)
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


def _drop_privileges(user: str | int) -> tuple[int, int]:
    """Become *user* in-process (no exec: the interpreter may not be readable by *user*)."""
    pw = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    # Import what may be imported lazily later while root can still read it.
    for name in _PRELOAD:
        __import__(name)
    os.setgroups([])
    os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
    os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
    # A uid change clears "dumpable", making /proc/self/uid_map root-owned.
    _kernel.set_dumpable(True)
    os.chdir("/")
    return pw.pw_uid, pw.pw_gid


def _run_in_dropped_child(
    user: str | int,
    checks: Sequence[Check],
    cfg: RunConfig,
    controls: bool,
    jobs: int,
    progress: ProgressFn | None,
) -> tuple[list[CheckResult], int]:
    """Fork, drop to *user*, run the jobs there; return the results and the uid they ran as."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            try:
                uid, _ = _drop_privileges(user)
                before = _guard.snapshot(_guard.PROCESS)
                results = _run_jobs(checks, cfg, controls, jobs, progress)
                results += _guard.compare(before, _guard.snapshot(_guard.PROCESS))
                rows = [dict(r.to_dict(), control_message=r.control_message) for r in results]
                msg: dict[str, Any] = {"uid": uid, "results": rows}
            except BaseException as exc:
                msg = {"error": describe_exception(exc)}
            _emit(wfd, msg)
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        data = os.read(rfd, 1 << 20)
        if not data:
            break
        chunks.append(data)
    os.close(rfd)
    os.waitpid(pid, 0)
    raw = b"".join(chunks)
    if not raw:
        raise nsprim.CallError(f"the --as-user worker (pid {pid}) died without reporting")
    msg = json.loads(raw)
    if "error" in msg:
        raise nsprim.CallError(f"the --as-user worker failed: {msg['error']}")
    return [CheckResult.from_dict(r) for r in msg["results"]], int(msg["uid"])


def run(
    checks: Sequence[Check],
    *,
    controls: bool = False,
    jobs: int | None = None,
    as_user: str | int | None = None,
    guard: bool = True,
    progress: ProgressFn | None = None,
) -> Run:
    """Run *checks* (and, with *controls*, their negative controls); return the :class:`Run`.

    Each run of a check happens in its own outer sandbox (see the module
    docstring), at most *jobs* at once; ``serial=True`` checks run alone.

    Args:
        checks: the checks, in report order; any list (tests pass their own).
        controls: also run each check with ``ctx.control=True``; it must FAIL.
        jobs: parallel sandboxes (default: the number of CPUs).
        as_user: when root, drop to this user (name or uid) and run rootless.
            A non-root caller always runs rootless as itself.
        guard: snapshot the host before and after; report differences as ERROR.
        progress: called as ``progress(done, total, result)`` after each check.

    Raises:
        ValueError: *jobs* is not positive, or *as_user* is given but unknown.
        nsprim.CallError: the ``--as-user`` worker died.
    """
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    ids = [c.id for c in checks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"checks must have distinct ids, got {ids!r}")
    if as_user is not None:
        try:
            pw = pwd.getpwuid(as_user) if isinstance(as_user, int) else pwd.getpwnam(as_user)
        except KeyError:
            raise ValueError(f"as_user must name an existing user, got {as_user!r}") from None
        if pw.pw_uid == os.geteuid():
            as_user = None
        elif os.geteuid() != 0:
            raise ValueError(f"as_user: only root can switch to {as_user!r}; run as that user")
    privileged = is_privileged()
    drop = as_user is not None and os.geteuid() == 0
    rootless = drop or not privileged
    cfg = RunConfig(
        rootless=rootless,
        privileged=privileged and not rootless,
        kernel=kernel_version(),
        kconfig=read_kconfig(),
    )
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    before = _guard.snapshot() if guard else None
    if drop:
        assert as_user is not None
        results, uid = _run_in_dropped_child(as_user, checks, cfg, controls, jobs, progress)
    else:
        uid = os.geteuid()
        results = _run_jobs(checks, cfg, controls, jobs, progress)
    if before is not None:
        results += _guard.compare(before, _guard.snapshot())
    return Run(
        results=results,
        environment=environment(uid=uid, rootless=rootless),
        started=started,
        duration_s=time.monotonic() - t0,
        controls=controls,
    )
