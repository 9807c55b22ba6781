// Fineline consent widget, embedded on a merchant's pages with
//
//   <script src="{base}/widget.js" data-merchant="demo-shop"
//           data-token="JWT (optional)" data-lang="en|es|de|fr (optional)" defer></script>
//
// It draws a <fineline-consent> panel in a Shadow DOM, fixed to a corner so
// the host page's layout never moves, and talks only to the origin it was
// loaded from. It works under a strict CSP: no eval, no inline handlers, no
// HTML strings (the DOM is built with createElement and textContent), styles
// through a constructed stylesheet adopted by the shadow root.
//
// Page API: window.Fineline.allowed(purpose) answers synchronously from the
// last known state (default deny); open() and close() show and hide the
// panel. Every state change is stored in localStorage and announced with a
// "fineline:change" event on document. A known shopper (data-token) also
// chooses how personal the merchant may be (the privacy level); an
// anonymous visitor is not asked.
(() => {
  "use strict";

  const TAG = "fineline-consent";
  // Capture the tag now: document.currentScript is only set while this runs.
  const script = document.currentScript || document.querySelector('script[src*="widget.js"][data-merchant]');
  if (!script || !window.customElements || customElements.get(TAG)) {
    return; // no tag to read, or the script was included twice
  }
  const merchant = script.dataset.merchant;
  if (!merchant) {
    console.warn("Fineline: the script tag needs data-merchant");
    return;
  }
  const base = new URL(script.src, location.href).origin;
  const api = base + "/w/v1/" + encodeURIComponent(merchant) + "/";
  const token = script.dataset.token || "";
  const storeKey = "fineline:" + merchant;

  // Words the widget needs before (or without) the config: the sensitive
  // badge, an error line, the close button and a fallback title. The config's
  // texts win when they carry "sensitive_badge", "error", "close" or "title".
  const BUILTIN = {
    en: ["Sensitive", "The consent service is unavailable. Nothing was changed; please try again later.", "Close", "Privacy choices"],
    es: ["Sensible", "El servicio de consentimiento no está disponible. No se ha cambiado nada; inténtalo más tarde.", "Cerrar", "Opciones de privacidad"],
    de: ["Sensibel", "Der Einwilligungsdienst ist nicht erreichbar. Es wurde nichts geändert; bitte versuche es später noch einmal.", "Schließen", "Datenschutz-Einstellungen"],
    fr: ["Sensible", "Le service de consentement est indisponible. Rien n'a été modifié ; réessayez plus tard.", "Fermer", "Choix de confidentialité"],
  };
  const pick = (v) => {
    const l = (v || "").slice(0, 2).toLowerCase();
    return BUILTIN[l] ? l : "";
  };
  let lang = pick(script.dataset.lang) || pick(document.documentElement.lang) || pick(navigator.language) || "en";

  let cfg = null; // the config: purposes and texts
  let consents = readStored(); // purpose key -> {state, allowed, reason}
  let level = ""; // the privacy level shown; "" for an anonymous visitor
  let stateLoaded = false;
  let receiptURL = "";
  let returnFocus = null;
  let deviceID = "";
  let loading = null; // the load under way, if any
  let pending = false; // a save under way

  // ---- state -------------------------------------------------------------

  function readStored() {
    try {
      const v = JSON.parse(localStorage.getItem(storeKey) || "null");
      return v && typeof v === "object" ? v : {};
    } catch {
      return {}; // storage blocked or corrupt: default deny
    }
  }

  function allowed(purpose) {
    const c = Object.prototype.hasOwnProperty.call(consents, purpose) ? consents[purpose] : null;
    return !!c && c.allowed === true;
  }

  // apply takes a state answer: {consents, privacy_level, receipt_url}.
  function apply(data) {
    if (!data || typeof data.consents !== "object" || data.consents === null) {
      throw new Error("Fineline: malformed state");
    }
    const json = JSON.stringify(data.consents);
    consents = JSON.parse(json);
    level = typeof data.privacy_level === "string" ? data.privacy_level : "";
    stateLoaded = true;
    receiptURL = safeURL(data.receipt_url);
    try {
      localStorage.setItem(storeKey, json);
    } catch {
      // storage blocked: the in-memory state still answers allowed()
    }
    document.dispatchEvent(new CustomEvent("fineline:change", { detail: { consents: JSON.parse(json), privacy_level: level } }));
    sync();
  }

  // safeURL keeps only http(s) links, so a receipt link can never run script.
  function safeURL(u) {
    try {
      const url = new URL(u);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : "";
    } catch {
      return "";
    }
  }

  // ---- device id (anonymous visitors) -------------------------------------

  function device() {
    if (deviceID) {
      return deviceID;
    }
    try {
      const m = document.cookie.match(/(?:^|;\s*)fineline_device=([A-Za-z0-9-]{8,64})(?:;|$)/);
      deviceID = m ? m[1] : "";
    } catch {
      // cookies unavailable (sandboxed frame): keep an id for this page view
    }
    if (!deviceID) {
      deviceID = uuid();
      try {
        document.cookie = "fineline_device=" + deviceID + "; Path=/; Max-Age=31536000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
      } catch {
        // as above
      }
    }
    return deviceID;
  }

  // uuid uses crypto.randomUUID, which only secure (https) pages have, and
  // builds the same version 4 UUID from getRandomValues elsewhere.
  function uuid() {
    if (crypto.randomUUID) {
      return crypto.randomUUID();
    }
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // ---- network -------------------------------------------------------------

  // call fetches api+path and returns the JSON answer; it throws on network
  // errors, timeouts and any non-2xx status. State calls identify the
  // visitor; the config call sends no custom header, so it needs no preflight.
  async function call(path, method, body) {
    const config = path.startsWith("config");
    const headers = {};
    if (!config) {
      if (token) {
        headers.Authorization = "Bearer " + token;
      } else {
        headers["X-Fineline-Device"] = device();
      }
      if (navigator.globalPrivacyControl === true) {
        headers["X-Fineline-GPC"] = "1";
      }
    }
    if (body) {
      headers["Content-Type"] = "application/json";
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 15000);
    try {
      const res = await fetch(api + path, {
        method,
        headers,
        body: body ? JSON.stringify(body) : undefined,
        mode: "cors",
        credentials: "omit",
        cache: config ? "default" : "no-store",
        signal: ctl.signal,
      });
      if (!res.ok) {
        throw new Error("Fineline: HTTP " + res.status);
      }
      return await res.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // load fetches what is still missing (config, state) and opens the panel
  // the first time the visitor has a purpose they never decided.
  async function load(auto) {
    busy(true);
    say("");
    const [c, s] = await Promise.allSettled([
      cfg ? Promise.resolve(cfg) : call("config?lang=" + lang, "GET"),
      stateLoaded ? Promise.resolve(null) : call("state", "GET"),
    ]);
    let ok = c.status === "fulfilled" && s.status === "fulfilled";
    if (c.status === "fulfilled" && c.value !== cfg) {
      if (c.value && Array.isArray(c.value.purposes)) {
        cfg = c.value;
        cfg.purposes = cfg.purposes.filter((p) => p && typeof p.key === "string");
        cfg.levels = Array.isArray(cfg.levels) ? cfg.levels.filter((l) => l && typeof l.key === "string") : [];
        lang = pick(cfg.lang) || lang;
        build();
      } else {
        ok = false;
      }
    }
    if (s.status === "fulfilled" && s.value) {
      try {
        apply(s.value);
      } catch {
        ok = false;
      }
    }
    busy(false);
    if (!ok) {
      say(word("error", 1), true);
      return;
    }
    if (auto && cfg.purposes.some((p) => !Object.prototype.hasOwnProperty.call(consents, p.key))) {
      show(false);
    }
  }

  function start(auto) {
    loading = load(auto)
      .catch(() => {})
      .then(() => {
        loading = null;
      });
  }

  // save sends the choices of one button: "accept", "decline" or "save".
  async function save(kind) {
    if (!cfg || pending) {
      return;
    }
    const choices = {};
    const explicit = [];
    // What the visitor saw, so that only what they changed is applied and
    // a change made elsewhere meanwhile is not undone.
    const shown = {};
    for (const p of cfg.purposes) {
      const on = allowed(p.key);
      shown[p.key] = Object.prototype.hasOwnProperty.call(consents, p.key) ? (on ? "on" : "off") : "undecided";
      if (kind === "accept") {
        if (!p.sensitive) {
          choices[p.key] = "granted"; // Accept never switches a sensitive purpose on
        }
      } else if (kind === "decline") {
        choices[p.key] = on ? "withdrawn" : "denied";
      } else {
        const want = boxes[p.key].checked;
        if (want !== on) {
          choices[p.key] = want ? "granted" : "withdrawn";
          if (want && p.sensitive) {
            explicit.push(p.key);
          }
        }
      }
    }
    // The privacy level, sent only when the shopper changed it from the one
    // shown, with that one.
    const picked = Object.keys(radios).find((k) => radios[k].checked) || "";
    const levelChanged = !levelBox.hidden && level !== "" && picked !== "" && picked !== level;
    if (Object.keys(choices).length === 0 && !levelChanged) {
      say(word("saved"));
      return;
    }
    pending = true;
    busy(true);
    say("");
    try {
      const sent = {};
      for (const k in choices) {
        sent[k] = shown[k];
      }
      const body = { choices, explicit, shown: sent };
      if (levelChanged) {
        body.privacy_level = picked;
        body.privacy_level_shown = level;
      }
      apply(await call("consents", "PUT", body));
      say(word("saved"));
    } catch {
      say(word("error", 1), true); // the switches keep the visitor's picks for a retry
    }
    pending = false;
    busy(false);
  }

  // ---- view ----------------------------------------------------------------

  const CSS = `
:host{all:initial;display:block;position:fixed;z-index:2147483000;right:1rem;bottom:1rem;width:min(26rem,calc(100vw - 2rem));
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1c2430}
:host([hidden]){display:none}
*{box-sizing:border-box}
.panel{background:#fff;border:1px solid #5b6573;border-radius:10px;box-shadow:0 6px 24px rgba(0,0,0,.25);
padding:1rem 1.1rem;max-height:calc(100vh - 2rem);overflow:auto}
.panel:focus{outline:none}
.top{display:flex;justify-content:space-between;align-items:flex-start;gap:.75rem}
h2{font-size:1.15rem;margin:0}
p{margin:.4rem 0}
ul{list-style:none;margin:.75rem 0;padding:0}
li{border-top:1px solid #d5dae1;padding:.6rem 0}
li label{display:flex;justify-content:space-between;align-items:center;gap:.75rem;font-weight:600;cursor:pointer}
input[role=switch]{appearance:none;-webkit-appearance:none;flex:none;position:relative;width:2.75rem;height:1.5rem;margin:0;
border-radius:999px;background:#6b7480;cursor:pointer}
input[role=switch]::after{content:"";position:absolute;top:.2rem;left:.2rem;width:1.1rem;height:1.1rem;border-radius:50%;
background:#fff;transition:left .15s}
input[role=switch]:checked{background:#1f7a3f}
input[role=switch]:checked::after{left:1.45rem}
fieldset{border:0;border-top:1px solid #d5dae1;margin:-.75rem 0 .75rem;padding:0;min-width:0}
legend{float:left;width:100%;padding:.6rem 0 0;font-weight:700}
.opt{clear:both;display:grid;grid-template-columns:auto minmax(0,1fr);column-gap:.5rem;align-items:center;padding-top:.4rem}
.opt input{width:1.15rem;height:1.15rem;margin:0;accent-color:#1d5bd8;cursor:pointer}
.opt label{font-weight:600;cursor:pointer;overflow-wrap:break-word}
.hint{grid-column:2;margin:0;color:#4a5563;font-size:.93rem}
.what{color:#4a5563;font-size:.93rem}
.badge{display:inline-block;background:#fff4e0;border:1px solid #b86e00;color:#6b3f00;font-weight:600;
border-radius:999px;padding:0 .6rem;font-size:.85rem}
.explain{color:#6b3f00;font-size:.93rem}
.renew{color:#6b3f00;font-size:.93rem;font-weight:600}
.actions{display:flex;flex-wrap:wrap;gap:.5rem}
button{font:inherit;cursor:pointer;border-radius:6px;padding:.5rem 1rem;border:2px solid #1d5bd8;background:#fff;color:#1d5bd8}
.choice{flex:1 1 0;background:#1d5bd8;color:#fff}
.close{flex:none;border-color:transparent;padding:.15rem .4rem;text-decoration:underline}
[aria-busy=true] .actions button{opacity:.6;cursor:wait}
a{color:#1d5bd8}
.status{font-weight:600;color:#1f7a3f;min-height:1.5em}
.status.err{color:#b42318}
:focus-visible{outline:3px solid #0b3d91;outline-offset:2px}
[hidden]{display:none!important}
@media (max-width:30rem){:host{right:.5rem;left:.5rem;bottom:.5rem;width:auto}}
@media (prefers-reduced-motion:reduce){input[role=switch]::after{transition:none}}
@media (forced-colors:active){input[role=switch]{border:2px solid ButtonText}input[role=switch]::after{background:ButtonText}}`;

  class FinelineConsent extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: "open" });
    }
  }
  customElements.define(TAG, FinelineConsent);

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text != null) {
      e.textContent = text;
    }
    return e;
  };

  const host = document.createElement(TAG);
  host.hidden = true;
  const root = host.shadowRoot;
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    // No constructable stylesheets (old browsers): plain but still fixed,
    // so the host page's layout never moves.
    Object.assign(host.style, {
      position: "fixed", right: "1rem", bottom: "1rem", zIndex: "2147483000", maxWidth: "26rem",
      maxHeight: "90vh", overflow: "auto", background: "#fff", color: "#1c2430", padding: "1rem", border: "1px solid #5b6573",
    });
  }

  const panel = el("div", "panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "false");
  panel.setAttribute("aria-labelledby", "fl-title");
  panel.tabIndex = -1;
  const top = el("div", "top");
  const title = el("h2");
  title.id = "fl-title";
  const closeBtn = el("button", "close");
  closeBtn.type = "button";
  top.append(title, closeBtn);
  const intro = el("p", "intro");
  const list = el("ul");
  // How personal the merchant may be: one radio group, for known shoppers.
  const levelBox = el("fieldset", "level");
  const levelLegend = el("legend");
  levelBox.append(levelLegend);
  levelBox.hidden = true;
  const actions = el("div", "actions");
  const acceptBtn = el("button", "choice");
  const declineBtn = el("button", "choice"); // same class as Accept: equal weight
  const saveBtn = el("button", "save");
  actions.append(acceptBtn, declineBtn, saveBtn);
  const status = el("p", "status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  const receipt = el("p", "receipt");
  const receiptLink = el("a");
  receiptLink.target = "_blank";
  receiptLink.rel = "noopener noreferrer";
  receipt.append(receiptLink);
  panel.append(top, intro, list, levelBox, actions, status, receipt);
  root.append(panel);

  for (const b of [acceptBtn, declineBtn, saveBtn]) {
    b.type = "button";
  }
  acceptBtn.addEventListener("click", () => save("accept"));
  declineBtn.addEventListener("click", () => save("decline"));
  saveBtn.addEventListener("click", () => save("save"));
  closeBtn.addEventListener("click", () => hide());
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      hide();
    }
  });

  let boxes = {}; // purpose key -> its switch
  let renews = {}; // purpose key -> its "terms changed" note
  let radios = {}; // privacy level -> its radio button

  // word returns a config text, or the built-in word at index i.
  function word(key, i) {
    const t = cfg && cfg.texts && cfg.texts[key];
    return typeof t === "string" && t ? t : i == null ? "" : BUILTIN[lang][i];
  }

  // build draws the texts and one row per purpose from the config.
  function build() {
    list.textContent = "";
    boxes = {};
    renews = {};
    cfg.purposes.forEach((p, i) => {
      const row = el("li");
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.setAttribute("role", "switch");
      box.setAttribute("aria-describedby", "fl-w" + i + (p.sensitive ? " fl-e" + i : ""));
      label.append(el("span", "name", String(p.name || p.key)), box);
      const what = el("p", "what", String(p.statement || ""));
      what.id = "fl-w" + i;
      row.append(label);
      if (p.sensitive) {
        const explain = el("p", "explain", word("sensitive"));
        explain.id = "fl-e" + i;
        row.append(el("p", "badge", word("sensitive_badge", 0)), what, explain);
      } else {
        row.append(what);
      }
      const renew = el("p", "renew", word("renew"));
      renew.hidden = true;
      row.append(renew);
      renews[p.key] = renew;
      boxes[p.key] = box;
      list.append(row);
    });
    levelBox.replaceChildren(levelLegend);
    radios = {};
    cfg.levels.forEach((l, i) => {
      const opt = el("div", "opt");
      const radio = el("input");
      radio.type = "radio";
      radio.name = "fl-level";
      radio.id = "fl-l" + i;
      radio.value = l.key;
      radio.setAttribute("aria-describedby", "fl-lh" + i);
      const label = el("label", null, String(l.name || l.key));
      label.htmlFor = radio.id;
      const hint = el("p", "hint", String(l.hint || ""));
      hint.id = "fl-lh" + i;
      opt.append(radio, label, hint);
      levelBox.append(opt);
      radios[l.key] = radio;
    });
    sync();
  }

  // sync shows the texts and sets every switch from the last known state.
  function sync() {
    panel.lang = lang;
    title.textContent = word("title", 3);
    closeBtn.textContent = word("close", 2);
    intro.textContent = word("intro");
    acceptBtn.textContent = word("accept");
    declineBtn.textContent = word("decline");
    saveBtn.textContent = word("save");
    actions.hidden = !cfg;
    for (const key in boxes) {
      boxes[key].checked = allowed(key);
      // Consent a material change of the terms paused (or is about to):
      // Accept, or the switch, renews it under the new terms.
      const c = Object.prototype.hasOwnProperty.call(consents, key) ? consents[key] : null;
      renews[key].hidden = !(c && (c.reason === "reconsent_required" || c.reason === "reconsent_due"));
    }
    levelLegend.textContent = word("level");
    levelBox.hidden = !cfg || !Object.prototype.hasOwnProperty.call(radios, level);
    for (const key in radios) {
      radios[key].checked = key === level;
    }
    receiptLink.textContent = word("receipt");
    if (receiptURL) {
      receiptLink.href = receiptURL;
    }
    receipt.hidden = !receiptURL;
  }

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("err", !!isError);
  }

  // busy marks a request under way. Buttons are not disabled, which would
  // drop keyboard focus; save() ignores clicks while one is pending.
  function busy(on) {
    panel.setAttribute("aria-busy", on ? "true" : "false");
  }

  // show opens the panel; focus moves into it only when the visitor asked.
  function show(focus) {
    if ((!cfg || !stateLoaded) && !loading) {
      start(false);
    }
    if (focus && host.hidden) {
      returnFocus = document.activeElement;
    }
    host.hidden = false;
    if (focus) {
      panel.focus();
    }
  }

  function hide() {
    host.hidden = true;
    if (returnFocus && returnFocus.isConnected && returnFocus.focus) {
      returnFocus.focus();
    }
    returnFocus = null;
  }

  const fineline = window.Fineline && typeof window.Fineline === "object" ? window.Fineline : {};
  fineline.allowed = allowed;
  fineline.open = () => show(true);
  fineline.close = hide;
  window.Fineline = fineline;

  sync();
  const mount = () => document.body.append(host);
  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }
  start(true);
})();
