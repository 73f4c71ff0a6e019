// Every call the console makes to the collector's read API, in one place, so a change in a
// path or a field name is one edit here. The bearer token lives in sessionStorage and is sent
// only in the Authorization header: never in a URL, never in localStorage.

const TOKEN_KEY = 'spanledger.token';

export class ApiError extends Error {
  constructor(status, message, path) { super(message); this.status = status; this.path = path; }
  /** The endpoint is not on this collector (yet): views say so instead of failing. */
  get missing() { return this.status === 404 && /no such endpoint|Not Found/i.test(this.message); }
}

export const token = {
  get() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  set(value) { sessionStorage.setItem(TOKEN_KEY, value.trim()); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

function headers(extra) {
  const result = { Accept: 'application/json', ...extra };
  const value = token.get();
  if (value) result.Authorization = 'Bearer ' + value;
  return result;
}

/** Query string from filters; empty values are left out. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? '?' + text : '';
}

async function request(method, path, body, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method, signal, credentials: 'omit', cache: 'no-store',
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'the collector did not answer (' + error.message + '); is it running?', path);
  }
  let payload = null;
  const text = await response.text();
  try { payload = text ? JSON.parse(text) : null; } catch { payload = null; }
  if (!response.ok) {
    const message = (payload && (payload.error || payload.detail)) || text || response.statusText;
    throw new ApiError(response.status, typeof message === 'string' ? message : JSON.stringify(message), path);
  }
  return payload;
}

const get = (path, params, options) => request('GET', path + query(params), undefined, options);
const enc = encodeURIComponent;

// -- the endpoints ------------------------------------------------------------------------------
export const api = {
  health: () => get('/healthz'),
  schema: () => get('/v1/schema'),
  /** -> {activities:[...], next_cursor, time_zone} */
  activities: (filters, options) => get('/v1/activities', filters, options),
  activity: (spanId) => get('/v1/activities/' + enc(spanId), { include_chain: 'true', detailed: 'true' }),
  /** -> normalized {trace_id, spans:[flat nodes], time_zone} (see normalizeTrace) */
  trace: async (traceId) => normalizeTrace(await get('/v1/traces/' + enc(traceId))),
  reports: () => get('/v1/reports'),
  report: (name, params) => get('/v1/reports/' + enc(name), params),
  /** spend by group_by (model|agent|user|project) and bucket (hour|day): rows [{bucket, <group_by> | group, cost_usd, ...}] */
  spend: (params) => get('/v1/reports/spend', params),
  /** the costliest traces: rows [{trace_id, name, cost_usd, tokens, spans}] */
  topTraces: (params) => get('/v1/reports/top_traces', params),
  conversation: (id) => get('/v1/conversations/' + enc(id)),
  projectTimeline: (id, params) => get('/v1/projects/' + enc(id) + '/timeline', params),
  ticketHistory: (id) => get('/v1/tickets/' + enc(id) + '/history'),
  session: (id) => get('/v1/sessions/' + enc(id)),
  agentStats: (params) => get('/v1/agents/stats', params),
  summary: (params) => get('/v1/analytics/summary', params),
  budgets: () => get('/v1/budgets'),
  /** -> {columns, types, rows, elapsed_ms}; a refused query throws ApiError(400, reason) */
  sql: (sqlText, parameters) => request('POST', '/v1/sql', { query: sqlText, parameters: parameters || {} }),
  feed: streamFeed,
};

/** The list of items in an answer whatever its key (activities / events / items / rows). */
export function itemsOf(payload, ...keys) {
  if (Array.isArray(payload)) return payload;
  for (const key of [...keys, 'activities', 'events', 'items', 'spans', 'rows', 'data']) {
    if (payload && Array.isArray(payload[key])) return payload[key];
  }
  return [];
}

/** A trace answer as a flat list of nodes, whether the API sends a nested tree or a flat list. */
export function normalizeTrace(payload) {
  const flat = [];
  const walk = (node, parent) => {
    const { children, ...rest } = node;
    if (parent && !rest.parent_span_id) rest.parent_span_id = parent;
    flat.push(rest);
    for (const child of children || []) walk(child, rest.span_id);
  };
  const roots = payload.roots || payload.tree || (payload.root ? [payload.root] : null);
  if (roots) (Array.isArray(roots) ? roots : [roots]).forEach((r) => walk(r, null));
  else itemsOf(payload, 'spans', 'nodes').forEach((n) => walk(n, null));
  return { trace_id: payload.trace_id, spans: flat, time_zone: payload.time_zone, totals: payload.totals || null };
}

/**
 * The live feed over Server-Sent Events, read with fetch so the token travels in a header
 * (EventSource cannot send one). Reconnects with Last-Event-ID after a drop.
 * onEvent(type, data, id) for 'activity' | 'totals' | 'dropped'; returns stop().
 */
export function streamFeed(filters, onEvent, onState) {
  const controller = new AbortController();
  let lastId = '';
  let stopped = false;
  const run = async () => {
    let backoff = 500;
    while (!stopped) {
      try {
        const extra = { Accept: 'text/event-stream' };
        if (lastId) extra['Last-Event-ID'] = lastId;
        const response = await fetch('/v1/feed' + query(filters), { headers: headers(extra), signal: controller.signal, credentials: 'omit', cache: 'no-store' });
        if (!response.ok) {
          let message = response.statusText;
          try { message = (await response.json()).error || message; } catch { /* not JSON */ }
          throw new ApiError(response.status, message, '/v1/feed');
        }
        onState && onState('live');
        backoff = 500;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
            const event = parseSse(block);
            if (event.id) lastId = event.id;
            if (event.data !== undefined) {
              let data = event.data;
              try { data = JSON.parse(event.data); } catch { /* plain text */ }
              onEvent(event.event || 'message', data, event.id);
            }
          }
        }
      } catch (error) {
        if (stopped || error.name === 'AbortError') return;
        onState && onState('error', error);
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) return;
      }
      if (stopped) return;
      onState && onState('reconnecting');
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  };
  run();
  return () => { stopped = true; controller.abort(); };
}

function parseSse(block) {
  const event = {};
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') event.data = event.data === undefined ? value : event.data + '\n' + value;
    else if (field === 'event' || field === 'id') event[field] = value;
  }
  return event;
}
