"""IdMapping/IdMap validation: every rule the kernel's map_write() applies, checked before any write."""

from __future__ import annotations

import pytest

from nsprim.idmap import MAX_EXTENTS, IdMap, IdMapping, write_setgroups, write_uid_map


def test_idmapping_formats_one_line() -> None:
    assert IdMapping(0, 1000, 1).format() == "0 1000 1"


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((-1, 0, 1), ValueError, r"inside must be an id from 0 to 4294967294, got -1"),
        ((0, 4294967295, 1), ValueError, r"outside must be an id .* got 4294967295"),
        ((0, 0, 0), ValueError, r"count must be at least 1, got 0"),
        ((1, 0, 4294967295), ValueError, r"inside range 1\.\.4294967295 runs past 4294967294"),
        (("0", 0, 1), TypeError, r"inside must be an int, got str '0'"),
        ((True, 0, 1), TypeError, r"inside must be an int, got bool True"),
    ],
)
def test_idmapping_rejects_bad_values(args: tuple[object, ...], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        IdMapping(*args)  # type: ignore[arg-type]


def test_idmapping_accepts_the_initial_namespace_map() -> None:
    # /proc/1/uid_map in the initial user namespace: the whole u32 range but -1.
    assert IdMap.parse("0 0 4294967295\n").mappings == (IdMapping(0, 0, 4294967295),)


def test_idmap_rejects_overlap_inside() -> None:
    with pytest.raises(ValueError, match=r"overlap on the inside side: '0 1000 10' and '5 5000 1'"):
        IdMap((IdMapping(0, 1000, 10), IdMapping(5, 5000, 1)))


def test_idmap_rejects_overlap_outside() -> None:
    with pytest.raises(ValueError, match=r"overlap on the outside side"):
        IdMap((IdMapping(0, 1000, 10), IdMapping(100, 1009, 1)))


def test_idmap_accepts_adjacent_extents() -> None:
    m = IdMap((IdMapping(0, 1000, 10), IdMapping(10, 1010, 10)))
    assert m.to_outside(10) == 1010 and m.to_inside(1009) == 9 and m.to_outside(20) is None


def test_idmap_rejects_more_than_340_extents() -> None:
    ok = IdMap(tuple(IdMapping(i, 1000 + i, 1) for i in range(MAX_EXTENTS)))
    assert len(ok) == 340
    with pytest.raises(ValueError, match=r"at most 340 extents .* got 341"):
        IdMap(tuple(IdMapping(i, 1000 + i, 1) for i in range(MAX_EXTENTS + 1)))


def test_idmap_rejects_empty_and_wrong_types() -> None:
    with pytest.raises(ValueError, match="at least one extent"):
        IdMap(())
    with pytest.raises(TypeError, match=r"mappings\[0\] must be an IdMapping, got tuple"):
        IdMap(((0, 0, 1),))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "match"),
    [("0 1000\n", r"line 1 must be 'inside outside count', got '0 1000'"), ("a b c", "line 1")],
)
def test_idmap_parse_rejects_malformed_lines(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IdMap.parse(text)


def test_idmap_coerce_accepts_every_spelling() -> None:
    want = IdMap.single(0, 1000)
    assert IdMap.coerce("0 1000 1") == want
    assert IdMap.coerce([(0, 1000, 1)]) == want
    assert IdMap.coerce(IdMapping(0, 1000, 1)) == want
    assert IdMap.coerce(want) is want
    with pytest.raises(TypeError, match=r"uid_map must be an IdMap, IdMapping, str or a sequence"):
        IdMap.coerce(5, "uid_map")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"uid_map: each extent must be \(inside, outside, count\)"
    ):
        IdMap.coerce([(0, 1)], "uid_map")


def test_write_functions_validate_before_touching_proc() -> None:
    # pid 1 exists, so a write would reach the kernel: validation must stop it first.
    with pytest.raises(ValueError, match="setgroups must be 'allow' or 'deny', got 'maybe'"):
        write_setgroups(1, "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap"):
        write_uid_map(1, "0 0 10\n5 100 1\n")
    with pytest.raises(ValueError, match="pid must be a positive process id, got 0"):
        write_uid_map(0, "0 0 1")
