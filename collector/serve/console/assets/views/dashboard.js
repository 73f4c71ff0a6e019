// Costs: spend over time by model/agent/user/project, tokens and caching, unpriced calls,
// budgets with projected spend, and the costliest traces. Every figure comes from the API
// (the spend and top reports, GET /v1/budgets); money is summed exactly from its decimal strings.
import { api, ApiError } from '../api.js';
import { h, table, kpi } from '../dom.js';
import { usd, count, sumDecimal } from '../format.js';
import { stackedBars, horizontalBars } from '../charts.js';

const GROUPS = ['model', 'agent', 'user', 'project', 'provider', 'service', 'environment'];

export async function render(main, ctx) {
  const groupBy = GROUPS.includes(ctx.params.group_by) ? ctx.params.group_by : 'model';
  const bucket = ctx.params.bucket === 'hour' || ['15m', '1h', '24h'].includes(ctx.range) ? 'hour' : 'day';
  const picker = h('select', { id: 'group-by', onchange: (e) => ctx.navigate('costs', '', { ...ctx.params, group_by: e.target.value }) },
    GROUPS.map((g) => h('option', { value: g, selected: g === groupBy }, 'by ' + g)));
  const kpis = h('div', { class: 'totals', id: 'cost-kpis' });
  const charts = h('div', { class: 'grid', id: 'cost-charts' });
  const notes = h('p', { class: 'muted', id: 'cost-notes' });
  main.append(h('h1', null, 'Costs'), h('div', { class: 'toolbar' }, picker), kpis, notes, charts);
  const params = { since: ctx.since };
  // two questions at a time: the gateway runs at most a couple of queries per tenant at once (429 beyond)
  // The spend charts are drawn as soon as their answers arrive; budgets and the costliest traces follow.
  const [spend, total] = await Promise.all([api.spend({ ...params, group_by: groupBy, bucket }), soft(api.spendTotal(params))]);
  ctx.rememberTimeZone(spend);
  const rows = spend.rows.map((r) => ({ bucket: r.bucket, group: r.group, value: Number(r.cost_usd), exact: r.cost_usd, tokens: r.tokens }));
  const spent = sumDecimal(rows.map((r) => r.exact));
  notes.textContent = [spend.truncated ? 'More groups than shown: narrow the range or the filters.' : '', ...spend.notes].filter(Boolean).join(' ');
  charts.append(h('section', { class: 'card', id: 'spend-chart' }, stackedBars(rows, { title: `Spend per ${bucket} by ${groupBy}`, format: usd, exactTotal: spent })),
    h('section', { class: 'card', id: 'tokens-chart' }, stackedBars(rows.map((r) => ({ ...r, value: r.tokens })), { title: `Tokens per ${bucket} by ${groupBy}`, format: count })));
  const byGroup = new Map();
  for (const r of rows) byGroup.set(r.group, [...(byGroup.get(r.group) || []), r.exact]);
  const ranked = [...byGroup].map(([label, values]) => ({ label, value: sumDecimal(values) })).sort((a, b) => Number(b.value) - Number(a.value));
  charts.append(h('section', { class: 'card', id: 'spend-by-group' }, horizontalBars(ranked, { title: `Spend by ${groupBy}`, format: usd })));

  const t = total && total.total;
  if (t) {
    kpis.append(kpi('spend', usd(t.cost_usd), 'kpi-spend', t.cost_usd), kpi('tokens', count(t.tokens), 'kpi-tokens', t.tokens),
      kpi('LLM calls', count(t.llm_calls), 'kpi-calls', t.llm_calls),
      kpi('cache-hit ratio', t.cache_hit_ratio != null ? (t.cache_hit_ratio * 100).toFixed(1) + '%' : '—', 'kpi-cache', t.cache_hit_ratio),
      kpi('caching saved', usd(t.cache_savings_usd), 'kpi-saved', t.cache_savings_usd),
      // an unpriced call's cost is unknown, never $0: counted apart with its tokens
      kpi('unpriced calls', count(t.unpriced_calls) + (t.unpriced_tokens ? ` (${count(t.unpriced_tokens)} tok)` : ''), 'kpi-unpriced', t.unpriced_calls));
  }
  if (!ctx.isCurrent()) return; // the user moved on while the spend questions ran
  const [budgets, top] = await Promise.all([soft(api.budgets()), soft(api.topTraces({ ...params, limit: 10 }))]);
  if (!ctx.isCurrent()) return;
  if (budgets) {
    charts.append(h('section', { class: 'card', id: 'budgets' }, h('h2', null, 'Budgets'), budgets.budgets.length ? table([
      { label: 'budget', render: (b) => h('span', { dataset: { spent: b.spent_usd, projected: b.projected_usd } }, b.name) }, { label: 'scope', key: 'scope' }, { label: 'window', key: 'window' },
      { label: 'spent', num: true, render: (b) => usd(b.spent_usd) }, { label: 'limit', num: true, render: (b) => usd(b.limit_usd) },
      { label: 'used', num: true, render: (b) => h('span', { class: Number(b.percent) >= 100 ? 'budget-over' : null }, b.percent != null ? Number(b.percent).toFixed(1) + '%' : '') },
      { label: 'projected', num: true, render: (b) => h('span', { class: Number(b.projected_percent) >= 100 ? 'budget-over' : null }, usd(b.projected_usd)) },
      { label: 'remaining', num: true, render: (b) => usd(b.remaining_usd) },
    ], budgets.budgets) : h('p', { class: 'muted' }, 'No budgets configured.')));
  }
  if (top) {
    charts.append(h('section', { class: 'card', id: 'top-traces' }, h('h2', null, 'Costliest traces'), top.traces.length ? table([
      { label: 'trace', render: (tr) => h('a', { href: ctx.href('trace', tr.trace_id) }, String(tr.trace_id).slice(0, 12)) },
      { label: 'spans', num: true, render: (tr) => count(tr.spans) }, { label: 'LLM calls', num: true, render: (tr) => count(tr.llm_calls) },
      { label: 'tokens', num: true, render: (tr) => count(tr.tokens) },
      { label: 'cost', num: true, render: (tr) => usd(tr.cost_usd) }], top.traces) : h('p', { class: 'muted' }, 'none in this range')));
  }
}

/** A part of the dashboard whose endpoint is failing leaves a note in the console, not a broken page. */
async function soft(promise) {
  try { return await promise; } catch (error) { if (error instanceof ApiError && error.status === 401) throw error; console.warn(error.message); return null; }
}
