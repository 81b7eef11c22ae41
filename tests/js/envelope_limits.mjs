// node tests/js/envelope_limits.mjs: what server/static/envelope.js refuses
// to write, printed as JSON for tests/test_xwing_vectors.py.
import { headerSize, sealHeader } from "../../server/static/envelope.js";
import { publicKeyFromSeed } from "../../server/static/xwing.js";

const outcome = async (f) => {
  try {
    return { ok: await f() };
  } catch (e) {
    return { error: String(e.message || e) };
  }
};
const hybrid = await publicKeyFromSeed(new Uint8Array(32).fill(1));
const x25519 = Uint8Array.from(Buffer.from("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", "hex"));
const many = (n) => Array.from({ length: n }, () => hybrid);
// ML-KEM-768 public key whose first coefficient is 4095 >= q = 3329 (FIPS 203 §7.2 modulus check).
const unreduced = hybrid.slice();
unreduced[0] = 0xff;
unreduced[1] |= 0x0f;

console.log(JSON.stringify({
  mixed_size: await outcome(async () => {
    const rs = [x25519, hybrid, x25519];
    return (await sealHeader(rs)).header.length === headerSize(rs) && headerSize(rs) === 27 + 84 * 2 + 1172 + 32;
  }),
  hybrid_55: await outcome(async () => (await sealHeader(many(55))).header.length),
  hybrid_56: await outcome(async () => (await sealHeader(many(56))).header.length),
  wrong_length: await outcome(async () => (await sealHeader([hybrid.subarray(1)])).header.length),
  unreduced_key: await outcome(async () => (await sealHeader([unreduced])).header.length),
}));
