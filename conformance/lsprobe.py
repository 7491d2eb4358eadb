"""What ``nsprim ls`` finds on this kernel: plant namespaces held each way, scan, compare.

``python -m nsprim.conformance.lsprobe [-o FILE]`` (root) creates one namespace for
each way a namespace can be kept alive, runs :func:`nsprim.listing.scan` with the
options ``nsprim ls`` uses, and reports, per planted namespace, whether the scan
found it and how it says the namespace is held, plus where the scan looked
(:attr:`nsprim.listing.Listing.sources`: the /proc scan alone, or listns(2) too).
``scripts/vm/matrix`` runs it in every kernel's VM after the suite and shows the
results side by side ("what nsprim ls finds").

The planted namespaces (:data:`PLANTS`):

* ``process``: a uts namespace a sleeping child (:func:`nsprim.call_start`) is in;
* ``fd``: a uts namespace only an open fd of the probe refers to;
* ``bind-mount``: a uts namespace only an nsfs bind mount holds (what
  ``Namespace.persist`` and ``nsprim run --uts=FILE`` make), in the probe's own
  mount namespace;
* ``owner``: a user namespace no process is in, kept alive only as the owner of
  a uts namespace that an fd holds (found through NS_GET_USERNS, Linux 4.9);
* ``hidden-mount``: a uts namespace held only by a bind mount inside a mount
  namespace that no process is in (only an fd holds that mount namespace). No
  /proc file names the bind mount: only listns(2) (Linux 6.19) finds it. The
  probe calls listns(2) itself: where the kernel answers it, a scan that did not
  use it, or did not find this namespace, fails;
* ``socket``: a network namespace only a socket holds. ``nsprim ls`` looks at
  sockets only with ``--sockets``, and a socket's reference is not one listns(2)
  counts, so the default scan is not expected to find it on any kernel; the row
  only reports what happened.

A plant that the scan should find and does not is reported as ``found: false``
with ``ok: false``, and so is the whole probe; so is a plant that could not be
set up (``error``). Everything lives in a child process with its own mount
namespace: when that process exits, every planted namespace, mount and process
goes with it, also when it is killed.

Needs root (unshare(2) of mount, uts and network namespaces, mount(2), setns(2)).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

__all__ = ["PLANTS", "SCHEMA", "Plant", "probe", "main"]

SCHEMA = "nsprim.lsprobe/1"


class Plant:
    """One planted namespace: its name, type, how it is held, and what the scan should say.

    Attributes:
        name: the plant's key (``process``, ``fd``, ...).
        type: the namespace type (``uts``, ``user``, ``net``).
        how: one sentence: what keeps it alive.
        held: the :class:`nsprim.listing.Held` value the scan should report for it.
        needs_listns: found only where listns(2) answers (the /proc scan can't see it).
        judged: False when the row only reports what the scan did (no expectation).
    """

    __slots__ = ("held", "how", "judged", "name", "needs_listns", "type")

    def __init__(
        self,
        name: str,
        type: str,
        how: str,
        held: str,
        needs_listns: bool = False,
        judged: bool = True,
    ) -> None:
        self.name = name
        self.type = type
        self.how = how
        self.held = held
        self.needs_listns = needs_listns
        self.judged = judged

    def expected(self, listns: str) -> Optional[bool]:
        """Whether the scan should find it where listns(2) is *listns* (None: not judged).

        *listns* is what the probe itself got from listns(2): ``present``, ``absent``
        (ENOSYS, before Linux 6.19) or ``refused: ...`` (e.g. by seccomp).
        """
        if not self.judged:
            return None
        return listns == "present" if self.needs_listns else True


PLANTS = (
    Plant("process", "uts", "a process is a member", "process"),
    Plant("fd", "uts", "only an open fd refers to it", "fd"),
    Plant("bind-mount", "uts", "only an nsfs bind mount (persist) holds it", "bind-mount"),
    Plant(
        "owner",
        "user",
        "no process is in it; it only owns a uts namespace that an fd holds",
        "ancestor",
    ),
    Plant(
        "hidden-mount",
        "uts",
        "only a bind mount in a mount namespace no process is in (an fd holds that one)",
        "listns",
        needs_listns=True,
    ),
    Plant(
        "socket",
        "net",
        "only a socket holds it (nsprim ls looks at sockets only with --sockets)",
        "socket",
        judged=False,
    ),
)


def probe(
    scan_options: Optional[Mapping[str, bool]] = None,
    *,
    timeout: float = 120.0,
    python: Optional[str] = None,
) -> dict[str, Any]:
    """Plant the namespaces of :data:`PLANTS`, scan, and report what the scan found.

    Runs in a child process (*python*, default this interpreter) that has its own
    mount namespace, so that nothing it plants outlives it.

    Args:
        scan_options: keyword arguments for :func:`nsprim.listing.scan` (default:
            none, as ``nsprim ls`` runs it). Turning a source off (``fds=False``,
            ``mounts=False``) makes the plants only it finds show as not found.
        timeout: seconds the child may take; then it is killed and the result is
            an error.
        python: the interpreter to run the child with.

    Returns:
        A dict (schema ``nsprim.lsprobe/1``): ``kernel``, ``sources`` (where the
        scan looked: :attr:`nsprim.listing.Listing.sources`), ``listns`` (what the
        probe itself got from listns(2): ``present``, ``absent`` or ``refused: ...``;
        where it is present the scan must have used it), ``seconds``, ``ok``,
        ``error`` (None, or why the probe could not run) and ``plants``, a list of
        dicts with ``name``, ``type``, ``how``, ``planted``, ``ino``, ``id``,
        ``found``, ``held`` (what the scan says; None when not found),
        ``expected`` (None: not judged), ``expected_held``, ``ok`` and ``error``.

    Raises:
        TypeError: *scan_options* is not a mapping of names to bools.
    """
    options = dict(scan_options or {})
    for key, value in options.items():
        if not isinstance(key, str) or not isinstance(value, bool):
            raise TypeError(f"scan_options must map names to bools, got {key!r}: {value!r}")
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="nsprim-lsprobe-")
    try:
        cmd = [python or sys.executable, "-m", "nsprim.conformance.lsprobe", "--plant", workdir]
        cmd += ["--scan-options", json.dumps(options)]
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                text=True,
            )
        except subprocess.TimeoutExpired:
            return _failed(f"the planting child took more than {timeout:.0f} s", started)
        except OSError as err:
            return _failed(f"the planting child could not start: {err}", started)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            return _failed(f"the planting child exited {proc.returncode}: {tail}", started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not isinstance(result, dict) or result.get("schema") != SCHEMA:
        return _failed("the planting child printed no probe result", started)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def _failed(error: str, started: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "kernel": os.uname().release,
        "sources": [],
        "listns": None,
        "seconds": round(time.monotonic() - started, 2),
        "ok": False,
        "error": error,
        "plants": [_row(p, None, None, "absent", error) for p in PLANTS],
    }


def _row(
    plant: Plant,
    key: Optional[_Ident],
    held: Optional[list[str]],
    listns: str,
    error: Optional[str],
) -> dict[str, Any]:
    expected = plant.expected(listns)
    found = held is not None
    if error is not None:
        ok: Optional[bool] = False
    elif expected is None:
        ok = None
    elif expected:
        ok = found and plant.held in (held or [])
    else:
        ok = not found
    return {
        "name": plant.name,
        "type": plant.type,
        "how": plant.how,
        "planted": error is None,
        "ino": None if key is None else key[1],
        "id": None if key is None else key[2],
        "found": found,
        "held": held,
        "expected": expected,
        "expected_held": plant.held,
        "ok": ok,
        "error": error,
    }


# --- the planting child --------------------------------------------------------------


_Ident = tuple[int, int, Optional[int]]  # nsfs (st_dev, st_ino) and NS_GET_ID (6.18) or None


def _key(path_or_fd: Any) -> _Ident:
    from nsprim import syscalls as sc
    from nsprim.errors import UnsupportedError

    opened = not isinstance(path_or_fd, int)
    fd = os.open(path_or_fd, os.O_RDONLY | os.O_CLOEXEC) if opened else path_or_fd
    try:
        s = os.fstat(fd)
        try:
            ns_id: Optional[int] = sc.ns_get_id(fd)
        except (UnsupportedError, OSError):
            ns_id = None
        return (s.st_dev, s.st_ino, ns_id)
    finally:
        if opened:
            os.close(fd)


def _plant_and_scan(workdir: str, options: Mapping[str, bool]) -> dict[str, Any]:
    import nsprim
    from nsprim import listing
    from nsprim import syscalls as sc
    from nsprim.errors import UnsupportedError
    from nsprim.flags import CloneFlags, MountFlags

    newns, newuts = int(CloneFlags.NEWNS), int(CloneFlags.NEWUTS)
    newnet = int(CloneFlags.NEWNET)
    rprivate = int(MountFlags.REC | MountFlags.PRIVATE)
    bind = int(MountFlags.BIND)

    # This process's own mount namespace: every mount below dies with it.
    sc.unshare(newns)
    sc.mount(None, "/", None, rprivate)
    sc.mount("tmpfs", workdir, "tmpfs", 0, "mode=700,size=64k")
    own = {t: os.open(f"/proc/self/ns/{t}", os.O_RDONLY | os.O_CLOEXEC) for t in ("uts", "mnt")}
    if os.path.exists("/proc/self/ns/net"):
        own["net"] = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    keys: dict[str, _Ident] = {}
    errors: dict[str, str] = {}
    keep: list[Any] = []  # the fds and sockets that hold plants, open until the scan is done
    children: list[Any] = []  # nsprim.PendingCall of the process plant

    def step(name: str, fn: Any) -> None:
        try:
            keys[name] = fn()
        except (OSError, nsprim.NsprimError) as err:
            errors[name] = f"{type(err).__name__}: {err}"

    def plant_hidden_mount() -> _Ident:
        sc.unshare(newns)
        try:
            sc.mount(None, "/", None, rprivate)
            sc.mount("tmpfs", workdir, "tmpfs", 0, "mode=700,size=64k")
            key = bind_new_uts(os.path.join(workdir, "hidden-uts"))
            keep.append(os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
        finally:
            sc.setns(own["mnt"], newns)
        return key

    def plant_process() -> _Ident:
        child = nsprim.call_start(time.sleep, 3600, namespaces=["uts"])
        children.append(child)
        return _key(f"/proc/{child.pid}/ns/uts")

    def plant_owner() -> _Ident:
        child = nsprim.call_start(time.sleep, 3600, namespaces=["user", "uts"])
        try:
            fd = os.open(f"/proc/{child.pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            child.kill()  # killed and reaped: no process is left in the user namespace
        keep.append(fd)
        user = sc.ns_get_userns(fd)
        try:
            return _key(user)
        finally:
            os.close(user)

    def plant_fd() -> _Ident:
        sc.unshare(newuts)
        try:
            fd = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            sc.setns(own["uts"], newuts)
        keep.append(fd)
        return _key(fd)

    def bind_new_uts(target: str) -> _Ident:
        # A new uts namespace, held only by a bind mount of its nsfs file on *target*.
        open(target, "w").close()
        sc.unshare(newuts)
        try:
            sc.mount("/proc/self/ns/uts", target, None, bind)
        finally:
            sc.setns(own["uts"], newuts)
        return _key(target)

    def plant_bind_mount() -> _Ident:
        return bind_new_uts(os.path.join(workdir, "uts"))

    def plant_socket() -> _Ident:
        if "net" not in own:
            raise OSError("this kernel has no network namespaces")
        sc.unshare(newnet)
        try:
            key = _key("/proc/self/ns/net")
            keep.append(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
        finally:
            sc.setns(own["net"], newnet)
        return key

    # The mount namespace plant first: unshare(CLONE_NEWNS) and setns(2) into a mount
    # namespace need a process with one thread, and starting a child may start one.
    step("hidden-mount", plant_hidden_mount)
    step("process", plant_process)
    step("owner", plant_owner)
    step("fd", plant_fd)
    step("bind-mount", plant_bind_mount)
    step("socket", plant_socket)
    for fd in own.values():
        os.close(fd)
    # Whether this kernel answers listns(2), asked directly: where it does, a scan
    # that did not use it is a failure, not "the /proc scan" shown as if by design.
    try:
        sc.listns()
        listns = "present"
    except UnsupportedError:
        listns = "absent"
    except OSError as err:
        listns = f"refused: {err.strerror or err}"
    try:
        result = listing.scan(**options)
    finally:
        for item in keep:
            if isinstance(item, int):
                os.close(item)
            else:
                item.close()
        for child in children:
            child.kill()
    found = {(n.dev, n.ino): n for n in result.namespaces}
    rows = []
    for plant in PLANTS:
        key = keys.get(plant.name)
        info = found.get(key[:2]) if key is not None else None
        held = None if info is None else [h.value for h in info.held]
        rows.append(_row(plant, key, held, listns, errors.get(plant.name)))
    return {
        "schema": SCHEMA,
        "kernel": os.uname().release,
        "sources": list(result.sources),
        "listns": listns,
        "scan_options": dict(options),
        "ok": all(r["ok"] is not False for r in rows)
        and ("listns" in result.sources) == (listns == "present"),
        "error": None,
        "plants": rows,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m nsprim.conformance.lsprobe``: print (or write) the probe's JSON.

    Exit status: 0 when every judged plant was found as expected, 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        prog="python -m nsprim.conformance.lsprobe",
        description="Plant namespaces held each way and report what nsprim ls finds.",
    )
    parser.add_argument("-o", "--output", help="write the JSON here (default stdout)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S")
    parser.add_argument("--plant", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--scan-options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plant is not None:
        # The child: plant, scan, print. If it is killed, the kernel frees the rest.
        try:
            options = json.loads(args.scan_options)
        except ValueError:
            parser.error("--scan-options must be a JSON object")
        result = _plant_and_scan(args.plant, options)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    result = probe(timeout=args.timeout)
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
