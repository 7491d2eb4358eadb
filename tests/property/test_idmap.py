"""Hypothesis: valid id maps round-trip through their file text; invalid ones never reach a syscall."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from nsprim.idmap import MAX_EXTENTS, IdMap, IdMapping

ID_MAX = 0xFFFFFFFE


@st.composite
def valid_maps(draw: st.DrawFn) -> IdMap:
    """Disjoint extents on both sides: the outside ranges are laid out in a shuffled order."""
    n = draw(st.integers(1, 12))
    counts = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n))
    gaps = draw(st.lists(st.integers(0, 10**6), min_size=2 * n, max_size=2 * n))
    inside, pos = [], 0
    for i in range(n):
        pos += gaps[i]
        inside.append(pos)
        pos += counts[i]
    outside = [0] * n
    pos = 0
    for k, i in enumerate(draw(st.permutations(range(n)))):
        pos += gaps[n + k]
        outside[i] = pos
        pos += counts[i]
    return IdMap(tuple(IdMapping(inside[i], outside[i], counts[i]) for i in range(n)))


@given(valid_maps())
def test_idmap_text_round_trips(m: IdMap) -> None:
    assert IdMap.parse(m.format()) == m
    assert IdMap.coerce([(x.inside, x.outside, x.count) for x in m]) == m


@given(valid_maps(), st.data())
def test_idmap_lookup_is_an_inverse_pair(m: IdMap, data: st.DataObject) -> None:
    ext = data.draw(st.sampled_from(m.mappings))
    i = data.draw(st.integers(ext.inside, ext.inside + ext.count - 1))
    out = m.to_outside(i)
    assert out is not None and m.to_inside(out) == i


@given(st.integers(0, ID_MAX), st.integers(0, ID_MAX), st.integers(1, 1000), st.integers(0, 999))
def test_overlapping_extents_are_rejected(a: int, b: int, count: int, shift: int) -> None:
    a, b = min(a, ID_MAX - 10_000), min(b, ID_MAX - 10_000)
    shift %= count
    try:
        IdMap((IdMapping(a, b, count), IdMapping(a + shift, b + count + 5000, 1)))
    except ValueError as err:
        assert "overlap on the inside side" in str(err)
    else:
        raise AssertionError("inside overlap accepted")


@settings(max_examples=25)
@given(st.integers(MAX_EXTENTS + 1, MAX_EXTENTS + 50))
def test_too_many_extents_fail_before_any_syscall(n: int) -> None:
    import nsprim.process as process

    kids_before = set(os.listdir("/proc"))
    try:
        process.spawn(["/bin/true"], uid_map=[(i, i, 1) for i in range(n)])
    except ValueError as err:
        assert f"got {n}" in str(err)
    else:
        raise AssertionError("341+ extents accepted")
    # Nothing was started: no child of ours appeared.
    assert not [p for p in set(os.listdir("/proc")) - kids_before if _is_child(p)]


def _is_child(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[1] == str(os.getpid()).encode()
