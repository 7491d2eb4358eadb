"""Bad input: every public function and CLI subcommand refuses junk with a typed, one-line error.

Hypothesis draws wrong types, huge and negative numbers, NULs, unicode,
non-existent / exiting / zombie pids, fds of every wrong kind (closed,
pipe, socket, epoll, memfd, nsfs, exited pidfd), malformed id maps and time
offsets and paths that don't exist. Each example runs once in a fresh forked
child inside a sandbox (:mod:`._fuzz`): it must return or raise ValueError,
TypeError, OSError or an nsprim error (all of them are one of those or
NsprimError) with a non-empty one-line message; a signal death is a crash, a
child silent for :data:`._fuzz.WATCHDOG` seconds a hang.

CLI subcommands go through ``nsprim.cli.main(argv)`` in the same harness
(exit 0, or non-zero with one line on stderr and no traceback; argparse's
usage errors may print their usage line first) and a few through a real
subprocess. Commands they run come from a fixed harmless list, never from
the fuzzer.

Examples per target: :data:`EXAMPLES` (default), overridden in :data:`HEAVY`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import pytest
from hypothesis import strategies as st

import nsprim.compat as compat
import nsprim.idmap as idmap
import nsprim.listing as listing
import nsprim.namespace as namespace
import nsprim.net as net
import nsprim.process as process
import nsprim.syscalls as sc
from nsprim import cli

from ._fuzz import Target, fd, junk, nstype, nstypes, path, pid, run_examples
from ._support import sandboxed

pytestmark = [pytest.mark.needs_root, pytest.mark.slow]

# A fixed seed unless NSPRIM_RELIABILITY_SEED says "random" (a fresh one) or gives one to
# replay; every result and failure prints the seed it ran with.
_SEED = os.environ.get("NSPRIM_RELIABILITY_SEED", "")
SEED = time.time_ns() % 1_000_000_007 if _SEED == "random" else int(_SEED or 20261205)
EXAMPLES = 40
HEAVY = {  # targets whose every example forks, spawns or probes a lot
    "compat.probe_all": 6,
    "cli.check": 6,
    "cli.conformance": 15,
    "process.spawn": 60,
    "process.run": 40,
    "process.call": 40,
}

SAFE_COMMANDS: list[Any] = [
    ["/bin/true"],
    ["/bin/echo", "fuzz"],
    ["true"],
    "/bin/true",
    [b"/bin/true"],
    ["/nonexistent/cmd"],
    ["/bin/true", "a\0b"],
    [],
    ["/etc/hostname"],  # not executable
    ["/"],
]


def _kw(**options: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=options)


def _args(*parts: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*parts)


def _intish() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(-(1 << 40), 1 << 40), junk())


def _name() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            ["lo", "eth0", "veth0", "x" * 15, "x" * 16, "", "a/b", "a b", "..", "lo\0"]
        ),
        st.text(max_size=20),
        junk(),
    )


def _idmap() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [
                "0 0 1",
                "0 65534 1",
                "0 0 4294967295",
                "0 0 0",
                "1 2",
                "a b c",
                "0 0 1\n0 0 1",
                "-1 0 1",
                "0 0 1\n" * 341,
                "",
                "\0",
            ]
        ),
        st.lists(st.tuples(_intish(), _intish(), _intish()), max_size=3),
        st.lists(
            st.builds(idmap.IdMapping, st.integers(0, 9), st.integers(0, 9), st.integers(1, 3)),
            max_size=3,
        ),
        junk(),
    )


def _offsets() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.dictionaries(
            # Keys must be hashable: no lists from junk() here.
            st.one_of(
                st.sampled_from(["monotonic", "boottime", "realtime"]),
                st.text(max_size=10),
                st.integers(),
                st.none(),
                st.binary(max_size=5),
            ),
            st.one_of(st.integers(-(1 << 64), 1 << 64), st.floats(), junk()),
            max_size=3,
        ),
        junk(),
    )


def _std() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([process.PIPE, process.DEVNULL, process.STDOUT]), fd())


SETUP_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "namespaces": nstypes(),
    "hostname": st.one_of(st.text(max_size=70), st.binary(max_size=70), junk()),
    "domainname": st.one_of(st.text(max_size=70), junk()),
    "map_root": junk(),
    "uid_map": _idmap(),
    "gid_map": _idmap(),
    "setgroups": st.one_of(st.sampled_from(["allow", "deny"]), junk()),
    "mount_proc": junk(),
    "propagation": st.one_of(
        st.sampled_from(["private", "slave", "shared", "unbindable", "unchanged"]), junk()
    ),
    "root": path(),
    "time_offsets": _offsets(),
    "loopback_up": junk(),
    "cwd": path(),
    "die_with_parent": st.one_of(st.integers(-2, 70), junk()),
}
SPAWN_OPTIONS = {
    **SETUP_OPTIONS,
    "env": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2), junk()),
    "stdin": _std(),
    "stdout": _std(),
    "stderr": _std(),
    "pass_fds": st.one_of(st.lists(fd(), max_size=3), junk()),
}


def _spawn(v: tuple[Any, dict[str, Any]]) -> None:
    with process.spawn(v[0], **v[1]) as proc:
        proc.communicate(timeout=5)


def _run(v: tuple[Any, dict[str, Any]]) -> None:
    process.run(v[0], **v[1])


def _enter(v: tuple[Any, Any]) -> None:
    with process.enter(v[0], *v[1]):
        pass


def _monitor(v: Any) -> None:
    with contextlib.closing(net.link_monitor()) as mon:
        mon.events(timeout=v)


def _bounded_timeout() -> st.SearchStrategy[Any]:
    # Watchdog-friendly: a real timeout is at most 0.2 s, the rest is junk.
    return st.one_of(
        st.floats(-1, 0.2),
        st.integers(-3, 0),
        junk().filter(
            lambda x: not (isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0.2)
        ),
    )


def _safe_fn() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([os.getpid, os.getuid, time.monotonic]), junk())


T = Target
TARGETS: list[Target] = [
    # --- nsprim.syscalls -------------------------------------------------------------------
    T("syscalls.unshare", _args(_intish()), lambda v: sc.unshare(*v)),
    T("syscalls.setns", _args(fd(), _intish()), lambda v: sc.setns(*v)),
    T(
        "syscalls.clone3",
        _kw(
            flags=_intish(),
            pidfd=junk(),
            exit_signal=_intish(),
            set_tid=st.one_of(st.lists(_intish(), max_size=40), junk()),
            cgroup=fd(),
        ),
        lambda v: sc.clone3(**v),
    ),
    T(
        "syscalls.sethostname",
        _args(st.one_of(st.text(max_size=80), st.binary(max_size=80), junk())),
        lambda v: sc.sethostname(*v),
    ),
    T(
        "syscalls.setdomainname",
        _args(st.one_of(st.text(max_size=80), junk())),
        lambda v: sc.setdomainname(*v),
    ),
    T(
        "syscalls.mount",
        _args(
            st.one_of(path(), st.none()),
            path(),
            st.one_of(st.sampled_from(["tmpfs", "proc", "bogus", "sysfs"]), junk()),
            _intish(),
            st.one_of(st.text(max_size=10), junk()),
        ),
        lambda v: sc.mount(*v),
        userns=True,
    ),
    T("syscalls.umount", _args(path(), _intish()), lambda v: sc.umount(*v), userns=True),
    T("syscalls.pivot_root", _args(path(), path()), lambda v: sc.pivot_root(*v), userns=True),
    T(
        "syscalls.open_tree",
        _args(path(), _intish()),
        lambda v: os.close(sc.open_tree(*v)),
        userns=True,
    ),
    T(
        "syscalls.move_mount",
        _args(fd(), path(), fd(), path(), _intish()),
        lambda v: sc.move_mount(*v),
        userns=True,
    ),
    T(
        "syscalls.mount_setattr",
        _args(fd(), path(), _intish(), _intish(), _intish()),
        lambda v: sc.mount_setattr(*v),
        userns=True,
    ),
    T("syscalls.pidfd_open", _args(pid(), _intish()), lambda v: os.close(sc.pidfd_open(*v))),
    T(
        "syscalls.pidfd_send_signal",
        _args(fd(), st.one_of(st.sampled_from([0, 15, 9, 10]), _intish()), _intish()),
        lambda v: sc.pidfd_send_signal(*v),
    ),
    T("syscalls.pidfd_getfd", _args(fd(), _intish()), lambda v: os.close(sc.pidfd_getfd(*v))),
    T("syscalls.ns_get_userns", _args(fd()), lambda v: os.close(sc.ns_get_userns(*v))),
    T("syscalls.ns_get_parent", _args(fd()), lambda v: os.close(sc.ns_get_parent(*v))),
    T("syscalls.ns_get_nstype", _args(fd()), lambda v: sc.ns_get_nstype(*v)),
    T("syscalls.ns_get_owner_uid", _args(fd()), lambda v: sc.ns_get_owner_uid(*v)),
    T("syscalls.ns_get_id", _args(fd()), lambda v: sc.ns_get_id(*v)),
    T("syscalls.socket_netns", _args(fd()), lambda v: os.close(sc.socket_netns(*v))),
    T("syscalls.ns_pid_from_pidns", _args(fd(), _intish()), lambda v: sc.ns_pid_from_pidns(*v)),
    T("syscalls.ns_pid_in_pidns", _args(fd(), _intish()), lambda v: sc.ns_pid_in_pidns(*v)),
    T(
        "syscalls.name_to_handle_at",
        _args(path(), _intish()),
        lambda v: sc.name_to_handle_at(v[0], flags=v[1]),
    ),
    T(
        "syscalls.open_by_handle_at",
        _args(fd(), _intish(), junk(), _intish()),
        lambda v: os.close(sc.open_by_handle_at(*v)),
    ),
    T("syscalls.listns", _args(_intish(), _intish()), lambda v: sc.listns(*v)),
    T(
        "syscalls.open_ns_by_id",
        _args(_intish(), _intish(), _intish()),
        lambda v: os.close(sc.open_ns_by_id(*v)),
    ),
    T("syscalls.set_pdeathsig", _args(_intish()), lambda v: sc.set_pdeathsig(*v)),
    T("syscalls.set_dumpable", _args(junk()), lambda v: sc.set_dumpable(*v)),
    T("syscalls.capget", _args(pid()), lambda v: sc.capget(*v)),
    T("syscalls.capset", _args(_intish(), _intish(), _intish()), lambda v: sc.capset(*v)),
    # --- nsprim.namespace ----------------------------------------------------------------
    T("namespace.NsType.parse", _args(nstype()), lambda v: namespace.NsType.parse(*v)),
    T(
        "namespace.Namespace.of_pid",
        _args(pid(), nstype()),
        lambda v: namespace.Namespace.of_pid(*v),
    ),
    T("namespace.Namespace.of_self", _args(nstype()), lambda v: namespace.Namespace.of_self(*v)),
    T(
        "namespace.Namespace.of_thread",
        _args(nstype(), st.one_of(st.none(), pid())),
        lambda v: namespace.Namespace.of_thread(*v),
    ),
    T(
        "namespace.Namespace.for_children",
        _args(nstype(), pid()),
        lambda v: namespace.Namespace.for_children(*v),
    ),
    T("namespace.Namespace.from_fd", _args(fd()), lambda v: namespace.Namespace.from_fd(*v)),
    T("namespace.Namespace.from_path", _args(path()), lambda v: namespace.Namespace.from_path(*v)),
    T("namespace.namespaces", _args(pid()), lambda v: namespace.namespaces(*v)),
    T("namespace.nstype_of", _args(fd()), lambda v: namespace.nstype_of(*v)),
    # --- nsprim.net ----------------------------------------------------------------------
    T("net.link_flags", _args(_name()), lambda v: net.link_flags(*v)),
    T("net.is_up", _args(_name()), lambda v: net.is_up(*v)),
    T("net.set_link_up", _args(_name()), lambda v: net.set_link_up(*v)),
    T("net.set_link_down", _args(_name()), lambda v: net.set_link_down(*v)),
    T(
        "net.create_veth",
        st.tuples(_name(), _name(), _kw(peer_netns=fd())),
        lambda v: net.create_veth(v[0], v[1], **v[2]),
    ),
    T(
        "net.move_link",
        st.tuples(_name(), _kw(netns_fd=fd(), netns_pid=pid())),
        lambda v: net.move_link(v[0], **v[1]),
    ),
    T("net.delete_link", _args(_name()), lambda v: net.delete_link(*v)),
    T(
        "net.add_address",
        _args(
            _name(),
            st.one_of(
                st.sampled_from(
                    [
                        "198.51.100.1/24",
                        "2001:db8::1/64",
                        "198.51.100.1/33",
                        "::/200",
                        "1.2.3",
                        "198.51.100.1",
                    ]
                ),
                junk(),
            ),
        ),
        lambda v: net.add_address(*v),
    ),
    T("net.addresses", _args(st.one_of(st.none(), _name())), lambda v: net.addresses(*v)),
    T("net.link_monitor.events", _bounded_timeout(), _monitor),
    # --- nsprim.idmap --------------------------------------------------------------------
    T("idmap.IdMapping", _args(_intish(), _intish(), _intish()), lambda v: idmap.IdMapping(*v)),
    T(
        "idmap.IdMap",
        _args(
            st.one_of(
                st.lists(
                    st.one_of(
                        st.builds(
                            idmap.IdMapping, st.integers(0, 5), st.integers(0, 5), st.integers(1, 3)
                        ),
                        junk(),
                    ),
                    max_size=4,
                ),
                junk(),
            )
        ),
        lambda v: idmap.IdMap(*v),
    ),
    T(
        "idmap.IdMap.single",
        _args(_intish(), _intish(), _intish()),
        lambda v: idmap.IdMap.single(*v),
    ),
    T(
        "idmap.IdMap.parse",
        _args(st.one_of(st.text(max_size=40), st.binary(max_size=40), _idmap())),
        lambda v: idmap.IdMap.parse(*v),
    ),
    T("idmap.IdMap.coerce", _args(_idmap()), lambda v: idmap.IdMap.coerce(*v)),
    T("idmap.write_uid_map", _args(pid(), _idmap()), lambda v: idmap.write_uid_map(*v)),
    T("idmap.write_gid_map", _args(pid(), _idmap()), lambda v: idmap.write_gid_map(*v)),
    T(
        "idmap.write_setgroups",
        _args(pid(), st.one_of(st.sampled_from(["allow", "deny"]), junk())),
        lambda v: idmap.write_setgroups(*v),
    ),
    T(
        "idmap.read_uid_map",
        _args(st.one_of(st.none(), pid())),
        lambda v: idmap.read_uid_map(*v),
    ),
    T(
        "idmap.read_gid_map",
        _args(st.one_of(st.none(), pid())),
        lambda v: idmap.read_gid_map(*v),
    ),
    # --- nsprim.process ------------------------------------------------------------------
    T(
        "process.spawn",
        st.tuples(st.one_of(st.sampled_from(SAFE_COMMANDS), junk()), _kw(**SPAWN_OPTIONS)),
        _spawn,
    ),
    T(
        "process.run",
        st.tuples(
            st.sampled_from(SAFE_COMMANDS),
            _kw(
                **SPAWN_OPTIONS,
                input=junk(),
                capture_output=junk(),
                timeout=_bounded_timeout(),
                check=junk(),
            ),
        ),
        _run,
        allowed=(subprocess.SubprocessError,),
    ),
    T(
        "process.call",
        st.tuples(_safe_fn(), _kw(**SETUP_OPTIONS, timeout=_bounded_timeout())),
        lambda v: process.call(v[0], **v[1]),
    ),
    T(
        "process.call_in",
        st.tuples(
            st.one_of(pid(), fd()),
            _safe_fn(),
            _kw(types=st.one_of(st.none(), nstypes()), timeout=_bounded_timeout()),
        ),
        lambda v: process.call_in(v[0], v[1], **v[2]),
    ),
    T(
        "process.spawn_in",
        st.tuples(
            st.one_of(pid(), fd()),
            st.sampled_from(SAFE_COMMANDS),
            _kw(
                types=st.one_of(st.none(), nstypes()),
                uid=_intish(),
                gid=_intish(),
                target_root=junk(),
                target_cwd=junk(),
                env=junk(),
                pass_fds=st.lists(fd(), max_size=2),
            ),
        ),
        lambda v: process.spawn_in(v[0], v[1], **v[2]).__exit__(None, None, None),
    ),
    T("process.enter", st.tuples(st.one_of(pid(), fd()), st.lists(nstype(), max_size=3)), _enter),
    # --- nsprim.compat / nsprim.listing ----------------------------------------------------
    T(
        "compat.probe_all",
        _kw(
            groups=st.one_of(
                st.lists(
                    st.one_of(
                        st.sampled_from(["system", "namespaces", "userns", "syscalls", "limits"]),
                        junk(),
                    ),
                    max_size=2,
                ),
                junk(),
            ),
            timeout=st.one_of(
                st.floats(-1, 2),
                junk().filter(
                    lambda x: (
                        not (isinstance(x, (int, float)) and not isinstance(x, bool) and x > 2)
                    )
                ),
            ),
        ),
        lambda v: compat.probe_all(**v),
    ),
    T(
        "compat.require",
        _args(
            st.one_of(
                st.text(max_size=20),
                st.lists(junk(), max_size=3),
                st.sampled_from(["user,net,pid", "clone3", ",", "nope"]),
            ),
            st.just([]),
        ),
        lambda v: compat.require(*v),
    ),
    T(
        "compat.decode_caps",
        _args(st.one_of(_intish(), st.text(max_size=20))),
        lambda v: compat.decode_caps(*v),
    ),
    T(
        "listing.scan",
        _kw(threads=junk(), fds=junk(), mounts=junk(), sockets=junk(), ioctls=junk()),
        lambda v: listing.scan(**v),
    ),
    T(
        "listing.tree",
        _args(st.one_of(junk(), st.just("scan")), nstype()),
        lambda v: listing.tree(listing.scan() if v[0] == "scan" else v[0], v[1]),
    ),
    T(
        "listing.walk",
        _args(st.one_of(st.lists(junk(), max_size=3), junk(), st.just("scan")), _intish()),
        lambda v: list(
            listing.walk(listing.tree(listing.scan()) if v[0] == "scan" else v[0], v[1])
        ),
    ),
]

# --- the CLI ----------------------------------------------------------------------------------

VALUES = st.one_of(
    st.sampled_from(
        [
            "0",
            "-1",
            "99999999999",
            "nan",
            "inf",
            "root",
            "nobody",
            "/",
            "/nonexistent",
            "KILL",
            "SIGTERM",
            "64",
            "1e9",
            "user",
            "a\0b",
            "é",
            "",
            "--",
        ]
    ),
    st.text(max_size=12),
)


def _opts(
    flags: list[str], valued: list[str], values: st.SearchStrategy[str] = VALUES
) -> st.SearchStrategy[list[str]]:
    one = st.one_of(
        st.sampled_from(flags).map(lambda f: [f]),
        st.tuples(st.sampled_from(valued), values).map(list),
        st.sampled_from(["--bogus", "-Q", "--", "-"]).map(lambda f: [f]),
    )
    return st.lists(one, max_size=5).map(lambda parts: [a for p in parts for a in p])


NS_FLAGS = ["-m", "-u", "-i", "-n", "-p", "-U", "-C", "-T"]
CMD_TAIL = st.sampled_from(
    [
        ["--", "/bin/true"],
        ["--", "/bin/echo", "-n"],
        ["/bin/true"],
        ["--", "/nonexistent"],
        ["--", "/etc/hostname"],
    ]
)

RUN_ARGV = st.tuples(
    _opts(
        [*NS_FLAGS, "-f", "-r", "--mount-proc", "--lo-up", "--kill-child"],
        [
            "--map-user",
            "--map-group",
            "--propagation",
            "--setgroups",
            "-R",
            "-w",
            "--monotonic",
            "--boottime",
            "--kill-child",
            "--hostname",
            "--domainname",
        ],
    ),
    CMD_TAIL,
).map(lambda t: ["run", *t[0], *t[1]])
ENTER_ARGV = st.tuples(
    st.sampled_from(
        [
            ["-t", "1"],
            ["-t", "0"],
            ["-t", "-5"],
            ["-t", "999999999"],
            ["-t", "x"],
            ["-t", "1:5"],
            ["-t", "1:x"],
            ["-t", "1:"],
            [],
        ]
    ),
    # never -F (the example's child would become the command) nor -c (it would move it)
    _opts(
        [
            *NS_FLAGS,
            "-a",
            "--preserve-credentials",
            "-r",
            "-w",
            "-e",
            "--keep-caps",
            "--user-parent",
            "--net=:3",
            "--uts=:x",
        ],
        ["-S", "-G", "-t", "-N", "-W"],
    ),
    CMD_TAIL,
).map(lambda t: ["enter", *t[0], *t[1], *t[2]])
CHECK_VALUES = st.one_of(
    st.sampled_from(
        ["0", "-1", "nan", "inf", "1e9", "0.5", "user", "a\0b", "é", "", "--", "user,net", "nope"]
    ),
    st.text(max_size=12).filter(lambda v: not v.strip().lstrip("-").replace(".", "").isdigit()),
)
CHECK_ARGV = _opts(["--json", "-v"], ["--require", "--timeout"], CHECK_VALUES).map(
    lambda a: ["check", *a]
)
LS_ARGV = _opts(
    ["--json", "--sockets", "--tree", "-P", "-H", "-Tprocess", "-r", "4026531836"],
    ["-t", "--type", "--tree", "-p", "--pid", "-Q", "--filter"],
).map(lambda a: ["ls", *a])
_OUT = tempfile.gettempdir()
CONFORMANCE_ARGV = st.tuples(
    _opts(["--controls"], ["--only", "--exclude", "--format", "--jobs", "--as-user"]),
    # Never a real run: --list or --merge (of files that are not reports) decides.
    st.sampled_from(
        [
            ["--list"],
            ["--merge", "/nonexistent.json"],
            ["--merge", "/etc/hostname"],
            ["--list", "-o", f"{_OUT}/nsprim-fuzz-list.txt"],
            ["--list", "-o", "/nonexistent/dir/r.txt"],
        ]
    ),
).map(lambda t: ["conformance", *t[0], *t[1]])


_TRY = re.compile(r"Try '(nsprim(?: \w+)?) --help' for more information\.\Z")


class CliProblem(Exception):
    """The CLI broke its contract (traceback, several lines, an escaped exception)."""


class CliExit(ValueError):
    """The CLI refused the arguments as it should: a non-zero exit with one line."""


def _cli(argv: list[str]) -> None:
    # Both levels: sys.stdout/sys.stderr (pytest replaced them with its own
    # capture objects) and fds 0-2 (what spawned commands inherit).
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = [os.dup(0), os.dup(1), os.dup(2)]
        saved_py = (sys.stdout, sys.stderr)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        py_err = io.StringIO()
        sys.stdout, sys.stderr = io.StringIO(), py_err
        try:
            try:
                rc: Any = cli.main(argv)
            except SystemExit as exc:  # argparse (usage errors, --help, --version)
                rc = exc.code
            except BaseException as exc:
                raise CliProblem(f"{type(exc).__name__} escaped main({argv!r}): {exc}") from None
        finally:
            sys.stdout, sys.stderr = saved_py
            for i, fd_ in enumerate(saved):
                os.dup2(fd_, i)
                os.close(fd_)
        err.seek(0)
        text = py_err.getvalue() + err.read().decode(errors="replace")
    if rc in (0, None):
        return
    # Lines end at "\n" only: str.splitlines() also splits at \x1c-\x1e, \x85 ... that
    # the messages echo from the fuzzed arguments.
    lines = [line for line in text.split("\n") if line.strip()]
    if not isinstance(rc, int):
        raise CliProblem(f"main({argv!r}) exited with {rc!r}")
    if "Traceback" in text:
        raise CliProblem(f"main({argv!r}) printed a traceback:\n{text}")
    if rc == 2 and lines and lines[0].startswith("usage:"):
        lines = [line for line in lines if not line.startswith(" ")][-1:]  # argparse's usage
    if len(lines) == 2 and _TRY.match(lines[1]):
        lines = lines[:1]  # util-linux's usage error: the message, then "Try '... --help'"
    if len(lines) != 1:
        raise CliProblem(f"main({argv!r}) exited {rc} with {len(lines)} lines on stderr: {text!r}")
    raise CliExit(f"exit {rc}: {lines[0]}")


CLI_TARGETS = [
    Target("cli.run", RUN_ARGV, _cli),
    Target("cli.enter", ENTER_ARGV, _cli),
    Target("cli.check", CHECK_ARGV, _cli),
    Target("cli.ls", LS_ARGV, _cli),
    Target("cli.conformance", CONFORMANCE_ARGV, _cli),
    Target("cli.top", st.lists(VALUES, max_size=3), _cli),
]

ALL = {t.name: t for t in TARGETS + CLI_TARGETS}


def _run_target(name: str, examples: int, seed: int) -> dict[str, Any]:
    return run_examples(ALL[name], examples, seed)


@pytest.mark.parametrize("name", sorted(ALL))
def test_fuzz_target_refuses_bad_input_with_typed_one_line_errors(name: str) -> None:
    examples = HEAVY.get(name, EXAMPLES)
    t0 = time.monotonic()
    result = sandboxed(_run_target, name, examples, SEED, timeout=300)
    tally = result["tally"]
    print(
        f"{name}: seed {SEED}, {sum(tally.values())} examples in "
        f"{time.monotonic() - t0:.1f}s: {tally}"
    )
    assert result["problems"] == [], f"seed {SEED}: " + "\n".join(result["problems"])
    assert sum(tally.values()) >= examples // 2, tally  # hypothesis really ran


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--bogus"],
        ["run", "-u", "--hostname", "x" * 100, "--", "/bin/true"],
        ["run", "--monotonic", "nan", "-T", "--", "/bin/true"],
        ["enter", "-t", "999999999", "-a", "--", "/bin/true"],
        ["enter", "-t", "1", "--", "/bin/true"],
        ["ls", "--type", "nope"],
        ["check", "--timeout", "-1"],
        ["conformance", "--jobs", "0"],
        ["conformance", "--merge", "/nonexistent.json"],
        ["nosuchcommand"],
    ],
)
def test_cli_subprocess_bad_input_one_line_no_traceback(argv: list[str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "nsprim", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode not in (0, None), r
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    if r.returncode == 2 and lines and lines[0].startswith("usage:"):
        lines = lines[-1:]
    if len(lines) == 2 and _TRY.match(lines[1]):
        lines = lines[:1]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("nsprim"), r.stderr


# --- bugs the fuzzer found, pinned down deterministically (fixed ones stay as regressions) ---------------------------------------


@pytest.mark.parametrize("bad", [None, 3.5, [], {}])
def test_decode_caps_rejects_wrong_types(bad: Any) -> None:
    try:
        compat.decode_caps(bad)
    except TypeError:
        return
    except AttributeError as exc:
        raise AssertionError(f"decode_caps({bad!r}) raised AttributeError: {exc}") from None
    raise AssertionError(f"decode_caps({bad!r}) accepted it")


@pytest.mark.parametrize("bad", [[False], [{}], [None]])
def test_compat_require_rejects_wrong_types(bad: Any) -> None:
    try:
        compat.require(bad, [])
    except TypeError:
        return
    except AttributeError as exc:
        raise AssertionError(f"require({bad!r}) raised AttributeError: {exc}") from None
    raise AssertionError(f"require({bad!r}) accepted it")


@pytest.mark.parametrize("call", ["tree", "walk"])
def test_listing_tree_and_walk_reject_junk(call: str) -> None:
    try:
        if call == "tree":
            listing.tree("not a listing")  # type: ignore[arg-type]
        else:
            list(listing.walk([1]))  # type: ignore[list-item]
    except TypeError:
        return
    except AttributeError as exc:
        raise AssertionError(f"{call} raised AttributeError: {exc}") from None
    raise AssertionError(f"{call} accepted junk")


def test_of_thread_unknown_tid_is_no_such_process() -> None:
    from nsprim.errors import NoSuchProcess

    gone = os.fork()
    if gone == 0:  # pragma: no cover - child
        os._exit(0)
    os.waitpid(gone, 0)
    try:
        namespace.Namespace.of_thread("mnt", gone)
    except NoSuchProcess:
        return
    except Exception as exc:
        raise AssertionError(
            f"of_thread('mnt', {gone}) raised {type(exc).__name__}: {exc}"
        ) from None


def test_cli_conformance_output_in_missing_dir_is_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "nsprim", "conformance", "--list", "-o", "/nonexistent/dir/r.txt"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode not in (0, None)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    if len(lines) == 2 and _TRY.match(lines[1]):
        lines = lines[:1]  # util-linux's usage error: the message, then "Try '... --help'"
    assert len(lines) == 1, r.stderr


@pytest.mark.parametrize("bad", ["abc", 1.5, "1\n2"])
def test_read_id_map_rejects_non_int_pid(bad: Any) -> None:
    try:
        idmap.read_uid_map(bad)
    except TypeError:
        return
    except Exception as exc:
        raise AssertionError(f"read_uid_map({bad!r}) raised {type(exc).__name__}: {exc}") from None
    raise AssertionError(f"read_uid_map({bad!r}) accepted it")


@pytest.mark.parametrize("value", ["1e9", "inf"])
def test_cli_check_huge_timeout_is_one_line(value: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "nsprim", "check", "--timeout", value],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in r.stderr, r.stderr[-300:]
    assert r.returncode != 0 and len(r.stderr.strip().split("\n")) == 1, r.stderr
