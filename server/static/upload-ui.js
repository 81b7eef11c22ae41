// What the source sees while upload.js works: progress, speed, time left,
// cancel and retry. Every string comes from the page (rendered in the page's
// language by the server), and every element exists in the HTML already,
// hidden until used, so the layout is the same with JavaScript off.

// Whether this browser can encrypt what the source sends: WebCrypto with
// X25519, in a secure context (an onion, or this machine).
// `signedBy`: the element naming the newsroom key (data-newsroom-key), if any.
export async function browserEncrypts(signedBy = null) {
  try {
    if (!globalThis.isSecureContext || !globalThis.crypto || !crypto.subtle) return false;
    await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    // A signed key directory is checked with Ed25519: without it, the plain
    // form (the server checks the same signature before encrypting).
    if (signedBy?.dataset.newsroomKey) await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    return true;
  } catch {
    return false;
  }
}

// Say so instead of the server-side statement (templates/_encryption_path.html).
export function showBrowserPath() {
  document.getElementById("path-server").hidden = true;
  document.getElementById("path-browser").hidden = false;
}

const STATUS_EVERY = 10000; // ms between spoken progress updates: enough to follow, not a flood
const RATE_WINDOW = 10000; // ms of history behind the speed shown

export class UploadView {
  constructor(form, lang) {
    this.form = form;
    this.section = document.getElementById("upload");
    this.strings = this.section.dataset;
    this.status = document.getElementById("upload-status");
    this.bar = document.getElementById("upload-all");
    this.detail = document.getElementById("upload-all-detail");
    this.items = document.getElementById("upload-items");
    this.cancel = document.getElementById("upload-cancel");
    this.retry = document.getElementById("upload-retry");
    this.plain = document.getElementById("upload-plain");
    this.number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    this.units = this.strings.units.split(" ");
    this.uploads = [];
  }

  t(key, vars = {}) {
    return this.strings[key].replace(/\{(\w+)\}/g, (_, name) => vars[name]);
  }

  // This browser encrypts: say so instead of the server-side statement.
  enhance() {
    showBrowserPath();
  }

  size(n) {
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < this.units.length - 1) {
      value /= 1024;
      unit++;
    }
    return `${unit ? this.number.format(value) : value} ${this.units[unit]}`;
  }

  static duration(seconds) {
    const s = Math.max(1, Math.round(seconds));
    const two = (n) => String(n).padStart(2, "0");
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
  }

  open() {
    this.section.hidden = false;
    this.cancel.hidden = false;
    this.retry.hidden = true;
    this.items.replaceChildren();
    this.bar.value = 0;
    this.detail.textContent = "";
    this.say(this.t("preparing"));
    this.section.querySelector("h2").focus();
  }

  show(uploads) {
    this.uploads = uploads;
    this.samples = [];
    const row = document.getElementById("upload-item");
    uploads.forEach((u, i) => {
      if (!u.visible) return;
      const li = row.content.firstElementChild.cloneNode(true);
      const name = li.querySelector(".name");
      name.id = `upload-item-${i}`;
      name.textContent = u.label;
      li.querySelector("progress").setAttribute("aria-labelledby", name.id);
      u.row = li;
      this.items.append(li);
    });
    this.progress();
  }

  // Called after every acknowledged segment.
  progress() {
    const now = performance.now();
    const total = this.uploads.reduce((n, u) => n + u.length, 0);
    const sent = this.uploads.reduce((n, u) => n + u.sent, 0);
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[1][0] > RATE_WINDOW) this.samples.shift();
    const [t0, s0] = this.samples[0];
    const rate = now > t0 && sent > s0 ? ((sent - s0) * 1000) / (now - t0) : 0;
    for (const u of this.uploads) {
      if (!u.row) continue;
      u.row.querySelector("progress").value = u.length ? u.sent / u.length : 0;
      u.row.querySelector(".hint").textContent = this.t("of", { done: this.size(u.sent), total: this.size(u.length) });
    }
    this.bar.value = total ? sent / total : 0;
    let text = this.t("of", { done: this.size(sent), total: this.size(total) });
    if (rate > 0 && sent < total) {
      text += ` · ${this.t("rate", { speed: this.size(rate), time: UploadView.duration((total - sent) / rate) })}`;
    }
    this.detail.textContent = text;
    if (!this.spokenAt || now - this.spokenAt > STATUS_EVERY) this.say(text);
  }

  say(text) {
    this.status.textContent = text;
    this.spokenAt = performance.now();
  }

  sending() {
    if (this.uploads.length) this.progress();
    else this.say(this.t("preparing"));
  }

  retrying(seconds) {
    this.say(this.t("retrying", { seconds }));
  }

  finishing() {
    this.cancel.hidden = true;
    this.say(this.t("finishing"));
  }

  failed(key) {
    this.say(this.t(key));
    this.retry.hidden = false;
    this.retry.focus();
  }

  // The server will not take the encrypted upload now; the plain form may.
  // Say what that changes before the source chooses it.
  refused() {
    this.say(this.t("refused"));
    document.getElementById("path-browser").hidden = true;
    document.getElementById("path-server").hidden = false;
    this.plain.hidden = false;
    this.plain.focus();
  }

  retryShown(shown) {
    this.retry.hidden = !shown;
  }

  cancelled() {
    this.cancel.hidden = true;
    this.retry.hidden = true;
    this.uploads = [];
    this.say(this.t("cancelled"));
    this.form.querySelector("button[type=submit]").focus();
  }

  onRetry(fn) {
    this.retry.addEventListener("click", fn);
  }

  onCancel(fn) {
    this.cancel.addEventListener("click", fn);
  }

  onPlain(fn) {
    this.plain.addEventListener("click", () => {
      this.plain.disabled = true;
      this.cancel.hidden = true;
      this.say(this.t("plainSending"));
      fn();
    });
  }
}
