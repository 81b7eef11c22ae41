#!/usr/bin/env bash
# Builds server/static/xwing.js, the one bundled script a source's browser may
# load: web/src/xwing.js (X-Wing encapsulation, ~30 lines of ours) with
# noble's pure-JavaScript ML-KEM-768 and SHA3, at the exact versions and
# integrity hashes of web/package-lock.json (`npm ci` refuses anything else).
#
#   scripts/build-js.sh          # rebuild server/static/xwing.js (commit it)
#   scripts/build-js.sh OUT.js   # build to OUT.js instead (the reproducibility test)
#
# The output is not minified, so that it can be read and compared with the
# packages' own sources; the same inputs give the same bytes
# (tests/test_js_build.py rebuilds it and compares). Serving pages never needs
# npm: the built file is committed, and its digest is in the asset manifest
# that `lanterne verify-site` checks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/server/static/xwing.js}")"
cd "$root/web"
command -v npm >/dev/null || { echo "build-js: npm is missing (scripts/bootstrap.sh --test installs it)" >&2; exit 1; }
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
version() { node -p "require('./package-lock.json').packages['node_modules/$1'].version"; }
banner="// Built by scripts/build-js.sh from web/src/xwing.js and, as pinned in web/package-lock.json,
// @noble/post-quantum $(version @noble/post-quantum), @noble/hashes $(version @noble/hashes) and @noble/curves $(version @noble/curves)
// (MIT License, (c) Paul Miller). Do not edit: change web/ and rebuild."
# Paths in the output's comments are relative to web/, whatever OUT is.
node_modules/.bin/esbuild src/xwing.js --bundle --format=esm --platform=browser \
  --legal-comments=inline --charset=utf8 --banner:js="$banner" \
  --log-level=warning --outfile="$out"
