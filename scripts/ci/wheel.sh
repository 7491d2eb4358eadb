#!/usr/bin/env bash
# A wheel users can trust: build the sdist, build the wheel FROM the sdist (so a file
# missing from the sdist fails here), install the wheel into a fresh venv outside the
# checkout, check that everything the source packages hold was installed (every module,
# py.typed, package data such as man pages, the console script and entry points, the
# licence), then run the README's main job from that venv.
#   bash scripts/ci/wheel.sh        (root: the main job's isolation checks need it)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/nsprim-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { printf 'wheel: %s\n' "$*"; }

log "build: sdist, then the wheel from the sdist (python -m build)"
"$python" -m venv "$work/build"
"$work/build/bin/python" -m pip install -q --disable-pip-version-check build
"$work/build/bin/python" -m build -q --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
ls -l "$work/dist"

log "install the wheel into a fresh venv outside the checkout"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$work"/dist/*.whl
cd "$work"  # nothing of the checkout is importable from here

log "contents: every file of the source packages is installed"
"$work/venv/bin/python" "$repo/scripts/ci/wheel_contents.py" "$repo" "$work/dist"

log "the README's main job from the installed wheel: nsprim conformance --controls"
"$work/venv/bin/nsprim" conformance --controls --format tap -o "$work/main-job.tap"
tail -n 3 "$work/main-job.tap"
log "PASS"
