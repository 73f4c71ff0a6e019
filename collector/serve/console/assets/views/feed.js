// Live feed: the latest activities, narrowed by filters (all in the URL), then pushed live over
// SSE (GET /v1/feed, read with fetch so a token goes in the Authorization header). Pause keeps the
// connection but stops painting; resume paints what arrived meanwhile.
import { api } from '../api.js';
import { h, clear, table, kpi } from '../dom.js';
import { formatTime, usd, count, ms, tokensOf } from '../format.js';

const FILTERS = [['type', 'type'], ['agent', 'agent'], ['project', 'project'], ['severity', 'severity'], ['status', 'status'],
  ['service', 'service'], ['model', 'model'], ['user', 'user']];
const CHOICES = { type: ['', 'agent_run', 'llm_call', 'tool_call', 'product_event', 'conversation_turn', 'ticket_change', 'api_request'],
  severity: ['', 'debug', 'info', 'warning', 'error', 'critical'], status: ['', 'ok', 'error', 'cancelled'] };
const KEEP = 500;

export async function render(main, ctx) {
  const filters = Object.fromEntries(FILTERS.map(([key]) => [key, ctx.params[key] || '']));
  const where = ctx.params.where || '';
  let paused = ctx.params.paused === '1';
  let items = [];
  let waiting = [];
  const seen = new Set();
  const totals = { cost: 0, tokens: 0, count: 0 };
  let live = null; // the server's totals of what this subscription delivered (the 'totals' event)

  const list = h('div', { id: 'feed-list' });
  const totalBox = h('div', { class: 'totals', id: 'feed-totals' });
  const state = h('span', { class: 'muted', id: 'feed-state' }, 'connecting…');
  const pause = h('button', { type: 'button', id: 'feed-pause', 'aria-pressed': String(paused) }, paused ? 'Resume' : 'Pause');
  const controls = FILTERS.map(([key, label]) => {
    const onchange = (event) => { ctx.navigate('feed', '', { ...ctx.params, [key]: event.target.value }); };
    const input = CHOICES[key]
      ? h('select', { name: key, onchange }, CHOICES[key].map((v) => h('option', { value: v, selected: v === filters[key] }, v || 'any')))
      : h('input', { name: key, value: filters[key], size: 10, placeholder: 'any', onchange });
    return h('label', null, label, input);
  });
  const whereInput = h('input', { name: 'where', value: where, size: 36, placeholder: "where: model = 'gpt-4o' AND NOT status = 'ok'",
    onchange: (event) => ctx.navigate('feed', '', { ...ctx.params, where: event.target.value }) });
  main.append(h('h1', null, 'Live feed'), h('div', { class: 'toolbar' }, controls, h('label', null, 'where', whereInput), pause, state), totalBox, list);

  const paint = () => {
    // the running total is of what this page lists (the first page and everything since);
    // the server's own count of what it pushed since the feed opened is shown beside it
    totalBox.replaceChildren(
      kpi('activities', count(totals.count), 'feed-count'),
      kpi('tokens', count(totals.tokens), 'feed-tokens'),
      kpi('cost', usd(totals.cost), 'feed-cost'),
      live ? h('span', { class: 'muted', id: 'feed-live' }, `live since ${formatTime(live.since)}: ${count(live.activities)} activities · ${count(live.tokens)} tokens · ${usd(live.cost_usd)}`) : null);
    clear(list).appendChild(items.length ? table([
      { label: 'time', render: (a) => formatTime(a.start_time) },
      { label: 'type', key: 'type' },
      { label: 'name', render: (a) => h('a', { href: ctx.href('activity', a.span_id) }, a.name) },
      { label: 'agent', key: 'agent' }, { label: 'service', key: 'service' }, { label: 'model', key: 'model' },
      { label: 'status', render: (a) => h('span', { class: 'status-' + (a.status || '') }, a.status || '') },
      { label: 'severity', render: (a) => h('span', { class: 'sev-' + (a.severity || '') }, a.severity || '') },
      { label: 'duration', num: true, render: (a) => ms(a.duration_ms) },
      { label: 'tokens', num: true, render: (a) => count(tokensOf(a)) },
      { label: 'cost', num: true, render: (a) => usd(a.cost_usd) },
      { label: 'trace', render: (a) => h('a', { href: ctx.href('trace', a.trace_id) }, String(a.trace_id || '').slice(0, 8)) },
    ], items, { rowClass: (a) => (/error/.test(a.status || '') || /error|critical/.test(a.severity || '') ? 'err' : null) })
      : h('p', { class: 'muted' }, 'No activities match yet. New ones appear here as they arrive.'));
  };
  const add = (activity, toFront) => {
    const key = activity.span_id + ':' + activity.trace_id;
    if (seen.has(key)) return;
    seen.add(key);
    totals.count += 1; totals.tokens += tokensOf(activity); totals.cost += Number(activity.cost_usd || 0);
    if (toFront) items.unshift(activity); else items.push(activity);
    if (items.length > KEEP) items.length = KEEP;
  };

  const params = { ...filters, where, since: ctx.since, limit: 100 };
  const first = await api.activities(params);
  ctx.rememberTimeZone(first);
  first.activities.forEach((a) => add(a, false));
  paint();

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    ctx.setParams({ paused: paused ? '1' : '' });
    if (!paused) { waiting.reverse().forEach((a) => add(a, true)); waiting = []; paint(); }
  });
  const onActivity = (data) => {
    if (paused) { waiting.push(data); state.textContent = `paused · ${waiting.length} new`; return; }
    add(data, true);
    paint();
  };
  let poller = null;
  const poll = () => {
    // no SSE on this collector: ask for what is newer than the newest shown, every 5 s
    poller = setInterval(async () => {
      const newest = items.map((a) => a.start_time).filter(Boolean).sort().pop() || ctx.since;
      try {
        const next = await api.activities({ ...params, since: newest, limit: 100 });
        next.activities.reverse().forEach(onActivity);
        state.textContent = paused ? `paused · ${waiting.length} new` : 'refreshing every 5 s';
      } catch (error) { state.textContent = 'refresh failed: ' + error.message; }
    }, 5000);
  };
  const relist = async () => {
    // the server could not resume where this page left off: fetch the newest again, keep following
    try {
      const again = await api.activities({ ...params, limit: 100 });
      again.activities.reverse().forEach(onActivity);
    } catch (error) { state.textContent = 'refresh failed: ' + error.message; }
  };
  const stopFeed = api.feed({ ...filters, where }, (type, data) => {
    if (type === 'activity') onActivity(data);
    else if (type === 'totals') { live = data; paint(); }
    else if (type === 'reset') relist();
    else if (type === 'dropped') {
      state.textContent = `reconnecting · the server dropped this feed (${(data && data.reason) || 'it fell behind'})`;
    }
  }, (status, error) => {
    if (status === 'error' && error && error.missing && !poller) { poll(); state.textContent = 'refreshing every 5 s'; return; }
    state.textContent = status === 'error' ? 'feed: ' + (error && error.message) : status === 'live' ? (paused ? 'paused' : 'live') : status;
  });
  const stop = () => { stopFeed(); if (poller) clearInterval(poller); };
  return stop;
}
