"""nsprim: Linux namespaces from Python.

Public facade only: re-exports, ``__all__`` and ``__version__``; no logic here.
"""

from __future__ import annotations

from ._version import __version__ as __version__
from .errors import AccessDenied as AccessDenied
from .errors import CallError as CallError
from .errors import NoSuchProcess as NoSuchProcess
from .errors import NsprimError as NsprimError
from .errors import TimeoutExpired as TimeoutExpired
from .errors import UnsupportedError as UnsupportedError

__all__ = [
    "__version__",
    "AccessDenied",
    "CallError",
    "NoSuchProcess",
    "NsprimError",
    "TimeoutExpired",
    "UnsupportedError",
]
