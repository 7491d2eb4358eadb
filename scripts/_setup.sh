# Shared set-up for scripts/test.sh and scripts/quickstart.sh (sourced, not run).
# shellcheck shell=bash
# Installs what nsprim needs on a fresh Debian/Ubuntu machine, idempotently:
# Python's venv module, a C compiler and the kernel headers (the test suite
# cross-checks nsprim's constants against them), then a virtualenv in .venv
# with nsprim installed editable with the given extra.

_apt_updated=0
_apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "nsprim setup: please install: ${missing[*]}" >&2
        return 0
    fi
    if [ "$_apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_system_packages() {
    local pkgs=(util-linux)
    python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
    [ "${1:-}" = test ] && pkgs+=(gcc libc6-dev linux-libc-dev)
    _apt_install "${pkgs[@]}"
}

# ensure_venv EXTRA: create .venv (unless NSPRIM_FRESH_VENV=0 and it exists) and install nsprim[EXTRA].
ensure_venv() {
    local extra="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if ! .venv/bin/python -c "import nsprim" 2>/dev/null || [ "${NSPRIM_REINSTALL:-0}" = 1 ]; then
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        .venv/bin/python -m pip install -q -e ".[${extra}]"
    fi
}
