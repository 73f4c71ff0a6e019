// Agent statistics (GET /v1/agents/stats): runs, success rate, errors and conflicts, p50/p95 run
// duration and cost, per agent.
import { api } from '../api.js';
import { h, table } from '../dom.js';
import { usd, count, ms } from '../format.js';

export async function render(main, ctx) {
  const payload = await api.agentStats({ since: ctx.since });
  ctx.rememberTimeZone(payload);
  const agents = payload.agents;
  // success rate: completed runs / finished runs (completed, failed, conflict, paused); none finished: blank
  const pct = (v) => (v === null || v === undefined ? '—' : (Number(v) * 100).toFixed(1) + '%');
  main.append(h('h1', null, 'Agents'), agents.length ? table([
    { label: 'agent', render: (a) => h('a', { href: ctx.href('feed', '', { agent: a.agent }) }, a.agent) },
    { label: 'runs', num: true, render: (a) => count(a.runs) },
    { label: 'success', num: true, render: (a) => pct(a.success_rate) },
    { label: 'failed', num: true, render: (a) => count(a.failed) },
    { label: 'errors', num: true, render: (a) => count(a.errors) },
    { label: 'conflicts', num: true, render: (a) => count(a.conflicts) },
    { label: 'pauses', num: true, render: (a) => count(a.pauses) },
    { label: 'p50 run', num: true, render: (a) => ms(a.p50_ms) },
    { label: 'p95 run', num: true, render: (a) => ms(a.p95_ms) },
    { label: 'events', num: true, render: (a) => count(a.events) },
    { label: 'cost', num: true, render: (a) => usd(a.cost_usd) },
  ], agents, { rowClass: (a) => (a.errors ? 'err' : null) }) : h('p', { class: 'muted' }, 'No agent activity in this range.'));
}
