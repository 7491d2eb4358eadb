"""Cheap stand-ins for two standard modules on the start-up path of ``nsprim run``.

Layer 0, private: the standard library only.

``contextlib`` (about 0.35 ms to import) is needed here for ``suppress``
alone, and ``signal`` (about 0.4 ms: it builds three IntEnums from the C
module's constants) for constants and functions its C half, ``_signal``,
has too. Together they were a twentieth of a whole ``nsprim run -u --
/bin/true``. What differs: ``signal`` here returns plain ints where the
module returns ``Signals``/``Handlers`` members (equal as ints), and has no
``Signals`` enum; code that wants names imports the real module lazily.

:func:`environ_bytes` is the environment as the plain dict os.environb
wraps, which posix_spawn and execve read without a Python call per variable.
"""

from __future__ import annotations

import os

# typing.TYPE_CHECKING without importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as signal
    from collections.abc import Mapping
    from types import TracebackType
    from typing import Optional
else:
    try:
        import _signal as signal
    except ImportError:  # pragma: no cover - an interpreter without the C module
        import signal

__all__ = ["environ_bytes", "signal", "suppress"]


class suppress:
    """``contextlib.suppress``: leave the block quietly on any of *exceptions*."""

    __slots__ = ("_exceptions",)

    def __init__(self, *exceptions: type[BaseException]) -> None:
        self._exceptions = exceptions

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        return exc_type is not None and issubclass(exc_type, self._exceptions)


def environ_bytes() -> Mapping[bytes, bytes]:
    """``os.environb`` as the plain dict behind it, to hand to posix_spawn or execve.

    os.posix_spawn and os.execve read a mapping through its Python-level
    keys() and __getitem__: for os.environb's wrapper that is a Python call
    per variable (about 30 microseconds a spawn with 35 variables), and in a
    forked child every page those calls touch is copied. CPython keeps the
    environment as a dict of bytes in ``_data``, shared by os.environ and
    os.environb and kept current by both, so it is the same content.
    Falls back to os.environb where there is no such dict.
    """
    data = getattr(os.environb, "_data", None)
    return data if type(data) is dict else os.environb
