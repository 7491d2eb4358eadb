"""Run a test body in a forked child, so namespace changes never reach pytest.

``in_child(fn, *args)`` forks; the child runs ``fn(*args)`` and sends back the
pickled result or exception; the parent waits with a timeout, kills on
expiry and always reaps. Used by tests that unshare, setns or mount.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import traceback
from typing import Any, Callable


class ChildFailed(AssertionError):
    """The child raised; the message carries its traceback."""


def in_child(fn: Callable[..., Any], *args: Any, timeout: float = 20.0) -> Any:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            try:
                payload = pickle.dumps(("ok", fn(*args)))
            except BaseException as exc:
                payload = pickle.dumps(
                    (
                        "err",
                        f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                        _picklable(exc),
                    )
                )
            os.write(w, payload)
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    try:
        deadline = timeout
        while True:
            ready, _, _ = select.select([r], [], [], deadline)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"child {pid} did not finish in {timeout}s")
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if not chunks:
        raise ChildFailed(f"child {pid} died without a result")
    kind, *rest = pickle.loads(b"".join(chunks))
    if kind == "ok":
        return rest[0]
    text, child_exc = rest
    if child_exc is not None:
        raise child_exc
    raise ChildFailed(text)


def _picklable(exc: BaseException) -> BaseException | None:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return None


def drop_to_nobody() -> None:
    """In a child: become uid/gid 65534 with no supplementary groups (no capabilities)."""
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


def assert_all_reaped() -> None:
    """Every child of this process was reaped, but nsprim's own helpers.

    ``os.waitpid(-1, WNOHANG)`` raising ChildProcessError was the test; since
    nsprim keeps a forker process as this process's child once it has made
    two fork-path spawns (``nsprim.process.helper_pids()``), it answers
    ``(0, 0)`` then. So: no zombie to reap, and no live child but the helpers.
    """
    from nsprim import process

    try:
        assert os.waitpid(-1, os.WNOHANG) == (0, 0), "a child was left unreaped"
    except ChildProcessError:
        return
    kids: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            kids |= {int(p) for p in f.read().split()}
    assert kids <= process.helper_pids(), f"children left: {sorted(kids - process.helper_pids())}"
