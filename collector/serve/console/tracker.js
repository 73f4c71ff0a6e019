/*! spanledger browser activity tracker — served by the collector at /tracker.js (Apache-2.0).
 *
 * <script src="https://collector.example/tracker.js"></script>
 * const tracker = SpanledgerTracker.init({ endpoint: 'https://collector.example', ingestKey: 'site-key', userId: 'u-42' });
 * tracker.track('project_created', { entityType: 'project', entityId: 'p-7', metadata: { priority: 'high' } });
 *
 * Events become product-event activities (the same attributes as Python's product_event()).
 * They are batched (every 10 events or 5 s), kept in localStorage until the collector has
 * acknowledged them (so they survive offline periods and reloads), and sent with
 * navigator.sendBeacon when the page is hidden or unloaded. Each event carries a client id:
 * a batch sent twice (a lost answer, a beacon racing a fetch) is stored once.
 */
(function (root) {
  'use strict';
  var QUEUE_KEY = 'spanledger.tracker.queue';
  var SESSION_KEY = 'spanledger.tracker.session';
  var MAX_QUEUE = 5000;      // oldest events are dropped past this (a page offline for days)
  var MAX_BATCH = 1000;      // what POST /v1/activities/batch takes at once with a bearer token
  // with an ingest key the collector takes fewer (extensions.spanledger_api.ingest_key_limits:
  // max_items 100, max_body_kib 64 by default) and refuses a bigger request for good (413)
  var KEY_MAX_ITEMS = 100;
  var KEY_MAX_BYTES = 60000;
  var BEACON_BYTES = 60000;  // browsers refuse beacons above ~64 KiB

  function randomId() {
    var c = root.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    c.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return hex.slice(0, 8) + '-' + hex.slice(8, 12) + '-' + hex.slice(12, 16) + '-' + hex.slice(16, 20) + '-' + hex.slice(20);
  }

  function storage(kind) { try { var s = root[kind]; s.setItem('spanledger.probe', '1'); s.removeItem('spanledger.probe'); return s; } catch (e) { return null; } }

  /** desktop / mobile / tablet, from the user agent and the screen. */
  function deviceType(nav, screen) {
    var ua = (nav && nav.userAgent) || '';
    if (/iPad|Tablet|PlayBook|Silk/i.test(ua) || (/Android/i.test(ua) && !/Mobile/i.test(ua))) return 'tablet';
    if (/Macintosh/i.test(ua) && nav.maxTouchPoints > 1) return 'tablet'; // iPadOS reports a desktop UA
    if (/Mobi|iPhone|iPod|Android|Windows Phone/i.test(ua)) return 'mobile';
    if (screen && Math.min(screen.width, screen.height) < 500 && nav.maxTouchPoints > 0) return 'mobile';
    return 'desktop';
  }

  /** Metadata as POST /v1/activities/batch takes it (flat key -> string/number/boolean), like Python's
   *  product_event(): nested values become JSON text, empty and non-finite values are left out. */
  function flatMetadata(metadata) {
    var out = {}, k, v;
    for (k in (metadata || {})) {
      if (!Object.prototype.hasOwnProperty.call(metadata, k) || !k) continue;
      v = metadata[k];
      if (v === null || v === undefined || (typeof v === 'number' && !isFinite(v))) continue;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        try { v = JSON.stringify(v); } catch (e) { v = String(v); }
      }
      // defineProperty: a key such as '__proto__' stays a plain entry
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  function utf8Length(text) {
    if (root.TextEncoder) return new root.TextEncoder().encode(text).length;
    return unescape(encodeURIComponent(text)).length;
  }

  function words(type) { var parts = String(type).split('_'); return [parts[0], parts[parts.length - 1]]; }

  function Tracker(options) {
    options = options || {};
    this.endpoint = String(options.endpoint || '').replace(/\/+$/, '');
    this.ingestKey = options.ingestKey || '';
    this.token = options.token || '';
    this.userId = options.userId || null;
    this.batchSize = options.batchSize || 10;
    this.flushMs = options.flushIntervalMs || 5000;
    this.maxItems = options.maxBatchItems || (this.token ? MAX_BATCH : KEY_MAX_ITEMS);
    this.maxBytes = options.maxBatchBytes || (this.token ? 0 : KEY_MAX_BYTES);
    this.service = options.service || (root.location && root.location.host) || 'browser';
    this.local = storage('localStorage');
    this.sessionStore = storage('sessionStorage');
    this.queue = this._load();
    this.sending = null;
    this.timer = null;
    this.retryMs = 0;
    this.sessionId = this._session(options.sessionId);
    this.device = deviceType(root.navigator, root.screen);
    var self = this;
    this._onOnline = function () { self.retryMs = 0; self.flush(); };
    this._onHide = function () { if (root.document.visibilityState === 'hidden') self.flushOnUnload(); };
    this._onPageHide = function () { self.flushOnUnload(); };
    root.addEventListener('online', this._onOnline);
    root.addEventListener('pagehide', this._onPageHide);
    if (root.document) root.document.addEventListener('visibilitychange', this._onHide);
    if (this.queue.length) this._schedule(0);
  }

  Tracker.prototype._session = function (given) {
    if (given) return given;
    var id = this.sessionStore && this.sessionStore.getItem(SESSION_KEY);
    if (!id) { id = randomId(); if (this.sessionStore) this.sessionStore.setItem(SESSION_KEY, id); }
    return id;
  };

  Tracker.prototype._load = function () {
    try { var q = JSON.parse((this.local && this.local.getItem(QUEUE_KEY)) || '[]'); return Array.isArray(q) ? q : []; } catch (e) { return []; }
  };

  Tracker.prototype._save = function () {
    if (!this.local) return;
    try { this.local.setItem(QUEUE_KEY, JSON.stringify(this.queue)); } catch (e) { /* quota: keep in memory */ }
  };

  /** Record one product event. Returns its client id. */
  Tracker.prototype.track = function (type, options) {
    options = options || {};
    var w = words(type || 'event');
    var event = {
      id: randomId(),
      type: 'product_event',
      name: String(type || 'event'),
      event_type: String(type || 'event'),
      category: options.category || w[0],
      action: options.action || w[1],
      entity_type: options.entityType || null,
      entity_id: options.entityId != null ? String(options.entityId) : null,
      metadata: flatMetadata(options.metadata),
      device_type: this.device,
      user_id: options.userId || this.userId,
      session_id: this.sessionId,
      duration_ms: options.durationMs != null ? Number(options.durationMs) : null,
      start_time: new Date().toISOString(),
      service: this.service,
      attributes: root.location ? { 'url.path': root.location.pathname } : null,
    };
    this.queue.push(event);
    if (this.queue.length > MAX_QUEUE) this.queue.splice(0, this.queue.length - MAX_QUEUE);
    this._save();
    if (this._unsentCount() >= this.batchSize) this.flush(); else this._schedule(this.flushMs);
    return event.id;
  };

  /** Start a timed action: complete(extraMetadata) records it with duration_ms; cancel() drops it. */
  Tracker.prototype.trackTimed = function (type, options) {
    var self = this, started = Date.now(), done = false;
    options = options || {};
    return {
      complete: function (extra) {
        if (done) return null; done = true;
        var metadata = {}, k;
        for (k in (options.metadata || {})) metadata[k] = options.metadata[k];
        for (k in (extra || {})) metadata[k] = extra[k];
        return self.track(type, { entityType: options.entityType, entityId: options.entityId, metadata: metadata, durationMs: Date.now() - started });
      },
      cancel: function () { done = true; },
    };
  };

  Tracker.prototype.trackPageView = function (page, metadata) {
    var m = { page: page || (root.location && root.location.pathname) }, k;
    for (k in (metadata || {})) m[k] = metadata[k];
    return this.track('page_viewed', { entityType: 'page', entityId: m.page, metadata: m });
  };

  /** [{type, options}] recorded together. */
  Tracker.prototype.trackBatch = function (events) {
    var self = this;
    return (events || []).map(function (e) { return self.track(e.type, e.options); });
  };

  Tracker.prototype._unsentCount = function () { return this.queue.length - (this.sending ? this.sending.length : 0); };

  Tracker.prototype._schedule = function (delay) {
    var self = this;
    if (this.timer) return;
    this.timer = setTimeout(function () { self.timer = null; self.flush(); }, delay);
  };

  Tracker.prototype._url = function (withKey) {
    var url = this.endpoint + '/v1/activities/batch';
    return withKey && this.ingestKey ? url + '?ingest_key=' + encodeURIComponent(this.ingestKey) : url;
  };

  /** Send what is queued (one batch in flight at a time). Resolves when this attempt ends. */
  Tracker.prototype.flush = function () {
    var self = this;
    if (this.sending || !this.queue.length) return Promise.resolve();
    if (root.navigator && root.navigator.onLine === false) return Promise.resolve(); // 'online' resumes
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    var batch = this._take(0, this.maxItems, this.maxBytes);
    if (!batch.length) { // one event over the byte limit can never be sent with the ingest key
      if (root.console) root.console.warn('spanledger tracker: dropped an event larger than ' + this.maxBytes + ' bytes');
      this.queue.shift(); this._save(); return this.flush();
    }
    this.sending = batch;
    // With the ingest key, a text/plain body keeps the request "simple" (no CORS preflight from
    // a site on another origin); the collector parses the JSON whatever the content type says.
    var headers = { 'Content-Type': this.token ? 'application/json' : 'text/plain;charset=UTF-8' };
    if (this.token) headers.Authorization = 'Bearer ' + this.token;
    return root.fetch(this._url(!this.token), { method: 'POST', headers: headers, body: JSON.stringify({ activities: batch }), keepalive: true, credentials: 'omit' })
      .then(function (response) {
        if (response.ok || (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429)) {
          // delivered, or refused for good (a bad key or event will not get better by retrying)
          if (!response.ok && root.console) root.console.warn('spanledger tracker: the collector refused a batch (' + response.status + ')');
          self._forget(batch);
          self.retryMs = 0;
        } else {
          throw new Error('HTTP ' + response.status);
        }
      })
      .catch(function () {
        self.retryMs = Math.min(self.retryMs ? self.retryMs * 2 : 1000, 60000);
        self.sending = null;
        self._schedule(self.retryMs);
      })
      .then(function () {
        if (self.sending === batch) self.sending = null;
        if (self._unsentCount() >= self.batchSize) self.flush(); else if (self.queue.length) self._schedule(self.flushMs);
      });
  };

  /** Up to ``items`` queued events from ``start`` whose batch body stays within ``bytes`` (0: no byte limit). */
  Tracker.prototype._take = function (start, items, bytes) {
    var chunk = [], size = '{"activities":[]}'.length, i, one;
    for (i = start; i < this.queue.length && chunk.length < items; i++) {
      one = utf8Length(JSON.stringify(this.queue[i])) + (chunk.length ? 1 : 0);
      if (bytes && size + one > bytes) break;
      size += one;
      chunk.push(this.queue[i]);
    }
    return chunk;
  };

  /** Drop acknowledged events: from this tab's queue and from what other tabs stored meanwhile. */
  Tracker.prototype._forget = function (batch) {
    var drop = {}, seen = {}, kept = [];
    batch.forEach(function (e) { drop[e.id] = true; });
    // in memory first (it holds what a full localStorage could not), then other tabs' events
    this.queue.concat(this.local ? this._load() : []).forEach(function (e) {
      if (!drop[e.id] && !seen[e.id]) { seen[e.id] = true; kept.push(e); }
    });
    this.queue = kept;
    this._save();
  };

  /** On hide/unload: hand everything queued to sendBeacon (no auth header, so the ingest key goes in the URL). */
  Tracker.prototype.flushOnUnload = function () {
    if (!this.queue.length || !root.navigator || !root.navigator.sendBeacon) return false;
    if (root.navigator.onLine === false) return false; // stays queued for the next page load
    var sent = [], i = 0;
    var bytes = this.maxBytes ? Math.min(this.maxBytes, BEACON_BYTES) : BEACON_BYTES;
    while (i < this.queue.length) {
      var chunk = this._take(i, Math.min(this.maxItems, KEY_MAX_ITEMS), bytes);
      i += chunk.length;
      if (!chunk.length) { i++; continue; } // a single event over the beacon limit waits for fetch
      var body = new Blob([JSON.stringify({ activities: chunk })], { type: 'text/plain;charset=UTF-8' }); // no preflight
      if (!root.navigator.sendBeacon(this._url(true), body)) break;
      sent = sent.concat(chunk);
    }
    if (sent.length) this._forget(sent);
    return sent.length > 0;
  };

  Tracker.prototype.pending = function () { return this.queue.length; };

  Tracker.prototype.shutdown = function () {
    root.removeEventListener('online', this._onOnline);
    root.removeEventListener('pagehide', this._onPageHide);
    if (root.document) root.document.removeEventListener('visibilitychange', this._onHide);
    if (this.timer) clearTimeout(this.timer);
  };

  root.SpanledgerTracker = { init: function (options) { return new Tracker(options); }, deviceType: deviceType, Tracker: Tracker };
})(typeof window !== 'undefined' ? window : this);
