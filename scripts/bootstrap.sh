#!/usr/bin/env bash
# Installs everything Lanterne needs on a Debian 12 machine, idempotently:
# Debian packages (only those missing), then a virtualenv in .venv with the
# project and its pinned dependencies (constraints.txt).
#
#   scripts/bootstrap.sh          # what the server and the journalist CLI need
#   scripts/bootstrap.sh --test   # plus everything the test suite and benchmarks need
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Runtime: gpg for OpenPGP custody/export, libmagic for type detection,
# bubblewrap to sandbox the metadata-cleaning worker, poppler-utils (pdftoppm)
# to render PDF pages for `lanterne clean --flatten`, mat2 for the formats
# without a native cleaner (docs/METADATA.md says which), libpq5 for psycopg
# (the PostgreSQL backend, issue 14).
debs=(gnupg libmagic1 media-types bubblewrap poppler-utils mat2 libpq5)
# Tests and benchmarks: exiftool checks cleaned files; mat2 and age are compared
# against in benchmarks; the browsers run the in-browser encryption (Firefox ESR
# stands in for Tor Browser); tor (with tor-gencert) runs the private Tor
# network; GNU time measures benchmarks' peak memory; curl downloads the gpg
# baseline's files in the journalist benchmark; postgresql's initdb and pg_ctl
# run the tests' throw-away clusters (tests/pg_cluster.py); strace kills the
# server at chosen system calls in the fault tests (tests/test_faults.py);
# onionbalance puts two backends behind one address on the private Tor network
# (tests/e2e/test_onionbalance.py), as deploy/README.md section 11 deploys it.
test_debs=(libimage-exiftool-perl age chromium firefox-esr fonts-dejavu-core tor time curl postgresql strace onionbalance)
[ "$want_test" = 1 ] && debs+=("${test_debs[@]}")
# npm fetches axe-core (the accessibility test's engine) from the lock file in
# tests/js, and rebuilds server/static/xwing.js from web/ (tests/test_js_build.py);
# Node.js runs the X-Wing vector tests. Either may already be on the machine
# without Debian's package (which brings both).
[ "$want_test" = 1 ] && ! { command -v npm && command -v node; } >/dev/null && debs+=(npm)

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: Python >= 3.11 is required (found $("$py" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv

extras=""
[ "$want_test" = 1 ] && extras="[test]"
# Re-run pip only when what it would install changed. The test install holds
# everything the runtime needs, so after `--test` (scripts/test.sh) a plain run
# (scripts/demo.sh) installs nothing: alternating the two runs pip once.
stamp=".venv/.lanterne-installed"
pins="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
installed="$(cat "$stamp" 2>/dev/null || true)"
if [ "$installed" != "$pins[test]" ] && [ "$installed" != "$pins$extras" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".$extras"
  echo "$pins$extras" > "$stamp"
fi

# JavaScript for the tests only (never served to sources), pinned with its
# integrity hash in tests/js/package-lock.json; `npm ci` checks it.
if [ "$want_test" = 1 ]; then
  js_stamp="tests/js/node_modules/.lanterne-installed"
  js_digest="$(sha256sum tests/js/package-lock.json | cut -c1-16)"
  if [ "$(cat "$js_stamp" 2>/dev/null)" != "$js_digest" ]; then
    npm ci --prefix tests/js --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "$js_digest" > "$js_stamp"
  fi
fi
