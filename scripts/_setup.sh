# Shared set-up for scripts/test.sh and scripts/quickstart.sh (sourced, not run).
# shellcheck shell=bash
# On a fresh Debian or Ubuntu machine, idempotently: installs with apt-get what is
# missing (Python 3 and its venv module; for the tests also a C compiler and the kernel
# headers the suite cross-checks nsprim's constants against), then a virtualenv in .venv
# with nsprim installed editable (with an extra). Says what it installs; installs
# nothing on a second run.
#
# Root runs apt-get itself; another user runs it through sudo when sudo exists (and
# only for apt-get: the venv and everything after stay the user's own).
#
# Environment:
#   NSPRIM_EXTRA=EXTRA   install nsprim[EXTRA] instead of the script's default (e.g. dev:
#                        the test extra plus the linters)
#   NSPRIM_REINSTALL=1   rebuild .venv from scratch
#   PYTHON=INTERPRETER   build .venv with it (default: /usr/bin/python3 when it exists or
#                        can be installed, else python3 from PATH; no apt for others)

say() { printf 'nsprim setup: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# as_root CMD...: run CMD as root (directly, or through sudo for a sudo user).
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        return 127
    fi
}

_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# _apt_install PKG...: install the packages that are missing, saying which.
_apt_install() {
    local missing=() pkg log
    if ! command -v dpkg-query >/dev/null; then
        say "not a Debian/Ubuntu system: make sure these are installed: $*"
        return 0
    fi
    for pkg in "$@"; do
        _installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "system packages already installed: $*"
        return 0
    fi
    if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
        die "missing system packages: ${missing[*]}. Run this script as root, or install them as root: apt-get install ${missing[*]}"
    fi
    say "installing with apt-get: ${missing[*]}"
    [ "$(id -u)" = 0 ] || say "(through sudo: apt-get is the only command run as root)"
    log=$(mktemp "${TMPDIR:-/tmp}/nsprim-apt.XXXXXX")
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update >"$log" 2>&1 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get failed (its output is above)"
    fi
    rm -f "$log"
}

_python() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif [ -x /usr/bin/python3 ] || command -v dpkg-query >/dev/null; then
        echo /usr/bin/python3
    else
        command -v python3 || echo python3
    fi
}

# ensure_system_packages [test]: Python with venv (+ gcc, libc and kernel headers for "test",
# bubblewrap: the suite's environment tests run nsprim inside a real bwrap sandbox, and
# iproute2: the reliability tests' shell commands add links inside the namespaces they
# interrupt, so that a leak would show on the host; uidmap: newuidmap/newgidmap, which
# 'nsprim run --map-auto' runs for an unprivileged caller, tested as nobody; iputils-ping:
# the README's veth demo pings across).
ensure_system_packages() {
    local pkgs=() py
    py=$(_python)
    # Debian and Ubuntu ship venv's pip in python3-venv (an importable ensurepip proves
    # nothing there), so for the system Python the package is what counts.
    [ "$py" = /usr/bin/python3 ] && pkgs+=(python3 python3-venv)
    [ "${1:-}" = test ] && pkgs+=(gcc libc6-dev linux-libc-dev bubblewrap iproute2 uidmap iputils-ping)
    [ ${#pkgs[@]} -eq 0 ] || _apt_install "${pkgs[@]}"
}

# The identity of a working .venv: interpreter, checkout location and pyproject.toml.
_venv_key() {
    local sum
    sum=$(sha256sum pyproject.toml | cut -c1-16)
    printf '%s %s %s\n' "$(_python)" "$PWD" "$sum"
}

# _venv_has EXTRA: .venv was built for this key with EXTRA (dev includes test, any has base).
_venv_has() {
    local stamp=.venv/nsprim-setup.stamp
    [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$(_venv_key)" ] || return 1
    case "$1" in
    base) [ "$(wc -l <"$stamp")" -ge 2 ] ;;
    test) grep -qx -e test -e dev "$stamp" ;;
    *) grep -qx -e "$1" "$stamp" ;;
    esac || return 1
    # And nsprim imports from outside the checkout (where ./nsprim would hide a missing install).
    local py="$PWD/.venv/bin/python"
    (cd / && "$py" -c 'import nsprim') 2>/dev/null
}

# ensure_venv EXTRA: make .venv hold nsprim[EXTRA] (EXTRA "base": nsprim alone).
ensure_venv() {
    local extra=${NSPRIM_EXTRA:-$1} py spec log
    py=$(_python)
    if [ "${NSPRIM_REINSTALL:-0}" = 1 ]; then
        say "NSPRIM_REINSTALL=1: removing .venv"
        rm -rf .venv
    fi
    if _venv_has "$extra"; then
        say ".venv is up to date (nsprim[$extra]; NSPRIM_REINSTALL=1 rebuilds it)"
        return 0
    fi
    if [ -e .venv ] && [ ! -f .venv/nsprim-setup.stamp ] && [ ! -x .venv/bin/python ]; then
        die ".venv exists but is not a virtualenv; move it away"
    fi
    # A venv made for another interpreter or checkout location is rebuilt (its scripts
    # name absolute paths); for another pyproject.toml, nsprim is reinstalled into it.
    local old= new
    new=$(_venv_key)
    [ -f .venv/nsprim-setup.stamp ] && old=$(head -n1 .venv/nsprim-setup.stamp)
    if [ -n "$old" ] && [ "${old% *}" != "${new% *}" ]; then
        say "rebuilding .venv (it was made for another interpreter or checkout location)"
        rm -rf .venv
    elif [ -n "$old" ] && [ "$old" != "$new" ]; then
        rm -f .venv/nsprim-setup.stamp  # pyproject.toml changed: the extras recorded are stale
    fi
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c '' 2>/dev/null; then
        say "creating .venv with $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
        rm -rf .venv
        "$py" -m venv .venv || die "could not create .venv with $py"
    fi
    spec=.
    [ "$extra" = base ] || spec=".[$extra]"
    say "installing nsprim (editable) into .venv with pip: $spec"
    log=$(mktemp "${TMPDIR:-/tmp}/nsprim-pip.XXXXXX")
    if ! .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip >"$log" 2>&1 ||
        ! .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
            -e "$spec" >>"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "pip failed (its output is above)"
    fi
    grep '^Successfully installed' "$log" | tail -n1 | sed 's/^/nsprim setup: pip: /' >&2 || true
    rm -f "$log"
    {
        _venv_key
        [ "$extra" = base ] || echo "$extra"
        [ -f .venv/nsprim-setup.stamp ] && tail -n +2 .venv/nsprim-setup.stamp
        echo base
    } | awk 'NR == 1 || !seen[$0]++' >.venv/nsprim-setup.stamp.new
    mv .venv/nsprim-setup.stamp.new .venv/nsprim-setup.stamp
    _venv_has "$extra" || die "nsprim is not importable from .venv after pip install"
}
