"""``nsprim enter``: run a command in the namespaces of a process, with nsenter(1)'s flags.

Layer 4: imports the standard library and nsprim's process API. As
nsenter(1) does, the command runs in a child and this process waits and
exits with its status (see :mod:`nsprim.cli._spawn`); with ``-F`` this
process joins the namespaces itself and becomes the command.

What is opened, and when (util-linux's order): the target is a pidfd from
the start (``-t PID:INODE`` checks the pidfd's inode, so a reused pid is
refused); its namespaces come through the pidfd (PIDFD_GET_<TYPE>_NAMESPACE,
Linux 6.11, else ``/proc/PID/ns``); ``--TYPE=FILE``, ``--root=DIR`` and
``--wd=DIR`` are opened in the caller's namespaces before any join;
``--wdns`` is resolved after the joins and the chroot. ``-Z`` acts only where
SELinux is enabled (:func:`nsprim.lsm.selinux_enabled`, libselinux's rule): the
target's context is read once its pidfd is open, and the child writes it to its
own ``attr/exec`` before its first setns, as nsenter calls setexeccon() first.
"""

from __future__ import annotations

import os

from .._stdlib import signal
from ._spawn import (
    NO_FILE,
    NS_OPTIONS,
    add_command,
    add_ns_flags,
    command,
    fail,
    ns_files,
    number,
    signals_held,
    wait,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    import argparse
    from typing import Any, Optional

    from ..namespace import NsType

_LONG = {t: long.lstrip("-") for _, long, t in NS_OPTIONS}

__all__ = ["add_enter_parser", "cmd_enter"]

_STEPS = {"wdns": "--wdns", "keep_caps": "--keep-caps"}


def _target(text: str) -> tuple[int, Optional[int]]:
    """``PID`` or ``PID:INODE`` (the pidfd's inode, util-linux 2.43's form)."""
    pid_text, colon, ino_text = text.partition(":")
    pid = number("pid", lowest=1)(pid_text) if pid_text.isdigit() else -1
    ino: Optional[int] = None
    if colon:
        ino = int(ino_text) if ino_text.isdigit() else 0
    if pid < 0 or ino == 0 or (ino is not None and ino >= 2**64):
        import argparse

        raise argparse.ArgumentTypeError(f"failed to parse pid: '{text}'")
    return pid, ino


def _id_or_follow(what: str) -> Any:
    parse = number(what)

    def inner(text: str) -> Any:
        return "follow" if text == "follow" else parse(text)

    return inner


def add_enter_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``enter``: run a command in the namespaces of a process, with nsenter(1)'s flags."""

    from . import Parser

    p: argparse.ArgumentParser = subparsers.add_parser(
        "enter",
        help="run a command in the namespaces of a process (like nsenter)",
        description="Run COMMAND in the namespaces of process PID (or of nsfs files), "
        "as util-linux nsenter(1) does.",
    )
    p.add_argument(
        "-t",
        "--target",
        metavar="PID[:INODE]",
        type=_target,
        help="target process; with :INODE (its pidfd's inode, see getino(1)) a reused pid "
        "is refused",
    )
    p.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="enter every namespace of the target (those shared are skipped)",
    )
    add_ns_flags(p, "enter the", files=True)
    p.add_argument(
        "-N",
        "--net-socket",
        metavar="FD",
        type=number("file descriptor"),
        help="enter the network namespace of the target's socket FD (needs -t; Linux 5.6)",
    )
    p.add_argument(
        "--user-parent",
        action="store_true",
        help="enter the parent user namespace (of -U's, or of the owner of another namespace)",
    )
    p.add_argument(
        "-S",
        "--setuid",
        metavar="UID",
        type=_id_or_follow("uid"),
        help="uid in the entered namespaces ('follow': the target's)",
    )
    p.add_argument(
        "-G",
        "--setgid",
        metavar="GID",
        type=_id_or_follow("gid"),
        help="gid in the entered namespaces ('follow': the target's)",
    )
    p.add_argument(
        "--preserve-credentials",
        action="store_true",
        help="keep uid and gid when entering a user namespace",
    )
    p.add_argument(
        "--keep-caps",
        action="store_true",
        help="keep the capabilities granted in the user namespace across exec (ambient)",
    )
    explicit = p.add_explicit_only if isinstance(p, Parser) else None
    for short, long, what in (
        ("-r", "--root", "set the root directory (the target's, or DIR)"),
        ("-w", "--wd", "set the working directory (the target's, or DIR, opened before joining)"),
    ):
        if explicit is not None:
            explicit(short, long, const=NO_FILE, metavar="DIR", help=what)
        else:
            p.add_argument(short, long, nargs="?", const=NO_FILE, metavar="DIR", help=what)
    p.add_argument(
        "-W",
        "--wdns",
        metavar="DIR",
        help="set the working directory, resolved in the entered namespaces (after --root)",
    )
    p.add_argument(
        "-e",
        "--env",
        action="store_true",
        help="take the environment of the target process",
    )
    p.add_argument(
        "-F",
        "--no-fork",
        action="store_true",
        help="don't fork: join in this process and execute the command (with -p the command "
        "stays outside the pid namespace; its children are in it)",
    )
    p.add_argument(
        "-c",
        "--join-cgroup",
        action="store_true",
        help="join the cgroup (v2) of the target process",
    )
    p.add_argument(
        "-Z",
        "--follow-context",
        action="store_true",
        help="run the command in the SELinux context of the target (needs -t; "
        "nothing to do where SELinux is not enabled)",
    )
    add_command(p)
    return p


def _given(value: Optional[str]) -> Optional[str]:
    """The DIR of ``--root=DIR``-style options; None when absent or bare."""
    return None if value is None or value == NO_FILE else value


class _Refusal(Exception):
    """util-linux's words for a refusal (``nsprim enter: MESSAGE``), exit 1."""


def cmd_enter(ns: argparse.Namespace) -> int:
    """Handle ``nsprim enter``; return the exit status.

    With ``-F`` the calling process joins the namespaces and becomes the
    command (it returns only on failure): call it from a process you can spare.
    """
    from ..errors import NsprimError
    from . import UsageError

    if ns.wd is not None and ns.wdns is not None:
        # util-linux's err_exclusive_options(), not a usage error
        return fail("enter", _Refusal("mutually exclusive arguments: --wdns --wd"))
    files = ns_files(ns)
    try:
        return _enter(ns, files)
    except UsageError:
        raise
    except _Refusal as err:
        return fail("enter", err)
    except (NsprimError, OSError, ValueError, TypeError) as err:
        return fail("enter", err, _STEPS)


def _enter(ns: argparse.Namespace, files: dict[str, str]) -> int:
    from .. import syscalls as sc
    from .._fd import OwnedFd
    from ..errors import NoSuchProcess
    from ..namespace import NsType, nstype_of
    from ..process import spawn_in

    named = [NsType(t) for _, _, t in NS_OPTIONS if getattr(ns, f"ns_{t}", None) is not None]
    from_target = [t for t in named if t.value not in files]
    pid: Optional[int] = ns.target[0] if ns.target else None
    # nsenter -Z acts only where libselinux says SELinux is enabled, and first of all
    selinux = ns.follow_context and _selinux_enabled()
    if selinux and pid is None:
        raise _Refusal("no target PID specified for --follow-context")
    if pid is None and (from_target or ns.all or ns.net_socket is not None or ns.user_parent):
        raise _Refusal("no target PID specified")
    owned: list[OwnedFd] = []
    try:
        try:
            pidfd = _open_target(ns, owned) if pid is not None else None
        except NoSuchProcess:
            if not selinux:
                raise
            raise _Refusal(f"failed to get {pid} SELinux context") from None
        context = _target_context(pid, pidfd) if selinux else None
        over: dict[NsType, int] = {}
        for kind, path in files.items():
            t = NsType(kind)
            if path.startswith(":"):  # util-linux 2.42: =:NSID, a namespace id
                fd = _open_by_id(path[1:])
            else:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as err:
                    raise _Refusal(f"cannot open {path}: {os.strerror(err.errno or 0)}") from None
            owned.append(OwnedFd(fd))
            try:
                actual = nstype_of(fd)
            except (ValueError, OSError):
                raise _Refusal(f"{path} is not a namespace file") from None
            if actual is not t:
                raise ValueError(f"--{_LONG[kind]}: {path} is a {actual.value} namespace")
            over[t] = fd
        if ns.all:
            for t in NsType:
                if (
                    t not in from_target
                    and t not in over
                    and os.path.exists(f"/proc/self/ns/{t.value}")
                ):
                    from_target.append(t)
        if ns.net_socket is not None:
            assert pidfd is not None
            try:
                sock = OwnedFd(sc.pidfd_getfd(pidfd, ns.net_socket))
            except OSError as err:
                text = os.strerror(err.errno or 0)
                raise _Refusal(f"pidfd_getfd({pidfd}, {ns.net_socket}): {text}") from None
            with sock:
                try:
                    over[NsType.NET] = _keep(owned, sc.socket_netns(sock))
                except OSError as err:
                    text = os.strerror(err.errno or 0)
                    raise _Refusal(f"ioctl({sock.fileno()}, SIOCGSKNS): {text}") from None
            if NsType.NET in from_target:
                from_target.remove(NsType.NET)
        if ns.user_parent:
            over[NsType.USER] = _keep(owned, _parent_userns(pidfd, over, owned))
            if NsType.USER in from_target:
                from_target.remove(NsType.USER)
        if not from_target and not over:
            raise _Refusal("no namespace specified")

        entering_user = NsType.USER in over or (
            NsType.USER in from_target and pid is not None and _other_userns(pidfd)
        )
        uid, gid = _ids(ns, pid, pidfd, entering_user)
        env = _environ(pid, pidfd) if ns.env else None
        if ns.join_cgroup:
            assert pid is not None and pidfd is not None
            _join_cgroup(pid, pidfd)
        root = _given(ns.root)
        wd = _given(ns.wd)
        wdns = ns.wdns
        for dir_ in (root, wd):
            if dir_ is not None:
                try:
                    os.close(os.open(dir_, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
                except OSError as err:
                    raise _Refusal(f"cannot open {dir_}: {os.strerror(err.errno or 0)}") from None
        target_root: Any = root if root is not None else ns.root is not None
        target_cwd: Any = wd if wd is not None else ns.wd is not None
        if (target_root is True or target_cwd is True) and pid is None:
            raise _Refusal("no target PID specified")
        argv = command(ns)
        if not ns.command and env is not None:
            argv = [env.get(b"SHELL", b"/bin/sh").decode("utf-8", "surrogateescape")]
        # the pidfd as an object with fileno(): a bare int would be taken for a pid
        targ: Any = owned[0] if pidfd is not None else None
        kw: dict[str, Any] = dict(
            types=from_target,
            uid=uid,
            gid=gid,
            target_root=target_root,
            target_cwd=target_cwd,
            env=env,
            extra_ns=list(over.values()),
            cwd=wdns,
            keep_caps=ns.keep_caps and entering_user,
            exec_context=context,
        )
        if targ is None:
            kw["types"] = None
        try:
            if ns.no_fork:
                return _exec_here(targ, argv, kw)
            # nsenter(1) without a fork *is* the command: `kill PID` reaches it. nsprim
            # forks, so it passes SIGTERM and SIGHUP on.
            with signals_held(forward=(signal.SIGTERM, signal.SIGHUP)) as held:
                proc = spawn_in(targ, argv, die_with_parent=False, **kw)
                held.started(proc)
                return wait(proc)
        except OSError as err:
            if context is None or getattr(err, "step", None) != "setexeccon":
                raise
            text = context.decode("utf-8", "surrogateescape")
            raise _Refusal(f"failed to set exec context to '{text}'") from None
    finally:
        for o in owned:
            o.close()


def _selinux_enabled() -> bool:
    from .. import lsm

    return lsm.selinux_enabled()


def _target_context(pid: Optional[int], pidfd: Optional[int]) -> Optional[bytes]:
    """nsenter's getpidcon(PID): the target's ``/proc/PID/attr/current``, read while its
    pidfd proves it is the same process; None when it has none (nothing to set)."""
    from .. import lsm
    from .. import syscalls as sc

    assert pid is not None and pidfd is not None
    refused = _Refusal(f"failed to get {pid} SELinux context")
    try:
        context = lsm.pid_context(pid)
    except OSError:
        raise refused from None
    try:
        sc.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        raise refused from None  # the pid was reused while it was read
    except PermissionError:
        pass  # alive, another user's
    return context or None


def _open_by_id(text: str) -> int:
    """``--TYPE=:NSID``: the namespace with that 64-bit id, through an nsfs file handle."""
    from .. import syscalls as sc

    if not text.isdigit() or not 0 < int(text) < 2**64:
        raise _Refusal(f"failed to parse nsid: {text}")
    try:
        return sc.open_ns_by_id(int(text))  # the type is checked by the caller
    except OSError as err:
        raise _Refusal(
            f"cannot open namespace of id {int(text)}: {os.strerror(err.errno or 0)}"
        ) from None


def _keep(owned: list[Any], fd: int) -> int:
    from .._fd import OwnedFd

    owned.append(OwnedFd(fd))
    return fd


def _open_target(ns: argparse.Namespace, owned: list[Any]) -> int:
    """pidfd_open(2) the target; with ``PID:INODE`` refuse a pid that now names another process."""
    from .. import syscalls as sc
    from .._fd import OwnedFd
    from ..errors import NoSuchProcess

    pid, ino = ns.target
    try:
        fd = sc.pidfd_open(pid)
    except ProcessLookupError:
        raise NoSuchProcess(pid) from None
    owned.append(OwnedFd(fd))
    if ino is not None:
        # pidfs (Linux 6.9) gives each process its own inode, never reused while
        # the system runs (64-bit); older pidfds share one anonymous inode.
        from .._targets import kernel_at_least

        if not kernel_at_least(6, 9):
            raise _Refusal(
                f"failed to obtain a valid file descriptor for PID {pid}: "
                f"{os.strerror(95)} (pidfd inodes need Linux 6.9)"
            )
        if os.fstat(fd).st_ino != ino:
            raise _Refusal(
                f"failed to obtain a valid file descriptor for PID {pid}: {os.strerror(3)}"
            )
    return fd


def _target_ns(pidfd: int, t: str) -> int:
    """A new nsfs fd for the target's namespace *t*: through the pidfd, else /proc."""
    from .. import syscalls as sc
    from .._targets import pid_of_pidfd
    from ..errors import UnsupportedError

    try:
        return sc.pidfd_get_namespace(pidfd, t)
    except UnsupportedError:
        pid = pid_of_pidfd(pidfd)
    fd = os.open(f"/proc/{pid}/ns/{t}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.pidfd_send_signal(pidfd, 0)  # still the same process: the pid was not reused
    except BaseException:
        os.close(fd)
        raise
    return fd


def _other_userns(pidfd: Optional[int]) -> bool:
    if pidfd is None:
        return True
    try:
        fd = _target_ns(pidfd, "user")
    except OSError:
        return True  # spawn_in reports the real problem
    try:
        theirs = os.fstat(fd)
    finally:
        os.close(fd)
    mine = os.stat("/proc/self/ns/user")
    return (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino)


def _parent_userns(pidfd: Optional[int], over: dict[Any, int], owned: list[Any]) -> int:
    """nsenter's --user-parent: NS_GET_USERNS of -U's namespace, else of the target's user
    namespace, else of any namespace given (its owner)."""
    from .. import syscalls as sc
    from ..namespace import NsType

    fd = over.get(NsType.USER)
    if fd is None and pidfd is not None:
        fd = _keep(owned, _target_ns(pidfd, "user"))
    if fd is None and over:
        fd = next(iter(over.values()))
    assert fd is not None
    try:
        return sc.ns_get_userns(fd)
    except OSError as err:
        raise _Refusal(f"failed to open parent namespace: {os.strerror(err.errno or 0)}") from None


def _ids(
    ns: argparse.Namespace, pid: Optional[int], pidfd: Optional[int], entering_user: bool
) -> tuple[Any, Any]:
    uid, gid = ns.setuid, ns.setgid
    if "follow" in (uid, gid):
        if pid is None or pidfd is None:
            raise _Refusal("no target PID specified")
        euid, egid = _target_ids(pid, pidfd)
        uid = euid if uid == "follow" else uid
        gid = egid if gid == "follow" else gid
    if entering_user and not ns.preserve_credentials:
        # nsenter(1): entering a user namespace sets uid and gid to 0
        # unless --preserve-credentials (or -S/-G) says otherwise.
        uid = 0 if uid is None else uid
        gid = 0 if gid is None else gid
    return uid, gid


def _target_ids(pid: int, pidfd: int) -> tuple[int, int]:
    """The target's effective uid and gid: PIDFD_GET_INFO (Linux 6.13), else the owner of
    /proc/PID (nsenter's way: root for a process that is not dumpable), read while the
    pidfd proves the pid was not reused."""
    from .. import syscalls as sc
    from ..errors import NoSuchProcess, UnsupportedError

    try:
        info = sc.pidfd_get_info(pidfd)
        return info.euid, info.egid
    except UnsupportedError:
        pass
    st = os.stat(f"/proc/{pid}")
    try:
        sc.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        raise NoSuchProcess(pid) from None
    return st.st_uid, st.st_gid


def _environ(pid: Optional[int], pidfd: Optional[int]) -> dict[bytes, bytes]:
    """The target's environment (``/proc/PID/environ``), read while its pidfd proves it is it."""
    from .. import syscalls as sc
    from ..errors import NoSuchProcess

    assert pid is not None and pidfd is not None
    with open(f"/proc/{pid}/environ", "rb") as f:
        data = f.read()
    try:
        sc.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        raise NoSuchProcess(pid) from None
    env = {}
    for item in data.split(b"\0"):
        key, eq, value = item.partition(b"=")
        if eq and key:
            env[key] = value
    return env


def _join_cgroup(pid: int, pidfd: int) -> None:
    """Move this process into the target's cgroup (v2), as nsenter does before it forks."""
    with open("/proc/self/mounts") as f:
        v2 = any(line.split()[1:3] == ["/sys/fs/cgroup", "cgroup2"] for line in f if line.strip())
    if not v2:
        raise _Refusal("--join-cgroup is only supported in cgroup v2")
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            # the v2 line ("0::PATH"); util-linux takes the first line, the same
            # thing on a v2-only system
            path = next((ln[3:].rstrip("\n") for ln in f if ln.startswith("0::")), "")
        if not path.startswith("/"):
            raise _Refusal("failed to get cgroup path")
        procs = f"/sys/fs/cgroup{path.rstrip('/')}/cgroup.procs"
        fd = os.open(procs, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError as err:
        raise _Refusal(f"failed to open cgroup.procs: {os.strerror(err.errno or 0)}") from None
    try:
        os.write(fd, str(os.getpid()).encode())
    except OSError as err:
        raise _Refusal(f"write cgroup.procs failed: {os.strerror(err.errno or 0)}") from None
    finally:
        os.close(fd)


def _exec_here(target: Any, argv: list[str], kw: dict[str, Any]) -> int:
    """``-F``: join in this process (which must be single-threaded), then execve(2)."""
    import threading

    from .. import _child, _targets
    from .._fd import OwnedFd

    if threading.active_count() > 1:
        raise ValueError("--no-fork needs a single-threaded process (nsprim started threads)")
    tgt = _targets.resolve(target) if target is not None else _targets.Target()
    extra: dict[str, Any] = {
        "keep_caps": kw["keep_caps"],
        "wdns": os.fsencode(kw["cwd"]) if kw["cwd"] else b"",
        "exec_context": kw["exec_context"] or b"",
    }
    for key in ("uid", "gid"):
        if kw[key] is not None:
            extra[key] = kw[key]
    aux: list[int] = []
    theirs: list[tuple[NsType, OwnedFd]] = []
    try:
        for name, value in (("root", kw["target_root"]), ("cwd", kw["target_cwd"])):
            if value is False:
                continue
            path = f"/proc/{tgt.pid}/{name}" if value is True else value
            aux.append(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            extra[f"{name}_fd"] = aux[-1]
        over = [(_namespace_type(fd), fd) for fd in kw["extra_ns"]]
        join, theirs = _targets.join_plan(tgt, kw["types"], extra, over, in_place=True)
        step = _child.StepName("setns")
        try:
            _child._join(join, step, -1)
        except OSError as err:
            err.step = step.name  # type: ignore[attr-defined]
            raise
        env = kw["env"] if kw["env"] is not None else os.environ
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as err:
            err.step = "execve"  # type: ignore[attr-defined]
            if err.filename is None:
                err.filename = argv[0]
            raise
    finally:
        for fd in aux:
            os.close(fd)
        for _, nsfd in theirs:
            if nsfd not in tgt.owned:
                nsfd.close()
        tgt.close()
    return 1  # pragma: no cover - execvpe returned without raising


def _namespace_type(fd: int) -> NsType:
    from ..namespace import nstype_of

    return nstype_of(fd)
