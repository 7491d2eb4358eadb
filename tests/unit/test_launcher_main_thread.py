"""The launcher tells the main thread from the others as threading does, without importing it.

`nsprim run` never loads threading; the launcher must still answer
``threading.current_thread() is threading.main_thread()`` as it did when it
imported threading itself (the thread that imported it was then threading's
main thread): only the main thread forks for itself, every other thread hands
its die_with_parent launch to the launcher thread.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CHECK = r"""
import _thread, os, sys
sys.path.insert(0, ROOT)
if FIRST == "threading":
    import threading
from nsprim._launcher import LAUNCHER
out = [LAUNCHER._main_ident is None, "threading" in sys.modules]

def on_thread(fn):
    done = _thread.allocate_lock(); done.acquire(); box = []
    def run():
        try:
            box.append(fn())
        finally:
            done.release()
    _thread.start_new_thread(run, ())
    done.acquire()
    return box[0]

out.append(LAUNCHER._on_main_thread())                      # the main thread
out.append(on_thread(LAUNCHER._on_main_thread))             # a bare _thread thread
def late_import():
    import threading  # first imported by another thread: not threading's main thread now
    return LAUNCHER._on_main_thread()
out.append(on_thread(late_import))
out.append(LAUNCHER._on_main_thread())
def forked():
    pid = os.fork()
    if pid == 0:  # the forking thread is the child's main thread
        os._exit(0 if LAUNCHER._on_main_thread() else 1)
    return os.waitpid(pid, 0)[1] == 0
out.append(on_thread(forked))
print(*out)
"""


def _answers(first: str) -> list[str]:
    code = f"ROOT = {ROOT!r}; FIRST = {first!r}\n" + _CHECK
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_nsprim_first_the_importing_thread_is_the_main_one() -> None:
    # no threading loaded; the answers are those threading would give had
    # nsprim imported it: main True, others False, a forking thread True in its child
    assert _answers("nsprim") == ["False", "False", "True", "False", "False", "True", "True"]


def test_threading_first_its_main_thread_is_the_main_one() -> None:
    assert _answers("threading") == ["True", "True", "True", "False", "False", "True", "True"]
