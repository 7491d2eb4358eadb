"""The conformance suite as pytest items (``pytest --nsprim-conformance``).

Layer: conformance, above the runner; imports pytest, and is imported only by
the pytest plugin (:mod:`nsprim.pytest_plugin`) when the option is given.

Each check becomes one item named ``<id>[<catalogue id>]`` under the
collector ``nsprim-conformance``, e.g.
``nsprim-conformance::uts.hostname_isolated[UTS-01]``, so ``-k UTS-01``,
``-k uts.`` and ``-k hostname`` select as expected. Every item runs its check
through :func:`nsprim.conformance.runner.run` in its own sandbox (the same
code path as ``nsprim conformance``). Verdicts map to pytest outcomes:

========  ==========================================
PASS      passed
FAIL      failed (the message, expected and actual)
SKIP      skipped, with the reason
ERROR     error (reported in the item's setup)
========  ==========================================

With ``--nsprim-controls`` each check also gets a ``<id>[<catalogue id>-control]``
item for its negative control, which runs the check without the isolating
namespace: it *passes* when the control FAILs, as it must, and fails when the
control does not FAIL (the check would then prove nothing).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import pytest

from .outcome import CheckResult, Outcome
from .registry import Check, load_checks
from .runner import run

__all__ = ["collect", "ConformanceSuite", "CheckItem"]

#: The collector's name, the first part of every item's node id.
SUITE = "nsprim-conformance"


class ConformanceSuite(pytest.Collector):
    """The suite: a collector whose children are the checks (and controls)."""

    controls = False

    def collect(self) -> list[pytest.Item]:
        """Return one item per check, each control right after its check when asked for."""
        items: list[pytest.Item] = []
        for check in load_checks():
            items.append(CheckItem.from_parent(self, check=check, control=False))
            if self.controls:
                items.append(CheckItem.from_parent(self, check=check, control=True))
        return items


class CheckItem(pytest.Item):
    """One conformance check (or its negative control) as a pytest item."""

    def __init__(self, *, check: Check, control: bool, **kwargs: Any) -> None:
        suffix = "-control" if control else ""
        super().__init__(name=f"{check.id}[{check.catalogue_id}{suffix}]", **kwargs)
        self.check = check
        self.control = control
        self.result: Optional[CheckResult] = None
        self.extra_keyword_matches.update({check.id, check.catalogue_id, check.type})
        self.user_properties.append(("catalogue_id", check.catalogue_id))
        self.user_properties.append(("level", check.level))

    def setup(self) -> None:
        # Run here, so that an ERROR verdict is a pytest error (a setup failure).
        outcome = run([self.check], controls=self.control, jobs=1, guard=False)
        self.result = outcome.results[0]
        status, message = self._verdict()
        if status is Outcome.ERROR:
            pytest.fail(f"{self._label()} ERROR: {message}", pytrace=False)

    def _verdict(self) -> tuple[Outcome, str]:
        r = self.result
        assert r is not None
        if self.control:
            assert r.control is not None
            return r.control, r.control_message
        return r.status, r.message

    def _label(self) -> str:
        what = "control of " if self.control else ""
        return f"{what}{self.check.id} ({self.check.catalogue_id}, {self.check.level})"

    def runtest(self) -> None:
        status, message = self._verdict()
        if status is Outcome.SKIP:
            raise pytest.skip.Exception(message or "skipped", _use_item_location=True)
        r = self.result
        assert r is not None
        if self.control:
            if status is not Outcome.FAIL:
                pytest.fail(
                    f"{self._label()}: the negative control {status.value}ed but must FAIL; "
                    f"the check does not prove its guarantee ({message or 'no message'})",
                    pytrace=False,
                )
            return
        if status is Outcome.FAIL:
            lines = [f"{self._label()} FAIL: {self.check.title}", message]
            if r.expected is not None:
                lines.append(f"expected: {r.expected}")
            if r.actual is not None:
                lines.append(f"actual:   {r.actual}")
            pytest.fail("\n".join(line for line in lines if line), pytrace=False)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, Optional[int], str]:
        # The headline of a failure; not a suffix of the node id, so that -v
        # shows the node id as it is (pytest would turn the id's "." into "::").
        head = f"{self.check.catalogue_id} {self.check.id}" + (" (control)" if self.control else "")
        code = getattr(self.check.func, "__code__", None)
        if code is None:
            return self.path, None, head
        return code.co_filename, code.co_firstlineno - 1, head


def collect(session: pytest.Session, *, controls: bool = False) -> list[pytest.Item]:
    """Build the suite's items under a :class:`ConformanceSuite` child of *session*.

    Args:
        session: the pytest session the items belong to.
        controls: also build the negative controls' items (as ``--nsprim-controls``).
    """
    suite = ConformanceSuite.from_parent(session, name=SUITE, nodeid=SUITE)
    suite.controls = controls
    return suite.collect()
