// Generates the hybrid (X-Wing, stanza type 0x0002) envelope vectors in this
// directory with the browser's own writer, server/static/envelope.js:
//
//     node tests/vectors/xwing/generate.mjs [OUT_DIR]
//
// cryptography (Python) has no deterministic X-Wing encapsulation, so these
// vectors come from the JavaScript writer with fixed keys and fixed
// randomness; tests/test_xwing_vectors.py opens them independently with
// cryptography's HPKE (KEM.MLKEM768_X25519) and checks that running this
// again gives the same files byte for byte. Never edit the JSON by hand.
// The fields are those of the other vectors (tests/vectors/generate.py), plus
// `identity_type`: "xwing" (a 32-byte X-Wing seed) or "x25519" (a raw key).
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { concat, encryptBytes } from "../../../server/static/envelope.js";
import { publicKeyFromSeed } from "../../../server/static/xwing.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const te = new TextEncoder();
const INLINE_PLAINTEXT_MAX = 4096;

// The same deterministic "random" bytes as generate.py's fixed().
function fixed(label, n = 32) {
  const parts = [];
  for (let counter = 0; parts.length * 32 < n; counter++) {
    parts.push(createHash("sha256").update(`lanterne test vector ${label} ${counter}`).digest());
  }
  return new Uint8Array(Buffer.concat(parts).subarray(0, n));
}

const pattern = (n) => Uint8Array.from({ length: n }, (_, i) => i % 251);
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const x25519Public = async (priv) => {
  const pkcs8 = concat(Uint8Array.from(Buffer.from("302e020100300506032b656e04220420", "hex")), priv);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, true, ["deriveBits"]);
  return new Uint8Array(Buffer.from((await crypto.subtle.exportKey("jwk", key)).x, "base64url"));
};

// One recipient of a vector: `kind` "xwing" (identity = seed) or "x25519".
async function recipient(kind, label) {
  const secret = fixed(`identity ${kind} ${label}`);
  const publicKey = kind === "xwing" ? await publicKeyFromSeed(secret) : await x25519Public(secret);
  return { kind, secret, publicKey };
}

async function build(name, plaintext, recipients) {
  const fileKey = fixed(`${name} file key`);
  const salt = fixed(`${name} salt`, 16);
  const ephemeralKeys = recipients.map((r, i) => fixed(`${name} ephemeral ${i}`, r.kind === "xwing" ? 64 : 32));
  const envelope = await encryptBytes(plaintext, recipients.map((r) => r.publicKey), { fileKey, salt, ephemeralKeys });
  const writer = {
    file_key: b64(fileKey),
    salt: b64(salt),
    recipients: recipients.map((r) => b64(r.publicKey)),
    ephemeral_keys: ephemeralKeys.map(b64),
    extra_stanzas: [],
  };
  return { envelope, writer };
}

// JSON as generate.py writes it (sorted keys, indent 1).
const sorted = (v) => (v && typeof v === "object" && !Array.isArray(v)
  ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
  : Array.isArray(v) ? v.map(sorted) : v);

function flip(bytes, pos) {
  const out = bytes.slice();
  out[pos] ^= 0x01;
  return out;
}

async function vectors() {
  const out = [];
  const add = (name, expect, description, me, envelope, ok = null) => {
    const v = { name, description, expect, identity: b64(me.secret), identity_type: me.kind, envelope: b64(envelope) };
    if (ok) {
      v.plaintext_sha256 = sha256(ok.plaintext);
      v.plaintext_length = ok.plaintext.length;
      if (ok.plaintext.length <= INLINE_PLAINTEXT_MAX) v.plaintext = b64(ok.plaintext);
      else v.plaintext_pattern = "byte i is i mod 251";
      v.writer = ok.writer;
    }
    out.push(v);
  };
  const okVector = async (name, description, plaintext, recipients, me) => {
    const { envelope, writer } = await build(name, plaintext, recipients);
    add(name, "ok", description, me, envelope, { plaintext, writer });
    return envelope;
  };

  const h = [await recipient("xwing", 0), await recipient("xwing", 1), await recipient("xwing", 2)];
  const x = await recipient("x25519", 0);
  const hello = await okVector("ok_xwing_hello", "one hybrid recipient, short text", te.encode("Bonjour, voici les documents.\n"), [h[0]], h[0]);
  await okVector("ok_xwing_empty", "one hybrid recipient, empty plaintext", new Uint8Array(0), [h[0]], h[0]);
  await okVector("ok_xwing_len_65537", "one hybrid recipient, 65537 bytes of pattern (two chunks)", pattern(65537), [h[0]], h[0]);
  await okVector("ok_xwing_three_recipients", "three hybrid recipients, opened with the third", te.encode("to three journalists"), h, h[2]);
  await okVector("ok_xwing_mixed_opened_by_x25519", "an X25519 then a hybrid recipient, opened with the X25519 key", te.encode("old and new keys"), [x, h[1]], x);
  await okVector("ok_xwing_mixed_opened_by_hybrid", "an X25519 then a hybrid recipient, opened with the hybrid key", te.encode("old and new keys"), [x, h[1]], h[1]);

  // Stanza 0x0002 of ok_xwing_hello starts at byte 27: type, length, then enc (ML-KEM ciphertext 1088 || X25519 32), ct 48.
  const body = 27 + 4;
  add("no_match_xwing_mlkem_altered", "no match", "a byte of the ML-KEM ciphertext altered (ML-KEM's implicit rejection)", h[0], flip(hello, body + 100));
  add("no_match_xwing_x25519_altered", "no match", "a byte of the X25519 ephemeral key altered", h[0], flip(hello, body + 1088 + 5));
  add("no_match_xwing_other_key", "no match", "encrypted to another hybrid key", h[1], hello);
  add("no_match_xwing_seed_as_x25519", "no match", "the hybrid recipient's seed used as an X25519 key", { kind: "x25519", secret: h[0].secret }, hello);
  const shortened = concat(hello.subarray(0, 29), Uint8Array.of(0x04, 0x8f), hello.subarray(31));
  add("header_xwing_stanza_length", "header failure", "hybrid stanza with length 1167", h[0], shortened);
  const salted = flip(hello, 10);
  add("no_match_xwing_salt_altered", "no match", "salt altered: the stanza info no longer matches", h[0], salted);
  return out;
}

const outDir = process.argv[2] || HERE;
mkdirSync(outDir, { recursive: true });
for (const f of readdirSync(outDir)) if (f.endsWith(".json")) unlinkSync(join(outDir, f));
const all = await vectors();
for (const v of all) writeFileSync(join(outDir, `${v.name}.json`), JSON.stringify(sorted(v), null, 1) + "\n");
console.log(`wrote ${all.length} vectors to ${outDir}`);
