"""The last steps of ``nsprim run`` that unshare(1) takes and the process API does not.

Run as a script (``python -I -S _exec.py [--root DIR] [--wd DIR] [--mount-proc
DIR [--private-proc]] -- COMMAND...``) as the program :func:`nsprim.spawn` starts,
so it is already in the new namespaces, then it becomes COMMAND with
execvp(2). It does what ``unshare`` does after unshare(2), in its order:

* ``--wait-fd N``: first read one byte from fd N (a pipe), so that nsprim
  can bind the namespaces' files (``--net=FILE``) and set up a veth pair
  before anything runs; EOF instead (nsprim failed and said why) exits 1;
* ``--affinity CPUS``: sched_setaffinity(2) back to the comma-separated CPUS
  (nsprim may have pinned this process's creation to one CPU for
  ``--mount=FILE``, and the command must not inherit that);
* ``--root DIR``: chroot(2) into DIR, then chdir(2) to ``--wd`` or ``/``
  (unshare's ``-R``; the process API's ``root=`` pivots instead);
* ``--wd DIR`` alone: chdir(2);
* ``--setgid GID``/``--setuid UID``: setgroups(2) to none and setgid(2), then
  setuid(2), last (unshare's ``-G``/``-S``);
* ``--mount-proc DIR``: mount a proc filesystem on DIR (inside the new root
  if there is one) for the pid namespace this process is in — also without
  ``-p``, as unshare does; ``--private-proc`` first makes DIR private
  (unshare does so when the propagation it was given is not ``private``).

Started with ``-S`` (no site) and imports only :mod:`os`, :mod:`signal` and
:mod:`sys` unless a mount is needed, so it costs one bare interpreter start.
Errors are one line in util-linux's form; exit 1, or 126/127 when COMMAND
can't be executed / is not found.
"""

from __future__ import annotations

import os
import signal
import sys

PROG = "nsprim run"


def _die(parts: list[str], status: int = 1) -> None:
    sys.stderr.write(f"{PROG}: {': '.join(parts)}\n")
    sys.stderr.flush()
    os._exit(status)


def _mount_proc(where: str, private: bool) -> None:
    # The typed binding, from the package this file belongs to (-S left sys.path bare).
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from nsprim import syscalls
    from nsprim.flags import MountFlags

    if private:
        try:
            syscalls.mount("none", where, None, MountFlags.PRIVATE | MountFlags.REC)
        except OSError as err:
            if err.errno != 22:  # EINVAL: /proc is no mount point yet (unshare ignores it too)
                _die(["--mount-proc", where, os.strerror(err.errno or 0)])
    try:
        syscalls.mount(
            "proc", where, "proc", MountFlags.NOSUID | MountFlags.NOEXEC | MountFlags.NODEV
        )
    except OSError as err:
        _die(["--mount-proc", where, os.strerror(err.errno or 0)])


def _exec_environ() -> dict[bytes, bytes] | None:
    """The environment this process was exec'd with (/proc/self/environ), or None.

    Not ``os.environ``: the interpreter edits that at start-up (PEP 538 sets
    LC_CTYPE under a C locale), and the command must get what nsprim gave.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        name, eq, value = item.partition(b"=")
        if eq and name:
            env[name] = value
    return env


def main(argv: list[str]) -> None:
    """Apply the options in *argv*, then execvp(2) the command after ``--``."""
    environ = _exec_environ()
    root = wd = None
    uid = gid = None
    mount_proc: str | None = None
    private = False
    wait_fd = -1
    affinity: list[int] = []
    i = 0
    while i < len(argv) and argv[i] != "--":
        opt = argv[i]
        if opt == "--root":
            root, i = argv[i + 1], i + 2
        elif opt == "--wd":
            wd, i = argv[i + 1], i + 2
        elif opt == "--mount-proc":
            mount_proc, i = argv[i + 1], i + 2
        elif opt == "--affinity":
            affinity, i = [int(c) for c in argv[i + 1].split(",")], i + 2
        elif opt == "--wait-fd":
            wait_fd, i = int(argv[i + 1]), i + 2
        elif opt == "--private-proc":
            private, i = True, i + 1
        elif opt == "--setuid":
            uid, i = int(argv[i + 1]), i + 2
        elif opt == "--setgid":
            gid, i = int(argv[i + 1]), i + 2
        else:
            _die([f"internal error: unknown helper option {opt!r}"])
    command = argv[i + 1 :]
    if not command:
        _die(["internal error: no command"])
    # Python ignores SIGPIPE and SIGXFSZ and handles SIGINT; the command starts with
    # the defaults, as it would from unshare (subprocess's restore_signals).
    for name in ("SIGPIPE", "SIGXFSZ", "SIGINT"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    if wait_fd >= 0:
        try:
            go = os.read(wait_fd, 1)
        except OSError:
            go = b""
        if not go:
            os._exit(1)  # nsprim gave up (and said why) before releasing the command
        os.close(wait_fd)
    if affinity:
        try:
            os.sched_setaffinity(0, affinity)
        except OSError as err:
            _die(["sched_setaffinity", os.strerror(err.errno or 0)])
    if root is not None:
        try:
            os.chroot(root)
        except OSError as err:
            _die(["--root", root, os.strerror(err.errno or 0)])
        wd = wd or "/"
    if wd is not None:
        try:
            os.chdir(wd)
        except OSError as err:
            _die(["--wd", wd, os.strerror(err.errno or 0)])
    if mount_proc is not None:
        _mount_proc(mount_proc, private and root is None)
    # unshare -G/-S: drop supplementary groups, then the gid, then the uid
    if uid is not None or gid is not None:
        import warnings  # noqa: F401  (execvp imports it; the new uid may not read it)
    if gid is not None:
        try:
            os.setgroups([])
            os.setgid(gid)
        except OSError as err:
            _die(["--setgid", str(gid), os.strerror(err.errno or 0)])
    if uid is not None:
        try:
            os.setuid(uid)
        except OSError as err:
            _die(["--setuid", str(uid), os.strerror(err.errno or 0)])
    try:
        if environ is None:
            os.execvp(command[0], command)
        os.execvpe(command[0], command, environ)
    except OSError as err:
        _die(
            [f"failed to execute {command[0]}", os.strerror(err.errno or 0)],
            127 if err.errno == 2 else 126,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
