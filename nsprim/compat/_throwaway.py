"""Run a probe body in a throwaway child and get its JSON-able answer back.

Layer 2, private to :mod:`nsprim.compat`: standard library, :mod:`nsprim.syscalls`
and the child mechanism beneath the process API (:mod:`nsprim._calls`, which
:func:`nsprim.call` runs on too): a launched child, a deadline, kill on
timeout, always reaped. A probe's answer never raises: every failure comes
back as ``{"error": ...}``.
"""

from __future__ import annotations

import json
import signal
from typing import Any, Callable

from .. import syscalls as _sc
from ..errors import CallError, TimeoutExpired

__all__ = ["Result", "run", "map_self"]

Result = dict[str, Any]


def _answer(fn: Callable[[], Result]) -> str:
    """In the child: *fn*'s result as JSON, or the exception it raised as an error result."""
    try:
        res = fn()
    except BaseException as exc:
        res = {"error": f"{type(exc).__name__}: {exc}", "errno": getattr(exc, "errno", None)}
    return json.dumps(res)


def run(fn: Callable[[], Result], timeout: float) -> Result:
    """Run *fn* in a throwaway child and return its JSON-able result.

    The child never returns into the caller's code: it sends *fn*'s result
    as one JSON document and exits. The parent waits with a deadline, kills
    the child on timeout and always reaps it. An exception in the child
    comes back as ``{"error": ..., "errno": ...}``.
    """
    # Imported on the first probe, in the caller (a child that dropped its
    # privileges may not read the installation): ``import nsprim.compat``
    # stays light for the CLI.
    from .. import _calls

    try:
        data = _calls.run(lambda: _answer(fn), timeout)
    except TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    except CallError as err:
        rc = err.returncode
        if rc is not None and rc < 0:
            return {"error": f"child killed by signal {signal.Signals(-rc).name}", "signal": -rc}
        if rc is not None:
            return {"error": f"child exited with status {rc}"}
        return {"error": f"child wrote a malformed result ({err})"}
    except OSError as err:
        return {"error": str(err.strerror), "errno": err.errno}
    except Exception as err:  # json.dumps of a result that isn't JSON-able
        return {"error": f"child wrote a malformed result ({type(err).__name__}: {err})"}
    try:
        parsed: Result = json.loads(data)
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
