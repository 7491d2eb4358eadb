"""Render results as JSON, schema ``nsprim.conformance/1``, and validate such documents.

Layer: conformance reports. Standard library, :mod:`nsprim` (the version) and
the conformance outcome module. The schema is documented in ``SCHEMA.md``
next to this file; :func:`validate` is its executable form.
"""

from __future__ import annotations

import json as _json
from collections.abc import Mapping, Sequence
from typing import Any

import nsprim

from ..outcome import CheckResult, Outcome
from ._common import ReportInfo, summary

__all__ = ["SCHEMA", "render", "to_document", "validate", "results_of"]

SCHEMA = "nsprim.conformance/1"

_STATUSES = {o.value for o in Outcome}
_ENV_KEYS: dict[str, type] = {
    "kernel": str,
    "arch": str,
    "distribution": str,
    "uid": int,
    "privileges": str,
    "python": str,
}
_RESULT_KEYS: dict[str, Any] = {
    "id": str,
    "catalogue_id": str,
    "type": str,
    "title": str,
    "level": str,
    "status": str,
    "control": (str, type(None)),
    "message": str,
    "expected": (str, type(None)),
    "actual": (str, type(None)),
    "duration_s": (int, float),
    "anchors": list,
}
# Added later (absent from older reports, which stay valid).
_OPTIONAL_ENV_KEYS: dict[str, type] = {"sandbox": dict, "probed": dict}
_OPTIONAL_RESULT_KEYS: dict[str, Any] = {"detail": str}


def to_document(results: Sequence[CheckResult], info: ReportInfo | None = None) -> dict[str, Any]:
    """Return the report as a JSON-ready dict (keys in schema order)."""
    info = info if info is not None else ReportInfo()
    env = {key: info.environment.get(key) for key in _ENV_KEYS}
    env.update({k: info.environment[k] for k in _OPTIONAL_ENV_KEYS if k in info.environment})
    return {
        "schema": SCHEMA,
        "nsprim_version": nsprim.__version__,
        "environment": env,
        "started": info.started,
        "duration_s": round(info.duration_s, 3),
        "summary": summary(results),
        "results": [r.to_dict() for r in results],
    }


def render(results: Sequence[CheckResult], info: ReportInfo | None = None) -> str:
    """Render *results* as an indented JSON document ending in a newline."""
    return _json.dumps(to_document(results, info), indent=2) + "\n"


def _type_problem(where: str, value: Any, want: Any) -> str | None:
    kinds = want if isinstance(want, tuple) else (want,)
    # bool is an int subclass; JSON true is never a valid uid or duration here.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        return f"{where} has the wrong type: {value!r}"
    return None


def validate(doc: Any) -> list[str]:
    """Return every way *doc* departs from schema ``nsprim.conformance/1`` (empty: valid)."""
    if not isinstance(doc, Mapping):
        return [f"the document must be an object, got {type(doc).__name__}"]
    problems: list[str] = []
    want = {
        "schema",
        "nsprim_version",
        "environment",
        "started",
        "duration_s",
        "summary",
        "results",
    }
    if set(doc) != want:
        problems.append(f"top-level keys must be {sorted(want)}, got {sorted(doc)}")
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA!r}, got {doc.get('schema')!r}")
    for key, kind in (("nsprim_version", str), ("started", str), ("duration_s", (int, float))):
        if key in doc and (p := _type_problem(key, doc[key], kind)):
            problems.append(p)
    env = doc.get("environment")
    if not isinstance(env, Mapping) or not set(_ENV_KEYS) <= set(env) <= set(_ENV_KEYS) | set(
        _OPTIONAL_ENV_KEYS
    ):
        problems.append(
            f"environment must have the keys {sorted(_ENV_KEYS)} "
            f"(and optionally {sorted(_OPTIONAL_ENV_KEYS)})"
        )
    else:
        for key, env_kind in {**_ENV_KEYS, **_OPTIONAL_ENV_KEYS}.items():
            if key in env and (p := _type_problem(f"environment.{key}", env[key], env_kind)):
                problems.append(p)
        problems += _probed_problems(env.get("probed", {}))
        if env["privileges"] not in ("root", "user"):
            problems.append(f"environment.privileges must be root|user, got {env['privileges']!r}")
    results = doc.get("results")
    if not isinstance(results, list):
        return [*problems, "results must be a list"]
    counts = {s: 0 for s in sorted(_STATUSES)}
    for i, r in enumerate(results):
        if not isinstance(r, Mapping) or not set(_RESULT_KEYS) <= set(r) <= set(_RESULT_KEYS) | set(
            _OPTIONAL_RESULT_KEYS
        ):
            problems.append(
                f"results[{i}] must have the keys {sorted(_RESULT_KEYS)} "
                f"(and optionally {sorted(_OPTIONAL_RESULT_KEYS)})"
            )
            continue
        for key, kind in {**_RESULT_KEYS, **_OPTIONAL_RESULT_KEYS}.items():
            if key in r and (p := _type_problem(f"results[{i}].{key}", r[key], kind)):
                problems.append(p)
        if r["status"] in _STATUSES:
            counts[r["status"]] += 1
        else:
            problems.append(f"results[{i}].status must be one of {sorted(_STATUSES)}")
        if r["control"] is not None and r["control"] not in _STATUSES:
            problems.append(f"results[{i}].control must be null or one of {sorted(_STATUSES)}")
        if r["level"] not in ("MUST", "SHOULD"):
            problems.append(f"results[{i}].level must be MUST|SHOULD, got {r['level']!r}")
        if not all(isinstance(a, str) for a in r["anchors"]):
            problems.append(f"results[{i}].anchors must be strings")
    if doc.get("summary") != {s: counts[s] for s in ("PASS", "FAIL", "SKIP", "ERROR")}:
        problems.append(f"summary {doc.get('summary')!r} does not match the results ({counts})")
    return problems


_PROBE_STATES = ("available", "refused", "absent", "broken")


def _probed_problems(probed: Any) -> list[str]:
    if not isinstance(probed, Mapping):
        return []  # reported as a type problem above
    problems = []
    for op, a in probed.items():
        if (
            not isinstance(a, Mapping)
            or set(a) != {"state", "cause", "detail"}
            or a["state"] not in _PROBE_STATES
            or not all(isinstance(v, str) for v in a.values())
        ):
            problems.append(
                f"environment.probed[{op!r}] must be {{state: {'|'.join(_PROBE_STATES)}, "
                "cause: str, detail: str}"
            )
    return problems


def results_of(doc: Mapping[str, Any]) -> list[CheckResult]:
    """Rebuild the results of a parsed report."""
    return [CheckResult.from_dict(dict(r)) for r in doc["results"]]
