"""``nsprim ls -Q``: libsmartcols' filter language (scols-filter(5)) on one fixed row."""

from __future__ import annotations

import pytest

from nsprim.cli._filter import Filter, FilterError

COLUMNS = {"NS": True, "TYPE": False, "NPROCS": True, "PID": True, "COMMAND": False,
           "NETNSID": False, "NSFS": False}  # fmt: skip
ROW = {"NS": 4026531840, "TYPE": "net", "NPROCS": 3, "PID": 1, "COMMAND": "systemd --user",
       "NETNSID": None, "NSFS": ""}  # fmt: skip


def match(expr: str) -> bool:
    return Filter(expr, COLUMNS).match(ROW.get)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('TYPE == "net"', True), ("TYPE == 'uts'", False), ('TYPE eq "net"', True),
        ('TYPE != "uts"', True), ("NPROCS > 2", True), ("NPROCS >= 4", False),
        ("NPROCS lt 4", True), ("NPROCS LE 3", True), ("NPROCS GT 3", False),
        # numbers compare as numbers; the literal's type wins (a float over an integer)
        ("PID == 1.0", True), ('PID == "1"', True), ("NS > 4K", True), ("NS > 4G", False),
        ("NS > 3GiB", True),
        # a holder alone: true when not empty
        ("PID", True), ("NETNSID", False), ("NSFS", False), ("!NETNSID", True),
        # an empty cell: comparisons false, != true
        ('NETNSID == "0"', False), ('NETNSID != "0"', True),
        # regular expressions (a string literal on the right)
        ('COMMAND =~ "^sys"', True), ('COMMAND !~ "^sys"', False), ('COMMAND =~ "--user$"', True),
        # ! binds tighter than the comparisons' level only through parentheses
        ("!(PID == 1)", False), ("not (PID == 2)", True),
        # and/or share one precedence level and group from the left (libsmartcols' bison file)
        ('TYPE == "net" || TYPE == "uts" && PID > 5', False),
        ('TYPE == "net" || (TYPE == "uts" && PID > 5)', True),
        ("PID == 1 AND NPROCS == 3 OR PID == 7", True), ("true", True), ("false", False),
        ("PID == 1 and true", True),
    ],
)  # fmt: skip
def test_expressions(expr: str, expected: bool) -> None:
    assert match(expr) is expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("PID ==", "syntax error, unexpected end of file"),
        ("", "syntax error, unexpected end of file"),
        ("(PID", "syntax error, unexpected end of file"),
        ("PID == 1)", "syntax error, unexpected ')'"),
        ("PID 1", "syntax error, unexpected NUMBER"),
        ("PID @ 1", "syntax error, unexpected character '@'"),
        ("== 1", "syntax error, unexpected EQ"),
        ("COMMAND =~ PID", "regular expression must be a string"),
        ('COMMAND =~ "("', "regular expression error"),
        ("99999999999999999999Y", '"99999999999999999999Y" number too large'),
        ("BOGUS", "unknown column: BOGUS"),
        ("x" * 1025, "expression longer than 1024 bytes"),
    ],
)
def test_errors(expr: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        Filter(expr, COLUMNS)
    assert str(info.value).startswith(message)


def test_lowercase_column_names_are_columns() -> None:
    assert match('type == "net"')
