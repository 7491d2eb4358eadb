"""nsprim: Linux namespaces from Python.

Public facade only: re-exports, ``__all__`` and ``__version__``; no logic here.

The daily API is here (``nsprim.spawn``, ``nsprim.run``, ``nsprim.call``,
``nsprim.call_in``, ``nsprim.enter``, ``nsprim.Namespace`` ...); the low-level
door is :mod:`nsprim.syscalls` (one typed function per syscall), network
plumbing is :mod:`nsprim.net`, environment probes :mod:`nsprim.compat`, and
namespace discovery :mod:`nsprim.listing`.
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from . import net as net
    from . import syscalls as syscalls
    from ._fd import FdLike as FdLike
    from ._fd import OwnedFd as OwnedFd
    from ._version import __version__ as __version__
    from .errors import AccessDenied as AccessDenied
    from .errors import CallError as CallError
    from .errors import NoSuchProcess as NoSuchProcess
    from .errors import NsprimError as NsprimError
    from .errors import ThreadScopeError as ThreadScopeError
    from .errors import TimeoutExpired as TimeoutExpired
    from .errors import UnsupportedError as UnsupportedError
    from .flags import CloneFlags as CloneFlags
    from .flags import MountAttrFlags as MountAttrFlags
    from .flags import MountFlags as MountFlags
    from .flags import Propagation as Propagation
    from .flags import UmountFlags as UmountFlags
    from .idmap import IdMap as IdMap
    from .idmap import IdMapping as IdMapping
    from .namespace import Namespace as Namespace
    from .namespace import NsType as NsType
    from .namespace import namespaces as namespaces
    from .namespace import unpersist as unpersist
    from .process import DEVNULL as DEVNULL
    from .process import PIPE as PIPE
    from .process import STDOUT as STDOUT
    from .process import NsProcess as NsProcess
    from .process import PendingCall as PendingCall
    from .process import call as call
    from .process import call_in as call_in
    from .process import call_start as call_start
    from .process import enter as enter
    from .process import preload as preload
    from .process import run as run
    from .process import spawn as spawn
    from .process import spawn_in as spawn_in

# Everything loads on first use (PEP 562), __version__ included: `import nsprim`
# costs no more than the interpreter's start-up, and each command imports only
# what it touches (the process API and netlink ~30 ms, ctypes bindings and
# enums ~15 ms).
_LAZY = {
    "__version__": ("_version", "__version__"),
    "syscalls": ("syscalls", None),
    "FdLike": ("_fd", "FdLike"),
    "OwnedFd": ("_fd", "OwnedFd"),
    "AccessDenied": ("errors", "AccessDenied"),
    "CallError": ("errors", "CallError"),
    "NoSuchProcess": ("errors", "NoSuchProcess"),
    "NsprimError": ("errors", "NsprimError"),
    "ThreadScopeError": ("errors", "ThreadScopeError"),
    "TimeoutExpired": ("errors", "TimeoutExpired"),
    "UnsupportedError": ("errors", "UnsupportedError"),
    "CloneFlags": ("flags", "CloneFlags"),
    "MountAttrFlags": ("flags", "MountAttrFlags"),
    "MountFlags": ("flags", "MountFlags"),
    "Propagation": ("flags", "Propagation"),
    "UmountFlags": ("flags", "UmountFlags"),
    "Namespace": ("namespace", "Namespace"),
    "NsType": ("namespace", "NsType"),
    "namespaces": ("namespace", "namespaces"),
    "unpersist": ("namespace", "unpersist"),
    "net": ("net", None),
    "IdMap": ("idmap", "IdMap"),
    "IdMapping": ("idmap", "IdMapping"),
    "NsProcess": ("process", "NsProcess"),
    "call": ("process", "call"),
    "call_in": ("process", "call_in"),
    "call_start": ("process", "call_start"),
    "PendingCall": ("process", "PendingCall"),
    "enter": ("process", "enter"),
    "preload": ("process", "preload"),
    "run": ("process", "run"),
    "spawn": ("process", "spawn"),
    "spawn_in": ("process", "spawn_in"),
    "PIPE": ("process", "PIPE"),
    "DEVNULL": ("process", "DEVNULL"),
    "STDOUT": ("process", "STDOUT"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nsprim' has no attribute {name!r}") from None
    # __import__, not importlib.import_module: the importlib package imports
    # warnings, more bytecode than this facade saves (`from . import syscalls`
    # inside nsprim comes through here too).
    import sys

    full = f"{__name__}.{module}"
    __import__(full)
    mod = sys.modules[full]
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "AccessDenied",
    "CallError",
    "CloneFlags",
    "FdLike",
    "IdMap",
    "IdMapping",
    "MountAttrFlags",
    "MountFlags",
    "Namespace",
    "NoSuchProcess",
    "NsProcess",
    "NsType",
    "PendingCall",
    "NsprimError",
    "OwnedFd",
    "Propagation",
    "ThreadScopeError",
    "TimeoutExpired",
    "UmountFlags",
    "UnsupportedError",
    "call",
    "call_in",
    "call_start",
    "enter",
    "namespaces",
    "net",
    "preload",
    "run",
    "spawn",
    "spawn_in",
    "syscalls",
    "unpersist",
    "PIPE",
    "DEVNULL",
    "STDOUT",
]
