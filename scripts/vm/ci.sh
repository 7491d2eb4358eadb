#!/bin/bash
# shellcheck disable=SC2317  # stage functions and the trap handler are called indirectly
# CI entry for nsprim's VM stages (called by .ci/run; needs root, no internet but the
# Debian mirror). Stages, each printed as a PASS/FAIL line with its duration:
#   apt          install qemu, debootstrap, vagrant + vagrant-libvirt (no libvirt-daemon-system)
#   validate     `vagrant validate` in the default and the local mode
#   matrix-smoke boot the kernel(s) with a smoke payload (nsprim imports, pid/user ns), and
#                the first one's .deb again through --kernel (the "your own kernel" path)
#   matrix       scripts/vm/matrix on the kernel(s): the suite as root and nobody
#   vagrant      build/add the local box, vagrant up (runs the suite), fetch reports, destroy
#                (vagrant's own output goes to ARTIFACTS/vagrant/vagrant.log, shown on failure;
#                NSPRIM_VM_VERBOSE=1 streams it)
#   fleet        contrib/ansible/nsprim.yml (ansible-core from PyPI, in a throwaway venv)
#                against two local VMs with different kernels (scripts/vm/fleet), reached
#                over SSH on 127.0.0.1 only; the merged matrix goes to ARTIFACTS/fleet
# Whatever fails, every VM, libvirtd, holder process and temporary directory this script
# started is cleaned up (trap), and the exit status is non-zero.
#
# Environment:
#   NSPRIM_VM_KERNELS     kernels for the matrix stages (default 6.1,6.12: booted at once)
#   NSPRIM_VM_REPEAT      the matrix runs every check this many times (default 2): a
#                         verdict that flips under the load of parallel VMs is an ERROR
#   NSPRIM_VM_ARTIFACTS   where reports/matrices go (default scripts/vm/.cache/ci)
#   NSPRIM_VM_SKIP        space-separated stages to skip, e.g. "vagrant"
#   PYTHON                interpreter for the scripts (default .venv/bin/python, else python3)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$here/.cache"
kernels=${NSPRIM_VM_KERNELS:-6.1,6.12}
repeat=${NSPRIM_VM_REPEAT:-2}
artifacts=${NSPRIM_VM_ARTIFACTS:-$cache/ci}
skip=" ${NSPRIM_VM_SKIP:-} "
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHON

packages=(
    qemu-system-x86 qemu-utils debootstrap cpio busybox-static kmod zstd e2fsprogs
    python3-tabulate
    vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
)

failed=0
results=()
validate_dir="$cache/ci-validate"

log() { printf 'vm-ci: %s\n' "$*"; }

cleanup() {
    local rc=$? f pid
    set +e
    "$here/vagrant-local" stop >/dev/null 2>&1
    # qemu processes of scripts/vm/matrix still running (only if it was killed itself):
    # their pids are recorded in .cache/pids/, and each is checked to be a qemu.
    for f in "$cache"/pids/qemu-*; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        if grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid"; fi
        rm -f "$f"
    done
    rm -rf "$validate_dir"
    # apt state of other suites, left only if the matrix was killed mid-download.
    rm -rf /dev/shm/nsprim-apt-* 2>/dev/null
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stage() {
    local name=$1 start rc=0 secs
    shift
    if [[ "$skip" == *" $name "* ]]; then
        results+=("SKIP vm:$name")
        log "SKIP vm:$name"
        return 0
    fi
    log "--- vm:$name"
    start=$(date +%s.%N)
    # Not `"$@" || rc=$?`: bash ignores set -e inside a function called that way.
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" = 0 ]; then
        results+=("PASS vm:$name (${secs} s)")
        log "PASS vm:$name (${secs} s)"
    else
        results+=("FAIL vm:$name (${secs} s, exit $rc)")
        log "FAIL vm:$name (${secs} s, exit $rc)"
        failed=1
    fi
}

do_apt() {
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # libvirt-daemon-system would define a NAT network on 192.168.122.0/24.
    if dpkg-query -W -f='${Status}' libvirt-daemon-system 2>/dev/null | grep -q 'install ok installed'; then
        log "libvirt-daemon-system is installed; refusing to continue"
        return 1
    fi
}

do_validate() {
    # Throwaway VAGRANT_HOME / .vagrant: validate needs no box and no libvirtd.
    rm -rf "$validate_dir"
    cd "$repo"
    export VAGRANT_HOME="$validate_dir/home" VAGRANT_DOTFILE_PATH="$validate_dir/dot"
    export VAGRANT_CHECKPOINT_DISABLE=1
    env -u NSPRIM_VAGRANT_LOCAL vagrant validate
    NSPRIM_VAGRANT_LOCAL=1 vagrant validate
    rm -rf "$validate_dir"
}

do_matrix_smoke() {
    "$PYTHON" "$here/matrix" --kernels "$kernels" --payload smoke
    # The same Debian kernel, given by path as a kernel developer gives their own build:
    # release from the package, config from boot/config-*, options it lacks named.
    local deb
    # A package with a kernel in it (linux-image-6.1.0-57-amd64_...), not a meta package.
    deb=$(find "$cache/debs" -regextype posix-extended \
        -regex '.*/linux-image-[0-9]+\.[0-9]+\.[0-9]+[^/]*\.deb' | sort | head -n 1)
    [ -n "$deb" ] || { log "no kernel .deb in $cache/debs"; return 1; }
    "$PYTHON" "$here/matrix" --kernels '' --kernel "$deb" --payload smoke
}

do_matrix() {
    mkdir -p "$artifacts"
    "$PYTHON" "$here/matrix" --kernels "$kernels" --repeat "$repeat" --strict --format markdown \
        --reports-dir "$artifacts/reports" -o "$artifacts/matrix.md" -o "$artifacts/matrix.html"
    cat "$artifacts/matrix.md"
}

do_vagrant() {
    # Vagrant's output (thousands of progress and provisioning lines) goes to a file in
    # the artifacts; a failing vagrant command shows its last lines (vagrant-local).
    NSPRIM_VAGRANT_LOG="$artifacts/vagrant/vagrant.log" "$here/vagrant-local" e2e "$artifacts/vagrant"
}

do_fleet() {
    local venv="$cache/ansible-venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.16,<2.20'
    # Without controls: the matrix stage already runs them; this stage proves the flow.
    "$PYTHON" "$here/fleet" --kernels "${NSPRIM_VM_FLEET_KERNELS:-6.1,6.12}" --no-controls \
        --ansible-playbook "$venv/bin/ansible-playbook" --out "$artifacts/fleet" --timeout 1200
    grep -E '^\| (Check|Summary)' "$artifacts/fleet/matrix.md"
    rm -rf "$venv"
}

if [ "$(id -u)" != 0 ]; then
    log "must run as root"
    exit 1
fi
mkdir -p "$artifacts"
stage apt do_apt
stage validate do_validate
stage matrix-smoke do_matrix_smoke
stage matrix do_matrix
stage vagrant do_vagrant
stage fleet do_fleet

log "=== summary"
for r in "${results[@]}"; do log "$r"; done
exit "$failed"
