"""The host guard: snapshot what a conformance run could leak, before and after, and diff.

Layer: conformance, private. Standard library and :mod:`.outcome`.

Every check runs in a throwaway outer sandbox, so a run must leave the host
exactly as it found it (LTP's "no effect on a real system").
The guard proves it rather than trusting it: any difference becomes an extra
ERROR result named ``guard.<what>``.

Watched: hostname and domainname; SysV IPC objects (``/proc/sysvipc``); POSIX
message queues (``/dev/mqueue`` when mounted); mounts (``/proc/self/mountinfo``);
network interfaces (``/sys/class/net``) and named netns (``/run/netns``);
cgroups under the runner's own cgroup v2 directory; the run's temporary
directory (every check's temporary files live there: :mod:`tempfile` points
into it, and /tmp itself is a tmpfs of the sandbox when it has a mount
namespace), which must be gone once the run has removed it; the calling
process's children and open fds.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable

from .outcome import CheckResult, Outcome

__all__ = [
    "HOST",
    "PROCESS",
    "Snapshot",
    "snapshot",
    "settled",
    "compare",
    "own_cgroup2_dir",
    "leftovers",
]

_SHOWN = 8  # list every item in expected/actual only when there are this few

# category -> (title, what one item is)
_CATEGORIES: dict[str, str] = {
    "uts": "host hostname and domainname",
    "ipc": "host SysV IPC objects",
    "mqueue": "host POSIX message queues",
    "mnt": "host mounts",
    "net": "host network interfaces",
    "netns": "host named network namespaces",
    "children": "the runner's child processes",
    "fds": "the runner's open file descriptors",
    "cgroup": "cgroups under the runner's cgroup v2 directory",
}


@dataclass
class Snapshot:
    """One observation of the host: for each category, a multiset of item descriptions."""

    items: dict[str, Counter[str]] = field(default_factory=dict)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _sysvipc() -> Counter[str]:
    items: Counter[str] = Counter()
    for kind in ("msg", "sem", "shm"):
        lines = _read(f"/proc/sysvipc/{kind}").splitlines()[1:]
        for line in lines:
            cols = line.split()
            if len(cols) >= 2:
                # key and id identify the object; the rest (counters, times) changes.
                items[f"{kind} key={int(cols[0]):#x} id={cols[1]}"] += 1
    return items


def _mounts() -> Counter[str]:
    items: Counter[str] = Counter()
    for line in _read("/proc/self/mountinfo").splitlines():
        # proc(5): id parent major:minor root mountpoint options [optional...] - fstype source super
        left, _, right = line.partition(" - ")
        lcols, rcols = left.split(), right.split()
        if len(lcols) >= 5 and len(rcols) >= 2:
            items[f"{lcols[4]} ({rcols[0]} from {rcols[1]}, root {lcols[3]})"] += 1
    return items


def _children() -> Counter[str]:
    items: Counter[str] = Counter()
    for tid in _listdir("/proc/self/task"):
        for pid in _read(f"/proc/self/task/{tid}/children").split():
            comm = _read(f"/proc/{pid}/comm").strip()
            items[f"pid {pid} ({comm})"] += 1
    return items


def _fds() -> Counter[str]:
    items: Counter[str] = Counter()
    for fd in _listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd listdir itself used, already closed
        items[f"fd {fd} -> {target}"] += 1
    return items


def own_cgroup2_dir() -> str | None:
    """Return the directory of this process's cgroup in the cgroup2 hierarchy, if mounted."""
    rel = next(
        (line[3:] for line in _read("/proc/self/cgroup").splitlines() if line.startswith("0::")),
        None,
    )
    if rel is None:
        return None
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        lcols, rcols = left.split(), right.split()
        if rcols and rcols[0] == "cgroup2" and len(lcols) >= 5:
            root, mnt = lcols[3], lcols[4]
            inner = os.path.relpath(rel, root) if rel.startswith(root) else None
            if inner is not None and not inner.startswith(".."):
                return os.path.normpath(os.path.join(mnt, inner))
    return None


def _cgroups() -> Counter[str]:
    # Checks create their cgroups right under the runner's own; a check killed
    # at its timeout never runs its cleanup, so look for what it left.
    base = own_cgroup2_dir()
    if base is None:
        return Counter()
    return Counter(
        os.path.join(base, n) for n in _listdir(base) if os.path.isdir(os.path.join(base, n))
    )


def _uts() -> Counter[str]:
    uts: Counter[str] = Counter()
    for name in ("hostname", "domainname"):
        uts[f"{name}={_read(f'/proc/sys/kernel/{name}').strip()!r}"] += 1
    return uts


#: Categories where only what appeared is the run's doing (other programs remove their own).
_ADDED_ONLY = ("cgroup",)

_OBSERVERS: dict[str, Callable[[], Counter[str]]] = {
    "uts": _uts,
    "ipc": _sysvipc,
    "mqueue": lambda: Counter(f"/dev/mqueue/{n}" for n in _listdir("/dev/mqueue")),
    "mnt": _mounts,
    "net": lambda: Counter(_listdir("/sys/class/net")),
    "netns": lambda: Counter(f"/run/netns/{n}" for n in _listdir("/run/netns")),
    "children": _children,
    "fds": _fds,
    "cgroup": _cgroups,
}

#: The categories that describe the host (the rest describe the calling process).
HOST = ("uts", "ipc", "mqueue", "mnt", "net", "netns", "cgroup")
#: The categories that describe the calling process.
PROCESS = ("children", "fds")


def snapshot(categories: Iterable[str] = HOST + PROCESS) -> Snapshot:
    """Observe the host (as this process sees it) in each of *categories*."""
    return Snapshot({name: _OBSERVERS[name]() for name in categories})


def settled(before: Snapshot, after: Snapshot, wait: float = 2.0) -> Snapshot:
    """*after*, keeping of what appeared in an added-only category only what persists.

    The cgroup directory is shared with whatever else runs in the runner's
    cgroup: another conformance run (a CI stage in a chroot next to a test
    run) creates and removes its checks' cgroups there within milliseconds.
    A leak stays. So what appeared is observed again every 0.1 s for *wait*
    seconds (only when something appeared), and only what was there every
    time counts.
    """
    out = Snapshot(dict(after.items))
    deadline = time.monotonic() + wait
    for category in _ADDED_ONLY:
        if category not in before.items or category not in after.items:
            continue
        old = before.items[category]
        persist = after.items[category] - old
        while persist and time.monotonic() < deadline:
            time.sleep(0.1)
            persist &= _OBSERVERS[category]() - old
        out.items[category] = old + persist
    return out


def compare(before: Snapshot, after: Snapshot, ignore: Iterable[str] = ()) -> list[CheckResult]:
    """Return one ERROR result per category that differs (``guard.<category>``), else nothing.

    Categories in *ignore* are not compared (what the sandbox isolated by construction).
    """
    results: list[CheckResult] = []
    skip = set(ignore)
    for category, title in _CATEGORIES.items():
        if category in skip or category not in before.items or category not in after.items:
            continue
        old, new = before.items[category], after.items[category]
        added, removed = sorted((new - old).elements()), sorted((old - new).elements())
        if category in _ADDED_ONLY:
            removed = []
        if not added and not removed:
            continue
        parts = []
        if added:
            parts.append("appeared: " + ", ".join(added))
        if removed:
            parts.append("disappeared: " + ", ".join(removed))
        results.append(
            CheckResult(
                id=f"guard.{category}",
                catalogue_id="GUARD",
                type="guard",
                title=f"The run leaves {title} unchanged",
                level="MUST",
                status=Outcome.ERROR,
                message="the run changed the host: " + "; ".join(parts),
                expected=_show(old),
                actual=_show(new),
            )
        )
    return results


def _show(items: Counter[str]) -> str | None:
    if sum(items.values()) > _SHOWN:
        return None
    return ", ".join(sorted(items.elements())) or "(none)"


def leftovers(run_dir: str) -> list[CheckResult]:
    """One ERROR result (``guard.tmp``) if the run's directory is still there, else nothing."""
    if not os.path.lexists(run_dir):
        return []
    found = []
    for top, dirs, files in os.walk(run_dir):
        found += [os.path.join(top, n) for n in (*dirs, *files)]
    return [
        CheckResult(
            id="guard.tmp",
            catalogue_id="GUARD",
            type="guard",
            title="The run leaves nothing in the temporary directory",
            level="MUST",
            status=Outcome.ERROR,
            message=f"the run could not remove its directory {run_dir}: "
            + (", ".join(sorted(found)[:_SHOWN]) or "(empty)"),
        )
    ]
