#!/usr/bin/env bash
# Set up (on a fresh Debian/Ubuntu machine) and run nsprim's main job: the isolation
# conformance suite, with negative controls, as a table.
#   bash scripts/quickstart.sh [nsprim conformance arguments]
# As root it installs what is missing with apt-get; as another user through sudo (if
# sudo exists), then runs the suite as that user (the rootless view).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh
ensure_system_packages
ensure_venv base
exec .venv/bin/nsprim conformance --controls "$@"
