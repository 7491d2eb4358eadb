#!/usr/bin/env bash
# Set up (on a fresh Debian/Ubuntu machine) and run nsprim's main job: the
# isolation conformance suite, with negative controls, as a table.
#   sudo bash scripts/quickstart.sh [nsprim conformance arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh
ensure_system_packages
ensure_venv test
exec .venv/bin/nsprim conformance --controls "$@"
