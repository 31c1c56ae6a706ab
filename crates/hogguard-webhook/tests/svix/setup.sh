#!/usr/bin/env bash
# Installs the real `svix` Python package (PyPI), which the Svix interoperability tests use to
# sign and verify deliveries, into a virtual environment, and prints the path of its Python.
#
#   bash crates/hogguard-webhook/tests/svix/setup.sh
#
# The tests look for that Python at HOGGUARD_SVIX_PYTHON, else at the default place below. A
# test run without it skips the Svix tests with a loud message, unless HOGGUARD_REQUIRE_SVIX=1
# (CI sets it after running this script), which turns a missing package into a failure.
#
# Knobs (env): HOGGUARD_SVIX_VENV (<repository>/target/svix-venv), SVIX_VERSION (2.9.1).
set -euo pipefail

root="$(cd "$(dirname "$0")/../../../.." && pwd)"
venv="${HOGGUARD_SVIX_VENV:-$root/target/svix-venv}"
SVIX_VERSION="${SVIX_VERSION:-2.9.1}"

installed() {
    "$venv/bin/python" - "$SVIX_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import svix.webhooks  # noqa: F401  (the part the tests use)
sys.exit(version("svix") != sys.argv[1])
PY
}

if ! installed; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "svix==$SVIX_VERSION"
    installed || { echo "svix $SVIX_VERSION did not install into $venv" >&2; exit 1; }
fi
echo "$venv/bin/python"
