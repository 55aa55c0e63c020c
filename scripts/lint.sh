#!/usr/bin/env bash
# Lint and type-check: ruff over the package and the tests, mypy (strict, see pyproject.toml) over the package.
# Usage: scripts/lint.sh   (from anywhere; uses .venv when there is one)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=".venv/bin"
[[ -x "$bin/ruff" ]] || bin="$(dirname "$(command -v ruff)")"
status=0
"$bin/ruff" check src tests || status=1
"$bin/mypy" src/latentlab || status=1
exit $status
