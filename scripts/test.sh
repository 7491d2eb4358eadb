#!/usr/bin/env bash
# Set up (on a fresh Debian/Ubuntu machine) and run nsprim's test suite.
#   bash scripts/test.sh [pytest arguments]
# As root it installs what is missing with apt-get and runs every test; as another user
# it installs through sudo (if sudo exists) and the tests that need root skip with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh
ensure_system_packages test
ensure_venv test
exec .venv/bin/python -m pytest -q "$@"
