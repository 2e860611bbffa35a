#!/usr/bin/env bash
# The test command: install (idempotent), then run the whole suite.
# Screenshots and other artifacts land in test-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Static checks first (seconds), each failing with its file and line: lint (an undefined name, a broken or unsorted
# import), layout (`ruff format`), and types (mypy: strict on perception, stream and overlay; see pyproject.toml).
SOURCES=(scopecast stream perception overlay telehealth tests scripts)
.venv/bin/ruff check "${SOURCES[@]}"
.venv/bin/ruff format --check "${SOURCES[@]}"
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -ra "$@"
