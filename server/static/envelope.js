// Lanterne envelope writer, version 1 (envelope/SPEC.md), with WebCrypto.
// No WebAssembly, no bulk work in plain JavaScript: every byte of a file goes
// through crypto.subtle, which stays fast when Tor Browser's "Safer" level
// turns the JIT off. The one exception is key-sized: a hybrid recipient's
// ML-KEM-768 half, which WebCrypto lacks, comes from xwing.js (built from
// web/ by scripts/build-js.sh) and is loaded only when such a recipient
// exists. Section numbers (§) refer to the spec.

const subtle = globalThis.crypto.subtle;
const te = new TextEncoder();

export const CHUNK_SIZE = 65536; // §5
const SALT_SIZE = 16;
const STANZA_X25519_HPKE = 0x0001;
const STANZA_XWING_HPKE = 0x0002;
const MAX_STANZAS = 255;
const MAX_HEADER_SIZE = 65536; // §8
const MIN_PADDED_SIZE = 4096; // §6
const IN_FLIGHT = 4; // chunk encryptions kept running at once

const LABEL_X25519 = te.encode("lanterne/v1/x25519-hpke"); // §3 labels
const LABEL_XWING = te.encode("lanterne/v1/xwing-hpke");
const LABEL_HEADER = te.encode("lanterne/v1/header");
const LABEL_PAYLOAD = te.encode("lanterne/v1/payload");
const MAGIC = te.encode("LANTERNE");

// RFC 9180 suites: DHKEM(X25519, HKDF-SHA256) or X-Wing (KEM 0x647a,
// MLKEM768-X25519 of draft-ietf-hpke-pq), each with HKDF-SHA256 and AES-256-GCM.
const SUITE_KEM = concat(te.encode("KEM"), u16(0x0020));
const SUITE_X25519 = concat(te.encode("HPKE"), u16(0x0020), u16(0x0001), u16(0x0002));
const SUITE_XWING = concat(te.encode("HPKE"), u16(0x647a), u16(0x0001), u16(0x0002));
const HPKE_V1 = te.encode("HPKE-v1");
// PKCS#8 wrapping of a raw X25519 private key (RFC 8410), for fixed test keys.
const PKCS8_X25519 = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u16(n) {
  return Uint8Array.of(n >> 8, n & 0xff);
}

function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

// §6: Padmé bucket for m = plaintext length + 1. Plain arithmetic, not bit
// operators, because sizes go past 2^32.
export function paddedSize(m) {
  if (m <= MIN_PADDED_SIZE) return MIN_PADDED_SIZE;
  let e = 0;
  while (2 ** (e + 1) <= m) e++;
  let s = 0;
  while (2 ** s <= e) s++;
  const step = 2 ** (e - s);
  return Math.ceil(m / step) * step;
}

// --- HKDF pieces for the HPKE key schedule (RFC 9180 §4) --------------------

async function hmac(key, data) {
  const k = await subtle.importKey(
    "raw", key.length ? key : new Uint8Array(32), // an empty HMAC key equals 32 zero bytes
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

function labeledExtract(suite, salt, label, ikm) {
  return hmac(salt, concat(HPKE_V1, suite, label, ikm));
}

async function labeledExpand(suite, prk, label, info, length) {
  // One HMAC block suffices: every length used here is at most 32 bytes.
  const t = await hmac(prk, concat(u16(length), HPKE_V1, suite, label, info, Uint8Array.of(1)));
  return t.slice(0, length);
}

async function hkdf(ikm, salt, info) {
  const k = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, k, 256));
}

async function x25519Ephemeral(fixedPrivate) {
  if (!fixedPrivate) return subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const privateKey = await subtle.importKey(
    "pkcs8", concat(PKCS8_X25519, fixedPrivate), { name: "X25519" }, true, ["deriveBits"]);
  const jwk = await subtle.exportKey("jwk", privateKey);
  const publicKey = await subtle.importKey("jwk", { kty: "OKP", crv: "X25519", x: jwk.x }, { name: "X25519" }, true, []);
  return { privateKey, publicKey };
}

// RFC 9180 KeySchedule (base mode) and single-shot Seal, once the KEM has
// given `enc` and the shared secret; returns enc || ciphertext.
async function sealWithSecret(suite, enc, shared, info, plaintext, aad) {
  const empty = new Uint8Array(0);
  const pskIdHash = await labeledExtract(suite, empty, te.encode("psk_id_hash"), empty);
  const infoHash = await labeledExtract(suite, empty, te.encode("info_hash"), info);
  const context = concat(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = await labeledExtract(suite, shared, te.encode("secret"), empty);
  const key = await labeledExpand(suite, secret, te.encode("key"), context, 32);
  const nonce = await labeledExpand(suite, secret, te.encode("base_nonce"), context, 12);
  const aesKey = await subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, aesKey, plaintext));
  return concat(enc, ct);
}

// RFC 9180 SetupBaseS + single-shot Seal with DHKEM(X25519); returns enc || ciphertext.
// `ephemeral` (a raw private key) is only for reproducing test vectors.
export async function hpkeSeal(recipientPublic, info, plaintext, ephemeral, aad = new Uint8Array(0)) {
  const eph = await x25519Ephemeral(ephemeral);
  const enc = new Uint8Array(await subtle.exportKey("raw", eph.publicKey));
  const pkR = await subtle.importKey("raw", recipientPublic, { name: "X25519" }, false, []);
  const dh = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: pkR }, eph.privateKey, 256));
  const eaePrk = await labeledExtract(SUITE_KEM, new Uint8Array(0), te.encode("eae_prk"), dh);
  const shared = await labeledExpand(SUITE_KEM, eaePrk, te.encode("shared_secret"), concat(enc, recipientPublic), 32);
  return sealWithSecret(SUITE_X25519, enc, shared, info, plaintext, aad);
}

// The same with the X-Wing KEM, for a 1216-byte hybrid public key; returns
// enc (1120 bytes) || ciphertext. `eseed` (64 bytes: ML-KEM's message, then
// the X25519 ephemeral key) is only for reproducing test vectors.
export async function xwingSeal(recipientPublic, info, plaintext, eseed, aad = new Uint8Array(0)) {
  const { encapsulate } = await import("./xwing.js");
  const { enc, sharedSecret } = await encapsulate(recipientPublic, eseed || undefined);
  return sealWithSecret(SUITE_XWING, enc, sharedSecret, info, plaintext, aad);
}

// §4.1: the stanza type for each kind of recipient, told apart by key length
// (a raw X25519 public key, or X-Wing's ML-KEM-768 key || X25519 key).
const STANZA_TYPES = new Map([
  [32, { type: STANZA_X25519_HPKE, label: LABEL_X25519, seal: hpkeSeal, bodySize: 32 + 48 }],
  [1216, { type: STANZA_XWING_HPKE, label: LABEL_XWING, seal: xwingSeal, bodySize: 1120 + 48 }],
]);

function stanzaType(recipient) {
  const t = STANZA_TYPES.get(recipient.length);
  if (!t) throw new Error(`not a recipient key: ${recipient.length} bytes`);
  return t;
}

// --- Header (§3, §4) -----------------------------------------------------

// Exact header length for these recipients (§3: prefix, stanzas, MAC).
export function headerSize(recipients) {
  return recipients.reduce((n, r) => n + 4 + stanzaType(r).bodySize, 27 + 32);
}

// recipients: raw public keys, 32 bytes for X25519 (stanza 0x0001) or 1216
// for X-Wing (stanza 0x0002); one stanza each, in the order given. `fixed`
// ({fileKey, salt, ephemeralKeys, extraStanzas}) exists only to reproduce test
// vectors: ephemeralKeys[i] is a 32-byte X25519 key or a 64-byte X-Wing eseed.
export async function sealHeader(recipients, fixed = {}) {
  const extra = fixed.extraStanzas || [];
  const count = recipients.length + extra.length;
  if (recipients.length < 1 || count > MAX_STANZAS) throw new Error("1 to 255 recipients");
  const size = headerSize(recipients) + extra.reduce((n, s) => n + 4 + s.body.length, 0);
  if (size > MAX_HEADER_SIZE) throw new Error("too many recipients for one header");
  const fileKey = fixed.fileKey || randomBytes(32);
  const salt = fixed.salt || randomBytes(SALT_SIZE);
  const prefix = concat(MAGIC, Uint8Array.of(1), salt, u16(count));
  const stanzas = extra.map((s) => concat(u16(s.type), u16(s.body.length), s.body));
  for (let i = 0; i < recipients.length; i++) {
    const { type, label, seal } = stanzaType(recipients[i]);
    const info = concat(label, prefix, u16(type));
    const eph = fixed.ephemeralKeys && fixed.ephemeralKeys[i];
    const body = await seal(recipients[i], info, fileKey, eph);
    stanzas.push(concat(u16(type), u16(body.length), body));
  }
  const unmaced = concat(prefix, ...stanzas);
  const mac = await hmac(await hkdf(fileKey, salt, LABEL_HEADER), unmaced);
  const payloadKey = await subtle.importKey(
    "raw", await hkdf(fileKey, salt, LABEL_PAYLOAD), "AES-GCM", false, ["encrypt"]);
  return { header: concat(unmaced, mac), payloadKey };
}

// --- Payload (§5, §6) ----------------------------------------------------

function chunkNonce(index, final) {
  const nonce = new Uint8Array(12);
  let n = index;
  for (let i = 10; i >= 0 && n > 0; i--) {
    nonce[i] = n % 256;
    n = Math.floor(n / 256);
  }
  nonce[11] = final ? 1 : 0;
  return nonce;
}

// Plaintext of padded chunk `index` of a source of `size` bytes; `read(a, b)`
// resolves to the source's bytes a..b-1 as a Uint8Array.
async function paddedChunk(read, size, total, index) {
  const start = index * CHUNK_SIZE;
  const end = Math.min(start + CHUNK_SIZE, total);
  const chunk = new Uint8Array(end - start); // zero-filled: the padding
  if (start < size) chunk.set(await read(start, Math.min(end, size)), 0);
  if (size >= start && size < end) chunk[size - start] = 0x80;
  return chunk;
}

// Exact payload length for `size` plaintext bytes, known before encrypting so
// an upload can be created with its final length (header length + this).
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + 16;
export function payloadSize(size) {
  const padded = paddedSize(size + 1);
  return padded + 16 * Math.ceil(padded / CHUNK_SIZE);
}

// The sealed chunks of a source from chunk `start` on, in order, with up to
// IN_FLIGHT chunks being read and sealed at once. Nonces depend only on the
// chunk index, so with the same payload key chunk i is the same bytes every
// time: an interrupted upload resumes by sealing again from the chunk that
// holds the server's offset, without keeping any ciphertext around.
export async function* sealChunks(read, size, payloadKey, start = 0) {
  const total = paddedSize(size + 1);
  const count = Math.ceil(total / CHUNK_SIZE);
  const seal = async (i) => {
    const chunk = await paddedChunk(read, size, total, i);
    const iv = chunkNonce(i, i === count - 1);
    return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv }, payloadKey, chunk));
  };
  const running = [];
  for (let next = start; next < count || running.length; ) {
    while (next < count && running.length < IN_FLIGHT) running.push(seal(next++));
    yield await running.shift();
  }
}

// Encrypt a source of `size` bytes: yields the header, then each sealed chunk.
export async function* encryptSource(read, size, recipients, fixed = {}) {
  const { header, payloadKey } = await sealHeader(recipients, fixed);
  yield header;
  yield* sealChunks(read, size, payloadKey);
}

// read(a, b) over a Blob or File, fetching 1 MiB blocks: one arrayBuffer()
// per 64 KiB chunk costs a round trip to the file each time (slow in Firefox).
// The two latest blocks are kept, enough for the chunks in flight.
const BLOCK = 16 * CHUNK_SIZE;
export function blobReader(blob) {
  const blocks = new Map();
  return async (a, b) => {
    const n = Math.floor(a / BLOCK);
    if (!blocks.has(n)) {
      blocks.set(n, blob.slice(n * BLOCK, (n + 1) * BLOCK).arrayBuffer().then((x) => new Uint8Array(x)));
      for (const k of blocks.keys()) if (k < n - 1 || k > n) blocks.delete(k);
    }
    return (await blocks.get(n)).subarray(a - n * BLOCK, b - n * BLOCK);
  };
}

export function encryptBlob(blob, recipients, fixed) {
  return encryptSource(blobReader(blob), blob.size, recipients, fixed);
}

export async function encryptBytes(bytes, recipients, fixed) {
  const parts = [];
  for await (const part of encryptSource(async (a, b) => bytes.subarray(a, b), bytes.length, recipients, fixed)) {
    parts.push(part);
  }
  return concat(...parts);
}
