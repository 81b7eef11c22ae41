// The draft-ietf-hpke-pq KEM vectors for X-Wing (KEM 0x647a, from
// cryptography_vectors) against server/static/xwing.js: the public key from
// the seed skRm, then enc and the shared secret from the encapsulation
// randomness ikmE. Shared by the browser harness and tests/js/xwing_kat.mjs.
const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

export async function xwingKat(vectors, xwing) {
  const out = [];
  for (const v of vectors.filter((v) => v.kem_id === 0x647a)) {
    const pk = await xwing.publicKeyFromSeed(fromHex(v.skRm));
    const { enc, sharedSecret } = await xwing.encapsulate(fromHex(v.pkRm), fromHex(v.ikmE));
    out.push({ pk: hex(pk) === v.pkRm, enc: hex(enc) === v.enc, shared_secret: hex(sharedSecret) === v.shared_secret });
  }
  return out;
}
