"""Small helpers every check group uses.

Layer: conformance checks, private (not loaded as a group). Standard library only.
"""

from __future__ import annotations

import errno
from typing import Any, Callable

__all__ = ["errname", "attempt"]


def errname(err: OSError) -> str:
    """Return the symbolic errno of *err* ("EPERM"), or its number as text."""
    return errno.errorcode.get(err.errno or 0, str(err.errno))


def attempt(fn: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """Call ``fn(*args, **kwargs)``; return ``"ok"`` or the errno name it failed with.

    Checks compare these strings with ``ctx.expect_equal`` so that reports
    show "expected EPERM, got ok" rather than a traceback.
    """
    try:
        fn(*args, **kwargs)
    except OSError as err:
        return errname(err)
    return "ok"
