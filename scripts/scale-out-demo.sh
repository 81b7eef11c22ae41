#!/usr/bin/env bash
# The scale-out stack on this machine, for trying it (docs/SCALE_OUT.md):
# a throw-away PostgreSQL cluster and moto's S3 server on 127.0.0.1, and two
# `lanterne-server run` instances on the same config.toml, which names them.
#
#   scripts/scale-out-demo.sh
#
# Installs what is missing with the test dependencies (scripts/bootstrap.sh
# --test: Debian's postgresql, moto), makes a demo journalist key without a
# passphrase, prints the two instances' addresses, and serves until Ctrl-C,
# which stops everything and deletes the temporary directory it all lived in.
#
# PORT (default 8080): the first instance's source interface; its journalist
# API is PORT+1, the second instance's PORT+2 and PORT+3.
# LANTERNE_SKIP_BOOTSTRAP=1 skips the install step (the tests use both).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${LANTERNE_SKIP_BOOTSTRAP:-0}" = 1 ] || scripts/bootstrap.sh --test

PYTHONPATH="$PWD" exec .venv/bin/python scripts/scale_out_demo.py
