#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then lints, type-checks and runs every test. Extra arguments go to
# pytest (for example: scripts/test.sh -k envelope).
#
#   scripts/test.sh          # everything (what CI runs)
#   scripts/test.sh --fast   # leaves out the e2e, browser, tor and slow tiers (tests/conftest.py),
#                            # on both cores: under two minutes here
set -euo pipefail
cd "$(dirname "$0")/.."
tier=()
if [ "${1:-}" = "--fast" ]; then
  shift
  tier=(-n 2 -m "not (e2e or browser or tor or slow)")
fi
scripts/bootstrap.sh --test
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
python -m pytest "${tier[@]}" "$@"
