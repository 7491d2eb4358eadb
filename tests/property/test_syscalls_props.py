"""Hypothesis properties of the flag types and the bindings' validation."""

from __future__ import annotations

import os
import socket

import pytest
from forked import in_child
from hypothesis import given
from hypothesis import strategies as st

from nsprim import syscalls as S
from nsprim.flags import NAMESPACE_FLAGS, CloneFlags, MountFlags
from nsprim.namespace import NsType

NS_FLAGS = [t.flag for t in NsType]


@given(st.sets(st.sampled_from(NS_FLAGS)))
def test_any_combination_of_namespace_flags_round_trips(chosen: set[CloneFlags]) -> None:
    value = 0
    for f in chosen:
        value |= int(f)
    flags = CloneFlags(value)
    assert int(flags) == value
    assert {t for t in NsType if t.flag & flags} == {NsType.parse(int(f)) for f in chosen}
    assert value & ~NAMESPACE_FLAGS == 0


@given(st.integers())
def test_unshare_refuses_every_non_namespace_bit_before_the_kernel(value: int) -> None:
    allowed = int(CloneFlags.UNSHARE_ALL) | int(
        CloneFlags.THREAD | CloneFlags.SIGHAND | CloneFlags.VM
    )
    if value >= 0 and value & ~allowed == 0:
        return  # valid: not this property's business (it would really unshare)
    with pytest.raises(ValueError, match=r"^flags must be a combination of CLONE_NEW\*"):
        S.unshare(value)


@given(st.integers().filter(lambda v: v < 0 or v & ~NAMESPACE_FLAGS))
def test_setns_refuses_non_namespace_nstype(value: int) -> None:
    with pytest.raises(ValueError, match=r"^nstype must be a combination of CLONE_NEW\* flags"):
        S.setns(0, value)


@given(st.one_of(st.floats(), st.text(), st.none(), st.booleans(), st.lists(st.integers())))
def test_bindings_refuse_wrong_types_with_type_error(value: object) -> None:
    for fn in (S.unshare, S.pidfd_open, S.set_pdeathsig):
        with pytest.raises(TypeError):
            fn(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        S.setns(value)  # type: ignore[arg-type]


@given(st.binary(max_size=64).filter(lambda b: b"\0" not in b))
def test_hostnames_up_to_64_bytes_pass_validation(name: bytes) -> None:
    assert S._name(name, "name", S.HOST_NAME_MAX) == name


@given(st.binary(min_size=65, max_size=300))
def test_hostnames_over_64_bytes_are_refused(name: bytes) -> None:
    with pytest.raises(ValueError, match="name must"):
        S.sethostname(name)


@given(st.builds(lambda a, b: a + "\0" + b, st.text(max_size=30), st.text(max_size=30)))
def test_names_with_nul_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        S.sethostname(name)


@given(st.integers().filter(lambda v: v < 0 or v & ~sum(int(m) for m in MountFlags)))
def test_mount_refuses_unknown_flag_bits(value: int) -> None:
    with pytest.raises(ValueError, match=r"^flags must be a combination of MS_\* flags"):
        S.mount("none", "/nonexistent-nsprim", "tmpfs", value)


def _kernel_accepts_lengths() -> list[tuple[int, str]]:
    S.unshare(CloneFlags.NEWUTS)
    out = []
    for n in (0, 1, 63, 64):
        S.sethostname("h" * n)
        out.append((n, socket.gethostname()))
    return out


@pytest.mark.needs_root
def test_the_kernel_agrees_on_the_64_byte_limit() -> None:
    got = in_child(_kernel_accepts_lengths)
    assert got == [(n, "h" * n) for n in (0, 1, 63, 64)]
    assert socket.gethostname() == os.uname().nodename
