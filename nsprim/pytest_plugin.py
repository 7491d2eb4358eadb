"""pytest plugin: run test bodies in new namespaces; the conformance suite as pytest items.

pytest loads this module through the ``pytest11`` entry point ``nsprim``;
``import nsprim`` never imports it, so nsprim needs no pytest at run time.

* ``@pytest.mark.namespaces("net", "uts", map_root=True, hostname="t")`` runs
  the test's body, with its fixtures' values, in a fresh child in new
  namespaces (:func:`nsprim.call`, clone3(2), Linux 5.3). The outcome is
  reported as pytest reports it in-process: the child builds the report's
  failure text with pytest's own machinery (assertion rewriting, the failing
  line), skips and xfails keep their meaning, the child's output lands in
  the captured output, a timeout kills it, and an interrupted pytest kills
  and reaps it. Without root, a user namespace mapping the caller to root is
  added (``map_root`` defaults to "when not root").
* Fixtures that need their own namespace imply the marker: ``netns`` (a new
  network namespace with ``lo`` up, and :meth:`NetNamespace.add_peer` for a
  veth pair to another one), ``isolated_hostname`` (a new UTS namespace) and
  ``private_mounts`` (a new mount namespace with a tmpfs).
* ``--nsprim-conformance`` collects every conformance check as an item
  (``--nsprim-controls`` adds the negative controls); see
  :mod:`nsprim.conformance.pytest_items`.

Layer: above the process API and the suite (it may import anything public in
nsprim); imports pytest, which is what loads it.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
import pickle
import sys
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest

import nsprim

__all__ = ["NetNamespace", "Peer", "MARKER", "DEFAULT_TIMEOUT"]

#: The marker's name.
MARKER = "namespaces"
#: Seconds a marked test body may run before its child is killed (ini ``nsprim_timeout``).
DEFAULT_TIMEOUT = 300.0

# Keyword arguments of the marker passed straight to nsprim.call().
_CALL_OPTIONS = frozenset(
    {
        "hostname",
        "domainname",
        "map_root",
        "uid_map",
        "gid_map",
        "setgroups",
        "mount_proc",
        "propagation",
        "time_offsets",
        "loopback_up",
        "cwd",
    }
)
# Fixtures that only make sense in their own namespace, and the type each implies.
_IMPLIES = {"netns": "net", "isolated_hostname": "uts", "private_mounts": "mnt"}

_LONGREPR = pytest.StashKey[Any]()


# --- options, marker ---------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nsprim", "nsprim: namespaces in tests and the conformance suite")
    group.addoption(
        "--nsprim-conformance",
        action="store_true",
        default=False,
        help="collect the nsprim conformance checks as test items",
    )
    group.addoption(
        "--nsprim-controls",
        action="store_true",
        default=False,
        help="with --nsprim-conformance, also collect each check's negative control "
        "(it passes when the control FAILs, as it must)",
    )
    parser.addini(
        "nsprim_timeout",
        f"seconds a @pytest.mark.{MARKER} test body may run (default {DEFAULT_TIMEOUT:g}; "
        "0 for none)",
        default=str(DEFAULT_TIMEOUT),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*types, map_root=None, hostname=None, timeout=None, ...): run the test "
        "body in a fresh child in new namespaces (types: uts ipc pid net mnt user cgroup "
        "time; other keywords as nsprim.call)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # tryfirst: the suite's items must exist before -k / -m deselect.
    if config.getoption("nsprim_conformance") or config.getoption("nsprim_controls"):
        # By name: the suite is the subpackage nsprim.conformance only once installed.
        pytest_items = importlib.import_module("nsprim.conformance.pytest_items")
        suite = pytest_items.collect(session, controls=config.getoption("nsprim_controls"))
        # Count them as collected (the terminal's "collected N items", xdist's checks).
        report = pytest.CollectReport(pytest_items.SUITE, "passed", None, suite)
        session.ihook.pytest_collectreport(report=report)
        items.extend(suite)


# --- what a marked test asks for -----------------------------------------------------------


class _Spec:
    """The namespaces and options of one test, from its marker and its fixtures."""

    def __init__(self, item: pytest.Item) -> None:
        types: list[str] = []
        opts: dict[str, Any] = {}
        timeout: Optional[float] = None
        for mark in reversed(list(item.iter_markers(MARKER))):  # closest mark wins
            for t in mark.args:
                if not isinstance(t, (str, nsprim.NsType)):
                    raise TypeError(f"@pytest.mark.{MARKER} takes namespace type names, got {t!r}")
                name = t.value if isinstance(t, nsprim.NsType) else t
                if name not in types:
                    types.append(name)
            for key, value in mark.kwargs.items():
                if key == "timeout":
                    timeout = _seconds(value)
                elif key in _CALL_OPTIONS:
                    opts[key] = value
                else:
                    raise TypeError(
                        f"@pytest.mark.{MARKER} got an unknown keyword {key!r}; it takes "
                        f"timeout and {', '.join(sorted(_CALL_OPTIONS))}"
                    )
        for name, t in _IMPLIES.items():
            if _uses_our_fixture(item, name) and t not in types:
                types.append(t)
        if ("hostname" in opts or "domainname" in opts) and "uts" not in types:
            types.append("uts")
        if "net" in types:
            opts.setdefault("loopback_up", True)
        if opts.get("map_root") is None:
            # Rootless by default: without root, a user namespace mapping us to 0.
            opts["map_root"] = os.geteuid() != 0 and not ("uid_map" in opts or "gid_map" in opts)
        if timeout is None:
            timeout = _seconds(item.config.getini("nsprim_timeout") or 0)
        self.types = tuple(types)
        self.options = opts
        self.timeout = timeout or None
        self.wanted = bool(types) or any(m for m in item.iter_markers(MARKER))


def _uses_our_fixture(item: pytest.Item, name: str) -> bool:
    # Only our fixture implies a namespace; a project's own "netns" fixture doesn't.
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    if not defs:
        return False
    func = getattr(defs[-1], "func", None)
    return getattr(func, "__module__", None) == __name__


def _seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"timeout must be seconds (a number >= 0), got {value!r}") from None
    if isinstance(value, bool) or not seconds >= 0:
        raise ValueError(f"timeout must be seconds (a number >= 0), got {value!r}")
    return seconds


def _hostname_for(item: pytest.Item) -> str:
    # What isolated_hostname sets: stable per test, within HOST_NAME_MAX (64).
    spec: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):  # closest mark wins
        spec.update(mark.kwargs)
    name = spec.get("hostname")
    if isinstance(name, bytes):
        return name.decode()
    return str(name) if name else f"nsprim-{abs(hash(item.nodeid)) % 10**8:08d}"


# --- running the body in the child ------------------------------------------------------------


# pytest's outcome exceptions, most derived first (XFailed is a Failed).
_OUTCOMES: tuple[type[BaseException], ...] = (
    pytest.xfail.Exception,
    pytest.skip.Exception,
    pytest.fail.Exception,
    pytest.exit.Exception,
)


class _ChildFailure(Exception):
    """Stands in for an exception from the child that could not be pickled."""


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


def _captured() -> list[int]:
    # Sys-level capture (--capture=sys, capsys) buffers in this process's memory.
    return [len(s.getvalue()) if hasattr(s, "getvalue") else -1 for s in (sys.stdout, sys.stderr)]


def _child_body(
    item: pytest.Function,
    testfunction: Callable[..., Any],
    testargs: dict[str, Any],
    ours: dict[str, Any],
) -> dict[str, Any]:
    """Run the test body (in the child) and describe its outcome with pytest's own report.

    *ours* holds the values of this plugin's fixtures the test uses, directly
    or through other fixtures.
    """
    before = _captured()
    mounts = ours.get("private_mounts")
    netns = ours.get("netns")

    def body() -> None:
        if isinstance(mounts, Path):
            nsprim.syscalls.mount("tmpfs", str(mounts), "tmpfs", 0, "mode=0755")
        try:
            testfunction(**testargs)
        finally:
            if isinstance(netns, NetNamespace):
                netns._close()

    call = pytest.CallInfo.from_call(body, "call")
    _flush()
    out: dict[str, Any] = {"captured": []}
    for stream, start in zip((sys.stdout, sys.stderr), before):
        text = stream.getvalue() if start >= 0 and hasattr(stream, "getvalue") else ""
        out["captured"].append(text[start:])
    if call.excinfo is None:
        out["outcome"] = "passed"
        return out
    report = pytest.TestReport.from_item_and_call(item, call)
    data = item.config.hook.pytest_report_to_serializable(config=item.config, report=report)
    exc: Any = call.excinfo.value
    for kind, cls in enumerate(_OUTCOMES):
        if isinstance(exc, cls):
            # pytest's outcome classes say __module__ = "builtins": they don't pickle.
            exc = (kind, dict(vars(exc)))
            break
    else:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = _ChildFailure(call.excinfo.exconly())
    out.update(outcome=report.outcome, report=data, exc=exc)
    return out


def _reraise(item: pytest.Function, result: dict[str, Any]) -> None:
    for stream, text in zip((sys.stdout, sys.stderr), result["captured"]):
        if text:
            stream.write(text)
    if result["outcome"] == "passed":
        return
    report = item.config.hook.pytest_report_from_serializable(
        config=item.config, data=result["report"]
    )
    item.stash[_LONGREPR] = report.longrepr
    exc = result["exc"]
    if isinstance(exc, tuple):
        kind, state = exc
        exc = _OUTCOMES[kind](state.get("msg"))
        vars(exc).update(state)
    raise exc


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    spec = _Spec(pyfuncitem)
    if not spec.wanted:
        return None
    testfunction = pyfuncitem.obj
    argnames = pyfuncitem._fixtureinfo.argnames
    testargs = {arg: pyfuncitem.funcargs[arg] for arg in argnames}
    # Our fixtures' values, also when only another fixture asked for them.
    ours = {
        name: pyfuncitem.funcargs[name]
        for name in _IMPLIES
        if name in pyfuncitem.funcargs and _uses_our_fixture(pyfuncitem, name)
    }
    options = dict(spec.options)
    if "isolated_hostname" in ours and "hostname" not in options:
        options["hostname"] = ours["isolated_hostname"]
    _flush()  # a buffer copied into the child would be written twice
    try:
        result = nsprim.call(
            _child_body,
            pyfuncitem,
            testfunction,
            testargs,
            ours,
            namespaces=spec.types,
            timeout=spec.timeout,
            **options,
        )
    except nsprim.TimeoutExpired:
        result = None
    except (nsprim.AccessDenied, nsprim.UnsupportedError) as err:
        # A refusal by policy (no user namespaces, seccomp ...): can't run here.
        raise pytest.skip.Exception(
            f"can't create namespaces {', '.join(spec.types)} here: {err}",
            _use_item_location=True,
        ) from None
    if result is None:
        pytest.fail(
            f"the test body ran longer than its {spec.timeout:g} s timeout in namespaces "
            f"{', '.join(spec.types) or '(none)'}; its child was killed",
            pytrace=False,
        )
    _reraise(pyfuncitem, result)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    longrepr = item.stash.get(_LONGREPR, None)
    if longrepr is not None and call.when == "call":
        del item.stash[_LONGREPR]
        if report.longrepr is not None:
            # The child's view: its traceback, its failing line, its skip location.
            report.longrepr = longrepr


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def isolated_hostname(request: pytest.FixtureRequest) -> str:
    """The hostname of the test's own UTS namespace; the body may change it freely."""
    return _hostname_for(request.node)


@pytest.fixture
def private_mounts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tmpfs mounted, in the test's own mount namespace, on the returned directory."""
    return tmp_path_factory.mktemp("private_mounts")


@pytest.fixture
def netns() -> NetNamespace:
    """The test's own network namespace (``lo`` up); ``add_peer`` links it to another."""
    return NetNamespace()


class Peer:
    """Another network namespace, joined to the test's by a veth pair.

    Held open by a small process (``cat`` reading a pipe) that lives until the
    test body ends. Programs and callables run there through
    :func:`nsprim.spawn_in` and :func:`nsprim.call_in`.
    """

    def __init__(
        self, holder: nsprim.NsProcess, address: str, peer_address: str, link: str, peer_link: str
    ) -> None:
        self.process = holder
        #: The peer side's address, without the prefix length (``"10.0.0.2"``).
        self.address = str(ipaddress.ip_interface(peer_address).ip)
        #: The test side's address, without the prefix length.
        self.local_address = str(ipaddress.ip_interface(address).ip)
        self.link = link
        self.peer_link = peer_link

    def spawn(self, args: Union[str, Sequence[str]], **options: Any) -> nsprim.NsProcess:
        """Start a program in the peer namespace (:func:`nsprim.spawn_in`)."""
        return nsprim.spawn_in(self.process, args, types=["net"], **options)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in a fresh child in the peer namespace."""
        return nsprim.call_in(self.process, fn, *args, types=["net"], **kwargs)

    def close(self) -> None:
        """End the holder process (and with it the namespace once nothing else is in it)."""
        self.process.close()


class NetNamespace:
    """The network namespace a test body runs in (``lo`` is up).

    Use it inside the test body: it acts on the calling process's network
    namespace, where the test is root (or root of its user namespace).
    """

    def __init__(self) -> None:
        self.peers: list[Peer] = []

    def add_peer(
        self,
        address: str = "10.0.0.1/24",
        peer_address: str = "10.0.0.2/24",
        *,
        link: str = "veth0",
        peer_link: str = "veth1",
    ) -> Peer:
        """Create another network namespace linked to this one by a veth pair.

        Both ends get their address and come up; each new namespace has
        ``lo`` up. Uses RTM_NEWLINK "veth" with the peer created directly in
        the other namespace (IFLA_NET_NS_FD; Linux 3.0).

        Args:
            address: this end's address with its prefix length.
            peer_address: the other end's address with its prefix length.
            link, peer_link: interface names of the two ends.
        """
        ipaddress.ip_interface(address)
        ipaddress.ip_interface(peer_address)
        from nsprim import net

        holder = nsprim.spawn(
            ["cat"],
            namespaces=["net"],
            loopback_up=True,
            stdin=nsprim.PIPE,
            stdout=nsprim.DEVNULL,
        )
        try:
            with nsprim.Namespace.of_pid(holder.pid, "net").open() as fd:
                net.create_veth(link, peer_link, peer_netns=fd)
            net.add_address(link, address)
            net.set_link_up(link)
            nsprim.call_in(holder, _setup_end, peer_link, peer_address, types=["net"])
        except BaseException:
            holder.close()
            raise
        peer = Peer(holder, address, peer_address, link, peer_link)
        self.peers.append(peer)
        return peer

    def _close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.peers.clear()


def _setup_end(link: str, address: str) -> None:
    from nsprim import net

    net.add_address(link, address)
    net.set_link_up(link)
