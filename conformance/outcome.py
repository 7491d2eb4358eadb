"""Outcomes of a conformance check: the four verdicts, the exceptions that select them, the result.

Layer: conformance. Imports only the standard library, so reports, the
registry and the runner can all depend on it.

The four outcomes follow LTP (TPASS/TFAIL/TCONF/TBROK) and the kernel's
``pidfd.h`` (PASS/FAIL/SKIP/ERROR); SKIP and ERROR are never folded into FAIL
(a check that cannot run is not a broken guarantee, and a broken harness is neither):

* PASS: the check function returned.
* FAIL: it raised :class:`Fail`, meaning the guarantee is broken.
* SKIP: it raised :class:`Skip`, or the runner found its needs unmet.
* ERROR: anything else: an unexpected exception, a timeout, a crashed child,
  a failed cleanup, or a leak the host guard saw.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Outcome", "Fail", "Skip", "CheckResult", "render_value", "skipped_by_cause"]


class Outcome(str, enum.Enum):
    """The verdict of one check run (or of its negative control)."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


def render_value(value: Any) -> str | None:
    """Render an expected/actual value for a report: ``None`` stays ``None``, str stays as is.

    Everything else becomes its ``repr``, so ``b"x"`` and ``"x"`` stay distinct
    and a report can show an errno name or a tuple without a schema change.
    """
    if value is None or isinstance(value, str):
        return value
    return repr(value)


class Fail(Exception):
    """The guarantee under test is broken: the check's verdict is FAIL.

    Raise it directly, or through ``ctx.expect``/``ctx.expect_equal``.

    Args:
        msg: what was wrong, in one sentence ("parent sees the child's hostname").
        expected: what the guarantee says should have been observed.
        actual: what was observed.
    """

    def __init__(self, msg: str, expected: Any = None, actual: Any = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.expected = render_value(expected)
        self.actual = render_value(actual)

    def __str__(self) -> str:
        text = self.msg
        if self.expected is not None or self.actual is not None:
            text += f" (expected {self.expected}, got {self.actual})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Fail crosses process boundaries (ctx.in_child re-raises it in the check).
        return (type(self), (self.msg, self.expected, self.actual))


class Skip(Exception):
    """The check cannot run here (privilege, kernel config, missing feature): SKIP.

    Args:
        reason: why, naming the missing thing ("needs CONFIG_TIME_NS").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason,))


@dataclass
class CheckResult:
    """The result of one check, with the verdict of its negative control when one ran.

    Attributes:
        id: the check id, ``<nstype>.<name>`` (``"uts.hostname_isolated"``).
        catalogue_id: the catalogue id (``"UTS-01"``; ``nsprim conformance --list``).
        type: the namespace type, the id's prefix (``"uts"``); ``"guard"`` for host-guard results.
        title: the guarantee in one sentence (the first docstring line).
        level: ``"MUST"`` or ``"SHOULD"``.
        status: the verdict of the check itself.
        control: the verdict of the negative control, ``None`` when none ran.
        message: why it failed, skipped or errored ("" on PASS).
        expected: for FAIL, what should have been observed.
        actual: for FAIL, what was observed.
        duration_s: wall time of the check run (not the control), in seconds.
        anchors: where a peer suite or a man page states the guarantee.
        detail: for people debugging the suite: where an error was raised, the
            errno a probe saw ("" when there is nothing to add). Reasons in
            ``message`` are sentences; locations live here.
        control_message: the control run's message (diagnostics only, not in the JSON schema).
    """

    id: str
    catalogue_id: str
    type: str
    title: str
    level: str
    status: Outcome
    control: Outcome | None = None
    message: str = ""
    expected: str | None = None
    actual: str | None = None
    duration_s: float = 0.0
    anchors: tuple[str, ...] = ()
    detail: str = ""
    control_message: str = field(default="", compare=False)

    @property
    def discriminating(self) -> bool | None:
        """Whether the control run FAILed as it must (``None`` when no control ran).

        A check that PASSes while its control does not FAIL proves nothing: the
        isolation it claims to test is not what made it pass.
        """
        if self.control is None:
            return None
        return self.control is Outcome.FAIL

    @property
    def problem(self) -> bool:
        """Whether this result makes the run unsuccessful (exit status 1).

        True for FAIL and ERROR, and for a PASS whose control ran and did not FAIL.
        """
        if self.status in (Outcome.FAIL, Outcome.ERROR):
            return True
        return self.status is Outcome.PASS and self.discriminating is False

    def to_dict(self) -> dict[str, Any]:
        """Return the ``results[]`` entry of the JSON schema ``nsprim.conformance/1``."""
        data = asdict(self)
        del data["control_message"]
        data["status"] = self.status.value
        data["control"] = None if self.control is None else self.control.value
        data["anchors"] = list(self.anchors)
        data["duration_s"] = round(self.duration_s, 6)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Rebuild a result from :meth:`to_dict` output (or a JSON report entry)."""
        control = data.get("control")
        return cls(
            id=str(data["id"]),
            catalogue_id=str(data["catalogue_id"]),
            type=str(data["type"]),
            title=str(data["title"]),
            level=str(data["level"]),
            status=Outcome(data["status"]),
            control=None if control is None else Outcome(control),
            message=str(data.get("message", "")),
            expected=data.get("expected"),
            actual=data.get("actual"),
            duration_s=float(data.get("duration_s", 0.0)),
            anchors=tuple(data.get("anchors", ())),
            detail=str(data.get("detail", "")),
            control_message=str(data.get("control_message", "")),
        )


def skipped_by_cause(results: Sequence[CheckResult]) -> list[tuple[str, list[CheckResult]]]:
    """Group the SKIPped results by their reason, the largest group first."""
    groups: dict[str, list[CheckResult]] = {}
    for r in results:
        if r.status is Outcome.SKIP:
            groups.setdefault(r.message, []).append(r)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))
