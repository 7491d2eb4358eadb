"""The single registry of conformance checks, and the ``@check`` decorator that fills it.

Layer: conformance. Imports the standard library and the conformance modules
:mod:`.outcome` and :mod:`._context`; the check modules import this one.

A check is a function ``fn(ctx: Context) -> None`` whose docstring opens with
the guarantee in one sentence of plain text (it is the title every report
shows), registered with its catalogue id (``UTS-01``: what
``nsprim conformance --list`` prints), level, anchors (where a peer suite or
a man page states the guarantee) and declared needs::

    @check("uts.hostname_isolated", catalogue="UTS-01", level="MUST",
           anchors=("LTP utsname03", "uts_namespaces(7)"),
           needs=Needs(min_kernel=(3, 8)))
    def hostname_isolated(ctx: Context) -> None:
        \"\"\"A hostname set in a new UTS namespace is seen there, not by the parent.\"\"\"
        flags = ctx.isolate(CLONE_NEWUTS)
        ...

Ids are ``<nstype>.<name>``; a second registration of an id from a different
function raises ``ValueError`` at import. :func:`load_checks` imports every
module in :mod:`nsprim.conformance.checks` (names starting with ``_`` are
skipped) and returns the registered checks. Tests may build their own
:class:`Registry` and pass its checks to the runner explicitly.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from ._context import ChildHandle, Context
from .outcome import CheckResult, Fail, Outcome, Skip

__all__ = [
    "Check",
    "CheckFunc",
    "ChildHandle",
    "Context",
    "Needs",
    "Probe",
    "Registry",
    "REGISTRY",
    "check",
    "load_checks",
    # re-exported for check modules' convenience
    "CheckResult",
    "Fail",
    "Outcome",
    "Skip",
]

#: A probe asks the kernel whether something works here: ``None`` if it does, else why not.
Probe = Callable[[], Optional[str]]
#: A check function.
CheckFunc = Callable[[Context], None]

LEVELS = ("MUST", "SHOULD")
_ID_RE = re.compile(r"^[a-z][a-z0-9]*\.[a-z0-9_]+$")
#: reStructuredText markup that must not reach a report's title: ``literal``,
#: :role:`x`, `interpreted`.
_MARKUP_RE = re.compile(r"``|:[a-z]+:`|`[^`]+`")


@dataclass(frozen=True)
class Needs:
    """What a check needs from the environment; the runner evaluates it first (unmet ⇒ SKIP).

    Attributes:
        root: uid 0 with CAP_SYS_ADMIN in the *initial* user namespace (SKIP under ``--as-user``).
        userns: the ability to create user namespaces (probed by trying, in a throwaway child).
        min_kernel: the oldest ``(major, minor)`` kernel that has the feature.
        kconfig: ``CONFIG_*`` option names that must be ``y`` or ``m`` (the ``CONFIG_``
            prefix is optional); an unreadable kernel config is not a reason to skip.
        probes: zero-argument callables returning ``None`` (ok) or a skip reason; they run
            inside the check's outer sandbox, so they may create things to see if that works.
        ops: operations the check relies on beyond creating its own namespace type
            (``"setns"``, ``"sethostname"``, ``"mount.proc"``, ``"clone3"``...). The runner
            tries each once per run by doing it; one refused by policy (seccomp, an LSM, a
            limit, a capability) makes the check a SKIP naming that cause, so an expected
            errno can never come from a filter instead of the kernel rule under test.
    """

    root: bool = False
    userns: bool = False
    min_kernel: tuple[int, int] = (0, 0)
    kconfig: tuple[str, ...] = ()
    probes: tuple[Probe, ...] = ()
    ops: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.min_kernel) != 2 or not all(isinstance(v, int) for v in self.min_kernel):
            raise ValueError(f"min_kernel must be a (major, minor) tuple, got {self.min_kernel!r}")
        if isinstance(self.kconfig, str):
            raise TypeError(f"kconfig must be a tuple of option names, got {self.kconfig!r}")
        for probe in self.probes:
            if not callable(probe):
                raise TypeError(f"probes must be callables, got {probe!r}")
        if isinstance(self.ops, str) or not all(isinstance(op, str) and op for op in self.ops):
            raise TypeError(f"ops must be a tuple of operation names, got {self.ops!r}")


@dataclass(frozen=True)
class Check:
    """One registered check: the function plus everything reports need about it.

    Attributes:
        id: ``<nstype>.<name>``.
        catalogue_id: the catalogue id, e.g. ``"UTS-01"``.
        level: ``"MUST"`` or ``"SHOULD"``.
        title: the guarantee: the docstring's first line.
        description: the rest of the docstring (how it is tested).
        anchors: where a peer suite or man page states the guarantee.
        needs: see :class:`Needs`.
        timeout: seconds one run (check or control) may take before it is killed (ERROR).
        serial: run alone, never in parallel with other checks (shared host state).
        func: the check function.
    """

    id: str
    catalogue_id: str
    level: str
    title: str
    description: str
    anchors: tuple[str, ...]
    needs: Needs
    timeout: float
    serial: bool
    func: CheckFunc

    @property
    def type(self) -> str:
        """The namespace type: the id's prefix (``"uts"``)."""
        return self.id.split(".", 1)[0]

    def matches(self, pattern: str) -> bool:
        """Whether fnmatch *pattern* matches the id or the catalogue id."""
        return fnmatch.fnmatchcase(self.id, pattern) or fnmatch.fnmatchcase(
            self.catalogue_id, pattern
        )

    def result(self, status: Outcome, message: str = "", **fields: object) -> CheckResult:
        """Build a :class:`CheckResult` for this check."""
        return CheckResult(
            id=self.id,
            catalogue_id=self.catalogue_id,
            type=self.type,
            title=self.title,
            level=self.level,
            status=status,
            message=message,
            anchors=self.anchors,
            **fields,  # type: ignore[arg-type]
        )


class Registry:
    """An ordered set of checks keyed by id; the module-level :data:`REGISTRY` is the real one."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def __len__(self) -> int:
        return len(self._checks)

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def add(self, new: Check) -> None:
        """Register *new*.

        Raises:
            ValueError: another function already registered the same id.
        """
        old = self._checks.get(new.id)
        if old is not None and _origin(old.func) != _origin(new.func):
            raise ValueError(
                f"duplicate conformance check id {new.id!r}: "
                f"{_origin(new.func)} and {_origin(old.func)}"
            )
        # Same origin: the module was imported again (importlib.reload, or
        # once as conformance.* and once as nsprim.conformance.*); keep one.
        self._checks[new.id] = new

    def get(self, check_id: str) -> Check:
        """Return the check with id *check_id* (``KeyError`` if none)."""
        return self._checks[check_id]

    def checks(self) -> list[Check]:
        """Return every check, in registration order."""
        return list(self._checks.values())

    def select(self, only: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Check]:
        """Return the checks matching any *only* pattern (all if empty) and no *exclude* pattern."""
        return select(self.checks(), only, exclude)

    def check(
        self,
        id: str,
        *,
        catalogue: str,
        level: str = "MUST",
        anchors: Iterable[str] = (),
        needs: Needs | None = None,
        timeout: float = 10.0,
        serial: bool = False,
    ) -> Callable[[CheckFunc], CheckFunc]:
        """Return a decorator registering a check function in this registry.

        Args:
            id: ``<nstype>.<name>``, e.g. ``"uts.hostname_isolated"``.
            catalogue: the catalogue id, ``<TYPE>-<NN>``, e.g. ``"UTS-01"``.
            level: ``"MUST"`` or ``"SHOULD"``.
            anchors: where the guarantee is stated (``"LTP utsname03"``, ``"uts_namespaces(7)"``).
            needs: what the environment must provide, see :class:`Needs`.
            timeout: seconds before the run is killed and reported as ERROR.
            serial: run alone (the check touches state shared between checks).

        Raises:
            ValueError: a malformed id, level or timeout, a missing docstring, a title with
                markup, or a duplicate id.
        """
        if not isinstance(id, str) or not _ID_RE.match(id):
            raise ValueError(f"check id must look like '<nstype>.<name>', got {id!r}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if not catalogue or not isinstance(catalogue, str):
            raise ValueError(
                f"catalogue must be a catalogue id such as 'UTS-01', got {catalogue!r}"
            )
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if isinstance(anchors, str):
            raise TypeError(f"anchors must be a tuple of strings, got {anchors!r}")
        anchors = tuple(anchors)

        def decorate(fn: CheckFunc) -> CheckFunc:
            doc = inspect.getdoc(fn) or ""
            title, _, rest = doc.partition("\n")
            if not title.strip():
                raise ValueError(
                    f"check {id!r}: the docstring's first line must state the guarantee"
                )
            if _MARKUP_RE.search(title):
                raise ValueError(
                    f"check {id!r}: the title (the docstring's first line) is shown as plain "
                    f"text in every report; drop the markup in {title.strip()!r}"
                )
            self.add(
                Check(
                    id=id,
                    catalogue_id=catalogue,
                    level=level,
                    title=title.strip(),
                    description=rest.strip(),
                    anchors=anchors,
                    needs=needs if needs is not None else Needs(),
                    timeout=float(timeout),
                    serial=serial,
                    func=fn,
                )
            )
            return fn

        return decorate


def _origin(fn: CheckFunc) -> tuple[str, str]:
    code = getattr(fn, "__code__", None)
    filename = code.co_filename if code is not None else getattr(fn, "__module__", "?")
    return (filename, getattr(fn, "__qualname__", repr(fn)))


def select(
    checks: Iterable[Check], only: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Check]:
    """Filter *checks* with fnmatch patterns on id or catalogue id (*only* empty ⇒ keep all)."""
    return [
        c
        for c in checks
        if (not only or any(c.matches(p) for p in only)) and not any(c.matches(p) for p in exclude)
    ]


#: The registry that ``@check`` fills and the CLI runs.
REGISTRY = Registry()


#: Register a check function in :data:`REGISTRY`; see :meth:`Registry.check`.
check = REGISTRY.check


def load_checks(package: str = "nsprim.conformance.checks") -> list[Check]:
    """Import every public module of *package* (each registers its checks) and return them all.

    Raises:
        ValueError: two modules register the same id.
    """
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
    return REGISTRY.checks()
