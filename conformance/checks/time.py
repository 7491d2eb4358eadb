"""Time namespace checks: TIME-01 to TIME-15.

Layer: conformance checks. Imports public nsprim names, the conformance
registry, and :mod:`.._libc` for the calls neither :mod:`os`, :mod:`time` nor
:mod:`nsprim.syscalls` offer: clock_nanosleep(2), timerfd_create(2)/
timerfd_settime(2), timer_create(2) and friends, sysinfo(2), and raw
clock_gettime(2) and futex(2) system calls.

How a time namespace is used (time_namespaces(7)): unshare(CLONE_NEWTIME)
leaves the caller where it is and makes ``time_for_children`` a new
namespace; the caller writes CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets to
``/proc/self/timens_offsets``; the first process to enter (a child it forks,
or setns(2) to ``time_for_children``) freezes them. So most checks here run
an *unsharer* helper (``ctx.in_child(..., unshare=ctx.isolate(CLONE_NEWTIME))``)
that writes the offsets and forks the process that looks at the clocks. In a
negative control the unsharer gets no new time namespace: its offset write is
refused (EACCES: the initial namespace's offsets are frozen; EPERM rootless)
and the processes it forks see the parent's clocks, which the check's own
expectations then reject.

Clock readings are nanoseconds. A reading inside the namespace is compared
with readings the unsharer (which stays outside) takes just before and just
after it: ``before + offset <= inside <= after + offset`` holds exactly for a
correct kernel, with no tolerance to tune.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

from nsprim import syscalls
from nsprim.namespace import Namespace

from .. import _libc
from ..outcome import Fail
from ..registry import Context, Needs, Skip, check
from ._common import NEWTIME, NEWUSER, attempt, errname, ns_key, setns_path, unshare
from ._procs import clone_run, fork_run, kill_and_reap, recv_msg, send_msg, wait

__all__: list[str] = []

NSEC = 1_000_000_000
DAY = 86_400 * NSEC

# include/uapi/linux/time.h
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_MONOTONIC_RAW = 4
CLOCK_REALTIME_COARSE = 5
CLOCK_MONOTONIC_COARSE = 6
CLOCK_BOOTTIME = 7
CLOCK_BOOTTIME_ALARM = 9
CLOCK_TAI = 11
_CLOCK_NAMES = {
    CLOCK_REALTIME: "CLOCK_REALTIME",
    CLOCK_MONOTONIC: "CLOCK_MONOTONIC",
    CLOCK_MONOTONIC_RAW: "CLOCK_MONOTONIC_RAW",
    CLOCK_REALTIME_COARSE: "CLOCK_REALTIME_COARSE",
    CLOCK_MONOTONIC_COARSE: "CLOCK_MONOTONIC_COARSE",
    CLOCK_BOOTTIME: "CLOCK_BOOTTIME",
    CLOCK_BOOTTIME_ALARM: "CLOCK_BOOTTIME_ALARM",
    CLOCK_TAI: "CLOCK_TAI",
}
# The offsets the checks write: days, so that a missing offset can never pass for
# jitter, with nanoseconds, so that the nanosecond field is exercised too.
OFFSET_MONOTONIC = 10 * DAY + 123_456_789
OFFSET_BOOTTIME = 9 * DAY + 987_654_321
_OFFSETS_FILE = "/proc/self/timens_offsets"


def _now(clock: int) -> int:
    """Read *clock* through glibc's clock_gettime, which the vDSO serves."""
    return time.clock_gettime_ns(clock)


def _sample(clocks: Sequence[int]) -> dict[int, Optional[int]]:
    """Read each clock; None for a clock this machine lacks (EINVAL).

    CLOCK_BOOTTIME_ALARM needs an RTC device (alarmtimer); without one, the
    kernel answers EINVAL, as the selftests' check_skip() expects.
    """
    out: dict[int, Optional[int]] = {}
    for clock in clocks:
        try:
            out[clock] = _now(clock)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            out[clock] = None
    return out


def _record(clock: int, offset: int) -> str:
    """One timens_offsets line: ``"<clockid> <seconds> <nanoseconds>"``."""
    return f"{clock} {offset // NSEC} {offset % NSEC}"


def _write_offsets(records: str) -> str:
    """Write *records* to /proc/self/timens_offsets in one write(2); ``"ok"`` or the errno name."""
    try:
        fd = os.open(_OFFSETS_FILE, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, records.encode())
        finally:
            os.close(fd)
    except OSError as err:
        return errname(err)
    return "ok"


def _read_offsets() -> dict[str, tuple[int, int]]:
    """Parse /proc/self/timens_offsets: ``{"monotonic": (seconds, nanoseconds), ...}``."""
    with open(_OFFSETS_FILE) as f:
        rows = [line.split() for line in f if line.strip()]
    return {name: (int(sec), int(nsec)) for name, sec, nsec in rows}


def _time_ns(path: str) -> tuple[int, int]:
    """Return the (st_dev, st_ino) identity of the time namespace at *path*."""
    ns = Namespace.from_path(path)
    return (ns.dev, ns.ino)


def _fmt(ns: int) -> str:
    sign = "-" if ns < 0 else "+"
    return f"{sign}{abs(ns) / NSEC:.9f} s"


# --- the unsharer and its observations --------------------------------------------------


def _observe(
    ctx: Context, records: str, clocks: Sequence[int], probe: Callable[[], Any]
) -> dict[str, Any]:
    """In the unsharer: write *records*, then sample its own *clocks* around a child's *probe*."""
    write = _write_offsets(records)
    before = _sample(clocks)
    inside = ctx.in_child(probe)
    after = _sample(clocks)
    return {"write": write, "before": before, "inside": inside, "after": after}


def _observe_in_new_ns(
    ctx: Context, clocks: Sequence[int], probe: Callable[[], Any]
) -> dict[str, Any]:
    """Run :func:`_observe` in an unsharer (both standard offsets) and check it stayed outside."""
    records = "\n".join(
        (_record(CLOCK_MONOTONIC, OFFSET_MONOTONIC), _record(CLOCK_BOOTTIME, OFFSET_BOOTTIME))
    )
    outer_before = _sample(clocks)
    seen: dict[str, Any] = ctx.in_child(
        _observe, ctx, records, clocks, probe, unshare=ctx.isolate(NEWTIME)
    )
    outer_after = _sample(clocks)
    for clock in clocks:
        if seen["before"][clock] is None:
            continue
        window = (outer_before[clock], outer_after[clock])
        got = (seen["before"][clock], seen["after"][clock])
        ctx.expect(
            window[0] <= got[0] <= got[1] <= window[1],
            f"{_CLOCK_NAMES[clock]} of the process that unshared CLONE_NEWTIME is the parent's",
            f"within {window}",
            got,
        )
    return seen


def _expect_shift(
    ctx: Context, seen: dict[str, Any], clock: int, inside: Optional[int], offset: int, what: str
) -> None:
    """Expect *inside* to be the unsharer's *clock* reading shifted by *offset*."""
    low, high = seen["before"][clock], seen["after"][clock]
    if low is None or inside is None:
        return  # a clock this machine lacks; _sample documents when
    window = (low + offset, high + offset)
    ctx.expect(
        window[0] <= inside <= window[1],
        f"{what} in the new time namespace is the parent's {_fmt(offset)} "
        f"(timens_offsets write: {seen['write']})",
        f"within {window}",
        inside,
    )


_MONOTONIC_OFFSETS = {
    CLOCK_MONOTONIC: OFFSET_MONOTONIC,
    CLOCK_MONOTONIC_COARSE: OFFSET_MONOTONIC,
    CLOCK_MONOTONIC_RAW: OFFSET_MONOTONIC,
}
_REALTIME_CLOCKS = (CLOCK_REALTIME, CLOCK_REALTIME_COARSE, CLOCK_TAI)

_NEEDS = Needs(min_kernel=(5, 6), kconfig=("TIME_NS",))
_ANCHOR = "time_namespaces(7)"


# --- TIME-01 ------------------------------------------------------------------------------


def _unsharer_namespaces(ctx: Context) -> dict[str, tuple[int, int]]:
    return {
        "time": _time_ns("/proc/self/ns/time"),
        "time_for_children": _time_ns("/proc/self/ns/time_for_children"),
        "child's time": ctx.in_child(_time_ns, "/proc/self/ns/time"),
    }


@check(
    "time.caller_not_moved",
    catalogue="TIME-01",
    level="MUST",
    anchors=(_ANCHOR, "selftest timens/timens.c"),
    needs=_NEEDS,
    timeout=5.0,
)
def caller_not_moved(ctx: Context) -> None:
    """unshare(CLONE_NEWTIME) changes /proc/self/ns/time_for_children but not /proc/self/ns/time.

    A helper unshares CLONE_NEWTIME: its ``time`` link must still name the
    parent's namespace, its ``time_for_children`` a new one, and a child it
    forks must be in that new one (nsfs (st_dev, st_ino) identities).
    Control: the helper does not unshare, so ``time_for_children`` stays the
    parent's.
    """
    mine = {
        "time": _time_ns("/proc/self/ns/time"),
        "time_for_children": _time_ns("/proc/self/ns/time_for_children"),
    }
    seen = ctx.in_child(_unsharer_namespaces, ctx, unshare=ctx.isolate(NEWTIME))
    ctx.expect_equal(seen["time"], mine["time"], "the unsharer's own time namespace")
    ctx.expect(
        seen["time_for_children"] != mine["time_for_children"],
        "the unsharer's time_for_children is a new namespace",
        f"not {mine['time_for_children']}",
        seen["time_for_children"],
    )
    ctx.expect_equal(
        seen["child's time"],
        seen["time_for_children"],
        "time namespace of a child forked after the unshare",
    )


# --- TIME-02 ------------------------------------------------------------------------------


def _monotonic_clocks() -> dict[int, Optional[int]]:
    return _sample(tuple(_MONOTONIC_OFFSETS))


@check(
    "time.monotonic_offset",
    catalogue="TIME-02",
    level="MUST",
    anchors=(_ANCHOR, "selftest timens/timens.c", "LTP clock_gettime03"),
    needs=_NEEDS,
    timeout=5.0,
)
def monotonic_offset(ctx: Context) -> None:
    """With a MONOTONIC offset, a child's CLOCK_MONOTONIC, _COARSE and _RAW are the parent's + it.

    A helper unshares CLONE_NEWTIME, writes a 10-day (plus nanoseconds)
    CLOCK_MONOTONIC offset and forks a child that reads the three monotonic
    clocks; each must lie between the helper's own readings taken just before
    and after, shifted by exactly the offset. The helper's readings must lie
    between the check's, unshifted (the parent's clocks are unchanged).
    Control: the helper does not unshare, so no offset applies.
    """
    seen = _observe_in_new_ns(ctx, tuple(_MONOTONIC_OFFSETS), _monotonic_clocks)
    for clock, offset in _MONOTONIC_OFFSETS.items():
        _expect_shift(ctx, seen, clock, seen["inside"][clock], offset, _CLOCK_NAMES[clock])


# --- TIME-03 ------------------------------------------------------------------------------


def _uptime_centiseconds() -> int:
    with open("/proc/uptime") as f:
        sec, _, cs = f.read().split()[0].partition(".")
    return int(sec) * 100 + int(cs)


def _btime() -> int:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise LookupError("no btime line in /proc/stat")


def _boot_views() -> dict[str, Any]:
    """Read CLOCK_BOOTTIME around /proc/uptime, sysinfo(2) and /proc/stat btime."""
    first = _now(CLOCK_BOOTTIME)
    alarm = _sample((CLOCK_BOOTTIME_ALARM,))[CLOCK_BOOTTIME_ALARM]
    uptime_cs = _uptime_centiseconds()
    sysinfo = _libc.sysinfo_uptime()
    btime = _btime()
    last = _now(CLOCK_BOOTTIME)
    return {
        "boottime": first,
        "alarm": alarm,
        "uptime_cs": uptime_cs,
        "sysinfo": sysinfo,
        "btime": btime,
        "boottime after": last,
    }


def _ceil_seconds(ns: int) -> int:
    return -(-ns // NSEC)


@check(
    "time.boottime_offset",
    catalogue="TIME-03",
    level="MUST",
    anchors=(_ANCHOR, "LTP sysinfo03", "selftest timens/procfs.c"),
    needs=_NEEDS,
    timeout=5.0,
)
def boottime_offset(ctx: Context) -> None:
    """CLOCK_BOOTTIME (and _ALARM), /proc/uptime and sysinfo().uptime include the BOOTTIME offset.

    A helper unshares CLONE_NEWTIME, writes a 9-day CLOCK_BOOTTIME offset
    and forks a child. The child's CLOCK_BOOTTIME (and CLOCK_BOOTTIME_ALARM,
    where an RTC makes that clock exist) must be the helper's shifted by the
    offset; its /proc/uptime (truncated to centiseconds) and sysinfo(2)
    uptime (rounded up to seconds) must agree with its own boottime read
    around them; from Linux 5.11 its /proc/stat btime must move back by the
    offset (within a second: btime is whole seconds of realtime minus
    boottime). Control: the helper does not unshare.
    """
    host_btime = _btime()
    seen = _observe_in_new_ns(ctx, (CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM), _boot_views)
    inside = seen["inside"]
    _expect_shift(ctx, seen, CLOCK_BOOTTIME, inside["boottime"], OFFSET_BOOTTIME, "CLOCK_BOOTTIME")
    _expect_shift(
        ctx, seen, CLOCK_BOOTTIME_ALARM, inside["alarm"], OFFSET_BOOTTIME, "CLOCK_BOOTTIME_ALARM"
    )
    window = (inside["boottime"] // 10_000_000, inside["boottime after"] // 10_000_000)
    ctx.expect(
        window[0] <= inside["uptime_cs"] <= window[1],
        "/proc/uptime (centiseconds) agrees with CLOCK_BOOTTIME in the namespace",
        f"within {window}",
        inside["uptime_cs"],
    )
    window = (_ceil_seconds(inside["boottime"]), _ceil_seconds(inside["boottime after"]))
    ctx.expect(
        window[0] <= inside["sysinfo"] <= window[1],
        "sysinfo(2) uptime (seconds, rounded up) agrees with CLOCK_BOOTTIME in the namespace",
        f"within {window}",
        inside["sysinfo"],
    )
    if ctx.kernel[:2] < (5, 11):
        # /proc/stat btime follows the time namespace only since Linux 5.11
        # ("fs/proc: apply the time namespace offset to /proc/stat btime");
        # the catalogued guarantee (clocks, /proc/uptime, sysinfo) holds before.
        return
    shift = host_btime - inside["btime"]
    whole = OFFSET_BOOTTIME // NSEC
    ctx.expect(
        whole - 1 <= shift <= whole + 1,
        "/proc/stat btime in the namespace is the parent's minus the offset",
        f"{whole} +- 1",
        shift,
    )


# --- TIME-04 ------------------------------------------------------------------------------


def _realtime_and_monotonic() -> dict[int, Optional[int]]:
    return _sample((CLOCK_MONOTONIC, *_REALTIME_CLOCKS))


@check(
    "time.realtime_global",
    catalogue="TIME-04",
    level="MUST",
    anchors=(_ANCHOR,),
    needs=_NEEDS,
    timeout=5.0,
)
def realtime_global(ctx: Context) -> None:
    """CLOCK_REALTIME is not virtualized: it reads the same inside a time namespace and outside.

    A helper unshares CLONE_NEWTIME, writes the standard offsets and forks a
    child. The child's CLOCK_MONOTONIC must show the offset (the namespace is
    in effect), while its CLOCK_REALTIME, CLOCK_REALTIME_COARSE and CLOCK_TAI
    lie between the helper's own readings of the same clocks, unshifted.
    Control: the helper does not unshare, so the child is not in a time
    namespace with offsets and the first expectation fails.
    """
    seen = _observe_in_new_ns(ctx, (CLOCK_MONOTONIC, *_REALTIME_CLOCKS), _realtime_and_monotonic)
    inside = seen["inside"]
    _expect_shift(
        ctx, seen, CLOCK_MONOTONIC, inside[CLOCK_MONOTONIC], OFFSET_MONOTONIC, "CLOCK_MONOTONIC"
    )
    for clock in _REALTIME_CLOCKS:
        _expect_shift(ctx, seen, clock, inside[clock], 0, _CLOCK_NAMES[clock])


# --- TIME-05 ------------------------------------------------------------------------------


def _offsets_lifecycle(ctx: Context, entry: str, enter: bool) -> dict[str, Any]:
    """In the unsharer: write twice, let the first process enter (by *entry*), write again."""
    steps: dict[str, Any] = {
        "first write": _write_offsets(_record(CLOCK_MONOTONIC, 100 * NSEC)),
        "second write": _write_offsets(
            f"{_record(CLOCK_MONOTONIC, OFFSET_MONOTONIC)}\n"
            f"{_record(CLOCK_BOOTTIME, OFFSET_BOOTTIME)}"
        ),
    }
    steps["offsets"] = _read_offsets()
    if enter:
        if entry == "fork":
            ctx.in_child(_now, CLOCK_MONOTONIC)  # a child is the first process in the namespace
        else:
            setns_path("/proc/self/ns/time_for_children", NEWTIME)  # the unsharer itself enters
    steps["write after entry"] = _write_offsets(_record(CLOCK_MONOTONIC, 200 * NSEC))
    steps["offsets after"] = _read_offsets()
    return steps


@check(
    "time.offsets_before_entry",
    catalogue="TIME-05",
    level="MUST",
    anchors=(_ANCHOR, "selftest timens/timens.c"),
    needs=_NEEDS,
    timeout=5.0,
)
def offsets_before_entry(ctx: Context) -> None:
    """timens_offsets can be written repeatedly until the first process enters, then EACCES.

    For each way in (a forked child, or setns(2) to ``time_for_children`` by
    the unsharer itself), a helper unshares CLONE_NEWTIME and writes offsets
    twice: both writes succeed and the file shows the second. Once a process
    has entered, a third write fails with EACCES and the offsets stay as
    they were. Control: no process enters (the precondition is removed), so
    the third write succeeds.
    """
    second = {
        "monotonic": (OFFSET_MONOTONIC // NSEC, OFFSET_MONOTONIC % NSEC),
        "boottime": (OFFSET_BOOTTIME // NSEC, OFFSET_BOOTTIME % NSEC),
    }
    for entry in ("fork", "setns"):
        steps = ctx.in_child(_offsets_lifecycle, ctx, entry, not ctx.control, unshare=NEWTIME)
        ctx.expect_equal(steps["first write"], "ok", f"first timens_offsets write ({entry})")
        ctx.expect_equal(steps["second write"], "ok", f"second timens_offsets write ({entry})")
        ctx.expect_equal(steps["offsets"], second, f"timens_offsets after two writes ({entry})")
        ctx.expect_equal(
            steps["write after entry"],
            "EACCES",
            f"timens_offsets write after the first process entered by {entry}",
        )
        ctx.expect_equal(
            steps["offsets after"], second, f"timens_offsets after the refused write ({entry})"
        )


# --- TIME-06 ------------------------------------------------------------------------------

_M, _B = CLOCK_MONOTONIC, CLOCK_BOOTTIME
# (what, malformed records, errno, the nearest well-formed records): the cases of
# LTP timens01 plus the nanosecond boundary and a clock the kernel does not offset.
# The negative control writes the well-formed twin instead, so each write succeeds.
_BAD_OFFSETS = (
    ("garbage", "not an offset", "EINVAL", f"{_M} 10 0"),
    ("missing nanoseconds", f"{_M} 10", "EINVAL", f"{_M} 10 0"),
    ("negative nanoseconds", f"{_M} 10 -10", "EINVAL", f"{_M} 10 10"),
    ("nanoseconds = 1e9", f"{_M} 10 1000000000", "EINVAL", f"{_M} 10 999999999"),
    ("nanoseconds > 1e9", f"{_M} 10 1000000001", "EINVAL", f"{_M} 11 1"),
    ("CLOCK_REALTIME", f"{CLOCK_REALTIME} 10 0", "EINVAL", f"{_M} 10 0"),
    ("CLOCK_MONOTONIC_RAW", f"{CLOCK_MONOTONIC_RAW} 10 0", "EINVAL", f"{_M} 10 0"),
    ("a bad second line", f"{_M} 10 0\na", "EINVAL", f"{_M} 10 0\n{_B} 10 0"),
    ("monotonic overflow", f"{_M} 9223372036 0", "ERANGE", f"{_M} 86400 0"),
    ("monotonic underflow", f"{_M} -9223372036 0", "ERANGE", f"{_M} -1 0"),
    ("boottime overflow", f"{_B} 9223372036 0", "ERANGE", f"{_B} 86400 0"),
)


def _write_each(records: Sequence[str]) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Write each of *records* on its own; return the results and the offsets left."""
    return [_write_offsets(r) for r in records], _read_offsets()


@check(
    "time.offset_validation",
    catalogue="TIME-06",
    level="MUST",
    anchors=("LTP timens01", _ANCHOR),
    needs=_NEEDS,
    timeout=5.0,
)
def offset_validation(ctx: Context) -> None:
    """Malformed timens_offsets records, bad nsec or clock give EINVAL, overflowing offsets ERANGE.

    A helper unshares CLONE_NEWTIME and writes each bad record of the table
    (LTP timens01's cases, the 1e9 boundary, CLOCK_MONOTONIC_RAW, both
    overflow directions, and CLOCK_BOOTTIME overflow) to
    /proc/self/timens_offsets; each write must fail with its errno and leave
    the offsets at zero. Control: the helper writes each case's nearest
    well-formed twin instead (the precondition, malformedness, is removed),
    so the writes succeed.
    """
    records = [good if ctx.control else bad for _, bad, _, good in _BAD_OFFSETS]
    results, left = ctx.in_child(_write_each, records, unshare=NEWTIME)
    for (what, bad, want, _), got in zip(_BAD_OFFSETS, results):
        ctx.expect_equal(got, want, f"timens_offsets write of {what} ({bad!r})")
    ctx.expect_equal(
        left, {"monotonic": (0, 0), "boottime": (0, 0)}, "offsets after the refused writes"
    )


# --- TIME-07 ------------------------------------------------------------------------------

_SLEEP_NS = 300_000_000  # how far ahead (in the namespace's time) every timer is armed
#: Leads tried in turn for a waiter that armed its timer only after the target had
#: passed (a loaded machine): that run shows nothing either way, so it is repeated.
_LEADS_NS = (_SLEEP_NS, 4 * _SLEEP_NS, 12 * _SLEEP_NS)
_WAIT_TIMEOUT = 5.0


def _wait_clock_nanosleep(clock: int, target: int) -> int:
    _libc.clock_nanosleep_abs(clock, target)
    return 0


def _wait_timerfd(clock: int, target: int) -> int:
    fd = _libc.timerfd_abs(clock, target)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(_WAIT_TIMEOUT * 1000):
            raise TimeoutError(f"the timerfd did not expire within {_WAIT_TIMEOUT} s")
        return int.from_bytes(os.read(fd, 8), sys.byteorder)  # expirations
    finally:
        os.close(fd)


def _wait_posix_timer(clock: int, target: int) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    with _libc.PosixTimer(clock, signal.SIGUSR1) as timer:
        timer.arm_abs(target)
        info = signal.sigtimedwait({signal.SIGUSR1}, _WAIT_TIMEOUT)
        if info is None:
            raise TimeoutError(f"the POSIX timer did not fire within {_WAIT_TIMEOUT} s")
        return int(info.si_signo)


def _wait_futex(clock: int, target: int) -> int:
    # FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout (no FUTEX_CLOCK_REALTIME).
    ended = _libc.futex_wait_abs(target)
    if ended != "ETIMEDOUT":
        raise OSError(
            getattr(errno, ended, 0), f"futex(FUTEX_WAIT_BITSET) ended with {ended}, not ETIMEDOUT"
        )
    return 0


_WAITERS: dict[str, Callable[[int, int], int]] = {
    "clock_nanosleep(TIMER_ABSTIME)": _wait_clock_nanosleep,
    "timerfd_settime(TFD_TIMER_ABSTIME)": _wait_timerfd,
    "timer_settime(TIMER_ABSTIME)": _wait_posix_timer,
    "futex(FUTEX_WAIT_BITSET)": _wait_futex,
}
_TIMERS = (
    ("clock_nanosleep(TIMER_ABSTIME)", CLOCK_MONOTONIC),
    ("clock_nanosleep(TIMER_ABSTIME)", CLOCK_BOOTTIME),
    ("timerfd_settime(TFD_TIMER_ABSTIME)", CLOCK_MONOTONIC),
    ("timerfd_settime(TFD_TIMER_ABSTIME)", CLOCK_BOOTTIME),
    ("timer_settime(TIMER_ABSTIME)", CLOCK_MONOTONIC),
    ("timer_settime(TIMER_ABSTIME)", CLOCK_BOOTTIME),
    ("futex(FUTEX_WAIT_BITSET)", CLOCK_MONOTONIC),
)


def _arm_and_wait(kind: str, clock: int, target: int) -> dict[str, int]:
    """Arm *kind* for absolute *target* on *clock* and wait; report the clock around it."""
    armed = _now(clock)
    detail = _WAITERS[kind](clock, target)
    return {"armed": armed, "woke": _now(clock), "detail": detail}


def _ready() -> None:
    """Nothing: a helper that waits, already forked, for its request."""


def _absolute_timers(ctx: Context) -> dict[str, Any]:
    """In the unsharer: set offsets that put the namespace *behind*, then arm every timer.

    Negative offsets make a kernel that reads an absolute time outside the
    namespace fire at once (the target lies in the host's past) instead of
    hanging. The waiters are forked (into the namespace) before the targets
    are computed, so that fork latency does not eat into the lead.

    A waiter that armed only after its target had passed on a correct clock
    (late by less than half the offset: scheduling, not a wrong namespace,
    which makes it late by the whole offset) proves nothing, and is asked
    again with a longer lead (:data:`_LEADS_NS`).
    """
    back = min(3600 * NSEC, _now(CLOCK_MONOTONIC) // 2, _now(CLOCK_BOOTTIME) // 2)
    back -= back % NSEC
    if back < 2 * NSEC:
        raise Skip("the machine booted too recently to set a negative offset of 2 s or more")
    write = _write_offsets(f"{_record(CLOCK_MONOTONIC, -back)}\n{_record(CLOCK_BOOTTIME, -back)}")
    waiters = [ctx.spawn_child(_ready) for _ in _TIMERS]
    for waiter in waiters:
        waiter.recv()
    results: dict[int, tuple[str, int, int, dict[str, int]]] = {}
    pending = list(range(len(_TIMERS)))
    for lead in _LEADS_NS:
        start = {clock: _now(clock) for clock in (CLOCK_MONOTONIC, CLOCK_BOOTTIME)}
        targets = {}
        for i in pending:
            kind, clock = _TIMERS[i]
            # The namespace's time for "start + lead" on the host's clock.
            targets[i] = start[clock] + lead - back
            waiters[i].send((_arm_and_wait, kind, clock, targets[i]))
        for i in pending:
            kind, clock = _TIMERS[i]
            seen = waiters[i].recv(timeout=_WAIT_TIMEOUT + lead / NSEC)
            results[i] = (kind, clock, targets[i], {**seen, "lead": lead})
        pending = [i for i in pending if 0 <= results[i][3]["armed"] - targets[i] < back // 2]
        if not pending:
            break
    return {"write": write, "back": back, "results": [results[i] for i in sorted(results)]}


def _posix_timers_missing() -> Optional[str]:
    return None if _libc.HAVE_POSIX_TIMERS else "no timer_create in libc or librt.so.1"


@check(
    "time.absolute_timers",
    catalogue="TIME-07",
    level="MUST",
    anchors=(
        "LTP clock_nanosleep03",
        "LTP timerfd04",
        "selftest timens/clock_nanosleep.c",
        "selftest timens/timerfd.c",
        "selftest timens/timer.c",
        "selftest timens/futex.c",
    ),
    needs=Needs(min_kernel=(5, 6), kconfig=("TIME_NS",), probes=(_posix_timers_missing,)),
    timeout=15.0,
)
def absolute_timers(ctx: Context) -> None:
    """clock_nanosleep, timerfd, POSIX timers and futex read absolute timeouts in namespace time.

    A helper unshares CLONE_NEWTIME and sets negative CLOCK_MONOTONIC and
    CLOCK_BOOTTIME offsets (the namespace runs up to an hour behind). Like
    LTP clock_nanosleep03, it computes from its own (host) clock the
    namespace time 300 ms ahead, and children in the namespace arm, on both
    clocks, clock_nanosleep(TIMER_ABSTIME), timerfd_settime(TFD_TIMER_ABSTIME)
    and timer_settime(TIMER_ABSTIME) (SIGEV_SIGNAL), and on CLOCK_MONOTONIC
    futex(FUTEX_WAIT_BITSET) (converted since Linux 5.10, c2f7d08cccf4;
    earlier kernels FAIL here). Each child's namespace clock must read before
    the target when it arms, and after it when it wakes: a kernel that took
    the value as host time would fire at once, the target being in the host's
    past. A child that armed only after its target (late by less than half
    the offset: a loaded machine, not a wrong clock) tells nothing and is
    asked again 1.2 s, then 3.6 s ahead. Control: the helper does not
    unshare, so the child's clock is the host's and already past the target
    (by the whole offset) when it arms.
    """
    seen = ctx.in_child(_absolute_timers, ctx, unshare=ctx.isolate(NEWTIME), timeout=12.0)
    for kind, clock, target, result in seen["results"]:
        what = f"{kind} on {_CLOCK_NAMES[clock]}"
        ctx.expect(
            result["armed"] < target,
            f"{what} was armed before its target in namespace time, so its wake-up can tell "
            f"(offset {_fmt(-seen['back'])}, timens_offsets write: {seen['write']})",
            f"< {target}",
            result["armed"],
        )
        ctx.expect(
            result["woke"] >= target,
            f"{what} did not wake before its target in namespace time",
            f">= {target}",
            result["woke"],
        )
        slept = result["woke"] - result["armed"]
        ctx.expect(
            slept <= result["lead"] + NSEC,
            f"{what} did not oversleep",
            f"<= {(result['lead'] + NSEC) / 1e6:.0f} ms",
            f"{slept / 1e6:.1f} ms",
        )
        if kind.startswith("timerfd"):
            ctx.expect_equal(result["detail"], 1, f"{what} expirations read")


# --- TIME-08 ------------------------------------------------------------------------------

_VDSO_CLOCKS = {
    CLOCK_MONOTONIC: OFFSET_MONOTONIC,
    CLOCK_MONOTONIC_COARSE: OFFSET_MONOTONIC,
    CLOCK_MONOTONIC_RAW: OFFSET_MONOTONIC,
    CLOCK_BOOTTIME: OFFSET_BOOTTIME,
    CLOCK_REALTIME: 0,
}


def _vdso_and_syscall() -> dict[int, tuple[int, int, int]]:
    """Read each clock vDSO, raw syscall, vDSO again."""
    return {
        clock: (_now(clock), _libc.clock_gettime_syscall(clock), _now(clock))
        for clock in _VDSO_CLOCKS
    }


def _vdso_mapped() -> bool:
    with open("/proc/self/maps") as f:
        return any(line.rstrip().endswith("[vdso]") for line in f)


@check(
    "time.vdso_consistency",
    catalogue="TIME-08",
    level="MUST",
    anchors=("selftest timens/timens.c", "selftest vDSO/vdso_test_correctness.c"),
    needs=_NEEDS,
    timeout=5.0,
)
def vdso_consistency(ctx: Context) -> None:
    """Inside a time namespace, vDSO and raw-syscall clock readings agree.

    A helper unshares CLONE_NEWTIME, writes the standard offsets and forks a
    child that reads CLOCK_MONOTONIC, _COARSE, _RAW, CLOCK_BOOTTIME and
    CLOCK_REALTIME through glibc (the vDSO), then syscall(SYS_clock_gettime),
    then the vDSO again: the syscall reading must lie between the two vDSO
    ones, and both paths must show the namespace's offset (none for
    REALTIME) against the helper's own readings. Control: the helper does
    not unshare, so neither path shows an offset.
    """
    if not _vdso_mapped():
        raise Skip("no [vdso] mapping in this process: nothing to compare the syscall with")
    _libc.syscall_number("clock_gettime")  # a SKIP where the suite has no number for it
    seen = _observe_in_new_ns(ctx, tuple(_VDSO_CLOCKS), _vdso_and_syscall)
    for clock, offset in _VDSO_CLOCKS.items():
        first, raw, last = seen["inside"][clock]
        name = _CLOCK_NAMES[clock]
        _expect_shift(ctx, seen, clock, first, offset, f"{name} via the vDSO")
        _expect_shift(ctx, seen, clock, raw, offset, f"{name} via syscall(2)")
        ctx.expect(
            first <= raw <= last,
            f"{name} via syscall(2) lies between two vDSO readings in the namespace",
            f"within {(first, last)}",
            raw,
        )


# --- TIME-09 ------------------------------------------------------------------------------


def _prepare_time_ns() -> None:
    """In a helper that unshared CLONE_NEWTIME: give its time_for_children the standard offset."""
    result = _write_offsets(_record(CLOCK_MONOTONIC, OFFSET_MONOTONIC))
    if result != "ok":  # setup, not the guarantee under test: an ERROR
        err = getattr(errno, result, errno.EIO)
        raise OSError(err, f"writing {_OFFSETS_FILE}: {os.strerror(err)}")


def _setns_retrying(fd: int) -> str:
    """setns(fd, CLONE_NEWTIME), retrying EUSERS for up to 0.5 s.

    pthread_join returns once the thread's tid is cleared, which the kernel
    does a moment before the thread drops its reference to the address
    space; current_is_single_threaded() can still see it in that window.
    """
    deadline = time.monotonic() + 0.5
    while True:
        result = attempt(syscalls.setns, fd, NEWTIME)
        if result != "EUSERS" or time.monotonic() > deadline:
            return result
        time.sleep(0.002)


def _join_time_ns(path: str, threaded: bool) -> dict[str, Any]:
    """Try setns(2) into the time namespace at *path* with a second thread alive, then alone."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        seen: dict[str, Any] = {
            "target": _time_ns(path),
            "own": _time_ns("/proc/self/ns/time"),
        }
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait, args=(_WAIT_TIMEOUT,), daemon=True)
        if threaded:
            worker.start()
        try:
            seen["with a second thread"] = attempt(syscalls.setns, fd, NEWTIME)
            seen["after the refused setns"] = _time_ns("/proc/self/ns/time")
        finally:
            if threaded:
                stop.set()
                worker.join(_WAIT_TIMEOUT)
        before = _now(CLOCK_MONOTONIC)
        seen["single-threaded"] = _setns_retrying(fd)
        seen["shift"] = _now(CLOCK_MONOTONIC) - before
        seen["joined"] = _time_ns("/proc/self/ns/time")
    finally:
        os.close(fd)
    return seen


@check(
    "time.setns_single_threaded",
    catalogue="TIME-09",
    level="MUST",
    anchors=("kernel timens_install()", "selftest pidfd/pidfd_setns_test.c switch_timens"),
    needs=Needs(min_kernel=(5, 6), kconfig=("TIME_NS",), ops=("setns",)),
    timeout=5.0,
)
def setns_single_threaded(ctx: Context) -> None:
    """setns(2) to a time namespace fails with EUSERS in a multithreaded process; alone it works.

    A helper unshares CLONE_NEWTIME and sets a CLOCK_MONOTONIC offset. A
    process opens the helper's ``time_for_children`` and, with a second
    thread running, calls setns(2): EUSERS, and its time namespace is
    unchanged. Once the thread is joined, setns(2) succeeds: the process is
    in that namespace and its CLOCK_MONOTONIC jumps by the offset. Control:
    no second thread (the precondition is removed), so the first setns(2)
    succeeds.
    """
    holder = ctx.spawn_child(_prepare_time_ns, unshare=NEWTIME)
    holder.recv()
    seen = ctx.in_child(_join_time_ns, holder.ns_path("time_for_children"), not ctx.control)
    ctx.expect_equal(
        seen["with a second thread"], "EUSERS", "setns(CLONE_NEWTIME) with a second thread alive"
    )
    ctx.expect_equal(
        seen["after the refused setns"], seen["own"], "time namespace after the refused setns"
    )
    ctx.expect_equal(seen["single-threaded"], "ok", "setns(CLONE_NEWTIME) once single-threaded")
    ctx.expect_equal(seen["joined"], seen["target"], "time namespace after setns(2)")
    ctx.expect(
        OFFSET_MONOTONIC <= seen["shift"] <= OFFSET_MONOTONIC + NSEC,
        "CLOCK_MONOTONIC jumps by the namespace's offset at setns(2)",
        f"{_fmt(OFFSET_MONOTONIC)} (+ < 1 s)",
        _fmt(seen["shift"]),
    )


# --- TIME-10 ------------------------------------------------------------------------------

#: The program the unsharer execs: cat prints /proc/uptime (its own view of CLOCK_BOOTTIME),
#: then copies stdin, which keeps it alive (and its namespaces readable) until stdin closes.
_CATS = ("/bin/cat", "/usr/bin/cat")


def _exec_cat(flags: int, report: int, stdin: int, stdout: int, others: Sequence[int]) -> None:
    """The process under test: unshare *flags*, set the BOOTTIME offset, report, exec cat."""
    for fd in others:
        os.close(fd)
    try:
        if flags:
            unshare(flags)
        seen = {
            "time": ns_key("/proc/self/ns/time"),
            "time_for_children": ns_key("/proc/self/ns/time_for_children"),
            "write": _write_offsets(_record(CLOCK_BOOTTIME, OFFSET_BOOTTIME)),
        }
    except BaseException as exc:  # a Fail from the premise check, or an OSError
        send_msg(report, ("exc", exc))
        return
    send_msg(report, ("ok", seen))
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    cat = next(path for path in _CATS if os.access(path, os.X_OK))
    os.execv(cat, [cat, "/proc/uptime", "-"])


def _exec_after_unshare(flags: int) -> dict[str, Any]:
    """Fork the process under test; read its report, what cat printed, and its namespaces."""
    report_r, report_w = os.pipe()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    mine = (report_r, in_w, out_r)
    before = _now(CLOCK_BOOTTIME)
    pid = fork_run(_exec_cat, flags, report_w, in_r, out_w, mine, pdeathsig=True)
    for fd in (report_w, in_r, out_w):
        os.close(fd)
    try:
        ok, msg = recv_msg(report_r)
        if not ok:
            raise RuntimeError("the process under test died before reporting")
        if msg[0] == "exc":
            raise msg[1]
        seen: dict[str, Any] = dict(msg[1])
        with os.fdopen(out_r, "r", closefd=False) as out:
            poller = select.poll()
            poller.register(out_r, select.POLLIN)
            if not poller.poll(_WAIT_TIMEOUT * 1000):
                raise TimeoutError(f"cat printed nothing within {_WAIT_TIMEOUT} s")
            line = out.readline()
        after = _now(CLOCK_BOOTTIME)
        # cat is blocked on stdin: its namespaces are those execve(2) left it in.
        seen["exec time"] = ns_key(f"/proc/{pid}/ns/time")
        seen["exec time_for_children"] = ns_key(f"/proc/{pid}/ns/time_for_children")
        sec, _, cs = line.split()[0].partition(".")
        seen["uptime_cs"] = int(sec) * 100 + int(cs)
        seen["window"] = (before // 10_000_000, after // 10_000_000)
        os.close(in_w)
        in_w = -1
        seen["status"] = wait(pid)
        pid = 0
    finally:
        for fd in (report_r, in_w, out_r):
            if fd >= 0:
                os.close(fd)
        if pid:
            kill_and_reap(pid)
    return seen


def _no_cat() -> Optional[str]:
    if any(os.access(path, os.X_OK) for path in _CATS):
        return None
    return f"no executable cat(1) at {' or '.join(_CATS)} to execve(2)"


@check(
    "time.exec_enters_time_for_children",
    catalogue="TIME-10",
    level="MUST",
    anchors=(
        "selftest timens/exec.c",
        "selftest timens/vfork_exec.c",
        "kernel 2b5f9dad32ed (fs/exec: switch timens when a task gets a new mm)",
        _ANCHOR,
    ),
    needs=Needs(
        min_kernel=(6, 2), kconfig=("TIME_NS",), probes=(_no_cat,), ops=("timens_offsets",)
    ),
    timeout=5.0,
)
def exec_enters_time_for_children(ctx: Context) -> None:
    """execve(2) by a process that unshared CLONE_NEWTIME moves it into its time_for_children.

    A process unshares CLONE_NEWTIME (it stays in its time namespace),
    writes a 9-day CLOCK_BOOTTIME offset and execs cat(1), which prints
    /proc/uptime and then blocks on stdin. While it blocks, its ``time``
    link must name the namespace that was its ``time_for_children`` (no
    longer the old one) and ``time_for_children`` the same, and the uptime
    it printed must be the helper's CLOCK_BOOTTIME plus the offset. Linux
    6.2 made execve switch (before, only a vfork child's exec did, and the
    unsharer stayed behind). Control: the process does not unshare, so the
    execve leaves it where it was.
    """
    seen = ctx.in_child(_exec_after_unshare, ctx.isolate(NEWTIME))
    ctx.expect(
        seen["exec time"] != seen["time"],
        "after execve(2) the process has left the time namespace it unshared from",
        f"not {seen['time']}",
        seen["exec time"],
    )
    ctx.expect_equal(seen["exec time"], seen["time_for_children"], "time namespace after execve(2)")
    ctx.expect_equal(
        seen["exec time_for_children"],
        seen["time_for_children"],
        "time_for_children after execve(2)",
    )
    offset_cs = OFFSET_BOOTTIME // 10_000_000
    low, high = seen["window"]
    window = (low + offset_cs, high + offset_cs + 1)
    ctx.expect(
        window[0] <= seen["uptime_cs"] <= window[1],
        f"/proc/uptime read by the exec'd program includes the BOOTTIME offset "
        f"(timens_offsets write: {seen['write']})",
        f"within {window}",
        seen["uptime_cs"],
    )
    ctx.expect_equal(seen["status"], 0, "wait status of the exec'd cat")


# --- TIME-11 ------------------------------------------------------------------------------


def _unprivileged_time_ns(drop: bool) -> dict[str, Any]:
    """Drop every capability (if *drop*), unshare CLONE_NEWTIME, then with a user namespace."""
    if drop:
        syscalls.drop_capabilities()
    seen: dict[str, Any] = {"unshare(CLONE_NEWTIME)": attempt(syscalls.unshare, NEWTIME)}
    outer = _time_ns("/proc/self/ns/time_for_children")
    try:
        unshare(NEWUSER | NEWTIME)
    except OSError as err:
        seen["unshare(CLONE_NEWUSER|CLONE_NEWTIME)"] = errname(err)
        return seen
    seen["unshare(CLONE_NEWUSER|CLONE_NEWTIME)"] = "ok"
    seen["new namespace"] = _time_ns("/proc/self/ns/time_for_children") != outer
    seen["write"] = _write_offsets(_record(CLOCK_MONOTONIC, OFFSET_MONOTONIC))
    seen["offsets"] = _read_offsets()
    return seen


@check(
    "time.unshare_needs_privilege",
    catalogue="TIME-11",
    level="MUST",
    anchors=("time_namespaces(7)", "user_namespaces(7)", "LTP timens01 (CAP_SYS_TIME)"),
    needs=Needs(
        userns=True, min_kernel=(5, 6), kconfig=("TIME_NS", "USER_NS"), ops=("timens_offsets",)
    ),
    timeout=5.0,
)
def unshare_needs_privilege(ctx: Context) -> None:
    """Unprivileged, unshare(CLONE_NEWTIME) is EPERM; with CLONE_NEWUSER it works, offsets too.

    A helper clears its capability sets (capset(2); its uid stays), then
    unshare(CLONE_NEWTIME) must fail with EPERM, while
    unshare(CLONE_NEWUSER|CLONE_NEWTIME) must create a time namespace owned
    by the new user namespace, in which the helper holds CAP_SYS_TIME: its
    timens_offsets write must succeed and read back. Control: the helper
    keeps its capabilities (the precondition is removed), so the first
    unshare succeeds.
    """
    seen = ctx.in_child(_unprivileged_time_ns, not ctx.control)
    ctx.expect_equal(
        seen["unshare(CLONE_NEWTIME)"], "EPERM", "unshare(CLONE_NEWTIME) without CAP_SYS_ADMIN"
    )
    both = seen["unshare(CLONE_NEWUSER|CLONE_NEWTIME)"]
    if both in ("EPERM", "ENOSPC", "EUSERS"):
        raise Skip(f"unprivileged processes cannot create user namespaces here ({both})")
    ctx.expect_equal(both, "ok", "unshare(CLONE_NEWUSER|CLONE_NEWTIME) without CAP_SYS_ADMIN")
    ctx.expect(seen["new namespace"], "time_for_children is a new namespace", True, False)
    ctx.expect_equal(seen["write"], "ok", "timens_offsets write in the user-owned time namespace")
    ctx.expect_equal(
        seen["offsets"]["monotonic"],
        (OFFSET_MONOTONIC // NSEC, OFFSET_MONOTONIC % NSEC),
        "CLOCK_MONOTONIC offset read back",
    )


# --- TIME-12 ------------------------------------------------------------------------------

CAP_SYS_TIME = 25  # linux/capability.h


def _drop_cap(cap: int) -> None:
    effective, permitted, inheritable = syscalls.capget()
    bit = 1 << cap
    syscalls.capset(effective & ~bit, permitted & ~bit, inheritable & ~bit)


def _offsets_without_cap_sys_time(drop: bool) -> dict[str, Any]:
    """In the unsharer: open timens_offsets, drop CAP_SYS_TIME, write by a new fd and the old."""
    early = os.open(_OFFSETS_FILE, os.O_WRONLY | os.O_CLOEXEC)
    try:
        if drop:
            _drop_cap(CAP_SYS_TIME)
        seen: dict[str, Any] = {
            "new fd": _write_offsets(_record(CLOCK_MONOTONIC, OFFSET_MONOTONIC)),
            "offsets after new fd": _read_offsets(),
        }
        seen["fd opened before"] = attempt(
            os.write, early, _record(CLOCK_BOOTTIME, OFFSET_BOOTTIME).encode()
        )
    finally:
        os.close(early)
    seen["offsets"] = _read_offsets()
    return seen


@check(
    "time.offsets_need_cap_sys_time",
    catalogue="TIME-12",
    level="MUST",
    anchors=("time_namespaces(7)", "kernel proc_timens_set_offset()", "LTP timens01"),
    needs=Needs(min_kernel=(5, 6), kconfig=("TIME_NS",), ops=("timens_offsets",)),
    timeout=5.0,
)
def offsets_need_cap_sys_time(ctx: Context) -> None:
    """Writing timens_offsets needs CAP_SYS_TIME over the namespace's owner when the file is opened.

    A helper unshares CLONE_NEWTIME, opens /proc/self/timens_offsets, then
    drops CAP_SYS_TIME (capset(2)). A write through a newly opened file
    must fail with EPERM and change nothing, while a write through the fd
    opened before the drop must still succeed (the kernel checks the
    opener's credentials, file_ns_capable()). Control: the helper keeps
    CAP_SYS_TIME (the precondition is removed), so the new fd's write works.
    """
    seen = ctx.in_child(_offsets_without_cap_sys_time, not ctx.control, unshare=NEWTIME)
    ctx.expect_equal(seen["new fd"], "EPERM", "timens_offsets write opened without CAP_SYS_TIME")
    ctx.expect_equal(
        seen["offsets after new fd"],
        {"monotonic": (0, 0), "boottime": (0, 0)},
        "offsets after the refused write",
    )
    ctx.expect_equal(
        seen["fd opened before"], "ok", "write through the fd opened with CAP_SYS_TIME"
    )
    ctx.expect_equal(
        seen["offsets"]["boottime"],
        (OFFSET_BOOTTIME // NSEC, OFFSET_BOOTTIME % NSEC),
        "CLOCK_BOOTTIME offset written through the early fd",
    )


# --- TIME-13 ------------------------------------------------------------------------------


def _read_pid_offsets(pid: int) -> dict[str, tuple[int, int]]:
    with open(f"/proc/{pid}/timens_offsets") as f:
        rows = [line.split() for line in f if line.strip()]
    return {name: (int(sec), int(nsec)) for name, sec, nsec in rows}


def _write_pid_offsets(pid: int, records: str) -> str:
    try:
        fd = os.open(f"/proc/{pid}/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, records.encode())
        finally:
            os.close(fd)
    except OSError as err:
        return errname(err)
    return "ok"


def _child_sees() -> dict[str, Any]:
    """In the holder: fork a child (the first to enter) that reads its offsets and clock."""
    return {"offsets": _read_offsets(), "child": _observe_child()}


def _observe_child() -> dict[str, Any]:
    before = _now(CLOCK_MONOTONIC)
    pid_r, pid_w = os.pipe()
    pid = fork_run(_child_report, pid_w, pid_r)
    os.close(pid_w)
    try:
        ok, msg = recv_msg(pid_r)
    finally:
        os.close(pid_r)
        wait(pid)
    after = _now(CLOCK_MONOTONIC)
    if not ok:
        raise RuntimeError("the child died before reporting")
    return {"before": before, "after": after, **msg}


def _child_report(wfd: int, other: int) -> None:
    os.close(other)
    report = {
        "offsets": _read_offsets(),
        "monotonic": _now(CLOCK_MONOTONIC),
        "time": _time_ns("/proc/self/ns/time"),
    }
    send_msg(wfd, report)


@check(
    "time.offsets_through_proc_pid",
    catalogue="TIME-13",
    level="MUST",
    anchors=("time_namespaces(7) (/proc/PID/timens_offsets)", "kernel proc_timens_offsets"),
    needs=Needs(min_kernel=(5, 6), kconfig=("TIME_NS",), ops=("timens_offsets",)),
    timeout=5.0,
)
def offsets_through_proc_pid(ctx: Context) -> None:
    """Another process can set and read a process's time_for_children offsets via /proc/PID.

    A helper unshares CLONE_NEWTIME and waits. The check, from outside (with
    CAP_SYS_TIME over the namespace's owner), writes a 10-day
    CLOCK_MONOTONIC offset to /proc/HELPER/timens_offsets: the write must
    work and /proc/HELPER/timens_offsets must read it back, while the
    check's own file still reads zeros. The helper then forks the first
    process to enter: that child must read the same offsets in
    /proc/self/timens_offsets and see CLOCK_MONOTONIC shifted by it.
    Control: the helper does not unshare, so its time_for_children is the
    check's own namespace, which processes have entered: the write fails
    (EACCES; EPERM rootless, where that namespace's owner is out of reach).
    """
    holder = ctx.spawn_child(idle_time, unshare=ctx.isolate(NEWTIME))
    holder.recv()
    written = _write_pid_offsets(holder.pid, _record(CLOCK_MONOTONIC, OFFSET_MONOTONIC))
    expected = {
        "monotonic": (OFFSET_MONOTONIC // NSEC, OFFSET_MONOTONIC % NSEC),
        "boottime": (0, 0),
    }
    ctx.expect_equal(written, "ok", "write to another process's /proc/PID/timens_offsets")
    ctx.expect_equal(
        _read_pid_offsets(holder.pid), expected, "/proc/PID/timens_offsets read from outside"
    )
    ctx.expect_equal(
        _read_offsets(),
        {"monotonic": (0, 0), "boottime": (0, 0)},
        "the writer's own timens_offsets",
    )
    seen = holder.call(_child_sees)
    child = seen["child"]
    ctx.expect_equal(seen["offsets"], expected, "the helper's own view of its offsets")
    ctx.expect_equal(child["offsets"], expected, "timens_offsets read by a child inside")
    window = (child["before"] + OFFSET_MONOTONIC, child["after"] + OFFSET_MONOTONIC)
    ctx.expect(
        window[0] <= child["monotonic"] <= window[1],
        "CLOCK_MONOTONIC in the child is the helper's plus the offset written from outside",
        f"within {window}",
        child["monotonic"],
    )


def idle_time() -> None:
    """Nothing: the body of a helper that only holds its time_for_children."""


# --- TIME-14 ------------------------------------------------------------------------------


def _join_and_fork(path: str, join: bool) -> dict[str, Any]:
    """setns(2) to the time namespace at *path* (if *join*); report the links and a child's."""
    if join:
        setns_path(path, NEWTIME)
    return {
        "time": _time_ns("/proc/self/ns/time"),
        "time_for_children": _time_ns("/proc/self/ns/time_for_children"),
        "child": _observe_child(),
    }


@check(
    "time.setns_sets_both",
    catalogue="TIME-14",
    level="MUST",
    anchors=("setns(2)", "kernel timens_install()", "selftest timens/timens.c"),
    needs=Needs(min_kernel=(5, 6), kconfig=("TIME_NS",), ops=("setns", "timens_offsets")),
    timeout=5.0,
)
def setns_sets_both(ctx: Context) -> None:
    """setns(2) into a time namespace moves both the caller and its future children there.

    A helper unshares CLONE_NEWTIME and sets a CLOCK_MONOTONIC offset.
    Another process setns(2)es to the helper's ``time_for_children``: its
    ``time`` and ``time_for_children`` links must both name that namespace
    (unlike unshare, which changes only the latter), and a child it forks
    afterwards must be in it and see the offset. Control: the process does
    not call setns(2), so its children stay in its namespace.
    """
    holder = ctx.spawn_child(_prepare_time_ns, unshare=NEWTIME)
    holder.recv()
    path = holder.ns_path("time_for_children")
    target = _time_ns(path)
    seen = ctx.in_child(_join_and_fork, path, not ctx.control)
    ctx.expect_equal(seen["time"], target, "time namespace after setns(2)")
    ctx.expect_equal(seen["time_for_children"], target, "time_for_children after setns(2)")
    ctx.expect_equal(seen["child"]["time"], target, "time namespace of a child forked after")
    child = seen["child"]
    window = (child["before"], child["after"])
    ctx.expect(
        window[0] <= child["monotonic"] <= window[1],
        "CLOCK_MONOTONIC of a child forked after setns(2) equals the joiner's",
        f"within {window}",
        child["monotonic"],
    )


# --- TIME-15 ------------------------------------------------------------------------------


def _cloned_report(wfd: int, other: int) -> None:
    """In the clone3 child: report its time namespaces, offsets, clock, and an offset write."""
    os.close(other)
    report = {
        "time": _time_ns("/proc/self/ns/time"),
        "time_for_children": _time_ns("/proc/self/ns/time_for_children"),
        "offsets": _read_offsets(),
        "monotonic": _now(CLOCK_MONOTONIC),
        "write": _write_offsets(_record(CLOCK_MONOTONIC, OFFSET_MONOTONIC)),
    }
    send_msg(wfd, report)


def _clone3_time(flags: int) -> dict[str, Any]:
    """clone3(2) a child with *flags*; return its report and this process's view around it."""
    mine = {
        "time": _time_ns("/proc/self/ns/time"),
        "time_for_children": _time_ns("/proc/self/ns/time_for_children"),
    }
    r, w = os.pipe()
    before = _now(CLOCK_MONOTONIC)
    try:
        pid = clone_run(flags, _cloned_report, w, r)
    except OSError as err:
        os.close(r)
        if err.errno == errno.EINVAL and flags & NEWTIME:
            return {"clone3": "EINVAL"}
        raise
    finally:
        os.close(w)
    try:
        ok, child = recv_msg(r)
    finally:
        os.close(r)
        wait(pid)
    if not ok:
        raise RuntimeError("the clone3 child died before reporting")
    return {
        "mine": mine,
        "mine after": {
            "time": _time_ns("/proc/self/ns/time"),
            "time_for_children": _time_ns("/proc/self/ns/time_for_children"),
        },
        "child": child,
        "window": (before, _now(CLOCK_MONOTONIC)),
    }


@check(
    "time.clone3_newtime",
    catalogue="TIME-15",
    level="MUST",
    anchors=("clone(2) (CLONE_NEWTIME, clone3 only)", _ANCHOR, "kernel timens_on_fork()"),
    needs=Needs(min_kernel=(5, 6), kconfig=("TIME_NS",), ops=("clone3", "timens_offsets")),
    timeout=5.0,
)
def clone3_newtime(ctx: Context) -> None:
    """clone3(CLONE_NEWTIME) starts the child in a new time namespace with zero, frozen offsets.

    A helper clone3(2)s a child with CLONE_NEWTIME (clone(2) can't: the bit
    is in CSIGNAL). The child's ``time`` and ``time_for_children`` must both
    name one new namespace, its offsets read zero and its CLOCK_MONOTONIC
    equals the helper's, and writing its offsets fails with EACCES: the
    namespace was entered at birth, so they are frozen. The helper's own
    namespaces don't change. clone3(2) refused CLONE_NEWTIME (EINVAL, the
    bit being in CSIGNAL) until "fork: allow CLONE_NEWTIME in clone3 flags"
    (Linux 6.3, backported to the stable kernels): one without it FAILs
    saying so. Control: the child is cloned without CLONE_NEWTIME, so it
    shares the helper's namespace.
    """
    seen = ctx.in_child(_clone3_time, ctx.isolate(NEWTIME))
    if seen.get("clone3") == "EINVAL":
        raise Fail(
            'clone3(CLONE_NEWTIME) fails with EINVAL: this kernel lacks "fork: allow '
            'CLONE_NEWTIME in clone3 flags" (mainline 6.3, backported to stable kernels)',
            "a child in a new time namespace",
            "EINVAL",
        )
    mine, child = seen["mine"], seen["child"]
    ctx.expect(
        child["time"] != mine["time"],
        "the clone3(CLONE_NEWTIME) child is in a new time namespace",
        f"not {mine['time']}",
        child["time"],
    )
    ctx.expect_equal(child["time_for_children"], child["time"], "the child's time_for_children")
    ctx.expect_equal(seen["mine after"], mine, "the helper's time namespaces after the clone3")
    ctx.expect_equal(
        child["offsets"], {"monotonic": (0, 0), "boottime": (0, 0)}, "the child's offsets"
    )
    window = seen["window"]
    ctx.expect(
        window[0] <= child["monotonic"] <= window[1],
        "CLOCK_MONOTONIC in the new namespace equals the helper's (zero offset)",
        f"within {window}",
        child["monotonic"],
    )
    ctx.expect_equal(child["write"], "EACCES", "the child's write to its frozen offsets")
