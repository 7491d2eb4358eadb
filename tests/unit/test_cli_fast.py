"""nsprim.cli._fast: the argparse-free reading of `run`/`enter`/`ls` gives argparse's answer or none.

Wherever the fast parser answers, its namespace must equal the one the real
parser builds (every dest, the command included); where argparse refuses a
command line, the fast parser must not accept it. Its table must be what
the parsers say today (regenerate: ``python -m nsprim.cli._fast``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsprim.cli import UsageError, _fast, command_parser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def argparse_ns(name: str, words: list[str]) -> Optional[dict[str, Any]]:
    try:
        ns = command_parser(name).parse_args(words)
    except (UsageError, SystemExit):
        return None
    out = dict(vars(ns))
    out.pop("func")
    return out


def fast_ns(name: str, words: list[str]) -> Optional[dict[str, Any]]:
    ns = _fast.parse(_fast.SPECS[name], words)
    return None if ns is None else dict(vars(ns))


def test_the_table_is_what_the_parsers_say_today() -> None:
    assert _fast.derive_all() == _fast.SPECS, "regenerate: python -m nsprim.cli._fast"


def test_every_fast_command_has_a_table() -> None:
    # If derive() gives up on a parser (a default that isn't plain data), the
    # command silently loses its fast start: say so here.
    assert set(_fast.SPECS) == {"run", "enter", "ls"}


CASES = [
    ("run", ["-u", "--", "/bin/true"]),
    ("run", ["-u", "/bin/true"]),
    ("run", ["/bin/true", "-u", "--", "x"]),
    ("run", []),
    ("run", ["-u"]),
    ("run", ["--"]),
    ("run", ["--", "--"]),
    ("run", ["-muinpC", "--", "sh", "-c", "echo hi"]),
    ("run", ["-m", "-u", "--uts", "-r", "--fork", "true"]),
    ("run", ["--mount-proc", "-p", "-f", "--", "ps"]),
    ("run", ["-rU", "id"]),
    ("run", ["-S", "0", "-G", "0", "-U", "-r", "id"]),
    ("run", ["-S0", "--setgid=0", "-r", "id"]),
    ("run", ["--lo-up", "-n", "ip", "link"]),
    ("run", ["--kill-child", "sleep", "1"]),
    ("run", ["-c", "-U", "true"]),
    ("enter", ["-t", "1", "-u", "--", "/bin/true"]),
    ("enter", ["-t1", "-a", "true"]),
    ("enter", ["--target", "1", "-n", "true"]),
    ("enter", ["--target=1", "-mun", "true"]),
    ("enter", ["-at", "1", "true"]),
    ("enter", ["-t", "1", "-r", "-w", "--preserve-credentials", "-U", "id"]),
    ("enter", ["-t", "1", "-S", "0", "-G", "0", "-U", "id"]),
    ("enter", ["-t", "1", "-nu", "true"]),  # getopt: -n's value is "u"
    ("enter", ["-t", "1", "--net=/run/netns/x", "true"]),
    ("enter", ["-n/run/netns/x", "true"]),
    # what the fast parser leaves to argparse (answers or errors)
    ("run", ["--help"]),
    ("run", ["-h"]),
    ("run", ["-V"]),
    ("run", ["--ut", "true"]),  # an abbreviation
    ("run", ["--hostname", "box", "-u", "true"]),
    ("run", ["--hostname=box", "true"]),
    ("run", ["-x", "true"]),
    ("run", ["--no-such", "true"]),
    ("run", ["-", "true"]),
    ("run", ["-S", "-1", "true"]),
    ("run", ["-S", "x", "true"]),
    ("run", ["-S"]),
    ("run", ["-S", "99999999999", "true"]),
    ("run", ["--kill-child=TERM", "true"]),
    ("enter", ["-t", "0", "-u", "true"]),
    ("enter", ["-t", "+1", "-u", "true"]),
    ("enter", ["-t", "\u0661", "-u", "true"]),  # a digit, but not ASCII
    ("enter", ["-t"]),
    ("enter", ["--target"]),
    ("ls", []),
    ("ls", ["--json"]),
    ("ls", ["-J"]),
    ("ls", ["-Jn", "--sockets"]),
    ("ls", ["-T"]),
    ("ls", ["-T", "parent"]),  # -T's value: argparse's
    ("ls", ["-Tparent"]),
    ("ls", ["--tree"]),
    ("ls", ["--tree=process"]),
    ("ls", ["-TJ"]),  # getopt: -T's value is "J"
    ("ls", ["-JT"]),
    ("ls", ["-lPW", "-u", "--output-all", "-r"]),
    ("ls", ["-H", "-J"]),
    ("ls", ["4026531836"]),
    ("ls", ["--json", "4026531836"]),
    ("ls", ["4026531836", "--json"]),
    ("ls", ["--", "4026531836"]),
    ("ls", ["--"]),
    ("ls", ["-t", "net", "-J"]),
    ("ls", ["-p", "1"]),
    ("ls", ["-o", "NS,TYPE"]),
    ("ls", ["-Q", "NPROCS > 1"]),
    ("ls", ["--js"]),  # an abbreviation
    ("ls", ["-x"]),
    ("ls", ["-"]),
]


@pytest.mark.parametrize(("name", "words"), CASES)
def test_fast_answer_is_argparse_answer(name: str, words: list[str]) -> None:
    fast = fast_ns(name, words)
    if fast is not None:
        assert fast == argparse_ns(name, words)


def test_the_common_command_lines_take_the_fast_path() -> None:
    # Not a timing: which command lines are read without argparse at all.
    for name, words in [
        ("run", ["-u", "--", "/bin/true"]),
        ("run", ["-rmpf", "--mount-proc", "sh"]),
        ("enter", ["-t", "4242", "-a", "--", "sh"]),
        ("enter", ["--target=1", "-u", "-n", "true"]),
        ("ls", []),
        ("ls", ["--json"]),
        ("ls", ["-J", "--tree"]),
    ]:
        assert fast_ns(name, words) is not None, words
    for name, words in [("run", ["--help"]), ("run", ["--ut", "x"]), ("enter", ["-t", "0"])]:
        assert fast_ns(name, words) is None, words


TOKENS = [
    "-u", "-n", "-m", "-p", "-U", "-r", "-c", "-f", "-a", "-t", "-S", "-G", "-w", "-x", "-",
    "--", "--uts", "--net", "--net=/x", "--fork", "--target", "--target=3", "--setuid=0",
    "--lo-up", "--mount-proc", "--kill-child", "--kill-child=TERM", "--ut", "--hostname",
    "-un", "-nu", "-mup", "-t3", "-at", "-S0", "-rU", "0", "1", "3", "x", "true", "-1",
]  # fmt: skip
LS_TOKENS = [
    "-J", "--json", "-n", "-r", "-l", "-u", "-W", "-P", "-H", "-T", "-t", "-p", "-o", "-Q",
    "-Jn", "-TJ", "-JT", "-Tparent", "--tree", "--tree=owner", "--tree=x", "--sockets",
    "--output-all", "--js", "--", "-", "-x", "net", "owner", "process", "1", "4026531836",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["run", "enter"]), st.lists(st.sampled_from(TOKENS), max_size=7))
def test_fast_answer_is_argparse_answer_for_any_token_soup(name: str, words: list[str]) -> None:
    fast = fast_ns(name, words)
    if fast is not None:
        assert fast == argparse_ns(name, words)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LS_TOKENS), max_size=6))
def test_fast_ls_answer_is_argparse_answer_for_any_token_soup(words: list[str]) -> None:
    fast = fast_ns("ls", words)
    if fast is not None:
        assert fast == argparse_ns("ls", words)


def test_nsprim_run_imports_neither_argparse_nor_typing() -> None:
    # The point of the fast path: a plain `nsprim run` loads no argparse, re or
    # typing (and no dataclasses, nor threading: its spawn needs none); --help
    # still does; nor contextlib or signal (nsprim._stdlib stands in). With -S:
    # a site's .pth hooks (an editable install's) load re and contextlib at
    # start-up, which would hide them.
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); before = set(sys.modules); "
        "from nsprim.cli import main; rc = main(['run', '-u', '--', 'true']); "
        "print(rc, *sorted(m for m in ('argparse', 're', 'typing', 'dataclasses', 'pickle', "
        "'subprocess', 'socket', 'threading', 'contextlib', 'signal') "
        "if m in set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if os.geteuid() != 0:
        pytest.skip("nsprim run -u needs CAP_SYS_ADMIN")
    assert out == ["0"]


def test_nsprim_ls_json_imports_neither_argparse_nor_json() -> None:
    # `nsprim ls --json` on a small host costs mostly imports: no argparse,
    # typing, or json (whose decoder loads re); its output is still JSON.
    code = (
        f"import sys, io; sys.path.insert(0, {ROOT!r}); before = set(sys.modules); "
        "from nsprim.cli import main; sys.stdout = io.StringIO(); rc = main(['ls', '--json']); "
        "text, sys.stdout = sys.stdout.getvalue(), sys.__stdout__; "
        "new = sorted(m for m in ('argparse', 're', 'typing', 'json', 'dataclasses', "
        "'contextlib') "
        "if m in set(sys.modules) - before); "
        "import json; print(rc, len(json.loads(text)['namespaces']) > 0, *new)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["0", "True"]


def _as_nsprim(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); {prelude}; "
        f"sys.argv = ['nsprim', *{list(args)!r}]; "
        "from nsprim.cli import main; sys.exit(main())"
    )
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)


def test_run_as_the_process_still_runs_atexit_and_flushes_before_its_quick_exit() -> None:
    # `nsprim run` as the program skips the interpreter's teardown (os._exit)
    # but not what a normal exit does: atexit handlers, buffered output, status.
    if os.geteuid() != 0:
        pytest.skip("nsprim run -u needs CAP_SYS_ADMIN")
    r = _as_nsprim(
        "import atexit; atexit.register(lambda: print('atexit ran', end='')); "
        "print('buffered', end=' ')",
        "run", "-u", "--", "/bin/sh", "-c", "exit 3",
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (3, "buffered atexit ran"), r.stderr


def test_ls_as_the_process_runs_atexit_and_writes_all_its_output() -> None:
    # `nsprim ls` as the program also ends with the quick exit: its output
    # complete, the atexit handlers run, the status kept.
    r = _as_nsprim(
        "import atexit; atexit.register(lambda: print('atexit ran', end=''))", "ls", "--json"
    )
    assert r.returncode == 0, r.stderr
    doc, _, tail = r.stdout.rpartition("\n")
    assert tail == "atexit ran"
    assert doc.startswith('{\n  "namespaces": [') and doc.endswith("\n  ]\n}")


def test_the_collector_is_the_callers_again_after_main() -> None:
    # main() holds the cyclic GC off while it imports a command; an embedding
    # caller (argv given) gets it back as it was, and nothing frozen.
    code = (
        f"import sys, io, gc; sys.path.insert(0, {ROOT!r}); from nsprim.cli import main; "
        "sys.stdout = io.StringIO(); states = []\n"
        "for enabled in (True, False):\n"
        "    gc.enable() if enabled else gc.disable()\n"
        "    main(['ls', '-J']); main(['ls', '--bogus'])\n"
        "    states.append((gc.isenabled(), gc.get_freeze_count()))\n"
        "sys.stdout = sys.__stdout__; print(states)"
    )
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[(True, 0), (False, 0)]", r.stderr


def test_run_as_the_process_waits_for_a_running_thread() -> None:
    # Another (non-daemon) thread still running: the interpreter's normal exit,
    # which waits for it.
    if os.geteuid() != 0:
        pytest.skip("nsprim run -u needs CAP_SYS_ADMIN")
    r = _as_nsprim(
        "import threading, time; "
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()",
        "run", "-u", "--", "/bin/true",
    )  # fmt: skip
    assert (r.returncode, r.stdout.strip()) == (0, "thread done"), r.stderr


def _runtime_argparse_without_import(path: str) -> list[str]:
    """Functions of *path* that use ``argparse`` at run time with no import of their own."""
    import ast

    tree = ast.parse(Path(path).read_text())
    bad = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        notes: set[int] = set()
        body: list[ast.AST] = []
        todo: list[ast.AST] = list(fn.body)
        while todo:  # this function's own statements, not nested functions'
            node = todo.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.AnnAssign):
                notes.update(id(n) for n in ast.walk(node.annotation))
            body.append(node)
            todo.extend(ast.iter_child_nodes(node))
        uses = [
            n for n in body if isinstance(n, ast.Name) and n.id == "argparse" and id(n) not in notes
        ]
        imports = any(
            isinstance(n, ast.Import) and any(a.name == "argparse" for a in n.names) for n in body
        )
        if uses and not imports:
            bad.append(f"{path}:{fn.lineno} {fn.name}")
    return bad


@pytest.mark.parametrize("name", ["__init__.py", "_spawn.py", "run.py", "enter.py"])
def test_run_and_enter_modules_import_argparse_where_they_use_it(name: str) -> None:
    # These modules load without argparse (the fast start); a function that
    # raises argparse.ArgumentTypeError must import it itself, or the bad
    # value becomes a NameError traceback instead of util-linux's message.
    path = os.path.join(ROOT, "nsprim", "cli", name)
    source = Path(path).read_text()
    assert "\nimport argparse" not in source and "\nfrom argparse" not in source
    assert _runtime_argparse_without_import(path) == []
