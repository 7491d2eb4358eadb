"""Report renderers: pure functions from results (and the run's facts) to text.

Layer: conformance reports. Each module has ``render(results, info=None) -> str``:
:mod:`.table` (terminal), :mod:`.json` (schema ``nsprim.conformance/1``, see
``SCHEMA.md``), :mod:`.junit`, :mod:`.tap` (TAP 13), :mod:`.markdown`,
:mod:`.html` (one self-contained page).
:mod:`.matrix` merges several JSON reports into a kernel matrix.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from ..outcome import CheckResult
from ._common import ReportInfo as ReportInfo
from ._common import summary as summary

__all__ = ["FORMATS", "ReportInfo", "render", "summary"]

#: Output formats of a single run, in ``--format`` order.
FORMATS = ("table", "json", "junit", "tap", "markdown", "html")


def render(fmt: str, results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render *results* in format *fmt* (one of :data:`FORMATS`).

    Raises:
        ValueError: unknown *fmt*.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    module = importlib.import_module(f"{__name__}.{fmt}")
    text: str = module.render(results, info)
    return text
