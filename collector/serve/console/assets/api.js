// Every call the console makes to the collector's read API, in one place, so a change in a
// path or a field name is one edit here. The bearer token lives in sessionStorage and is sent
// only in the Authorization header: never in a URL, never in localStorage.

const TOKEN_KEY = 'spanledger.token';

export class ApiError extends Error {
  constructor(status, message, path) { super(message); this.status = status; this.path = path; }
  /** The endpoint is not on this collector (an older one): views say so instead of failing. */
  get missing() { return this.status === 404 && /^no such endpoint/.test(this.message); }
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

// A GET the collector answers 429 (the per-tenant query concurrency of the gateway, QueryBusy) is
// asked again after its Retry-After, a few times: a dashboard asks several questions at once.
const BUSY_RETRIES = 4;
const MAX_BUSY_WAIT_MS = 5000;

async function request(method, path, body, options = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await requestOnce(method, path, body, options);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 429 || method !== 'GET' || attempt >= BUSY_RETRIES) throw error;
      const wait = Math.min(MAX_BUSY_WAIT_MS, 1000 * (Number(error.retryAfter) || 1)) * (0.75 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (options.signal && options.signal.aborted) throw error;
    }
  }
}

async function requestOnce(method, path, body, { signal } = {}) {
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
    const error = new ApiError(response.status, typeof message === 'string' ? message : JSON.stringify(message), path);
    error.retryAfter = response.headers.get('Retry-After');
    throw error;
  }
  return payload;
}

const get = (path, params, options) => request('GET', path + query(params), undefined, options);
const enc = encodeURIComponent;

// -- answer shapes ------------------------------------------------------------------------------
// Named reports (collector/query/reports, docs/reports.md) answer {report, columns, rows: [[...]],
// time_zone, next_cursor, truncated, notes}; views get objects with the console's own field names.

/** A report's rows as objects keyed by its column names. */
export function records(payload) {
  const columns = (payload && payload.columns) || [];
  return ((payload && payload.rows) || []).map((row) => Object.fromEntries(columns.map((name, i) => [name, row[i]])));
}

const reportMeta = (payload) => ({ time_zone: payload.time_zone, range: payload.range, truncated: !!payload.truncated,
  next_cursor: payload.next_cursor || null, notes: payload.notes || [] });
const num = (v) => (v === null || v === undefined ? null : Number(v));

/** GET /v1/reports/spend: rows [{bucket, group, cost_usd (exact string), tokens, ...}] by ``group_by``. */
async function spend(params) {
  const payload = await get('/v1/reports/spend', params);
  const keys = String(params.group_by || 'model').split(',').filter((k) => k && k !== 'none');
  const rows = records(payload).map((r) => ({
    bucket: r.bucket ?? '', group: keys.map((k) => String(r[k] ?? '')).join(' · '),
    cost_usd: r.usd ?? '0', input_tokens: num(r.input_tokens) || 0, output_tokens: num(r.output_tokens) || 0,
    tokens: (num(r.input_tokens) || 0) + (num(r.output_tokens) || 0), cache_read_tokens: num(r.cache_read_tokens) || 0,
    cache_hit_ratio: num(r.cache_hit_ratio), cache_savings_usd: r.cache_savings_usd ?? null,
    llm_calls: num(r.llm_calls) || 0, unpriced_calls: num(r.unpriced_calls) || 0, unpriced_tokens: num(r.unpriced_tokens) || 0,
  }));
  return { ...reportMeta(payload), rows };
}

/** One total over the range: spend grouped by nothing, in no bucket. */
async function spendTotal(params) {
  const answer = await spend({ ...params, group_by: 'none', bucket: 'none' });
  return { ...answer, total: answer.rows[0] || null };
}

/** GET /v1/reports/top?key=trace: the costliest traces [{trace_id, cost_usd, tokens, spans, llm_calls}]. */
async function topTraces(params) {
  const payload = await get('/v1/reports/top', { key: 'trace', by: 'cost', ...params });
  return { ...reportMeta(payload), traces: records(payload).map((r) => ({ trace_id: r.trace, cost_usd: r.usd ?? '0',
    tokens: num(r.tokens) || 0, spans: num(r.spans) || 0, llm_calls: num(r.llm_calls) || 0, unpriced_calls: num(r.unpriced_calls) || 0 })) };
}

/** A timeline report as entries [{sequence?, time (already in the deployment's zone), name, type, ...}]. */
function timelineEntries(payload) {
  return { ...reportMeta(payload), entries: records(payload).map((r) => ({
    sequence: r.sequence ?? null, step: r.step || '', time: r.timestamp || '', name: r.name || '',
    type: r.activity_type || r.step || r.event_type || '', agent: r.agent || '', tool: r.tool || '', status: r.status || '',
    duration_ms: num(r.duration_ms), tokens: r.tokens !== undefined ? num(r.tokens) || 0 : (num(r.input_tokens) || 0) + (num(r.output_tokens) || 0),
    cost_usd: r.usd ?? null, span_id: r.span_id || '', trace_id: r.trace_id || '',
    detail: [r.action !== r.activity_type ? r.action : '', r.details, r.operation, r.changed_fields, r.assignee, r.description, r.message,
      r.event_type, r.user].filter(Boolean).join(' · '),
  })) };
}
const timeline = (path) => async (id, params) => timelineEntries(await get(path(enc(id)), params));

/** GET /v1/agents/stats: [{agent, events, runs, success_rate (0..1 or null), errors, conflicts, p50_ms, p95_ms, ...}] */
async function agentStats(params) {
  const payload = await get('/v1/agents/stats', params);
  return { ...reportMeta(payload), agents: records(payload).map((r) => ({ agent: r.agent, events: num(r.events) || 0,
    runs: num(r.runs) || 0, completed: num(r.completed) || 0, failed: num(r.failed) || 0, success_rate: num(r.success_rate),
    errors: num(r.errors) || 0, conflicts: num(r.conflicts) || 0, pauses: num(r.pauses) || 0,
    p50_ms: num(r.run_p50_ms), p95_ms: num(r.run_p95_ms), p99_ms: num(r.run_p99_ms), cost_usd: r.usd ?? '0' })) };
}

/** GET /v1/budgets: [{name, scope, window (kind), spent_usd, limit_usd, remaining_usd, percent, projected_usd}] */
async function budgets() {
  const payload = await get('/v1/budgets');
  return { time_zone: payload.time_zone, budgets: (payload.budgets || []).map((b) => ({ ...b,
    window: b.window && typeof b.window === 'object' ? b.window.kind : b.window,
    scope: b.scope && typeof b.scope === 'object' ? Object.entries(b.scope).map(([k, v]) => k + '=' + v).join(' ') : b.scope || '' })) };
}

/** GET /v1/activities/{id}?include_chain=true: {activity, ancestors (root first), descendants}. */
async function activity(spanId) {
  const payload = await get('/v1/activities/' + enc(spanId), { include_chain: 'true' });
  const { ancestors = [], descendants = [], ...rest } = payload;
  return { time_zone: payload.time_zone, activity: rest, ancestors, descendants };
}

// -- the endpoints ------------------------------------------------------------------------------
export const api = {
  health: () => get('/healthz'),
  schema: () => get('/v1/schema'),
  /** -> {activities:[...], next_cursor, time_zone} */
  activities: (filters, options) => get('/v1/activities', filters, options),
  activity,
  /** -> {trace_id, spans:[flat nodes], truncated, totals, time_zone} (see normalizeTrace) */
  trace: async (traceId) => normalizeTrace(await get('/v1/traces/' + enc(traceId))),
  reports: () => get('/v1/reports'),
  report: (name, params) => get('/v1/reports/' + enc(name), params),
  spend,
  spendTotal,
  topTraces,
  conversation: timeline((id) => '/v1/conversations/' + id),
  projectTimeline: timeline((id) => '/v1/projects/' + id + '/timeline'),
  ticketHistory: timeline((id) => '/v1/tickets/' + id + '/history'),
  session: timeline((id) => '/v1/sessions/' + id),
  agentStats,
  budgets,
  /** -> {columns, types, rows, elapsed_ms}; a refused query throws ApiError(400, reason) */
  sql: (sqlText, parameters) => request('POST', '/v1/sql', { query: sqlText, parameters: parameters || {} }),
  feed: streamFeed,
};

/** A trace answer ({trace_id, spans: count, truncated, totals, roots: [nested nodes]}) as a flat list of nodes. */
export function normalizeTrace(payload) {
  const flat = [];
  const stack = (payload.roots || []).map((node) => [node, null]).reverse();
  while (stack.length) { // iterative: a trace can be thousands of levels deep
    const [node, parent] = stack.pop();
    const { children, subtree, ...rest } = node;
    if (parent && !rest.parent_span_id) rest.parent_span_id = parent;
    flat.push(rest);
    for (let i = (children || []).length - 1; i >= 0; i--) stack.push([children[i], rest.span_id]);
  }
  return { trace_id: payload.trace_id, spans: flat, truncated: !!payload.truncated, time_zone: payload.time_zone, totals: payload.totals || null };
}

/**
 * The live feed over Server-Sent Events, read with fetch so the token travels in a header
 * (EventSource cannot send one). Reconnects with Last-Event-ID after a drop.
 * onEvent(type, data, id) for 'activity' | 'totals' | 'reset' | 'dropped' | 'alert'; returns stop().
 * (collector/serve/feed.py also takes ?last_event_id= for clients without headers; the token itself
 * is only ever sent as a header.)
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
              const type = event.event || 'message';
              onEvent(type, type === 'totals' ? feedTotals(data) : data, event.id);
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

/** The feed's 'totals' event ({activities, input_tokens, output_tokens, cost_usd, since}) with a token sum. */
function feedTotals(data) {
  const d = data || {};
  return { activities: Number(d.activities || 0), tokens: Number(d.input_tokens || 0) + Number(d.output_tokens || 0),
    cost_usd: d.cost_usd ?? '0', since: d.since || '' };
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
