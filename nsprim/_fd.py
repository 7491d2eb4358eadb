"""File descriptors: the ``FdLike`` convention and an owned, close-once fd.

Layer 1: standard library only. Anything in nsprim that takes an fd accepts an
``int`` or any object with ``fileno()`` (CPython's ``os.setns``, trio), and
rejects ``bool`` and negative numbers with a ``ValueError``/``TypeError`` that
names the parameter.
"""

from __future__ import annotations

import os

from ._stdlib import suppress

__all__ = ["HasFileno", "FdLike", "fd_of", "OwnedFd"]

# typing.TYPE_CHECKING without importing typing: every nsprim command imports
# this module, and typing (with the re it imports) costs more than `nsprim
# run`'s whole spawn. Type checkers see the Protocol; at run time HasFileno
# answers isinstance() as typing's runtime_checkable Protocol does, and the
# FdLike alias is built on first use.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Optional, Protocol, Union, runtime_checkable

    @runtime_checkable
    class HasFileno(Protocol):
        """Anything with a ``fileno()`` method (files, sockets, :class:`OwnedFd`)."""

        def fileno(self) -> int: ...

    FdLike = Union[int, HasFileno]
else:

    class _HasFilenoMeta(type):
        def __instancecheck__(cls, obj):
            # typing's check for a protocol method: present and not None.
            return getattr(obj, "fileno", None) is not None

    class HasFileno(metaclass=_HasFilenoMeta):
        """Anything with a ``fileno()`` method (files, sockets, :class:`OwnedFd`)."""

    def __getattr__(name):
        if name == "FdLike":
            from typing import Union

            alias = globals()["FdLike"] = Union[int, HasFileno]
            return alias
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fd_of(obj: object, name: str = "fd") -> int:
    """Return the integer fd of *obj*, validating it.

    Raises:
        TypeError: *obj* is neither an int nor has ``fileno()``.
        ValueError: the fd is negative.
    """
    if isinstance(obj, bool):
        raise TypeError(f"{name} must be an int or have fileno(), got {obj!r}")
    if isinstance(obj, int):
        fd = obj
    elif isinstance(obj, HasFileno):
        fd = obj.fileno()
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise TypeError(f"{name}.fileno() must return an int, got {fd!r}")
    else:
        raise TypeError(f"{name} must be an int or have fileno(), got {type(obj).__name__} {obj!r}")
    if fd < 0:
        raise ValueError(f"{name} must be a non-negative file descriptor, got {fd}")
    if fd > 0x7FFFFFFF:
        raise ValueError(f"{name} must fit a C int, got {fd}")
    return fd


class OwnedFd:
    """A file descriptor that this object owns and closes exactly once.

    Usable as a context manager and anywhere an ``FdLike`` is accepted.
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd: Optional[int] = fd

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd is None

    def fileno(self) -> int:
        """Return the fd number.

        Raises:
            ValueError: the fd was closed.
        """
        if self._fd is None:
            raise ValueError("I/O operation on closed fd")
        return self._fd

    def detach(self) -> int:
        """Give up ownership and return the fd number (the caller closes it)."""
        fd = self.fileno()
        self._fd = None
        return fd

    def close(self) -> None:
        """Close the fd; further calls do nothing."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> OwnedFd:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort, like io.FileIO: never leak an fd because a caller forgot.
        with suppress(OSError):
            self.close()

    def __repr__(self) -> str:
        return f"OwnedFd({self._fd})" if self._fd is not None else "OwnedFd(closed)"
