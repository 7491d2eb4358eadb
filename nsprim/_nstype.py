"""NsType, the eight namespace types, apart from the namespace model.

Layer 1, private: imports :mod:`nsprim.flags` only. :class:`NsType` is
:mod:`nsprim.namespace`'s (its public home, and its ``__module__``); it lives
here so that a spawn, which needs the types but not :class:`~nsprim.Namespace`,
doesn't import the model (about 0.3 ms of ``nsprim run``'s start-up).
"""

from __future__ import annotations

import enum

from .flags import NS_INIT_INO, CloneFlags

# typing.TYPE_CHECKING without importing typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

__all__ = ["NsType"]


class NsType(str, enum.Enum):
    """The eight namespace types, named as in ``/proc/PID/ns``.

    Each member has ``flag`` (its ``CLONE_NEW*`` bit), ``since`` (the kernel
    that made it usable) and ``init_ino`` (the fixed inode of the initial
    namespace, or None where the kernel gives none).
    """

    __module__ = "nsprim.namespace"

    MNT = "mnt"
    UTS = "uts"
    IPC = "ipc"
    PID = "pid"
    NET = "net"
    USER = "user"
    CGROUP = "cgroup"
    TIME = "time"

    @property
    def flag(self) -> CloneFlags:
        """The ``CLONE_NEW*`` flag of this type."""
        return _FLAGS[self]

    @property
    def since(self) -> str:
        """The first kernel version with this namespace type."""
        return _SINCE[self]

    @property
    def init_ino(self) -> int:
        """The inode number of the initial namespace of this type.

        Fixed (``<linux/nsfs.h>``) since Linux 3.8 for ipc/uts/user/pid, 4.6
        for cgroup, 5.6 for time, 6.18 for net and mnt.
        """
        return _INIT_INO[self]

    @property
    def hierarchical(self) -> bool:
        """Whether namespaces of this type have parents (pid and user)."""
        return self in (NsType.PID, NsType.USER)

    @classmethod
    def parse(cls, value: Union[NsType, str, int]) -> NsType:
        """Return the type named by a member, a proc name or a ``CLONE_NEW*`` flag.

        Raises:
            ValueError: no such namespace type.
            TypeError: not a str, NsType or int.
        """
        if isinstance(value, NsType):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                names = ", ".join(t.value for t in cls)
                raise ValueError(
                    f"unknown namespace type {value!r}; expected one of {names}"
                ) from None
        if isinstance(value, int) and not isinstance(value, bool):
            for t in cls:
                if int(t.flag) == int(value):
                    return t
            raise ValueError(f"{value!r} is not a single CLONE_NEW* flag")
        raise TypeError(
            f"namespace type must be NsType, str or int, got {type(value).__name__} {value!r}"
        )

    def __str__(self) -> str:
        return self.value


_FLAGS = {
    NsType.MNT: CloneFlags.NEWNS,
    NsType.UTS: CloneFlags.NEWUTS,
    NsType.IPC: CloneFlags.NEWIPC,
    NsType.PID: CloneFlags.NEWPID,
    NsType.NET: CloneFlags.NEWNET,
    NsType.USER: CloneFlags.NEWUSER,
    NsType.CGROUP: CloneFlags.NEWCGROUP,
    NsType.TIME: CloneFlags.NEWTIME,
}
_SINCE = {
    NsType.MNT: "Linux 2.4.19",
    NsType.UTS: "Linux 2.6.19",
    NsType.IPC: "Linux 2.6.19",
    NsType.PID: "Linux 2.6.24",
    NsType.NET: "Linux 2.6.29",
    NsType.USER: "Linux 3.8",
    NsType.CGROUP: "Linux 4.6",
    NsType.TIME: "Linux 5.6",
}
_INIT_INO = {t: NS_INIT_INO[t.flag] for t in NsType}
