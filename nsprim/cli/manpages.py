"""Man pages and bash completion for ``nsprim``, generated from the CLI's own parsers.

``python -m nsprim.cli.manpages OUTDIR`` writes ``nsprim.1``,
``nsprim-run.1``, ``nsprim-enter.1``, ``nsprim-ls.1``, ``nsprim-check.1``,
``nsprim-conformance.1`` and the bash completion script ``nsprim``
(``OUTDIR COMPLETION_DIR`` puts the script apart).
Nothing needs building: the pages shipped in the package
(``nsprim/cli/man/``, ``nsprim/cli/completion/``) are this module's output,
and a test keeps them equal to it.

Layer 4; imports the subcommand modules (to build their parsers) and, for
``conformance``, the suite's own parser.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Optional

from .. import __version__
from . import COMMANDS, DESCRIPTION, Parser, build_parser

__all__ = ["completion", "main", "pages", "parsers"]

NS_TYPES = ("mnt", "uts", "ipc", "net", "pid", "user", "cgroup", "time")

# What a parser does not say: per page, the exit status and the related pages.
EXIT_STATUS = {
    "nsprim": "0 on success; 1 on bad usage (an unknown command or option).",
    "run": "The command's exit status. If a signal killed the command, nsprim dies of the "
    "same signal (a shell reports 128+N), as unshare --fork does. 1 when nsprim itself "
    "fails or on bad usage; 126 when the command can't be executed; 127 when it is not found.",
    "enter": "The command's exit status, or death by the signal that killed it. 1 when nsprim "
    "itself fails or on bad usage; 126 when the command can't be executed; 127 when it is not "
    "found.",
    "ls": "0 on success; 1 on bad usage, and where lsns refuses too (a namespace argument "
    "that names no namespace, a -Q expression that does not parse).",
    "check": "0 normally; 1 when a --require is not available here; 2 on bad usage.",
    "conformance": "0 when something was checked and nothing FAILed or ERRORed (and, with "
    "--controls, every passing check's control FAILed); 1 on a FAIL, an ERROR or a control that "
    "did not FAIL; 2 on bad usage; 32 when nothing could be checked here (every check SKIPped; "
    "one line on stderr says why) and, with --strict, when any check SKIPped.",
}
SIGNALS = {
    "run": "While the command runs, SIGINT, SIGTERM and SIGQUIT sent to nsprim are held: the "
    "command decides (a terminal's ^C reaches it directly). nsprim then exits with the "
    "command's status, as unshare --fork does.",
    "conformance": "SIGINT, SIGTERM and SIGHUP stop the run: every sandbox is killed and the "
    "run's temporary directory removed; nsprim exits 128+N.",
    "enter": "nsenter without a pid namespace becomes the command, so a signal sent to its "
    "pid reaches the command. nsprim forks unless -F: it passes SIGTERM and SIGHUP on to the "
    "command and holds SIGINT and SIGQUIT (a terminal sends those to the command directly). "
    "With -F nsprim becomes the command, as nsenter does.",
}
SEE_ALSO = {
    "nsprim": ["nsprim-run(1)", "nsprim-enter(1)", "nsprim-ls(1)", "nsprim-check(1)",
               "nsprim-conformance(1)", "namespaces(7)"],
    "run": ["unshare(1)", "nsprim-enter(1)", "namespaces(7)", "user_namespaces(7)"],
    "enter": ["nsenter(1)", "nsprim-run(1)", "setns(2)", "pidfd_open(2)"],
    "ls": ["lsns(8)", "scols-filter(5)", "listns(2)", "namespaces(7)"],
    "check": ["nsprim-conformance(1)", "namespaces(7)"],
    "conformance": ["nsprim-check(1)", "namespaces(7)"],
}  # fmt: skip


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Return ``{"nsprim": top, "run": ..., "conformance": ...}``, the parsers users meet."""
    top = build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    out: dict[str, argparse.ArgumentParser] = {"nsprim": top}
    for name in COMMANDS:
        out[name] = sub.choices[name]
    suite = importlib.import_module("nsprim.conformance.cli")
    out["conformance"] = suite.build_parser(prog="nsprim conformance")
    return out


def _help_of(top: argparse.ArgumentParser, name: str) -> str:
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for choice in sub._choices_actions:
        if choice.dest == name:
            return choice.help or ""
    return ""


def _summary(top: argparse.ArgumentParser, name: str) -> str:
    return re.sub(r" \(see '[^)]*'\)\Z", "", _help_of(top, name))


def _esc(text: str) -> str:
    """Escape text for troff: backslashes, hyphens, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"(?m)^([.'])", r"\\&\1", text)


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar) if not isinstance(action.metavar, tuple) else action.metavar[0]
    if action.choices:
        return "|".join(str(c) for c in action.choices)
    return action.dest.upper()


def _explicit(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._explicit_only) if isinstance(parser, Parser) else set()


def _option_head(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    names = ", ".join(f"\\fB{_esc(o)}\\fR" for o in action.option_strings)
    if action.nargs == 0:
        return names
    mv = f"\\fI{_esc(_metavar(action))}\\fR"
    if set(action.option_strings) & _explicit(parser):
        return f"{names}[=\\fR{mv}]"
    if action.nargs == "?":
        return f"{names} [{mv}]"
    if action.nargs in ("+", "*"):
        return f"{names} {mv}..."
    return f"{names} {mv}"


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    return formatter._expand_help(action) if action.help else ""


def _synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    prog = "nsprim" if name == "nsprim" else f"nsprim {name}"
    parts = [f".B {prog}"]
    if name == "nsprim":
        parts.append("\\fICOMMAND\\fR [\\fIOPTIONS\\fR]")
        return "\n".join(parts)
    parts.append("[\\fIOPTIONS\\fR]")
    for a in parser._actions:
        if not a.option_strings and a.help is not argparse.SUPPRESS:
            if a.nargs == argparse.REMAINDER:
                parts.append("[\\fB\\-\\-\\fR] [\\fICOMMAND\\fR [\\fIARG\\fR...]]")
            else:
                parts.append(f"\\fI{_esc(_metavar(a))}\\fR")
    return " ".join(parts[:1]) + "\n" + " ".join(parts[1:])


def page(name: str, parser: argparse.ArgumentParser, summary: str) -> str:
    """Return the man page (troff, man macros) of *name* ("nsprim" or a subcommand)."""
    title = "nsprim" if name == "nsprim" else f"nsprim-{name}"
    lines = [
        f'.TH {title.upper()} 1 "" "nsprim {__version__}" "User Commands"',
        ".SH NAME",
        f"{_esc(title)} \\- {_esc(summary)}",
        ".SH SYNOPSIS",
        _synopsis(name, parser),
        ".SH DESCRIPTION",
        _esc(parser.description or summary),
    ]
    if name == "nsprim":
        lines.append(".SH COMMANDS")
        for cmd in (*COMMANDS, "conformance"):
            lines += [".TP", f"\\fB{cmd}\\fR", _esc(_summary(parser, cmd)) + ";"]
            lines.append(f"see \\fBnsprim\\-{cmd}\\fR(1).")
    lines.append(".SH OPTIONS")
    for a in parser._actions:
        if not a.option_strings or a.help is argparse.SUPPRESS:
            continue
        lines += [".TP", _option_head(a, parser), _esc(_help(a, parser))]
    for a in parser._actions:
        if a.option_strings or a.help is argparse.SUPPRESS or a.dest == "command":
            continue
        lines += [".TP", f"\\fI{_esc(_metavar(a))}\\fR", _esc(_help(a, parser))]
    if name in ("run", "enter"):
        lines += [".TP", "\\fB\\-\\-\\fR \\fICOMMAND\\fR [\\fIARG\\fR...]"]
        lines.append("The program to run (default: $SHELL, else /bin/sh).")
    if name in SIGNALS:
        lines += [".SH SIGNALS", _esc(SIGNALS[name])]
    lines += [".SH EXIT STATUS", _esc(EXIT_STATUS[name])]
    lines += [
        ".SH DIAGNOSTICS",
        _esc(
            f"Errors are one line, '{'nsprim' if name == 'nsprim' else 'nsprim ' + name}: "
            "message', in util-linux's form; a usage error adds a line naming --help."
        ),
    ]
    if name in ("ls", "check"):
        lines += [
            ".SH ENVIRONMENT",
            ".TP",
            "\\fBNO_COLOR\\fR",
            "When set (to anything but the empty string), tables are never coloured. "
            "Without it they are coloured only on a terminal.",
        ]
    lines += [".SH SEE ALSO", ",\n".join(_see(s) for s in SEE_ALSO[name])]
    return "\n".join(lines) + "\n"


def _see(ref: str) -> str:
    m = re.match(r"(.*)\((\d)\)\Z", ref)
    assert m, ref
    return f".BR {_esc(m.group(1))} ({m.group(2)})"


def pages() -> dict[str, str]:
    """Return ``{file name: troff text}`` for every page."""
    ps = parsers()
    top = ps["nsprim"]
    out = {"nsprim.1": page("nsprim", top, DESCRIPTION.rstrip("."))}
    for name, parser in ps.items():
        if name != "nsprim":
            out[f"nsprim-{name}.1"] = page(name, parser, _summary(top, name))
    return out


def _words(action: argparse.Action) -> Optional[str]:
    """The bash `compgen` arguments that complete this option's value, if any."""
    mv = _metavar(action)
    if action.choices:
        return "-W '" + " ".join(str(c) for c in action.choices) + "'"
    if mv == "TYPE":
        return "-W '" + " ".join(NS_TYPES) + "'"
    if mv == "DIR":
        return "-d"
    if mv in ("FILE", "PATH") or mv.endswith(".json"):
        return "-f"
    if mv == "UID|NAME" or mv == "USER":
        return "-u"
    if mv == "GID|NAME" or mv == "GROUP":
        return "-g"
    if "|" in mv:
        return "-W '" + mv.replace("|", " ") + "'"
    return None


def completion() -> str:
    """Return the bash completion script (``complete -F _nsprim nsprim``)."""
    ps = parsers()
    cases = []
    for name, parser in ps.items():
        if name == "nsprim":
            continue
        opts: list[str] = []
        values: list[str] = []
        takes: list[str] = []
        for a in parser._actions:
            if not a.option_strings or a.help is argparse.SUPPRESS:
                continue
            explicit = bool(set(a.option_strings) & _explicit(parser))
            opts += [o + ("=" if explicit and o.startswith("--") else "") for o in a.option_strings]
            if a.nargs == 0 or explicit:
                continue
            pattern = "|".join(a.option_strings)
            words = _words(a)
            if _metavar(a) in ("PID", "PID[:INODE]"):
                values.append(f"            {pattern}) _nsprim_pids; return ;;")
            elif words is not None:
                values.append(
                    f'            {pattern}) COMPREPLY=($(compgen {words} -- "$cur")); return ;;'
                )
            else:
                takes.append(pattern)
        if takes:
            values.append(f"            {'|'.join(takes)}) return ;;")
        runs = name in ("run", "enter")
        cases.append(
            f"        {name})\n"
            + (
                "            if ((dashdash)); then\n"
                "                if ((dashdash == COMP_CWORD - 1)); then\n"
                '                    COMPREPLY=($(compgen -c -- "$cur"))\n'
                "                else\n"
                '                    COMPREPLY=($(compgen -f -- "$cur"))\n'
                "                fi\n"
                "                return\n"
                "            fi\n"
                if runs
                else ""
            )
            + '            case "$prev" in\n'
            + "\n".join(values)
            + ("\n" if values else "")
            + "            esac\n"
            + f"            COMPREPLY=($(compgen -W '{' '.join(opts)}' -- \"$cur\"))\n"
            + "            [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace\n"
            + "            ;;"
        )
    commands = " ".join((*COMMANDS, "conformance"))
    return f"""# bash completion for nsprim {__version__} (generated by nsprim.cli.manpages)
_nsprim_pids() {{
    COMPREPLY=($(compgen -W "$(cd /proc && printf '%s ' [0-9]*)" -- "$cur"))
}}

_nsprim() {{
    local cur prev cmd="" dashdash=0 i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ -z $cmd ]]; then
            case "${{COMP_WORDS[i]}}" in
                {"|".join((*COMMANDS, "conformance"))}) cmd="${{COMP_WORDS[i]}}" ;;
            esac
        elif [[ ${{COMP_WORDS[i]}} == -- && $dashdash == 0 ]]; then
            dashdash=$i
        fi
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W '{commands} --help --version' -- "$cur"))
        return
    fi
    case "$cmd" in
{chr(10).join(cases)}
    esac
}}
complete -F _nsprim nsprim
"""


def write(outdir: str, completion_dir: Optional[str] = None) -> list[str]:
    """Write every page into *outdir* and ``nsprim`` into *completion_dir* (or *outdir*)."""
    comp_dir = completion_dir or outdir
    files = [(outdir, n, t) for n, t in pages().items()] + [(comp_dir, "nsprim", completion())]
    written = []
    for folder, fname, text in files:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, fname)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        written.append(path)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m nsprim.cli.manpages OUTDIR [COMPLETION_DIR]``: write pages and completion.

    The package's own copies: ``python -m nsprim.cli.manpages nsprim/cli/man
    nsprim/cli/completion``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2 or any(a.startswith("-") for a in args):
        print("usage: python -m nsprim.cli.manpages OUTDIR [COMPLETION_DIR]", file=sys.stderr)
        return 1
    try:
        for path in write(*args):
            print(path)
    except OSError as err:
        print(f"nsprim.cli.manpages: {args[0]}: {err.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
