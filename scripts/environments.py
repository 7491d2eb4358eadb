#!/usr/bin/env python3
"""Run the conformance catalogue (with controls) in each environment of tests/environments/envs.py.

Writes the table of README.md's "In containers and CI" section: the verdict
counts per environment, the exit status, and the causes of the SKIPs. Run as
root from the repository: ``.venv/bin/python scripts/environments.py --readme``
(or ``-o FILE`` for the section as a page of its own, stdout by default).
``--json FILE`` also keeps the raw counts.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import platform
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_envs() -> Any:
    path = os.path.join(ROOT, "tests", "environments", "envs.py")
    spec = importlib.util.spec_from_file_location("nsprim_test_envs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HEADER = """# In containers and CI

Where `nsprim conformance` runs matters: a container runtime's seccomp
profile, a namespace limit, missing capabilities or a sandbox like
bubblewrap each refuse some operations. The runner probes what the
environment allows (each namespace type, id maps, `setns`, `sethostname`,
a tmpfs and a `/proc` mount, `clone3`, `mount_setattr`, `timens_offsets`, a
cgroup, `lo` up), builds each check's sandbox from what works, and reports a
check it cannot run as SKIP with the cause: which syscall a seccomp filter
refuses and with which errno, which `user.max_*_namespaces` is 0, which
capability is missing. A FAIL always means the operation was permitted and
the kernel's behaviour contradicted the guarantee; an ERROR is a bug of the
suite. The probed environment is in the report (`environment.probed` and
`environment.sandbox` in JSON; the lines under the tables in text).

Exit status: 0 when something was checked and nothing FAILed or ERRORed;
1 on a FAIL, an ERROR or a control that did not FAIL; 2 on bad usage; 32
(LTP's "nothing could be tested") when every check was SKIPped, with one
line on stderr saying why, and with `--strict` whenever any check was
SKIPped.

Each environment below is built with nsprim's own means by
`tests/environments/envs.py` (a seccomp BPF filter from `nsprim.seccomp`,
limits written inside a new user namespace, capabilities dropped with
capset(2), nested user and pid namespaces, a uid change; bubblewrap from
Debian's package), and `tests/environments/test_environments.py` asserts in
each: no ERROR, no FAIL (except where namespaces are faked, where every FAIL
names the broken premise), every SKIP names a cause of that environment,
every PASS has its control FAILing. The table is produced by
`scripts/environments.py` (the whole catalogue, with controls). PASS to ERROR
count the checks; "guard" counts the host guard's findings (the run changed
the host), "transient" when what it saw was gone seconds later, i.e. another
program's temporary files on a shared machine (such a run still exits 1).
Faked namespaces are the one place where FAIL is the right verdict.
"""


def _top_causes(results: list[dict[str, Any]], n: int = 3) -> str:
    causes = collections.Counter(r["message"] for r in results if r["status"] == "SKIP")
    parts = [f"{c} x {m}" for m, c in causes.most_common(n)]
    if len(causes) > n:
        parts.append(f"{len(causes) - n} more")
    return "; ".join(parts).replace("|", "\\|")


def _only_transient_guard_findings(results: list[dict[str, Any]]) -> bool:
    guard = [r for r in results if r["type"] == "guard"]
    if not guard or any(r["id"] != "guard.cgroup" for r in guard):
        return False
    paths = []
    for r in guard:
        text = r["message"].split("appeared: ", 1)[-1].split("; disappeared", 1)[0]
        paths += [p.strip() for p in text.split(", ")]
    time.sleep(3)
    return not any(os.path.exists(p) for p in paths)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", help="write the Markdown here (default: stdout)")
    p.add_argument(
        "--readme",
        action="store_true",
        help="rewrite the table between the environments markers of README.md instead",
    )
    p.add_argument("--json", help="also write the counts as JSON here")
    p.add_argument("--only", nargs="+", default=[], help="environment names")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    envs = _load_envs()
    rows = []
    raw = {}
    for env in envs.ENVIRONMENTS:
        if args.only and env.name not in args.only:
            continue
        missing = env.available()
        if missing:
            rows.append(f"| {env.name} | {env.description} | - | - | - | - | - | - | {missing} |")
            continue
        t0 = time.monotonic()
        o = envs.run_in(env, jobs=args.jobs)
        for _ in range(2):
            # On a machine shared with other runs, their temporary cgroups and
            # /tmp entries show up in the host guard; run again rather than count them.
            if not _only_transient_guard_findings(o.results):
                break
            sys.stderr.write(f"{env.name}: another program's files in the host guard; again\n")
            t0 = time.monotonic()
            o = envs.run_in(env, jobs=args.jobs)
        took = time.monotonic() - t0
        checks = [r for r in o.results if r["type"] != "guard"]
        c = {
            s: sum(1 for r in checks if r["status"] == s) for s in ("PASS", "FAIL", "SKIP", "ERROR")
        }
        guard = [r for r in o.results if r["type"] == "guard"]
        transient = bool(guard) and _only_transient_guard_findings(o.results)
        guard_text = "-" if not guard else ("transient" if transient else str(len(guard)))
        raw[env.name] = {
            "exit": o.status,
            "counts": c,
            "guard": [r["message"] for r in guard],
            "guard_transient": transient,
            "seconds": round(took, 1),
        }
        sys.stderr.write(f"{env.name}: exit {o.status} {c} guard {guard_text} in {took:.1f} s\n")
        rows.append(
            f"| {env.name} | {env.description} | {c['PASS']} | {c['FAIL']} | {c['SKIP']} "
            f"| {c['ERROR']} | {guard_text} | {o.status} | {_top_causes(o.results)} |"
        )
    out = [
        HEADER,
        f"Measured on Linux {platform.release()} ({platform.machine()}), "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}:",
        "",
        "| environment | how it is built | PASS | FAIL | SKIP | ERROR | guard | exit "
        "| SKIP causes |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    text = "\n".join(out)
    if args.readme:
        readme = os.path.join(ROOT, "README.md")
        with open(readme, encoding="utf-8") as f:
            current = f.read()
        begin = current.index("<!-- environments:begin")
        begin = current.index("\n", begin) + 1
        end = current.index("<!-- environments:end -->")
        table = "\n".join(out[1:]).lstrip("\n")
        with open(readme, "w", encoding="utf-8") as f:
            f.write(current[:begin] + table + current[end:])
        return 0
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
