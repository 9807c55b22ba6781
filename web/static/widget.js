// Fineline consent widget: a banner, a dialog of choices, tags held back
// until consent, Google Consent Mode signals. Put it first in <head>:
//
//   <script src="{base}/widget.js" data-merchant="demo-shop" data-token="JWT (optional)"
//           data-lang data-privacy-button="off" data-consent-mode="off" (optional)></script>
//
// The README ("The consent widget") says what it does and how to gate tags.
// A cache never grants: Fineline.allowed(purpose) is false until this page
// view's live state (or the visitor's own click) says otherwise. It works
// under a strict CSP (no eval, inline handlers or HTML strings).
(() => {
  "use strict";

  const TAG = "fineline-consent";
  const script = document.currentScript || document.querySelector('script[src*="widget.js"][data-merchant]');
  if (!script || !window.customElements || customElements.get(TAG)) {
    return; // no tag to read, or the script was included twice
  }
  const opts = script.dataset;
  const merchant = opts.merchant;
  if (!merchant) {
    console.error("Fineline: the script tag needs data-merchant");
    return;
  }
  const api = new URL(script.src, location.href).origin + "/w/v1/" + encodeURIComponent(merchant) + "/";
  const token = opts.token || "";
  const storeKey = "fineline:" + merchant;
  const gpc = navigator.globalPrivacyControl === true;
  const has = (o, k) => !!o && Object.prototype.hasOwnProperty.call(o, k);
  const pick = (v) => {
    const l = (v || "").slice(0, 2).toLowerCase();
    return ["en", "es", "de", "fr"].includes(l) ? l : "";
  };
  const lang = pick(opts.lang) || pick(document.documentElement.lang) || pick(navigator.language) || "en";

  // ---- Google Consent Mode: denied until the live state says otherwise

  const MODES = ["ad_storage", "ad_user_data", "ad_personalization", "analytics_storage", "functionality_storage", "personalization_storage", "security_storage"];
  const useMode = opts.consentMode !== "off";
  const dataLayer = useMode ? (window.dataLayer = window.dataLayer || []) : null;
  function gtag() {
    dataLayer.push(arguments); // gtag reads Arguments objects, not arrays
  }
  let lastMode = "";
  if (useMode) {
    const d = {};
    MODES.forEach((t) => (d[t] = "denied"));
    d.wait_for_update = 500;
    gtag("consent", "default", d);
  }

  // ---- who the visitor is, and what is kept for them

  function cookieDevice() {
    try {
      const m = document.cookie.match(/(?:^|;\s*)fineline_device=([A-Za-z0-9-]{8,64})(?:;|$)/);
      return m ? m[1] : "";
    } catch {
      return ""; // cookies unavailable (sandboxed frame)
    }
  }
  let deviceID = token ? "" : cookieDevice();
  function device() {
    if (!deviceID) {
      deviceID = crypto.randomUUID ? crypto.randomUUID() : Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, "0")).join("");
      try {
        document.cookie = "fineline_device=" + deviceID + "; Path=/; Max-Age=31536000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
      } catch {
        // as above: an id for this page view only
      }
    }
    return deviceID;
  }
  function visitor() {
    if (!token) {
      return "d:" + device();
    }
    try {
      const sub = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
      return typeof sub === "string" ? "s:" + sub : "t:" + token;
    } catch {
      return "t:" + token; // unreadable: nothing kept is reused
    }
  }
  const who = visitor();

  let kept = {};
  try {
    kept = JSON.parse(localStorage.getItem(storeKey) || "{}") || {};
  } catch {
    // storage blocked or corrupt: nothing kept
  }
  if (kept.v !== who) {
    kept = { config: kept.config }; // another visitor: their answers are not ours, nor kept
  }
  if (!kept.config || kept.config.lang !== lang) {
    delete kept.config;
  }
  keep();
  function keep() {
    try {
      kept.v = who;
      localStorage.setItem(storeKey, JSON.stringify(kept));
    } catch {
      // storage blocked: the page view still works
    }
  }

  let cfg = null; // the config: purposes, texts, consent mode map
  let consents = has(kept, "consents") ? kept.consents : null; // last known state: for drawing only
  let level = "";
  let live = false; // consents came from the server on this page view
  let liveCfg = false;
  let refused = false;
  let pending = kept.pending || null; // a save not yet acknowledged
  let saving = false;
  let saves = 0; // choices made on this page view
  let retryIn = 0;
  let retryTimer = 0;
  let receiptURL = "";
  let returnFocus = null;
  const ran = new Set(); // purposes whose tags have run
  let reloadNeeded = false; // a purpose whose tags ran is no longer allowed

  // The visitor's own click on this page view answers until the server's
  // answer to it arrives: the tags they accepted run at once.
  let clicked = {};
  const state = (p) => (consents && has(consents, p) ? consents[p] : null);
  function allowed(purpose) {
    if (has(clicked, purpose)) {
      return clicked[purpose];
    }
    const c = live && state(purpose);
    return !!c && c.allowed === true;
  }
  const paused = (p) => {
    const c = state(p);
    return !!c && (c.reason === "reconsent_required" || c.reason === "reconsent_due");
  };

  // ---- network

  async function call(path, method, body) {
    const config = path.startsWith("config");
    const headers = {};
    if (!config) {
      if (token) {
        headers.Authorization = "Bearer " + token;
      } else {
        headers["X-Fineline-Device"] = device();
      }
      if (gpc) {
        headers["X-Fineline-GPC"] = "1";
      }
    }
    if (body) {
      headers["Content-Type"] = "application/json";
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 15000);
    try {
      const res = await fetch(api + path, { method, headers, body: body ? JSON.stringify(body) : undefined, mode: "cors", credentials: "omit", cache: "no-store", signal: ctl.signal });
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const err = new Error("Fineline: HTTP " + res.status);
        err.code = data && data.error && data.error.code;
        err.status = res.status;
        throw err;
      }
      return data;
    } finally {
      clearTimeout(timer);
    }
  }

  // tell says what the banner met, with nothing that names the visitor.
  function tell(body) {
    if (liveCfg && !refused) {
      fetch(api + "reach", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), mode: "cors", credentials: "omit", keepalive: true }).catch(() => {});
    }
  }

  function useConfig(c) {
    if (!c || !Array.isArray(c.purposes) || typeof c.texts !== "object") {
      throw new Error("Fineline: malformed config");
    }
    c.purposes = c.purposes.filter((p) => p && typeof p.key === "string");
    c.levels = Array.isArray(c.levels) ? c.levels.filter((l) => l && typeof l.key === "string") : [];
    c.consent_mode = c.consent_mode && typeof c.consent_mode === "object" ? c.consent_mode : {};
    cfg = c;
    build();
  }

  // apply takes the server's answer about this visitor: the live state.
  // The answer to a save (ack) replaces what the click answered; a state
  // read that crossed the click leaves the click's answers standing.
  function apply(data, ack) {
    if (!data || typeof data.consents !== "object" || data.consents === null) {
      throw new Error("Fineline: malformed state");
    }
    const before = new Set([...ran].filter(allowed));
    consents = data.consents;
    level = typeof data.privacy_level === "string" ? data.privacy_level : "";
    live = true;
    receiptURL = safeURL(data.receipt_url) || receiptURL;
    if (ack) {
      clicked = {};
    }
    kept.consents = consents;
    return changed([...before].some((p) => !allowed(p)));
  }

  // changed runs what now may run, signals Consent Mode, and in a task of
  // its own keeps the state, redraws and tells the page.
  function changed(stopped) {
    reloadNeeded = reloadNeeded || stopped;
    release();
    signal();
    const detail = { consents: JSON.parse(JSON.stringify(consents || {})), privacy_level: level, reload_needed: stopped };
    setTimeout(() => {
      keep();
      sync();
      document.dispatchEvent(new CustomEvent("fineline:change", { detail }));
    });
    return stopped;
  }

  const safeURL = (u) => {
    try {
      const url = new URL(u);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : "";
    } catch {
      return "";
    }
  };

  // retryable says whether a failed request may succeed later: the service
  // unreachable, slow, busy or down, or a write that lost a race.
  const retryable = (e) => !e.status || e.status === 408 || e.status === 429 || e.status >= 500 || e.code === "write_conflict" || e.code === "request_in_progress";

  // read applies the live state, unless a choice was made since the read
  // began: the answer to that choice is newer.
  async function read() {
    const n = saves;
    const st = await call("state", "GET");
    if (n === saves) {
      apply(st);
    }
  }

  // load sends a save left over, then reads what is missing. It retries,
  // more slowly each time, while the service cannot be reached.
  async function load() {
    busy(true);
    const [c, s] = await Promise.allSettled([
      liveCfg ? null : call("config?lang=" + lang, "GET"),
      pending ? null : read(),
    ]);
    const why = c.status === "rejected" && c.reason.code;
    if (why === "origin_not_allowed" || why === "merchant_suspended") {
      refused = true;
      busy(false);
      console.error(why === "merchant_suspended" ? 'Fineline: the merchant "' + merchant + '" is suspended; the widget stays off.' :
        "Fineline: this page's origin " + location.origin + ' may not use the widget of "' + merchant +
        '". Add it to allowed_origins in the widget settings (PUT /v1/widget-settings, or the console).');
      draw();
      return;
    }
    let ok = c.status === "fulfilled" && s.status === "fulfilled";
    // A refusal for good (an expired token, say) is not retried.
    let lasting = [c, s].some((r) => r.status === "rejected" && !retryable(r.reason));
    try {
      if (c.value) {
        useConfig(c.value);
        liveCfg = true;
        kept.config = c.value;
        keep();
      } else if (!cfg && kept.config) {
        useConfig(kept.config); // the service is down: draw from the kept config
      }
    } catch {
      ok = false;
    }
    if (pending) {
      ok = (await send()) && ok;
    }
    if (ok && !live && !pending) {
      // A kept save was refused for good: the state was never read.
      try {
        await read();
      } catch (e) {
        ok = false;
        lasting = !retryable(e);
      }
    }
    if (cfg && !asked) {
      // The banner comes up (once per page view) while a purpose waits for
      // an answer: undecided (sensitive ones are asked in the dialog only)
      // or paused by changed terms.
      asked = true;
      barOpen = cfg.purposes.some((p) => (!state(p.key) && !p.sensitive) || paused(p.key));
      if (barOpen && liveCfg) {
        bannerShown = true;
        tell({ event: "shown" });
      }
    }
    signal();
    busy(false);
    if (ok) {
      retryIn = 0;
    } else if (!lasting) {
      later();
    }
    draw();
  }

  function later() {
    retryIn = Math.min(retryIn ? retryIn * 2 : 2000, 60000);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(load, retryIn);
  }
  addEventListener("online", () => {
    if (!live || pending) {
      clearTimeout(retryTimer);
      load();
    }
  });

  // send delivers the pending save; on failure it stays kept for a retry.
  // A choice made while it was under way joined pending, and goes next.
  async function send() {
    if (saving || !pending) {
      return false;
    }
    saving = true;
    busy(true);
    const body = pending;
    let done = true;
    try {
      apply(await call("consents?lang=" + lang, "PUT", body), true);
      if (pending === body) {
        pending = null;
        delete kept.pending;
      }
      setTimeout(() => {
        keep();
        say(word(reloadNeeded ? "reload" : "saved"), false, true);
        reloadNeeded = false;
      });
    } catch (e) {
      if (retryable(e)) {
        say(word("retry"), true);
        done = false;
      } else {
        pending = null; // refused for good (a bad choice): retrying cannot help
        delete kept.pending;
        const was = [...ran].filter(allowed);
        clicked = {};
        changed(was.some((p) => !allowed(p)));
        say(word("error"), true);
      }
    }
    saving = false;
    busy(false);
    if (done && pending) {
      return send();
    }
    return done;
  }

  // merge joins a choice to a save not yet acknowledged: the later choice
  // wins, and each purpose keeps how it was shown before the first.
  function merge(a, b) {
    if (!a) {
      return b;
    }
    const m = { choices: Object.assign({}, a.choices, b.choices), shown: Object.assign({}, b.shown, a.shown) };
    m.explicit = [...new Set([...a.explicit, ...b.explicit])].filter((k) => m.choices[k] === "granted");
    if (b.privacy_level || a.privacy_level) {
      m.privacy_level = b.privacy_level || a.privacy_level;
      m.privacy_level_shown = a.privacy_level_shown || b.privacy_level_shown;
    }
    return m;
  }

  // choose turns one button into a save: "accept", "decline" or "save".
  function choose(kind) {
    if (!cfg) {
      return;
    }
    const choices = {};
    const explicit = [];
    const shown = {}; // what the visitor saw, so a change made elsewhere meanwhile stands
    for (const p of cfg.purposes) {
      // was: what the server last said; on: what the visitor sees now.
      const seen = state(p.key);
      const was = seen ? (seen.allowed === true ? "on" : "off") : "undecided";
      const on = has(clicked, p.key) ? clicked[p.key] : !!seen && seen.allowed === true;
      let want = null;
      if (kind === "accept") {
        // Accept never switches a sensitive purpose on, nor, under GPC, a sale one.
        want = p.sensitive || (gpc && p.sale_or_share) ? null : "granted";
      } else if (kind === "decline") {
        want = on ? "withdrawn" : "denied";
      } else if (boxes[p.key].checked !== on) {
        want = boxes[p.key].checked ? "granted" : "withdrawn";
        if (want === "granted" && p.sensitive) {
          explicit.push(p.key);
        }
      }
      if (want) {
        choices[p.key] = want;
        shown[p.key] = was;
      }
    }
    const moved = (to, on) => Object.keys(choices).some((k) => choices[k] === to && (shown[k] === "on") === on);
    setTimeout(tell, 0, { event: "choice", button: kind, layer: open ? 2 : 1, after_banner: bannerShown, clicks: clicks || 1, granted: moved("granted", false), withdrew: moved("withdrawn", true) });
    clicks = 0;
    bannerShown = false;
    const picked = Object.keys(radios).find((k) => radios[k].checked) || "";
    const body = { choices, explicit, shown };
    if (kind === "save" && level && picked && picked !== level) {
      body.privacy_level = picked;
      body.privacy_level_shown = level;
    }
    asked = true;
    const dirty = Object.keys(choices).length || body.privacy_level;
    if (dirty) {
      // The click answers at once: a refusal always, a grant once the
      // server was reached on this page view (a sale purpose under GPC
      // waits for the server). What it allows runs before anything else.
      saves++;
      const was = [...ran].filter(allowed);
      for (const p of cfg.purposes) {
        const c = choices[p.key];
        if (c && (c !== "granted" || (live && !(gpc && p.sale_or_share)))) {
          clicked[p.key] = c === "granted";
        }
      }
      changed(was.some((p) => !allowed(p)));
      pending = merge(pending, body);
      kept.pending = pending;
      if (!saving) {
        send().then((ok) => ok || later()); // the request leaves before the page redraws
      }
    }
    const from = open && returnFocus && returnFocus.isConnected && !root.contains(returnFocus) ? returnFocus : null;
    hide();
    (from || reopen).focus();
    if (!dirty) {
      say(word("saved"));
      return;
    }
    if (!live) {
      // Drawn from what was kept: show the choice, grant nothing yet.
      consents = Object.assign({}, consents);
      for (const k in choices) {
        consents[k] = { state: choices[k], allowed: choices[k] === "granted", reason: "" };
      }
    }
    keep();
  }

  // ---- tags that wait for consent

  const GATED = 'script[type="text/plain"][data-fineline-purpose],iframe[data-fineline-src][data-fineline-purpose]';
  function release() {
    if (!live) {
      return;
    }
    for (const n of document.querySelectorAll(GATED)) {
      const need = n.dataset.finelinePurpose.split(/[\s,]+/).filter(Boolean);
      if (!need.length || !need.every(allowed)) {
        continue;
      }
      need.forEach((p) => ran.add(p));
      if (n.tagName === "IFRAME") {
        n.src = n.dataset.finelineSrc;
        n.removeAttribute("data-fineline-src");
        continue;
      }
      const s = document.createElement("script");
      for (const a of n.attributes) {
        s.setAttribute(a.name, a.value);
      }
      s.type = n.dataset.finelineType || "text/javascript";
      s.nonce = n.nonce;
      s.async = n.hasAttribute("async"); // keep the order of gated scripts
      s.textContent = n.textContent;
      n.replaceWith(s);
    }
  }
  new MutationObserver((records) => {
    if (live && records.some((r) => [...r.addedNodes].some((n) => n.nodeType === 1 && (n.matches(GATED) || n.querySelector(GATED))))) {
      release();
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", release);

  function signal() {
    if (!useMode || !liveCfg) {
      return;
    }
    const u = {};
    for (const t of MODES) {
      const ps = cfg.consent_mode[t];
      const ok = Array.isArray(ps) && ps.length > 0 && ps.every(allowed) && !(gpc && t.startsWith("ad_"));
      u[t] = ok ? "granted" : "denied";
    }
    const j = JSON.stringify(u);
    if (j !== lastMode) {
      lastMode = j;
      gtag("consent", "update", u);
    }
  }

  // ---- view

  const CSS = `
:host{all:initial;position:fixed;top:0;left:0;width:0;height:0;z-index:2147483000;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1c2430}
*{box-sizing:border-box}
.bar,.panel,.note,.reopen{position:fixed;background:#fff;border:1px solid #5b6573;border-radius:10px;box-shadow:0 4px 18px rgba(0,0,0,.22)}
.bar,.note{left:.5rem;right:.5rem;bottom:.5rem;max-width:44rem;margin:0 auto;padding:.75rem 1rem}
.panel{left:.5rem;right:.5rem;top:.5rem;bottom:.5rem;max-width:30rem;max-height:44rem;margin:auto;display:flex;flex-direction:column;overflow:hidden}
.scroll{overflow:auto;padding:1rem 1.1rem 0;flex:1}
.panel:focus,.bar:focus{outline:none}
.top{display:flex;justify-content:space-between;align-items:flex-start;gap:.75rem}
h2{font-size:1.15rem;margin:0}
p{margin:.3rem 0}
.bar p,.note p{margin:0 0 .5rem}
ul{list-style:none;margin:.75rem 0;padding:0}
li{border-top:1px solid #d5dae1;padding:.6rem 0}
li label{display:flex;justify-content:space-between;align-items:center;gap:.75rem;font-weight:600;cursor:pointer}
li label span,.opt label,p,h2,a,button{overflow-wrap:break-word;hyphens:auto;min-width:0}
input[role=switch]{appearance:none;-webkit-appearance:none;flex:none;position:relative;width:2.75rem;height:1.5rem;margin:0;border-radius:999px;background:#6b7480;cursor:pointer}
input[role=switch]::after{content:"";position:absolute;top:.2rem;left:.2rem;width:1.1rem;height:1.1rem;border-radius:50%;background:#fff;transition:left .15s}
input[role=switch]:checked{background:#1f7a3f}
input[role=switch]:checked::after{left:1.45rem}
fieldset{border:0;border-top:1px solid #d5dae1;margin:0 0 .75rem;padding:0;min-width:0}
legend{float:left;width:100%;padding:.6rem 0 0;font-weight:700}
.opt{clear:both;display:grid;grid-template-columns:auto minmax(0,1fr);column-gap:.5rem;align-items:center;padding-top:.4rem}
.opt input{width:1.15rem;height:1.15rem;margin:0;accent-color:#1d5bd8}
.opt label{font-weight:600;cursor:pointer}
.hint,.what{color:#4a5563;font-size:.93rem}
.hint{grid-column:2;margin:0}
.badge{display:inline-block;background:#fff4e0;border:1px solid #b86e00;color:#6b3f00;font-weight:600;border-radius:999px;padding:0 .6rem;font-size:.85rem}
.explain,.renew{color:#6b3f00;font-size:.93rem}
.renew{font-weight:600}
.actions{display:flex;flex-wrap:wrap;gap:.5rem}
.panel .actions{padding:.75rem 1.1rem;border-top:1px solid #d5dae1}
button{font:inherit;cursor:pointer;border-radius:6px;padding:.45rem 1rem;border:2px solid #1d5bd8;background:#fff;color:#1d5bd8}
.choice{flex:1 1 6rem;background:#1d5bd8;color:#fff}
.close{flex:none;border-color:transparent;padding:.1rem .4rem;text-decoration:underline}
.reopen{left:.5rem;bottom:.5rem;padding:.3rem .7rem;font-size:.85rem;border-color:#5b6573;color:#1c2430}
[aria-busy=true] button{cursor:wait}
a{color:#1d5bd8}
.err{color:#b42318;font-weight:600}
:focus-visible{outline:3px solid #0b3d91;outline-offset:2px}
[hidden]{display:none!important}
@media (prefers-reduced-motion:reduce){input[role=switch]::after{transition:none}}
@media (forced-colors:active){input[role=switch]{border:2px solid ButtonText}input[role=switch]::after{background:ButtonText}}`;

  class FinelineConsent extends HTMLElement {}
  customElements.define(TAG, FinelineConsent);
  const el = (tag, cls, text, parent) => {
    const e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text != null) {
      e.textContent = text;
    }
    if (parent) {
      parent.append(e);
    }
    return e;
  };
  const button = (cls, parent, fn) => {
    const b = el("button", cls, null, parent);
    b.type = "button";
    b.addEventListener("click", fn);
    return b;
  };

  const host = document.createElement(TAG);
  const root = host.attachShadow({ mode: "open" });
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    host.hidden = true; // no constructable stylesheets: stay out of the way
  }

  // Everything sits in one labelled landmark, first in the page's tab
  // order; the first layer is a labelled region of its own.
  // Clicks on buttons and switches count (before their handlers run).
  root.addEventListener("click", (e) => e.target.closest("button, input") && clicks++, true);
  const box = el("section", null, null, root);
  const bar = el("section", "bar", null, box);
  bar.setAttribute("aria-labelledby", "fl-sentence");
  const sentence = el("p", null, null, bar);
  sentence.id = "fl-sentence";
  const details = el("a", null, null, bar);
  details.target = "_blank";
  details.rel = "noopener";
  const barActions = el("div", "actions", null, bar);
  const barAccept = button("choice", barActions, () => choose("accept"));
  const barDecline = button("choice", barActions, () => choose("decline")); // the same weight as Accept
  const barChoose = button("more", barActions, () => {
    tell({ event: "choose" });
    show(true);
  });

  // Second layer: a dialog.
  const panel = el("div", "panel", null, box);
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", "fl-title");
  panel.tabIndex = -1;
  const scroll = el("div", "scroll", null, panel);
  const top = el("div", "top", null, scroll);
  const title = el("h2", null, null, top);
  title.id = "fl-title";
  const closeBtn = button("close", top, () => hide(true));
  const intro = el("p", null, null, scroll);
  const list = el("ul", null, null, scroll);
  const levelBox = el("fieldset", "level", null, scroll);
  const levelLegend = el("legend", null, null, levelBox);
  const status = el("p", "status", null, scroll);
  status.setAttribute("role", "status");
  const actions = el("div", "actions", null, panel);
  const accept = button("choice", actions, () => choose("accept"));
  const decline = button("choice", actions, () => choose("decline"));
  const save = button("save", actions, () => choose("save"));
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      hide(true);
    }
  });

  // What a choice made: saved, a reload needed, a retry to come.
  const note = el("div", "note", null, box);
  note.setAttribute("role", "status");
  const noteText = el("p", null, null, note);
  const noteLine = el("div", "actions", null, note);
  const receipt = el("a", null, null, noteLine);
  receipt.target = "_blank";
  receipt.rel = "noopener noreferrer";
  const noteClose = button("close", noteLine, () => {
    noteText.textContent = "";
    draw();
  });
  const reopen = button("reopen", box, () => show(true));

  let boxes = {};
  let renews = {};
  let radios = {};
  let open = false; // the second layer
  let barOpen = false;
  let asked = false; // whether the banner was considered on this page view
  let bannerShown = false;
  let clicks = 0; // since the last choice
  let noted = false;

  const word = (key) => (cfg && typeof cfg.texts[key] === "string" ? cfg.texts[key] : "");

  function build() {
    list.textContent = "";
    boxes = {};
    renews = {};
    cfg.purposes.forEach((p, i) => {
      const row = el("li", null, null, list);
      const label = el("label", null, null, row);
      el("span", "name", String(p.name || p.key), label);
      const box = el("input", null, null, label);
      box.type = "checkbox";
      box.setAttribute("role", "switch");
      box.setAttribute("aria-describedby", "fl-w" + i + (p.sensitive ? " fl-e" + i : ""));
      if (p.sensitive) {
        el("p", "badge", word("sensitive_badge"), row);
      }
      el("p", "what", String(p.statement || ""), row).id = "fl-w" + i;
      if (p.sensitive) {
        el("p", "explain", word("sensitive"), row).id = "fl-e" + i;
      }
      renews[p.key] = el("p", "renew", word("renew"), row);
      boxes[p.key] = box;
    });
    levelBox.replaceChildren(levelLegend);
    radios = {};
    cfg.levels.forEach((l, i) => {
      const opt = el("div", "opt", null, levelBox);
      const radio = el("input", null, null, opt);
      radio.type = "radio";
      radio.name = "fl-level";
      radio.id = "fl-l" + i;
      radio.value = l.key;
      radio.setAttribute("aria-describedby", "fl-lh" + i);
      el("label", null, String(l.name || l.key), opt).htmlFor = radio.id;
      el("p", "hint", String(l.hint || ""), opt).id = "fl-lh" + i;
      radios[l.key] = radio;
    });
    sync();
  }

  // sync sets the texts and every switch from the last known state.
  function sync() {
    if (!cfg) {
      return;
    }
    box.lang = lang;
    box.setAttribute("aria-label", word("button"));
    const renewing = cfg.purposes.some((p) => paused(p.key));
    sentence.textContent = word(renewing ? "renew_banner" : "banner");
    details.textContent = word("details");
    details.href = safeURL(cfg.details_url) || "#";
    barAccept.textContent = accept.textContent = word("accept");
    barDecline.textContent = decline.textContent = word("decline");
    barChoose.textContent = word("choose");
    title.textContent = word("title");
    closeBtn.textContent = noteClose.textContent = word("close");
    intro.textContent = word("intro");
    save.textContent = word("save");
    reopen.textContent = word("button");
    receipt.textContent = word("receipt");
    for (const k in boxes) {
      const c = state(k);
      boxes[k].checked = has(clicked, k) ? clicked[k] : !!c && c.allowed === true;
      renews[k].hidden = !paused(k);
    }
    levelLegend.textContent = word("level");
    levelBox.hidden = !has(radios, level);
    for (const k in radios) {
      radios[k].checked = k === level;
    }
  }

  // draw shows what should be seen: nothing for a refused site, else the
  // dialog, or the banner, or the note and the small button.
  function draw() {
    const ready = !!cfg && !refused;
    panel.hidden = !(ready && open);
    bar.hidden = !(ready && barOpen && !open);
    note.hidden = !(ready && !open && !barOpen && noteText.textContent);
    receipt.hidden = !receiptURL || !noted;
    if (receiptURL) {
      receipt.href = receiptURL;
    }
    reopen.hidden = !ready || open || barOpen || opts.privacyButton === "off";
  }

  function say(text, isError, withReceipt) {
    noted = !!withReceipt;
    for (const e of [status, noteText]) {
      e.textContent = text;
      e.classList.toggle("err", !!isError);
    }
    draw();
  }

  function busy(on) {
    panel.setAttribute("aria-busy", on ? "true" : "false");
    bar.setAttribute("aria-busy", on ? "true" : "false");
  }

  // show opens the second layer and moves focus into it.
  function show() {
    if (!open) {
      returnFocus = root.activeElement || document.activeElement;
    }
    open = true;
    if (cfg) {
      sync();
    }
    draw();
    panel.focus();
  }

  // hide closes both layers; Escape or Close (back) returns to the banner
  // if it was up, and focus to what opened the dialog.
  function hide(back) {
    const wasOpen = open;
    open = false;
    if (!back) {
      barOpen = false;
    }
    draw();
    if (wasOpen && back) {
      let f = returnFocus && returnFocus.isConnected && returnFocus !== document.body ? returnFocus : null;
      if (f && root.contains(f) && f.closest("[hidden]")) {
        f = null;
      }
      (f || (barOpen ? barChoose : reopen)).focus();
    }
    returnFocus = null;
  }

  const fineline = window.Fineline && typeof window.Fineline === "object" ? window.Fineline : {};
  fineline.allowed = allowed;
  fineline.open = show;
  fineline.close = () => hide(false);
  window.Fineline = fineline;

  draw();
  const mount = () => document.body.prepend(host);
  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }
  load();
})();
