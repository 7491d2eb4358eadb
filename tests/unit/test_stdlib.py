"""nsprim._stdlib: the stand-ins behave as the standard modules they replace."""

from __future__ import annotations

import os
import signal as real_signal

import pytest

from nsprim._stdlib import environ_bytes, signal, suppress


def test_suppress_swallows_only_the_named_exceptions() -> None:
    with suppress(KeyError, OSError):
        raise FileNotFoundError("a subclass of OSError")
    with suppress(KeyError):
        {}["missing"]
    with pytest.raises(ValueError), suppress(KeyError):
        raise ValueError("not suppressed")
    with suppress(KeyError):
        pass  # no exception: nothing to swallow


def test_signal_is_the_c_module_with_the_same_numbers() -> None:
    for name in ("SIGKILL", "SIGTERM", "SIGINT", "SIG_BLOCK", "SIG_SETMASK", "NSIG", "SIG_DFL"):
        assert int(getattr(signal, name)) == int(getattr(real_signal, name))
    assert not hasattr(signal, "Signals")  # the enums are what it leaves out
    assert set(signal.valid_signals()) == {int(s) for s in real_signal.valid_signals()}


def test_environ_bytes_is_the_current_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSPRIM_STDLIB_PROBE", "one")
    env = environ_bytes()
    assert env[b"NSPRIM_STDLIB_PROBE"] == b"one"
    monkeypatch.delenv("NSPRIM_STDLIB_PROBE")
    assert b"NSPRIM_STDLIB_PROBE" not in environ_bytes()
    assert dict(environ_bytes()) == dict(os.environb)
