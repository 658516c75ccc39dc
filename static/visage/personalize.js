/*
 * Visage personalize: fill a partner page's slots with the variant Visage decides for this visitor, and report
 * impressions, clicks, conversions and custom events against that decision. No build step, no dependency.
 *
 *   <head>
 *     <script src="https://visage.example/static/visage/personalize.js" data-visage-campaign="<public id>"
 *             data-visage-timeout="800"></script>
 *   </head>
 *   ...
 *   <section data-visage-slot="hero">
 *     <h2 data-visage-field="headline">Our default headline</h2>
 *     <p data-visage-field="body">Default text.</p>
 *     <img data-visage-field="image" src="default.jpg" alt="">
 *     <a data-visage-field="cta" href="/offer">Default call to action</a>
 *   </section>
 *
 * Attributes of the script tag: data-visage-campaign (the campaign's public id), data-visage-timeout (ms the
 * slots stay hidden at most, default 800), data-visage-lang (the language to decide for, default the browser's),
 * data-visage-api (Visage's origin, default the script's own), data-visage-redecide-ms (ask again this often
 * while capture.js on the page reports newly analysed frames; off by default).
 *
 * Fields: headline and body are set as text, image (img src) and cta (a href) only with http(s) URLs, html
 * (data-visage-field="html") gets the server-sanitised HTML. A slot without marked fields gets the headline as
 * text. An empty value keeps the page's own content. Slots are hidden until decided (at most the timeout);
 * on any error or a late answer they show the page's own default content, and nothing is thrown.
 *
 * API (window.Visage, shared with capture.js; either may load first):
 *   Visage.decide() -> Promise of the decision (or null)   Visage.onDecision(function (decision) {...})
 *   Visage.convert('purchase', {value: 49.9, currency: 'EUR'})   Visage.track('video_50', {value: 1})
 *
 * The anonymous visitor id lives in a first-party cookie on the partner's page (visage_vid, one year,
 * SameSite=Lax) and travels in request bodies only, never in a URL. Requests to Visage are credentialed, so a
 * visitor who consented on the campaign's consent page is recognised by Visage's own HttpOnly cookie.
 */
(function (global) {
  'use strict';

  var document = global.document;
  var SCRIPT = document.currentScript;
  var SCRIPT_ORIGIN = (function () {
    try { return SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, global.location.href).origin : global.location.origin; }
    catch (e) { return global.location.origin; }
  })();
  var VID_COOKIE = 'visage_vid';
  var VID_RE = /^[A-Za-z0-9_-]{22}$/;
  var CAMPAIGN_RE = /^[A-Za-z0-9_-]{1,32}$/;
  var ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  var YEAR_SECONDS = 365 * 24 * 3600;
  var DEFAULT_TIMEOUT_MS = 800;
  var VISIBLE_RATIO = 0.5;
  var SEEN_MS = 1000;
  var STYLE_ID = 'visage-personalize-style';
  // Hidden until decided; the slot's own inline style shows it again, which also beats a partner's own
  // `[data-visage-slot]{visibility:hidden}` in <head>.
  var HIDE_CSS = '[data-visage-slot]:not([data-visage-state]){visibility:hidden}';

  var data = (SCRIPT && SCRIPT.dataset) || {};
  var config = {
    campaign: String(data.visageCampaign || '').trim(),
    api: String(data.visageApi || SCRIPT_ORIGIN).replace(/\/+$/, ''),
    timeout: clampNumber(data.visageTimeout, DEFAULT_TIMEOUT_MS, 0, 10000),
    lang: String(data.visageLang || '').trim().slice(0, 35),
    redecideMs: clampNumber(data.visageRedecideMs, 0, 0, 3600000)
  };
  if (config.redecideMs && config.redecideMs < 1000) config.redecideMs = 1000;

  function clampNumber(value, fallback, low, high) {
    var n = Number(value);
    if (value === undefined || value === '' || isNaN(n)) return fallback;
    return Math.min(Math.max(n, low), high);
  }

  function safe(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { return undefined; }
    };
  }

  // --- the visitor id -------------------------------------------------------------------------------------

  function randomId(length) {
    var cryptoObj = global.crypto || global.msCrypto;
    if (!cryptoObj || !cryptoObj.getRandomValues) return '';
    var bytes = new Uint8Array(length);
    cryptoObj.getRandomValues(bytes);
    var out = '';
    for (var i = 0; i < length; i++) out += ALPHABET.charAt(bytes[i] & 63);  // 256 = 4 x 64: uniform
    return out;
  }

  function readCookie(name) {
    var parts = String(document.cookie || '').split(';');
    for (var i = 0; i < parts.length; i++) {
      var pair = parts[i].replace(/^\s+/, '');
      if (pair.indexOf(name + '=') === 0) return pair.slice(name.length + 1);
    }
    return '';
  }

  var visitorId = '';
  function visitor() {
    if (visitorId) return visitorId;
    var kept = '';
    try { kept = readCookie(VID_COOKIE); } catch (e) { kept = ''; }
    visitorId = VID_RE.test(kept) ? kept : randomId(22);
    if (visitorId && visitorId !== kept) {
      try {
        document.cookie = VID_COOKIE + '=' + visitorId + '; Max-Age=' + YEAR_SECONDS + '; Path=/; SameSite=Lax' +
          (global.location.protocol === 'https:' ? '; Secure' : '');
      } catch (e) { /* cookies blocked: the id lasts this page view */ }
    }
    return visitorId;
  }

  // --- slots ----------------------------------------------------------------------------------------------

  function injectStyle() {
    if (document.getElementById(STYLE_ID)) return;
    var style = document.createElement('style');
    style.id = STYLE_ID;
    style.textContent = HIDE_CSS;
    (document.head || document.documentElement).appendChild(style);
  }

  function slotList() {
    return Array.prototype.slice.call(document.querySelectorAll('[data-visage-slot]'));
  }

  function slotName(slot) {
    return String(slot.getAttribute('data-visage-slot') || '').slice(0, 64);
  }

  function reveal(slot, state) {
    slot.setAttribute('data-visage-state', state);
    slot.style.visibility = 'visible';
  }

  function httpUrl(value) {
    if (typeof value !== 'string' || !value) return '';
    try {
      var url = new URL(value, global.location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : '';
    } catch (e) { return ''; }
  }

  function text(value) {
    return typeof value === 'string' ? value : '';
  }

  // The page's own content of each element a variant changes, kept the first time, so that a later decision
  // (for the default variant, say) starts again from the page's default and never mixes two variants.
  var originals = [];
  function original(node) {
    for (var i = 0; i < originals.length; i++) if (originals[i].node === node) return originals[i];
    var kept = {node: node, html: node.innerHTML, src: node.getAttribute('src'), href: node.getAttribute('href')};
    originals.push(kept);
    return kept;
  }

  function restore(node) {
    var kept = original(node);
    node.innerHTML = kept.html;
    if (kept.src === null) node.removeAttribute('src'); else node.setAttribute('src', kept.src);
    if (kept.href === null) node.removeAttribute('href'); else node.setAttribute('href', kept.href);
  }

  function fill(slot, content) {
    var fields = Array.prototype.slice.call(slot.querySelectorAll('[data-visage-field]'));
    if (!fields.length) {
      restore(slot);
      if (text(content.headline)) slot.textContent = content.headline;
      return;
    }
    fields.forEach(function (node) {
      restore(node);
      var field = node.getAttribute('data-visage-field');
      if (field === 'headline' || field === 'body') {
        if (text(content[field])) node.textContent = content[field];
      } else if (field === 'image') {
        var src = httpUrl(content.image_url);
        if (src && node.tagName === 'IMG') node.setAttribute('src', src);
      } else if (field === 'cta') {
        var href = httpUrl(content.cta_url);
        if (href && node.tagName === 'A') node.setAttribute('href', href);
        if (text(content.cta_text)) node.textContent = content.cta_text;
      } else if (field === 'html') {
        // Only the html field, sanitised by Visage's server; headline and body are never read as HTML.
        if (text(content.html)) node.innerHTML = content.html;
      }
    });
  }

  // --- talking to Visage ----------------------------------------------------------------------------------

  function context() {
    var timezone = '';
    try { timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { timezone = ''; }
    return {
      language: config.lang || navigator.language || '',
      timezone: timezone,
      url: String(global.location.href),
      referrer: String(document.referrer || '')
    };
  }

  function post(path, body, options) {
    var o = options || {};
    var controller = null;
    var timer = null;
    var init = {
      method: 'POST', mode: 'cors', credentials: 'include', cache: 'no-store',
      headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
      body: JSON.stringify(body)
    };
    if (o.keepalive) init.keepalive = true;
    if (o.timeout && global.AbortController) {
      controller = new AbortController();
      init.signal = controller.signal;
      timer = setTimeout(function () { controller.abort(); }, o.timeout);
    }
    return fetch(config.api + path, init).then(function (response) {
      if (timer) clearTimeout(timer);
      if (!response.ok) return null;
      return response.json().then(null, function () { return null; });
    }, function () {
      if (timer) clearTimeout(timer);
      return null;
    });
  }

  function validDecision(answer) {
    return !!(answer && typeof answer === 'object' && typeof answer.decision_id === 'string' &&
              answer.decision_id && answer.variant && typeof answer.variant === 'object' &&
              answer.variant.content && typeof answer.variant.content === 'object');
  }

  // --- decisions ------------------------------------------------------------------------------------------

  var latest = null;         // the decision the slots show
  var pending = null;        // the decision being asked for
  var listeners = [];
  var shownFor = {};         // decision id + slot name -> impression sent
  var observer = null;
  var watched = [];
  var analysedAtDecision = -1;
  var analysedNow = 0;

  function notify(decision) {
    listeners.slice().forEach(function (cb) {
      try { cb(decision); } catch (e) { /* a partner's callback must not break the page */ }
    });
  }

  function apply(decision) {
    latest = decision;
    slotList().forEach(function (slot) {
      try {
        fill(slot, decision.variant.content);
        slot.setAttribute('data-visage-variant', String(decision.variant.key || ''));
        slot.setAttribute('data-visage-decision', decision.decision_id);
        reveal(slot, 'decided');
      } catch (e) {
        reveal(slot, 'default');
      }
      watch(slot);
    });
    notify(decision);
  }

  function revealDefaults(state) {
    slotList().forEach(function (slot) {
      if (!slot.hasAttribute('data-visage-state')) reveal(slot, state);
    });
  }

  function ask(timeout) {
    var id = visitor();
    if (!CAMPAIGN_RE.test(config.campaign) || !id || !global.fetch) return Promise.resolve(null);
    analysedAtDecision = analysedNow;
    return post('/api/v1/public/decisions/', {campaign: config.campaign, visitor_id: id, context: context()},
                {timeout: timeout}).then(function (answer) { return validDecision(answer) ? answer : null; },
                                         function () { return null; });
  }

  function decide() {
    try {
      var asking = ask(Math.max(config.timeout, 5000)).then(function (decision) {
        if (decision) whenReady(function () { apply(decision); });
        return decision;
      }).then(null, function () { return null; });
      pending = asking;
      return asking;
    } catch (e) {
      return Promise.resolve(null);
    }
  }

  function whenReady(fn) {
    var run = safe(fn);
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run);
    else run();
  }

  // First decision: asked at once (it needs no DOM), shown if it comes before the timeout; else the page's
  // default content stays and a late answer is dropped (no flicker after the visitor has started reading).
  function firstDecision() {
    var settled = false;
    var timer = setTimeout(function () {
      settled = true;
      whenReady(function () { revealDefaults('timeout'); });
    }, config.timeout);
    pending = ask(config.timeout).then(function (decision) {
      if (settled) return null;
      settled = true;
      clearTimeout(timer);
      whenReady(function () {
        if (decision) apply(decision);
        revealDefaults('default');
      });
      return decision;
    }).then(null, function () {
      whenReady(function () { revealDefaults('default'); });
      return null;
    });
  }

  // --- events ---------------------------------------------------------------------------------------------

  function send(kind, name, props, decision, keepalive) {
    var d = decision || latest;
    var id = visitor();
    if (!d || !id) return Promise.resolve(false);
    var p = props || {};
    var body = {decision: d.decision_id, visitor_id: id, client_event_id: randomId(22), kind: kind,
                name: String(name || '').slice(0, 64)};
    var value = Number(p.value);
    if (p.value !== undefined && p.value !== null && isFinite(value)) body.value = value;
    if (typeof p.currency === 'string' && /^[A-Za-z]{3}$/.test(p.currency)) body.currency = p.currency.toUpperCase();
    return post('/api/v1/public/events/', body, {keepalive: keepalive}).then(function (answer) {
      return !!answer;
    }, function () { return false; });
  }

  function impression(slot) {
    var d = latest;
    if (!d || slot.getAttribute('data-visage-decision') !== d.decision_id) return;
    var key = d.decision_id + '|' + slotName(slot);
    if (shownFor[key]) return;
    shownFor[key] = true;
    send('impression', slotName(slot), null, d, false);
  }

  function watch(slot) {
    if (!global.IntersectionObserver) return impression(slot);  // no way to tell: count it on decision
    if (!observer) {
      observer = new IntersectionObserver(safe(function (entries) {
        entries.forEach(function (entry) {
          var slot = entry.target;
          if (entry.isIntersecting && entry.intersectionRatio >= VISIBLE_RATIO) {
            if (!slot.__visageSeenTimer) {
              slot.__visageSeenTimer = setTimeout(safe(function () {
                slot.__visageSeenTimer = null;
                impression(slot);
              }), SEEN_MS);
            }
          } else if (slot.__visageSeenTimer) {
            clearTimeout(slot.__visageSeenTimer);  // scrolled away before a second had passed
            slot.__visageSeenTimer = null;
          }
        });
      }), {threshold: [0, VISIBLE_RATIO, 1]});
    }
    if (watched.indexOf(slot) < 0) {
      watched.push(slot);
      slot.addEventListener('click', safe(onClick));
    } else {
      observer.unobserve(slot);  // a new decision: look again
      if (slot.__visageSeenTimer) clearTimeout(slot.__visageSeenTimer);
      slot.__visageSeenTimer = null;
    }
    observer.observe(slot);
  }

  function onClick(event) {
    var slot = event.currentTarget;
    var target = event.target && event.target.closest ?
      event.target.closest('[data-visage-cta],[data-visage-field="cta"]') : null;
    if (!target || !slot.contains(target) || !latest) return;
    if (slot.getAttribute('data-visage-decision') !== latest.decision_id) return;
    send('click', slotName(slot), null, latest, true);  // keepalive: the click may leave the page
  }

  // --- capture.js on the same page ------------------------------------------------------------------------

  function onCaptureUpdate(event) {
    var detail = event && event.detail;
    if (detail && typeof detail.framesAnalyzed === 'number') analysedNow = detail.framesAnalyzed;
  }

  function redecideLoop() {
    if (!config.redecideMs) return;
    setInterval(safe(function () {
      if (analysedNow > analysedAtDecision && analysedAtDecision >= 0) decide();
    }), config.redecideMs);
  }

  // --- the namespace, merged with capture.js's ------------------------------------------------------------

  var Visage = global.Visage || {};
  Visage.decide = decide;
  Visage.onDecision = function (cb) {
    if (typeof cb !== 'function') return;
    listeners.push(cb);
    if (latest) {
      var now = latest;
      setTimeout(function () { try { cb(now); } catch (e) { /* ignored */ } }, 0);
    }
  };
  Visage.convert = function (name, props) {
    try {
      return Promise.resolve(pending).then(function () {
        return send('conversion', name || 'conversion', props, null, true);
      }, function () { return false; });
    } catch (e) { return Promise.resolve(false); }
  };
  Visage.track = function (name, props) {
    try {
      return Promise.resolve(pending).then(function () {
        return send('custom', name, props, null, true);
      }, function () { return false; });
    } catch (e) { return Promise.resolve(false); }
  };
  Object.defineProperty(Visage, 'decision', {configurable: true, get: function () { return latest; }});
  global.Visage = Visage;

  try {
    injectStyle();
    document.addEventListener('visage:update', safe(onCaptureUpdate));
    if (config.campaign) {
      firstDecision();
      redecideLoop();
    } else {
      whenReady(function () { revealDefaults('default'); });
    }
  } catch (e) {
    try { whenReady(function () { revealDefaults('default'); }); } catch (ignored) { /* nothing else to do */ }
  }
})(window);
