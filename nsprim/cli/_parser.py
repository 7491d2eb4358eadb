"""The argparse side of the ``nsprim`` command: util-linux's errors, help and option forms.

Layer 4, private. Imported only when a command line needs argparse (help,
an error, options :mod:`nsprim.cli._fast` does not parse, and the commands
other than ``run`` and ``enter``): argparse and the re, gettext and locale
it loads cost more than ``nsprim run``'s whole spawn. ``nsprim.cli``
re-exports :class:`Parser`, :func:`build_parser` and :func:`command_parser`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, Optional

from .. import __version__
from . import COMMANDS, DESCRIPTION, EXIT_USAGE, UsageError

__all__ = ["Parser", "build_parser", "command_parser"]


class Parser(argparse.ArgumentParser):
    """argparse with util-linux's errors, and options whose value is only ``--opt=VALUE``.

    An option added with :meth:`add_explicit_only` never takes the next word
    as its value, as getopt's ``optional_argument`` does: ``--kill-child sh
    -c ...`` leaves ``sh`` to the command.
    """

    def __init__(self, *args: Any, usage_status: int = EXIT_USAGE, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self.usage_status = usage_status
        self._argv: list[str] = []
        self._explicit_only: dict[str, str] = {}  # option string -> its const
        self._short_bare: set[str] = set()  # short options that never take a value

    def add_explicit_only(
        self, *names: str, const: str, short_bare: bool = False, **kwargs: Any
    ) -> argparse.Action:
        """Add an option taking an optional value that must be attached (``--opt=VALUE``).

        With *short_bare* the short form takes no value at all, as an option
        that getopt's short string lists without a colon (unshare's ``-n``
        next to ``--net[=FILE]``): ``-nu`` is ``-n -u``.
        """
        action = self.add_argument(*names, nargs="?", const=const, **kwargs)
        for name in names:
            self._explicit_only[name] = const
            if short_bare and not name.startswith("--"):
                self._short_bare.add(name)
        return action

    def _attached(self, text: str) -> str:
        # argparse shows nargs="?" as "--opt [VALUE]"; getopt's help says "--opt[=VALUE]".
        for a in self._actions:
            if set(a.option_strings) & set(self._explicit_only):
                mv = a.metavar or a.dest.upper()
                for opt in a.option_strings:
                    if opt in self._short_bare:  # "-n, --net[=FILE]"; usage "[-n]"
                        text = text.replace(f"[{opt} [{mv}]]", f"[{opt}]")
                        text = text.replace(f"{opt} [{mv}], ", f"{opt}, ")
                    text = text.replace(f"{opt} [{mv}]", f"{opt}[={mv}]")
        return text

    def format_usage(self) -> str:
        return self._attached(super().format_usage())

    def format_help(self) -> str:
        return self._attached(super().format_help())

    def parse_args(  # type: ignore[override]
        self, args: Optional[Sequence[str]] = None, namespace: Optional[argparse.Namespace] = None
    ) -> argparse.Namespace:
        self._argv = list(sys.argv[1:] if args is None else args)
        ns, extras = self.parse_known_args(self._attach(self._argv), namespace)
        if extras:
            target = self
            command = getattr(ns, "command", None)
            sub = self._subparsers_action()
            if sub is not None and command in sub.choices:
                target = sub.choices[command]
                target._argv = self._argv[self._argv.index(command) + 1 :]
            target.error(_unrecognized(extras[0], target))
        return ns

    def _attach(self, words: list[str]) -> list[str]:
        """Give each bare explicit-only option its const (``--kill-child=KILL``)."""
        if not self._explicit_only:
            return words
        out = list(words)
        i = 0
        while i < len(out):
            word = out[i]
            if word == "--" or not word.startswith("-") or word == "-":
                break  # the command starts here
            if word.startswith("--"):
                name, eq, _ = word.partition("=")
                matches = [o for o in self._option_string_actions if o.startswith(name)]
                exact = name if name in self._option_string_actions else None
                option = exact or (matches[0] if len(matches) == 1 else None)
                if option in self._explicit_only and not eq:
                    out[i] = f"{option}={self._explicit_only[option]}"
                elif option is not None and not eq and self._takes_value(option):
                    i += 1
            else:
                # a cluster of short flags; the last may take the next word
                for j, c in enumerate(word[1:], 1):
                    option = "-" + c
                    if option in self._short_bare:
                        # its const, alone; the rest of the cluster goes on
                        head = [word[:j]] if j > 1 else []
                        tail = [f"-{word[j + 1 :]}"] if j < len(word) - 1 else []
                        out[i : i + 1] = [*head, f"{option}={self._explicit_only[option]}", *tail]
                        i += len(head)
                        break
                    if option in self._explicit_only:
                        if j == len(word) - 1:  # bare: its const, the cluster split before it
                            head = [word[:-1]] if j > 1 else []
                            out[i : i + 1] = [*head, f"{option}={self._explicit_only[option]}"]
                            i += len(head)
                        break  # else the rest of the word is its value, as getopt has it
                    if option in self._option_string_actions and self._takes_value(option):
                        if j == len(word) - 1:
                            i += 1
                        break
            i += 1
        return out

    def _takes_value(self, option: str) -> bool:
        return self._option_string_actions[option].nargs not in (0, "?")

    def _subparsers_action(self) -> Optional[argparse._SubParsersAction[Parser]]:
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                return a
        return None

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, _translate(message, self), self.usage_status)


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without ``shutil`` (and its zlib/bz2/lzma imports).

    argparse builds a formatter for every ``add_argument``; its default width
    comes from ``shutil.get_terminal_size``, which costs more to import than
    the whole parser. Same rule here: ``$COLUMNS``, else the terminal, else 80.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: Optional[int] = None,
    ) -> None:
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS", ""))
            except ValueError:
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
                except (AttributeError, OSError, ValueError):
                    width = 80
            width -= 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _typed(option_strings: Sequence[str], parser: Parser) -> str:
    """The spelling of the option the user typed (getopt's messages quote it)."""
    for word in reversed(parser._argv):
        name = word.split("=", 1)[0]
        for opt in option_strings:
            if name == opt or (name.startswith("--") and len(name) > 2 and opt.startswith(name)):
                return name
            if not name.startswith("--") and name.startswith("-") and opt[1:] in name[1:]:
                return opt
    return option_strings[-1]


def _unrecognized(word: str, parser: Parser) -> str:
    if word.startswith("--"):
        return f"unrecognized option '{word}'"
    if word.startswith("-") and len(word) > 1:
        known = {s[1] for a in parser._actions for s in a.option_strings if len(s) == 2}
        bad = next((c for c in word[1:] if c not in known), word[1])
        return f"invalid option -- '{bad}'"
    return f"unexpected argument '{word}'"


def _translate(message: str, parser: Parser) -> str:
    """Rewrite an argparse message in getopt/util-linux words."""
    m = re.match(r"argument (\S+): (.*)\Z", message, re.S)
    if m:
        names = m.group(1).split("/")
        inner = m.group(2)
        if names == ["COMMAND"] or names == ["command"]:
            bad = re.match(r"invalid choice: '(.*)' \(choose from", inner, re.S)
            return f"unknown command '{bad.group(1)}'" if bad else inner
        opt = _typed(names, parser)
        if inner.startswith("expected") and "argument" in inner:
            if opt.startswith("--"):
                return f"option '{opt}' requires an argument"
            return f"option requires an argument -- '{opt[1:]}'"
        ignored = re.match(r"ignored explicit argument '(.*)'\Z", inner, re.S)
        if ignored:
            if opt.startswith("--"):
                return f"option '{opt}' doesn't allow an argument"
            return f"invalid option -- '{ignored.group(1)[:1]}'"
        choice = re.match(r"invalid choice: '(.*)' \(choose from (.*)\)\Z", inner, re.S)
        if choice:
            options = choice.group(2).replace("'", "")
            return f"{opt}: unsupported argument '{choice.group(1)}' (choose from {options})"
        value = re.match(r"invalid \w+ value: '(.*)'\Z", inner, re.S)
        if value:
            return f"{opt}: invalid argument '{value.group(1)}'"
        other = re.match(r"not allowed with argument (\S+)\Z", inner)
        if other:
            return f"options {opt} and {other.group(1)} are mutually exclusive"
        return inner  # a type function's own message, already in util-linux's words
    m = re.match(r"ambiguous option: (\S+) could match (.*)\Z", message, re.S)
    if m:
        choices = " ".join(f"'{c.strip()}'" for c in m.group(2).split(","))
        return f"option '{m.group(1).split('=')[0]}' is ambiguous; possibilities: {choices}"
    m = re.match(r"the following arguments are required: (.*)\Z", message, re.S)
    if m:
        if m.group(1) in ("COMMAND", "command"):
            return "no command specified"
        return f"missing option {m.group(1).split(', ')[0]}"
    if message.startswith("unrecognized arguments: "):
        return _unrecognized(message.split(": ", 1)[1].split(" ")[0], parser)
    return message


def _top_parser() -> Parser:
    parser = Parser(prog="nsprim", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"nsprim {__version__}")
    return parser


def _add_subparsers(parser: Parser) -> argparse._SubParsersAction[Parser]:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    return sub


def _add_command(sub: argparse._SubParsersAction[Parser], name: str) -> Parser:
    import importlib

    module_name, add_name, handler_name, status = COMMANDS[name]
    module = importlib.import_module(f".{module_name}", __package__)
    getattr(module, add_name)(sub)
    p = sub.choices[name]
    # util-linux's tools all take -V/--version
    p.add_argument("-V", "--version", action="version", version=f"nsprim {__version__}")
    p.usage_status = status
    p.set_defaults(func=getattr(module, handler_name))
    return p


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand (for help, man pages, completion)."""
    from .conformance import add_conformance_parser

    parser = _top_parser()
    sub = _add_subparsers(parser)
    for name in COMMANDS:
        _add_command(sub, name)
    add_conformance_parser(sub)
    return parser


def command_parser(name: str) -> Parser:
    """Return the parser of subcommand *name* alone (``prog`` is ``nsprim NAME``)."""
    return _add_command(_add_subparsers(_top_parser()), name)
