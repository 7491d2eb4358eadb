"""Run a probe body in a throwaway forked child and get its JSON-able answer back.

Layer 2, private to :mod:`nsprim.compat`: standard library, :mod:`nsprim.syscalls`.
Until the process layer publishes its one child mechanism below compat, this
is the probes' own: a CLOEXEC pipe, a deadline, kill on timeout, always reaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from typing import Any, Callable

from .. import syscalls as _sc

__all__ = ["Result", "run", "map_self"]

Result = dict[str, Any]


def run(fn: Callable[[], Result], timeout: float) -> Result:
    """Run *fn* in a forked child and return its JSON-able result.

    The child never returns into the caller's code: it writes one JSON
    document to a CLOEXEC pipe and ``_exit``\\ s. The parent reads with a
    deadline, kills the child on timeout and always reaps it. An exception in
    the child comes back as ``{"error": ..., "errno": ...}``.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError as err:
        os.close(r)
        os.close(w)
        return {"error": f"fork: {err.strerror}", "errno": err.errno}
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(r)
            try:
                res = fn()
            except BaseException as exc:
                res = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "errno": getattr(exc, "errno", None),
                }
            data = json.dumps(res).encode()
            while data:
                data = data[os.write(w, data) :]
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                timed_out = True
                break
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"error": f"timed out after {timeout} s"}
    if not chunks:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return {"error": f"child killed by signal {signal.Signals(sig).name}", "signal": sig}
        return {"error": f"child exited with status {os.waitstatus_to_exitcode(status)}"}
    try:
        parsed: Result = json.loads(b"".join(chunks))
    except ValueError:
        return {"error": "child wrote a malformed result"}
    return parsed


def map_self(uid: int, gid: int) -> None:
    """In a child that just unshared CLONE_NEWUSER: map root to the old ids.

    Writing one's own single id is allowed without privilege once setgroups
    is denied (user_namespaces(7), "Defining user and group ID mappings").
    A process whose ids changed (setresuid) is not dumpable, which makes its
    /proc/self files root's; this throwaway child makes itself dumpable again
    so that it can write its own maps (prctl(2) PR_SET_DUMPABLE).
    """
    _sc.set_dumpable(True)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")
