// Timelines: a conversation in sequence order, a project's actions, a ticket's history, a session's events.
import { api, itemsOf } from '../api.js';
import { h } from '../dom.js';
import { formatTime, usd, count, ms, tokensOf } from '../format.js';

const KINDS = {
  conversation: ['Conversation', (id) => api.conversation(id)],
  project: ['Project timeline', (id, ctx) => api.projectTimeline(id, { since: ctx.since })],
  ticket: ['Ticket history', (id) => api.ticketHistory(id)],
  session: ['Session', (id) => api.session(id)],
};

export async function render(main, ctx) {
  const kind = KINDS[ctx.params.kind] ? ctx.params.kind : 'conversation';
  const id = ctx.arg || '';
  const select = h('select', { name: 'kind', id: 'timeline-kind' }, Object.entries(KINDS).map(([k, [label]]) => h('option', { value: k, selected: k === kind }, label)));
  const input = h('input', { name: 'id', id: 'timeline-id', value: id, placeholder: 'id', size: 28 });
  const form = h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); ctx.navigate('timeline', input.value.trim(), { ...ctx.params, kind: select.value }); } },
    select, input, h('button', { type: 'submit' }, 'Show'));
  main.append(h('h1', null, KINDS[kind][0]), form);
  if (!id) { main.append(h('p', { class: 'muted' }, 'Pick what to follow and paste its id.')); return; }
  const payload = await KINDS[kind][1](id, ctx);
  ctx.rememberTimeZone(payload);
  const entries = itemsOf(payload, 'turns', 'messages', 'actions', 'history', 'timeline', 'events', 'activities');
  const total = entries.reduce((s, e) => s + Number(e.cost_usd || 0), 0);
  const tokens = entries.reduce((s, e) => s + tokensOf(e), 0);
  main.append(h('p', { id: 'timeline-summary' }, `${entries.length} entries · ${count(tokens)} tokens · ${usd(total)}`),
    entries.length
      ? h('ol', { class: 'timeline', id: 'timeline-list' }, entries.map((e) => h('li', null,
        h('span', { class: 'when' }, e.sequence !== undefined ? '#' + e.sequence + ' ' : '', formatTime(e.start_time || e.timestamp)),
        h('a', { href: ctx.href('activity', e.span_id) }, e.name || e.type || e.span_id), ' ',
        h('span', { class: 'muted' }, [e.type, e.agent, e.role, e.status].filter(Boolean).join(' · ')), ' ',
        e.duration_ms ? ms(e.duration_ms) + ' ' : '', tokensOf(e) ? count(tokensOf(e)) + ' tok ' : '', e.cost_usd ? usd(e.cost_usd) : '')))
      : h('p', { class: 'muted' }, 'Nothing recorded for this id (in what your token may see).'));
}
