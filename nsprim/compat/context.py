"""What one ``probe_all`` run shares: the facts, the timeout and the operations.

Layer 2, private to :mod:`nsprim.compat`.
"""

from __future__ import annotations

from typing import Optional

from .engine import OperationResult, operations
from .facts import Facts, gather

__all__ = ["Ctx"]


class Ctx:
    """Facts gathered once, and the operations tried once, for one run of the probes."""

    def __init__(self, timeout: float, facts: Optional[Facts] = None) -> None:
        self.timeout = timeout
        self.facts = facts if facts is not None else gather()
        self._ops: dict[bool, dict[str, OperationResult]] = {}

    @property
    def root(self) -> bool:
        """Whether this process holds CAP_SYS_ADMIN."""
        return self.facts.root

    def ops(self, rootless: bool) -> dict[str, OperationResult]:
        """Every operation, directly (``False``) or inside a new user namespace (``True``)."""
        if rootless not in self._ops:
            self._ops[rootless] = operations(
                rootless=rootless, timeout=self.timeout, facts=self.facts
            )
        return self._ops[rootless]
