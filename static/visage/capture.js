/*
 * Visage capture: stream a webcam to one Visage capture session, with a recording indicator, a stop button
 * and the session's live aggregates. Used by Visage's own capture page and embeddable on a partner's page:
 *
 *   <div id="camera"></div>
 *   <script src="https://visage.example/static/visage/capture.js"
 *           data-visage-target="#camera" data-visage-token="vcs_..." data-visage-session="<session id>"
 *           data-visage-fps="2" data-visage-max-seconds="120" data-visage-lang="en"></script>
 *
 * or from code: Visage.capture({target, token, session, campaign, api, fps, maxSeconds, lang, autostart, onUpdate}).
 *
 * Visage's own capture page gives no token but data-visage-start-url (and data-visage-csrf): the session is
 * opened by a POST there when the visitor presses "Start camera", so loading the page (or a prefetch of it)
 * opens nothing.
 *
 * Campaign mode, on a partner's page for a visitor who consented on the campaign's consent page at Visage:
 *
 *   <script src="https://visage.example/static/visage/capture.js" data-visage-campaign="<campaign public id>"
 *           data-visage-target="#camera"></script>
 *
 * "Start camera" opens the session with a credentialed POST to /api/v1/public/capture-sessions/: Visage's own
 * signed, HttpOnly cookie from the consent page says who the visitor is (the partner page never sees it), and
 * only Origins the campaign lists are answered. The partner page must be same-site with Visage for the browser
 * to send that cookie.
 *
 * Each update (state, frames sent, frames analysed) is also dispatched as a bubbling `visage:update` event,
 * which personalize.js on the same page listens to.
 *
 * The camera is never opened without a capture token (which the server issues only for a live consent), and
 * only after the visitor presses "Start camera" (unless autostart is set). A refusal of consent by the server
 * (the session ended or the consent guard answers 403) stops every camera track at once.
 */
(function (global) {
  'use strict';

  var SCRIPT = document.currentScript;
  var SCRIPT_ORIGIN = (function () {
    try { return SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, global.location.href).origin : global.location.origin; }
    catch (e) { return global.location.origin; }
  })();
  var TOKEN_RE = /^vcs_[A-Za-z0-9_-]{20,200}$/;
  var SESSION_RE = /^[0-9a-fA-F-]{32,36}$/;
  var CAMPAIGN_RE = /^[A-Za-z0-9_-]{1,32}$/;
  var FRAME_WIDTH = 640;
  var JPEG_QUALITY = 0.8;
  var POLL_MS = 1500;
  var MAX_FAILURES = 3;

  var STRINGS = {
    en: {
      start: 'Start camera',
      stop: 'Stop camera',
      recording: 'Recording: your camera is on',
      preview: 'Camera preview',
      stats: 'Live analysis',
      idle: 'The camera is off. Nothing is recorded until you press “Start camera”.',
      asking: 'Asking your browser for the camera…',
      running: 'Recording. Analysis is running.',
      no_token: 'This page has no permission to record, so the camera stays off.',
      denied: 'The camera could not be opened (no permission or no camera). Nothing was recorded.',
      user: 'You stopped the camera. Nothing more is sent.',
      time: 'The time limit was reached. The camera is off and nothing more is sent.',
      withdrawn: 'Consent was withdrawn. The camera is off, nothing more is analysed, and what was derived is being deleted.',
      ended: 'This capture session has ended. The camera is off.',
      expired: 'This capture permission has expired. The camera is off.',
      error: 'The connection to the server failed. The camera is off.',
      frames_analyzed: 'Frames analysed',
      attention: 'Looking at the screen',
      expression: 'Top expression',
      time_left: 'Time left',
      none: '—',
      expressions: {angry: 'angry', disgust: 'disgusted', fear: 'afraid', happy: 'happy', sad: 'sad',
                    surprise: 'surprised', neutral: 'neutral'}
    },
    de: {
      start: 'Kamera starten',
      stop: 'Kamera stoppen',
      recording: 'Aufnahme: Ihre Kamera ist an',
      preview: 'Kamerabild',
      stats: 'Laufende Analyse',
      idle: 'Die Kamera ist aus. Es wird nichts aufgenommen, bevor Sie „Kamera starten“ drücken.',
      asking: 'Ihr Browser wird nach der Kamera gefragt …',
      running: 'Aufnahme läuft. Die Analyse läuft.',
      no_token: 'Diese Seite hat keine Erlaubnis zur Aufnahme; die Kamera bleibt aus.',
      denied: 'Die Kamera ließ sich nicht öffnen (keine Erlaubnis oder keine Kamera). Es wurde nichts aufgenommen.',
      user: 'Sie haben die Kamera gestoppt. Es wird nichts mehr gesendet.',
      time: 'Die Zeitgrenze ist erreicht. Die Kamera ist aus, es wird nichts mehr gesendet.',
      withdrawn: 'Die Einwilligung wurde widerrufen. Die Kamera ist aus, nichts wird mehr analysiert, und Abgeleitetes wird gelöscht.',
      ended: 'Diese Aufnahmesitzung ist beendet. Die Kamera ist aus.',
      expired: 'Diese Aufnahmeerlaubnis ist abgelaufen. Die Kamera ist aus.',
      error: 'Die Verbindung zum Server ist fehlgeschlagen. Die Kamera ist aus.',
      frames_analyzed: 'Analysierte Bilder',
      attention: 'Blick auf den Bildschirm',
      expression: 'Häufigster Ausdruck',
      time_left: 'Verbleibende Zeit',
      none: '—',
      expressions: {angry: 'verärgert', disgust: 'angewidert', fear: 'ängstlich', happy: 'fröhlich',
                    sad: 'traurig', surprise: 'überrascht', neutral: 'neutral'}
    }
  };

  var CSS = [
    '.visage-capture{font:inherit;color:inherit;border:1px solid #c8c8c8;border-radius:.5rem;padding:1rem;max-width:40rem}',
    '.visage-capture .visage-rec{display:flex;align-items:center;gap:.5rem;font-weight:700;color:#b3261e;margin:0 0 .75rem}',
    '.visage-capture .visage-rec[hidden],.visage-capture [hidden]{display:none!important}',
    '.visage-capture .visage-dot{width:1rem;height:1rem;border-radius:50%;background:#d93025;box-shadow:0 0 0 3px rgba(217,48,37,.25);animation:visage-pulse 1.2s ease-in-out infinite}',
    '@keyframes visage-pulse{50%{opacity:.35}}',
    '@media (prefers-reduced-motion:reduce){.visage-capture .visage-dot{animation:none}}',
    '.visage-capture video{display:block;width:100%;max-width:20rem;border-radius:.5rem;background:#000;transform:scaleX(-1);margin:0 0 .75rem}',
    '.visage-capture .visage-buttons{display:flex;gap:.75rem;flex-wrap:wrap}',
    '.visage-capture button{font:inherit;font-size:1.15rem;font-weight:700;min-height:3.25rem;min-width:12rem;padding:.6rem 1.4rem;border-radius:.5rem;cursor:pointer}',
    '.visage-capture .visage-start{border:2px solid currentColor;background:transparent;color:inherit}',
    '.visage-capture .visage-stop{border:2px solid #8c1d18;background:#b3261e;color:#fff}',
    '.visage-capture button:focus-visible{outline:3px solid #0b57d0;outline-offset:3px}',
    '.visage-capture .visage-status{margin:.75rem 0;font-weight:600}',
    '.visage-capture .visage-status:focus{outline:none}',
    '.visage-capture dl{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5rem,1fr));gap:.5rem;margin:0}',
    '.visage-capture dl div{border:1px solid #c8c8c8;border-radius:.4rem;padding:.4rem .6rem}',
    '.visage-capture dt{font-size:.85rem;opacity:.8}',
    '.visage-capture dd{margin:0;font-size:1.25rem;font-weight:700}'
  ].join('\n');

  function injectStyle() {
    if (document.getElementById('visage-capture-style')) return;
    var style = document.createElement('style');
    style.id = 'visage-capture-style';
    style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pickLang(lang) {
    var code = String(lang || document.documentElement.lang || 'en').slice(0, 2).toLowerCase();
    return STRINGS[code] ? code : 'en';
  }

  function formatClock(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  function capture(options) {
    var o = options || {};
    var lang = pickLang(o.lang);
    var t = STRINGS[lang];
    var token = typeof o.token === 'string' ? o.token.trim() : '';
    var sessionId = typeof o.session === 'string' ? o.session.trim() : '';
    var api = String(o.api || SCRIPT_ORIGIN).replace(/\/+$/, '');
    var fps = Math.min(Math.max(Number(o.fps) || 2, 0.1), 15);
    var maxSeconds = Math.max(Number(o.maxSeconds) || 120, 1);
    var onUpdate = typeof o.onUpdate === 'function' ? o.onUpdate : null;
    var startUrl = typeof o.startUrl === 'string' ? o.startUrl.trim() : '';
    var csrf = typeof o.csrf === 'string' ? o.csrf : '';
    var campaign = typeof o.campaign === 'string' ? o.campaign.trim() : '';
    if (!token && !startUrl && CAMPAIGN_RE.test(campaign)) startUrl = api + '/api/v1/public/capture-sessions/';
    else campaign = '';
    var authorized = (TOKEN_RE.test(token) && SESSION_RE.test(sessionId)) || (!token && startUrl !== '');
    var base = '';
    if (authorized && token) useSession(sessionId, token);

    var host = typeof o.target === 'string' ? document.querySelector(o.target) : o.target;
    if (!host) {
      host = el('div');
      if (o.after && o.after.parentNode) o.after.parentNode.insertBefore(host, o.after.nextSibling);
      else document.body.appendChild(host);
    }
    injectStyle();

    // --- the widget ---------------------------------------------------------------------------------------
    var root = el('div', {'class': 'visage-capture', 'lang': lang, 'data-state': 'idle'});
    var rec = el('p', {'class': 'visage-rec', 'hidden': ''});
    rec.appendChild(el('span', {'class': 'visage-dot', 'aria-hidden': 'true'}));
    rec.appendChild(el('span', {}, t.recording));
    var video = el('video', {'class': 'visage-preview', 'muted': '', 'playsinline': '', 'aria-label': t.preview,
                             'hidden': ''});
    video.muted = true;
    var buttons = el('div', {'class': 'visage-buttons'});
    var startButton = el('button', {'type': 'button', 'class': 'visage-start'}, t.start);
    var stopButton = el('button', {'type': 'button', 'class': 'visage-stop', 'hidden': ''}, t.stop);
    buttons.appendChild(startButton);
    buttons.appendChild(stopButton);
    var statusLine = el('p', {'class': 'visage-status', 'role': 'status', 'aria-live': 'polite', 'tabindex': '-1'});
    var stats = el('dl', {'class': 'visage-stats', 'aria-label': t.stats});
    var fields = {};
    ['frames_analyzed', 'attention', 'expression', 'time_left'].forEach(function (name) {
      var box = el('div');
      box.appendChild(el('dt', {}, t[name]));
      fields[name] = el('dd', {'data-field': name}, name === 'frames_analyzed' ? '0' : t.none);
      box.appendChild(fields[name]);
      stats.appendChild(box);
    });
    fields.time_left.textContent = formatClock(maxSeconds);
    root.appendChild(rec);
    root.appendChild(video);
    root.appendChild(buttons);
    root.appendChild(statusLine);
    root.appendChild(stats);
    host.appendChild(root);

    // --- state --------------------------------------------------------------------------------------------
    var state = 'idle';
    var reason = '';
    var stream = null;
    var canvas = null;
    var timers = [];
    var inFlight = false;
    var backoffUntil = 0;
    var failures = 0;
    var framesSent = 0;
    var startedAt = 0;
    var deadline = 0;
    var lastDetail = null;

    function setState(next, why) {
      state = next;
      reason = why || '';
      root.setAttribute('data-state', state);
      if (reason) root.setAttribute('data-reason', reason); else root.removeAttribute('data-reason');
      // The embedding page can react too (Visage's capture page drops its "consent recorded" box).
      try {
        root.dispatchEvent(new CustomEvent('visage:state', {bubbles: true, detail: {state: state, reason: reason}}));
      } catch (e) { /* very old browsers: onUpdate still works */ }
      emit();
    }

    function say(text) { statusLine.textContent = text; }

    function useSession(id, newToken) {
      sessionId = id;
      token = newToken;
      base = api + '/api/v1/capture-sessions/' + encodeURIComponent(id) + '/';
    }

    // The page's own session, opened by the visitor's click: on Visage's capture page same origin, with the
    // page's cookie and CSRF token; in campaign mode cross-origin with Visage's cookie (credentials) and the
    // campaign in the body. '' when it is open, else why not.
    function openSession() {
      var init = campaign ? {
        method: 'POST', credentials: 'include', mode: 'cors', cache: 'no-store',
        headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
        body: JSON.stringify({campaign: campaign})
      } : {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: {'X-CSRFToken': csrf, 'Accept': 'application/json'}
      };
      return fetch(startUrl, init).then(function (response) {
        return response.json().then(function (body) {
          if (response.status === 201 && TOKEN_RE.test(body.capture_token) && SESSION_RE.test(body.session)) {
            useSession(body.session, body.capture_token);
            // Stopped while it was opening: end it at once rather than leave it to the token's expiry.
            if (state !== 'starting') request('end/', {method: 'POST', headers: headers(), keepalive: true});
            return '';
          }
          var why = body && body.error && body.error.details && body.error.details.reason;
          if (response.status === 403 || response.status === 401) return why === 'withdrawn' ? 'withdrawn' : 'no_token';
          return response.status === 409 || response.status === 410 ? 'ended' : 'error';
        });
      }).then(null, function () { return 'error'; });
    }

    function framesAnalyzed() {
      var a = (lastDetail && lastDetail.aggregates) || {};
      var n = a.frames_analyzed;
      if (n === undefined && lastDetail && lastDetail.frames) n = lastDetail.frames.analyzed;
      return Number(n) || 0;
    }

    function emit() {
      var update = {state: state, reason: reason, framesSent: framesSent, framesAnalyzed: framesAnalyzed(),
                    session: lastDetail};
      // personalize.js (or the partner's code) can re-decide once frames are analysed.
      try {
        root.dispatchEvent(new CustomEvent('visage:update', {bubbles: true, detail: update}));
      } catch (e) { /* very old browsers: onUpdate still works */ }
      if (!onUpdate) return;
      try {
        onUpdate(update);
      } catch (e) { /* a partner's callback must not break capture */ }
    }

    function headers(extra) {
      var h = {'Authorization': 'Bearer ' + token};
      Object.keys(extra || {}).forEach(function (k) { h[k] = extra[k]; });
      return h;
    }

    function request(path, init) {
      init = init || {};
      init.credentials = 'omit';
      init.cache = 'no-store';
      init.mode = 'cors';
      return fetch(base + path, init);
    }

    function stopTracks() {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
      video.srcObject = null;
    }

    function render(detail) {
      lastDetail = detail;
      var a = (detail && detail.aggregates) || {};
      var analysed = a.frames_analyzed;
      if (analysed === undefined && detail && detail.frames) analysed = detail.frames.analyzed;
      fields.frames_analyzed.textContent = String(analysed || 0);
      fields.frames_analyzed.setAttribute('data-value', String(analysed || 0));
      if (typeof a.attention_share === 'number') {
        fields.attention.textContent = Math.round(a.attention_share * 100) + ' %';
        fields.attention.setAttribute('data-value', String(a.attention_share));
      } else {
        fields.attention.textContent = t.none;
        fields.attention.removeAttribute('data-value');
      }
      var top = null;
      var dist = a.expression_distribution || {};
      Object.keys(dist).forEach(function (label) { if (top === null || dist[label] > dist[top]) top = label; });
      if (top !== null && dist[top] > 0) {
        fields.expression.textContent = (t.expressions[top] || top) + ' (' + Math.round(dist[top] * 100) + ' %)';
        fields.expression.setAttribute('data-value', top);
      } else {
        fields.expression.textContent = t.none;
        fields.expression.removeAttribute('data-value');
      }
      if (detail && detail.token_expires_at) {
        var expires = Date.parse(detail.token_expires_at);
        if (!isNaN(expires) && startedAt && expires < deadline) deadline = expires;
      }
      emit();
    }

    function poll() {
      return request('', {method: 'GET', headers: headers()})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (detail) {
          if (!detail) return null;
          if (state !== 'stopped' || reason !== 'withdrawn') render(detail);
          if (detail.ended_at && (state === 'recording' || state === 'starting')) {
            finish(detail.end_reason === 'consent_withdrawn' ? 'withdrawn' : 'ended');
          }
          return detail;
        })
        .catch(function () { return null; });
    }

    function finish(why) {
      if (state === 'stopped' || state === 'refused') return;
      var hadFocus = root.contains(document.activeElement);
      timers.forEach(function (id) { clearInterval(id); });
      timers = [];
      stopTracks();
      video.hidden = true;
      rec.hidden = true;
      stopButton.hidden = true;
      startButton.hidden = true;
      fields.time_left.textContent = t.none;
      setState('stopped', why);
      say(t[why] || t.ended);
      if (hadFocus) statusLine.focus();
      if (why === 'withdrawn') {
        render({aggregates: {}});  // what was derived is being deleted: show none of it
        return;
      }
      if (!base) return;  // no session was opened
      if (why === 'user' || why === 'time' || why === 'error') {
        request('end/', {method: 'POST', headers: headers(), keepalive: true})
          .then(function () { return poll(); }, function () { return null; });
      } else {
        poll();
      }
    }

    function frameFailed() {
      failures += 1;
      if (failures >= MAX_FAILURES) finish('error');
    }

    function handleFrameResponse(response) {
      if (response.ok) {
        failures = 0;
        framesSent += 1;
        root.setAttribute('data-frames-sent', String(framesSent));
        return null;
      }
      if (response.status === 429) {
        var wait = Number(response.headers.get('Retry-After')) || 1;
        backoffUntil = Date.now() + wait * 1000;
        return null;
      }
      return response.json().catch(function () { return {}; }).then(function (body) {
        var code = body && body.error ? body.error.code : '';
        if (response.status === 403 && code === 'consent_required') return finish('withdrawn');
        if (response.status === 409 && code === 'session_ended') {
          return poll().then(function (detail) {
            finish(detail && detail.end_reason === 'consent_withdrawn' ? 'withdrawn' : 'ended');
          });
        }
        if (response.status === 401 || response.status === 404) return finish('expired');
        if (response.status === 503) backoffUntil = Date.now() + 2000;
        frameFailed();
        return null;
      });
    }

    function grab() {
      return new Promise(function (resolve) {
        if (!stream || video.readyState < 2 || !video.videoWidth) return resolve(null);
        var width = Math.min(FRAME_WIDTH, video.videoWidth);
        var height = Math.round(video.videoHeight * width / video.videoWidth);
        canvas = canvas || document.createElement('canvas');
        canvas.width = width;
        canvas.height = height;
        canvas.getContext('2d').drawImage(video, 0, 0, width, height);
        canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY);
      });
    }

    function tick() {
      if (state !== 'recording' || inFlight || Date.now() < backoffUntil) return;
      inFlight = true;
      grab().then(function (blob) {
        if (!blob || state !== 'recording') return null;
        return request('frames/', {
          method: 'POST',
          headers: headers({'Content-Type': 'image/jpeg', 'X-Media-Time-Ms': String(Date.now() - startedAt),
                            'X-Captured-At': new Date().toISOString()}),
          body: blob
        }).then(handleFrameResponse, frameFailed);
      }).then(function () { inFlight = false; }, function () { inFlight = false; frameFailed(); });
    }

    function clock() {
      var left = (deadline - Date.now()) / 1000;
      fields.time_left.textContent = formatClock(left);
      if (left <= 0) finish('time');
    }

    function start() {
      if (state !== 'idle') return;
      if (!authorized) return refuse();
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        setState('stopped', 'denied');
        startButton.hidden = true;
        return say(t.denied);
      }
      setState('starting');
      say(t.asking);
      startButton.disabled = true;
      // Ask the server first: an unknown or expired token, or a session ended (consent withdrawn meanwhile),
      // never gets as far as the camera.
      (base ? Promise.resolve('') : openSession()).then(function (refusal) {
        if (refusal) return refusal;
        return request('', {method: 'GET', headers: headers()}).then(function (response) {
          if (response.status === 401 || response.status === 404) return 'expired';
          if (!response.ok) return 'error';
          return response.json().then(function (detail) {
            render(detail);
            if (!detail.ended_at) return '';
            return detail.end_reason === 'consent_withdrawn' ? 'withdrawn' : 'ended';
          });
        }, function () { return 'error'; });
      }).then(function (refusal) {
        if (state !== 'starting') return;
        if (refusal) return finish(refusal);
        openCamera();
      });
    }

    function openCamera() {
      navigator.mediaDevices.getUserMedia({
        video: {width: {ideal: 640}, height: {ideal: 480}, facingMode: 'user'}, audio: false
      }).then(function (media) {
        if (state !== 'starting') {  // stopped while the browser was asking
          media.getTracks().forEach(function (track) { track.stop(); });
          return;
        }
        stream = media;
        video.srcObject = media;
        video.hidden = false;
        var playing = video.play();
        if (playing && playing.catch) playing.catch(function () { /* muted autoplay; frames still draw */ });
        startedAt = Date.now();
        deadline = startedAt + maxSeconds * 1000;
        startButton.hidden = true;
        stopButton.hidden = false;
        rec.hidden = false;
        setState('recording');
        say(t.running);
        stopButton.focus();
        timers.push(setInterval(tick, Math.round(1000 / fps)));
        timers.push(setInterval(poll, POLL_MS));
        timers.push(setInterval(clock, 250));
        clock();
        poll();
      }, function () {
        if (state !== 'starting') return;
        stopTracks();
        startButton.hidden = true;
        setState('stopped', 'denied');
        say(t.denied);
      });
    }

    function refuse() {
      startButton.hidden = true;
      stopButton.hidden = true;
      setState('refused', 'no_token');
      say(t.no_token);
    }

    startButton.addEventListener('click', start);
    stopButton.addEventListener('click', function () { finish('user'); });
    root.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && (state === 'recording' || state === 'starting')) finish('user');
    });
    global.addEventListener('pagehide', function () {
      if (state === 'recording' || state === 'starting') finish('user');
    });

    if (!authorized) refuse();
    else {
      say(t.idle);
      if (o.autostart) start();
    }

    return {
      element: root,
      start: start,
      stop: function () { finish('user'); },
      // Consent ended outside the widget (the page learnt it): stop, and say why.
      end: function (why) { finish(why === 'withdrawn' || why === 'expired' ? why : 'ended'); },
      get state() { return state; },
      get reason() { return reason; },
      get framesSent() { return framesSent; }
    };
  }

  var Visage = global.Visage || {};
  Visage.capture = capture;
  Visage.controllers = Visage.controllers || [];
  global.Visage = Visage;

  // Declarative use: the script tag's data-visage-* attributes.
  if (SCRIPT && (SCRIPT.hasAttribute('data-visage-token') || SCRIPT.hasAttribute('data-visage-start-url') ||
                 SCRIPT.hasAttribute('data-visage-campaign'))) {
    var data = SCRIPT.dataset;
    var init = function () {
      Visage.controllers.push(capture({
        target: data.visageTarget || null,
        after: SCRIPT,
        token: data.visageToken,
        session: data.visageSession,
        startUrl: data.visageStartUrl,
        csrf: data.visageCsrf,
        campaign: data.visageCampaign,
        api: data.visageApi,
        fps: data.visageFps,
        maxSeconds: data.visageMaxSeconds,
        lang: data.visageLang,
        autostart: data.visageAutostart === 'true'
      }));
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
    else init();
  }
})(window);
