"""ctypes mirrors of the kernel structures nsprim passes to syscalls.

Layer 0: standard library only. Field names keep their C spelling; sizes are
asserted against the UAPI ``*_SIZE_VER*`` constants at import, so a layout
mistake fails loudly instead of corrupting a syscall argument.
"""

from __future__ import annotations

import ctypes

__all__ = [
    "CLONE_ARGS_SIZE_VER0",
    "CLONE_ARGS_SIZE_VER1",
    "CLONE_ARGS_SIZE_VER2",
    "MOUNT_ATTR_SIZE_VER0",
    "CloneArgs",
    "CapUserHeader",
    "CapUserData",
    "LINUX_CAPABILITY_VERSION_3",
    "MountAttr",
]

CLONE_ARGS_SIZE_VER0 = 64  # Linux 5.3
CLONE_ARGS_SIZE_VER1 = 80  # Linux 5.5: set_tid, set_tid_size
CLONE_ARGS_SIZE_VER2 = 88  # Linux 5.7: cgroup
MOUNT_ATTR_SIZE_VER0 = 32  # Linux 5.12


class CloneArgs(ctypes.Structure):
    """``struct clone_args`` from <linux/sched.h> (clone3(2))."""

    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("pidfd", ctypes.c_uint64),
        ("child_tid", ctypes.c_uint64),
        ("parent_tid", ctypes.c_uint64),
        ("exit_signal", ctypes.c_uint64),
        ("stack", ctypes.c_uint64),
        ("stack_size", ctypes.c_uint64),
        ("tls", ctypes.c_uint64),
        ("set_tid", ctypes.c_uint64),
        ("set_tid_size", ctypes.c_uint64),
        ("cgroup", ctypes.c_uint64),
    ]


class MountAttr(ctypes.Structure):
    """``struct mount_attr`` from <linux/mount.h> (mount_setattr(2))."""

    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class CapUserHeader(ctypes.Structure):
    """``struct __user_cap_header_struct`` from <linux/capability.h> (capget(2))."""

    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapUserData(ctypes.Structure):
    """``struct __user_cap_data_struct`` from <linux/capability.h>; version 3 uses two."""

    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


LINUX_CAPABILITY_VERSION_3 = 0x20080522  # Linux 2.6.26: 64-bit sets in two structs

assert ctypes.sizeof(CloneArgs) == CLONE_ARGS_SIZE_VER2, ctypes.sizeof(CloneArgs)
assert CloneArgs.set_tid.offset == CLONE_ARGS_SIZE_VER0
assert CloneArgs.cgroup.offset == CLONE_ARGS_SIZE_VER1
assert ctypes.sizeof(MountAttr) == MOUNT_ATTR_SIZE_VER0, ctypes.sizeof(MountAttr)
