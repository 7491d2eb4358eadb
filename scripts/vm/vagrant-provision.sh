#!/bin/bash
# Vagrant shell provisioner (runs as root in the guest): install nsprim from the synced
# checkout into /opt/nsprim and run the conformance suite as root and as nobody.
# Reports: /var/tmp/nsprim/{root,user}.json (+ .rc); fetch them with
#   vagrant ssh -c 'cat /var/tmp/nsprim/root.json' > conformance-root.json
#
# Environment (set by the Vagrantfile):
#   NSPRIM_OFFLINE=1   no network: use the box's python3-venv/setuptools/tabulate, no pip index
#   NSPRIM_PAYLOAD     suite (default) | smoke
#   NSPRIM_STRICT=1    exit non-zero when the suite reports a FAIL/ERROR
set -euo pipefail

offline=${NSPRIM_OFFLINE:-0}
payload=${NSPRIM_PAYLOAD:-suite}
strict=${NSPRIM_STRICT:-0}
src_dir=/vagrant
build=/var/tmp/nsprim-src
venv=/opt/nsprim
out=/var/tmp/nsprim

say() { printf 'nsprim-provision: %s\n' "$*"; }

if [ "$offline" != 1 ]; then
    say "installing python3-venv from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends python3-venv python3-pip >/dev/null
fi

# The synced folder may be read-only (9p) and pip builds in the source tree: copy the
# package sources (not .git, the venv or the VM cache) to a scratch directory.
rm -rf "$build"
mkdir -p "$build"
for f in pyproject.toml setup.cfg setup.py README.md README.rst LICENSE LICENSE.txt MANIFEST.in; do
    if [ -e "$src_dir/$f" ]; then cp "$src_dir/$f" "$build/"; fi
done
cp -r "$src_dir/nsprim" "$src_dir/conformance" "$build/"
# pyproject.toml names README.md as the readme; a checkout without it must still build.
[ -e "$build/README.md" ] || echo "nsprim" >"$build/README.md"

rm -rf "$venv"
if [ "$offline" = 1 ]; then
    # setuptools (>= 64) and tabulate come from the box's Debian packages.
    python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install -q --no-index --no-build-isolation --no-deps "$build"
else
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$build"
fi
say "installed: $("$venv/bin/python" -c 'import nsprim; print("nsprim", nsprim.__version__)')"

rm -rf "$out"
mkdir -p "$out"
scratch=$(mktemp -d)
chmod 1777 "$scratch"
trap 'rm -rf "$scratch"' EXIT

if [ "$payload" = smoke ]; then
    # Infrastructure check only: the package imports and namespaces work in this VM.
    {
        echo "kernel=$(uname -r)"
        "$venv/bin/python" -c 'import nsprim; print("import nsprim ok", nsprim.__version__)'
        echo "pid-in-pidns=$(unshare --pid --fork --mount-proc sh -c 'echo $$')"
        echo "uid-in-userns=$(setpriv --reuid=nobody --regid=nogroup --clear-groups unshare --user --map-root-user id -u)"
    } | tee "$out/smoke.txt"
    say "smoke payload OK"
    exit 0
fi

if "$venv/bin/nsprim" conformance --help >/dev/null 2>&1; then
    suite=("$venv/bin/nsprim" conformance)
else
    suite=("$venv/bin/python" -m nsprim.conformance)
fi

status=0
for who in root user; do
    extra=()
    if [ "$who" = user ]; then extra=(--as-user nobody); fi
    rc=0
    (cd / && "${suite[@]}" --format json "${extra[@]}" -o "$scratch/$who.json") || rc=$?
    echo "$rc" >"$out/$who.rc"
    if [ -s "$scratch/$who.json" ]; then
        cp "$scratch/$who.json" "$out/$who.json"
        say "$who run exited $rc; report at $out/$who.json"
    else
        say "$who run exited $rc and wrote no report"
        status=1
    fi
    if [ "$rc" != 0 ] && [ "$strict" = 1 ]; then status=1; fi
done

# Show the result on the console of `vagrant up` (same renderer as the kernel matrix).
reports=()
for who in root user; do
    if [ -s "$out/$who.json" ]; then reports+=("$out/$who.json"); fi
done
if [ "${#reports[@]}" -gt 0 ]; then
    "$venv/bin/python" - "${reports[@]}" <<'EOF' | tee "$out/matrix.txt"
import json
import sys

from nsprim.conformance.report.matrix import build_matrix, render_matrix

reports = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        reports.append(json.load(f))
print(render_matrix(build_matrix(reports), "table"), end="")
EOF
fi
exit "$status"
