// Lanterne: encrypt in the browser, upload ciphertext with tus 1.0 (docs/UPLOADS.md).
// Progressive enhancement of the submit form: when this browser cannot do
// everything needed, nothing here runs and the form posts as without JavaScript.
import { SEALED_CHUNK_SIZE, blobReader, payloadSize, sealChunks, sealHeader } from "./envelope.js";
import { UploadView, browserEncrypts } from "./upload-ui.js";

// Bytes per PATCH: small enough to survive a Tor circuit, and at least an S3
// part (5 MiB), so that an instance on S3 sends each one as a part of the
// object instead of staging it (docs/SCALE_OUT.md).
const SEGMENT = 5 * 1024 * 1024;
const RETRIES = 10; // per object, with backoff up to MAX_WAIT: a few minutes in all
const MAX_WAIT = 30; // seconds
const TUS = { "Tus-Resumable": "1.0.0" };
const MANIFEST_TYPE = "lanterne-manifest/v1";
const te = new TextEncoder();

class UploadError extends Error {
  constructor(message, retry, refused = false) {
    super(message);
    this.retry = retry; // worth trying again (network, 5xx, offset out of step)
    this.refused = refused; // the server will not take this upload now: offer the plain form
  }
}

// What the resumable path answers when it will not take an upload (full, too
// large, too many): the plain form may still be able to send it.
const REFUSED = new Set([413, 429, 507]);

async function call(url, init, signal) {
  let response;
  try {
    response = await fetch(url, {
      ...init, headers: { ...TUS, ...init.headers }, signal,
      credentials: "same-origin", cache: "no-store", redirect: "error",
    });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new UploadError(String(err), true); // connection lost, server down
  }
  // 423: the server is still receiving a PATCH this browser gave up on.
  if (REFUSED.has(response.status)) throw new UploadError(`HTTP ${response.status}`, false, true);
  if (response.status >= 500 || response.status === 423) throw new UploadError(`HTTP ${response.status}`, true);
  return response;
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});

function fromBase64(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
}

// The key to encrypt to for one journalist of recipients.json: the hybrid
// "xwing" key when the entry lists one (stanza 0x0002), else its "x25519" key
// (0x0001); entries from before typed keys have only `encryption_key`.
const KEY_SIZES = { xwing: 1216, x25519: 32 };
function recipientKey(entry) {
  if (typeof entry === "string") return fromBase64(entry);
  const typed = Array.isArray(entry.keys) ? entry.keys : [];
  for (const type of ["xwing", "x25519"]) {
    const found = typed.find((k) => k && k.type === type);
    if (found) {
      const key = fromBase64(found.key);
      if (key.length !== KEY_SIZES[type]) throw new UploadError("bad keys", false);
      return key;
    }
  }
  return fromBase64(entry.encryption_key);
}

// The newsroom's signed key directory (envelope/SPEC.md §11). When the page
// names a newsroom key, only the journalists of a directory signed by exactly
// that key, with a serial no lower than the page's, are encrypted to; anything
// else stops the upload (never the plain form: see docs/UPLOADS.md).
const DIRECTORY_LABEL = te.encode("lanterne/v1/key-directory");

class DirectoryError extends UploadError {
  constructor(message) {
    super(message, false);
    this.directory = true;
  }
}

// The desk the source sends to (docs/DESKS.md): a logged-in source's own
// (data-desk), else the one chosen on the form (a hidden field when there is
// one desk); "" for the whole newsroom (an instance without desks).
function chosenDesk(form) {
  if (form.dataset.desk) return form.dataset.desk;
  const field = form.elements.namedItem("desk");
  return field ? field.value : "";
}

// A directory's recipients for a desk (envelope/SPEC.md §11.1): its members and
// the all-desk journalists, in directory order; every journalist for no desk.
function deskJournalists(inner, desk) {
  if (!desk) return inner.journalists;
  const found = Array.isArray(inner.desks) ? inner.desks.find((d) => d && d.name === desk) : null;
  if (inner.type !== "lanterne-key-directory-payload/v2" || !found || !Array.isArray(found.members)) throw new DirectoryError("no such desk");
  const names = new Set([...found.members, ...(Array.isArray(inner.all_desks) ? inner.all_desks : [])]);
  const chosen = inner.journalists.filter((j) => j && names.has(j.name));
  if (!chosen.length) throw new DirectoryError("nobody in this desk");
  return chosen;
}

async function signedJournalists(form, doc) {
  const pinned = form.dataset.newsroomKey;
  const d = doc.directory;
  if (!d || d.type !== "lanterne-key-directory/v1" || d.newsroom_key !== pinned) throw new DirectoryError("not signed by the newsroom key");
  const key = await crypto.subtle.importKey("raw", fromBase64(pinned), { name: "Ed25519" }, false, ["verify"]);
  const payload = fromBase64(d.payload);
  const signed = new Uint8Array(DIRECTORY_LABEL.length + payload.length);
  signed.set(DIRECTORY_LABEL);
  signed.set(payload, DIRECTORY_LABEL.length);
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, fromBase64(d.signature), signed))) throw new DirectoryError("bad signature");
  const inner = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  const types = ["lanterne-key-directory-payload/v1", "lanterne-key-directory-payload/v2"];
  if (!types.includes(inner.type) || !Number.isSafeInteger(inner.serial)) throw new DirectoryError("not a directory");
  if (inner.serial < Number(form.dataset.directorySerial)) throw new DirectoryError("older than the page's");
  if (!Array.isArray(inner.journalists)) throw new DirectoryError("no journalists");
  return deskJournalists(inner, chosenDesk(form));
}

async function loadRecipients(form, lang, signal) {
  const desk = chosenDesk(form);
  const query = desk ? `?desk=${encodeURIComponent(desk)}` : "";
  const response = await call(`/${lang}/recipients.json${query}`, { headers: {} }, signal);
  if (!response.ok) throw new UploadError(`HTTP ${response.status}`, false);
  const doc = await response.json();
  if (form.dataset.newsroomKey) return (await signedJournalists(form, doc)).map(recipientKey);
  let list = doc.recipients ?? doc.journalists ?? doc;
  if (!Array.isArray(list)) list = Object.values(list);
  const keys = list.map(recipientKey);
  if (!keys.length || keys.some((k) => k.length !== 32 && k.length !== 1216)) throw new UploadError("bad keys", false);
  return keys;
}

// One envelope being uploaded. The header and payload key are made once and
// kept: sealing is deterministic from there, so after an interruption the
// ciphertext from the server's offset is produced again instead of stored.
class Upload {
  constructor(label, source, visible = true) {
    this.label = label;
    this.source = source; // a Blob or File: read slice by slice, never whole
    this.visible = visible;
    this.sent = 0;
    this.url = null;
    this.done = false;
  }

  get id() {
    return this.url.slice(this.url.lastIndexOf("/") + 1);
  }

  async prepare(recipients) {
    const { header, payloadKey } = await sealHeader(recipients);
    this.header = header;
    this.payloadKey = payloadKey;
    this.length = header.length + payloadSize(this.source.size);
  }

  async create(signal) {
    const r = await call("/tus/", { method: "POST", headers: { "Upload-Length": String(this.length) } }, signal);
    const where = r.headers.get("Location");
    if (r.status !== 201 || !where) throw new UploadError(`HTTP ${r.status}`, false);
    this.url = new URL(where, location.href).pathname;
  }

  async offset(signal) {
    const r = await call(this.url, { method: "HEAD", headers: {} }, signal);
    const offset = Number(r.headers.get("Upload-Offset"));
    if (r.status !== 200 || !Number.isSafeInteger(offset)) throw new UploadError(`HTTP ${r.status}`, false);
    return offset;
  }

  // The ciphertext from byte `offset` to the end (chunk i starts at
  // header + i * SEALED_CHUNK_SIZE).
  async* ciphertext(offset) {
    const h = this.header.length;
    if (offset < h) yield this.header.subarray(offset);
    const from = Math.max(0, offset - h);
    const first = Math.floor(from / SEALED_CHUNK_SIZE);
    let skip = from - first * SEALED_CHUNK_SIZE;
    for await (const sealed of sealChunks(blobReader(this.source), this.source.size, this.payloadKey, first)) {
      yield skip ? sealed.subarray(skip) : sealed;
      skip = 0;
    }
  }

  // Encrypt and PATCH from `offset`: the next segment is sealed while the
  // previous one is on the wire; at most two segments are held at once.
  async push(offset, signal, progress) {
    const patch = async (blob, at) => {
      const r = await call(this.url, {
        method: "PATCH", body: blob,
        headers: { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(at) },
      }, signal);
      if (r.status === 409) throw new UploadError("offset out of step", true);
      if (r.status !== 204) throw new UploadError(`HTTP ${r.status}`, false);
      const now = Number(r.headers.get("Upload-Offset"));
      if (now !== at + blob.size) throw new UploadError("offset out of step", true);
      this.sent = now;
      progress();
    };
    let parts = [];
    let size = 0;
    let at = offset;
    let inFlight = null;
    const flush = async () => {
      const blob = new Blob(parts);
      parts = [];
      if (inFlight) await inFlight;
      inFlight = patch(blob, at);
      inFlight.catch(() => {}); // awaited later; no unhandled rejection meanwhile
      at += size;
      size = 0;
    };
    for await (const piece of this.ciphertext(offset)) {
      parts.push(piece);
      size += piece.length;
      if (size >= SEGMENT) await flush();
    }
    if (size) await flush();
    if (inFlight) await inFlight;
    this.done = true;
  }

  // Resume from wherever the server is, retrying with backoff on lost
  // connections and server errors (a restart included).
  async deliver(signal, view) {
    let fresh = this.sent === 0;
    for (let attempt = 0; ; attempt++) {
      const before = this.sent;
      try {
        const offset = fresh ? 0 : await this.offset(signal);
        fresh = false;
        this.sent = offset;
        await this.push(offset, signal, () => view.progress());
        return;
      } catch (err) {
        if (!(err instanceof UploadError) || !err.retry || attempt >= RETRIES) throw err;
        if (this.sent > before) attempt = 0; // it was moving: a new outage, not the same one
        const wait = Math.min(2 ** attempt, MAX_WAIT);
        view.retrying(wait);
        await sleep(wait * 1000, signal);
        view.sending();
      }
    }
  }
}

function manifestOf(form, lang, message, files) {
  const answers = [];
  for (const field of form.querySelectorAll("[name^='q_']")) {
    const answer = field.value.trim();
    const label = form.querySelector(`label[for='${field.id}']`);
    if (answer) answers.push({ id: field.name.slice(2), question: label.textContent.trim(), answer });
  }
  return {
    type: MANIFEST_TYPE,
    received_on: new Date().toISOString().slice(0, 10), // UTC, as Tor Browser reports
    language: lang,
    follow_up: form.dataset.followUp === "true",
    message: message ? { object: message.id, size: message.source.size } : null,
    files: files.map((f) => ({
      object: f.id, name: f.source.name.normalize("NFC"), type: mimeType(f.source.type), size: f.source.size,
    })),
    answers,
  };
}

// The same rule as the server's clean_content_type.
function mimeType(raw) {
  const value = raw.split(";")[0].trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,127}$/.test(value)
    ? value : "application/octet-stream";
}

// Checks the no-JS path leaves to the server, shown with the browser's own
// validation bubbles. Returns false when the form should not be sent.
function validate(form, view) {
  const { message, files } = form.elements;
  for (const el of [message, files]) el.setCustomValidity("");
  let problem = null;
  if (!message.value.trim() && !files.files.length) problem = [message, view.t("empty")];
  else if (files.files.length > Number(form.dataset.maxFiles)) {
    problem = [files, view.t("tooMany", { count: form.dataset.maxFiles })];
  } else {
    const big = [...files.files].find((f) => f.size > Number(form.dataset.maxFileBytes));
    if (big) problem = [files, view.t("tooLarge", { name: big.name })];
  }
  if (!problem) return true;
  problem[0].setCustomValidity(problem[1]);
  problem[0].reportValidity();
  problem[0].addEventListener("input", () => problem[0].setCustomValidity(""), { once: true });
  problem[0].addEventListener("change", () => problem[0].setCustomValidity(""), { once: true });
  return false;
}

// The session's CSRF token, read again just before committing: sessions live
// in the server's memory, so a restart or a long upload may have ended ours
// (the uploads themselves belong to a separate cookie and survive).
async function freshToken(lang, signal) {
  const response = await call(`/${lang}/submit`, { headers: {} }, signal);
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const token = page.querySelector("#commit-form [name=csrf_token]");
  if (!response.ok || !token) throw new UploadError(`HTTP ${response.status}`, true);
  return token.value;
}

function commit(uploads, token, desk) {
  const form = document.getElementById("commit-form");
  form.elements.csrf_token.value = token;
  if (desk) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = "desk";
    input.value = desk;
    form.append(input);
  }
  for (const u of uploads) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = u.kind;
    input.value = u.id;
    form.append(input);
  }
  // Not requestSubmit(): Chromium ignores it after an await. A plain submit
  // is a normal navigation, so the browser follows the server's 303.
  HTMLFormElement.prototype.submit.call(form);
}

// Delete what the server holds; a failure here leaves it to expire.
async function forget(created) {
  await Promise.allSettled(created.filter((u) => u.url).map((u) =>
    fetch(u.url, { method: "DELETE", headers: TUS, credentials: "same-origin" })));
}

async function start() {
  const form = document.getElementById("submit-form");
  if (!form || !(await browserEncrypts(form))) return;
  const lang = document.documentElement.lang;
  const view = new UploadView(form, lang);
  view.enhance();
  let job = null; // {uploads, abort} of the submission being sent

  async function run() {
    const abort = new AbortController();
    job.abort = abort;
    view.sending();
    try {
      if (!job.uploads) {
        job.desk = chosenDesk(form); // what the files are encrypted to is what is committed
        const recipients = await loadRecipients(form, lang, abort.signal).catch((err) => {
          if (err instanceof UploadError) err.keys = true;
          throw err;
        });
        const { message, files } = form.elements;
        const parts = [];
        if (message.value.trim()) parts.push(Object.assign(new Upload(view.t("messageName"), new Blob([te.encode(message.value)])), { kind: "message" }));
        for (const f of files.files) parts.push(Object.assign(new Upload(f.name, f), { kind: "file" }));
        for (const u of parts) {
          await u.prepare(recipients);
          await u.create(abort.signal);
          job.created.push(u);
        }
        const manifest = manifestOf(form, lang, parts.find((u) => u.kind === "message"), parts.filter((u) => u.kind === "file"));
        const m = Object.assign(new Upload("", new Blob([te.encode(JSON.stringify(manifest))]), false), { kind: "manifest" });
        await m.prepare(recipients);
        await m.create(abort.signal);
        job.created.push(m);
        job.uploads = [...parts, m]; // the manifest last: it names the others
        view.show(job.uploads);
      }
      for (const u of job.uploads) if (!u.done) await u.deliver(abort.signal, view);
      view.finishing();
      commit(job.uploads, await freshToken(lang, abort.signal), job.desk);
    } catch (err) {
      if (abort.signal.aborted) return;
      if (err.refused) view.refused();
      else view.failed(err.directory ? "directoryFailed" : err.keys ? "keysFailed" : "failed");
    }
  }

  // The resumable path refused: with the source's click, the same form goes as
  // without JavaScript (the page has said the server then encrypts it).
  async function sendPlain() {
    const { created, abort } = job;
    abort?.abort();
    job = null;
    await forget(created);
    try {
      const token = await freshToken(lang, new AbortController().signal);
      form.elements.csrf_token.value = token;
    } catch {
      // The token from the page load may still be good: the server will say if not.
    }
    form.inert = false;
    HTMLFormElement.prototype.submit.call(form);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (job || !validate(form, view)) return;
    job = { created: [] };
    form.inert = true;
    view.open();
    run();
  });
  view.onRetry(() => { view.retryShown(false); run(); });
  view.onPlain(sendPlain);
  view.onCancel(async () => {
    if (!job) return;
    const { created, abort } = job;
    abort?.abort();
    job = null;
    await forget(created);
    form.inert = false;
    view.cancelled();
  });
}

start();
