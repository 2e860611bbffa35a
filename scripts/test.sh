#!/usr/bin/env bash
# The test command: install (idempotent), then run the whole suite.
# Screenshots and other artifacts land in test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Lint first (a second): an undefined name or a broken import fails here with its file and line.
.venv/bin/ruff check scopecast stream perception overlay telehealth tests scripts
exec .venv/bin/python -m pytest -q -ra "$@"
