#!/usr/bin/env bash
# The test command: install (idempotent), then run the whole suite.
# Screenshots and other artifacts land in test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q -ra "$@"
