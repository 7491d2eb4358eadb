"""nsprim.flags makes its classes other than CloneFlags on first use, unchanged.

``nsprim run`` loads only CloneFlags; MountFlags and the others come from
``nsprim._lazyflags`` when first named, as the same public classes (name,
module, pickling), and the masks syscalls spells from the constants (its
child mounts without the enums) are exactly the enums' bits.
"""

from __future__ import annotations

import functools
import operator
import os
import pickle
import subprocess
import sys

import nsprim
from nsprim import flags, syscalls
from nsprim._sys import consts as C

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAZY = ("MountFlags", "UmountFlags", "MountAttrFlags", "PidfdFlags", "Propagation", "Ioctl")


def _bits(cls: type) -> int:
    return functools.reduce(operator.or_, (int(m) for m in cls.__members__.values()), 0)


def test_the_masks_are_the_enums_bits() -> None:
    assert _bits(flags.MountFlags) == syscalls._MS_ALL
    assert _bits(flags.UmountFlags) == syscalls._UMOUNT_ALL
    assert _bits(flags.MountAttrFlags) | C.MOUNT_ATTR__ATIME == syscalls._ATTR_ALL
    assert {int(p) for p in flags.Propagation} == syscalls._PROPAGATIONS


def test_the_lazy_classes_are_the_public_ones() -> None:
    from nsprim.flags import MountFlags

    for name in LAZY:
        cls = getattr(flags, name)
        assert cls.__module__ == "nsprim.flags" and cls.__qualname__ == name
        assert name in flags.__all__ and name in dir(flags)
    assert MountFlags is flags.MountFlags is nsprim.MountFlags
    assert pickle.loads(pickle.dumps(MountFlags.BIND | MountFlags.REC)) == C.MS_BIND | C.MS_REC
    assert pickle.loads(pickle.dumps(flags.Propagation.SHARED)) is flags.Propagation.SHARED
    assert repr(MountFlags.BIND) == "<MountFlags.BIND: 4096>"


def test_a_spawn_makes_no_lazy_class() -> None:
    # Fresh interpreter: the process API and a plain spawn leave them unmade;
    # naming one makes it; preload() makes them all.
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); import nsprim.process, nsprim.flags as f; "
        "a = '_lazyflags' in vars(nsprim) or 'nsprim._lazyflags' in sys.modules; "
        "import nsprim.cli.run, nsprim.listing, nsprim.namespace; "
        "b = 'nsprim._lazyflags' in sys.modules; "
        "f.UmountFlags.DETACH; c = 'nsprim._lazyflags' in sys.modules; "
        "print(a, b, c, 'MountFlags' in vars(f))"
    )
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False", "True", "False"], r.stderr
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); import nsprim.process; "
        "nsprim.process.preload(); print('nsprim._lazyflags' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["True"], r.stderr


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    try:
        flags.NoSuchFlags  # noqa: B018
    except AttributeError as err:
        assert "NoSuchFlags" in str(err)
    else:
        raise AssertionError("flags.NoSuchFlags did not raise")
