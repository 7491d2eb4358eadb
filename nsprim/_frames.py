"""The parent-child channel: frames, timeouts, and the child's errors.

Layer 2, private: standard library and :mod:`nsprim.errors` only.

The channel is a ``SOCK_STREAM`` socketpair (close-on-exec) carrying frames
of one tag byte and a 4-byte length: ``R`` (child ready for its id maps),
``G`` (parent: maps and offsets written, go on), ``P`` (a hop child's pid),
``S`` (setup done, the callable runs), ``E`` (an error, CPython's error-pipe
shape ``"ExcName:hexerrno:step:detail"``) and ``O`` (a pickled outcome). A
clean ``execve`` closes the child's end, so end-of-file means the program
is running.
"""

from __future__ import annotations

import os
import select
import struct
import time

from ._stdlib import suppress
from .errors import NsprimError, UnsupportedError, add_note, translate

# typing.TYPE_CHECKING without importing typing (it costs `nsprim run` more
# than its whole spawn).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = [
    "READY",
    "GO",
    "HOP",
    "ERROR",
    "OUTCOME",
    "STARTED",
    "HEADER",
    "Channel",
    "send_frame",
    "recv_frame",
    "encode_error",
    "decode_error",
    "poll_ms",
    "timeout_arg",
]

HEADER = struct.Struct("=cI")

#: Frame tags.
READY = b"R"
GO = b"G"
HOP = b"P"
ERROR = b"E"
OUTCOME = b"O"
STARTED = b"S"

#: waitpid(2) option: wait for every kind of child (<linux/wait.h> __WALL).


def send_frame(fd: int, tag: bytes, payload: bytes = b"") -> None:
    """Send one frame on the channel (blocking, complete)."""
    data = HEADER.pack(tag, len(payload)) + payload
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:  # pragma: no cover - PEP 475 retries already
            continue
        view = view[n:]


#: The longest single poll(2) wait, in milliseconds (its timeout is a C int).
_POLL_MAX_MS = 0x7FFFFFFF


def poll_ms(deadline: Optional[float], at_least: int = 1) -> int:
    """Milliseconds from now to *deadline* (``time.monotonic()``) for poll(2); -1 for None.

    Clamped to poll's C int, so that a huge or infinite timeout waits in
    slices (callers re-check the deadline) instead of overflowing.
    """
    if deadline is None:
        return -1
    left = (deadline - time.monotonic()) * 1000 + 1
    if left >= _POLL_MAX_MS:
        return _POLL_MAX_MS
    return max(at_least, int(left))


def timeout_arg(value: object, name: str = "timeout", negative_ok: bool = False) -> Optional[float]:
    """Validate a timeout in seconds: None, or an int/float (not bool, not NaN).

    ``math.inf`` and huge values mean "no limit" in practice; they never
    overflow, because every wait goes through :func:`poll_ms`.

    Raises:
        TypeError: not None, int or float.
        ValueError: NaN, or negative where *negative_ok* is False.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be None or seconds (int or float), got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond a double: as good as infinite
        seconds = float("inf") if value > 0 else float("-inf")
    if seconds != seconds:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if seconds < 0 and not negative_ok:
        raise ValueError(f"{name} must be None or seconds >= 0, got {value!r}")
    return seconds


def _read_exact(fd: int, n: int, deadline: Optional[float]) -> Optional[bytes]:
    """Read *n* bytes; None on EOF. Raises TimeoutError past *deadline* (monotonic)."""
    chunks: list[bytes] = []
    got = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while got < n:
        if deadline is not None and deadline <= time.monotonic():
            raise TimeoutError(f"no frame on fd {fd} before the deadline")
        if not poller.poll(poll_ms(deadline)):
            continue
        b = os.read(fd, n - got)
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv_frame(fd: int, deadline: Optional[float] = None) -> Optional[tuple[bytes, bytes]]:
    """Receive one frame ``(tag, payload)``, or None at end-of-file.

    Raises:
        TimeoutError: nothing complete arrived before *deadline* (``time.monotonic()``).
    """
    head = _read_exact(fd, HEADER.size, deadline)
    if head is None:
        return None
    tag, size = HEADER.unpack(head)
    payload = _read_exact(fd, size, deadline) if size else b""
    if payload is None:
        return None
    return tag, payload


def encode_error(exc: BaseException, step: str) -> bytes:
    """Encode *exc* from *step* as ``Name:hexerrno:step:detail`` (CPython's error pipe)."""
    err = getattr(exc, "errno", None)
    code = err if isinstance(err, int) else 0
    if isinstance(exc, OSError):
        detail = "" if exc.filename is None else os.fsdecode(exc.filename)
    else:
        detail = str(exc)
    text = f"{type(exc).__name__}:{code:x}:{step}:{detail}"
    return text.encode("utf-8", "surrogateescape")


# --- parent side ----------------------------------------------------------------------

_CLASSES: dict[str, type[BaseException]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "RuntimeError": RuntimeError,
}


def decode_error(payload: bytes, pid: int, when: str = "before exec") -> BaseException:
    """Rebuild the exception that the child reported as ``Name:hexerrno:step:detail``."""
    text = payload.decode("utf-8", "surrogateescape")
    parts = text.split(":", 3)
    while len(parts) < 4:
        parts.append("")
    name, hexerr, step, detail = parts
    try:
        code = int(hexerr, 16)
    except ValueError:
        code = 0
    exc: BaseException
    if code:
        os_err = OSError(code, f"{step}: {os.strerror(code)}", detail or None)
        exc = translate(os_err, step)
    elif name == "UnsupportedError":
        exc = UnsupportedError(step, msg=detail or f"{step} is not supported here")
    elif name in _CLASSES:
        exc = _CLASSES[name](detail)
    else:
        exc = NsprimError(f"{step}: {name}: {detail}" if detail else f"{step}: {name}")
    with suppress(AttributeError):
        exc.step = step  # type: ignore[attr-defined]
    add_note(exc, f"in child {pid} {when}")
    return exc


class Channel:
    """The parent's end of the channel: frames, with the child's pidfd watched too."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def _frame(self) -> Optional[tuple[bytes, bytes]]:
        size = HEADER.size
        if len(self.buf) < size:
            return None
        tag, n = HEADER.unpack(bytes(self.buf[:size]))
        if len(self.buf) < size + n:
            return None
        payload = bytes(self.buf[size : size + n])
        del self.buf[: size + n]
        return tag, payload

    def next(self, pidfd: int, deadline: Optional[float]) -> Optional[tuple[bytes, bytes]]:
        """Return the next frame, or None at EOF or once the child exited with nothing more.

        Raises:
            TimeoutError: *deadline* passed first.
        """
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        exited = False
        while True:
            frame = self._frame()
            if frame is not None:
                return frame
            if self.eof:
                return None
            if exited:
                # The child is gone; whatever it wrote is already buffered in
                # the socket. A copy of its end held elsewhere must not stall us.
                ready = select.select([self.fd], [], [], 0)[0]
                if not ready:
                    return None
                self._read()
                continue
            # A deadline already past still gets one look (0 ms): that is
            # how PendingCall.poll() asks "anything there yet?".
            late = deadline is not None and deadline <= time.monotonic()
            events = poller.poll(0 if late else poll_ms(deadline))
            for fd, _ in events:
                if fd == self.fd:
                    self._read()
                elif fd == pidfd:
                    exited = True
            if late and not events:
                raise TimeoutError

    def _read(self) -> None:
        data = os.read(self.fd, 65536)
        if data:
            self.buf += data
        else:
            self.eof = True
