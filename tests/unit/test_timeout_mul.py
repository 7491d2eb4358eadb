"""--timeout-mul / $NSPRIM_TIMEOUT_MUL: check timeouts scaled for slow machines (LTP_TIMEOUT_MUL).

Under TCG on one vCPU a check's 5 s budget is not enough, and a timeout is an ERROR (a
fault of the suite), so the VM payloads run with a multiplier of 4.
"""

from __future__ import annotations

import pytest
from nsprim.conformance import cli, runner


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 1.0), ("4", 4.0), ("1.5", 1.5), ("0.5", 1.0), ("-3", 1.0), ("nan", 1.0),
     ("inf", 1.0), ("x", 1.0)],
)  # fmt: skip
def test_env_multiplier_is_read_and_never_shrinks(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float
) -> None:
    if value is None:
        monkeypatch.delenv(runner.TIMEOUT_MUL_ENV, raising=False)
    else:
        monkeypatch.setenv(runner.TIMEOUT_MUL_ENV, value)
    assert runner.timeout_mul() == expected


@pytest.mark.parametrize("bad", ["0.5", "0", "nan", "-1"])
def test_cli_refuses_a_multiplier_below_one(
    bad: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(runner.TIMEOUT_MUL_ENV, raising=False)
    assert cli.main(["--timeout-mul", bad, "--only", "uts.hostname_isolated"]) == 2
    err = capsys.readouterr().err
    assert "--timeout-mul must be at least 1" in err
    assert runner.TIMEOUT_MUL_ENV not in __import__("os").environ
