#!/usr/bin/env bash
# From a fresh clone to a running Lanterne source interface on http://127.0.0.1:8080/
#
#   scripts/demo.sh
#
# Installs what is missing (scripts/bootstrap.sh), makes a demo journalist key
# and a demo newsroom key without passphrases, creates an instance registered to
# that journalist with a directory signed by that newsroom key, prints how
# to decrypt what you submit, then serves the source pages until Ctrl-C.
# Everything lives in demo-data/ (git-ignored); delete it to start over.
#
# DEMO_DIR and PORT override the folder and port; LANTERNE_SKIP_BOOTSTRAP=1
# skips the install step (the tests use both).
set -euo pipefail
cd "$(dirname "$0")/.."

demo="${DEMO_DIR:-demo-data}"
port="${PORT:-8080}"
jport="${JOURNALIST_PORT:-$((port + 1))}"

[ "${LANTERNE_SKIP_BOOTSTRAP:-0}" = 1 ] || scripts/bootstrap.sh

mkdir -p "$demo/keys"
if [ ! -f "$demo/keys/demo.identity" ]; then
  .venv/bin/lanterne keys generate --name demo --dir "$demo/keys" --no-passphrase
fi
if [ ! -f "$demo/keys/newsroom.identity" ]; then
  # The newsroom key signs the list of journalists (deploy/README.md); a real
  # one has a passphrase and lives on a removable medium, never on the server.
  .venv/bin/lanterne keys generate --name newsroom --dir "$demo/keys" --no-passphrase
fi
if [ ! -f "$demo/instance/secrets.json" ]; then
  .venv/bin/lanterne-server init --data-dir "$demo/instance" --journalist "$demo/keys/demo.pub" \
    --newsroom-key "$demo/keys/newsroom.identity"
fi

cat <<HELP

Lanterne demo: open http://127.0.0.1:$port/ (Tor Browser at "Safest", or any browser).
Send a message and a file; you get a codename.

Then, in another terminal, read it as the demo journalist:

  .venv/bin/lanterne-server list --data-dir $demo/instance
      # one line per encrypted object: manifest, message, file(s)
  .venv/bin/lanterne file decrypt -i $demo/keys/demo.identity $demo/instance/objects/<manifest id>
      # the manifest (JSON): file names, types, sizes, answers, and which object is which
  .venv/bin/lanterne file decrypt -i $demo/keys/demo.identity $demo/instance/objects/<message id>
  .venv/bin/lanterne file decrypt -i $demo/keys/demo.identity -o <file name> $demo/instance/objects/<file id>

Or the journalist's everyday workflow: pull the ciphertext, list, decrypt
(originals byte for byte plus copies with their metadata removed):

  LANTERNE_HOME=$demo/journalist .venv/bin/lanterne config --server http://127.0.0.1:$jport --identity $demo/keys/demo.identity
  LANTERNE_HOME=$demo/journalist .venv/bin/lanterne pull
  LANTERNE_HOME=$demo/journalist .venv/bin/lanterne list
  LANTERNE_HOME=$demo/journalist .venv/bin/lanterne decrypt <source> --out $demo/received
      # <source>: the designation ("wise otter") or id that list shows

The demo key has no passphrase: it is for trying Lanterne, never for real sources.

HELP

exec .venv/bin/lanterne-server run --data-dir "$demo/instance" --host 127.0.0.1 --port "$port" \
  --journalist-port "$jport"
