// Costs: spend over time by model/agent/user/project, tokens and caching, unpriced calls,
// budgets with projected spend, and the costliest traces. Every figure comes from the API.
import { api, ApiError, itemsOf } from '../api.js';
import { h, table, kpi } from '../dom.js';
import { usd, count } from '../format.js';
import { stackedBars, horizontalBars } from '../charts.js';

const GROUPS = ['model', 'agent', 'user', 'project'];

export async function render(main, ctx) {
  const groupBy = GROUPS.includes(ctx.params.group_by) ? ctx.params.group_by : 'model';
  const bucket = ctx.params.bucket === 'hour' || ['15m', '1h', '24h'].includes(ctx.range) ? 'hour' : 'day';
  const picker = h('select', { id: 'group-by', onchange: (e) => ctx.navigate('costs', '', { ...ctx.params, group_by: e.target.value }) },
    GROUPS.map((g) => h('option', { value: g, selected: g === groupBy }, 'by ' + g)));
  const kpis = h('div', { class: 'totals', id: 'cost-kpis' });
  const charts = h('div', { class: 'grid', id: 'cost-charts' });
  main.append(h('h1', null, 'Costs'), h('div', { class: 'toolbar' }, picker), kpis, charts);
  const params = { since: ctx.since, bucket };
  const [spend, summary, budgets, top] = await Promise.all([
    api.spend({ ...params, group_by: groupBy }), soft(api.summary(params)), soft(api.budgets()), soft(api.topTraces({ since: ctx.since, limit: 10 }))]);
  ctx.rememberTimeZone(spend);
  const rows = itemsOf(spend, 'spend', 'buckets').map((r) => ({ bucket: r.bucket ?? r.time ?? r.day ?? r.hour, group: String(r.group ?? r[groupBy] ?? r.key ?? ''),
    value: Number(r.cost_usd ?? r.usd ?? 0), tokens: Number(r.tokens ?? (Number(r.input_tokens || 0) + Number(r.output_tokens || 0))) }));
  charts.append(h('section', { class: 'card', id: 'spend-chart' }, stackedBars(rows, { title: `Spend per ${bucket} by ${groupBy}`, format: usd })),
    h('section', { class: 'card', id: 'tokens-chart' }, stackedBars(rows.map((r) => ({ ...r, value: r.tokens })), { title: `Tokens per ${bucket} by ${groupBy}`, format: count })));
  const byGroup = new Map();
  for (const r of rows) byGroup.set(r.group, (byGroup.get(r.group) || 0) + r.value);
  charts.append(h('section', { class: 'card', id: 'spend-by-group' }, horizontalBars([...byGroup].sort((a, b) => b[1] - a[1]).map(([label, value]) => ({ label, value })), { title: `Spend by ${groupBy}`, format: usd })));

  if (summary) {
    const s = summary.summary || summary;
    kpis.append(kpi('spend', usd(s.cost_usd ?? s.total_cost_usd), 'kpi-spend'), kpi('tokens', count(s.tokens ?? s.total_tokens), 'kpi-tokens'),
      kpi('cache-hit ratio', s.cache_hit_ratio != null ? (Number(s.cache_hit_ratio) * 100).toFixed(1) + '%' : '—', 'kpi-cache'),
      kpi('caching saved', usd(s.cache_savings_usd ?? s.cache_saved_usd), 'kpi-saved'),
      kpi('unpriced calls', count(s.unpriced_calls), 'kpi-unpriced'));
  }
  if (budgets) {
    const list = itemsOf(budgets, 'budgets');
    charts.append(h('section', { class: 'card', id: 'budgets' }, h('h2', null, 'Budgets'), list.length ? table([
      { label: 'budget', render: (b) => b.name || b.scope || '' }, { label: 'window', key: 'window' },
      { label: 'spent', num: true, render: (b) => usd(b.spent ?? b.spent_usd) }, { label: 'limit', num: true, render: (b) => usd(b.limit ?? b.limit_usd) },
      { label: 'used', num: true, render: (b) => h('span', { class: Number(b.percent) >= 100 ? 'budget-over' : null }, b.percent != null ? Number(b.percent).toFixed(1) + '%' : '') },
      { label: 'projected', num: true, render: (b) => usd(b.projected ?? b.projected_usd) },
      { label: 'remaining', num: true, render: (b) => usd(b.remaining ?? b.remaining_usd) },
    ], list) : h('p', { class: 'muted' }, 'No budgets configured.')));
  }
  if (top) {
    const traces = itemsOf(top, 'traces');
    charts.append(h('section', { class: 'card', id: 'top-traces' }, h('h2', null, 'Costliest traces'), traces.length ? table([
      { label: 'trace', render: (t) => h('a', { href: ctx.href('trace', t.trace_id) }, t.name || String(t.trace_id).slice(0, 12)) },
      { label: 'spans', num: true, render: (t) => count(t.spans) }, { label: 'tokens', num: true, render: (t) => count(t.tokens) },
      { label: 'cost', num: true, render: (t) => usd(t.cost_usd) }], traces) : h('p', { class: 'muted' }, 'none in this range')));
  }
}

/** A part of the dashboard whose endpoint is missing or failing leaves a note, not a broken page. */
async function soft(promise) {
  try { return await promise; } catch (error) { if (error instanceof ApiError && error.status === 401) throw error; console.warn(error.message); return null; }
}
