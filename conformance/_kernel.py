"""The kernel calls the conformance harness itself needs, in one place.

Layer: conformance, private. Re-exports the public :mod:`nsprim.syscalls`
bindings the harness uses, and the raw constants it needs, so the rest of
the suite has one import for them.
"""

from __future__ import annotations

from nsprim.syscalls import drop_capabilities as drop_capabilities
from nsprim.syscalls import mount as mount
from nsprim.syscalls import set_child_subreaper as set_child_subreaper
from nsprim.syscalls import set_dumpable as set_dumpable
from nsprim.syscalls import set_pdeathsig as set_pdeathsig
from nsprim.syscalls import setdomainname as setdomainname
from nsprim.syscalls import sethostname as sethostname
from nsprim.syscalls import setns as setns
from nsprim.syscalls import umount as umount
from nsprim.syscalls import unshare as unshare

__all__ = [
    "CLONE_NEWNS",
    "CLONE_NEWCGROUP",
    "CLONE_NEWUTS",
    "CLONE_NEWIPC",
    "CLONE_NEWUSER",
    "CLONE_NEWPID",
    "CLONE_NEWNET",
    "CLONE_NEWTIME",
    "MS_REC",
    "MS_BIND",
    "MS_PRIVATE",
    "MS_NOSUID",
    "MS_NODEV",
    "MS_NOEXEC",
    "MNT_DETACH",
    "unshare",
    "setns",
    "mount",
    "umount",
    "sethostname",
    "setdomainname",
    "set_pdeathsig",
    "set_child_subreaper",
    "drop_capabilities",
    "set_dumpable",
]

# include/uapi/linux/sched.h (the same values as nsprim.flags.CloneFlags)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
# include/uapi/linux/mount.h
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 16384
MS_BIND = 4096
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
