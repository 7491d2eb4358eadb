"""The conformance runner on the real kernel, driven by test-only checks.

Each test builds its own :class:`Registry` and passes its checks to
``runner.run`` explicitly, so nothing here is registered globally.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from forked import assert_all_reaped
from nsprim.conformance import _context, _guard, cli, runner
from nsprim.conformance.outcome import Fail, Outcome, Skip
from nsprim.conformance.registry import Check, Context, Needs, Registry, load_checks, select

import nsprim

NEWUTS = 0x04000000
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _checks(reg: Registry) -> list[Check]:
    return reg.checks()


def _set_and_read(name: str) -> str:
    socket.sethostname(name)
    return socket.gethostname()


# -- verdicts ----------------------------------------------------------------


@needs_root
def test_run_reports_forgotten_isolation_as_not_discriminating() -> None:
    reg = Registry()

    @reg.check("test.forgets_isolate", catalogue="TEST-01", timeout=5.0)
    def forgets_isolate(ctx: Context) -> None:
        """A hostname set in a new UTS namespace stays there (but the check ignores isolate)."""
        before = socket.gethostname()
        ctx.in_child(_set_and_read, "nsprim-broken", unshare=NEWUTS)  # not ctx.isolate(...)
        ctx.expect_equal(socket.gethostname(), before, "parent hostname")

    run = runner.run(_checks(reg), controls=True)
    (r,) = run.results
    assert (r.status, r.control) == (Outcome.PASS, Outcome.PASS)
    assert r.discriminating is False
    assert r.problem
    assert run.non_discriminating == [r]
    assert not run.ok


@needs_root
def test_run_without_controls_leaves_control_null() -> None:
    reg = Registry()

    @reg.check("test.passes", catalogue="TEST-01")
    def passes(ctx: Context) -> None:
        """Nothing to see."""

    run = runner.run(_checks(reg))
    assert run.results[0].control is None
    assert run.ok


@needs_root
def test_run_reports_unexpected_exception_as_error_not_fail() -> None:
    reg = Registry()

    @reg.check("test.raises", catalogue="TEST-01")
    def raises(ctx: Context) -> None:
        """Division works."""
        ctx.in_child(lambda: 1 // 0)

    @reg.check("test.fails", catalogue="TEST-02")
    def fails(ctx: Context) -> None:
        """One is two."""
        ctx.in_child(ctx.expect_equal, 1, 2, "one")

    run = runner.run(_checks(reg), controls=True)
    raised, failed = run.results
    assert raised.status is Outcome.ERROR and raised.control is Outcome.ERROR
    assert "ZeroDivisionError" in raised.message
    assert failed.status is Outcome.FAIL
    assert (failed.expected, failed.actual) == ("2", "1")
    assert run.summary == {"PASS": 0, "FAIL": 1, "SKIP": 0, "ERROR": 1}


def _unsupported() -> None:
    raise nsprim.UnsupportedError("mount_setattr", requires="Linux 5.12")


def test_run_reports_a_missing_kernel_feature_as_skip_not_error() -> None:
    reg = Registry()

    @reg.check("test.unsupported", catalogue="TEST-01")
    def unsupported(ctx: Context) -> None:
        """A feature this kernel lacks (raised in a helper child)."""
        ctx.in_child(_unsupported)

    (result,) = runner.run(_checks(reg)).results
    assert result.status is Outcome.SKIP
    assert "mount_setattr is not supported here (needs Linux 5.12)" in result.message


def _marker_processes(marker: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


@needs_root
def test_run_kills_hanging_check_at_timeout_and_leaves_no_process() -> None:
    marker = f"{random.randint(100, 999)}.{random.randint(100, 999)}"
    reg = Registry()

    @reg.check("test.hangs", catalogue="TEST-01", timeout=0.5)
    def hangs(ctx: Context) -> None:
        """It finishes."""
        subprocess.Popen(["sleep", marker])  # a grandchild that must die with the sandbox
        ctx.spawn_child(time.sleep, 60)
        time.sleep(60)

    t0 = time.monotonic()
    run = runner.run(_checks(reg))
    elapsed = time.monotonic() - t0
    (r,) = run.results
    assert r.status is Outcome.ERROR
    assert "timed out after 0.5 s" in r.message
    assert elapsed < 0.5 + runner.SETUP_SLACK + 2.0
    assert _marker_processes(marker) == []
    assert not [g for g in run.results if g.type == "guard"]


@needs_root
def test_run_reports_crashed_check_process_as_error() -> None:
    reg = Registry()

    @reg.check("test.crashes", catalogue="TEST-01")
    def crashes(ctx: Context) -> None:
        """It survives."""
        os.kill(os.getpid(), 9)

    results = runner.run(_checks(reg)).results
    (r,) = results
    assert r.status is Outcome.ERROR
    assert "SIGKILL" in r.message


# -- needs, cleanup --------------------------------------------------------


@needs_root
def test_run_skips_unmet_needs_and_errors_on_broken_probe() -> None:
    reg = Registry()
    ran: list[str] = []

    def broken_probe() -> str | None:
        raise RuntimeError("probe exploded")

    @reg.check("test.future", catalogue="TEST-01", needs=Needs(min_kernel=(99, 0)))
    def future(ctx: Context) -> None:
        """Needs a kernel from the future."""
        ran.append("future")

    @reg.check("test.probed", catalogue="TEST-02", needs=Needs(probes=(lambda: "no widget",)))
    def probed(ctx: Context) -> None:
        """Needs a widget."""

    @reg.check("test.bad_probe", catalogue="TEST-03", needs=Needs(probes=(broken_probe,)))
    def bad_probe(ctx: Context) -> None:
        """Has a broken probe."""

    @reg.check("test.kconfig", catalogue="TEST-04", needs=Needs(kconfig=("NSPRIM_NO_SUCH",)))
    def kconfig(ctx: Context) -> None:
        """Needs an option no kernel has."""

    @reg.check("test.userns", catalogue="TEST-05", needs=Needs(userns=True))
    def userns(ctx: Context) -> None:
        """Needs user namespaces (this machine has them)."""

    run = runner.run(_checks(reg), controls=True)
    by_id = {r.id: r for r in run.results}
    assert by_id["test.future"].status is Outcome.SKIP
    assert "needs Linux 99.0" in by_id["test.future"].message
    assert by_id["test.future"].control is Outcome.SKIP
    assert (by_id["test.probed"].status, by_id["test.probed"].message) == (
        Outcome.SKIP,
        "no widget",
    )
    assert by_id["test.bad_probe"].status is Outcome.ERROR
    assert "probe exploded" in by_id["test.bad_probe"].message
    if runner.read_kconfig() is not None:
        assert by_id["test.kconfig"].status is Outcome.SKIP
        assert "CONFIG_NSPRIM_NO_SUCH" in by_id["test.kconfig"].message
    assert by_id["test.userns"].status is Outcome.PASS
    assert ran == []


@needs_root
def test_run_skips_root_checks_as_user() -> None:
    reg = Registry()

    @reg.check("test.root", catalogue="TEST-01", needs=Needs(root=True))
    def root(ctx: Context) -> None:
        """Needs real root."""

    @reg.check("test.facts", catalogue="TEST-02")
    def facts(ctx: Context) -> None:
        """The context says rootless, and this is uid 0 of a user namespace."""
        ctx.expect_equal((ctx.as_user, ctx.privileged), (True, False), "ctx privileges")
        ctx.expect_equal(os.getuid(), 0, "uid inside the sandbox")
        with open("/proc/self/uid_map") as f:
            ctx.expect_equal(f.read().split(), ["0", "65534", "1"], "uid_map")

    run = runner.run(_checks(reg), as_user="nobody")
    root_result, facts_result = run.results
    assert root_result.status is Outcome.SKIP
    assert root_result.message == "needs root in the initial user namespace"
    assert facts_result.status is Outcome.PASS, facts_result.message
    assert run.environment["privileges"] == "user"
    assert run.environment["uid"] == 65534


@needs_root
def test_run_reports_failing_cleanup_as_error_naming_it() -> None:
    reg = Registry()
    order: list[str] = []

    def bad_cleanup(what: str) -> None:
        raise OSError(5, f"cannot undo {what}")

    @reg.check("test.cleanup", catalogue="TEST-01")
    def cleanup(ctx: Context) -> None:
        """Cleanups run, LIFO, even when one fails."""
        ctx.defer(bad_cleanup, "the widget")
        ctx.defer(order.append, "second")

    results = runner.run(_checks(reg)).results
    (r,) = results
    assert r.status is Outcome.ERROR
    assert "bad_cleanup" in r.message and "cannot undo the widget" in r.message


@needs_root
def test_sandbox_has_private_pid_namespace_proc_and_tmpdir() -> None:
    reg = Registry()

    @reg.check("test.sandbox", catalogue="TEST-01")
    def sandbox(ctx: Context) -> None:
        """The check runs under the sandbox init with its own /proc and a tmpfs tmpdir."""
        ctx.expect_equal(os.getppid(), 1, "parent of the check process")
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        ctx.expect_equal(pids, [1, os.getpid()], "processes visible in /proc")
        with open(os.path.join(ctx.tmpdir, "f"), "w") as f:
            f.write("x")
        ctx.expect(os.path.ismount(ctx.tmpdir), "tmpdir is a private mount", True, False)

    run = runner.run(_checks(reg))
    assert run.results[0].status is Outcome.PASS, run.results[0].message


# -- the host guard -----------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.msgget.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.msgctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
IPC_CREAT, IPC_RMID, CLONE_NEWIPC = 0o1000, 0, 0x08000000


def _escape_and_create_queue(host_ipc_fd: int, key: int) -> int:
    if _libc.setns(host_ipc_fd, CLONE_NEWIPC) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    qid: int = _libc.msgget(key, IPC_CREAT | 0o600)
    if qid < 0:
        raise OSError(ctypes.get_errno(), "msgget")
    return qid


@needs_root
def test_guard_reports_ipc_object_leaked_onto_the_host() -> None:
    key = random.randint(0x4E530000, 0x4E53FFFF)
    host_ipc = os.open("/proc/self/ns/ipc", os.O_RDONLY)  # inherited by the sandbox's fork
    reg = Registry()

    @reg.check("test.escapes", catalogue="TEST-01")
    def escapes(ctx: Context) -> None:
        """Nothing escapes (but this check setns()es to the host IPC ns on purpose)."""
        ctx.in_child(_escape_and_create_queue, host_ipc, key)

    try:
        run = runner.run(_checks(reg))
    finally:
        os.close(host_ipc)
        qid = _libc.msgget(key, 0)
        if qid >= 0:
            _libc.msgctl(qid, IPC_RMID, None)
    assert qid >= 0, "the test check did not manage to plant its queue"
    guard = [r for r in run.results if r.type == "guard"]
    assert [g.id for g in guard] == ["guard.ipc"]
    assert guard[0].status is Outcome.ERROR
    assert f"msg key={key:#x}" in guard[0].message
    assert not run.ok


# -- whole-catalogue behaviour -------------------------------------------------


@needs_root
def test_two_runs_give_the_same_verdicts() -> None:
    checks = load_checks()

    def verdicts() -> list[tuple[str, Outcome, Outcome | None]]:
        return [(r.id, r.status, r.control) for r in runner.run(checks, controls=True).results]

    assert verdicts() == verdicts()


@needs_root
def test_run_serial_and_parallel_give_the_same_verdicts() -> None:
    reg = Registry()
    for i in range(4):

        def body(ctx: Context, i: int = i) -> None:
            ctx.expect(i % 2 == 0, f"odd {i}")

        body.__doc__ = f"Check {i} is even."
        reg.check(f"test.c{i}", catalogue=f"TEST-0{i}", serial=(i == 1))(body)
    one = runner.run(_checks(reg), jobs=1)
    many = runner.run(_checks(reg), jobs=4)
    seen = [(r.id, r.status.value, r.message) for r in one.results + many.results]
    assert [r.status for r in one.results] == [r.status for r in many.results], seen
    assert [r.status.value for r in one.results] == ["PASS", "FAIL", "PASS", "FAIL"], seen


def test_run_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="jobs must be at least 1, got 0"):
        runner.run([], jobs=0)
    with pytest.raises(ValueError, match="as_user must name an existing user"):
        runner.run([], as_user="nsprim-no-such-user")


def test_in_child_reraises_fail_and_reaps() -> None:
    ctx = Context()
    with pytest.raises(Fail) as info:
        ctx.in_child(ctx.expect_equal, "a", "b", "letter")
    assert (info.value.expected, info.value.actual) == ("b", "a")
    with pytest.raises(TimeoutError):
        ctx.in_child(time.sleep, 10, timeout=0.2)
    assert_all_reaped()  # every child was reaped (the leak guard checks fds)


# -- the CLI ------------------------------------------------------------------


@needs_root
def test_cli_as_user_nobody_writes_a_valid_json_report(tmp_path: os.PathLike[str]) -> None:
    from nsprim.conformance.report import json as json_report

    out = os.path.join(tmp_path, "r.json")
    rc = cli.main(["--only", "uts.*", "--controls", "--as-user", "nobody", "--format", "json",
                   "-o", out])  # fmt: skip
    assert rc == 0
    with open(out) as f:
        doc = json.load(f)
    assert json_report.validate(doc) == []
    assert doc["environment"]["privileges"] == "user"
    assert doc["summary"]["PASS"] == len(doc["results"]) == 6
    assert {r["control"] for r in doc["results"]} == {"FAIL"}


def test_cli_exit_status_2_on_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--only", "nosuch.*"]) == 2
    assert "no check matches" in capsys.readouterr().err
    assert cli.main(["--jobs", "0"]) == 2
    assert cli.main(["--format", "yaml"]) == 2
    assert cli.main(["--merge", "/nonexistent.json"]) == 2


def test_cli_list_prints_selected_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list", "--only", "UTS-0[12]"]) == 0
    out = capsys.readouterr().out
    assert "uts.hostname_isolated" in out and "uts.domainname_isolated" in out
    assert "uts.initial_copy" not in out


@needs_root
def test_cli_merge_renders_a_matrix(tmp_path: os.PathLike[str]) -> None:
    paths = []
    for user in ("root", "nobody"):
        path = os.path.join(tmp_path, f"{user}.json")
        args = ["--only", "uts.*", "--format", "json", "-o", path]
        assert cli.main([*args, "--as-user", user] if user != "root" else args) == 0
        paths.append(path)
    matrix_path = os.path.join(tmp_path, "matrix.md")
    assert cli.main(["--merge", *paths, "--format", "markdown", "-o", matrix_path]) == 0
    with open(matrix_path) as f:
        assert "uts.hostname_isolated" in f.read()


@needs_root
def test_full_catalogue_in_parallel_passes_with_discriminating_controls() -> None:
    # The group tests run one group at a time; this runs all 80 together, in
    # parallel, as the CLI does (speed is measured by the CLI's duration, not here).
    checks = select(load_checks(), ["*"])
    run = runner.run(checks, controls=True)
    assert not [r for r in run.results if r.type == "guard"]
    # A check of a newer kernel than this one SKIPs naming it (e.g. listns(2), 6.19).
    release = re.match(r"(\d+)\.(\d+)", os.uname().release)
    assert release
    kernel = (int(release.group(1)), int(release.group(2)))
    newer = {c.id for c in checks if c.needs.min_kernel > kernel}
    bad = [
        (r.id, r.status.name, r.control and r.control.name, r.message)
        for r in run.results
        if (r.status is not Outcome.PASS or r.control is not Outcome.FAIL)
        and not (r.id in newer and r.status is Outcome.SKIP and "needs Linux" in r.message)
    ]
    assert bad == []


def test_guard_reports_a_cgroup_left_under_the_runner() -> None:
    base = _guard.own_cgroup2_dir()
    if base is None or not os.access(base, os.W_OK):
        pytest.skip("no writable cgroup v2 directory for this process")
    before = _guard.snapshot(["cgroup"])
    path = os.path.join(base, f"nsprim-guard-test-{os.getpid()}")
    os.mkdir(path)
    try:
        found = _guard.compare(before, _guard.snapshot(["cgroup"]))
    finally:
        os.rmdir(path)
    assert [r.id for r in found] == ["guard.cgroup"]
    assert path in (found[0].actual or "") + found[0].message


def test_guard_keeps_a_lasting_cgroup_and_drops_a_passing_one() -> None:
    # A concurrent run's check cgroup comes and goes under the same directory;
    # only what is still there on every look after the run is the run's leak.
    import threading

    base = _guard.own_cgroup2_dir()
    if base is None or not os.access(base, os.W_OK):
        pytest.skip("no writable cgroup v2 directory for this process")
    before = _guard.snapshot(["cgroup"])
    lasting = os.path.join(base, f"nsprim-guard-lasting-{os.getpid()}")
    passing = os.path.join(base, f"nsprim-guard-passing-{os.getpid()}")
    os.mkdir(lasting)
    os.mkdir(passing)
    gone = threading.Timer(0.3, os.rmdir, (passing,))
    try:
        after = _guard.snapshot(["cgroup"])
        gone.start()
        found = _guard.compare(before, _guard.settled(before, after, wait=1.0))
    finally:
        gone.join()
        os.rmdir(lasting)
        if os.path.isdir(passing):
            os.rmdir(passing)
    assert [r.id for r in found] == ["guard.cgroup"]
    text = (found[0].actual or "") + found[0].message
    assert lasting in text and passing not in text


# -- premises, policy refusals, exit statuses (issue 11) ------------------------


def _fake_unshare_then(fn_name: str) -> str:
    """In a forked child: a seccomp filter makes unshare/setns return 0; run one premise helper."""
    from nsprim import seccomp

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            seccomp.install([seccomp.Rule("unshare", 0), seccomp.Rule("setns", 0)])
            try:
                if fn_name == "unshare":
                    _context.unshare_verified(NEWUTS)
                else:
                    fd = os.open("/proc/1/ns/uts", os.O_RDONLY)
                    other = _context.ns_identity("uts", "1") != _context.ns_identity("uts")
                    if not other:  # pytest shares pid 1's UTS ns: make the target differ
                        os.close(fd)
                        fd = -1
                    _context.setns_verified(fd, NEWUTS)
                msg = "no Fail"
            except Fail as exc:
                msg = exc.msg
            except OSError as exc:
                msg = f"OSError {exc.errno}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 4096).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out


def test_unshare_that_returns_0_without_a_new_namespace_fails_naming_the_premise() -> None:
    assert _fake_unshare_then("unshare") == (
        "unshare(CLONE_NEWUTS) returned 0 and the UTS namespace is unchanged"
    )


@needs_root
def test_in_child_verifies_each_unshared_type_is_new() -> None:
    ctx = Context()
    # Real namespaces: the premise holds, the helper runs.
    assert ctx.in_child(os.getpid, unshare=NEWUTS | 0x08000000) > 0


def test_skip_for_names_the_probed_cause_only_for_refused_operations() -> None:
    from nsprim.conformance._needs import Availability

    probed = {
        "sethostname": Availability("refused", "seccomp filter returns EPERM for sethostname(2)"),
        "setns": Availability("available"),
        "unshare.net": Availability("refused", "user.max_net_namespaces is 0"),
    }
    ctx = Context(check_id="uts.x", probed=probed)
    skip = ctx.skip_for(PermissionError(1, "sethostname: Operation not permitted"), "sethostname")
    assert skip is not None and skip.reason == "seccomp filter returns EPERM for sethostname(2)"
    assert ctx.skip_for(PermissionError(1, "x"), "setns") is None  # permitted here: not policy
    assert ctx.skip_for(OSError(22, "x"), "sethostname") is None  # EINVAL is the kernel's answer
    assert ctx.skip_for(28, "clone3").reason == "user.max_net_namespaces is 0"  # type: ignore[union-attr]
    with pytest.raises(Skip, match="seccomp filter returns EPERM for sethostname"), \
            ctx.refusal_is_skip("sethostname"):  # fmt: skip
        raise PermissionError(1, "sethostname: Operation not permitted")
    with pytest.raises(Skip, match="max_net"):
        ctx.require("setns", "unshare.net")
    ctx.require("setns")


def test_attribute_names_limits_and_filters() -> None:
    from nsprim.conformance._needs import attribute

    a = attribute("clone3", 38, kernel=(6, 18, 0))  # ENOSYS
    if _needs_seccomp_mode() == "0":
        assert a.state == "absent"
    old = attribute("clone3", 38, kernel=(5, 2, 0))
    assert (old.state, old.cause) == ("absent", "clone3 needs Linux 5.3 (running 5.2)")


def _needs_seccomp_mode() -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return line.split()[1]
    return ""


def _seccomp_run(argv: list[str], rules: list[object]) -> tuple[int, str, str]:
    """Run the CLI in a forked child under a seccomp filter; return (status, stdout, stderr)."""
    from nsprim import seccomp

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            # pytest (or any caller) may have replaced sys.stdout/sys.stderr
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            seccomp.install(rules)  # type: ignore[arg-type]
            code = cli.main(argv)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    out = b""
    while chunk := os.read(out_r, 65536):
        out += chunk
    err = os.read(err_r, 65536)
    os.close(out_r)
    os.close(err_r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(), err.decode()


@needs_root
def test_cli_exits_32_with_one_line_when_nothing_could_be_checked() -> None:
    from nsprim.seccomp import Rule

    rules = [Rule("unshare"), Rule("clone3", 38), Rule("clone", 1, arg0_mask=0x7E020080)]
    status, out, err = _seccomp_run(["--only", "uts", "--format", "json"], rules)
    assert status == 32, err
    assert err == (
        "nsprim conformance: nothing could be checked here: "
        "a seccomp filter returns EPERM for unshare(CLONE_NEWUTS)\n"
    )
    doc = json.loads(out)
    assert doc["summary"] == {"PASS": 0, "FAIL": 0, "SKIP": 6, "ERROR": 0}
    assert doc["environment"]["sandbox"]["isolated"] == []
    assert doc["environment"]["probed"]["unshare.uts"]["state"] == "refused"


@needs_root
def test_cli_strict_makes_a_skip_non_zero_and_the_table_groups_skips_by_cause() -> None:
    from nsprim.seccomp import Rule

    argv = ["--only", "uts", "--controls"]
    status, out, err = _seccomp_run(argv, [Rule("sethostname")])
    assert status == 0, out + err
    assert "5 checks skipped: a seccomp filter returns EPERM for sethostname(2)" in out
    assert "sethostname: refused: a seccomp filter returns EPERM for sethostname(2)" in out
    assert "Control: the same check with the isolation left out; it must FAIL" in " ".join(
        out.split()
    )
    status, _, err = _seccomp_run([*argv, "--strict"], [Rule("sethostname")])
    assert status == 32
    assert "--strict" in err


@needs_root
def test_repeat_reports_a_check_whose_verdict_changes_as_an_error() -> None:
    reg = Registry()
    counter = f"/dev/shm/nsprim-test-repeat-{os.getpid()}"

    @reg.check("test.flips", catalogue="TEST-01")
    def flips(ctx: Context) -> None:
        """It holds every other time."""
        with open(counter, "a+") as f:
            f.write("x")
            f.seek(0)
            n = len(f.read())
        ctx.expect(n % 2 == 1, "odd run")

    @reg.check("test.steady", catalogue="TEST-02")
    def steady(ctx: Context) -> None:
        """It always holds."""

    try:
        run = runner.run(_checks(reg), repeat=3, jobs=1)
    finally:
        os.unlink(counter)
    flipped, kept = run.results[:2]
    assert flipped.status is Outcome.ERROR
    assert flipped.message.startswith("the verdict changed between 3 runs (PASS, FAIL, PASS)")
    assert kept.status is Outcome.PASS


def test_cli_only_and_exclude_accept_a_type_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list", "--only", "uts"]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert ids and all(i.startswith("uts.") for i in ids)
    assert cli.main(["--list", "--exclude", "uts", "pid", "net"]) == 0
    out = capsys.readouterr().out
    assert "uts." not in out and "pid." not in out and "ipc.sysv_msg" in out


def test_cli_list_prints_anchors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list", "--only", "UTS-01"]) == 0
    out = capsys.readouterr().out
    assert "Anchors" in out and "uts_namespaces(7)" in out


@needs_root
def test_interrupted_run_leaves_no_directory_and_no_process() -> None:
    import shutil
    import signal
    import tempfile

    tmp_path = tempfile.mkdtemp(prefix="nsprim-test-interrupt-")
    os.chmod(tmp_path, 0o755)  # the --as-user worker must reach its run directory
    try:
        _interrupt_and_look(tmp_path, signal.SIGTERM)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _interrupt_and_look(tmp_path: str, sig: int) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nsprim.conformance", "--controls", "--as-user", "nobody"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not os.listdir(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(tmp_path), "the run never created its directory"
    time.sleep(0.5)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig, proc.stderr.read() if proc.stderr else ""
    assert os.listdir(tmp_path) == []
    time.sleep(0.2)  # PDEATHSIG is asynchronous
    assert _processes_with_env(f"TMPDIR={tmp_path}") == []


def _processes_with_env(entry: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if entry.encode() in f.read().split(b"\0"):
                        found.append(int(pid))
            except OSError:
                continue
    return found


def test_guard_reports_a_run_directory_that_could_not_be_removed(
    tmp_path: os.PathLike[str],
) -> None:
    assert _guard.leftovers(os.path.join(tmp_path, "gone")) == []
    left = os.path.join(tmp_path, "run")
    os.makedirs(os.path.join(left, "uts.x-1"))
    (r,) = _guard.leftovers(left)
    assert (r.id, r.status) == ("guard.tmp", Outcome.ERROR)
    assert os.path.join(left, "uts.x-1") in r.message


@needs_root
def test_checks_write_temporary_files_into_the_run_directory_not_tmp() -> None:
    reg = Registry()
    marker = f"nsprim-test-tmp-{os.getpid()}"

    @reg.check("test.tmp", catalogue="TEST-01")
    def tmp(ctx: Context) -> None:
        """Temporary files stay in the sandbox."""
        import tempfile

        with open(f"/tmp/{marker}", "w") as f:  # a check that hard-codes /tmp
            f.write("x")
        d = tempfile.mkdtemp()
        ctx.expect(d.startswith(ctx.tmpdir + "/"), "tempfile writes into ctx.tmpdir", ctx.tmpdir, d)

    (r,) = [x for x in runner.run(_checks(reg)).results if x.type != "guard"]
    assert r.status is Outcome.PASS, r.message
    # With nsprim itself under /tmp (a checkout in /tmp, as in CI's pristine root) the
    # sandbox keeps the real /tmp, or later imports would find nothing (runner._private_tmp).
    top = tempfile.gettempdir()
    lives_in_tmp = any(
        p.startswith(top + os.sep) for p in (sys.prefix, os.path.dirname(nsprim.__file__))
    )
    if lives_in_tmp:
        os.unlink(f"/tmp/{marker}")
    else:
        assert not os.path.exists(f"/tmp/{marker}")  # /tmp was the sandbox's own tmpfs


@needs_root
def test_a_run_sweeps_the_directories_of_killed_runs_only() -> None:
    import fcntl
    import shutil

    reg = Registry()

    def body(ctx: Context) -> None:
        """Nothing to check."""

    reg.check("test.ok", catalogue="TEST-01")(body)
    tmp = tempfile.gettempdir()
    old = time.time() - 2 * runner.STALE_AFTER_S
    stale, live, young = (tempfile.mkdtemp(prefix=runner.RUN_DIR_PREFIX) for _ in range(3))
    held = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_SH)  # as a running run holds its own
        for d in (stale, live):
            os.mkdir(os.path.join(d, "ipc.posix_mq-x"))  # what a killed run leaves
            os.utime(d, (old, old))
        runner.run(_checks(reg), jobs=1)
        assert not os.path.exists(stale), "a directory no run holds was left"
        assert os.path.isdir(live), "a live run's directory was swept"
        assert os.path.isdir(young), "a directory younger than STALE_AFTER_S was swept"
        assert tmp == tempfile.gettempdir()
    finally:
        os.close(held)
        for d in (stale, live, young):
            shutil.rmtree(d, ignore_errors=True)
