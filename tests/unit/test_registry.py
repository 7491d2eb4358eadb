"""The check registry, Needs and the Context verdict helpers (no sandbox involved)."""

from __future__ import annotations

import pickle
import re

import pytest
from nsprim.conformance import _needs
from nsprim.conformance.outcome import CheckResult, Fail, Outcome, Skip
from nsprim.conformance.registry import (
    REGISTRY,
    Context,
    Needs,
    Registry,
    check,
    load_checks,
    select,
)


def _doc(ctx: Context) -> None:
    """Something holds.

    How it is tested.
    """


def test_check_registers_metadata_from_decorator_and_docstring() -> None:
    reg = Registry()
    reg.check("uts.thing", catalogue="UTS-99", level="SHOULD", anchors=("LTP x",), timeout=3)(_doc)
    (c,) = reg.checks()
    assert (c.id, c.type, c.catalogue_id, c.level) == ("uts.thing", "uts", "UTS-99", "SHOULD")
    assert (c.title, c.description) == ("Something holds.", "How it is tested.")
    assert c.anchors == ("LTP x",)
    assert c.timeout == 3.0 and c.serial is False and c.needs == Needs()
    assert c.func is _doc


def test_check_rejects_duplicate_id_from_another_function() -> None:
    reg = Registry()
    reg.check("uts.dup", catalogue="UTS-01")(_doc)

    def other(ctx: Context) -> None:
        """Another thing."""

    with pytest.raises(ValueError, match=r"duplicate conformance check id 'uts\.dup'"):
        reg.check("uts.dup", catalogue="UTS-02")(other)
    reg.check("uts.dup", catalogue="UTS-01")(_doc)  # the same function again: a re-import
    assert len(reg) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "hostname"}, "check id must look like '<nstype>.<name>', got 'hostname'"),
        ({"id": "UTS.x"}, "check id must look like"),
        ({"level": "MAY"}, "level must be one of ('MUST', 'SHOULD'), got 'MAY'"),
        ({"catalogue": ""}, "catalogue must be a catalogue id such as 'UTS-01'"),
        ({"timeout": 0}, "timeout must be positive, got 0"),
    ],
)
def test_check_validates_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"id": "uts.ok", "catalogue": "UTS-01", **kwargs}
    check_id = args.pop("id")
    with pytest.raises(ValueError, match=re.escape(message)):
        Registry().check(check_id, **args)(_doc)  # type: ignore[arg-type]


def test_check_requires_docstring_title() -> None:
    def undocumented(ctx: Context) -> None:
        pass

    with pytest.raises(ValueError, match="docstring's first line must state the guarantee"):
        Registry().check("uts.nodoc", catalogue="UTS-01")(undocumented)


@pytest.mark.parametrize(
    "title", ["Paths read ``/..`` outside the root.", "See :func:`x` here.", "A `role` here."]
)
def test_check_refuses_markup_in_the_title(title: str) -> None:
    def marked(ctx: Context) -> None:
        pass

    marked.__doc__ = f"{title}\n\n    ``markup`` in the description is fine.\n    "
    with pytest.raises(ValueError, match="shown as plain text in every report"):
        Registry().check("uts.marked", catalogue="UTS-01")(marked)


def test_needs_validates() -> None:
    with pytest.raises(ValueError, match="min_kernel must be a"):
        Needs(min_kernel=(5,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="kconfig must be a tuple"):
        Needs(kconfig="UTS_NS")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="probes must be callables"):
        Needs(probes=("x",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ops must be a tuple of operation names"):
        Needs(ops="setns")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ops must be a tuple of operation names"):
        Needs(ops=("setns", ""))
    assert Needs(ops=("setns", "clone3")).ops == ("setns", "clone3")


def test_select_matches_id_or_catalogue_with_fnmatch() -> None:
    reg = Registry()
    for i, name in enumerate(("uts.a", "uts.b", "ipc.a"), 1):
        reg.check(name, catalogue=f"{name[:3].upper()}-0{i}")(_doc)
    ids = lambda cs: [c.id for c in cs]  # noqa: E731
    assert ids(reg.select(["uts.*"])) == ["uts.a", "uts.b"]
    assert ids(reg.select(["IPC-*"])) == ["ipc.a"]
    assert ids(reg.select([], ["*.a"])) == ["uts.b"]
    assert ids(select(reg.checks(), ["uts.*", "ipc.*"], ["UTS-02"])) == ["uts.a", "ipc.a"]


def test_load_checks_registers_the_real_catalogue() -> None:
    checks = load_checks()
    assert checks == REGISTRY.checks()
    assert len({c.id for c in checks}) == len(checks)
    for c in checks:
        assert re.fullmatch(r"[A-Z]+-\d\d", c.catalogue_id), c.id
        assert c.title.endswith("."), c.id
        assert "`" not in c.title, c.id  # titles reach every report as plain text
        assert c.anchors, c.id
    assert {"uts.hostname_isolated", "uts.setns_roundtrip"} <= {c.id for c in checks}


def test_global_check_decorator_registers_in_registry() -> None:
    assert check == REGISTRY.check  # one signature, not a copy of it
    @check("test.global_once", catalogue="TEST-01")
    def global_once(ctx: Context) -> None:
        """Registered globally for this test."""

    try:
        assert "test.global_once" in REGISTRY
    finally:
        REGISTRY._checks.pop("test.global_once")


# -- Context and outcomes -------------------------------------------------------


def test_context_isolate_returns_zero_in_control() -> None:
    assert Context().isolate(0x04000000) == 0x04000000
    assert Context(control=True).isolate(0x04000000) == 0


def test_context_expect_raises_fail_with_values() -> None:
    ctx = Context()
    ctx.expect(True, "fine")
    with pytest.raises(Fail) as info:
        ctx.expect(False, "parent sees child's hostname", expected="vm", actual="x")
    assert (info.value.msg, info.value.expected, info.value.actual) == (
        "parent sees child's hostname",
        "vm",
        "x",
    )
    with pytest.raises(Fail, match=r"hostname: expected 'a', got 'b'") as info:
        ctx.expect_equal("b", "a", "hostname")
    assert (info.value.expected, info.value.actual) == ("a", "b")
    with pytest.raises(Fail) as info:
        ctx.expect_equal((1, 2), (1, 3), "tuple")
    assert (info.value.expected, info.value.actual) == ("(1, 3)", "(1, 2)")


def test_fail_and_skip_pickle() -> None:
    fail = pickle.loads(pickle.dumps(Fail("m", 1, None)))
    assert (type(fail), fail.msg, fail.expected, fail.actual) == (Fail, "m", "1", None)
    skip = pickle.loads(pickle.dumps(Skip("no veth")))
    assert (type(skip), skip.reason) == (Skip, "no veth")


def test_context_defer_runs_lifo_and_reports_failures() -> None:
    ctx = Context()
    order: list[int] = []

    def boom() -> None:
        raise RuntimeError("boom")

    ctx.defer(order.append, 1)
    ctx.defer(boom)
    ctx.defer(order.append, 3)
    errors = ctx.run_cleanups()
    assert order == [3, 1]
    assert len(errors) == 1 and "boom" in errors[0] and "cleanup" in errors[0]
    assert ctx.run_cleanups() == []


def test_check_result_discriminating_and_problem() -> None:
    base = dict(id="uts.x", catalogue_id="UTS-01", type="uts", title="t", level="MUST")
    passed = CheckResult(status=Outcome.PASS, control=Outcome.FAIL, **base)  # type: ignore[arg-type]
    blind = CheckResult(status=Outcome.PASS, control=Outcome.PASS, **base)  # type: ignore[arg-type]
    plain = CheckResult(status=Outcome.PASS, **base)  # type: ignore[arg-type]
    skipped = CheckResult(status=Outcome.SKIP, control=Outcome.SKIP, **base)  # type: ignore[arg-type]
    assert (passed.discriminating, passed.problem) == (True, False)
    assert (blind.discriminating, blind.problem) == (False, True)
    assert (plain.discriminating, plain.problem) == (None, False)
    assert skipped.problem is False
    assert CheckResult.from_dict(passed.to_dict()) == passed


# -- static needs ---------------------------------------------------------------


def test_static_needs() -> None:
    def reason(needs: Needs, **kw: object) -> str | None:
        env: dict[str, object] = {"privileged": True, "kernel": (6, 1, 0), "kconfig": None}
        env.update(kw)
        return _needs.static_skip_reason(needs, **env)  # type: ignore[arg-type]

    assert reason(Needs(root=True), privileged=False) == "needs root in the initial user namespace"
    assert reason(Needs(root=True)) is None
    assert reason(Needs(min_kernel=(6, 2))) == "needs Linux 6.2 or later (running 6.1.0)"
    assert reason(Needs(min_kernel=(6, 1))) is None
    config = {"CONFIG_UTS_NS": "y", "CONFIG_VETH": "m"}
    assert reason(Needs(kconfig=("UTS_NS", "CONFIG_VETH")), kconfig=config) is None
    assert "needs CONFIG_TIME_NS" in str(reason(Needs(kconfig=("TIME_NS",)), kconfig=config))
    # An unreadable config is not a reason to skip.
    assert reason(Needs(kconfig=("TIME_NS",)), kconfig=None) is None


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ("6.18.44-fc-v657", (6, 18, 44)),
        ("6.1.0-13-amd64", (6, 1, 0)),
        ("5.4", (5, 4, 0)),
        ("x", (0, 0, 0)),
    ],
)
def test_kernel_version_parses_uname_release(release: str, version: tuple[int, int, int]) -> None:
    assert _needs.kernel_version(release) == version
