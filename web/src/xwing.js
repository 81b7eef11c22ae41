// X-Wing, the hybrid KEM of Lanterne's stanza type 0x0002 (envelope/SPEC.md):
// ML-KEM-768 + X25519 with a SHA3-256 combiner, KEM id 0x647a of
// draft-ietf-hpke-pq (MLKEM768-X25519 = draft-connolly-cfrg-xwing-kem).
//
// scripts/build-js.sh bundles this file with the two noble functions it
// imports into server/static/xwing.js. Everything else stays in WebCrypto:
// X25519 here, the HPKE key schedule and AES-GCM in envelope.js. No
// WebAssembly: Tor Browser's "Safer" level turns it off.
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";

const subtle = globalThis.crypto.subtle;
const LABEL = Uint8Array.of(0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c); // "\.//^\", X-Wing's combiner label
// PKCS#8 wrapping of a raw X25519 private key (RFC 8410).
const PKCS8_X25519 = Uint8Array.of(
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
);
export const PUBLIC_KEY_SIZE = 1216; // ML-KEM-768 public key (1184) || X25519 public key (32)
export const ENC_SIZE = 1120; // ML-KEM-768 ciphertext (1088) || X25519 ephemeral public key (32)

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
};

// The X25519 key pair of a raw private key, in WebCrypto.
async function x25519(secret) {
  const privateKey = await subtle.importKey(
    "pkcs8", concat(PKCS8_X25519, secret), { name: "X25519" }, true, ["deriveBits"]);
  const { x } = await subtle.exportKey("jwk", privateKey);
  const raw = Uint8Array.from(atob(x.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  return { privateKey, publicKey: raw };
}

// X-Wing Encapsulate (EncapsulateDerand with a random 64-byte eseed): returns
// enc = ct_M || ct_X and the 32-byte shared secret. `eseed` is given only to
// reproduce test vectors; otherwise it is fresh from the browser's CSPRNG.
export async function encapsulate(publicKey, eseed = crypto.getRandomValues(new Uint8Array(64))) {
  if (publicKey.length !== PUBLIC_KEY_SIZE || eseed.length !== 64) throw new Error("X-Wing: bad key or seed length");
  const pkM = publicKey.subarray(0, 1184);
  const pkX = publicKey.subarray(1184);
  const { cipherText: ctM, sharedSecret: ssM } = ml_kem768.encapsulate(pkM, eseed.subarray(0, 32));
  const ephemeral = await x25519(eseed.subarray(32, 64));
  const peer = await subtle.importKey("raw", pkX, { name: "X25519" }, false, []);
  const ssX = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: peer }, ephemeral.privateKey, 256));
  const ctX = ephemeral.publicKey;
  return { enc: concat(ctM, ctX), sharedSecret: sha3_256(concat(ssM, ssX, ctX, pkX, LABEL)) };
}

// The public key of a 32-byte X-Wing private key (seed). Browsers never hold
// one; this exists so that the test vectors' pkRm can be checked here too.
export async function publicKeyFromSeed(seed) {
  const expanded = shake256(seed, { dkLen: 96 });
  const { publicKey: pkM } = ml_kem768.keygen(expanded.subarray(0, 64));
  return concat(pkM, (await x25519(expanded.subarray(64, 96))).publicKey);
}
