// Runs the envelope conformance checks inside a real browser and reports
// them as JSON in #results (test harness only; never served by Lanterne).
import { encryptBlob, encryptBytes, hpkeSeal } from "/static/envelope.js";
import * as xwing from "/static/xwing.js";
import { xwingKat } from "/harness/xwing_kat.js";

const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const fromB64url = (s) => fromB64(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
const pattern = (n) => Uint8Array.from({ length: n }, (_, i) => i % 251);
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const sha256 = async (b) => hex(new Uint8Array(await crypto.subtle.digest("SHA-256", b)));
const getJson = async (url) => (await fetch(url)).json();

async function run() {
  const out = { env: { secure: isSecureContext, wasm: typeof WebAssembly }, kat: [], vectors: [] };
  out.xwingKat = await xwingKat(await getJson("/vectors/pqkat.json"), xwing);
  for (const v of await getJson("/vectors/kat.json")) {
    const e = v.encryptions[0];
    const got = await hpkeSeal(fromHex(v.pkRm), fromHex(v.info), fromHex(e.pt), fromHex(v.skEm), fromHex(e.aad));
    out.kat.push({ ok: hex(got) === v.enc + e.ct });
  }
  for (const v of await getJson("/vectors/ok.json")) {
    const w = v.writer;
    const plaintext = v.plaintext !== undefined ? fromB64(v.plaintext) : pattern(v.plaintext_length);
    const fixed = {
      fileKey: fromB64(w.file_key),
      salt: fromB64(w.salt),
      ephemeralKeys: w.ephemeral_keys.map(fromB64),
      extraStanzas: w.extra_stanzas.map((s) => ({ type: s.type, body: fromB64(s.body) })),
    };
    const got = await encryptBytes(plaintext, w.recipients.map(fromB64), fixed);
    out.vectors.push({ name: v.name, sha256: await sha256(got), length: got.length });
  }
  // A random file, encrypted with fresh keys the way the upload page does it.
  const params = new URLSearchParams(location.search);
  const size = Number(params.get("size"));
  const plain = new Blob([crypto.getRandomValues(new Uint8Array(Math.min(size, 65536))), new Uint8Array(Math.max(0, size - 65536)).fill(7)]);
  const parts = [];
  for await (const part of encryptBlob(plain, [fromB64url(params.get("recipient"))])) parts.push(part);
  await fetch("/upload/plain", { method: "POST", body: plain });
  await fetch("/upload/sealed", { method: "POST", body: new Blob(parts) });
  // The same file to an X25519 and a hybrid recipient together (stanzas 0x0001, 0x0002).
  const both = [];
  for await (const part of encryptBlob(plain, [fromB64url(params.get("recipient")), fromB64url(params.get("hybrid"))])) both.push(part);
  await fetch("/upload/sealed-hybrid", { method: "POST", body: new Blob(both) });
  return out;
}

run().then(
  (out) => { document.getElementById("results").textContent = JSON.stringify(out); document.title = "done"; },
  (err) => { document.getElementById("results").textContent = JSON.stringify({ error: String(err) }); document.title = "done"; },
);
