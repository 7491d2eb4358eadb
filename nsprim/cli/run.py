"""``nsprim run``: start a command in new namespaces, with util-linux unshare(1)'s flags.

Layer 4: imports the standard library and the public nsprim API. Like
``unshare --fork``, the command is a child (PID 1 with ``-p``); this process
waits and exits with its status (see :mod:`nsprim.cli._spawn`).

Where a flag is unshare(1)'s, it means what unshare means: ``--kill-child``
takes its signal only as ``--kill-child=SIG``; ``-r``/``--map-group`` refuse
``--setgroups allow``; ``--propagation`` without a new mount namespace is
ignored; ``-R DIR`` chroots (the process API's ``root=`` pivots) and
``--mount-proc`` without ``-p`` mounts the current pid namespace's proc — both
through the small helper :mod:`nsprim.cli._exec`, run as the program. nsprim's
own flags (``--hostname``, ``--domainname``, ``--lo-up``, ``--veth``) are marked
as such in ``--help``.

``--TYPE=FILE`` and ``--veth`` need the new namespaces before the command runs:
the helper then waits on a pipe (``--wait-fd``) while this process binds the
files (:meth:`nsprim.Namespace.persist`) and creates the veth pair, and
releases it with one byte (unshare's sync byte), or kills it and says why.
Steps that need the creator's capabilities whatever the mapping
(``--mount-binfmt``, ``-l``, ``--keep-caps``, ``--owner``, the subordinate id
maps through newuidmap/newgidmap) are the process API's, before execve.
"""

from __future__ import annotations

import errno
import os
import sys

from .._stdlib import signal, suppress
from ._spawn import (
    EXIT_ENOENT,
    add_command,
    add_ns_flags,
    chosen_types,
    command,
    fail,
    ns_files,
    number,
    signals_held,
    wait,
)

# typing.TYPE_CHECKING without importing typing, and argparse only where the
# parser is built: plain command lines parse without them (nsprim.cli._fast).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Callable, Optional

__all__ = ["add_run_parser", "cmd_run"]

PROPAGATION = ("slave", "shared", "private", "unchanged")
#: --mount-binfmt without =DIR (util-linux's _PATH_PROC_BINFMT_MISC).
BINFMT_DEFAULT = "/proc/sys/fs/binfmt_misc"
SETGROUPS = ("allow", "deny")
_KTIME_SEC_MAX = (2**63 - 1) // 1_000_000_000


def _one_of(choices: tuple[str, ...], message: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        import argparse

        if text not in choices:
            raise argparse.ArgumentTypeError(message.format(text))
        return text

    return parse


def _user(kind: str) -> Callable[[str], int]:
    # util-linux get_user()/get_group(): a name first, else a number.
    as_number = number(kind)

    def parse(text: str) -> int:
        import grp
        import pwd

        try:
            if kind == "uid":
                return pwd.getpwnam(text).pw_uid
            return grp.getgrnam(text).gr_gid
        except (KeyError, ValueError):
            return as_number(text)

    return parse


#: --map-users/--map-groups words (util-linux 2.38 auto, 2.40 all, 2.41 subids).
MAP_WORDS = ("auto", "subids", "all")


def _id_range(text: str) -> Any:
    """Parse ``outer,inner,count`` (util-linux 2.38) or ``inner:outer:count`` (2.39+).

    Returns ``(inner, outer, count)``, a line of uid_map, or one of :data:`MAP_WORDS`.
    """
    import argparse

    if text in MAP_WORDS:
        return text
    sep = ":" if ":" in text else ","
    values: list[int] = []
    for part in text.split(sep):  # util-linux's order of complaints
        if len(values) == 3:
            raise argparse.ArgumentTypeError(f"too many elements for mapping '{text}'")
        if not part.isdigit() or int(part) > 2**32 - 1:
            raise argparse.ArgumentTypeError(f"could not parse ID: '{part}'")
        values.append(int(part))
    if len(values) < 3:
        raise argparse.ArgumentTypeError(f"mapping '{text}' contains only {len(values)} elements")
    a, b, count = values
    return (a, b, count) if sep == ":" else (b, a, count)


def _offset(clock: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        import argparse
        import math

        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not -_KTIME_SEC_MAX <= value <= _KTIME_SEC_MAX:  # NaN too
            raise argparse.ArgumentTypeError(f"failed to parse {clock} offset: '{text}'")
        return value

    return parse


def _signal(text: str) -> int:
    import argparse
    import signal

    name = text.upper()
    if name.isdigit() and 0 < int(name) < signal.NSIG:
        return int(name)
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown signal: {text}") from None


def _name(flag: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        import argparse

        if len(text.encode("utf-8", "surrogateescape")) > 64:
            raise argparse.ArgumentTypeError(f"{flag}: '{text}' is longer than 64 bytes")
        if "\0" in text:
            raise argparse.ArgumentTypeError(f"{flag}: a name can't contain a NUL byte")
        return text

    return parse


def _veth(text: str) -> tuple[str, str]:
    import argparse

    host, sep, inside = text.partition(":")
    if not sep or not host or not inside:
        raise argparse.ArgumentTypeError(f"--veth: '{text}' is not HOST:INSIDE")
    for name in (host, inside):
        raw = name.encode("utf-8", "surrogateescape")
        if len(raw) > 15 or name in (".", "..") or any(c in name for c in "/: \t\n\0"):
            raise argparse.ArgumentTypeError(f"--veth: invalid interface name '{name}'")
    return host, inside


def _cidr(flag: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        import argparse
        import ipaddress

        try:
            if "/" not in text:
                raise ValueError(text)
            ipaddress.ip_interface(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: invalid address '{text}'") from None
        return text

    return parse


def _owner(text: str) -> tuple[int, int]:
    # util-linux: sscanf("%u:%u") and nothing after, else "failed to parse owner"
    import argparse

    uid, sep, gid = text.partition(":")
    if not sep or not uid.isdigit() or not gid.isdigit():
        raise argparse.ArgumentTypeError("failed to parse owner")
    if int(uid) >= 2**32 - 1 or int(gid) >= 2**32 - 1:
        raise argparse.ArgumentTypeError("failed to parse owner")
    return int(uid), int(gid)


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``run``: start a command in new namespaces, with unshare(1)'s flags."""
    p = subparsers.add_parser(
        "run",
        help="run a command in new namespaces (like unshare --fork)",
        description="Run COMMAND in new namespaces, as util-linux unshare(1) --fork does. "
        "nsprim waits for it and exits with its status (or dies of the signal that "
        "killed it); SIGINT and SIGTERM sent to nsprim are held until then.",
    )
    add_ns_flags(
        p,
        "new",
        files=True,
        short_files=False,
        file_help="(=FILE: bind it onto the existing FILE, so it persists)",
    )
    p.add_argument(
        "-f",
        "--fork",
        action="store_true",
        help="accepted for unshare(1) compatibility; nsprim always forks",
    )
    p.add_argument(
        "--forward-signals",
        action="store_true",
        help="pass SIGTERM and SIGINT sent to nsprim on to the command (else they are held)",
    )
    p.add_explicit_only(
        "--kill-child",
        const="KILL",
        metavar="SIGNAL",
        type=_signal,
        help="send SIGNAL (given as --kill-child=SIGNAL; default KILL) to the command "
        "when nsprim dies",
    )
    p.add_argument(
        "-r",
        "--map-root-user",
        action="store_true",
        help="map the current user and group to root (implies -U, setgroups deny)",
    )
    p.add_argument(
        "-c",
        "--map-current-user",
        action="store_true",
        help="map the current user and group to themselves (implies -U, setgroups deny)",
    )
    p.add_argument(
        "-S",
        "--setuid",
        metavar="UID",
        type=number("uid"),
        help="setuid(2) to UID in the new namespaces before running the command",
    )
    p.add_argument(
        "-G",
        "--setgid",
        metavar="GID",
        type=number("gid"),
        help="setgroups(2) to none and setgid(2) to GID before running the command",
    )
    p.add_argument(
        "--map-user",
        metavar="UID|NAME",
        type=_user("uid"),
        help="map the current euid to UID (implies -U)",
    )
    p.add_argument(
        "--map-group",
        metavar="GID|NAME",
        type=_user("gid"),
        help="map the current egid to GID (implies -U, setgroups deny)",
    )
    p.add_argument(
        "--map-users",
        metavar="OUTER,INNER,COUNT",
        action="append",
        type=_id_range,
        help="map COUNT ids from OUTER to INNER (repeatable; INNER:OUTER:COUNT too; 'auto' and "
        "'subids' as --map-auto/--map-subids, 'all' every id mapped here; implies -U; "
        "unprivileged: through newuidmap)",
    )
    p.add_argument(
        "--map-groups",
        metavar="OUTER,INNER,COUNT",
        action="append",
        type=_id_range,
        help="the same for group ids (unprivileged: through newgidmap)",
    )
    p.add_argument(
        "--map-auto",
        action="store_true",
        help="map your first /etc/subuid and /etc/subgid ranges from 0 (implies -U; "
        "unprivileged: through newuidmap/newgidmap)",
    )
    p.add_argument(
        "--map-subids",
        action="store_true",
        help="map your first /etc/subuid and /etc/subgid ranges to themselves (implies -U)",
    )
    p.add_argument(
        "--owner",
        metavar="UID:GID",
        type=_owner,
        help="create the user namespace as UID:GID, its owner: setgroups(2) to none, "
        "setgid(2), setuid(2) before unshare(2); the command runs as them (implies -U)",
    )
    p.add_argument(
        "--keep-caps",
        action="store_true",
        help="with -U: the capabilities the new user namespace gives survive execve(2) "
        "(raised into the ambient set)",
    )
    p.add_argument(
        "--setgroups",
        metavar="allow|deny",
        choices=SETGROUPS,
        type=_one_of(SETGROUPS, "unsupported --setgroups argument '{}'"),
        help="control setgroups(2) in the new user namespace",
    )
    p.add_explicit_only(
        "--mount-proc",
        const="/proc",
        metavar="DIR",
        help="mount proc on DIR (given as --mount-proc=DIR; default /proc; implies -m): with -p "
        "the new pid namespace's, else the current one's",
    )
    p.add_explicit_only(
        "--mount-binfmt",
        const=BINFMT_DEFAULT,
        metavar="DIR",
        help="mount a binfmt_misc filesystem on DIR (given as --mount-binfmt=DIR; default "
        "/proc/sys/fs/binfmt_misc, then proc is mounted first as with --mount-proc); "
        "implies -U -m; its own instance from Linux 6.7",
    )
    p.add_argument(
        "-l",
        "--load-interp",
        metavar="DEF",
        action="append",
        help="register the binfmt_misc interpreter definition DEF (':name:type:offset:magic:"
        "mask:interpreter:flags') in the namespace's instance (implies --mount-binfmt)",
    )
    p.add_argument(
        "--propagation",
        metavar="slave|shared|private|unchanged",
        choices=PROPAGATION,
        type=_one_of(PROPAGATION, "unsupported propagation mode: {}"),
        help="propagation of / in the new mount namespace (default private)",
    )
    p.add_argument(
        "-R",
        "--root",
        metavar="DIR",
        help="chroot(2) into DIR before running the command (working directory: --wd or /)",
    )
    p.add_argument("-w", "--wd", metavar="DIR", help="working directory of the command")
    p.add_argument(
        "--clear-env",
        action="store_true",
        help="run the command with an empty environment",
    )
    p.add_argument(
        "--whitelist-env",
        metavar="NAME,...",
        help="run the command with only these variables of the environment",
    )
    p.add_argument(
        "--monotonic",
        metavar="SECONDS",
        type=_offset("monotonic"),
        help="CLOCK_MONOTONIC offset in the new time namespace (implies -T)",
    )
    p.add_argument(
        "--boottime",
        metavar="SECONDS",
        type=_offset("boottime"),
        help="CLOCK_BOOTTIME offset in the new time namespace (implies -T)",
    )
    p.add_argument(
        "--hostname",
        metavar="NAME",
        type=_name("--hostname"),
        help="nsprim's own: hostname in the new UTS namespace (implies -u)",
    )
    p.add_argument(
        "--domainname",
        metavar="NAME",
        type=_name("--domainname"),
        help="nsprim's own: NIS domain name in the new UTS namespace (implies -u)",
    )
    p.add_argument(
        "--lo-up",
        action="store_true",
        help="nsprim's own: bring lo up in the new network namespace (implies -n)",
    )
    p.add_argument(
        "--veth",
        metavar="HOST:INSIDE",
        type=_veth,
        help="nsprim's own: a veth pair, INSIDE in the new network namespace (up, lo up too), "
        "HOST here (up); it goes with the namespace (implies -n)",
    )
    p.add_argument(
        "--addr",
        metavar="CIDR",
        type=_cidr("--addr"),
        help="nsprim's own: address of the INSIDE end of --veth (e.g. 10.0.0.2/24)",
    )
    p.add_argument(
        "--host-addr",
        metavar="CIDR",
        type=_cidr("--host-addr"),
        help="nsprim's own: address of the HOST end of --veth (e.g. 10.0.0.1/24)",
    )
    add_command(p)
    return p  # type: ignore[no-any-return]


# The steps unshare(1) takes after unshare(2) that the process API does not
# (chroot, proc without a new pid namespace): a script run as the program.
_EXEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_exec.py")


def _helper(ns: argparse.Namespace, pid: bool, wait_fd: int) -> Optional[list[str]]:
    """The helper's options, or None when the process API does it all."""
    ids = ns.setuid is not None or ns.setgid is not None
    # the process API mounts only /proc, and only for a new pid namespace
    proc = ns.mount_proc is not None and (not pid or ns.mount_proc != "/proc")
    if ns.root is None and not proc and not ids and wait_fd < 0:
        return None
    opts = []
    if wait_fd >= 0:
        opts += ["--wait-fd", str(wait_fd)]
    if ns.root is not None:
        opts += ["--root", ns.root]
    if ns.wd is not None:
        opts += ["--wd", ns.wd]
    if ns.mount_proc is not None:
        opts += ["--mount-proc", ns.mount_proc]
        if ns.propagation not in (None, "private"):
            opts.append("--private-proc")
    if ns.setgid is not None:
        opts += ["--setgid", str(ns.setgid)]
    if ns.setuid is not None:
        opts += ["--setuid", str(ns.setuid)]
    return opts


# unshare(1)'s order of binds (its namespace_files table).
_BIND_ORDER = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt", "time")

#: How many mount namespaces are made at most for --mount=FILE (see :func:`_mnt_bindable`).
MNT_TRIES = 8


def _mnt_bindable(pid: int) -> bool:
    """Whether the kernel will bind *pid*'s mount namespace file here.

    It binds only a mount namespace newer than the caller's, judged by the
    namespace id (NS_GET_ID). On Linux 6.18 those ids come from per-CPU
    batches (of 4096, taken in turn from a global counter), so a namespace
    made on another CPU than the caller's was can have a lower id, and will
    have as long as that CPU's batch lasts: trying again on the same CPU
    fails again. Made on the CPU whose batch holds the caller's id, it is
    newer; :func:`_on_cpu` tries each CPU in turn.
    """
    from ..namespace import Namespace, NsType

    theirs = Namespace.of_pid(pid, NsType.MNT).ns_id
    mine = Namespace.of_thread(NsType.MNT).ns_id
    return theirs is None or mine is None or theirs > mine


class _on_cpu:
    """Run this process's threads (the launcher that clones among them) on *cpu* only.

    A class rather than a contextlib generator: contextlib costs every
    ``nsprim run`` 0.35 ms to import, and only --mount=FILE pins.
    """

    def __init__(self, cpu: Optional[int]) -> None:
        self.cpu = cpu
        self.old: Optional[set[int]] = None

    def __enter__(self) -> None:
        if self.cpu is None:
            return
        self.old = os.sched_getaffinity(0)
        for tid in [int(t) for t in os.listdir("/proc/self/task")]:
            with suppress(OSError):
                os.sched_setaffinity(tid, {self.cpu})

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            return
        for tid in [int(t) for t in os.listdir("/proc/self/task")]:
            with suppress(OSError):
                os.sched_setaffinity(tid, self.old)


class _Refused(Exception):
    """nsprim run refuses or failed; the message (unshare(1)'s where it has one) says why."""


def _persist(pid: int, files: dict[str, str]) -> list[str]:
    """Bind each new namespace of *pid* onto its FILE; all or nothing. Returns the paths."""
    from ..namespace import Namespace

    done: list[str] = []
    try:
        for t in _BIND_ORDER:
            path = files.get(t)
            if path is None:
                continue
            src = f"/proc/{pid}/ns/{t}"
            try:
                if not os.path.lexists(path):  # unshare binds onto FILE, it never creates it
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
                Namespace.of_pid(pid, t).persist(path)
            except OSError as err:
                text = os.strerror(err.errno) if err.errno else str(err)
                raise _Refused(f"mount {src} on {path} failed: {text}") from err
            except ValueError as err:
                raise _Refused(f"mount {src} on {path} failed: {err}") from err
            done.append(path)
    except BaseException:
        _unbind(done)
        raise
    return done


def _unbind(paths: list[str]) -> None:
    from ..namespace import unpersist

    for path in reversed(paths):
        with suppress(OSError, ValueError):
            unpersist(path)


def _veth_up(
    proc: Any, host: str, inside: str, addr: Optional[str], host_addr: Optional[str]
) -> None:
    """Create the --veth pair: INSIDE in *proc*'s network namespace, HOST here, both up."""
    from .. import net
    from ..process import enter

    try:
        net.create_veth(host, inside, peer_netns=proc)
    except (OSError, ValueError) as err:
        raise _Refused(f"--veth: {host}:{inside}: {_why(err)}") from err
    try:
        with enter(proc, "net"):
            net.set_link_up("lo")
            if addr is not None:
                _step(net.add_address, inside, addr, "--addr")
            net.set_link_up(inside)
        if host_addr is not None:
            _step(net.add_address, host, host_addr, "--host-addr")
        net.set_link_up(host)
    except BaseException:
        with suppress(OSError):
            net.delete_link(host)  # its peer goes with it
        raise


def _why(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno)
    return str(err)


def _step(fn: Callable[[str, str], None], name: str, cidr: str, flag: str) -> None:
    try:
        fn(name, cidr)
    except (OSError, ValueError) as err:
        raise _Refused(f"{flag}: {cidr}: {_why(err)}") from err


def _stop(proc: Any) -> None:
    with suppress(OSError):
        proc.kill()
    with proc:
        proc.wait()


# A range of ids to map: (inner, outer, count); inner None: "from 0" (--map-auto).
if TYPE_CHECKING:
    _Range = tuple[Optional[int], int, int]


def _subids(kind: str, identity: bool) -> _Range:
    """The caller's first subordinate range, as unshare's --map-auto (0..) or --map-subids."""
    from ..idmap import SUBID_FILES, subid_range

    euid = os.geteuid()
    try:
        first, count = subid_range(kind, euid)
    except KeyError:
        raise _Refused(f"you (user {euid}) don't exist.") from None
    except LookupError as err:
        raise _Refused(str(err)) from None
    except OSError as err:
        text = os.strerror(err.errno) if err.errno else str(err)
        raise _Refused(f"could not open '{SUBID_FILES[kind]}': {text}") from None
    return (first if identity else None, first, count)


def _ranges(given: Optional[list[Any]], kind: str, auto: bool, subids: bool) -> list[_Range]:
    out: list[_Range] = []
    for item in given or ():
        if item == "auto":
            out.append(_subids(kind, identity=False))
        elif item == "subids":
            out.append(_subids(kind, identity=True))
        elif item == "all":
            # every id this namespace maps, to itself (/proc/self/uid_map's first column)
            with open(f"/proc/self/{kind}_map") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) == 3:
                        out.append((int(fields[0]), int(fields[0]), int(fields[2])))
        else:
            inner, outer, count = item
            out.append((inner, outer, count))
    if auto:
        out.append(_subids(kind, identity=False))
    if subids:
        out.append(_subids(kind, identity=True))
    return out


def _with_single(ranges: list[_Range], outer: int, inner: Optional[int]) -> list[str]:
    """uid_map lines: *ranges*, and *inner* -> *outer* (the caller, -r/-c/--map-user) made room for.

    util-linux's rule (unshare.c, add_single_map_range; 2.38's results): an
    auto range starts at inner 0; a range the single id falls in (either
    side) gives up one id at its top, and is split around the single id's
    outer and inner positions, so that no two lines overlap and each range
    stays in order. (Later util-linux releases keep the auto range whole.)
    """
    lines: list[str] = []
    none = 2**32 - 1  # util-linux's (uid_t)-1: no single id
    o, i = (outer, inner) if inner is not None else (none, none)
    for r_inner, r_outer, count in ranges:
        if r_inner is None:
            r_inner = 0
        if inner is not None and (
            r_outer <= o <= r_outer + count or r_inner <= i <= r_inner + count
        ):
            count -= 1
        o_off = min(o - r_outer if o > r_outer else 0, count)
        i_off = min(i - r_inner if i > r_inner else 0, count)
        lo = min(o_off, i_off)
        mid_o, mid_i = r_outer + lo, r_inner + lo
        mid_o += mid_o == o
        mid_i += mid_i == i
        mid = abs(o_off - i_off)
        hi_o, hi_i = mid_o + mid, mid_i + mid
        hi_o += hi_o == o
        hi_i += hi_i == i
        hi = count - lo - mid
        for first_i, first_o, n in ((r_inner, r_outer, lo), (mid_i, mid_o, mid), (hi_i, hi_o, hi)):
            if n:
                lines.append(f"{first_i} {first_o} {n}")
    if inner is not None:
        lines.append(f"{inner} {outer} 1")
    return lines


def _helpers_missing(uid: bool, gid: bool) -> Optional[str]:
    from ..idmap import find_map_helper

    for name, needed in (("newuidmap", uid), ("newgidmap", gid)):
        if needed:
            try:
                find_map_helper(name)
            except FileNotFoundError:
                return name
    return None


def cmd_run(ns: argparse.Namespace) -> int:
    """Handle ``nsprim run``; return the exit status."""
    from .._nstype import NsType
    from ..errors import NsprimError
    from ..process import spawn

    helper: Optional[list[str]] = None
    files = ns_files(ns)
    if (ns.addr is not None or ns.host_addr is not None) and ns.veth is None:
        flag = "--addr" if ns.addr is not None else "--host-addr"
        print(f"nsprim run: {flag} needs --veth", file=sys.stderr)
        return 1
    if ns.load_interp and ns.mount_binfmt is None:
        ns.mount_binfmt = BINFMT_DEFAULT  # unshare: -l implies --mount-binfmt
    if ns.mount_binfmt == BINFMT_DEFAULT and ns.mount_proc is None:
        ns.mount_proc = "/proc"  # unshare: the default place is in a fresh proc
    hold = bool(files) or ns.veth is not None
    rfd = wfd = -1
    forward = (signal.SIGTERM, signal.SIGINT) if ns.forward_signals else ()
    with signals_held(forward) as held:
        try:
            types = chosen_types(ns)
            # unshare(1): -r maps 0/0; --map-user/--map-group override one side.
            map_uid: Optional[int] = 0 if ns.map_root_user else None
            map_gid: Optional[int] = 0 if ns.map_root_user else None
            if ns.map_current_user:
                map_uid, map_gid = os.geteuid(), os.getegid()
            if ns.map_user is not None:
                map_uid = ns.map_user
            if ns.map_group is not None:
                map_gid = ns.map_group
            uid_ranges = _ranges(ns.map_users, "uid", ns.map_auto, ns.map_subids)
            gid_ranges = _ranges(ns.map_groups, "gid", ns.map_auto, ns.map_subids)
            setgroups = ns.setgroups
            if map_gid is not None and not gid_ranges and ns.owner is None:
                if setgroups == "allow":
                    raise ValueError(
                        "options --setgroups=allow and --map-group are mutually exclusive"
                    )
                setgroups = "deny"  # an unprivileged gid_map needs it (unshare(1) too)
            # unshare(1): with ranges, the caller's own line joins them (room made for it)
            uid_lines = _with_single(uid_ranges, os.geteuid(), map_uid) if uid_ranges else []
            gid_lines = _with_single(gid_ranges, os.getegid(), map_gid) if gid_ranges else []
            if map_uid is not None and not uid_ranges:
                uid_lines.append(f"{map_uid} {os.geteuid()} 1")
            if map_gid is not None and not gid_ranges:
                gid_lines.append(f"{map_gid} {os.getegid()} 1")
            # as unshare: root writes the ranges itself, anyone else through the setuid helpers
            helpers = os.geteuid() != 0 and bool(uid_ranges or gid_ranges)
            if helpers:
                missing = _helpers_missing(bool(uid_lines), bool(gid_lines))
                if missing is not None:
                    print(
                        f"nsprim run: failed to execute {missing}: No such file or directory "
                        "(mapping id ranges unprivileged needs the setuid helpers of the "
                        "uidmap package)",
                        file=sys.stderr,
                    )
                    return EXIT_ENOENT
            if ns.veth is not None and NsType.NET not in types:
                types.append(NsType.NET)
            if (uid_lines or gid_lines) and NsType.USER not in types:
                types.append(NsType.USER)
            if ns.mount_binfmt is not None:  # unshare: implies --user and --mount
                types += [t for t in (NsType.USER, NsType.MNT) if t not in types]
            if ns.mount_proc is not None and NsType.MNT not in types:
                types.append(NsType.MNT)  # unshare(1): --mount-proc implies --mount
            offsets = {
                k: v
                for k, v in (("monotonic", ns.monotonic), ("boottime", ns.boottime))
                if v is not None
            }
            argv = command(ns)
            env: Optional[dict[str, str]] = None
            if ns.clear_env or ns.whitelist_env is not None:
                # unshare: clearenv(), then setenv() each listed variable that is set
                keep = [n for n in (ns.whitelist_env or "").split(",") if n]
                env = {n: os.environ[n] for n in keep if n in os.environ}
            if hold:
                # The helper waits on this pipe until the binds are in place.
                rfd, wfd = os.pipe2(os.O_CLOEXEC)
            helper = _helper(ns, NsType.PID in types, rfd)
            if helper is not None and not sys.executable:
                raise OSError(errno.ENOENT, "no Python interpreter to run the helper")
            cpus = sorted(os.sched_getaffinity(0))
            mask = ",".join(map(str, cpus))
            # the first try as it comes, then on each CPU in turn (see _mnt_bindable)
            tries: list[Optional[int]] = [None]
            if "mnt" in files:
                tries += (cpus * MNT_TRIES)[: MNT_TRIES - 1]
            for cpu in tries:
                opts = [*(helper or ()), *(["--affinity", mask] if cpu is not None else ())]
                run_argv = [sys.executable, "-I", "-S", _EXEC, *opts, "--", *argv]
                with _on_cpu(cpu):
                    proc = spawn(
                        run_argv if helper is not None else argv,
                        namespaces=types,
                        hostname=ns.hostname,
                        domainname=ns.domainname,
                        uid_map="\n".join(uid_lines) or None,
                        gid_map="\n".join(gid_lines) or None,
                        setgroups=setgroups,
                        mount_proc=ns.mount_proc is not None and helper is None,
                        # unshare(1) changes propagation only in a new mount namespace
                        propagation=(ns.propagation or "private")
                        if NsType.MNT in types
                        else "private",
                        time_offsets=offsets or None,
                        loopback_up=ns.lo_up,
                        cwd=ns.wd if helper is None else None,
                        pass_fds=[rfd] if rfd >= 0 else [],
                        die_with_parent=ns.kill_child if ns.kill_child is not None else False,
                        map_helpers=helpers,
                        binfmt_misc=ns.mount_binfmt,
                        binfmt_register=ns.load_interp or (),
                        owner=ns.owner,
                        keep_caps=ns.keep_caps,
                        env=env,
                    )
                # A mount namespace the kernel would refuse to bind: the held
                # helper has run nothing yet, so make another (invisible).
                try:
                    if "mnt" not in files or _mnt_bindable(proc.pid):
                        break
                except BaseException:
                    _stop(proc)
                    raise
                _stop(proc)
            else:
                raise _Refused(
                    f"mount /proc/{proc.pid}/ns/mnt on {files['mnt']} failed: the kernel binds "
                    f"only a mount namespace newer than the caller's, and {len(tries)} new ones "
                    "were all older"
                )
            if rfd >= 0:
                os.close(rfd)
                rfd = -1
            bound: list[str] = []
            try:
                if files:
                    bound = _persist(proc.pid, files)
                if ns.veth is not None:
                    host, inside = ns.veth
                    _veth_up(proc, host, inside, ns.addr, ns.host_addr)
            except BaseException:
                _unbind(bound)
                _stop(proc)
                raise
            if wfd >= 0:
                with suppress(BrokenPipeError):  # the helper died: wait() says how
                    os.write(wfd, b"\x06")  # unshare's sync byte: go on
        except _Refused as err:
            print(f"nsprim run: {err}", file=sys.stderr)
            return 1
        except (NsprimError, OSError, ValueError, TypeError) as err:
            if getattr(err, "step", None) == "binfmt_register":
                text = os.strerror(err.errno) if isinstance(err, OSError) and err.errno else err
                print(
                    f"nsprim run: write failed {ns.mount_binfmt}/register: {text}",
                    file=sys.stderr,
                )
                return 1
            if getattr(err, "step", None) == "mount_binfmt":
                text = os.strerror(err.errno) if isinstance(err, OSError) and err.errno else err
                print(f"nsprim run: mount {ns.mount_binfmt} failed: {text}", file=sys.stderr)
                return 1
            if helper is not None and getattr(err, "step", None) == "execve":
                # the helper's interpreter, not the command, could not be run
                detail = os.strerror(err.errno) if isinstance(err, OSError) and err.errno else err
                print(
                    f"nsprim run: -R, --mount-proc, -S/-G and --TYPE=FILE run a helper with "
                    f"{sys.executable}: {detail}",
                    file=sys.stderr,
                )
                return 1
            owner_steps = {"setgroups": "--owner", "setgid": "--owner", "setuid": "--owner"}
            return fail("run", err, owner_steps if ns.owner is not None else None)
        finally:
            for fd in (rfd, wfd):
                if fd >= 0:
                    os.close(fd)
        held.started(proc)
        return wait(proc)
