"""Build and boot minimal Debian guests under QEMU for nsprim's kernel matrix.

Everything big lives in the git-ignored cache ``scripts/vm/.cache/``:

    debs/            downloaded .deb files (kernel packages, busybox-static)
    rootfs/          debootstrapped bookworm root (shared read-only over 9p)
    kernels/<spec>/  vmlinux (PVH ELF), initrd.cpio (busybox + modules), meta.json
                     (a kernel given by path, --kernel, is keyed by its file's digest)
    runs/<spec>/     console.log and the writable "out" share of the last run

The Debian mirror is read at run time from the first ``URIs:`` line of
/etc/apt/sources.list.d/debian.sources and never written into the cache or the repo:
apt state for other suites lives in a temporary directory on /dev/shm (tmpfs), and the
debootstrapped root is scrubbed of it.

See VM-NOTES (shared notes) for the measurements behind each choice: TCG because
/dev/kvm here is PVM, PVH vmlinux + qboot because it boots in ~4 s, switch_root because
user namespaces fail in a chroot.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import json
import lzma
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

VM_DIR = Path(__file__).resolve().parent
REPO = VM_DIR.parent.parent
CACHE = VM_DIR / ".cache"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
QBOOT = Path("/usr/share/qemu/qboot.rom")

# One debootstrap serves the matrix (9p root, guest-init.sh as PID 1) and the Vagrant
# box (ext4 image, systemd): python3 + tabulate for nsprim, the rest for the box.
ROOTFS_SUITE = "bookworm"
ROOTFS_PACKAGES = (
    "python3",
    "python3-tabulate",
    "python3-venv",
    "python3-setuptools",
    "python3-wheel",
    "procps",
    "iproute2",
    "kmod",
    "util-linux",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "sudo",
    "qemu-guest-agent",
)

MODULES_9P = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
MODULES_BLK = ("virtio_blk", "ext4")


@dataclass(frozen=True)
class KernelSource:
    """Where a kernel comes from: a Debian suite (None = this machine's apt sources)."""

    suite: str | None
    package: str


# Short names accepted by --kernels. Any "suite:package" works too, e.g.
# "trixie:linux-image-amd64"; "host:<package>" uses this machine's apt sources.
KNOWN_KERNELS: dict[str, KernelSource] = {
    "5.10": KernelSource("bullseye", "linux-image-amd64"),
    "6.1": KernelSource(None, "linux-image-amd64"),
    "6.12": KernelSource(None, "linux-image-6.12-amd64"),
    "7.2": KernelSource("sid", "linux-image-amd64"),
}

# Packages that carry the kernel image and its modules (not linux-base, the perl helper).
_KERNEL_PKG = re.compile(r"^linux-(image|binary|modules|base)-[0-9]")


class Progress:
    """One live status line on a terminal: each kernel's state (booting, running, done).

    On anything but a terminal (a CI log, a pipe) it writes nothing: the ``[vm]`` log
    lines already say what happened, once each.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.states: dict[str, str] = {}
        self.shown = False
        self.lock = threading.RLock()

    def set(self, name: str, state: str) -> None:
        """Record *name*'s state and redraw the line."""
        with self.lock:
            self.states[name] = state
            self.draw()

    def draw(self) -> None:
        if not self.enabled or not self.states:
            return
        width = shutil.get_terminal_size((100, 24)).columns - 1
        line = " | ".join(f"{name}: {state}" for name, state in self.states.items())
        self.stream.write("\r\x1b[2K" + line[:width])
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line (before a log line, and at the end)."""
        with self.lock:
            if self.enabled and self.shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self.shown = False


PROGRESS = Progress()


def log(message: str) -> None:
    """Print a log line on stderr (stdout carries the rendered matrix), under the live line."""
    with PROGRESS.lock:
        PROGRESS.clear()
        print(f"[vm] {message}", file=sys.stderr, flush=True)
        PROGRESS.draw()


def run(cmd: Sequence[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, check it, and return its text output."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(c) for c in cmd], check=True, text=True, **kwargs
    )


def kernel_source(spec: str) -> KernelSource:
    """Map a --kernels entry to its source.

    Raises:
        ValueError: *spec* is neither a known short name nor ``suite:package``.
    """
    if spec in KNOWN_KERNELS:
        return KNOWN_KERNELS[spec]
    suite, sep, package = spec.partition(":")
    if sep and suite and package:
        return KernelSource(None if suite == "host" else suite, package)
    known = ", ".join(KNOWN_KERNELS)
    raise ValueError(f"kernel must be one of {known} or SUITE:PACKAGE, got {spec!r}")


def spec_slug(spec: str) -> str:
    """Return a file-name-safe form of a kernel spec."""
    return re.sub(r"[^A-Za-z0-9.+-]", "_", spec)


def mirror_uri() -> str:
    """Return the first ``URIs:`` entry of this machine's Debian sources (never stored).

    Raises:
        RuntimeError: the sources file has no URIs line.
    """
    try:
        text = SOURCES.read_text(encoding="utf-8")
    except OSError as err:
        raise RuntimeError(f"cannot read {SOURCES}: {err}") from err
    for line in text.splitlines():
        if line.startswith("URIs:"):
            uris = line.split()[1:]
            if uris:
                return uris[0]
    raise RuntimeError(f"{SOURCES} has no 'URIs:' line")


def mirror_host() -> str:
    """Return the host part of the mirror URI (used only to check scrubbing)."""
    match = re.match(r"^[a-z]+://([^/:]+)", mirror_uri())
    return match.group(1) if match else mirror_uri()


class Apt:
    """apt-get/apt-cache for one suite; state in a tmpfs directory, removed on close.

    ``suite=None`` uses this machine's own apt configuration (bookworm + security).
    """

    def __init__(self, suite: str | None) -> None:
        self.suite = suite
        self._tmp: str | None = None
        self._opts: list[str] = []

    def __enter__(self) -> Apt:
        if self.suite is None:
            self._opts = ["-oAPT::Sandbox::User=root"]
            return self
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None
        self._tmp = tempfile.mkdtemp(prefix="nsprim-apt-", dir=base)
        tmp = Path(self._tmp)
        for d in ("state/lists/partial", "cache/archives/partial"):
            (tmp / d).mkdir(parents=True)
        sources = tmp / "sources.list"
        sources.write_text(f"deb [signed-by={KEYRING}] {mirror_uri()} {self.suite} main\n")
        self._opts = [
            f"-oDir::Etc::sourcelist={sources}",
            "-oDir::Etc::sourceparts=-",
            f"-oDir::State={tmp / 'state'}",
            f"-oDir::Cache={tmp / 'cache'}",
            "-oDir::State::status=/var/lib/dpkg/status",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root",
        ]
        log(f"apt: fetching the {self.suite} package lists into a tmpfs")
        run(["apt-get", *self._opts, "-qq", "update"], stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def depends(self, package: str) -> list[str]:
        """Return the names *package* directly depends on (or pre-depends on)."""
        out = run(
            ["apt-cache", *self._opts, "depends", "--no-recommends", "--no-suggests", package],
            stdout=subprocess.PIPE,
        ).stdout
        names = []
        for line in out.splitlines():
            m = re.match(r"^\s*\|?(?:Pre)?Depends:\s*(\S+)", line)
            if m and not m.group(1).startswith("<"):
                names.append(m.group(1))
        return names

    def kernel_packages(self, meta: str) -> list[str]:
        """Follow *meta*'s dependencies to the packages holding vmlinuz and modules."""
        found: list[str] = []
        todo = [meta]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if _KERNEL_PKG.match(name):
                found.append(name)
            for dep in self.depends(name):
                if _KERNEL_PKG.match(dep) or dep == f"{name}-unsigned":
                    todo.append(dep)
        if not found:
            raise RuntimeError(f"no kernel image package found behind {meta} ({self.suite})")
        return sorted(found)

    def download(self, packages: Sequence[str], dest: Path) -> list[Path]:
        """Download *packages* into *dest* (skipping ones already there) and return the paths."""
        dest.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for package in packages:
            out = run(
                ["apt-cache", *self._opts, "show", "--no-all-versions", package],
                stdout=subprocess.PIPE,
            ).stdout
            version = re.search(r"^Version: (\S+)$", out, re.M)
            arch = re.search(r"^Architecture: (\S+)$", out, re.M)
            if not version or not arch:
                raise RuntimeError(f"apt-cache show {package}: no Version/Architecture")
            # apt-get download spells the epoch colon as %3a.
            name = f"{package}_{version.group(1).replace(':', '%3a')}_{arch.group(1)}.deb"
            path = dest / name
            if not path.exists():
                run(["apt-get", *self._opts, "-qq", "download", package], cwd=dest)
            if not path.exists():
                raise RuntimeError(f"apt-get download {package} did not produce {path.name}")
            paths.append(path)
        return paths


# --- kernel image ------------------------------------------------------------------

_MAGICS: tuple[tuple[str, bytes], ...] = (
    ("xz", b"\xfd7zXZ\x00"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("gzip", b"\x1f\x8b\x08"),
    # Kernels built by others use these too (Debian's cloud flavour is LZ4).
    ("lz4", b"\x02\x21\x4c\x18"),
    ("bzip2", b"BZh"),
)


def _decompress(kind: str, data: bytes) -> bytes:
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if kind == "gzip":
        return zlib.decompressobj(wbits=31).decompress(data)
    if kind == "bzip2":
        return bz2.BZ2Decompressor().decompress(data)
    tool = {"zstd": ["zstd", "-qdc"], "lz4": ["lz4", "-qdc"]}[kind]
    if shutil.which(tool[0]) is None:
        raise OSError(f"{tool[0]} is needed to unpack a {kind}-compressed kernel")
    proc = subprocess.run(tool, input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc.stdout  # trailing bytes after the frame make zstd complain; output is whole


def extract_vmlinux(bzimage: Path, dest: Path) -> None:
    """Write the uncompressed ELF vmlinux found inside *bzimage* (like extract-vmlinux).

    Raises:
        RuntimeError: no compressed ELF payload was found.
    """
    data = bzimage.read_bytes()
    for kind, magic in _MAGICS:
        start = 0
        while (offset := data.find(magic, start)) >= 0:
            start = offset + 1
            try:
                elf = _decompress(kind, data[offset:])
            except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError):
                continue
            if elf.startswith(b"\x7fELF"):
                dest.write_bytes(elf)
                return
    raise RuntimeError(f"{bzimage}: no xz/zstd/gzip-compressed ELF kernel inside")


# --- initramfs ---------------------------------------------------------------------


def _module_paths(tree: Path, kver: str, modules: Sequence[str]) -> list[Path]:
    """Return the module files to insmod for *modules*, dependencies first."""
    out = run(
        ["modprobe", "-a", "-d", tree, "-S", kver, "--show-depends", *modules],
        stdout=subprocess.PIPE,
    ).stdout
    paths: list[Path] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "insmod":
            path = Path(parts[1])
            if path not in paths:
                paths.append(path)
    return paths


def _plain_module(src: Path) -> bytes:
    """Return a module's bytes, decompressed: busybox insmod wants plain .ko."""
    data = src.read_bytes()
    if src.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if src.name.endswith(".ko.zst"):
        return subprocess.run(
            ["zstd", "-qdc"], input=data, stdout=subprocess.PIPE, check=True
        ).stdout
    if src.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    return data


def build_initrd(tree: Path, kver: str, busybox: Path, dest: Path) -> None:
    """Pack busybox, the virtio/9p/overlay (+ virtio_blk/ext4) modules and /init into *dest*.

    The archive stays uncompressed: decompression is slow under TCG.
    """
    with tempfile.TemporaryDirectory(prefix="nsprim-initrd-", dir=CACHE) as tmp:
        root = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "newroot", "lower", "upper", "lib/modules"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        (root / "bin" / "busybox").chmod(0o755)
        shutil.copy2(VM_DIR / "initramfs-init", root / "init")
        (root / "init").chmod(0o755)
        done: set[str] = set()
        for order_name, modules in (
            ("modules.order", MODULES_9P),
            ("modules-blk.order", MODULES_BLK),
        ):
            names: list[str] = []
            for src in _module_paths(tree, kver, modules):
                name = re.sub(r"\.ko(\.(xz|zst|gz))?$", ".ko", src.name)
                if name in done:
                    continue
                done.add(name)
                (root / "lib" / "modules" / name).write_bytes(_plain_module(src))
                names.append(name)
            (root / order_name).write_text("".join(f"{n}\n" for n in names))
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        with open(dest, "wb") as f:
            subprocess.run(
                ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
                input="\n".join([".", *files]) + "\n",
                cwd=root,
                stdout=f,
                check=True,
                text=True,
            )


# --- kernels -----------------------------------------------------------------------

# Modules a guest may load on demand (veth, bridge, netfilter, 9p, ...): the kernel's
# fs/net/crypto/lib/arch trees and a few driver folders, ~1/3 of the whole tree.
MODULE_DIRS = ("kernel/fs", "kernel/net", "kernel/crypto", "kernel/lib", "kernel/arch")
MODULE_DRIVERS = ("virtio", "char", "block", "net")
# Bumped when the cached layout of kernels/<spec>/ changes.
KERNEL_LAYOUT = 2


def _init_digest() -> str:
    """Digest of the initramfs /init: editing it rebuilds the cached initramfs."""
    return hashlib.sha256((VM_DIR / "initramfs-init").read_bytes()).hexdigest()[:16]


def copy_modules(tree: Path, release: str, root: Path) -> None:
    """Copy the module subset of an unpacked kernel into *root*/lib/modules and depmod it."""
    src = tree / "lib/modules" / release
    dest = root / "lib/modules" / release
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    subs = [*MODULE_DIRS, *(f"kernel/drivers/{d}" for d in MODULE_DRIVERS)]
    for sub in subs:
        if (src / sub).is_dir():
            shutil.copytree(src / sub, dest / sub, symlinks=True)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (src / name).exists():
            shutil.copy2(src / name, dest / name)
    run(["depmod", "-b", root, release])


@dataclass(frozen=True)
class Kernel:
    """A prepared kernel: PVH vmlinux, initramfs, and the Debian packages it came from."""

    spec: str
    release: str
    vmlinux: Path
    initrd: Path
    packages: tuple[str, ...]

    @property
    def modules(self) -> Path:
        """The guest's /lib/modules (a subset of the kernel's modules, depmod'ed)."""
        return self.vmlinux.parent / "modroot" / "lib" / "modules"


def busybox_binary() -> Path:
    """Return busybox from Debian's busybox-static package (downloaded into the cache)."""
    dest = CACHE / "busybox"
    if dest.exists():
        return dest
    with Apt(None) as apt:
        (deb,) = apt.download(["busybox-static"], CACHE / "debs")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        run(["dpkg-deb", "-x", deb, tmp])
        found = [
            p for p in (Path(tmp) / "bin" / "busybox", Path(tmp) / "usr/bin/busybox") if p.exists()
        ]
        if not found:
            raise RuntimeError(f"{deb.name} has no busybox binary")
        shutil.copy2(found[0], dest)
    return dest


@contextlib.contextmanager
def unpacked_kernel(debs: Sequence[Path]) -> Iterator[tuple[Path, str, Path]]:
    """Unpack kernel .debs into a temporary tree; yield (tree, release, vmlinuz)."""
    with tempfile.TemporaryDirectory(prefix="nsprim-kernel-", dir=CACHE) as tmp:
        tree = Path(tmp)
        for deb in debs:
            run(["dpkg-deb", "-x", deb, tree])
        # sid's split packaging puts everything under usr/lib/modules/<release>/.
        if (tree / "usr/lib/modules").is_dir() and not (tree / "lib").exists():
            (tree / "lib").symlink_to("usr/lib")
        candidates = sorted(tree.glob("boot/vmlinuz-*")) + sorted(
            tree.glob("usr/lib/modules/*/vmlinuz")
        )
        if not candidates:
            raise RuntimeError(f"no vmlinuz in {', '.join(d.name for d in debs)}")
        vmlinuz = candidates[0]
        if vmlinuz.parent.name == "boot":
            release = vmlinuz.name[len("vmlinuz-") :]
        else:
            release = vmlinuz.parent.name
        run(["depmod", "-b", tree, release])
        yield tree, release, vmlinuz


def prepare_kernel(spec: str, refresh: bool = False) -> Kernel:
    """Download, unpack and convert one kernel (cached under kernels/<spec>/)."""
    kdir = CACHE / "kernels" / spec_slug(spec)
    meta_path = kdir / "meta.json"
    if meta_path.exists() and not refresh:
        meta = json.loads(meta_path.read_text())
        kernel = Kernel(
            spec, meta["release"], kdir / "vmlinux", kdir / "initrd.cpio", tuple(meta["packages"])
        )
        ready = kernel.vmlinux.exists() and kernel.initrd.exists() and kernel.modules.is_dir()
        current = meta.get("layout") == KERNEL_LAYOUT and meta.get("init") == _init_digest()
        if ready and current:
            return kernel
    source = kernel_source(spec)
    started = time.monotonic()
    with Apt(source.suite) as apt:
        packages = apt.kernel_packages(source.package)
        log(f"{spec}: downloading {' '.join(packages)}")
        debs = apt.download(packages, CACHE / "debs")
    busybox = busybox_binary()
    kdir.mkdir(parents=True, exist_ok=True)
    if (kdir / "modroot").exists():
        shutil.rmtree(kdir / "modroot")
    with unpacked_kernel(debs) as (tree, release, vmlinuz):
        extract_vmlinux(vmlinuz, kdir / "vmlinux.tmp")
        build_initrd(tree, release, busybox, kdir / "initrd.tmp")
        copy_modules(tree, release, kdir / "modroot")
    os.replace(kdir / "vmlinux.tmp", kdir / "vmlinux")
    os.replace(kdir / "initrd.tmp", kdir / "initrd.cpio")
    meta = {
        "release": release,
        "packages": [d.name for d in debs],
        "layout": KERNEL_LAYOUT,
        "init": _init_digest(),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    log(f"{spec}: kernel {release} ready in {time.monotonic() - started:.1f} s")
    return Kernel(
        spec, release, kdir / "vmlinux", kdir / "initrd.cpio", tuple(d.name for d in debs)
    )


# --- your own kernel ---------------------------------------------------------------

# What the suite needs from a kernel's config, and what is lost without each option.
# `=y` or `=m` both count as present (the guest loads modules from the 9p share).
NAMESPACE_OPTIONS: dict[str, str] = {
    "CONFIG_NAMESPACES": "every namespace type",
    "CONFIG_UTS_NS": "the uts checks",
    "CONFIG_IPC_NS": "the ipc checks",
    "CONFIG_SYSVIPC": "the SysV IPC checks (ipc.sysv_*)",
    "CONFIG_POSIX_MQUEUE": "the POSIX message queue checks (ipc.posix_mq, ipc.mqueuefs_bound)",
    "CONFIG_PID_NS": "the pid checks",
    "CONFIG_NET_NS": "the net checks",
    "CONFIG_VETH": "the veth checks (net.veth_*)",
    "CONFIG_USER_NS": "the user checks and the whole rootless run",
    "CONFIG_CGROUPS": "the cgroup checks",
    "CONFIG_TIME_NS": "the time checks",
    "CONFIG_CHECKPOINT_RESTORE": "ns_last_pid and clone3 set_tid (pid checks that use them)",
}
# What this recipe needs to boot the kernel at all (qemu -kernel with PVH, 9p root).
BOOT_OPTIONS: dict[str, str] = {
    "CONFIG_PVH": "qemu -kernel boots the PVH entry point",
    "CONFIG_VIRTIO_PCI": "the 9p shares are virtio-pci devices",
    "CONFIG_NET_9P_VIRTIO": "the root file system is a virtio 9p share",
    "CONFIG_9P_FS": "the root file system is a 9p share",
    "CONFIG_OVERLAY_FS": "the guest root is an overlay over the read-only 9p root",
    "CONFIG_SERIAL_8250_CONSOLE": "the suite's output comes back on the serial console",
}


def parse_kconfig(text: str) -> dict[str, str]:
    """Return ``{"CONFIG_X": "y"|"m"|value}`` for the set options of a kernel .config."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("CONFIG_"):
            options[name] = value.strip('"')
    return options


def missing_options(config: dict[str, str], wanted: dict[str, str]) -> list[tuple[str, str]]:
    """Return ``(option, what needs it)`` for each *wanted* option not ``y``/``m`` in *config*."""
    return [(opt, why) for opt, why in wanted.items() if config.get(opt) not in ("y", "m")]


def ikconfig(blob: bytes) -> str | None:
    """Return the .config embedded by CONFIG_IKCONFIG in a vmlinux or configs.ko, if any."""
    start = blob.find(b"IKCFG_ST")
    if start < 0:
        return None
    try:
        data = zlib.decompressobj(wbits=31).decompress(blob[start + 8 :])
    except zlib.error:
        return None
    return data.decode("utf-8", "replace")


def find_kconfig(tree: Path, release: str, vmlinux: Path | None = None) -> str | None:
    """Find the config of an unpacked kernel: boot/config-*, the module tree, or IKCONFIG."""
    for candidate in (
        tree / "boot" / f"config-{release}",
        tree / "lib/modules" / release / "config",
        tree / "lib/modules" / release / "build" / ".config",
        tree / "usr/lib/modules" / release / "config",
    ):
        if candidate.is_file():
            return candidate.read_text(errors="replace")
    if vmlinux is not None and vmlinux.is_file():
        found = ikconfig(vmlinux.read_bytes())
        if found is not None:
            return found
    for ko in (tree / "lib/modules" / release).rglob("configs.ko*"):
        found = ikconfig(_plain_module(ko))
        if found is not None:
            return found
    return None


def bzimage_release(image: Path) -> str | None:
    """Read the release string from a bzImage's setup header (x86 boot protocol 2.x)."""
    with open(image, "rb") as f:
        header = f.read(0x1000)
    if len(header) < 0x210 or header[0x202:0x206] != b"HdrS":
        return None
    offset = int.from_bytes(header[0x20E:0x210], "little") + 0x200
    with open(image, "rb") as f:
        f.seek(offset)
        raw = f.read(256)
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return text.split()[0] if text else None


def local_kernel_spec(image: Path) -> str:
    """The spec of a kernel given by path: ``local:<file name>@<digest>`` (cache key)."""
    digest = hashlib.sha256()
    with open(image, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"local:{image.name}@{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def local_kernel_tree(
    image: Path, modules: Path | None, debs: Sequence[Path] = ()
) -> Iterator[tuple[Path, str, Path]]:
    """Lay out a kernel given by path like an unpacked package; yield (tree, release, vmlinuz).

    *debs* are kernel .deb files (image and, for split packaging, modules). Otherwise
    *image* is a bzImage/vmlinuz and *modules* the ``lib/modules/<release>`` directory
    of ``make modules_install INSTALL_MOD_PATH=...`` (or its parent ``lib/modules``).

    Raises:
        RuntimeError: the release can't be determined or the modules don't match it.
    """
    if debs:
        with unpacked_kernel(debs) as unpacked:
            yield unpacked
        return
    if modules is None:
        raise RuntimeError(
            f"{image}: a kernel image needs --modules DIR (its lib/modules/<release>)"
        )
    release = bzimage_release(image)
    if (modules / "modules.order").exists() or (modules / "kernel").is_dir():
        mod_release = modules.name
    else:
        found = [d for d in modules.iterdir() if (d / "modules.order").exists()]
        if len(found) != 1:
            raise RuntimeError(
                f"{modules}: expected lib/modules/<release> (with modules.order), found "
                f"{', '.join(d.name for d in found) or 'none'}"
            )
        modules = found[0]
        mod_release = modules.name
    if release is not None and release != mod_release:
        raise RuntimeError(
            f"{image} is release {release} but {modules} holds modules for {mod_release}"
        )
    release = release or mod_release
    with tempfile.TemporaryDirectory(prefix="nsprim-kernel-", dir=CACHE) as tmp:
        tree = Path(tmp)
        (tree / "boot").mkdir()
        vmlinuz = tree / "boot" / f"vmlinuz-{release}"
        shutil.copy2(image, vmlinuz)
        (tree / "lib/modules").mkdir(parents=True)
        shutil.copytree(modules, tree / "lib/modules" / release, symlinks=True)
        run(["depmod", "-b", tree, release])
        yield tree, release, vmlinuz


def prepare_local_kernel(
    image: Path,
    modules: Path | None = None,
    config: Path | None = None,
    refresh: bool = False,
) -> tuple[Kernel, list[str]]:
    """Prepare a kernel given by path (your own build, or a kernel .deb) for booting.

    *image* is a bzImage/vmlinuz with *modules* its ``lib/modules/<release>``
    directory, or a kernel .deb (with split packaging, *modules* is then the
    matching linux-modules .deb). *config* overrides the config found in the
    package, the module tree or the image (CONFIG_IKCONFIG).

    Returns the kernel and one sentence per namespace or boot option its config lacks
    (empty when the config is complete; one sentence when no config was found).
    """
    image = image.resolve()
    debs: list[Path] = []
    if image.suffix == ".deb":
        debs = [image] + ([modules.resolve()] if modules is not None else [])
    spec = local_kernel_spec(image)
    kdir = CACHE / "kernels" / spec_slug(spec)
    if kdir.exists() and refresh:
        shutil.rmtree(kdir)
    kdir.mkdir(parents=True, exist_ok=True)
    busybox = busybox_binary()
    started = time.monotonic()
    if (kdir / "modroot").exists():
        shutil.rmtree(kdir / "modroot")
    problems: list[str] = []
    with local_kernel_tree(image, modules, debs) as (tree, release, vmlinuz):
        config_text = config.read_text(errors="replace") if config else None
        if config_text is None:
            config_text = find_kconfig(tree, release)
        # A config that can't boot here is said before anything is unpacked or booted.
        if config_text is not None:
            options = parse_kconfig(config_text)
            cannot = missing_options(options, BOOT_OPTIONS)
            if cannot:
                raise RuntimeError(
                    f"{release} can't boot in this recipe: its config lacks "
                    + "; ".join(f"{opt} ({why})" for opt, why in cannot)
                )
            for opt, why in missing_options(options, NAMESPACE_OPTIONS):
                problems.append(f"{release}: its config lacks {opt}: {why} can't run")
        extract_vmlinux(vmlinuz, kdir / "vmlinux.tmp")
        if config_text is None:
            config_text = find_kconfig(tree, release, kdir / "vmlinux.tmp")
            if config_text is None:
                problems.append(
                    f"{release}: no kernel config found (no boot/config-*, no IKCONFIG): "
                    "can't say which namespace options it lacks; pass --config FILE"
                )
            else:
                for opt, why in missing_options(parse_kconfig(config_text), NAMESPACE_OPTIONS):
                    problems.append(f"{release}: its config lacks {opt}: {why} can't run")
        build_initrd(tree, release, busybox, kdir / "initrd.tmp")
        copy_modules(tree, release, kdir / "modroot")
    os.replace(kdir / "vmlinux.tmp", kdir / "vmlinux")
    os.replace(kdir / "initrd.tmp", kdir / "initrd.cpio")
    (kdir / "meta.json").write_text(
        json.dumps({"release": release, "packages": [image.name], "problems": problems}, indent=2)
    )
    log(f"{spec}: kernel {release} ready in {time.monotonic() - started:.1f} s")
    for problem in problems:
        log(problem)
    kernel = Kernel(spec, release, kdir / "vmlinux", kdir / "initrd.cpio", (image.name,))
    return kernel, problems


# --- root file system --------------------------------------------------------------


def scrub_mirror(root: Path) -> None:
    """Remove every trace of the build mirror from a debootstrapped tree.

    Raises:
        RuntimeError: the mirror host still appears under etc/ or var/lib/apt.
    """
    (root / "etc/apt/sources.list").write_text(
        "# Emptied by nsprim's scripts/vm: this root has no package sources.\n"
    )
    for path in (root / "var/lib/apt/lists").glob("*_*"):
        path.unlink()
    for path in (root / "var/cache/apt").glob("**/*.deb"):
        path.unlink()
    for path in (root / "var/cache/apt").glob("*.bin"):
        path.unlink()
    for log_file in ("var/log/bootstrap.log", "debootstrap/debootstrap.log"):
        (root / log_file).unlink(missing_ok=True)
    host = mirror_host()
    leaks = subprocess.run(
        ["grep", "-rlsI", "--", host, root / "etc", root / "var/lib/apt", root / "var/log"],
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.split()
    if leaks:
        raise RuntimeError(f"mirror host still present in {len(leaks)} file(s), e.g. {leaks[0]}")


def rootfs_stamp() -> str:
    """Return the identity of the wanted root (suite + packages): a change forces a rebuild."""
    return f"{ROOTFS_SUITE} {' '.join(ROOTFS_PACKAGES)}\n"


def build_rootfs(refresh: bool = False) -> Path:
    """Debootstrap the bookworm root once (cached as rootfs/) and return its path."""
    dest = CACHE / "rootfs"
    stamp = CACHE / "rootfs.stamp"
    if dest.is_dir() and stamp.exists() and stamp.read_text() == rootfs_stamp() and not refresh:
        return dest
    tmp = CACHE / "rootfs.tmp"
    for path in (tmp, dest):
        if path.exists():
            shutil.rmtree(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log("rootfs: debootstrap bookworm (about 1.5 min)")
    with open(CACHE / "debootstrap.log", "w") as out:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(ROOTFS_PACKAGES)}",
                ROOTFS_SUITE,
                tmp,
                mirror_uri(),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    (CACHE / "debootstrap.log").unlink()  # it names the mirror
    scrub_mirror(tmp)
    (tmp / "etc/hostname").write_text("nsprim-guest\n")
    os.replace(tmp, dest)
    stamp.write_text(rootfs_stamp())
    log(f"rootfs: ready in {time.monotonic() - started:.1f} s")
    return dest


# --- booting -----------------------------------------------------------------------

# Every qemu this process started and has not reaped yet, also recorded as a pid file
# under .cache/pids/ so that scripts/vm/ci.sh can kill them by id if this process dies.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()
STOPPING = threading.Event()  # set by kill_all(): no new boot, no retry
PIDS_DIR = CACHE / "pids"


def _track(proc: subprocess.Popen[bytes], running: bool) -> None:
    pidfile = PIDS_DIR / f"qemu-{proc.pid}"
    with _RUNNING_LOCK:
        if running:
            _RUNNING.add(proc)
            PIDS_DIR.mkdir(parents=True, exist_ok=True)
            pidfile.write_text(f"{proc.pid}\n")
        else:
            _RUNNING.discard(proc)
            pidfile.unlink(missing_ok=True)


def kill_all() -> None:
    """Kill every qemu this process started and start no more (for signal handlers)."""
    STOPPING.set()
    with _RUNNING_LOCK:
        procs = list(_RUNNING)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


def kvm_really_works() -> bool:
    """Tell whether hardware KVM can run a stock kernel (not just whether /dev/kvm opens).

    /dev/kvm may be PVM (kvm_pvm), which accepts every ioctl but hangs stock kernels;
    a CPU without vmx/svm cannot run them either. Only when both look right does the
    caller try a real boot with -accel kvm (see :func:`probe_accel`).
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    if Path("/sys/module/kvm_pvm").exists():
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return bool({"vmx", "svm"} & set(flags.split()))


@dataclass
class GuestRun:
    """What one boot produced."""

    spec: str
    booted: bool
    exit_code: int | None
    seconds: float
    console: list[str] = field(default_factory=list)
    outdir: Path | None = None
    error: str | None = None
    attempts: int = 1

    def tail(self, n: int = 12) -> str:
        """Return the last *n* non-empty console lines."""
        lines = [line for line in self.console if line.strip()]
        return "\n".join(lines[-n:])


def qemu_command(
    kernel: Kernel,
    rootfs: Path,
    outdir: Path,
    payload: str,
    accel: str,
    memory_mb: int,
    controls: bool = False,
    ssh_port: int | None = None,
    repeat: int = 1,
) -> list[str]:
    """Return the qemu command line of the fast 9p recipe.

    No NIC (no guest network) unless *ssh_port* is given: then one virtio NIC on qemu's
    user-mode network with ``restrict=on`` (the guest can send nothing out) and only
    ``127.0.0.1:<ssh_port>`` on the host forwarded to the guest's port 22.
    """
    cpu = "host" if accel == "kvm" else "qemu64,+rdrand"
    bios = ["-bios", str(QBOOT)] if QBOOT.exists() else []
    append = (
        f"console=ttyS0 quiet loglevel=1 panic=-1 nsout=1 nsmods=1 nspayload={payload} "
        f"nscontrols={int(controls)} nsrepeat={int(repeat)} "
        "nsinit=/mnt/host/scripts/vm/guest-init.sh"
    )
    nic: list[str] = []
    if ssh_port is not None:
        nic = [
            "-netdev",
            f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
            "-device",
            "virtio-net-pci,netdev=n0",
        ]
    share = "security_model=none"
    return [
        "qemu-system-x86_64",
        "-accel",
        accel,
        "-M",
        "pc",
        *bios,
        "-cpu",
        cpu,
        "-m",
        str(memory_mb),
        "-smp",
        "1",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel.vmlinux),
        "-initrd",
        str(kernel.initrd),
        "-append",
        append,
        "-fsdev",
        f"local,id=r,path={rootfs},{share},readonly=on",
        "-device",
        "virtio-9p-pci,fsdev=r,mount_tag=rootfs",
        "-fsdev",
        f"local,id=h,path={REPO},{share},readonly=on",
        "-device",
        "virtio-9p-pci,fsdev=h,mount_tag=host",
        "-fsdev",
        f"local,id=m,path={kernel.modules},{share},readonly=on",
        "-device",
        "virtio-9p-pci,fsdev=m,mount_tag=modules",
        "-fsdev",
        f"local,id=o,path={outdir},{share}",
        "-device",
        "virtio-9p-pci,fsdev=o,mount_tag=out",
        *nic,
    ]


def _boot_once(
    kernel: Kernel,
    rootfs: Path,
    outdir: Path,
    payload: str,
    accel: str,
    boot_timeout: float,
    run_timeout: float,
    memory_mb: int,
    controls: bool,
    ssh_port: int | None = None,
    prepare: Callable[[Path], None] | None = None,
    on_line: Callable[[str], None] | None = None,
    repeat: int = 1,
) -> GuestRun:
    if STOPPING.is_set():
        return GuestRun(kernel.spec, False, None, 0.0, outdir=outdir, error="interrupted")
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    if prepare is not None:
        prepare(outdir)
    cmd = qemu_command(
        kernel, rootfs, outdir, payload, accel, memory_mb, controls, ssh_port, repeat
    )
    started = time.monotonic()
    result = GuestRun(kernel.spec, booted=False, exit_code=None, seconds=0.0, outdir=outdir)
    lines: queue.Queue[str | None] = queue.Queue()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    _track(proc, running=True)

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = started + boot_timeout
    try:
        with open(outdir.parent / "console.log", "w") as console:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    phase = "run" if result.booted else "boot"
                    limit = run_timeout if result.booted else boot_timeout
                    result.error = f"{phase} timeout after {limit:.0f} s"
                    break
                try:
                    line = lines.get(timeout=min(remaining, 1.0))
                except queue.Empty:
                    continue
                if line is None:
                    if result.exit_code is None:
                        result.error = (
                            "qemu exited before the guest reported"
                            if result.booted
                            else f"qemu exited during boot (rc {proc.wait()})"
                        )
                    break
                console.write(line + "\n")
                result.console.append(line)
                if on_line is not None:
                    on_line(line)
                if not result.booted and "NSPRIM-BEGIN" in line:
                    result.booted = True
                    deadline = time.monotonic() + run_timeout
                m = re.search(r"NSPRIM-EXIT=(\d+)", line)
                if m:
                    result.exit_code = int(m.group(1))
                    # Power-off follows at once; give qemu a moment to exit by itself.
                    deadline = min(deadline, time.monotonic() + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _track(proc, running=False)
        reader.join(timeout=5)
    if result.exit_code is not None:
        result.error = None
    result.seconds = time.monotonic() - started
    return result


def boot(
    kernel: Kernel,
    rootfs: Path,
    payload: str,
    accel: str = "tcg",
    boot_timeout: float = 120.0,
    run_timeout: float = 900.0,
    memory_mb: int = 768,
    retries: int = 1,
    controls: bool = False,
    ssh_port: int | None = None,
    prepare: Callable[[Path], None] | None = None,
    on_line: Callable[[str], None] | None = None,
    repeat: int = 1,
) -> GuestRun:
    """Boot *kernel* with *payload*; retry a failed boot (not a failed run) *retries* times.

    *controls* makes the suite payload also run each check's negative control;
    *ssh_port* gives the guest a NIC with SSH forwarded from 127.0.0.1 (the sshd
    payload); *prepare* is called with the guest's writable share before each boot;
    *on_line* sees every console line as it arrives; *repeat* > 1 makes the suite
    payload run every check that many times (``--repeat``: a verdict that changes is
    reported as a defect of the suite).
    """
    outdir = CACHE / "runs" / spec_slug(kernel.spec) / "out"
    outdir.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        attempt += 1
        result = _boot_once(
            kernel,
            rootfs,
            outdir,
            payload,
            accel,
            boot_timeout,
            run_timeout,
            memory_mb,
            controls,
            ssh_port,
            prepare,
            on_line,
            repeat,
        )
        result.attempts = attempt
        if result.booted or attempt > retries or STOPPING.is_set():
            return result
        log(f"{kernel.spec}: boot failed ({result.error}); retrying")


def probe_accel(kernel: Kernel, rootfs: Path) -> str:
    """Return "kvm" only if a real guest boots with it; else "tcg"."""
    if not kvm_really_works():
        return "tcg"
    log("kvm: /dev/kvm looks usable; trying a real boot")
    result = boot(kernel, rootfs, "none", accel="kvm", boot_timeout=30, run_timeout=30, retries=0)
    return "kvm" if result.exit_code == 0 else "tcg"
