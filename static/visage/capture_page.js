/*
 * Visage's own capture page, around the capture widget: when this browser's consent to face analysis ends while
 * the page is open (withdrawn in another tab or on the "my data" page, or expired), the "Thank you, your consent
 * has been recorded" box goes, the page says why in its own words (rendered by the server, hidden until then) and
 * the widget stops. It learns it from the widget (a refusal while recording or starting) and by asking the page's
 * consent-state URL when the page becomes visible or gets focus, and every few seconds while it is visible.
 */
(function (global) {
  'use strict';

  var SCRIPT = document.currentScript;
  var STATE_URL = SCRIPT ? SCRIPT.getAttribute('data-consent-state-url') : '';
  var POLL_MS = 4000;
  var ended = false;
  var asking = false;

  function consentEnded(reason) {
    if (ended) return;
    ended = true;
    var known = reason === 'withdrawn' || reason === 'expired' ? reason : 'other';
    var thanks = document.getElementById('consent-recorded');
    if (thanks && thanks.parentNode) thanks.parentNode.removeChild(thanks);
    var box = document.getElementById('consent-ended');
    if (box) {
      box.setAttribute('data-reason', known);
      Array.prototype.forEach.call(box.querySelectorAll('[data-reason]'), function (line) {
        line.hidden = line.getAttribute('data-reason') !== known;
      });
      box.hidden = false;
    }
    var controllers = (global.Visage && global.Visage.controllers) || [];
    controllers.forEach(function (controller) {
      if (controller && typeof controller.end === 'function') controller.end(known === 'other' ? 'ended' : known);
    });
  }

  function ask() {
    if (ended || asking || !STATE_URL || document.visibilityState === 'hidden') return;
    asking = true;
    fetch(STATE_URL, {credentials: 'same-origin', cache: 'no-store', headers: {'Accept': 'application/json'}})
      .then(function (response) { return response.json(); })
      .then(function (body) {
        asking = false;
        if (!body) return;
        if (body.state && body.state !== 'active') consentEnded(body.state);
        else if (body.error && body.error.code === 'campaign_unavailable') consentEnded('other');
      }, function () { asking = false; /* offline a moment: ask again later */ });
  }

  document.addEventListener('visage:state', function (event) {
    var detail = event.detail || {};
    if (detail.reason === 'withdrawn') consentEnded('withdrawn');
  });
  document.addEventListener('visibilitychange', ask);
  global.addEventListener('focus', ask);
  global.addEventListener('pageshow', ask);
  global.setInterval(ask, POLL_MS);
})(window);
