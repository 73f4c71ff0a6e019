// Agent statistics: runs, success rate, errors and conflicts, p50/p95 duration, tokens and cost.
import { api, itemsOf } from '../api.js';
import { h, table } from '../dom.js';
import { usd, count, ms } from '../format.js';

export async function render(main, ctx) {
  const payload = await api.agentStats({ since: ctx.since });
  ctx.rememberTimeZone(payload);
  const agents = itemsOf(payload, 'agents');
  const pct = (v) => (v === undefined || v === null ? '' : (Number(v) <= 1 ? Number(v) * 100 : Number(v)).toFixed(1) + '%');
  main.append(h('h1', null, 'Agents'), agents.length ? table([
    { label: 'agent', render: (a) => h('a', { href: ctx.href('feed', '', { agent: a.agent || a.name }) }, a.agent || a.name) },
    { label: 'runs', num: true, render: (a) => count(a.runs ?? a.count) },
    { label: 'success', num: true, render: (a) => pct(a.success_rate) },
    { label: 'errors', num: true, render: (a) => count(a.errors) },
    { label: 'conflicts', num: true, render: (a) => count(a.conflicts) },
    { label: 'p50', num: true, render: (a) => ms(a.p50_ms ?? a.p50_duration_ms) },
    { label: 'p95', num: true, render: (a) => ms(a.p95_ms ?? a.p95_duration_ms) },
    { label: 'tokens', num: true, render: (a) => count(a.tokens ?? (Number(a.input_tokens || 0) + Number(a.output_tokens || 0))) },
    { label: 'cost', num: true, render: (a) => usd(a.cost_usd) },
  ], agents, { rowClass: (a) => (Number(a.errors) ? 'err' : null) }) : h('p', { class: 'muted' }, 'No agent runs in this range.'));
}
